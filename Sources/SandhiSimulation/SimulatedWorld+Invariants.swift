import SandhiEngine
import SandhiHistory

// The invariants checked once the faults stop and everything settles.
extension SimulatedWorld {
    mutating func violation(_ invariant: String, _ detail: String) {
        violations.append(SimulationReport.Violation(invariant: invariant, detail: detail, step: step))
    }

    mutating func checkFinalState(timedOut: Bool) {
        if timedOut || !settled {
            let stuck = coordinatorProcess.core.coordinator.transactions.keys.sorted().prefix(5).map(\.description)
            let prepared = banks.enumerated().flatMap { index, bank in
                (bank.store?.inDoubt().keys.sorted() ?? []).map { "\(names[index]):\($0)" }
            }.prefix(5)
            let down = banks.indices.filter { !banks[$0].up }.map { names[$0].name }
            let heuristics = banks.enumerated().flatMap { index, bank in
                (bank.store?.unforgottenHeuristics().keys.sorted() ?? []).map { "\(names[index]):\($0)" }
            }.prefix(5)
            violation("liveness", "not settled \(options.settleLimitUs / 1_000_000)s after faults stopped: in flight \(stuck), prepared \(Array(prepared))"
                      + (down.isEmpty ? "" : ", down \(down)") + (heuristics.isEmpty ? "" : ", heuristic decisions not forgotten \(Array(heuristics))"))
        }
        var total: Int64 = 0
        for (index, bank) in banks.enumerated() {
            guard let store = bank.store else {
                violation("liveness", "\(names[index]) is down after everything settled")
                continue
            }
            let prepared = store.inDoubt(), locks = store.heldLocks
            if !prepared.isEmpty || !locks.isEmpty {
                violation("no-orphans", "\(names[index]) still holds \(prepared.keys.sorted().map(\.description)) prepared, locks \(locks.count)")
            }
            do {
                for (account, balance) in try store.balances() {
                    if balance.value < 0 { violation("non-negative", "\(names[index])/\(account) ended at \(balance.value)") }
                    total += balance.value
                }
                // Where each transaction took effect: the bank's `committed` table.
                for tx in try store.committedBranches().keys {
                    guard let slot = slot(of: tx) else {
                        violation("atomicity", "\(names[index]) committed \(tx), which was never submitted")
                        continue
                    }
                    ledger[slot].applied |= 1 << index
                }
            } catch {
                violation("participant-recovery", "\(names[index]) cannot be read: \(error)")
            }
        }
        if !coordinatorProcess.core.coordinator.locks.table.isEmpty {
            violation("no-orphans", "the coordinator's lock table still holds \(coordinatorProcess.core.coordinator.locks.table.count) resources")
        }
        // A mixed outcome's money stays created or destroyed only if the operator wrote it off.
        let reconciliation = coordinatorProcess.core.coordinator.reconciliation
        let writtenOff = writtenOff(reconciliation)
        if total != openingTotal + writtenOff {
            violation("conservation", "total \(total), opened with \(openingTotal)" + (writtenOff == 0 ? "" : ", \(writtenOff) written off"))
        }
        for entry in ledger {
            let writers = writerBits(entry)
            let at = entry.applied
            // The common case first: applied where the decision says, and as the client was told.
            if at == (entry.durable ? writers : 0) && (entry.told.map { $0.isCommitted ? at == writers : at == 0 } ?? true) { continue }
            // Only a heuristic case can account for anything else (checked on its own below).
            if reconciliation[entry.id] != nil { continue }
            if at != 0 && at != writers {
                violation("atomicity", "mixed outcome not in the reconciliation queue: \(entry.id) applied at \(named(at)) of \(named(writers))")
            } else if entry.told?.isCommitted == true && at != writers {
                violation("durability", "\(entry.id) was reported committed but is applied at \(named(at)) only")
            } else if let outcome = entry.told, !outcome.isCommitted, at != 0 {
                violation("atomicity", "\(entry.id) was reported aborted but applied at \(named(at))")
            } else {
                violation("atomicity", "\(entry.id) is applied at \(named(at)) of \(named(writers)), but its decision was "
                          + (entry.durable ? "commit" : "abort") + ", and it is not in the reconciliation queue")
            }
        }
        checkHeuristicCases(reconciliation)
        checkIsolation()
    }

    /// Builds the history of every committed transaction from what the banks saw, and checks it.
    /// A transaction counts as committed when it was applied somewhere or was only read (told
    /// committed); atomicity is checked on its own above. An aborted transaction wrote nothing a
    /// bank kept, so it joins the history only when a read names it as a writer (to be reported
    /// as an aborted read): the checker's findings are those of the whole history, at a fraction
    /// of its cost.
    mutating func checkIsolation() {
        // Each account's key, and each transaction's name, made once.
        let keys = accounts.count <= Self.accountNames.count ? Self.historyKeys
            : names.map { participant in accounts.map { "\(participant)/\($0)" } }
        var descriptions = [String?](repeating: nil, count: ledger.count)
        var namedAborted: [Int] = []
        func committed(_ entry: Submission) -> Bool { entry.applied != 0 || entry.told?.isCommitted == true }
        func name(_ tx: TransactionID) -> String {
            guard let slot = slot(of: tx) else { return tx.description }
            if let known = descriptions[slot] { return known }
            let made = tx.description
            descriptions[slot] = made
            if !committed(ledger[slot]) { namedAborted.append(slot) }
            return made
        }
        // Each op's key and writer as numbers for the checker, as it would number them from the
        // strings (keys by first appearance, writers by position): no string is hashed. A
        // writer is held as its ledger slot until the history's order is known.
        var interned = InternedReferences()
        var keyNumbers = [Int32](repeating: -1, count: names.count * accounts.count)
        var keysNumbered: Int32 = 0
        var internable = true
        var history: [HistoryTransaction] = []
        history.reserveCapacity(ledger.count)
        for (slot, entry) in ledger.enumerated() where committed(entry) {
            // Room for every access at once (a read, and a write for a debit or credit): grown
            // from empty, the array was allocated two or three times per transaction.
            var ops: [HistoryTransaction.Op] = []
            ops.reserveCapacity(entry.branches.reduce(0) { $0 + 2 * $1.operations.count })
            for branch in entry.branches {
                // A branch of a mixed outcome that did not take effect wrote nothing.
                guard let index = index(of: branch.participant), branch.isReadOnly || entry.applied & (1 << index) != 0,
                      let observed = seen[slot * names.count + index] ?? staged[slot * names.count + index] else { continue }
                for (operation, before) in zip(branch.operations.lazy.filter { $0.account != nil }, observed) {
                    let at = accountIndex(of: before.account)
                    let key = at.map { keys[index][$0] } ?? "\(branch.participant)/\(before.account)"
                    let delta = operation.isWrite ? operation.delta.value : nil
                    HistoryTransaction.Op.appendAccess(to: &ops, key: key, sawValue: before.balance.value,
                                                       sawVersion: Int64(before.version), writer: before.writer.map(name), delta: delta)
                    guard let at else { internable = false; continue } // an account outside the list: the strings decide
                    let cell = index * accounts.count + at
                    if keyNumbers[cell] < 0 { keyNumbers[cell] = keysNumbered; keysNumbered += 1 }
                    let writer = before.writer.map { self.slot(of: $0).map(Int32.init) ?? InternedReferences.missing } ?? InternedReferences.initial
                    interned.keys.append(keyNumbers[cell])
                    interned.writers.append(writer)
                    if delta != nil {
                        interned.keys.append(keyNumbers[cell])
                        interned.writers.append(InternedReferences.initial)
                    }
                }
            }
            history.append(HistoryTransaction(id: name(entry.id), outcome: .committed, ops: ops))
        }
        let aborted = namedAborted.sorted()
        for slot in aborted {
            history.append(HistoryTransaction(id: descriptions[slot]!, outcome: .aborted, ops: []))
        }
        let header = HistoryHeader(totalPaise: openingTotal)
        let report: HistoryReport
        if internable {
            // Ledger slots to positions in the history: the committed in ledger order, then the
            // aborted that a read names, by slot.
            var position = [Int32](repeating: InternedReferences.missing, count: ledger.count)
            var next: Int32 = 0
            for (slot, entry) in ledger.enumerated() where committed(entry) { position[slot] = next; next += 1 }
            for slot in aborted { position[slot] = next; next += 1 }
            for op in interned.writers.indices where interned.writers[op] >= 0 {
                interned.writers[op] = position[Int(interned.writers[op])]
            }
            report = HistoryChecker().check(header: header, transactions: history, interned: interned)
        } else {
            report = HistoryChecker().check(header: header, transactions: history)
        }
        for anomaly in report.anomalies.prefix(3) { violation("isolation", anomaly.description) }
    }
}

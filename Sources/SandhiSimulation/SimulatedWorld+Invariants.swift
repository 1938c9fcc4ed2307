import SandhiEngine
import SandhiHistory

// The invariants checked once the faults stop and everything settles.
extension SimulatedWorld {
    mutating func violation(_ invariant: String, _ detail: String) {
        violations.append(SimulationReport.Violation(invariant: invariant, detail: detail, step: step))
    }

    mutating func checkFinalState(timedOut: Bool) {
        if timedOut || !settled {
            let stuck = coordinatorProcess.coordinator.transactions.keys.sorted().prefix(5).map(\.description)
            let prepared = banks.enumerated().flatMap { index, bank in bank.prepared.keys.sorted().map { "\(names[index]):\($0)" } }.prefix(5)
            violation("liveness", "not settled \(options.settleLimitUs / 1_000_000)s after faults stopped: in flight \(stuck), prepared \(Array(prepared))")
        }
        var total: Int64 = 0
        for (index, bank) in banks.enumerated() {
            if !bank.prepared.isEmpty || !bank.machine.lockOwners.isEmpty {
                violation("no-orphans", "\(names[index]) still holds \(bank.prepared.keys.sorted().map(\.description)) prepared, locks \(bank.machine.lockOwners.count)")
            }
            total += bank.balances.values.reduce(0, +)
        }
        if !coordinatorProcess.coordinator.locks.table.isEmpty {
            violation("no-orphans", "the coordinator's lock table still holds \(coordinatorProcess.coordinator.locks.table.count) resources")
        }
        if total != openingTotal { violation("conservation", "total \(total), opened with \(openingTotal)") }
        for (tx, branches) in submitted.sorted(by: { $0.key < $1.key }) {
            let writers = Set(branches.filter { !$0.isReadOnly }.map { names.firstIndex(of: $0.participant)! })
            let bits = applied[tx] ?? 0
            let at = Set((0..<names.count).filter { bits & (1 << $0) != 0 })
            if !at.isEmpty && at != writers {
                violation("atomicity", "\(tx) applied at \(at.sorted().map { names[$0].name }) of \(writers.sorted().map { names[$0].name })")
            }
            if told[tx]?.isCommitted == true && at != writers {
                violation("durability", "\(tx) was reported committed but is applied at \(at.sorted().map { names[$0].name }) only")
            }
            if let outcome = told[tx], !outcome.isCommitted, !at.isEmpty {
                violation("atomicity", "\(tx) was reported aborted but applied at \(at.sorted().map { names[$0].name })")
            }
        }
        checkIsolation()
    }

    /// Builds the history of every submitted transaction from what the banks saw, and checks it.
    /// A transaction counts as committed when it was applied somewhere or was only read (told
    /// committed); atomicity is checked on its own above.
    mutating func checkIsolation() {
        var history: [HistoryTransaction] = []
        for (tx, branches) in submitted.sorted(by: { $0.key < $1.key }) {
            let committed = (applied[tx] ?? 0) != 0 || told[tx]?.isCommitted == true
            guard committed else {
                history.append(HistoryTransaction(id: tx.description, outcome: .aborted, ops: []))
                continue
            }
            var ops: [HistoryTransaction.Op] = []
            for branch in branches {
                guard let index = index(of: branch.participant), let observed = seen[tx]?[index] ?? staged[tx]?[index] else { continue }
                for (operation, before) in zip(branch.operations.filter { $0.account != nil }, observed) {
                    ops += HistoryTransaction.Op.access(key: "\(branch.participant)/\(before.account)", sawValue: before.balance.value,
                                   sawVersion: Int64(before.version), writer: before.writer?.description,
                                   delta: operation.isWrite ? operation.delta.value : nil)
                }
            }
            history.append(HistoryTransaction(id: tx.description, outcome: .committed, ops: ops))
        }
        let report = HistoryChecker().check(header: HistoryHeader(totalPaise: openingTotal), transactions: history)
        for anomaly in report.anomalies.prefix(3) { violation("isolation", anomaly.description) }
    }
}

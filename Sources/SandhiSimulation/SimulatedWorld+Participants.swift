import SandhiEngine

// The participants: each bank's protocol machine and the storage it drives, with crash and restart.
extension SimulatedWorld {
    mutating func participant(_ index: Int, _ input: ParticipantProtocol.Input) {
        var effects: [ParticipantProtocol.Effect] = []
        swap(&effects, &participantEffects)
        precondition(effects.isEmpty) // every effect is taken below
        banks[index].machine.handle(input, into: &effects)
        defer { swap(&effects, &participantEffects) }
        effects.withUnsafeMutableBufferPointer { $0.reverse() }
        while let effect = effects.popLast() { // moved out in order, as in `feed`
            switch consume effect {
            case .stage(let tx, let operations, let writers):
                banks[index].stagingInFlight += 1
                banks[index].persisting = Persist(tx: tx, operations: operations, writers: writers)
                schedule(.staged(index, tx, operations: operations, writers: writers, readOnly: false, incarnation: banks[index].incarnation),
                         afterUs: 30 + random.next() % 300)
            case .validateReads(let tx, let operations):
                banks[index].stagingInFlight += 1
                schedule(.staged(index, tx, operations: operations, writers: [], readOnly: true, incarnation: banks[index].incarnation),
                         afterUs: 30 + random.next() % 300)
            case .apply(let tx, let operations, _):
                // Only a heuristic decision may apply what the coordinator has not decided.
                if slot(of: tx).map({ !ledger[$0].durable }) ?? true {
                    violation("decision-before-commit", "\(names[index]) applied \(tx), whose COMMIT record was never durable")
                }
                apply(tx, operations, at: index)
            case .discard(let tx):
                banks[index].prepared[tx] = nil
            case .decideAlone(let tx, let commit, let operations, let writers):
                // One durable step: the write-set applied (or dropped) and the decision kept.
                if commit { apply(tx, operations, at: index) } else { banks[index].prepared[tx] = nil }
                banks[index].heuristics[tx] = Heuristic(committed: commit, operations: operations, writers: writers)
                banks[index].decidedAlone.insert(tx)
                cases[commit ? .heuristicCommit : .heuristicRollback] += 1
            case .forgetHeuristic(let tx):
                banks[index].heuristics[tx] = nil
            case .reply(let reply):
                if case .vote(let tx, .yes, _) = reply, banks[index].prepared[tx] == nil,
                   case .prepared = banks[index].machine.branches[tx] {
                    // A YES is a promise to commit whatever comes: the write-set must be on the disk.
                    violation("durable-vote", "\(names[index]) votes YES for \(tx), whose write-set is not durable")
                }
                banks[index].repliesInFlight += 1
                schedule(.participantSends(index, reply, incarnation: banks[index].incarnation), afterUs: 1 + random.next() % 50)
            case .refuse(_, let reason):
                violation("atomicity", reason)
            }
        }
        scheduleInquiryIfPrepared(index)
        if faults.heuristicAfterMs > 0 { scheduleHeuristicSweep(index) }
    }

    /// Applies a committed write-set to bank `index`'s balances (a COMMIT, or a heuristic commit).
    mutating func apply(_ tx: TransactionID, _ operations: [Operation], at index: Int) {
        let slot = slot(of: tx)
        if let slot, ledger[slot].applied & (1 << index) != 0 {
            violation("atomicity", "\(names[index]) applied \(tx) twice")
        }
        for operation in operations {
            guard let account = operation.account, operation.isWrite, let at = accountIndex(of: account) else { continue }
            let balance = banks[index].balances[at] + operation.delta.value
            banks[index].balances[at] = balance
            banks[index].versions[at] = (banks[index].versions[at].version + 1, tx)
            if balance < 0 { violation("non-negative", "\(names[index])/\(account) went to \(balance) applying \(tx)") }
        }
        banks[index].prepared[tx] = nil
        if let slot { ledger[slot].applied |= 1 << index }
    }

    /// Prepared branches, and heuristic decisions not yet forgotten, ask again every 20 to 40 ms
    /// until they are resolved.
    mutating func scheduleInquiryIfPrepared(_ index: Int) {
        guard banks[index].up, !banks[index].inquiryScheduled, !banks[index].prepared.isEmpty || !banks[index].heuristics.isEmpty else { return }
        banks[index].inquiryScheduled = true
        schedule(.inquiry(index, incarnation: banks[index].incarnation), afterUs: 20_000 + random.next() % 20_000)
    }

    /// The bank's process (and machine) stops: staging in flight and replies not yet sent are
    /// lost, a write-set being persisted may be torn; prepared write-sets survive.
    mutating func crashParticipant(_ index: Int) {
        guard banks[index].up else { return }
        injected[.participantCrash] += 1
        if banks[index].stagingInFlight > 0 { cases[.participantCrashBeforeVote] += 1 }
        if banks[index].repliesInFlight > 0 { cases[.participantCrashBetweenReplyAndSend] += 1 }
        if !banks[index].prepared.isEmpty { cases[.participantCrashAfterVote] += 1 }
        crashPersist(index)
        banks[index].up = false
        banks[index].incarnation += 1
        banks[index].stagingInFlight = 0
        banks[index].repliesInFlight = 0
        record(10, 0, UInt64(index))
        schedule(.restartParticipant(index), afterUs: 1_000 + random.next() % 20_000)
    }

    mutating func restartParticipant(_ index: Int) {
        recoverPersist(index)
        var bank = banks[index]
        bank.up = true
        if options.bug == .forgetPreparedOnRestart { bank.prepared.removeAll() }
        bank.machine = ParticipantProtocol(participant: names[index], plantedBug: options.bug?.engineBug == .noLocks ? .noLocks : nil)
        for (tx, branch) in bank.prepared.sorted(by: { $0.key < $1.key }) {
            _ = bank.machine.handle(.restored(tx, operations: branch.operations, writers: branch.writers))
        }
        for (tx, heuristic) in bank.heuristics.sorted(by: { $0.key < $1.key }) {
            _ = bank.machine.handle(.restoredHeuristic(tx, committed: heuristic.committed, operations: heuristic.operations,
                                                       writers: heuristic.writers))
        }
        bank.inquiryScheduled = false
        bank.heuristicSweepScheduled = false
        banks[index] = bank
        record(7, UInt64(bank.prepared.count), UInt64(index))
        scheduleInquiryIfPrepared(index)
        if faults.heuristicAfterMs > 0 { scheduleHeuristicSweep(index) }
    }
}

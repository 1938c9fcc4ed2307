import SandhiEngine
import SandhiRuntime

// The coordinator: the driver's core (`CoordinatorDriverCore`, as `CoordinatorDriver` runs it)
// and its actions, its crash, and recovery at restart as `SandhiNode.start` does it.
extension SimulatedWorld {
    mutating func feed(_ input: CoordinatorInput) {
        guard coordinatorProcess.up else { return }
        var actions: [CoordinatorDriverCore.Action] = []
        swap(&actions, &coordinatorActions)
        precondition(actions.isEmpty, "actions left over from an earlier input")
        coordinatorProcess.core.handle(input, nowUs: coordinatorProcess.clock(nowUs), into: &actions)
        defer { swap(&actions, &coordinatorActions) }
        // Taken from the back of the reversed buffer, each action moved out whole (as the core
        // takes the coordinator's effects).
        actions.withUnsafeMutableBufferPointer { $0.reverse() }
        while let action = actions.popLast() {
            switch consume action {
            case .send(let participant, let message):
                let to = index(of: participant)!
                if case .forget(let tx) = message { checkForget(tx, to: to) }
                if case .rollback(_, _?) = message { cases[.heuristicQuestionAsked] += 1 }
                sendToParticipant(to, message)
            case .appendDecision(let record, let forced):
                appendToLog(record, forced: forced)
                if !coordinatorProcess.syncScheduled {
                    coordinatorProcess.syncScheduled = true
                    let slow = nowUs < faultsStopAtUs && chance(faults.slowLogSyncPerMille)
                    if slow { injected[.slowLogSync] += 1 }
                    schedule(.logSync(incarnation: coordinatorProcess.incarnation),
                             afterUs: slow ? 2_000 + random.next() % 8_000 : 50 + random.next() % 300)
                }
            case .setTimer(let timer, let afterUs):
                setLive(timer, true)
                schedule(.timer(timer, incarnation: coordinatorProcess.incarnation), afterUs: afterUs)
            case .cancelTimer(let timer):
                setLive(timer, false)
            case .emit(let event):
                switch event.kind {
                case .voteReceived(let tx, let participant, _, _):
                    if let vote = voteInFlight, vote.tx == tx, index(of: participant) == vote.index, !vote.observed.isEmpty,
                       let slot = slot(of: tx) {
                        seen[slot * names.count + vote.index] = vote.observed // the vote that counted
                    }
                case .deadlockDetected: cases[.deadlock] += 1
                case .recovered: cases[.inDoubtResolvedByRecovery] += 1
                case .heuristicReported(_, _, _, let agrees): if agrees { cases[.heuristicAgreeing] += 1 }
                case .heuristicCaseOpened:
                    // Counted as recorded once the journal acknowledges it (`appendReconciliation`).
                    if answerInFlight { cases[.heuristicConfirmedByQuestion] += 1 }
                case .reconciled(_, let entry): countReconciled(entry)
                default: break
                }
            case .recordReconciliation(let record):
                // As the driver: whatever follows (a FORGET) may depend on this record, so a
                // record that does not reach the disk stops the coordinator here.
                if !appendReconciliation(record) {
                    let instead = coordinatorProcess.core.recordFailed("a reconciliation record failed to reach disk",
                                                                       unperformed: actions.reversed())
                    actions = instead.reversed()
                }
            case .answer(let slot, .success(let result)):
                let outcome = result.outcome
                if outcome.isCommitted && !ledger[slot].durable && ledger[slot].branches.contains(where: { !$0.isReadOnly }) {
                    violation("decision-before-commit", "the client was told \(result.transaction) committed before its COMMIT record was durable")
                }
                if ledger[slot].told == nil { ledger[slot].told = outcome }
            case .answer(_, .failure):
                break // the client hears the coordinator halted: no word on the outcome
            case .halt(let reason):
                actions.removeAll(keepingCapacity: true)
                crashCoordinator(reason: reason)
                return
            }
        }
    }

    mutating func crashCoordinator(reason: String) {
        guard coordinatorProcess.up else { return }
        injected[.coordinatorCrash] += 1
        var deciding = false, decidedDurable = false, committing = false
        for transaction in coordinatorProcess.core.coordinator.transactions.values {
            switch transaction.state {
            case .prepared:
                if isDurable(transaction.id) { decidedDurable = true } else { deciding = true }
            case .committing: committing = true
            default: break
            }
        }
        if deciding { cases[.coordinatorCrashBeforeDurable] += 1 }
        if decidedDurable { cases[.coordinatorCrashBetweenDurableAndCommit] += 1 }
        if committing { cases[.coordinatorCrashAfterDurable] += 1 }
        crashDecisionLog()
        coordinatorProcess.up = false
        coordinatorProcess.incarnation += 1
        coordinatorProcess.unsynced.removeAll()
        coordinatorProcess.syncScheduled = false
        record(8, 0, 0)
        schedule(.restartCoordinator, afterUs: 1_000 + random.next() % 20_000)
    }

    /// A new incarnation, recovered from the decision log and the banks' prepared write-sets
    /// by the same `RecoveryPlan` as `SandhiNode.start`: the log scanned (its torn tail cut), a
    /// new epoch above every one in it and in the banks made durable, then the plan's inputs
    /// fed in one step, as the real driver feeds them under its lock.
    mutating func restartCoordinator() {
        guard let log = recoverDecisionLog(), let reconciliation = recoverReconciliation() else { return }
        // The banks' recovery comes first (in production they open in the coordinator's
        // process, before its recovery reads them): a bank still down restarts now.
        for index in banks.indices where !banks[index].up { restartParticipant(index) }
        // What recovery reads of a bank must be on its disk, as a bank opened at the node's
        // start has it (`SQLiteBank` reads from the disk at open): a running bank syncs what
        // it has stored first, or a decision it made alone could reach the coordinator and
        // then vanish in the bank's next crash. A sync that fails stops the bank, which
        // reopens from what its disk really holds.
        for index in banks.indices {
            guard let store = banks[index].store else { continue }
            do {
                try store.makeDurable()
            } catch {
                crashParticipant(index, afterFailedSync: true)
                restartParticipant(index)
            }
        }
        var recovering: [RecoveringBank] = []
        for (index, bank) in banks.enumerated() {
            guard let store = bank.store else { return } // refused to open: a violation already
            let highestEpoch: UInt32
            do {
                highestEpoch = try store.highestEpoch()
            } catch {
                violation("participant-recovery", "\(names[index]) cannot say its highest epoch: \(error)")
                return
            }
            recovering.append(RecoveringBank(participant: names[index], inDoubt: store.inDoubt(), locks: store.inDoubtLocks(),
                                             highestEpoch: highestEpoch, heuristics: store.unforgottenHeuristics()))
        }
        let plan: RecoveryPlan
        do {
            plan = try RecoveryPlan.make(logEpoch: log.maxEpoch, commits: log.commits, banks: recovering) { tx in
                banks.indices.filter { (try? banks[$0].store?.committedOnCoordinatorsWord(tx)) == true }.map { names[$0] }
            }
        } catch {
            violation("log", "recovery refused to start: \(error)")
            return
        }
        let epoch = plan.epoch
        if epoch <= coordinatorProcess.epoch {
            violation("log", "the log's highest epoch is \(log.maxEpoch), but epoch \(coordinatorProcess.epoch) handed out transaction ids")
        }
        startEpochInLog(epoch)
        let clockOffsetUs = coordinatorProcess.clockOffsetUs // the machine's clock outlives the process
        coordinatorProcess = CoordinatorProcess(
            core: CoordinatorDriverCore(coordinator: Coordinator(configuration: Self.coordinatorConfiguration(options),
                                                                 reconciliation: reconciliation, recovering: true, epoch: epoch)), up: true,
            incarnation: coordinatorProcess.incarnation, epoch: epoch)
        coordinatorProcess.clockOffsetUs = clockOffsetUs
        while epochStarts.count <= Int(epoch) { epochStarts.append(ledger.count) }
        record(9, UInt64(epoch), 0)
        for input in plan.inputs { feed(input) }
    }
}

import SandhiEngine

// The coordinator: its effects, its crash, and recovery at restart as `SandhiNode.start` does it.
extension SimulatedWorld {
    mutating func feed(_ input: CoordinatorInput) {
        guard coordinatorProcess.up else { return }
        var effects: [CoordinatorEffect] = []
        swap(&effects, &coordinatorEffects)
        effects.removeAll(keepingCapacity: true)
        coordinatorProcess.coordinator.handle(input, nowUs: coordinatorProcess.clock(nowUs), into: &effects)
        defer { swap(&effects, &coordinatorEffects) }
        for effect in effects {
            switch effect {
            case .send(let participant, let message):
                sendToParticipant(indexOf[participant]!, message)
            case .appendDecision(let record, let forced):
                coordinatorProcess.unsynced.append((record, forced))
                if !coordinatorProcess.syncScheduled {
                    coordinatorProcess.syncScheduled = true
                    schedule(.logSync(incarnation: coordinatorProcess.incarnation), afterUs: 50 + random.next() % 300)
                }
            case .setTimer(let timer, let afterUs):
                schedule(.timer(timer, incarnation: coordinatorProcess.incarnation), afterUs: afterUs)
            case .cancelTimer:
                break // a cancelled timer that fires anyway is ignored by its generation
            case .emit(let event):
                if case .voteReceived(let tx, let participant, _, _) = event.kind, let vote = voteInFlight,
                   vote.tx == tx, indexOf[participant] == vote.index, !vote.observed.isEmpty {
                    seen[tx, default: [:]][vote.index] = vote.observed // the vote that counted
                }
                if case .deadlockDetected = event.kind { cases["deadlock", default: 0] += 1 }
                if case .recovered = event.kind { cases["in-doubt resolved by recovery", default: 0] += 1 }
            case .observed:
                break
            case .recordReconciliation:
                break // the simulated coordinator's reconciliation record survives crashes
            case .decided(let tx, let outcome):
                if told[tx] == nil { told[tx] = outcome }
            case .finished:
                break
            case .fatal(let reason):
                crashCoordinator(reason: reason)
                return
            }
        }
    }

    mutating func crashCoordinator(reason: String) {
        guard coordinatorProcess.up else { return }
        injected["coordinator crash", default: 0] += 1
        let states = coordinatorProcess.coordinator.transactions.values.map(\.state)
        let deciding = coordinatorProcess.coordinator.transactions.values.filter { $0.state == .prepared }.map(\.id)
        if deciding.contains(where: { !everDurableCommit.contains($0) }) {
            cases["coordinator crash before the decision is durable", default: 0] += 1
        }
        if deciding.contains(where: { everDurableCommit.contains($0) }) {
            cases["coordinator crash between the durable decision and the first COMMIT", default: 0] += 1
        }
        if states.contains(.committing) { cases["coordinator crash after the decision is durable", default: 0] += 1 }
        if !coordinatorProcess.unsynced.isEmpty { injected["unsynced log records lost", default: 0] += coordinatorProcess.unsynced.count }
        coordinatorProcess.up = false
        coordinatorProcess.incarnation += 1
        coordinatorProcess.unsynced.removeAll()
        coordinatorProcess.syncScheduled = false
        record(8, 0, 0)
        schedule(.restartCoordinator, afterUs: 1_000 + random.next() % 20_000)
    }

    /// A new incarnation with a higher epoch, recovered from the durable log and the banks'
    /// prepared write-sets, exactly as `SandhiNode.start` does.
    mutating func restartCoordinator() {
        let epoch = coordinatorProcess.epoch + 1
        let clockOffsetUs = coordinatorProcess.clockOffsetUs // the machine's clock outlives the process
        coordinatorProcess = CoordinatorProcess(
            coordinator: Coordinator(configuration: Self.coordinatorConfiguration(options),
                                     reconciliation: coordinatorProcess.coordinator.reconciliation, recovering: true), up: true,
            incarnation: coordinatorProcess.incarnation, epoch: epoch)
        coordinatorProcess.clockOffsetUs = clockOffsetUs
        record(9, UInt64(epoch), 0)
        var ended = Set<TransactionID>()
        var commits: [(TransactionID, [ParticipantID])] = []
        for record in durableLog {
            switch record {
            case .commit(let tx, let participants): commits.append((tx, participants))
            case .end(let tx): ended.insert(tx)
            default: break
            }
        }
        var preparedAt: [TransactionID: (participants: [ParticipantID], locks: [ResourceID])] = [:]
        for (index, bank) in banks.enumerated() {
            for (tx, branch) in bank.prepared {
                var entry = preparedAt[tx] ?? (branch.writers.isEmpty ? [names[index]] : branch.writers, [])
                entry.locks += ParticipantProtocol.writtenAccounts(branch.operations).map { ResourceID(participant: names[index], account: $0) }
                preparedAt[tx] = entry
            }
        }
        let committed = Set(commits.map(\.0))
        for (tx, participants) in commits where !ended.contains(tx) || preparedAt[tx] != nil {
            feed(.recoverCommitted(tx, participants: participants, locks: preparedAt[tx]?.locks ?? []))
        }
        for (tx, entry) in preparedAt.sorted(by: { $0.key < $1.key }) where !committed.contains(tx) {
            feed(.recoverInDoubt(tx, participants: entry.participants, locks: entry.locks))
        }
        feed(.recoveryComplete)
    }
}

import SandhiEngine

// The network between the coordinator and the participants: latency, loss, duplication, delay,
// and partitions, each link's two directions cut on their own (see the nemesis).
extension SimulatedWorld {
    mutating func sendToParticipant(_ index: Int, _ message: ParticipantMessage) {
        let kind: MessageKind
        switch message {
        case .prepare: kind = .prepare
        case .commit: kind = .commit
        case .rollback: kind = .rollback
        case .forget: kind = .forget
        }
        deliver(kind, partitioned: banks[index].cutToUntilUs > nowUs) { world, delayUs in
            world.schedule(.toParticipant(index, message), afterUs: delayUs)
        }
    }

    mutating func sendToCoordinator(from index: Int, _ reply: ParticipantReply) {
        let kind: MessageKind
        switch reply {
        case .vote: kind = .vote
        case .acknowledged: kind = .ack
        case .heuristic: kind = .heuristic
        }
        deliver(kind, partitioned: banks[index].cutFromUntilUs > nowUs) { world, delayUs in
            world.schedule(.toCoordinator(index, reply), afterUs: delayUs)
        }
    }

    /// Loses, duplicates or delays one message, by the seed's profile.
    enum MessageKind {
        case prepare, vote, commit, rollback, ack, forget, heuristic
        var lost: FailureCase {
            switch self {
            case .prepare: .lostPrepare
            case .vote: .lostVote
            case .commit: .lostCommit
            case .rollback: .lostRollback
            case .ack: .lostAck
            case .forget: .lostForget
            case .heuristic: .lostHeuristicReport
            }
        }
        var duplicated: FailureCase {
            switch self {
            case .prepare: .duplicatedPrepare
            case .vote: .duplicatedVote
            case .commit: .duplicatedCommit
            case .rollback: .duplicatedRollback
            case .ack: .duplicatedAck
            case .forget: .duplicatedForget
            case .heuristic: .duplicatedHeuristicReport
            }
        }
    }

    mutating func deliver(_ kind: MessageKind, partitioned: Bool, _ enqueue: (inout SimulatedWorld, UInt64) -> Void) {
        let faulty = nowUs < faultsStopAtUs
        if faulty && partitioned {
            cases[kind.lost] += 1
            injected[.messageCut] += 1
            return
        }
        if faulty && chance(faults.lossPerMille) {
            cases[kind.lost] += 1
            injected[.messageLost] += 1
            return
        }
        var delayUs = 20 + random.next() % 200
        if faulty && chance(faults.delayPerMille) {
            delayUs += random.next() % 20_000
            injected[.messageDelayed] += 1
        }
        enqueue(&self, delayUs)
        if faulty && chance(faults.duplicationPerMille) {
            cases[kind.duplicated] += 1
            injected[.messageDuplicated] += 1
            enqueue(&self, delayUs + random.next() % 5_000)
        }
    }
}

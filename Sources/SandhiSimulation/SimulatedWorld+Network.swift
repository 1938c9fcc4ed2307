import SandhiEngine

// The network between the coordinator and the participants: latency, loss, duplication, delay, partitions.
extension SimulatedWorld {
    mutating func sendToParticipant(_ index: Int, _ message: ParticipantMessage) {
        let kind: MessageKind
        switch message {
        case .prepare: kind = .prepare
        case .commit: kind = .commit
        case .rollback: kind = .rollback
        case .forget: kind = .forget
        }
        deliver(kind, partitioned: banks[index].partitionedUntilUs > nowUs) { world, delayUs in
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
        deliver(kind, partitioned: banks[index].partitionedUntilUs > nowUs) { world, delayUs in
            world.schedule(.toCoordinator(index, reply), afterUs: delayUs)
        }
    }

    /// Loses, duplicates or delays one message, by the seed's profile.
    enum MessageKind: String {
        case prepare, vote, commit, rollback, ack, forget, heuristic
        var lost: String {
            switch self {
            case .forget: "lost forget"
            case .heuristic: "lost heuristic report"
            case .prepare: "lost prepare"
            case .vote: "lost vote"
            case .commit: "lost commit"
            case .rollback: "lost rollback"
            case .ack: "lost ack"
            }
        }
        var duplicated: String {
            switch self {
            case .forget: "duplicated forget"
            case .heuristic: "duplicated heuristic report"
            case .prepare: "duplicated prepare"
            case .vote: "duplicated vote"
            case .commit: "duplicated commit"
            case .rollback: "duplicated rollback"
            case .ack: "duplicated ack"
            }
        }
    }

    mutating func deliver(_ kind: MessageKind, partitioned: Bool, _ enqueue: (inout SimulatedWorld, UInt64) -> Void) {
        let faulty = nowUs < faultsStopAtUs
        if faulty && partitioned {
            cases[kind.lost, default: 0] += 1
            injected["message cut by a partition", default: 0] += 1
            return
        }
        if faulty && chance(faults.lossPerMille) {
            cases[kind.lost, default: 0] += 1
            injected["message lost", default: 0] += 1
            return
        }
        var delayUs = 20 + random.next() % 200
        if faulty && chance(faults.delayPerMille) {
            delayUs += random.next() % 20_000
            injected["message delayed", default: 0] += 1
        }
        enqueue(&self, delayUs)
        if faulty && chance(faults.duplicationPerMille) {
            cases[kind.duplicated, default: 0] += 1
            injected["message duplicated", default: 0] += 1
            enqueue(&self, delayUs + random.next() % 5_000)
        }
    }
}

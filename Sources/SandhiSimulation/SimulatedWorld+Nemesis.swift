import SandhiEngine

// The nemesis: process crashes and partitions, drawn per step from the seed's fault profile.
extension SimulatedWorld {
    mutating func nemesis() {
        if chance(faults.participantCrashPerMille) {
            let index = pick(names.count)
            if banks[index].up {
                injected["participant crash", default: 0] += 1
                if banks[index].stagingInFlight > 0 { cases["participant crash before its durable vote", default: 0] += 1 }
                if !banks[index].prepared.isEmpty { cases["participant crash after its durable vote", default: 0] += 1 }
                banks[index].up = false
                banks[index].incarnation += 1
                banks[index].stagingInFlight = 0
                record(10, 0, UInt64(index))
                schedule(.restartParticipant(index), afterUs: 1_000 + random.next() % 20_000)
            }
        }
        if chance(faults.coordinatorCrashPerMille) { crashCoordinator(reason: "crash") }
        if chance(faults.partitionPerMille) {
            let index = pick(names.count)
            banks[index].partitionedUntilUs = nowUs + 1_000 + random.next() % 30_000
            injected["partition", default: 0] += 1
        }
    }
}

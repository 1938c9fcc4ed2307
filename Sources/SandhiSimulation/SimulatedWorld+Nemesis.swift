import SandhiEngine

// The nemesis: process crashes and partitions, drawn per step from the seed's fault profile.
extension SimulatedWorld {
    mutating func nemesis() {
        if chance(faults.participantCrashPerMille) {
            let index = pick(names.count)
            if banks[index].up {
                injected["participant crash", default: 0] += 1
                if banks[index].stagingInFlight > 0 { cases["participant crash before its durable vote", default: 0] += 1 }
                if banks[index].repliesInFlight > 0 { cases["participant crash between a durable reply and sending it", default: 0] += 1 }
                if !banks[index].prepared.isEmpty { cases["participant crash after its durable vote", default: 0] += 1 }
                banks[index].up = false
                banks[index].incarnation += 1
                banks[index].stagingInFlight = 0
                banks[index].repliesInFlight = 0
                record(10, 0, UInt64(index))
                schedule(.restartParticipant(index), afterUs: 1_000 + random.next() % 20_000)
            }
        }
        if chance(faults.coordinatorCrashPerMille) { crashCoordinator(reason: "crash") }
        if chance(faults.clockJumpPerMille) {
            coordinatorProcess.clockOffsetUs += Int64(random.next() % 200_001) - 100_000
            injected["coordinator clock jump", default: 0] += 1
        }
        if chance(faults.partitionPerMille) {
            // One participant cut off, or half of them (the coordinator's side keeps the rest).
            let untilUs = nowUs + 1_000 + random.next() % 30_000
            if random.next() % 2 == 0 {
                banks[pick(names.count)].partitionedUntilUs = untilUs
                injected["partition of one participant", default: 0] += 1
            } else {
                var cut = Array(names.indices)
                for _ in 0..<(names.count - names.count / 2) { cut.remove(at: pick(cut.count)) }
                for index in cut { banks[index].partitionedUntilUs = untilUs }
                injected["partition of half the participants", default: 0] += 1
            }
        }
    }
}

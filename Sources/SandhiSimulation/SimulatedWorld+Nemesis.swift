import SandhiEngine

// The nemesis: process crashes, clock jumps and partitions, drawn per step from the seed's
// fault profile (disk faults strike where the disk is used: SimulatedWorld+Disk.swift and the
// `logSync` and `staged` events; message faults where a message is sent: +Network.swift).
//
// Partitions, and what a bridge is in a star. Jepsen's partitions say which nodes see which:
// halves, a node cut off, a ring, and the bridge (two halves that see each other only through
// one node both can reach). Sandhi's topology is a star: clients reach only the coordinator,
// and every message is between the coordinator and one participant; participants never talk
// to each other. So every path between two nodes already runs through the coordinator, which
// is therefore the bridge node of any split, and a partition is fully described by which
// coordinator-participant links work, in which direction. The kinds drawn here:
//
//   one participant cut off       both directions of one link, for 1 to 31 ms
//   half the participants         both directions of half the links (the coordinator's side
//                                 keeps the rest): the classic halves
//   one-way cut                   one direction of one link: the coordinator's messages reach
//                                 the participant and its replies do not (it prepares, its vote
//                                 vanishes, it holds locks), or the reverse (its votes and
//                                 inquiries are counted; COMMIT and ROLLBACK never arrive)
//   bridge                        the participants split in halves; the near half keeps both
//                                 directions, the far half keeps one (drawn): the halves see
//                                 each other only through a bridge that carries traffic one
//                                 way, the star's version of Jepsen's bridge, and the case a
//                                 symmetric partition never produces (a half that is heard but
//                                 cannot hear, or hears but is not heard)
//
// Each kind is counted in `injected` by name; messages a cut drops count as "message cut by a
// partition" and as the lost-message case of their kind.
extension SimulatedWorld {
    mutating func nemesis() {
        if chance(faults.participantCrashPerMille) { crashParticipant(pick(names.count)) }
        if chance(faults.coordinatorCrashPerMille) { crashCoordinator(reason: "crash") }
        if chance(faults.clockJumpPerMille) {
            coordinatorProcess.clockOffsetUs += Int64(random.next() % 200_001) - 100_000
            injected[.clockJump] += 1
        }
        if chance(faults.partitionPerMille) {
            let untilUs = nowUs + 1_000 + random.next() % 30_000
            if random.next() % 2 == 0 {
                cut(pick(names.count), toParticipant: true, toCoordinator: true, untilUs: untilUs)
                injected[.partitionOfOne] += 1
            } else {
                for index in randomHalf() { cut(index, toParticipant: true, toCoordinator: true, untilUs: untilUs) }
                injected[.partitionOfHalf] += 1
            }
        }
        if chance(faults.oneWayCutPerMille) {
            let untilUs = nowUs + 1_000 + random.next() % 30_000
            let toParticipant = random.next() % 2 == 0
            cut(pick(names.count), toParticipant: toParticipant, toCoordinator: !toParticipant, untilUs: untilUs)
            injected[toParticipant ? .oneWayCutToParticipant : .oneWayCutToCoordinator] += 1
        }
        if chance(faults.bridgePerMille) {
            let untilUs = nowUs + 1_000 + random.next() % 30_000
            let toParticipant = random.next() % 2 == 0
            for index in randomHalf() { cut(index, toParticipant: toParticipant, toCoordinator: !toParticipant, untilUs: untilUs) }
            injected[.bridge] += 1
        }
    }

    /// Cuts the chosen directions of one coordinator-participant link until `untilUs`.
    mutating func cut(_ index: Int, toParticipant: Bool, toCoordinator: Bool, untilUs: UInt64) {
        if toParticipant { banks[index].cutToUntilUs = max(banks[index].cutToUntilUs, untilUs) }
        if toCoordinator { banks[index].cutFromUntilUs = max(banks[index].cutFromUntilUs, untilUs) }
    }

    /// Half the participants (the smaller half when their number is odd), drawn from the seed.
    mutating func randomHalf() -> [Int] {
        var cut = Array(names.indices)
        for _ in 0..<(names.count - names.count / 2) { cut.remove(at: pick(cut.count)) }
        return cut
    }
}

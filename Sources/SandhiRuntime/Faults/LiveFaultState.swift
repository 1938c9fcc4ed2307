import DequeModule
import SandhiEngine

/// What the live faults in force do to the driver's messages: which participants are down or
/// cut off, and what the links to the others lose or hold back. Part of the driver's state,
/// under its lock: every send is routed in the order the coordinator made it, so a fault takes
/// effect between two messages, never within one.
///
/// Delayed messages wait here, per participant, in the order they were sent; each one's due
/// time is at least the one before it's, so a delay that shrinks (or ends) never lets a later
/// message overtake an earlier one on the same link.
struct LiveFaultState {
    /// Any fault that touches messages is in force (or a delay still holds some): sends and
    /// replies take the slow path. With none this flag is the whole cost of live faults.
    private(set) var engaged = false
    private(set) var crashed: Set<ParticipantID> = []
    private(set) var partitioned: Set<ParticipantID> = []
    private(set) var dropPerMille: [ParticipantID: UInt32] = [:]
    private(set) var delayMs: [ParticipantID: UInt64] = [:]
    /// The decision log's next fsync was made to fail; listed until this incarnation ends.
    var logSyncFailureArmed = false
    var coordinatorCrashed = false
    /// Fires when a delayed message is due; made with the first delay.
    var delayTimers: TimerService<UInt64>?
    private var delayed: [ParticipantID: Deque<Delayed>] = [:]
    private var delayedCount = 0
    private var nextTicket: UInt64 = 0
    /// Which messages a loss takes. Seeded: live faults need no reproducibility, but the driver
    /// reads no entropy it does not need.
    private var random = SplitMix64(seed: 0x4C49_5645_4641_554C)
    private(set) var counters = LiveFaultCounters()
    /// Messages held by delays, at most, across participants; more are lost (a timer re-sends
    /// or a deadline aborts).
    let maxDelayed: Int

    private struct Delayed {
        var dueUs: UInt64
        var message: ParticipantMessage
    }

    init(maxDelayed: Int = 65_536) {
        precondition(maxDelayed > 0)
        self.maxDelayed = maxDelayed
    }

    enum Route {
        case deliver
        case lost
        /// Held: schedule `ticket` on `delayTimers` to fire after `afterUs`.
        case delayed(ticket: UInt64, afterUs: UInt64)
    }

    /// What happens to `message` sent to `participant` now.
    mutating func route(_ message: ParticipantMessage, to participant: ParticipantID, nowUs: UInt64) -> Route {
        if isCut(participant) || dropPerMille[participant].map({ random.next() % 1_000 < UInt64($0) }) == true {
            counters.lost += 1
            return .lost
        }
        guard let delayMs = delayMs[participant] else { return .deliver }
        guard delayedCount < maxDelayed else {
            counters.lost += 1
            return .lost
        }
        let dueUs = max(nowUs + delayMs * 1_000, delayed[participant]?.last?.dueUs ?? 0)
        delayed[participant, default: []].append(Delayed(dueUs: dueUs, message: message))
        delayedCount += 1
        counters.delayed += 1
        nextTicket += 1
        return .delayed(ticket: nextTicket, afterUs: dueUs - nowUs)
    }

    /// Whether a reply from `participant` is lost: a partition cuts both directions.
    mutating func losesReply(from participant: ParticipantID) -> Bool {
        guard partitioned.contains(participant) else { return false }
        counters.lost += 1
        return true
    }

    /// Delayed messages due by `nowUs`, in the order sent, without those whose participant is
    /// now down or cut off (in flight when that happened: lost).
    mutating func takeDue(nowUs: UInt64) -> [(ParticipantID, ParticipantMessage)] {
        var due: [(ParticipantID, ParticipantMessage)] = []
        for participant in delayed.keys.sorted() {
            while let first = delayed[participant]?.first, first.dueUs <= nowUs {
                delayed[participant]!.removeFirst()
                delayedCount -= 1
                if isCut(participant) { counters.lost += 1 } else { due.append((participant, first.message)) }
            }
            if delayed[participant]?.isEmpty == true { delayed[participant] = nil }
        }
        update()
        return due
    }

    // MARK: - Changes (those that end a delay return what it held, to deliver at once)

    mutating func crash(_ participant: ParticipantID) {
        crashed.insert(participant)
        update()
    }

    mutating func restart(_ participant: ParticipantID) {
        crashed.remove(participant)
        update()
    }

    mutating func partition(_ participant: ParticipantID) {
        partitioned.insert(participant)
        update()
    }

    mutating func setDrop(_ participant: ParticipantID, perMille: UInt32) {
        dropPerMille[participant] = perMille == 0 ? nil : perMille
        update()
    }

    mutating func setDelay(_ participant: ParticipantID, delayMs: UInt64) -> [ParticipantMessage] {
        self.delayMs[participant] = delayMs == 0 ? nil : delayMs
        update()
        return delayMs == 0 ? release(participant) : []
    }

    /// Ends partition, loss and delay on `participant`'s link.
    mutating func heal(_ participant: ParticipantID) -> [ParticipantMessage] {
        partitioned.remove(participant)
        dropPerMille[participant] = nil
        delayMs[participant] = nil
        return release(participant)
    }

    func hasLinkFault(_ participant: ParticipantID) -> Bool {
        partitioned.contains(participant) || dropPerMille[participant] != nil || delayMs[participant] != nil
    }

    /// Participants with a partition, loss or delay, in name order.
    var faultyLinks: [ParticipantID] {
        Set(partitioned).union(dropPerMille.keys).union(delayMs.keys).sorted()
    }

    /// Every fault in force, participants' in name order: the console's header.
    var active: [LiveFault] {
        var faults: [LiveFault] = []
        if coordinatorCrashed { faults.append(.crashCoordinator) }
        if logSyncFailureArmed { faults.append(.failNextLogSync) }
        let named = crashed.union(partitioned).union(dropPerMille.keys).union(delayMs.keys)
        for participant in named.sorted() {
            if crashed.contains(participant) { faults.append(.crashParticipant(participant)) }
            if partitioned.contains(participant) { faults.append(.partition(participant)) }
            if let perMille = dropPerMille[participant] { faults.append(.dropMessages(participant, perMille: perMille)) }
            if let delayMs = delayMs[participant] { faults.append(.delayMessages(participant, delayMs: delayMs)) }
        }
        return faults
    }

    private func isCut(_ participant: ParticipantID) -> Bool {
        crashed.contains(participant) || partitioned.contains(participant)
    }

    /// Everything a delay holds for `participant`, in order, now: its delay ended, and a later
    /// message must not overtake them. Lost instead if the participant is down or cut off.
    private mutating func release(_ participant: ParticipantID) -> [ParticipantMessage] {
        let held = delayed.removeValue(forKey: participant) ?? []
        delayedCount -= held.count
        update()
        if isCut(participant) {
            counters.lost += held.count
            return []
        }
        return held.map(\.message)
    }

    private mutating func update() {
        engaged = !crashed.isEmpty || !partitioned.isEmpty || !dropPerMille.isEmpty || !delayMs.isEmpty || delayedCount > 0
    }
}

/// What the live faults have done to messages so far.
public struct LiveFaultCounters: Sendable, Equatable {
    /// To a participant down or cut off, lost at random, or a reply cut by a partition.
    public var lost = 0
    /// Held by a delay.
    public var delayed = 0
}

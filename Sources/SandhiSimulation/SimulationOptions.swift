import SandhiEngine

/// How often each fault strikes, in events per thousand opportunities. A seed draws its own
/// profile (`drawn(from:)`), so across many seeds every mix is tried: some seeds are calm, some
/// lose a message in five, some crash the coordinator again and again.
public struct FaultProfile: Sendable, Hashable, Codable {
    /// Per message sent.
    public var lossPerMille: UInt64 = 0
    public var duplicationPerMille: UInt64 = 0
    /// An extra delay of up to 20 ms, which reorders messages.
    public var delayPerMille: UInt64 = 0
    /// Per step of the simulation.
    public var participantCrashPerMille: UInt64 = 0
    public var coordinatorCrashPerMille: UInt64 = 0
    /// One participant, or half of them, cut off from the coordinator for a while.
    public var partitionPerMille: UInt64 = 0
    /// One link cut in one direction only: the coordinator's messages reach a participant but
    /// its replies do not, or the other way round.
    public var oneWayCutPerMille: UInt64 = 0
    /// The bridge: the participants split in two halves, one cut off one way only (see the
    /// nemesis file for why that is a bridge in a star).
    public var bridgePerMille: UInt64 = 0
    /// Per decision-log sync: the fsync fails; what it was to make durable may or may not reach
    /// the disk (fsyncgate), so the coordinator halts and recovery decides.
    public var logSyncFailurePerMille: UInt64 = 0
    /// Per coordinator crash (of its machine) with unsynced log bytes: the unsynced sectors
    /// land each or not, or all but the first (pages landing out of order), rather than all or
    /// none: a record that spans two sectors is torn.
    public var logTornWritePerMille: UInt64 = 0
    /// Per decision-log sync: the disk is slow, the fsync takes 2 to 10 ms instead of 50 to
    /// 350 µs, and more records pile up unsynced behind it (for a crash to tear).
    public var slowLogSyncPerMille: UInt64 = 0
    /// Per participant prepare persist: its fsync fails. The participant stops without voting
    /// (as the real worker does); the write, acknowledged only by the page cache, is gone.
    public var participantSyncFailurePerMille: UInt64 = 0
    /// Per participant crash while a prepare persist is in flight: a prefix of that write-set's
    /// bytes lands, torn; recovery must drop it whole.
    public var participantTornWritePerMille: UInt64 = 0
    /// Per step: the coordinator's clock jumps by up to 100 ms, forwards or backwards.
    public var clockJumpPerMille: UInt64 = 0
    /// Per cancelled timer that comes due: it fires anyway (its cancel lost the race with the
    /// timer thread), and the coordinator must see that it is stale.
    public var staleTimerPerMille: UInt64 = 0
    /// While faults strike, a bank decides a branch alone (commit or rollback, a coin from the
    /// seed) once it has been prepared this many milliseconds of virtual time, as a resource
    /// manager with a heuristic policy does when its coordinator is slow, cut off or down: drawn
    /// from 7 to 27 ms, so that one lost COMMIT (resent after 5 ms) is mostly retried in time and
    /// a partition, a crashed coordinator (back after up to 21 ms) or repeated losses are not;
    /// 0: never.
    public var heuristicAfterMs: UInt64 = 0

    public init() {}

    public static let none = FaultProfile()

    /// A profile drawn from the seed's generator: each fault is off in about a third of seeds.
    public static func drawn(from random: inout SplitMix64) -> FaultProfile {
        func draw(_ maximum: UInt64) -> UInt64 {
            random.next() % 3 == 0 ? 0 : random.next() % (maximum + 1)
        }
        var profile = FaultProfile()
        profile.lossPerMille = draw(80)
        profile.duplicationPerMille = draw(60)
        profile.delayPerMille = draw(150)
        profile.participantCrashPerMille = draw(8)
        profile.coordinatorCrashPerMille = draw(4)
        profile.partitionPerMille = draw(4)
        profile.logSyncFailurePerMille = draw(30)
        profile.clockJumpPerMille = draw(5)
        // Drawn after the first eight so that those stay what a seed drew before these existed.
        profile.oneWayCutPerMille = draw(4)
        profile.bridgePerMille = draw(3)
        profile.logTornWritePerMille = draw(1_000)
        profile.participantSyncFailurePerMille = draw(20)
        profile.participantTornWritePerMille = draw(1_000)
        profile.staleTimerPerMille = draw(300)
        profile.heuristicAfterMs = random.next() % 3 == 0 ? 0 : 7 + random.next() % 21
        profile.slowLogSyncPerMille = draw(500)
        return profile
    }
}

/// Known bugs the simulator can plant, to prove that its checks fail when they must. The engine's
/// own (`PlantedBug`): commit-before-durable, skip-resend, no-locks and ignore-heuristics; the
/// others are mutations of the shipped bank, or of how the simulator drives the shipped log
/// writer and bank recovery.
public enum SimulationBug: String, Sendable, Hashable, CaseIterable, Codable {
    case commitBeforeDurable = "commit-before-durable"
    case skipResend = "skip-resend"
    case noLocks = "no-locks"
    /// A participant restarts without its prepared write-sets: it forgets what it promised.
    case forgetPreparedOnRestart = "forget-prepared-on-restart"
    /// A participant whose fsync failed retries it (`SQLiteBank.plantedRetryAfterFailedSync`),
    /// which succeeds (the kernel marked the dirty pages clean: fsyncgate), and votes YES for a
    /// write-set that is not on the disk.
    case voteAfterFailedFsync = "vote-after-failed-fsync"
    /// The decision log's writer, its fsync failed, retries; the retry succeeds (nothing is
    /// dirty any more) and it reports the batch durable. The bytes are gone.
    case durableAfterFailedLogFsync = "durable-after-failed-log-fsync"
    /// The coordinator takes every heuristic report as agreeing with its decision: a mixed
    /// outcome is forgotten at the participant and never reaches the reconciliation queue.
    case ignoreHeuristics = "ignore-heuristics"

    var engineBug: PlantedBug? {
        switch self {
        case .commitBeforeDurable: return .commitBeforeDurable
        case .skipResend: return .skipResend
        case .noLocks: return .noLocks
        case .ignoreHeuristics: return .ignoreHeuristics
        case .forgetPreparedOnRestart, .voteAfterFailedFsync, .durableAfterFailedLogFsync: return nil
        }
    }
}

public struct SimulationOptions: Sendable {
    public var seed: UInt64
    /// Transfers submitted over the run.
    public var transactions = 30
    public var participants = 4
    public var accountsPerParticipant = 5
    public var openingBalance: Int64 = 10_000
    /// nil: drawn from the seed.
    public var faults: FaultProfile?
    public var bug: SimulationBug?
    /// Virtual time allowed, once faults stop, for everything to finish (liveness).
    public var settleLimitUs: UInt64 = 60_000_000
    /// How many of the last trace entries a report keeps.
    public var traceTail = 40
    /// Whether a run that passed renders its trace tail too (a range of seeds wants only the
    /// failures'; rendering costs more than some runs).
    public var traceTailOfPassingRuns = true

    public init(seed: UInt64) {
        self.seed = seed
    }
}

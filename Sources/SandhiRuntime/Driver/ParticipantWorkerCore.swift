import Logging
import SandhiEngine
import SandhiIO
import SandhiParticipants

/// What a participant's worker decides, without its thread: when a batch is stored, when the
/// replies it made are synced and delivered, when to ask about branches left prepared, when
/// to let the resource sweep, what a failed batch or a failed fsync means. The worker's thread
/// (`ParticipantWorker`) drives it in production; the simulator drives the same core from its
/// events on virtual time, over the same resource (a `SQLiteBank` on a simulated disk). Only
/// the waiting is the driver's.
///
///   wait ──(messages, or waitUs elapsed)──▶ store ──syncDue──▶ sync ──▶ deliver ──▶ wait
///                                             │                  │
///                                             └──not due─────────┼──▶ wait (replies held)
///                                                                └──failed──▶ failed (for good)
///
/// Transitions:
///   store(batch)   the batch is processed in one storage commit (or, if it fails, message by
///                  message); its replies are held. Inquiries and a sweep run when due.
///   syncDue        a vote is held (on its transaction's critical path), or the driver found
///                  nothing to do (quiet: do not sit on acknowledgements), or the oldest held
///                  reply waited `lazySyncUs`, or `maxHeldReplies` are held
///   sync           one `makeDurable` for everything held: the replies may now be sent
///   failed         a failed fsync: durability is unknown, so nothing held or later leaves
///   crash          the process dies: held replies never leave
///   restarted      a new incarnation over storage opened again: YES again for every branch
///                  it restored (a vote lost with the crash may be the one its transaction
///                  waits for), synced at once
///
/// The policy (see also `ParticipantWorker`): a batch with a PREPARE is synced at once; a
/// batch of only COMMITs and ROLLBACKs is committed but not synced, its acknowledgements
/// riding on the next batch's fsync, or on one of their own once the oldest has waited
/// `lazySyncUs`. An acknowledgement is never sent before its effect is durable either way.
public struct ParticipantWorkerCore {
    public struct Configuration: Sendable {
        /// How long an acknowledgement may wait for a shared fsync.
        public var lazySyncUs: UInt64
        /// How often branches that stay prepared are asked about (once `inquiring`).
        public var inquiryIntervalUs: UInt64
        /// How often a resource that asks for it (`needsSweep`) sweeps.
        public var sweepIntervalUs: UInt64
        /// Replies held for a shared fsync, at most; more are synced at once.
        public var maxHeldReplies: Int

        public init(lazySyncUs: UInt64 = 2_000, inquiryIntervalUs: UInt64 = 500_000, sweepIntervalUs: UInt64 = 250_000,
                    maxHeldReplies: Int = 4_096) {
            precondition(inquiryIntervalUs > 0 && sweepIntervalUs > 0 && maxHeldReplies > 0)
            self.lazySyncUs = lazySyncUs
            self.inquiryIntervalUs = inquiryIntervalUs
            self.sweepIntervalUs = sweepIntervalUs
            self.maxHeldReplies = maxHeldReplies
        }
    }

    public struct Stats: Sendable {
        public var batches = 0, messages = 0, syncs = 0
        /// Moving averages (weight 1/8 on the newest) of storing one batch and of one fsync:
        /// what a message waits here once it is taken, for the console's participant view.
        public var recentBatchUs: UInt64 = 0, recentSyncUs: UInt64 = 0
        /// Set when an fsync failed: durability is unknown, so this participant stops.
        public var failed: String?
        /// Messages that failed even alone, after their batch failed (see `store`).
        public var isolatedFailures = 0

        public init() {}
    }

    /// What a sync did.
    public enum SyncOutcome {
        /// Durable: send these.
        case deliver([(ParticipantID, ParticipantReply)])
        /// The fsync failed: the participant is stopped for good, and must restart.
        case failed(String)
    }

    public let id: ParticipantID
    public let configuration: Configuration
    public private(set) var stats = Stats()
    /// Ask about branches that stay prepared (set by the driver after the first fault).
    public var inquiring = false
    /// Recovery has delivered its decisions: the resource may now decide alone.
    public var sweepsAllowed = false

    private let clocks: Clocks
    private let logger: Logger
    /// Replies of stored batches not yet synced, and when the oldest was stored.
    private var held: [(ParticipantID, ParticipantReply)] = []
    private var heldSinceUs: UInt64 = 0
    private var inquiry = Inquiry()
    private var nextSweepUs: UInt64 = 0

    /// - Parameter stats: where the counts start (a restarted worker's carry on from its last
    ///   incarnation's, less its failure).
    public init(id: ParticipantID, configuration: Configuration = Configuration(), clocks: Clocks = .system, logger: Logger,
                stats: Stats = Stats()) {
        self.id = id
        self.stats = stats
        self.stats.failed = nil
        self.configuration = configuration
        self.clocks = clocks
        self.logger = logger
        held.reserveCapacity(64)
    }

    public var failed: Bool { stats.failed != nil }
    /// Replies stored and waiting for a sync.
    public var heldCount: Int { held.count }
    public var heldReplies: [(ParticipantID, ParticipantReply)] { held }
    /// Whether a held reply is a vote (a crash now loses a vote made but not sent).
    public var holdsVote: Bool { held.contains { if case .vote = $0.1 { true } else { false } } }

    /// How long the driver may wait for messages before this core has work due; nil: until a
    /// message comes.
    public func waitUs(_ resource: ParticipantResource) -> UInt64? {
        // Failed for good: nothing is due any more (its timers no longer advance).
        guard !failed else { return nil }
        let sweeping = resource.needsSweep && sweepsAllowed
        // Nothing prepared, nothing to ask about: a branch prepared later comes in a batch,
        // whose round looks again.
        let asking = inquiring && resource.hasInDoubt
        guard !held.isEmpty || asking || sweeping else { return nil }
        let nowUs = clocks.monotonicUs()
        var waitUs = UInt64.max
        if !held.isEmpty {
            let waitedUs = nowUs &- heldSinceUs
            waitUs = waitedUs < configuration.lazySyncUs ? configuration.lazySyncUs - waitedUs : 0
        }
        if asking { waitUs = min(waitUs, inquiry.nextUs > nowUs ? inquiry.nextUs - nowUs : 0) }
        if sweeping { waitUs = min(waitUs, nextSweepUs > nowUs ? nextSweepUs - nowUs : 0) }
        return waitUs
    }

    /// A new incarnation over `resource` (storage opened again): YES again for every branch it
    /// restored. Returns whether a sync is due.
    public mutating func restarted(_ resource: ParticipantResource) -> Bool {
        held.removeAll()
        for tx in resource.inDoubt().keys.sorted() { held.append((id, .vote(tx, .yes))) }
        heldSinceUs = clocks.monotonicUs()
        return !held.isEmpty
    }

    /// One round after the driver's wait: stores `batch` (empty if the wait ran out), asks
    /// about branches left prepared and sweeps when those are due. Returns whether the held
    /// replies are due for a sync.
    public mutating func store(_ batch: [ParticipantMessage], _ resource: ParticipantResource) -> Bool {
        let nowUs = clocks.monotonicUs()
        if held.isEmpty { heldSinceUs = nowUs }
        // Quiet (or closing) with acknowledgements held, or they have waited long enough.
        var urgent = batch.isEmpty || nowUs &- heldSinceUs >= configuration.lazySyncUs
        if !batch.isEmpty && !failed {
            let replies = process(batch, resource)
            let storedUs = clocks.monotonicUs() &- nowUs
            stats.batches += 1
            stats.messages += batch.count
            stats.recentBatchUs = Self.movingAverage(stats.recentBatchUs, storedUs)
            for reply in replies {
                if case .vote = reply { urgent = true }
                held.append((id, reply))
            }
        }
        if inquiring && nowUs >= inquiry.nextUs && !failed {
            let stale = inquiry.tick(prepared: resource.inDoubt().keys, nowUs: nowUs, intervalUs: configuration.inquiryIntervalUs)
            for tx in stale { held.append((id, .vote(tx, .yes))) }
            if !stale.isEmpty { urgent = true }
        }
        if resource.needsSweep && sweepsAllowed && nowUs >= nextSweepUs && !failed {
            nextSweepUs = nowUs + configuration.sweepIntervalUs
            do {
                let replies = try resource.sweep()
                if !replies.isEmpty { urgent = true }
                for reply in replies { held.append((id, reply)) }
            } catch {
                logger.error("participant sweep failed", metadata: ["participant": "\(id)", "error": "\(error)"])
            }
        }
        return (urgent || held.count >= configuration.maxHeldReplies) && !held.isEmpty
    }

    /// Makes everything held durable with one fsync.
    public mutating func sync(_ resource: ParticipantResource) -> SyncOutcome {
        let startedUs = clocks.monotonicUs()
        do {
            try resource.makeDurable()
        } catch {
            // fsyncgate: after a failed fsync the kernel may have dropped the dirty pages, so
            // nothing committed since the last good sync can be vouched for. Stop answering;
            // recovery after a restart settles every branch from what is really on disk.
            logger.critical("participant fsync failed; participant stopped", metadata: ["participant": "\(id)", "error": "\(error)"])
            stats.failed = "\(error)"
            held.removeAll()
            return .failed("participant \(id) failed to sync: \(error)")
        }
        return delivered(startedUs)
    }

    private mutating func delivered(_ startedUs: UInt64) -> SyncOutcome {
        stats.syncs += 1
        stats.recentSyncUs = Self.movingAverage(stats.recentSyncUs, clocks.monotonicUs() &- startedUs)
        defer { held.removeAll(keepingCapacity: true) }
        return .deliver(held)
    }

    /// The process dies: nothing held leaves. (Storage keeps what it committed, as the disk has it.)
    public mutating func crash() {
        held.removeAll()
    }

    /// Stores a batch, or, if it fails, each of its messages alone: the replies of whatever
    /// succeeded. A failure changes nothing (the resource reloaded itself from storage), and a
    /// message without a reply is covered by the coordinator's deadline or resend. So one
    /// message that fails every time (a COMMIT whose account an outside writer changed under
    /// it, a write-set row gone) does not fail every batch it lands in and stop the bank.
    private mutating func process(_ batch: [ParticipantMessage], _ resource: ParticipantResource) -> [ParticipantReply] {
        do {
            return try resource.process(batch)
        } catch {
            logger.error("participant batch failed", metadata: ["participant": "\(id)", "messages": "\(batch.count)", "error": "\(error)"])
            guard batch.count > 1 else {
                stats.isolatedFailures += 1
                return []
            }
        }
        var replies: [ParticipantReply] = []
        for message in batch {
            do {
                replies += try resource.process([message])
            } catch {
                stats.isolatedFailures += 1
                logger.error("participant message failed alone; the rest of its batch went on without it",
                             metadata: ["participant": "\(id)", "message": "\(message)", "error": "\(error)"])
            }
        }
        return replies
    }

    static func movingAverage(_ average: UInt64, _ sample: UInt64) -> UInt64 {
        average == 0 ? sample : average - average / 8 + sample / 8
    }

    /// Which prepared branches to ask about: those prepared at two inquiries in a row, so a
    /// branch is asked about only once it has waited at least an interval (a branch on its way
    /// to its outcome is not). Bounded by the resource's prepared branches.
    private struct Inquiry {
        var nextUs: UInt64 = 0
        var lastPrepared: Set<TransactionID> = []

        mutating func tick(prepared: some Collection<TransactionID>, nowUs: UInt64, intervalUs: UInt64) -> [TransactionID] {
            let current = Set(prepared)
            let stale = current.intersection(lastPrepared).sorted()
            lastPrepared = current
            nextUs = nowUs + intervalUs
            return stale
        }
    }
}

import Logging
import SandhiEngine
import SandhiParticipants
import Synchronization

/// One thread per participant. It drains every message queued for its resource into one batch
/// (one storage commit), and makes batches durable with one fsync before it delivers their
/// replies: group commit without a timer, since messages that arrive during an fsync form the
/// next batch.
///
/// The disk's flush rate is what a two-phase commit spends, so the worker spends it only where
/// someone waits on it. A batch with a PREPARE is synced at once: a vote is on the critical path
/// of its transaction. A batch of only COMMITs and ROLLBACKs is committed but not synced: its
/// acknowledgements ride on the next batch's fsync (there is one within `lazySyncUs` under
/// load), or on an fsync of their own once the oldest has waited `lazySyncUs`. An
/// acknowledgement is never sent before its effect is durable either way; it only waits a
/// little for company, and never longer than `lazySyncUs`.
///
/// A failed fsync stops the participant for good (durability is unknown) and tells the driver
/// through `onFailure`, which halts the coordinator: the process must restart and recover.
final class ParticipantWorker: @unchecked Sendable {
    let id: ParticipantID
    private let resource: ParticipantResource
    private let queue: BlockingQueue<ParticipantMessage>
    private let deliver: @Sendable ([(ParticipantID, ParticipantReply)]) -> Void
    private let onFailure: @Sendable (String) -> Void
    private let logger: Logger
    private let lazySyncUs: UInt64
    private let stoppedSignal = BlockingQueue<Bool>(capacity: 1)
    private struct Stats {
        var batches = 0, messages = 0, syncs = 0
        /// Set when an fsync failed: durability is unknown, so this participant stops.
        var failed: String?
    }
    private let stats = Mutex(Stats())
    private let stopRequested = Mutex(false)

    /// Replies held for a shared fsync, at most; more are synced at once.
    static let maxHeldReplies = 4_096
    /// How often a resource that asks for it (`needsSweep`) decides overdue branches alone and
    /// reports its heuristic decisions again.
    static let sweepIntervalUs: UInt64 = 250_000

    init(resource: ParticipantResource, capacity: Int, lazySyncUs: UInt64 = 2_000, logger: Logger,
         onFailure: @escaping @Sendable (String) -> Void = { _ in },
         deliver: @escaping @Sendable ([(ParticipantID, ParticipantReply)]) -> Void) {
        self.id = resource.id
        self.resource = resource
        self.queue = BlockingQueue(capacity: capacity)
        self.deliver = deliver
        self.onFailure = onFailure
        self.logger = logger
        self.lazySyncUs = lazySyncUs
        startThread(name: "sandhi-\(resource.id.name)") { [self] in run() }
    }

    /// Queues without blocking and wakes the worker if it sleeps.
    func send(_ message: ParticipantMessage) {
        if enqueue(message) { wake() }
    }

    /// Queues without blocking (the caller holds the driver's lock, which this worker's thread
    /// needs to deliver). A full queue drops the message: every message is re-sent by a
    /// coordinator timer, or its transaction aborts at the prepare deadline. Returns whether the
    /// worker may be asleep on an empty queue: the caller must then `wake` it, after releasing
    /// its lock.
    func enqueue(_ message: ParticipantMessage) -> Bool {
        switch queue.tryPushWithoutWaking(message) {
        case .refused:
            logger.warning("participant queue full; message dropped for a later resend", metadata: ["participant": "\(id)"])
            return false
        case .queued(let wasEmpty):
            return wasEmpty
        }
    }

    /// Wakes the worker if it sleeps on its queue.
    func wake() {
        queue.wakeConsumer()
    }

    var batches: Int { stats.withLock { $0.batches } }
    var messages: Int { stats.withLock { $0.messages } }
    var syncs: Int { stats.withLock { $0.syncs } }
    var failure: String? { stats.withLock { $0.failed } }

    /// Finishes what is queued (processed and synced), stops the thread, closes the resource.
    func stop() {
        guard !stopRequested.withLock({ let was = $0; $0 = true; return was }) else { return }
        queue.close()
        var ignored: [Bool] = []
        stoppedSignal.drain(into: &ignored)
        resource.close()
    }

    private func run() {
        var batch: [ParticipantMessage] = []
        /// Replies of batches committed but not yet synced, and when the oldest was committed.
        var held: [(ParticipantID, ParticipantReply)] = []
        var heldSinceUs: UInt64 = 0
        var nextSweepUs: UInt64 = 0
        var open = true
        while open {
            if held.isEmpty && resource.needsSweep {
                open = queue.drain(into: &batch, timeoutUs: Self.sweepIntervalUs)
            } else if held.isEmpty {
                queue.drain(into: &batch)
                open = !batch.isEmpty
            } else {
                let waitedUs = MonotonicClock.nowUs() &- heldSinceUs
                open = queue.drain(into: &batch, timeoutUs: waitedUs < lazySyncUs ? lazySyncUs - waitedUs : 0)
            }
            let nowUs = MonotonicClock.nowUs()
            if held.isEmpty { heldSinceUs = nowUs }
            // Quiet (or closing) with acknowledgements held, or they have waited long enough.
            var urgent = batch.isEmpty || nowUs &- heldSinceUs >= lazySyncUs
            if !batch.isEmpty && stats.withLock({ $0.failed }) == nil {
                do {
                    let replies = try resource.process(batch)
                    stats.withLock { $0.batches += 1; $0.messages += batch.count }
                    for reply in replies {
                        if case .vote = reply { urgent = true }
                        held.append((id, reply))
                    }
                } catch {
                    // Nothing of the batch was applied and the resource reloaded itself from
                    // storage. No reply goes out: the coordinator's deadline or resend covers it.
                    logger.error("participant batch failed", metadata: ["participant": "\(id)", "messages": "\(batch.count)", "error": "\(error)"])
                }
            }
            if resource.needsSweep && nowUs >= nextSweepUs && stats.withLock({ $0.failed }) == nil {
                nextSweepUs = nowUs + Self.sweepIntervalUs
                do {
                    let replies = try resource.sweep()
                    if !replies.isEmpty { urgent = true }
                    for reply in replies { held.append((id, reply)) }
                } catch {
                    logger.error("participant sweep failed", metadata: ["participant": "\(id)", "error": "\(error)"])
                }
            }
            if (urgent || held.count >= Self.maxHeldReplies) && !held.isEmpty {
                sync(&held)
            }
        }
        stoppedSignal.push(true)
    }

    private func sync(_ held: inout [(ParticipantID, ParticipantReply)]) {
        do {
            try resource.makeDurable()
        } catch {
            // fsyncgate: after a failed fsync the kernel may have dropped the dirty pages, so
            // nothing committed since the last good sync can be vouched for. Stop answering;
            // recovery after a restart settles every branch from what is really on disk.
            logger.critical("participant fsync failed; participant stopped", metadata: ["participant": "\(id)", "error": "\(error)"])
            stats.withLock { $0.failed = "\(error)" }
            held.removeAll()
            onFailure("participant \(id) failed to sync: \(error)")
            return
        }
        stats.withLock { $0.syncs += 1 }
        deliver(held)
        held.removeAll(keepingCapacity: true)
    }
}

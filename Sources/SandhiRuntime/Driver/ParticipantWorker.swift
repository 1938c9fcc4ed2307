import Logging
import SandhiEngine
import SandhiParticipants
import Synchronization

/// One thread per participant. It drains every message queued for its resource into one batch
/// (one storage commit), and makes batches durable with one fsync before it delivers their
/// replies: group commit without a timer, since messages that arrive during an fsync form the
/// next batch. (A resource whose batch costs the same whatever its size, a PostgreSQL bank,
/// may ask for a short wait for more messages: see `linger`.)
///
/// The disk's flush rate is what a two-phase commit spends, so the worker spends it only where
/// someone waits on it. A batch with a PREPARE is synced at once: a vote is on the critical path
/// of its transaction. A batch of only COMMITs and ROLLBACKs is committed but not synced: its
/// acknowledgements ride on the next batch's fsync (there is one within `lazySyncUs` under
/// load), or on an fsync of their own once the oldest has waited `lazySyncUs`. An
/// acknowledgement is never sent before its effect is durable either way; it only waits a
/// little for company, and never longer than `lazySyncUs` (plus the resource's
/// `batchLingerUs`, for one that asks for it).
///
/// A failed fsync stops the participant for good (durability is unknown) and tells the driver
/// through `onFailure`, which halts the coordinator: the process must restart and recover.
///
/// A batch that fails (nothing of it applied, the resource reloaded from storage) is run again
/// one message at a time, so that one message that fails every time (a COMMIT whose account an
/// outside writer changed under it, a write-set row gone) does not fail every batch it lands
/// in and stop the bank: the others go through, and the one that fails alone is reported
/// (`isolatedFailures`, an error in the log) and gets no reply. Its transaction stays in
/// flight, its locks held, until the message succeeds on a resend or an operator settles it.
///
/// Live faults (see `LiveFault`): `crash` is the participant's process dying: the thread stops
/// between batches, and what was queued but not staged, and replies not yet synced and sent,
/// are lost; the resource is closed. `restart` hands over the storage opened again (which has
/// restored its prepared branches, the participant's own restart path) to a new thread, which
/// first says YES again for every restored branch: a vote lost with the crash may be the one
/// its transaction waits for. Once asked to (`startInquiring`, after the first fault), the
/// worker also asks about branches that stay prepared across an inquiry interval, as the
/// simulator's participants do: the coordinator answers a YES for a transaction it no longer
/// knows with ROLLBACK, and for one it knows with what it decided.
///
/// Probes (ParticipantProbe.swift): between two batches, after the drain, the thread answers
/// questions about its storage that others may not ask directly (the bank is open by it alone).
final class ParticipantWorker: @unchecked Sendable {
    let id: ParticipantID
    /// The current incarnation's storage: set before its thread starts, used by that thread only.
    private var resource: ParticipantResource
    private let queue: BlockingQueue<ParticipantMessage>
    private let deliver: @Sendable ([(ParticipantID, ParticipantReply)]) -> Void
    private let onFailure: @Sendable (String) -> Void
    private let logger: Logger
    private let lazySyncUs: UInt64
    private let inquiryIntervalUs: UInt64
    private let stoppedSignal = BlockingQueue<Bool>(capacity: 1)
    private struct Stats {
        var batches = 0, messages = 0, syncs = 0
        /// Moving averages (weight 1/8 on the newest) of storing one batch and of one fsync:
        /// what a message waits here once it is taken, for the console's participant view.
        var recentBatchUs: UInt64 = 0, recentSyncUs: UInt64 = 0
        /// Set when an fsync failed: durability is unknown, so this participant stops.
        var failed: String?
        /// Messages that failed even alone, after their batch failed (see the type's comment).
        var isolatedFailures = 0
    }
    private let stats = Mutex(Stats())
    /// Whether a thread runs (not while crashed), and whether `stop` was called. Held across
    /// `stop`, `crash` and `restart`, which wait for the thread; the thread never takes it.
    private struct Life {
        var running = true
        var stopped = false
    }
    private let life = Mutex(Life())
    /// Read by the thread after every drain: its process is to die now.
    private let crashRequested = Atomic<Bool>(false)
    private let inquiring = Atomic<Bool>(false)
    /// Heuristic sweeps wait for recovery: a bank that was down with its coordinator was never
    /// waiting for it, and the decisions recovery sends must reach the bank before the bank
    /// may decide anything alone (`allowSweeps`).
    private let sweepsAllowed = Atomic<Bool>(false)
    /// Probes to answer between batches, and the flag the thread checks after every drain.
    private let probes = Mutex<[ParticipantProbe]>([])
    private let probeRequested = Atomic<Bool>(false)
    /// Probes waiting for this worker, at most (a bound on every queue).
    static let maxPendingProbes = 8

    /// Replies held for a shared fsync, at most; more are synced at once.
    static let maxHeldReplies = 4_096
    /// How often a resource that asks for it (`needsSweep`) decides overdue branches alone and
    /// reports its heuristic decisions again.
    static let sweepIntervalUs: UInt64 = 250_000

    init(resource: ParticipantResource, capacity: Int, lazySyncUs: UInt64 = 2_000, inquiryIntervalUs: UInt64 = 500_000,
         logger: Logger, onFailure: @escaping @Sendable (String) -> Void = { _ in },
         deliver: @escaping @Sendable ([(ParticipantID, ParticipantReply)]) -> Void) {
        precondition(inquiryIntervalUs > 0)
        self.id = resource.id
        self.resource = resource
        self.queue = BlockingQueue(capacity: capacity)
        self.deliver = deliver
        self.onFailure = onFailure
        self.logger = logger
        self.lazySyncUs = lazySyncUs
        self.inquiryIntervalUs = inquiryIntervalUs
        startThread(name: "sandhi-\(resource.id.name)") { [self] in run(announceRestored: false) }
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
    var isolatedFailures: Int { stats.withLock { $0.isolatedFailures } }
    var recentBatchUs: UInt64 { stats.withLock { $0.recentBatchUs } }
    var recentSyncUs: UInt64 { stats.withLock { $0.recentSyncUs } }
    /// Messages queued and not yet taken.
    var queued: Int { queue.count }

    /// Asks the thread to answer `probe` between two batches (waking it if it sleeps). When it
    /// is not running, or has too many probes pending, the probe is told at once.
    func submit(_ probe: ParticipantProbe) {
        let refusal: ProbeWithdrawal? = life.withLock { life in
            guard life.running && !life.stopped else { return .down }
            let queued = probes.withLock { pending in
                guard pending.count < Self.maxPendingProbes else { return false }
                pending.append(probe)
                return true
            }
            guard queued else { return .busy }
            probeRequested.store(true, ordering: .sequentiallyConsistent)
            queue.interrupt()
            return nil
        }
        if let refusal { probe.withdraw(id, refusal) }
    }

    /// Finishes what is queued (processed and synced), stops the thread, closes the resource.
    /// After a `crash` there is nothing left to finish.
    func stop() {
        life.withLock { life in
            guard !life.stopped else { return }
            life.stopped = true
            queue.close()
            if life.running { waitForThread() }
            life.running = false
        }
    }

    /// Live fault: the participant's process dies. Returns once its thread is gone and its
    /// storage closed; messages queued meanwhile are dropped. False if it was not running.
    /// Not under the driver's lock: the thread may be waiting for it to report a failure.
    @discardableResult
    func crash() -> Bool {
        life.withLock { life in
            guard life.running && !life.stopped else { return false }
            crashRequested.store(true, ordering: .sequentiallyConsistent)
            queue.interrupt()
            waitForThread()
            // Queued, never staged: lost with the process. (Whatever was committed to storage
            // stays there, synced or not, as the disk had it.)
            queue.removeAll()
            life.running = false
            return true
        }
    }

    /// Live fault: a new incarnation over `resource` (the storage opened again). False, and
    /// `resource` untouched, if the worker is running or stopped.
    func restart(with resource: ParticipantResource) -> Bool {
        life.withLock { life in
            guard !life.running && !life.stopped else { return false }
            self.resource = resource
            crashRequested.store(false, ordering: .sequentiallyConsistent)
            stats.withLock { $0.failed = nil }
            queue.removeAll()
            life.running = true
            startThread(name: "sandhi-\(id.name)") { [self] in run(announceRestored: true) }
            return true
        }
    }

    /// Recovery has queued its decisions to this worker: from now on the resource may sweep.
    func allowSweeps() {
        if !sweepsAllowed.exchange(true, ordering: .sequentiallyConsistent) { queue.interrupt() }
    }

    /// From now on, ask about branches that stay prepared (see the type's comment).
    func startInquiring() {
        if !inquiring.exchange(true, ordering: .sequentiallyConsistent) { queue.interrupt() }
    }

    private func waitForThread() {
        var ignored: [Bool] = []
        stoppedSignal.drain(into: &ignored)
    }

    private func run(announceRestored: Bool) {
        let resource = self.resource
        var batch: [ParticipantMessage] = []
        /// Replies of batches committed but not yet synced, and when the oldest was committed.
        var held: [(ParticipantID, ParticipantReply)] = []
        var heldSinceUs: UInt64 = 0
        var inquiry = Inquiry()
        var nextSweepUs: UInt64 = 0
        if announceRestored {
            for tx in resource.inDoubt().keys.sorted() { held.append((id, .vote(tx, .yes))) }
            if !held.isEmpty { sync(&held, resource) }
        }
        var open = true
        var previousBatchCount = 0
        while open {
            let asking = inquiring.load(ordering: .relaxed)
            let sweeping = resource.needsSweep && sweepsAllowed.load(ordering: .relaxed)
            if held.isEmpty && !asking && !sweeping {
                open = queue.drain(into: &batch)
            } else {
                let nowUs = MonotonicClock.nowUs()
                var waitUs = UInt64.max
                if !held.isEmpty {
                    let waitedUs = nowUs &- heldSinceUs
                    waitUs = waitedUs < lazySyncUs ? lazySyncUs - waitedUs : 0
                }
                if asking { waitUs = min(waitUs, inquiry.nextUs > nowUs ? inquiry.nextUs - nowUs : 0) }
                if sweeping { waitUs = min(waitUs, nextSweepUs > nowUs ? nextSweepUs - nowUs : 0) }
                open = queue.drain(into: &batch, timeoutUs: waitUs)
            }
            linger(&batch, previousCount: &previousBatchCount, upToUs: resource.batchLingerUs)
            if probeRequested.load(ordering: .relaxed) {
                // Before the batch: a holding probe keeps it (and everything behind it) waiting.
                // A crash ends the hold, and is seen just below.
                answerProbes(resource)
            }
            if crashRequested.load(ordering: .relaxed) {
                // The process is gone: the batch was never staged and the held replies never
                // left. Storage keeps what it committed.
                held.removeAll()
                break
            }
            let nowUs = MonotonicClock.nowUs()
            if held.isEmpty { heldSinceUs = nowUs }
            // Quiet (or closing) with acknowledgements held, or they have waited long enough.
            var urgent = batch.isEmpty || nowUs &- heldSinceUs >= lazySyncUs
            if !batch.isEmpty && stats.withLock({ $0.failed }) == nil {
                let replies = process(batch, resource)
                let storedUs = MonotonicClock.nowUs() &- nowUs
                stats.withLock { stats in
                    stats.batches += 1
                    stats.messages += batch.count
                    stats.recentBatchUs = Self.movingAverage(stats.recentBatchUs, storedUs)
                }
                for reply in replies {
                    if case .vote = reply { urgent = true }
                    held.append((id, reply))
                }
            }
            if asking && nowUs >= inquiry.nextUs && stats.withLock({ $0.failed }) == nil {
                let stale = inquiry.tick(prepared: resource.inDoubt().keys, nowUs: nowUs, intervalUs: inquiryIntervalUs)
                for tx in stale { held.append((id, .vote(tx, .yes))) }
                if !stale.isEmpty { urgent = true }
            }
            if sweeping && nowUs >= nextSweepUs && stats.withLock({ $0.failed }) == nil {
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
                sync(&held, resource)
            }
        }
        resource.close()
        // Gone before answering: whoever asks must not wait for this thread.
        for probe in probes.withLock({ pending in defer { pending.removeAll() }; return pending }) { probe.withdraw(id, .down) }
        stoppedSignal.push(true)
    }

    /// Stores a batch, or, if it fails, each of its messages alone: the replies of whatever
    /// succeeded. A failure changes nothing (the resource reloaded itself from storage), and a
    /// message without a reply is covered by the coordinator's deadline or resend.
    private func process(_ batch: [ParticipantMessage], _ resource: ParticipantResource) -> [ParticipantReply] {
        do {
            return try resource.process(batch)
        } catch {
            logger.error("participant batch failed", metadata: ["participant": "\(id)", "messages": "\(batch.count)", "error": "\(error)"])
            guard batch.count > 1 else {
                stats.withLock { $0.isolatedFailures += 1 }
                return []
            }
        }
        var replies: [ParticipantReply] = []
        for message in batch {
            // A failed fsync is sticky and fails everything after it: stop trying then.
            guard stats.withLock({ $0.failed }) == nil else { break }
            do {
                replies += try resource.process([message])
            } catch {
                stats.withLock { $0.isolatedFailures += 1 }
                logger.error("participant message failed alone; the rest of its batch went on without it",
                             metadata: ["participant": "\(id)", "message": "\(message)", "error": "\(error)"])
            }
        }
        return replies
    }

    /// A resource whose batch costs the same whatever its size (a PostgreSQL bank: a few
    /// statements per batch, not per branch) asks for batches as large as the load allows
    /// (`batchLingerUs`). Under steady load, transactions fall into cohorts that take turns at
    /// the resource: one is staged while the other is at the coordinator, so each batch serves
    /// half of them. A batch smaller than the previous one therefore waits, at most `upToUs`,
    /// for the messages that would make it as large, and the cohorts merge. Only batches after
    /// one of at least `lingerAfterCount` messages wait: with one or two transactions in
    /// flight there is nobody to wait for.
    private func linger(_ batch: inout [ParticipantMessage], previousCount: inout Int, upToUs: UInt64) {
        defer { if !batch.isEmpty { previousCount = batch.count } }
        guard upToUs > 0, !batch.isEmpty, previousCount >= Self.lingerAfterCount, batch.count < previousCount else { return }
        let untilUs = MonotonicClock.nowUs() + upToUs
        var more: [ParticipantMessage] = []
        while batch.count < previousCount && !crashRequested.load(ordering: .relaxed) && !probeRequested.load(ordering: .relaxed) {
            let nowUs = MonotonicClock.nowUs()
            guard nowUs < untilUs else { return }
            // An interrupt (a probe, a crash) ends the wait with nothing: the batch goes as it is.
            guard queue.drain(into: &more, timeoutUs: untilUs - nowUs), !more.isEmpty else { return }
            batch += more
        }
    }

    /// The smallest previous batch after which a batch lingers (see `linger`).
    static let lingerAfterCount = 4

    /// Answers every probe pending, and while a holding probe is not yet released, takes no
    /// batch: it waits, answering any probe that arrives meanwhile (two holding probes asked
    /// in a different order at two workers would otherwise each wait for the other), until
    /// every hold is released or the process is to crash.
    private func answerProbes(_ resource: ParticipantResource) {
        var holding: [ParticipantProbe] = []
        while true {
            probeRequested.store(false, ordering: .sequentiallyConsistent)
            let pending = probes.withLock { pending in defer { pending.removeAll() }; return pending }
            let failure = stats.withLock { $0.failed }
            for probe in pending where probe.answer(id, from: resource, failure: failure) { holding.append(probe) }
            holding.removeAll { $0.released }
            guard let first = holding.first, !crashRequested.load(ordering: .relaxed) else { return }
            first.waitForRelease(timeoutUs: Self.holdSliceUs)
        }
    }

    /// A held worker looks for new probes and for a crash this often.
    static let holdSliceUs: UInt64 = 1_000

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

    private func sync(_ held: inout [(ParticipantID, ParticipantReply)], _ resource: ParticipantResource) {
        let startedUs = MonotonicClock.nowUs()
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
        let syncedUs = MonotonicClock.nowUs() &- startedUs
        stats.withLock { stats in
            stats.syncs += 1
            stats.recentSyncUs = Self.movingAverage(stats.recentSyncUs, syncedUs)
        }
        deliver(held)
        held.removeAll(keepingCapacity: true)
    }
}

import Logging
import SandhiEngine
import SandhiParticipants
import Synchronization

/// One thread per participant, the driver of a `ParticipantWorkerCore`, which decides
/// everything between two waits (when a batch is synced, when replies leave, inquiries,
/// sweeps, failed batches and failed fsyncs: see its state diagram). The thread drains every
/// message queued for its resource into one batch (one storage commit) and syncs when the
/// core says so before it delivers the replies: group commit without a timer, since messages
/// that arrive during an fsync form the next batch. (A resource whose batch costs the same
/// whatever its size, a PostgreSQL bank, may ask for a short wait for more messages: see
/// `linger`.) The simulator drives the same core from its own events.
///
/// A failed fsync stops the participant for good (durability is unknown) and tells the driver
/// through `onFailure`, which halts the coordinator: the process must restart and recover.
///
/// Live faults (see `LiveFault`): `crash` is the participant's process dying: the thread stops
/// between batches, and what was queued but not staged, and replies not yet synced and sent,
/// are lost; the resource is closed. `restart` hands over the storage opened again (which has
/// restored its prepared branches, the participant's own restart path) to a new thread, which
/// first says YES again for every restored branch. Once asked to (`startInquiring`, after the
/// first fault), the worker also asks about branches that stay prepared, as the simulator's
/// participants do: the coordinator answers a YES for a transaction it no longer knows with
/// ROLLBACK, and for one it knows with what it decided.
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
    private let stoppedSignal = BlockingQueue<Bool>(capacity: 1)
    private let coreConfiguration: ParticipantWorkerCore.Configuration
    /// The core's stats as of its last round, for readers on other threads.
    private let stats = Mutex(ParticipantWorkerCore.Stats())
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
        self.coreConfiguration = ParticipantWorkerCore.Configuration(lazySyncUs: lazySyncUs, inquiryIntervalUs: inquiryIntervalUs)
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

    /// The thread: waits as the core says, hands it each batch, syncs and delivers when it
    /// says so. Everything else (between the waits) is the core's.
    private func run(announceRestored: Bool) {
        let resource = self.resource
        var core = ParticipantWorkerCore(id: id, configuration: coreConfiguration, logger: logger, stats: stats.withLock { $0 })
        var batch: [ParticipantMessage] = []
        if announceRestored && core.restarted(resource) { sync(&core, resource) }
        var open = true
        var previousBatchCount = 0
        while open {
            core.inquiring = inquiring.load(ordering: .relaxed)
            core.sweepsAllowed = sweepsAllowed.load(ordering: .relaxed)
            if let waitUs = core.waitUs(resource) {
                open = queue.drain(into: &batch, timeoutUs: waitUs)
            } else {
                open = queue.drain(into: &batch)
            }
            linger(&batch, previousCount: &previousBatchCount, upToUs: resource.batchLingerUs)
            if probeRequested.load(ordering: .relaxed) {
                // Before the batch: a holding probe keeps it (and everything behind it) waiting.
                // A crash ends the hold, and is seen just below.
                answerProbes(resource, failure: core.stats.failed)
            }
            if crashRequested.load(ordering: .relaxed) {
                // The process is gone: the batch was never staged and the held replies never
                // left. Storage keeps what it committed.
                core.crash()
                break
            }
            if core.store(batch, resource) { sync(&core, resource) }
            stats.withLock { $0 = core.stats }
            batch.removeAll(keepingCapacity: true)
        }
        resource.close()
        // Gone before answering: whoever asks must not wait for this thread.
        for probe in probes.withLock({ pending in defer { pending.removeAll() }; return pending }) { probe.withdraw(id, .down) }
        stoppedSignal.push(true)
    }

    private func sync(_ core: inout ParticipantWorkerCore, _ resource: ParticipantResource) {
        let outcome = core.sync(resource)
        // Before the replies: whoever they wake sees this sync in the stats.
        stats.withLock { $0 = core.stats }
        switch outcome {
        case .deliver(let replies): deliver(replies)
        case .failed(let reason): onFailure(reason)
        }
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
    private func answerProbes(_ resource: ParticipantResource, failure: String?) {
        var holding: [ParticipantProbe] = []
        while true {
            probeRequested.store(false, ordering: .sequentiallyConsistent)
            let pending = probes.withLock { pending in defer { pending.removeAll() }; return pending }
            for probe in pending where probe.answer(id, from: resource, failure: failure) { holding.append(probe) }
            holding.removeAll { $0.released }
            guard let first = holding.first, !crashRequested.load(ordering: .relaxed) else { return }
            first.waitForRelease(timeoutUs: Self.holdSliceUs)
        }
    }

    /// A held worker looks for new probes and for a crash this often.
    static let holdSliceUs: UInt64 = 1_000
}

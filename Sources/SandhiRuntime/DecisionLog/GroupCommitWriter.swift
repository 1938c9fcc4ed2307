import Foundation
import Logging
import SandhiEngine
import Synchronization

/// One dedicated thread owns the store. Appenders enqueue; the thread drains EVERYTHING queued,
/// and hands it to a `GroupCommitBatch` (the batch's rules, which the simulator drives too):
/// one append() and, if any queued record is forced, one sync(); then runs completions (off
/// its lock) with each record's position. This is the group commit: many concurrent
/// decisions, one fsync.
///
/// While the thread is in fdatasync, new records pile up in the queue; the next round takes them
/// all at once, so the number of syncs adapts to the disk's latency instead of to the offered load.
///
/// Between batches, after the completions have run, the thread lets the store do its upkeep
/// (`DecisionLogStorage.maintain`: the file log zero-fills ahead of its write position, so the
/// batches' syncs find the file's size unchanged; the PostgreSQL log deletes finished records),
/// so that work delays no decision already waiting for its sync.
///
/// The store is any `DecisionLogStorage` (segment files or PostgreSQL): one existential call per
/// batch, never per record.
///
/// Batches of unforced records only (ENDs) get no sync of their own (see `GroupCommitBatch`).
///
/// The thread keeps the writer alive until `shutdown`, which every owner must call.
///
/// `@unchecked Sendable`: the queue and flags are guarded by `condition`; `store`, `batch` and
/// `batchRecords` are touched only by the writer thread (the caller hands the store over at
/// `init` and must not use it again); the stats are atomics.
public final class GroupCommitWriter: @unchecked Sendable {
    public typealias Completion = @Sendable (Result<LogPosition, DecisionLogError>) -> Void

    private struct Pending {
        var record: DecisionRecord
        var forced: Bool
        var completion: Completion
    }

    public let maxQueued: Int
    private let logger: Logger

    // Guarded by `condition`. One condition variable serves both waits (the writer for work,
    // appenders for room): they never wait at the same time, since the writer only waits on an
    // empty queue and appenders only on a full one.
    private let condition = NSCondition()
    private var queue: [Pending] = []
    private var stopping = false
    /// Stopping as a crash would: nothing queued is written, nothing more is synced.
    private var abandoned = false
    private var finished = false
    private var writerWaiting = false
    private var appendersWaiting = 0
    private var failNextSyncRequested = false
    private var writerThreadID: pthread_t?

    // Writer thread only.
    private let store: any DecisionLogStorage
    private var batch: [Pending] = []
    private var batchRecords: [DecisionRecord] = []
    private var batcher = GroupCommitBatch()

    private let syncCount = Atomic<Int>(0)
    private let recordCount = Atomic<Int>(0)

    public init(store: any DecisionLogStorage, maxQueued: Int = 65_536, logger: Logger) {
        precondition(maxQueued >= 1, "maxQueued \(maxQueued)")
        self.store = store
        self.maxQueued = maxQueued
        self.logger = logger
        queue.reserveCapacity(min(maxQueued, 4096))
        batch.reserveCapacity(min(maxQueued, 4096))
        batchRecords.reserveCapacity(min(maxQueued, 4096))
        let thread = Thread { [self] in run() }
        thread.name = "sandhi-decision-log"
        thread.start()
    }

    /// Enqueue; completion runs on the writer thread after the record is written (and synced if
    /// forced). If the queue holds maxQueued records, the caller blocks until there is room
    /// (back-pressure, a bound on the queue).
    ///
    /// After `shutdown` has begun, the completion runs at once on the caller's thread with
    /// `.closed`. A completion that appends (on the writer thread) is never blocked, since only
    /// that thread could make room; the queue then briefly exceeds maxQueued by what one round of
    /// completions appends.
    public func append(_ record: DecisionRecord, forced: Bool, completion: @escaping Completion) {
        if appendWithoutWaking(record, forced: forced, completion: completion) { wakeWriter() }
    }

    /// Like `append`, but leaves waking the writer to the caller (`wakeWriter`), who may want to
    /// do it after releasing a lock of its own: a wake is a system call when the writer sleeps.
    /// Returns whether the writer was asleep waiting for work and must be woken.
    public func appendWithoutWaking(_ record: DecisionRecord, forced: Bool, completion: @escaping Completion) -> Bool {
        condition.lock()
        while queue.count >= maxQueued && !stopping && !isWriterThread() {
            appendersWaiting += 1
            condition.wait()
            appendersWaiting -= 1
        }
        if stopping {
            condition.unlock()
            completion(.failure(.closed))
            return false
        }
        queue.append(Pending(record: record, forced: forced, completion: completion))
        let asleep = writerWaiting
        condition.unlock()
        return asleep
    }

    public func wakeWriter() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    /// Fsync count (forced batches and the store's syncs for the unsynced-bytes bound) and records
    /// written, for benchmarks and tests.
    public var stats: (syncs: Int, records: Int) {
        (syncCount.load(ordering: .relaxed), recordCount.load(ordering: .relaxed))
    }

    /// Drains what is queued, syncs, stops the thread, closes the store. Idempotent; must not be
    /// called from a completion (the writer thread would wait for itself).
    public func shutdown() {
        condition.lock()
        precondition(!isWriterThread(), "GroupCommitWriter.shutdown called from its own completion")
        if !stopping {
            stopping = true
            condition.broadcast()
        }
        while !finished { condition.wait() }
        condition.unlock()
    }

    /// Live fault: the process dies. Records still queued are never written (their completions
    /// run with `.closed`, on this thread), the batch being written finishes as it would have,
    /// and there is no final sync; then the store is closed. Returns once the writer thread is
    /// gone, so a new incarnation may open the log. Idempotent; `shutdown` after it returns at
    /// once. Like `shutdown`, not from a completion.
    public func abandon() {
        condition.lock()
        precondition(!isWriterThread(), "GroupCommitWriter.abandon called from its own completion")
        var lost: [Pending] = []
        if !stopping {
            stopping = true
            abandoned = true
            swap(&lost, &queue)
            condition.broadcast()
        }
        while !finished { condition.wait() }
        condition.unlock()
        for pending in lost { pending.completion(.failure(.closed)) }
    }

    /// Test/fault hook: make the next sync fail with an .io error (simulates a failed fsync;
    /// sticky after that).
    public func failNextSync() {
        condition.lock()
        failNextSyncRequested = true
        condition.unlock()
    }

    // MARK: Writer thread

    private func run() {
        condition.lock()
        writerThreadID = pthread_self()
        condition.unlock()

        while takeBatch() {
            writeBatch()
            maintainStore()
        }

        if !abandonedUnderLock() { batcher.finish(store, logger: logger) }
        store.close()
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for work and moves everything queued into `batch`. False once stopping with nothing left.
    private func takeBatch() -> Bool {
        assert(batch.isEmpty)
        condition.lock()
        defer { condition.unlock() }
        while queue.isEmpty && !stopping {
            writerWaiting = true
            condition.wait()
            writerWaiting = false
        }
        if queue.isEmpty {
            assert(stopping)
            return false
        }
        // Swap rather than copy: both arrays keep their capacity, so a steady state allocates nothing.
        swap(&queue, &batch)
        if appendersWaiting > 0 { condition.broadcast() }
        if failNextSyncRequested {
            failNextSyncRequested = false
            store.failNextSync()
        }
        return true
    }

    private func writeBatch() {
        assert(!batch.isEmpty && batchRecords.isEmpty)
        var forced = false
        for pending in batch {
            batchRecords.append(pending.record)
            forced = forced || pending.forced
        }
        let result = batcher.write(batchRecords, forced: forced, to: store)
        // Before the completions, so a caller woken by one sees this batch's syncs in `stats`.
        publishStats()
        batchRecords.removeAll(keepingCapacity: true)

        switch result {
        case .success(let positions):
            precondition(positions.count == batch.count, "\(positions.count) positions for \(batch.count) records")
            for index in batch.indices {
                batch[index].completion(.success(positions[index]))
            }
        case .failure(let error):
            for pending in batch {
                pending.completion(.failure(error))
            }
        }
        // Releases the completions (and whatever they captured) before the next wait.
        batch.removeAll(keepingCapacity: true)
    }

    private func publishStats() {
        syncCount.store(batcher.syncs, ordering: .relaxed)
        recordCount.store(batcher.records, ordering: .relaxed)
    }

    private func maintainStore() {
        batcher.maintain(store)
        publishStats()
    }

    private func abandonedUnderLock() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return abandoned
    }

    /// Caller holds `condition`.
    private func isWriterThread() -> Bool {
        guard let writerThreadID else { return false }
        return pthread_equal(writerThreadID, pthread_self()) != 0
    }
}

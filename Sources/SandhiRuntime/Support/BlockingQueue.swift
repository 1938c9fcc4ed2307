import Foundation
import Glibc

/// A bounded multi-producer queue drained in batches by one consumer thread.
///
/// `push` blocks while the queue is full (back-pressure instead of unbounded memory);
/// `drain` blocks while it is empty and then takes everything, which is what turns many
/// concurrent requests into one batch and one fsync.
public final class BlockingQueue<Element>: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    /// Waits on the monotonic clock, so `drain(timeoutUs:)` ignores wall-clock jumps.
    private var notEmpty = pthread_cond_t()
    private var notFull = pthread_cond_t()
    private var items: [Element] = []
    private var closed = false
    /// Set by `interrupt`, cleared by the drain it ends.
    private var interrupted = false
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        pthread_mutex_init(&mutex, nil)
        MonotonicClock.initializeCondition(&notEmpty)
        pthread_cond_init(&notFull, nil)
    }

    deinit {
        pthread_mutex_destroy(&mutex)
        pthread_cond_destroy(&notEmpty)
        pthread_cond_destroy(&notFull)
    }

    /// Appends; false if the queue is closed (the element is dropped).
    @discardableResult
    public func push(_ element: Element) -> Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while items.count >= capacity && !closed { pthread_cond_wait(&notFull, &mutex) }
        guard !closed else { return false }
        items.append(element)
        if items.count == 1 { pthread_cond_signal(&notEmpty) }
        return true
    }

    /// Appends unless the queue is full or closed; never waits.
    public func tryPush(_ element: Element) -> Bool {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        guard items.count < capacity && !closed else { return false }
        items.append(element)
        if items.count == 1 { pthread_cond_signal(&notEmpty) }
        return true
    }

    public enum Placement { case queued(wasEmpty: Bool), refused }

    /// Like `tryPush`, but leaves waking the consumer to the caller (`wakeConsumer`), who may
    /// want to do it after releasing a lock of its own: a wake is a system call when the
    /// consumer sleeps. `wasEmpty`: the consumer may be asleep, so it must be woken.
    public func tryPushWithoutWaking(_ element: Element) -> Placement {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        guard items.count < capacity && !closed else { return .refused }
        items.append(element)
        return .queued(wasEmpty: items.count == 1)
    }

    public func wakeConsumer() {
        pthread_mutex_lock(&mutex)
        pthread_cond_signal(&notEmpty)
        pthread_mutex_unlock(&mutex)
    }

    /// Takes everything queued, waiting for at least one element; empty only once closed and
    /// drained, or after an `interrupt`. Returns false once the queue is closed and drained.
    @discardableResult
    public func drain(into batch: inout [Element]) -> Bool {
        batch.removeAll(keepingCapacity: true)
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while items.isEmpty && !closed && !interrupted { pthread_cond_wait(&notEmpty, &mutex) }
        interrupted = false
        swap(&batch, &items)
        pthread_cond_broadcast(&notFull)
        return !(closed && batch.isEmpty)
    }

    /// Like `drain`, but gives up after `timeoutUs` and returns with `batch` empty.
    /// Returns false once the queue is closed and drained.
    public func drain(into batch: inout [Element], timeoutUs: UInt64) -> Bool {
        batch.removeAll(keepingCapacity: true)
        let deadlineUs = MonotonicClock.nowUs() + timeoutUs
        var deadline = MonotonicClock.deadline(atUs: deadlineUs)
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while items.isEmpty && !closed && !interrupted {
            if pthread_cond_timedwait(&notEmpty, &mutex, &deadline) == ETIMEDOUT { break }
        }
        interrupted = false
        swap(&batch, &items)
        pthread_cond_broadcast(&notFull)
        return !(closed && batch.isEmpty)
    }

    /// Ends the consumer's current `drain` (or its next one) even if nothing is queued, so that a
    /// consumer asleep on the queue looks at its other business (a live fault: its process is
    /// to die, or it is to start asking about prepared branches).
    public func interrupt() {
        pthread_mutex_lock(&mutex)
        interrupted = true
        pthread_cond_signal(&notEmpty)
        pthread_mutex_unlock(&mutex)
    }

    /// Elements queued now: a gauge (for the console), stale as soon as it is read.
    public var count: Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return items.count
    }

    /// Drops everything queued (what a process crash loses).
    public func removeAll() {
        pthread_mutex_lock(&mutex)
        items.removeAll(keepingCapacity: true)
        pthread_cond_broadcast(&notFull)
        pthread_mutex_unlock(&mutex)
    }

    /// Wakes the consumer; later pushes are refused. Queued elements can still be drained.
    public func close() {
        pthread_mutex_lock(&mutex)
        closed = true
        pthread_cond_broadcast(&notEmpty)
        pthread_cond_broadcast(&notFull)
        pthread_mutex_unlock(&mutex)
    }
}

/// Starts a named OS thread (workers block in fsync; they must not sit on Swift's cooperative pool).
public func startThread(name: String, _ body: @escaping @Sendable () -> Void) {
    let thread = Thread(block: body)
    thread.name = name
    thread.start()
}

import Glibc
import HeapModule
import SandhiEngine

/// The real-time driver's timers: one thread, a min-heap of deadlines, cancellation by id.
/// The coordinator's timers are `TimerID`s; the live-fault delay line's are message tickets.
///
/// A cancelled timer stays in the heap and is skipped when it surfaces; only live ids are kept
/// in the `live` table, so cancelling costs a dictionary removal and firing never reaches the
/// coordinator for a timer it no longer wants.
final class TimerService<ID: Hashable & Sendable>: @unchecked Sendable {
    private struct Entry: Comparable {
        var deadlineUs: UInt64
        var id: ID
        static func < (lhs: Entry, rhs: Entry) -> Bool { lhs.deadlineUs < rhs.deadlineUs }
        static func == (lhs: Entry, rhs: Entry) -> Bool { lhs.deadlineUs == rhs.deadlineUs && lhs.id == rhs.id }
    }

    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    private var heap = Heap<Entry>()
    private var live = Set<ID>()
    private var stopped = false
    private let fire: @Sendable (ID) -> Void

    init(name: String = "sandhi-timers", fire: @escaping @Sendable (ID) -> Void) {
        self.fire = fire
        pthread_mutex_init(&mutex, nil)
        MonotonicClock.initializeCondition(&changed)
        startThread(name: name) { [self] in run() }
    }

    func schedule(_ id: ID, afterUs: UInt64) {
        pthread_mutex_lock(&mutex)
        let entry = Entry(deadlineUs: MonotonicClock.nowUs() + afterUs, id: id)
        let earliest = heap.min.map { entry.deadlineUs < $0.deadlineUs } ?? true
        heap.insert(entry)
        live.insert(id)
        if earliest { pthread_cond_signal(&changed) }
        pthread_mutex_unlock(&mutex)
    }

    func cancel(_ id: ID) {
        pthread_mutex_lock(&mutex)
        live.remove(id)
        pthread_mutex_unlock(&mutex)
    }

    func stop() {
        pthread_mutex_lock(&mutex)
        stopped = true
        pthread_cond_signal(&changed)
        pthread_mutex_unlock(&mutex)
    }

    private func run() {
        var due: [ID] = []
        pthread_mutex_lock(&mutex)
        while !stopped {
            let now = MonotonicClock.nowUs()
            due.removeAll(keepingCapacity: true)
            while let first = heap.min, first.deadlineUs <= now {
                heap.removeMin()
                if live.remove(first.id) != nil { due.append(first.id) }
            }
            if !due.isEmpty {
                pthread_mutex_unlock(&mutex)
                for id in due { fire(id) }
                pthread_mutex_lock(&mutex)
                continue
            }
            if let first = heap.min {
                var deadline = MonotonicClock.deadline(atUs: first.deadlineUs)
                pthread_cond_timedwait(&changed, &mutex, &deadline)
            } else {
                pthread_cond_wait(&changed, &mutex)
            }
        }
        pthread_mutex_unlock(&mutex)
    }
}

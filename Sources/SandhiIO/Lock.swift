import Glibc

/// A value guarded by an adaptive pthread mutex.
///
/// Why not `Synchronization.Mutex`: on Linux it is built on priority-inheritance futexes, and
/// under the coordinator's contention pattern (four participant threads, the log writer and
/// the client executor all feeding one state machine, each for a few microseconds) every
/// contended acquisition paid for the PI kernel path. An adaptive mutex spins briefly first,
/// which is what a lock held this briefly wants.
public final class Lock<Value>: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        pthread_mutex_init(&mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
    }

    deinit { pthread_mutex_destroy(&mutex) }

    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body(&value)
    }
}

import SandhiEngine
import SandhiRuntime

/// The transfers this service has started and not yet seen end: by transaction id (so that a
/// lookup of an id handed out a moment ago says "pending", not "aborted", before the
/// coordinator has begun it) and by idempotency key (so that a retry that arrives while the
/// first request is still running joins it instead of racing it to the store).
///
/// Bounded by what it tracks: each entry is a transfer in flight, and the coordinator refuses
/// more than its `maxInFlight`.
final class RunningTransfers: Sendable {
    /// The key was bound, by an earlier request, to `entry`.
    struct Bound: Error { var entry: IdempotencyStore.Entry }
    /// The key was bound to a different request.
    struct Mismatch: Error {}

    enum Started {
        case mismatch
        /// `joined`: another request with the same key started it.
        case running(TransactionID, Task<TransferResult, Error>, joined: Bool)
    }

    private struct Keyed {
        var request: String
        var transaction: TransactionID
        var task: Task<TransferResult, Error>
    }

    private struct State {
        var byKey: [String: Keyed] = [:]
        var transactions: Set<TransactionID> = []
    }

    private let state = Lock(State())

    /// Starts `body`'s transfer (without a key), tracked until it ends.
    func start(_ body: () -> (TransactionID, Task<TransferResult, Error>)) -> (TransactionID, Task<TransferResult, Error>) {
        state.withLock { state in
            let (id, task) = body()
            state.transactions.insert(id)
            forget(id, key: nil, after: task)
            return (id, task)
        }
    }

    /// The running transfer under `key`, or `body`'s, started now and tracked until it ends.
    func startOrJoin(key: String, request: String,
                     _ body: () -> (TransactionID, Task<TransferResult, Error>)) -> Started {
        state.withLock { state in
            if let running = state.byKey[key] {
                return running.request == request ? .running(running.transaction, running.task, joined: true) : .mismatch
            }
            let (id, task) = body()
            state.byKey[key] = Keyed(request: request, transaction: id, task: task)
            state.transactions.insert(id)
            forget(id, key: key, after: task)
            return .running(id, task, joined: false)
        }
    }

    func isRunning(_ tx: TransactionID) -> Bool { state.withLock { $0.transactions.contains(tx) } }

    private func forget(_ id: TransactionID, key: String?, after task: Task<TransferResult, Error>) {
        Task {
            _ = try? await task.value
            state.withLock { state in
                state.transactions.remove(id)
                if let key { state.byKey[key] = nil }
            }
        }
    }
}

/// Waiting for a task with a deadline, without cancelling it: the transfer goes on after the
/// caller stops waiting (a 202), and `Task.value` itself does not return on cancellation.
enum Deadline {
    /// `task`'s value, or nil once `upToMs` has passed first.
    static func wait<T: Sendable>(for task: Task<T, Error>, upToMs: UInt64) async throws -> T? {
        let once = Once<T>()
        return try await withCheckedThrowingContinuation { continuation in
            once.arm(continuation)
            let timer = Task {
                // Cancelled: the outcome came first (and has been handed over already).
                guard (try? await Task.sleep(nanoseconds: upToMs * 1_000_000)) != nil else { return }
                once.resume(with: .success(nil))
            }
            Task {
                let result: Result<T?, Error>
                do { result = .success(try await task.value) } catch { result = .failure(error) }
                // The outcome first, then the timer's cancellation: the other way round, the
                // cancelled timer could wake first and answer "pending" for a decided transfer.
                once.resume(with: result)
                timer.cancel()
            }
        }
    }

    private final class Once<T: Sendable>: Sendable {
        private let continuation = Lock<CheckedContinuation<T?, Error>?>(nil)

        func arm(_ continuation: CheckedContinuation<T?, Error>) { self.continuation.withLock { $0 = continuation } }

        func resume(with result: Result<T?, Error>) {
            let waiting = continuation.withLock { stored -> CheckedContinuation<T?, Error>? in
                defer { stored = nil }
                return stored
            }
            waiting?.resume(with: result)
        }
    }
}

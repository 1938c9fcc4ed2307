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
        case running(TransactionID, PendingTransfer, joined: Bool)
    }

    private struct Keyed {
        var request: String
        var transaction: TransactionID
        var pending: PendingTransfer
    }

    private struct State {
        var byKey: [String: Keyed] = [:]
        var transactions: Set<TransactionID> = []
    }

    private let state = Lock(State())

    /// Tracks the transfer `body` starts (without a key) until `finished`.
    func start(_ body: () -> (TransactionID, PendingTransfer)) -> (TransactionID, PendingTransfer) {
        state.withLock { state in
            let (id, pending) = body()
            state.transactions.insert(id)
            return (id, pending)
        }
    }

    /// The running transfer under `key`, or the one `body` starts now, tracked until `finished`.
    func startOrJoin(key: String, request: String, _ body: () -> (TransactionID, PendingTransfer)) -> Started {
        state.withLock { state in
            if let running = state.byKey[key] {
                return running.request == request ? .running(running.transaction, running.pending, joined: true) : .mismatch
            }
            let (id, pending) = body()
            state.byKey[key] = Keyed(request: request, transaction: id, pending: pending)
            state.transactions.insert(id)
            return .running(id, pending, joined: false)
        }
    }

    /// The transfer ended (its outcome recorded where it is kept).
    func finished(_ id: TransactionID, key: String?) {
        state.withLock { state in
            state.transactions.remove(id)
            if let key { state.byKey[key] = nil }
        }
    }

    func isRunning(_ tx: TransactionID) -> Bool { state.withLock { $0.transactions.contains(tx) } }
}

/// A transfer a request started: its outcome once known, awaited by any number of requests (a
/// retry under the same key joins the first), each up to its own deadline. The transfer goes on
/// after a request stops waiting (it was answered 202).
///
/// No task per waiter and no timer per request: the transfer's own task completes it, and one
/// `DeadlineWheel` answers the waiters whose deadline came first.
final class PendingTransfer: Sendable {
    private struct Waiter {
        var continuation: CheckedContinuation<TransferResult?, Error>
        var deadline: UInt64
    }

    private struct State {
        var result: Result<TransferResult, Error>?
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Lock(State())
    private let wheel: DeadlineWheel

    init(wheel: DeadlineWheel) { self.wheel = wheel }

    func complete(_ result: Result<TransferResult, Error>) {
        let waiters = state.withLock { state -> [Waiter] in
            state.result = result
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters {
            wheel.cancel(waiter.deadline)
            waiter.continuation.resume(with: result.map { $0 })
        }
    }

    /// The outcome, or nil once `upToMs` has passed first.
    func wait(upToMs: UInt64) async throws -> TransferResult? {
        try await withCheckedThrowingContinuation { continuation in
            let id = state.withLock { state -> UInt64 in
                state.nextWaiter += 1
                return state.nextWaiter
            }
            let deadline = wheel.expire(after: upToMs) { [self] in
                let expired = state.withLock { $0.waiters.removeValue(forKey: id) }
                expired?.continuation.resume(returning: nil)
            }
            let finished = state.withLock { state -> Result<TransferResult, Error>? in
                if let result = state.result { return result }
                state.waiters[id] = Waiter(continuation: continuation, deadline: deadline)
                return nil
            }
            if let finished {
                wheel.cancel(deadline)
                continuation.resume(with: finished.map { $0 })
            }
        }
    }
}

/// Deadlines for many waiters on one timer: `expire(after:)` registers an action and returns
/// its token, `cancel` drops it (the waiter was answered first), and a single task wakes every
/// `tickMs`, while anything is registered, to run what is due. Precision: one tick.
final class DeadlineWheel: Sendable {
    private struct State {
        var due: [UInt64: (atUs: UInt64, action: @Sendable () -> Void)] = [:]
        var nextToken: UInt64 = 0
        var ticking = false
    }

    static let tickMs: UInt64 = 10
    private let state = Lock(State())

    func expire(after ms: UInt64, _ action: @escaping @Sendable () -> Void) -> UInt64 {
        let (token, startTicking) = state.withLock { state -> (UInt64, Bool) in
            state.nextToken += 1
            state.due[state.nextToken] = (MonotonicClock.nowUs() + ms * 1_000, action)
            defer { state.ticking = true }
            return (state.nextToken, !state.ticking)
        }
        if startTicking { Task { await tick() } }
        return token
    }

    func cancel(_ token: UInt64) {
        _ = state.withLock { $0.due.removeValue(forKey: token) }
    }

    /// Runs while anything is registered; stops, and the next registration starts it again,
    /// when nothing is.
    private func tick() async {
        while true {
            try? await Task.sleep(nanoseconds: Self.tickMs * 1_000_000)
            let nowUs = MonotonicClock.nowUs()
            let (ready, stop) = state.withLock { state -> ([@Sendable () -> Void], Bool) in
                let ready = state.due.filter { $0.value.atUs <= nowUs }
                for token in ready.keys { state.due[token] = nil }
                if state.due.isEmpty { state.ticking = false }
                return (ready.values.map(\.action), state.due.isEmpty)
            }
            for action in ready { action() }
            if stop { return }
        }
    }
}

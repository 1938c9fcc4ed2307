import Foundation

/// Runs blocking work (waiting on child processes, sleeping between polls, a long CPU-bound
/// simulation) on a thread of its own and awaits it. Swift Testing runs tests on the
/// cooperative pool, which has one thread per core: on a 2-core machine two such tests would
/// hold every thread, and the async tests beside them (a live workload, a node's recovery)
/// would stall until they finished.
public func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            continuation.resume(with: Result { try body() })
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

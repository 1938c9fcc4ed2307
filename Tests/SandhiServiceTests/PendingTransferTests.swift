import SandhiEngine
import SandhiRuntime
@testable import SandhiService
import Testing

/// Waiting for a transfer with a deadline: one that ends before its deadline is always its
/// outcome, never "pending" (an earlier version could answer 202 for a committed transfer: its
/// cancelled timer woke first; the SIGTERM test of `sandhi serve` caught it under load); one
/// still running at its deadline is nil, and goes on.
@Suite struct PendingTransferTests {
    static func result(_ n: Int) -> TransferResult {
        TransferResult(transaction: TransactionID(epoch: 1, sequence: UInt64(n)), outcome: .committed, latencyUs: 1)
    }

    @Test func aTransferThatEndsBeforeItsDeadlineIsAlwaysItsOutcome() async throws {
        let wheel = DeadlineWheel()
        for round in 1...5_000 {
            let pending = PendingTransfer(wheel: wheel)
            Task { pending.complete(.success(Self.result(round))) }
            let value = try await pending.wait(upToMs: 60_000)
            #expect(value?.transaction.sequence == UInt64(round), "round \(round): the deadline answered first")
            if value?.transaction.sequence != UInt64(round) { return }
        }
    }

    @Test func aTransferStillRunningAtItsDeadlineIsNilAndEveryWaiterHearsTheEnd() async throws {
        let wheel = DeadlineWheel()
        let pending = PendingTransfer(wheel: wheel)
        #expect(try await pending.wait(upToMs: 20) == nil, "the deadline passed first")
        async let joined = pending.wait(upToMs: 60_000)
        try await Task.sleep(nanoseconds: 20_000_000)
        pending.complete(.success(Self.result(7)))
        #expect(try await joined?.transaction.sequence == 7)
        #expect(try await pending.wait(upToMs: 1)?.transaction.sequence == 7, "after the end: at once")
    }
}

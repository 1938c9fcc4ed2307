@testable import SandhiService
import Testing

/// Waiting for a transfer with a deadline: a task that ends long before its deadline is always
/// its value, never "pending". (An earlier version cancelled its timer before handing over the
/// value; the cancelled timer could wake first and answer nil for a decided transfer, which
/// the SIGTERM test of `sandhi serve` caught once as a 202 for a committed transfer.)
@Suite struct DeadlineTests {
    @Test func aTaskThatEndsBeforeItsDeadlineIsAlwaysItsValue() async throws {
        for round in 0..<5_000 {
            let task = Task<Int, Error> { round }
            let value = try await Deadline.wait(for: task, upToMs: 60_000)
            #expect(value == round, "round \(round): the deadline answered first")
            if value != round { return }
        }
    }

    @Test func aTaskStillRunningAtItsDeadlineIsNil() async throws {
        let task = Task<Int, Error> {
            try await Task.sleep(nanoseconds: 2_000_000_000)
            return 1
        }
        #expect(try await Deadline.wait(for: task, upToMs: 20) == nil)
        task.cancel()
    }
}

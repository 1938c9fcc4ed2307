import Foundation
import SandhiEngine
import SandhiTestSupport
import Testing

/// The crash test of issue 2: a child `sandhi bench` killed with SIGKILL at random instants,
/// each kill followed by `sandhi recover` and `sandhi check` in fresh processes. No money may be
/// created or lost, no transaction half-applied, no prepared branch or lock left behind.
///
/// `SANDHI_CRASH_KILLS=N` runs N kills instead of the default 50.
@Suite struct CrashRecoveryTests {
    @Test func benchKilledAtRandomInstantsAlwaysRecoversToAConsistentState() async throws {
        let temporary = TemporaryDirectory("sandhi-crash"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let kills = Int(ProcessInfo.processInfo.environment["SANDHI_CRASH_KILLS"] ?? "") ?? 50
        let seed = UInt64(ProcessInfo.processInfo.environment["SANDHI_CRASH_SEED"] ?? "") ?? 2_026

        let created = try SandhiBinary.run(["init", "--data", data, "--accounts", "50", "--opening", "1000"])
        try #require(created.status == 0, "init failed: \(created.stderr)")
        let opening = try Self.total(data)
        // The kills wait on child processes: on a thread of their own, not the test pool's.
        let (failures, resolvedInDoubt) = try await onOwnThread { () throws -> ([String], Int) in
            var random = SplitMix64(seed: seed)
            var resolvedInDoubt = 0
            for round in 1...kills {
                // Few accounts and many clients: contention, NO votes and aborts, not just the happy path.
                let bench = try SandhiBinary.start(["bench", "--data", data, "--clients", "32", "--duration", "60", "--seed", String(round)])
                // Anywhere from start-up (recovery of the previous crash) to mid-flight.
                usleep(UInt32(20_000 + random.next() % 380_000))
                SandhiBinary.kill(bench)

                let recovered = try SandhiBinary.run(["recover", "--data", data])
                guard recovered.status == 0 else { return (["round \(round): recover failed: \(recovered.stderr)"], resolvedInDoubt) }
                resolvedInDoubt += recovered.stdout.split(separator: "\n").filter { $0.hasPrefix("T-") }.count
                let checked = try SandhiBinary.run(["check", "--data", data])
                guard checked.status == 0 else { return (["round \(round): check failed after kill:\n\(checked.stdout)\(checked.stderr)"], resolvedInDoubt) }
                guard checked.stdout.contains("total: \(opening)") else { return (["round \(round): money created or lost:\n\(checked.stdout)"], resolvedInDoubt) }
            }
            return ([], resolvedInDoubt)
        }
        #expect(failures.isEmpty, "\(failures)")
        // The kills must actually land mid-protocol sometimes, or this test proves little.
        print("crash test: \(kills) kills, \(resolvedInDoubt) in-doubt transactions resolved by recovery")
        #expect(resolvedInDoubt > 0, "no kill ever left a transaction in doubt; the test is not exercising recovery")
    }

    static func total(_ data: String) throws -> Int64 {
        let checked = try SandhiBinary.run(["check", "--data", data])
        let line = try #require(checked.stdout.split(separator: "\n").first { $0.hasPrefix("total: ") })
        return try #require(Int64(line.dropFirst("total: ".count)))
    }
}

import Foundation
import SandhiTestSupport
import Testing

/// `sandhi bench --workload contention` end to end: lock waits, deadlocks, audits, a recorded
/// history that `sandhi check-history` finds clean, and banks that `sandhi check` passes.
@Suite struct ContentionBenchTests {
    @Test func aContentionRunWithAuditsLeavesACleanHistory() throws {
        let temporary = TemporaryDirectory("sandhi-contention"); defer { temporary.remove() }
        let data = temporary.appending("data"), history = temporary.appending("history.jsonl")
        let initialised = try SandhiBinary.run(["init", "--data", data, "--accounts", "12"])
        #expect(initialised.status == 0, "\(initialised.stderr)")
        // A run before the recorded one: the history must start from the states it left.
        let earlier = try SandhiBinary.run(["bench", "--data", data, "--workload", "contention", "--hot-accounts", "5",
                                           "--clients", "8", "--duration", "1"])
        #expect(earlier.status == 0, "\(earlier.stderr)")
        let bench = try SandhiBinary.run(["bench", "--data", data, "--workload", "contention", "--hot-accounts", "5",
                                         "--clients", "16", "--duration", "2", "--read-fraction", "0.2", "--history", history])
        #expect(bench.status == 0, "\(bench.stdout)\n\(bench.stderr)")
        let out = bench.stdout
        #expect(out.contains("contention on 5 hot accounts"))
        #expect(out.contains("deadlock detection on"))
        #expect(out.range(of: #"deadlocks     [1-9][0-9]* \("#, options: .regularExpression) != nil, "no deadlock: \(out)")
        #expect(out.range(of: #"audits        [1-9][0-9]* committed, 0 saw a total other than"#, options: .regularExpression) != nil, "\(out)")
        let checked = try SandhiBinary.run(["check-history", history])
        #expect(checked.status == 0, "\(checked.stdout)\n\(checked.stderr)")
        #expect(checked.stdout.contains("result: clean"))
        let check = try SandhiBinary.run(["check", "--data", data, "--deadlocks"])
        #expect(check.status == 0, "\(check.stdout)")
        // The journal the run left: each deadlock with its members, policy, victim and why.
        #expect(check.stdout.range(of: #"deadlocks: [1-9][0-9]* found since the coordinator last started"#, options: .regularExpression) != nil,
                "\(check.stdout)")
        #expect(check.stdout.contains("policy least-work: victim T-"))
        #expect(check.stdout.contains("candidates: T-"))
        let json = try SandhiBinary.run(["check", "--data", data, "--deadlocks", "--json"])
        let parsed = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let journal = try #require(parsed?["deadlocks"] as? [String: Any])
        #expect((journal["total"] as? Int ?? 0) > 0)
        #expect(!((journal["entries"] as? [Any]) ?? []).isEmpty)
    }

    @Test func checkSaysSoWhenNoDeadlockWasEverRecorded() throws {
        let temporary = TemporaryDirectory("sandhi-contention"); defer { temporary.remove() }
        let data = temporary.appending("data")
        _ = try SandhiBinary.run(["init", "--data", data, "--accounts", "4"])
        let check = try SandhiBinary.run(["check", "--data", data, "--deadlocks"])
        #expect(check.status == 0)
        #expect(check.stdout.contains("deadlocks: none recorded"))
    }

    @Test func badWorkloadOptionsAreOneLine() throws {
        let temporary = TemporaryDirectory("sandhi-contention"); defer { temporary.remove() }
        let data = temporary.appending("data")
        _ = try SandhiBinary.run(["init", "--data", data, "--accounts", "2000"])
        for (arguments, problem) in [
            (["--workload", "chaos"], "--workload must be"),
            (["--read-fraction", "1.5"], "--read-fraction must be between 0 and 1"),
            (["--hot-accounts", "0"], "--hot-accounts must be between"),
            (["--deadlock-detection", "maybe"], "--deadlock-detection must be `on` or `off`"),
            (["--read-fraction", "0.1"], "an audit reads every account"),
        ] {
            let result = try SandhiBinary.run(["bench", "--data", data, "--duration", "1"] + arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.contains(problem), "\(arguments): \(result.stderr)")
        }
    }
}

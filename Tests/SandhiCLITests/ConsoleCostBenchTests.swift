import Foundation
import SandhiTestSupport
import Testing

/// `sandhi bench --console`: the real console attached on a pseudo-terminal in half the phases.
/// The figures are for people to judge (a timed assertion would be noise); what is checked is
/// that the console really ran against the engine (frames drawn, events taken, bytes written to
/// the terminal, every screen typed) and that the banks it watched are left consistent.
@Suite struct ConsoleCostBenchTests {
    @Test func theConsoleIsAttachedInHalfThePhasesAndItsCostReported() async throws {
        let temporary = TemporaryDirectory("sandhi-console-bench"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let created = try SandhiBinary.run(["init", "--data", data, "--accounts", "200"])
        try #require(created.status == 0, "\(created.stderr)")
        let result = try await onOwnThread {
            try SandhiBinary.run(["bench", "--data", data, "--console", "--clients", "8", "--duration", "4", "--json"])
        }
        try #require(result.status == 0, "\(result.stdout)\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let with = try #require(report["with"] as? [String: Any]), without = try #require(report["without"] as? [String: Any])
        #expect((with["phaseTransfersPerSecond"] as? [Double])?.count == 4)
        #expect((without["phaseTransfersPerSecond"] as? [Double])?.count == 4)
        #expect((with["transfersPerSecond"] as? Double ?? 0) > 0 && (without["transfersPerSecond"] as? Double ?? 0) > 0)
        #expect((report["framesPerSecond"] as? Double ?? 0) > 1, "\(report)")
        #expect((report["eventsPerSecond"] as? Double ?? 0) > 0, "\(report)")
        #expect((report["terminalBytesPerSecond"] as? Double ?? 0) > 0, "\(report)")
        #expect((report["consoleCoreShare"] as? Double ?? 0) > 0, "\(report)")
        #expect(report["eventsDropped"] as? Int == 0, "\(report)")
        let checked = try SandhiBinary.run(["check", "--data", data])
        #expect(checked.status == 0, "\(checked.stdout)")
    }

    @Test func theTextReportNamesBothHalvesAndTheSlowdown() async throws {
        let temporary = TemporaryDirectory("sandhi-console-bench"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let result = try await onOwnThread {
            try SandhiBinary.run(["bench", "--data", data, "--accounts", "100", "--console", "--clients", "4", "--duration", "2"])
        }
        try #require(result.status == 0, "\(result.stdout)\(result.stderr)")
        for label in ["without (A)", "with (B)", "slowdown", "console", "order ABBA ABBA"] {
            #expect(result.stdout.contains(label), "\(label): \(result.stdout)")
        }
    }

    @Test func consoleWithAHistoryIsRefusedInOneLine() throws {
        let temporary = TemporaryDirectory("sandhi-console-bench"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let result = try SandhiBinary.run(["bench", "--data", data, "--console", "--history", temporary.appending("h.jsonl")])
        #expect(result.status != 0)
        #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.contains("--console"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: temporary.appending("h.jsonl")))
        #expect(!FileManager.default.fileExists(atPath: data), "nothing was created")
    }
}

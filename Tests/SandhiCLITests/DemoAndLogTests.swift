import Foundation
import SandhiTestSupport
import Testing

/// The README's main command, end to end, and the commands that read the log.
@Suite struct DemoAndLogTests {
    @Test func theMumbaiConsolidationCommitsEverywhereWithTDSAndItsReport() throws {
        let temporary = TemporaryDirectory("sandhi-demo"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let result = try SandhiBinary.run(["demo", "run", "mumbai", "--headless", "--data", data])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let out = result.stdout
        // One transaction, six participants, each voting YES before the durable COMMIT.
        for participant in ["hdfc", "icici", "axis", "sbi", "tax", "regulator"] {
            #expect(out.contains("\(participant) voted YES"), "no vote from \(participant)")
            #expect(out.contains("\(participant) acknowledged"), "no acknowledgement from \(participant)")
        }
        let durable = try #require(out.range(of: "COMMIT durable at segment"))
        let firstCommit = try #require(out.range(of: "COMMIT -> "))
        #expect(durable.lowerBound < firstCommit.lowerBound, "COMMIT was sent before the decision was durable")
        #expect(out.contains("sbi/client                           ₹0.00     ₹17,82,000.00"))
        #expect(out.contains("tax/tds                              ₹0.00        ₹18,000.00"))
        #expect(out.contains("Check: debits ₹18,00,000.00 = credits ₹17,82,000.00 + TDS ₹18,000.00  ✓"))
        #expect(out.contains("Report ledger: 1 row(s) filed with the money  ✓"))
        #expect(out.contains("all hold ✓"))

        let check = try SandhiBinary.run(["check", "--data", data])
        #expect(check.status == 0, "\(check.stdout)")
        let dump = try SandhiBinary.run(["log", "dump", "--data", data])
        #expect(dump.status == 0)
        #expect(dump.stdout.contains("COMMIT   T-1.1 at hdfc, icici, axis, sbi, tax, regulator"), "\(dump.stdout)")
        #expect(dump.stdout.contains("END      T-1.1 acknowledged everywhere"))
    }

    @Test func axisVotingNoLeavesEveryLedgerUnchanged() throws {
        let temporary = TemporaryDirectory("sandhi-demo"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let result = try SandhiBinary.run(["demo", "run", "mumbai", "--headless", "--fail", "axis-insufficient", "--data", data])
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        #expect(result.stdout.contains("axis voted NO (insufficient funds in axis/client-joint"))
        #expect(result.stdout.contains("every ledger unchanged (no debit, no credit, no TDS, no report)  ✓"))
        #expect(!result.stdout.contains("COMMIT durable"))
        let dump = try SandhiBinary.run(["log", "dump", "--data", data])
        #expect(!dump.stdout.contains("COMMIT  "), "an aborted transaction left a COMMIT record: \(dump.stdout)")
    }

    @Test func unknownScenarioOrFailureIsOneLine() throws {
        let temporary = TemporaryDirectory("sandhi-demo"); defer { temporary.remove() }
        for arguments in [["demo", "run", "pune"], ["demo", "run", "mumbai", "--fail", "meteor"]] {
            let result = try SandhiBinary.run(arguments + ["--data", temporary.appending("data")])
            #expect(result.status != 0)
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: temporary.appending("data")))
    }
}

import Foundation
import SandhiTestSupport
import Testing

/// Reads inside a transfer: the committed balance, its version and its writer.
@Suite struct TransferReadTests {
    @Test func readsReportTheCommittedBalanceVersionAndWriter() throws {
        let temporary = TemporaryDirectory("sandhi-read"); defer { temporary.remove() }
        let data = temporary.appending("data")
        _ = try SandhiBinary.run(["init", "--data", data, "--accounts", "3"])
        let first = try SandhiBinary.run(["transfer", "--data", data, "--read", "hdfc/acct-000001"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("read hdfc/acct-000001 = ₹1,00,000.00 (version 0, the opening balance)"))
        let moved = try SandhiBinary.run(["transfer", "--data", data, "--from", "hdfc/acct-000001", "--to", "sbi/acct-000002", "--amount", "10"])
        let id = try #require(moved.stdout.split(separator: " ").first.map(String.init))
        let after = try SandhiBinary.run(["transfer", "--data", data, "--read", "hdfc/acct-000001", "--read", "sbi/acct-000002", "--json"])
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(after.stdout.utf8)) as? [String: Any])
        let reads = try #require(parsed["reads"] as? [[String: Any]])
        #expect(reads.count == 2)
        #expect(reads[0]["balance_paise"] as? Int == 9_999_000 && reads[0]["version"] as? Int == 1 && reads[0]["writer"] as? String == id)
        #expect(reads[1]["balance_paise"] as? Int == 10_001_000 && reads[1]["writer"] as? String == id)
    }

    @Test func aReadOfAnUnknownAccountAbortsWithOneLine() throws {
        let temporary = TemporaryDirectory("sandhi-read"); defer { temporary.remove() }
        let data = temporary.appending("data")
        _ = try SandhiBinary.run(["init", "--data", data, "--accounts", "3"])
        let result = try SandhiBinary.run(["transfer", "--data", data, "--read", "hdfc/nobody"])
        #expect(result.status == 1)
        #expect(result.stderr == "sandhi: transfer aborted: hdfc voted NO: unknown account hdfc/nobody\n")
        let malformed = try SandhiBinary.run(["transfer", "--data", data, "--read", "hdfc"])
        #expect(malformed.status != 0 && malformed.stderr.contains("must be BANK/ACCOUNT"))
    }

    /// For programs, `--json` says why a transfer aborted without a sentence to parse: the abort
    /// cause, the kind of NO vote, and whether running it again could help.
    @Test func jsonSaysTheCauseAndTheRefusalOfAnAbortedTransfer() throws {
        let temporary = TemporaryDirectory("sandhi-read"); defer { temporary.remove() }
        let data = temporary.appending("data")
        _ = try SandhiBinary.run(["init", "--data", data, "--accounts", "3"])
        let refused = try SandhiBinary.run(["transfer", "--data", data, "--from", "hdfc/acct-000001", "--to", "sbi/acct-000002",
                                            "--amount", "200000", "--json"])
        #expect(refused.status == 1)
        let aborted = try #require(try JSONSerialization.jsonObject(with: Data(refused.stdout.utf8)) as? [String: Any])
        #expect(aborted["outcome"] as? String == "aborted")
        #expect(aborted["cause"] as? String == "participant-refused")
        #expect(aborted["refusal"] as? String == "insufficient-funds")
        #expect(aborted["transient"] as? Bool == false)
        #expect((aborted["reason"] as? String)?.hasPrefix("hdfc voted NO: insufficient funds in hdfc/acct-000001") == true, "\(aborted)")

        let moved = try SandhiBinary.run(["transfer", "--data", data, "--from", "hdfc/acct-000001", "--to", "sbi/acct-000002",
                                          "--amount", "10", "--json"])
        #expect(moved.status == 0)
        let committed = try #require(try JSONSerialization.jsonObject(with: Data(moved.stdout.utf8)) as? [String: Any])
        #expect(committed["outcome"] as? String == "committed")
        #expect(committed["cause"] == nil && committed["refusal"] == nil && committed["transient"] == nil, "\(committed)")
    }
}

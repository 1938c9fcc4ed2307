import Foundation
import SandhiTestSupport
import Testing

/// `sandhi check-history`: exit 0 clean, 1 anomalies (each named with its transactions),
/// and 2 with one line on stderr for a file it cannot read. The files are written out by hand:
/// the JSON-lines format is the contract, not whatever the library happens to encode.
@Suite struct CheckHistoryCommandTests {
    static let header = #"{"type":"history","version":1,"total_paise":20000}"#

    /// A transfer of 1,000 paise from hdfc to sbi, then an audit that sees it whole.
    static let clean = [
        header,
        #"{"type":"txn","id":"T-1.1","outcome":"committed","audit":false,"start_us":100,"end_us":250,"ops":["#
            + #"{"f":"read","key":"hdfc/acct-000001","value":10000,"version":0,"writer":null},"#
            + #"{"f":"write","key":"hdfc/acct-000001","value":9000,"version":1},"#
            + #"{"f":"read","key":"sbi/acct-000002","value":10000,"version":0,"writer":null},"#
            + #"{"f":"write","key":"sbi/acct-000002","value":11000,"version":1}]}"#,
        #"{"type":"txn","id":"T-1.2","outcome":"aborted","audit":false,"ops":["#
            + #"{"f":"read","key":"sbi/acct-000002","value":11000,"version":1,"writer":"T-1.1"},"#
            + #"{"f":"write","key":"sbi/acct-000002","value":0,"version":2}]}"#,
        #"{"type":"txn","id":"T-1.3","outcome":"committed","audit":true,"ops":["#
            + #"{"f":"read","key":"hdfc/acct-000001","value":9000,"version":1,"writer":"T-1.1"},"#
            + #"{"f":"read","key":"sbi/acct-000002","value":11000,"version":1,"writer":"T-1.1"}]}"#,
    ]

    /// Write skew: both read both accounts at their initial versions, each then writes one.
    static let writeSkew = [
        header,
        #"{"type":"txn","id":"T-1.5","outcome":"committed","audit":false,"ops":["#
            + #"{"f":"read","key":"hdfc/acct-000001","value":10000,"version":0,"writer":null},"#
            + #"{"f":"read","key":"sbi/acct-000002","value":10000,"version":0,"writer":null},"#
            + #"{"f":"write","key":"hdfc/acct-000001","value":5000,"version":1}]}"#,
        #"{"type":"txn","id":"T-1.7","outcome":"committed","audit":false,"ops":["#
            + #"{"f":"read","key":"hdfc/acct-000001","value":10000,"version":0,"writer":null},"#
            + #"{"f":"read","key":"sbi/acct-000002","value":10000,"version":0,"writer":null},"#
            + #"{"f":"write","key":"sbi/acct-000002","value":5000,"version":1}]}"#,
    ]

    /// The clean history and one more committed read of sbi/acct-000002 at T-1.1's version,
    /// as 11500 paise: a value T-1.1 never wrote. Nothing else is wrong with it.
    static let garbageRead = clean + [
        #"{"type":"txn","id":"T-1.4","outcome":"committed","audit":false,"ops":["#
            + #"{"f":"read","key":"sbi/acct-000002","value":11500,"version":1,"writer":"T-1.1"}]}"#,
    ]

    func write(_ lines: [String], named name: String, in directory: TemporaryDirectory) throws -> String {
        let path = directory.appending(name)
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func aCleanHistoryExitsZero() throws {
        let directory = TemporaryDirectory("sandhi-history"); defer { directory.remove() }
        let path = try write(Self.clean, named: "clean.jsonl", in: directory)
        let result = try SandhiBinary.run(["check-history", path])
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains("transactions: 3 (committed 2, aborted 1"), "\(result.stdout)")
        #expect(result.stdout.contains("audits checked: 1"))
        #expect(result.stdout.contains("result: clean (no garbage read; "), "\(result.stdout)")
        #expect(result.stderr.isEmpty)

        let json = try SandhiBinary.run(["check-history", path, "--json"])
        #expect(json.status == 0)
        #expect(json.stdout.contains(#""clean":true"#) && json.stdout.contains(#""audits_checked":1"#), "\(json.stdout)")
    }

    @Test func aWriteSkewExitsOneAndShowsTheCycle() throws {
        let directory = TemporaryDirectory("sandhi-history"); defer { directory.remove() }
        let path = try write(Self.writeSkew, named: "skew.jsonl", in: directory)
        let result = try SandhiBinary.run(["check-history", path])
        #expect(result.status == 1, "\(result.stdout) \(result.stderr)")
        let cycles = result.stdout.split(separator: "\n").filter { $0.contains("G2-item: T-1.") }
        #expect(cycles.count == 1, "\(result.stdout)")
        #expect(cycles.first.map { $0.contains("T-1.5") && $0.contains("T-1.7") && $0.contains("-rw(") } == true, "\(result.stdout)")
        #expect(result.stdout.contains("result: 1 anomaly (G2-item 1)"), "\(result.stdout)")

        let json = try SandhiBinary.run(["check-history", "--json", path])
        #expect(json.status == 1)
        #expect(json.stdout.contains(#""kind":"G2-item""#) && json.stdout.contains(#""clean":false"#), "\(json.stdout)")
    }

    @Test func aGarbageReadExitsOneAndNamesTheReadAndTheWrite() throws {
        let directory = TemporaryDirectory("sandhi-history"); defer { directory.remove() }
        let path = try write(Self.garbageRead, named: "garbage.jsonl", in: directory)
        let result = try SandhiBinary.run(["check-history", path])
        #expect(result.status == 1, "\(result.stdout) \(result.stderr)")
        #expect(result.stdout.contains(
            "  garbage-read: T-1.4 read sbi/acct-000002@1 = 11500 paise, but its writer T-1.1 wrote 11000 paise as that version\n"),
                "\(result.stdout)")
        #expect(result.stdout.contains("result: 1 anomaly (garbage-read 1)"), "\(result.stdout)")

        let json = try SandhiBinary.run(["check-history", "--json", path])
        #expect(json.status == 1)
        #expect(json.stdout.contains(#""kind":"garbage-read""#) && json.stdout.contains(#""garbage-read":1"#), "\(json.stdout)")
    }

    @Test func aMalformedFileIsOneLineNamingTheLineAndNotExitOne() throws {
        let directory = TemporaryDirectory("sandhi-history"); defer { directory.remove() }
        var lines = Self.clean
        lines[2] = #"{"type":"txn","id":"T-1.2","outcome":"committed","ops":[{"f":"delete","key":"k","value":1,"version":1}]}"#
        let path = try write(lines, named: "bad.jsonl", in: directory)
        let result = try SandhiBinary.run(["check-history", path])
        #expect(result.status != 0 && result.status != 1, "status \(result.status)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(path) && result.stderr.contains("line 3") && result.stderr.contains(#"unknown op "delete""#), "\(result.stderr)")
        #expect(result.stdout.isEmpty)

        let missing = try SandhiBinary.run(["check-history", directory.appending("nowhere.jsonl")])
        #expect(missing.status != 0 && missing.status != 1)
        #expect(missing.stderr.split(separator: "\n").count == 1 && missing.stderr.contains("no such file"), "\(missing.stderr)")
    }
}

import Foundation
import SandhiTestSupport
import Testing

/// Bad input gets one clear line naming the problem, a non-zero exit, and changes nothing.
@Suite struct BadInputTests {
    struct Fixture {
        let temporary = TemporaryDirectory("sandhi-cli")
        let data: String

        init() throws {
            data = temporary.appending("data")
            let created = try SandhiBinary.run(["init", "--data", data, "--banks", "hdfc,sbi", "--accounts", "3", "--opening", "1000"])
            try #require(created.status == 0, "\(created.stderr)")
        }

        /// Every bank's balances, as `sandhi check --json` reports them.
        func state() throws -> String {
            let checked = try SandhiBinary.run(["check", "--data", data, "--json"])
            #expect(checked.status == 0, "check failed: \(checked.stdout) \(checked.stderr)")
            return checked.stdout
        }

        func expectRefused(_ arguments: [String], mentioning needle: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let before = try state()
            let result = try SandhiBinary.run(arguments)
            #expect(result.status != 0, "accepted: \(arguments)", sourceLocation: sourceLocation)
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "expected one line on stderr, got: \(result.stderr)", sourceLocation: sourceLocation)
            #expect(result.stderr.contains(needle), "stderr \(result.stderr) does not mention \(needle)", sourceLocation: sourceLocation)
            #expect(try state() == before, "\(arguments) changed the balances", sourceLocation: sourceLocation)
        }

        func remove() { temporary.remove() }
    }

    @Test func aGoodTransferCommitsAndMovesMoney() throws {
        let fixture = try Fixture(); defer { fixture.remove() }
        let result = try SandhiBinary.run(["transfer", "--data", fixture.data, "--from", "hdfc/acct-000001", "--to", "sbi/acct-000002", "--amount", "250.50"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("committed"))
        let check = try SandhiBinary.run(["check", "--data", fixture.data])
        #expect(check.status == 0)
        #expect(check.stdout.contains("total: 600000"))
    }

    @Test func unknownBankOrAccount() throws {
        let fixture = try Fixture(); defer { fixture.remove() }
        try fixture.expectRefused(["transfer", "--data", fixture.data, "--from", "citi/acct-000001", "--to", "sbi/acct-000001", "--amount", "1"], mentioning: "unknown bank citi")
        try fixture.expectRefused(["transfer", "--data", fixture.data, "--from", "hdfc/nobody", "--to", "sbi/acct-000001", "--amount", "1"], mentioning: "unknown account hdfc/nobody")
        try fixture.expectRefused(["transfer", "--data", fixture.data, "--from", "hdfc/acct-000001", "--to", "sbi/acct-000001", "--amount", "5000"], mentioning: "insufficient funds")
    }

    @Test func badAmounts() throws {
        let fixture = try Fixture(); defer { fixture.remove() }
        for amount in ["-5", "0", "1.234", "abc", "99999999999999999999"] {
            try fixture.expectRefused(["transfer", "--data", fixture.data, "--from", "hdfc/acct-000001", "--to", "sbi/acct-000001", "--amount", amount], mentioning: "amount")
        }
        try fixture.expectRefused(["transfer", "--data", fixture.data, "--debit", "hdfc/acct-000001=10", "--credit", "sbi/acct-000001=9"], mentioning: "do not balance")
        // Amounts whose sum would overflow Int64 paise are refused, not trapped on.
        try fixture.expectRefused(["transfer", "--data", fixture.data, "--debit", "hdfc/acct-000001=50000000000000000",
                                   "--debit", "sbi/acct-000001=50000000000000000", "--credit", "sbi/acct-000002=1"], mentioning: "exceeds the largest")
    }

    @Test func aFailedInitLeavesNothingBehind() throws {
        let temporary = TemporaryDirectory("sandhi-init"); defer { temporary.remove() }
        let data = temporary.appending("data")
        for arguments in [["--opening", "20000000000000"], ["--opening", "9000000000000", "--accounts", "100000"], ["--banks", "Bad Name"]] {
            let result = try SandhiBinary.run(["init", "--data", data] + arguments)
            #expect(result.status != 0, "init accepted \(arguments)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: data), "a failed init left \(data) behind")
        }
        let created = try SandhiBinary.run(["init", "--data", data, "--accounts", "2"])
        #expect(created.status == 0, "\(created.stderr)")
    }

    @Test func missingOrForeignDataDirectory() throws {
        let fixture = try Fixture(); defer { fixture.remove() }
        let missing = fixture.temporary.appending("nowhere")
        let result = try SandhiBinary.run(["check", "--data", missing])
        #expect(result.status != 0 && result.stderr.contains("does not exist"))
        #expect(!FileManager.default.fileExists(atPath: missing), "a failed command created the directory")
        let foreign = fixture.temporary.appending("foreign")
        try FileManager.default.createDirectory(atPath: foreign, withIntermediateDirectories: true)
        let refused = try SandhiBinary.run(["transfer", "--data", foreign, "--from", "hdfc/a", "--to", "sbi/b", "--amount", "1"])
        #expect(refused.status != 0 && refused.stderr.contains("not a Sandhi data directory"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: foreign).isEmpty)
        let again = try SandhiBinary.run(["init", "--data", fixture.data])
        #expect(again.status != 0 && again.stderr.contains("already holds"))
    }

    @Test func aCorruptLogStopsWithTheFileAndOffset() throws {
        let fixture = try Fixture(); defer { fixture.remove() }
        for _ in 0..<2 {
            let moved = try SandhiBinary.run(["transfer", "--data", fixture.data, "--from", "hdfc/acct-000001", "--to", "sbi/acct-000001", "--amount", "1"])
            try #require(moved.status == 0, "\(moved.stderr)")
        }
        let banksBefore = try bankFiles(fixture.data)
        let directory = fixture.data + "/coordinator"
        let segment = directory + "/" + (try FileManager.default.contentsOfDirectory(atPath: directory).sorted().first!)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: segment)))
        // Inside the second record's payload: a whole record follows, so this is not a torn tail.
        let secondRecord = 12 + Int(bytes[0]) | Int(bytes[1]) << 8
        bytes[secondRecord + 12] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        for command in [["transfer", "--from", "hdfc/acct-000001", "--to", "sbi/acct-000001", "--amount", "1"], ["recover"], ["check"]] {
            let result = try SandhiBinary.run(command + ["--data", fixture.data])
            #expect(result.status != 0, "\(command) accepted a corrupt log")
            #expect(result.stderr.split(separator: "\n").count == 1)
            #expect(result.stderr.contains("decision log corrupt") && result.stderr.contains(segment) && result.stderr.contains("byte \(secondRecord)"),
                    "\(result.stderr)")
        }
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: segment))) == bytes, "the corrupt log was modified")
        #expect(try bankFiles(fixture.data) == banksBefore, "a bank changed while the log was corrupt")
    }

    /// Every file of every bank, byte for byte.
    func bankFiles(_ data: String) throws -> [String: Data] {
        let banks = data + "/banks"
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: banks) where !name.hasSuffix("-shm") {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: banks + "/" + name))
        }
        return files
    }

    @Test func aSecondProcessOnTheSameDirectoryIsRefused() throws {
        let fixture = try Fixture(); defer { fixture.remove() }
        let bench = try SandhiBinary.start(["bench", "--data", fixture.data, "--clients", "2", "--duration", "30"])
        defer { SandhiBinary.kill(bench) }
        // Wait until the bench holds the lock (it writes its pid into the lock file once it
        // does), without ever taking the lock ourselves: trying to would race the bench for it.
        var held = false
        for _ in 0..<400 where !held {
            let content = (try? String(contentsOfFile: fixture.data + "/sandhi.lock", encoding: .utf8)) ?? ""
            held = content.trimmingCharacters(in: .whitespacesAndNewlines) == String(bench.pid)
            if !held { usleep(25_000) }
        }
        try #require(held, "the bench never took the directory lock")
        let result = try SandhiBinary.run(["transfer", "--data", fixture.data, "--from", "hdfc/acct-000001", "--to", "sbi/acct-000001", "--amount", "1"])
        #expect(result.stderr.contains("another sandhi process"), "\(result.stderr)")
        #expect(result.status != 0)
        #expect(result.stderr.contains("pid \(bench.pid)"))
    }
}

/// `sandhi init --log-postgres`: the database is checked before anything is created.
@Suite struct InitLogPostgresInputTests {
    @Test func anUnreachableOrMalformedLogDatabaseIsRefusedInOneLineAndLeavesNothing() throws {
        let temporary = TemporaryDirectory("sandhi-init-log"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let cases = [
            ("postgres://sandhi@127.0.0.1:1/decisions", "cannot connect to PostgreSQL database decisions for the decision log"),
            ("mysql://sandhi@db/decisions", "--log-postgres: \"mysql://sandhi@db/decisions\" is not a postgres:// URL"),
        ]
        for (url, needle) in cases {
            let result = try SandhiBinary.run(["init", "--data", data, "--accounts", "2", "--log-postgres", url])
            #expect(result.status != 0, "init accepted \(url)")
            #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.contains(needle), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: data), "a failed init left \(data) behind")
        }
    }
}

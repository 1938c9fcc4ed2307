import Foundation
import SandhiEngine
import SandhiPostgresLog
import SandhiTestSupport
import Testing

/// Coordinators whose decision log is in PostgreSQL (`sandhi init --log-postgres`), run as the
/// `sandhi` executable: killed with SIGKILL and recovered from the table, and a standby refused
/// while the primary holds the log, then taking over once it is dead.
extension PostgresBankTests {
    /// `SANDHI_PG_LOG_KILLS=N` runs N kills instead of the default 6.
    ///
    /// Verified to fail: with `PostgresDecisionLog.sync` planted to write nothing, the first
    /// `sandhi recover` refuses (the log is empty while the banks hold epoch 1), no transaction
    /// is resolved, the table holds no row and `sandhi check` fails.
    @Test func benchWithItsDecisionLogInPostgresKilledAndRecoveredConservesBalances() async throws {
        let cluster = try currentCluster()
        let temporary = TemporaryDirectory("sandhi-pg-log"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let kills = Int(ProcessInfo.processInfo.environment["SANDHI_PG_LOG_KILLS"] ?? "") ?? 6
        let databases = ["axis": try cluster.createDatabase("axis"), "sbi": try cluster.createDatabase("sbi")]
        let logDatabase = try cluster.createDatabase("log")
        let list = databases.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.url(cluster, $0.value))" }.joined(separator: ",")
        let initialised = try await onOwnThread {
            try SandhiBinary.run(["init", "--data", data, "--banks", "hdfc,icici", "--postgres", list, "--log-postgres", Self.url(cluster, logDatabase),
                                  "--accounts", "20", "--opening", "1000"])
        }
        try #require(initialised.status == 0, "\(initialised.stderr)")
        let toml = try String(contentsOfFile: data + "/sandhi.toml", encoding: .utf8)
        #expect(toml.contains("log = \"postgres://"), "\(toml)")
        let opening = try Self.directLogTotal(cluster, databases: databases, sqlite: ["hdfc", "icici"], data: data)
        #expect(opening == 4 * 20 * 100_000)

        let (failures, resolved, committed) = try await onOwnThread { () throws -> ([String], Int, Int) in
            var random = SplitMix64(seed: 64)
            var resolved = 0, committed = 0
            for round in 1...kills {
                let bench = try SandhiBinary.start(["bench", "--data", data, "--clients", "16", "--duration", "60", "--seed", String(round)])
                usleep(UInt32(400_000 + random.next() % 1_000_000))
                SandhiBinary.kill(bench)
                let recovered = try SandhiBinary.run(["recover", "--data", data])
                guard recovered.status == 0 else { return (["round \(round): recover failed: \(recovered.stderr)"], resolved, committed) }
                let lines = recovered.stdout.split(separator: "\n")
                resolved += lines.filter { $0.hasPrefix("T-") }.count
                committed += lines.filter { $0.contains("COMMIT (decision found in the log)") }.count
                for (bank, database) in databases {
                    let prepared = try cluster.sql(database, "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()")
                    guard prepared == "0" else { return (["round \(round): \(bank) still holds \(prepared) prepared transaction(s)"], resolved, committed) }
                }
                let total = try Self.directLogTotal(cluster, databases: databases, sqlite: ["hdfc", "icici"], data: data)
                guard total == opening else { return (["round \(round): the banks hold \(total) paise, not \(opening)"], resolved, committed) }
            }
            return ([], resolved, committed)
        }
        #expect(failures.isEmpty, "\(failures)")
        print("decision log in PostgreSQL: \(kills) kills, \(resolved) in-doubt transactions resolved, \(committed) of them by a COMMIT read from the table")
        #expect(resolved > 0, "no kill left a transaction in doubt; the test is not exercising recovery")

        // The decisions were in PostgreSQL, not in segment files; the commands read them there.
        let segments = try FileManager.default.contentsOfDirectory(atPath: data + "/coordinator").filter { $0.hasPrefix("segment-") }
        #expect(segments.isEmpty, "\(segments)")
        let instance = try #require(Self.instance(toml))
        let rows = try await blocking { try cluster.sql(logDatabase, "SELECT count(*) FROM sandhi_decision_log WHERE instance = '\(instance)'") }
        #expect((Int(rows) ?? 0) > 0, "\(rows)")
        let verified = try await onOwnThread { try SandhiBinary.run(["log", "verify", "--data", data]) }
        #expect(verified.status == 0 && verified.stdout.hasPrefix("ok: "), "\(verified.stdout) \(verified.stderr)")
        let dumped = try await onOwnThread { try SandhiBinary.run(["log", "dump", "--data", data]) }
        #expect(dumped.status == 0 && dumped.stdout.hasPrefix("decision log: PostgreSQL database \(logDatabase)"), "\(dumped.stdout.prefix(300))")
        let checked = try await onOwnThread { try SandhiBinary.run(["check", "--data", data]) }
        #expect(checked.status == 0 && checked.stdout.contains("total: \(opening)"), "\(checked.stdout)")
    }

    /// A standby: a second data directory with a copy of the same `sandhi.toml` (same instance,
    /// same PostgreSQL banks, same log). While the primary runs, the standby's start is refused
    /// with one line naming the primary's pid; once the primary is killed, it takes over.
    @Test func aStandbyIsRefusedWhileThePrimaryHoldsTheDecisionLogAndTakesOverWhenItDies() async throws {
        let cluster = try currentCluster()
        let temporary = TemporaryDirectory("sandhi-pg-standby"); defer { temporary.remove() }
        let primary = temporary.appending("primary"), standby = temporary.appending("standby")
        let databases = ["axis": try cluster.createDatabase("axis"), "sbi": try cluster.createDatabase("sbi")]
        let logDatabase = try cluster.createDatabase("log")
        let list = databases.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.url(cluster, $0.value))" }.joined(separator: ",")
        let initialised = try await onOwnThread {
            try SandhiBinary.run(["init", "--data", primary, "--postgres", list, "--log-postgres", Self.url(cluster, logDatabase),
                                  "--accounts", "20", "--opening", "1000"])
        }
        try #require(initialised.status == 0, "\(initialised.stderr)")
        try FileManager.default.createDirectory(atPath: standby, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: primary + "/sandhi.toml", toPath: standby + "/sandhi.toml")
        let instance = try #require(Self.instance(try String(contentsOfFile: primary + "/sandhi.toml", encoding: .utf8)))
        let opening = try Self.directLogTotal(cluster, databases: databases, sqlite: [], data: primary)

        let (refused, benchPid) = try await onOwnThread { () throws -> (SandhiBinary.Result, Int32) in
            let bench = try SandhiBinary.start(["bench", "--data", primary, "--clients", "8", "--duration", "60"])
            defer { SandhiBinary.kill(bench) }
            // Until the primary holds the log (its writer session is there).
            for _ in 0..<200 {
                let writers = try cluster.sql(logDatabase, "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'sandhi-log:\(instance):writer:%'")
                if writers == "1" { break }
                usleep(50_000)
            }
            return (try SandhiBinary.run(["recover", "--data", standby]), bench.pid)
        }
        #expect(refused.status != 0)
        let line = refused.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(line.contains("the decision log of instance \(instance) is held by another coordinator (pid \(benchPid),") && !line.contains("\n"),
                "\(line)")

        // The primary is dead (killed above): the standby takes over and finishes its transactions.
        let recovered = try await onOwnThread { try SandhiBinary.run(["recover", "--data", standby]) }
        #expect(recovered.status == 0, "\(recovered.stderr)")
        for (bank, database) in databases {
            let prepared = try await blocking { try cluster.sql(database, "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()") }
            #expect(prepared == "0", "\(bank)")
        }
        #expect(try Self.directLogTotal(cluster, databases: databases, sqlite: [], data: primary) == opening)
        let checked = try await onOwnThread { try SandhiBinary.run(["check", "--data", standby]) }
        #expect(checked.status == 0 && checked.stdout.contains("total: \(opening)"), "\(checked.stdout)")
    }

    static func instance(_ toml: String) -> String? {
        for line in toml.split(separator: "\n") where line.hasPrefix("instance = \"") {
            return line.dropFirst("instance = \"".count).split(separator: "\"").first.map(String.init)
        }
        return nil
    }

    /// Every balance, summed with SQL in each database and SQLite file itself.
    static func directLogTotal(_ cluster: PostgresCluster, databases: [String: String], sqlite: [String], data: String) throws -> Int64 {
        var total: Int64 = 0
        for database in databases.values {
            total += Int64(try cluster.sql(database, "SELECT COALESCE(SUM(balance), 0) FROM accounts")) ?? .min
        }
        for bank in sqlite {
            let result = try ChildProcess.run("sqlite3", ["file:\(data)/banks/\(bank).sqlite?mode=ro", "SELECT COALESCE(SUM(balance), 0) FROM accounts"],
                                              timeoutSeconds: 60)
            guard result.status == 0 else { throw PostgresCluster.Failure(description: "sqlite3 failed on \(bank): \(result.stderr)") }
            total += Int64(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .min
        }
        return total
    }
}

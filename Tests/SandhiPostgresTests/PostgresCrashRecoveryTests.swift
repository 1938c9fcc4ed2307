import Foundation
import SandhiEngine
import SandhiTestSupport
import Testing

/// Issue 6's crash test: `sandhi bench` over four PostgreSQL databases and two SQLite banks,
/// killed with SIGKILL at random instants; after each kill `sandhi recover` in a fresh process.
/// Then the balances, read straight from each database with SQL (psql and sqlite3, not through
/// Sandhi), still add up to the opening total, no database holds a prepared transaction, and
/// `sandhi check` passes.
///
/// `SANDHI_PG_CRASH_KILLS=N` runs N kills instead of the default 20.
extension PostgresBankTests {
    @Test func benchKilledAtRandomInstantsLeavesEveryDatabaseWholeAndNothingPrepared() async throws {
        let cluster = try #require(PostgresCluster.current)
        let temporary = TemporaryDirectory("sandhi-pg-crash"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let kills = Int(ProcessInfo.processInfo.environment["SANDHI_PG_CRASH_KILLS"] ?? "") ?? 20
        var created: [String: String] = [:]
        for bank in ["hdfc", "icici", "axis", "sbi"] { created[bank] = try cluster.createDatabase(bank) }
        let databases = created
        let list = databases.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.url(cluster, $0.value))" }.joined(separator: ",")
        let initialised = try await onOwnThread {
            try SandhiBinary.run(["init", "--data", data, "--banks", "tax,regulator", "--postgres", list, "--accounts", "30", "--opening", "1000"])
        }
        try #require(initialised.status == 0, "\(initialised.stderr)")
        let opening = try Self.directTotal(cluster, databases: databases, data: data)
        #expect(opening == 6 * 30 * 100_000)

        let (failures, resolved) = try await onOwnThread { () throws -> ([String], Int) in
            var random = SplitMix64(seed: 6)
            var resolved = 0
            for round in 1...kills {
                let bench = try SandhiBinary.start(["bench", "--data", data, "--clients", "16", "--duration", "60", "--seed", String(round)])
                if round % 2 == 1 {
                    // From start-up (connecting, recovering the last kill) to mid-flight.
                    usleep(UInt32(150_000 + random.next() % 900_000))
                } else {
                    // Mid-flight for certain, however slowly a loaded machine starts the bench:
                    // once a branch is prepared somewhere, within the next 200 ms.
                    try Self.waitForAPreparedBranch(cluster, databases: Array(databases.values))
                    usleep(UInt32(random.next() % 200_000))
                }
                SandhiBinary.kill(bench)
                let recovered = try SandhiBinary.run(["recover", "--data", data])
                guard recovered.status == 0 else { return (["round \(round): recover failed: \(recovered.stderr)"], resolved) }
                resolved += recovered.stdout.split(separator: "\n").filter { $0.hasPrefix("T-") }.count
                for (bank, database) in databases {
                    let prepared = try cluster.sql(database, "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()")
                    guard prepared == "0" else { return (["round \(round): \(bank) still holds \(prepared) prepared transaction(s)"], resolved) }
                }
                let total = try Self.directTotal(cluster, databases: databases, data: data)
                guard total == opening else { return (["round \(round): the banks hold \(total) paise, not \(opening)"], resolved) }
            }
            return ([], resolved)
        }
        #expect(failures.isEmpty, "\(failures)")
        print("PostgreSQL crash test: \(kills) kills, \(resolved) in-doubt transactions resolved by recovery")
        #expect(resolved > 0, "no kill left a transaction in doubt; the test is not exercising recovery")
        let checked = try await onOwnThread { try SandhiBinary.run(["check", "--data", data]) }
        #expect(checked.status == 0 && checked.stdout.contains("total: \(opening)"), "\(checked.stdout)")
    }

    /// Returns once one of `databases` holds a prepared transaction (a bench is mid-flight), or
    /// after 60 s.
    static func waitForAPreparedBranch(_ cluster: PostgresCluster, databases: [String]) throws {
        let names = databases.map { "'\($0)'" }.joined(separator: ",")
        for _ in 0..<3_000 {
            if try cluster.sql(databases[0], "SELECT count(*) FROM pg_prepared_xacts WHERE database IN (\(names))") != "0" { return }
            usleep(20_000)
        }
    }

    /// Every balance, summed with SQL in each database itself.
    static func directTotal(_ cluster: PostgresCluster, databases: [String: String], data: String) throws -> Int64 {
        var total: Int64 = 0
        for database in databases.values {
            total += Int64(try cluster.sql(database, "SELECT COALESCE(SUM(balance), 0) FROM accounts")) ?? .min
        }
        for bank in ["tax", "regulator"] {
            let result = try ChildProcess.run("sqlite3", ["file:\(data)/banks/\(bank).sqlite?mode=ro", "SELECT COALESCE(SUM(balance), 0) FROM accounts"],
                                              timeoutSeconds: 60)
            guard result.status == 0 else { throw PostgresCluster.Failure(description: "sqlite3 failed on \(bank): \(result.stderr)") }
            total += Int64(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .min
        }
        return total
    }
}

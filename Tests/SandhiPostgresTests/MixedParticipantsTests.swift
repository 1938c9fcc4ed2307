import Foundation
import SandhiTestSupport
import Testing

/// The `sandhi` binary over a data directory whose banks are partly embedded SQLite files and
/// partly PostgreSQL databases: created by `sandhi init --postgres`, moved between by transfers
/// that span both kinds, and left with every total intact and nothing prepared in PostgreSQL.
extension PostgresBankTests {
    /// `postgres://postgres@%2F<socket folder>/<database>`.
    static func url(_ cluster: PostgresCluster, _ database: String) -> String {
        "postgres://\(PostgresCluster.superuser)@\(cluster.socketDirectory.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)/\(database)"
    }

    @Test func transfersSpanSQLiteAndPostgreSQLBanksAtomically() async throws {
        let cluster = try #require(PostgresCluster.current)
        let temporary = TemporaryDirectory("sandhi-mixed"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let axis = try cluster.createDatabase("axis"), sbi = try cluster.createDatabase("sbi")
        let created = try await onOwnThread {
            try SandhiBinary.run(["init", "--data", data, "--banks", "hdfc,icici", "--accounts", "20", "--opening", "1000",
                                  "--postgres", "axis=\(Self.url(cluster, axis)),sbi=\(Self.url(cluster, sbi))"])
        }
        try #require(created.status == 0, "\(created.stderr)")
        #expect(try cluster.sql(sbi, "SELECT count(*) || ' ' || sum(balance) FROM accounts") == "20 2000000")
        let toml = try String(contentsOfFile: data + "/sandhi.toml", encoding: .utf8)
        #expect(toml.contains("kind = \"postgres\"") && toml.contains("database = \"\(sbi)\""))

        // One transfer, four banks of two kinds.
        let moved = try await onOwnThread {
            try SandhiBinary.run(["transfer", "--data", data, "--debit", "hdfc/acct-000001=100", "--debit", "axis/acct-000002=50",
                                  "--credit", "sbi/acct-000003=120", "--credit", "icici/acct-000004=30"])
        }
        #expect(moved.status == 0, "\(moved.stdout)\(moved.stderr)")
        #expect(try cluster.sql(sbi, "SELECT balance FROM accounts WHERE id = 'acct-000003'") == "112000")
        #expect(try cluster.sql(axis, "SELECT balance FROM accounts WHERE id = 'acct-000002'") == "95000")
        // A NO vote from PostgreSQL (insufficient funds) leaves all four unchanged.
        let refused = try await onOwnThread {
            try SandhiBinary.run(["transfer", "--data", data, "--from", "axis/acct-000005", "--to", "hdfc/acct-000005", "--amount", "5000"])
        }
        #expect(refused.status != 0)
        #expect(try cluster.sql(axis, "SELECT balance FROM accounts WHERE id = 'acct-000005'") == "100000")

        // Many at once, then every invariant and nothing left prepared.
        let bench = try await onOwnThread { try SandhiBinary.run(["bench", "--data", data, "--clients", "8", "--duration", "2"]) }
        #expect(bench.status == 0, "\(bench.stdout)\(bench.stderr)")
        let checked = try await onOwnThread { try SandhiBinary.run(["check", "--data", data]) }
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        #expect(checked.stdout.contains("total: \(4 * 20 * 100_000)"), "\(checked.stdout)")
        for database in [axis, sbi] {
            #expect(try cluster.sql(database, "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()") == "0")
        }
    }

    @Test func initChecksEveryDatabaseBeforeCreatingAnything() async throws {
        let cluster = try #require(PostgresCluster.current)
        let temporary = TemporaryDirectory("sandhi-mixed"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let good = try cluster.createDatabase("good")
        let result = try await onOwnThread {
            try SandhiBinary.run(["init", "--data", data, "--banks", "hdfc", "--postgres",
                                  "good=\(Self.url(cluster, good)),bad=\(Self.url(cluster, "no_such_database"))"])
        }
        #expect(result.status != 0)
        #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.contains("no_such_database"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: data), "no data directory")
        #expect(try cluster.sql(good, "SELECT count(*) FROM pg_tables WHERE tablename = 'accounts'") == "0", "the good database untouched")
        for bad in ["axis=mysql://x@y/z", "axis", "Axis=\(Self.url(cluster, good))"] {
            let refused = try SandhiBinary.run(["init", "--data", data, "--postgres", bad])
            #expect(refused.status != 0 && refused.stderr.split(separator: "\n").count == 1, "\(bad): \(refused.stderr)")
        }
    }

    @Test func theBankSaysWhatItsDatabaseHoldsPreparedAndHowOld() async throws {
        let fixture = try await makeFixture()
        let handle = try await blocking { try fixture.open() }
        let before = try await blocking { try handle.bank.preparedInDatabase() }
        #expect(before.count == 0 && before.oldestAgeSeconds == nil)
        _ = try await handle.process([PostgresBankFixture.prepare(PostgresBankFixture.tx(3), [.debit(account: PostgresBankFixture.alice, amount: .rupees(1))])])
        // Someone else's prepared transaction counts too: the server holds it all the same.
        _ = try await blocking { try fixture.cluster.sql(fixture.database, "BEGIN; UPDATE accounts SET balance = balance WHERE id = 'bob'; PREPARE TRANSACTION 'not-sandhi'") }
        let after = try await blocking { try handle.bank.preparedInDatabase() }
        #expect(after.count == 2 && (after.oldestAgeSeconds ?? -1) >= 0)
        // PostgreSQL's own locks of both prepared transactions: each holds the accounts table.
        let locks = try await blocking { try handle.bank.preparedLocks() }
        let gids = Set(locks.filter { $0.kind == "relation" && $0.relation == "accounts" && $0.granted }.map(\.gid))
        #expect(gids == [fixture.gid(PostgresBankFixture.tx(3)), "not-sandhi"], "\(locks)")
        _ = try await blocking { try fixture.cluster.sql(fixture.database, "ROLLBACK PREPARED 'not-sandhi'") }
        _ = try await handle.process([.rollback(PostgresBankFixture.tx(3))])
        try await handle.close()
    }
}

import Foundation
import Logging
import SandhiEngine
import SandhiPostgresTools
import SandhiTestSupport
import Testing

/// `sandhi bench --participants postgres` and its yardstick, the hand-written two-phase client.
/// What they measure is not asserted (the machine is shared); that they measure honestly is:
/// money is conserved, nothing stays prepared, and everything the run made is removed.
extension PostgresBankTests {
    @Test func theHandWrittenClientMovesMoneyBetweenTwoDatabasesAndConservesIt() async throws {
        let cluster = try #require(PostgresCluster.current)
        let names = try await onOwnThread { [try cluster.createDatabase("hw"), try cluster.createDatabase("hw")] }
        let databases = names.enumerated().map { index, name in
            PostgresBankConfiguration(endpoint: .unixSocket(folder: cluster.socketDirectory, port: cluster.port), username: PostgresCluster.superuser,
                                      database: name, participant: ParticipantID(validated: "hw\(index)"),
                                      instance: CoordinatorInstance(validated: "bench"))
        }
        var options = HandWrittenTwoPhaseBench.Options()
        options.accounts = 20
        options.workers = 3
        options.durationMs = 600
        options.openingBalancePaise = 5_000
        let logger = Logger(label: "test")
        try await HandWrittenTwoPhaseBench.createTables(databases, options: options, logger: logger)
        let before = try await HandWrittenTwoPhaseBench.total(databases, logger: logger)
        #expect(before == 2 * 20 * 5_000)
        let report = try await HandWrittenTwoPhaseBench.run(databases, options: options, logger: logger)
        #expect(report.transfers > 0 && report.workers == 3 && report.transfersPerSecond > 0)
        #expect(try await HandWrittenTwoPhaseBench.total(databases, logger: logger) == before)
        for name in names {
            let prepared = try await onOwnThread { try cluster.sql(name, "SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()") }
            #expect(prepared == "0", "the client left a branch prepared in \(name)")
        }
        // The total is a real check: money made outside the transfers shows.
        _ = try await onOwnThread { try cluster.sql(names[0], "UPDATE handwritten_accounts SET balance = balance + 1 WHERE id = 1") }
        #expect(try await HandWrittenTwoPhaseBench.total(databases, logger: logger) == before + 1)
    }

    @Test func benchOverPostgresMeasuresBothOnFreshDatabasesAndRemovesThem() async throws {
        let cluster = try #require(PostgresCluster.current)
        let server = Self.url(cluster, "postgres")
        let result = try await onOwnThread {
            try SandhiBinary.run(["bench", "--participants", "postgres", "--postgres-server", server, "--duration", "1", "--clients", "8",
                                  "--accounts", "200", "--sessions", "4", "--baseline-workers", "1,2"])
        }
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        for line in ["hand-written  1 worker:", "hand-written  2 workers:", "2 banks (pga, pgb)", "versus"] {
            #expect(result.stdout.contains(line), "no \(line) in \(result.stdout)")
        }
        let committed = result.stdout.split(separator: "\n").first { $0.hasPrefix("committed") }
        let count = committed.flatMap { $0.split(separator: " ").dropFirst().first.flatMap { Int($0) } } ?? 0
        #expect(count > 0, "\(result.stdout)")
        let left = try await onOwnThread {
            try cluster.sql("postgres", "SELECT count(*) FROM pg_database WHERE datname LIKE 'sandhi_bench_%'")
        }
        #expect(left == "0", "the bench left its databases behind")
    }

    @Test func benchOverPostgresWithoutAServerStartsItsOwnClusterAndRemovesIt() async throws {
        let result = try await onOwnThread {
            try SandhiBinary.run(["bench", "--participants", "postgres", "--duration", "0.5", "--clients", "4", "--accounts", "50",
                                  "--sessions", "2", "--baseline-workers", "1"])
        }
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        let title = result.stdout.split(separator: "\n").first { $0.contains("throwaway PostgreSQL") }.map(String.init) ?? ""
        let folder = title.split(separator: " ").first { $0.hasPrefix("/tmp/sandhi-pg-") }.map(String.init)
        let named = try #require(folder, "no throwaway cluster named in \(result.stdout)")
        #expect(!FileManager.default.fileExists(atPath: named), "the cluster's folder \(named) is still there")
        #expect(result.stdout.contains("committed"))
    }

    @Test func benchOverPostgresRefusesBadOptionsInOneLine() async throws {
        let cases: [([String], String)] = [
            (["--participants", "mysql"], "--participants must be `sqlite` or `postgres`"),
            (["--sessions", "4"], "go with --participants postgres"),
            (["--participants", "postgres", "--postgres-server", "mysql://u@h/d"], "--postgres-server"),
            (["--participants", "postgres", "--sessions", "0"], "--sessions must be between 1 and 256"),
            (["--participants", "postgres", "--baseline-workers", "1,x"], "--baseline-workers takes numbers"),
            (["--participants", "postgres", "--workload", "contention"], "--participants postgres runs the uniform workload only"),
        ]
        let temporary = TemporaryDirectory("sandhi-pg-bench-bad"); defer { temporary.remove() }
        for (arguments, needle) in cases {
            let result = try await onOwnThread { try SandhiBinary.run(["bench", "--data", temporary.appending("data")] + arguments) }
            #expect(result.status != 0, "accepted: \(arguments)")
            #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.contains(needle), "\(arguments): \(result.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: temporary.appending("data")), "a refused bench created a data directory")
    }
}

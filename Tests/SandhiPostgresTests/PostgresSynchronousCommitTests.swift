import Foundation
import Logging
import SandhiEngine
import SandhiPostgres
import SandhiPostgresLog
import SandhiRuntime
import SandhiTestSupport
import Testing

/// The `synchronous_commit` settings the PostgreSQL code relies on, each against a server
/// crash (`pg_ctl stop -m immediate`) right after what it makes durable was acknowledged
/// (issue 13). PREPARE TRANSACTION, COMMIT PREPARED and ROLLBACK PREPARED flush the WAL
/// whatever the setting says; the ordinary commits do not, so on a database whose default is
/// `synchronous_commit = off` (a server, database or role set up for speed) each of them is
/// durable only because a session or a statement says `on`.
///
/// Whether a crash lands before an asynchronous commit is written out would be timing; this
/// suite's own cluster has no background writer or autovacuum, and each test stops the WAL
/// writer (`pauseWALWriter`) before the step it checks, so an asynchronous commit is lost
/// every time, and a synchronous one never.
@Suite(.requiresPostgres, .postgresCluster, .serialized)
struct PostgresSynchronousCommitTests {
    typealias F = PostgresBankFixture
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// A bank in a database whose sessions default to `synchronous_commit = off`, on a server
    /// whose background WAL flushes are off.
    func asynchronousBank() async throws -> PostgresBankFixture {
        let cluster = try currentCluster()
        return try await blocking {
            try cluster.quietBackgroundWALFlushes()
            let fixture = try PostgresBankFixture(cluster: cluster)
            try cluster.sql("postgres", "ALTER DATABASE \(fixture.database) SET synchronous_commit = off")
            return fixture
        }
    }

    /// PostgresSessionPool: every bank session runs with `synchronous_commit = on`. A COMMIT
    /// whose prepared transaction someone rolled back by hand is applied from the write-sets in
    /// an ordinary transaction (votes first, then the balances); its acknowledgement must
    /// survive a crash of the server, which it does only if that commit flushed.
    @Test func aCommitAppliedFromWriteSetsSurvivesAServerCrashOnceAcknowledged() async throws {
        let fixture = try await asynchronousBank()
        let cluster = fixture.cluster
        let handle = try await blocking { try fixture.open() }
        _ = try await handle.process([F.prepare(F.tx(1), [.debit(account: F.alice, amount: .rupees(10))]),
                                      F.prepare(F.tx(2), [.credit(account: F.bob, amount: .rupees(5))])])
        try await blocking {
            try cluster.sql(fixture.database, "ROLLBACK PREPARED '\(fixture.group(F.tx(1), F.tx(2)))'")
            try cluster.pauseWALWriter()
        }
        #expect(try await handle.process([.commit(F.tx(1)), .commit(F.tx(2))]) == [.acknowledged(F.tx(1)), .acknowledged(F.tx(2))])
        try await blocking { try cluster.restartImmediately() }
        try await handle.close()
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50500", "acknowledged commits lost in a server crash")
        #expect(try await blocking { try fixture.count("sandhi_committed") } == "2")
        let reopened = try await blocking { try fixture.open() }
        #expect(reopened.bank.inDoubt().isEmpty)
        try await reopened.close()
    }

    /// BranchStatements.recordVotes(synchronously: true): before such a COMMIT is applied, the
    /// branches' votes are recorded in a transaction of their own that flushes, so that should
    /// the applying fail (here: an account locked by someone else, past the lock timeout) and
    /// the server then crash, the reopened bank still holds them in doubt and the COMMIT's
    /// resend applies them. The bank's sessions are `on` here; the statement alone decides.
    @Test func votesRecordedBeforeAFailedApplySurviveAServerCrash() async throws {
        let fixture = try await asynchronousBank()
        let cluster = fixture.cluster
        var configuration = fixture.configuration
        configuration.lockTimeoutMs = 200
        let quick = configuration
        let handle = try await blocking { BankHandle(try PostgresBank(quick, logger: F.logger)) }
        _ = try await handle.process([F.prepare(F.tx(1), [.debit(account: F.alice, amount: .rupees(10))]),
                                      F.prepare(F.tx(2), [.credit(account: F.bob, amount: .rupees(5))])])
        let blocker = try await blocking {
            try cluster.sql(fixture.database, "ROLLBACK PREPARED '\(fixture.group(F.tx(1), F.tx(2)))'")
            // Someone holds alice's row until the crash: applying the COMMIT cannot finish.
            let blocker = try ChildProcess.start(PostgresCluster.binDirectory! + "/psql", [
                "-X", "-q", "-h", cluster.socketDirectory, "-U", PostgresCluster.superuser, "-d", fixture.database,
                "-c", "BEGIN; SELECT 1 FROM accounts WHERE id = 'alice' FOR UPDATE; SELECT pg_sleep(600); COMMIT",
            ])
            try Self.waitFor(cluster, fixture.database, "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = current_database()")
            try cluster.pauseWALWriter()
            return blocker
        }
        await #expect(throws: (any Error).self, "applying the COMMIT waits for alice's row past the lock timeout") {
            try await handle.process([.commit(F.tx(1)), .commit(F.tx(2))])
        }
        try await blocking { try cluster.restartImmediately() }
        blocker.wait()
        try await handle.close()
        let reopened = try await blocking { try fixture.open() }
        #expect(reopened.bank.inDoubt() == [F.tx(1): [F.hdfc], F.tx(2): [F.hdfc]], "votes lost in a server crash")
        #expect(try await reopened.process([.commit(F.tx(1)), .commit(F.tx(2))]) == [.acknowledged(F.tx(1)), .acknowledged(F.tx(2))])
        #expect(try await blocking { try fixture.balances() } == "alice=99000\nbob=50500")
        try await reopened.close()
    }

    /// DecisionLogSession: the log's session runs with `synchronous_commit = on` whatever the
    /// database's default: a COMMIT record whose `sync` returned survives a crash of the server.
    @Test func aSyncedDecisionSurvivesAServerCrash() async throws {
        let cluster = try currentCluster()
        let configuration = try await blocking { () throws -> PostgresDecisionLogConfiguration in
            try cluster.quietBackgroundWALFlushes()
            let database = try cluster.createDatabase("log")
            try cluster.sql("postgres", "ALTER DATABASE \(database) SET synchronous_commit = off")
            let configuration = PostgresDecisionLogConfiguration(endpoint: .unixSocket(folder: cluster.socketDirectory), username: PostgresCluster.superuser,
                                                                 database: database, instance: CoordinatorInstance(validated: "c-\(database)"))
            try PostgresDecisionLog.createTable(configuration, logger: Self.logger)
            return configuration
        }
        let commit = DecisionRecord.commit(transaction: F.tx(1), participants: [F.hdfc, ParticipantID(validated: "sbi")])
        try await blocking {
            let (log, _) = try PostgresDecisionLog.open(configuration, logger: Self.logger)
            defer { log.close() }
            log.epoch = 1
            _ = try log.append([.epochStarted(epoch: 1)])
            try log.sync()
            try cluster.pauseWALWriter()
            _ = try log.append([commit])
            try log.sync()
            try cluster.restartImmediately()
        }
        let recovered = try await blocking { try PostgresDecisionLog.read(configuration, logger: Self.logger) }
        #expect(recovered.records.map(\.record).contains(commit), "a synced COMMIT lost in a server crash")
        #expect(recovered.maxEpoch == 1)
    }

    /// Waits (up to a minute) until `query` in `database` answers 1.
    static func waitFor(_ cluster: PostgresCluster, _ database: String, _ query: String) throws {
        for _ in 0..<6_000 {
            if try cluster.sql(database, query) == "1" { return }
            usleep(10_000)
        }
        throw PostgresCluster.Failure(description: "still not true after a minute: \(query)")
    }
}

import Foundation
import Logging
import SandhiEngine
import SandhiPostgres
import SandhiPostgresLog
import SandhiRuntime
import SandhiTestSupport
import Testing

/// The decision log in PostgreSQL: the shared decision-log suite (`DecisionLogConformance`, also
/// run against the segment files in `SandhiRuntimeTests/DecisionLogConformanceTests`), then what
/// only a database log does, and coordinators running on it, killed and taken over.
///
/// In `PostgresBankTests` (an extension) so that one cluster serves every PostgreSQL test, one
/// test at a time.
extension PostgresBankTests {
    static let logLogger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// A fresh database with the log's table, and an instance of its own. `eager` reclaims after
    /// every sync (the reclamation check's wish); the takeover wait is short, for the refusal check.
    /// Called on the test's task, not inside `blocking`: the cluster is a task-local.
    static func logSubject(eager: Bool = false) throws -> (DecisionLogSubject, PostgresDecisionLogConfiguration) {
        let cluster = try currentCluster()
        let database = try cluster.createDatabase("log")
        var configuration = PostgresDecisionLogConfiguration(endpoint: .unixSocket(folder: cluster.socketDirectory), username: PostgresCluster.superuser,
                                                             database: database, instance: CoordinatorInstance(validated: "c-\(database)"))
        configuration.takeoverWaitMs = 300
        if eager {
            configuration.reclaimEverySyncs = 1
            configuration.reclaimBatchRows = 1
        }
        try PostgresDecisionLog.createTable(configuration, logger: logLogger)
        try PostgresDecisionLog.createTable(configuration, logger: logLogger)  // Idempotent.
        let fixed = configuration
        let subject = DecisionLogSubject(
            name: "PostgreSQL", excludesSecondOpener: true,
            open: {
                let (log, recovered) = try PostgresDecisionLog.open(fixed, logger: logLogger)
                return (log, recovered)
            },
            read: { try PostgresDecisionLog.read(fixed, logger: logLogger) })
        return (subject, configuration)
    }

    // MARK: - The shared suite

    @Test func decisionLogInPostgresAppendSyncReopenRoundTrip() async throws {
        let subject = try Self.logSubject().0
        try await blocking { try DecisionLogConformance.appendSyncReopenRoundTrip(subject) }
    }

    @Test func decisionLogInPostgresRecoversUnfinishedCommitsAndEpochs() async throws {
        let subject = try Self.logSubject().0
        try await blocking { try DecisionLogConformance.recoversUnfinishedCommitsAndEpochs(subject) }
    }

    @Test func decisionLogInPostgresFailedSyncIsSticky() async throws {
        let subject = try Self.logSubject().0
        try await blocking { try DecisionLogConformance.failedSyncIsSticky(subject) }
    }

    @Test func decisionLogInPostgresReclamationKeepsUnfinishedCommitsAndDropsFinishedOnes() async throws {
        let subject = try Self.logSubject(eager: true).0
        try await blocking { try DecisionLogConformance.reclamationKeepsUnfinishedCommitsAndDropsFinishedOnes(subject) }
    }

    @Test func decisionLogInPostgresUnsyncedRecordsAreBounded() async throws {
        let subject = try Self.logSubject().0
        try await blocking { try DecisionLogConformance.unsyncedRecordsAreBounded(subject) }
    }

    @Test func decisionLogInPostgresSecondOpenerIsRefusedUntilTheHolderCloses() async throws {
        let subject = try Self.logSubject().0
        try await blocking { try DecisionLogConformance.secondOpenerIsRefusedUntilTheHolderCloses(subject) }
    }

    // MARK: - Only the database log

    /// One row per record, in the engine's framing; a damaged row is refused, naming it, as a
    /// damaged record in a segment is.
    @Test func decisionLogInPostgresRowsAreFramedRecordsAndADamagedRowIsNamed() async throws {
        let (subject, configuration) = try Self.logSubject()
        let cluster = try currentCluster()
        let commit = DecisionRecord.commit(transaction: TransactionID(epoch: 1, sequence: 7), participants: [ParticipantID(validated: "hdfc")])
        try await blocking {
            let (log, _) = try subject.open()
            log.epoch = 1
            _ = try log.append([.epochStarted(epoch: 1), commit])
            try log.sync()
            log.close()
        }
        let rows = try await blocking {
            try cluster.sql(configuration.database,
                            "SELECT seq || ':' || encode(record, 'hex') FROM sandhi_decision_log WHERE instance = '\(configuration.instance.name)' ORDER BY seq")
        }
        let expected = [DecisionRecord.epochStarted(epoch: 1), commit].enumerated().map { index, record in
            "\(index + 1):" + RecordFraming.frame(record.encoded()).map { String(format: "%02x", $0) }.joined()
        }
        #expect(rows.split(separator: "\n").map(String.init) == expected)
        // While open, the log is one named session (holding the advisory lock).
        let writers = try await blocking { () throws -> String in
            let (log, _) = try subject.open()
            defer { log.close() }
            return try cluster.sql(configuration.database,
                                   "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'sandhi-log:%:writer:%'")
        }
        #expect(writers == "1")

        // Flip one payload byte (after the 12-byte frame header): the CRC no longer matches.
        _ = try await blocking {
            try cluster.sql(configuration.database, "UPDATE sandhi_decision_log SET record = set_byte(record, 14, get_byte(record, 14) # 1) WHERE seq = 2")
        }
        let refused = await #expect(throws: DecisionLogError.self) { try await blocking { try subject.read() } }
        #expect("\(refused.map { "\($0)" } ?? "")".contains("row 2"), "\(String(describing: refused))")
    }
}

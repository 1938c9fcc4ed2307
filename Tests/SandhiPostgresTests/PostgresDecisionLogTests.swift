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

    /// A database whose sessions end after 200 ms idle, or idle in a transaction block (as
    /// managed services configure), does not end the log's: it is set up as the banks' sessions
    /// are. Otherwise a quiet coordinator's next decision would fail (stickily: the coordinator
    /// halts), and the advisory lock that keeps a standby out would go with the session while
    /// the coordinator still runs.
    @Test func decisionLogInPostgresOutlivesTheServersIdleTimeouts() async throws {
        let (subject, configuration) = try Self.logSubject()
        let cluster = try currentCluster()
        _ = try await blocking {
            try cluster.sql("postgres", "ALTER DATABASE \(configuration.database) SET idle_session_timeout = '200ms'")
            try cluster.sql("postgres", "ALTER DATABASE \(configuration.database) SET idle_in_transaction_session_timeout = '200ms'")
        }
        let first = DecisionRecord.commit(transaction: TransactionID(epoch: 1, sequence: 1), participants: [ParticipantID(validated: "hdfc")])
        let second = DecisionRecord.commit(transaction: TransactionID(epoch: 1, sequence: 2), participants: [ParticipantID(validated: "hdfc")])
        let locksAfterIdling = try await blocking { () throws -> String in
            let (log, _) = try subject.open()
            defer { log.close() }
            log.epoch = 1
            _ = try log.append([.epochStarted(epoch: 1), first])
            try log.sync()
            // Idle for well past both timeouts: the server's would have ended the session.
            usleep(800_000)
            _ = try log.append([second])
            try log.sync()
            return try cluster.sql(configuration.database, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
        }
        #expect(locksAfterIdling == "1", "the log's session, and its advisory lock, are still there")
        let read = try await blocking { try subject.read() }
        #expect(read.records.map(\.record) == [.epochStarted(epoch: 1), first, second])
    }

    /// Over TCP, both ends of the log's idle session probe it within the keepalive idle time
    /// (`PostgresSessionPool.keepaliveIdleSeconds`), not the kernel's two hours: ours finds a
    /// server or path that is gone, and the server ends a coordinator that is gone (and its
    /// advisory lock); and the probes keep a NAT or firewall from dropping a quiet connection.
    /// Read from the kernel's own table of TCP sockets (`/proc/net/tcp`): the keepalive timer of
    /// each end of the connection to the server's port, and when it next fires.
    @Test func decisionLogInPostgresOverTCPIsProbedFromBothEndsWhenIdle() async throws {
        let tcp = try await blocking { try PostgresCluster.start(loopbackTCP: true) }
        do {
            let database = try await blocking { try tcp.createDatabase("log") }
            let configuration = PostgresDecisionLogConfiguration(endpoint: .tcp(host: "127.0.0.1", port: tcp.port), username: PostgresCluster.superuser,
                                                                 database: database, instance: CoordinatorInstance(validated: "c-tcp"))
            let ends = try await blocking { () throws -> [LoopbackEnd] in
                try PostgresDecisionLog.createTable(configuration, logger: Self.logLogger)
                let (log, _) = try PostgresDecisionLog.open(configuration, logger: Self.logLogger)
                defer { log.close() }
                // Idle: the last reply's bytes acknowledged (a delayed ACK runs a retransmit
                // timer meanwhile, in place of the keepalive one).
                var ends = try LoopbackEnd.established(port: tcp.port)
                for _ in 0..<50 where ends.contains(where: \.sending) {
                    usleep(100_000)
                    ends = try LoopbackEnd.established(port: tcp.port)
                }
                return ends
            }
            let limit = 30
            #expect(ends.filter(\.isClient).count == 1 && ends.filter { !$0.isClient }.count == 1, "\(ends)")
            for end in ends {
                let seconds = try #require(end.keepaliveSeconds, "\(end.isClient ? "our" : "the server's") end has no keepalive timer: \(end)")
                #expect(seconds <= limit, "\(end.isClient ? "our" : "the server's") end first probes in \(seconds) s: \(end)")
            }
        } catch {
            try? await blocking { tcp.stop() }
            throw error
        }
        try await blocking { tcp.stop() }
    }
}

/// One end of an established IPv4 loopback TCP connection, as `/proc/net/tcp` shows it.
struct LoopbackEnd: CustomStringConvertible {
    /// The end whose remote port is the server's (a client's), not the server's own end.
    var isClient: Bool
    /// When the keepalive timer fires next, or nil if the socket has none running.
    var keepaliveSeconds: Int?
    /// Bytes sent and not yet acknowledged (then the retransmit timer runs instead).
    var sending: Bool
    var line: String

    var description: String { line }

    /// The established connections with `port` at one end. Columns: slot, local and remote
    /// address (hex IPv4:port), state (01 established), send and receive queues, then the timer
    /// (1 retransmit, 2 keepalive) and its expiry in clock ticks.
    static func established(port: Int) throws -> [LoopbackEnd] {
        let table = try String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)
        let ticks = Int(sysconf(Int32(_SC_CLK_TCK)))
        func portOf(_ address: String) -> Int? { address.split(separator: ":").last.flatMap { Int($0, radix: 16) } }
        return table.split(separator: "\n").dropFirst().compactMap { row -> LoopbackEnd? in
            let fields = row.split(separator: " ").map(String.init)
            guard fields.count > 5, fields[3] == "01" else { return nil }
            let local = portOf(fields[1]), remote = portOf(fields[2])
            guard local == port || remote == port else { return nil }
            let timer = fields[5].split(separator: ":").map(String.init)
            let keepalive = timer.count == 2 && timer[0] == "02" ? Int(timer[1], radix: 16).map { $0 / ticks } : nil
            let unacknowledged = fields[4].split(separator: ":").first.flatMap { Int($0, radix: 16) } ?? 0
            return LoopbackEnd(isClient: remote == port, keepaliveSeconds: keepalive, sending: unacknowledged > 0 || timer.first == "01",
                               line: String(row))
        }
    }
}

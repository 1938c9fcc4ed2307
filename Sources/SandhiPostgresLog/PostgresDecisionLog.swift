import Glibc
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SandhiEngine
import SandhiPostgres
import SandhiRuntime

/// The coordinator's decision log kept in a PostgreSQL table instead of segment files, so that
/// PostgreSQL's own streaming replication carries every decision to a standby, and a standby
/// coordinator pointed at the promoted server (with a copy of the same `sandhi.toml`: the same
/// instance) recovers from it and takes over.
///
///     sandhi_decision_log(instance text, seq bigint, record bytea, PRIMARY KEY (instance, seq))
///
/// Each row is one record in the engine's framing (length, CRC32C of the payload, CRC32C of the
/// header), the same bytes a segment file holds, so a damaged row is found the same way.
///
/// Durability: `append` only buffers (it assigns each record its `seq`, which is its position);
/// `sync` writes everything buffered in ONE statement (an INSERT of `unnest` over two arrays)
/// and commits it with `synchronous_commit = on`, set on the session so that no database or role
/// default can weaken it: the commit returns once the WAL is flushed here and, where
/// `synchronous_standby_names` is set, on the synchronous standby too. A COMMIT decision is
/// therefore on the standby before any participant hears it. One statement is one implicit
/// transaction: a sync lands whole or not at all, so there is no torn tail to cut.
///
/// Sticky failure, as in the file log: after a failed write (an error, a lost connection, no
/// answer in time) nobody knows whether the transaction committed on the server, so the log
/// refuses every later append and sync with the same error. The process must restart and
/// recover from what the table really holds.
///
/// Unsynced records are bounded like the file log's bytes (`RecordFraming.maxUnsyncedBytes`):
/// an append that would pass it writes what is buffered first (`boundSyncCount`).
///
/// Reclamation mirrors the file log's rule for a segment, row by row: a COMMIT goes once its END
/// is durable, together with that END, in one DELETE (one transaction, so a COMMIT never loses
/// its END alone); an epoch record goes once a newer one is durable, so the newest epoch always
/// stays. The deletes are gathered and run in bulk by `maintain` (between the writer's batches,
/// off every record's wait), once enough rows wait or enough syncs have passed.
///
/// Ownership: the writer holds a session-level `pg_advisory_lock` keyed on the instance for as
/// long as it runs. A second coordinator of the same instance (a standby taking over too early)
/// waits `takeoverWaitMs` and then refuses with one line naming the holder, instead of writing
/// beside it. A holder that dies loses its session, and with it the lock: then the standby takes
/// over. Holding the lock also fences off a killed predecessor's backend: it cannot still
/// commit a sync after the successor has read the table, because the successor only reads once
/// that session is gone. (Advisory locks are not replicated: on a promoted standby server the
/// old primary's holder is gone with the old server.)
///
/// Used from one thread that is not an event loop (the group-commit writer's, or a test's): it
/// blocks on postgres-nio's futures, as `PostgresBank` does.
public final class PostgresDecisionLog: DecisionLogStorage {
    public static let table = "sandhi_decision_log"

    public let configuration: PostgresDecisionLogConfiguration
    private let logger: Logger
    private let connection: PostgresConnection
    /// The `seq` the next appended record gets.
    private var nextSequence: Int64
    // The buffer: records appended since the last write, in order.
    private var pendingSequences: [Int64] = []
    private var pendingFrames: [ByteBuffer] = []
    private var pendingRecords: [DecisionRecord] = []
    private var pendingBytes = 0
    private var liveness = RowLiveness()
    private var syncsSinceReclaim = 0
    private var failure: DecisionLogError?
    private var closed = false
    private var failNextSyncInjected = false

    public private(set) var boundSyncCount = 0
    /// Rows deleted by reclamation since open (tests, logs).
    public private(set) var reclaimedRowCount = 0

    /// Never decreases: a lower epoch could hand out transaction ids a second time. The durable
    /// epoch is the newest `.epochStarted` row; this is the runtime's note of it.
    public var epoch: UInt32 {
        didSet {
            precondition(epoch >= oldValue, "decision log epoch went back from \(oldValue) to \(epoch)")
            precondition(epoch <= TransactionID.maxEpoch, "epoch \(epoch) exceeds TransactionID.maxEpoch")
        }
    }

    private init(configuration: PostgresDecisionLogConfiguration, connection: PostgresConnection, logger: Logger,
                 nextSequence: Int64, epoch: UInt32) {
        precondition(nextSequence >= 1, "nextSequence \(nextSequence)")
        self.configuration = configuration
        self.connection = connection
        self.logger = logger
        self.nextSequence = nextSequence
        self.epoch = epoch
    }

    deinit {
        close()
    }

    // MARK: - Creating, checking, opening, reading

    /// Creates the table if it is not there (idempotent: `sandhi init` may run it again, and
    /// coordinators of other instances may share the table).
    public static func createTable(_ configuration: PostgresDecisionLogConfiguration, logger: Logger,
                                   eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        let connection = try DecisionLogSession.connect(configuration, role: "init", eventLoopGroup: eventLoopGroup, logger: logger)
        defer { DecisionLogSession.close(connection, configuration) }
        let create = PostgresQuery(unsafeSQL: """
            CREATE TABLE IF NOT EXISTS \(table) (
                instance text NOT NULL,
                seq bigint NOT NULL,
                record bytea NOT NULL,
                PRIMARY KEY (instance, seq)
            )
            """)
        try DecisionLogSession.run(create, on: connection, configuration, what: "creating the decision log table", logger: logger)
        logger.info("decision log table ready", metadata: ["database": "\(configuration.database)"])
    }

    /// Checks, changing nothing, that the database is reachable with these credentials and
    /// answers a query (`sandhi init --log-postgres` asks before it creates anything).
    public static func check(_ configuration: PostgresDecisionLogConfiguration, logger: Logger,
                             eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        let connection = try DecisionLogSession.connect(configuration, role: "check", eventLoopGroup: eventLoopGroup, logger: logger)
        defer { DecisionLogSession.close(connection, configuration) }
        try DecisionLogSession.run("SELECT 1", on: connection, configuration, what: "checking the database", logger: logger)
    }

    /// Takes the log for this coordinator (see the type's comment on ownership), reads every
    /// record of the instance and returns the log ready to append after them.
    public static func open(_ configuration: PostgresDecisionLogConfiguration, logger: Logger,
                            eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws
        -> (PostgresDecisionLog, RecoveredDecisionLog) {
        let connection = try DecisionLogSession.connect(configuration, role: "writer", eventLoopGroup: eventLoopGroup, logger: logger)
        do {
            try takeOwnership(connection, configuration, logger: logger)
            let (recovered, lastSequence) = try readRecords(connection, configuration, logger: logger)
            let log = PostgresDecisionLog(configuration: configuration, connection: connection, logger: logger,
                                          nextSequence: lastSequence + 1, epoch: recovered.maxEpoch)
            for (position, record) in recovered.records {
                log.liveness.durable(record, sequence: Int64(position.offset))
            }
            logger.info("opened the decision log in PostgreSQL", metadata: [
                "database": "\(configuration.database)", "instance": "\(configuration.instance)",
                "records": "\(recovered.records.count)", "epoch": "\(recovered.maxEpoch)",
            ])
            return (log, recovered)
        } catch {
            DecisionLogSession.close(connection, configuration)
            throw error
        }
    }

    /// Reads the instance's records without taking the log (a coordinator may be writing it):
    /// one consistent snapshot, since every sync and every reclamation is one transaction.
    public static func read(_ configuration: PostgresDecisionLogConfiguration, logger: Logger,
                            eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws -> RecoveredDecisionLog {
        let connection = try DecisionLogSession.connect(configuration, role: "reader", eventLoopGroup: eventLoopGroup, logger: logger)
        defer { DecisionLogSession.close(connection, configuration) }
        return try readRecords(connection, configuration, logger: logger).0
    }

    /// The advisory lock's two keys: a constant naming Sandhi's decision logs, and the hash of
    /// the instance. Two instances whose names hash alike would exclude each other (one chance
    /// in 2^32 per pair); the refusal names the holder, so that would at least be visible.
    static let lockClass: Int32 = 0x5344_4C47  // "SDLG"

    private static func takeOwnership(_ connection: PostgresConnection, _ configuration: PostgresDecisionLogConfiguration,
                                      logger: Logger) throws {
        let instance = configuration.instance.name
        let attempt: PostgresQuery = "SELECT pg_try_advisory_lock(\(lockClass), hashtext(\(instance)))"
        // A killed predecessor's backend ends when it notices its client is gone, usually within
        // milliseconds: wait a little for that before calling the log held.
        var waitedMs = 0
        while true {
            let rows = try DecisionLogSession.run(attempt, on: connection, configuration, what: "taking the decision log", logger: logger)
            if let row = rows.rows.first, try row.decode(Bool.self) { return }
            guard waitedMs < configuration.takeoverWaitMs else { break }
            usleep(50_000)
            waitedMs += 50
        }
        let holder: PostgresQuery = """
            SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'a local socket')
            FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
              AND l.classid = \(lockClass)::oid AND l.objid = hashtext(\(instance))::oid
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
            """
        let rows = try DecisionLogSession.run(holder, on: connection, configuration, what: "asking who holds the decision log", logger: logger)
        var who = "a session that has just ended; try again"
        if let row = rows.rows.first {
            let (backend, application, client) = try row.decode((Int32, String, String).self)
            // The holder's application_name is `sandhi-log:<instance>:writer:<pid>` when it is Sandhi.
            if application.hasPrefix("sandhi-log:"), let pid = application.split(separator: ":").last {
                who = "pid \(pid), connected from \(client)"
            } else {
                who = "PostgreSQL backend pid \(backend), \(application.isEmpty ? "no application name" : "application \(application)")"
            }
        }
        throw PostgresDecisionLogError.held(instance: instance, holder: who)
    }

    /// Every row of the instance, in order, each checked as exactly one whole framed record.
    private static func readRecords(_ connection: PostgresConnection, _ configuration: PostgresDecisionLogConfiguration,
                                    logger: Logger) throws -> (RecoveredDecisionLog, lastSequence: Int64) {
        let exists = try DecisionLogSession.run("SELECT to_regclass('sandhi_decision_log') IS NOT NULL", on: connection, configuration,
                                                what: "looking for the decision log", logger: logger)
        guard let row = exists.rows.first, try row.decode(Bool.self) else {
            throw PostgresDecisionLogError.noTable(database: configuration.database)
        }
        let query: PostgresQuery = "SELECT seq, record FROM sandhi_decision_log WHERE instance = \(configuration.instance.name) ORDER BY seq"
        let rows = try DecisionLogSession.run(query, on: connection, configuration, what: "reading the decision log", logger: logger)
        let place = configuration.logDescription
        var recovered = RecoveredDecisionLog(source: .postgres(description: place))
        var lastSequence: Int64 = 0
        for row in rows.rows {
            let (sequence, buffer) = try row.decode((Int64, ByteBuffer).self)
            assert(sequence > lastSequence, "rows not in seq order")
            let bytes = Array(buffer.readableBytesView)
            let scan = RecordFraming.scan(bytes)
            guard scan.records.count == 1, scan.tail == .clean, scan.validEnd == bytes.count else {
                let reason: String
                switch scan.tail {
                case .torn(_, let why), .corrupt(_, let why): reason = why
                case .zeroFilled: reason = "zero bytes where a record should be"
                case .clean: reason = "\(scan.records.count) records in one row"
                }
                throw DecisionLogError.corruptRow(where: place, sequence: sequence, reason: reason)
            }
            let record: DecisionRecord
            do {
                record = try DecisionRecord(decoding: scan.records[0].payload)
            } catch {
                throw DecisionLogError.corruptRow(where: place, sequence: sequence, reason: "undecodable record: \(error)")
            }
            switch record {
            case .epochStarted(let epoch), .segmentHeader(_, let epoch):
                guard epoch <= TransactionID.maxEpoch else {
                    throw DecisionLogError.corruptRow(where: place, sequence: sequence,
                                                      reason: "epoch \(epoch) exceeds the largest epoch \(TransactionID.maxEpoch)")
                }
                recovered.maxEpoch = max(recovered.maxEpoch, epoch)
            case .commit(let transaction, let participants):
                recovered.unfinishedCommits[transaction] = participants
            case .end(let transaction):
                recovered.unfinishedCommits.removeValue(forKey: transaction)
            }
            recovered.records.append((LogPosition(segment: 0, offset: UInt64(sequence)), record))
            lastSequence = sequence
        }
        return (recovered, lastSequence)
    }

    // MARK: - DecisionLogStorage

    /// Buffers the records (no round trip) and returns their positions: (0, seq). Writes the
    /// buffer first whenever the next record would take it past `RecordFraming.maxUnsyncedBytes`.
    public func append(_ records: [DecisionRecord]) throws -> [LogPosition] {
        var positions: [LogPosition] = []
        positions.reserveCapacity(records.count)
        try sticky {
            for record in records {
                if case .segmentHeader = record { preconditionFailure("segment headers belong to the file log") }
                let frame = RecordFraming.frame(record.encoded())
                if pendingBytes + frame.count > RecordFraming.maxUnsyncedBytes && !pendingFrames.isEmpty {
                    try writePending()
                    boundSyncCount += 1
                }
                let sequence = nextSequence
                nextSequence += 1
                pendingSequences.append(sequence)
                pendingFrames.append(ByteBuffer(bytes: frame))
                pendingRecords.append(record)
                pendingBytes += frame.count
                positions.append(LogPosition(segment: 0, offset: UInt64(sequence)))
            }
        }
        assert(positions.count == records.count)
        assert(pendingBytes <= RecordFraming.maxUnsyncedBytes || pendingFrames.count == 1)
        return positions
    }

    /// Writes and commits everything buffered, in one statement; durable (here, and on a
    /// synchronous standby) when it returns.
    public func sync() throws {
        try sticky {
            try writePending()
            if failNextSyncInjected {
                // After the write, like a commit whose answer was lost on the way back: the worst
                // case, since the records are in the table while the coordinator was told no.
                failNextSyncInjected = false
                throw DecisionLogError.io("PostgreSQL database \(configuration.database): commit of the decision log [injected fault]")
            }
        }
    }

    /// Deletes the rows reclamation gathered, in bulk: once `reclaimBatchRows` wait, or
    /// `reclaimEverySyncs` syncs after the last delete if any wait. A failed delete is sticky
    /// like everything else: the session that failed it cannot be trusted with the next sync.
    public func maintain() throws {
        try sticky {
            let waiting = liveness.reclaimable.count
            guard waiting > 0, waiting >= configuration.reclaimBatchRows || syncsSinceReclaim >= configuration.reclaimEverySyncs else { return }
            let sequences = liveness.reclaimable
            let delete: PostgresQuery = "DELETE FROM sandhi_decision_log WHERE instance = \(configuration.instance.name) AND seq = ANY(\(sequences)::bigint[])"
            try DecisionLogSession.run(delete, on: connection, configuration, what: "reclaiming the decision log", logger: logger)
            liveness.reclaimed()
            syncsSinceReclaim = 0
            reclaimedRowCount += sequences.count
            logger.debug("reclaimed decision log rows", metadata: ["rows": "\(sequences.count)"])
        }
    }

    public func failNextSync() {
        failNextSyncInjected = true
    }

    /// Records appended and not yet written (tests).
    public var unsyncedRecordCount: Int { pendingFrames.count }

    /// Ends the session, which releases the advisory lock. Does not sync.
    public func close() {
        guard !closed else { return }
        closed = true
        DecisionLogSession.close(connection, configuration)
    }

    // MARK: - Internals

    /// One INSERT of every buffered record, committed on its own (autocommit).
    private func writePending() throws {
        guard !pendingFrames.isEmpty else { return }
        let insert: PostgresQuery = """
            INSERT INTO sandhi_decision_log(instance, seq, record)
            SELECT \(configuration.instance.name), s, r FROM unnest(\(pendingSequences)::bigint[], \(pendingFrames)::bytea[]) AS t(s, r)
            """
        try DecisionLogSession.run(insert, on: connection, configuration, what: "writing the decision log", logger: logger)
        for (sequence, record) in zip(pendingSequences, pendingRecords) {
            liveness.durable(record, sequence: sequence)
        }
        pendingSequences.removeAll(keepingCapacity: true)
        pendingFrames.removeAll(keepingCapacity: true)
        pendingRecords.removeAll(keepingCapacity: true)
        pendingBytes = 0
        syncsSinceReclaim += 1
    }

    /// Runs one write-side operation on a usable log; its first failure is the log's for good.
    private func sticky(_ operation: () throws -> Void) throws {
        if closed { throw DecisionLogError.closed }
        if let failure { throw failure }
        do {
            try operation()
        } catch {
            let logError = error as? DecisionLogError ?? .io("\(error)")
            if failure == nil {
                logger.error("decision log failed; refusing further appends", metadata: ["error": "\(logError)"])
                failure = logError
            }
            throw logError
        }
    }
}

/// Which durable rows reclamation may delete (see `PostgresDecisionLog`): the file log's
/// `SegmentLiveness` rule, for rows instead of segments.
struct RowLiveness {
    /// `seq` of each COMMIT (more than one if it was logged again) whose END is not durable.
    private(set) var openCommits: [TransactionID: [Int64]] = [:]
    /// Rows to delete at the next reclamation.
    private(set) var reclaimable: [Int64] = []
    /// The newest epoch record: never reclaimed.
    private(set) var newestEpoch: (epoch: UInt32, sequence: Int64)?

    mutating func durable(_ record: DecisionRecord, sequence: Int64) {
        switch record {
        case .commit(let transaction, _):
            openCommits[transaction, default: []].append(sequence)
        case .end(let transaction):
            // An END without a COMMIT on record (a duplicate) carries nothing: it goes as well.
            if let commits = openCommits.removeValue(forKey: transaction) { reclaimable += commits }
            reclaimable.append(sequence)
        case .epochStarted(let epoch), .segmentHeader(_, let epoch):
            if let newest = newestEpoch, newest.epoch > epoch {
                reclaimable.append(sequence)
            } else {
                if let newest = newestEpoch { reclaimable.append(newest.sequence) }
                newestEpoch = (epoch, sequence)
            }
        }
    }

    mutating func reclaimed() {
        reclaimable.removeAll(keepingCapacity: true)
    }
}

/// Where a decision log in PostgreSQL is, and how it behaves.
public struct PostgresDecisionLogConfiguration: Sendable {
    public var endpoint: PostgresBankConfiguration.Endpoint
    public var username: String
    public var password: String?
    public var database: String
    /// The coordinator whose records these are; the table may hold several instances' logs.
    public var instance: CoordinatorInstance
    public var connectTimeoutMs = 10_000
    /// How long one statement may wait for the server. A sync that runs out of it fails, sticky.
    public var statementTimeoutMs = 30_000
    /// How long `open` waits for another holder of the log to let go before it refuses.
    public var takeoverWaitMs = 5_000
    /// Reclaim once this many rows wait for deletion ...
    public var reclaimBatchRows = 1_024
    /// ... or once this many syncs passed since the last reclamation, whichever comes first.
    public var reclaimEverySyncs = 256

    public init(endpoint: PostgresBankConfiguration.Endpoint, username: String, password: String? = nil, database: String,
                instance: CoordinatorInstance) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.instance = instance
    }

    /// For messages and `sandhi log dump`.
    public var logDescription: String {
        "PostgreSQL database \(database), table \(PostgresDecisionLog.table), instance \(instance.name)"
    }
}

/// One line each, naming the database or the instance.
public enum PostgresDecisionLogError: Error, CustomStringConvertible, Equatable {
    case unreachable(database: String, detail: String)
    case statement(database: String, what: String, detail: String)
    case noTable(database: String)
    case held(instance: String, holder: String)

    public var description: String {
        switch self {
        case .unreachable(let database, let detail):
            return "cannot connect to PostgreSQL database \(database) for the decision log: \(detail)"
        case .statement(let database, let what, let detail):
            return "PostgreSQL database \(database) failed \(what): \(detail)"
        case .noTable(let database):
            return "PostgreSQL database \(database) holds no decision log (no \(PostgresDecisionLog.table) table; sandhi init --log-postgres creates it)"
        case .held(let instance, let holder):
            return "the decision log of instance \(instance) is held by another coordinator (\(holder))"
        }
    }
}

import CSQLite
import Glibc
import Logging
import SandhiEngine
import SandhiIO

/// An embedded bank: one SQLite file in WAL mode holding accounts in integer paise, prepared
/// write-sets, the committed-branch history and report rows.
///
/// Durability of commits is ours, not SQLite's: the bank runs with `synchronous=NORMAL`, under
/// which a WAL-mode commit writes its frames (with SQLite's per-frame checksums) but does not
/// sync them, and `makeDurable` syncs the WAL file (an fdatasync, through whichever VFS opened
/// the bank: SQLite's own in production, `FileSystemVFS` under test). The worker calls it before it sends
/// any reply, so a vote or an acknowledgement always describes durable state, exactly as with
/// `synchronous=FULL`; what we gain is the choice of *when* to sync, so that batches nobody is
/// waiting on (acknowledgements) can share the next batch's fsync. NORMAL, not OFF: NORMAL
/// still syncs what ordering depends on, the WAL before a checkpoint, the database after it,
/// and the WAL header when the WAL is reused after a checkpoint (without that sync, a power cut
/// could replay old frames over newer database pages, SQLite ticket ff5be73dee). SQLite's WAL
/// recovery discards any frame after the last whole, checksummed commit. Checkpoints are ours
/// (`wal_autocheckpoint=0`), run when the WAL hook's frame count passes a bound. The -wal
/// file's directory entry is synced when the bank opens, since SQLite (which would do it
/// under FULL) does not under NORMAL.
///
/// A failed fsync is permanent for this object (fsyncgate: Linux reports a writeback error to
/// one fsync only, and the dirty pages may be gone): every later `makeDurable` fails too.
///
/// The protocol logic (what a duplicate PREPARE or a late ROLLBACK means, which accounts are
/// locked) lives in the engine's `ParticipantProtocol`; this class performs its effects against
/// SQLite. `process` runs a whole batch of messages inside one SQLite transaction and commits
/// once, so many transactions' prepares share one fsync.
public final class SQLiteBank: Bank {
    public enum OpenError: Error, CustomStringConvertible, Equatable {
        case missing(path: String)
        case notSandhi(path: String, detail: String)
        case wrongParticipant(path: String, found: String, expected: String)

        public var description: String {
            switch self {
            case .missing(let path): return "bank file \(path) does not exist"
            case .notSandhi(let path, let detail): return "\(path) is not a Sandhi bank (\(detail))"
            case .wrongParticipant(let path, let found, let expected): return "\(path) belongs to participant \(found), not \(expected)"
            }
        }
    }

    public let id: ParticipantID
    public let path: String
    private let database: SQLiteDatabase
    private let logger: Logger
    private var machine: ParticipantProtocol
    private let plantedBug: PlantedBug?
    private let clock: Clocks
    /// When each prepared branch began to wait here, on the monotonic clock: at its prepare,
    /// or, for a branch restored from the file, when this bank opened (nobody waited on it
    /// while its process was down: an embedded bank stops with its coordinator). Kept only
    /// while a heuristic policy is set; what the sweep measures its age from.
    private var waitingSinceMs: [TransactionID: UInt64] = [:]
    private var hot: HotStatements!
    /// SQLite's `-wal` file, for messages (`makeDurable` syncs it through SQLite's VFS).
    private var walPath = ""
    /// Where the bank's files are: `makeDurable`'s directory sync goes through it too.
    private let io: FileIO
    /// Checkpoint once the WAL grows past this, so it (and recovery time) stays bounded.
    public var walCheckpointBytes = 32 << 20
    /// This file's page size plus the WAL's per-frame header.
    private var walFrameBytes = 0
    /// Test hook: the next `makeDurable` fails as a failed fsync would.
    public var failNextSync = false
    /// Tests only, a planted bug for the simulator to catch: after a failed fsync, sync again
    /// and carry on if that succeeds, as code that trusts a second fsync would (after
    /// fsyncgate it succeeds, with the lost pages marked clean and never written).
    public var plantedRetryAfterFailedSync = false
    /// The first fsync failure; sticky.
    private var syncFailure: SQLiteError?
    /// Requests from the coordinator refused as impossible (a COMMIT of a branch rolled back
    /// here, or before it was prepared), and the last one's reason: logged as critical, and
    /// counted for a checker (the simulator's) to see.
    public private(set) var refusals = 0
    public private(set) var lastRefusal: String?
    /// Decide prepared branches alone after this long (nil: wait for the coordinator forever).
    public var heuristicPolicy: HeuristicPolicy?
    private var closed = false

    /// The statements every batch runs, prepared once and held: looking them up by SQL text
    /// would hash a long string per call on the hottest path.
    private struct HotStatements {
        let begin, commit, selectBalance, insertPrepared, deletePrepared, updateBalance, insertCommitted, insertReport, selectCommitted: SQLiteStatement

        init(_ database: SQLiteDatabase) throws {
            begin = try database.statement("BEGIN IMMEDIATE")
            commit = try database.statement("COMMIT")
            selectBalance = try database.statement("SELECT balance, version, writer FROM accounts WHERE id = ?")
            insertPrepared = try database.statement("INSERT INTO prepared(tx, operations, writers, prepared_at_ms) VALUES (?, ?, ?, ?)")
            deletePrepared = try database.statement("DELETE FROM prepared WHERE tx = ?")
            updateBalance = try database.statement("UPDATE accounts SET balance = balance + ?, version = version + 1, writer = ? WHERE id = ?")
            insertCommitted = try database.statement("INSERT INTO committed(tx, writers, net_paise) VALUES (?, ?, ?)")
            insertReport = try database.statement("INSERT INTO reports(tx, kind, amount_paise, reference) VALUES (?, ?, ?, ?)")
            selectCommitted = try database.statement("SELECT 1 FROM committed WHERE tx = ?")
        }
    }

    // MARK: - Creating and opening

    /// Creates a new bank file with these opening balances. Refuses to overwrite a file.
    public static func create(path: String, participant: ParticipantID, accounts: [(AccountID, Paise)], io: FileIO = .system,
                              logger: Logger) throws {
        guard !io.fileSystem.fileExists(path) else {
            throw SQLiteError(code: SQLITE_CANTOPEN, message: "file exists", context: "creating bank \(path)")
        }
        let database = try SQLiteDatabase(path: path, create: true, vfs: io.sqliteVFS?.name)
        defer { database.close() }
        try database.execute("PRAGMA page_size=\(pageSizeBytes)")
        try configure(database)
        try database.execute("BEGIN IMMEDIATE")
        do {
            try database.execute(BankSchema.create)
            var minted: Int64 = 0
            for (account, balance) in accounts {
                precondition(balance.value >= 0, "opening balance must not be negative")
                try database.statement("INSERT INTO accounts(id, balance) VALUES (?, ?)").bind(1, account.name).bind(2, balance.value).run()
                let (sum, overflow) = minted.addingReportingOverflow(balance.value)
                guard !overflow else {
                    throw SQLiteError(code: SQLITE_RANGE, message: "opening balances add up beyond \(Paise(Int64.max))", context: "creating bank \(path)")
                }
                minted = sum
            }
            for (key, value) in [("format", BankSchema.format), ("participant", participant.name), ("minted_paise", String(minted))] {
                try database.statement("INSERT INTO meta(key, value) VALUES (?, ?)").bind(1, key).bind(2, value).run()
            }
            try database.execute("COMMIT")
        } catch {
            try? database.execute("ROLLBACK")
            throw error
        }
        logger.info("created bank", metadata: ["participant": "\(participant)", "path": "\(path)", "accounts": "\(accounts.count)"])
    }

    /// Small pages: a batch dirties one account page per transfer, scattered across the table,
    /// and every dirty page is written to the WAL whole. Rows here are tens of bytes, so 1 KiB
    /// pages cut the bytes written (and synced) per transfer about fourfold against 4 KiB.
    static let pageSizeBytes = 1_024
    /// Each WAL frame is a page plus this header.
    static let walFrameHeaderBytes = 24

    /// Opens an existing bank and re-takes the locks of every prepared branch.
    /// - Parameter plantedBug: tests only; a known bug for a checker to catch.
    /// - Parameter io: where the file is (`.system` in production; see `FileIO`).
    public init(path: String, participant: ParticipantID, logger: Logger, io: FileIO = .system,
                clock: Clocks = .system, plantedBug: PlantedBug? = nil) throws {
        guard io.fileSystem.fileExists(path) else { throw OpenError.missing(path: path) }
        // SQLite must read what the disk holds, not pages an earlier process's failed fsync
        // left in the page cache marked clean (fsyncgate, review finding F1): a commit read
        // from them could be acknowledged and then taken back by a power cut.
        for file in [path, path + "-wal"] where io.fileSystem.fileExists(file) {
            do {
                try io.fileSystem.readFromDisk(file)
            } catch {
                throw SQLiteError(code: SQLITE_IOERR, message: error.what, context: "reading \(file) from the disk")
            }
        }
        self.id = participant
        self.path = path
        self.logger = logger
        self.clock = clock
        self.io = io
        self.database = try SQLiteDatabase(path: path, create: false, vfs: io.sqliteVFS?.name)
        self.plantedBug = plantedBug
        self.machine = ParticipantProtocol(participant: participant, plantedBug: plantedBug)
        // Before the first read: a WAL database first read in normal mode sets up a shared-memory
        // index that later exclusive-mode connections in this process then trip over. This
        // pragma changes nothing on disk, so it is safe before we know the file is ours.
        try database.execute("PRAGMA locking_mode=EXCLUSIVE")
        let format: String
        do {
            format = try Self.meta(database, "format") ?? "no format marker"
        } catch {
            throw OpenError.notSandhi(path: path, detail: "\(error)")
        }
        guard format == BankSchema.format || format == BankSchema.formatWithoutVersions else {
            throw OpenError.notSandhi(path: path, detail: "format \(format)")
        }
        let owner = try Self.meta(database, "participant") ?? ""
        guard owner == participant.name else { throw OpenError.wrongParticipant(path: path, found: owner, expected: participant.name) }
        try Self.configure(database)
        if format == BankSchema.formatWithoutVersions {
            try database.execute("BEGIN IMMEDIATE")
            do {
                try database.execute(BankSchema.upgradeFrom1)
                try database.execute("COMMIT")
            } catch {
                try? database.execute("ROLLBACK")
                throw error
            }
            logger.info("upgraded bank file: accounts now carry versions", metadata: ["participant": "\(participant)", "path": "\(path)"])
        }
        try database.execute(BankSchema.heuristicTable)
        try database.execute("PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0")
        database.countWALFrames()
        let pageSize = try database.statement("PRAGMA page_size")
        walFrameBytes = (try pageSize.step() ? Int(pageSize.int64(0)) : Self.pageSizeBytes) + Self.walFrameHeaderBytes
        pageSize.reset()
        hot = try HotStatements(database)
        try restore()
        // The first read in WAL mode created the -wal file (exclusive mode keeps it open).
        // SQLite names it after the database's resolved path (symbolic links followed), so
        // ask SQLite rather than appending to ours: we must sync the file it writes.
        walPath = database.walPath ?? path + "-wal"
        // Make the (possibly new) -wal file's name durable before any reply depends on it.
        do {
            try io.fileSystem.syncDirectory(FileSystemPath.parentDirectory(of: walPath))
        } catch {
            throw SQLiteError(code: SQLITE_IOERR, message: error.what, context: "syncing the directory of \(walPath)")
        }
    }

    deinit {
        // A bank dropped without `close()` (an error path) must still not checkpoint unsynced.
        close()
    }

    /// WAL mode, `synchronous=FULL` while a bank is created (an opened bank then switches to
    /// NORMAL and syncs its commits itself, see the type's comment). `locking_mode=EXCLUSIVE`: one process owns
    /// a bank at a time anyway (the data directory's lock), so SQLite may skip the shared-memory
    /// index and the file-lock system calls on every transaction. Temporary tables in memory:
    /// `FileSystemVFS` opens no temporary files.
    private static func configure(_ database: SQLiteDatabase) throws {
        try database.execute("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY")
    }

    private static func meta(_ database: SQLiteDatabase, _ key: String) throws -> String? {
        let statement = try database.statement("SELECT value FROM meta WHERE key = ?").bind(1, key)
        return try statement.step() ? statement.text(0) : nil
    }

    /// Rebuilds the protocol state from storage: every prepared row re-takes its locks.
    private func restore() throws {
        machine = ParticipantProtocol(participant: id, plantedBug: plantedBug)
        let statement = try database.statement("SELECT tx, operations, writers FROM prepared ORDER BY tx")
        while try statement.step() {
            let tx = TransactionID(rawValue: UInt64(bitPattern: statement.int64(0)))
            let operations: [Operation]
            do {
                operations = try OperationCodec.decode(statement.blob(1))
            } catch {
                throw OpenError.notSandhi(path: path, detail: "prepared write-set of \(tx) is damaged: \(error)")
            }
            let writers = Self.decodeWriters(statement.text(2))
            _ = machine.handle(.restored(tx, operations: operations, writers: writers))
        }
        let heuristics = try database.statement("SELECT tx, committed, operations, writers FROM heuristic WHERE forgotten_at_ms IS NULL ORDER BY tx")
        while try heuristics.step() {
            let tx = TransactionID(rawValue: UInt64(bitPattern: heuristics.int64(0)))
            let operations: [Operation]
            do {
                operations = try OperationCodec.decode(heuristics.blob(2))
            } catch {
                throw OpenError.notSandhi(path: path, detail: "heuristic decision on \(tx) is damaged: \(error)")
            }
            _ = machine.handle(.restoredHeuristic(tx, committed: heuristics.int64(1) != 0, operations: operations,
                                                  writers: Self.decodeWriters(heuristics.text(3))))
        }
        if machine.preparedCount > 0 {
            logger.info("restored prepared branches", metadata: ["participant": "\(id)", "count": "\(machine.preparedCount)"])
        }
    }

    /// Closes. SQLite checkpoints on close (syncing the WAL before and the database after, as
    /// NORMAL does) and then deletes the WAL. After a failed fsync nothing more is written: the
    /// connection closes without checkpointing, leaving the WAL (whatever of it reached the
    /// disk) to SQLite's recovery on the next open.
    public func close() {
        close(checkpoint: syncFailure == nil)
    }

    /// Closes; without `checkpoint`, as a process that stops would leave it: the WAL (synced
    /// or not) stays for SQLite's recovery at the next open. For an owner about to discard
    /// the files anyway (the simulator at the end of a seed), or one whose sync failed.
    public func close(checkpoint: Bool) {
        guard !closed else { return }
        closed = true
        if !checkpoint || syncFailure != nil {
            database.disableCheckpointOnClose()
        }
        database.close()
    }

    public func makeDurable() throws {
        if let syncFailure { throw syncFailure }
        var failure: SQLiteError?
        if failNextSync {
            failNextSync = false
            failure = SQLiteError(code: SQLITE_IOERR, message: "injected fsync failure", context: "fdatasync \(walPath)")
        } else {
            do {
                try database.syncJournal()
            } catch let error as SQLiteError {
                failure = SQLiteError(code: error.code, message: error.message, context: "fdatasync \(walPath)")
                if plantedRetryAfterFailedSync, (try? database.syncJournal()) != nil { failure = nil }
            }
        }
        if let failure {
            syncFailure = failure
            throw failure
        }
    }

    /// Bounds the WAL: once its frames since the last restart pass `walCheckpointBytes`, copy
    /// it into the database file (under NORMAL the checkpoint syncs the WAL first and the
    /// database after, before the WAL may be reused). RESTART, not TRUNCATE: the next commits
    /// overwrite the WAL from its start instead of growing a truncated file, so their
    /// fdatasync has no file-size change (no inode write) to make durable.
    private func checkpointIfLarge() throws {
        guard database.walFrames * walFrameBytes > walCheckpointBytes else { return }
        // Our own sync first, so that a failure is seen (and made sticky) here, not only by
        // SQLite, which would just report the checkpoint failed.
        try makeDurable()
        database.resetStatements()
        let checkpoint = try database.statement("PRAGMA wal_checkpoint(RESTART)")
        // One row: busy flag, WAL frames, frames checkpointed. Busy means nothing was reset.
        if try checkpoint.step(), checkpoint.int64(0) != 0 {
            logger.warning("checkpoint could not complete", metadata: ["participant": "\(id)"])
        }
        checkpoint.reset()
    }

    // MARK: - The batch

    public func process(_ messages: [ParticipantMessage]) throws -> [ParticipantReply] {
        try batch(messages.map { .message($0) })
    }

    public func sweep() throws -> [ParticipantReply] {
        var inputs: [ParticipantProtocol.Input] = []
        if let heuristicPolicy {
            let nowMs = clock.monotonicMs()
            let prepared = machine.preparedWriters
            // Branches restored at open, or prepared before the policy was set, wait from now.
            waitingSinceMs = waitingSinceMs.filter { prepared[$0.key] != nil }
            for tx in prepared.keys where waitingSinceMs[tx] == nil { waitingSinceMs[tx] = nowMs }
            for (tx, sinceMs) in waitingSinceMs.sorted(by: { $0.key < $1.key }) where nowMs - sinceMs >= UInt64(heuristicPolicy.afterMs) {
                inputs.append(.decideAlone(tx, commit: heuristicPolicy.commit))
            }
        }
        // Decisions made now report themselves; earlier ones again, until forgotten.
        let decidedNow = Set(inputs.compactMap { if case .decideAlone(let tx, _) = $0 { return tx } else { return nil } })
        var replies = inputs.isEmpty ? [] : try batch(inputs)
        for (tx, heuristic) in machine.heuristics.sorted(by: { $0.key < $1.key }) where !decidedNow.contains(tx) {
            replies.append(.heuristic(tx, committed: heuristic.committed, operations: heuristic.operations, writers: heuristic.writers))
        }
        return replies
    }

    /// Decides the prepared branch of `tx` now, without the coordinator (an operator at the
    /// database, or a test). Returns the replies to send once durable; none if `tx` is not
    /// prepared here.
    public func decideAlone(_ tx: TransactionID, commit: Bool) throws -> [ParticipantReply] {
        try batch([.decideAlone(tx, commit: commit)])
    }

    public var needsSweep: Bool { heuristicPolicy != nil || !machine.heuristics.isEmpty }

    public func unforgottenHeuristics() -> [TransactionID: ParticipantProtocol.Heuristic] { machine.heuristics }

    /// Every input's effects, in one SQLite transaction.
    private func batch(_ inputs: [ParticipantProtocol.Input]) throws -> [ParticipantReply] {
        var replies: [ParticipantReply] = []
        replies.reserveCapacity(inputs.count)
        var effects: [ParticipantProtocol.Effect] = []
        do {
            try hot.begin.reused().run()
            for input in inputs {
                effects.removeAll(keepingCapacity: true)
                machine.handle(input, into: &effects)
                try perform(effects, replies: &replies)
            }
            try hot.commit.reused().run() // to the page cache; `makeDurable` syncs it
        } catch {
            try? database.execute("ROLLBACK")
            logger.error("batch failed; reloading from storage", metadata: ["participant": "\(id)", "error": "\(error)"])
            do {
                try restore()
            } catch let restoreError {
                // A half-rebuilt lock table could approve a prepare against a balance another
                // prepared branch is already debiting. Stop: the sticky failure makes the worker
                // halt the coordinator, and a restart rebuilds everything from storage.
                let failure = SQLiteError(code: SQLITE_IOERR, message: "could not reload after a failed batch: \(restoreError)", context: "participant \(id)")
                if syncFailure == nil { syncFailure = failure }
                throw failure
            }
            throw error
        }
        do {
            try checkpointIfLarge()
        } catch {
            // The batch is committed. A checkpoint that failed is retried after the next batch;
            // if its fsync failed, that failure is sticky and the worker's `makeDurable` stops
            // this participant before any of these replies leaves.
            logger.warning("checkpoint failed", metadata: ["participant": "\(id)", "error": "\(error)"])
        }
        return replies
    }

    private func perform(_ effects: [ParticipantProtocol.Effect], replies: inout [ParticipantReply]) throws {
        var index = 0
        var pending = effects
        while index < pending.count {
            switch pending[index] {
            case .stage(let tx, let operations, let writers):
                let committedBefore = hot.selectCommitted.reused().bind(1, Int64(bitPattern: tx.rawValue))
                if try committedBefore.step() {
                    // A stale duplicate of a PREPARE this bank committed before a restart.
                    pending.append(contentsOf: machine.handle(.alreadyCommitted(tx)))
                    break
                }
                let (failure, observed) = try validate(tx, operations)
                if failure == nil {
                    try hot.insertPrepared.reused()
                        .bind(1, Int64(bitPattern: tx.rawValue)).bind(2, OperationCodec.encode(operations))
                        .bind(3, Self.encodeWriters(writers)).bind(4, clock.wallMs()).run()
                    if heuristicPolicy != nil { waitingSinceMs[tx] = clock.monotonicMs() }
                }
                pending.append(contentsOf: machine.handle(.staged(tx, failure: failure, observed: observed)))
            case .validateReads(let tx, let operations):
                let (failure, observed) = try validate(tx, operations)
                pending.append(contentsOf: machine.handle(.staged(tx, failure: failure, observed: observed)))
            case .apply(let tx, let operations, let writers):
                try apply(tx, operations: operations, writers: writers)
            case .discard(let tx):
                try hot.deletePrepared.reused().bind(1, Int64(bitPattern: tx.rawValue)).run()
            case .decideAlone(let tx, let commit, let operations, let writers):
                if commit {
                    try apply(tx, operations: operations, writers: writers)
                } else {
                    try hot.deletePrepared.reused().bind(1, Int64(bitPattern: tx.rawValue)).run()
                }
                try database.statement("INSERT INTO heuristic(tx, committed, operations, writers, decided_at_ms) VALUES (?, ?, ?, ?, ?)")
                    .bind(1, Int64(bitPattern: tx.rawValue)).bind(2, commit ? 1 : 0).bind(3, OperationCodec.encode(operations))
                    .bind(4, Self.encodeWriters(writers)).bind(5, clock.wallMs()).run()
                logger.warning("decided a prepared branch without the coordinator",
                               metadata: ["participant": "\(id)", "transaction": "\(tx)", "outcome": "\(commit ? "commit" : "rollback")"])
            case .forgetHeuristic(let tx):
                try database.statement("UPDATE heuristic SET forgotten_at_ms = ? WHERE tx = ?")
                    .bind(1, clock.wallMs()).bind(2, Int64(bitPattern: tx.rawValue)).run()
            case .reply(let reply):
                replies.append(reply)
            case .refuse(let tx, let reason):
                refusals += 1
                lastRefusal = reason
                logger.critical("refused an impossible request from the coordinator", metadata: ["participant": "\(id)", "transaction": "\(tx)", "reason": "\(reason)"])
            }
            index += 1
        }
    }

    /// The engine's staging rule, against this file's committed accounts.
    private func validate(_ tx: TransactionID, _ operations: [Operation]) throws -> (failure: Refusal?, observed: [Observation]) {
        try Staging.validate(tx, at: id, operations) { account in
            let statement = hot.selectBalance.reused().bind(1, account.name)
            guard try statement.step() else { return nil }
            let writer = statement.isNull(2) ? nil : TransactionID(rawValue: UInt64(bitPattern: statement.int64(2)))
            return Observation(account: account, balance: Paise(statement.int64(0)), version: UInt64(statement.int64(1)), writer: writer)
        }
    }

    private func apply(_ tx: TransactionID, operations: [Operation], writers: [ParticipantID]) throws {
        let rawTx = Int64(bitPattern: tx.rawValue)
        var net: Int64 = 0
        for operation in operations {
            switch operation {
            case .debit(let account, _), .credit(let account, _):
                let delta = operation.delta.value
                try hot.updateBalance.reused().bind(1, delta).bind(2, rawTx).bind(3, account.name).run()
                // The account was validated and has been locked ever since, so it must exist.
                precondition(database.changes == 1, "prepared account \(account) vanished from \(id)")
                net += delta
            case .fileReport(let report):
                try hot.insertReport.reused()
                    .bind(1, rawTx).bind(2, report.kind).bind(3, report.amount.value).bind(4, report.reference).run()
            case .read:
                break
            }
        }
        try hot.deletePrepared.reused().bind(1, rawTx).run()
        try hot.insertCommitted.reused()
            .bind(1, rawTx).bind(2, Self.encodeWriters(writers)).bind(3, net).run()
    }

    // MARK: - Inspection (for recovery, `sandhi check` and the console)

    public func inDoubt() -> [TransactionID: [ParticipantID]] { machine.preparedWriters }

    public func inDoubtLocks() -> [TransactionID: [AccountID]] { machine.preparedLocks }

    public var hasInDoubt: Bool { machine.preparedCount > 0 }

    /// What each prepared branch would change here if it commits (its write-set's net), for a
    /// live audit of conservation: money of a decided transaction that one bank has committed
    /// and another still holds prepared is in neither's balances.
    public func inDoubtNet() -> [TransactionID: Paise] { machine.preparedNet }

    /// Whether `tx` committed here: one indexed lookup (a live audit rechecks a few branches).
    public func hasCommitted(_ tx: TransactionID) throws -> Bool {
        let statement = hot.selectCommitted.reused().bind(1, Int64(bitPattern: tx.rawValue))
        // Reset at once: a statement left open is a read that would hold back a checkpoint.
        defer { statement.reset() }
        return try statement.step()
    }

    /// Whether `tx` committed here, and not by a decision of this bank alone (a heuristic
    /// commit is in `committed` too, and stays in `heuristic` once forgotten).
    public func committedOnCoordinatorsWord(_ tx: TransactionID) throws -> Bool {
        let raw = Int64(bitPattern: tx.rawValue)
        let statement = try database.statement("SELECT 1 FROM committed WHERE tx = ? AND NOT EXISTS (SELECT 1 FROM heuristic WHERE tx = ?)")
            .bind(1, raw).bind(2, raw)
        defer { statement.reset() }
        return try statement.step()
    }

    /// The highest coordinator epoch among this bank's prepared and committed branches (0 if
    /// none): the coordinator must never start an epoch at or below it.
    public func highestEpoch() throws -> UInt32 {
        let statement = try database.statement("SELECT MAX(m) FROM (SELECT MAX(tx) AS m FROM committed UNION ALL SELECT MAX(tx) FROM prepared)")
        defer { statement.reset() }
        guard try statement.step(), !statement.isNull(0) else { return 0 }
        return TransactionID(rawValue: UInt64(bitPattern: statement.int64(0))).epoch
    }

    /// Accounts whose exclusive lock a prepared branch holds.
    public var heldLocks: [AccountID: TransactionID] { machine.lockOwners }

    public func balances() throws -> [(account: AccountID, balance: Paise)] {
        var result: [(AccountID, Paise)] = []
        let statement = try database.statement("SELECT id, balance FROM accounts ORDER BY id")
        while try statement.step() {
            result.append((AccountID(validated: statement.text(0)), Paise(statement.int64(1))))
        }
        return result
    }

    /// Every account's balance, version and last writer: where a recorded history starts.
    public func accountStates() throws -> [Observation] {
        var result: [Observation] = []
        let statement = try database.statement("SELECT id, balance, version, writer FROM accounts ORDER BY id")
        while try statement.step() {
            let writer = statement.isNull(3) ? nil : TransactionID(rawValue: UInt64(bitPattern: statement.int64(3)))
            result.append(Observation(account: AccountID(validated: statement.text(0)), balance: Paise(statement.int64(1)),
                                      version: UInt64(statement.int64(2)), writer: writer))
        }
        return result
    }

    public func balance(of account: AccountID) throws -> Paise? {
        let statement = try database.statement("SELECT balance FROM accounts WHERE id = ?").bind(1, account.name)
        return try statement.step() ? Paise(statement.int64(0)) : nil
    }

    public func total() throws -> Paise {
        let statement = try database.statement("SELECT COALESCE(SUM(balance), 0) FROM accounts")
        _ = try statement.step()
        return Paise(statement.int64(0))
    }

    /// Sum of the opening balances this bank was created with.
    public func minted() throws -> Paise {
        Paise(Int64(try Self.meta(database, "minted_paise") ?? "0") ?? 0)
    }

    /// Every committed branch: transaction -> (writers, net change here).
    public func committedBranches() throws -> [TransactionID: (writers: [ParticipantID], netPaise: Int64)] {
        var result: [TransactionID: ([ParticipantID], Int64)] = [:]
        let statement = try database.statement("SELECT tx, writers, net_paise FROM committed")
        while try statement.step() {
            result[TransactionID(rawValue: UInt64(bitPattern: statement.int64(0)))] = (Self.decodeWriters(statement.text(1)), statement.int64(2))
        }
        return result
    }

    public func reports() throws -> [BankReportRow] {
        var result: [BankReportRow] = []
        let statement = try database.statement("SELECT tx, kind, amount_paise, reference FROM reports ORDER BY id")
        while try statement.step() {
            result.append(BankReportRow(transaction: TransactionID(rawValue: UInt64(bitPattern: statement.int64(0))),
                                    report: Report(kind: statement.text(1), amount: Paise(statement.int64(2)), reference: statement.text(3))))
        }
        return result
    }

    static func encodeWriters(_ writers: [ParticipantID]) -> String { writers.map(\.name).joined(separator: ",") }

    static func decodeWriters(_ text: String) -> [ParticipantID] {
        text.split(separator: ",").compactMap { ParticipantID(String($0)) }
    }
}

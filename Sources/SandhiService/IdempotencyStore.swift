import CSQLite
import Foundation
import SandhiEngine
import SandhiIO
import SandhiParticipants

/// What a client's `Idempotency-Key` has bought: which transaction runs under it, for which
/// request, and how it ended. Kept in `DIR/coordinator/idempotency.sqlite`.
///
/// The order that makes a retry safe across a crash: the key, its request and the transaction
/// id are durable (WAL, `synchronous=FULL`: the commit fsyncs the WAL) before anything begins
/// under that id. After a crash a retry finds the key and so never begins a second transaction;
/// the first one's fate is then the decision log's and the banks' to tell (see
/// `IdempotencyResolver`), since the outcome column is written after the decision and may not
/// have reached the disk. Keys are kept for `retentionSeconds` (24 hours, as payment APIs do),
/// then forgotten.
public final class IdempotencyStore: @unchecked Sendable {
    public enum Outcome: String, Sendable, Equatable, Codable {
        case committed, aborted
    }

    public struct Entry: Sendable, Equatable {
        public var key: String
        /// The request as first sent, in canonical JSON: a retry must send the same.
        public var request: String
        public var transaction: TransactionID
        /// Nil until the transaction is decided and the row updated.
        public var outcome: Outcome?
        public var latencyUs: UInt64
    }

    public enum Claim: Sendable, Equatable {
        /// The key is new: it is now durably bound to this transaction id.
        case claimed
        /// The key was bound before.
        case existing(Entry)
    }

    public static let retentionSeconds: Int64 = 24 * 60 * 60
    /// The longest key taken, in bytes (Stripe's limit).
    public static let maxKeyBytes = 255

    public let path: String
    private let lock = Lock(())
    private let database: SQLiteDatabase
    private let now: @Sendable () -> Int64

    /// Opens (creating if absent) the store at `path`, through `io` (SQLite's own VFS in
    /// production; a simulated disk under test), and forgets keys past their retention.
    public init(path: String, io: FileIO = .system, now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }) throws {
        self.path = path
        self.now = now
        database = try SQLiteDatabase(path: path, create: true, vfs: io.sqliteVFS?.name)
        do {
            // WAL and synchronous=FULL: a commit returns only once the WAL is fsynced. That is
            // the durability point a claim depends on (IdempotencyStoreTests plants NORMAL).
            try database.execute("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY")
            try database.execute("""
                CREATE TABLE IF NOT EXISTS idempotency(
                    key TEXT PRIMARY KEY,
                    request TEXT NOT NULL,
                    tx INTEGER NOT NULL,
                    outcome TEXT,
                    latency_us INTEGER NOT NULL DEFAULT 0,
                    created_s INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS idempotency_age ON idempotency(created_s);
                """)
            // No directory sync of our own: the database file is created at open, before its
            // WAL, and the VFS (SQLite's unix VFS, and FileSystemVFS alike) syncs the directory
            // on the new WAL's first sync, which makes both names durable.
            try database.statement("DELETE FROM idempotency WHERE created_s < ?").bind(1, now() - Self.retentionSeconds).run()
        } catch {
            database.close()
            throw error
        }
    }

    deinit { database.close() }

    /// Binds `key` to `transaction` for `request`, durably, unless it is bound already: then
    /// what it was bound to.
    public func claim(key: String, request: String, transaction: TransactionID) throws -> Claim {
        try lock.withLock { _ in
            if let entry = try entryLocked(key) { return .existing(entry) }
            try database.statement("INSERT INTO idempotency(key, request, tx, created_s) VALUES (?, ?, ?, ?)")
                .bind(1, key).bind(2, request).bind(3, Int64(bitPattern: transaction.rawValue)).bind(4, now()).run()
            return .claimed
        }
    }

    /// Records how the key's transaction ended (also durable: a later retry then needs no one
    /// else to tell it).
    public func record(key: String, outcome: Outcome, latencyUs: UInt64) throws {
        try lock.withLock { _ in
            try database.statement("UPDATE idempotency SET outcome = ?, latency_us = ? WHERE key = ?")
                .bind(1, outcome.rawValue).bind(2, Int64(clamping: latencyUs)).bind(3, key).run()
        }
    }

    public func entry(_ key: String) throws -> Entry? {
        try lock.withLock { _ in try entryLocked(key) }
    }

    public func close() { lock.withLock { _ in database.close() } }

    private func entryLocked(_ key: String) throws -> Entry? {
        let statement = try database.statement("SELECT request, tx, outcome, latency_us FROM idempotency WHERE key = ?").bind(1, key)
        guard try statement.step() else { return nil }
        return Entry(key: key, request: statement.text(0),
                     transaction: TransactionID(rawValue: UInt64(bitPattern: statement.int64(1))),
                     outcome: statement.isNull(2) ? nil : Outcome(rawValue: statement.text(2)),
                     latencyUs: UInt64(clamping: statement.int64(3)))
    }
}

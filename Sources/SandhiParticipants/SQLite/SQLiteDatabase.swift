import CSQLite

/// An error from SQLite, with the database's own message.
public struct SQLiteError: Error, CustomStringConvertible, Equatable {
    public var code: Int32
    public var message: String
    public var context: String

    public var description: String { "\(context): \(message) (SQLite code \(code))" }
}

/// One SQLite connection, used from one thread at a time. Prepared statements are cached by
/// their SQL text, because re-preparing on every call would dominate a point update.
public final class SQLiteDatabase {
    private var handle: OpaquePointer?
    public let path: String
    private var statements: [String: SQLiteStatement] = [:]

    /// - Parameter vfs: the name of the VFS to open it with; nil for SQLite's default.
    public init(path: String, create: Bool, vfs: String? = nil) throws {
        SQLiteLibrary.prepare()
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &db, flags, vfs)
        guard code == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw SQLiteError(code: code, message: message, context: "opening \(path)")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 5_000)
    }

    deinit { close() }

    /// Frames in the WAL after the last commit (0 until `countWALFrames` is called).
    public var walFrames: Int { walFrameCounter.map { Int($0.pointee) } ?? 0 }
    private var walFrameCounter: UnsafeMutablePointer<Int32>?

    /// Starts counting the WAL's frames after each commit (SQLite's WAL hook; it replaces the
    /// automatic checkpoint, which this connection's owner then runs itself).
    public func countWALFrames() {
        guard let handle, walFrameCounter == nil else { return }
        let counter = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        counter.initialize(to: 0)
        walFrameCounter = counter
        sandhi_sqlite_install_wal_frame_counter(handle, counter)
    }

    public func close() {
        defer {
            walFrameCounter?.deallocate()
            walFrameCounter = nil
        }
        for statement in statements.values { statement.finalize() }
        statements.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// The -wal file SQLite uses for the main database (its name follows symbolic links).
    public var walPath: String? {
        guard let handle, let database = sqlite3_db_filename(handle, "main"), let wal = sqlite3_filename_wal(database) else { return nil }
        return String(cString: wal)
    }

    /// Syncs the WAL (or rollback journal) of the main database through the VFS that opened it:
    /// an fdatasync under SQLite's unix VFS, a `FileSystem.dataSync` under `FileSystemVFS`.
    public func syncJournal() throws {
        guard let handle, let file = sandhi_sqlite_journal_file(handle) else {
            throw SQLiteError(code: SQLITE_MISUSE, message: "no journal open", context: "syncing the journal of \(path)")
        }
        let code = sandhi_sqlite_sync_file(file, SQLITE_SYNC_NORMAL)
        guard code == SQLITE_OK else {
            throw SQLiteError(code: code, message: String(cString: sqlite3_errstr(code)), context: "syncing the journal of \(path)")
        }
    }

    /// Closing will not checkpoint the WAL (for a connection whose durability is in doubt).
    public func disableCheckpointOnClose() {
        guard let handle else { return }
        sandhi_sqlite_no_checkpoint_on_close(handle)
    }

    /// Resets every cached statement, ending any read still open on one (a checkpoint refuses to
    /// run while a statement is active).
    public func resetStatements() {
        for statement in statements.values { statement.reset() }
    }

    /// Runs one or more statements without results.
    public func execute(_ sql: String) throws {
        var error: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(handle, sql, nil, nil, &error)
        if code != SQLITE_OK {
            let message = error.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(error)
            throw SQLiteError(code: code, message: message, context: "executing \(sql.prefix(60))")
        }
    }

    /// A cached prepared statement, reset and with its bindings cleared.
    public func statement(_ sql: String) throws -> SQLiteStatement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        var raw: OpaquePointer?
        let code = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard code == SQLITE_OK, let raw else {
            throw SQLiteError(code: code, message: String(cString: sqlite3_errmsg(handle)), context: "preparing \(sql.prefix(60))")
        }
        let statement = SQLiteStatement(raw: raw, database: handle!, sql: sql)
        statements[sql] = statement
        return statement
    }

    public var changes: Int { Int(sqlite3_changes(handle)) }
}

/// A prepared statement. Bind with 1-based indexes, step, read columns with 0-based indexes.
public final class SQLiteStatement {
    private var raw: OpaquePointer?
    private let database: OpaquePointer
    let sql: String

    init(raw: OpaquePointer, database: OpaquePointer, sql: String) {
        self.raw = raw
        self.database = database
        self.sql = sql
    }

    func finalize() {
        sqlite3_finalize(raw)
        raw = nil
    }

    func reset() {
        sqlite3_reset(raw)
        sqlite3_clear_bindings(raw)
    }

    /// This statement, reset for another use (for callers that hold on to a hot statement
    /// instead of looking it up by its SQL text each time).
    public func reused() -> SQLiteStatement {
        reset()
        return self
    }

    @discardableResult
    public func bind(_ index: Int32, _ value: Int64) -> SQLiteStatement {
        sqlite3_bind_int64(raw, index, value)
        return self
    }

    @discardableResult
    public func bind(_ index: Int32, _ value: String) -> SQLiteStatement {
        sqlite3_bind_text(raw, index, value, -1, sandhi_sqlite_transient())
        return self
    }

    @discardableResult
    public func bind(_ index: Int32, _ value: [UInt8]) -> SQLiteStatement {
        value.withUnsafeBytes { bytes in
            _ = sqlite3_bind_blob(raw, index, bytes.baseAddress, Int32(bytes.count), sandhi_sqlite_transient())
        }
        return self
    }

    /// Advances; true while a row is available.
    public func step() throws -> Bool {
        let code = sqlite3_step(raw)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            let message = String(cString: sqlite3_errmsg(database))
            sqlite3_reset(raw)
            throw SQLiteError(code: code, message: message, context: "running \(sql.prefix(60))")
        }
    }

    /// Runs a statement that returns no rows.
    public func run() throws {
        while try step() {}
    }

    public func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(raw, column) }

    public func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(raw, column) else { return "" }
        return String(cString: pointer)
    }

    public func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(raw, column))
        guard count > 0, let pointer = sqlite3_column_blob(raw, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(raw, column) == SQLITE_NULL }
}

import CSQLite

/// SQLite's process-wide settings (see `sandhi_sqlite_configure`), made once, before this
/// module's first call into the library: every path in (opening a connection, registering a
/// VFS) calls `prepare()` first.
enum SQLiteLibrary {
    static func prepare() { _ = configured }

    /// SQLITE_MISUSE if something else in the process initialised SQLite first: the settings
    /// are then SQLite's defaults, which are correct, only slower.
    private static let configured: Int32 = sandhi_sqlite_configure()
}

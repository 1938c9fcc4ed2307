import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SandhiEngine
import SandhiPostgres

/// Creating and dropping whole databases on a server, for tools that want fresh ones (the
/// PostgreSQL benchmark). Runs over `PostgresBankConfiguration`'s endpoint and credentials,
/// connected to the database it names (`postgres`, usually); the role needs CREATEDB.
public enum DatabaseAdmin {
    /// Creates `name`; fails if it exists. `name` must be a plain identifier (letters, digits, _).
    public static func create(_ name: String, on server: PostgresBankConfiguration, logger: Logger,
                              eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        try run("CREATE DATABASE \(try identifier(name))", on: server, what: "creating database \(name)", logger: logger, eventLoopGroup: eventLoopGroup)
    }

    /// Drops `name` if it exists, ending its sessions first (PostgreSQL 13+: WITH (FORCE)).
    /// Prepared transactions would block the drop, and only a session in their own database may
    /// finish them: those left in it (a run cut short) are rolled back from there first. For
    /// throwaway databases only: whatever they held is gone.
    public static func drop(_ name: String, on server: PostgresBankConfiguration, logger: Logger,
                            eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) throws {
        var inside = server
        inside.database = try identifier(name)
        if let connection = try? PostgresSessionPool.connect(inside, id: 0, eventLoopGroup: eventLoopGroup, logger: logger) {
            defer { _ = try? PostgresSessionPool.wait(for: connection.close(), timeoutMs: server.connectTimeoutMs) }
            let gids = try PostgresSessionPool.wait(for: connection.query(
                "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()", logger: logger), timeoutMs: server.batchTimeoutMs)
            for row in gids.rows {
                let gid = try row.decode(String.self).replacingOccurrences(of: "'", with: "''")
                try PostgresSessionPool.wait(for: connection.query(PostgresQuery(unsafeSQL: "ROLLBACK PREPARED '\(gid)'"), logger: logger),
                                             timeoutMs: server.batchTimeoutMs)
            }
        }
        try run("DROP DATABASE IF EXISTS \(try identifier(name)) WITH (FORCE)", on: server, what: "dropping database \(name)",
                logger: logger, eventLoopGroup: eventLoopGroup)
    }

    private static func identifier(_ name: String) throws -> String {
        guard !name.isEmpty, name.utf8.count <= 63,
              name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }) else {
            throw PostgresBankError.statement(database: name, what: "naming a database", detail: "use 1 to 63 of a-z, 0-9 and _")
        }
        return name
    }

    private static func run(_ sql: String, on server: PostgresBankConfiguration, what: String, logger: Logger,
                            eventLoopGroup: any EventLoopGroup) throws {
        let connection = try PostgresSessionPool.connect(server, id: 0, eventLoopGroup: eventLoopGroup, logger: logger)
        defer { _ = try? PostgresSessionPool.wait(for: connection.close(), timeoutMs: server.connectTimeoutMs) }
        do {
            try PostgresSessionPool.wait(for: connection.query(PostgresQuery(unsafeSQL: sql), logger: logger), timeoutMs: server.batchTimeoutMs)
        } catch {
            throw PostgresBankError.statement(database: server.database, what: what, detail: ServerMessage.describe(error))
        }
    }
}

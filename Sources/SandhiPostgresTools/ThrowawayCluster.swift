import Foundation
import Glibc
import Logging
import SandhiProcess

/// A throwaway PostgreSQL cluster, for the tests and for `sandhi bench --participants postgres`: `initdb` into a fresh temporary folder, a server
/// listening only on a unix socket in that folder (no TCP port, so clusters of parallel test
/// runs never collide; a test of TCP itself asks for a free loopback port),
/// `max_prepared_transactions` set and `fsync=on`, stopped and removed at the end. `swift test`
/// therefore needs no running server, only the server programs.
///
/// PostgreSQL refuses to run as root, and CI runs as root: then `initdb` and `pg_ctl` run as the
/// `postgres` user (through `runuser`), which owns the folder. Every program runs through
/// `ChildProcess` (posix_spawn + waitpid with a deadline), never Foundation's `Process`.
///
/// The tests' suite trait (`.postgresCluster`, in SandhiTestSupport) gives a suite one cluster;
/// each test creates its own database with `createDatabase()`.
public final class ThrowawayCluster: Sendable {
    /// Where the server programs are (`initdb`, `pg_ctl`, `psql`), or nil: then the PostgreSQL
    /// tests are skipped, with `missingReason` in the test output.
    public static let binDirectory: String? = findBinDirectory()

    public static let missingReason = """
        no PostgreSQL server programs found (looked at SANDHI_PG_BINDIR, `pg_config --bindir` \
        and /usr/lib/postgresql/*/bin for initdb and pg_ctl); install the postgresql package \
        (.ci/run does)
        """

    /// The superuser role `initdb` creates; every connection uses it (trust authentication).
    public static let superuser = "postgres"
    /// The socket's port number (the socket file is `.s.PGSQL.<port>` in `socketDirectory`), and
    /// the loopback TCP port too where the cluster listens on one.
    public let port: Int
    /// Whether the server also listens on TCP, on 127.0.0.1 at `port`.
    public let listensOnLoopback: Bool
    public let maxPreparedTransactions: Int
    public let maxConnections: Int

    public let folder: String
    public var socketDirectory: String { folder }
    public var dataDirectory: String { folder + "/data" }
    private let binDirectory: String
    private let runAsPostgres: Bool
    private let databaseCount = Counter()

    /// The server's major version, as `initdb` wrote it into the data directory.
    public var version: String {
        ((try? String(contentsOfFile: dataDirectory + "/PG_VERSION", encoding: .utf8)) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// Creates and starts a cluster; blocking (run it on its own thread). `maxPreparedTransactions`
    /// bounds the branches prepared at once over all its databases, `maxConnections` the sessions.
    /// With `loopbackTCP`, the server also listens on 127.0.0.1, at a port that was free a moment
    /// before (the kernel's pick), which is `port`.
    public static func start(maxPreparedTransactions: Int = 64, maxConnections: Int = 200, loopbackTCP: Bool = false,
                             logger: Logger? = nil) throws -> ThrowawayCluster {
        guard let binDirectory else { throw Failure(description: missingReason) }
        let port = loopbackTCP ? try freeLoopbackPort() : 5432
        let cluster = try ThrowawayCluster(binDirectory: binDirectory, maxPreparedTransactions: maxPreparedTransactions,
                                           maxConnections: maxConnections, port: port, listensOnLoopback: loopbackTCP)
        do {
            try cluster.run("initdb", ["-D", cluster.dataDirectory, "--auth=trust", "--username=\(superuser)",
                                       "--encoding=UTF8", "--locale=C", "--no-sync"])
            try cluster.pgCtl(["start", "-w", "-t", "60", "-l", cluster.folder + "/server.log", "-o", cluster.serverOptions])
        } catch {
            cluster.remove()
            throw error
        }
        logger?.info("started a throwaway PostgreSQL cluster", metadata: ["folder": "\(cluster.folder)"])
        return cluster
    }

    private init(binDirectory: String, maxPreparedTransactions: Int, maxConnections: Int, port: Int, listensOnLoopback: Bool) throws {
        precondition(maxPreparedTransactions > 0, "a cluster that cannot prepare is of no use here")
        precondition(maxConnections >= 10, "max_connections \(maxConnections) leaves no room")
        self.binDirectory = binDirectory
        self.port = port
        self.listensOnLoopback = listensOnLoopback
        self.maxPreparedTransactions = maxPreparedTransactions
        self.maxConnections = maxConnections
        runAsPostgres = geteuid() == 0
        var template = Array("/tmp/sandhi-pg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw Failure(description: "cannot create a folder for the PostgreSQL cluster: \(String(cString: strerror(errno)))")
        }
        folder = String(cString: made)
        if runAsPostgres {
            guard let user = getpwnam("postgres") else {
                remove()
                throw Failure(description: "running as root, and there is no postgres user to run the server as")
            }
            guard chown(folder, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else {
                let reason = String(cString: strerror(errno))
                remove()
                throw Failure(description: "cannot give \(folder) to the postgres user: \(reason)")
            }
        }
    }

    /// Settings on the server's command line (pg_ctl passes them through a shell, hence quotes).
    private var serverOptions: String {
        var options = [
            listensOnLoopback ? "-c listen_addresses='127.0.0.1'" : "-c listen_addresses=''",
            "-c port=\(port)",
            "-c unix_socket_directories='\(socketDirectory)'",
            "-c max_prepared_transactions=\(maxPreparedTransactions)",
            "-c fsync=on",
            "-c max_connections=\(maxConnections)",
        ]
        #if os(Linux)
        // After a crash (`restartImmediately`) the server makes its whole data directory durable
        // before it replays the WAL. File by file, that is a minute and more on a slow disk once
        // a suite has made fifty databases, past pg_ctl's wait; one syncfs of the file system
        // makes it just as durable at once. (PostgreSQL 14 on, and Linux only.)
        if (Int(version) ?? 0) >= 14 { options.append("-c recovery_init_sync_method=syncfs") }
        #endif
        return options.joined(separator: " ")
    }

    /// Stops the server at once (no checkpoint: nothing here needs one) and removes the folder.
    public func stop() {
        do {
            try pgCtl(["stop", "-w", "-t", "60", "-m", "immediate"])
        } catch {
            // The folder stays: a server still running on a deleted data directory could be
            // found by nobody. Said on stderr (stdout may be a report in JSON).
            FileHandle.standardError.write(Data("ThrowawayCluster: stopping the server in \(folder) failed, so it is left there: \(error)\n".utf8))
            return
        }
        remove()
    }

    /// Kills the server without a shutdown checkpoint and starts it again: what a crash of the
    /// database server looks like. Prepared transactions must survive it.
    public func restartImmediately() throws {
        try pgCtl(["restart", "-w", "-t", "60", "-m", "immediate", "-l", folder + "/server.log", "-o", serverOptions])
    }

    private func remove() {
        _ = try? ChildProcess.run("rm", ["-rf", folder], timeoutSeconds: 60)
    }

    // MARK: - Databases and SQL

    /// A new, empty database for one test.
    public func createDatabase(_ label: String = "t") throws -> String {
        let name = "\(label)_\(databaseCount.next())"
        _ = try sql("postgres", "CREATE DATABASE \(name)")
        return name
    }

    /// Runs `statement` with psql in `database` and returns its unaligned output (rows on lines,
    /// columns separated by `|`), trimmed. Checks what a bank wrote without the bank's code.
    @discardableResult
    public func sql(_ database: String, _ statement: String) throws -> String {
        let output = try ChildProcess.run(binDirectory + "/psql",
                                          ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", socketDirectory, "-p", String(port),
                                           "-U", Self.superuser, "-d", database, "-c", statement],
                                          timeoutSeconds: 60)
        guard output.status == 0, !output.timedOut else {
            throw Failure(description: "psql failed (\(output.status)) on \(statement): \(output.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    // MARK: - Running the server programs

    private func pgCtl(_ arguments: [String]) throws {
        try run("pg_ctl", ["-D", dataDirectory] + arguments)
    }

    private func run(_ program: String, _ arguments: [String]) throws {
        let path = binDirectory + "/" + program
        let output = runAsPostgres
            ? try ChildProcess.run(Self.runuser, ["-u", "postgres", "--", path] + arguments, timeoutSeconds: 120)
            : try ChildProcess.run(path, arguments, timeoutSeconds: 120)
        guard output.status == 0, !output.timedOut else {
            let log: String = (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? ""
            let how = output.timedOut ? "timed out" : "status \(output.status)"
            let said = output.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure(description: "\(program) \(arguments.first ?? "") failed (\(how)): \(said) \(log.suffix(600))")
        }
    }

    /// A loopback TCP port nobody listens on now: the kernel's pick for a socket bound to port 0.
    private static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "cannot open a socket to find a free port: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let found = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard found else { throw Failure(description: "cannot find a free loopback port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static let runuser = ["/usr/sbin/runuser", "/sbin/runuser"].first { (path: String) in access(path, X_OK) == 0 } ?? "runuser"

    private static func findBinDirectory() -> String? {
        func hasServer(_ directory: String) -> Bool {
            access(directory + "/initdb", X_OK) == 0 && access(directory + "/pg_ctl", X_OK) == 0
        }
        // Set, it is the only place looked at (pointing it elsewhere shows what a machine
        // without PostgreSQL reports).
        if let override = ProcessInfo.processInfo.environment["SANDHI_PG_BINDIR"] { return hasServer(override) ? override : nil }
        if let output = try? ChildProcess.run("pg_config", ["--bindir"], timeoutSeconds: 30), output.status == 0 {
            let directory = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            if hasServer(directory) { return directory }
        }
        // Debian's layout; the newest version first.
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        return versions.compactMap(Int.init).sorted(by: >).map { "/usr/lib/postgresql/\($0)/bin" }.first(where: hasServer)
    }
}

/// A thread-safe counter (database names).
private final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}

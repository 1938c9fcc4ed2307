import SandhiIO
import Foundation
import Glibc
import SandhiEngine
import SandhiParticipants

/// Problems with a data directory, each one line for the operator.
public enum DataDirectoryError: Error, CustomStringConvertible, Equatable {
    case missing(String)
    case notSandhi(String)
    case alreadyExists(String)
    case locked(path: String, holder: String)
    case io(String)

    public var description: String {
        switch self {
        case .missing(let path): return "data directory \(path) does not exist (create it with `sandhi init --data \(path)`)"
        case .notSandhi(let path): return "\(path) is not a Sandhi data directory (no sandhi.toml)"
        case .alreadyExists(let path): return "\(path) already holds a Sandhi data directory"
        case .locked(let path, let holder): return "another sandhi process (\(holder)) is using \(path)"
        case .io(let what): return what
        }
    }
}

/// The on-disk home of one Sandhi coordinator and its embedded banks:
///
///     DIR/sandhi.toml              participants, tuning, compliance rules
///     DIR/sandhi.lock              held (flock) by the one process using DIR
///     DIR/coordinator/             decision-log segments (unless `[coordinator] log` names a database)
///     DIR/banks/NAME.sqlite        one embedded bank per participant
///     DIR/deadlocks.json           the last deadlocks, for `sandhi check --deadlocks`
public struct DataDirectory: Sendable {
    public let path: String
    /// Opens banks of the kinds the runtime does not know itself (see `openBank`).
    public var bankOpener = BankOpener()
    /// Opens the decision log when `sandhi.toml` puts it in PostgreSQL (see `openDecisionLog`).
    public var decisionLogOpener = DecisionLogOpener()
    /// Where the durable files are written: the decision log, the journal, `sandhi.toml`, the
    /// banks. `.system` in production; a recording or simulated file system under test.
    public var io: FileIO = .system

    public var configurationPath: String { path + "/sandhi.toml" }
    public var lockPath: String { path + "/sandhi.lock" }
    public var coordinatorPath: String { path + "/coordinator" }
    public var banksPath: String { path + "/banks" }
    public var deadlockHistoryPath: String { path + "/deadlocks.json" }
    /// Heuristic cases and every operator action on them (`ReconciliationJournal`).
    public var reconciliationPath: String { path + "/reconciliation.log" }
    /// Every operator command, signed (`AuditTrail`).
    public var auditTrailPath: String { path + "/audit.log" }
    public func bankPath(_ participant: ParticipantID) -> String { banksPath + "/\(participant.name).sqlite" }

    public init(path: String, bankOpener: BankOpener = BankOpener(), decisionLogOpener: DecisionLogOpener = DecisionLogOpener(),
                io: FileIO = .system) {
        self.bankOpener = bankOpener
        self.decisionLogOpener = decisionLogOpener
        self.io = io
        var trimmed = path
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.path = trimmed
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Checks that `path` is a Sandhi data directory and reads its configuration.
    public func loadConfiguration() throws -> SandhiConfiguration {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw DataDirectoryError.missing(path)
        }
        guard let data = FileManager.default.contents(atPath: configurationPath) else {
            throw DataDirectoryError.notSandhi(path)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SandhiConfiguration.ParseError(description: "sandhi.toml is not UTF-8")
        }
        return try SandhiConfiguration(toml: text)
    }

    /// Creates the directory layout, lets `populate` create the participants' storage (under
    /// the directory's lock), and only then writes `sandhi.toml`, the mark of a Sandhi data
    /// directory. All or nothing: if anything fails, what this call created is removed again,
    /// so a failed `sandhi init` can simply be run again. An existing empty directory is fine;
    /// an existing Sandhi directory is refused.
    public func create(_ configuration: SandhiConfiguration, populate: (DataDirectory) throws -> Void) throws {
        if Self.exists(configurationPath) { throw DataDirectoryError.alreadyExists(path) }
        let manager = FileManager.default
        let createdRoot = !Self.exists(path)
        var created: [String] = []
        do {
            for folder in [path, coordinatorPath, banksPath] where !Self.exists(folder) {
                do {
                    try manager.createDirectory(atPath: folder, withIntermediateDirectories: true)
                } catch {
                    throw DataDirectoryError.io("cannot create \(folder): \(error.localizedDescription)")
                }
                created.append(folder)
            }
            let lock = try self.lock()
            defer { lock.release() }
            for participant in configuration.participants {
                let bank = bankPath(participant.id)
                if Self.exists(bank) { throw DataDirectoryError.io("\(bank) already exists; refusing to overwrite it") }
            }
            try populate(self)
            // The audit trail's signing key, before sandhi.toml marks the directory complete.
            if !Self.exists(AuditKey.privatePath(path)) { try AuditKey.create(in: path) }
            try writeConfiguration(configuration)
        } catch {
            for participant in configuration.participants {
                for suffix in ["", "-wal", "-shm", "-journal"] { try? manager.removeItem(atPath: bankPath(participant.id) + suffix) }
            }
            try? manager.removeItem(atPath: lockPath)
            try? manager.removeItem(atPath: AuditKey.privatePath(path))
            try? manager.removeItem(atPath: AuditKey.publicPath(path))
            for folder in created.reversed() { try? manager.removeItem(atPath: folder) }
            if createdRoot { try? manager.removeItem(atPath: path) }
            throw error
        }
    }

    /// Replaces sandhi.toml atomically and durably (a temporary file written and synced,
    /// renamed over it, the directory synced: `FileSystem.replaceFile`).
    public func writeConfiguration(_ configuration: SandhiConfiguration) throws {
        do {
            try io.fileSystem.replaceFile(configurationPath, with: Array(configuration.toml.utf8))
        } catch {
            throw DataDirectoryError.io("cannot write \(configurationPath): \(error.what)")
        }
    }

    /// Takes the directory's lock for the life of the returned object, so two processes never
    /// drive the same banks and log. The holder's pid is written into the file for the message
    /// the loser prints.
    public func lock() throws -> DirectoryLock {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DataDirectoryError.io("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = read(fd, &buffer, buffer.count)
            close(fd)
            let pid = count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "unknown pid"
            throw DataDirectoryError.locked(path: path, holder: "pid \(pid)")
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pid.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        return DirectoryLock(fd: fd)
    }
}

/// Holds the data directory's flock until `release` (or process exit, including SIGKILL).
public final class DirectoryLock: @unchecked Sendable {
    private var fd: Int32

    init(fd: Int32) { self.fd = fd }

    public func release() {
        if fd >= 0 {
            flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }

    deinit { release() }
}

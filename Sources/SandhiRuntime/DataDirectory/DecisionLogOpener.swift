import Logging
import SandhiEngine

/// How the coordinator's decision log is opened. Without `[coordinator] log` in `sandhi.toml`
/// the runtime opens its own segment files in `DIR/coordinator/`; a log in PostgreSQL is opened
/// by code the executable hands over (as `BankOpener` does for PostgreSQL banks), since the
/// runtime imports no database client.
public struct DecisionLogOpener: Sendable {
    /// Opens the log in `database` for writing (taking it for this coordinator alone), or throws
    /// one clear line. The configuration is the whole `sandhi.toml` (the instance name).
    public typealias Open = @Sendable (_ database: DatabaseConnection, _ configuration: SandhiConfiguration, _ logger: Logger) throws
        -> (any DecisionLogStorage, RecoveredDecisionLog)
    /// Reads the log in `database` without taking it, changing nothing (`sandhi log dump`, `check`).
    public typealias Read = @Sendable (_ database: DatabaseConnection, _ configuration: SandhiConfiguration, _ logger: Logger) throws
        -> RecoveredDecisionLog

    public var open: Open?
    public var read: Read?

    public init(open: Open? = nil, read: Read? = nil) {
        self.open = open
        self.read = read
    }

    public struct Unsupported: Error, CustomStringConvertible {
        public var database: DatabaseConnection
        public var description: String { "the decision log is in PostgreSQL (\(database.description)), which this program cannot open" }
    }
}

extension DataDirectory {
    /// Opens the configured decision log for writing: the segment files, or the opener's database.
    public func openDecisionLog(_ configuration: SandhiConfiguration, logger: Logger) throws -> (any DecisionLogStorage, RecoveredDecisionLog) {
        guard let database = configuration.decisionLog else {
            return try DecisionLogStore.open(directory: coordinatorPath, segmentMaxBytes: configuration.segmentMaxBytes,
                                             fileSystem: io.fileSystem, logger: logger)
        }
        guard let open = decisionLogOpener.open else { throw DecisionLogOpener.Unsupported(database: database) }
        return try open(database, configuration, logger)
    }

    /// Reads the configured decision log, changing nothing.
    public func readDecisionLog(_ configuration: SandhiConfiguration, logger: Logger) throws -> RecoveredDecisionLog {
        guard let database = configuration.decisionLog else { return try DecisionLogStore.read(directory: coordinatorPath, fileSystem: io.fileSystem) }
        guard let read = decisionLogOpener.read else { throw DecisionLogOpener.Unsupported(database: database) }
        return try read(database, configuration, logger)
    }

    /// Where the decision log lives, for messages.
    public func decisionLogDescription(_ configuration: SandhiConfiguration) -> String {
        configuration.decisionLog.map { "the decision log in PostgreSQL (\($0.description))" } ?? "the decision log in \(coordinatorPath)"
    }
}

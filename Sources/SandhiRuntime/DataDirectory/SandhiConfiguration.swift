import Foundation
import SandhiEngine
import SandhiParticipants
import TOMLKit

/// The contents of `sandhi.toml`: participants, coordinator tuning and compliance rules.
public struct SandhiConfiguration: Sendable, Equatable {
    public static let formatVersion = 1

    public enum ParticipantKind: String, Sendable, Equatable {
        /// An embedded bank: DIR/banks/NAME.sqlite.
        case sqlite
        /// A PostgreSQL database with native two-phase commit, anywhere on the network.
        case postgres
    }

    public struct Participant: Sendable, Equatable {
        public var id: ParticipantID
        public var kind: ParticipantKind
        /// Where a `postgres` participant's database is; nil for the other kinds.
        public var database: DatabaseConnection?
        /// Decide prepared branches alone after waiting this long (as real resource managers
        /// may): `heuristic_after_ms` and `heuristic_decision = "commit" | "rollback"`. Off by
        /// default; it exists to show, and to test, what Sandhi does about mixed outcomes.
        public var heuristic: HeuristicPolicy?
        /// A `postgres` participant's sessions: how many of a batch's branches stage side by side
        /// (`sessions = N`, 1 to 256). Nil: the bank's default. Each is a server backend, and
        /// the server's `max_connections` bounds them all.
        public var sessions: Int?
        public static let sessionsRange = 1...256
        public init(id: ParticipantID, kind: ParticipantKind = .sqlite, database: DatabaseConnection? = nil, heuristic: HeuristicPolicy? = nil,
                    sessions: Int? = nil) {
            precondition((kind == .postgres) == (database != nil), "a postgres participant, and only one, has a database")
            precondition(sessions == nil || (kind == .postgres && Self.sessionsRange.contains(sessions!)), "sessions \(String(describing: sessions))")
            self.id = id
            self.kind = kind
            self.database = database
            self.heuristic = heuristic
            self.sessions = sessions
        }
    }

    /// This coordinator's name, unique among the coordinators that share a database server:
    /// PostgreSQL's prepared transactions carry it in their global ids, and recovery resolves
    /// only its own. Written by `sandhi init`; lower-case letters, digits, - and _.
    public var instance = "sandhi"

    /// Where the decision log lives when it is not the segment files in `DIR/coordinator/`:
    /// a PostgreSQL database (`[coordinator] log = "postgres://..."`, or a `[coordinator.log]`
    /// table with the same connection keys as a participant), whose streaming replication then
    /// carries the coordinator's decisions to a standby. Nil: the segment files.
    public var decisionLog: DatabaseConnection?

    public var participants: [Participant]
    public var prepareTimeoutMs: UInt64 = 5_000
    public var resendInitialMs: UInt64 = 50
    public var segmentMaxBytes: Int = 64 << 20
    /// Tax deducted at source, in basis points of the gross amount (100 = 1%).
    public var tdsBasisPoints: Int64 = 100
    /// Transfers at or above this gross amount are filed in the report ledger.
    public var reportThreshold: Paise = .rupees(10_00_000)
    /// The participant that collects TDS (an account named `tds`), if any.
    public var taxLedger: ParticipantID?
    /// The participant that keeps the regulator's large-transaction report, if any.
    public var reportLedger: ParticipantID?
    /// How transactions are isolated (`2pl`, the default and, so far, the only mode).
    public var concurrency: ConcurrencyMode = .twoPhaseLocking
    /// Strict two-phase locking: how long a lock request may wait, and deadlock handling.
    public var lockTimeoutMs: UInt64 = 2_000
    public var detectDeadlocks = true
    public var victimPolicy: VictimPolicy = .leastWork
    /// Time the operator has to choose a different victim; 0 aborts the engine's pick at once.
    public var deadlockGraceMs: UInt64 = 0
    /// Tests only, never read from or written to `sandhi.toml`: a known bug to plant.
    public var plantedBug: PlantedBug?

    public init(participants: [Participant]) {
        self.participants = participants
    }

    public func participant(_ id: ParticipantID) -> Participant? { participants.first { $0.id == id } }

    // MARK: - TOML

    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public var description: String
    }

    public init(toml text: String) throws {
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ParseError(description: "sandhi.toml: \(error.description) at line \(error.source.begin.line)")
        }
        guard let sandhi = table["sandhi"]?.table, let format = sandhi["format"]?.int else {
            throw ParseError(description: "sandhi.toml: missing [sandhi] format; not a Sandhi configuration")
        }
        guard format == Self.formatVersion else {
            throw ParseError(description: "sandhi.toml: format \(format) is not supported (expected \(Self.formatVersion))")
        }
        var participants: [Participant] = []
        for (index, entry) in (table["participants"]?.array ?? TOMLArray()).enumerated() {
            guard let entry = entry.table, let name = entry["name"]?.string else {
                throw ParseError(description: "sandhi.toml: participants[\(index)] needs a name")
            }
            guard let id = ParticipantID(name) else {
                throw ParseError(description: "sandhi.toml: participant name \"\(name)\" must be lower-case letters, digits, - or _")
            }
            let kindName = entry["kind"]?.string ?? "sqlite"
            guard let kind = ParticipantKind(rawValue: kindName) else {
                throw ParseError(description: "sandhi.toml: participant \(name) has unknown kind \"\(kindName)\"")
            }
            guard !participants.contains(where: { $0.id == id }) else {
                throw ParseError(description: "sandhi.toml: participant \(name) is listed twice")
            }
            var heuristic: HeuristicPolicy?
            switch (entry["heuristic_after_ms"], entry["heuristic_decision"]) {
            case (nil, nil):
                break
            case (let after?, let decision?):
                guard let afterMs = after.int, afterMs >= 0 else {
                    throw ParseError(description: "sandhi.toml: participant \(name): heuristic_after_ms must be 0 or more")
                }
                guard let word = decision.string, word == "commit" || word == "rollback" else {
                    throw ParseError(description: "sandhi.toml: participant \(name): heuristic_decision must be \"commit\" or \"rollback\"")
                }
                heuristic = HeuristicPolicy(afterMs: Int64(afterMs), commit: word == "commit")
            default:
                throw ParseError(description: "sandhi.toml: participant \(name): heuristic_after_ms and heuristic_decision go together")
            }
            let database = try Self.database(entry, name: name, kind: kind)
            var sessions: Int?
            if let raw = entry["sessions"] {
                guard kind == .postgres else {
                    throw ParseError(description: "sandhi.toml: participant \(name) is \(kind.rawValue); sessions belongs to a postgres participant")
                }
                guard let number = raw.int, Participant.sessionsRange.contains(number) else {
                    throw ParseError(description: "sandhi.toml: participant \(name): sessions must be 1...256")
                }
                sessions = number
            }
            if kind == .postgres && heuristic != nil {
                throw ParseError(description: "sandhi.toml: participant \(name) is postgres, which waits for the coordinator: no heuristic_after_ms")
            }
            participants.append(Participant(id: id, kind: kind, database: database, heuristic: heuristic, sessions: sessions))
        }
        self.init(participants: participants)
        if let coordinator = table["coordinator"]?.table {
            if let raw = coordinator["instance"] {
                guard let name = raw.string, Self.isValidInstance(name) else {
                    throw ParseError(description: "sandhi.toml: [coordinator] instance must be 1 to 32 lower-case letters, digits, - or _")
                }
                instance = name
            }
            prepareTimeoutMs = try Self.positive(coordinator, "prepare_timeout_ms", default: prepareTimeoutMs)
            resendInitialMs = try Self.positive(coordinator, "resend_initial_ms", default: resendInitialMs)
            segmentMaxBytes = Int(try Self.positive(coordinator, "segment_max_bytes", default: UInt64(segmentMaxBytes)))
            if let raw = coordinator["log"] {
                decisionLog = try Self.decisionLog(raw)
            }
        }
        if let locking = table["locking"]?.table {
            if let raw = locking["concurrency"] {
                guard let name = raw.string, let mode = ConcurrencyMode(rawValue: name) else {
                    throw ParseError(description: "sandhi.toml: concurrency must be one of "
                        + ConcurrencyMode.allCases.map(\.rawValue).joined(separator: ", ") + " (occ, percolator and truetime are not built yet)")
                }
                concurrency = mode
            }
            lockTimeoutMs = try Self.positive(locking, "lock_timeout_ms", default: lockTimeoutMs)
            if let raw = locking["deadlock_detection"] {
                guard let flag = raw.bool else { throw ParseError(description: "sandhi.toml: deadlock_detection must be true or false") }
                detectDeadlocks = flag
            }
            if let raw = locking["victim_policy"] {
                guard let name = raw.string, let policy = VictimPolicy(rawValue: name) else {
                    throw ParseError(description: "sandhi.toml: victim_policy must be one of "
                        + VictimPolicy.allCases.map(\.rawValue).joined(separator: ", "))
                }
                victimPolicy = policy
            }
            if let raw = locking["deadlock_grace_ms"] {
                guard let number = raw.int, number >= 0 else { throw ParseError(description: "sandhi.toml: deadlock_grace_ms must be 0 or more") }
                deadlockGraceMs = UInt64(number)
            }
        }
        if let compliance = table["compliance"]?.table {
            if let bp = compliance["tds_basis_points"]?.int {
                guard (0...10_000).contains(bp) else { throw ParseError(description: "sandhi.toml: tds_basis_points must be 0...10000") }
                tdsBasisPoints = Int64(bp)
            }
            if let threshold = compliance["report_threshold_paise"]?.int {
                guard threshold > 0 else { throw ParseError(description: "sandhi.toml: report_threshold_paise must be positive") }
                reportThreshold = Paise(Int64(threshold))
            }
            taxLedger = try Self.participantReference(compliance, "tax_ledger", in: participants)
            reportLedger = try Self.participantReference(compliance, "report_ledger", in: participants)
        }
    }

    /// A name for a new coordinator: this machine's name (as far as it is a valid name) and six
    /// random hex digits, so that two data directories on one machine differ too.
    public static func newInstanceName(hostName: String = ProcessInfo.processInfo.hostName) -> String {
        let host = String(hostName.lowercased().prefix { $0 != "." }.filter { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }.prefix(24))
        let suffix = String(UInt32.random(in: 0...0xFF_FFFF), radix: 16)
        let name = (host.isEmpty ? "sandhi" : host) + "-" + String(repeating: "0", count: 6 - suffix.count) + suffix
        assert(isValidInstance(name))
        return name
    }

    /// The same rules as a participant's name: PostgreSQL gids carry both.
    public static func isValidInstance(_ name: String) -> Bool { ParticipantID.isValid(name) }

    /// A `postgres` participant's database: `url`, or `host`/`socket`, `port`, `user`,
    /// `database` and `password_file`. Other kinds have none of these keys.
    private static func database(_ entry: TOMLTable, name: String, kind: ParticipantKind) throws -> DatabaseConnection? {
        guard kind == .postgres else {
            if let key = connectionKeys.first(where: { entry[$0] != nil }) {
                throw ParseError(description: "sandhi.toml: participant \(name) is \(kind.rawValue); \(key) belongs to a postgres participant")
            }
            return nil
        }
        return try connection(entry, subject: "participant \(name)", needing: "participant \(name) is postgres and")
    }

    private static let connectionKeys = ["url", "host", "socket", "port", "user", "database", "password_file"]

    /// `[coordinator] log`: a postgres:// URL, or a table with a participant's connection keys.
    private static func decisionLog(_ raw: any TOMLValueConvertible) throws -> DatabaseConnection {
        let subject = "[coordinator] log"
        if let url = raw.string {
            do {
                return try DatabaseConnection(url: url)
            } catch let error as DatabaseConnection.ParseError {
                throw ParseError(description: "sandhi.toml: \(subject): \(error.description)")
            }
        }
        guard let table = raw.table else {
            throw ParseError(description: "sandhi.toml: \(subject) must be a postgres:// URL or a table of url, host or socket, port, user, database, password_file")
        }
        if let key = table.keys.first(where: { !connectionKeys.contains($0) }) {
            throw ParseError(description: "sandhi.toml: \(subject): unknown key \(key)")
        }
        return try connection(table, subject: subject, needing: subject)
    }

    /// A database's connection keys. `subject` starts every message about one key; `needing`
    /// starts the messages about a missing one.
    private static func connection(_ entry: TOMLTable, subject: String, needing: String) throws -> DatabaseConnection {
        func text(_ key: String) throws -> String? {
            guard let raw = entry[key] else { return nil }
            guard let value = raw.string, !value.isEmpty else { throw ParseError(description: "sandhi.toml: \(subject): \(key) must be a non-empty string") }
            return value
        }
        var connection: DatabaseConnection
        if let url = try text("url") {
            if let key = ["host", "socket", "port", "user", "database"].first(where: { entry[$0] != nil }) {
                throw ParseError(description: "sandhi.toml: \(subject): give url or \(key), not both")
            }
            do {
                connection = try DatabaseConnection(url: url)
            } catch let error as DatabaseConnection.ParseError {
                throw ParseError(description: "sandhi.toml: \(subject): \(error.description)")
            }
        } else {
            var port = DatabaseConnection.defaultPort
            if let raw = entry["port"] {
                guard let number = raw.int, (1...65_535).contains(number) else {
                    throw ParseError(description: "sandhi.toml: \(subject): port must be 1...65535")
                }
                port = number
            }
            let endpoint: DatabaseConnection.Endpoint
            switch (try text("host"), try text("socket")) {
            case (let host?, nil): endpoint = .tcp(host: host, port: port)
            case (nil, let folder?): endpoint = .unixSocket(folder: folder, port: port)
            case (nil, nil): throw ParseError(description: "sandhi.toml: \(needing) needs url, host or socket")
            case (_?, _?): throw ParseError(description: "sandhi.toml: \(subject): give host or socket, not both")
            }
            guard let user = try text("user"), let database = try text("database") else {
                throw ParseError(description: "sandhi.toml: \(needing) needs user and database (or a url)")
            }
            connection = DatabaseConnection(endpoint: endpoint, user: user, database: database)
        }
        connection.passwordFile = try text("password_file")
        return connection
    }

    private static func positive(_ table: TOMLTable, _ key: String, default value: UInt64) throws -> UInt64 {
        guard let raw = table[key] else { return value }
        guard let number = raw.int, number > 0 else { throw ParseError(description: "sandhi.toml: \(key) must be a positive integer") }
        return UInt64(number)
    }

    private static func participantReference(_ table: TOMLTable, _ key: String, in participants: [Participant]) throws -> ParticipantID? {
        guard let name = table[key]?.string else { return nil }
        guard let id = ParticipantID(name), participants.contains(where: { $0.id == id }) else {
            throw ParseError(description: "sandhi.toml: \(key) names \"\(name)\", which is not a listed participant")
        }
        return id
    }

    public var toml: String {
        var lines = [
            "# Sandhi data directory: participants, coordinator tuning, compliance rules.",
            "[sandhi]",
            "format = \(Self.formatVersion)",
            "",
            "[coordinator]",
            "instance = \"\(instance)\"          # names this coordinator's prepared transactions in PostgreSQL",
            "prepare_timeout_ms = \(prepareTimeoutMs)",
            "resend_initial_ms = \(resendInitialMs)",
            "segment_max_bytes = \(segmentMaxBytes)",
        ]
        if let decisionLog {
            // A URL while it says everything; a table when there is a password file to name. A
            // password given in a URL is not written back: it belongs in a password file.
            if let file = decisionLog.passwordFile {
                lines += ["", "[coordinator.log]                # the decision log, in PostgreSQL"]
                lines += Self.connectionLines(decisionLog) + ["password_file = \"\(file)\""]
            } else {
                lines.append("log = \"\(decisionLog.description)\"   # the decision log, in PostgreSQL")
            }
        }
        lines += [
            "",
            "[locking]",
            "concurrency = \"\(concurrency.rawValue)\"            # strict two-phase locking",
            "lock_timeout_ms = \(lockTimeoutMs)",
            "deadlock_detection = \(detectDeadlocks)",
            "victim_policy = \"\(victimPolicy.rawValue)\"    # \(VictimPolicy.allCases.map(\.rawValue).joined(separator: " | "))",
            "deadlock_grace_ms = \(deadlockGraceMs)           # time to override the victim; 0 = abort at once",
            "",
            "[compliance]",
            "tds_basis_points = \(tdsBasisPoints)            # tax deducted at source; 100 = 1%",
            "report_threshold_paise = \(reportThreshold.value)  # \(reportThreshold.formatted(showPaise: false))",
        ]
        if let taxLedger { lines.append("tax_ledger = \"\(taxLedger)\"") }
        if let reportLedger { lines.append("report_ledger = \"\(reportLedger)\"") }
        for participant in participants {
            lines += ["", "[[participants]]", "name = \"\(participant.id)\"", "kind = \"\(participant.kind.rawValue)\""]
            if let database = participant.database {
                lines += Self.connectionLines(database)
                // A password given in a URL is not written back: it belongs in a password file.
                if let file = database.passwordFile { lines.append("password_file = \"\(file)\"") }
            }
            if let sessions = participant.sessions { lines.append("sessions = \(sessions)          # branches staged side by side") }
            if let heuristic = participant.heuristic {
                lines += ["heuristic_after_ms = \(heuristic.afterMs)", "heuristic_decision = \"\(heuristic.commit ? "commit" : "rollback")\""]
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private static func connectionLines(_ database: DatabaseConnection) -> [String] {
        var lines: [String]
        switch database.endpoint {
        case .tcp(let host, let port): lines = ["host = \"\(host)\"", "port = \(port)"]
        case .unixSocket(let folder, let port): lines = ["socket = \"\(folder)\"", "port = \(port)"]
        }
        return lines + ["user = \"\(database.user)\"", "database = \"\(database.database)\""]
    }
}

import SandhiEngine
import SandhiParticipants
import TOMLKit

/// The contents of `sandhi.toml`: participants, coordinator tuning and compliance rules.
public struct SandhiConfiguration: Sendable, Equatable {
    public static let formatVersion = 1

    public enum ParticipantKind: String, Sendable, Equatable {
        case sqlite
    }

    public struct Participant: Sendable, Equatable {
        public var id: ParticipantID
        public var kind: ParticipantKind
        /// Decide prepared branches alone after waiting this long (as real resource managers
        /// may): `heuristic_after_ms` and `heuristic_decision = "commit" | "rollback"`. Off by
        /// default; it exists to show, and to test, what Sandhi does about mixed outcomes.
        public var heuristic: HeuristicPolicy?
        public init(id: ParticipantID, kind: ParticipantKind = .sqlite, heuristic: HeuristicPolicy? = nil) {
            self.id = id
            self.kind = kind
            self.heuristic = heuristic
        }
    }

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
            participants.append(Participant(id: id, kind: kind, heuristic: heuristic))
        }
        self.init(participants: participants)
        if let coordinator = table["coordinator"]?.table {
            prepareTimeoutMs = try Self.positive(coordinator, "prepare_timeout_ms", default: prepareTimeoutMs)
            resendInitialMs = try Self.positive(coordinator, "resend_initial_ms", default: resendInitialMs)
            segmentMaxBytes = Int(try Self.positive(coordinator, "segment_max_bytes", default: UInt64(segmentMaxBytes)))
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
            "prepare_timeout_ms = \(prepareTimeoutMs)",
            "resend_initial_ms = \(resendInitialMs)",
            "segment_max_bytes = \(segmentMaxBytes)",
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
            if let heuristic = participant.heuristic {
                lines += ["heuristic_after_ms = \(heuristic.afterMs)", "heuristic_decision = \"\(heuristic.commit ? "commit" : "rollback")\""]
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

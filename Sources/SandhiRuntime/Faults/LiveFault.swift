import SandhiEngine

/// A fault injected into a running node: the faults the simulator draws from its seed
/// (SimulatedWorld+Nemesis, +Network), as commands on real threads, real files and real time,
/// for the console, scripted demos and tests. `SandhiNode.inject` applies them; every one is an
/// `EngineEvent` (`faultInjected` or `faultCleared`), and `SandhiNode.activeFaults` lists what
/// is in force.
///
/// The text form, read by `parse` and written by `description`:
///
///     crash icici            icici's process dies: queued messages and unsent replies are lost
///     restart icici          icici opens its bank again, restores its prepared branches, resumes
///     partition axis         the link to axis is cut, both directions
///     heal axis              axis's link is whole again: no partition, loss or delay
///     drop icici 30%         each message to icici is lost with this chance (also 2.5%, 0.3)
///     delay sbi 200ms        each message to sbi is held this long (also 2s, 1.5s)
///     fail-fsync             the decision log's next fsync fails: the coordinator halts
///     crash coordinator      the coordinator's process dies (with the banks it hosts)
///     restart coordinator    a new incarnation recovers from the durable log and the banks
///     heal all               every link whole and every crashed participant restarted (also `clear`)
///
/// `drop P 0%` and `delay P 0ms` end that fault alone. `coordinator` and `all` are words of
/// the commands, not participant names, in the text form.
public enum LiveFault: Hashable, Sendable, CustomStringConvertible {
    case crashParticipant(ParticipantID)
    case restartParticipant(ParticipantID)
    case partition(ParticipantID)
    case heal(ParticipantID)
    /// `perMille`: 0 to 1,000 messages in 1,000 lost; 0 ends the loss.
    case dropMessages(ParticipantID, perMille: UInt32)
    /// `delayMs`: up to `maxDelayMs`; 0 ends the delay (what it holds is delivered at once).
    case delayMessages(ParticipantID, delayMs: UInt64)
    case failNextLogSync
    case crashCoordinator
    case restartCoordinator
    case healAll

    /// A bound on how long a message may be held: a delay is a slow link, not a queue that
    /// grows for minutes.
    public static let maxDelayMs: UInt64 = 60_000

    /// The participant the fault is about, if one.
    public var participant: ParticipantID? {
        switch self {
        case .crashParticipant(let p), .restartParticipant(let p), .partition(let p), .heal(let p),
             .dropMessages(let p, _), .delayMessages(let p, _):
            return p
        case .failNextLogSync, .crashCoordinator, .restartCoordinator, .healAll:
            return nil
        }
    }

    public var description: String {
        switch self {
        case .crashParticipant(let p): return "crash \(p)"
        case .restartParticipant(let p): return "restart \(p)"
        case .partition(let p): return "partition \(p)"
        case .heal(let p): return "heal \(p)"
        case .dropMessages(let p, let perMille):
            return "drop \(p) \(perMille / 10)" + (perMille % 10 == 0 ? "" : ".\(perMille % 10)") + "%"
        case .delayMessages(let p, let delayMs): return "delay \(p) \(delayMs)ms"
        case .failNextLogSync: return "fail-fsync"
        case .crashCoordinator: return "crash coordinator"
        case .restartCoordinator: return "restart coordinator"
        case .healAll: return "heal all"
        }
    }

    /// Why a command could not be read: one line, naming what was wrong and what is wanted.
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// The words the text form starts with, for help lines and error messages.
    public static let commands = ["crash", "restart", "partition", "heal", "drop", "delay", "fail-fsync", "clear"]

    /// Reads the text form (see the type's comment). `participants`: the node's participants;
    /// any other name is refused here, before anything is applied.
    public static func parse(_ text: String, participants: [ParticipantID]) throws(ParseError) -> LiveFault {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map { String($0) }
        guard let command = words.first?.lowercased() else {
            throw ParseError("empty fault command: want one of \(commands.joined(separator: ", "))")
        }
        let arguments = Array(words.dropFirst())
        func expect(_ count: Int, _ usage: String) throws(ParseError) {
            guard arguments.count == count else {
                throw ParseError("'\(command)' takes \(count == 1 ? "1 argument" : "\(count) arguments"): \(usage)")
            }
        }
        func participant() throws(ParseError) -> ParticipantID {
            let name = arguments[0]
            guard let id = participants.first(where: { $0.name == name.lowercased() }) else {
                let known = participants.map(\.name).sorted().joined(separator: ", ")
                throw ParseError("unknown participant '\(name)': known are \(known)")
            }
            return id
        }
        switch command {
        case "crash", "restart":
            try expect(1, "\(command) PARTICIPANT | \(command) coordinator")
            if arguments[0].lowercased() == "coordinator" { return command == "crash" ? .crashCoordinator : .restartCoordinator }
            let id = try participant()
            return command == "crash" ? .crashParticipant(id) : .restartParticipant(id)
        case "partition":
            try expect(1, "partition PARTICIPANT")
            return .partition(try participant())
        case "heal":
            try expect(1, "heal PARTICIPANT | heal all")
            if arguments[0].lowercased() == "all" { return .healAll }
            return .heal(try participant())
        case "clear":
            try expect(0, "clear")
            return .healAll
        case "drop":
            try expect(2, "drop PARTICIPANT RATE, like drop icici 30%")
            let id = try participant()
            return .dropMessages(id, perMille: try perMille(arguments[1]))
        case "delay":
            try expect(2, "delay PARTICIPANT DURATION, like delay sbi 200ms")
            let id = try participant()
            return .delayMessages(id, delayMs: try milliseconds(arguments[1]))
        case "fail-fsync":
            try expect(0, "fail-fsync")
            return .failNextLogSync
        default:
            throw ParseError("unknown fault '\(words[0])': want one of \(commands.joined(separator: ", "))")
        }
    }

    /// `30%`, `2.5%` (a tenth of a percent at most) or a fraction `0.3`, `0.025`: per mille.
    static func perMille(_ text: String) throws(ParseError) -> UInt32 {
        let bad = ParseError("bad rate '\(text)': want a percentage from 0% to 100% (like 30% or 2.5%) or a fraction from 0 to 1 (like 0.3)")
        let percent = text.hasSuffix("%")
        let number = percent ? String(text.dropLast()) : text
        // Per mille is the number scaled by 10 (a percentage) or 1,000 (a fraction).
        guard let value = decimal(number, scaleDigits: percent ? 1 : 3), value <= 1_000 else { throw bad }
        return UInt32(value)
    }

    /// `200ms`, `2s`, `1.5s`: milliseconds, at most `maxDelayMs`.
    static func milliseconds(_ text: String) throws(ParseError) -> UInt64 {
        let bad = ParseError("bad delay '\(text)': want a duration from 0ms to \(maxDelayMs / 1_000)s, like 200ms or 1.5s")
        let value: UInt64?
        if text.hasSuffix("ms") {
            value = decimal(String(text.dropLast(2)), scaleDigits: 0)
        } else if text.hasSuffix("s") {
            value = decimal(String(text.dropLast()), scaleDigits: 3)
        } else {
            value = nil
        }
        guard let value, value <= maxDelayMs else { throw bad }
        return value
    }

    /// A non-negative decimal scaled by 10^`scaleDigits` (`1.5` at 3 digits is 1,500), if it
    /// has no more fraction digits than that; nil otherwise. At most 7 whole digits, so the
    /// result always fits.
    static func decimal(_ text: String, scaleDigits: Int) -> UInt64? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0], fraction = parts.count == 2 ? parts[1] : ""
        guard !whole.isEmpty, whole.count <= 7, whole.allSatisfy(\.isASCIIDigit),
              parts.count == 1 || !fraction.isEmpty, fraction.count <= scaleDigits, fraction.allSatisfy(\.isASCIIDigit) else {
            return nil
        }
        return UInt64(String(whole) + fraction + String(repeating: "0", count: scaleDigits - fraction.count))
    }
}

/// Why a fault was not applied: one line, and nothing changed.
public struct LiveFaultError: Error, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SandhiIO

/// Why the decision log refused to open, append or sync.
///
/// `description` is always exactly one line, because it is what an operator reads on stderr and
/// what the console shows in a status bar; a path or reason carrying a newline is escaped.
public enum DecisionLogError: Error, CustomStringConvertible, Equatable {
    /// Bytes on disk that are not a torn tail of the last segment: refuse to guess what they meant.
    case corrupt(file: String, offset: Int, reason: String)
    /// A row of a decision log kept in a database table (`where` names database, table and
    /// instance) that is not one whole, checksummed record: refuse to guess what it meant.
    case corruptRow(where: String, sequence: Int64, reason: String)
    /// A system call failed. The payload reads `<what> (<strerror>)`.
    case io(String)
    /// The store or writer was closed (or shut down) before the call.
    case closed

    public var description: String {
        let text: String
        switch self {
        case .corrupt(let file, let offset, let reason):
            text = "decision log corrupt: \(file) at byte \(offset): \(reason)"
        case .corruptRow(let place, let sequence, let reason):
            text = "decision log corrupt: \(place), row \(sequence): \(reason)"
        case .io(let what):
            text = "decision log I/O error: \(what)"
        case .closed:
            text = "decision log is closed"
        }
        return Self.oneLine(text)
    }

    /// `.io("<what> (<strerror(code)>)")`.
    static func io(_ what: String, errno code: Int32) -> DecisionLogError {
        .io("\(what) (\(String(cString: strerror(code))))")
    }

    private static func oneLine(_ text: String) -> String {
        guard text.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for character in text {
            switch character {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\r\n": out += "\\r\\n"
            default: out.append(character)
            }
        }
        return out
    }
}

extension DecisionLogError {
    /// A file-system failure, as the log reports it: `.io("<what> <path> (<strerror>)")`.
    init(_ failure: FileSystemError) { self = .io(failure.what) }
}

/// Runs a file-system call inside code that throws `DecisionLogError`.
@inline(__always)
func logIO<Result>(_ body: () throws(FileSystemError) -> Result) throws(DecisionLogError) -> Result {
    do { return try body() } catch { throw DecisionLogError(error) }
}

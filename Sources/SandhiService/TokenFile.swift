import Foundation
import Glibc

/// The bearer tokens a TCP listener accepts: `DIR/tokens`, mode 0600, one token a line:
///
///     # role  name   token
///     viewer  grafana  6f1c...
///     operator alice   93ab...
///
/// Kept readable by its owner only: a file others can read is refused, as ssh refuses a key
/// file others can read. `sandhi token add` writes it.
public struct TokenFile: Sendable {
    public struct Entry: Sendable, Equatable {
        public var role: Role
        public var name: String
        public var token: String

        public init(role: Role, name: String, token: String) {
            self.role = role
            self.name = name
            self.token = token
        }
    }

    public enum LoadError: Error, CustomStringConvertible, Equatable {
        case missing(String)
        case readableByOthers(String, mode: UInt32)
        case badLine(String, line: Int, why: String)
        case unreadable(String, why: String)

        public var description: String {
            switch self {
            case .missing(let path): return "\(path) does not exist: add a token with `sandhi token add NAME --role ROLE`"
            case .readableByOthers(let path, let mode):
                return "\(path) has mode \(String(mode, radix: 8)): others may read the tokens; chmod 600 it"
            case .badLine(let path, let line, let why): return "\(path):\(line): \(why)"
            case .unreadable(let path, let why): return "cannot read \(path): \(why)"
            }
        }
    }

    /// Tokens are long random strings: anything shorter than this is refused.
    public static let minTokenCharacters = 32

    public let path: String
    public private(set) var entries: [Entry]

    public init(path: String, entries: [Entry]) {
        self.path = path
        self.entries = entries
    }

    /// Reads `path`, refusing a file that others may read or that has a line it cannot parse.
    public static func load(_ path: String) throws(LoadError) -> TokenFile {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { throw .missing(path) }
            throw .unreadable(path, why: String(cString: strerror(errno)))
        }
        let mode = UInt32(info.st_mode) & 0o777
        guard mode & 0o077 == 0 else { throw .readableByOthers(path, mode: mode) }
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable(path, why: "not readable") }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }

    static func parse(_ text: String, path: String) throws(LoadError) -> TokenFile {
        var entries: [Entry] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard fields.count == 3 else { throw .badLine(path, line: index + 1, why: "expected `ROLE NAME TOKEN`") }
            guard let role = Role(rawValue: fields[0]) else {
                throw .badLine(path, line: index + 1, why: "'\(fields[0])' is not a role (\(Role.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            guard fields[2].count >= minTokenCharacters else {
                throw .badLine(path, line: index + 1, why: "the token is shorter than \(minTokenCharacters) characters")
            }
            guard !entries.contains(where: { $0.token == fields[2] }) else {
                throw .badLine(path, line: index + 1, why: "the same token is given twice")
            }
            entries.append(Entry(role: role, name: fields[1], token: fields[2]))
        }
        return TokenFile(path: path, entries: entries)
    }

    /// The caller a presented token names, or nil. Compares every token in full (no early exit
    /// on the first differing byte), so timing says nothing about how close a guess came.
    public func caller(presenting token: String) -> Caller? {
        let presented = Array(token.utf8)
        var found: Entry?
        for entry in entries where Self.equalInConstantTime(Array(entry.token.utf8), presented) { found = entry }
        return found.map { Caller(name: $0.name, role: $0.role, via: "tcp") }
    }

    static func equalInConstantTime(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    /// A new token: 32 random bytes, hex.
    public static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Appends an entry, creating the file with mode 0600 if absent (and refusing one others may
    /// read), and syncs it.
    public static func add(_ entry: Entry, to path: String) throws -> Void {
        if FileManager.default.fileExists(atPath: path) {
            var existing = try load(path)
            guard !existing.entries.contains(where: { $0.name == entry.name }) else {
                throw LoadError.badLine(path, line: 0, why: "a token named '\(entry.name)' exists already")
            }
            existing.entries.append(entry)
        }
        let created = !FileManager.default.fileExists(atPath: path)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LoadError.unreadable(path, why: String(cString: strerror(errno))) }
        defer { close(fd) }
        let line = Array("\(entry.role.rawValue) \(entry.name) \(entry.token)\n".utf8)
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        // The token is printed once, after this: it must be on disk (and, in a new file, its
        // name in the directory) before anyone is told it. SyncSyscallTests watches both.
        guard written == line.count, fsync(fd) == 0 else { throw LoadError.unreadable(path, why: String(cString: strerror(errno))) }
        if created {
            let directory = open((path as NSString).deletingLastPathComponent, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard directory >= 0 else { throw LoadError.unreadable(path, why: String(cString: strerror(errno))) }
            defer { close(directory) }
            guard fsync(directory) == 0 else { throw LoadError.unreadable(path, why: "fsync of its directory: \(String(cString: strerror(errno)))") }
        }
    }
}

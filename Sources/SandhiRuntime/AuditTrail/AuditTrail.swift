import Crypto
import Foundation
import Logging
import SandhiIO

/// One entry of the audit trail: an operator command from any client, before it runs (its
/// intent: who, when, what, why, the state before) and after (its outcome: the result and the
/// state after). An intent with no outcome is a command the process died during.
public struct AuditRecord: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable { case intent, outcome }

    /// 1, 2, 3... without gaps.
    public var seq: UInt64
    /// The SHA-256 (hex) of the line before, signature and all; empty for the first.
    public var prev: String
    public var atWallMs: Int64
    public var kind: Kind
    /// Who: a token's name, or the user on the unix socket or at the console.
    public var actor: String
    /// How they reached the node: `console`, `unix`, `tcp`, `mcp`.
    public var via: String
    public var command: String
    public var reason: String
    /// Intent: the state before; outcome: the state after.
    public var state: String
    /// Outcome: what happened, or why it was refused.
    public var result: String?
    public var ok: Bool?
    /// Outcome: the intent's `seq`.
    public var intent: UInt64?

    public init(kind: Kind, actor: String, via: String, command: String, reason: String, state: String,
                result: String? = nil, ok: Bool? = nil, intent: UInt64? = nil) {
        seq = 0
        prev = ""
        atWallMs = 0
        self.kind = kind
        self.actor = actor
        self.via = via
        self.command = command
        self.reason = reason
        self.state = state
        self.result = result
        self.ok = ok
        self.intent = intent
    }
}

/// `DIR/audit.log`: every operator command, one line each for its intent and its outcome.
/// Each line is the record's JSON, a tab and the base64 ML-DSA-65 signature of that JSON under
/// the data directory's key (`AuditKey`). Each record carries the SHA-256 of the line before,
/// so a line changed, removed, inserted or moved breaks the chain at that place, and a line
/// signed with another key fails its signature. `verify` checks it all offline and names the
/// first bad line. (Removing lines from the end leaves a shorter, valid chain: `verify`
/// prints the last record's hash, for comparison with one kept elsewhere.)
///
/// Every append is written and fdatasynced before it returns: the intent is durable before
/// the command runs, the outcome before the client hears it.
public final class AuditTrail: @unchecked Sendable {
    public let path: String
    private let files: any FileSystem
    private let key: MLDSA65.PrivateKey
    private let lock = Lock(())
    private var descriptor: Int32
    private var endOffset: Int
    private var lastSeq: UInt64
    private var lastHash: String
    /// A failed write or sync leaves the file's state unknown: every later append fails too.
    private var failure: Error?

    /// Opens (creating if absent) the trail. What a crash during the last append left (a torn
    /// line, a line of zeros, the pieces of one: never acknowledged, since every append is
    /// synced before the next begins) is cut and said so in `notes`; a bad line with a good
    /// record after it is damage to synced data, refused with the line named.
    public static func open(path: String, key: MLDSA65.PrivateKey, fileSystem files: any FileSystem = PosixFileSystem(),
                            logger: Logger) throws -> (AuditTrail, notes: [String]) {
        var notes: [String] = []
        let exists = files.fileExists(path)
        let bytes = exists ? try files.readAll(path) : []
        let scan = scan(bytes, publicKey: key.publicKey)
        if let damage = scan.damage { throw AuditTrailError.damaged(path: path, line: damage.line, why: damage.why) }
        if scan.validEnd < bytes.count {
            try files.truncate(path, toBytes: scan.validEnd)
            notes.append("\(path): cut \(bytes.count - scan.validEnd) byte(s) of an unfinished last record at byte \(scan.validEnd)")
            logger.warning("audit trail: torn tail truncated", metadata: ["path": "\(path)", "offset": "\(scan.validEnd)"])
        }
        let descriptor = exists ? try files.openForWriting(path) : try files.createForWriting(path)
        if !exists { try files.syncDirectory(FileSystemPath.parentDirectory(of: path)) }
        let trail = AuditTrail(path: path, files: files, key: key, descriptor: descriptor, endOffset: scan.validEnd,
                               lastSeq: scan.lastSeq, lastHash: scan.lastHash)
        return (trail, notes)
    }

    struct Scan {
        var validEnd = 0
        var lastSeq: UInt64 = 0
        var lastHash = ""
        var damage: (line: Int, why: String)?
    }

    /// The longest prefix of whole records that number and chain correctly, the last one's
    /// signature checked too (the others are left to `verify`: a start reads the chain, not
    /// every signature). After it there may be only what one unfinished append leaves.
    static func scan(_ bytes: [UInt8], publicKey: MLDSA65.PublicKey) -> Scan {
        var scan = Scan()
        var lastLine: (range: Range<Int>, seq: UInt64, hashBefore: String)?
        var start = 0
        var number = 0
        while start < bytes.count {
            guard let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else { break }
            number += 1
            let line = Array(bytes[start..<newline])
            guard let record = AuditLine.record(line), record.seq == scan.lastSeq + 1, record.prev == scan.lastHash else { break }
            lastLine = (start..<newline, record.seq, scan.lastHash)
            scan.lastSeq = record.seq
            scan.lastHash = AuditLine.hash(line)
            scan.validEnd = newline + 1
            start = newline + 1
        }
        // The last record chained, but its own signature is what a torn write would spoil.
        if let last = lastLine, !AuditLine.isSigned(Array(bytes[last.range]), by: publicKey) {
            scan.validEnd = last.range.lowerBound
            scan.lastSeq = last.seq - 1
            scan.lastHash = last.hashBefore
        }
        // Anything after the valid prefix must not hold a signed record that belongs after it.
        var rest = scan.validEnd
        var restNumber = Int(scan.lastSeq)
        while rest < bytes.count, let newline = bytes[rest...].firstIndex(of: UInt8(ascii: "\n")) {
            restNumber += 1
            let line = Array(bytes[rest..<newline])
            if let record = AuditLine.record(line), record.seq > scan.lastSeq, AuditLine.isSigned(line, by: publicKey) {
                scan.damage = (Int(scan.lastSeq) + 1, "not a good record, and record \(record.seq) follows at line \(restNumber)")
                break
            }
            rest = newline + 1
        }
        return scan
    }

    private init(path: String, files: any FileSystem, key: MLDSA65.PrivateKey, descriptor: Int32, endOffset: Int,
                 lastSeq: UInt64, lastHash: String) {
        self.path = path
        self.files = files
        self.key = key
        self.descriptor = descriptor
        self.endOffset = endOffset
        self.lastSeq = lastSeq
        self.lastHash = lastHash
    }

    deinit { close() }

    /// Numbers, chains, stamps, signs and durably appends `record`; returns it as written.
    @discardableResult
    public func append(_ record: AuditRecord, atWallMs: Int64 = Int64(Date().timeIntervalSince1970 * 1_000)) throws -> AuditRecord {
        try lock.withLock { _ in
            if let failure { throw failure }
            var record = record
            record.seq = lastSeq + 1
            record.prev = lastHash
            record.atWallMs = atWallMs
            let line = try AuditLine.signed(record, with: key)
            do {
                try files.writeAll(descriptor, line + [UInt8(ascii: "\n")], atOffset: endOffset, path: path)
                try files.dataSync(descriptor, path: path)
            } catch {
                failure = error
                throw error
            }
            endOffset += line.count + 1
            lastSeq = record.seq
            lastHash = AuditLine.hash(line)
            return record
        }
    }

    public func close() {
        lock.withLock { _ in
            if descriptor >= 0 {
                files.close(descriptor)
                descriptor = -1
            }
        }
    }

    /// What `verify` found: how many records are good, the last one's hash, and the first
    /// problem (1-based line number, and why), if any.
    public struct Verification: Sendable, Equatable {
        public var records: Int
        public var lastHash: String
        public var problem: (line: Int, why: String)?

        public static func == (lhs: Verification, rhs: Verification) -> Bool {
            lhs.records == rhs.records && lhs.lastHash == rhs.lastHash && lhs.problem?.line == rhs.problem?.line
                && lhs.problem?.why == rhs.problem?.why
        }
    }

    /// Checks every line's signature under `publicKey`, the numbering and the chain.
    public static func verify(_ bytes: [UInt8], publicKey: MLDSA65.PublicKey) -> Verification {
        var verification = Verification(records: 0, lastHash: "", problem: nil)
        guard !bytes.isEmpty else { return verification }
        guard bytes.last == UInt8(ascii: "\n") else {
            // Whole lines first: a problem among them comes before the torn end.
            let whole = bytes.lastIndex(of: UInt8(ascii: "\n")).map { Array(bytes[...$0]) } ?? []
            let lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).count
            return check(bytes: whole, publicKey: publicKey, into: verification)
                .failing(lines, "a torn final line (a crash while it was written: never acknowledged)")
        }
        return check(bytes: bytes, publicKey: publicKey, into: verification)
    }

    private static func check(bytes: [UInt8], publicKey: MLDSA65.PublicKey, into start: Verification) -> Verification {
        var verification = start
        var expectedPrev = ""
        var expectedSeq: UInt64 = 1
        for (index, slice) in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).dropLast().enumerated() {
            let number = index + 1
            let line = Array(slice)
            guard let tab = line.lastIndex(of: UInt8(ascii: "\t")),
                  let signature = Data(base64Encoded: Data(line[(tab + 1)...])) else {
                return verification.failing(number, "not a signed record")
            }
            let json = Array(line[..<tab])
            guard publicKey.isValidSignature(signature, for: json) else {
                return verification.failing(number, "the signature does not verify under this directory's key (altered, or signed by another key)")
            }
            guard let record = try? JSONDecoder().decode(AuditRecord.self, from: Data(json)) else {
                return verification.failing(number, "signed, but not an audit record")
            }
            guard record.seq == expectedSeq else {
                return verification.failing(number, "record \(record.seq) where record \(expectedSeq) belongs (a record removed, inserted or moved)")
            }
            guard record.prev == expectedPrev else {
                return verification.failing(number, "does not chain to the line before (a record removed, inserted or moved)")
            }
            verification.records += 1
            expectedSeq += 1
            expectedPrev = AuditLine.hash(line)
            verification.lastHash = expectedPrev
        }
        return verification
    }
}

extension AuditTrail.Verification {
    fileprivate func failing(_ line: Int, _ why: String) -> Self {
        var copy = self
        if copy.problem == nil { copy.problem = (line, why) }
        return copy
    }
}

public enum AuditTrailError: Error, CustomStringConvertible {
    case damaged(path: String, line: Int, why: String)

    public var description: String {
        switch self {
        case .damaged(let path, let line, let why): return "\(path): line \(line): \(why)"
        }
    }
}

/// A line of the trail: JSON (sorted keys), a tab, the base64 signature of the JSON.
enum AuditLine {
    static func signed(_ record: AuditRecord, with key: MLDSA65.PrivateKey) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = Array(try encoder.encode(record))
        let signature = try key.signature(for: json)
        return json + [UInt8(ascii: "\t")] + Array(signature.base64EncodedString().utf8)
    }

    static func record(_ line: [UInt8]) -> AuditRecord? {
        guard let tab = line.lastIndex(of: UInt8(ascii: "\t")) else { return nil }
        return try? JSONDecoder().decode(AuditRecord.self, from: Data(line[..<tab]))
    }

    static func isSigned(_ line: [UInt8], by publicKey: MLDSA65.PublicKey) -> Bool {
        guard let tab = line.lastIndex(of: UInt8(ascii: "\t")), let signature = Data(base64Encoded: Data(line[(tab + 1)...])) else { return false }
        return publicKey.isValidSignature(signature, for: line[..<tab])
    }

    static func hash(_ line: [UInt8]) -> String {
        SHA256.hash(data: line).map { String(format: "%02x", $0) }.joined()
    }
}

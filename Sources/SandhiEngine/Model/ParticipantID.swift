/// A participant (a bank, the tax ledger, the regulator's report ledger), named in `sandhi.toml`.
///
/// Names are lower-case ASCII letters, digits, `-` and `_`, at most 32 bytes: they become file
/// names (`banks/NAME.sqlite`) and parts of PostgreSQL global transaction ids.
public struct ParticipantID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let name: String

    public static let maxLengthBytes = 32

    public init?(_ name: String) {
        guard Self.isValid(name) else { return nil }
        self.name = name
    }

    public init(validated name: String) {
        precondition(Self.isValid(name), "invalid participant name \(name)")
        self.name = name
    }

    public static func isValid(_ name: String) -> Bool {
        isIdentifier(name, maxLengthBytes: maxLengthBytes, upperCase: false, dot: false)
    }

    public var description: String { name }
    public static func < (lhs: ParticipantID, rhs: ParticipantID) -> Bool { lhs.name < rhs.name }
}

/// An account inside one participant. ASCII letters, digits, `-`, `_` and `.`, at most 64 bytes.
public struct AccountID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let name: String

    public static let maxLengthBytes = 64

    public init?(_ name: String) {
        guard Self.isValid(name) else { return nil }
        self.name = name
    }

    public init(validated name: String) {
        precondition(Self.isValid(name), "invalid account name \(name)")
        self.name = name
    }

    public static func isValid(_ name: String) -> Bool {
        isIdentifier(name, maxLengthBytes: maxLengthBytes, upperCase: true, dot: true)
    }

    public var description: String { name }
    public static func < (lhs: AccountID, rhs: AccountID) -> Bool { lhs.name < rhs.name }
}

/// A resource that can be locked: one account of one participant.
public struct ResourceID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let participant: ParticipantID
    public let account: AccountID
    /// Both names hashed once, here: the lock table looks a resource up several times per
    /// transaction, under the coordinator's lock, and would otherwise hash two strings each time.
    private let hashCode: Int

    public init(participant: ParticipantID, account: AccountID) {
        self.participant = participant
        self.account = account
        var hasher = Hasher()
        hasher.combine(participant)
        hasher.combine(account)
        self.hashCode = hasher.finalize()
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(hashCode) }
    /// The hash Swift's tables use: the names' digest mixed with the table's seed, in one
    /// call (`wordHash`, as `TransactionID` does).
    public func _rawHashValue(seed: Int) -> Int { wordHash(UInt64(UInt(bitPattern: hashCode)), seed: seed) }

    public static func == (lhs: ResourceID, rhs: ResourceID) -> Bool {
        lhs.hashCode == rhs.hashCode && lhs.participant == rhs.participant && lhs.account == rhs.account
    }

    public var description: String { "\(participant)/\(account)" }
    public static func < (lhs: ResourceID, rhs: ResourceID) -> Bool {
        (lhs.participant, lhs.account) < (rhs.participant, rhs.account)
    }
}

/// ASCII letters (lower-case, and upper-case if allowed), digits, `-`, `_` (and `.` if allowed),
/// 1 to `maxLengthBytes` bytes: names that are safe in file names, SQL text and PostgreSQL gids.
func isIdentifier(_ name: String, maxLengthBytes: Int, upperCase: Bool, dot: Bool) -> Bool {
    guard !name.isEmpty, name.utf8.count <= maxLengthBytes else { return false }
    return name.utf8.allSatisfy { byte in
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (upperCase && byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || (dot && byte == UInt8(ascii: "."))
    }
}

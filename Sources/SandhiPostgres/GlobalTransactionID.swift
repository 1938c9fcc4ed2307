import SandhiEngine

/// The name of one prepared branch in PostgreSQL (`PREPARE TRANSACTION '<gid>'`):
///
///     sandhi:<instance>:<epoch>.<sequence>:<participant>
///
/// e.g. `sandhi:mumbai-1:3.4711:hdfc`. `sandhi` marks the branch as ours (a prepared transaction
/// with any other name belongs to someone else and is never touched); `instance` names the
/// coordinator that owns the decision (two coordinators may share a database, and each resolves
/// only its own branches); `epoch.sequence` is the transaction (`TransactionID` without its
/// `T-`); `participant` is the branch, since PostgreSQL's gids are unique across the whole
/// cluster and two participants may live in databases of one server. Every part is a plain
/// identifier without `:` or quotes, so the text is safe inside SQL quotes and parses back
/// exactly; at most about 100 bytes, well under PostgreSQL's 200.
public struct GlobalTransactionID: Hashable, Sendable, CustomStringConvertible {
    public static let marker = "sandhi"

    public let instance: CoordinatorInstance
    public let transaction: TransactionID
    public let participant: ParticipantID

    public init(instance: CoordinatorInstance, transaction: TransactionID, participant: ParticipantID) {
        self.instance = instance
        self.transaction = transaction
        self.participant = participant
    }

    /// Parses a gid; nil for one that is not Sandhi's (or not well formed).
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == Self.marker,
              let instance = CoordinatorInstance(String(parts[1])),
              parts[2].contains("."), let transaction = TransactionID(String(parts[2])),
              let participant = ParticipantID(String(parts[3])) else { return nil }
        // Only the canonical form: a gid that merely parses to ours is not ours.
        guard text == Self.format(instance, transaction, participant) else { return nil }
        self.init(instance: instance, transaction: transaction, participant: participant)
    }

    public var description: String { Self.format(instance, transaction, participant) }

    /// The prefix every gid of `instance` starts with (for a `LIKE` that lets PostgreSQL filter).
    public static func prefix(of instance: CoordinatorInstance) -> String { "\(marker):\(instance.name):" }

    private static func format(_ instance: CoordinatorInstance, _ transaction: TransactionID, _ participant: ParticipantID) -> String {
        "\(marker):\(instance.name):\(transaction.epoch).\(transaction.sequence):\(participant.name)"
    }
}

/// The name of one coordinator instance: what its PostgreSQL gids carry, so that recovery
/// resolves its own prepared branches and leaves every other coordinator's alone. The same
/// rules as a participant's name (lower-case ASCII letters, digits, `-`, `_`, at most 32 bytes).
public struct CoordinatorInstance: Hashable, Sendable, CustomStringConvertible {
    public let name: String

    public init?(_ name: String) {
        guard ParticipantID.isValid(name) else { return nil }
        self.name = name
    }

    public init(validated name: String) {
        precondition(ParticipantID.isValid(name), "invalid coordinator instance name \(name)")
        self.name = name
    }

    public var description: String { name }
}

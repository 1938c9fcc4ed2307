import SandhiEngine

/// The name of one prepared transaction of Sandhi's in PostgreSQL (`PREPARE TRANSACTION '<gid>'`),
/// which holds the branches of one or more transactions at one participant:
///
///     sandhi:<instance>:<epoch>.<sequence>[+<sequence>...]:<participant>
///
/// e.g. `sandhi:mumbai-1:3.4711:hdfc` for one branch, `sandhi:mumbai-1:3.4711+4712+4715:hdfc`
/// for three branches of one batch prepared together (`PostgresBank` says why). `sandhi` marks it
/// as ours (a prepared transaction with any other name belongs to someone else and is never
/// touched); `instance` names the coordinator that owns the decisions (two coordinators may
/// share a database, and each resolves only its own); `epoch.sequence` are the transactions
/// (`TransactionID` without its `T-`), all of one epoch, in ascending order; `participant` is the
/// branch, since PostgreSQL's gids are unique across the whole cluster and two participants may
/// live in databases of one server. Every part is a plain identifier without `:` or quotes, so
/// the text is safe inside SQL quotes and parses back exactly. PostgreSQL allows 199 bytes:
/// `fits` says whether another member still does.
public struct GlobalTransactionID: Hashable, Sendable, CustomStringConvertible {
    public static let marker = "sandhi"
    /// PostgreSQL's limit on a gid (`GIDSIZE` is 200 with the terminating zero).
    public static let maxBytes = 199

    public let instance: CoordinatorInstance
    /// At least one; one epoch; strictly ascending.
    public let transactions: [TransactionID]
    public let participant: ParticipantID

    public init(instance: CoordinatorInstance, transactions: [TransactionID], participant: ParticipantID) {
        precondition(!transactions.isEmpty, "a gid names at least one transaction")
        precondition(zip(transactions, transactions.dropFirst()).allSatisfy { $0 < $1 && $0.epoch == $1.epoch },
                     "a gid's transactions are of one epoch and ascending")
        self.instance = instance
        self.transactions = transactions
        self.participant = participant
        precondition(description.utf8.count <= Self.maxBytes, "gid \(description) is longer than PostgreSQL allows")
    }

    public init(instance: CoordinatorInstance, transaction: TransactionID, participant: ParticipantID) {
        self.init(instance: instance, transactions: [transaction], participant: participant)
    }

    /// Parses a gid; nil for one that is not Sandhi's (or not well formed).
    public init?(parsing text: String) {
        guard text.utf8.count <= Self.maxBytes else { return nil }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == Self.marker,
              let instance = CoordinatorInstance(String(parts[1])),
              let participant = ParticipantID(String(parts[3])) else { return nil }
        let list = parts[2].split(separator: "+", omittingEmptySubsequences: false)
        guard let first = list.first, first.contains("."), let head = TransactionID(String(first)) else { return nil }
        var transactions = [head]
        for sequence in list.dropFirst() {
            guard let member = TransactionID("\(head.epoch).\(sequence)"), member > transactions[transactions.count - 1] else { return nil }
            transactions.append(member)
        }
        // Only the canonical form: a gid that merely parses to ours is not ours.
        guard text == Self.format(instance, transactions, participant) else { return nil }
        self.init(instance: instance, transactions: transactions, participant: participant)
    }

    public var description: String { Self.format(instance, transactions, participant) }

    /// Whether a gid of these transactions plus `next` (of the same epoch, above them all) stays
    /// within PostgreSQL's limit.
    public static func fits(_ instance: CoordinatorInstance, _ transactions: [TransactionID], adding next: TransactionID,
                            _ participant: ParticipantID) -> Bool {
        format(instance, transactions + [next], participant).utf8.count <= maxBytes
    }

    /// The prefix every gid of `instance` starts with (for a `LIKE` that lets PostgreSQL filter).
    public static func prefix(of instance: CoordinatorInstance) -> String { "\(marker):\(instance.name):" }

    private static func format(_ instance: CoordinatorInstance, _ transactions: [TransactionID], _ participant: ParticipantID) -> String {
        let first = transactions[0]
        var members = "\(first.epoch).\(first.sequence)"
        for member in transactions.dropFirst() { members += "+\(member.sequence)" }
        return "\(marker):\(instance.name):\(members):\(participant.name)"
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

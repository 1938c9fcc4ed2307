/// The classes of anomaly the checker finds: a garbage read, which no consistency model allows,
/// then Adya's phenomena from strongest to weakest isolation failure, then two bank-specific
/// checks. Reports list them in this order.
public enum AnomalyKind: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// A committed transaction read a value that its (version, writer) did not write: the writer
    /// installed that version with another value (Elle's garbage read). Corruption, or a read
    /// reported against the wrong version: either way the value came from nowhere.
    case garbageRead = "garbage-read"
    /// A cycle of write-write dependencies only: writes of two transactions interleaved.
    case g0 = "G0"
    /// A committed transaction read a version written by an aborted transaction, by a
    /// transaction the history does not contain, or a version its named writer never wrote.
    case g1a = "G1a"
    /// A committed transaction read a version its writer later overwrote in the same transaction.
    case g1b = "G1b"
    /// A cycle of write-write and write-read dependencies with at least one write-read.
    case g1c = "G1c"
    /// A cycle that needs at least one read-write anti-dependency (write skew, lost update, read skew).
    case g2Item = "G2-item"
    /// Two committed writes installed the same version of one key: a lost update (G0-class).
    case duplicateVersion = "duplicate-version"
    /// A committed audit's reads do not sum to the history's total: money appeared or vanished.
    case bankInvariant = "bank-invariant"

    public var description: String { rawValue }
}

/// One anomaly, with the transactions that show it.
public struct Anomaly: Hashable, Sendable, CustomStringConvertible {
    public var kind: AnomalyKind
    /// For a cycle, its transactions in cycle order (the first is not repeated at the end).
    public var transactions: [String]
    /// For a cycle: `T-1.5 -rw(hdfc/acct-000001)-> T-1.7 -wr(sbi/acct-000002)-> T-1.5`.
    public var description: String

    public init(kind: AnomalyKind, transactions: [String], description: String) {
        self.kind = kind
        self.transactions = transactions
        self.description = description
    }
}

/// What `HistoryChecker` would otherwise find by hashing strings, from a caller that knows it
/// already: each op's key as a number, and each read's writer as a position in the history.
///
/// Why: the checker interns keys and transaction ids through String-keyed tables, a hash of
/// every key and writer named. A driver that made the history from integer state (the
/// simulator checks a short history per seed, tens of thousands of times a run) hands the
/// numbers over instead. The check is the same check: the index it builds is the one the
/// strings would give (asserted in debug builds).
public struct InternedReferences: Sendable {
    /// A read of the initial state, or a write.
    public static let initial: Int32 = -1
    /// A read whose writer is not in the history.
    public static let missing: Int32 = -2

    /// Each op's key, over every op of every transaction in order: numbered from 0 in the order
    /// keys first appear (as the checker numbers them).
    public var keys: [Int32] = []
    /// Each op's writer, in the same order: the position in the history of the transaction a
    /// read names (the first with that id), `initial` or `missing`.
    public var writers: [Int32] = []

    public init() {}

    public mutating func reserveCapacity(_ ops: Int) {
        keys.reserveCapacity(ops)
        writers.reserveCapacity(ops)
    }
}

/// A distributed transaction's identity, unique across restarts of one coordinator.
///
/// The high 24 bits are the coordinator's epoch (incremented durably at every start), the low 40
/// bits a sequence within that epoch. A crash therefore can never hand out an id twice, even
/// though aborted transactions leave no trace in the decision log (presumed abort).
public struct TransactionID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64

    public static let sequenceBits: UInt64 = 40
    public static let maxSequence: UInt64 = (1 << sequenceBits) - 1
    public static let maxEpoch: UInt32 = (1 << 24) - 1

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(epoch: UInt32, sequence: UInt64) {
        precondition(epoch <= Self.maxEpoch, "epoch \(epoch) exceeds 24 bits")
        precondition(sequence <= Self.maxSequence, "sequence \(sequence) exceeds 40 bits")
        self.rawValue = (UInt64(epoch) << Self.sequenceBits) | sequence
    }

    public var epoch: UInt32 { UInt32(truncatingIfNeeded: rawValue >> Self.sequenceBits) }
    public var sequence: UInt64 { rawValue & Self.maxSequence }

    /// `T-<epoch>.<sequence>`, e.g. `T-3.4711`.
    public var description: String { "T-\(epoch).\(sequence)" }

    /// Parses the `description` form, or a bare raw number.
    public init?(_ text: String) {
        var body = Substring(text)
        if body.hasPrefix("T-") { body = body.dropFirst(2) }
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        if parts.count == 2, let epoch = UInt32(parts[0]), let sequence = UInt64(parts[1]),
           epoch <= Self.maxEpoch, sequence <= Self.maxSequence {
            self.init(epoch: epoch, sequence: sequence)
        } else if parts.count == 1, let raw = UInt64(parts[0]) {
            self.init(rawValue: raw)
        } else {
            return nil
        }
    }

    public static func < (lhs: TransactionID, rhs: TransactionID) -> Bool { lhs.rawValue < rhs.rawValue }

    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    /// The hash Swift's tables use: the raw value mixed with the table's seed (`wordHash`, not
    /// SipHash; see there why). Every table of the coordinator, the lock manager and the
    /// participants is keyed by transaction, so this is on every path. (`hash(into:)` above
    /// serves values that contain an id, hashed together with their other fields.)
    public func _rawHashValue(seed: Int) -> Int { wordHash(rawValue, seed: seed) }
}

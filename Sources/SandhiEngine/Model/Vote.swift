/// A participant's answer to PREPARE.
public enum Vote: Hashable, Sendable {
    /// Prepared durably: the write-set is persisted and the touched accounts are locked.
    case yes
    /// Nothing to commit here (only reads): the participant is done and skips phase two.
    case readOnly
    /// Cannot commit; carries the participant's reason (insufficient funds, unknown account...).
    case no(reason: String)

    public var isNo: Bool {
        if case .no = self { return true }
        return false
    }
}

/// How a transaction ended, as told to the client that submitted it.
public enum Outcome: Hashable, Sendable {
    case committed
    case aborted(reason: String)

    public var isCommitted: Bool { self == .committed }
}

/// Where a record sits in the decision log: segment number and byte offset within the segment.
public struct LogPosition: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var segment: UInt64
    public var offset: UInt64

    public init(segment: UInt64, offset: UInt64) {
        self.segment = segment
        self.offset = offset
    }

    public var description: String { "segment \(segment) @\(offset)" }
    public static func < (lhs: LogPosition, rhs: LogPosition) -> Bool {
        (lhs.segment, lhs.offset) < (rhs.segment, rhs.offset)
    }
}

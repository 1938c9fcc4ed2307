/// One transaction as a client observed it: what it read (with the version and its writer), what
/// it wrote (with the version it installs), and how it ended.
public struct HistoryTransaction: Hashable, Sendable {
    public enum Outcome: String, Hashable, Sendable, CaseIterable {
        case committed, aborted
        /// The run ended before the client learned the outcome. Possibly committed: its writes may
        /// be read, but reading them is never an aborted read, and its own reads are not audited.
        case unknown
    }

    public enum Op: Hashable, Sendable {
        /// `writer == nil` with `version == 0` is the initial state, written by no transaction.
        /// The writer is named because an aborted write may carry the same version number as a
        /// committed one: the version alone does not say whose value was seen.
        case read(key: String, value: Int64, version: Int64, writer: String?)
        /// `version` is the one this write installs: the key's previous version plus one (an
        /// aborted transaction's write carries the version it would have installed).
        case write(key: String, value: Int64, version: Int64)

        public var key: String {
            switch self {
            case .read(let key, _, _, _), .write(let key, _, _): key
            }
        }

        public var version: Int64 {
            switch self {
            case .read(_, _, let version, _), .write(_, _, let version): version
            }
        }
    }

    public var id: String
    public var outcome: Outcome
    /// A read-only transaction that read every account; its reads must sum to the header's total.
    public var audit: Bool
    /// Wall-clock bounds as the client saw them; kept for tools, not used by the anomaly check.
    public var startUs: UInt64?
    public var endUs: UInt64?
    /// In program order.
    public var ops: [Op]

    public init(id: String, outcome: Outcome, audit: Bool = false, startUs: UInt64? = nil, endUs: UInt64? = nil, ops: [Op]) {
        self.id = id
        self.outcome = outcome
        self.audit = audit
        self.startUs = startUs
        self.endUs = endUs
        self.ops = ops
    }
}

extension HistoryTransaction.Op {
    /// One operation of a transfer as a history records it: the read of the version it saw
    /// and, when it changed the value by `delta` (a debit or credit), the write of the next
    /// version. The one place that says "a write installs the version after the one it saw".
    public static func access(key: String, sawValue: Int64, sawVersion: Int64, writer: String?, delta: Int64?) -> [Self] {
        var ops: [Self] = []
        appendAccess(to: &ops, key: key, sawValue: sawValue, sawVersion: sawVersion, writer: writer, delta: delta)
        return ops
    }

    /// `access`, appended to `ops` (no array of its own to build and drop per operation).
    public static func appendAccess(to ops: inout [Self], key: String, sawValue: Int64, sawVersion: Int64, writer: String?, delta: Int64?) {
        ops.append(.read(key: key, value: sawValue, version: sawVersion, writer: writer))
        if let delta { ops.append(.write(key: key, value: sawValue + delta, version: sawVersion + 1)) }
    }
}

/// What a check found. Clean means no anomaly of any kind.
public struct HistoryReport: Hashable, Sendable {
    /// Every anomaly found, ordered by kind (`AnomalyKind.allCases`) and then as found.
    public var anomalies: [Anomaly]
    /// Anomalies per kind; every kind is present, zero when none was found.
    public var counts: [AnomalyKind: Int]
    /// Every transaction of the history, whatever its outcome.
    public var transactionsChecked: Int
    public var committed: Int
    public var aborted: Int
    public var unknown: Int
    /// Unknown-outcome transactions some included transaction read from: they committed (or the
    /// reader's read is itself an anomaly), so they join the dependency graph.
    public var unknownObserved: Int
    /// Committed audits, each checked against the header's total.
    public var auditsChecked: Int
    /// Dependency-graph edges by kind; every kind is present.
    public var edgeCounts: [EdgeKind: Int]

    public init(anomalies: [Anomaly], transactionsChecked: Int, committed: Int, aborted: Int, unknown: Int,
                unknownObserved: Int, auditsChecked: Int, edgeCounts: [EdgeKind: Int]) {
        let order = Dictionary(uniqueKeysWithValues: AnomalyKind.allCases.enumerated().map { ($1, $0) })
        self.anomalies = anomalies.enumerated()
            .sorted { (order[$0.element.kind]!, $0.offset) < (order[$1.element.kind]!, $1.offset) }
            .map(\.element)
        self.counts = Dictionary(uniqueKeysWithValues: AnomalyKind.allCases.map { kind in (kind, anomalies.count { $0.kind == kind }) })
        self.transactionsChecked = transactionsChecked
        self.committed = committed
        self.aborted = aborted
        self.unknown = unknown
        self.unknownObserved = unknownObserved
        self.auditsChecked = auditsChecked
        var edges = edgeCounts
        for kind in EdgeKind.allCases where edges[kind] == nil { edges[kind] = 0 }
        self.edgeCounts = edges
    }

    public var isClean: Bool { anomalies.isEmpty }

    public func count(of kind: AnomalyKind) -> Int { counts[kind] ?? 0 }

    public func anomalies(of kind: AnomalyKind) -> [Anomaly] { anomalies.filter { $0.kind == kind } }
}

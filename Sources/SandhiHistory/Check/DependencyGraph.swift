/// The kinds of edge in the direct serialization graph (Adya): why one transaction must come
/// before another in any serial order that explains the history.
public enum EdgeKind: String, Hashable, Sendable, CaseIterable {
    /// Write-write: the source installed a version of a key; the target installed the next one.
    case ww
    /// Write-read: the target read a version the source installed.
    case wr
    /// Read-write (anti-dependency): the source read a version; the target installed the next one.
    case rw

    var bit: EdgeMask {
        switch self {
        case .ww: EdgeMask(rawValue: 1)
        case .wr: EdgeMask(rawValue: 2)
        case .rw: EdgeMask(rawValue: 4)
        }
    }
}

/// A set of edge kinds: which subgraph a search walks.
struct EdgeMask: OptionSet {
    let rawValue: UInt8
    static let ww = EdgeKind.ww.bit
    static let wr = EdgeKind.wr.bit
    static let rw = EdgeKind.rw.bit
}

/// The direct serialization graph over transaction indices (positions in the history), as edge
/// arrays plus a compressed adjacency (CSR): a few flat arrays instead of one array per node,
/// because a history may hold 500,000 transactions and millions of edges.
struct DependencyGraph {
    let nodeCount: Int
    private(set) var edgeSource: [Int32] = []
    private(set) var edgeTarget: [Int32] = []
    private(set) var edgeKind: [EdgeKind] = []
    /// Index of the key whose versions gave the edge (into the checker's key table).
    private(set) var edgeKey: [Int32] = []
    /// Out-edges of node n are `outEdges[outStart[n]..<outStart[n + 1]]` (edge indices).
    private(set) var outStart: [Int32] = []
    private(set) var outEdges: [Int32] = []

    init(nodeCount: Int) {
        self.nodeCount = nodeCount
    }

    var edgeCount: Int { edgeSource.count }

    /// Self-edges say nothing about order between transactions and are dropped here.
    mutating func add(_ kind: EdgeKind, from source: Int32, to target: Int32, key: Int32) {
        guard source != target else { return }
        edgeSource.append(source)
        edgeTarget.append(target)
        edgeKind.append(kind)
        edgeKey.append(key)
    }

    /// Builds the adjacency once every edge is in (a counting sort by source).
    mutating func seal() {
        var start = [Int32](repeating: 0, count: nodeCount + 1)
        for source in edgeSource { start[Int(source) + 1] += 1 }
        for node in 0..<nodeCount { start[node + 1] += start[node] }
        var cursor = start
        var edges = [Int32](repeating: 0, count: edgeSource.count)
        for (edge, source) in edgeSource.enumerated() {
            edges[Int(cursor[Int(source)])] = Int32(edge)
            cursor[Int(source)] += 1
        }
        outStart = start
        outEdges = edges
    }

    func count(of kind: EdgeKind) -> Int { edgeKind.count { $0 == kind } }
}

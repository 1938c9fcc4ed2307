import Histogram
import SandhiEngine

/// What one wait-for edge costs when many transactions already wait (`sandhi bench --workload
/// wait-graph`): the engine's graph alone, in memory, no disks.
///
/// The graph holds `waiters` waiting transactions in `trees` random trees (each transaction
/// waits for a random earlier member of its tree; each tree's root holds locks and waits for
/// nobody): long chains and wide fan-ins, as a hot system has. Then, timed one by one:
/// - newcomer: a new transaction starts waiting for a random member (the common case);
/// - cross-tree: a member starts waiting for a member of another tree (no cycle, but the
///   order may disagree, so the incremental check searches and reorders);
/// - closing: a root starts waiting for a member of its own tree (a deadlock: the check must
///   find the cycle).
/// Each timed edge is removed again, untimed, so every sample sees the same graph size.
public enum WaitGraphBench {
    public struct Options: Sendable {
        public var waiters = 10_000
        public var trees = 100
        public var samples = 10_000
        public var seed: UInt64 = 1
        public init() {}
    }

    public struct Percentiles: Sendable, Codable {
        public var p50Ns: UInt64
        public var p99Ns: UInt64
        public var maxNs: UInt64
    }

    public struct Report: Sendable, Codable {
        public var waiters: Int
        public var edges: Int
        public var newcomer: Percentiles
        public var crossTree: Percentiles
        public var closingCycle: Percentiles
        public var cyclesFound: Int
        public var fullCheckNs: UInt64
    }

    public static func run(_ options: Options) -> Report {
        precondition(options.trees >= 2 && options.waiters >= options.trees * 2)
        var random = SplitMix64(seed: options.seed)
        var graph = WaitForGraph()
        func tx(_ n: Int) -> TransactionID { TransactionID(epoch: 1, sequence: UInt64(n)) }
        // Member i belongs to tree i % trees; members below `trees` are the roots.
        let members = options.waiters + options.trees
        for i in options.trees..<members {
            let tree = i % options.trees
            let earlier = Int(random.next() % UInt64(i / options.trees)) * options.trees + tree
            let cycle = graph.addEdge(from: tx(i), to: tx(earlier))
            precondition(cycle == nil, "a tree has no cycle")
        }
        let edges = graph.edgeCount
        func histogram() -> Histogram<UInt64> { Histogram(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three) }
        func summary(_ h: Histogram<UInt64>) -> Percentiles {
            Percentiles(p50Ns: h.valueAtPercentile(50), p99Ns: h.valueAtPercentile(99), maxNs: h.max)
        }

        var newcomer = histogram()
        for sample in 0..<options.samples {
            let fresh = tx(members + sample)
            let target = tx(Int(random.next() % UInt64(members)))
            let startNs = MonotonicClock.nowNs()
            let cycle = graph.addEdge(from: fresh, to: target)
            newcomer.record(MonotonicClock.nowNs() - startNs)
            precondition(cycle == nil)
            graph.removeNode(fresh)
        }

        var crossTree = histogram()
        for _ in 0..<options.samples {
            let from = Int(random.next() % UInt64(members))
            var to = Int(random.next() % UInt64(members))
            if to % options.trees == from % options.trees { to = (to + 1) % members }
            let startNs = MonotonicClock.nowNs()
            let cycle = graph.addEdge(from: tx(from), to: tx(to))
            crossTree.record(MonotonicClock.nowNs() - startNs)
            precondition(cycle == nil, "trees are disjoint")
            graph.removeEdge(from: tx(from), to: tx(to))
        }

        var closing = histogram()
        var cyclesFound = 0
        for _ in 0..<min(options.samples, 1_000) {
            let root = Int(random.next() % UInt64(options.trees))
            let member = (1 + Int(random.next() % UInt64(members / options.trees - 1))) * options.trees + root
            let startNs = MonotonicClock.nowNs()
            let cycle = graph.addEdge(from: tx(root), to: tx(member))
            closing.record(MonotonicClock.nowNs() - startNs)
            if cycle != nil { cyclesFound += 1 }
            graph.removeEdge(from: tx(root), to: tx(member))
        }

        let startNs = MonotonicClock.nowNs()
        let found = graph.findCycles()
        let fullCheckNs = MonotonicClock.nowNs() - startNs
        precondition(found.isEmpty && graph.edgeCount == edges)
        return Report(waiters: options.waiters, edges: edges, newcomer: summary(newcomer), crossTree: summary(crossTree),
                      closingCycle: summary(closing), cyclesFound: cyclesFound, fullCheckNs: fullCheckNs)
    }
}

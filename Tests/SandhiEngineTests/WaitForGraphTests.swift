import Testing
@testable import SandhiEngine

/// The wait-for graph alone: the incremental check finds every cycle on the edge that closes
/// it, never one that is not there, and the full check is a working safety net.
@Suite("Wait-for graph")
struct WaitForGraphTests {
    func t(_ n: Int) -> TransactionID { Fixture.tx(UInt64(n)) }

    @Test(arguments: [2, 3, 50])
    func cycleIsFoundByTheEdgeThatClosesIt(length: Int) throws {
        var graph = WaitForGraph()
        for n in 0..<(length - 1) {
            let added = graph.addEdge(from: t(n), to: t(n + 1))
            #expect(added == nil)
        }
        let closed = graph.addEdge(from: t(length - 1), to: t(0))
        let cycle = try #require(closed)
        #expect(cycle.members.count == length)
        #expect(Set(cycle.members) == Set((0..<length).map(t)))
        // In wait order, starting at the transaction whose wait closed it.
        #expect(cycle.members.first == t(length - 1))
        #expect(cycle.canonical.members == (0..<length).map(t))
        #expect(graph.deferredEdgeCount == 1)
        #expect(graph.orderIsConsistent())
        #expect(graph.findCycles().map { $0.canonical } == [cycle.canonical])
    }

    @Test func longChainWithoutACycleIsNotADeadlock() {
        var graph = WaitForGraph()
        // Built against the order's grain (each new edge points to a brand-new source), so
        // every insertion takes the reordering path.
        for n in (0..<10_000).reversed() where n > 0 {
            let added = graph.addEdge(from: t(n), to: t(n - 1))
            #expect(added == nil)
        }
        for n in 0..<9_999 where n % 97 == 0 {
            let added = graph.addEdge(from: t(n + 1), to: t(n))
            #expect(added == nil, "an edge already there")
        }
        // A shortcut along the chain's direction is not a cycle either.
        let added = graph.addEdge(from: t(9_999), to: t(0))
        #expect(added == nil)
        #expect(graph.findCycles().isEmpty)
        #expect(graph.orderIsConsistent())
        #expect(graph.edgeCount == 10_000)
        // ... but the way back is.
        let back = graph.addEdge(from: t(0), to: t(5_000))
        #expect(back?.members.count == 5_001)
    }

    @Test func removingAMemberBreaksTheCycleAndTheDeferredEdgeFitsAgain() throws {
        var graph = WaitForGraph()
        graph.addEdge(from: t(1), to: t(2))
        graph.addEdge(from: t(2), to: t(3))
        let closed = graph.addEdge(from: t(3), to: t(1))
        let cycle = try #require(closed)
        #expect(cycle.members == [t(3), t(1), t(2)])
        graph.removeEdge(from: t(1), to: t(2))
        let retried = graph.retryDeferred()
        #expect(retried.isEmpty)
        #expect(graph.deferredEdgeCount == 0)
        #expect(graph.hasEdge(from: t(3), to: t(1)))
        #expect(graph.orderIsConsistent())
        graph.removeNode(t(3))
        #expect(graph.nodeCount == 0, "with t3 gone, t1 and t2 have no edge left")
    }

    @Test func isolatedNodesAreForgotten() {
        var graph = WaitForGraph()
        graph.addEdge(from: t(1), to: t(2))
        graph.addEdge(from: t(3), to: t(2))
        graph.removeNode(t(2))
        #expect(graph.nodeCount == 0)
        #expect(graph.edgeCount == 0)
        graph.addEdge(from: t(4), to: t(5))
        graph.removeEdge(from: t(4), to: t(5))
        #expect(graph.nodeCount == 0)
    }

    /// A cycle that runs through an edge already held aside for another, unresolved cycle is
    /// invisible to the incremental check (that edge is outside the order). The full check
    /// must still find it: the safety net is shown to catch what the fast path misses.
    @Test func fullCheckFindsACycleThroughADeferredEdge() throws {
        var graph = WaitForGraph()
        graph.addEdge(from: t(1), to: t(2))
        let deadlockA = graph.addEdge(from: t(2), to: t(1)) // left unresolved
        #expect(deadlockA != nil)
        graph.addEdge(from: t(1), to: t(3))
        // t3 -> t2 closes t1 -> t3 -> t2 -> t1 only through the deferred t2 -> t1.
        let missed = graph.addEdge(from: t(3), to: t(2))
        #expect(missed == nil, "the incremental check cannot see through the deferred edge")
        let cycles = graph.findCycles()
        #expect(cycles.count == 1, "one strongly connected component")
        #expect(Set(cycles.flatMap(\.members)).isSubset(of: [t(1), t(2), t(3)]))
    }

    /// Random insertions, each checked against plain reachability: `addEdge` reports a cycle
    /// exactly when the target already reaches the source, and the cycle is made of real edges.
    @Test(arguments: [7, 8, 9, 10] as [UInt64])
    func incrementalCheckAgreesWithReachability(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var graph = WaitForGraph()
        var edges: Set<[Int]> = []
        func reaches(_ from: Int, _ to: Int) -> Bool {
            var seen: Set<Int> = [from], stack = [from]
            while let node = stack.popLast() {
                if node == to { return true }
                for edge in edges where edge[0] == node && seen.insert(edge[1]).inserted { stack.append(edge[1]) }
            }
            return false
        }
        for _ in 0..<1_500 {
            let from = Int(random.next() % 40), to = Int(random.next() % 40)
            guard from != to else { continue }
            if random.next() % 4 == 0, let edge = edges.randomElement(using: &random) {
                graph.removeEdge(from: t(edge[0]), to: t(edge[1]))
                edges.remove(edge)
                continue
            }
            let expectCycle = !edges.contains([from, to]) && reaches(to, from)
            let cycle = graph.addEdge(from: t(from), to: t(to))
            #expect((cycle != nil) == expectCycle)
            if let cycle {
                let members = cycle.members
                #expect(members.first == t(from) && members.dropFirst().first == t(to))
                for (a, b) in zip(members.dropFirst(), members.dropFirst(2)) {
                    #expect(edges.contains([Int(a.sequence), Int(b.sequence)]))
                }
                graph.removeEdge(from: t(from), to: t(to)) // the victim's wait goes away
            } else {
                edges.insert([from, to])
            }
            #expect(graph.deferredEdgeCount == 0)
        }
        #expect(graph.orderIsConsistent())
        #expect(graph.findCycles().isEmpty)
        #expect(graph.edgeCount == edges.count)
    }

    /// Cycles left standing (as under the manual policy): deferred edges pile up, nodes come
    /// and go, and the graph's bookkeeping, both indexes of deferred edges included, stays
    /// exactly the set of edges added and not removed.
    @Test(arguments: [11, 12, 13] as [UInt64])
    func standingCyclesKeepTheBookkeepingExact(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var graph = WaitForGraph()
        var model: Set<[Int]> = []
        for _ in 0..<2_000 {
            let a = Int(random.next() % 25), b = Int(random.next() % 25)
            switch random.next() % 10 {
            case 0:
                graph.removeNode(t(a))
                model = model.filter { $0[0] != a && $0[1] != a }
            case 1, 2:
                if let edge = model.randomElement(using: &random) {
                    graph.removeEdge(from: t(edge[0]), to: t(edge[1]))
                    model.remove(edge)
                }
            case 3:
                _ = graph.retryDeferred()
            default:
                guard a != b else { continue }
                _ = graph.addEdge(from: t(a), to: t(b))
                model.insert([a, b])
            }
            #expect(graph.orderIsConsistent())
            #expect(Set(graph.edges.map { [Int($0.from.sequence), Int($0.to.sequence)] }) == model)
        }
        let node = t(Int(random.next() % 25))
        #expect(Set(graph.predecessors(of: node)) == Set(model.filter { $0[1] == Int(node.sequence) }.map { t($0[0]) }))
        #expect(Set(graph.successors(of: node)) == Set(model.filter { $0[0] == Int(node.sequence) }.map { t($0[1]) }))
    }
}

// The global wait-for graph, across every participant: an edge T -> U means transaction T
// cannot go on until U releases a lock (U holds it, or U is queued ahead of T for it).
//
// A deadlock is a cycle, and it must be seen the moment the edge that closes it is added, by a
// check that does not scan the whole graph and has no depth cap. The graph is therefore kept
// acyclic together with a topological order of its nodes (Pearce & Kelly, "A dynamic
// topological sort algorithm for directed acyclic graphs", JEA 2006):
//
//   addEdge(x -> y):
//     order[x] < order[y]          the order already agrees: O(1), no search at all
//     otherwise                    search only the "affected region", nodes whose order lies
//                                  between order[y] and order[x]:
//                                    forward from y (order <= order[x]); reaching x = a cycle
//                                    backward from x (order > order[y])
//                                  then give the backward set the lower positions of the
//                                  region and the forward set the higher ones
//
// Most waits point from a newer transaction to an older one, so most additions take the O(1)
// branch; the others cost what the region holds, never what the graph holds.
//
// An edge that would close a cycle cannot enter the order. It is kept aside as "deferred" (it
// is still a real wait, and the full check and `successors` see it) and the cycle is returned
// to the caller, who picks a victim. `retryDeferred` re-offers deferred edges after removals:
// once the victim has gone they fit into the order again.
//
// A node exists while it has an edge in or out; an isolated node is forgotten at once, so the
// graph's size is bounded by the number of waits, not by the number of transactions ever seen.

public struct WaitForGraph: Sendable {
    /// `members[0] -> members[1] -> ... -> members.last -> members[0]`.
    public struct Cycle: Hashable, Sendable, CustomStringConvertible {
        public var members: [TransactionID]

        public init(members: [TransactionID]) {
            self.members = members
        }

        /// The same cycle, rotated to start at its smallest member: two reports of one cycle
        /// compare equal whichever edge closed it.
        public var canonical: Cycle {
            guard let start = members.indices.min(by: { members[$0] < members[$1] }) else { return self }
            return Cycle(members: Array(members[start...] + members[..<start]))
        }

        public var description: String {
            (members + members.prefix(1)).map(\.description).joined(separator: " -> ")
        }
    }

    private typealias Slot = Int32

    private var slotOf: [TransactionID: Slot] = [:]
    private var idOf: [TransactionID] = []
    private var order: [Int64] = []
    private var outEdges: [[Slot]] = []
    private var inEdges: [[Slot]] = []
    /// Edges that would close a cycle, outside the order (by source).
    private var deferredOut: [[Slot]] = []
    /// The same deferred edges by target, and the sources that have any: so that a change while
    /// a deadlock stands (grace period, manual policy) costs what it touches, not a scan.
    private var deferredIn: [[Slot]] = []
    private var deferredSources: [Slot] = []
    private var live: [Bool] = []
    private var freeSlots: [Slot] = []
    /// New sources go before everything, new sinks after everything: a new waiter's first edge
    /// (to a holder) then agrees with the order without a search.
    private var lowestOrder: Int64 = 0
    private var highestOrder: Int64 = 0
    /// Visit marks for searches, cleared by bumping the generation instead of by a sweep.
    private var visited: [UInt32] = []
    private var generation: UInt32 = 0
    /// `removeNode`'s list of neighbours, kept empty between calls.
    private var neighbourScratch: [Slot] = []

    public private(set) var edgeCount = 0
    public private(set) var deferredEdgeCount = 0

    public init() {}

    public var nodeCount: Int { slotOf.count }

    public func contains(_ tx: TransactionID) -> Bool { slotOf[tx] != nil }

    /// Every transaction `tx` waits for, deferred edges included.
    public func successors(of tx: TransactionID) -> [TransactionID] {
        guard let slot = slotOf[tx] else { return [] }
        return (outEdges[Int(slot)] + deferredOut[Int(slot)]).map { idOf[Int($0)] }
    }

    /// Every transaction waiting for `tx`, deferred edges included.
    public func predecessors(of tx: TransactionID) -> [TransactionID] {
        guard let slot = slotOf[tx] else { return [] }
        return (inEdges[Int(slot)] + deferredIn[Int(slot)]).map { idOf[Int($0)] }
    }

    /// All edges, deferred included, sorted: for display and tests.
    public var edges: [(from: TransactionID, to: TransactionID)] {
        var result: [(from: TransactionID, to: TransactionID)] = []
        for slot in idOf.indices where live[slot] {
            for target in outEdges[slot] + deferredOut[slot] { result.append((idOf[slot], idOf[Int(target)])) }
        }
        return result.sorted { ($0.from, $0.to) < ($1.from, $1.to) }
    }

    public func hasEdge(from: TransactionID, to: TransactionID) -> Bool {
        guard let source = slotOf[from], let target = slotOf[to] else { return false }
        return outEdges[Int(source)].contains(target) || deferredOut[Int(source)].contains(target)
    }

    // MARK: - Changes

    /// Adds `from -> to` (a no-op if present). Returns the cycle the edge closes, if any; the
    /// edge is then kept as deferred.
    @discardableResult
    public mutating func addEdge(from: TransactionID, to: TransactionID) -> Cycle? {
        precondition(from != to, "a transaction cannot wait for itself")
        let source = slot(for: from, asSource: true)
        let target = slot(for: to, asSource: false)
        if outEdges[Int(source)].contains(target) || deferredOut[Int(source)].contains(target) { return nil }
        if let cycle = insertOrdered(source: source, target: target) {
            addDeferred(source, target)
            return cycle
        }
        return nil
    }

    private mutating func addDeferred(_ source: Slot, _ target: Slot) {
        if deferredOut[Int(source)].isEmpty { deferredSources.append(source) }
        deferredOut[Int(source)].append(target)
        deferredIn[Int(target)].append(source)
        deferredEdgeCount += 1
    }

    private mutating func removeDeferred(_ source: Slot, _ target: Slot) {
        guard let position = deferredOut[Int(source)].firstIndex(of: target) else { return }
        deferredOut[Int(source)].remove(at: position)
        if let back = deferredIn[Int(target)].firstIndex(of: source) { deferredIn[Int(target)].remove(at: back) }
        if deferredOut[Int(source)].isEmpty { deferredSources.removeAll { $0 == source } }
        deferredEdgeCount -= 1
    }

    public mutating func removeEdge(from: TransactionID, to: TransactionID) {
        guard let source = slotOf[from], let target = slotOf[to] else { return }
        if let position = outEdges[Int(source)].firstIndex(of: target) {
            outEdges[Int(source)].remove(at: position)
            inEdges[Int(target)].removeAll { $0 == source }
            edgeCount -= 1
        } else {
            removeDeferred(source, target)
        }
        forgetIfIsolated(source)
        forgetIfIsolated(target)
    }

    /// Removes `tx` and every edge touching it.
    public mutating func removeNode(_ tx: TransactionID) {
        guard let slot = slotOf[tx] else { return }
        let index = Int(slot)
        for target in outEdges[index] { inEdges[Int(target)].removeAll { $0 == slot } }
        for source in inEdges[index] { outEdges[Int(source)].removeAll { $0 == slot } }
        edgeCount -= outEdges[index].count + inEdges[index].count
        // The neighbours gathered in a kept buffer, not concatenated: a node leaves at every
        // commit or abort that waited, and the concatenation was up to three arrays each time.
        var neighbours: [Slot] = []
        swap(&neighbours, &neighbourScratch)
        neighbours.append(contentsOf: outEdges[index])
        neighbours.append(contentsOf: inEdges[index])
        neighbours.append(contentsOf: deferredOut[index])
        neighbours.append(contentsOf: deferredIn[index])
        for target in deferredOut[index] { removeDeferred(slot, target) }
        for source in deferredIn[index] { removeDeferred(source, slot) }
        // Emptied, not replaced: the slot's next node reuses the buffers.
        outEdges[index].removeAll(keepingCapacity: true)
        inEdges[index].removeAll(keepingCapacity: true)
        free(slot)
        for neighbour in neighbours where live[Int(neighbour)] { forgetIfIsolated(neighbour) }
        neighbours.removeAll(keepingCapacity: true)
        swap(&neighbours, &neighbourScratch)
    }

    /// Offers every deferred edge to the order again (after removals). Returns the cycles that
    /// still block some of them; those edges stay deferred.
    public mutating func retryDeferred() -> [Cycle] {
        guard deferredEdgeCount > 0 else { return [] }
        var cycles: [Cycle] = []
        for source in deferredSources {
            for target in deferredOut[Int(source)] {
                removeDeferred(source, target)
                if let cycle = insertOrdered(source: source, target: target) {
                    addDeferred(source, target)
                    cycles.append(cycle)
                }
            }
        }
        return cycles
    }

    // MARK: - Full check (the safety net)

    /// Every cycle in the graph, deferred edges included: one example cycle per strongly
    /// connected component (Tarjan, iterative). Costs the whole graph; run it periodically,
    /// not per request.
    public func findCycles() -> [Cycle] {
        let count = idOf.count
        var index = [Int32](repeating: -1, count: count)
        var lowLink = [Int32](repeating: 0, count: count)
        var onStack = [Bool](repeating: false, count: count)
        var stack: [Int32] = []
        var nextIndex: Int32 = 0
        var cycles: [Cycle] = []
        var call: [(node: Int32, edge: Int)] = []
        func neighbours(_ node: Int) -> [Slot] { outEdges[node] + deferredOut[node] }

        for root in 0..<count where live[root] && index[root] < 0 {
            call.append((Int32(root), 0))
            index[root] = nextIndex; lowLink[root] = nextIndex; nextIndex += 1
            stack.append(Int32(root)); onStack[root] = true
            while let (node, edge) = call.last {
                let next = neighbours(Int(node))
                if edge < next.count {
                    call[call.count - 1].edge += 1
                    let target = Int(next[edge])
                    if index[target] < 0 {
                        index[target] = nextIndex; lowLink[target] = nextIndex; nextIndex += 1
                        stack.append(Int32(target)); onStack[target] = true
                        call.append((Int32(target), 0))
                    } else if onStack[target] {
                        lowLink[Int(node)] = min(lowLink[Int(node)], index[target])
                    }
                    continue
                }
                call.removeLast()
                if let parent = call.last { lowLink[Int(parent.node)] = min(lowLink[Int(parent.node)], lowLink[Int(node)]) }
                if lowLink[Int(node)] == index[Int(node)] {
                    var component: [Int32] = []
                    while let top = stack.popLast() {
                        onStack[Int(top)] = false
                        component.append(top)
                        if top == node { break }
                    }
                    if component.count > 1 {
                        cycles.append(exampleCycle(in: Set(component), from: node))
                    }
                }
            }
        }
        return cycles
    }

    /// A shortest cycle through `start` inside one strongly connected component (BFS).
    private func exampleCycle(in component: Set<Int32>, from start: Int32) -> Cycle {
        var parent: [Int32: Int32] = [:]
        var frontier: [Int32] = [start]
        var found = false
        search: while !frontier.isEmpty {
            var next: [Int32] = []
            for node in frontier {
                for target in outEdges[Int(node)] + deferredOut[Int(node)] where component.contains(target) {
                    if target == start { parent[start] = node; found = true; break search }
                    if parent[target] == nil { parent[target] = node; next.append(target) }
                }
            }
            frontier = next
        }
        assert(found, "a strongly connected component without a cycle through its root")
        var members: [TransactionID] = []
        var node = parent[start]!
        while node != start {
            members.append(idOf[Int(node)])
            node = parent[node]!
        }
        members.append(idOf[Int(start)])
        return Cycle(members: members.reversed())
    }

    // MARK: - Invariants

    /// The order agrees with every ordered edge, and the edge counts add up. For tests and
    /// debug assertions; costs the whole graph.
    public func orderIsConsistent() -> Bool {
        var edges = 0, deferred = 0
        for slot in idOf.indices where live[slot] {
            for target in outEdges[slot] {
                guard live[Int(target)], order[slot] < order[Int(target)],
                      inEdges[Int(target)].contains(Slot(slot)) else { return false }
                edges += 1
            }
            deferred += deferredOut[slot].count
            for target in deferredOut[slot] where !deferredIn[Int(target)].contains(Slot(slot)) { return false }
            if deferredOut[slot].isEmpty == deferredSources.contains(Slot(slot)) { return false }
            if outEdges[slot].isEmpty && inEdges[slot].isEmpty && deferredOut[slot].isEmpty && deferredIn[slot].isEmpty {
                return false // isolated nodes must have been forgotten
            }
        }
        return edges == edgeCount && deferred == deferredEdgeCount
    }

    // MARK: - Pearce-Kelly

    /// Inserts an ordered edge, reordering the affected region; nil on success, or the cycle
    /// the edge would close (and then nothing changed).
    private mutating func insertOrdered(source: Slot, target: Slot) -> Cycle? {
        let lower = order[Int(target)], upper = order[Int(source)]
        if upper < lower {
            link(source, target)
            return nil
        }
        // Forward from the target through the region; meeting the source closes a cycle.
        nextGeneration()
        var forward: [Slot] = []
        var parent: [Slot: Slot] = [:]
        var stack: [Slot] = [target]
        visited[Int(target)] = generation
        while let node = stack.popLast() {
            forward.append(node)
            for next in outEdges[Int(node)] {
                if next == source {
                    parent[next] = node
                    return cycle(closingAt: source, target: target, parent: parent)
                }
                if visited[Int(next)] != generation && order[Int(next)] < upper {
                    visited[Int(next)] = generation
                    parent[next] = node
                    stack.append(next)
                }
            }
        }
        // Backward from the source through the region.
        var backward: [Slot] = []
        stack = [source]
        visited[Int(source)] = generation
        while let node = stack.popLast() {
            backward.append(node)
            for previous in inEdges[Int(node)] where visited[Int(previous)] != generation && order[Int(previous)] > lower {
                visited[Int(previous)] = generation
                stack.append(previous)
            }
        }
        // The backward set takes the region's lowest positions, the forward set the rest, each
        // keeping its internal order.
        backward.sort { order[Int($0)] < order[Int($1)] }
        forward.sort { order[Int($0)] < order[Int($1)] }
        var positions = (backward + forward).map { order[Int($0)] }
        positions.sort()
        for (slot, position) in zip(backward + forward, positions) { order[Int(slot)] = position }
        link(source, target)
        return nil
    }

    private func cycle(closingAt source: Slot, target: Slot, parent: [Slot: Slot]) -> Cycle {
        // parent links run target -> ... -> source; the new edge closes source -> target.
        var path: [TransactionID] = []
        var node = source
        while node != target {
            path.append(idOf[Int(node)])
            node = parent[node]!
        }
        path.append(idOf[Int(target)])
        path.reverse() // target ... source
        return Cycle(members: [idOf[Int(source)]] + path.dropLast())
    }

    private mutating func link(_ source: Slot, _ target: Slot) {
        assert(order[Int(source)] < order[Int(target)])
        outEdges[Int(source)].append(target)
        inEdges[Int(target)].append(source)
        edgeCount += 1
    }

    private mutating func nextGeneration() {
        generation &+= 1
        if generation == 0 {
            for index in visited.indices { visited[index] = 0 }
            generation = 1
        }
    }

    // MARK: - Nodes

    private mutating func slot(for tx: TransactionID, asSource: Bool) -> Slot {
        if let slot = slotOf[tx] { return slot }
        let position: Int64
        if asSource { lowestOrder -= 1; position = lowestOrder } else { highestOrder += 1; position = highestOrder }
        let slot: Slot
        if let reused = freeSlots.popLast() {
            slot = reused
            idOf[Int(slot)] = tx
            order[Int(slot)] = position
            live[Int(slot)] = true
        } else {
            slot = Slot(idOf.count)
            idOf.append(tx)
            order.append(position)
            outEdges.append([])
            inEdges.append([])
            deferredOut.append([])
            deferredIn.append([])
            live.append(true)
            visited.append(0)
        }
        slotOf[tx] = slot
        return slot
    }

    private mutating func forgetIfIsolated(_ slot: Slot) {
        let index = Int(slot)
        guard live[index], outEdges[index].isEmpty, inEdges[index].isEmpty, deferredOut[index].isEmpty,
              deferredIn[index].isEmpty else { return }
        free(slot)
    }

    private mutating func free(_ slot: Slot) {
        let index = Int(slot)
        slotOf[idOf[index]] = nil
        live[index] = false
        freeSlots.append(slot)
    }
}

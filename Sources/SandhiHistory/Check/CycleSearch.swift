/// Finds one short example cycle inside a strongly connected component.
///
/// A cycle through an edge u→v is that edge plus a path v→…→u; breadth-first search inside the
/// component finds the shortest such path. Trying a few candidate edges and keeping the shortest
/// cycle gives readable examples without a quadratic all-pairs search on a huge component.
struct CycleSearch {
    /// Candidate edges tried per component.
    static let candidatesPerComponent = 4

    private var visitedGeneration: [UInt32]
    private var parentEdge: [Int32]
    private var queue: [Int32] = []
    private var generation: UInt32 = 0

    init(nodeCount: Int) {
        visitedGeneration = [UInt32](repeating: 0, count: nodeCount)
        parentEdge = [Int32](repeating: -1, count: nodeCount)
    }

    /// The shortest cycle found through an edge of a kind in `through` (both ends in the
    /// component), walking edges in `mask`; edge indices in cycle order, starting with the
    /// candidate. Nil when the component holds no such edge.
    mutating func exampleCycle(in component: [Int32], componentIndex: Int32, componentOf: [Int32],
                               graph: DependencyGraph, mask: EdgeMask, through: EdgeMask) -> [Int32]? {
        var best: [Int32]?
        var tried = 0
        search: for node in component {
            let node = Int(node)
            for position in graph.outStart[node]..<graph.outStart[node + 1] {
                let edge = graph.outEdges[Int(position)]
                guard through.contains(graph.edgeKind[Int(edge)].bit),
                      componentOf[Int(graph.edgeTarget[Int(edge)])] == componentIndex else { continue }
                if let path = shortestPath(from: graph.edgeTarget[Int(edge)], to: graph.edgeSource[Int(edge)],
                                           componentIndex: componentIndex, componentOf: componentOf, graph: graph, mask: mask),
                   best == nil || path.count + 1 < best!.count {
                    best = [edge] + path
                    if best!.count == 2 { break search } // no cycle is shorter than two edges
                }
                tried += 1
                if tried == Self.candidatesPerComponent { break search }
            }
        }
        return best
    }

    /// Edge indices of a shortest path, staying inside the component.
    private mutating func shortestPath(from source: Int32, to target: Int32, componentIndex: Int32,
                                       componentOf: [Int32], graph: DependencyGraph, mask: EdgeMask) -> [Int32]? {
        generation &+= 1
        if generation == 0 { // wrapped: forget every stale mark once
            for index in visitedGeneration.indices { visitedGeneration[index] = 0 }
            generation = 1
        }
        queue.removeAll(keepingCapacity: true)
        queue.append(source)
        visitedGeneration[Int(source)] = generation
        var head = 0
        while head < queue.count {
            let node = Int(queue[head])
            head += 1
            if node == Int(target) { break }
            for position in graph.outStart[node]..<graph.outStart[node + 1] {
                let edge = Int(graph.outEdges[Int(position)])
                let next = Int(graph.edgeTarget[edge])
                guard mask.contains(graph.edgeKind[edge].bit), componentOf[next] == componentIndex,
                      visitedGeneration[next] != generation else { continue }
                visitedGeneration[next] = generation
                parentEdge[next] = Int32(edge)
                queue.append(Int32(next))
            }
        }
        guard visitedGeneration[Int(target)] == generation else { return nil }
        var path: [Int32] = []
        var node = target
        while node != source {
            let edge = parentEdge[Int(node)]
            path.append(edge)
            node = graph.edgeSource[Int(edge)]
        }
        return path.reversed()
    }
}

/// Tarjan's strongly connected components over one subgraph of the dependency graph.
///
/// Iterative, with an explicit stack of (node, next out-edge) frames: a serial history of
/// 500,000 transactions is a path 500,000 deep, which would overflow the thread's stack if each
/// step were a recursive call.
struct StronglyConnectedComponents {
    /// Per node: the index of its component in `components`, or -1 if it is in no cycle.
    private(set) var componentOf: [Int32]
    /// Only the non-trivial components (two or more nodes): a node alone is no cycle, since the
    /// graph holds no self-edges.
    private(set) var components: [[Int32]] = []

    init(_ graph: DependencyGraph, mask: EdgeMask) {
        let count = graph.nodeCount
        componentOf = [Int32](repeating: -1, count: count)
        var index = [Int32](repeating: -1, count: count)
        var lowLink = [Int32](repeating: 0, count: count)
        var onStack = [Bool](repeating: false, count: count)
        var stack: [Int32] = []
        var frames: [(node: Int32, nextEdge: Int32)] = []
        var nextIndex: Int32 = 0

        for root in 0..<count where index[root] < 0 {
            index[root] = nextIndex; lowLink[root] = nextIndex; nextIndex += 1
            stack.append(Int32(root)); onStack[root] = true
            frames.append((Int32(root), graph.outStart[root]))

            while let frame = frames.last {
                let node = Int(frame.node)
                var edgePosition = frame.nextEdge
                let edgesEnd = graph.outStart[node + 1]
                var descended = false
                while edgePosition < edgesEnd {
                    let edge = Int(graph.outEdges[Int(edgePosition)])
                    edgePosition += 1
                    guard mask.contains(graph.edgeKind[edge].bit) else { continue }
                    let target = Int(graph.edgeTarget[edge])
                    if index[target] < 0 {
                        frames[frames.count - 1].nextEdge = edgePosition
                        index[target] = nextIndex; lowLink[target] = nextIndex; nextIndex += 1
                        stack.append(Int32(target)); onStack[target] = true
                        frames.append((Int32(target), graph.outStart[target]))
                        descended = true
                        break
                    } else if onStack[target] {
                        lowLink[node] = min(lowLink[node], index[target])
                    }
                }
                if descended { continue }

                frames.removeLast()
                if lowLink[node] == index[node] {
                    var members: [Int32] = []
                    while true {
                        let member = stack.removeLast()
                        onStack[Int(member)] = false
                        members.append(member)
                        if Int(member) == node { break }
                    }
                    if members.count > 1 {
                        for member in members { componentOf[Int(member)] = Int32(components.count) }
                        components.append(members.reversed())
                    }
                }
                if let parent = frames.last {
                    lowLink[Int(parent.node)] = min(lowLink[Int(parent.node)], lowLink[node])
                }
            }
        }
    }
}

// The simulator's pending events, earliest first: a four-ary min-heap of (time, sequence, slot)
// keys, the events themselves waiting in a slot array beside it.
//
// Four children a node, not two: half the levels for a pop to sink through (a pop is the
// drain loop's largest cost), the four children side by side in one or two cache lines.
//
// Why not `HeapModule.Heap`: that is a min-max heap, which pays for a max end this queue never
// uses (each level of a pop compares grandchildren as well as children), and it was a twentieth
// of a whole run. Keys are unique (the sequence breaks ties in scheduling order), so the order
// of pops, and with it every run's trace, does not depend on which heap holds them.
//
// Bounded by what is in flight: a few events per transaction and per participant, plus the
// timers the coordinator cancelled, which wait here until they come due and are skipped.
struct EventQueue {
    struct Key {
        var atUs: UInt64
        var sequence: UInt64
        var slot: Int

        @inline(__always)
        static func earlier(_ a: Key, _ b: Key) -> Bool { a.atUs != b.atUs ? a.atUs < b.atUs : a.sequence < b.sequence }
    }

    private var keys: [Key] = []

    var isEmpty: Bool { keys.isEmpty }
    /// The earliest key, left in place.
    var first: Key? { keys.first }
    var count: Int { keys.count }

    /// Children of node `i` are `arity * i + 1 ... arity * i + arity`.
    private static let arity = 4

    mutating func insert(_ key: Key) {
        keys.append(key)
        keys.withUnsafeMutableBufferPointer { heap in
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / Self.arity
                guard Key.earlier(key, heap[parent]) else { break }
                heap[child] = heap[parent]
                child = parent
            }
            heap[child] = key
        }
    }

    mutating func popMin() -> Key? {
        guard let last = keys.popLast() else { return nil }
        guard !keys.isEmpty else { return last }
        return keys.withUnsafeMutableBufferPointer { heap in
            let first = heap[0]
            // The last key sinks from the root to where it belongs.
            var parent = 0
            let count = heap.count
            while true {
                let firstChild = Self.arity * parent + 1
                guard firstChild < count else { break }
                var child = firstChild
                for sibling in (firstChild + 1)..<min(firstChild + Self.arity, count) where Key.earlier(heap[sibling], heap[child]) {
                    child = sibling
                }
                guard Key.earlier(heap[child], last) else { break }
                heap[parent] = heap[child]
                parent = child
            }
            heap[parent] = last
            return first
        }
    }
}

/// The holders of one resource. Almost every held resource has exactly one holder, so the
/// first is stored inline and only further (shared) holders take an array: taking a lock on a
/// free resource, the commonest thing the lock manager does, then allocates nothing for it.
public struct HolderList: RandomAccessCollection, MutableCollection, ExpressibleByArrayLiteral, Sendable {
    private var first: LockManager.Holder?
    private var rest: [LockManager.Holder] = []

    public init(arrayLiteral elements: LockManager.Holder...) {
        for element in elements { append(element) }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { first == nil ? 0 : 1 + rest.count }

    public subscript(position: Int) -> LockManager.Holder {
        get {
            precondition(position >= 0 && position < endIndex, "holder index out of range")
            return position == 0 ? first! : rest[position - 1]
        }
        set {
            precondition(position >= 0 && position < endIndex, "holder index out of range")
            if position == 0 { first = newValue } else { rest[position - 1] = newValue }
        }
    }

    public mutating func append(_ holder: LockManager.Holder) {
        if first == nil { first = holder } else { rest.append(holder) }
    }

    public mutating func removeAll(where shouldRemove: (LockManager.Holder) -> Bool) {
        // The one-holder case (almost every release) without building an array of the kept.
        if rest.isEmpty {
            if let first, shouldRemove(first) { self.first = nil }
            return
        }
        var kept: [LockManager.Holder] = []
        if let first, !shouldRemove(first) { kept.append(first) }
        kept += rest.filter { !shouldRemove($0) }
        if kept.count == endIndex { return }
        first = kept.first
        rest = Array(kept.dropFirst())
    }
}

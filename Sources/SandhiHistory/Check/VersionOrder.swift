/// The known version order of every key, from the writes of the transactions in the graph.
///
/// Versions of a key count up by one per committed write, so sorting a key's writes by version
/// gives the order the database installed them in. Only a transaction's final write of a key is
/// installed (Adya): an intermediate one (a second leg on the same account) is visible to
/// nobody else, so it is kept for lookups but takes no place in the order.
struct VersionOrder {
    struct Write {
        var key: Int32
        var version: Int64
        /// What the write installed (the balance in paise): what every read of this version
        /// from this writer must see.
        var value: Int64
        var transaction: Int32
        /// The transaction's last write of this key.
        var isFinal: Bool
        /// Final, and the first final write of this version (a duplicate takes no place).
        var isOrdered = false
    }

    /// Sorted by key, version, then transaction (file order, so the earlier of two duplicates wins).
    private let writes: [Write]
    /// The writes of key k are `writes[keyStart[k]..<keyStart[k + 1]]`.
    private let keyStart: [Int]
    /// Every pair of writes that installed the same version of a key: (the first, another).
    let duplicates: [(first: Write, second: Write)]

    init(writes unsorted: [Write], keyCount: Int) {
        var writes = unsorted.sorted { ($0.key, $0.version, $0.transaction) < ($1.key, $1.version, $1.transaction) }
        var keyStart = [Int](repeating: writes.count, count: keyCount + 1)
        var duplicates: [(first: Write, second: Write)] = []
        var runStart = 0
        for index in writes.indices {
            let write = writes[index]
            if index == 0 || writes[index - 1].key != write.key {
                keyStart[Int(write.key)] = index
            }
            if index == 0 || writes[runStart].key != write.key || writes[runStart].version != write.version {
                runStart = index
            } else {
                duplicates.append((writes[runStart], write))
            }
            let finalAlreadyHere = writes[runStart..<index].contains { $0.isOrdered }
            writes[index].isOrdered = write.isFinal && !finalAlreadyHere
        }
        // Keys nobody wrote start where the next written key does: an empty range.
        for key in stride(from: keyCount - 1, through: 0, by: -1) where keyStart[key] > keyStart[key + 1] {
            keyStart[key] = keyStart[key + 1]
        }
        self.writes = writes
        self.keyStart = keyStart
        self.duplicates = duplicates
    }

    /// The write of `version` of `key` by `transaction`, if it made one.
    func write(key: Int32, version: Int64, by transaction: Int32) -> Write? {
        var index = firstIndex(key: key, versionAtLeast: version)
        while index < keyStart[Int(key) + 1], writes[index].version == version {
            if writes[index].transaction == transaction { return writes[index] }
            index += 1
        }
        return nil
    }

    /// The transaction that installed the first ordered version of `key` after `version`. The
    /// read version's own writer is skipped: when a reader saw an intermediate version, the
    /// writer's final version comes after it, and the reader did not miss that one.
    func nextWriter(key: Int32, after version: Int64, skipping writer: Int32) -> Int32? {
        var index = firstIndex(key: key, versionAtLeast: version &+ 1)
        while index < keyStart[Int(key) + 1] {
            let write = writes[index]
            if write.isOrdered && write.transaction != writer { return write.transaction }
            index += 1
        }
        return nil
    }

    /// Each pair of consecutive ordered versions of a key: (key, earlier writer, later writer).
    func forEachSuccession(_ body: (Int32, Int32, Int32) -> Void) {
        var previous: Write?
        for write in writes where write.isOrdered {
            if let earlier = previous, earlier.key == write.key { body(write.key, earlier.transaction, write.transaction) }
            previous = write
        }
    }

    /// Binary search in the key's range.
    private func firstIndex(key: Int32, versionAtLeast version: Int64) -> Int {
        guard Int(key) + 1 < keyStart.count else { return keyStart.last ?? 0 }
        var low = keyStart[Int(key)], high = keyStart[Int(key) + 1]
        while low < high {
            let middle = (low + high) / 2
            if writes[middle].version < version { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

/// The history in integer form: transactions by position, keys and writers interned once, so the
/// checks compare integers instead of hashing strings again for every read.
struct HistoryIndex {
    /// What a read's `writer` names.
    enum WriterReference: Equatable {
        /// `null`: the initial state.
        case initial
        /// An id no transaction in the history has.
        case missing
        case transaction(Int32)
    }

    let transactions: [HistoryTransaction]
    private(set) var keys: [String] = []
    /// The key of op j of transaction t is `opKeys[opStart[t] + j]`; likewise `opWriters`.
    private var opStart: [Int] = []
    private var opKeys: [Int32] = []
    private var opWriters: [WriterReference] = []
    /// In the dependency graph: committed, or unknown-outcome and read by one that is.
    private(set) var included: [Bool] = []
    private(set) var unknownObserved = 0

    init(_ transactions: [HistoryTransaction]) {
        self.transactions = transactions
        // The decoder refuses duplicate ids; given duplicates anyway, a read names the first.
        var indexOfID: [String: Int32] = [:]
        indexOfID.reserveCapacity(transactions.count)
        for (index, transaction) in transactions.enumerated() where indexOfID[transaction.id] == nil {
            indexOfID[transaction.id] = Int32(index)
        }
        var keyIndex: [String: Int32] = [:]
        opStart.reserveCapacity(transactions.count + 1)
        for transaction in transactions {
            opStart.append(opKeys.count)
            for op in transaction.ops {
                let key = op.key
                if let index = keyIndex[key] {
                    opKeys.append(index)
                } else {
                    keyIndex[key] = Int32(keys.count)
                    opKeys.append(Int32(keys.count))
                    keys.append(key)
                }
                switch op {
                case .write: opWriters.append(.initial)
                case .read(_, _, _, nil): opWriters.append(.initial)
                case .read(_, _, _, let writer?): opWriters.append(indexOfID[writer].map { .transaction($0) } ?? .missing)
                }
            }
        }
        opStart.append(opKeys.count)
        includeObservedUnknowns()
    }

    /// The same index from numbers the caller had already: no string is hashed.
    init(_ transactions: [HistoryTransaction], interned: InternedReferences) {
        self.transactions = transactions
        precondition(interned.keys.count == interned.writers.count, "one key and one writer per op")
        opStart.reserveCapacity(transactions.count + 1)
        opKeys = interned.keys
        opWriters.reserveCapacity(interned.writers.count)
        var position = 0
        for transaction in transactions {
            opStart.append(position)
            for op in transaction.ops {
                let key = Int(opKeys[position])
                precondition(key >= 0 && key <= keys.count, "keys are numbered in the order they first appear")
                if key == keys.count { keys.append(op.key) }
                let writer = interned.writers[position]
                precondition(writer >= InternedReferences.missing && Int(writer) < transactions.count, "a writer is a position in the history")
                switch writer {
                case InternedReferences.initial: opWriters.append(.initial)
                case InternedReferences.missing: opWriters.append(.missing)
                default: opWriters.append(.transaction(writer))
                }
                position += 1
            }
        }
        precondition(position == opKeys.count, "one key and one writer per op")
        opStart.append(position)
        includeObservedUnknowns()
        assert(sameIndex(as: HistoryIndex(transactions)), "the interned references differ from the history's own")
    }

    private func sameIndex(as other: HistoryIndex) -> Bool {
        keys == other.keys && opStart == other.opStart && opKeys == other.opKeys && opWriters == other.opWriters
            && included == other.included && unknownObserved == other.unknownObserved
    }

    func key(_ transaction: Int, _ op: Int) -> Int32 { opKeys[opStart[transaction] + op] }

    func writer(_ transaction: Int, _ op: Int) -> WriterReference { opWriters[opStart[transaction] + op] }

    func id(_ transaction: Int32) -> String { transactions[Int(transaction)].id }

    /// An unknown outcome whose write an included transaction read did commit (or that read is
    /// itself an anomaly the checks report), so it joins the graph. One whose writes nobody saw
    /// may have aborted: including it could invent cycles through writes that never happened.
    private mutating func includeObservedUnknowns() {
        included = transactions.map { $0.outcome == .committed }
        var work = included.indices.filter { included[$0] }
        while let reader = work.popLast() {
            for op in transactions[reader].ops.indices {
                guard case .transaction(let writer) = writer(reader, op) else { continue }
                let writerIndex = Int(writer)
                if !included[writerIndex], transactions[writerIndex].outcome == .unknown {
                    included[writerIndex] = true
                    unknownObserved += 1
                    work.append(writerIndex)
                }
            }
        }
    }
}

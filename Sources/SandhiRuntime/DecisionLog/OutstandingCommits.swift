import SandhiEngine

/// Which segments still hold a COMMIT whose END has not been logged, i.e. which segments recovery
/// might still need. A segment with none can be deleted: presumed abort means a missing COMMIT is
/// harmless once every participant has acknowledged it.
///
/// A count per segment plus each open transaction's segment, rather than a set per segment: the
/// hot path does one dictionary insert per COMMIT and one removal per END.
struct OutstandingCommits {
    private var openCountBySegment: [UInt64: Int] = [:]
    private var segmentByTransaction: [TransactionID: UInt64] = [:]

    var openTransactionCount: Int { segmentByTransaction.count }

    mutating func committed(_ transaction: TransactionID, segment: UInt64) {
        // A re-logged COMMIT moves the transaction to its newest segment: the older copy is no
        // longer needed, since the newer one survives at least as long.
        if let previous = segmentByTransaction.updateValue(segment, forKey: transaction) {
            release(previous)
        }
        openCountBySegment[segment, default: 0] += 1
    }

    mutating func ended(_ transaction: TransactionID) {
        // An END whose COMMIT we never saw (already reclaimed, or never logged) needs nothing.
        guard let segment = segmentByTransaction.removeValue(forKey: transaction) else { return }
        release(segment)
    }

    func openCount(segment: UInt64) -> Int {
        openCountBySegment[segment] ?? 0
    }

    private mutating func release(_ segment: UInt64) {
        guard let count = openCountBySegment[segment] else {
            preconditionFailure("segment \(segment) has no open commits to release")
        }
        precondition(count > 0, "segment \(segment) open count \(count)")
        if count == 1 {
            openCountBySegment.removeValue(forKey: segment)
        } else {
            openCountBySegment[segment] = count - 1
        }
    }
}

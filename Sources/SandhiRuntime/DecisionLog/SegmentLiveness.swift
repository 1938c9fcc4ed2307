import SandhiEngine

/// Which segments recovery still needs, and which END records must outlive their segment.
///
/// A segment is needed while it holds a COMMIT whose END has not been logged: presumed abort
/// makes a missing COMMIT harmless only once every participant has acknowledged it.
///
/// The converse matters too: an END must survive as long as a copy of its COMMIT does, or
/// recovery would report a finished transaction as unfinished (and `sandhi check` would flag it).
/// When a COMMIT and its END land in different segments (every roll splits some in-flight
/// transactions), the END's segment is "cross-ending" the older one. If the END's segment is
/// reclaimed while the COMMIT's segment is still pinned, the store first copies those ENDs into
/// the active segment (`carry`). Deleting only a prefix would avoid the copy, but one stuck
/// transaction would then pin the whole log behind it.
///
/// A count per segment plus each open transaction's segment, rather than a set per segment: the
/// hot path does one dictionary insert per COMMIT and one removal per END, and allocates nothing
/// unless an END crosses a segment boundary.
struct SegmentLiveness {
    private var openCommitCountBySegment: [UInt64: Int] = [:]
    /// Segment of each transaction's newest COMMIT while its END is outstanding.
    private var commitSegmentByTransaction: [TransactionID: UInt64] = [:]
    /// Rare: segments holding earlier COMMITs of a transaction whose COMMIT was logged again.
    /// They stay pinned too, since each copy would look unfinished without the END.
    private var earlierCommitSegments: [TransactionID: [UInt64]] = [:]
    /// Per segment: ENDs in it whose COMMIT copies lie in other (always earlier) segments.
    private var crossEndsBySegment: [UInt64: [TransactionID: [UInt64]]] = [:]

    var openTransactionCount: Int { commitSegmentByTransaction.count }

    mutating func committed(_ transaction: TransactionID, segment: UInt64) {
        if let previous = commitSegmentByTransaction.updateValue(segment, forKey: transaction) {
            earlierCommitSegments[transaction, default: []].append(previous)
        }
        openCommitCountBySegment[segment, default: 0] += 1
    }

    mutating func ended(_ transaction: TransactionID, segment: UInt64) {
        // An END whose COMMIT we never saw (reclaimed, or a duplicate END) needs nothing.
        guard let commitSegment = commitSegmentByTransaction.removeValue(forKey: transaction) else { return }
        precondition(commitSegment <= segment, "END in segment \(segment) before its COMMIT in \(commitSegment)")
        release(commitSegment)
        var elsewhere: [UInt64] = []  // Empty arrays do not allocate: the common case stays free.
        if commitSegment != segment { elsewhere.append(commitSegment) }
        if !earlierCommitSegments.isEmpty, let earlier = earlierCommitSegments.removeValue(forKey: transaction) {
            for earlierSegment in earlier {
                release(earlierSegment)
                if earlierSegment != segment && !elsewhere.contains(earlierSegment) { elsewhere.append(earlierSegment) }
            }
        }
        if !elsewhere.isEmpty {
            crossEndsBySegment[segment, default: [:]][transaction] = elsewhere
        }
    }

    /// Number of COMMITs in `segment` still waiting for their END.
    func openCommitCount(segment: UInt64) -> Int {
        openCommitCountBySegment[segment] ?? 0
    }

    /// ENDs in `segment` whose COMMITs lie in earlier segments: transaction -> those segments.
    func crossEnds(segment: UInt64) -> [TransactionID: [UInt64]] {
        crossEndsBySegment[segment] ?? [:]
    }

    /// An END for `transaction` was copied into `segment` because the segment holding the previous
    /// copy is being reclaimed while COMMITs in `commitSegments` are still on disk.
    mutating func carried(_ transaction: TransactionID, commitSegments: [UInt64], into segment: UInt64) {
        precondition(!commitSegments.isEmpty && commitSegments.allSatisfy { $0 < segment })
        crossEndsBySegment[segment, default: [:]][transaction] = commitSegments
    }

    /// `segment` was deleted.
    mutating func forget(segment: UInt64) {
        precondition(openCommitCount(segment: segment) == 0, "forgetting segment \(segment) with open commits")
        crossEndsBySegment.removeValue(forKey: segment)
    }

    private mutating func release(_ segment: UInt64) {
        guard let count = openCommitCountBySegment[segment] else {
            preconditionFailure("segment \(segment) has no open commits to release")
        }
        precondition(count > 0, "segment \(segment) open count \(count)")
        if count == 1 {
            openCommitCountBySegment.removeValue(forKey: segment)
        } else {
            openCommitCountBySegment[segment] = count - 1
        }
    }
}

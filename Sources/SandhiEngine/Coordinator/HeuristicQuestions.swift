import DequeModule

// Heuristic reports about transactions the coordinator does not know, and the questions it asks
// before it believes one.
//
// A participant reports a heuristic decision again and again until the coordinator says
// FORGET, and the network may hold on to any of those reports: a copy can arrive long after
// the FORGET that settled it, after the transaction's COMMIT and END were reclaimed from the
// log, or after a restart emptied `recentCommits`. Such a stale heuristic COMMIT looks exactly
// like a live one to a coordinator that no longer knows the transaction, and presumed abort
// would take it for a mixed outcome that never happened: an operator would then "compensate"
// a transfer that committed everywhere. Content cannot tell the two apart; time can. So the
// coordinator asks:
//
//   participant                                  coordinator (transaction unknown, not a case)
//      |  HEURISTIC commit (no tag, or a tag this      |
//      |  incarnation has not outstanding)  --------->  |  remember (tx, participant) -> tag Q
//      |  <--------- ROLLBACK(tx, confirming: Q)        |  (the presumed decision, with the question)
//      |                                                |
//   still holds its decision:                           |
//      |  HEURISTIC commit (confirming: Q) ---------->  |  Q outstanding: record the mixed outcome
//      |  <--------- FORGET                             |  (durable first), then FORGET
//   forgot it long ago (the report was stale):          |
//      |  ACK ------------------------------------->    |  drop Q; nothing recorded
//
// Why an echoed tag is proof: Q was made by this incarnation, after its recovery had fed
// everything in the log, so the echo shows the participant still held its heuristic commit
// after that. A COMMIT that has left the log had an END before it, and an END is appended
// only once every participant has answered, a heuristic commit that agrees with the COMMIT by
// acknowledging the FORGET, after which it holds nothing (it never prepares that branch
// again: its storage knows the branch committed). Likewise a transaction this incarnation
// finished. So a participant still holding a heuristic commit of a transaction that is in
// neither the log nor the table was never told COMMIT: the decision really is abort, and the
// outcome really is mixed.
//
// Reports that recovery reads from the banks' own storage at start (`HeuristicReportSource
// .recovery`) are live by construction and need no question; neither do reports that agree
// with what the coordinator knows or presumes (FORGET is due either way), nor reports of a
// transaction the coordinator knows committed (`recentCommits`: a disagreeing one is a mixed
// outcome whoever sent it, as only a participant that never committed can report a rollback).

/// The coordinator's question about one heuristic report: which incarnation asked (its epoch,
/// unique to it) and which of its questions this is. Packed like a `TransactionID` (24-bit
/// epoch, 40-bit sequence), so that a ROLLBACK carrying one is no larger than a PREPARE.
public struct ConfirmationTag: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public init(epoch: UInt32, sequence: UInt64) {
        rawValue = TransactionID(epoch: epoch, sequence: sequence).rawValue
    }

    public var epoch: UInt32 { TransactionID(rawValue: rawValue).epoch }
    public var sequence: UInt64 { TransactionID(rawValue: rawValue).sequence }

    /// `Q-<epoch>.<sequence>`, e.g. `Q-3.17`.
    public var description: String { "Q-\(epoch).\(sequence)" }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Where a heuristic report comes from: what decides whether the coordinator may believe that
/// the participant still holds the decision it reports.
public enum HeuristicReportSource: Hashable, Sendable {
    /// Read from the bank's own storage by recovery at this start (`RecoveryPlan`), fed after
    /// every transaction the log holds: the bank held it when this incarnation began.
    case recovery
    /// A message from the participant: live, or a copy the network delayed past the FORGET
    /// that settled it. `confirming`: the coordinator's question it answers, echoed (none for
    /// a report the participant sent of its own accord).
    case message(confirming: ConfirmationTag?)
}

/// The questions outstanding: for each (transaction, participant) asked about, the tag asked
/// under. Bounded, like every queue. When full, the oldest question is dropped: should its
/// participant still hold the decision, it reports it again (participants repeat every
/// heuristic report until FORGET) and is asked anew; should it have been a stale copy whose
/// acknowledgement was lost, nothing waits for it. Refusing the newest instead would let
/// questions nobody will ever answer fill the table for good.
struct HeuristicQuestions: Sendable {
    struct Key: Hashable, Sendable {
        var transaction: TransactionID
        var participant: ParticipantID
    }

    private struct Asked: Sendable {
        var key: Key
        var tag: ConfirmationTag
    }

    private(set) var outstanding: [Key: ConfirmationTag] = [:]
    /// Every question in the order asked, oldest first; one answered since is skipped (and
    /// compacted away) when met.
    private var order = Deque<Asked>()

    var count: Int { outstanding.count }
    var isEmpty: Bool { outstanding.isEmpty }

    func tag(_ key: Key) -> ConfirmationTag? { outstanding[key] }

    /// Records a new question; returns the oldest one, dropped to make room, if the table was full.
    mutating func ask(_ key: Key, tag: ConfirmationTag, limit: Int) -> (key: Key, tag: ConfirmationTag)? {
        precondition(limit > 0 && outstanding[key] == nil, "\(key.transaction) asked of \(key.participant) twice")
        var dropped: (key: Key, tag: ConfirmationTag)?
        if outstanding.count >= limit {
            while let oldest = order.popFirst() {
                if outstanding[oldest.key] == oldest.tag {
                    outstanding[oldest.key] = nil
                    dropped = (oldest.key, oldest.tag)
                    break
                }
            }
        }
        outstanding[key] = tag
        order.append(Asked(key: key, tag: tag))
        // Answered questions linger in `order` until met; keep them from outgrowing the table.
        if order.count > 2 * max(outstanding.count, 64) {
            order = Deque(order.filter { outstanding[$0.key] == $0.tag })
        }
        assert(outstanding.count <= limit)
        return dropped
    }

    /// The question about `key` is settled (answered, or no longer needed); returns its tag.
    @discardableResult
    mutating func remove(_ key: Key) -> ConfirmationTag? {
        outstanding.removeValue(forKey: key)
    }
}

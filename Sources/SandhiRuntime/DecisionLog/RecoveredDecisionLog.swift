import SandhiEngine

/// What a decision log's open (or read-only read) found: `DecisionLogStore` on disk, or
/// `PostgresDecisionLog` in its table.
public struct RecoveredDecisionLog: Sendable {
    /// Where the records were read from.
    public enum Source: Sendable, Equatable {
        /// Segment files: positions are (segment number, byte offset of the record's frame).
        case segmentFiles(directory: String)
        /// Rows of a PostgreSQL table (`description` names database, table and instance):
        /// positions are (0, the row's sequence number).
        case postgres(description: String)
    }

    public var source: Source
    /// Every whole record in log order, with its position (see `Source`). Segment headers are
    /// included, so positions are exactly what was appended.
    public var records: [(position: LogPosition, record: DecisionRecord)]
    /// Highest epoch found in any segmentHeader/epochStarted record (0 if the log is empty/new).
    public var maxEpoch: UInt32
    /// COMMIT records with no END record after them: transaction -> participants named in the
    /// COMMIT. Recovery must re-send these commits; presumed abort covers everything else.
    public var unfinishedCommits: [TransactionID: [ParticipantID]]
    /// Human-readable notes such as
    /// "truncated torn tail of segment-00000003.log at byte 4096 (reason)".
    public var notes: [String]

    public init(
        source: Source = .segmentFiles(directory: ""),
        records: [(position: LogPosition, record: DecisionRecord)] = [],
        maxEpoch: UInt32 = 0,
        unfinishedCommits: [TransactionID: [ParticipantID]] = [:],
        notes: [String] = []
    ) {
        self.source = source
        self.records = records
        self.maxEpoch = maxEpoch
        self.unfinishedCommits = unfinishedCommits
        self.notes = notes
    }
}

extension RecoveredDecisionLog {
    /// Every COMMIT record, in log order, and whether an END follows it: what `RecoveryPlan`
    /// reads of the log.
    public var commits: [(transaction: TransactionID, participants: [ParticipantID], ended: Bool)] {
        records.compactMap { _, record in
            guard case .commit(let tx, let participants) = record else { return nil }
            return (tx, participants, unfinishedCommits[tx] == nil)
        }
    }
}

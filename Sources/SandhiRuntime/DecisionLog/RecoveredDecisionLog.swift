import SandhiEngine

/// What `DecisionLogStore.open` (or the read-only `read`) found on disk.
public struct RecoveredDecisionLog: Sendable {
    /// Every whole record in log order, with its position (segment number, byte offset of the
    /// record's frame). Segment headers are included, so positions are exactly what was appended.
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
        records: [(position: LogPosition, record: DecisionRecord)] = [],
        maxEpoch: UInt32 = 0,
        unfinishedCommits: [TransactionID: [ParticipantID]] = [:],
        notes: [String] = []
    ) {
        self.records = records
        self.maxEpoch = maxEpoch
        self.unfinishedCommits = unfinishedCommits
        self.notes = notes
    }
}

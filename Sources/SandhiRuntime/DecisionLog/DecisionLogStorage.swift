import SandhiEngine

/// Where the coordinator's decisions are kept: one protocol, two homes.
///
/// - `DecisionLogStore`: CRC-framed segment files in `DIR/coordinator/`, fdatasync'd (the default).
/// - `PostgresDecisionLog` (in `SandhiPostgres`, opened through `DecisionLogOpener`): one table
///   row per record, in the same framing, committed with `synchronous_commit = on`, so that
///   PostgreSQL's own replication carries the decisions to a standby coordinator.
///
/// `GroupCommitWriter` owns one on its thread (not thread-safe by itself) and calls, per batch,
/// `append` once and `sync` once if any record was forced, then `maintain` between batches. The
/// contract every implementation keeps, and that `DecisionLogConformance` tests for both:
///
/// - `append` returns each record's position in order; a record is durable once a later `sync`
///   returns. Unsynced records are bounded (`RecordFraming.maxUnsyncedBytes`): past it the log
///   syncs by itself and counts it in `boundSyncCount`.
/// - Any failed write or sync is sticky: every later call throws the same error, because after a
///   failure nobody knows whether the records reached stable storage. Only a new open, which
///   reads what is really there, may continue.
/// - `epoch` never goes back; the newest `epochStarted` record is never reclaimed.
/// - Records of finished transactions (a COMMIT whose END is durable, and that END) may be
///   reclaimed; a COMMIT without its END never is.
public protocol DecisionLogStorage: AnyObject {
    /// The coordinator epoch in force; set by the runtime after it logs `.epochStarted`.
    var epoch: UInt32 { get set }

    /// Appends records (not yet durable) and returns each one's position.
    func append(_ records: [DecisionRecord]) throws -> [LogPosition]

    /// Makes every appended record durable before it returns.
    func sync() throws

    /// Work kept off every record's wait for its sync, run by the writer between batches: the
    /// file log zero-fills ahead of its write position, the PostgreSQL log deletes finished
    /// transactions' records in bulk. Sticky error on failure, like `append` and `sync`.
    func maintain() throws

    /// Test/fault hook: the next `sync` fails (and the log refuses everything after it).
    func failNextSync()

    /// Syncs the log made on its own to keep unsynced records within their bound.
    var boundSyncCount: Int { get }

    /// Releases the log's resources (file descriptor, database session). Does not sync.
    func close()
}

extension DecisionLogStore: DecisionLogStorage {
    /// Preallocation (see `preallocate`): reclamation happens when a segment rolls, inside `append`.
    public func maintain() throws {
        try preallocate()
    }
}

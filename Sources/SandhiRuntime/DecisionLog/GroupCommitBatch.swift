import Logging
import SandhiEngine

/// What the group-commit writer does with each batch, without its thread or its queue: the
/// records appended in one call, one sync if any of them is forced, the store's own syncs (for
/// its unsynced-bytes bound) counted, upkeep between batches, and the last sync at a clean
/// stop. `GroupCommitWriter`'s thread drives it in production; the simulator drives the same
/// code from its events, over the real `DecisionLogStore` on a simulated disk.
///
///   queued ──take all──▶ append ──any forced──▶ sync ──▶ completions ──▶ maintain ──▶ queued
///                          │                      │
///                          └──only unforced───────┼──────▶ completions (no sync of their own)
///                                                 └──failed──▶ every record of the batch fails;
///                                                              the store refuses from now on
///   stop: a final sync if anything was appended since the last (not after a crash).
///
/// Batches of unforced records only (ENDs) get no sync of their own, but the store syncs by
/// itself whenever they would leave more than `RecordFraming.maxUnsyncedBytes` unsynced, which
/// is what lets recovery cut a batch torn by a power cut instead of refusing the log.
public struct GroupCommitBatch {
    /// Fsyncs (forced batches and the store's syncs for its bound) and records written.
    public private(set) var syncs = 0
    public private(set) var records = 0
    /// Something was appended since the last sync this batcher made.
    public private(set) var unsyncedWrites = false
    /// `store.boundSyncCount` already counted in `syncs`.
    private var boundSyncsCounted = 0

    public init() {}

    /// Appends `batch` in one call: each record's position, in order.
    public mutating func append(_ batch: [DecisionRecord], to store: any DecisionLogStorage) -> Result<[LogPosition], DecisionLogError> {
        defer { countBoundSyncs(store) }
        do {
            let positions = try store.append(batch)
            precondition(positions.count == batch.count, "\(positions.count) positions for \(batch.count) records")
            unsyncedWrites = true
            records += positions.count
            return .success(positions)
        } catch {
            return .failure(error as? DecisionLogError ?? .io("\(error)"))
        }
    }

    /// The batch's one sync (call it only when a record of the batch is forced).
    public mutating func sync(_ store: any DecisionLogStorage) -> Result<Void, DecisionLogError> {
        do {
            try store.sync()
            unsyncedWrites = false
            syncs += 1
            return .success(())
        } catch {
            return .failure(error as? DecisionLogError ?? .io("\(error)"))
        }
    }

    /// A batch as the writer takes it: appended, and synced if any record is forced.
    public mutating func write(_ batch: [DecisionRecord], forced: Bool, to store: any DecisionLogStorage) -> Result<[LogPosition], DecisionLogError> {
        let appended = append(batch, to: store)
        guard case .success = appended, forced else { return appended }
        switch sync(store) {
        case .success: return appended
        case .failure(let error): return .failure(error)
        }
    }

    /// Between batches, after their completions ran: the store's upkeep.
    public mutating func maintain(_ store: any DecisionLogStorage) {
        do {
            try store.maintain()
        } catch {
            // The store logged it and keeps it (sticky): the next batch fails with this error.
        }
        countBoundSyncs(store)
    }

    /// A clean stop: what was appended since the last sync is synced. (A crash skips this.)
    public mutating func finish(_ store: any DecisionLogStorage, logger: Logger) {
        guard unsyncedWrites else { return }
        if case .failure(let error) = sync(store) {
            logger.error("final decision log sync failed", metadata: ["error": "\(error)"])
        }
    }

    /// Adds the syncs the store made for its unsynced-bytes bound (during an append, even a
    /// failed one) to `syncs`.
    private mutating func countBoundSyncs(_ store: any DecisionLogStorage) {
        let total = store.boundSyncCount
        guard total > boundSyncsCounted else { return }
        syncs += total - boundSyncsCounted
        boundSyncsCounted = total
    }
}

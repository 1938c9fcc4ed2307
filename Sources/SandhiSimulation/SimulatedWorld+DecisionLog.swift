import Logging
import SandhiEngine
import SandhiIO
import SandhiRuntime

// The coordinator's decision log is the store that ships, `DecisionLogStore` (segments,
// preallocation, rolls, reclamation, torn-tail rules, reading from the disk after fsyncgate),
// on a `SimulatedDisk` that outlives every incarnation of the coordinator. What happens to it:
//
//   append    the store writes the records into the page cache; nothing is promised
//   sync      the store's fdatasync succeeded: recovery must find every COMMIT it covered,
//             unless its END was written (every participant had applied it, and reclamation
//             may drop both once the END is on the disk)
//   failed    the fsync reports EIO and marks the pages clean (fsyncgate); the store fails for
//   sync      good and the coordinator halts; whether the bytes ever land is unknown
//   crash     the machine loses power (unsynced sectors, sizes and names land all, none, or
//             each or not: a torn write), or only the process dies (the page cache stays,
//             though pages a failed sync marked clean may be evicted): the store reopens
//             from whatever the disk then holds
//
// Recovery is `DecisionLogStore.open`: the torn tail cut, damage refused. The checks: nothing
// a sync acknowledged is lost, and the store never refuses what a crash can leave.

extension SimulatedWorld {
    static let logDirectory = "/coordinator"
    /// Small segments, so a run of a few dozen transfers rolls and reclaims them.
    static let logSegmentBytes = 1_024
    static let logPreallocationBytes = 512
    static let quietLogger = Logger(label: "sandhi-simulation") { _ in SwiftLogNoOpLogHandler() }

    /// The coordinator's disk, with the log's first segment and the first epoch on it.
    static func makeLogDisk(seed: UInt64, epoch: UInt32) -> (SimulatedDisk, DecisionLogStore) {
        let disk = SimulatedDisk(seed: seed)
        disk.recordsCalls = false
        do {
            try disk.makeDirectories(logDirectory)
            let (store, _) = try openLog(disk)
            store.epoch = epoch
            _ = try store.append([.epochStarted(epoch: epoch)])
            try store.sync()
            return (disk, store)
        } catch {
            preconditionFailure("a new decision log on a healthy simulated disk failed: \(error)")
        }
    }

    static func openLog(_ disk: SimulatedDisk) throws -> (DecisionLogStore, RecoveredDecisionLog) {
        try DecisionLogStore.open(directory: logDirectory, segmentMaxBytes: logSegmentBytes,
                                  preallocationBytes: logPreallocationBytes, fileSystem: disk, logger: quietLogger)
    }

    /// Appends a record the coordinator asked for (written to the page cache, or into the
    /// store's buffer). A store that failed refuses: the next sync says so, and halts.
    mutating func appendToLog(_ record: DecisionRecord, forced: Bool) {
        let position = (try? logStore?.append([record]))?.first ?? LogPosition(segment: 0, offset: 0)
        if case .end(let tx) = record { appendedEnds.insert(tx) }
        coordinatorProcess.unsynced.append((record, forced, position))
    }

    /// The writer's fsync of `batch`, what was appended since the last. False if it failed.
    mutating func syncLog(_ batch: [(record: DecisionRecord, forced: Bool, position: LogPosition)], injectFailure: Bool) -> Bool {
        guard let store = logStore else { return false }
        if injectFailure { logDisk.failNextSync() }
        do {
            try store.sync()
        } catch {
            // What this sync was to cover may be lost at the next crash.
            logSyncFailed = true
            lostCandidates += batch.compactMap { if case .commit(let tx, _) = $0.record { tx } else { nil } }
            return false
        }
        return true
    }

    /// The coordinator's machine loses power, or its process dies: the log's fate is the disk's.
    mutating func crashDecisionLog() {
        lostCandidates += coordinatorProcess.unsynced.compactMap { if case .commit(let tx, _) = $0.record { tx } else { nil } }
        let hadUnsynced = (logStore?.unsyncedBytes ?? 0) > 0 || logSyncFailed
        if random.next() % 4 == 0 {
            logDisk.restartProcess()
        } else {
            let torn = hadUnsynced && chance(faults.logTornWritePerMille)
            if torn { injected[.tornLogWrite] += 1 }
            // A tear: each sector by itself, or the pages landing out of order, the first lost.
            let fate: SimulatedDisk.UnsyncedFate = torn ? (random.next() % 2 == 0 ? .each : .allButFirstSector)
                : random.next() % 2 == 0 ? .all : .none
            logDisk.powerLoss(unsynced: fate)
        }
        // Dropped after the disk went: its descriptor is gone, so closing it writes nothing.
        logStore = nil
    }

    /// Recovery's reading of the log: the store opened on what the disk holds. Nil (and a
    /// violation) if it refuses.
    mutating func recoverDecisionLog() -> RecoveredDecisionLog? {
        let store: DecisionLogStore, recovered: RecoveredDecisionLog
        do {
            (store, recovered) = try Self.openLog(logDisk)
        } catch {
            violation("log", "the decision log does not reopen after a crash: \(error)")
            return nil
        }
        logStore = store
        for note in recovered.notes where note.hasPrefix("truncated torn tail") {
            cases[.tornLogTailTruncated] += 1
            if note.contains("a batch torn by a crash") { cases[.logBatchTornAtASector] += 1 }
        }
        let found = Set(recovered.commits.map(\.transaction))
        for tx in syncedCommits where !found.contains(tx) && !appendedEnds.contains(tx) {
            violation("durability", "recovery lost the COMMIT record of \(tx), which an fsync acknowledged, before its END")
        }
        for (tx, _, _) in recovered.commits {
            if let slot = slot(of: tx), !ledger[slot].durable {
                // Written, never acknowledged, landed anyway: durable now, and it decides.
                ledger[slot].durable = true
                cases[.unsyncedCommitSurvived] += 1
            }
        }
        if lostCandidates.contains(where: { !found.contains($0) }) {
            injected[.unsyncedLogRecordsLost] += 1
            if logSyncFailed { cases[.writeLostAfterFailedLogSync] += 1 }
        }
        lostCandidates.removeAll()
        logSyncFailed = false
        return recovered
    }

    /// A new incarnation's epoch, durable before any of its ids (as `SandhiNode.start` does).
    mutating func startEpochInLog(_ epoch: UInt32) {
        guard let store = logStore else { return }
        do {
            store.epoch = epoch
            _ = try store.append([.epochStarted(epoch: epoch)])
            try store.sync()
        } catch {
            violation("log", "the decision log could not record epoch \(epoch): \(error)")
        }
    }
}

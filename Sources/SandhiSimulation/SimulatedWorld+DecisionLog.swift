import Logging
import SandhiEngine
import SandhiIO
import SandhiRuntime

// The coordinator's decision log is the store that ships, `DecisionLogStore` (segments,
// preallocation, rolls, reclamation, torn-tail rules, reading from the disk after fsyncgate),
// on a `SimulatedDisk` that outlives every incarnation of the coordinator. What happens to it:
//
//   append    the writer's batch (`GroupCommitBatch`, as `GroupCommitWriter` runs it) goes
//             into the page cache in one call; nothing is promised
//   sync      a batch with a forced record (a COMMIT) is fdatasync'd; ENDs alone are not (the
//             store syncs by itself past its unsynced bound); a sync that succeeded: recovery
//             must find every COMMIT it covered,
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

    /// Queues a record the coordinator asked for, for the writer's next batch.
    mutating func appendToLog(_ record: DecisionRecord, forced: Bool) {
        coordinatorProcess.unsynced.append((record, forced))
    }

    /// The writer's round, by `GroupCommitBatch`'s rules as `GroupCommitWriter` runs them: the
    /// batch appended in one call, synced once if any record is forced (ENDs alone are not),
    /// then the store's upkeep. The power may go during the fsync, and the fsync may fail.
    mutating func writeLogBatch(_ batch: [(record: DecisionRecord, forced: Bool)], incarnation: Int) {
        guard let store = logStore else { return }
        let forced = batch.contains { $0.forced }
        let positions: [LogPosition]
        switch coordinatorProcess.logWriter.append(batch.map(\.record), to: store) {
        case .success(let appended):
            positions = appended
            for case (.end(let tx), _) in batch { appendedEnds.insert(tx) }
        case .failure:
            // A store that failed refuses everything after (sticky): as a failed sync.
            logSyncFailed = true
            failLogBatch(batch, reason: "the decision log refused an append")
            return
        }
        if nowUs < faultsStopAtUs && chance(faults.coordinatorCrashPerMille * 25 + faults.logTornWritePerMille / 10) {
            // The power goes while the fsync is in flight (or, for ENDs, which get none, while
            // the batch sits in the page cache): the batch is unsynced, and the crash decides
            // what of it lands (torn, by the seed's rate). Seeds that tear writes cut the
            // power here more often: a tear needs unsynced bytes to tear.
            coordinatorProcess.unsynced = batch
            crashCoordinator(reason: "power lost during a log fsync")
            return
        }
        if forced {
            let injectFailure = nowUs < faultsStopAtUs && chance(faults.logSyncFailurePerMille)
            if injectFailure {
                injected[.logSyncFailure] += 1
                logDisk.failNextSync()
            }
            if case .failure = coordinatorProcess.logWriter.sync(store) {
                // fsyncgate: what this sync was to make durable may or may not reach the disk
                // (the crash decides); nobody may act on it.
                logSyncFailed = true
                lostCandidates += batch.compactMap { if case .commit(let tx, _) = $0.record { tx } else { nil } }
                if injectFailure && options.bug == .durableAfterFailedLogFsync {
                    // The planted bug: the writer ignores the failure and reports the batch
                    // durable; the coordinator carries on (until the failed store halts it).
                    for (index, entry) in batch.enumerated() where entry.forced {
                        guard case .commit(let tx, _) = entry.record else { continue }
                        schedule(.decisionDurable(tx, positions[index], incarnation: incarnation), afterUs: 1 + random.next() % 50)
                    }
                    return
                }
                failLogBatch(batch, reason: "simulated fsync failure")
                return
            }
            for (index, entry) in batch.enumerated() {
                guard case .commit(let tx, _) = entry.record else { continue }
                syncedCommits.insert(tx)
                if let slot = slot(of: tx) { ledger[slot].durable = true }
                if entry.forced {
                    schedule(.decisionDurable(tx, positions[index], incarnation: incarnation), afterUs: 1 + random.next() % 50)
                }
            }
        }
        coordinatorProcess.logWriter.maintain(store)
    }

    /// A batch the log could not make durable: its COMMIT's transaction hears so, and the
    /// coordinator halts (the writer stops the process itself when only ENDs failed).
    mutating func failLogBatch(_ batch: [(record: DecisionRecord, forced: Bool)], reason: String) {
        if let forced = batch.first(where: { $0.forced }), let tx = forced.record.transaction {
            feed(.decisionFailed(tx, reason: reason))
            if coordinatorProcess.up {
                violation("halt", "the coordinator carried on after \(tx)'s COMMIT record failed to sync")
            }
        }
        crashCoordinator(reason: "log fsync failure")
    }

    /// The coordinator's machine loses power, or its process dies: the log's fate is the disk's.
    mutating func crashDecisionLog() {
        lostCandidates += coordinatorProcess.unsynced.compactMap { if case .commit(let tx, _) = $0.record { tx } else { nil } }
        let hadUnsynced = (logStore?.unsyncedBytes ?? 0) > 0 || logSyncFailed || journalPowerCut
        // A power cut the journal met is a power loss; otherwise a crash may be the process's alone.
        if !journalPowerCut && random.next() % 4 == 0 {
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
        reconciliationJournal?.close()
        reconciliationJournal = nil
        journalPowerCut = false
    }

    /// Beside the log's directory, not in it, as `DIR/reconciliation.log` is beside
    /// `DIR/coordinator`: their directory syncs are their own.
    static let reconciliationPath = "/reconciliation.log"

    /// The coordinator's `recordReconciliation`: appended and synced by the journal that ships,
    /// whose fsync may fail (then the record's fate is the crash's). Whether it was acknowledged.
    mutating func appendReconciliation(_ record: ReconciliationRecord) -> Bool {
        guard let journal = reconciliationJournal else { return false }
        // Records are rare (a mixed outcome, an operator's action), so their syncs fail at
        // twenty times the log's rate, or seeds would seldom see one fail.
        if nowUs < faultsStopAtUs && chance(min(1_000, faults.logSyncFailurePerMille * 20)) {
            injected[.reconciliationSyncFailure] += 1
            logDisk.failNextSync()
        } else if nowUs < faultsStopAtUs && chance(faults.coordinatorCrashPerMille * 25 + faults.logTornWritePerMille / 10) {
            // The power goes between the record's write and its sync, as it may during the
            // log's: the crash decides whether the record lands whole, torn or not at all.
            logDisk.cutPower(afterCalls: 1)
            journalPowerCut = true
        }
        do {
            try journal.append(record)
        } catch {
            reconciliationUnacknowledged = record
            return false
        }
        reconciliationAcknowledged.apply(record)
        if case .opened = record { cases[.mixedOutcomeRecorded] += 1 }
        return true
    }

    /// Recovery's reading of the reconciliation journal, opened on what the disk holds: every
    /// acknowledged record, in order, and at most the one whose sync failed. Nil (and a
    /// violation) if it refuses or lost something.
    mutating func recoverReconciliation() -> ReconciliationQueue? {
        let journal: ReconciliationJournal, recovered: ReconciliationQueue
        do {
            (journal, recovered, _) = try ReconciliationJournal.open(path: Self.reconciliationPath, fileSystem: logDisk, logger: Self.quietLogger)
        } catch {
            violation("reconciliation", "the reconciliation journal does not reopen after a crash: \(error)")
            return nil
        }
        var withFailed = reconciliationAcknowledged
        if let failed = reconciliationUnacknowledged, ReconciliationJournal.fits(failed, withFailed) { withFailed.apply(failed) }
        if recovered == withFailed {
            if recovered != reconciliationAcknowledged { cases[.unsyncedReconciliationRecordLanded] += 1 }
            reconciliationAcknowledged = recovered // the failed record landed (or there was none): it counts now
        } else if recovered != reconciliationAcknowledged {
            violation("reconciliation", "the reconciliation journal came back with \(recovered.order.count) case(s), "
                      + "not the \(reconciliationAcknowledged.order.count) it acknowledged")
            return nil
        }
        reconciliationUnacknowledged = nil
        reconciliationJournal = journal
        return recovered
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

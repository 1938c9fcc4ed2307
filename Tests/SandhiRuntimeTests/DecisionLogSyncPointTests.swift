import Logging
import SandhiEngine
import SandhiIO
import SandhiRuntime
import SandhiTestSupport
import Testing

/// The decision-log store's syncs that `DecisionLogPowerLossTests`' workload does not reach
/// (issue 13, item 7), each with the situation it exists for:
///
/// - a roll that reclaims every older segment: the new segment's header, with the epoch, is
///   durable before the unlinks (else only an empty segment survives, and the epoch goes back);
/// - a reclaim that carries ENDs out of a doomed segment: they are durable before the unlinks
///   (else a COMMIT whose END was acknowledged comes back unfinished);
/// - a process killed at any instant, its unsynced writes left in the page cache, and a second
///   one that opens the log, works and then loses the power: its open makes the log's last
///   segment and its name durable before it builds on them;
/// - the unsynced bytes a power cut could tear stay within `maxUnsyncedBytes` on the disk
///   itself, not only in the store's bookkeeping: across a kill and an open, and across the
///   preallocations between batches (which sync, so the bookkeeping may call the bytes before
///   them synced).
@Suite struct DecisionLogSyncPointTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    static let directory = "/data/coordinator"
    static let participants = [ParticipantID(validated: "hdfc"), ParticipantID(validated: "sbi")]

    static func commit(_ epoch: UInt32, _ sequence: UInt64) -> DecisionRecord {
        .commit(transaction: TransactionID(epoch: epoch, sequence: sequence), participants: participants)
    }

    /// What the store acknowledged (a `sync` returned after it).
    struct Promised {
        var epoch: UInt32 = 0
        var commits: [TransactionID] = []
        var ends = Set<TransactionID>()
        var endsWritten = Set<TransactionID>()
    }

    static func check(_ recovered: RecoveredDecisionLog, _ promised: Promised, _ at: String) {
        let logged = Set(recovered.commits.map(\.transaction))
        for tx in promised.commits where !promised.endsWritten.contains(tx) {
            #expect(logged.contains(tx) && recovered.unfinishedCommits[tx] != nil, "\(at): acknowledged COMMIT \(tx) lost")
        }
        for tx in promised.ends {
            #expect(recovered.unfinishedCommits[tx] == nil, "\(at): \(tx) lost its acknowledged END")
        }
        #expect(recovered.maxEpoch >= promised.epoch, "\(at): epoch went back from \(promised.epoch) to \(recovered.maxEpoch)")
    }

    // MARK: - Reclaims at a roll

    enum Workload: String, CaseIterable {
        /// Each COMMIT ended in the next batch: every roll reclaims every older segment, and no
        /// END needs carrying.
        case endedAtOnce
        /// One COMMIT never ended keeps the first segment; ENDs land in later segments than their
        /// COMMITs, so reclaiming those segments carries ENDs into the active one.
        case endsCarried
    }

    static func run(_ workload: Workload, on files: any FileSystem) -> Promised {
        var promised = Promised()
        guard let (store, recovered) = try? DecisionLogStore.open(directory: directory, segmentMaxBytes: 600, preallocationBytes: 256,
                                                                  fileSystem: files, logger: logger) else { return promised }
        defer { store.close() }
        promised.epoch = recovered.maxEpoch
        let epoch = recovered.maxEpoch + 1
        store.epoch = epoch
        guard (try? store.append([.epochStarted(epoch: epoch)])) != nil, (try? store.sync()) != nil else { return promised }
        promised.epoch = epoch
        var batches: [[DecisionRecord]] = []
        switch workload {
        case .endedAtOnce:
            for sequence in 1...30 as ClosedRange<UInt64> {
                batches.append([commit(epoch, sequence)])
                batches.append([.end(transaction: TransactionID(epoch: epoch, sequence: sequence))])
            }
        case .endsCarried:
            batches.append([commit(epoch, 1)])
            for sequence in 2...40 as ClosedRange<UInt64> {
                batches.append([commit(epoch, sequence)] + (sequence > 2 ? [.end(transaction: TransactionID(epoch: epoch, sequence: sequence - 1))] : []))
            }
        }
        for batch in batches {
            let ends = batch.compactMap { if case .end(let tx) = $0 { tx } else { nil } }
            promised.endsWritten.formUnion(ends)
            guard (try? store.append(batch)) != nil, (try? store.sync()) != nil else { return promised }
            for record in batch { if case .commit(let tx, _) = record { promised.commits.append(tx) } }
            promised.ends.formUnion(ends)
            guard (try? store.preallocate()) != nil else { return promised }
        }
        return promised
    }

    @Test(arguments: Workload.allCases)
    func reclaimingAtARollLosesNothingAcknowledgedToAPowerLossAfterAnyDiskCall(workload: Workload) throws {
        let dry = SimulatedDisk(seed: 1)
        try dry.makeDirectories(Self.directory)
        _ = Self.run(workload, on: dry)
        let calls = dry.calls
        #expect(calls.contains { if case .unlink = $0 { true } else { false } }, "segments were reclaimed")
        for cut in 0...calls.count {
            for seed in 0..<2 as Range<UInt64> {
                let disk = SimulatedDisk(seed: UInt64(cut) &* 31 &+ seed)
                try disk.makeDirectories(Self.directory)
                disk.cutPower(afterCalls: cut)
                let promised = Self.run(workload, on: disk)
                disk.powerLoss()
                do {
                    Self.check(try DecisionLogStore.read(directory: Self.directory, fileSystem: disk), promised, "\(workload), cut \(cut), seed \(seed)")
                } catch {
                    Issue.record("\(workload), cut \(cut), seed \(seed): the log does not read: \(error)")
                }
            }
        }
    }

    // MARK: - A kill, then a power loss

    @Test func aSecondProcessSyncsWhatAKilledOneLeftBeforeBuildingOnIt() throws {
        let dry = SimulatedDisk(seed: 1)
        try dry.makeDirectories(Self.directory)
        let before = dry.calls.count
        _ = Self.run(.endsCarried, on: dry)
        let calls = dry.calls.count - before
        for death in 0...calls {
            for seed in 0..<2 as Range<UInt64> {
                let disk = SimulatedDisk(seed: UInt64(death) &* 31 &+ seed)
                try disk.makeDirectories(Self.directory)
                var promised = Self.run(.endsCarried, on: MortalFileSystem(disk, diesAfterCalls: death))
                disk.restartProcess()
                let at = "killed after \(death) calls, seed \(seed)"
                do {
                    // The next process: a new epoch and a COMMIT, both acknowledged.
                    let (store, recovered) = try DecisionLogStore.open(directory: Self.directory, segmentMaxBytes: 600, preallocationBytes: 256,
                                                                       fileSystem: disk, logger: Self.logger)
                    Self.check(recovered, promised, at + ", before the power loss")
                    let epoch = recovered.maxEpoch + 1
                    store.epoch = epoch
                    _ = try store.append([.epochStarted(epoch: epoch), Self.commit(epoch, 1)])
                    try store.sync()
                    store.close()
                    promised.epoch = epoch
                    promised.commits.append(TransactionID(epoch: epoch, sequence: 1))
                    disk.powerLoss()
                    Self.check(try DecisionLogStore.read(directory: Self.directory, fileSystem: disk), promised, at)
                } catch {
                    Issue.record("\(at): \(error)")
                }
            }
        }
    }

    // MARK: - The unsynced bound, on the disk

    /// Bytes of the active segment that a power cut now could tear: from the first byte the
    /// disk does not hold as the page cache does, to the end of the records (the zeros after
    /// them are preallocated space).
    static func unsyncedSpan(_ disk: SimulatedDisk) throws -> Int {
        guard let last = try disk.listDirectory(directory).filter({ $0.hasPrefix("segment-") }).max() else { return 0 }
        let path = directory + "/" + last
        let cache = try disk.readAll(path)
        let durable = disk.durableBytes(path) ?? []
        guard let end = cache.lastIndex(where: { $0 != 0 }) else { return 0 }
        var first = 0
        while first <= end && first < durable.count && durable[first] == cache[first] { first += 1 }
        return first > end ? 0 : end + 1 - first
    }

    /// Appends `count` unforced COMMITs in batches of 1,000 (nothing syncs but the store itself).
    static func appendUnforced(_ store: DecisionLogStore, epoch: UInt32, from first: UInt64, count: Int,
                               afterEachBatch: () throws -> Void = {}) throws {
        var sequence = first
        while sequence < first + UInt64(count) {
            let batch = (sequence..<min(first + UInt64(count), sequence + 1_000)).map { commit(epoch, $0) }
            _ = try store.append(batch)
            sequence += UInt64(batch.count)
            try afterEachBatch()
        }
    }

    /// COMMITs of this size fill the bound in about this many.
    static let recordsPerBound = DecisionLogStore.maxUnsyncedBytes / (RecordFraming.headerBytes + commit(1, 1).encoded().count)

    @Test func preallocationsBetweenBatchesKeepTheUnsyncedBytesOnTheDiskBounded() throws {
        let disk = SimulatedDisk(seed: 5)
        try disk.makeDirectories(Self.directory)
        let (store, _) = try DecisionLogStore.open(directory: Self.directory, preallocationBytes: 64 << 10, fileSystem: disk, logger: Self.logger)
        store.epoch = 1
        _ = try store.append([.epochStarted(epoch: 1)])
        try store.sync()
        var worst = 0
        try Self.appendUnforced(store, epoch: 1, from: 1, count: Self.recordsPerBound * 5 / 2) {
            try store.preallocate()
            worst = max(worst, try Self.unsyncedSpan(disk))
        }
        store.close()
        #expect(worst <= DecisionLogStore.maxUnsyncedBytes, "\(worst) bytes unsynced on the disk")
        disk.powerLoss()
        #expect(throws: Never.self, "the log opens after a power loss") {
            let (reopened, _) = try DecisionLogStore.open(directory: Self.directory, fileSystem: disk, logger: Self.logger)
            reopened.close()
        }
    }

    @Test func aKilledProcessesUnsyncedRecordsCountTowardTheNextOnesBound() throws {
        let disk = SimulatedDisk(seed: 6)
        try disk.makeDirectories(Self.directory)
        var (store, _) = try DecisionLogStore.open(directory: Self.directory, fileSystem: disk, logger: Self.logger)
        store.epoch = 1
        _ = try store.append([.epochStarted(epoch: 1)])
        try store.sync()
        // Just under the bound, unsynced, and the process dies: the page cache keeps it.
        let count = Self.recordsPerBound * 9 / 10
        try Self.appendUnforced(store, epoch: 1, from: 1, count: count)
        disk.restartProcess()
        store.close()
        (store, _) = try DecisionLogStore.open(directory: Self.directory, fileSystem: disk, logger: Self.logger)
        store.epoch = 2
        var worst = try Self.unsyncedSpan(disk)
        try Self.appendUnforced(store, epoch: 2, from: 1, count: count) { worst = max(worst, try Self.unsyncedSpan(disk)) }
        store.close()
        #expect(worst <= DecisionLogStore.maxUnsyncedBytes, "\(worst) bytes unsynced on the disk")
        disk.powerLoss()
        #expect(throws: Never.self, "the log opens after a power loss") {
            let (reopened, _) = try DecisionLogStore.open(directory: Self.directory, fileSystem: disk, logger: Self.logger)
            reopened.close()
        }
    }
}

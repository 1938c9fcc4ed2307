import SandhiIO
import Logging
import SandhiEngine

/// Append-only segment files `segment-%08d.log` in one directory. Not thread-safe by itself;
/// GroupCommitWriter owns it on one thread.
///
/// Durability contract: `append` only hands bytes to the kernel; a record is durable once a later
/// `sync` returns. Any failed write or sync is sticky: the store refuses every later append and
/// sync with the same error, because after a failed write(2) or fsync(2) nobody knows what
/// reached the disk, and retrying an fsync can report success for data the kernel already
/// dropped (fsyncgate). The process must restart and recover from what the disk actually holds.
///
/// Preallocation: the active segment is kept zero-filled (real zero bytes, synced) ahead of the
/// write position, and records are written with pwrite(2) into that space. A sync of a file
/// whose size and extents did not change flushes its data blocks only, where a sync after an
/// append must also write the inode (on ext4 without a journal, a second device write per sync).
/// Not fallocate(2): its unwritten extents still need a metadata update when first written.
/// The zeros are not records: the scan (`RecordFraming`, rule 1) stops at them, and the LAST
/// segment may end in them after a crash without any note. Rolling trims the old segment to its
/// last record first, and `close` trims the active one, so only the segment that was active when
/// the process died (or when the store failed, after which it touches nothing) ends in zeros.
///
/// Unsynced bytes are bounded: the store fdatasyncs on its own before a write would leave more
/// than `maxUnsyncedBytes` of the active segment unsynced (unforced records, such as ENDs, would
/// otherwise pile up unsynced without limit). That bound is what lets recovery survive a power
/// cut in the middle of a multi-page batch: the pages of a write land in no particular order, so
/// the last segment can hold a hole of zeros with whole records after it. Since no tear can lie
/// more than `maxUnsyncedBytes` before the end of the written data, open treats a damaged record
/// in that window of the LAST segment that shows such a hole (zeros through a sector boundary)
/// as a torn tail and cuts there (`RecordFraming` rule 9); nothing from the hole on was
/// acknowledged, as every forced completion waits for an fdatasync covering all earlier bytes.
/// Other damage, such as a flipped bit, and damage anywhere else is still corruption: cutting
/// there could drop acknowledged COMMITs.
///
/// Segment order on disk: a new segment's header (carrying the current epoch) is written and
/// synced, and the directory entry made durable, before any older segment is unlinked. A crash
/// can then never leave only a headerless new segment, which open would have to give epoch 0.
public final class DecisionLogStore {
    /// See the type's comment and `RecordFraming.maxUnsyncedBytes`.
    public static let maxUnsyncedBytes = RecordFraming.maxUnsyncedBytes

    public let directory: String
    public let segmentMaxBytes: Int
    /// Zero bytes written ahead at a time (capped at segmentMaxBytes).
    public let preallocationBytes: Int
    /// `preallocate` extends once fewer zero bytes than this remain ahead of the write position.
    private let preallocationMarginBytes: Int
    private let logger: Logger
    /// Where the segments live: the machine's file system, or a simulated disk.
    private let files: any FileSystem

    /// Segment files on disk, ascending by number. The last one is active (appends go there) and
    /// is never reclaimed.
    private var segments: [SegmentState]
    private var activeFD: Int32
    /// Cached so the hot path does not build a path string per write.
    private var activePath: String
    /// End of the last record of the active segment handed to pwrite(2): where the next goes.
    private var activeBytes: Int
    /// Size of the active segment file: `activeBytes` plus the zeros preallocated after it.
    /// Every byte from `activeBytes` to here is zero.
    private var activeFileBytes: Int
    /// End of what the last fdatasync of the active segment covered. `activeBytes` minus this
    /// never exceeds `maxUnsyncedBytes`.
    private var activeSyncedBytes: Int
    private var failure: DecisionLogError?
    private var closed = false
    private var failNextSyncInjected = false
    private var liveness = SegmentLiveness()
    /// Reused across appends so the hot path does not allocate a frame buffer per call.
    private var buffer: [UInt8] = []
    /// Test hook: runs just before each reclaimed segment file is unlinked, with its path, so a
    /// test can take the directory as a crash at that moment would leave it.
    var willUnlinkSegmentForTesting: ((String) -> Void)?

    private struct SegmentState {
        var number: UInt64
        /// Highest epoch in the segment (its header or an epochStarted record).
        var maxEpoch: UInt32
    }

    /// Smallest segmentMaxBytes accepted: a header frame plus a few records, so tests can force
    /// frequent rolls without making every record its own segment by accident.
    public static let segmentMinBytes = 64

    /// Epoch written into new segment headers; set by the runtime after it logs .epochStarted.
    /// Never decreases: a lower epoch could hand out transaction ids a second time.
    public var epoch: UInt32 {
        didSet {
            precondition(epoch >= oldValue, "decision log epoch went back from \(oldValue) to \(epoch)")
            precondition(epoch <= TransactionID.maxEpoch, "epoch \(epoch) exceeds TransactionID.maxEpoch")
        }
    }

    private init(directory: String, segmentMaxBytes: Int, preallocationBytes: Int, files: any FileSystem, logger: Logger,
                 segments: [SegmentState], activeFD: Int32, activeBytes: Int, activeFileBytes: Int, epoch: UInt32) {
        precondition(!segments.isEmpty && activeFD >= 0 && activeBytes > 0 && activeFileBytes >= activeBytes)
        precondition(preallocationBytes > 0, "preallocationBytes \(preallocationBytes)")
        self.directory = directory
        self.files = files
        self.segmentMaxBytes = segmentMaxBytes
        self.preallocationBytes = preallocationBytes
        // A quarter of a chunk is far more than one group-commit batch, so with `preallocate`
        // called between batches a batch practically never outruns the zeros.
        self.preallocationMarginBytes = max(1, preallocationBytes / 4)
        self.logger = logger
        self.segments = segments
        self.activeFD = activeFD
        self.activePath = SegmentName.path(directory: directory, number: segments[segments.count - 1].number)
        self.activeBytes = activeBytes
        self.activeFileBytes = activeFileBytes
        self.activeSyncedBytes = activeBytes  // `open` syncs the segment before handing it over.
        self.epoch = epoch
        buffer.reserveCapacity(64 * 1024)
    }

    deinit {
        close()
    }

    // MARK: Opening and reading

    /// Opens (creating the directory's first segment if none). Scans every segment in order:
    /// a torn tail of the LAST segment is truncated (ftruncate + fsync) to the last whole record
    /// and noted (logger.warning + notes); zeros after its last whole record are preallocated
    /// space, kept as they are and not noted, and appends continue right after that record. In
    /// the last segment a damaged record within `maxUnsyncedBytes` of the end of its non-zero
    /// content, with a hole of zeros where a sector did not land, is such a torn tail too (a
    /// batch a power cut tore into pages; see the type's comment): it is cut there, with every
    /// record after it, and noted. A torn or zero-filled tail in a non-last segment, or any other
    /// damage (without a hole, earlier in the last segment, anywhere in the others), throws
    /// DecisionLogError.corrupt naming the file and byte offset. Records that fail
    /// `DecisionRecord(decoding:)` are also .corrupt. Every segment begins with
    /// `.segmentHeader(segment:epoch:)`; a segment whose header is missing/wrong is corrupt.
    /// The last segment is then fdatasynced (with the directory), so the unsynced-bytes bound
    /// starts from a synced log even if the previous process was killed before its own sync.
    /// Reclaims segments whose commits are all ended.
    ///
    /// Nothing on disk changes unless every segment validated first.
    public static func open(
        directory: String, segmentMaxBytes: Int = 64 << 20, preallocationBytes: Int = 1 << 20,
        fileSystem files: any FileSystem = PosixFileSystem(), logger: Logger
    ) throws -> (DecisionLogStore, RecoveredDecisionLog) {
        precondition(segmentMaxBytes >= segmentMinBytes, "segmentMaxBytes \(segmentMaxBytes) below \(segmentMinBytes)")
        try logIO { () throws(FileSystemError) in try files.makeDirectories(directory) }
        // From the disk, not the page cache: after an earlier process's failed fsync the cache
        // may hold records the disk never got (fsyncgate, review finding F1). Acting on them
        // (sending a COMMIT that a later power cut takes back) would split a transaction.
        let scanned = try SegmentScanner.scan(directory: directory, files: files, fromDisk: true)
        var recovered = scanned.recovered
        for note in recovered.notes {
            logger.warning("\(note)", metadata: ["directory": "\(directory)"])
        }

        let store: DecisionLogStore
        if let last = scanned.segments.last {
            var validEnd = last.validEnd
            var fileBytes = last.fileBytes
            let name = SegmentName.fileName(last.number)
            if let torn = last.tornTail {
                assert(torn.offset == last.validEnd && last.validEnd < last.fileBytes)
                // Cut rather than zeroed in place: the same recovery as a log that was never
                // preallocated; the next `preallocate` writes the zeros again.
                try logIO { () throws(FileSystemError) in try files.truncate(last.path, toBytes: last.validEnd) }
                fileBytes = last.validEnd
                let note = "truncated torn tail of \(name) at byte \(torn.offset) (\(torn.reason))"
                logger.warning("\(note)", metadata: ["directory": "\(directory)"])
                recovered.notes.append(note)
            }
            let fd = try logIO { () throws(FileSystemError) in try files.openForWriting(last.path) }
            var segments = scanned.segments.map { SegmentState(number: $0.number, maxEpoch: $0.maxEpoch) }
            if last.recordCount == 0 {
                // The crash came between creating the file and its header reaching disk. The
                // segment holds nothing, so it is safe to give it its header now.
                assert(validEnd == 0)
                var header: [UInt8] = []
                appendHeaderFrame(segment: last.number, epoch: recovered.maxEpoch, into: &header)
                do {
                    try logIO { () throws(FileSystemError) in try files.writeAll(fd, header, atOffset: 0, path: last.path) }
                    try logIO { () throws(FileSystemError) in try files.dataSync(fd, path: last.path) }
                } catch {
                    files.close(fd)
                    throw error
                }
                validEnd = header.count
                fileBytes = max(fileBytes, validEnd)
                segments[segments.count - 1].maxEpoch = recovered.maxEpoch
                let note = "\(name) held no whole record (crash right after it was created); wrote its header"
                logger.warning("\(note)", metadata: ["directory": "\(directory)"])
                recovered.notes.append(note)
            }
            // A killed (not powered-off) process leaves its unsynced records in the page cache,
            // where this scan found them but the disk may not hold them yet. Syncing them now
            // keeps the bound of `maxUnsyncedBytes` true from the first append on, and makes the
            // last segment and its name durable before `reclaim` may unlink anything older.
            do {
                try logIO { () throws(FileSystemError) in try files.dataSync(fd, path: last.path) }
                try logIO { () throws(FileSystemError) in try files.syncDirectory(directory) }
            } catch {
                files.close(fd)
                throw error
            }
            store = DecisionLogStore(
                directory: directory, segmentMaxBytes: segmentMaxBytes, preallocationBytes: preallocationBytes,
                files: files, logger: logger, segments: segments, activeFD: fd, activeBytes: validEnd, activeFileBytes: fileBytes,
                epoch: recovered.maxEpoch)
            for (position, record) in recovered.records {
                store.track(record, segment: position.segment)
            }
        } else {
            let number = SegmentName.firstNumber
            let path = SegmentName.path(directory: directory, number: number)
            let fd = try logIO { () throws(FileSystemError) in try files.createForWriting(path) }
            var header: [UInt8] = []
            appendHeaderFrame(segment: number, epoch: 0, into: &header)
            do {
                try logIO { () throws(FileSystemError) in try files.writeAll(fd, header, atOffset: 0, path: path) }
                try logIO { () throws(FileSystemError) in try files.dataSync(fd, path: path) }
                try logIO { () throws(FileSystemError) in try files.syncDirectory(directory) }
            } catch {
                files.close(fd)
                throw error
            }
            logger.info("created decision log", metadata: ["directory": "\(directory)", "segment": "\(path)"])
            store = DecisionLogStore(
                directory: directory, segmentMaxBytes: segmentMaxBytes, preallocationBytes: preallocationBytes,
                files: files, logger: logger, segments: [SegmentState(number: number, maxEpoch: 0)],
                activeFD: fd, activeBytes: header.count, activeFileBytes: header.count, epoch: 0)
        }

        do {
            try store.reclaim()
        } catch {
            store.close()
            throw error
        }
        return (store, recovered)
    }

    /// Read-only scan for `sandhi log dump` and `sandhi check`: same validation, but never
    /// truncates, syncs or deletes (a torn tail, a torn batch included, is reported in notes, not
    /// cut). The zeros preallocated after the last record of the last segment are not reported:
    /// they are there whenever a live (or killed) process holds the log open.
    public static func read(directory: String, fileSystem files: any FileSystem = PosixFileSystem()) throws -> RecoveredDecisionLog {
        let scanned = try SegmentScanner.scan(directory: directory, files: files)
        var recovered = scanned.recovered
        if scanned.segments.isEmpty {
            recovered.notes.append("no segment files in \(directory)")
        }
        if let last = scanned.segments.last {
            let name = SegmentName.fileName(last.number)
            if let torn = last.tornTail {
                recovered.notes.append(
                    "torn tail of \(name) at byte \(torn.offset) (\(torn.reason)); "
                        + "\(last.fileBytes - torn.offset) bytes would be truncated on open")
            }
            if last.recordCount == 0 {
                recovered.notes.append("\(name) holds no whole record (crash right after it was created)")
            }
        }
        return recovered
    }

    // MARK: Appending

    /// Appends records (one pwrite(2) of all frames at the write position, no fsync; into the
    /// preallocated zeros when they reach far enough, else growing the file). Returns each record's
    /// position. Rolls to a new segment first when the active one would exceed segmentMaxBytes
    /// (new segment starts with a segmentHeader record carrying `epoch`). Syncs first (writing
    /// the frames so far) whenever the next frame would leave more than `maxUnsyncedBytes`
    /// unsynced. On a write or sync error throws .io and the store refuses further appends
    /// (sticky error), because what reached disk is unknown.
    public func append(_ records: [DecisionRecord]) throws -> [LogPosition] {
        var positions: [LogPosition] = []
        positions.reserveCapacity(records.count)
        try sticky { try appendUnchecked(records, positions: &positions) }
        assert(positions.count == records.count)
        return positions
    }

    private func appendUnchecked(_ records: [DecisionRecord], positions: inout [LogPosition]) throws(DecisionLogError) {
        assert(buffer.isEmpty)
        defer { buffer.removeAll(keepingCapacity: true) }
        for record in records {
            if case .segmentHeader = record {
                preconditionFailure("segment headers are written by the store, not appended")
            }
            let payload = record.encoded()
            let frameBytes = RecordFraming.headerBytes + payload.count
            // Roll only if the active segment holds more than its header: a record bigger than
            // segmentMaxBytes then gets a segment of its own instead of rolling forever.
            let pendingEnd = activeBytes + buffer.count
            if pendingEnd + frameBytes > segmentMaxBytes && pendingEnd > Self.headerFrameBytes {
                try flushBuffer()
                try roll()
            }
            try makeRoomInUnsyncedBound(forFrameBytes: frameBytes)
            positions.append(LogPosition(segment: activeNumber, offset: UInt64(activeBytes + buffer.count)))
            RecordFraming.frame(payload, into: &buffer)
            track(record, segment: activeNumber)
        }
        try flushBuffer()
    }

    /// fdatasync of the active segment. (The directory is synced where segment files are created
    /// or unlinked: `open`, `roll`, `reclaim`.) Sticky error on failure.
    public func sync() throws {
        try sticky { try syncUnchecked() }
    }

    private func syncUnchecked() throws(DecisionLogError) {
        let path = activePath
        if failNextSyncInjected {
            failNextSyncInjected = false
            throw .io("fdatasync \(path) [injected fault]", errno: PosixFileSystem.injectedFaultErrno)
        }
        try logIO { () throws(FileSystemError) in try files.dataSync(activeFD, path: path) }
        activeSyncedBytes = activeBytes
    }

    /// Syncs what is written and buffered if one more frame of `frameBytes` would take the
    /// unsynced bytes of the active segment past `maxUnsyncedBytes`. A frame is far smaller than
    /// the bound, so after this the frame always fits.
    private func makeRoomInUnsyncedBound(forFrameBytes frameBytes: Int) throws(DecisionLogError) {
        assert(frameBytes <= Self.maxUnsyncedBytes)
        guard activeBytes + buffer.count + frameBytes - activeSyncedBytes > Self.maxUnsyncedBytes else { return }
        try flushBuffer()
        try syncUnchecked()
        boundSyncCount += 1
    }

    /// Zero-fills the active segment ahead of the write position once fewer than a quarter of
    /// `preallocationBytes` remain: `preallocationBytes` more (never past segmentMaxBytes), synced
    /// at once (which syncs the records before them too). Later syncs of records written into
    /// that space then leave the file's size and extents alone. Does nothing while there is
    /// room. GroupCommitWriter calls it between batches, so the extension's write and sync is part
    /// of no record's wait for its own sync. Sticky error on failure, like append and sync.
    public func preallocate() throws {
        try sticky { try preallocateUnchecked() }
    }

    private func preallocateUnchecked() throws(DecisionLogError) {
        assert(activeBytes <= activeFileBytes)
        guard activeFileBytes - activeBytes < preallocationMarginBytes, activeFileBytes < segmentMaxBytes else { return }
        let targetBytes = min(activeFileBytes + preallocationBytes, segmentMaxBytes)
        try logIO { () throws(FileSystemError) in try files.writeZeros(activeFD, atOffset: activeFileBytes, count: targetBytes - activeFileBytes, path: activePath) }
        try logIO { () throws(FileSystemError) in try files.dataSync(activeFD, path: activePath) }
        activeFileBytes = targetBytes
        activeSyncedBytes = activeBytes
    }

    /// Test/fault hook: the next `sync` fails with an .io error, as a failed fsync would (and, as
    /// after any failed sync, the store refuses everything after it).
    public func failNextSync() {
        failNextSyncInjected = true
    }

    /// Number of segment files currently on disk, and their numbers (for tests / `sandhi check`).
    public var segmentNumbers: [UInt64] { segments.map(\.number) }

    /// Bytes of the active segment written since its last fdatasync; never above
    /// `maxUnsyncedBytes`.
    public var unsyncedBytes: Int { activeBytes - activeSyncedBytes }

    /// fdatasyncs the store made on its own because a write would have passed `maxUnsyncedBytes`
    /// (for GroupCommitWriter's stats and tests).
    public private(set) var boundSyncCount = 0

    /// Trims the preallocated zeros and releases the file descriptor. Does not sync: call `sync`
    /// first for anything that must last.
    public func close() {
        guard !closed else { return }
        closed = true
        if activeFD >= 0 {
            trimPreallocation()
            files.close(activeFD)
            activeFD = -1
        }
    }

    // MARK: Internals

    private var activeNumber: UInt64 { segments[segments.count - 1].number }

    /// Runs one write-side operation on a usable store; its first failure becomes the store's
    /// failure for good (what reached the disk after a failed write or sync is unknown).
    private func sticky(_ operation: () throws -> Void) throws {
        try checkUsable()
        do {
            try operation()
        } catch {
            fail(error)
            throw error
        }
    }

    private func checkUsable() throws(DecisionLogError) {
        if closed { throw .closed }
        if let failure { throw failure }
        assert(activeFD >= 0)
    }

    private func fail(_ error: Error) {
        let logError = error as? DecisionLogError ?? .io("\(error)")
        if failure == nil {
            logger.error("decision log failed; refusing further appends", metadata: ["error": "\(logError)"])
            failure = logError
        }
    }

    private func flushBuffer() throws(DecisionLogError) {
        guard !buffer.isEmpty else { return }
        try logIO { () throws(FileSystemError) in try files.writeAll(activeFD, buffer, atOffset: activeBytes, path: activePath) }
        activeBytes += buffer.count
        // A batch that outran the zeros grew the file (correct, only its sync costs more).
        activeFileBytes = max(activeFileBytes, activeBytes)
        buffer.removeAll(keepingCapacity: true)
        assert(activeBytes > 0)
    }

    /// A stopped log ends at its last record, as if it had never been preallocated: it takes no
    /// more disk than its records, and whatever inspects or extends the file finds no zeros.
    /// Not synced: should the cut not reach the disk, the zeros read back as preallocated space,
    /// which is just as valid. After a failure nothing is touched: the bytes on disk are unknown,
    /// and recovery is to judge them as they are.
    private func trimPreallocation() {
        guard failure == nil, activeFileBytes > activeBytes else { return }
        do {
            try logIO { () throws(FileSystemError) in try files.truncate(activeFD, toBytes: activeBytes, path: activePath) }
            activeFileBytes = activeBytes
        } catch {
            logger.warning("could not trim the preallocated tail of the decision log", metadata: ["error": "\(error)"])
        }
    }

    /// Starts the next segment. Its header (with the current epoch) is written and synced, and
    /// the directory with it, before `reclaim` may unlink older segments: otherwise a crash after
    /// the unlinks could leave only the new file, empty, and open would give it epoch 0 (the
    /// epoch going back, or the node refusing to start for a lost log). One more sync per roll,
    /// and rolls come once per segmentMaxBytes. The new file is preallocated by the next
    /// `preallocate`, not here: a roll happens inside an append, on the way to a sync.
    private func roll() throws(DecisionLogError) {
        precondition(buffer.isEmpty, "roll with unwritten frames")
        // The old segment must end at its last record, durably, before anything lands in the
        // next one: recovery forgives a torn or zero-filled tail only in the last segment.
        if activeFileBytes > activeBytes {
            try logIO { () throws(FileSystemError) in try files.truncate(activeFD, toBytes: activeBytes, path: activePath) }
            try logIO { () throws(FileSystemError) in try files.fullSync(activeFD, path: activePath) }
            activeFileBytes = activeBytes
        } else {
            try logIO { () throws(FileSystemError) in try files.dataSync(activeFD, path: activePath) }
        }
        files.close(activeFD)
        activeFD = -1

        let number = activeNumber + 1
        let path = SegmentName.path(directory: directory, number: number)
        activeFD = try logIO { () throws(FileSystemError) in try files.createForWriting(path) }
        activePath = path
        segments.append(SegmentState(number: number, maxEpoch: epoch))
        activeBytes = 0
        activeFileBytes = 0
        activeSyncedBytes = 0
        Self.appendHeaderFrame(segment: number, epoch: epoch, into: &buffer)
        try flushBuffer()
        try logIO { () throws(FileSystemError) in try files.dataSync(activeFD, path: activePath) }
        activeSyncedBytes = activeBytes
        try logIO { () throws(FileSystemError) in try files.syncDirectory(directory) }
        logger.debug("rolled decision log segment", metadata: ["segment": "\(path)", "epoch": "\(epoch)"])
        try reclaim()
    }

    /// Deletes every non-active segment that recovery no longer needs: all its COMMITs have their
    /// END, and no epoch in it is above the active segment's (so the highest epoch always stays
    /// on disk). Commits are independent, so any such segment may go, not only a prefix; ENDs in
    /// it whose COMMITs stay on disk are first copied into the active segment and synced (see
    /// `SegmentLiveness`), so a crash can never leave a finished COMMIT without its END.
    ///
    /// Callers first make the active segment durable with its header and its directory entry
    /// (`open`, `roll`): it carries the epoch once older segments are gone.
    private func reclaim() throws(DecisionLogError) {
        assert(buffer.isEmpty && activeSyncedBytes >= Self.headerFrameBytes,
               "reclaim before the active segment's header is durable")
        let active = segments[segments.count - 1]
        var remaining = Set(segments.map(\.number))
        var doomed: [UInt64] = []
        var carried: [(transaction: TransactionID, commitSegments: [UInt64])] = []
        // Ascending, so every segment an END refers to (always an earlier one) is already decided.
        for segment in segments.dropLast() {
            guard liveness.openCommitCount(segment: segment.number) == 0, segment.maxEpoch <= active.maxEpoch else {
                continue
            }
            doomed.append(segment.number)
            remaining.remove(segment.number)
            for (transaction, commitSegments) in liveness.crossEnds(segment: segment.number) {
                let surviving = commitSegments.filter(remaining.contains)
                if !surviving.isEmpty { carried.append((transaction, surviving)) }
            }
        }
        guard !doomed.isEmpty else { return }

        if !carried.isEmpty {
            carried.sort { $0.transaction < $1.transaction }  // Deterministic file contents.
            for item in carried {
                let payload = DecisionRecord.end(transaction: item.transaction).encoded()
                try makeRoomInUnsyncedBound(forFrameBytes: RecordFraming.headerBytes + payload.count)
                RecordFraming.frame(payload, into: &buffer)
            }
            try flushBuffer()
            try logIO { () throws(FileSystemError) in try files.dataSync(activeFD, path: activePath) }
            activeSyncedBytes = activeBytes
            for item in carried {
                liveness.carried(item.transaction, commitSegments: item.commitSegments, into: active.number)
            }
        }

        var reclaimed: [UInt64] = []
        for number in doomed {
            let path = SegmentName.path(directory: directory, number: number)
            willUnlinkSegmentForTesting?(path)
            do {
                try logIO { () throws(FileSystemError) in try files.unlink(path) }
            } catch {
                // Keep this one and every later one (they may hold ENDs for its COMMITs); the next
                // roll tries again.
                logger.warning("could not reclaim decision log segment", metadata: ["error": "\(error)"])
                break
            }
            liveness.forget(segment: number)
            reclaimed.append(number)
        }
        let reclaimedSet = Set(reclaimed)
        segments.removeAll { reclaimedSet.contains($0.number) }
        assert(segments.last?.number == active.number)
        guard !reclaimed.isEmpty else { return }
        try logIO { () throws(FileSystemError) in try files.syncDirectory(directory) }
        logger.info("reclaimed decision log segments", metadata: [
            "directory": "\(directory)",
            "segments": "\(reclaimed.map(SegmentName.fileName).joined(separator: ", "))",
            "carriedEnds": "\(carried.count)",
        ])
    }

    private func track(_ record: DecisionRecord, segment: UInt64) {
        switch record {
        case .commit(let transaction, _):
            liveness.committed(transaction, segment: segment)
        case .end(let transaction):
            liveness.ended(transaction, segment: segment)
        case .epochStarted(let started):
            // Later segment headers must carry this epoch even if the runtime has not set
            // `epoch` yet, or reclaiming this segment could lose it.
            if started > epoch { epoch = started }
            if let index = segments.lastIndex(where: { $0.number == segment }) {
                segments[index].maxEpoch = max(segments[index].maxEpoch, started)
            }
        case .segmentHeader:
            break
        }
    }

    /// Size of a segment header frame (fixed: the header has fixed-width fields).
    private static let headerFrameBytes =
        RecordFraming.headerBytes + DecisionRecord.segmentHeader(segment: 0, epoch: 0).encoded().count

    private static func appendHeaderFrame(segment: UInt64, epoch: UInt32, into out: inout [UInt8]) {
        RecordFraming.frame(DecisionRecord.segmentHeader(segment: segment, epoch: epoch).encoded(), into: &out)
    }
}

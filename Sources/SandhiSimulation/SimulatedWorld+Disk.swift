import SandhiEngine

// The disks. The coordinator's decision log is bytes, framed with the engine's `RecordFraming`
// (length, CRC32C of the payload, CRC32C of the header), the same bytes `DecisionLogStore`
// writes; a bank's prepare persist is one such framed record (the SQLite bank's WAL frames
// carry checksums of their own, to the same end). What a write does to a disk:
//
//   written   the bytes sit in the page cache (`DecisionLogDisk.unsynced`); nothing is promised
//   synced    an fsync succeeded: the bytes are on the disk and recovery must find every record
//   crash     the machine loses power: of the unsynced bytes none land, all land, or (by the
//             seed's torn-write rate) a prefix lands that ends inside a record, sometimes with a
//             512-byte sector in it that did not land (pages of one batch land in any order);
//             zeros preallocated after the records may follow
//   failed    an fsync reports an error (fsyncgate): the kernel may already have dropped the
//   fsync     dirty pages, so whether those bytes ever land is unknown until the crash that
//             the halt leads to decides it, exactly as for unsynced bytes
//
// Recovery runs the engine's scanner over the bytes: whole records are recovered, a torn tail
// is cut, and the checks are that nothing a sync acknowledged is cut, that the scan never
// calls a tear corruption (this medium never decays), and that a torn write-set is dropped
// whole, never restored in part.

/// The coordinator's decision log, one segment. Survives crashes of the coordinator.
struct DecisionLogDisk {
    /// What recovery reads: synced bytes, and whatever unsynced bytes crashes let land.
    var bytes: [UInt8] = []
    /// Bytes a successful fsync covered (or that a recovery found on the disk): the scan must
    /// keep every record in them.
    var syncedEnd = 0
    /// Written but not synced: lost, kept or torn at the next crash. Bounded by the coordinator's
    /// in-flight limit (a COMMIT and an END per transaction) and emptied by every sync.
    var unsynced: [UInt8] = []
    /// The last fsync failed; its bytes are still in `unsynced`, fate unknown until the crash.
    var failedSync = false
    /// Where the last recovery's scan stopped: records before it are already in `commits` and
    /// `ended`; the next recovery scans and decodes from here (everything written since).
    var recoveredEnd = 0
    /// What the records up to `recoveredEnd` say: every COMMIT, every END, the highest epoch.
    var commits: [(TransactionID, [ParticipantID])] = []
    var ended: Set<TransactionID> = []
    var maxEpoch: UInt32 = 0

    /// A scratch buffer for encoding, kept to save an allocation per record.
    var payload = BinaryWriter(capacity: 64)

    /// Puts `record` in the page cache.
    mutating func write(_ record: DecisionRecord) {
        payload.removeAll()
        record.encode(into: &payload)
        RecordFraming.frame(payload.bytes, into: &unsynced)
    }

    /// Writes and syncs at once: the segment header, and each start's `epochStarted` (a start
    /// waits for it to be durable before handing out transaction ids).
    mutating func writeSynced(_ record: DecisionRecord) {
        precondition(unsynced.isEmpty, "a synced write behind unsynced bytes")
        RecordFraming.frame(record.encoded(), into: &bytes)
        syncedEnd = bytes.count
    }

    /// A successful fsync: everything written is on the disk.
    mutating func sync() {
        bytes.append(contentsOf: unsynced)
        unsynced.removeAll(keepingCapacity: true)
        syncedEnd = bytes.count
    }
}

extension SimulatedWorld {
    // MARK: - The decision log

    /// The coordinator's machine loses power: the page cache's unsynced log bytes land, or do
    /// not, or land torn.
    mutating func crashDecisionLog() {
        let tail = log.unsynced
        log.unsynced.removeAll(keepingCapacity: true)
        defer { log.failedSync = false }
        guard !tail.isEmpty else { return }
        let start = log.bytes.count
        let sector = RecordFraming.sectorBytes
        let boundary = (start / sector + 1) * sector
        if faults.logTornWritePerMille > 0 && boundary < start + tail.count {
            // A seed that tears writes tears every batch that spans a sector boundary (few do:
            // batches are small) the way only such a batch can tear: its pages landed out of
            // order, a later sector did and the first did not (it still reads as the zeros
            // preallocated there), whole records after the hole.
            log.bytes.append(contentsOf: repeatElement(0, count: boundary - start))
            log.bytes.append(contentsOf: tail[(boundary - start)...])
            cases[.logBatchTornAtASector] += 1
            injected[.tornLogWrite] += 1
        } else if chance(faults.logTornWritePerMille) {
            // A prefix that ends inside the tail (a record cut short), or all of it.
            let landed = random.next() % 3 == 0 ? tail.count : 1 + pick(tail.count - 1)
            log.bytes.append(contentsOf: tail[..<landed])
            if landed < tail.count { injected[.unsyncedLogRecordsLost] += 1 }
            injected[.tornLogWrite] += 1
        } else if random.next() % 2 == 0 {
            log.bytes.append(contentsOf: tail) // the kernel had written it all back
        } else {
            injected[.unsyncedLogRecordsLost] += 1
            if log.failedSync { cases[.writeLostAfterFailedLogSync] += 1 }
        }
        if random.next() % 2 == 0 {
            // Space the writer preallocated: zeros up to the next 4 KiB.
            let end = (log.bytes.count / 4_096 + 1) * 4_096
            log.bytes.append(contentsOf: repeatElement(0, count: end - log.bytes.count))
        }
    }

    /// Recovery's reading of the log, as `SegmentScanner` does it: the engine's scan over
    /// everything written since the last recovery, the torn tail cut, the whole records decoded.
    mutating func recoverDecisionLog() {
        let scan = RecordFraming.scan(log.bytes, from: log.recoveredEnd, unsyncedWindowBytes: RecordFraming.maxUnsyncedBytes)
        switch scan.tail {
        case .clean, .zeroFilled:
            break
        case .torn:
            cases[.tornLogTailTruncated] += 1
        case .corrupt(let offset, let reason):
            violation("log", "recovery calls the decision log corrupt at byte \(offset) (\(reason)); a crash can only tear it")
        }
        if scan.validEnd < log.syncedEnd {
            violation("durability", "recovery cut the decision log at byte \(scan.validEnd), inside the \(log.syncedEnd) bytes fsync acknowledged")
        }
        for frame in scan.records {
            guard let record = try? DecisionRecord(decoding: frame.payload) else {
                violation("log", "undecodable record at byte \(frame.offset)")
                continue
            }
            switch record {
            case .segmentHeader(_, let epoch), .epochStarted(let epoch):
                log.maxEpoch = max(log.maxEpoch, epoch)
            case .commit(let tx, let participants):
                log.commits.append((tx, participants))
                if let slot = slot(of: tx), !ledger[slot].durable {
                    // Written, never acknowledged, landed anyway: durable now, and it decides.
                    ledger[slot].durable = true
                    cases[.unsyncedCommitSurvived] += 1
                }
            case .end(let tx):
                log.ended.insert(tx)
            }
        }
        // The torn tail is cut (and the zeros after the records), so the next write goes there.
        log.bytes.removeSubrange(scan.validEnd...)
        log.syncedEnd = log.bytes.count
        log.recoveredEnd = log.bytes.count
    }

    // MARK: - A bank's prepare persist

    /// The persisted form of a prepared write-set, framed as the log's records are.
    static func framedWriteSet(_ tx: TransactionID, _ operations: [Operation], _ writers: [ParticipantID]) -> [UInt8] {
        var writer = BinaryWriter(capacity: 64)
        writer.write(tx.rawValue)
        writer.write(UInt32(writers.count))
        for participant in writers { writer.write(participant.name) }
        writer.write(bytes: OperationCodec.encode(operations))
        return RecordFraming.frame(writer.bytes)
    }

    static func decodeWriteSet(_ payload: [UInt8]) throws -> (TransactionID, [Operation], [ParticipantID]) {
        var reader = BinaryReader(payload)
        let tx = TransactionID(rawValue: try reader.readUInt64())
        var writers: [ParticipantID] = []
        for _ in 0..<(try reader.readUInt32()) {
            let name = try reader.readString(maxBytes: ParticipantID.maxLengthBytes)
            guard let participant = ParticipantID(name) else { throw BinaryReader.Error.invalid("participant \(name)") }
            writers.append(participant)
        }
        let operations = try OperationCodec.decode(try reader.readBytes())
        return (tx, operations, writers)
    }

    /// A bank loses power while persisting a prepared write-set: by the seed's torn-write rate
    /// a prefix of its bytes lands (all of them, sometimes); otherwise none do. Staging
    /// validates before it writes, so a write-set that would be refused is never written.
    mutating func crashPersist(_ index: Int) {
        guard let persisting = banks[index].persisting else { return }
        banks[index].persisting = nil
        guard chance(faults.participantTornWritePerMille), !isCommitted(persisting.tx, at: index) else { return }
        let (failure, observed) = validate(index, persisting.tx, persisting.operations)
        guard failure == nil else { return }
        let bytes = Self.framedWriteSet(persisting.tx, persisting.operations, persisting.writers)
        let landed = random.next() % 4 == 0 ? bytes.count : pick(bytes.count)
        banks[index].torn = (Array(bytes[..<landed]), persisting, observed)
        if landed < bytes.count { injected[.tornParticipantWrite] += 1 }
    }

    /// The bank's recovery reads the tail a crash left: a whole write-set is prepared, anything
    /// less is dropped.
    mutating func recoverPersist(_ index: Int) {
        guard let torn = banks[index].torn else { return }
        banks[index].torn = nil
        let scan = RecordFraming.scan(torn.bytes)
        if case .corrupt(let offset, let reason) = scan.tail {
            violation("torn-write", "\(names[index]) calls a torn write-set corrupt at byte \(offset) (\(reason))")
        }
        guard let frame = scan.records.first else {
            cases[.tornWriteSetDropped] += 1
            return
        }
        let persisted = torn.writeSet
        guard let (tx, operations, writers) = try? Self.decodeWriteSet(frame.payload),
              tx == persisted.tx, operations == persisted.operations, writers == persisted.writers else {
            violation("torn-write", "\(names[index]) recovered a write-set that is not the one it persisted for \(persisted.tx)")
            return
        }
        cases[.writeSetLandedWhole] += 1
        banks[index].prepared[tx] = (operations, writers, nowUs)
        setStaged(tx, index, torn.observed)
    }
}

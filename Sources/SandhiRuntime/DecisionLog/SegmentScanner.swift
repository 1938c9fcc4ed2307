import SandhiIO
import SandhiEngine

/// Reads and validates every segment of a decision-log directory without changing anything, so
/// that `open` can refuse a corrupt log before it truncates or deletes a single byte, and
/// `sandhi log dump` can share exactly the same rules.
///
/// Rules: every segment is framed per `RecordFraming`; every record decodes; the first record of
/// a segment is its own `.segmentHeader` and no other record is a header. Only the LAST segment
/// may end in a torn tail (an append that a crash cut short); a torn record anywhere else would
/// mean records after it were lost, so it is corruption. The last segment may also hold no whole
/// record at all: the crash came between creating the file and its first write reaching disk.
///
/// In the last segment only, a damaged record within `RecordFraming.maxUnsyncedBytes` of the end
/// of its non-zero content that shows a hole of zeros where a sector did not land is a torn tail
/// too (`RecordFraming` rule 9): a power cut during a multi-page batch can leave such a hole with
/// whole records after it, none of them ever acknowledged, because the store never lets more
/// than that many bytes go unsynced. Every earlier segment was synced whole before the next one
/// got a byte, so there the window is 0.
///
/// Zero bytes after the last record of the LAST segment are the space the store preallocates
/// ahead of its writes (see `DecisionLogStore`): not a torn tail, nothing to note or cut. The
/// store trims that space before it rolls to the next segment, so in any other segment a zero
/// tail is corruption like any other torn tail there.
enum SegmentScanner {
    struct Segment {
        var number: UInt64
        var path: String
        var fileBytes: Int
        /// End of the last whole record: where the next append goes once a torn tail is cut.
        /// Everything from here to `fileBytes` is zero unless `tornTail` is set.
        var validEnd: Int
        /// Only ever set on the last segment.
        var tornTail: (offset: Int, reason: String)?
        /// Highest epoch in this segment's header and epochStarted records (0 if it has none).
        var maxEpoch: UInt32
        var recordCount: Int
    }

    struct Result {
        /// Ascending by number; the last one is the segment appends continue in.
        var segments: [Segment]
        var recovered: RecoveredDecisionLog
    }

    /// - Parameter fromDisk: read each segment as the disk holds it, not as the page cache may
    ///   (`FileSystem.readFromDisk`): what opening the log for writing does, since it will act on
    ///   what it finds. A read-only look (`read`) changes nothing, syncs included.
    static func scan(directory: String, files: any FileSystem, fromDisk: Bool = false) throws(DecisionLogError) -> Result {
        var numbers: [UInt64] = []
        var notes: [String] = []
        for name in try logIO { () throws(FileSystemError) in try files.listDirectory(directory) } {
            if let number = SegmentName.number(fromFileName: name) {
                numbers.append(number)
            } else if name.hasPrefix(SegmentName.prefix) {
                notes.append("ignored \(name): not a canonical segment file name")
            }
        }
        numbers.sort()

        var result = Result(segments: [], recovered: RecoveredDecisionLog(source: .segmentFiles(directory: directory), notes: notes))
        for (index, number) in numbers.enumerated() {
            if fromDisk {
                let path = SegmentName.path(directory: directory, number: number)
                try logIO { () throws(FileSystemError) in try files.readFromDisk(path) }
            }
            let segment = try scanSegment(
                directory: directory, number: number, isLast: index == numbers.count - 1, files: files,
                into: &result.recovered)
            result.segments.append(segment)
        }
        assert(result.segments.map(\.number) == numbers)
        return result
    }

    private static func scanSegment(
        directory: String, number: UInt64, isLast: Bool, files: any FileSystem, into recovered: inout RecoveredDecisionLog
    ) throws(DecisionLogError) -> Segment {
        let path = SegmentName.path(directory: directory, number: number)
        let bytes = try logIO { () throws(FileSystemError) in try files.readAll(path) }
        let scan = RecordFraming.scan(bytes, unsyncedWindowBytes: isLast ? RecordFraming.maxUnsyncedBytes : 0)

        // Decode every whole record before judging the tail, so the error names the earliest
        // damaged byte.
        var maxEpoch: UInt32 = 0
        var decoded: [(position: LogPosition, record: DecisionRecord)] = []
        decoded.reserveCapacity(scan.records.count)
        for (index, frame) in scan.records.enumerated() {
            let record: DecisionRecord
            do {
                record = try DecisionRecord(decoding: frame.payload)
            } catch {
                throw .corrupt(file: path, offset: frame.offset, reason: "undecodable record: \(error)")
            }
            if index == 0 {
                guard case .segmentHeader = record else {
                    throw .corrupt(file: path, offset: frame.offset, reason: "first record is not a segment header")
                }
            }
            if let epoch = record.epoch, epoch > TransactionID.maxEpoch {
                throw .corrupt(file: path, offset: frame.offset,
                               reason: "epoch \(epoch) exceeds the largest epoch \(TransactionID.maxEpoch)")
            }
            switch record {
            case .segmentHeader(let headerSegment, let epoch):
                guard index == 0 else {
                    throw .corrupt(file: path, offset: frame.offset, reason: "segment header in the middle of a segment")
                }
                guard headerSegment == number else {
                    throw .corrupt(file: path, offset: frame.offset,
                                   reason: "segment header names segment \(headerSegment), file is segment \(number)")
                }
                maxEpoch = max(maxEpoch, epoch)
            case .epochStarted(let epoch):
                maxEpoch = max(maxEpoch, epoch)
            case .commit, .end:
                break
            }
            decoded.append((LogPosition(segment: number, offset: UInt64(frame.offset)), record))
        }

        var tornTail: (offset: Int, reason: String)?
        switch scan.tail {
        case .clean:
            break
        case .zeroFilled(let offset):
            guard isLast else {
                throw .corrupt(file: path, offset: offset, reason:
                    "torn record in a segment that is not the last (\(bytes.count - offset) zero bytes after the last record)")
            }
        case .corrupt(let offset, let reason):
            throw .corrupt(file: path, offset: offset, reason: reason)
        case .torn(let offset, let reason):
            guard isLast else {
                throw .corrupt(file: path, offset: offset, reason: "torn record in a segment that is not the last (\(reason))")
            }
            tornTail = (offset, reason)
        }
        if decoded.isEmpty && !isLast {
            throw .corrupt(file: path, offset: 0, reason: "segment has no header record")
        }

        for (position, record) in decoded {
            switch record {
            case .commit(let transaction, let participants):
                recovered.unfinishedCommits[transaction] = participants
            case .end(let transaction):
                recovered.unfinishedCommits.removeValue(forKey: transaction)
            case .segmentHeader, .epochStarted:
                break
            }
            recovered.records.append((position, record))
        }
        recovered.maxEpoch = max(recovered.maxEpoch, maxEpoch)
        assert(scan.validEnd <= bytes.count)
        return Segment(number: number, path: path, fileBytes: bytes.count, validEnd: scan.validEnd,
                       tornTail: tornTail, maxEpoch: maxEpoch, recordCount: decoded.count)
    }
}

extension DecisionRecord {
    /// The epoch a header or epochStarted record carries.
    fileprivate var epoch: UInt32? {
        switch self {
        case .segmentHeader(_, let epoch), .epochStarted(let epoch): return epoch
        case .commit, .end: return nil
        }
    }
}

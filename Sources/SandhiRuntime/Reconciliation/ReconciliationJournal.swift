import SandhiIO
import Glibc
import Logging
import SandhiEngine

/// The durable record of heuristic cases and every operator action on them: one append-only
/// file (`DIR/reconciliation.log`) of framed, CRC32C-checksummed `ReconciliationRecord`s,
/// the same framing as the decision log. Never truncated except for a torn final write, and
/// never reclaimed: a settled case stays queryable for good (the decision log may forget a
/// transaction once its END is durable; this file is where a mixed outcome is remembered).
///
/// Records are rare (a heuristic outcome, an operator's action), so each append is written and
/// fdatasynced before it returns: the coordinator's next effect (a FORGET that lets a
/// participant drop its own copy) may depend on it.
public final class ReconciliationJournal: @unchecked Sendable {
    public let path: String
    private let files: any FileSystem
    private var descriptor: Int32
    private var endOffset: Int
    /// A failed write or fsync leaves the file's state unknown: every later append fails too.
    private var failure: DecisionLogError?
    private let lock = Lock(())

    /// Opens (creating if absent) and replays the journal. A torn final record is cut off and
    /// said so in `notes`; damage anywhere else is an error naming the byte offset.
    public static func open(path: String, fileSystem files: any FileSystem = PosixFileSystem(),
                            logger: Logger) throws -> (ReconciliationJournal, ReconciliationQueue, notes: [String]) {
        var notes: [String] = []
        let exists = files.fileExists(path)
        // What the disk holds, not what a failed fsync may have left in the page cache (F1).
        if exists { try logIO { () throws(FileSystemError) in try files.readFromDisk(path) } }
        let bytes = exists ? try logIO { () throws(FileSystemError) in try files.readAll(path) } : []
        let scan = RecordFraming.scan(bytes, unsyncedWindowBytes: Self.unsyncedWindowBytes)
        var queue = ReconciliationQueue()
        for record in scan.records {
            let decoded: ReconciliationRecord
            do {
                decoded = try ReconciliationCodec.decode(record.payload)
            } catch {
                throw DecisionLogError.io("\(path): reconciliation record at byte \(record.offset) does not decode: \(error)")
            }
            guard Self.fits(decoded, queue) else {
                throw DecisionLogError.io("\(path): reconciliation record at byte \(record.offset) does not follow from the records before it")
            }
            queue.apply(decoded)
        }
        switch scan.tail {
        case .clean, .zeroFilled:
            break
        case .torn(let offset, let reason):
            try logIO { () throws(FileSystemError) in try files.truncate(path, toBytes: offset) }
            notes.append("\(path): cut a torn final write at byte \(offset) (\(reason))")
            logger.warning("reconciliation journal: torn tail truncated", metadata: ["path": "\(path)", "offset": "\(offset)"])
        case .corrupt(let offset, let reason):
            throw DecisionLogError.io("\(path): damaged record at byte \(offset): \(reason)")
        }
        let descriptor = exists ? try logIO { () throws(FileSystemError) in try files.openForWriting(path) } : try logIO { () throws(FileSystemError) in try files.createForWriting(path) }
        if !exists { try logIO { () throws(FileSystemError) in try files.syncDirectory(FileSystemPath.parentDirectory(of: path)) } }
        let journal = ReconciliationJournal(path: path, files: files, descriptor: descriptor, endOffset: scan.validEnd)
        return (journal, queue, notes)
    }

    /// Every append is synced before the next is written, so only the last record can ever be
    /// torn, and a torn last record has nothing but the end of the file after it (the framing's
    /// rules 2, 3, 6 and 7). The window for tears with whole records after them (rule 9) is
    /// therefore none: damage to a record followed by others is decay of synced data, an
    /// error naming its offset, never a cut that would drop settled cases.
    static let unsyncedWindowBytes = 0

    /// Whether applying `record` to `queue` keeps it consistent (the queue's own checks are
    /// preconditions, for records the engine made; a file is checked before it is believed).
    public static func fits(_ record: ReconciliationRecord, _ queue: ReconciliationQueue) -> Bool {
        switch record {
        case .opened(let heuristicCase): return queue[heuristicCase.transaction] == nil
        case .outcomeLearned(let tx, _): return queue[tx] != nil
        case .entry(let tx, let entry): return queue[tx]?.status == entry.before
        }
    }

    private init(path: String, files: any FileSystem, descriptor: Int32, endOffset: Int) {
        self.path = path
        self.files = files
        self.descriptor = descriptor
        self.endOffset = endOffset
    }

    deinit { close() }

    public func append(_ record: ReconciliationRecord) throws {
        try lock.withLock { _ in
            if let failure { throw failure }
            let bytes = RecordFraming.frame(ReconciliationCodec.encode(record))
            do {
                try logIO { () throws(FileSystemError) in try files.writeAll(descriptor, bytes, atOffset: endOffset, path: path) }
                try logIO { () throws(FileSystemError) in try files.dataSync(descriptor, path: path) }
            } catch let error as DecisionLogError {
                failure = error
                throw error
            }
            endOffset += bytes.count
        }
    }

    public func close() {
        lock.withLock { _ in
            if descriptor >= 0 {
                files.close(descriptor)
                descriptor = -1
            }
        }
    }

    /// Reads the journal without opening it for writing (for `sandhi reconcile list` while
    /// nothing else runs, and for `sandhi check`). A torn tail is ignored, not cut.
    public static func read(path: String, fileSystem files: any FileSystem = PosixFileSystem()) throws -> ReconciliationQueue {
        guard files.fileExists(path) else { return ReconciliationQueue() }
        let bytes = try logIO { () throws(FileSystemError) in try files.readAll(path) }
        let scan = RecordFraming.scan(bytes, unsyncedWindowBytes: Self.unsyncedWindowBytes)
        if case .corrupt(let offset, let reason) = scan.tail {
            throw DecisionLogError.io("\(path): damaged record at byte \(offset): \(reason)")
        }
        var queue = ReconciliationQueue()
        for record in scan.records {
            guard let decoded = try? ReconciliationCodec.decode(record.payload), fits(decoded, queue) else {
                throw DecisionLogError.io("\(path): reconciliation record at byte \(record.offset) is not valid")
            }
            queue.apply(decoded)
        }
        return queue
    }
}

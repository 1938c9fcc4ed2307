/// The file operations the coordinator's durable state is made of: the decision-log segments,
/// the reconciliation journal, `sandhi.toml`, and the embedded banks' SQLite files (when a bank
/// is opened through `FileSystemVFS`; in production SQLite keeps its own VFS). Production uses `PosixFileSystem`; tests and
/// the simulator use `SimulatedDisk`, which keeps what was synced apart from what is only in
/// the page cache, so that a power cut loses exactly what a real one could. Every durability
/// argument in the code is a call made here (a `dataSync`, a `syncDirectory`), and so a test
/// can watch it matter.
///
/// Calls are made from one thread per open store; a descriptor is used by one thread at a time.
/// Failures are `FileSystemError`s: `<what> <path> (<strerror>)` and the errno.
public protocol FileSystem: Sendable {
    /// Opens an existing file for writing at explicit offsets (not O_APPEND).
    func openForWriting(_ path: String) throws(FileSystemError) -> Int32
    /// Creates a new file for writing; an existing one of that name is an error (O_EXCL).
    func createForWriting(_ path: String) throws(FileSystemError) -> Int32
    /// Creates `path` empty, truncating whatever was there.
    func createReplacing(_ path: String) throws(FileSystemError) -> Int32
    /// Opens `path` for reading and writing at explicit offsets, creating it empty if `create`
    /// and it does not exist (a SQLite file, which is read as well as written).
    func openForReadingAndWriting(_ path: String, create: Bool) throws(FileSystemError) -> Int32
    /// pread(2) of up to `count` bytes at `offset`: fewer only at the end of the file.
    func read(_ fd: Int32, count: Int, atOffset offset: Int, path: String) throws(FileSystemError) -> [UInt8]
    /// pread(2) into `buffer`, filling it but at the end of the file; returns the bytes read.
    /// For callers that own a buffer already (SQLite, through `FileSystemVFS`): no array made.
    func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, atOffset offset: Int, path: String) throws(FileSystemError) -> Int
    /// The file's size as reads see it now.
    func size(_ fd: Int32, path: String) throws(FileSystemError) -> Int
    func close(_ fd: Int32)
    /// pwrite(2) of all of `bytes` at `offset`.
    func writeAll(_ fd: Int32, _ bytes: [UInt8], atOffset offset: Int, path: String) throws(FileSystemError)
    /// pwrite(2) of all of `bytes` at `offset`, from a buffer the caller owns.
    func write(_ fd: Int32, from bytes: UnsafeRawBufferPointer, atOffset offset: Int, path: String) throws(FileSystemError)
    /// Writes `count` zero bytes at `offset` (preallocation).
    func writeZeros(_ fd: Int32, atOffset offset: Int, count: Int, path: String) throws(FileSystemError)
    /// fdatasync(2): the data and the size.
    func dataSync(_ fd: Int32, path: String) throws(FileSystemError)
    /// fsync(2): data and all metadata.
    func fullSync(_ fd: Int32, path: String) throws(FileSystemError)
    /// fsync of a directory: the names created, renamed or unlinked in it become durable.
    func syncDirectory(_ path: String) throws(FileSystemError)
    /// ftruncate(2) of an open file; not durable by itself.
    func truncate(_ fd: Int32, toBytes length: Int, path: String) throws(FileSystemError)
    func unlink(_ path: String) throws(FileSystemError)
    /// rename(2); durable once the directory is synced.
    func rename(_ source: String, to destination: String) throws(FileSystemError)
    /// The whole file as it reads now.
    func readAll(_ path: String) throws(FileSystemError) -> [UInt8]
    /// Makes what reads of `path` see what the disk holds: syncs the file, then drops its
    /// pages from the page cache, so the next read comes from the disk. An earlier process
    /// whose fsync failed may have left pages in the cache marked clean, holding bytes the disk
    /// never got (fsyncgate): a reopen that read them would trust what a power cut will take
    /// away. Opening durable state calls this first. A sync that fails is the caller's error.
    func readFromDisk(_ path: String) throws(FileSystemError)
    /// Names in a directory, without `.` and `..`.
    func listDirectory(_ path: String) throws(FileSystemError) -> [String]
    func directoryExists(_ path: String) -> Bool
    func fileExists(_ path: String) -> Bool
    /// mkdir(2); an existing directory is not an error.
    func makeDirectory(_ path: String) throws(FileSystemError)
}

extension FileSystem {
    /// Through `read(_:count:atOffset:path:)`, for a file system with no faster way.
    public func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, atOffset offset: Int, path: String) throws(FileSystemError) -> Int {
        let bytes = try read(fd, count: buffer.count, atOffset: offset, path: path)
        buffer.copyBytes(from: bytes)
        return bytes.count
    }

    /// Through `writeAll`, for a file system with no faster way.
    public func write(_ fd: Int32, from bytes: UnsafeRawBufferPointer, atOffset offset: Int, path: String) throws(FileSystemError) {
        try writeAll(fd, [UInt8](bytes), atOffset: offset, path: path)
    }

    /// mkdir -p, syncing each parent whose entry was created so the directory survives a crash.
    public func makeDirectories(_ path: String) throws(FileSystemError) {
        if directoryExists(path) { return }
        let parent = FileSystemPath.parentDirectory(of: path)
        if parent != path { try makeDirectories(parent) }
        try makeDirectory(path)
        try syncDirectory(parent)
    }

    /// Cuts a file to `length` bytes and makes the cut durable before returning.
    public func truncate(_ path: String, toBytes length: Int) throws(FileSystemError) {
        precondition(length >= 0)
        let fd = try openForWriting(path)
        defer { close(fd) }
        try truncate(fd, toBytes: length, path: path)
        try fullSync(fd, path: path)
    }

    /// Replaces `path` with `bytes` atomically and durably: a temporary file written and
    /// synced, renamed over it, and the directory synced (without that last sync a power cut
    /// can bring the old file back, or none).
    public func replaceFile(_ path: String, with bytes: [UInt8]) throws(FileSystemError) {
        let temporary = path + ".tmp"
        let fd = try createReplacing(temporary)
        do {
            try writeAll(fd, bytes, atOffset: 0, path: temporary)
            try fullSync(fd, path: temporary)
        } catch {
            close(fd)
            throw error
        }
        close(fd)
        try rename(temporary, to: path)
        try syncDirectory(FileSystemPath.parentDirectory(of: path))
    }
}

/// Path arithmetic, the same for every file system.
public enum FileSystemPath {
    public static func parentDirectory(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        if slash == trimmed.startIndex { return "/" }
        return String(trimmed[..<slash])
    }
}

extension Array where Element == UInt8 {
    /// `withUnsafeBytes` for a body that throws only `FileSystemError` (the standard library's
    /// version rethrows untyped).
    func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws(FileSystemError) -> Result) throws(FileSystemError) -> Result {
        try withUnsafeBytes { raw in Swift.Result { () throws(FileSystemError) in try body(raw) } }.get()
    }

    /// Appends zeros up to `size` bytes (nothing if it is that long already): a file growing
    /// under a write past its end. Through a zeroed array, which appends by memcpy; appending a
    /// `repeatElement` goes element by element.
    mutating func growZeroFilled(to size: Int) {
        guard count < size else { return }
        append(contentsOf: [UInt8](repeating: 0, count: size - count))
    }

    /// `withUnsafeMutableBytes` for a body that throws only `FileSystemError`.
    mutating func withMutableBytes<Result>(_ body: (UnsafeMutableRawBufferPointer) throws(FileSystemError) -> Result) throws(FileSystemError) -> Result {
        try withUnsafeMutableBytes { raw in Swift.Result { () throws(FileSystemError) in try body(raw) } }.get()
    }
}

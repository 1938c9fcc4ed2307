#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SandhiEngine

/// A file system that does everything through another one (the machine's) and records each
/// change it made, in the order the calls returned, as an `IOTrace`: the written bytes, every
/// sync, every name created, renamed or unlinked. A power-loss test runs the real binary on
/// one, then replays the trace up to many cut points into a `SimulatedDisk` to build the disks
/// a power cut at each of those instants could have left.
///
/// Each entry is appended with one write(2) to the trace file while a lock is held, so the
/// trace survives the process being killed (at worst its last entry is torn) and entries from
/// different threads never interleave. Reads are not recorded. Slow by design: a test tool.
public final class RecordingFileSystem: FileSystem, @unchecked Sendable {
    private let base: any FileSystem
    private let trace: Lock<Int32>
    public let tracePath: String

    /// Appends to the trace at `tracePath` (created if missing).
    public init(tracePath: String, base: any FileSystem = PosixFileSystem()) throws(FileSystemError) {
        let fd = open(tracePath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io("open I/O trace \(tracePath)", errno: errno) }
        self.base = base
        self.tracePath = tracePath
        trace = Lock(fd)
    }

    deinit { trace.withLock { _ = Glibc.close($0) } }

    /// Records an entry that is not a file operation (an acknowledgement to a client).
    public func record(_ entry: IOTrace.Entry) {
        let bytes = IOTrace.encode(entry)
        trace.withLock { fd in
            var written = 0
            while written < bytes.count {
                let result = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
                if result < 0 && errno == EINTR { continue }
                // A trace that cannot be written makes the test meaningless: stop loudly.
                precondition(result > 0, "cannot write the I/O trace \(tracePath): \(String(cString: strerror(errno)))")
                written += result
            }
        }
    }

    // MARK: - FileSystem

    public func openForWriting(_ path: String) throws(FileSystemError) -> Int32 { try base.openForWriting(path) }

    public func createForWriting(_ path: String) throws(FileSystemError) -> Int32 {
        let fd = try base.createForWriting(path)
        record(.create(path: path))
        return fd
    }

    public func createReplacing(_ path: String) throws(FileSystemError) -> Int32 {
        let fd = try base.createReplacing(path)
        record(.create(path: path))
        return fd
    }

    public func openForReadingAndWriting(_ path: String, create: Bool) throws(FileSystemError) -> Int32 {
        // One thread owns a file at a time, so nothing creates it between the look and the open.
        let isNew = create && !base.fileExists(path)
        let fd = try base.openForReadingAndWriting(path, create: create)
        if isNew { record(.create(path: path)) }
        return fd
    }

    public func close(_ fd: Int32) { base.close(fd) }

    public func writeAll(_ fd: Int32, _ bytes: [UInt8], atOffset offset: Int, path: String) throws(FileSystemError) {
        try base.writeAll(fd, bytes, atOffset: offset, path: path)
        record(.write(path: path, offset: offset, bytes: bytes))
    }

    public func writeZeros(_ fd: Int32, atOffset offset: Int, count: Int, path: String) throws(FileSystemError) {
        try base.writeZeros(fd, atOffset: offset, count: count, path: path)
        record(.writeZeros(path: path, offset: offset, count: count))
    }

    public func dataSync(_ fd: Int32, path: String) throws(FileSystemError) {
        try base.dataSync(fd, path: path)
        record(.dataSync(path: path))
    }

    public func fullSync(_ fd: Int32, path: String) throws(FileSystemError) {
        try base.fullSync(fd, path: path)
        record(.fullSync(path: path))
    }

    public func syncDirectory(_ path: String) throws(FileSystemError) {
        try base.syncDirectory(path)
        record(.syncDirectory(path: path))
    }

    public func truncate(_ fd: Int32, toBytes length: Int, path: String) throws(FileSystemError) {
        try base.truncate(fd, toBytes: length, path: path)
        record(.truncate(path: path, bytes: length))
    }

    public func unlink(_ path: String) throws(FileSystemError) {
        try base.unlink(path)
        record(.unlink(path: path))
    }

    public func rename(_ source: String, to destination: String) throws(FileSystemError) {
        try base.rename(source, to: destination)
        record(.rename(from: source, to: destination))
    }

    public func readAll(_ path: String) throws(FileSystemError) -> [UInt8] { try base.readAll(path) }

    public func read(_ fd: Int32, count: Int, atOffset offset: Int, path: String) throws(FileSystemError) -> [UInt8] {
        try base.read(fd, count: count, atOffset: offset, path: path)
    }

    public func size(_ fd: Int32, path: String) throws(FileSystemError) -> Int { try base.size(fd, path: path) }

    /// A sync of data already written: nothing for a replay to do, so not recorded.
    public func readFromDisk(_ path: String) throws(FileSystemError) { try base.readFromDisk(path) }

    public func listDirectory(_ path: String) throws(FileSystemError) -> [String] { try base.listDirectory(path) }

    public func directoryExists(_ path: String) -> Bool { base.directoryExists(path) }

    public func fileExists(_ path: String) -> Bool { base.fileExists(path) }

    public func makeDirectory(_ path: String) throws(FileSystemError) {
        let existed = base.directoryExists(path)
        try base.makeDirectory(path)
        if !existed { record(.makeDirectory(path: path)) }
    }
}

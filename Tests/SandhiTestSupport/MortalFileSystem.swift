import Glibc
import SandhiIO

/// A process's view of a `SimulatedDisk` that dies (is killed) at an instant: once it has
/// made `diesAfterCalls` changes (writes, syncs, names), every later call fails and none
/// reaches the disk. Unlike `SimulatedDisk.cutPower`, the machine stays up: the
/// page cache keeps everything the process wrote, synced or not, and a second process (on the
/// disk itself, after `restartProcess`) finds it there. Then a power cut can show what that
/// second process had to sync on the first one's behalf.
public final class MortalFileSystem: FileSystem, @unchecked Sendable {
    public let disk: SimulatedDisk
    private let callsLeft: Lock<Int>

    public init(_ disk: SimulatedDisk, diesAfterCalls calls: Int) {
        self.disk = disk
        callsLeft = Lock(calls)
    }

    /// Counts one change toward the death; throws once dead.
    private func change(_ what: String) throws(FileSystemError) {
        try callsLeft.withLock { left throws(FileSystemError) in
            guard left > 0 else {
                left = 0
                throw .io("\(what) [process killed]", errno: EIO)
            }
            left -= 1
        }
    }

    private func alive(_ what: String) throws(FileSystemError) {
        if callsLeft.withLock({ $0 }) == 0 { throw .io("\(what) [process killed]", errno: EIO) }
    }

    public func openForWriting(_ path: String) throws(FileSystemError) -> Int32 {
        try alive("open \(path)")
        return try disk.openForWriting(path)
    }

    public func createForWriting(_ path: String) throws(FileSystemError) -> Int32 {
        try change("create \(path)")
        return try disk.createForWriting(path)
    }

    public func createReplacing(_ path: String) throws(FileSystemError) -> Int32 {
        try change("create \(path)")
        return try disk.createReplacing(path)
    }

    public func openForReadingAndWriting(_ path: String, create: Bool) throws(FileSystemError) -> Int32 {
        if create && !disk.fileExists(path) { try change("create \(path)") } else { try alive("open \(path)") }
        return try disk.openForReadingAndWriting(path, create: create)
    }

    public func read(_ fd: Int32, count: Int, atOffset offset: Int, path: String) throws(FileSystemError) -> [UInt8] {
        try alive("pread \(path)")
        return try disk.read(fd, count: count, atOffset: offset, path: path)
    }

    public func size(_ fd: Int32, path: String) throws(FileSystemError) -> Int {
        try alive("fstat \(path)")
        return try disk.size(fd, path: path)
    }

    public func close(_ fd: Int32) { disk.close(fd) }

    public func writeAll(_ fd: Int32, _ bytes: [UInt8], atOffset offset: Int, path: String) throws(FileSystemError) {
        try change("pwrite \(path)")
        try disk.writeAll(fd, bytes, atOffset: offset, path: path)
    }

    public func writeZeros(_ fd: Int32, atOffset offset: Int, count: Int, path: String) throws(FileSystemError) {
        try change("pwrite \(path)")
        try disk.writeZeros(fd, atOffset: offset, count: count, path: path)
    }

    public func dataSync(_ fd: Int32, path: String) throws(FileSystemError) {
        try change("fdatasync \(path)")
        try disk.dataSync(fd, path: path)
    }

    public func fullSync(_ fd: Int32, path: String) throws(FileSystemError) {
        try change("fsync \(path)")
        try disk.fullSync(fd, path: path)
    }

    public func syncDirectory(_ path: String) throws(FileSystemError) {
        try change("fsync directory \(path)")
        try disk.syncDirectory(path)
    }

    public func truncate(_ fd: Int32, toBytes length: Int, path: String) throws(FileSystemError) {
        try change("ftruncate \(path)")
        try disk.truncate(fd, toBytes: length, path: path)
    }

    public func unlink(_ path: String) throws(FileSystemError) {
        try change("unlink \(path)")
        try disk.unlink(path)
    }

    public func rename(_ source: String, to destination: String) throws(FileSystemError) {
        try change("rename \(source)")
        try disk.rename(source, to: destination)
    }

    public func readAll(_ path: String) throws(FileSystemError) -> [UInt8] {
        try alive("read \(path)")
        return try disk.readAll(path)
    }

    /// A sync (a change toward the death) that then reads from the disk.
    public func readFromDisk(_ path: String) throws(FileSystemError) {
        try change("fdatasync \(path)")
        try disk.readFromDisk(path)
    }

    public func listDirectory(_ path: String) throws(FileSystemError) -> [String] {
        try alive("open directory \(path)")
        return try disk.listDirectory(path)
    }

    public func directoryExists(_ path: String) -> Bool { disk.directoryExists(path) }

    public func fileExists(_ path: String) -> Bool { disk.fileExists(path) }

    public func makeDirectory(_ path: String) throws(FileSystemError) {
        try change("mkdir \(path)")
        try disk.makeDirectory(path)
    }
}

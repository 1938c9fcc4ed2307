#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file system of the machine: each call one system call (or a loop of them), each turning
/// failure into a `FileSystemError` (`<what> <path> (<strerror>)`) with the errno captured
/// right after the call.
///
/// Plain POSIX rather than FileHandle: we need pwrite, fdatasync, ftruncate and directory fsync,
/// and we must know exactly which call failed (fsyncgate: a failed sync is never retried).
public struct PosixFileSystem: FileSystem {
    public init() {}

    static let segmentMode: mode_t = 0o644
    /// The errno a simulated failed fsync reports.
    public static let injectedFaultErrno = EIO
    /// Source of the zeros `writeZeros` writes; big enough that a 1 MiB extension is 16 calls.
    private static let zeroBlock = [UInt8](repeating: 0, count: 64 << 10)

    /// Opens an existing segment for writing at explicit offsets. Not O_APPEND: the file may
    /// extend past the last record (preallocated zeros), and records go right after that record.
    public func openForWriting(_ path: String) throws(FileSystemError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("open \(path)", errno: errno) }
        return fd
    }

    /// Creates a new segment for writing at explicit offsets. O_EXCL because a segment number is
    /// never reused: an existing file of that name means something else wrote into our directory.
    public func createForWriting(_ path: String) throws(FileSystemError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, Self.segmentMode)
        guard fd >= 0 else { throw .io("create \(path)", errno: errno) }
        return fd
    }

    public func close(_ fd: Int32) {
        precondition(fd >= 0, "closing fd \(fd)")
        // Linux always releases the descriptor, even when close reports an error; retrying could
        // close an unrelated descriptor reused by another thread. Durability comes from sync().
        _ = systemClose(fd)
    }

    /// pwrite(2) of all of `bytes` at `offset` (short writes and EINTR are continued).
    public func writeAll(_ fd: Int32, _ bytes: [UInt8], atOffset offset: Int, path: String) throws(FileSystemError) {
        try writePrefix(fd, bytes, count: bytes.count, atOffset: offset, path: path)
    }

    /// Writes `count` zero bytes starting at `offset`.
    public func writeZeros(_ fd: Int32, atOffset offset: Int, count: Int, path: String) throws(FileSystemError) {
        precondition(offset >= 0 && count >= 0)
        var written = 0
        while written < count {
            let piece = min(count - written, Self.zeroBlock.count)
            try writePrefix(fd, Self.zeroBlock, count: piece, atOffset: offset + written, path: path)
            written += piece
        }
        assert(written == count)
    }

    /// pwrite(2) of the first `count` bytes of `bytes` at `offset`, continuing short writes.
    private func writePrefix(
        _ fd: Int32, _ bytes: [UInt8], count: Int, atOffset offset: Int, path: String
    ) throws(FileSystemError) {
        precondition(count <= bytes.count)
        try bytes.withBytes { raw throws(FileSystemError) in
            try write(fd, from: UnsafeRawBufferPointer(rebasing: raw.prefix(count)), atOffset: offset, path: path)
        }
    }

    /// pwrite(2) of all of `bytes` at `offset`, continuing short writes.
    public func write(_ fd: Int32, from bytes: UnsafeRawBufferPointer, atOffset offset: Int, path: String) throws(FileSystemError) {
        precondition(offset >= 0)
        var written = 0
        while written < bytes.count {
            let result = pwrite(fd, bytes.baseAddress! + written, bytes.count - written, off_t(offset + written))
            if result < 0 {
                let code = errno
                if code == EINTR { continue }
                throw .io("write \(path) at byte \(offset + written)", errno: code)
            }
            // pwrite(2) of a non-empty buffer to a regular file never returns 0 unless something
            // is badly wrong; treat it as an I/O error rather than spinning.
            guard result > 0 else { throw .io("write \(path) made no progress", errno: EIO) }
            written += result
        }
    }

    /// fdatasync(2): the data and the file size, not the timestamps.
    public func dataSync(_ fd: Int32, path: String) throws(FileSystemError) {
        #if canImport(Glibc)
        let result = fdatasync(fd)
        #else
        let result = fcntl(fd, F_FULLFSYNC)
        #endif
        guard result == 0 else { throw .io("fdatasync \(path)", errno: errno) }
    }

    /// fsync of a directory, which makes created and unlinked names in it durable.
    public func syncDirectory(_ path: String) throws(FileSystemError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("open directory \(path)", errno: errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .io("fsync directory \(path)", errno: errno) }
    }

    /// Cuts an open file to `length` bytes. Not durable by itself: see `fullSync`.
    public func truncate(_ fd: Int32, toBytes length: Int, path: String) throws(FileSystemError) {
        precondition(length >= 0)
        guard ftruncate(fd, off_t(length)) == 0 else { throw .io("ftruncate \(path) to \(length) bytes", errno: errno) }
    }

    /// fsync(2): data and all metadata. For a shrunk file, where the new size is the whole point
    /// and fdatasync's idea of "needed to read the data back" is best not relied on.
    public func fullSync(_ fd: Int32, path: String) throws(FileSystemError) {
        guard fsync(fd) == 0 else { throw .io("fsync \(path)", errno: errno) }
    }

    public func unlink(_ path: String) throws(FileSystemError) {
        guard systemUnlink(path) == 0 else { throw .io("unlink \(path)", errno: errno) }
    }

    /// The whole file. Segments are bounded by segmentMaxBytes, so reading one at once is fine.
    public func readAll(_ path: String) throws(FileSystemError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("open \(path)", errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io("fstat \(path)", errno: errno) }
        let size = Int(info.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var filled = 0
        while filled < size {
            let (result, code) = bytes.withUnsafeMutableBytes { raw -> (Int, Int32) in
                let result = systemRead(fd, raw.baseAddress! + filled, size - filled)
                return (result, errno)
            }
            if result < 0 {
                if code == EINTR { continue }
                throw .io("read \(path)", errno: code)
            }
            if result == 0 { break }  // The file shrank under us: scan what we have.
            filled += result
        }
        if filled < size { bytes.removeLast(size - filled) }
        return bytes
    }

    /// Names in a directory, excluding `.` and `..`. Throws with ENOENT when it does not exist.
    public func listDirectory(_ path: String) throws(FileSystemError) -> [String] {
        guard let directory = opendir(path) else { throw .io("open directory \(path)", errno: errno) }
        defer { closedir(directory) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(directory) else {
                let code = errno
                if code != 0 { throw .io("read directory \(path)", errno: code) }
                break
            }
            let name = withUnsafePointer(to: &entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    String(cString: $0)
                }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    public func directoryExists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// mkdir(2); an existing directory of that name is not an error.
    public func makeDirectory(_ path: String) throws(FileSystemError) {
        if mkdir(path, 0o755) != 0 {
            let code = errno
            if code == EEXIST && directoryExists(path) { return }
            throw .io("mkdir \(path)", errno: code)
        }
    }

    /// Creates `path` empty (truncating what was there) for writing.
    public func createReplacing(_ path: String) throws(FileSystemError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, Self.segmentMode)
        guard fd >= 0 else { throw .io("create \(path)", errno: errno) }
        return fd
    }

    public func openForReadingAndWriting(_ path: String, create: Bool) throws(FileSystemError) -> Int32 {
        let fd = open(path, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), Self.segmentMode)
        guard fd >= 0 else { throw .io("open \(path)", errno: errno) }
        return fd
    }

    /// pread(2) until `count` bytes or the end of the file (short reads and EINTR are continued).
    public func read(_ fd: Int32, count: Int, atOffset offset: Int, path: String) throws(FileSystemError) -> [UInt8] {
        precondition(count >= 0 && offset >= 0)
        var bytes = [UInt8](repeating: 0, count: count)
        let filled = try bytes.withMutableBytes { buffer throws(FileSystemError) in
            try read(fd, into: buffer, atOffset: offset, path: path)
        }
        if filled < count { bytes.removeLast(count - filled) }
        return bytes
    }

    public func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, atOffset offset: Int, path: String) throws(FileSystemError) -> Int {
        precondition(offset >= 0)
        var filled = 0
        while filled < buffer.count {
            let result = pread(fd, buffer.baseAddress! + filled, buffer.count - filled, off_t(offset + filled))
            if result < 0 {
                let code = errno
                if code == EINTR { continue }
                throw .io("read \(path) at byte \(offset + filled)", errno: code)
            }
            if result == 0 { break }
            filled += result
        }
        return filled
    }

    public func size(_ fd: Int32, path: String) throws(FileSystemError) -> Int {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io("fstat \(path)", errno: errno) }
        return Int(info.st_size)
    }

    /// fdatasync, then posix_fadvise(DONTNEED): Linux drops clean pages, including those a
    /// failed writeback marked clean, so the next read goes to the disk.
    public func readFromDisk(_ path: String) throws(FileSystemError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .io("open \(path)", errno: errno) }
        defer { _ = systemClose(fd) }
        try dataSync(fd, path: path)
        #if canImport(Glibc)
        let code = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        guard code == 0 else { throw .io("posix_fadvise \(path)", errno: code) }
        #endif
    }

    /// rename(2): atomic replacement of `destination`; durable once the directory is synced.
    public func rename(_ source: String, to destination: String) throws(FileSystemError) {
        guard systemRename(source, destination) == 0 else { throw .io("rename \(source) to \(destination)", errno: errno) }
    }

    public func fileExists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }
}

// Module-qualified aliases, because `close`, `read`, `unlink` and `rename` shadow the C functions inside the type.
#if canImport(Glibc)
private func systemClose(_ fd: Int32) -> Int32 { Glibc.close(fd) }
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int { Glibc.read(fd, buffer, count) }
private func systemUnlink(_ path: String) -> Int32 { Glibc.unlink(path) }
private func systemRename(_ from: String, _ to: String) -> Int32 { Glibc.rename(from, to) }
#else
private func systemClose(_ fd: Int32) -> Int32 { Darwin.close(fd) }
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int { Darwin.read(fd, buffer, count) }
private func systemUnlink(_ path: String) -> Int32 { Darwin.unlink(path) }
private func systemRename(_ from: String, _ to: String) -> Int32 { Darwin.rename(from, to) }
#endif

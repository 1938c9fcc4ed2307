import CSQLite
import Glibc
import SandhiIO

/// A SQLite VFS (`sqlite3_vfs_register`) whose every file operation is a call on a
/// `FileSystem`: a bank opened through it reads, writes and syncs its database and its WAL on
/// a `SimulatedDisk` (which loses what a power cut loses) or a `RecordingFileSystem` (whose
/// trace a power-loss test replays), instead of straight through POSIX. Production banks keep
/// SQLite's own unix VFS.
///
/// What it does not do, and why that is enough for a bank:
/// - No file locks: a data directory has one owning process (its flock), and banks run with
///   `locking_mode=EXCLUSIVE`.
/// - No shared memory (io_methods version 1): SQLite then allows WAL mode only under
///   `locking_mode=EXCLUSIVE` set before the first read, which is how a bank opens.
/// - No temporary files: banks keep temporary tables in memory (`temp_store=MEMORY`).
/// - No memory mapping.
///
/// Syncs follow SQLite's unix VFS on Linux: every `xSync` is an fdatasync (the file's size is
/// data to fdatasync), and the first sync of a newly created journal or WAL also syncs its
/// directory, so that the file's name survives a power cut along with its bytes.
public final class FileSystemVFS: @unchecked Sendable {
    /// The name SQLite knows this VFS by: pass it to `sqlite3_open_v2`.
    public let name: String
    public let fileSystem: any FileSystem
    private let vfs: UnsafeMutablePointer<sqlite3_vfs>
    private let nameBytes: UnsafeMutablePointer<CChar>

    private static let counter = Lock(0)

    /// Registers a new VFS over `fileSystem` (never as SQLite's default). It stays registered
    /// for the life of the process, unless its owner `unregister`s it: a connection may
    /// outlive whoever opened it.
    public init(fileSystem: any FileSystem) {
        SQLiteLibrary.prepare()
        let number = Self.counter.withLock { value -> Int in
            value += 1
            return value
        }
        name = "sandhi-fs-\(number)"
        self.fileSystem = fileSystem
        nameBytes = strdup(name)!
        vfs = .allocate(capacity: 1)
        let fallback = sqlite3_vfs_find(nil)!
        vfs.initialize(to: sqlite3_vfs(
            iVersion: 2, szOsFile: Int32(MemoryLayout<sandhi_vfs_file>.size), mxPathname: 1_024, pNext: nil,
            zName: UnsafePointer(nameBytes), pAppData: nil,
            xOpen: vfsOpen, xDelete: vfsDelete, xAccess: vfsAccess, xFullPathname: vfsFullPathname,
            xDlOpen: nil, xDlError: nil, xDlSym: nil, xDlClose: nil,
            xRandomness: fallback.pointee.xRandomness, xSleep: fallback.pointee.xSleep,
            xCurrentTime: fallback.pointee.xCurrentTime, xGetLastError: fallback.pointee.xGetLastError,
            xCurrentTimeInt64: fallback.pointee.xCurrentTimeInt64,
            xSetSystemCall: nil, xGetSystemCall: nil, xNextSystemCall: nil))
        vfs.pointee.pAppData = Unmanaged.passRetained(self).toOpaque()
        let code = sqlite3_vfs_register(vfs, 0)
        precondition(code == SQLITE_OK, "sqlite3_vfs_register failed (\(code))")
    }

    /// Reached only after `unregister` (until then the registration holds this object).
    deinit {
        free(nameBytes)
        vfs.deallocate()
    }

    /// Takes the VFS out of SQLite's list, for an owner that registers many over its life
    /// (the simulator: one per bank per seed), once no connection through it is open.
    /// Idempotent.
    public func unregister() {
        guard vfs.pointee.pAppData != nil else { return }
        sqlite3_vfs_unregister(vfs)
        Unmanaged<FileSystemVFS>.fromOpaque(vfs.pointee.pAppData!).release()
        vfs.pointee.pAppData = nil
    }

    fileprivate static func owner(_ vfs: UnsafeMutablePointer<sqlite3_vfs>?) -> FileSystemVFS {
        Unmanaged<FileSystemVFS>.fromOpaque(vfs!.pointee.pAppData!).takeUnretainedValue()
    }

    fileprivate static func file(_ file: UnsafeMutablePointer<sqlite3_file>?) -> (UnsafeMutablePointer<sandhi_vfs_file>, FileSystemVFS, String) {
        let opened = UnsafeMutableRawPointer(file!).assumingMemoryBound(to: sandhi_vfs_file.self)
        let owner = Unmanaged<FileSystemVFS>.fromOpaque(opened.pointee.owner).takeUnretainedValue()
        return (opened, owner, Unmanaged<FilePath>.fromOpaque(opened.pointee.path).takeUnretainedValue().path)
    }

    /// An open file's path, kept by the file (see `sandhi_vfs_file.path`).
    fileprivate final class FilePath {
        let path: String
        init(_ path: String) { self.path = path }
    }

    /// SQLite's answer to a failure: a full disk is SQLITE_FULL, anything else the I/O error
    /// the caller names.
    fileprivate static func code(_ error: FileSystemError, otherwise: Int32) -> Int32 {
        error.errno == ENOSPC ? SQLITE_FULL : otherwise
    }
}

// MARK: - VFS methods

// SQLite's extended I/O error codes, which Swift cannot import (each a macro of a macro).
private func ioError(_ detail: Int32) -> Int32 { SQLITE_IOERR | (detail << 8) }
private let SQLITE_IOERR_READ = ioError(1)
private let SQLITE_IOERR_SHORT_READ = ioError(2)
private let SQLITE_IOERR_WRITE = ioError(3)
private let SQLITE_IOERR_FSYNC = ioError(4)
private let SQLITE_IOERR_DIR_FSYNC = ioError(5)
private let SQLITE_IOERR_TRUNCATE = ioError(6)
private let SQLITE_IOERR_FSTAT = ioError(7)
private let SQLITE_IOERR_DELETE = ioError(10)
private let SQLITE_IOERR_ACCESS = ioError(13)
private let SQLITE_IOERR_DELETE_NOENT = ioError(23)

/// Written once, then only read (by SQLite, from any thread).
nonisolated(unsafe) private let ioMethods: UnsafeMutablePointer<sqlite3_io_methods> = {
    let methods = UnsafeMutablePointer<sqlite3_io_methods>.allocate(capacity: 1)
    methods.initialize(to: sqlite3_io_methods(
        iVersion: 1, xClose: fileClose, xRead: fileRead, xWrite: fileWrite, xTruncate: fileTruncate, xSync: fileSync,
        xFileSize: fileSize, xLock: { _, _ in SQLITE_OK }, xUnlock: { _, _ in SQLITE_OK },
        xCheckReservedLock: { _, result in result?.pointee = 0; return SQLITE_OK },
        xFileControl: { _, _, _ in SQLITE_NOTFOUND }, xSectorSize: { _ in Int32(SimulatedDisk.sectorBytes) },
        xDeviceCharacteristics: { _ in 0 },
        xShmMap: nil, xShmLock: nil, xShmBarrier: nil, xShmUnmap: nil, xFetch: nil, xUnfetch: nil))
    return methods
}()

private func vfsOpen(_ vfs: UnsafeMutablePointer<sqlite3_vfs>?, _ name: UnsafePointer<CChar>?, _ file: UnsafeMutablePointer<sqlite3_file>?,
                     _ flags: Int32, _ outFlags: UnsafeMutablePointer<Int32>?) -> Int32 {
    let owner = FileSystemVFS.owner(vfs)
    let opened = UnsafeMutableRawPointer(file!).assumingMemoryBound(to: sandhi_vfs_file.self)
    opened.pointee.base.pMethods = nil
    // Temporary files have no name; banks keep temporary data in memory.
    guard let name else { return SQLITE_CANTOPEN }
    let path = String(cString: name)
    let create = flags & SQLITE_OPEN_CREATE != 0
    let isNew = create && !owner.fileSystem.fileExists(path)
    let fd: Int32
    do {
        fd = try owner.fileSystem.openForReadingAndWriting(path, create: create)
    } catch {
        return SQLITE_CANTOPEN
    }
    let journal = flags & (SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_WAL | SQLITE_OPEN_SUPER_JOURNAL) != 0
    opened.pointee.fd = fd
    opened.pointee.directory_sync_pending = isNew && journal ? 1 : 0
    opened.pointee.delete_on_close = flags & SQLITE_OPEN_DELETEONCLOSE != 0 ? 1 : 0
    opened.pointee.owner = Unmanaged.passUnretained(owner).toOpaque()
    opened.pointee.path = Unmanaged.passRetained(FileSystemVFS.FilePath(path)).toOpaque()
    opened.pointee.base.pMethods = UnsafePointer(ioMethods)
    outFlags?.pointee = flags
    return SQLITE_OK
}

private func vfsDelete(_ vfs: UnsafeMutablePointer<sqlite3_vfs>?, _ name: UnsafePointer<CChar>?, _ syncDirectory: Int32) -> Int32 {
    let owner = FileSystemVFS.owner(vfs)
    let path = String(cString: name!)
    do {
        try owner.fileSystem.unlink(path)
    } catch {
        return error.errno == ENOENT ? SQLITE_IOERR_DELETE_NOENT : SQLITE_IOERR_DELETE
    }
    if syncDirectory != 0 {
        do {
            try owner.fileSystem.syncDirectory(FileSystemPath.parentDirectory(of: path))
        } catch {
            return SQLITE_IOERR_DIR_FSYNC
        }
    }
    return SQLITE_OK
}

/// Whether a file exists: as SQLite's unix VFS answers it, an empty file does not (SQLite asks
/// about a journal or WAL, and an empty one holds nothing to recover).
private func vfsAccess(_ vfs: UnsafeMutablePointer<sqlite3_vfs>?, _ name: UnsafePointer<CChar>?, _ flags: Int32,
                       _ result: UnsafeMutablePointer<Int32>?) -> Int32 {
    let files = FileSystemVFS.owner(vfs).fileSystem
    let path = String(cString: name!)
    var exists = files.fileExists(path)
    if exists && flags == SQLITE_ACCESS_EXISTS && !files.directoryExists(path) {
        do {
            let fd = try files.openForReadingAndWriting(path, create: false)
            defer { files.close(fd) }
            exists = try files.size(fd, path: path) > 0
        } catch {
            return SQLITE_IOERR_ACCESS
        }
    }
    result?.pointee = exists ? 1 : 0
    return SQLITE_OK
}

private func vfsFullPathname(_ vfs: UnsafeMutablePointer<sqlite3_vfs>?, _ name: UnsafePointer<CChar>?, _ capacity: Int32,
                             _ output: UnsafeMutablePointer<CChar>?) -> Int32 {
    var path = String(cString: name!)
    if !path.hasPrefix("/") {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return SQLITE_CANTOPEN }
        path = String(cString: buffer) + "/" + path
    }
    let bytes = Array(path.utf8CString)
    guard bytes.count <= Int(capacity) else { return SQLITE_CANTOPEN }
    bytes.withUnsafeBufferPointer { output!.update(from: $0.baseAddress!, count: bytes.count) }
    return SQLITE_OK
}

// MARK: - File methods

private func fileClose(_ file: UnsafeMutablePointer<sqlite3_file>?) -> Int32 {
    let (opened, owner, path) = FileSystemVFS.file(file)
    owner.fileSystem.close(opened.pointee.fd)
    var code = SQLITE_OK
    if opened.pointee.delete_on_close != 0 {
        do { try owner.fileSystem.unlink(path) } catch { code = SQLITE_IOERR_DELETE }
    }
    Unmanaged<FileSystemVFS.FilePath>.fromOpaque(opened.pointee.path).release()
    opened.pointee.path = nil
    opened.pointee.base.pMethods = nil
    return code
}

private func fileRead(_ file: UnsafeMutablePointer<sqlite3_file>?, _ buffer: UnsafeMutableRawPointer?, _ count: Int32, _ offset: sqlite3_int64) -> Int32 {
    let (opened, owner, path) = FileSystemVFS.file(file)
    let filled: Int
    do {
        filled = try owner.fileSystem.read(opened.pointee.fd, into: UnsafeMutableRawBufferPointer(start: buffer, count: Int(count)),
                                           atOffset: Int(offset), path: path)
    } catch {
        return SQLITE_IOERR_READ
    }
    guard filled == Int(count) else {
        // SQLite requires the rest of the buffer zeroed on a short read.
        (buffer! + filled).initializeMemory(as: UInt8.self, repeating: 0, count: Int(count) - filled)
        return SQLITE_IOERR_SHORT_READ
    }
    return SQLITE_OK
}

private func fileWrite(_ file: UnsafeMutablePointer<sqlite3_file>?, _ buffer: UnsafeRawPointer?, _ count: Int32, _ offset: sqlite3_int64) -> Int32 {
    let (opened, owner, path) = FileSystemVFS.file(file)
    do {
        try owner.fileSystem.write(opened.pointee.fd, from: UnsafeRawBufferPointer(start: buffer, count: Int(count)),
                                   atOffset: Int(offset), path: path)
    } catch {
        return FileSystemVFS.code(error, otherwise: SQLITE_IOERR_WRITE)
    }
    return SQLITE_OK
}

private func fileTruncate(_ file: UnsafeMutablePointer<sqlite3_file>?, _ size: sqlite3_int64) -> Int32 {
    let (opened, owner, path) = FileSystemVFS.file(file)
    do {
        try owner.fileSystem.truncate(opened.pointee.fd, toBytes: Int(size), path: path)
    } catch {
        return SQLITE_IOERR_TRUNCATE
    }
    return SQLITE_OK
}

private func fileSync(_ file: UnsafeMutablePointer<sqlite3_file>?, _ flags: Int32) -> Int32 {
    let (opened, owner, path) = FileSystemVFS.file(file)
    do {
        try owner.fileSystem.dataSync(opened.pointee.fd, path: path)
    } catch {
        return SQLITE_IOERR_FSYNC
    }
    if opened.pointee.directory_sync_pending != 0 {
        do {
            try owner.fileSystem.syncDirectory(FileSystemPath.parentDirectory(of: path))
        } catch {
            return SQLITE_IOERR_DIR_FSYNC
        }
        opened.pointee.directory_sync_pending = 0
    }
    return SQLITE_OK
}

private func fileSize(_ file: UnsafeMutablePointer<sqlite3_file>?, _ size: UnsafeMutablePointer<sqlite3_int64>?) -> Int32 {
    let (opened, owner, path) = FileSystemVFS.file(file)
    do {
        size?.pointee = sqlite3_int64(try owner.fileSystem.size(opened.pointee.fd, path: path))
    } catch {
        return SQLITE_IOERR_FSTAT
    }
    return SQLITE_OK
}

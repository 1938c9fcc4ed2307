import Glibc
import SandhiEngine

/// A disk in memory that forgets what a real one forgets, for the code that ships to run on in
/// tests and simulation (TigerBeetle's and FoundationDB's way of testing a durability argument):
///
///   page cache   what every read sees: the bytes written, the names created, renamed, unlinked
///   disk         what a power cut leaves: only what a sync made durable
///
/// - A file's bytes reach the disk at `dataSync`/`fullSync`; until then a power cut keeps each
///   written sector or not, independently (a write torn at sector granularity), and keeps the
///   file's new size or its old one.
/// - A name created, renamed or unlinked reaches the disk when its directory is synced; until
///   then a power cut keeps each such change or not. A file no durable name reaches is gone.
/// - A sync that fails (`failNextSync`) writes nothing, yet marks the pages clean, as Linux
///   does after a writeback error (fsyncgate): they still read back until the power goes, and
///   a later sync that succeeds does not write them.
/// - `cutPower(afterCalls:)` stops the disk at an instant: that call and every later one fail,
///   as a machine losing power mid-operation; `powerLoss()` then builds what the disk holds.
/// - `restartProcess()` closes every descriptor and keeps the page cache (a crash of the
///   process, not of the machine), though pages a failed sync marked clean may have been
///   evicted meanwhile (then reads see the disk again) or not, as the seed draws;
///   `readFromDisk` drops them for certain.
/// - `decay(path, sector:)` corrupts a synced sector (found by a checksum, never used).
/// - `capacityBytes`: writes past it fail with ENOSPC.
///
/// Deterministic: every choice a power cut makes is drawn from the seed.
public final class SimulatedDisk: FileSystem, @unchecked Sendable {
    public static let sectorBytes = 512

    private struct Inode {
        var cache: [UInt8] = []
        var disk: [UInt8] = []
        /// Sectors written since the last sync that reached the disk (or was lost).
        var dirty = SectorSet()
        /// The size changed since the last sync.
        var sizeDirty = false
        /// Sectors a failed sync marked clean without writing them (fsyncgate): reads see
        /// what the disk does not hold, until they are written again and synced, or evicted.
        var lostSectors = SectorSet()
    }

    /// What the disk has been asked to do, in order (for tests that look at syncs).
    public enum Call: Hashable, Sendable {
        case write(path: String, offset: Int, bytes: Int)
        case dataSync(path: String)
        case fullSync(path: String)
        case syncDirectory(path: String)
        case truncate(path: String, bytes: Int)
        case create(path: String)
        case unlink(path: String)
        case rename(from: String, to: String)
        case makeDirectory(path: String)
    }

    private struct State {
        var inodes: [Int: Inode] = [:]
        var nextInode = 1
        /// Path -> inode, as reads see it.
        var names: [String: Int] = [:]
        /// Path -> inode, as a power cut leaves it.
        var durableNames: [String: Int] = [:]
        var directories: Set<String> = ["/"]
        var durableDirectories: Set<String> = ["/"]
        var descriptors: [Int32: (inode: Int, path: String)] = [:]
        var nextDescriptor: Int32 = 3
        var random: SplitMix64
        var failNextSync = false
        /// The next sync of this path fails (whatever other files sync meanwhile).
        var failNextSyncOfPath: String?
        var callsLeft: Int?
        var powerOff = false
        var calls: [Call] = []
        var capacityBytes: Int?
        var recordsCalls = true
    }

    private let state: Lock<State>

    public init(seed: UInt64) {
        state = Lock(State(random: SplitMix64(seed: seed)))
    }

    // MARK: - Faults

    /// The next data or full sync fails with EIO, having written nothing (its pages marked
    /// clean: fsyncgate).
    public func failNextSync() { state.withLock { $0.failNextSync = true } }

    /// The next data or full sync of `path` fails the same way, whichever other files are
    /// synced before it: for a test that must fail one file's sync among many.
    public func failNextSync(of path: String) { state.withLock { $0.failNextSyncOfPath = path } }

    /// After `calls` more mutating calls the power goes: the next one and all after fail.
    public func cutPower(afterCalls calls: Int) { state.withLock { $0.callsLeft = calls } }

    /// Writes that would take the disk's bytes past this fail with ENOSPC (nil: no limit).
    public var capacityBytes: Int? {
        get { state.withLock { $0.capacityBytes } }
        set { state.withLock { $0.capacityBytes = newValue } }
    }

    /// The power went (now, or at the cut set before): the page cache is lost, and what the disk
    /// holds is what was synced plus, for each change not synced, whatever the seed draws. The
    /// disk then works again, with nothing open.
    public func powerLoss(unsynced: UnsyncedFate = .each) {
        // Whether one unsynced change (a name, a size, a sector) reaches the disk.
        func keep(_ state: inout State) -> Bool {
            switch unsynced {
            case .each: return state.random.next() & 1 == 0
            case .all, .allButFirstSector: return true
            case .none: return false
            }
        }
        state.withLock { state in
            // Names: each change since its directory's last sync kept or not.
            // Sorted: a Set's order changes from process to process, and a seed must replay.
            for path in Set(state.names.keys).union(state.durableNames.keys).sorted() where state.names[path] != state.durableNames[path] {
                if keep(&state) { state.durableNames[path] = state.names[path] }
            }
            for path in state.directories.symmetricDifference(state.durableDirectories).sorted() where keep(&state) {
                if state.directories.contains(path) { state.durableDirectories.insert(path) } else { state.durableDirectories.remove(path) }
            }
            // A name in a directory that did not survive is gone with it.
            state.durableNames = state.durableNames.filter { state.durableDirectories.contains(FileSystemPath.parentDirectory(of: $0.key)) }
            state.names = state.durableNames
            state.directories = state.durableDirectories
            let reachable = Set(state.names.values)
            state.inodes = state.inodes.filter { reachable.contains($0.key) }
            for id in state.inodes.keys.sorted() {
                var inode = state.inodes[id]!
                var size = inode.disk.count
                if inode.sizeDirty && keep(&state) { size = inode.cache.count }
                var disk = Array(inode.disk.prefix(size))
                disk.growZeroFilled(to: size)
                let first = inode.dirty.first
                for sector in inode.dirty.sorted where unsynced == .allButFirstSector ? sector != first : keep(&state) {
                    let start = sector * Self.sectorBytes
                    guard start < size else { continue }
                    let end = min(size, start + Self.sectorBytes, inode.cache.count)
                    if start < end { disk.replaceSubrange(start..<end, with: inode.cache[start..<end]) }
                }
                inode = Inode(cache: disk, disk: disk)
                state.inodes[id] = inode
            }
            state.descriptors.removeAll()
            state.powerOff = false
            state.callsLeft = nil
            state.failNextSync = false
            state.failNextSyncOfPath = nil
        }
    }

    /// What a power cut does with what was written and not synced.
    public enum UnsyncedFate: Sendable {
        /// Each change (a name, a file's size, a sector) reaches the disk or not, as the seed
        /// draws: writes torn at sector granularity, pages landing out of order.
        case each
        /// The kernel had written everything back.
        case all
        /// Nothing was written back.
        case none
        /// Every file's unsynced sectors landed but its first: the pages of one write landed
        /// out of order and the power went before the first (names and sizes all landed).
        case allButFirstSector
    }

    /// The process died, the machine did not: descriptors close, the page cache stays, except
    /// that clean pages may have been evicted meanwhile: each file's are, or are not, as the
    /// seed draws (`evictingCleanPages` decides for every file instead). Only pages a failed
    /// sync marked clean differ from the disk, so only they can tell.
    public func restartProcess(evictingCleanPages: Bool? = nil) {
        state.withLock { state in
            state.descriptors.removeAll()
            for id in state.inodes.keys.sorted() where evictingCleanPages ?? (state.random.next() & 1 == 0) {
                Self.evictCleanPages(&state.inodes[id]!)
            }
        }
    }

    /// Reads of the inode see the disk again, but for what is dirty (written and not yet
    /// synced). The size stays (it is the inode's, not a page's); what the disk lacks of it
    /// reads as zeros.
    private static func evictCleanPages(_ inode: inout Inode) {
        let size = inode.cache.count
        var cache = Array(inode.disk.prefix(size))
        cache.growZeroFilled(to: size)
        inode.dirty.forEach { sector in
            let start = sector * sectorBytes
            let end = min(start + sectorBytes, size)
            if start < end { cache.replaceSubrange(start..<end, with: inode.cache[start..<end]) }
        }
        inode.cache = cache
        inode.lostSectors.removeAll()
    }

    /// Flips every byte of one sector of `path`, on the disk and in the cache: decay of synced data.
    public func decay(_ path: String, sector: Int) {
        state.withLock { state in
            guard let id = state.names[path] else { return }
            let start = sector * Self.sectorBytes
            for offset in start..<(start + Self.sectorBytes) {
                if offset < state.inodes[id]!.cache.count { state.inodes[id]!.cache[offset] ^= 0xFF }
                if offset < state.inodes[id]!.disk.count { state.inodes[id]!.disk[offset] ^= 0xFF }
            }
        }
    }

    /// Puts a directory (and its parents) on the disk, durably, as if made long ago.
    public func installDirectory(_ path: String) {
        state.withLock { state in
            var folder = path
            while !state.directories.contains(folder) {
                state.directories.insert(folder)
                state.durableDirectories.insert(folder)
                folder = FileSystemPath.parentDirectory(of: folder)
            }
        }
    }

    /// Puts a file on the disk, durably, as if written and synced long ago (its directory must
    /// be there).
    public func installFile(_ path: String, bytes: [UInt8]) {
        state.withLock { state in
            precondition(state.directories.contains(FileSystemPath.parentDirectory(of: path)), "no directory for \(path)")
            let id = state.nextInode
            state.nextInode += 1
            state.inodes[id] = Inode(cache: bytes, disk: bytes)
            state.names[path] = id
            state.durableNames[path] = id
        }
    }

    /// What reads see now: every directory, and every file with its bytes.
    public func contents() -> (directories: [String], files: [String: [UInt8]]) {
        state.withLock { state in
            (state.directories.sorted(), state.names.mapValues { state.inodes[$0]!.cache })
        }
    }

    /// Whether `calls` records (a long simulation turns it off: it grows with every call).
    public var recordsCalls: Bool {
        get { state.withLock { $0.recordsCalls } }
        set { state.withLock { $0.recordsCalls = newValue } }
    }

    /// Every mutating call so far, in order.
    public var calls: [Call] { state.withLock { $0.calls } }

    /// What a power cut now would certainly keep of `path` (nil: no durable name).
    public func durableBytes(_ path: String) -> [UInt8]? {
        state.withLock { state in state.durableNames[path].map { state.inodes[$0]!.disk } }
    }

    /// Whether a power cut now would leave `path` exactly as reads see it: what a successful
    /// sync promised. False after a failed sync marked pages clean that never reached the
    /// disk (fsyncgate), or with anything unsynced.
    public func readsMatchDisk(_ path: String) -> Bool {
        state.withLock { state in
            guard let id = state.names[path], state.durableNames[path] == id, let inode = state.inodes[id] else { return false }
            return inode.dirty.isEmpty && !inode.sizeDirty && inode.lostSectors.isEmpty
        }
    }

    // MARK: - FileSystem

    public func openForWriting(_ path: String) throws(FileSystemError) -> Int32 {
        try state.withLock { state throws(FileSystemError) in
            try Self.checkPower(&state, "open \(path)")
            guard let id = state.names[path] else { throw .io("open \(path)", errno: ENOENT) }
            return Self.descriptor(&state, id, path)
        }
    }

    public func createForWriting(_ path: String) throws(FileSystemError) -> Int32 {
        try create(path, exclusive: true)
    }

    public func createReplacing(_ path: String) throws(FileSystemError) -> Int32 {
        try create(path, exclusive: false)
    }

    public func openForReadingAndWriting(_ path: String, create: Bool) throws(FileSystemError) -> Int32 {
        let exists = state.withLock { $0.names[path] != nil }
        if !exists && create { return try self.create(path, exclusive: true) }
        return try openForWriting(path)
    }

    public func read(_ fd: Int32, count: Int, atOffset offset: Int, path: String) throws(FileSystemError) -> [UInt8] {
        try state.withLock { state throws(FileSystemError) in
            try Self.checkPower(&state, "read \(path)")
            let cache = state.inodes[try Self.inode(state, fd, "pread \(path)")]!.cache
            guard offset < cache.count else { return [] }
            return Array(cache[offset..<min(cache.count, offset + count)])
        }
    }

    public func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, atOffset offset: Int, path: String) throws(FileSystemError) -> Int {
        precondition(offset >= 0, "read at offset \(offset)")
        return try state.withLock { state throws(FileSystemError) in
            try Self.checkPower(&state, "read \(path)")
            let id = try Self.inode(state, fd, "pread \(path)")
            return state.inodes[id]!.cache.withUnsafeBytes { cache in
                guard offset < cache.count, !buffer.isEmpty else { return 0 }
                let count = min(buffer.count, cache.count - offset)
                buffer.baseAddress!.copyMemory(from: cache.baseAddress! + offset, byteCount: count)
                return count
            }
        }
    }

    public func size(_ fd: Int32, path: String) throws(FileSystemError) -> Int {
        try state.withLock { state throws(FileSystemError) in
            try Self.checkPower(&state, "fstat \(path)")
            return state.inodes[try Self.inode(state, fd, "fstat \(path)")]!.cache.count
        }
    }

    private func create(_ path: String, exclusive: Bool) throws(FileSystemError) -> Int32 {
        try state.withLock { state throws(FileSystemError) in
            try Self.mutate(&state, .create(path: path))
            guard state.directories.contains(FileSystemPath.parentDirectory(of: path)) else { throw .io("create \(path)", errno: ENOENT) }
            if let id = state.names[path] {
                if exclusive { throw .io("create \(path)", errno: EEXIST) }
                state.inodes[id]!.cache = []
                state.inodes[id]!.sizeDirty = true
                return Self.descriptor(&state, id, path)
            }
            let id = state.nextInode
            state.nextInode += 1
            state.inodes[id] = Inode(sizeDirty: true)
            state.names[path] = id
            return Self.descriptor(&state, id, path)
        }
    }

    public func close(_ fd: Int32) {
        state.withLock { _ = $0.descriptors.removeValue(forKey: fd) }
    }

    public func writeAll(_ fd: Int32, _ bytes: [UInt8], atOffset offset: Int, path: String) throws(FileSystemError) {
        try bytes.withBytes { buffer throws(FileSystemError) in try write(fd, from: buffer, atOffset: offset, path: path) }
    }

    public func write(_ fd: Int32, from bytes: UnsafeRawBufferPointer, atOffset offset: Int, path: String) throws(FileSystemError) {
        precondition(offset >= 0, "write at offset \(offset)")
        try state.withLock { state throws(FileSystemError) in
            try Self.mutate(&state, .write(path: path, offset: offset, bytes: bytes.count))
            let id = try Self.inode(state, fd, "pwrite \(path)")
            let end = offset + bytes.count
            let size = state.inodes[id]!.cache.count
            if let capacity = state.capacityBytes, end > size {
                let used = state.inodes.values.reduce(0) { $0 + $1.cache.count }
                if used + end - size > capacity { throw .io("pwrite \(path)", errno: ENOSPC) }
            }
            // In place (through the dictionary's accessor): a copy of the inode would copy the
            // whole file on every write.
            Self.write(bytes, at: offset, into: &state.inodes[id]!)
        }
    }

    private static func write(_ bytes: UnsafeRawBufferPointer, at offset: Int, into inode: inout Inode) {
        guard !bytes.isEmpty else { return }
        let end = offset + bytes.count
        if inode.cache.count < end {
            inode.cache.growZeroFilled(to: end)
            inode.sizeDirty = true
        }
        inode.cache.withUnsafeMutableBytes { ($0.baseAddress! + offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        inode.dirty.insert((offset / sectorBytes)...((end - 1) / sectorBytes))
    }

    public func writeZeros(_ fd: Int32, atOffset offset: Int, count: Int, path: String) throws(FileSystemError) {
        try writeAll(fd, [UInt8](repeating: 0, count: count), atOffset: offset, path: path)
    }

    public func dataSync(_ fd: Int32, path: String) throws(FileSystemError) {
        try sync(fd, path: path, call: .dataSync(path: path), what: "fdatasync")
    }

    public func fullSync(_ fd: Int32, path: String) throws(FileSystemError) {
        try sync(fd, path: path, call: .fullSync(path: path), what: "fsync")
    }

    private func sync(_ fd: Int32, path: String, call: Call, what: String) throws(FileSystemError) {
        try state.withLock { state throws(FileSystemError) in
            try Self.mutate(&state, call)
            let id = try Self.inode(state, fd, "\(what) \(path)")
            if state.failNextSync || state.failNextSyncOfPath == path {
                // Nothing written, and the pages marked clean all the same.
                if state.failNextSyncOfPath == path { state.failNextSyncOfPath = nil } else { state.failNextSync = false }
                state.inodes[id]!.lostSectors.formUnion(state.inodes[id]!.dirty)
                state.inodes[id]!.dirty.removeAll()
                state.inodes[id]!.sizeDirty = false
                throw .io("\(what) \(path)", errno: EIO)
            }
            Self.writeBack(&state.inodes[id]!)
        }
    }

    /// A successful sync: the dirty sectors and the size reach the disk. In place, so that a
    /// sync costs what it writes, not the file's size.
    private static func writeBack(_ inode: inout Inode) {
        let size = inode.cache.count
        if inode.disk.count > size { inode.disk.removeLast(inode.disk.count - size) }
        inode.disk.growZeroFilled(to: size)
        inode.disk.withUnsafeMutableBytes { disk in
            inode.cache.withUnsafeBytes { cache in
                inode.dirty.forEach { sector in
                    let start = sector * sectorBytes
                    let end = min(start + sectorBytes, size)
                    if start < end { (disk.baseAddress! + start).copyMemory(from: cache.baseAddress! + start, byteCount: end - start) }
                }
            }
        }
        if !inode.lostSectors.isEmpty { inode.dirty.forEach { inode.lostSectors.remove($0) } }
        inode.dirty.removeAll()
        inode.sizeDirty = false
    }

    public func syncDirectory(_ path: String) throws(FileSystemError) {
        try state.withLock { state throws(FileSystemError) in
            try Self.mutate(&state, .syncDirectory(path: path))
            guard state.directories.contains(path) else { throw .io("open directory \(path)", errno: ENOENT) }
            // Names created or renamed here, then names unlinked or renamed away.
            for (name, id) in state.names where state.durableNames[name] != id && FileSystemPath.parentDirectory(of: name) == path {
                state.durableNames[name] = id
            }
            let gone = state.durableNames.keys.filter { state.names[$0] == nil && FileSystemPath.parentDirectory(of: $0) == path }
            for name in gone { state.durableNames[name] = nil }
            for directory in state.directories.symmetricDifference(state.durableDirectories)
            where FileSystemPath.parentDirectory(of: directory) == path {
                if state.directories.contains(directory) { state.durableDirectories.insert(directory) } else { state.durableDirectories.remove(directory) }
            }
        }
    }

    public func truncate(_ fd: Int32, toBytes length: Int, path: String) throws(FileSystemError) {
        try state.withLock { state throws(FileSystemError) in
            try Self.mutate(&state, .truncate(path: path, bytes: length))
            let id = try Self.inode(state, fd, "ftruncate \(path)")
            var inode = state.inodes[id]!
            if inode.cache.count > length { inode.cache.removeLast(inode.cache.count - length) }
            inode.cache.growZeroFilled(to: length)
            inode.sizeDirty = true
            state.inodes[id] = inode
        }
    }

    public func unlink(_ path: String) throws(FileSystemError) {
        try state.withLock { state throws(FileSystemError) in
            try Self.mutate(&state, .unlink(path: path))
            guard state.names.removeValue(forKey: path) != nil else { throw .io("unlink \(path)", errno: ENOENT) }
        }
    }

    public func rename(_ source: String, to destination: String) throws(FileSystemError) {
        try state.withLock { state throws(FileSystemError) in
            try Self.mutate(&state, .rename(from: source, to: destination))
            guard let id = state.names.removeValue(forKey: source) else { throw .io("rename \(source) to \(destination)", errno: ENOENT) }
            state.names[destination] = id
        }
    }

    public func readAll(_ path: String) throws(FileSystemError) -> [UInt8] {
        try state.withLock { state throws(FileSystemError) in
            try Self.checkPower(&state, "read \(path)")
            guard let id = state.names[path] else { throw .io("open \(path)", errno: ENOENT) }
            return state.inodes[id]!.cache
        }
    }

    public func readFromDisk(_ path: String) throws(FileSystemError) {
        let fd = try openForWriting(path)
        defer { close(fd) }
        try dataSync(fd, path: path)
        state.withLock { state in
            if let id = state.names[path] { Self.evictCleanPages(&state.inodes[id]!) }
        }
    }

    public func listDirectory(_ path: String) throws(FileSystemError) -> [String] {
        try state.withLock { state throws(FileSystemError) in
            try Self.checkPower(&state, "open directory \(path)")
            guard state.directories.contains(path) else { throw .io("open directory \(path)", errno: ENOENT) }
            let files = state.names.keys.filter { FileSystemPath.parentDirectory(of: $0) == path }
            let folders = state.directories.filter { $0 != path && FileSystemPath.parentDirectory(of: $0) == path }
            return (files + folders).map { String($0.dropFirst(path == "/" ? 1 : path.count + 1)) }.sorted()
        }
    }

    public func directoryExists(_ path: String) -> Bool {
        state.withLock { $0.directories.contains(path) }
    }

    public func fileExists(_ path: String) -> Bool {
        state.withLock { $0.names[path] != nil || $0.directories.contains(path) }
    }

    public func makeDirectory(_ path: String) throws(FileSystemError) {
        try state.withLock { state throws(FileSystemError) in
            try Self.mutate(&state, .makeDirectory(path: path))
            if state.directories.contains(path) { return }
            guard state.directories.contains(FileSystemPath.parentDirectory(of: path)) else { throw .io("mkdir \(path)", errno: ENOENT) }
            state.directories.insert(path)
        }
    }

    // MARK: - Internals

    private static func descriptor(_ state: inout State, _ id: Int, _ path: String) -> Int32 {
        let fd = state.nextDescriptor
        state.nextDescriptor += 1
        state.descriptors[fd] = (id, path)
        return fd
    }

    private static func inode(_ state: State, _ fd: Int32, _ what: @autoclosure () -> String) throws(FileSystemError) -> Int {
        guard let entry = state.descriptors[fd], state.inodes[entry.inode] != nil else { throw .io(what(), errno: EBADF) }
        return entry.inode
    }

    private static func checkPower(_ state: inout State, _ what: @autoclosure () -> String) throws(FileSystemError) {
        if state.powerOff { throw .io("\(what()) [power lost]", errno: EIO) }
    }

    /// Counts a mutating call toward a power cut, and records it.
    private static func mutate(_ state: inout State, _ call: Call) throws(FileSystemError) {
        try checkPower(&state, "\(call)")
        if let left = state.callsLeft {
            if left == 0 {
                state.powerOff = true
                throw .io("\(call) [power lost]", errno: EIO)
            }
            state.callsLeft = left - 1
        }
        if state.recordsCalls { state.calls.append(call) }
    }
}

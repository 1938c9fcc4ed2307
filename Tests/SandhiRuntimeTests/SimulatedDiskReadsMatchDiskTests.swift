import SandhiIO
import Testing

/// `SimulatedDisk.readsMatchDisk`: whether a power cut now would leave a file as reads see it.
/// The simulator checks it after every sync that lets replies out, so each way reads and the
/// disk can differ must make it false, and a successful sync must make it true again.
@Suite struct SimulatedDiskReadsMatchDiskTests {
    func disk() throws -> (SimulatedDisk, Int32) {
        let disk = SimulatedDisk(seed: 3)
        try disk.makeDirectories("/d")
        let fd = try disk.createForWriting("/d/f")
        try disk.syncDirectory("/d")
        try disk.writeAll(fd, [1, 2, 3], atOffset: 0, path: "/d/f")
        try disk.dataSync(fd, path: "/d/f")
        return (disk, fd)
    }

    @Test func aSyncedFileMatchesAndAnUnsyncedWriteDoesNot() throws {
        let (disk, fd) = try disk()
        #expect(disk.readsMatchDisk("/d/f"))
        try disk.writeAll(fd, [9], atOffset: 1, path: "/d/f")
        #expect(!disk.readsMatchDisk("/d/f"), "written, not synced")
        try disk.dataSync(fd, path: "/d/f")
        #expect(disk.readsMatchDisk("/d/f"))
    }

    /// fsyncgate: the failed sync marks the pages clean, so nothing looks dirty, but the disk
    /// never got them.
    @Test func pagesAFailedSyncMarkedCleanDoNotMatchUntilWrittenAgainAndSynced() throws {
        let (disk, fd) = try disk()
        try disk.writeAll(fd, [9], atOffset: 1, path: "/d/f")
        disk.failNextSync()
        #expect(throws: FileSystemError.self) { try disk.dataSync(fd, path: "/d/f") }
        #expect(!disk.readsMatchDisk("/d/f"), "clean in the cache, missing on the disk")
        try disk.dataSync(fd, path: "/d/f")
        #expect(!disk.readsMatchDisk("/d/f"), "a second sync writes nothing: it is still missing")
        try disk.writeAll(fd, [9], atOffset: 1, path: "/d/f")
        try disk.dataSync(fd, path: "/d/f")
        #expect(disk.readsMatchDisk("/d/f"), "written again and synced")
    }

    @Test func evictedPagesReadWhatTheDiskHolds() throws {
        let (disk, fd) = try disk()
        try disk.writeAll(fd, [9], atOffset: 1, path: "/d/f")
        disk.failNextSync()
        #expect(throws: FileSystemError.self) { try disk.dataSync(fd, path: "/d/f") }
        disk.restartProcess(evictingCleanPages: true)
        #expect(disk.readsMatchDisk("/d/f"))
        #expect(try disk.readAll("/d/f") == [1, 2, 3])
    }

    @Test func aNameNotYetDurableDoesNotMatch() throws {
        let (disk, _) = try disk()
        _ = try disk.createForWriting("/d/g")
        #expect(!disk.readsMatchDisk("/d/g"), "its directory was not synced")
    }
}

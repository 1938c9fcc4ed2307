@testable import SandhiIO
import Testing

/// `SectorSet`, the simulated disk's record of dirty and lost sectors: a power cut walks it in
/// ascending order (its draws must replay from a seed), and a sync empties it.
@Suite struct SectorSetTests {
    @Test func insertsRangesAcrossWordsAndWalksThemInOrder() {
        var set = SectorSet()
        #expect(set.isEmpty && set.first == nil)
        set.insert(130...131)
        set.insert(2...3)
        set.insert(63...64)
        #expect(set.sorted == [2, 3, 63, 64, 130, 131])
        #expect(set.first == 2)
        #expect(set.contains(64) && !set.contains(65) && !set.contains(10_000))
    }

    @Test func removingTheLastSectorOfTheHighestWordEmptiesTheSet() {
        var set = SectorSet()
        set.insert(200)
        set.remove(200)
        #expect(set.isEmpty, "a set whose words are all zero is empty")
        set.remove(5_000) // beyond every word: nothing to do
        set.insert(7)
        #expect(set.sorted == [7])
    }

    @Test func aUnionKeepsBothAndRemoveAllKeepsNothing() {
        var lost = SectorSet()
        lost.insert(1)
        var dirty = SectorSet()
        dirty.insert(70...71)
        lost.formUnion(dirty)
        #expect(lost.sorted == [1, 70, 71])
        lost.removeAll()
        #expect(lost.isEmpty && lost.sorted.isEmpty)
        lost.insert(3)
        #expect(lost.first == 3)
    }

    /// The buffer calls SQLite's VFS makes: a short read at the end of the file says how much
    /// it read, and a write through a buffer is torn by a power cut like any other.
    @Test func bufferReadsAndWritesOnTheSimulatedDisk() throws {
        let disk = SimulatedDisk(seed: 1)
        try disk.makeDirectories("/d")
        let fd = try disk.createForWriting("/d/f")
        try disk.syncDirectory("/d")
        let bytes = [UInt8](repeating: 7, count: 2 * SimulatedDisk.sectorBytes)
        try bytes.withUnsafeBytes { try disk.write(fd, from: $0, atOffset: 0, path: "/d/f") }
        try disk.dataSync(fd, path: "/d/f")
        try [UInt8](repeating: 9, count: 2 * SimulatedDisk.sectorBytes).withUnsafeBytes {
            try disk.write(fd, from: $0, atOffset: 0, path: "/d/f")
        }
        var buffer = [UInt8](repeating: 0, count: 3 * SimulatedDisk.sectorBytes)
        let read = try buffer.withUnsafeMutableBytes { try disk.read(fd, into: $0, atOffset: 0, path: "/d/f") }
        #expect(read == 2 * SimulatedDisk.sectorBytes)
        #expect(buffer.prefix(read).allSatisfy { $0 == 9 })
        disk.powerLoss(unsynced: .allButFirstSector)
        let after = try disk.readAll("/d/f")
        #expect(Array(after.prefix(SimulatedDisk.sectorBytes)) == [UInt8](repeating: 7, count: SimulatedDisk.sectorBytes),
                "the first sector's unsynced write was lost")
        #expect(Array(after.suffix(SimulatedDisk.sectorBytes)) == [UInt8](repeating: 9, count: SimulatedDisk.sectorBytes))
    }
}

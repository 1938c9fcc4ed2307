import SandhiIO
import Testing

/// `FileSystem.truncate(_:toBytes:)` promises a cut that is durable when it returns (the
/// decision log and the reconciliation journal cut a torn tail with it at open). Its fsync is
/// what keeps that promise: a shrunk size not yet synced may come back after a power cut.
@Suite struct FileSystemTruncateDurabilityTests {
    @Test func aCutIsDurableWhenTruncateReturns() throws {
        for seed in 0..<16 as Range<UInt64> {
            let disk = SimulatedDisk(seed: seed)
            disk.installDirectory("/data")
            disk.installFile("/data/segment", bytes: [UInt8](repeating: 0xAB, count: 4 * SimulatedDisk.sectorBytes))
            try disk.truncate("/data/segment", toBytes: 700)
            disk.powerLoss()
            #expect(try disk.readAll("/data/segment").count == 700, "seed \(seed): the cut file came back at its old length")
        }
    }
}

import SandhiEngine
import SandhiIO
import SandhiParticipants
import Testing

/// `FileSystemVFS` is a general SQLite VFS, not only the banks' (which run in WAL mode): in
/// rollback-journal mode under `synchronous=EXTRA`, SQLite's promise is that a transaction
/// whose COMMIT returned survives a power cut. It rests on two syncs of the VFS that a WAL bank
/// never asks for: the directory sync on the first sync of a new journal (else the database is
/// overwritten while the journal that could undo it may vanish), and the directory sync that
/// `xDelete` is asked for when the journal is deleted, the commit point (else the deleted
/// journal comes back after the cut, hot, and rolls the committed transaction back).
@Suite struct FileSystemVFSPowerLossTests {
    static let path = "/data/rollback.db"
    static let rows = 8

    /// Creates a table and commits one row at a time until the power goes; returns how many
    /// commits returned (-1: the table was not created).
    static func run(_ io: FileIO) -> Int {
        guard let database = try? SQLiteDatabase(path: path, create: true, vfs: io.sqliteVFS!.name) else { return -1 }
        defer { database.close() }
        do {
            try database.execute("PRAGMA journal_mode=DELETE; PRAGMA synchronous=EXTRA; PRAGMA temp_store=MEMORY")
            try database.execute("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)")
        } catch {
            return -1
        }
        for row in 1...rows {
            // Two pages a row: the journal holds real work to undo.
            guard (try? database.execute("INSERT INTO t(k, v) VALUES (\(row), zeroblob(1500))")) != nil else { return row - 1 }
        }
        return rows
    }

    @Test func underSynchronousExtraEveryCommitSurvivesAPowerLossAfterAnyDiskCall() throws {
        let dry = SimulatedDisk(seed: 1)
        dry.installDirectory("/data")
        #expect(Self.run(.through(dry)) == Self.rows)
        let calls = dry.calls
        #expect(calls.contains(.unlink(path: Self.path + "-journal")), "the journal was deleted at a commit")
        for cut in 0...calls.count {
            for seed in 0..<4 as Range<UInt64> {
                let disk = SimulatedDisk(seed: seed &* 7_919 &+ UInt64(cut))
                disk.installDirectory("/data")
                let io = FileIO.through(disk)
                disk.cutPower(afterCalls: cut)
                let committed = Self.run(io)
                disk.powerLoss()
                guard committed >= 0 else { continue }
                do {
                    let database = try SQLiteDatabase(path: Self.path, create: false, vfs: io.sqliteVFS!.name)
                    defer { database.close() }
                    try database.execute("PRAGMA temp_store=MEMORY")
                    let check = try database.statement("PRAGMA integrity_check")
                    #expect(try check.step() && check.text(0) == "ok", "cut \(cut), seed \(seed): integrity_check says \(check.text(0))")
                    let count = try database.statement("SELECT count(*), coalesce(max(k), 0) FROM t")
                    _ = try count.step()
                    let (rows, highest) = (Int(count.int64(0)), Int(count.int64(1)))
                    #expect(rows == highest, "cut \(cut), seed \(seed): rows 1...\(highest) with gaps (\(rows) rows)")
                    #expect(rows >= committed, "cut \(cut), seed \(seed): \(committed) commits returned, \(rows) rows found")
                } catch {
                    Issue.record("cut \(cut), seed \(seed): \(committed) commits returned, and the database does not open: \(error)")
                }
            }
        }
    }
}

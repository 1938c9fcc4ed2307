import Foundation
import Logging
import SandhiEngine
import SandhiIO
import SandhiParticipants
import SandhiTestSupport
import Testing

/// Power loss, on the real binary and the real file system (issue 13): a kill -9 keeps the
/// page cache, so no crash test can see a missing fsync; a power cut does not.
///
/// A debug `sandhi bench` runs with `SANDHI_IO_TRACE`, which sends every file it writes (the
/// decision log, the journal, the SQLite banks through `FileSystemVFS`) through a
/// `RecordingFileSystem`: each write and sync, in order, and each transfer a client was told
/// committed. Then, for many cut points, the trace up to the cut is replayed into a
/// `SimulatedDisk` over the data directory as `sandhi init` left it; the power goes (synced
/// data kept; each unsynced sector, size and name change kept or dropped as the cut's seed
/// draws); what that disk holds is written to a fresh directory, and `sandhi recover` and
/// `sandhi check` run on it. Every transfer acknowledged before the cut must be committed at
/// every bank it wrote, nothing may stay prepared, and the total must be what it was.
///
/// `SANDHI_POWER_CUTS=N` tries N cut points instead of the default 48.
@Suite struct PowerLossTests {
    @Test func everyAcknowledgedTransferSurvivesAPowerCutAnywhereInABenchRun() async throws {
        let temporary = TemporaryDirectory("sandhi-power"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let cuts = Int(ProcessInfo.processInfo.environment["SANDHI_POWER_CUTS"] ?? "") ?? 48
        let created = try SandhiBinary.run(["init", "--data", data, "--accounts", "20", "--opening", "100000"])
        try #require(created.status == 0, "init failed: \(created.stderr)")
        let opening = try CrashRecoveryTests.total(data)
        let initial = try Self.files(under: data)

        let tracePath = temporary.appending("io.trace")
        let bench = try SandhiBinary.run(["bench", "--data", data, "--clients", "8", "--duration", "1.5", "--seed", "13"],
                                         environment: ["SANDHI_IO_TRACE": tracePath])
        try #require(bench.status == 0, "bench failed: \(bench.stderr)")
        let entries = try IOTrace.decode(Array(try Data(contentsOf: URL(fileURLWithPath: tracePath))))
        let acknowledged = entries.indices.filter { if case .acknowledged = entries[$0] { return true } else { return false } }
        let syncs = entries.indices.filter { entries[$0].isSync }
        try #require(acknowledged.count >= 20, "the bench acknowledged only \(acknowledged.count) transfers")
        try #require(entries.contains { if case .write(let path, _, _) = $0 { return path.hasSuffix(".sqlite-wal") } else { return false } },
                     "the banks' writes did not go through the recording file system")

        let points = Self.cutPoints(count: cuts, entries: entries.count, acknowledged: acknowledged, syncs: syncs)
        let failures = try await onOwnThread { () throws -> [String] in
            var failures: [String] = []
            for (round, cut) in points.enumerated() {
                let image = temporary.appending("image-\(round)")
                let disk = SimulatedDisk(seed: UInt64(round) &* 0x9E37_79B9_7F4A_7C15 &+ 1)
                for directory in initial.directories { disk.installDirectory(directory) }
                for (path, bytes) in initial.files { disk.installFile(path, bytes: bytes) }
                try disk.replay(entries[..<cut])
                disk.powerLoss()
                try Self.write(disk, from: data, to: image)
                if let failure = try Self.verify(image, opening: opening, acknowledged: entries[..<cut]) {
                    failures.append("cut \(cut) of \(entries.count) (round \(round)): \(failure)")
                    if failures.count >= 3 { break }
                } else {
                    try? FileManager.default.removeItem(atPath: image)
                }
            }
            return failures
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
        print("power-loss test: \(points.count) cuts over \(entries.count) trace entries (\(syncs.count) syncs, \(acknowledged.count) acknowledged transfers)")
    }

    /// Where to cut: just after acknowledgements (everything they depend on must already be
    /// synced), just before and just after syncs (the instants durability changes), anywhere,
    /// and the very end, spread over the whole run. Deterministic.
    static func cutPoints(count: Int, entries: Int, acknowledged: [Int], syncs: [Int]) -> [Int] {
        var random = SplitMix64(seed: 2_026)
        var points: Set<Int> = [entries]
        while points.count < count {
            switch random.next() % 4 {
            case 0: points.insert(acknowledged[Int(random.next() % UInt64(acknowledged.count))] + 1)
            case 1: points.insert(syncs[Int(random.next() % UInt64(syncs.count))])
            case 2: points.insert(syncs[Int(random.next() % UInt64(syncs.count))] + 1)
            default: points.insert(Int(random.next() % UInt64(entries + 1)))
            }
        }
        return points.sorted()
    }

    /// Recovers and checks the image; nil if all is well, else what is wrong.
    static func verify(_ image: String, opening: Int64, acknowledged trace: ArraySlice<IOTrace.Entry>) throws -> String? {
        let recovered = try SandhiBinary.run(["recover", "--data", image])
        guard recovered.status == 0 else { return "recover failed: \(recovered.stderr)" }
        let checked = try SandhiBinary.run(["check", "--data", image])
        guard checked.status == 0 else { return "check failed:\n\(checked.stdout)\(checked.stderr)" }
        guard checked.stdout.contains("total: \(opening)") else { return "money created or lost:\n\(checked.stdout)" }
        var committed: [ParticipantID: Set<TransactionID>] = [:]
        for entry in trace {
            guard case .acknowledged(let transaction, let writers) = entry else { continue }
            for writer in writers {
                if committed[writer] == nil {
                    let bank = try SQLiteBank(path: "\(image)/banks/\(writer.name).sqlite", participant: writer,
                                              logger: Logger(label: "power-loss") { _ in SwiftLogNoOpLogHandler() })
                    committed[writer] = Set(try bank.committedBranches().keys)
                    bank.close()
                }
                guard committed[writer]!.contains(transaction) else {
                    return "\(transaction) was acknowledged as committed but is not committed at \(writer)"
                }
            }
        }
        return nil
    }

    /// Every directory and file under `root`, by absolute path.
    static func files(under root: String) throws -> (directories: [String], files: [String: [UInt8]]) {
        var directories = [root]
        var files: [String: [UInt8]] = [:]
        let manager = FileManager.default
        for relative in try manager.subpathsOfDirectory(atPath: root).sorted() {
            let path = root + "/" + relative
            var isDirectory: ObjCBool = false
            _ = manager.fileExists(atPath: path, isDirectory: &isDirectory)
            if isDirectory.boolValue {
                directories.append(path)
            } else {
                files[path] = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            }
        }
        return (directories, files)
    }

    /// Writes what `disk` holds under `root` into `image`, as a real directory.
    static func write(_ disk: SimulatedDisk, from root: String, to image: String) throws {
        let (directories, files) = disk.contents()
        let manager = FileManager.default
        try manager.createDirectory(atPath: image, withIntermediateDirectories: true)
        for directory in directories where directory.hasPrefix(root + "/") {
            try manager.createDirectory(atPath: image + directory.dropFirst(root.count), withIntermediateDirectories: true)
        }
        for (path, bytes) in files where path.hasPrefix(root + "/") {
            let copy = image + path.dropFirst(root.count)
            try Data(bytes).write(to: URL(fileURLWithPath: copy))
            // The simulated disk keeps bytes, not modes: a file's mode is the real one's (the
            // audit key is refused unless it is 0600).
            if let mode = try? manager.attributesOfItem(atPath: path)[.posixPermissions] {
                try manager.setAttributes([.posixPermissions: mode], ofItemAtPath: copy)
            }
        }
    }
}

import SandhiIO
import Logging
import SandhiEngine
import SandhiRuntime
import Testing

/// The reconciliation journal, `sandhi.toml`'s replacement and the data directory's folders on
/// a disk that loses what was not synced, cut by a power loss after every disk call in turn.
@Suite struct FileSystemDurabilityTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    let hdfc = ParticipantID(validated: "hdfc"), sbi = ParticipantID(validated: "sbi")

    func heuristicCase(_ sequence: UInt64) -> HeuristicCase {
        HeuristicCase(transaction: TransactionID(epoch: 1, sequence: sequence), decision: .commit, detectedAtWallMs: 1_700_000_000_000,
                      participants: [.init(participant: hdfc, outcome: .committed, operations: nil),
                                     .init(participant: sbi, outcome: .heuristicRollback,
                                           operations: [.credit(account: AccountID(validated: "carol"), amount: .rupees(100))])])
    }

    /// Appends cases until the power goes; returns how many appends returned.
    func appendCases(_ disk: SimulatedDisk, path: String, count: Int) -> Int {
        guard let (journal, _, _) = try? ReconciliationJournal.open(path: path, fileSystem: disk, logger: Self.logger) else { return 0 }
        defer { journal.close() }
        var acknowledged = 0
        for sequence in 1...UInt64(count) {
            guard (try? journal.append(.opened(heuristicCase(sequence)))) != nil else { break }
            acknowledged += 1
        }
        return acknowledged
    }

    @Test func everyAcknowledgedJournalRecordSurvivesAPowerLossAfterAnyDiskCall() throws {
        let path = "/data/reconciliation.log"
        let dry = SimulatedDisk(seed: 1)
        try dry.makeDirectories("/data")
        _ = appendCases(dry, path: path, count: 12)
        for cut in 0...dry.calls.count {
            let disk = SimulatedDisk(seed: UInt64(cut))
            try disk.makeDirectories("/data")
            disk.cutPower(afterCalls: cut)
            let acknowledged = appendCases(disk, path: path, count: 12)
            disk.powerLoss()
            do {
                let (journal, queue, _) = try ReconciliationJournal.open(path: path, fileSystem: disk, logger: Self.logger)
                journal.close()
                #expect(queue.order.count >= acknowledged, "cut \(cut): \(acknowledged) acknowledged, \(queue.order.count) found")
                // What the open cut is durably cut: a second power loss finds the same.
                disk.powerLoss()
                #expect(try ReconciliationJournal.read(path: path, fileSystem: disk).order.count == queue.order.count, "cut \(cut)")
            } catch {
                Issue.record("cut \(cut): the journal does not reopen: \(error)")
            }
        }
    }

    @Test func aReplacedFileIsTheOldOrTheNewAfterAnyPowerLossAndTheNewOnceReplaced() throws {
        let path = "/data/sandhi.toml"
        let old = Array("instance = \"mumbai-1\"\n".utf8), new = Array("instance = \"mumbai-2\"\nprepare_timeout_ms = 900\n".utf8)
        let dry = SimulatedDisk(seed: 1)
        try dry.makeDirectories("/data")
        try dry.replaceFile(path, with: old)
        let before = dry.calls.count
        try dry.replaceFile(path, with: new)
        let calls = dry.calls.count - before
        for cut in 0...calls {
            for seed in 0..<8 as Range<UInt64> {
                let disk = SimulatedDisk(seed: seed)
                try disk.makeDirectories("/data")
                try disk.replaceFile(path, with: old)
                disk.cutPower(afterCalls: cut)
                let replaced = (try? disk.replaceFile(path, with: new)) != nil
                disk.powerLoss()
                let found = try? disk.readAll(path)
                if replaced {
                    #expect(found == new, "cut \(cut), seed \(seed): replaced, then lost to a power cut")
                } else {
                    #expect(found == old || found == new, "cut \(cut), seed \(seed): found \(found.map { String(decoding: $0, as: UTF8.self) } ?? "nothing")")
                }
            }
        }
    }

    @Test func madeDirectoriesSurviveAPowerLoss() throws {
        for seed in 0..<16 as Range<UInt64> {
            let disk = SimulatedDisk(seed: seed)
            try disk.makeDirectories("/data/sandhi/coordinator")
            disk.powerLoss()
            #expect(disk.directoryExists("/data/sandhi/coordinator"), "seed \(seed)")
        }
    }
}

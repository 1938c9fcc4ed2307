import Foundation
import Logging
import SandhiEngine
import SandhiRuntime
import SandhiTestSupport
import Testing

/// The journal syncs every record before the next: damage to any record but a torn last one is
/// decay of synced data, reported with its offset and never cut away.
@Suite struct ReconciliationJournalTests {
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    let hdfc = ParticipantID(validated: "hdfc"), sbi = ParticipantID(validated: "sbi")

    func writeCases(_ count: Int, to path: String) throws {
        let (journal, _, _) = try ReconciliationJournal.open(path: path, logger: logger)
        defer { journal.close() }
        for sequence in 1...UInt64(count) {
            let heuristicCase = HeuristicCase(
                transaction: TransactionID(epoch: 1, sequence: sequence), decision: .commit, detectedAtWallMs: 1_700_000_000_000,
                participants: [.init(participant: hdfc, outcome: .committed, operations: nil),
                               .init(participant: sbi, outcome: .heuristicRollback,
                                     operations: [.credit(account: AccountID(validated: "carol"), amount: .rupees(100))])])
            try journal.append(.opened(heuristicCase))
        }
    }

    @Test func aLostSectorUnderSyncedRecordsIsAnErrorNotACut() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let path = directory.appending("reconciliation.log")
        try writeCases(20, to: path)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let whole = bytes.count
        #expect(whole > 1_024)
        // The first sector reads back as zeros: a lost write, or a decayed sector, long synced.
        bytes.replaceSubrange(0..<512, with: [UInt8](repeating: 0, count: 512))
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(throws: (any Error).self) { _ = try ReconciliationJournal.open(path: path, logger: logger) }
        do {
            _ = try ReconciliationJournal.open(path: path, logger: logger)
        } catch {
            #expect("\(error)".contains("byte 0"), "\(error)")
        }
        #expect(throws: (any Error).self) { _ = try ReconciliationJournal.read(path: path) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count == whole, "nothing cut")
    }

    @Test func aTornLastRecordIsStillCut() throws {
        let directory = TemporaryDirectory(); defer { directory.remove() }
        let path = directory.appending("reconciliation.log")
        try writeCases(3, to: path)
        let whole = try Data(contentsOf: URL(fileURLWithPath: path)).count
        try writeCases(1, to: directory.appending("one.log"))
        let one = try Data(contentsOf: URL(fileURLWithPath: directory.appending("one.log")))
        // Half of a fourth record landed.
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(one.prefix(one.count / 2))
        handle.closeFile()
        let (journal, queue, notes) = try ReconciliationJournal.open(path: path, logger: logger)
        journal.close()
        #expect(queue.order.count == 3)
        #expect(notes.contains { $0.contains("torn") })
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).count == whole)
    }
}

import Foundation
import SandhiEngine
import SandhiHistory
import SandhiParticipants
import SandhiRuntime
import SandhiTestSupport
import Testing

/// Real contention runs over real SQLite banks, with audits mixed in, recorded and checked by
/// the history checker: clean under strict 2PL, and caught when the locks are planted away.
@Suite("Isolation under contention", .serialized)
struct IsolationHistoryTests {
    static let banks = ["hdfc", "icici", "axis", "sbi"].map { ParticipantID(validated: $0) }
    static let accountsPerBank = 6

    struct Run {
        var report: TransferBench.Report
        var history: HistoryReport
    }

    func run(plantedBug: PlantedBug? = nil, seed: UInt64) async throws -> Run {
        let temporary = TemporaryDirectory(); defer { temporary.remove() }
        let directory = DataDirectory(path: temporary.appending("data"))
        var configuration = SandhiConfiguration(participants: Self.banks.map { .init(id: $0) })
        configuration.resendInitialMs = 5
        var accounts: TransferBench.AccountMap = [:]
        try directory.create(configuration) { directory in
            for bank in Self.banks {
                let names = (1...Self.accountsPerBank).map { AccountID(validated: "acct-\($0)") }
                accounts[bank] = names
                try SQLiteBank.create(path: directory.bankPath(bank), participant: bank,
                                      accounts: names.map { ($0, .rupees(1_000)) }, logger: ThreeBanks.logger)
            }
        }
        let total = Paise.rupees(1_000 * Int64(Self.banks.count * Self.accountsPerBank))
        let historyPath = temporary.appending("history.jsonl")
        let recorder = try HistoryRecorder(path: historyPath, totalPaise: total.value)
        let node = try await SandhiNode.start(directory: directory, logger: ThreeBanks.logger, adjust: { configuration in
            configuration.plantedBug = plantedBug
        })
        var options = TransferBench.Options()
        options.workload = .contention
        options.hotAccounts = 6
        options.clients = 12
        options.durationMs = 3_000
        // Enough history to check, however long a loaded machine takes to make it.
        options.minimumCommitted = 21
        options.minimumAudits = 6
        options.readFraction = 0.25
        options.expectedTotal = total
        options.history = recorder
        options.seed = seed
        let report = await TransferBench.run(driver: node.driver, accounts: accounts, options: options)
        node.stop()
        #expect(recorder.close() == nil)
        let history = try HistoryCodec.decode(Data(contentsOf: URL(fileURLWithPath: historyPath)))
        return Run(report: report, history: HistoryChecker().check(history))
    }

    @Test func strictTwoPhaseLockingLeavesNoAnomaly() async throws {
        let run = try await run(seed: 7)
        #expect(run.report.haltedReason == nil)
        #expect(run.report.committed > 20, "enough history to check (a loaded CI machine runs this beside other tests)")
        #expect(run.report.audits > 5, "audits ran")
        #expect(run.report.deadlocks > 0, "the workload is contended enough to deadlock")
        #expect(run.report.auditMismatches == 0)
        #expect(run.history.auditsChecked == run.report.audits)
        #expect(run.history.isClean, "\(run.history.anomalies.prefix(3).map(\.description))")
    }

    @Test func withoutLocksTheCheckerFindsAnomalies() async throws {
        // No locks anywhere: two transfers prepare against the same balance and version, and an
        // audit reads one bank before a transfer and another after it.
        let run = try await run(plantedBug: .noLocks, seed: 7)
        #expect(run.report.committed > 20, "enough history to check (a loaded CI machine runs this beside other tests)")
        #expect(!run.history.isClean)
        #expect(run.history.anomalies.contains { [.duplicateVersion, .g2Item, .g1c, .g0, .bankInvariant].contains($0.kind) },
                "\(run.history.counts)")
    }
}

import Dispatch
import Logging
import SandhiEngine
import SandhiIO
import SandhiParticipants
@testable import SandhiRuntime
import SandhiTestSupport
import Synchronization
import Testing

/// The "durable before it is sent" orderings of the runtime, each looked at on a simulated disk
/// at the instant it matters (issue 13): what a power cut at that instant would keep must
/// already hold what the message or the completion vouches for. Removing the sync, or moving
/// it after the send, leaves the record in the page cache only, and these fail.
@Suite struct DurableBeforeSentTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    static let hdfc = ParticipantID(validated: "hdfc"), sbi = ParticipantID(validated: "sbi")
    static let alice = AccountID(validated: "alice"), carol = AccountID(validated: "carol")

    /// A data directory whose durable files (decision log, journal, banks) are on a simulated
    /// disk; `sandhi.toml` and the lock file, which the node reads and locks with POSIX calls
    /// of its own, are in a real temporary folder at the same path.
    struct SimulatedDiskNode: Sendable {
        let temporary = TemporaryDirectory()
        let disk: SimulatedDisk
        let directory: DataDirectory

        init(seed: UInt64) throws {
            let real = DataDirectory(path: temporary.appending("data"))
            var configuration = SandhiConfiguration(participants: [hdfc, sbi].map { .init(id: $0) })
            configuration.resendInitialMs = 5
            try real.create(configuration) { _ in }
            disk = SimulatedDisk(seed: seed)
            disk.installDirectory(real.coordinatorPath)
            disk.installDirectory(real.banksPath)
            let io = FileIO.through(disk)
            for (bank, account) in [(hdfc, alice), (sbi, carol)] {
                try SQLiteBank.create(path: real.bankPath(bank), participant: bank, accounts: [(account, .rupees(1_000))], io: io, logger: logger)
            }
            directory = DataDirectory(path: real.path, io: io)
        }

        func start(onEvent: (@Sendable (EngineEvent) -> Void)? = nil) async throws -> SandhiNode {
            try await SandhiNode.start(directory: directory, logger: logger, onEvent: onEvent)
        }

        /// What a power cut now would leave of the decision log.
        var durableLog: [DecisionRecord] { disk.durableDecisionRecords(in: directory.coordinatorPath) }

        func remove() { temporary.remove() }
    }

    /// GroupCommitWriter: a batch holding a forced record is synced before any completion of
    /// it runs; a completion is what lets the coordinator send COMMIT.
    @Test func aForcedRecordIsOnTheDiskWhenItsCompletionRuns() throws {
        let directory = "/data/coordinator"
        let disk = SimulatedDisk(seed: 1)
        try disk.makeDirectories(directory)
        let (store, _) = try DecisionLogStore.open(directory: directory, segmentMaxBytes: 4_096, preallocationBytes: 1_024,
                                                   fileSystem: disk, logger: Self.logger)
        let writer = GroupCommitWriter(store: store, logger: Self.logger)
        let problems = Mutex<[String]>([])
        let done = DispatchGroup()
        // Appended without waiting, so that the writer finds several queued at once: batches.
        for sequence in 1...120 as ClosedRange<UInt64> {
            let record = DecisionRecord.commit(transaction: TransactionID(epoch: 1, sequence: sequence), participants: [Self.hdfc, Self.sbi])
            done.enter()
            writer.append(record, forced: true) { result in
                defer { done.leave() }
                guard case .success = result else {
                    problems.withLock { $0.append("\(record) failed: \(result)") }
                    return
                }
                if !disk.durableDecisionRecords(in: directory).contains(record) {
                    problems.withLock { $0.append("\(record) completed while only in the page cache") }
                }
            }
        }
        done.wait()
        writer.shutdown()
        let found = problems.withLock { $0 }
        #expect(found.isEmpty, "\(found.prefix(3).joined(separator: "\n"))")
    }

    /// CoordinatorDriver: the coordinator learns that a COMMIT is durable only from the group
    /// commit's completion, so no COMMIT message leaves before its record is on the disk.
    @Test func aCommitIsSentOnlyOnceItsDecisionIsOnTheDisk() async throws {
        let fixture = try SimulatedDiskNode(seed: 1); defer { fixture.remove() }
        let early = Mutex<[String]>([])
        let sent = Mutex(0)
        let node = try await fixture.start { event in
            guard case .phaseTwoSent(let tx, let participant, true, _) = event.kind else { return }
            sent.withLock { $0 += 1 }
            let logged = fixture.durableLog.contains { if case .commit(tx, _) = $0 { true } else { false } }
            if !logged { early.withLock { $0.append("COMMIT of \(tx) sent to \(participant) before its record was on the disk") } }
        }
        for amount in 1...20 as ClosedRange<Int64> {
            let result = try await node.driver.transfer([
                Branch(participant: Self.hdfc, operations: [.debit(account: Self.alice, amount: .rupees(amount))]),
                Branch(participant: Self.sbi, operations: [.credit(account: Self.carol, amount: .rupees(amount))]),
            ])
            #expect(result.outcome == .committed)
        }
        node.stop()
        #expect(sent.withLock { $0 } >= 40)
        let found = early.withLock { $0 }
        #expect(found.isEmpty, "\(found.prefix(3).joined(separator: "\n"))")
    }

    /// SandhiNode: the new epoch's record is durable before the node takes a transaction, so
    /// ids stay unique across crashes although aborts leave no record. The first process is
    /// killed (its preallocated zeros stay, so the second start has nothing else to sync), the
    /// second loses the power right after it started; the third must start past its epoch.
    @Test(arguments: 0..<6 as Range<UInt64>)
    func aNewEpochIsOnTheDiskBeforeTheNodeTakesATransaction(seed: UInt64) async throws {
        let fixture = try SimulatedDiskNode(seed: seed); defer { fixture.remove() }
        let first = try await fixture.start()
        fixture.disk.restartProcess()
        first.stop()
        let second = try await fixture.start()
        let epoch = second.recovery.epoch
        #expect(epoch > first.recovery.epoch)
        #expect(fixture.durableLog.contains(.epochStarted(epoch: epoch)), "seed \(seed): epoch \(epoch) is only in the page cache")
        fixture.disk.cutPower(afterCalls: 0)
        second.stop()
        fixture.disk.powerLoss()
        let third = try await fixture.start()
        third.stop()
        #expect(third.recovery.epoch > epoch, "seed \(seed): the third start reuses epoch \(third.recovery.epoch)")
    }
}

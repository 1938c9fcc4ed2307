import Logging
import SandhiEngine
import SandhiParticipants
@testable import SandhiRuntime
import SandhiTestSupport
import Synchronization
import Testing

/// The worker's contract: no reply leaves before the storage said its batch is durable.
@Suite struct ParticipantWorkerTests {
    struct InjectedFailure: Error, CustomStringConvertible {
        var description: String { "injected fsync failure" }
    }

    /// Storage that records the order of what the worker asked of it.
    final class RecordingResource: ParticipantResource, @unchecked Sendable {
        let id = ParticipantID(validated: "hdfc")
        let journal = Mutex<[String]>([])
        let failSync = Mutex(false)
        /// What `inDoubt` reports: branches this storage holds prepared.
        let prepared = Mutex<[TransactionID]>([])
        let lingerUs: UInt64

        init(lingerUs: UInt64 = 0) {
            self.lingerUs = lingerUs
        }

        var batchLingerUs: UInt64 { lingerUs }

        func process(_ messages: [ParticipantMessage]) throws -> [ParticipantReply] {
            journal.withLock { $0.append("process \(messages.count)") }
            return messages.map { message in
                switch message {
                case .prepare(let tx, _, _): return .vote(tx, .yes)
                case .commit(let tx), .rollback(let tx, _), .forget(let tx): return .acknowledged(tx)
                }
            }
        }

        func makeDurable() throws {
            if failSync.withLock({ $0 }) { throw InjectedFailure() }
            journal.withLock { $0.append("sync") }
        }

        func inDoubt() -> [TransactionID: [ParticipantID]] {
            Dictionary(uniqueKeysWithValues: prepared.withLock { $0 }.map { ($0, [id]) })
        }
        func inDoubtLocks() -> [TransactionID: [AccountID]] { [:] }
        func close() { journal.withLock { $0.append("close") } }
    }

    final class Delivered: Sendable {
        let replies = Mutex<[ParticipantReply]>([])
        let journal: RecordingResource
        init(_ journal: RecordingResource) { self.journal = journal }
        func deliver(_ batch: [(ParticipantID, ParticipantReply)]) {
            journal.journal.withLock { $0.append("deliver \(batch.count)") }
            replies.withLock { $0 += batch.map(\.1) }
        }
    }

    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    func tx(_ n: UInt64) -> TransactionID { TransactionID(epoch: 1, sequence: n) }

    /// Until `condition` holds, for a minute at most (by the clock, not by a count of naps: a
    /// starved task's naps run long), after which the test's own expectations say what is wrong.
    func waitFor(_ condition: () -> Bool) async {
        _ = await eventually(timeoutMs: 60_000, condition)
    }

    @Test func votesAreDeliveredOnlyAfterTheirBatchIsDurable() async {
        let resource = RecordingResource()
        let delivered = Delivered(resource)
        let worker = ParticipantWorker(resource: resource, capacity: 16, logger: logger) { delivered.deliver($0) }
        worker.send(.prepare(tx(1), operations: [], writers: []))
        await waitFor { delivered.replies.withLock { !$0.isEmpty } }
        worker.stop()
        let journal = resource.journal.withLock { $0 }
        #expect(journal.first == "process 1")
        #expect(journal.firstIndex(of: "sync")! < journal.firstIndex(of: "deliver 1")!)
        #expect(journal.last == "close")
    }

    /// A resource that asks for it (a PostgreSQL bank) gets a batch smaller than the one before
    /// held back until it is as large, within its linger: two half-cohorts become one batch.
    /// One that does not (SQLite) gets every batch at once.
    /// The linger bound is a minute: the batch stops waiting once it is as large as the one
    /// before, so the test takes no longer, and a test task starved by those beside it (CI
    /// runs every target at once) still sends the rest within the bound.
    @Test(arguments: [UInt64(60_000_000), 0])
    func aBatchSmallerThanTheOneBeforeWaitsForMoreOnlyIfTheResourceAsks(lingerUs: UInt64) async {
        let resource = RecordingResource(lingerUs: lingerUs)
        let delivered = Delivered(resource)
        let worker = ParticipantWorker(resource: resource, capacity: 64, logger: logger) { delivered.deliver($0) }
        func sendTogether(_ range: ClosedRange<UInt64>) {
            for n in range { _ = worker.enqueue(.prepare(tx(n), operations: [], writers: [])) }
            worker.wake()
        }
        // One first, so that the thread sleeps on its queue while the next eight are queued
        // (a batch after one message does not linger).
        sendTogether(1...1)
        await waitFor { delivered.replies.withLock { $0.count == 1 } }
        sendTogether(2...9)
        await waitFor { delivered.replies.withLock { $0.count == 9 } }
        sendTogether(10...11)
        await waitFor { worker.queued == 0 }
        sendTogether(12...17)
        await waitFor { delivered.replies.withLock { $0.count == 17 } }
        worker.stop()
        let batches = resource.journal.withLock { $0 }.filter { $0.hasPrefix("process") }
        #expect(batches == (lingerUs > 0 ? ["process 1", "process 8", "process 8"] : ["process 1", "process 8", "process 2", "process 6"]))
    }

    /// After a small batch (one or two transactions in flight) nobody is waited for.
    @Test func aBatchAfterASmallOneDoesNotWait() async {
        let resource = RecordingResource(lingerUs: 60_000_000)
        let delivered = Delivered(resource)
        let worker = ParticipantWorker(resource: resource, capacity: 64, logger: logger) { delivered.deliver($0) }
        for n: UInt64 in 1...3 { _ = worker.enqueue(.prepare(tx(n), operations: [], writers: [])) }
        worker.wake()
        await waitFor { delivered.replies.withLock { $0.count == 3 } }
        worker.send(.prepare(tx(4), operations: [], writers: []))
        await waitFor { delivered.replies.withLock { $0.count == 4 } }
        #expect(delivered.replies.withLock { $0.count } == 4, "a batch after one of three messages waited")
        worker.stop()
    }

    @Test func acknowledgementsWaitForCompany() async {
        let resource = RecordingResource()
        let delivered = Delivered(resource)
        // A hold far longer than the test: only the next vote's fsync (or closing) releases it.
        let worker = ParticipantWorker(resource: resource, capacity: 16, lazySyncUs: 600_000_000, logger: logger) { delivered.deliver($0) }
        worker.send(.commit(tx(1)))
        await waitFor { resource.journal.withLock { $0.contains("process 1") } }
        try? await Task.sleep(nanoseconds: 50_000_000)
        #expect(delivered.replies.withLock { $0.isEmpty }, "an acknowledgement left without an fsync of its own or company")
        worker.send(.prepare(tx(2), operations: [], writers: []))
        await waitFor { delivered.replies.withLock { $0.count == 2 } }
        worker.stop()
        #expect(delivered.replies.withLock { $0 } == [.acknowledged(tx(1)), .vote(tx(2), .yes)])
        #expect(resource.journal.withLock { $0 }.filter { $0 == "sync" }.count == 1, "the two batches should share one fsync")
    }

    @Test func heldAcknowledgementsAreSyncedOnceTheyHaveWaitedLongEnough() async {
        let resource = RecordingResource()
        let delivered = Delivered(resource)
        let worker = ParticipantWorker(resource: resource, capacity: 16, lazySyncUs: 1_000, logger: logger) { delivered.deliver($0) }
        worker.send(.commit(tx(1)))
        await waitFor { delivered.replies.withLock { !$0.isEmpty } }
        #expect(delivered.replies.withLock { $0 } == [.acknowledged(tx(1))])
        worker.stop()
        let journal = resource.journal.withLock { $0 }
        #expect(journal.firstIndex(of: "sync")! < journal.firstIndex(of: "deliver 1")!)
    }

    @Test func aFailedSyncStopsTheParticipantWithoutAnswering() async {
        let resource = RecordingResource()
        resource.failSync.withLock { $0 = true }
        let delivered = Delivered(resource)
        let worker = ParticipantWorker(resource: resource, capacity: 16, logger: logger) { delivered.deliver($0) }
        worker.send(.prepare(tx(1), operations: [], writers: []))
        await waitFor { worker.failure != nil }
        resource.failSync.withLock { $0 = false }
        worker.send(.prepare(tx(2), operations: [], writers: []))
        worker.stop()
        #expect(worker.failure?.contains("injected") == true)
        #expect(delivered.replies.withLock { $0.isEmpty }, "a reply left after durability became unknown")
        #expect(resource.journal.withLock { $0 }.filter { $0.hasPrefix("process") } == ["process 1"])
    }

    @Test func aCrashLosesWhatIsQueuedAndARestartSaysYesAgainForEveryRestoredBranch() async {
        let first = RecordingResource()
        let delivered = Delivered(first)
        let worker = ParticipantWorker(resource: first, capacity: 16, logger: logger) { delivered.deliver($0) }
        worker.send(.prepare(tx(1), operations: [], writers: []))
        await waitFor { delivered.replies.withLock { $0.count == 1 } }
        #expect(worker.crash())
        #expect(first.journal.withLock { $0.last } == "close")
        #expect(!worker.crash(), "a crashed worker crashed again")
        // Queued for a process that is gone: lost.
        worker.send(.prepare(tx(2), operations: [], writers: []))
        let second = RecordingResource()
        second.prepared.withLock { $0 = [tx(1)] } // the branch its storage restored
        #expect(worker.restart(with: second))
        #expect(!worker.restart(with: second), "a running worker restarted")
        await waitFor { delivered.replies.withLock { $0.count == 2 } }
        worker.send(.commit(tx(1)))
        await waitFor { delivered.replies.withLock { $0.count == 3 } }
        worker.stop()
        #expect(delivered.replies.withLock { $0 } == [.vote(tx(1), .yes), .vote(tx(1), .yes), .acknowledged(tx(1))])
        #expect(second.journal.withLock { $0 }.filter { $0.hasPrefix("process") } == ["process 1"])
        #expect(second.journal.withLock { $0 }.last == "close")
    }

    /// Review finding F7: a COMMIT that fails every time (here an outside trigger refuses any
    /// change to one account, as an outside writer's interference would) must not fail every
    /// batch it lands in. Its batch is run again one message at a time: the others are stored
    /// and answered, the poisoned one stays prepared and unanswered, and it is counted.
    @Test func aMessageThatFailsEveryTimeDoesNotTakeItsBatchDownWithIt() async throws {
        let temporary = TemporaryDirectory("sandhi-poison"); defer { temporary.remove() }
        let path = temporary.appending("hdfc.sqlite")
        let hdfc = ParticipantID(validated: "hdfc")
        let (poisoned, healthy) = (AccountID(validated: "acct-1"), AccountID(validated: "acct-2"))
        try SQLiteBank.create(path: path, participant: hdfc, accounts: [(poisoned, .rupees(100)), (healthy, .rupees(100))], logger: logger)
        let interference = try SQLiteDatabase(path: path, create: false)
        try interference.execute("""
            CREATE TRIGGER outside_interference BEFORE UPDATE ON accounts WHEN OLD.id = 'acct-1'
            BEGIN SELECT RAISE(ABORT, 'acct-1 is frozen by another system'); END
            """)
        interference.close()
        let bank = try SQLiteBank(path: path, participant: hdfc, logger: logger)
        let debit: (AccountID) -> [Operation] = { [.debit(account: $0, amount: .rupees(10))] }
        let votes = try bank.process([.prepare(tx(1), operations: debit(poisoned), writers: [hdfc]),
                                      .prepare(tx(2), operations: debit(healthy), writers: [hdfc])])
        #expect(votes.map(Self.withoutObservations) == [.vote(tx(1), .yes), .vote(tx(2), .yes)])
        try bank.makeDurable()

        let recorder = RecordingResource()
        let delivered = Delivered(recorder)
        let worker = ParticipantWorker(resource: bank, capacity: 16, logger: logger) { delivered.deliver($0) }
        // One batch: queued before the worker is woken.
        for message: ParticipantMessage in [.commit(tx(1)), .commit(tx(2)), .prepare(tx(3), operations: debit(healthy), writers: [hdfc])] {
            _ = worker.enqueue(message)
        }
        worker.wake()
        await waitFor { delivered.replies.withLock { $0.count == 2 } }
        let isolated = worker.isolatedFailures
        worker.stop()
        #expect(delivered.replies.withLock { $0 }.map(Self.withoutObservations) == [.acknowledged(tx(2)), .vote(tx(3), .yes)])
        #expect(isolated == 1)
        let reopened = try SQLiteBank(path: path, participant: hdfc, logger: logger)
        defer { reopened.close() }
        #expect(Set(reopened.inDoubt().keys) == [tx(1), tx(3)], "the poisoned COMMIT must leave its branch prepared")
        #expect(try reopened.balance(of: healthy) == .rupees(90))
        #expect(try reopened.balance(of: poisoned) == .rupees(100))
    }

    /// A reply without the balances a vote observed (what the isolation tests compare).
    static func withoutObservations(_ reply: ParticipantReply) -> ParticipantReply {
        if case .vote(let tx, let vote, _) = reply { return .vote(tx, vote) }
        return reply
    }

    @Test func onceAskedAWorkerInquiresAboutBranchesThatStayPrepared() async {
        let resource = RecordingResource()
        resource.prepared.withLock { $0 = [tx(7)] }
        let delivered = Delivered(resource)
        let worker = ParticipantWorker(resource: resource, capacity: 16, inquiryIntervalUs: 5_000, logger: logger) { delivered.deliver($0) }
        worker.startInquiring()
        // Prepared at two inquiries in a row: asked about, and again every interval after.
        await waitFor { delivered.replies.withLock { $0.count >= 2 } }
        worker.stop()
        #expect(delivered.replies.withLock { Set($0) } == [.vote(tx(7), .yes)])
    }
}

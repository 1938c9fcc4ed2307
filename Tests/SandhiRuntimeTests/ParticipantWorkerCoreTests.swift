import Logging
import SandhiEngine
import SandhiIO
import SandhiParticipants
import SandhiRuntime
import Testing

/// The worker's decisions on virtual time, one round at a time, as the simulator drives them:
/// no thread, no real clock, so each rule is checked at the exact microsecond it turns.
@Suite struct ParticipantWorkerCoreTests {
    typealias Resource = ParticipantWorkerTests.RecordingResource
    let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    let clock = VirtualClock()
    func tx(_ n: UInt64) -> TransactionID { TransactionID(epoch: 1, sequence: n) }

    func core(lazySyncUs: UInt64 = 2_000, inquiryIntervalUs: UInt64 = 500_000) -> ParticipantWorkerCore {
        ParticipantWorkerCore(id: ParticipantID(validated: "hdfc"),
                              configuration: .init(lazySyncUs: lazySyncUs, inquiryIntervalUs: inquiryIntervalUs),
                              clocks: clock.clocks, logger: logger)
    }

    func delivered(_ outcome: ParticipantWorkerCore.SyncOutcome) -> [ParticipantReply]? {
        if case .deliver(let replies) = outcome { return replies.map(\.1) }
        return nil
    }

    @Test func aVoteIsSyncedInTheRoundThatMadeIt() {
        let resource = Resource()
        var core = core()
        let due1 = core.store([.prepare(tx(1), operations: [], writers: [])], resource)
        #expect(due1)
        let outcome2 = core.sync(resource)
        #expect(delivered(outcome2) == [.vote(tx(1), .yes)])
        #expect(resource.journal.withLock { $0 } == ["process 1", "sync"])
        #expect(core.waitUs(resource) == nil, "nothing held, nothing to ask: wait for a message")
    }

    @Test func acknowledgementsWaitForCompanyButNeverLongerThanTheLazySyncBound() {
        let resource = Resource()
        var core = core(lazySyncUs: 2_000)
        clock.nowUs = 10_000
        let due3 = core.store([.commit(tx(1))], resource)
        #expect(!due3, "an acknowledgement alone waits")
        #expect(core.waitUs(resource) == 2_000)
        clock.nowUs = 11_500
        let due4 = core.store([.commit(tx(2))], resource)
        #expect(!due4, "a second rides along, still within the bound")
        #expect(core.waitUs(resource) == 500, "the bound counts from the oldest")
        #expect(core.heldCount == 2)
        clock.nowUs = 12_000
        let due5 = core.store([], resource)
        #expect(due5, "the oldest has waited the bound: sync")
        let outcome6 = core.sync(resource)
        #expect(delivered(outcome6) == [.acknowledged(tx(1)), .acknowledged(tx(2))])
        #expect(resource.journal.withLock { $0.filter { $0 == "sync" }.count } == 1)
    }

    @Test func aQuietRoundSyncsWhatIsHeld() {
        let resource = Resource()
        var core = core(lazySyncUs: 1_000_000)
        let due7 = core.store([.rollback(tx(1))], resource)
        #expect(!due7)
        // The driver's wait ended with nothing: nobody else is coming to share the fsync.
        let due8 = core.store([], resource)
        #expect(due8)
    }

    @Test func aVoteTakesHeldAcknowledgementsAlong() {
        let resource = Resource()
        var core = core()
        let due9 = core.store([.commit(tx(1))], resource)
        #expect(!due9)
        let due10 = core.store([.prepare(tx(2), operations: [], writers: [])], resource)
        #expect(due10)
        let outcome11 = core.sync(resource)
        #expect(delivered(outcome11) == [.acknowledged(tx(1)), .vote(tx(2), .yes)])
    }

    @Test func aFailedSyncDeliversNothingThenOrLater() {
        let resource = Resource()
        var core = core()
        resource.failSync.withLock { $0 = true }
        let due12 = core.store([.prepare(tx(1), operations: [], writers: [])], resource)
        #expect(due12)
        guard case .failed = core.sync(resource) else {
            Issue.record("a failed fsync must not deliver")
            return
        }
        #expect(core.failed)
        resource.failSync.withLock { $0 = false }
        let due13 = core.store([.prepare(tx(2), operations: [], writers: [])], resource)
        #expect(!due13, "a failed worker stores nothing more")
        #expect(resource.journal.withLock { $0 } == ["process 1"])
    }

    @Test func aCrashLosesHeldRepliesAndARestartSaysYesAgain() {
        let resource = Resource()
        var core = core()
        let due15 = core.store([.commit(tx(1))], resource)
        #expect(!due15)
        core.crash()
        #expect(core.heldCount == 0)
        resource.prepared.withLock { $0 = [tx(3), tx(2)] }
        let due16 = core.restarted(resource)
        #expect(due16)
        let outcome17 = core.sync(resource)
        #expect(delivered(outcome17) == [.vote(tx(2), .yes), .vote(tx(3), .yes)])
    }

    @Test func branchesPreparedAcrossAWholeIntervalAreAskedAbout() {
        let resource = Resource()
        var core = core(inquiryIntervalUs: 100_000)
        core.inquiring = true
        resource.prepared.withLock { $0 = [tx(1)] }
        #expect(core.waitUs(resource) == 0)
        let due18 = core.store([], resource)
        #expect(!due18, "the first look only notes what is prepared")
        #expect(core.waitUs(resource) == 100_000)
        clock.nowUs = 60_000
        resource.prepared.withLock { $0 = [tx(1), tx(2)] }
        #expect(core.waitUs(resource) == 40_000)
        clock.nowUs = 100_000
        let due19 = core.store([], resource)
        #expect(due19)
        let outcome20 = core.sync(resource)
        #expect(delivered(outcome20) == [.vote(tx(1), .yes)], "tx 2 has not waited a whole interval")
    }

    @Test func aMessageThatFailsAloneLeavesTheRestOfItsBatchAnswered() {
        final class Picky: ParticipantResource {
            let id = ParticipantID(validated: "hdfc")
            let poison: TransactionID
            init(poison: TransactionID) { self.poison = poison }
            struct Refused: Error {}
            func process(_ messages: [ParticipantMessage]) throws -> [ParticipantReply] {
                if messages.contains(where: { $0.transaction == poison }) { throw Refused() }
                return messages.map { .acknowledged($0.transaction) }
            }
            func makeDurable() throws {}
            func inDoubt() -> [TransactionID: [ParticipantID]] { [:] }
            func inDoubtLocks() -> [TransactionID: [AccountID]] { [:] }
            func close() {}
        }
        let resource = Picky(poison: tx(2))
        var core = core()
        _ = core.store([.commit(tx(1)), .commit(tx(2)), .commit(tx(3))], resource)
        #expect(core.stats.isolatedFailures == 1)
        let outcome21 = core.sync(resource)
        #expect(delivered(outcome21) == [.acknowledged(tx(1)), .acknowledged(tx(3))])
    }
}

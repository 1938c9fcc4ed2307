import Logging
import SandhiEngine
import SandhiIO
import SandhiRuntime
import Testing

/// The group-commit writer's batch rules on a simulated disk, one batch at a time, as the
/// simulator runs them: a batch with a forced record is synced once, ENDs alone are not, a
/// failed sync fails the batch and everything after it, and a clean stop syncs what is left.
@Suite struct GroupCommitBatchTests {
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    typealias F = DecisionLogFixture

    func open(_ disk: SimulatedDisk) throws -> DecisionLogStore {
        try disk.makeDirectories("/log")
        let (store, _) = try DecisionLogStore.open(directory: "/log", fileSystem: disk, logger: Self.logger)
        store.epoch = 1
        return store
    }

    func syncs(_ disk: SimulatedDisk) -> Int {
        disk.calls.count { if case .dataSync = $0 { true } else { false } }
    }

    @Test func aForcedRecordSyncsItsWholeBatchOnceAndEndsAloneAreNotSynced() throws {
        let disk = SimulatedDisk(seed: 1)
        let store = try open(disk)
        var batch = GroupCommitBatch()
        let before = syncs(disk)
        let positions = try batch.write([F.commit(1), F.commit(2), F.end(0)], forced: true, to: store).get()
        #expect(positions.count == 3)
        #expect(syncs(disk) == before + 1, "one fsync for the batch")
        #expect(batch.syncs == 1 && batch.records == 3 && !batch.unsyncedWrites)
        _ = try batch.write([F.end(1), F.end(2)], forced: false, to: store).get()
        #expect(syncs(disk) == before + 1, "ENDs alone wait for the next sync")
        #expect(batch.unsyncedWrites)
        batch.finish(store, logger: Self.logger)
        #expect(syncs(disk) == before + 2, "a clean stop syncs what is left")
        #expect(!batch.unsyncedWrites)
    }

    @Test func aFailedSyncFailsItsBatchAndTheStoreRefusesTheNext() throws {
        let disk = SimulatedDisk(seed: 2)
        let store = try open(disk)
        var batch = GroupCommitBatch()
        disk.failNextSync()
        guard case .failure = batch.write([F.commit(1)], forced: true, to: store) else {
            Issue.record("a batch whose fsync failed must fail")
            return
        }
        guard case .failure = batch.write([F.commit(2)], forced: true, to: store) else {
            Issue.record("after a failed fsync nobody knows what is on the disk: the store must refuse")
            return
        }
        #expect(batch.syncs == 0)
    }
}

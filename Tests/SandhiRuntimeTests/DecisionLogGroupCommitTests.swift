import Dispatch
import Foundation
import SandhiEngine
import SandhiRuntime
import Synchronization
import Testing

@Suite struct DecisionLogGroupCommitTests {
    typealias Fixture = DecisionLogFixture

    /// Collects completion results from many threads.
    final class Results: Sendable {
        let positions = Mutex<[LogPosition]>([])
        let failures = Mutex<[DecisionLogError]>([])

        func record(_ result: Result<LogPosition, DecisionLogError>) {
            switch result {
            case .success(let position): positions.withLock { $0.append(position) }
            case .failure(let error): failures.withLock { $0.append(error) }
            }
        }
    }

    /// Appends and waits for the completion, as a transaction waits for its COMMIT to be durable.
    private func appendAndWait(_ writer: GroupCommitWriter, _ record: DecisionRecord, forced: Bool)
        -> Result<LogPosition, DecisionLogError>
    {
        let done = DispatchSemaphore(value: 0)
        let shared = SharedResult()
        writer.append(record, forced: forced) { result in
            shared.value.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return shared.value.withLock { $0! }
    }

    final class SharedResult: Sendable {
        let value = Mutex<Result<LogPosition, DecisionLogError>?>(nil)
    }

    /// Runs `body(index)` on `count` dedicated threads at once and waits for all of them.
    private func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for index in 0..<count {
            group.enter()
            let thread = Thread {
                body(index)
                group.leave()
            }
            thread.start()
        }
        group.wait()
    }

    @Test func concurrentForcedAppendsShareSyncs() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
            let writer = GroupCommitWriter(store: store, logger: Fixture.logger)
            let results = Results()
            let appenders = 64, perAppender = 100
            onThreads(appenders) { appender in
                for index in 0..<perAppender {
                    let sequence = UInt64(appender * perAppender + index + 1)
                    let done = DispatchSemaphore(value: 0)
                    writer.append(Fixture.commit(sequence), forced: true) { result in
                        results.record(result)
                        done.signal()
                    }
                    done.wait()
                }
            }
            let stats = writer.stats
            writer.shutdown()

            let positions = results.positions.withLock { $0 }
            #expect(results.failures.withLock { $0 }.isEmpty)
            #expect(positions.count == appenders * perAppender)
            #expect(Set(positions).count == positions.count)
            #expect(stats.records == appenders * perAppender)
            #expect(stats.syncs >= 1 && stats.syncs < stats.records)

            let recovered = try DecisionLogStore.read(directory: directory)
            let commits = recovered.records.filter { $0.record.transaction != nil }
            #expect(commits.count == appenders * perAppender)
            #expect(Set(commits.map(\.position)) == Set(positions))
            #expect(Set(commits.compactMap(\.record.transaction))
                == Set((1...UInt64(appenders * perAppender)).map { Fixture.transaction($0) }))
        }
    }

    @Test func boundedQueueBlocksAppendersUntilThereIsRoom() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
            let writer = GroupCommitWriter(store: store, maxQueued: 4, logger: Fixture.logger)
            let results = Results()
            let appenders = 8, perAppender = 200
            onThreads(appenders) { appender in
                // Fire and forget: only the queue bound holds these threads back.
                for index in 0..<perAppender {
                    let sequence = UInt64(appender * perAppender + index + 1)
                    writer.append(Fixture.commit(sequence), forced: index % 10 == 0) { results.record($0) }
                    writer.append(Fixture.end(sequence), forced: false) { results.record($0) }
                }
            }
            writer.shutdown()  // Drains the rest.

            let positions = results.positions.withLock { $0 }
            #expect(positions.count == 2 * appenders * perAppender)
            #expect(Set(positions).count == positions.count)
            let recovered = try DecisionLogStore.read(directory: directory)
            #expect(recovered.records.filter { $0.record.transaction != nil }.count == positions.count)
            #expect(recovered.unfinishedCommits.isEmpty)
        }
    }

    @Test func shutdownDrainsAndSyncsUnforcedRecords() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
            let writer = GroupCommitWriter(store: store, logger: Fixture.logger)
            let results = Results()
            for sequence in 1...50 as ClosedRange<UInt64> {
                writer.append(Fixture.end(sequence), forced: false) { results.record($0) }
            }
            writer.shutdown()
            writer.shutdown()  // Idempotent.
            #expect(results.positions.withLock { $0.count } == 50)
            #expect(writer.stats.syncs == 0 && writer.stats.records == 50)

            // After shutdown the completion still runs, with .closed.
            writer.append(Fixture.end(51), forced: true) { results.record($0) }
            #expect(results.failures.withLock { $0 } == [.closed])
            #expect(throws: DecisionLogError.closed) { try store.append([Fixture.end(52)]) }

            let recovered = try DecisionLogStore.read(directory: directory)
            #expect(recovered.records.count == 51)
        }
    }

    /// Batches of unforced ENDs get no sync of their own, but the store syncs before more than
    /// maxUnsyncedBytes of them are unsynced (a power cut can then tear only that much).
    @Test func unforcedRecordsAreSyncedAtTheUnsyncedBound() throws {
        try Fixture.withTemporaryDirectory { directory in
            // Preallocation far beyond what is written: its own syncs (each extension is synced)
            // would otherwise hide whether the bound is kept.
            let (store, _) = try DecisionLogStore.open(
                directory: directory, preallocationBytes: 8 * DecisionLogStore.maxUnsyncedBytes, logger: Fixture.logger)
            // Extended (and synced) before the first record: left to the writer, the extension
            // came whenever it first went idle, and its sync reset the unsynced count part-way,
            // leaving one bound sync where two are due.
            try store.preallocate()
            let writer = GroupCommitWriter(store: store, logger: Fixture.logger)
            let results = Results()
            let frameBytes = RecordFraming.headerBytes + Fixture.end(1).encoded().count
            let count = 5 * DecisionLogStore.maxUnsyncedBytes / (2 * frameBytes)
            let done = DispatchGroup()
            for sequence in 1...count {
                done.enter()
                writer.append(Fixture.end(UInt64(sequence)), forced: false) { result in
                    results.record(result)
                    done.leave()
                }
            }
            done.wait()
            let stats = writer.stats
            writer.shutdown()

            #expect(results.failures.withLock { $0 }.isEmpty)
            #expect(results.positions.withLock { $0.count } == count)
            #expect(stats.records == count)
            // 2.5 times the bound written, no record forced.
            #expect(stats.syncs == 2, "\(stats)")
        }
    }

    @Test func failedSyncFailsTheRecordAndEverythingAfter() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
            let writer = GroupCommitWriter(store: store, logger: Fixture.logger)
            defer { writer.shutdown() }

            guard case .success = appendAndWait(writer, Fixture.commit(1), forced: true) else {
                Issue.record("first append failed"); return
            }
            writer.failNextSync()
            let failed = appendAndWait(writer, Fixture.commit(2), forced: true)
            guard case .failure(let error) = failed, case .io = error else {
                Issue.record("expected .io failure, got \(failed)"); return
            }
            #expect(error.description.hasPrefix("decision log I/O error: fdatasync "))
            #expect(error.description.contains("segment-00000001.log"))

            // Sticky: unforced and forced appends alike fail at once with the same error.
            for forced in [false, true] {
                let later = appendAndWait(writer, Fixture.end(1), forced: forced)
                #expect(later == .failure(error))
            }
            #expect(writer.stats.syncs == 1)
        }
    }
}

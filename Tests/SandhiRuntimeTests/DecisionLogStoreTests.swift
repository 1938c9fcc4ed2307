import Foundation
import SandhiEngine
import SandhiRuntime
import Testing

@Suite struct DecisionLogStoreTests {
    typealias Fixture = DecisionLogFixture

    @Test func newDirectoryGetsFirstSegmentWithHeader() throws {
        try Fixture.withTemporaryDirectory { root in
            let directory = root + "/coordinator/log"  // Missing parents are created.
            let (store, recovered) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
            defer { store.close() }
            #expect(recovered.records.isEmpty)
            #expect(recovered.maxEpoch == 0)
            #expect(recovered.unfinishedCommits.isEmpty)
            #expect(store.segmentNumbers == [1])
            #expect(try Fixture.fileNames(directory) == ["segment-00000001.log"])

            let reread = try DecisionLogStore.read(directory: directory)
            #expect(reread.records.map(\.record) == [.segmentHeader(segment: 1, epoch: 0)])
            #expect(reread.records.map(\.position) == [LogPosition(segment: 1, offset: 0)])
        }
    }

    @Test func everyRecordKindRoundTripsWithPositions() throws {
        try Fixture.withTemporaryDirectory { directory in
            let many = (0..<DecisionRecord.maxParticipants).map { ParticipantID(validated: "bank-\($0)") }
            let longest = ParticipantID(validated: String(repeating: "z", count: ParticipantID.maxLengthBytes))
            let batches: [[DecisionRecord]] = [
                [.epochStarted(epoch: 3)],
                [.commit(transaction: Fixture.transaction(1, epoch: 3), participants: Fixture.participants("hdfc")),
                 .commit(transaction: Fixture.transaction(2, epoch: 3), participants: []),
                 .end(transaction: Fixture.transaction(1, epoch: 3))],
                [.commit(transaction: Fixture.transaction(3, epoch: 3), participants: many)],
                [.commit(transaction: TransactionID(rawValue: .max), participants: [longest])],
                [.end(transaction: Fixture.transaction(3, epoch: 3)), .epochStarted(epoch: TransactionID.maxEpoch)],
            ]

            let (store, _) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
            var expected: [(position: LogPosition, record: DecisionRecord)] = [
                (LogPosition(segment: 1, offset: 0), .segmentHeader(segment: 1, epoch: 0)),
            ]
            for batch in batches {
                let positions = try store.append(batch)
                #expect(positions.count == batch.count)
                expected += zip(positions, batch).map { ($0, $1) }
            }
            try store.sync()
            store.close()
            #expect(throws: DecisionLogError.closed) { try store.append([Fixture.end(1)]) }
            #expect(throws: DecisionLogError.closed) { try store.sync() }

            // Positions are strictly increasing and each names the byte where its frame starts.
            let positions = expected.map(\.position)
            #expect(positions == positions.sorted() && Set(positions).count == positions.count)

            let (reopened, recovered) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
            defer { reopened.close() }
            #expect(recovered.records.map(\.position) == positions)
            #expect(recovered.records.map(\.record) == expected.map(\.record))
            #expect(recovered.maxEpoch == TransactionID.maxEpoch)
            #expect(recovered.unfinishedCommits == [
                Fixture.transaction(2, epoch: 3): [],
                TransactionID(rawValue: .max): [longest],
            ])
            #expect(recovered.notes.isEmpty)
            #expect(reopened.epoch == TransactionID.maxEpoch)

            let readOnly = try DecisionLogStore.read(directory: directory)
            #expect(readOnly.records.map(\.position) == positions)
            #expect(readOnly.records.map(\.record) == expected.map(\.record))
        }
    }

    @Test func appendsContinueAfterReopen() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (first, _) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
            let before = try first.append([Fixture.commit(1)])
            try first.sync()
            first.close()

            let (second, recovered) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
            let after = try second.append([Fixture.end(1)])
            try second.sync()
            second.close()
            #expect(recovered.unfinishedCommits.keys.sorted() == [Fixture.transaction(1)])
            #expect(after[0] > before[0])

            let final = try DecisionLogStore.read(directory: directory)
            #expect(final.records.map(\.record) == [.segmentHeader(segment: 1, epoch: 0), Fixture.commit(1), Fixture.end(1)])
            #expect(final.records.last?.position == after[0])
            #expect(final.unfinishedCommits.isEmpty)
        }
    }

    @Test func segmentsRollAtSegmentMaxBytesWithHeaders() throws {
        try Fixture.withTemporaryDirectory { directory in
            let segmentMaxBytes = 200
            let (store, _) = try DecisionLogStore.open(
                directory: directory, segmentMaxBytes: segmentMaxBytes, logger: Fixture.logger)
            store.epoch = 4
            // Open commits keep every segment alive, so all of them can be inspected.
            var appended: [DecisionRecord] = []
            for sequence in 1...40 as ClosedRange<UInt64> {
                let record = Fixture.commit(sequence)
                let positions = try store.append([record])
                #expect(positions[0].offset > 0)  // Offset 0 of every segment is its header.
                appended.append(record)
            }
            try store.sync()
            #expect(store.segmentNumbers.count > 5)
            #expect(store.segmentNumbers == Array(1...UInt64(store.segmentNumbers.count)))
            store.close()

            for number in 1...UInt64(5) {
                let size = try Fixture.readFile(Fixture.segmentPath(directory, number)).count
                #expect(size <= segmentMaxBytes)
            }
            let recovered = try DecisionLogStore.read(directory: directory)
            #expect(recovered.records.compactMap { $0.record.transaction == nil ? nil : $0.record } == appended)
            let headers = recovered.records.filter {
                if case .segmentHeader = $0.record { return true } else { return false }
            }
            #expect(headers.allSatisfy { $0.position.offset == 0 })
            #expect(headers.first?.record == .segmentHeader(segment: 1, epoch: 0))
            #expect(headers.dropFirst().allSatisfy {
                $0.record == .segmentHeader(segment: $0.position.segment, epoch: 4)
            })
        }
    }

    @Test func recordLargerThanSegmentGetsItsOwnSegment() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try DecisionLogStore.open(directory: directory, segmentMaxBytes: 64, logger: Fixture.logger)
            let many = (0..<20).map { ParticipantID(validated: "participant-\($0)") }
            let big1 = DecisionRecord.commit(transaction: Fixture.transaction(1), participants: many)
            let big2 = DecisionRecord.commit(transaction: Fixture.transaction(2), participants: many)
            let positions = try store.append([big1, big2, Fixture.end(3)])
            try store.sync()
            store.close()
            #expect(positions.map(\.segment) == [1, 2, 3])
            #expect(positions.allSatisfy { $0.offset == 25 })  // Right after each segment's header.
            let recovered = try DecisionLogStore.read(directory: directory)
            #expect(recovered.records.filter { $0.record.transaction != nil }.map(\.position) == positions)
        }
    }

    /// Unforced records are synced by the store before more than maxUnsyncedBytes of them pile
    /// up, whether they come in many small appends or in one batch bigger than the bound.
    @Test func unsyncedBytesNeverExceedTheBound() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
            defer { store.close() }
            let bound = DecisionLogStore.maxUnsyncedBytes
            #expect(store.unsyncedBytes == 0)
            var highestUnsyncedBytes = 0
            var sequence: UInt64 = 0
            var writtenBytes = 0
            while writtenBytes <= 2 * bound {
                let batch = (0..<100).map { _ in sequence += 1; return Fixture.end(sequence) }
                let positions = try store.append(batch)
                writtenBytes = Int(positions.last!.offset)
                highestUnsyncedBytes = max(highestUnsyncedBytes, store.unsyncedBytes)
            }
            #expect(highestUnsyncedBytes <= bound && highestUnsyncedBytes > bound - 4096)
            #expect(store.boundSyncCount == 2)

            let many = (0..<DecisionRecord.maxParticipants).map { ParticipantID(validated: "participant-\($0)") }
            let bulkyFrameBytes = RecordFraming.headerBytes
                + DecisionRecord.commit(transaction: Fixture.transaction(1), participants: many).encoded().count
            // One batch of 2.5 times the bound.
            let bulky = (1...UInt64(5 * bound / (2 * bulkyFrameBytes))).map {
                DecisionRecord.commit(transaction: Fixture.transaction($0), participants: many)
            }
            let syncsBefore = store.boundSyncCount
            _ = try store.append(bulky)
            #expect(store.unsyncedBytes <= bound)
            #expect(store.boundSyncCount - syncsBefore >= 2)

            try store.sync()
            #expect(store.unsyncedBytes == 0)
        }
    }

    @Test func errorDescriptionsAreOneLine() {
        let corrupt = DecisionLogError.corrupt(file: "/data/segment-00000001.log", offset: 42, reason: "bad\nthing")
        #expect(corrupt.description == "decision log corrupt: /data/segment-00000001.log at byte 42: bad\\nthing")
        #expect(DecisionLogError.io("fdatasync x (Input/output error)").description
            == "decision log I/O error: fdatasync x (Input/output error)")
        #expect(DecisionLogError.closed.description == "decision log is closed")
    }

    @Test func readOfMissingDirectoryIsAnIOError() throws {
        try Fixture.withTemporaryDirectory { root in
            do {
                _ = try DecisionLogStore.read(directory: root + "/absent")
                Issue.record("read of a missing directory succeeded")
            } catch let error as DecisionLogError {
                guard case .io = error else { Issue.record("unexpected \(error)"); return }
                #expect(error.description.contains("No such file or directory"))
                #expect(!FileManager.default.fileExists(atPath: root + "/absent"))
            }
        }
    }
}

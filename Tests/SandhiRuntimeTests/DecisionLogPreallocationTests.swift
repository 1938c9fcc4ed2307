import Dispatch
import Foundation
import SandhiEngine
import SandhiRuntime
import Testing

/// The active segment is zero-filled ahead of its records. Those zeros are never a torn tail in
/// the last segment, never survive into an earlier one, and never change what recovery finds.
///
/// A "crash image" is a copy of the directory taken while the store is still open: what a killed
/// process leaves behind (the copy reads the page cache, exactly as the next process would).
@Suite struct DecisionLogPreallocationTests {
    typealias Fixture = DecisionLogFixture
    /// Small, so that a few hundred records extend the preallocation many times.
    static let preallocationBytes = 1024

    private func open(_ directory: String, segmentMaxBytes: Int = 64 << 20) throws -> (DecisionLogStore, RecoveredDecisionLog) {
        try DecisionLogStore.open(
            directory: directory, segmentMaxBytes: segmentMaxBytes, preallocationBytes: Self.preallocationBytes,
            logger: Fixture.logger)
    }

    /// Copies every file of `directory` into a new directory `image` (created).
    private func crashImage(of directory: String, to image: String) throws {
        try FileManager.default.createDirectory(atPath: image, withIntermediateDirectories: false)
        for name in try Fixture.fileNames(directory) {
            try Fixture.writeFile(image + "/" + name, Fixture.readFile(directory + "/" + name))
        }
    }

    /// Every segment file, byte for byte.
    private func segmentFiles(_ directory: String) throws -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        for name in try Fixture.fileNames(directory) {
            files[name] = try Fixture.readFile(directory + "/" + name)
        }
        return files
    }

    /// The framing scan of one segment file.
    private func scan(_ directory: String, _ number: UInt64) throws -> (bytes: [UInt8], scan: RecordFraming.Scan) {
        let bytes = try Fixture.readFile(Fixture.segmentPath(directory, number))
        return (bytes, RecordFraming.scan(bytes))
    }

    /// End of the frame of the record at `position` in `recovered`.
    private func frameEnd(of record: DecisionRecord, at position: LogPosition) -> Int {
        Int(position.offset) + RecordFraming.headerBytes + record.encoded().count
    }

    @Test func reopenAfterManyAppendsFindsTheSameRecordsAndNoNotes() throws {
        try Fixture.withTemporaryDirectory { root in
            let directory = root + "/live"
            let (store, _) = try open(directory)
            var expected: [(position: LogPosition, record: DecisionRecord)] = [
                (LogPosition(segment: 1, offset: 0), .segmentHeader(segment: 1, epoch: 0)),
            ]
            for sequence in 1...300 as ClosedRange<UInt64> {
                let batch = sequence % 3 == 0 ? [Fixture.commit(sequence), Fixture.end(sequence)] : [Fixture.commit(sequence)]
                let positions = try store.append(batch)
                expected += zip(positions, batch).map { ($0, $1) }
                try store.preallocate()
                if sequence % 7 == 0 { try store.sync() }
            }
            try store.sync()
            let recordsEnd = frameEnd(of: expected.last!.record, at: expected.last!.position)
            let (liveBytes, liveScan) = try scan(directory, 1)
            #expect(liveBytes.count > recordsEnd, "no zeros ahead of the write position")
            #expect(liveBytes.count <= recordsEnd + Self.preallocationBytes)
            #expect(liveScan.tail == .zeroFilled(offset: recordsEnd))

            let image = root + "/image"
            try crashImage(of: directory, to: image)
            let before = try segmentFiles(image)
            let (reopened, recovered) = try open(image)
            #expect(recovered.notes.isEmpty, "\(recovered.notes)")
            #expect(recovered.records.map(\.position) == expected.map(\.position))
            #expect(recovered.records.map(\.record) == expected.map(\.record))
            #expect(try segmentFiles(image) == before, "open changed a log whose only tail is preallocated zeros")

            // The next append goes right after the last record, inside the zeros, and survives
            // another crash and reopen.
            let appended = try reopened.append([Fixture.end(1)])
            #expect(appended == [LogPosition(segment: 1, offset: UInt64(recordsEnd))])
            try reopened.sync()
            #expect(try Fixture.readFile(Fixture.segmentPath(image, 1)).count == before["segment-00000001.log"]!.count,
                    "an append inside the zeros changed the file size")
            let secondImage = root + "/image-2"
            try crashImage(of: image, to: secondImage)
            let (again, recoveredAgain) = try open(secondImage)
            #expect(recoveredAgain.notes.isEmpty, "\(recoveredAgain.notes)")
            #expect(recoveredAgain.records.map(\.position) == expected.map(\.position) + appended)
            #expect(recoveredAgain.records.last?.record == Fixture.end(1))
            again.close()
            reopened.close()
            store.close()
        }
    }

    @Test func tornRecordFollowedByZerosIsTruncatedAndNoted() throws {
        try Fixture.withTemporaryDirectory { root in
            let directory = root + "/live"
            let (store, _) = try open(directory)
            let positions = try store.append((1...UInt64(5)).map(Fixture.commit))
            try store.preallocate()
            try store.sync()
            let recordsEnd = frameEnd(of: Fixture.commit(5), at: positions[4])
            let intact = try Fixture.readFile(Fixture.segmentPath(directory, 1))
            store.close()
            try #require(intact.count > recordsEnd + 64, "no preallocated zeros to tear a record into")

            // A write of one more record cut after `cut` bytes, the rest of the space still zero.
            let frame = RecordFraming.frame(Fixture.commit(6).encoded())
            for cut in 1..<frame.count where frame[cut...].contains(where: { $0 != 0 }) {
                let image = root + "/cut-\(cut)"
                try FileManager.default.createDirectory(atPath: image, withIntermediateDirectories: false)
                let path = Fixture.segmentPath(image, 1)
                var torn = intact
                torn.replaceSubrange(recordsEnd..<recordsEnd + cut, with: frame[..<cut])
                try Fixture.writeFile(path, torn)

                // The read-only scan reports it but leaves the file alone.
                let dumped = try DecisionLogStore.read(directory: image)
                #expect(dumped.notes.contains { $0.contains("torn tail") && $0.contains("byte \(recordsEnd)") },
                        "cut at \(cut): \(dumped.notes)")
                #expect(try Fixture.readFile(path) == torn)

                let (reopened, recovered) = try open(image)
                #expect(recovered.records.dropFirst().map(\.position) == positions, "cut at \(cut)")
                #expect(recovered.notes.count == 1, "cut at \(cut): \(recovered.notes)")
                #expect(recovered.notes.contains { $0.contains("torn tail") && $0.contains("byte \(recordsEnd)") },
                        "cut at \(cut): \(recovered.notes)")
                #expect(try Fixture.readFile(path) == Array(intact[..<recordsEnd]), "cut at \(cut)")

                let appended = try reopened.append([Fixture.end(99)])
                #expect(appended == [LogPosition(segment: 1, offset: UInt64(recordsEnd))])
                try reopened.sync()
                reopened.close()
                let (final, again) = try open(image)
                final.close()
                #expect(again.notes.isEmpty, "cut at \(cut): \(again.notes)")
                #expect(again.records.last?.record == Fixture.end(99))
                try FileManager.default.removeItem(atPath: image)
            }
        }
    }

    @Test func rollLeavesThePreviousSegmentEndingAtItsLastRecord() throws {
        try Fixture.withTemporaryDirectory { root in
            let directory = root + "/live"
            let segmentMaxBytes = 600
            let (store, _) = try open(directory, segmentMaxBytes: segmentMaxBytes)
            var positions: [LogPosition] = []
            // Open commits keep every segment on disk, so each can be inspected.
            for sequence in 1...60 as ClosedRange<UInt64> {
                positions += try store.append([Fixture.commit(sequence)])
                try store.preallocate()
            }
            try store.sync()
            let numbers = store.segmentNumbers
            #expect(numbers.count >= 4)

            for number in numbers.dropLast() {
                let (bytes, scanned) = try scan(directory, number)
                #expect(scanned.tail == .clean, "segment \(number): \(scanned.tail)")
                #expect(bytes.count == scanned.validEnd && bytes.count <= segmentMaxBytes, "segment \(number)")
                let last = positions.last { $0.segment == number }!
                #expect(bytes.count == frameEnd(of: Fixture.commit(1), at: last), "segment \(number)")
            }
            // The active one is preallocated up to segmentMaxBytes at most.
            let (activeBytes, activeScan) = try scan(directory, numbers.last!)
            #expect(activeBytes.count == segmentMaxBytes)
            #expect(activeScan.tail == .zeroFilled(offset: frameEnd(of: Fixture.commit(1), at: positions.last!)))

            let image = root + "/image"
            try crashImage(of: directory, to: image)
            let (reopened, recovered) = try open(image, segmentMaxBytes: segmentMaxBytes)
            reopened.close()
            #expect(recovered.notes.isEmpty, "\(recovered.notes)")
            #expect(recovered.records.filter { $0.record.transaction != nil }.map(\.position) == positions)
            store.close()
        }
    }

    @Test func readOfALivePreallocatedLogReportsNoNotesAndChangesNothing() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try open(directory)
            defer { store.close() }
            var positions: [LogPosition] = []
            for sequence in 1...40 as ClosedRange<UInt64> {
                positions += try store.append([Fixture.commit(sequence), Fixture.end(sequence)])
                try store.preallocate()
            }
            try store.sync()
            let before = try segmentFiles(directory)
            #expect(try scan(directory, 1).scan.tail != .clean, "nothing preallocated")

            let read = try DecisionLogStore.read(directory: directory)
            #expect(read.notes.isEmpty, "\(read.notes)")
            #expect(read.records.dropFirst().map(\.position) == positions)
            #expect(read.unfinishedCommits.isEmpty)
            #expect(try segmentFiles(directory) == before)

            // The store is undisturbed: appends keep their places.
            let next = try store.append([Fixture.end(41)])
            #expect(next[0].offset == UInt64(frameEnd(of: Fixture.end(40), at: positions.last!)))
        }
    }

    @Test func closeTrimsTheZerosAndReopenPreallocatesAgain() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try open(directory)
            let positions = try store.append([Fixture.commit(1), Fixture.end(1)])
            try store.preallocate()
            try store.sync()
            let recordsEnd = frameEnd(of: Fixture.end(1), at: positions[1])
            #expect(try Fixture.readFile(Fixture.segmentPath(directory, 1)).count == recordsEnd + Self.preallocationBytes)
            store.close()
            let (closedBytes, closedScan) = try scan(directory, 1)
            #expect(closedScan.tail == .clean)
            #expect(closedBytes.count == recordsEnd)

            let (reopened, recovered) = try open(directory)
            defer { reopened.close() }
            #expect(recovered.notes.isEmpty)
            try reopened.preallocate()
            #expect(try Fixture.readFile(Fixture.segmentPath(directory, 1)).count == recordsEnd + Self.preallocationBytes)
            let next = try reopened.append([Fixture.commit(2)])
            #expect(next == [LogPosition(segment: 1, offset: UInt64(recordsEnd))])
        }
    }

    /// A failed sync is sticky for `preallocate` too, and the store then leaves the file alone,
    /// zeros included; a later open accepts them without a note.
    @Test func afterAFailedSyncNothingIsPreallocatedOrTrimmed() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try open(directory)
            let positions = try store.append([Fixture.commit(1)])
            try store.preallocate()
            try store.sync()
            let path = Fixture.segmentPath(directory, 1)
            let sizeBefore = try Fixture.readFile(path).count
            store.failNextSync()
            let failure = try #require(throws: DecisionLogError.self) { try store.sync() }
            #expect(throws: failure) { try store.preallocate() }
            store.close()
            #expect(try Fixture.readFile(path).count == sizeBefore, "a failed store trimmed its file")

            let (reopened, recovered) = try open(directory)
            reopened.close()
            #expect(recovered.notes.isEmpty, "\(recovered.notes)")
            #expect(recovered.records.last?.position == positions[0])
        }
    }

    @Test func groupCommitWriterPreallocatesBetweenBatches() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try open(directory)
            let writer = GroupCommitWriter(store: store, logger: Fixture.logger)
            for sequence in 1...200 as ClosedRange<UInt64> {
                let done = DispatchSemaphore(value: 0)
                writer.append(Fixture.commit(sequence), forced: true) { _ in done.signal() }
                done.wait()
            }
            // The writer preallocates after the completions, so wait for it to come round.
            let deadline = Date().addingTimeInterval(10)
            var tail = try scan(directory, 1).scan.tail
            while case .clean = tail, Date() < deadline {
                Thread.sleep(forTimeInterval: 0.01)
                tail = try scan(directory, 1).scan.tail
            }
            guard case .zeroFilled = tail else {
                Issue.record("no zeros ahead of the writer: \(tail)")
                writer.shutdown()
                return
            }
            #expect(try DecisionLogStore.read(directory: directory).notes.isEmpty)
            writer.shutdown()
            let (bytes, scanned) = try scan(directory, 1)
            #expect(scanned.tail == .clean && scanned.validEnd == bytes.count, "shutdown left \(scanned.tail)")
            #expect(scanned.records.count == 201)
        }
    }
}

import Foundation
import SandhiEngine
import SandhiRuntime
import Testing

/// Torn tails are cut; everything else that is damaged is refused, naming the file and byte.
@Suite struct DecisionLogRecoveryTests {
    typealias Fixture = DecisionLogFixture

    /// A one-segment log: header + `count` commits (`Fixture.commit`, or naming
    /// `participantCount` participants: about 30 make a 1 KiB record). Returns those commits'
    /// positions. With `pastTheWindow`, more than `maxUnsyncedBytes` of bulky commits follow
    /// them, so damage among them lies before the window in which open cuts a torn batch.
    private func writeLog(_ directory: String, count: Int, participantCount: Int? = nil,
                          pastTheWindow: Bool = false) throws -> [LogPosition] {
        let (store, _) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
        defer { store.close() }
        let positions = try store.append((1...UInt64(count)).map { sequence in
            participantCount.map { commit(sequence, participantCount: $0) } ?? Fixture.commit(sequence)
        })
        if pastTheWindow {
            let bulky = commit(1, participantCount: DecisionRecord.maxParticipants)
            let bulkyFrameBytes = RecordFraming.headerBytes + bulky.encoded().count
            let bulkyCount = DecisionLogStore.maxUnsyncedBytes / bulkyFrameBytes + 2
            _ = try store.append((1...UInt64(bulkyCount)).map { commit(1000 + $0, participantCount: DecisionRecord.maxParticipants) })
        }
        try store.sync()
        return positions
    }

    /// A COMMIT naming `participantCount` participants with 32-byte names (the longest allowed).
    private func commit(_ sequence: UInt64, participantCount: Int) -> DecisionRecord {
        let participants = (0..<participantCount).map { index in
            let suffix = String(index)
            return ParticipantID(validated: String(repeating: "p", count: ParticipantID.maxLengthBytes - suffix.count) + suffix)
        }
        return .commit(transaction: Fixture.transaction(sequence), participants: participants)
    }

    @Test func tornTailAtEveryByteOfTheLastRecordIsTruncated() throws {
        try Fixture.withTemporaryDirectory { root in
            let original = root + "/original"
            let count = 5
            let positions = try writeLog(original, count: count)
            let intact = try Fixture.readFile(Fixture.segmentPath(original, 1))
            let lastOffset = Int(positions[count - 1].offset)
            #expect(lastOffset < intact.count)

            for cut in lastOffset..<intact.count {
                let directory = root + "/cut-\(cut)"
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
                let path = Fixture.segmentPath(directory, 1)
                try Fixture.writeFile(path, Array(intact[..<cut]))

                // The read-only scan reports the tail but leaves the file alone.
                let dumped = try DecisionLogStore.read(directory: directory)
                #expect(dumped.records.count == count)  // header + first count-1 commits
                #expect(try Fixture.readFile(path).count == cut)

                let (store, recovered) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
                #expect(recovered.records.map(\.record)
                    == [.segmentHeader(segment: 1, epoch: 0)] + (1..<UInt64(count)).map(Fixture.commit))
                #expect(recovered.records.dropFirst().map(\.position) == Array(positions.prefix(count - 1)))
                #expect(try Fixture.readFile(path) == Array(intact[..<lastOffset]), "cut at \(cut)")
                if cut > lastOffset {
                    #expect(recovered.notes.contains { $0.contains("torn tail") && $0.contains("byte \(lastOffset)") },
                            "cut at \(cut): \(recovered.notes)")
                    #expect(dumped.notes.contains { $0.contains("torn tail") })
                } else {
                    #expect(recovered.notes.isEmpty)
                }

                let appended = try store.append([Fixture.end(99)])
                try store.sync()
                store.close()
                #expect(appended == [LogPosition(segment: 1, offset: UInt64(lastOffset))])
                let (reopened, again) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
                reopened.close()
                #expect(again.records.last?.record == Fixture.end(99))
                #expect(again.records.last?.position == appended[0])
                #expect(again.notes.isEmpty)
                try FileManager.default.removeItem(atPath: directory)
            }
        }
    }

    @Test(arguments: [
        // (what, byte to damage relative to the record's frame, bit)
        ("payload", RecordFraming.headerBytes + 5, UInt8(0x10)),
        ("length field", 1, UInt8(0x08)),
    ])
    func flippedBitInAnEarlierRecordIsCorruption(what: String, byteInFrame: Int, bit: UInt8) throws {
        try Fixture.withTemporaryDirectory { directory in
            let positions = try writeLog(directory, count: 6)
            let damagedOffset = Int(positions[2].offset)
            let path = Fixture.segmentPath(directory, 1)
            var bytes = try Fixture.readFile(path)
            bytes[damagedOffset + byteInFrame] ^= bit
            try Fixture.writeFile(path, bytes)

            try expectCorrupt(directory: directory, file: path, offset: damagedOffset, unchanged: bytes)
        }
    }

    /// Within the window at the end of the last segment, but no hole where a sector did not
    /// land: decay, not a torn write, and cutting it would drop an acknowledged COMMIT.
    @Test func flippedLengthBitInTheLastRecordIsCorruptionNotATornTail() throws {
        try Fixture.withTemporaryDirectory { directory in
            let positions = try writeLog(directory, count: 3)
            let damagedOffset = Int(positions[2].offset)
            let path = Fixture.segmentPath(directory, 1)
            var bytes = try Fixture.readFile(path)
            bytes[damagedOffset] ^= 0x01
            try Fixture.writeFile(path, bytes)

            try expectCorrupt(directory: directory, file: path, offset: damagedOffset, unchanged: bytes)
        }
    }

    /// Only the last segment can have been cut by a crash: an earlier one was synced whole before
    /// the next got a byte, so even its final record, damaged, is corruption.
    @Test func flippedLengthBitInTheLastRecordOfAnEarlierSegmentIsCorruptionNotATornTail() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try DecisionLogStore.open(directory: directory, segmentMaxBytes: 160, logger: Fixture.logger)
            var positions: [LogPosition] = []
            for sequence in 1...10 as ClosedRange<UInt64> {
                positions += try store.append([Fixture.commit(sequence)])
            }
            try store.sync()
            store.close()
            #expect(store.segmentNumbers.count >= 3)

            let damagedOffset = Int(positions.last { $0.segment == 1 }!.offset)
            let path = Fixture.segmentPath(directory, 1)
            var bytes = try Fixture.readFile(path)
            bytes[damagedOffset] ^= 0x01
            try Fixture.writeFile(path, bytes)

            try expectCorrupt(directory: directory, file: path, offset: damagedOffset, unchanged: bytes)
        }
    }

    /// A power cut while a batch of several pages was on its way to disk: one middle page never
    /// landed (still the preallocated zeros), the pages after it did. Nothing from the hole on
    /// was acknowledged, so open cuts there and notes it; `read` only reports it.
    @Test(arguments: [1, 2, 4])
    func zeroedPageInTheFinalBatchIsCutAtTheFirstDamagedRecord(pagesIntoTheBatch: Int) throws {
        try Fixture.withTemporaryDirectory { root in
            let live = root + "/live"
            let (store, _) = try DecisionLogStore.open(directory: live, logger: Fixture.logger)
            let synced = try store.append((1...UInt64(5)).map(Fixture.commit))
            try store.preallocate()
            try store.sync()
            // About 24 KiB of 1 KiB records, written and not yet synced.
            let batch = (100...UInt64(123)).map { commit($0, participantCount: 30) }
            let batchPositions = try store.append(batch)
            let batchStart = Int(batchPositions[0].offset)
            let liveBytes = try Fixture.readFile(Fixture.segmentPath(live, 1))
            store.close()

            let pageBytes = 4096
            let pageStart = (batchStart / pageBytes + pagesIntoTheBatch) * pageBytes
            let frameEnds = zip(batchPositions, batch).map { Int($0.offset) + RecordFraming.headerBytes + $1.encoded().count }
            let firstDamaged = frameEnds.firstIndex { $0 > pageStart }!
            let cutOffset = Int(batchPositions[firstDamaged].offset)
            try #require(firstDamaged > 0 && Int(batchPositions.last!.offset) > pageStart + pageBytes,
                         "the hole must have batch records before and whole ones after it")
            try #require(liveBytes.count > frameEnds.last!, "no preallocated zeros after the batch")

            let image = root + "/image"
            try FileManager.default.createDirectory(atPath: image, withIntermediateDirectories: false)
            let path = Fixture.segmentPath(image, 1)
            var torn = liveBytes
            torn.replaceSubrange(pageStart..<pageStart + pageBytes, with: [UInt8](repeating: 0, count: pageBytes))
            try Fixture.writeFile(path, torn)
            let lastFrame = RecordFraming.frame(batch.last!.encoded())
            #expect(Array(torn[Int(batchPositions.last!.offset)...].prefix(lastFrame.count)) == lastFrame,
                    "a whole record lies after the hole")

            let expected = synced + batchPositions[..<firstDamaged]
            let dumped = try DecisionLogStore.read(directory: image)
            #expect(dumped.records.dropFirst().map(\.position) == expected)
            #expect(dumped.notes.contains { $0.contains("torn tail") && $0.contains("byte \(cutOffset)") }, "\(dumped.notes)")
            #expect(try Fixture.readFile(path) == torn, "read changed the file")

            let (reopened, recovered) = try DecisionLogStore.open(directory: image, logger: Fixture.logger)
            #expect(recovered.records.dropFirst().map(\.position) == expected)
            #expect(recovered.records.dropFirst().map(\.record)
                == (1...UInt64(5)).map(Fixture.commit) + batch[..<firstDamaged])
            #expect(recovered.notes.count == 1, "\(recovered.notes)")
            #expect(recovered.notes.contains { $0.contains("truncated torn tail") && $0.contains("byte \(cutOffset)") },
                    "\(recovered.notes)")
            #expect(try Fixture.readFile(path) == Array(torn[..<cutOffset]))

            let appended = try reopened.append([Fixture.end(1)])
            #expect(appended == [LogPosition(segment: 1, offset: UInt64(cutOffset))])
            try reopened.sync()
            reopened.close()
            let (again, recoveredAgain) = try DecisionLogStore.open(directory: image, logger: Fixture.logger)
            again.close()
            #expect(recoveredAgain.notes.isEmpty, "\(recoveredAgain.notes)")
            #expect(recoveredAgain.records.last?.record == Fixture.end(1))
            #expect(recoveredAgain.records.last?.position == appended[0])
        }
    }

    /// The same hole more than maxUnsyncedBytes before the end of the data: it was synced before
    /// everything after it was written, so it is decay (or lost records), not a torn batch.
    @Test func zeroedPageFarBeforeTheEndIsCorruption() throws {
        try Fixture.withTemporaryDirectory { directory in
            let positions = try writeLog(directory, count: 12, participantCount: 30, pastTheWindow: true)
            let path = Fixture.segmentPath(directory, 1)
            var bytes = try Fixture.readFile(path)
            let pageStart = 4096
            bytes.replaceSubrange(pageStart..<pageStart + 4096, with: [UInt8](repeating: 0, count: 4096))
            try Fixture.writeFile(path, bytes)
            let damaged = positions.last { Int($0.offset) <= pageStart }!
            #expect(bytes.count - Int(damaged.offset) > DecisionLogStore.maxUnsyncedBytes)

            try expectCorrupt(directory: directory, file: path, offset: Int(damaged.offset), unchanged: bytes)
        }
    }

    @Test func tornTailInASegmentThatIsNotLastIsCorruption() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try DecisionLogStore.open(directory: directory, segmentMaxBytes: 160, logger: Fixture.logger)
            var positions: [LogPosition] = []
            for sequence in 1...10 as ClosedRange<UInt64> {
                positions += try store.append([Fixture.commit(sequence)])
            }
            try store.sync()
            store.close()
            #expect(store.segmentNumbers.count >= 3)

            let lastInFirst = positions.last { $0.segment == 1 }!
            let path = Fixture.segmentPath(directory, 1)
            let bytes = try Fixture.readFile(path)
            let cut = Array(bytes.dropLast(3))
            try Fixture.writeFile(path, cut)
            try expectCorrupt(directory: directory, file: path, offset: Int(lastInFirst.offset), unchanged: cut)
        }
    }

    /// The store trims its preallocated zeros before it rolls, so zeros after the last record of
    /// an earlier segment mean records there were lost.
    @Test func zeroTailInASegmentThatIsNotLastIsCorruption() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try DecisionLogStore.open(directory: directory, segmentMaxBytes: 160, logger: Fixture.logger)
            for sequence in 1...10 as ClosedRange<UInt64> {
                _ = try store.append([Fixture.commit(sequence)])
            }
            try store.sync()
            store.close()
            #expect(store.segmentNumbers.count >= 3)

            let path = Fixture.segmentPath(directory, 2)
            let bytes = try Fixture.readFile(path)
            let zeroFilled = bytes + [UInt8](repeating: 0, count: 40)
            try Fixture.writeFile(path, zeroFilled)
            try expectCorrupt(directory: directory, file: path, offset: bytes.count, unchanged: zeroFilled)
        }
    }

    @Test func segmentWithoutItsHeaderIsCorruption() throws {
        try Fixture.withTemporaryDirectory { directory in
            let path = Fixture.segmentPath(directory, 1)
            var bytes: [UInt8] = []
            RecordFraming.frame(Fixture.commit(1).encoded(), into: &bytes)
            try Fixture.writeFile(path, bytes)
            try expectCorrupt(directory: directory, file: path, offset: 0, unchanged: bytes)
        }
    }

    @Test func segmentHeaderNamingAnotherSegmentIsCorruption() throws {
        try Fixture.withTemporaryDirectory { directory in
            let path = Fixture.segmentPath(directory, 7)
            var bytes: [UInt8] = []
            RecordFraming.frame(DecisionRecord.segmentHeader(segment: 6, epoch: 1).encoded(), into: &bytes)
            RecordFraming.frame(Fixture.commit(1).encoded(), into: &bytes)
            try Fixture.writeFile(path, bytes)
            try expectCorrupt(directory: directory, file: path, offset: 0, unchanged: bytes)
        }
    }

    @Test func undecodableRecordIsCorruption() throws {
        try Fixture.withTemporaryDirectory { directory in
            let path = Fixture.segmentPath(directory, 1)
            var bytes: [UInt8] = []
            RecordFraming.frame(DecisionRecord.segmentHeader(segment: 1, epoch: 1).encoded(), into: &bytes)
            let badOffset = bytes.count
            RecordFraming.frame([0xEE, 1, 2, 3], into: &bytes)  // Well framed, unknown record type.
            RecordFraming.frame(Fixture.commit(1).encoded(), into: &bytes)
            try Fixture.writeFile(path, bytes)
            try expectCorrupt(directory: directory, file: path, offset: badOffset, unchanged: bytes)
        }
    }

    @Test func epochBeyondTwentyFourBitsIsCorruption() throws {
        try Fixture.withTemporaryDirectory { directory in
            let path = Fixture.segmentPath(directory, 1)
            var bytes: [UInt8] = []
            RecordFraming.frame(DecisionRecord.segmentHeader(segment: 1, epoch: 1).encoded(), into: &bytes)
            let badOffset = bytes.count
            RecordFraming.frame(DecisionRecord.epochStarted(epoch: TransactionID.maxEpoch + 1).encoded(), into: &bytes)
            try Fixture.writeFile(path, bytes)
            try expectCorrupt(directory: directory, file: path, offset: badOffset, unchanged: bytes)
        }
    }

    @Test func emptyLastSegmentGetsItsHeader() throws {
        try Fixture.withTemporaryDirectory { directory in
            let (store, _) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
            store.epoch = 2
            _ = try store.append([.epochStarted(epoch: 2), Fixture.commit(1)])
            try store.sync()
            store.close()
            // A crash right after creating the next segment file, before its header reached disk.
            try Fixture.writeFile(Fixture.segmentPath(directory, 2), [])

            let dumped = try DecisionLogStore.read(directory: directory)
            #expect(dumped.notes.contains { $0.contains("segment-00000002.log") })
            let (reopened, recovered) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
            #expect(recovered.maxEpoch == 2)
            #expect(recovered.notes.contains { $0.contains("segment-00000002.log") })
            #expect(reopened.segmentNumbers == [1, 2])
            let position = try reopened.append([Fixture.end(1)])
            try reopened.sync()
            reopened.close()
            #expect(position[0].segment == 2)

            let final = try DecisionLogStore.read(directory: directory)
            #expect(final.records.filter { $0.position.segment == 2 }.map(\.record)
                == [.segmentHeader(segment: 2, epoch: 2), Fixture.end(1)])
        }
    }

    @Test func emptyNonLastSegmentIsCorruption() throws {
        try Fixture.withTemporaryDirectory { directory in
            _ = try writeLog(directory, count: 1)
            let emptyPath = Fixture.segmentPath(directory, 1)
            let firstBytes = try Fixture.readFile(emptyPath)
            // Move the real segment to number 2 (fixing its header) and leave 1 empty.
            var moved: [UInt8] = []
            RecordFraming.frame(DecisionRecord.segmentHeader(segment: 2, epoch: 0).encoded(), into: &moved)
            let scan = RecordFraming.scan(firstBytes)
            for record in scan.records.dropFirst() { RecordFraming.frame(record.payload, into: &moved) }
            try Fixture.writeFile(Fixture.segmentPath(directory, 2), moved)
            try Fixture.writeFile(emptyPath, [])
            try expectCorrupt(directory: directory, file: emptyPath, offset: 0, unchanged: [])
        }
    }

    /// `open` and `read` both throw `.corrupt` naming exactly `file` and `offset`, with a one-line
    /// description; the failed open leaves the file byte-for-byte as it was.
    private func expectCorrupt(directory: String, file: String, offset: Int, unchanged: [UInt8],
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        let namesBefore = try Fixture.fileNames(directory)
        for mode in ["open", "read"] {
            do {
                if mode == "open" {
                    let (store, _) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
                    store.close()
                } else {
                    _ = try DecisionLogStore.read(directory: directory)
                }
                Issue.record("\(mode) accepted a corrupt log", sourceLocation: sourceLocation)
            } catch let error as DecisionLogError {
                guard case .corrupt(let errorFile, let errorOffset, _) = error else {
                    Issue.record("\(mode): expected .corrupt, got \(error)", sourceLocation: sourceLocation)
                    continue
                }
                #expect(errorFile == file, sourceLocation: sourceLocation)
                #expect(errorOffset == offset, "\(error)", sourceLocation: sourceLocation)
                let description = error.description
                #expect(!description.contains("\n"), sourceLocation: sourceLocation)
                #expect(description.hasPrefix("decision log corrupt: \(file) at byte \(offset): "),
                        "\(description)", sourceLocation: sourceLocation)
            }
        }
        #expect(try Fixture.readFile(file) == unchanged, sourceLocation: sourceLocation)
        #expect(try Fixture.fileNames(directory) == namesBefore, sourceLocation: sourceLocation)
    }
}

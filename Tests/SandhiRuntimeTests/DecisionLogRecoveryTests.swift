import Foundation
import SandhiEngine
import SandhiRuntime
import Testing

/// Torn tails are cut; everything else that is damaged is refused, naming the file and byte.
@Suite struct DecisionLogRecoveryTests {
    typealias Fixture = DecisionLogFixture

    /// A one-segment log: header + `count` commits. Returns every record's position.
    private func writeLog(_ directory: String, count: Int) throws -> [LogPosition] {
        let (store, _) = try DecisionLogStore.open(directory: directory, logger: Fixture.logger)
        defer { store.close() }
        let positions = try store.append((1...UInt64(count)).map(Fixture.commit))
        try store.sync()
        return positions
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

// Decision-log framing: a torn tail is truncated to the last whole record; damage in the
// middle is corruption that names its offset.
import Testing
import SandhiEngine

@Suite("Record framing")
struct RecordFramingTests {
    static let payloads: [[UInt8]] = [
        DecisionRecord.segmentHeader(segment: 1, epoch: 3).encoded(),
        DecisionRecord.commit(transaction: Fixture.tx(1, epoch: 3), participants: [Fixture.hdfc, Fixture.sbi]).encoded(),
        [0x42],
        DecisionRecord.end(transaction: Fixture.tx(1, epoch: 3)).encoded(),
        (0..<300).map { UInt8(truncatingIfNeeded: $0 * 31) },
        DecisionRecord.commit(transaction: Fixture.tx(2, epoch: 3), participants: [Fixture.axis]).encoded(),
    ]

    /// The framed log and each record's offset.
    static func log(_ payloads: [[UInt8]] = payloads) -> (bytes: [UInt8], offsets: [Int]) {
        var bytes: [UInt8] = []
        var offsets: [Int] = []
        for payload in payloads {
            offsets.append(bytes.count)
            RecordFraming.frame(payload, into: &bytes)
        }
        return (bytes, offsets)
    }

    @Test func frameLayout() {
        let payload: [UInt8] = Array("123456789".utf8)
        let framed = RecordFraming.frame(payload)
        #expect(framed.count == RecordFraming.headerBytes + payload.count)
        #expect(Array(framed[0..<4]) == [9, 0, 0, 0], "length, little-endian")
        #expect(Array(framed[4..<8]) == [0x83, 0x92, 0x06, 0xE3], "CRC32C of the payload")
        let headerCRC = CRC32C.checksum(framed[0..<8])
        #expect(Array(framed[8..<12]) == [UInt8(headerCRC & 0xFF), UInt8(headerCRC >> 8 & 0xFF),
                                         UInt8(headerCRC >> 16 & 0xFF), UInt8(headerCRC >> 24)])
        #expect(Array(framed[12...]) == payload)
    }

    @Test func frameIntoAppends() {
        var out: [UInt8] = [1, 2, 3]
        RecordFraming.frame([7], into: &out)
        #expect(Array(out[..<3]) == [1, 2, 3])
        #expect(Array(out[3...]) == RecordFraming.frame([7]))
    }

    @Test func frameThenScanRoundTrips() {
        let (bytes, offsets) = Self.log()
        let scan = RecordFraming.scan(bytes)
        #expect(scan.tail == .clean)
        #expect(scan.validEnd == bytes.count)
        #expect(scan.records.map(\.payload) == Self.payloads)
        #expect(scan.records.map(\.offset) == offsets)
    }

    @Test func scanOfNothingIsClean() {
        let scan = RecordFraming.scan([])
        #expect(scan.records.isEmpty)
        #expect(scan.validEnd == 0)
        #expect(scan.tail == .clean)
    }

    @Test func scanFromAStartOffsetReportsAbsoluteOffsets() {
        let (bytes, offsets) = Self.log()
        let scan = RecordFraming.scan(bytes, from: offsets[2])
        #expect(scan.tail == .clean)
        #expect(scan.records.map(\.offset) == Array(offsets[2...]))
        #expect(scan.records.map(\.payload) == Array(Self.payloads[2...]))
        #expect(scan.validEnd == bytes.count)
    }

    @Test func maximumPayloadRoundTrips() {
        let payload = [UInt8](repeating: 0xA5, count: RecordFraming.maxPayloadBytes)
        let scan = RecordFraming.scan(RecordFraming.frame(payload))
        #expect(scan.tail == .clean)
        #expect(scan.records.first?.payload == payload)
    }

    // MARK: torn tails

    @Test func everyTruncationOfTheLastRecordIsTorn() {
        let (bytes, offsets) = Self.log()
        let last = offsets.last!
        for cut in (last + 1)..<bytes.count {
            let scan = RecordFraming.scan(Array(bytes[..<cut]))
            guard case .torn(let offset, _) = scan.tail else {
                Issue.record("cut at \(cut): expected torn, got \(scan.tail)")
                continue
            }
            #expect(offset == last, "cut at \(cut)")
            #expect(scan.validEnd == last, "cut at \(cut)")
            #expect(scan.records.map(\.payload) == Array(Self.payloads.dropLast()), "cut at \(cut)")
        }
        // cut exactly between records: simply a shorter, clean log
        let scan = RecordFraming.scan(Array(bytes[..<last]))
        #expect(scan.tail == .clean)
        #expect(scan.validEnd == last)
    }

    @Test func everyTruncationOfASingleRecordLogIsTorn() {
        let bytes = RecordFraming.frame(Self.payloads[1])
        for cut in 1..<bytes.count {
            let scan = RecordFraming.scan(Array(bytes[..<cut]))
            #expect(scan.validEnd == 0)
            #expect(scan.records.isEmpty)
            #expect({ if case .torn(0, _) = scan.tail { true } else { false } }(), "cut at \(cut): \(scan.tail)")
        }
    }

    @Test func damagedPayloadOfTheLastRecordIsATornTail() {
        var (bytes, offsets) = Self.log()
        bytes[bytes.count - 1] ^= 0x01
        let scan = RecordFraming.scan(bytes)
        #expect({ if case .torn(offsets.last!, _) = scan.tail { true } else { false } }(), "\(scan.tail)")
        #expect(scan.validEnd == offsets.last!)
        #expect(scan.records.count == Self.payloads.count - 1)
    }

    // MARK: zero-filled tails (preallocated space)

    @Test(arguments: [1, 5, 11, 12, 13, 100, 4096])
    func zerosAfterTheLastRecordAreZeroFilledNotTorn(zeroBytes: Int) {
        let (bytes, _) = Self.log()
        let scan = RecordFraming.scan(bytes + [UInt8](repeating: 0, count: zeroBytes))
        #expect(scan.tail == .zeroFilled(offset: bytes.count))
        #expect(scan.validEnd == bytes.count)
        #expect(scan.records.map(\.payload) == Self.payloads)
    }

    @Test func onlyZerosIsZeroFilledAtTheStart() {
        let scan = RecordFraming.scan([UInt8](repeating: 0, count: 4096))
        #expect(scan.tail == .zeroFilled(offset: 0))
        #expect(scan.validEnd == 0)
        #expect(scan.records.isEmpty)
    }

    /// A cut write into preallocated space: the bytes that landed, then the zeros that were there.
    /// Whether the cut falls in the header or the payload, it is the same torn tail as a cut at
    /// the end of the file.
    @Test func everyTruncationOfTheLastRecordFollowedByZerosIsTorn() {
        let (bytes, offsets) = Self.log()
        let last = offsets.last!
        for cut in (last + 1)..<bytes.count {
            for zeroBytes in [bytes.count - cut, bytes.count - cut + 1, 4096] {
                let padded = Array(bytes[..<cut]) + [UInt8](repeating: 0, count: zeroBytes)
                let scan = RecordFraming.scan(padded)
                if bytes[cut...].allSatisfy({ $0 == 0 }) && zeroBytes >= bytes.count - cut {
                    // The bytes that did not land were zeros anyway: the record is whole.
                    #expect(scan.records.count == Self.payloads.count, "cut at \(cut)")
                    continue
                }
                guard case .torn(let offset, _) = scan.tail else {
                    Issue.record("cut at \(cut), \(zeroBytes) zeros: expected torn, got \(scan.tail)")
                    continue
                }
                #expect(offset == last, "cut at \(cut)")
                #expect(scan.validEnd == last, "cut at \(cut)")
                #expect(scan.records.map(\.payload) == Array(Self.payloads.dropLast()), "cut at \(cut)")
            }
        }
    }

    @Test func damagedPayloadOfTheLastRecordFollowedByZerosIsATornTail() {
        var (bytes, offsets) = Self.log()
        bytes[bytes.count - 1] ^= 0x01
        let scan = RecordFraming.scan(bytes + [UInt8](repeating: 0, count: 100))
        #expect({ if case .torn(offsets.last!, _) = scan.tail { true } else { false } }(), "\(scan.tail)")
        #expect(scan.validEnd == offsets.last!)
    }

    /// A header checksum mismatch is a torn tail only when nothing but zeros follows the header;
    /// with the payload present behind it, a flipped bit must not pass for a cut write.
    @Test func flippedHeaderBitOfTheLastRecordFollowedByZerosIsStillCorrupt() {
        var (bytes, offsets) = Self.log()
        bytes[offsets.last! + 1] ^= 0x10
        let scan = RecordFraming.scan(bytes + [UInt8](repeating: 0, count: 100))
        #expect({ if case .corrupt(offsets.last!, "header checksum mismatch") = scan.tail { true } else { false } }(), "\(scan.tail)")
    }

    @Test func headerCutMidWriteBeforeZerosIsTorn() {
        let (bytes, _) = Self.log()
        let header = RecordFraming.frame([9, 9, 9])
        for landed in 1..<RecordFraming.headerBytes where header[landed...].contains(where: { $0 != 0 }) {
            let scan = RecordFraming.scan(bytes + Array(header[..<landed]) + [UInt8](repeating: 0, count: 64))
            #expect({ if case .torn(bytes.count, _) = scan.tail { true } else { false } }(), "\(landed) bytes: \(scan.tail)")
            #expect(scan.validEnd == bytes.count)
        }
    }

    /// Zeros with non-zero bytes after them are a hole, not a tail: records may have been lost.
    @Test func zerosFollowedByDataAreCorrupt() {
        let (bytes, _) = Self.log()
        let frame = RecordFraming.frame([1, 2, 3])
        for hole in [1, 11, 12, 100] {
            let scan = RecordFraming.scan(bytes + [UInt8](repeating: 0, count: hole) + frame + [0, 0, 0])
            #expect({ if case .corrupt(bytes.count, _) = scan.tail { true } else { false } }(), "hole of \(hole): \(scan.tail)")
            #expect(scan.validEnd == bytes.count)
        }
    }

    @Test(arguments: 0..<(payloads.count - 1))
    func damagedMiddleRecordBeforeZerosIsStillCorrupt(index: Int) {
        let (bytes, offsets) = Self.log()
        for byte in [offsets[index] + 1, offsets[index] + RecordFraming.headerBytes] {
            var damaged = bytes + [UInt8](repeating: 0, count: 256)
            damaged[byte] ^= 0x04
            let scan = RecordFraming.scan(damaged)
            #expect({ if case .corrupt(offsets[index], _) = scan.tail { true } else { false } }(),
                    "record \(index), byte \(byte): \(scan.tail)")
        }
    }

    // MARK: torn batches (rule 9: damage within the unsynced window)

    /// A log of `count` records of about 1 KiB each, so a 4 KiB page holds a few of them.
    static func pagedLog(count: Int) -> (bytes: [UInt8], offsets: [Int], payloads: [[UInt8]]) {
        let payloads = (0..<count).map { index in
            (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ index &+ 1) | 1 }
        }
        let (bytes, offsets) = log(payloads)
        return (bytes, offsets, payloads)
    }

    /// Index of the record whose frame holds byte `offset`.
    static func record(holding offset: Int, offsets: [Int]) -> Int {
        offsets.lastIndex { $0 <= offset }!
    }

    /// A multi-page write whose middle page never landed: whole records after the hole. Within
    /// the window the scan cuts at the first damaged record; without one it is corruption.
    @Test(arguments: [0, 4096])
    func zeroedMiddlePageWithinTheWindowIsTornAtTheFirstDamagedRecord(zeroBytesAfter: Int) {
        let (bytes, offsets, payloads) = Self.pagedLog(count: 20)
        let pageStart = 2 * 4096
        var torn = bytes + [UInt8](repeating: 0, count: zeroBytesAfter)
        torn.replaceSubrange(pageStart..<pageStart + 4096, with: [UInt8](repeating: 0, count: 4096))
        let damaged = Self.record(holding: pageStart, offsets: offsets)
        #expect(offsets.last! > pageStart + 4096, "no whole record after the hole")

        let scan = RecordFraming.scan(torn, unsyncedWindowBytes: RecordFraming.maxUnsyncedBytes)
        #expect({ if case .torn(offsets[damaged], _) = scan.tail { true } else { false } }(), "\(scan.tail)")
        #expect(scan.validEnd == offsets[damaged])
        #expect(scan.records.map(\.payload) == Array(payloads[..<damaged]))

        let strict = RecordFraming.scan(torn)
        #expect({ if case .corrupt(offsets[damaged], _) = strict.tail { true } else { false } }(), "\(strict.tail)")
    }

    /// The window is measured back from the last non-zero byte (zeros after it are preallocated
    /// space, not data) and includes its edge.
    @Test(arguments: [0, 100, 5000])
    func tearJustBeforeTheWindowIsCorruptAndAtItsEdgeTorn(zeroBytesAfter: Int) {
        let (bytes, offsets, _) = Self.pagedLog(count: 8)
        let index = 3
        let sector = 3 * RecordFraming.sectorBytes * 2  // 3072: inside record 3 (3036..<4048).
        #expect(offsets[index] < sector && sector + RecordFraming.sectorBytes < offsets[index + 1])
        var torn = bytes + [UInt8](repeating: 0, count: zeroBytesAfter)
        torn.replaceSubrange(sector..<sector + RecordFraming.sectorBytes, with: [UInt8](repeating: 0, count: RecordFraming.sectorBytes))
        let distance = bytes.count - offsets[index]

        let outside = RecordFraming.scan(torn, unsyncedWindowBytes: distance - 1)
        #expect(outside.tail == .corrupt(offset: offsets[index], reason: "payload checksum mismatch"))
        #expect(outside.validEnd == offsets[index])

        let edge = RecordFraming.scan(torn, unsyncedWindowBytes: distance)
        #expect({ if case .torn(offsets[index], _) = edge.tail { true } else { false } }(), "\(edge.tail)")
        #expect(edge.validEnd == offsets[index])
        #expect(edge.records.count == index)
    }

    /// A write that starts mid-sector (the sector's earlier bytes were synced before) and whose
    /// first sector did not land: the record's header reads as zeros up to the sector boundary.
    @Test func headerInASectorThatDidNotLandIsTorn() {
        let (bytes, offsets, _) = Self.pagedLog(count: 6)
        let index = 2  // At 2024; its sector ends at 2048.
        let boundary = (offsets[index] / RecordFraming.sectorBytes + 1) * RecordFraming.sectorBytes
        var torn = bytes
        torn.replaceSubrange(offsets[index]..<boundary, with: [UInt8](repeating: 0, count: boundary - offsets[index]))
        let scan = RecordFraming.scan(torn, unsyncedWindowBytes: RecordFraming.maxUnsyncedBytes)
        #expect({ if case .torn(offsets[index], _) = scan.tail { true } else { false } }(), "\(scan.tail)")
        #expect(scan.validEnd == offsets[index])
        #expect(scan.records.count == index)
    }

    /// Decay is not a tear even at the very end: a flipped bit, a length out of range, or zeros
    /// that stop short of a sector boundary leave no hole where a sector did not land, and
    /// cutting there could drop acknowledged records.
    @Test func damageWithoutAnUnlandedSectorWithinTheWindowIsCorrupt() {
        let (bytes, offsets, _) = Self.pagedLog(count: 6)
        let index = 2
        var headerBit = bytes
        headerBit[offsets[index] + 1] ^= 0x10
        var lengthOutOfRange = bytes
        lengthOutOfRange.replaceSubrange(offsets[index]..<offsets[index] + RecordFraming.headerBytes,
                                         with: Self.header(length: UInt32(RecordFraming.maxPayloadBytes + 1)))
        var payloadBit = bytes
        payloadBit[offsets[index] + RecordFraming.headerBytes] ^= 0x01
        var shortZeros = bytes  // 100 zeros well inside one sector of the record's payload.
        let zerosStart = offsets[index] + 100
        #expect(zerosStart / RecordFraming.sectorBytes == (zerosStart + 100) / RecordFraming.sectorBytes)
        shortZeros.replaceSubrange(zerosStart..<zerosStart + 100, with: [UInt8](repeating: 0, count: 100))
        for (what, damaged) in [("header bit", headerBit), ("length", lengthOutOfRange), ("payload bit", payloadBit),
                                ("short zeros", shortZeros)] {
            let scan = RecordFraming.scan(damaged, unsyncedWindowBytes: RecordFraming.maxUnsyncedBytes)
            #expect({ if case .corrupt(offsets[index], _) = scan.tail { true } else { false } }(), "\(what): \(scan.tail)")
            #expect(scan.validEnd == offsets[index], "\(what)")
        }
    }

    // MARK: corruption in the middle

    @Test(arguments: 0..<(payloads.count - 1))
    func flippedBitInAMiddlePayloadIsCorruptAtThatRecord(index: Int) {
        let (bytes, offsets) = Self.log()
        let payloadStart = offsets[index] + RecordFraming.headerBytes
        for byte in [payloadStart, payloadStart + Self.payloads[index].count / 2, payloadStart + Self.payloads[index].count - 1] {
            for bit in [0, 3, 7] as [UInt8] {
                var damaged = bytes
                damaged[byte] ^= 1 << bit
                let scan = RecordFraming.scan(damaged)
                #expect({ if case .corrupt(offsets[index], _) = scan.tail { true } else { false } }(),
                        "record \(index), byte \(byte), bit \(bit): \(scan.tail)")
                #expect(scan.validEnd == offsets[index])
                #expect(scan.records.map(\.payload) == Array(Self.payloads[..<index]), "records before the damage survive")
            }
        }
    }

    @Test(arguments: [0, 2, 4])
    func everyFlippedHeaderBitOfAMiddleRecordIsCorruptAtThatRecord(index: Int) {
        let (bytes, offsets) = Self.log()
        for bit in 0..<(RecordFraming.headerBytes * 8) {
            var damaged = bytes
            damaged[offsets[index] + bit / 8] ^= 1 << UInt8(bit % 8)
            let scan = RecordFraming.scan(damaged)
            // A damaged length must not pass for a torn tail: that would silently drop every
            // record after it.
            #expect({ if case .corrupt(offsets[index], _) = scan.tail { true } else { false } }(),
                    "record \(index), header bit \(bit): \(scan.tail)")
            #expect(scan.validEnd == offsets[index])
            #expect(scan.records.count == index)
        }
    }

    @Test func flippedHeaderBitOfTheLastRecordIsCorruptNotTorn() {
        var (bytes, offsets) = Self.log()
        bytes[offsets.last! + 1] ^= 0x10
        let scan = RecordFraming.scan(bytes)
        #expect({ if case .corrupt(offsets.last!, "header checksum mismatch") = scan.tail { true } else { false } }(), "\(scan.tail)")
    }

    // MARK: lengths out of range behind a valid header checksum

    static func header(length: UInt32) -> [UInt8] {
        var writer = BinaryWriter()
        writer.write(length)
        writer.write(UInt32(0))
        writer.write(CRC32C.checksum(writer.bytes))
        return writer.bytes
    }

    @Test(arguments: [UInt32(0), UInt32(RecordFraming.maxPayloadBytes + 1), .max])
    func lengthOutOfRangeIsCorrupt(length: UInt32) {
        let good = RecordFraming.frame([1, 2, 3])
        let bytes = good + Self.header(length: length) + [UInt8](repeating: 0, count: 64)
        let scan = RecordFraming.scan(bytes)
        #expect({ if case .corrupt(good.count, _) = scan.tail { true } else { false } }(), "\(scan.tail)")
        #expect(scan.validEnd == good.count)
        #expect(scan.records.count == 1)
    }

    @Test(arguments: 1..<RecordFraming.headerBytes)
    func partialHeaderIsTorn(length: Int) {
        let good = RecordFraming.frame([1, 2, 3])
        let scan = RecordFraming.scan(good + [UInt8](repeating: 0xEE, count: length))
        #expect({ if case .torn(good.count, _) = scan.tail { true } else { false } }(), "\(scan.tail)")
        #expect(scan.validEnd == good.count)
    }

    @Test func randomDamageNeverLosesARecordSilently() {
        // Whatever single byte is damaged, the scan either stops at the damaged record (and says
        // why) or, if the damage is in the last record, calls it torn there. It never returns a
        // record whose bytes were changed, and never reports clean.
        let (bytes, offsets) = Self.log()
        var random = SplitMix64(seed: 99)
        for _ in 0..<500 {
            var damaged = bytes
            let position = Int(random.next() % UInt64(bytes.count))
            damaged[position] ^= UInt8(truncatingIfNeeded: random.next() % 255 + 1)
            let record = offsets.lastIndex { $0 <= position }!
            let scan = RecordFraming.scan(damaged)
            #expect(scan.tail != .clean, "damage at \(position)")
            #expect(scan.validEnd == offsets[record], "damage at \(position)")
            #expect(scan.records.map(\.payload) == Array(Self.payloads[..<record]))
        }
    }
}

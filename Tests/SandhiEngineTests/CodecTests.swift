// CRC32C, the binary reader/writer, and the two persisted encodings built on them.
import Testing
import SandhiEngine

@Suite("CRC32C")
struct CRC32CTests {
    /// Bit-at-a-time CRC-32C, the definition the sliced tables must agree with.
    static func reference(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return ~crc
    }

    @Test func checkValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(Self.reference(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test func emptyInputIsZero() {
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    // RFC 3720 (iSCSI), appendix B.4.
    @Test(arguments: [
        ([UInt8](repeating: 0x00, count: 32), UInt32(0x8A91_36AA)),
        ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43),
        ((0..<32).map { UInt8($0) }, 0x46DD_794E),
        ((0..<32).reversed().map { UInt8($0) }, 0x113F_DB5C),
    ] as [([UInt8], UInt32)])
    func iscsiVectors(bytes: [UInt8], crc: UInt32) {
        #expect(CRC32C.checksum(bytes) == crc)
    }

    @Test func agreesWithTheBitwiseDefinitionAtEveryLength() {
        var random = SplitMix64(seed: 0xC5C)
        for length in 0...200 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            #expect(CRC32C.checksum(bytes) == Self.reference(bytes), "length \(length)")
        }
    }

    @Test func continuingEqualsChecksumOfTheConcatenation() {
        let bytes = Array("the quick brown fox jumps over the lazy dog, twice over".utf8)
        let whole = CRC32C.checksum(bytes)
        for split in 0...bytes.count {
            let first = CRC32C.checksum(bytes[..<split])
            #expect(CRC32C.checksum(bytes[split...], continuing: first) == whole, "split at \(split)")
        }
    }

    @Test func nonContiguousCollectionsAreChecksummedToo() {
        let lazy = (0..<100).lazy.map { UInt8($0 * 7 % 256) }
        #expect(CRC32C.checksum(lazy) == Self.reference(Array(lazy)))
        #expect(CRC32C.checksum("123456789".utf8) == 0xE306_9283)
    }

    @Test func detectsEverySingleBitFlip() {
        let bytes = Array("123456789abcdef".utf8)
        let good = CRC32C.checksum(bytes)
        for bit in 0..<(bytes.count * 8) {
            var bad = bytes
            bad[bit / 8] ^= 1 << UInt8(bit % 8)
            #expect(CRC32C.checksum(bad) != good)
        }
    }
}

@Suite("Binary reader and writer")
struct BinaryCodingTests {
    @Test func integersAreLittleEndian() throws {
        var writer = BinaryWriter()
        writer.write(UInt8(0xAB))
        writer.write(UInt32(0x0102_0304))
        writer.write(UInt64(0x0102_0304_0506_0708))
        writer.write(Int64(-2))
        #expect(writer.bytes == [0xAB, 4, 3, 2, 1, 8, 7, 6, 5, 4, 3, 2, 1, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])

        var reader = BinaryReader(writer.bytes)
        #expect(try reader.readUInt8() == 0xAB)
        #expect(try reader.readUInt32() == 0x0102_0304)
        #expect(try reader.readUInt64() == 0x0102_0304_0506_0708)
        #expect(try reader.readInt64() == -2)
        #expect(reader.isAtEnd)
        #expect(reader.remaining == 0)
    }

    @Test func stringsAndByteStringsAreLengthPrefixed() throws {
        var writer = BinaryWriter()
        writer.write("₹ok")
        writer.write(bytes: [9, 8, 7])
        #expect(writer.bytes == [5, 0, 0, 0, 0xE2, 0x82, 0xB9, 0x6F, 0x6B, 3, 0, 0, 0, 9, 8, 7])
        var reader = BinaryReader(writer.bytes)
        #expect(try reader.readString() == "₹ok")
        #expect(try reader.readBytes() == [9, 8, 7])
        #expect(reader.isAtEnd)
    }

    @Test func patchOverwritesFourBytes() {
        var writer = BinaryWriter()
        writer.write(UInt32(0))
        writer.write(UInt8(7))
        writer.patch(0xDEAD_BEEF, at: 0)
        #expect(writer.bytes == [0xEF, 0xBE, 0xAD, 0xDE, 7])
    }

    @Test func readsPastTheEndThrowTruncated() throws {
        var reader = BinaryReader([1, 2, 3])
        #expect(throws: BinaryReader.Error.truncated(needed: 4, offset: 0)) { try reader.readUInt32() }
        #expect(reader.remaining == 3, "a failed read consumes nothing")
        #expect(try reader.readUInt8() == 1)
        #expect(throws: BinaryReader.Error.truncated(needed: 8, offset: 1)) { try reader.readUInt64() }
    }

    @Test func readerRespectsItsWindow() throws {
        var reader = BinaryReader([0, 1, 2, 3, 4, 5], from: 1, to: 3)
        #expect(reader.remaining == 2)
        #expect(try reader.readUInt8() == 1)
        #expect(try reader.readUInt8() == 2)
        #expect(throws: BinaryReader.Error.self) { try reader.readUInt8() }
    }

    @Test func stringLimitsAndValidation() {
        var long = BinaryWriter()
        long.write("abcdef")
        var reader = BinaryReader(long.bytes)
        #expect(throws: BinaryReader.Error.invalid("string of 6 bytes exceeds 5")) { try reader.readString(maxBytes: 5) }

        var notUTF8 = BinaryReader([2, 0, 0, 0, 0xC3, 0x28])
        #expect(throws: BinaryReader.Error.invalid("string is not UTF-8")) { try notUTF8.readString() }

        var cut = BinaryReader([10, 0, 0, 0, 0x61])
        #expect(throws: BinaryReader.Error.truncated(needed: 10, offset: 4)) { try cut.readString() }

        var huge = BinaryReader([0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: BinaryReader.Error.self) { try huge.readBytes() }
    }
}

@Suite("Operation codec")
struct OperationCodecTests {
    static let everyKind: [Operation] = [
        .debit(account: Fixture.account("HDFC.savings-01"), amount: .rupees(10_00_000)),
        .credit(account: Fixture.account("sbi_current"), amount: Paise(18_00_000_00)),
        .read(account: Fixture.account("a")),
        .fileReport(Report(kind: "large-transaction ₹", amount: Paise(-1), reference: "T-3.4711 / CA consolidation")),
        .debit(account: Fixture.account(String(repeating: "x", count: AccountID.maxLengthBytes)), amount: Paise(.min)),
        .credit(account: Fixture.account("z"), amount: Paise(.max)),
        .fileReport(Report(kind: "", amount: .zero, reference: String(repeating: "r", count: Report.maxTextBytes))),
    ]

    @Test(arguments: [[], [everyKind[0]], everyKind, Array(repeating: everyKind[2], count: OperationCodec.maxOperations)])
    func roundTrips(_ operations: [Operation]) throws {
        #expect(try OperationCodec.decode(OperationCodec.encode(operations)) == operations)
    }

    @Test func layoutIsStable() {
        #expect(OperationCodec.encode([]) == [0, 0, 0, 0])
        #expect(OperationCodec.encode([.read(account: Fixture.account("a"))]) == [1, 0, 0, 0, 3, 1, 0, 0, 0, 0x61])
        #expect(OperationCodec.encode([.debit(account: Fixture.account("b"), amount: Paise(258))])
            == [1, 0, 0, 0, 1, 1, 0, 0, 0, 0x62, 2, 1, 0, 0, 0, 0, 0, 0])
    }

    @Test func everyTruncationIsAnError() {
        let bytes = OperationCodec.encode(Self.everyKind)
        for length in 0..<bytes.count {
            #expect(throws: BinaryReader.Error.self, "cut at \(length)") { try OperationCodec.decode(Array(bytes[..<length])) }
        }
    }

    @Test func trailingBytesAreRejected() {
        let bytes = OperationCodec.encode([.read(account: Fixture.account("a"))]) + [0]
        #expect(throws: BinaryReader.Error.invalid("trailing bytes after operations")) { try OperationCodec.decode(bytes) }
    }

    @Test func unknownTagIsRejected() {
        #expect(throws: BinaryReader.Error.invalid("operation tag")) { try OperationCodec.decode([1, 0, 0, 0, 9]) }
        #expect(throws: BinaryReader.Error.invalid("operation tag")) { try OperationCodec.decode([1, 0, 0, 0, 0]) }
    }

    @Test func tooManyOperationsAreRejectedBeforeReadingThem() {
        var writer = BinaryWriter()
        writer.write(UInt32(OperationCodec.maxOperations + 1))
        #expect(throws: BinaryReader.Error.invalid("1025 operations exceed 1024")) { try OperationCodec.decode(writer.bytes) }
    }

    @Test(arguments: ["", "has space", "slash/no", String(repeating: "x", count: AccountID.maxLengthBytes + 1)])
    func invalidAccountNamesAreRejected(name: String) {
        var writer = BinaryWriter()
        writer.write(UInt32(1))
        writer.write(UInt8(3)) // read
        writer.write(name)
        #expect(throws: BinaryReader.Error.self) { try OperationCodec.decode(writer.bytes) }
    }

    @Test func oversizedReportTextIsRejected() {
        var writer = BinaryWriter()
        writer.write(UInt32(1))
        writer.write(UInt8(4))
        writer.write(String(repeating: "k", count: Report.maxTextBytes + 1))
        writer.write(Int64(1))
        writer.write("ref")
        #expect(throws: BinaryReader.Error.self) { try OperationCodec.decode(writer.bytes) }
    }
}

@Suite("Decision record")
struct DecisionRecordTests {
    static let records: [DecisionRecord] = [
        .segmentHeader(segment: 0, epoch: 0),
        .segmentHeader(segment: .max, epoch: TransactionID.maxEpoch),
        .epochStarted(epoch: 7),
        .commit(transaction: Fixture.tx(4711, epoch: 3), participants: [Fixture.hdfc, Fixture.icici, Fixture.axis, Fixture.sbi]),
        .commit(transaction: TransactionID(rawValue: .max), participants: []),
        .commit(transaction: Fixture.tx(1), participants: (0..<DecisionRecord.maxParticipants).map {
            ParticipantID(validated: "participant-\($0)-" + String(repeating: "p", count: 10))
        }),
        .end(transaction: Fixture.tx(4711, epoch: 3)),
    ]

    @Test(arguments: records)
    func roundTrips(_ record: DecisionRecord) throws {
        #expect(try DecisionRecord(decoding: record.encoded()) == record)
    }

    @Test(arguments: records)
    func everyTruncationIsAnError(_ record: DecisionRecord) {
        let bytes = record.encoded()
        for length in 0..<bytes.count {
            #expect(throws: BinaryReader.Error.self, "cut at \(length)") { try DecisionRecord(decoding: Array(bytes[..<length])) }
        }
    }

    @Test(arguments: records)
    func trailingBytesAreRejected(_ record: DecisionRecord) {
        #expect(throws: BinaryReader.Error.invalid("trailing bytes in record")) { try DecisionRecord(decoding: record.encoded() + [0]) }
    }

    @Test func layoutIsStable() {
        #expect(DecisionRecord.end(transaction: TransactionID(rawValue: 0x0102)).encoded() == [4, 0x02, 0x01, 0, 0, 0, 0, 0, 0])
        #expect(DecisionRecord.epochStarted(epoch: 0x0A0B).encoded() == [2, 0x0B, 0x0A, 0, 0])
        #expect(DecisionRecord.segmentHeader(segment: 1, epoch: 2).encoded() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0])
        #expect(DecisionRecord.commit(transaction: TransactionID(rawValue: 5), participants: [Fixture.sbi]).encoded()
            == [3, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0x73, 0x62, 0x69])
    }

    @Test func transactionIsNamedOnlyByCommitAndEnd() {
        #expect(DecisionRecord.commit(transaction: Fixture.tx(1), participants: []).transaction == Fixture.tx(1))
        #expect(DecisionRecord.end(transaction: Fixture.tx(2)).transaction == Fixture.tx(2))
        #expect(DecisionRecord.epochStarted(epoch: 1).transaction == nil)
        #expect(DecisionRecord.segmentHeader(segment: 1, epoch: 1).transaction == nil)
    }

    @Test func unknownRecordTypeIsRejected() {
        #expect(throws: BinaryReader.Error.invalid("unknown record type 9")) { try DecisionRecord(decoding: [9, 0, 0]) }
        #expect(throws: BinaryReader.Error.invalid("unknown record type 0")) { try DecisionRecord(decoding: [0]) }
        #expect(throws: BinaryReader.Error.self) { try DecisionRecord(decoding: []) }
    }

    @Test func tooManyParticipantsAreRejected() {
        var writer = BinaryWriter()
        writer.write(UInt8(3))
        writer.write(UInt64(1))
        writer.write(UInt32(DecisionRecord.maxParticipants + 1))
        #expect(throws: BinaryReader.Error.invalid("257 participants")) { try DecisionRecord(decoding: writer.bytes) }
    }

    @Test(arguments: ["", "HDFC", "has space", String(repeating: "p", count: ParticipantID.maxLengthBytes + 1)])
    func invalidParticipantNamesAreRejected(name: String) {
        var writer = BinaryWriter()
        writer.write(UInt8(3))
        writer.write(UInt64(1))
        writer.write(UInt32(1))
        writer.write(name)
        #expect(throws: BinaryReader.Error.self) { try DecisionRecord(decoding: writer.bytes) }
    }
}

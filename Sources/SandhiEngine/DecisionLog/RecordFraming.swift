/// Framing of log records on disk, and the scan that tells a torn tail from corruption.
///
/// ```
///  0        4          8          12
///  +--------+----------+----------+---------------------+
///  | length | crc32c   | crc32c   | payload             |
///  | (u32)  | payload  | bytes0-8 | (length bytes)      |
///  +--------+----------+----------+---------------------+
/// ```
///
/// The header carries its own checksum so that a flipped bit in a length field is reported as
/// corruption instead of being mistaken for a torn tail (which would silently truncate every
/// record after it).
///
/// A file may end in zero bytes that were never records: the decision log writes zeros ahead of
/// its records (preallocation, so that an fdatasync inside that space flushes data blocks only),
/// and some filesystems extend a file with zeros before the data of a cut write lands. A cut
/// write into such space leaves a partial record followed by zeros instead of by the end of the
/// file. "Only zeros follow" therefore counts as the end of the file in rules 4 and 7 below: a
/// record that nothing but zeros follows cannot hide a later record, so cutting it loses only
/// itself, which (barring decay of the medium) never reached the disk whole. Anything non-zero
/// after a damaged record still makes it corruption. The scan's rules, in order, at each record
/// start:
///
/// 1. only zero bytes left                 -> `.zeroFilled`: unwritten space, not a record; the
///                                            next record goes here (no truncation needed)
/// 2. fewer than 12 bytes left             -> torn tail (a write cut short); truncate here
/// 3. header checksum wrong, something
///    other than zeros after the header    -> corruption at this offset
/// 4. header checksum wrong, only zeros
///    after the header                     -> torn tail (a header cut mid-write; a whole record
///                                            never has an all-zero payload, see below)
/// 5. length 0 or above `maxPayloadBytes`  -> corruption at this offset
/// 6. payload runs past the end of file    -> torn tail; truncate here
/// 7. payload checksum wrong, and only zeros (or nothing) follow the record -> torn tail
/// 8. payload checksum wrong, more non-zero bytes follow -> corruption at this offset
///
/// Rule 4 could mistake a bit flip in the header of the very last record for a torn tail only if
/// that record's payload were all zeros; decision records begin with a non-zero tag byte, so a
/// real record never looks like that. A cut write whose bytes landed out of order (a zero hole
/// followed by later bytes of the same write) is reported as corruption: from the bytes alone it
/// cannot be told from lost records, so the scan refuses to guess.
public enum RecordFraming {
    public static let headerBytes = 12
    public static let maxPayloadBytes = 64 * 1024

    public static func frame(_ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        frame(payload, into: &out)
        return out
    }

    public static func frame(_ payload: [UInt8], into out: inout [UInt8]) {
        precondition(!payload.isEmpty && payload.count <= maxPayloadBytes, "payload size \(payload.count)")
        var header = BinaryWriter(capacity: headerBytes)
        header.write(UInt32(payload.count))
        header.write(CRC32C.checksum(payload))
        header.write(CRC32C.checksum(header.bytes))
        out.append(contentsOf: header.bytes)
        out.append(contentsOf: payload)
    }

    public struct Scan: Sendable, Equatable {
        public struct Record: Sendable, Equatable {
            public var offset: Int
            public var payload: [UInt8]
        }

        public enum Tail: Sendable, Equatable {
            /// The file ends exactly after the last whole record.
            case clean
            /// From `offset` to the end of the file only zero bytes (at least one): space written
            /// ahead of the records, or a cut write none of whose bytes landed. Nothing there was
            /// ever a record; the next one goes at `offset`.
            case zeroFilled(offset: Int)
            /// The bytes from `offset` on are an incomplete final write; truncate them.
            case torn(offset: Int, reason: String)
            /// A damaged record at `offset` with data after it: refuse to guess.
            case corrupt(offset: Int, reason: String)
        }

        public var records: [Record]
        /// End of the last whole record: where the next append goes once a torn tail is cut.
        public var validEnd: Int
        public var tail: Tail
    }

    public static func scan(_ bytes: [UInt8], from start: Int = 0) -> Scan {
        var records: [Scan.Record] = []
        var offset = start
        let end = bytes.count
        while offset < end {
            let left = end - offset
            if onlyZeros(bytes, from: offset) {
                return Scan(records: records, validEnd: offset, tail: .zeroFilled(offset: offset))
            }
            if left < headerBytes {
                return Scan(records: records, validEnd: offset, tail: .torn(offset: offset, reason: "\(left)-byte partial header"))
            }
            let length = Int(readUInt32(bytes, offset))
            let payloadCRC = readUInt32(bytes, offset + 4)
            let headerCRC = readUInt32(bytes, offset + 8)
            let expectedHeaderCRC = bytes.withUnsafeBytes { raw in
                CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + 8]))
            }
            let payloadStart = offset + headerBytes
            guard headerCRC == expectedHeaderCRC else {
                if onlyZeros(bytes, from: payloadStart) {
                    return Scan(records: records, validEnd: offset,
                                tail: .torn(offset: offset, reason: "header checksum mismatch, only zero bytes after it"))
                }
                return Scan(records: records, validEnd: offset, tail: .corrupt(offset: offset, reason: "header checksum mismatch"))
            }
            guard length > 0, length <= maxPayloadBytes else {
                return Scan(records: records, validEnd: offset, tail: .corrupt(offset: offset, reason: "record length \(length) out of range"))
            }
            if length > end - payloadStart {
                return Scan(records: records, validEnd: offset,
                            tail: .torn(offset: offset, reason: "record of \(length) bytes cut at \(end - payloadStart)"))
            }
            let actualCRC = bytes.withUnsafeBytes { raw in
                CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[payloadStart..<payloadStart + length]))
            }
            if actualCRC != payloadCRC {
                if onlyZeros(bytes, from: payloadStart + length) {
                    let reason = payloadStart + length == end
                        ? "final record checksum mismatch"
                        : "final record checksum mismatch, only zero bytes after it"
                    return Scan(records: records, validEnd: offset, tail: .torn(offset: offset, reason: reason))
                }
                return Scan(records: records, validEnd: offset, tail: .corrupt(offset: offset, reason: "payload checksum mismatch"))
            }
            records.append(Scan.Record(offset: offset, payload: Array(bytes[payloadStart..<payloadStart + length])))
            offset = payloadStart + length
        }
        return Scan(records: records, validEnd: offset, tail: .clean)
    }

    /// True when every byte from `start` to the end is zero (also when `start` is at or past the
    /// end). Stops at the first non-zero byte, so at a record start it costs a byte or two.
    private static func onlyZeros(_ bytes: [UInt8], from start: Int) -> Bool {
        guard start < bytes.count else { return true }
        return bytes[start...].allSatisfy { $0 == 0 }
    }

    private static func readUInt32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }
}

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
/// record after it). The scan's rules, in order, at each record start:
///
/// 1. fewer than 12 bytes left            -> torn tail (a write cut short); truncate here
/// 2. only zero bytes left                 -> torn tail (some filesystems extend a file with
///                                            zeros before the data of a cut write lands)
/// 3. header checksum wrong                -> corruption at this offset
/// 4. length 0 or above `maxPayloadBytes`  -> corruption at this offset
/// 5. payload runs past the end of file    -> torn tail; truncate here
/// 6. payload checksum wrong, and this is the last record of the file -> torn tail
/// 7. payload checksum wrong, more records follow -> corruption at this offset
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
            if left < headerBytes {
                return Scan(records: records, validEnd: offset, tail: .torn(offset: offset, reason: "\(left)-byte partial header"))
            }
            let length = Int(readUInt32(bytes, offset))
            let payloadCRC = readUInt32(bytes, offset + 4)
            let headerCRC = readUInt32(bytes, offset + 8)
            let expectedHeaderCRC = bytes.withUnsafeBytes { raw in
                CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[offset..<offset + 8]))
            }
            if bytes[offset...].allSatisfy({ $0 == 0 }) {
                return Scan(records: records, validEnd: offset, tail: .torn(offset: offset, reason: "\(left) zero bytes after the last record"))
            }
            guard headerCRC == expectedHeaderCRC else {
                return Scan(records: records, validEnd: offset, tail: .corrupt(offset: offset, reason: "header checksum mismatch"))
            }
            guard length > 0, length <= maxPayloadBytes else {
                return Scan(records: records, validEnd: offset, tail: .corrupt(offset: offset, reason: "record length \(length) out of range"))
            }
            let payloadStart = offset + headerBytes
            if length > end - payloadStart {
                return Scan(records: records, validEnd: offset,
                            tail: .torn(offset: offset, reason: "record of \(length) bytes cut at \(end - payloadStart)"))
            }
            let actualCRC = bytes.withUnsafeBytes { raw in
                CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[payloadStart..<payloadStart + length]))
            }
            if actualCRC != payloadCRC {
                if payloadStart + length == end {
                    return Scan(records: records, validEnd: offset, tail: .torn(offset: offset, reason: "final record checksum mismatch"))
                }
                return Scan(records: records, validEnd: offset, tail: .corrupt(offset: offset, reason: "payload checksum mismatch"))
            }
            records.append(Scan.Record(offset: offset, payload: Array(bytes[payloadStart..<payloadStart + length])))
            offset = payloadStart + length
        }
        return Scan(records: records, validEnd: offset, tail: .clean)
    }

    private static func readUInt32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }
}

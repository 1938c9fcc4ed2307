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
/// file. "Only zeros follow" therefore counts as the end of the file in rules 3 and 7 below: a
/// record that nothing but zeros follows cannot hide a later record, so cutting it loses only
/// itself, which (barring decay of the medium) never reached the disk whole.
///
/// A power cut can also tear a write in the middle. A batch spanning several pages lands page by
/// page, in no particular order, while its fdatasync is in flight (or while the kernel writes
/// back records nobody forced): some pages hold the new bytes, others still read as the zeros
/// preallocated there. That leaves a damaged record with whole records after it. Nothing from
/// the first hole on was ever acknowledged as durable, since every forced completion waits for an
/// fdatasync covering all earlier bytes, so cutting there loses nothing promised. Two marks tell
/// such a tear from decay, after which cutting would drop acknowledged records:
///
/// - Where: writers keep at most `maxUnsyncedBytes` written but not yet synced (they fdatasync
///   before going past it), so a tear lies within `maxUnsyncedBytes` of the end of the file's
///   non-zero content. The caller passes that window (`unsyncedWindowBytes`) for the segment a
///   crash may have cut, the last one, and 0 for every other.
/// - How: a disk writes whole sectors (`sectorBytes`, or multiples), and a sector that did not
///   land still reads as the zeros written there ahead of the records. The first damaged record of
///   a tear therefore has zeros from its start, or from a sector boundary inside it, through the
///   next sector boundary. A flipped bit leaves no such hole: it stays corruption even at the end.
///
/// The scan's rules, in order, at each record start:
///
/// 1. only zero bytes left                 -> `.zeroFilled`: unwritten space, not a record; the
///                                            next record goes here (no truncation needed)
/// 2. fewer than 12 bytes left             -> torn tail (a write cut short); truncate here
/// 3. header checksum wrong, only zeros
///    after the header                     -> torn tail (a header cut mid-write; a whole record
///                                            never has an all-zero payload, see below)
/// 4. header checksum wrong, something
///    other than zeros after the header    -> damaged (rule 9)
/// 5. length 0 or above `maxPayloadBytes`  -> damaged (rule 9)
/// 6. payload runs past the end of file    -> torn tail; truncate here
/// 7. payload checksum wrong, and only zeros (or nothing) follow the record -> torn tail
/// 8. payload checksum wrong, more non-zero bytes follow -> damaged (rule 9)
/// 9. damaged, at an offset within `unsyncedWindowBytes` of the end of the non-zero content (the
///    offset just past the last non-zero byte), with a sector-bounded hole of zeros in the record
///    (in its header when rule 4 or 5 applies: its length is not to be trusted) -> torn tail (a
///    batch torn mid-write): truncate here, discarding the whole records after the hole. Damaged
///    in any other way or place (always, when the window is 0) -> corruption at this offset.
///    (Rule 5 behind a valid header checksum is never a tear, and never has such a hole.)
///
/// Rule 3 could mistake a bit flip in the header of the very last record for a torn tail only if
/// that record's payload were all zeros; decision records begin with a non-zero tag byte, so a
/// real record never looks like that. Rule 9 could take decay for a tear only if it fell inside
/// the window on a record that also holds zeros up to a sector boundary, which decision records,
/// dense with non-zero bytes, practically never do. Anywhere else damage is refused: from the
/// bytes alone it cannot be told from lost records, so the scan refuses to guess.
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
        // The header goes straight into `out` and its checksum is taken there: a header buffer
        // of its own cost an allocation per record.
        let start = out.count
        appendLittleEndian(UInt32(payload.count), to: &out)
        appendLittleEndian(CRC32C.checksum(payload), to: &out)
        let headerChecksum = out.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start..<(start + 8)])) }
        appendLittleEndian(headerChecksum, to: &out)
        out.append(contentsOf: payload)
    }

    private static func appendLittleEndian(_ value: UInt32, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
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
            /// The bytes from `offset` on are an incomplete final write; truncate them. With rule 9
            /// that write may have whole records after its hole: they go too, never acknowledged.
            case torn(offset: Int, reason: String)
            /// A damaged record at `offset` with data after it, not a tear by rule 9: refuse to
            /// guess.
            case corrupt(offset: Int, reason: String)
        }

        public var records: [Record]
        /// End of the last whole record: where the next append goes once a torn tail is cut.
        public var validEnd: Int
        public var tail: Tail
    }

    /// Most bytes a writer may have written but not yet fdatasynced at any moment (rule 9): it
    /// syncs before a write would take it past this. A format constant rather than a setting,
    /// because the scan of a log must use the bound its writer kept, whichever process that was.
    /// 1 MiB is hundreds of group-commit batches, so the bound almost never adds a sync of its
    /// own, yet unforced END records can no longer pile up unsynced without limit.
    public static let maxUnsyncedBytes = 1 << 20

    /// The smallest unit a disk writes whole (rule 9). 512 bytes divides every real sector size,
    /// so a hole of a larger sector shows as one of these too.
    public static let sectorBytes = 512

    /// Splits `bytes` into records from `start` on, per the rules above. `unsyncedWindowBytes` is
    /// rule 9's window: `maxUnsyncedBytes` for the segment a crash may have cut mid-batch (the
    /// last one), 0 where any damage is corruption.
    public static func scan(_ bytes: [UInt8], from start: Int = 0, unsyncedWindowBytes: Int = 0) -> Scan {
        precondition(unsyncedWindowBytes >= 0, "unsyncedWindowBytes \(unsyncedWindowBytes)")
        var records: [Scan.Record] = []
        var offset = start
        let end = bytes.count
        // Rule 9: a damaged record whose bytes run to `recordEnd` is torn when it lies in the
        // window and has a hole where a sector did not land; otherwise it is corruption.
        func damaged(_ reason: String, recordEnd: Int) -> Scan {
            if unsyncedWindowBytes > 0 {
                let contentEnd = nonZeroEnd(bytes)
                if offset >= contentEnd - unsyncedWindowBytes, let hole = unlandedSector(bytes, offset: offset, recordEnd: recordEnd) {
                    return Scan(records: records, validEnd: offset, tail: .torn(offset: offset, reason:
                        "\(reason), zeros at bytes \(hole.lowerBound)..<\(hole.upperBound), \(contentEnd - offset) bytes "
                            + "before the end of the data: a batch torn by a crash"))
                }
            }
            return Scan(records: records, validEnd: offset, tail: .corrupt(offset: offset, reason: reason))
        }
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
                return damaged("header checksum mismatch", recordEnd: payloadStart)
            }
            guard length > 0, length <= maxPayloadBytes else {
                return damaged("record length \(length) out of range", recordEnd: payloadStart)
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
                return damaged("payload checksum mismatch", recordEnd: payloadStart + length)
            }
            records.append(Scan.Record(offset: offset, payload: Array(bytes[payloadStart..<payloadStart + length])))
            offset = payloadStart + length
        }
        return Scan(records: records, validEnd: offset, tail: .clean)
    }

    /// Rule 9's hole: the first run of zeros in the record at `offset` (bytes up to `recordEnd`)
    /// that starts at the record or at a sector boundary inside it and reaches the next sector
    /// boundary (or the end of the file), as a sector of a write that did not land leaves it.
    private static func unlandedSector(_ bytes: [UInt8], offset: Int, recordEnd: Int) -> Range<Int>? {
        var sectorStart = offset / sectorBytes * sectorBytes
        while sectorStart < min(recordEnd, bytes.count) {
            let hole = max(sectorStart, offset)..<min(sectorStart + sectorBytes, bytes.count)
            if bytes[hole].allSatisfy({ $0 == 0 }) { return hole }
            sectorStart += sectorBytes
        }
        return nil
    }

    /// The offset just past the last non-zero byte (0 if there is none). Walks back over the
    /// zeros preallocated at the end, so it costs up to a preallocation chunk; only damaged
    /// records ask for it.
    private static func nonZeroEnd(_ bytes: [UInt8]) -> Int {
        guard let last = bytes.lastIndex(where: { $0 != 0 }) else { return 0 }
        return last + 1
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

/// Appends little-endian integers and length-prefixed byte strings to a growing buffer.
/// The encoding of decision-log records and of persisted write-sets.
public struct BinaryWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ value: UInt8) { bytes.append(value) }

    public mutating func write(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: Int64) { write(UInt64(bitPattern: value)) }

    /// A UTF-8 string, prefixed with its byte count as a UInt32.
    public mutating func write(_ string: String) {
        // Straight from the string's own bytes: an `Array` of them first cost an allocation per
        // name, and every COMMIT record names its participants.
        write(UInt32(string.utf8.count))
        bytes.append(contentsOf: string.utf8)
    }

    public mutating func write(bytes other: [UInt8]) {
        write(UInt32(other.count))
        bytes.append(contentsOf: other)
    }

    /// Empties the buffer, keeping its storage: one writer reused for record after record
    /// allocates once.
    public mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }

    /// Overwrites four bytes at `offset` (for a length or checksum written after its payload).
    public mutating func patch(_ value: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= bytes.count, "patch outside the buffer")
        withUnsafeBytes(of: value.littleEndian) { raw in
            for index in 0..<4 { bytes[offset + index] = raw[index] }
        }
    }
}

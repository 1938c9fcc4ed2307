/// Reads what `BinaryWriter` wrote. Every read is bounds-checked and throws rather than traps,
/// because the bytes come from disk and may be damaged.
public struct BinaryReader {
    public enum Error: Swift.Error, Equatable, CustomStringConvertible {
        case truncated(needed: Int, offset: Int)
        case invalid(String)

        public var description: String {
            switch self {
            case .truncated(let needed, let offset): return "truncated: needed \(needed) bytes at offset \(offset)"
            case .invalid(let what): return "invalid: \(what)"
            }
        }
    }

    private let bytes: [UInt8]
    public private(set) var offset: Int
    private let end: Int

    public init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.offset = start
        self.end = end ?? bytes.count
        precondition(start >= 0 && self.end <= bytes.count && start <= self.end)
    }

    public var isAtEnd: Bool { offset == end }
    public var remaining: Int { end - offset }

    private mutating func take(_ count: Int) throws -> Int {
        guard count >= 0, end - offset >= count else { throw Error.truncated(needed: count, offset: offset) }
        let start = offset
        offset += count
        return start
    }

    public mutating func readUInt8() throws -> UInt8 { bytes[try take(1)] }

    public mutating func readUInt32() throws -> UInt32 {
        let start = try take(4)
        var value: UInt32 = 0
        for index in (0..<4).reversed() { value = value << 8 | UInt32(bytes[start + index]) }
        return value
    }

    public mutating func readUInt64() throws -> UInt64 {
        let start = try take(8)
        var value: UInt64 = 0
        for index in (0..<8).reversed() { value = value << 8 | UInt64(bytes[start + index]) }
        return value
    }

    public mutating func readInt64() throws -> Int64 { Int64(bitPattern: try readUInt64()) }

    public mutating func readString(maxBytes: Int = 1 << 16) throws -> String {
        let count = Int(try readUInt32())
        guard count <= maxBytes else { throw Error.invalid("string of \(count) bytes exceeds \(maxBytes)") }
        let start = try take(count)
        guard let string = String(validating: bytes[start..<start + count], as: UTF8.self) else {
            throw Error.invalid("string is not UTF-8")
        }
        return string
    }

    public mutating func readBytes(maxBytes: Int = 1 << 20) throws -> [UInt8] {
        let count = Int(try readUInt32())
        guard count <= maxBytes else { throw Error.invalid("byte string of \(count) bytes exceeds \(maxBytes)") }
        let start = try take(count)
        return Array(bytes[start..<start + count])
    }
}

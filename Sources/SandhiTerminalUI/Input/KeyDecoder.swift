/// Turns raw terminal bytes into keys: printable UTF-8, the C0 controls, and the xterm/VT
/// escape sequences for arrows, Home/End, PgUp/PgDn, Insert/Delete, F1–F12 and Shift-Tab in
/// both their CSI (`ESC [`) and SS3 (`ESC O`) forms, with or without modifier parameters
/// (which are ignored: Ctrl-Up is Up).
///
/// A lone ESC is ambiguous: the Esc key, or the first byte of a sequence still on its way. The
/// decoder does not guess. With `final: false` it answers `needMore` for ESC and any
/// incomplete sequence; the caller waits its escape delay (25 ms) for more bytes and, if none
/// came, calls again with `final: true`, which makes the ESC the Esc key and leaves the rest
/// for the next call.
public enum KeyDecoder {
    public enum Result: Hashable, Sendable {
        /// A key, from the first `length` bytes.
        case key(Key, length: Int)
        /// Bytes that mean nothing here (an unknown sequence, invalid UTF-8): skip them.
        case ignored(length: Int)
        /// The bytes so far begin a key; wait for more (or call again with `final: true`).
        case needMore
    }

    /// A bound on an escape sequence: anything longer without its final byte is noise.
    public static let maxSequenceBytes = 32

    public static func decode(_ bytes: some Collection<UInt8>, final: Bool) -> Result {
        let input = Array(bytes.prefix(maxSequenceBytes))
        guard let first = input.first else { return .needMore }
        switch first {
        case 0x1B: return escape(input, final: final)
        case 0x0D, 0x0A: return .key(.enter, length: 1)
        case 0x09: return .key(.tab, length: 1)
        case 0x7F, 0x08: return .key(.backspace, length: 1)
        case 0x01...0x1A: return .key(.control(Character(Unicode.Scalar(first + 0x60))), length: 1)
        case 0x00, 0x1C...0x1F: return .ignored(length: 1)
        case 0x20..<0x7F: return .key(.character(Character(Unicode.Scalar(first))), length: 1)
        default: return utf8(input, final: final)
        }
    }

    /// Decodes as many keys as the bytes hold; a trailing incomplete key is left (its bytes
    /// are the second value) unless `final`.
    public static func decodeAll(_ bytes: [UInt8], final: Bool) -> (keys: [Key], rest: [UInt8]) {
        var keys: [Key] = []
        var start = 0
        while start < bytes.count {
            switch decode(bytes[start...], final: final) {
            case .key(let key, let length): keys.append(key); start += length
            case .ignored(let length): start += length
            case .needMore: return (keys, Array(bytes[start...]))
            }
        }
        return (keys, [])
    }

    private static func escape(_ input: [UInt8], final: Bool) -> Result {
        guard input.count > 1 else { return final ? .key(.escape, length: 1) : .needMore }
        switch input[1] {
        case UInt8(ascii: "["): return csi(input, final: final)
        case UInt8(ascii: "O"):
            guard input.count > 2 else { return final ? .key(.escape, length: 1) : .needMore }
            if let key = ss3[input[2]] { return .key(key, length: 3) }
            return .ignored(length: 3)
        default:
            // ESC then something else (Esc pressed, then a key; or Alt-key): the Esc alone.
            return .key(.escape, length: 1)
        }
    }

    /// `ESC [` parameters (0x30–0x3F) intermediates (0x20–0x2F) final (0x40–0x7E); also the
    /// Linux console's `ESC [ [ A`..`E` for F1–F5.
    private static func csi(_ input: [UInt8], final: Bool) -> Result {
        if input.count > 2, input[2] == UInt8(ascii: "[") {
            guard input.count > 3 else { return final ? .key(.escape, length: 1) : .needMore }
            let n = Int(input[3]) - Int(UInt8(ascii: "A"))
            return (0..<5).contains(n) ? .key(.function(n + 1), length: 4) : .ignored(length: 4)
        }
        var index = 2
        while index < input.count, (0x20...0x3F).contains(input[index]) { index += 1 }
        guard index < input.count else {
            if input.count >= maxSequenceBytes { return .ignored(length: input.count) }
            return final ? .key(.escape, length: 1) : .needMore
        }
        let finalByte = input[index]
        let length = index + 1
        guard (0x40...0x7E).contains(finalByte) else { return .ignored(length: length) }
        let parameters = String(decoding: input[2..<index], as: UTF8.self)
        let first = parameters.split(separator: ";", omittingEmptySubsequences: false).first.flatMap { Int($0) }
        if finalByte == UInt8(ascii: "~") {
            guard let first, let key = tilde[first] else { return .ignored(length: length) }
            return .key(key, length: length)
        }
        if let key = csiFinal[finalByte] { return .key(key, length: length) }
        return .ignored(length: length)
    }

    private static func utf8(_ input: [UInt8], final: Bool) -> Result {
        let first = input[0]
        let expected: Int
        switch first {
        case 0xC2...0xDF: expected = 2
        case 0xE0...0xEF: expected = 3
        case 0xF0...0xF4: expected = 4
        default: return .ignored(length: 1)
        }
        var available = 1
        while available < min(expected, input.count), input[available] & 0xC0 == 0x80 { available += 1 }
        if available < expected {
            // Ran out of bytes (wait) or met a byte that cannot continue it (skip what we have).
            return available == input.count && !final ? .needMore : .ignored(length: available)
        }
        var decoder = UTF8()
        var iterator = input[0..<expected].makeIterator()
        guard case .scalarValue(let scalar) = decoder.decode(&iterator), scalar.value >= 0xA0 else {
            return .ignored(length: expected)
        }
        return .key(.character(Character(scalar)), length: expected)
    }

    private static let ss3: [UInt8: Key] = [
        UInt8(ascii: "A"): .up, UInt8(ascii: "B"): .down, UInt8(ascii: "C"): .right, UInt8(ascii: "D"): .left,
        UInt8(ascii: "H"): .home, UInt8(ascii: "F"): .end, UInt8(ascii: "M"): .enter,
        UInt8(ascii: "P"): .function(1), UInt8(ascii: "Q"): .function(2), UInt8(ascii: "R"): .function(3), UInt8(ascii: "S"): .function(4),
    ]

    private static let csiFinal: [UInt8: Key] = [
        UInt8(ascii: "A"): .up, UInt8(ascii: "B"): .down, UInt8(ascii: "C"): .right, UInt8(ascii: "D"): .left,
        UInt8(ascii: "H"): .home, UInt8(ascii: "F"): .end, UInt8(ascii: "Z"): .backTab,
        UInt8(ascii: "P"): .function(1), UInt8(ascii: "Q"): .function(2), UInt8(ascii: "R"): .function(3), UInt8(ascii: "S"): .function(4),
    ]

    /// `ESC [ n ~` (VT220 and xterm).
    private static let tilde: [Int: Key] = [
        1: .home, 2: .insert, 3: .delete, 4: .end, 5: .pageUp, 6: .pageDown, 7: .home, 8: .end,
        11: .function(1), 12: .function(2), 13: .function(3), 14: .function(4), 15: .function(5),
        17: .function(6), 18: .function(7), 19: .function(8), 20: .function(9), 21: .function(10),
        23: .function(11), 24: .function(12),
    ]
}

/// What one terminal cell shows: one spacing character and the zero-width characters that ride
/// on it (combining marks, Devanagari vowel signs and virama, ZWJ, variation selectors), kept
/// inline as up to 15 bytes of UTF-8. No String per cell: a frame of 160x48 cells is copied,
/// compared and diffed as plain memory, with no reference counting.
///
/// The cell model is the terminal's (and ncurses' `cchar_t`): a spacing character of width 1 or
/// 2 plus at most four zero-width ones. A wide character's right half is a `continuation` cell.
/// Zero-width characters past the fourth, or past 15 bytes, are dropped: the terminal could not
/// show them in that cell either.
public struct Glyph: Hashable, Sendable {
    // Bytes 0–7 in `low`, 8–14 in the low bytes of `high`; the top byte of `high` holds the
    // length (bits 0–3) and flags.
    @usableFromInline var low: UInt64
    @usableFromInline var high: UInt64

    @usableFromInline static let wideFlag: UInt64 = 1 << 4
    @usableFromInline static let continuationFlag: UInt64 = 1 << 5
    static let maxBytes = 15
    /// ncurses' CCHARW_MAX (5) less the spacing character.
    static let maxZeroWidth = 4

    @inlinable init(low: UInt64, high: UInt64) {
        self.low = low
        self.high = high
    }

    /// A printable ASCII character (0x20–0x7E); the fast path of most writes.
    @inlinable public init(ascii byte: UInt8) {
        self.init(low: UInt64(byte), high: 1 << 56)
    }

    public static let space = Glyph(ascii: 0x20)
    /// The right half of a wide character: shows nothing, width 0.
    public static let continuation = Glyph(low: 0, high: continuationFlag << 56)

    @inlinable var meta: UInt64 { high >> 56 }
    public var byteCount: Int { Int(meta & 0xF) }
    public var isContinuation: Bool { meta & Glyph.continuationFlag != 0 }
    public var isWide: Bool { meta & Glyph.wideFlag != 0 }
    /// Columns this cell's character covers: 2 for a wide character's left half, 0 for its
    /// right half, 1 otherwise.
    public var width: Int { isContinuation ? 0 : (isWide ? 2 : 1) }

    /// The UTF-8 bytes, in order.
    public var utf8: [UInt8] {
        (0..<byteCount).map { byte(at: $0) }
    }

    func byte(at index: Int) -> UInt8 {
        index < 8 ? UInt8(truncatingIfNeeded: low >> (8 * index)) : UInt8(truncatingIfNeeded: high >> (8 * (index - 8)))
    }

    /// The text of the cell ("" for a continuation).
    public var string: String { String(decoding: utf8, as: UTF8.self) }

    /// The Unicode scalars (for ncurses' `setcchar`, which wants the spacing character and its
    /// marks as wide characters).
    public var scalars: [Unicode.Scalar] { Array(string.unicodeScalars) }

    /// The first byte when the glyph is a single ASCII character, else nil.
    public var ascii: UInt8? {
        byteCount == 1 && low < 0x80 ? UInt8(truncatingIfNeeded: low) : nil
    }

    /// A glyph from text, measured by the width table: the first spacing character and the
    /// zero-width characters after it. Nil for empty text. Meant for single symbols (a vote
    /// mark, a border piece); strings go through `Grid.write`.
    public init?(_ text: String) {
        var builder = GlyphBuilder()
        for scalar in text.unicodeScalars {
            if builder.hasBase && DisplayWidth.of(scalar) != 0 { break }
            builder.append(scalar)
        }
        guard builder.hasBase else { return nil }
        self = builder.glyph
    }
}

/// Assembles one cell's glyph from scalars: a spacing scalar, then zero-width ones. Controls
/// and unprintable scalars become U+FFFD (a tab, one space), so nothing reaches the terminal
/// that could move its cursor.
struct GlyphBuilder {
    private var low: UInt64 = 0
    private var high: UInt64 = 0
    private var count = 0
    private var zeroWidthCount = 0
    private(set) var width = 0
    var hasBase: Bool { count > 0 }

    /// Starts a new cell with `scalar` if it has width, or adds it to the current cell if it
    /// has none (a mark with no character before it rides on a space).
    mutating func append(_ scalar: Unicode.Scalar) {
        var scalar = scalar
        var w = DisplayWidth.of(scalar)
        if w < 0 {
            scalar = scalar == "\t" ? " " : "\u{FFFD}"
            w = 1
        }
        if w == 0 {
            if count == 0 { start(" ", width: 1) }
            guard zeroWidthCount < Glyph.maxZeroWidth else { return }
            if appendBytes(scalar) { zeroWidthCount += 1 }
        } else {
            start(scalar, width: w)
        }
    }

    private mutating func start(_ scalar: Unicode.Scalar, width w: Int) {
        low = 0
        high = 0
        count = 0
        zeroWidthCount = 0
        width = w
        _ = appendBytes(scalar)
    }

    private mutating func appendBytes(_ scalar: Unicode.Scalar) -> Bool {
        let utf8 = UTF8.encode(scalar)!
        guard count + utf8.count <= Glyph.maxBytes else { return false }
        for byte in utf8 {
            if count < 8 { low |= UInt64(byte) << (8 * count) } else { high |= UInt64(byte) << (8 * (count - 8)) }
            count += 1
        }
        return true
    }

    var glyph: Glyph {
        let meta = UInt64(count) | (width == 2 ? Glyph.wideFlag : 0)
        return Glyph(low: low, high: high | meta << 56)
    }
}

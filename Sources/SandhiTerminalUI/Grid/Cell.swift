/// One terminal cell: a glyph and its style. Trivially copyable (no references), so a grid of
/// them is one flat buffer.
public struct Cell: Hashable, Sendable, CustomStringConvertible {
    public var glyph: Glyph
    public var style: Style

    @inlinable public init(glyph: Glyph, style: Style = .plain) {
        self.glyph = glyph
        self.style = style
    }

    public init(_ text: String, style: Style = .plain) {
        self.init(glyph: Glyph(text) ?? .space, style: style)
    }

    public static let blank = Cell(glyph: .space)

    public var symbol: String { glyph.string }
    public var isContinuation: Bool { glyph.isContinuation }
    public var width: Int { glyph.width }
    public var description: String { "'\(symbol)' \(style)" }
}

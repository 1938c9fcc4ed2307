/// A bordered box with an optional title on its top border: the frame around a panel, a
/// table or a dialog. The borders come from the glyph set, so the same block is drawn with
/// ┌─┐ on a UTF-8 terminal and +-+ on any other.
public struct Block: Widget {
    public struct Borders: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }
        public static let top = Borders(rawValue: 1), bottom = Borders(rawValue: 2)
        public static let left = Borders(rawValue: 4), right = Borders(rawValue: 8)
        public static let all: Borders = [.top, .bottom, .left, .right]
        public static let none: Borders = []
    }

    public var title: Line?
    public var borders: Borders
    public var borderStyle: Style
    /// Fills the inside (nil: leaves it as it is).
    public var background: Style?
    public var glyphs: GlyphSet

    public init(title: Line? = nil, borders: Borders = .all, borderStyle: Style = .plain,
                background: Style? = nil, glyphs: GlyphSet = .unicode) {
        self.title = title
        self.borders = borders
        self.borderStyle = borderStyle
        self.background = background
        self.glyphs = glyphs
    }

    /// The area inside the borders.
    public func inner(_ area: Rect) -> Rect {
        let left = borders.contains(.left) ? 1 : 0, right = borders.contains(.right) ? 1 : 0
        let top = borders.contains(.top) ? 1 : 0, bottom = borders.contains(.bottom) ? 1 : 0
        return Rect(x: area.x + left, y: area.y + top, width: area.width - left - right, height: area.height - top - bottom)
    }

    public func render(into grid: inout Grid, area: Rect) {
        guard !area.isEmpty else { return }
        if let background { grid.fill(inner(area), style: background) }
        let h = glyph(glyphs.horizontal), v = glyph(glyphs.vertical)
        if borders.contains(.top) {
            for x in area.x..<area.right { grid.put(h, style: borderStyle, x: x, y: area.y) }
        }
        if borders.contains(.bottom), area.height > 1 || !borders.contains(.top) {
            for x in area.x..<area.right { grid.put(h, style: borderStyle, x: x, y: area.bottom - 1) }
        }
        if borders.contains(.left) {
            for y in area.y..<area.bottom { grid.put(v, style: borderStyle, x: area.x, y: y) }
        }
        if borders.contains(.right), area.width > 1 || !borders.contains(.left) {
            for y in area.y..<area.bottom { grid.put(v, style: borderStyle, x: area.right - 1, y: y) }
        }
        func corner(_ symbol: String, _ x: Int, _ y: Int, _ a: Borders, _ b: Borders) {
            if borders.contains(a) && borders.contains(b) { grid.put(glyph(symbol), style: borderStyle, x: x, y: y) }
        }
        corner(glyphs.topLeft, area.x, area.y, .top, .left)
        corner(glyphs.topRight, area.right - 1, area.y, .top, .right)
        corner(glyphs.bottomLeft, area.x, area.bottom - 1, .bottom, .left)
        corner(glyphs.bottomRight, area.right - 1, area.bottom - 1, .bottom, .right)
        if let title, borders.contains(.top) {
            // " Title " after the corner, leaving the far corner whole.
            let left = area.x + (borders.contains(.left) ? 1 : 0)
            let right = area.right - (borders.contains(.right) ? 1 : 0)
            guard right - left >= 3 else { return }
            var padded = title
            padded.spans.insert(Span(" ", borderStyle), at: 0)
            padded.spans.append(Span(" ", borderStyle))
            grid.write(padded, in: Rect(x: left, y: area.y, width: right - left, height: 1), base: borderStyle, ellipsis: glyphs.ellipsis)
        }
    }

    private func glyph(_ symbol: String) -> Glyph { Glyph(symbol) ?? .space }
}

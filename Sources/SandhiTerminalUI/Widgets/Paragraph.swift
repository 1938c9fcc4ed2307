/// Lines of styled text, one per row from the top, each cut with an ellipsis when too wide
/// (no wrapping: a console row is a record, and wrapping would shift every row after it), and
/// scrolled by whole lines for the log and the help text.
public struct Paragraph: Widget {
    public var lines: [Line]
    public var style: Style
    /// The first line shown.
    public var scroll: Int
    public var glyphs: GlyphSet

    public init(_ lines: [Line], style: Style = .plain, scroll: Int = 0, glyphs: GlyphSet = .unicode) {
        self.lines = lines
        self.style = style
        self.scroll = scroll
        self.glyphs = glyphs
    }

    public func render(into grid: inout Grid, area: Rect) {
        grid.fill(area, style: style)
        let first = min(max(0, scroll), lines.count)
        for (row, line) in lines[first...].prefix(area.height).enumerated() {
            grid.write(line, in: area.row(row), base: style, ellipsis: glyphs.ellipsis)
        }
    }
}

/// A popup centred over the screen: the help listing every key, a confirmation ("Abort T-4712?
/// y/n"), a dry-run preview. It blanks what is under it, draws a titled border and its lines,
/// and is sized to its content within the screen (a margin of one cell all round where there
/// is room, so the screen behind still frames it).
public struct Overlay: Widget {
    public var title: Line?
    public var lines: [Line]
    /// Inside width wanted (nil: the widest line); always clipped to the screen.
    public var width: Int?
    public var style: Style
    public var borderStyle: Style
    public var glyphs: GlyphSet
    public var scroll: Int

    public init(title: Line? = nil, lines: [Line], width: Int? = nil, style: Style = .plain,
                borderStyle: Style = .plain, glyphs: GlyphSet = .unicode, scroll: Int = 0) {
        self.title = title
        self.lines = lines
        self.width = width
        self.style = style
        self.borderStyle = borderStyle
        self.glyphs = glyphs
        self.scroll = scroll
    }

    /// Where the popup lands on `screen`.
    public func frame(in screen: Rect) -> Rect {
        let titleWidth = (title?.width ?? 0) + 4
        let innerWidth = width ?? max(lines.map(\.width).max() ?? 0, titleWidth)
        let margin = screen.width > innerWidth + 4 ? 1 : 0
        let marginV = screen.height > lines.count + 4 ? 1 : 0
        let bounds = screen.inset(horizontal: margin, vertical: marginV)
        return bounds.centered(width: innerWidth + 2, height: lines.count + 2)
    }

    public func render(into grid: inout Grid, area: Rect) {
        let frame = frame(in: area)
        guard !frame.isEmpty else { return }
        let block = Block(title: title, borderStyle: borderStyle, background: style, glyphs: glyphs)
        block.render(into: &grid, area: frame)
        Paragraph(lines, style: style, scroll: scroll, glyphs: glyphs).render(into: &grid, area: block.inner(frame))
    }
}

/// A scrolling list of lines with a selection marker: menus (faults, workloads, victims) and
/// picker dialogs.
public struct List: StatefulWidget {
    public var items: [Line]
    public var style: Style
    public var selectionStyle: Style
    public var glyphs: GlyphSet
    public var state: TableState

    public init(_ items: [Line], state: TableState = TableState(), style: Style = .plain,
                selectionStyle: Style = Style(.reverse), glyphs: GlyphSet = .unicode) {
        self.items = items
        self.state = state
        self.style = style
        self.selectionStyle = selectionStyle
        self.glyphs = glyphs
    }

    public func render(into grid: inout Grid, area: Rect, state: inout TableState) {
        guard !area.isEmpty else { return }
        grid.fill(area, style: style)
        state.scroll(count: items.count, viewport: area.height)
        let marker = glyphs.selectionMarker + " "
        let markerWidth = DisplayWidth.of(marker)
        for row in 0..<min(area.height, items.count - state.offset) {
            let index = state.offset + row
            let rect = area.row(row)
            let isSelected = index == state.selected
            if isSelected { grid.write(marker, x: rect.x, y: rect.y, style: selectionStyle, clip: rect) }
            let text = Rect(x: rect.x + markerWidth, y: rect.y, width: rect.width - markerWidth, height: 1)
            grid.write(items[index], in: text, base: style, ellipsis: glyphs.ellipsis)
            if isSelected { grid.setStyle(rect, selectionStyle) }
        }
    }
}

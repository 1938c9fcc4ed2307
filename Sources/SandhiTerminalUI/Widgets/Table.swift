/// A scrolling table with a header, a selected row and columns that hide by priority when the
/// area is narrow (see `ColumnLayout`). Rows are asked for by index and only for the rows that
/// are visible, so a table over 10,000 transactions formats about 40 rows a frame.
public struct Table: StatefulWidget {
    public var columns: [ColumnSpec]
    public var rowCount: Int
    /// The cells of row `i`, one line per column, in the order of `columns`; missing cells are
    /// blank. Called only for visible rows.
    public var row: (Int) -> TableRow
    public var headerStyle: Style
    public var style: Style
    public var selectionStyle: Style
    public var spacing: Int
    public var glyphs: GlyphSet
    /// Selection and scroll offset; `render` moves the offset to keep the selection in view.
    public var state: TableState

    public init(columns: [ColumnSpec], rowCount: Int, state: TableState = TableState(), headerStyle: Style = .plain,
                style: Style = .plain, selectionStyle: Style = Style(.reverse), spacing: Int = 1,
                glyphs: GlyphSet = .unicode, row: @escaping (Int) -> TableRow) {
        self.columns = columns
        self.rowCount = rowCount
        self.row = row
        self.headerStyle = headerStyle
        self.style = style
        self.selectionStyle = selectionStyle
        self.spacing = spacing
        self.glyphs = glyphs
        self.state = state
    }

    /// Rows of data that fit under the header.
    public static func viewport(_ area: Rect) -> Int { max(0, area.height - 1) }

    public func render(into grid: inout Grid, area: Rect, state: inout TableState) {
        guard !area.isEmpty else { return }
        grid.fill(area, style: style)
        let placements = ColumnLayout.place(columns, width: area.width, spacing: spacing)
        let header = area.row(0)
        grid.fill(header, style: headerStyle)
        for placement in placements {
            let column = columns[placement.index]
            let cell = Rect(x: area.x + placement.x, y: header.y, width: placement.width, height: 1)
            grid.write(Line(column.title, alignment: column.alignment.lineAlignment), in: cell, base: headerStyle, ellipsis: glyphs.ellipsis)
        }
        let viewport = Table.viewport(area)
        state.scroll(count: rowCount, viewport: viewport)
        guard viewport > 0 else { return }
        for visible in 0..<min(viewport, rowCount - state.offset) {
            let index = state.offset + visible
            let y = area.y + 1 + visible
            let data = row(index)
            let isSelected = index == state.selected
            let rowRect = Rect(x: area.x, y: y, width: area.width, height: 1)
            let rowStyle = data.style ?? style
            if data.style != nil { grid.fill(rowRect, style: rowStyle) }
            for placement in placements where placement.index < data.cells.count {
                var line = data.cells[placement.index]
                line.alignment = columns[placement.index].alignment.lineAlignment
                grid.write(line, in: Rect(x: area.x + placement.x, y: y, width: placement.width, height: 1), base: rowStyle, ellipsis: glyphs.ellipsis)
            }
            if isSelected { grid.setStyle(rowRect, selectionStyle) }
        }
    }
}

public struct TableRow: Sendable {
    public var cells: [Line]
    /// The whole row's background and default look (nil: the table's).
    public var style: Style?

    public init(_ cells: [Line], style: Style? = nil) {
        self.cells = cells
        self.style = style
    }
}

/// What a table or list remembers between frames.
public struct TableState: Hashable, Sendable {
    public var selected: Int?
    public var offset: Int

    public init(selected: Int? = nil, offset: Int = 0) {
        self.selected = selected
        self.offset = offset
    }

    /// Keeps the selection within `count` items and the offset where the selection is in a
    /// view of `viewport` rows.
    public mutating func scroll(count: Int, viewport: Int) {
        if let current = selected { selected = count == 0 ? nil : min(max(0, current), count - 1) }
        offset = Scrolling.offset(current: offset, selected: selected, count: count, viewport: viewport)
    }

    /// Moves the selection by `delta` rows within `count` (arrows, j/k, PgUp/PgDn).
    public mutating func move(by delta: Int, count: Int) {
        guard count > 0 else { selected = nil; return }
        selected = min(max(0, (selected ?? (delta > 0 ? -1 : count)) + delta), count - 1)
    }
}

extension ColumnSpec.Alignment {
    var lineAlignment: Line.Alignment {
        switch self {
        case .left: .left
        case .right: .right
        case .center: .center
        }
    }
}

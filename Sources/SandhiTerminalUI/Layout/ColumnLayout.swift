/// Which table columns show at a width, and how wide each is. A narrow terminal loses whole
/// columns, least important first, never characters from the middle of every column: at 80
/// columns the transaction table drops the per-bank vote columns it cannot fit rather than
/// squeezing ids into "T-47…".
public struct ColumnSpec: Hashable, Sendable {
    public enum Alignment: Hashable, Sendable { case left, right, center }

    public var title: String
    /// The least width the column is shown at (its content is cut with an ellipsis beyond it).
    public var minWidth: Int
    /// Share of the spare width the column takes (0: stays at `minWidth`).
    public var grow: Int
    /// 0 is the most important; columns with higher numbers are hidden first, and among equal
    /// ones the rightmost goes first.
    public var priority: Int
    public var alignment: Alignment

    public init(_ title: String, minWidth: Int, grow: Int = 0, priority: Int = 0, alignment: Alignment = .left) {
        self.title = title
        self.minWidth = max(1, minWidth)
        self.grow = max(0, grow)
        self.priority = priority
        self.alignment = alignment
    }
}

/// A shown column: which spec, and where.
public struct ColumnPlacement: Hashable, Sendable {
    public var index: Int
    public var x: Int
    public var width: Int
}

public enum ColumnLayout {
    /// The columns that fit in `width` with `spacing` blank columns between neighbours, left to
    /// right, offset from column 0 of the area.
    public static func place(_ columns: [ColumnSpec], width: Int, spacing: Int = 1) -> [ColumnPlacement] {
        var shown = Array(columns.indices)
        func needed() -> Int { shown.reduce(0) { $0 + columns[$1].minWidth } + spacing * max(0, shown.count - 1) }
        while !shown.isEmpty, needed() > width {
            // Least important (highest number); the rightmost of equals.
            let victim = shown.indices.max { a, b in
                let pa = columns[shown[a]].priority, pb = columns[shown[b]].priority
                return pa != pb ? pa < pb : a < b
            }!
            shown.remove(at: victim)
        }
        guard !shown.isEmpty else { return [] }
        var widths = shown.map { columns[$0].minWidth }
        let spare = width - needed()
        let weights = shown.reduce(0) { $0 + columns[$1].grow }
        if spare > 0, weights > 0 {
            var given = 0
            for (k, i) in shown.enumerated() {
                let share = spare * columns[i].grow / weights
                widths[k] += share
                given += share
            }
            var remainder = spare - given
            for (k, i) in shown.enumerated() where remainder > 0 && columns[i].grow > 0 {
                widths[k] += 1
                remainder -= 1
            }
        }
        var x = 0
        return shown.enumerated().map { k, i in
            defer { x += widths[k] + spacing }
            return ColumnPlacement(index: i, x: x, width: widths[k])
        }
    }
}

/// What changed between two frames, as runs of cells for the backend to draw: it draws only
/// these, and each run costs one cursor move, so changes close together are merged into one
/// run (redrawing a few unchanged cells is cheaper than another move).
public struct GridChanges: Sendable {
    /// True when the sizes differ: every row is one run, and the backend should clear first.
    public var isFullRedraw: Bool
    public var runs: [Run]

    public var isEmpty: Bool { runs.isEmpty }
    public var cellCount: Int { runs.reduce(0) { $0 + $1.cells.count } }
}

/// Changed cells in one row from `column` on. The cells are a slice of the new frame's
/// storage (no copy). A run never starts on a wide character's right half nor ends between its
/// halves.
public struct Run: Sendable, Equatable {
    public var row: Int
    public var column: Int
    public var cells: ArraySlice<Cell>
}

extension Grid {
    /// Unchanged cells between two changes that still merge them into one run.
    public static let mergeGapColumns = 4

    /// The runs that turn `previous` into this frame. Same frame: no runs. Different sizes:
    /// every row, whole (a full redraw).
    public func changes(since previous: Grid) -> GridChanges {
        guard previous.width == width, previous.height == height else { return fullRedraw() }
        var runs: [Run] = []
        cells.withUnsafeBufferPointer { new in
            previous.cells.withUnsafeBufferPointer { old in
                for y in 0..<height {
                    let rowStart = y * width
                    var x = 0
                    while x < width {
                        guard new[rowStart + x] != old[rowStart + x] else { x += 1; continue }
                        var start = x
                        var end = x + 1  // one past the last changed cell
                        var probe = end
                        while probe < width, probe - end <= Grid.mergeGapColumns {
                            if new[rowStart + probe] != old[rowStart + probe] { end = probe + 1 }
                            probe += 1
                        }
                        // Keep wide characters whole at both ends.
                        if start > 0, new[rowStart + start].glyph.isContinuation { start -= 1 }
                        if end < width, new[rowStart + end].glyph.isContinuation { end += 1 }
                        runs.append(Run(row: y, column: start, cells: cells[(rowStart + start)..<(rowStart + end)]))
                        x = end
                    }
                }
            }
        }
        return GridChanges(isFullRedraw: false, runs: runs)
    }

    /// Every row as one run.
    public func fullRedraw() -> GridChanges {
        GridChanges(isFullRedraw: true, runs: (0..<height).map { y in
            Run(row: y, column: 0, cells: cells[(y * width)..<((y + 1) * width)])
        })
    }
}

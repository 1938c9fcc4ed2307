/// A frame as plain text, for golden-file tests and logs: one line per row, the right half of
/// a wide character left out (its glyph already covers two columns), trailing spaces trimmed
/// on every row (so editors and diffs do not fight over them), every row kept (blank rows are
/// empty lines). And the style of chosen cells, for assertions beside the text.
extension Grid {
    public func text() -> String {
        var lines: [String] = []
        lines.reserveCapacity(height)
        for y in 0..<height { lines.append(rowText(y)) }
        return lines.joined(separator: "\n") + "\n"
    }

    public func rowText(_ y: Int) -> String {
        var line = ""
        for x in 0..<width {
            let glyph = cells[y * width + x].glyph
            if !glyph.isContinuation { line += glyph.string }
        }
        while line.last == " " { line.removeLast() }
        return line
    }

    /// `(x,y) 'T' fg=black bg=cyan bold`, one line per cell asked for.
    public func styleDump(_ positions: [(x: Int, y: Int)]) -> String {
        positions.map { p in "(\(p.x),\(p.y)) \(self[p.x, p.y])" }.joined(separator: "\n")
    }
}

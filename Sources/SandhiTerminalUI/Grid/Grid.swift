/// A frame: width x height cells, row-major, that widgets draw into and the backend shows.
/// Pure data (no terminal), so frames can be composed off the terminal thread, compared in
/// tests as text, and diffed against the previous frame.
///
/// Wide characters cover two cells: the left holds the glyph, the right a continuation marker.
/// Every write keeps that pairing whole: overwriting either half of a wide character turns the
/// other half into a space, and a wide character that would straddle the edge of the area
/// being written is drawn as a space instead, so a row is never garbled.
public struct Grid: Hashable, Sendable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]

    public init(width: Int, height: Int, fill: Cell = .blank) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: fill, count: self.width * self.height)
    }

    public init(size: Size, fill: Cell = .blank) {
        self.init(width: size.width, height: size.height, fill: fill)
    }

    public var size: Size { Size(width: width, height: height) }
    public var area: Rect { Rect(x: 0, y: 0, width: width, height: height) }

    public subscript(x: Int, y: Int) -> Cell {
        precondition(x >= 0 && x < width && y >= 0 && y < height, "cell (\(x),\(y)) outside \(width)x\(height)")
        return cells[y * width + x]
    }

    /// Resets every cell to `fill` (reusing the storage).
    public mutating func clear(_ fill: Cell = .blank) {
        cells.withUnsafeMutableBufferPointer { buffer in
            for i in buffer.indices { buffer[i] = fill }
        }
    }

    // MARK: - Single cells

    /// Puts one glyph at (x, y) with its width, keeping wide characters whole. Outside the
    /// grid, or a wide glyph in the last column, draws nothing / a space.
    public mutating func put(_ glyph: Glyph, style: Style, x: Int, y: Int) {
        guard y >= 0, y < height, x >= 0, x < width else { return }
        if glyph.isWide {
            guard x + 1 < width else { set(.space, style, x, y); return }
            unpair(x, y)
            unpair(x + 1, y)
            cells[y * width + x] = Cell(glyph: glyph, style: style)
            cells[y * width + x + 1] = Cell(glyph: .continuation, style: style)
        } else {
            set(glyph, style, x, y)
        }
    }

    /// A narrow glyph at (x, y), first breaking any wide pair it lands on.
    private mutating func set(_ glyph: Glyph, _ style: Style, _ x: Int, _ y: Int) {
        unpair(x, y)
        cells[y * width + x] = Cell(glyph: glyph, style: style)
    }

    /// If (x, y) is half of a wide character, turns the other half into a space (with the same
    /// style), so overwriting this half leaves no orphan.
    private mutating func unpair(_ x: Int, _ y: Int) {
        let index = y * width + x
        let glyph = cells[index].glyph
        if glyph.isContinuation, x > 0 {
            cells[index - 1].glyph = .space
            cells[index].glyph = .space
        } else if glyph.isWide, x + 1 < width {
            cells[index + 1].glyph = .space
            cells[index].glyph = .space
        }
    }

    // MARK: - Areas

    /// Fills the rectangle (clipped to the grid) with spaces in `style`.
    public mutating func fill(_ rect: Rect, style: Style) {
        fill(rect, with: Cell(glyph: .space, style: style))
    }

    public mutating func fill(_ rect: Rect, with cell: Cell) {
        let r = rect.intersection(area)
        guard !r.isEmpty else { return }
        for y in r.y..<r.bottom {
            unpair(r.x, y)
            unpair(r.right - 1, y)
            let start = y * width
            cells.withUnsafeMutableBufferPointer { buffer in
                for x in r.x..<r.right { buffer[start + x] = cell }
            }
        }
    }

    /// Replaces the style of every cell in the rectangle, keeping the glyphs (a selection bar).
    public mutating func setStyle(_ rect: Rect, _ style: Style) {
        let r = rect.intersection(area)
        guard !r.isEmpty else { return }
        for y in r.y..<r.bottom {
            let start = y * width
            cells.withUnsafeMutableBufferPointer { buffer in
                for x in r.x..<r.right { buffer[start + x].style = style }
            }
        }
    }

    // MARK: - Text

    /// Writes one line of text from column `x` of row `y`, clipped to `clip` (and the grid),
    /// at most `maxColumns` wide. Characters left of the clip are skipped (horizontal
    /// scrolling); a wide character cut by either edge becomes a space. Newlines and other
    /// controls are drawn as U+FFFD, a tab as one space. Returns the column after the last
    /// one written (or reached), so spans can follow each other.
    @discardableResult
    public mutating func write(_ text: some StringProtocol, x: Int, y: Int, style: Style,
                               clip: Rect? = nil, maxColumns: Int = .max) -> Int {
        let bounds = (clip ?? area).intersection(area)
        guard y >= bounds.y, y < bounds.bottom, !bounds.isEmpty else { return x }
        let left = bounds.x
        let (end, overflow) = x.addingReportingOverflow(max(0, maxColumns))
        let right = min(bounds.right, overflow ? Int.max : end)
        guard right > left, x < right else { return x }

        // Fast path: all ASCII, printable, starting inside the bounds.
        let utf8 = text.utf8
        if x >= left, let done = writeASCII(utf8, x: x, y: y, style: style, right: right) {
            return done
        }

        var column = x
        var builder = GlyphBuilder()
        var reachedEnd = false
        func emit(_ glyph: Glyph, _ w: Int) {
            if column >= right { reachedEnd = true; return }
            if column + w <= left {
                // Entirely left of the clip: skipped.
            } else if column < left {
                // A wide character straddling the left edge: its visible half is a space.
                for c in left..<min(column + w, right) { put(.space, style: style, x: c, y: y) }
            } else if column + w > right {
                for c in column..<right { put(.space, style: style, x: c, y: y) }
                reachedEnd = true
            } else {
                put(glyph, style: style, x: column, y: y)
            }
            column += w
        }
        for scalar in text.unicodeScalars {
            let w = DisplayWidth.of(scalar)
            if w != 0, builder.hasBase {
                emit(builder.glyph, builder.width)
                if reachedEnd { return min(column, right) }
            }
            builder.append(scalar)
        }
        if builder.hasBase { emit(builder.glyph, builder.width) }
        return min(column, right)
    }

    /// Writes printable ASCII straight into the cells; nil (having written nothing) if the
    /// text is not all printable ASCII.
    private mutating func writeASCII(_ utf8: some Collection<UInt8>, x: Int, y: Int, style: Style, right: Int) -> Int? {
        let count = utf8.count
        guard utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
        let end = min(x + count, right)
        guard end > x else { return x }
        unpair(x, y)
        unpair(end - 1, y)
        let start = y * width
        cells.withUnsafeMutableBufferPointer { buffer in
            var column = x
            for byte in utf8 {
                if column >= end { break }
                buffer[start + column] = Cell(glyph: Glyph(ascii: byte), style: style)
                column += 1
            }
        }
        return end
    }
}

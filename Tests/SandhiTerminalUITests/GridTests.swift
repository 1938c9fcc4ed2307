import SandhiTerminalUI
import Testing

/// Writing into the grid: clipping, wide characters never split, overwrites that leave no
/// orphaned half, controls made harmless.
@Suite struct GridTests {
    func row(_ grid: Grid, _ y: Int = 0) -> String { grid.rowText(y) }

    @Test func asciiWritesAndClips() {
        var grid = Grid(width: 10, height: 2)
        let end = grid.write("T-4711 preparing", x: 1, y: 0, style: .plain)
        #expect(row(grid) == " T-4711 pr")
        #expect(end == 10)
        grid.write("abcdef", x: 2, y: 1, style: .plain, clip: Rect(x: 0, y: 1, width: 5, height: 1))
        #expect(row(grid, 1) == "  abc")
        #expect(grid.write("x", x: 0, y: 5, style: .plain) == 0)  // outside: nothing, no trap
    }

    @Test func wideCharactersTakeTwoCellsWithAContinuation() {
        var grid = Grid(width: 6, height: 1)
        grid.write("a中b", x: 0, y: 0, style: .plain)
        #expect(grid[1, 0].symbol == "中" && grid[1, 0].width == 2)
        #expect(grid[2, 0].isContinuation)
        #expect(grid[3, 0].symbol == "b")
        #expect(row(grid) == "a中b")
    }

    @Test func aWideCharacterStraddlingTheRightEdgeBecomesASpace() {
        var grid = Grid(width: 8, height: 1, fill: Cell("."))
        let end = grid.write("ab中", x: 0, y: 0, style: .plain, clip: Rect(x: 0, y: 0, width: 3, height: 1))
        #expect(row(grid) == "ab .....")
        #expect(end == 3)
        // The grid's own edge too.
        var edge = Grid(width: 3, height: 1)
        edge.write("ab中", x: 0, y: 0, style: .plain)
        #expect(row(edge) == "ab" && !edge[2, 0].isContinuation)
    }

    @Test func aWideCharacterStraddlingTheLeftEdgeBecomesASpace() {
        var grid = Grid(width: 8, height: 1, fill: Cell("."))
        // Text starts one column left of the clip (scrolled): 中 covers columns 1-2, clip starts at 2.
        grid.write("a中bc", x: 0, y: 0, style: .plain, clip: Rect(x: 2, y: 0, width: 4, height: 1))
        #expect(row(grid) == ".. bc...")
    }

    @Test func overwritingHalfAWideCharacterBlanksTheOtherHalf() {
        var grid = Grid(width: 6, height: 1)
        grid.write("中文", x: 0, y: 0, style: .plain)
        grid.write("x", x: 1, y: 0, style: .plain)     // the right half of 中
        #expect(row(grid) == " x文")
        grid.write("y", x: 2, y: 0, style: .plain)     // the left half of 文
        #expect(row(grid) == " xy")
        #expect(!grid[3, 0].isContinuation)
        grid.put(Glyph("字")!, style: .plain, x: 5, y: 0)  // no room for the right half
        #expect(grid[5, 0].symbol == " ")
    }

    @Test func devanagariMarksRideOnTheirConsonant() {
        var grid = Grid(width: 10, height: 1)
        let end = grid.write("हिंदी ₹5", x: 0, y: 0, style: .plain)
        // ह+ि is two cells (ि is a spacing sign), ं rides on ि; द+ी likewise.
        #expect(end == 7)
        #expect(grid[0, 0].symbol == "ह")
        #expect(grid[1, 0].symbol == "िं")
        #expect(row(grid) == "हिंदी ₹5")
        #expect(DisplayWidth.of("हिंदी ₹5") == end)
    }

    @Test func controlsAreReplacedAndTabsBecomeSpaces() {
        var grid = Grid(width: 8, height: 1)
        grid.write("a\tb\nc\u{1B}", x: 0, y: 0, style: .plain)
        #expect(row(grid) == "a b\u{FFFD}c\u{FFFD}")
    }

    @Test func glyphsKeepAtMostFourMarks() {
        var grid = Grid(width: 3, height: 1)
        grid.write("e\u{301}\u{302}\u{303}\u{304}\u{305}\u{306}x", x: 0, y: 0, style: .plain)
        #expect(grid[0, 0].glyph.scalars.count == 5)
        #expect(grid[1, 0].symbol == "x")
    }

    @Test func fillAndStyles() {
        var grid = Grid(width: 4, height: 2)
        let red = Style(fg: .red, .bold)
        grid.fill(Rect(x: 1, y: 0, width: 10, height: 1), style: red)
        #expect(grid[0, 0].style == .plain && grid[3, 0].style == red)
        grid.setStyle(Rect(x: 0, y: 1, width: 2, height: 1), red)
        #expect(grid[1, 1].style.description == "fg=red bg=default bold")
    }

    @Test func textDumpTrimsTrailingSpacesAndKeepsEveryRow() {
        var grid = Grid(width: 5, height: 3)
        grid.write("ab ", x: 0, y: 1, style: .plain)
        #expect(grid.text() == "\nab\n\n")
    }
}

import SandhiTerminalUI
import Testing

/// Splitting areas by constraints, and table columns that hide by priority when narrow.
@Suite struct LayoutTests {
    func heights(_ constraints: [Constraint], _ total: Int, spacing: Int = 0) -> [Int] {
        Layout.vertical(constraints, spacing: spacing).split(Rect(x: 0, y: 0, width: 80, height: total)).map(\.height)
    }

    @Test func screenSplit() {
        // Header, tabs, body, waits, keys on a 24-row terminal.
        let rects = Layout.vertical([.length(1), .length(1), .fill, .length(1), .length(1)])
            .split(Rect(x: 0, y: 0, width: 80, height: 24))
        #expect(rects.map(\.height) == [1, 1, 20, 1, 1])
        #expect(rects.map(\.y) == [0, 1, 2, 22, 23])
        #expect(rects.allSatisfy { $0.width == 80 })
    }

    @Test func percentagesMinsAndFillWeights() {
        #expect(heights([.percentage(25), .fill], 40) == [10, 30])
        #expect(heights([.fill(1), .fill(3)], 40) == [10, 30])
        #expect(heights([.fill(1), .fill(1), .fill(1)], 10) == [4, 3, 3])   // the remainder to the first
        #expect(heights([.min(5), .length(3)], 20) == [17, 3])              // no fill: mins grow
        #expect(heights([.length(3), .length(3)], 20) == [3, 3])            // neither: the rest unused
    }

    @Test func shortSpaceShrinksTheLastSegmentsFirst() {
        #expect(heights([.length(1), .length(1), .min(10), .length(1)], 8) == [1, 1, 6, 0])
        #expect(heights([.length(5), .length(5)], 3) == [3, 0])
    }

    @Test func spacingSitsBetweenSegments() {
        let rects = Layout.horizontal([.fill, .length(10)], spacing: 2).split(Rect(x: 0, y: 0, width: 40, height: 5))
        #expect(rects.map(\.width) == [28, 10])
        #expect(rects.map(\.x) == [0, 30])
    }

    static let columns = [
        ColumnSpec("TX", minWidth: 7, priority: 0), ColumnSpec("STATE", minWidth: 10, priority: 0),
        ColumnSpec("AGE", minWidth: 6, priority: 1), ColumnSpec("HDFC", minWidth: 5, priority: 3),
        ColumnSpec("ICICI", minWidth: 5, priority: 3), ColumnSpec("AMOUNT", minWidth: 12, grow: 1, priority: 0),
        ColumnSpec("NOTE", minWidth: 20, grow: 1, priority: 4),
    ]

    @Test func columnsHideLeastImportantFirstAndRightmostAmongEquals() {
        func shown(_ width: Int) -> [String] { ColumnLayout.place(Self.columns, width: width).map { Self.columns[$0.index].title } }
        #expect(shown(80) == ["TX", "STATE", "AGE", "HDFC", "ICICI", "AMOUNT", "NOTE"])
        #expect(shown(60) == ["TX", "STATE", "AGE", "HDFC", "ICICI", "AMOUNT"])
        #expect(shown(49) == ["TX", "STATE", "AGE", "HDFC", "AMOUNT"])
        #expect(shown(40) == ["TX", "STATE", "AGE", "AMOUNT"])
        #expect(shown(31) == ["TX", "STATE", "AMOUNT"])
        #expect(shown(3).isEmpty)
    }

    @Test func spareWidthGoesToGrowingColumns() {
        let placed = ColumnLayout.place(Self.columns, width: 100)
        #expect(placed.reduce(0) { $0 + $1.width } + placed.count - 1 == 100)
        let amount = placed.first { Self.columns[$0.index].title == "AMOUNT" }!
        #expect(amount.width == 12 + 15)  // 29 spare: 14 each to AMOUNT and NOTE, the odd one to the first
        #expect(placed.map(\.x) == [0, 8, 19, 26, 32, 38, 66])
    }
}

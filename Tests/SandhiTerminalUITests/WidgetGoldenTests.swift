@testable import SandhiTerminalUI
import SandhiTestSupport
import Testing

/// Widgets rendered at fixed sizes and compared with golden text files in Golden/ (rewrite
/// them with SANDHI_UPDATE_GOLDEN=1 and review the diff), with style assertions on chosen cells.
@Suite struct WidgetGoldenTests {
    static let theme = Theme.builtIn

    /// The sample transactions screen the compose benchmark times (60 transfers, the third
    /// selected).
    static func transactionsScreen(_ size: Size, glyphs: GlyphSet = .unicode, selected: Int = 2) -> Grid {
        var grid = Grid(size: size)
        var state = TableState(selected: selected)
        composeTransactionsScreen(into: &grid, sample: SampleTransactions(count: 60), state: &state, theme: theme, glyphs: glyphs)
        return grid
    }

    @Test func transactionsScreenAt80x24HidesLowPriorityColumns() throws {
        let grid = Self.transactionsScreen(Size(width: 80, height: 24))
        try GoldenFile.check(grid.text(), name: "transactions-80x24")
        #expect(!grid.rowText(3).contains("WAITS FOR"))
        #expect(grid.rowText(3).contains("AMOUNT") && grid.rowText(3).contains("REG"))
        // Narrower still: the vote columns go, rightmost first, and the ids and amounts stay whole.
        let narrow = Self.transactionsScreen(Size(width: 60, height: 10))
        #expect(narrow.rowText(3) == "│TX      STATE         AGE HDFC  ICICI AXIS          AMOUNT│")
        #expect(narrow.rowText(4).hasPrefix("│T-4711  preparing"))
    }

    @Test func transactionsScreenAt160x48ShowsEverything() throws {
        let grid = Self.transactionsScreen(Size(width: 160, height: 48))
        try GoldenFile.check(grid.text(), name: "transactions-160x48")
        #expect(grid.rowText(3).contains("HDFC") && grid.rowText(3).contains("WAITS FOR"))
    }

    @Test func transactionsScreenInAscii() throws {
        let grid = Self.transactionsScreen(Size(width: 100, height: 16), glyphs: .ascii)
        try GoldenFile.check(grid.text(), name: "transactions-ascii-100x16")
        #expect(grid.text().unicodeScalars.allSatisfy { $0.isASCII })
        #expect(grid.rowText(2).hasPrefix("+ Transactions -"))
    }

    @Test func stylesOfChosenCellsInTheGoldenFrame() {
        let t = Self.theme
        let grid = Self.transactionsScreen(Size(width: 160, height: 48))
        #expect(indianGrouping(18_00_000) == "18,00,000" && indianGrouping(1_23_45_678) == "1,23,45,678" && indianGrouping(999) == "999")
        // Header, the active tab, a bank's vote glyph, the selected row, the fault, the key bar.
        #expect(grid[1, 0].style == t[.header] && grid[1, 0].symbol == "S")
        #expect(grid[0, 1].style == t[.tabActive] && grid[0, 1].symbol == "[")
        #expect(grid[8, 1].style == t[.tab])
        let selectedRow = 4 + 2  // border, header row, then rows 0 and 1
        #expect(grid[1, selectedRow].symbol == "T" && grid[1, selectedRow].style == t[.selection])
        let header = grid.rowText(0)
        let fault = header.distance(from: header.startIndex, to: header.range(of: "FAULT")!.lowerBound)
        #expect(grid[fault, 0].style == t[.headerAlert])
        #expect(grid.styleDump([(x: 1, y: 47)]) == "(1,47) '?' \(t[.key])")
        // A vote: row 0 of the data (T-4711) votes yes at HDFC: ✓ in vote_yes.
        let columnsRow = grid.rowText(3)
        let hdfc = columnsRow.distance(from: columnsRow.startIndex, to: columnsRow.range(of: "HDFC")!.lowerBound)
        #expect(grid[hdfc, 4].symbol == "✓" && grid[hdfc, 4].style == t[.voteYes])
    }

    @Test func blockBordersUnicodeAndAscii() throws {
        var grid = Grid(width: 24, height: 8)
        Block(title: "Locks", glyphs: .unicode).render(into: &grid, area: Rect(x: 0, y: 0, width: 12, height: 4))
        Block(title: "Locks", glyphs: .ascii).render(into: &grid, area: Rect(x: 12, y: 0, width: 12, height: 4))
        Block(title: "A title far too long", glyphs: .unicode).render(into: &grid, area: Rect(x: 0, y: 4, width: 12, height: 4))
        Block(borders: [.top, .bottom], glyphs: .ascii).render(into: &grid, area: Rect(x: 12, y: 4, width: 12, height: 4))
        try GoldenFile.check(grid.text(), name: "blocks")
        #expect(Block().inner(Rect(x: 0, y: 0, width: 12, height: 4)) == Rect(x: 1, y: 1, width: 10, height: 2))
    }

    @Test func tabsShrinkToTheirKeysWhenNarrow() throws {
        let tabs = ["Tx", "Locks", "Waits", "Participants", "Reconcile", "Log"].enumerated().map { Tabs.Tab(key: "\($0 + 1)", title: $1) }
        var grid = Grid(width: 60, height: 3)
        Tabs(tabs, selected: 1).render(into: &grid, area: Rect(x: 0, y: 0, width: 60, height: 1))
        Tabs(tabs, selected: 3).render(into: &grid, area: Rect(x: 0, y: 1, width: 40, height: 1))
        Tabs(tabs, selected: 0).render(into: &grid, area: Rect(x: 0, y: 2, width: 14, height: 1))
        try GoldenFile.check(grid.text(), name: "tabs")
        #expect(grid[7, 0].style.attributes.contains(.reverse))  // [2 Locks] is active
    }

    @Test func overlayIsCentredAndBlanksWhatIsUnder() throws {
        var grid = Self.transactionsScreen(Size(width: 80, height: 24))
        let help = Overlay(title: "Keys", lines: [
            "?        this help", "1-6 Tab  switch screen", "j k      move", "Enter    detail", "/        filter",
            "a        abort selected (asks first)", "q        quit",
        ], style: Self.theme[.overlay], borderStyle: Self.theme[.overlayBorder])
        help.render(into: &grid, area: grid.area)
        try GoldenFile.check(grid.text(), name: "overlay-help-80x24")
        let frame = help.frame(in: grid.area)
        #expect(frame == Rect(x: 21, y: 7, width: 38, height: 9))  // the widest line, 36, inside borders
        #expect(grid[frame.x + 1, frame.y + 1].style == Self.theme[.overlay])
        // Too big for the screen: clipped to it, never outside.
        var small = Grid(width: 10, height: 4)
        Overlay(lines: Array(repeating: "a long line of help text", count: 10)).render(into: &small, area: small.area)
        #expect(small.rowText(0) == "┌────────┐" && small.rowText(3) == "└────────┘")
    }

    @Test func statusBarDropsWholeHintsThatDoNotFit() {
        var grid = Grid(width: 30, height: 1)
        StatusBar([.init("?", "help"), .init("/", "filter"), .init("q", "quit")], note: Span("PAUSED")).render(into: &grid, area: grid.area)
        #expect(grid.rowText(0) == " ? help  / filter       PAUSED")
        var narrow = Grid(width: 20, height: 1)
        StatusBar([.init("?", "help"), .init("/", "filter"), .init("q", "quit")], note: Span("PAUSED")).render(into: &narrow, area: narrow.area)
        #expect(narrow.rowText(0) == " ? help       PAUSED")
    }

    @Test func textInputScrollsToKeepTheCursorVisible() {
        var state = TextInputState()
        for c in "reason: SBI credited by hand" { state.handle(.character(c)) }
        var grid = Grid(width: 16, height: 1)
        TextInput(prompt: Span("> "), state: state).render(into: &grid, area: grid.area)
        #expect(grid.rowText(0) == "> dited by hand")
        #expect(grid[15, 0].style.attributes.contains(.reverse))  // the cursor after the text
        state.handle(.home)
        TextInput(prompt: Span("> "), state: state).render(into: &grid, area: grid.area)
        #expect(grid.rowText(0) == "> reason: SBI cr")
        #expect(grid[2, 0].style.attributes.contains(.reverse))
    }

    @Test func listMarksTheSelection() {
        var grid = Grid(width: 20, height: 3)
        var state = TableState(selected: 4)
        List(["crash hdfc", "crash icici", "partition axis", "delay sbi 200ms", "fail-fsync"]).render(into: &grid, area: grid.area, state: &state)
        #expect(grid.text() == "  partition axis\n  delay sbi 200ms\n▶ fail-fsync\n")
        #expect(state.offset == 2)
    }
}

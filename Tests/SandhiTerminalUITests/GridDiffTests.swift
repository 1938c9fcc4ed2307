import SandhiTerminalUI
import Testing

/// The diff the backend draws: nothing for an unchanged frame, one run for one cell, nearby
/// changes merged, wide characters kept whole, everything after a resize.
@Suite struct GridDiffTests {
    @Test func noChangeNoRuns() {
        let grid = WidgetGoldenTests.transactionsScreen(Size(width: 80, height: 24))
        let changes = grid.changes(since: grid)
        #expect(changes.isEmpty && !changes.isFullRedraw)
    }

    @Test func oneCellOneRun() {
        let before = Grid(width: 20, height: 5)
        var after = before
        after.write("x", x: 7, y: 3, style: .plain)
        let changes = after.changes(since: before)
        #expect(changes.runs.count == 1)
        #expect(changes.runs[0].row == 3 && changes.runs[0].column == 7 && changes.runs[0].cells.map(\.symbol) == ["x"])
    }

    @Test func nearbyChangesMergeAndFarOnesDoNot() {
        let before = Grid(width: 40, height: 1)
        var after = before
        after.write("a", x: 2, y: 0, style: .plain)
        after.write("b", x: 6, y: 0, style: .plain)    // 3 unchanged between: merged
        after.write("c", x: 20, y: 0, style: .plain)   // far: its own run
        let runs = after.changes(since: before).runs
        #expect(runs.map(\.column) == [2, 20])
        #expect(runs.map(\.cells.count) == [5, 1])
    }

    @Test func aStyleChangeIsAChange() {
        var before = Grid(width: 10, height: 1)
        before.write("abc", x: 0, y: 0, style: .plain)
        var after = before
        after.setStyle(Rect(x: 1, y: 0, width: 1, height: 1), Style(.reverse))
        #expect(after.changes(since: before).runs.map(\.column) == [1])
    }

    @Test func runsKeepWideCharactersWhole() {
        var before = Grid(width: 10, height: 1)
        before.write("中文", x: 0, y: 0, style: .plain)
        var after = before
        after.setStyle(Rect(x: 1, y: 0, width: 1, height: 1), Style(.bold))  // only the right half of 中
        let run = after.changes(since: before).runs[0]
        #expect(run.column == 0 && run.cells.count == 2 && run.cells.first!.symbol == "中")
        var end = before
        end.setStyle(Rect(x: 2, y: 0, width: 1, height: 1), Style(.bold))  // only the left half of 文
        #expect(end.changes(since: before).runs[0].cells.count == 2)
    }

    @Test func aResizeRedrawsEverything() {
        let before = Grid(width: 80, height: 24)
        let after = Grid(width: 100, height: 30)
        let changes = after.changes(since: before)
        #expect(changes.isFullRedraw)
        #expect(changes.runs.count == 30 && changes.runs.allSatisfy { $0.column == 0 && $0.cells.count == 100 })
    }

    @Test func theComposeBenchmarkRuns() {
        let result = benchmarkCompose(rows: 1_000, frames: 3)
        #expect(result.frames == 3 && result.meanMicroseconds > 0 && result.changedCellsPerFrame > 0)
    }
}

import SandhiConsole
import SandhiEngine
import SandhiTerminalUI
import SandhiTestSupport
import Testing

/// Every screen drawn from the fixture at 80x24 and 160x48, against golden files (rewrite with
/// SANDHI_UPDATE_GOLDEN=1 and review), with style checks on chosen cells.
@Suite struct ConsoleGoldenTests {
    typealias F = ConsoleFixture
    static let small = Size(width: 80, height: 24), large = Size(width: 160, height: 48)

    func frame(_ model: ConsoleModel, _ size: Size) -> Grid { ConsoleView.render(model, size: size, context: F.context) }

    func screen(_ key: Character, size: Size) -> Grid {
        var model = F.busy().model()
        _ = model.update(.key(.character(key)))
        return frame(model, size)
    }

    @Test(arguments: ["1", "2", "3", "4", "5", "6"])
    func everyScreenAtBothSizes(screen key: String) throws {
        for size in [Self.small, Self.large] {
            let grid = screen(Character(key), size: size)
            try GoldenFile.check(grid.text(), name: "screen-\(key)-\(size.width)x\(size.height)")
            #expect(grid.rowText(0).hasPrefix(" Sandhi "), "the header is on every screen")
        }
    }

    @Test func theHeaderCountsAndAlertsOnAHeuristicCase() {
        let grid = frame(F.busy().model(), Self.large)
        let header = grid.rowText(0)
        #expect(header.contains("in-flight 4"), "T-1.2 to T-1.5; T-1.6 went to the reconciliation queue")
        #expect(header.contains("heuristic 1"))
        // Styled cells: the heuristic count uses the heuristic role.
        let column = header.distance(from: header.startIndex, to: header.range(of: "heuristic 1")!.lowerBound)
        #expect(grid[column, 0].style.foreground == Theme.builtIn[.heuristic].foreground)
    }

    @Test func theTransactionsScreenDegradesAt80Columns() {
        let narrow = screen("1", size: Self.small), wide = screen("1", size: Self.large)
        #expect(wide.rowText(2).contains("AXIS") && wide.rowText(2).contains("AMOUNT"))
        #expect(narrow.rowText(2).contains("TX") && narrow.rowText(2).contains("AMOUNT"), "ids and amounts stay")
    }

    @Test func theDetailShowsTheMessageDiagram() throws {
        var model = F.busy().model()
        // Select T-1.1 (finished, at the bottom) and open it.
        _ = model.update(.key(.end))
        _ = model.update(.key(.enter))
        #expect(model.detail == F.tx(1))
        let grid = frame(model, Self.large)
        try GoldenFile.check(grid.text(), name: "detail-160x48")
        #expect(grid.text().contains("PREPARE"))
        #expect(grid.text().contains("COMMIT durable at segment 1 @64"))
    }

    @Test func popupsRender() throws {
        var model = F.busy().model()
        _ = model.update(.key(.character("?")))
        try GoldenFile.check(frame(model, Self.small).text(), name: "help-80x24")
        model.popup = nil
        _ = model.update(.key(.character("5")))
        _ = model.update(.key(.enter))
        _ = model.update(.key(.enter))
        try GoldenFile.check(frame(model, Self.small).text(), name: "reconcile-preview-80x24")
    }

    @Test func asciiGlyphsWhenTheLocaleIsNotUTF8() {
        let grid = ConsoleView.render(F.busy().model(), size: Self.small, context: RenderContext(theme: Theme.builtIn, glyphs: .ascii))
        #expect(grid.text().unicodeScalars.allSatisfy { $0.isASCII })
    }

    @Test func databaseParticipantsShowWhatTheirServerHoldsPreparedAndWarnWhenItIsOld() throws {
        let fixture = F.busy()
        var view = fixture.view
        view.participants[2].preparedInDatabase = EngineView.PreparedInDatabase(count: 2, oldestAgeSeconds: 75)
        view.participants[3].preparedInDatabase = EngineView.PreparedInDatabase(count: 0, oldestAgeSeconds: nil)
        var model = fixture.model()
        _ = model.update(.snapshot(view))
        _ = model.update(.key(.character("4")))
        let grid = frame(model, Self.large)
        try GoldenFile.check(grid.text(), name: "participants-databases-160x48")
        let text = grid.text()
        #expect(text.contains("IN DATABASE") && text.contains("2, oldest 75s"))
        #expect(text.contains("axis: a transaction has stayed prepared in its database for 75s"))
        let row = try #require((0..<grid.size.height).first { grid.rowText($0).contains("2, oldest 75s") })
        let column = try #require(grid.rowText(row).range(of: "2, oldest").map { grid.rowText(row).distance(from: grid.rowText(row).startIndex, to: $0.lowerBound) })
        #expect(grid[column, row].style.foreground == Theme.builtIn[.warning].foreground, "an old prepared transaction is a warning")
        // Embedded banks only: no such column (the other golden frames).
        #expect(!frame(F.busy().model(), Self.large).text().contains("IN DATABASE"))
    }

    @Test func theLocksScreenShowsTheDatabasesOwnLocksBelowSandhis() throws {
        let fixture = F.busy()
        var view = fixture.view
        view.participants[2].preparedInDatabase = EngineView.PreparedInDatabase(count: 1, oldestAgeSeconds: 3)
        view.participants[2].databaseLocks = [
            EngineView.DatabaseLock(gid: "sandhi:mumbai-1:1.4:axis", kind: "relation", relation: "accounts", mode: "RowExclusiveLock", granted: true),
            EngineView.DatabaseLock(gid: "sandhi:mumbai-1:1.4:axis", kind: "transactionid", relation: "", mode: "ExclusiveLock", granted: true),
        ]
        var model = fixture.model()
        _ = model.update(.snapshot(view))
        _ = model.update(.key(.character("2")))
        let grid = frame(model, Self.large)
        try GoldenFile.check(grid.text(), name: "locks-databases-160x48")
        #expect(grid.text().contains("pg_locks") && grid.text().contains("RowExclusiveLock") && grid.text().contains("sandhi:mumbai-1:1.4:axis"))
        #expect(!frame(F.busy().model(), Self.large).text().contains("pg_locks"), "no section without a database participant")
    }
}

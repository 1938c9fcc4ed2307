/// How long composing one console frame takes: a 160x48 transactions screen over 10,000
/// in-flight transfers (header, tab bar, a table whose visible rows are formatted from the
/// model each frame, a detail panel, the waits line and the key bar), then the diff against
/// the previous frame, with the selection moving one row each frame so the diff has work.
/// `sandhi bench --console` prints it; the budget is 5 ms a frame.
public struct ComposeBenchmark: Sendable, CustomStringConvertible {
    public var frames: Int
    public var rows: Int
    public var size: Size
    public var meanMicroseconds: Double
    public var p50Microseconds: Double
    public var p99Microseconds: Double
    public var maxMicroseconds: Double
    /// Cells the diff sent to the backend, on average per frame.
    public var changedCellsPerFrame: Double

    public var description: String {
        func f(_ v: Double) -> String { String(Int(v.rounded())) }
        return "compose \(size) frame, \(rows) rows, \(frames) frames: mean \(f(meanMicroseconds)) µs, "
            + "p50 \(f(p50Microseconds)) µs, p99 \(f(p99Microseconds)) µs, max \(f(maxMicroseconds)) µs, "
            + "\(f(changedCellsPerFrame)) changed cells/frame"
    }
}

/// Runs the benchmark (release builds only give meaningful figures).
public func benchmarkCompose(rows: Int = 10_000, size: Size = Size(width: 160, height: 48), frames: Int = 500,
                             theme: Theme = .builtIn, glyphs: GlyphSet = .unicode) -> ComposeBenchmark {
    let model = BenchmarkModel(count: rows)
    var previous = Grid(size: size)
    var grid = Grid(size: size)
    var state = TableState(selected: 0)
    var samples: [Double] = []
    samples.reserveCapacity(frames)
    var changed = 0
    let clock = ContinuousClock()
    for frame in 0..<frames {
        let started = clock.now
        grid.clear()
        composeTransactionsScreen(into: &grid, model: model, state: &state, theme: theme, glyphs: glyphs, frame: frame)
        let changes = grid.changes(since: previous)
        let elapsed = clock.now - started
        changed += changes.cellCount
        swap(&grid, &previous)
        state.move(by: 1, count: rows)
        let (seconds, attoseconds) = elapsed.components
        samples.append(Double(seconds) * 1e6 + Double(attoseconds) / 1e12)
    }
    samples.sort()
    func percentile(_ p: Double) -> Double { samples[min(samples.count - 1, Int(Double(samples.count) * p))] }
    return ComposeBenchmark(frames: frames, rows: rows, size: size,
                            meanMicroseconds: samples.reduce(0, +) / Double(max(1, samples.count)),
                            p50Microseconds: percentile(0.5), p99Microseconds: percentile(0.99),
                            maxMicroseconds: samples.last ?? 0,
                            changedCellsPerFrame: Double(changed) / Double(max(1, frames)))
}

/// Stand-in for the console's model: what a transaction row shows.
struct BenchmarkModel {
    struct Transaction {
        var id: Int
        var state: Int
        var ageMs: Int
        var votes: [UInt8]
        var amountPaise: Int64
    }

    static let states = ["active", "preparing", "prepared", "committing", "committed", "aborting", "aborted", "waiting"]
    static let banks = ["HDFC", "ICICI", "AXIS", "SBI"]
    var transactions: [Transaction]

    init(count: Int) {
        var seed: UInt64 = 0x5A17
        func next() -> Int {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            return Int(truncatingIfNeeded: seed >> 33)
        }
        transactions = (0..<count).map { i in
            Transaction(id: 4_700 + i, state: next() % BenchmarkModel.states.count, ageMs: next() % 5_000,
                        votes: (0..<4).map { _ in UInt8(next() % 5) }, amountPaise: Int64(next() % 200_000_000))
        }
    }
}

func composeTransactionsScreen(into grid: inout Grid, model: BenchmarkModel, state: inout TableState,
                               theme: Theme, glyphs: GlyphSet, frame: Int) {
    let rows = Layout.vertical([.length(1), .length(1), .fill, .length(1), .length(1)]).split(grid.area)
    grid.fill(rows[0], style: theme[.header])
    grid.write(Line([
        Span(" Sandhi  2pl  ", theme[.header]), Span("\(glyphs.arrowUp) \(4_800 + frame % 50) tx/s  p99 3.1ms  aborts 0.4%  ", theme[.header]),
        Span("in-doubt 2", theme[.header]), Span("  heuristic 1  ", theme[.header]), Span("FAULT: icici down", theme[.headerAlert]),
    ]), in: rows[0], ellipsis: glyphs.ellipsis)
    Tabs(["Tx", "Locks", "Waits", "Participants", "Reconcile", "Log"].enumerated().map { Tabs.Tab(key: "\($0 + 1)", title: $1) },
         selected: 0, style: theme[.tab], activeStyle: theme[.tabActive]).render(into: &grid, area: rows[1])
    let body = Layout.horizontal([.fill, .length(44)]).split(rows[2])
    var columns = [
        ColumnSpec("TX", minWidth: 7, priority: 0), ColumnSpec("STATE", minWidth: 10, priority: 0),
        ColumnSpec("AGE", minWidth: 6, priority: 1, alignment: .right),
    ]
    columns += BenchmarkModel.banks.map { ColumnSpec($0, minWidth: 5, priority: 2) }
    columns.append(ColumnSpec("AMOUNT", minWidth: 13, grow: 1, priority: 0, alignment: .right))
    let voteGlyphs = [glyphs.voteYes, glyphs.voteNo, glyphs.votePending, glyphs.voteTimedOut, glyphs.voteReadOnly]
    let voteRoles: [ThemeRole] = [.voteYes, .voteNo, .votePending, .warning, .dim]
    let table = Table(columns: columns, rowCount: model.transactions.count, headerStyle: theme[.tableHeader],
                      style: theme[.text], selectionStyle: theme[.selection], glyphs: glyphs) { index in
        let t = model.transactions[index]
        let stateName = BenchmarkModel.states[t.state]
        var cells: [Line] = [Line("T-\(t.id)"), Line(stateName, theme[stateName == "aborted" ? .aborted : .active]), Line("\(t.ageMs)ms")]
        for vote in t.votes { cells.append(Line(voteGlyphs[Int(vote)], theme[voteRoles[Int(vote)]])) }
        cells.append(Line(glyphs.rupee + indianGrouping(t.amountPaise / 100)))
        return TableRow(cells)
    }
    let tableBlock = Block(title: Line("Transactions", theme[.title]), borderStyle: theme[.border], glyphs: glyphs)
    table.render(into: &grid, area: tableBlock.inner(body[0]), state: &state)
    tableBlock.render(into: &grid, area: body[0])
    let selected = model.transactions[state.selected ?? 0]
    var detail: [Line] = [Line("T-\(selected.id)  \(BenchmarkModel.states[selected.state])  \(selected.ageMs)ms", theme[.title])]
    for (i, bank) in BenchmarkModel.banks.enumerated() {
        detail.append(Line([Span(bank.padding(5)), Span("prepare\(glyphs.arrowRight)"), Span(voteGlyphs[Int(selected.votes[i])], theme[voteRoles[Int(selected.votes[i])]]),
                            Span("  1.2ms", theme[.dim])]))
    }
    detail.append(Line("decision: \(glyphs.emDash)", theme[.dim]))
    let detailBlock = Block(title: Line("Detail", theme[.title]), borderStyle: theme[.border], glyphs: glyphs)
    Paragraph(detail, style: theme[.text], glyphs: glyphs).render(into: &grid, area: detailBlock.inner(body[1]))
    detailBlock.render(into: &grid, area: body[1])
    grid.write(Line([Span(" Waits: T-4712 \(glyphs.arrowRight) T-4698 \(glyphs.arrowRight) T-4712  (cycle)", theme[.cycle]),
                     Span("  victim: T-4712 (least work)", theme[.victim])]), in: rows[3], ellipsis: glyphs.ellipsis)
    StatusBar([.init("?", "help"), .init("/", "filter"), .init("f", "faults"), .init("a", "abort"), .init("r", "reconcile"),
               .init("t", "theme"), .init("space", "pause"), .init("q", "quit")],
              style: theme[.statusBar], keyStyle: theme[.key]).render(into: &grid, area: rows[4])
}

/// 1234567 -> "12,34,567" (lakh and crore grouping).
private func indianGrouping(_ value: Int64) -> String {
    let digits = Array(String(value))
    guard digits.count > 3 else { return String(digits) }
    var head = Array(digits.dropLast(3))
    var groups: [String] = [String(digits.suffix(3))]
    while head.count > 2 { groups.insert(String(head.suffix(2)), at: 0); head.removeLast(2) }
    if !head.isEmpty { groups.insert(String(head), at: 0) }
    return groups.joined(separator: ",")
}

private extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}

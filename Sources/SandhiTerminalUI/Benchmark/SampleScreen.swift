/// A transactions screen in the shape the console will have, over made-up transfers: header,
/// tab bar, a table with a vote column per participant (hidden first when narrow), a detail
/// panel when the terminal is wide, the waits line and the key bar. The compose benchmark
/// times it and the golden tests check what it draws, so the figure the benchmark reports is
/// for a frame known to be right.
struct SampleTransactions {
    struct Transfer {
        var id: Int
        var state: Int
        var ageMs: Int
        /// Per participant: 0 yes, 1 no, 2 pending, 3 timed out, 4 read-only.
        var votes: [Int]
        var amountPaise: Int64
        var waitsFor: Int?
    }

    static let states = ["preparing", "waiting", "prepared", "committing", "committed", "aborted"]
    static let participants = ["HDFC", "ICICI", "AXIS", "SBI", "TDS", "REG"]
    static let amountsRupees: [Int64] = [18_00_000, 2_500, 10_00_000, 75, 3_00_000]

    let transfers: [Transfer]

    /// Transfer i follows a fixed pattern (no randomness: golden files depend on it).
    init(count: Int) {
        transfers = (0..<count).map { i in
            Transfer(id: 4_711 + i, state: i % Self.states.count, ageMs: 12 + 7 * i,
                     votes: Self.participants.indices.map { (i + $0) % 5 },
                     amountPaise: Self.amountsRupees[i % Self.amountsRupees.count] * 100,
                     waitsFor: i % 6 == 1 ? 4_698 + i : nil)
        }
    }
}

func composeTransactionsScreen(into grid: inout Grid, sample: SampleTransactions, state: inout TableState,
                               theme t: Theme, glyphs: GlyphSet) {
    let rows = Layout.vertical([.length(1), .length(1), .fill, .length(1), .length(1)]).split(grid.area)
    grid.fill(rows[0], style: t[.header])
    grid.write(Line([Span(" Sandhi  2pl  \(glyphs.arrowUp) 4,812 tx/s  p99 3.1ms  aborts 0.4%  in-doubt 2  heuristic 1  "),
                     Span("FAULT: icici down", t[.headerAlert])]), in: rows[0], base: t[.header], ellipsis: glyphs.ellipsis)
    Tabs(["Tx", "Locks", "Waits", "Participants", "Reconcile", "Log"].enumerated().map { Tabs.Tab(key: "\($0 + 1)", title: $1) },
         selected: 0, style: t[.tab], activeStyle: t[.tabActive]).render(into: &grid, area: rows[1])
    let wide = grid.width >= 120
    let body = Layout.horizontal(wide ? [.fill, .length(46)] : [.fill]).split(rows[2])
    let columns = [ColumnSpec("TX", minWidth: 7), ColumnSpec("STATE", minWidth: 10), ColumnSpec("AGE", minWidth: 6, priority: 2, alignment: .right)]
        + SampleTransactions.participants.map { ColumnSpec($0, minWidth: 5, priority: 3) }
        + [ColumnSpec("AMOUNT", minWidth: 12, grow: 1, alignment: .right), ColumnSpec("WAITS FOR", minWidth: 14, priority: 4)]
    let voteGlyphs = [glyphs.voteYes, glyphs.voteNo, glyphs.votePending, glyphs.voteTimedOut, glyphs.voteReadOnly]
    let voteRoles: [ThemeRole] = [.voteYes, .voteNo, .votePending, .warning, .dim]
    let stateRoles: [ThemeRole] = [.active, .waiting, .prepared, .active, .committed, .aborted]
    let transfers = sample.transfers
    let table = Table(columns: columns, rowCount: transfers.count, headerStyle: t[.tableHeader], style: t[.text],
                      selectionStyle: t[.selection], glyphs: glyphs) { i in
        let x = transfers[i]
        return TableRow([Line("T-\(x.id)"), Line(SampleTransactions.states[x.state], t[stateRoles[x.state]]), Line("\(x.ageMs)ms")]
            + x.votes.map { Line(voteGlyphs[$0], t[voteRoles[$0]]) }
            + [Line(glyphs.rupee + indianGrouping(x.amountPaise / 100)), Line(x.waitsFor.map { "T-\($0) (lock)" } ?? "", t[.waiting])])
    }
    let block = Block(title: Line("Transactions", t[.title]), borderStyle: t[.border], glyphs: glyphs)
    table.render(into: &grid, area: block.inner(body[0]), state: &state)
    block.render(into: &grid, area: body[0])
    if wide, let selected = state.selected {
        let x = transfers[selected]
        var lines = [Line("T-\(x.id)  \(SampleTransactions.states[x.state])  \(x.ageMs)ms", t[.title])]
        for (p, name) in SampleTransactions.participants.enumerated() {
            lines.append(Line([Span(name + String(repeating: " ", count: 6 - name.count)), Span("prepare\(glyphs.arrowRight)"),
                               Span(voteGlyphs[x.votes[p]], t[voteRoles[x.votes[p]]]), Span("  1.2ms", t[.dim])]))
        }
        lines.append(Line("decision: \(glyphs.emDash)", t[.dim]))
        lines.append(Line("भारतीय स्टेट बैंक: ₹18,00,000 जमा (credit) — a long line that is cut at the panel's edge"))
        let detail = Block(title: Line("Detail", t[.title]), borderStyle: t[.border], glyphs: glyphs)
        Paragraph(lines, style: t[.text], glyphs: glyphs).render(into: &grid, area: detail.inner(body[1]))
        detail.render(into: &grid, area: body[1])
    }
    grid.write(Line([Span(" Waits: T-4712 \(glyphs.arrowRight) T-4698 \(glyphs.arrowRight) T-4712 (cycle)", t[.cycle]),
                     Span("  victim: T-4712 (least work)  [K] abort victim", t[.victim])]), in: rows[3], ellipsis: glyphs.ellipsis)
    StatusBar([.init("?", "help"), .init("/", "filter"), .init("f", "faults"), .init("a", "abort"), .init("r", "reconcile"),
               .init("t", "theme"), .init("space", "pause"), .init("q", "quit")],
              note: Span("read-only", t[.warning]), style: t[.statusBar], keyStyle: t[.key]).render(into: &grid, area: rows[4])
}

/// 1234567 -> "12,34,567" (lakh and crore grouping).
func indianGrouping(_ value: Int64) -> String {
    let digits = Array(String(value))
    guard digits.count > 3 else { return String(digits) }
    var head = Array(digits.dropLast(3))
    var groups: [String] = [String(digits.suffix(3))]
    while head.count > 2 {
        groups.insert(String(head.suffix(2)), at: 0)
        head.removeLast(2)
    }
    if !head.isEmpty { groups.insert(String(head), at: 0) }
    return groups.joined(separator: ",")
}

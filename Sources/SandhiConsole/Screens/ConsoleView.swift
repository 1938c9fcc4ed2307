import Foundation
import SandhiEngine
import SandhiTerminalUI

/// Draws the whole console from the model into a grid: the header (on every screen), the
/// screen bar, the screen, the key hints, and whatever popup is open. Pure: the same model,
/// size, theme and glyphs give the same grid, which is what the golden tests compare.
public enum ConsoleView {
    public static func render(_ model: ConsoleModel, size: Size, context: RenderContext) -> Grid {
        var grid = Grid(size: size, fill: Cell(" ", style: context[.text]))
        render(model, into: &grid, context: context)
        return grid
    }

    public static func render(_ model: ConsoleModel, into grid: inout Grid, context: RenderContext) {
        let area = grid.area
        guard area.height >= 4, area.width >= 20 else {
            grid.write(Line("Sandhi: the terminal is too small", context[.warning]), in: area.row(0))
            return
        }
        let rows = Layout.vertical([.length(1), .length(1), .fill(1), .length(1)]).split(area)
        header(model, into: &grid, area: rows[0], context: context)
        let tabs = ConsoleModel.Screen.allCases.map { Tabs.Tab(key: String($0.rawValue), title: $0.title) }
        Tabs(tabs, selected: model.screen.rawValue - 1, style: context[.tab], activeStyle: context[.tabActive]).render(into: &grid, area: rows[1])
        var body = rows[2]
        if let input = model.filterInput {
            let line = Rect(x: body.x, y: body.bottom - 1, width: body.width, height: 1)
            TextInput(prompt: Span("/", context[.key]), state: input, style: context[.input], cursorStyle: context[.cursor]).render(into: &grid, area: line)
            body.height -= 1
        }
        switch model.screen {
        case .transactions: TransactionsScreen.render(model, into: &grid, area: body, context: context)
        case .locks: LocksScreen.render(model, into: &grid, area: body, context: context)
        case .waits: WaitsScreen.render(model, into: &grid, area: body, context: context)
        case .participants: ParticipantsScreen.render(model, into: &grid, area: body, context: context)
        case .reconcile: ReconcileScreen.render(model, into: &grid, area: body, context: context)
        case .log: LogScreen.render(model, into: &grid, area: body, context: context)
        }
        statusBar(model, into: &grid, area: rows[3], context: context)
        if let popup = model.popup { render(popup, model: model, into: &grid, screen: area, context: context) }
    }

    static func header(_ model: ConsoleModel, into grid: inout Grid, area: Rect, context: RenderContext) {
        let coordinator = model.view?.coordinator
        let inFlight = coordinator?.inFlightCount ?? 0
        let inDoubt = model.derived.inDoubt.count
        let heuristic = coordinator?.reconciliation.unsettled.count ?? 0
        let faults = model.view?.activeFaults ?? []
        let alert = heuristic > 0 || !faults.isEmpty || model.view?.halted != nil
        let base = context[alert ? .headerAlert : .header]
        var spans: [Span] = [
            Span(" Sandhi ", base.adding(.bold)),
            Span(" \(model.view?.mode ?? "2pl") ", base),
        ]
        // Alerts first: on a narrow terminal the figures are cut, never what is wrong.
        if let halted = model.view?.halted { spans.append(Span(" COORDINATOR DOWN: \(halted.prefix(40)) ", context[.fault])) }
        if !faults.isEmpty { spans.append(Span(" FAULT: \(faults.joined(separator: ", ")) ", context[.fault])) }
        if model.paused { spans.append(Span(" PAUSED ", context[.warning])) }
        if model.readOnly { spans.append(Span(" READ-ONLY ", context[.warning])) }
        spans += [
            Span(" in-flight \(inFlight) ", base),
            Span(" in-doubt \(inDoubt) ", inDoubt > 0 ? context[.inDoubt] : base),
            Span(" heuristic \(heuristic) ", heuristic > 0 ? context[.heuristic] : base),
            Span(" \(context.glyphs.arrowUp) \(grouped(Int(model.metrics.transfersPerSecond.rounded()))) tx/s ", base),
            Span(" p50 \(age(model.metrics.p50Us)) p99 \(age(model.metrics.p99Us)) ", base),
            Span(" aborts \(String(format: "%.1f", model.metrics.abortRate * 100))% ", base),
        ]
        if let view = model.view, !model.paused {
            let staleUs = model.nowUs &- min(model.nowUs, view.takenAtUs)
            spans.append(Span(" data \(age(staleUs)) old ", staleUs > 2_000_000 ? context[.warning] : base))
        }
        if !(model.view?.workload.isEmpty ?? true) { spans.append(Span(" load: \(model.view!.workload) ", base)) }
        grid.fill(area, style: base)
        grid.write(Line(spans), in: area, base: base, ellipsis: context.glyphs.ellipsis)
    }

    /// Transactions whose outcome some participant holding their prepared state cannot know
    /// yet: the decision is being logged, recovery is settling them, or phase two waits on a
    /// participant that is down.
    static func computeInDoubt(_ model: ConsoleModel) -> [TransactionID] {
        guard let view = model.view else { return [] }
        let down = Set(view.participants.filter(\.isDown).map(\.id))
        return view.coordinator.transactions.values.filter { tx in
            if tx.recovered || tx.state == .prepared { return true }
            guard !down.isEmpty else { return false }
            return tx.branches.contains { progress in
                guard down.contains(progress.branch.participant) else { return false }
                switch progress.status {
                case .awaitingAck, .voted(.yes): return true
                default: return false
                }
            }
        }.map(\.id)
    }

    static func statusBar(_ model: ConsoleModel, into grid: inout Grid, area: Rect, context: RenderContext) {
        var hints = [StatusBar.Hint("?", "help"), StatusBar.Hint("1-6", "screens"), StatusBar.Hint("/", "filter")]
        switch model.screen {
        case .transactions: hints += [StatusBar.Hint("Enter", "detail"), StatusBar.Hint("a", "abort"), StatusBar.Hint("s", "sort")]
        case .waits: hints += [StatusBar.Hint("a", "abort the selected candidate")]
        case .participants: hints += [StatusBar.Hint("f", "faults")]
        case .reconcile: hints += [StatusBar.Hint("r", "settle the selected case")]
        case .locks, .log: break
        }
        hints += [StatusBar.Hint("+/-", "rate"), StatusBar.Hint("Space", model.paused ? "resume" : "pause"), StatusBar.Hint("q", "quit")]
        let note = model.notice.map { Span($0.text, context[$0.ok ? .ok : .error]) }
        StatusBar(hints, note: note, style: context[.statusBar], keyStyle: context[.key]).render(into: &grid, area: area)
    }

    static func render(_ popup: ConsoleModel.Popup, model: ConsoleModel, into grid: inout Grid, screen: Rect, context: RenderContext) {
        switch popup {
        case .help:
            let keys: [(String, String)] = [
                ("?", "this help"), ("q  Ctrl-C", "quit"), ("1-6  Tab", "switch screen"), ("j k  arrows", "move"),
                ("PgUp PgDn Home End", "move further"), ("Enter", "detail / settle"), ("Esc", "back, close"),
                ("/", "filter the screen"), ("s", "sort by age / by id"), ("Space", "pause the display (the engine keeps running)"),
                ("+ -", "workload rate"), ("w", "next workload"), ("f", "fault menu"), ("a", "abort the selected transaction"),
                ("r", "reconcile: settle the selected heuristic case"), ("t", "next theme"),
            ]
            var lines = keys.map { Line([Span($0.0.padding(toLength: 20, withPad: " ", startingAt: 0), context[.key]), Span($0.1)]) }
            if model.readOnly { lines.append(Line("read-only: f, a, r actions, w and +/- are disabled", context[.warning])) }
            Overlay(title: Line(" keys ", context[.title]), lines: lines, style: context[.overlay], borderStyle: context[.overlayBorder],
                    glyphs: context.glyphs).render(into: &grid, area: screen)
        case .confirmAbort(let tx, let reason):
            Overlay(title: Line(" abort ", context[.title]),
                    lines: [Line("Abort \(tx)?", context[.warning]), Line("reason: \(reason)", context[.dim]), Line("y to abort, n to keep it", context[.key])],
                    style: context[.overlay], borderStyle: context[.overlayBorder], glyphs: context.glyphs).render(into: &grid, area: screen)
        case .faults(let selected):
            let items = model.faultMenu()
            var lines = items.enumerated().map { Line($0.element, $0.offset == selected ? context[.selection] : context[.text]) }
            lines.append(Line("Enter to inject, Esc to close", context[.dim]))
            Overlay(title: Line(" inject a fault ", context[.title]), lines: lines, width: 40, style: context[.overlay],
                    borderStyle: context[.overlayBorder], glyphs: context.glyphs).render(into: &grid, area: screen)
        case .reconcile(let tx, let step):
            let (overlay, input) = ReconcileScreen.popup(tx, step: step, model: model, context: context)
            overlay.render(into: &grid, area: screen)
            if let input {
                let frame = overlay.frame(in: screen)
                input.render(into: &grid, area: Rect(x: frame.x + 2, y: frame.y + 3, width: max(0, frame.width - 4), height: 1))
            }
        }
    }

    static func grouped(_ value: Int) -> String {
        let digits = String(value)
        var out = ""
        for (index, character) in digits.reversed().enumerated() {
            if index > 0 && index % 3 == 0 { out.append(",") }
            out.append(character)
        }
        return String(out.reversed())
    }
}

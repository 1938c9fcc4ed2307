import SandhiEngine
import SandhiTerminalUI

/// Screen 4: each participant's health, its last vote latency, the branches prepared there
/// that wait for phase two, and the faults in force on it. `f` opens the fault menu for the
/// selected participant.
enum ParticipantsScreen {
    static func render(_ model: ConsoleModel, into grid: inout Grid, area: Rect, context: RenderContext) {
        let participants = model.view?.participants ?? []
        let coordinator = model.view?.coordinator
        var prepared: [ParticipantID: Int] = [:]
        for tx in coordinator?.transactions.values ?? [:].values {
            for progress in tx.branches {
                switch progress.status {
                case .voted(.yes), .awaitingAck: prepared[progress.branch.participant, default: 0] += 1
                default: break
                }
            }
        }
        let faults = model.view?.activeFaults ?? []
        // Only with a database participant: what its server itself holds prepared.
        let databases = participants.contains { $0.preparedInDatabase != nil }
        var columns = [ColumnSpec("PARTICIPANT", minWidth: 11, priority: 0), ColumnSpec("HEALTH", minWidth: 6, priority: 0),
                       ColumnSpec("LAST VOTE", minWidth: 9, priority: 1, alignment: .right),
                       ColumnSpec("PREPARED", minWidth: 8, priority: 0, alignment: .right)]
        if databases { columns.append(ColumnSpec("IN DATABASE", minWidth: 18, priority: 1, alignment: .right)) }
        columns += [ColumnSpec("FSYNCS", minWidth: 8, priority: 2, alignment: .right), ColumnSpec("FAULTS", minWidth: 10, grow: 1, priority: 1)]
        var state = model.table(.participants)
        let parts = Layout.vertical([.fill(1), .length(6)]).split(area)
        Table(columns: columns, rowCount: participants.count, state: state, headerStyle: context[.tableHeader], style: context[.text],
              selectionStyle: context[.selection], glyphs: context.glyphs) { index in
            let participant = participants[index]
            let own = faults.filter { $0.split(separator: " ").dropFirst().first.map(String.init) == participant.id.name }
            var cells = [Line(participant.id.name),
                         Line(participant.isDown ? "DOWN" : "up", context[participant.isDown ? .fault : .ok]),
                         Line(model.voteLatencyUs[participant.id].map(age) ?? "", context[.dim]),
                         Line(String(prepared[participant.id] ?? 0))]
            if databases { cells.append(databaseCell(participant.preparedInDatabase, context: context)) }
            cells += [Line(String(participant.fsyncs), context[.dim]), Line(own.joined(separator: ", "), context[.fault])]
            return TableRow(cells)
        }.render(into: &grid, area: parts[0], state: &state)
        var lines: [Line] = [Line("f  fault menu for the selected participant (crash, partition, drop, delay) and the coordinator", context[.dim])]
        if !faults.isEmpty { lines.append(Line("in force: " + faults.joined(separator: " · "), context[.fault])) }
        if let halted = model.view?.halted { lines.append(Line("coordinator: \(halted)", context[.fault])) }
        for participant in participants {
            guard let database = participant.preparedInDatabase, database.isOld, let oldest = database.oldestAgeSeconds else { continue }
            lines.append(Line("\(participant.id): a transaction has stayed prepared in its database for \(oldest)s "
                              + "(it holds locks and VACUUM back; `sandhi recover --orphans` lists those not Sandhi's)", context[.warning]))
        }
        Paragraph(lines, style: context[.text], glyphs: context.glyphs).render(into: &grid, area: parts[1].inset(horizontal: 1))
    }

    /// `3, oldest 75s`, in the warning style once the oldest passes the threshold.
    static func databaseCell(_ database: EngineView.PreparedInDatabase?, context: RenderContext) -> Line {
        guard let database else { return Line("") }
        guard let oldest = database.oldestAgeSeconds, database.count > 0 else { return Line("0", context[.dim]) }
        return Line("\(database.count), oldest \(oldest)s", context[database.isOld ? .warning : .text])
    }
}

/// Screen 5: the heuristic cases (mixed outcomes) and the transactions stuck in phase two, each
/// case's logged decision beside every participant's outcome; `r`/Enter starts the guided,
/// audited action on the selected case.
enum ReconcileScreen {
    static func cases(_ model: ConsoleModel) -> [HeuristicCase] {
        let all = model.view?.coordinator.reconciliation.all ?? []
        // Open first (they need someone), then settled, newest first within each.
        return all.filter { !$0.isSettled }.reversed() + all.filter(\.isSettled).reversed()
    }

    /// Decided, but a participant has not acknowledged for a long while.
    static func stuck(_ model: ConsoleModel, olderThanUs: UInt64 = 5_000_000) -> [Coordinator.CoordinatorTransaction] {
        guard let coordinator = model.view?.coordinator else { return [] }
        return coordinator.transactions.values
            .filter { ($0.state == .committing || $0.state == .aborting) && model.nowUs &- min(model.nowUs, $0.beganAtUs) > olderThanUs }
            .sorted { $0.id < $1.id }
    }

    static func render(_ model: ConsoleModel, into grid: inout Grid, area: Rect, context: RenderContext) {
        let cases = cases(model)
        let parts = Layout.vertical([.fill(1), .fill(1)]).split(area)
        let columns = [ColumnSpec("TX", minWidth: 10, priority: 0), ColumnSpec("DECISION", minWidth: 8, priority: 0),
                       ColumnSpec("STATUS", minWidth: 14, grow: 1, priority: 0), ColumnSpec("IMBALANCE", minWidth: 12, priority: 1, alignment: .right),
                       ColumnSpec("OUTCOMES", minWidth: 16, grow: 2, priority: 1)]
        var state = model.table(.reconcile)
        Table(columns: columns, rowCount: cases.count, state: state, headerStyle: context[.tableHeader], style: context[.text],
              selectionStyle: context[.selection], glyphs: context.glyphs) { index in
            let heuristicCase = cases[index]
            let outcomes = heuristicCase.participants.map { "\($0.participant) \($0.outcome.label)" }.joined(separator: " · ")
            return TableRow([Line(heuristicCase.transaction.description),
                             Line(heuristicCase.decision.label), Line(heuristicCase.status.label, context[heuristicCase.isSettled ? .dim : .heuristic]),
                             Line(heuristicCase.imbalance.map(context.money) ?? "unknown"), Line(outcomes)])
        }.render(into: &grid, area: parts[0], state: &state)
        var lines: [Line] = []
        if cases.isEmpty { lines.append(Line("no heuristic cases: every participant has followed every decision", context[.dim])) }
        if let selected = state.selected, cases.indices.contains(selected) {
            let heuristicCase = cases[selected]
            lines.append(Line("\(heuristicCase.transaction): the logged decision is \(heuristicCase.decision.label.uppercased())", context[.title]))
            for participant in heuristicCase.participants {
                let diverges = participant.outcome.diverges(from: heuristicCase.decision)
                lines.append(Line([Span("  \(participant.participant.name)  ", context[.text]),
                                   Span(participant.outcome.label, context[diverges ? .heuristic : .committed]),
                                   Span(diverges ? "  against the decision" : "", context[.warning])]))
            }
            for entry in heuristicCase.actions {
                lines.append(Line("  \(entry.action.rawValue) by \(entry.operatorName): \(entry.result.label) — \(entry.note)", context[.dim]))
            }
            if !heuristicCase.isSettled && !model.readOnly { lines.append(Line("r or Enter: settle it (preview, reason, confirm)", context[.key])) }
        }
        let stuck = stuck(model)
        if !stuck.isEmpty {
            lines.append(Line("stuck in phase two: " + stuck.prefix(8).map { "\($0.id) \($0.state.rawValue)" }.joined(separator: ", "), context[.warning]))
        }
        if let audit = model.audit {
            lines.append(Line("invariant check: " + (audit.passed ? "ok" : "VIOLATED"), context[audit.passed ? .ok : .error]))
            for line in audit.lines.prefix(4) { lines.append(Line("  " + line, context[.dim])) }
        }
        Paragraph(lines, style: context[.text], glyphs: context.glyphs).render(into: &grid, area: parts[1].inset(horizontal: 1))
    }

    /// The popup for the guided action.
    static func popup(_ tx: TransactionID, step: ConsoleModel.ReconcileStep, model: ConsoleModel, context: RenderContext) -> (Overlay, TextInput?) {
        var lines: [Line] = []
        var input: TextInput?
        switch step {
        case .choose(let selected):
            lines.append(Line("How should \(tx) be settled?", context[.title]))
            for (index, action) in ReconcileAction.allCases.enumerated() {
                let text = "\(index + 1)  \(action.rawValue)"
                lines.append(Line(text, index == selected ? context[.selection] : context[.text]))
            }
            lines.append(Line("j/k or 1-3 to choose, Enter to preview, Esc to cancel", context[.dim]))
        case .preview(let action):
            lines.append(Line("Dry run of \(action.rawValue) on \(tx):", context[.title]))
            switch model.reconciliationPlan(action, tx) {
            case .success(let plan?):
                lines.append(Line("a new transaction, linked to \(tx), changes:"))
                for branch in plan {
                    for operation in branch.operations {
                        lines.append(Line("  \(branch.participant): \(operation.summary(money: context.money))"))
                    }
                }
                lines.append(Line("locks: a heuristic case holds none; the new transaction takes its own and frees them at its decision", context[.dim]))
                lines.append(Line("waiters: none are blocked by \(tx)", context[.dim]))
            case .success(nil):
                lines.append(Line("no balance changes: the case is recorded as settled by hand"))
            case .failure(let refusal):
                lines.append(Line("not possible: \(refusal)", context[.error]))
            }
            lines.append(Line("Enter to continue, Esc to go back", context[.dim]))
        case .reason(let action, let state):
            lines.append(Line("\(action.rawValue) on \(tx): why? (recorded with your action)", context[.title]))
            lines.append("")
            input = TextInput(prompt: Span("reason: ", context[.key]), state: state, style: context[.input], cursorStyle: context[.cursor])
        case .confirm(let action, let note):
            lines.append(Line("Carry out \(action.rawValue) on \(tx)?", context[.title]))
            lines.append(Line("reason: \(note)"))
            lines.append(Line("y to confirm, n to edit the reason, Esc to cancel", context[.key]))
        }
        return (Overlay(title: Line(" reconcile \(tx) ", context[.title]), lines: lines, width: 64, style: context[.overlay],
                        borderStyle: context[.overlayBorder], glyphs: context.glyphs), input)
    }
}

/// Screen 6: the event stream and the operator's actions, newest at the bottom, filterable.
enum LogScreen {
    static func lines(_ model: ConsoleModel) -> [EventLog.Line] {
        guard !model.filter.isEmpty else { return Array(model.log.lines) }
        let needle = model.filter.lowercased()
        return model.log.lines.filter { $0.text.lowercased().contains(needle) }
    }

    static func render(_ model: ConsoleModel, into grid: inout Grid, area: Rect, context: RenderContext) {
        let lines = lines(model)
        var state = model.table(.log)
        // Follow the end unless the operator has scrolled.
        if state.selected == nil || state.selected == 0 { state.selected = max(0, lines.count - 1) }
        let columns = [ColumnSpec("TIME", minWidth: 10, priority: 1, alignment: .right), ColumnSpec("EVENT", minWidth: 20, grow: 1, priority: 0)]
        let startUs = lines.first?.atUs ?? 0
        Table(columns: columns, rowCount: lines.count, state: state, headerStyle: context[.tableHeader], style: context[.text],
              selectionStyle: context[.selection], glyphs: context.glyphs) { index in
            let line = lines[index]
            return TableRow([Line("+" + age(line.atUs &- startUs), context[.dim]), Line(line.text, context[line.isOperator ? .key : .text])])
        }.render(into: &grid, area: area, state: &state)
    }
}

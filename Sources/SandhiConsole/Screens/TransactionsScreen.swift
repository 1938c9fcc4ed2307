import Foundation
import SandhiEngine
import SandhiTerminalUI

/// Screen 1: every transaction in flight and the recent ones, one row each with a vote glyph
/// per participant; Enter opens one's protocol timeline.
enum TransactionsScreen {
    struct Row {
        var transaction: TransactionID
        var state: TransactionState
        /// In flight: when it began (its age is worked out at each frame); finished: how long it took.
        var beganAtUs: UInt64
        var durationUs: UInt64?
        var marks: [ParticipantID: TransactionHistory.Mark]
        var amount: Paise?
        var inFlight: Bool
    }

    /// Bounded: a screen shows tens of rows; thousands are enough to scroll through.
    static let maxRows = 5_000

    static func rows(_ model: ConsoleModel) -> [Row] { model.derived.transactions }

    static func computeRows(_ model: ConsoleModel) -> [Row] {
        var rows: [Row] = []
        if let coordinator = model.view?.coordinator {
            var inFlight = Array(coordinator.transactions.values)
            if model.sortByAge { inFlight.sort { $0.beganAtUs < $1.beganAtUs } } else { inFlight.sort { $0.id > $1.id } }
            for tx in inFlight.prefix(maxRows) {
                var marks: [ParticipantID: TransactionHistory.Mark] = [:]
                for progress in tx.branches {
                    switch progress.status {
                    case .idle: marks[progress.branch.participant] = .notAsked
                    case .awaitingVote: marks[progress.branch.participant] = .pending
                    case .voted(.yes), .awaitingAck: marks[progress.branch.participant] = .yes
                    case .voted(.readOnly): marks[progress.branch.participant] = .readOnly
                    case .voted(.no): marks[progress.branch.participant] = .no
                    case .acknowledged: marks[progress.branch.participant] = model.history[tx.id]?.marks[progress.branch.participant] ?? .acknowledged
                    case .decidedAlone: marks[progress.branch.participant] = .heuristic
                    }
                }
                let amount = tx.branches.allSatisfy({ $0.branch.operations.isEmpty }) ? nil : Branch.amountMoved(by: tx.branches.map(\.branch))
                rows.append(Row(transaction: tx.id, state: tx.state, beganAtUs: tx.beganAtUs, durationUs: nil,
                                marks: marks, amount: amount, inFlight: true))
            }
        }
        let live = Set(rows.map(\.transaction))
        for entry in model.history.finished where !live.contains(entry.transaction) {
            guard rows.count < maxRows else { break }
            let state: TransactionState = entry.heuristic ? .heuristic : (entry.outcome?.isCommitted == true ? .committed : .aborted)
            rows.append(Row(transaction: entry.transaction, state: state, beganAtUs: entry.beganAtUs,
                            durationUs: (entry.finishedAtUs ?? entry.beganAtUs) - entry.beganAtUs,
                            marks: entry.marks, amount: entry.amount, inFlight: false))
        }
        guard !model.filter.isEmpty else { return rows }
        let needle = model.filter.lowercased()
        return rows.filter { row in
            row.transaction.description.lowercased().contains(needle) || row.state.rawValue.contains(needle)
                || row.marks.keys.contains { $0.name.contains(needle) }
        }
    }

    static func render(_ model: ConsoleModel, into grid: inout Grid, area: Rect, context: RenderContext) {
        if let tx = model.detail {
            TransactionDetail.render(tx, model: model, into: &grid, area: area, context: context)
            return
        }
        let participants = model.view?.participants.map(\.id) ?? []
        let rows = rows(model)
        var columns = [ColumnSpec("TX", minWidth: 10, priority: 0), ColumnSpec("STATE", minWidth: 10, priority: 0),
                       ColumnSpec("AGE", minWidth: 7, priority: 1, alignment: .right)]
        for (index, participant) in participants.enumerated() {
            columns.append(ColumnSpec(String(participant.name.prefix(5)).uppercased(), minWidth: 5, priority: 2 + index / 4, alignment: .center))
        }
        columns.append(ColumnSpec("AMOUNT", minWidth: 14, grow: 1, priority: 1, alignment: .right))
        var state = model.table(.transactions)
        let table = Table(columns: columns, rowCount: rows.count, state: state, headerStyle: context[.tableHeader],
                          style: context[.text], selectionStyle: context[.selection], glyphs: context.glyphs) { index in
            let row = rows[index]
            var cells: [Line] = [Line(row.transaction.description), Line(row.state.rawValue, context[context.stateRole(row.state)]),
                                 Line(age(row.durationUs ?? (model.nowUs &- min(model.nowUs, row.beganAtUs))), context[.dim])]
            for participant in participants {
                cells.append(Line([row.marks[participant].map(context.mark) ?? Span(" ")]))
            }
            cells.append(Line(row.amount.map(context.money) ?? ""))
            return TableRow(cells)
        }
        table.render(into: &grid, area: area, state: &state)
        if rows.isEmpty {
            grid.write(Line(model.filter.isEmpty ? "no transactions yet" : "no transaction matches /\(model.filter)", context[.dim]),
                       in: area.row(min(2, area.height - 1)).inset(horizontal: 2))
        }
    }
}

/// The detail of one transaction: its protocol messages as a Lamport-style diagram (the
/// coordinator and each participant a column, time flowing down), each vote with its latency,
/// the decision and its log position, and the locks it holds or waits for.
enum TransactionDetail {
    static func render(_ tx: TransactionID, model: ConsoleModel, into grid: inout Grid, area: Rect, context: RenderContext) {
        let entry = model.history[tx]
        let live = model.view?.coordinator.transactions[tx]
        let participants = live?.branches.map(\.branch.participant) ?? entry?.participants ?? []
        var lines: [Line] = []
        let state = live?.state ?? entry.map { $0.heuristic ? .heuristic : ($0.outcome?.isCommitted == true ? .committed : .aborted) } ?? .active
        lines.append(Line([Span("\(tx)  ", context[.title]), Span(state.rawValue, context[context.stateRole(state)]),
                           Span(live?.decisionPosition.map { "   decision logged at \($0)" } ?? "", context[.dim])]))
        if let outcome = entry?.outcome, case .aborted(let reason, _, _) = outcome { lines.append(Line("aborted: \(reason)", context[.aborted])) }
        if let locks = model.view?.coordinator.locks {
            let held = locks.table.filter { $0.value.holders.contains { $0.transaction == tx } }.keys.sorted()
            if !held.isEmpty { lines.append(Line("holds: " + held.map(\.description).joined(separator: ", "), context[.dim])) }
            if let waiting = locks.resource(waitedOnBy: tx) {
                let holders = locks.table[waiting]?.holders.map(\.transaction.description) ?? []
                lines.append(Line("waits for \(waiting)" + (holders.isEmpty ? "" : " held by " + holders.joined(separator: ", ")), context[.waiting]))
            }
        }
        lines.append("")
        // The diagram: one column per process.
        let names = ["coord"] + participants.map(\.name)
        let spacing = max(8, min(14, (area.width - 12) / max(1, names.count)))
        func column(_ index: Int) -> Int { 10 + index * spacing }
        var header = String(repeating: " ", count: 10)
        for name in names { header += String(name.prefix(spacing - 1)).padding(toLength: spacing, withPad: " ", startingAt: 0) }
        lines.append(Line(header, context[.tableHeader]))
        let startUs = entry?.events.first?.atUs ?? 0
        for event in entry?.events ?? [] {
            var to: Int?
            var label = ""
            var backwards = false
            var role = ThemeRole.text
            switch event.kind {
            case .prepareSent(_, let p): to = participants.firstIndex(of: p); label = "PREPARE"
            case .voteReceived(_, let p, let vote, let latencyUs):
                to = participants.firstIndex(of: p); backwards = true; label = "\(vote.label.prefix(10)) \(age(latencyUs))"
                role = vote.isNo ? .voteNo : .voteYes
            case .phaseTwoSent(_, let p, let commit, _): to = participants.firstIndex(of: p); label = commit ? "COMMIT" : "ROLLBACK"
            case .acknowledged(_, let p, let latencyUs): to = participants.firstIndex(of: p); backwards = true; label = "ack \(age(latencyUs))"
            case .heuristicReported(_, let p, let outcome, _): to = participants.firstIndex(of: p); backwards = true; label = outcome.label; role = .heuristic
            default: break
            }
            var text = ("+" + age(event.atUs &- startUs)).padding(toLength: 10, withPad: " ", startingAt: 0)
            if let to {
                let from = column(0) - 10, target = column(to + 1) - 10
                var row = Array(repeating: Character(" "), count: target + 2)
                for index in 0..<names.count where column(index) - 10 < row.count { row[column(index) - 10] = Character(context.glyphs.vertical) }
                for x in (from + 1)..<target { row[x] = Character(context.glyphs.horizontal) }
                row[backwards ? from + 1 : target - 1] = Character(backwards ? context.glyphs.arrowLeft : context.glyphs.arrowRight)
                text += String(row) + " " + label
            } else {
                text += event.description.replacingFirst("\(tx) ", with: "")
                role = .dim
                if case .decisionDurable = event.kind { role = .committed }
                if case .stateChanged = event.kind { continue }
            }
            lines.append(Line(text, context[role]))
        }
        if let dropped = entry?.eventsDropped, dropped > 0 { lines.append(Line("(\(dropped) later events not kept)", context[.dim])) }
        if entry == nil { lines.append(Line("no events recorded for \(tx) (it began before the console, or was forgotten)", context[.dim])) }
        let block = Block(title: Line(" \(tx) timeline (Esc back, a abort) ", context[.title]), borderStyle: context[.border], glyphs: context.glyphs)
        block.render(into: &grid, area: area)
        Paragraph(lines, style: context[.text], glyphs: context.glyphs).render(into: &grid, area: block.inner(area))
    }
}

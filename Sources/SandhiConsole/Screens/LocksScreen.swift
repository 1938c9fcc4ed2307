import SandhiEngine
import SandhiTerminalUI

/// Screen 2: Sandhi's lock table: each resource, who holds it in which mode, who waits in queue
/// order and for how long.
enum LocksScreen {
    struct Row {
        var resource: ResourceID
        var holders: [LockManager.Holder]
        var waiters: [LockManager.Waiter]
    }

    static func rows(_ model: ConsoleModel) -> [Row] { model.derived.locks }

    static func computeRows(_ model: ConsoleModel) -> [Row] {
        guard let table = model.view?.coordinator.locks.table else { return [] }
        var rows = table.map { Row(resource: $0.key, holders: Array($0.value.holders), waiters: Array($0.value.waiters)) }
        if !model.filter.isEmpty {
            let needle = model.filter.lowercased()
            rows = rows.filter { row in
                row.resource.description.lowercased().contains(needle)
                    || row.holders.contains { $0.transaction.description.lowercased().contains(needle) }
                    || row.waiters.contains { $0.transaction.description.lowercased().contains(needle) }
            }
        }
        // Contended first, then by name: what an operator looks for is at the top.
        return rows.sorted { $0.waiters.count != $1.waiters.count ? $0.waiters.count > $1.waiters.count : $0.resource < $1.resource }
    }

    static func render(_ model: ConsoleModel, into grid: inout Grid, area full: Rect, context: RenderContext) {
        let rows = rows(model)
        // With database participants, their servers' own locks go below Sandhi's table.
        let participants = (model.view?.participants ?? []).filter { $0.preparedInDatabase != nil }
        var area = full
        if !participants.isEmpty {
            let databaseRows = participants.flatMap { participant in participant.databaseLocks.map { (participant.id, $0) } }
            let parts = Layout.vertical([.fill(1), .length(min(12, databaseRows.count + 3))]).split(full)
            area = parts[0]
            renderDatabaseLocks(databaseRows, into: &grid, area: parts[1], context: context)
        }
        let columns = [ColumnSpec("RESOURCE", minWidth: 16, grow: 1, priority: 0), ColumnSpec("MODE", minWidth: 4, priority: 0),
                       ColumnSpec("HOLDERS", minWidth: 12, grow: 1, priority: 0), ColumnSpec("WAITERS (queue order)", minWidth: 16, grow: 2, priority: 1),
                       ColumnSpec("LONGEST WAIT", minWidth: 12, priority: 2, alignment: .right)]
        var state = model.table(.locks)
        let nowUs = model.nowUs
        Table(columns: columns, rowCount: rows.count, state: state, headerStyle: context[.tableHeader], style: context[.text],
              selectionStyle: context[.selection], glyphs: context.glyphs) { index in
            let row = rows[index]
            let mode = row.holders.contains { $0.mode == .exclusive } ? "X" : "S"
            let waiters = row.waiters.map { "\($0.transaction)(\($0.mode == .exclusive ? "X" : "S"))" }.joined(separator: " ")
            let longest = row.waiters.map { nowUs &- min(nowUs, $0.sinceUs) }.max()
            return TableRow([Line(row.resource.description), Line(mode),
                             Line(row.holders.map(\.transaction.description).joined(separator: " ")),
                             Line(waiters, context[.waiting]), Line(longest.map(age) ?? "", context[.dim])])
        }.render(into: &grid, area: area, state: &state)
        if rows.isEmpty { grid.write(Line("no locks held", context[.dim]), in: area.row(min(2, area.height - 1)).inset(horizontal: 2)) }
    }

    /// What each database participant's server reports (`pg_locks`) for its prepared
    /// transactions: the table locks and transaction locks PostgreSQL itself holds for them.
    static func renderDatabaseLocks(_ rows: [(ParticipantID, EngineView.DatabaseLock)], into grid: inout Grid, area: Rect, context: RenderContext) {
        guard area.height > 0 else { return }
        grid.write(Line("the databases' own locks, held by prepared transactions (pg_locks)", context[.dim]), in: area.row(0).inset(horizontal: 1))
        let columns = [ColumnSpec("PARTICIPANT", minWidth: 11, priority: 0), ColumnSpec("PREPARED TRANSACTION", minWidth: 20, grow: 2, priority: 0),
                       ColumnSpec("LOCK", minWidth: 13, priority: 1), ColumnSpec("RELATION", minWidth: 8, grow: 1, priority: 2),
                       ColumnSpec("MODE", minWidth: 16, priority: 0), ColumnSpec("GRANTED", minWidth: 7, priority: 1)]
        var state = TableState()
        Table(columns: columns, rowCount: rows.count, state: state, headerStyle: context[.tableHeader], style: context[.text],
              selectionStyle: context[.text], glyphs: context.glyphs) { index in
            let (participant, lock) = rows[index]
            return TableRow([Line(participant.name), Line(lock.gid), Line(lock.kind, context[.dim]), Line(lock.relation),
                             Line(lock.mode), Line(lock.granted ? "yes" : "waiting", context[lock.granted ? .dim : .waiting])])
        }.render(into: &grid, area: Rect(x: area.x, y: area.y + 1, width: area.width, height: area.height - 1), state: &state)
        if rows.isEmpty, area.height > 2 { grid.write(Line("none", context[.dim]), in: area.row(2).inset(horizontal: 2)) }
    }
}

/// Screen 3: the wait-for graph as text (each waiter's chain; cycles marked), each standing
/// deadlock's candidates with their figures and the engine's pick (select another and press
/// `a` to abort it instead), and the deadlock history.
enum WaitsScreen {
    static func candidates(_ model: ConsoleModel) -> [VictimCandidate] {
        model.view?.coordinator.unresolvedDeadlocks.flatMap(\.candidates) ?? []
    }

    static func render(_ model: ConsoleModel, into grid: inout Grid, area: Rect, context: RenderContext) {
        guard let coordinator = model.view?.coordinator else { return }
        let parts = Layout.vertical([.fill(1), .length(min(8, max(3, area.height / 3))), .fill(1)]).split(area)
        // The graph.
        let graph = coordinator.locks.graph
        let cycles = graph.findCycles()
        let inCycle = Set(cycles.flatMap(\.members))
        var lines: [Line] = []
        for cycle in cycles {
            let names = (cycle.members + [cycle.members[0]]).map(\.description)
            lines.append(Line([Span("cycle  ", context[.cycle]), Span(names.joined(separator: " \(context.glyphs.arrowRight) "), context[.cycle])]))
        }
        let waiters = graph.edges.map(\.from)
        var seen = Set<TransactionID>()
        for start in waiters.sorted() where !inCycle.contains(start) && seen.insert(start).inserted {
            var chain = [start]
            var current = start
            while chain.count < 8, let next = graph.successors(of: current).first, !chain.contains(next) {
                chain.append(next)
                current = next
            }
            lines.append(Line("waits  " + chain.map(\.description).joined(separator: " \(context.glyphs.arrowRight) "), context[.waiting]))
            if lines.count > 200 { break }
        }
        if lines.isEmpty { lines.append(Line("nobody waits for a lock", context[.dim])) }
        let graphBlock = Block(title: Line(" wait-for graph: \(graph.edgeCount) edge(s), \(cycles.count) cycle(s) ", context[.title]),
                               borderStyle: context[.border], glyphs: context.glyphs)
        graphBlock.render(into: &grid, area: parts[0])
        Paragraph(lines, style: context[.text], glyphs: context.glyphs).render(into: &grid, area: graphBlock.inner(parts[0]))
        // Candidates of the standing deadlocks.
        let candidates = candidates(model)
        let victims = Set(coordinator.unresolvedDeadlocks.compactMap(\.victim))
        let columns = [ColumnSpec("CANDIDATE", minWidth: 10, priority: 0), ColumnSpec("LOCKS", minWidth: 5, priority: 0, alignment: .right),
                       ColumnSpec("OPS", minWidth: 4, priority: 1, alignment: .right), ColumnSpec("AGE", minWidth: 7, priority: 1, alignment: .right),
                       ColumnSpec("PREPARED", minWidth: 8, priority: 2, alignment: .right), ColumnSpec("WAITS FOR", minWidth: 12, grow: 1, priority: 2),
                       ColumnSpec("", minWidth: 15, priority: 0)]
        var state = model.table(.waits)
        let candidateBlock = Block(title: Line(" standing deadlocks: pick a victim, a to abort it ", context[.title]), borderStyle: context[.border], glyphs: context.glyphs)
        candidateBlock.render(into: &grid, area: parts[1])
        Table(columns: columns, rowCount: candidates.count, state: state, headerStyle: context[.tableHeader], style: context[.text],
              selectionStyle: context[.selection], glyphs: context.glyphs) { index in
            let candidate = candidates[index]
            return TableRow([Line(candidate.transaction.description), Line(String(candidate.locksHeld)), Line(String(candidate.operations)),
                             Line(age(candidate.ageUs)), Line(String(candidate.participantsPrepared)),
                             Line(candidate.waitsFor?.description ?? ""),
                             Line(victims.contains(candidate.transaction) ? "engine's victim" : "", context[.victim])])
        }.render(into: &grid, area: candidateBlock.inner(parts[1]), state: &state)
        // History.
        var history: [Line] = []
        for deadlock in coordinator.deadlockHistory.entries.reversed() {
            let resolution: String
            switch deadlock.resolution {
            case .victimAborted(let tx, _): resolution = "victim \(tx) aborted"
            case .operatorAborted(let tx, _): resolution = "operator aborted \(tx)"
            case .dissolved(let tx, _): resolution = "dissolved by \(tx)"
            case nil: resolution = "standing"
            }
            history.append(Line("#\(deadlock.id)  \(deadlock.cycle.map(\.description).joined(separator: " \(context.glyphs.arrowRight) "))  \(deadlock.policy): \(resolution)",
                                deadlock.resolution == nil ? context[.cycle] : context[.dim]))
        }
        if history.isEmpty { history.append(Line("no deadlocks yet", context[.dim])) }
        let historyBlock = Block(title: Line(" deadlock history (\(coordinator.deadlockHistory.totalCount) in all) ", context[.title]),
                                 borderStyle: context[.border], glyphs: context.glyphs)
        historyBlock.render(into: &grid, area: parts[2])
        Paragraph(history, style: context[.text], glyphs: context.glyphs).render(into: &grid, area: historyBlock.inner(parts[2]))
    }
}

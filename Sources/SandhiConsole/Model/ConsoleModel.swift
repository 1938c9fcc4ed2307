import SandhiEngine
import SandhiTerminalUI

/// The console's whole state. `update` is the only way it changes; the screens draw from it.
public struct ConsoleModel: Sendable {
    public enum Screen: Int, CaseIterable, Sendable {
        case transactions = 1, locks, waits, participants, reconcile, log

        public var title: String {
            switch self {
            case .transactions: "Tx"
            case .locks: "Locks"
            case .waits: "Waits"
            case .participants: "Participants"
            case .reconcile: "Reconcile"
            case .log: "Log"
            }
        }
    }

    /// A guided operator action on a heuristic case: pick, preview, give a reason, confirm.
    public enum ReconcileStep: Hashable, Sendable {
        case choose(selected: Int)
        case preview(ReconcileAction)
        case reason(ReconcileAction, TextInputState)
        case confirm(ReconcileAction, note: String)
    }

    /// What floats above the screen and takes the keys.
    public enum Popup: Hashable, Sendable {
        case help
        case confirmAbort(TransactionID, reason: String)
        case faults(selected: Int)
        case reconcile(TransactionID, ReconcileStep)
    }

    public var screen: Screen = .transactions
    public let readOnly: Bool
    /// The display stands still (the engine does not).
    public var paused = false
    public var popup: Popup?
    /// The `/` filter being typed, and the one in force.
    public var filterInput: TextInputState?
    public var filter = ""
    public var sortByAge = false
    public var tables: [Screen: TableState] = [:]
    /// The transaction whose detail (timeline) is open.
    public var detail: TransactionID?
    public var view: EngineView?
    public var metrics = ConsoleMetrics()
    public var history = TransactionHistory()
    public var log = EventLog()
    /// The last operator-visible result (a command's outcome, a refusal).
    public var notice: (text: String, ok: Bool)?
    public var audit: (lines: [String], passed: Bool)?
    public var nowUs: UInt64 = 0
    /// Latency of each participant's last votes, for the participants screen.
    public var voteLatencyUs: [ParticipantID: UInt64] = [:]
    /// What the screens show, worked out once per picture of the engine (and per filter or
    /// sort change), not once per frame: with 10,000 transactions in flight, sorting and
    /// filtering them is most of a frame's cost, and a key press redraws without it.
    var derived = Derived()

    struct Derived {
        var transactions: [TransactionsScreen.Row] = []
        var locks: [LocksScreen.Row] = []
        var inDoubt: [TransactionID] = []
    }

    mutating func derive() {
        derived.transactions = TransactionsScreen.computeRows(self)
        derived.locks = LocksScreen.computeRows(self)
        derived.inDoubt = ConsoleView.computeInDoubt(self)
    }

    public init(readOnly: Bool = false) {
        self.readOnly = readOnly
    }

    public func table(_ screen: Screen) -> TableState { tables[screen] ?? TableState(selected: 0) }
}

extension ConsoleModel {
    /// Feeds one message; returns what the executable must do.
    public mutating func update(_ message: ConsoleMessage) -> [ConsoleCommand] {
        switch message {
        case .key(let key):
            return handle(key)
        case .events(let events):
            for event in events { observe(event) }
            return []
        case .snapshot(let view):
            if !paused { self.view = view }
            derive()
            return []
        case .tick(let nowUs):
            self.nowUs = nowUs
            metrics.refresh(nowUs: nowUs)
            return []
        case .commandFinished(let text, let ok):
            notice = (text, ok)
            log.append(EventLog.Line(atUs: nowUs, text: "operator: " + text, isOperator: true))
            return []
        case .auditFinished(let lines, let passed):
            audit = (lines, passed)
            for line in lines { log.append(EventLog.Line(atUs: nowUs, text: "check: " + line, isOperator: true)) }
            return []
        }
    }

    mutating func observe(_ event: EngineEvent) {
        metrics.record(event)
        history.record(event)
        if case .voteReceived(_, let participant, _, let latencyUs) = event.kind { voteLatencyUs[participant] = latencyUs }
        // Every event is in the log except the most frequent, which would drown the rest.
        switch event.kind {
        case .prepareSent, .phaseTwoSent, .stateChanged: return
        default: log.append(EventLog.Line(event))
        }
    }

    // MARK: - Keys

    mutating func handle(_ key: Key) -> [ConsoleCommand] {
        if case .resize = key { return [] }
        if key == .control("c") { return [.quit] }
        if let popup { return handle(key, in: popup) }
        if var input = filterInput {
            switch input.handle(key) {
            case .submitted: filter = input.text; filterInput = nil
            case .cancelled: filterInput = nil
            default: filterInput = input; filter = input.text
            }
            derive()
            return []
        }
        switch key {
        case .character("q"): return [.quit]
        case .character(let c) where ("1"..."6").contains(c):
            screen = Screen(rawValue: Int(String(c))!)!
            detail = nil
        case .tab: screen = Screen(rawValue: screen.rawValue % Screen.allCases.count + 1)!; detail = nil
        case .backTab: screen = Screen(rawValue: (screen.rawValue + Screen.allCases.count - 2) % Screen.allCases.count + 1)!; detail = nil
        case .character("?"): popup = .help
        case .character(" "): paused.toggle()
        case .character("/"): filterInput = TextInputState(filter)
        case .escape:
            if detail != nil { detail = nil } else if !filter.isEmpty { filter = ""; derive() }
        case .character("s"): sortByAge.toggle(); derive()
        case .character("t"): return [.nextTheme]
        case .character("+"), .character("="): return mutating(.changeWorkloadRate(by: 1))
        case .character("-"): return mutating(.changeWorkloadRate(by: -1))
        case .character("w"): return mutating(.nextWorkload)
        case .character("f"):
            guard !readOnly else { return refuse("faults") }
            popup = .faults(selected: 0)
        case .character("a"):
            guard !readOnly else { return refuse("abort") }
            guard let tx = selectedAbortTarget() else { notice = ("nothing selected to abort", false); return [] }
            popup = .confirmAbort(tx, reason: "aborted from the console")
        case .character("r"):
            if screen != .reconcile { screen = .reconcile; return [] }
            guard !readOnly else { return refuse("reconcile") }
            guard let tx = selectedCase() else { notice = ("no heuristic case selected", false); return [] }
            popup = .reconcile(tx, .choose(selected: 0))
        case .enter:
            if screen == .transactions, let tx = selectedTransaction() { detail = tx }
            if screen == .reconcile, !readOnly, let tx = selectedCase() { popup = .reconcile(tx, .choose(selected: 0)) }
        case .up, .character("k"): move(by: -1)
        case .down, .character("j"): move(by: 1)
        case .pageUp: move(by: -10)
        case .pageDown: move(by: 10)
        case .home: tables[screen] = TableState(selected: 0)
        case .end: move(by: Int.max / 4)
        default: break
        }
        return []
    }

    private mutating func mutating(_ command: ConsoleCommand) -> [ConsoleCommand] {
        readOnly ? refuse("that") : [command]
    }

    private mutating func refuse(_ what: String) -> [ConsoleCommand] {
        notice = ("read-only console: \(what) is disabled", false)
        return []
    }

    private mutating func move(by delta: Int) {
        var state = table(screen)
        state.move(by: delta, count: rowCount(screen))
        tables[screen] = state
    }

    mutating func handle(_ key: Key, in popup: Popup) -> [ConsoleCommand] {
        switch popup {
        case .help:
            if key == .escape || key == .character("?") || key == .character("q") || key == .enter { self.popup = nil }
            return []
        case .confirmAbort(let tx, let reason):
            switch key {
            case .character("y"), .character("Y"):
                self.popup = nil
                log.append(EventLog.Line(atUs: nowUs, text: "operator: abort \(tx) (\(reason))", isOperator: true))
                return [.forceAbort(tx, note: reason)]
            case .character("n"), .escape:
                self.popup = nil
            default: break
            }
            return []
        case .faults(let selected):
            let items = faultMenu()
            switch key {
            case .up, .character("k"): self.popup = .faults(selected: max(0, selected - 1))
            case .down, .character("j"): self.popup = .faults(selected: min(items.count - 1, selected + 1))
            case .escape, .character("f"): self.popup = nil
            case .enter:
                self.popup = nil
                guard items.indices.contains(selected) else { return [] }
                log.append(EventLog.Line(atUs: nowUs, text: "operator: fault \(items[selected])", isOperator: true))
                return [.injectFault(items[selected])]
            default: break
            }
            return []
        case .reconcile(let tx, let step):
            return handle(key, reconciling: tx, step: step)
        }
    }

    mutating func handle(_ key: Key, reconciling tx: TransactionID, step: ReconcileStep) -> [ConsoleCommand] {
        let actions = ReconcileAction.allCases
        switch step {
        case .choose(let selected):
            switch key {
            case .up, .character("k"): popup = .reconcile(tx, .choose(selected: max(0, selected - 1)))
            case .down, .character("j"): popup = .reconcile(tx, .choose(selected: min(actions.count - 1, selected + 1)))
            case .character(let c) where ("1"..."3").contains(c): popup = .reconcile(tx, .preview(actions[Int(String(c))! - 1]))
            case .enter: popup = .reconcile(tx, .preview(actions[selected]))
            case .escape: popup = nil
            default: break
            }
        case .preview(let action):
            switch key {
            case .enter:
                if case .failure(let refusal) = reconciliationPlan(action, tx) {
                    notice = ("\(action.rawValue) refused: \(refusal)", false)
                    popup = .reconcile(tx, .choose(selected: actions.firstIndex(of: action) ?? 0))
                } else {
                    popup = .reconcile(tx, .reason(action, TextInputState("", maxCharacters: 200)))
                }
            case .escape: popup = .reconcile(tx, .choose(selected: actions.firstIndex(of: action) ?? 0))
            default: break
            }
        case .reason(let action, var input):
            switch input.handle(key) {
            case .submitted:
                let note = input.text.trimmingWhitespace
                if note.isEmpty {
                    notice = ("a written reason is required", false)
                    popup = .reconcile(tx, .reason(action, input))
                } else {
                    popup = .reconcile(tx, .confirm(action, note: note))
                }
            case .cancelled: popup = .reconcile(tx, .preview(action))
            default: popup = .reconcile(tx, .reason(action, input))
            }
        case .confirm(let action, let note):
            switch key {
            case .character("y"), .character("Y"):
                popup = nil
                log.append(EventLog.Line(atUs: nowUs, text: "operator: \(action.rawValue) \(tx): \(note)", isOperator: true))
                return [.resolveHeuristic(tx, action: action, note: note)]
            case .character("n"), .escape: popup = .reconcile(tx, .reason(action, TextInputState(note, maxCharacters: 200)))
            default: break
            }
        }
        return []
    }

    func reconciliationPlan(_ action: ReconcileAction, _ tx: TransactionID) -> Result<[Branch]?, PlanRefusal> {
        guard let queue = view?.coordinator.reconciliation else { return .failure(PlanRefusal("no picture of the engine yet")) }
        return queue.plan(action, for: tx)
    }

    // MARK: - Selections

    /// The fault menu: for the participant selected on the participants screen (the first one
    /// elsewhere), then the coordinator's.
    public func faultMenu() -> [String] {
        let participants = view?.participants ?? []
        var items: [String] = []
        if !participants.isEmpty {
            let index = min(table(.participants).selected ?? 0, participants.count - 1)
            let p = participants[index]
            items += p.isDown ? ["restart \(p.id)"] : ["crash \(p.id)", "partition \(p.id)", "heal \(p.id)", "drop \(p.id) 30%", "delay \(p.id) 200ms"]
        }
        return items + ["fail-fsync", "crash coordinator", "restart coordinator", "heal all"]
    }

    func selectedTransaction() -> TransactionID? {
        let rows = TransactionsScreen.rows(self)
        guard let selected = table(.transactions).selected, rows.indices.contains(selected) else { return nil }
        return rows[selected].transaction
    }

    /// The transaction `a` aborts: the selected row, or on the waits screen the selected
    /// candidate of the first standing deadlock.
    func selectedAbortTarget() -> TransactionID? {
        switch screen {
        case .transactions: return detail ?? selectedTransaction()
        case .waits:
            let candidates = WaitsScreen.candidates(self)
            guard let selected = table(.waits).selected, candidates.indices.contains(selected) else { return nil }
            return candidates[selected].transaction
        default: return nil
        }
    }

    func selectedCase() -> TransactionID? {
        let cases = ReconcileScreen.cases(self)
        guard let selected = table(.reconcile).selected, cases.indices.contains(selected) else { return nil }
        return cases[selected].transaction
    }

    func rowCount(_ screen: Screen) -> Int {
        switch screen {
        case .transactions: TransactionsScreen.rows(self).count
        case .locks: LocksScreen.rows(self).count
        case .waits: WaitsScreen.candidates(self).count
        case .participants: view?.participants.count ?? 0
        case .reconcile: ReconcileScreen.cases(self).count
        case .log: LogScreen.lines(self).count
        }
    }
}

extension String {
    var trimmingWhitespace: String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let end = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[start...end])
    }
}

import Foundation
import Logging
import SandhiConsole
import SandhiCursesBackend
import SandhiEngine
import SandhiPostgres
import SandhiRuntime
import SandhiTerminalUI
import Synchronization

/// The console's loop, on the one thread that owns the terminal: keys, engine events and the
/// results of earlier commands go into the model; its commands go to the engine (the slow ones
/// as tasks, whose results come back as messages); the frame is drawn only when something
/// changed. The engine never waits for any of this: events reach it through a bounded inbox,
/// and pictures of the engine are copies taken a few times a second.
final class ConsoleSession: @unchecked Sendable {
    let node: SandhiNode
    /// The live workload the operator steers with `+`/`-`; nil when the load comes from
    /// elsewhere (`sandhi bench --console`), described then by `externalLoad`.
    let workload: LiveWorkload?
    let externalLoad: String
    let inbox: EventInbox
    let logger: Logger
    let operatorName: String
    private let results = Mutex<[ConsoleMessage]>([])
    private var model: ConsoleModel
    private var context: RenderContext
    private let themeDirectories: [String]
    private var themeName: String

    /// How often the picture of the engine and the header's figures are refreshed.
    static let snapshotIntervalUs: UInt64 = 250_000
    /// How long a key wait lasts: the loop's idle wake-up.
    static let keyWaitMs: Int32 = 100

    private let stopRequested = Atomic<Bool>(false)
    /// What each PostgreSQL participant's server holds prepared, asked every
    /// `databaseProbeIntervalUs` through the participants' workers (the banks are theirs).
    private let databaseFigures = Mutex<[ParticipantID: DatabaseFigures]>([:])
    struct DatabaseFigures: Sendable {
        var prepared: EngineView.PreparedInDatabase
        var locks: [EngineView.DatabaseLock]
    }
    private let databaseProbeRunning = Atomic<Bool>(false)
    private var nextDatabaseProbeUs: UInt64 = 0
    static let databaseProbeIntervalUs: UInt64 = 2_000_000
    /// What one run of the loop did, for `sandhi bench --console`.
    struct Figures: Sendable {
        var frames = 0
        var events = 0
        var dropped = 0
    }
    private(set) var figures = Figures()

    init(node: SandhiNode, workload: LiveWorkload?, externalLoad: String = "", inbox: EventInbox, model: ConsoleModel, context: RenderContext,
         themeDirectories: [String], themeName: String, operatorName: String, logger: Logger) {
        self.node = node
        self.workload = workload
        self.externalLoad = externalLoad
        self.inbox = inbox
        self.model = model
        self.context = context
        self.themeDirectories = themeDirectories
        self.themeName = themeName
        self.operatorName = operatorName
        self.logger = logger
    }

    func post(_ message: ConsoleMessage) { results.withLock { $0.append(message) } }

    /// Makes `run` return at its next turn, as if the operator had quit; the model stays, for
    /// a later `run`.
    func requestStop() { stopRequested.store(true, ordering: .releasing) }

    /// Runs until the operator quits or `requestStop()`. Call on the thread that created
    /// `terminal`.
    func run(terminal: CursesTerminal) {
        var lastRefreshUs: UInt64 = 0
        var dirty = true
        figures = Figures()
        // A stop asked for before the run began ends it at once; either way the next run may go.
        defer { stopRequested.store(false, ordering: .relaxed) }
        while !stopRequested.load(ordering: .acquiring) {
            var commands: [ConsoleCommand] = []
            if let key = terminal.nextKey(timeoutMs: Self.keyWaitMs) {
                commands += model.update(.key(key))
                dirty = true
            }
            let (events, dropped) = inbox.take()
            if dropped > 0 { logger.warning("console fell behind the engine; events dropped", metadata: ["count": "\(dropped)"]) }
            figures.events += events.count
            figures.dropped += dropped
            if !events.isEmpty {
                _ = model.update(.events(events))
                dirty = true
            }
            for message in results.withLock({ let taken = $0; $0.removeAll(); return taken }) {
                commands += model.update(message)
                dirty = true
            }
            let nowUs = MonotonicClock.nowUs()
            if nowUs &- lastRefreshUs >= Self.snapshotIntervalUs {
                lastRefreshUs = nowUs
                probeDatabasesIfDue(nowUs: nowUs)
                _ = model.update(.snapshot(view(nowUs: nowUs)))
                _ = model.update(.tick(nowUs: nowUs))
                dirty = true
            }
            for command in commands {
                if command == .quit { return }
                perform(command)
            }
            if dirty {
                terminal.draw(ConsoleView.render(model, size: terminal.size, context: context))
                figures.frames += 1
                dirty = false
            }
        }
    }

    func view(nowUs: UInt64) -> EngineView {
        let driver = node.driver
        let stats = Dictionary(uniqueKeysWithValues: driver.participantStats.map { ($0.participant, $0.syncs) })
        let databases = databaseFigures.withLock { $0 }
        return EngineView(
            coordinator: driver.snapshot(),
            participants: node.configuration.participants.map {
                EngineView.Participant(id: $0.id, isDown: driver.isDown($0.id), fsyncs: stats[$0.id] ?? 0,
                                       preparedInDatabase: databases[$0.id]?.prepared, databaseLocks: databases[$0.id]?.locks ?? [])
            },
            activeFaults: node.activeFaults.map(\.description), mode: node.configuration.concurrency.rawValue,
            workload: workload.map(Self.describe) ?? externalLoad, takenAtUs: nowUs, halted: driver.haltReason)
    }

    /// Asks the PostgreSQL participants (if any) what their servers hold prepared, in the
    /// background: one probe at a time, its answers shown from the next snapshot on.
    private func probeDatabasesIfDue(nowUs: UInt64) {
        guard nowUs >= nextDatabaseProbeUs, node.configuration.participants.contains(where: { $0.kind == .postgres }) else { return }
        nextDatabaseProbeUs = nowUs + Self.databaseProbeIntervalUs
        guard !databaseProbeRunning.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Task { [self] in
            defer { databaseProbeRunning.store(false, ordering: .releasing) }
            let result = await node.driver.probeParticipants(hold: false) { resource -> DatabaseFigures? in
                guard let bank = resource as? PostgresBank else { return nil }
                let (count, oldest) = try bank.preparedInDatabase()
                let locks = try bank.preparedLocks().map {
                    EngineView.DatabaseLock(gid: $0.gid, kind: $0.kind, relation: $0.relation, mode: $0.mode, granted: $0.granted)
                }
                return DatabaseFigures(prepared: EngineView.PreparedInDatabase(count: count, oldestAgeSeconds: oldest), locks: locks)
            }
            let figures = result.answers.compactMapValues { $0.value ?? nil }
            databaseFigures.withLock { $0 = figures }
        }
    }

    // MARK: - Commands

    private func perform(_ command: ConsoleCommand) {
        switch command {
        case .quit:
            break
        // Operator commands go through `SandhiNode.perform`: the checks the service's API and
        // every other client get.
        case .forceAbort(let tx, let note):
            Task { [self] in
                do {
                    _ = try await node.perform(.abort(tx), actor: operatorName, via: "console", reason: note)
                    post(.commandFinished("aborted \(tx)", ok: true))
                } catch {
                    post(.commandFinished("abort \(tx) refused: \(error)", ok: false))
                }
            }
        case .injectFault(let text):
            let fault: LiveFault
            do {
                fault = try LiveFault.parse(text, participants: node.configuration.participants.map(\.id))
            } catch {
                post(.commandFinished("fault refused: \(error)", ok: false))
                return
            }
            logger.notice("operator injected a fault", metadata: ["fault": "\(fault)"])
            Task { [self] in
                do {
                    _ = try await node.perform(.fault(fault), actor: operatorName, via: "console", reason: "from the console")
                    post(.commandFinished("fault: \(fault)", ok: true))
                } catch {
                    post(.commandFinished("fault refused: \(error)", ok: false))
                    return
                }
                // A crashed coordinator process would be restarted by its supervisor; the console
                // is that supervisor here, so the operator sees recovery resolve what was in doubt.
                if fault == .crashCoordinator {
                    try? await Task.sleep(nanoseconds: 1_500_000_000)
                    do {
                        let report = try await node.restartCoordinator()
                        let resolved = report.resolved.map { "\($0.transaction) \($0.outcome.isCommitted ? "committed" : "aborted")" }
                        post(.commandFinished("coordinator restarted (epoch \(report.epoch)); recovery resolved \(report.resolved.count) in-doubt"
                                              + (resolved.isEmpty ? "" : ": " + resolved.prefix(6).joined(separator: ", ")), ok: true))
                    } catch {
                        post(.commandFinished("coordinator restart failed: \(error)", ok: false))
                    }
                }
            }
        case .resolveHeuristic(let tx, let action, let note):
            Task { [self] in
                do {
                    let result = try await node.perform(.reconcile(tx, action), actor: operatorName, via: "console", reason: note)
                    let settled = node.driver.reconciliation.all.first { $0.transaction == tx }?.isSettled ?? false
                    post(.commandFinished("\(action.rawValue) on \(tx): \(result.summary)", ok: settled))
                } catch {
                    post(.commandFinished("\(action.rawValue) on \(tx) refused: \(error)", ok: false))
                }
                await audit()
            }
        case .runAudit:
            Task { [self] in await audit() }
        case .changeWorkloadRate(let delta):
            guard let workload else { return post(.commandFinished("the load is \(externalLoad)'s; it has no rate to change", ok: false)) }
            if delta > 0 { workload.faster() } else { workload.slower() }
            post(.commandFinished("workload: \(Self.describe(workload))", ok: true))
        case .nextWorkload:
            guard let workload else { return post(.commandFinished("the load is \(externalLoad)'s; it has no other kind", ok: false)) }
            let kinds = LiveWorkload.Kind.allCases.filter { workload.unavailableKinds[$0] == nil }
            guard let current = kinds.firstIndex(of: workload.kind) else { return }
            do {
                try workload.setKind(kinds[(current + 1) % kinds.count])
                post(.commandFinished("workload: \(Self.describe(workload))", ok: true))
            } catch {
                post(.commandFinished("workload: \(error)", ok: false))
            }
        case .nextTheme:
            let names = ThemeLoader.available(in: themeDirectories)
            guard !names.isEmpty else { return }
            let next = names[((names.firstIndex(of: themeName) ?? -1) + 1) % names.count]
            let (theme, error) = ThemeLoader.choose(next, directories: themeDirectories, environment: ProcessInfo.processInfo.environment)
            themeName = next
            context.theme = theme
            post(.commandFinished(error.map { "theme \(next): \($0)" } ?? "theme: \(next)", ok: error == nil))
        }
    }

    static func describe(_ workload: LiveWorkload) -> String {
        "\(workload.kind) \(LiveWorkload.rateLabel(workload.ratePerSecond))"
    }

    private func audit() async {
        do {
            let audit = try await node.liveAudit()
            post(.auditFinished(lines: audit.violations + audit.notes, passed: audit.passed))
        } catch {
            post(.auditFinished(lines: ["the check could not run: \(error)"], passed: false))
        }
    }
}

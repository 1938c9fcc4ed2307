import Foundation
import Logging
import SandhiConsole
import SandhiCursesBackend
import SandhiEngine
import SandhiRuntime
import SandhiTerminalUI
import Synchronization

/// The real console, attached to a running node on a pseudo-terminal of its own, so that
/// `sandhi bench --console` can measure what watching costs the engine. Everything the operator's
/// console does happens here too: engine events into the bounded inbox (pushed under the
/// engine's lock), snapshots of the coordinator four times a second, the model's update, the
/// frame composed and diffed, curses writing the changes to a terminal. On the other side of
/// the terminal a reader stands in for the operator's terminal emulator: it takes every byte
/// drawn and types a screen key (1 to 6, in turn) twice a second, so every screen is drawn.
///
/// Attached and detached in turns: while detached, the console thread is parked and no event
/// is pushed, so the engine runs exactly as it does with no console. Each attachment starts a
/// fresh session (model and inbox), as an operator opening the console would.
final class AttachedConsole: @unchecked Sendable {
    /// What one attachment cost and did.
    struct Phase: Sendable {
        var wallUs: UInt64 = 0
        /// CPU time of the console's thread: events, snapshots, composing, curses.
        var consoleCPUUs: UInt64 = 0
        var frames = 0
        var events = 0
        var dropped = 0
        /// Bytes curses wrote to the terminal.
        var terminalBytes = 0
    }

    static let size = (columns: UInt16(160), rows: UInt16(48))
    /// How often the stand-in operator switches screens.
    static let keyIntervalUs: UInt64 = 500_000

    private struct State {
        var attached = false
        var finished = false
        var terminalBytes = 0
        var phaseEnded: CheckedContinuation<Phase, Never>?
        var closed: CheckedContinuation<Void, Never>?
        var session: ConsoleSession?
    }

    /// Set by `start`, before the threads that read it exist.
    private var node: SandhiNode?
    private let logger: Logger
    private let pseudoTerminal: PseudoTerminal
    private let tap = Atomic<Bool>(false)
    private let inbox = EventInbox()
    private let state = Mutex(State())
    /// Signalled once per attachment, and once more to finish.
    private let gate = DispatchSemaphore(value: 0)

    /// Opens the pseudo-terminal. Made before the node, whose event callback is `observe`.
    init(logger: Logger) throws {
        self.logger = logger
        pseudoTerminal = try PseudoTerminal(size: Self.size)
    }

    /// Starts curses on the pseudo-terminal, on the console's own thread; the console stays
    /// detached until `attach()`.
    func start(node: SandhiNode) async throws {
        self.node = node
        if let failure = await startThreads() { throw UsageFailure("the console could not start: \(failure)") }
    }

    /// For the node's event callback: forwards while attached, one atomic load otherwise.
    func observe(_ event: EngineEvent) {
        if tap.load(ordering: .relaxed) { inbox.push(event) }
    }

    func attach() {
        _ = inbox.take()
        state.withLock { $0.attached = true }
        tap.store(true, ordering: .releasing)
        gate.signal()
    }

    /// Stops the session at its next turn and says what it did while attached.
    func detach() async -> Phase {
        tap.store(false, ordering: .releasing)
        return await withCheckedContinuation { continuation in
            let session = state.withLock { state -> ConsoleSession? in
                state.phaseEnded = continuation
                state.attached = false
                return state.session
            }
            session?.requestStop()
        }
    }

    /// Gives the terminal back and ends both threads.
    func close() async {
        await withCheckedContinuation { continuation in
            state.withLock {
                $0.finished = true
                $0.closed = continuation
            }
            gate.signal()
        }
    }

    // MARK: - Threads

    private func startThreads() async -> String? {
        let failure: String? = await withCheckedContinuation { ready in
            startThread(name: "sandhi-console") { [self] in consoleThread(ready) }
        }
        if failure == nil {
            startThread(name: "sandhi-console-reader") { [self] in readerThread() }
        }
        return failure
    }

    private func consoleThread(_ ready: CheckedContinuation<String?, Never>) {
        guard let node else { return ready.resume(returning: "no node to watch") }
        let terminal: CursesTerminal
        do {
            terminal = try CursesTerminal(pseudoTerminal: pseudoTerminal)
        } catch {
            ready.resume(returning: "\(error)")
            return
        }
        ready.resume(returning: nil)
        let context = RenderContext(theme: Theme.builtIn.adapted(to: terminal.colorDepth), glyphs: terminal.glyphs)
        while true {
            gate.wait()
            if state.withLock({ $0.finished }) { break }
            let session = ConsoleSession(
                node: node, workload: nil, externalLoad: "bench", inbox: inbox, model: ConsoleModel(readOnly: true),
                context: context, themeDirectories: [], themeName: "default", operatorName: "bench", logger: logger)
            state.withLock { $0.session = session }
            // A stop asked for before the session existed.
            if !state.withLock({ $0.attached }) { session.requestStop() }
            let startWallUs = MonotonicClock.nowUs(), startCPUUs = Self.threadCPUUs()
            let bytesBefore = state.withLock { $0.terminalBytes }
            session.run(terminal: terminal)
            var phase = Phase()
            phase.wallUs = MonotonicClock.nowUs() - startWallUs
            phase.consoleCPUUs = Self.threadCPUUs() - startCPUUs
            phase.frames = session.figures.frames
            phase.events = session.figures.events
            phase.dropped = session.figures.dropped
            let ended = state.withLock { state -> CheckedContinuation<Phase, Never>? in
                phase.terminalBytes = state.terminalBytes - bytesBefore
                state.session = nil
                defer { state.phaseEnded = nil }
                return state.phaseEnded
            }
            ended?.resume(returning: phase)
        }
        terminal.restore()
        let closed = state.withLock { state -> CheckedContinuation<Void, Never>? in
            defer { state.closed = nil }
            return state.closed
        }
        closed?.resume()
    }

    /// The operator's side of the terminal: reads everything drawn, types screen keys.
    private func readerThread() {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var nextKeyUs = MonotonicClock.nowUs() + Self.keyIntervalUs
        var screen = 0
        while true {
            let (attached, finished) = state.withLock { ($0.attached, $0.finished) }
            if finished { return }
            guard let count = pseudoTerminal.drain(into: &buffer, timeoutMs: 50) else { return }
            if count > 0 { state.withLock { $0.terminalBytes += count } }
            let nowUs = MonotonicClock.nowUs()
            if attached && nowUs >= nextKeyUs {
                screen = screen % 6 + 1
                pseudoTerminal.type(String(screen))
                nextKeyUs = nowUs + Self.keyIntervalUs
            }
        }
    }

    static func threadCPUUs() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}

import DequeModule
import Logging
import SandhiEngine
import SandhiParticipants

/// A background load generator for a running `SandhiNode`: the console's live workload, whose
/// kind and rate an operator changes while it runs (`setKind`, `setRate`, `faster`/`slower`
/// for the `+`/`-` keys).
///
/// Kinds (LiveWorkload+Plans.swift): `mumbai`, the consolidation of DESIGN.md scaled down;
/// `random`, small transfers between random accounts of random banks (a random walk, so no
/// balance stays empty for long); `contention`, small transfers among a few hot accounts in
/// random order, so locks queue and deadlocks happen.
///
/// One dispatcher paces transfers to the target rate (transfers begun per second; 0 pauses,
/// `unlimited` runs closed-loop) and starts each as a task, at most `maxInFlight` at once.
/// Each task sees its transfer through: a deadlock victim or lock timeout is run again with
/// back-off (up to `maxRetries`); a transfer that throws `halted` (the coordinator crashed or
/// is restarting) is counted as failed and tried again later, against `node.driver` as it is
/// then (after `restartCoordinator`, the new incarnation), with back-off up to a second. The
/// workload survives every live fault this way, and stops only when told (`stop`; a stopped
/// node leaves it retrying once a second until then).
///
/// The accounts to draw from are read before the node starts (`readAccounts`): a running node
/// holds its bank files exclusively. Money is integer paise throughout.
public final class LiveWorkload: Sendable {
    public enum Kind: String, Sendable, CaseIterable, CustomStringConvertible {
        case mumbai, random, contention
        public var description: String { rawValue }
    }

    public typealias AccountMap = TransferBench.AccountMap

    public struct Options: Sendable {
        public var kind: Kind = .random
        /// Transfers begun per second; 0 pauses; `LiveWorkload.unlimited` does not pace.
        public var ratePerSecond = 20
        /// Transfers in flight at once, at most, retries included (a bound on every queue).
        public var maxInFlight = 32
        public var seed: UInt64 = 1
        /// Largest amount of a random or contention transfer, and of one consolidation leg.
        public var maxAmount: Paise = .rupees(100)
        /// One consolidation in this many is at the report threshold (0: none).
        public var largeEvery = 200
        /// Committed consolidations paid back to their sources by one disbursement.
        public var disburseEvery = 16
        /// Accounts the contention kind moves money between.
        public var hotAccounts = 4
        /// Times a transfer that lost a deadlock or timed out on a lock is run again.
        public var maxRetries = 20
        public init() {}
    }

    /// What the workload has done so far.
    public struct Counters: Sendable, Equatable {
        /// Transfers begun (each once, however many attempts it takes): what the rate paces.
        public var begun = 0
        /// Transactions handed to the coordinator, retries included.
        public var submitted = 0
        public var committed = 0
        /// Aborted attempts by cause (`deadlock`, `lock-timeout`, `insufficient-funds`, ...).
        public var abortedByCause: [String: Int] = [:]
        /// Attempts that threw: `halted` (coordinator crashed, restarting) ones are tried again.
        public var failed = 0
        /// Attempts run again after a transient abort.
        public var retries = 0
        /// Transfers under way now (waiting for an answer or backing off).
        public var inFlight = 0
        /// Why the last failed attempt failed.
        public var lastFailure: String?

        public var aborted: Int { abortedByCause.values.reduce(0, +) }
    }

    /// Why a kind cannot run on these accounts.
    public struct Unavailable: Error, CustomStringConvertible, Equatable {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// No pacing: `maxInFlight` transfers always under way.
    public static let unlimited = Int.max
    /// The rates `faster` and `slower` step through.
    public static let rateSteps = [0, 1, 5, 20, 100, 500, 2_000, unlimited]
    /// A transfer that threw waits this long before it is tried again, at most.
    static let maxFailureBackoffUs: UInt64 = 1_000_000
    /// Consolidations waiting to be paid back, at most; beyond it the oldest stay with the target.
    static let maxPendingConsolidations = 4_096
    /// How far behind its schedule the pacer may fall and then catch up in a burst.
    static let maxBurstUs: UInt64 = 50_000
    /// The dispatcher sleeps at most this long at a time, so a new rate takes effect at once.
    static let paceSliceUs: UInt64 = 25_000

    private struct Control {
        var kind: Kind
        var ratePerSecond: Int
        var stopped = false
        var inFlight = 0
        var nextSlotUs: UInt64 = 0
        var sequence = 0
        var pending = Deque<Consolidation>()
        /// The dispatcher waiting for a change (a rate, a free slot, the stop), and a change that
        /// came while it was not waiting.
        var waiting: CheckedContinuation<Void, Never>?
        var changed = false
    }

    public let node: SandhiNode
    let options: Options
    let plans: Plans
    private let control: Lock<Control>
    private let tally = Lock(Counters())
    private let dispatcher: Lock<Task<Void, Never>?> = Lock(nil)

    /// Starts generating load on `node` from `accounts` (`readAccounts`). Throws `Unavailable`
    /// if `options.kind` cannot run on these accounts.
    public static func start(node: SandhiNode, accounts: AccountMap, options: Options = Options()) throws -> LiveWorkload {
        let workload = LiveWorkload(node: node, accounts: accounts, options: options)
        if let why = workload.plans.unavailable[options.kind] { throw Unavailable(why) }
        let task = Task { await workload.dispatch() }
        workload.dispatcher.withLock { $0 = task }
        return workload
    }

    private init(node: SandhiNode, accounts: AccountMap, options: Options) {
        precondition(options.maxInFlight > 0 && options.ratePerSecond >= 0 && options.disburseEvery > 0)
        self.node = node
        self.options = options
        self.plans = Self.plans(accounts: accounts, configuration: node.configuration, options: options)
        self.control = Lock(Control(kind: options.kind, ratePerSecond: options.ratePerSecond))
    }

    /// Reads every bank's accounts. The banks must not be open by a running node: call it
    /// before `SandhiNode.start`, holding the directory's lock (which `start(lock:)` adopts).
    public static func readAccounts(directory: DataDirectory, configuration: SandhiConfiguration, logger: Logger) throws -> AccountMap {
        var accounts: AccountMap = [:]
        for participant in configuration.participants {
            let bank = try directory.openBank(participant, of: configuration, logger: logger)
            defer { bank.close() }
            accounts[participant.id] = try bank.balances().map(\.account)
        }
        return accounts
    }

    // MARK: - Control

    public var kind: Kind { control.withLock { $0.kind } }
    public var ratePerSecond: Int { control.withLock { $0.ratePerSecond } }
    public var counters: Counters {
        let inFlight = control.withLock { $0.inFlight }
        var counters = tally.withLock { $0 }
        counters.inFlight = inFlight
        return counters
    }

    /// Kinds that can run on these accounts, and why the others cannot.
    public var unavailableKinds: [Kind: String] { plans.unavailable }

    /// Switches the kind of the transfers begun from now on.
    public func setKind(_ kind: Kind) throws(Unavailable) {
        if let why = plans.unavailable[kind] { throw Unavailable(why) }
        change { $0.kind = kind }
    }

    /// Sets the target rate in transfers begun per second (0 pauses: transfers under way
    /// finish, none begins; `unlimited` stops pacing).
    public func setRate(_ perSecond: Int) {
        precondition(perSecond >= 0, "a rate is 0 or more")
        change { control in
            control.ratePerSecond = perSecond
            control.nextSlotUs = 0
        }
    }

    /// One step up `rateSteps` from the current rate; returns the new rate.
    @discardableResult
    public func faster() -> Int { step(up: true) }

    /// One step down `rateSteps`; returns the new rate.
    @discardableResult
    public func slower() -> Int { step(up: false) }

    /// The step after (or before) `rate`, for a rate on or between steps.
    public static func rate(after rate: Int, up: Bool) -> Int {
        up ? rateSteps.first { $0 > rate } ?? unlimited : rateSteps.last { $0 < rate } ?? 0
    }

    /// `paused`, `20/s`, `max`.
    public static func rateLabel(_ rate: Int) -> String {
        rate == 0 ? "paused" : rate == unlimited ? "max" : "\(rate)/s"
    }

    private func step(up: Bool) -> Int {
        var rate = 0
        change { control in
            control.ratePerSecond = Self.rate(after: control.ratePerSecond, up: up)
            control.nextSlotUs = 0
            rate = control.ratePerSecond
        }
        return rate
    }

    /// Stops beginning transfers and waits for those under way (each waits for its answer:
    /// at most the prepare timeout; a back-off ends at once).
    public func stop() async {
        change { $0.stopped = true }
        let task = dispatcher.withLock { $0 }
        task?.cancel()
        await task?.value
    }

    // MARK: - Running

    private func change(_ body: (inout Control) -> Void) {
        let waiting = control.withLock { control -> CheckedContinuation<Void, Never>? in
            body(&control)
            defer { control.waiting = nil }
            if control.waiting == nil { control.changed = true }
            return control.waiting
        }
        waiting?.resume()
    }

    /// Returns at once if something changed since the last wait, else at the next change.
    private func waitForChange() async {
        await withCheckedContinuation { continuation in
            let now = control.withLock { control -> Bool in
                if control.changed || control.stopped {
                    control.changed = false
                    return true
                }
                control.waiting = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func dispatch() async {
        var random = SplitMix64(seed: options.seed)
        await withDiscardingTaskGroup { group in
            while let (job, seed) = await nextJob(&random) {
                group.addTask { await self.run(job, seed: seed) }
            }
        }
    }

    private enum Pace {
        case stop, wait, sleep(UInt64), go(Job)
    }

    /// Waits for the rate to allow a transfer and for a free slot, then takes both.
    private func nextJob(_ random: inout SplitMix64) async -> (Job, UInt64)? {
        while true {
            let nowUs = MonotonicClock.nowUs()
            let pace = control.withLock { control -> Pace in
                if control.stopped { return .stop }
                if control.ratePerSecond == 0 || control.inFlight >= options.maxInFlight { return .wait }
                if control.ratePerSecond != Self.unlimited {
                    let intervalUs = max(1, 1_000_000 / UInt64(control.ratePerSecond))
                    let slotUs = max(control.nextSlotUs, nowUs &- Self.maxBurstUs)
                    if slotUs > nowUs { return .sleep(min(slotUs - nowUs, Self.paceSliceUs)) }
                    control.nextSlotUs = slotUs + intervalUs
                }
                control.inFlight += 1
                control.sequence += 1
                return .go(Self.job(control.kind, plans: plans, options: options, pending: &control.pending,
                                    sequence: control.sequence, random: &random))
            }
            switch pace {
            case .stop: return nil
            case .wait: await waitForChange()
            case .sleep(let us): try? await Task.sleep(nanoseconds: us * 1_000)
            case .go(let job): return (job, random.next())
            }
        }
    }

    private var stopped: Bool { control.withLock { $0.stopped } }

    /// Sees one transfer through: retries after transient aborts and after failures.
    private func run(_ job: Job, seed: UInt64) async {
        tally.withLock { $0.begun += 1 }
        var random = SplitMix64(seed: seed)
        var attempt = 0, failures = 0
        while !stopped {
            tally.withLock { $0.submitted += 1 }
            let outcome: Outcome
            do {
                outcome = try await node.driver.transfer(job.branches, answerWhen: .decided).outcome
            } catch {
                tally.withLock { $0.failed += 1; $0.lastFailure = "\(error)" }
                // Only a halted coordinator goes away (a restart); any other refusal would
                // come back every time.
                guard case .halted = error as? CoordinatorError else { break }
                failures += 1
                let ceilingUs = min(Self.maxFailureBackoffUs, UInt64(10_000) << UInt64(min(failures, 10)))
                try? await Task.sleep(nanoseconds: (ceilingUs / 2 + random.next() % ceilingUs) * 1_000)
                continue
            }
            guard case .aborted(_, let cause, let refusal) = outcome else {
                tally.withLock { $0.committed += 1 }
                if let consolidation = job.consolidation {
                    control.withLock { control in
                        if control.pending.count >= Self.maxPendingConsolidations { control.pending.removeFirst() }
                        control.pending.append(consolidation)
                    }
                }
                break
            }
            tally.withLock { $0.abortedByCause[TransferBench.causeLabel(cause, refusal: refusal), default: 0] += 1 }
            guard cause.isTransient, attempt < options.maxRetries else { break }
            attempt += 1
            tally.withLock { $0.retries += 1 }
            // Back off with jitter, so the losers of a deadlock do not collide again at once.
            let ceilingUs = UInt64(100) << UInt64(min(attempt, 7))
            try? await Task.sleep(nanoseconds: (ceilingUs / 2 + random.next() % ceilingUs) * 1_000)
        }
        change { $0.inFlight -= 1 }
    }
}

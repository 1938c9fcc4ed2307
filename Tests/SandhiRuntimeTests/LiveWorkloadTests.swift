import SandhiEngine
import SandhiParticipants
@testable import SandhiRuntime
import SandhiTestSupport
import Testing

/// The console's live workload on a real node: it keeps to its rate, pauses, changes kind, and
/// keeps going across live faults; and whatever it did, the books balance afterwards.
@Suite struct LiveWorkloadTests {
    typealias B = ThreeBanks
    typealias M = MumbaiBanks

    /// Reads the accounts, starts a node and the workload on it.
    static func start(_ directory: DataDirectory, events: EventRecorder? = nil, _ options: LiveWorkload.Options) async throws -> (SandhiNode, LiveWorkload) {
        let lock = try directory.lock()
        let accounts = try LiveWorkload.readAccounts(directory: directory, configuration: directory.loadConfiguration(), logger: B.logger)
        let node = try await SandhiNode.start(directory: directory, lock: lock, logger: B.logger) { events?.record($0) }
        do {
            return (node, try LiveWorkload.start(node: node, accounts: accounts, options: options))
        } catch {
            node.stop()
            throw error
        }
    }

    /// Stops the workload, lets the node finish what is in flight, stops it, and checks every
    /// invariant from storage.
    static func stopAndAudit(_ workload: LiveWorkload, _ node: SandhiNode, _ directory: DataDirectory) async throws -> InvariantAudit {
        await workload.stop()
        #expect(workload.counters.inFlight == 0)
        #expect(await eventually { node.driver.inFlightCount == 0 }, "transactions still in flight after the workload stopped")
        node.stop()
        let audit = try directory.auditAtRest()
        #expect(audit.violations == [])
        return audit
    }

    static func options(_ kind: LiveWorkload.Kind, rate: Int, maxInFlight: Int = 8) -> LiveWorkload.Options {
        var options = LiveWorkload.Options()
        options.kind = kind
        options.ratePerSecond = rate
        options.maxInFlight = maxInFlight
        return options
    }

    @Test func keepsToItsRateAndPausesAtZero() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let (node, workload) = try await Self.start(banks.directory, Self.options(.random, rate: 50))
        #expect(await eventually { workload.counters.committed >= 5 })
        // Not faster than the rate, and not much slower. Nominally 480 ms; the slack is the
        // pacer's catch-up burst (50 ms) plus jobs already taken but not yet counted as begun
        // when `before` is read (seen: 399 ms on a loaded machine). Unpaced, 25 take ~50 ms.
        let startUs = MonotonicClock.nowUs(), before = workload.counters.begun
        #expect(await eventually(timeoutMs: 3_000) { workload.counters.begun >= before + 25 })
        let elapsedUs = MonotonicClock.nowUs() - startUs
        #expect(elapsedUs >= 300_000, "25 transfers at 50/s took \(elapsedUs)µs")

        workload.setRate(0)
        #expect(await eventually { workload.counters.inFlight == 0 })
        let paused = workload.counters
        // Nothing begins while paused: an interval with no new transfer is the thing to show.
        try await Task.sleep(for: .milliseconds(300))
        #expect(workload.counters == paused)

        #expect(workload.faster() == 1 && workload.slower() == 0)
        workload.setRate(LiveWorkload.unlimited)
        #expect(LiveWorkload.rateLabel(workload.ratePerSecond) == "max")
        #expect(await eventually { workload.counters.committed >= paused.committed + 20 })
        let audit = try await Self.stopAndAudit(workload, node, banks.directory)
        #expect(audit.total == .rupees(3_000))
    }

    @Test func rateStepsGoThroughTheConsolesSteps() {
        #expect(LiveWorkload.rate(after: 0, up: true) == 1)
        #expect(LiveWorkload.rate(after: 20, up: true) == 100)
        #expect(LiveWorkload.rate(after: 30, up: true) == 100 && LiveWorkload.rate(after: 30, up: false) == 20)
        #expect(LiveWorkload.rate(after: 2_000, up: true) == LiveWorkload.unlimited)
        #expect(LiveWorkload.rate(after: LiveWorkload.unlimited, up: true) == LiveWorkload.unlimited)
        #expect(LiveWorkload.rate(after: LiveWorkload.unlimited, up: false) == 2_000)
        #expect(LiveWorkload.rate(after: 0, up: false) == 0)
        #expect(LiveWorkload.rateLabel(0) == "paused" && LiveWorkload.rateLabel(20) == "20/s")
    }

    @Test func switchesKindWhileRunning() async throws {
        let banks = try MumbaiBanks(); defer { banks.remove() }
        let events = EventRecorder()
        var options = Self.options(.random, rate: LiveWorkload.unlimited, maxInFlight: 16)
        options.largeEvery = 5
        options.disburseEvery = 4
        let (node, workload) = try await Self.start(banks.directory, events: events, options)
        #expect(await eventually { workload.counters.committed >= 10 })
        #expect(!Self.began(events).contains { $0.contains(M.tax) }, "random transfers leave the compliance ledgers alone")

        try workload.setKind(.contention)
        #expect(workload.kind == .contention)
        // A few hot accounts in random order: transfers queue for locks and deadlock, and the
        // victims are run again.
        #expect(await eventually { workload.counters.abortedByCause["deadlock", default: 0] > 0 && workload.counters.retries > 0 })

        try workload.setKind(.mumbai)
        #expect(await eventually {
            let began = Self.began(events)
            // Consolidations with TDS and, at the threshold, a report; and disbursements back.
            return began.contains { $0.contains(M.tax) && $0.contains(M.regulator) }
                && began.contains { $0 == [M.hdfc, M.icici, M.axis, M.sbi] }
        })
        let audit = try await Self.stopAndAudit(workload, node, banks.directory)
        #expect(audit.total == M.opening + M.opening + M.opening)
        let tax = try banks.bank(M.tax), regulator = try banks.bank(M.regulator)
        defer { tax.close(); regulator.close() }
        #expect(try tax.balance(of: M.tds)! > .zero)
        #expect(try regulator.reports().contains { $0.report.amount >= .rupees(300) && $0.report.kind == "large-transaction" })
    }

    @Test func aKindThatCannotRunOnTheseAccountsIsRefused() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        defer { node.stop() }
        let one: LiveWorkload.AccountMap = [B.hdfc: [B.alice]]
        #expect(throws: LiveWorkload.Unavailable.self) { try LiveWorkload.start(node: node, accounts: one, options: Self.options(.random, rate: 1)) }
        let workload = try LiveWorkload.start(node: node, accounts: [B.hdfc: [B.alice], B.sbi: [B.carol]], options: Self.options(.random, rate: 0))
        #expect(workload.unavailableKinds.isEmpty)
        await workload.stop()
    }

    @Test func keepsGoingAcrossCoordinatorAndParticipantCrashes() async throws {
        let banks = try ThreeBanks(prepareTimeoutMs: 500); defer { banks.remove() }
        let (node, workload) = try await Self.start(banks.directory, Self.options(.random, rate: 200))
        #expect(await eventually { workload.counters.committed >= 10 })

        try await node.inject(.crashCoordinator)
        #expect(await eventually { workload.counters.failed > 0 }, "transfers against the crashed coordinator fail, and are counted")
        #expect(workload.counters.lastFailure?.contains("halted") == true)
        let beforeRestart = workload.counters.committed
        try await node.inject(.restartCoordinator)
        #expect(await eventually { workload.counters.committed >= beforeRestart + 10 }, "the workload carries on against the new incarnation")

        try await node.inject(.crashParticipant(B.icici))
        #expect(await eventually { workload.counters.abortedByCause["prepare-timeout", default: 0] > 0 })
        let beforeParticipant = workload.counters.committed
        try await node.inject(.restartParticipant(B.icici))
        #expect(await eventually { workload.counters.committed >= beforeParticipant + 10 })
        let audit = try await Self.stopAndAudit(workload, node, banks.directory)
        #expect(audit.total == .rupees(3_000))
    }

    @Test func aDisbursementPaysBackEachConsolidationsNetToItsLegs() throws {
        let hdfc = ResourceID(participant: M.hdfc, account: M.client), icici = ResourceID(participant: M.icici, account: M.client)
        let sbi = ResourceID(participant: M.sbi, account: M.client)
        let plan = LiveWorkload.MumbaiPlan(sources: [(M.hdfc, [M.client]), (M.icici, [M.client])], target: (M.sbi, [M.client]),
                                           tds: nil, tdsBasisPoints: 100, reportLedger: nil, reportThreshold: .rupees(10))
        let batch = [
            LiveWorkload.Consolidation(legs: [(hdfc, Paise(300)), (icici, Paise(100))], target: sbi, gross: Paise(400), net: Paise(396)),
            LiveWorkload.Consolidation(legs: [(hdfc, Paise(1)), (icici, Paise(1))], target: sbi, gross: Paise(2), net: Paise(2)),
        ]
        let branches = LiveWorkload.disbursement(batch, plan: plan)
        // 396 × 300/400 = 297 to hdfc and the rest, 99, to icici; then 1 each.
        #expect(branches == [
            Branch(participant: M.hdfc, operations: [.credit(account: M.client, amount: Paise(298))]),
            Branch(participant: M.icici, operations: [.credit(account: M.client, amount: Paise(100))]),
            Branch(participant: M.sbi, operations: [.debit(account: M.client, amount: Paise(398))]),
        ])
        #expect(Coordinator.imbalance(branches) == nil)
        #expect(LiveWorkload.share(of: Paise(Int64.max / 2), Paise(Int64.max / 2), of: Paise(Int64.max)) == Paise(Int64.max / 4))
    }

    /// The participants of every transaction begun so far.
    static func began(_ events: EventRecorder) -> [[ParticipantID]] {
        events.all.compactMap { if case .began(_, let participants, _) = $0.kind { participants } else { nil } }
    }
}

// Every edge of the coordinator's state diagram (see the header of Coordinator.swift), with
// the effects each edge must and must not produce.
import Testing
import SandhiEngine

@Suite("Coordinator transitions")
struct CoordinatorTransitionTests {
    let t1 = Fixture.tx(1)
    let hdfc = Fixture.hdfc, icici = Fixture.icici, axis = Fixture.axis, sbi = Fixture.sbi

    // MARK: begin / active

    @Test func beginTracksAnActiveTransactionAndSendsNothing() {
        var h = CoordinatorHarness()
        let effects = h.begin(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)])

        #expect(h.state(t1) == .active)
        #expect(h.coordinator.inFlightCount == 1)
        #expect(effects.sends.isEmpty)
        #expect(effects.timersSet.isEmpty)
        #expect(effects.decisions.isEmpty)
        #expect(effects.events == [.began(t1, participants: [hdfc, sbi], amount: Paise(10_000))])
        #expect(h.transaction(t1)?.branches.map(\.status) == [.idle, .idle])
        #expect(h.transaction(t1)?.beganAtUs == h.nowUs)
    }

    @Test func requestCommitSendsPrepareToEveryBranchAndSetsThePrepareDeadline() throws {
        var h = CoordinatorHarness { $0.prepareTimeoutMs = 1_234 }
        let branches = [Fixture.debit(hdfc), Fixture.read(axis), Fixture.credit(sbi)]
        h.begin(t1, branches)
        let effects = h.requestCommit(t1)

        #expect(h.state(t1) == .preparing)
        #expect(effects.stateChanges.map(\.from) == [.active])
        #expect(effects.stateChanges.map(\.to) == [.preparing])
        // PREPARE to every branch, read-only ones included, each with its own operations; the
        // writers list names only the branches that have something to commit.
        #expect(effects.sends == branches.map {
            Sent(participant: $0.participant, message: .prepare(t1, operations: $0.operations, writers: [hdfc, sbi]))
        })
        #expect(effects.events.filter { if case .prepareSent = $0 { return true } else { return false } }.count == 3)
        let timer = try #require(effects.timersSet.first)
        #expect(effects.timersSet.count == 1)
        #expect(timer.timer.kind == .prepareDeadline)
        #expect(timer.timer.transaction == t1)
        #expect(timer.afterUs == 1_234_000)
        #expect(h.transaction(t1)?.branches.map(\.status) == Array(repeating: .awaitingVote(sentAtUs: h.nowUs), count: 3))
        #expect(effects.appends.isEmpty)
    }

    @Test func requestCommitIsIgnoredUnlessActive() {
        var h = CoordinatorHarness()
        #expect(h.requestCommit(t1).isEmpty, "unknown transaction")
        h.startPreparing(t1, [Fixture.debit(hdfc)])
        #expect(h.requestCommit(t1).isEmpty, "already preparing: no second round of PREPAREs")
        #expect(h.state(t1) == .preparing)
    }

    @Test func requestAbortWhileActiveAbortsWithoutSendingAnything() {
        var h = CoordinatorHarness()
        h.begin(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)])
        let effects = h.requestAbort(t1, reason: "client cancelled")

        #expect(effects.sends.isEmpty, "nothing was prepared, so there is nothing to roll back")
        #expect(effects.appends.isEmpty)
        #expect(effects.timersSet.isEmpty)
        #expect(effects.decisions == [Decision(transaction: t1, outcome: .aborted(reason: "client cancelled", cause: .requested))])
        #expect(effects.finishes == [Decision(transaction: t1, outcome: .aborted(reason: "client cancelled", cause: .requested))])
        #expect(effects.stateChanges.map(\.to) == [.aborting, .aborted])
        #expect(h.state(t1) == nil, "forgotten")
        #expect(h.coordinator.inFlightCount == 0)
    }

    // MARK: preparing -> prepared -> committing -> committed

    @Test func allYesForcesTheCommitRecordAndSendsNothingUntilItIsDurable() throws {
        var h = CoordinatorHarness()
        h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.debit(icici), Fixture.credit(sbi)])
        let deadline = try #require(h.liveTimer(of: t1))

        let first = h.vote(t1, hdfc, .yes)
        let second = h.vote(t1, icici, .yes)
        #expect(h.state(t1) == .preparing)
        #expect((first + second).appends.isEmpty, "no decision before the last vote")

        let last = h.vote(t1, sbi, .yes)
        #expect(h.state(t1) == .prepared)
        #expect(last.appends == [Appended(record: .commit(transaction: t1, participants: [hdfc, icici, sbi]), forced: true)])
        #expect(last.timersCancelled == [deadline], "the prepare deadline no longer applies")
        #expect(last.sends.isEmpty)
        #expect(last.decisions.isEmpty, "the client hears nothing until the COMMIT record is durable")
        #expect(last.events.contains(.decisionLogging(t1)))
        #expect(h.liveTimer(of: t1) == nil, "no timer while the record is being forced")

        // Whatever arrives while the record is being forced, no COMMIT leaves.
        h.vote(t1, hdfc, .yes)
        h.requestAbort(t1)
        h.ack(t1, icici)
        #expect(h.history.committed.isEmpty)
        #expect(h.history.decisions.isEmpty)
        #expect(h.state(t1) == .prepared)
    }

    @Test func decisionDurableSendsCommitToYesVotersOnlyAndDecides() throws {
        var h = CoordinatorHarness { $0.resendInitialMs = 70 }
        h.prepare(t1, [Fixture.debit(hdfc), Fixture.read(axis), Fixture.credit(sbi)],
                  votes: [(hdfc, .yes), (axis, .readOnly), (sbi, .yes)])
        #expect(h.history.appends == [Appended(record: .commit(transaction: t1, participants: [hdfc, sbi]), forced: true)],
                "the record names only the participants that must hear COMMIT")
        #expect(h.history.committed.isEmpty)

        let position = LogPosition(segment: 3, offset: 4_096)
        let effects = h.handle(.decisionDurable(t1, position: position))

        #expect(h.state(t1) == .committing)
        #expect(effects.committed == [hdfc, sbi])
        #expect(!effects.committed.contains(axis), "a READ-ONLY voter skips phase two")
        #expect(effects.rolledBack.isEmpty)
        #expect(effects.decisions == [Decision(transaction: t1, outcome: .committed)])
        #expect(effects.finishes.isEmpty)
        #expect(effects.stateChanges.map(\.to) == [.committing])
        #expect(effects.timersSet.map(\.timer.kind) == [.resend])
        #expect(effects.timersSet.map(\.afterUs) == [70_000])
        #expect(h.transaction(t1)?.decisionPosition == position)
        #expect(h.status(t1, axis) == .acknowledged)
        #expect(h.status(t1, hdfc) == .awaitingAck(sentAtUs: h.nowUs))
        // The durable event comes before the first COMMIT.
        let durableIndex = try #require(effects.firstIndex {
            if case .decisionDurable(t1, position, _)? = $0.event?.kind { return true } else { return false }
        })
        let firstCommit = try #require(effects.firstIndex { $0.sent?.message == .commit(t1) })
        #expect(durableIndex < firstCommit)
    }

    @Test func lastAcknowledgementAppendsAnUnforcedEndAndForgetsTheTransaction() throws {
        var h = CoordinatorHarness()
        h.prepare(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)], votes: [(hdfc, .yes), (sbi, .yes)])
        h.durable(t1)
        let resend = try #require(h.liveTimer(of: t1))

        let first = h.ack(t1, sbi)
        #expect(h.state(t1) == .committing)
        #expect(first.finishes.isEmpty)
        #expect(first.appends.isEmpty)
        #expect(h.status(t1, sbi) == .acknowledged)

        let last = h.ack(t1, hdfc)
        #expect(last.appends == [Appended(record: .end(transaction: t1), forced: false)])
        #expect(last.finishes == [Decision(transaction: t1, outcome: .committed)])
        #expect(last.decisions.isEmpty, "decided once, at decisionDurable")
        #expect(last.timersCancelled == [resend])
        #expect(last.stateChanges.map(\.to) == [.committed])
        #expect(h.state(t1) == nil)
        #expect(h.coordinator.transactions.isEmpty)
        #expect(h.liveTimers.isEmpty)
        #expect(h.history.decisions.count == 1)
        #expect(h.history.finishes.count == 1)
    }

    @Test(arguments: [1, 2, 4])
    func allReadOnlyCommitsWithoutLogOrPhaseTwo(participants: Int) {
        var h = CoordinatorHarness()
        let all = [hdfc, icici, axis, sbi].prefix(participants)
        h.startPreparing(t1, all.map { Fixture.read($0) })
        #expect(h.history.prepared == Array(all), "read-only branches are still asked to PREPARE (validate their reads)")
        let beforeVotes = h.history.count
        for participant in all { h.vote(t1, participant, .readOnly) }
        let effects = Array(h.history[beforeVotes...])

        #expect(effects.appends.isEmpty, "nothing to log")
        #expect(effects.sends.isEmpty, "nothing to send")
        #expect(effects.decisions == [Decision(transaction: t1, outcome: .committed)])
        #expect(effects.finishes == [Decision(transaction: t1, outcome: .committed)])
        #expect(effects.stateChanges.map(\.from) == [.preparing])
        #expect(effects.stateChanges.map(\.to) == [.committed])
        #expect(h.state(t1) == nil)
        #expect(h.liveTimers.isEmpty, "the prepare deadline was cancelled")
    }

    @Test func decisionFailedIsFatalAndSendsNothing() {
        var h = CoordinatorHarness()
        h.prepare(t1, [Fixture.debit(hdfc)], votes: [(hdfc, .yes)])
        let effects = h.handle(.decisionFailed(t1, reason: "EIO on fsync"))

        #expect(effects.fatals.count == 1)
        #expect(effects.fatals.first?.contains("EIO on fsync") == true)
        #expect(effects.fatals.first?.contains(t1.description) == true)
        #expect(effects.events.contains { if case .fatal = $0 { return true } else { return false } })
        #expect(effects.sends.isEmpty, "neither COMMIT nor ROLLBACK: the outcome is unknown until recovery")
        #expect(effects.decisions.isEmpty)
        #expect(effects.finishes.isEmpty)
        #expect(h.state(t1) == .prepared)
    }

    @Test func decisionFailedForAnUnknownTransactionDoesNothing() {
        var h = CoordinatorHarness()
        #expect(h.handle(.decisionFailed(t1, reason: "EIO")).isEmpty)
    }

    // MARK: preparing -> aborting -> aborted

    @Test func noVoteRollsBackYesVotersAndPendingButNotTheNoVoter() throws {
        var h = CoordinatorHarness()
        h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.debit(icici), Fixture.read(axis), Fixture.credit(sbi)])
        h.vote(t1, hdfc, .yes)
        h.vote(t1, axis, .readOnly)
        let effects = h.vote(t1, icici, Fixture.no(icici))

        #expect(h.state(t1) == .aborting)
        #expect(Set(effects.rolledBack) == [hdfc, sbi], "the YES voter and the participant whose vote is pending")
        #expect(effects.rolledBack.count == 2)
        #expect(!effects.rolledBack.contains(icici), "the NO voter holds nothing")
        #expect(!effects.rolledBack.contains(axis), "the READ-ONLY voter holds nothing")
        #expect(effects.committed.isEmpty)
        #expect(effects.appends.isEmpty, "presumed abort: nothing is logged")
        let decision = try #require(effects.decisions.first)
        #expect(effects.decisions.count == 1)
        let reason = try #require(decision.outcome.abortReason)
        #expect(reason == "icici voted NO: insufficient funds in icici/savings: balance ₹0.00, debit ₹100.00")
        #expect(decision.outcome.abortCause == .participantRefused)
        #expect(decision.outcome.refusal == Fixture.insufficientFunds(icici), "the refusal itself, for programs")
        #expect(effects.timersCancelled.count == 1, "the prepare deadline")
        #expect(effects.timersSet.map(\.timer.kind) == [.resend])
        #expect(h.transaction(t1)?.abortReason == reason)
        #expect(h.status(t1, icici) == .acknowledged)
        #expect(h.status(t1, axis) == .acknowledged)
        #expect(h.status(t1, hdfc) == .awaitingAck(sentAtUs: h.nowUs))
        #expect(h.status(t1, sbi) == .awaitingAck(sentAtUs: h.nowUs))

        h.ack(t1, hdfc)
        #expect(h.state(t1) == .aborting)
        let last = h.ack(t1, sbi)
        #expect(last.finishes == [Decision(transaction: t1, outcome: .aborted(reason: reason, cause: .participantRefused, refusal: Fixture.insufficientFunds(icici)))])
        #expect(last.stateChanges.map(\.to) == [.aborted])
        #expect(last.appends.isEmpty)
        #expect(h.state(t1) == nil)
        #expect(h.liveTimers.isEmpty)
        #expect(h.history.appends.isEmpty, "an abort never touches the log")
        #expect(h.history.committed.isEmpty)
    }

    @Test func noVoteWhenNobodyElseHoldsStateFinishesAtOnce() {
        var h = CoordinatorHarness()
        h.startPreparing(t1, [Fixture.read(axis), Fixture.debit(hdfc)])
        h.vote(t1, axis, .readOnly)
        let effects = h.vote(t1, hdfc, .no(.unknownAccount(ResourceID(participant: hdfc, account: Fixture.account("closed")))))

        #expect(effects.sends.isEmpty)
        #expect(effects.decisions.count == 1)
        #expect(effects.finishes.count == 1)
        #expect(effects.finishes.first?.outcome.isCommitted == false)
        #expect(effects.stateChanges.map(\.to) == [.aborting, .aborted])
        #expect(h.state(t1) == nil)
        #expect(h.liveTimers.isEmpty, "no resend timer when nobody must be told")
    }

    @Test func requestAbortWhilePreparingRollsBackEveryoneWhoMayHoldState() {
        var h = CoordinatorHarness()
        h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.read(axis), Fixture.credit(sbi)])
        h.vote(t1, hdfc, .yes)
        h.vote(t1, axis, .readOnly)
        let effects = h.requestAbort(t1, reason: "operator forceAbort")

        #expect(h.state(t1) == .aborting)
        #expect(effects.rolledBack == [hdfc, sbi])
        #expect(effects.decisions == [Decision(transaction: t1, outcome: .aborted(reason: "operator forceAbort", cause: .requested))])
        #expect(effects.finishes.isEmpty)
        #expect(effects.timersSet.map(\.timer.kind) == [.resend])
    }

    @Test(arguments: [TransactionState.prepared, .committing])
    func requestAbortAfterTheDecisionIsIgnored(state: TransactionState) {
        var h = CoordinatorHarness()
        h.prepare(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)], votes: [(hdfc, .yes), (sbi, .yes)])
        if state == .committing { h.durable(t1) }
        #expect(h.state(t1) == state)
        let before = h.transaction(t1)

        let effects = h.requestAbort(t1, reason: "too late")
        #expect(effects.isEmpty)
        #expect(h.transaction(t1) == before)

        // and the commit goes ahead
        if state == .prepared { #expect(h.durable(t1).committed == [hdfc, sbi]) }
        h.ack(t1, hdfc)
        h.ack(t1, sbi)
        #expect(h.history.rolledBack.isEmpty)
        #expect(h.history.finishes == [Decision(transaction: t1, outcome: .committed)])
    }

    @Test func requestAbortWhileAbortingOrForAnUnknownTransactionIsIgnored() {
        var h = CoordinatorHarness()
        #expect(h.requestAbort(t1).isEmpty)
        h.prepare(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)], votes: [(hdfc, Fixture.no(hdfc))])
        #expect(h.state(t1) == .aborting)
        let before = h.transaction(t1)
        #expect(h.requestAbort(t1, reason: "again").isEmpty)
        #expect(h.transaction(t1) == before)
        #expect(h.history.decisions.count == 1)
    }

    // MARK: the diagram itself

    static let diagramEdges: Set<[TransactionState]> = [
        [.active, .preparing], [.active, .aborting],
        [.preparing, .prepared], [.preparing, .aborting], [.preparing, .committed],
        [.prepared, .committing],
        [.committing, .committed],
        [.aborting, .aborted],
        [.committing, .heuristic], [.aborting, .heuristic],
    ]

    @Test(arguments: TransactionState.allCases, TransactionState.allCases)
    func allowedMatchesTheDiagram(from: TransactionState, to: TransactionState) {
        #expect(Coordinator.allowed(from: from, to: to) == Self.diagramEdges.contains([from, to]))
    }

    @Test func onlyCommittedAbortedAndHeuristicAreFinalAndHaveNoWayOut() {
        // (A heuristic case lives on in the reconciliation queue; the protocol is done with it.)
        #expect(TransactionState.allCases.filter(\.isFinal) == [.committed, .aborted, .heuristic])
        for final in [TransactionState.committed, .aborted, .heuristic] {
            #expect(TransactionState.allCases.allSatisfy { !Coordinator.allowed(from: final, to: $0) })
        }
        #expect(TransactionState.allCases.allSatisfy { !Coordinator.allowed(from: $0, to: .active) })
    }

    /// Every path through the machine emits only allowed `stateChanged` events, chained.
    @Test func emittedStateChangesFollowTheDiagram() {
        var h = CoordinatorHarness()
        let t2 = Fixture.tx(2), t3 = Fixture.tx(3), t4 = Fixture.tx(4)
        h.prepare(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)], votes: [(hdfc, .yes), (sbi, .yes)])
        h.durable(t1); h.ack(t1, hdfc); h.ack(t1, sbi)
        h.prepare(t2, [Fixture.debit(hdfc), Fixture.credit(sbi)], votes: [(hdfc, Fixture.no(hdfc))])
        h.ack(t2, sbi)
        h.prepare(t3, [Fixture.read(axis)], votes: [(axis, .readOnly)])
        h.begin(t4, [Fixture.debit(hdfc)]); h.requestAbort(t4)

        var last: [TransactionID: TransactionState] = [:]
        for case .stateChanged(let tx, let from, let to) in h.history.events {
            #expect(Coordinator.allowed(from: from, to: to), "\(tx): \(from) -> \(to)")
            #expect(from == (last[tx] ?? .active), "\(tx): transitions chain")
            last[tx] = to
        }
        #expect(last == [t1: .committed, t2: .aborted, t3: .committed, t4: .aborted])
    }
}

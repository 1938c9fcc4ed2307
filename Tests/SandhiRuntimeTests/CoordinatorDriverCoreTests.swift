import SandhiEngine
import SandhiRuntime
import Testing

/// `CoordinatorDriverCore`, the driver's bookkeeping that both `CoordinatorDriver` and the
/// simulator run: when each client hears, and how the coordinator stops.
@Suite struct CoordinatorDriverCoreTests {
    typealias Core = CoordinatorDriverCore
    static let hdfc = ParticipantID(validated: "hdfc"), sbi = ParticipantID(validated: "sbi")
    static let savings = AccountID(validated: "savings")

    static func branches() -> [Branch] {
        [Branch(participant: hdfc, operations: [.debit(account: savings, amount: Paise(100))]),
         Branch(participant: sbi, operations: [.credit(account: savings, amount: Paise(100))])]
    }

    /// A core with `tx` submitted and both votes in: its COMMIT record is being logged.
    static func deciding(_ tx: TransactionID, client: Int, answerWhen: CoordinatorDriver.AnswerWhen) -> (Core, [Core.Action]) {
        var core = Core(coordinator: Coordinator(configuration: Coordinator.Configuration(), epoch: 1))
        var actions: [Core.Action] = []
        core.wait(for: tx, client: client, answerWhen: answerWhen, nowUs: 1_000)
        core.handle(.begin(tx, branches: branches()), nowUs: 1_000, into: &actions)
        core.handle(.requestCommit(tx), nowUs: 1_000, into: &actions)
        core.handle(.voted(tx, participant: hdfc, vote: .yes, observed: []), nowUs: 1_500, into: &actions)
        core.handle(.voted(tx, participant: sbi, vote: .yes, observed: []), nowUs: 1_600, into: &actions)
        return (core, actions)
    }

    static func answers(_ actions: [Core.Action]) -> [(Int, Result<TransferResult, CoordinatorError>)] {
        actions.compactMap { if case .answer(let client, let result) = $0 { (client, result) } else { nil } }
    }

    static func halts(_ actions: [Core.Action]) -> [String] {
        actions.compactMap { if case .halt(let reason) = $0 { reason } else { nil } }
    }

    @Test func aClientAskingAtTheDecisionHearsOnceTheCommitIsDurable() throws {
        let tx = TransactionID(epoch: 1, sequence: 1)
        var (core, actions) = Self.deciding(tx, client: 7, answerWhen: .decided)
        #expect(Self.answers(actions).isEmpty, "nobody hears before the COMMIT record is durable")
        #expect(actions.contains { if case .appendDecision(.commit(transaction: tx, participants: _), forced: true) = $0 { true } else { false } })
        actions.removeAll()
        core.handle(.decisionDurable(tx, position: LogPosition(segment: 1, offset: 0)), nowUs: 3_000, into: &actions)
        let answers = Self.answers(actions)
        #expect(answers.count == 1)
        let (client, result) = try #require(answers.first)
        #expect(client == 7)
        let transfer = try result.get()
        #expect(transfer.outcome == .committed && transfer.latencyUs == 2_000)
        #expect(core.waitingCount == 0)
    }

    @Test func aClientAskingAtTheEndHearsOnceEveryParticipantAcknowledged() throws {
        let tx = TransactionID(epoch: 1, sequence: 1)
        var (core, actions) = Self.deciding(tx, client: 8, answerWhen: .finished)
        core.handle(.decisionDurable(tx, position: LogPosition(segment: 1, offset: 0)), nowUs: 3_000, into: &actions)
        core.handle(.acknowledged(tx, participant: Self.hdfc), nowUs: 3_500, into: &actions)
        #expect(Self.answers(actions).isEmpty)
        core.handle(.acknowledged(tx, participant: Self.sbi), nowUs: 4_000, into: &actions)
        let answers = Self.answers(actions)
        #expect(answers.count == 1 && answers.first?.0 == 8)
        #expect(try answers.first?.1.get().latencyUs == 3_000)
    }

    /// A failed COMMIT record: the engine's fatal effect halts the core, every waiter hears
    /// `halted` once, and nothing after it is acted on.
    @Test func aFatalEffectHaltsAnswersEveryWaiterOnceAndIgnoresLaterInputs() throws {
        let tx = TransactionID(epoch: 1, sequence: 1), other = TransactionID(epoch: 1, sequence: 2)
        var (core, actions) = Self.deciding(tx, client: 1, answerWhen: .decided)
        core.wait(for: other, client: 2, answerWhen: .finished, nowUs: 1_000)
        actions.removeAll()
        core.handle(.decisionFailed(tx, reason: "EIO"), nowUs: 2_000, into: &actions)
        #expect(core.halted != nil)
        let answers = Self.answers(actions)
        #expect(answers.map(\.0).sorted() == [1, 2])
        #expect(answers.allSatisfy { if case .failure(.halted) = $0.1 { true } else { false } })
        #expect(Self.halts(actions).count == 1)
        guard case .halt = try #require(actions.last) else { Issue.record("the halt is the last action"); return }
        actions.removeAll()
        core.handle(.acknowledged(tx, participant: Self.hdfc), nowUs: 2_500, into: &actions)
        core.halt("again", into: &actions)
        #expect(actions.isEmpty, "a halted core acts on nothing and answers nobody twice")
        #expect(core.halted?.contains("again") == false, "the first reason stays")
    }

    /// A reconciliation record that did not reach the disk: what followed it is dropped, and a
    /// client that was to hear after it hears `halted`, as does everyone still waiting.
    @Test func aFailedReconciliationRecordDropsWhatFollowsButItsAnswers() throws {
        var core = Core(coordinator: Coordinator(configuration: Coordinator.Configuration(), epoch: 1))
        let waiting = TransactionID(epoch: 1, sequence: 9)
        core.wait(for: waiting, client: 9, answerWhen: .finished, nowUs: 0)
        let tx = TransactionID(epoch: 1, sequence: 3)
        let done = TransferResult(transaction: tx, outcome: .committed, latencyUs: 5, observed: [:])
        // What the coordinator meant to do after the record that failed.
        let actions = core.recordFailed("journal: EIO", unperformed: [.send(Self.hdfc, .forget(tx)), .answer(3, .success(done))])
        #expect(actions.count == 3)
        #expect(!actions.contains { if case .send = $0 { true } else { false } }, "the FORGET after the record is dropped")
        let answers = Self.answers(actions)
        #expect(answers.map(\.0) == [3, 9])
        #expect(answers.allSatisfy { if case .failure(.halted("journal: EIO")) = $0.1 { true } else { false } })
        #expect(Self.halts(actions) == ["journal: EIO"])
        #expect(core.halted == "journal: EIO" && core.waitingCount == 0)
    }
}

// Heuristic reports of transactions the coordinator no longer knows (review finding F13). A
// stale copy of a report settled long ago, delayed by the network past its FORGET, must not
// open a mixed case under presumed abort, whether the coordinator restarted since (the COMMIT
// and END reclaimed from the log) or merely let the transaction leave `recentCommits`. A live
// report must still open one, once it has answered the coordinator's question.
import Testing
import SandhiEngine

extension ParticipantReply {
    /// What the coordinator is fed when this reply arrives from `participant`.
    func input(from participant: ParticipantID) -> CoordinatorInput {
        switch self {
        case .vote(let tx, let vote, let observed): .voted(tx, participant: participant, vote: vote, observed: observed)
        case .acknowledged(let tx): .acknowledged(tx, participant: participant)
        case .heuristic(let tx, let committed, let operations, let writers, let tag):
            .heuristicReported(tx, participant: participant, committed: committed, operations: operations, writers: writers,
                               source: .message(confirming: tag))
        }
    }
}

extension Array where Element == ParticipantProtocol.Effect {
    var replies: [ParticipantReply] { compactMap { if case .reply(let reply) = $0 { reply } else { nil } } }
}

extension Array where Element == CoordinatorEffect {
    /// The questions sent: ROLLBACKs carrying a confirmation tag.
    var questions: [(participant: ParticipantID, transaction: TransactionID, tag: ConfirmationTag)] {
        sends.compactMap { sent in
            if case .rollback(let tx, let tag?) = sent.message { (sent.participant, tx, tag) } else { nil }
        }
    }

    var casesOpened: [HeuristicCase] {
        events.compactMap { if case .heuristicCaseOpened(let heuristicCase) = $0 { heuristicCase } else { nil } }
    }
}

@Suite("Coordinator: heuristic reports of transactions it no longer knows")
struct StaleHeuristicReportTests {
    let t1 = Fixture.tx(1), t2 = Fixture.tx(2)
    let hdfc = Fixture.hdfc, sbi = Fixture.sbi
    let debit = Fixture.debit(Fixture.hdfc, 399), credit = Fixture.credit(Fixture.sbi, 399)

    /// `participant`'s machine holding `branch` of `tx` prepared.
    func bank(_ participant: ParticipantID, preparing tx: TransactionID, _ branch: Branch) -> ParticipantProtocol {
        var machine = ParticipantProtocol(participant: participant)
        _ = machine.handle(.message(.prepare(tx, operations: branch.operations, writers: [hdfc, sbi])))
        _ = machine.handle(.staged(tx, failure: nil))
        return machine
    }

    /// The run F13 describes, up to the transaction's end: t1 commits; sbi decides its branch
    /// alone the same way (commit) before COMMIT reaches it; its report agrees, the coordinator
    /// says FORGET, sbi forgets and acknowledges, and t1 ends (END appended). Returns sbi's
    /// machine and its report as sent: the copy the network holds on to.
    func committedWithAnAgreeingHeuristic(_ h: inout CoordinatorHarness, _ tx: TransactionID) throws
        -> (sbi: ParticipantProtocol, report: ParticipantReply) {
        var sbiBank = bank(sbi, preparing: tx, credit)
        h.prepare(tx, [debit, credit], votes: [(hdfc, .yes), (sbi, .yes)])
        h.durable(tx)
        let report = try #require(sbiBank.handle(.decideAlone(tx, commit: true)).replies.first)
        let agreed = h.handle(report.input(from: sbi))
        #expect(agreed.forgotten == [sbi] && agreed.records.isEmpty, "agrees with COMMIT: FORGET, nothing to record")
        h.ack(tx, hdfc)
        #expect(sbiBank.handle(.message(.forget(tx))) == [.forgetHeuristic(tx), .reply(.acknowledged(tx))])
        let ended = h.ack(tx, sbi)
        #expect(ended.appends == [Appended(record: .end(transaction: tx), forced: false)])
        #expect(ended.finishes == [Decision(transaction: tx, outcome: .committed)])
        return (sbiBank, report)
    }

    /// A stale report reached `h`: nothing recorded, nothing forgotten, one question to `sbi`,
    /// which it answers (having forgotten the branch long ago) with an acknowledgement that
    /// settles the question.
    func expectAskedAndSettled(_ h: inout CoordinatorHarness, _ stale: [CoordinatorEffect], _ sbiBank: inout ParticipantProtocol,
                               _ tx: TransactionID) throws {
        #expect(stale.records.isEmpty, "a stale copy of an agreeing report opened a case: \(stale.records)")
        #expect(stale.casesOpened.isEmpty && stale.forgotten.isEmpty)
        let question = try #require(stale.questions.first, "no question asked: \(stale.sends)")
        #expect(stale.questions.count == 1 && question.participant == sbi && question.transaction == tx)
        #expect(question.tag.epoch == h.coordinator.epoch, "a question carries its incarnation's epoch")
        #expect(h.coordinator.heuristicQuestionsOutstanding == 1)
        let answer = sbiBank.handle(.message(.rollback(tx, confirming: question.tag)))
        #expect(answer == [.reply(.acknowledged(tx))], "forgotten long ago: the question is acknowledged")
        let settled = h.handle(answer.replies[0].input(from: sbi))
        #expect(settled.records.isEmpty && settled.sends.isEmpty)
        #expect(settled.lateMessages.contains { $0.contains("stale") }, "\(settled.lateMessages)")
        #expect(h.coordinator.heuristicQuestionsOutstanding == 0)
        #expect(h.coordinator.reconciliation.all.isEmpty)
    }

    @Test func aStaleAgreeingReportAfterARestartOpensNoCase() throws {
        var h = CoordinatorHarness(coordinator: Coordinator(epoch: 1))
        var (sbiBank, report) = try committedWithAnAgreeingHeuristic(&h, t1)

        // The coordinator restarts. t1's COMMIT and END were reclaimed from the log, so recovery
        // feeds nothing of it (not even `rememberCommitted`): it is simply unknown.
        var restarted = CoordinatorHarness(coordinator: Coordinator(reconciliation: h.coordinator.reconciliation, recovering: true, epoch: 2))
        restarted.handle(.recoveryComplete)

        // The copy of sbi's report, sent before the FORGET, arrives now.
        let stale = restarted.handle(report.input(from: sbi))
        try expectAskedAndSettled(&restarted, stale, &sbiBank, t1)

        // Another copy, this one echoing a question of an earlier incarnation: not believed either.
        guard case .heuristic(let tx, let committed, let operations, let writers, _) = report else { Issue.record("\(report)"); return }
        let old = restarted.handle(.heuristicReported(tx, participant: sbi, committed: committed, operations: operations, writers: writers,
                                                      source: .message(confirming: ConfirmationTag(epoch: 1, sequence: 1))))
        #expect(old.records.isEmpty && old.forgotten.isEmpty)
        #expect(old.questions.map(\.tag.epoch) == [2], "asked anew, by this incarnation")
    }

    @Test func aStaleAgreeingReportAfterTheTransactionLeftRecentCommitsOpensNoCase() throws {
        var h = CoordinatorHarness { $0.recentCommitsRemembered = 1 }
        var (sbiBank, report) = try committedWithAnAgreeingHeuristic(&h, t1)

        // While t1 is among the recent commits, a copy is known to agree: FORGET, no question.
        let early = h.handle(report.input(from: sbi))
        #expect(early.forgotten == [sbi] && early.records.isEmpty && early.questions.isEmpty)
        #expect(sbiBank.handle(.message(.forget(t1))) == [.reply(.acknowledged(t1))])
        h.handle(.acknowledged(t1, participant: sbi))

        // t2 commits and finishes: t1 leaves the bounded `recentCommits`, silently.
        h.prepare(t2, [debit, credit], votes: [(hdfc, .yes), (sbi, .yes)])
        h.durable(t2)
        h.ack(t2, hdfc)
        #expect(h.ack(t2, sbi).finishes == [Decision(transaction: t2, outcome: .committed)])

        let stale = h.handle(report.input(from: sbi))
        try expectAskedAndSettled(&h, stale, &sbiBank, t1)
    }

    @Test func aLiveHeuristicCommitOfAPresumedAbortedTransactionOpensACaseOnceConfirmed() throws {
        // t1 aborted (sbi said NO) and was forgotten; hdfc acknowledged the ROLLBACK as "never
        // prepared", then restarted (forgetting that) before t1's PREPARE, delayed by the
        // network, reached it. It voted YES; the coordinator's ROLLBACK to that was lost; and
        // hdfc's heuristic policy committed the branch alone. A real mixed outcome.
        var h = CoordinatorHarness(coordinator: Coordinator(epoch: 3))
        h.prepare(t1, [debit, credit], votes: [(sbi, Fixture.no(sbi))])
        #expect(h.ack(t1, hdfc).finishes.count == 1)
        var hdfcBank = bank(hdfc, preparing: t1, debit)
        #expect(h.vote(t1, hdfc, .yes).sends == [Sent(participant: hdfc, message: .rollback(t1))], "presumed abort (this one is lost)")
        let report = try #require(hdfcBank.handle(.decideAlone(t1, commit: true)).replies.first)

        // The report alone proves nothing: ask.
        let asked = h.handle(report.input(from: hdfc))
        #expect(asked.records.isEmpty && asked.forgotten.isEmpty && asked.casesOpened.isEmpty)
        let question = try #require(asked.questions.first)
        #expect(question.participant == hdfc && question.transaction == t1 && question.tag.epoch == 3)

        // Reported again before the answer (an inquiry): the same question again.
        let again = h.handle(report.input(from: hdfc))
        #expect(again.records.isEmpty && again.questions.map(\.tag) == [question.tag])

        // hdfc still holds its decision, and says so, echoing the tag.
        let answer = hdfcBank.handle(.message(.rollback(t1, confirming: question.tag)))
        #expect(answer == [.reply(.heuristic(t1, committed: true, operations: debit.operations, writers: [hdfc, sbi], confirming: question.tag))])
        let confirmed = h.handle(answer.replies[0].input(from: hdfc))
        let heuristicCase = try #require(confirmed.casesOpened.first)
        #expect(heuristicCase.decision == .abort)
        #expect(heuristicCase.participants == [.init(participant: hdfc, outcome: .heuristicCommit, operations: debit.operations),
                                               .init(participant: sbi, outcome: .rolledBack, operations: nil)])
        #expect(heuristicCase.imbalance == Paise(-399))
        // The record is durable before the FORGET that lets hdfc drop its own copy.
        let recordIndex = try #require(confirmed.firstIndex { if case .recordReconciliation = $0 { true } else { false } })
        let forgetIndex = try #require(confirmed.firstIndex { $0.sent?.message == .forget(t1) })
        #expect(recordIndex < forgetIndex)
        #expect(h.coordinator.heuristicQuestionsOutstanding == 0)
        #expect(hdfcBank.handle(.message(.forget(t1))) == [.forgetHeuristic(t1), .reply(.acknowledged(t1))])

        // A late copy of the answer finds the case: FORGET again, nothing new.
        let late = h.handle(answer.replies[0].input(from: hdfc))
        #expect(late.records.isEmpty && late.forgotten == [hdfc])
        #expect(h.coordinator.reconciliation.all.count == 1)
    }

    @Test func aHeuristicCommitHandedOverByRecoveryOpensACaseWithoutAQuestion() throws {
        // Read from hdfc's storage at this start, after everything the log holds was fed: live.
        var coordinator = Coordinator(recovering: true, epoch: 2)
        let handedOver = coordinator.handle(.heuristicReported(t1, participant: hdfc, committed: true, operations: debit.operations,
                                                               writers: [hdfc, sbi], source: .recovery), nowUs: 1)
        #expect(handedOver.questions.isEmpty)
        #expect(try #require(handedOver.casesOpened.first).decision == .abort)
        #expect(handedOver.forgotten == [hdfc])
        // The same report by message while recovery is still feeding: nothing presumed, nothing asked.
        let early = coordinator.handle(.heuristicReported(t2, participant: hdfc, committed: true, operations: debit.operations,
                                                          writers: [hdfc, sbi]), nowUs: 2)
        #expect(early.records.isEmpty && early.questions.isEmpty && early.forgotten.isEmpty)
        _ = coordinator.handle(.recoveryComplete, nowUs: 3)
        #expect(coordinator.handle(.heuristicReported(t2, participant: hdfc, committed: true, operations: debit.operations,
                                                      writers: [hdfc, sbi]), nowUs: 4).questions.count == 1)
    }

    @Test func aHeuristicRollbackOfAForgottenTransactionAgreesWithoutAQuestion() {
        var h = CoordinatorHarness(coordinator: Coordinator(epoch: 1))
        let effects = h.handle(.heuristicReported(t1, participant: sbi, committed: false, operations: credit.operations, writers: [hdfc, sbi]))
        #expect(effects.questions.isEmpty && effects.records.isEmpty)
        #expect(effects.forgotten == [sbi], "agrees with presumed abort: safe to forget, whoever sent it")
    }

    @Test func aFullTableOfQuestionsDropsTheOldest() throws {
        var h = CoordinatorHarness(coordinator: {
            var configuration = Coordinator.Configuration()
            configuration.maxHeuristicQuestions = 1
            return Coordinator(configuration: configuration, epoch: 4)
        }())
        let first = try #require(h.handle(.heuristicReported(t1, participant: hdfc, committed: true, operations: debit.operations,
                                                             writers: [hdfc])).questions.first)
        let second = h.handle(.heuristicReported(t2, participant: hdfc, committed: true, operations: debit.operations, writers: [hdfc]))
        #expect(second.questions.count == 1 && second.questions[0].tag != first.tag)
        #expect(second.lateMessages.contains { $0.contains("\(first.tag) dropped") }, "\(second.lateMessages)")
        #expect(h.coordinator.heuristicQuestionsOutstanding == 1)

        // The answer to the dropped question is not believed: t1 is asked anew, under a new tag.
        let late = h.handle(.heuristicReported(t1, participant: hdfc, committed: true, operations: debit.operations, writers: [hdfc],
                                               source: .message(confirming: first.tag)))
        #expect(late.records.isEmpty && late.forgotten.isEmpty)
        let anew = try #require(late.questions.first)
        #expect(anew.transaction == t1 && anew.tag != first.tag)
        let confirmed = h.handle(.heuristicReported(t1, participant: hdfc, committed: true, operations: debit.operations, writers: [hdfc],
                                                    source: .message(confirming: anew.tag)))
        #expect(confirmed.casesOpened.count == 1 && confirmed.forgotten == [hdfc])
        #expect(h.coordinator.heuristicQuestionsOutstanding == 0)
    }

    @Test func anEchoFromAnotherParticipantOrTransactionConfirmsNothing() throws {
        var h = CoordinatorHarness(coordinator: Coordinator(epoch: 5))
        let question = try #require(h.handle(.heuristicReported(t1, participant: hdfc, committed: true, operations: debit.operations,
                                                                writers: [hdfc, sbi])).questions.first)
        // sbi (not asked) echoing hdfc's tag, and hdfc echoing it for another transaction.
        let wrongParticipant = h.handle(.heuristicReported(t1, participant: sbi, committed: true, operations: credit.operations,
                                                           writers: [hdfc, sbi], source: .message(confirming: question.tag)))
        let wrongTransaction = h.handle(.heuristicReported(t2, participant: hdfc, committed: true, operations: debit.operations,
                                                           writers: [hdfc, sbi], source: .message(confirming: question.tag)))
        #expect(wrongParticipant.records.isEmpty && wrongTransaction.records.isEmpty)
        #expect(wrongParticipant.questions.count == 1 && wrongTransaction.questions.count == 1)
        #expect(h.coordinator.heuristicQuestionsOutstanding == 3)
    }
}

@Suite("Participant: the coordinator's question about a heuristic report")
struct ParticipantQuestionTests {
    let t1 = Fixture.tx(1)
    let hdfc = Fixture.hdfc, sbi = Fixture.sbi
    let operations: [Operation] = [.debit(account: Fixture.account("savings"), amount: Paise(500))]
    let tag = ConfirmationTag(epoch: 7, sequence: 3)

    @Test func aBranchDecidedAloneAnswersWithItsReportEchoingTheTag() {
        var machine = ParticipantProtocol(participant: hdfc)
        _ = machine.handle(.message(.prepare(t1, operations: operations, writers: [hdfc, sbi])))
        _ = machine.handle(.staged(t1, failure: nil))
        _ = machine.handle(.decideAlone(t1, commit: true))
        #expect(machine.handle(.message(.rollback(t1, confirming: tag)))
                == [.reply(.heuristic(t1, committed: true, operations: operations, writers: [hdfc, sbi], confirming: tag))])
        #expect(machine.handle(.message(.rollback(t1))) == [.reply(.heuristic(t1, committed: true, operations: operations, writers: [hdfc, sbi]))],
                "a ROLLBACK without a question: the report, untagged")
        #expect(machine.handle(.inquire) == [.reply(.heuristic(t1, committed: true, operations: operations, writers: [hdfc, sbi]))])
        #expect(!machine.heuristics.isEmpty, "a question changes nothing")
    }

    @Test func aQuestionAboutAForgottenBranchIsAcknowledgedAndNotRememberedAsARollback() {
        // Restarted since it forgot its heuristic commit: nothing of t1 is left in memory.
        var machine = ParticipantProtocol(participant: hdfc)
        #expect(machine.handle(.message(.rollback(t1, confirming: tag))) == [.reply(.acknowledged(t1))])
        #expect(machine.finished[t1] == nil)
        #expect(machine.handle(.message(.commit(t1))) == [.reply(.acknowledged(t1))],
                "a late COMMIT of the committed transaction is still acknowledged, not refused")
        // A plain ROLLBACK that finds nothing is remembered (it may have overtaken its PREPARE),
        // as finding nothing: a later COMMIT is still acknowledged.
        var plain = ParticipantProtocol(participant: hdfc)
        #expect(plain.handle(.message(.rollback(t1))) == [.reply(.acknowledged(t1))])
        #expect(plain.finished[t1] == .rollbackFoundNothing)
    }

    @Test func aQuestionToAPreparedBranchRollsItBackAsAnyRollback() {
        var machine = ParticipantProtocol(participant: hdfc)
        _ = machine.handle(.message(.prepare(t1, operations: operations, writers: [hdfc])))
        _ = machine.handle(.staged(t1, failure: nil))
        #expect(machine.handle(.message(.rollback(t1, confirming: tag))) == [.discard(t1), .reply(.acknowledged(t1))])
        #expect(machine.lockOwners.isEmpty && machine.branches.isEmpty)
    }
}

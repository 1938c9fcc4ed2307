// Coordinator and participants wired by hand, with messages delivered in the awkward orders a
// real network produces: overtaking, duplicated, late. Each test spells out its schedule.
import Testing
import SandhiEngine

/// A coordinator harness plus participant machines; messages are held until a test delivers them.
private struct Wiring {
    var h = CoordinatorHarness()
    var participants: [ParticipantID: ParticipantProtocol] = [:]
    /// What each participant's storage was asked to apply, in order.
    var applied: [ParticipantID: [TransactionID]] = [:]

    init(_ names: [ParticipantID]) {
        for name in names { participants[name] = ParticipantProtocol(participant: name) }
    }

    /// Messages the coordinator sent to `participant`, most recent last.
    func sent(to participant: ParticipantID) -> [ParticipantMessage] {
        h.history.sends.filter { $0.participant == participant }.map(\.message)
    }

    /// Delivers `message` to `participant` and returns its replies. Staging completes at once.
    mutating func deliver(_ message: ParticipantMessage, to participant: ParticipantID, stagedOK: Bool = true) -> [ParticipantReply] {
        var replies: [ParticipantReply] = []
        var pending: [ParticipantProtocol.Input] = [.message(message)]
        while !pending.isEmpty {
            let input = pending.removeFirst()
            for effect in participants[participant]!.handle(input) {
                switch effect {
                case .stage(let tx, _, _), .validateReads(let tx, _):
                    pending.append(.staged(tx, failure: stagedOK ? nil : Fixture.insufficientFunds(participant)))
                case .apply(let tx, _, _):
                    applied[participant, default: []].append(tx)
                case .discard:
                    break
                case .decideAlone, .forgetHeuristic:
                    Issue.record("no participant here decides alone")
                case .refuse(_, let reason):
                    Issue.record("a participant refused: \(reason)")
                case .reply(let reply):
                    replies.append(reply)
                }
            }
        }
        return replies
    }

    /// Hands `replies` from `participant` to the coordinator.
    @discardableResult
    mutating func reply(_ replies: [ParticipantReply], from participant: ParticipantID) -> [CoordinatorEffect] {
        var effects: [CoordinatorEffect] = []
        for reply in replies {
            switch reply {
            case .vote(let tx, let vote, _): effects += h.vote(tx, participant, vote)
            case .acknowledged(let tx): effects += h.ack(tx, participant)
            case .heuristic: Issue.record("no participant here decides alone")
            }
        }
        return effects
    }
}

@Suite("Message ordering end to end")
struct MessageOrderingTests {
    let t1 = Fixture.tx(1)
    let hdfc = Fixture.hdfc, icici = Fixture.icici, sbi = Fixture.sbi

    @Test func happyPathInOrder() throws {
        var w = Wiring([hdfc, sbi])
        w.h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)])
        for name in [hdfc, sbi] {
            let prepare = try #require(w.sent(to: name).last)
            w.reply(w.deliver(prepare, to: name), from: name)
        }
        w.h.durable(t1)
        for name in [hdfc, sbi] {
            let commit = try #require(w.sent(to: name).last)
            #expect(commit == .commit(t1))
            w.reply(w.deliver(commit, to: name), from: name)
        }
        #expect(w.h.history.finishes == [Decision(transaction: t1, outcome: .committed)])
        #expect(w.applied == [hdfc: [t1], sbi: [t1]])
        #expect(w.participants.values.allSatisfy { $0.branches.isEmpty && $0.lockOwners.isEmpty })
    }

    @Test func lostAcknowledgementIsRecoveredByResendWithoutApplyingTwice() throws {
        var w = Wiring([hdfc])
        w.h.startPreparing(t1, [Fixture.debit(hdfc)])
        w.reply(w.deliver(try #require(w.sent(to: hdfc).last), to: hdfc), from: hdfc)
        w.h.durable(t1)
        _ = w.deliver(.commit(t1), to: hdfc) // applied; the acknowledgement is lost
        w.h.fire(try #require(w.h.liveTimer(of: t1)))
        #expect(w.sent(to: hdfc).last == .commit(t1))
        w.reply(w.deliver(.commit(t1), to: hdfc), from: hdfc)
        #expect(w.applied[hdfc] == [t1])
        #expect(w.h.state(t1) == nil)
    }

    @Test func rollbackOvertakingTheVoteIsDeferredAndStillAcknowledged() throws {
        var w = Wiring([hdfc, sbi])
        w.h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)])
        // hdfc starts staging; meanwhile sbi refuses and the coordinator rolls hdfc back.
        _ = w.participants[hdfc]!.handle(.message(.prepare(t1, operations: Fixture.debit(hdfc).operations, writers: [hdfc, sbi])))
        w.reply(w.deliver(try #require(w.sent(to: sbi).last), to: sbi, stagedOK: false), from: sbi)
        #expect(w.sent(to: hdfc).last == .rollback(t1))
        #expect(w.deliver(.rollback(t1), to: hdfc).isEmpty, "deferred while staging")
        // staging ends: vote and acknowledgement leave together
        var replies: [ParticipantReply] = []
        for effect in w.participants[hdfc]!.handle(.staged(t1, failure: nil)) {
            if case .reply(let reply) = effect { replies.append(reply) }
        }
        #expect(replies == [.vote(t1, .yes), .acknowledged(t1)])
        w.reply(replies, from: hdfc)
        #expect(w.h.state(t1) == nil)
        #expect(w.participants[hdfc]!.lockOwners.isEmpty)
    }

    /// ENGINE BUG 1, end to end: ROLLBACK overtakes PREPARE at icici, icici acknowledges it
    /// ("never prepared"), then the late PREPARE lands and icici prepares. The coordinator, still
    /// aborting because sbi has not acknowledged, files icici's YES as late and never answers;
    /// the transaction ends with icici prepared and its account locked for good.
    @Test func rollbackOvertakingPrepareLeavesNoOrphan() throws {
        var w = Wiring([hdfc, icici, sbi])
        w.h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.debit(icici), Fixture.credit(sbi)])
        let prepareForIcici = try #require(w.sent(to: icici).last)
        w.reply(w.deliver(try #require(w.sent(to: hdfc).last), to: hdfc, stagedOK: false), from: hdfc) // NO
        #expect(w.sent(to: icici).last == .rollback(t1))

        w.reply(w.deliver(.rollback(t1), to: icici), from: icici)   // overtook the PREPARE
        let answer = w.reply(w.deliver(prepareForIcici, to: icici), from: icici) // late PREPARE: icici votes YES
        for sent in answer.sends where sent.participant == icici {
            w.reply(w.deliver(sent.message, to: icici), from: icici)
        }
        w.reply(w.deliver(.rollback(t1), to: sbi), from: sbi)

        #expect(w.h.state(t1) == nil)
        #expect(w.participants[icici]!.branches.isEmpty, "icici is left prepared for an aborted transaction")
        #expect(w.participants[icici]!.lockOwners.isEmpty, "and keeps its account locked")
    }

    /// ENGINE BUG 2: a participant forgets a branch once it commits, so a PREPARE that the
    /// network duplicated and delivered late prepares the branch again; the COMMIT the
    /// coordinator re-sends (because the first acknowledgement was slow) then applies it a
    /// second time. Money is created.
    @Test func prepareDuplicatedAfterCommitIsNotAppliedTwice() throws {
        var w = Wiring([hdfc, sbi])
        w.h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)])
        let prepareForHdfc = try #require(w.sent(to: hdfc).last)
        w.reply(w.deliver(prepareForHdfc, to: hdfc), from: hdfc)
        w.reply(w.deliver(try #require(w.sent(to: sbi).last), to: sbi), from: sbi)
        w.h.durable(t1)
        w.reply(w.deliver(.commit(t1), to: sbi), from: sbi)
        let slowAck = w.deliver(.commit(t1), to: hdfc) // applied; the acknowledgement is slow

        w.reply(w.deliver(prepareForHdfc, to: hdfc), from: hdfc) // the network's duplicate
        w.h.fire(try #require(w.h.liveTimer(of: t1)))             // resend COMMIT to hdfc
        #expect(w.sent(to: hdfc).last == .commit(t1))
        w.reply(w.deliver(.commit(t1), to: hdfc), from: hdfc)
        w.reply(slowAck, from: hdfc)

        #expect(w.applied[hdfc] == [t1], "hdfc applied the same transfer \(w.applied[hdfc]?.count ?? 0) times")
        #expect(w.participants[hdfc]!.branches.isEmpty)
    }

    @Test func duplicatePrepareWhileStagingAndAfterPreparingIsHarmless() throws {
        var w = Wiring([hdfc])
        w.h.startPreparing(t1, [Fixture.debit(hdfc)])
        let prepare = try #require(w.sent(to: hdfc).last)
        _ = w.participants[hdfc]!.handle(.message(prepare))
        #expect(w.participants[hdfc]!.handle(.message(prepare)).isEmpty)
        #expect(w.participants[hdfc]!.handle(.staged(t1, failure: nil)) == [.reply(.vote(t1, .yes))])
        #expect(w.deliver(prepare, to: hdfc) == [.vote(t1, .yes)])
        w.reply([.vote(t1, .yes), .vote(t1, .yes)], from: hdfc)
        #expect(w.h.history.appends.count == 1, "one decision for any number of identical votes")
        w.h.durable(t1)
        w.reply(w.deliver(.commit(t1), to: hdfc), from: hdfc)
        #expect(w.applied[hdfc] == [t1])
    }
}

// The prepare deadline, the phase-two resend timer with its backoff, and stale timers.
import Testing
import SandhiEngine

@Suite("Coordinator timers")
struct CoordinatorTimerTests {
    let t1 = Fixture.tx(1)
    let hdfc = Fixture.hdfc, icici = Fixture.icici, axis = Fixture.axis, sbi = Fixture.sbi

    // MARK: prepare deadline

    @Test func prepareDeadlineAbortsAndNamesTheSilentParticipants() throws {
        var h = CoordinatorHarness { $0.prepareTimeoutMs = 2_000 }
        h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.debit(icici), Fixture.read(axis), Fixture.credit(sbi)])
        h.vote(t1, hdfc, .yes)
        h.vote(t1, axis, .readOnly)
        let deadline = try #require(h.liveTimer(of: t1))
        #expect(deadline.kind == .prepareDeadline)
        let started = h.nowUs

        let effects = h.fire(deadline)
        #expect(h.nowUs == started + 2_000_000)
        #expect(h.state(t1) == .aborting)
        #expect(effects.events.contains(.prepareTimedOut(t1, silent: [icici, sbi])))
        let reason = try #require(effects.decisions.first?.outcome.abortReason)
        #expect(effects.decisions.count == 1)
        #expect(reason.contains("icici") && reason.contains("sbi"))
        #expect(!reason.contains("hdfc") && !reason.contains("axis"))
        #expect(reason.contains("2000ms"))
        #expect(effects.rolledBack == [hdfc, icici, sbi], "the YES voter and the silent ones, not the READ-ONLY voter")
        #expect(effects.timersCancelled.isEmpty, "the fired timer is no longer live, nothing to cancel")
        #expect(effects.timersSet.map(\.timer.kind) == [.resend])
    }

    @Test func prepareDeadlineWithEveryoneSilent() throws {
        var h = CoordinatorHarness()
        h.startPreparing(t1, [Fixture.debit(hdfc)])
        let effects = h.fire(try #require(h.liveTimer(of: t1)))
        #expect(effects.events.contains(.prepareTimedOut(t1, silent: [hdfc])))
        #expect(effects.rolledBack == [hdfc])
        h.ack(t1, hdfc)
        #expect(h.state(t1) == nil)
        #expect(h.history.finishes.first?.outcome.isCommitted == false)
    }

    // MARK: stale timers

    @Test func prepareDeadlineFiredAfterTheDecisionIsIgnored() throws {
        var h = CoordinatorHarness()
        h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)])
        let deadline = try #require(h.liveTimer(of: t1))
        h.vote(t1, hdfc, .yes)
        let decide = h.vote(t1, sbi, .yes)
        #expect(decide.timersCancelled == [deadline])
        let before = h.transaction(t1)

        // Cancellation raced with the fire: the driver delivers it anyway.
        let effects = h.handle(.timerFired(deadline))
        #expect(effects.isEmpty)
        #expect(h.transaction(t1) == before)
        #expect(h.state(t1) == .prepared)
    }

    @Test func prepareDeadlineFiredAfterAnAbortIsIgnored() throws {
        var h = CoordinatorHarness()
        h.startPreparing(t1, [Fixture.debit(hdfc), Fixture.credit(sbi)])
        let deadline = try #require(h.liveTimer(of: t1))
        h.vote(t1, hdfc, Fixture.no(hdfc))
        let before = h.transaction(t1)
        #expect(h.handle(.timerFired(deadline)).isEmpty)
        #expect(h.transaction(t1) == before)
        #expect(h.history.decisions.count == 1)
    }

    @Test func oldGenerationOfTheResendTimerIsIgnored() throws {
        var h = CoordinatorHarness()
        committing(&h)
        let first = try #require(h.liveTimer(of: t1))
        h.fire(first)
        let second = try #require(h.liveTimer(of: t1))
        #expect(second.generation != first.generation)
        #expect(second.kind == .resend)

        let before = h.transaction(t1)
        #expect(h.handle(.timerFired(first)).isEmpty, "a second fire of the old generation")
        #expect(h.transaction(t1) == before)
        #expect(h.liveTimer(of: t1) == second)
    }

    @Test func timerWithAnUnknownGenerationOrTransactionIsIgnored() throws {
        var h = CoordinatorHarness()
        committing(&h)
        let live = try #require(h.liveTimer(of: t1))
        var forged = live
        forged.generation &+= 1_000
        #expect(h.handle(.timerFired(forged)).isEmpty)
        var otherKind = live
        otherKind.kind = .prepareDeadline
        #expect(h.handle(.timerFired(otherKind)).isEmpty)
        #expect(h.handle(.timerFired(TimerID(transaction: Fixture.tx(99), kind: .resend, generation: live.generation))).isEmpty)
        #expect(h.state(t1) == .committing)
    }

    @Test func resendTimerFiredAfterTheTransactionFinishedIsIgnored() throws {
        var h = CoordinatorHarness()
        committing(&h)
        let resend = try #require(h.liveTimer(of: t1))
        h.ack(t1, hdfc); h.ack(t1, icici)
        let last = h.ack(t1, sbi)
        #expect(last.timersCancelled == [resend])
        #expect(h.state(t1) == nil)
        #expect(h.handle(.timerFired(resend)).isEmpty)
    }

    @Test func everyTimerGetsAFreshGeneration() {
        var h = CoordinatorHarness()
        for n in 1...5 as ClosedRange<UInt64> {
            // Separate accounts each: no transaction waits for another's locks.
            h.prepare(Fixture.tx(n), [Fixture.debit(hdfc, account: "savings-\(n)"), Fixture.credit(sbi, account: "current-\(n)")],
                      votes: [(hdfc, .yes)])
        }
        h.fire(h.liveTimer(of: Fixture.tx(1))!)
        h.fire(h.liveTimer(of: Fixture.tx(1))!)
        let generations = h.history.timersSet.map(\.timer.generation)
        #expect(generations.count == 7)
        #expect(Set(generations).count == generations.count)
    }

    // MARK: resend and backoff

    /// `t1` in committing with COMMIT sent to hdfc, icici and sbi.
    private func committing(_ h: inout CoordinatorHarness) {
        h.prepare(t1, [Fixture.debit(hdfc), Fixture.debit(icici), Fixture.credit(sbi)],
                  votes: [(hdfc, .yes), (icici, .yes), (sbi, .yes)])
        h.durable(t1)
    }

    @Test func resendGoesOnlyToUnacknowledgedParticipants() throws {
        var h = CoordinatorHarness()
        committing(&h)
        h.ack(t1, icici)

        let first = h.fire(try #require(h.liveTimer(of: t1)))
        #expect(first.committed == [hdfc, sbi])
        #expect(first.rolledBack.isEmpty)
        let retries = first.events.compactMap { kind -> [ParticipantID]? in
            if case .retryScheduled(t1, let participants, 1, _) = kind { return participants } else { return nil }
        }
        #expect(retries == [[hdfc, sbi]])
        #expect(first.events.contains(.phaseTwoSent(t1, participant: hdfc, commit: true, attempt: 1)))
        #expect(h.state(t1) == .committing)

        h.ack(t1, sbi)
        let second = h.fire(try #require(h.liveTimer(of: t1)))
        #expect(second.committed == [hdfc])
        #expect(second.events.contains(.phaseTwoSent(t1, participant: hdfc, commit: true, attempt: 2)))

        let done = h.ack(t1, hdfc)
        #expect(done.finishes == [Decision(transaction: t1, outcome: .committed)])
        #expect(h.liveTimers.isEmpty)
    }

    @Test func resendWhileAbortingSendsRollback() throws {
        var h = CoordinatorHarness()
        h.prepare(t1, [Fixture.debit(hdfc), Fixture.debit(icici), Fixture.credit(sbi)],
                  votes: [(hdfc, .yes), (icici, Fixture.no(icici))])
        h.ack(t1, hdfc)
        let effects = h.fire(try #require(h.liveTimer(of: t1)))
        #expect(effects.rolledBack == [sbi])
        #expect(effects.committed.isEmpty)
        #expect(effects.events.contains(.phaseTwoSent(t1, participant: sbi, commit: false, attempt: 1)))
    }

    struct Backoff: Sendable, CustomTestStringConvertible {
        var initialMs: UInt64
        var maxMs: UInt64
        var seed: UInt64
        var testDescription: String { "\(initialMs)ms..\(maxMs)ms seed \(seed)" }
    }

    @Test(arguments: [
        Backoff(initialMs: 50, maxMs: 5_000, seed: 1),
        Backoff(initialMs: 50, maxMs: 400, seed: 2),
        Backoff(initialMs: 10, maxMs: 10, seed: 3),
        Backoff(initialMs: 100, maxMs: 1_000, seed: 0x5A4D_4849),
    ])
    func resendDelaysBackOffExponentiallyWithCappedJitter(_ backoff: Backoff) throws {
        var h = CoordinatorHarness {
            $0.resendInitialMs = backoff.initialMs
            $0.resendMaxMs = backoff.maxMs
            $0.seed = backoff.seed
        }
        committing(&h)
        #expect(h.history.timersSet.last?.afterUs == backoff.initialMs * 1_000, "first resend after the initial delay")

        var delays: [UInt64] = []
        for attempt in 1...24 as ClosedRange<UInt64> {
            let effects = h.fire(try #require(h.liveTimer(of: t1)))
            #expect(effects.committed == [hdfc, icici, sbi])
            let set = try #require(effects.timersSet.first)
            #expect(effects.timersSet.count == 1)
            #expect(set.timer.kind == .resend)
            let baseUs = min(backoff.maxMs, backoff.initialMs << min(attempt, 20)) * 1_000
            #expect(set.afterUs >= baseUs, "attempt \(attempt)")
            #expect(set.afterUs <= baseUs + baseUs / 4, "attempt \(attempt): at most 25% jitter")
            #expect(set.afterUs <= backoff.maxMs * 1_000 * 5 / 4, "capped")
            let scheduled = effects.events.compactMap { kind -> UInt64? in
                if case .retryScheduled(_, _, let number, let delayUs) = kind, number == UInt32(attempt) { return delayUs }
                return nil
            }
            #expect(scheduled == [set.afterUs], "the event reports the delay actually used")
            delays.append(set.afterUs)
        }
        // Growing until the cap: doubling beats 25% jitter.
        for index in delays.indices.dropFirst() where (backoff.initialMs << UInt64(index + 1)) <= backoff.maxMs {
            #expect(delays[index] > delays[index - 1], "attempt \(index + 1)")
        }
        #expect(delays.last! >= backoff.maxMs * 1_000)
        // There is jitter: not every capped delay is exactly the cap.
        #expect(delays.contains { $0 > backoff.maxMs * 1_000 })
    }

    @Test func jitterIsDeterministicPerSeed() throws {
        func delays(seed: UInt64) throws -> [UInt64] {
            var h = CoordinatorHarness { $0.seed = seed }
            committing(&h)
            var out: [UInt64] = []
            for _ in 0..<8 {
                out += h.fire(try #require(h.liveTimer(of: t1))).timersSet.map(\.afterUs)
            }
            return out
        }
        #expect(try delays(seed: 7) == delays(seed: 7))
        #expect(try delays(seed: 7) != delays(seed: 8))
    }
}

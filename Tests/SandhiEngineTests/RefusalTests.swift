// Typed NO votes: what each refusal says to people, and whether a program should run the
// transaction again. The coordinator's abort cause comes from the case, never from the text.
import Testing
import SandhiEngine

@Suite("Refusals")
struct RefusalTests {
    static let hdfc = Fixture.hdfc
    static let alice = ResourceID(participant: hdfc, account: Fixture.account("alice"))
    static let tx = Fixture.tx(7), holder = Fixture.tx(3)

    /// Every refusal, with the text people read and whether it is transient. The texts are the
    /// ones these NO votes carried as free text before they were typed (a command's stderr and
    /// the console show them), except the deadlock, which used to be told as a lock timeout.
    static let every: [(Refusal, text: String, transient: Bool)] = [
        (.insufficientFunds(alice, balance: .rupees(5), debit: .rupees(7)), "insufficient funds in hdfc/alice: balance ₹5.00, debit ₹7.00", false),
        (.negativeBalance(hdfc, tx), "insufficient funds in hdfc: PostgreSQL refused a negative balance for T-1.7", false),
        (.unknownAccount(alice), "unknown account hdfc/alice", false),
        (.notPositiveAmount(alice, Paise(0)), "amount for hdfc/alice must be positive, got 0 paise", false),
        (.creditOverflow(alice), "credit to hdfc/alice would overflow", false),
        (.amountsOverflow(tx), "the amounts of T-1.7 add up beyond ₹92,23,37,20,36,85,47,758.07", false),
        (.balanceOutOfRange(hdfc, tx), "hdfc: PostgreSQL refused a balance beyond 64 bits for T-1.7", false),
        (.reportAmountNotPositive(Paise(-1)), "report amount must be positive", false),
        (.reportTextInvalid, "report text too long or empty", false),
        (.notWrittenByDatabase(hdfc, tx), "hdfc: PostgreSQL did not write T-1.7 (an account missing or a balance below zero)", false),
        (.gidInUse(hdfc, tx, instance: "main"),
         "hdfc: a gid of T-1.7 is already prepared on this PostgreSQL server; is another coordinator named main?", false),
        (.rolledBackAlone(hdfc, tx), "hdfc rolled back T-1.7 on its own", false),
        (.alreadyRolledBack(hdfc, tx), "hdfc already rolled back T-1.7", false),
        (.lockedBy(alice, holder: holder), "hdfc/alice is locked by T-1.3", true),
        (.branchesFull(hdfc, limit: 2), "hdfc has 2 branches in flight", true),
        (.lockedInDatabase(hdfc, tx), "hdfc: an account of T-1.7 is locked in PostgreSQL by a transaction outside this coordinator", true),
        (.deadlockInDatabase(hdfc, tx),
         "hdfc: PostgreSQL chose T-1.7 as the victim of a deadlock with a transaction outside this coordinator", true),
        (.databaseFull(hdfc, detail: "out of shared memory"), "hdfc: PostgreSQL cannot prepare another transaction (out of shared memory)", true),
    ]

    @Test func eachRefusalReadsAsBeforeAndIsTransientOnlyWhenItIsAboutWhatElseIsInFlight() {
        for (refusal, text, transient) in Self.every {
            #expect(refusal.description == text)
            #expect(refusal.isTransient == transient, "\(refusal)")
            #expect(refusal.abortCause == (transient ? .participantBusy : .participantRefused), "\(refusal)")
            #expect(refusal.abortCause.isTransient == transient, "\(refusal)")
        }
        // Distinct machine names, one per case.
        #expect(Set(Self.every.map(\.0.code)).count == Self.every.count)
        #expect(Self.every.filter { $0.0.isInsufficientFunds }.map(\.0.code) == ["insufficient-funds", "negative-balance"])
    }

    @Test func theCoordinatorsAbortCauseAndOutcomeComeFromTheRefusal() throws {
        for (index, (refusal, text, transient)) in Self.every.enumerated() {
            var h = CoordinatorHarness()
            let t = Fixture.tx(UInt64(index) + 1)
            h.startPreparing(t, [Fixture.debit(Self.hdfc), Fixture.credit(Fixture.sbi)])
            let decision = try #require(h.vote(t, Self.hdfc, .no(refusal)).decisions.first, "\(refusal)")
            #expect(decision.outcome == .aborted(reason: "hdfc voted NO: \(text)", cause: transient ? .participantBusy : .participantRefused,
                                                 refusal: refusal))
        }
    }

    /// The words of a refusal mean nothing to a program: a permanent refusal whose text happens
    /// to read like a lock conflict is still permanent (the coordinator once searched a NO's
    /// text for " is locked by "), and a lock refusal is transient whatever it says.
    @Test func theClassificationIsTheCaseNotTheWords() throws {
        let looksLocked = Refusal.gidInUse(Self.hdfc, Self.tx, instance: "one is locked by two")
        #expect(looksLocked.description.contains(" is locked by "))
        #expect(!looksLocked.isTransient)
        var h = CoordinatorHarness()
        h.startPreparing(Self.tx, [Fixture.debit(Self.hdfc)])
        #expect(h.vote(Self.tx, Self.hdfc, .no(looksLocked)).decisions.first?.outcome.abortCause == .participantRefused)

        let database = Refusal.lockedInDatabase(Self.hdfc, Fixture.tx(8))
        #expect(!database.description.contains(" is locked by "))
        h.startPreparing(Fixture.tx(8), [Fixture.debit(Self.hdfc, account: "other")])
        #expect(h.vote(Fixture.tx(8), Self.hdfc, .no(database)).decisions.first?.outcome.abortCause == .participantBusy)
    }

    /// An abort for any other reason carries no refusal: a client reading `refusal` sees a
    /// participant's NO only when one decided it.
    @Test func onlyANoVoteLeavesARefusalInTheOutcome() throws {
        var h = CoordinatorHarness { $0.prepareTimeoutMs = 100 }
        h.startPreparing(Self.tx, [Fixture.debit(Self.hdfc)])
        let deadline = try #require(h.liveTimer(of: Self.tx))
        let timedOut = try #require(h.fire(deadline).decisions.first)
        #expect(timedOut.outcome.abortCause == .prepareTimeout && timedOut.outcome.refusal == nil)
        h.startPreparing(Fixture.tx(9), [Fixture.debit(Self.hdfc, account: "other")])
        let requested = try #require(h.requestAbort(Fixture.tx(9)).decisions.first)
        #expect(requested.outcome.abortCause == .requested && requested.outcome.refusal == nil)
    }
}

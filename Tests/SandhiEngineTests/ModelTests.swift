// Identifiers, operations, events and the seeded random generator.
import Testing
import SandhiEngine

@Suite("Transaction ids")
struct TransactionIDTests {
    @Test(arguments: [(UInt32(0), UInt64(0)), (3, 4_711), (TransactionID.maxEpoch, TransactionID.maxSequence), (1, 1 << 39)])
    func epochAndSequenceRoundTrip(epoch: UInt32, sequence: UInt64) {
        let id = TransactionID(epoch: epoch, sequence: sequence)
        #expect(id.epoch == epoch)
        #expect(id.sequence == sequence)
        #expect(id.rawValue == UInt64(epoch) << 40 | sequence)
        #expect(TransactionID(id.description) == id)
        #expect(TransactionID(String(id.rawValue)) == id)
    }

    @Test func descriptionAndParsing() {
        #expect(TransactionID(epoch: 3, sequence: 4_711).description == "T-3.4711")
        #expect(TransactionID("T-3.4711") == TransactionID(epoch: 3, sequence: 4_711))
        #expect(TransactionID("3.4711") == TransactionID(epoch: 3, sequence: 4_711))
        #expect(TransactionID("T-42") == TransactionID(rawValue: 42))
    }

    @Test(arguments: ["", "T-", "T-1.", "T-.1", "T-1.2.3", "x", "T-a.1", "T--1.1",
                      "T-16777216.1", "T-1.1099511627776", "18446744073709551616"])
    func rejectsMalformedIds(text: String) {
        #expect(TransactionID(text) == nil)
    }

    @Test func orderIsEpochThenSequence() {
        #expect(TransactionID(epoch: 1, sequence: TransactionID.maxSequence) < TransactionID(epoch: 2, sequence: 0))
        #expect(TransactionID(epoch: 2, sequence: 1) < TransactionID(epoch: 2, sequence: 2))
    }
}

@Suite("Names")
struct NameTests {
    @Test(arguments: ["hdfc", "sbi-2", "tax_ledger", "0", String(repeating: "a", count: 32)])
    func validParticipantNames(name: String) {
        #expect(ParticipantID(name)?.name == name)
    }

    @Test(arguments: ["", "HDFC", "has space", "dot.ted", "slash/", "ümlaut", String(repeating: "a", count: 33)])
    func invalidParticipantNames(name: String) {
        #expect(ParticipantID(name) == nil)
        #expect(!ParticipantID.isValid(name))
    }

    @Test(arguments: ["savings", "HDFC.savings-01", "a_b", String(repeating: "Z", count: 64)])
    func validAccountNames(name: String) {
        #expect(AccountID(name)?.description == name)
    }

    @Test(arguments: ["", "with space", "semi;colon", "₹", String(repeating: "a", count: 65)])
    func invalidAccountNames(name: String) {
        #expect(AccountID(name) == nil)
    }

    @Test func resourcesOrderByParticipantThenAccount() {
        let a = ResourceID(participant: Fixture.axis, account: Fixture.account("z"))
        let b = ResourceID(participant: Fixture.hdfc, account: Fixture.account("a"))
        let c = ResourceID(participant: Fixture.hdfc, account: Fixture.account("b"))
        #expect([c, b, a].sorted() == [a, b, c])
        #expect(b.description == "hdfc/a")
    }
}

@Suite("Operations and branches")
struct OperationTests {
    let acct = Fixture.account("acct")

    @Test func deltasAndWrites() {
        let report = Operation.fileReport(Report(kind: "LTR", amount: .rupees(10), reference: "r"))
        #expect(Operation.debit(account: acct, amount: Paise(5)).delta == Paise(-5))
        #expect(Operation.credit(account: acct, amount: Paise(5)).delta == Paise(5))
        #expect(Operation.read(account: acct).delta == .zero)
        #expect(report.delta == .zero, "a report row moves no money")
        #expect(Operation.debit(account: acct, amount: Paise(5)).isWrite)
        #expect(Operation.credit(account: acct, amount: Paise(5)).isWrite)
        #expect(report.isWrite)
        #expect(!Operation.read(account: acct).isWrite)
        #expect(report.account == nil)
        #expect(Operation.read(account: acct).account == acct)
    }

    @Test func branchSummaries() {
        let transfer = Branch(participant: Fixture.sbi, operations: [
            .credit(account: acct, amount: .rupees(18_00_000)),
            .debit(account: acct, amount: .rupees(1_80_000)),
            .read(account: acct),
        ])
        #expect(transfer.netDelta == .rupees(16_20_000))
        #expect(!transfer.isReadOnly)
        #expect(Fixture.read(Fixture.sbi).isReadOnly)
        #expect(Branch(participant: Fixture.sbi, operations: []).isReadOnly)
    }
}

@Suite("Engine events")
struct EngineEventTests {
    let t1 = Fixture.tx(1)

    @Test func everyKindButFatalNamesItsTransaction() {
        let kinds: [EngineEvent.Kind] = [
            .began(t1, participants: [Fixture.hdfc], amount: Paise(5)),
            .rejected(t1, reason: "r"),
            .stateChanged(t1, from: .active, to: .preparing),
            .prepareSent(t1, participant: Fixture.hdfc),
            .voteReceived(t1, participant: Fixture.hdfc, vote: .yes, latencyUs: 1),
            .prepareTimedOut(t1, silent: []),
            .decisionLogging(t1),
            .decisionDurable(t1, position: LogPosition(segment: 0, offset: 0), latencyUs: 1),
            .phaseTwoSent(t1, participant: Fixture.hdfc, commit: true, attempt: 0),
            .acknowledged(t1, participant: Fixture.hdfc, latencyUs: 1),
            .retryScheduled(t1, participants: [], attempt: 1, delayUs: 1),
            .finished(t1, outcome: .committed, durationUs: 1),
            .lateMessage(t1, participant: Fixture.hdfc, what: "x"),
            .recovered(t1, decision: .committed, participants: []),
        ]
        for kind in kinds {
            let event = EngineEvent(atUs: 5, kind)
            #expect(event.transaction == t1, "\(kind)")
            #expect(event.description.hasPrefix("T-1.1"), "\(event.description)")
        }
        #expect(EngineEvent(atUs: 0, .fatal(reason: "disk")).transaction == nil)
        #expect(EngineEvent(atUs: 0, .fatal(reason: "disk")).description == "coordinator halted: disk")
    }

    @Test func descriptionsReadLikeALog() {
        #expect(EngineEvent(atUs: 0, .voteReceived(t1, participant: Fixture.icici, vote: Fixture.no(Fixture.icici), latencyUs: 1_200)).description
            == "T-1.1 icici voted NO (insufficient funds in icici/savings: balance ₹0.00, debit ₹100.00) in 1.2ms")
        #expect(EngineEvent(atUs: 0, .phaseTwoSent(t1, participant: Fixture.sbi, commit: true, attempt: 0)).description
            == "T-1.1 COMMIT -> sbi")
        #expect(EngineEvent(atUs: 0, .phaseTwoSent(t1, participant: Fixture.sbi, commit: false, attempt: 2)).description
            == "T-1.1 ROLLBACK -> sbi (retry 2)")
        #expect(EngineEvent(atUs: 0, .prepareTimedOut(t1, silent: [Fixture.axis, Fixture.sbi])).description
            == "T-1.1 prepare timed out waiting for axis, sbi")
        #expect(EngineEvent(atUs: 0, .stateChanged(t1, from: .prepared, to: .committing)).description == "T-1.1 prepared -> committing")
    }

    @Test func labels() {
        #expect(Vote.yes.label == "YES")
        #expect(Vote.readOnly.label == "READ-ONLY")
        #expect(Vote.no(.reportTextInvalid).label == "NO (report text too long or empty)")
        #expect(Vote.no(.reportTextInvalid).isNo && !Vote.yes.isNo && !Vote.readOnly.isNo)
        #expect(Vote.no(.reportTextInvalid).refusal == .reportTextInvalid && Vote.yes.refusal == nil)
        #expect(Outcome.committed.label == "committed")
        #expect(Outcome.aborted(reason: "x", cause: .requested).label == "aborted (x)")
        #expect(Outcome.committed.isCommitted && !Outcome.aborted(reason: "x", cause: .requested).isCommitted)
    }

    @Test(arguments: [
        (UInt64(0), "0µs"),
        (850, "850µs"),
        (999, "999µs"),
        (1_000, "1.0ms"),
        (1_249, "1.2ms"),
        (1_250, "1.3ms"),
        (999_000, "999.0ms"),
        (1_000_000, "1.00s"),
        (1_050_000, "1.05s"),
        (3_400_000, "3.40s"),
        (61_234_567, "61.23s"),
    ])
    func formatMicrosForPeople(micros: UInt64, text: String) {
        #expect(formatMicros(micros) == text)
    }

    /// Rounding to tenths of a millisecond must not produce "1000.0ms"; just under a second
    /// should read as a second. (Reported as a minor engine bug.)
    @Test(arguments: [UInt64(999_950), 999_999])
    func formatMicrosJustUnderASecond(micros: UInt64) {
        #expect(formatMicros(micros) == "1.00s")
    }

    @Test func logPositionsOrderBySegmentThenOffset() {
        #expect(LogPosition(segment: 1, offset: 900) < LogPosition(segment: 2, offset: 0))
        #expect(LogPosition(segment: 2, offset: 1) < LogPosition(segment: 2, offset: 2))
        #expect(LogPosition(segment: 3, offset: 64).description == "segment 3 @64")
    }
}

@Suite("SplitMix64")
struct SplitMix64Tests {
    @Test func matchesTheReferenceSequence() {
        var zero = SplitMix64(seed: 0)
        #expect([zero.next(), zero.next(), zero.next()] == [0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F])
        var seeded = SplitMix64(seed: 1_234_567)
        #expect((0..<5).map { _ in seeded.next() }
            == [6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423,
                4_593_380_528_125_082_431, 16_408_922_859_458_223_821])
    }

    @Test func sameSeedSameSequence() {
        var a = SplitMix64(seed: 77), b = SplitMix64(seed: 77)
        for _ in 0..<100 { #expect(a.next() == b.next()) }
    }
}

import SandhiHistory
import Testing

/// The checker must be able to fail: one small history per anomaly class, each reported as
/// exactly that class with the transactions involved, and clean histories reported clean.
@Suite struct AnomalyClassTests {
    @Test func serialTransfersAndAuditsAreClean() {
        let report = check(
            T.committed("T1", r("a", 0, value: 100), w("a", 1, value: 90), r("b", 0, value: 100), w("b", 1, value: 110)),
            T.audit("A1", r("a", 1, from: "T1", value: 90), r("b", 1, from: "T1", value: 110)),
            T.committed("T2", r("b", 1, from: "T1", value: 110), w("b", 2, value: 60), r("a", 1, from: "T1", value: 90), w("a", 2, value: 140)),
            T.audit("A2", r("a", 2, from: "T2", value: 140), r("b", 2, from: "T2", value: 60)))
        #expect(report.isClean, "\(report.anomalies)")
        #expect(report.auditsChecked == 2 && report.committed == 4 && report.transactionsChecked == 4)
        // T1 -ww-> T2 on both keys, every read is a wr, and the audits' reads of a and b are
        // overwritten by T2 (A1 -rw-> T2).
        #expect(report.edgeCounts == [.ww: 2, .wr: 6, .rw: 2])
    }

    @Test func generatedSerialHistoryIsClean() {
        let history = SerialBankHistory.make(transactions: 2_000)
        let report = HistoryChecker().check(history)
        #expect(report.isClean, "\(report.anomalies.prefix(5))")
        #expect(report.auditsChecked > 10 && report.aborted > 0 && report.unknownObserved > 0)
    }

    @Test func garbageReadOfAValueItsWriterNeverWrote() {
        let written = T.committed("T1", r("x", 0), w("x", 1, value: 90))
        let report = check(written, T.committed("T2", r("x", 1, from: "T1", value: 95)))
        #expect(report.anomalies.map(\.kind) == [.garbageRead], "\(report.anomalies)")
        #expect(report.anomalies.first?.transactions == ["T2", "T1"])
        #expect(report.anomalies.first?.description == "T2 read x@1 = 95 paise, but its writer T1 wrote 90 paise as that version")
        // The same read of the value T1 wrote is clean.
        #expect(check(written, T.committed("T2", r("x", 1, from: "T1", value: 90))).isClean)
    }

    @Test func garbageReadOfItsOwnWrite() {
        // Two legs on x: the second reads back the first's version with a value it never wrote.
        let report = check(T.committed("T1", r("x", 0), w("x", 1, value: 60), r("x", 1, from: "T1", value: 70), w("x", 2, value: 20)))
        #expect(report.anomalies.map(\.kind) == [.garbageRead], "\(report.anomalies)")
        #expect(report.anomalies.first?.transactions == ["T1"])
        #expect(report.anomalies.first?.description == "T1 read x@1 = 70 paise, but it wrote 60 paise as that version itself")
        #expect(check(T.committed("T1", r("x", 0), w("x", 1, value: 60), r("x", 1, from: "T1", value: 60), w("x", 2, value: 20))).isClean)
    }

    @Test func garbageReadOfAnAbortedWriteIsBothGarbageAndG1a() {
        let report = check(
            T.aborted("T1", r("x", 0), w("x", 1, value: 999)),
            T.committed("T2", r("x", 1, from: "T1", value: 5)))
        #expect(report.anomalies.map(\.kind) == [.garbageRead, .g1a], "\(report.anomalies)")
        #expect(report.anomalies.first?.description == "T2 read x@1 = 5 paise, but its writer T1 wrote 999 paise as that version")
    }

    /// As for the other read anomalies, a transaction that may not have committed is not judged
    /// (its read still joins the graph).
    @Test func aGarbageReadByAnUnknownOutcomeIsNotReported() {
        let report = check(
            T.committed("T1", r("x", 0), w("x", 1, value: 90)),
            T.unknown("T2", r("x", 1, from: "T1", value: 95)))
        #expect(report.isClean, "\(report.anomalies)")
    }

    @Test func g0InterleavedWrites() throws {
        let report = check(
            T.committed("T1", w("x", 1), w("y", 2)),
            T.committed("T2", w("x", 2), w("y", 1)))
        try #require(report.anomalies.map(\.kind) == [.g0], "\(report.anomalies)")
        let anomaly = report.anomalies[0]
        #expect(Set(anomaly.transactions) == ["T1", "T2"])
        #expect(anomaly.description == "T1 -ww(x)-> T2 -ww(y)-> T1" || anomaly.description == "T2 -ww(y)-> T1 -ww(x)-> T2", "\(anomaly.description)")
    }

    @Test func g1aReadOfAnAbortedWrite() {
        let report = check(
            T.aborted("T1", r("x", 0), w("x", 1, value: 999)),
            T.committed("T2", r("x", 1, from: "T1", value: 999)))
        #expect(report.anomalies.map(\.kind) == [.g1a], "\(report.anomalies)")
        #expect(report.anomalies.first?.transactions == ["T2", "T1"])
        #expect(report.anomalies.first?.description.contains("aborted") == true)
    }

    @Test func g1aReadOfAWriterNotInTheHistory() {
        let report = check(T.committed("T2", r("x", 4, from: "T-ghost")))
        #expect(report.anomalies.map(\.kind) == [.g1a], "\(report.anomalies)")
        #expect(report.anomalies.first?.transactions == ["T2", "T-ghost"])
        #expect(report.anomalies.first?.description.contains("writer unknown") == true)
    }

    @Test func g1aReadOfAVersionItsWriterNeverWrote() {
        let report = check(
            T.committed("T1", r("x", 0), w("x", 1)),
            T.committed("T2", r("x", 7, from: "T1")),
            T.committed("T3", r("y", 3)))
        #expect(report.anomalies.map(\.kind) == [.g1a, .g1a], "\(report.anomalies)")
        #expect(report.anomalies.map(\.transactions) == [["T2", "T1"], ["T3"]])
    }

    @Test func g1bReadOfAnIntermediateVersion() {
        // T1 debits x twice (two legs): x@1 is intermediate, x@2 is what T1 installed.
        let report = check(
            T.committed("T1", r("x", 0), w("x", 1, value: 60), w("x", 2, value: 20)),
            T.committed("T2", r("x", 1, from: "T1", value: 60)))
        #expect(report.anomalies.map(\.kind) == [.g1b], "\(report.anomalies)")
        #expect(report.anomalies.first?.transactions == ["T2", "T1"])
        #expect(report.anomalies.first?.description.contains("x@2") == true)
    }

    @Test func g1cCircularInformationFlow() {
        let report = check(
            T.committed("T1", w("x", 1), r("y", 1, from: "T2")),
            T.committed("T2", w("y", 1), r("x", 1, from: "T1")))
        #expect(report.anomalies.map(\.kind) == [.g1c], "\(report.anomalies)")
        #expect(Set(report.anomalies.first?.transactions ?? []) == ["T1", "T2"])
        let description = report.anomalies.first?.description ?? ""
        #expect(description == "T1 -wr(x)-> T2 -wr(y)-> T1" || description == "T2 -wr(y)-> T1 -wr(x)-> T2", "\(description)")
    }

    @Test func g2WriteSkew() {
        let report = check(
            T.committed("T1", r("x", 0), r("y", 0), w("x", 1)),
            T.committed("T2", r("x", 0), r("y", 0), w("y", 1)))
        #expect(report.anomalies.map(\.kind) == [.g2Item], "\(report.anomalies)")
        #expect(Set(report.anomalies.first?.transactions ?? []) == ["T1", "T2"])
        let description = report.anomalies.first?.description ?? ""
        #expect(description == "T1 -rw(y)-> T2 -rw(x)-> T1" || description == "T2 -rw(x)-> T1 -rw(y)-> T2", "\(description)")
    }

    @Test func g2LostUpdateAcrossVersions() {
        // Both read x@1; T2 installs x@2, T3 overwrites it with x@3 without having seen it.
        let report = check(
            T.committed("T1", w("x", 1)),
            T.committed("T2", r("x", 1, from: "T1"), w("x", 2)),
            T.committed("T3", r("x", 1, from: "T1"), w("x", 3)))
        // T3 -rw-> T2 (it read x@1, T2 installed the next) and T2 -ww-> T3: a cycle through rw.
        #expect(report.anomalies.map(\.kind) == [.g2Item], "\(report.anomalies)")
        #expect(Set(report.anomalies.first?.transactions ?? []) == ["T2", "T3"])
    }

    @Test func duplicateVersionIsALostUpdate() {
        let report = check(
            T.committed("T1", r("x", 0), w("x", 1, value: 150)),
            T.committed("T2", r("x", 0), w("x", 1, value: 130)))
        #expect(report.anomalies.map(\.kind) == [.duplicateVersion], "\(report.anomalies)")
        #expect(report.anomalies.first?.transactions == ["T1", "T2"])
        #expect(report.anomalies.first?.description == "x@1 installed by both T1 and T2 (a lost update)")
    }

    @Test func bankInvariantBrokenByAnAudit() {
        let report = check(T.audit("A1", r("a", 0, value: 100), r("b", 0, value: 90)), totalPaise: 200)
        #expect(report.anomalies.map(\.kind) == [.bankInvariant], "\(report.anomalies)")
        #expect(report.anomalies.first?.transactions == ["A1"])
        #expect(report.anomalies.first?.description.contains("190") == true)
        #expect(report.anomalies.first?.description.contains("difference -10") == true)
    }

    @Test func aReadSkewSeenByAnAuditIsBothG2AndTheBankInvariant() {
        // The audit sees a before the transfer and b after it: ₹0.10 appears from nowhere.
        let report = check(
            T.committed("T1", r("a", 0), w("a", 1, value: 90), r("b", 0), w("b", 1, value: 110)),
            T.audit("A1", r("a", 0, value: 100), r("b", 1, from: "T1", value: 110)))
        #expect(report.anomalies.map(\.kind) == [.g2Item, .bankInvariant], "\(report.anomalies)")
        #expect(report.anomalies.first?.description == "A1 -rw(a)-> T1 -wr(b)-> A1")
    }

    @Test func aComponentIsReportedAgainOnlyForACycleThatNeedsTheWeakerEdge() {
        // G0 on x/y between T1 and T2, and a wr back from T2 to T1: the ww+wr component holds a
        // cycle through that wr, so it is G1c too; the full graph adds no rw inside it, so it is
        // not also G2-item.
        let report = check(
            T.committed("T1", w("x", 1), w("y", 2), r("z", 1, from: "T2")),
            T.committed("T2", w("x", 2), w("y", 1), w("z", 1)))
        #expect(report.anomalies.map(\.kind) == [.g0, .g1c], "\(report.anomalies)")
        #expect(report.count(of: .g2Item) == 0)
    }

    @Test func theExampleCycleIsAShortOne() {
        // T1 -wr-> T2 -wr-> T3 -wr-> T4, and both T3 and T4 read a@0 that T1 overwrote: two
        // cycles through rw, of three and four transactions; the example is the shorter.
        let report = check(
            T.committed("T1", w("a", 1), w("b", 1)),
            T.committed("T2", r("b", 1, from: "T1"), w("c", 1)),
            T.committed("T3", r("c", 1, from: "T2"), r("a", 0), w("d", 1)),
            T.committed("T4", r("d", 1, from: "T3"), r("a", 0)))
        #expect(report.anomalies.map(\.kind) == [.g2Item], "\(report.anomalies)")
        #expect(report.anomalies.first?.transactions.sorted() == ["T1", "T2", "T3"], "\(report.anomalies)")
        #expect(report.anomalies.first?.description.hasSuffix("(one cycle of 4 transactions that depend on each other)") == true)
    }
}

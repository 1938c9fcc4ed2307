import SandhiHistory
import Testing

/// Aborted transactions never join the graph; unknown outcomes join it only once a read shows
/// that they committed, and are never judged themselves.
@Suite struct OutcomeTests {
    @Test func anAbortedWriteMayShareAVersionWithACommittedOne() {
        let report = check(
            T.aborted("T1", r("x", 0), w("x", 1, value: 1)),
            T.committed("T2", r("x", 0), w("x", 1, value: 2)),
            T.committed("T3", r("x", 1, from: "T2", value: 2)))
        #expect(report.isClean, "\(report.anomalies)")
        #expect(report.aborted == 1 && report.edgeCounts[.wr] == 1)
    }

    @Test func anAbortedTransactionIsNeverJudged() {
        let report = check(
            T.aborted("T1", r("x", 9, from: "T-ghost"), w("x", 1)),
            T.audit("A1", outcome: .aborted, r("x", 0, value: 1)))
        #expect(report.isClean, "\(report.anomalies)")
        #expect(report.auditsChecked == 0)
    }

    @Test func readingAnUnknownOutcomeIsNotAnAbortedRead() {
        let report = check(
            T.unknown("U1", r("x", 0), w("x", 1)),
            T.committed("T2", r("x", 1, from: "U1")))
        #expect(report.isClean, "\(report.anomalies)")
        #expect(report.unknown == 1 && report.unknownObserved == 1)
        #expect(report.edgeCounts[.wr] == 1)
    }

    @Test func anObservedUnknownOutcomeTakesPartInCycles() {
        // Write skew between U1 (outcome unknown) and T2; T3 read U1's write, so U1 committed.
        let report = check(
            T.unknown("U1", r("x", 0), r("y", 0), w("x", 1)),
            T.committed("T2", r("x", 0), r("y", 0), w("y", 1)),
            T.committed("T3", r("x", 1, from: "U1")))
        #expect(report.anomalies.map(\.kind) == [.g2Item], "\(report.anomalies)")
        #expect(Set(report.anomalies.first?.transactions ?? []) == ["U1", "T2"])
    }

    @Test func anUnobservedUnknownOutcomeIsLeftOut() {
        // The same write skew, but nobody read U1's write: it may have aborted, so no cycle.
        let report = check(
            T.unknown("U1", r("x", 0), r("y", 0), w("x", 1)),
            T.committed("T2", r("x", 0), r("y", 0), w("y", 1)))
        #expect(report.isClean, "\(report.anomalies)")
        #expect(report.unknownObserved == 0)
    }

    @Test func anUnknownOutcomesOwnReadsAreNotJudged() {
        // U1 read an aborted write and U2 audited a wrong total; neither is known to have committed.
        let report = check(
            T.aborted("T1", w("x", 1)),
            T.unknown("U1", r("x", 1, from: "T1"), w("y", 1)),
            T.committed("T2", r("y", 1, from: "U1")),
            T.audit("U2", outcome: .unknown, r("x", 0, value: 5), r("y", 0, value: 5)))
        #expect(report.isClean, "\(report.anomalies)")
        #expect(report.auditsChecked == 0)
    }

    @Test func anObservedUnknownWriteCanBeADuplicateVersion() {
        let report = check(
            T.unknown("U1", r("x", 0), w("x", 1)),
            T.committed("T2", r("x", 0), w("x", 1)),
            T.committed("T3", r("x", 1, from: "U1")))
        #expect(report.anomalies.map(\.kind) == [.duplicateVersion], "\(report.anomalies)")
        #expect(report.anomalies.first?.transactions == ["U1", "T2"])
    }
}

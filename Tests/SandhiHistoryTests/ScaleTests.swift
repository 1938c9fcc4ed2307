import Foundation
import SandhiHistory
import Testing

/// Histories of real-run size: the iterative SCC and BFS must not overflow the stack, and the
/// check must stay fast.
@Suite struct ScaleTests {
    @Test func aLargeSerialHistoryIsClean() {
        let history = SerialBankHistory.make(transactions: 50_000, accounts: 200, seed: 7)
        let report = HistoryChecker().check(history)
        #expect(report.isClean, "\(report.anomalies.prefix(5))")
        #expect(report.transactionsChecked == 50_000)
    }

    @Test func aRingOfAHundredThousandIsOneG1cCycle() {
        // T0 -wr-> T1 -wr-> ... -wr-> T99999 -wr-> T0: one component, and a DFS 100,000 deep.
        let count = 100_000
        let transactions = (0..<count).map { index in
            HistoryTransaction(id: "T\(index)", outcome: .committed, ops: [
                .read(key: "k\(index)", value: 1, version: 1, writer: "T\((index + count - 1) % count)"),
                .write(key: "k\((index + 1) % count)", value: 1, version: 1),
            ])
        }
        let report = HistoryChecker().check(header: HistoryHeader(totalPaise: 0), transactions: transactions)
        #expect(report.anomalies.map(\.kind) == [.g1c])
        #expect(report.anomalies.first?.transactions.count == count)
    }

    /// Not a check: writes a 200,000-transaction history for timing the release build, when
    /// SANDHI_HISTORY_BENCH_FILE names where to put it:
    ///     SANDHI_HISTORY_BENCH_FILE=/tmp/h.jsonl swift test --filter writeBenchmarkHistory
    ///     swift build -c release && time .build/release/sandhi check-history /tmp/h.jsonl
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SANDHI_HISTORY_BENCH_FILE"] != nil))
    func writeBenchmarkHistory() throws {
        let path = ProcessInfo.processInfo.environment["SANDHI_HISTORY_BENCH_FILE"]!
        let history = SerialBankHistory.make(transactions: 200_000, accounts: 1_000, auditEvery: 1_000, seed: 42)
        var text = HistoryCodec.encode(header: history.header) + "\n"
        for transaction in history.transactions { text += HistoryCodec.encode(transaction) + "\n" }
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }
}

import ArgumentParser
import Foundation
import SandhiHistory

struct CheckHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-history",
        abstract: "Check a recorded history for garbage reads, isolation anomalies, lost updates and the bank invariant.",
        discussion: """
            FILE is JSON lines: a header {"type":"history","version":1,"total_paise":N}, then one \
            {"type":"txn",...} line per transaction with its reads (value, version, writer) and \
            writes (value, version). Finds garbage reads (a value other than the one the read \
            version's writer wrote), G0, G1a, G1b, G1c and G2-item (Adya), duplicate versions, \
            and committed audits whose reads do not sum to total_paise. Each cycle is \
            shown as one example, e.g. T-1 -rw(hdfc/acct-000001)-> T-2 -wr(sbi/acct-000002)-> T-1.

            Exit status: 0 the history is clean; 1 anomalies were found; 2 the file is missing \
            or malformed (one line on stderr naming the file, the line and the problem).
            """)

    @Argument(help: "The history file (JSON lines).")
    var file: String

    @Flag(help: "Print the result as JSON.")
    var json = false

    /// Anomalies printed per kind; every one is counted. A broken run can produce thousands of
    /// the same anomaly, and the first few say what went wrong.
    static let printedPerKind = 20

    func run() async throws {
        try await reportingErrors {
            let history = try load()
            let report = HistoryChecker().check(history)
            if json {
                printJSON(report)
            } else {
                printText(report, totalPaise: history.header.totalPaise)
            }
            return report.isClean ? 0 : 1
        }
    }

    private func load() throws -> History {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else { throw UsageFailure("\(file): no such file") }
        guard !isDirectory.boolValue else { throw UsageFailure("\(file): is a directory, not a history file") }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: file))
        } catch {
            throw UsageFailure("\(file): cannot be read (\(error.localizedDescription))")
        }
        do {
            return try HistoryCodec.decode(data)
        } catch {
            throw UsageFailure("\(file): \(error)")
        }
    }

    /// The anomalies to print: the first `printedPerKind` of each kind, and how many were left out.
    private func shown(_ report: HistoryReport) -> (anomalies: [Anomaly], omitted: [AnomalyKind: Int]) {
        var shown: [Anomaly] = []
        var omitted: [AnomalyKind: Int] = [:]
        for kind in AnomalyKind.allCases {
            let all = report.anomalies(of: kind)
            shown += all.prefix(Self.printedPerKind)
            if all.count > Self.printedPerKind { omitted[kind] = all.count - Self.printedPerKind }
        }
        return (shown, omitted)
    }

    private func printText(_ report: HistoryReport, totalPaise: Int64) {
        print("history: \(file)")
        let observed = report.unknown > 0 ? " (\(report.unknownObserved) of them read by others, so checked as committed)" : ""
        print("transactions: \(report.transactionsChecked) (committed \(report.committed), aborted \(report.aborted), unknown \(report.unknown)\(observed))")
        print("audits checked: \(report.auditsChecked)")
        print("edges: " + EdgeKind.allCases.map { "\($0.rawValue) \(report.edgeCounts[$0] ?? 0)" }.joined(separator: ", "))
        let (anomalies, omitted) = shown(report)
        for kind in AnomalyKind.allCases where report.count(of: kind) > 0 {
            print("\(kind): \(report.count(of: kind))")
            for anomaly in anomalies where anomaly.kind == kind { print("  \(kind): \(anomaly.description)") }
            if let more = omitted[kind] { print("  ... and \(more) more") }
        }
        if report.isClean {
            print("result: clean (no garbage read; no G0, G1a, G1b, G1c or G2-item; no duplicate version; every committed audit summed to \(totalPaise) paise)")
        } else {
            let found = AnomalyKind.allCases.filter { report.count(of: $0) > 0 }.map { "\($0) \(report.count(of: $0))" }
            print("result: \(report.anomalies.count) anomal\(report.anomalies.count == 1 ? "y" : "ies") (\(found.joined(separator: ", ")))")
        }
    }

    private func printJSON(_ report: HistoryReport) {
        struct Item: Encodable { var kind: String; var transactions: [String]; var description: String }
        struct Output: Encodable {
            var file: String
            var transactions: Int, committed: Int, aborted: Int, unknown: Int, unknown_observed: Int, audits_checked: Int
            var edges: [String: Int]
            var counts: [String: Int]
            var anomalies: [Item]
            var anomalies_not_shown: Int
            var clean: Bool
        }
        let (anomalies, omitted) = shown(report)
        print(jsonLine(Output(
            file: file, transactions: report.transactionsChecked, committed: report.committed, aborted: report.aborted,
            unknown: report.unknown, unknown_observed: report.unknownObserved, audits_checked: report.auditsChecked,
            edges: Dictionary(uniqueKeysWithValues: report.edgeCounts.map { ($0.key.rawValue, $0.value) }),
            counts: Dictionary(uniqueKeysWithValues: report.counts.map { ($0.key.rawValue, $0.value) }),
            anomalies: anomalies.map { Item(kind: $0.kind.rawValue, transactions: $0.transactions, description: $0.description) },
            anomalies_not_shown: omitted.values.reduce(0, +), clean: report.isClean)))
    }
}

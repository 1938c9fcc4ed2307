import ArgumentParser
import Foundation
import SandhiEngine
import SandhiSimulation

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Deterministic fault simulation of the real engine: every failure reproducible from its seed.",
        discussion: """
            One seed:   sandhi simulate --seed 42
            Many seeds: sandhi simulate --seeds 1..2000 (on every core; --jobs 1 for one thread)
            A planted bug, to see the checks fail: sandhi simulate --seeds 1..1000 --bug commit-before-durable
            Exit status 1 when an invariant is violated; the report names the seed, the invariant, the last
            steps of the trace and the command that replays it.
            """)

    @Option(help: "Run this one seed.")
    var seed: UInt64?

    @Option(help: "Run a range of seeds, A..B (inclusive).")
    var seeds: String?

    @Option(help: "Transfers per seed.")
    var transactions: Int = 30

    @Option(help: "Plant a known bug: \(SimulationBug.allCases.map(\.rawValue).joined(separator: ", ")).")
    var bug: String?

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Option(help: "How many of the last steps a failing seed prints.")
    var trace: Int = 40

    @Option(help: "Threads running seeds at once (default: one per core). A seed replays the same on any.")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    func run() async throws {
        try await reportingErrors {
            guard (1...100_000).contains(transactions) else { throw UsageFailure("--transactions must be between 1 and 100000, got \(transactions)") }
            var planted: SimulationBug?
            if let bug {
                guard let known = SimulationBug(rawValue: bug) else {
                    throw UsageFailure("unknown bug \"\(bug)\"; known: \(SimulationBug.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                planted = known
            }
            let range: ClosedRange<UInt64>
            switch (seed, seeds) {
            case (let one?, nil): range = one...one
            case (nil, let text?): range = try Self.parseRange(text)
            case (nil, nil): throw UsageFailure("give --seed S or --seeds A..B")
            case (_?, _?): throw UsageFailure("give --seed or --seeds, not both")
            }
            guard (1...100_000).contains(trace) else { throw UsageFailure("--trace must be between 1 and 100000, got \(trace)") }
            guard (1...256).contains(jobs) else { throw UsageFailure("--jobs must be between 1 and 256, got \(jobs)") }
            var options = SimulationOptions(seed: range.lowerBound)
            options.transactions = transactions
            options.traceTail = trace
            options.bug = planted
            return range.count == 1 ? runOne(options) : runMany(range, options)
        }
    }

    static func parseRange(_ text: String) throws -> ClosedRange<UInt64> {
        let parts = text.components(separatedBy: "..")
        guard parts.count == 2, let low = UInt64(parts[0]), let high = UInt64(parts[1]), low <= high else {
            throw UsageFailure("--seeds must be A..B with A <= B, got \(text)")
        }
        guard high - low < 100_000_000 else { throw UsageFailure("--seeds spans more than 100000000 seeds") }
        return low...high
    }

    func runOne(_ options: SimulationOptions) -> Int32 {
        var world = SimulatedWorld(options)
        let report = world.run()
        if json {
            print(jsonLine(report))
            return report.passed ? 0 : 1
        }
        print("seed \(report.seed)" + (report.bug.map { ", planted bug \($0.rawValue)" } ?? "")
              + ": \(report.transactions) transfers (\(report.committed) committed, \(report.aborted) aborted), "
              + "\(report.steps) steps, \(formatMicros(report.virtualTimeUs)) of virtual time")
        print("faults        " + Self.counts(report.injected))
        print("cases         " + Self.counts(report.cases))
        if report.heuristicCases > 0 {
            print("reconciled    \(report.heuristicCases) heuristic case(s); the simulated operator ran \(report.linkedTransactions) "
                  + "linked transaction(s) and wrote off \(report.writtenOffPaise) paise by mark-resolved")
        }
        print("trace         \(String(report.traceHash, radix: 16))")
        if report.passed {
            print("invariants    all hold (atomicity unless in the reconciliation queue, heuristic cases true and settled, "
                  + "conservation, durability, decision before commit, durable votes, record before forget, "
                  + "log and write-set recovery, no orphans, liveness, isolation)")
        } else {
            for violation in report.violations.prefix(10) { print("VIOLATION     \(violation)") }
            print("last steps:")
            for line in report.traceTail { print("  \(line)") }
            print("replay:       \(report.replayCommand)")
        }
        return report.passed ? 0 : 1
    }

    func runMany(_ range: ClosedRange<UInt64>, _ template: SimulationOptions) -> Int32 {
        var template = template
        template.traceTailOfPassingRuns = false
        let startNs = DispatchTime.now().uptimeNanoseconds
        let summary = SeedRange(seeds: range, template: template, jobs: jobs).run()
        let (transfers, committed, failing) = (summary.transfers, summary.committed, summary.failing)
        let (heuristicCases, linked, writtenOff) = (summary.heuristicCases, summary.linkedTransactions, summary.writtenOffPaise)
        let (injected, cases) = (summary.injected, summary.cases)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - startNs) / 1e9
        let perSecond = Double(transfers) / max(seconds, 1e-9)
        if json {
            struct Summary: Encodable {
                var seeds: String; var transfers: Int; var committed: Int; var injected: [String: Int]; var cases: [String: Int]
                var heuristic_cases: Int; var linked_transactions: Int; var written_off_paise: Int64
                var failing_seeds: [UInt64]; var first_violation: String?; var replay: String?; var transfers_per_second: Double
            }
            print(jsonLine(Summary(seeds: "\(range.lowerBound)..\(range.upperBound)", transfers: transfers, committed: committed,
                                   injected: injected, cases: cases, heuristic_cases: heuristicCases, linked_transactions: linked,
                                   written_off_paise: writtenOff, failing_seeds: failing.map(\.seed),
                                   first_violation: failing.first?.violations.first?.description,
                                   replay: failing.first?.replayCommand, transfers_per_second: perSecond)))
            return failing.isEmpty ? 0 : 1
        }
        print("seeds         \(range.lowerBound)..\(range.upperBound) (\(range.count))" + (template.bug.map { ", planted bug \($0.rawValue)" } ?? ""))
        print("transfers     \(transfers) (\(committed) committed) in \(String(format: "%.1f", seconds))s: \(String(format: "%.0f", perSecond)) simulated transfers/s")
        print("reconciled    \(heuristicCases) heuristic case(s); the simulated operator ran \(linked) linked transaction(s) "
              + "and wrote off \(writtenOff) paise by mark-resolved")
        print(Self.table(["fault injected": injected, "failure case hit": cases]))
        if failing.isEmpty {
            print("violations    none")
            return 0
        }
        print("violations    \(failing.count) seed(s): " + failing.prefix(10).map { "\($0.seed)" }.joined(separator: ", "))
        let first = failing[0]
        print("first         seed \(first.seed) (the \(first.seed - range.lowerBound + 1)th tried): \(first.violations[0])")
        print("last steps:")
        for line in first.traceTail.suffix(12) { print("  \(line)") }
        print("replay:       \(first.replayCommand)")
        return 1
    }

    /// Each section's counts as aligned rows, largest first.
    static func table(_ sections: [String: [String: Int]]) -> String {
        var lines: [String] = []
        for (title, counts) in sections.sorted(by: { $0.key < $1.key }) {
            let width = max(title.count, (counts.keys.map(\.count).max() ?? 0) + 2) + 2
            lines.append(title.padding(toLength: width, withPad: " ", startingAt: 0) + "count")
            for (name, count) in counts.sorted(by: { ($1.value, $0.key) < ($0.value, $1.key) }) {
                lines.append(("  " + name).padding(toLength: width, withPad: " ", startingAt: 0) + String(count))
            }
            if counts.isEmpty { lines.append("  none") }
        }
        return lines.joined(separator: "\n")
    }

    static func counts(_ counts: [String: Int]) -> String {
        counts.isEmpty ? "none" : counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    }
}

import Foundation
import SandhiEngine
import SandhiRuntime

/// `sandhi bench --console`: what watching costs. The closed-loop transfer benchmark runs in
/// eight phases on one engine, the real console attached (see `AttachedConsole`) in half of
/// them, and the engine's throughput is compared between the two halves of the same run: a
/// shared, noisy machine moves both alike. The order is ABBA ABBA, so a drift over the run
/// (a growing WAL, a warming cache) weighs on both halves equally; a short warm-up goes first
/// and is not counted.
struct ConsoleCostBench: Encodable {
    struct Side: Encodable {
        /// Committed transfers over the phases' elapsed time.
        var transfersPerSecond: Double
        var phaseTransfersPerSecond: [Double]
        /// Means over the phases.
        var latencyP50Us: UInt64
        var latencyP99Us: UInt64
    }

    var phaseSeconds: Double
    var without: Side
    var with: Side
    /// 1 - with/without: the share of throughput the console took.
    var slowdown: Double
    /// The console thread's CPU time over the attached wall time: 1.0 is a whole core.
    var consoleCoreShare: Double
    var framesPerSecond: Double
    var eventsPerSecond: Double
    var eventsDropped: Int
    var terminalBytesPerSecond: Double
    var haltedReason: String?

    static let order: [Bool] = [false, true, true, false, false, true, true, false]
    static let warmUpMs: UInt64 = 1_000

    static func run(driver: CoordinatorDriver, console: AttachedConsole, accounts: TransferBench.AccountMap,
                    options: TransferBench.Options) async -> ConsoleCostBench {
        var phaseOptions = options
        phaseOptions.durationMs = max(250, options.durationMs / UInt64(order.count))
        var warmUp = phaseOptions
        warmUp.durationMs = min(warmUpMs, phaseOptions.durationMs)
        var halted = await TransferBench.run(driver: driver, accounts: accounts, options: warmUp).haltedReason

        var reports: [Bool: [TransferBench.Report]] = [false: [], true: []]
        var attachedPhases: [AttachedConsole.Phase] = []
        for (index, attached) in order.enumerated() where halted == nil {
            phaseOptions.seed = options.seed &+ UInt64(index) &+ 1
            if attached { console.attach() }
            let report = await TransferBench.run(driver: driver, accounts: accounts, options: phaseOptions)
            if attached { attachedPhases.append(await console.detach()) }
            reports[attached, default: []].append(report)
            halted = report.haltedReason
        }

        let wallUs = attachedPhases.reduce(0) { $0 + $1.wallUs }
        let seconds = Double(max(1, wallUs)) / 1e6
        let without = side(reports[false] ?? []), with = side(reports[true] ?? [])
        return ConsoleCostBench(
            phaseSeconds: Double(phaseOptions.durationMs) / 1_000, without: without, with: with,
            slowdown: without.transfersPerSecond > 0 ? 1 - with.transfersPerSecond / without.transfersPerSecond : 0,
            consoleCoreShare: Double(attachedPhases.reduce(0) { $0 + $1.consoleCPUUs }) / Double(max(1, wallUs)),
            framesPerSecond: Double(attachedPhases.reduce(0) { $0 + $1.frames }) / seconds,
            eventsPerSecond: Double(attachedPhases.reduce(0) { $0 + $1.events }) / seconds,
            eventsDropped: attachedPhases.reduce(0) { $0 + $1.dropped },
            terminalBytesPerSecond: Double(attachedPhases.reduce(0) { $0 + $1.terminalBytes }) / seconds,
            haltedReason: halted)
    }

    private static func side(_ reports: [TransferBench.Report]) -> Side {
        let committed = reports.reduce(0) { $0 + $1.committed }
        let elapsedMs = reports.reduce(UInt64(0)) { $0 + $1.elapsedMs }
        let count = UInt64(max(1, reports.count))
        return Side(
            transfersPerSecond: Double(committed) * 1_000 / Double(max(1, elapsedMs)),
            phaseTransfersPerSecond: reports.map(\.transfersPerSecond),
            latencyP50Us: reports.reduce(0) { $0 + $1.latencyP50Us } / count,
            latencyP99Us: reports.reduce(0) { $0 + $1.latencyP99Us } / count)
    }

    func text(banks: [String], clients: Int) -> String {
        func rate(_ value: Double) -> String { String(format: "%.0f", value) }
        func line(_ label: String, _ side: Side) -> String {
            "\(label)\(rate(side.transfersPerSecond)) transfers/s (phases \(side.phaseTransfersPerSecond.map(rate).joined(separator: " · "))); "
                + "latency p50 \(formatMicros(side.latencyP50Us)) p99 \(formatMicros(side.latencyP99Us))"
        }
        var lines = [
            "sandhi bench --console: \(banks.count) banks (\(banks.joined(separator: ", "))), uniform, \(clients) clients; "
                + "\(Self.order.count) phases of \(String(format: "%.1f", phaseSeconds))s in the order ABBA ABBA, "
                + "B with the console attached (\(AttachedConsole.size.columns)x\(AttachedConsole.size.rows) pseudo-terminal, screens 1-6 in turn)",
            line("without (A)   ", without),
            line("with (B)      ", with),
            "slowdown      \(String(format: "%.1f", slowdown * 100))% of the engine's throughput",
            "console       \(String(format: "%.1f", consoleCoreShare * 100))% of one core; \(String(format: "%.1f", framesPerSecond)) frames/s; "
                + "\(rate(eventsPerSecond)) events/s taken, \(eventsDropped) dropped; "
                + "\(String(format: "%.1f", terminalBytesPerSecond / 1_024)) KiB/s to the terminal",
        ]
        if let haltedReason { lines.append("halted        \(haltedReason)") }
        return lines.joined(separator: "\n")
    }
}

import ArgumentParser
import Foundation
import SandhiEngine
import SandhiParticipants
import SandhiRuntime

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Durable transfer throughput and latency over the SQLite banks (HDR percentiles).",
        discussion: """
            Creates the data directory (four banks) if it does not exist. Safe to kill -9 at any \
            moment: `sandhi recover` then `sandhi check` must pass. Measure with a release build: \
            swift run -c release sandhi bench --data /tmp/bench --clients 64 --duration 10
            """)

    @OptionGroup var common: CommonOptions

    @Option(help: "Concurrent clients (closed loop: each waits for its transfer before the next).")
    var clients: Int = 64

    @Option(help: "How long to run, in seconds.")
    var duration: Double = 10

    @Option(help: "Accounts per bank when the data directory is created.")
    var accounts: Int = 10_000

    @Option(help: "Answer clients at the commit point, `decided` (COMMIT record durable), or once `finished` (every bank acknowledged phase two).")
    var answer: String = "decided"

    @Option(help: "Seed of the workload's random choices.")
    var seed: UInt64 = 1

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            guard (1...4_096).contains(clients) else { throw UsageFailure("--clients must be between 1 and 4096, got \(clients)") }
            guard duration > 0, duration <= 86_400 else { throw UsageFailure("--duration must be between 0 and 86400 seconds") }
            guard accounts >= 2, accounts <= 1_000_000 else { throw UsageFailure("--accounts must be between 2 and 1000000") }
            var options = TransferBench.Options()
            switch answer {
            case "finished": options.answerWhen = .finished
            case "decided": options.answerWhen = .decided
            default: throw UsageFailure("--answer must be `decided` or `finished`, got \(answer)")
            }
            options.clients = clients
            options.durationMs = UInt64(duration * 1_000)
            options.seed = seed
            let logger = common.makeLogger()
            let directory = common.directory
            if !DataDirectory.exists(directory.configurationPath) {
                try InitCommand.create(directory: directory, banks: InitCommand.defaultBanks, accounts: accounts,
                                       opening: .rupees(1_00_000), logger: logger)
            }
            let configuration = try directory.loadConfiguration()
            let lock = try directory.lock()
            var accountMap: TransferBench.AccountMap = [:]
            for participant in configuration.participants {
                let bank = try SQLiteBank(path: directory.bankPath(participant.id), participant: participant.id, logger: logger)
                accountMap[participant.id] = try bank.balances().map(\.account)
                bank.close()
            }
            guard accountMap.values.filter({ !$0.isEmpty }).count >= 2 else {
                throw UsageFailure("\(directory.path) needs at least two banks with accounts to benchmark")
            }
            let phases = PhaseLatencies()
            let node = try await SandhiNode.start(directory: directory, lock: lock, logger: logger) { phases.observe($0) }
            var report = await TransferBench.run(driver: node.driver, accounts: accountMap, options: options)
            node.stop()
            report.phases = phases.summary
            if json {
                print(jsonLine(report))
            } else {
                let banks = accountMap.keys.sorted().map(\.name).joined(separator: ", ")
                print("sandhi bench: \(accountMap.count) banks (\(banks)), \(clients) clients, \(String(format: "%.1f", Double(report.elapsedMs) / 1_000))s, answer when \(answer)")
                print("committed     \(report.committed) transfers, \(String(format: "%.0f", report.transfersPerSecond)) transfers/s")
                print("aborted       \(report.abortedConflict + report.abortedInsufficientFunds + report.abortedOther) "
                      + "(lock conflict \(report.abortedConflict), insufficient funds \(report.abortedInsufficientFunds), other \(report.abortedOther))")
                print("latency       p50 \(formatMicros(report.latencyP50Us))  p99 \(formatMicros(report.latencyP99Us))  "
                      + "p99.9 \(formatMicros(report.latencyP999Us))  max \(formatMicros(report.latencyMaxUs))")
                print("group commit  \(String(format: "%.1f", report.meanBatchSize)) messages per bank commit, "
                      + "\(String(format: "%.1f", report.messagesPerSync)) per bank fsync (\(report.participantBatches) commits, \(report.participantSyncs) fsyncs); "
                      + "log \(report.logRecords) records in \(report.logSyncs) fsyncs")
                print("fsyncs        \(String(format: "%.2f", Double(report.participantSyncs + report.logSyncs) / Double(max(1, report.committed)))) per committed transfer")
                if let phases = report.phases {
                    print("phases        vote p50 \(formatMicros(phases.voteP50Us)) p99 \(formatMicros(phases.voteP99Us)) · "
                          + "decision durable p50 \(formatMicros(phases.decisionP50Us)) p99 \(formatMicros(phases.decisionP99Us)) · "
                          + "acknowledged p50 \(formatMicros(phases.acknowledgeP50Us)) p99 \(formatMicros(phases.acknowledgeP99Us))")
                }
                if let halted = report.haltedReason { print("halted        \(halted)") }
            }
            return report.haltedReason == nil ? 0 : 1
        }
    }
}

extension InitCommand {
    static let defaultBanks = ["hdfc", "icici", "axis", "sbi"].map { ParticipantID(validated: $0) }
}

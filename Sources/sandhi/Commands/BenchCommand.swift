import ArgumentParser
import Foundation
import SandhiConsole
import SandhiEngine
import SandhiParticipants
import SandhiPostgres
import SandhiPostgresTools
import SandhiRuntime
import SandhiService
import SandhiTerminalUI

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

    @Option(help: "`uniform` (random accounts of two banks), `contention` (a few hot accounts, random order: lock waits and deadlocks), `wait-graph` (the deadlock detector alone, in memory), or `console` (the console composing frames of --waiters transactions in flight, in memory).")
    var workload: String = "uniform"

    @Option(help: "Accounts the contention workload moves money between.")
    var hotAccounts: Int = 4

    @Flag(help: "With --hot-accounts 1: lock the hot account first in every transfer (no deadlock can form).")
    var hotFirst = false

    @Option(help: "Retries of a transfer aborted as a deadlock victim or by a lock timeout.")
    var maxRetries: Int = 20

    @Option(help: "Deadlock detection for this run: `on`, or `off` (lock timeouts only). Default: as in sandhi.toml.")
    var deadlockDetection: String?

    @Option(help: "Lock timeout for this run, in milliseconds. Default: as in sandhi.toml.")
    var lockTimeoutMs: UInt64?

    @Option(help: "Share of operations that are audits: read every account of every bank under shared locks; each must see the global total exactly.")
    var readFraction: Double = 0

    @Option(help: "Record every transaction's reads and writes to this file (JSON lines) for `sandhi check-history`.")
    var history: String?

    @Option(help: "Waiting transactions in the graph of the wait-graph workload.")
    var waiters: Int = 10_000

    @Flag(help: "Attach the real console (on a pseudo-terminal, every screen in turn) in every second of six phases, and report what it costs the engine.")
    var console = false

    @Option(help: "`sqlite` (the data directory's banks), or `postgres`: two fresh PostgreSQL databases (fsync on), with a hand-written two-phase client measured first on the same server as the yardstick.")
    var participants: String = "sqlite"

    @Option(help: "With --participants postgres: the server to create the two databases on (postgres://user@host/database, a role that may create databases). Default: a throwaway cluster this run starts and removes.")
    var postgresServer: String?

    @Option(help: "With --participants postgres: each bank's sessions (a quarter stage groups, the rest run phase two and write-sets alongside). Default: 32.")
    var sessions: Int?

    @Option(help: "With --participants postgres: the hand-written client's worker counts, each measured for --duration seconds. Default: 1,2,4.")
    var baselineWorkers: String?

    @Option(help: "`direct` (clients call the coordinator in-process), or `api`: measure in-process first, then the same workload through the service's HTTP API on a unix socket (one kept-alive connection per client), and print both and the ratio.")
    var via: String = "direct"

    @Option(help: "Seed of the workload's random choices.")
    var seed: UInt64 = 1

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            if workload == "wait-graph" { return try runWaitGraph() }
            if workload == "console" {
                // The console's frame composition over a busy engine, in memory (no banks).
                let result = ConsoleComposeBenchmark.run(transactions: waiters, context: RenderContext(theme: Theme.builtIn, glyphs: .unicode))
                print(result)
                return 0
            }
            guard (1...4_096).contains(clients) else { throw UsageFailure("--clients must be between 1 and 4096, got \(clients)") }
            guard duration > 0, duration <= 86_400 else { throw UsageFailure("--duration must be between 0 and 86400 seconds") }
            guard accounts >= 2, accounts <= 1_000_000 else { throw UsageFailure("--accounts must be between 2 and 1000000") }
            var options = TransferBench.Options()
            switch answer {
            case "finished": options.answerWhen = .finished
            case "decided": options.answerWhen = .decided
            default: throw UsageFailure("--answer must be `decided` or `finished`, got \(answer)")
            }
            guard let kind = TransferBench.Workload(rawValue: workload) else {
                throw UsageFailure("--workload must be `uniform` or `contention`, got \(workload)")
            }
            options.workload = kind
            guard !console || history == nil else { throw UsageFailure("--console and --history cannot be used together") }
            guard hotAccounts >= 1, hotAccounts <= 100_000 else { throw UsageFailure("--hot-accounts must be between 1 and 100000, got \(hotAccounts)") }
            guard (0...1_000).contains(maxRetries) else { throw UsageFailure("--max-retries must be between 0 and 1000, got \(maxRetries)") }
            guard readFraction >= 0, readFraction <= 1 else { throw UsageFailure("--read-fraction must be between 0 and 1, got \(readFraction)") }
            options.readFraction = readFraction
            options.hotAccounts = hotAccounts
            guard !hotFirst || hotAccounts == 1 else { throw UsageFailure("--hot-first needs --hot-accounts 1") }
            options.hotFirst = hotFirst
            options.maxRetries = maxRetries
            var detection: Bool?
            switch deadlockDetection {
            case nil: detection = nil
            case "on": detection = true
            case "off": detection = false
            case let other?: throw UsageFailure("--deadlock-detection must be `on` or `off`, got \(other)")
            }
            if let lockTimeoutMs, lockTimeoutMs == 0 || lockTimeoutMs > 3_600_000 {
                throw UsageFailure("--lock-timeout-ms must be between 1 and 3600000")
            }
            options.clients = clients
            options.durationMs = UInt64(duration * 1_000)
            options.seed = seed
            if let recorder = IOTraceRecording.recorder {
                options.onCommitted = { recorder.record(.acknowledged(transaction: $0, writers: $1)) }
            }
            let logger = common.makeLogger()
            let directory: DataDirectory
            var postgresRun: PostgresBenchRun?
            defer { postgresRun?.finish() }
            var yardstick: [HandWrittenTwoPhaseBench.Report] = []
            switch participants {
            case "sqlite":
                if postgresServer != nil || sessions != nil || baselineWorkers != nil {
                    throw UsageFailure("--postgres-server, --sessions and --baseline-workers go with --participants postgres")
                }
                directory = common.directory
                if !DataDirectory.exists(directory.configurationPath) {
                    try InitCommand.create(directory: directory, banks: InitCommand.defaultBanks, accounts: accounts,
                                           opening: .rupees(1_00_000), logger: logger)
                }
            case "postgres":
                guard !console, history == nil, kind == .uniform, readFraction == 0 else {
                    throw UsageFailure("--participants postgres runs the uniform workload only (no --console, --history, --read-fraction)")
                }
                let workers = try parseBaselineWorkers()
                let sessions = self.sessions ?? 32
                guard SandhiConfiguration.Participant.sessionsRange.contains(sessions) else {
                    throw UsageFailure("--sessions must be between 1 and 256, got \(sessions)")
                }
                var baseline = HandWrittenTwoPhaseBench.Options()
                baseline.accounts = accounts
                baseline.durationMs = options.durationMs
                baseline.seed = seed
                let run = try await PostgresBenchRun.start(serverURL: postgresServer, accounts: accounts, opening: .rupees(1_00_000),
                                                           sessions: sessions, clients: clients, workers: workers.max() ?? 1,
                                                           baseline: baseline, logger: logger)
                postgresRun = run
                run.finishOnSignals()
                directory = run.directory
                yardstick = try await run.measureYardstick(workers: workers, options: baseline)
            default:
                throw UsageFailure("--participants must be `sqlite` or `postgres`, got \(participants)")
            }
            let configuration = try directory.loadConfiguration()
            if history != nil {
                // Settle anything in doubt first, so the recorded history starts from the
                // accounts' final states (recovery would otherwise change them underneath).
                try await SandhiNode.start(directory: directory, logger: logger).stop()
            }
            let lock = try directory.lock()
            var accountMap: TransferBench.AccountMap = [:]
            var baseline: [ParticipantID: [Observation]] = [:]
            var total = Paise.zero
            for participant in configuration.participants {
                let bank = try directory.openBank(participant, of: configuration, logger: logger)
                let balances = try bank.balances()
                if history != nil { baseline[participant.id] = try bank.accountStates() }
                accountMap[participant.id] = balances.map(\.account)
                total = total + balances.reduce(Paise.zero) { $0 + $1.balance }
                bank.close()
            }
            guard accountMap.values.filter({ !$0.isEmpty }).count >= 2 else {
                throw UsageFailure("\(directory.path) needs at least two banks with accounts to benchmark")
            }
            if readFraction > 0, let (bank, list) = accountMap.first(where: { $0.value.count > OperationCodec.maxOperations }) {
                throw UsageFailure("an audit reads every account, and \(bank) has \(list.count) (at most \(OperationCodec.maxOperations) per bank); "
                                   + "create a smaller data directory (sandhi init --accounts N)")
            }
            options.expectedTotal = total
            var recorder: HistoryRecorder?
            if let history {
                recorder = try HistoryRecorder(path: history, totalPaise: total.value, baseline: baseline)
                options.history = recorder
            }
            guard via == "direct" || via == "api" else { throw UsageFailure("--via must be `direct` or `api`, got \(via)") }
            guard via == "direct" || (!console && history == nil && participants == "sqlite") else {
                throw UsageFailure("--via api measures the SQLite banks without --console or --history")
            }
            let phases = PhaseLatencies()
            let attached = console ? try AttachedConsole(logger: logger) : nil
            let hub = via == "api" ? EventHub() : nil
            let node = try await SandhiNode.start(directory: directory, lock: lock, logger: logger,
                                                  onEvent: { event in
                phases.observe(event)
                attached?.observe(event)
                hub?.append(event)
            }, adjust: { configuration in
                if let detection { configuration.detectDeadlocks = detection }
                if let lockTimeoutMs { configuration.lockTimeoutMs = lockTimeoutMs }
            })
            let detectionUsed = node.configuration.detectDeadlocks
            if let attached {
                do {
                    try await attached.start(node: node)
                } catch {
                    node.stop()
                    throw error
                }
                let comparison = await ConsoleCostBench.run(driver: node.driver, console: attached, accounts: accountMap, options: options)
                await attached.close()
                node.stop()
                print(json ? jsonLine(comparison) : comparison.text(banks: accountMap.keys.sorted().map(\.name), clients: clients))
                return comparison.haltedReason == nil ? 0 : 1
            }
            var report = await TransferBench.run(driver: node.driver, accounts: accountMap, options: options)
            if let hub {
                let inProcess = report
                let viaAPI: TransferBench.Report
                do {
                    viaAPI = try await APIBench.run(node: node, hub: hub, socketPath: directory.path + "/bench-api.sock",
                                                    accounts: accountMap, options: options, logger: logger)
                } catch {
                    node.stop()
                    throw error
                }
                node.stop()
                let ratio = viaAPI.transfersPerSecond / max(1, inProcess.transfersPerSecond)
                if json {
                    struct Comparison: Encodable { var inProcess: TransferBench.Report; var viaAPI: TransferBench.Report; var ratio: Double }
                    print(jsonLine(Comparison(inProcess: inProcess, viaAPI: viaAPI, ratio: ratio)))
                } else {
                    print("sandhi bench: \(accountMap.count) banks, uniform, \(clients) clients, \(String(format: "%.1f", duration))s each, answer when \(answer)")
                    for (name, run) in [("in-process ", inProcess), ("via the API", viaAPI)] {
                        print("\(name)   \(String(format: "%.0f", run.transfersPerSecond)) transfers/s  p50 \(formatMicros(run.latencyP50Us))  "
                              + "p99 \(formatMicros(run.latencyP99Us))  p99.9 \(formatMicros(run.latencyP999Us))  (\(run.committed) committed, \(run.aborted) aborted)")
                    }
                    print("ratio         \(String(format: "%.2f", ratio)) of the in-process rate through HTTP on the unix socket (keep-alive)")
                }
                return inProcess.haltedReason == nil && viaAPI.haltedReason == nil ? 0 : 1
            }
            node.stop()
            report.phases = phases.summary
            if let failure = recorder?.close() { throw UsageFailure(failure) }
            if json {
                print(jsonLine(report))
                for baseline in yardstick { print(jsonLine(YardstickLine(baseline))) }
            } else {
                if let postgresRun {
                    print("sandhi bench: two PostgreSQL databases on \(postgresRun.serverDescription)")
                    for baseline in yardstick {
                        print("hand-written  \(baseline.workers) worker\(baseline.workers == 1 ? "" : "s"): \(baseline.transfers) transfers, "
                              + "\(String(format: "%.0f", baseline.transfersPerSecond)) transfers/s (\(baseline.refused) refused)")
                    }
                }
                let banks = accountMap.keys.sorted().map(\.name).joined(separator: ", ")
                let shape = kind == .contention ? "contention on \(hotAccounts) hot accounts" : "uniform"
                print("sandhi bench: \(accountMap.count) banks (\(banks)), \(shape), \(clients) clients, \(String(format: "%.1f", Double(report.elapsedMs) / 1_000))s, "
                      + "answer when \(answer), \(node.configuration.concurrency), deadlock detection \(detectionUsed ? "on" : "off")")
                print("committed     \(report.committed - report.audits) transfers, \(String(format: "%.0f", report.transfersPerSecond)) transfers/s"
                      + (report.audits > 0 ? "; \(report.audits) audits" : ""))
                let causes = report.abortsByCause.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                print("aborted       \(report.aborted) attempts\(causes.isEmpty ? "" : " (\(causes))"); \(report.retries) retries; "
                      + "\(String(format: "%.1f", report.lostFraction * 100))% of \(report.attempts) attempts lost")
                print("deadlocks     \(report.deadlocks) (\(String(format: "%.1f", report.deadlocksPerSecond))/s)")
                if readFraction > 0 {
                    print("audits        \(report.audits) committed, \(report.auditMismatches) saw a total other than \(total.value) paise")
                }
                if let recorder { print("history       \(recorder.transactionCount) transactions in \(recorder.path); check with: sandhi check-history \(recorder.path)") }
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
                // Issue 6's yardstick is the best of 1 to 4 workers; with as many workers as
                // clients the comparison is at equal concurrency.
                let upToFour = yardstick.filter { $0.workers <= 4 }.max { $0.transfersPerSecond < $1.transfersPerSecond }
                for (baseline, what) in [(upToFour, "the best hand-written client of 1-4 workers"),
                                         (yardstick.first { $0.workers == clients }, "the hand-written client at equal concurrency")] {
                    guard let baseline, baseline.transfersPerSecond > 0 else { continue }
                    print("versus        \(String(format: "%.2f", report.transfersPerSecond / baseline.transfersPerSecond))x \(what) "
                          + "(\(baseline.workers) workers, \(String(format: "%.0f", baseline.transfersPerSecond)) transfers/s)")
                }
            }
            return report.haltedReason == nil ? 0 : 1
        }
    }
}

extension BenchCommand {
    func runWaitGraph() throws -> Int32 {
        guard (1_000...1_000_000).contains(waiters) else { throw UsageFailure("--waiters must be between 1000 and 1000000, got \(waiters)") }
        var options = WaitGraphBench.Options()
        options.waiters = waiters
        options.seed = seed
        let report = WaitGraphBench.run(options)
        if json {
            print(jsonLine(report))
            return 0
        }
        func line(_ name: String, _ p: WaitGraphBench.Percentiles) -> String {
            "\(name)p50 \(formatNanos(p.p50Ns))  p99 \(formatNanos(p.p99Ns))  max \(formatNanos(p.maxNs))"
        }
        print("sandhi bench: wait-for graph with \(report.waiters) waiting transactions (\(report.edges) edges), \(options.samples) samples each")
        print(line("newcomer waits     ", report.newcomer))
        print(line("cross-tree wait    ", report.crossTree))
        print(line("wait closing cycle ", report.closingCycle) + "  (\(report.cyclesFound) cycles found)")
        print("full check         \(formatNanos(report.fullCheckNs)) over the whole graph")
        return 0
    }
}

func formatNanos(_ nanos: UInt64) -> String {
    nanos < 1_000 ? "\(nanos)ns" : formatMicros(nanos / 1_000)
}

extension InitCommand {
    static let defaultBanks = ["hdfc", "icici", "axis", "sbi"].map { ParticipantID(validated: $0) }
}

import ArgumentParser
import Foundation
import SandhiEngine
import SandhiRuntime

struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Heuristic (mixed) outcomes: list them, show one, and settle it with an audited action.",
        subcommands: [List.self, Show.self, Resolve.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the heuristic cases not yet settled (--all: every one ever found).")

        @OptionGroup var common: CommonOptions
        @Flag(help: "Include settled cases.") var all = false
        @Flag(help: "Print JSON lines.") var json = false

        func run() async throws {
            try await reportingErrors {
                let queue = try readQueue(common.directory)
                let cases = all ? queue.all : queue.unsettled
                if json {
                    for heuristicCase in cases { print(jsonLine(HeuristicCaseText.JSON(heuristicCase))) }
                } else if cases.isEmpty {
                    print(all ? "no heuristic cases" : "no unsettled heuristic cases (\(queue.all.count) settled; --all lists them)")
                } else {
                    print(HeuristicCaseText.listHeader)
                    for heuristicCase in cases { print(HeuristicCaseText.listLine(heuristicCase)) }
                }
                return 0
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one case: the logged decision, every participant's outcome, the actions taken, and what each action would do.")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The transaction, e.g. T-3.17.") var transaction: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try await reportingErrors {
                let tx = try parseTransaction(transaction)
                let queue = try readQueue(common.directory)
                guard let heuristicCase = queue[tx] else { throw UsageFailure("\(tx) is not a heuristic case (see `sandhi reconcile list --all`)") }
                if json {
                    print(jsonLine(HeuristicCaseText.JSON(heuristicCase)))
                } else {
                    for line in HeuristicCaseText.detail(heuristicCase, queue: queue) { print(line) }
                }
                return 0
            }
        }
    }

    struct Resolve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Settle a case: retry-commit or compensate (each runs a new transaction linked to it) or mark-resolved; then check the invariants.")

        @OptionGroup var common: CommonOptions
        @Argument(help: "The transaction, e.g. T-3.17.") var transaction: String
        @Option(help: "retry-commit | compensate | mark-resolved") var action: String
        @Option(help: "Why (required; recorded with the action).") var note: String
        @Option(name: .customLong("operator"), help: "Who acts (default: $USER).") var operatorName: String?
        @Flag(help: "Show what the action would change, and do nothing.") var dryRun = false

        func run() async throws {
            try await reportingErrors {
                let tx = try parseTransaction(transaction)
                guard let chosen = ReconcileAction(rawValue: action) else {
                    throw UsageFailure("--action must be one of " + ReconcileAction.allCases.map(\.rawValue).joined(separator: ", "))
                }
                guard note.contains(where: { !$0.isWhitespace }) else { throw UsageFailure("--note must say why") }
                let who = operatorName ?? ProcessInfo.processInfo.environment["USER"] ?? "operator"
                let directory = common.directory
                let queue = try readQueue(directory)
                guard queue[tx] != nil else { throw UsageFailure("\(tx) is not a heuristic case (see `sandhi reconcile list --all`)") }
                if case .failure(let refusal) = queue.plan(chosen, for: tx) { throw UsageFailure("\(refusal)") }
                if let service = ThroughService.client(for: directory) {
                    let reason = operatorName.map { "\(note) (operator \($0))" } ?? note
                    return try ThroughService.resolve(tx, action: chosen, note: reason, dryRun: dryRun, client: service)
                }
                if dryRun {
                    switch queue.plan(chosen, for: tx) {
                    case .success(let planned?): print("dry run: \(chosen.rawValue) would run a new transaction: " + HeuristicCaseText.plan(planned))
                    default: print("dry run: \(chosen.rawValue) would record the case as settled; no balance changes")
                    }
                    return 0
                }
                let logger = common.makeLogger()
                let node = try await SandhiNode.start(directory: directory, logger: logger)
                let settled: HeuristicCase
                do {
                    settled = try await node.driver.resolveHeuristic(tx, action: chosen, operatorName: who, note: note)
                } catch {
                    node.stop()
                    throw error
                }
                node.stop()
                let entries = settled.actions.suffix(chosen == .markResolved ? 1 : 2)
                for entry in entries {
                    print("\(entry.action.rawValue) by \(entry.operatorName): \(entry.result.label)" + (entry.linked.map { " [\($0)]" } ?? "")
                          + "  (\(entry.before.label) -> \(entry.after.label))")
                }
                print("\(tx): \(settled.status.label)")
                // The invariants, now that the action has run (a clean stop leaves nothing in flight).
                let lock = try directory.lock()
                defer { lock.release() }
                let audit = try InvariantAudit.run(directory: directory, configuration: node.configuration, logger: logger)
                for note in audit.notes { print(note) }
                if audit.passed {
                    print("invariants: ok")
                } else {
                    for violation in audit.violations { print("VIOLATION: \(violation)") }
                }
                return settled.isSettled && audit.passed ? 0 : 1
            }
        }
    }
}

private func parseTransaction(_ text: String) throws -> TransactionID {
    guard let tx = TransactionID(text) else { throw UsageFailure("\"\(text)\" is not a transaction id (expected T-<epoch>.<sequence>)") }
    return tx
}

private func readQueue(_ directory: DataDirectory) throws -> ReconciliationQueue {
    _ = try directory.loadConfiguration() // a Sandhi directory, not any folder
    return try ReconciliationJournal.read(path: directory.reconciliationPath, fileSystem: directory.io.fileSystem)
}

import ArgumentParser
import Foundation
import SandhiEngine
import SandhiRuntime

struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Resolve every in-doubt transaction from the decision log and say what was decided.")

    @OptionGroup var common: CommonOptions

    @Flag(help: "Print the result as JSON lines.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let node = try await SandhiNode.start(directory: common.directory, logger: common.makeLogger())
            let unsettled = node.driver.reconciliation.unsettled
            node.stop()
            let report = node.recovery
            for note in report.logNotes { print(json ? jsonLine(["note": note]) : "log: \(note)") }
            for item in report.resolved {
                let participants = item.participants.map(\.name).joined(separator: ", ")
                if json {
                    print(jsonLine(["transaction": item.transaction.description, "decision": item.outcome.isCommitted ? "commit" : "abort",
                                    "participants": participants]))
                } else {
                    let decision = item.outcome.isCommitted ? "COMMIT (decision found in the log)" : "ABORT (no decision logged: presumed abort)"
                    print("\(item.transaction)  \(decision)  at \(participants)")
                }
            }
            for (participant, tx, committed) in report.heuristicsReported {
                let outcome = committed ? "committed" : "rolled back"
                print(json ? jsonLine(["transaction": tx.description, "participant": participant.name, "heuristic": outcome])
                           : "\(tx)  \(participant) had \(outcome) on its own (a heuristic decision): reported to the coordinator")
            }
            if !json {
                print(report.resolved.isEmpty ? "nothing in doubt" : "resolved \(report.resolved.count) in-doubt transaction(s)")
                if !unsettled.isEmpty {
                    print("\(unsettled.count) heuristic case(s) need an operator: " + unsettled.prefix(5).map(\.transaction.description).joined(separator: ", ")
                          + " (see `sandhi reconcile list`)")
                }
            }
            return 0
        }
    }
}

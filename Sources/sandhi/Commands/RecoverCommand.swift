import ArgumentParser
import Foundation
import SandhiEngine
import SandhiPostgres
import SandhiRuntime

struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Resolve every in-doubt transaction from the decision log and say what was decided.")

    @OptionGroup var common: CommonOptions

    @Flag(help: "Also list the prepared transactions in each PostgreSQL participant's database that are not this coordinator's (never touched: only their owner knows their outcome).")
    var orphans = false

    @Flag(help: "Print the result as JSON lines.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let directory = common.directory, logger = common.makeLogger()
            let configuration = try directory.loadConfiguration()
            // What each PostgreSQL participant holds prepared before recovery settles it.
            var preparedAs: [ParticipantID: [TransactionID: GlobalTransactionID]] = [:]
            for participant in configuration.participants where participant.kind == .postgres {
                let bank = try PostgresParticipants.bankConfiguration(participant, instance: configuration.instance)
                for gid in try PostgresBank.ownPreparedTransactions(bank, logger: logger) {
                    for tx in gid.transactions { preparedAs[participant.id, default: [:]][tx] = gid }
                }
            }
            let node = try await SandhiNode.start(directory: directory, logger: logger)
            let unsettled = node.driver.reconciliation.unsettled
            node.stop()
            let report = node.recovery
            for note in report.logNotes { print(json ? jsonLine(["note": note]) : "log: \(note)") }
            let committed = Set(report.resolved.filter(\.outcome.isCommitted).map(\.transaction))
            for item in report.resolved {
                let participants = item.participants.map(\.name).joined(separator: ", ")
                // What PostgreSQL did with each branch, under its own names.
                let steps = item.participants.filter { configuration.participant($0)?.kind == .postgres }.map { participant in
                    Self.step(item.transaction, at: participant, preparedAs: preparedAs[participant]?[item.transaction], committed: committed)
                }
                if json {
                    var line = ["transaction": item.transaction.description, "decision": item.outcome.isCommitted ? "commit" : "abort",
                                "participants": participants]
                    if !steps.isEmpty { line["postgres"] = steps.joined(separator: "; ") }
                    print(jsonLine(line))
                } else {
                    let decision = item.outcome.isCommitted ? "COMMIT (decision found in the log)" : "ABORT (no decision logged: presumed abort)"
                    print("\(item.transaction)  \(decision)  at \(participants)")
                    for step in steps { print("    \(step)") }
                }
            }
            for (participant, tx, committed) in report.heuristicsReported {
                let outcome = committed ? "committed" : "rolled back"
                print(json ? jsonLine(["transaction": tx.description, "participant": participant.name, "heuristic": outcome])
                           : "\(tx)  \(participant) had \(outcome) on its own (a heuristic decision): reported to the coordinator")
            }
            if orphans {
                for participant in configuration.participants where participant.kind == .postgres {
                    let bank = try PostgresParticipants.bankConfiguration(participant, instance: configuration.instance)
                    let foreign = try PostgresBank.foreignPreparedTransactions(bank, logger: logger)
                    for item in foreign {
                        if json {
                            print(jsonLine(["participant": participant.id.name, "orphan": item.gid, "prepared": item.preparedAt,
                                            "age_seconds": String(item.ageSeconds), "owner": item.owner, "sandhi": item.isSandhi ? "yes" : "no"]))
                        } else {
                            let whose = item.isSandhi ? "another Sandhi coordinator's" : "not Sandhi's"
                            print("orphan at \(participant.id): '\(item.gid)' prepared \(item.preparedAt) by \(item.owner), "
                                  + "\(item.ageSeconds)s ago (\(whose); left untouched)")
                        }
                    }
                    if foreign.isEmpty && !json { print("no orphans at \(participant.id)") }
                }
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

    /// What settling `tx`'s branch at a PostgreSQL participant took: the prepared transaction
    /// that held it (alone, or with other branches of its batch) finished one way, or split
    /// when its members' decisions differ; or, for a vote whose prepared transaction was
    /// already gone (a split the crash interrupted), its write-set applied or dropped.
    static func step(_ tx: TransactionID, at participant: ParticipantID, preparedAs gid: GlobalTransactionID?,
                     committed: Set<TransactionID>) -> String {
        let commits = committed.contains(tx)
        guard let gid else {
            return "\(participant): \(commits ? "committed from its write-set" : "write-set dropped") (its prepared transaction was already gone)"
        }
        let decisions = Set(gid.transactions.map { committed.contains($0) })
        guard decisions.count > 1 else { return "\(commits ? "COMMIT" : "ROLLBACK") PREPARED '\(gid)'" }
        return "ROLLBACK PREPARED '\(gid)' (its members' decisions differ)" + (commits ? ", then committed on its own" : "")
    }

}

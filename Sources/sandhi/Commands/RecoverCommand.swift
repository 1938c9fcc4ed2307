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
            if let service = ThroughService.client(for: directory) { throw ThroughService.refuseRecover(service) }
            // What each PostgreSQL participant holds before recovery settles it, under
            // PostgreSQL's names: the prepared transaction holding a branch (alone, or with other
            // branches of its batch), or (nil) a vote held by a write-set alone.
            // Read before the node takes the decision log, so it can fail for a reason of its own:
            // another coordinator holding this instance (a primary, for a standby) fences its
            // banks' sessions, ours among them. Then the start below says who holds the log;
            // should it start, what held each branch is only not named.
            var heldAs: [ParticipantID: [TransactionID: GlobalTransactionID?]] = [:]
            var unlisted: [(ParticipantID, Error)] = []
            for participant in configuration.participants where participant.kind == .postgres {
                do {
                    let bank = try PostgresParticipants.bankConfiguration(participant, instance: configuration.instance)
                    let held = try PostgresBank.ownPreparedTransactions(bank, logger: logger)
                    for gid in held.prepared {
                        for tx in gid.transactions { heldAs[participant.id, default: [:]][tx] = .some(gid) }
                    }
                    for tx in held.votes {
                        heldAs[participant.id, default: [:]][tx] = .some(nil)
                    }
                } catch {
                    unlisted.append((participant.id, error))
                }
            }
            let node = try await SandhiNode.start(directory: directory, logger: logger)
            for (participant, error) in unlisted {
                printError("sandhi: could not list what \(participant) held before recovery (\(error)); its branches are settled all the same")
            }
            let unsettled = node.driver.reconciliation.unsettled
            node.stop()
            let report = node.recovery
            for note in report.logNotes { print(json ? jsonLine(["note": note]) : "log: \(note)") }
            for item in report.resolved {
                let participants = item.participants.map(\.name).joined(separator: ", ")
                let held = item.participants.compactMap { participant in heldAs[participant]?[item.transaction].map { (participant, $0) } }
                let steps = held.map { participant, gid in
                    "at \(participant): held in " + (gid.map { "prepared transaction '\($0)'" } ?? "its write-set and vote (a split a crash interrupted)")
                }
                if json {
                    var line = ["transaction": item.transaction.description, "decision": item.outcome.isCommitted ? "commit" : "abort",
                                "participants": participants]
                    let gids = held.compactMap { $0.1?.description }
                    if !gids.isEmpty { line["gids"] = gids.joined(separator: ",") }
                    print(jsonLine(line))
                } else {
                    let decision = switch item.reason {
                    case .commitLogged, .commitLoggedAndEnded: "COMMIT (decision found in the log)"
                    case .committedAt(let participant): "COMMIT (no record in the log, but \(participant) committed it)"
                    case .presumedAbort: "ABORT (no decision logged: presumed abort)"
                    }
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
            for tx in report.unsettled {
                print(json ? jsonLine(["transaction": tx.description, "unsettled": "not acknowledged everywhere"])
                           : "\(tx)  not yet acknowledged by every participant: its locks stay held until it is")
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

import ArgumentParser
import Foundation
import SandhiEngine
import SandhiRuntime

struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the invariants over every participant; prints `total: <paise>`; exit 1 on a violation.")

    @OptionGroup var common: CommonOptions

    @Flag(help: "Print the result as JSON.")
    var json = false

    @Flag(help: "Also show the last deadlocks the coordinator found: members, each candidate's figures, the victim and why.")
    var deadlocks = false

    func run() async throws {
        try await reportingErrors {
            let directory = common.directory
            let configuration = try directory.loadConfiguration()
            if let service = ThroughService.client(for: directory) {
                if deadlocks { throw UsageFailure("--deadlocks reads the coordinator's journal at rest; with a service running, see GET /v1/snapshot") }
                return try ThroughService.check(client: service, json: json)
            }
            let lock = try directory.lock()
            defer { lock.release() }
            let audit = try InvariantAudit.run(directory: directory, configuration: configuration, logger: common.makeLogger())
            let journal = deadlocks ? try DeadlockJournal.read(from: directory.deadlockHistoryPath, fileSystem: directory.io.fileSystem) : nil
            if json {
                struct Bank: Encodable { var name: String; var accounts: Int; var total: Int64; var minted: Int64; var prepared: Int; var locks: Int; var committed: Int; var reports: Int }
                struct Output: Encodable {
                    var banks: [Bank]; var total: Int64; var minted: Int64; var unfinished_commits: Int; var violations: [String]; var ok: Bool
                    var heuristic_cases: Int; var unsettled_heuristic_cases: Int; var notes: [String]
                    var deadlocks: DeadlockJournal?
                }
                print(jsonLine(Output(
                    banks: audit.banks.map { Bank(name: $0.participant.name, accounts: $0.accounts, total: $0.total.value, minted: $0.minted.value,
                                                  prepared: $0.prepared.count, locks: $0.lockedAccounts.count, committed: $0.committedBranches, reports: $0.reports) },
                    total: audit.total.value, minted: audit.minted.value, unfinished_commits: audit.unfinishedCommits.count,
                    violations: audit.violations, ok: audit.passed,
                    heuristic_cases: audit.heuristicCases.count, unsettled_heuristic_cases: audit.heuristicCases.filter { !$0.isSettled }.count,
                    notes: audit.notes,
                    deadlocks: deadlocks ? journal ?? DeadlockJournal(deadlocks: [], total: 0) : nil)))
            } else {
                Self.printBanks(audit.banks.map {
                    ($0.participant.name, $0.accounts, $0.total, $0.prepared.count, $0.lockedAccounts.count, $0.committedBranches, $0.reports)
                })
                print("minted: \(audit.minted.value)")
                print("total: \(audit.total.value)")
                switch audit.logSource {
                case .segmentFiles:
                    print("decision log: \(audit.logSegments) segment(s), \(audit.unfinishedCommits.count) unfinished commit(s)")
                case .postgres(let description):
                    print("decision log: \(description), \(audit.unfinishedCommits.count) unfinished commit(s)")
                }
                for note in audit.notes { print(note) }
                if audit.passed {
                    print("invariants: ok (conservation, atomicity, no prepared leftovers, no held locks)")
                } else {
                    for violation in audit.violations { print("VIOLATION: \(violation)") }
                }
                if deadlocks { printDeadlocks(journal) }
            }
            return audit.passed ? 0 : 1
        }
    }

    /// The per-bank table, at rest or from a service's live check.
    static func printBanks(_ banks: [(name: String, accounts: Int, total: Paise, prepared: Int, locks: Int, committed: Int, reports: Int)]) {
        print(pad("participant", 12) + pad("accounts", 10, right: true) + pad("total", 22, right: true)
              + pad("prepared", 10, right: true) + pad("locks", 7, right: true) + pad("committed", 11, right: true) + pad("reports", 9, right: true))
        for bank in banks {
            print(pad(bank.name, 12) + pad(String(bank.accounts), 10, right: true) + pad(bank.total.description, 22, right: true)
                  + pad(String(bank.prepared), 10, right: true) + pad(String(bank.locks), 7, right: true)
                  + pad(String(bank.committed), 11, right: true) + pad(String(bank.reports), 9, right: true))
        }
    }

    private func printDeadlocks(_ journal: DeadlockJournal?) {
        guard let journal, journal.total > 0 else {
            print("deadlocks: none recorded")
            return
        }
        print("deadlocks: \(journal.total) found since the coordinator last started; the last \(journal.entries.count), newest last:")
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss.SSS"
        formatter.timeZone = TimeZone(identifier: "UTC")
        for entry in journal.entries {
            let when = formatter.string(from: Date(timeIntervalSince1970: Double(entry.detectedAtMs) / 1_000))
            let members = entry.cycle.count <= 6 ? entry.cycle : Array(entry.cycle.prefix(3)) + ["…"] + Array(entry.cycle.suffix(2))
            print("#\(entry.id)  \(when) UTC  " + (members + [entry.cycle[0]]).joined(separator: " -> ")
                  + (entry.cycle.count > 6 ? "  (\(entry.cycle.count) members)" : "") + (entry.foundByFullCheck ? "  [full check]" : ""))
            print("      policy \(entry.policy): " + (entry.victim.map { "victim \($0), \(entry.reason)" } ?? entry.reason) + "; \(entry.resolution)")
            let candidates = entry.candidates.map {
                "\($0.transaction) (locks \($0.locksHeld), ops \($0.operations), age \(formatMicros($0.ageUs)), prepared \($0.participantsPrepared))"
            }
            print("      candidates: " + candidates.joined(separator: " · "))
        }
    }
}

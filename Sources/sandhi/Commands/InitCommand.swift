import ArgumentParser
import Foundation
import Logging
import SandhiEngine
import SandhiParticipants
import SandhiRuntime

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a data directory with embedded SQLite banks.")

    @OptionGroup var common: CommonOptions

    @Option(help: "Comma-separated bank names.")
    var banks: String = "hdfc,icici,axis,sbi"

    @Option(help: "Accounts per bank (named acct-000001 ...).")
    var accounts: Int = 1_000

    @Option(help: "Opening balance of every account, in rupees (e.g. 100000 or 2500.50).")
    var opening: String = "100000"

    func run() async throws {
        try await reportingErrors {
            let logger = common.makeLogger()
            let names = try Self.parseBanks(banks)
            guard (1...1_000_000).contains(accounts) else { throw UsageFailure("--accounts must be between 1 and 1000000, got \(accounts)") }
            guard let balance = Paise(parsing: opening) else { throw UsageFailure("--opening \(opening) is not an amount in rupees") }
            let directory = common.directory
            try Self.create(directory: directory, banks: names, accounts: accounts, opening: balance, logger: logger)
            print("created \(directory.path): \(names.map(\.name).joined(separator: ", ")), \(accounts) accounts each at \(balance)")
            return 0
        }
    }

    static func parseBanks(_ list: String) throws -> [ParticipantID] {
        var result: [ParticipantID] = []
        for name in list.split(separator: ",").map({ String($0).trimmingCharacters(in: .whitespaces) }) {
            guard let id = ParticipantID(name) else { throw UsageFailure("bank name \"\(name)\" must be lower-case letters, digits, - or _ (at most 32)") }
            guard !result.contains(id) else { throw UsageFailure("bank \(name) is listed twice") }
            result.append(id)
        }
        guard result.count >= 1 else { throw UsageFailure("--banks names no bank") }
        return result
    }

    static func accountName(_ index: Int) -> AccountID {
        let digits = String(index)
        return AccountID(validated: "acct-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits)
    }

    static func create(directory: DataDirectory, banks: [ParticipantID], accounts: Int, opening: Paise, logger: Logger) throws {
        guard opening <= Paise.maxAmount else { throw UsageFailure("--opening exceeds the largest amount, \(Paise.maxAmount)") }
        guard !opening.value.multipliedReportingOverflow(by: Int64(accounts) * Int64(banks.count)).overflow else {
            throw UsageFailure("\(accounts) accounts at \(opening) in \(banks.count) banks add up beyond what one ledger can hold")
        }
        var configuration = SandhiConfiguration(participants: banks.map { .init(id: $0) })
        configuration.instance = SandhiConfiguration.newInstanceName()
        let rows = (1...accounts).map { (accountName($0), opening) }
        try directory.create(configuration) { directory in
            for bank in banks {
                try SQLiteBank.create(path: directory.bankPath(bank), participant: bank, accounts: rows, logger: logger)
            }
        }
    }
}

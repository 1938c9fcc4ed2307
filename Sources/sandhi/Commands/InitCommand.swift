import ArgumentParser
import Foundation
import Logging
import SandhiEngine
import SandhiParticipants
import SandhiPostgres
import SandhiPostgresLog
import SandhiRuntime

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create a data directory: embedded SQLite banks, and banks in PostgreSQL databases.",
        discussion: """
            --postgres NAME=URL,... makes each named participant a bank in an existing, empty \
            PostgreSQL database (postgres://user[:password]@host[:port]/database; a socket folder \
            as the host is written %2Fpath). Without --banks, only the PostgreSQL banks are made. \
            Every database is checked before anything is created. --log-postgres URL keeps the \
            coordinator's decision log in that PostgreSQL database (table sandhi_decision_log, \
            created if missing) instead of segment files in DIR/coordinator/, and writes \
            `log = "URL"` under [coordinator] in sandhi.toml.
            """)

    @OptionGroup var common: CommonOptions

    @Option(help: "Comma-separated names of embedded SQLite banks (default: hdfc,icici,axis,sbi; none with --postgres).")
    var banks: String?

    @Option(help: "Comma-separated NAME=URL: banks in PostgreSQL databases (see below).")
    var postgres: String?

    @Option(name: .customLong("log-postgres"), help: "postgres:// URL of a database for the decision log (default: segment files in DIR/coordinator/).")
    var logPostgres: String?

    @Option(help: "Accounts per bank (named acct-000001 ...).")
    var accounts: Int = 1_000

    @Option(help: "Opening balance of every account, in rupees (e.g. 100000 or 2500.50).")
    var opening: String = "100000"

    func run() async throws {
        try await reportingErrors {
            let logger = common.makeLogger()
            let sqliteNames = try banks.map(Self.parseBanks) ?? (postgres == nil ? try Self.parseBanks("hdfc,icici,axis,sbi") : [])
            let databases = try postgres.map(Self.parsePostgres) ?? []
            if let clash = databases.first(where: { sqliteNames.contains($0.id) }) {
                throw UsageFailure("participant \(clash.id) is named by both --banks and --postgres")
            }
            let names = sqliteNames + databases.map(\.id)
            guard (1...1_000_000).contains(accounts) else { throw UsageFailure("--accounts must be between 1 and 1000000, got \(accounts)") }
            guard let balance = Paise(parsing: opening) else { throw UsageFailure("--opening \(opening) is not an amount in rupees") }
            let decisionLog = try logPostgres.map { url in
                do {
                    return try DatabaseConnection(url: url)
                } catch {
                    throw UsageFailure("--log-postgres: \(error)")
                }
            }
            let directory = common.directory
            try Self.create(directory: directory, banks: sqliteNames, postgres: databases, decisionLog: decisionLog,
                            accounts: accounts, opening: balance, logger: logger)
            print("created \(directory.path): \(names.map(\.name).joined(separator: ", ")), \(accounts) accounts each at \(balance)")
            if let decisionLog { print("decision log: PostgreSQL \(decisionLog.description)") }
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

    /// `NAME=URL,...`, each URL a postgres:// URL naming a database.
    static func parsePostgres(_ list: String) throws -> [SandhiConfiguration.Participant] {
        var result: [SandhiConfiguration.Participant] = []
        for item in list.split(separator: ",").map({ String($0).trimmingCharacters(in: .whitespaces) }) {
            guard let equals = item.firstIndex(of: "=") else { throw UsageFailure("--postgres takes NAME=URL, got \"\(item)\"") }
            let name = String(item[..<equals]), url = String(item[item.index(after: equals)...])
            guard let id = ParticipantID(name) else { throw UsageFailure("bank name \"\(name)\" must be lower-case letters, digits, - or _ (at most 32)") }
            guard !result.contains(where: { $0.id == id }) else { throw UsageFailure("bank \(name) is listed twice") }
            do {
                result.append(.init(id: id, kind: .postgres, database: try DatabaseConnection(url: url)))
            } catch {
                throw UsageFailure("--postgres \(name): \(error)")
            }
        }
        guard !result.isEmpty else { throw UsageFailure("--postgres names no bank") }
        return result
    }

    static func accountName(_ index: Int) -> AccountID {
        let digits = String(index)
        return AccountID(validated: "acct-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits)
    }

    static func create(directory: DataDirectory, banks: [ParticipantID], postgres: [SandhiConfiguration.Participant] = [],
                       decisionLog: DatabaseConnection? = nil, accounts: Int, opening: Paise, logger: Logger) throws {
        let total = banks.count + postgres.count
        guard opening <= Paise.maxAmount else { throw UsageFailure("--opening exceeds the largest amount, \(Paise.maxAmount)") }
        guard !opening.value.multipliedReportingOverflow(by: Int64(accounts) * Int64(total)).overflow else {
            throw UsageFailure("\(accounts) accounts at \(opening) in \(total) banks add up beyond what one ledger can hold")
        }
        // `create` checks this too, but only after the databases would have been asked.
        guard !DataDirectory.exists(directory.configurationPath) else { throw DataDirectoryError.alreadyExists(directory.path) }
        var configuration = SandhiConfiguration(participants: banks.map { .init(id: $0) } + postgres)
        configuration.instance = SandhiConfiguration.newInstanceName()
        configuration.decisionLog = decisionLog
        // Every database first, changing nothing: a bad one must leave the others as they were.
        let databases = try postgres.map { try PostgresParticipants.bankConfiguration($0, instance: configuration.instance) }
        for database in databases { try PostgresBank.checkCreatable(database, logger: logger) }
        let logDatabase = try decisionLog.map { try PostgresDecisionLogOpener.logConfiguration($0, instance: configuration.instance) }
        if let logDatabase { try PostgresDecisionLog.check(logDatabase, logger: logger) }
        let rows = (1...accounts).map { (accountName($0), opening) }
        try directory.create(configuration) { directory in
            // The log's table first: it is idempotent (the table may already hold other
            // instances' logs), so creating it can fail (a role without CREATE in the schema)
            // but never leaves anything that a second init would trip over, while a bank
            // created in PostgreSQL stays there when something after it fails.
            if let logDatabase { try PostgresDecisionLog.createTable(logDatabase, logger: logger) }
            for bank in banks {
                try SQLiteBank.create(path: directory.bankPath(bank), participant: bank, accounts: rows, io: directory.io, logger: logger)
            }
            for database in databases { try PostgresBank.create(database, accounts: rows, logger: logger) }
        }
    }
}

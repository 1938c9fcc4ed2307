import ArgumentParser
import Foundation
import SandhiEngine
import SandhiRuntime
import SandhiService

struct TransferCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer",
        abstract: "Run one distributed transfer: every leg commits, or none does.",
        discussion: """
            Simple form:  sandhi transfer --from hdfc/acct-000001 --to sbi/acct-000002 --amount 1500
            Many legs:    sandhi transfer --debit hdfc/client=1000000 --debit icici/client=500000 \\
                                          --credit sbi/client=1500000
            With reads:   sandhi transfer --read hdfc/client --read sbi/client --from hdfc/client --to sbi/client --amount 10
            Read only:    sandhi transfer --read hdfc/client --read sbi/client
            Amounts are rupees with at most two decimals (1500, 1500.50, 15,00,000). Debits must equal credits.
            Reads run first, under shared locks held to the end, and print the committed balance, its version
            and the transaction that wrote it.
            """)

    @OptionGroup var common: CommonOptions

    @Option(help: "Account to debit, as BANK/ACCOUNT (with --to and --amount).")
    var from: String?
    @Option(help: "Account to credit, as BANK/ACCOUNT.")
    var to: String?
    @Option(help: "Amount in rupees.")
    var amount: String?

    @Option(name: .customLong("debit"), help: "A debit leg, BANK/ACCOUNT=RUPEES (repeatable).")
    var debits: [String] = []
    @Option(name: .customLong("credit"), help: "A credit leg, BANK/ACCOUNT=RUPEES (repeatable).")
    var credits: [String] = []
    @Option(name: .customLong("read"), help: "An account to read, BANK/ACCOUNT (repeatable); reads run before the legs.")
    var reads: [String] = []

    @Flag(help: "Print the result as JSON.")
    var json = false

    struct Leg: Equatable {
        enum Kind: Equatable { case read, debit, credit }
        var bank: ParticipantID
        var account: AccountID
        /// Zero for a read.
        var amount: Paise
        var kind: Kind
        var debit: Bool { kind == .debit }
    }

    func run() async throws {
        try await reportingErrors {
            let legs = try parseLegs()
            let directory = common.directory
            let configuration = try directory.loadConfiguration()
            let branches = try Self.branches(for: legs, configuration: configuration)
            if let service = ThroughService.client(for: directory) {
                return try ThroughService.transfer(branches, client: service, json: json)
            }
            let node = try await SandhiNode.start(directory: directory, logger: common.makeLogger())
            defer { node.stop() }
            let result = try await node.driver.transfer(branches)
            let readsSeen = TransferAPI.reads(of: branches, observed: result.observed) ?? []
            if json {
                struct Read: Encodable { var account: String; var balance_paise: Int64; var version: UInt64; var writer: String? }
                // `reason` is for people; `cause` (an abort cause), `refusal` (a NO vote's kind)
                // and `transient` (worth running again as it is) are for programs.
                struct Output: Encodable {
                    var transaction: String; var outcome: String; var reason: String
                    var cause: String?; var refusal: String?; var transient: Bool?
                    var latency_us: UInt64; var reads: [Read]
                }
                print(jsonLine(Output(
                    transaction: result.transaction.description, outcome: result.outcome.isCommitted ? "committed" : "aborted",
                    reason: { if case .aborted(let reason, _, _) = result.outcome { return reason } else { return "" } }(),
                    cause: result.outcome.abortCause?.rawValue, refusal: result.outcome.refusal?.code,
                    transient: result.outcome.abortCause?.isTransient,
                    latency_us: result.latencyUs,
                    reads: readsSeen.map { Read(account: "\($0.participant)/\($0.account)", balance_paise: $0.balancePaise,
                                                version: $0.version, writer: $0.writer) })))
            } else {
                print("\(result.transaction) \(result.outcome.label) in \(formatMicros(result.latencyUs))")
                for read in readsSeen { print(Self.line(read)) }
            }
            if case .aborted(let reason, _, _) = result.outcome {
                if !json { printError("sandhi: transfer aborted: \(reason)") }
                return 1
            }
            return 0
        }
    }

    func parseLegs() throws -> [Leg] {
        var legs: [Leg] = []
        for spec in reads {
            let (bank, account) = try Self.parseAccount(spec)
            legs.append(Leg(bank: bank, account: account, amount: .zero, kind: .read))
        }
        let simple = [from, to, amount].compactMap { $0 }
        if !simple.isEmpty {
            guard let from, let to, let amount else { throw UsageFailure("--from, --to and --amount go together") }
            let value = try Self.parseAmount(amount)
            let (fromBank, fromAccount) = try Self.parseAccount(from)
            let (toBank, toAccount) = try Self.parseAccount(to)
            legs.append(Leg(bank: fromBank, account: fromAccount, amount: value, kind: .debit))
            legs.append(Leg(bank: toBank, account: toAccount, amount: value, kind: .credit))
        }
        for (specs, debit) in [(debits, true), (credits, false)] {
            for spec in specs {
                guard let equals = spec.lastIndex(of: "=") else { throw UsageFailure("leg \"\(spec)\" must be BANK/ACCOUNT=RUPEES") }
                let (bank, account) = try Self.parseAccount(String(spec[..<equals]))
                legs.append(Leg(bank: bank, account: account, amount: try Self.parseAmount(String(spec[spec.index(after: equals)...])),
                                kind: debit ? .debit : .credit))
            }
        }
        guard !legs.isEmpty else { throw UsageFailure("nothing to transfer: give --from/--to/--amount, --debit/--credit legs or --read accounts") }
        // Bounded so that the totals below cannot overflow (each amount is at most Paise.maxAmount).
        guard legs.count <= OperationCodec.maxOperations else { throw UsageFailure("at most \(OperationCodec.maxOperations) legs in one transfer") }
        let debitTotal = legs.filter(\.debit).reduce(Paise.zero) { $0 + $1.amount }
        let creditTotal = legs.filter { $0.kind == .credit }.reduce(Paise.zero) { $0 + $1.amount }
        guard debitTotal == creditTotal else {
            throw UsageFailure("amounts do not balance: debits \(debitTotal), credits \(creditTotal)")
        }
        return legs
    }

    static func parseAmount(_ text: String) throws -> Paise {
        guard let value = Paise(parsing: text) else {
            throw UsageFailure("amount \"\(text)\" is not a positive number of rupees with at most two decimals")
        }
        guard value.value > 0 else { throw UsageFailure("amount must be positive, got \(text)") }
        guard value <= Paise.maxAmount else { throw UsageFailure("amount \(text) exceeds the largest single amount, \(Paise.maxAmount)") }
        return value
    }

    static func parseAccount(_ text: String) throws -> (ParticipantID, AccountID) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw UsageFailure("\"\(text)\" must be BANK/ACCOUNT") }
        guard let bank = ParticipantID(String(parts[0])) else { throw UsageFailure("\"\(parts[0])\" is not a valid bank name") }
        guard let account = AccountID(String(parts[1])) else { throw UsageFailure("\"\(parts[1])\" is not a valid account name") }
        return (bank, account)
    }

    /// Groups legs into one branch per bank, refusing banks the configuration does not know.
    static func branches(for legs: [Leg], configuration: SandhiConfiguration) throws -> [Branch] {
        var branches: [Branch] = []
        for leg in legs {
            guard configuration.participant(leg.bank) != nil else {
                throw UsageFailure("unknown bank \(leg.bank) (this data directory has \(configuration.participants.map(\.id.name).joined(separator: ", ")))")
            }
            let operation: SandhiEngine.Operation
            switch leg.kind {
            case .read: operation = .read(account: leg.account)
            case .debit: operation = .debit(account: leg.account, amount: leg.amount)
            case .credit: operation = .credit(account: leg.account, amount: leg.amount)
            }
            if let index = branches.firstIndex(where: { $0.participant == leg.bank }) {
                branches[index].operations.append(operation)
            } else {
                branches.append(Branch(participant: leg.bank, operations: [operation]))
            }
        }
        return branches
    }

    /// One read as `sandhi transfer` prints it, in-process or through a service.
    static func line(_ read: TransferAPI.ReadView) -> String {
        "read \(read.participant)/\(read.account) = \(Paise(read.balancePaise)) (version \(read.version), "
            + (read.writer.map { "written by \($0)" } ?? "the opening balance") + ")"
    }
}

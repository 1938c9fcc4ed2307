import Foundation
import Logging
import SandhiEngine
import SandhiParticipants
import SandhiRuntime
import Synchronization

/// The running example of DESIGN.md: a chartered accountant in Mumbai consolidates a client's
/// funds from HDFC, ICICI and Axis into SBI, with TDS to the tax ledger and a large-transaction
/// report to the regulator, in ONE distributed transaction.
enum MumbaiDemo {
    static let scenarios = [
        (name: "mumbai", summary: "consolidate ₹18,00,000 from HDFC, ICICI and Axis into SBI, with TDS and a regulator's report"),
        (name: "heuristic", summary: "the coordinator stops after the prepares; SBI decides alone; recovery records a mixed outcome for `sandhi reconcile`"),
    ]

    enum Failure: String, CaseIterable {
        /// The withdrawal comes from an Axis account holding only ₹2,50,000: Axis votes NO.
        case axisInsufficient = "axis-insufficient"
        /// The ICICI leg names an account ICICI does not have: ICICI votes NO.
        case unknownAccount = "unknown-account"
    }

    static let hdfc = ParticipantID(validated: "hdfc"), icici = ParticipantID(validated: "icici")
    static let axis = ParticipantID(validated: "axis"), sbi = ParticipantID(validated: "sbi")
    static let tax = ParticipantID(validated: "tax"), regulator = ParticipantID(validated: "regulator")
    static let client = AccountID(validated: "client"), clientJoint = AccountID(validated: "client-joint")
    static let tds = AccountID(validated: "tds")

    static let withdrawals: [(ParticipantID, Paise)] = [(hdfc, .rupees(10_00_000)), (icici, .rupees(5_00_000)), (axis, .rupees(3_00_000))]

    /// Creates the demo's data directory on first use.
    static func prepareDirectory(_ directory: DataDirectory, logger: Logger) throws -> (created: Bool, SandhiConfiguration) {
        if DataDirectory.exists(directory.configurationPath) {
            let configuration = try directory.loadConfiguration()
            let missing = [hdfc, icici, axis, sbi, tax, regulator].filter { configuration.participant($0) == nil }
            guard missing.isEmpty, configuration.taxLedger == tax, configuration.reportLedger == regulator else {
                throw UsageFailure("\(directory.path) is not set up for the mumbai demo (it needs hdfc, icici, axis, sbi, tax and regulator); pick another --data")
            }
            return (false, configuration)
        }
        var configuration = SandhiConfiguration(participants: [hdfc, icici, axis, sbi, tax, regulator].map { .init(id: $0) })
        configuration.instance = SandhiConfiguration.newInstanceName()
        configuration.taxLedger = tax
        configuration.reportLedger = regulator
        // Enough for a hundred runs of the consolidation on one data directory; the joint Axis
        // account is the one `--fail axis-insufficient` draws on, and it never suffices.
        let opening: [ParticipantID: [(AccountID, Paise)]] = [
            hdfc: [(client, .rupees(10_00_00_000))], icici: [(client, .rupees(5_00_00_000))],
            axis: [(client, .rupees(3_00_00_000)), (clientJoint, .rupees(2_50_000))],
            sbi: [(client, .zero)], tax: [(tds, .zero)], regulator: [],
        ]
        try directory.create(configuration) { directory in
            for participant in configuration.participants {
                try SQLiteBank.create(path: directory.bankPath(participant.id), participant: participant.id,
                                      accounts: opening[participant.id] ?? [], logger: logger)
            }
        }
        return (true, configuration)
    }

    static func balances(_ directory: DataDirectory, _ configuration: SandhiConfiguration, logger: Logger) throws -> [ParticipantID: [(account: AccountID, balance: Paise)]] {
        var result: [ParticipantID: [(account: AccountID, balance: Paise)]] = [:]
        for participant in configuration.participants {
            let bank = try SQLiteBank(path: directory.bankPath(participant.id), participant: participant.id, logger: logger)
            result[participant.id] = try bank.balances()
            bank.close()
        }
        return result
    }

    static func run(directory: DataDirectory, failure: Failure?, logger: Logger) async throws -> Int32 {
        let (created, configuration) = try prepareDirectory(directory, logger: logger)
        let gross = withdrawals.reduce(Paise.zero) { $0 + $1.1 }
        let tdsAmount = gross.basisPoints(configuration.tdsBasisPoints)
        let net = gross - tdsAmount
        var branches: [Branch] = withdrawals.map { bank, amount in
            var account = client
            if failure == .axisInsufficient && bank == axis { account = clientJoint }
            if failure == .unknownAccount && bank == icici { account = AccountID(validated: "client-closed") }
            return Branch(participant: bank, operations: [.debit(account: account, amount: amount)])
        }
        branches.append(Branch(participant: sbi, operations: [.credit(account: client, amount: net)]))
        branches.append(Branch(participant: tax, operations: [.credit(account: tds, amount: tdsAmount)]))
        let reported = gross >= configuration.reportThreshold
        if reported {
            branches.append(Branch(participant: regulator, operations: [.fileReport(Report(
                kind: "large-transaction", amount: gross, reference: "consolidation of client funds into sbi/client"))]))
        }

        print("Sandhi demo: mumbai — consolidate a client's funds into SBI in ONE distributed transaction")
        print("data \(directory.path) (\(created ? "created" : "reused"))   TDS \(configuration.tdsBasisPoints / 100).\(String(format: "%02d", configuration.tdsBasisPoints % 100))%   "
              + "report threshold \(configuration.reportThreshold)" + (failure.map { "   failure: \($0.rawValue)" } ?? ""))
        print("")
        print("Plan")
        for branch in branches {
            for operation in branch.operations {
                switch operation {
                case .debit(let account, let amount): print("  " + pad(branch.participant.name, 10) + pad("debit", 8) + pad(account.name, 16) + pad(amount.description, 18, right: true))
                case .credit(let account, let amount): print("  " + pad(branch.participant.name, 10) + pad("credit", 8) + pad(account.name, 16) + pad(amount.description, 18, right: true))
                case .fileReport(let report): print("  " + pad(branch.participant.name, 10) + pad("report", 8) + pad(report.kind, 16) + pad(report.amount.description, 18, right: true))
                case .read(let account): print("  " + pad(branch.participant.name, 10) + pad("read", 8) + account.name)
                }
            }
        }
        if !reported { print("  (below the report threshold: no regulator's report)") }

        let lock = try directory.lock()
        let before = try balances(directory, configuration, logger: logger)
        let reportsBefore = try reportCount(directory, logger: logger)
        let events = Mutex<[EngineEvent]>([])
        let node = try await SandhiNode.start(directory: directory, lock: lock, logger: logger) { event in
            events.withLock { $0.append(event) }
        }
        for item in node.recovery.resolved { print("recovered \(item.transaction): \(item.outcome.label)") }
        let result: TransferResult
        do {
            result = try await node.driver.transfer(branches)
        } catch {
            node.stop()
            throw error
        }
        node.stop()
        let afterLock = try directory.lock()
        let after = try balances(directory, configuration, logger: logger)
        let reportsAfter = try reportCount(directory, logger: logger)

        print("")
        print("Protocol timeline of \(result.transaction)")
        let timeline = events.withLock { $0 }.filter { $0.transaction == result.transaction }
        let startUs = timeline.first?.atUs ?? 0
        for event in timeline {
            if case .stateChanged = event.kind { continue }
            var line = event.description
            let prefix = "\(result.transaction) "
            if line.hasPrefix(prefix) { line.removeFirst(prefix.count) }
            print("  " + pad("+" + formatMicros(event.atUs - startUs), 10, right: true) + "  " + line)
        }
        print("")
        print("Balances")
        print("  " + pad("account", 24) + pad("before", 18, right: true) + pad("after", 18, right: true) + pad("change", 18, right: true))
        for participant in configuration.participants {
            for (index, row) in (before[participant.id] ?? []).enumerated() {
                let newBalance = after[participant.id]?[index].balance ?? row.balance
                let change = newBalance - row.balance
                print("  " + pad("\(participant.id)/\(row.account)", 24) + pad(row.balance.description, 18, right: true)
                      + pad(newBalance.description, 18, right: true) + pad(change == .zero ? "—" : change.description, 18, right: true))
            }
        }
        print("  " + pad("regulator reports", 24) + pad(String(reportsBefore), 18, right: true) + pad(String(reportsAfter), 18, right: true))
        print("")

        func delta(_ bank: ParticipantID) -> Paise {
            let sumBefore = (before[bank] ?? []).reduce(Paise.zero) { $0 + $1.balance }
            let sumAfter = (after[bank] ?? []).reduce(Paise.zero) { $0 + $1.balance }
            return sumAfter - sumBefore
        }
        let debited = Paise.zero - (delta(hdfc) + delta(icici) + delta(axis))
        let credited = delta(sbi)
        let collected = delta(tax)
        let balanced = debited == credited + collected
        let audit = try InvariantAudit.run(directory: directory, configuration: configuration, logger: logger)
        afterLock.release()
        switch result.outcome {
        case .committed:
            print("Outcome: \(result.transaction) committed at every participant in \(formatMicros(result.latencyUs))")
            print("Check: debits \(debited) = credits \(credited) + TDS \(collected)  \(balanced && debited == gross ? "✓" : "✗")")
            print("Report ledger: \(reportsAfter - reportsBefore) row(s) filed with the money  \(reportsAfter - reportsBefore == (reported ? 1 : 0) ? "✓" : "✗")")
        case .aborted(let reason, _, _):
            let unchanged = debited == .zero && credited == .zero && collected == .zero && reportsAfter == reportsBefore
            print("Outcome: \(result.transaction) aborted: \(reason)")
            print("Check: every ledger unchanged (no debit, no credit, no TDS, no report)  \(unchanged ? "✓" : "✗")")
            if !unchanged { return 1 }
        }
        print("Invariants: total \(audit.total) of \(audit.minted) minted; " + (audit.passed ? "all hold ✓" : audit.violations.joined(separator: "; ")))
        if !audit.passed { return 1 }
        if result.outcome.isCommitted { return balanced && debited == gross ? 0 : 1 }
        // A planted failure that aborts cleanly is the scenario working; an unplanned abort is not.
        return failure == nil ? 1 : 0
    }

    static func reportCount(_ directory: DataDirectory, logger: Logger) throws -> Int {
        let bank = try SQLiteBank(path: directory.bankPath(regulator), participant: regulator, logger: logger)
        defer { bank.close() }
        return try bank.reports().count
    }
}

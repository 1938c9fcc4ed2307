import Logging
import SandhiEngine
import SandhiParticipants
import SandhiRuntime
import SandhiTestSupport

/// A data directory with three embedded banks (alice at hdfc, bob at icici, carol at sbi).
struct ThreeBanks {
    static let hdfc = ParticipantID(validated: "hdfc"), icici = ParticipantID(validated: "icici"), sbi = ParticipantID(validated: "sbi")
    static let alice = AccountID(validated: "alice"), bob = AccountID(validated: "bob"), carol = AccountID(validated: "carol")
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    let temporary = TemporaryDirectory()
    let directory: DataDirectory

    init(prepareTimeoutMs: UInt64 = 5_000) throws {
        directory = DataDirectory(path: temporary.appending("data"))
        var configuration = SandhiConfiguration(participants: [Self.hdfc, Self.icici, Self.sbi].map { .init(id: $0) })
        configuration.prepareTimeoutMs = prepareTimeoutMs
        configuration.resendInitialMs = 5
        try directory.create(configuration) { directory in
            for (bank, account) in [(Self.hdfc, Self.alice), (Self.icici, Self.bob), (Self.sbi, Self.carol)] {
                try SQLiteBank.create(path: directory.bankPath(bank), participant: bank, accounts: [(account, .rupees(1_000))], logger: Self.logger)
            }
        }
    }

    func bank(_ id: ParticipantID) throws -> SQLiteBank {
        try SQLiteBank(path: directory.bankPath(id), participant: id, logger: Self.logger)
    }

    func balance(_ bank: ParticipantID, _ account: AccountID) throws -> Paise? {
        let opened = try self.bank(bank)
        defer { opened.close() }
        return try opened.balance(of: account)
    }

    func start(events: EventRecorder? = nil) async throws -> SandhiNode {
        try await SandhiNode.start(directory: directory, logger: Self.logger) { event in events?.record(event) }
    }

    static func move(_ amount: Paise, from: (ParticipantID, AccountID), to: (ParticipantID, AccountID)) -> [Branch] {
        [Branch(participant: from.0, operations: [.debit(account: from.1, amount: amount)]),
         Branch(participant: to.0, operations: [.credit(account: to.1, amount: amount)])]
    }

    /// `sandhi check` in-process.
    func audit() throws -> InvariantAudit { try directory.auditAtRest() }

    func remove() { temporary.remove() }
}

/// Crash states built by hand on the banks' files (no node running).
extension ThreeBanks {
    struct Unexpected: Error, CustomStringConvertible {
        var description: String
    }

    /// Prepares `tx` at hdfc (debit alice) and sbi (credit carol) directly, as if the coordinator
    /// died after the votes.
    func prepareEverywhere(_ tx: TransactionID, amount: Paise) throws {
        let writers = [Self.hdfc, Self.sbi]
        let hdfc = try bank(Self.hdfc), sbi = try bank(Self.sbi)
        defer { hdfc.close(); sbi.close() }
        for (opened, operation) in [(hdfc, Operation.debit(account: Self.alice, amount: amount)), (sbi, .credit(account: Self.carol, amount: amount))] {
            let replies = try opened.process([.prepare(tx, operations: [operation], writers: writers)]).voteOnly
            guard replies == [.vote(tx, .yes)] else { throw Unexpected(description: "\(opened.id) answered \(replies) to the prepare of \(tx)") }
        }
    }

    /// Writes the log a coordinator would have left: epoch 1, and the given COMMIT records.
    func writeLog(commits: [TransactionID]) throws {
        let (store, _) = try DecisionLogStore.open(directory: directory.coordinatorPath, logger: Self.logger)
        store.epoch = 1
        _ = try store.append([.epochStarted(epoch: 1)] + commits.map { .commit(transaction: $0, participants: [Self.hdfc, Self.sbi]) })
        try store.sync()
        store.close()
    }

    /// sbi rolls back alone a branch whose COMMIT is in the log: recovery finds a heuristic case
    /// that destroyed ₹100 (hdfc's debit stands).
    func rollBackAloneUnderCommit(_ tx: TransactionID) throws {
        try prepareEverywhere(tx, amount: .rupees(100))
        try writeLog(commits: [tx])
        let sbi = try bank(Self.sbi)
        defer { sbi.close() }
        let replies = try sbi.decideAlone(tx, commit: false)
        try sbi.makeDurable()
        guard replies.count == 1 else { throw Unexpected(description: "sbi's decision alone on \(tx) answered \(replies)") }
    }
}

/// The Mumbai demo's data directory, smaller: hdfc, icici and axis each hold a `client`
/// account, sbi an empty one, the tax ledger a `tds` account, and the regulator the report
/// ledger. The report threshold is low enough for the live workload's large consolidations.
struct MumbaiBanks {
    static let hdfc = ParticipantID(validated: "hdfc"), icici = ParticipantID(validated: "icici")
    static let axis = ParticipantID(validated: "axis"), sbi = ParticipantID(validated: "sbi")
    static let tax = ParticipantID(validated: "tax"), regulator = ParticipantID(validated: "regulator")
    static let client = AccountID(validated: "client"), tds = AccountID(validated: "tds")
    static let opening: Paise = .rupees(1_00_000)

    let temporary = TemporaryDirectory()
    let directory: DataDirectory

    init(reportThreshold: Paise = .rupees(300)) throws {
        directory = DataDirectory(path: temporary.appending("data"))
        var configuration = SandhiConfiguration(participants: [Self.hdfc, Self.icici, Self.axis, Self.sbi, Self.tax, Self.regulator].map { .init(id: $0) })
        configuration.taxLedger = Self.tax
        configuration.reportLedger = Self.regulator
        configuration.reportThreshold = reportThreshold
        configuration.resendInitialMs = 5
        let opening: [ParticipantID: [(AccountID, Paise)]] = [
            Self.hdfc: [(Self.client, Self.opening)], Self.icici: [(Self.client, Self.opening)], Self.axis: [(Self.client, Self.opening)],
            Self.sbi: [(Self.client, .zero)], Self.tax: [(Self.tds, .zero)], Self.regulator: [],
        ]
        try directory.create(configuration) { directory in
            for participant in configuration.participants {
                try SQLiteBank.create(path: directory.bankPath(participant.id), participant: participant.id,
                                      accounts: opening[participant.id] ?? [], logger: ThreeBanks.logger)
            }
        }
    }

    func bank(_ id: ParticipantID) throws -> SQLiteBank {
        try SQLiteBank(path: directory.bankPath(id), participant: id, logger: ThreeBanks.logger)
    }

    func audit() throws -> InvariantAudit { try directory.auditAtRest() }

    func remove() { temporary.remove() }
}

extension DataDirectory {
    /// `sandhi check` in-process, while no node runs.
    func auditAtRest() throws -> InvariantAudit {
        let lock = try self.lock()
        defer { lock.release() }
        return try InvariantAudit.run(directory: self, configuration: loadConfiguration(), logger: ThreeBanks.logger)
    }
}

/// Four banks of `accounts` accounts at ₹1,000 each: enough accounts that concurrent random
/// transfers seldom meet, so many are in flight at once.
struct SpreadBanks {
    static let banks = ["hdfc", "icici", "axis", "sbi"].map { ParticipantID(validated: $0) }

    let temporary = TemporaryDirectory()
    let directory: DataDirectory
    /// Every balance added up.
    let total: Paise

    init(accounts: Int = 100) throws {
        directory = DataDirectory(path: temporary.appending("data"))
        total = Paise(Paise.rupees(1_000).value * Int64(Self.banks.count * accounts))
        var configuration = SandhiConfiguration(participants: Self.banks.map { .init(id: $0) })
        configuration.resendInitialMs = 5
        let rows = (1...accounts).map { (AccountID(validated: "acct-\($0)"), Paise.rupees(1_000)) }
        try directory.create(configuration) { directory in
            for bank in Self.banks {
                try SQLiteBank.create(path: directory.bankPath(bank), participant: bank, accounts: rows, logger: ThreeBanks.logger)
            }
        }
    }

    func remove() { temporary.remove() }
}

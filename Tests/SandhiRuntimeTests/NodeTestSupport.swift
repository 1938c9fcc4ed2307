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
    func audit() throws -> InvariantAudit {
        let lock = try directory.lock()
        defer { lock.release() }
        return try InvariantAudit.run(directory: directory, configuration: directory.loadConfiguration(), logger: Self.logger)
    }

    func remove() { temporary.remove() }
}

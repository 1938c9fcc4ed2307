import SandhiEngine

/// A bank: a participant resource that holds accounts in integer paise, and answers the
/// questions the audits, the recovery and the benchmarks ask of its storage. The embedded
/// SQLite bank and the PostgreSQL bank are both banks; the runtime works with this protocol
/// and never with either kind, so one transfer can span both.
///
/// Every query reads committed state from storage except those named for in-memory state
/// (`inDoubtNet`, `heldLocks`). Like `process`, they run on the thread that owns the bank.
public protocol Bank: ParticipantResource {
    /// Every account and its balance, in account order.
    func balances() throws -> [(account: AccountID, balance: Paise)]
    /// Every account's balance and version, for a recorded history's starting point.
    func accountStates() throws -> [Observation]
    /// The sum of every balance.
    func total() throws -> Paise
    /// The opening balances this bank was created with: what conservation compares the total
    /// against.
    func minted() throws -> Paise
    /// Every branch committed here: its writer participants and the net it moved here.
    func committedBranches() throws -> [TransactionID: (writers: [ParticipantID], netPaise: Int64)]
    /// Every report row filed here, in filing order.
    func reports() throws -> [BankReportRow]
    /// Whether `tx` committed here (an indexed lookup).
    func hasCommitted(_ tx: TransactionID) throws -> Bool
    /// Whether `tx` committed here on the coordinator's word, not decided here alone
    /// (heuristically): proof that the coordinator decided COMMIT, which recovery reads before
    /// it presumes abort. A bank that never decides alone answers `hasCommitted`.
    func committedOnCoordinatorsWord(_ tx: TransactionID) throws -> Bool
    /// The highest coordinator epoch among the transactions this bank has seen: a new epoch
    /// must be above it, or transaction ids could repeat.
    func highestEpoch() throws -> UInt32
    /// Each prepared branch's net effect on this bank (in memory).
    func inDoubtNet() -> [TransactionID: Paise]
    /// The accounts prepared branches hold, and by whom (in memory).
    var heldLocks: [AccountID: TransactionID] { get }
    /// When the bank decides prepared branches alone (nil: it waits for the coordinator).
    var heuristicPolicy: HeuristicPolicy? { get set }
}

/// One report row (a regulator's large-transaction report, filed atomically with the money).
public struct BankReportRow: Sendable, Equatable {
    public var transaction: TransactionID
    public var report: Report

    public init(transaction: TransactionID, report: Report) {
        self.transaction = transaction
        self.report = report
    }
}

extension Bank {
    public func committedOnCoordinatorsWord(_ tx: TransactionID) throws -> Bool { try hasCommitted(tx) }
}

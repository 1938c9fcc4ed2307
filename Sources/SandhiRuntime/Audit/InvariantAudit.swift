import Logging
import SandhiEngine
import SandhiParticipants

/// `sandhi check`: the invariants of DESIGN.md, read straight from storage while no
/// coordinator runs (the caller holds the directory lock).
///
/// - Conservation: the sum of balances over all participants (TDS collected included) equals
///   the sum of every opening balance ever minted, give or take the money a heuristic case
///   still open created or destroyed (each case says how much; settling it squares the books).
/// - Atomicity: a transaction committed at one participant is committed at every participant
///   its prepare named as a writer, unless it is a heuristic case in the reconciliation queue
///   (invariant 1: mixed outcomes are allowed only where an operator can see them).
/// - No orphans: no participant holds a prepared branch (and hence a lock), and the decision
///   log holds no COMMIT whose participants have not all acknowledged.
public struct InvariantAudit: Sendable {
    public struct BankSummary: Sendable {
        public var participant: ParticipantID
        public var accounts: Int
        public var total: Paise
        public var minted: Paise
        public var prepared: [TransactionID]
        public var lockedAccounts: [AccountID: TransactionID]
        public var committedBranches: Int
        public var reports: Int
    }

    public var banks: [BankSummary] = []
    public var total: Paise = .zero
    public var minted: Paise = .zero
    public var unfinishedCommits: [TransactionID: [ParticipantID]] = [:]
    /// Distinct segments holding records (1 for a log in PostgreSQL, which has none).
    public var logSegments = 0
    public var logSource: RecoveredDecisionLog.Source = .segmentFiles(directory: "")
    /// Every heuristic case, open or settled (`DIR/reconciliation.log`).
    public var heuristicCases: [HeuristicCase] = []
    /// What the open cases created or destroyed: the allowance conservation makes for them.
    public var openImbalance: Paise = .zero
    public var violations: [String] = []
    /// What passed only thanks to the reconciliation queue, or could not be checked.
    public var notes: [String] = []

    public var passed: Bool { violations.isEmpty }

    public static func run(directory: DataDirectory, configuration: SandhiConfiguration, logger: Logger) throws -> InvariantAudit {
        var audit = InvariantAudit()
        let log = try directory.readDecisionLog(configuration, logger: logger)
        audit.logSource = log.source
        audit.unfinishedCommits = log.unfinishedCommits
        audit.logSegments = Set(log.records.map(\.position.segment)).count
        let reconciliation = try ReconciliationJournal.read(path: directory.reconciliationPath, fileSystem: directory.io.fileSystem)
        audit.heuristicCases = reconciliation.all
        let allowance = InvariantChecks.HeuristicAllowance(reconciliation)
        audit.openImbalance = allowance.imbalance
        var committed: [ParticipantID: [TransactionID: (writers: [ParticipantID], netPaise: Int64)]] = [:]
        for participant in configuration.participants {
            let bank = try directory.openBank(participant, of: configuration, logger: logger)
            defer { bank.close() }
            let branches = try bank.committedBranches()
            committed[participant.id] = branches
            let summary = BankSummary(
                participant: participant.id, accounts: try bank.balances().count, total: try bank.total(),
                minted: try bank.minted(), prepared: bank.inDoubt().keys.sorted(), lockedAccounts: bank.heldLocks,
                committedBranches: branches.count, reports: try bank.reports().count)
            audit.banks.append(summary)
            guard let total = audit.total.adding(summary.total), let minted = audit.minted.adding(summary.minted) else {
                audit.violations.append("conservation: the totals overflow at \(participant.id); balances cannot be trusted")
                continue
            }
            audit.total = total
            audit.minted = minted
            if !summary.prepared.isEmpty {
                let list = summary.prepared.prefix(5).map(\.description).joined(separator: ", ")
                audit.violations.append("\(participant.id) holds \(summary.prepared.count) prepared transaction(s) and \(summary.lockedAccounts.count) lock(s): \(list) (run `sandhi recover`)")
            }
        }
        audit.notes += allowance.notes
        if let violation = InvariantChecks.conservation(total: audit.total, minted: audit.minted, allowance: allowance) {
            audit.violations.append(violation)
        }
        let atomicity = InvariantChecks.atomicity(committed, writers: \.writers, configured: Set(configuration.participants.map(\.id)),
                                                  exempt: { reconciliation[$0] != nil })
        audit.violations += InvariantChecks.atomicityViolations(halfApplied: atomicity.halfApplied, unknownWriters: atomicity.unknownWriters)
        if !audit.unfinishedCommits.isEmpty {
            let list = audit.unfinishedCommits.keys.sorted().prefix(5).map(\.description).joined(separator: ", ")
            audit.violations.append("decision log: \(audit.unfinishedCommits.count) committed transaction(s) not yet acknowledged everywhere: \(list) (run `sandhi recover`)")
        }
        return audit
    }
}

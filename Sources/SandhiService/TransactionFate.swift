import SandhiEngine
import SandhiParticipants
import SandhiRuntime

/// Where a transaction is, or how it ended, as far as anyone can tell now: the coordinator
/// while it is in flight; the reconciliation queue for a mixed outcome; afterwards the banks
/// themselves, which keep every branch they committed. A transaction no participant committed
/// is aborted (presumed abort), or was read-only: either way nothing was applied under it.
struct TransactionFate: Codable, Sendable, Equatable {
    struct BranchView: Codable, Sendable, Equatable {
        var participant: String
        /// idle, awaitingVote, votedYes, votedReadOnly, votedNo, awaitingAck, acknowledged,
        /// committedAlone, rolledBackAlone
        var status: String
    }

    var transaction: String
    /// active, preparing, prepared, committing, aborting (in flight); pending (accepted, not yet
    /// begun); committed, aborted, heuristic; unknown (a participant that would know did not
    /// answer).
    var state: String
    /// In flight: each branch's progress.
    var branches: [BranchView]?
    /// Ended: the participants that committed it.
    var committedAt: [String]?
    var note: String?

    static func of(_ tx: TransactionID, node: SandhiNode, running: RunningTransfers) async -> TransactionFate {
        let driver = node.driver
        let coordinator = driver.snapshot()
        if let live = coordinator.transactions[tx] {
            return TransactionFate(transaction: "\(tx)", state: live.state.rawValue,
                                   branches: live.branches.map { BranchView(participant: $0.branch.participant.name, status: OperatorSnapshot.label($0.status)) })
        }
        if running.isRunning(tx) {
            return TransactionFate(transaction: "\(tx)", state: "pending", note: "accepted; not yet begun")
        }
        if let heuristic = coordinator.reconciliation.all.first(where: { $0.transaction == tx }) {
            return TransactionFate(transaction: "\(tx)", state: TransactionState.heuristic.rawValue,
                                   note: heuristic.isSettled ? "a mixed outcome, settled by an operator" : "a mixed outcome, waiting for an operator")
        }
        let probe = await driver.probeParticipants(hold: false) { resource -> Bool in
            guard let bank = resource as? Bank else { return false }
            return try bank.hasCommitted(tx)
        }
        let committed = probe.answers.filter { $0.value.value == true }.keys.sorted()
        if !committed.isEmpty {
            return TransactionFate(transaction: "\(tx)", state: TransactionState.committed.rawValue, committedAt: committed.map(\.name))
        }
        let silent = probe.answers.filter { $0.value.value == nil }.keys.sorted()
        if !silent.isEmpty {
            return TransactionFate(transaction: "\(tx)", state: "unknown",
                                   note: "no participant that answered committed it; " +
                                         silent.map { "\($0) \(probe.answers[$0]!.label)" }.joined(separator: ", "))
        }
        return TransactionFate(transaction: "\(tx)", state: TransactionState.aborted.rawValue,
                               note: "no participant committed it (aborted, or read-only)")
    }
}

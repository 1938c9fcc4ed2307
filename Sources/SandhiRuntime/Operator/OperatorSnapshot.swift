import SandhiEngine

/// What an operator sees of a running node, as a value that crosses a process boundary (the
/// service's `/v1/snapshot`, an attached console): every transaction in flight, the lock table,
/// the wait-for graph, deadlocks, participants' health, the reconciliation queue and the faults
/// in force. Built from a copy of the coordinator; nothing in it points back into the engine.
///
/// Bounded: at most `limit` transactions and lock rows (oldest first); `truncated` says how
/// many more there were, so that a node with 10,000 transactions in flight answers in
/// milliseconds, not megabytes.
public struct OperatorSnapshot: Codable, Sendable, Equatable {
    public struct Branch: Codable, Sendable, Equatable {
        public var participant: ParticipantID
        /// idle, awaitingVote, votedYes, votedReadOnly, votedNo, awaitingAck, acknowledged,
        /// committedAlone, rolledBackAlone
        public var status: String
        public var operations: Int
    }

    public struct Transaction: Codable, Sendable, Equatable {
        public var id: TransactionID
        public var state: TransactionState
        public var ageUs: UInt64
        public var amountPaise: Int64
        public var branches: [Branch]
        public var locksGranted: Int
        public var locksWanted: Int
        /// Who it waits for, in the wait-for graph.
        public var waitingFor: [TransactionID]
        public var abortReason: String?
        /// Brought back by recovery rather than begun by a client.
        public var recovered: Bool
    }

    public struct Holder: Codable, Sendable, Equatable {
        public var transaction: TransactionID
        public var mode: LockMode
    }

    public struct Waiter: Codable, Sendable, Equatable {
        public var transaction: TransactionID
        public var mode: LockMode
        public var waitedUs: UInt64
    }

    public struct Lock: Codable, Sendable, Equatable {
        public var resource: ResourceID
        public var holders: [Holder]
        public var waiters: [Waiter]
    }

    public struct Edge: Codable, Sendable, Equatable {
        public var from: TransactionID
        public var to: TransactionID
    }

    public struct Participant: Codable, Sendable, Equatable {
        public var id: ParticipantID
        public var down: Bool
        /// Stopped for good after a failed fsync: why.
        public var failure: String?
        public var queued: Int
        public var batches: Int
        public var syncs: Int
        public var recentBatchUs: UInt64
        public var recentSyncUs: UInt64
    }

    public struct Truncated: Codable, Sendable, Equatable {
        public var transactions: Int
        public var locks: Int
    }

    public var epoch: UInt32
    public var takenAtUs: UInt64
    /// Why the coordinator takes no transactions, if it does not.
    public var halted: String?
    public var inFlight: Int
    public var transactions: [Transaction]
    public var locks: [Lock]
    public var waits: [Edge]
    /// Deadlocks not yet resolved (an operator may choose their victim), then the recent ones.
    public var unresolvedDeadlocks: [Deadlock]
    public var recentDeadlocks: [Deadlock]
    public var deadlocksInAll: Int
    public var participants: [Participant]
    public var reconciliation: [HeuristicCase]
    /// Live faults in force, in their command form (`crash icici`).
    public var faults: [String]
    public var truncated: Truncated

    public static let defaultLimit = 1_000

    public init(coordinator: Coordinator, epoch: UInt32, participants: [CoordinatorDriver.ParticipantHealth], faults: [String],
                halted: String?, nowUs: UInt64, limit: Int = defaultLimit) {
        let graph = coordinator.locks.graph
        let live = coordinator.transactions.values.sorted { ($0.beganAtUs, $0.id) < ($1.beganAtUs, $1.id) }
        self.epoch = epoch
        takenAtUs = nowUs
        self.halted = halted
        inFlight = live.count
        transactions = live.prefix(limit).map { transaction in
            Transaction(id: transaction.id, state: transaction.state, ageUs: nowUs &- min(nowUs, transaction.beganAtUs),
                        amountPaise: SandhiEngine.Branch.amountMoved(by: transaction.branches.map(\.branch)).value,
                        branches: transaction.branches.map {
                            Branch(participant: $0.branch.participant, status: Self.label($0.status), operations: $0.branch.operations.count)
                        },
                        locksGranted: transaction.locksGranted, locksWanted: transaction.lockPlan.count,
                        waitingFor: graph.contains(transaction.id) ? graph.successors(of: transaction.id) : [],
                        abortReason: transaction.abortReason, recovered: transaction.recovered)
        }
        let table = coordinator.locks.table.sorted { $0.key < $1.key }
        locks = table.prefix(limit).map { resource, entry in
            Lock(resource: resource, holders: entry.holders.map { Holder(transaction: $0.transaction, mode: $0.mode) },
                 waiters: entry.waiters.map { Waiter(transaction: $0.transaction, mode: $0.mode, waitedUs: nowUs &- min(nowUs, $0.sinceUs)) })
        }
        waits = graph.edges.prefix(limit * 4).map { Edge(from: $0.from, to: $0.to) }
        unresolvedDeadlocks = coordinator.unresolvedDeadlocks
        recentDeadlocks = Array(coordinator.deadlockHistory.entries)
        deadlocksInAll = coordinator.deadlockHistory.totalCount
        self.participants = participants.map {
            Participant(id: $0.participant, down: $0.down, failure: $0.failure, queued: $0.queued, batches: $0.batches,
                        syncs: $0.syncs, recentBatchUs: $0.recentBatchUs, recentSyncUs: $0.recentSyncUs)
        }
        reconciliation = coordinator.reconciliation.all
        self.faults = faults
        truncated = Truncated(transactions: max(0, live.count - limit), locks: max(0, table.count - limit))
    }

    /// A branch's progress in one word.
    public static func label(_ status: Coordinator.BranchStatus) -> String {
        switch status {
        case .idle: return "idle"
        case .awaitingVote: return "awaitingVote"
        case .voted(.yes): return "votedYes"
        case .voted(.readOnly): return "votedReadOnly"
        case .voted(.no): return "votedNo"
        case .awaitingAck: return "awaitingAck"
        case .acknowledged: return "acknowledged"
        case .decidedAlone(let committed): return committed ? "committedAlone" : "rolledBackAlone"
        }
    }
}

extension SandhiNode {
    /// The operator's picture of the node now (see `OperatorSnapshot`).
    public func operatorSnapshot(limit: Int = OperatorSnapshot.defaultLimit) -> OperatorSnapshot {
        let driver = self.driver
        return OperatorSnapshot(coordinator: driver.snapshot(), epoch: driver.epoch, participants: driver.participantHealth,
                                faults: activeFaults.map(\.description), halted: driver.haltReason, nowUs: MonotonicClock.nowUs(),
                                limit: limit)
    }
}

import SandhiEngine
import SandhiTerminalUI

// The console is model–update–view (bubbletea's shape): everything that happens reaches the
// model as a `ConsoleMessage`; `ConsoleModel.update` changes the model and returns
// `ConsoleCommand`s for the executable to carry out against the engine; the view is drawn from
// the model alone. Nothing here touches the terminal or the engine.

/// What the console hears.
public enum ConsoleMessage: Sendable {
    case key(Key)
    /// Engine events since the last batch, in order.
    case events([EngineEvent])
    /// A fresh picture of the engine.
    case snapshot(EngineView)
    /// Time passes (the executable sends one a few times a second): metrics and ages.
    case tick(nowUs: UInt64)
    /// The outcome of a command the console asked for, one line for the operator.
    case commandFinished(String, ok: Bool)
    /// The invariant check run after an operator's action.
    case auditFinished(lines: [String], passed: Bool)
}

/// What the console asks the executable to do. Operator actions are commands, never mutations
/// (DESIGN.md): the engine validates them and answers with events or an error line.
public enum ConsoleCommand: Hashable, Sendable {
    case quit
    case forceAbort(TransactionID, note: String)
    /// A live fault in its text form (`crash icici`, `heal all`, ...; SandhiRuntime's `LiveFault`).
    case injectFault(String)
    case resolveHeuristic(TransactionID, action: ReconcileAction, note: String)
    /// The workload's rate one step up (+1) or down (-1).
    case changeWorkloadRate(by: Int)
    case nextWorkload
    case nextTheme
    /// Run the invariant check now.
    case runAudit
}

/// A picture of the engine, taken by the executable a few times a second.
public struct EngineView: Sendable {
    public struct Participant: Hashable, Sendable {
        public var id: ParticipantID
        public var isDown: Bool
        public var fsyncs: Int
        /// What a database participant's own server holds prepared (every prepared transaction
        /// in its database, Sandhi's or not); nil for an embedded bank, or not asked yet.
        public var preparedInDatabase: PreparedInDatabase?
        /// The locks a database participant's server reports for its prepared transactions
        /// (beside Sandhi's own lock table); empty for an embedded bank.
        public var databaseLocks: [DatabaseLock]

        public init(id: ParticipantID, isDown: Bool, fsyncs: Int = 0, preparedInDatabase: PreparedInDatabase? = nil,
                    databaseLocks: [DatabaseLock] = []) {
            self.id = id
            self.isDown = isDown
            self.fsyncs = fsyncs
            self.preparedInDatabase = preparedInDatabase
            self.databaseLocks = databaseLocks
        }
    }

    /// One lock as the database reports it (`pg_locks`), held by a prepared transaction.
    public struct DatabaseLock: Hashable, Sendable {
        public var gid: String
        /// `relation`, `transactionid`, ...
        public var kind: String
        /// The table, for a relation lock.
        public var relation: String
        public var mode: String
        public var granted: Bool

        public init(gid: String, kind: String, relation: String, mode: String, granted: Bool) {
            self.gid = gid
            self.kind = kind
            self.relation = relation
            self.mode = mode
            self.granted = granted
        }
    }

    /// A database's prepared transactions: how many, and how long the oldest has waited. An
    /// abandoned one holds its locks and holds back VACUUM for as long as it stays.
    public struct PreparedInDatabase: Hashable, Sendable {
        public var count: Int
        public var oldestAgeSeconds: Int64?

        public init(count: Int, oldestAgeSeconds: Int64?) {
            self.count = count
            self.oldestAgeSeconds = oldestAgeSeconds
        }

        /// Past this, the Participants screen warns.
        public static let warningAgeSeconds: Int64 = 60
        public var isOld: Bool { (oldestAgeSeconds ?? 0) >= Self.warningAgeSeconds }
    }

    /// The coordinator's whole state (a value; the driver hands out a copy).
    public var coordinator: Coordinator
    public var participants: [Participant]
    /// Live faults in force, in their text form.
    public var activeFaults: [String]
    /// The concurrency mode (`2pl`) and the workload, for the header.
    public var mode: String
    public var workload: String
    /// Monotonic microseconds when the picture was taken (the coordinator's clock).
    public var takenAtUs: UInt64
    /// Why the coordinator is not running, if it is not (halted, crashed, restarting).
    public var halted: String?

    public init(coordinator: Coordinator, participants: [Participant], activeFaults: [String] = [], mode: String = "2pl",
                workload: String = "", takenAtUs: UInt64, halted: String? = nil) {
        self.coordinator = coordinator
        self.participants = participants
        self.activeFaults = activeFaults
        self.mode = mode
        self.workload = workload
        self.takenAtUs = takenAtUs
        self.halted = halted
    }
}

/// What one seed's run did and found.
public struct SimulationReport: Sendable, Codable {
    public struct Violation: Sendable, Codable, Hashable, CustomStringConvertible {
        /// The invariant broken: `atomicity`, `conservation`, `durability`, `decision-before-commit`,
        /// `durable-vote`, `halt`, `log`, `torn-write`, `no-orphans`, `liveness`, `non-negative`,
        /// `isolation`, `heuristic` (a case that misstates its transaction, or one left unsettled),
        /// `forget-before-record`.
        public var invariant: String
        public var detail: String
        /// The step at which it was seen.
        public var step: Int

        public var description: String { "\(invariant) at step \(step): \(detail)" }
    }

    public var seed: UInt64
    public var bug: SimulationBug?
    public var faults: FaultProfile
    public var transactions: Int
    public var committed: Int
    public var aborted: Int
    public var steps: Int
    public var virtualTimeUs: UInt64
    /// Faults injected, by kind.
    public var injected: [String: Int]
    /// The named two-phase-commit failure cases this run hit, by name.
    public var cases: [String: Int]
    public var violations: [Violation]
    /// FNV-1a over every event processed: two runs of one seed must agree.
    public var traceHash: UInt64
    /// The last events, oldest first, for a failure report.
    public var traceTail: [String]
    /// Heuristic (mixed) outcomes the coordinator recorded in its reconciliation queue.
    public var heuristicCases: Int = 0
    /// Transactions the simulated operator ran to settle them (retry-commit, compensate); not
    /// counted in `transactions`.
    public var linkedTransactions: Int = 0
    /// Money the mixed outcomes settled by mark-resolved created (positive) or destroyed
    /// (negative): written off, so the final total differs from the opening one by this much.
    public var writtenOffPaise: Int64 = 0
    /// The transfers the run was asked for (`SimulationOptions.transactions`; `transactions`
    /// counts those the coordinator took).
    public var transactionsRequested = SimulationReport.defaultTransactions

    public var passed: Bool { violations.isEmpty }

    static let defaultTransactions = SimulationOptions(seed: 0).transactions

    /// The command that replays this run (`--transactions` too, when not the default: another
    /// number of transfers is another run of the seed).
    public var replayCommand: String {
        "sandhi simulate --seed \(seed)"
            + (transactionsRequested == Self.defaultTransactions ? "" : " --transactions \(transactionsRequested)")
            + (bug.map { " --bug \($0.rawValue)" } ?? "")
    }
}

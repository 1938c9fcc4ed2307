import SandhiEngine
import SandhiParticipants

/// The invariants of DESIGN.md checked on a running node (`SandhiNode.liveAudit`), by the same
/// rules as `InvariantAudit` (`InvariantChecks`), for the console to run after an operator's
/// reconciliation action and show. `InvariantAudit` opens the bank files, which a running
/// node's workers hold exclusively; this asks the workers instead (probes,
/// ParticipantProbe.swift), in two rounds:
///
/// 1. Scan (each bank pauses only for its own answer): every committed branch with its
///    writers, the account and report counts. From these, the half-applied candidates: a branch
///    committed at P naming a writer W whose scan lacks it. Banks are scanned at different
///    moments, so a transaction committing meanwhile is a candidate without being wrong.
/// 2. Cut (every bank held at once, so the answers describe one instant, and the coordinator
///    copied at that instant): balances total, minted, each prepared branch with its net,
///    the locks held, heuristic decisions not yet reported, and for each candidate at W
///    whether W has committed it or holds it prepared.
///
/// Then:
/// - Conservation: balances + the nets of branches still prepared for transactions the
///   coordinator has decided COMMIT (committed at one bank, in flight to another: in neither's
///   balances yet) = minted + what the open heuristic cases account for. Only with a
///   consistent cut of every bank.
/// - Atomicity: a candidate is a violation only if, at the cut (after P's scan), W has neither
///   committed nor prepared it: a branch committed at P means W voted YES, so W held it
///   prepared before that. Heuristic cases (and decisions not yet reported) are exempt.
/// - Prepared branches and held locks are counted, not judged: transactions are in flight.
///
/// Cost: round 1 reads every committed branch (as `sandhi check` does; O(history)), each bank
/// pausing for its own read; round 2 holds every bank for as long as the slowest takes to come
/// round and answer a few in-memory lookups (`heldUs`).
public struct LiveAudit: Sendable {
    public var banks: [InvariantAudit.BankSummary] = []
    /// Balances at the cut, over the banks that answered.
    public var total: Paise = .zero
    public var minted: Paise = .zero
    /// Nets of branches prepared at the cut for transactions decided COMMIT: money on its way.
    public var decidedInFlight: Paise = .zero
    /// Transactions the coordinator had in flight at the cut.
    public var inFlight = 0
    public var preparedBranches = 0
    public var heldLocks = 0
    /// Every heuristic case, open or settled, as the coordinator had them at the cut.
    public var heuristicCases: [HeuristicCase] = []
    public var openImbalance: Paise = .zero
    /// Banks that could not be read, and why (down, did not answer in time, failed).
    public var unavailable: [ParticipantID: String] = [:]
    /// Every bank answered at one instant: conservation was checked over all of them.
    public var consistent = false
    /// How long the banks were held for the cut.
    public var heldUs: UInt64 = 0
    public var violations: [String] = []
    /// What passed only thanks to the reconciliation queue, what was in flight, what could not
    /// be checked.
    public var notes: [String] = []

    public var passed: Bool { violations.isEmpty }

    /// Round 1's answer from one bank.
    struct Scan: Sendable {
        var committed: [TransactionID: [ParticipantID]]
        var accounts: Int
        var reports: Int
    }

    /// Round 2's answer from one bank.
    struct Cut: Sendable {
        var total: Paise
        var minted: Paise
        var prepared: [TransactionID: Paise]
        var locks: [AccountID: TransactionID]
        /// Decided here alone and not yet forgotten by the coordinator.
        var heuristics: Set<TransactionID>
        /// For each candidate asked about: committed here (true) or prepared here (false).
        var candidates: [TransactionID: Bool]
    }

    struct NotABank: Error, CustomStringConvertible {
        var participant: ParticipantID
        var description: String { "\(participant) is not a bank; the live audit reads banks only" }
    }

    static func scan(_ resource: ParticipantResource) throws -> Scan {
        guard let bank = resource as? Bank else { throw NotABank(participant: resource.id) }
        return Scan(committed: try bank.committedBranches().mapValues(\.writers), accounts: try bank.balances().count,
                    reports: try bank.reports().count)
    }

    /// Only in-memory state and indexed lookups: every bank stands still while the slowest answers.
    static func cut(_ resource: ParticipantResource, candidates: [TransactionID]) throws -> Cut {
        guard let bank = resource as? Bank else { throw NotABank(participant: resource.id) }
        let prepared = bank.inDoubtNet()
        var found: [TransactionID: Bool] = [:]
        for tx in candidates {
            if try bank.hasCommitted(tx) { found[tx] = true } else if prepared[tx] != nil { found[tx] = false }
        }
        return Cut(total: try bank.total(), minted: try bank.minted(), prepared: prepared, locks: bank.heldLocks,
                   heuristics: Set(bank.unforgottenHeuristics().keys), candidates: found)
    }

    /// Candidates asked of one bank, at most (a bound on every queue): beyond it, the rest are
    /// counted in a note and left to `sandhi check`.
    static let maxCandidatesPerBank = 4_096

    /// Round 1's half-applied candidates, by the bank to ask about them (the missing writer).
    static func candidates(_ scans: [ParticipantID: Scan], configured: Set<ParticipantID>) -> InvariantChecks.Atomicity {
        InvariantChecks.atomicity(scans.mapValues(\.committed), writers: { $0 }, configured: configured, exempt: { _ in false })
    }

    /// Judges both rounds. `configured`: every participant of the node, in order.
    static func evaluate(configured: [ParticipantID], scan: ProbeResult<Scan>, atomicity: InvariantChecks.Atomicity,
                         asked: Set<InvariantChecks.HalfApplied>, cut: ProbeResult<Cut>) -> LiveAudit {
        var audit = LiveAudit()
        audit.consistent = cut.consistent
        audit.heldUs = cut.heldUs
        var cuts: [ParticipantID: Cut] = [:]
        for participant in configured {
            guard let scanned = scan.answers[participant]?.value, let held = cut.answers[participant]?.value else {
                var why = "not asked"
                if let answer = scan.answers[participant], answer.value == nil {
                    why = answer.label
                } else if let answer = cut.answers[participant], answer.value == nil {
                    why = answer.label
                }
                audit.unavailable[participant] = why
                continue
            }
            cuts[participant] = held
            audit.banks.append(InvariantAudit.BankSummary(
                participant: participant, accounts: scanned.accounts, total: held.total, minted: held.minted,
                prepared: held.prepared.keys.sorted(), lockedAccounts: held.locks, committedBranches: scanned.committed.count,
                reports: scanned.reports))
            audit.total = audit.total.adding(held.total) ?? audit.total
            audit.minted = audit.minted.adding(held.minted) ?? audit.minted
            audit.preparedBranches += held.prepared.count
            audit.heldLocks += held.locks.count
        }
        let coordinator = cut.coordinator
        let queue = coordinator?.reconciliation ?? ReconciliationQueue()
        audit.heuristicCases = queue.all
        audit.inFlight = coordinator?.inFlightCount ?? 0
        let allowance = InvariantChecks.HeuristicAllowance(queue)
        audit.openImbalance = allowance.imbalance
        audit.notes += allowance.notes
        // Decided alone at a bank, not yet a case at the coordinator: the report is on its way.
        let unreported = Set(cuts.values.flatMap(\.heuristics)).filter { queue[$0] == nil }
        if !unreported.isEmpty {
            audit.notes.append("heuristic: \(unreported.count) decision(s) taken alone at a bank, not yet reported: "
                + unreported.sorted().prefix(5).map(\.description).joined(separator: ", "))
        }
        if !audit.unavailable.isEmpty {
            audit.notes.append("not read: " + audit.unavailable.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
                + "; conservation and their branches' atomicity not checked")
        }

        // Conservation, over one instant of every bank.
        if audit.consistent && audit.unavailable.isEmpty, let coordinator {
            for held in cuts.values {
                for (tx, net) in held.prepared {
                    let state = coordinator.transactions[tx]?.state
                    if state == .committing || state == .committed { audit.decidedInFlight = audit.decidedInFlight + net }
                }
            }
            let onTheirWay = audit.total + audit.decidedInFlight
            if let violation = InvariantChecks.conservation(total: onTheirWay, minted: audit.minted, allowance: allowance) {
                if unreported.isEmpty {
                    audit.violations.append(violation + (audit.decidedInFlight == .zero ? ""
                        : " (balances \(audit.total.value) plus \(audit.decidedInFlight.value) decided and still prepared)"))
                } else {
                    audit.notes.append("conservation not verifiable until the heuristic decision(s) above reach the coordinator: " + violation)
                }
            }
        } else if audit.unavailable.isEmpty {
            audit.notes.append("conservation not checked: the banks could not be held at one instant")
        }

        // Atomicity: each candidate judged by what its missing writer held at the cut.
        let exempt = { (tx: TransactionID) in queue[tx] != nil || unreported.contains(tx) }
        var halfApplied: [InvariantChecks.HalfApplied] = []
        var unchecked = atomicity.unchecked
        for candidate in atomicity.halfApplied where !exempt(candidate.transaction) {
            guard asked.contains(candidate), let held = cuts[candidate.missingAt] else {
                unchecked += 1
                continue
            }
            if held.candidates[candidate.transaction] == nil { halfApplied.append(candidate) }
        }
        audit.violations += InvariantChecks.atomicityViolations(halfApplied: halfApplied, unknownWriters: atomicity.unknownWriters)
        if unchecked > 0 { audit.notes.append("atomicity: \(unchecked) branch(es) not checked (their writer was not read)") }

        if audit.inFlight > 0 || audit.preparedBranches > 0 || audit.heldLocks > 0 {
            audit.notes.append("in flight: \(audit.inFlight) transaction(s), \(audit.preparedBranches) prepared branch(es), \(audit.heldLocks) lock(s) held")
        }
        return audit
    }
}

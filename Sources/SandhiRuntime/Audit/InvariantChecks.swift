import SandhiEngine

/// The checks behind DESIGN.md's invariants 1 and 2, shared by `InvariantAudit` (storage at
/// rest, no coordinator running) and `LiveAudit` (a running node's banks at one instant), so
/// that both judge by the same rules and say so in the same words.
enum InvariantChecks {
    /// What the unsettled heuristic cases allow conservation to be off by: each case says how
    /// much its mixed outcome created or destroyed, and settling it squares the books.
    struct HeuristicAllowance {
        var open: [HeuristicCase]
        var imbalance: Paise = .zero
        /// Open cases whose divergent operations are unknown: conservation cannot be verified
        /// while they stand.
        var unknown: [TransactionID] = []

        init(_ queue: ReconciliationQueue) {
            open = queue.unsettled
            for heuristicCase in open {
                if let imbalance = heuristicCase.imbalance { self.imbalance = self.imbalance + imbalance } else { unknown.append(heuristicCase.transaction) }
            }
        }

        /// What passed only thanks to the reconciliation queue, or could not be checked.
        var notes: [String] {
            var notes: [String] = []
            if !open.isEmpty {
                notes.append("heuristic: \(open.count) unsettled case(s) in the reconciliation queue (`sandhi reconcile list`): "
                    + open.prefix(5).map { "\($0.transaction) \($0.status.label)" }.joined(separator: ", ")
                    + (imbalance == .zero ? "" : "; they account for \(imbalance) (\(imbalance.value) paise)"))
            }
            if !unknown.isEmpty {
                notes.append("conservation not verifiable: the operations of heuristic case(s) "
                    + unknown.prefix(5).map(\.description).joined(separator: ", ") + " are unknown")
            }
            return notes
        }
    }

    /// Invariant 2: the balances add up to what was minted, give or take the open cases. Nil
    /// when they do, or when the open cases make it unverifiable.
    static func conservation(total: Paise, minted: Paise, allowance: HeuristicAllowance) -> String? {
        guard total != minted + allowance.imbalance && allowance.unknown.isEmpty else { return nil }
        let note = allowance.imbalance == .zero ? "" : ", of which open heuristic cases account for \(allowance.imbalance.value)"
        return "conservation: balances total \(total.value) paise, but \(minted.value) paise were minted "
            + "(difference \((total - minted).value)\(note))"
    }

    /// A branch committed at `committedAt` whose transaction names `missingAt` as a writer, where
    /// it has not committed.
    struct HalfApplied: Hashable, Sendable {
        var transaction: TransactionID
        var committedAt: ParticipantID
        var missingAt: ParticipantID
    }

    struct Atomicity {
        var halfApplied: [HalfApplied] = []
        /// A writer that is not a configured participant at all.
        var unknownWriters: [(transaction: TransactionID, writer: ParticipantID)] = []
        /// Branches whose writer could not be looked at (its bank was not read).
        var unchecked = 0
    }

    /// Invariant 1 over committed branches: every writer a committed branch names has committed
    /// the transaction too, unless `exempt` (a heuristic case in the reconciliation queue).
    /// `committed` holds the banks that were read; a configured writer missing from it is
    /// counted as unchecked, not judged.
    static func atomicity<Entry>(_ committed: [ParticipantID: [TransactionID: Entry]], writers: (Entry) -> [ParticipantID],
                                 configured: Set<ParticipantID>, exempt: (TransactionID) -> Bool) -> Atomicity {
        var result = Atomicity()
        for (participant, branches) in committed {
            for (tx, entry) in branches {
                for writer in writers(entry) where writer != participant {
                    guard let other = committed[writer] else {
                        if configured.contains(writer) { result.unchecked += 1 } else { result.unknownWriters.append((tx, writer)) }
                        continue
                    }
                    if other[tx] == nil && !exempt(tx) {
                        result.halfApplied.append(HalfApplied(transaction: tx, committedAt: participant, missingAt: writer))
                    }
                }
            }
        }
        return result
    }

    /// The violations for half-applied branches and unknown writers: the first few by name.
    static func atomicityViolations(halfApplied: [HalfApplied], unknownWriters: [(transaction: TransactionID, writer: ParticipantID)]) -> [String] {
        var violations = unknownWriters.map { "atomicity: \($0.transaction) names \($0.writer), which is not a configured participant" }
        for item in halfApplied.prefix(5) {
            violations.append("atomicity: \(item.transaction) committed at \(item.committedAt) but not at \(item.missingAt)")
        }
        if halfApplied.count > 5 { violations.append("atomicity: \(halfApplied.count - 5) more half-applied branches") }
        return violations
    }
}

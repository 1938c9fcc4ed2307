import SandhiEngine

// Heuristic outcomes in the simulated world: banks that stop waiting for the coordinator and
// decide a prepared branch alone, the check that no FORGET outruns the durable record it
// depends on, and the simulated operator who settles every heuristic case once the faults stop.
//
//   bank      while faults strike, the bank's own heuristic policy (`SQLiteBank.sweep`) commits
//             or rolls back alone a branch prepared for the seed's `heuristicAfterMs` (the
//             coordinator slow, cut off or down), a coin from the seed deciding which way at
//             each round; the decision is durable in the bank's file, restored at restart, and
//             reported at every sweep until the coordinator says FORGET
//   operator  with the faults over and nothing in flight, every open case gets its next
//             action: retry-commit under a COMMIT decision, compensate under an abort, the other
//             one when the first is refused or its linked transaction fails (insufficient funds),
//             mark-resolved (the money written off) when neither can run; then everything
//             settles again, within the same liveness bound
extension SimulatedWorld {
    /// A FORGET lets bank `index` drop its heuristic decision on `tx`. One that went against the
    /// decision is a mixed outcome, and the bank's record its only trace until the coordinator's
    /// reconciliation record is durable: that record must come first.
    mutating func checkForget(_ tx: TransactionID, to index: Int) {
        guard let committed = banks[index].decidedAlone[tx] else { return } // never decided alone
        guard committed != isDurable(tx) else { return } // agrees with the decision: nothing to record
        let outcome = BranchOutcome(heuristic: committed)
        let recorded = reconciliationAcknowledged[tx]?.participants.contains { $0.participant == names[index] && $0.outcome == outcome } ?? false
        if !recorded {
            violation("forget-before-record", "FORGET sent to \(names[index]) for its \(outcome.label) of \(tx) (decision "
                      + "\(isDurable(tx) ? "commit" : "abort")) before a reconciliation record of it was durable")
        }
    }

    mutating func countReconciled(_ entry: ReconcileEntry) {
        switch (entry.after, entry.result) {
        case (.settled(.retryCommit, _), .succeeded): cases[.settledByRetryCommit] += 1
        case (.settled(.compensate, _), .succeeded): cases[.settledByCompensate] += 1
        case (.settled(.markResolved, _), .succeeded): cases[.settledByMarkResolved] += 1
        case (_, .failed): cases[.linkedTransactionFailed] += 1
        default: break
        }
    }

    /// The simulated operator, with everything settled: the next action on every open case.
    /// Returns whether it took any.
    mutating func reconcileOpenCases() -> Bool {
        nowUs = max(nowUs, faultsStopAtUs) // whatever happens now happens without faults
        let queue = coordinatorProcess.core.coordinator.reconciliation
        var acted = false
        for heuristicCase in queue.all where heuristicCase.status == .open {
            let tx = heuristicCase.transaction
            let tried = operatorActions[tx, default: []]
            guard !tried.contains(.markResolved) else { continue } // mark-resolved cannot fail
            let preferred: [ReconcileAction] = heuristicCase.decision == .commit ? [.retryCommit, .compensate] : [.compensate, .retryCommit]
            var action = ReconcileAction.markResolved
            var plan: [Branch]?
            for candidate in preferred where !tried.contains(candidate) {
                if case .success(let branches?) = queue.plan(candidate, for: tx) {
                    action = candidate
                    plan = branches
                    break
                }
            }
            operatorActions[tx, default: []].append(action)
            // Mark-resolved runs nothing; its id goes unused.
            var linked = TransactionID(rawValue: 0)
            if let plan {
                linked = TransactionID(epoch: coordinatorProcess.epoch, sequence: coordinatorProcess.nextSequence)
                coordinatorProcess.nextSequence += 1
                ledger.append(Submission(id: linked, branches: plan, linked: true))
                seen.append(contentsOf: repeatElement(nil, count: names.count))
                staged.append(contentsOf: repeatElement(nil, count: names.count))
                // As the driver: the operator hears once the linked transaction finishes.
                coordinatorProcess.core.wait(for: linked, client: ledger.count - 1, answerWhen: .finished, nowUs: coordinatorProcess.clock(nowUs))
            }
            record(14, tx.rawValue, UInt64(ReconcileAction.allCases.firstIndex(of: action)!))
            let note = tried.isEmpty ? "settling the \(heuristicCase.decision.label) decision"
                                     : "\(tried.map(\.rawValue).joined(separator: ", ")) did not settle it"
            feed(.resolveHeuristic(tx, action: action, operatorName: "simulated operator", note: note, linked: linked))
            acted = true
        }
        return acted
    }

    /// What the branches of ledger entry `slot` that took effect add up to: the money a mixed
    /// outcome created (positive) or destroyed.
    func appliedImbalance(_ slot: Int) -> Int64 {
        var total: Int64 = 0
        for branch in ledger[slot].branches {
            guard let index = index(of: branch.participant), ledger[slot].applied & (1 << index) != 0 else { continue }
            for operation in branch.operations { total += operation.delta.value }
        }
        return total
    }

    /// The money of every case not completed or undone by a linked transaction: written off
    /// by mark-resolved (or, a violation of its own, still unsettled).
    func writtenOff(_ queue: ReconciliationQueue) -> Int64 {
        var total: Int64 = 0
        for heuristicCase in queue.all {
            if case .settled(let action, _) = heuristicCase.status, action != .markResolved { continue }
            total += heuristicCase.imbalance?.value ?? slot(of: heuristicCase.transaction).map(appliedImbalance) ?? 0
        }
        return total
    }

    /// The final checks of the heuristic cases: each one tells the truth about its transaction
    /// (the decision, every writer's outcome, the money), and each is settled; every bank's
    /// heuristic decision was forgotten.
    mutating func checkHeuristicCases(_ queue: ReconciliationQueue) {
        for heuristicCase in queue.all {
            let tx = heuristicCase.transaction
            guard let slot = slot(of: tx) else {
                violation("heuristic", "a heuristic case for \(tx), which was never submitted")
                continue
            }
            let entry = ledger[slot]
            let writers = writerBits(entry)
            let decision: LoggedDecision = entry.durable ? .commit : .abort
            let diverged = entry.applied ^ (decision == .commit ? writers : 0)
            if heuristicCase.decision != decision {
                violation("heuristic", "the case for \(tx) records the decision \(heuristicCase.decision.label), but it was \(decision.label) "
                          + "(applied at \(named(entry.applied)) of \(named(writers)))")
            } else if diverged == 0 {
                violation("heuristic", "a heuristic case for \(tx), whose outcome is not mixed: \(decision.label), applied at "
                          + "\(named(entry.applied)) of \(named(writers))")
            }
            for participant in heuristicCase.participants {
                guard let index = index(of: participant.participant), writers & (1 << index) != 0 else { continue }
                let applied = entry.applied & (1 << index) != 0
                if participant.outcome.applied != applied {
                    violation("heuristic", "the case for \(tx) records \(participant.participant) as \(participant.outcome.label), "
                              + "but its branch was \(applied ? "" : "not ")applied")
                }
            }
            let actual = appliedImbalance(slot)
            if let recorded = heuristicCase.imbalance, recorded.value != actual {
                violation("heuristic", "the case for \(tx) records an imbalance of \(recorded.value) paise; the mix made \(actual)")
            }
            if !heuristicCase.isSettled {
                violation("heuristic", "the case for \(tx) is still \(heuristicCase.status.label) after everything settled")
            }
        }
        for (index, bank) in banks.enumerated() {
            let held = bank.store?.unforgottenHeuristics() ?? [:]
            guard !held.isEmpty else { continue }
            violation("heuristic", "\(names[index]) still holds heuristic decisions on "
                      + "\(held.keys.sorted().prefix(5).map(\.description)) that the coordinator never forgot")
        }
    }

    /// A bit per participant with something to commit in `entry`.
    func writerBits(_ entry: Submission) -> UInt16 {
        var writers: UInt16 = 0
        for branch in entry.branches where !branch.isReadOnly { writers |= 1 << index(of: branch.participant)! }
        return writers
    }

    /// The participants of a bit set, by name.
    func named(_ bits: UInt16) -> [String] { names.indices.filter { bits & (1 << $0) != 0 }.map { names[$0].name } }
}

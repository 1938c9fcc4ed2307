import SandhiEngine

/// What an operator may ask of a running node, from any client: the console, the command line,
/// the service's API, an AI agent. Every one goes through `SandhiNode.preview` (what it would
/// do, changing nothing) and `SandhiNode.perform`, the same checks for all of them.
public enum OperatorCommand: Sendable, Equatable, CustomStringConvertible {
    /// Abort a transaction not yet decided (active or preparing).
    case abort(TransactionID)
    /// Break an unresolved deadlock by aborting one of its candidates, before (or instead of)
    /// the engine's own choice.
    case chooseVictim(deadlock: UInt64, victim: TransactionID)
    /// Begin or end a live fault (`crash icici`, `heal icici`, `clear`).
    case fault(LiveFault)
    /// Settle a heuristic (mixed-outcome) case.
    case reconcile(TransactionID, ReconcileAction)

    public var description: String {
        switch self {
        case .abort(let tx): return "abort \(tx)"
        case .chooseVictim(let id, let victim): return "deadlock #\(id): abort \(victim)"
        case .fault(let fault): return "fault: \(fault)"
        case .reconcile(let tx, let action): return "reconcile \(tx): \(action.rawValue)"
        }
    }

    /// The transaction it acts on, if one.
    public var transaction: TransactionID? {
        switch self {
        case .abort(let tx), .chooseVictim(_, let tx), .reconcile(let tx, _): return tx
        case .fault: return nil
        }
    }

    /// Faults are chaos, not operations: a service takes them only when told to.
    public var isFault: Bool { if case .fault = self { return true } else { return false } }
}

/// Why a command was not carried out: one line, nothing changed.
public struct OperatorCommandRefusal: Error, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// What a command did, or (for a preview) would do.
public struct OperatorCommandResult: Sendable, Equatable {
    public var command: String
    /// What it changed, or would change, in one line.
    public var summary: String
    /// For a reconciliation: the branches it runs (nil: it runs none).
    public var plan: [Branch]?
}

extension SandhiNode {
    /// What `command` would do now, or why it would be refused; changes nothing.
    public func preview(_ command: OperatorCommand) throws(OperatorCommandRefusal) -> OperatorCommandResult {
        let coordinator = driver.snapshot()
        switch command {
        case .abort(let tx):
            let transaction = try Self.abortable(tx, in: coordinator)
            return OperatorCommandResult(command: "\(command)", summary: Self.abortSummary(transaction, in: coordinator))
        case .chooseVictim(let id, let victim):
            guard let deadlock = coordinator.unresolvedDeadlocks.first(where: { $0.id == id }) else {
                throw OperatorCommandRefusal("deadlock #\(id) is not waiting for a victim (resolved, or never found)")
            }
            guard deadlock.candidates.contains(where: { $0.transaction == victim }) else {
                throw OperatorCommandRefusal("\(victim) is not a candidate of deadlock #\(id): its candidates are "
                                             + deadlock.candidates.map(\.transaction.description).joined(separator: ", "))
            }
            let transaction = try Self.abortable(victim, in: coordinator)
            return OperatorCommandResult(command: "\(command)",
                                         summary: "breaks \(deadlock.description); " + Self.abortSummary(transaction, in: coordinator))
        case .fault(let fault):
            if let participant = fault.participant, !configuration.participants.contains(where: { $0.id == participant }) {
                throw OperatorCommandRefusal("no participant named '\(participant)'")
            }
            return OperatorCommandResult(command: "\(command)", summary: "would apply: \(fault)")
        case .reconcile(let tx, let action):
            switch coordinator.reconciliation.plan(action, for: tx) {
            case .failure(let refusal):
                throw OperatorCommandRefusal("\(refusal)")
            case .success(let plan):
                let what = plan.map { branches in
                    "runs " + branches.map { "\($0.participant): \($0.operations.map { $0.summary() }.joined(separator: ", "))" }.joined(separator: "; ")
                } ?? "runs nothing; records the case settled"
                return OperatorCommandResult(command: "\(command)", summary: what, plan: plan)
            }
        }
    }

    /// Carries `command` out for `actor` (who came `via` the console, the unix socket, TCP or
    /// MCP), with `reason` (required: every manual action says why), after the same checks
    /// `preview` makes. The audit trail gets the intent (with the state before) durably before
    /// anything is done, and the outcome (with the state after) before this returns; a command
    /// whose intent cannot be recorded is refused.
    public func perform(_ command: OperatorCommand, actor: String, via: String, reason: String) async throws(OperatorCommandRefusal) -> OperatorCommandResult {
        guard !reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw OperatorCommandRefusal("a reason is required")
        }
        let intent: AuditRecord
        do {
            intent = try auditTrail.append(AuditRecord(kind: .intent, actor: actor, via: via, command: "\(command)", reason: reason,
                                                       state: subjectState(command)))
        } catch {
            throw OperatorCommandRefusal("the audit trail cannot record it, so it was not done: \(error)")
        }
        let outcome: Result<OperatorCommandResult, OperatorCommandRefusal>
        do {
            outcome = .success(try await carryOut(command, actor: actor, reason: reason))
        } catch {
            outcome = .failure(error)
        }
        var record = AuditRecord(kind: .outcome, actor: actor, via: via, command: "\(command)", reason: reason,
                                 state: subjectState(command), intent: intent.seq)
        switch outcome {
        case .success(let result): (record.result, record.ok) = (result.summary, true)
        case .failure(let refusal): (record.result, record.ok) = ("refused: \(refusal)", false)
        }
        do {
            try auditTrail.append(record)
        } catch {
            // Done, and its intent is on record; the outcome line is what is missing.
            logger.error("the audit trail could not record a command's outcome", metadata: ["command": "\(command)", "error": "\(error)"])
            if case .success(var result) = outcome {
                result.summary += " (the audit trail could not record the outcome: \(error))"
                return result
            }
        }
        return try outcome.get()
    }

    /// The state a command acts on, in one line: before it (the intent) and after (the outcome).
    func subjectState(_ command: OperatorCommand) -> String {
        let coordinator = driver.snapshot()
        switch command {
        case .abort(let tx), .chooseVictim(_, let tx):
            guard let transaction = coordinator.transactions[tx] else { return "\(tx) not in flight" }
            return "\(tx) \(transaction.state), \(transaction.locksGranted) lock(s) held"
        case .fault:
            let faults = activeFaults.map(\.description)
            return "faults: " + (faults.isEmpty ? "none" : faults.joined(separator: ", "))
        case .reconcile(let tx, _):
            guard let heuristicCase = coordinator.reconciliation.all.first(where: { $0.transaction == tx }) else { return "no case \(tx)" }
            return "case \(tx) \(heuristicCase.status.label)"
        }
    }

    private func carryOut(_ command: OperatorCommand, actor: String, reason: String) async throws(OperatorCommandRefusal) -> OperatorCommandResult {
        let preview = try self.preview(command)
        switch command {
        case .abort(let tx), .chooseVictim(_, let tx):
            if let refusal = driver.forceAbort(tx, note: "\(actor): \(reason)") { throw OperatorCommandRefusal(refusal) }
            return OperatorCommandResult(command: "\(command)", summary: "aborted \(tx)")
        case .fault(let fault):
            do {
                try await inject(fault)
            } catch {
                throw OperatorCommandRefusal(error.description)
            }
            return OperatorCommandResult(command: "\(command)", summary: "applied: \(fault)")
        case .reconcile(let tx, let action):
            do {
                let settled = try await driver.resolveHeuristic(tx, action: action, operatorName: actor, note: reason)
                let result = settled.actions.last?.result.label ?? "recorded"
                return OperatorCommandResult(command: "\(command)", summary: "\(result); \(settled.status.label)", plan: preview.plan)
            } catch {
                throw OperatorCommandRefusal("\(error)")
            }
        }
    }

    private static func abortable(_ tx: TransactionID, in coordinator: Coordinator) throws(OperatorCommandRefusal) -> Coordinator.CoordinatorTransaction {
        guard let transaction = coordinator.transactions[tx] else { throw OperatorCommandRefusal("\(tx) is not in flight") }
        guard transaction.state == .active || transaction.state == .preparing else {
            throw OperatorCommandRefusal("\(tx) is already \(transaction.state): its outcome is decided")
        }
        return transaction
    }

    private static func abortSummary(_ transaction: Coordinator.CoordinatorTransaction, in coordinator: Coordinator) -> String {
        let graph = coordinator.locks.graph
        let waiting = graph.contains(transaction.id) ? graph.predecessors(of: transaction.id).count : 0
        return "aborts \(transaction.id) (\(transaction.state), \(transaction.branches.count) branch(es), "
            + "\(transaction.locksGranted) lock(s) held, \(waiting) transaction(s) waiting on it)"
    }
}

import Foundation
import SandhiEngine

/// How heuristic cases read for people (`sandhi reconcile`, `sandhi recover`) and machines.
enum HeuristicCaseText {
    static func operations(_ operations: [SandhiEngine.Operation]?) -> String {
        guard let operations else { return "(operations unknown: recovered after a restart)" }
        return operations.isEmpty ? "(nothing)" : operations.map { $0.summary() }.joined(separator: "; ")
    }

    static func plan(_ branches: [Branch]) -> String {
        branches.map { "\($0.participant): " + operations($0.operations) }.joined(separator: " · ")
    }

    static func imbalance(_ heuristicCase: HeuristicCase) -> String {
        guard let imbalance = heuristicCase.imbalance else { return "unknown" }
        if imbalance == .zero { return "none" }
        return imbalance.value < 0 ? "\(Paise(-imbalance.value)) destroyed" : "\(imbalance) created"
    }

    static func outcomes(_ heuristicCase: HeuristicCase) -> String {
        heuristicCase.participants.map { "\($0.participant) \($0.outcome.label)" }.joined(separator: " · ")
    }

    static func listLine(_ heuristicCase: HeuristicCase) -> String {
        pad(heuristicCase.transaction.description, 12) + pad(heuristicCase.decision.label, 9) + pad(heuristicCase.status.label, 32)
            + pad(wallClock(heuristicCase.detectedAtWallMs), 21) + pad(imbalance(heuristicCase), 22) + outcomes(heuristicCase)
    }

    static let listHeader = pad("TX", 12) + pad("DECISION", 9) + pad("STATUS", 32) + pad("DETECTED (UTC)", 21) + pad("IMBALANCE", 22) + "OUTCOMES"

    static func detail(_ heuristicCase: HeuristicCase, queue: ReconciliationQueue) -> [String] {
        var lines = [
            "\(heuristicCase.transaction)  heuristic: the logged decision is \(heuristicCase.decision.label.uppercased()), the outcome is mixed",
            "detected \(wallClock(heuristicCase.detectedAtWallMs)) UTC · status: \(heuristicCase.status.label) · imbalance: \(imbalance(heuristicCase))",
            "participants:",
        ]
        for participant in heuristicCase.participants {
            lines.append("  " + pad(participant.participant.name, 10) + pad(participant.outcome.label, 20)
                         + operations(participant.operations) + (participant.outcome.diverges(from: heuristicCase.decision) ? "   <- against the decision" : ""))
        }
        if heuristicCase.actions.isEmpty {
            lines.append("actions: none yet")
        } else {
            lines.append("actions (oldest first):")
            for entry in heuristicCase.actions {
                lines.append("  \(wallClock(entry.atWallMs)) UTC  \(entry.action.rawValue) by \(entry.operatorName): \(entry.result.label)"
                             + (entry.linked.map { " [\($0)]" } ?? ""))
                lines.append("      why: \(entry.note)")
                lines.append("      state: \(entry.before.label) -> \(entry.after.label)")
                if !entry.plan.isEmpty { lines.append("      plan: " + plan(entry.plan)) }
            }
        }
        if !heuristicCase.isSettled {
            lines.append("what each action would do (dry run):")
            for action in ReconcileAction.allCases {
                switch queue.plan(action, for: heuristicCase.transaction) {
                case .success(let planned?): lines.append("  " + pad(action.rawValue, 15) + "a new transaction: " + plan(planned))
                case .success(nil): lines.append("  " + pad(action.rawValue, 15) + "records the case as settled by hand; changes no balance")
                case .failure(let refusal): lines.append("  " + pad(action.rawValue, 15) + "not possible: \(refusal)")
                }
            }
        }
        return lines
    }

    static func wallClock(_ ms: Int64) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1_000))
    }

    /// The machine form of a case.
    struct JSON: Encodable {
        struct Participant: Encodable { var name: String; var outcome: String; var diverges: Bool; var operations: [String]? }
        struct Action: Encodable {
            var action: String; var operator_name: String; var note: String; var at_ms: Int64; var linked: String?
            var plan: [String]; var before: String; var after: String; var result: String
        }
        var transaction: String; var decision: String; var status: String; var settled: Bool; var detected_at_ms: Int64
        var imbalance_paise: Int64?; var participants: [Participant]; var actions: [Action]

        init(_ heuristicCase: HeuristicCase) {
            transaction = heuristicCase.transaction.description
            decision = heuristicCase.decision.label
            status = heuristicCase.status.label
            settled = heuristicCase.isSettled
            detected_at_ms = heuristicCase.detectedAtWallMs
            imbalance_paise = heuristicCase.imbalance?.value
            participants = heuristicCase.participants.map {
                Participant(name: $0.participant.name, outcome: $0.outcome.label, diverges: $0.outcome.diverges(from: heuristicCase.decision),
                            operations: $0.operations?.map { $0.summary() })
            }
            actions = heuristicCase.actions.map {
                Action(action: $0.action.rawValue, operator_name: $0.operatorName, note: $0.note, at_ms: $0.atWallMs, linked: $0.linked?.description,
                       plan: $0.plan.map { "\($0.participant): " + HeuristicCaseText.operations($0.operations) },
                       before: $0.before.label, after: $0.after.label, result: $0.result.label)
            }
        }
    }
}

/// One step of a transaction's work at one participant.
public enum Operation: Hashable, Sendable, Codable {
    /// Take `amount` out of `account`; the participant votes NO if the balance would go negative.
    case debit(account: AccountID, amount: Paise)
    /// Put `amount` into `account`.
    case credit(account: AccountID, amount: Paise)
    /// Read `account`'s committed balance (a read-only branch votes READ-ONLY and skips phase two).
    case read(account: AccountID)
    /// Append a row to the participant's report ledger (the regulator's large-transaction report),
    /// atomically with the money it describes.
    case fileReport(Report)

    public var account: AccountID? {
        switch self {
        case .debit(let account, _), .credit(let account, _), .read(let account): return account
        case .fileReport: return nil
        }
    }

    public var isWrite: Bool {
        if case .read = self { return false }
        return true
    }

    /// The operation for people; `money` formats amounts (a terminal without ₹ passes its own).
    public func summary(money: (Paise) -> String = { $0.description }) -> String {
        switch self {
        case .debit(let account, let amount): return "debit \(account) \(money(amount))"
        case .credit(let account, let amount): return "credit \(account) \(money(amount))"
        case .read(let account): return "read \(account)"
        case .fileReport(let report): return "file \(report.kind) report \(money(report.amount)) (\(report.reference))"
        }
    }

    /// Signed effect on the participant's total: debits negative, credits positive.
    public var delta: Paise {
        switch self {
        case .debit(_, let amount): return Paise(-amount.value)
        case .credit(_, let amount): return amount
        case .read, .fileReport: return .zero
        }
    }
}

/// A row of the regulator's report ledger.
public struct Report: Hashable, Sendable, Codable {
    public static let maxTextBytes = 256

    public var kind: String
    public var amount: Paise
    public var reference: String

    public init(kind: String, amount: Paise, reference: String) {
        self.kind = kind
        self.amount = amount
        self.reference = reference
    }
}

/// The work one transaction asks of one participant.
public struct Branch: Hashable, Sendable, Codable {
    public var participant: ParticipantID
    public var operations: [Operation]

    public init(participant: ParticipantID, operations: [Operation]) {
        self.participant = participant
        self.operations = operations
    }

    public var isReadOnly: Bool { !operations.contains { $0.isWrite } }

    /// What a transfer over `branches` moves: the sum of its debits (its credits, for a pure
    /// deposit such as a compensation). For people: headers, rows, the event stream.
    public static func amountMoved(by branches: [Branch]) -> Paise {
        var debits: Int64 = 0, credits: Int64 = 0
        for branch in branches {
            for operation in branch.operations {
                switch operation {
                case .debit(_, let amount): debits &+= amount.value
                case .credit(_, let amount): credits &+= amount.value
                case .read, .fileReport: break
                }
            }
        }
        return Paise(debits == 0 ? credits : debits)
    }
    public var netDelta: Paise { operations.reduce(.zero) { $0 + $1.delta } }
}

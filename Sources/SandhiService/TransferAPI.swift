import SandhiEngine
import SandhiRuntime

/// The client API's bodies: JSON, money in integer paise, names as the data directory spells
/// them. Decoding is permissive about nothing: an unknown operation kind, a missing amount or a
/// name that is not valid is a 400 naming the field.
public enum TransferAPI {
    public struct OperationBody: Codable, Sendable, Equatable {
        /// `debit`, `credit` or `read`.
        public var kind: String
        public var account: String
        /// For a debit or credit: a positive amount in paise.
        public var amountPaise: Int64?

        public init(kind: String, account: String, amountPaise: Int64? = nil) {
            self.kind = kind
            self.account = account
            self.amountPaise = amountPaise
        }
    }

    public struct BranchBody: Codable, Sendable, Equatable {
        public var participant: String
        public var operations: [OperationBody]

        public init(participant: String, operations: [OperationBody]) {
            self.participant = participant
            self.operations = operations
        }
    }

    public struct TransferRequest: Codable, Sendable, Equatable {
        public var branches: [BranchBody]

        public init(branches: [BranchBody]) { self.branches = branches }
    }

    public struct TransferResponse: Codable, Sendable, Equatable {
        public var transaction: String
        /// `committed` or `aborted`.
        public var outcome: String
        public var latencyUs: UInt64
    }

    /// A request the API refuses: which field, and why.
    public struct Refusal: Error, Codable, Sendable, Equatable {
        public var field: String
        public var error: String
    }

    /// The branches a request names, or the first field that is wrong.
    public static func branches(_ request: TransferRequest, participants: Set<ParticipantID>) throws(Refusal) -> [Branch] {
        guard !request.branches.isEmpty else { throw Refusal(field: "branches", error: "at least one branch is needed") }
        var branches: [Branch] = []
        for (index, body) in request.branches.enumerated() {
            let where_ = "branches[\(index)]"
            guard let participant = ParticipantID(body.participant), participants.contains(participant) else {
                throw Refusal(field: "\(where_).participant", error: "no participant named '\(body.participant)'")
            }
            guard !body.operations.isEmpty else { throw Refusal(field: "\(where_).operations", error: "at least one operation is needed") }
            var operations: [Operation] = []
            for (number, operation) in body.operations.enumerated() {
                let field = "\(where_).operations[\(number)]"
                guard let account = AccountID(operation.account) else {
                    throw Refusal(field: "\(field).account", error: "'\(operation.account)' is not an account name")
                }
                switch operation.kind {
                case "read":
                    guard operation.amountPaise == nil else { throw Refusal(field: "\(field).amountPaise", error: "a read moves no money") }
                    operations.append(.read(account: account))
                case "debit", "credit":
                    guard let paise = operation.amountPaise, paise > 0 else {
                        throw Refusal(field: "\(field).amountPaise", error: "a \(operation.kind) needs a positive amount in paise")
                    }
                    operations.append(operation.kind == "debit" ? .debit(account: account, amount: Paise(paise))
                                                                : .credit(account: account, amount: Paise(paise)))
                default:
                    throw Refusal(field: "\(field).kind", error: "'\(operation.kind)' is not debit, credit or read")
                }
            }
            branches.append(Branch(participant: participant, operations: operations))
        }
        return branches
    }

    public static func response(_ result: TransferResult) -> TransferResponse {
        TransferResponse(transaction: "\(result.transaction)", outcome: result.outcome.isCommitted ? "committed" : "aborted",
                         latencyUs: result.latencyUs)
    }
}

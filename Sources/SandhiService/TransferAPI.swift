import Foundation
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
        /// How long to wait for the outcome before answering 202 with the transaction's id
        /// (the transfer goes on); 30 s when absent, at most 300 s.
        public var timeoutMs: Int64?
        /// When to answer: `finished` (the default: every participant acknowledged phase two)
        /// or `decided` (at the commit point: the COMMIT record durable, phase two under way,
        /// completed by recovery after any crash).
        public var answer: String?

        public init(branches: [BranchBody], timeoutMs: Int64? = nil, answer: String? = nil) {
            self.branches = branches
            self.timeoutMs = timeoutMs
            self.answer = answer
        }
    }

    public struct TransferResponse: Codable, Sendable, Equatable {
        public var transaction: String
        /// `committed` or `aborted`; `pending` (with 202) when the deadline passed first.
        public var outcome: String
        public var latencyUs: UInt64
        /// Aborted: why, for people.
        public var reason: String?
        /// Aborted: the cause, for programs (`AbortCause`: refused, deadlock, lockTimeout...).
        public var cause: String?
        /// A NO vote's kind (`Refusal.code`: insufficient-funds, unknown-account...).
        public var refusal: String?
        /// Worth running again as it is (a deadlock, a timeout), not refused by the data.
        public var transient: Bool?
        /// What each read saw, in request order.
        public var reads: [ReadView]?

        public init(transaction: String, outcome: String, latencyUs: UInt64, reason: String? = nil, cause: String? = nil,
                    refusal: String? = nil, transient: Bool? = nil, reads: [ReadView]? = nil) {
            self.transaction = transaction
            self.outcome = outcome
            self.latencyUs = latencyUs
            self.reason = reason
            self.cause = cause
            self.refusal = refusal
            self.transient = transient
            self.reads = reads
        }
    }

    /// A read's committed value as the transaction saw it under its shared lock.
    public struct ReadView: Codable, Sendable, Equatable {
        public var participant: String
        public var account: String
        public var balancePaise: Int64
        public var version: UInt64
        /// The transaction that wrote it; nil for an opening balance.
        public var writer: String?
    }

    /// One account's committed balance (a prepared transfer's effect shows once it commits).
    public struct AccountView: Codable, Sendable, Equatable {
        public var participant: String
        public var account: String
        public var balancePaise: Int64
        /// Bumped by every committed write.
        public var version: UInt64
        /// The transaction that wrote it last; nil for an opening balance.
        public var lastWriter: String?

        init(_ observation: Observation, participant: ParticipantID) {
            self.participant = participant.name
            account = observation.account.name
            balancePaise = observation.balance.value
            version = observation.version
            lastWriter = observation.writer.map { "\($0)" }
        }
    }

    public struct AccountList: Codable, Sendable, Equatable {
        public var participant: String
        public var accounts: [AccountView]
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
            var operations: [SandhiEngine.Operation] = []
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

    /// How long the request waits for its outcome, in milliseconds.
    static func waitMs(_ request: TransferRequest, default defaultMs: UInt64, max maxMs: UInt64) throws(Refusal) -> UInt64 {
        guard let timeoutMs = request.timeoutMs else { return defaultMs }
        guard timeoutMs >= 1, UInt64(timeoutMs) <= maxMs else {
            throw Refusal(field: "timeoutMs", error: "must be 1 to \(maxMs) milliseconds")
        }
        return UInt64(timeoutMs)
    }

    static func answerWhen(_ request: TransferRequest) throws(Refusal) -> CoordinatorDriver.AnswerWhen {
        switch request.answer {
        case nil, "finished": return .finished
        case "decided": return .decided
        case let other?: throw Refusal(field: "answer", error: "'\(other)' is not finished or decided")
        }
    }

    /// The request in one spelling (sorted keys, no spaces): what a retry under the same
    /// idempotency key must match.
    static func canonical(_ request: TransferRequest) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var request = request
        request.timeoutMs = nil  // how long a client waits, and when it is answered, are not
        request.answer = nil     // part of what it asks for
        return String(decoding: (try? encoder.encode(request)) ?? Data(), as: UTF8.self)
    }

    /// The JSON path of the field a decoding error is about ("body" when it is the whole).
    static func field(of error: Error) -> String {
        guard let error = error as? DecodingError else { return "body" }
        let path: [CodingKey]
        switch error {
        case .keyNotFound(let key, let context): path = context.codingPath + [key]
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context): path = context.codingPath
        @unknown default: return "body"
        }
        guard !path.isEmpty else { return "body" }
        var field = ""
        for key in path {
            if let index = key.intValue { field += "[\(index)]" } else { field += (field.isEmpty ? "" : ".") + key.stringValue }
        }
        return field
    }

    /// One line on what is wrong with the body.
    static func describe(_ error: Error) -> String {
        guard let error = error as? DecodingError else { return "not a transfer request: \(error)" }
        switch error {
        case .keyNotFound(let key, _): return "'\(key.stringValue)' is missing"
        case .typeMismatch(let type, _): return "expected \(type == String.self ? "a string" : type == [BranchBody].self || type == [OperationBody].self ? "an array" : "a value of type \(type)")"
        case .valueNotFound(let type, _): return "expected a value of type \(type), found null"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "not JSON: \(context.debugDescription)" : context.debugDescription
        @unknown default: return "not a transfer request"
        }
    }

    public static func response(_ result: TransferResult, branches: [Branch]) -> TransferResponse {
        var reason: String?
        if case .aborted(let why, _, _) = result.outcome { reason = why }
        return TransferResponse(transaction: "\(result.transaction)", outcome: result.outcome.isCommitted ? "committed" : "aborted",
                                latencyUs: result.latencyUs, reason: reason, cause: result.outcome.abortCause?.rawValue,
                                refusal: result.outcome.refusal?.code, transient: result.outcome.abortCause?.isTransient,
                                reads: reads(of: branches, observed: result.observed))
    }

    /// What each read operation saw, in the order the reads were given (nil: no reads).
    public static func reads(of branches: [Branch], observed: [ParticipantID: [Observation]]) -> [ReadView]? {
        var result: [ReadView] = []
        for branch in branches {
            guard let seen = observed[branch.participant] else { continue }
            for (operation, observation) in zip(branch.operations.filter { $0.account != nil }, seen) {
                if case .read(let account) = operation {
                    result.append(ReadView(participant: branch.participant.name, account: account.name, balancePaise: observation.balance.value,
                                           version: observation.version, writer: observation.writer.map { "\($0)" }))
                }
            }
        }
        return result.isEmpty ? nil : result
    }
}

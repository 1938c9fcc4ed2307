import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SandhiEngine
import SandhiParticipants
import SandhiRuntime

/// The routes applications use: submit a transaction and wait (up to a deadline) for its
/// outcome, look a transaction up, read accounts. Described in `openapi.json`.
///
///   POST /v1/transfers                               run one transaction of branches
///   GET  /v1/transactions/{id}                       where a transaction is, or how it ended
///   GET  /v1/participants                            the participants
///   GET  /v1/participants/{participant}/accounts     a participant's committed balances
///   GET  /v1/participants/{participant}/accounts/{account}
///
/// Bounded: a body over `SandhiServer.maxBodyBytes` is a 413; more than `maxInFlight`
/// transfers waiting at once is a 429 with Retry-After (the engine's own queues stay short).
final class ClientAPI: Sendable {
    let node: SandhiNode
    let idempotency: IdempotencyStore?
    let maxInFlight: Int
    let logger: Logger
    private let inFlight = Lock(0)
    private let running = RunningTransfers()
    private let wheel = DeadlineWheel()
    /// Where blocking storage calls run (the idempotency store's fsyncs), off the event loops.
    private let storage = DispatchQueue(label: "sandhi-idempotency")

    /// How long a transfer request waits for its outcome when it names no deadline.
    static let defaultWaitMs: UInt64 = 30_000
    static let maxWaitMs: UInt64 = 300_000

    init(node: SandhiNode, idempotency: IdempotencyStore?, maxInFlight: Int, logger: Logger) {
        self.node = node
        self.idempotency = idempotency
        self.maxInFlight = maxInFlight
        self.logger = logger
    }

    /// `reads` lets viewers through; `writes` lets clients through.
    func register(reads: RouterGroup<ServiceRequestContext>, writes: RouterGroup<ServiceRequestContext>) {
        writes.post("v1/transfers") { request, _ in await self.submit(request) }
        reads.get("v1/transactions/:id") { _, context in
            await self.lookup(context.parameters.get("id") ?? "")
        }
        reads.get("v1/participants") { _, _ in
            ServiceResponse.json(["participants": self.node.driver.participants.map(\.name)])
        }
        reads.get("v1/participants/:participant/accounts") { _, context in
            await self.accounts(participant: context.parameters.get("participant") ?? "", account: nil)
        }
        reads.get("v1/participants/:participant/accounts/:account") { _, context in
            await self.accounts(participant: context.parameters.get("participant") ?? "",
                                account: context.parameters.get("account") ?? "")
        }
    }

    // MARK: - Submitting

    func submit(_ request: Request) async -> Response {
        let admitted = inFlight.withLock { count -> Bool in
            guard count < maxInFlight else { return false }
            count += 1
            return true
        }
        guard admitted else {
            return ServiceResponse.refusal(.tooManyRequests, field: "", "more than \(maxInFlight) transfers are waiting; retry shortly",
                                           headers: [.retryAfter: "1"])
        }
        defer { inFlight.withLock { $0 -= 1 } }

        let decoded: TransferAPI.TransferRequest
        switch await RequestBody.decode(request, as: TransferAPI.TransferRequest.self) {
        case .refused(let response): return response
        case .value(let value): decoded = value
        }
        let branches: [Branch]
        let waitMs: UInt64
        let answerWhen: CoordinatorDriver.AnswerWhen
        do {
            branches = try TransferAPI.branches(decoded, participants: Set(node.driver.participants))
            waitMs = try TransferAPI.waitMs(decoded, default: Self.defaultWaitMs, max: Self.maxWaitMs)
            answerWhen = try TransferAPI.answerWhen(decoded)
        } catch let refusal {
            return ServiceResponse.json(refusal, status: .badRequest)
        }
        if let imbalance = Coordinator.imbalance(branches) {
            return ServiceResponse.refusal(.badRequest, field: "branches", imbalance)
        }

        let key = request.headers[.idempotencyKey]
        if let key {
            guard !key.isEmpty, key.utf8.count <= IdempotencyStore.maxKeyBytes, key.allSatisfy({ $0.isASCII && !$0.isWhitespace || $0 == " " }) else {
                return ServiceResponse.refusal(.badRequest, field: "Idempotency-Key",
                                               "must be 1 to \(IdempotencyStore.maxKeyBytes) printable ASCII characters")
            }
            guard let idempotency else {
                return ServiceResponse.refusal(.badRequest, field: "Idempotency-Key", "this service keeps no idempotency keys")
            }
            return await submitIdempotent(key: key, request: TransferAPI.canonical(decoded), branches: branches,
                                          waitMs: waitMs, answerWhen: answerWhen, store: idempotency)
        }
        let driver = node.driver
        let (id, pending) = running.start {
            let id = driver.reserveTransactionID()
            let pending = PendingTransfer(wheel: wheel)
            Task {
                let result: Result<TransferResult, Error>
                do { result = .success(try await driver.transfer(branches, answerWhen: answerWhen, reserved: id)) } catch { result = .failure(error) }
                running.finished(id, key: nil)
                pending.complete(result)
            }
            return (id, pending)
        }
        return await respond(to: pending, transaction: id, branches: branches, waitMs: waitMs, replayed: false)
    }

    /// The key's transaction: begun here if the key is new, else the one it is bound to (in
    /// flight in this process, or decided, or left by an earlier run of the service).
    private func submitIdempotent(key: String, request: String, branches: [Branch], waitMs: UInt64,
                                  answerWhen: CoordinatorDriver.AnswerWhen, store: IdempotencyStore) async -> Response {
        let driver = node.driver
        let started = running.startOrJoin(key: key, request: request) { () -> (TransactionID, PendingTransfer) in
            let id = driver.reserveTransactionID()
            let pending = PendingTransfer(wheel: wheel)
            let run = { @Sendable () async throws -> TransferResult in
                // Durable before anything begins under `id`: a crash from here on leaves the key
                // bound, and a retry asks about `id` instead of starting a second transfer.
                let claim = try await self.onStorage { try store.claim(key: key, request: request, transaction: id) }
                switch claim {
                case .existing(let entry):
                    guard entry.request == request else { throw RunningTransfers.Mismatch() }
                    throw RunningTransfers.Bound(entry: entry)
                case .claimed:
                    let result = try await driver.transfer(branches, answerWhen: answerWhen, reserved: id)
                    let outcome: IdempotencyStore.Outcome = result.outcome.isCommitted ? .committed : .aborted
                    try? await self.onStorage { try store.record(key: key, outcome: outcome, latencyUs: result.latencyUs) }
                    return result
                }
            }
            Task {
                let result: Result<TransferResult, Error>
                do { result = .success(try await run()) } catch { result = .failure(error) }
                // The key is forgotten here only once its outcome is in the store: a retry from
                // then on finds it there.
                self.running.finished(id, key: key)
                pending.complete(result)
            }
            return (id, pending)
        }
        switch started {
        case .mismatch:
            return ServiceResponse.refusal(.unprocessableContent, field: "Idempotency-Key",
                                           "already used for a different request")
        case .running(let id, let pending, let joined):
            return await respond(to: pending, transaction: id, branches: branches, waitMs: waitMs, replayed: joined)
        }
    }

    /// Waits up to `waitMs` for `pending`: its outcome (200), or 202 with the transaction's id
    /// while it is still being decided (the client looks it up, or retries with its key).
    private func respond(to pending: PendingTransfer, transaction: TransactionID, branches: [Branch], waitMs: UInt64,
                         replayed: Bool) async -> Response {
        var headers: HTTPFields = [:]
        if replayed { headers[.idempotentReplayed] = "true" }
        do {
            guard let result = try await pending.wait(upToMs: waitMs) else {
                return ServiceResponse.json(TransferAPI.TransferResponse(transaction: "\(transaction)", outcome: "pending", latencyUs: 0),
                                            status: .accepted, headers: headers)
            }
            return ServiceResponse.json(TransferAPI.response(result, branches: branches), headers: headers)
        } catch let bound as RunningTransfers.Bound {
            return await replay(bound.entry)
        } catch is RunningTransfers.Mismatch {
            return ServiceResponse.refusal(.unprocessableContent, field: "Idempotency-Key", "already used for a different request")
        } catch let error as CoordinatorError {
            switch error {
            case .unbalanced(let why):
                return ServiceResponse.refusal(.badRequest, field: "branches", why)
            case .unknownParticipant(let participant, _):
                return ServiceResponse.refusal(.badRequest, field: "branches", "no participant named '\(participant)'")
            case .halted, .refused:
                return ServiceResponse.refusal(.serviceUnavailable, field: "", "\(error)", headers: [.retryAfter: "5"])
            }
        } catch {
            logger.error("transfer failed", metadata: ["error": "\(error)"])
            return ServiceResponse.refusal(.serviceUnavailable, field: "", "\(error)", headers: [.retryAfter: "5"])
        }
    }

    /// A key bound by an earlier request that is not running here: its recorded outcome, or
    /// else what the transaction's fate is now (and that is recorded for the next retry).
    private func replay(_ entry: IdempotencyStore.Entry) async -> Response {
        var headers: HTTPFields = [:]
        headers[.idempotentReplayed] = "true"
        if let outcome = entry.outcome {
            return ServiceResponse.json(TransferAPI.TransferResponse(transaction: "\(entry.transaction)", outcome: outcome.rawValue,
                                                                     latencyUs: entry.latencyUs), headers: headers)
        }
        let fate = await TransactionFate.of(entry.transaction, node: node, running: running)
        switch fate.state {
        case "committed", "aborted":
            let outcome: IdempotencyStore.Outcome = fate.state == "committed" ? .committed : .aborted
            if let store = idempotency {
                try? await onStorage { try store.record(key: entry.key, outcome: outcome, latencyUs: 0) }
            }
            return ServiceResponse.json(TransferAPI.TransferResponse(transaction: "\(entry.transaction)", outcome: outcome.rawValue,
                                                                     latencyUs: 0), headers: headers)
        default:
            headers[.retryAfter] = "1"
            return ServiceResponse.json(TransferAPI.TransferResponse(transaction: "\(entry.transaction)", outcome: "pending", latencyUs: 0),
                                        status: .accepted, headers: headers)
        }
    }

    // MARK: - Reading

    func lookup(_ text: String) async -> Response {
        guard let tx = TransactionID(text) else {
            return ServiceResponse.refusal(.badRequest, field: "id", "'\(text)' is not a transaction id (T-EPOCH.SEQUENCE)")
        }
        guard node.driver.hasIssued(tx) else {
            return ServiceResponse.refusal(.notFound, field: "id", "no transaction \(tx) was ever begun here")
        }
        return ServiceResponse.json(await TransactionFate.of(tx, node: node, running: running))
    }

    func accounts(participant name: String, account: String?) async -> Response {
        guard let participant = ParticipantID(name), node.driver.participants.contains(participant) else {
            return ServiceResponse.refusal(.notFound, field: "participant", "no participant named '\(name)'")
        }
        var wanted: AccountID?
        if let account {
            guard let id = AccountID(account) else {
                return ServiceResponse.refusal(.badRequest, field: "account", "'\(account)' is not an account name")
            }
            wanted = id
        }
        let probe = await node.driver.probeParticipants(hold: false) { resource -> [Observation] in
            guard let bank = resource as? Bank else { return [] }
            return try bank.accountStates()
        }
        guard let answer = probe.answers[participant], let states = answer.value else {
            let why = probe.answers[participant]?.label ?? "did not answer"
            return ServiceResponse.refusal(.serviceUnavailable, field: "participant", "\(participant) \(why)", headers: [.retryAfter: "1"])
        }
        let views = states.filter { wanted == nil || $0.account == wanted }.map { TransferAPI.AccountView($0, participant: participant) }
        if let wanted {
            guard let view = views.first else {
                return ServiceResponse.refusal(.notFound, field: "account", "\(participant) has no account '\(wanted)'")
            }
            return ServiceResponse.json(view)
        }
        return ServiceResponse.json(TransferAPI.AccountList(participant: participant.name, accounts: views))
    }

    private func onStorage<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            storage.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

extension HTTPField.Name {
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
}

import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SandhiEngine
import SandhiRuntime

/// The routes operators (and their tools) use on the same server as the client API:
///
///   GET  /v1/snapshot        everything in flight: transactions, locks, the wait-for graph,
///                            deadlocks, participants, the reconciliation queue, faults
///   GET  /v1/events          the live event stream (server-sent events), resumable from an id
///   POST /v1/commands        abort, choose a deadlock victim, reconcile (operator); faults
///                            (chaos, with `serve --allow-faults`); `dryRun` first
final class OperatorAPI: Sendable {
    let node: SandhiNode
    let hub: EventHub
    let allowFaults: Bool
    let logger: Logger

    /// Events sent to a stream reader per write: bounded, so that one reader far behind does
    /// not build one huge buffer.
    static let streamBatch = 256
    /// A comment line this often on an idle stream: proxies keep it open, and a reader that
    /// went away is noticed.
    static let keepAliveMs: UInt64 = 15_000

    init(node: SandhiNode, hub: EventHub, allowFaults: Bool, logger: Logger) {
        self.node = node
        self.hub = hub
        self.allowFaults = allowFaults
        self.logger = logger
    }

    func register(reads: RouterGroup<ServiceRequestContext>, operators: RouterGroup<ServiceRequestContext>) {
        reads.get("v1/snapshot") { request, _ in
            let limitText = request.uri.queryParameters.get("limit")
            guard let limit = limitText.map({ Int($0) }) ?? OperatorSnapshot.defaultLimit, (1...100_000).contains(limit) else {
                return ServiceResponse.refusal(.badRequest, field: "limit", "must be 1 to 100000")
            }
            return ServiceResponse.json(self.node.operatorSnapshot(limit: limit))
        }
        reads.get("v1/events") { request, _ in self.stream(request) }
        reads.get("v1/check") { _, _ in await self.check() }
        operators.post("v1/commands") { request, context in await self.command(request, caller: context.caller) }
    }

    // MARK: - The event stream

    /// One event as the stream and command answers carry it: its number, the engine's time,
    /// the transaction it is about, a line for people, and the event itself (`kind`, in the
    /// engine's own Codable form, which an attached console decodes back into `EngineEvent`).
    struct WireEvent: Codable, Sendable {
        var id: UInt64
        var atUs: UInt64
        var transaction: TransactionID?
        var summary: String
        var kind: EngineEvent.Kind

        init(_ numbered: EventHub.Numbered) {
            id = numbered.id
            atUs = numbered.event.atUs
            transaction = numbered.event.transaction
            summary = numbered.event.description
            kind = numbered.event.kind
        }
    }

    private func stream(_ request: Request) -> Response {
        // Where to start: after `Last-Event-ID` (a reconnecting EventSource), or after `?after=`,
        // or from now.
        let resume = request.headers[.lastEventID] ?? request.uri.queryParameters.get("after").map { String($0) }
        let cursorStart: UInt64
        if let resume {
            guard let id = UInt64(resume) else {
                return ServiceResponse.refusal(.badRequest, field: request.headers[.lastEventID] != nil ? "Last-Event-ID" : "after",
                                               "'\(resume)' is not an event id")
            }
            cursorStart = id
        } else {
            cursorStart = hub.lastID
        }
        let hub = self.hub
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-store"]
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            let (wakeups, token) = hub.subscribe()
            // Wakes the reader when nothing has happened for a while, to send a keep-alive.
            let keepAlive = Task {
                while (try? await Task.sleep(nanoseconds: Self.keepAliveMs * 1_000_000)) != nil { hub.poke(token) }
            }
            defer {
                keepAlive.cancel()
                hub.unsubscribe(token)
            }
            var cursor = cursorStart
            var iterator = wakeups.makeAsyncIterator()
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
            var lastWriteUs = MonotonicClock.nowUs()
            while true {
                let read = hub.read(after: cursor, limit: Self.streamBatch)
                var text = ""
                if read.missed > 0 {
                    text += "event: missed\ndata: {\"missed\":\(read.missed),\"resumeAt\":\(read.events.first?.id ?? cursor + read.missed + 1)}\n\n"
                }
                for numbered in read.events {
                    let data = String(decoding: try encoder.encode(WireEvent(numbered)), as: UTF8.self)
                    text += "id: \(numbered.id)\nevent: engine\ndata: \(data)\n\n"
                }
                if let last = read.events.last { cursor = last.id } else if read.missed > 0 { cursor += read.missed }
                if !text.isEmpty {
                    try await writer.write(ByteBuffer(string: text))
                    lastWriteUs = MonotonicClock.nowUs()
                    continue
                }
                if hub.isClosed { break }
                // Nothing new: wait for events, or for the keep-alive's poke (a wake-up may also
                // be left over from events already sent: wake-ups are coalesced, not counted).
                guard await iterator.next() != nil else { break } // the hub closed: the service is stopping
                let nowUs = MonotonicClock.nowUs()
                if hub.lastID == cursor && nowUs - lastWriteUs >= Self.keepAliveMs * 1_000 {
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    lastWriteUs = nowUs
                }
            }
            try await writer.write(ByteBuffer(string: "event: end\ndata: {}\n\n"))
            try await writer.finish(nil)
        })
    }

    // MARK: - The invariants, live

    struct CheckResponse: Codable, Sendable {
        struct Bank: Codable, Sendable {
            var name: String
            var accounts: Int
            var totalPaise: Int64
            var mintedPaise: Int64
            var prepared: Int
            var locks: Int
            var committed: Int
            var reports: Int
        }

        var ok: Bool
        var totalPaise: Int64
        var mintedPaise: Int64
        /// Money in transactions decided but not yet applied everywhere, at the instant checked.
        var decidedInFlightPaise: Int64
        var inFlight: Int
        var banks: [Bank]
        var violations: [String]
        var notes: [String]
        /// Participants that could not be asked, and why (their checks were skipped, and said so).
        var unavailable: [String: String]
        /// Every bank was held at one instant for the cut.
        var consistent: Bool
        var heuristicCases: Int
        var unsettledHeuristicCases: Int
    }

    /// `sandhi check` on the running node: conservation and atomicity over the banks, asked
    /// of each bank's worker (`SandhiNode.liveAudit`).
    private func check() async -> Response {
        do {
            let audit = try await node.liveAudit()
            return ServiceResponse.json(CheckResponse(
                ok: audit.passed, totalPaise: audit.total.value, mintedPaise: audit.minted.value,
                decidedInFlightPaise: audit.decidedInFlight.value, inFlight: audit.inFlight,
                banks: audit.banks.map {
                    CheckResponse.Bank(name: $0.participant.name, accounts: $0.accounts, totalPaise: $0.total.value, mintedPaise: $0.minted.value,
                                       prepared: $0.prepared.count, locks: $0.lockedAccounts.count, committed: $0.committedBranches,
                                       reports: $0.reports)
                },
                violations: audit.violations, notes: audit.notes,
                unavailable: Dictionary(uniqueKeysWithValues: audit.unavailable.map { ($0.key.name, $0.value) }),
                consistent: audit.consistent, heuristicCases: audit.heuristicCases.count,
                unsettledHeuristicCases: audit.heuristicCases.filter { !$0.isSettled }.count))
        } catch {
            return ServiceResponse.refusal(.serviceUnavailable, field: "", "\(error)", headers: [.retryAfter: "5"])
        }
    }

    // MARK: - Commands

    struct CommandRequest: Codable {
        /// abort, chooseVictim, fault, reconcile
        var kind: String
        var transaction: String?
        var deadlock: UInt64?
        /// For a fault: its command form (`crash icici`, `heal icici`, `delay axis 200ms`, `clear`).
        var fault: String?
        /// For a reconciliation: retry-commit, compensate or mark-resolved.
        var action: String?
        /// Why: required to perform (not for a dry run); kept with the action.
        var reason: String?
        var dryRun: Bool?
    }

    struct CommandResponse: Codable {
        var command: String
        var dryRun: Bool
        var performed: Bool
        var summary: String
        var plan: [SandhiEngine.Branch]?
        /// The events the command caused, as the stream numbers them.
        var events: [WireEvent]
    }

    private func command(_ request: Request, caller: Caller?) async -> Response {
        guard let caller else { return ServiceResponse.refusal(.unauthorized, field: "Authorization", "no caller") }
        let decoded: CommandRequest
        switch await RequestBody.decode(request, as: CommandRequest.self) {
        case .refused(let response): return response
        case .value(let value): decoded = value
        }
        let command: OperatorCommand
        switch parse(decoded) {
        case .failure(let refusal): return ServiceResponse.json(refusal, status: .badRequest)
        case .success(let parsed): command = parsed
        }
        if command.isFault {
            guard allowFaults else {
                return ServiceResponse.refusal(.forbidden, field: "kind", "this service takes no faults (start it with `sandhi serve --allow-faults`)")
            }
            guard caller.role >= .chaos else {
                return ServiceResponse.refusal(.forbidden, field: "Authorization", "\(caller.name) is a \(caller.role.rawValue); faults need the chaos role")
            }
        }
        let dryRun = decoded.dryRun ?? false
        if dryRun {
            do {
                let preview = try node.preview(command)
                return ServiceResponse.json(CommandResponse(command: preview.command, dryRun: true, performed: false,
                                                            summary: preview.summary, plan: preview.plan, events: []))
            } catch {
                return ServiceResponse.refusal(.conflict, field: "kind", error.description)
            }
        }
        guard let reason = decoded.reason, !reason.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            return ServiceResponse.refusal(.badRequest, field: "reason", "say why: every action an operator performs is recorded with its reason")
        }
        let mark = hub.lastID
        do {
            let result = try await node.perform(command, actor: caller.name, via: caller.via, reason: reason)
            logger.notice("operator command", metadata: ["actor": "\(caller.name)", "command": "\(command)", "reason": "\(reason)"])
            let caused = hub.read(after: mark, limit: 1_000).events.filter { Self.concerns($0.event, command) }
            return ServiceResponse.json(CommandResponse(command: result.command, dryRun: false, performed: true, summary: result.summary,
                                                        plan: result.plan, events: caused.map(WireEvent.init)))
        } catch {
            return ServiceResponse.refusal(.conflict, field: "kind", error.description)
        }
    }

    private func parse(_ request: CommandRequest) -> Result<OperatorCommand, TransferAPI.Refusal> {
        func transaction() -> Result<TransactionID, TransferAPI.Refusal> {
            guard let text = request.transaction else { return .failure(.init(field: "transaction", error: "'transaction' is missing")) }
            guard let tx = TransactionID(text) else { return .failure(.init(field: "transaction", error: "'\(text)' is not a transaction id")) }
            return .success(tx)
        }
        switch request.kind {
        case "abort":
            return transaction().map { .abort($0) }
        case "chooseVictim":
            guard let deadlock = request.deadlock else { return .failure(.init(field: "deadlock", error: "'deadlock' is missing")) }
            return transaction().map { .chooseVictim(deadlock: deadlock, victim: $0) }
        case "fault":
            guard let text = request.fault else { return .failure(.init(field: "fault", error: "'fault' is missing")) }
            do {
                return .success(.fault(try LiveFault.parse(text, participants: node.configuration.participants.map(\.id))))
            } catch {
                return .failure(.init(field: "fault", error: error.description))
            }
        case "reconcile":
            guard let text = request.action else { return .failure(.init(field: "action", error: "'action' is missing")) }
            guard let action = ReconcileAction(rawValue: text) else {
                return .failure(.init(field: "action", error: "'\(text)' is not " + ReconcileAction.allCases.map(\.rawValue).joined(separator: ", ")))
            }
            return transaction().map { .reconcile($0, action) }
        default:
            return .failure(.init(field: "kind", error: "'\(request.kind)' is not abort, chooseVictim, fault or reconcile"))
        }
    }

    /// Whether `event` is one the command caused: about its transaction, or, for a fault, the
    /// fault's own event.
    static func concerns(_ event: EngineEvent, _ command: OperatorCommand) -> Bool {
        if let tx = command.transaction { return event.transaction == tx }
        switch event.kind {
        case .faultInjected, .faultCleared: return true
        default: return false
        }
    }
}

extension HTTPField.Name {
    static let lastEventID = Self("Last-Event-ID")!
}

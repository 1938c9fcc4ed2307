import Foundation
import Logging
import SandhiEngine
import SandhiRuntime

/// `sandhi bench --via api`: the bench's workload sent through the service's HTTP API on a unix
/// socket, one kept-alive connection per client (`EventLoopConnections`), against the same node the in-process run
/// measured just before: the cost of the API, measured in one run.
public enum APIBench {
    public static func run(node: SandhiNode, hub: EventHub, socketPath: String, accounts: TransferBench.AccountMap,
                           options: TransferBench.Options, logger: Logger) async throws -> TransferBench.Report {
        var serve = SandhiServer.Options(socketPath: socketPath)
        serve.maxInFlight = max(serve.maxInFlight, options.clients * 2)
        let (stop, stopNow) = AsyncStream<Void>.makeStream()
        let server = Task {
            try await SandhiServer.run(node: node, hub: hub, options: serve, logger: logger, until: {
                for await _ in stop {}
            })
        }
        var ready = false
        for _ in 0..<500 where !ready {
            ready = (try? ServiceClient(.unix(path: socketPath)).request("GET", "/v1/health", timeoutMs: 1_000)) != nil
            if !ready { try await Task.sleep(nanoseconds: 10_000_000) }
        }
        guard ready else { throw ServiceClientError.unreachable("\(socketPath): the bench's service did not start") }
        let connections = try await EventLoopConnections(socket: socketPath, count: options.clients)
        var options = options
        options.submit = { branches, answerWhen, _ in
            let startedUs = MonotonicClock.nowUs()
            let (status, bytes) = try await connections.post("/v1/transfers", body: body(branches, answerWhen: answerWhen))
            let reply = ServiceClient.Reply(status: status, headers: [:], body: bytes)
            let answer = try reply.decode(TransferAPI.TransferResponse.self)
            guard let tx = TransactionID(answer.transaction) else { throw ServiceClientError.protocolError("no transaction id in \(reply.text)") }
            let outcome: Outcome = answer.outcome == "committed" ? .committed
                : .aborted(reason: answer.reason ?? answer.outcome, cause: answer.cause.flatMap(AbortCause.init(rawValue:)) ?? .requested)
            return TransferResult(transaction: tx, outcome: outcome, latencyUs: MonotonicClock.nowUs() - startedUs)
        }
        let report = await TransferBench.run(driver: node.driver, accounts: accounts, options: options)
        await connections.close()
        stopNow.finish()
        try? await server.value
        return report
    }

    /// A transfer request, written out directly: the client shares the machine with the
    /// service, so it spends as little as it can.
    static func body(_ branches: [Branch], answerWhen: CoordinatorDriver.AnswerWhen) -> [UInt8] {
        var text = #"{"answer":""# + (answerWhen == .decided ? "decided" : "finished") + #"","branches":["#
        for (index, branch) in branches.enumerated() {
            if index > 0 { text += "," }
            text += #"{"participant":""# + branch.participant.name + #"","operations":["#
            for (number, operation) in branch.operations.enumerated() {
                if number > 0 { text += "," }
                switch operation {
                case .debit(let account, let amount): text += #"{"kind":"debit","account":""# + account.name + #"","amountPaise":"# + String(amount.value) + "}"
                case .credit(let account, let amount): text += #"{"kind":"credit","account":""# + account.name + #"","amountPaise":"# + String(amount.value) + "}"
                case .read(let account): text += #"{"kind":"read","account":""# + account.name + #""}"#
                case .fileReport: break
                }
            }
            text += "]}"
        }
        return Array((text + "]}").utf8)
    }
}

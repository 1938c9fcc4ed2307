import Foundation
import Hummingbird
import Logging
import SandhiEngine
import SandhiRuntime

/// `sandhi serve`: a running node behind an HTTP API on a unix socket in its data directory.
/// The socket's mode is 0600: the file system's permissions are who may connect.
///
/// Routes:
///   GET  /v1/health      the node is up: its epoch and how many transactions are in flight
///   POST /v1/transfers   run one transfer to its end; 400 naming the field for bad input,
///                        503 once the coordinator halted or is draining
public enum SandhiServer {
    /// The largest request body taken, in bytes: a transfer is a few hundred.
    public static let maxBodyBytes = 64 << 10

    public static func router(node: SandhiNode) -> Router<BasicRequestContext> {
        let router = Router()
        let participants = Set(node.driver.participants)
        router.get("v1/health") { _, _ -> Response in
            let driver = node.driver
            struct Health: Encodable { var status: String; var epoch: UInt32; var inFlight: Int }
            let status = driver.haltReason == nil ? "ok" : "halted"
            return try json(Health(status: status, epoch: driver.epoch, inFlight: driver.inFlightCount),
                            status: driver.haltReason == nil ? .ok : .serviceUnavailable)
        }
        router.post("v1/transfers") { request, context -> Response in
            let body = try await request.body.collect(upTo: maxBodyBytes)
            let decoded: TransferAPI.TransferRequest
            do {
                decoded = try JSONDecoder().decode(TransferAPI.TransferRequest.self, from: Data(buffer: body))
            } catch {
                return try json(TransferAPI.Refusal(field: "body", error: "not a transfer: \(error)"), status: .badRequest)
            }
            let branches: [Branch]
            do {
                branches = try TransferAPI.branches(decoded, participants: participants)
            } catch let refusal as TransferAPI.Refusal {
                return try json(refusal, status: .badRequest)
            }
            do {
                let result = try await node.driver.transfer(branches)
                return try json(TransferAPI.response(result), status: .ok)
            } catch let error as CoordinatorError {
                switch error {
                case .unbalanced(let why):
                    return try json(TransferAPI.Refusal(field: "branches", error: why), status: .badRequest)
                case .unknownParticipant(let participant, _):
                    return try json(TransferAPI.Refusal(field: "branches", error: "no participant named '\(participant)'"), status: .badRequest)
                case .halted, .refused:
                    return try json(TransferAPI.Refusal(field: "", error: "\(error)"), status: .serviceUnavailable)
                }
            }
        }
        return router
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Serves `node` on the unix socket at `socketPath` until SIGTERM or SIGINT, then lets the
    /// requests in flight finish, and returns; the caller stops the node (which drains what
    /// the coordinator still has in flight).
    public static func run(node: SandhiNode, socketPath: String, logger: Logger) async throws {
        // A socket left by a process that died is in the way; one that a live service holds is
        // not reachable here (the data directory's lock refused us first).
        if FileManager.default.fileExists(atPath: socketPath) { try FileManager.default.removeItem(atPath: socketPath) }
        // Mode 0600 once bound: the process's umask is its owner's to set (`sandhi serve` sets
        // one that creates the socket 0600 from the first instant); this makes sure either way.
        let app = Application(router: router(node: node),
                              configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: "sandhi"),
                              onServerRunning: { _ in _ = chmod(socketPath, 0o600) },
                              logger: logger)
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        try? FileManager.default.removeItem(atPath: socketPath)
    }
}

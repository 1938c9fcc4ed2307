import Foundation
import Hummingbird
import Logging
import NIOCore
import SandhiEngine
import SandhiParticipants
import SandhiRuntime
import ServiceLifecycle

/// `sandhi serve`: a running node behind an HTTP API, on a unix socket in its data directory
/// (mode 0600: the file system's permissions are who may connect) and, when asked, on a TCP
/// address on loopback with bearer tokens.
///
/// Routes (described in `openapi.json`, served at `/openapi.json`):
///   GET  /v1/health      the node is up: its epoch, how many transactions are in flight;
///                        503 once the coordinator halted or while it drains
///   GET  /metrics        Prometheus's text format (ServiceMetrics.swift)
///   the client API (ClientAPI.swift): transfers, transaction lookup, accounts
public enum SandhiServer {
    /// The largest request body taken, in bytes: a transfer is a few hundred.
    public static let maxBodyBytes = 64 << 10

    public struct Options: Sendable {
        /// The unix socket: `DIR/sandhi.sock` for `sandhi serve`.
        public var socketPath: String
        /// Also listen here (host and port), with the tokens of `tokens`.
        public var tcp: (host: String, port: Int)?
        public var tokens: TokenFile?
        /// Transfers waiting for their outcome at once, beyond which a request gets 429.
        public var maxInFlight = 4_096
        /// On SIGTERM or SIGINT: how long transactions in flight get to finish.
        public var drainTimeoutMs: UInt64 = 10_000
        /// Where idempotency keys are kept; nil: requests with a key are refused.
        public var idempotencyPath: String?
        /// Whether the `chaos` role's commands (faults) are taken at all.
        public var allowFaults = false
        /// Run first on SIGTERM or SIGINT, before the drain (a synthetic workload stopping).
        public var beforeDrain: (@Sendable () async -> Void)?

        public init(socketPath: String) { self.socketPath = socketPath }
    }

    /// The routes, for a listener whose callers `authenticator` names.
    static func router(node: SandhiNode, client: ClientAPI, operators: OperatorAPI, metrics: MetricsEndpoint,
                       listener: Authenticator.Listener) -> Router<ServiceRequestContext> {
        let router = Router(context: ServiceRequestContext.self)
        router.add(middleware: Authenticator(listener: listener))
        router.get("openapi.json") { _, _ in OpenAPIDocument.response() }
        let viewer = router.group().add(middleware: RequireRole(role: .viewer))
        viewer.get("v1/health") { _, _ -> Response in
            let driver = node.driver
            struct Health: Encodable { var status: String; var epoch: UInt32; var inFlight: Int }
            let status = driver.haltReason != nil ? "halted" : driver.isShuttingDown ? "draining" : "ok"
            return ServiceResponse.json(Health(status: status, epoch: driver.epoch, inFlight: driver.inFlightCount),
                                        status: status == "ok" ? .ok : .serviceUnavailable)
        }
        viewer.get("metrics") { _, _ in metrics.response() }
        client.register(reads: viewer, writes: router.group().add(middleware: RequireRole(role: .client)))
        operators.register(reads: viewer, operators: router.group().add(middleware: RequireRole(role: .operator)))
        return router
    }

    /// Serves `node` until SIGTERM or SIGINT. Then: no new transaction is taken (503), those in
    /// flight get `drainTimeoutMs` to finish (what is left is recovery's on the next start),
    /// the requests waiting on them are answered, and the listeners close. The caller stops
    /// the node afterwards (releasing the data directory).
    ///
    /// `hub`: the node's events (`SandhiNode.start(onEvent: hub.append)`), for the stream.
    ///
    /// `until`: also shut down gracefully once it returns (a bench stopping its service).
    public static func run(node: SandhiNode, hub: EventHub, options: Options, logger: Logger,
                           until: (@Sendable () async -> Void)? = nil) async throws {
        let idempotency = try options.idempotencyPath.map { try IdempotencyStore(path: $0, io: node.directory.io) }
        defer { idempotency?.close() }
        let client = ClientAPI(node: node, idempotency: idempotency, maxInFlight: options.maxInFlight, logger: logger)
        let operators = OperatorAPI(node: node, hub: hub, allowFaults: options.allowFaults, logger: logger)
        let metrics = MetricsEndpoint(node: node, hub: hub)
        let following = Task { await metrics.metrics.follow() }
        defer { following.cancel() }
        let user = getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? "uid \(geteuid())"
        let unixRole: Role = options.allowFaults ? .chaos : .operator

        try clearStaleSocket(options.socketPath)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        let socketPath = options.socketPath
        // Mode 0600 once bound: the process's umask is its owner's to set (`sandhi serve` sets
        // one that creates the socket 0600 from the first instant); this makes sure either way.
        services.append(.init(service: Application(
            router: router(node: node, client: client, operators: operators, metrics: metrics, listener: .unix(user: user, role: unixRole)),
            configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: "sandhi"),
            onServerRunning: { _ in _ = chmod(socketPath, 0o600) },
            logger: logger)))
        if let tcp = options.tcp {
            guard let tokens = options.tokens else { throw ServeError.tokensNeeded }
            services.append(.init(service: Application(
                router: router(node: node, client: client, operators: operators, metrics: metrics, listener: .tcp(tokens)),
                configuration: .init(address: .hostname(tcp.host, port: tcp.port), serverName: "sandhi"),
                logger: logger)))
        }
        // Last, so that it is the first told to shut down (the group tells services in reverse
        // order and waits for each): the coordinator drains while the listeners still answer
        // the requests that wait on it, and only then do the listeners stop.
        services.append(.init(service: Drainer(node: node, hub: hub, drainTimeoutMs: options.drainTimeoutMs, beforeDrain: options.beforeDrain)))
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        let stopping = until.map { until in
            Task {
                await until()
                await group.triggerGracefulShutdown()
            }
        }
        defer { stopping?.cancel() }
        do {
            try await group.run()
        } catch {
            try? FileManager.default.removeItem(atPath: socketPath)
            throw error
        }
        try? FileManager.default.removeItem(atPath: socketPath)
    }

    /// A socket left by a service of ours that died (mode 0600) is in the way and removed; one
    /// that a live service holds is not reachable here (call this holding the data directory's
    /// lock, which refuses a second service). Anything else at that path is not ours to delete: a file that is not a socket, or
    /// a socket of another mode (made by something else, or opened up to other users).
    public static func clearStaleSocket(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw ServeError.notASocket(path) }
        let mode = UInt32(info.st_mode) & 0o777
        guard mode == 0o600 else { throw ServeError.socketMode(path, mode: mode) }
        try FileManager.default.removeItem(atPath: path)
    }

    public enum ServeError: Error, CustomStringConvertible {
        case tokensNeeded
        case notASocket(String)
        case socketMode(String, mode: UInt32)

        public var description: String {
            switch self {
            case .tokensNeeded: return "a TCP listener needs a tokens file"
            case .notASocket(let path): return "\(path) exists and is not a socket; it is not removed: move it away to serve"
            case .socketMode(let path, let mode):
                return "\(path) is a socket of mode \(String(mode, radix: 8)), not one this service left (0600); remove it yourself if it is stale"
            }
        }
    }
}

/// On the group's graceful shutdown, drains the coordinator: refuses new transactions, waits
/// up to `drainTimeoutMs` for those in flight, then stops it (answering what is left `halted`)
/// and ends the event streams, which would otherwise keep the listeners from stopping.
private struct Drainer: Service {
    let node: SandhiNode
    let hub: EventHub
    let drainTimeoutMs: UInt64
    let beforeDrain: (@Sendable () async -> Void)?

    func run() async throws {
        try? await gracefulShutdown()
        await beforeDrain?()
        // `shutdown` blocks (it polls the driver until it is empty): off the cooperative pool.
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                node.driver.shutdown(drainTimeoutMs: drainTimeoutMs)
                hub.close()
                done.resume()
            }
        }
    }
}

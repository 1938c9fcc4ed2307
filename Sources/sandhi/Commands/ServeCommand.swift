import ArgumentParser
import Foundation
import SandhiRuntime
import SandhiService

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the coordinator as a service: its API on a unix socket in the data directory.",
        discussion: """
            Listens on DIR/sandhi.sock (mode 0600) until SIGTERM or SIGINT, then takes no new
            transaction, gives those in flight --drain-timeout to finish, answers the requests
            waiting on them, and exits. No synthetic workload runs unless --workload asks. The API is described by GET /openapi.json.
              curl --unix-socket sandhi-data/sandhi.sock http://sandhi/v1/health
            With --listen, also on TCP (loopback only), for callers with a token from DIR/tokens
            (`sandhi token add`).
            """)

    @OptionGroup var common: CommonOptions

    @Option(name: .long, help: "Also listen on TCP at HOST:PORT (loopback), with bearer tokens from DIR/tokens.")
    var listen: String?

    @Option(name: .long, help: "On SIGTERM or SIGINT, how long transactions in flight get to finish (e.g. 500ms, 10s, 2m).")
    var drainTimeout: String = "10s"

    @Option(name: .long, help: "Transfers waiting for their outcome at once, beyond which requests get 429.")
    var maxInFlight: Int = 4_096

    @Option(name: .long, help: "Events kept for stream readers that fall behind or reconnect (GET /v1/events).")
    var eventBuffer: Int = 65_536

    @Option(name: .long, help: "Also run a synthetic workload on the node: mumbai, random or contention (none by default).")
    var workload: String?

    @Option(name: .long, help: "With --workload: transfers begun per second.")
    var rate: Int = 20

    @Flag(name: .long, help: "Take the chaos role's commands (fault injection).")
    var allowFaults = false

    func run() async throws {
        try await reportingErrors {
            let directory = common.directory
            let logger = common.makeLogger()
            var options = SandhiServer.Options(socketPath: directory.path + "/sandhi.sock")
            options.drainTimeoutMs = try DurationArgument.milliseconds(drainTimeout, option: "--drain-timeout")
            guard maxInFlight >= 1 else { throw ValidationError("--max-in-flight must be at least 1") }
            options.maxInFlight = maxInFlight
            options.allowFaults = allowFaults
            options.idempotencyPath = directory.coordinatorPath + "/idempotency.sqlite"
            if let listen {
                options.tcp = try ListenAddress.parse(listen)
                options.tokens = try TokenFile.load(directory.path + "/tokens")
            }
            // Everything this process creates is its user's alone, the socket first: no instant
            // in which another user could connect before the server narrows its mode.
            umask(0o077)
            guard (16...16_777_216).contains(eventBuffer) else { throw ValidationError("--event-buffer must be 16 to 16777216 events") }
            let hub = EventHub(capacity: eventBuffer)
            var kind: LiveWorkload.Kind?
            if let workload {
                guard let chosen = LiveWorkload.Kind(rawValue: workload) else {
                    throw ValidationError("--workload must be one of " + LiveWorkload.Kind.allCases.map(\.rawValue).joined(separator: ", "))
                }
                guard rate >= 1 else { throw ValidationError("--rate must be at least 1") }
                kind = chosen
            }
            // The workload's accounts are read before the node opens the banks for itself.
            let lock = try directory.lock()
            // Before anything starts: what lies at the socket's path is refused, or removed if it is ours.
            try SandhiServer.clearStaleSocket(options.socketPath)
            let accounts = try kind.map { _ in try LiveWorkload.readAccounts(directory: directory, configuration: directory.loadConfiguration(), logger: logger) }
            let node = try await SandhiNode.start(directory: directory, lock: lock, logger: logger, onEvent: hub.append)
            defer { node.stop(drainTimeoutMs: options.drainTimeoutMs) }
            if let kind, let accounts {
                var settings = LiveWorkload.Options()
                settings.kind = kind
                settings.ratePerSecond = rate
                let live = try LiveWorkload.start(node: node, accounts: accounts, options: settings)
                options.beforeDrain = { await live.stop() }
            }
            try await SandhiServer.run(node: node, hub: hub, options: options, logger: logger)
            return 0
        }
    }
}

/// `HOST:PORT` for a TCP listener, on loopback: any other address needs TLS, which this build
/// does not serve yet.
enum ListenAddress {
    static func parse(_ text: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65_535).contains(port) else {
            throw ValidationError("--listen: '\(text)' is not HOST:PORT with a port from 1 to 65535")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard ["127.0.0.1", "::1", "localhost"].contains(host) else {
            throw ValidationError("--listen: \(host) is not loopback, and a service on any other address needs TLS, which this build does not serve yet")
        }
        return (host, port)
    }
}

/// A duration on the command line: a number and a unit, `ms`, `s` or `m`.
enum DurationArgument {
    static func milliseconds(_ text: String, option: String) throws -> UInt64 {
        let units: [(String, UInt64)] = [("ms", 1), ("s", 1_000), ("m", 60_000)]
        for (unit, scale) in units where text.hasSuffix(unit) {
            if let value = UInt64(text.dropLast(unit.count)), value.multipliedReportingOverflow(by: scale).overflow == false {
                return value * scale
            }
        }
        throw ValidationError("\(option): '\(text)' is not a duration such as 500ms, 10s or 2m")
    }
}

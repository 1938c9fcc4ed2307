import Foundation
import Glibc
import SandhiIO
import SandhiProcess
import SandhiTestSupport
import Testing

/// `sandhi serve` as a real process: its API on the data directory's unix socket, bad input
/// refused naming the field, a SIGTERM that drains what is in flight and stops cleanly with
/// the books balanced, idempotency keys across a kill, and the TCP listener with its tokens,
/// checked against the OpenAPI document by schemathesis.
@Suite(.serialized) struct ServeCommandTests {
    static let transfer = """
        {"branches":[{"participant":"hdfc","operations":[{"kind":"debit","account":"acct-000001","amountPaise":15000}]},
                     {"participant":"sbi","operations":[{"kind":"credit","account":"acct-000002","amountPaise":15000}]}]}
        """

    static func move(_ paise: Int, from: String, to: String) -> String {
        #"{"branches":[{"participant":"hdfc","operations":[{"kind":"debit","account":"\#(from)","amountPaise":\#(paise)}]},"#
            + #"{"participant":"sbi","operations":[{"kind":"credit","account":"\#(to)","amountPaise":\#(paise)}]}]}"#
    }

    /// A data directory with ten accounts of ₹1,000 a bank, and its `sandhi check` total.
    static func makeData(_ temporary: TemporaryDirectory) throws -> (data: String, total: String) {
        let data = temporary.appending("data")
        #expect(try SandhiBinary.run(["init", "--data", data, "--accounts", "10", "--opening", "1000"]).status == 0)
        let before = try SandhiBinary.run(["check", "--data", data])
        let total = try #require(before.stdout.split(separator: "\n").first { $0.hasPrefix("total: ") }, "\(before.stdout)")
        return (data, String(total))
    }

    /// Starts `sandhi serve ARGS` and waits for its health check on the socket.
    static func serve(_ data: String, _ arguments: [String] = []) throws -> ChildProcess {
        let socket = data + "/sandhi.sock"
        let server = try SandhiBinary.start(["serve", "--data", data] + arguments)
        for _ in 0..<600 { // up to 60 s for a cold debug binary
            if (try? RawHTTP.request("GET", "/v1/health", socket: socket))?.status == 200 { return server }
            usleep(100_000)
        }
        SandhiBinary.kill(server)
        throw RawHTTP.Failure(description: "sandhi serve did not answer on \(socket)")
    }

    @Test func servesTransfersOnItsSocketAndStopsCleanlyOnSIGTERM() async throws { try await onOwnThread { try Self.servesTransfersOnItsSocketAndStopsCleanlyOnSIGTERM() } }

    static func servesTransfersOnItsSocketAndStopsCleanlyOnSIGTERM() throws {
        let temporary = TemporaryDirectory(); defer { temporary.remove() }
        let (data, total) = try Self.makeData(temporary)
        let socket = data + "/sandhi.sock"
        let server = try Self.serve(data)
        var info = stat()
        #expect(stat(socket, &info) == 0 && info.st_mode & 0o777 == 0o600, "the socket is mode 0600")

        let committed = try RawHTTP.request("POST", "/v1/transfers", body: Self.transfer, socket: socket)
        #expect(committed.status == 200 && committed.body.contains("\"outcome\":\"committed\""), "\(committed)")
        let unknown = try RawHTTP.request("POST", "/v1/transfers", body: #"{"branches":[{"participant":"nope","operations":[]}]}"#,
                                          socket: socket)
        #expect(unknown.status == 400 && unknown.body.contains("\"field\":\"branches[0].participant\""), "\(unknown)")
        let unbalanced = try RawHTTP.request("POST", "/v1/transfers", body: """
            {"branches":[{"participant":"hdfc","operations":[{"kind":"debit","account":"acct-000001","amountPaise":1}]}]}
            """, socket: socket)
        #expect(unbalanced.status == 400 && unbalanced.body.contains("do not balance"), "\(unbalanced)")
        let garbage = try RawHTTP.request("POST", "/v1/transfers", body: "{", socket: socket)
        #expect(garbage.status == 400 && garbage.body.contains("\"field\":\"body\""), "\(garbage)")
        let document = try RawHTTP.request("GET", "/openapi.json", socket: socket)
        #expect(document.status == 200 && document.body.contains("\"openapi\": \"3.0.3\""), "\(document.body.prefix(200))")

        server.signal(SIGTERM)
        #expect(server.wait() == 0, "a SIGTERM is a clean stop")
        #expect(access(socket, F_OK) != 0, "the socket is removed")
        let checked = try SandhiBinary.run(["check", "--data", data])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        #expect(checked.stdout.contains(total), "the books balance: \(checked.stdout)")
    }

    /// Eight clients send transfers as fast as they can; a SIGTERM lands among them. Every
    /// transfer the service said committed is committed, none it said aborted (or never
    /// answered) moved money, and the books balance.
    @Test func aSIGTERMWithTransfersInFlightLosesNothingAndHalfAppliesNothing() async throws { try await onOwnThread { try Self.aSIGTERMWithTransfersInFlightLosesNothingAndHalfAppliesNothing() } }

    static func aSIGTERMWithTransfersInFlightLosesNothingAndHalfAppliesNothing() throws {
        let temporary = TemporaryDirectory(); defer { temporary.remove() }
        let (data, total) = try Self.makeData(temporary)
        let socket = data + "/sandhi.sock"
        let server = try Self.serve(data, ["--drain-timeout", "20s"])
        let clients = 8, paise = 100
        let committed = Lock([Int](repeating: 0, count: clients))
        let unexpected = Lock([String]())
        let started = Lock(0)
        let finished = DispatchGroup()
        for client in 0..<clients {
            finished.enter()
            Thread {
                defer { finished.leave() }
                let account = String(format: "acct-%06d", client + 1)
                while true {
                    started.withLock { $0 += 1 }
                    guard let reply = try? RawHTTP.request("POST", "/v1/transfers", body: Self.move(paise, from: account, to: account),
                                                           socket: socket) else { return } // the listener closed
                    if reply.status == 200 && reply.body.contains("\"outcome\":\"committed\"") {
                        committed.withLock { $0[client] += 1 }
                    } else if reply.status == 503 {
                        return // draining
                    } else if reply.status != 200 {
                        unexpected.withLock { $0.append("\(reply.status) \(reply.headers) \(reply.body)") }
                    }
                }
            }.start()
        }
        while started.withLock({ $0 }) < 200 { usleep(1_000) }
        server.signal(SIGTERM)
        finished.wait()
        #expect(server.wait() == 0, "the drain finished inside its deadline")
        #expect(unexpected.withLock { $0 }.isEmpty, "no request got anything but an outcome or 503: \(unexpected.withLock { $0 })")

        let checked = try SandhiBinary.run(["check", "--data", data])
        #expect(checked.status == 0 && checked.stdout.contains(total), "\(checked.stdout)\(checked.stderr)")
        // Each client moved money from its own account at hdfc to its own account at sbi: the
        // balances say how many of its transfers committed, and that is how many it was told.
        let restarted = try Self.serve(data)
        defer { restarted.signal(SIGTERM); _ = restarted.wait() }
        let counts = committed.withLock { $0 }
        #expect(counts.reduce(0, +) > 0, "transfers committed before the stop")
        for client in 0..<clients {
            let account = String(format: "acct-%06d", client + 1)
            let reply = try RawHTTP.request("GET", "/v1/participants/sbi/accounts/\(account)", socket: socket)
            let expected = 100_000 + paise * counts[client]
            #expect(reply.body.contains("\"balancePaise\":\(expected),"), "client \(client): told \(counts[client]) committed; \(reply)")
        }
    }

    /// The command line beside a running service: `transfer` and `check` go through it (no
    /// lock error), `recover` is refused with the reason, and the books balance afterwards.
    @Test func theCommandLineGoesThroughARunningService() async throws { try await onOwnThread { try Self.commandLine() } }

    static func commandLine() throws {
        let temporary = TemporaryDirectory(); defer { temporary.remove() }
        let (data, total) = try Self.makeData(temporary)
        let server = try Self.serve(data)
        let moved = try SandhiBinary.run(["transfer", "--data", data, "--from", "hdfc/acct-000001", "--to", "sbi/acct-000002",
                                          "--amount", "150", "--read", "icici/acct-000003"])
        #expect(moved.status == 0 && moved.stdout.contains("T-1.1 committed"), "\(moved.stdout)\(moved.stderr)")
        #expect(moved.stdout.contains("read icici/acct-000003 = ₹1,000.00 (version 0, the opening balance)"), "\(moved.stdout)")
        let refused = try SandhiBinary.run(["transfer", "--data", data, "--from", "hdfc/acct-000001", "--to", "sbi/acct-000002",
                                            "--amount", "5000", "--json"])
        #expect(refused.status == 1 && refused.stdout.contains("\"refusal\":\"insufficient-funds\""), "\(refused.stdout)\(refused.stderr)")
        let checked = try SandhiBinary.run(["check", "--data", data])
        #expect(checked.status == 0 && checked.stdout.contains(total) && checked.stdout.contains("checked live by the service"),
                "\(checked.stdout)\(checked.stderr)")
        let recover = try SandhiBinary.run(["recover", "--data", data])
        #expect(recover.status != 0 && recover.stderr.contains("a service holds this data directory")
                && recover.stderr.split(separator: "\n").count == 1, "\(recover.stderr)")
        server.signal(SIGTERM)
        #expect(server.wait() == 0)
        let atRest = try SandhiBinary.run(["check", "--data", data])
        #expect(atRest.status == 0 && atRest.stdout.contains(total), "\(atRest.stdout)")
    }

    /// `--workload` runs a synthetic workload on the served node (none runs without it): its
    /// transfers show in the metrics, and a SIGTERM stops it before the drain.
    @Test func aSyntheticWorkloadRunsOnlyWhenAskedFor() async throws { try await onOwnThread { try Self.workload() } }

    static func workload() throws {
        let temporary = TemporaryDirectory(); defer { temporary.remove() }
        let (data, total) = try Self.makeData(temporary)
        let socket = data + "/sandhi.sock"
        let bad = try SandhiBinary.run(["serve", "--data", data, "--workload", "chaos-monkey"])
        #expect(bad.status != 0 && bad.stderr.contains("--workload must be one of"), "\(bad.stderr)")
        do {
            let quiet = try Self.serve(data)
            usleep(300_000)
            let metrics = try RawHTTP.request("GET", "/metrics", socket: socket)
            #expect(!metrics.body.contains(#"sandhi_transactions_total{outcome="committed"}"#) || metrics.body.contains(#"sandhi_transactions_total{outcome="committed"} 0"#),
                    "nothing runs unless asked: \(metrics.body.prefix(400))")
            quiet.signal(SIGTERM)
            #expect(quiet.wait() == 0)
        }
        let server = try Self.serve(data, ["--workload", "random", "--rate", "200"])
        var committed = 0
        for _ in 0..<300 where committed < 20 {
            let metrics = try RawHTTP.request("GET", "/metrics", socket: socket).body
            committed = metrics.split(separator: "\n").first { $0.hasPrefix(#"sandhi_transactions_total{outcome="committed"} "#) }
                .flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
            usleep(50_000)
        }
        #expect(committed >= 20, "the workload's transfers commit: \(committed)")
        server.signal(SIGTERM)
        #expect(server.wait() == 0, "the workload stops, the drain finishes")
        let checked = try SandhiBinary.run(["check", "--data", data])
        #expect(checked.status == 0 && checked.stdout.contains(total), "\(checked.stdout)")
    }

    /// What lies at DIR/sandhi.sock before a start: a socket this service would have left
    /// (0600) is removed; a socket of another mode, or a file that is not a socket, is refused
    /// in one line and left where it is.
    @Test func aSocketOfTheWrongModeIsRefusedAtStart() async throws { try await onOwnThread { try Self.wrongSocket() } }

    static func wrongSocket() throws {
        let temporary = TemporaryDirectory(); defer { temporary.remove() }
        let (data, _) = try Self.makeData(temporary)
        let socket = data + "/sandhi.sock"
        try Self.leaveSocket(at: socket, mode: 0o666)
        let open = try SandhiBinary.run(["serve", "--data", data])
        #expect(open.status != 0 && open.stderr.contains("a socket of mode 666") && open.stderr.split(separator: "\n").count == 1, "\(open.stderr)")
        #expect(access(socket, F_OK) == 0, "left where it was")
        unlink(socket)
        try Data("notes".utf8).write(to: URL(fileURLWithPath: socket))
        let file = try SandhiBinary.run(["serve", "--data", data])
        #expect(file.status != 0 && file.stderr.contains("is not a socket"), "\(file.stderr)")
        #expect(try String(contentsOfFile: socket, encoding: .utf8) == "notes", "not deleted")
        unlink(socket)
        try Self.leaveSocket(at: socket, mode: 0o600)
        let server = try Self.serve(data)
        server.signal(SIGTERM)
        #expect(server.wait() == 0, "a stale 0600 socket is this service's own, and replaced")
    }

    /// A unix socket file at `path`, bound and closed (as a dead process leaves it), of `mode`.
    static func leaveSocket(at path: String, mode: mode_t) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8CString)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in bytes.withUnsafeBytes { raw.copyMemory(from: $0) } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, chmod(path, mode) == 0 else { throw RawHTTP.Failure(description: "bind \(path): \(String(cString: strerror(errno)))") }
    }

    /// A keyed request, the service killed (SIGKILL, no drain), the same request again to the
    /// next run of the service: the first transaction's answer, and the money moved once.
    @Test func anIdempotencyKeySurvivesAKillOfTheService() async throws { try await onOwnThread { try Self.anIdempotencyKeySurvivesAKillOfTheService() } }

    static func anIdempotencyKeySurvivesAKillOfTheService() throws {
        let temporary = TemporaryDirectory(); defer { temporary.remove() }
        let (data, total) = try Self.makeData(temporary)
        let socket = data + "/sandhi.sock"
        let body = Self.move(2_500, from: "acct-000003", to: "acct-000004")
        let first: RawHTTP.Reply
        do {
            let server = try Self.serve(data)
            first = try RawHTTP.request("POST", "/v1/transfers", body: body, headers: ["Idempotency-Key": "invoice-9"], socket: socket)
            SandhiBinary.kill(server)
        }
        #expect(first.status == 200 && first.body.contains("\"outcome\":\"committed\""), "\(first)")
        let server = try Self.serve(data)
        let retry = try RawHTTP.request("POST", "/v1/transfers", body: body, headers: ["Idempotency-Key": "invoice-9"], socket: socket)
        #expect(retry.status == 200 && retry.headers["idempotent-replayed"] == "true", "\(retry)")
        let transaction = { (reply: RawHTTP.Reply) in reply.body.split(separator: "\"transaction\":").last.map(String.init) }
        #expect(transaction(retry) == transaction(first), "the same transaction: \(retry) vs \(first)")
        let account = try RawHTTP.request("GET", "/v1/participants/sbi/accounts/acct-000004", socket: socket)
        #expect(account.body.contains("\"balancePaise\":102500,"), "credited once: \(account)")
        server.signal(SIGTERM)
        #expect(server.wait() == 0)
        let checked = try SandhiBinary.run(["check", "--data", data])
        #expect(checked.status == 0 && checked.stdout.contains(total), "\(checked.stdout)\(checked.stderr)")
    }

    @Test func theTCPListenerTakesTokensAndMatchesItsOpenAPIDocument() async throws { try await onOwnThread { try Self.theTCPListenerTakesTokensAndMatchesItsOpenAPIDocument() } }

    static func theTCPListenerTakesTokensAndMatchesItsOpenAPIDocument() throws {
        let temporary = TemporaryDirectory(); defer { temporary.remove() }
        let (data, _) = try Self.makeData(temporary)

        let noTokens = try SandhiBinary.run(["serve", "--data", data, "--listen", "127.0.0.1:1"])
        #expect(noTokens.status != 0 && noTokens.stderr.contains("tokens does not exist"), "\(noTokens.stderr)")
        let added = try SandhiBinary.run(["token", "add", "payments", "--role", "client", "--data", data])
        #expect(added.status == 0, "\(added.stderr)")
        let token = added.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.count == 64)
        var info = stat()
        #expect(stat(data + "/tokens", &info) == 0 && info.st_mode & 0o777 == 0o600, "the tokens file is mode 0600")
        let duplicate = try SandhiBinary.run(["token", "add", "payments", "--role", "viewer", "--data", data])
        #expect(duplicate.status != 0 && duplicate.stderr.contains("exists already"), "\(duplicate.stderr)")
        let badRole = try SandhiBinary.run(["token", "add", "x", "--role", "admin", "--data", data])
        #expect(badRole.status != 0 && badRole.stderr.contains("'admin' is not viewer, client, operator or chaos"), "\(badRole.stderr)")
        let wide = try SandhiBinary.run(["serve", "--data", data, "--listen", "0.0.0.0:7000"])
        #expect(wide.status != 0 && wide.stderr.contains("not loopback") && wide.stderr.split(separator: "\n").count == 1, "\(wide.stderr)")
        let badDrain = try SandhiBinary.run(["serve", "--data", data, "--drain-timeout", "soon"])
        #expect(badDrain.status != 0 && badDrain.stderr.contains("--drain-timeout"), "\(badDrain.stderr)")
        chmod(data + "/tokens", 0o644)
        let open = try SandhiBinary.run(["serve", "--data", data, "--listen", "127.0.0.1:1"])
        #expect(open.status != 0 && open.stderr.contains("chmod 600"), "\(open.stderr)")
        chmod(data + "/tokens", 0o600)

        // schemathesis acts as an operator, so that commands are checked past their role; the
        // event stream never ends, so it is left to its own tests (ServeEventStreamTests).
        let operatorToken = try SandhiBinary.run(["token", "add", "ops", "--role", "operator", "--data", data])
            .stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try Self.freePort()
        let server = try Self.serve(data, ["--listen", "127.0.0.1:\(port)"])
        defer { server.signal(SIGTERM); _ = server.wait() }
        let anonymous = try RawHTTP.request("GET", "/v1/health", port: port)
        #expect(anonymous.status == 401 && anonymous.body.contains("\"field\":\"Authorization\""), "\(anonymous)")
        let health = try RawHTTP.request("GET", "/v1/health", headers: ["Authorization": "Bearer \(token)"], port: port)
        #expect(health.status == 200, "\(health)")

        guard let schemathesis = Self.program("schemathesis") else {
            print("skipped: schemathesis is not installed (`pip install schemathesis`; .ci/run installs it)")
            return
        }
        // From the temporary directory: schemathesis keeps a cache in its working directory.
        let run = try ChildProcess.run("/bin/sh", [
            "-c", #"cd "$1" && shift && exec "$@""#, "sh", temporary.appending(""), schemathesis, "run", "http://127.0.0.1:\(port)/openapi.json", "--header", "Authorization: Bearer \(operatorToken)",
            "--exclude-path", "/v1/events",
            "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
            "--max-examples", "40", "--seed", "7", "--workers", "1", "--generation-database", "none",
        ], environment: ["NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""], timeoutSeconds: 600)
        #expect(run.status == 0, "schemathesis found responses outside the document or a 5xx:\n\(run.stdout.suffix(4_000))\(run.stderr.suffix(1_000))")
    }

    /// A port nothing listens on now: the kernel's pick for a socket bound to port 0.
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw RawHTTP.Failure(description: "no free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `name`'s path on PATH, if it is there.
    static func program(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        return path.split(separator: ":").map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }
}

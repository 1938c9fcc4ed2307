import Foundation
import Glibc
import SandhiTestSupport
import Testing

/// `sandhi serve` as a real process: its API on the data directory's unix socket, bad input
/// refused naming the field, and a SIGTERM that stops it cleanly with the books balanced.
@Suite struct ServeCommandTests {
    static let transfer = """
        {"branches":[{"participant":"hdfc","operations":[{"kind":"debit","account":"acct-000001","amountPaise":15000}]},
                     {"participant":"sbi","operations":[{"kind":"credit","account":"acct-000002","amountPaise":15000}]}]}
        """

    @Test func servesTransfersOnItsSocketAndStopsCleanlyOnSIGTERM() throws {
        let temporary = TemporaryDirectory(); defer { temporary.remove() }
        let data = temporary.appending("data")
        #expect(try SandhiBinary.run(["init", "--data", data, "--accounts", "10", "--opening", "1000"]).status == 0)
        let before = try SandhiBinary.run(["check", "--data", data])
        let total = try #require(before.stdout.split(separator: "\n").first { $0.hasPrefix("total: ") }, "\(before.stdout)")
        let socket = data + "/sandhi.sock"
        let server = try SandhiBinary.start(["serve", "--data", data])
        var started = false
        for _ in 0..<600 where !started { // up to 60 s for a cold debug binary
            started = (try? UnixSocketHTTP.request("GET", "/v1/health", socket: socket))?.status == 200
            if !started { usleep(100_000) }
        }
        guard started else {
            SandhiBinary.kill(server)
            Issue.record("sandhi serve did not answer on \(socket)")
            return
        }
        var info = stat()
        #expect(stat(socket, &info) == 0 && info.st_mode & 0o777 == 0o600, "the socket is mode 0600")

        let committed = try UnixSocketHTTP.request("POST", "/v1/transfers", body: Self.transfer, socket: socket)
        #expect(committed.status == 200 && committed.body.contains("\"outcome\":\"committed\""), "\(committed)")
        let unknown = try UnixSocketHTTP.request("POST", "/v1/transfers", body: #"{"branches":[{"participant":"nope","operations":[]}]}"#,
                                                 socket: socket)
        #expect(unknown.status == 400 && unknown.body.contains("\"field\":\"branches[0].participant\""), "\(unknown)")
        let unbalanced = try UnixSocketHTTP.request("POST", "/v1/transfers", body: """
            {"branches":[{"participant":"hdfc","operations":[{"kind":"debit","account":"acct-000001","amountPaise":1}]}]}
            """, socket: socket)
        #expect(unbalanced.status == 400 && unbalanced.body.contains("do not balance"), "\(unbalanced)")
        let garbage = try UnixSocketHTTP.request("POST", "/v1/transfers", body: "{", socket: socket)
        #expect(garbage.status == 400 && garbage.body.contains("\"field\":\"body\""), "\(garbage)")

        server.signal(SIGTERM)
        #expect(server.wait() == 0, "a SIGTERM is a clean stop")
        #expect(access(socket, F_OK) != 0, "the socket is removed")
        let checked = try SandhiBinary.run(["check", "--data", data])
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        #expect(checked.stdout.contains(String(total)), "the books balance: \(checked.stdout)")
    }
}

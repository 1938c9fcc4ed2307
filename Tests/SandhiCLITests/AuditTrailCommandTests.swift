import Foundation
import Glibc
import SandhiTestSupport
import Testing

/// The audit trail end to end: `sandhi init` makes the key (mode 0600), a command through a
/// real service lands in `DIR/audit.log`, `sandhi log verify --audit` passes it and names the
/// line of a flipped byte, and a service whose key is gone refuses to start rather than sign on
/// under a new one.
@Suite(.serialized) struct AuditTrailCommandTests {
    typealias S = ServeCommandTests

    @Test func commandsThroughTheServiceAreSignedAndVerified() async throws { try await onOwnThread { try Self.signedAndVerified() } }

    static func signedAndVerified() throws {
        let temporary = TemporaryDirectory(); defer { temporary.remove() }
        let (data, _) = try S.makeData(temporary)
        var info = stat()
        #expect(stat(data + "/audit.key", &info) == 0 && info.st_mode & 0o777 == 0o600, "the key is its owner's alone")
        #expect(access(data + "/audit.pub", R_OK) == 0)
        let socket = data + "/sandhi.sock"
        do {
            let server = try S.serve(data, ["--allow-faults"])
            let fault = try RawHTTP.request("POST", "/v1/commands", body: #"{"kind":"fault","fault":"delay axis 5ms","reason":"latency drill"}"#,
                                            socket: socket)
            #expect(fault.status == 200, "\(fault)")
            let refused = try RawHTTP.request("POST", "/v1/commands", body: #"{"kind":"abort","transaction":"T-1.40","reason":"typo"}"#,
                                              socket: socket)
            #expect(refused.status == 409, "\(refused)")
            server.signal(SIGTERM)
            #expect(server.wait() == 0)
        }
        let verified = try SandhiBinary.run(["log", "verify", "--audit", "--data", data])
        #expect(verified.status == 0 && verified.stdout.contains("ok: 4 audit record(s)"), "\(verified.stdout)\(verified.stderr)")

        let path = data + "/audit.log"
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(String(decoding: bytes, as: UTF8.self).contains("\"reason\":\"latency drill\""))
        let secondLine = try #require(bytes.firstIndex(of: UInt8(ascii: "\n"))) + 1
        let at = try #require(bytes[secondLine...].firstIndex(of: UInt8(ascii: "y"))) // in "latency drill"
        bytes[at] = UInt8(ascii: "Y")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let damaged = try SandhiBinary.run(["log", "verify", "--audit", "--data", data])
        #expect(damaged.status == 1 && damaged.stdout.contains("line 2: the signature does not verify"), "\(damaged.stdout)\(damaged.stderr)")

        try FileManager.default.removeItem(atPath: data + "/audit.key")
        let keyless = try SandhiBinary.run(["serve", "--data", data])
        #expect(keyless.status != 0 && keyless.stderr.contains("restore the key"), "\(keyless.stderr)")
    }
}

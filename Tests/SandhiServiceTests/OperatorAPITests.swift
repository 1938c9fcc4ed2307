import Foundation
import HTTPTypes
import HummingbirdTesting
import SandhiEngine
import SandhiRuntime
@testable import SandhiService
import Testing

/// The operator API over a real node: snapshots, commands with their dry runs, reasons and
/// roles.
@Suite struct OperatorAPITests {
    typealias F = ServiceFixture

    static func command(_ fields: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: fields), as: UTF8.self)
    }

    @Test func anAbortIsPreviewedRefusedWithoutAReasonThenPerformedWithItsEvents() async throws {
        let fixture = try F(); defer { fixture.remove() }
        let node = try await fixture.start()
        defer { node.stop() }
        // sbi's messages are held for a minute: the transfer stays undecided until aborted.
        try await node.inject(.delayMessages(F.sbi, delayMs: LiveFault.maxDelayMs))
        try await fixture.withRoutes(node: node, store: nil) { client in
            let accepted = try await client.post("/v1/transfers", F.transfer(paise: 300, timeoutMs: 20))
            let tx = try #require(try accepted.json()["transaction"] as? String, "\(accepted.text)")
            let snapshot = try await client.get("/v1/snapshot")
            let picture = try JSONDecoder().decode(OperatorSnapshot.self, from: Data(snapshot.text.utf8))
            let row = try #require(picture.transactions.first { "\($0.id)" == tx }, "\(snapshot.text)")
            #expect(row.branches.map(\.participant) == [F.hdfc, F.sbi] && row.amountPaise == 300 && row.locksGranted == 2)
            #expect(picture.faults == ["delay sbi 60000ms"] && picture.participants.count == 2, "\(picture.faults)")

            let preview = try await client.post("/v1/commands", Self.command(["kind": "abort", "transaction": tx, "dryRun": true]))
            #expect(preview.status == .ok && preview.text.contains("\"performed\":false") && preview.text.contains("aborts \(tx)"), "\(preview.text)")
            #expect(node.driver.snapshot().transactions[TransactionID(tx)!] != nil, "a dry run changes nothing")
            let noReason = try await client.post("/v1/commands", Self.command(["kind": "abort", "transaction": tx, "reason": "  "]))
            #expect(noReason.status == .badRequest && noReason.text.contains("\"field\":\"reason\""), "\(noReason.text)")
            let done = try await client.post("/v1/commands", Self.command(["kind": "abort", "transaction": tx, "reason": "customer cancelled"]))
            #expect(done.status == .ok && done.text.contains("\"performed\":true"), "\(done.text)")
            #expect(done.text.contains("\"to\":\"aborting\""), "the events it caused: \(done.text)")
            let again = try await client.post("/v1/commands", Self.command(["kind": "abort", "transaction": tx, "reason": "again"]))
            #expect(again.status == .conflict && again.text.contains("\(tx)"), "\(again.text)")
        }
        try await node.inject(.heal(F.sbi)) // the ROLLBACK held for sbi goes through: a clean stop
        node.stop()
        #expect(try fixture.balance(F.hdfc, F.alice) == 100_000, "the aborted transfer moved nothing")
    }

    @Test func commandsNameWhatIsWrong() async throws {
        let fixture = try F(); defer { fixture.remove() }
        let node = try await fixture.start()
        defer { node.stop() }
        try await fixture.withRoutes(node: node, store: nil, allowFaults: true) { client in
            let cases: [([String: Any], HTTPResponse.Status, String)] = [
                (["kind": "launch"], .badRequest, "\"field\":\"kind\""),
                (["kind": "abort"], .badRequest, "\"field\":\"transaction\""),
                (["kind": "abort", "transaction": "T-x"], .badRequest, "\"field\":\"transaction\""),
                (["kind": "reconcile", "transaction": "T-1.1", "action": "undo"], .badRequest, "\"field\":\"action\""),
                (["kind": "reconcile", "transaction": "T-1.1", "action": "compensate", "dryRun": true], .conflict, "T-1.1"),
                (["kind": "chooseVictim", "transaction": "T-1.1", "deadlock": 9, "dryRun": true], .conflict, "deadlock #9"),
                (["kind": "fault", "fault": "crash nowhere"], .badRequest, "\"field\":\"fault\""),
            ]
            for (fields, status, needle) in cases {
                let reply = try await client.post("/v1/commands", Self.command(fields))
                #expect(reply.status == status && reply.text.contains(needle), "\(fields): \(reply.status) \(reply.text)")
            }
            let garbage = try await client.post("/v1/commands", "[")
            #expect(garbage.status == .badRequest && garbage.text.contains("\"field\":\"body\""), "\(garbage.text)")
        }
    }

    @Test func rolesBoundEachCommandAndFaultsNeedTheServiceToAllowThem() async throws {
        let fixture = try F(); defer { fixture.remove() }
        let node = try await fixture.start()
        defer { node.stop() }
        let tokens = Dictionary(uniqueKeysWithValues: Role.allCases.map { ($0, TokenFile.newToken()) })
        let file = TokenFile(path: "tokens", entries: Role.allCases.map { .init(role: $0, name: "\($0.rawValue)-user", token: tokens[$0]!) })
        let bearer = { @Sendable (role: Role) -> HTTPFields in [.authorization: "Bearer \(tokens[role]!)"] }
        let abort = try Self.command(["kind": "abort", "transaction": "T-1.1", "dryRun": true])
        let fault = try Self.command(["kind": "fault", "fault": "delay hdfc 5ms", "reason": "drill"])
        for allowFaults in [false, true] {
            try await fixture.withRoutes(node: node, store: nil, allowFaults: allowFaults, listener: .tcp(file)) { client in
                #expect(try await client.get("/v1/snapshot", headers: bearer(.viewer)).status == .ok)
                for role in [Role.viewer, .client] {
                    let refused = try await client.post("/v1/commands", abort, headers: bearer(role))
                    #expect(refused.status == .forbidden && refused.text.contains("needs the operator role"), "\(role): \(refused.text)")
                }
                let allowed = try await client.post("/v1/commands", abort, headers: bearer(.operator))
                #expect(allowed.status == .conflict && allowed.text.contains("not in flight"), "checked, not refused: \(allowed.text)")
                let operatorFault = try await client.post("/v1/commands", fault, headers: bearer(.operator))
                #expect(operatorFault.status == .forbidden, "\(operatorFault.text)")
                let chaosFault = try await client.post("/v1/commands", fault, headers: bearer(.chaos))
                if allowFaults {
                    #expect(chaosFault.status == .ok && chaosFault.text.contains("fault injected: delay hdfc 5ms"), "\(chaosFault.text)")
                } else {
                    #expect(chaosFault.status == .forbidden && chaosFault.text.contains("--allow-faults"), "\(chaosFault.text)")
                }
            }
        }
        #expect(node.activeFaults == [.delayMessages(F.hdfc, delayMs: 5)], "only the allowed fault was applied")
    }
}

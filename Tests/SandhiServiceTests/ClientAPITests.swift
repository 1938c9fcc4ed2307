import Foundation
import HTTPTypes
import HummingbirdTesting
import SandhiEngine
import SandhiIO
import SandhiParticipants
import SandhiRuntime
@testable import SandhiService
import Testing

/// The client API over a real node and real SQLite banks, through the service's own routes.
@Suite struct ClientAPITests {
    typealias F = ServiceFixture

    @Test func aRetryWithTheSameKeyIsAppliedOnce() async throws {
        let fixture = try F(); defer { fixture.remove() }
        let node = try await fixture.start()
        let store = try IdempotencyStore(path: fixture.idempotencyPath)
        try await fixture.withRoutes(node: node, store: store) { client in
            let key: HTTPFields = [.idempotencyKeyHeader: "order-17"]
            let first = try await client.post("/v1/transfers", F.transfer(paise: 2_500), headers: key)
            let retry = try await client.post("/v1/transfers", F.transfer(paise: 2_500), headers: key)
            #expect(first.status == .ok && retry.status == .ok, "\(first.text) \(retry.text)")
            #expect(try first.json()["outcome"] as? String == "committed")
            #expect(try retry.json()["transaction"] as? String == first.json()["transaction"] as? String, "the retry answers the first transaction")
            #expect(first.headers[.replayedHeader] == nil && retry.headers[.replayedHeader] == "true")
            let other = try await client.post("/v1/transfers", F.transfer(paise: 9), headers: key)
            #expect(other.status == .unprocessableContent && other.text.contains("Idempotency-Key"), "\(other.text)")
            let badKey = try await client.post("/v1/transfers", F.transfer(paise: 9), headers: [.idempotencyKeyHeader: String(repeating: "k", count: 256)])
            #expect(badKey.status == .badRequest && badKey.text.contains("\"field\":\"Idempotency-Key\""), "\(badKey.text)")
        }
        node.stop()
        store.close()
        #expect(try fixture.balance(F.hdfc, F.alice) == 100_000 - 2_500, "debited once")
        #expect(try fixture.balance(F.sbi, F.carol) == 100_000 + 2_500, "credited once")
    }

    /// The crash windows of a keyed request, built by hand: the key bound and nothing begun; the
    /// key bound and the transfer committed, its outcome never recorded. After a restart (a new
    /// epoch), a retry under each key answers for the transaction the key was bound to and
    /// starts nothing.
    @Test func aKeyBoundBeforeACrashIsNeverRunTwice() async throws {
        let fixture = try F(); defer { fixture.remove() }
        let boundOnly: TransactionID, committed: TransactionID
        do {
            let node = try await fixture.start()
            let store = try IdempotencyStore(path: fixture.idempotencyPath)
            let request = { (paise: Int64) throws -> String in
                TransferAPI.canonical(try JSONDecoder().decode(TransferAPI.TransferRequest.self, from: Data(F.transfer(paise: paise).utf8)))
            }
            boundOnly = node.driver.reserveTransactionID()
            #expect(try store.claim(key: "never-begun", request: request(1_000), transaction: boundOnly) == .claimed)
            committed = node.driver.reserveTransactionID()
            #expect(try store.claim(key: "never-recorded", request: request(3_000), transaction: committed) == .claimed)
            let result = try await node.driver.transfer(F.move(3_000), reserved: committed)
            #expect(result.outcome.isCommitted)
            store.close()
            node.stop()
        }
        let node = try await fixture.start()
        let store = try IdempotencyStore(path: fixture.idempotencyPath)
        try await fixture.withRoutes(node: node, store: store) { client in
            let aborted = try await client.post("/v1/transfers", F.transfer(paise: 1_000), headers: [.idempotencyKeyHeader: "never-begun"])
            #expect(aborted.status == .ok && aborted.headers[.replayedHeader] == "true", "\(aborted.text)")
            #expect(try aborted.json()["outcome"] as? String == "aborted")
            #expect(try aborted.json()["transaction"] as? String == "\(boundOnly)")
            let done = try await client.post("/v1/transfers", F.transfer(paise: 3_000), headers: [.idempotencyKeyHeader: "never-recorded"])
            #expect(done.status == .ok && done.headers[.replayedHeader] == "true", "\(done.text)")
            #expect(try done.json()["outcome"] as? String == "committed")
            #expect(try done.json()["transaction"] as? String == "\(committed)")
        }
        #expect(try store.entry("never-recorded")?.outcome == .committed, "what was found out is recorded for the next retry")
        node.stop()
        store.close()
        #expect(try fixture.balance(F.hdfc, F.alice) == 100_000 - 3_000, "only the committed transfer, once")
    }

    /// The ordering that makes a keyed retry safe: the key is durable before anything begins
    /// under its transaction. A claim whose fsync fails must leave nothing begun (with the
    /// transfer begun first, it commits and the key is lost: a retry would apply it again).
    @Test func aKeyThatCannotBeMadeDurableBeginsNothing() async throws {
        let fixture = try F(); defer { fixture.remove() }
        let node = try await fixture.start()
        let disk = SimulatedDisk(seed: 5)
        disk.installDirectory("/keys")
        let store = try IdempotencyStore(path: "/keys/idempotency.sqlite", io: .through(disk))
        disk.failNextSync()
        try await fixture.withRoutes(node: node, store: store) { client in
            let failed = try await client.post("/v1/transfers", F.transfer(paise: 4_000), headers: [.idempotencyKeyHeader: "k"])
            #expect(failed.status == .serviceUnavailable, "\(failed.text)")
        }
        node.stop()
        store.close()
        #expect(try fixture.balance(F.hdfc, F.alice) == 100_000, "nothing began under a key that is not durable")
    }

    @Test func aTransferPastItsDeadlineIsAcceptedAndCanBeFollowed() async throws {
        let fixture = try F(); defer { fixture.remove() }
        let node = try await fixture.start()
        defer { node.stop() }
        // sbi's messages are held (up to a minute) until the link is healed: the transfer is
        // undecided for as long as the test needs, however slow the machine.
        try await node.inject(.delayMessages(F.sbi, delayMs: LiveFault.maxDelayMs))
        try await fixture.withRoutes(node: node, store: nil) { client in
            let accepted = try await client.post("/v1/transfers", F.transfer(paise: 700, timeoutMs: 50))
            #expect(accepted.status == .accepted && accepted.text.contains("\"outcome\":\"pending\""), "\(accepted.text)")
            let tx = try #require(try accepted.json()["transaction"] as? String)
            let early = try await client.get("/v1/transactions/\(tx)")
            #expect(early.status == .ok && !early.text.contains("\"state\":\"committed\"") && !early.text.contains("\"state\":\"aborted\""),
                    "in flight, not presumed aborted: \(early.text)")
            try await node.inject(.heal(F.sbi))
            var state = ""
            for _ in 0..<200 where state != "committed" {
                state = try await client.get("/v1/transactions/\(tx)").json()["state"] as? String ?? ""
                if state != "committed" { try await Task.sleep(nanoseconds: 20_000_000) }
            }
            #expect(state == "committed", "the transfer went on after the request stopped waiting")
            let account = try await client.get("/v1/participants/sbi/accounts/carol")
            #expect(try account.json()["balancePaise"] as? Int == 100_700 && account.json()["lastWriter"] as? String == tx, "\(account.text)")
        }
    }

    @Test func moreWaitingTransfersThanTheBoundAreTold429() async throws {
        let fixture = try F(); defer { fixture.remove() }
        let node = try await fixture.start()
        defer { node.stop() }
        try await node.inject(.delayMessages(F.sbi, delayMs: LiveFault.maxDelayMs))
        try await fixture.withRoutes(node: node, store: nil, maxInFlight: 1) { client in
            async let first = client.post("/v1/transfers", F.transfer(paise: 100))
            for _ in 0..<6_000 where node.driver.inFlightCount == 0 { try await Task.sleep(nanoseconds: 5_000_000) }
            let refused = try await client.post("/v1/transfers", F.transfer(paise: 100))
            #expect(refused.status == .tooManyRequests && refused.headers[.retryAfter] == "1", "\(refused.text)")
            try await node.inject(.heal(F.sbi))
            #expect(try await first.status == .ok, "the one admitted is answered")
        }
    }

    @Test func tokensNameTheCallerAndRolesBoundWhatTheyMayDo() async throws {
        let fixture = try F(); defer { fixture.remove() }
        let node = try await fixture.start()
        defer { node.stop() }
        let viewer = TokenFile.newToken(), app = TokenFile.newToken()
        let tokens = TokenFile(path: "tokens", entries: [.init(role: .viewer, name: "grafana", token: viewer),
                                                         .init(role: .client, name: "payments", token: app)])
        try await fixture.withRoutes(node: node, store: nil, listener: .tcp(tokens)) { client in
            let bearer = { (token: String) -> HTTPFields in [.authorization: "Bearer \(token)"] }
            let anonymous = try await client.get("/v1/health")
            #expect(anonymous.status == .unauthorized && anonymous.headers[.wwwAuthenticate] == "Bearer", "\(anonymous.text)")
            let wrong = try await client.get("/v1/health", headers: bearer(String(viewer.reversed())))
            #expect(wrong.status == .unauthorized, "\(wrong.text)")
            #expect(try await client.get("/v1/health", headers: bearer(viewer)).status == .ok)
            let forbidden = try await client.post("/v1/transfers", F.transfer(paise: 1), headers: bearer(viewer))
            #expect(forbidden.status == .forbidden && forbidden.text.contains("grafana is a viewer; this needs the client role"), "\(forbidden.text)")
            #expect(try await client.post("/v1/transfers", F.transfer(paise: 1), headers: bearer(app)).status == .ok)
        }
        #expect(throws: TokenFile.LoadError.self) { try TokenFile.parse("operator alice short\n", path: "t") }
        #expect(throws: TokenFile.LoadError.self) { try TokenFile.parse("admin alice \(viewer)\n", path: "t") }
    }

    @Test func lookupsAndAccountsNameWhatIsWrong() async throws {
        let fixture = try F(); defer { fixture.remove() }
        let node = try await fixture.start()
        defer { node.stop() }
        try await fixture.withRoutes(node: node, store: nil) { client in
            let bad = try await client.get("/v1/transactions/banana")
            #expect(bad.status == .badRequest && bad.text.contains("\"field\":\"id\""), "\(bad.text)")
            let future = try await client.get("/v1/transactions/T-\(node.driver.epoch).999")
            #expect(future.status == .notFound, "\(future.text)")
            let nobody = try await client.get("/v1/participants/nobody/accounts")
            #expect(nobody.status == .notFound && nobody.text.contains("\"field\":\"participant\""), "\(nobody.text)")
            let noAccount = try await client.get("/v1/participants/hdfc/accounts/zed")
            #expect(noAccount.status == .notFound && noAccount.text.contains("\"field\":\"account\""), "\(noAccount.text)")
            let list = try await client.get("/v1/participants/hdfc/accounts")
            #expect(list.status == .ok && list.text.contains("\"account\":\"alice\"") && list.text.contains("\"balancePaise\":100000"), "\(list.text)")
            let aborted = try await client.post("/v1/transfers", F.transfer(paise: 10_000_000))
            #expect(aborted.status == .ok && aborted.text.contains("\"outcome\":\"aborted\""), "insufficient funds: \(aborted.text)")
            let tx = try #require(try aborted.json()["transaction"] as? String)
            #expect(try await client.get("/v1/transactions/\(tx)").json()["state"] as? String == "aborted")
            let timeout = try await client.post("/v1/transfers", F.transfer(paise: 1, timeoutMs: 0))
            #expect(timeout.status == .badRequest && timeout.text.contains("\"field\":\"timeoutMs\""), "\(timeout.text)")
        }
    }
}

extension ServiceFixture {
    static func move(_ paise: Int64) -> [Branch] {
        [Branch(participant: hdfc, operations: [.debit(account: alice, amount: Paise(paise))]),
         Branch(participant: sbi, operations: [.credit(account: carol, amount: Paise(paise))])]
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import SandhiEngine
import SandhiParticipants
import SandhiRuntime
@testable import SandhiService
import SandhiTestSupport

/// A data directory with two embedded banks (alice at hdfc, carol at sbi, ₹1,000 each), a node
/// on it, and the service's routes over it, driven in-process by Hummingbird's test client.
final class ServiceFixture: @unchecked Sendable {
    static let hdfc = ParticipantID(validated: "hdfc"), sbi = ParticipantID(validated: "sbi")
    static let alice = AccountID(validated: "alice"), carol = AccountID(validated: "carol")
    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    let temporary = TemporaryDirectory()
    let directory: DataDirectory
    var idempotencyPath: String { directory.coordinatorPath + "/idempotency.sqlite" }

    init() throws {
        directory = DataDirectory(path: temporary.appending("data"))
        var configuration = SandhiConfiguration(participants: [Self.hdfc, Self.sbi].map { .init(id: $0) })
        configuration.prepareTimeoutMs = 60_000
        try directory.create(configuration) { directory in
            for (bank, account) in [(Self.hdfc, Self.alice), (Self.sbi, Self.carol)] {
                try SQLiteBank.create(path: directory.bankPath(bank), participant: bank, accounts: [(account, .rupees(1_000))], logger: Self.logger)
            }
        }
    }

    /// The node's events, as `sandhi serve` wires them.
    let hub = EventHub(capacity: 4_096)

    func start() async throws -> SandhiNode {
        try await SandhiNode.start(directory: directory, logger: Self.logger, onEvent: hub.append)
    }

    /// Runs `body` against the routes over `node`, as `listener` would authenticate.
    func withRoutes<T: Sendable>(node: SandhiNode, store: IdempotencyStore?, maxInFlight: Int = 64, allowFaults: Bool = false,
                                 metrics: MetricsEndpoint? = nil,
                                 listener: Authenticator.Listener = .unix(user: "tester", role: .operator),
                                 _ body: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        let client = ClientAPI(node: node, idempotency: store, maxInFlight: maxInFlight, logger: Self.logger)
        let operators = OperatorAPI(node: node, hub: hub, allowFaults: allowFaults, logger: Self.logger)
        let app = Application(router: SandhiServer.router(node: node, client: client, operators: operators,
                                                          metrics: metrics ?? MetricsEndpoint(node: node, hub: hub), listener: listener),
                              logger: Self.logger)
        return try await app.test(.router, body)
    }

    func balance(_ bank: ParticipantID, _ account: AccountID) throws -> Int64? {
        let opened = try SQLiteBank(path: directory.bankPath(bank), participant: bank, logger: Self.logger)
        defer { opened.close() }
        return try opened.balance(of: account)?.value
    }

    static func transfer(paise: Int64, timeoutMs: Int? = nil) -> String {
        let timeout = timeoutMs.map { #","timeoutMs":\#($0)"# } ?? ""
        return #"{"branches":[{"participant":"hdfc","operations":[{"kind":"debit","account":"alice","amountPaise":\#(paise)}]},"#
            + #"{"participant":"sbi","operations":[{"kind":"credit","account":"carol","amountPaise":\#(paise)}]}]\#(timeout)}"#
    }

    func remove() { temporary.remove() }
}

extension TestClientProtocol {
    func post(_ uri: String, _ body: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        headers[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: headers)
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }

    func json() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
    }
}

extension HTTPField.Name {
    static let idempotencyKeyHeader = Self("Idempotency-Key")!
    static let replayedHeader = Self("Idempotent-Replayed")!
}

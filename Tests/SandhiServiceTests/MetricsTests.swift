import Foundation
import HummingbirdTesting
import SandhiEngine
import SandhiRuntime
@testable import SandhiService
import Testing

/// `/metrics`: what the engine did, in Prometheus's text format, from the event stream and the
/// node's own figures.
@Suite struct MetricsTests {
    typealias F = ServiceFixture

    @Test func transfersVotesSyncsAndParticipantsAreCounted() async throws {
        let fixture = try F(); defer { fixture.remove() }
        let node = try await fixture.start()
        defer { node.stop() }
        let endpoint = MetricsEndpoint(node: node, hub: fixture.hub)
        let following = Task { await endpoint.metrics.follow() }
        defer { following.cancel() }
        try await Task.sleep(nanoseconds: 50_000_000) // the follower subscribed: it counts from now

        #expect(try await node.driver.transfer(F.move(1_000)).outcome.isCommitted)
        #expect(try await !node.driver.transfer(F.move(100_000_000)).outcome.isCommitted, "insufficient funds")
        try await fixture.withRoutes(node: node, store: nil, metrics: endpoint) { client in
            var text = ""
            for _ in 0..<400 where !text.contains(#"sandhi_transactions_total{outcome="aborted"} 1"#) {
                text = try await client.get("/metrics").text
                try await Task.sleep(nanoseconds: 10_000_000)
            }
            for line in [#"sandhi_transactions_total{outcome="committed"} 1"#, #"sandhi_transactions_total{outcome="aborted"} 1"#,
                         "sandhi_commit_latency_seconds_count 1", "sandhi_decision_log_latency_seconds_count 1",
                         #"sandhi_vote_latency_seconds_count{participant="hdfc"} 2"#, #"sandhi_participant_up{participant="sbi"} 1"#,
                         "sandhi_in_flight 0", "sandhi_heuristic_cases_open 0"] {
                #expect(text.contains(line), "\(line) in:\n\(text)")
            }
            let syncs = text.split(separator: "\n").first { $0.hasPrefix("sandhi_log_syncs_total ") }.flatMap { Int($0.split(separator: " ")[1]) }
            #expect((syncs ?? 0) >= 1, "the COMMIT record's fsync at least: \(String(describing: syncs))")

            try await node.inject(.crashParticipant(F.sbi))
            #expect(try await client.get("/metrics").text.contains(#"sandhi_participant_up{participant="sbi"} 0"#))
        }
    }
}

import Foundation
import SandhiTestSupport
import Testing

/// `sandhi bench --via api`: the same workload in-process and then through the service's HTTP
/// API on a unix socket, in one run, both reported with their ratio; the books balance after.
@Suite struct APIBenchTests {
    @Test func theBenchMeasuresTheAPIBesideTheInProcessRun() async throws {
        try await onOwnThread {
            let temporary = TemporaryDirectory("sandhi-api-bench"); defer { temporary.remove() }
            let data = temporary.appending("data")
            #expect(try SandhiBinary.run(["init", "--data", data, "--accounts", "50"]).status == 0)
            let total = try SandhiBinary.run(["check", "--data", data]).stdout.split(separator: "\n").first { $0.hasPrefix("total: ") }
            let bench = try SandhiBinary.run(["bench", "--data", data, "--via", "api", "--clients", "8", "--duration", "1"])
            #expect(bench.status == 0, "\(bench.stdout)\n\(bench.stderr)")
            let out = bench.stdout
            #expect(out.range(of: #"in-process +[1-9][0-9]* transfers/s"#, options: .regularExpression) != nil, "\(out)")
            #expect(out.range(of: #"via the API +[1-9][0-9]* transfers/s"#, options: .regularExpression) != nil, "\(out)")
            #expect(out.range(of: #"ratio +[0-9]+\.[0-9]{2} of the in-process rate"#, options: .regularExpression) != nil, "\(out)")
            #expect(!FileManager.default.fileExists(atPath: data + "/bench-api.sock"), "the bench's service removed its socket")
            let checked = try SandhiBinary.run(["check", "--data", data])
            #expect(checked.status == 0 && total.map { checked.stdout.contains($0) } == true, "\(checked.stdout)")
            let refused = try SandhiBinary.run(["bench", "--data", data, "--via", "carrier-pigeon"])
            #expect(refused.status != 0 && refused.stderr.contains("--via must be"), "\(refused.stderr)")
        }
    }
}

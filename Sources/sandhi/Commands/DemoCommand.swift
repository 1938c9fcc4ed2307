import ArgumentParser
import Foundation
import SandhiEngine
import SandhiRuntime

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Narrated scenarios over the embedded banks.", subcommands: [List.self, Run.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the scenarios.")
        func run() async throws {
            for scenario in MumbaiDemo.scenarios { print(pad(scenario.name, 10) + scenario.summary) }
            print("failures for `run mumbai --fail`: " + MumbaiDemo.Failure.allCases.map(\.rawValue).joined(separator: ", "))
        }
    }

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a scenario and narrate the protocol.")

        @OptionGroup var common: CommonOptions

        @Argument(help: "The scenario (see `sandhi demo list`).")
        var name: String

        @Flag(help: "Print the narration only (the console view arrives with `sandhi console`).")
        var headless = false

        @Option(help: "Inject a failure: \(MumbaiDemo.Failure.allCases.map(\.rawValue).joined(separator: ", ")).")
        var fail: String?

        func run() async throws {
            try await reportingErrors {
                guard MumbaiDemo.scenarios.contains(where: { $0.name == name }) else {
                    throw UsageFailure("unknown scenario \"\(name)\" (try `sandhi demo list`)")
                }
                var failure: MumbaiDemo.Failure?
                if let fail {
                    guard let parsed = MumbaiDemo.Failure(rawValue: fail) else {
                        throw UsageFailure("unknown failure \"\(fail)\" (one of: \(MumbaiDemo.Failure.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                    failure = parsed
                }
                if name == "heuristic" {
                    guard failure == nil else { throw UsageFailure("--fail applies to the mumbai scenario only") }
                    return try await HeuristicDemo.run(directory: common.directory, logger: common.makeLogger())
                }
                return try await MumbaiDemo.run(directory: common.directory, failure: failure, logger: common.makeLogger())
            }
        }
    }
}

import Foundation
import SandhiTestSupport
import Testing

/// `sandhi simulate` end to end: a clean range, a planted bug reported with its replay command,
/// and bad input.
@Suite struct SimulateCommandTests {
    @Test func aCleanRangeExitsZeroAndAPlantedBugNamesItsReplay() throws {
        let clean = try SandhiBinary.run(["simulate", "--seeds", "1..50", "--transactions", "10"])
        #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
        #expect(clean.stdout.contains("violations    none"))
        #expect(clean.stdout.contains("simulated transfers/s"))
        // The table: each fault kind injected and each failure case hit, with its count.
        #expect(clean.stdout.contains("fault injected"))
        #expect(clean.stdout.contains("failure case hit"))
        #expect(clean.stdout.range(of: #"\n  lost prepare +[1-9][0-9]*\n"#, options: .regularExpression) != nil, "\(clean.stdout)")
        let planted = try SandhiBinary.run(["simulate", "--seeds", "1..50", "--bug", "commit-before-durable"])
        #expect(planted.status == 1)
        #expect(planted.stdout.contains("decision-before-commit"))
        let replay = try #require(planted.stdout.split(separator: "\n").first { $0.hasPrefix("replay:") })
        let command = replay.dropFirst("replay:".count).trimmingCharacters(in: .whitespaces)
        let again = try SandhiBinary.run(Array(command.split(separator: " ").dropFirst().map(String.init)))
        #expect(again.status == 1, "the replay reproduces the failure")
        #expect(again.stdout.contains("VIOLATION     decision-before-commit"))
        #expect(again.stdout.contains("last steps:"))
    }

    @Test func oneSeedTwiceGivesTheSameTrace() throws {
        let first = try SandhiBinary.run(["simulate", "--seed", "42", "--json"])
        let second = try SandhiBinary.run(["simulate", "--seed", "42", "--json"])
        #expect(first.status == 0 && first.stdout == second.stdout)
    }

    @Test func badInputIsOneLine() throws {
        for (arguments, problem) in [
            (["simulate"], "give --seed S or --seeds A..B"),
            (["simulate", "--seeds", "9..1"], "--seeds must be A..B"),
            (["simulate", "--seed", "1", "--bug", "gremlins"], "unknown bug \"gremlins\""),
            (["simulate", "--seed", "1", "--seeds", "1..2"], "not both"),
        ] {
            let result = try SandhiBinary.run(arguments)
            #expect(result.status != 0 && result.status != 1, "\(arguments)")
            #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.contains(problem), "\(arguments): \(result.stderr)")
        }
    }
}

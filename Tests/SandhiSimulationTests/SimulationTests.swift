import Foundation
import Testing
import SandhiSimulation

/// The simulator: deterministic, silent on a correct engine across thousands of seeds with
/// every fault kind, loud on every planted bug, and reaching every named failure case.
@Suite("Deterministic simulation")
struct SimulationTests {
    func run(_ seed: UInt64, bug: SimulationBug? = nil, transactions: Int = 30) -> SimulationReport {
        var options = SimulationOptions(seed: seed)
        options.transactions = transactions
        options.bug = bug
        var world = SimulatedWorld(options)
        return world.run()
    }

    /// A seed whose banks decide alone replays too: the same decisions, the same cases, the same
    /// operator's actions.
    @Test func aSeedWithHeuristicOutcomesReplaysEventForEvent() throws {
        let seed = try #require((UInt64(1)...200).first { run($0).heuristicCases > 1 }, "no seed in 1...200 records two heuristic cases")
        let first = run(seed), second = run(seed)
        #expect(first.cases["mixed outcome recorded", default: 0] == first.heuristicCases)
        #expect(first.traceHash == second.traceHash && first.traceTail == second.traceTail)
        #expect(first.cases == second.cases && first.injected == second.injected)
        #expect(first.heuristicCases == second.heuristicCases && first.linkedTransactions == second.linkedTransactions)
        #expect(first.writtenOffPaise == second.writtenOffPaise && first.violations == second.violations)
    }

    /// The operator's last resort: a compensation that cannot run (the money moved on) ends in
    /// mark-resolved, and the money the mix made stays written off: conservation holds less it.
    @Test func moneyWrittenOffByMarkResolvedIsAccountedFor() throws {
        var tried = 0
        var found: SimulationReport?
        for seed in UInt64(1)...1_000 {
            tried += 1
            let report = run(seed)
            if report.writtenOffPaise != 0 && report.passed { found = report; break }
        }
        let report = try #require(found, "no seed in 1...1000 wrote money off and passed")
        #expect(report.cases["heuristic case settled by mark-resolved", default: 0] > 0)
        print("mark-resolved: seed \(report.seed) (after \(tried) seeds) wrote off \(report.writtenOffPaise) paise; every check holds")
    }

    /// Review finding F13's seed: a bank's heuristic commit agreed with the COMMIT and was
    /// forgotten, the transaction ended and left the log, the coordinator restarted, and then a
    /// copy of the report, delayed since before the FORGET, arrived. Presumed abort took it for
    /// a mixed outcome and the operator "compensated" a transfer that had committed everywhere
    /// (399 paise lost). Since the simulator runs the shipped banks the seed plays out
    /// otherwise (the interleaving itself is `StaleHeuristicReportTests`' in the engine); it
    /// stays here as a seed that once lost money.
    @Test func theSeedThatLostMoneyToAStaleReportPasses() {
        let report = run(31_843)
        #expect(report.passed, "\(report.violations)")
    }

    /// A heuristic commit of a transaction the coordinator has forgotten (presumed abort) is
    /// questioned, and recorded as a mixed outcome only once the bank's answer echoes the
    /// question: seed 1183 goes through both (about one seed in 3,000 does; CI's 2,000 seeds
    /// are not enough to count on it).
    @Test func aHeuristicCommitOfAForgottenTransactionIsConfirmedBeforeItIsRecorded() {
        let report = run(1_183)
        #expect(report.passed, "\(report.violations)")
        #expect(report.cases["heuristic commit of a forgotten transaction questioned", default: 0] > 0)
        #expect(report.cases["mixed outcome confirmed by the answer to its question", default: 0] > 0)
    }

    @Test(arguments: [1, 7, 1_234, 99_999] as [UInt64])
    func aSeedReplaysEventForEvent(seed: UInt64) {
        let first = run(seed), second = run(seed)
        #expect(first.traceHash == second.traceHash)
        #expect(first.traceTail == second.traceTail)
        #expect(first.steps == second.steps && first.virtualTimeUs == second.virtualTimeUs)
        #expect(first.injected == second.injected && first.cases == second.cases)
        #expect(first.committed == second.committed && first.violations == second.violations)
        #expect(run(seed + 1).traceHash != first.traceHash, "another seed, another run")
    }

    /// What CI runs: 2,000 seeds of the mixed workload with every fault kind. A longer run is
    /// `swift run -c release sandhi simulate --seeds 1..100000`.
    @Test func twoThousandSeedsViolateNothingAndReachEveryNamedCase() {
        var template = SimulationOptions(seed: 1)
        template.transactions = 20
        // On every core but one, left to the tests that run beside this one (some of them
        // time what they do): a seed's run does not depend on the thread (`SeedRange`).
        let jobs = max(1, ProcessInfo.processInfo.activeProcessorCount - 1)
        let summary = SeedRange(seeds: 1...2_000, template: template, jobs: jobs).run()
        let (cases, injected, failing, transfers) = (summary.cases, summary.injected, summary.failing, summary.transfers)
        #expect(summary.seeds == 2_000)
        #expect(failing.isEmpty, "\(failing.prefix(3).map { "\($0.replayCommand): \($0.violations[0])" })")
        print("simulation: 2000 seeds, \(transfers) transfers; cases: \(cases.sorted { $0.key < $1.key }); faults: \(injected.sorted { $0.key < $1.key })")
        // Every named case but those too rare for 2,000 seeds: a heuristic report delayed past
        // its FORGET, the transaction's END and the coordinator's restart (the engine's
        // `StaleHeuristicReportTests` play it), and a heuristic commit of a forgotten
        // transaction, questioned and confirmed (about once in 3,000 seeds:
        // `aHeuristicCommitOfAForgottenTransactionIsConfirmedBeforeItIsRecorded` runs one), and a
        // reconciliation record cut off from its sync by a power cut that then landed anyway
        // (a few in 2,000 seeds: records are rare, and most such records are lost).
        let rare: Set = ["stale heuristic report dropped: its question acknowledged",
                         "heuristic commit of a forgotten transaction questioned", "mixed outcome confirmed by the answer to its question",
                         "unsynced reconciliation record landed in a crash"]
        for name in SimulationReport.caseNames where !rare.contains(name) {
            #expect(cases[name, default: 0] > 0, "never hit: \(name)")
        }
        for fault in SimulationReport.faultNames {
            #expect(injected[fault, default: 0] > 0, "never injected: \(fault)")
        }
        print("simulation: 2000 seeds, heuristic decisions \(injected["participant decided a prepared branch alone", default: 0]), "
              + "mixed outcomes recorded \(cases["mixed outcome recorded", default: 0]), "
              + "settled by retry-commit \(cases["heuristic case settled by retry-commit", default: 0]), "
              + "compensate \(cases["heuristic case settled by compensate", default: 0]), "
              + "mark-resolved \(cases["heuristic case settled by mark-resolved", default: 0])")
        print("simulation: 2000 seeds, torn decision-log writes \(injected["torn decision-log write", default: 0]), "
              + "torn participant writes \(injected["torn write at a participant", default: 0]), "
              + "participant fsync failures \(injected["participant fsync failure", default: 0]), "
              + "bridges \(injected["bridge partition", default: 0])")
    }

    /// The invariants each planted bug breaks: a seed counts as catching the bug only when one
    /// of them is among its violations, not when something else went wrong in it.
    static func invariants(brokenBy bug: SimulationBug) -> Set<String> {
        switch bug {
        case .commitBeforeDurable: ["decision-before-commit"]
        case .skipResend: ["liveness", "no-orphans"]
        case .noLocks: ["isolation", "non-negative"]
        case .forgetPreparedOnRestart: ["atomicity", "durability"]
        case .voteAfterFailedFsync: ["durable-vote"]
        case .durableAfterFailedLogFsync: ["decision-before-commit", "durability", "atomicity"]
        case .ignoreHeuristics: ["forget-before-record", "atomicity"]
        }
    }

    @Test(arguments: SimulationBug.allCases)
    func everyPlantedBugIsCaughtWithinAThousandSeeds(bug: SimulationBug) throws {
        let expected = Self.invariants(brokenBy: bug)
        var tried = 0
        var caught: SimulationReport?
        for seed in UInt64(1)...1_000 {
            tried += 1
            let report = run(seed, bug: bug)
            if report.violations.contains(where: { expected.contains($0.invariant) }) { caught = report; break }
        }
        let report = try #require(caught, "\(bug.rawValue) survived 1000 seeds")
        let violation = try #require(report.violations.first { expected.contains($0.invariant) })
        print("planted bug \(bug.rawValue): caught after \(tried) seed(s), seed \(report.seed): \(violation)")
        #expect(report.replayCommand == "sandhi simulate --seed \(report.seed) --bug \(bug.rawValue)")
        #expect(!report.traceTail.isEmpty)
    }
}

/// Seeds run on several threads add up to what they add up to on one.
@Suite("Seeds on several threads")
struct SeedRangeTests {
    @Test func aRangeSumsTheSameOnOneThreadAndOnFour() {
        var template = SimulationOptions(seed: 1)
        template.transactions = 10
        let one = SeedRange(seeds: 1...40, template: template, jobs: 1).run()
        let four = SeedRange(seeds: 1...40, template: template, jobs: 4).run()
        #expect(one.seeds == 40 && four.seeds == 40)
        #expect(one.transfers == four.transfers && one.committed == four.committed)
        #expect(one.cases == four.cases && one.injected == four.injected)
        #expect(one.writtenOffPaise == four.writtenOffPaise && one.failing.map(\.seed) == four.failing.map(\.seed))
    }
}

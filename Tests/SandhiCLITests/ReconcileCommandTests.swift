import Foundation
import SandhiTestSupport
import Testing

/// `sandhi demo run heuristic` makes a real mixed outcome; `sandhi reconcile` lists, shows and
/// settles it; bad input is one line and changes nothing; `sandhi check` agrees at every step.
@Suite struct ReconcileCommandTests {
    @Test func aMixedOutcomeIsListedShownRefusedWhenWrongAndSettledWithAnAudit() throws {
        let temporary = TemporaryDirectory("sandhi-reconcile"); defer { temporary.remove() }
        let data = temporary.appending("data")
        let demo = try SandhiBinary.run(["demo", "run", "heuristic", "--data", data])
        #expect(demo.status == 0, "\(demo.stdout)\n\(demo.stderr)")
        #expect(demo.stdout.contains("heuristic: the logged decision is"))
        #expect(demo.stdout.contains("invariants: hold, with the case in the reconciliation queue ✓"))

        let list = try SandhiBinary.run(["reconcile", "list", "--data", data, "--json"])
        #expect(list.status == 0)
        let lines = list.stdout.split(separator: "\n")
        try #require(lines.count == 1, "\(list.stdout)")
        let listed = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as! [String: Any]
        let tx = try #require(listed["transaction"] as? String)
        let decision = try #require(listed["decision"] as? String)
        #expect(listed["settled"] as? Bool == false)
        let action = decision == "commit" ? "retry-commit" : "compensate"
        let wrong = decision == "commit" ? "compensate" : "retry-commit"

        let show = try SandhiBinary.run(["reconcile", "show", tx, "--data", data])
        #expect(show.status == 0)
        #expect(show.stdout.contains("sbi       heuristic"))
        #expect(show.stdout.contains("what each action would do (dry run):"))

        // The books are out while the case is open; check says why and still passes.
        let checkOpen = try SandhiBinary.run(["check", "--data", data])
        #expect(checkOpen.status == 0, "\(checkOpen.stdout)")
        #expect(checkOpen.stdout.contains("1 unsettled case(s)"))

        // Bad input: one line, non-zero, nothing recorded.
        let journal = temporary.appending("data/reconciliation.log")
        let before = try Data(contentsOf: URL(fileURLWithPath: journal))
        for arguments in [
            ["reconcile", "resolve", tx, "--action", wrong, "--note", "no"],
            ["reconcile", "resolve", tx, "--action", action, "--note", "   "],
            ["reconcile", "resolve", tx, "--action", "undo", "--note", "why"],
            ["reconcile", "resolve", "T-99.1", "--action", action, "--note", "why"],
            ["reconcile", "resolve", "not-a-tx", "--action", action, "--note", "why"],
            ["reconcile", "show", "T-99.1"],
        ] {
            let result = try SandhiBinary.run(arguments + ["--data", data])
            #expect(result.status != 0, "\(arguments) succeeded")
            #expect(result.stderr.split(separator: "\n").count == 1 && result.stderr.hasPrefix("sandhi: "), "\(arguments): \(result.stderr)")
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: journal)) == before, "a refused action changed the record")

        let dry = try SandhiBinary.run(["reconcile", "resolve", tx, "--action", action, "--note", "preview", "--dry-run", "--data", data])
        #expect(dry.status == 0 && dry.stdout.hasPrefix("dry run: \(action) would run a new transaction: sbi:"), "\(dry.stdout)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: journal)) == before)

        let resolve = try SandhiBinary.run(["reconcile", "resolve", tx, "--action", action, "--note", "sbi's operator acted alone",
                                            "--operator", "asha", "--data", data])
        #expect(resolve.status == 0, "\(resolve.stdout)\n\(resolve.stderr)")
        #expect(resolve.stdout.contains("\(action) by asha: succeeded"))
        #expect(resolve.stdout.contains("invariants: ok"))

        let settled = try SandhiBinary.run(["reconcile", "list", "--data", data])
        #expect(settled.stdout.hasPrefix("no unsettled heuristic cases (1 settled"))
        let all = try SandhiBinary.run(["reconcile", "show", tx, "--json", "--data", data])
        let shown = try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as! [String: Any]
        #expect(shown["settled"] as? Bool == true)
        let actions = try #require(shown["actions"] as? [[String: Any]])
        #expect(actions.map { $0["operator_name"] as? String } == ["asha", "asha"])
        #expect(actions.first?["note"] as? String == "sbi's operator acted alone")
        let check = try SandhiBinary.run(["check", "--data", data, "--json"])
        #expect(check.status == 0, "\(check.stdout)")
        #expect(check.stdout.contains("\"unsettled_heuristic_cases\":0"))
    }
}

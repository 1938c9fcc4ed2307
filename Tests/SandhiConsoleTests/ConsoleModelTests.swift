import SandhiConsole
import SandhiEngine
import SandhiTerminalUI
import Testing

/// The console's update function: keys and events in, state and commands out.
@Suite struct ConsoleModelTests {
    typealias F = ConsoleFixture

    func keys(_ model: inout ConsoleModel, _ keys: [Key]) -> [ConsoleCommand] {
        keys.flatMap { model.update(.key($0)) }
    }

    @Test func screensSwitchByNumberAndTabAndQQuits() {
        var model = F.busy().model()
        #expect(model.screen == .transactions)
        _ = keys(&model, [.character("3")])
        #expect(model.screen == .waits)
        _ = keys(&model, [.tab, .tab])
        #expect(model.screen == .reconcile)
        _ = keys(&model, [.backTab])
        #expect(model.screen == .participants)
        #expect(keys(&model, [.character("q")]) == [.quit])
        #expect(keys(&model, [.control("c")]) == [.quit])
    }

    @Test func aDeadlockVictimOfTheOperatorsChoiceIsAbortedAfterConfirmation() throws {
        var model = F.busy().model()
        _ = keys(&model, [.character("3")])
        // The engine's pick is one member; the operator takes the other (the second candidate).
        let deadlock = try #require(model.view?.coordinator.unresolvedDeadlocks.first)
        let other = try #require(deadlock.candidates.map(\.transaction).first { $0 != deadlock.victim })
        let index = try #require(deadlock.candidates.firstIndex { $0.transaction == other })
        _ = keys(&model, [.home] + Array(repeating: Key.down, count: index))
        #expect(keys(&model, [.character("a")]).isEmpty, "a asks first")
        #expect(model.popup == .confirmAbort(other, reason: "aborted from the console"))
        #expect(keys(&model, [.character("n")]).isEmpty)
        #expect(model.popup == nil)
        _ = keys(&model, [.character("a")])
        #expect(keys(&model, [.character("y")]) == [.forceAbort(other, note: "aborted from the console")])
    }

    @Test func aReconcileActionWithoutAReasonIsRefusedAndWithOneIsConfirmedFirst() {
        var model = F.busy().model()
        _ = keys(&model, [.character("5")])
        #expect(keys(&model, [.enter]).isEmpty)
        #expect(model.popup == .reconcile(F.tx(6), .choose(selected: 0)))
        _ = keys(&model, [.enter]) // preview retry-commit
        #expect(model.popup == .reconcile(F.tx(6), .preview(.retryCommit)))
        _ = keys(&model, [.enter]) // reason
        #expect(keys(&model, [.character(" "), .enter]).isEmpty, "a blank reason is no reason")
        #expect(model.notice?.text == "a written reason is required")
        if case .reconcile(_, .reason) = model.popup {} else { Issue.record("left the reason step: \(String(describing: model.popup))") }
        _ = keys(&model, "sbi lost it".map { Key.character($0) })
        _ = keys(&model, [.enter])
        #expect(model.popup == .reconcile(F.tx(6), .confirm(.retryCommit, note: "sbi lost it")))
        #expect(keys(&model, [.character("y")]) == [.resolveHeuristic(F.tx(6), action: .retryCommit, note: "sbi lost it")])
        #expect(model.popup == nil)
        #expect(model.log.lines.last?.isOperator == true)
    }

    @Test func anImpossibleActionIsRefusedAtThePreview() {
        var model = F.busy().model()
        _ = keys(&model, [.character("5"), .enter, .character("2")]) // compensate
        _ = keys(&model, [.enter])
        // hdfc's operations are known here, so compensate is possible; mark-resolved always is.
        if case .reconcile(_, .reason(.compensate, _)) = model.popup {} else { Issue.record("\(String(describing: model.popup))") }
    }

    @Test func readOnlyDisablesEveryMutatingKeyAndSaysSo() {
        var model = F.busy().model(readOnly: true)
        for key in ["f", "a", "+", "-", "w"] {
            #expect(keys(&model, [.character(Character(key))]).isEmpty, "\(key)")
            #expect(model.popup == nil)
        }
        #expect(model.notice?.text.hasPrefix("read-only console") == true)
        _ = keys(&model, [.character("5"), .enter])
        #expect(model.popup == nil, "no reconcile flow in read-only mode")
    }

    @Test func theFaultMenuInjectsTheChosenFault() {
        var model = F.busy().model()
        _ = keys(&model, [.character("4"), .down, .character("f")]) // icici selected
        #expect(model.popup == .faults(selected: 0))
        #expect(model.faultMenu().first == "crash icici")
        #expect(keys(&model, [.enter]) == [.injectFault("crash icici")])
    }

    @Test func filterNarrowsTheRowsAndEscClearsIt() {
        var model = F.busy().model()
        _ = keys(&model, [.character("/")] + "1.2".map { Key.character($0) } + [.enter])
        #expect(model.filter == "1.2")
        #expect(model.filterInput == nil)
        _ = keys(&model, [.escape])
        #expect(model.filter == "")
    }

    @Test func pausingFreezesTheDisplayButNotTheMetrics() {
        var model = F.busy().model()
        _ = keys(&model, [.character(" ")])
        #expect(model.paused)
        let frozen = model.view?.takenAtUs
        var later = F.busy()
        later.feed(.begin(F.tx(9), branches: F.transfer(1, from: F.hdfc, "z", to: F.sbi, "z")))
        _ = model.update(.snapshot(later.view))
        #expect(model.view?.takenAtUs == frozen)
    }

    @Test func headerFiguresComeFromTheEvents() {
        let model = F.busy().model()
        // T-1.1 finished committed within the window.
        #expect(model.metrics.transfersPerSecond > 0)
        #expect(model.metrics.p50Us > 0)
    }
}

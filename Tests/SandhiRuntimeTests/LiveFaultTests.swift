import SandhiEngine
import SandhiParticipants
import SandhiRuntime
import SandhiTestSupport
import Testing

/// Live faults on a real node over temporary SQLite banks: each fault acts, and once it ends
/// the coordinator's resends and prepare deadline, the participants' restart path and
/// inquiries, and recovery leave every bank consistent (`InvariantAudit`: conservation,
/// atomicity, no prepared branches, no locks, nothing unfinished in the log).
@Suite struct LiveFaultTests {
    typealias B = ThreeBanks

    /// A node over three fresh banks, its events recorded.
    static func start(prepareTimeoutMs: UInt64 = 5_000) async throws -> (ThreeBanks, EventRecorder, SandhiNode) {
        let banks = try ThreeBanks(prepareTimeoutMs: prepareTimeoutMs)
        let events = EventRecorder()
        do {
            return (banks, events, try await banks.start(events: events))
        } catch {
            banks.remove()
            throw error
        }
    }

    /// Whether an event so far matches.
    static func saw(_ events: EventRecorder, _ match: (EngineEvent.Kind) -> Bool) -> Bool {
        events.all.contains { match($0.kind) }
    }

    /// Holds everything sent to sbi for `delayMs`, starts `branches` and waits until an event
    /// matches `until`: the transfer is then caught where the test wants it.
    static func transferWithSbiHeld(_ node: SandhiNode, _ events: EventRecorder, delayMs: UInt64, _ branches: [Branch],
                                    until: @escaping (EngineEvent.Kind) -> Bool) async throws -> Task<TransferResult, Error> {
        try await node.inject(.delayMessages(B.sbi, delayMs: delayMs))
        let transfer = Task { try await node.driver.transfer(branches) }
        #expect(await eventually { saw(events, until) })
        return transfer
    }

    /// `count` transfers of ₹1, one after another: their outcomes.
    static func client(_ node: SandhiNode, _ count: Int, from: (ParticipantID, AccountID),
                       to: (ParticipantID, AccountID)) async throws -> [Outcome] {
        var outcomes: [Outcome] = []
        for _ in 0..<count {
            outcomes.append(try await node.driver.transfer(B.move(.rupees(1), from: from, to: to)).outcome)
        }
        return outcomes
    }

    /// Waits until nothing is in flight, stops the node and checks every invariant from storage.
    static func settleAndAudit(_ node: SandhiNode, _ banks: ThreeBanks) async throws {
        #expect(await eventually { node.driver.inFlightCount == 0 }, "transactions still in flight after the faults ended")
        node.stop()
        let audit = try banks.audit()
        #expect(audit.violations == [])
        #expect(audit.total == .rupees(3_000))
    }

    /// The fault events, in order: `injected crash icici`, `cleared restart icici`.
    static func faultEvents(_ events: EventRecorder) -> [String] {
        events.all.compactMap { event in
            switch event.kind {
            case .faultInjected(let fault): return "injected \(fault)"
            case .faultCleared(let fault): return "cleared \(fault)"
            default: return nil
            }
        }
    }

    static func refusal(_ node: SandhiNode, _ fault: LiveFault) async -> String? {
        do {
            try await node.inject(fault)
            return nil
        } catch {
            return error.description
        }
    }

    // MARK: - Participants

    @Test func aParticipantCrashedWhileTransfersRunRestartsAndEverythingFinishes() async throws {
        let (banks, events, node) = try await Self.start(prepareTimeoutMs: 300); defer { banks.remove() }
        async let toIcici = Self.client(node, 15, from: (B.hdfc, B.alice), to: (B.icici, B.bob))
        async let fromIcici = Self.client(node, 15, from: (B.icici, B.bob), to: (B.sbi, B.carol))
        async let elsewhere = Self.client(node, 15, from: (B.sbi, B.carol), to: (B.hdfc, B.alice))
        #expect(await eventually { events.all.filter { if case .finished = $0.kind { true } else { false } }.count >= 5 })
        try await node.inject(.crashParticipant(B.icici))
        #expect(node.activeFaults == [.crashParticipant(B.icici)])
        // The crash acts: what is sent to icici is lost, and a transfer waiting for its vote
        // aborts at the prepare deadline.
        #expect(await eventually {
            Self.saw(events) { if case .prepareTimedOut(_, let silent) = $0 { silent == [B.icici] } else { false } }
        })
        #expect(node.driver.faultCounters.lost > 0)
        try await node.inject(.restartParticipant(B.icici))
        let outcomes = try await toIcici + fromIcici + elsewhere
        #expect(outcomes.count == 45)
        #expect(outcomes.contains(.committed))
        #expect(outcomes.contains { $0.abortCause == .prepareTimeout })
        // icici works on after its restart.
        let after = try await node.driver.transfer(B.move(.rupees(1), from: (B.hdfc, B.alice), to: (B.icici, B.bob)))
        #expect(after.outcome == .committed)
        #expect(node.activeFaults == [])
        #expect(Self.faultEvents(events) == ["injected crash icici", "cleared restart icici"])
        try await Self.settleAndAudit(node, banks)
    }

    @Test func aParticipantCrashedWithAPreparedBranchRestoresItAndTheTransferCommits() async throws {
        let (banks, events, node) = try await Self.start(prepareTimeoutMs: 5_000); defer { banks.remove() }
        // sbi's PREPARE is held, so the transfer waits in phase one with icici prepared.
        let transfer = try await Self.transferWithSbiHeld(node, events, delayMs: 2_000, B.move(.rupees(30), from: (B.icici, B.bob), to: (B.sbi, B.carol))) {
            if case .voteReceived(_, B.icici, .yes, _) = $0 { true } else { false }
        }
        try await node.inject(.crashParticipant(B.icici))
        try await node.inject(.restartParticipant(B.icici))
        let result = try await transfer.value
        #expect(result.outcome == .committed)
        // The restarted icici said YES again for the branch it restored from its bank.
        #expect(events.of(result.transaction).contains { if case .lateMessage(_, B.icici, let what) = $0 { what.contains("YES") } else { false } })
        try await node.inject(.heal(B.sbi))
        try await Self.settleAndAudit(node, banks)
        #expect(try banks.balance(B.icici, B.bob) == .rupees(970))
        #expect(try banks.balance(B.sbi, B.carol) == .rupees(1_030))
    }

    // MARK: - Links

    @Test func aPartitionedParticipantsTransferAbortsAtThePrepareDeadlineAndHealingRollsItBack() async throws {
        let (banks, events, node) = try await Self.start(prepareTimeoutMs: 300); defer { banks.remove() }
        try await node.inject(.partition(B.sbi))
        #expect(node.activeFaults == [.partition(B.sbi)])
        let cut = try await node.driver.transfer(B.move(.rupees(10), from: (B.hdfc, B.alice), to: (B.sbi, B.carol)), answerWhen: .decided)
        #expect(cut.outcome.abortCause == .prepareTimeout)
        // Its ROLLBACK to sbi is resent while the partition stands, and never acknowledged.
        #expect(await eventually {
            events.of(cut.transaction).contains { if case .phaseTwoSent(_, B.sbi, false, let attempt) = $0 { attempt >= 2 } else { false } }
        })
        #expect(!events.of(cut.transaction).contains { if case .acknowledged(_, B.sbi, _) = $0 { true } else { false } })
        // Transfers that do not touch sbi go on.
        let other = try await node.driver.transfer(B.move(.rupees(10), from: (B.hdfc, B.alice), to: (B.icici, B.bob)))
        #expect(other.outcome == .committed)
        try await node.inject(.heal(B.sbi))
        #expect(await eventually { events.of(cut.transaction).contains { if case .finished = $0 { true } else { false } } })
        #expect(Self.faultEvents(events) == ["injected partition sbi", "cleared heal sbi"])
        try await Self.settleAndAudit(node, banks)
    }

    /// Ordered by events, not by time, so that a slow machine cannot let sbi's COMMIT through
    /// before the partition: the decision waits for icici, whose PREPARE a delay holds, until
    /// sbi (which has voted) has a delay of its own; only then is icici let go. Once sbi is
    /// cut off its delay ends, losing what it held: from then on only a resend can finish.
    @Test func aPartitionAfterTheDecisionHoldsPhaseTwoAndResendsFinishItOnceHealed() async throws {
        let (banks, events, node) = try await Self.start(prepareTimeoutMs: 60_000); defer { banks.remove() }
        let holdMs = LiveFault.maxDelayMs
        try await node.inject(.delayMessages(B.icici, delayMs: holdMs))
        let branches = [Branch(participant: B.hdfc, operations: [.debit(account: B.alice, amount: .rupees(20))]),
                        Branch(participant: B.sbi, operations: [.credit(account: B.carol, amount: .rupees(10))]),
                        Branch(participant: B.icici, operations: [.credit(account: B.bob, amount: .rupees(10))])]
        let transfer = Task { try await node.driver.transfer(branches) }
        #expect(await eventually { Self.saw(events) { if case .voteReceived(_, B.sbi, _, _) = $0 { true } else { false } } })
        try await node.inject(.delayMessages(B.sbi, delayMs: holdMs))
        try await node.inject(.heal(B.icici)) // its PREPARE goes now; its vote completes the decision
        #expect(await eventually { Self.saw(events) { if case .decisionDurable = $0 { true } else { false } } })
        try await node.inject(.partition(B.sbi))
        let lostBefore = node.driver.faultCounters.lost
        try await node.inject(.delayMessages(B.sbi, delayMs: 0))
        #expect(node.driver.faultCounters.lost > lostBefore, "the COMMIT the delay held is lost to the partition")
        let tx = try #require(events.all.lazy.compactMap { if case .decisionDurable(let tx, _, _) = $0.kind { tx } else { nil } }.first)
        let highestAttempt = { events.of(tx).compactMap { if case .phaseTwoSent(_, B.sbi, true, let attempt) = $0 { attempt } else { nil } }.max() ?? UInt32(0) }
        let attemptWhenCut = highestAttempt()
        #expect(await eventually { highestAttempt() > attemptWhenCut }, "COMMIT resent to sbi while it is cut off")
        #expect(!events.of(tx).contains { if case .acknowledged(_, B.sbi, _) = $0 { true } else { false } })
        #expect(node.activeFaults == [.partition(B.sbi)])
        try await node.inject(.heal(B.sbi))
        let result = try await transfer.value
        #expect(result.outcome == .committed)
        try await Self.settleAndAudit(node, banks)
        #expect(try banks.balance(B.sbi, B.carol) == .rupees(1_010))
        #expect(try banks.balance(B.icici, B.bob) == .rupees(1_010))
    }

    @Test func losingAThirdOfTheMessagesToAParticipantStillEndsEveryTransferConsistently() async throws {
        let (banks, _, node) = try await Self.start(prepareTimeoutMs: 300); defer { banks.remove() }
        try await node.inject(.dropMessages(B.icici, perMille: 300))
        async let toIcici = Self.client(node, 10, from: (B.hdfc, B.alice), to: (B.icici, B.bob))
        async let fromIcici = Self.client(node, 10, from: (B.icici, B.bob), to: (B.sbi, B.carol))
        let outcomes = try await toIcici + fromIcici
        #expect(outcomes.count == 20)
        #expect(outcomes.contains(.committed))
        #expect(node.driver.faultCounters.lost > 0)
        try await node.inject(.dropMessages(B.icici, perMille: 0))
        #expect(node.activeFaults == [])
        try await Self.settleAndAudit(node, banks)
    }

    @Test func delayedMessagesRaiseTheLatencyByAtLeastTheDelay() async throws {
        let (banks, _, node) = try await Self.start(); defer { banks.remove() }
        let move = B.move(.rupees(1), from: (B.hdfc, B.alice), to: (B.sbi, B.carol))
        try await node.inject(.delayMessages(B.sbi, delayMs: 200))
        let decided = try await node.driver.transfer(move, answerWhen: .decided)
        let finished = try await node.driver.transfer(move, answerWhen: .finished)
        #expect(decided.outcome == .committed)
        #expect(finished.outcome == .committed)
        // The PREPARE is held before the vote; waiting for the acknowledgements, the COMMIT too.
        #expect(decided.latencyUs >= 200_000)
        #expect(finished.latencyUs >= 400_000)
        #expect(node.driver.faultCounters.delayed >= 3)
        try await node.inject(.heal(B.sbi))
        try await Self.settleAndAudit(node, banks)
    }

    // MARK: - The coordinator

    @Test func aFailedLogFsyncHaltsTheCoordinatorAndARestartRecovers() async throws {
        let (banks, events, node) = try await Self.start(); defer { banks.remove() }
        let firstEpoch = node.recovery.epoch
        try await node.inject(.failNextLogSync)
        #expect(node.activeFaults == [.failNextLogSync])
        await #expect(throws: CoordinatorError.self) {
            try await node.driver.transfer(B.move(.rupees(10), from: (B.hdfc, B.alice), to: (B.icici, B.bob)))
        }
        #expect(node.driver.haltReason?.contains("durability is unknown") == true)
        // A halted coordinator takes no fault but a restart.
        #expect(await Self.refusal(node, .partition(B.sbi))?.contains("restart it first") == true)
        let report = try await node.restartCoordinator()
        #expect(report.epoch == firstEpoch + 1)
        #expect(report.resolved.count == 1) // the transfer whose COMMIT record's durability was unknown
        #expect(node.activeFaults == [])
        let after = try await node.driver.transfer(B.move(.rupees(10), from: (B.hdfc, B.alice), to: (B.icici, B.bob)))
        #expect(after.outcome == .committed)
        #expect(after.transaction.epoch == report.epoch)
        #expect(Self.faultEvents(events) == ["injected fail-fsync", "injected crash coordinator", "cleared restart coordinator"])
        try await Self.settleAndAudit(node, banks)
    }

    @Test func aCoordinatorCrashedWithTransactionsInDoubtRestartsAndRecoveryResolvesThem() async throws {
        let (banks, events, node) = try await Self.start(prepareTimeoutMs: 30_000); defer { banks.remove() }
        // Everything to sbi is held 5 s: the crash must come while the decided COMMIT is still
        // held, and a loaded machine took more than a second to get there (the COMMIT was then
        // delivered first and only one transaction was in doubt).
        try await node.inject(.delayMessages(B.sbi, delayMs: 5_000))
        // Decided: its COMMIT record is durable, and the COMMIT to sbi is still held when the crash comes.
        let decided = try await node.driver.transfer(B.move(.rupees(100), from: (B.hdfc, B.alice), to: (B.sbi, B.carol)), answerWhen: .decided)
        #expect(decided.outcome == .committed)
        // Undecided: prepared at icici, its PREPARE to sbi still held.
        let undecided = Task { try await node.driver.transfer(B.move(.rupees(7), from: (B.icici, B.bob), to: (B.sbi, B.carol))) }
        #expect(await eventually { Self.saw(events) { if case .voteReceived(_, B.icici, .yes, _) = $0 { true } else { false } } })
        try await node.inject(.crashCoordinator)
        #expect(node.activeFaults.contains(.crashCoordinator))
        await #expect(throws: CoordinatorError.self) { try await undecided.value }
        #expect(await Self.refusal(node, .crashParticipant(B.icici))?.contains("the coordinator is down") == true)
        #expect(await Self.refusal(node, .crashCoordinator) == "the coordinator is already down")

        try await node.inject(.restartCoordinator)
        let resolved = node.recovery.resolved
        try #require(resolved.count == 2)
        #expect(resolved[0].transaction == decided.transaction)
        #expect(resolved[0].outcome == .committed)
        #expect(resolved[1].outcome.abortCause == .presumedAbort)
        #expect(Self.saw(events) { if case .recovered(decided.transaction, .committed, _) = $0 { true } else { false } })
        #expect(node.activeFaults == [])
        #expect(Self.faultEvents(events) == ["injected delay sbi 5000ms", "injected crash coordinator", "cleared restart coordinator"])
        try await Self.settleAndAudit(node, banks)
        #expect(try banks.balance(B.hdfc, B.alice) == .rupees(900))
        #expect(try banks.balance(B.sbi, B.carol) == .rupees(1_100))
        #expect(try banks.balance(B.icici, B.bob) == .rupees(1_000))
    }

    @Test func faultsThatCannotApplyNowAreRefusedAndChangeNothing() async throws {
        let (banks, events, node) = try await Self.start(); defer { banks.remove() }
        try await node.inject(.crashParticipant(B.icici))
        let refusals: [(LiveFault, String)] = [
            (.crashParticipant(B.icici), "icici is already down"),
            (.restartParticipant(B.sbi), "sbi is not down"),
            (.heal(B.sbi), "sbi has no partition, loss or delay to heal"),
            (.dropMessages(B.sbi, perMille: 0), "sbi loses no messages"),
            (.delayMessages(B.sbi, delayMs: 0), "sbi has no delay"),
            (.dropMessages(B.sbi, perMille: 1_001), "loss of 1001 in 1,000 messages: at most 1,000"),
        ]
        for (fault, expected) in refusals {
            #expect(await Self.refusal(node, fault) == expected, "\(fault)")
        }
        #expect(node.activeFaults == [.crashParticipant(B.icici)])
        try await node.inject(.partition(B.sbi))
        try await node.inject(.healAll) // heals sbi's link and restarts icici
        #expect(node.activeFaults == [])
        #expect(Self.faultEvents(events) == ["injected crash icici", "injected partition sbi", "cleared heal all", "cleared restart icici"])
        let after = try await node.driver.transfer(B.move(.rupees(1), from: (B.icici, B.bob), to: (B.sbi, B.carol)))
        #expect(after.outcome == .committed)
        try await Self.settleAndAudit(node, banks)
    }

    // MARK: - The text form

    static let participants = [B.hdfc, B.icici, B.sbi]

    @Test func theTextFormReadsEveryFaultAndWritesItBack() throws {
        let forms: [(String, LiveFault)] = [
            ("crash icici", .crashParticipant(B.icici)),
            ("restart icici", .restartParticipant(B.icici)),
            ("partition sbi", .partition(B.sbi)),
            ("heal sbi", .heal(B.sbi)),
            ("drop icici 30%", .dropMessages(B.icici, perMille: 300)),
            ("drop icici 2.5%", .dropMessages(B.icici, perMille: 25)),
            ("drop icici 0%", .dropMessages(B.icici, perMille: 0)),
            ("delay sbi 200ms", .delayMessages(B.sbi, delayMs: 200)),
            ("fail-fsync", .failNextLogSync),
            ("crash coordinator", .crashCoordinator),
            ("restart coordinator", .restartCoordinator),
            ("heal all", .healAll),
        ]
        for (text, fault) in forms {
            #expect(try LiveFault.parse(text, participants: Self.participants) == fault, "\(text)")
            #expect(fault.description == text)
        }
        // Other spellings of the same faults.
        let spellings: KeyValuePairs<String, LiveFault> = [
            "  DROP   icici 0.3 ": .dropMessages(B.icici, perMille: 300),
            "drop icici 100%": .dropMessages(B.icici, perMille: 1_000),
            "drop icici 1": .dropMessages(B.icici, perMille: 1_000),
            "drop hdfc 0.025": .dropMessages(B.hdfc, perMille: 25),
            "delay sbi 1.5s": .delayMessages(B.sbi, delayMs: 1_500),
            "delay sbi 60s": .delayMessages(B.sbi, delayMs: 60_000),
            "Crash Coordinator": .crashCoordinator,
            "clear": .healAll,
        ]
        for (text, fault) in spellings {
            #expect(try LiveFault.parse(text, participants: Self.participants) == fault, "\(text)")
        }
    }

    @Test func eachBadFaultCommandGetsOneLineSayingWhatIsWrong() {
        let bad: [(String, String)] = [
            ("", "empty fault command: want one of crash, restart, partition, heal, drop, delay, fail-fsync, clear"),
            ("explode icici", "unknown fault 'explode': want one of crash"),
            ("crash", "'crash' takes 1 argument: crash PARTICIPANT | crash coordinator"),
            ("crash yes-bank", "unknown participant 'yes-bank': known are hdfc, icici, sbi"),
            ("heal", "'heal' takes 1 argument"),
            ("partition icici sbi", "'partition' takes 1 argument"),
            ("drop icici", "'drop' takes 2 arguments: drop PARTICIPANT RATE, like drop icici 30%"),
            ("drop icici 130%", "bad rate '130%': want a percentage from 0% to 100%"),
            ("drop icici 30", "bad rate '30'"),
            ("drop icici -5%", "bad rate '-5%'"),
            ("drop icici 2.55%", "bad rate '2.55%'"),
            ("drop icici 5.%", "bad rate '5.%'"),
            ("drop icici lots", "bad rate 'lots'"),
            ("delay sbi 200", "bad delay '200': want a duration from 0ms to 60s, like 200ms or 1.5s"),
            ("delay sbi 61s", "bad delay '61s'"),
            ("delay sbi 0.5ms", "bad delay '0.5ms'"),
            ("delay sbi fast", "bad delay 'fast'"),
            ("delay axis 20ms", "unknown participant 'axis'"),
            ("fail-fsync now", "'fail-fsync' takes 0 arguments"),
            ("clear everything", "'clear' takes 0 arguments"),
        ]
        for (text, expected) in bad {
            do {
                let fault = try LiveFault.parse(text, participants: Self.participants)
                Issue.record("'\(text)' was read as \(fault)")
            } catch {
                #expect(error.description.hasPrefix(expected), "'\(text)': \(error)")
                #expect(!error.description.contains("\n"))
            }
        }
    }
}

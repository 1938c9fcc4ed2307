import SandhiEngine
import SandhiParticipants
import SandhiRuntime
import SandhiTestSupport
import Testing

@Suite struct CoordinatorDriverTests {
    typealias B = ThreeBanks

    @Test func aTransferCommitsAtEveryBankAndLogsItsDecision() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let events = EventRecorder()
        let node = try await banks.start(events: events)
        let result = try await node.driver.transfer(B.move(.rupees(250), from: (B.hdfc, B.alice), to: (B.sbi, B.carol)))
        node.stop()
        #expect(result.outcome == Outcome.committed)
        #expect(try banks.balance(B.hdfc, B.alice) == .rupees(750))
        #expect(try banks.balance(B.sbi, B.carol) == .rupees(1_250))
        let log = try DecisionLogStore.read(directory: banks.directory.coordinatorPath)
        #expect(log.records.contains { $0.record == .commit(transaction: result.transaction, participants: [B.hdfc, B.sbi]) })
        #expect(log.unfinishedCommits.isEmpty)
        // The decision was durable before the first COMMIT left for a participant.
        let kinds = events.of(result.transaction)
        let durable = try #require(kinds.firstIndex { if case .decisionDurable = $0 { return true } else { return false } })
        let firstCommit = try #require(kinds.firstIndex { if case .phaseTwoSent(_, _, true, _) = $0 { return true } else { return false } })
        #expect(durable < firstCommit)
    }

    @Test func aNoVoteAbortsEverywhereAndLeavesNoRecord() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        let result = try await node.driver.transfer(B.move(.rupees(5_000), from: (B.hdfc, B.alice), to: (B.sbi, B.carol)))
        node.stop()
        guard case .aborted(let reason, let cause, let refusal) = result.outcome else {
            Issue.record("expected an abort, got \(result.outcome)")
            return
        }
        #expect(reason.contains("hdfc voted NO: insufficient funds"))
        #expect(cause == .participantRefused)
        #expect(refusal == .insufficientFunds(ResourceID(participant: B.hdfc, account: B.alice), balance: .rupees(1_000), debit: .rupees(5_000)))
        #expect(try banks.balance(B.hdfc, B.alice) == .rupees(1_000))
        #expect(try banks.balance(B.sbi, B.carol) == .rupees(1_000))
        let log = try DecisionLogStore.read(directory: banks.directory.coordinatorPath)
        #expect(!log.records.contains { if case .commit = $0.record { return true } else { return false } }) // presumed abort
        for bank in [B.hdfc, B.sbi] { #expect(try banks.bank(bank).inDoubt().isEmpty) }
    }

    @Test func concurrentTransfersConserveMoney() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        let accounts: [(ParticipantID, AccountID)] = [(B.hdfc, B.alice), (B.icici, B.bob), (B.sbi, B.carol)]
        let outcomes = await withTaskGroup(of: Outcome?.self) { group in
            for index in 0..<60 {
                group.addTask {
                    let from = accounts[index % 3], to = accounts[(index + 1) % 3]
                    return try? await node.driver.transfer(B.move(.rupees(Int64(1 + index)), from: from, to: to)).outcome
                }
            }
            var outcomes: [Outcome?] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        node.stop()
        #expect(outcomes.allSatisfy { $0 != nil })
        #expect(outcomes.contains(Outcome.committed))
        let audit = try banks.audit()
        #expect(audit.violations == [])
        #expect(audit.total == .rupees(3_000))
    }

    @Test func aFailedLogSyncHaltsTheCoordinatorAndRecoveryDecides() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        node.driver.failNextLogSync()
        do {
            _ = try await node.driver.transfer(B.move(.rupees(10), from: (B.hdfc, B.alice), to: (B.icici, B.bob)))
            Issue.record("a transfer whose decision could not be made durable must not report an outcome")
        } catch {
            #expect(error is CoordinatorError)
        }
        #expect(node.driver.haltReason?.contains("durability is unknown") == true)
        node.stop()
        // Whatever reached the disk decides; either way every bank agrees and no money moved out of thin air.
        let restarted = try await banks.start()
        #expect(restarted.recovery.resolved.count == 1)
        restarted.stop()
        let audit = try banks.audit()
        #expect(audit.violations == [])
    }

    @Test func aSecondNodeOnTheSameDirectoryIsRefused() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        defer { node.stop() }
        do {
            _ = try await banks.start()
            Issue.record("a second node started on a locked directory")
        } catch {
            #expect("\(error)".contains("another sandhi process"))
        }
    }
}

@Suite struct CleanShutdownTests {
    typealias B = ThreeBanks

    /// Answered at the decision, phase two still running: a clean stop finishes it, so the log
    /// holds no unfinished COMMIT and `sandhi check` passes without a recovery.
    @Test func aCleanStopFinishesPhaseTwoOfDecidedTransactions() async throws {
        let banks = try ThreeBanks(); defer { banks.remove() }
        let node = try await banks.start()
        for amount in 1...20 {
            let result = try await node.driver.transfer(
                B.move(.rupees(Int64(amount)), from: (B.hdfc, B.alice), to: (B.icici, B.bob)), answerWhen: .decided)
            #expect(result.outcome == Outcome.committed)
        }
        node.stop()
        let audit = try banks.audit()
        #expect(audit.violations == [])
        #expect(audit.unfinishedCommits.isEmpty)
        #expect(try banks.balance(B.icici, B.bob) == .rupees(1_210))
    }
}

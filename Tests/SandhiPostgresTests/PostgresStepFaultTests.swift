import Dispatch
import NIOCore
import NIOPosix
import SandhiEngine
import SandhiPostgres
import SandhiTestSupport
import Synchronization
import Testing

/// Issue 13, item 6: a fault at every step of staging a group and of splitting one (and of the
/// rest of phase two), made by the bank's own fault hook on the real code path, never by SQL
/// that imitates what the code would have left.
///
/// - A process crash: the hook stops the bank dead (its one event-loop thread, or the
///   caller's, blocks for good), so nothing after the step reaches the server; the bank is
///   abandoned and reopened, whose `SessionFence` ends the dead one's sessions as it would a
///   crashed process's; the coordinator recovers as `RecoveryPlan` says (commits logged,
///   presumed abort, heuristic outcomes), and its decisions go to the reopened bank.
/// - A server crash: the hook restarts the server with `pg_ctl restart -m immediate` at the
///   step and lets the bank go on; the batch fails (or its successor does), the bank reloads
///   from PostgreSQL on new sessions, and the coordinator, still running, sends every decision
///   again until answered.
///
/// Then, and after reopening once more: nothing prepared; the balances as the committed
/// branches make them, and their sum (with SQL) the bank's minted money plus the committed
/// branches' net; every branch committed here exactly when the coordinator decided so, or
/// reported to it as a heuristic outcome that says what really happened. Each test creates its
/// own database in the suite's cluster (the restarts are the suite's, which runs one test at a
/// time).
extension PostgresBankTests {

    @Test(arguments: StepCase.all)
    func aProcessCrashAtAStepIsRecovered(_ stepCase: StepCase) async throws {
        try await run(stepCase, fault: .processCrash)
    }

    @Test(arguments: StepCase.all)
    func aServerCrashAtAStepIsRecovered(_ stepCase: StepCase) async throws {
        try await run(stepCase, fault: .serverRestart)
    }

    /// Every step the bank has is one of the cases above.
    @Test func everyStepHasItsCrashTests() {
        let covered = Set(StepCase.all.map(\.step))
        #expect(Set(PostgresBank.Step.allCases).subtracting(covered).isEmpty,
                "steps without a test: \(Set(PostgresBank.Step.allCases).subtracting(covered))")
    }
}

/// What the hook does at its step.
enum StepFault: String, Sendable {
    case processCrash, serverRestart
}

/// A situation the bank is brought into, and the step of its next batch a fault interrupts.
struct StepCase: Sendable, CustomTestStringConvertible {
    var situation: Situation
    var step: PostgresBank.Step

    var testDescription: String { "\(situation) at \(step)" }

    static let all: [StepCase] = [
        .init(situation: .staging, step: .writeSetsCommitted),
        .init(situation: .staging, step: .groupStaged),
        .init(situation: .staging, step: .groupPrepared),
        .init(situation: .staging, step: .replying),
        .init(situation: .wholeCommit, step: .groupCommitted),
        .init(situation: .wholeCommit, step: .replying),
        .init(situation: .wholeRollback, step: .groupRolledBack),
        .init(situation: .split, step: .splitVotesRecorded),
        .init(situation: .split, step: .splitGroupRolledBack),
        .init(situation: .split, step: .membersApplied),
        .init(situation: .split, step: .groupStaged),
        .init(situation: .split, step: .groupPrepared),
        .init(situation: .split, step: .splitMembersPrepared),
        .init(situation: .split, step: .splitVotesForgotten),
        .init(situation: .split, step: .replying),
        .init(situation: .looseVotes, step: .membersApplied),
        .init(situation: .looseVotes, step: .looseRollbacksForgotten),
        .init(situation: .committedByHandThenRolledBack, step: .groupFoundGone),
        .init(situation: .committedByHandThenRolledBack, step: .settledByHandRecorded),
        .init(situation: .rolledBackByHandThenCommitted, step: .groupFoundGone),
        .init(situation: .rolledBackByHandThenCommitted, step: .goneMembersVoted),
        .init(situation: .rolledBackByHandThenCommitted, step: .membersApplied),
        .init(situation: .rolledBackByHandWithoutAWriteSetThenCommitted, step: .settledByHandRecorded),
        .init(situation: .committedByHandBeforeItsSplit, step: .splitVotesRecorded),
        .init(situation: .committedByHandBeforeItsSplit, step: .groupFoundGone),
        .init(situation: .committedByHandBeforeItsSplit, step: .settledByHandRecorded),
        .init(situation: .committedByHandBeforeItsSplit, step: .membersApplied),
    ]
}

/// Three branches at hdfc, one group when prepared together: tx 1 debits alice ₹10, tx 2
/// credits bob ₹5, tx 3 debits carol ₹4 (each the hdfc side of a transfer elsewhere).
enum Situation: String, Sendable, CustomStringConvertible {
    /// The batch prepares all three; once every vote is in, the coordinator commits 1 and 3
    /// and rolls back 2.
    case staging
    /// 1 and 2 prepared; the batch commits both.
    case wholeCommit
    /// 1 and 2 prepared; the batch rolls both back.
    case wholeRollback
    /// 1, 2 and 3 prepared; the batch commits 1 and rolls back 2, so the group is split and 3
    /// prepared again; 3 is committed later.
    case split
    /// A split crashed (by the hook) after its ROLLBACK PREPARED: 1 (committed) and 3
    /// (undecided, so presumed aborted by the coordinator's recovery) are votes held by their
    /// rows; the batch commits 1 and rolls back 3.
    case looseVotes
    /// 1 and 2 prepared, committed by hand; the batch rolls both back: heuristic commits.
    case committedByHandThenRolledBack
    /// 1 and 2 prepared, rolled back by hand; the batch commits both: applied from their
    /// write-sets.
    case rolledBackByHandThenCommitted
    /// The same, with 2's write-set deleted by hand too: 2 is a heuristic rollback.
    case rolledBackByHandWithoutAWriteSetThenCommitted
    /// 1, 2 and 3 prepared, committed by hand; the batch commits 1 and rolls back 2 (a split):
    /// 2 is a heuristic commit, 3 (later rolled back) one too.
    case committedByHandBeforeItsSplit

    var description: String { rawValue }

    typealias F = PostgresBankFixture
    static let carol = AccountID(validated: "carol")
    static let operations: [TransactionID: [SandhiEngine.Operation]] = [
        F.tx(1): [.debit(account: F.alice, amount: .rupees(10))],
        F.tx(2): [.credit(account: F.bob, amount: .rupees(5))],
        F.tx(3): [.debit(account: carol, amount: .rupees(4))],
    ]
    static let opening: [AccountID: Paise] = [F.alice: .rupees(1_000), F.bob: .rupees(500), carol: .rupees(1_000)]

    var transactions: [TransactionID] {
        switch self {
        case .wholeCommit, .wholeRollback, .committedByHandThenRolledBack, .rolledBackByHandThenCommitted,
             .rolledBackByHandWithoutAWriteSetThenCommitted:
            [F.tx(1), F.tx(2)]
        case .staging, .split, .looseVotes, .committedByHandBeforeItsSplit:
            [F.tx(1), F.tx(2), F.tx(3)]
        }
    }

    /// Whether a hand settled the group: only then may a branch be reported as decided
    /// otherwise than the coordinator decided (a report of any other would open a
    /// reconciliation case for nothing, and one agreeing with a COMMIT whose record was
    /// reclaimed looks like a mixed outcome).
    var settledByHand: Bool {
        switch self {
        case .staging, .wholeCommit, .wholeRollback, .split, .looseVotes: false
        case .committedByHandThenRolledBack, .rolledBackByHandThenCommitted, .rolledBackByHandWithoutAWriteSetThenCommitted,
             .committedByHandBeforeItsSplit: true
        }
    }

    func prepare(_ transactions: [TransactionID]) -> [ParticipantMessage] {
        transactions.map { F.prepare($0, Self.operations[$0]!) }
    }

    /// The batch the fault interrupts.
    var target: [ParticipantMessage] {
        switch self {
        case .staging: prepare(transactions)
        case .wholeCommit, .rolledBackByHandThenCommitted, .rolledBackByHandWithoutAWriteSetThenCommitted: [.commit(F.tx(1)), .commit(F.tx(2))]
        case .wholeRollback, .committedByHandThenRolledBack: [.rollback(F.tx(1)), .rollback(F.tx(2))]
        case .split, .committedByHandBeforeItsSplit: [.commit(F.tx(1)), .rollback(F.tx(2))]
        case .looseVotes: [.commit(F.tx(1)), .rollback(F.tx(3))]
        }
    }

    /// What the coordinator decides for each transaction once it can: for the ones the target
    /// prepares, once every vote is in (otherwise it aborts them); for the ones the target
    /// leaves undecided, after it.
    var intended: [TransactionID: Bool] {
        switch self {
        case .staging: [F.tx(1): true, F.tx(2): false, F.tx(3): true]
        case .split: [F.tx(3): true]
        case .committedByHandBeforeItsSplit: [F.tx(3): false]
        default: [:]
        }
    }
}

/// The coordinator's side, as the test plays it: what it decided (a COMMIT is logged before
/// it goes out), which decisions were answered, what each bank reported as decided alone.
struct PlayedCoordinator {
    var decided: [TransactionID: Bool] = [:]
    var answered: Set<TransactionID> = []
    var heuristics: [TransactionID: Bool] = [:]
    var votes: [TransactionID: Vote] = [:]
    /// Heuristic outcomes recorded, for which FORGET is still to be acknowledged.
    var toForget: Set<TransactionID> = []

    mutating func decide(_ tx: TransactionID, commit: Bool) {
        precondition(decided[tx] == nil || decided[tx] == commit, "\(tx) decided twice, differently")
        decided[tx] = commit
    }

    mutating func take(_ replies: [ParticipantReply]) {
        for reply in replies {
            switch reply {
            case .vote(let tx, let vote, _):
                votes[tx] = vote
            case .acknowledged(let tx):
                if toForget.remove(tx) == nil { answered.insert(tx) }
            case .heuristic(let tx, let committed, _, _, _):
                heuristics[tx] = committed
                answered.insert(tx)
                toForget.insert(tx)
            }
        }
    }

    /// Every decision not yet answered, and a FORGET for every heuristic outcome recorded.
    var pending: [ParticipantMessage] {
        decided.keys.sorted().filter { !answered.contains($0) }.map { decided[$0]! ? .commit($0) : .rollback($0) }
            + toForget.sorted().map { .forget($0) }
    }
}

/// The hook of the bank a fault interrupts: at the first time its step is reached, stops the
/// process there or restarts the server; every other step passes.
final class StepTrap: Sendable {
    let step: PostgresBank.Step
    let fault: StepFault
    let cluster: PostgresCluster
    private let fired = Mutex(false)
    private let restartFailure = Mutex<String?>(nil)
    /// Signalled when the step is reached, or when the batch ended without reaching it.
    private let reached = DispatchSemaphore(value: 0)
    /// What a dead process waits for: the end of the test.
    private let buried = DispatchSemaphore(value: 0)

    init(step: PostgresBank.Step, fault: StepFault, cluster: PostgresCluster) {
        self.step = step
        self.fault = fault
        self.cluster = cluster
    }

    var hook: PostgresBank.FaultHook { { [self] in self.at($0) } }

    var hasFired: Bool { fired.withLock { $0 } }
    var failure: String? { restartFailure.withLock { $0 } }

    private func at(_ step: PostgresBank.Step) {
        guard step == self.step, fired.withLock({ fired in defer { fired = true }; return !fired }) else { return }
        switch fault {
        case .processCrash:
            reached.signal()
            // Dead: this thread (the bank's one event loop, or the caller's) never goes on, so
            // no statement after this step leaves the process until the test is over.
            buried.wait()
        case .serverRestart:
            do {
                try cluster.restartImmediately()
            } catch {
                restartFailure.withLock { $0 = "\(error)" }
            }
            reached.signal()
        }
    }

    /// The batch returned (or failed): wakes `waitUntilReached` if the step never came.
    func batchEnded() { reached.signal() }

    /// Blocks until the step is reached or the batch ends; true if the step was reached.
    func waitUntilReached() -> Bool {
        reached.wait()
        return hasFired
    }

    /// The end of the test: the dead bank's thread goes on, against sessions long ended.
    func bury() { buried.signal() }
}

/// A bank with its own event-loop thread: when a process crash stops that thread, every
/// session of the bank stops with it, and nothing else in the test process waits on it.
final class OwnLoopBank: @unchecked Sendable {
    let group: MultiThreadedEventLoopGroup
    let handle: BankHandle

    init(_ fixture: PostgresBankFixture) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            handle = BankHandle(try PostgresBank(fixture.configuration, logger: PostgresBankFixture.logger, eventLoopGroup: group))
        } catch {
            try? group.syncShutdownGracefully()
            throw error
        }
        self.group = group
    }

    func close() async throws {
        try await handle.close()
        try await onOwnThread { try self.group.syncShutdownGracefully() }
    }
}

/// A bank a process crash stopped at a step. Buried only once the test is done with its
/// database: let go, its thread goes on, its batch fails, and it reloads, whose fence would end
/// the sessions of any bank of the same name opened since.
struct CrashedBank: Sendable {
    let trap: StepTrap
    let batch: Task<Void, Never>
    let bank: OwnLoopBank

    func bury() async {
        trap.bury()
        await batch.value
        try? await bank.close()
    }
}

extension PostgresBankTests {
    typealias Played = PlayedCoordinator

    /// Runs `messages` on `bank` and stops the process dead at `step` (which the batch must
    /// reach): the real code's state at that point, nothing made up.
    func crash(_ bank: OwnLoopBank, at step: PostgresBank.Step, running messages: [ParticipantMessage],
               cluster: PostgresCluster) async throws -> CrashedBank {
        let trap = StepTrap(step: step, fault: .processCrash, cluster: cluster)
        bank.handle.bank.faultHook = trap.hook
        let handle = bank.handle
        let batch = Task {
            _ = try? await handle.process(messages)
            trap.batchEnded()
        }
        let crashed = CrashedBank(trap: trap, batch: batch, bank: bank)
        guard try await onOwnThread({ trap.waitUntilReached() }) else {
            await crashed.bury()
            throw PostgresCluster.Failure(description: "the batch never reached \(step)")
        }
        return crashed
    }

    func run(_ stepCase: StepCase, fault: StepFault) async throws {
        let situation = stepCase.situation
        let cluster = try currentCluster()
        let fixture = try await makeFixture()
        _ = try await blocking { try cluster.sql(fixture.database, "INSERT INTO accounts(id, balance) VALUES ('carol', 100000)") }
        var coordinator = Played()
        var dead: [CrashedBank] = []
        defer {
            // Whatever happened, the dead banks' threads are let go (their sessions are gone).
            for crashed in dead { crashed.trap.bury() }
        }
        var bank = try await bring(fixture, into: situation, coordinator: &coordinator, dead: &dead)

        let trap = StepTrap(step: stepCase.step, fault: fault, cluster: cluster)
        bank.handle.bank.faultHook = trap.hook
        for case .commit(let tx) in situation.target { coordinator.decide(tx, commit: true) }
        for case .rollback(let tx, _) in situation.target { coordinator.decide(tx, commit: false) }
        let target = situation.target
        let handle = bank.handle
        let outcome = Mutex<Result<[ParticipantReply], any Error>?>(nil)
        let batch = Task {
            let result: Result<[ParticipantReply], any Error>
            do {
                result = .success(try await handle.process(target))
            } catch {
                result = .failure(error)
            }
            outcome.withLock { $0 = result }
            trap.batchEnded()
        }
        let reached = try await onOwnThread { trap.waitUntilReached() }
        try #require(reached, "the batch never reached \(stepCase.step): \(String(describing: outcome.withLock { $0 }))")
        try #require(trap.failure == nil, "restarting the server failed: \(trap.failure ?? "")")

        switch fault {
        case .processCrash:
            dead.append(CrashedBank(trap: trap, batch: batch, bank: bank))
            // A new process: the bank reopened (its fence ends the dead one's sessions), the
            // coordinator recovered from its log (the commits it decided) and the bank.
            bank = try await blocking { try OwnLoopBank(fixture) }
            try await recover(bank.handle, coordinator: &coordinator, situation: situation)
        case .serverRestart:
            await batch.value
            bank.handle.bank.faultHook = nil
            switch outcome.withLock({ $0 })! {
            case .success(let replies): coordinator.take(replies)
            case .failure: break // nothing answered: every decision goes again
            }
            decideWhatIsLeft(situation, &coordinator)
        }
        // The coordinator sends every decision not yet answered until each is, as its resend
        // timers do; a batch that fails (the server restarted under it) is sent again.
        for _ in 0..<6 where !coordinator.pending.isEmpty {
            if let replies = try? await bank.handle.process(coordinator.pending) { coordinator.take(replies) }
            decideWhatIsLeft(situation, &coordinator)
        }
        #expect(coordinator.pending.isEmpty, "never answered: \(coordinator.pending)")
        try await check(fixture, bank.handle, situation, coordinator)
        try await bank.close()

        // And a bank opened afresh agrees: nothing in doubt, nothing more to report.
        let reopened = try await blocking { try fixture.open() }
        #expect(reopened.bank.inDoubt().isEmpty)
        #expect(reopened.bank.unforgottenHeuristics().isEmpty)
        try await check(fixture, reopened, situation, coordinator)
        try await reopened.close()

        for crashed in dead { await crashed.bury() }
        dead = []
    }

    /// The transactions prepared by the batch get their decisions once all voted YES, and are
    /// aborted otherwise (a vote lost with a failed batch is a timeout); the undecided ones get
    /// theirs.
    func decideWhatIsLeft(_ situation: Situation, _ coordinator: inout Played) {
        let prepared = situation.target.compactMap { message -> TransactionID? in
            if case .prepare(let tx, _, _) = message { return tx } else { return nil }
        }
        let allYes = prepared.allSatisfy { coordinator.votes[$0] == .yes }
        for tx in prepared where coordinator.decided[tx] == nil {
            coordinator.decide(tx, commit: allYes && situation.intended[tx] == true)
        }
        for (tx, commit) in situation.intended where !prepared.contains(tx) && coordinator.decided[tx] == nil {
            coordinator.decide(tx, commit: commit)
        }
    }

    /// The coordinator's recovery after a process crash, as `SandhiNode` runs it: the plan over
    /// its log (the COMMITs it decided, none ended) and the bank; a transaction it had not
    /// decided is forgotten (no record: presumed abort), unless the bank still holds it, when
    /// the plan decides.
    func recover(_ handle: BankHandle, coordinator: inout Played, situation: Situation) async throws {
        // What survives the crash: the COMMITs in the log. Votes, answers and undecided
        // transactions die with the process.
        let logged = coordinator.decided.filter(\.value).keys.sorted()
        var restarted = Played()
        restarted.decided = coordinator.decided.filter(\.value)
        let bank = handle.bank
        let state = RecoveringBank(participant: F.hdfc, inDoubt: bank.inDoubt(), locks: bank.inDoubtLocks(),
                                   highestEpoch: try await handle.call { try $0.highestEpoch() }, heuristics: bank.unforgottenHeuristics())
        let committedHere = try await handle.call { bank in
            try Set(state.inDoubt.keys.filter { try bank.committedOnCoordinatorsWord($0) })
        }
        let plan = try RecoveryPlan.make(logEpoch: 1, commits: logged.map { ($0, [F.hdfc], false) }, banks: [state]) {
            committedHere.contains($0) ? [F.hdfc] : []
        }
        for decision in plan.decisions { restarted.decide(decision.transaction, commit: decision.commit) }
        for (_, tx, committed) in plan.heuristics {
            restarted.heuristics[tx] = committed
            restarted.toForget.insert(tx)
        }
        // Everything else was an abort, or undecided: no record, so nothing is sent for it.
        for tx in situation.transactions where restarted.decided[tx] == nil {
            restarted.decided[tx] = false
            restarted.answered.insert(tx)
        }
        coordinator = restarted
    }

    /// Nothing prepared or held; each branch committed here exactly when the coordinator
    /// decided so, or reported to it as decided otherwise; the balances those commits make,
    /// summed with SQL too.
    func check(_ fixture: PostgresBankFixture, _ handle: BankHandle, _ situation: Situation, _ coordinator: Played) async throws {
        #expect(try await blocking { try fixture.preparedGids() } == "", "prepared transactions left")
        #expect(handle.bank.inDoubt().isEmpty && handle.bank.heldLocks.isEmpty, "still held: \(handle.bank.inDoubt())")
        let committedRows = try await blocking { try fixture.cluster.sql(fixture.database, "SELECT tx FROM sandhi_committed ORDER BY tx") }
        let committed = Set(committedRows.split(separator: "\n").compactMap { UInt64($0).map { TransactionID(rawValue: $0) } })
        if !situation.settledByHand {
            #expect(coordinator.heuristics.isEmpty, "reported as decided alone, though no hand was at work: \(coordinator.heuristics)")
        }
        for tx in situation.transactions {
            let decided = coordinator.decided[tx] ?? false
            let here = committed.contains(tx)
            if let reported = coordinator.heuristics[tx] {
                #expect(reported == here, "\(tx) reported \(reported ? "committed" : "rolled back") by hand, but is \(here ? "committed" : "not")")
            } else {
                #expect(here == decided, "\(tx): the coordinator decided \(decided ? "COMMIT" : "ROLLBACK"), the bank \(here ? "committed" : "did not"), and said nothing")
            }
        }
        // Each account: its opening balance and what the branches committed here wrote.
        var expected = Situation.opening
        for tx in committed {
            for operation in Situation.operations[tx] ?? [] {
                if let account = operation.account { expected[account, default: .zero] = expected[account, default: .zero] + operation.delta }
            }
        }
        let balances = expected.keys.sorted().map { "\($0.name)=\(expected[$0]!.value)" }.joined(separator: "\n")
        #expect(try await blocking { try fixture.balances() } == balances)
        // The bank's own books, with SQL: every paisa is minted or a committed branch's net.
        #expect(try await blocking {
            try fixture.cluster.sql(fixture.database, """
                SELECT (SELECT SUM(balance) FROM accounts) - 100000
                       = (SELECT value::bigint FROM sandhi_meta WHERE key = 'minted_paise') + (SELECT COALESCE(SUM(net_paise), 0) FROM sandhi_committed)
                """)
        } == "t", "the balances do not add up to the minted money and the committed branches")
    }

    /// Brings a fresh bank into `situation`, on a thread of its own, and returns it: the
    /// branches prepared, and whatever a hand (or an earlier crash) did.
    func bring(_ fixture: PostgresBankFixture, into situation: Situation, coordinator: inout Played,
               dead: inout [CrashedBank]) async throws -> OwnLoopBank {
        let bank = try await blocking { try OwnLoopBank(fixture) }
        func prepared(_ transactions: [TransactionID]) async throws {
            let votes = try await bank.handle.process(situation.prepare(transactions))
            try #require(votes.voteOnly == transactions.map { .vote($0, .yes) }, "\(votes)")
            #expect(try await blocking { try fixture.preparedGids() } == GlobalTransactionID(instance: fixture.instance, transactions: transactions, participant: F.hdfc).description)
        }
        func byHand(_ statement: String) async throws {
            _ = try await blocking { try fixture.cluster.sql(fixture.database, "\(statement) PREPARED '\(GlobalTransactionID(instance: fixture.instance, transactions: situation.transactions, participant: F.hdfc))'") }
        }
        switch situation {
        case .staging:
            return bank
        case .wholeCommit, .wholeRollback, .split:
            try await prepared(situation.transactions)
        case .committedByHandThenRolledBack, .committedByHandBeforeItsSplit:
            try await prepared(situation.transactions)
            try await byHand("COMMIT")
        case .rolledBackByHandThenCommitted:
            try await prepared(situation.transactions)
            try await byHand("ROLLBACK")
        case .rolledBackByHandWithoutAWriteSetThenCommitted:
            try await prepared(situation.transactions)
            try await bank.close()
            _ = try await blocking { try fixture.cluster.sql(fixture.database, "DELETE FROM sandhi_intents WHERE tx = \(F.tx(2).rawValue)") }
            let reopened = try await blocking { try OwnLoopBank(fixture) }
            #expect(reopened.handle.bank.inDoubt() == [F.tx(1): [F.hdfc], F.tx(2): [F.hdfc]])
            try await byHand("ROLLBACK")
            return reopened
        case .looseVotes:
            // The split of `.split`, the process crashed right after its ROLLBACK PREPARED.
            try await prepared(situation.transactions)
            dead.append(try await crash(bank, at: .splitGroupRolledBack, running: [.commit(F.tx(1)), .rollback(F.tx(2))],
                                        cluster: fixture.cluster))
            coordinator.decide(F.tx(1), commit: true)
            coordinator.decide(F.tx(2), commit: false)
            let reopened = try await blocking { try OwnLoopBank(fixture) }
            // The split's votes, held by their rows: 1 committing, 3 waiting. 2 was rolled
            // back (its rollback is not acknowledged, and the coordinator forgets it).
            #expect(reopened.handle.bank.inDoubt() == [F.tx(1): [F.hdfc], F.tx(3): [F.hdfc]])
            #expect(try await blocking { try fixture.preparedGids() } == "")
            coordinator.answered.insert(F.tx(2))
            return reopened
        }
        return bank
    }
}

import Histogram
import SandhiEngine
import Synchronization
import SandhiParticipants

/// The durable transfer workloads behind `sandhi bench`: closed-loop clients, one distributed
/// transaction per transfer, every commit durable (COMMIT forced to the log, every bank's
/// prepare and commit fsync'd in WAL mode).
///
/// - `uniform`: a random amount between random accounts of two different banks; conflicts
///   are rare, so this measures the protocol and the disks.
/// - `contention`: every transfer moves money between two of a few hot accounts, in random
///   order, so transfers queue for locks and deadlock; a client retries a transfer that lost
///   a deadlock or timed out waiting (with backoff), as an application would. This measures
///   the lock manager and the deadlock detector under pressure.
public enum TransferBench {
    public enum Workload: String, Sendable, Codable, CaseIterable {
        case uniform, contention
    }

    public struct Options: Sendable {
        public var workload: Workload = .uniform
        public var clients = 64
        public var durationMs: UInt64 = 10_000
        /// Keep going past `durationMs` until at least this many transfers and this many audits
        /// have committed (a test that needs enough history to check waits for it, however
        /// slow a loaded machine makes the run, instead of for a fixed time).
        public var minimumCommitted = 0
        public var minimumAudits = 0
        /// How far past `durationMs` the minimums may carry the run, at most (a run whose
        /// transfers all abort would otherwise never end).
        public var minimumsWaitMs: UInt64 = 120_000
        /// Largest amount moved in one transfer.
        public var maxAmount: Paise = .rupees(100)
        public var seed: UInt64 = 1
        /// `.decided` (default) answers a client at the commit point: the COMMIT record and every
        /// bank's prepare are durable, so recovery commits it after any crash. `.finished` waits
        /// until every bank has also acknowledged phase two durably.
        public var answerWhen: CoordinatorDriver.AnswerWhen = .decided
        /// Accounts the contention workload moves money between; with one, each transfer pairs
        /// it with a random other account.
        public var hotAccounts = 4
        /// With one hot account: lock it first in every transfer, so no deadlock can form and a
        /// run measures what the detector costs rather than what it saves.
        public var hotFirst = false
        /// Times a client re-runs a transfer that aborted for a transient cause (deadlock
        /// victim, lock timeout) before it gives up on it.
        public var maxRetries = 20
        /// Share of client operations that are audits instead of transfers: a read-only
        /// transaction reading every account of every bank under shared locks (the Jepsen bank
        /// read), whose sum must be `expectedTotal` exactly.
        public var readFraction = 0.0
        /// The global total every audit must see (the sum of all balances at the start).
        public var expectedTotal: Paise?
        /// Where to record every attempt for `sandhi check-history`.
        public var history: HistoryRecorder?
        /// Called as each client is told its transfer committed, with the banks it wrote: a
        /// power-loss test's record of what must survive any later crash.
        public var onCommitted: (@Sendable (TransactionID, [ParticipantID]) -> Void)?
        /// How a client submits a transfer; nil: `driver.transfer` in-process. (`sandhi bench
        /// --via api` submits over the service's HTTP API instead; the result's `latencyUs` is
        /// then the client's own round trip.)
        public var submit: (@Sendable (_ branches: [Branch], _ answerWhen: CoordinatorDriver.AnswerWhen, _ observe: Bool) async throws -> TransferResult)?
        public init() {}
    }

    public struct Report: Sendable, Codable {
        public var workload: Workload
        public var clients: Int
        public var elapsedMs: UInt64
        /// Transfers and audits committed (each counted once, however many attempts it took).
        public var committed: Int
        /// Transactions run, retries included.
        public var attempts: Int
        public var retries: Int
        /// Aborted attempts by cause (`deadlock`, `lock-timeout`, `insufficient-funds`, ...).
        public var abortsByCause: [String: Int]
        /// Deadlocks the engine found during the run.
        public var deadlocks: Int
        /// Audits committed, and how many of them summed to something other than the total.
        public var audits: Int
        public var auditMismatches: Int
        public var transfersPerSecond: Double
        public var latencyP50Us: UInt64
        public var latencyP99Us: UInt64
        public var latencyP999Us: UInt64
        public var latencyMaxUs: UInt64
        public var participantBatches: Int
        public var participantMessages: Int
        public var participantSyncs: Int
        public var logSyncs: Int
        public var logRecords: Int
        public var haltedReason: String?
        /// Per-phase latencies, when the caller observed the event stream.
        public var phases: PhaseLatencies.Summary?

        public var aborted: Int { abortsByCause.values.reduce(0, +) }
        public var deadlocksPerSecond: Double { Double(deadlocks) * 1_000 / Double(max(1, elapsedMs)) }
        /// Share of all attempts that were thrown away (aborted for any cause): the throughput
        /// lost to conflicts.
        public var lostFraction: Double { attempts == 0 ? 0 : Double(attempts - committed) / Double(attempts) }
        /// Messages per storage commit at the participants.
        public var meanBatchSize: Double { participantBatches == 0 ? 0 : Double(participantMessages) / Double(participantBatches) }
        /// Messages per participant fsync: the group-commit factor.
        public var messagesPerSync: Double { participantSyncs == 0 ? 0 : Double(participantMessages) / Double(participantSyncs) }
    }

    /// Accounts per participant that the workload may touch (read once, before the run).
    public typealias AccountMap = [ParticipantID: [AccountID]]

    /// The hot accounts of the contention workload: the first accounts of each bank, taken
    /// round-robin across banks so that hot transfers are distributed transactions.
    public static func hotAccounts(_ accounts: AccountMap, count: Int) -> [ResourceID] {
        let banks = accounts.filter { !$0.value.isEmpty }.keys.sorted()
        var hot: [ResourceID] = []
        var row = 0
        while hot.count < count {
            var added = false
            for bank in banks where hot.count < count && row < accounts[bank]!.count {
                hot.append(ResourceID(participant: bank, account: accounts[bank]![row]))
                added = true
            }
            if !added { break }
            row += 1
        }
        return hot
    }

    public static func run(driver: CoordinatorDriver, accounts: AccountMap, options: Options) async -> Report {
        precondition(options.minimumAudits == 0 || options.readFraction > 0, "a minimum of audits needs readFraction above 0")
        precondition(options.minimumAudits == 0 || options.readFraction > 0, "a minimum of audits needs readFraction above 0")
        let banks = accounts.filter { !$0.value.isEmpty }.keys.sorted()
        precondition(banks.count >= 2, "the workload needs at least two banks with accounts")
        let hot = hotAccounts(accounts, count: options.hotAccounts)
        precondition(options.workload != .contention || !hot.isEmpty, "the contention workload needs a hot account")
        let startUs = MonotonicClock.nowUs()
        let deadlineUs = startUs + options.durationMs * 1_000
        let before = driver.participantStats
        let logBefore = driver.logStats
        let deadlocksBefore = driver.deadlocks.total
        var total = ClientTally()
        let progress = Progress(options)
        await withTaskGroup(of: ClientTally.self) { group in
            for client in 0..<options.clients {
                group.addTask {
                    let seed = options.seed &* 0x9E37_79B9 &+ UInt64(client)
                    return await runClient(driver: driver, accounts: accounts, banks: banks, hot: hot, options: options,
                                           seed: seed, deadlineUs: deadlineUs, progress: progress)
                }
            }
            for await tally in group { total.merge(tally) }
        }
        let elapsedUs = max(1, MonotonicClock.nowUs() - startUs)
        let after = driver.participantStats
        let logAfter = driver.logStats
        var batches = 0, messages = 0, syncs = 0
        for (index, entry) in after.enumerated() {
            batches += entry.batches - before[index].batches
            messages += entry.messages - before[index].messages
            syncs += entry.syncs - before[index].syncs
        }
        return Report(
            workload: options.workload, clients: options.clients, elapsedMs: elapsedUs / 1_000, committed: total.committed,
            attempts: total.attempts, retries: total.retries, abortsByCause: total.aborts,
            deadlocks: driver.deadlocks.total - deadlocksBefore, audits: total.audits, auditMismatches: total.auditMismatches,
            transfersPerSecond: Double(total.committed - total.audits) * 1_000_000 / Double(elapsedUs),
            latencyP50Us: total.histogram.valueAtPercentile(50), latencyP99Us: total.histogram.valueAtPercentile(99),
            latencyP999Us: total.histogram.valueAtPercentile(99.9), latencyMaxUs: total.histogram.max,
            participantBatches: batches, participantMessages: messages, participantSyncs: syncs,
            logSyncs: logAfter.syncs - logBefore.syncs, logRecords: logAfter.records - logBefore.records,
            haltedReason: total.halted)
    }

    private struct ClientTally: Sendable {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var committed = 0, attempts = 0, retries = 0, audits = 0, auditMismatches = 0
        var aborts: [String: Int] = [:]
        var halted: String?

        mutating func merge(_ other: ClientTally) {
            histogram.add(other.histogram)
            committed += other.committed
            audits += other.audits
            auditMismatches += other.auditMismatches
            attempts += other.attempts
            retries += other.retries
            aborts.merge(other.aborts, uniquingKeysWith: +)
            halted = halted ?? other.halted
        }
    }

    /// The bench's name for why an attempt aborted: the engine's cause, with a participant's
    /// refusal split into insufficient funds (the workload's own doing, drawing amounts at
    /// random) and the rest. Read from the refusal's case, never from the text for people.
    static func causeLabel(_ cause: AbortCause, refusal: Refusal?) -> String {
        if refusal?.isInsufficientFunds == true { return "insufficient-funds" }
        return cause.rawValue
    }

    /// Transfers and audits committed so far, across clients, against the run's minimums.
    final class Progress: Sendable {
        private let transfers = Atomic<Int>(0), audits = Atomic<Int>(0)
        private let minimumTransfers: Int, minimumAudits: Int

        init(_ options: Options) {
            minimumTransfers = options.minimumCommitted
            minimumAudits = options.minimumAudits
        }

        func committed(audit: Bool) {
            if audit {
                audits.add(1, ordering: .relaxed)
            } else {
                transfers.add(1, ordering: .relaxed)
            }
        }

        var enough: Bool {
            transfers.load(ordering: .relaxed) >= minimumTransfers && audits.load(ordering: .relaxed) >= minimumAudits
        }
    }

    private static func runClient(driver: CoordinatorDriver, accounts: AccountMap, banks: [ParticipantID], hot: [ResourceID],
                                  options: Options, seed: UInt64, deadlineUs: UInt64, progress: Progress) async -> ClientTally {
        var random = SplitMix64(seed: seed)
        var tally = ClientTally()
        let audit = options.readFraction == 0 ? []
            : banks.map { bank in Branch(participant: bank, operations: accounts[bank]!.map { .read(account: $0) }) }
        // Draws in millionths, so a fraction needs no floating point at run time.
        let auditPerMillion = UInt64(options.readFraction * 1_000_000)
        let lastUs = deadlineUs + options.minimumsWaitMs * 1_000
        while MonotonicClock.nowUs() < deadlineUs || (!progress.enough && MonotonicClock.nowUs() < lastUs) {
            let amount = Paise(1 + Int64(random.next() % UInt64(options.maxAmount.value)))
            var branches: [Branch]
            let isAudit = auditPerMillion > 0 && random.next() % 1_000_000 < auditPerMillion
            switch options.workload {
            case _ where isAudit:
                branches = audit
            case .uniform:
                let fromIndex = Int(random.next() % UInt64(banks.count))
                let toIndex = (fromIndex + 1 + Int(random.next() % UInt64(banks.count - 1))) % banks.count
                let fromAccounts = accounts[banks[fromIndex]]!, toAccounts = accounts[banks[toIndex]]!
                branches = [
                    Branch(participant: banks[fromIndex], operations: [.debit(account: fromAccounts[Int(random.next() % UInt64(fromAccounts.count))], amount: amount)]),
                    Branch(participant: banks[toIndex], operations: [.credit(account: toAccounts[Int(random.next() % UInt64(toAccounts.count))], amount: amount)]),
                ]
            case .contention where hot.count == 1:
                // One hot account: every transfer queues for it, paired with a random other
                // account, in random order.
                let bank = banks[Int(random.next() % UInt64(banks.count))]
                let candidates = accounts[bank]!
                var other = ResourceID(participant: bank, account: candidates[Int(random.next() % UInt64(candidates.count))])
                if other == hot[0] { other = ResourceID(participant: bank, account: candidates[(candidates.firstIndex(of: other.account)! + 1) % candidates.count]) }
                let outgoing = random.next() % 2 == 0
                branches = outgoing ? transfer(amount, from: hot[0], to: other) : transfer(amount, from: other, to: hot[0])
                if options.hotFirst && !outgoing { branches = branches.count == 1
                    ? [Branch(participant: branches[0].participant, operations: branches[0].operations.reversed())]
                    : branches.reversed() }
            case .contention:
                let first = Int(random.next() % UInt64(hot.count))
                let second = (first + 1 + Int(random.next() % UInt64(hot.count - 1))) % hot.count
                branches = transfer(amount, from: hot[first], to: hot[second])
            }
            // Latency runs from the first submission to the moment the last attempt was
            // answered (as the driver saw it, so the client task's own scheduling delay after
            // the answer is not counted), retries and back-off included.
            let startedUs = MonotonicClock.nowUs()
            var answeredUs = startedUs
            var attempt = 0
            while true {
                tally.attempts += 1
                let outcome: Outcome
                do {
                    let submittedUs = MonotonicClock.nowUs()
                    let result: TransferResult
                    if let submit = options.submit {
                        result = try await submit(branches, options.answerWhen, options.history != nil)
                    } else {
                        result = try await driver.transfer(branches, answerWhen: options.answerWhen, observe: options.history != nil)
                    }
                    outcome = result.outcome
                    answeredUs = submittedUs + result.latencyUs
                    if outcome == .committed, let onCommitted = options.onCommitted {
                        onCommitted(result.transaction, branches.filter { $0.operations.contains(where: \.isWrite) }.map(\.participant))
                    }
                    options.history?.record(HistoryRecorder.transaction(
                        result.transaction, outcome: outcome, audit: isAudit, startUs: submittedUs, endUs: answeredUs,
                        branches: branches, observed: result.observed))
                    if outcome == .committed { progress.committed(audit: isAudit) }
                    if isAudit && outcome == .committed {
                        tally.audits += 1
                        let seen = result.observed.values.joined().reduce(Int64(0)) { $0 + $1.balance.value }
                        if let expected = options.expectedTotal, seen != expected.value { tally.auditMismatches += 1 }
                    }
                } catch {
                    tally.halted = "\(error)"
                    return tally
                }
                guard case .aborted(_, let cause, let refusal) = outcome else {
                    tally.committed += 1
                    break
                }
                tally.aborts[causeLabel(cause, refusal: refusal), default: 0] += 1
                let nowUs = MonotonicClock.nowUs()
                guard cause.isTransient, attempt < options.maxRetries, nowUs < deadlineUs || (!progress.enough && nowUs < lastUs) else { break }
                attempt += 1
                tally.retries += 1
                // Back off with jitter, so the losers of a deadlock do not collide again at once.
                let ceilingUs = UInt64(100) << UInt64(min(attempt, 7))
                try? await Task.sleep(nanoseconds: (ceilingUs / 2 + random.next() % ceilingUs) * 1_000)
            }
            tally.histogram.record(answeredUs - startedUs)
        }
        return tally
    }

    /// A debit of `from` and a credit of `to`, asked for in that order (one branch when both
    /// accounts live at the same bank).
    static func transfer(_ amount: Paise, from: ResourceID, to: ResourceID) -> [Branch] {
        if from.participant == to.participant {
            return [Branch(participant: from.participant, operations: [.debit(account: from.account, amount: amount),
                                                                        .credit(account: to.account, amount: amount)])]
        }
        return [
            Branch(participant: from.participant, operations: [.debit(account: from.account, amount: amount)]),
            Branch(participant: to.participant, operations: [.credit(account: to.account, amount: amount)]),
        ]
    }
}

import Histogram
import SandhiEngine
import SandhiParticipants

/// The durable transfer workload behind `sandhi bench`: closed-loop clients, each moving a
/// random amount between random accounts of two different banks, one distributed transaction
/// per transfer, every commit durable (COMMIT forced to the log, every bank's prepare and
/// commit fsync'd in WAL mode).
public enum TransferBench {
    public struct Options: Sendable {
        public var clients = 64
        public var durationMs: UInt64 = 10_000
        /// Largest amount moved in one transfer.
        public var maxAmount: Paise = .rupees(100)
        public var seed: UInt64 = 1
        /// `.decided` (default) answers a client at the commit point: the COMMIT record and every
        /// bank's prepare are durable, so recovery commits it after any crash. `.finished` waits
        /// until every bank has also acknowledged phase two durably.
        public var answerWhen: CoordinatorDriver.AnswerWhen = .decided
        public init() {}
    }

    public struct Report: Sendable, Codable {
        public var clients: Int
        public var elapsedMs: UInt64
        public var committed: Int
        public var abortedConflict: Int
        public var abortedInsufficientFunds: Int
        public var abortedOther: Int
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

        /// Messages per storage commit at the participants.
        public var meanBatchSize: Double { participantBatches == 0 ? 0 : Double(participantMessages) / Double(participantBatches) }
        /// Messages per participant fsync: the group-commit factor.
        public var messagesPerSync: Double { participantSyncs == 0 ? 0 : Double(participantMessages) / Double(participantSyncs) }
    }

    /// Accounts per participant that the workload may touch (read once, before the run).
    public typealias AccountMap = [ParticipantID: [AccountID]]

    public static func run(driver: CoordinatorDriver, accounts: AccountMap, options: Options) async -> Report {
        let banks = accounts.filter { !$0.value.isEmpty }.keys.sorted()
        precondition(banks.count >= 2, "the workload needs at least two banks with accounts")
        let startUs = MonotonicClock.nowUs()
        let deadlineUs = startUs + options.durationMs * 1_000
        let before = driver.participantStats
        let logBefore = driver.logStats
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var committed = 0, conflict = 0, insufficient = 0, other = 0
        var halted: String?
        await withTaskGroup(of: ClientTally.self) { group in
            for client in 0..<options.clients {
                group.addTask {
                    await runClient(driver: driver, accounts: accounts, banks: banks, options: options,
                                    seed: options.seed &* 0x9E37_79B9 &+ UInt64(client), deadlineUs: deadlineUs)
                }
            }
            for await tally in group {
                histogram.add(tally.histogram)
                committed += tally.committed
                conflict += tally.conflict
                insufficient += tally.insufficient
                other += tally.other
                halted = halted ?? tally.halted
            }
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
            clients: options.clients, elapsedMs: elapsedUs / 1_000, committed: committed,
            abortedConflict: conflict, abortedInsufficientFunds: insufficient, abortedOther: other,
            transfersPerSecond: Double(committed) * 1_000_000 / Double(elapsedUs),
            latencyP50Us: histogram.valueAtPercentile(50), latencyP99Us: histogram.valueAtPercentile(99),
            latencyP999Us: histogram.valueAtPercentile(99.9), latencyMaxUs: histogram.max,
            participantBatches: batches, participantMessages: messages, participantSyncs: syncs,
            logSyncs: logAfter.syncs - logBefore.syncs, logRecords: logAfter.records - logBefore.records, haltedReason: halted)
    }

    private struct ClientTally: Sendable {
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var committed = 0, conflict = 0, insufficient = 0, other = 0
        var halted: String?
    }

    private static func runClient(driver: CoordinatorDriver, accounts: AccountMap, banks: [ParticipantID],
                                  options: Options, seed: UInt64, deadlineUs: UInt64) async -> ClientTally {
        var random = SplitMix64(seed: seed)
        var tally = ClientTally()
        while MonotonicClock.nowUs() < deadlineUs {
            let fromIndex = Int(random.next() % UInt64(banks.count))
            let toIndex = (fromIndex + 1 + Int(random.next() % UInt64(banks.count - 1))) % banks.count
            let fromBank = banks[fromIndex], toBank = banks[toIndex]
            let fromAccounts = accounts[fromBank]!, toAccounts = accounts[toBank]!
            let from = fromAccounts[Int(random.next() % UInt64(fromAccounts.count))]
            let to = toAccounts[Int(random.next() % UInt64(toAccounts.count))]
            let amount = Paise(1 + Int64(random.next() % UInt64(options.maxAmount.value)))
            let branches = [
                Branch(participant: fromBank, operations: [.debit(account: from, amount: amount)]),
                Branch(participant: toBank, operations: [.credit(account: to, amount: amount)]),
            ]
            do {
                let result = try await driver.transfer(branches, answerWhen: options.answerWhen)
                tally.histogram.record(result.latencyUs)
                switch result.outcome {
                case .committed:
                    tally.committed += 1
                case .aborted(let reason, _):
                    if reason.contains("is locked by") { tally.conflict += 1 }
                    else if reason.contains("insufficient funds") { tally.insufficient += 1 }
                    else { tally.other += 1 }
                }
            } catch {
                tally.halted = "\(error)"
                break
            }
        }
        return tally
    }
}

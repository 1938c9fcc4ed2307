import SandhiEngine
import SandhiRuntime

/// One decision log under test: how to open it (the same log every time) and read it.
public struct DecisionLogSubject: Sendable {
    public var name: String
    /// Opens the log for writing; the first call finds it empty.
    public var open: @Sendable () throws -> (any DecisionLogStorage, RecoveredDecisionLog)
    /// Reads it without taking it, changing nothing.
    public var read: @Sendable () throws -> RecoveredDecisionLog
    /// Whether a second `open` while the first is open must be refused. The PostgreSQL log takes
    /// an advisory lock for that; the file log leaves it to the data directory's lock file.
    public var excludesSecondOpener: Bool

    public init(name: String, excludesSecondOpener: Bool,
                open: @escaping @Sendable () throws -> (any DecisionLogStorage, RecoveredDecisionLog),
                read: @escaping @Sendable () throws -> RecoveredDecisionLog) {
        self.name = name
        self.open = open
        self.read = read
        self.excludesSecondOpener = excludesSecondOpener
    }
}

/// The decision-log suite, written once and run against both implementations of
/// `DecisionLogStorage`: the segment files (`SandhiRuntimeTests/DecisionLogConformanceTests`)
/// and PostgreSQL (`SandhiPostgresTests/PostgresDecisionLogTests`). Each check takes a fresh,
/// empty log; `reclamationKeepsUnfinishedCommitsAndDropsFinishedOnes` wants one that reclaims
/// early (small segments; reclamation after every sync).
///
/// The checks are blocking and throw `Failure` instead of recording issues, so they can run on
/// a thread of their own (a PostgreSQL log blocks on futures, off the cooperative pool).
///
/// Verified to fail: with the PostgreSQL log's `sync` planted to skip its INSERT, the round trip,
/// the recovery check and the reclamation check fail (the records are gone after a reopen); with
/// its reclamation planted to delete a COMMIT without waiting for its END, the reclamation
/// check fails (an unfinished COMMIT is missing); with `failNextSync` ignored, the sticky check
/// fails.
public enum DecisionLogConformance {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    static func check(_ condition: Bool, _ subject: DecisionLogSubject, _ message: @autoclosure () -> String,
                      line: Int = #line) throws {
        if !condition { throw Failure(description: "\(subject.name) (line \(line)): \(message())") }
    }

    static let participants = [ParticipantID(validated: "hdfc"), ParticipantID(validated: "icici"), ParticipantID(validated: "sbi")]

    static func tx(_ sequence: UInt64, epoch: UInt32 = 1) -> TransactionID { TransactionID(epoch: epoch, sequence: sequence) }
    static func commit(_ sequence: UInt64, epoch: UInt32 = 1) -> DecisionRecord {
        .commit(transaction: tx(sequence, epoch: epoch), participants: participants)
    }
    static func end(_ sequence: UInt64, epoch: UInt32 = 1) -> DecisionRecord { .end(transaction: tx(sequence, epoch: epoch)) }

    /// The records a log holds for the coordinator (the file log's segment headers are its own).
    static func content(_ recovered: RecoveredDecisionLog) -> [(position: LogPosition, record: DecisionRecord)] {
        recovered.records.filter { if case .segmentHeader = $0.record { false } else { true } }
    }

    static func commitsPresent(_ recovered: RecoveredDecisionLog) -> Set<TransactionID> {
        Set(recovered.records.compactMap { if case .commit(let tx, _) = $0.record { tx } else { nil } })
    }

    // MARK: - The checks

    /// Records appended and synced come back after a reopen, in order, at the positions `append`
    /// returned; the log continues after them.
    public static func appendSyncReopenRoundTrip(_ subject: DecisionLogSubject) throws {
        var (log, recovered) = try subject.open()
        try check(content(recovered).isEmpty, subject, "a new log holds \(content(recovered).map(\.record))")
        log.epoch = 1
        let records: [DecisionRecord] = [.epochStarted(epoch: 1), commit(1), commit(2), end(1)]
        let positions = try log.append(records)
        try check(positions.count == 4 && zip(positions, positions.dropFirst()).allSatisfy { $0 < $1 }, subject,
                  "positions not increasing: \(positions)")
        try log.sync()
        log.close()

        (log, recovered) = try subject.open()
        try check(content(recovered).map(\.record) == records, subject, "reopened: \(content(recovered).map(\.record))")
        try check(content(recovered).map(\.position) == positions, subject, "positions \(content(recovered).map(\.position)) vs \(positions)")
        try check(recovered.unfinishedCommits == [tx(2): participants], subject, "unfinished \(recovered.unfinishedCommits)")
        try check(recovered.maxEpoch == 1 && log.epoch == 1, subject, "epoch \(recovered.maxEpoch), log \(log.epoch)")
        let more = try log.append([end(2)])
        try check(more[0] > positions[3], subject, "appended at \(more[0]) after \(positions[3])")
        try log.sync()
        log.close()

        let read = try subject.read()
        try check(content(read).map(\.record) == records + [end(2)], subject, "read: \(content(read).map(\.record))")
        try check(read.unfinishedCommits.isEmpty, subject, "unfinished after END: \(read.unfinishedCommits)")
    }

    /// COMMITs without an END are what recovery must finish; the highest epoch survives restarts.
    public static func recoversUnfinishedCommitsAndEpochs(_ subject: DecisionLogSubject) throws {
        var (log, _) = try subject.open()
        log.epoch = 1
        _ = try log.append([.epochStarted(epoch: 1), commit(1), commit(2), commit(3), commit(4), commit(5), end(2), end(4)])
        try log.sync()
        log.close()

        var recovered: RecoveredDecisionLog
        (log, recovered) = try subject.open()
        try check(Set(recovered.unfinishedCommits.keys) == [tx(1), tx(3), tx(5)], subject, "unfinished \(recovered.unfinishedCommits.keys.sorted())")
        try check(recovered.maxEpoch == 1, subject, "epoch \(recovered.maxEpoch)")
        log.epoch = 2
        _ = try log.append([.epochStarted(epoch: 2), commit(1, epoch: 2), end(1)])
        try log.sync()
        log.close()

        (log, recovered) = try subject.open()
        let expected: Set<TransactionID> = [tx(3), tx(5), tx(1, epoch: 2)]
        try check(Set(recovered.unfinishedCommits.keys) == expected, subject, "unfinished \(recovered.unfinishedCommits.keys.sorted())")
        try check(recovered.maxEpoch == 2 && log.epoch == 2, subject, "epoch \(recovered.maxEpoch), log \(log.epoch)")
        try check(recovered.unfinishedCommits[tx(3)] == participants, subject, "participants \(String(describing: recovered.unfinishedCommits[tx(3)]))")
        log.close()
        let read = try subject.read()
        try check(Set(read.unfinishedCommits.keys) == expected && read.maxEpoch == 2, subject, "read: \(read.unfinishedCommits.keys.sorted()), \(read.maxEpoch)")
    }

    /// After a failed sync the log refuses everything (nobody knows what reached stable storage);
    /// a new open reads what is really there, and what was synced before is intact.
    public static func failedSyncIsSticky(_ subject: DecisionLogSubject) throws {
        var (log, _) = try subject.open()
        log.epoch = 1
        _ = try log.append([.epochStarted(epoch: 1), commit(1)])
        try log.sync()
        _ = try log.append([commit(2)])
        log.failNextSync()
        var failure: DecisionLogError?
        do { try log.sync() } catch { failure = error as? DecisionLogError }
        try check(failure != nil, subject, "the injected sync failure was not reported as a DecisionLogError")
        for (what, operation) in [("append", { _ = try log.append([commit(3)]) }), ("sync", { try log.sync() }), ("maintain", { try log.maintain() })]
            as [(String, () throws -> Void)] {
            var again: DecisionLogError?
            do { try operation() } catch { again = error as? DecisionLogError }
            try check(again != nil && again == failure, subject, "\(what) after the failed sync: \(String(describing: again)), not \(String(describing: failure))")
        }
        log.close()

        let recovered: RecoveredDecisionLog
        (log, recovered) = try subject.open()
        let commits = commitsPresent(recovered)
        try check(commits.contains(tx(1)), subject, "the synced COMMIT is gone: \(commits.sorted())")
        try check(!commits.contains(tx(3)), subject, "a COMMIT appended after the failure is in the log")
        // Usable again after the reopen.
        _ = try log.append([end(1)])
        try log.sync()
        log.close()
    }

    /// Finished transactions' records go, every unfinished COMMIT stays (also across reopens),
    /// and the newest epoch survives. Needs a subject that reclaims early.
    public static func reclamationKeepsUnfinishedCommitsAndDropsFinishedOnes(_ subject: DecisionLogSubject) throws {
        var (log, _) = try subject.open()
        var appended = 0
        func write(_ records: [DecisionRecord]) throws {
            _ = try log.append(records)
            try log.sync()
            try log.maintain()  // As the group-commit writer does between batches.
            appended += records.count
        }
        func finishedFiller(from first: UInt64, count: UInt64) throws {
            var sequence = first
            while sequence < first + count {
                try write([commit(sequence), commit(sequence + 1), end(sequence), end(sequence + 1)])
                sequence += 2
            }
        }
        log.epoch = 1
        try write([.epochStarted(epoch: 1)])
        let finished = Set((1...40).map { tx($0) })
        // Finished transactions, their ENDs a batch or more after their COMMITs.
        for first in stride(from: UInt64(1), through: 40, by: 4) {
            try write([commit(first), commit(first + 1), commit(first + 2), commit(first + 3)])
            try write([end(first), end(first + 1), end(first + 2), end(first + 3)])
        }
        try finishedFiller(from: 1_000, count: 200)
        log.epoch = 2
        try write([.epochStarted(epoch: 2)])
        let unfinished = Set((500...509).map { tx($0) })
        try write((500...509).map { commit($0) })
        try finishedFiller(from: 2_000, count: 200)

        var recovered: RecoveredDecisionLog
        for round in 1...2 {
            log.close()
            (log, recovered) = try subject.open()
            let commits = commitsPresent(recovered)
            try check(unfinished.isSubset(of: commits), subject, "round \(round): unfinished COMMITs missing: \(unfinished.subtracting(commits).sorted())")
            try check(Set(recovered.unfinishedCommits.keys) == unfinished, subject, "round \(round): unfinished \(recovered.unfinishedCommits.keys.sorted())")
            try check(commits.isDisjoint(with: finished), subject, "round \(round): finished COMMITs kept: \(commits.intersection(finished).sorted())")
            let ends = recovered.records.filter { if case .end(let tx) = $0.record { finished.contains(tx) } else { false } }
            try check(ends.isEmpty, subject, "round \(round): ENDs of finished transactions kept: \(ends.count)")
            try check(recovered.records.count < appended / 2, subject, "round \(round): \(recovered.records.count) of \(appended) records kept")
            try check(recovered.maxEpoch == 2, subject, "round \(round): epoch \(recovered.maxEpoch)")
            log.epoch = recovered.maxEpoch
            try finishedFiller(from: UInt64(3_000 + round * 1_000), count: 100)
        }

        // Once the last ones finish, they go too.
        try write(unfinished.sorted().map { .end(transaction: $0) })
        try finishedFiller(from: 9_000, count: 200)
        log.close()
        recovered = try subject.read()
        try check(recovered.unfinishedCommits.isEmpty, subject, "unfinished \(recovered.unfinishedCommits.keys.sorted())")
        try check(commitsPresent(recovered).isDisjoint(with: unfinished), subject, "finished COMMITs kept: \(commitsPresent(recovered).intersection(unfinished).sorted())")
        try check(recovered.maxEpoch == 2, subject, "epoch \(recovered.maxEpoch)")
    }

    /// Unsynced records are bounded: past `RecordFraming.maxUnsyncedBytes` the log syncs itself.
    public static func unsyncedRecordsAreBounded(_ subject: DecisionLogSubject) throws {
        var (log, _) = try subject.open()
        log.epoch = 1
        _ = try log.append([.epochStarted(epoch: 1)])
        try log.sync()
        let count = 40_000
        let batch = 1_000
        for first in stride(from: 1, through: count, by: batch) {
            _ = try log.append((first..<(first + batch)).map { commit(UInt64($0)) })
        }
        try check(log.boundSyncCount >= 1, subject, "\(count) unsynced COMMITs (over \(RecordFraming.maxUnsyncedBytes) bytes) and no sync of its own")
        try log.sync()
        log.close()
        let recovered: RecoveredDecisionLog
        (log, recovered) = try subject.open()
        try check(recovered.unfinishedCommits.count == count, subject, "\(recovered.unfinishedCommits.count) of \(count) COMMITs back")
        log.close()
    }

    /// A second coordinator opening a held log is refused with one line naming the holder; once
    /// the holder closes, it may take over. (Only for subjects that exclude a second opener.)
    public static func secondOpenerIsRefusedUntilTheHolderCloses(_ subject: DecisionLogSubject) throws {
        guard subject.excludesSecondOpener else { return }
        let (first, _) = try subject.open()
        first.epoch = 1
        _ = try first.append([.epochStarted(epoch: 1), commit(1)])
        try first.sync()
        var refusal = ""
        do {
            let (second, _) = try subject.open()
            second.close()
        } catch {
            refusal = "\(error)"
        }
        try check(refusal.contains("is held by another coordinator") && !refusal.contains("\n"), subject, "second opener: \"\(refusal)\"")
        // The holder still writes; the refused opener changed nothing.
        _ = try first.append([end(1)])
        try first.sync()
        first.close()
        let (taken, recovered) = try subject.open()
        try check(content(recovered).map(\.record) == [.epochStarted(epoch: 1), commit(1), end(1)], subject,
                  "after the takeover: \(content(recovered).map(\.record))")
        taken.close()
    }
}

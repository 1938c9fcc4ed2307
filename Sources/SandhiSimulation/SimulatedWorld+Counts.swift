// What a run counts: each fault injected and each named failure case hit. Counted by index into
// a fixed array on the hot path (an increment per message would otherwise hash a long string);
// turned into names only for the report.

/// A fault the nemesis injected.
enum Fault: Int, CaseIterable {
    case participantCrash, coordinatorCrash, clockJump
    case partitionOfOne, partitionOfHalf, oneWayCutToParticipant, oneWayCutToCoordinator, bridge
    case messageCut, messageLost, messageDelayed, messageDuplicated
    case logSyncFailure, unsyncedLogRecordsLost, tornLogWrite, slowLogSync, reconciliationSyncFailure
    case participantSyncFailure, tornParticipantWrite
    case staleTimerFired
    case submissionRefused
    case heuristicDecision

    var name: String {
        switch self {
        case .participantCrash: "participant crash"
        case .coordinatorCrash: "coordinator crash"
        case .clockJump: "coordinator clock jump"
        case .partitionOfOne: "partition of one participant"
        case .partitionOfHalf: "partition of half the participants"
        case .oneWayCutToParticipant: "one-way cut: coordinator to participant"
        case .oneWayCutToCoordinator: "one-way cut: participant to coordinator"
        case .bridge: "bridge partition"
        case .messageCut: "message cut by a partition"
        case .messageLost: "message lost"
        case .messageDelayed: "message delayed"
        case .messageDuplicated: "message duplicated"
        case .logSyncFailure: "log fsync failure"
        case .unsyncedLogRecordsLost: "unsynced log records lost"
        case .tornLogWrite: "torn decision-log write"
        case .slowLogSync: "slow decision-log fsync"
        case .reconciliationSyncFailure: "reconciliation journal fsync failure"
        case .participantSyncFailure: "participant fsync failure"
        case .tornParticipantWrite: "torn write at a participant"
        case .staleTimerFired: "cancelled timer fired anyway"
        case .submissionRefused: "submission refused: coordinator down"
        case .heuristicDecision: "participant decided a prepared branch alone"
        }
    }
}

/// A named two-phase-commit failure case the run reached.
enum FailureCase: Int, CaseIterable {
    case coordinatorCrashBeforeDurable, coordinatorCrashBetweenDurableAndCommit, coordinatorCrashAfterDurable
    case participantCrashBeforeVote, participantCrashBetweenReplyAndSend, participantCrashAfterVote
    case lostPrepare, lostVote, lostCommit, lostRollback, lostAck
    case duplicatedPrepare, duplicatedVote, duplicatedCommit, duplicatedRollback, duplicatedAck
    case deadlock, inDoubtResolvedByRecovery, stalePrepareOfCommitted
    case tornLogTailTruncated, logBatchTornAtASector, unsyncedCommitSurvived, writeLostAfterFailedLogSync
    case unsyncedReconciliationRecordLanded
    case participantSyncFailureNoVote, tornWriteSetDropped, writeSetLandedWhole
    case lostForget, lostHeuristicReport, duplicatedForget, duplicatedHeuristicReport
    case heuristicCommit, heuristicRollback, heuristicAgreeing, mixedOutcomeRecorded
    case heuristicQuestionAsked, heuristicConfirmedByQuestion, staleHeuristicReportDropped
    case settledByRetryCommit, settledByCompensate, settledByMarkResolved, linkedTransactionFailed

    var name: String {
        switch self {
        case .coordinatorCrashBeforeDurable: "coordinator crash before the decision is durable"
        case .coordinatorCrashBetweenDurableAndCommit: "coordinator crash between the durable decision and the first COMMIT"
        case .coordinatorCrashAfterDurable: "coordinator crash after the decision is durable"
        case .participantCrashBeforeVote: "participant crash before its durable vote"
        case .participantCrashBetweenReplyAndSend: "participant crash between a durable reply and sending it"
        case .participantCrashAfterVote: "participant crash after its durable vote"
        case .lostPrepare: "lost prepare"
        case .lostVote: "lost vote"
        case .lostCommit: "lost commit"
        case .lostRollback: "lost rollback"
        case .lostAck: "lost ack"
        case .duplicatedPrepare: "duplicated prepare"
        case .duplicatedVote: "duplicated vote"
        case .duplicatedCommit: "duplicated commit"
        case .duplicatedRollback: "duplicated rollback"
        case .duplicatedAck: "duplicated ack"
        case .deadlock: "deadlock"
        case .inDoubtResolvedByRecovery: "in-doubt resolved by recovery"
        case .stalePrepareOfCommitted: "stale PREPARE of a committed branch"
        case .tornLogTailTruncated: "torn decision-log tail truncated at recovery"
        case .logBatchTornAtASector: "decision-log batch torn at a sector that did not land"
        case .unsyncedCommitSurvived: "unsynced COMMIT record landed in a crash and was recovered"
        case .writeLostAfterFailedLogSync: "log write lost after a failed fsync"
        case .unsyncedReconciliationRecordLanded: "unsynced reconciliation record landed in a crash"
        case .participantSyncFailureNoVote: "participant fsync failure: no vote, write-set gone"
        case .tornWriteSetDropped: "participant crash mid-persist: torn write-set dropped"
        case .writeSetLandedWhole: "participant crash mid-persist: write-set landed whole"
        case .lostForget: "lost forget"
        case .lostHeuristicReport: "lost heuristic report"
        case .duplicatedForget: "duplicated forget"
        case .duplicatedHeuristicReport: "duplicated heuristic report"
        case .heuristicCommit: "heuristic commit"
        case .heuristicRollback: "heuristic rollback"
        case .heuristicAgreeing: "heuristic agreeing with the decision"
        case .mixedOutcomeRecorded: "mixed outcome recorded"
        case .heuristicQuestionAsked: "heuristic commit of a forgotten transaction questioned"
        case .heuristicConfirmedByQuestion: "mixed outcome confirmed by the answer to its question"
        case .staleHeuristicReportDropped: "stale heuristic report dropped: its question acknowledged"
        case .settledByRetryCommit: "heuristic case settled by retry-commit"
        case .settledByCompensate: "heuristic case settled by compensate"
        case .settledByMarkResolved: "heuristic case settled by mark-resolved"
        case .linkedTransactionFailed: "reconciliation's linked transaction failed"
        }
    }
}

/// Counts by index, for `Fault` or `FailureCase`.
struct Tally<Kind: RawRepresentable & CaseIterable> where Kind.RawValue == Int {
    private var counts = [Int](repeating: 0, count: Kind.allCases.count)

    subscript(kind: Kind) -> Int {
        get { counts[kind.rawValue] }
        set { counts[kind.rawValue] = newValue }
    }

    /// Only the kinds that happened, by name.
    func named(_ name: (Kind) -> String) -> [String: Int] {
        var out: [String: Int] = [:]
        out.reserveCapacity(counts.count { $0 > 0 }) // one table, not regrown as it fills
        for kind in Kind.allCases where counts[kind.rawValue] > 0 { out[name(kind)] = counts[kind.rawValue] }
        return out
    }
}

extension SimulationReport {
    /// Every fault kind the nemesis can inject, by the name `injected` uses.
    public static let faultNames = Fault.allCases.map(\.name)
    /// Every named failure case, by the name `cases` uses.
    public static let caseNames = FailureCase.allCases.map(\.name)
}

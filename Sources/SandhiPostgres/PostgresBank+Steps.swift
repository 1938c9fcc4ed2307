extension PostgresBank {
    /// The steps of a batch's work in PostgreSQL at which a crash leaves a different state
    /// behind: each point between two statements whose effects a restarted bank must sort out.
    /// `faultHook` is called at each, so that a test can stop the process or the server exactly
    /// there and check what the reopened bank makes of it.
    ///
    /// Staging a group: the write-sets commit (`writeSetsCommitted`), `sandhi_stage_group`
    /// writes the members the rule lets through (`groupStaged`), PREPARE TRANSACTION makes their
    /// votes durable (`groupPrepared`), and the batch answers (`replying`).
    ///
    /// Phase two of a group decided as a whole: COMMIT or ROLLBACK PREPARED (`groupCommitted`,
    /// `groupRolledBack`), or the gid found gone, settled by hand (`groupFoundGone`); then, for a
    /// commit, the members a hand rolled back are voted durably (`goneMembersVoted`) and applied
    /// from their write-sets (`membersApplied`); members that went the other way are recorded as
    /// heuristic outcomes (`settledByHandRecorded`).
    ///
    /// Splitting a group: the votes of the members still prepared (`splitVotesRecorded`),
    /// ROLLBACK PREPARED (`splitGroupRolledBack`, or `groupFoundGone`), the committed members
    /// applied again (`membersApplied`), the members still waiting staged and prepared again
    /// under a gid of their own (`groupStaged`, `groupPrepared`, then `splitMembersPrepared`),
    /// and their vote rows, now redundant, deleted (`splitVotesForgotten`).
    ///
    /// Votes held by their rows alone (a split a crash interrupted): a commit applies the
    /// write-set (`membersApplied`), a rollback deletes the rows durably
    /// (`looseRollbacksForgotten`).
    public enum Step: Hashable, Sendable, CaseIterable, CustomStringConvertible {
        /// The batch's write-set rows (and the last batches' clean-up) are committed.
        case writeSetsCommitted
        /// `sandhi_stage_group` has written a group's members and the write-sets are committed;
        /// its transaction is open, nothing prepared.
        case groupStaged
        /// PREPARE TRANSACTION has returned: the group's members' YES votes are durable.
        case groupPrepared
        /// The batch's replies are made and about to be returned to the worker, which sends them.
        case replying
        /// COMMIT PREPARED of a group every member of which commits has returned.
        case groupCommitted
        /// ROLLBACK PREPARED of a group every member of which rolls back has returned.
        case groupRolledBack
        /// COMMIT or ROLLBACK PREPARED (whole, or to split) found the gid gone: someone settled
        /// it by hand. Nothing about what the hand did is recorded yet.
        case groupFoundGone
        /// The members of a committing group whose gid a hand rolled back are voted, durably.
        case goneMembersVoted
        /// Members whose commit was decided and whose prepared transaction is gone are applied
        /// from their write-sets (a split's committing members, a group rolled back by hand, a
        /// vote held by its rows), in one committed transaction.
        case membersApplied
        /// Members found settled by hand otherwise than decided are recorded in
        /// `sandhi_heuristic`, durably.
        case settledByHandRecorded
        /// A group being split: the votes of its members still prepared are in `sandhi_voted`.
        case splitVotesRecorded
        /// A group being split: its ROLLBACK PREPARED has returned.
        case splitGroupRolledBack
        /// A group being split: its members still waiting for their decision are prepared again.
        case splitMembersPrepared
        /// A group being split: the vote rows of the members prepared again are deleted.
        case splitVotesForgotten
        /// Rolled-back votes held by their rows alone are deleted, durably.
        case looseRollbacksForgotten

        public var description: String {
            switch self {
            case .writeSetsCommitted: "write-sets committed"
            case .groupStaged: "group staged"
            case .groupPrepared: "group prepared"
            case .replying: "replying"
            case .groupCommitted: "group committed"
            case .groupRolledBack: "group rolled back"
            case .groupFoundGone: "group found gone"
            case .goneMembersVoted: "gone members voted"
            case .membersApplied: "members applied"
            case .settledByHandRecorded: "settled by hand recorded"
            case .splitVotesRecorded: "split: votes recorded"
            case .splitGroupRolledBack: "split: group rolled back"
            case .splitMembersPrepared: "split: members prepared again"
            case .splitVotesForgotten: "split: votes forgotten"
            case .looseRollbacksForgotten: "loose rollbacks forgotten"
            }
        }
    }

    /// Called at each `Step`, on whichever thread reaches it (an event loop's, or the caller's
    /// for `replying`), before the bank goes on: a test stops the process or the server there.
    public typealias FaultHook = @Sendable (Step) -> Void

    /// For tests: the hook called at every `Step`. Nil in production, where each step costs
    /// one test of an optional. Set between batches (each batch's jobs take the hook they were
    /// made with).
    public var faultHook: FaultHook? {
        get { statements.faultHook }
        set { statements.faultHook = newValue }
    }
}

extension BranchStatements {
    /// The bank's fault hook at `step` (see `PostgresBank.Step`); nothing without one.
    @inline(__always)
    func reached(_ step: PostgresBank.Step) {
        if let faultHook { faultHook(step) }
    }
}

import SandhiEngine

extension ParticipantReply {
    /// The reply without what the operations observed: for tests about votes alone.
    public var voteOnly: ParticipantReply {
        if case .vote(let tx, let vote, _) = self { return .vote(tx, vote) }
        return self
    }
}

extension Array where Element == ParticipantReply {
    public var voteOnly: [ParticipantReply] { map(\.voteOnly) }
}

extension Vote {
    /// The abort cause the engine's coordinator gives a transaction whose one participant,
    /// `participant`, answers PREPARE with this vote (nil when it does not abort): how a bank's
    /// vote is taken, through the coordinator itself rather than a copy of its rule.
    public func abortCause(at participant: ParticipantID) -> AbortCause? {
        var coordinator = Coordinator(configuration: Coordinator.Configuration())
        let tx = TransactionID(epoch: 1, sequence: 1)
        let branch = Branch(participant: participant, operations: [.credit(account: AccountID(validated: "any"), amount: Paise(1))])
        _ = coordinator.handle(.begin(tx, branches: [branch]), nowUs: 1)
        _ = coordinator.handle(.requestCommit(tx), nowUs: 2)
        let effects = coordinator.handle(.voted(tx, participant: participant, vote: self), nowUs: 3)
        return effects.lazy.compactMap { effect -> AbortCause? in
            if case .decided(_, let outcome) = effect { outcome.abortCause } else { nil }
        }.first
    }
}

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

import SandhiEngine

/// A participant's storage as the drivers see it: it takes a batch of coordinator messages,
/// makes all of their effects durable with one commit, and only then returns the replies.
/// Batching is the participant half of group commit: one fsync carries many transactions'
/// prepares and commits.
///
/// Implementations are used from one thread at a time (their driver's worker).
public protocol ParticipantResource: AnyObject {
    var id: ParticipantID { get }

    /// Processes `messages` in order and returns the replies to send, all durable.
    /// On an error nothing of the batch is durable and no reply may be sent; the resource has
    /// reloaded its state from storage, as after a restart.
    func process(_ messages: [ParticipantMessage]) throws -> [ParticipantReply]

    /// Branches prepared in storage and not yet resolved: transaction -> its writer participants.
    func inDoubt() -> [TransactionID: [ParticipantID]]

    /// Releases the storage (files, connections). Called once, by the worker, after its last batch.
    func close()
}

import SandhiEngine

/// A participant's storage as the drivers see it: it takes a batch of coordinator messages and
/// applies all of their effects with one storage commit; a later `makeDurable` puts every
/// commit so far on stable storage. Only then may the replies be sent. Batching is the
/// participant half of group commit (one fsync carries many transactions' prepares and
/// commits), and separating the commit from the fsync lets a driver decide when to pay for
/// the fsync (several batches can share one).
///
/// All methods are called from one thread at a time (the participant's worker).
public protocol ParticipantResource: AnyObject {
    var id: ParticipantID { get }

    /// Processes `messages` in order and returns the replies to send once durable.
    /// On an error nothing of the batch is applied and no reply may be sent; the resource has
    /// reloaded its state from storage, as after a restart.
    func process(_ messages: [ParticipantMessage]) throws -> [ParticipantReply]

    /// Makes every batch that `process` returned before this call durable. An error means
    /// durability is unknown: the resource must not be used again in this process.
    func makeDurable() throws

    /// Branches prepared in storage and not yet resolved: transaction -> its writer participants.
    func inDoubt() -> [TransactionID: [ParticipantID]]

    /// The accounts each prepared branch writes: the locks it holds here, which the
    /// coordinator's lock manager re-takes at recovery.
    func inDoubtLocks() -> [TransactionID: [AccountID]]

    /// Releases the storage (files, connections). Called once, by the worker, after its last batch.
    func close()
}

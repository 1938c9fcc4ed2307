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

    /// Whether any branch is prepared here (cheaper than `inDoubt`, for a worker deciding
    /// whether there is anything to ask about).
    var hasInDoubt: Bool { get }

    /// The accounts each prepared branch writes: the locks it holds here, which the
    /// coordinator's lock manager re-takes at recovery.
    func inDoubtLocks() -> [TransactionID: [AccountID]]

    /// Releases the storage (files, connections). Called once, by the worker, after its last batch.
    func close()

    /// Periodic housekeeping between batches: decide on its own every branch prepared longer
    /// than the resource's heuristic policy allows (if it has one), and report again every
    /// heuristic decision the coordinator has not yet forgotten. Replies as from `process`.
    func sweep() throws -> [ParticipantReply]

    /// Whether `sweep` has anything to do (a heuristic policy, or decisions to report): the
    /// worker wakes for it only then.
    var needsSweep: Bool { get }

    /// Heuristic decisions not yet forgotten by the coordinator: what recovery reports to it.
    func unforgottenHeuristics() -> [TransactionID: ParticipantProtocol.Heuristic]

    /// How long a batch smaller than the one before may wait for more messages (0: never).
    /// Worth it only where a batch costs about the same whatever its size; see the worker.
    var batchLingerUs: UInt64 { get }
}

/// A resource without heuristic decisions never needs a sweep.
extension ParticipantResource {
    public var hasInDoubt: Bool { !inDoubt().isEmpty }
    public var needsSweep: Bool { false }
    public func sweep() throws -> [ParticipantReply] { [] }
    public func unforgottenHeuristics() -> [TransactionID: ParticipantProtocol.Heuristic] { [:] }
    /// A batch of a local store costs about one fsync whatever its size, and waiting would
    /// only add to it: no lingering.
    public var batchLingerUs: UInt64 { 0 }
}

/// When a participant stops waiting for the coordinator and decides a prepared branch itself.
public struct HeuristicPolicy: Hashable, Sendable {
    /// How long a branch may stay prepared.
    public var afterMs: Int64
    /// What it then does with it.
    public var commit: Bool

    public init(afterMs: Int64, commit: Bool) {
        precondition(afterMs >= 0)
        self.afterMs = afterMs
        self.commit = commit
    }
}

import SandhiEngine
import SandhiParticipants

// What the console (and the live audit) may look at while the driver runs: a copy of the
// coordinator, each participant's health, and probes that participants answer from their own
// storage (ParticipantProbe.swift). None of it changes what the driver does; each costs the
// driver one short acquisition of its lock, and a probe costs each participant one pause
// between two batches.
extension CoordinatorDriver {
    /// A copy of the coordinator as it is now: every transaction in flight with its branches and
    /// votes, the lock table and wait-for graph, the deadlock history, the reconciliation queue.
    ///
    /// Cost: the copy itself is O(1) under the driver's lock (the coordinator is a value type;
    /// its collections are copy-on-write and only their storage is retained). The price comes
    /// later, once per snapshot: the engine's next change to each collection the snapshot still
    /// shares copies that collection whole (O(its size), on the driver's path, under its lock):
    /// with 10,000 transactions in flight and 20,000 locks held, the input after a snapshot
    /// took about 4 ms in a debug build instead of 0.05 ms. So take snapshots at a display's
    /// pace (a few a second), not per event, and drop each one before taking the next; the
    /// event stream (`onEvent`) is the cheap way to follow every change.
    public func snapshot() -> Coordinator {
        state.withLock { $0.core.coordinator }
    }

    /// One participant's health as the driver sees it.
    public struct ParticipantHealth: Sendable, Equatable {
        public var participant: ParticipantID
        /// Crashed by a live fault and not yet restarted.
        public var down: Bool
        /// Stopped for good after a failed fsync (durability unknown): why.
        public var failure: String?
        public var batches: Int
        public var messages: Int
        public var syncs: Int
        /// Messages waiting for the participant's thread to take them.
        public var queued: Int
        /// Moving averages of storing one batch and of one fsync (0 until the first).
        public var recentBatchUs: UInt64
        public var recentSyncUs: UInt64
        /// Messages that failed even alone, after their batch failed (a poisoned COMMIT: see
        /// `ParticipantWorker`); their transactions stay in flight for an operator.
        public var isolatedFailures: Int
    }

    /// Every participant's health, in participant order. Cheap: a few counters each, no
    /// storage touched (a probe reads storage; this does not).
    public var participantHealth: [ParticipantHealth] {
        let crashed = state.withLock { $0.faults.crashed }
        return workers.values.sorted { $0.id < $1.id }.map { worker in
            ParticipantHealth(participant: worker.id, down: crashed.contains(worker.id), failure: worker.failure,
                              batches: worker.batches, messages: worker.messages, syncs: worker.syncs, queued: worker.queued,
                              recentBatchUs: worker.recentBatchUs, recentSyncUs: worker.recentSyncUs,
                              isolatedFailures: worker.isolatedFailures)
        }
    }

    /// Asks every participant's worker to run `body` on its own thread against its storage,
    /// between two of its batches, and returns every answer. A participant that is down answers
    /// `.down`; one that has not come round to it by `timeoutMs` is `.timedOut`.
    ///
    /// `hold`: each worker, once it has answered, takes no further batch until all have (or the
    /// deadline passes), so the answers describe one instant; the coordinator is copied at that
    /// instant too (`ProbeResult.coordinator`). Every bank stands still for as long as the
    /// slowest one takes to come round and answer, so a holding probe should ask only what is
    /// quick to answer (`ProbeResult.heldUs` says what it cost). Without `hold`, each worker
    /// pauses only for its own answer.
    public func probeParticipants<Answer: Sendable>(
        hold: Bool, timeoutMs: UInt64 = 2_000,
        _ body: @escaping @Sendable (ParticipantResource) throws -> Answer
    ) async -> ProbeResult<Answer> {
        let targets = Array(workers.values)
        guard !targets.isEmpty else { return ProbeResult(answers: [:], consistent: hold, coordinator: hold ? snapshot() : nil, heldUs: 0) }
        let round = ProbeRound(expected: Set(targets.map(\.id)), hold: hold, whileHeld: { [weak self] in self?.snapshot() }, body: body)
        for worker in targets { worker.submit(round) }
        let deadline = Task {
            try await Task.sleep(nanoseconds: timeoutMs * 1_000_000)
            round.expire()
        }
        let result = await round.outcome()
        deadline.cancel()
        return result
    }
}

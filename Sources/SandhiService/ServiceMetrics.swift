import CoreMetrics
import SandhiEngine
import SandhiRuntime

/// The node's metrics, through swift-metrics into the factory it is given (`sandhi serve`
/// gives Prometheus's, scraped at `/metrics`):
///
///   sandhi_transactions_total{outcome}          transactions finished, committed or aborted
///   sandhi_commit_latency_seconds               begin to the end of phase two, committed ones
///   sandhi_decision_log_latency_seconds         a COMMIT record appended until durable (group commit + fsync)
///   sandhi_vote_latency_seconds{participant}    PREPARE sent until the vote arrived
///   sandhi_deadlocks_total, sandhi_lock_waits_total
///   sandhi_log_syncs_total                      the decision log's fsyncs
///   sandhi_stream_events_missed_total           events slow stream readers were told they missed
///   sandhi_in_flight, sandhi_in_doubt, sandhi_heuristic_cases_open
///   sandhi_participant_up{participant}, sandhi_participant_queued{participant}
///
/// Event-derived figures come from following the event hub on a task of their own (the engine
/// never waits for them); the rest are read from the node when scraped (`refresh`).
final class ServiceMetrics: Sendable {
    private let node: SandhiNode
    private let hub: EventHub
    private let factory: any MetricsFactory
    private let committed: Counter
    private let aborted: Counter
    private let commitLatency: Timer
    private let decisionLatency: Timer
    private let deadlocks: Counter
    private let lockWaits: Counter
    private let logSyncs: Counter
    private let eventsMissed: Counter
    private let inFlight: Meter
    private let inDoubt: Meter
    private let heuristicOpen: Meter
    private struct Polled {
        var logSyncs = 0
        var driver: ObjectIdentifier?
        var eventsMissed: UInt64 = 0
        var voteTimers: [ParticipantID: Timer] = [:]
    }
    private let polled = Lock(Polled())

    init(node: SandhiNode, hub: EventHub, factory: any MetricsFactory) {
        self.node = node
        self.hub = hub
        self.factory = factory
        committed = Counter(label: "sandhi_transactions_total", dimensions: [("outcome", "committed")], factory: factory)
        aborted = Counter(label: "sandhi_transactions_total", dimensions: [("outcome", "aborted")], factory: factory)
        commitLatency = Timer(label: "sandhi_commit_latency_seconds", factory: factory)
        decisionLatency = Timer(label: "sandhi_decision_log_latency_seconds", factory: factory)
        deadlocks = Counter(label: "sandhi_deadlocks_total", factory: factory)
        lockWaits = Counter(label: "sandhi_lock_waits_total", factory: factory)
        logSyncs = Counter(label: "sandhi_log_syncs_total", factory: factory)
        eventsMissed = Counter(label: "sandhi_stream_events_missed_total", factory: factory)
        inFlight = Meter(label: "sandhi_in_flight", factory: factory)
        inDoubt = Meter(label: "sandhi_in_doubt", factory: factory)
        heuristicOpen = Meter(label: "sandhi_heuristic_cases_open", factory: factory)
    }

    /// Follows the hub from now until it closes.
    func follow() async {
        let (wakeups, token) = hub.subscribe()
        defer { hub.unsubscribe(token) }
        var cursor = hub.lastID
        var iterator = wakeups.makeAsyncIterator()
        while true {
            let read = hub.read(after: cursor, limit: 4_096)
            for numbered in read.events { record(numbered.event) }
            if let last = read.events.last { cursor = last.id } else if read.missed > 0 { cursor += read.missed }
            if !read.events.isEmpty || read.missed > 0 { continue }
            guard await iterator.next() != nil else { return }
        }
    }

    func record(_ event: EngineEvent) {
        switch event.kind {
        case .finished(_, let outcome, let durationUs):
            if outcome.isCommitted {
                committed.increment()
                commitLatency.recordMicroseconds(durationUs)
            } else {
                aborted.increment()
            }
        case .decisionDurable(_, _, let latencyUs):
            decisionLatency.recordMicroseconds(latencyUs)
        case .voteReceived(_, let participant, _, let latencyUs):
            voteTimer(participant).recordMicroseconds(latencyUs)
        case .deadlockDetected:
            deadlocks.increment()
        case .lockWaiting:
            lockWaits.increment()
        default:
            break
        }
    }

    /// The figures read from the node, brought up to date (called at each scrape).
    func refresh() {
        let driver = node.driver
        let coordinator = driver.snapshot()
        inFlight.set(coordinator.inFlightCount)
        inDoubt.set(coordinator.transactions.values.reduce(0) { count, transaction in
            count + ([.prepared, .committing, .aborting].contains(transaction.state) ? 1 : 0)
        })
        heuristicOpen.set(coordinator.reconciliation.unsettled.count)
        for health in driver.participantHealth {
            let labels = [("participant", health.participant.name)]
            Meter(label: "sandhi_participant_up", dimensions: labels, factory: factory).set(health.down || health.failure != nil ? 0 : 1)
            Meter(label: "sandhi_participant_queued", dimensions: labels, factory: factory).set(health.queued)
        }
        // Counters from running totals: a new incarnation of the coordinator (a restart) starts
        // its totals again from zero.
        let syncs = driver.logStats.syncs
        let missed = hub.missedTotal
        let (newSyncs, newMissed) = polled.withLock { polled -> (Int, UInt64) in
            let identity = ObjectIdentifier(driver)
            let base = polled.driver == identity ? polled.logSyncs : 0
            polled.driver = identity
            polled.logSyncs = syncs
            defer { polled.eventsMissed = missed }
            return (max(0, syncs - base), missed - min(missed, polled.eventsMissed))
        }
        if newSyncs > 0 { logSyncs.increment(by: Int64(newSyncs)) }
        if newMissed > 0 { eventsMissed.increment(by: Int64(newMissed)) }
    }

    private func voteTimer(_ participant: ParticipantID) -> Timer {
        polled.withLock { polled in
            if let timer = polled.voteTimers[participant] { return timer }
            let timer = Timer(label: "sandhi_vote_latency_seconds", dimensions: [("participant", participant.name)], factory: factory)
            polled.voteTimers[participant] = timer
            return timer
        }
    }
}

extension Timer {
    fileprivate func recordMicroseconds(_ micros: UInt64) { recordNanoseconds(Int64(clamping: micros) * 1_000) }
}

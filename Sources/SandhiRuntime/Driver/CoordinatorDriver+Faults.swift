import SandhiEngine
import SandhiParticipants

// Live faults on the real-time driver (see `LiveFault`). A crashed participant's worker stops
// and loses what it had not made durable; a partitioned or crashed participant's messages are
// lost; loss and delay act on the messages to one participant. Nothing here changes the
// engine: the coordinator's resend timers and prepare deadline, and the participants'
// inquiries, are what heal everything once a fault ends, exactly as in the simulator.
extension CoordinatorDriver {
    /// Applies a fault this driver can apply alone: every one but a participant's restart (its
    /// storage must be opened again: `restartParticipant(_:resource:)`) and the coordinator's
    /// (a new driver: `SandhiNode.restartCoordinator`). `healAll` heals every link here; the
    /// node restarts the crashed participants. Each fault is an event on the stream; one that
    /// cannot apply now is refused with one line, and nothing changes.
    public func apply(_ fault: LiveFault) throws(LiveFaultError) {
        if let participant = fault.participant, workers[participant] == nil {
            throw LiveFaultError("unknown participant \(participant)")
        }
        switch fault {
        case .crashParticipant(let participant):
            try crashParticipant(participant)
        case .crashCoordinator:
            try crash()
        case .restartParticipant, .restartCoordinator:
            throw LiveFaultError("'\(fault)' needs the node: it opens the storage again")
        case .partition(let participant):
            try changeFaults { faults in
                if faults.partitioned.contains(participant) { return .refused("\(participant) is already partitioned") }
                faults.partition(participant)
                return .injected(fault)
            }
        case .heal(let participant):
            try changeFaults { faults in
                guard faults.hasLinkFault(participant) else { return .refused("\(participant) has no partition, loss or delay to heal") }
                return .cleared(fault, released: faults.heal(participant).map { (participant, $0) })
            }
        case .dropMessages(let participant, let perMille):
            guard perMille <= 1_000 else { throw LiveFaultError("loss of \(perMille) in 1,000 messages: at most 1,000") }
            try changeFaults { faults in
                if perMille > 0 {
                    faults.setDrop(participant, perMille: perMille)
                    return .injected(fault)
                }
                guard faults.dropPerMille[participant] != nil else { return .refused("\(participant) loses no messages") }
                faults.setDrop(participant, perMille: 0)
                return .cleared(fault, released: [])
            }
        case .delayMessages(let participant, let delayMs):
            guard delayMs <= LiveFault.maxDelayMs else { throw LiveFaultError("delay of \(delayMs)ms: at most \(LiveFault.maxDelayMs)ms") }
            try changeFaults { faults in
                if delayMs > 0 {
                    if faults.delayTimers == nil {
                        faults.delayTimers = TimerService<UInt64>(name: "sandhi-delays") { [weak self] _ in self?.releaseDelayed() }
                    }
                    _ = faults.setDelay(participant, delayMs: delayMs)
                    return .injected(fault)
                }
                guard faults.delayMs[participant] != nil else { return .refused("\(participant) has no delay") }
                return .cleared(fault, released: faults.setDelay(participant, delayMs: 0).map { (participant, $0) })
            }
        case .failNextLogSync:
            try changeFaults { faults in
                guard !faults.logSyncFailureArmed else { return .refused("the decision log's next fsync already fails") }
                faults.logSyncFailureArmed = true
                failNextLogSync()
                return .injected(fault)
            }
        case .healAll:
            try changeFaults { faults in
                var released: [(ParticipantID, ParticipantMessage)] = []
                for participant in faults.faultyLinks {
                    released += faults.heal(participant).map { (participant, $0) }
                }
                return .cleared(fault, released: released)
            }
        }
        startInquiries()
    }

    /// Live fault: `participant`'s process dies. Its worker stops between two batches; messages
    /// queued for it and replies it had not yet synced and sent are lost; its storage is closed
    /// with what it had committed. Messages to it are lost until `restartParticipant`.
    public func crashParticipant(_ participant: ParticipantID) throws(LiveFaultError) {
        guard let worker = workers[participant] else { throw LiveFaultError("unknown participant \(participant)") }
        try changeFaults { faults in
            if faults.crashed.contains(participant) { return .refused("\(participant) is already down") }
            faults.crash(participant)
            return .injected(.crashParticipant(participant))
        }
        startInquiries()
        // Outside the driver's lock: the worker may be waiting for it (a failed fsync halts).
        worker.crash()
    }

    /// Live fault ends: `participant` runs again over `resource`, its storage opened anew (which
    /// restored its prepared branches). It first says YES again for each of those, then works
    /// on. Throws, leaving `resource` to the caller, if the participant is not down.
    public func restartParticipant(_ participant: ParticipantID, resource: ParticipantResource) throws(LiveFaultError) {
        guard let worker = workers[participant] else { throw LiveFaultError("unknown participant \(participant)") }
        precondition(resource.id == participant, "storage of \(resource.id) handed to \(participant)")
        try changeFaults { faults in faults.crashed.contains(participant) ? .unchanged : .refused("\(participant) is not down") }
        guard worker.restart(with: resource) else { throw LiveFaultError("\(participant) is still going down; try again") }
        do {
            try changeFaults { faults in
                faults.restart(participant)
                return .cleared(.restartParticipant(participant), released: [])
            }
        } catch {
            // The coordinator went down meanwhile, and this participant with it.
            worker.crash()
        }
    }

    /// Live fault: the coordinator's process dies, and with it the banks it hosts. No input is
    /// handled after this, no log record is written (records queued for the log are lost, as
    /// unsynced ones would be), waiting clients are answered `halted`, and every participant
    /// worker crashes. Recovery in a new incarnation (`SandhiNode.restartCoordinator`) settles
    /// what was in flight. `shutdown` still releases what is left.
    public func crash() throws(LiveFaultError) {
        let reason = "crashed (injected fault)"
        var resume = AfterUnlock()
        let first = state.withLock { state -> Bool in
            guard !state.faults.coordinatorCrashed else { return false }
            state.faults.coordinatorCrashed = true
            onEvent?(EngineEvent(atUs: MonotonicClock.nowUs(), .faultInjected(LiveFault.crashCoordinator.description)))
            halt(reason, state: &state, resume: &resume) // from here on, no input is handled
            return true
        }
        finish(resume) // answers the waiting clients
        guard first else { throw LiveFaultError("the coordinator is already down") }
        timers.withLock { $0?.stop(); $0 = nil }
        stopDelayTimers()
        log.abandon()
        for worker in workers.values { worker.crash() }
    }

    /// Every fault in force, in the order the console's header shows them.
    public var activeFaults: [LiveFault] { state.withLock { $0.faults.active } }

    /// Messages the live faults have lost or held so far.
    public var faultCounters: LiveFaultCounters { state.withLock { $0.faults.counters } }

    /// Whether `participant` is crashed (and not yet restarted).
    public func isDown(_ participant: ParticipantID) -> Bool { state.withLock { $0.faults.crashed.contains(participant) } }

    // MARK: - Inside the driver

    /// The slow path of a send, taken while any fault is in force. Under the driver's lock.
    func sendThroughFaults(_ message: ParticipantMessage, to worker: ParticipantWorker, nowUs: UInt64,
                           faults: inout LiveFaultState, resume: inout AfterUnlock) {
        switch faults.route(message, to: worker.id, nowUs: nowUs) {
        case .deliver:
            resume.send(message, via: worker)
        case .lost:
            break
        case .delayed(let ticket, let afterUs):
            assert(faults.delayTimers != nil, "a delay without its timers")
            faults.delayTimers?.schedule(ticket, afterUs: afterUs)
        }
    }

    func stopDelayTimers() {
        let delayTimers = state.withLock { state in
            defer { state.faults.delayTimers = nil }
            return state.faults.delayTimers
        }
        delayTimers?.stop()
    }

    /// A delayed message is due: passes on every due one, in order.
    private func releaseDelayed() {
        var resume = AfterUnlock()
        state.withLock { state in
            guard !state.faults.coordinatorCrashed else { return }
            for (participant, message) in state.faults.takeDue(nowUs: MonotonicClock.nowUs()) {
                resume.send(message, via: workers[participant]!)
            }
        }
        finish(resume)
    }

    /// Participants ask about branches that stay prepared from the first fault on: a fault can
    /// lose the message that would have resolved them.
    private func startInquiries() {
        for worker in workers.values { worker.startInquiring() }
    }

    private enum FaultChange {
        case refused(String)
        case unchanged
        case injected(LiveFault)
        /// `released`: messages a delay held, to pass on now, in order.
        case cleared(LiveFault, released: [(ParticipantID, ParticipantMessage)])
    }

    /// Under the driver's lock: refuses while the coordinator is down, lets `change` act on the
    /// fault state (or refuse), emits the event and passes on what a delay released.
    private func changeFaults(_ change: (inout LiveFaultState) -> FaultChange) throws(LiveFaultError) {
        var resume = AfterUnlock()
        let refusal: String? = state.withLock { state in
            if state.faults.coordinatorCrashed { return "the coordinator is down: restart it first (restart coordinator)" }
            if let reason = state.core.halted { return "the coordinator is halted (\(reason)): restart it first (restart coordinator)" }
            if state.shutDown { return "the coordinator is shutting down" }
            let nowUs = MonotonicClock.nowUs()
            switch change(&state.faults) {
            case .refused(let why):
                return why
            case .unchanged:
                break
            case .injected(let fault):
                onEvent?(EngineEvent(atUs: nowUs, .faultInjected(fault.description)))
            case .cleared(let fault, let released):
                onEvent?(EngineEvent(atUs: nowUs, .faultCleared(fault.description)))
                for (participant, message) in released { resume.send(message, via: workers[participant]!) }
            }
            return nil
        }
        finish(resume)
        if let refusal { throw LiveFaultError(refusal) }
    }
}

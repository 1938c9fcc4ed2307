import SandhiEngine
import SandhiParticipants

// Live faults on a running node: what the console's fault commands and scripted demos call.
extension SandhiNode {
    /// Applies `fault` (see `LiveFault` for each one's meaning). Refused with one line, and
    /// nothing changed, when it cannot apply now: crashing a participant that is down,
    /// restarting one that runs, any fault but a restart while the coordinator is down.
    /// `restartCoordinator` returns once recovery is done.
    public func inject(_ fault: LiveFault) async throws(LiveFaultError) {
        switch fault {
        case .restartParticipant(let participant):
            try restartParticipant(participant)
        case .restartCoordinator:
            do {
                try await restartCoordinator()
            } catch let error as LiveFaultError {
                throw error
            } catch {
                throw LiveFaultError("the coordinator could not restart: \(error)")
            }
        case .healAll:
            let driver = self.driver
            try driver.apply(.healAll)
            for participant in configuration.participants.map(\.id) where driver.isDown(participant) {
                try restartParticipant(participant)
            }
        default:
            try driver.apply(fault)
        }
    }

    /// Every fault in force, for the console's header.
    public var activeFaults: [LiveFault] { driver.activeFaults }

    /// Opens `participant`'s bank again (which restores its prepared branches) and hands it
    /// to its worker.
    private func restartParticipant(_ participant: ParticipantID) throws(LiveFaultError) {
        let driver = self.driver
        guard configuration.participants.contains(where: { $0.id == participant }) else {
            throw LiveFaultError("unknown participant \(participant)")
        }
        // Before opening: the bank of a participant still running is open (and locked) by it.
        guard driver.isDown(participant) else { throw LiveFaultError("\(participant) is not down") }
        let bank: Bank
        do {
            guard let configured = configuration.participant(participant) else { throw LiveFaultError("unknown participant \(participant)") }
            bank = try directory.openBank(configured, of: configuration, logger: logger)
        } catch {
            throw LiveFaultError("\(participant) could not restart: \(error)")
        }
        do {
            try driver.restartParticipant(participant, resource: bank)
        } catch {
            bank.close()
            throw error
        }
    }

    /// Starts the next incarnation of the coordinator in this process, as after a crash: the
    /// current one is crashed first if it still runs (with the banks it hosts), then the
    /// decision log and the banks are opened again and recovery runs, exactly as in `start`,
    /// before this returns. The new incarnation begins on a healed network: the faults of the
    /// old one end with it. The report names every in-doubt transaction and its outcome. If
    /// the start fails, the old incarnation stays (crashed) and the restart may be tried again.
    @discardableResult
    public func restartCoordinator() async throws -> RecoveryReport {
        let old = try incarnation.withLock { incarnation throws(LiveFaultError) -> CoordinatorDriver in
            guard !incarnation.restarting else { throw LiveFaultError("a coordinator restart is already under way") }
            incarnation.restarting = true
            return incarnation.driver
        }
        defer { incarnation.withLock { $0.restarting = false } }
        if !old.activeFaults.contains(.crashCoordinator) { try? old.crash() }
        old.shutdown() // what a crash leaves: timers, the inbox, the threads' last breath
        guard !stopped.withLock({ $0 }) else { throw LiveFaultError("the node is stopped") }
        onEvent?(EngineEvent(atUs: MonotonicClock.nowUs(), .faultCleared(LiveFault.restartCoordinator.description)))
        let (driver, report) = try await Self.openIncarnation(directory: directory, configuration: configuration,
                                                              logger: logger, onEvent: onEvent)
        let replaced = incarnation.withLock { incarnation in
            // `stop` may have run meanwhile: it stopped the old driver, and must not miss the new one.
            guard !stopped.withLock({ $0 }) else { return false }
            incarnation.driver = driver
            incarnation.recovery = report
            return true
        }
        guard replaced else {
            driver.shutdown()
            throw LiveFaultError("the node was stopped during the restart")
        }
        return report
    }
}

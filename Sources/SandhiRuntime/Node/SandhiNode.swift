import Glibc
import Logging
import SandhiEngine
import SandhiParticipants

/// A running Sandhi coordinator over one data directory: the directory locked, the decision
/// log open with a fresh epoch, every bank open, and recovery finished before the first new
/// transaction is accepted.
///
/// The coordinator and the banks it hosts form one incarnation (one driver); a live fault can
/// crash it and `restartCoordinator` starts the next one in-process, through the same recovery
/// as `start` (SandhiNode+Faults.swift).
public final class SandhiNode: Sendable {
    public let directory: DataDirectory
    public let configuration: SandhiConfiguration
    private let lock: DirectoryLock
    let logger: Logger
    let onEvent: (@Sendable (EngineEvent) -> Void)?
    struct Incarnation {
        var driver: CoordinatorDriver
        var recovery: RecoveryReport
        /// A restart is under way: a second one is refused.
        var restarting = false
    }
    let incarnation: Lock<Incarnation>

    /// The current incarnation's driver (a new one after `restartCoordinator`).
    public var driver: CoordinatorDriver { incarnation.withLock { $0.driver } }
    /// What the current incarnation's start found and settled.
    public var recovery: RecoveryReport { incarnation.withLock { $0.recovery } }
    /// Every operator command, signed and chained (`DIR/audit.log`); `perform` writes it.
    public let auditTrail: AuditTrail
    /// What the journal on disk reflects (deadlocks found, and how many stand unresolved).
    private let journaled = Lock<(total: Int, unresolved: Int)>((0, 0))
    let stopped = Lock(false)

    /// Opens everything and runs recovery (every start is a recovery). Takes the directory's
    /// lock, or adopts `lock` if the caller already holds it (to read the banks first).
    /// `adjust` changes the loaded configuration for this run only (a benchmark switching deadlock
    /// detection off, say); `sandhi.toml` is not touched.
    public static func start(directory: DataDirectory, lock heldLock: DirectoryLock? = nil, logger: Logger,
                             onEvent: (@Sendable (EngineEvent) -> Void)? = nil,
                             adjust: (inout SandhiConfiguration) -> Void = { _ in }) async throws -> SandhiNode {
        var configuration = try directory.loadConfiguration()
        adjust(&configuration)
        let lock = try heldLock ?? directory.lock()
        let auditTrail: AuditTrail
        do {
            auditTrail = try openAuditTrail(directory, logger: logger)
        } catch {
            if heldLock == nil { lock.release() }
            throw error
        }
        let (driver, report) = try await openIncarnation(directory: directory, configuration: configuration, logger: logger, onEvent: onEvent)
        return SandhiNode(directory: directory, configuration: configuration, driver: driver, recovery: report, lock: lock,
                          auditTrail: auditTrail, logger: logger, onEvent: onEvent)
    }

    /// The audit trail, and its key: a directory made before keys existed gets one now.
    private static func openAuditTrail(_ directory: DataDirectory, logger: Logger) throws -> AuditTrail {
        if !DataDirectory.exists(AuditKey.privatePath(directory.path)) {
            // Never a new key over records the old one signed: they could no longer be verified.
            let trailBytes = (try? directory.io.fileSystem.readAll(directory.auditTrailPath))?.count ?? 0
            guard trailBytes == 0 else {
                throw AuditKey.KeyError.missing(AuditKey.privatePath(directory.path)
                                                + " (and \(directory.auditTrailPath) holds records it signed: restore the key)")
            }
            try AuditKey.create(in: directory.path)
            logger.notice("made the audit trail's signing key", metadata: ["path": "\(AuditKey.privatePath(directory.path))"])
        }
        let key = try AuditKey.loadPrivate(from: directory.path)
        let (trail, notes) = try AuditTrail.open(path: directory.auditTrailPath, key: key, fileSystem: directory.io.fileSystem,
                                                 logger: logger)
        for note in notes { logger.warning("\(note)") }
        return trail
    }

    /// Opens the decision log with a fresh epoch and every bank, and runs recovery: one
    /// incarnation of the coordinator. The caller holds the directory's lock.
    static func openIncarnation(directory: DataDirectory, configuration: SandhiConfiguration, logger: Logger,
                                onEvent: (@Sendable (EngineEvent) -> Void)?) async throws -> (CoordinatorDriver, RecoveryReport) {
        // The segment files in coordinator/, or the PostgreSQL log `[coordinator] log` names.
        let (store, recovered) = try directory.openDecisionLog(configuration, logger: logger)
        var banks: [Bank] = []
        var recovering: [RecoveringBank] = []
        do {
            for participant in configuration.participants {
                let bank = try directory.openBank(participant, of: configuration, logger: logger)
                banks.append(bank)
                recovering.append(RecoveringBank(participant: participant.id, inDoubt: bank.inDoubt(), locks: bank.inDoubtLocks(),
                                                 highestEpoch: try bank.highestEpoch(), heuristics: bank.unforgottenHeuristics()))
            }
        } catch {
            for bank in banks { bank.close() }
            store.close()
            throw error
        }
        let journal: ReconciliationJournal
        let reconciliation: ReconciliationQueue
        let journalNotes: [String]
        let plan: RecoveryPlan
        do {
            (journal, reconciliation, journalNotes) = try ReconciliationJournal.open(path: directory.reconciliationPath, fileSystem: directory.io.fileSystem, logger: logger)
            let commits = recovered.commits
            let undecided = Set(RecoveryPlan.undecided(commits: commits, banks: recovering))
            plan = try RecoveryPlan.make(logEpoch: recovered.maxEpoch, commits: commits, banks: recovering) { tx in
                // Asked only of transactions with no COMMIT in the log, before presuming abort:
                // a branch a bank committed (not alone) proves the decision was COMMIT.
                guard undecided.contains(tx) else { return [] }
                var committers: [ParticipantID] = []
                for bank in banks where try bank.committedOnCoordinatorsWord(tx) { committers.append(bank.id) }
                return committers
            }
        } catch let refusal as RecoveryRefusal {
            for bank in banks { bank.close() }
            store.close()
            throw DecisionLogError.io("\(directory.decisionLogDescription(configuration)): \(refusal)")
        } catch {
            for bank in banks { bank.close() }
            store.close()
            throw error
        }
        // The new epoch is durable before any transaction id of it is handed out: ids stay
        // unique across crashes even though aborts leave no record.
        let epoch = plan.epoch
        store.epoch = epoch
        // Sized far above the coordinator's in-flight limit (each transaction queues at most a
        // COMMIT and an END), so appending under the driver's lock never blocks.
        let writer = GroupCommitWriter(store: store, maxQueued: 1 << 20, logger: logger)
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                writer.append(.epochStarted(epoch: epoch), forced: true) { result in
                    continuation.resume(with: result.map { _ in () }.mapError { $0 as Error })
                }
            }
        } catch {
            writer.shutdown()
            for bank in banks { bank.close() }
            throw error
        }
        for decision in plan.decisions {
            switch decision.reason {
            case .commitLoggedAndEnded(let participant):
                logger.warning("prepared branch of a transaction whose COMMIT was acknowledged; committing it",
                               metadata: ["tx": "\(decision.transaction)", "participant": "\(participant)"])
            case .committedAt(let participant):
                logger.warning("no COMMIT in the log for a transaction a bank committed; committing it everywhere",
                               metadata: ["tx": "\(decision.transaction)", "committed at": "\(participant)"])
            case .commitLogged, .presumedAbort:
                break
            }
        }
        var driverConfiguration = CoordinatorDriver.Configuration()
        driverConfiguration.coordinator.prepareTimeoutMs = configuration.prepareTimeoutMs
        driverConfiguration.coordinator.resendInitialMs = configuration.resendInitialMs
        driverConfiguration.coordinator.lockTimeoutMs = configuration.lockTimeoutMs
        driverConfiguration.coordinator.detectDeadlocks = configuration.detectDeadlocks
        driverConfiguration.coordinator.victimPolicy = configuration.victimPolicy
        driverConfiguration.coordinator.deadlockGraceMs = configuration.deadlockGraceMs
        driverConfiguration.coordinator.plantedBug = configuration.plantedBug
        let driver = CoordinatorDriver(epoch: epoch, log: writer, resources: banks, configuration: driverConfiguration,
                                       logger: logger, journal: journal, reconciliation: reconciliation, onEvent: onEvent)
        let unsettled: [TransactionID]
        do {
            unsettled = try await driver.recover(plan, waitMs: recoveryWaitMs)
        } catch {
            driver.shutdown()
            throw error
        }
        let resolved = plan.decisions.map { decision in
            RecoveredTransaction(transaction: decision.transaction, committed: decision.commit, participants: decision.participants,
                                 reason: decision.reason)
        }
        for item in resolved {
            logger.info("recovered in-doubt transaction", metadata: ["tx": "\(item.transaction)", "outcome": "\(item.committed ? "committed" : "aborted")"])
        }
        for tx in unsettled {
            logger.warning("recovered transaction not yet acknowledged everywhere; its locks stay held and it is resent",
                           metadata: ["tx": "\(tx)"])
        }
        return (driver, RecoveryReport(epoch: epoch, logNotes: recovered.notes + journalNotes, resolved: resolved,
                                       unsettled: unsettled, heuristicsReported: plan.heuristics))
    }

    /// How long a start waits for the transactions recovery drives to be acknowledged before it
    /// goes live without them (they stay in flight, holding their locks).
    static let recoveryWaitMs: UInt64 = 10_000

    private init(directory: DataDirectory, configuration: SandhiConfiguration, driver: CoordinatorDriver,
                 recovery: RecoveryReport, lock: DirectoryLock, auditTrail: AuditTrail, logger: Logger,
                 onEvent: (@Sendable (EngineEvent) -> Void)?) {
        self.directory = directory
        self.auditTrail = auditTrail
        self.configuration = configuration
        self.incarnation = Lock(Incarnation(driver: driver, recovery: recovery))
        self.lock = lock
        self.logger = logger
        self.onEvent = onEvent
        // Keeps the deadlock journal current while deadlocks happen (see `DeadlockJournal`).
        startThread(name: "sandhi-journal") { [weak self] in
            while let node = self, !node.stopped.withLock({ $0 }) {
                node.writeDeadlockJournal()
                usleep(1_000_000)
            }
        }
    }

    /// Drains (transactions in flight get up to `drainTimeoutMs` to finish; the rest are left
    /// to recovery) and stops every thread, then releases the directory.
    public func stop(drainTimeoutMs: UInt64 = 5_000) {
        guard !stopped.withLock({ let was = $0; $0 = true; return was }) else { return }
        driver.shutdown(drainTimeoutMs: drainTimeoutMs)
        writeDeadlockJournal()
        auditTrail.close()
        lock.release()
    }

    /// Rewrites `deadlocks.json` if deadlocks were found or resolved since the last write.
    func writeDeadlockJournal() {
        let (recent, total) = driver.deadlocks
        let unresolved = recent.filter { $0.resolution == nil }.count
        guard total > 0, journaled.withLock({ $0 != (total, unresolved) }) else { return }
        do {
            try DeadlockJournal(deadlocks: recent, total: total).write(to: directory.deadlockHistoryPath,
                                                                     fileSystem: directory.io.fileSystem)
            journaled.withLock { $0 = (total, unresolved) }
        } catch {
            // Diagnostics only: the next tick tries again.
        }
    }
}

/// What a start found and settled.
public struct RecoveryReport: Sendable {
    public var epoch: UInt32
    /// Notes from opening the log (a truncated torn tail, reclaimed segments).
    public var logNotes: [String]
    /// Every in-doubt transaction and what was decided for it.
    public var resolved: [RecoveredTransaction]
    /// Those of `resolved` not yet acknowledged by every participant when the start went live:
    /// still in flight, holding their locks, resent until answered.
    public var unsettled: [TransactionID] = []
    /// Heuristic decisions the participants held at start, reported to the coordinator.
    public var heuristicsReported: [(participant: ParticipantID, transaction: TransactionID, committed: Bool)] = []
}

/// One transaction recovery drove, and why it was decided so.
public struct RecoveredTransaction: Sendable, Equatable {
    public var transaction: TransactionID
    public var committed: Bool
    public var participants: [ParticipantID]
    public var reason: RecoveryPlan.Reason

    public var outcome: Outcome {
        committed ? .committed : .aborted(reason: "in doubt at recovery: no COMMIT record (presumed abort)", cause: .presumedAbort)
    }
}

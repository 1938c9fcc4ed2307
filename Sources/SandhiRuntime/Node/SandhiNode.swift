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
        let (driver, report) = try await openIncarnation(directory: directory, configuration: configuration, logger: logger, onEvent: onEvent)
        return SandhiNode(directory: directory, configuration: configuration, driver: driver, recovery: report, lock: lock,
                          logger: logger, onEvent: onEvent)
    }

    /// Opens the decision log with a fresh epoch and every bank, and runs recovery: one
    /// incarnation of the coordinator. The caller holds the directory's lock.
    static func openIncarnation(directory: DataDirectory, configuration: SandhiConfiguration, logger: Logger,
                                onEvent: (@Sendable (EngineEvent) -> Void)?) async throws -> (CoordinatorDriver, RecoveryReport) {
        // The segment files in coordinator/, or the PostgreSQL log `[coordinator] log` names.
        let (store, recovered) = try directory.openDecisionLog(configuration, logger: logger)
        var banks: [Bank] = []
        var inDoubt: [TransactionID: [ParticipantID]] = [:]
        var held: [TransactionID: [ResourceID]] = [:]
        var banksEpoch: UInt32 = 0
        do {
            for participant in configuration.participants {
                let bank = try directory.openBank(participant, of: configuration, logger: logger)
                banks.append(bank)
                for (tx, writers) in bank.inDoubt() {
                    inDoubt[tx] = writers.isEmpty ? [participant.id] : writers
                }
                for (tx, accounts) in bank.inDoubtLocks() {
                    held[tx, default: []] += accounts.map { ResourceID(participant: participant.id, account: $0) }
                }
                banksEpoch = max(banksEpoch, try bank.highestEpoch())
            }
        } catch {
            store.close()
            throw error
        }
        let journal: ReconciliationJournal
        let reconciliation: ReconciliationQueue
        let journalNotes: [String]
        do {
            (journal, reconciliation, journalNotes) = try ReconciliationJournal.open(path: directory.reconciliationPath, logger: logger)
        } catch {
            store.close()
            throw error
        }
        // Reported to the coordinator once recovery has fed it the log (see below).
        let heuristics = banks.flatMap { bank in
            bank.unforgottenHeuristics().sorted { $0.key < $1.key }.map { (bank.id, $0.key, $0.value) }
        }
        if recovered.maxEpoch == 0 && banksEpoch > 0 {
            // Presumed abort on an empty log would roll back branches that committed elsewhere.
            store.close()
            throw DecisionLogError.io("\(directory.decisionLogDescription(configuration)) is empty, but the banks hold transactions "
                + "up to epoch \(banksEpoch): the log was lost or replaced; restore it before starting")
        }
        // A new epoch, above every epoch in the log and in the banks, durable before any
        // transaction id of it is handed out: ids stay unique across crashes even though aborts
        // leave no record.
        let epoch = max(recovered.maxEpoch, banksEpoch) + 1
        guard epoch <= TransactionID.maxEpoch else {
            store.close()
            throw DecisionLogError.io("coordinator epochs exhausted (\(TransactionID.maxEpoch) starts)")
        }
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
            throw error
        }
        // Every COMMIT still in the log decides its transaction, with or without an END: a
        // participant still prepared for one (it should not be, after an END) commits.
        var committed = recovered.unfinishedCommits
        for (_, record) in recovered.records {
            if case .commit(let tx, let participants) = record, inDoubt[tx] != nil, committed[tx] == nil {
                logger.warning("prepared branch of a transaction whose COMMIT was acknowledged; committing it", metadata: ["tx": "\(tx)"])
                committed[tx] = participants
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
        let resolved: [CoordinatorDriver.RecoveredTransaction]
        do {
            resolved = try await driver.recover(committed: committed, inDoubt: inDoubt, locks: held)
        } catch {
            driver.shutdown()
            throw error
        }
        for item in resolved {
            logger.info("recovered in-doubt transaction", metadata: ["tx": "\(item.transaction)", "outcome": "\(item.outcome.label)"])
        }
        let finishedCommits = recovered.records.compactMap { (_, record) -> TransactionID? in
            if case .commit(let tx, _) = record, committed[tx] == nil { return tx }
            return nil
        }
        driver.completeRecovery(heuristics: heuristics, finishedCommits: finishedCommits)
        return (driver, RecoveryReport(epoch: epoch, logNotes: recovered.notes + journalNotes, resolved: resolved,
                                       heuristicsReported: heuristics.map { ($0.0, $0.1, $0.2.committed) }))
    }

    private init(directory: DataDirectory, configuration: SandhiConfiguration, driver: CoordinatorDriver,
                 recovery: RecoveryReport, lock: DirectoryLock, logger: Logger, onEvent: (@Sendable (EngineEvent) -> Void)?) {
        self.directory = directory
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

    /// Drains and stops every thread, then releases the directory.
    public func stop() {
        guard !stopped.withLock({ let was = $0; $0 = true; return was }) else { return }
        driver.shutdown()
        writeDeadlockJournal()
        lock.release()
    }

    /// Rewrites `deadlocks.json` if deadlocks were found or resolved since the last write.
    func writeDeadlockJournal() {
        let (recent, total) = driver.deadlocks
        let unresolved = recent.filter { $0.resolution == nil }.count
        guard total > 0, journaled.withLock({ $0 != (total, unresolved) }) else { return }
        do {
            try DeadlockJournal(deadlocks: recent, total: total).write(to: directory.deadlockHistoryPath)
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
    public var resolved: [CoordinatorDriver.RecoveredTransaction]
    /// Heuristic decisions the participants held at start, reported to the coordinator.
    public var heuristicsReported: [(participant: ParticipantID, transaction: TransactionID, committed: Bool)] = []
}

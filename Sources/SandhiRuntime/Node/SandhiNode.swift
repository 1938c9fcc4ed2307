import Logging
import SandhiEngine
import SandhiParticipants

/// A running Sandhi coordinator over one data directory: the directory locked, the decision
/// log open with a fresh epoch, every bank open, and recovery finished before the first new
/// transaction is accepted.
public final class SandhiNode: Sendable {
    public let directory: DataDirectory
    public let configuration: SandhiConfiguration
    public let driver: CoordinatorDriver
    public let recovery: RecoveryReport
    private let lock: DirectoryLock

    /// Opens everything and runs recovery (every start is a recovery).
    public static func start(directory: DataDirectory, logger: Logger,
                             onEvent: (@Sendable (EngineEvent) -> Void)? = nil) async throws -> SandhiNode {
        let configuration = try directory.loadConfiguration()
        let lock = try directory.lock()
        let (store, recovered) = try DecisionLogStore.open(
            directory: directory.coordinatorPath, segmentMaxBytes: configuration.segmentMaxBytes, logger: logger)
        // A new epoch, durable before any transaction id of it is handed out, so that ids are
        // unique across crashes even though aborts leave no record.
        let epoch = recovered.maxEpoch + 1
        guard epoch <= TransactionID.maxEpoch else {
            store.close()
            throw DecisionLogError.io("coordinator epochs exhausted")
        }
        store.epoch = epoch
        // Sized far above the coordinator's in-flight limit (each transaction queues at most a
        // COMMIT and an END), so appending under the driver's lock never blocks.
        let writer = GroupCommitWriter(store: store, maxQueued: 1 << 20, logger: logger)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            writer.append(.epochStarted(epoch: epoch), forced: true) { result in
                continuation.resume(with: result.map { _ in () }.mapError { $0 as Error })
            }
        }
        var banks: [SQLiteBank] = []
        var inDoubt: [TransactionID: [ParticipantID]] = [:]
        do {
            for participant in configuration.participants {
                let bank = try SQLiteBank(path: directory.bankPath(participant.id), participant: participant.id, logger: logger)
                for (tx, writers) in bank.inDoubt() {
                    inDoubt[tx] = writers.isEmpty ? [participant.id] : writers
                }
                banks.append(bank)
            }
        } catch {
            writer.shutdown()
            throw error
        }
        var driverConfiguration = CoordinatorDriver.Configuration()
        driverConfiguration.coordinator.prepareTimeoutMs = configuration.prepareTimeoutMs
        driverConfiguration.coordinator.resendInitialMs = configuration.resendInitialMs
        let driver = CoordinatorDriver(epoch: epoch, log: writer, resources: banks, configuration: driverConfiguration,
                                       logger: logger, onEvent: onEvent)
        let resolved: [CoordinatorDriver.RecoveredTransaction]
        do {
            resolved = try await driver.recover(committed: recovered.unfinishedCommits, inDoubt: inDoubt)
        } catch {
            driver.shutdown()
            throw error
        }
        for item in resolved {
            logger.info("recovered in-doubt transaction", metadata: ["tx": "\(item.transaction)", "outcome": "\(item.outcome.label)"])
        }
        let report = RecoveryReport(epoch: epoch, logNotes: recovered.notes, resolved: resolved)
        return SandhiNode(directory: directory, configuration: configuration, driver: driver, recovery: report, lock: lock)
    }

    private init(directory: DataDirectory, configuration: SandhiConfiguration, driver: CoordinatorDriver,
                 recovery: RecoveryReport, lock: DirectoryLock) {
        self.directory = directory
        self.configuration = configuration
        self.driver = driver
        self.recovery = recovery
        self.lock = lock
    }

    /// Drains and stops every thread, then releases the directory.
    public func stop() {
        driver.shutdown()
        lock.release()
    }
}

/// What a start found and settled.
public struct RecoveryReport: Sendable {
    public var epoch: UInt32
    /// Notes from opening the log (a truncated torn tail, reclaimed segments).
    public var logNotes: [String]
    /// Every in-doubt transaction and what was decided for it.
    public var resolved: [CoordinatorDriver.RecoveredTransaction]
}

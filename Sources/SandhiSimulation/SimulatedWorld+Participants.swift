import Logging
import SandhiEngine
import SandhiIO
import SandhiParticipants
import SandhiRuntime

// The participants are the code that ships: each bank is a `SQLiteBank` (the engine's
// `ParticipantProtocol` inside it) on its own `SimulatedDisk`, reached through the SQLite VFS
// `FileSystemVFS`, and driven by the worker's own `ParticipantWorkerCore`. Only the waiting is
// the simulator's: where the worker's thread sleeps on its queue or a timed wait, the world
// schedules the core's next round on virtual time.
//
//   message    lands in the worker's queue; the worker wakes (or is busy, and the message
//              joins the next batch)
//   round      the core stores the batch (one SQLite transaction, to the page cache), asks
//              about branches left prepared, sweeps (heuristic decisions, while faults
//              strike); the storing takes 30 to 330 µs of virtual time
//   sync       if the core says a sync is due: one fdatasync of the WAL, which may fail
//              (fsyncgate); then the replies go to the network
//   crash      the machine loses power (unsynced WAL frames land all, none, or each or not:
//              a torn write, which SQLite's WAL recovery must cut at the last whole commit)
//              or only the process dies (the page cache stays, but pages a failed sync
//              marked clean may be evicted); queued messages and held replies are lost
//   restart    the bank opens again from what its disk holds (its own recovery), and the
//              core says YES again for every branch it restored
//
// Checked as it happens: no bank is sent a COMMIT whose decision is not durable, and every
// reply a sync let out describes what the disk holds (the WAL as read is the WAL on the disk).

extension SimulatedWorld {
    static let bankDirectory = "/bank"
    /// Small, so that seeds checkpoint (and crash mid-checkpoint) too.
    static let bankWALCheckpointBytes = 48 << 10
    /// Workers inquire and sweep from the start (sweeps are always allowed: the banks are
    /// machines of their own, not waiting on this coordinator's recovery; after the faults
    /// they only report again the decisions not yet forgotten).
    static let workerConfiguration = ParticipantWorkerCore.Configuration(
        lazySyncUs: 2_000, inquiryIntervalUs: 30_000, sweepIntervalUs: 10_000, maxHeldReplies: 4_096)

    static func bankPath(_ participant: ParticipantID) -> String { "\(bankDirectory)/\(participant.name).sqlite" }

    /// A new bank's file, made once per participant and opening balance and installed on each
    /// seed's disk: creating the schema per seed would cost more than the seed's transfers.
    static func bankImage(_ participant: ParticipantID, accounts: [AccountID], openingBalance: Int64) -> [UInt8] {
        let key = "\(participant.name)/\(accounts.count)/\(openingBalance)"
        if let image = bankImages.withLock({ $0[key] }) { return image }
        let disk = SimulatedDisk(seed: 0)
        disk.recordsCalls = false
        let io = FileIO.through(disk)
        defer { io.sqliteVFS?.unregister() }
        let path = bankPath(participant)
        do {
            try disk.makeDirectories(bankDirectory)
            try SQLiteBank.create(path: path, participant: participant, accounts: accounts.map { ($0, Paise(openingBalance)) },
                                  io: io, logger: quietLogger)
        } catch {
            preconditionFailure("a new bank on a healthy simulated disk failed: \(error)")
        }
        let image = disk.contents().files[path]!
        bankImages.withLock { $0[key] = image }
        return image
    }

    static let bankImages = Lock<[String: [UInt8]]>([:])

    /// Bank `index`'s disk, with its file on it as `SQLiteBank.create` left it.
    static func makeBankDisk(seed: UInt64, participant: ParticipantID, accounts: [AccountID], openingBalance: Int64) -> SimulatedDisk {
        let disk = SimulatedDisk(seed: seed)
        disk.recordsCalls = false
        disk.installDirectory(bankDirectory)
        disk.installFile(bankPath(participant), bytes: bankImage(participant, accounts: accounts, openingBalance: openingBalance))
        return disk
    }

    /// Opens bank `index` on its disk: the bank's own recovery. Nil (and a violation) if it refuses.
    mutating func openBank(_ index: Int) -> SQLiteBank? {
        do {
            let bank = try SQLiteBank(path: Self.bankPath(names[index]), participant: names[index], logger: Self.quietLogger,
                                      io: banks[index].io, clock: virtualClock.clocks,
                                      plantedBug: options.bug?.engineBug == .noLocks ? .noLocks : nil)
            bank.walCheckpointBytes = Self.bankWALCheckpointBytes
            bank.plantedRetryAfterFailedSync = options.bug == .voteAfterFailedFsync
            return bank
        } catch {
            violation("participant-recovery", "\(names[index]) does not open after a crash: \(error)")
            return nil
        }
    }

    // MARK: - Messages and rounds

    /// A message reaches bank `index`'s queue.
    mutating func deliverToParticipant(_ index: Int, _ message: ParticipantMessage) {
        if case .commit(let tx) = message, !isDurable(tx) {
            violation("decision-before-commit", "\(names[index]) was sent COMMIT for \(tx), whose COMMIT record was never durable")
        }
        if case .prepare(let tx, _, _) = message, isDurable(tx), (try? banks[index].store?.hasCommitted(tx)) == true {
            cases[.stalePrepareOfCommitted] += 1 // the bank must see it is a stale duplicate, and not vote
        }
        guard banks[index].inbox.count < Self.maxQueuedMessages else { return } // a full queue drops; the coordinator resends
        banks[index].inbox.append(message)
        wakeWorker(index, afterUs: 5 + random.next() % 25)
    }

    /// The worker's queue holds at most this many (as `CoordinatorDriver`'s capacity bounds the real one).
    static let maxQueuedMessages = 4_096

    /// The worker takes its next round no sooner than `afterUs` from now, and not while it is
    /// still storing or syncing; an earlier round already due stands.
    mutating func wakeWorker(_ index: Int, afterUs: UInt64) {
        let atUs = max(nowUs + afterUs, banks[index].busyUntilUs)
        if let due = banks[index].roundAtUs, due <= atUs { return }
        banks[index].roundAtUs = atUs
        banks[index].roundGeneration &+= 1
        schedule(.workerRound(index, generation: banks[index].roundGeneration), afterUs: atUs - nowUs)
    }

    /// After a round or a sync: the next round as the core asks (a message waiting, or a
    /// timed wait for held replies, an inquiry or a sweep), or none until a message comes.
    mutating func scheduleNextRound(_ index: Int) {
        guard let store = banks[index].store, !banks[index].worker.failed else { return }
        if !banks[index].inbox.isEmpty {
            wakeWorker(index, afterUs: 1)
        } else if let waitUs = banks[index].worker.waitUs(store) {
            wakeWorker(index, afterUs: max(waitUs, 10))
        }
    }

    mutating func workerRound(_ index: Int) {
        guard let store = banks[index].store else { return }
        banks[index].roundAtUs = nil
        var batch: [ParticipantMessage] = []
        swap(&batch, &banks[index].inbox)
        record(4, UInt64(batch.count), UInt64(index))
        if faults.heuristicAfterMs > 0 {
            // The policy holds while faults strike; which way each sweep decides is the seed's coin.
            store.heuristicPolicy = nowUs < faultsStopAtUs ? HeuristicPolicy(afterMs: Int64(faults.heuristicAfterMs), commit: random.next() % 2 == 0) : nil
        }
        let refusalsBefore = store.refusals
        let syncDue = banks[index].worker.store(batch, store)
        if store.refusals > refusalsBefore {
            violation("atomicity", "\(names[index]) refused an impossible request: \(store.lastRefusal ?? "")")
        }
        noteHeld(index)
        let storedUs = 30 + random.next() % 300
        banks[index].busyUntilUs = nowUs + storedUs
        if syncDue {
            schedule(.workerSync(index, incarnation: banks[index].incarnation), afterUs: storedUs)
        } else {
            scheduleNextRound(index)
        }
    }

    /// What the round's stored replies say, for the checks: what each vote saw (the isolation
    /// history), and each decision made here alone.
    mutating func noteHeld(_ index: Int) {
        for (_, reply) in banks[index].worker.heldReplies {
            switch reply {
            case .vote(let tx, .yes, let observed) where !observed.isEmpty:
                setStaged(tx, index, observed)
            case .heuristic(let tx, let committed, _, _, _):
                if banks[index].decidedAlone.updateValue(committed, forKey: tx) == nil {
                    injected[.heuristicDecision] += 1
                    cases[committed ? .heuristicCommit : .heuristicRollback] += 1
                    record(13, tx.rawValue, UInt64(index) | (committed ? 0x100 : 0))
                }
            default:
                break
            }
        }
    }

    mutating func workerSync(_ index: Int) {
        guard let store = banks[index].store else { return }
        let votes = banks[index].worker.holdsVote
        if nowUs < faultsStopAtUs && chance(faults.participantSyncFailurePerMille) {
            injected[.participantSyncFailure] += 1
            banks[index].disk.failNextSync()
        }
        switch banks[index].worker.sync(store) {
        case .deliver(let replies):
            banks[index].busyUntilUs = nowUs
            if !banks[index].disk.readsMatchDisk(Self.bankPath(names[index]) + "-wal") {
                // What a power cut would leave is not what the bank read when it answered.
                violation(votes ? "durable-vote" : "durable-reply", "\(names[index]) sent \(replies.count) replies after a sync that left its WAL "
                          + "differing from the disk")
            }
            for (_, reply) in replies {
                banks[index].repliesInFlight += 1
                schedule(.participantSends(index, reply, incarnation: banks[index].incarnation), afterUs: 1 + random.next() % 50)
            }
            scheduleNextRound(index)
        case .failed:
            // As the real worker does: the bank stops without replying (durability is unknown)
            // and its process restarts; its recovery reads what the disk really holds.
            if votes { cases[.participantSyncFailureNoVote] += 1 }
            crashParticipant(index, afterFailedSync: true)
        }
    }

    // MARK: - Crash and restart

    /// The bank's process (or machine) stops: queued messages and held replies are lost, and
    /// the disk keeps what it keeps.
    mutating func crashParticipant(_ index: Int, afterFailedSync: Bool = false) {
        guard banks[index].store != nil else { return }
        injected[.participantCrash] += 1
        let storing = banks[index].inbox.contains { if case .prepare = $0 { true } else { false } } || banks[index].worker.holdsVote
        if storing { cases[.participantCrashBeforeVote] += 1 }
        if banks[index].repliesInFlight > 0 { cases[.participantCrashBetweenReplyAndSend] += 1 }
        if !(banks[index].store?.inDoubt().isEmpty ?? true) { cases[.participantCrashAfterVote] += 1 }
        // Branches stored and not yet synced: whether the crash keeps them is the disk's call.
        banks[index].unsyncedPrepares = banks[index].worker.heldReplies.compactMap {
            if case .vote(let tx, .yes, let observed) = $0.1, !observed.isEmpty { tx } else { nil }
        }
        let disk = banks[index].disk
        if afterFailedSync || random.next() % 3 == 0 {
            disk.restartProcess()
        } else {
            let torn = chance(faults.participantTornWritePerMille)
            if torn { injected[.tornParticipantWrite] += 1 }
            let fate: SimulatedDisk.UnsyncedFate = torn ? (random.next() % 2 == 0 ? .each : .allButFirstSector)
                : random.next() % 2 == 0 ? .all : .none
            disk.powerLoss(unsynced: fate)
        }
        // Closed after the disk went, without a checkpoint: its descriptors are gone, and a
        // dead process neither writes nor deletes its WAL.
        banks[index].store?.close(checkpoint: false)
        banks[index].store = nil
        banks[index].worker.crash()
        banks[index].inbox.removeAll()
        banks[index].roundAtUs = nil
        banks[index].busyUntilUs = 0
        banks[index].incarnation += 1
        banks[index].repliesInFlight = 0
        record(10, 0, UInt64(index))
        schedule(.restartParticipant(index, incarnation: banks[index].incarnation), afterUs: 1_000 + random.next() % 20_000)
    }

    mutating func restartParticipant(_ index: Int) {
        guard banks[index].store == nil, let store = openBank(index) else { return }
        banks[index].store = store
        let inDoubt = store.inDoubt()
        for tx in banks[index].unsyncedPrepares {
            // Stored, not synced, and the crash came: all of it landed, or none (SQLite's WAL
            // recovery keeps whole commits only; the final checks see any half).
            if inDoubt[tx] != nil || (try? store.hasCommitted(tx)) == true {
                cases[.writeSetLandedWhole] += 1
            } else {
                cases[.tornWriteSetDropped] += 1
            }
        }
        banks[index].unsyncedPrepares = []
        if options.bug == .forgetPreparedOnRestart && !inDoubt.isEmpty {
            // The planted bug: the bank comes back without the branches it had voted YES on.
            _ = try? store.process(inDoubt.keys.sorted().map { .rollback($0) })
            try? store.makeDurable()
        }
        var worker = ParticipantWorkerCore(id: names[index], configuration: Self.workerConfiguration, clocks: virtualClock.clocks,
                                           logger: Self.quietLogger, stats: banks[index].worker.stats)
        worker.inquiring = true
        worker.sweepsAllowed = true
        let syncDue = worker.restarted(store)
        banks[index].worker = worker
        record(7, UInt64(inDoubt.count), UInt64(index))
        if syncDue {
            banks[index].busyUntilUs = nowUs + 30
            schedule(.workerSync(index, incarnation: banks[index].incarnation), afterUs: 30)
        } else {
            scheduleNextRound(index)
        }
    }

    /// Closes every bank and takes their VFSs out of SQLite's list: the end of a seed. No
    /// checkpoint: the disks are discarded.
    mutating func closeBanks() {
        for index in banks.indices {
            banks[index].store?.close(checkpoint: false)
            banks[index].store = nil
            banks[index].io.sqliteVFS?.unregister()
        }
    }
}

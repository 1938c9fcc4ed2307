import Logging
import NIOCore
import PostgresNIO
import SandhiEngine

/// What PostgreSQL holds of one coordinator instance's branches at one participant: the
/// prepared transactions (from `pg_prepared_xacts`) with their members' write-sets (from
/// `sandhi_intents`), the YES votes that outlived their prepared transaction (a write-set row
/// with a `sandhi_voted` row, of a group being split when the process stopped), and the
/// write-sets that are of no use any more, and the branches found settled by hand that the
/// coordinator has not yet recorded.
struct PreparedBranchScan {
    struct Branch {
        var transaction: TransactionID
        var operations: [Operation]
        var writers: [ParticipantID]
        /// No write-set row: operations are empty and writers only this participant.
        var writeSetMissing: Bool
    }

    struct Group {
        var gid: GlobalTransactionID
        var members: [Branch]
    }

    var groups: [Group] = []
    /// YES votes held by their write-set row alone: in doubt like a prepared branch, and applied
    /// from the write-set if the decision is to commit.
    var loose: [Branch] = []
    /// Write-sets of branches that committed (a `sandhi_committed` row), never voted, or whose
    /// vote is stale (see `scan`).
    var unusedIntents: [TransactionID] = []
    /// Votes of branches a prepared transaction holds (prepared again after a split, the vote
    /// row's deletion lost in a crash): the prepared transaction is their vote.
    var staleVotes: [TransactionID] = []
    /// Heuristic outcomes (branches settled by hand) not yet forgotten by the coordinator.
    var settledByHand: [SettledByHand] = []
    /// Branches found committed, with no heuristic outcome recorded, beside a vote or a
    /// rollback note: their group was committed by hand while the bank split it or rolled it
    /// back (before its ROLLBACK PREPARED), and the process stopped before it recorded what it
    /// found (`PostgresBank.split`, `rollBackWhole`). The bank's own commit of a vote deletes
    /// the vote in the same transaction (`BranchStatements.stageGroup`), and a note means the
    /// coordinator decided to roll the branch back, so nothing else leaves either beside a
    /// commit. Each is a heuristic commit, to be recorded before it is reported: the
    /// coordinator compares it with its decision (a member committed as decided agrees; one
    /// rolled back, or undecided, is a mixed outcome an operator settles).
    var foundCommittedByHand: [SettledByHand] = []
    /// Of `unusedIntents`, the write-sets of branches that are neither prepared, nor voted,
    /// nor recorded as settled by hand, with whether each committed here. Most are a finish's
    /// clean-up that a crash cut short, a NO vote's, or a write-set whose PREPARE never came;
    /// but one may be a member of a group someone settled by hand, found gone by a batch that
    /// stopped before it recorded anything (`PostgresBank.decisionsForBranchesNotHeld`).
    var orphans: [TransactionID: Orphan] = [:]

    struct Orphan {
        var branch: Branch
        var committed: Bool
    }

    /// The gids of this database that are Sandhi's, of `configuration.instance`, for
    /// `configuration.participant`. Everything else in `pg_prepared_xacts` (other databases,
    /// other coordinators, other participants, not Sandhi's at all) is none of this bank's
    /// business and is never touched.
    static func scan(_ configuration: PostgresBankConfiguration, on pool: PostgresSessionPool, logger: Logger) throws -> PreparedBranchScan {
        let prefix = GlobalTransactionID.prefix(of: configuration.instance)
        let instance = configuration.instance.name
        let gidRows = try pool.one { connection in
            connection.query("SELECT gid FROM pg_prepared_xacts WHERE database = current_database() AND starts_with(gid, \(prefix))",
                             logger: logger)
        }
        var gids: [GlobalTransactionID] = []
        var member: [TransactionID: GlobalTransactionID] = [:]
        for row in gidRows.rows {
            let text = try row.decode(String.self)
            guard let gid = GlobalTransactionID(parsing: text), gid.instance == configuration.instance,
                  gid.participant == configuration.participant else { continue }
            for tx in gid.transactions {
                if let other = member[tx] {
                    throw PostgresBankError.notSandhi(database: configuration.database, detail: "\(tx) is in two prepared transactions, '\(other)' and '\(gid)'")
                }
                member[tx] = gid
            }
            gids.append(gid)
        }
        let handRows = try pool.one { connection in
            connection.query("SELECT tx, committed, operations, writers FROM sandhi_heuristic WHERE instance = \(instance) AND forgotten_at_ms IS NULL ORDER BY tx",
                             logger: logger)
        }
        var scan = PreparedBranchScan()
        for row in handRows.rows {
            let (raw, committed, bytes, writers) = try row.decode((Int64, Bool, ByteBuffer, String).self)
            let tx = TransactionID(rawValue: UInt64(bitPattern: raw))
            let operations: [Operation]
            do {
                operations = try OperationCodec.decode(Array(bytes.readableBytesView))
            } catch {
                throw PostgresBankError.notSandhi(database: configuration.database, detail: "heuristic outcome of \(tx) is damaged: \(error)")
            }
            if let gid = member[tx] {
                // Recorded only once its gid was found gone; prepared again under it, something
                // outside Sandhi has been at work, and neither can be trusted.
                throw PostgresBankError.notSandhi(database: configuration.database, detail: "\(tx) is prepared in '\(gid)' and settled by hand")
            }
            scan.settledByHand.append(SettledByHand(transaction: tx, heuristic: .init(committed: committed, operations: operations,
                                                                                     writers: WriterList.decode(writers))))
        }
        let intentRows = try pool.one { connection in
            connection.query("""
                SELECT i.tx, i.operations, i.writers,
                       EXISTS (SELECT 1 FROM sandhi_voted v WHERE v.instance = i.instance AND v.tx = i.tx),
                       EXISTS (SELECT 1 FROM sandhi_committed c WHERE c.instance = i.instance AND c.tx = i.tx),
                       EXISTS (SELECT 1 FROM sandhi_heuristic h WHERE h.instance = i.instance AND h.tx = i.tx),
                       EXISTS (SELECT 1 FROM sandhi_rolling_back r WHERE r.instance = i.instance AND r.tx = i.tx)
                FROM sandhi_intents i WHERE i.instance = \(instance)
                """, logger: logger)
        }
        var intents: [TransactionID: Branch] = [:]
        for row in intentRows.rows {
            let (raw, bytes, writers, voted, committed, handled, rollingBack) = try row.decode((Int64, ByteBuffer, String, Bool, Bool, Bool, Bool).self)
            let tx = TransactionID(rawValue: UInt64(bitPattern: raw))
            let operations: [Operation]
            do {
                operations = try OperationCodec.decode(Array(bytes.readableBytesView))
            } catch {
                throw PostgresBankError.notSandhi(database: configuration.database, detail: "write-set of \(tx) is damaged: \(error)")
            }
            let branch = Branch(transaction: tx, operations: operations, writers: WriterList.decode(writers), writeSetMissing: false)
            if member[tx] != nil {
                intents[tx] = branch
                if voted { scan.staleVotes.append(tx) }
            } else if (voted || rollingBack) && committed && !handled {
                // (A vote or note beside a heuristic outcome, reported or forgotten, is one whose
                // clean-up a crash cut short.)
                scan.foundCommittedByHand.append(SettledByHand(transaction: tx, heuristic: .init(committed: true, operations: operations,
                                                                                                writers: branch.writers)))
            } else if voted && !handled {
                scan.loose.append(branch)
            } else {
                scan.unusedIntents.append(tx)
                if !voted && !handled { scan.orphans[tx] = Orphan(branch: branch, committed: committed) }
            }
        }
        var held = Set<AccountID>()
        for gid in gids.sorted(by: { $0.transactions[0] < $1.transactions[0] }) {
            scan.groups.append(Group(gid: gid, members: gid.transactions.map { tx in
                intents[tx] ?? Branch(transaction: tx, operations: [], writers: [configuration.participant], writeSetMissing: true)
            }))
            for member in scan.groups[scan.groups.count - 1].members { held.formUnion(ParticipantProtocol.writtenAccounts(member.operations)) }
        }
        // A vote whose account a prepared branch (or a newer vote) writes is stale: the engine
        // released that account's lock before the newer branch could stage, so this one was
        // finished and its rows outlived it. Holding it would lock the account twice. Newest
        // first: of two votes on one account, only the newer can be live.
        let votes = scan.loose.sorted { $0.transaction > $1.transaction }
        scan.loose = []
        for vote in votes {
            let accounts = ParticipantProtocol.writtenAccounts(vote.operations)
            if let taken = accounts.first(where: held.contains) {
                logger.error("dropped a stale vote whose account a newer branch holds",
                             metadata: ["participant": "\(configuration.participant)", "transaction": "\(vote.transaction)", "account": "\(taken)"])
                scan.unusedIntents.append(vote.transaction)
            } else {
                held.formUnion(accounts)
                scan.loose.append(vote)
            }
        }
        scan.unusedIntents.sort()
        return scan
    }
}

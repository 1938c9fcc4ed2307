import Logging
import NIOCore
import PostgresNIO
import SandhiEngine

/// What PostgreSQL holds of one coordinator instance's branches at one participant: the
/// prepared transactions (from `pg_prepared_xacts`) with their write-sets (from
/// `sandhi_intents`), and the write-sets with no prepared transaction.
struct PreparedBranchScan {
    struct Branch {
        var gid: GlobalTransactionID
        var operations: [Operation]
        var writers: [ParticipantID]
        /// No write-set row: operations are empty and writers only this participant.
        var writeSetMissing: Bool
    }

    var prepared: [Branch] = []
    var unusedIntents: [TransactionID] = []

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
        var gids: [TransactionID: GlobalTransactionID] = [:]
        for row in gidRows.rows {
            let text = try row.decode(String.self)
            guard let gid = GlobalTransactionID(parsing: text), gid.instance == configuration.instance,
                  gid.participant == configuration.participant else { continue }
            gids[gid.transaction] = gid
        }
        let intentRows = try pool.one { connection in
            connection.query("SELECT tx, operations, writers FROM sandhi_intents WHERE instance = \(instance)", logger: logger)
        }
        var intents: [TransactionID: (operations: [Operation], writers: [ParticipantID])] = [:]
        for row in intentRows.rows {
            let (raw, bytes, writers) = try row.decode((Int64, ByteBuffer, String).self)
            let tx = TransactionID(rawValue: UInt64(bitPattern: raw))
            do {
                intents[tx] = (try OperationCodec.decode(Array(bytes.readableBytesView)), WriterList.decode(writers))
            } catch {
                throw PostgresBankError.notSandhi(database: configuration.database, detail: "write-set of \(tx) is damaged: \(error)")
            }
        }
        var scan = PreparedBranchScan()
        for (tx, gid) in gids.sorted(by: { $0.key < $1.key }) {
            if let intent = intents[tx] {
                scan.prepared.append(Branch(gid: gid, operations: intent.operations, writers: intent.writers, writeSetMissing: false))
            } else {
                scan.prepared.append(Branch(gid: gid, operations: [], writers: [configuration.participant], writeSetMissing: true))
            }
        }
        scan.unusedIntents = intents.keys.filter { gids[$0] == nil }.sorted()
        return scan
    }
}

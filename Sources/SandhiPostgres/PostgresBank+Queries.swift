import PostgresNIO
import SandhiEngine
import SandhiParticipants

/// What the audits, recovery and the benchmarks ask of a PostgreSQL bank (`Bank`). Each is one
/// statement on one of the bank's sessions, read committed: a prepared branch's writes are
/// not in these figures until it commits, exactly as with the SQLite bank. The committed
/// branches and reports are this coordinator instance's own.
extension PostgresBank: Bank {
    public func balances() throws -> [(account: AccountID, balance: Paise)] {
        try rows("SELECT id, balance FROM accounts ORDER BY id").map { row in
            let (id, balance) = try row.decode((String, Int64).self)
            return (AccountID(validated: id), Paise(balance))
        }
    }

    public func accountStates() throws -> [Observation] {
        try rows("SELECT id, balance, version, writer FROM accounts ORDER BY id").map { row in
            let (id, balance, version, writer) = try row.decode((String, Int64, Int64, Int64?).self)
            return Observation(account: AccountID(validated: id), balance: Paise(balance), version: UInt64(version),
                               writer: writer.map { TransactionID(rawValue: UInt64(bitPattern: $0)) })
        }
    }

    public func total() throws -> Paise {
        Paise(try single("SELECT COALESCE(SUM(balance), 0)::bigint FROM accounts", as: Int64.self) ?? 0)
    }

    public func minted() throws -> Paise {
        Paise(Int64(try single("SELECT value FROM sandhi_meta WHERE key = 'minted_paise'", as: String.self) ?? "0") ?? 0)
    }

    public func committedBranches() throws -> [TransactionID: (writers: [ParticipantID], netPaise: Int64)] {
        var result: [TransactionID: (writers: [ParticipantID], netPaise: Int64)] = [:]
        let instance = configuration.instance.name
        for row in try rows("SELECT tx, writers, net_paise FROM sandhi_committed WHERE instance = \(instance)") {
            let (tx, writers, net) = try row.decode((Int64, String, Int64).self)
            result[TransactionID(rawValue: UInt64(bitPattern: tx))] = (WriterList.decode(writers), net)
        }
        return result
    }

    public func reports() throws -> [BankReportRow] {
        let instance = configuration.instance.name
        return try rows("SELECT tx, kind, amount_paise, reference FROM sandhi_reports WHERE instance = \(instance) ORDER BY id").map { row in
            let (tx, kind, amount, reference) = try row.decode((Int64, String, Int64, String).self)
            return BankReportRow(transaction: TransactionID(rawValue: UInt64(bitPattern: tx)),
                                 report: Report(kind: kind, amount: Paise(amount), reference: reference))
        }
    }

    public func hasCommitted(_ tx: TransactionID) throws -> Bool {
        let instance = configuration.instance.name, raw = Int64(bitPattern: tx.rawValue)
        return try single("SELECT 1 FROM sandhi_committed WHERE instance = \(instance) AND tx = \(raw)", as: Int32.self) != nil
    }

    /// Whether `tx` committed here, and not by someone's hand against (or before) the
    /// coordinator's decision: a branch found committed by hand has a `sandhi_heuristic` row,
    /// kept once forgotten, and proves nothing about what the coordinator decided.
    public func committedOnCoordinatorsWord(_ tx: TransactionID) throws -> Bool {
        let instance = configuration.instance.name, raw = Int64(bitPattern: tx.rawValue)
        return try single("""
            SELECT 1 FROM sandhi_committed c WHERE c.instance = \(instance) AND c.tx = \(raw)
            AND NOT EXISTS (SELECT 1 FROM sandhi_heuristic h WHERE h.instance = c.instance AND h.tx = c.tx)
            """, as: Int32.self) != nil
    }

    /// The highest epoch among this instance's committed and prepared branches here.
    public func highestEpoch() throws -> UInt32 {
        let instance = configuration.instance.name
        let committed = try single("SELECT MAX(tx) FROM sandhi_committed WHERE instance = \(instance)", as: Int64?.self) ?? nil
        let prepared = inDoubt().keys.map(\.epoch).max() ?? 0
        return max(committed.map { TransactionID(rawValue: UInt64(bitPattern: $0)).epoch } ?? 0, prepared)
    }

    public func inDoubtNet() -> [TransactionID: Paise] { machine.preparedNet }

    // MARK: - One statement

    private func rows(_ query: PostgresQuery) throws -> [PostgresRow] {
        let logger = self.logger
        return try pool.one { $0.query(query, logger: logger) }.rows
    }

    private func single<T: PostgresDecodable>(_ query: PostgresQuery, as type: T.Type) throws -> T? {
        try rows(query).first.map { try $0.decode(T.self) }
    }
}

extension PostgresBank {
    /// Every prepared transaction in this bank's database, Sandhi's or not: how many, and how
    /// many seconds the oldest has waited (nil when there is none). For the console, which warns
    /// about old ones: they hold their locks and hold back VACUUM.
    public func preparedInDatabase() throws -> (count: Int, oldestAgeSeconds: Int64?) {
        let logger = self.logger
        let result = try pool.one {
            $0.query("""
                SELECT count(*)::bigint, EXTRACT(EPOCH FROM now() - min(prepared))::bigint
                FROM pg_prepared_xacts WHERE database = current_database()
                """, logger: logger)
        }
        guard let row = result.rows.first else { return (0, nil) }
        let (count, oldest) = try row.decode((Int64, Int64?).self)
        return (Int(count), oldest)
    }
}

extension PostgresBank {
    /// The locks PostgreSQL reports (`pg_locks`) for the prepared transactions in this bank's
    /// database, Sandhi's or not: a prepared transaction's locks belong to no backend (no pid)
    /// and keep the virtual transaction they were taken under, which its transaction-id lock
    /// names. At most `limit`, by gid. Row locks live in the
    /// rows themselves, not here: what shows is each one's table and transaction locks.
    public func preparedLocks(limit: Int = 200) throws -> [(gid: String, kind: String, relation: String, mode: String, granted: Bool)] {
        let logger = self.logger
        let result = try pool.one {
            $0.query("""
                SELECT p.gid, l.locktype, COALESCE(l.relation::regclass::text, ''), l.mode, l.granted
                FROM pg_prepared_xacts p
                JOIN pg_locks t ON t.locktype = 'transactionid' AND t.transactionid = p.transaction AND t.pid IS NULL
                JOIN pg_locks l ON l.virtualtransaction = t.virtualtransaction AND l.pid IS NULL
                WHERE p.database = current_database() AND (l.database IS NULL OR l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
                ORDER BY p.gid, l.locktype, 3 LIMIT \(limit)
                """, logger: logger)
        }
        return try result.rows.map { row in
            let (gid, kind, relation, mode, granted) = try row.decode((String, String, String, String, Bool).self)
            return (gid, kind, relation, mode, granted)
        }
    }
}

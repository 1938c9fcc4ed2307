/// The layout of an embedded bank's SQLite file. `format` in `meta` marks the file as Sandhi's,
/// so a command pointed at some other database refuses it instead of writing into it.
enum BankSchema {
    static let format = "sandhi-bank-2"
    /// Files of the first format lack the accounts' version and writer; `upgradeFrom1` adds them.
    static let formatWithoutVersions = "sandhi-bank-1"

    static let upgradeFrom1 = """
        ALTER TABLE accounts ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE accounts ADD COLUMN writer INTEGER;
        UPDATE meta SET value = '\(format)' WHERE key = 'format';
        """

    /// Branches this bank decided on its own (a heuristic decision, after waiting too long for
    /// the coordinator). Reported to the coordinator until it says FORGET, and kept after that
    /// (`forgotten_at_ms` set) for the audit. Added to older files when they open.
    static let heuristicTable = """
        CREATE TABLE IF NOT EXISTS heuristic(
            tx INTEGER PRIMARY KEY,
            committed INTEGER NOT NULL,
            operations BLOB NOT NULL,
            writers TEXT NOT NULL,
            decided_at_ms INTEGER NOT NULL,
            forgotten_at_ms INTEGER
        );
        """

    static let create = """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        -- `version` counts the committed writes to the account and `writer` names the last
        -- one's transaction (NULL: the opening balance), so every read can say which write it
        -- saw: a recorded history then has a known version order to check for cycles.
        CREATE TABLE accounts(
            id TEXT PRIMARY KEY,
            balance INTEGER NOT NULL CHECK (balance >= 0),
            version INTEGER NOT NULL DEFAULT 0,
            writer INTEGER
        ) WITHOUT ROWID;
        -- A prepared branch: its write-set, persisted before the YES vote, so that it survives a
        -- crash of the process and re-takes its locks on restart.
        CREATE TABLE prepared(
            tx INTEGER PRIMARY KEY,
            operations BLOB NOT NULL,
            writers TEXT NOT NULL,
            prepared_at_ms INTEGER NOT NULL
        );
        -- Every committed branch, with the other writers of its transaction: `sandhi check` uses
        -- it to prove that no transaction was applied at one participant and not at another.
        CREATE TABLE committed(
            tx INTEGER PRIMARY KEY,
            writers TEXT NOT NULL,
            net_paise INTEGER NOT NULL
        );
        \(heuristicTable)
        -- The regulator's large-transaction report, written atomically with the money.
        CREATE TABLE reports(
            id INTEGER PRIMARY KEY,
            tx INTEGER NOT NULL,
            kind TEXT NOT NULL,
            amount_paise INTEGER NOT NULL,
            reference TEXT NOT NULL
        );
        """
}

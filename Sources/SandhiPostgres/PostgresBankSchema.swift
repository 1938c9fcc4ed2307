/// The tables of a bank in a PostgreSQL database. `sandhi_meta` marks the database as Sandhi's
/// bank and names its participant, so a bank pointed at some other database refuses it.
enum PostgresBankSchema {
    static let format = "sandhi-postgres-bank-1"

    static let create = [
        "CREATE TABLE sandhi_meta(key text PRIMARY KEY, value text NOT NULL)",
        // Integer paise. The CHECK is the database's own guard; staging validates first and votes
        // NO with a reason, and a CHECK violation that still happens (a writer outside Sandhi)
        // also becomes a NO vote. `version` and `writer` as in the SQLite bank: which committed
        // write every read saw.
        """
        CREATE TABLE accounts(
            id text PRIMARY KEY,
            balance bigint NOT NULL CHECK (balance >= 0),
            version bigint NOT NULL DEFAULT 0,
            writer bigint
        )
        """,
        // A branch's write-set, committed (asynchronously: see `PostgresBank`) before its
        // PREPARE TRANSACTION. A prepared transaction's own writes are invisible until it
        // commits, so pg_prepared_xacts alone cannot tell a restarted bank which accounts a
        // prepared branch locks; this row can. The prepared transaction deletes its own row, so
        // it disappears exactly when the branch commits; a rollback deletes it afterwards, and
        // rows without a prepared transaction are dropped when the bank opens.
        """
        CREATE TABLE sandhi_intents(
            instance text NOT NULL,
            tx bigint NOT NULL,
            operations bytea NOT NULL,
            writers text NOT NULL,
            staged_at_ms bigint NOT NULL,
            PRIMARY KEY (instance, tx)
        )
        """,
        // Every committed branch (inserted inside the prepared transaction, so it commits with
        // the money): a stale duplicate PREPARE after a restart finds it and is not applied twice.
        """
        CREATE TABLE sandhi_committed(
            instance text NOT NULL,
            tx bigint NOT NULL,
            writers text NOT NULL,
            net_paise bigint NOT NULL,
            PRIMARY KEY (instance, tx)
        )
        """,
        // The regulator's large-transaction report, written atomically with the money.
        """
        CREATE TABLE sandhi_reports(
            id bigserial PRIMARY KEY,
            instance text NOT NULL,
            tx bigint NOT NULL,
            kind text NOT NULL,
            amount_paise bigint NOT NULL,
            reference text NOT NULL
        )
        """,
    ]
}

/// The tables of a bank in a PostgreSQL database. `sandhi_meta` marks the database as Sandhi's
/// bank and names its participant, so a bank pointed at some other database refuses it.
enum PostgresBankSchema {
    /// 2: staging runs in `sandhi_stage` (one statement where format 1 needed four).
    static let format = "sandhi-postgres-bank-2"

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
    ] + [stageFunction]

    /// A branch's staging in one call, inside the branch's transaction (BEGIN before it,
    /// PREPARE TRANSACTION or ROLLBACK after): has it committed here before; lock and read its
    /// accounts (in id order, so two branches lock in the same order); and, when every
    /// account exists and no balance would go below zero, its writes: each account's net
    /// change and version, the committed-branch row with the write-set row deleted, and the
    /// reports. It returns what it read, as before the writes, and whether it wrote. The sums
    /// are checked without overflowing (a credit past 2^63 - 1 is not written, not an error).
    ///
    /// The vote is not decided here: the bank runs the engine's staging rule over the rows
    /// returned (the rule every participant uses) and rolls back whatever this wrote if the
    /// rule says NO. Writing before the rule has spoken saves a round trip per branch; the
    /// check here only keeps the CHECK constraint from failing the statement, and a branch
    /// the rule accepts but this did not write (which would mean the two disagree) is a NO.
    static let stageFunction =
        """
        CREATE FUNCTION sandhi_stage(p_instance text, p_tx bigint, p_names text[], p_deltas bigint[], p_writes bigint[],
                                     p_writers text, p_net bigint, p_kinds text[], p_amounts bigint[], p_refs text[])
        RETURNS TABLE(o_account text, o_balance bigint, o_version bigint, o_writer bigint, o_committed boolean, o_applied boolean)
        LANGUAGE plpgsql AS $$
        #variable_conflict use_column
        DECLARE
            ids text[]; balances bigint[]; versions bigint[]; writers bigint[];
            found_count int; fits boolean; applied boolean;
        BEGIN
            IF EXISTS (SELECT 1 FROM sandhi_committed c WHERE c.instance = p_instance AND c.tx = p_tx) THEN
                RETURN QUERY SELECT NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, true, false;
                RETURN;
            END IF;
            SELECT array_agg(a.id ORDER BY a.id), array_agg(a.balance ORDER BY a.id), array_agg(a.version ORDER BY a.id),
                   array_agg(a.writer ORDER BY a.id), count(*),
                   bool_and(CASE WHEN d.delta > 0 THEN a.balance <= 9223372036854775807 - d.delta ELSE a.balance + d.delta >= 0 END)
              INTO ids, balances, versions, writers, found_count, fits
              FROM (SELECT * FROM accounts WHERE id = ANY(p_names) ORDER BY id FOR UPDATE) a
              JOIN unnest(p_names, p_deltas) AS d(id, delta) ON a.id = d.id;
            applied := found_count = coalesce(array_length(p_names, 1), 0) AND coalesce(fits, true);
            IF applied THEN
                UPDATE accounts a SET balance = a.balance + d.delta, version = a.version + d.writes, writer = p_tx
                  FROM unnest(p_names, p_deltas, p_writes) AS d(id, delta, writes) WHERE a.id = d.id;
                DELETE FROM sandhi_intents i WHERE i.instance = p_instance AND i.tx = p_tx;
                INSERT INTO sandhi_committed(instance, tx, writers, net_paise) VALUES (p_instance, p_tx, p_writers, p_net);
                IF cardinality(p_kinds) > 0 THEN
                    INSERT INTO sandhi_reports(instance, tx, kind, amount_paise, reference)
                      SELECT p_instance, p_tx, r.kind, r.amount, r.reference FROM unnest(p_kinds, p_amounts, p_refs) AS r(kind, amount, reference);
                END IF;
            END IF;
            IF found_count = 0 THEN
                RETURN QUERY SELECT NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, false, applied;
            ELSE
                RETURN QUERY SELECT u.id, u.balance, u.version, u.writer, false, applied
                  FROM unnest(ids, balances, versions, writers) AS u(id, balance, version, writer);
            END IF;
        END
        $$
        """

    /// Brings a bank of an older format to this one, in one transaction, or says it cannot.
    /// Format 1 had the same tables and staged with separate statements: it gains the staging
    /// function. Its prepared branches (if any) are untouched: they finish as they are.
    static let upgrades: [String: [String]] = [
        "sandhi-postgres-bank-1": [stageFunction],
    ]
}

/// The tables of a bank in a PostgreSQL database. `sandhi_meta` marks the database as Sandhi's
/// bank and names its participant, so a bank pointed at some other database refuses it.
enum PostgresBankSchema {
    /// 2: staging ran in `sandhi_stage` (one statement per branch where format 1 needed four).
    /// 3: a batch's branches stage in one call of `sandhi_stage_group` and prepare together;
    /// `sandhi_voted` keeps the votes of a group being split.
    /// 4: `sandhi_heuristic` keeps branches found settled by hand otherwise than the coordinator
    /// decided, until the coordinator has recorded them.
    /// 5: `sandhi_rolling_back` notes the members of a group about to be rolled back.
    static let format = "sandhi-postgres-bank-5"

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
        // prepared branch locks; this row can. It goes once the branch is finished; a row whose
        // branch committed (a `sandhi_committed` row) or never voted (no prepared transaction
        // names it and no `sandhi_voted` row) is dropped when the bank opens.
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
    ] + [votedTable, stageGroupFunction, heuristicTable, rollingBackTable]

    /// The staging of a batch's branches in one call, inside the one transaction they prepare
    /// in (BEGIN before it, PREPARE TRANSACTION or ROLLBACK after; `PostgresBank` explains the
    /// grouping). Members are numbered from 1 in the order of `p_txs`; the flattened arrays
    /// (`p_w_*`: each member's written accounts with their net change and number of writes;
    /// `p_r_*`: accounts it only reads; `p_rep_*`: its reports) name their member by number.
    /// Members never write the same account (the protocol's locks keep them apart).
    ///
    /// In order: the members committed here before (stale duplicate PREPAREs), which are not
    /// touched; every account the others write, locked at once in id order (so two groups lock
    /// in the same order); the members with an account missing or a sum that does not fit
    /// (checked without overflowing); then what every member reads, returned as before any
    /// write (a status row per member with no account, then its accounts); and the writes,
    /// committed-branch rows and reports of the members that fit.
    ///
    /// The votes are not decided here: the bank runs the engine's staging rule over the rows
    /// returned (the rule every participant uses). Writing before the rule has spoken saves a
    /// round trip; should the rule refuse a member written here (the rule reads operation by
    /// operation, this sums them), the bank rolls the group back and stages it again without
    /// that member. The write-set rows are left alone: they go once the members are finished.
    static let stageGroupFunction =
        """
        CREATE FUNCTION sandhi_stage_group(p_instance text, p_txs bigint[], p_writers text[], p_nets bigint[],
                                           p_w_member int[], p_w_names text[], p_w_deltas bigint[], p_w_counts bigint[],
                                           p_r_member int[], p_r_names text[],
                                           p_rep_member int[], p_kinds text[], p_amounts bigint[], p_refs text[])
        RETURNS TABLE(o_member int, o_account text, o_balance bigint, o_version bigint, o_writer bigint,
                      o_committed boolean, o_applied boolean)
        LANGUAGE plpgsql
        SET enable_seqscan = off SET enable_bitmapscan = off SET plan_cache_mode = force_generic_plan
        AS $$
        #variable_conflict use_column
        DECLARE
            done int[]; fit int[];
            ids text[]; balances bigint[]; versions bigint[]; writers bigint[];
        BEGIN
            -- Every table is reached through `= ANY(array)` on its key, planned once per
            -- session (the plan is kept) with neither sequential nor bitmap scans: a plan made
            -- while sandhi_committed was small would otherwise scan all of it, on every call,
            -- long after it has grown.
            SELECT coalesce(array_agg(array_position(p_txs, c.tx)), '{}') INTO done
              FROM sandhi_committed c WHERE c.instance = p_instance AND c.tx = ANY(p_txs);
            SELECT array_agg(a.id), array_agg(a.balance), array_agg(a.version), array_agg(a.writer)
              INTO ids, balances, versions, writers
              FROM (SELECT * FROM accounts
                     WHERE id = ANY(ARRAY(SELECT w.id FROM unnest(p_w_member, p_w_names) AS w(m, id) WHERE NOT (w.m = ANY(done))))
                     ORDER BY id FOR UPDATE) a;
            SELECT coalesce(array_agg(s.m), '{}') INTO fit
              FROM generate_subscripts(p_txs, 1) AS s(m)
             WHERE NOT (s.m = ANY(done))
               AND NOT EXISTS (SELECT 1 FROM unnest(p_w_member, p_w_names, p_w_deltas) AS w(m, id, delta)
                                LEFT JOIN unnest(ids, balances) AS a(id, balance) ON a.id = w.id
                               WHERE w.m = s.m
                                 AND (a.id IS NULL OR NOT (CASE WHEN w.delta > 0 THEN a.balance <= 9223372036854775807 - w.delta
                                                                ELSE a.balance + w.delta >= 0 END)));
            RETURN QUERY
                SELECT s.m, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint, s.m = ANY(done), s.m = ANY(fit)
                  FROM generate_subscripts(p_txs, 1) AS s(m)
                UNION ALL
                SELECT w.m, a.id, a.balance, a.version, a.writer, false, false
                  FROM unnest(p_w_member, p_w_names) AS w(m, id)
                  JOIN unnest(ids, balances, versions, writers) AS a(id, balance, version, writer) ON a.id = w.id
                UNION ALL
                SELECT r.m, a.id, a.balance, a.version, a.writer, false, false
                  FROM unnest(p_r_member, p_r_names) AS r(m, id)
                  JOIN accounts a ON a.id = r.id AND a.id = ANY(p_r_names)
                 WHERE NOT (r.m = ANY(done));
            UPDATE accounts a SET balance = a.balance + w.delta, version = a.version + w.writes, writer = p_txs[w.m]
              FROM unnest(p_w_member, p_w_names, p_w_deltas, p_w_counts) AS w(m, id, delta, writes)
             WHERE a.id = ANY(ids) AND a.id = w.id AND w.m = ANY(fit);
            INSERT INTO sandhi_committed(instance, tx, writers, net_paise)
              SELECT p_instance, p_txs[f.m], p_writers[f.m], p_nets[f.m] FROM unnest(fit) AS f(m);
            IF cardinality(p_rep_member) > 0 THEN
                INSERT INTO sandhi_reports(instance, tx, kind, amount_paise, reference)
                  SELECT p_instance, p_txs[r.m], r.kind, r.amount, r.reference
                    FROM unnest(p_rep_member, p_kinds, p_amounts, p_refs) AS r(m, kind, amount, reference)
                   WHERE r.m = ANY(fit);
            END IF;
        END
        $$
        """

    /// Members whose YES vote must outlive their prepared transaction: a group whose members'
    /// decisions differ is rolled back and its members staged again (`PostgresBank`), and for
    /// that moment a member's write-set row and its row here are its vote. Created in its own
    /// table, not as a column of `sandhi_intents`, so that an upgrade needs no lock a prepared
    /// branch of the older format holds.
    static let votedTable =
        """
        CREATE TABLE sandhi_voted(
            instance text NOT NULL,
            tx bigint NOT NULL,
            PRIMARY KEY (instance, tx)
        )
        """

    /// Branches someone settled by hand in PostgreSQL (COMMIT or ROLLBACK PREPARED of a Sandhi
    /// gid) otherwise than the coordinator decided: the bank finds each when the decision comes,
    /// records it here (synchronously, before it answers), and reports it to the coordinator as
    /// a heuristic outcome, again and again (and after a restart), until the coordinator, having
    /// recorded the mixed outcome for an operator, says FORGET (`forgotten_at_ms`). The row
    /// stays after that, as the SQLite bank's does: a committed branch with a row here
    /// committed on no coordinator's word, which recovery must not take for a COMMIT decision.
    /// `operations` and `writers` are the branch's work, as in `sandhi_intents`.
    static let heuristicTable =
        """
        CREATE TABLE sandhi_heuristic(
            instance text NOT NULL,
            tx bigint NOT NULL,
            committed boolean NOT NULL,
            operations bytea NOT NULL,
            writers text NOT NULL,
            found_at_ms bigint NOT NULL,
            forgotten_at_ms bigint,
            PRIMARY KEY (instance, tx)
        )
        """

    /// Members of a group the bank is about to roll back on the coordinator's word (ROLLBACK
    /// PREPARED of a whole group, or of one being split), noted before that statement. Should
    /// it find the gid gone, committed by a hand, and the process stop before the bank records
    /// that, the write-set row and this one are what a reopened bank has left to tell a branch
    /// committed against its rollback (a heuristic commit the coordinator must hear of, having
    /// forgotten the transaction: an abort leaves no record) from one committed on the
    /// coordinator's word. Noted asynchronously, like the votes of a split: the ROLLBACK
    /// PREPARED that follows flushes the WAL past it, and when there is none to roll back (the
    /// gid is gone) the process that stops still leaves it committed; a server crash may lose
    /// it, but then the bank's process is alive and the coordinator sends the ROLLBACK again.
    /// Deleted with the write-sets.
    static let rollingBackTable =
        """
        CREATE TABLE sandhi_rolling_back(
            instance text NOT NULL,
            tx bigint NOT NULL,
            PRIMARY KEY (instance, tx)
        )
        """

    /// Brings a bank of an older format to this one, in one transaction, or says it cannot.
    /// Formats 1 and 2 had the same tables and staged a branch at a time: they gain the group
    /// staging function and the table of votes (format 2 loses its per-branch function). Their
    /// prepared branches (if any) are untouched: each is a group of one, and finishes as it is.
    /// Every older format gains the table of branches settled by hand (empty: before it, such a
    /// branch was only written to the process log) and the notes of groups being rolled back
    /// (empty: a group rolled back under an older format is finished, or still prepared, when
    /// the bank opens). Nothing here takes a lock a prepared branch holds.
    static let upgrades: [String: [String]] = [
        "sandhi-postgres-bank-1": [votedTable, stageGroupFunction, heuristicTable, rollingBackTable],
        "sandhi-postgres-bank-2": [votedTable, stageGroupFunction, "DROP FUNCTION sandhi_stage", heuristicTable, rollingBackTable],
        "sandhi-postgres-bank-3": [heuristicTable, rollingBackTable],
        "sandhi-postgres-bank-4": [rollingBackTable],
    ]
}

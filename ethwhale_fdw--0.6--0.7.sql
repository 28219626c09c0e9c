/* ethwhale_fdw--0.6--0.7.sql: ALTER EXTENSION ethwhale_fdw UPDATE TO '0.7' */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ethwhale_fdw UPDATE TO '0.7'" to load this file. \quit

-- What 0.7 changes (issue 15; test/integration/test_upgrade.py checks that an
-- updated 0.6, and 0.1-0.5 updated through it, have the same objects,
-- definitions and seed rows as a fresh 0.7):
--   - a sync run that fills a partition in bulk (ethwhale.sync_bulk_begin)
--     builds its indexes by address, token and hash after the rows are in,
--     by sorting, instead of inserting every row into them
--     (ethwhale.partition_indexes, index_partition, index_partitions,
--     sync_index_partitions);
--   - a refresh reads no further than the first partition still without
--     those indexes (ethwhale.indexed_through);
--   - the end of a sync run analyses the partitions that were never
--     analysed, whatever their reltuples (CREATE INDEX sets it)
--     (ethwhale.analyze_partitions).
-- No table changes.  The partitions made by 0.4-0.6 have these indexes
-- already, under the names CREATE INDEX gives them, as 0.7 makes them.

-- ---------------------------------------------------------------- sql_parts/40_chain.sql

-- ethwhale.analyze_partitions(chain): ANALYZE the chain's partitions that
-- changed by more than a tenth since their last ANALYZE (or never had one),
-- at the end of a sync run: the refresh that follows plans its queries on
-- their statistics, and autovacuum would come later.  "Never" is asked of
-- the statistics' own record: the CREATE INDEX of a bulk sync sets the
-- table's reltuples, and the run's own changes are not yet counted in
-- n_mod_since_analyze while it runs.  Returns how many.
CREATE OR REPLACE FUNCTION ethwhale.analyze_partitions(chain bigint)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p regclass;
    n int := 0;
BEGIN
    FOR p IN SELECT x.partition FROM ethwhale.partitions x
             JOIN pg_stat_user_tables st ON st.relid = x.partition::oid
             JOIN pg_class c ON c.oid = x.partition::oid
             WHERE x.chain_id = chain
               AND (c.reltuples < 0 OR coalesce(st.last_analyze, st.last_autoanalyze) IS NULL
                    OR st.n_mod_since_analyze > 0.1 * greatest(c.reltuples, 1000))
             ORDER BY 1 LOOP
        EXECUTE format('ANALYZE %s', p);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- ethwhale.partition_indexes: for every partition of txs and token_transfers,
-- the indexes of its look-ups by address, token and hash (txs: equality
-- look-ups of hashes only, so a hash index, a third the size of a btree on
-- 66 characters) and the index that serves each, or NULL when it has none.
-- Rows come in block order, but these keys come in random order: inserting
-- a row into each costs more than the heap (5-8 us against 3), and a bulk
-- sync builds them by sorting, after the rows are in (ethwhale.sync_run).
-- Any valid index of the same method on that column alone, with its
-- collation and default operator class, serves; OWN says the index has the
-- name CREATE INDEX gives it, which a bulk sync may drop.
CREATE OR REPLACE FUNCTION ethwhale.partition_indexes()
RETURNS TABLE (chain_id bigint, first_block bigint, partition regclass, method text,
               column_name text, index regclass, own bool)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.chain_id, p.first_block, p.partition, s.method, s.col, ix.oid::regclass,
           ix.relname = format('%s_%s_idx', c.relname, s.col)
    FROM ethwhale.partitions p
    JOIN pg_class c ON c.oid = p.partition
    JOIN (VALUES ('txs', 'hash', 'hash'), ('txs', 'btree', 'from_address'), ('txs', 'btree', 'to_address'),
                 ('token_transfers', 'btree', 'from_address'), ('token_transfers', 'btree', 'to_address'),
                 ('token_transfers', 'btree', 'token')) s(tbl, method, col) ON s.tbl = p.table_name
    LEFT JOIN LATERAL (
        SELECT ic.oid, ic.relname
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_am am ON am.oid = ic.relam
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        JOIN pg_opclass opc ON opc.oid = i.indclass[0]
        WHERE i.indrelid = p.partition AND i.indnatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL
          AND i.indisvalid AND am.amname = s.method AND a.attname = s.col
          AND opc.opcdefault AND i.indcollation[0] = a.attcollation
        ORDER BY ic.relname = format('%s_%s_idx', c.relname, s.col) DESC, ic.oid
        LIMIT 1) ix ON true
$$;

-- ethwhale.index_partition(partition): build the indexes of
-- ethwhale.partition_indexes that PARTITION lacks.  Returns how many.
CREATE OR REPLACE FUNCTION ethwhale.index_partition(part regclass)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n int := 0;
BEGIN
    FOR r IN SELECT x.method, x.column_name FROM ethwhale.partition_indexes() x
             WHERE x.partition = part AND x.index IS NULL ORDER BY x.column_name LOOP
        EXECUTE format('CREATE INDEX ON %s USING %s (%I)', part, r.method, r.column_name);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- ethwhale.index_partitions(chain, except_first): build what
-- ethwhale.index_partition builds on every partition of CHAIN, except those
-- whose range starts at EXCEPT_FIRST (the one a bulk sync is filling) and
-- those of a role the user is not a member of.
-- CALL ethwhale.sync runs it as it leaves a partition and at its end; after
-- a sync was killed, the next one does, or call it yourself.  Returns how
-- many indexes it built.
CREATE OR REPLACE FUNCTION ethwhale.index_partitions(chain bigint, except_first bigint DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p regclass;
    n int := 0;
BEGIN
    -- one at a time per chain: the runs of a chain build and drop them
    PERFORM pg_advisory_xact_lock(hashtext('ethwhale.index_partitions ' || chain));
    FOR p IN SELECT DISTINCT x.partition FROM ethwhale.partition_indexes() x
             JOIN pg_class c ON c.oid = x.partition
             WHERE x.chain_id = chain AND x.index IS NULL AND x.first_block IS DISTINCT FROM except_first
               AND pg_has_role(c.relowner, 'USAGE')
             ORDER BY 1 LOOP
        n := n + ethwhale.index_partition(p);
    END LOOP;
    RETURN n;
END
$$;

-- ethwhale.indexed_through(chain): the last block of CHAIN before its first
-- partition without all its indexes (a bulk sync's, or one a killed sync
-- left), NULL when none lacks any.  A refresh reads no further: its
-- look-ups by address would scan that partition whole.
CREATE OR REPLACE FUNCTION ethwhale.indexed_through(chain bigint)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT min(x.first_block) - 1 FROM ethwhale.partition_indexes() x
    WHERE x.chain_id = chain AND x.index IS NULL
$$;

-- ethwhale.ensure_partitions(chain, a, b): the partitions of blocks, txs and
-- token_transfers that blocks A..B of CHAIN go into, made when missing: each
-- covers [k*size, (k+1)*size) of the chain's partition_blocks SIZE and is
-- named <table>_<chain>_<first block>, e.g. txs_1_0011000000.  Returns how
-- many tables it made.  Serialised by an advisory lock, so two syncs never
-- race to make the same partition.
CREATE OR REPLACE FUNCTION ethwhale.ensure_partitions(chain bigint, a bigint, b bigint)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    size bigint := (SELECT s.partition_blocks FROM ethwhale.sync_state s WHERE s.chain_id = chain);
    lo bigint;
    t text;
    part text;
    made int := 0;
BEGIN
    IF size IS NULL THEN
        RAISE EXCEPTION 'ethwhale.ensure_partitions: chain % has no sync_state row', chain
            USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('ethwhale.ensure_partitions'));
    lo := (a / size) * size;
    WHILE lo <= b LOOP
        FOREACH t IN ARRAY ARRAY['blocks', 'txs', 'token_transfers'] LOOP
            part := format('%s_%s_%s', t, replace(chain::text, '-', 'm'), lpad(lo::text, 10, '0'));
            IF to_regclass(format('ethwhale.%I', part)) IS NULL THEN
                EXECUTE format('CREATE TABLE ethwhale.%I PARTITION OF ethwhale.%I
                                FOR VALUES FROM (%s, %s) TO (%s, %s)',
                               part, t, chain, lo, chain, lo + size);
                -- the key and indexes of each table, per partition (see
                -- the note at ethwhale.blocks): those filled in block order
                -- here, those of the look-ups by address, token and hash by
                -- ethwhale.index_partition (a bulk sync builds them after
                -- the rows are in); txs: the contracts a synced transaction
                -- created (their first ETH: balance_history)
                EXECUTE format(CASE t
                    WHEN 'blocks' THEN
                        'ALTER TABLE ethwhale.%1$I ADD PRIMARY KEY (chain_id, number);
                         CREATE INDEX ON ethwhale.%1$I (hash)'
                    WHEN 'txs' THEN
                        'ALTER TABLE ethwhale.%1$I ADD PRIMARY KEY (chain_id, block, tx_index);
                         CREATE INDEX ON ethwhale.%1$I USING brin (block);
                         CREATE INDEX ON ethwhale.%1$I (created_contract) WHERE created_contract IS NOT NULL'
                    ELSE
                        'ALTER TABLE ethwhale.%1$I ADD PRIMARY KEY (chain_id, block, log_index);
                         CREATE INDEX ON ethwhale.%1$I USING brin (block)'
                    END, part);
                PERFORM ethwhale.index_partition(format('ethwhale.%I', part)::regclass);
                EXECUTE format('COMMENT ON TABLE ethwhale.%I IS %L', part,
                               format('ethwhale.%s of chain %s, blocks %s..%s', t, chain, lo, lo + size - 1));
                made := made + 1;
            END IF;
        END LOOP;
        lo := lo + size;
    END LOOP;
    RETURN made;
END
$$;

-- ---------------------------------------------------------------- sql_parts/50_sync.sql

-- ethwhale.sync_bulk_begin(server, chain, a, target, batch): a sync run is about to
-- copy blocks A..TARGET, in batches of BATCH, and A is the first of them in
-- its partition.  If the run adds at least a batch to that partition, and
-- at least as many blocks as it holds, the run fills it as a bulk load: the
-- partition's indexes by address, token and hash (ethwhale.partition_indexes)
-- are dropped now and built by sorting when the run leaves it, which costs
-- a fraction of inserting every row into them (bench/sync_scale).  The
-- indexes every other partition of the chain lacks (a killed run's) are
-- built now.  Returns whether the run fills the partition in bulk.  It is
-- only a faster way: what fails in it is a WARNING, and the run goes on
-- row by row.
CREATE OR REPLACE FUNCTION ethwhale.sync_bulk_begin(server name, chain bigint, a bigint, target bigint, batch bigint)
RETURNS bool
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st ethwhale.sync_state;
    lo bigint;
    adds bigint;
    holds bigint;
    bulk bool;
    ix regclass;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('ethwhale.index_partitions ' || chain));
    SELECT * INTO st FROM ethwhale.sync_state s WHERE s.chain_id = chain;
    lo := (a / st.partition_blocks) * st.partition_blocks;
    adds := least(target, lo + st.partition_blocks - 1) - a + 1;
    holds := greatest(0, a - greatest(lo, coalesce(st.first_block, a)));
    -- and only a partition we may build indexes on (CREATE INDEX wants
    -- its owner), at least a batch and as many blocks as it holds
    bulk := adds >= batch AND adds >= holds
            AND NOT EXISTS (SELECT 1 FROM ethwhale.partitions p JOIN pg_class c ON c.oid = p.partition
                            WHERE p.chain_id = chain AND p.first_block = lo
                              AND NOT pg_has_role(c.relowner, 'USAGE'));
    PERFORM ethwhale.index_partitions(chain, CASE WHEN bulk THEN lo END);
    IF bulk THEN
        -- only the indexes made here: one of the user's own is kept, and
        -- filled row by row
        FOR ix IN SELECT x.index FROM ethwhale.partition_indexes() x
                  WHERE x.chain_id = chain AND x.first_block = lo AND x.own LOOP
            EXECUTE format('DROP INDEX %s', ix);
        END LOOP;
    END IF;
    RETURN bulk;
EXCEPTION
    WHEN OTHERS THEN
        RAISE WARNING 'ethwhale.sync(%): blocks from % are written row by row: %', server, a, SQLERRM
            USING HINT = format('SELECT ethwhale.index_partitions(%s); builds what is missing.', chain);
        RETURN false;
END
$$;

-- ethwhale.sync_index_partitions(server, chain): ethwhale.index_partitions at
-- the end of a sync run, or after its error: what it cannot build (the
-- disk is full, say) is a WARNING, not an error, since the rows are in and
-- the next run builds it.
CREATE OR REPLACE FUNCTION ethwhale.sync_index_partitions(server name, chain bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ethwhale.index_partitions(chain);
EXCEPTION
    WHEN OTHERS THEN
        RAISE WARNING 'ethwhale.sync(%): the indexes of a partition filled in bulk were not built: %', server, SQLERRM
            USING HINT = format('The next sync builds them, or SELECT ethwhale.index_partitions(%s);', chain);
END
$$;

-- ethwhale.sync_run(server, from_block, to_block, may_commit): the body of
-- ethwhale.sync().  MAY_COMMIT says whether the caller runs it outside a
-- transaction block, where it commits after every batch; otherwise it copies
-- one batch and leaves the commit to the caller.
--
-- Every batch runs in a subtransaction that takes the chain's cursor row
-- FOR UPDATE (so concurrent syncs of a chain take turns), checks the chain
-- against the node and inserts the batch's rows; the cursor moves in the
-- same transaction, which is committed right after.  A kill at any point
-- loses at most the batch in flight, which the next run copies again.  The
-- partitions a batch goes into are made first, in a transaction of their
-- own (ethwhale.ensure_partitions), so making one never waits on, or holds
-- up, the batches of another chain.
--
-- A procedure that COMMITs cannot have a SET clause, so sync_run (like
-- sync, refresh_run and refresh) has no SET search_path: it is control flow
-- over the schema-qualified functions above, which have one.
CREATE OR REPLACE PROCEDURE ethwhale.sync_run(server name, from_block bigint, to_block bigint, may_commit bool)
LANGUAGE plpgsql
AS $$
DECLARE
    src pg_catalog.name;
    conf bigint;
    chain bigint;
    batch bigint := ethwhale.int_setting('ethwhale.sync_batch_blocks', 1000, 1, 1000000);
    have_tokens bool;
    st ethwhale.sync_state;
    head bigint;
    target bigint;
    a bigint;
    b bigint;
    need_reorg bool := false;
    first_iter bool := true;
    finished bool := false;
    part_first bigint;               -- the partition the bulk decision was made for
    size bigint;
    ok bool;
    t0 timestamptz := pg_catalog.clock_timestamp();
    done bigint := 0;
    total bigint;
    rate numeric;
    e_msg pg_catalog.text; e_state pg_catalog.text; e_detail pg_catalog.text; e_hint pg_catalog.text;
BEGIN
    SELECT p.src, p.have_tokens, p.conf, p.chain INTO src, have_tokens, conf, chain
    FROM ethwhale.sync_prepare(server, from_block, to_block) p;
    IF may_commit THEN
        COMMIT;
    END IF;

    LOOP
        ok := true;
        BEGIN
            IF may_commit AND head IS NOT NULL AND NOT need_reorg THEN
                -- the partitions of the next batch, committed before it
                SELECT * INTO st FROM ethwhale.sync_state s WHERE s.chain_id = chain;
                a := coalesce(st.next_block, a);
                size := st.partition_blocks;
                IF a <= target THEN
                    PERFORM ethwhale.ensure_partitions(chain, a, least(a + batch - 1, target));
                END IF;
            END IF;
        EXCEPTION
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS e_msg = MESSAGE_TEXT, e_state = RETURNED_SQLSTATE,
                                        e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
                ok := false;
        END;
        IF ok AND may_commit AND head IS NOT NULL THEN
            COMMIT;
        END IF;
        -- entering a partition (from the second batch on, with the
        -- partitions committed): fill it in bulk?  In a transaction of its
        -- own, which holds no lock of the parents or of the cursor row while
        -- it builds the indexes of the partition left.
        IF ok AND may_commit AND head IS NOT NULL AND NOT need_reorg AND a <= target
           AND (a / size) * size IS DISTINCT FROM part_first THEN
            part_first := (a / size) * size;
            PERFORM ethwhale.sync_bulk_begin(server, chain, a, target, batch);
            COMMIT;
        END IF;
        IF ok THEN
        BEGIN
            st := ethwhale.sync_lock_cursor(chain);
            IF need_reorg THEN
                total := total + ethwhale.sync_rollback_reorg(server, src, st);
                need_reorg := false;
            ELSE
                IF head IS NULL THEN
                    SELECT p.head, p.target, p.start_block, p.total INTO head, target, a, total
                    FROM ethwhale.sync_plan(server, src, from_block, to_block, conf, st, t0) p;
                END IF;
                a := coalesce(st.next_block, a);
                IF first_iter THEN
                    need_reorg := ethwhale.sync_tip_replaced(src, st);
                END IF;
                first_iter := false;

                IF NOT need_reorg THEN
                    IF a > target THEN
                        finished := true;
                    ELSE
                        b := least(a + batch - 1, target);
                        -- made in their own transaction above, except for
                        -- the first batch and inside a transaction block
                        PERFORM ethwhale.ensure_partitions(chain, a, b);
                        rate := ethwhale.sync_batch(server, src, st, a, b, have_tokens,
                                                    done + (b - a + 1), t0);
                        done := done + (b - a + 1);
                        finished := b >= target;
                    END IF;
                END IF;
            END IF;
        EXCEPTION
            WHEN SQLSTATE 'EWRG1' OR SQLSTATE 'EWRG2' THEN
                need_reorg := true;
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS e_msg = MESSAGE_TEXT, e_state = RETURNED_SQLSTATE,
                                        e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
                ok := false;
        END;
        END IF;

        IF NOT ok THEN
            PERFORM ethwhale.sync_record_error(chain, e_msg, e_detail);
            IF may_commit THEN
                COMMIT;
                -- the partition being filled in bulk gets its indexes even so
                PERFORM ethwhale.sync_index_partitions(server, chain);
                COMMIT;
            END IF;
            IF nullif(e_detail, '') IS NOT NULL AND nullif(e_hint, '') IS NOT NULL THEN
                RAISE EXCEPTION USING MESSAGE = e_msg, ERRCODE = e_state, DETAIL = e_detail, HINT = e_hint;
            ELSIF nullif(e_detail, '') IS NOT NULL THEN
                RAISE EXCEPTION USING MESSAGE = e_msg, ERRCODE = e_state, DETAIL = e_detail;
            ELSIF nullif(e_hint, '') IS NOT NULL THEN
                RAISE EXCEPTION USING MESSAGE = e_msg, ERRCODE = e_state, HINT = e_hint;
            ELSE
                RAISE EXCEPTION USING MESSAGE = e_msg, ERRCODE = e_state;
            END IF;
        END IF;
        IF may_commit THEN
            COMMIT;
        ELSIF NOT need_reorg THEN
            IF NOT finished THEN
                RAISE NOTICE 'ethwhale.sync(%): inside a transaction block only one batch is copied (blocks %..%); CALL ethwhale.sync() outside a transaction block to copy the rest batch by batch',
                    server, a, b;
            END IF;
            EXIT;
        END IF;
        IF done > 0 AND b IS NOT NULL AND NOT need_reorg THEN
            RAISE NOTICE 'ethwhale.sync(%): blocks %..% done: % of % blocks, % blocks/s, ETA % s',
                server, a, b, done, total, rate,
                pg_catalog.round((total - done) / greatest(rate, 0.001))::bigint;
        END IF;
        EXIT WHEN finished AND NOT need_reorg;
        b := NULL;
    END LOOP;
    IF may_commit THEN
        PERFORM ethwhale.sync_index_partitions(server, chain);
        IF done > 0 THEN
            PERFORM ethwhale.analyze_partitions(chain);
        END IF;
        COMMIT;
    END IF;
END
$$;

-- ---------------------------------------------------------------- sql_parts/70_analytics.sql

-- ethwhale.refresh_large_transfers(chain): bring the chain's large
-- transfers up to its last synced block: the blocks after view_state's
-- through_block when the basis is unchanged, else all of them again (and
-- every candidate row with them).  Returns whether it rebuilt everything.
CREATE OR REPLACE FUNCTION ethwhale.refresh_large_transfers(chain bigint)
RETURNS bool
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- its statements' estimates are far above jit_above_cost: compiling them took
-- 3 s of a 4.5 s refresh (measured)
SET jit = off
AS $$
DECLARE
    vs ethwhale.view_state;
    upto bigint;
    lo bigint;
    basis bigint := (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ethwhale.view_basis_seq);
    thr numeric := ethwhale.whale_threshold_usd();
    min_cp bigint := ethwhale.int_setting('ethwhale.exchange_min_counterparties', 1000, 1, 1000000000);
    min_sw bigint := ethwhale.int_setting('ethwhale.exchange_min_sweepers', 10, 1, 1000000000);
    d0 date;
    d1 date;
    full_rebuild bool;
    added bigint;
BEGIN
    SELECT (min(b."timestamp") AT TIME ZONE 'UTC')::date, (max(b."timestamp") AT TIME ZONE 'UTC')::date
      INTO d0, d1
    FROM ethwhale.blocks b WHERE b.chain_id = chain;
    SELECT * INTO vs FROM ethwhale.view_state v WHERE v.chain_id = chain FOR UPDATE;
    -- after the lock: a reorg's rollback moves through_block back under it
    upto := (SELECT s.next_block - 1 FROM ethwhale.sync_state s WHERE s.chain_id = chain);
    -- not into a partition a bulk sync is filling (its look-ups by address
    -- would scan it whole), and never back
    upto := least(upto, greatest(coalesce(ethwhale.indexed_through(chain), upto), vs.through_block));
    full_rebuild := vs.chain_id IS NULL OR vs.basis <> basis OR vs.threshold_usd <> thr
                    OR vs.min_counterparties <> min_cp OR vs.min_sweepers <> min_sw;
    -- no record of what the kept state was brought up to, or a partition
    -- taken away under it: it is drawn again, and everything rebuilt
    IF vs.chain_id IS NULL
       OR vs.kept_partitions IS DISTINCT FROM ethwhale.partitions_through(chain, vs.through_block) THEN
        PERFORM ethwhale.candidates_drop(chain, NULL);
        full_rebuild := true;
    END IF;
    IF full_rebuild THEN
        DELETE FROM ethwhale.large_transfer_rows r WHERE r.chain_id = chain;
        DELETE FROM ethwhale.view_dirty d WHERE d.chain_id = chain;
        lo := 0;
    ELSE
        lo := coalesce(vs.through_block + 1, 0);
    END IF;
    IF upto IS NOT NULL AND upto >= lo THEN
        INSERT INTO ethwhale.large_transfer_rows SELECT * FROM ethwhale.large_transfers_of(chain, lo, upto);
        GET DIAGNOSTICS added = ROW_COUNT;
        -- the candidates' query reads this table: plan it on its statistics
        -- (a first refresh planned on an empty table's took 9 times longer)
        IF added > 0.1 * greatest((SELECT c.reltuples FROM pg_class c
                                   WHERE c.oid = 'ethwhale.large_transfer_rows'::regclass), 1000) THEN
            ANALYZE ethwhale.large_transfer_rows;
        END IF;
    END IF;
    -- the candidates' kept state rests on the transactions alone: it comes
    -- forward by the new blocks in a full rebuild too
    IF vs.chain_id IS NOT NULL AND upto >= coalesce(vs.through_block + 1, 0) THEN
        PERFORM ethwhale.views_apply(chain, coalesce(vs.through_block + 1, 0), upto);
    END IF;
    INSERT INTO ethwhale.view_state AS v
        (chain_id, through_block, basis, threshold_usd, min_counterparties, min_sweepers,
         first_day, last_day, all_dirty, last_new_blocks, last_full, kept_partitions)
    VALUES (chain, upto, basis, thr, min_cp, min_sw, d0, d1, true,
            greatest(coalesce(upto - lo + 1, 0), 0), true, ethwhale.partitions_through(chain, upto))
    ON CONFLICT (chain_id) DO UPDATE
       SET through_block = excluded.through_block, basis = excluded.basis,
           threshold_usd = excluded.threshold_usd, min_counterparties = excluded.min_counterparties,
           min_sweepers = excluded.min_sweepers, first_day = excluded.first_day, last_day = excluded.last_day,
           -- the correlation's window is the chain's synced days: when they
           -- change, every row changes
           all_dirty = v.all_dirty OR full_rebuild
                       OR (v.first_day, v.last_day) IS DISTINCT FROM (excluded.first_day, excluded.last_day),
           last_new_blocks = excluded.last_new_blocks, last_full = full_rebuild,
           kept_partitions = excluded.kept_partitions;
    RETURN full_rebuild;
END
$$;

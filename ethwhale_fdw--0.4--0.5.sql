/* ethwhale_fdw--0.4--0.5.sql: ALTER EXTENSION ethwhale_fdw UPDATE TO '0.5' */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ethwhale_fdw UPDATE TO '0.5'" to load this file. \quit

-- What 0.5 changes (issue 15; test/integration/test_upgrade.py checks that an
-- updated 0.4, and 0.1-0.3 updated through it, have the same objects,
-- definitions and seed rows as a fresh 0.5, and keep their synced rows):
--   - a refresh keeps, per whale candidate, its counterparties, deposit-like
--     feeders and daily ETH change (ethwhale.candidate_kept, candidate_edges,
--     candidate_daily) and brings them forward from the new blocks only,
--     instead of computing every touched candidate from its history;
--   - ethwhale.whale_candidates_of(chain, addrs, kept DEFAULT false).
-- The views' rows stay; the first refresh after the update rebuilds them
-- (and the kept state) once.

DROP FUNCTION ethwhale.views_mark_dirty(bigint, bigint, bigint);  -- now (chain, lo, hi, addrs)
DROP FUNCTION ethwhale.whale_candidates_of(bigint, text[]);
ALTER TABLE ethwhale.view_state ADD COLUMN kept_partitions text;

-- ---------------------------------------------------------------- sql_parts/74_candidate_state.sql

CREATE TABLE ethwhale.candidate_kept (
    chain_id       bigint NOT NULL,
    address        text NOT NULL,
    counterparties bigint NOT NULL,  -- its rows in candidate_edges
    sweepers       bigint NOT NULL,  -- of those, the deposit-like feeders
    PRIMARY KEY (chain_id, address)
);
COMMENT ON TABLE ethwhale.candidate_kept IS 'the candidates whose counterparties, feeders and daily ETH change are kept (CALL ethwhale.refresh())';

CREATE TABLE ethwhale.candidate_edges (
    chain_id     bigint NOT NULL,
    address      text NOT NULL,
    counterparty text NOT NULL,
    received     bool NOT NULL,   -- COUNTERPARTY sent to ADDRESS (else only the reverse)
    feeder_sole  bool,            -- when RECEIVED: COUNTERPARTY sent to ADDRESS only
    feeder_fed   bool,            -- when RECEIVED: COUNTERPARTY received from another address
    PRIMARY KEY (chain_id, address, counterparty)
);
-- new blocks settle the feeder tests still open: a new block's sender or
-- recipient finds its open tests without reading its other edges
CREATE INDEX candidate_edges_sole_idx ON ethwhale.candidate_edges (chain_id, counterparty)
    WHERE received AND feeder_sole;
CREATE INDEX candidate_edges_unfed_idx ON ethwhale.candidate_edges (chain_id, counterparty)
    WHERE received AND NOT feeder_fed;
COMMENT ON TABLE ethwhale.candidate_edges IS 'the counterparties of each kept candidate, with the deposit-like feeder tests (CALL ethwhale.refresh())';

CREATE TABLE ethwhale.candidate_daily (
    chain_id bigint NOT NULL,
    address  text NOT NULL,
    day      date NOT NULL,
    wei      numeric NOT NULL,
    PRIMARY KEY (chain_id, address, day)
);
COMMENT ON TABLE ethwhale.candidate_daily IS 'the ETH change per UTC day of each kept candidate, in wei (CALL ethwhale.refresh())';

-- ethwhale.eth_moves(chain, lo, hi, addrs): what the chain's transactions
-- of blocks LO..HI move in ETH for the addresses in the temporary table
-- ADDRS (a table with a column ADDRESS), per address and UTC day: the sender
-- loses the value (when the transaction succeeded) and the fee, the
-- recipient, or the contract the transaction created, gains the value.
CREATE FUNCTION ethwhale.eth_moves(chain bigint, lo bigint, hi bigint, addrs regclass)
RETURNS TABLE (address text, day date, wei numeric)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT x.address, x.day, sum(x.wei)
        FROM (SELECT t.from_address AS address, (t.block_time AT TIME ZONE 'UTC')::date AS day,
                     - CASE WHEN coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
                     - coalesce(t.gas_used * t.gas_price, 0) AS wei
              FROM ethwhale.txs t JOIN %1$s a ON a.address = t.from_address
              WHERE t.chain_id = $1 AND t.block BETWEEN $2 AND $3
              UNION ALL
              SELECT t.to_address, (t.block_time AT TIME ZONE 'UTC')::date,
                     CASE WHEN coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
              FROM ethwhale.txs t JOIN %1$s a ON a.address = t.to_address
              WHERE t.chain_id = $1 AND t.block BETWEEN $2 AND $3
              UNION ALL
              SELECT t.created_contract, (t.block_time AT TIME ZONE 'UTC')::date,
                     CASE WHEN coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
              FROM ethwhale.txs t JOIN %1$s a ON a.address = t.created_contract
              WHERE t.chain_id = $1 AND t.block BETWEEN $2 AND $3 AND t.to_address IS NULL) x
        GROUP BY 1, 2$q$, addrs)
    USING chain, lo, hi;
END
$$;

-- ethwhale.candidate_edges_of(chain, lo, hi, addrs, upto): the
-- counterparties that the chain's transactions of blocks LO..HI give the
-- addresses in the temporary table ADDRS, with the feeder tests of those
-- that sent to them, over all blocks up to UPTO.  The feeder tests are
-- index probes that stop at the first transaction that settles them: a
-- bitmap scan would read every transaction of the address first (0.45 ms
-- against 4 us a probe, measured).
CREATE FUNCTION ethwhale.candidate_edges_of(chain bigint, lo bigint, hi bigint, addrs regclass, upto bigint)
RETURNS SETOF ethwhale.candidate_edges
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off
AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT $1, g.address, g.counterparty, g.received,
               CASE WHEN g.received THEN
                   NOT EXISTS (SELECT 1 FROM ethwhale.txs o
                               WHERE o.chain_id = $1 AND o.from_address = g.counterparty AND o.block <= $4
                                 AND o.to_address IS DISTINCT FROM g.address) END,
               CASE WHEN g.received THEN
                   EXISTS (SELECT 1 FROM ethwhale.txs i
                           WHERE i.chain_id = $1 AND i.to_address = g.counterparty AND i.block <= $4
                             AND i.from_address <> g.address) END
        FROM (SELECT x.address, x.counterparty, bool_or(x.received) AS received
              FROM (SELECT t.from_address AS address, t.to_address AS counterparty, false AS received
                    FROM ethwhale.txs t JOIN %1$s a ON a.address = t.from_address
                    WHERE t.chain_id = $1 AND t.block BETWEEN $2 AND $3
                      AND t.to_address IS NOT NULL AND t.to_address <> t.from_address
                    UNION ALL
                    SELECT t.to_address, t.from_address, true
                    FROM ethwhale.txs t JOIN %1$s a ON a.address = t.to_address
                    WHERE t.chain_id = $1 AND t.block BETWEEN $2 AND $3
                      AND t.from_address <> t.to_address) x
              GROUP BY x.address, x.counterparty) g$q$, addrs)
    USING chain, lo, hi, upto;
END
$$;

-- ethwhale.candidates_keep(chain, addrs, upto): draw the kept state of
-- the chain's candidates ADDRS from their history up to block UPTO (the
-- chain's view_state.through_block).  Returns how many it drew.
CREATE FUNCTION ethwhale.candidates_keep(chain bigint, addrs text[], upto bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS ew_keep (address text PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE ew_keep;
    INSERT INTO ew_keep SELECT DISTINCT a FROM unnest(addrs) a WHERE a IS NOT NULL
    ON CONFLICT DO NOTHING;
    DELETE FROM ew_keep w
     USING ethwhale.candidate_kept k WHERE k.chain_id = chain AND k.address = w.address;
    SELECT count(*) INTO n FROM ew_keep;
    IF n = 0 OR upto IS NULL THEN
        RETURN 0;
    END IF;
    ANALYZE ew_keep;
    INSERT INTO ethwhale.candidate_edges
    SELECT * FROM ethwhale.candidate_edges_of(chain, 0, upto, 'ew_keep', upto);
    INSERT INTO ethwhale.candidate_daily (chain_id, address, day, wei)
    SELECT chain, m.address, m.day, m.wei FROM ethwhale.eth_moves(chain, 0, upto, 'ew_keep') m;
    INSERT INTO ethwhale.candidate_kept (chain_id, address, counterparties, sweepers)
    SELECT chain, w.address, count(e.address),
           count(e.address) FILTER (WHERE e.received AND e.feeder_sole AND e.feeder_fed)
    FROM ew_keep w
    LEFT JOIN ethwhale.candidate_edges e ON e.chain_id = chain AND e.address = w.address
    GROUP BY w.address;
    -- the candidates' query reads these tables: plan it on their statistics
    -- (planned on an empty table's, it joins every edge with every candidate)
    IF n > 0.1 * greatest((SELECT c.reltuples FROM pg_class c
                           WHERE c.oid = 'ethwhale.candidate_kept'::regclass), 1000) THEN
        ANALYZE ethwhale.candidate_kept, ethwhale.candidate_edges, ethwhale.candidate_daily;
    END IF;
    RETURN n;
END
$$;

-- ethwhale.addresses_touched(chain, lo, hi, kept_only): fill the temporary
-- table ew_touched with the addresses that the chain's transactions of
-- blocks LO..HI touch, as sender, recipient or created contract; with
-- KEPT_ONLY, those of them with kept state.
CREATE FUNCTION ethwhale.addresses_touched(chain bigint, lo bigint, hi bigint, kept_only bool)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS ew_touched (address text PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE ew_touched;
    INSERT INTO ew_touched
    SELECT DISTINCT v.a FROM ethwhale.txs t
    CROSS JOIN LATERAL (VALUES (t.from_address), (t.to_address), (t.created_contract)) v(a)
    WHERE t.chain_id = chain AND t.block BETWEEN lo AND hi AND v.a IS NOT NULL
      AND (NOT kept_only OR EXISTS (SELECT 1 FROM ethwhale.candidate_kept k
                                    WHERE k.chain_id = chain AND k.address = v.a));
    ANALYZE ew_touched;
END
$$;

-- ethwhale.views_mark_dirty(chain, lo, hi, addrs): put into view_dirty the
-- addresses of the temporary table ADDRS (a column ADDRESS) and the parties
-- of the chain's large transfers of blocks LO..HI.  Returns how many it added.
CREATE FUNCTION ethwhale.views_mark_dirty(chain bigint, lo bigint, hi bigint, addrs regclass)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format($q$
        INSERT INTO ethwhale.view_dirty (chain_id, address)
        SELECT $1, w.address FROM %s w
        UNION
        SELECT $1, r.from_address FROM ethwhale.large_transfer_rows r
        WHERE r.chain_id = $1 AND r.block BETWEEN $2 AND $3
        UNION
        SELECT $1, r.to_address FROM ethwhale.large_transfer_rows r
        WHERE r.chain_id = $1 AND r.block BETWEEN $2 AND $3
        ON CONFLICT DO NOTHING$q$, addrs)
    USING chain, lo, hi;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- ethwhale.views_apply(chain, lo, hi): bring the kept state forward by the
-- chain's blocks LO..HI and put into view_dirty the addresses whose
-- candidate row those blocks can change: the kept addresses their
-- transactions touch (as sender, recipient or created contract) or whose
-- feeder tests they settle, and the parties of their large transfers.
-- Returns how many addresses it added.
CREATE FUNCTION ethwhale.views_apply(chain bigint, lo bigint, hi bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ethwhale.addresses_touched(chain, lo, hi, true);

    -- the counterparties the new blocks give kept addresses, with their
    -- feeder tests.  ew_delta: what they add to the counts, a new
    -- counterparty (a row inserted), a new feeder that passes both tests (a
    -- row inserted or now received).  An edge they only repeat is left as it
    -- is, not written again.
    CREATE TEMP TABLE IF NOT EXISTS ew_delta (address text, counterparties bigint, sweepers bigint)
        ON COMMIT DROP;
    TRUNCATE ew_delta;
    WITH up AS (
        INSERT INTO ethwhale.candidate_edges AS e
        SELECT * FROM ethwhale.candidate_edges_of(chain, lo, hi, 'ew_touched', hi)
        ON CONFLICT (chain_id, address, counterparty) DO UPDATE
           SET received = true, feeder_sole = excluded.feeder_sole, feeder_fed = excluded.feeder_fed
         WHERE excluded.received AND NOT e.received
        RETURNING e.address, e.xmax = 0 AS inserted, e.received AND e.feeder_sole AND e.feeder_fed AS feeder
    )
    INSERT INTO ew_delta
    SELECT u.address, count(*) FILTER (WHERE u.inserted), count(*) FILTER (WHERE u.feeder)
    FROM up u GROUP BY u.address;

    -- the feeder tests the new blocks settle: a feeder that sent to another
    -- address (or created a contract), a feeder that another address fed
    -- (two statements: a row may pass both)
    CREATE TEMP TABLE IF NOT EXISTS ew_moved (sender text, recipient text) ON COMMIT DROP;
    TRUNCATE ew_moved;
    INSERT INTO ew_moved
    SELECT DISTINCT t.from_address, t.to_address FROM ethwhale.txs t
    WHERE t.chain_id = chain AND t.block BETWEEN lo AND hi;
    ANALYZE ew_moved;
    -- (a feeder that passed both tests and now sent elsewhere is one less;
    -- one that passed the first and is now fed is one more)
    WITH settled AS (
        UPDATE ethwhale.candidate_edges e SET feeder_sole = false
        FROM ew_moved m
        WHERE e.chain_id = chain AND e.counterparty = m.sender AND e.received AND e.feeder_sole
          AND e.address IS DISTINCT FROM m.recipient
        RETURNING e.address, e.feeder_fed
    )
    INSERT INTO ew_delta SELECT s.address, 0, - count(*) FILTER (WHERE s.feeder_fed) FROM settled s
    GROUP BY s.address;
    WITH settled AS (
        UPDATE ethwhale.candidate_edges e SET feeder_fed = true
        FROM ew_moved m
        WHERE e.chain_id = chain AND e.counterparty = m.recipient AND e.received AND NOT e.feeder_fed
          AND e.address <> m.sender
        RETURNING e.address, e.feeder_sole
    )
    INSERT INTO ew_delta SELECT s.address, 0, count(*) FILTER (WHERE s.feeder_sole) FROM settled s
    GROUP BY s.address;
    UPDATE ethwhale.candidate_kept k
       SET counterparties = k.counterparties + d.counterparties, sweepers = k.sweepers + d.sweepers
      FROM (SELECT x.address, sum(x.counterparties) AS counterparties, sum(x.sweepers) AS sweepers
            FROM ew_delta x GROUP BY x.address) d
     WHERE k.chain_id = chain AND k.address = d.address AND (d.counterparties <> 0 OR d.sweepers <> 0);
    INSERT INTO ew_touched SELECT DISTINCT x.address FROM ew_delta x ON CONFLICT DO NOTHING;

    INSERT INTO ethwhale.candidate_daily AS d (chain_id, address, day, wei)
    SELECT chain, m.address, m.day, m.wei FROM ethwhale.eth_moves(chain, lo, hi, 'ew_touched') m
    ON CONFLICT (chain_id, address, day) DO UPDATE SET wei = d.wei + excluded.wei;

    RETURN ethwhale.views_mark_dirty(chain, lo, hi, 'ew_touched');
END
$$;

-- ethwhale.candidates_forget(chain, lo, hi): the chain's blocks LO..HI are
-- going away (a reorg).  The kept addresses their transactions touch, or
-- that an address they touch sent to, lose their kept state (the
-- blocks' rows are still there: called before they are deleted); they and
-- the parties of the blocks' large transfers go into view_dirty.
CREATE FUNCTION ethwhale.candidates_forget(chain bigint, lo bigint, hi bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ethwhale.addresses_touched(chain, lo, hi, false);
    CREATE TEMP TABLE IF NOT EXISTS ew_forget (address text PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE ew_forget;
    INSERT INTO ew_forget
    SELECT k.address FROM ethwhale.candidate_kept k JOIN ew_touched w ON w.address = k.address
    WHERE k.chain_id = chain
    UNION
    -- the kept addresses a touched address ever sent to: their feeder tests
    -- of it may change (found through the transactions, which have the
    -- index: one on candidate_edges (counterparty) would cost every refresh)
    SELECT k.address FROM ethwhale.txs t
    JOIN ew_touched w ON w.address = t.from_address
    JOIN ethwhale.candidate_kept k ON k.chain_id = chain AND k.address = t.to_address
    WHERE t.chain_id = chain;
    PERFORM ethwhale.candidates_drop(chain, ARRAY(SELECT f.address FROM ew_forget f));
    PERFORM ethwhale.views_mark_dirty(chain, lo, hi, 'ew_forget');
END
$$;

-- ethwhale.candidates_drop(chain, addrs): the chain's addresses ADDRS
-- (NULL: all) lose their kept state.
CREATE FUNCTION ethwhale.candidates_drop(chain bigint, addrs text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF addrs IS NULL THEN
        DELETE FROM ethwhale.candidate_edges e WHERE e.chain_id = chain;
        DELETE FROM ethwhale.candidate_daily d WHERE d.chain_id = chain;
        DELETE FROM ethwhale.candidate_kept k WHERE k.chain_id = chain;
    ELSIF cardinality(addrs) > 0 THEN
        -- joins: x = ANY (addrs) would search the array for every row
        DELETE FROM ethwhale.candidate_edges e USING unnest(addrs) u(address)
         WHERE e.chain_id = chain AND e.address = u.address;
        DELETE FROM ethwhale.candidate_daily d USING unnest(addrs) u(address)
         WHERE d.chain_id = chain AND d.address = u.address;
        DELETE FROM ethwhale.candidate_kept k USING unnest(addrs) u(address)
         WHERE k.chain_id = chain AND k.address = u.address;
    END IF;
END
$$;

-- ethwhale.partitions_through(chain, upto): the chain's partitions of
-- ethwhale.txs that begin at or below block UPTO, as 'first-last,...'
-- (view_state.kept_partitions: what the kept state was drawn from).
CREATE FUNCTION ethwhale.partitions_through(chain bigint, upto bigint)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(p.first_block || '-' || p.last_block, ',' ORDER BY p.first_block)
    FROM ethwhale.partitions p
    WHERE p.table_name = 'txs' AND p.chain_id = chain AND p.first_block <= upto
$$;

-- ethwhale.is_candidate(chain, address): whether ADDRESS has a large
-- transfer on the chain (a row in ethwhale.whale_candidates).
CREATE FUNCTION ethwhale.is_candidate(chain bigint, address text)
RETURNS bool
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM ethwhale.large_transfer_rows r
                   WHERE r.from_address = is_candidate.address AND r.chain_id = chain)
        OR EXISTS (SELECT 1 FROM ethwhale.large_transfer_rows r
                   WHERE r.to_address = is_candidate.address AND r.chain_id = chain)
$$;

-- ---------------------------------------------------------------- changed in 70_analytics.sql and 78_scores.sql

CREATE OR REPLACE FUNCTION ethwhale.views_rollback(chain bigint, above bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    through bigint;
BEGIN
    -- first the views' row: a refresh bringing them forward meanwhile would
    -- add rows of the blocks going away after the kept state was forgotten
    SELECT v.through_block INTO through FROM ethwhale.view_state v WHERE v.chain_id = chain FOR UPDATE;
    IF above IS NULL THEN
        DELETE FROM ethwhale.large_transfer_rows r WHERE r.chain_id = chain;
        DELETE FROM ethwhale.whale_candidate_rows r WHERE r.chain_id = chain;
        DELETE FROM ethwhale.view_dirty d WHERE d.chain_id = chain;
        DELETE FROM ethwhale.view_state v WHERE v.chain_id = chain;
        PERFORM ethwhale.candidates_drop(chain, NULL);
        RETURN;
    END IF;
    IF through IS NULL OR through <= above THEN
        RETURN;
    END IF;
    PERFORM ethwhale.candidates_forget(chain, above + 1, through);
    DELETE FROM ethwhale.large_transfer_rows r WHERE r.chain_id = chain AND r.block > above;
    -- (kept_partitions too: the kept state covers the partitions up to ABOVE)
    UPDATE ethwhale.view_state v
       SET through_block = above, kept_partitions = ethwhale.partitions_through(chain, above)
     WHERE v.chain_id = chain;
END
$$;

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

CREATE FUNCTION ethwhale.whale_candidates_of(chain bigint, addrs text[], kept bool DEFAULT false)
RETURNS SETOF ethwhale.whale_candidate_rows
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
-- (ADDRS as a set: x = ANY (addrs) would search the array for every row)
WITH wanted AS (SELECT a.address FROM unnest(addrs) a(address)),
sides AS (
    SELECT from_address AS address, to_address AS counterparty, value_usd, block_time, true AS sent,
           to_category AS cp_category
    FROM ethwhale.large_transfers
    WHERE chain_id = chain AND (addrs IS NULL OR from_address IN (SELECT address FROM wanted))
    UNION ALL
    SELECT to_address, from_address, value_usd, block_time, false, from_category
    FROM ethwhale.large_transfers
    WHERE chain_id = chain AND (addrs IS NULL OR to_address IN (SELECT address FROM wanted))
),
agg AS (
    SELECT address,
           count(*) AS large_transfers,
           count(*) FILTER (WHERE sent) AS large_sent,
           count(*) FILTER (WHERE NOT sent) AS large_received,
           sum(value_usd) AS volume_usd,
           coalesce(sum(value_usd) FILTER (WHERE sent), 0) AS sent_usd,
           coalesce(sum(value_usd) FILTER (WHERE NOT sent), 0) AS received_usd,
           min(block_time) AS first_seen,
           max(block_time) AS last_seen,
           count(DISTINCT counterparty) AS counterparties,
           coalesce(sum(value_usd) FILTER (WHERE sent AND ethwhale.exchange_category(cp_category)), 0) AS to_exchanges_usd,
           coalesce(sum(value_usd) FILTER (WHERE NOT sent AND ethwhale.exchange_category(cp_category)), 0) AS from_exchanges_usd,
           count(*) FILTER (WHERE ethwhale.exchange_category(cp_category)) AS exchange_transfers
    FROM sides
    GROUP BY address
),
created AS (
    SELECT DISTINCT t.created_contract AS address
    FROM ethwhale.txs t
    WHERE t.chain_id = chain AND t.created_contract IN (SELECT address FROM agg)
      AND coalesce(t.status, 1) <> 0
),
edges AS (
    SELECT t.from_address AS address, t.to_address AS x
    FROM ethwhale.txs t WHERE t.chain_id = chain AND t.from_address IN (SELECT address FROM agg)
    UNION ALL
    SELECT t.to_address, t.from_address
    FROM ethwhale.txs t WHERE t.chain_id = chain AND t.to_address IN (SELECT address FROM agg)
),
kept_counts AS (
    SELECT k.address, k.counterparties AS n, k.sweepers
    FROM ethwhale.candidate_kept k
    WHERE kept AND k.chain_id = chain AND k.address IN (SELECT address FROM agg)
),
cp AS (
    SELECT address, count(DISTINCT x) AS n FROM edges WHERE NOT kept AND x <> address GROUP BY address
    UNION ALL
    SELECT address, n FROM kept_counts
),
feeders AS (
    SELECT DISTINCT t.to_address AS address, t.from_address AS d
    FROM ethwhale.txs t
    WHERE t.chain_id = chain AND t.to_address IN (SELECT address FROM agg) AND t.from_address <> t.to_address
),
sw AS (
    SELECT f.address, count(*) AS n
    FROM feeders f
    WHERE NOT kept AND NOT EXISTS (SELECT 1 FROM ethwhale.txs o
                      WHERE o.chain_id = chain AND o.from_address = f.d
                        AND o.to_address IS DISTINCT FROM f.address)
      AND EXISTS (SELECT 1 FROM ethwhale.txs i
                  WHERE i.chain_id = chain AND i.to_address = f.d AND i.from_address <> f.address)
    GROUP BY f.address
    UNION ALL
    SELECT address, sweepers FROM kept_counts
),
-- the ETH change of each address per UTC day, from all its synced transactions
-- (what ethwhale.address_eth_moves gives per address, set-based here: sent
-- value and fees, received value, value into the contract it was created as)
daily AS (
    SELECT d.address, d.day, d.wei
    FROM ethwhale.candidate_daily d
    WHERE kept AND d.chain_id = chain AND d.address IN (SELECT address FROM agg)
    UNION ALL
    SELECT x.address, x.day, sum(x.wei) AS wei
    FROM (SELECT t.from_address AS address, (t.block_time AT TIME ZONE 'UTC')::date AS day,
                 - CASE WHEN coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
                 - coalesce(t.gas_used * t.gas_price, 0) AS wei
          FROM ethwhale.txs t WHERE t.chain_id = chain AND t.from_address IN (SELECT address FROM agg)
          UNION ALL
          SELECT t.to_address, (t.block_time AT TIME ZONE 'UTC')::date,
                 CASE WHEN coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
          FROM ethwhale.txs t WHERE t.chain_id = chain AND t.to_address IN (SELECT address FROM agg)
          UNION ALL
          SELECT t.created_contract, (t.block_time AT TIME ZONE 'UTC')::date,
                 CASE WHEN coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
          FROM ethwhale.txs t
          WHERE t.chain_id = chain AND t.to_address IS NULL
            AND t.created_contract IN (SELECT address FROM agg)) x
    WHERE NOT kept
    GROUP BY 1, 2
),
-- the synced UTC days with an ETH/USD close on the day and the day before
price_days AS (
    SELECT p.day, p.price - q.price AS change
    FROM ethwhale.eth_usd p JOIN ethwhale.eth_usd q ON q.day = p.day - 1
    WHERE p.day BETWEEN (SELECT (min(b."timestamp") AT TIME ZONE 'UTC')::date FROM ethwhale.blocks b
                         WHERE b.chain_id = chain)
                    AND (SELECT (max(b."timestamp") AT TIME ZONE 'UTC')::date FROM ethwhale.blocks b
                         WHERE b.chain_id = chain)
),
chg AS (
    SELECT d.address, sum(d.wei) * 1e-18 AS change_eth FROM daily d GROUP BY d.address
),
pc AS (
    SELECT a.address, corr(coalesce(d.wei, 0) * 1e-18, pd.change) AS r, count(*) AS points,
           min(pd.day) AS first_day, max(pd.day) AS last_day
    FROM agg a CROSS JOIN price_days pd
    LEFT JOIN daily d ON d.address = a.address AND d.day = pd.day
    GROUP BY a.address
),
flags AS (
    SELECT a.*,
           l.label, l.category,
           CASE WHEN i.is_contract OR tk.address IS NOT NULL OR cr.address IS NOT NULL THEN true
                ELSE i.is_contract END AS is_contract,
           i.code_size, i.address IS NOT NULL AS looked_up,
           tk.address IS NOT NULL AS is_token, cr.address IS NOT NULL AS was_created,
           coalesce(cp.n, 0) AS all_counterparties,
           coalesce(sw.n, 0) AS sweepers,
           chg.change_eth,
           jsonb_build_object('r', pc.r, 'points', coalesce(pc.points, 0),
                              'first_day', pc.first_day, 'last_day', pc.last_day) AS corr
    FROM agg a
    LEFT JOIN ethwhale.address_label l ON l.address = a.address
    LEFT JOIN ethwhale.address_info i ON i.chain_id = chain AND i.address = a.address
    LEFT JOIN ethwhale.token tk ON tk.address = a.address
    LEFT JOIN created cr ON cr.address = a.address
    LEFT JOIN cp ON cp.address = a.address
    LEFT JOIN sw ON sw.address = a.address
    LEFT JOIN chg ON chg.address = a.address
    LEFT JOIN pc ON pc.address = a.address
),
judged AS (
    SELECT f.*,
           ethwhale.int_setting('ethwhale.exchange_min_counterparties', 1000, 1, 1000000000) AS min_cp,
           ethwhale.int_setting('ethwhale.exchange_min_sweepers', 10, 1, 1000000000) AS min_sw,
           f.category IN (SELECT category FROM ethwhale.excluded_category) AS category_excluded
    FROM flags f
),
excluded AS (
    SELECT j.*,
           (j.all_counterparties >= j.min_cp OR j.sweepers >= j.min_sw) AS exchange_like,
           CASE WHEN j.category_excluded
                    THEN 'labelled ' || j.category
                WHEN j.is_contract THEN 'contract'
                WHEN j.all_counterparties >= j.min_cp OR j.sweepers >= j.min_sw
                    THEN format('exchange-like (%s counterparties, %s deposit-like feeders)',
                                j.all_counterparties, j.sweepers)
           END AS excluded_reason
    FROM judged j
),
scored AS (
    SELECT e.*,
           -- NULL too for a volume of $0.00 (transfers worth less than a
           -- cent at a threshold below it): log10(0) is not a number
           CASE WHEN e.excluded_reason IS NULL AND e.volume_usd > 0
                THEN round(log(e.volume_usd * e.large_transfers), 3) END AS score
    FROM excluded e
)
SELECT s.address, s.label, s.category,
       s.large_transfers, s.large_sent, s.large_received,
       s.volume_usd, s.sent_usd, s.received_usd,
       s.first_seen, s.last_seen, s.counterparties,
       s.is_contract, s.exchange_like, s.all_counterparties, s.sweepers,
       s.excluded_reason, s.score,
       jsonb_build_object(
           'score', jsonb_build_object('formula', 'log10(volume_usd * large_transfers)',
                                      'volume_usd', s.volume_usd, 'large_transfers', s.large_transfers,
                                      'product', s.volume_usd * s.large_transfers, 'score', s.score),
           'volume_usd', s.volume_usd, 'sent_usd', s.sent_usd, 'received_usd', s.received_usd,
           'large_transfers', s.large_transfers, 'large_sent', s.large_sent,
           'large_received', s.large_received, 'counterparties', s.counterparties,
           'exchanges', jsonb_build_object('to_usd', s.to_exchanges_usd, 'from_usd', s.from_exchanges_usd,
                                           'transfers', s.exchange_transfers,
                                           'share', round((s.to_exchanges_usd + s.from_exchanges_usd)
                                                          / nullif(s.volume_usd, 0), 4)),
           'balance_change_eth', coalesce(s.change_eth, 0),
           'price_correlation', s.corr || jsonb_build_object(
               'method', 'Pearson correlation of the daily ETH balance change with the daily change of the '
                         || 'ETH/USD close, over the synced UTC days with a price on the day and the day before'),
           'first_seen', ethwhale.utc_text(s.first_seen), 'last_seen', ethwhale.utc_text(s.last_seen)
       ) AS reasons,
       jsonb_build_object(
           'excluded', s.excluded_reason IS NOT NULL, 'reason', s.excluded_reason,
           'label', jsonb_build_object('label', s.label, 'category', s.category,
                                       'category_excluded', coalesce(s.category_excluded, false)),
           'contract', jsonb_build_object(
               'is_contract', s.is_contract, 'code_size', s.code_size,
               'looked_up_with_eth_account', s.looked_up,
               'created_by_a_synced_transaction', s.was_created, 'token_in_ethwhale_token', s.is_token),
           'exchange_like', jsonb_build_object(
               'exchange_like', s.exchange_like,
               'counterparties', s.all_counterparties, 'min_counterparties', s.min_cp,
               'deposit_like_feeders', s.sweepers, 'min_deposit_like_feeders', s.min_sw)
       ) AS evidence,
       chain AS chain_id
FROM scored s
WHERE addrs IS NULL OR s.address IN (SELECT address FROM wanted)
$$;

CREATE OR REPLACE FUNCTION ethwhale.refresh_candidates(chain bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- its statements' estimates are far above jit_above_cost: compiling them took
-- 3 s of a 4.5 s refresh (measured)
SET jit = off
AS $$
DECLARE
    vs ethwhale.view_state;
    todo text[];
    cands text[];
    gone text[];
    n bigint;
BEGIN
    SELECT * INTO vs FROM ethwhale.view_state v WHERE v.chain_id = chain FOR UPDATE;
    IF vs.chain_id IS NULL THEN
        RETURN 0;
    END IF;
    IF vs.all_dirty THEN
        SELECT coalesce(array_agg(DISTINCT a), '{}') INTO cands
        FROM ethwhale.large_transfer_rows r CROSS JOIN LATERAL (VALUES (r.from_address), (r.to_address)) v(a)
        WHERE r.chain_id = chain;
        gone := ARRAY(SELECT k.address FROM ethwhale.candidate_kept k WHERE k.chain_id = chain
                      EXCEPT SELECT unnest(cands));
    ELSE
        SELECT coalesce(array_agg(d.address), '{}') INTO todo FROM ethwhale.view_dirty d WHERE d.chain_id = chain;
        cands := ARRAY(SELECT a FROM unnest(todo) a WHERE ethwhale.is_candidate(chain, a));
        gone := ARRAY(SELECT unnest(todo) EXCEPT SELECT unnest(cands));
    END IF;
    PERFORM ethwhale.candidates_drop(chain, gone);
    PERFORM ethwhale.candidates_keep(chain, cands, vs.through_block);
    IF vs.all_dirty THEN
        DELETE FROM ethwhale.whale_candidate_rows r WHERE r.chain_id = chain;
        INSERT INTO ethwhale.whale_candidate_rows SELECT * FROM ethwhale.whale_candidates_of(chain, NULL, true);
        GET DIAGNOSTICS n = ROW_COUNT;
    ELSE
        -- (a join: r.address = ANY (todo) would search the array for every row)
        DELETE FROM ethwhale.whale_candidate_rows r USING unnest(todo) u(address)
         WHERE r.chain_id = chain AND r.address = u.address;
        INSERT INTO ethwhale.whale_candidate_rows SELECT * FROM ethwhale.whale_candidates_of(chain, todo, true);
        n := cardinality(todo);
    END IF;
    DELETE FROM ethwhale.view_dirty d WHERE d.chain_id = chain;
    UPDATE ethwhale.view_state v
       SET all_dirty = false, refreshed_at = clock_timestamp(), last_addresses = n,
           last_full = vs.all_dirty,
           last_full_at = CASE WHEN vs.all_dirty THEN clock_timestamp() ELSE v.last_full_at END
     WHERE v.chain_id = chain;
    RETURN n;
END
$$;

-- every chain's views are computed again, with the kept state drawn, at the
-- next refresh
UPDATE ethwhale.view_state SET all_dirty = true,
       kept_partitions = ethwhale.partitions_through(chain_id, through_block);

/* ethwhale_fdw--0.5--0.6.sql: ALTER EXTENSION ethwhale_fdw UPDATE TO '0.6' */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ethwhale_fdw UPDATE TO '0.6'" to load this file. \quit

-- What 0.6 changes (issue 15; test/integration/test_upgrade.py checks that an
-- updated 0.5, and 0.1-0.4 updated through it, have the same objects,
-- definitions and seed rows as a fresh 0.6):
--   - an incremental refresh finds which dirty addresses are candidates with
--     index probes (ethwhale.candidates_among; is_candidate is gone), and
--     does not probe the feeder tests of a pair already kept as received
--     (candidate_edges_of gains FRESH);
--   - the candidates' rows are computed with hash joins (whale_candidates_of
--     SET enable_mergejoin = off), the exchange test and the settings once;
--   - large_transfers_of evaluates the threshold once, not for every move;
--   - a reorg settles again the feeder tests it can change instead of making
--     every candidate a touched sender paid draw its whole state again
--     (candidates_forget), and drops the whole kept state when a partition
--     was taken away since the last refresh (views_rollback).
-- No table changes: the kept state and the views' rows stay as they are.

DROP FUNCTION ethwhale.is_candidate(bigint, text);
DROP FUNCTION ethwhale.candidate_edges_of(bigint, bigint, bigint, regclass, bigint);  -- now (..., upto, fresh)

-- ---------------------------------------------------------------- sql_parts/70_analytics.sql

-- ethwhale.large_transfers_of(chain, lo, hi): the large transfers of the
-- chain's blocks LO..HI, priced now.
CREATE OR REPLACE FUNCTION ethwhale.large_transfers_of(chain bigint, lo bigint, hi bigint)
RETURNS SETOF ethwhale.large_transfer_rows
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH px AS (SELECT day, price FROM ethwhale.eth_usd_filled),
moves AS (
    SELECT 'ETH'::text AS kind, t.block, t.block_time, t.hash AS tx_hash, -1 AS log_index,
           NULL::text AS token, 'ETH'::text AS symbol, t.from_address, t.to_address,
           t.value * 1e-18 AS amount, t.value * 1e-18 * px.price AS value_usd
    FROM ethwhale.txs t
    JOIN px ON px.day = (t.block_time AT TIME ZONE 'UTC')::date
    WHERE t.chain_id = chain AND t.block BETWEEN lo AND hi
      AND t.value > 0 AND t.to_address IS NOT NULL AND coalesce(t.status, 1) <> 0
    UNION ALL
    SELECT 'token', tt.block, tt.block_time, tt.tx_hash, tt.log_index,
           tt.token, tk.symbol, tt.from_address, tt.to_address,
           -- exact: 1e-N as a numeric literal has scale N (10::numeric ^ (-18)
           -- rounds to 0 at numeric's 16 significant digits, a division rounds)
           tt.amount * ('1e-' || coalesce(tk.decimals, 0))::numeric,
           tt.amount * ('1e-' || coalesce(tk.decimals, 0))::numeric * coalesce(tk.usd_peg, px.price)
    FROM ethwhale.token_transfers tt
    JOIN ethwhale.token tk ON tk.address = tt.token
    LEFT JOIN px ON px.day = (tt.block_time AT TIME ZONE 'UTC')::date
    WHERE tt.chain_id = chain AND tt.block BETWEEN lo AND hi
)
SELECT chain, m.kind, m.block, m.block_time, m.tx_hash, m.log_index, m.token, m.symbol,
       m.from_address, m.to_address, m.amount, round(m.value_usd, 2)
FROM moves m
-- (a subquery: evaluated once, not for every move; 6.5 s of a 29 s full rebuild)
WHERE m.value_usd >= (SELECT ethwhale.whale_threshold_usd())
$$;

-- ethwhale.views_rollback(chain, above): the chain's blocks above ABOVE are
-- going away (a reorg; NULL: all of them, ethwhale.reset_sync): their large
-- transfers are taken out, the candidates' kept state is rolled back with
-- them (ethwhale.candidates_forget: the candidates they touched lose it,
-- the feeder tests they change are settled again; all of it goes when a
-- partition of txs was taken away since the last refresh), the candidates
-- whose rows change are marked for the next refresh, and the views' cursor
-- moved back.  Called before the blocks' rows are deleted, in the same
-- transaction.
CREATE OR REPLACE FUNCTION ethwhale.views_rollback(chain bigint, above bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    through bigint;
    kept text;
BEGIN
    -- first the views' row: a refresh bringing them forward meanwhile would
    -- add rows of the blocks going away after the kept state was forgotten
    SELECT v.through_block, v.kept_partitions INTO through, kept
    FROM ethwhale.view_state v WHERE v.chain_id = chain FOR UPDATE;
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
    IF kept IS DISTINCT FROM ethwhale.partitions_through(chain, through) THEN
        -- a partition taken away since the last refresh: the history the
        -- kept state rests on is gone, and settling tests again on what is
        -- left would be wrong.  The state goes, kept_partitions says none
        -- and the next refresh draws it all again (as it would have).
        PERFORM ethwhale.candidates_drop(chain, NULL);
        kept := NULL;
    ELSE
        PERFORM ethwhale.candidates_forget(chain, above + 1, through);
        -- the kept state covers the partitions up to ABOVE
        kept := ethwhale.partitions_through(chain, above);
    END IF;
    DELETE FROM ethwhale.large_transfer_rows r WHERE r.chain_id = chain AND r.block > above;
    UPDATE ethwhale.view_state v SET through_block = above, kept_partitions = kept
     WHERE v.chain_id = chain;
END
$$;

-- ---------------------------------------------------------------- sql_parts/74_candidate_state.sql

-- ethwhale.candidate_edges_of(chain, lo, hi, addrs, upto, fresh): the
-- counterparties that the chain's transactions of blocks LO..HI give the
-- addresses in the temporary table ADDRS, with the feeder tests of those
-- that sent to them, over all blocks up to UPTO.  The feeder tests are
-- index probes that stop at the first transaction that settles them: a
-- bitmap scan would read every transaction of the address first (0.45 ms
-- against 4 us a probe, measured).  Unless FRESH (the addresses have no
-- kept edges yet), a pair already kept as received is not probed again: its
-- tests come forward by views_apply's updates, and the row goes unused
-- (half of the pairs of 100 new blocks on the bench chain).
CREATE FUNCTION ethwhale.candidate_edges_of(chain bigint, lo bigint, hi bigint, addrs regclass, upto bigint,
                                             fresh bool)
RETURNS SETOF ethwhale.candidate_edges
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off
AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT $1, g.address, g.counterparty, g.received,
               CASE WHEN g.probe THEN
                   NOT EXISTS (SELECT 1 FROM ethwhale.txs o
                               WHERE o.chain_id = $1 AND o.from_address = g.counterparty AND o.block <= $4
                                 AND o.to_address IS DISTINCT FROM g.address) END,
               CASE WHEN g.probe THEN
                   EXISTS (SELECT 1 FROM ethwhale.txs i
                           WHERE i.chain_id = $1 AND i.to_address = g.counterparty AND i.block <= $4
                             AND i.from_address <> g.address) END
        FROM (SELECT x.address, x.counterparty, bool_or(x.received) AS received,
                     bool_or(x.received) AND ($5 OR NOT EXISTS (
                         SELECT 1 FROM ethwhale.candidate_edges k
                         WHERE k.chain_id = $1 AND k.address = x.address AND k.counterparty = x.counterparty
                           AND k.received)) AS probe
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
    USING chain, lo, hi, upto, fresh;
END
$$;

-- ethwhale.candidates_keep(chain, addrs, upto): draw the kept state of
-- the chain's candidates ADDRS from their history up to block UPTO (the
-- chain's view_state.through_block).  Returns how many it drew.
CREATE OR REPLACE FUNCTION ethwhale.candidates_keep(chain bigint, addrs text[], upto bigint)
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
    SELECT * FROM ethwhale.candidate_edges_of(chain, 0, upto, 'ew_keep', upto, true);
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

-- ethwhale.views_apply(chain, lo, hi): bring the kept state forward by the
-- chain's blocks LO..HI and put into view_dirty the addresses whose
-- candidate row those blocks can change: the kept addresses their
-- transactions touch (as sender, recipient or created contract) or whose
-- feeder tests they settle, and the parties of their large transfers.
-- Returns how many addresses it added.
CREATE OR REPLACE FUNCTION ethwhale.views_apply(chain bigint, lo bigint, hi bigint)
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
        SELECT * FROM ethwhale.candidate_edges_of(chain, lo, hi, 'ew_touched', hi, false)
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
-- going away (a reorg; the kept state is complete up to HI).  The kept
-- addresses their transactions touch lose their kept state, drawn again at
-- the next refresh.  Another kept address keeps its counterparties and daily
-- change, which no transaction of those blocks is part of; only the feeder
-- tests of the senders to it that those blocks touch can change (a
-- transaction elsewhere that made it fail, or one from another address that
-- made it pass, goes away), so they are settled again as of block LO - 1
-- and its count of feeders moved by the difference.  (0.5 made all of those
-- addresses draw their whole state again: on mainnet, every candidate an
-- exchange wallet ever paid.)  Called before the blocks' rows are deleted:
-- the probes stop at LO - 1.  The addresses that lost their state or whose
-- count moved, and the parties of the blocks' large transfers, go into
-- view_dirty.
CREATE OR REPLACE FUNCTION ethwhale.candidates_forget(chain bigint, lo bigint, hi bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- the feeder probes stop at the first transaction that settles them (see
-- candidate_edges_of)
SET enable_bitmapscan = off
AS $$
BEGIN
    PERFORM ethwhale.addresses_touched(chain, lo, hi, false);
    CREATE TEMP TABLE IF NOT EXISTS ew_forget (address text PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE ew_forget;
    INSERT INTO ew_forget
    SELECT k.address FROM ethwhale.candidate_kept k JOIN ew_touched w ON w.address = k.address
    WHERE k.chain_id = chain;
    -- the other kept addresses' senders that the blocks touch (found through
    -- the transactions, which have the index: one on candidate_edges
    -- (counterparty) would cost every refresh)
    CREATE TEMP TABLE IF NOT EXISTS ew_refeed (address text, counterparty text, PRIMARY KEY (address, counterparty))
        ON COMMIT DROP;
    CREATE TEMP TABLE IF NOT EXISTS ew_dirty (address text PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE ew_refeed, ew_dirty;
    INSERT INTO ew_refeed
    SELECT DISTINCT t.to_address, t.from_address FROM ethwhale.txs t
    JOIN ew_touched w ON w.address = t.from_address
    JOIN ethwhale.candidate_kept k ON k.chain_id = chain AND k.address = t.to_address
    WHERE t.chain_id = chain AND t.block < lo AND t.from_address <> t.to_address
      AND NOT EXISTS (SELECT 1 FROM ew_forget f WHERE f.address = t.to_address);
    ANALYZE ew_refeed;
    -- (the count of feeders from the tests before and after, which the
    -- subquery reads: counting every edge of those addresses again took
    -- longer than the probes)
    WITH settled AS (
        UPDATE ethwhale.candidate_edges e SET feeder_sole = n.sole, feeder_fed = n.fed
          FROM (SELECT p.address, p.counterparty, p.feeder_sole AND p.feeder_fed AS was,
                       NOT EXISTS (SELECT 1 FROM ethwhale.txs o
                                   WHERE o.chain_id = chain AND o.from_address = p.counterparty
                                     AND o.block < lo AND o.to_address IS DISTINCT FROM p.address) AS sole,
                       EXISTS (SELECT 1 FROM ethwhale.txs i
                               WHERE i.chain_id = chain AND i.to_address = p.counterparty
                                 AND i.block < lo AND i.from_address <> p.address) AS fed
                FROM ew_refeed r
                JOIN ethwhale.candidate_edges p
                  ON p.chain_id = chain AND p.address = r.address AND p.counterparty = r.counterparty
                WHERE p.received) n
         WHERE e.chain_id = chain AND e.address = n.address AND e.counterparty = n.counterparty
           AND (e.feeder_sole, e.feeder_fed) IS DISTINCT FROM (n.sole, n.fed)
        RETURNING e.address, (n.sole AND n.fed)::int - n.was::int AS delta
    )
    , counted AS (
        UPDATE ethwhale.candidate_kept k SET sweepers = k.sweepers + d.delta
          FROM (SELECT x.address, sum(x.delta) AS delta FROM settled x GROUP BY x.address) d
         WHERE k.chain_id = chain AND k.address = d.address AND d.delta <> 0
        RETURNING k.address
    )
    -- (dirty: a candidate's row reads the count, not the edges)
    INSERT INTO ew_dirty SELECT c.address FROM counted c;
    PERFORM ethwhale.candidates_drop(chain, ARRAY(SELECT f.address FROM ew_forget f));
    INSERT INTO ew_dirty SELECT f.address FROM ew_forget f ON CONFLICT DO NOTHING;
    PERFORM ethwhale.views_mark_dirty(chain, lo, hi, 'ew_dirty');
END
$$;

-- ---------------------------------------------------------------- sql_parts/78_scores.sql

-- ethwhale.whale_candidates_of(chain, addrs[, kept]): the rows of the
-- chain's addresses ADDRS (NULL: all) with large transfers, as they are now:
-- counterparties, feeders and daily ETH change drawn from all their synced
-- transactions, or with KEPT from their kept state (ethwhale.candidate_kept:
-- what a refresh does; the first way is what the tests check it against).
CREATE OR REPLACE FUNCTION ethwhale.whale_candidates_of(chain bigint, addrs text[], kept bool DEFAULT false)
RETURNS SETOF ethwhale.whale_candidate_rows
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
-- the CTEs' row estimates are defaults (200): with them the planner merged
-- the addresses' price days with their daily changes on the day alone and
-- read the daily rows again for every address (21 million rows for 2,656
-- addresses, 4.3 s of a 5 s computation; measured).  Hash joins do not
-- depend on the order of the rows.
SET enable_mergejoin = off
AS $$
-- (ADDRS as a set: x = ANY (addrs) would search the array for every row)
WITH wanted AS (SELECT a.address FROM unnest(addrs) a(address)),
sides AS (
    SELECT from_address AS address, to_address AS counterparty, value_usd, block_time, true AS sent,
           ethwhale.exchange_category(to_category) AS cp_exchange
    FROM ethwhale.large_transfers
    WHERE chain_id = chain AND (addrs IS NULL OR from_address IN (SELECT address FROM wanted))
    UNION ALL
    SELECT to_address, from_address, value_usd, block_time, false, ethwhale.exchange_category(from_category)
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
           coalesce(sum(value_usd) FILTER (WHERE sent AND cp_exchange), 0) AS to_exchanges_usd,
           coalesce(sum(value_usd) FILTER (WHERE NOT sent AND cp_exchange), 0) AS from_exchanges_usd,
           count(*) FILTER (WHERE cp_exchange) AS exchange_transfers
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
-- the settings once, not for every row
settings AS MATERIALIZED (
    SELECT ethwhale.int_setting('ethwhale.exchange_min_counterparties', 1000, 1, 1000000000) AS min_cp,
           ethwhale.int_setting('ethwhale.exchange_min_sweepers', 10, 1, 1000000000) AS min_sw
),
judged AS (
    SELECT f.*, st.min_cp, st.min_sw,
           f.category IN (SELECT category FROM ethwhale.excluded_category) AS category_excluded
    FROM flags f CROSS JOIN settings st
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

-- ethwhale.candidates_among(chain, addrs): those of the chain's addresses
-- ADDRS with a large transfer (a row in ethwhale.whale_candidates), by two
-- index probes each: a cost in proportion to ADDRS, not to the large
-- transfers.  The planner cannot be left to choose: when a few addresses
-- make most of the large transfers (on the bench chain six senders; on
-- mainnet, exchanges) it expects thousands of rows for any sender and reads
-- the whole table for each address until the first, by a sequential scan
-- or, with those off, by the block index on (chain_id, ...): 4.8 to 16 ms a
-- probe, 13 to 43 s for 2,656 addresses, measured.  So sequential and
-- bitmap scans are off (a bitmap scan reads every transfer of an address
-- before the first) and the chain is tested as chain_id + 0, which no index
-- serves: the address indexes are the only way in, and a probe stops at the
-- first row.  (0.5 asked is_candidate for each address, whose generic plan
-- scanned the table.)
CREATE FUNCTION ethwhale.candidates_among(chain bigint, addrs text[])
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
    SELECT u.a FROM unnest(addrs) u(a)
    WHERE EXISTS (SELECT 1 FROM ethwhale.large_transfer_rows r
                  WHERE r.from_address = u.a AND r.chain_id + 0 = chain)
       OR EXISTS (SELECT 1 FROM ethwhale.large_transfer_rows r
                  WHERE r.to_address = u.a AND r.chain_id + 0 = chain)
$$;

-- ethwhale.refresh_candidates(chain): compute again the candidate rows of
-- the addresses in view_dirty (every row of the chain when view_state says
-- all are dirty) from their kept state.  The candidates among them without
-- one draw it from their history first; the addresses among them that are
-- no longer candidates lose theirs.  (The kept state rests on the synced
-- transactions only, not on prices, labels or settings: a change of those
-- computes every row again from it.)  Returns how many addresses it
-- computed.
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
        cands := ARRAY(SELECT ethwhale.candidates_among(chain, todo));
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

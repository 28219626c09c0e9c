-- ---------------------------------------------------------------- the candidates' kept state
--
-- Beside its large transfers, a candidate's row (ethwhale.whale_candidates)
-- rests on three things drawn from all of its synced transactions: its
-- distinct counterparties, its deposit-like feeders and its ETH change per
-- UTC day.  Drawing them from the history of every candidate that new blocks
-- touch costs as much as a full refresh on a busy chain, where the touched
-- candidates are most of them.  So they are kept per candidate and brought
-- forward by each refresh from the new blocks only (ethwhale.views_apply):
--   candidate_kept   the addresses whose state is kept, complete up to the
--                    chain's view_state.through_block, with the counts of
--                    their counterparties and deposit-like feeders;
--   candidate_edges  each kept address's counterparties, whether one sent
--                    to it, and for one that did the two
--                    tests of a deposit-like feeder: FEEDER_SOLE, it sent to
--                    this address only (and created no contract), and
--                    FEEDER_FED, it received from another address;
--   candidate_daily  each kept address's ETH change per UTC day (sent value
--                    and fees out, received value in, value into the
--                    contract it was created as).
-- New blocks only add transactions, so a feeder test, once failed (it sent
-- elsewhere) or passed (it was fed), stays so: the new blocks settle both.  A
-- reorg takes blocks away: the kept addresses the replaced blocks touch lose
-- their state, and the feeder tests of the senders they touch are settled
-- again (ethwhale.candidates_forget).  A candidate without state (new, or
-- forgotten) draws it from its history at the next refresh
-- (ethwhale.candidates_keep); an address no longer a candidate loses it.
-- The state rests on the synced transactions alone, so a change of prices,
-- labels or settings, which computes every candidate row again, computes it
-- from the kept state.  Not dumped, like the views' tables: after a restore
-- the first refresh draws it again.

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
CREATE FUNCTION ethwhale.candidates_forget(chain bigint, lo bigint, hi bigint)
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

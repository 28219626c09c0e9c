-- ETH/USD of every day from the first known price to today, a missing day
-- taking the last price before it.
CREATE VIEW ethwhale.eth_usd_filled AS
SELECT d::date AS day,
       (SELECT p.price FROM ethwhale.eth_usd p WHERE p.day <= d::date ORDER BY p.day DESC LIMIT 1) AS price
FROM generate_series((SELECT min(day) FROM ethwhale.eth_usd),
                     greatest((SELECT max(day) FROM ethwhale.eth_usd), current_date),
                     interval '1 day') AS d;

-- ---------------------------------------------------------------- incremental views
--
-- ethwhale.large_transfers and ethwhale.whale_candidates are views over
-- tables that CALL ethwhale.refresh() maintains from the blocks synced since
-- the last refresh (ethwhale.view_state.through_block), so a refresh costs
-- in proportion to the new blocks, not to all history:
--   large_transfer_rows   the large transfers of those blocks are added;
--   view_dirty            the addresses whose candidate row the new blocks
--                         (or a reorg) may change;
--   whale_candidate_rows  the rows of those addresses are computed again,
--                         from the counterparties, feeders and daily ETH
--                         change kept per candidate (74_candidate_state).
-- What every row depends on -- prices, tokens, labels, excluded categories
-- (their triggers move ethwhale.view_basis_seq), the threshold and the
-- exchange-like settings, the chain's synced days (the correlation's
-- window) -- is recorded in view_state; when it changed, the refresh
-- rebuilds the chain's rows from scratch.  A reorg takes the rows of the
-- replaced blocks back (ethwhale.views_rollback) in the transaction that
-- deletes them.  None of these tables is dumped: after a restore the first
-- refresh rebuilds them.

CREATE SEQUENCE ethwhale.view_basis_seq;

CREATE FUNCTION ethwhale.view_basis_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM nextval('ethwhale.view_basis_seq');
    RETURN NULL;
END
$$;
CREATE TRIGGER view_basis AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ethwhale.eth_usd
    FOR EACH STATEMENT EXECUTE FUNCTION ethwhale.view_basis_changed();
CREATE TRIGGER view_basis AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ethwhale.token
    FOR EACH STATEMENT EXECUTE FUNCTION ethwhale.view_basis_changed();
CREATE TRIGGER view_basis AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ethwhale.address_label
    FOR EACH STATEMENT EXECUTE FUNCTION ethwhale.view_basis_changed();
CREATE TRIGGER view_basis AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ethwhale.excluded_category
    FOR EACH STATEMENT EXECUTE FUNCTION ethwhale.view_basis_changed();

-- What the views of each chain were last computed from.
CREATE TABLE ethwhale.view_state (
    chain_id             bigint PRIMARY KEY,
    through_block        bigint,          -- the views cover the chain's blocks up to here
    basis                bigint NOT NULL, -- ethwhale.view_basis_seq then
    threshold_usd        numeric NOT NULL,
    min_counterparties   bigint NOT NULL,
    min_sweepers         bigint NOT NULL,
    first_day            date,            -- the chain's synced UTC days then
    last_day             date,
    all_dirty            bool NOT NULL DEFAULT false,
    refreshed_at         timestamptz,
    last_full_at         timestamptz,
    last_new_blocks      bigint,          -- of the last refresh
    last_addresses       bigint,
    last_full            bool,
    -- the chain's txs partitions ('first-last,...') up to through_block then:
    -- one detached or dropped since takes history away, so the candidates'
    -- kept state is drawn again and every row computed again
    kept_partitions      text
);
COMMENT ON TABLE ethwhale.view_state IS 'what ethwhale.large_transfers and whale_candidates of each chain were computed from (CALL ethwhale.refresh())';

CREATE TABLE ethwhale.view_dirty (
    chain_id bigint NOT NULL,
    address  text NOT NULL,
    PRIMARY KEY (chain_id, address)
);
COMMENT ON TABLE ethwhale.view_dirty IS 'addresses whose whale_candidates row the next refresh computes again';

-- Transfers of at least ethwhale.whale_threshold_usd: successful ETH
-- transfers (value × ETH/USD of the block's UTC day) and transfers of the
-- tokens priced in ethwhale.token (amount / 10^decimals × usd_peg, or × ETH/USD
-- when usd_peg is NULL).  log_index is -1 for ETH.  value_usd is rounded to
-- cents (the threshold is compared before rounding).
CREATE TABLE ethwhale.large_transfer_rows (
    chain_id     bigint NOT NULL,
    kind         text NOT NULL,
    block        bigint NOT NULL,
    block_time   timestamptz NOT NULL,
    tx_hash      text NOT NULL,
    log_index    int NOT NULL,
    token        text,
    symbol       text,
    from_address text NOT NULL,
    to_address   text NOT NULL,
    amount       numeric NOT NULL,
    value_usd    numeric NOT NULL,
    PRIMARY KEY (chain_id, tx_hash, log_index)
);
CREATE INDEX large_transfer_rows_block_idx ON ethwhale.large_transfer_rows (chain_id, block);
CREATE INDEX large_transfer_rows_from_idx ON ethwhale.large_transfer_rows (from_address);
CREATE INDEX large_transfer_rows_to_idx ON ethwhale.large_transfer_rows (to_address);
COMMENT ON TABLE ethwhale.large_transfer_rows IS 'the rows of ethwhale.large_transfers, without labels; CALL ethwhale.refresh()';

-- ethwhale.large_transfers_of(chain, lo, hi): the large transfers of the
-- chain's blocks LO..HI, priced now.
CREATE FUNCTION ethwhale.large_transfers_of(chain bigint, lo bigint, hi bigint)
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

CREATE VIEW ethwhale.large_transfers AS
SELECT m.kind, m.block, m.block_time, m.tx_hash, m.log_index, m.token, m.symbol,
       m.from_address, m.to_address, m.amount, m.value_usd,
       fl.label AS from_label, fl.category AS from_category,
       tl.label AS to_label, tl.category AS to_category,
       m.chain_id
FROM ethwhale.large_transfer_rows m
LEFT JOIN ethwhale.address_label fl ON fl.address = m.from_address
LEFT JOIN ethwhale.address_label tl ON tl.address = m.to_address;
COMMENT ON VIEW ethwhale.large_transfers IS
    'ETH and priced token transfers of at least ethwhale.whale_threshold_usd, per chain; CALL ethwhale.refresh()';

-- ethwhale.views_rollback(chain, above): the chain's blocks above ABOVE are
-- going away (a reorg; NULL: all of them, ethwhale.reset_sync): their large
-- transfers are taken out, the candidates' kept state is rolled back with
-- them (ethwhale.candidates_forget: the candidates they touched lose it,
-- the feeder tests they change are settled again; all of it goes when a
-- partition of txs was taken away since the last refresh), the candidates
-- whose rows change are marked for the next refresh, and the views' cursor
-- moved back.  Called before the blocks' rows are deleted, in the same
-- transaction.
CREATE FUNCTION ethwhale.views_rollback(chain bigint, above bigint)
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

-- ethwhale.refresh_large_transfers(chain): bring the chain's large
-- transfers up to its last synced block: the blocks after view_state's
-- through_block when the basis is unchanged, else all of them again (and
-- every candidate row with them).  Returns whether it rebuilt everything.
CREATE FUNCTION ethwhale.refresh_large_transfers(chain bigint)
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

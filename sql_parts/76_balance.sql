-- ---------------------------------------------------------------- balance history (issue 17)
--
-- An address's ETH balance over time is the balance the node reports at one
-- synced block (the anchor, from eth_account) walked forwards and backwards
-- with the address's synced transactions: value received, value sent and
-- the fees it paid (gas used x the effective gas price: Geth's gasPrice of
-- a mined transaction).  What the transaction list cannot show is not in
-- the walk: internal transfers from contracts, block rewards and tips
-- received as a block's miner, withdrawals, blob fees.
-- ethwhale.balance_check compares the walk with eth_account at sampled
-- blocks and reports that gap.  See README.md, "Balance history".

-- The balance eth_account reported for an address at the end of BLOCK.
-- block_hash is that block's hash in the local chain (for the block before
-- the first synced one: the first block's parent hash); an anchor whose
-- block the local chain no longer has with that hash (a reorg) is asked
-- for again.
CREATE TABLE ethwhale.balance_anchor (
    address    text NOT NULL,
    block      bigint NOT NULL,
    block_hash text NOT NULL,
    balance    numeric NOT NULL,
    server     name NOT NULL,
    fetched_at timestamptz NOT NULL DEFAULT now(),
    chain_id   bigint NOT NULL,
    PRIMARY KEY (chain_id, address)
);
COMMENT ON TABLE ethwhale.balance_anchor IS
    'balances reported by eth_account that anchor ethwhale.balance_history (filled on demand)';
COMMENT ON COLUMN ethwhale.balance_anchor.balance IS 'wei, at the end of block';
SELECT pg_catalog.pg_extension_config_dump('ethwhale.balance_anchor', '');

-- ethwhale.local_block_hash(n): the hash of block N in the local chain of
-- ethwhale.current_chain(); for the block just below the first synced one,
-- the first block's parent hash.
CREATE FUNCTION ethwhale.local_block_hash(n bigint)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH c AS (SELECT ethwhale.current_chain() AS chain)
    SELECT coalesce((SELECT b.hash FROM ethwhale.blocks b, c WHERE b.chain_id = c.chain AND b.number = n),
                    (SELECT b.parent_hash FROM ethwhale.blocks b, c
                     WHERE b.chain_id = c.chain AND b.number = n + 1
                       AND b.number = (SELECT s.first_block FROM ethwhale.sync_state s WHERE s.chain_id = c.chain)))
$$;

-- ethwhale.anchor_balance(address, refresh): the anchor of ADDRESS: the one
-- stored, while its block is still in the local chain, else (or with
-- REFRESH) the balance eth_account reports at the first of these blocks
-- where the node has the state: the last synced block (a node keeps the
-- state of its recent blocks), the block before the first synced one, the
-- first synced one.  Stored in ethwhale.balance_anchor.  NULL, with a NOTICE
-- quoting the node, when none of them answers (a pruned node, no eth_account
-- table, nothing synced).
CREATE FUNCTION ethwhale.anchor_balance(address text, refresh boolean DEFAULT false)
RETURNS ethwhale.balance_anchor
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    addr text := lower(address);
    anc ethwhale.balance_anchor;
    st ethwhale.sync_state;
    c bigint;
    bal numeric;
    h text;
    asked bigint[] := '{}';
    tried text[] := '{}';
BEGIN
    SELECT * INTO st FROM ethwhale.sync_state s WHERE s.chain_id = ethwhale.current_chain();
    SELECT * INTO anc FROM ethwhale.balance_anchor x WHERE x.chain_id = st.chain_id AND x.address = addr;
    IF FOUND AND NOT refresh AND anc.block_hash = ethwhale.local_block_hash(anc.block) THEN
        RETURN anc;
    END IF;
    IF st.next_block IS NULL OR st.next_block <= st.first_block THEN
        RETURN NULL;
    END IF;
    IF to_regclass(format('%I.eth_account', st.remote_schema)) IS NULL THEN
        RAISE NOTICE 'ethwhale.anchor_balance(%): the wrapper has no eth_account table in schema %', addr, st.remote_schema;
        RETURN NULL;
    END IF;
    FOREACH c IN ARRAY ARRAY[st.next_block - 1, st.first_block - 1, st.first_block] LOOP
        CONTINUE WHEN c < 0 OR c = ANY (asked);
        asked := asked || c;
        bal := NULL;
        BEGIN
            EXECUTE format('SELECT balance FROM %I.eth_account WHERE address = $1 AND block = $2', st.remote_schema)
                INTO bal USING addr, c;
        EXCEPTION WHEN OTHERS THEN
            tried := tried || format('block %s: %s', c, SQLERRM);
            CONTINUE;
        END;
        h := ethwhale.local_block_hash(c);
        IF bal IS NULL OR h IS NULL THEN
            tried := tried || format('block %s: no answer', c);
            CONTINUE;
        END IF;
        anc := ROW(addr, c, h, bal, st.server, clock_timestamp(), st.chain_id);
        BEGIN
            INSERT INTO ethwhale.balance_anchor AS x (address, block, block_hash, balance, server, fetched_at, chain_id)
            VALUES (anc.address, anc.block, anc.block_hash, anc.balance, anc.server, anc.fetched_at, anc.chain_id)
            ON CONFLICT ON CONSTRAINT balance_anchor_pkey DO UPDATE
                SET block = excluded.block, block_hash = excluded.block_hash, balance = excluded.balance,
                    server = excluded.server, fetched_at = excluded.fetched_at;
        EXCEPTION WHEN read_only_sql_transaction THEN
            NULL;   -- a read-only session (a standby) uses the anchor without keeping it
        END;
        RETURN anc;
    END LOOP;
    RAISE NOTICE 'ethwhale.anchor_balance(%): the node reports no balance at the synced blocks it was asked for', addr
        USING DETAIL = array_to_string(tried, '; ');
    RETURN NULL;
END
$$;

-- ethwhale.address_eth_moves(address): the address's ETH movements in the
-- synced transactions, one row per transaction: VALUE_WEI received (also as
-- the contract a transaction created) minus sent, both of successful
-- transactions only, and FEE_WEI = gas used x gas price of the transactions
-- it sent (failed ones too); FEE_UNKNOWN when the node gave no gas used.
CREATE FUNCTION ethwhale.address_eth_moves(address text)
RETURNS TABLE (block bigint, tx_index int, block_time timestamptz, value_wei numeric,
               fee_wei numeric, fee_unknown boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH t AS (
        SELECT * FROM ethwhale.txs x WHERE x.chain_id = ethwhale.current_chain() AND x.from_address = lower(address_eth_moves.address)
        UNION
        SELECT * FROM ethwhale.txs x WHERE x.chain_id = ethwhale.current_chain() AND x.to_address = lower(address_eth_moves.address)
        UNION
        SELECT * FROM ethwhale.txs x
        WHERE x.chain_id = ethwhale.current_chain() AND x.created_contract = lower(address_eth_moves.address) AND x.created_contract IS NOT NULL
    )
    SELECT t.block, t.tx_index, t.block_time,
           CASE WHEN coalesce(t.status, 1) = 0 THEN 0
                ELSE CASE WHEN t.to_address = lower(address_eth_moves.address)
                            OR (t.to_address IS NULL AND t.created_contract = lower(address_eth_moves.address))
                          THEN t.value ELSE 0 END
                     - CASE WHEN t.from_address = lower(address_eth_moves.address) THEN t.value ELSE 0 END
           END,
           CASE WHEN t.from_address = lower(address_eth_moves.address) THEN coalesce(t.gas_used * t.gas_price, 0)
                ELSE 0 END,
           t.from_address = lower(address_eth_moves.address) AND (t.gas_used IS NULL OR t.gas_price IS NULL)
    FROM t
$$;

-- ethwhale.address_token_moves(address): the address's transfers of the
-- tokens priced in ethwhale.token, one row per transfer: AMOUNT received
-- minus sent, in token units.
CREATE FUNCTION ethwhale.address_token_moves(address text)
RETURNS TABLE (block bigint, log_index int, block_time timestamptz, token text, amount numeric)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH tt AS (
        SELECT * FROM ethwhale.token_transfers x WHERE x.chain_id = ethwhale.current_chain() AND x.from_address = lower(address_token_moves.address)
        UNION
        SELECT * FROM ethwhale.token_transfers x WHERE x.chain_id = ethwhale.current_chain() AND x.to_address = lower(address_token_moves.address)
    )
    SELECT tt.block, tt.log_index, tt.block_time, tt.token,
           (CASE WHEN tt.to_address = lower(address_token_moves.address) THEN tt.amount ELSE 0 END
            - CASE WHEN tt.from_address = lower(address_token_moves.address) THEN tt.amount ELSE 0 END)
           * ('1e-' || tk.decimals)::numeric
    FROM tt JOIN ethwhale.token tk ON tk.address = tt.token
$$;

-- ethwhale.eth_usd_at(day): the ETH/USD close of DAY, or the last one before it.
CREATE FUNCTION ethwhale.eth_usd_at(day date)
RETURNS numeric
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.price FROM ethwhale.eth_usd p WHERE p.day <= eth_usd_at.day ORDER BY p.day DESC LIMIT 1
$$;

-- ethwhale.balance_history(address, step): per STEP (no months or years)
-- from the first synced block to the last:
--   change_eth    received - sent - fees in the period (ethwhale.address_eth_moves)
--   balance_eth   the balance at the end of the period: the anchor
--                 (ethwhale.anchor_balance) walked with the changes; NULL
--                 when the node reports no balance
--   fees_eth      the fees it paid in the period
--   flow_eth      the changes since the first synced block (balance_eth
--                 without the anchor)
--   eth_usd       the ETH/USD close of the period's last day (or the last before)
--   balance_usd   balance_eth x eth_usd (the USD columns are rounded to cents)
--   token_usd     the priced tokens received minus sent since the first
--                 synced block, each valued at the period's price (a node
--                 tells a token balance only through a contract call, so
--                 tokens held before the sync are not counted)
--   total_usd     balance_usd + token_usd
--   unknown_fees  transactions sent so far whose gas used the node did not
--                 give (their fees are missing from the walk)
CREATE FUNCTION ethwhale.balance_history(address text, step interval DEFAULT '1 day')
RETURNS TABLE (period_start timestamptz, change_eth numeric, balance_eth numeric, fees_eth numeric,
               flow_eth numeric, eth_usd numeric, balance_usd numeric, token_usd numeric,
               total_usd numeric, unknown_fees bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    addr text := lower(address);
    lo timestamptz;
    hi timestamptz;
    anc ethwhale.balance_anchor;
    at_anchor numeric := 0;
BEGIN
    IF step IS NULL OR step <= interval '0' THEN
        RAISE EXCEPTION 'ethwhale.balance_history: step must be a positive interval'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF extract(month FROM step) <> 0 OR extract(year FROM step) <> 0 THEN
        RAISE EXCEPTION 'ethwhale.balance_history: step must not contain months or years'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use days, e.g. ''30 days''.';
    END IF;
    SELECT min("timestamp"), max("timestamp") INTO lo, hi FROM ethwhale.blocks b WHERE b.chain_id = ethwhale.current_chain();
    IF lo IS NULL THEN
        RETURN;
    END IF;
    lo := date_bin(step, lo, timestamptz '2000-01-01 00:00:00+00');
    anc := ethwhale.anchor_balance(addr);
    IF anc.block IS NOT NULL THEN
        SELECT coalesce(sum(m.value_wei - m.fee_wei), 0) INTO at_anchor
        FROM ethwhale.address_eth_moves(addr) m WHERE m.block <= anc.block;
    END IF;
    RETURN QUERY
    WITH per AS (
        SELECT date_bin(step, m.block_time, lo) AS p, sum(m.value_wei - m.fee_wei) AS wei,
               sum(m.fee_wei) AS fee, count(*) FILTER (WHERE m.fee_unknown) AS unk
        FROM ethwhale.address_eth_moves(addr) m GROUP BY 1
    ),
    tok AS (
        SELECT date_bin(step, m.block_time, lo) AS p, m.token, sum(m.amount) AS amount
        FROM ethwhale.address_token_moves(addr) m GROUP BY 1, 2
    ),
    grid AS (
        SELECT g AS p, ethwhale.eth_usd_at((least(g + step - interval '1 microsecond', hi) AT TIME ZONE 'UTC')::date) AS px
        FROM generate_series(lo, hi, step) g
    ),
    walk AS (
        SELECT g.p, g.px,
               coalesce(per.wei, 0) AS wei, coalesce(per.fee, 0) AS fee,
               sum(coalesce(per.wei, 0)) OVER w AS cum,
               sum(coalesce(per.unk, 0)) OVER w AS unk,
               (SELECT sum(h.amount * coalesce(tk.usd_peg, g.px))
                FROM (SELECT tok.token, sum(tok.amount) AS amount FROM tok WHERE tok.p <= g.p GROUP BY tok.token) h
                JOIN ethwhale.token tk ON tk.address = h.token) AS tok_usd
        FROM grid g LEFT JOIN per ON per.p = g.p
        WINDOW w AS (ORDER BY g.p)
    )
    SELECT w.p,
           w.wei * 1e-18,
           (anc.balance + w.cum - at_anchor) * 1e-18,
           w.fee * 1e-18,
           w.cum * 1e-18,
           w.px,
           round((anc.balance + w.cum - at_anchor) * 1e-18 * w.px, 2),
           round(coalesce(w.tok_usd, 0), 2),
           round((anc.balance + w.cum - at_anchor) * 1e-18 * w.px + coalesce(w.tok_usd, 0), 2),
           w.unk::bigint
    FROM walk w
    ORDER BY w.p;
END
$$;

-- ethwhale.balance_check(address, samples): the walk of balance_history
-- against eth_account at up to SAMPLES synced blocks (the blocks where the
-- address moved ETH or tokens and the last synced block, spread evenly; not
-- the anchor's): SERIES_ETH, the node's NODE_ETH and GAP_ETH = node -
-- series, with a NOTE when they differ or the node has no state there.  A
-- NOTICE sums it up.  The transaction list does not show internal transfers
-- from contracts, block rewards and tips received as a block's miner,
-- withdrawals or blob fees: an address that has them shows a gap.
CREATE FUNCTION ethwhale.balance_check(address text, samples int DEFAULT 10)
RETURNS TABLE (block bigint, series_eth numeric, node_eth numeric, gap_eth numeric,
               unknown_fees bigint, note text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    addr text := lower(address);
    anc ethwhale.balance_anchor := ethwhale.anchor_balance(lower(address));
    src name;
    at_anchor numeric;
    x record;
    bal numeric;
    n_equal int := 0;
    n_differ int := 0;
    n_nostate int := 0;
    worst numeric;
    worst_block bigint;
BEGIN
    IF samples IS NULL OR samples < 1 THEN
        RAISE EXCEPTION 'ethwhale.balance_check: samples must be a positive number of blocks'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF anc.block IS NULL THEN
        RAISE EXCEPTION 'ethwhale.balance_check(%): no balance to start from', addr
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The node reports no balance for the address at the synced blocks (see the NOTICE of ethwhale.anchor_balance), or nothing is synced.',
                  HINT = 'A node keeps the state of its recent blocks only: sync up to its head, or use an archive node.';
    END IF;
    SELECT s.remote_schema INTO src FROM ethwhale.sync_state s WHERE s.chain_id = ethwhale.current_chain();
    SELECT coalesce(sum(m.value_wei - m.fee_wei), 0) INTO at_anchor
    FROM ethwhale.address_eth_moves(addr) m WHERE m.block <= anc.block;
    FOR x IN
        WITH active AS (
            SELECT m.block FROM ethwhale.address_eth_moves(addr) m
            UNION SELECT m.block FROM ethwhale.address_token_moves(addr) m
            UNION SELECT s.next_block - 1 FROM ethwhale.sync_state s WHERE s.chain_id = ethwhale.current_chain()
        ),
        tiles AS (
            SELECT a.block, ntile(samples) OVER (ORDER BY a.block) AS t
            FROM active a WHERE a.block <> anc.block
        ),
        picked AS (SELECT max(t.block) AS block FROM tiles t GROUP BY t.t)
        SELECT p.block,
               (anc.balance + coalesce((SELECT sum(m.value_wei - m.fee_wei) FROM ethwhale.address_eth_moves(addr) m
                                        WHERE m.block <= p.block), 0) - at_anchor) AS series,
               (SELECT count(*) FROM ethwhale.address_eth_moves(addr) m
                WHERE m.fee_unknown AND m.block <= p.block) AS unk
        FROM picked p ORDER BY p.block
    LOOP
        block := x.block;
        series_eth := x.series * 1e-18;
        unknown_fees := x.unk;
        bal := NULL;
        note := NULL;
        BEGIN
            EXECUTE format('SELECT balance FROM %I.eth_account WHERE address = $1 AND block = $2', src)
                INTO bal USING addr, x.block;
        EXCEPTION WHEN OTHERS THEN
            note := 'the node has no state at this block: ' || SQLERRM;
        END;
        node_eth := bal * 1e-18;
        gap_eth := (bal - x.series) * 1e-18;
        IF bal IS NULL THEN
            note := coalesce(note, 'the node did not answer for this block');
            n_nostate := n_nostate + 1;
        ELSIF bal = x.series THEN
            n_equal := n_equal + 1;
        ELSE
            n_differ := n_differ + 1;
            note := 'differs: transfers the transaction list does not show'
                    || CASE WHEN x.unk > 0 THEN format(', and the fees of %s transaction(s) whose gas used is unknown', x.unk)
                            ELSE '' END;
            IF worst IS NULL OR abs(gap_eth) > abs(worst) THEN
                worst := gap_eth;
                worst_block := x.block;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
    RAISE NOTICE 'ethwhale.balance_check(%): % block(s) compared with eth_account (anchor: block %): % equal, % differ%, % without state at the node',
        addr, n_equal + n_differ + n_nostate, anc.block, n_equal, n_differ,
        CASE WHEN worst IS NOT NULL THEN format(' (largest gap %s ETH at block %s)', worst, worst_block) ELSE '' END,
        n_nostate
        USING DETAIL = 'The walk has the synced transactions only: internal transfers from contracts, block rewards and tips received as a miner, withdrawals and blob fees are not in the transaction list and show as a gap.';
END
$$;

-- ethwhale.price_correlation_stats(address): how the address's balance
-- moves with the ETH/USD price, over the UTC days of the synced range that
-- have a price on the day and the day before (ethwhale.balance_history by
-- day):
--   r             Pearson correlation of the daily balance change (ETH) with
--                 the daily change of the ETH/USD close: negative for an
--                 address that buys falls and sells rises
--   level_r       Pearson correlation of the end-of-day balance (ETH, anchored)
--                 with the close (NULL without an anchor)
--   points        the number of such days; first_day, last_day: the period
--   method        the method, in words
--   anchor_block, anchor_eth: the balance the series is anchored at
CREATE FUNCTION ethwhale.price_correlation_stats(address text)
RETURNS TABLE (r double precision, level_r double precision, points bigint, first_day date, last_day date,
               moving_days bigint, method text, anchor_block bigint, anchor_eth numeric)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    anc ethwhale.balance_anchor := ethwhale.anchor_balance(address);
BEGIN
    RETURN QUERY
    SELECT corr(h.change_eth, p.price - q.price), corr(h.balance_eth, p.price), count(*),
           min(p.day), max(p.day), count(*) FILTER (WHERE h.change_eth <> 0),
           'Pearson correlation of the daily ETH balance change with the daily change of the ETH/USD close, '
           || 'over the synced UTC days with a price on the day and the day before'::text,
           anc.block, anc.balance * 1e-18
    FROM ethwhale.balance_history(address, '1 day') h
    JOIN ethwhale.eth_usd p ON p.day = (h.period_start AT TIME ZONE 'UTC')::date
    JOIN ethwhale.eth_usd q ON q.day = p.day - 1;
END
$$;

-- ethwhale.price_correlation(address): r of ethwhale.price_correlation_stats,
-- with a NOTICE stating the method, the number of days and the period.
-- NULL, with a NOTICE saying why, when there are fewer than 3 such days or
-- either series is constant.
CREATE FUNCTION ethwhale.price_correlation(address text)
RETURNS double precision
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
BEGIN
    SELECT * INTO s FROM ethwhale.price_correlation_stats(address);
    IF s.points IS NULL OR s.points < 3 THEN
        RAISE NOTICE 'ethwhale.price_correlation(%): only % day(s) with a balance change and a price change (3 needed): the synced range is too short or prices are missing', address, coalesce(s.points, 0);
        RETURN NULL;
    END IF;
    IF s.r IS NULL THEN
        RAISE NOTICE 'ethwhale.price_correlation(%): undefined over % days: % of them change the balance, and the price or the balance never varies', address, s.points, s.moving_days;
        RETURN NULL;
    END IF;
    RAISE NOTICE 'ethwhale.price_correlation(%): r = % over % days, % .. %', address, round(s.r::numeric, 4), s.points, s.first_day, s.last_day
        USING DETAIL = s.method || '.';
    RETURN s.r;
END
$$;

-- ---------------------------------------------------------------- whale candidates, scored and explained

-- ethwhale.exchange_category(category): whether a label category is an
-- exchange's: 'exchange', 'hot-wallet', 'cold-wallet', or one of the
-- exchanges labels.csv files wallets under (the exchange names seeded in
-- ethwhale.excluded_category).  For the exchange share of a candidate's
-- large transfers.
CREATE FUNCTION ethwhale.exchange_category(category text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT lower(category) = ANY (ARRAY[
        'exchange', 'hot-wallet', 'cold-wallet',
        'binance', 'bitfinex', 'bithumb', 'bitstamp', 'bittrex', 'bybit', 'coinbase', 'coinone',
        'crypto-com', 'ftx', 'gate-io', 'gemini', 'huobi', 'kraken', 'kucoin', 'okex', 'okx',
        'poloniex', 'upbit'])
$$;

-- ethwhale.utc_text(t): T as ISO 8601 UTC text, whatever the session's TimeZone.
CREATE FUNCTION ethwhale.utc_text(t timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- One row per chain and address that sent or received a large transfer.
--   score = log10(volume_usd × large_transfers), rounded to 3 digits: a whale
--   moves much and often; NULL when the address is excluded.
--   excluded_reason: a label in ethwhale.excluded_category, a contract
--   (eth_account code size, or created/used as a token in the synced data),
--   or exchange-like (see below).
--   exchange_like: in the synced ETH transactions the address has at least
--   ethwhale.exchange_min_counterparties (1000) distinct counterparties, or
--   at least ethwhale.exchange_min_sweepers (10) deposit-like feeders:
--   addresses that received ETH from others and sent ETH only to it.
--   reasons (jsonb): what the score and rank rest on, and what else tells a
--   whale: the score's formula and inputs, volume, transfers, counterparties,
--   the share of the large transfers to and from labelled exchanges, the
--   ETH balance change over the synced range (received - sent - fees, all
--   synced transactions), the correlation of the daily change with the
--   ETH/USD change (as ethwhale.price_correlation), first and last seen.
--   evidence (jsonb): each exclusion test with its value against its
--   threshold: the label and whether its category is excluded, the contract
--   check (eth_account code size, created by a synced transaction, a token),
--   the counterparties and deposit-like feeders of the exchange-like test.
-- rank: among the chain's addresses not excluded, by volume_usd ×
--   large_transfers (computed when read, so a refresh computes again only
--   the rows of the addresses the new blocks touch).
CREATE TABLE ethwhale.whale_candidate_rows (
    address            text NOT NULL,
    label              text,
    category           text,
    large_transfers    bigint NOT NULL,
    large_sent         bigint NOT NULL,
    large_received     bigint NOT NULL,
    volume_usd         numeric NOT NULL,
    sent_usd           numeric NOT NULL,
    received_usd       numeric NOT NULL,
    first_seen         timestamptz,
    last_seen          timestamptz,
    counterparties     bigint,
    is_contract        bool,
    exchange_like      bool,
    all_counterparties bigint,
    sweepers           bigint,
    excluded_reason    text,
    score              numeric,
    reasons            jsonb,
    evidence           jsonb,
    chain_id           bigint NOT NULL,
    PRIMARY KEY (chain_id, address)
);
COMMENT ON TABLE ethwhale.whale_candidate_rows IS 'the rows of ethwhale.whale_candidates without their rank; CALL ethwhale.refresh()';

-- ethwhale.whale_candidates_of(chain, addrs[, kept]): the rows of the
-- chain's addresses ADDRS (NULL: all) with large transfers, as they are now:
-- counterparties, feeders and daily ETH change drawn from all their synced
-- transactions, or with KEPT from their kept state (ethwhale.candidate_kept:
-- what a refresh does; the first way is what the tests check it against).
CREATE FUNCTION ethwhale.whale_candidates_of(chain bigint, addrs text[], kept bool DEFAULT false)
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

CREATE VIEW ethwhale.whale_candidates AS
SELECT x.address, x.label, x.category, x.large_transfers, x.large_sent, x.large_received,
       x.volume_usd, x.sent_usd, x.received_usd, x.first_seen, x.last_seen, x.counterparties,
       x.is_contract, x.exchange_like, x.all_counterparties, x.sweepers, x.excluded_reason,
       x.score, x.rank,
       jsonb_set(x.reasons, '{score,rank}', coalesce(to_jsonb(x.rank), 'null'::jsonb)) AS reasons,
       x.evidence, x.chain_id
FROM (SELECT r.*,
             CASE WHEN r.excluded_reason IS NULL THEN
                  rank() OVER (PARTITION BY r.chain_id, r.excluded_reason IS NULL
                               ORDER BY r.volume_usd * r.large_transfers DESC)
             END AS rank
      FROM ethwhale.whale_candidate_rows r) x;
COMMENT ON VIEW ethwhale.whale_candidates IS
    'addresses with large transfers, per chain, scored; exchanges, bridges and contracts flagged in excluded_reason; reasons and evidence explain both';

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
CREATE FUNCTION ethwhale.refresh_candidates(chain bigint)
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

-- ETH/USD of every day from the first known price to today, a missing day
-- taking the last price before it.
CREATE VIEW ethwhale.eth_usd_filled AS
SELECT d::date AS day,
       (SELECT p.price FROM ethwhale.eth_usd p WHERE p.day <= d::date ORDER BY p.day DESC LIMIT 1) AS price
FROM generate_series((SELECT min(day) FROM ethwhale.eth_usd),
                     greatest((SELECT max(day) FROM ethwhale.eth_usd), current_date),
                     interval '1 day') AS d;

-- Transfers of at least ethwhale.whale_threshold_usd: successful ETH
-- transfers (value × ETH/USD of the block's UTC day) and transfers of the
-- tokens priced in ethwhale.token (amount / 10^decimals × usd_peg, or × ETH/USD
-- when usd_peg is NULL).  log_index is -1 for ETH.
CREATE MATERIALIZED VIEW ethwhale.large_transfers AS
WITH px AS (SELECT day, price FROM ethwhale.eth_usd_filled),
moves AS (
    SELECT 'ETH'::text AS kind, t.block, t.block_time, t.hash AS tx_hash, -1 AS log_index,
           NULL::text AS token, 'ETH'::text AS symbol, t.from_address, t.to_address,
           t.value * 1e-18 AS amount, t.value * 1e-18 * px.price AS value_usd
    FROM ethwhale.txs t
    JOIN px ON px.day = (t.block_time AT TIME ZONE 'UTC')::date
    WHERE t.value > 0 AND t.to_address IS NOT NULL AND coalesce(t.status, 1) <> 0
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
)
SELECT m.kind, m.block, m.block_time, m.tx_hash, m.log_index, m.token, m.symbol,
       m.from_address, m.to_address, m.amount, round(m.value_usd, 2) AS value_usd,
       fl.label AS from_label, fl.category AS from_category,
       tl.label AS to_label, tl.category AS to_category
FROM moves m
LEFT JOIN ethwhale.address_label fl ON fl.address = m.from_address
LEFT JOIN ethwhale.address_label tl ON tl.address = m.to_address
WHERE m.value_usd >= ethwhale.whale_threshold_usd();
CREATE UNIQUE INDEX large_transfers_key ON ethwhale.large_transfers (tx_hash, log_index);
CREATE INDEX large_transfers_from_idx ON ethwhale.large_transfers (from_address);
CREATE INDEX large_transfers_to_idx ON ethwhale.large_transfers (to_address);
COMMENT ON MATERIALIZED VIEW ethwhale.large_transfers IS
    'ETH and priced token transfers of at least ethwhale.whale_threshold_usd; CALL ethwhale.refresh()';

-- One row per address that sent or received a large transfer.
--   score = log10(volume_usd × large_transfers), rounded to 3 digits: a whale
--   moves much and often; NULL when the address is excluded.
--   excluded_reason: a label in ethwhale.excluded_category, a contract
--   (eth_account code size, or created/used as a token in the synced data),
--   or exchange-like (see below).
--   exchange_like: in the synced ETH transactions the address has at least
--   ethwhale.exchange_min_counterparties (1000) distinct counterparties, or
--   at least ethwhale.exchange_min_sweepers (10) deposit-like feeders:
--   addresses that received ETH from others and sent ETH only to it.
CREATE MATERIALIZED VIEW ethwhale.whale_candidates AS
WITH sides AS (
    SELECT from_address AS address, to_address AS counterparty, value_usd, block_time, true AS sent
    FROM ethwhale.large_transfers
    UNION ALL
    SELECT to_address, from_address, value_usd, block_time, false
    FROM ethwhale.large_transfers
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
           count(DISTINCT counterparty) AS counterparties
    FROM sides
    GROUP BY address
),
created AS (
    SELECT DISTINCT created_contract AS address
    FROM ethwhale.txs
    WHERE created_contract IS NOT NULL AND coalesce(status, 1) <> 0
),
edges AS (
    SELECT t.from_address AS address, t.to_address AS x
    FROM ethwhale.txs t WHERE t.from_address IN (SELECT address FROM agg)
    UNION ALL
    SELECT t.to_address, t.from_address
    FROM ethwhale.txs t WHERE t.to_address IN (SELECT address FROM agg)
),
cp AS (
    SELECT address, count(DISTINCT x) AS n FROM edges WHERE x <> address GROUP BY address
),
feeders AS (
    SELECT DISTINCT t.to_address AS address, t.from_address AS d
    FROM ethwhale.txs t
    WHERE t.to_address IN (SELECT address FROM agg) AND t.from_address <> t.to_address
),
sw AS (
    SELECT f.address, count(*) AS n
    FROM feeders f
    WHERE NOT EXISTS (SELECT 1 FROM ethwhale.txs o
                      WHERE o.from_address = f.d AND o.to_address IS DISTINCT FROM f.address)
      AND EXISTS (SELECT 1 FROM ethwhale.txs i
                  WHERE i.to_address = f.d AND i.from_address <> f.address)
    GROUP BY f.address
),
flags AS (
    SELECT a.*,
           l.label, l.category,
           CASE WHEN i.is_contract OR tk.address IS NOT NULL OR cr.address IS NOT NULL THEN true
                ELSE i.is_contract END AS is_contract,
           coalesce(cp.n, 0) AS all_counterparties,
           coalesce(sw.n, 0) AS sweepers
    FROM agg a
    LEFT JOIN ethwhale.address_label l ON l.address = a.address
    LEFT JOIN ethwhale.address_info i ON i.address = a.address
    LEFT JOIN ethwhale.token tk ON tk.address = a.address
    LEFT JOIN created cr ON cr.address = a.address
    LEFT JOIN cp ON cp.address = a.address
    LEFT JOIN sw ON sw.address = a.address
),
judged AS (
    SELECT f.*,
           (f.all_counterparties >= ethwhale.int_setting('ethwhale.exchange_min_counterparties', 1000, 1, 1000000000)
            OR f.sweepers >= ethwhale.int_setting('ethwhale.exchange_min_sweepers', 10, 1, 1000000000)) AS exchange_like
    FROM flags f
),
excluded AS (
    SELECT j.*,
           CASE WHEN j.category IN (SELECT category FROM ethwhale.excluded_category)
                    THEN 'labelled ' || j.category
                WHEN j.is_contract THEN 'contract'
                WHEN j.exchange_like THEN format('exchange-like (%s counterparties, %s deposit-like feeders)',
                                                 j.all_counterparties, j.sweepers)
           END AS excluded_reason
    FROM judged j
)
SELECT e.address, e.label, e.category,
       e.large_transfers, e.large_sent, e.large_received,
       e.volume_usd, e.sent_usd, e.received_usd,
       e.first_seen, e.last_seen, e.counterparties,
       e.is_contract, e.exchange_like, e.all_counterparties, e.sweepers,
       e.excluded_reason,
       CASE WHEN e.excluded_reason IS NULL
            THEN round(log(e.volume_usd * e.large_transfers), 3) END AS score,
       CASE WHEN e.excluded_reason IS NULL
            THEN rank() OVER (PARTITION BY e.excluded_reason IS NULL
                              ORDER BY e.volume_usd * e.large_transfers DESC) END AS rank
FROM excluded e;
CREATE UNIQUE INDEX whale_candidates_key ON ethwhale.whale_candidates (address);
CREATE INDEX whale_candidates_rank_idx ON ethwhale.whale_candidates (rank);
COMMENT ON MATERIALIZED VIEW ethwhale.whale_candidates IS
    'addresses with large transfers, scored; exchanges, bridges and contracts flagged in excluded_reason';

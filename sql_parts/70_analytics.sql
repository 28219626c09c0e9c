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

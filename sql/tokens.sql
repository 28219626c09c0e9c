--
-- tokens: eth_token_transfer, eth_account and real-price value_usd /
-- amount_usd against ../shared/data (mainnet blocks 17173049-17173050).
--
CREATE EXTENSION ethwhale_fdw;
\getenv csv_endpoint EW_CSV_ENDPOINT
\getenv data_dir EW_SERVER_DATA
\set transfers_csv :data_dir '/token_transfers.csv'
\set prices_csv :data_dir '/eth_usd_daily.csv'
\set txs_csv :data_dir '/txs.csv'
\set blocks_csv :data_dir '/blocks.csv'
CREATE SERVER csv FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint :'csv_endpoint', batch_blocks '1');
CREATE SCHEMA eth;
IMPORT FOREIGN SCHEMA ethereum FROM SERVER csv INTO eth;
SET search_path = eth, public;
SET timezone = 'UTC';

CREATE TEMP TABLE want (block bigint, tx_hash text, log_index int, token text,
                        "from" text, "to" text, value_raw numeric);
COPY want FROM :'transfers_csv' WITH (FORMAT csv, HEADER true);
DELETE FROM want WHERE block NOT BETWEEN 17173049 AND 17173050;
CREATE TEMP TABLE want_blocks (number bigint, hash text, parent_hash text, ts bigint,
                               miner text, gas_used bigint, tx_count int);
COPY want_blocks FROM :'blocks_csv' WITH (FORMAT csv, HEADER true);
SELECT count(*) > 200 AS enough FROM want;

-- every transfer, exactly, both ways
SELECT count(*) AS fdw_rows, sum(amount) = (SELECT sum(value_raw) FROM want) AS same_sum
FROM eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050;
(SELECT block, tx_hash, log_index, token, from_address, to_address, amount
 FROM eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050
 EXCEPT SELECT * FROM want)
UNION ALL
(SELECT * FROM want
 EXCEPT SELECT block, tx_hash, log_index, token, from_address, to_address, amount
 FROM eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050);
-- block_time is the block's timestamp
SELECT count(*) AS wrong_time FROM eth_token_transfer t JOIN want_blocks b ON b.number = t.block
WHERE t.block BETWEEN 17173049 AND 17173050 AND t.block_time <> to_timestamp(b.ts);

-- token, from and to filters give the rows plain SQL filtering gives
SELECT (SELECT count(*) FROM eth_token_transfer
        WHERE block BETWEEN 17173049 AND 17173050
          AND token = '0xdac17f958d2ee523a2206206994597c13d831ec7') AS usdt_fdw,
       (SELECT count(*) FROM want WHERE token = '0xdac17f958d2ee523a2206206994597c13d831ec7') AS usdt_want;
WITH pick AS (SELECT array_agg(DISTINCT "from") AS f, array_agg(DISTINCT "to") AS t
              FROM (SELECT * FROM want ORDER BY block, log_index LIMIT 20) s)
SELECT (SELECT count(*) FROM eth_token_transfer, pick
        WHERE block BETWEEN 17173049 AND 17173050 AND from_address = ANY(pick.f)) AS from_fdw,
       (SELECT count(*) FROM want, pick WHERE "from" = ANY(pick.f)) AS from_want,
       (SELECT count(*) FROM eth_token_transfer, pick
        WHERE block BETWEEN 17173049 AND 17173050 AND to_address = ANY(pick.t)
          AND from_address = ANY(pick.f)) AS both_fdw,
       (SELECT count(*) FROM want, pick WHERE "to" = ANY(pick.t) AND "from" = ANY(pick.f)) AS both_want;
-- values that cannot be addresses match nothing (not an error)
SELECT count(*) FROM eth_token_transfer
WHERE block BETWEEN 17173049 AND 17173050
  AND token = ANY(ARRAY['0xDAC17F958D2EE523A2206206994597C13D831EC7', NULL, 'usdt']);
SELECT count(*) FROM eth_token_transfer
WHERE block BETWEEN 17173049 AND 17173050 AND from_address = NULL::text;
EXPLAIN (VERBOSE, COSTS OFF) SELECT tx_hash FROM eth_token_transfer
WHERE block BETWEEN 17173049 AND 17173050
  AND token = '0xdac17f958d2ee523a2206206994597c13d831ec7'
  AND to_address = ANY('{0x28c6c06298d514db089934071355e5743bf21d60}');

-- prices: the real daily ETH/USD close
SELECT ethwhale.load_prices(:'prices_csv') > 3000 AS prices_loaded;
CREATE TEMP TABLE want_price (day date, close_usd numeric);
COPY want_price FROM :'prices_csv' WITH (FORMAT csv, HEADER true);
CREATE TEMP TABLE want_txs (block bigint, idx int, hash text, "from" text, "to" text,
                            value_wei numeric, gas bigint, gas_price numeric, input_prefix text);
COPY want_txs FROM :'txs_csv' WITH (FORMAT csv, HEADER true);
-- value_usd of real transactions = value_eth x that day's close, exactly
-- (compared multiplied out: SQL's own division would round)
SELECT count(*) AS priced,
       count(*) FILTER (WHERE t.value_usd * 1e18 = w.value_wei * p.close_usd) AS exact
FROM eth_tx t
JOIN want_txs w ON w.hash = t.hash
JOIN want_blocks b ON b.number = t.block
JOIN want_price p ON p.day = (to_timestamp(b.ts) AT TIME ZONE 'UTC')::date
WHERE t.block BETWEEN 17173049 AND 17173050 AND w.value_wei > 0;
-- amount_usd: stablecoins at their peg, unpriced tokens NULL
SELECT count(*) FILTER (WHERE amount_usd = amount / 1e6) AS usdt_usdc_exact,
       count(*) FILTER (WHERE token NOT IN (SELECT address FROM ethwhale.token)
                        AND amount_usd IS NOT NULL) AS unpriced_with_usd
FROM eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050;
SELECT count(*) = count(*) FILTER (WHERE amount_usd = amount / 1e6) AS all_usdt_exact
FROM eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050
  AND token = '0xdac17f958d2ee523a2206206994597c13d831ec7';
-- WETH is priced as ETH of the day
SELECT count(*) AS weth, count(*) FILTER (WHERE amount_usd * 1e18 = amount * p.close_usd) AS weth_exact
FROM eth_token_transfer t
JOIN want_price p ON p.day = (t.block_time AT TIME ZONE 'UTC')::date
WHERE t.block BETWEEN 17173049 AND 17173050
  AND t.token = '0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2';

-- wrapper filters on amount and amount_usd agree with plain SQL
SELECT (SELECT count(*) FROM eth_token_transfer
        WHERE block BETWEEN 17173049 AND 17173050 AND amount_usd > 10000) AS fdw,
       -- the same from the CSV rows: value_raw / 10^decimals x the peg, or
       -- x the day's ETH close (not the wrapper's own amount_usd)
       (SELECT count(*) FROM want w JOIN ethwhale.token k ON k.address = w.token
        JOIN want_blocks b ON b.number = w.block
        LEFT JOIN want_price p ON p.day = (to_timestamp(b.ts) AT TIME ZONE 'UTC')::date
        WHERE w.value_raw * coalesce(k.usd_peg, p.close_usd) > 10000 * 10::numeric ^ k.decimals) AS want,
       (SELECT count(*) FROM eth_token_transfer
        WHERE block BETWEEN 17173049 AND 17173050 AND amount >= 1e18) AS fdw_amount,
       (SELECT count(*) FROM want WHERE value_raw >= 1e18) AS want_amount;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM eth_token_transfer
WHERE block BETWEEN 17173049 AND 17173050 AND amount_usd > 10000;

-- eth_account: the CSV server knows token contracts (code) only
SELECT address, block, balance, nonce, code_size > 0 AS has_code, is_contract
FROM eth_account
WHERE address = ANY(ARRAY['0xdac17f958d2ee523a2206206994597c13d831ec7',
                          '0x0000000000000000000000000000000000000001',
                          '0xdac17f958d2ee523a2206206994597c13d831ec7', 'nope'])
ORDER BY address;
SELECT address, block, is_contract FROM eth_account
WHERE address = '0xdac17f958d2ee523a2206206994597c13d831ec7' AND block IN (17173049, 17173050)
ORDER BY block;
-- every token that moved in those blocks, in batches of aliases
SELECT count(*) AS tokens, bool_and(is_contract) AS all_contracts FROM eth_account
WHERE address = ANY(ARRAY(SELECT DISTINCT token FROM want));
SELECT count(*) FROM eth_account;
EXPLAIN (VERBOSE, COSTS OFF) SELECT balance FROM eth_account
WHERE address = '0xdac17f958d2ee523a2206206994597c13d831ec7';
DROP SCHEMA eth CASCADE;
DROP SERVER csv CASCADE;
DROP EXTENSION ethwhale_fdw;

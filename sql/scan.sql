--
-- scan: eth_block and eth_tx over real mainnet blocks 500000-501000 served
-- by the test server must equal ../shared/data (loaded here with COPY).
--
CREATE EXTENSION ethwhale_fdw;
\getenv csv_endpoint EW_CSV_ENDPOINT
\getenv data_dir EW_SERVER_DATA
\set blocks_csv :data_dir '/blocks.csv'
\set txs_csv :data_dir '/txs.csv'
CREATE SERVER csv FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint :'csv_endpoint', batch_blocks '100');
CREATE SCHEMA eth;
IMPORT FOREIGN SCHEMA ethereum FROM SERVER csv INTO eth;
SET search_path = eth, public;
SET timezone = 'UTC';

-- the expected data
CREATE TEMP TABLE want_blocks (number bigint, hash text, parent_hash text, ts bigint,
                               miner text, gas_used bigint, tx_count int);
COPY want_blocks FROM :'blocks_csv' WITH (FORMAT csv, HEADER true);
CREATE TEMP TABLE want_txs (block bigint, idx int, hash text, "from" text, "to" text,
                            value_wei numeric, gas bigint, gas_price numeric, input_prefix text);
COPY want_txs FROM :'txs_csv' WITH (FORMAT csv, HEADER true);
-- every CSV block and transaction, for the checks over several days
CREATE TEMP TABLE all_blocks AS SELECT * FROM want_blocks;
CREATE TEMP TABLE all_txs AS SELECT * FROM want_txs;
DELETE FROM want_blocks WHERE number NOT BETWEEN 500000 AND 501000;
DELETE FROM want_txs WHERE block NOT BETWEEN 500000 AND 501000;
SELECT count(*) > 2000 AS enough_txs, count(*) FILTER (WHERE "to" IS NULL) > 0 AS has_creations
FROM want_txs;

-- totals
SELECT (SELECT count(*) FROM eth_tx WHERE block BETWEEN 500000 AND 501000)
         = (SELECT count(*) FROM want_txs) AS tx_count_equal,
       (SELECT sum(value) FROM eth_tx WHERE block BETWEEN 500000 AND 501000)
         = (SELECT sum(value_wei) FROM want_txs) AS wei_sum_equal,
       (SELECT count(*) FROM eth_block WHERE number BETWEEN 500000 AND 501000) AS blocks;

-- every transaction row, both ways
CREATE TEMP TABLE got_txs AS
SELECT block, tx_index, hash, from_address, to_address, value, gas, gas_price,
       input_selector, value_eth, block_time
FROM eth_tx WHERE block BETWEEN 500000 AND 501000;
SELECT count(*) AS missing_or_different FROM (
  SELECT block, idx, hash, "from", nullif("to", ''), value_wei, gas, gas_price,
         nullif(nullif(input_prefix, ''), '0x') FROM want_txs
  EXCEPT
  SELECT block, tx_index, hash, from_address, to_address, value, gas, gas_price, input_selector
  FROM got_txs) d;
SELECT count(*) AS unexpected FROM (
  SELECT block, tx_index, hash, from_address, to_address, value, gas, gas_price, input_selector
  FROM got_txs
  EXCEPT
  SELECT block, idx, hash, "from", nullif("to", ''), value_wei, gas, gas_price,
         nullif(nullif(input_prefix, ''), '0x') FROM want_txs) d;

-- value_eth is value / 1e18 exactly; block_time is the block's timestamp
SELECT count(*) AS bad_value_eth FROM got_txs WHERE value_eth * 1e18 <> value;
SELECT count(*) AS fractional_value_eth FROM got_txs WHERE value_eth <> trunc(value_eth);
SELECT count(*) AS bad_block_time
FROM got_txs t JOIN want_blocks b ON b.number = t.block
WHERE t.block_time <> to_timestamp(b.ts);
-- contract creations have no to_address
SELECT hash, to_address IS NULL AS no_to FROM got_txs
WHERE hash IN (SELECT hash FROM want_txs WHERE "to" IS NULL) ORDER BY hash;

-- every block row
SELECT count(*) AS blocks_different FROM (
  SELECT number, hash, parent_hash, to_timestamp(ts), miner, gas_used, tx_count FROM want_blocks
  EXCEPT
  SELECT number, hash, parent_hash, "timestamp", miner, gas_used, tx_count
  FROM eth_block WHERE number BETWEEN 500000 AND 501000) d;
-- parent links hold across chunk boundaries
SELECT count(*) AS broken_links
FROM eth_block a JOIN eth_block b ON b.number = a.number + 1
WHERE a.number BETWEEN 500000 AND 501000 AND b.number BETWEEN 500000 AND 501000
  AND b.parent_hash <> a.hash;

-- a few rows to look at
SELECT number, hash, miner, gas_used, tx_count, "timestamp"
FROM eth_block WHERE number BETWEEN 500000 AND 500003 ORDER BY number;
SELECT block, tx_index, hash, from_address, to_address, value, value_eth, gas, input_selector
FROM eth_tx WHERE block = 500002 ORDER BY tx_index;

-- by hash: found, not found, not a hash, NULL
SELECT block, tx_index, from_address, value_eth
FROM eth_tx WHERE hash = (SELECT hash FROM want_txs ORDER BY block DESC, idx LIMIT 1);
SELECT count(*) FROM eth_tx WHERE hash = '0x' || repeat('ab', 32);
SELECT count(*) FROM eth_tx WHERE hash = 'not a hash';
SELECT count(*) FROM eth_tx WHERE hash = NULL;

-- empty and degenerate ranges
SELECT count(*) FROM eth_tx WHERE block BETWEEN 500010 AND 500000;
SELECT count(*) FROM eth_tx WHERE block = -5;
SELECT count(*) FROM eth_tx WHERE block = NULL::bigint;
-- (a block with transactions: the NULL must not hide block 500002's rows)
SELECT (SELECT count(*) FROM eth_tx WHERE block IN (500002, NULL)) AS got,
       (SELECT count(*) FROM want_txs WHERE block = 500002) AS want;

-- the newest blocks, without a lower bound
SELECT number FROM eth_block ORDER BY number DESC LIMIT 2;
SELECT block, count(*) FROM (SELECT block FROM eth_tx ORDER BY block DESC LIMIT 3) s GROUP BY block;

-- joins plan and run with bounds on both sides
SELECT b.number, count(t.hash) AS txs, b.tx_count
FROM eth_block b LEFT JOIN eth_tx t ON t.block = b.number AND t.block BETWEEN 500100 AND 500110
WHERE b.number BETWEEN 500100 AND 500110
GROUP BY b.number, b.tx_count HAVING count(t.hash) <> b.tx_count;

-- value_usd: value_eth times the price of the block's UTC day
INSERT INTO ethwhale.eth_usd VALUES ('2015-11-06', 0.9), ('2015-11-07', 1.1);
SELECT count(*) AS priced, count(*) FILTER (WHERE value_usd = value_eth * 0.9) AS at_0_9,
       count(*) FILTER (WHERE value_usd = value_eth * 1.1) AS at_1_1,
       count(*) FILTER (WHERE value_usd IS NULL) AS unpriced
FROM eth_tx WHERE block BETWEEN 500000 AND 501000;
SELECT count(*) AS wrong_day FROM eth_tx
WHERE block BETWEEN 500000 AND 501000
  AND value_usd IS DISTINCT FROM value_eth * (SELECT price FROM ethwhale.eth_usd
                                              WHERE day = (block_time AT TIME ZONE 'UTC')::date);
-- blocks 500000-501000 are all on 2015-11-06: the day boundary is crossed
-- over blocks of five days, each with the real close of its own day
-- (2015-11-06 keeps the 0.9 above); compared multiplied out, exactly
\set prices_csv :data_dir '/eth_usd_daily.csv'
CREATE TEMP TABLE want_price (day date, close_usd numeric);
COPY want_price FROM :'prices_csv' WITH (FORMAT csv, HEADER true);
INSERT INTO ethwhale.eth_usd SELECT day, close_usd FROM want_price WHERE close_usd IS NOT NULL
ON CONFLICT (day) DO NOTHING;
SELECT (to_timestamp(b.ts) AT TIME ZONE 'UTC')::date AS day, count(*) AS txs,
       count(*) FILTER (WHERE t.value_usd * 1e18 = w.value_wei * p.price) AS priced_that_day,
       round(min(p.price), 4) AS price
FROM eth_tx t
JOIN all_txs w ON w.hash = t.hash
JOIN all_blocks b ON b.number = t.block
JOIN ethwhale.eth_usd p ON p.day = (to_timestamp(b.ts) AT TIME ZONE 'UTC')::date
WHERE t.block IN (47218, 47219, 483920, 500002, 1755635, 17173049)
GROUP BY 1 ORDER BY 1;

-- value predicates are applied inside the wrapper; they must agree with
-- plain SQL filtering of the CSV rows (constants on either side, BETWEEN,
-- parameters, NULL)
SELECT (SELECT count(*) FROM eth_tx WHERE block BETWEEN 500000 AND 501000 AND value_eth > 10)
         = (SELECT count(*) FROM want_txs WHERE value_wei / 1e18 > 10) AS gt_eth,
       (SELECT count(*) FROM eth_tx WHERE block BETWEEN 500000 AND 501000 AND 1e20 <= value)
         = (SELECT count(*) FROM want_txs WHERE value_wei >= 1e20) AS ge_wei_commuted,
       (SELECT sum(value) FROM eth_tx WHERE block BETWEEN 500000 AND 501000
                                        AND value_eth BETWEEN 1 AND 100)
         = (SELECT sum(value_wei) FROM want_txs WHERE value_wei BETWEEN 1e18 AND 1e20) AS between_eth,
       (SELECT count(*) FROM eth_tx WHERE block BETWEEN 500000 AND 501000 AND value = 0)
         = (SELECT count(*) FROM want_txs WHERE value_wei = 0) AS eq_zero,
       (SELECT count(*) FROM eth_tx WHERE block BETWEEN 500000 AND 501000 AND value_usd >= 9)
         = (SELECT count(*) FROM want_txs WHERE value_wei / 1e18 * 0.9 >= 9) AS ge_usd,
       (SELECT count(*) FROM eth_tx WHERE block BETWEEN 500000 AND 501000 AND value > NULL) AS null_const;
PREPARE big_tx(numeric) AS
  SELECT count(*) FROM eth_tx WHERE block BETWEEN 500000 AND 501000 AND value_eth >= $1;
SELECT (SELECT count(*) FROM want_txs WHERE value_wei >= 1000e18) AS want_1000;
EXECUTE big_tx(1000);
DEALLOCATE big_tx;

SET client_min_messages = warning;
DROP SCHEMA eth CASCADE;
DROP SERVER csv CASCADE;
DROP EXTENSION ethwhale_fdw;

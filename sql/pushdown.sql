--
-- pushdown: what reaches the node, shown by EXPLAIN VERBOSE as the GraphQL
-- document and the block bounds.
--
CREATE EXTENSION ethwhale_fdw;
\getenv csv_endpoint EW_CSV_ENDPOINT
CREATE SERVER csv FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint :'csv_endpoint', batch_blocks '100');
CREATE SCHEMA eth;
IMPORT FOREIGN SCHEMA ethereum FROM SERVER csv INTO eth;
SET search_path = eth, public;

-- block bounds of every form
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash FROM eth_tx WHERE block BETWEEN 500000 AND 501000;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash FROM eth_tx WHERE block >= 500990 AND block < 500995;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash FROM eth_tx WHERE 500200 <= block AND 500210 >= block;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash FROM eth_tx WHERE block = 500123;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash FROM eth_tx WHERE block IN (500010, 500500, 500999);
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash FROM eth_tx WHERE block > 17173049;
-- int4 constants and stable expressions are evaluated when the scan starts
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash FROM eth_tx WHERE block >= 500000::int AND block <= 500000 + length(current_setting('search_path')) * 0;

-- projection: only the needed fields; counting asks for no transaction
-- field; receipt fields only when asked for
EXPLAIN (VERBOSE, COSTS OFF)
SELECT count(*) FROM eth_tx WHERE block BETWEEN 500000 AND 500099;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT sum(value_eth), max(block_time) FROM eth_tx WHERE block BETWEEN 500000 AND 500099;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash, status, gas_used, created_contract FROM eth_tx WHERE block = 17173049;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT * FROM eth_block WHERE number BETWEEN 1 AND 2;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT number FROM eth_block WHERE number BETWEEN 1 AND 2;

-- a transaction hash uses transaction(hash:)
EXPLAIN (VERBOSE, COSTS OFF)
SELECT from_address, value FROM eth_tx
WHERE hash = '0x2a1a1f5a4c0cd9fb8e1d2b2a0b9a3d6f5c7a0b1c2d3e4f5a6b7c8d9e0f1a2b3c';

-- parameters of a generic plan
SET plan_cache_mode = force_generic_plan;
PREPARE q(bigint, bigint) AS SELECT count(*) FROM eth_tx WHERE block BETWEEN $1 AND $2;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE q(500100, 500149);
EXECUTE q(500100, 500149);
EXECUTE q(500600, 500609);
PREPARE a(bigint[]) AS SELECT count(*) FROM eth_tx WHERE block = ANY($1);
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE a('{500300,500301,500900}');
EXECUTE a('{500300,500301,500900}');
SELECT name, generic_plans > 0 AS generic FROM pg_prepared_statements ORDER BY name;
DEALLOCATE ALL;
RESET plan_cache_mode;

-- ORDER BY ... DESC LIMIT reads from the head down: no sort above the scan
EXPLAIN (VERBOSE, COSTS OFF)
SELECT number, hash FROM eth_block ORDER BY number DESC LIMIT 5;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT block, hash FROM eth_tx WHERE block <= 500500 ORDER BY block DESC LIMIT 5;
SELECT block, count(*) FROM (SELECT block FROM eth_tx WHERE block <= 500500
                             ORDER BY block DESC LIMIT 5) s GROUP BY block ORDER BY block;

-- without a lower bound the scan is refused, with a hint
SELECT count(*) FROM eth_tx;
SELECT * FROM eth_block WHERE number <= 100;
SELECT hash FROM eth_tx WHERE to_address = '0x1212121212121212121212121212121212121212';
SELECT number FROM eth_block ORDER BY number LIMIT 1;
SELECT number FROM eth_block ORDER BY number DESC;
-- a bound that is not a scan constant is not pushed down
SELECT count(*) FROM eth_tx WHERE block >= gas;

-- row estimates follow the range: the bigger range drives a hash join
EXPLAIN (COSTS OFF)
SELECT count(*) FROM eth_block b JOIN eth_tx t ON t.block = b.number
WHERE b.number BETWEEN 500000 AND 500001 AND t.block BETWEEN 500000 AND 501000;

-- value comparisons with scan constants are applied by the wrapper while
-- decoding (Wrapper Filter), not by the executor; others stay local
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash FROM eth_tx
WHERE block BETWEEN 500000 AND 501000 AND value_usd > 100000 AND 5 < value_eth AND value <= $$1e24$$;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash FROM eth_tx
WHERE block BETWEEN 500000 AND 501000 AND (value_eth > 10 OR value_eth < 1) AND gas_price > 0
  AND value_eth::float8 > 1 AND value_eth > gas;
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT count(*) FROM eth_tx WHERE block BETWEEN 500000 AND 500099 AND value_eth >= 100;

-- bounds and filters from an initplan or an outer query (PARAM_EXEC): shown
-- by EXPLAIN, evaluated when the scan starts, again on every rescan
EXPLAIN (VERBOSE, COSTS OFF)
SELECT count(*) FROM eth_tx WHERE block >= (SELECT 17173049) AND value > (SELECT 0::numeric);
SELECT count(*) FROM eth_tx WHERE block >= (SELECT 17173049) AND value > (SELECT 0::numeric);
-- (three thresholds with three different answers, each beside the count
-- of the CSV rows: a rescan that kept the first parameter would show it)
\getenv data_dir EW_SERVER_DATA
\set txs_csv :data_dir '/txs.csv'
CREATE TEMP TABLE want_txs (block bigint, idx int, hash text, "from" text, "to" text,
                            value_wei numeric, gas bigint, gas_price numeric, input_prefix text);
COPY want_txs FROM :'txs_csv' WITH (FORMAT csv, HEADER true);
SELECT g, (SELECT count(*) FROM eth_tx WHERE block = 17173049 AND value > g) AS txs,
       (SELECT count(*) FROM want_txs WHERE block = 17173049 AND value_wei > g) AS want
FROM unnest(ARRAY[0, 1e17, 1e19]::numeric[]) g ORDER BY g;
SELECT b, (SELECT max(number) FROM eth_block WHERE number BETWEEN b AND b + 2) AS top
FROM unnest(ARRAY[500000, 500998]::bigint[]) b ORDER BY b;

-- bounds at the end of bigint: nothing there, and nothing overflows
SELECT count(*) FROM eth_block WHERE number = 9223372036854775807;
SELECT count(*) FROM eth_block WHERE number BETWEEN 9223372036854775000 AND 9223372036854775807;
SELECT count(*) FROM eth_block WHERE number > 9223372036854775807;
-- LIMIT ALL bounds nothing
SELECT number FROM eth_block ORDER BY number DESC LIMIT ALL;

-- EXPLAIN ANALYZE reports what was sent and received
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT count(*) FROM eth_tx WHERE block IN (500001, 500002, 500777);

SET client_min_messages = warning;
DROP SCHEMA eth CASCADE;
DROP SERVER csv CASCADE;
DROP EXTENSION ethwhale_fdw;

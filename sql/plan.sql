--
-- plan: what planning hands the executor, seen through EXPLAIN.
--
CREATE EXTENSION ethwhale_fdw;
\getenv csv_endpoint EW_CSV_ENDPOINT
CREATE SERVER csv FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint :'csv_endpoint', batch_blocks '100');
CREATE SCHEMA eth;
IMPORT FOREIGN SCHEMA ethereum FROM SERVER csv INTO eth;
SET search_path = eth, public;

-- A pseudoconstant clause (no column of the table) is evaluated once by the
-- gating Result above the scan, not for every row by the scan's Filter.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT count(*) FROM eth_tx
WHERE block BETWEEN 500000 AND 500009 AND current_setting('search_path') <> '';
SELECT count(*) FROM eth_tx
WHERE block BETWEEN 500000 AND 500009 AND current_setting('search_path') <> '';
SELECT count(*) FROM eth_tx
WHERE block BETWEEN 500000 AND 500009 AND current_setting('search_path') = '';

-- An account scan sends one document per batch of addresses, each address a
-- variable: with the count known at plan time, EXPLAIN shows the first
-- batch's document as sent.
EXPLAIN (VERBOSE, COSTS OFF)
SELECT address, nonce FROM eth_account
WHERE address IN ('0xdac17f958d2ee523a2206206994597c13d831ec7',
                  '0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2')
  AND block = 17173049;
-- not known at plan time: the document for one address, and how it repeats
EXPLAIN (VERBOSE, COSTS OFF)
SELECT address, balance FROM eth_account
WHERE address = ANY(ARRAY(SELECT '0x' || repeat('a', 40)));

-- A generic plan carries the bounds and the wrapper's filter as
-- parameters; each execution evaluates them afresh.
SET plan_cache_mode = force_generic_plan;
PREPARE p(bigint, bigint, numeric) AS
SELECT count(*) FROM eth_tx WHERE block BETWEEN $1 AND $2 AND value > $3;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE p(500000, 500099, 0);
EXECUTE p(500000, 500099, 0);
EXECUTE p(500000, 500099, 1000000000000000000);
EXECUTE p(500100, 500099, 0);
DEALLOCATE p;
RESET plan_cache_mode;

-- eth_tx JOIN eth_block on the block number is one scan: one document
-- whose blocks carry the eth_block fields; either side's bounds bound both
EXPLAIN (VERBOSE, COSTS OFF)
SELECT t.hash, b.miner FROM eth_tx t JOIN eth_block b ON b.number = t.block
WHERE b.number BETWEEN 500000 AND 500002;
SELECT t.hash, b.miner FROM eth_tx t JOIN eth_block b ON b.number = t.block
WHERE b.number BETWEEN 500000 AND 500002 ORDER BY 1;
-- joined to a list, eth_block is read per value (a parameterized path)
EXPLAIN (VERBOSE, COSTS OFF)
SELECT v.n, b.hash FROM (VALUES (500001::bigint), (500002)) v(n)
JOIN eth_block b ON b.number = v.n;

SET client_min_messages = warning;
DROP SCHEMA eth CASCADE;
DROP SERVER csv CASCADE;
DROP EXTENSION ethwhale_fdw;

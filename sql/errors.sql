--
-- errors: every failure of the node is a clear ERROR naming the server and
-- the blocks, and the backend goes on.  The fault server applies
-- test/faults.json: one fault per range of ten blocks from 1000 on.
--
CREATE EXTENSION ethwhale_fdw;
\getenv fault_endpoint EW_FAULT_ENDPOINT
-- (compression 'gzip': the faults' byte counts below are of gzipped answers;
-- on loopback the default asks for none)
CREATE SERVER faulty FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint :'fault_endpoint', batch_blocks '10', max_retries '1',
           timeout_ms '5000', connect_timeout_ms '2000', max_response_mb '1',
           compression 'gzip');
CREATE SCHEMA eth;
IMPORT FOREIGN SCHEMA ethereum FROM SERVER faulty INTO eth;
SET search_path = eth, public;

-- a healthy range works
SELECT count(*) FROM eth_block WHERE number BETWEEN 990 AND 999;

-- malformed JSON
SELECT count(*), max(hash) FROM eth_block WHERE number BETWEEN 1000 AND 1009;
-- a GraphQL error is passed on
SELECT max(hash) FROM eth_block WHERE number BETWEEN 1010 AND 1019;
-- HTTP 503 on every try
SELECT max(hash) FROM eth_block WHERE number BETWEEN 1020 AND 1029;
-- an answer cut short
SELECT max(hash) FROM eth_block WHERE number BETWEEN 1030 AND 1039;
-- Geth's own time-out, HTTP 200 with "request timed out": the chunk is
-- halved down to one block (no retry used), then that block is retried and
-- the error names it
SELECT max(hash) FROM eth_block WHERE number BETWEEN 1040 AND 1049;
-- a field of the wrong type names the field, column and block
SELECT max(hash) FROM eth_block WHERE number BETWEEN 1050 AND 1059;
-- a missing field
SELECT max(hash) FROM eth_block WHERE number BETWEEN 1060 AND 1069;
-- a number beyond bigint
SELECT max(gas_used) FROM eth_block WHERE number BETWEEN 1070 AND 1079;
-- an answer beyond max_response_mb
SELECT max(hash) FROM eth_block WHERE number BETWEEN 1080 AND 1089;
-- HTTP 404 is not retried
SELECT max(hash) FROM eth_block WHERE number BETWEEN 1100 AND 1109;
-- a hung request is cancelled by statement_timeout
SET statement_timeout = '1s';
SELECT max(hash) FROM eth_block WHERE number BETWEEN 1090 AND 1099;
RESET statement_timeout;

-- an endpoint nobody listens on (terse: the detail has timings)
CREATE SERVER nowhere FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint 'http://127.0.0.1:1/graphql', max_retries '0');
CREATE FOREIGN TABLE nowhere_blocks (number bigint, hash text)
  SERVER nowhere OPTIONS ("table" 'block');
\set VERBOSITY terse
SELECT * FROM nowhere_blocks WHERE number = 1;
\set VERBOSITY default

-- a foreign table whose column type does not fit the field
CREATE FOREIGN TABLE small_blocks (number bigint, gas_used smallint)
  SERVER faulty OPTIONS ("table" 'block');
SELECT max(gas_used) FROM small_blocks WHERE number BETWEEN 1 AND 20;

-- Geth before 1.12 sent Long fields as JSON numbers: accepted, and the rows
-- equal those of a server with the same chain that sends hex strings
-- (EW_PLAIN_ENDPOINT: a fault-free server of this suite's own)
\getenv plain_endpoint EW_PLAIN_ENDPOINT
CREATE SERVER plain FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint :'plain_endpoint');
CREATE SCHEMA plain;
IMPORT FOREIGN SCHEMA ethereum FROM SERVER plain INTO plain;
SELECT count(*) AS rows, sum(gas_used) > 0 AS has_gas FROM eth_tx WHERE block BETWEEN 1200 AND 1299;
SELECT count(*) AS differences FROM (
  (SELECT block, tx_index, hash, value, gas, nonce, status, gas_used FROM eth_tx
   WHERE block BETWEEN 1200 AND 1299
   EXCEPT
   SELECT block, tx_index, hash, value, gas, nonce, status, gas_used FROM plain.eth_tx
   WHERE block BETWEEN 1200 AND 1299)
  UNION ALL
  (SELECT number, tx_count, hash, gas_limit, gas_used, 0, 0, 0 FROM eth_block
   WHERE number BETWEEN 1200 AND 1299
   EXCEPT
   SELECT number, tx_count, hash, gas_limit, gas_used, 0, 0, 0 FROM plain.eth_block
   WHERE number BETWEEN 1200 AND 1299)) d;

-- one HTTP 503, then success: the rows are all there, and the retry is
-- counted (this suite has the fault server to itself: test/run starts one
-- per suite, so the one-time rule is unspent whatever ran before)
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT count(*) FROM eth_block WHERE number BETWEEN 1300 AND 1309;
SELECT count(*) FROM eth_block WHERE number BETWEEN 1300 AND 1309;

-- after all of that, the same backend still scans
SELECT count(*), count(DISTINCT hash) FROM eth_block WHERE number BETWEEN 1 AND 50;

SET client_min_messages = warning;
DROP SCHEMA eth, plain CASCADE;
DROP SERVER faulty, nowhere, plain CASCADE;
DROP EXTENSION ethwhale_fdw;

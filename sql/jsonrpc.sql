--
-- jsonrpc: the JSON-RPC node API.  The option api, its default from the
-- endpoint, what EXPLAIN shows is sent, and the same rows as GraphQL from
-- the same chain (the test server answers JSON-RPC at / and GraphQL at
-- /graphql, over ../shared/data).
--
CREATE EXTENSION ethwhale_fdw;
\getenv csv_endpoint EW_CSV_ENDPOINT
SELECT regexp_replace(:'csv_endpoint', '/graphql$', '/') AS rpc_endpoint \gset
SET timezone = 'UTC';

-- the option: two values, checked when set
CREATE SERVER bad FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint :'rpc_endpoint', api 'rest');
CREATE SERVER r FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint :'rpc_endpoint');
CREATE SERVER g FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint :'csv_endpoint');
-- GraphQL asked for at an endpoint whose path is not /graphql, and JSON-RPC at /graphql
CREATE SERVER forced FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint :'rpc_endpoint', api 'graphql');
ALTER SERVER forced OPTIONS (SET api 'jsonrpc');
CREATE SCHEMA r;
CREATE SCHEMA g;
CREATE SCHEMA forced;
IMPORT FOREIGN SCHEMA ethereum FROM SERVER r INTO r;
IMPORT FOREIGN SCHEMA ethereum FROM SERVER g INTO g;
IMPORT FOREIGN SCHEMA ethereum LIMIT TO (eth_block) FROM SERVER forced INTO forced;

-- what is sent: the default from the endpoint's path
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash FROM g.eth_block WHERE number BETWEEN 500000 AND 500009;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash FROM r.eth_block WHERE number BETWEEN 500000 AND 500009;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash FROM forced.eth_block WHERE number BETWEEN 500000 AND 500009;
-- transaction objects only when a transaction column is needed; receipts
-- only for the receipt columns; count(*) asks for counts
EXPLAIN (VERBOSE, COSTS OFF)
SELECT count(*) FROM r.eth_tx WHERE block BETWEEN 500000 AND 501000;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT count(*), max(block_time) FROM r.eth_tx WHERE block BETWEEN 500000 AND 501000;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT sum(value_usd) FROM r.eth_tx WHERE block BETWEEN 500000 AND 501000 AND value_usd > 1000;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash, status, gas_used FROM r.eth_tx WHERE block BETWEEN 17173049 AND 17173050;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT * FROM r.eth_tx WHERE hash = '0x779a37efdadd72b239fe245b538eb83fc98aea2bb7ffdce52d38a50af621977c';
EXPLAIN (VERBOSE, COSTS OFF)
SELECT t.hash, b.miner FROM r.eth_tx t JOIN r.eth_block b ON b.number = t.block
WHERE t.block BETWEEN 500000 AND 500002;
-- logs: the pushed addresses go into eth_getLogs' filter
EXPLAIN (VERBOSE, COSTS OFF)
SELECT count(*) FROM r.eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050
  AND token = '0xdac17f958d2ee523a2206206994597c13d831ec7'
  AND to_address = ANY(ARRAY['0x28c6c06298d514db089934071355e5743bf21d60']);
EXPLAIN (VERBOSE, COSTS OFF)
SELECT tt.amount, t.from_address FROM r.eth_token_transfer tt JOIN r.eth_tx t ON t.hash = tt.tx_hash
WHERE tt.block BETWEEN 17173049 AND 17173050;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT balance, is_contract FROM r.eth_account
WHERE address = '0xdac17f958d2ee523a2206206994597c13d831ec7';

-- what was sent and received
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT count(*) FROM r.eth_tx WHERE block BETWEEN 500000 AND 500099;
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT count(*) FROM r.eth_token_transfer WHERE block BETWEEN 17173049 AND 17173060
  AND token = '0xdac17f958d2ee523a2206206994597c13d831ec7' AND amount_usd > 1000;

-- the same rows as GraphQL, every column
SELECT (SELECT md5(string_agg(b::text, '|' ORDER BY number)) FROM g.eth_block b
         WHERE number BETWEEN 500000 AND 500100)
     = (SELECT md5(string_agg(b::text, '|' ORDER BY number)) FROM r.eth_block b
         WHERE number BETWEEN 500000 AND 500100) AS blocks_equal,
       (SELECT count(*) FROM r.eth_block WHERE number BETWEEN 500000 AND 500100) AS blocks;
SELECT (SELECT md5(string_agg(t::text, '|' ORDER BY block, tx_index)) FROM g.eth_tx t
         WHERE block BETWEEN 500000 AND 501000)
     = (SELECT md5(string_agg(t::text, '|' ORDER BY block, tx_index)) FROM r.eth_tx t
         WHERE block BETWEEN 500000 AND 501000) AS txs_equal,
       (SELECT md5(string_agg(t::text, '|' ORDER BY block, tx_index)) FROM g.eth_tx t
         WHERE block IN (17173049, 17173050))
     = (SELECT md5(string_agg(t::text, '|' ORDER BY block, tx_index)) FROM r.eth_tx t
         WHERE block IN (17173049, 17173050)) AS receipts_equal,
       (SELECT count(*) FROM r.eth_tx WHERE block BETWEEN 500000 AND 501000) AS txs;
SELECT (SELECT md5(string_agg(t::text, '|' ORDER BY block, log_index)) FROM g.eth_token_transfer t
         WHERE block BETWEEN 17173049 AND 17173050)
     = (SELECT md5(string_agg(t::text, '|' ORDER BY block, log_index)) FROM r.eth_token_transfer t
         WHERE block BETWEEN 17173049 AND 17173050) AS transfers_equal,
       (SELECT count(*) FROM r.eth_token_transfer WHERE block BETWEEN 17173049 AND 17173050) AS transfers;
SELECT (SELECT md5(string_agg(a::text, '|' ORDER BY address)) FROM g.eth_account a
         WHERE address = ANY(ARRAY(SELECT DISTINCT token FROM g.eth_token_transfer
                                   WHERE block BETWEEN 17173049 AND 17173050)))
     = (SELECT md5(string_agg(a::text, '|' ORDER BY address)) FROM r.eth_account a
         WHERE address = ANY(ARRAY(SELECT DISTINCT token FROM g.eth_token_transfer
                                   WHERE block BETWEEN 17173049 AND 17173050))) AS accounts_equal;
SELECT count(*), sum(value) FROM r.eth_tx
WHERE hash = '0x779a37efdadd72b239fe245b538eb83fc98aea2bb7ffdce52d38a50af621977c';
-- the newest blocks, read from the head down
SELECT number, hash FROM r.eth_block ORDER BY number DESC LIMIT 2;
-- the node's chain id over either API (nodeinfo.c); a server that is none
SELECT ethwhale.node_chain_id('r') AS rpc_chain_id, ethwhale.node_chain_id('g') AS graphql_chain_id;
SELECT ethwhale.node_chain_id('no_such_server');

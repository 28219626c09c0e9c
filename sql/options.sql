--
-- options: creating the extension, servers, user mappings and foreign
-- tables; every option is checked when it is set.
--
CREATE EXTENSION ethwhale_fdw;
-- (the catalog, not \dx, whose columns change with psql's version)
SELECT e.extname, e.extversion, n.nspname, obj_description(e.oid, 'pg_extension')
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'ethwhale_fdw';
\getenv csv_endpoint EW_CSV_ENDPOINT

-- a working server, user mapping and schema import
CREATE SERVER geth FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint :'csv_endpoint', timeout_ms '20000', connect_timeout_ms '2000',
           max_retries '2', batch_blocks '100', concurrency '1',
           max_response_mb '64', confirmations '12');
CREATE USER MAPPING FOR CURRENT_USER SERVER geth;
CREATE SCHEMA eth;
IMPORT FOREIGN SCHEMA ethereum FROM SERVER geth INTO eth;
SELECT c.relname, ft.ftoptions
FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid
WHERE c.relnamespace = 'eth'::regnamespace ORDER BY 1;
\d eth.eth_block

-- LIMIT TO / EXCEPT, and a remote schema that does not exist
CREATE SCHEMA only_blocks;
IMPORT FOREIGN SCHEMA ethereum LIMIT TO (eth_block) FROM SERVER geth INTO only_blocks;
CREATE SCHEMA no_blocks;
IMPORT FOREIGN SCHEMA ethereum EXCEPT (eth_block) FROM SERVER geth INTO no_blocks;
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('only_blocks', 'no_blocks') ORDER BY 1, 2;
IMPORT FOREIGN SCHEMA public FROM SERVER geth INTO no_blocks;

-- bad server options
CREATE SERVER bad1 FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint 'ftp://x');
CREATE SERVER bad2 FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint 'not a url');
CREATE SERVER bad3 FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint 'http://127.0.0.1:8545/graphql', timeout_ms '-1');
CREATE SERVER bad4 FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint 'http://127.0.0.1:8545/graphql', timeout_ms 'soon');
CREATE SERVER bad5 FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint 'http://127.0.0.1:8545/graphql', batch_blok '10');
CREATE SERVER bad6 FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint 'http://127.0.0.1:8545/graphql', colour 'blue');
CREATE SERVER bad7 FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (timeout_ms '1000');
CREATE SERVER bad8 FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint 'http://127.0.0.1:8545/graphql', concurrency '0');
CREATE SERVER bad9 FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint 'http://127.0.0.1:8545/graphql', max_retries '101');
CREATE SERVER bad10 FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint 'http://127.0.0.1:8545/graphql', "table" 'tx');
-- compression: auto (none on loopback, else gzip), gzip or none
CREATE SERVER bad11 FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint 'http://127.0.0.1:8545/graphql', compression 'brotli');
CREATE SERVER comp FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint 'http://127.0.0.1:8545/graphql', compression 'gzip');
ALTER SERVER comp OPTIONS (SET compression 'none');
ALTER SERVER comp OPTIONS (SET compression 'auto');
DROP SERVER comp;
-- ALTER is checked the same way, and the endpoint cannot be dropped
ALTER SERVER geth OPTIONS (SET batch_blocks '0');
ALTER SERVER geth OPTIONS (DROP endpoint);
ALTER SERVER geth OPTIONS (SET batch_blocks '50');
SELECT option_name, option_value FROM pg_foreign_server, pg_options_to_table(srvoptions)
WHERE srvname = 'geth' AND option_name <> 'endpoint' ORDER BY 1;

-- user mapping options: credentials only
CREATE USER MAPPING FOR PUBLIC SERVER geth OPTIONS (endpoint 'http://x');
CREATE USER MAPPING FOR PUBLIC SERVER geth OPTIONS (headers 'no colon here');
CREATE USER MAPPING FOR PUBLIC SERVER geth OPTIONS (bearer_token '');
-- a CR would start a header line of its own; so would a control character
CREATE USER MAPPING FOR PUBLIC SERVER geth OPTIONS (bearer_token E'abc\r\nHost: evil');
CREATE USER MAPPING FOR PUBLIC SERVER geth OPTIONS (bearer_token E'abc\tdef');
CREATE USER MAPPING FOR PUBLIC SERVER geth OPTIONS (headers E'X-Api-Key: abc\rHost: evil');
-- the error names the line at fault
CREATE USER MAPPING FOR PUBLIC SERVER geth OPTIONS (headers E'X-Api-Key: abc\n\nX Bad: 1');
-- headers that frame or route the request are the wrapper's, in any case
CREATE USER MAPPING FOR PUBLIC SERVER geth OPTIONS (headers 'Host: internal.example');
CREATE USER MAPPING FOR PUBLIC SERVER geth OPTIONS (headers E'X-Api-Key: abc\ncontent-LENGTH: 0');
CREATE USER MAPPING FOR PUBLIC SERVER geth OPTIONS (headers 'Transfer-Encoding: chunked');
CREATE USER MAPPING FOR PUBLIC SERVER geth OPTIONS (bearer_token 's3cret', headers E'X-Api-Key: abc\nX-Trace: 1');
DROP USER MAPPING FOR PUBLIC SERVER geth;

-- table and column options
CREATE FOREIGN TABLE bad_kind (number bigint) SERVER geth OPTIONS ("table" 'uncles');
CREATE FOREIGN TABLE bad_opt (number bigint) SERVER geth OPTIONS ("table" 'block', endpoint 'http://x');
CREATE FOREIGN TABLE my_blocks (
    n bigint OPTIONS (field 'number'),
    block_hash text OPTIONS (field 'hash'),
    used numeric OPTIONS (field 'gasUsed')
) SERVER geth OPTIONS ("table" 'block', batch_blocks '10');
SELECT n, block_hash, used FROM my_blocks WHERE n BETWEEN 500002 AND 500004 ORDER BY n;
CREATE FOREIGN TABLE bad_col (number bigint, colour text) SERVER geth OPTIONS ("table" 'block');
SELECT number FROM bad_col WHERE number = 500000;
CREATE FOREIGN TABLE bad_field (number bigint OPTIONS (field '')) SERVER geth OPTIONS ("table" 'block');

-- a foreign table must say which kind of rows it holds
CREATE FOREIGN TABLE no_kind (number bigint) SERVER geth;
SELECT * FROM no_kind WHERE number = 1;
DROP FOREIGN TABLE no_kind;

-- a server without a user mapping still works (the mapping is optional)
CREATE SERVER geth2 FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint :'csv_endpoint');
CREATE FOREIGN TABLE b2 (number bigint, hash text) SERVER geth2 OPTIONS ("table" 'block');
SELECT number FROM b2 WHERE number = 500000;

SET client_min_messages = warning;
DROP SCHEMA eth, only_blocks, no_blocks CASCADE;
DROP SERVER geth, geth2 CASCADE;
DROP EXTENSION ethwhale_fdw;

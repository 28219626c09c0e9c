--
-- security: only superusers choose the URL the database server fetches;
-- credentials live in user mappings and show nowhere else.
--
CREATE EXTENSION ethwhale_fdw;
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_ew_owner;
DROP ROLE IF EXISTS regress_ew_other;
RESET client_min_messages;
CREATE ROLE regress_ew_owner;
CREATE ROLE regress_ew_other;

-- PostgreSQL's own rule first: CREATE SERVER needs USAGE on the wrapper
SET ROLE regress_ew_owner;
CREATE SERVER s_denied FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint 'http://127.0.0.1:1/graphql');
RESET ROLE;

-- with USAGE on the wrapper, a non-superuser still cannot pick an endpoint
GRANT USAGE ON FOREIGN DATA WRAPPER ethwhale_fdw TO regress_ew_owner;
SET ROLE regress_ew_owner;
CREATE SERVER s_ssrf FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint 'http://169.254.169.254/latest/meta-data/');
RESET ROLE;

-- a superuser sets the server up and hands it over
CREATE SERVER s_sec FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint 'http://127.0.0.1:1/graphql', max_retries '0', timeout_ms '1000');
ALTER SERVER s_sec OWNER TO regress_ew_owner;

SET ROLE regress_ew_owner;
-- the owner may tune the other options; the endpoint stays as it is
ALTER SERVER s_sec OPTIONS (SET timeout_ms '2000');
-- but may not change the endpoint, nor drop it and add another
ALTER SERVER s_sec OPTIONS (SET endpoint 'http://10.0.0.1:8545/graphql');
ALTER SERVER s_sec OPTIONS (DROP endpoint, ADD endpoint 'http://10.0.0.1:8545/graphql');
-- an endpoint the role can already use through a server is no new reach
CREATE SERVER s_copy FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint 'http://127.0.0.1:1/graphql');
RESET ROLE;
-- a role with neither ownership nor USAGE on s_sec may not copy its endpoint
GRANT USAGE ON FOREIGN DATA WRAPPER ethwhale_fdw TO regress_ew_other;
SET ROLE regress_ew_other;
CREATE SERVER s_copy2 FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint 'http://127.0.0.1:1/graphql');
RESET ROLE;
REVOKE USAGE ON FOREIGN DATA WRAPPER ethwhale_fdw FROM regress_ew_other;

-- a superuser may change the endpoint
ALTER SERVER s_sec OPTIONS (SET endpoint 'http://127.0.0.1:2/graphql');
ALTER SERVER s_sec OPTIONS (SET endpoint 'http://127.0.0.1:1/graphql');
SELECT srvname, pg_get_userbyid(srvowner) AS owner, srvoptions
FROM pg_foreign_server WHERE srvname LIKE 's\_%' ORDER BY 1;

-- server options are readable by every role: no credentials in the URL
CREATE SERVER s_userinfo FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint 'http://alice:pa55word@127.0.0.1:8545/graphql');
CREATE SERVER s_userinfo FOREIGN DATA WRAPPER ethwhale_fdw
  OPTIONS (endpoint 'https://alice@127.0.0.1:8545/graphql');

-- credentials in user mappings: each role sees only its own
GRANT USAGE ON FOREIGN SERVER s_sec TO regress_ew_other;
CREATE USER MAPPING FOR regress_ew_other SERVER s_sec
  OPTIONS (bearer_token 'tok-other-SECRET', headers 'X-Api-Key: key-other-SECRET');
CREATE USER MAPPING FOR regress_ew_owner SERVER s_sec
  OPTIONS (bearer_token 'tok-owner-SECRET');
SET ROLE regress_ew_other;
SELECT usename, srvname, umoptions FROM pg_user_mappings
WHERE srvname = 's_sec' ORDER BY 1;
\deu+
\des+ s_sec
SELECT umoptions FROM pg_user_mapping;
RESET ROLE;
SET ROLE regress_ew_owner;
-- the server's owner does not see another role's mapping options either
SELECT usename, srvname, umoptions FROM pg_user_mappings
WHERE srvname = 's_sec' ORDER BY 1;
\deu+
RESET ROLE;

-- EXPLAIN and errors of the role whose mapping holds the token
CREATE SCHEMA sec;
IMPORT FOREIGN SCHEMA ethereum LIMIT TO (eth_tx) FROM SERVER s_sec INTO sec;
GRANT USAGE ON SCHEMA sec TO regress_ew_other;
GRANT SELECT ON sec.eth_tx TO regress_ew_other;
SET ROLE regress_ew_other;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT hash, value FROM sec.eth_tx WHERE block BETWEEN 10 AND 11;
-- (terse: the detail of a refused connection has timings)
\set VERBOSITY terse
SELECT count(*) FROM sec.eth_tx WHERE block BETWEEN 10 AND 11;
\set VERBOSITY default
RESET ROLE;

SET client_min_messages = warning;
DROP SCHEMA sec CASCADE;
DROP OWNED BY regress_ew_owner, regress_ew_other CASCADE;
DROP SERVER IF EXISTS s_sec, s_copy CASCADE;
DROP ROLE regress_ew_owner;
DROP ROLE regress_ew_other;
RESET client_min_messages;
DROP EXTENSION ethwhale_fdw;

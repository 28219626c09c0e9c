/* ethwhale_fdw--0.2--0.3.sql: ALTER EXTENSION ethwhale_fdw UPDATE TO '0.3' */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION ethwhale_fdw UPDATE TO '0.3'" to load this file. \quit

-- What 0.3 adds (issue 17; test/integration/test_upgrade.py checks that an
-- updated 0.2, and 0.1 updated through it, have the same objects,
-- definitions and seed rows as a fresh 0.3):
--   - (nothing yet: 0.3 is 0.2)

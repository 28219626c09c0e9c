
-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION ethwhale_fdw" to load this file. \quit

-- Every function and procedure below that runs SQL has
-- SET search_path = pg_catalog, pg_temp and names the extension's objects
-- schema-qualified (ethwhale.x), so no object of the caller's search_path
-- can stand in for a built-in one (PostgreSQL documentation, "Security
-- Considerations for Extension Scripts").  pg_temp is named last so that a
-- temporary object cannot shadow anything either.

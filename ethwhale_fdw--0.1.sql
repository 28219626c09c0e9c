/* ethwhale_fdw--0.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION ethwhale_fdw" to load this file. \quit

CREATE FUNCTION ethwhale_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION ethwhale_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER ethwhale_fdw
  HANDLER ethwhale_fdw_handler
  VALIDATOR ethwhale_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER ethwhale_fdw
  IS 'Ethereum blocks and transactions from a node''s GraphQL endpoint (EIP-1767)';

-- Everything else of the extension lives in its own schema.
CREATE SCHEMA ethwhale;

-- Daily ETH/USD prices: value_usd = value_eth * price of the block's UTC day.
CREATE TABLE ethwhale.eth_usd (
    day   date PRIMARY KEY,
    price numeric NOT NULL CHECK (price >= 0)
);
COMMENT ON TABLE ethwhale.eth_usd IS 'daily ETH/USD close; read once per scan by eth_tx.value_usd';

-- ethwhale.load_prices(path): load a "day,price" CSV (a header line is
-- expected) into ethwhale.eth_usd, replacing the days it contains.  Returns
-- the number of days loaded.  Reads a file on the database server, so it is
-- for superusers and roles granted pg_read_server_files.
CREATE FUNCTION ethwhale.load_prices(path text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    n bigint;
BEGIN
    CREATE TEMP TABLE ethwhale_prices_in (day text, price text) ON COMMIT DROP;
    EXECUTE format('COPY ethwhale_prices_in FROM %L WITH (FORMAT csv, HEADER true)', path);
    INSERT INTO ethwhale.eth_usd AS p (day, price)
    SELECT day::date, price::numeric
    FROM ethwhale_prices_in
    WHERE coalesce(price, '') <> ''
    ON CONFLICT (day) DO UPDATE SET price = excluded.price;
    GET DIAGNOSTICS n = ROW_COUNT;
    DROP TABLE ethwhale_prices_in;
    RETURN n;
END
$$;

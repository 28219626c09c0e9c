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

-- Priced ERC-20 tokens: amount_usd = amount / 10^decimals * usd_peg, or,
-- when usd_peg is NULL, * the ETH/USD price of the block's UTC day (tokens
-- that track ETH, such as WETH).  Tokens not listed get a NULL amount_usd.
CREATE TABLE ethwhale.token (
    address  text PRIMARY KEY CHECK (address ~ '^0x[0-9a-f]{40}$'),
    symbol   text,
    decimals int NOT NULL CHECK (decimals BETWEEN 0 AND 77),
    usd_peg  numeric CHECK (usd_peg >= 0)
);
COMMENT ON TABLE ethwhale.token IS 'priced ERC-20 tokens; read once per scan by eth_token_transfer.amount_usd';
COMMENT ON COLUMN ethwhale.token.usd_peg IS 'USD price of one token; NULL = priced as ETH (e.g. WETH)';

-- The main mainnet stablecoins and WETH.
INSERT INTO ethwhale.token (address, symbol, decimals, usd_peg) VALUES
    ('0xdac17f958d2ee523a2206206994597c13d831ec7', 'USDT', 6, 1),
    ('0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48', 'USDC', 6, 1),
    ('0x6b175474e89094c44da98b954eedeac495271d0f', 'DAI', 18, 1),
    ('0x4fabb145d64652a948d72533023f6e7a623c7c53', 'BUSD', 18, 1),
    ('0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2', 'WETH', 18, NULL);

-- pg_dump keeps what users load into these tables.
SELECT pg_catalog.pg_extension_config_dump('ethwhale.eth_usd', '');
SELECT pg_catalog.pg_extension_config_dump('ethwhale.token', '');

-- ethwhale.load_tokens(path): load an "address,symbol,decimals,usd_peg" CSV
-- (header line expected; empty usd_peg = priced as ETH) into ethwhale.token,
-- replacing the tokens it contains.  Returns the number of tokens loaded.
CREATE FUNCTION ethwhale.load_tokens(path text)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    n bigint;
BEGIN
    CREATE TEMP TABLE ethwhale_tokens_in (address text, symbol text, decimals text, usd_peg text)
        ON COMMIT DROP;
    EXECUTE format('COPY ethwhale_tokens_in FROM %L WITH (FORMAT csv, HEADER true)', path);
    INSERT INTO ethwhale.token AS t (address, symbol, decimals, usd_peg)
    SELECT lower(address), nullif(symbol, ''), decimals::int, nullif(usd_peg, '')::numeric
    FROM ethwhale_tokens_in
    ON CONFLICT (address) DO UPDATE
        SET symbol = excluded.symbol, decimals = excluded.decimals, usd_peg = excluded.usd_peg;
    GET DIAGNOSTICS n = ROW_COUNT;
    DROP TABLE ethwhale_tokens_in;
    RETURN n;
END
$$;

-- ---------------------------------------------------------------- prices and tokens

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
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ethwhale.load_csv(path, ARRAY['day', 'price'], $sql$
        INSERT INTO ethwhale.eth_usd AS p (day, price)
        SELECT day::date, price::numeric
        FROM pg_temp.ethwhale_csv_in
        WHERE coalesce(price, '') <> ''
        ON CONFLICT (day) DO UPDATE SET price = excluded.price
    $sql$)
$$;

-- Priced ERC-20 tokens: amount_usd = amount / 10^decimals * usd_peg, or,
-- when usd_peg is NULL, * the ETH/USD price of the block's UTC day (tokens
-- that track ETH, such as WETH).  Tokens not listed get a NULL amount_usd.
-- builtin: seeded by the extension (see ethwhale.builtin_removed).
CREATE TABLE ethwhale.token (
    address  text PRIMARY KEY CHECK (address ~ '^0x[0-9a-f]{40}$'),
    symbol   text,
    decimals int NOT NULL CHECK (decimals BETWEEN 0 AND 77),
    usd_peg  numeric CHECK (usd_peg >= 0),
    builtin  boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE ethwhale.token IS 'priced ERC-20 tokens; read once per scan by eth_token_transfer.amount_usd';
COMMENT ON COLUMN ethwhale.token.usd_peg IS 'USD price of one token; NULL = priced as ETH (e.g. WETH)';
COMMENT ON COLUMN ethwhale.token.builtin IS 'seeded by the extension and unchanged; pg_dump keeps the other rows';

-- The main mainnet stablecoins and WETH.
INSERT INTO ethwhale.token (address, symbol, decimals, usd_peg, builtin) VALUES
    ('0xdac17f958d2ee523a2206206994597c13d831ec7', 'USDT', 6, 1, true),
    ('0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48', 'USDC', 6, 1, true),
    ('0x6b175474e89094c44da98b954eedeac495271d0f', 'DAI', 18, 1, true),
    ('0x4fabb145d64652a948d72533023f6e7a623c7c53', 'BUSD', 18, 1, true),
    ('0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2', 'WETH', 18, NULL, true);
CREATE TRIGGER token_builtin_before BEFORE INSERT OR UPDATE ON ethwhale.token
    FOR EACH ROW EXECUTE FUNCTION ethwhale.builtin_row_before();
CREATE TRIGGER token_builtin_after AFTER UPDATE OR DELETE ON ethwhale.token
    FOR EACH ROW EXECUTE FUNCTION ethwhale.builtin_row_after();
CREATE TRIGGER token_builtin_truncate BEFORE TRUNCATE ON ethwhale.token
    FOR EACH STATEMENT EXECUTE FUNCTION ethwhale.builtin_row_after();

-- pg_dump keeps what users load into these tables (not the builtin rows,
-- which CREATE EXTENSION makes).
SELECT pg_catalog.pg_extension_config_dump('ethwhale.eth_usd', '');
SELECT pg_catalog.pg_extension_config_dump('ethwhale.token', 'WHERE NOT builtin');

-- ethwhale.load_tokens(path): load an "address,symbol,decimals,usd_peg" CSV
-- (header line expected; empty usd_peg = priced as ETH) into ethwhale.token,
-- replacing the tokens it contains.  Returns the number of tokens loaded.
CREATE FUNCTION ethwhale.load_tokens(path text)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ethwhale.load_csv(path, ARRAY['address', 'symbol', 'decimals', 'usd_peg'], $sql$
        INSERT INTO ethwhale.token AS t (address, symbol, decimals, usd_peg)
        SELECT lower(address), nullif(symbol, ''), decimals::int, nullif(usd_peg, '')::numeric
        FROM pg_temp.ethwhale_csv_in
        ON CONFLICT (address) DO UPDATE
            SET symbol = excluded.symbol, decimals = excluded.decimals, usd_peg = excluded.usd_peg
    $sql$)
$$;

-- ---------------------------------------------------------------- labels

CREATE TABLE ethwhale.address_label (
    address  text PRIMARY KEY CHECK (address = lower(address)),
    label    text,
    category text
);
COMMENT ON TABLE ethwhale.address_label IS 'address labels (exchanges, bridges, contracts, ...), see ethwhale.load_labels()';
SELECT pg_catalog.pg_extension_config_dump('ethwhale.address_label', '');

-- Label categories whose addresses are services, not whales: they are kept
-- in ethwhale.whale_candidates with excluded_reason set.  Edit freely: the
-- builtin rows are the extension's (see ethwhale.builtin_removed); pg_dump
-- keeps your rows and which builtin ones you deleted.
CREATE TABLE ethwhale.excluded_category (
    category text PRIMARY KEY,
    builtin  boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE ethwhale.excluded_category IS 'label categories left out of the whale ranking; edit freely';
INSERT INTO ethwhale.excluded_category (category, builtin) VALUES
    ('exchange', true), ('bridge', true), ('bridged-token', true), ('token-contract', true),
    ('old-contract', true), ('dex', true), ('mining', true), ('contract', true);
-- Etherscan files many exchange wallets under the exchange's name as the
-- category (labels.csv: 'binance', 'huobi', 'bittrex', ...), or as hot and
-- cold wallets: they are exchanges too.
INSERT INTO ethwhale.excluded_category (category, builtin) VALUES
    ('binance', true), ('bitfinex', true), ('bithumb', true), ('bitstamp', true),
    ('bittrex', true), ('bybit', true), ('coinbase', true), ('coinone', true),
    ('crypto-com', true), ('ftx', true), ('gate-io', true), ('gemini', true),
    ('huobi', true), ('kraken', true), ('kucoin', true), ('okex', true),
    ('okx', true), ('poloniex', true), ('upbit', true), ('hot-wallet', true),
    ('cold-wallet', true);
CREATE TRIGGER excluded_category_builtin_before BEFORE INSERT OR UPDATE ON ethwhale.excluded_category
    FOR EACH ROW EXECUTE FUNCTION ethwhale.builtin_row_before();
CREATE TRIGGER excluded_category_builtin_after AFTER UPDATE OR DELETE ON ethwhale.excluded_category
    FOR EACH ROW EXECUTE FUNCTION ethwhale.builtin_row_after();
CREATE TRIGGER excluded_category_builtin_truncate BEFORE TRUNCATE ON ethwhale.excluded_category
    FOR EACH STATEMENT EXECUTE FUNCTION ethwhale.builtin_row_after();
SELECT pg_catalog.pg_extension_config_dump('ethwhale.excluded_category', 'WHERE NOT builtin');

-- ethwhale.load_labels(path): load an "address,label,category" CSV (with a
-- header line) into ethwhale.address_label, replacing the addresses it
-- contains; addresses are lowercased.  Returns the number of labels loaded.
-- Reads a file on the database server (superusers, pg_read_server_files).
CREATE FUNCTION ethwhale.load_labels(path text)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ethwhale.load_csv(path, ARRAY['address', 'label', 'category'], $sql$
        INSERT INTO ethwhale.address_label AS l (address, label, category)
        SELECT DISTINCT ON (lower(btrim(address))) lower(btrim(address)), label, nullif(category, '')
        FROM pg_temp.ethwhale_csv_in
        WHERE lower(btrim(address)) ~ '^0x[0-9a-f]{40}$'
        ORDER BY lower(btrim(address))
        ON CONFLICT (address) DO UPDATE SET label = excluded.label, category = excluded.category
    $sql$)
$$;

-- ethwhale_fdw--0.6.sql: the install script of release 0.6 as make built it from sql_parts/ (frozen: later
-- versions change sql_parts/ and ship ethwhale_fdw--0.6--0.7.sql; see README "The extension's SQL").

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION ethwhale_fdw" to load this file. \quit

-- Every function and procedure below that runs SQL has
-- SET search_path = pg_catalog, pg_temp and names the extension's objects
-- schema-qualified (ethwhale.x), so no object of the caller's search_path
-- can stand in for a built-in one (PostgreSQL documentation, "Security
-- Considerations for Extension Scripts").  pg_temp is named last so that a
-- temporary object cannot shadow anything either.
-- ---------------------------------------------------------------- the wrapper

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

-- ---------------------------------------------------------------- node info

-- ethwhale.node_chain_id(server): the chain id (EIP-155) of the node of the
-- ethwhale_fdw server SERVER, asked over the server's API (GraphQL
-- { chainID }, JSON-RPC eth_chainId) with its options, retries and errors,
-- as a scan asks; the caller needs USAGE on the server (nodeinfo.c).
CREATE FUNCTION ethwhale.node_chain_id(server name)
RETURNS bigint
AS 'MODULE_PATHNAME', 'ethwhale_node_chain_id'
LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;

COMMENT ON FUNCTION ethwhale.node_chain_id(name)
  IS 'chain id of the server''s node (GraphQL chainID or JSON-RPC eth_chainId)';
-- ---------------------------------------------------------------- settings and server options

-- Integer setting NAME (a custom GUC), DEF when unset; must lie in [lo, hi].
CREATE FUNCTION ethwhale.int_setting(name text, def bigint, lo bigint, hi bigint)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    raw text := nullif(current_setting(name, true), '');
    v bigint;
BEGIN
    IF raw IS NULL THEN
        RETURN def;
    END IF;
    BEGIN
        v := raw::bigint;
    EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
        RAISE EXCEPTION 'invalid value for setting %: "%"', name, raw
            USING ERRCODE = 'invalid_parameter_value', HINT = format('Use an integer from %s to %s.', lo, hi);
    END;
    IF v < lo OR v > hi THEN
        RAISE EXCEPTION 'invalid value for setting %: %', name, v
            USING ERRCODE = 'invalid_parameter_value', HINT = format('Use an integer from %s to %s.', lo, hi);
    END IF;
    RETURN v;
END
$$;

-- The threshold of ethwhale.large_transfers, in USD (setting
-- ethwhale.whale_threshold_usd, default 100000).
CREATE FUNCTION ethwhale.whale_threshold_usd()
RETURNS numeric
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    raw text := nullif(current_setting('ethwhale.whale_threshold_usd', true), '');
    v numeric;
BEGIN
    IF raw IS NULL THEN
        RETURN 100000;
    END IF;
    BEGIN
        v := raw::numeric;
    EXCEPTION WHEN invalid_text_representation THEN
        v := NULL;
    END;
    IF v IS NULL OR v <= 0 OR v = 'NaN' THEN
        RAISE EXCEPTION 'invalid value for setting ethwhale.whale_threshold_usd: "%"', raw
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a positive number of US dollars, e.g. 100000.';
    END IF;
    RETURN v;
END
$$;

-- ethwhale.server_option(server, option): the value of OPTION of the foreign
-- server SERVER as set with CREATE/ALTER SERVER ... OPTIONS, NULL when it is
-- not set (or there is no such server).  The one place SQL reads a server
-- option: the wrapper's validator has checked the value already.
CREATE FUNCTION ethwhale.server_option(server name, option text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT o.option_value
    FROM pg_catalog.pg_foreign_server s,
         pg_catalog.pg_options_to_table(s.srvoptions) o
    WHERE s.srvname = server AND o.option_name = option
$$;
-- ---------------------------------------------------------------- tables users fill

-- ethwhale.load_csv(path, columns, insert_sql): the one CSV loader behind
-- ethwhale.load_prices, load_tokens and load_labels.  Copies the CSV file
-- PATH (a header line expected) into the temporary table
-- pg_temp.ethwhale_csv_in, whose text columns are named COLUMNS, runs
-- INSERT_SQL (an INSERT ... SELECT ... FROM pg_temp.ethwhale_csv_in) and
-- returns the number of rows it inserted or updated.  Reads a file on the
-- database server, so it is for superusers and roles granted
-- pg_read_server_files.
CREATE FUNCTION ethwhale.load_csv(path text, columns text[], insert_sql text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format('CREATE TEMP TABLE ethwhale_csv_in (%s) ON COMMIT DROP',
                   (SELECT string_agg(quote_ident(c) || ' text', ', ' ORDER BY i)
                    FROM unnest(columns) WITH ORDINALITY AS u(c, i)));
    EXECUTE format('COPY pg_temp.ethwhale_csv_in FROM %L WITH (FORMAT csv, HEADER true)', path);
    EXECUTE insert_sql;
    GET DIAGNOSTICS n = ROW_COUNT;
    DROP TABLE pg_temp.ethwhale_csv_in;
    RETURN n;
END
$$;

-- Builtin rows.  ethwhale.token and ethwhale.excluded_category are seeded by
-- the install script (builtin = true) and edited by users.  pg_dump keeps
-- only the user's rows (pg_extension_config_dump(..., 'WHERE NOT builtin')):
-- a database restored from a dump gets the builtin rows from CREATE
-- EXTENSION and the user's rows from the dump, so nothing is lost or
-- doubled.  A user's change to a builtin row makes it the user's:
--   - UPDATE of a builtin row clears its builtin flag (the row is then
--     dumped) and records its key in ethwhale.builtin_removed;
--   - DELETE (or TRUNCATE) of builtin rows records their keys there;
--   - INSERT (or a load_*) of the key of a builtin row replaces that row
--     (recorded there too) instead of failing on the primary key.
-- ethwhale.builtin_removed is dumped as well; restoring a key into it
-- deletes the builtin row of that key again, so the restored database has
-- the same rows as the dumped one whatever order the data is restored in.
-- builtin itself is the extension's: setting it true does not stick.
CREATE TABLE ethwhale.builtin_removed (
    table_name name NOT NULL CHECK (table_name IN ('token', 'excluded_category')),
    key        text NOT NULL,
    PRIMARY KEY (table_name, key)
);
COMMENT ON TABLE ethwhale.builtin_removed IS
    'keys of builtin rows of ethwhale.token / ethwhale.excluded_category that the user changed or deleted';
SELECT pg_catalog.pg_extension_config_dump('ethwhale.builtin_removed', '');

-- The key column of a table with builtin rows.
CREATE FUNCTION ethwhale.builtin_key_column(table_name name)
RETURNS name
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE table_name WHEN 'token' THEN 'address'::name
                           WHEN 'excluded_category' THEN 'category'::name END
$$;

-- BEFORE INSERT on ethwhale.builtin_removed: delete the builtin row of the
-- key (also when restoring a dump), and skip a key recorded already.
CREATE FUNCTION ethwhale.builtin_removed_apply()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('DELETE FROM ethwhale.%I WHERE %I = $1 AND builtin',
                   NEW.table_name, ethwhale.builtin_key_column(NEW.table_name))
        USING NEW.key;
    -- (the DELETE above may have recorded the key through ethwhale.builtin_row_after)
    IF EXISTS (SELECT 1 FROM ethwhale.builtin_removed r
               WHERE r.table_name = NEW.table_name AND r.key = NEW.key) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER builtin_removed_apply BEFORE INSERT ON ethwhale.builtin_removed
    FOR EACH ROW EXECUTE FUNCTION ethwhale.builtin_removed_apply();

-- BEFORE INSERT OR UPDATE FOR EACH ROW on a table with builtin rows: an
-- inserted row replaces the builtin row of its key; an updated builtin row
-- stays builtin only while nothing but the flag is left as it was.
CREATE FUNCTION ethwhale.builtin_row_before()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keycol name := ethwhale.builtin_key_column(TG_TABLE_NAME);
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format('DELETE FROM ethwhale.%I WHERE %I = $1 AND builtin', TG_TABLE_NAME, keycol)
            USING to_jsonb(NEW) ->> keycol;
    ELSE
        NEW.builtin := OLD.builtin AND NEW.builtin
                       AND (to_jsonb(NEW) - 'builtin') = (to_jsonb(OLD) - 'builtin');
    END IF;
    RETURN NEW;
END
$$;

-- AFTER UPDATE OR DELETE FOR EACH ROW, BEFORE TRUNCATE: record the keys of
-- the builtin rows the user changed or deleted in ethwhale.builtin_removed.
CREATE FUNCTION ethwhale.builtin_row_after()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        EXECUTE format('INSERT INTO ethwhale.builtin_removed (table_name, key)
                        SELECT %L, %I FROM ethwhale.%I WHERE builtin',
                       TG_TABLE_NAME, ethwhale.builtin_key_column(TG_TABLE_NAME), TG_TABLE_NAME);
    ELSIF OLD.builtin AND (TG_OP = 'DELETE' OR NOT NEW.builtin) THEN
        INSERT INTO ethwhale.builtin_removed (table_name, key)
        VALUES (TG_TABLE_NAME, to_jsonb(OLD) ->> ethwhale.builtin_key_column(TG_TABLE_NAME));
    END IF;
    RETURN NULL;
END
$$;
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
-- ===========================================================================
-- Sync and whale analytics (issue 5)
--
-- sql_parts/40_chain.sql to 85_report.sql: SQL and PL/pgSQL over the
-- wrapper's foreign tables:
--   ethwhale.blocks, ethwhale.txs, ethwhale.token_transfers   local copy of the chain
--   ethwhale.sync_state, ethwhale.sync_status                  cursor and progress
--   CALL ethwhale.sync(server, from_block, to_block)           copy, batch by batch
--   ethwhale.address_label, ethwhale.load_labels(path)         labels
--   ethwhale.large_transfers (70), whale_candidates (78)       views, refreshed incrementally
--   ethwhale.alert_rule, ethwhale.alerts (75)                  alerts, NOTIFY ethwhale_alert
--   ethwhale.balance_history(), ethwhale.price_correlation()   per-address analytics (76)
--   CALL ethwhale.refresh(), ethwhale.schedule_refresh(cron)   refresh, also via pg_cron
--   ethwhale.report_html(addresses) (85)                       the HTML report
-- See README.md, "Sync and whale analytics", for the design.
-- ===========================================================================

-- ---------------------------------------------------------------- local chain

-- The chains of the servers synced into this database, each keyed by the
-- chain id its node reports (ethwhale.node_chain_id): a chain's blocks are
-- first_block .. next_block-1 of its ethwhale.sync_state row, without gaps.
-- The three tables are partitioned by (chain_id, block range): a partition
-- holds partition_blocks blocks of one chain (setting
-- ethwhale.partition_blocks, default 100000, fixed per chain at its first
-- sync) and is made by ethwhale.ensure_partitions as the sync reaches it, so
-- indexes stay the size of a partition and an old range can be detached or
-- dropped (ethwhale.partitions lists them).  Hashes and
-- addresses stay lowercase '0x...' text: the interface of the foreign tables.
CREATE TABLE ethwhale.blocks (
    number           bigint NOT NULL,
    hash             text NOT NULL,
    parent_hash      text,                  -- NULL for the genesis block
    "timestamp"      timestamptz NOT NULL,
    miner            text,
    gas_used         bigint,
    gas_limit        bigint,
    base_fee_per_gas numeric,
    tx_count         int,
    chain_id         bigint NOT NULL
) PARTITION BY RANGE (chain_id, number);
-- No key or index on the three partitioned tables themselves: each
-- partition gets its own from ethwhale.ensure_partitions (the same key and
-- indexes, per partition).  An index on the parent, created by CREATE
-- EXTENSION, would be copied onto a partition by the ATTACH PARTITION of a
-- pg_dump, whose own ADD CONSTRAINT ... PRIMARY KEY / CREATE INDEX of the
-- partition then fail ("multiple primary keys for table ...").
COMMENT ON TABLE ethwhale.blocks IS 'blocks copied by CALL ethwhale.sync(), partitioned by chain and block range';

CREATE TABLE ethwhale.txs (
    block            bigint NOT NULL,
    tx_index         int NOT NULL,
    hash             text NOT NULL,
    from_address     text NOT NULL,
    to_address       text,
    value            numeric NOT NULL,      -- wei
    gas              bigint,
    gas_price        numeric,
    nonce            bigint,
    input_selector   text,
    status           int,                   -- NULL before Byzantium
    gas_used         bigint,
    created_contract text,
    block_time       timestamptz NOT NULL,
    chain_id         bigint NOT NULL
) PARTITION BY RANGE (chain_id, block);
COMMENT ON TABLE ethwhale.txs IS 'transactions copied by CALL ethwhale.sync(), partitioned by chain and block range';

CREATE TABLE ethwhale.token_transfers (
    block        bigint NOT NULL,
    log_index    int NOT NULL,
    tx_hash      text NOT NULL,
    token        text NOT NULL,
    from_address text NOT NULL,
    to_address   text NOT NULL,
    amount       numeric NOT NULL,          -- raw integer amount
    block_time   timestamptz NOT NULL,
    chain_id     bigint NOT NULL
) PARTITION BY RANGE (chain_id, block);
COMMENT ON TABLE ethwhale.token_transfers IS 'ERC-20 Transfer logs copied by CALL ethwhale.sync(), partitioned by chain and block range';

-- The cursor of each chain: blocks first_block .. next_block-1 are local and
-- last_hash is the hash of next_block-1.  Updated in the same transaction as
-- each batch's rows.  SERVER is the server the chain is synced from (another
-- server of the same chain may take over: a fallback node).  MODE 'whale'
-- keeps only the transfers worth at least MIN_USD (ethwhale.sync_mode).
CREATE TABLE ethwhale.sync_state (
    chain_id         bigint PRIMARY KEY,
    server           name NOT NULL,
    remote_schema    name NOT NULL,
    first_block      bigint,
    next_block       bigint,
    last_hash        text,
    node_head        bigint,
    head_checked_at  timestamptz,
    target_block     bigint,
    run_started_at   timestamptz,
    run_blocks       bigint NOT NULL DEFAULT 0,
    blocks_per_s     numeric,
    last_batch_at    timestamptz,
    last_error       text,
    last_error_at    timestamptz,
    reorgs           bigint NOT NULL DEFAULT 0,
    last_reorg       text,
    partition_blocks bigint NOT NULL CHECK (partition_blocks > 0),
    mode             text NOT NULL DEFAULT 'full' CHECK (mode IN ('full', 'whale')),
    min_usd          numeric CHECK (min_usd >= 0),
    CHECK (mode = 'full' OR min_usd IS NOT NULL)
);
CREATE INDEX sync_state_server_idx ON ethwhale.sync_state (server);
COMMENT ON TABLE ethwhale.sync_state IS 'cursor of CALL ethwhale.sync(), a row per chain; see ethwhale.sync_status';

-- ethwhale.current_chain(): the chain the per-address analytics
-- (balance_history, price_correlation, balance_check, report_html) read:
-- setting ethwhale.chain_id, else the only chain synced (NULL when none);
-- with several chains synced and the setting unset, an error saying how to
-- choose.
CREATE FUNCTION ethwhale.current_chain()
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    raw text := nullif(current_setting('ethwhale.chain_id', true), '');
    chains bigint[];
BEGIN
    IF raw IS NOT NULL THEN
        BEGIN
            RETURN raw::bigint;
        EXCEPTION WHEN invalid_text_representation OR numeric_value_out_of_range THEN
            RAISE EXCEPTION 'invalid value for setting ethwhale.chain_id: "%"', raw
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Use a chain id, e.g. SET ethwhale.chain_id = 1;';
        END;
    END IF;
    SELECT array_agg(s.chain_id ORDER BY s.chain_id) INTO chains FROM ethwhale.sync_state s;
    IF cardinality(chains) > 1 THEN
        RAISE EXCEPTION 'several chains are synced (%): which one?', array_to_string(chains, ', ')
            USING ERRCODE = 'ambiguous_parameter',
                  HINT = format('SET ethwhale.chain_id = %s; (or another of them) before asking for an address.', chains[1]);
    END IF;
    RETURN chains[1];
END
$$;

-- ethwhale.ensure_partitions(chain, a, b): the partitions of blocks, txs and
-- token_transfers that blocks A..B of CHAIN go into, made when missing: each
-- covers [k*size, (k+1)*size) of the chain's partition_blocks SIZE and is
-- named <table>_<chain>_<first block>, e.g. txs_1_0011000000.  Returns how
-- many tables it made.  Serialised by an advisory lock, so two syncs never
-- race to make the same partition.
CREATE FUNCTION ethwhale.ensure_partitions(chain bigint, a bigint, b bigint)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    size bigint := (SELECT s.partition_blocks FROM ethwhale.sync_state s WHERE s.chain_id = chain);
    lo bigint;
    t text;
    part text;
    made int := 0;
BEGIN
    IF size IS NULL THEN
        RAISE EXCEPTION 'ethwhale.ensure_partitions: chain % has no sync_state row', chain
            USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('ethwhale.ensure_partitions'));
    lo := (a / size) * size;
    WHILE lo <= b LOOP
        FOREACH t IN ARRAY ARRAY['blocks', 'txs', 'token_transfers'] LOOP
            part := format('%s_%s_%s', t, replace(chain::text, '-', 'm'), lpad(lo::text, 10, '0'));
            IF to_regclass(format('ethwhale.%I', part)) IS NULL THEN
                EXECUTE format('CREATE TABLE ethwhale.%I PARTITION OF ethwhale.%I
                                FOR VALUES FROM (%s, %s) TO (%s, %s)',
                               part, t, chain, lo, chain, lo + size);
                -- the key and indexes of each table, per partition (see
                -- the note at ethwhale.blocks); txs: equality look-ups of
                -- hashes only (a hash index is a quarter of a btree on 66
                -- characters), and the contracts a synced transaction
                -- created (their first ETH: balance_history)
                EXECUTE format(CASE t
                    WHEN 'blocks' THEN
                        'ALTER TABLE ethwhale.%1$I ADD PRIMARY KEY (chain_id, number);
                         CREATE INDEX ON ethwhale.%1$I (hash)'
                    WHEN 'txs' THEN
                        'ALTER TABLE ethwhale.%1$I ADD PRIMARY KEY (chain_id, block, tx_index);
                         CREATE INDEX ON ethwhale.%1$I USING hash (hash);
                         CREATE INDEX ON ethwhale.%1$I USING brin (block);
                         CREATE INDEX ON ethwhale.%1$I (from_address);
                         CREATE INDEX ON ethwhale.%1$I (to_address);
                         CREATE INDEX ON ethwhale.%1$I (created_contract) WHERE created_contract IS NOT NULL'
                    ELSE
                        'ALTER TABLE ethwhale.%1$I ADD PRIMARY KEY (chain_id, block, log_index);
                         CREATE INDEX ON ethwhale.%1$I USING brin (block);
                         CREATE INDEX ON ethwhale.%1$I (from_address);
                         CREATE INDEX ON ethwhale.%1$I (to_address);
                         CREATE INDEX ON ethwhale.%1$I (token)'
                    END, part);
                EXECUTE format('COMMENT ON TABLE ethwhale.%I IS %L', part,
                               format('ethwhale.%s of chain %s, blocks %s..%s', t, chain, lo, lo + size - 1));
                made := made + 1;
            END IF;
        END LOOP;
        lo := lo + size;
    END LOOP;
    RETURN made;
END
$$;

-- ethwhale.analyze_partitions(chain): ANALYZE the chain's partitions that
-- changed by more than a tenth since their last ANALYZE (or never had one),
-- at the end of a sync run: the refresh that follows plans its queries on
-- their statistics, and autovacuum would come later.  Returns how many.
CREATE FUNCTION ethwhale.analyze_partitions(chain bigint)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p regclass;
    n int := 0;
BEGIN
    FOR p IN SELECT x.partition FROM ethwhale.partitions x
             JOIN pg_stat_user_tables st ON st.relid = x.partition::oid
             JOIN pg_class c ON c.oid = x.partition::oid
             WHERE x.chain_id = chain
               AND (c.reltuples < 0 OR st.n_mod_since_analyze > 0.1 * greatest(c.reltuples, 1000))
             ORDER BY 1 LOOP
        EXECUTE format('ANALYZE %s', p);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- The partitions of the local chain tables: table, chain, block range, rows
-- (the planner's estimate) and bytes with indexes.
CREATE VIEW ethwhale.partitions AS
SELECT parent.relname::text AS table_name, c.oid::regclass AS partition,
       b.m[1]::bigint AS chain_id, b.m[2]::bigint AS first_block, b.m[4]::bigint - 1 AS last_block,
       greatest(c.reltuples, 0)::bigint AS est_rows,
       pg_total_relation_size(c.oid) AS total_bytes
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class parent ON parent.oid = i.inhparent
CROSS JOIN LATERAL (SELECT regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                        $re$FROM \('?(-?\d+)'?, '?(-?\d+)'?\) TO \('?(-?\d+)'?, '?(-?\d+)'?\)$re$) AS m) b
WHERE parent.oid IN ('ethwhale.blocks'::regclass, 'ethwhale.txs'::regclass,
                     'ethwhale.token_transfers'::regclass);
COMMENT ON VIEW ethwhale.partitions IS 'partitions of ethwhale.blocks, txs and token_transfers: chain, block range, size';

-- What eth_account said about addresses that reached the candidate list, per chain.
CREATE TABLE ethwhale.address_info (
    address     text NOT NULL,
    code_size   int,
    is_contract bool,
    checked_at  timestamptz NOT NULL DEFAULT now(),
    chain_id    bigint NOT NULL,
    PRIMARY KEY (chain_id, address)
);
-- pg_dump keeps the cursors and the contract look-ups; the rows of the local
-- chain are in the partitions, which are ordinary tables (not members of the
-- extension) and are dumped with their data.
SELECT pg_catalog.pg_extension_config_dump('ethwhale.sync_state', '');
SELECT pg_catalog.pg_extension_config_dump('ethwhale.address_info', '');
COMMENT ON TABLE ethwhale.address_info IS 'eth_account code size of whale candidates, filled by CALL ethwhale.refresh()';

CREATE VIEW ethwhale.sync_status AS
SELECT s.server,
       s.first_block,
       s.next_block - 1 AS last_synced_block,
       b."timestamp" AS last_synced_block_time,
       s.node_head,
       s.head_checked_at,
       s.node_head - (s.next_block - 1) AS lag_blocks,
       s.blocks_per_s AS rate_blocks_per_s,
       s.run_started_at,
       s.last_batch_at,
       CASE WHEN s.last_error_at IS NOT NULL
             AND s.last_error_at >= coalesce(s.last_batch_at, '-infinity') THEN 'error'
            WHEN s.next_block IS NULL THEN 'empty'
            ELSE 'ok' END AS state,
       s.last_error,
       s.last_error_at,
       s.reorgs,
       s.last_reorg,
       s.chain_id,
       s.mode,
       s.min_usd
FROM ethwhale.sync_state s
LEFT JOIN ethwhale.blocks b ON b.chain_id = s.chain_id AND b.number = s.next_block - 1;
COMMENT ON VIEW ethwhale.sync_status IS 'per chain: last synced block, node head, lag, rate and last error of CALL ethwhale.sync()';
-- ---------------------------------------------------------------- sync

-- ethwhale.remote_schema(server): the schema holding the foreign tables the
-- sync reads for SERVER, created on first use as "ethwhale_<server>" with
-- IMPORT FOREIGN SCHEMA ethereum.  Tables the wrapper learnt later (after an
-- upgrade) are imported into an existing schema too.
CREATE FUNCTION ethwhale.remote_schema(server name)
RETURNS name
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    sch name := left('ethwhale_' || server, 63);
    missing text[];
    want text[] := ARRAY['eth_block', 'eth_tx', 'eth_token_transfer', 'eth_account'];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_foreign_server s
                   JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
                   WHERE s.srvname = server AND w.fdwname = 'ethwhale_fdw') THEN
        RAISE EXCEPTION 'server "%" does not exist or is not an ethwhale_fdw server', server
            USING ERRCODE = 'undefined_object',
                  HINT = 'CREATE SERVER ' || quote_ident(server)
                         || ' FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint ''http://127.0.0.1:8545/graphql'');';
    END IF;
    IF to_regnamespace(quote_ident(sch)) IS NULL THEN
        EXECUTE format('CREATE SCHEMA %I', sch);
        EXECUTE format('COMMENT ON SCHEMA %I IS %L', sch,
                       'foreign tables of server ' || server || ' read by ethwhale.sync()');
    END IF;
    SELECT array_agg(t) INTO missing
    FROM unnest(want) AS t
    WHERE to_regclass(format('%I.%I', sch, t)) IS NULL;
    IF missing IS NOT NULL THEN
        -- LIMIT TO names the wrapper does not serve are silently skipped.
        EXECUTE format('IMPORT FOREIGN SCHEMA ethereum LIMIT TO (%s) FROM SERVER %I INTO %I',
                       (SELECT string_agg(quote_ident(m), ', ') FROM unnest(missing) m),
                       server, sch);
    END IF;
    RETURN sch;
END
$$;

-- ethwhale.sync_find_ancestor(src, chain, tip, first): the highest local
-- block of CHAIN at or below TIP whose hash the node still has, or first-1
-- when none is left.
-- Compares windows of growing size below the tip (8, 64, 512, ... blocks).
CREATE FUNCTION ethwhale.sync_find_ancestor(src name, chain bigint, tip bigint, first bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    width bigint := 8;
    lo bigint;
    anc bigint;
BEGIN
    LOOP
        lo := greatest(first, tip - width + 1);
        EXECUTE format('SELECT max(l.number) FROM ethwhale.blocks l
                        JOIN (SELECT number, hash FROM %I.eth_block WHERE number BETWEEN $1 AND $2) r
                          ON r.number = l.number AND r.hash = l.hash
                        WHERE l.chain_id = $3', src)
            INTO anc USING lo, tip, chain;
        IF anc IS NOT NULL THEN
            RETURN anc;
        END IF;
        IF lo = first THEN
            RETURN first - 1;
        END IF;
        tip := lo - 1;
        width := width * 8;
    END LOOP;
END
$$;

-- ethwhale.sync_prepare(server, from_block, to_block): the checks and set-up
-- of a sync run, before its first batch: the arguments, the chain id the
-- server's node reports (CHAIN: the key of its rows in the local tables),
-- the schema of the server's foreign tables (SRC), whether the wrapper
-- serves token transfers (HAVE_TOKENS), the server's confirmations (CONF),
-- and the chain's cursor row, created when missing (with the partition size
-- of setting ethwhale.partition_blocks).  A chain synced so far through
-- another server is taken over by this one (a second node of the chain).
CREATE FUNCTION ethwhale.sync_prepare(server name, from_block bigint, to_block bigint,
                                      OUT src name, OUT have_tokens bool, OUT conf bigint,
                                      OUT chain bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    other name;
BEGIN
    IF server IS NULL THEN
        RAISE EXCEPTION 'ethwhale.sync: server must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF from_block < 0 OR to_block < 0 OR to_block < from_block THEN
        RAISE EXCEPTION 'ethwhale.sync: invalid block range % .. %', from_block, to_block
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    src := ethwhale.remote_schema(server);
    chain := ethwhale.node_chain_id(server);
    have_tokens := to_regclass(format('%I.eth_token_transfer', src)) IS NOT NULL;
    IF NOT have_tokens THEN
        RAISE NOTICE 'ethwhale.sync(%): this build of the wrapper has no eth_token_transfer; token transfers are not copied', server;
    END IF;
    conf := coalesce(ethwhale.server_option(server, 'confirmations')::bigint, 0);
    SELECT s.server INTO other FROM ethwhale.sync_state s WHERE s.chain_id = chain;
    IF FOUND AND other <> server THEN
        RAISE NOTICE 'ethwhale.sync(%): chain % was synced through server "%" so far; server "%" continues it',
            server, chain, other, server;
    END IF;
    INSERT INTO ethwhale.sync_state AS s (chain_id, server, remote_schema, partition_blocks)
    VALUES (chain, sync_prepare.server, src,
            ethwhale.int_setting('ethwhale.partition_blocks', 100000, 1000, 1000000000))
    ON CONFLICT ON CONSTRAINT sync_state_pkey
    DO UPDATE SET server = excluded.server, remote_schema = excluded.remote_schema;
END
$$;

-- ethwhale.sync_mode(server, mode, min_usd): how the chain of SERVER is
-- copied: 'full' (every block, transaction and token transfer) or 'whale'
-- (every block, but only the ETH transactions whose value_usd is at least
-- MIN_USD, filtered inside the wrapper so smaller rows never form, and the
-- transfers of the priced tokens of ethwhale.token worth at least MIN_USD).
-- Only for a chain with no local blocks yet: a chain copied in one mode
-- cannot hold the other's rows.  Returns the chain id.
CREATE FUNCTION ethwhale.sync_mode(server name, mode text, min_usd numeric DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    chain bigint;
    st ethwhale.sync_state;
BEGIN
    IF mode IS NULL OR mode NOT IN ('full', 'whale') THEN
        RAISE EXCEPTION 'ethwhale.sync_mode: mode must be ''full'' or ''whale'', not %', coalesce(quote_literal(mode), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF mode = 'whale' AND (min_usd IS NULL OR min_usd < 0) THEN
        RAISE EXCEPTION 'ethwhale.sync_mode: the whale mode needs a USD floor (min_usd >= 0)'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'SELECT ethwhale.sync_mode(' || quote_literal(server) || ', ''whale'', 1000000);';
    END IF;
    SELECT p.chain INTO chain FROM ethwhale.sync_prepare(server, NULL, NULL) p;
    SELECT * INTO st FROM ethwhale.sync_state s WHERE s.chain_id = chain FOR UPDATE;
    IF st.next_block IS NOT NULL AND (st.mode, st.min_usd) IS DISTINCT FROM (mode, CASE WHEN mode = 'whale' THEN min_usd END) THEN
        RAISE EXCEPTION 'chain % already holds blocks %..% copied in the % mode', chain, st.first_block, st.next_block - 1,
            st.mode || coalesce(' (min_usd ' || st.min_usd || ')', '')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Empty its local tables first with SELECT ethwhale.reset_sync(%s);', chain);
    END IF;
    UPDATE ethwhale.sync_state s
       SET mode = sync_mode.mode, min_usd = CASE WHEN sync_mode.mode = 'whale' THEN sync_mode.min_usd END
     WHERE s.chain_id = chain;
    RETURN chain;
END
$$;

-- ethwhale.sync_lock_cursor(chain): the cursor row of CHAIN, locked FOR
-- UPDATE until the end of the transaction (concurrent syncs of one chain
-- take turns; syncs of different chains do not wait for each other).
CREATE FUNCTION ethwhale.sync_lock_cursor(chain bigint)
RETURNS ethwhale.sync_state
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM ethwhale.sync_state s WHERE s.chain_id = sync_lock_cursor.chain FOR UPDATE
$$;

-- ethwhale.sync_plan(server, src, from_block, to_block, conf, st, started):
-- the range of a run, planned once at its first batch: the node's HEAD, the
-- TARGET block (head - confirmations, or to_block when lower), the first
-- block to copy (START_BLOCK: the cursor's next block, else from_block, else
-- 0; a from_block that would leave a gap or go below the local chain is an
-- error) and how many blocks that makes (TOTAL).  Records the head, target
-- and run start in the cursor row ST.
CREATE FUNCTION ethwhale.sync_plan(server name, src name, from_block bigint, to_block bigint, conf bigint,
                                   st ethwhale.sync_state, started timestamptz,
                                   OUT head bigint, OUT target bigint, OUT start_block bigint, OUT total bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE format('SELECT number FROM %I.eth_block ORDER BY number DESC LIMIT 1', src) INTO head;
    IF head IS NULL THEN
        RAISE EXCEPTION 'server "%" returned no head block', server;
    END IF;
    target := head - conf;
    IF to_block IS NOT NULL THEN
        target := least(target, to_block);
    END IF;
    IF st.next_block IS NULL THEN
        start_block := coalesce(from_block, 0);
    ELSIF from_block IS NOT NULL AND from_block > st.next_block THEN
        RAISE EXCEPTION 'ethwhale.sync: from_block % would leave a gap after the last synced block %',
            from_block, st.next_block - 1
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Leave from_block NULL to resume, or empty the local tables first with SELECT ethwhale.reset_sync();';
    ELSIF from_block IS NOT NULL AND from_block < st.first_block THEN
        RAISE EXCEPTION 'ethwhale.sync: from_block % is below the first synced block %',
            from_block, st.first_block
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The local chain grows only forward; empty it with SELECT ethwhale.reset_sync(); to start lower.';
    ELSE
        start_block := st.next_block;
    END IF;
    total := greatest(target - start_block + 1, 0);
    UPDATE ethwhale.sync_state s
       SET node_head = head, head_checked_at = clock_timestamp(), target_block = target,
           run_started_at = started, run_blocks = 0
     WHERE s.chain_id = st.chain_id;
END
$$;

-- ethwhale.sync_tip_replaced(src, st): whether the node no longer has the
-- last local block of cursor ST (a fork may replace blocks without moving
-- the head).  False while the local chain has fewer than two blocks.
CREATE FUNCTION ethwhale.sync_tip_replaced(src name, st ethwhale.sync_state)
RETURNS bool
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tip_hash text;
BEGIN
    IF (st.next_block > st.first_block) IS NOT TRUE THEN
        RETURN false;
    END IF;
    EXECUTE format('SELECT hash FROM %I.eth_block WHERE number = $1', src)
        INTO tip_hash USING st.next_block - 1;
    RETURN tip_hash IS DISTINCT FROM st.last_hash;
END
$$;

-- ethwhale.sync_rollback_reorg(server, src, st): the node replaced blocks of
-- the local chain of cursor ST: find the last block both sides agree on,
-- delete the local blocks, transactions and token transfers above it,
-- retract their alerts, forget the balance anchors above it, take the
-- views' rows of those blocks back (ethwhale.views_rollback), move the
-- cursor back and count the reorg.  Returns how many blocks are to be
-- copied again.
CREATE FUNCTION ethwhale.sync_rollback_reorg(server name, src name, st ethwhale.sync_state)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    chain bigint := st.chain_id;
    anc bigint := ethwhale.sync_find_ancestor(src, st.chain_id, st.next_block - 1, st.first_block);
    retracted bigint;
BEGIN
    retracted := ethwhale.alerts_retract(chain, anc, format('reorg: the node replaced blocks %s..%s', anc + 1, st.next_block - 1));
    PERFORM ethwhale.views_rollback(chain, anc);
    DELETE FROM ethwhale.balance_anchor x WHERE x.chain_id = chain AND x.block > anc;
    DELETE FROM ethwhale.token_transfers x WHERE x.chain_id = chain AND x.block > anc;
    DELETE FROM ethwhale.txs x WHERE x.chain_id = chain AND x.block > anc;
    DELETE FROM ethwhale.blocks x WHERE x.chain_id = chain AND x.number > anc;
    UPDATE ethwhale.sync_state s
       SET next_block = anc + 1,
           last_hash = (SELECT x.hash FROM ethwhale.blocks x WHERE x.chain_id = chain AND x.number = anc),
           reorgs = s.reorgs + 1,
           last_reorg = format('%s: blocks %s..%s replaced', clock_timestamp()::timestamptz(0),
                               anc + 1, st.next_block - 1)
     WHERE s.chain_id = chain;
    RAISE NOTICE 'ethwhale.sync(%): reorg: the node replaced blocks %..%; copying them again%',
        server, anc + 1, st.next_block - 1,
        CASE WHEN retracted > 0 THEN format('; %s alert(s) of those blocks retracted', retracted) ELSE '' END;
    RETURN st.next_block - 1 - anc;
END
$$;

-- ethwhale.sync_batch(server, src, st, a, b, have_tokens, run_blocks,
-- started): fetch blocks A..B with their transactions (and token transfers
-- when HAVE_TOKENS) from the foreign tables of SRC into the local tables of
-- the chain of cursor ST, check them, record their alerts
-- (ethwhale.alerts_record), and move the cursor to B+1 in the same
-- transaction.  In the whale mode (ST.mode) only the ETH transactions with
-- value_usd >= ST.min_usd come (the wrapper filters them while decoding)
-- and only the transfers of priced tokens worth as much.
-- RUN_BLOCKS is the run's block count including this batch; returns the
-- run's rate in blocks/s.  The batch must hold every block of the range,
-- continue the local chain (A's parent is ST.last_hash) and be a chain with
-- as many transactions as its blocks' tx_count (full mode); otherwise the
-- node reorganised its chain and SQLSTATE EWRG1 (before A) or EWRG2
-- (during the batch) is raised for ethwhale.sync_run to roll back.
CREATE FUNCTION ethwhale.sync_batch(server name, src name, st ethwhale.sync_state, a bigint, b bigint,
                                    have_tokens bool, run_blocks bigint, started timestamptz)
RETURNS numeric
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    chain bigint := st.chain_id;
    whale bool := st.mode = 'whale';
    n bigint;
    ntx bigint;
    expect_tx bigint;
    rate numeric;
    priced text[];
BEGIN
    EXECUTE format('INSERT INTO ethwhale.blocks
                      (chain_id, number, hash, parent_hash, "timestamp", miner, gas_used, gas_limit,
                       base_fee_per_gas, tx_count)
                    SELECT $3, number, hash, parent_hash, "timestamp", miner, gas_used, gas_limit,
                           base_fee_per_gas, tx_count
                    FROM %I.eth_block WHERE number BETWEEN $1 AND $2', src)
        USING a, b, chain;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> b - a + 1 THEN
        RAISE EXCEPTION 'server "%" returned % of the % blocks %..%', server, n, b - a + 1, a, b
            USING HINT = 'The node is missing blocks in that range (still syncing, or pruned).';
    END IF;
    -- The batch must continue our chain and be a chain.
    IF st.last_hash IS NOT NULL
       AND (SELECT x.parent_hash FROM ethwhale.blocks x WHERE x.chain_id = chain AND x.number = a) <> st.last_hash THEN
        RAISE EXCEPTION USING ERRCODE = 'EWRG1', MESSAGE = 'reorg';
    END IF;
    IF EXISTS (SELECT 1 FROM ethwhale.blocks c JOIN ethwhale.blocks p ON p.chain_id = c.chain_id AND p.number = c.number - 1
               WHERE c.chain_id = chain AND c.number BETWEEN a + 1 AND b AND c.parent_hash <> p.hash) THEN
        RAISE EXCEPTION USING ERRCODE = 'EWRG2', MESSAGE = 'reorg during the batch';
    END IF;
    IF NOT whale THEN
        EXECUTE format('INSERT INTO ethwhale.txs
                          (chain_id, block, tx_index, hash, from_address, to_address, value, gas, gas_price,
                           nonce, input_selector, status, gas_used, created_contract, block_time)
                        SELECT $3, block, tx_index, hash, from_address, to_address, value, gas, gas_price,
                               nonce, input_selector, status, gas_used, created_contract, block_time
                        FROM %I.eth_tx WHERE block BETWEEN $1 AND $2', src)
            USING a, b, chain;
    ELSE
        -- worth at least min_usd at the ETH/USD large_transfers uses (the
        -- day's, or the last one before it: ethwhale.eth_usd_filled).  The
        -- wrapper drops, while decoding, what is below min_usd even at the
        -- highest known price (value_eth < min_usd / max(price)), so small
        -- transactions never form a row; the exact test is the join's.
        EXECUTE format('INSERT INTO ethwhale.txs
                          (chain_id, block, tx_index, hash, from_address, to_address, value, gas, gas_price,
                           nonce, input_selector, status, gas_used, created_contract, block_time)
                        SELECT $3, r.block, r.tx_index, r.hash, r.from_address, r.to_address, r.value, r.gas,
                               r.gas_price, r.nonce, r.input_selector, r.status, r.gas_used, r.created_contract,
                               r.block_time
                        FROM %I.eth_tx r
                        JOIN ethwhale.eth_usd_filled px ON px.day = (r.block_time AT TIME ZONE ''UTC'')::date
                        WHERE r.block BETWEEN $1 AND $2 AND r.value_eth >= $5
                          AND r.value * 1e-18 * px.price >= $4', src)
            USING a, b, chain, st.min_usd,
                  st.min_usd / nullif((SELECT max(p.price) FROM ethwhale.eth_usd p WHERE p.price > 0), 0);
    END IF;
    GET DIAGNOSTICS ntx = ROW_COUNT;
    IF NOT whale THEN
        SELECT coalesce(sum(x.tx_count), 0) INTO expect_tx
        FROM ethwhale.blocks x WHERE x.chain_id = chain AND x.number BETWEEN a AND b;
        IF ntx <> expect_tx THEN
            RAISE EXCEPTION USING ERRCODE = 'EWRG2', MESSAGE = 'reorg during the batch';
        END IF;
    END IF;
    IF have_tokens AND NOT whale THEN
        EXECUTE format('INSERT INTO ethwhale.token_transfers
                          (chain_id, block, log_index, tx_hash, token, from_address, to_address, amount, block_time)
                        SELECT $3, block, log_index, tx_hash, token, from_address, to_address, amount, block_time
                        FROM %I.eth_token_transfer WHERE block BETWEEN $1 AND $2', src)
            USING a, b, chain;
    ELSIF have_tokens THEN
        -- the priced tokens only (their addresses go to the node), priced
        -- as ethwhale.large_transfers prices them
        SELECT array_agg(t.address) INTO priced FROM ethwhale.token t;
        IF priced IS NOT NULL THEN
            EXECUTE format('INSERT INTO ethwhale.token_transfers
                              (chain_id, block, log_index, tx_hash, token, from_address, to_address, amount, block_time)
                            SELECT $3, r.block, r.log_index, r.tx_hash, r.token, r.from_address, r.to_address,
                                   r.amount, r.block_time
                            FROM %I.eth_token_transfer r
                            JOIN ethwhale.token tk ON tk.address = r.token
                            LEFT JOIN ethwhale.eth_usd_filled px ON px.day = (r.block_time AT TIME ZONE ''UTC'')::date
                            WHERE r.block BETWEEN $1 AND $2 AND r.token = ANY ($5)
                              AND r.amount * (''1e-'' || coalesce(tk.decimals, 0))::numeric
                                  * coalesce(tk.usd_peg, px.price) >= $4', src)
                USING a, b, chain, st.min_usd, priced;
        END IF;
    END IF;
    -- the alerts of these blocks commit (or roll back) with them
    PERFORM ethwhale.alerts_record(chain, a, b);
    rate := round(run_blocks / greatest(extract(epoch FROM clock_timestamp() - started), 0.001), 1);
    UPDATE ethwhale.sync_state s
       SET first_block = coalesce(s.first_block, a),
           next_block = b + 1,
           last_hash = (SELECT x.hash FROM ethwhale.blocks x WHERE x.chain_id = chain AND x.number = b),
           run_blocks = sync_batch.run_blocks,
           blocks_per_s = rate,
           last_batch_at = clock_timestamp()
     WHERE s.chain_id = chain;
    RETURN rate;
END
$$;

-- ethwhale.sync_record_error(chain, message, detail): keep the error of a
-- failed batch in the cursor row (sync_status.last_error).
CREATE FUNCTION ethwhale.sync_record_error(chain bigint, message text, detail text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE ethwhale.sync_state s
       SET last_error = message || coalesce(' (' || nullif(detail, '') || ')', ''),
           last_error_at = clock_timestamp()
     WHERE s.chain_id = sync_record_error.chain
$$;

-- ethwhale.sync_run(server, from_block, to_block, may_commit): the body of
-- ethwhale.sync().  MAY_COMMIT says whether the caller runs it outside a
-- transaction block, where it commits after every batch; otherwise it copies
-- one batch and leaves the commit to the caller.
--
-- Every batch runs in a subtransaction that takes the chain's cursor row
-- FOR UPDATE (so concurrent syncs of a chain take turns), checks the chain
-- against the node and inserts the batch's rows; the cursor moves in the
-- same transaction, which is committed right after.  A kill at any point
-- loses at most the batch in flight, which the next run copies again.  The
-- partitions a batch goes into are made first, in a transaction of their
-- own (ethwhale.ensure_partitions), so making one never waits on, or holds
-- up, the batches of another chain.
--
-- A procedure that COMMITs cannot have a SET clause, so sync_run (like
-- sync, refresh_run and refresh) has no SET search_path: it is control flow
-- over the schema-qualified functions above, which have one.
CREATE PROCEDURE ethwhale.sync_run(server name, from_block bigint, to_block bigint, may_commit bool)
LANGUAGE plpgsql
AS $$
DECLARE
    src pg_catalog.name;
    conf bigint;
    chain bigint;
    batch bigint := ethwhale.int_setting('ethwhale.sync_batch_blocks', 1000, 1, 1000000);
    have_tokens bool;
    st ethwhale.sync_state;
    head bigint;
    target bigint;
    a bigint;
    b bigint;
    need_reorg bool := false;
    first_iter bool := true;
    finished bool := false;
    ok bool;
    t0 timestamptz := pg_catalog.clock_timestamp();
    done bigint := 0;
    total bigint;
    rate numeric;
    e_msg pg_catalog.text; e_state pg_catalog.text; e_detail pg_catalog.text; e_hint pg_catalog.text;
BEGIN
    SELECT p.src, p.have_tokens, p.conf, p.chain INTO src, have_tokens, conf, chain
    FROM ethwhale.sync_prepare(server, from_block, to_block) p;
    IF may_commit THEN
        COMMIT;
    END IF;

    LOOP
        ok := true;
        BEGIN
            IF may_commit AND head IS NOT NULL AND NOT need_reorg THEN
                -- the partitions of the next batch, committed before it
                SELECT * INTO st FROM ethwhale.sync_state s WHERE s.chain_id = chain;
                a := coalesce(st.next_block, a);
                IF a <= target THEN
                    PERFORM ethwhale.ensure_partitions(chain, a, least(a + batch - 1, target));
                END IF;
            END IF;
        EXCEPTION
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS e_msg = MESSAGE_TEXT, e_state = RETURNED_SQLSTATE,
                                        e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
                ok := false;
        END;
        IF ok AND may_commit AND head IS NOT NULL THEN
            COMMIT;
        END IF;
        IF ok THEN
        BEGIN
            st := ethwhale.sync_lock_cursor(chain);
            IF need_reorg THEN
                total := total + ethwhale.sync_rollback_reorg(server, src, st);
                need_reorg := false;
            ELSE
                IF head IS NULL THEN
                    SELECT p.head, p.target, p.start_block, p.total INTO head, target, a, total
                    FROM ethwhale.sync_plan(server, src, from_block, to_block, conf, st, t0) p;
                END IF;
                a := coalesce(st.next_block, a);
                IF first_iter THEN
                    need_reorg := ethwhale.sync_tip_replaced(src, st);
                END IF;
                first_iter := false;

                IF NOT need_reorg THEN
                    IF a > target THEN
                        finished := true;
                    ELSE
                        b := least(a + batch - 1, target);
                        -- made in their own transaction above, except for
                        -- the first batch and inside a transaction block
                        PERFORM ethwhale.ensure_partitions(chain, a, b);
                        rate := ethwhale.sync_batch(server, src, st, a, b, have_tokens,
                                                    done + (b - a + 1), t0);
                        done := done + (b - a + 1);
                        finished := b >= target;
                    END IF;
                END IF;
            END IF;
        EXCEPTION
            WHEN SQLSTATE 'EWRG1' OR SQLSTATE 'EWRG2' THEN
                need_reorg := true;
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS e_msg = MESSAGE_TEXT, e_state = RETURNED_SQLSTATE,
                                        e_detail = PG_EXCEPTION_DETAIL, e_hint = PG_EXCEPTION_HINT;
                ok := false;
        END;
        END IF;

        IF NOT ok THEN
            PERFORM ethwhale.sync_record_error(chain, e_msg, e_detail);
            IF may_commit THEN
                COMMIT;
            END IF;
            IF nullif(e_detail, '') IS NOT NULL AND nullif(e_hint, '') IS NOT NULL THEN
                RAISE EXCEPTION USING MESSAGE = e_msg, ERRCODE = e_state, DETAIL = e_detail, HINT = e_hint;
            ELSIF nullif(e_detail, '') IS NOT NULL THEN
                RAISE EXCEPTION USING MESSAGE = e_msg, ERRCODE = e_state, DETAIL = e_detail;
            ELSIF nullif(e_hint, '') IS NOT NULL THEN
                RAISE EXCEPTION USING MESSAGE = e_msg, ERRCODE = e_state, HINT = e_hint;
            ELSE
                RAISE EXCEPTION USING MESSAGE = e_msg, ERRCODE = e_state;
            END IF;
        END IF;
        IF may_commit THEN
            COMMIT;
        ELSIF NOT need_reorg THEN
            IF NOT finished THEN
                RAISE NOTICE 'ethwhale.sync(%): inside a transaction block only one batch is copied (blocks %..%); CALL ethwhale.sync() outside a transaction block to copy the rest batch by batch',
                    server, a, b;
            END IF;
            EXIT;
        END IF;
        IF done > 0 AND b IS NOT NULL AND NOT need_reorg THEN
            RAISE NOTICE 'ethwhale.sync(%): blocks %..% done: % of % blocks, % blocks/s, ETA % s',
                server, a, b, done, total, rate,
                pg_catalog.round((total - done) / greatest(rate, 0.001))::bigint;
        END IF;
        EXIT WHEN finished AND NOT need_reorg;
        b := NULL;
    END LOOP;
    IF may_commit AND done > 0 THEN
        PERFORM ethwhale.analyze_partitions(chain);
        COMMIT;
    END IF;
END
$$;

-- ethwhale.own_transaction(): whether the PL/pgSQL procedure that evaluates
-- it may COMMIT, i.e. it was CALLed outside a transaction block (asked of
-- SPI, exactly as PostgreSQL decides it; see ethwhale_may_commit in
-- ethwhale_fdw.c).  Inside BEGIN ... COMMIT, or from a function, it is false
-- and ethwhale.sync copies a single batch.
CREATE FUNCTION ethwhale.own_transaction()
RETURNS bool
AS 'MODULE_PATHNAME', 'ethwhale_may_commit'
LANGUAGE C VOLATILE;

-- CALL ethwhale.sync(server, from_block, to_block): copy the blocks from the
-- cursor (or from_block, or 0) up to to_block (or head - confirmations) into
-- the local tables, a batch (setting ethwhale.sync_batch_blocks, default
-- 1000 blocks) per transaction.  See ethwhale.sync_run.
CREATE PROCEDURE ethwhale.sync(server name DEFAULT 'geth', from_block bigint DEFAULT NULL,
                               to_block bigint DEFAULT NULL)
LANGUAGE plpgsql
AS $$
BEGIN
    CALL ethwhale.sync_run(server, from_block, to_block, ethwhale.own_transaction());
END
$$;

-- ethwhale.reset_sync([chain]): empty the local chain CHAIN (all chains when
-- NULL): its partitions are dropped, its cursor and contract look-ups
-- deleted and its rows of the views taken out; the alerts in force are
-- retracted (alert_log keeps them) and the balance anchors forgotten.
-- Returns how many chains it emptied.
CREATE FUNCTION ethwhale.reset_sync(chain bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p regclass;
    n bigint;
BEGIN
    PERFORM ethwhale.alerts_retract(chain, NULL, 'ethwhale.reset_sync() emptied the local chain');
    FOR p IN SELECT x.partition FROM ethwhale.partitions x
             WHERE chain IS NULL OR x.chain_id = chain
             ORDER BY x.table_name DESC, x.partition LOOP
        EXECUTE format('DROP TABLE %s', p);
    END LOOP;
    DELETE FROM ethwhale.address_info x WHERE chain IS NULL OR x.chain_id = chain;
    DELETE FROM ethwhale.balance_anchor x WHERE chain IS NULL OR x.chain_id = chain;
    PERFORM ethwhale.views_rollback(x.chain_id, NULL)
    FROM ethwhale.sync_state x WHERE chain IS NULL OR x.chain_id = chain;
    DELETE FROM ethwhale.sync_state x WHERE chain IS NULL OR x.chain_id = chain;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
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
-- ETH/USD of every day from the first known price to today, a missing day
-- taking the last price before it.
CREATE VIEW ethwhale.eth_usd_filled AS
SELECT d::date AS day,
       (SELECT p.price FROM ethwhale.eth_usd p WHERE p.day <= d::date ORDER BY p.day DESC LIMIT 1) AS price
FROM generate_series((SELECT min(day) FROM ethwhale.eth_usd),
                     greatest((SELECT max(day) FROM ethwhale.eth_usd), current_date),
                     interval '1 day') AS d;

-- ---------------------------------------------------------------- incremental views
--
-- ethwhale.large_transfers and ethwhale.whale_candidates are views over
-- tables that CALL ethwhale.refresh() maintains from the blocks synced since
-- the last refresh (ethwhale.view_state.through_block), so a refresh costs
-- in proportion to the new blocks, not to all history:
--   large_transfer_rows   the large transfers of those blocks are added;
--   view_dirty            the addresses whose candidate row the new blocks
--                         (or a reorg) may change;
--   whale_candidate_rows  the rows of those addresses are computed again,
--                         from the counterparties, feeders and daily ETH
--                         change kept per candidate (74_candidate_state).
-- What every row depends on -- prices, tokens, labels, excluded categories
-- (their triggers move ethwhale.view_basis_seq), the threshold and the
-- exchange-like settings, the chain's synced days (the correlation's
-- window) -- is recorded in view_state; when it changed, the refresh
-- rebuilds the chain's rows from scratch.  A reorg takes the rows of the
-- replaced blocks back (ethwhale.views_rollback) in the transaction that
-- deletes them.  None of these tables is dumped: after a restore the first
-- refresh rebuilds them.

CREATE SEQUENCE ethwhale.view_basis_seq;

CREATE FUNCTION ethwhale.view_basis_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM nextval('ethwhale.view_basis_seq');
    RETURN NULL;
END
$$;
CREATE TRIGGER view_basis AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ethwhale.eth_usd
    FOR EACH STATEMENT EXECUTE FUNCTION ethwhale.view_basis_changed();
CREATE TRIGGER view_basis AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ethwhale.token
    FOR EACH STATEMENT EXECUTE FUNCTION ethwhale.view_basis_changed();
CREATE TRIGGER view_basis AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ethwhale.address_label
    FOR EACH STATEMENT EXECUTE FUNCTION ethwhale.view_basis_changed();
CREATE TRIGGER view_basis AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ethwhale.excluded_category
    FOR EACH STATEMENT EXECUTE FUNCTION ethwhale.view_basis_changed();

-- What the views of each chain were last computed from.
CREATE TABLE ethwhale.view_state (
    chain_id             bigint PRIMARY KEY,
    through_block        bigint,          -- the views cover the chain's blocks up to here
    basis                bigint NOT NULL, -- ethwhale.view_basis_seq then
    threshold_usd        numeric NOT NULL,
    min_counterparties   bigint NOT NULL,
    min_sweepers         bigint NOT NULL,
    first_day            date,            -- the chain's synced UTC days then
    last_day             date,
    all_dirty            bool NOT NULL DEFAULT false,
    refreshed_at         timestamptz,
    last_full_at         timestamptz,
    last_new_blocks      bigint,          -- of the last refresh
    last_addresses       bigint,
    last_full            bool,
    -- the chain's txs partitions ('first-last,...') up to through_block then:
    -- one detached or dropped since takes history away, so the candidates'
    -- kept state is drawn again and every row computed again
    kept_partitions      text
);
COMMENT ON TABLE ethwhale.view_state IS 'what ethwhale.large_transfers and whale_candidates of each chain were computed from (CALL ethwhale.refresh())';

CREATE TABLE ethwhale.view_dirty (
    chain_id bigint NOT NULL,
    address  text NOT NULL,
    PRIMARY KEY (chain_id, address)
);
COMMENT ON TABLE ethwhale.view_dirty IS 'addresses whose whale_candidates row the next refresh computes again';

-- Transfers of at least ethwhale.whale_threshold_usd: successful ETH
-- transfers (value × ETH/USD of the block's UTC day) and transfers of the
-- tokens priced in ethwhale.token (amount / 10^decimals × usd_peg, or × ETH/USD
-- when usd_peg is NULL).  log_index is -1 for ETH.  value_usd is rounded to
-- cents (the threshold is compared before rounding).
CREATE TABLE ethwhale.large_transfer_rows (
    chain_id     bigint NOT NULL,
    kind         text NOT NULL,
    block        bigint NOT NULL,
    block_time   timestamptz NOT NULL,
    tx_hash      text NOT NULL,
    log_index    int NOT NULL,
    token        text,
    symbol       text,
    from_address text NOT NULL,
    to_address   text NOT NULL,
    amount       numeric NOT NULL,
    value_usd    numeric NOT NULL,
    PRIMARY KEY (chain_id, tx_hash, log_index)
);
CREATE INDEX large_transfer_rows_block_idx ON ethwhale.large_transfer_rows (chain_id, block);
CREATE INDEX large_transfer_rows_from_idx ON ethwhale.large_transfer_rows (from_address);
CREATE INDEX large_transfer_rows_to_idx ON ethwhale.large_transfer_rows (to_address);
COMMENT ON TABLE ethwhale.large_transfer_rows IS 'the rows of ethwhale.large_transfers, without labels; CALL ethwhale.refresh()';

-- ethwhale.large_transfers_of(chain, lo, hi): the large transfers of the
-- chain's blocks LO..HI, priced now.
CREATE FUNCTION ethwhale.large_transfers_of(chain bigint, lo bigint, hi bigint)
RETURNS SETOF ethwhale.large_transfer_rows
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
WITH px AS (SELECT day, price FROM ethwhale.eth_usd_filled),
moves AS (
    SELECT 'ETH'::text AS kind, t.block, t.block_time, t.hash AS tx_hash, -1 AS log_index,
           NULL::text AS token, 'ETH'::text AS symbol, t.from_address, t.to_address,
           t.value * 1e-18 AS amount, t.value * 1e-18 * px.price AS value_usd
    FROM ethwhale.txs t
    JOIN px ON px.day = (t.block_time AT TIME ZONE 'UTC')::date
    WHERE t.chain_id = chain AND t.block BETWEEN lo AND hi
      AND t.value > 0 AND t.to_address IS NOT NULL AND coalesce(t.status, 1) <> 0
    UNION ALL
    SELECT 'token', tt.block, tt.block_time, tt.tx_hash, tt.log_index,
           tt.token, tk.symbol, tt.from_address, tt.to_address,
           -- exact: 1e-N as a numeric literal has scale N (10::numeric ^ (-18)
           -- rounds to 0 at numeric's 16 significant digits, a division rounds)
           tt.amount * ('1e-' || coalesce(tk.decimals, 0))::numeric,
           tt.amount * ('1e-' || coalesce(tk.decimals, 0))::numeric * coalesce(tk.usd_peg, px.price)
    FROM ethwhale.token_transfers tt
    JOIN ethwhale.token tk ON tk.address = tt.token
    LEFT JOIN px ON px.day = (tt.block_time AT TIME ZONE 'UTC')::date
    WHERE tt.chain_id = chain AND tt.block BETWEEN lo AND hi
)
SELECT chain, m.kind, m.block, m.block_time, m.tx_hash, m.log_index, m.token, m.symbol,
       m.from_address, m.to_address, m.amount, round(m.value_usd, 2)
FROM moves m
-- (a subquery: evaluated once, not for every move; 6.5 s of a 29 s full rebuild)
WHERE m.value_usd >= (SELECT ethwhale.whale_threshold_usd())
$$;

CREATE VIEW ethwhale.large_transfers AS
SELECT m.kind, m.block, m.block_time, m.tx_hash, m.log_index, m.token, m.symbol,
       m.from_address, m.to_address, m.amount, m.value_usd,
       fl.label AS from_label, fl.category AS from_category,
       tl.label AS to_label, tl.category AS to_category,
       m.chain_id
FROM ethwhale.large_transfer_rows m
LEFT JOIN ethwhale.address_label fl ON fl.address = m.from_address
LEFT JOIN ethwhale.address_label tl ON tl.address = m.to_address;
COMMENT ON VIEW ethwhale.large_transfers IS
    'ETH and priced token transfers of at least ethwhale.whale_threshold_usd, per chain; CALL ethwhale.refresh()';

-- ethwhale.views_rollback(chain, above): the chain's blocks above ABOVE are
-- going away (a reorg; NULL: all of them, ethwhale.reset_sync): their large
-- transfers are taken out, the candidates' kept state is rolled back with
-- them (ethwhale.candidates_forget: the candidates they touched lose it,
-- the feeder tests they change are settled again; all of it goes when a
-- partition of txs was taken away since the last refresh), the candidates
-- whose rows change are marked for the next refresh, and the views' cursor
-- moved back.  Called before the blocks' rows are deleted, in the same
-- transaction.
CREATE FUNCTION ethwhale.views_rollback(chain bigint, above bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    through bigint;
    kept text;
BEGIN
    -- first the views' row: a refresh bringing them forward meanwhile would
    -- add rows of the blocks going away after the kept state was forgotten
    SELECT v.through_block, v.kept_partitions INTO through, kept
    FROM ethwhale.view_state v WHERE v.chain_id = chain FOR UPDATE;
    IF above IS NULL THEN
        DELETE FROM ethwhale.large_transfer_rows r WHERE r.chain_id = chain;
        DELETE FROM ethwhale.whale_candidate_rows r WHERE r.chain_id = chain;
        DELETE FROM ethwhale.view_dirty d WHERE d.chain_id = chain;
        DELETE FROM ethwhale.view_state v WHERE v.chain_id = chain;
        PERFORM ethwhale.candidates_drop(chain, NULL);
        RETURN;
    END IF;
    IF through IS NULL OR through <= above THEN
        RETURN;
    END IF;
    IF kept IS DISTINCT FROM ethwhale.partitions_through(chain, through) THEN
        -- a partition taken away since the last refresh: the history the
        -- kept state rests on is gone, and settling tests again on what is
        -- left would be wrong.  The state goes, kept_partitions says none
        -- and the next refresh draws it all again (as it would have).
        PERFORM ethwhale.candidates_drop(chain, NULL);
        kept := NULL;
    ELSE
        PERFORM ethwhale.candidates_forget(chain, above + 1, through);
        -- the kept state covers the partitions up to ABOVE
        kept := ethwhale.partitions_through(chain, above);
    END IF;
    DELETE FROM ethwhale.large_transfer_rows r WHERE r.chain_id = chain AND r.block > above;
    UPDATE ethwhale.view_state v SET through_block = above, kept_partitions = kept
     WHERE v.chain_id = chain;
END
$$;

-- ethwhale.refresh_large_transfers(chain): bring the chain's large
-- transfers up to its last synced block: the blocks after view_state's
-- through_block when the basis is unchanged, else all of them again (and
-- every candidate row with them).  Returns whether it rebuilt everything.
CREATE FUNCTION ethwhale.refresh_large_transfers(chain bigint)
RETURNS bool
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- its statements' estimates are far above jit_above_cost: compiling them took
-- 3 s of a 4.5 s refresh (measured)
SET jit = off
AS $$
DECLARE
    vs ethwhale.view_state;
    upto bigint;
    lo bigint;
    basis bigint := (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ethwhale.view_basis_seq);
    thr numeric := ethwhale.whale_threshold_usd();
    min_cp bigint := ethwhale.int_setting('ethwhale.exchange_min_counterparties', 1000, 1, 1000000000);
    min_sw bigint := ethwhale.int_setting('ethwhale.exchange_min_sweepers', 10, 1, 1000000000);
    d0 date;
    d1 date;
    full_rebuild bool;
    added bigint;
BEGIN
    SELECT (min(b."timestamp") AT TIME ZONE 'UTC')::date, (max(b."timestamp") AT TIME ZONE 'UTC')::date
      INTO d0, d1
    FROM ethwhale.blocks b WHERE b.chain_id = chain;
    SELECT * INTO vs FROM ethwhale.view_state v WHERE v.chain_id = chain FOR UPDATE;
    -- after the lock: a reorg's rollback moves through_block back under it
    upto := (SELECT s.next_block - 1 FROM ethwhale.sync_state s WHERE s.chain_id = chain);
    full_rebuild := vs.chain_id IS NULL OR vs.basis <> basis OR vs.threshold_usd <> thr
                    OR vs.min_counterparties <> min_cp OR vs.min_sweepers <> min_sw;
    -- no record of what the kept state was brought up to, or a partition
    -- taken away under it: it is drawn again, and everything rebuilt
    IF vs.chain_id IS NULL
       OR vs.kept_partitions IS DISTINCT FROM ethwhale.partitions_through(chain, vs.through_block) THEN
        PERFORM ethwhale.candidates_drop(chain, NULL);
        full_rebuild := true;
    END IF;
    IF full_rebuild THEN
        DELETE FROM ethwhale.large_transfer_rows r WHERE r.chain_id = chain;
        DELETE FROM ethwhale.view_dirty d WHERE d.chain_id = chain;
        lo := 0;
    ELSE
        lo := coalesce(vs.through_block + 1, 0);
    END IF;
    IF upto IS NOT NULL AND upto >= lo THEN
        INSERT INTO ethwhale.large_transfer_rows SELECT * FROM ethwhale.large_transfers_of(chain, lo, upto);
        GET DIAGNOSTICS added = ROW_COUNT;
        -- the candidates' query reads this table: plan it on its statistics
        -- (a first refresh planned on an empty table's took 9 times longer)
        IF added > 0.1 * greatest((SELECT c.reltuples FROM pg_class c
                                   WHERE c.oid = 'ethwhale.large_transfer_rows'::regclass), 1000) THEN
            ANALYZE ethwhale.large_transfer_rows;
        END IF;
    END IF;
    -- the candidates' kept state rests on the transactions alone: it comes
    -- forward by the new blocks in a full rebuild too
    IF vs.chain_id IS NOT NULL AND upto >= coalesce(vs.through_block + 1, 0) THEN
        PERFORM ethwhale.views_apply(chain, coalesce(vs.through_block + 1, 0), upto);
    END IF;
    INSERT INTO ethwhale.view_state AS v
        (chain_id, through_block, basis, threshold_usd, min_counterparties, min_sweepers,
         first_day, last_day, all_dirty, last_new_blocks, last_full, kept_partitions)
    VALUES (chain, upto, basis, thr, min_cp, min_sw, d0, d1, true,
            greatest(coalesce(upto - lo + 1, 0), 0), true, ethwhale.partitions_through(chain, upto))
    ON CONFLICT (chain_id) DO UPDATE
       SET through_block = excluded.through_block, basis = excluded.basis,
           threshold_usd = excluded.threshold_usd, min_counterparties = excluded.min_counterparties,
           min_sweepers = excluded.min_sweepers, first_day = excluded.first_day, last_day = excluded.last_day,
           -- the correlation's window is the chain's synced days: when they
           -- change, every row changes
           all_dirty = v.all_dirty OR full_rebuild
                       OR (v.first_day, v.last_day) IS DISTINCT FROM (excluded.first_day, excluded.last_day),
           last_new_blocks = excluded.last_new_blocks, last_full = full_rebuild,
           kept_partitions = excluded.kept_partitions;
    RETURN full_rebuild;
END
$$;
-- ---------------------------------------------------------------- the candidates' kept state
--
-- Beside its large transfers, a candidate's row (ethwhale.whale_candidates)
-- rests on three things drawn from all of its synced transactions: its
-- distinct counterparties, its deposit-like feeders and its ETH change per
-- UTC day.  Drawing them from the history of every candidate that new blocks
-- touch costs as much as a full refresh on a busy chain, where the touched
-- candidates are most of them.  So they are kept per candidate and brought
-- forward by each refresh from the new blocks only (ethwhale.views_apply):
--   candidate_kept   the addresses whose state is kept, complete up to the
--                    chain's view_state.through_block, with the counts of
--                    their counterparties and deposit-like feeders;
--   candidate_edges  each kept address's counterparties, whether one sent
--                    to it, and for one that did the two
--                    tests of a deposit-like feeder: FEEDER_SOLE, it sent to
--                    this address only (and created no contract), and
--                    FEEDER_FED, it received from another address;
--   candidate_daily  each kept address's ETH change per UTC day (sent value
--                    and fees out, received value in, value into the
--                    contract it was created as).
-- New blocks only add transactions, so a feeder test, once failed (it sent
-- elsewhere) or passed (it was fed), stays so: the new blocks settle both.  A
-- reorg takes blocks away: the kept addresses the replaced blocks touch lose
-- their state, and the feeder tests of the senders they touch are settled
-- again (ethwhale.candidates_forget).  A candidate without state (new, or
-- forgotten) draws it from its history at the next refresh
-- (ethwhale.candidates_keep); an address no longer a candidate loses it.
-- The state rests on the synced transactions alone, so a change of prices,
-- labels or settings, which computes every candidate row again, computes it
-- from the kept state.  Not dumped, like the views' tables: after a restore
-- the first refresh draws it again.

CREATE TABLE ethwhale.candidate_kept (
    chain_id       bigint NOT NULL,
    address        text NOT NULL,
    counterparties bigint NOT NULL,  -- its rows in candidate_edges
    sweepers       bigint NOT NULL,  -- of those, the deposit-like feeders
    PRIMARY KEY (chain_id, address)
);
COMMENT ON TABLE ethwhale.candidate_kept IS 'the candidates whose counterparties, feeders and daily ETH change are kept (CALL ethwhale.refresh())';

CREATE TABLE ethwhale.candidate_edges (
    chain_id     bigint NOT NULL,
    address      text NOT NULL,
    counterparty text NOT NULL,
    received     bool NOT NULL,   -- COUNTERPARTY sent to ADDRESS (else only the reverse)
    feeder_sole  bool,            -- when RECEIVED: COUNTERPARTY sent to ADDRESS only
    feeder_fed   bool,            -- when RECEIVED: COUNTERPARTY received from another address
    PRIMARY KEY (chain_id, address, counterparty)
);
-- new blocks settle the feeder tests still open: a new block's sender or
-- recipient finds its open tests without reading its other edges
CREATE INDEX candidate_edges_sole_idx ON ethwhale.candidate_edges (chain_id, counterparty)
    WHERE received AND feeder_sole;
CREATE INDEX candidate_edges_unfed_idx ON ethwhale.candidate_edges (chain_id, counterparty)
    WHERE received AND NOT feeder_fed;
COMMENT ON TABLE ethwhale.candidate_edges IS 'the counterparties of each kept candidate, with the deposit-like feeder tests (CALL ethwhale.refresh())';

CREATE TABLE ethwhale.candidate_daily (
    chain_id bigint NOT NULL,
    address  text NOT NULL,
    day      date NOT NULL,
    wei      numeric NOT NULL,
    PRIMARY KEY (chain_id, address, day)
);
COMMENT ON TABLE ethwhale.candidate_daily IS 'the ETH change per UTC day of each kept candidate, in wei (CALL ethwhale.refresh())';

-- ethwhale.eth_moves(chain, lo, hi, addrs): what the chain's transactions
-- of blocks LO..HI move in ETH for the addresses in the temporary table
-- ADDRS (a table with a column ADDRESS), per address and UTC day: the sender
-- loses the value (when the transaction succeeded) and the fee, the
-- recipient, or the contract the transaction created, gains the value.
CREATE FUNCTION ethwhale.eth_moves(chain bigint, lo bigint, hi bigint, addrs regclass)
RETURNS TABLE (address text, day date, wei numeric)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT x.address, x.day, sum(x.wei)
        FROM (SELECT t.from_address AS address, (t.block_time AT TIME ZONE 'UTC')::date AS day,
                     - CASE WHEN coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
                     - coalesce(t.gas_used * t.gas_price, 0) AS wei
              FROM ethwhale.txs t JOIN %1$s a ON a.address = t.from_address
              WHERE t.chain_id = $1 AND t.block BETWEEN $2 AND $3
              UNION ALL
              SELECT t.to_address, (t.block_time AT TIME ZONE 'UTC')::date,
                     CASE WHEN coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
              FROM ethwhale.txs t JOIN %1$s a ON a.address = t.to_address
              WHERE t.chain_id = $1 AND t.block BETWEEN $2 AND $3
              UNION ALL
              SELECT t.created_contract, (t.block_time AT TIME ZONE 'UTC')::date,
                     CASE WHEN coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
              FROM ethwhale.txs t JOIN %1$s a ON a.address = t.created_contract
              WHERE t.chain_id = $1 AND t.block BETWEEN $2 AND $3 AND t.to_address IS NULL) x
        GROUP BY 1, 2$q$, addrs)
    USING chain, lo, hi;
END
$$;

-- ethwhale.candidate_edges_of(chain, lo, hi, addrs, upto, fresh): the
-- counterparties that the chain's transactions of blocks LO..HI give the
-- addresses in the temporary table ADDRS, with the feeder tests of those
-- that sent to them, over all blocks up to UPTO.  The feeder tests are
-- index probes that stop at the first transaction that settles them: a
-- bitmap scan would read every transaction of the address first (0.45 ms
-- against 4 us a probe, measured).  Unless FRESH (the addresses have no
-- kept edges yet), a pair already kept as received is not probed again: its
-- tests come forward by views_apply's updates, and the row goes unused
-- (half of the pairs of 100 new blocks on the bench chain).
CREATE FUNCTION ethwhale.candidate_edges_of(chain bigint, lo bigint, hi bigint, addrs regclass, upto bigint,
                                             fresh bool)
RETURNS SETOF ethwhale.candidate_edges
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_bitmapscan = off
AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT $1, g.address, g.counterparty, g.received,
               CASE WHEN g.probe THEN
                   NOT EXISTS (SELECT 1 FROM ethwhale.txs o
                               WHERE o.chain_id = $1 AND o.from_address = g.counterparty AND o.block <= $4
                                 AND o.to_address IS DISTINCT FROM g.address) END,
               CASE WHEN g.probe THEN
                   EXISTS (SELECT 1 FROM ethwhale.txs i
                           WHERE i.chain_id = $1 AND i.to_address = g.counterparty AND i.block <= $4
                             AND i.from_address <> g.address) END
        FROM (SELECT x.address, x.counterparty, bool_or(x.received) AS received,
                     bool_or(x.received) AND ($5 OR NOT EXISTS (
                         SELECT 1 FROM ethwhale.candidate_edges k
                         WHERE k.chain_id = $1 AND k.address = x.address AND k.counterparty = x.counterparty
                           AND k.received)) AS probe
              FROM (SELECT t.from_address AS address, t.to_address AS counterparty, false AS received
                    FROM ethwhale.txs t JOIN %1$s a ON a.address = t.from_address
                    WHERE t.chain_id = $1 AND t.block BETWEEN $2 AND $3
                      AND t.to_address IS NOT NULL AND t.to_address <> t.from_address
                    UNION ALL
                    SELECT t.to_address, t.from_address, true
                    FROM ethwhale.txs t JOIN %1$s a ON a.address = t.to_address
                    WHERE t.chain_id = $1 AND t.block BETWEEN $2 AND $3
                      AND t.from_address <> t.to_address) x
              GROUP BY x.address, x.counterparty) g$q$, addrs)
    USING chain, lo, hi, upto, fresh;
END
$$;

-- ethwhale.candidates_keep(chain, addrs, upto): draw the kept state of
-- the chain's candidates ADDRS from their history up to block UPTO (the
-- chain's view_state.through_block).  Returns how many it drew.
CREATE FUNCTION ethwhale.candidates_keep(chain bigint, addrs text[], upto bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS ew_keep (address text PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE ew_keep;
    INSERT INTO ew_keep SELECT DISTINCT a FROM unnest(addrs) a WHERE a IS NOT NULL
    ON CONFLICT DO NOTHING;
    DELETE FROM ew_keep w
     USING ethwhale.candidate_kept k WHERE k.chain_id = chain AND k.address = w.address;
    SELECT count(*) INTO n FROM ew_keep;
    IF n = 0 OR upto IS NULL THEN
        RETURN 0;
    END IF;
    ANALYZE ew_keep;
    INSERT INTO ethwhale.candidate_edges
    SELECT * FROM ethwhale.candidate_edges_of(chain, 0, upto, 'ew_keep', upto, true);
    INSERT INTO ethwhale.candidate_daily (chain_id, address, day, wei)
    SELECT chain, m.address, m.day, m.wei FROM ethwhale.eth_moves(chain, 0, upto, 'ew_keep') m;
    INSERT INTO ethwhale.candidate_kept (chain_id, address, counterparties, sweepers)
    SELECT chain, w.address, count(e.address),
           count(e.address) FILTER (WHERE e.received AND e.feeder_sole AND e.feeder_fed)
    FROM ew_keep w
    LEFT JOIN ethwhale.candidate_edges e ON e.chain_id = chain AND e.address = w.address
    GROUP BY w.address;
    -- the candidates' query reads these tables: plan it on their statistics
    -- (planned on an empty table's, it joins every edge with every candidate)
    IF n > 0.1 * greatest((SELECT c.reltuples FROM pg_class c
                           WHERE c.oid = 'ethwhale.candidate_kept'::regclass), 1000) THEN
        ANALYZE ethwhale.candidate_kept, ethwhale.candidate_edges, ethwhale.candidate_daily;
    END IF;
    RETURN n;
END
$$;

-- ethwhale.addresses_touched(chain, lo, hi, kept_only): fill the temporary
-- table ew_touched with the addresses that the chain's transactions of
-- blocks LO..HI touch, as sender, recipient or created contract; with
-- KEPT_ONLY, those of them with kept state.
CREATE FUNCTION ethwhale.addresses_touched(chain bigint, lo bigint, hi bigint, kept_only bool)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS ew_touched (address text PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE ew_touched;
    INSERT INTO ew_touched
    SELECT DISTINCT v.a FROM ethwhale.txs t
    CROSS JOIN LATERAL (VALUES (t.from_address), (t.to_address), (t.created_contract)) v(a)
    WHERE t.chain_id = chain AND t.block BETWEEN lo AND hi AND v.a IS NOT NULL
      AND (NOT kept_only OR EXISTS (SELECT 1 FROM ethwhale.candidate_kept k
                                    WHERE k.chain_id = chain AND k.address = v.a));
    ANALYZE ew_touched;
END
$$;

-- ethwhale.views_mark_dirty(chain, lo, hi, addrs): put into view_dirty the
-- addresses of the temporary table ADDRS (a column ADDRESS) and the parties
-- of the chain's large transfers of blocks LO..HI.  Returns how many it added.
CREATE FUNCTION ethwhale.views_mark_dirty(chain bigint, lo bigint, hi bigint, addrs regclass)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    EXECUTE format($q$
        INSERT INTO ethwhale.view_dirty (chain_id, address)
        SELECT $1, w.address FROM %s w
        UNION
        SELECT $1, r.from_address FROM ethwhale.large_transfer_rows r
        WHERE r.chain_id = $1 AND r.block BETWEEN $2 AND $3
        UNION
        SELECT $1, r.to_address FROM ethwhale.large_transfer_rows r
        WHERE r.chain_id = $1 AND r.block BETWEEN $2 AND $3
        ON CONFLICT DO NOTHING$q$, addrs)
    USING chain, lo, hi;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- ethwhale.views_apply(chain, lo, hi): bring the kept state forward by the
-- chain's blocks LO..HI and put into view_dirty the addresses whose
-- candidate row those blocks can change: the kept addresses their
-- transactions touch (as sender, recipient or created contract) or whose
-- feeder tests they settle, and the parties of their large transfers.
-- Returns how many addresses it added.
CREATE FUNCTION ethwhale.views_apply(chain bigint, lo bigint, hi bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ethwhale.addresses_touched(chain, lo, hi, true);

    -- the counterparties the new blocks give kept addresses, with their
    -- feeder tests.  ew_delta: what they add to the counts, a new
    -- counterparty (a row inserted), a new feeder that passes both tests (a
    -- row inserted or now received).  An edge they only repeat is left as it
    -- is, not written again.
    CREATE TEMP TABLE IF NOT EXISTS ew_delta (address text, counterparties bigint, sweepers bigint)
        ON COMMIT DROP;
    TRUNCATE ew_delta;
    WITH up AS (
        INSERT INTO ethwhale.candidate_edges AS e
        SELECT * FROM ethwhale.candidate_edges_of(chain, lo, hi, 'ew_touched', hi, false)
        ON CONFLICT (chain_id, address, counterparty) DO UPDATE
           SET received = true, feeder_sole = excluded.feeder_sole, feeder_fed = excluded.feeder_fed
         WHERE excluded.received AND NOT e.received
        RETURNING e.address, e.xmax = 0 AS inserted, e.received AND e.feeder_sole AND e.feeder_fed AS feeder
    )
    INSERT INTO ew_delta
    SELECT u.address, count(*) FILTER (WHERE u.inserted), count(*) FILTER (WHERE u.feeder)
    FROM up u GROUP BY u.address;

    -- the feeder tests the new blocks settle: a feeder that sent to another
    -- address (or created a contract), a feeder that another address fed
    -- (two statements: a row may pass both)
    CREATE TEMP TABLE IF NOT EXISTS ew_moved (sender text, recipient text) ON COMMIT DROP;
    TRUNCATE ew_moved;
    INSERT INTO ew_moved
    SELECT DISTINCT t.from_address, t.to_address FROM ethwhale.txs t
    WHERE t.chain_id = chain AND t.block BETWEEN lo AND hi;
    ANALYZE ew_moved;
    -- (a feeder that passed both tests and now sent elsewhere is one less;
    -- one that passed the first and is now fed is one more)
    WITH settled AS (
        UPDATE ethwhale.candidate_edges e SET feeder_sole = false
        FROM ew_moved m
        WHERE e.chain_id = chain AND e.counterparty = m.sender AND e.received AND e.feeder_sole
          AND e.address IS DISTINCT FROM m.recipient
        RETURNING e.address, e.feeder_fed
    )
    INSERT INTO ew_delta SELECT s.address, 0, - count(*) FILTER (WHERE s.feeder_fed) FROM settled s
    GROUP BY s.address;
    WITH settled AS (
        UPDATE ethwhale.candidate_edges e SET feeder_fed = true
        FROM ew_moved m
        WHERE e.chain_id = chain AND e.counterparty = m.recipient AND e.received AND NOT e.feeder_fed
          AND e.address <> m.sender
        RETURNING e.address, e.feeder_sole
    )
    INSERT INTO ew_delta SELECT s.address, 0, count(*) FILTER (WHERE s.feeder_sole) FROM settled s
    GROUP BY s.address;
    UPDATE ethwhale.candidate_kept k
       SET counterparties = k.counterparties + d.counterparties, sweepers = k.sweepers + d.sweepers
      FROM (SELECT x.address, sum(x.counterparties) AS counterparties, sum(x.sweepers) AS sweepers
            FROM ew_delta x GROUP BY x.address) d
     WHERE k.chain_id = chain AND k.address = d.address AND (d.counterparties <> 0 OR d.sweepers <> 0);
    INSERT INTO ew_touched SELECT DISTINCT x.address FROM ew_delta x ON CONFLICT DO NOTHING;

    INSERT INTO ethwhale.candidate_daily AS d (chain_id, address, day, wei)
    SELECT chain, m.address, m.day, m.wei FROM ethwhale.eth_moves(chain, lo, hi, 'ew_touched') m
    ON CONFLICT (chain_id, address, day) DO UPDATE SET wei = d.wei + excluded.wei;

    RETURN ethwhale.views_mark_dirty(chain, lo, hi, 'ew_touched');
END
$$;

-- ethwhale.candidates_forget(chain, lo, hi): the chain's blocks LO..HI are
-- going away (a reorg; the kept state is complete up to HI).  The kept
-- addresses their transactions touch lose their kept state, drawn again at
-- the next refresh.  Another kept address keeps its counterparties and daily
-- change, which no transaction of those blocks is part of; only the feeder
-- tests of the senders to it that those blocks touch can change (a
-- transaction elsewhere that made it fail, or one from another address that
-- made it pass, goes away), so they are settled again as of block LO - 1
-- and its count of feeders moved by the difference.  (0.5 made all of those
-- addresses draw their whole state again: on mainnet, every candidate an
-- exchange wallet ever paid.)  Called before the blocks' rows are deleted:
-- the probes stop at LO - 1.  The addresses that lost their state or whose
-- count moved, and the parties of the blocks' large transfers, go into
-- view_dirty.
CREATE FUNCTION ethwhale.candidates_forget(chain bigint, lo bigint, hi bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- the feeder probes stop at the first transaction that settles them (see
-- candidate_edges_of)
SET enable_bitmapscan = off
AS $$
BEGIN
    PERFORM ethwhale.addresses_touched(chain, lo, hi, false);
    CREATE TEMP TABLE IF NOT EXISTS ew_forget (address text PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE ew_forget;
    INSERT INTO ew_forget
    SELECT k.address FROM ethwhale.candidate_kept k JOIN ew_touched w ON w.address = k.address
    WHERE k.chain_id = chain;
    -- the other kept addresses' senders that the blocks touch (found through
    -- the transactions, which have the index: one on candidate_edges
    -- (counterparty) would cost every refresh)
    CREATE TEMP TABLE IF NOT EXISTS ew_refeed (address text, counterparty text, PRIMARY KEY (address, counterparty))
        ON COMMIT DROP;
    CREATE TEMP TABLE IF NOT EXISTS ew_dirty (address text PRIMARY KEY) ON COMMIT DROP;
    TRUNCATE ew_refeed, ew_dirty;
    INSERT INTO ew_refeed
    SELECT DISTINCT t.to_address, t.from_address FROM ethwhale.txs t
    JOIN ew_touched w ON w.address = t.from_address
    JOIN ethwhale.candidate_kept k ON k.chain_id = chain AND k.address = t.to_address
    WHERE t.chain_id = chain AND t.block < lo AND t.from_address <> t.to_address
      AND NOT EXISTS (SELECT 1 FROM ew_forget f WHERE f.address = t.to_address);
    ANALYZE ew_refeed;
    -- (the count of feeders from the tests before and after, which the
    -- subquery reads: counting every edge of those addresses again took
    -- longer than the probes)
    WITH settled AS (
        UPDATE ethwhale.candidate_edges e SET feeder_sole = n.sole, feeder_fed = n.fed
          FROM (SELECT p.address, p.counterparty, p.feeder_sole AND p.feeder_fed AS was,
                       NOT EXISTS (SELECT 1 FROM ethwhale.txs o
                                   WHERE o.chain_id = chain AND o.from_address = p.counterparty
                                     AND o.block < lo AND o.to_address IS DISTINCT FROM p.address) AS sole,
                       EXISTS (SELECT 1 FROM ethwhale.txs i
                               WHERE i.chain_id = chain AND i.to_address = p.counterparty
                                 AND i.block < lo AND i.from_address <> p.address) AS fed
                FROM ew_refeed r
                JOIN ethwhale.candidate_edges p
                  ON p.chain_id = chain AND p.address = r.address AND p.counterparty = r.counterparty
                WHERE p.received) n
         WHERE e.chain_id = chain AND e.address = n.address AND e.counterparty = n.counterparty
           AND (e.feeder_sole, e.feeder_fed) IS DISTINCT FROM (n.sole, n.fed)
        RETURNING e.address, (n.sole AND n.fed)::int - n.was::int AS delta
    )
    , counted AS (
        UPDATE ethwhale.candidate_kept k SET sweepers = k.sweepers + d.delta
          FROM (SELECT x.address, sum(x.delta) AS delta FROM settled x GROUP BY x.address) d
         WHERE k.chain_id = chain AND k.address = d.address AND d.delta <> 0
        RETURNING k.address
    )
    -- (dirty: a candidate's row reads the count, not the edges)
    INSERT INTO ew_dirty SELECT c.address FROM counted c;
    PERFORM ethwhale.candidates_drop(chain, ARRAY(SELECT f.address FROM ew_forget f));
    INSERT INTO ew_dirty SELECT f.address FROM ew_forget f ON CONFLICT DO NOTHING;
    PERFORM ethwhale.views_mark_dirty(chain, lo, hi, 'ew_dirty');
END
$$;

-- ethwhale.candidates_drop(chain, addrs): the chain's addresses ADDRS
-- (NULL: all) lose their kept state.
CREATE FUNCTION ethwhale.candidates_drop(chain bigint, addrs text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF addrs IS NULL THEN
        DELETE FROM ethwhale.candidate_edges e WHERE e.chain_id = chain;
        DELETE FROM ethwhale.candidate_daily d WHERE d.chain_id = chain;
        DELETE FROM ethwhale.candidate_kept k WHERE k.chain_id = chain;
    ELSIF cardinality(addrs) > 0 THEN
        -- joins: x = ANY (addrs) would search the array for every row
        DELETE FROM ethwhale.candidate_edges e USING unnest(addrs) u(address)
         WHERE e.chain_id = chain AND e.address = u.address;
        DELETE FROM ethwhale.candidate_daily d USING unnest(addrs) u(address)
         WHERE d.chain_id = chain AND d.address = u.address;
        DELETE FROM ethwhale.candidate_kept k USING unnest(addrs) u(address)
         WHERE k.chain_id = chain AND k.address = u.address;
    END IF;
END
$$;

-- ethwhale.partitions_through(chain, upto): the chain's partitions of
-- ethwhale.txs that begin at or below block UPTO, as 'first-last,...'
-- (view_state.kept_partitions: what the kept state was drawn from).
CREATE FUNCTION ethwhale.partitions_through(chain bigint, upto bigint)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT string_agg(p.first_block || '-' || p.last_block, ',' ORDER BY p.first_block)
    FROM ethwhale.partitions p
    WHERE p.table_name = 'txs' AND p.chain_id = chain AND p.first_block <= upto
$$;
-- ---------------------------------------------------------------- alerts (issue 17)
--
-- ethwhale.alert_rule       what to be told about (minimum USD, token, address,
--                           counterparty label or category, direction)
-- ethwhale.alert_log        every alert ever raised, retracted ones included
-- ethwhale.alerts           the alerts in force (alert_log without the retracted)
-- ethwhale.alerts_since(n)  the events after event n: how a consumer resumes
-- NOTIFY ethwhale_alert     one JSON payload per event, sent at the commit
--
-- Alerts are recorded by ethwhale.sync_batch, in the transaction that writes
-- the batch: the batch, its cursor and its alerts commit together or not at
-- all, so an alert is never lost when nobody listens and never raised twice
-- for one synced transfer.  A reorg (ethwhale.sync_rollback_reorg) retracts
-- the alerts of the blocks it replaces, with an event of its own.  Every
-- change of alert_log takes the next number of ethwhale.alert_event_seq
-- while the batch holds the cursor row FOR UPDATE, so events commit in the
-- order of their numbers and "every event after the last one I saw" misses
-- nothing.  See README.md, "Alerts".

CREATE SEQUENCE ethwhale.alert_rule_id_seq;
CREATE SEQUENCE ethwhale.alert_id_seq;
CREATE SEQUENCE ethwhale.alert_event_seq;

-- A transfer matches a rule when every condition that is set holds:
--   min_usd                value_usd >= min_usd (unpriced transfers never do);
--   token                  'ETH' for ether, or the token's address;
--   address                the watched address: it sends (direction 'out'),
--                          receives ('in') or either ('any');
--   counterparty_label     the other party's label, ILIKE this pattern;
--   counterparty_category  the other party's label category, exactly
--                          (case-insensitive).
-- Without an address, direction is seen from the party that is not the
-- counterparty: 'out' with counterparty_category 'exchange' is a transfer
-- into an exchange.  Checked (and addresses lowercased) by
-- ethwhale.alert_rule_check.
CREATE TABLE ethwhale.alert_rule (
    id                    bigint PRIMARY KEY DEFAULT nextval('ethwhale.alert_rule_id_seq'),
    name                  text NOT NULL UNIQUE,
    min_usd               numeric CHECK (min_usd >= 0),
    token                 text CHECK (token = 'ETH' OR token ~ '^0x[0-9a-f]{40}$'),
    address               text CHECK (address ~ '^0x[0-9a-f]{40}$'),
    counterparty_label    text,
    counterparty_category text,
    direction             text NOT NULL DEFAULT 'any' CHECK (direction IN ('in', 'out', 'any')),
    enabled               boolean NOT NULL DEFAULT true,
    created_at            timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE ethwhale.alert_rule_id_seq OWNED BY ethwhale.alert_rule.id;
COMMENT ON TABLE ethwhale.alert_rule IS
    'alert rules: transfers synced by ethwhale.sync() that match one are recorded in ethwhale.alerts and announced with NOTIFY ethwhale_alert';

-- BEFORE INSERT OR UPDATE on ethwhale.alert_rule: normalise (lowercase
-- addresses, 'ETH', direction) and refuse what cannot be meant, with the
-- reason and the fix (a CHECK violation would only name the constraint).
CREATE FUNCTION ethwhale.alert_rule_check()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.name := btrim(NEW.name);
    IF NEW.name IS NULL OR NEW.name = '' THEN
        RAISE EXCEPTION 'an alert rule needs a name'
            USING ERRCODE = 'not_null_violation',
                  HINT = 'Name it after what it watches, e.g. ''whale ETH over 1M''.';
    END IF;
    NEW.direction := lower(btrim(coalesce(NEW.direction, 'any')));
    IF NEW.direction NOT IN ('in', 'out', 'any') THEN
        RAISE EXCEPTION 'alert rule "%": direction must be ''in'', ''out'' or ''any'', not "%"', NEW.name, NEW.direction
            USING ERRCODE = 'check_violation',
                  HINT = 'in: the address (or the side that is not the counterparty) receives; out: it sends; any: either.';
    END IF;
    NEW.address := nullif(lower(btrim(NEW.address)), '');
    IF NEW.address !~ '^0x[0-9a-f]{40}$' THEN
        RAISE EXCEPTION 'alert rule "%": "%" is not an address', NEW.name, NEW.address
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = 'An address is 0x followed by 40 hexadecimal digits.';
    END IF;
    NEW.token := nullif(btrim(NEW.token), '');
    IF upper(NEW.token) = 'ETH' THEN
        NEW.token := 'ETH';
    ELSE
        NEW.token := lower(NEW.token);
        IF NEW.token !~ '^0x[0-9a-f]{40}$' THEN
            RAISE EXCEPTION 'alert rule "%": token "%" is neither ''ETH'' nor a token address', NEW.name, NEW.token
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = 'Use ''ETH'' for ether, or the ERC-20 contract''s address (see ethwhale.token for the priced ones).';
        END IF;
    END IF;
    IF NEW.min_usd < 0 OR NEW.min_usd = 'NaN' THEN
        RAISE EXCEPTION 'alert rule "%": min_usd must be a non-negative number of US dollars, not %', NEW.name, NEW.min_usd
            USING ERRCODE = 'check_violation';
    END IF;
    NEW.counterparty_label := nullif(NEW.counterparty_label, '');
    NEW.counterparty_category := nullif(btrim(NEW.counterparty_category), '');
    IF NEW.min_usd IS NULL AND NEW.address IS NULL AND NEW.counterparty_label IS NULL
       AND NEW.counterparty_category IS NULL THEN
        RAISE EXCEPTION 'alert rule "%" would match every transfer', NEW.name
            USING ERRCODE = 'check_violation',
                  HINT = 'Set at least one of min_usd, address, counterparty_label or counterparty_category.';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER alert_rule_check BEFORE INSERT OR UPDATE ON ethwhale.alert_rule
    FOR EACH ROW EXECUTE FUNCTION ethwhale.alert_rule_check();

-- ethwhale.add_alert_rule(name, ...): create the rule NAME, or replace the
-- conditions of the rule of that name.  Returns its id.
CREATE FUNCTION ethwhale.add_alert_rule(name text, min_usd numeric DEFAULT NULL, token text DEFAULT NULL,
                                        address text DEFAULT NULL, counterparty_label text DEFAULT NULL,
                                        counterparty_category text DEFAULT NULL, direction text DEFAULT 'any')
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    INSERT INTO ethwhale.alert_rule AS r
        (name, min_usd, token, address, counterparty_label, counterparty_category, direction)
    VALUES (add_alert_rule.name, add_alert_rule.min_usd, add_alert_rule.token, add_alert_rule.address,
            add_alert_rule.counterparty_label, add_alert_rule.counterparty_category, add_alert_rule.direction)
    ON CONFLICT ON CONSTRAINT alert_rule_name_key DO UPDATE
        SET min_usd = excluded.min_usd, token = excluded.token, address = excluded.address,
            counterparty_label = excluded.counterparty_label,
            counterparty_category = excluded.counterparty_category,
            direction = excluded.direction, enabled = true
    RETURNING r.id
$$;

-- One row per alert.  event_id is the number of its newest event: its
-- creation, then its retraction (which takes a new number), so
-- "event_id > the last one seen" finds both.  direction is 'in' or 'out'
-- as seen from the rule's address (or the non-counterparty side).  amount
-- is in ETH or token units (raw units for a token not in ethwhale.token);
-- value_usd is NULL when the transfer is not priced.  No foreign key to
-- alert_rule: a deleted rule leaves its alerts (and pg_dump restores
-- extension tables in no particular order).
CREATE TABLE ethwhale.alert_log (
    id               bigint PRIMARY KEY DEFAULT nextval('ethwhale.alert_id_seq'),
    event_id         bigint NOT NULL UNIQUE DEFAULT nextval('ethwhale.alert_event_seq'),
    rule_id          bigint NOT NULL,
    rule_name        text NOT NULL,
    direction        text NOT NULL CHECK (direction IN ('in', 'out')),
    block            bigint NOT NULL,
    block_hash       text NOT NULL,
    block_time       timestamptz NOT NULL,
    tx_hash          text NOT NULL,
    log_index        int NOT NULL,
    kind             text NOT NULL CHECK (kind IN ('ETH', 'token')),
    token            text,
    symbol           text,
    from_address     text NOT NULL,
    to_address       text NOT NULL,
    from_label       text,
    from_category    text,
    to_label         text,
    to_category      text,
    amount           numeric NOT NULL,
    value_usd        numeric,
    created_at       timestamptz NOT NULL DEFAULT now(),
    retracted_at     timestamptz,
    retracted_reason text,
    chain_id         bigint
);
ALTER SEQUENCE ethwhale.alert_id_seq OWNED BY ethwhale.alert_log.id;
ALTER SEQUENCE ethwhale.alert_event_seq OWNED BY ethwhale.alert_log.event_id;
-- one alert in force per rule and transfer of a block
CREATE UNIQUE INDEX alert_log_live_key ON ethwhale.alert_log (rule_id, tx_hash, log_index, block_hash)
    WHERE retracted_at IS NULL;
CREATE INDEX alert_log_live_block ON ethwhale.alert_log (chain_id, block) WHERE retracted_at IS NULL;
COMMENT ON TABLE ethwhale.alert_log IS
    'every alert raised by ethwhale.sync(), with its retraction when a reorg or reset_sync() removed its block';
SELECT pg_catalog.pg_extension_config_dump('ethwhale.alert_rule', '');
SELECT pg_catalog.pg_extension_config_dump('ethwhale.alert_log', '');
SELECT pg_catalog.pg_extension_config_dump('ethwhale.alert_rule_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ethwhale.alert_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('ethwhale.alert_event_seq', '');

CREATE VIEW ethwhale.alerts AS
SELECT l.id, l.event_id, l.rule_id, l.rule_name, l.direction, l.block, l.block_hash, l.block_time,
       l.tx_hash, l.log_index, l.kind, l.token, l.symbol, l.from_address, l.to_address,
       l.from_label, l.from_category, l.to_label, l.to_category, l.amount, l.value_usd, l.created_at,
       l.chain_id
FROM ethwhale.alert_log l
WHERE l.retracted_at IS NULL;
COMMENT ON VIEW ethwhale.alerts IS
    'the alerts in force: matches of ethwhale.alert_rule in synced blocks that no reorg has replaced';

-- ethwhale.alert_payload(a): the JSON of alert A's newest event, as NOTIFY
-- ethwhale_alert sends it and ethwhale.alerts_since returns it.  Times are
-- UTC (ISO 8601, whatever the session's TimeZone); amounts are exact JSON
-- numbers.
CREATE FUNCTION ethwhale.alert_payload(a ethwhale.alert_log)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT jsonb_build_object(
               'event', CASE WHEN a.retracted_at IS NULL THEN 'alert' ELSE 'retraction' END,
               'event_id', a.event_id, 'id', a.id, 'rule', a.rule_name, 'rule_id', a.rule_id,
               'chain_id', a.chain_id,
               'direction', a.direction, 'block', a.block, 'block_hash', a.block_hash,
               'time', to_char(a.block_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
               'tx_hash', a.tx_hash, 'log_index', a.log_index, 'kind', a.kind, 'token', a.token,
               'symbol', a.symbol, 'amount', a.amount, 'value_usd', a.value_usd,
               'from', a.from_address, 'from_label', a.from_label, 'from_category', a.from_category,
               'to', a.to_address, 'to_label', a.to_label, 'to_category', a.to_category)
           || CASE WHEN a.retracted_at IS NULL THEN '{}'::jsonb
                   ELSE jsonb_build_object('reason', a.retracted_reason,
                                           'retracted_at', to_char(a.retracted_at AT TIME ZONE 'UTC',
                                                                   'YYYY-MM-DD"T"HH24:MI:SS"Z"')) END
$$;

-- ethwhale.alert_notify(a): NOTIFY ethwhale_alert with the payload of A
-- (delivered when the transaction commits, dropped if it rolls back).  A
-- payload must stay under 8000 bytes: when labels or the rule name make it
-- longer, the short form {event, event_id, id, block, tx_hash, log_index,
-- truncated: true} is sent, and the whole of it is in ethwhale.alerts_since.
CREATE FUNCTION ethwhale.alert_notify(a ethwhale.alert_log)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p text := ethwhale.alert_payload(a)::text;
BEGIN
    IF octet_length(p) >= 8000 THEN
        p := jsonb_build_object('event', CASE WHEN a.retracted_at IS NULL THEN 'alert' ELSE 'retraction' END,
                                'event_id', a.event_id, 'id', a.id, 'block', a.block,
                                'tx_hash', a.tx_hash, 'log_index', a.log_index, 'truncated', true)::text;
    END IF;
    PERFORM pg_notify('ethwhale_alert', p);
END
$$;

-- ethwhale.alerts_since(after_event, max_events): the events after event
-- AFTER_EVENT (0: all), oldest first: an alert, or the retraction of an
-- alert (which may be one the consumer never saw, if both happened while it
-- was away).  A consumer LISTENs to ethwhale_alert first, then reads
-- alerts_since(last seen), then takes each notification whose event_id is
-- above the last one it saw: no event is lost or shown twice.
CREATE FUNCTION ethwhale.alerts_since(after_event bigint DEFAULT 0, max_events int DEFAULT 10000)
RETURNS TABLE (event_id bigint, event text, alert_id bigint, payload jsonb)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.event_id, CASE WHEN l.retracted_at IS NULL THEN 'alert' ELSE 'retraction' END, l.id,
           ethwhale.alert_payload(l)
    FROM ethwhale.alert_log l
    WHERE l.event_id > coalesce(after_event, 0)
    ORDER BY l.event_id
    LIMIT greatest(coalesce(max_events, 10000), 0)
$$;

-- ethwhale.alerts_record(chain, a, b): the alerts of the synced blocks A..B of CHAIN, for
-- ethwhale.sync_batch (in the batch's transaction).  Every ETH transfer
-- (successful, value > 0, not a contract creation) and token transfer of
-- the blocks is priced as in ethwhale.large_transfers (the ETH/USD of the
-- block's UTC day or the last one before it; ethwhale.token; rounded to
-- cents), matched
-- against the enabled rules, recorded once per rule and announced.
-- Returns how many alerts were raised.
CREATE FUNCTION ethwhale.alerts_record(chain bigint, a bigint, b bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r ethwhale.alert_log;
    n bigint := 0;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ethwhale.alert_rule WHERE enabled) THEN
        RETURN 0;
    END IF;
    FOR r IN
        WITH px AS (
            SELECT d.day,
                   (SELECT p.price FROM ethwhale.eth_usd p WHERE p.day <= d.day ORDER BY p.day DESC LIMIT 1) AS price
            FROM (SELECT DISTINCT (bl."timestamp" AT TIME ZONE 'UTC')::date AS day
                  FROM ethwhale.blocks bl WHERE bl.chain_id = chain AND bl.number BETWEEN a AND b) d
        ),
        moves AS (
            SELECT 'ETH'::text AS kind, t.block, t.block_time, t.hash AS tx_hash, t.tx_index AS pos,
                   -1 AS log_index, NULL::text AS token, 'ETH'::text AS symbol,
                   t.from_address, t.to_address, t.value * 1e-18 AS amount,
                   t.value * 1e-18 * px.price AS value_usd
            FROM ethwhale.txs t
            LEFT JOIN px ON px.day = (t.block_time AT TIME ZONE 'UTC')::date
            WHERE t.chain_id = chain AND t.block BETWEEN a AND b AND t.value > 0 AND t.to_address IS NOT NULL
              AND coalesce(t.status, 1) <> 0
            UNION ALL
            SELECT 'token', tt.block, tt.block_time, tt.tx_hash, tt.log_index, tt.log_index,
                   tt.token, tk.symbol, tt.from_address, tt.to_address,
                   CASE WHEN tk.address IS NULL THEN tt.amount
                        ELSE tt.amount * ('1e-' || tk.decimals)::numeric END,
                   tt.amount * ('1e-' || tk.decimals)::numeric * coalesce(tk.usd_peg, px.price)
            FROM ethwhale.token_transfers tt
            LEFT JOIN ethwhale.token tk ON tk.address = tt.token
            LEFT JOIN px ON px.day = (tt.block_time AT TIME ZONE 'UTC')::date
            WHERE tt.chain_id = chain AND tt.block BETWEEN a AND b
        ),
        sides AS (
            SELECT m.*, fl.label AS from_label, fl.category AS from_category,
                   tl.label AS to_label, tl.category AS to_category,
                   s.dir, s.subject, s.cp_label, s.cp_category
            FROM moves m
            LEFT JOIN ethwhale.address_label fl ON fl.address = m.from_address
            LEFT JOIN ethwhale.address_label tl ON tl.address = m.to_address
            CROSS JOIN LATERAL (VALUES ('out', m.from_address, tl.label, tl.category),
                                       ('in', m.to_address, fl.label, fl.category))
                AS s(dir, subject, cp_label, cp_category)
        ),
        matched AS (
            SELECT DISTINCT ON (ru.id, m.tx_hash, m.log_index)
                   ru.id AS rule_id, ru.name AS rule_name, m.*
            FROM sides m
            JOIN ethwhale.alert_rule ru ON ru.enabled
            WHERE (ru.min_usd IS NULL OR m.value_usd >= ru.min_usd)
              AND (ru.token IS NULL OR (ru.token = 'ETH' AND m.kind = 'ETH') OR ru.token = m.token)
              AND (ru.direction = 'any' OR ru.direction = m.dir)
              AND (ru.address IS NULL OR ru.address = m.subject)
              AND (ru.counterparty_label IS NULL OR m.cp_label ILIKE ru.counterparty_label)
              AND (ru.counterparty_category IS NULL OR lower(m.cp_category) = lower(ru.counterparty_category))
            ORDER BY ru.id, m.tx_hash, m.log_index, m.dir DESC   -- 'out' before 'in'
        ),
        ins AS (
            INSERT INTO ethwhale.alert_log
                (rule_id, rule_name, direction, block, block_hash, block_time, tx_hash, log_index,
                 kind, token, symbol, from_address, to_address, from_label, from_category,
                 to_label, to_category, amount, value_usd, chain_id)
            SELECT x.rule_id, x.rule_name, x.dir, x.block, bl.hash, x.block_time, x.tx_hash, x.log_index,
                   x.kind, x.token, x.symbol, x.from_address, x.to_address, x.from_label, x.from_category,
                   x.to_label, x.to_category, x.amount, round(x.value_usd, 2), chain
            FROM (SELECT * FROM matched ORDER BY block, kind, pos, rule_id) x
            JOIN ethwhale.blocks bl ON bl.chain_id = chain AND bl.number = x.block
            ORDER BY x.block, x.kind, x.pos, x.rule_id
            RETURNING *
        )
        SELECT * FROM ins ORDER BY event_id
    LOOP
        PERFORM ethwhale.alert_notify(r);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- ethwhale.alerts_retract(chain, above, reason): retract the alerts in
-- force of the blocks of CHAIN (every chain when NULL) above ABOVE (all of
-- them when ABOVE is NULL), each with a new event and its notification,
-- saying REASON.  Returns how many.
CREATE FUNCTION ethwhale.alerts_retract(chain bigint, above bigint, reason text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r ethwhale.alert_log;
    n bigint := 0;
BEGIN
    FOR r IN
        WITH up AS (
            UPDATE ethwhale.alert_log l
               SET retracted_at = clock_timestamp(), retracted_reason = reason,
                   event_id = nextval('ethwhale.alert_event_seq')
             WHERE l.retracted_at IS NULL AND (above IS NULL OR l.block > above)
               AND (chain IS NULL OR l.chain_id = chain)
            RETURNING l.*
        )
        SELECT * FROM up ORDER BY event_id
    LOOP
        PERFORM ethwhale.alert_notify(r);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;
-- ---------------------------------------------------------------- balance history (issue 17)
--
-- An address's ETH balance over time is the balance the node reports at one
-- synced block (the anchor, from eth_account) walked forwards and backwards
-- with the address's synced transactions: value received, value sent and
-- the fees it paid (gas used x the effective gas price: Geth's gasPrice of
-- a mined transaction).  What the transaction list cannot show is not in
-- the walk: internal transfers from contracts, block rewards and tips
-- received as a block's miner, withdrawals, blob fees.
-- ethwhale.balance_check compares the walk with eth_account at sampled
-- blocks and reports that gap.  See README.md, "Balance history".

-- The balance eth_account reported for an address at the end of BLOCK.
-- block_hash is that block's hash in the local chain (for the block before
-- the first synced one: the first block's parent hash); an anchor whose
-- block the local chain no longer has with that hash (a reorg) is asked
-- for again.
CREATE TABLE ethwhale.balance_anchor (
    address    text NOT NULL,
    block      bigint NOT NULL,
    block_hash text NOT NULL,
    balance    numeric NOT NULL,
    server     name NOT NULL,
    fetched_at timestamptz NOT NULL DEFAULT now(),
    chain_id   bigint NOT NULL,
    PRIMARY KEY (chain_id, address)
);
COMMENT ON TABLE ethwhale.balance_anchor IS
    'balances reported by eth_account that anchor ethwhale.balance_history (filled on demand)';
COMMENT ON COLUMN ethwhale.balance_anchor.balance IS 'wei, at the end of block';
SELECT pg_catalog.pg_extension_config_dump('ethwhale.balance_anchor', '');

-- ethwhale.local_block_hash(n): the hash of block N in the local chain of
-- ethwhale.current_chain(); for the block just below the first synced one,
-- the first block's parent hash.
CREATE FUNCTION ethwhale.local_block_hash(n bigint)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH c AS (SELECT ethwhale.current_chain() AS chain)
    SELECT coalesce((SELECT b.hash FROM ethwhale.blocks b, c WHERE b.chain_id = c.chain AND b.number = n),
                    (SELECT b.parent_hash FROM ethwhale.blocks b, c
                     WHERE b.chain_id = c.chain AND b.number = n + 1
                       AND b.number = (SELECT s.first_block FROM ethwhale.sync_state s WHERE s.chain_id = c.chain)))
$$;

-- ethwhale.anchor_balance(address, refresh): the anchor of ADDRESS: the one
-- stored, while its block is still in the local chain, else (or with
-- REFRESH) the balance eth_account reports at the first of these blocks
-- where the node has the state: the last synced block (a node keeps the
-- state of its recent blocks), the block before the first synced one, the
-- first synced one.  Stored in ethwhale.balance_anchor.  NULL, with a NOTICE
-- quoting the node, when none of them answers (a pruned node, no eth_account
-- table, nothing synced).
CREATE FUNCTION ethwhale.anchor_balance(address text, refresh boolean DEFAULT false)
RETURNS ethwhale.balance_anchor
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    addr text := lower(address);
    anc ethwhale.balance_anchor;
    st ethwhale.sync_state;
    c bigint;
    bal numeric;
    h text;
    asked bigint[] := '{}';
    tried text[] := '{}';
BEGIN
    SELECT * INTO st FROM ethwhale.sync_state s WHERE s.chain_id = ethwhale.current_chain();
    SELECT * INTO anc FROM ethwhale.balance_anchor x WHERE x.chain_id = st.chain_id AND x.address = addr;
    IF FOUND AND NOT refresh AND anc.block_hash = ethwhale.local_block_hash(anc.block) THEN
        RETURN anc;
    END IF;
    IF st.next_block IS NULL OR st.next_block <= st.first_block THEN
        RETURN NULL;
    END IF;
    IF to_regclass(format('%I.eth_account', st.remote_schema)) IS NULL THEN
        RAISE NOTICE 'ethwhale.anchor_balance(%): the wrapper has no eth_account table in schema %', addr, st.remote_schema;
        RETURN NULL;
    END IF;
    FOREACH c IN ARRAY ARRAY[st.next_block - 1, st.first_block - 1, st.first_block] LOOP
        CONTINUE WHEN c < 0 OR c = ANY (asked);
        asked := asked || c;
        bal := NULL;
        BEGIN
            EXECUTE format('SELECT balance FROM %I.eth_account WHERE address = $1 AND block = $2', st.remote_schema)
                INTO bal USING addr, c;
        EXCEPTION WHEN OTHERS THEN
            tried := tried || format('block %s: %s', c, SQLERRM);
            CONTINUE;
        END;
        h := ethwhale.local_block_hash(c);
        IF bal IS NULL OR h IS NULL THEN
            tried := tried || format('block %s: no answer', c);
            CONTINUE;
        END IF;
        anc := ROW(addr, c, h, bal, st.server, clock_timestamp(), st.chain_id);
        BEGIN
            INSERT INTO ethwhale.balance_anchor AS x (address, block, block_hash, balance, server, fetched_at, chain_id)
            VALUES (anc.address, anc.block, anc.block_hash, anc.balance, anc.server, anc.fetched_at, anc.chain_id)
            ON CONFLICT ON CONSTRAINT balance_anchor_pkey DO UPDATE
                SET block = excluded.block, block_hash = excluded.block_hash, balance = excluded.balance,
                    server = excluded.server, fetched_at = excluded.fetched_at;
        EXCEPTION WHEN read_only_sql_transaction THEN
            NULL;   -- a read-only session (a standby) uses the anchor without keeping it
        END;
        RETURN anc;
    END LOOP;
    RAISE NOTICE 'ethwhale.anchor_balance(%): the node reports no balance at the synced blocks it was asked for', addr
        USING DETAIL = array_to_string(tried, '; ');
    RETURN NULL;
END
$$;

-- ethwhale.address_eth_moves(address): the address's ETH movements in the
-- synced transactions, one row per transaction: VALUE_WEI received (also as
-- the contract a transaction created) minus sent, both of successful
-- transactions only, and FEE_WEI = gas used x gas price of the transactions
-- it sent (failed ones too); FEE_UNKNOWN when the node gave no gas used.
CREATE FUNCTION ethwhale.address_eth_moves(address text)
RETURNS TABLE (block bigint, tx_index int, block_time timestamptz, value_wei numeric,
               fee_wei numeric, fee_unknown boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH t AS (
        SELECT * FROM ethwhale.txs x WHERE x.chain_id = ethwhale.current_chain() AND x.from_address = lower(address_eth_moves.address)
        UNION
        SELECT * FROM ethwhale.txs x WHERE x.chain_id = ethwhale.current_chain() AND x.to_address = lower(address_eth_moves.address)
        UNION
        SELECT * FROM ethwhale.txs x
        WHERE x.chain_id = ethwhale.current_chain() AND x.created_contract = lower(address_eth_moves.address) AND x.created_contract IS NOT NULL
    )
    SELECT t.block, t.tx_index, t.block_time,
           CASE WHEN coalesce(t.status, 1) = 0 THEN 0
                ELSE CASE WHEN t.to_address = lower(address_eth_moves.address)
                            OR (t.to_address IS NULL AND t.created_contract = lower(address_eth_moves.address))
                          THEN t.value ELSE 0 END
                     - CASE WHEN t.from_address = lower(address_eth_moves.address) THEN t.value ELSE 0 END
           END,
           CASE WHEN t.from_address = lower(address_eth_moves.address) THEN coalesce(t.gas_used * t.gas_price, 0)
                ELSE 0 END,
           t.from_address = lower(address_eth_moves.address) AND (t.gas_used IS NULL OR t.gas_price IS NULL)
    FROM t
$$;

-- ethwhale.address_token_moves(address): the address's transfers of the
-- tokens priced in ethwhale.token, one row per transfer: AMOUNT received
-- minus sent, in token units.
CREATE FUNCTION ethwhale.address_token_moves(address text)
RETURNS TABLE (block bigint, log_index int, block_time timestamptz, token text, amount numeric)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH tt AS (
        SELECT * FROM ethwhale.token_transfers x WHERE x.chain_id = ethwhale.current_chain() AND x.from_address = lower(address_token_moves.address)
        UNION
        SELECT * FROM ethwhale.token_transfers x WHERE x.chain_id = ethwhale.current_chain() AND x.to_address = lower(address_token_moves.address)
    )
    SELECT tt.block, tt.log_index, tt.block_time, tt.token,
           (CASE WHEN tt.to_address = lower(address_token_moves.address) THEN tt.amount ELSE 0 END
            - CASE WHEN tt.from_address = lower(address_token_moves.address) THEN tt.amount ELSE 0 END)
           * ('1e-' || tk.decimals)::numeric
    FROM tt JOIN ethwhale.token tk ON tk.address = tt.token
$$;

-- ethwhale.eth_usd_at(day): the ETH/USD close of DAY, or the last one before it.
CREATE FUNCTION ethwhale.eth_usd_at(day date)
RETURNS numeric
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.price FROM ethwhale.eth_usd p WHERE p.day <= eth_usd_at.day ORDER BY p.day DESC LIMIT 1
$$;

-- ethwhale.balance_history(address, step): per STEP (no months or years)
-- from the first synced block to the last:
--   change_eth    received - sent - fees in the period (ethwhale.address_eth_moves)
--   balance_eth   the balance at the end of the period: the anchor
--                 (ethwhale.anchor_balance) walked with the changes; NULL
--                 when the node reports no balance
--   fees_eth      the fees it paid in the period
--   flow_eth      the changes since the first synced block (balance_eth
--                 without the anchor)
--   eth_usd       the ETH/USD close of the period's last day (or the last before)
--   balance_usd   balance_eth x eth_usd (the USD columns are rounded to cents)
--   token_usd     the priced tokens received minus sent since the first
--                 synced block, each valued at the period's price (a node
--                 tells a token balance only through a contract call, so
--                 tokens held before the sync are not counted)
--   total_usd     balance_usd + token_usd
--   unknown_fees  transactions sent so far whose gas used the node did not
--                 give (their fees are missing from the walk)
CREATE FUNCTION ethwhale.balance_history(address text, step interval DEFAULT '1 day')
RETURNS TABLE (period_start timestamptz, change_eth numeric, balance_eth numeric, fees_eth numeric,
               flow_eth numeric, eth_usd numeric, balance_usd numeric, token_usd numeric,
               total_usd numeric, unknown_fees bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    addr text := lower(address);
    lo timestamptz;
    hi timestamptz;
    anc ethwhale.balance_anchor;
    at_anchor numeric := 0;
BEGIN
    IF step IS NULL OR step <= interval '0' THEN
        RAISE EXCEPTION 'ethwhale.balance_history: step must be a positive interval'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF extract(month FROM step) <> 0 OR extract(year FROM step) <> 0 THEN
        RAISE EXCEPTION 'ethwhale.balance_history: step must not contain months or years'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use days, e.g. ''30 days''.';
    END IF;
    SELECT min("timestamp"), max("timestamp") INTO lo, hi FROM ethwhale.blocks b WHERE b.chain_id = ethwhale.current_chain();
    IF lo IS NULL THEN
        RETURN;
    END IF;
    lo := date_bin(step, lo, timestamptz '2000-01-01 00:00:00+00');
    anc := ethwhale.anchor_balance(addr);
    IF anc.block IS NOT NULL THEN
        SELECT coalesce(sum(m.value_wei - m.fee_wei), 0) INTO at_anchor
        FROM ethwhale.address_eth_moves(addr) m WHERE m.block <= anc.block;
    END IF;
    RETURN QUERY
    WITH per AS (
        SELECT date_bin(step, m.block_time, lo) AS p, sum(m.value_wei - m.fee_wei) AS wei,
               sum(m.fee_wei) AS fee, count(*) FILTER (WHERE m.fee_unknown) AS unk
        FROM ethwhale.address_eth_moves(addr) m GROUP BY 1
    ),
    tok AS (
        SELECT date_bin(step, m.block_time, lo) AS p, m.token, sum(m.amount) AS amount
        FROM ethwhale.address_token_moves(addr) m GROUP BY 1, 2
    ),
    grid AS (
        SELECT g AS p, ethwhale.eth_usd_at((least(g + step - interval '1 microsecond', hi) AT TIME ZONE 'UTC')::date) AS px
        FROM generate_series(lo, hi, step) g
    ),
    walk AS (
        SELECT g.p, g.px,
               coalesce(per.wei, 0) AS wei, coalesce(per.fee, 0) AS fee,
               sum(coalesce(per.wei, 0)) OVER w AS cum,
               sum(coalesce(per.unk, 0)) OVER w AS unk,
               (SELECT sum(h.amount * coalesce(tk.usd_peg, g.px))
                FROM (SELECT tok.token, sum(tok.amount) AS amount FROM tok WHERE tok.p <= g.p GROUP BY tok.token) h
                JOIN ethwhale.token tk ON tk.address = h.token) AS tok_usd
        FROM grid g LEFT JOIN per ON per.p = g.p
        WINDOW w AS (ORDER BY g.p)
    )
    SELECT w.p,
           w.wei * 1e-18,
           (anc.balance + w.cum - at_anchor) * 1e-18,
           w.fee * 1e-18,
           w.cum * 1e-18,
           w.px,
           round((anc.balance + w.cum - at_anchor) * 1e-18 * w.px, 2),
           round(coalesce(w.tok_usd, 0), 2),
           round((anc.balance + w.cum - at_anchor) * 1e-18 * w.px + coalesce(w.tok_usd, 0), 2),
           w.unk::bigint
    FROM walk w
    ORDER BY w.p;
END
$$;

-- ethwhale.balance_check(address, samples): the walk of balance_history
-- against eth_account at up to SAMPLES synced blocks (the blocks where the
-- address moved ETH or tokens and the last synced block, spread evenly; not
-- the anchor's): SERIES_ETH, the node's NODE_ETH and GAP_ETH = node -
-- series, with a NOTE when they differ or the node has no state there.  A
-- NOTICE sums it up.  The transaction list does not show internal transfers
-- from contracts, block rewards and tips received as a block's miner,
-- withdrawals or blob fees: an address that has them shows a gap.
CREATE FUNCTION ethwhale.balance_check(address text, samples int DEFAULT 10)
RETURNS TABLE (block bigint, series_eth numeric, node_eth numeric, gap_eth numeric,
               unknown_fees bigint, note text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    addr text := lower(address);
    anc ethwhale.balance_anchor := ethwhale.anchor_balance(lower(address));
    src name;
    at_anchor numeric;
    x record;
    bal numeric;
    n_equal int := 0;
    n_differ int := 0;
    n_nostate int := 0;
    worst numeric;
    worst_block bigint;
BEGIN
    IF samples IS NULL OR samples < 1 THEN
        RAISE EXCEPTION 'ethwhale.balance_check: samples must be a positive number of blocks'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF anc.block IS NULL THEN
        RAISE EXCEPTION 'ethwhale.balance_check(%): no balance to start from', addr
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'The node reports no balance for the address at the synced blocks (see the NOTICE of ethwhale.anchor_balance), or nothing is synced.',
                  HINT = 'A node keeps the state of its recent blocks only: sync up to its head, or use an archive node.';
    END IF;
    SELECT s.remote_schema INTO src FROM ethwhale.sync_state s WHERE s.chain_id = ethwhale.current_chain();
    SELECT coalesce(sum(m.value_wei - m.fee_wei), 0) INTO at_anchor
    FROM ethwhale.address_eth_moves(addr) m WHERE m.block <= anc.block;
    FOR x IN
        WITH active AS (
            SELECT m.block FROM ethwhale.address_eth_moves(addr) m
            UNION SELECT m.block FROM ethwhale.address_token_moves(addr) m
            UNION SELECT s.next_block - 1 FROM ethwhale.sync_state s WHERE s.chain_id = ethwhale.current_chain()
        ),
        tiles AS (
            SELECT a.block, ntile(samples) OVER (ORDER BY a.block) AS t
            FROM active a WHERE a.block <> anc.block
        ),
        picked AS (SELECT max(t.block) AS block FROM tiles t GROUP BY t.t)
        SELECT p.block,
               (anc.balance + coalesce((SELECT sum(m.value_wei - m.fee_wei) FROM ethwhale.address_eth_moves(addr) m
                                        WHERE m.block <= p.block), 0) - at_anchor) AS series,
               (SELECT count(*) FROM ethwhale.address_eth_moves(addr) m
                WHERE m.fee_unknown AND m.block <= p.block) AS unk
        FROM picked p ORDER BY p.block
    LOOP
        block := x.block;
        series_eth := x.series * 1e-18;
        unknown_fees := x.unk;
        bal := NULL;
        note := NULL;
        BEGIN
            EXECUTE format('SELECT balance FROM %I.eth_account WHERE address = $1 AND block = $2', src)
                INTO bal USING addr, x.block;
        EXCEPTION WHEN OTHERS THEN
            note := 'the node has no state at this block: ' || SQLERRM;
        END;
        node_eth := bal * 1e-18;
        gap_eth := (bal - x.series) * 1e-18;
        IF bal IS NULL THEN
            note := coalesce(note, 'the node did not answer for this block');
            n_nostate := n_nostate + 1;
        ELSIF bal = x.series THEN
            n_equal := n_equal + 1;
        ELSE
            n_differ := n_differ + 1;
            note := 'differs: transfers the transaction list does not show'
                    || CASE WHEN x.unk > 0 THEN format(', and the fees of %s transaction(s) whose gas used is unknown', x.unk)
                            ELSE '' END;
            IF worst IS NULL OR abs(gap_eth) > abs(worst) THEN
                worst := gap_eth;
                worst_block := x.block;
            END IF;
        END IF;
        RETURN NEXT;
    END LOOP;
    RAISE NOTICE 'ethwhale.balance_check(%): % block(s) compared with eth_account (anchor: block %): % equal, % differ%, % without state at the node',
        addr, n_equal + n_differ + n_nostate, anc.block, n_equal, n_differ,
        CASE WHEN worst IS NOT NULL THEN format(' (largest gap %s ETH at block %s)', worst, worst_block) ELSE '' END,
        n_nostate
        USING DETAIL = 'The walk has the synced transactions only: internal transfers from contracts, block rewards and tips received as a miner, withdrawals and blob fees are not in the transaction list and show as a gap.';
END
$$;

-- ethwhale.price_correlation_stats(address): how the address's balance
-- moves with the ETH/USD price, over the UTC days of the synced range that
-- have a price on the day and the day before (ethwhale.balance_history by
-- day):
--   r             Pearson correlation of the daily balance change (ETH) with
--                 the daily change of the ETH/USD close: negative for an
--                 address that buys falls and sells rises
--   level_r       Pearson correlation of the end-of-day balance (ETH, anchored)
--                 with the close (NULL without an anchor)
--   points        the number of such days; first_day, last_day: the period
--   method        the method, in words
--   anchor_block, anchor_eth: the balance the series is anchored at
CREATE FUNCTION ethwhale.price_correlation_stats(address text)
RETURNS TABLE (r double precision, level_r double precision, points bigint, first_day date, last_day date,
               moving_days bigint, method text, anchor_block bigint, anchor_eth numeric)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    anc ethwhale.balance_anchor := ethwhale.anchor_balance(address);
BEGIN
    RETURN QUERY
    SELECT corr(h.change_eth, p.price - q.price), corr(h.balance_eth, p.price), count(*),
           min(p.day), max(p.day), count(*) FILTER (WHERE h.change_eth <> 0),
           'Pearson correlation of the daily ETH balance change with the daily change of the ETH/USD close, '
           || 'over the synced UTC days with a price on the day and the day before'::text,
           anc.block, anc.balance * 1e-18
    FROM ethwhale.balance_history(address, '1 day') h
    JOIN ethwhale.eth_usd p ON p.day = (h.period_start AT TIME ZONE 'UTC')::date
    JOIN ethwhale.eth_usd q ON q.day = p.day - 1;
END
$$;

-- ethwhale.price_correlation(address): r of ethwhale.price_correlation_stats,
-- with a NOTICE stating the method, the number of days and the period.
-- NULL, with a NOTICE saying why, when there are fewer than 3 such days or
-- either series is constant.
CREATE FUNCTION ethwhale.price_correlation(address text)
RETURNS double precision
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s record;
BEGIN
    SELECT * INTO s FROM ethwhale.price_correlation_stats(address);
    IF s.points IS NULL OR s.points < 3 THEN
        RAISE NOTICE 'ethwhale.price_correlation(%): only % day(s) with a balance change and a price change (3 needed): the synced range is too short or prices are missing', address, coalesce(s.points, 0);
        RETURN NULL;
    END IF;
    IF s.r IS NULL THEN
        RAISE NOTICE 'ethwhale.price_correlation(%): undefined over % days: % of them change the balance, and the price or the balance never varies', address, s.points, s.moving_days;
        RETURN NULL;
    END IF;
    RAISE NOTICE 'ethwhale.price_correlation(%): r = % over % days, % .. %', address, round(s.r::numeric, 4), s.points, s.first_day, s.last_day
        USING DETAIL = s.method || '.';
    RETURN s.r;
END
$$;
-- ---------------------------------------------------------------- whale candidates, scored and explained

-- ethwhale.exchange_category(category): whether a label category is an
-- exchange's: 'exchange', 'hot-wallet', 'cold-wallet', or one of the
-- exchanges labels.csv files wallets under (the exchange names seeded in
-- ethwhale.excluded_category).  For the exchange share of a candidate's
-- large transfers.
CREATE FUNCTION ethwhale.exchange_category(category text)
RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT lower(category) = ANY (ARRAY[
        'exchange', 'hot-wallet', 'cold-wallet',
        'binance', 'bitfinex', 'bithumb', 'bitstamp', 'bittrex', 'bybit', 'coinbase', 'coinone',
        'crypto-com', 'ftx', 'gate-io', 'gemini', 'huobi', 'kraken', 'kucoin', 'okex', 'okx',
        'poloniex', 'upbit'])
$$;

-- ethwhale.utc_text(t): T as ISO 8601 UTC text, whatever the session's TimeZone.
CREATE FUNCTION ethwhale.utc_text(t timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- One row per chain and address that sent or received a large transfer.
--   score = log10(volume_usd × large_transfers), rounded to 3 digits: a whale
--   moves much and often; NULL when the address is excluded.
--   excluded_reason: a label in ethwhale.excluded_category, a contract
--   (eth_account code size, or created/used as a token in the synced data),
--   or exchange-like (see below).
--   exchange_like: in the synced ETH transactions the address has at least
--   ethwhale.exchange_min_counterparties (1000) distinct counterparties, or
--   at least ethwhale.exchange_min_sweepers (10) deposit-like feeders:
--   addresses that received ETH from others and sent ETH only to it.
--   reasons (jsonb): what the score and rank rest on, and what else tells a
--   whale: the score's formula and inputs, volume, transfers, counterparties,
--   the share of the large transfers to and from labelled exchanges, the
--   ETH balance change over the synced range (received - sent - fees, all
--   synced transactions), the correlation of the daily change with the
--   ETH/USD change (as ethwhale.price_correlation), first and last seen.
--   evidence (jsonb): each exclusion test with its value against its
--   threshold: the label and whether its category is excluded, the contract
--   check (eth_account code size, created by a synced transaction, a token),
--   the counterparties and deposit-like feeders of the exchange-like test.
-- rank: among the chain's addresses not excluded, by volume_usd ×
--   large_transfers (computed when read, so a refresh computes again only
--   the rows of the addresses the new blocks touch).
CREATE TABLE ethwhale.whale_candidate_rows (
    address            text NOT NULL,
    label              text,
    category           text,
    large_transfers    bigint NOT NULL,
    large_sent         bigint NOT NULL,
    large_received     bigint NOT NULL,
    volume_usd         numeric NOT NULL,
    sent_usd           numeric NOT NULL,
    received_usd       numeric NOT NULL,
    first_seen         timestamptz,
    last_seen          timestamptz,
    counterparties     bigint,
    is_contract        bool,
    exchange_like      bool,
    all_counterparties bigint,
    sweepers           bigint,
    excluded_reason    text,
    score              numeric,
    reasons            jsonb,
    evidence           jsonb,
    chain_id           bigint NOT NULL,
    PRIMARY KEY (chain_id, address)
);
COMMENT ON TABLE ethwhale.whale_candidate_rows IS 'the rows of ethwhale.whale_candidates without their rank; CALL ethwhale.refresh()';

-- ethwhale.whale_candidates_of(chain, addrs[, kept]): the rows of the
-- chain's addresses ADDRS (NULL: all) with large transfers, as they are now:
-- counterparties, feeders and daily ETH change drawn from all their synced
-- transactions, or with KEPT from their kept state (ethwhale.candidate_kept:
-- what a refresh does; the first way is what the tests check it against).
CREATE FUNCTION ethwhale.whale_candidates_of(chain bigint, addrs text[], kept bool DEFAULT false)
RETURNS SETOF ethwhale.whale_candidate_rows
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
-- the CTEs' row estimates are defaults (200): with them the planner merged
-- the addresses' price days with their daily changes on the day alone and
-- read the daily rows again for every address (21 million rows for 2,656
-- addresses, 4.3 s of a 5 s computation; measured).  Hash joins do not
-- depend on the order of the rows.
SET enable_mergejoin = off
AS $$
-- (ADDRS as a set: x = ANY (addrs) would search the array for every row)
WITH wanted AS (SELECT a.address FROM unnest(addrs) a(address)),
sides AS (
    SELECT from_address AS address, to_address AS counterparty, value_usd, block_time, true AS sent,
           ethwhale.exchange_category(to_category) AS cp_exchange
    FROM ethwhale.large_transfers
    WHERE chain_id = chain AND (addrs IS NULL OR from_address IN (SELECT address FROM wanted))
    UNION ALL
    SELECT to_address, from_address, value_usd, block_time, false, ethwhale.exchange_category(from_category)
    FROM ethwhale.large_transfers
    WHERE chain_id = chain AND (addrs IS NULL OR to_address IN (SELECT address FROM wanted))
),
agg AS (
    SELECT address,
           count(*) AS large_transfers,
           count(*) FILTER (WHERE sent) AS large_sent,
           count(*) FILTER (WHERE NOT sent) AS large_received,
           sum(value_usd) AS volume_usd,
           coalesce(sum(value_usd) FILTER (WHERE sent), 0) AS sent_usd,
           coalesce(sum(value_usd) FILTER (WHERE NOT sent), 0) AS received_usd,
           min(block_time) AS first_seen,
           max(block_time) AS last_seen,
           count(DISTINCT counterparty) AS counterparties,
           coalesce(sum(value_usd) FILTER (WHERE sent AND cp_exchange), 0) AS to_exchanges_usd,
           coalesce(sum(value_usd) FILTER (WHERE NOT sent AND cp_exchange), 0) AS from_exchanges_usd,
           count(*) FILTER (WHERE cp_exchange) AS exchange_transfers
    FROM sides
    GROUP BY address
),
created AS (
    SELECT DISTINCT t.created_contract AS address
    FROM ethwhale.txs t
    WHERE t.chain_id = chain AND t.created_contract IN (SELECT address FROM agg)
      AND coalesce(t.status, 1) <> 0
),
edges AS (
    SELECT t.from_address AS address, t.to_address AS x
    FROM ethwhale.txs t WHERE t.chain_id = chain AND t.from_address IN (SELECT address FROM agg)
    UNION ALL
    SELECT t.to_address, t.from_address
    FROM ethwhale.txs t WHERE t.chain_id = chain AND t.to_address IN (SELECT address FROM agg)
),
kept_counts AS (
    SELECT k.address, k.counterparties AS n, k.sweepers
    FROM ethwhale.candidate_kept k
    WHERE kept AND k.chain_id = chain AND k.address IN (SELECT address FROM agg)
),
cp AS (
    SELECT address, count(DISTINCT x) AS n FROM edges WHERE NOT kept AND x <> address GROUP BY address
    UNION ALL
    SELECT address, n FROM kept_counts
),
feeders AS (
    SELECT DISTINCT t.to_address AS address, t.from_address AS d
    FROM ethwhale.txs t
    WHERE t.chain_id = chain AND t.to_address IN (SELECT address FROM agg) AND t.from_address <> t.to_address
),
sw AS (
    SELECT f.address, count(*) AS n
    FROM feeders f
    WHERE NOT kept AND NOT EXISTS (SELECT 1 FROM ethwhale.txs o
                      WHERE o.chain_id = chain AND o.from_address = f.d
                        AND o.to_address IS DISTINCT FROM f.address)
      AND EXISTS (SELECT 1 FROM ethwhale.txs i
                  WHERE i.chain_id = chain AND i.to_address = f.d AND i.from_address <> f.address)
    GROUP BY f.address
    UNION ALL
    SELECT address, sweepers FROM kept_counts
),
-- the ETH change of each address per UTC day, from all its synced transactions
-- (what ethwhale.address_eth_moves gives per address, set-based here: sent
-- value and fees, received value, value into the contract it was created as)
daily AS (
    SELECT d.address, d.day, d.wei
    FROM ethwhale.candidate_daily d
    WHERE kept AND d.chain_id = chain AND d.address IN (SELECT address FROM agg)
    UNION ALL
    SELECT x.address, x.day, sum(x.wei) AS wei
    FROM (SELECT t.from_address AS address, (t.block_time AT TIME ZONE 'UTC')::date AS day,
                 - CASE WHEN coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
                 - coalesce(t.gas_used * t.gas_price, 0) AS wei
          FROM ethwhale.txs t WHERE t.chain_id = chain AND t.from_address IN (SELECT address FROM agg)
          UNION ALL
          SELECT t.to_address, (t.block_time AT TIME ZONE 'UTC')::date,
                 CASE WHEN coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
          FROM ethwhale.txs t WHERE t.chain_id = chain AND t.to_address IN (SELECT address FROM agg)
          UNION ALL
          SELECT t.created_contract, (t.block_time AT TIME ZONE 'UTC')::date,
                 CASE WHEN coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
          FROM ethwhale.txs t
          WHERE t.chain_id = chain AND t.to_address IS NULL
            AND t.created_contract IN (SELECT address FROM agg)) x
    WHERE NOT kept
    GROUP BY 1, 2
),
-- the synced UTC days with an ETH/USD close on the day and the day before
price_days AS (
    SELECT p.day, p.price - q.price AS change
    FROM ethwhale.eth_usd p JOIN ethwhale.eth_usd q ON q.day = p.day - 1
    WHERE p.day BETWEEN (SELECT (min(b."timestamp") AT TIME ZONE 'UTC')::date FROM ethwhale.blocks b
                         WHERE b.chain_id = chain)
                    AND (SELECT (max(b."timestamp") AT TIME ZONE 'UTC')::date FROM ethwhale.blocks b
                         WHERE b.chain_id = chain)
),
chg AS (
    SELECT d.address, sum(d.wei) * 1e-18 AS change_eth FROM daily d GROUP BY d.address
),
pc AS (
    SELECT a.address, corr(coalesce(d.wei, 0) * 1e-18, pd.change) AS r, count(*) AS points,
           min(pd.day) AS first_day, max(pd.day) AS last_day
    FROM agg a CROSS JOIN price_days pd
    LEFT JOIN daily d ON d.address = a.address AND d.day = pd.day
    GROUP BY a.address
),
flags AS (
    SELECT a.*,
           l.label, l.category,
           CASE WHEN i.is_contract OR tk.address IS NOT NULL OR cr.address IS NOT NULL THEN true
                ELSE i.is_contract END AS is_contract,
           i.code_size, i.address IS NOT NULL AS looked_up,
           tk.address IS NOT NULL AS is_token, cr.address IS NOT NULL AS was_created,
           coalesce(cp.n, 0) AS all_counterparties,
           coalesce(sw.n, 0) AS sweepers,
           chg.change_eth,
           jsonb_build_object('r', pc.r, 'points', coalesce(pc.points, 0),
                              'first_day', pc.first_day, 'last_day', pc.last_day) AS corr
    FROM agg a
    LEFT JOIN ethwhale.address_label l ON l.address = a.address
    LEFT JOIN ethwhale.address_info i ON i.chain_id = chain AND i.address = a.address
    LEFT JOIN ethwhale.token tk ON tk.address = a.address
    LEFT JOIN created cr ON cr.address = a.address
    LEFT JOIN cp ON cp.address = a.address
    LEFT JOIN sw ON sw.address = a.address
    LEFT JOIN chg ON chg.address = a.address
    LEFT JOIN pc ON pc.address = a.address
),
-- the settings once, not for every row
settings AS MATERIALIZED (
    SELECT ethwhale.int_setting('ethwhale.exchange_min_counterparties', 1000, 1, 1000000000) AS min_cp,
           ethwhale.int_setting('ethwhale.exchange_min_sweepers', 10, 1, 1000000000) AS min_sw
),
judged AS (
    SELECT f.*, st.min_cp, st.min_sw,
           f.category IN (SELECT category FROM ethwhale.excluded_category) AS category_excluded
    FROM flags f CROSS JOIN settings st
),
excluded AS (
    SELECT j.*,
           (j.all_counterparties >= j.min_cp OR j.sweepers >= j.min_sw) AS exchange_like,
           CASE WHEN j.category_excluded
                    THEN 'labelled ' || j.category
                WHEN j.is_contract THEN 'contract'
                WHEN j.all_counterparties >= j.min_cp OR j.sweepers >= j.min_sw
                    THEN format('exchange-like (%s counterparties, %s deposit-like feeders)',
                                j.all_counterparties, j.sweepers)
           END AS excluded_reason
    FROM judged j
),
scored AS (
    SELECT e.*,
           -- NULL too for a volume of $0.00 (transfers worth less than a
           -- cent at a threshold below it): log10(0) is not a number
           CASE WHEN e.excluded_reason IS NULL AND e.volume_usd > 0
                THEN round(log(e.volume_usd * e.large_transfers), 3) END AS score
    FROM excluded e
)
SELECT s.address, s.label, s.category,
       s.large_transfers, s.large_sent, s.large_received,
       s.volume_usd, s.sent_usd, s.received_usd,
       s.first_seen, s.last_seen, s.counterparties,
       s.is_contract, s.exchange_like, s.all_counterparties, s.sweepers,
       s.excluded_reason, s.score,
       jsonb_build_object(
           'score', jsonb_build_object('formula', 'log10(volume_usd * large_transfers)',
                                      'volume_usd', s.volume_usd, 'large_transfers', s.large_transfers,
                                      'product', s.volume_usd * s.large_transfers, 'score', s.score),
           'volume_usd', s.volume_usd, 'sent_usd', s.sent_usd, 'received_usd', s.received_usd,
           'large_transfers', s.large_transfers, 'large_sent', s.large_sent,
           'large_received', s.large_received, 'counterparties', s.counterparties,
           'exchanges', jsonb_build_object('to_usd', s.to_exchanges_usd, 'from_usd', s.from_exchanges_usd,
                                           'transfers', s.exchange_transfers,
                                           'share', round((s.to_exchanges_usd + s.from_exchanges_usd)
                                                          / nullif(s.volume_usd, 0), 4)),
           'balance_change_eth', coalesce(s.change_eth, 0),
           'price_correlation', s.corr || jsonb_build_object(
               'method', 'Pearson correlation of the daily ETH balance change with the daily change of the '
                         || 'ETH/USD close, over the synced UTC days with a price on the day and the day before'),
           'first_seen', ethwhale.utc_text(s.first_seen), 'last_seen', ethwhale.utc_text(s.last_seen)
       ) AS reasons,
       jsonb_build_object(
           'excluded', s.excluded_reason IS NOT NULL, 'reason', s.excluded_reason,
           'label', jsonb_build_object('label', s.label, 'category', s.category,
                                       'category_excluded', coalesce(s.category_excluded, false)),
           'contract', jsonb_build_object(
               'is_contract', s.is_contract, 'code_size', s.code_size,
               'looked_up_with_eth_account', s.looked_up,
               'created_by_a_synced_transaction', s.was_created, 'token_in_ethwhale_token', s.is_token),
           'exchange_like', jsonb_build_object(
               'exchange_like', s.exchange_like,
               'counterparties', s.all_counterparties, 'min_counterparties', s.min_cp,
               'deposit_like_feeders', s.sweepers, 'min_deposit_like_feeders', s.min_sw)
       ) AS evidence,
       chain AS chain_id
FROM scored s
WHERE addrs IS NULL OR s.address IN (SELECT address FROM wanted)
$$;

CREATE VIEW ethwhale.whale_candidates AS
SELECT x.address, x.label, x.category, x.large_transfers, x.large_sent, x.large_received,
       x.volume_usd, x.sent_usd, x.received_usd, x.first_seen, x.last_seen, x.counterparties,
       x.is_contract, x.exchange_like, x.all_counterparties, x.sweepers, x.excluded_reason,
       x.score, x.rank,
       jsonb_set(x.reasons, '{score,rank}', coalesce(to_jsonb(x.rank), 'null'::jsonb)) AS reasons,
       x.evidence, x.chain_id
FROM (SELECT r.*,
             CASE WHEN r.excluded_reason IS NULL THEN
                  rank() OVER (PARTITION BY r.chain_id, r.excluded_reason IS NULL
                               ORDER BY r.volume_usd * r.large_transfers DESC)
             END AS rank
      FROM ethwhale.whale_candidate_rows r) x;
COMMENT ON VIEW ethwhale.whale_candidates IS
    'addresses with large transfers, per chain, scored; exchanges, bridges and contracts flagged in excluded_reason; reasons and evidence explain both';

-- ethwhale.candidates_among(chain, addrs): those of the chain's addresses
-- ADDRS with a large transfer (a row in ethwhale.whale_candidates), by two
-- index probes each: a cost in proportion to ADDRS, not to the large
-- transfers.  The planner cannot be left to choose: when a few addresses
-- make most of the large transfers (on the bench chain six senders; on
-- mainnet, exchanges) it expects thousands of rows for any sender and reads
-- the whole table for each address until the first, by a sequential scan
-- or, with those off, by the block index on (chain_id, ...): 4.8 to 16 ms a
-- probe, 13 to 43 s for 2,656 addresses, measured.  So sequential and
-- bitmap scans are off (a bitmap scan reads every transfer of an address
-- before the first) and the chain is tested as chain_id + 0, which no index
-- serves: the address indexes are the only way in, and a probe stops at the
-- first row.  (0.5 asked is_candidate for each address, whose generic plan
-- scanned the table.)
CREATE FUNCTION ethwhale.candidates_among(chain bigint, addrs text[])
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
    SELECT u.a FROM unnest(addrs) u(a)
    WHERE EXISTS (SELECT 1 FROM ethwhale.large_transfer_rows r
                  WHERE r.from_address = u.a AND r.chain_id + 0 = chain)
       OR EXISTS (SELECT 1 FROM ethwhale.large_transfer_rows r
                  WHERE r.to_address = u.a AND r.chain_id + 0 = chain)
$$;

-- ethwhale.refresh_candidates(chain): compute again the candidate rows of
-- the addresses in view_dirty (every row of the chain when view_state says
-- all are dirty) from their kept state.  The candidates among them without
-- one draw it from their history first; the addresses among them that are
-- no longer candidates lose theirs.  (The kept state rests on the synced
-- transactions only, not on prices, labels or settings: a change of those
-- computes every row again from it.)  Returns how many addresses it
-- computed.
CREATE FUNCTION ethwhale.refresh_candidates(chain bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- its statements' estimates are far above jit_above_cost: compiling them took
-- 3 s of a 4.5 s refresh (measured)
SET jit = off
AS $$
DECLARE
    vs ethwhale.view_state;
    todo text[];
    cands text[];
    gone text[];
    n bigint;
BEGIN
    SELECT * INTO vs FROM ethwhale.view_state v WHERE v.chain_id = chain FOR UPDATE;
    IF vs.chain_id IS NULL THEN
        RETURN 0;
    END IF;
    IF vs.all_dirty THEN
        SELECT coalesce(array_agg(DISTINCT a), '{}') INTO cands
        FROM ethwhale.large_transfer_rows r CROSS JOIN LATERAL (VALUES (r.from_address), (r.to_address)) v(a)
        WHERE r.chain_id = chain;
        gone := ARRAY(SELECT k.address FROM ethwhale.candidate_kept k WHERE k.chain_id = chain
                      EXCEPT SELECT unnest(cands));
    ELSE
        SELECT coalesce(array_agg(d.address), '{}') INTO todo FROM ethwhale.view_dirty d WHERE d.chain_id = chain;
        cands := ARRAY(SELECT ethwhale.candidates_among(chain, todo));
        gone := ARRAY(SELECT unnest(todo) EXCEPT SELECT unnest(cands));
    END IF;
    PERFORM ethwhale.candidates_drop(chain, gone);
    PERFORM ethwhale.candidates_keep(chain, cands, vs.through_block);
    IF vs.all_dirty THEN
        DELETE FROM ethwhale.whale_candidate_rows r WHERE r.chain_id = chain;
        INSERT INTO ethwhale.whale_candidate_rows SELECT * FROM ethwhale.whale_candidates_of(chain, NULL, true);
        GET DIAGNOSTICS n = ROW_COUNT;
    ELSE
        -- (a join: r.address = ANY (todo) would search the array for every row)
        DELETE FROM ethwhale.whale_candidate_rows r USING unnest(todo) u(address)
         WHERE r.chain_id = chain AND r.address = u.address;
        INSERT INTO ethwhale.whale_candidate_rows SELECT * FROM ethwhale.whale_candidates_of(chain, todo, true);
        n := cardinality(todo);
    END IF;
    DELETE FROM ethwhale.view_dirty d WHERE d.chain_id = chain;
    UPDATE ethwhale.view_state v
       SET all_dirty = false, refreshed_at = clock_timestamp(), last_addresses = n,
           last_full = vs.all_dirty,
           last_full_at = CASE WHEN vs.all_dirty THEN clock_timestamp() ELSE v.last_full_at END
     WHERE v.chain_id = chain;
    RETURN n;
END
$$;
-- ---------------------------------------------------------------- refresh

-- ethwhale.check_contracts(server, chain): look up eth_account (code size)
-- through SERVER for the addresses of the chain's large transfers not yet
-- in ethwhale.address_info, 500 per request, and mark them for the next
-- candidate refresh.  Returns how many were looked up (0 when the wrapper
-- has no eth_account table).
CREATE FUNCTION ethwhale.check_contracts(server name, chain bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src name := ethwhale.remote_schema(server);
    todo text[];
    n bigint := 0;
BEGIN
    IF to_regclass(format('%I.eth_account', src)) IS NULL THEN
        RAISE NOTICE 'ethwhale: this build of the wrapper has no eth_account; contracts are recognised from the synced data only';
        RETURN 0;
    END IF;
    LOOP
        SELECT array_agg(a) INTO todo FROM (
            SELECT DISTINCT a FROM (
                SELECT from_address AS a FROM ethwhale.large_transfer_rows r WHERE r.chain_id = chain
                UNION SELECT to_address FROM ethwhale.large_transfer_rows r WHERE r.chain_id = chain) u
            WHERE NOT EXISTS (SELECT 1 FROM ethwhale.address_info i WHERE i.chain_id = chain AND i.address = u.a)
            ORDER BY a LIMIT 500) s;
        EXIT WHEN todo IS NULL;
        EXECUTE format('INSERT INTO ethwhale.address_info (chain_id, address, code_size, is_contract)
                        SELECT $2, address, code_size, is_contract FROM %I.eth_account WHERE address = ANY($1)
                        ON CONFLICT (chain_id, address) DO NOTHING', src)
            USING todo, chain;
        -- Addresses the node did not answer for: remember them as unknown.
        INSERT INTO ethwhale.address_info (chain_id, address, code_size, is_contract)
        SELECT chain, t, NULL, NULL FROM unnest(todo) t
        ON CONFLICT (chain_id, address) DO NOTHING;
        INSERT INTO ethwhale.view_dirty (chain_id, address)
        SELECT chain, t FROM unnest(todo) t
        ON CONFLICT DO NOTHING;
        n := n + cardinality(todo);
    END LOOP;
    RETURN n;
END
$$;

-- The body of ethwhale.refresh(); see ethwhale.sync_run for MAY_COMMIT.
-- Each chain in its own transactions: sync, large transfers, contract
-- look-ups, candidates.
CREATE PROCEDURE ethwhale.refresh_run(server name, may_commit bool)
LANGUAGE plpgsql
AS $$
DECLARE
    srv pg_catalog.name;
    chain bigint;
BEGIN
    FOR srv IN SELECT DISTINCT s.server FROM ethwhale.sync_state s WHERE refresh_run.server IS NULL
               UNION SELECT refresh_run.server WHERE refresh_run.server IS NOT NULL
               UNION SELECT 'geth' WHERE refresh_run.server IS NULL
                                     AND NOT EXISTS (SELECT 1 FROM ethwhale.sync_state)
               ORDER BY 1 LOOP
        CALL ethwhale.sync_run(srv, NULL, NULL, may_commit);
        -- the chain the server's node serves now (not one it served before)
        FOR chain IN SELECT ethwhale.node_chain_id(srv) LOOP
            PERFORM ethwhale.refresh_large_transfers(chain);
            IF may_commit THEN
                COMMIT;
            END IF;
            PERFORM ethwhale.check_contracts(srv, chain);
            PERFORM ethwhale.refresh_candidates(chain);
            IF may_commit THEN
                COMMIT;
            END IF;
        END LOOP;
    END LOOP;
END
$$;

-- ethwhale.refresh_views([chain]): bring ethwhale.large_transfers and
-- ethwhale.whale_candidates of CHAIN (every synced chain when NULL) up to
-- date with the local tables, without syncing or asking the node (the
-- contract look-ups are CALL ethwhale.refresh()'s).  In one transaction.
-- Returns how many candidate rows it computed.
CREATE FUNCTION ethwhale.refresh_views(chain bigint DEFAULT NULL)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(sum(x.n), 0)::bigint
    FROM (SELECT s.chain_id, ethwhale.refresh_large_transfers(s.chain_id) AS full_rebuild
          FROM ethwhale.sync_state s
          WHERE refresh_views.chain IS NULL OR s.chain_id = refresh_views.chain
          ORDER BY s.chain_id) c
    CROSS JOIN LATERAL (SELECT ethwhale.refresh_candidates(c.chain_id) AS n) x
$$;

-- CALL ethwhale.refresh([server]): sync SERVER (every server of
-- ethwhale.sync_state when NULL, else 'geth') up to head - confirmations,
-- then bring its chain's large_transfers and whale_candidates up to date
-- from the new blocks, looking up contracts among the new addresses.
-- Readers see the views of the last refresh until each step commits.
CREATE PROCEDURE ethwhale.refresh(server name DEFAULT NULL)
LANGUAGE plpgsql
AS $$
BEGIN
    CALL ethwhale.refresh_run(server, ethwhale.own_transaction());
END
$$;

-- pg_cron, or a clear error saying how to get it.  No SET search_path here:
-- CREATE EXTENSION pg_cron puts the extension in the caller's current schema,
-- as it did before; every name is qualified instead.
CREATE FUNCTION ethwhale.require_pg_cron()
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    crondb text := pg_catalog.current_setting('cron.database_name', true);
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = 'pg_cron') THEN
        RAISE EXCEPTION 'ethwhale.schedule_refresh needs pg_cron, which is not installed on this server'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Install it (Debian: apt-get install postgresql-15-cron), set shared_preload_libraries = ''pg_cron'' and cron.database_name = ''' || pg_catalog.current_database() || ''' in postgresql.conf, restart PostgreSQL, then CREATE EXTENSION pg_cron;';
    END IF;
    IF crondb IS NULL THEN
        RAISE EXCEPTION 'ethwhale.schedule_refresh needs pg_cron, which is installed but not loaded'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Set shared_preload_libraries = ''pg_cron'' and cron.database_name = ''' || pg_catalog.current_database() || ''' in postgresql.conf, restart PostgreSQL, then CREATE EXTENSION pg_cron;';
    END IF;
    IF crondb <> pg_catalog.current_database() THEN
        RAISE EXCEPTION 'pg_cron runs its jobs from database "%", not "%"', crondb, pg_catalog.current_database()
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Use ethwhale in database ' || pg_catalog.quote_ident(crondb) || ', or set cron.database_name = ''' || pg_catalog.current_database() || ''' and restart PostgreSQL.';
    END IF;
    CREATE EXTENSION pg_cron;
END
$$;

-- ethwhale.refresh_job_name(server): the pg_cron job of a schedule:
-- "ethwhale_refresh" for every server (SERVER NULL), else
-- "ethwhale_refresh_<server>", so each chain's server has its own.
CREATE FUNCTION ethwhale.refresh_job_name(server name)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'ethwhale_refresh' || coalesce('_' || server, '')
$$;

-- ethwhale.schedule_refresh(cron [, server]): a pg_cron job (named by
-- ethwhale.refresh_job_name) running CALL ethwhale.refresh(...) on the
-- cron schedule (replacing that job's earlier schedule).  Returns the job id.
CREATE FUNCTION ethwhale.schedule_refresh(cron text DEFAULT '*/10 * * * *', server name DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id bigint;
BEGIN
    PERFORM ethwhale.require_pg_cron();
    EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO id
        USING ethwhale.refresh_job_name(server), cron,
              CASE WHEN server IS NULL THEN 'CALL ethwhale.refresh()'
                   ELSE format('CALL ethwhale.refresh(%L)', server) END;
    RETURN id;
END
$$;

-- ethwhale.unschedule_refresh([server]): remove the job of
-- schedule_refresh(…, server); false when there was none.
CREATE FUNCTION ethwhale.unschedule_refresh(server name DEFAULT NULL)
RETURNS bool
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_job bool;
    job text := ethwhale.refresh_job_name(server);
BEGIN
    PERFORM ethwhale.require_pg_cron();
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1)' INTO found_job USING job;
    IF NOT found_job THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT cron.unschedule($1)' INTO found_job USING job;
    RETURN found_job;
END
$$;

-- ===========================================================================
-- end of: Sync and whale analytics (issue 5)
-- ===========================================================================
-- ---------------------------------------------------------------- the HTML report (issue 17)
--
-- ethwhale.report_html(addresses) is one self-contained HTML page (no
-- script, no external resource: a Content-Security-Policy of
-- default-src 'none' keeps the browser from fetching anything): per address
-- its balance in ETH against the ETH/USD price, its value in USD (ETH and
-- priced tokens), its large transfers' counterparties by label, its largest
-- transfers, the reasons of its score and the evidence of the exclusion
-- tests, and the check of the balance against eth_account.  The charts are
-- plain SVG written here; every series is a <polyline class="series"
-- data-series="..."> whose points the plot's data-* attributes map back to
-- values.  scripts/report writes the pages.  See README.md, "Report".

-- ethwhale.html(t): T with &, <, >, " and ' escaped for HTML text and attributes.
CREATE FUNCTION ethwhale.html(t text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT replace(replace(replace(replace(replace(coalesce(t, ''), '&', '&amp;'), '<', '&lt;'),
                                   '>', '&gt;'), '"', '&quot;'), '''', '&#39;')
$$;

-- ethwhale.report_num(v, digits): V with thousands separators and DIGITS
-- decimals; compact (k, M, B) when DIGITS is NULL.  '–' for NULL.
CREATE FUNCTION ethwhale.report_num(v numeric, digits int DEFAULT 2)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE
        WHEN v IS NULL THEN '–'
        WHEN digits IS NULL AND abs(v) >= 1e9 THEN to_char(v / 1e9, 'FM999,999,990.0') || 'B'
        WHEN digits IS NULL AND abs(v) >= 1e6 THEN to_char(v / 1e6, 'FM990.0') || 'M'
        WHEN digits IS NULL AND abs(v) >= 1e4 THEN to_char(v / 1e3, 'FM990.0') || 'k'
        WHEN digits IS NULL THEN rtrim(to_char(v, 'FM9,990.99'), '.')
        WHEN digits = 0 THEN trim(to_char(round(v), 'FM999,999,999,999,999,999,990'))
        ELSE trim(to_char(round(v, digits), 'FM999,999,999,999,999,999,990.' || repeat('0', digits)))
    END
$$;

-- ethwhale.report_line_chart(id, title, t, series): an SVG line chart of
-- the SERIES over the times T: a jsonb array of {key, label, color, axis
-- ('left' or 'right'), unit, values} with one value (or null) per time.
-- Each axis is scaled to its own series.  The plot (<g class="plot">)
-- carries its pixel box (data-x0/x1/y0/y1), the time range (data-t-min,
-- data-t-max, epoch seconds) and each axis's value range
-- (data-left-min/max, data-right-min/max): value = min + (y1 - y) / (y1 -
-- y0) * (max - min).  Points are circles with a <title> (a tooltip).
CREATE FUNCTION ethwhale.report_line_chart(id text, title text, t timestamptz[], series jsonb)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w int := 900; h int := 300;
    x0 numeric := 90; x1 numeric := 810; y0 numeric := 36; y1 numeric := 250;
    tmin numeric; tmax numeric;
    lmin numeric; lmax numeric; rmin numeric; rmax numeric;
    s jsonb;
    ax text;
    i int;
    v numeric;
    px numeric; py numeric;
    pts text;
    dots text;
    n int;
    lo numeric; hi numeric; pad numeric;
    out text;
    legend text := '';
    lx int := 90;
    has_right bool := false;
    span interval;
    tfmt text;
BEGIN
    IF t IS NULL OR cardinality(t) = 0 THEN
        RETURN format('<p class="empty">%s: nothing synced</p>', ethwhale.html(title));
    END IF;
    tmin := extract(epoch FROM t[1]);
    tmax := extract(epoch FROM t[cardinality(t)]);
    IF tmax <= tmin THEN
        tmin := tmin - 1800; tmax := tmax + 1800;
    END IF;
    span := t[cardinality(t)] - t[1];
    tfmt := CASE WHEN span <= interval '2 days' THEN 'MM-DD HH24:MI' ELSE 'YYYY-MM-DD' END;
    -- the value range of each axis, 5 % added above and below
    FOR ax IN SELECT unnest(ARRAY['left', 'right']) LOOP
        SELECT min(e::numeric), max(e::numeric) INTO lo, hi
        FROM jsonb_array_elements(series) x(s), jsonb_array_elements_text(x.s -> 'values') e
        WHERE coalesce(x.s ->> 'axis', 'left') = ax AND e IS NOT NULL;
        IF lo IS NOT NULL THEN
            pad := CASE WHEN hi = lo THEN greatest(abs(lo) * 0.05, 1) ELSE (hi - lo) * 0.05 END;
            lo := lo - pad;
            hi := hi + pad;
        END IF;
        IF ax = 'left' THEN lmin := lo; lmax := hi; ELSE rmin := lo; rmax := hi; has_right := lo IS NOT NULL; END IF;
    END LOOP;
    out := format('<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="%s" viewBox="0 0 %s %s" width="%s" height="%s" role="img" aria-label="%s">',
                  ethwhale.html(id), w, h, w, h, ethwhale.html(title))
        || format('<text class="title" x="%s" y="20">%s</text>', x0, ethwhale.html(title))
        || format('<g class="plot" data-x0="%s" data-x1="%s" data-y0="%s" data-y1="%s" data-t-min="%s" data-t-max="%s" data-left-min="%s" data-left-max="%s" data-right-min="%s" data-right-max="%s">',
                  x0, x1, y0, y1, tmin, tmax, coalesce(lmin::text, ''), coalesce(lmax::text, ''),
                  coalesce(rmin::text, ''), coalesce(rmax::text, ''))
        || format('<rect class="frame" x="%s" y="%s" width="%s" height="%s"/>', x0, y0, x1 - x0, y1 - y0);
    -- grid and axis labels: 5 steps on each axis, 5 on the time axis
    FOR i IN 0..4 LOOP
        py := round(y1 - (y1 - y0) * i / 4, 2);
        out := out || format('<line class="grid" x1="%s" x2="%s" y1="%s" y2="%s"/>', x0, x1, py, py);
        IF lmin IS NOT NULL THEN
            out := out || format('<text class="tick left" x="%s" y="%s">%s</text>', x0 - 6, py + 4,
                                 ethwhale.report_num(lmin + (lmax - lmin) * i / 4, NULL));
        END IF;
        IF has_right THEN
            out := out || format('<text class="tick right" x="%s" y="%s">%s</text>', x1 + 6, py + 4,
                                 ethwhale.report_num(rmin + (rmax - rmin) * i / 4, NULL));
        END IF;
        px := round(x0 + (x1 - x0) * i / 4, 2);
        out := out || format('<text class="tick time" x="%s" y="%s">%s</text>', px, y1 + 18,
                             to_char(to_timestamp(tmin + (tmax - tmin) * i / 4) AT TIME ZONE 'UTC', tfmt));
    END LOOP;
    out := out || format('<text class="axis-unit left" x="%s" y="%s">%s</text>', 8, y0 - 10,
                         ethwhale.html((SELECT string_agg(DISTINCT x.s ->> 'unit', ', ') FROM jsonb_array_elements(series) x(s)
                                        WHERE coalesce(x.s ->> 'axis', 'left') = 'left')));
    IF has_right THEN
        out := out || format('<text class="axis-unit right" x="%s" y="%s">%s</text>', x1 + 6, y0 - 10,
                             ethwhale.html((SELECT string_agg(DISTINCT x.s ->> 'unit', ', ') FROM jsonb_array_elements(series) x(s)
                                            WHERE x.s ->> 'axis' = 'right')));
    END IF;
    out := out || format('<text class="axis-unit time" x="%s" y="%s">UTC</text>', x1, y1 + 34);
    FOR s IN SELECT x.s FROM jsonb_array_elements(series) x(s) LOOP
        ax := coalesce(s ->> 'axis', 'left');
        lo := CASE ax WHEN 'left' THEN lmin ELSE rmin END;
        hi := CASE ax WHEN 'left' THEN lmax ELSE rmax END;
        pts := ''; dots := ''; n := 0;
        FOR i IN 1..cardinality(t) LOOP
            v := (s -> 'values' ->> (i - 1))::numeric;
            CONTINUE WHEN v IS NULL OR lo IS NULL;
            px := round(x0 + (x1 - x0) * (extract(epoch FROM t[i]) - tmin) / (tmax - tmin), 2);
            py := round(y1 - (y1 - y0) * (v - lo) / (hi - lo), 2);
            pts := pts || CASE WHEN n > 0 THEN ' ' ELSE '' END || px || ',' || py;
            IF cardinality(t) <= 120 THEN
                dots := dots || format('<circle class="point" cx="%s" cy="%s" r="2.5"><title>%s UTC: %s %s</title></circle>',
                                       px, py, to_char(t[i] AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                                       ethwhale.report_num(v, 2), ethwhale.html(s ->> 'unit'));
            END IF;
            n := n + 1;
        END LOOP;
        CONTINUE WHEN n = 0;
        out := out || format('<g class="series-group" data-series="%s" style="color:%s">', ethwhale.html(s ->> 'key'),
                             ethwhale.html(s ->> 'color'))
            || format('<polyline class="series" data-series="%s" data-axis="%s" data-points="%s" points="%s" fill="none" stroke="%s" stroke-width="2"/>',
                      ethwhale.html(s ->> 'key'), ax, n, pts, ethwhale.html(s ->> 'color'))
            || dots || '</g>';
        legend := legend || format('<g class="legend" data-series="%s"><rect x="%s" y="%s" width="14" height="4" fill="%s"/><text x="%s" y="%s">%s</text></g>',
                                   ethwhale.html(s ->> 'key'), lx, h - 12, ethwhale.html(s ->> 'color'), lx + 18, h - 7,
                                   ethwhale.html(s ->> 'label'));
        lx := lx + 30 + 7 * length(s ->> 'label');
    END LOOP;
    RETURN out || '</g>' || legend || '</svg>';
END
$$;

-- ethwhale.report_bar_chart(id, title, labels, values, unit): horizontal
-- bars, one <rect class="bar" data-label="..." data-value="..."> per label.
CREATE FUNCTION ethwhale.report_bar_chart(id text, title text, labels text[], vals numeric[], unit text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    w int := 900;
    bar_h int := 22;
    x0 int := 260; x1 int := 780;
    top int := 36;
    h int;
    vmax numeric;
    i int;
    bw numeric;
    out text;
BEGIN
    IF labels IS NULL OR cardinality(labels) = 0 THEN
        RETURN format('<p class="empty">%s: none</p>', ethwhale.html(title));
    END IF;
    h := top + cardinality(labels) * (bar_h + 6) + 10;
    SELECT max(v) INTO vmax FROM unnest(vals) v;
    out := format('<svg xmlns="http://www.w3.org/2000/svg" class="chart bars" id="%s" viewBox="0 0 %s %s" width="%s" height="%s" role="img" aria-label="%s">',
                  ethwhale.html(id), w, h, w, h, ethwhale.html(title))
        || format('<text class="title" x="10" y="20">%s</text>', ethwhale.html(title));
    FOR i IN 1..cardinality(labels) LOOP
        bw := round((x1 - x0) * vals[i] / nullif(vmax, 0), 2);
        out := out
            || format('<text class="bar-label" x="%s" y="%s">%s</text>', x0 - 8, top + (i - 1) * (bar_h + 6) + 15,
                      ethwhale.html(left(labels[i], 40)))
            || format('<rect class="bar" data-label="%s" data-value="%s" x="%s" y="%s" width="%s" height="%s"><title>%s: %s %s</title></rect>',
                      ethwhale.html(labels[i]), vals[i], x0, top + (i - 1) * (bar_h + 6), coalesce(bw, 0), bar_h,
                      ethwhale.html(labels[i]), ethwhale.report_num(vals[i], 2), ethwhale.html(unit))
            || format('<text class="bar-value" x="%s" y="%s">%s %s</text>', x0 + coalesce(bw, 0) + 6,
                      top + (i - 1) * (bar_h + 6) + 15, ethwhale.report_num(vals[i], NULL), ethwhale.html(unit));
    END LOOP;
    RETURN out || '</svg>';
END
$$;

-- ethwhale.report_step(): the step of the report's charts: the smallest of
-- 5 minutes .. 7 days that cuts the synced range into at most 150 periods.
CREATE FUNCTION ethwhale.report_step()
RETURNS interval
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce((SELECT s FROM unnest(ARRAY['5 minutes', '10 minutes', '30 minutes', '1 hour', '3 hours',
                                                 '6 hours', '12 hours', '1 day', '7 days']::interval[]) s
                     WHERE extract(epoch FROM (SELECT max("timestamp") - min("timestamp") FROM ethwhale.blocks b
                                                WHERE b.chain_id = ethwhale.current_chain()))
                           <= 150 * extract(epoch FROM s)
                     ORDER BY s LIMIT 1), interval '7 days')
$$;

-- ethwhale.report_section(address, step): the part of the report about ADDRESS.
CREATE FUNCTION ethwhale.report_section(address text, step interval)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    addr text := lower(address);
    c ethwhale.whale_candidates;
    lab ethwhale.address_label;
    anc ethwhale.balance_anchor;
    ts timestamptz[];
    s_bal jsonb; s_px jsonb; s_usd jsonb; s_tok jsonb; s_tot jsonb;
    cp_labels text[]; cp_vals numeric[];
    pc record;
    out text;
    rows_html text;
    chk text;
    k text;
BEGIN
    IF addr !~ '^0x[0-9a-f]{40}$' THEN
        RAISE EXCEPTION 'ethwhale.report_html: "%" is not an address', address
            USING ERRCODE = 'invalid_parameter_value', DETAIL = 'An address is 0x followed by 40 hexadecimal digits.';
    END IF;
    SELECT * INTO c FROM ethwhale.whale_candidates w WHERE w.chain_id = ethwhale.current_chain() AND w.address = addr;
    SELECT * INTO lab FROM ethwhale.address_label l WHERE l.address = addr;
    SELECT array_agg(h.period_start ORDER BY h.period_start),
           jsonb_agg(h.balance_eth ORDER BY h.period_start), jsonb_agg(h.eth_usd ORDER BY h.period_start),
           jsonb_agg(round(h.balance_usd, 2) ORDER BY h.period_start),
           jsonb_agg(round(h.token_usd, 2) ORDER BY h.period_start),
           jsonb_agg(round(h.total_usd, 2) ORDER BY h.period_start)
      INTO ts, s_bal, s_px, s_usd, s_tok, s_tot
    FROM ethwhale.balance_history(addr, step) h;
    SELECT * INTO anc FROM ethwhale.balance_anchor x WHERE x.address = addr;
    SELECT * INTO pc FROM ethwhale.price_correlation_stats(addr);

    out := format('<section class="address" id="a-%s" data-address="%s">', addr, addr)
        || format('<h2>%s <code>%s</code></h2>', ethwhale.html(coalesce(lab.label, 'Unlabelled address')), addr)
        || '<p class="verdict">'
        || CASE WHEN c.rank IS NOT NULL THEN format('Whale candidate <b>#%s</b>, score <b>%s</b> = log10(%s USD × %s large transfers)',
                                                    c.rank, c.score, ethwhale.report_num(c.volume_usd, 0), c.large_transfers)
                WHEN c.excluded_reason IS NOT NULL THEN format('Not ranked: <b>%s</b>', ethwhale.html(c.excluded_reason))
                ELSE 'Not in ethwhale.whale_candidates (no transfer above the threshold)' END
        || CASE WHEN lab.category IS NOT NULL THEN format(' · category <i>%s</i>', ethwhale.html(lab.category)) ELSE '' END
        || '</p>';
    -- the balance against the price, and the value in USD
    out := out || ethwhale.report_line_chart('balance-' || addr, 'Balance (ETH) and ETH/USD price', ts,
        jsonb_build_array(
            jsonb_build_object('key', 'balance_eth', 'label', 'balance (ETH, left)', 'color', '#1f5fbf',
                               'axis', 'left', 'unit', 'ETH', 'values', s_bal),
            jsonb_build_object('key', 'eth_usd', 'label', 'ETH/USD (right)', 'color', '#d9822b',
                               'axis', 'right', 'unit', 'USD/ETH', 'values', s_px)));
    out := out || ethwhale.report_line_chart('usd-' || addr, 'Value (USD): ETH balance and priced tokens', ts,
        jsonb_build_array(
            jsonb_build_object('key', 'balance_usd', 'label', 'ETH balance in USD', 'color', '#1f5fbf',
                               'axis', 'left', 'unit', 'USD', 'values', s_usd),
            jsonb_build_object('key', 'token_usd', 'label', 'priced tokens since the first synced block', 'color', '#2e9e5b',
                               'axis', 'left', 'unit', 'USD', 'values', s_tok),
            jsonb_build_object('key', 'total_usd', 'label', 'total', 'color', '#7a3db8',
                               'axis', 'left', 'unit', 'USD', 'values', s_tot)));
    out := out || '<p class="note">'
        || CASE WHEN anc.block IS NOT NULL
                THEN format('The ETH balance is anchored at %s ETH, the balance eth_account reported at the end of block %s, and walked with the synced transactions (value and fees).',
                            ethwhale.report_num(anc.balance * 1e-18, 4), anc.block)
                ELSE 'The node reported no balance at the synced blocks: the ETH balance is unknown (only the changes are).' END
        || ' Tokens: the priced tokens received minus sent since the first synced block, valued at each period''s price.'
        || format(' Price correlation: %s (%s days%s). %s.</p>',
                  coalesce(round(pc.r::numeric, 3)::text, 'undefined'), pc.points,
                  CASE WHEN pc.first_day IS NOT NULL THEN format(', %s .. %s', pc.first_day, pc.last_day) ELSE '' END,
                  ethwhale.html(pc.method));
    -- the counterparties of its large transfers, by label
    SELECT array_agg(g.name ORDER BY g.usd DESC), array_agg(g.usd ORDER BY g.usd DESC) INTO cp_labels, cp_vals
    FROM (SELECT coalesce(l.label, l.category, 'unlabelled') AS name, sum(x.value_usd) AS usd
          FROM (SELECT CASE WHEN t.from_address = addr THEN t.to_address ELSE t.from_address END AS cp, t.value_usd
                FROM ethwhale.large_transfers t
                WHERE t.chain_id = ethwhale.current_chain() AND (t.from_address = addr OR t.to_address = addr)) x
          LEFT JOIN ethwhale.address_label l ON l.address = x.cp
          GROUP BY 1 ORDER BY 2 DESC LIMIT 8) g;
    out := out || ethwhale.report_bar_chart('counterparties-' || addr, 'Counterparties of its large transfers, by label (USD)',
                                            cp_labels, cp_vals, 'USD');
    -- the largest transfers
    SELECT string_agg(format('<tr><td>%s</td><td>%s</td><td>%s</td><td class="num">%s %s</td><td class="num">%s</td><td><code>%s</code></td></tr>',
                             to_char(t.block_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'),
                             CASE WHEN t.from_address = addr THEN 'sent to' ELSE 'received from' END,
                             ethwhale.html(coalesce(CASE WHEN t.from_address = addr THEN t.to_label ELSE t.from_label END,
                                                    CASE WHEN t.from_address = addr THEN t.to_address ELSE t.from_address END)),
                             ethwhale.report_num(t.amount, 2), ethwhale.html(t.symbol), ethwhale.report_num(t.value_usd, 0),
                             left(t.tx_hash, 18) || '…'), '' ORDER BY t.value_usd DESC)
      INTO rows_html
    FROM (SELECT * FROM ethwhale.large_transfers t
          WHERE t.chain_id = ethwhale.current_chain() AND (t.from_address = addr OR t.to_address = addr)
          ORDER BY t.value_usd DESC LIMIT 10) t;
    out := out || '<h3>Largest transfers</h3>'
        || coalesce('<table class="transfers"><tr><th>time (UTC)</th><th></th><th>counterparty</th><th>amount</th><th>USD</th><th>tx</th></tr>'
                    || rows_html || '</table>', '<p class="empty">none above ethwhale.whale_threshold_usd</p>');
    -- the reasons and the evidence
    IF c.address IS NOT NULL THEN
        out := out || '<h3>Reasons</h3><table class="reasons">';
        FOR k IN SELECT jsonb_object_keys(c.reasons) ORDER BY 1 LOOP
            out := out || format('<tr><th>%s</th><td>%s</td></tr>', ethwhale.html(k), ethwhale.html(c.reasons ->> k));
        END LOOP;
        out := out || '</table><h3>Exclusion tests</h3><table class="evidence">';
        FOR k IN SELECT jsonb_object_keys(c.evidence) ORDER BY 1 LOOP
            out := out || format('<tr><th>%s</th><td>%s</td></tr>', ethwhale.html(k), ethwhale.html(c.evidence ->> k));
        END LOOP;
        out := out || '</table>';
    END IF;
    -- the walk against the node
    BEGIN
        SELECT string_agg(format('<tr><td>%s</td><td class="num">%s</td><td class="num">%s</td><td class="num">%s</td><td>%s</td></tr>',
                                 b.block, ethwhale.report_num(b.series_eth, 4), ethwhale.report_num(b.node_eth, 4),
                                 ethwhale.report_num(b.gap_eth, 4), ethwhale.html(b.note)), '' ORDER BY b.block)
          INTO chk
        FROM ethwhale.balance_check(addr, 5) b;
        out := out || '<h3>Balance against eth_account</h3>'
            || coalesce('<table class="check"><tr><th>block</th><th>walk (ETH)</th><th>node (ETH)</th><th>gap (ETH)</th><th></th></tr>'
                        || chk || '</table>', '<p class="empty">no block to compare</p>')
            || '<p class="note">Internal transfers from contracts, block rewards and tips received as a miner, withdrawals and blob fees are not in the transaction list: they show as a gap.</p>';
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        out := out || '<h3>Balance against eth_account</h3><p class="empty">not checked: the node reports no balance for it at the synced blocks</p>';
    END;
    RETURN out || '</section>';
END
$$;

-- ethwhale.report_html(addresses, title, step): the HTML page about
-- ADDRESSES (see the top of this part).  STEP of the charts: by default
-- ethwhale.report_step().
CREATE FUNCTION ethwhale.report_html(addresses text[], title text DEFAULT NULL, step interval DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st ethwhale.sync_status;
    a text;
    body text := '';
    ttl text := coalesce(title, CASE WHEN cardinality(addresses) = 1 THEN 'ethwhale_fdw report: ' || lower(addresses[1])
                                     ELSE 'ethwhale_fdw report' END);
BEGIN
    IF addresses IS NULL OR cardinality(addresses) = 0 THEN
        RAISE EXCEPTION 'ethwhale.report_html: no address'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Give addresses, e.g. ARRAY(SELECT address FROM ethwhale.whale_candidates WHERE rank <= 10 ORDER BY rank).';
    END IF;
    SELECT * INTO st FROM ethwhale.sync_status LIMIT 1;
    FOREACH a IN ARRAY addresses LOOP
        body := body || ethwhale.report_section(a, coalesce(step, ethwhale.report_step()));
    END LOOP;
    RETURN '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        || '<meta http-equiv="Content-Security-Policy" content="default-src ''none''; style-src ''unsafe-inline''">'
        || format('<title>%s</title>', ethwhale.html(ttl))
        || '<style>body{font:14px/1.4 "DejaVu Sans",Arial,sans-serif;margin:24px;color:#222;max-width:940px}'
        || 'h1{font-size:22px}h2{font-size:18px;margin-top:36px;border-top:1px solid #ccc;padding-top:16px}h3{font-size:15px}'
        || 'code{font:12px "DejaVu Sans Mono",monospace}.chart{display:block;margin:8px 0}'
        || '.chart .title{font-weight:bold;font-size:13px}.chart .frame{fill:#fafafa;stroke:#999}'
        || '.chart .grid{stroke:#e2e2e2}.chart .tick,.chart .axis-unit,.chart .legend text{font-size:11px;fill:#555}'
        || '.chart .tick.left{text-anchor:end}.chart .tick.time{text-anchor:middle}.chart .point{fill:currentColor}'
        || '.chart .bar{fill:#1f5fbf}.chart .bar-label{text-anchor:end;font-size:12px}.chart .bar-value{font-size:11px;fill:#555}'
        || 'table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 6px;vertical-align:top;text-align:left}'
        || 'td.num{text-align:right}.reasons td,.evidence td{font:11px "DejaVu Sans Mono",monospace;word-break:break-all}'
        || '.note,.empty{color:#555;font-size:12px}</style></head><body>'
        || format('<h1>%s</h1>', ethwhale.html(ttl))
        || format('<p class="meta">Server %s: blocks %s .. %s (%s UTC), node head %s; whale threshold %s USD. Made %s UTC.</p>',
                  ethwhale.html(st.server), coalesce(st.first_block::text, '–'), coalesce(st.last_synced_block::text, '–'),
                  coalesce(to_char(st.last_synced_block_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), '–'),
                  coalesce(st.node_head::text, '–'), ethwhale.report_num(ethwhale.whale_threshold_usd(), 0),
                  to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'))
        || body || '</body></html>';
END
$$;

-- ethwhale_fdw--0.2.sql: the install script of release 0.2 as make built it from sql_parts/ (frozen: later
-- versions change sql_parts/ and ship ethwhale_fdw--0.2--0.3.sql; see README "The extension's SQL").

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
-- sql_parts/40_chain.sql to 80_refresh.sql: SQL and PL/pgSQL over the
-- wrapper's foreign tables:
--   ethwhale.blocks, ethwhale.txs, ethwhale.token_transfers   local copy of the chain
--   ethwhale.sync_state, ethwhale.sync_status                  cursor and progress
--   CALL ethwhale.sync(server, from_block, to_block)           copy, batch by batch
--   ethwhale.address_label, ethwhale.load_labels(path)         labels
--   ethwhale.large_transfers, ethwhale.whale_candidates        materialized views
--   ethwhale.balance_history(), ethwhale.price_correlation()   per-address analytics
--   CALL ethwhale.refresh(), ethwhale.schedule_refresh(cron)   refresh, also via pg_cron
-- See README.md, "Sync and whale analytics", for the design.
-- ===========================================================================

-- ---------------------------------------------------------------- local chain

-- One chain per database: the blocks first_block .. next_block-1 of
-- ethwhale.sync_state, without gaps.  Append-only in block order, so BRIN
-- indexes on the block number are tiny and exact enough; addresses get btrees.
CREATE TABLE ethwhale.blocks (
    number           bigint PRIMARY KEY,
    hash             text NOT NULL UNIQUE,
    parent_hash      text,                  -- NULL for the genesis block
    "timestamp"      timestamptz NOT NULL,
    miner            text,
    gas_used         bigint,
    gas_limit        bigint,
    base_fee_per_gas numeric,
    tx_count         int
);
COMMENT ON TABLE ethwhale.blocks IS 'blocks copied by CALL ethwhale.sync()';

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
    PRIMARY KEY (block, tx_index)
);
CREATE UNIQUE INDEX txs_hash_idx ON ethwhale.txs (hash);
CREATE INDEX txs_block_brin ON ethwhale.txs USING brin (block);
CREATE INDEX txs_from_idx ON ethwhale.txs (from_address);
CREATE INDEX txs_to_idx ON ethwhale.txs (to_address);
COMMENT ON TABLE ethwhale.txs IS 'transactions copied by CALL ethwhale.sync()';

CREATE TABLE ethwhale.token_transfers (
    block        bigint NOT NULL,
    log_index    int NOT NULL,
    tx_hash      text NOT NULL,
    token        text NOT NULL,
    from_address text NOT NULL,
    to_address   text NOT NULL,
    amount       numeric NOT NULL,          -- raw integer amount
    block_time   timestamptz NOT NULL,
    PRIMARY KEY (block, log_index)
);
CREATE INDEX token_transfers_block_brin ON ethwhale.token_transfers USING brin (block);
CREATE INDEX token_transfers_from_idx ON ethwhale.token_transfers (from_address);
CREATE INDEX token_transfers_to_idx ON ethwhale.token_transfers (to_address);
CREATE INDEX token_transfers_token_idx ON ethwhale.token_transfers (token);
COMMENT ON TABLE ethwhale.token_transfers IS 'ERC-20 Transfer logs copied by CALL ethwhale.sync()';

-- The cursor.  A row per database at most (the local tables hold one chain):
-- blocks first_block .. next_block-1 are local and last_hash is the hash of
-- next_block-1.  Updated in the same transaction as each batch's rows.
CREATE TABLE ethwhale.sync_state (
    server          name PRIMARY KEY,
    remote_schema   name NOT NULL,
    first_block     bigint,
    next_block      bigint,
    last_hash       text,
    node_head       bigint,
    head_checked_at timestamptz,
    target_block    bigint,
    run_started_at  timestamptz,
    run_blocks      bigint NOT NULL DEFAULT 0,
    blocks_per_s    numeric,
    last_batch_at   timestamptz,
    last_error      text,
    last_error_at   timestamptz,
    reorgs          bigint NOT NULL DEFAULT 0,
    last_reorg      text
);
CREATE UNIQUE INDEX sync_state_one_chain ON ethwhale.sync_state ((true));
COMMENT ON TABLE ethwhale.sync_state IS 'cursor of CALL ethwhale.sync(); see ethwhale.sync_status';

-- What eth_account said about addresses that reached the candidate list.
CREATE TABLE ethwhale.address_info (
    address     text PRIMARY KEY,
    code_size   int,
    is_contract bool,
    checked_at  timestamptz NOT NULL DEFAULT now()
);
-- pg_dump keeps the local chain, its cursor and the contract look-ups.
SELECT pg_catalog.pg_extension_config_dump('ethwhale.blocks', '');
SELECT pg_catalog.pg_extension_config_dump('ethwhale.txs', '');
SELECT pg_catalog.pg_extension_config_dump('ethwhale.token_transfers', '');
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
       s.last_reorg
FROM ethwhale.sync_state s
LEFT JOIN ethwhale.blocks b ON b.number = s.next_block - 1;
COMMENT ON VIEW ethwhale.sync_status IS 'last synced block, node head, lag, rate and last error of CALL ethwhale.sync()';
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

-- ethwhale.sync_find_ancestor(src, tip, first): the highest local block at or
-- below TIP whose hash the node still has, or first-1 when none is left.
-- Compares windows of growing size below the tip (8, 64, 512, ... blocks).
CREATE FUNCTION ethwhale.sync_find_ancestor(src name, tip bigint, first bigint)
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
                          ON r.number = l.number AND r.hash = l.hash', src)
            INTO anc USING lo, tip;
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
-- of a sync run, before its first batch: the arguments, one chain per
-- database, the schema of the server's foreign tables (SRC), whether the
-- wrapper serves token transfers (HAVE_TOKENS), the server's confirmations
-- (CONF), and the cursor row, created when missing.
CREATE FUNCTION ethwhale.sync_prepare(server name, from_block bigint, to_block bigint,
                                      OUT src name, OUT have_tokens bool, OUT conf bigint)
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
    SELECT s.server INTO other FROM ethwhale.sync_state s LIMIT 1;
    IF FOUND AND other <> server THEN
        RAISE EXCEPTION 'the local tables hold the chain of server "%", not "%"', other, server
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = 'ethwhale.blocks, ethwhale.txs and ethwhale.token_transfers hold one chain per database.',
                  HINT = 'Sync server ' || quote_ident(other) || ', or empty the local tables first with SELECT ethwhale.reset_sync();';
    END IF;
    src := ethwhale.remote_schema(server);
    have_tokens := to_regclass(format('%I.eth_token_transfer', src)) IS NOT NULL;
    IF NOT have_tokens THEN
        RAISE NOTICE 'ethwhale.sync(%): this build of the wrapper has no eth_token_transfer; token transfers are not copied', server;
    END IF;
    conf := coalesce(ethwhale.server_option(server, 'confirmations')::bigint, 0);
    INSERT INTO ethwhale.sync_state AS s (server, remote_schema)
    VALUES (sync_prepare.server, src)
    ON CONFLICT ON CONSTRAINT sync_state_pkey DO UPDATE SET remote_schema = excluded.remote_schema;
END
$$;

-- ethwhale.sync_lock_cursor(server): the cursor row of SERVER, locked FOR
-- UPDATE until the end of the transaction (concurrent syncs take turns).
CREATE FUNCTION ethwhale.sync_lock_cursor(server name)
RETURNS ethwhale.sync_state
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM ethwhale.sync_state s WHERE s.server = sync_lock_cursor.server FOR UPDATE
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
     WHERE s.server = sync_plan.server;
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
-- delete the local blocks, transactions and token transfers above it, move
-- the cursor back and count the reorg.  Returns how many blocks are to be
-- copied again.
CREATE FUNCTION ethwhale.sync_rollback_reorg(server name, src name, st ethwhale.sync_state)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    anc bigint := ethwhale.sync_find_ancestor(src, st.next_block - 1, st.first_block);
BEGIN
    DELETE FROM ethwhale.token_transfers WHERE block > anc;
    DELETE FROM ethwhale.txs WHERE block > anc;
    DELETE FROM ethwhale.blocks WHERE number > anc;
    UPDATE ethwhale.sync_state s
       SET next_block = anc + 1,
           last_hash = (SELECT hash FROM ethwhale.blocks WHERE number = anc),
           reorgs = s.reorgs + 1,
           last_reorg = format('%s: blocks %s..%s replaced', clock_timestamp()::timestamptz(0),
                               anc + 1, st.next_block - 1)
     WHERE s.server = sync_rollback_reorg.server;
    RAISE NOTICE 'ethwhale.sync(%): reorg: the node replaced blocks %..%; copying them again',
        server, anc + 1, st.next_block - 1;
    RETURN st.next_block - 1 - anc;
END
$$;

-- ethwhale.sync_batch(server, src, a, b, prev_hash, have_tokens, run_blocks,
-- started): fetch blocks A..B with their transactions (and token transfers
-- when HAVE_TOKENS) from the foreign tables of SRC into the local tables,
-- check them, and move the cursor to B+1 in the same transaction.
-- RUN_BLOCKS is the run's block count including this batch; returns the
-- run's rate in blocks/s.  The batch must hold every block of the range,
-- continue the local chain (A's parent is PREV_HASH) and be a chain with as
-- many transactions as its blocks' tx_count; otherwise the node reorganised
-- its chain and SQLSTATE EWRG1 (before A) or EWRG2 (during the batch) is
-- raised for ethwhale.sync_run to roll back.
CREATE FUNCTION ethwhale.sync_batch(server name, src name, a bigint, b bigint, prev_hash text,
                                    have_tokens bool, run_blocks bigint, started timestamptz)
RETURNS numeric
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    ntx bigint;
    expect_tx bigint;
    rate numeric;
BEGIN
    EXECUTE format('INSERT INTO ethwhale.blocks
                      (number, hash, parent_hash, "timestamp", miner, gas_used, gas_limit,
                       base_fee_per_gas, tx_count)
                    SELECT number, hash, parent_hash, "timestamp", miner, gas_used, gas_limit,
                           base_fee_per_gas, tx_count
                    FROM %I.eth_block WHERE number BETWEEN $1 AND $2', src)
        USING a, b;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> b - a + 1 THEN
        RAISE EXCEPTION 'server "%" returned % of the % blocks %..%', server, n, b - a + 1, a, b
            USING HINT = 'The node is missing blocks in that range (still syncing, or pruned).';
    END IF;
    -- The batch must continue our chain and be a chain.
    IF prev_hash IS NOT NULL
       AND (SELECT parent_hash FROM ethwhale.blocks WHERE number = a) <> prev_hash THEN
        RAISE EXCEPTION USING ERRCODE = 'EWRG1', MESSAGE = 'reorg';
    END IF;
    IF EXISTS (SELECT 1 FROM ethwhale.blocks c JOIN ethwhale.blocks p ON p.number = c.number - 1
               WHERE c.number BETWEEN a + 1 AND b AND c.parent_hash <> p.hash) THEN
        RAISE EXCEPTION USING ERRCODE = 'EWRG2', MESSAGE = 'reorg during the batch';
    END IF;
    EXECUTE format('INSERT INTO ethwhale.txs
                      (block, tx_index, hash, from_address, to_address, value, gas, gas_price,
                       nonce, input_selector, status, gas_used, created_contract, block_time)
                    SELECT block, tx_index, hash, from_address, to_address, value, gas, gas_price,
                           nonce, input_selector, status, gas_used, created_contract, block_time
                    FROM %I.eth_tx WHERE block BETWEEN $1 AND $2', src)
        USING a, b;
    GET DIAGNOSTICS ntx = ROW_COUNT;
    SELECT coalesce(sum(tx_count), 0) INTO expect_tx FROM ethwhale.blocks WHERE number BETWEEN a AND b;
    IF ntx <> expect_tx THEN
        RAISE EXCEPTION USING ERRCODE = 'EWRG2', MESSAGE = 'reorg during the batch';
    END IF;
    IF have_tokens THEN
        EXECUTE format('INSERT INTO ethwhale.token_transfers
                          (block, log_index, tx_hash, token, from_address, to_address, amount, block_time)
                        SELECT block, log_index, tx_hash, token, from_address, to_address, amount, block_time
                        FROM %I.eth_token_transfer WHERE block BETWEEN $1 AND $2', src)
            USING a, b;
    END IF;
    rate := round(run_blocks / greatest(extract(epoch FROM clock_timestamp() - started), 0.001), 1);
    UPDATE ethwhale.sync_state s
       SET first_block = coalesce(s.first_block, a),
           next_block = b + 1,
           last_hash = (SELECT hash FROM ethwhale.blocks WHERE number = b),
           run_blocks = sync_batch.run_blocks,
           blocks_per_s = rate,
           last_batch_at = clock_timestamp()
     WHERE s.server = sync_batch.server;
    RETURN rate;
END
$$;

-- ethwhale.sync_record_error(server, message, detail): keep the error of a
-- failed batch in the cursor row (sync_status.last_error).
CREATE FUNCTION ethwhale.sync_record_error(server name, message text, detail text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    UPDATE ethwhale.sync_state s
       SET last_error = message || coalesce(' (' || nullif(detail, '') || ')', ''),
           last_error_at = clock_timestamp()
     WHERE s.server = sync_record_error.server
$$;

-- ethwhale.sync_run(server, from_block, to_block, may_commit): the body of
-- ethwhale.sync().  MAY_COMMIT says whether the caller runs it outside a
-- transaction block, where it commits after every batch; otherwise it copies
-- one batch and leaves the commit to the caller.
--
-- Every batch runs in a subtransaction that takes the cursor row FOR UPDATE
-- (so concurrent syncs take turns), checks the chain against the node and
-- inserts the batch's rows; the cursor moves in the same transaction, which
-- is committed right after.  A kill at any point loses at most the batch in
-- flight, which the next run copies again.
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
    SELECT p.src, p.have_tokens, p.conf INTO src, have_tokens, conf
    FROM ethwhale.sync_prepare(server, from_block, to_block) p;
    IF may_commit THEN
        COMMIT;
    END IF;

    LOOP
        ok := true;
        BEGIN
            st := ethwhale.sync_lock_cursor(server);
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
                        rate := ethwhale.sync_batch(server, src, a, b, st.last_hash, have_tokens,
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

        IF NOT ok THEN
            PERFORM ethwhale.sync_record_error(server, e_msg, e_detail);
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

-- ethwhale.reset_sync(): empty the local chain and the cursor (to sync
-- another server, or to start over), and the views built from them.
CREATE FUNCTION ethwhale.reset_sync()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    TRUNCATE ethwhale.blocks, ethwhale.txs, ethwhale.token_transfers, ethwhale.sync_state,
             ethwhale.address_info;
    REFRESH MATERIALIZED VIEW ethwhale.large_transfers;
    REFRESH MATERIALIZED VIEW ethwhale.whale_candidates;
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

-- Transfers of at least ethwhale.whale_threshold_usd: successful ETH
-- transfers (value × ETH/USD of the block's UTC day) and transfers of the
-- tokens priced in ethwhale.token (amount / 10^decimals × usd_peg, or × ETH/USD
-- when usd_peg is NULL).  log_index is -1 for ETH.
CREATE MATERIALIZED VIEW ethwhale.large_transfers AS
WITH px AS (SELECT day, price FROM ethwhale.eth_usd_filled),
moves AS (
    SELECT 'ETH'::text AS kind, t.block, t.block_time, t.hash AS tx_hash, -1 AS log_index,
           NULL::text AS token, 'ETH'::text AS symbol, t.from_address, t.to_address,
           t.value * 1e-18 AS amount, t.value * 1e-18 * px.price AS value_usd
    FROM ethwhale.txs t
    JOIN px ON px.day = (t.block_time AT TIME ZONE 'UTC')::date
    WHERE t.value > 0 AND t.to_address IS NOT NULL AND coalesce(t.status, 1) <> 0
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
)
SELECT m.kind, m.block, m.block_time, m.tx_hash, m.log_index, m.token, m.symbol,
       m.from_address, m.to_address, m.amount, round(m.value_usd, 2) AS value_usd,
       fl.label AS from_label, fl.category AS from_category,
       tl.label AS to_label, tl.category AS to_category
FROM moves m
LEFT JOIN ethwhale.address_label fl ON fl.address = m.from_address
LEFT JOIN ethwhale.address_label tl ON tl.address = m.to_address
WHERE m.value_usd >= ethwhale.whale_threshold_usd();
CREATE UNIQUE INDEX large_transfers_key ON ethwhale.large_transfers (tx_hash, log_index);
CREATE INDEX large_transfers_from_idx ON ethwhale.large_transfers (from_address);
CREATE INDEX large_transfers_to_idx ON ethwhale.large_transfers (to_address);
COMMENT ON MATERIALIZED VIEW ethwhale.large_transfers IS
    'ETH and priced token transfers of at least ethwhale.whale_threshold_usd; CALL ethwhale.refresh()';

-- One row per address that sent or received a large transfer.
--   score = log10(volume_usd × large_transfers), rounded to 3 digits: a whale
--   moves much and often; NULL when the address is excluded.
--   excluded_reason: a label in ethwhale.excluded_category, a contract
--   (eth_account code size, or created/used as a token in the synced data),
--   or exchange-like (see below).
--   exchange_like: in the synced ETH transactions the address has at least
--   ethwhale.exchange_min_counterparties (1000) distinct counterparties, or
--   at least ethwhale.exchange_min_sweepers (10) deposit-like feeders:
--   addresses that received ETH from others and sent ETH only to it.
CREATE MATERIALIZED VIEW ethwhale.whale_candidates AS
WITH sides AS (
    SELECT from_address AS address, to_address AS counterparty, value_usd, block_time, true AS sent
    FROM ethwhale.large_transfers
    UNION ALL
    SELECT to_address, from_address, value_usd, block_time, false
    FROM ethwhale.large_transfers
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
           count(DISTINCT counterparty) AS counterparties
    FROM sides
    GROUP BY address
),
created AS (
    SELECT DISTINCT created_contract AS address
    FROM ethwhale.txs
    WHERE created_contract IS NOT NULL AND coalesce(status, 1) <> 0
),
edges AS (
    SELECT t.from_address AS address, t.to_address AS x
    FROM ethwhale.txs t WHERE t.from_address IN (SELECT address FROM agg)
    UNION ALL
    SELECT t.to_address, t.from_address
    FROM ethwhale.txs t WHERE t.to_address IN (SELECT address FROM agg)
),
cp AS (
    SELECT address, count(DISTINCT x) AS n FROM edges WHERE x <> address GROUP BY address
),
feeders AS (
    SELECT DISTINCT t.to_address AS address, t.from_address AS d
    FROM ethwhale.txs t
    WHERE t.to_address IN (SELECT address FROM agg) AND t.from_address <> t.to_address
),
sw AS (
    SELECT f.address, count(*) AS n
    FROM feeders f
    WHERE NOT EXISTS (SELECT 1 FROM ethwhale.txs o
                      WHERE o.from_address = f.d AND o.to_address IS DISTINCT FROM f.address)
      AND EXISTS (SELECT 1 FROM ethwhale.txs i
                  WHERE i.to_address = f.d AND i.from_address <> f.address)
    GROUP BY f.address
),
flags AS (
    SELECT a.*,
           l.label, l.category,
           CASE WHEN i.is_contract OR tk.address IS NOT NULL OR cr.address IS NOT NULL THEN true
                ELSE i.is_contract END AS is_contract,
           coalesce(cp.n, 0) AS all_counterparties,
           coalesce(sw.n, 0) AS sweepers
    FROM agg a
    LEFT JOIN ethwhale.address_label l ON l.address = a.address
    LEFT JOIN ethwhale.address_info i ON i.address = a.address
    LEFT JOIN ethwhale.token tk ON tk.address = a.address
    LEFT JOIN created cr ON cr.address = a.address
    LEFT JOIN cp ON cp.address = a.address
    LEFT JOIN sw ON sw.address = a.address
),
judged AS (
    SELECT f.*,
           (f.all_counterparties >= ethwhale.int_setting('ethwhale.exchange_min_counterparties', 1000, 1, 1000000000)
            OR f.sweepers >= ethwhale.int_setting('ethwhale.exchange_min_sweepers', 10, 1, 1000000000)) AS exchange_like
    FROM flags f
),
excluded AS (
    SELECT j.*,
           CASE WHEN j.category IN (SELECT category FROM ethwhale.excluded_category)
                    THEN 'labelled ' || j.category
                WHEN j.is_contract THEN 'contract'
                WHEN j.exchange_like THEN format('exchange-like (%s counterparties, %s deposit-like feeders)',
                                                 j.all_counterparties, j.sweepers)
           END AS excluded_reason
    FROM judged j
)
SELECT e.address, e.label, e.category,
       e.large_transfers, e.large_sent, e.large_received,
       e.volume_usd, e.sent_usd, e.received_usd,
       e.first_seen, e.last_seen, e.counterparties,
       e.is_contract, e.exchange_like, e.all_counterparties, e.sweepers,
       e.excluded_reason,
       CASE WHEN e.excluded_reason IS NULL
            THEN round(log(e.volume_usd * e.large_transfers), 3) END AS score,
       CASE WHEN e.excluded_reason IS NULL
            THEN rank() OVER (PARTITION BY e.excluded_reason IS NULL
                              ORDER BY e.volume_usd * e.large_transfers DESC) END AS rank
FROM excluded e;
CREATE UNIQUE INDEX whale_candidates_key ON ethwhale.whale_candidates (address);
CREATE INDEX whale_candidates_rank_idx ON ethwhale.whale_candidates (rank);
COMMENT ON MATERIALIZED VIEW ethwhale.whale_candidates IS
    'addresses with large transfers, scored; exchanges, bridges and contracts flagged in excluded_reason';

-- ethwhale.balance_history(address, step): the address's ETH balance change
-- per STEP since the first synced block (received value - sent value - fees
-- of successful transactions; a failed one costs its fee only), and its
-- running total, from the local tables.
CREATE FUNCTION ethwhale.balance_history(address text, step interval DEFAULT '1 day')
RETURNS TABLE (period_start timestamptz, change_eth numeric, balance_eth numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    addr text := lower(address);
    lo timestamptz;
    hi timestamptz;
BEGIN
    IF step IS NULL OR step <= interval '0' THEN
        RAISE EXCEPTION 'ethwhale.balance_history: step must be a positive interval'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF extract(month FROM step) <> 0 OR extract(year FROM step) <> 0 THEN
        RAISE EXCEPTION 'ethwhale.balance_history: step must not contain months or years'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Use days, e.g. ''30 days''.';
    END IF;
    SELECT min("timestamp"), max("timestamp") INTO lo, hi FROM ethwhale.blocks;
    IF lo IS NULL THEN
        RETURN;
    END IF;
    lo := date_bin(step, lo, timestamptz '2000-01-01 00:00:00+00');
    RETURN QUERY
    WITH moves AS (
        SELECT t.block_time,
               (CASE WHEN t.to_address = addr AND coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
                - CASE WHEN t.from_address = addr AND coalesce(t.status, 1) <> 0 THEN t.value ELSE 0 END
                - CASE WHEN t.from_address = addr THEN coalesce(t.gas_used * t.gas_price, 0) ELSE 0 END) AS wei
        FROM ethwhale.txs t
        WHERE t.from_address = addr OR t.to_address = addr
    ),
    per AS (
        SELECT date_bin(step, block_time, lo) AS p, sum(wei) AS wei
        FROM moves GROUP BY 1
    ),
    grid AS (
        SELECT g AS p FROM generate_series(lo, hi, step) g
    )
    SELECT g.p,
           coalesce(per.wei, 0) * 1e-18,
           sum(coalesce(per.wei, 0)) OVER (ORDER BY g.p) * 1e-18
    FROM grid g LEFT JOIN per ON per.p = g.p
    ORDER BY g.p;
END
$$;

-- ethwhale.price_correlation(address): Pearson correlation of the address's
-- daily ETH balance change with the daily ETH/USD change, over the days of
-- the synced range that have a price on that day and the day before.  NULL,
-- with a NOTICE saying why, when there are fewer than 3 such days or either
-- series is constant.
CREATE FUNCTION ethwhale.price_correlation(address text)
RETURNS double precision
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    n bigint;
    r double precision;
    moving bigint;
BEGIN
    SELECT count(*), corr(h.change_eth, p.price - q.price),
           count(*) FILTER (WHERE h.change_eth <> 0)
      INTO n, r, moving
    FROM ethwhale.balance_history(address, '1 day') h
    JOIN ethwhale.eth_usd p ON p.day = (h.period_start AT TIME ZONE 'UTC')::date
    JOIN ethwhale.eth_usd q ON q.day = p.day - 1;
    IF n < 3 THEN
        RAISE NOTICE 'ethwhale.price_correlation(%): only % day(s) with a balance change and a price change (3 needed): the synced range is too short or prices are missing', address, n;
        RETURN NULL;
    END IF;
    IF r IS NULL THEN
        RAISE NOTICE 'ethwhale.price_correlation(%): undefined over % days: % of them change the balance, and the price or the balance never varies', address, n, moving;
        RETURN NULL;
    END IF;
    RETURN r;
END
$$;
-- ---------------------------------------------------------------- refresh

-- ethwhale.check_contracts(server): look up eth_account (code size) for the
-- addresses of ethwhale.large_transfers not yet in ethwhale.address_info, 500
-- per request.  Returns how many were looked up (0 when the wrapper has no
-- eth_account table).
CREATE FUNCTION ethwhale.check_contracts(server name)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src name := ethwhale.remote_schema(server);
    todo text[];
    n bigint := 0;
    got bigint;
BEGIN
    IF to_regclass(format('%I.eth_account', src)) IS NULL THEN
        RAISE NOTICE 'ethwhale: this build of the wrapper has no eth_account; contracts are recognised from the synced data only';
        RETURN 0;
    END IF;
    LOOP
        SELECT array_agg(a) INTO todo FROM (
            SELECT DISTINCT a FROM (
                SELECT from_address AS a FROM ethwhale.large_transfers
                UNION SELECT to_address FROM ethwhale.large_transfers) u
            WHERE NOT EXISTS (SELECT 1 FROM ethwhale.address_info i WHERE i.address = u.a)
            ORDER BY a LIMIT 500) s;
        EXIT WHEN todo IS NULL;
        EXECUTE format('INSERT INTO ethwhale.address_info (address, code_size, is_contract)
                        SELECT address, code_size, is_contract FROM %I.eth_account WHERE address = ANY($1)
                        ON CONFLICT (address) DO NOTHING', src)
            USING todo;
        GET DIAGNOSTICS got = ROW_COUNT;
        -- Addresses the node did not answer for: remember them as unknown.
        INSERT INTO ethwhale.address_info (address, code_size, is_contract)
        SELECT t, NULL, NULL FROM unnest(todo) t
        ON CONFLICT (address) DO NOTHING;
        n := n + cardinality(todo);
    END LOOP;
    RETURN n;
END
$$;

-- The body of ethwhale.refresh(); see ethwhale.sync_run for MAY_COMMIT.
CREATE PROCEDURE ethwhale.refresh_run(server name, may_commit bool)
LANGUAGE plpgsql
AS $$
DECLARE
    srv name := coalesce(server, (SELECT s.server FROM ethwhale.sync_state s LIMIT 1), 'geth');
BEGIN
    CALL ethwhale.sync_run(srv, NULL, NULL, may_commit);
    REFRESH MATERIALIZED VIEW CONCURRENTLY ethwhale.large_transfers;
    PERFORM ethwhale.check_contracts(srv);
    REFRESH MATERIALIZED VIEW CONCURRENTLY ethwhale.whale_candidates;
END
$$;

-- CALL ethwhale.refresh([server]): sync (the server of ethwhale.sync_state,
-- else 'geth') up to head - confirmations, then refresh ethwhale.large_transfers,
-- look up contracts among its addresses, and refresh ethwhale.whale_candidates,
-- both CONCURRENTLY (readers are never blocked).
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

-- ethwhale.schedule_refresh(cron [, server]): a pg_cron job named
-- "ethwhale_refresh" running CALL ethwhale.refresh(...) on the cron schedule
-- (replacing an earlier one).  Returns the job id.
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
        USING 'ethwhale_refresh', cron,
              CASE WHEN server IS NULL THEN 'CALL ethwhale.refresh()'
                   ELSE format('CALL ethwhale.refresh(%L)', server) END;
    RETURN id;
END
$$;

-- ethwhale.unschedule_refresh(): remove the "ethwhale_refresh" job; false
-- when there was none.
CREATE FUNCTION ethwhale.unschedule_refresh()
RETURNS bool
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_job bool;
BEGIN
    PERFORM ethwhale.require_pg_cron();
    EXECUTE 'SELECT EXISTS (SELECT 1 FROM cron.job WHERE jobname = $1)' INTO found_job USING 'ethwhale_refresh';
    IF NOT found_job THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT cron.unschedule($1)' INTO found_job USING 'ethwhale_refresh';
    RETURN found_job;
END
$$;

-- ===========================================================================
-- end of: Sync and whale analytics (issue 5)
-- ===========================================================================

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
                -- the note at ethwhale.blocks): those filled in block order
                -- here, those of the look-ups by address, token and hash by
                -- ethwhale.index_partition (a bulk sync builds them after
                -- the rows are in); txs: the contracts a synced transaction
                -- created (their first ETH: balance_history)
                EXECUTE format(CASE t
                    WHEN 'blocks' THEN
                        'ALTER TABLE ethwhale.%1$I ADD PRIMARY KEY (chain_id, number);
                         CREATE INDEX ON ethwhale.%1$I (hash)'
                    WHEN 'txs' THEN
                        'ALTER TABLE ethwhale.%1$I ADD PRIMARY KEY (chain_id, block, tx_index);
                         CREATE INDEX ON ethwhale.%1$I USING brin (block);
                         CREATE INDEX ON ethwhale.%1$I (created_contract) WHERE created_contract IS NOT NULL'
                    ELSE
                        'ALTER TABLE ethwhale.%1$I ADD PRIMARY KEY (chain_id, block, log_index);
                         CREATE INDEX ON ethwhale.%1$I USING brin (block)'
                    END, part);
                PERFORM ethwhale.index_partition(format('ethwhale.%I', part)::regclass);
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
-- their statistics, and autovacuum would come later.  "Never" is asked of
-- the statistics' own record: the CREATE INDEX of a bulk sync sets the
-- table's reltuples, and the run's own changes are not yet counted in
-- n_mod_since_analyze while it runs.  Returns how many.
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
               AND (c.reltuples < 0 OR coalesce(st.last_analyze, st.last_autoanalyze) IS NULL
                    OR st.n_mod_since_analyze > 0.1 * greatest(c.reltuples, 1000))
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

-- ethwhale.partition_indexes: for every partition of txs and token_transfers,
-- the indexes of its look-ups by address, token and hash (txs: equality
-- look-ups of hashes only, so a hash index, a third the size of a btree on
-- 66 characters) and the index that serves each, or NULL when it has none.
-- Rows come in block order, but these keys come in random order: inserting
-- a row into each costs more than the heap (5-8 us against 3), and a bulk
-- sync builds them by sorting, after the rows are in (ethwhale.sync_run).
-- Any valid index of the same method on that column alone, with its
-- collation and default operator class, serves; OWN says the index has the
-- name CREATE INDEX gives it, which a bulk sync may drop.
CREATE FUNCTION ethwhale.partition_indexes()
RETURNS TABLE (chain_id bigint, first_block bigint, partition regclass, method text,
               column_name text, index regclass, own bool)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.chain_id, p.first_block, p.partition, s.method, s.col, ix.oid::regclass,
           ix.relname = format('%s_%s_idx', c.relname, s.col)
    FROM ethwhale.partitions p
    JOIN pg_class c ON c.oid = p.partition
    JOIN (VALUES ('txs', 'hash', 'hash'), ('txs', 'btree', 'from_address'), ('txs', 'btree', 'to_address'),
                 ('token_transfers', 'btree', 'from_address'), ('token_transfers', 'btree', 'to_address'),
                 ('token_transfers', 'btree', 'token')) s(tbl, method, col) ON s.tbl = p.table_name
    LEFT JOIN LATERAL (
        SELECT ic.oid, ic.relname
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_am am ON am.oid = ic.relam
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        JOIN pg_opclass opc ON opc.oid = i.indclass[0]
        WHERE i.indrelid = p.partition AND i.indnatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL
          AND i.indisvalid AND am.amname = s.method AND a.attname = s.col
          AND opc.opcdefault AND i.indcollation[0] = a.attcollation
        ORDER BY ic.relname = format('%s_%s_idx', c.relname, s.col) DESC, ic.oid
        LIMIT 1) ix ON true
$$;

-- ethwhale.index_partition(partition): build the indexes of
-- ethwhale.partition_indexes that PARTITION lacks.  Returns how many.
CREATE FUNCTION ethwhale.index_partition(part regclass)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
    n int := 0;
BEGIN
    FOR r IN SELECT x.method, x.column_name FROM ethwhale.partition_indexes() x
             WHERE x.partition = part AND x.index IS NULL ORDER BY x.column_name LOOP
        EXECUTE format('CREATE INDEX ON %s USING %s (%I)', part, r.method, r.column_name);
        n := n + 1;
    END LOOP;
    RETURN n;
END
$$;

-- ethwhale.index_partitions(chain, except_first): build what
-- ethwhale.index_partition builds on every partition of CHAIN, except those
-- whose range starts at EXCEPT_FIRST (the one a bulk sync is filling) and
-- those of a role the user is not a member of.
-- CALL ethwhale.sync runs it as it leaves a partition and at its end; after
-- a sync was killed, the next one does, or call it yourself.  Returns how
-- many indexes it built.
CREATE FUNCTION ethwhale.index_partitions(chain bigint, except_first bigint DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p regclass;
    n int := 0;
BEGIN
    -- one at a time per chain: the runs of a chain build and drop them
    PERFORM pg_advisory_xact_lock(hashtext('ethwhale.index_partitions ' || chain));
    FOR p IN SELECT DISTINCT x.partition FROM ethwhale.partition_indexes() x
             JOIN pg_class c ON c.oid = x.partition
             WHERE x.chain_id = chain AND x.index IS NULL AND x.first_block IS DISTINCT FROM except_first
               AND pg_has_role(c.relowner, 'USAGE')
             ORDER BY 1 LOOP
        n := n + ethwhale.index_partition(p);
    END LOOP;
    RETURN n;
END
$$;

-- ethwhale.indexed_through(chain): the last block of CHAIN before its first
-- partition without all its indexes (a bulk sync's, or one a killed sync
-- left), NULL when none lacks any.  A refresh reads no further: its
-- look-ups by address would scan that partition whole.
CREATE FUNCTION ethwhale.indexed_through(chain bigint)
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT min(x.first_block) - 1 FROM ethwhale.partition_indexes() x
    WHERE x.chain_id = chain AND x.index IS NULL
$$;

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

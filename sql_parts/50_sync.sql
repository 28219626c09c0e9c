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

-- ethwhale.sync_bulk_begin(server, chain, a, target, batch): a sync run is about to
-- copy blocks A..TARGET, in batches of BATCH, and A is the first of them in
-- its partition.  If the run adds at least a batch to that partition, and
-- at least as many blocks as it holds, the run fills it as a bulk load: the
-- partition's indexes by address, token and hash (ethwhale.partition_indexes)
-- are dropped now and built by sorting when the run leaves it, which costs
-- a fraction of inserting every row into them (bench/sync_scale).  The
-- indexes every other partition of the chain lacks (a killed run's) are
-- built now.  Returns whether the run fills the partition in bulk.  It is
-- only a faster way: what fails in it is a WARNING, and the run goes on
-- row by row.
CREATE FUNCTION ethwhale.sync_bulk_begin(server name, chain bigint, a bigint, target bigint, batch bigint)
RETURNS bool
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    st ethwhale.sync_state;
    lo bigint;
    adds bigint;
    holds bigint;
    bulk bool;
    ix regclass;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('ethwhale.index_partitions ' || chain));
    SELECT * INTO st FROM ethwhale.sync_state s WHERE s.chain_id = chain;
    lo := (a / st.partition_blocks) * st.partition_blocks;
    adds := least(target, lo + st.partition_blocks - 1) - a + 1;
    holds := greatest(0, a - greatest(lo, coalesce(st.first_block, a)));
    -- and only a partition we may build indexes on (CREATE INDEX wants
    -- its owner), at least a batch and as many blocks as it holds
    bulk := adds >= batch AND adds >= holds
            AND NOT EXISTS (SELECT 1 FROM ethwhale.partitions p JOIN pg_class c ON c.oid = p.partition
                            WHERE p.chain_id = chain AND p.first_block = lo
                              AND NOT pg_has_role(c.relowner, 'USAGE'));
    PERFORM ethwhale.index_partitions(chain, CASE WHEN bulk THEN lo END);
    IF bulk THEN
        -- only the indexes made here: one of the user's own is kept, and
        -- filled row by row
        FOR ix IN SELECT x.index FROM ethwhale.partition_indexes() x
                  WHERE x.chain_id = chain AND x.first_block = lo AND x.own LOOP
            EXECUTE format('DROP INDEX %s', ix);
        END LOOP;
    END IF;
    RETURN bulk;
EXCEPTION
    WHEN OTHERS THEN
        RAISE WARNING 'ethwhale.sync(%): blocks from % are written row by row: %', server, a, SQLERRM
            USING HINT = format('SELECT ethwhale.index_partitions(%s); builds what is missing.', chain);
        RETURN false;
END
$$;

-- ethwhale.sync_index_partitions(server, chain): ethwhale.index_partitions at
-- the end of a sync run, or after its error: what it cannot build (the
-- disk is full, say) is a WARNING, not an error, since the rows are in and
-- the next run builds it.
CREATE FUNCTION ethwhale.sync_index_partitions(server name, chain bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM ethwhale.index_partitions(chain);
EXCEPTION
    WHEN OTHERS THEN
        RAISE WARNING 'ethwhale.sync(%): the indexes of a partition filled in bulk were not built: %', server, SQLERRM
            USING HINT = format('The next sync builds them, or SELECT ethwhale.index_partitions(%s);', chain);
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
    part_first bigint;               -- the partition the bulk decision was made for
    size bigint;
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
                size := st.partition_blocks;
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
        -- entering a partition (from the second batch on, with the
        -- partitions committed): fill it in bulk?  In a transaction of its
        -- own, which holds no lock of the parents or of the cursor row while
        -- it builds the indexes of the partition left.
        IF ok AND may_commit AND head IS NOT NULL AND NOT need_reorg AND a <= target
           AND (a / size) * size IS DISTINCT FROM part_first THEN
            part_first := (a / size) * size;
            PERFORM ethwhale.sync_bulk_begin(server, chain, a, target, batch);
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
                -- the partition being filled in bulk gets its indexes even so
                PERFORM ethwhale.sync_index_partitions(server, chain);
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
    IF may_commit THEN
        PERFORM ethwhale.sync_index_partitions(server, chain);
        IF done > 0 THEN
            PERFORM ethwhale.analyze_partitions(chain);
        END IF;
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

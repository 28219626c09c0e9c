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

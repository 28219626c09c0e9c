-- ===========================================================================
-- Sync and whale analytics (issue 5)
--
-- sql_parts/40_chain.sql to 85_report.sql: SQL and PL/pgSQL over the
-- wrapper's foreign tables:
--   ethwhale.blocks, ethwhale.txs, ethwhale.token_transfers   local copy of the chain
--   ethwhale.sync_state, ethwhale.sync_status                  cursor and progress
--   CALL ethwhale.sync(server, from_block, to_block)           copy, batch by batch
--   ethwhale.address_label, ethwhale.load_labels(path)         labels
--   ethwhale.large_transfers (70), whale_candidates (78)       materialized views
--   ethwhale.alert_rule, ethwhale.alerts (75)                  alerts, NOTIFY ethwhale_alert
--   ethwhale.balance_history(), ethwhale.price_correlation()   per-address analytics (76)
--   CALL ethwhale.refresh(), ethwhale.schedule_refresh(cron)   refresh, also via pg_cron
--   ethwhale.report_html(addresses) (85)                       the HTML report
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
-- the contracts a synced transaction created (their first ETH: balance_history)
CREATE INDEX txs_created_idx ON ethwhale.txs (created_contract) WHERE created_contract IS NOT NULL;
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

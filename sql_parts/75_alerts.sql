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

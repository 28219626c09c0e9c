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

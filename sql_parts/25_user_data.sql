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

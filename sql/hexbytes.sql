--
-- hexbytes: ethwhale.hexbytes, hashes and addresses stored as bytes and
-- read and written as the wrapper's text ('0x' and lowercase hex).
--
CREATE EXTENSION ethwhale_fdw;
SET search_path = ethwhale, public;

-- round trip, case folding, the empty value
SELECT '0x00ff10'::hexbytes, '0XABcdEF'::hexbytes, '0x'::hexbytes AS empty,
       octet_length('0x'::hexbytes::bytea) AS empty_len;
SELECT '0xdac17f958d2ee523a2206206994597c13d831ec7'::hexbytes::bytea;
SELECT '\x00ff'::bytea::hexbytes;

-- errors: odd length, bad digit, missing prefix, whitespace; NULL is NULL
SELECT '0x1'::hexbytes;
SELECT '0xzz'::hexbytes;
SELECT 'abcd'::hexbytes;
SELECT ''::hexbytes;
SELECT ' 0xab'::hexbytes;
SELECT '0xab '::hexbytes;
SELECT '0xé0'::hexbytes;
SELECT NULL::hexbytes IS NULL AS is_null;

-- soft errors: PostgreSQL 16 and later (15 has neither function: hexbytes_1.out)
SELECT pg_input_is_valid('0x1', 'ethwhale.hexbytes') AS odd,
       pg_input_is_valid('0xab', 'ethwhale.hexbytes') AS ok;
SELECT message, detail, hint, sql_error_code
  FROM pg_input_error_info('0xg0', 'ethwhale.hexbytes');

-- comparisons; byte order is the order of the lowercase text
SELECT '0x01'::hexbytes < '0x02'::hexbytes AS lt, '0x01'::hexbytes <= '0x01' AS le,
       '0x0100'::hexbytes > '0x01' AS gt, '0xff'::hexbytes >= '0xFF' AS ge,
       '0xAB'::hexbytes = '0xab' AS eq, '0xab'::hexbytes <> '0xac' AS ne,
       hexbytes_cmp('0x02', '0x01') AS cmp;

CREATE TABLE hx (id int PRIMARY KEY, h hexbytes, t text);
INSERT INTO hx
  SELECT i, ('0x' || md5(i::text))::hexbytes, '0x' || md5(i::text)
  FROM generate_series(1, 2000) i;
INSERT INTO hx VALUES (0, '0x', '0x');
INSERT INTO hx VALUES (-1, NULL, NULL);
SELECT count(*) AS rows_disagree FROM hx WHERE h::text IS DISTINCT FROM t;
SELECT (SELECT array_agg(id ORDER BY h, id) FROM hx) =
       (SELECT array_agg(id ORDER BY t COLLATE "C", id) FROM hx) AS same_order;
-- the same for values of several lengths: a prefix sorts first
SELECT v FROM (VALUES ('0x01'::hexbytes), ('0x'), ('0x0100'), ('0xff'), ('0x00'), ('0x01ff'))
  AS x(v) ORDER BY v;

-- the stored size: a 1-byte header and 20 bytes for an address
CREATE TABLE hx_size (a hexbytes);
INSERT INTO hx_size VALUES ('0x' || repeat('ab', 20));
SELECT pg_column_size(a) AS address_size FROM hx_size;
SELECT t.typlen, t.typalign, t.typstorage, t.typcategory, b.typalign AS bytea_align
  FROM pg_type t, pg_type b
  WHERE t.oid = 'ethwhale.hexbytes'::regtype AND b.oid = 'bytea'::regtype;

-- btree and hash indexes: same answers as a sequential scan
ANALYZE hx;
CREATE TEMP TABLE probe AS
  SELECT h, t FROM hx WHERE id IN (0, 7, 1000, 1999);
SELECT count(*) AS seq_hits FROM hx WHERE h IN (SELECT h FROM probe);
CREATE INDEX hx_h_btree ON hx (h);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM hx WHERE h = '0xc4ca4238a0b923820dcc509a6f75849b';
SELECT id FROM hx WHERE h = '0xC4CA4238A0B923820DCC509A6F75849B';
EXPLAIN (COSTS OFF) SELECT id FROM hx WHERE h > '0xff' ORDER BY h;
SELECT count(*) AS idx_range,
       (SELECT count(*) FROM hx WHERE t > '0xff' COLLATE "C") AS text_range
  FROM hx WHERE h > '0xff';
DROP INDEX hx_h_btree;
CREATE INDEX hx_h_hash ON hx USING hash (h);
EXPLAIN (COSTS OFF) SELECT id FROM hx WHERE h = '0xc4ca4238a0b923820dcc509a6f75849b';
SELECT id FROM hx WHERE h = '0xc4ca4238a0b923820dcc509a6f75849b';
SELECT count(*) AS hash_hits FROM probe p WHERE EXISTS (SELECT FROM hx WHERE hx.h = p.h);
DROP INDEX hx_h_hash;
RESET enable_bitmapscan;
RESET enable_seqscan;

-- hash join and merge join
CREATE TEMP TABLE hx2 AS SELECT id, h FROM hx WHERE id % 3 = 0;
ANALYZE hx2;
SET enable_mergejoin = off;
SET enable_nestloop = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM hx JOIN hx2 USING (h);
SELECT count(*) AS hash_join FROM hx JOIN hx2 USING (h);
RESET enable_mergejoin;
SET enable_hashjoin = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM hx JOIN hx2 USING (h);
SELECT count(*) AS merge_join FROM hx JOIN hx2 USING (h);
RESET enable_hashjoin;
RESET enable_nestloop;
SELECT count(DISTINCT h) AS distinct_h, (SELECT count(*) FROM (SELECT h FROM hx GROUP BY h) g) AS groups
  FROM hx;

-- casts
SELECT castsource::regtype, casttarget::regtype, castmethod, castcontext
  FROM pg_cast
  WHERE 'ethwhale.hexbytes'::regtype IN (castsource, casttarget)
  ORDER BY 1::text, 2::text;
SELECT '0xAB'::text::hexbytes, '0xab'::hexbytes::text, '0xAB'::varchar::hexbytes,
       '0xab'::hexbytes::varchar(10), '0xab'::hexbytes::bytea;
CREATE TEMP TABLE hx_text (t text, v varchar, b bytea, h hexbytes);
INSERT INTO hx_text (t, v, b, h)
  VALUES ('0xab'::hexbytes, '0xcd'::hexbytes, '0xef'::hexbytes, '\x01'::bytea);
INSERT INTO hx_text (h) VALUES ('0xAA'::text);
SELECT * FROM hx_text;

-- with text: the hexbytes operator (and its index) for hexbytes vs text
CREATE INDEX hx_h ON hx (h);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT id FROM hx WHERE h = '0xc4ca4238a0b923820dcc509a6f75849b'::text;
EXPLAIN (COSTS OFF) SELECT id FROM hx WHERE h = '0xc4ca4238a0b923820dcc509a6f75849b'::text;
PREPARE by_texts(text[]) AS SELECT id FROM hx WHERE h = ANY ($1) ORDER BY id;
EXPLAIN (COSTS OFF) EXECUTE by_texts('{0xc4ca4238a0b923820dcc509a6f75849b}');
EXECUTE by_texts(ARRAY['0xc4ca4238a0b923820dcc509a6f75849b', '0XC81E728D9D4C2F636F067F89CC14862C']);
SELECT id FROM hx WHERE h = ANY ('{0x,0xc4ca4238a0b923820dcc509a6f75849b}'::text[]) ORDER BY id;
RESET enable_bitmapscan;
RESET enable_seqscan;
SELECT count(*) AS in_text FROM hx WHERE h IN (SELECT t FROM probe);
SELECT count(*) AS eq_text_col FROM hx WHERE h = t;
SELECT count(*) AS text_col_eq FROM hx WHERE t = h;
SELECT h || 'x' AS concat, 'x' || h AS concat2, format('%s|%I', h, h) AS fmt,
       to_jsonb(h) AS jsonb, jsonb_build_object('a', h) AS obj, to_json(h) AS json,
       lower(h::text) AS lower, left(h::text, 6) AS left6, h::text LIKE '0xc4%' AS like
  FROM hx WHERE id = 1;
SELECT array_agg(h ORDER BY h) AS agg FROM hx WHERE id IN (0, 1, 2);
SELECT COALESCE(h, t) AS coalesced, pg_typeof(COALESCE(h, t)) FROM hx WHERE id = 1;
SELECT pg_typeof(CASE WHEN true THEN h ELSE '0x' END) FROM hx WHERE id = 1;

-- text expressions still resolve to text = text (no ambiguity)
SELECT 'a'::text = 'a' AS text_unknown, 'a' = 'a'::text AS unknown_text, 'a' = 'a' AS unknowns,
       'abc'::varchar = 'abc'::varchar AS varchars, 'x'::varchar = 'x'::text AS varchar_text,
       'x'::name = 'x'::text AS name_text, 'a' < 'b' AS lt;
SELECT count(*) AS text_col_literal FROM hx WHERE t = '0x';
SELECT count(*) AS text_col_like FROM hx WHERE t LIKE '0xc4%';
SELECT count(*) AS text_col_varchar FROM hx WHERE t = '0x'::varchar;
SELECT pg_typeof('0x' || 'ab'), pg_typeof(coalesce('a', 'b'));
SELECT '\x01'::bytea = '\x01' AS bytea_unknown;
SELECT '\x01'::bytea = '0x01'::text;
-- varchar needs a cast (varchar -> hexbytes is by assignment)
SELECT '0x01'::hexbytes = '0x01'::varchar;
SELECT '0x01'::hexbytes = '0x01'::varchar::text AS varchar_via_text;

-- COPY in and out
COPY (SELECT h FROM hx WHERE id IN (0, 1, 2) ORDER BY id) TO STDOUT;
CREATE TEMP TABLE hx_copy (h hexbytes);
COPY hx_copy FROM STDIN;
0xABCDEF
0x
\N
\.
SELECT h FROM hx_copy;
COPY hx_copy FROM STDIN;
0xabc
\.
-- binary: send and receive are bytea's
SELECT hexbytes_send('0xABcd') AS sent;
COPY hx_copy TO '/tmp/ethwhale_hexbytes_regress.bin' (FORMAT binary);
CREATE TEMP TABLE hx_copy2 (h hexbytes);
COPY hx_copy2 FROM '/tmp/ethwhale_hexbytes_regress.bin' (FORMAT binary);
SELECT count(*) AS binary_round_trip FROM hx_copy a JOIN hx_copy2 b USING (h);

DROP TABLE hx, hx_size, probe, hx2, hx_text, hx_copy, hx_copy2;
DROP EXTENSION ethwhale_fdw;

-- ----------------------------------------------------- ethwhale.hexbytes
--
-- Hashes and addresses as their bytes, read and written as the wrapper's
-- text: '0x' and lowercase hex (either case and an empty '0x' on input).
-- The layout is bytea's (a varlena of the raw bytes, int4 alignment), so
-- bytea's internal functions serve its binary I/O, comparisons, hashing
-- and the casts to and from bytea; only the text I/O is C (hexbytes.c).
-- Ordering is bytea's, byte by byte, which is also the order of the
-- lowercase text of values of the same length.
--
-- STORAGE main: the values are 20 or 32 bytes, stored with a 1-byte
-- header (plain would force the 4-byte one and cap a value at a page);
-- main keeps a long value (calldata) in the row, compressed if it must,
-- and moves it out of line only as a last resort.
--
-- Casts with text: text -> hexbytes is implicit, so hexcol = textcol,
-- hexcol = ANY(text[]) and hexcol IN (SELECT textcol ...) use the hexbytes
-- operators and its indexes; hexbytes -> text is by assignment only (INSERT
-- into a text column, ::text), since an implicit cast both ways would make
-- every operator on the pair ambiguous.  The category is S (string), as
-- for citext, so that CASE/COALESCE/UNION of a hexbytes and a text, in that
-- order, are hexbytes; text stays the preferred type of the category, so
-- 'a' = 'b' and textcol = 'x' still resolve to text = text.

CREATE TYPE ethwhale.hexbytes;

CREATE FUNCTION ethwhale.hexbytes_in(cstring)
RETURNS ethwhale.hexbytes
AS 'MODULE_PATHNAME', 'ethwhale_hexbytes_in'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION ethwhale.hexbytes_out(ethwhale.hexbytes)
RETURNS cstring
AS 'MODULE_PATHNAME', 'ethwhale_hexbytes_out'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION ethwhale.hexbytes_recv(internal)
RETURNS ethwhale.hexbytes
AS 'bytearecv'
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION ethwhale.hexbytes_send(ethwhale.hexbytes)
RETURNS bytea
AS 'byteasend'
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE ethwhale.hexbytes (
  INPUT = ethwhale.hexbytes_in,
  OUTPUT = ethwhale.hexbytes_out,
  RECEIVE = ethwhale.hexbytes_recv,
  SEND = ethwhale.hexbytes_send,
  INTERNALLENGTH = VARIABLE,
  ALIGNMENT = int4,
  STORAGE = main,
  CATEGORY = 'S'
);

COMMENT ON TYPE ethwhale.hexbytes
  IS 'bytes (hashes, addresses) whose text form is 0x and lowercase hex';

-- ------------------------------------------------------------ comparisons

CREATE FUNCTION ethwhale.hexbytes_eq(ethwhale.hexbytes, ethwhale.hexbytes)
RETURNS bool AS 'byteaeq'
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION ethwhale.hexbytes_ne(ethwhale.hexbytes, ethwhale.hexbytes)
RETURNS bool AS 'byteane'
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION ethwhale.hexbytes_lt(ethwhale.hexbytes, ethwhale.hexbytes)
RETURNS bool AS 'bytealt'
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION ethwhale.hexbytes_le(ethwhale.hexbytes, ethwhale.hexbytes)
RETURNS bool AS 'byteale'
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION ethwhale.hexbytes_gt(ethwhale.hexbytes, ethwhale.hexbytes)
RETURNS bool AS 'byteagt'
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION ethwhale.hexbytes_ge(ethwhale.hexbytes, ethwhale.hexbytes)
RETURNS bool AS 'byteage'
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION ethwhale.hexbytes_cmp(ethwhale.hexbytes, ethwhale.hexbytes)
RETURNS int4 AS 'byteacmp'
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION ethwhale.hexbytes_sortsupport(internal)
RETURNS void AS 'bytea_sortsupport'
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE;

CREATE FUNCTION ethwhale.hexbytes_hash(ethwhale.hexbytes)
RETURNS int4 AS 'hashvarlena'
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE FUNCTION ethwhale.hexbytes_hash_extended(ethwhale.hexbytes, int8)
RETURNS int8 AS 'hashvarlenaextended'
LANGUAGE internal IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE OPERATOR ethwhale.= (
  LEFTARG = ethwhale.hexbytes, RIGHTARG = ethwhale.hexbytes,
  FUNCTION = ethwhale.hexbytes_eq,
  COMMUTATOR = OPERATOR(ethwhale.=), NEGATOR = OPERATOR(ethwhale.<>),
  RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES
);

CREATE OPERATOR ethwhale.<> (
  LEFTARG = ethwhale.hexbytes, RIGHTARG = ethwhale.hexbytes,
  FUNCTION = ethwhale.hexbytes_ne,
  COMMUTATOR = OPERATOR(ethwhale.<>), NEGATOR = OPERATOR(ethwhale.=),
  RESTRICT = neqsel, JOIN = neqjoinsel
);

CREATE OPERATOR ethwhale.< (
  LEFTARG = ethwhale.hexbytes, RIGHTARG = ethwhale.hexbytes,
  FUNCTION = ethwhale.hexbytes_lt,
  COMMUTATOR = OPERATOR(ethwhale.>), NEGATOR = OPERATOR(ethwhale.>=),
  RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);

CREATE OPERATOR ethwhale.<= (
  LEFTARG = ethwhale.hexbytes, RIGHTARG = ethwhale.hexbytes,
  FUNCTION = ethwhale.hexbytes_le,
  COMMUTATOR = OPERATOR(ethwhale.>=), NEGATOR = OPERATOR(ethwhale.>),
  RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);

CREATE OPERATOR ethwhale.> (
  LEFTARG = ethwhale.hexbytes, RIGHTARG = ethwhale.hexbytes,
  FUNCTION = ethwhale.hexbytes_gt,
  COMMUTATOR = OPERATOR(ethwhale.<), NEGATOR = OPERATOR(ethwhale.<=),
  RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);

CREATE OPERATOR ethwhale.>= (
  LEFTARG = ethwhale.hexbytes, RIGHTARG = ethwhale.hexbytes,
  FUNCTION = ethwhale.hexbytes_ge,
  COMMUTATOR = OPERATOR(ethwhale.<=), NEGATOR = OPERATOR(ethwhale.<),
  RESTRICT = scalargesel, JOIN = scalargejoinsel
);

-- btequalimage: the equal values are the same bytes, so a btree index
-- deduplicates (an address repeated in token_transfers).
CREATE OPERATOR CLASS ethwhale.hexbytes_ops
DEFAULT FOR TYPE ethwhale.hexbytes USING btree AS
  OPERATOR 1 ethwhale.<,
  OPERATOR 2 ethwhale.<=,
  OPERATOR 3 ethwhale.=,
  OPERATOR 4 ethwhale.>=,
  OPERATOR 5 ethwhale.>,
  FUNCTION 1 ethwhale.hexbytes_cmp(ethwhale.hexbytes, ethwhale.hexbytes),
  FUNCTION 2 ethwhale.hexbytes_sortsupport(internal),
  FUNCTION 4 pg_catalog.btequalimage(oid);

CREATE OPERATOR CLASS ethwhale.hexbytes_ops
DEFAULT FOR TYPE ethwhale.hexbytes USING hash AS
  OPERATOR 1 ethwhale.=,
  FUNCTION 1 ethwhale.hexbytes_hash(ethwhale.hexbytes),
  FUNCTION 2 ethwhale.hexbytes_hash_extended(ethwhale.hexbytes, int8);

-- ------------------------------------------------------------------ casts

-- The same bytes: binary-coercible both ways, by assignment (an implicit
-- one would let bytea's operators and functions compete with text's for
-- a hexbytes argument, and bytea = text resolve through hexbytes).
CREATE CAST (ethwhale.hexbytes AS bytea) WITHOUT FUNCTION AS ASSIGNMENT;
CREATE CAST (bytea AS ethwhale.hexbytes) WITHOUT FUNCTION AS ASSIGNMENT;

CREATE CAST (text AS ethwhale.hexbytes) WITH INOUT AS IMPLICIT;
CREATE CAST (ethwhale.hexbytes AS text) WITH INOUT AS ASSIGNMENT;
CREATE CAST (varchar AS ethwhale.hexbytes) WITH INOUT AS ASSIGNMENT;
CREATE CAST (ethwhale.hexbytes AS varchar) WITH INOUT AS ASSIGNMENT;


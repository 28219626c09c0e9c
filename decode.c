/*-------------------------------------------------------------------------
 *
 * decode.c
 *		  JSON-to-row decoding for ethwhale_fdw.
 *
 * Geth serialises Long and BigInt as "0x…" hex strings (since v1.12);
 * older nodes sent some Longs as JSON numbers, and other EIP-1767 servers
 * send decimal strings.  All three are accepted.  Wei amounts become exact
 * numerics: nothing here goes through floating point.
 *
 * jansson allocates through jsonmem.c: a parsed answer's tree is in an
 * arena that dies with the memory context given to EwParseJson, also when
 * an ERROR unwinds the scan.
 *
 * Each derived source (ether, USD, topics, code, selector) has a function
 * of its own below; each gives a Datum of the column's natural type, or
 * text for the type's input function, or NULL.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "compat.h"
#include "datatype/timestamp.h"
#include "ethwhale_fdw.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

/*
 * EwParseJson
 *		Parse an answer into a tree that is released by resetting cxt (in
 *		jsonmem.c's arena; with cxt NULL, palloc'd in CurrentMemoryContext).
 *		Deeply nested input is refused by jansson itself (its depth limit is
 *		2048), so hostile nesting cannot exhaust the stack.  skip: keys the
 *		fast path may leave out of a JSON-RPC result (EwJsonFastLoad); the
 *		tree of json_loadb keeps them, and no decoder reads them (an error's
 *		excerpt of an object shows them or not, as the answer was parsed).
 */
json_t *
EwParseJson(MemoryContext cxt, const char *body, size_t len,
			const char *const *skip, json_error_t *err)
{
	json_t	   *volatile root = NULL;

	if (cxt != NULL)
		EwJsonArenaBegin(cxt);
	PG_TRY();
	{
		/* jsonfast.c's subset first; jansson's tree or error otherwise */
		root = EwJsonFastLoad(body, len, skip);
		if (root == NULL)
			root = json_loadb(body, len, JSON_REJECT_DUPLICATES, err);
	}
	PG_FINALLY();
	{
		if (cxt != NULL)
			EwJsonArenaEnd(root != NULL);
	}
	PG_END_TRY();
	return root;
}

/*
 * EwJsonExcerpt
 *		A short printable form of a JSON value, for error details.
 */
char *
EwJsonExcerpt(json_t *j)
{
	char	   *s;
	char	   *out;

	if (j == NULL)
		return pstrdup("nothing");
	/* ASCII only: cutting below must not split a multibyte character */
	s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
	if (s == NULL)
		return pstrdup("?");
	if (strlen(s) > 80)
		out = psprintf("%.77s...", s);
	else
		out = pstrdup(s);
	EwJsonFree(s);
	return out;
}

/* Whether j is a string of "0x" and exactly n hex digits. */
static bool
is_hex_string(json_t *j, size_t n)
{
	return json_is_string(j) && EwIsHexDigits(json_string_value(j), n);
}

/* Whether j is a string of "0x" and whole bytes in hex (GraphQL Bytes). */
static bool
is_hex_bytes(json_t *j)
{
	return json_is_string(j) && EwIsHexBytes(json_string_value(j));
}

/*
 * EwIsErc20Transfer
 *		Whether a Log is an ERC-20 Transfer(address indexed, address indexed,
 *		uint256): three topics (the event, from, to), both addresses padded
 *		to 32 bytes with zeros, and 32 bytes of data.  ERC-721 puts the token
 *		id in a fourth topic and has no data; such logs are not transfers of
 *		an amount and are skipped.
 */
bool
EwIsErc20Transfer(json_t *log)
{
	json_t	   *topics = json_object_get(log, "topics");
	int			i;

	if (!json_is_array(topics) || json_array_size(topics) != 3 ||
		!is_hex_string(json_object_get(log, "data"), 64))
		return false;
	for (i = 0; i < 3; i++)
	{
		json_t	   *t = json_array_get(topics, i);

		if (!is_hex_string(t, 64))
			return false;
		if (i == 0 && pg_strcasecmp(json_string_value(t), EW_TRANSFER_TOPIC) != 0)
			return false;
		if (i > 0 && strncmp(json_string_value(t) + 2, "000000000000000000000000", 24) != 0)
			return false;
	}
	return true;
}

/*
 * EwJsonGetUint64
 *		A Long from the node: hex string, decimal string or JSON integer.
 */
bool
EwJsonGetUint64(json_t *j, uint64 *result)
{
	if (json_is_integer(j))
	{
		json_int_t	v = json_integer_value(j);

		if (v < 0)
			return false;
		*result = (uint64) v;
		return true;
	}
	if (json_is_string(j))
		return EwParseUint64(json_string_value(j), result);
	return false;
}

/*
 * EwInitColumn
 *		Decide how a field is converted into a column of the given type:
 *		directly when the type is the field's natural one, else through the
 *		type's input function from the field's text form.
 */
void
EwInitColumn(EwColumn *col, Form_pg_attribute attr, const EwField *field,
			 int attidx, bool rpc)
{
	Oid			natural[2] = {InvalidOid, InvalidOid};

	col->attidx = attidx;
	col->field = field;
	col->key = rpc ? field->rpc_key : field->key;
	col->subkey = rpc ? NULL : field->subkey;
	col->nested = false;
	col->typid = attr->atttypid;
	col->typmod = attr->atttypmod;
	switch (field->kind)
	{
		case EW_KIND_INT:
			natural[0] = INT8OID;
			natural[1] = INT4OID;
			break;
		case EW_KIND_BIGNUM:
			natural[0] = NUMERICOID;
			break;
		case EW_KIND_TEXT:
			natural[0] = TEXTOID;
			break;
		case EW_KIND_TIME:
			natural[0] = TIMESTAMPTZOID;
			natural[1] = TIMESTAMPOID;
			break;
		case EW_KIND_BOOL:
			natural[0] = BOOLOID;
			break;
	}
	col->direct = (attr->atttypid == natural[0] || attr->atttypid == natural[1]) &&
		attr->atttypmod < 0;
	if (!col->direct)
	{
		Oid			infunc;

		getTypeInputInfo(attr->atttypid, &infunc, &col->ioparam);
		fmgr_info(infunc, &col->infunc);
	}
}

/* The key of a field in the answers of the decoder's node API. */
static const char *
key_of(EwDecoder *d, const EwField *f)
{
	return d->rpc ? f->rpc_key : f->key;
}

/* The hint of an answer that does not have the expected shape. */
static const char *
node_hint(EwDecoder *d)
{
	return d->rpc ? "The node may not follow the Ethereum JSON-RPC specification as Geth serves it." :
		"The node may not follow EIP-1767 as Geth serves it.";
}

/*
 * bad_value
 *		Report a field whose JSON does not have the expected form.
 */
static void
bad_value(EwDecoder *d, const char *key, json_t *j, const char *expected)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("unexpected value for field \"%s\" in the answer of server \"%s\"",
					key, d->servername),
			 errdetail("Expected %s, got %s.", expected, EwJsonExcerpt(j)),
			 errhint("%s", node_hint(d))));
}

/*
 * field_json
 *		Locate a field's JSON value; NULL for JSON null or a null parent
 *		object ("to" of a contract creation).  A missing key is an error.
 */
static json_t *
field_json(EwDecoder *d, json_t *obj, const char *key, const char *subkey)
{
	json_t	   *j;

	if (!json_is_object(obj))
		bad_value(d, key, obj, "an object");
	j = json_object_get(obj, key);
	if (j == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("field \"%s\" is missing from the answer of server \"%s\"",
						key, d->servername),
				 errhint("%s", node_hint(d))));
	if (json_is_null(j))
		return NULL;
	if (subkey)
	{
		if (!json_is_object(j))
			bad_value(d, key, j, "an object");
		j = json_object_get(j, subkey);
		if (j == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("field \"%s.%s\" is missing from the answer of server \"%s\"",
							key, subkey, d->servername)));
		if (json_is_null(j))
			return NULL;
	}
	return j;
}

static int64
get_int(EwDecoder *d, const char *key, json_t *j)
{
	uint64		v;

	if (!EwJsonGetUint64(j, &v) || v > (uint64) PG_INT64_MAX)
		bad_value(d, key, j, "a hex number such as \"0x1a\" within 64 bits");
	return (int64) v;
}

static char *
get_bignum(EwDecoder *d, const char *key, json_t *j)
{
	bool		ok = false;
	char	   *s = NULL;

	if (json_is_string(j))
		s = EwHexToDecimal(json_string_value(j), &ok);
	else if (json_is_integer(j) && json_integer_value(j) >= 0)
	{
		s = psprintf(INT64_FORMAT, (int64) json_integer_value(j));
		ok = true;
	}
	if (!ok)
		bad_value(d, key, j, "a hex number such as \"0x1a\"");
	return s;
}

static TimestampTz
seconds_to_timestamptz(EwDecoder *d, const char *key, json_t *j, int64 secs)
{
	TimestampTz t;

	/* beyond timestamptz's range the arithmetic below would wrap */
	if (secs > (int64) 10000 * 366 * SECS_PER_DAY)
		bad_value(d, key, j, "a Unix time within the range of timestamptz");
	t = (TimestampTz) ((secs - ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY)) * USECS_PER_SEC);
	if (!IS_VALID_TIMESTAMP(t))
		bad_value(d, key, j, "a Unix time within the range of timestamptz");
	return t;
}

/* A numeric Datum from an exact decimal string. */
static Datum
numeric_from_text(const char *text)
{
	return DirectFunctionCall3(numeric_in, CStringGetDatum(text),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/*
 * day_price
 *		The ETH/USD price of the UTC day of a block; false when unknown.
 */
static bool
day_price(EwDecoder *d, json_t *block, Datum *price)
{
	json_t	   *tj = field_json(d, block, "timestamp", NULL);
	int64		ts = get_int(d, "timestamp", tj);
	int32		day;
	EwPriceEntry *e;

	/* as for block_time: beyond timestamptz the day would wrap to 32 bits */
	(void) seconds_to_timestamptz(d, "timestamp", tj, ts);
	day = (int32) (ts / SECS_PER_DAY);
	e = d->prices ? hash_search(d->prices, &day, HASH_FIND, NULL) : NULL;
	if (e == NULL)
		return false;
	*price = e->price;
	return true;
}

/*
 * EwValue: what decoding one field gives.  Exactly one of: isnull; text,
 * to be converted into the column's type; or datum, already of the
 * column's natural type.
 */
typedef struct EwValue
{
	bool		isnull;
	char	   *text;
	Datum		datum;
} EwValue;

/* A numeric Datum, or its text when the column is of another type. */
static void
numeric_value(const EwColumn *col, Datum n, EwValue *out)
{
	if (col->direct)
		out->datum = n;
	else
		out->text = DatumGetCString(DirectFunctionCall1(numeric_out, n));
}

/*
 * hex_text
 *		A lowercased copy of the first len characters of a hex string, as a
 *		text Datum when the column is text (one allocation, one pass: no C
 *		string copied again into a text), else as a C string for the
 *		column type's input function.
 */
static void
hex_text(const EwColumn *col, const char *s, size_t len, EwValue *out)
{
	char	   *p;
	size_t		i;

	if (col->direct)
	{
		text	   *t = (text *) palloc(VARHDRSZ + len);

		SET_VARSIZE(t, VARHDRSZ + len);
		p = VARDATA(t);
		out->datum = PointerGetDatum(t);
	}
	else
	{
		p = palloc(len + 1);
		p[len] = '\0';
		out->text = p;
	}
	for (i = 0; i < len; i++)
	{
		char		c = s[i];

		p[i] = (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
	}
}

/*
 * small_wei
 *		The amount of a BigInt field when it fits in 63 bits (most do), for
 *		the numeric paths that need no decimal string.
 */
static bool
small_wei(json_t *j, int64 *v)
{
	uint64		u;

	if (json_is_string(j) && json_string_length(j) <= 17 &&
		EwParseUint64(json_string_value(j), &u) && u <= (uint64) PG_INT64_MAX)
	{
		*v = (int64) u;
		return true;
	}
	return false;
}

/*
 * wei_to_eth
 *		Wei as an exact ether numeric, of the scale EwWeiToEth's text gives
 *		(no trailing zeros): for amounts within 63 bits without the decimal
 *		string and numeric_in.
 */
static Datum
wei_to_eth(EwDecoder *d, const char *key, json_t *j)
{
	int64		v;
	int			scale = 18;

	if (!small_wei(j, &v))
		return numeric_from_text(EwWeiToEth(get_bignum(d, key, j)));
	while (scale > 0 && v % 10 == 0)
	{
		v /= 10;
		scale--;
	}
	return NumericGetDatum(int64_div_fast_to_numeric(v, scale));
}

/*
 * decode_account_block
 *		eth_account.block: the block the accounts were read at, NULL for the
 *		head.
 */
static void
decode_account_block(EwDecoder *d, const EwColumn *col, EwValue *out)
{
	if (d->account_block < 0)
		out->isnull = true;
	else if (col->direct && col->typid == INT8OID)
		out->datum = Int64GetDatum(d->account_block);
	else if (col->direct)
	{
		/* an int column: direct too, so it has no input function */
		if (d->account_block > PG_INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("block " INT64_FORMAT " is out of range for type integer",
							d->account_block),
					 errhint("Declare the column bigint.")));
		out->datum = Int32GetDatum((int32) d->account_block);
	}
	else
		out->text = psprintf(INT64_FORMAT, d->account_block);
}

/*
 * decode_value_usd
 *		Wei at the ETH/USD price of the block's UTC day; NULL when the day
 *		has no price.
 */
static void
decode_value_usd(EwDecoder *d, const EwColumn *col, json_t *block, json_t *j,
				 EwValue *out)
{
	Datum		price;

	if (!day_price(d, block, &price))
	{
		out->isnull = true;
		return;
	}
	numeric_value(col,
				  DirectFunctionCall2(numeric_mul, wei_to_eth(d, col->key, j), price),
				  out);
}

/*
 * decode_amount_usd
 *		A token amount priced by ethwhale.token: its peg, or the day's ETH
 *		price for a token priced as ETH; NULL for an unknown token or day.
 */
static void
decode_amount_usd(EwDecoder *d, const EwColumn *col, json_t *block,
				  json_t *row, json_t *j, EwValue *out)
{
	json_t	   *tj = d->rpc ? field_json(d, row, "address", NULL) :
		field_json(d, row, "account", "address");
	EwTokenEntry *te;
	Datum		price;

	if (!json_is_string(tj))
		bad_value(d, "account", tj, "an address");
	te = d->tokens ? hash_search(d->tokens, EwLowerHex(json_string_value(tj)),
								 HASH_FIND, NULL) : NULL;
	if (te == NULL || (te->as_eth && !day_price(d, block, &price)))
	{
		out->isnull = true;
		return;
	}
	if (!te->as_eth)
		price = te->peg;
	numeric_value(col,
				  DirectFunctionCall2(numeric_mul,
									  numeric_from_text(EwShiftDecimal(get_bignum(d, col->key, j),
																	   te->decimals)),
									  price),
				  out);
}

/*
 * decode_topic_address
 *		A Transfer's sender or receiver: the last 20 bytes of its topic (the
 *		log passed EwIsErc20Transfer, so the topic is a padded address).
 */
static void
decode_topic_address(EwDecoder *d, const EwColumn *col, json_t *j, EwValue *out)
{
	const EwField *f = col->field;
	char	   *p;

	j = json_array_get(j, f->topic);
	if (!json_is_string(j) || json_string_length(j) != 66)
		bad_value(d, key_of(d, f), j, "a 32-byte topic");
	hex_text(col, json_string_value(j) + 24, 42, out);
	p = col->direct ? VARDATA(DatumGetPointer(out->datum)) : out->text;
	p[0] = '0';
	p[1] = 'x';
}

/*
 * decode_code
 *		code_size (bytes of code) and is_contract (any code at all).
 */
static void
decode_code(EwDecoder *d, const EwColumn *col, json_t *j, EwValue *out)
{
	const EwField *f = col->field;
	int64		size;

	if (!is_hex_bytes(j))
		bad_value(d, key_of(d, f), j, "bytes in hex (\"0x\" and an even number of hex digits)");
	size = (int64) (strlen(json_string_value(j)) - 2) / 2;
	if (f->source == EW_SRC_IS_CONTRACT)
	{
		if (col->direct)
			out->datum = BoolGetDatum(size > 0);
		else
			out->text = pstrdup(size > 0 ? "true" : "false");
	}
	else if (col->direct && col->typid == INT8OID)
		out->datum = Int64GetDatum(size);
	else if (col->direct)
		out->datum = Int32GetDatum((int32) size);
	else
		out->text = psprintf(INT64_FORMAT, size);
}

/*
 * decode_selector
 *		The first four bytes of a transaction's input, NULL for none.
 */
static void
decode_selector(EwDecoder *d, const EwColumn *col, json_t *j, EwValue *out)
{
	size_t		len;

	if (!is_hex_bytes(j))
		bad_value(d, key_of(d, col->field), j, "bytes in hex (\"0x\" and an even number of hex digits)");
	len = json_string_length(j);
	if (len <= 2)
	{
		out->isnull = true;
		return;
	}
	hex_text(col, json_string_value(j), Min(len, 10), out);
}

/*
 * decode_int
 *		A Long or Int field.
 */
static void
decode_int(EwDecoder *d, const EwColumn *col, json_t *j, EwValue *out)
{
	const char *key = col->key;
	int64		iv = get_int(d, key, j);

	if (col->direct && col->typid == INT8OID)
		out->datum = Int64GetDatum(iv);
	else if (col->direct)
	{
		if (iv > PG_INT32_MAX)
			bad_value(d, key, j, "a number within the range of integer");
		out->datum = Int32GetDatum((int32) iv);
	}
	else
		out->text = psprintf(INT64_FORMAT, iv);
}

/*
 * decode_bignum
 *		A BigInt field, exact.  Most amounts fit in 63 bits: those make the
 *		numeric without a decimal string and numeric_in.
 */
static void
decode_bignum(EwDecoder *d, const EwColumn *col, json_t *j, EwValue *out)
{
	int64		small;

	if (col->direct && small_wei(j, &small))
		out->datum = NumericGetDatum(int64_to_numeric(small));
	else
		out->text = get_bignum(d, col->key, j);
}

/*
 * decode_hex_text
 *		An address or a 32-byte hash, lowercased.
 */
static void
decode_hex_text(EwDecoder *d, const EwColumn *col, json_t *j, EwValue *out)
{
	const EwField *f = col->field;
	bool		is_addr = (f->flags & EW_FIELD_ADDRESS) != 0;

	if (!is_hex_string(j, is_addr ? 40 : 64))
		bad_value(d, key_of(d, f), j, is_addr ?
				  "an address (\"0x\" and 40 hex digits)" :
				  "a hash (\"0x\" and 64 hex digits)");
	hex_text(col, json_string_value(j), is_addr ? 42 : 66, out);
}

/*
 * decode_time
 *		A Unix time: timestamptz, or the seconds for a numeric column.
 */
static void
decode_time(EwDecoder *d, const EwColumn *col, json_t *j, EwValue *out)
{
	const char *key = col->key;
	int64		secs = get_int(d, key, j);

	if (col->direct)
		out->datum = TimestampTzGetDatum(seconds_to_timestamptz(d, key, j, secs));
	else if (TypeCategory(col->typid) == TYPCATEGORY_NUMERIC)
		out->text = psprintf(INT64_FORMAT, secs);
	else
		out->text = DatumGetCString(DirectFunctionCall1(timestamptz_out,
														TimestampTzGetDatum(seconds_to_timestamptz(d, key, j, secs))));
}

/*
 * decode_field
 *		One column's value from the block and row objects.
 */
static void
decode_field(EwDecoder *d, const EwColumn *col, json_t *block, json_t *row,
			 EwValue *out)
{
	const EwField *f = col->field;
	json_t	   *j;

	if (f->source == EW_SRC_ACCOUNT_BLOCK)
	{
		decode_account_block(d, col, out);
		return;
	}
	if (f->source == EW_SRC_BLOCK || f->source == EW_SRC_BLOCK_NUMBER ||
		f->source == EW_SRC_BLOCK_TIME)
		j = field_json(d, block, col->key, col->subkey);
	else if (col->nested)
		j = field_json(d, field_json(d, row, "transaction", NULL), col->key, col->subkey);
	else
		j = field_json(d, row, col->key, col->subkey);
	if (j == NULL)
	{
		out->isnull = true;
		return;
	}
	switch (f->source)
	{
		case EW_SRC_VALUE_ETH:
			if (col->direct)
				out->datum = wei_to_eth(d, col->key, j);
			else
				out->text = EwWeiToEth(get_bignum(d, col->key, j));
			break;
		case EW_SRC_VALUE_USD:
			decode_value_usd(d, col, block, j, out);
			break;
		case EW_SRC_TOPIC_ADDRESS:
			decode_topic_address(d, col, j, out);
			break;
		case EW_SRC_AMOUNT:
			out->text = get_bignum(d, col->key, j);
			break;
		case EW_SRC_AMOUNT_USD:
			decode_amount_usd(d, col, block, row, j, out);
			break;
		case EW_SRC_CODE_SIZE:
		case EW_SRC_IS_CONTRACT:
			decode_code(d, col, j, out);
			break;
		case EW_SRC_SELECTOR:
			decode_selector(d, col, j, out);
			break;
		default:
			switch (f->kind)
			{
				case EW_KIND_INT:
					decode_int(d, col, j, out);
					break;
				case EW_KIND_BIGNUM:
					decode_bignum(d, col, j, out);
					break;
				case EW_KIND_TEXT:
					decode_hex_text(d, col, j, out);
					break;
				case EW_KIND_TIME:
					decode_time(d, col, j, out);
					break;
				case EW_KIND_BOOL:
					/* only derived fields (is_contract) are truth values */
					elog(ERROR, "ethwhale_fdw: field \"%s\" has no decoder", f->name);
			}
			break;
	}
}

/*
 * EwDecodeRow
 *		Fill values/nulls for the needed columns from one block and, for the
 *		row tables, one row object (NULL for a counted row, when no row
 *		field was requested).
 */
void
EwDecodeRow(EwDecoder *d, json_t *block, json_t *row, Datum *values, bool *nulls)
{
	EwDecodeColumns(d, block, row, values, nulls, 0, d->ncols);
}

/*
 * EwDecodeColumns
 *		EwDecodeRow for the decoder's columns first .. last-1 only, so that
 *		the columns of the wrapper's filters can be decoded and tested before
 *		the rest of the row is.
 */
void
EwDecodeColumns(EwDecoder *d, json_t *block, json_t *row, Datum *values,
				bool *nulls, int first, int last)
{
	int			i;

	for (i = first; i < last; i++)
	{
		const EwColumn *col = &d->cols[i];
		EwValue		v = {false, NULL, (Datum) 0};

		d->current = col;
		decode_field(d, col, block, row, &v);
		if (v.isnull)
		{
			nulls[col->attidx] = true;
			continue;
		}
		if (v.text != NULL && col->direct)
			v.datum = col->field->kind == EW_KIND_TEXT ? CStringGetTextDatum(v.text) :
				numeric_from_text(v.text);
		else if (v.text != NULL)
			v.datum = InputFunctionCall((FmgrInfo *) &col->infunc, v.text,
										col->ioparam, col->typmod);
		values[col->attidx] = v.datum;
		nulls[col->attidx] = false;
	}
	d->current = NULL;
}

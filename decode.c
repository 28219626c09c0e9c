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
 * jansson allocates through palloc in the memory context set with
 * EwJsonUseContext, so a parsed answer is released by resetting that
 * context, also when an ERROR unwinds the scan.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "ethwhale_fdw.h"
#include "executor/spi.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

/* Longest hex number accepted; uint256 needs 64 digits. */
#define EW_MAX_HEX_DIGITS 128

/* Where jansson allocates; NULL means CurrentMemoryContext. */
static MemoryContext json_cxt = NULL;

static void *
json_palloc(size_t size)
{
	/* Never throw inside jansson: report failure by returning NULL. */
	return MemoryContextAllocExtended(json_cxt ? json_cxt : CurrentMemoryContext,
									  size, MCXT_ALLOC_NO_OOM | MCXT_ALLOC_HUGE);
}

static void
json_pfree(void *ptr)
{
	if (ptr)
		pfree(ptr);
}

/*
 * EwJsonInit
 *		Route every jansson allocation of this backend through palloc.  Called
 *		once from _PG_init, before any jansson call, so that nothing is ever
 *		allocated with malloc and released with pfree or the other way round.
 */
void
EwJsonInit(void)
{
	json_set_alloc_funcs(json_palloc, json_pfree);
}

/*
 * EwParseJson
 *		Parse an answer into a tree allocated in cxt; the tree is released by
 *		resetting cxt.  Deeply nested input is refused by jansson itself (its
 *		depth limit is 2048), so hostile nesting cannot exhaust the stack.
 */
json_t *
EwParseJson(MemoryContext cxt, const char *body, size_t len, json_error_t *err)
{
	json_t	   *root;

	json_cxt = cxt;
	PG_TRY();
	{
		root = json_loadb(body, len, JSON_REJECT_DUPLICATES, err);
	}
	PG_FINALLY();
	{
		json_cxt = NULL;
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
	json_pfree(s);
	return out;
}

/*
 * EwParseUint64
 *		Parse "0x…" hex or plain decimal into a uint64; false if malformed
 *		or out of range.
 */
bool
EwParseUint64(const char *s, uint64 *result)
{
	uint64		v = 0;
	const char *p;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
	{
		int			digits = 0;

		for (p = s + 2; *p; p++)
		{
			int			d;

			if (*p >= '0' && *p <= '9')
				d = *p - '0';
			else if (*p >= 'a' && *p <= 'f')
				d = *p - 'a' + 10;
			else if (*p >= 'A' && *p <= 'F')
				d = *p - 'A' + 10;
			else
				return false;
			if (v > (PG_UINT64_MAX >> 4))
				return false;
			v = (v << 4) | (uint64) d;
			digits++;
		}
		if (digits == 0)
			return false;
	}
	else
	{
		if (*s == '\0')
			return false;
		for (p = s; *p; p++)
		{
			if (*p < '0' || *p > '9')
				return false;
			if (v > (PG_UINT64_MAX - (uint64) (*p - '0')) / 10)
				return false;
			v = v * 10 + (uint64) (*p - '0');
		}
	}
	*result = v;
	return true;
}

/*
 * EwHexToDecimal
 *		Convert "0x…" hex (or an already decimal string) of any length up to
 *		EW_MAX_HEX_DIGITS into a palloc'd decimal string.
 */
char *
EwHexToDecimal(const char *s, bool *ok)
{
	uint32		limbs[EW_MAX_HEX_DIGITS / 7 + 2];	/* base 1e9, little end */
	int			nlimbs = 1;
	const char *p;
	int			digits = 0;
	StringInfoData out;
	int			i;
	uint64		small;

	*ok = false;
	if (!(s[0] == '0' && (s[1] == 'x' || s[1] == 'X')))
	{
		/* decimal: validate and strip leading zeros */
		if (*s == '\0' || strspn(s, "0123456789") != strlen(s) ||
			strlen(s) > EW_MAX_HEX_DIGITS * 2)
			return NULL;
		while (s[0] == '0' && s[1] != '\0')
			s++;
		*ok = true;
		return pstrdup(s);
	}

	/* fast path: fits in 64 bits */
	if (strlen(s + 2) <= 16)
	{
		if (!EwParseUint64(s, &small))
			return NULL;
		*ok = true;
		return psprintf(UINT64_FORMAT, small);
	}

	limbs[0] = 0;
	for (p = s + 2; *p; p++)
	{
		uint64		carry;
		int			d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return NULL;
		if (++digits > EW_MAX_HEX_DIGITS)
			return NULL;
		carry = (uint64) d;
		for (i = 0; i < nlimbs; i++)
		{
			uint64		x = (uint64) limbs[i] * 16 + carry;

			limbs[i] = (uint32) (x % 1000000000);
			carry = x / 1000000000;
		}
		if (carry)
			limbs[nlimbs++] = (uint32) carry;
	}
	if (digits == 0)
		return NULL;

	initStringInfo(&out);
	appendStringInfo(&out, "%u", limbs[nlimbs - 1]);
	for (i = nlimbs - 2; i >= 0; i--)
		appendStringInfo(&out, "%09u", limbs[i]);
	*ok = true;
	return out.data;
}

/*
 * EwShiftDecimal
 *		Divide a non-negative decimal integer string by 10^places exactly,
 *		as a decimal string without trailing zeros.
 */
char *
EwShiftDecimal(const char *digits, int places)
{
	size_t		len = strlen(digits);
	StringInfoData out;
	int			end;

	initStringInfo(&out);
	if (places <= 0)
	{
		appendStringInfoString(&out, digits);
		return out.data;
	}
	if (len <= (size_t) places)
	{
		appendStringInfoString(&out, "0.");
		appendStringInfoSpaces(&out, (int) (places - len));
		memset(out.data + 2, '0', places - len);
		appendStringInfoString(&out, digits);
	}
	else
	{
		appendBinaryStringInfo(&out, digits, (int) (len - places));
		appendStringInfoChar(&out, '.');
		appendStringInfoString(&out, digits + len - places);
	}
	end = out.len;
	while (end > 0 && out.data[end - 1] == '0')
		end--;
	if (end > 0 && out.data[end - 1] == '.')
		end--;
	out.data[end] = '\0';
	out.len = end;
	return out.data;
}

/*
 * EwWeiToEth
 *		Wei as ether: divide by 10^18 exactly.
 */
char *
EwWeiToEth(const char *wei)
{
	return EwShiftDecimal(wei, 18);
}

/*
 * EwIsAddress
 *		Whether s is an address as the wrapper returns it: "0x" and 40
 *		lowercase hex digits.  Anything else cannot equal a column value.
 */
bool
EwIsAddress(const char *s)
{
	return strlen(s) == 42 && s[0] == '0' && s[1] == 'x' &&
		strspn(s + 2, "0123456789abcdef") == 40;
}

/* Whether j is a string of "0x" and exactly n hex digits. */
static bool
is_hex_string(json_t *j, size_t n)
{
	const char *s;

	if (!json_is_string(j))
		return false;
	s = json_string_value(j);
	return strlen(s) == n + 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') &&
		strspn(s + 2, "0123456789abcdefABCDEF") == n;
}

/* Whether j is a string of "0x" and whole bytes in hex (GraphQL Bytes). */
static bool
is_hex_bytes(json_t *j)
{
	const char *s;
	size_t		n;

	if (!json_is_string(j))
		return false;
	s = json_string_value(j);
	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return false;
	n = strlen(s + 2);
	return n % 2 == 0 && strspn(s + 2, "0123456789abcdefABCDEF") == n;
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
			 int attidx)
{
	Oid			natural[2] = {InvalidOid, InvalidOid};

	col->attidx = attidx;
	col->field = field;
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

/*
 * EwLoadPrices
 *		Read ethwhale.eth_usd once per scan into a day -> price hash table.
 */
typedef struct PriceEntry
{
	int32		day;			/* days since the Unix epoch */
	Datum		price;			/* numeric, in the hash's context */
} PriceEntry;

HTAB *
EwLoadPrices(MemoryContext cxt)
{
	HASHCTL		ctl;
	HTAB	   *h;
	uint64		i;
	int			rc;

	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(PriceEntry);
	ctl.hcxt = cxt;
	h = hash_create("ethwhale_fdw prices", 4096, &ctl,
					HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute("SELECT (day - DATE '1970-01-01')::int4, price "
					 "FROM ethwhale.eth_usd WHERE price IS NOT NULL", true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read ethwhale.eth_usd: %s", SPI_result_code_string(rc));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int32		day = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													  SPI_tuptable->tupdesc, 1, &isnull));
		Datum		price = SPI_getbinval(SPI_tuptable->vals[i],
										  SPI_tuptable->tupdesc, 2, &isnull);
		PriceEntry *e = hash_search(h, &day, HASH_ENTER, NULL);
		MemoryContext old = MemoryContextSwitchTo(cxt);

		e->price = datumCopy(price, false, -1);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return h;
}

/*
 * EwLoadTokens
 *		Read ethwhale.token once per scan: address -> decimals and USD peg
 *		(NULL peg: priced as ETH, e.g. WETH).  Tokens without decimals
 *		cannot be priced and are left out.
 */
typedef struct TokenEntry
{
	char		address[43];	/* hash key: "0x" + 40 lowercase hex */
	int			decimals;
	bool		as_eth;			/* priced at the day's ETH/USD */
	Datum		peg;			/* numeric USD price, unless as_eth */
} TokenEntry;

HTAB *
EwLoadTokens(MemoryContext cxt)
{
	HASHCTL		ctl;
	HTAB	   *h;
	uint64		i;
	int			rc;

	ctl.keysize = 43;
	ctl.entrysize = sizeof(TokenEntry);
	ctl.hcxt = cxt;
	h = hash_create("ethwhale_fdw tokens", 64, &ctl,
					HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute("SELECT lower(address), decimals, usd_peg FROM ethwhale.token "
					 "WHERE decimals BETWEEN 0 AND 77", true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read ethwhale.token: %s", SPI_result_code_string(rc));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *addr = SPI_getvalue(tup, desc, 1);
		int32		decimals = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
		Datum		peg = SPI_getbinval(tup, desc, 3, &isnull);
		TokenEntry *e;
		MemoryContext old;

		if (addr == NULL || !EwIsAddress(addr))
			continue;
		e = hash_search(h, addr, HASH_ENTER, NULL);
		e->decimals = decimals;
		e->as_eth = isnull;
		old = MemoryContextSwitchTo(cxt);
		e->peg = isnull ? (Datum) 0 : datumCopy(peg, false, -1);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return h;
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
			 errhint("The node may not follow EIP-1767 as Geth serves it.")));
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
				(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
				 errmsg("field \"%s\" is missing from the answer of server \"%s\"",
						key, d->servername),
				 errhint("The node may not follow EIP-1767 as Geth serves it.")));
	if (json_is_null(j))
		return NULL;
	if (subkey)
	{
		if (!json_is_object(j))
			bad_value(d, key, j, "an object");
		j = json_object_get(j, subkey);
		if (j == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
					 errmsg("field \"%s.%s\" is missing from the answer of server \"%s\"",
							key, subkey, d->servername)));
		if (json_is_null(j))
			return NULL;
	}
	return j;
}

/* Lowercase copy of a hex string. */
static char *
lower_hex(const char *s)
{
	char	   *r = pstrdup(s);
	char	   *p;

	for (p = r; *p; p++)
		*p = pg_ascii_tolower((unsigned char) *p);
	return r;
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
	PriceEntry *e;

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
 * EwDecodeRow
 *		Fill values/nulls for the needed columns from one block and, for the
 *		transaction table, one transaction object (tx is NULL for a counted
 *		row, when no transaction field was requested).
 */
void
EwDecodeRow(EwDecoder *d, json_t *block, json_t *tx, Datum *values, bool *nulls)
{
	EwDecodeColumns(d, block, tx, values, nulls, 0, d->ncols);
}

/*
 * EwDecodeColumns
 *		EwDecodeRow for the decoder's columns first .. last-1 only, so that
 *		the columns of the wrapper's filters can be decoded and tested before
 *		the rest of the row is.
 */
void
EwDecodeColumns(EwDecoder *d, json_t *block, json_t *tx, Datum *values,
				bool *nulls, int first, int last)
{
	int			i;

	for (i = first; i < last; i++)
	{
		EwColumn   *col = &d->cols[i];
		const EwField *f = col->field;
		json_t	   *obj;
		json_t	   *j;
		char	   *text = NULL;
		Datum		v = (Datum) 0;

		d->current = col;
		switch (f->source)
		{
			case EW_SRC_BLOCK:
			case EW_SRC_BLOCK_NUMBER:
			case EW_SRC_BLOCK_TIME:
				obj = block;
				break;
			default:
				obj = tx;
				break;
		}
		if (f->source == EW_SRC_ACCOUNT_BLOCK)
		{
			if (d->account_block < 0)
				nulls[col->attidx] = true;
			else if (col->direct && col->typid == INT8OID)
			{
				values[col->attidx] = Int64GetDatum(d->account_block);
				nulls[col->attidx] = false;
			}
			else if (col->direct)
			{
				/* an int column: direct too, so it has no input function */
				if (d->account_block > PG_INT32_MAX)
					ereport(ERROR,
							(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
							 errmsg("block " INT64_FORMAT " is out of range for type integer",
									d->account_block),
							 errhint("Declare the column bigint.")));
				values[col->attidx] = Int32GetDatum((int32) d->account_block);
				nulls[col->attidx] = false;
			}
			else
			{
				values[col->attidx] =
					InputFunctionCall(&col->infunc,
									  psprintf(INT64_FORMAT, d->account_block),
									  col->ioparam, col->typmod);
				nulls[col->attidx] = false;
			}
			continue;
		}
		j = field_json(d, obj, f->key, f->subkey);
		if (j == NULL)
		{
			nulls[col->attidx] = true;
			continue;
		}

		switch (f->source)
		{
			case EW_SRC_VALUE_ETH:
				text = EwWeiToEth(get_bignum(d, f->key, j));
				break;
			case EW_SRC_VALUE_USD:
				{
					Datum		price;

					if (!day_price(d, block, &price))
					{
						nulls[col->attidx] = true;
						continue;
					}
					v = DirectFunctionCall2(numeric_mul,
											numeric_from_text(EwWeiToEth(get_bignum(d, f->key, j))),
											price);
					/* v is the answer; text only feeds a non-numeric column */
					text = col->direct ? NULL :
						DatumGetCString(DirectFunctionCall1(numeric_out, v));
				}
				break;
			case EW_SRC_TOPIC_ADDRESS:
				/* the log passed EwIsErc20Transfer: a padded address */
				j = json_array_get(j, f->topic);
				if (!json_is_string(j) || strlen(json_string_value(j)) != 66)
					bad_value(d, f->key, j, "a 32-byte topic");
				text = lower_hex(json_string_value(j) + 24);
				text[0] = '0';
				text[1] = 'x';
				break;
			case EW_SRC_AMOUNT:
				text = get_bignum(d, f->key, j);
				break;
			case EW_SRC_AMOUNT_USD:
				{
					json_t	   *tj = field_json(d, tx, "account", "address");
					char	   *token;
					TokenEntry *te;
					Datum		price;

					if (!json_is_string(tj))
						bad_value(d, "account", tj, "an address");
					token = lower_hex(json_string_value(tj));
					te = d->tokens ? hash_search(d->tokens, token, HASH_FIND, NULL) : NULL;
					if (te == NULL)
					{
						nulls[col->attidx] = true;
						continue;
					}
					if (te->as_eth)
					{
						if (!day_price(d, block, &price))
						{
							nulls[col->attidx] = true;
							continue;
						}
					}
					else
						price = te->peg;
					v = DirectFunctionCall2(numeric_mul,
											numeric_from_text(EwShiftDecimal(get_bignum(d, f->key, j),
																			 te->decimals)),
											price);
					text = col->direct ? NULL :
						DatumGetCString(DirectFunctionCall1(numeric_out, v));
				}
				break;
			case EW_SRC_CODE_SIZE:
			case EW_SRC_IS_CONTRACT:
				{
					size_t		len;
					int64		size;

					if (!is_hex_bytes(j))
						bad_value(d, f->key, j, "bytes in hex (\"0x\" and an even number of hex digits)");
					len = strlen(json_string_value(j));
					size = (int64) (len - 2) / 2;
					if (f->source == EW_SRC_IS_CONTRACT)
					{
						if (col->direct)
							v = BoolGetDatum(size > 0);
						else
							text = pstrdup(size > 0 ? "true" : "false");
					}
					else if (col->direct && col->typid == INT8OID)
						v = Int64GetDatum(size);
					else if (col->direct)
						v = Int32GetDatum((int32) size);
					else
						text = psprintf(INT64_FORMAT, size);
				}
				break;
			case EW_SRC_SELECTOR:
				{
					const char *s;

					if (!is_hex_bytes(j))
						bad_value(d, f->key, j, "bytes in hex (\"0x\" and an even number of hex digits)");
					s = json_string_value(j);
					if (strlen(s) <= 2)
					{
						nulls[col->attidx] = true;
						continue;
					}
					text = lower_hex(s);
					if (strlen(text) > 10)
						text[10] = '\0';
				}
				break;
			default:
				switch (f->kind)
				{
					case EW_KIND_INT:
						{
							int64		iv = get_int(d, f->key, j);

							if (col->direct && col->typid == INT8OID)
								v = Int64GetDatum(iv);
							else if (col->direct)
							{
								if (iv > PG_INT32_MAX)
									bad_value(d, f->key, j, "a number within the range of integer");
								v = Int32GetDatum((int32) iv);
							}
							else
								text = psprintf(INT64_FORMAT, iv);
						}
						break;
					case EW_KIND_BIGNUM:
						{
							uint64		small;

							/*
							 * Most amounts fit in 63 bits: make the numeric
							 * without a decimal string and numeric_in.
							 */
							if (col->direct && json_is_string(j) &&
								strlen(json_string_value(j)) <= 17 &&
								EwParseUint64(json_string_value(j), &small) &&
								small <= (uint64) PG_INT64_MAX)
								v = NumericGetDatum(int64_to_numeric((int64) small));
							else
								text = get_bignum(d, f->key, j);
						}
						break;
					case EW_KIND_TEXT:
						{
							/* every text field is an address or a 32-byte hash */
							bool		is_addr = strcmp(f->subkey ? f->subkey : f->key,
														 "address") == 0;

							if (!is_hex_string(j, is_addr ? 40 : 64))
								bad_value(d, f->key, j, is_addr ?
										  "an address (\"0x\" and 40 hex digits)" :
										  "a hash (\"0x\" and 64 hex digits)");
							text = lower_hex(json_string_value(j));
						}
						break;
					case EW_KIND_TIME:
						{
							int64		secs = get_int(d, f->key, j);

							if (col->direct)
								v = TimestampTzGetDatum(seconds_to_timestamptz(d, f->key, j, secs));
							else if (TypeCategory(col->typid) == TYPCATEGORY_NUMERIC)
								text = psprintf(INT64_FORMAT, secs);
							else
								text = DatumGetCString(DirectFunctionCall1(timestamptz_out,
																		   TimestampTzGetDatum(seconds_to_timestamptz(d, f->key, j, secs))));
						}
						break;
					case EW_KIND_BOOL:
						/* only derived fields are truth values */
						break;
				}
				break;
		}

		if (text != NULL && col->direct)
		{
			if (f->kind == EW_KIND_TEXT)
				v = CStringGetTextDatum(text);
			else
				v = DirectFunctionCall3(numeric_in, CStringGetDatum(text),
										ObjectIdGetDatum(InvalidOid),
										Int32GetDatum(-1));
		}
		else if (text != NULL)
			v = InputFunctionCall(&col->infunc, text, col->ioparam, col->typmod);
		values[col->attidx] = v;
		nulls[col->attidx] = false;
	}
	d->current = NULL;
}

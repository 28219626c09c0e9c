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
	s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
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
 * EwWeiToEth
 *		Divide a decimal wei string by 10^18 exactly, as a decimal string
 *		without trailing zeros.
 */
char *
EwWeiToEth(const char *wei)
{
	size_t		len = strlen(wei);
	StringInfoData out;
	int			end;

	initStringInfo(&out);
	if (len <= 18)
	{
		appendStringInfoString(&out, "0.");
		appendStringInfoSpaces(&out, (int) (18 - len));
		memset(out.data + 2, '0', 18 - len);
		appendStringInfoString(&out, wei);
	}
	else
	{
		appendBinaryStringInfo(&out, wei, (int) (len - 18));
		appendStringInfoChar(&out, '.');
		appendStringInfoString(&out, wei + len - 18);
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
		j = field_json(d, obj, f->key, f->subkey);
		if (j == NULL)
		{
			nulls[col->attidx] = true;
			continue;
		}

		switch (f->source)
		{
			case EW_SRC_VALUE_ETH:
			case EW_SRC_VALUE_USD:
				text = EwWeiToEth(get_bignum(d, f->key, j));
				if (f->source == EW_SRC_VALUE_USD)
				{
					int64		ts = get_int(d, "timestamp",
											 field_json(d, block, "timestamp", NULL));
					int32		day = (int32) (ts / SECS_PER_DAY);
					PriceEntry *e = d->prices ? hash_search(d->prices, &day, HASH_FIND, NULL) : NULL;

					if (e == NULL)
					{
						nulls[col->attidx] = true;
						continue;
					}
					v = DirectFunctionCall2(numeric_mul,
											DirectFunctionCall3(numeric_in, CStringGetDatum(text),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)),
											e->price);
					/* v is the answer; text only feeds a non-numeric column */
					text = col->direct ? NULL :
						DatumGetCString(DirectFunctionCall1(numeric_out, v));
				}
				break;
			case EW_SRC_SELECTOR:
				{
					const char *s;

					if (!json_is_string(j))
						bad_value(d, f->key, j, "a hex string");
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
						text = get_bignum(d, f->key, j);
						break;
					case EW_KIND_TEXT:
						if (!json_is_string(j))
							bad_value(d, f->key, j, "a string");
						text = lower_hex(json_string_value(j));
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

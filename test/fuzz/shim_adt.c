/*
 * shim_adt.c - stand-ins for the backend's data types, fmgr, lsyscache and
 * dynahash, as far as decode.c's EwInitColumn and EwDecodeColumns reach
 * them under the fuzzer.  None of this is PostgreSQL's code: each function
 * keeps the contract the decoder relies on and fails the way the backend
 * fails (ereport(ERROR), which shim.c turns into a jump back):
 *
 * - numeric is a varlena holding its canonical text ("-12.50"); numeric_in
 *   accepts what PostgreSQL 15 accepts (blanks, sign, point, exponent up
 *   to 1000, NaN, Infinity), applies a (precision, scale) typmod with
 *   rounding and "numeric field overflow", and refuses values beyond
 *   numeric's format; numeric_mul is exact (scale = sum of scales);
 *   int64_to_numeric gives the same Datum as numeric_in of the digits, and
 *   int64_div_fast_to_numeric(v, s) that of v / 10^s written with s
 *   decimals (the backend's result scale);
 * - int2/int4/int8/float8/bool/text/varchar/timestamp[tz] input functions
 *   validate and range-check like the backend's;
 * - timestamptz_out prints ISO with TimeZone UTC ("2015-11-06 18:06:48+00");
 * - TypeCategory, getTypeInputInfo and fmgr_info know the types the harness
 *   declares and abort on any other, so a harness mistake cannot pass
 *   silently;
 * - hash_create/hash_search keep dynahash's key semantics (HASH_STRINGS
 *   compares the first keysize-1 bytes) with each entry its own palloc, so
 *   ASan sees an access past entrysize.
 *
 * One stand-in is stricter than the backend on purpose: numeric_in called
 * without an FmgrInfo (DirectFunctionCall, which decode.c uses only on text
 * it built itself from validated digits) aborts on malformed text instead of
 * raising an ERROR, so a decoder that builds a bad number is a finding.
 */
#include "postgres.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#define FUZZ_BUG(msg) \
	do { fprintf(stderr, "fuzz: %s\n", (msg)); abort(); } while (0)

/* ---------------------------------------------------------------- fmgr */

static Datum
call_direct(PGFunction func, Oid collation, int nargs, Datum a1, Datum a2, Datum a3)
{
	LOCAL_FCINFO(fcinfo, 3);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, nargs, collation, NULL, NULL);
	fcinfo->args[0].value = a1;
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = a2;
	fcinfo->args[1].isnull = false;
	fcinfo->args[2].value = a3;
	fcinfo->args[2].isnull = false;
	result = (*func) (fcinfo);
	if (fcinfo->isnull)
		elog(ERROR, "function %p returned NULL", (void *) func);
	return result;
}

Datum
DirectFunctionCall1Coll(PGFunction func, Oid collation, Datum arg1)
{
	return call_direct(func, collation, 1, arg1, 0, 0);
}

Datum
DirectFunctionCall2Coll(PGFunction func, Oid collation, Datum arg1, Datum arg2)
{
	return call_direct(func, collation, 2, arg1, arg2, 0);
}

Datum
DirectFunctionCall3Coll(PGFunction func, Oid collation, Datum arg1, Datum arg2,
						Datum arg3)
{
	return call_direct(func, collation, 3, arg1, arg2, arg3);
}

Datum
InputFunctionCall(FmgrInfo *flinfo, char *str, Oid typioparam, int32 typmod)
{
	LOCAL_FCINFO(fcinfo, 3);
	Datum		result;

	if (str == NULL && flinfo->fn_strict)
		return (Datum) 0;
	InitFunctionCallInfoData(*fcinfo, flinfo, 3, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetDatum(str);
	fcinfo->args[0].isnull = false;
	fcinfo->args[1].value = ObjectIdGetDatum(typioparam);
	fcinfo->args[1].isnull = false;
	fcinfo->args[2].value = Int32GetDatum(typmod);
	fcinfo->args[2].isnull = false;
	result = FunctionCallInvoke(fcinfo);
	if (str != NULL && fcinfo->isnull)
		elog(ERROR, "input function %u returned NULL", flinfo->fn_oid);
	return result;
}

/* The types the harness may give a column: OID, input function, category. */
typedef struct FuzzType
{
	Oid			typid;
	Oid			infunc;
	PGFunction	fn;
	char		category;
} FuzzType;

static const FuzzType fuzz_types[] = {
	{TEXTOID, F_TEXTIN, textin, TYPCATEGORY_STRING},
	{VARCHAROID, F_VARCHARIN, varcharin, TYPCATEGORY_STRING},
	{INT2OID, F_INT2IN, int2in, TYPCATEGORY_NUMERIC},
	{INT4OID, F_INT4IN, int4in, TYPCATEGORY_NUMERIC},
	{INT8OID, F_INT8IN, int8in, TYPCATEGORY_NUMERIC},
	{NUMERICOID, F_NUMERIC_IN, numeric_in, TYPCATEGORY_NUMERIC},
	{FLOAT8OID, F_FLOAT8IN, float8in, TYPCATEGORY_NUMERIC},
	{BOOLOID, F_BOOLIN, boolin, TYPCATEGORY_BOOLEAN},
	{TIMESTAMPTZOID, F_TIMESTAMPTZ_IN, timestamptz_in, TYPCATEGORY_DATETIME},
	{TIMESTAMPOID, F_TIMESTAMP_IN, timestamp_in, TYPCATEGORY_DATETIME},
};

static const FuzzType *
fuzz_type(Oid typid)
{
	int			i;

	for (i = 0; i < lengthof(fuzz_types); i++)
		if (fuzz_types[i].typid == typid)
			return &fuzz_types[i];
	FUZZ_BUG("type not known to shim_adt.c");
	return NULL;
}

void
getTypeInputInfo(Oid type, Oid *typInput, Oid *typIOParam)
{
	*typInput = fuzz_type(type)->infunc;
	*typIOParam = type;			/* no array types here: typelem is 0 */
}

void
fmgr_info(Oid functionId, FmgrInfo *finfo)
{
	int			i;

	memset(finfo, 0, sizeof(*finfo));
	for (i = 0; i < lengthof(fuzz_types); i++)
		if (fuzz_types[i].infunc == functionId)
		{
			finfo->fn_addr = fuzz_types[i].fn;
			finfo->fn_oid = functionId;
			finfo->fn_nargs = 3;
			finfo->fn_strict = true;
			finfo->fn_mcxt = CurrentMemoryContext;
			return;
		}
	FUZZ_BUG("function not known to shim_adt.c");
}

TYPCATEGORY
TypeCategory(Oid type)
{
	return fuzz_type(type)->category;
}

/* ---------------------------------------------------------------- text */

text *
cstring_to_text_with_len(const char *s, int len)
{
	text	   *t = palloc(len + VARHDRSZ);

	SET_VARSIZE(t, len + VARHDRSZ);
	memcpy(VARDATA(t), s, len);
	return t;
}

text *
cstring_to_text(const char *s)
{
	return cstring_to_text_with_len(s, strlen(s));
}

char *
text_to_cstring(const text *t)
{
	int			len = VARSIZE(t) - VARHDRSZ;
	char	   *s = palloc(len + 1);

	memcpy(s, VARDATA(t), len);
	s[len] = '\0';
	return s;
}

Datum
textin(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(PG_GETARG_CSTRING(0)));
}

/* UTF-8: bytes of the first n characters of s (len bytes) */
static int
utf8_clip(const char *s, int len, int n)
{
	int			i = 0;

	while (i < len && n-- > 0)
	{
		unsigned char c = (unsigned char) s[i];

		i += c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
	}
	return Min(i, len);
}

Datum
varcharin(PG_FUNCTION_ARGS)
{
	char	   *s = PG_GETARG_CSTRING(0);
	int32		typmod = PG_GETARG_INT32(2);
	int			len = strlen(s);

	if (typmod >= (int32) VARHDRSZ && len > typmod - (int32) VARHDRSZ)
	{
		int			clip = utf8_clip(s, len, typmod - VARHDRSZ);
		int			j;

		for (j = clip; j < len; j++)
			if (s[j] != ' ')
				ereport(ERROR,
						(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
						 errmsg("value too long for type character varying(%d)",
								typmod - VARHDRSZ)));
		len = clip;
	}
	PG_RETURN_TEXT_P(cstring_to_text_with_len(s, len));
}

/* ---------------------------------------------------- integers, float, bool */

static void
bad_syntax(const char *type, const char *s)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type %s: \"%s\"", type, s)));
}

/* pg_strtoint64 and friends: blanks, sign, decimal digits, blanks */
static int64
parse_int(const char *s, int64 min, int64 max, const char *type)
{
	const char *p = s;
	bool		neg = false;
	uint64		v = 0;
	uint64		lim;

	while (isspace((unsigned char) *p))
		p++;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if (!isdigit((unsigned char) *p))
		bad_syntax(type, s);
	lim = neg ? (uint64) (-(min + 1)) + 1 : (uint64) max;
	while (isdigit((unsigned char) *p))
	{
		uint64		d = (uint64) (*p++ - '0');

		if (v > (lim - d) / 10)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("value \"%s\" is out of range for type %s", s, type)));
		v = v * 10 + d;
	}
	while (isspace((unsigned char) *p))
		p++;
	if (*p)
		bad_syntax(type, s);
	return neg ? (v == 0 ? 0 : -(int64) (v - 1) - 1) : (int64) v;
}

Datum
int2in(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT16((int16) parse_int(PG_GETARG_CSTRING(0), PG_INT16_MIN, PG_INT16_MAX, "smallint"));
}

Datum
int4in(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32((int32) parse_int(PG_GETARG_CSTRING(0), PG_INT32_MIN, PG_INT32_MAX, "integer"));
}

Datum
int8in(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(parse_int(PG_GETARG_CSTRING(0), PG_INT64_MIN, PG_INT64_MAX, "bigint"));
}

Datum
float8in(PG_FUNCTION_ARGS)
{
	char	   *s = PG_GETARG_CSTRING(0);
	char	   *p = s;
	char	   *end;
	double		v;

	while (isspace((unsigned char) *p))
		p++;
	if (*p == '\0')
		bad_syntax("double precision", s);
	errno = 0;
	v = strtod(p, &end);
	if (end == p)
		bad_syntax("double precision", s);
	if (errno == ERANGE && (v == 0.0 || isinf(v)))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("\"%s\" is out of range for type double precision", s)));
	while (isspace((unsigned char) *end))
		end++;
	if (*end)
		bad_syntax("double precision", s);
	PG_RETURN_FLOAT8(v);
}

Datum
boolin(PG_FUNCTION_ARGS)
{
	char	   *s = PG_GETARG_CSTRING(0);
	const char *p = s;
	size_t		len;

	while (isspace((unsigned char) *p))
		p++;
	len = strlen(p);
	while (len > 0 && isspace((unsigned char) p[len - 1]))
		len--;
	if (len > 0)
	{
		switch (*p)
		{
			case 't':
			case 'T':
				if (pg_strncasecmp(p, "true", len) == 0 && len <= 4)
					PG_RETURN_BOOL(true);
				break;
			case 'f':
			case 'F':
				if (pg_strncasecmp(p, "false", len) == 0 && len <= 5)
					PG_RETURN_BOOL(false);
				break;
			case 'y':
			case 'Y':
				if (pg_strncasecmp(p, "yes", len) == 0 && len <= 3)
					PG_RETURN_BOOL(true);
				break;
			case 'n':
			case 'N':
				if (pg_strncasecmp(p, "no", len) == 0 && len <= 2)
					PG_RETURN_BOOL(false);
				break;
			case 'o':
			case 'O':
				if (len >= 2 && len <= 2 && pg_strncasecmp(p, "on", 2) == 0)
					PG_RETURN_BOOL(true);
				if (len >= 2 && len <= 3 && pg_strncasecmp(p, "off", len) == 0)
					PG_RETURN_BOOL(false);
				break;
			case '1':
				if (len == 1)
					PG_RETURN_BOOL(true);
				break;
			case '0':
				if (len == 1)
					PG_RETURN_BOOL(false);
				break;
		}
	}
	bad_syntax("boolean", s);
	PG_RETURN_BOOL(false);
}

/* ------------------------------------------------------------- numeric */

/*
 * A parsed numeric: NaN, +-Infinity, or sign * digits / 10^scale with
 * digits a string of decimal digits without leading zeros ("" is zero).
 */
typedef struct Num
{
	char		special;		/* 0, 'N' NaN, 'P' +Inf, 'M' -Inf */
	bool		neg;
	char	   *digits;
	int			scale;
} Num;

/* numeric's storage limits: 2^17 digits before the point, 16383 after */
#define NUM_MAX_INT_DIGITS 131072
#define NUM_MAX_DSCALE 16383

static void
num_overflow(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("value overflows numeric format")));
}

/* drop leading zeros of digits (they are all integer part when longer than scale) */
static void
num_normalize(Num *n)
{
	char	   *d = n->digits;

	while (*d == '0')
		d++;
	n->digits = d;
	if (*d == '\0')
		n->neg = false;
	if ((int) strlen(d) - n->scale > NUM_MAX_INT_DIGITS || n->scale > NUM_MAX_DSCALE)
		num_overflow();
}

/* round n to scale places (half away from zero), scale >= 0 */
static void
num_round(Num *n, int scale)
{
	int			len = strlen(n->digits);
	int			drop = n->scale - scale;
	char	   *r;
	int			keep,
				i;

	if (drop <= 0)
	{
		/* more places: append zeros */
		r = palloc(len - drop + 1);
		memcpy(r, n->digits, len);
		memset(r + len, '0', -drop);
		r[len - drop] = '\0';
		n->digits = r;
		n->scale = scale;
		return;
	}
	keep = len - drop;
	r = palloc(Max(keep, 0) + 2);
	r[0] = '0';
	if (keep > 0)
		memcpy(r + 1, n->digits, keep);
	r[Max(keep, 0) + 1] = '\0';
	if (keep >= 0 && n->digits[keep] >= '5')
	{
		for (i = Max(keep, 0); i >= 0; i--)
		{
			if (r[i] == '9')
				r[i] = '0';
			else
			{
				r[i]++;
				break;
			}
		}
	}
	n->digits = r;
	n->scale = scale;
	num_normalize(n);
}

/* parse like numeric_in; false on a syntax error */
static bool
num_parse(const char *s, Num *n)
{
	const char *p = s;
	const char *start;
	StringInfoData d;
	int			frac = 0;
	bool		seen_point = false;
	bool		any = false;
	long		exp = 0;

	memset(n, 0, sizeof(*n));
	while (isspace((unsigned char) *p))
		p++;
	if (pg_strncasecmp(p, "NaN", 3) == 0)
		n->special = 'N', p += 3;
	else if (pg_strncasecmp(p, "Infinity", 8) == 0 || pg_strncasecmp(p, "+Infinity", 9) == 0)
		n->special = 'P', p += (*p == '+') ? 9 : 8;
	else if (pg_strncasecmp(p, "-Infinity", 9) == 0)
		n->special = 'M', p += 9;
	else if (pg_strncasecmp(p, "inf", 3) == 0 || pg_strncasecmp(p, "+inf", 4) == 0)
		n->special = 'P', p += (*p == '+') ? 4 : 3;
	else if (pg_strncasecmp(p, "-inf", 4) == 0)
		n->special = 'M', p += 4;
	if (n->special)
	{
		while (isspace((unsigned char) *p))
			p++;
		return *p == '\0';
	}

	if (*p == '+' || *p == '-')
		n->neg = *p++ == '-';
	initStringInfo(&d);
	for (start = p;; p++)
	{
		if (isdigit((unsigned char) *p))
		{
			appendStringInfoChar(&d, *p);
			any = true;
			if (seen_point)
				frac++;
		}
		else if (*p == '.' && !seen_point)
			seen_point = true;
		else
			break;
	}
	(void) start;
	if (!any)
		return false;
	if (*p == 'e' || *p == 'E')
	{
		bool		eneg = false;

		p++;
		if (*p == '+' || *p == '-')
			eneg = *p++ == '-';
		if (!isdigit((unsigned char) *p))
			return false;
		while (isdigit((unsigned char) *p))
		{
			exp = exp * 10 + (*p++ - '0');
			if (exp > NUMERIC_MAX_PRECISION)
				return false;
		}
		if (eneg)
			exp = -exp;
	}
	while (isspace((unsigned char) *p))
		p++;
	if (*p)
		return false;
	n->digits = d.data;
	n->scale = frac - (int) exp;
	if (n->scale < 0)
	{
		/* a positive exponent beyond the digits: append zeros */
		int			z = -n->scale;
		char	   *r = palloc(d.len + z + 1);

		memcpy(r, d.data, d.len);
		memset(r + d.len, '0', z);
		r[d.len + z] = '\0';
		n->digits = r;
		n->scale = 0;
	}
	num_normalize(n);
	return true;
}

static void
num_apply_typmod(Num *n, int32 typmod)
{
	int			precision,
				scale,
				len;

	if (typmod < (int32) VARHDRSZ)
		return;
	precision = ((typmod - VARHDRSZ) >> 16) & 0xffff;
	scale = (((typmod - VARHDRSZ) & 0x7ff) ^ 1024) - 1024;
	if (n->special == 'N')
		return;
	if (n->special)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("numeric field overflow"),
				 errdetail("A field with precision %d, scale %d cannot hold an infinite value.",
						   precision, scale)));
	if (scale < 0)
		FUZZ_BUG("negative numeric scale not supported by shim_adt.c");
	num_round(n, scale);
	len = strlen(n->digits);
	if (len > 0 && len - n->scale > precision - scale)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("numeric field overflow")));
}

/* canonical text: [-]int[.frac] with exactly scale places */
static char *
num_text(const Num *n)
{
	StringInfoData out;
	int			intlen;

	if (n->special)
		return pstrdup(n->special == 'N' ? "NaN" : n->special == 'P' ? "Infinity" : "-Infinity");
	intlen = (int) strlen(n->digits) - n->scale;
	initStringInfo(&out);
	if (n->neg)
		appendStringInfoChar(&out, '-');
	if (intlen > 0)
		appendBinaryStringInfo(&out, n->digits, intlen);
	else
		appendStringInfoChar(&out, '0');
	if (n->scale > 0)
	{
		appendStringInfoChar(&out, '.');
		if (intlen < 0)
		{
			appendStringInfoSpaces(&out, -intlen);
			memset(out.data + out.len + intlen, '0', -intlen);
		}
		appendStringInfoString(&out, n->digits + Max(intlen, 0));
	}
	return out.data;
}

static Datum
num_datum(const Num *n)
{
	char	   *t = num_text(n);

	return PointerGetDatum(cstring_to_text(t));
}

/* read back a numeric Datum made by num_datum; abort if it is not one */
static void
num_from_datum(Datum d, Num *n)
{
	char	   *t = text_to_cstring((text *) DatumGetPointer(d));
	char	   *again;

	if (!num_parse(t, n))
		FUZZ_BUG("numeric Datum holds no number");
	again = num_text(n);
	if (strcmp(again, t) != 0)
		FUZZ_BUG("numeric Datum is not canonical");
}

void		fuzz_check_numeric(Datum d);

void
fuzz_check_numeric(Datum d)
{
	Num			n;

	num_from_datum(d, &n);
}

Datum
numeric_in(PG_FUNCTION_ARGS)
{
	char	   *s = PG_GETARG_CSTRING(0);
	int32		typmod = PG_GETARG_INT32(2);
	Num			n;

	if (!num_parse(s, &n))
	{
		if (fcinfo->flinfo == NULL)
			FUZZ_BUG("decode.c handed numeric_in a malformed number");
		bad_syntax("numeric", s);
	}
	num_apply_typmod(&n, typmod);
	return num_datum(&n);
}

Numeric
int64_to_numeric(int64 val)
{
	Num			n;

	if (!num_parse(psprintf(INT64_FORMAT, val), &n))
		FUZZ_BUG("int64_to_numeric");
	return (Numeric) DatumGetPointer(num_datum(&n));
}

Numeric
int64_div_fast_to_numeric(int64 val1, int log10val2)
{
	char	   *digits = psprintf(UINT64_FORMAT, val1 < 0 ? -(uint64) val1 : (uint64) val1);
	int			len = strlen(digits);
	StringInfoData s;
	Num			n;

	if (log10val2 < 0 || log10val2 > 1000)
		FUZZ_BUG("int64_div_fast_to_numeric: scale");
	initStringInfo(&s);
	if (val1 < 0)
		appendStringInfoChar(&s, '-');
	if (log10val2 == 0)
		appendStringInfoString(&s, digits);
	else if (len <= log10val2)
	{
		appendStringInfoString(&s, "0.");
		while (len++ < log10val2)
			appendStringInfoChar(&s, '0');
		appendStringInfoString(&s, digits);
	}
	else
	{
		appendBinaryStringInfo(&s, digits, len - log10val2);
		appendStringInfoChar(&s, '.');
		appendStringInfoString(&s, digits + len - log10val2);
	}
	if (!num_parse(s.data, &n))
		FUZZ_BUG("int64_div_fast_to_numeric");
	return (Numeric) DatumGetPointer(num_datum(&n));
}

Datum
numeric_out(PG_FUNCTION_ARGS)
{
	Num			n;

	num_from_datum(PG_GETARG_DATUM(0), &n);
	PG_RETURN_CSTRING(num_text(&n));
}

Datum
numeric_mul(PG_FUNCTION_ARGS)
{
	Num			a,
				b,
				r;
	int			la,
				lb,
				i,
				j;
	int		   *acc;
	char	   *digits;

	num_from_datum(PG_GETARG_DATUM(0), &a);
	num_from_datum(PG_GETARG_DATUM(1), &b);
	memset(&r, 0, sizeof(r));
	if (a.special == 'N' || b.special == 'N')
		r.special = 'N';
	else if (a.special || b.special)
	{
		bool		aneg = a.special ? a.special == 'M' : a.neg;
		bool		bneg = b.special ? b.special == 'M' : b.neg;

		/* infinity times zero is NaN */
		if ((!a.special && a.digits[0] == '\0') || (!b.special && b.digits[0] == '\0'))
			r.special = 'N';
		else
			r.special = aneg != bneg ? 'M' : 'P';
	}
	if (r.special)
		return num_datum(&r);

	la = strlen(a.digits);
	lb = strlen(b.digits);
	acc = palloc0(sizeof(int) * (la + lb + 1));
	for (i = la - 1; i >= 0; i--)
		for (j = lb - 1; j >= 0; j--)
			acc[i + j + 1] += (a.digits[i] - '0') * (b.digits[j] - '0');
	for (i = la + lb - 1; i > 0; i--)
	{
		acc[i - 1] += acc[i] / 10;
		acc[i] %= 10;
	}
	digits = palloc(la + lb + 1);
	for (i = 0; i < la + lb; i++)
		digits[i] = '0' + acc[i];
	digits[la + lb] = '\0';
	r.neg = a.neg != b.neg;
	r.digits = digits;
	r.scale = a.scale + b.scale;
	if (r.scale > NUM_MAX_DSCALE)
		num_round(&r, NUM_MAX_DSCALE);
	num_normalize(&r);
	return num_datum(&r);
}

/* ------------------------------------------------------------ timestamps */

/* days since 1970-01-01 of a proleptic Gregorian date (year 0 = 1 BC) */
static int64
days_from_civil(int64 y, int m, int d)
{
	int64		era;
	int64		yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64 z, int64 *y, int *m, int *d)
{
	int64		era,
				doe,
				yoe,
				doy,
				mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

#define UNIX_TO_PG_DAYS ((int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE))

static void
ts_range_error(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
			 errmsg("timestamp out of range")));
}

/* ISO text of a timestamp in UTC, like timestamptz_out with TimeZone UTC */
static char *
ts_text(Timestamp t, bool with_tz)
{
	int64		days,
				usecs,
				y;
	int			m,
				d,
				sec;
	char		frac[16] = "";

	if (TIMESTAMP_IS_NOBEGIN(t))
		return pstrdup("-infinity");
	if (TIMESTAMP_IS_NOEND(t))
		return pstrdup("infinity");
	if (!IS_VALID_TIMESTAMP(t))
		ts_range_error();
	days = t / USECS_PER_DAY;
	usecs = t % USECS_PER_DAY;
	if (usecs < 0)
	{
		usecs += USECS_PER_DAY;
		days--;
	}
	civil_from_days(days + UNIX_TO_PG_DAYS, &y, &m, &d);
	sec = (int) (usecs / USECS_PER_SEC);
	if (usecs % USECS_PER_SEC)
	{
		int			k;

		snprintf(frac, sizeof(frac), ".%06d", (int) (usecs % USECS_PER_SEC));
		for (k = strlen(frac) - 1; frac[k] == '0'; k--)
			frac[k] = '\0';
	}
	return psprintf("%04lld-%02d-%02d %02d:%02d:%02d%s%s%s",
					(long long) (y > 0 ? y : 1 - y), m, d,
					sec / 3600, sec / 60 % 60, sec % 60, frac,
					with_tz ? "+00" : "", y > 0 ? "" : " BC");
}

Datum
timestamptz_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(ts_text(PG_GETARG_TIMESTAMPTZ(0), true));
}

static int
take_digits(const char **p, int min, int max, int64 *v)
{
	int			n = 0;

	*v = 0;
	while (isdigit((unsigned char) **p) && n < max)
	{
		*v = *v * 10 + (*(*p)++ - '0');
		n++;
	}
	return n >= min;
}

/*
 * The ISO forms of timestamp[tz]_in: "[-]infinity", or
 * "YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][(+|-)HH[:MM]| UTC| Z][ BC]";
 * anything else is a syntax error (the backend accepts more forms).
 */
static Timestamp
ts_parse(const char *s, int32 typmod, const char *type)
{
	const char *p = s;
	int64		y,
				mo,
				d,
				h = 0,
				mi = 0,
				se = 0,
				us = 0,
				tzh = 0,
				tzm = 0,
				v;
	int			tzsign = 0;
	Timestamp	t;

	while (isspace((unsigned char) *p))
		p++;
	if (pg_strcasecmp(p, "infinity") == 0 || pg_strcasecmp(p, "+infinity") == 0)
		return DT_NOEND;
	if (pg_strcasecmp(p, "-infinity") == 0)
		return DT_NOBEGIN;
	if (!take_digits(&p, 4, 6, &y) || *p++ != '-' ||
		!take_digits(&p, 1, 2, &mo) || *p++ != '-' ||
		!take_digits(&p, 1, 2, &d))
		bad_syntax(type, s);
	if (*p == ' ' || *p == 'T')
	{
		p++;
		if (!take_digits(&p, 1, 2, &h) || *p++ != ':' || !take_digits(&p, 2, 2, &mi))
			bad_syntax(type, s);
		if (*p == ':')
		{
			p++;
			if (!take_digits(&p, 2, 2, &se))
				bad_syntax(type, s);
			if (*p == '.')
			{
				/* as ParseFractionalSecond: strtod, then rint to microseconds */
				const char *f = p;

				p++;
				if (!isdigit((unsigned char) *p))
					bad_syntax(type, s);
				while (isdigit((unsigned char) *p))
					p++;
				us = (int64) rint(strtod(pnstrdup(f, p - f), NULL) * USECS_PER_SEC);
			}
		}
		if (*p == '+' || *p == '-')
		{
			tzsign = *p++ == '-' ? -1 : 1;
			if (!take_digits(&p, 1, 2, &tzh))
				bad_syntax(type, s);
			if (*p == ':')
			{
				p++;
				if (!take_digits(&p, 2, 2, &tzm))
					bad_syntax(type, s);
			}
		}
		else if (strncmp(p, " UTC", 4) == 0 || *p == 'Z')
			p += *p == 'Z' ? 1 : 4;
	}
	if (y == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_FIELD_OVERFLOW),
				 errmsg("date/time field value out of range: \"%s\"", s)));
	if (strncmp(p, " BC", 3) == 0)
	{
		p += 3;
		y = 1 - y;
	}
	while (isspace((unsigned char) *p))
		p++;
	if (*p)
		bad_syntax(type, s);
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 24 || mi > 59 || se > 60 ||
		tzh > 15 || tzm > 59 || (h == 24 && (mi || se || us)))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_FIELD_OVERFLOW),
				 errmsg("date/time field value out of range: \"%s\"", s)));
	v = days_from_civil(y, (int) mo, (int) d);
	{
		/* February 30th and the like do not come back the same */
		int64		yy;
		int			mm,
					dd;

		civil_from_days(v, &yy, &mm, &dd);
		if (yy != y || mm != mo || dd != d)
			ereport(ERROR,
					(errcode(ERRCODE_DATETIME_FIELD_OVERFLOW),
					 errmsg("date/time field value out of range: \"%s\"", s)));
	}
	/* Julian-day range of the backend: 4714-11-24 BC .. 294276 AD */
	if (v < -2440588 || v > 106751 * 1000)
		ts_range_error();
	t = (v - UNIX_TO_PG_DAYS) * USECS_PER_DAY +
		((h * 60 + mi) * 60 + se) * USECS_PER_SEC + us -
		tzsign * (tzh * 60 + tzm) * 60 * USECS_PER_SEC;
	if (typmod >= 0)
	{
		int64		scale = 1;
		int			k;

		if (typmod > MAX_TIMESTAMP_PRECISION)
			typmod = MAX_TIMESTAMP_PRECISION;
		for (k = typmod; k < MAX_TIMESTAMP_PRECISION; k++)
			scale *= 10;
		/* AdjustTimestampForTypmod: half away from zero */
		if (t >= 0)
			t = ((t + scale / 2) / scale) * scale;
		else
			t = -((((-t) + scale / 2) / scale) * scale);
	}
	if (!IS_VALID_TIMESTAMP(t))
		ts_range_error();
	return t;
}

Datum
timestamptz_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMPTZ(ts_parse(PG_GETARG_CSTRING(0), PG_GETARG_INT32(2),
								   "timestamp with time zone"));
}

Datum
timestamp_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIMESTAMP(ts_parse(PG_GETARG_CSTRING(0), PG_GETARG_INT32(2),
								 "timestamp without time zone"));
}

/* ------------------------------------------------------------- dynahash */

typedef struct HEntry
{
	struct HEntry *next;
	void	   *data;
} HEntry;

struct HTAB
{
	Size		keysize;
	Size		entrysize;
	bool		strings;
	HEntry	   *head;
};

HTAB *
hash_create(const char *tabname, long nelem, const HASHCTL *info, int flags)
{
	HTAB	   *h = palloc0(sizeof(HTAB));

	if (!(flags & HASH_ELEM) || !(flags & (HASH_STRINGS | HASH_BLOBS)))
		FUZZ_BUG("hash_create: only HASH_ELEM with HASH_STRINGS or HASH_BLOBS");
	h->keysize = info->keysize;
	h->entrysize = info->entrysize;
	h->strings = (flags & HASH_STRINGS) != 0;
	return h;
}

static bool
hkey_equal(HTAB *h, const void *a, const void *b)
{
	if (h->strings)
		return strncmp(a, b, h->keysize - 1) == 0;
	return memcmp(a, b, h->keysize) == 0;
}

void *
hash_search(HTAB *h, const void *key, HASHACTION action, bool *foundPtr)
{
	HEntry	  **pp;
	HEntry	   *e;

	for (pp = &h->head; *pp; pp = &(*pp)->next)
		if (hkey_equal(h, (*pp)->data, key))
			break;
	e = *pp;
	if (foundPtr)
		*foundPtr = e != NULL;
	switch (action)
	{
		case HASH_FIND:
			return e ? e->data : NULL;
		case HASH_ENTER:
		case HASH_ENTER_NULL:
			if (e)
				return e->data;
			e = palloc(sizeof(HEntry));
			e->data = palloc(h->entrysize);
			if (h->strings)
				strlcpy(e->data, key, h->keysize);
			else
				memcpy(e->data, key, h->keysize);
			e->next = h->head;
			h->head = e;
			return e->data;
		case HASH_REMOVE:
			if (e)
				*pp = e->next;
			return e ? e->data : NULL;
	}
	return NULL;
}

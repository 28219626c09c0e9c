/*-------------------------------------------------------------------------
 *
 * hexnum.c
 *		  Hex and decimal arithmetic for ethwhale_fdw: Longs and uint256
 *		  amounts as the node sends them, into exact decimal text.
 *
 * Nothing here goes through floating point, touches a catalog or raises an
 * ERROR: a malformed input is reported by the return value, and the caller
 * (decode.c) says which field it was.  Only palloc and StringInfo are used,
 * so the fuzzer links this file as it is.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "hexnum.h"
#include "lib/stringinfo.h"

/*
 * The value of each byte as a hex digit of either case, or -1: a table,
 * because every Long of every row goes through EwParseUint64.
 */
#define HX4(c) ((c) >= '0' && (c) <= '9' ? (c) - '0' : \
				(c) >= 'a' && (c) <= 'f' ? (c) - 'a' + 10 : \
				(c) >= 'A' && (c) <= 'F' ? (c) - 'A' + 10 : -1)
#define HX1(c) HX4(c), HX4((c) + 1), HX4((c) + 2), HX4((c) + 3)
#define HX16(c) HX1(c), HX1((c) + 4), HX1((c) + 8), HX1((c) + 12)
#define HX64(c) HX16(c), HX16((c) + 16), HX16((c) + 32), HX16((c) + 48)
static const int8 hex_value[256] = {
	HX64(0), HX64(64), HX64(128), HX64(192)
};

/* The value of a hex digit of either case, or -1. */
static inline int
hex_digit(char c)
{
	return hex_value[(unsigned char) c];
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
			int			d = hex_digit(*p);

			if (d < 0 || v > (PG_UINT64_MAX >> 4))
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
		int			d = hex_digit(*p);

		if (d < 0 || ++digits > EW_MAX_HEX_DIGITS)
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

/*
 * EwIsHash
 *		Whether s is a hash as the wrapper returns it: "0x" and 64 lowercase
 *		hex digits.
 */
bool
EwIsHash(const char *s)
{
	return strlen(s) == 66 && s[0] == '0' && s[1] == 'x' &&
		strspn(s + 2, "0123456789abcdef") == 64;
}

/* Whether s is "0x" (or "0X") and exactly ndigits hex digits of any case. */
bool
EwIsHexDigits(const char *s, size_t ndigits)
{
	return strlen(s) == ndigits + 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') &&
		strspn(s + 2, "0123456789abcdefABCDEF") == ndigits;
}

/* Whether s is "0x" and whole bytes in hex (GraphQL Bytes). */
bool
EwIsHexBytes(const char *s)
{
	size_t		n;

	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X'))
		return false;
	n = strlen(s + 2);
	return n % 2 == 0 && strspn(s + 2, "0123456789abcdefABCDEF") == n;
}

/* A lowercase palloc'd copy of a hex string. */
char *
EwLowerHex(const char *s)
{
	char	   *r = pstrdup(s);
	char	   *p;

	for (p = r; *p; p++)
		*p = pg_ascii_tolower((unsigned char) *p);
	return r;
}

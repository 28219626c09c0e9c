/*-------------------------------------------------------------------------
 *
 * hexbytes.c
 *		  The input and output functions of ethwhale.hexbytes: binary hashes
 *		  and addresses whose text form is the wrapper's, "0x" and lowercase
 *		  hex.
 *
 * A hexbytes value is laid out exactly as a bytea (a varlena of the raw
 * bytes), so sql_parts/15_hexbytes.sql binds bytea's own internal functions
 * for its binary I/O, comparisons, hashing and casts to and from bytea;
 * only the text form lives here.  A 32-byte hash takes 33 bytes in a row
 * instead of the 67 of its text, an address 21 instead of 43.
 *
 * The hex codec itself (EwHexDecode, EwHexEncode) is hexnum.c's, free of
 * the backend so that the fuzzer links it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "compat.h"
#include "hexnum.h"

PG_FUNCTION_INFO_V1(ethwhale_hexbytes_in);
PG_FUNCTION_INFO_V1(ethwhale_hexbytes_out);

/*
 * ethwhale_hexbytes_in
 *		"0x" (or "0X") and an even number of hex digits of either case into
 *		the bytes; "0x" alone is zero bytes (Geth's empty input).
 *
 * Anything else is invalid text: a soft error where the caller asks for one
 * (pg_input_is_valid(), COPY ... ON_ERROR on PostgreSQL 16 and later).
 * There is no leniency (no whitespace, no missing prefix, no odd nibble):
 * a value that does not read back as the same text once lowercased would
 * make a text literal and the stored value disagree.
 */
Datum
ethwhale_hexbytes_in(PG_FUNCTION_ARGS)
{
	char	   *s = PG_GETARG_CSTRING(0);
	size_t		len = strlen(s);
	size_t		nbytes;
	bytea	   *result;

	if (len < 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') ||
		(len - 2) % 2 != 0)
		goto invalid;
	nbytes = (len - 2) / 2;
	result = (bytea *) palloc(VARHDRSZ + nbytes);
	SET_VARSIZE(result, VARHDRSZ + nbytes);
	if (!EwHexDecode(s + 2, len - 2, (uint8 *) VARDATA(result)))
	{
		pfree(result);
		goto invalid;
	}
	PG_RETURN_BYTEA_P(result);

invalid:
	ew_ereturn(fcinfo->context, (Datum) 0,
			   errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			   errmsg("invalid input syntax for type %s: \"%s\"",
					  "hexbytes", s),
			   errhint("A hexbytes value is 0x followed by an even number of hexadecimal digits."));
}

/*
 * ethwhale_hexbytes_out
 *		The bytes as "0x" and two lowercase hex digits a byte: the text the
 *		wrapper's columns give for the same hash or address.
 */
Datum
ethwhale_hexbytes_out(PG_FUNCTION_ARGS)
{
	bytea	   *v = PG_GETARG_BYTEA_PP(0);
	size_t		nbytes = VARSIZE_ANY_EXHDR(v);
	char	   *result = palloc(2 * nbytes + 3);

	result[0] = '0';
	result[1] = 'x';
	EwHexEncode((const uint8 *) VARDATA_ANY(v), nbytes, result + 2);
	result[2 * nbytes + 2] = '\0';
	PG_RETURN_CSTRING(result);
}

/*-------------------------------------------------------------------------
 *
 * hexnum.h
 *		  Hex and decimal arithmetic on the node's strings, free of the
 *		  backend (palloc and StringInfo only), so that the fuzzer links
 *		  hexnum.c as it is.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EW_HEXNUM_H
#define EW_HEXNUM_H

/* Longest hex number accepted; uint256 needs 64 digits. */
#define EW_MAX_HEX_DIGITS 128

extern bool EwParseUint64(const char *s, uint64 *result);
extern char *EwHexToDecimal(const char *s, bool *ok);
extern char *EwShiftDecimal(const char *digits, int places);
extern char *EwWeiToEth(const char *wei_decimal);
extern bool EwIsAddress(const char *s);
extern bool EwIsHash(const char *s);
extern bool EwIsHexDigits(const char *s, size_t ndigits);
extern bool EwIsHexBytes(const char *s);
extern char *EwLowerHex(const char *s);

#endif							/* EW_HEXNUM_H */

/*
 * fuzz.h - what the fuzz targets' files (fuzz_decode.c, fuzz_rpc.c) and
 * the backend shim (shim.c, shim_adt.c) share.
 */
#ifndef FUZZ_H
#define FUZZ_H

#include <setjmp.h>

#include "ethwhale_fdw.h"

/* in shim.c and shim_adt.c */
extern sigjmp_buf fuzz_jmp;		/* where an ERROR outside PG_TRY jumps */
extern int	fuzz_encoding;		/* GetDatabaseEncoding() */
extern int	fuzz_errors;		/* ERRORs raised so far */
extern void fuzz_reset(void);
extern uint64 fuzz_mark(void);
extern void fuzz_release(uint64 mark);
extern void fuzz_check_numeric(Datum d);

#define FUZZ_BUG(msg) \
	do { fprintf(stderr, "fuzz: %s\n", (msg)); abort(); } while (0)

/* A row as the scan hands it to the decoder. */
#define FUZZ_MAX_ROWS 256

typedef struct FuzzRow
{
	EwTableKind kind;
	json_t	   *block;
	json_t	   *obj;
	int64		account_block;
	bool		rpc;			/* JSON-RPC's shapes (rpc_key), else GraphQL's */
} FuzzRow;

/* in fuzz_decode.c: decode rows with every column (all types, or canonical) */
extern void fuzz_decode_collected(FuzzRow *rows, int nrows, bool all_types);

/* in fuzz_rpc.c: target 7 */
extern void fuzz_rpc(const uint8_t *data, size_t size);

#endif							/* FUZZ_H */

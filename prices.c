/*-------------------------------------------------------------------------
 *
 * prices.c
 *		  The price tables a scan reads once: ethwhale.eth_usd (the ETH/USD
 *		  price of each UTC day) and ethwhale.token (decimals and USD peg of
 *		  each token), by SPI, into hash tables decode.c looks prices up in.
 *
 * They are read at the start of a scan that needs value_usd or amount_usd,
 * in the scan's snapshot, so a scan prices every row with the same table.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "ethwhale_fdw.h"
#include "executor/spi.h"
#include "utils/datum.h"
#include "utils/memutils.h"

/*
 * EwLoadPrices
 *		Read ethwhale.eth_usd once per scan into a day -> price hash table.
 */
HTAB *
EwLoadPrices(MemoryContext cxt)
{
	HASHCTL		ctl;
	HTAB	   *h;
	uint64		i;
	int			rc;

	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(EwPriceEntry);
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
		EwPriceEntry *e = hash_search(h, &day, HASH_ENTER, NULL);
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
HTAB *
EwLoadTokens(MemoryContext cxt)
{
	HASHCTL		ctl;
	HTAB	   *h;
	uint64		i;
	int			rc;

	ctl.keysize = 43;
	ctl.entrysize = sizeof(EwTokenEntry);
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
		EwTokenEntry *e;
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


/*-------------------------------------------------------------------------
 *
 * bounds.c
 *		  What a scan's bounds let through, evaluated when the scan starts:
 *		  the block ranges to read (from <, <=, =, >=, > and = ANY on the
 *		  block column, with the head for an open end) and the address
 *		  sets pushed into the request.
 *
 * A NULL bound matches nothing, as in SQL; an address that is not a
 * lowercase 0x-address cannot equal a column value and is dropped, so a
 * set left empty reads nothing at all.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "nodes/nodeFuncs.h"
#include "scan.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* The value of an integer Datum of type int2, int4 or int8. */
static int64
int_datum(Datum d, Oid type)
{
	return type == INT2OID ? DatumGetInt16(d) :
		type == INT4OID ? DatumGetInt32(d) : DatumGetInt64(d);
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
}

static int
cmp_cstring(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * collect_set
 *		The sorted, distinct, non-negative elements of an integer array
 *		within [lo, hi], intersected with *set if there is one already.
 */
static void
collect_set(Datum arraydatum, int64 lo, int64 hi, int64 **set, int *nset)
{
	ArrayType  *arr = DatumGetArrayTypeP(arraydatum);
	Oid			elemtype = ARR_ELEMTYPE(arr);
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems,
				i,
				n = 0;
	int64	   *vals;

	get_typlenbyvalalign(elemtype, &elmlen, &elmbyval, &elmalign);
	deconstruct_array(arr, elemtype, elmlen, elmbyval, elmalign,
					  &elems, &nulls, &nelems);
	vals = palloc(sizeof(int64) * Max(1, nelems));
	for (i = 0; i < nelems; i++)
	{
		int64		v;

		if (nulls[i])
			continue;
		v = int_datum(elems[i], elemtype);
		if (v < lo || v > hi)
			continue;
		/* keep only what the earlier set has too */
		if (*set != NULL && bsearch(&v, *set, *nset, sizeof(int64), cmp_int64) == NULL)
			continue;
		vals[n++] = v;
	}
	qsort(vals, n, sizeof(int64), cmp_int64);
	if (n > 1)
	{
		int			j = 0;

		for (i = 1; i < n; i++)
			if (vals[i] != vals[j])
				vals[++j] = vals[i];
		n = j + 1;
	}
	*set = vals;
	*nset = n;
}

/*
 * eval_address_set
 *		The sorted, distinct addresses a pushed value lets through: one for
 *		"col = value", the elements for "col = ANY(array)".  NULLs and strings
 *		that are not lowercase 0x-addresses cannot equal a column value and
 *		are dropped.  Returns the count.
 */
static int
eval_address_set(ExprState *es, bool is_array, ExprContext *econtext,
				 char ***out)
{
	bool		isnull;
	Datum		d = ExecEvalExpr(es, econtext, &isnull);
	char	  **v;
	int			n = 0,
				i;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;

	*out = NULL;
	if (isnull)
		return 0;
	if (is_array)
		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &nelems);
	else
	{
		elems = &d;
		nulls = &isnull;
		nelems = 1;
	}
	v = palloc(sizeof(char *) * Max(1, nelems));
	for (i = 0; i < nelems; i++)
	{
		char	   *a;

		if (nulls[i])
			continue;
		a = TextDatumGetCString(elems[i]);
		if (EwIsAddress(a))
			v[n++] = a;
	}
	qsort(v, n, sizeof(char *), cmp_cstring);
	if (n > 1)
	{
		int			j = 0;

		for (i = 1; i < n; i++)
			if (strcmp(v[i], v[j]) != 0)
				v[++j] = v[i];
		n = j + 1;
	}
	*out = v;
	return n;
}

/*
 * EwEvalAddresses
 *		Evaluate the pushed address values: the variables of logs(filter:)
 *		for token transfers, the address list of an account scan.  False
 *		when some value lets nothing through.
 */
bool
EwEvalAddresses(EwScanState *st, ExprContext *econtext)
{
	char	  **sets[EW_NUM_ADDR_SLOTS] = {0};
	int			nsets[EW_NUM_ADDR_SLOTS] = {0};
	ListCell   *le,
			   *ls,
			   *la;
	int			slot;

	forthree(le, st->addr_states, ls, st->plan.addr_slots, la, st->plan.addr_arrays)
	{
		slot = lfirst_int(ls);
		nsets[slot] = eval_address_set((ExprState *) lfirst(le), lfirst_int(la),
									   econtext, &sets[slot]);
		if (nsets[slot] == 0)
			return false;
	}
	if (st->opts.table == EW_TABLE_ACCOUNT)
	{
		st->accounts = sets[EW_ADDR_ACCOUNT];
		st->naccounts = nsets[EW_ADDR_ACCOUNT];
		return st->naccounts > 0;
	}
	if (st->opts.table != EW_TABLE_TOKEN_TRANSFER)
		return true;

	/*
	 * Geth answers HTTP 413 to a request body over 5 MiB (GraphQL: lists of
	 * up to 10,000), and its eth_getLogs takes at most 1,000 addresses or
	 * topics per position (--rpc.logquerylimit).  A longer list is not
	 * sent: the node then returns every Transfer of the range for that
	 * position, and the clause, which stays a local filter, picks the rows.
	 */
	st->lists_unsent = 0;
	for (slot = 0; slot < EW_NUM_ADDR_SLOTS; slot++)
	{
		if (nsets[slot] > (st->opts.api == EW_API_JSONRPC ?
						   EW_MAX_RPC_FILTER_ADDRESSES : EW_MAX_FILTER_ADDRESSES))
		{
			sets[slot] = NULL;
			nsets[slot] = 0;
			st->lists_unsent++;
		}
	}
	st->log_vars = EwDeparseLogVariables(sets, nsets, st->opts.api == EW_API_JSONRPC);
	return true;
}

/*
 * eval_scalar_bounds
 *		Fold the bounds other than "= ANY" into [*lo, *hi]; false when one
 *		of them is NULL or they exclude everything.
 */
static bool
eval_scalar_bounds(EwScanState *st, ExprContext *econtext, int64 *lo,
				   int64 *hi, bool *have_hi)
{
	ListCell   *le,
			   *ls;
	bool		ok = true;

	forboth(le, st->bound_states, ls, st->plan.bound_strategies)
	{
		ExprState  *es = (ExprState *) lfirst(le);
		int			s = lfirst_int(ls);
		bool		isnull;
		Datum		d;
		int64		v;

		if (s == EW_STRATEGY_IN)
			continue;
		d = ExecEvalExpr(es, econtext, &isnull);
		if (isnull)
		{
			ok = false;
			continue;
		}
		v = int_datum(d, exprType((Node *) es->expr));
		switch (s)
		{
			case BTLessStrategyNumber:
				if (v <= 0)
					ok = false;
				else
					*hi = Min(*hi, v - 1);
				*have_hi = true;
				break;
			case BTLessEqualStrategyNumber:
				*hi = Min(*hi, v);
				*have_hi = true;
				break;
			case BTEqualStrategyNumber:
				*lo = Max(*lo, v);
				*hi = Min(*hi, v);
				*have_hi = true;
				break;
			case BTGreaterEqualStrategyNumber:
				*lo = Max(*lo, v);
				break;
			case BTGreaterStrategyNumber:
				if (v == PG_INT64_MAX)
					ok = false;
				else
					*lo = Max(*lo, v + 1);
				break;
		}
	}
	return ok && *hi >= 0 && *lo <= *hi;
}

/*
 * eval_set_bounds
 *		Intersect the "= ANY(array)" bounds, clipped to [lo, hi], into
 *		*set; false when one is NULL.  *have_set tells whether there was
 *		any.
 */
static bool
eval_set_bounds(EwScanState *st, ExprContext *econtext, int64 lo, int64 hi,
				int64 **set, int *nset, bool *have_set)
{
	ListCell   *le,
			   *ls;

	*set = NULL;
	*nset = 0;
	*have_set = false;
	forboth(le, st->bound_states, ls, st->plan.bound_strategies)
	{
		bool		isnull;
		Datum		d;

		if (lfirst_int(ls) != EW_STRATEGY_IN)
			continue;
		d = ExecEvalExpr((ExprState *) lfirst(le), econtext, &isnull);
		if (isnull)
			return false;
		collect_set(d, lo, hi, set, nset);
		*have_set = true;
	}
	return true;
}

/* The ranges of a sorted set of blocks: consecutive blocks become one. */
static void
ranges_from_set(EwScanState *st, const int64 *set, int nset)
{
	int			i;

	st->ranges = palloc(sizeof(EwRange) * Max(1, nset));
	for (i = 0; i < nset; i++)
	{
		if (st->nranges > 0 && st->ranges[st->nranges - 1].hi + 1 == set[i])
			st->ranges[st->nranges - 1].hi = set[i];
		else
		{
			st->ranges[st->nranges].lo = set[i];
			st->ranges[st->nranges].hi = set[i];
			st->nranges++;
		}
	}
}

/* One range lo..hi. */
void
EwSingleRange(EwScanState *st, int64 lo, int64 hi)
{
	st->ranges = palloc(sizeof(EwRange));
	st->ranges[0].lo = lo;
	st->ranges[0].hi = hi;
	st->nranges = 1;
}

/*
 * EwPlanRanges
 *		Turn the bounds into the list of block ranges to read.  A NULL bound
 *		matches nothing; an open upper end stops at the node's head.
 */
void
EwPlanRanges(EwScanState *st, ExprContext *econtext)
{
	int64		lo = 0,
				hi = PG_INT64_MAX;
	bool		have_hi = false;
	int64	   *set;
	int			nset;
	bool		have_set;

	if (!eval_scalar_bounds(st, econtext, &lo, &hi, &have_hi) ||
		!eval_set_bounds(st, econtext, lo, hi, &set, &nset, &have_set))
		return;
	if ((st->plan.mode == EW_MODE_BACKWARD || !have_hi) && !have_set)
	{
		hi = Min(hi, EwFetchHead(st));
		if (hi < 0 || lo > hi)
			return;
	}
	if (have_set)
		ranges_from_set(st, set, nset);
	else
		EwSingleRange(st, lo, hi);
	if (st->nranges > 0)
		st->next_block = st->plan.mode == EW_MODE_BACKWARD ?
			st->ranges[0].hi : st->ranges[0].lo;
}


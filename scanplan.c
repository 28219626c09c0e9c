/*-------------------------------------------------------------------------
 *
 * scanplan.c
 *		  The plan of a foreign scan, packed into ForeignScan.fdw_private
 *		  and fdw_exprs, and unpacked by the executor and EXPLAIN.
 *
 * fdw_private holds the plain values in the order of EwPlanItem; fdw_exprs
 * holds every expression the executor evaluates, so that setrefs.c fixes
 * their parameters and variables: the bounds, the filter constants, the
 * address values and the hash, in that order.  The counts that delimit
 * those groups are the lengths of the lists in fdw_private, so only this
 * file knows where anything sits.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/pg_list.h"
#include "nodes/value.h"
#include "scan.h"

/* Items of ForeignScan.fdw_private. */
typedef enum EwPlanItem
{
	EW_PLAN_DOCUMENT,			/* String */
	EW_PLAN_MODE,				/* Integer */
	EW_PLAN_COUNT_ONLY,			/* Integer 0/1 */
	EW_PLAN_NADDRESSES,			/* Integer */
	EW_PLAN_PLANNED_REQUESTS,	/* String: an int64 */
	EW_PLAN_PLANNED_BLOCKS,		/* String: an int64 */
	EW_PLAN_SLOW_START,			/* Integer 0/1 */
	EW_PLAN_ATTNOS,				/* List of int */
	EW_PLAN_FIELDS,				/* List of int */
	EW_PLAN_BOUND_STRATEGIES,	/* List of int */
	EW_PLAN_FILTER_ATTNOS,		/* List of int */
	EW_PLAN_FILTER_OPS,			/* List of oid */
	EW_PLAN_FILTER_TEXTS,		/* List of String */
	EW_PLAN_ADDR_SLOTS,			/* List of int */
	EW_PLAN_ADDR_ARRAYS,		/* List of int */
	EW_PLAN_HAS_HASH,			/* Integer 0/1 */
	EW_PLAN_REL_OIDS,			/* List of oid */
	EW_PLAN_RELATIONS,			/* String */
	EW_PLAN_NITEMS
} EwPlanItem;

/*
 * EwPackScanPlan
 *		The fdw_private list of a plan; *fdw_exprs gets its expressions.
 */
List *
EwPackScanPlan(const EwScanPlan *plan, List **fdw_exprs)
{
	List	   *items = NIL;
	List	   *exprs;

	Assert(list_length(plan->bound_exprs) == list_length(plan->bound_strategies));
	Assert(list_length(plan->filter_exprs) == list_length(plan->filter_attnos));
	Assert(list_length(plan->addr_exprs) == list_length(plan->addr_slots));

	items = lappend(items, makeString(plan->document));
	items = lappend(items, makeInteger(plan->mode));
	items = lappend(items, makeInteger(plan->count_only ? 1 : 0));
	items = lappend(items, makeInteger(plan->naddresses));
	items = lappend(items, makeString(psprintf(INT64_FORMAT, plan->planned_requests)));
	items = lappend(items, makeString(psprintf(INT64_FORMAT, plan->planned_blocks)));
	items = lappend(items, makeInteger(plan->slow_start ? 1 : 0));
	items = lappend(items, plan->attnos);
	items = lappend(items, plan->fields);
	items = lappend(items, plan->bound_strategies);
	items = lappend(items, plan->filter_attnos);
	items = lappend(items, plan->filter_ops);
	items = lappend(items, plan->filter_texts);
	items = lappend(items, plan->addr_slots);
	items = lappend(items, plan->addr_arrays);
	items = lappend(items, makeInteger(plan->hash_expr != NULL ? 1 : 0));
	items = lappend(items, plan->rel_oids);
	items = lappend(items, makeString(plan->relations ? plan->relations : pstrdup("")));
	Assert(list_length(items) == EW_PLAN_NITEMS);

	exprs = list_copy(plan->bound_exprs);
	exprs = list_concat(exprs, plan->filter_exprs);
	exprs = list_concat(exprs, plan->addr_exprs);
	if (plan->hash_expr != NULL)
		exprs = lappend(exprs, plan->hash_expr);
	*fdw_exprs = exprs;
	return items;
}

/* The next n expressions of fdw_exprs from *pos, as a new list. */
static List *
take_exprs(List *fdw_exprs, int *pos, int n)
{
	List	   *out = NIL;
	int			i;

	for (i = 0; i < n; i++)
		out = lappend(out, list_nth(fdw_exprs, (*pos)++));
	return out;
}

/*
 * EwUnpackScanPlan
 *		The plan of a ForeignScan, from its (set-referenced) lists.
 */
void
EwUnpackScanPlan(List *fdw_private, List *fdw_exprs, EwScanPlan *plan)
{
	int			pos = 0;

	if (list_length(fdw_private) != EW_PLAN_NITEMS)
		elog(ERROR, "ethwhale_fdw: malformed plan (%d items)",
			 list_length(fdw_private));
	memset(plan, 0, sizeof(*plan));
	plan->document = strVal(list_nth(fdw_private, EW_PLAN_DOCUMENT));
	plan->mode = (EwScanMode) intVal(list_nth(fdw_private, EW_PLAN_MODE));
	plan->count_only = intVal(list_nth(fdw_private, EW_PLAN_COUNT_ONLY)) != 0;
	plan->naddresses = intVal(list_nth(fdw_private, EW_PLAN_NADDRESSES));
	plan->planned_requests = strtoi64(strVal(list_nth(fdw_private, EW_PLAN_PLANNED_REQUESTS)),
									  NULL, 10);
	plan->planned_blocks = strtoi64(strVal(list_nth(fdw_private, EW_PLAN_PLANNED_BLOCKS)),
									NULL, 10);
	plan->slow_start = intVal(list_nth(fdw_private, EW_PLAN_SLOW_START)) != 0;
	plan->attnos = (List *) list_nth(fdw_private, EW_PLAN_ATTNOS);
	plan->fields = (List *) list_nth(fdw_private, EW_PLAN_FIELDS);
	plan->bound_strategies = (List *) list_nth(fdw_private, EW_PLAN_BOUND_STRATEGIES);
	plan->filter_attnos = (List *) list_nth(fdw_private, EW_PLAN_FILTER_ATTNOS);
	plan->filter_ops = (List *) list_nth(fdw_private, EW_PLAN_FILTER_OPS);
	plan->filter_texts = (List *) list_nth(fdw_private, EW_PLAN_FILTER_TEXTS);
	plan->addr_slots = (List *) list_nth(fdw_private, EW_PLAN_ADDR_SLOTS);
	plan->addr_arrays = (List *) list_nth(fdw_private, EW_PLAN_ADDR_ARRAYS);
	plan->rel_oids = (List *) list_nth(fdw_private, EW_PLAN_REL_OIDS);
	plan->relations = strVal(list_nth(fdw_private, EW_PLAN_RELATIONS));

	plan->bound_exprs = take_exprs(fdw_exprs, &pos, list_length(plan->bound_strategies));
	plan->filter_exprs = take_exprs(fdw_exprs, &pos, list_length(plan->filter_attnos));
	plan->addr_exprs = take_exprs(fdw_exprs, &pos, list_length(plan->addr_slots));
	if (intVal(list_nth(fdw_private, EW_PLAN_HAS_HASH)))
		plan->hash_expr = (Expr *) list_nth(fdw_exprs, pos++);
	if (pos != list_length(fdw_exprs))
		elog(ERROR, "ethwhale_fdw: malformed plan (%d expressions, %d used)",
			 list_length(fdw_exprs), pos);
}

/*-------------------------------------------------------------------------
 *
 * planner.c
 *		  Planning a foreign scan of ethwhale_fdw: the columns it reads, the
 *		  clauses that bound it, its estimates and costs, its paths (plain
 *		  and parameterized), and the ForeignScan with its plan.
 *
 * A scan must be bounded: a node cannot be read from block 0 to its head,
 * nor list its accounts.  The bounds may come from the query's own clauses
 * or, in a parameterized path, from a join clause (block = outer value,
 * hash = outer value, address = outer value), which a nested loop (or a
 * Memoize above it) fills in for each outer row.  An unbounded plain path
 * is still offered, costed out of the way, so the planner prefers any
 * bounded plan; it raises the "needs a bound" error only if it is chosen,
 * which happens when no plan can bound the scan.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "compat.h"
#include "miscadmin.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "optimizer/tlist.h"
#include "parser/parsetree.h"
#include "scan.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

/* Planner guesses when bounds are not known at plan time. */
#define EW_DEFAULT_BLOCKS		1000
#define EW_DEFAULT_SET_SIZE		10	/* elements of an array not yet known */
#define EW_TXS_PER_BLOCK		150
#define EW_LOGS_PER_BLOCK		40	/* ERC-20 transfers in a mainnet block */
#define EW_ADDRESS_FILTER_SEL	0.01	/* share of them an address filter keeps */

/* Cost model: one request per chunk, then per-row work. */
#define EW_STARTUP_COST			100.0
#define EW_COST_PER_ROW			0.01
/* an unbounded scan, offered only so that planning reports it */
#define EW_UNBOUNDED_COST		1.0e10

/* ---------------------------------------------------------------------
 * Estimates
 * ---------------------------------------------------------------------
 */

/*
 * const_int64
 *		The value of an expression the planner can fold to an integer
 *		constant, for estimates; false when unknown.
 */
static bool
const_int64(PlannerInfo *root, Expr *expr, int64 *v)
{
	Node	   *n = estimate_expression_value(root, (Node *) expr);

	if (!IsA(n, Const) || ((Const *) n)->constisnull)
		return false;
	switch (((Const *) n)->consttype)
	{
		case INT8OID:
			*v = DatumGetInt64(((Const *) n)->constvalue);
			return true;
		case INT4OID:
			*v = DatumGetInt32(((Const *) n)->constvalue);
			return true;
		case INT2OID:
			*v = DatumGetInt16(((Const *) n)->constvalue);
			return true;
		default:
			return false;
	}
}

/*
 * array_size_estimate
 *		The number of elements of an array expression, as far as plan time
 *		knows; -1 when it does not.
 */
static double
array_size_estimate(PlannerInfo *root, Expr *expr)
{
	Node	   *n = estimate_expression_value(root, (Node *) expr);

	if (IsA(n, Const) && !((Const *) n)->constisnull)
	{
		ArrayType  *a = DatumGetArrayTypeP(((Const *) n)->constvalue);

		return ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	}
	if (IsA(n, ArrayExpr))
		return list_length(((ArrayExpr *) n)->elements);
	return -1;
}

/*
 * estimate_blocks
 *		How many blocks the bounds let through, as far as plan time knows;
 *		*exact says whether they are one range of constant bounds.
 */
static double
estimate_blocks(PlannerInfo *root, EwRelInfo *info, bool *exact)
{
	int64		lo = -1,
				hi = -1;
	double		in_count = -1;
	ListCell   *le,
			   *ls;

	forboth(le, info->plan.bound_exprs, ls, info->plan.bound_strategies)
	{
		Expr	   *e = (Expr *) lfirst(le);
		int			s = lfirst_int(ls);
		int64		v;

		if (s == EW_STRATEGY_IN)
		{
			double		c = array_size_estimate(root, e);

			if (c < 0)
				c = EW_DEFAULT_SET_SIZE;
			in_count = in_count < 0 ? c : Min(in_count, c);
			continue;
		}
		if (!const_int64(root, e, &v))
		{
			/* "= $1" or "= outer.col": one block, whichever */
			if (s == BTEqualStrategyNumber)
				in_count = 1;
			continue;
		}
		if (s == BTEqualStrategyNumber)
		{
			lo = Max(lo, v);
			hi = hi < 0 ? v : Min(hi, v);
		}
		else if (s == BTGreaterStrategyNumber || s == BTGreaterEqualStrategyNumber)
			lo = Max(lo, (s == BTGreaterStrategyNumber && v < PG_INT64_MAX) ? v + 1 : v);
		else
		{
			int64		h = (s == BTLessStrategyNumber && v > PG_INT64_MIN) ? v - 1 : v;

			hi = hi < 0 ? h : Min(hi, h);
		}
	}
	*exact = false;
	if (in_count >= 0)
		return Max(in_count, 1);
	if (lo >= 0 && hi >= 0)
	{
		*exact = hi >= lo;
		return hi >= lo ? Min((double) hi - (double) lo + 1, 1e9) : 1;
	}
	return EW_DEFAULT_BLOCKS;
}

/*
 * estimate_addresses
 *		How many addresses an account scan asks for, as far as plan time
 *		knows; *known tells whether that is exact.
 */
static double
estimate_addresses(PlannerInfo *root, EwRelInfo *info, bool *known)
{
	ListCell   *le,
			   *la;

	*known = false;
	forboth(le, info->plan.addr_exprs, la, info->plan.addr_arrays)
	{
		double		c;

		*known = true;
		if (!lfirst_int(la))
			return 1;
		c = array_size_estimate(root, (Expr *) lfirst(le));
		if (c >= 0)
			return c;
	}
	*known = false;
	return EW_DEFAULT_SET_SIZE;
}

/*
 * block_pathkey
 *		The query's first pathkey if it orders by the block column, in the
 *		direction asked for (descending: true), else NULL.
 */
static PathKey *
block_pathkey(PlannerInfo *root, RelOptInfo *baserel, AttrNumber attno,
			  bool descending)
{
	PathKey    *pk;
	ListCell   *lc;

	if (root->query_pathkeys == NIL || attno == InvalidAttrNumber)
		return NULL;
	pk = (PathKey *) linitial(root->query_pathkeys);
	if (EW_PATHKEY_DESCENDING(pk) != descending)
		return NULL;
	foreach(lc, pk->pk_eclass->ec_members)
	{
		EquivalenceMember *em = (EquivalenceMember *) lfirst(lc);

		if (EwRelVarAttno((Node *) em->em_expr, baserel->relid) == attno)
			return pk;
	}
	return NULL;
}

/*
 * desc_limit_pathkey
 *		If the query is ORDER BY <block column> DESC ... LIMIT n over this
 *		relation, the pathkey of that ordering, else NULL.
 */
static PathKey *
desc_limit_pathkey(PlannerInfo *root, RelOptInfo *baserel, AttrNumber attno)
{
	if (root->parse->limitCount == NULL)
		return NULL;
	/* LIMIT ALL / LIMIT NULL bounds nothing */
	if (IsA(root->parse->limitCount, Const) &&
		((Const *) root->parse->limitCount)->constisnull)
		return NULL;
	return block_pathkey(root, baserel, attno, true);
}

/*
 * needed_columns
 *		The columns the output and the local filters use, with their field
 *		index; count_only when an eth_tx scan needs nothing of the rows.
 */
static void
needed_columns(RelOptInfo *baserel, Relation rel, const EwField **colfields,
			   EwRelInfo *info)
{
	Bitmapset  *attrs = NULL;
	int			natts = RelationGetDescr(rel)->natts;
	bool		whole_row;
	ListCell   *lc;
	int			i;

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	foreach(lc, baserel->baserestrictinfo)
		pull_varattnos((Node *) ((RestrictInfo *) lfirst(lc))->clause,
					   baserel->relid, &attrs);
	whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs);
	info->plan.count_only = info->opts.table == EW_TABLE_TX;
	for (i = 1; i <= natts; i++)
	{
		const EwField *f = colfields[i - 1];

		if (f == NULL)
			continue;			/* dropped */
		if (!whole_row &&
			!bms_is_member(i - FirstLowInvalidHeapAttributeNumber, attrs))
			continue;
		info->plan.attnos = lappend_int(info->plan.attnos, i);
		info->plan.fields = lappend_int(info->plan.fields, EwFieldCode(f));
		if (f->source != EW_SRC_BLOCK_NUMBER && f->source != EW_SRC_BLOCK_TIME)
			info->plan.count_only = false;
	}
}

/* ---------------------------------------------------------------------
 * Bounds
 * ---------------------------------------------------------------------
 */

/*
 * scan_is_bounded
 *		Whether the node can answer the scan: an account scan needs
 *		addresses; a block scan a lower bound, a set of blocks or a hash,
 *		unless it is ORDER BY block DESC LIMIT n (read from the head down).
 */
static bool
scan_is_bounded(EwRelInfo *info)
{
	if (info->opts.table == EW_TABLE_ACCOUNT)
		return info->addr_taken[EW_ADDR_ACCOUNT];
	return info->plan.hash_expr != NULL || info->has_lower ||
		info->desc_pathkey != NULL;
}

/*
 * report_unbounded
 *		The error for a scan no plan could bound.
 */
static void
report_unbounded(Relation rel, EwRelInfo *info)
{
	if (info->opts.table == EW_TABLE_ACCOUNT)
	{
		const char *col = EwColumnName(rel, info->addr_attnos[EW_ADDR_ACCOUNT], "address");

		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
				 errmsg("a scan of foreign table \"%s\" needs the addresses to read",
						RelationGetRelationName(rel)),
				 errdetail("A node cannot list its accounts; it answers for the addresses it is asked about."),
				 errhint("Add WHERE %s = '0x…', WHERE %s = ANY(ARRAY['0x…', …]) or WHERE %s = ANY(ARRAY(SELECT …)), or join on %s.",
						 col, col, col, col)));
	}
	else
	{
		const char *col = EwColumnName(rel, info->block_attno,
									   info->opts.table == EW_TABLE_BLOCK ? "number" : "block");

		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
				 errmsg("a scan of foreign table \"%s\" needs a lower bound on column \"%s\"",
						RelationGetRelationName(rel), col),
				 errdetail("Without one the node would be read from block 0 to its head."),
				 errhint("Bound the block range, e.g. WHERE %s BETWEEN 17000000 AND 17000100 or WHERE %s >= 17000000, join on %s, or read the newest blocks with ORDER BY %s DESC LIMIT n.",
						 col, col, col, col)));
	}
}

/*
 * estimate_rows
 *		The rows a scan with this classification returns (before the local
 *		filters, in *tuples) and after them.
 */
static double
estimate_rows(PlannerInfo *root, RelOptInfo *baserel, EwRelInfo *info,
			  double *tuples)
{
	bool		is_account = info->opts.table == EW_TABLE_ACCOUNT;
	double		blocks;
	double		t = 0;
	bool		known;
	int			i;

	info->blocks_exact = false;
	if (info->plan.hash_expr != NULL || (is_account && info->plan.bound_exprs == NIL))
		blocks = 1;
	else if (info->desc_pathkey != NULL && !info->has_lower)
		blocks = info->opts.batch_blocks;
	else
		blocks = estimate_blocks(root, info, &info->blocks_exact);
	info->blocks = blocks;
	switch (info->opts.table)
	{
		case EW_TABLE_BLOCK:
			t = blocks;
			break;
		case EW_TABLE_TX:
			t = info->plan.hash_expr != NULL ? 1 : blocks * EW_TXS_PER_BLOCK;
			break;
		case EW_TABLE_TOKEN_TRANSFER:
			t = blocks * EW_LOGS_PER_BLOCK;
			for (i = EW_ADDR_TOKEN; i <= EW_ADDR_TO; i++)
				if (info->addr_taken[i])
					t *= EW_ADDRESS_FILTER_SEL;
			break;
		case EW_TABLE_ACCOUNT:
			t = blocks * estimate_addresses(root, info, &known);
			break;
	}
	*tuples = clamp_row_est(t);
	/* the bounds are in the estimate already: apply only the rest */
	return clamp_row_est(*tuples * clauselist_selectivity(root, info->other_conds,
														  baserel->relid, JOIN_INNER, NULL));
}

/*
 * estimate_requests
 *		How many requests a scan sends, as far as plan time knows; -1 when
 *		it does not.
 */
static double
estimate_requests(PlannerInfo *root, EwRelInfo *info)
{
	bool		known;
	double		n;

	if (info->plan.hash_expr != NULL)
		return 1;
	if (info->opts.table == EW_TABLE_ACCOUNT)
	{
		n = estimate_addresses(root, info, &known);
		if (!known)
			return -1;
		return ceil(n / EW_ACCOUNTS_PER_REQUEST) * info->blocks;
	}
	if (!info->has_lower && info->desc_pathkey == NULL)
		return -1;
	return ceil(info->blocks / info->opts.batch_blocks);
}

/* ---------------------------------------------------------------------
 * Relation size, paths and plan
 * ---------------------------------------------------------------------
 */

/*
 * EwPlanRelSize
 *		Classify the restriction clauses, decide which fields to request and
 *		estimate the number of rows.
 */
void
EwPlanRelSize(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid)
{
	EwRelInfo  *info = palloc0(sizeof(EwRelInfo));
	ForeignTable *table = GetForeignTable(foreigntableid);
	Relation	rel;

	baserel->fdw_private = info;
	info->rel_oid = foreigntableid;
	EwGetOptions(foreigntableid, table->serverid,
				 baserel->userid ? baserel->userid : GetUserId(), &info->opts);
	info->plan.naddresses = -1;

	rel = table_open(foreigntableid, NoLock);
	info->colfields = EwResolveColumns(rel, info->opts.table);
	EwFindKeyColumns(rel, info->colfields, info);
	EwClassifyClauses(baserel->relid, rel, info->colfields, info,
					  baserel->baserestrictinfo);
	needed_columns(baserel, rel, info->colfields, info);
	if (!info->has_lower && info->plan.hash_expr == NULL &&
		info->block_attno != InvalidAttrNumber)
		info->desc_pathkey = desc_limit_pathkey(root, baserel, info->block_attno);
	/* a range scan returns its rows in ascending block order */
	if (info->has_lower && info->plan.hash_expr == NULL &&
		info->opts.table != EW_TABLE_ACCOUNT)
		info->asc_pathkey = block_pathkey(root, baserel, info->block_attno, false);
	table_close(rel, NoLock);
	baserel->rows = estimate_rows(root, baserel, info, &baserel->tuples);
}

/*
 * copy_rel_info
 *		A copy of a relation's classification that a parameterized path's
 *		join clauses can be added to.
 */
static EwRelInfo *
copy_rel_info(const EwRelInfo *info)
{
	EwRelInfo  *c = palloc(sizeof(EwRelInfo));

	*c = *info;
	c->plan.bound_exprs = list_copy(info->plan.bound_exprs);
	c->plan.bound_strategies = list_copy(info->plan.bound_strategies);
	c->plan.filter_exprs = list_copy(info->plan.filter_exprs);
	c->plan.filter_attnos = list_copy(info->plan.filter_attnos);
	c->plan.filter_ops = list_copy(info->plan.filter_ops);
	c->plan.filter_texts = list_copy(info->plan.filter_texts);
	c->plan.addr_exprs = list_copy(info->plan.addr_exprs);
	c->plan.addr_slots = list_copy(info->plan.addr_slots);
	c->plan.addr_arrays = list_copy(info->plan.addr_arrays);
	c->other_conds = list_copy(info->other_conds);
	c->filter_rinfos = list_copy(info->filter_rinfos);
	return c;
}

/*
 * with_join_clauses
 *		The classification of a scan that also has the join clauses of a
 *		parameterized path.
 */
static EwRelInfo *
with_join_clauses(RelOptInfo *baserel, Oid relid, EwRelInfo *info, List *clauses)
{
	EwRelInfo  *c = copy_rel_info(info);
	Relation	rel = table_open(relid, NoLock);

	EwClassifyClauses(baserel->relid, rel, info->colfields, c, clauses);
	table_close(rel, NoLock);
	return c;
}

/*
 * add_scan_path
 *		A path for a scan with this classification, parameterized by
 *		required_outer (NULL: a plain one).
 */
static void
add_scan_path(PlannerInfo *root, RelOptInfo *baserel, EwRelInfo *info,
			  Relids required_outer, double rows, double tuples)
{
	double		requests = estimate_requests(root, info);
	Cost		startup = EW_STARTUP_COST;
	Cost		total;
	List	   *pathkeys = NIL;

	if (requests < 0)
		requests = Max(1.0, info->blocks / info->opts.batch_blocks);
	total = startup + requests * EW_STARTUP_COST +
		tuples * (EW_COST_PER_ROW + cpu_tuple_cost);
	if (!scan_is_bounded(info))
		startup = total = EW_UNBOUNDED_COST;
	if (info->desc_pathkey != NULL && required_outer == NULL)
		pathkeys = list_make1(info->desc_pathkey);
	else if (info->asc_pathkey != NULL && required_outer == NULL)
		pathkeys = list_make1(info->asc_pathkey);
	add_path(baserel, (Path *)
			 ew_create_foreignscan_path(root, baserel, NULL, rows, startup, total,
										pathkeys, required_outer, NULL, NIL));
}

/* State of ec_member_is_key: the key columns, and the members tried. */
typedef struct EcKeyArg
{
	EwRelInfo  *info;
	Index		relid;
	Expr	   *current;
	List	   *already_used;
} EcKeyArg;

/*
 * ec_member_is_key
 *		generate_implied_equalities_for_column callback: an equivalence
 *		member that is one of the scan's key columns (block number, hash,
 *		a pushed address), one at a time, as postgres_fdw does.
 */
static bool
ec_member_is_key(PlannerInfo *root, RelOptInfo *rel, EquivalenceClass *ec,
				 EquivalenceMember *em, void *arg)
{
	EcKeyArg   *a = (EcKeyArg *) arg;
	AttrNumber	attno;
	int			slot;
	bool		key;

	if (a->current != NULL)
		return equal(em->em_expr, a->current);
	if (list_member(a->already_used, em->em_expr))
		return false;
	attno = EwRelVarAttno((Node *) em->em_expr, a->relid);
	if (attno == InvalidAttrNumber)
		return false;
	key = attno == a->info->block_attno || attno == a->info->hash_attno;
	for (slot = 0; slot < EW_NUM_ADDR_SLOTS; slot++)
		key |= attno == a->info->addr_attnos[slot];
	if (!key)
		return false;
	a->current = em->em_expr;
	return true;
}

/*
 * param_infos
 *		The parameterizations a join offers the scan: for each join clause
 *		that can bound it (EwIsParamClause), the ParamPathInfo of the outer
 *		relations it needs.
 */
static List *
param_infos(PlannerInfo *root, RelOptInfo *baserel, EwRelInfo *info)
{
	List	   *clauses = NIL;
	List	   *ppis = NIL;
	ListCell   *lc;

	foreach(lc, baserel->joininfo)
		clauses = lappend(clauses, lfirst(lc));
	if (baserel->has_eclass_joins)
	{
		EcKeyArg	arg = {info, baserel->relid, NULL, NIL};

		for (;;)
		{
			arg.current = NULL;
			clauses = list_concat(clauses,
								  generate_implied_equalities_for_column(root, baserel,
																		 ec_member_is_key, &arg,
																		 baserel->lateral_referencers));
			if (arg.current == NULL)
				break;
			arg.already_used = lappend(arg.already_used, arg.current);
		}
	}
	foreach(lc, clauses)
	{
		RestrictInfo *ri = (RestrictInfo *) lfirst(lc);
		Relids		outer;

		if (!join_clause_is_movable_to(ri, baserel) ||
			!EwIsParamClause(baserel->relid, info, ri))
			continue;
		outer = bms_union(ri->clause_relids, baserel->lateral_relids);
		outer = bms_del_member(outer, baserel->relid);
		if (bms_is_empty(outer))
			continue;
		ppis = list_append_unique_ptr(ppis, get_baserel_parampathinfo(root, baserel, outer));
	}
	return ppis;
}

/*
 * EwPlanPaths
 *		The plain path (ordered by the block column descending for a
 *		backward scan; costed out of the way when unbounded) and one
 *		parameterized path per way a join can bound the scan.
 */
void
EwPlanPaths(PlannerInfo *root, RelOptInfo *baserel)
{
	EwRelInfo  *info = (EwRelInfo *) baserel->fdw_private;
	ListCell   *lc;

	add_scan_path(root, baserel, info, NULL, baserel->rows, baserel->tuples);
	foreach(lc, param_infos(root, baserel, info))
	{
		ParamPathInfo *ppi = (ParamPathInfo *) lfirst(lc);
		RangeTblEntry *rte = planner_rt_fetch(baserel->relid, root);
		EwRelInfo  *pinfo = with_join_clauses(baserel, rte->relid, info, ppi->ppi_clauses);
		double		tuples;
		double		rows = estimate_rows(root, baserel, pinfo, &tuples);

		add_scan_path(root, baserel, pinfo, ppi->ppi_req_outer, rows, tuples);
	}
}

/* ---------------------------------------------------------------------
 * A pushed join: eth_tx JOIN eth_block ON number = block
 * ---------------------------------------------------------------------
 */

/*
 * joins_columns
 *		Whether the two arguments of op are column a1 of rel1 and column a2
 *		of rel2, in either order.
 */
static bool
joins_columns(OpExpr *op, Index rel1, AttrNumber a1, Index rel2, AttrNumber a2)
{
	Node	   *l = linitial(op->args);
	Node	   *r = lsecond(op->args);

	return (EwRelVarAttno(l, rel1) == a1 && EwRelVarAttno(r, rel2) == a2) ||
		(EwRelVarAttno(r, rel1) == a1 && EwRelVarAttno(l, rel2) == a2);
}

/*
 * is_block_join_clause
 *		Whether ri is "tx.block = blk.number" (an integer equality), which
 *		every transaction meets with its own block.
 */
static bool
is_block_join_clause(RestrictInfo *ri, Index txrel, AttrNumber txatt,
					 Index blkrel, AttrNumber blkatt)
{
	OpExpr	   *op;

	if (!IsA(ri->clause, OpExpr))
		return false;
	op = (OpExpr *) ri->clause;
	return list_length(op->args) == 2 &&
		get_op_opfamily_strategy(op->opno, INTEGER_BTREE_FAM_OID) == BTEqualStrategyNumber &&
		joins_columns(op, txrel, txatt, blkrel, blkatt);
}

/*
 * is_hash_join_clause
 *		Whether ri is "transfer.tx_hash = tx.hash" (text equality under a
 *		deterministic collation): a log and the transaction that emitted it.
 */
static bool
is_hash_join_clause(RestrictInfo *ri, Index ttrel, AttrNumber ttatt,
					Index txrel, AttrNumber txatt)
{
	OpExpr	   *op;

	if (ttatt == InvalidAttrNumber || txatt == InvalidAttrNumber ||
		!IsA(ri->clause, OpExpr))
		return false;
	op = (OpExpr *) ri->clause;
	return op->opno == TextEqualOperator && list_length(op->args) == 2 &&
		(!OidIsValid(op->inputcollid) || get_collation_isdeterministic(op->inputcollid)) &&
		joins_columns(op, ttrel, ttatt, txrel, txatt);
}

/*
 * only_user_columns
 *		Whether every Var of node is a user column (no whole row, no system
 *		column, no placeholder): what a pushed join can decode.
 */
static bool
only_user_columns(Node *node)
{
	ListCell   *lc;

	foreach(lc, pull_var_clause(node, PVC_INCLUDE_PLACEHOLDERS))
	{
		Var		   *v = (Var *) lfirst(lc);

		if (!IsA(v, Var) || v->varattno <= 0)
			return false;
	}
	return true;
}

/*
 * EwPlanJoinPaths
 *		An inner join of eth_tx and eth_block of one server on the block
 *		number is one scan of eth_tx whose blocks also carry the eth_block
 *		fields asked for; one of eth_token_transfer and eth_tx on the
 *		transaction hash is one scan of the logs whose transactions carry
 *		the eth_tx fields.  One document, with the bounds of either side
 *		bounding both.  Any other join is left to the planner (with the
 *		parameterized paths above).
 */
void
EwPlanJoinPaths(PlannerInfo *root, RelOptInfo *joinrel, RelOptInfo *outerrel,
				RelOptInfo *innerrel, JoinType jointype, JoinPathExtraData *extra)
{
	EwRelInfo  *o = (EwRelInfo *) outerrel->fdw_private;
	EwRelInfo  *i = (EwRelInfo *) innerrel->fdw_private;
	RelOptInfo *txrel,
			   *blkrel;
	EwRelInfo  *tx,
			   *blk,
			   *j;
	bool		keyed = false;
	double		requests;
	Cost		total;
	ListCell   *lc;

	if (joinrel->fdw_private != NULL || jointype != JOIN_INNER ||
		outerrel->reloptkind != RELOPT_BASEREL || innerrel->reloptkind != RELOPT_BASEREL ||
		o == NULL || i == NULL || root->rowMarks != NIL)
		return;

	/*
	 * txrel/tx: the relation whose rows the scan returns; blkrel/blk: the
	 * one whose fields each row carries (its block, or its transaction).
	 */
	if (o->opts.table == EW_TABLE_TX && i->opts.table == EW_TABLE_BLOCK)
		txrel = outerrel, blkrel = innerrel, tx = o, blk = i;
	else if (o->opts.table == EW_TABLE_BLOCK && i->opts.table == EW_TABLE_TX)
		txrel = innerrel, blkrel = outerrel, tx = i, blk = o;
	else if (o->opts.table == EW_TABLE_TOKEN_TRANSFER && i->opts.table == EW_TABLE_TX)
		txrel = outerrel, blkrel = innerrel, tx = o, blk = i;
	else if (o->opts.table == EW_TABLE_TX && i->opts.table == EW_TABLE_TOKEN_TRANSFER)
		txrel = innerrel, blkrel = outerrel, tx = i, blk = o;
	else
		return;
	if (tx->plan.hash_expr != NULL || tx->block_attno == InvalidAttrNumber ||
		blk->block_attno == InvalidAttrNumber)
		return;
	foreach(lc, extra->restrictlist)
	{
		RestrictInfo *ri = (RestrictInfo *) lfirst(lc);

		if (tx->opts.table == EW_TABLE_TX)
			keyed |= is_block_join_clause(ri, txrel->relid, tx->block_attno,
										  blkrel->relid, blk->block_attno);
		else
			keyed |= is_hash_join_clause(ri, txrel->relid, tx->txkey_attno,
										 blkrel->relid, blk->hash_attno);
	}
	if (!keyed)
		return;

	j = copy_rel_info(tx);
	j->is_join = true;
	j->scan_relid = txrel->relid;
	j->other_relid = blkrel->relid;
	j->other_oid = blk->rel_oid;
	j->other_colfields = blk->colfields;
	/* both sides' bounds are bounds on the one block number */
	j->plan.bound_exprs = list_concat(j->plan.bound_exprs, blk->plan.bound_exprs);
	j->plan.bound_strategies = list_concat(j->plan.bound_strategies,
										   blk->plan.bound_strategies);
	j->has_lower |= blk->has_lower;
	/* every clause is checked on the joined row; none by the wrapper */
	j->plan.filter_exprs = j->plan.filter_attnos = j->plan.filter_ops = NIL;
	j->plan.filter_texts = NIL;
	j->filter_rinfos = NIL;
	j->desc_pathkey = j->asc_pathkey = NULL;
	/* the columns are those of the scan tuple (join_scan_tlist) */
	j->plan.attnos = j->plan.fields = NIL;
	j->join_conds = list_concat(list_concat(list_copy(txrel->baserestrictinfo),
											blkrel->baserestrictinfo),
								extra->restrictlist);
	if (!j->has_lower ||
		!only_user_columns((Node *) joinrel->reltarget->exprs) ||
		!only_user_columns((Node *) extract_actual_clauses(j->join_conds, false)))
		return;
	j->blocks = estimate_blocks(root, j, &j->blocks_exact);
	requests = Max(1.0, ceil(j->blocks / j->opts.batch_blocks));
	total = EW_STARTUP_COST + requests * EW_STARTUP_COST +
		joinrel->rows * (EW_COST_PER_ROW + cpu_tuple_cost);
	joinrel->fdw_private = j;
	add_path(joinrel, (Path *)
			 ew_create_foreign_join_path(root, joinrel, NULL, joinrel->rows,
										 EW_STARTUP_COST, total, NIL,
										 joinrel->lateral_relids, NULL, NIL));
}

/*
 * join_scan_tlist
 *		The scan tuple of a pushed join: every column of either table that
 *		the output or a clause uses, each with the field that fills it.
 */
static List *
join_scan_tlist(RelOptInfo *joinrel, EwRelInfo *j)
{
	List	   *tlist;
	ListCell   *lc;
	int			n = 0;

	tlist = add_to_flat_tlist(NIL, pull_var_clause((Node *) joinrel->reltarget->exprs,
												   PVC_RECURSE_PLACEHOLDERS));
	foreach(lc, j->join_conds)
		tlist = add_to_flat_tlist(tlist,
								  pull_var_clause((Node *) ((RestrictInfo *) lfirst(lc))->clause,
												  PVC_RECURSE_PLACEHOLDERS));
	j->plan.count_only = j->opts.table == EW_TABLE_TX;
	foreach(lc, tlist)
	{
		TargetEntry *tle = lfirst_node(TargetEntry, lc);
		Var		   *v = (Var *) tle->expr;
		bool		is_tx = v->varno == j->scan_relid;
		const EwField *f = (is_tx ? j->colfields : j->other_colfields)[v->varattno - 1];

		tle->resname = get_attname(is_tx ? j->rel_oid : j->other_oid, v->varattno, false);
		j->plan.attnos = lappend_int(j->plan.attnos, ++n);
		j->plan.fields = lappend_int(j->plan.fields, EwFieldCode(f));
		if (is_tx && f->source != EW_SRC_BLOCK_NUMBER && f->source != EW_SRC_BLOCK_TIME)
			j->plan.count_only = false;
	}
	return tlist;
}

/*
 * join_relations
 *		"(eth_tx t) INNER JOIN (eth_block b)", for EXPLAIN.
 */
static char *
join_relations(PlannerInfo *root, EwRelInfo *j)
{
	RangeTblEntry *t = planner_rt_fetch(j->scan_relid, root);
	RangeTblEntry *b = planner_rt_fetch(j->other_relid, root);

	return psprintf("(%s %s) INNER JOIN (%s %s)",
					quote_identifier(get_rel_name(t->relid)), quote_identifier(t->eref->aliasname),
					quote_identifier(get_rel_name(b->relid)), quote_identifier(b->eref->aliasname));
}

/*
 * scan_mode
 *		How the scan reaches its rows.
 */
static EwScanMode
scan_mode(EwRelInfo *info)
{
	if (info->plan.hash_expr != NULL)
		return EW_MODE_HASH;
	if (info->opts.table == EW_TABLE_ACCOUNT)
		return EW_MODE_ACCOUNT;
	if (!info->has_lower)
		return EW_MODE_BACKWARD;
	return EW_MODE_RANGE;
}

/*
 * EwPlanForeignScan
 *		The ForeignScan of the chosen path: its document and plan go into
 *		fdw_private and fdw_exprs; every clause but the wrapper's filters
 *		stays a local filter.  An unbounded scan is refused here, where it
 *		is known that no bounded plan was found.
 */
ForeignScan *
EwPlanForeignScan(PlannerInfo *root, RelOptInfo *baserel, Oid foreigntableid,
				  ForeignPath *best_path, List *tlist, List *scan_clauses,
				  Plan *outer_plan)
{
	EwRelInfo  *info = (EwRelInfo *) baserel->fdw_private;
	EwScanPlan *plan;
	List	   *fdw_exprs;
	List	   *fdw_private;
	List	   *fdw_scan_tlist = NIL;
	List	   *local_clauses = NIL;
	const EwField **fields;
	int			n = 0;
	double		requests;
	double		tuples;
	ListCell   *lc;

	if (info->is_join)
	{
		fdw_scan_tlist = join_scan_tlist(baserel, info);
		info->plan.rel_oids = list_make2_oid(info->rel_oid, info->other_oid);
		info->plan.relations = join_relations(root, info);
		scan_clauses = info->join_conds;
	}
	else
	{
		if (best_path->path.param_info != NULL)
			info = with_join_clauses(baserel, foreigntableid, info,
									 best_path->path.param_info->ppi_clauses);
		if (!scan_is_bounded(info))
		{
			Relation	rel = table_open(foreigntableid, NoLock);

			report_unbounded(rel, info);
		}
		info->plan.rel_oids = list_make1_oid(foreigntableid);
	}
	plan = &info->plan;
	plan->mode = scan_mode(info);
	if (plan->mode == EW_MODE_HASH)
		plan->count_only = false;
	if (plan->mode == EW_MODE_ACCOUNT)
	{
		bool		known;
		double		a = estimate_addresses(root, info, &known);

		plan->naddresses = known ? (int) Min(a, PG_INT32_MAX) : -1;
	}
	(void) estimate_rows(root, baserel, info, &tuples);
	requests = estimate_requests(root, info);
	plan->planned_requests = requests < 0 ? -1 : (int64) Min(requests, (double) PG_INT64_MAX);
	/* what EXPLAIN sizes the expected requests by (EwExpectedRequests) */
	plan->planned_blocks = plan->mode == EW_MODE_RANGE && info->blocks_exact ?
		(int64) info->blocks : -1;
	/* a LIMIT may need few rows: start with one block and grow */
	plan->slow_start = root->limit_tuples > 0 &&
		(plan->mode == EW_MODE_RANGE || plan->mode == EW_MODE_BACKWARD);
	fields = palloc(sizeof(EwField *) * (list_length(plan->fields) + 1));
	foreach(lc, plan->fields)
		fields[n++] = EwFieldByCode(lfirst_int(lc));
	plan->document = EwDeparseDocument(info->opts.table, plan->mode,
									   plan->count_only, fields, n);

	foreach(lc, scan_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		/* pseudoconstants are the gating Result's; filters the wrapper's */
		if (ri->pseudoconstant || list_member_ptr(info->filter_rinfos, ri))
			continue;
		local_clauses = lappend(local_clauses, ri->clause);
	}
	fdw_private = EwPackScanPlan(plan, &fdw_exprs);
	return make_foreignscan(tlist, local_clauses, info->is_join ? 0 : baserel->relid,
							fdw_exprs, fdw_private, fdw_scan_tlist, NIL, outer_plan);
}

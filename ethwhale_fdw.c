/*-------------------------------------------------------------------------
 *
 * ethwhale_fdw.c
 *		  Foreign-data wrapper for Ethereum nodes: the handler, the FDW
 *		  callbacks, costing and EXPLAIN.
 *
 * Planning resolves the columns to fields (catalog.c), classifies the
 * restriction clauses once (deparse.c), estimates the rows and builds the
 * document; the plan travels to the executor as an EwScanPlan
 * (scanplan.c).  Execution is scan.c's: the callbacks here hand over.
 * README.md ("How it is built") follows one query through the files.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#include "compat.h"
#include "executor/spi.h"
#include "foreign/fdwapi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "scan.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Planner guesses when bounds are not known at plan time. */
#define EW_DEFAULT_BLOCKS		1000
#define EW_DEFAULT_SET_SIZE		10	/* elements of an array not yet known */
#define EW_TXS_PER_BLOCK		150
#define EW_LOGS_PER_BLOCK		40	/* ERC-20 transfers in a mainnet block */
#define EW_ADDRESS_FILTER_SEL	0.01	/* share of them an address filter keeps */

/* Cost model: one request per chunk, then per-block and per-row work. */
#define EW_STARTUP_COST			100.0
#define EW_COST_PER_ROW			0.01

PG_FUNCTION_INFO_V1(ethwhale_fdw_handler);
PG_FUNCTION_INFO_V1(ethwhale_may_commit);

static void ethwhaleGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
									  Oid foreigntableid);
static void ethwhaleGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
									Oid foreigntableid);
static ForeignScan *ethwhaleGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
										   Oid foreigntableid, ForeignPath *best_path,
										   List *tlist, List *scan_clauses,
										   Plan *outer_plan);
static void ethwhaleBeginForeignScan(ForeignScanState *node, int eflags);
static TupleTableSlot *ethwhaleIterateForeignScan(ForeignScanState *node);
static void ethwhaleReScanForeignScan(ForeignScanState *node);
static void ethwhaleEndForeignScan(ForeignScanState *node);
static void ethwhaleExplainForeignScan(ForeignScanState *node, ExplainState *es);
static List *ethwhaleImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid);

/*
 * _PG_init
 *		Library start-up: the transport's global state, and jansson's
 *		allocator.
 */
void
_PG_init(void)
{
	EwTransportInit();
	EwJsonInit();
}

/*
 * ethwhale_fdw_handler
 *		The FDW's callback table.
 */
Datum
ethwhale_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = ethwhaleGetForeignRelSize;
	routine->GetForeignPaths = ethwhaleGetForeignPaths;
	routine->GetForeignPlan = ethwhaleGetForeignPlan;
	routine->BeginForeignScan = ethwhaleBeginForeignScan;
	routine->IterateForeignScan = ethwhaleIterateForeignScan;
	routine->ReScanForeignScan = ethwhaleReScanForeignScan;
	routine->EndForeignScan = ethwhaleEndForeignScan;
	routine->ExplainForeignScan = ethwhaleExplainForeignScan;
	routine->ImportForeignSchema = ethwhaleImportForeignSchema;

	PG_RETURN_POINTER(routine);
}

/*
 * ethwhale_may_commit
 *		Whether the PL/pgSQL procedure evaluating this call may COMMIT: it
 *		runs in a non-atomic SPI connection, which PostgreSQL gives a
 *		procedure CALLed outside a transaction block (or from a procedure or
 *		DO block that itself may commit), and never to a function or to a
 *		CALL inside BEGIN ... COMMIT.  ethwhale.sync and ethwhale.refresh use
 *		it to commit batch by batch where they can.
 */
Datum
ethwhale_may_commit(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(SPI_inside_nonatomic_context());
}

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
 *		How many blocks the bounds let through, as far as plan time knows.
 */
static double
estimate_blocks(PlannerInfo *root, EwRelInfo *info)
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
			continue;
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
	if (in_count >= 0)
		return Max(in_count, 1);
	if (lo >= 0 && hi >= 0)
		return hi >= lo ? Min((double) hi - (double) lo + 1, 1e9) : 1;
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
 * desc_limit_pathkey
 *		If the query is ORDER BY <block column> DESC ... LIMIT n over this
 *		relation, the pathkey of that ordering, else NULL.
 */
static PathKey *
desc_limit_pathkey(PlannerInfo *root, RelOptInfo *baserel, AttrNumber attno)
{
	PathKey    *pk;
	ListCell   *lc;

	if (root->parse->limitCount == NULL || root->query_pathkeys == NIL)
		return NULL;
	/* LIMIT ALL / LIMIT NULL bounds nothing */
	if (IsA(root->parse->limitCount, Const) &&
		((Const *) root->parse->limitCount)->constisnull)
		return NULL;
	pk = (PathKey *) linitial(root->query_pathkeys);
	if (!EW_PATHKEY_DESCENDING(pk))
		return NULL;
	foreach(lc, pk->pk_eclass->ec_members)
	{
		EquivalenceMember *em = (EquivalenceMember *) lfirst(lc);

		if (EwRelVarAttno((Node *) em->em_expr, baserel->relid) == attno)
			return pk;
	}
	return NULL;
}

/* ---------------------------------------------------------------------
 * Planning
 * ---------------------------------------------------------------------
 */

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
	int			nall;
	const EwField *all = EwTableFields(info->opts.table, &nall);
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
		info->plan.fields = lappend_int(info->plan.fields, (int) (f - all));
		if (f->source != EW_SRC_BLOCK_NUMBER && f->source != EW_SRC_BLOCK_TIME)
			info->plan.count_only = false;
	}
}

/*
 * check_scan_is_bounded
 *		Refuse a scan the node cannot answer: an account scan without
 *		addresses, or a block scan without a lower bound (unless it is an
 *		ORDER BY block DESC LIMIT n, read from the head down).
 */
static void
check_scan_is_bounded(PlannerInfo *root, RelOptInfo *baserel, Relation rel,
					  EwRelInfo *info)
{
	bool		is_account = info->opts.table == EW_TABLE_ACCOUNT;

	if (is_account && !info->addr_taken[EW_ADDR_ACCOUNT])
	{
		const char *col = EwColumnName(rel, info->addr_attnos[EW_ADDR_ACCOUNT], "address");

		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
				 errmsg("a scan of foreign table \"%s\" needs the addresses to read",
						RelationGetRelationName(rel)),
				 errdetail("A node cannot list its accounts; it answers for the addresses it is asked about."),
				 errhint("Add WHERE %s = '0x…', WHERE %s = ANY(ARRAY['0x…', …]) or WHERE %s = ANY(ARRAY(SELECT …)).",
						 col, col, col)));
	}
	/* an account scan without block bounds reads the head */
	if (info->plan.hash_expr != NULL || info->has_lower ||
		(is_account && info->plan.bound_exprs == NIL))
		return;
	if (info->block_attno != InvalidAttrNumber)
		info->desc_pathkey = desc_limit_pathkey(root, baserel, info->block_attno);
	if (info->desc_pathkey == NULL)
	{
		const char *col = EwColumnName(rel, info->block_attno,
									   info->opts.table == EW_TABLE_BLOCK ? "number" : "block");

		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
				 errmsg("a scan of foreign table \"%s\" needs a lower bound on column \"%s\"",
						RelationGetRelationName(rel), col),
				 errdetail("Without one the node would be read from block 0 to its head."),
				 errhint("Bound the block range, e.g. WHERE %s BETWEEN 17000000 AND 17000100 or WHERE %s >= 17000000, or read the newest blocks with ORDER BY %s DESC LIMIT n.",
						 col, col, col)));
	}
}

/*
 * estimate_rows
 *		baserel->tuples and rows from the bounds and the pushed addresses.
 */
static void
estimate_rows(PlannerInfo *root, RelOptInfo *baserel, EwRelInfo *info)
{
	bool		is_account = info->opts.table == EW_TABLE_ACCOUNT;
	double		blocks;
	bool		known;
	int			i;

	if (info->plan.hash_expr != NULL || (is_account && info->plan.bound_exprs == NIL))
		blocks = 1;
	else if (info->desc_pathkey != NULL)
		blocks = info->opts.batch_blocks;
	else
		blocks = estimate_blocks(root, info);
	switch (info->opts.table)
	{
		case EW_TABLE_BLOCK:
			baserel->tuples = blocks;
			break;
		case EW_TABLE_TX:
			baserel->tuples = info->plan.hash_expr != NULL ? 1 : blocks * EW_TXS_PER_BLOCK;
			break;
		case EW_TABLE_TOKEN_TRANSFER:
			baserel->tuples = blocks * EW_LOGS_PER_BLOCK;
			for (i = EW_ADDR_TOKEN; i <= EW_ADDR_TO; i++)
				if (info->addr_taken[i])
					baserel->tuples *= EW_ADDRESS_FILTER_SEL;
			break;
		case EW_TABLE_ACCOUNT:
			baserel->tuples = blocks * estimate_addresses(root, info, &known);
			info->plan.naddresses = known ?
				(int) Min(estimate_addresses(root, info, &known), PG_INT32_MAX) : -1;
			break;
	}
	baserel->tuples = clamp_row_est(baserel->tuples);
	/* The bounds are in the estimate already: apply only the rest. */
	baserel->rows = clamp_row_est(baserel->tuples *
								  clauselist_selectivity(root, info->other_conds,
														 0, JOIN_INNER, NULL));
}

/*
 * ethwhaleGetForeignRelSize
 *		Classify the restriction clauses, decide which fields to request and
 *		estimate the number of rows.
 */
static void
ethwhaleGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
						  Oid foreigntableid)
{
	EwRelInfo  *info = palloc0(sizeof(EwRelInfo));
	ForeignTable *table = GetForeignTable(foreigntableid);
	Relation	rel;
	const EwField **colfields;

	baserel->fdw_private = info;
	EwGetOptions(foreigntableid, table->serverid,
				 baserel->userid ? baserel->userid : GetUserId(), &info->opts);
	info->plan.naddresses = -1;

	rel = table_open(foreigntableid, NoLock);
	colfields = EwResolveColumns(rel, info->opts.table);
	EwClassifyClauses(root, baserel, rel, colfields, info);
	needed_columns(baserel, rel, colfields, info);
	check_scan_is_bounded(root, baserel, rel, info);
	table_close(rel, NoLock);
	estimate_rows(root, baserel, info);
}

/*
 * ethwhaleGetForeignPaths
 *		One path; ordered by the block column descending for a backward scan.
 */
static void
ethwhaleGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
						Oid foreigntableid)
{
	EwRelInfo  *info = (EwRelInfo *) baserel->fdw_private;
	double		per_block = info->opts.table == EW_TABLE_TX ? EW_TXS_PER_BLOCK :
		info->opts.table == EW_TABLE_TOKEN_TRANSFER ? EW_LOGS_PER_BLOCK : 1;
	double		chunks = Max(1.0, baserel->tuples / per_block /
							 info->opts.batch_blocks);
	Cost		startup = EW_STARTUP_COST;
	Cost		total = startup + chunks * EW_STARTUP_COST +
		baserel->tuples * (EW_COST_PER_ROW + cpu_tuple_cost);
	List	   *pathkeys = NIL;

	if (info->desc_pathkey != NULL)
		pathkeys = list_make1(info->desc_pathkey);

	add_path(baserel, (Path *)
			 ew_create_foreignscan_path(root, baserel, NULL, baserel->rows,
										startup, total, pathkeys,
										NULL, NULL, NIL));
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
 * ethwhaleGetForeignPlan
 *		Build the ForeignScan: the document and the plan go into
 *		fdw_private and fdw_exprs; every clause but the wrapper's filters
 *		stays a local filter.
 */
static ForeignScan *
ethwhaleGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
					   Oid foreigntableid, ForeignPath *best_path,
					   List *tlist, List *scan_clauses, Plan *outer_plan)
{
	EwRelInfo  *info = (EwRelInfo *) baserel->fdw_private;
	EwScanPlan *plan = &info->plan;
	List	   *fdw_exprs;
	List	   *fdw_private;
	List	   *local_clauses = NIL;
	const EwField **fields;
	int			nall;
	const EwField *all = EwTableFields(info->opts.table, &nall);
	int			n = 0;
	ListCell   *lc;

	plan->mode = scan_mode(info);
	if (plan->mode == EW_MODE_HASH)
		plan->count_only = false;
	fields = palloc(sizeof(EwField *) * (list_length(plan->fields) + 1));
	foreach(lc, plan->fields)
		fields[n++] = &all[lfirst_int(lc)];
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
	return make_foreignscan(tlist, local_clauses, baserel->relid, fdw_exprs,
							fdw_private, NIL, NIL, outer_plan);
}

/* ---------------------------------------------------------------------
 * Execution: scan.c does the work
 * ---------------------------------------------------------------------
 */

static void
ethwhaleBeginForeignScan(ForeignScanState *node, int eflags)
{
	EwBeginScan(node, eflags);
}

static TupleTableSlot *
ethwhaleIterateForeignScan(ForeignScanState *node)
{
	return EwIterateScan(node);
}

static void
ethwhaleReScanForeignScan(ForeignScanState *node)
{
	EwRescan((EwScanState *) node->fdw_state);
}

static void
ethwhaleEndForeignScan(ForeignScanState *node)
{
	EwEndScan((EwScanState *) node->fdw_state);
}

/* ---------------------------------------------------------------------
 * EXPLAIN
 * ---------------------------------------------------------------------
 */

/*
 * explain_bounds
 *		"Block Bounds": the pushed comparisons, deparsed in the plan's
 *		context (a parameter of an initplan or an outer query needs it).
 */
static void
explain_bounds(EwScanPlan *plan, List *dpcontext, ExplainState *es)
{
	static const char *const opnames[] = {"", "<", "<=", "=", ">=", ">"};
	StringInfoData bounds;
	ListCell   *le,
			   *ls;

	if (plan->mode == EW_MODE_HASH)
	{
		ExplainPropertyText("Lookup", "transaction(hash:)", es);
		return;
	}
	initStringInfo(&bounds);
	forboth(le, plan->bound_exprs, ls, plan->bound_strategies)
	{
		int			s = lfirst_int(ls);
		char	   *e = deparse_expression((Node *) lfirst(le), dpcontext, false, false);

		if (s == EW_STRATEGY_IN)
			appendStringInfo(&bounds, "%s= ANY (%s)", bounds.len ? " AND " : "", e);
		else
			appendStringInfo(&bounds, "%s%s %s", bounds.len ? " AND " : "", opnames[s], e);
	}
	if (plan->mode == EW_MODE_BACKWARD)
		appendStringInfo(&bounds, "%sdescending from %s", bounds.len ? ", " : "",
						 bounds.len ? "the bound" : "the head");
	else if (bounds.len == 0)
		appendStringInfoString(&bounds, plan->mode == EW_MODE_ACCOUNT ? "the head" : "none");
	ExplainPropertyText("Block Bounds", bounds.data, es);
}

/*
 * explain_filters
 *		"Wrapper Filter" (amount comparisons applied while decoding) and
 *		"Remote Filter" (addresses sent to the node).
 */
static void
explain_filters(EwScanPlan *plan, List *dpcontext, ExplainState *es)
{
	static const char *const slotvars[] = {
		"addresses", "topics[1] (from)", "topics[2] (to)", "account(address:)"
	};
	StringInfoData f;
	ListCell   *lt,
			   *le,
			   *la;

	initStringInfo(&f);
	forboth(lt, plan->filter_texts, le, plan->filter_exprs)
		appendStringInfo(&f, "%s%s %s", f.len ? " AND " : "", strVal(lfirst(lt)),
						 deparse_expression((Node *) lfirst(le), dpcontext, false, false));
	if (f.len > 0)
		ExplainPropertyText("Wrapper Filter", f.data, es);

	resetStringInfo(&f);
	forthree(lt, plan->addr_slots, la, plan->addr_arrays, le, plan->addr_exprs)
		appendStringInfo(&f, "%s%s %s%s%s", f.len ? ", " : "", slotvars[lfirst_int(lt)],
						 lfirst_int(la) ? "= ANY(" : "= ",
						 deparse_expression((Node *) lfirst(le), dpcontext, false, false),
						 lfirst_int(la) ? ")" : "");
	if (f.len > 0)
		ExplainPropertyText("Remote Filter", f.data, es);
}

/*
 * explain_document
 *		"Remote GraphQL": the document the scan sends.  An account scan
 *		sends one per batch of up to EW_ACCOUNTS_PER_REQUEST addresses; the
 *		first batch's is shown when plan time knows how many there are,
 *		else the one for a single address.
 */
static void
explain_document(EwScanPlan *plan, ExplainState *es)
{
	if (plan->mode != EW_MODE_ACCOUNT)
	{
		ExplainPropertyText("Remote GraphQL", plan->document, es);
		return;
	}
	ExplainPropertyText("Remote GraphQL",
						EwDeparseAccountDocument(plan->document,
												 plan->naddresses > 0 ?
												 Min(plan->naddresses, EW_ACCOUNTS_PER_REQUEST) : 1),
						es);
	if (plan->naddresses < 0 || plan->naddresses > EW_ACCOUNTS_PER_REQUEST)
		ExplainPropertyText("Remote GraphQL Batches",
							psprintf("one alias per address, up to %d per request",
									 EW_ACCOUNTS_PER_REQUEST),
							es);
}

/*
 * ethwhaleExplainForeignScan
 *		Show the document, the block bounds, the filters and, with ANALYZE,
 *		what the scan sent and received.
 */
static void
ethwhaleExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EwScanState *st = (EwScanState *) node->fdw_state;
	EwScanPlan	plan;
	List	   *dpcontext;

	EwUnpackScanPlan(fsplan->fdw_private, fsplan->fdw_exprs, &plan);
	if (es->verbose)
		explain_document(&plan, es);
	dpcontext = set_deparse_context_plan(es->deparse_cxt, node->ss.ps.plan, NIL);
	explain_filters(&plan, dpcontext, es);
	explain_bounds(&plan, dpcontext, es);

	if (es->analyze && st != NULL)
	{
		ExplainPropertyInteger("Blocks Read", NULL, st->blocks_read, es);
		ExplainPropertyInteger("Requests", NULL, st->stats.requests, es);
		ExplainPropertyInteger("Bytes Received", NULL, st->stats.bytes, es);
		ExplainPropertyInteger("Retries", NULL, st->stats.retries, es);
		ExplainPropertyInteger("Rows Filtered in Wrapper", NULL, st->stats.rows_filtered, es);
		if (st->opts.table == EW_TABLE_TOKEN_TRANSFER)
		{
			ExplainPropertyInteger("Logs Skipped (not ERC-20)", NULL, st->stats.logs_skipped, es);
			if (st->lists_unsent > 0)
				ExplainPropertyInteger("Address Lists Not Sent (too long)", NULL,
									   st->lists_unsent, es);
		}
	}
}

/*
 * ethwhaleImportForeignSchema
 *		IMPORT FOREIGN SCHEMA ethereum: catalog.c makes the tables.
 */
static List *
ethwhaleImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	return EwImportForeignSchema(stmt, serverOid);
}

/*-------------------------------------------------------------------------
 *
 * ethwhale_fdw.c
 *		  Foreign-data wrapper for Ethereum nodes: the handler, the FDW
 *		  callbacks, costing and EXPLAIN.
 *
 * Planning is planner.c's (columns to fields, clause classification,
 * estimates, paths and the plan, which travels to the executor as an
 * EwScanPlan); execution is scan.c's.  The callbacks here hand over, and
 * EXPLAIN shows what the plan holds and what the scan did.
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
#include "utils/guc.h"
#include "utils/ruleutils.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* ethwhale.max_requests_per_query */
int			EwMaxRequestsPerQuery = 10000;

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
static void ethwhaleGetForeignJoinPaths(PlannerInfo *root, RelOptInfo *joinrel,
										RelOptInfo *outerrel, RelOptInfo *innerrel,
										JoinType jointype, JoinPathExtraData *extra);
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
	DefineCustomIntVariable("ethwhale.max_requests_per_query",
							"Most requests one foreign scan may send to a node.",
							"A scan that plans more fails before sending anything; one that "
							"reaches it while running (open ranges, retries, halving) stops "
							"with an error. The server or table option max_requests overrides it.",
							&EwMaxRequestsPerQuery,
							10000, 1, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	EwTransportInit();
	EwJsonInit();
	EwJsonArenaInit();
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
	routine->GetForeignJoinPaths = ethwhaleGetForeignJoinPaths;
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
 * Planning: planner.c does the work
 * ---------------------------------------------------------------------
 */

static void
ethwhaleGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
						  Oid foreigntableid)
{
	EwPlanRelSize(root, baserel, foreigntableid);
}

static void
ethwhaleGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
						Oid foreigntableid)
{
	EwPlanPaths(root, baserel);
}

static void
ethwhaleGetForeignJoinPaths(PlannerInfo *root, RelOptInfo *joinrel,
							RelOptInfo *outerrel, RelOptInfo *innerrel,
							JoinType jointype, JoinPathExtraData *extra)
{
	EwPlanJoinPaths(root, joinrel, outerrel, innerrel, jointype, extra);
}

static ForeignScan *
ethwhaleGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
					   Oid foreigntableid, ForeignPath *best_path,
					   List *tlist, List *scan_clauses, Plan *outer_plan)
{
	return EwPlanForeignScan(root, baserel, foreigntableid, best_path, tlist,
							 scan_clauses, outer_plan);
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
explain_bounds(EwScanState *st, EwScanPlan *plan, List *dpcontext, ExplainState *es)
{
	static const char *const opnames[] = {"", "<", "<=", "=", ">=", ">"};
	StringInfoData bounds;
	ListCell   *le,
			   *ls;

	if (plan->mode == EW_MODE_HASH)
	{
		ExplainPropertyText("Lookup", st != NULL && st->opts.api == EW_API_JSONRPC ?
							"eth_getTransactionByHash" : "transaction(hash:)", es);
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
explain_filters(EwScanState *st, EwScanPlan *plan, List *dpcontext,
				ExplainState *es)
{
	/* where each address slot goes: GraphQL's names, and JSON-RPC's */
	static const char *const slotvars[2][EW_NUM_ADDR_SLOTS] = {
		{"addresses", "topics[1] (from)", "topics[2] (to)", "account(address:)"},
		{"address", "topics[1] (from)", "topics[2] (to)", "eth_getBalance & co. (address)"}
	};
	int			rpc = st != NULL && st->opts.api == EW_API_JSONRPC;
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
		appendStringInfo(&f, "%s%s %s%s%s", f.len ? ", " : "", slotvars[rpc][lfirst_int(lt)],
						 lfirst_int(la) ? "= ANY(" : "= ",
						 deparse_expression((Node *) lfirst(le), dpcontext, false, false),
						 lfirst_int(la) ? ")" : "");
	if (f.len > 0)
		ExplainPropertyText("Remote Filter", f.data, es);
}

/*
 * explain_document
 *		"Remote GraphQL" or "Remote JSON-RPC": what the scan sends, as the
 *		node API that builds the requests describes it.  A GraphQL account
 *		scan sends one document per batch of up to EW_ACCOUNTS_PER_REQUEST
 *		addresses: the first batch's is shown.
 */
static void
explain_document(EwScanState *st, EwScanPlan *plan, ExplainState *es)
{
	ExplainPropertyText(psprintf("Remote %s", st->api->name),
						st->api->describe(st), es);
	if (st->api == &EwGraphqlApi && plan->mode == EW_MODE_ACCOUNT &&
		(plan->naddresses < 0 || plan->naddresses > EW_ACCOUNTS_PER_REQUEST))
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
	if (plan.relations[0] != '\0')
		ExplainPropertyText("Relations", plan.relations, es);
	if (es->verbose && st != NULL)
	{
		explain_document(st, &plan, es);
		if (plan.planned_requests >= 0)
			ExplainPropertyInteger("Planned Requests", NULL, plan.planned_requests, es);
		else
			ExplainPropertyText("Planned Requests", "known when the scan starts", es);

		/*
		 * at the answer size this session has seen, when that makes more
		 * requests (ANALYZE shows the count itself)
		 */
		if (!es->analyze)
		{
			double		expected = EwExpectedRequests(st);

			if (expected >= 0 && expected != (double) plan.planned_requests)
				ExplainPropertyInteger("Expected Requests", NULL,
									   (int64) Min(expected, (double) PG_INT64_MAX), es);
		}
	}
	dpcontext = set_deparse_context_plan(es->deparse_cxt, node->ss.ps.plan, NIL);
	explain_filters(st, &plan, dpcontext, es);
	explain_bounds(st, &plan, dpcontext, es);

	if (es->analyze && st != NULL)
	{
		ExplainPropertyInteger("Blocks Read", NULL, st->blocks_read, es);
		ExplainPropertyInteger("Requests", NULL, st->stats.requests, es);
		ExplainPropertyInteger("Bytes Received", NULL, st->stats.bytes, es);
		ExplainPropertyInteger("Retries", NULL, st->stats.retries, es);
		ExplainPropertyInteger("Rows Filtered in Wrapper", NULL, st->stats.rows_filtered, es);
		if (st->stats.reused > 0)
			ExplainPropertyInteger("Answers Reused by Rescans", NULL, st->stats.reused, es);
		if (st->api->notes != NULL && st->api->notes(st) != NULL)
			ExplainPropertyText("Node Notes", st->api->notes(st), es);
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

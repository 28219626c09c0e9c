/*-------------------------------------------------------------------------
 *
 * ethwhale_fdw.c
 *		  Foreign-data wrapper callbacks for Ethereum nodes serving the
 *		  EIP-1767 GraphQL API.
 *
 * Planning classifies the restriction clauses once: comparisons of the
 * block column with scan constants become the block range requested from
 * the node, equality on a transaction hash becomes transaction(hash:).
 * Every clause also stays a local filter, so nothing the node answers can
 * widen the result.  Only the fields of the columns the query uses are
 * requested.
 *
 * Execution evaluates the bounds (constants, parameters, stable
 * expressions), splits the range into chunks of batch_blocks blocks and
 * fetches them one at a time.  The parsed answer of one chunk lives in a
 * memory context that is reset before the next chunk, so memory is bounded
 * by the chunk, not by the range.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "ethwhale_fdw.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "foreign/fdwapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/wait_event.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Planner guesses when bounds are not known at plan time. */
#define EW_DEFAULT_BLOCKS		1000
#define EW_TXS_PER_BLOCK		150
#define EW_LOGS_PER_BLOCK		40	/* ERC-20 transfers in a mainnet block */
#define EW_ADDRESS_FILTER_SEL	0.01	/* share of them an address filter keeps */

/*
 * Adaptive chunk size: aim each answer at this many bytes (or a quarter of
 * max_response_mb if that is less), at most doubling or halving per answer,
 * never above batch_blocks: the user's number is the most a request asks
 * for, so that a node's limits (and its time-out) set by it hold.
 */
#define EW_TARGET_RESPONSE_BYTES (4 * 1024 * 1024)

/* Accounts asked for in one request, each under its own alias. */
#define EW_ACCOUNTS_PER_REQUEST 100

/*
 * Address columns pushed into the request: the token (logs' addresses),
 * the sender and receiver (topics 1 and 2) of eth_token_transfer, and the
 * address of eth_account.
 */
typedef enum EwAddrSlot
{
	EW_ADDR_TOKEN,
	EW_ADDR_FROM,
	EW_ADDR_TO,
	EW_ADDR_ACCOUNT,
	EW_NUM_ADDR_SLOTS
} EwAddrSlot;
/* Cost model: one request per chunk, then per-block and per-row work. */
#define EW_STARTUP_COST			100.0
#define EW_COST_PER_BLOCK		0.5
#define EW_COST_PER_ROW			0.01

/* How a scan reaches its rows. */
typedef enum EwScanMode
{
	EW_MODE_RANGE,				/* blocks(from:, to:) in ascending chunks */
	EW_MODE_BACKWARD,			/* from the head down (ORDER BY ... DESC LIMIT) */
	EW_MODE_HASH,				/* transaction(hash:) */
	EW_MODE_ACCOUNT				/* block(number:) { aN: account(address:) } */
} EwScanMode;

/*
 * Indexes of the items of ForeignScan.fdw_private.  fdw_exprs holds the
 * bound expressions, in the order of FdwBoundStrategies, then the constant
 * side of each wrapper filter, then the address values (FdwScanPrivateAddr),
 * and last, in hash mode, the hash expression.
 */
enum FdwScanPrivateIndex
{
	FdwScanPrivateQuery,		/* GraphQL document (String) */
	FdwScanPrivateMode,			/* EwScanMode (Integer) */
	FdwScanPrivateCountOnly,	/* rows counted, not decoded (Integer 0/1) */
	FdwScanPrivateAttnos,		/* attribute numbers of needed columns */
	FdwScanPrivateFields,		/* field index of each needed column */
	FdwScanPrivateBoundStrategies,	/* strategy of each bound in fdw_exprs */
	FdwScanPrivateFilterAttnos,	/* column of each wrapper filter ... */
	FdwScanPrivateFilterOps,	/* ... its operator (OID list) ... */
	FdwScanPrivateFilterTexts,	/* ... and "column op" for EXPLAIN */
	FdwScanPrivateAddrSlots,	/* EwAddrSlot of each address value ... */
	FdwScanPrivateAddrArrays	/* ... and whether it is an array (0/1) */
};

/* What planning learned about a foreign table, kept in baserel->fdw_private. */
typedef struct EwRelInfo
{
	EwOptions	opts;
	AttrNumber	block_attno;	/* the block number column, or Invalid */
	AttrNumber	hash_attno;		/* eth_tx hash column, or Invalid */
	List	   *bound_exprs;	/* Expr of each block bound */
	List	   *bound_strategies;	/* btree strategy or EW_STRATEGY_IN */
	Expr	   *hash_expr;		/* constant side of hash = ..., or NULL */
	bool		has_lower;		/* a lower bound or a set of blocks */
	List	   *attnos;			/* needed columns ... */
	List	   *fields;			/* ... and their field index */
	bool		count_only;
	PathKey    *desc_pathkey;	/* ORDER BY block DESC of a LIMIT query */
	List	   *other_conds;	/* RestrictInfos not used as bounds */
	/* value comparisons applied by the wrapper while decoding */
	List	   *filter_rinfos;
	List	   *filter_attnos;
	List	   *filter_ops;
	List	   *filter_exprs;
	List	   *filter_texts;
	/* address equality pushed into logs(filter:) or account(address:) */
	List	   *addr_exprs;
	List	   *addr_slots;
	List	   *addr_arrays;
} EwRelInfo;

/* A range of block numbers, both ends included. */
typedef struct EwRange
{
	int64		lo;
	int64		hi;
} EwRange;

/* A chunk request of a concurrent scan, in block order in the pipeline. */
typedef struct EwPending
{
	int64		from;
	int64		to;
	int			range;			/* index in ranges */
	char	   *body;			/* request body, palloc'd in pipe_cxt */
	EwSlot	   *slot;			/* NULL until started */
	int			attempt;		/* retries used */
} EwPending;

/* Execution state of a foreign scan. */
typedef struct EwScanState
{
	Relation	rel;
	ForeignServer *server;
	EwOptions	opts;
	EwConnection *conn;
	EwScanMode	mode;
	bool		count_only;
	char	   *query_json;		/* the GraphQL document as a JSON string */
	List	   *bound_states;	/* ExprState of each bound */
	List	   *bound_strategies;
	ExprState  *hash_state;
	EwDecoder	dec;
	char	   *selection;		/* account mode: selection of each alias */

	/* address values pushed into the request */
	List	   *addr_states;
	List	   *addr_slots;
	List	   *addr_arrays;
	char	   *log_vars;		/* token transfers: ,"addresses":…,"topics":… */
	char	  **accounts;		/* account mode: sorted distinct addresses */
	int			naccounts;
	int			acct_next;		/* next address to ask for at next_block */
	bool		at_head;		/* account mode without block bounds */
	int64		head_block;		/* ... the head they are read at, once known */
	json_t	   *acct_block;		/* the answer's block with aliases a0 … */
	int			acct_n;			/* ... how many */
	int			acct_idx;		/* ... and the next one to return */

	/* wrapper filters: "column op constant", tested on decoded values */
	int			nfilters;
	int		   *filter_attidx;	/* 0-based column of each filter */
	FmgrInfo   *filter_fn;
	ExprState **filter_states;
	Datum	   *filter_values;	/* evaluated when the scan starts */
	bool	   *filter_nulls;
	int			nfilter_cols;	/* dec.cols[0 .. n-1] feed the filters */

	/* block ranges to read, computed at the first fetch */
	bool		started;
	EwRange    *ranges;
	int			nranges;
	int			cur_range;
	int64		next_block;		/* next block to request */
	int			chunk;			/* blocks per request, adapted */
	int			chunk_ceiling;	/* below the size that timed out */

	/* concurrency > 1: chunk requests in flight, in block order */
	EwPending  *pipe;
	int			npipe;
	EwSlot	  **free_slots;		/* slots held by this scan, not in use */
	int			nfree;
	int			nheld;			/* slots held in all */
	int			pipe_cap;
	MemoryContext pipe_cxt;		/* request bodies of the pipeline */
	MemoryContext scan_cxt;		/* ranges and evaluated bounds; reset by
								 * ReScan */
	bool		exhausted;

	/* the answer being returned */
	MemoryContext batch_cxt;	/* parsed JSON of one chunk */
	MemoryContext row_cxt;		/* Datums of one row */
	json_t	   *blocks;			/* array of block objects */
	size_t		block_idx;
	bool		backward;		/* walk blocks from the end of the array */
	json_t	   *txs;			/* transactions of the current block */
	size_t		tx_idx;
	int64		count_left;		/* count_only: rows left in the block */
	json_t	   *hash_tx;		/* hash mode: the transaction, once */

	/* for the error context */
	int64		cur_block;

	EwStats		stats;
	int64		blocks_read;
	size_t		last_body_len;	/* size of the last answer */
	int			lists_unsent;	/* address lists too long to send */
} EwScanState;

/*
 * Longest address list sent in logs(filter:): 10,000 topics of 66
 * characters stay well under Geth's 5 MiB request limit.
 */
#define EW_MAX_FILTER_ADDRESSES 10000

/* Failure classes of one request. */
typedef enum EwFailure
{
	EW_OK,
	EW_FAIL_TRANSIENT,			/* 5xx, 429, reset: send the same again */
	EW_FAIL_SHRINK,				/* time-out or too large: ask for less */
	EW_FAIL_FATAL				/* malformed, GraphQL error, 4xx: give up */
} EwFailure;

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

static const EwField *column_field(Relation rel, EwTableKind kind, AttrNumber attno);
static char *build_query(EwTableKind kind, EwScanMode mode, bool count_only,
						 const EwField **fields, int nfields);
static void start_scan(EwScanState *st, ExprContext *econtext);
static bool fetch_next_chunk(EwScanState *st);
static void release_slots_callback(void *arg);
static json_t *request_data(EwScanState *st, const char *body, const char *what,
							bool can_shrink, int *attempt, bool *shrink);
static int64 fetch_head(EwScanState *st);

/*
 * _PG_init
 *		Library start-up: libcurl's global state, and jansson's allocator.
 */
void
_PG_init(void)
{
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not initialize libcurl")));
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
 * Planning
 * ---------------------------------------------------------------------
 */

/*
 * column_field
 *		The field a column reads: its "field" option if set, else the field
 *		named like the column.  Unknown names are an error naming the valid
 *		columns, raised when the table is first used.
 */
static const EwField *
column_field(Relation rel, EwTableKind kind, AttrNumber attno)
{
	Form_pg_attribute attr = TupleDescAttr(RelationGetDescr(rel), attno - 1);
	const char *name = NameStr(attr->attname);
	const EwField *f;
	List	   *options = GetForeignColumnOptions(RelationGetRelid(rel), attno);
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "field") == 0)
			name = defGetString(def);
	}
	f = EwLookupField(kind, name);
	if (f == NULL)
	{
		StringInfoData valid;
		int			n,
					i;
		const EwField *all = EwTableFields(kind, &n);

		initStringInfo(&valid);
		for (i = 0; i < n; i++)
			appendStringInfo(&valid, "%s%s", i ? ", " : "", all[i].name);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
				 errmsg("column \"%s\" of foreign table \"%s\" does not match any field of table kind \"%s\"",
						NameStr(attr->attname), RelationGetRelationName(rel),
						EwTableKindName(kind)),
				 errhint("Name the column after a field, or set its option \"field\"; valid fields are: %s.",
						 valid.data)));
	}
	return f;
}

/*
 * resolve_columns
 *		The field of every column, indexed by attribute number - 1 (NULL for
 *		dropped columns).  Every column is checked, so a bad definition is
 *		reported whatever the query uses.
 */
static const EwField **
resolve_columns(Relation rel, EwTableKind kind)
{
	TupleDesc	desc = RelationGetDescr(rel);
	const EwField **fields = palloc0(sizeof(EwField *) * Max(1, desc->natts));
	int			i;

	for (i = 0; i < desc->natts; i++)
		if (!TupleDescAttr(desc, i)->attisdropped)
			fields[i] = column_field(rel, kind, i + 1);
	return fields;
}

/*
 * find_column
 *		Attribute number of the column that reads the field named name, or
 *		InvalidAttrNumber.
 */
static AttrNumber
find_column(const EwField **colfields, int natts, const char *name)
{
	int			i;

	for (i = 0; i < natts; i++)
		if (colfields[i] != NULL && strcmp(colfields[i]->name, name) == 0)
			return i + 1;
	return InvalidAttrNumber;
}

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

	forboth(le, info->bound_exprs, ls, info->bound_strategies)
	{
		Expr	   *e = (Expr *) lfirst(le);
		int			s = lfirst_int(ls);
		int64		v;

		if (s == EW_STRATEGY_IN)
		{
			Node	   *n = estimate_expression_value(root, (Node *) e);
			double		c = 10;

			if (IsA(n, Const) && !((Const *) n)->constisnull)
				c = ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(((Const *) n)->constvalue)),
								   ARR_DIMS(DatumGetArrayTypeP(((Const *) n)->constvalue)));
			else if (IsA(n, ArrayExpr))
				c = list_length(((ArrayExpr *) n)->elements);
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
	if (pk->pk_strategy != BTGreaterStrategyNumber)
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
 * classify_value_filter
 *		Record ri as a wrapper filter when it compares one of the amount
 *		columns (value, value_eth, value_usd) of type numeric with a scan
 *		constant.  The wrapper tests it on the decoded value with the same
 *		operator, before the rest of the row is decoded, and the executor
 *		does not test it again.
 */
static void
classify_value_filter(EwRelInfo *info, Relation rel, const EwField **colfields,
					  Index relid, RestrictInfo *ri)
{
	static const char *const amount_fields[] = {
		"value", "value_eth", "value_usd", "amount", "amount_usd",
		"balance", "balance_eth"
	};
	AttrNumber	attno;
	Oid			opno;
	Expr	   *value;
	const EwField *f;
	Form_pg_attribute attr;
	int			i;

	if (!EwClassifyValueFilter(ri->clause, relid, &attno, &opno, &value))
		return;
	attr = TupleDescAttr(RelationGetDescr(rel), attno - 1);
	if (attr->atttypid != NUMERICOID)
		return;
	f = colfields[attno - 1];
	for (i = 0; i < lengthof(amount_fields); i++)
	{
		if (strcmp(f->name, amount_fields[i]) != 0)
			continue;
		info->filter_rinfos = lappend(info->filter_rinfos, ri);
		info->filter_attnos = lappend_int(info->filter_attnos, attno);
		info->filter_ops = lappend_oid(info->filter_ops, opno);
		info->filter_exprs = lappend(info->filter_exprs, value);
		/* the constant side is deparsed by EXPLAIN, in its own context */
		info->filter_texts = lappend(info->filter_texts,
									 makeString(psprintf("%s %s",
														 quote_identifier(NameStr(attr->attname)),
														 get_opname(opno))));
		return;
	}
}

/*
 * push_address
 *		If ri is "col = constant" or "col = ANY(array)" on one of the
 *		address columns whose slot is still free, record it for the request
 *		and return true.  The clause also stays a local filter: it costs
 *		little and keeps the result right whatever the node does.  Its
 *		selectivity is part of the row estimate already.
 */
static bool
push_address(EwRelInfo *info, const AttrNumber *attnos, bool *taken,
			 Index relid, RestrictInfo *ri)
{
	int			slot;

	for (slot = 0; slot < EW_NUM_ADDR_SLOTS; slot++)
	{
		bool		is_array;
		Expr	   *value;

		if (attnos[slot] == InvalidAttrNumber || taken[slot])
			continue;
		value = EwClassifyTextIn(ri->clause, relid, attnos[slot], &is_array);
		if (value == NULL)
			continue;
		taken[slot] = true;
		info->addr_exprs = lappend(info->addr_exprs, value);
		info->addr_slots = lappend_int(info->addr_slots, slot);
		info->addr_arrays = lappend_int(info->addr_arrays, is_array);
		return true;
	}
	return false;
}

/*
 * estimate_addresses
 *		How many addresses an account scan asks for, as far as plan time
 *		knows.
 */
static double
estimate_addresses(PlannerInfo *root, EwRelInfo *info)
{
	ListCell   *le,
			   *la;

	forboth(le, info->addr_exprs, la, info->addr_arrays)
	{
		Node	   *n;

		if (!lfirst_int(la))
			return 1;
		n = estimate_expression_value(root, (Node *) lfirst(le));
		if (IsA(n, Const) && !((Const *) n)->constisnull)
			return ArrayGetNItems(ARR_NDIM(DatumGetArrayTypeP(((Const *) n)->constvalue)),
								  ARR_DIMS(DatumGetArrayTypeP(((Const *) n)->constvalue)));
		if (IsA(n, ArrayExpr))
			return list_length(((ArrayExpr *) n)->elements);
	}
	return 10;
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
	Bitmapset  *attrs = NULL;
	ListCell   *lc;
	int			natts;
	bool		whole_row;
	int			i;
	double		blocks;
	const EwField **colfields;
	const EwField *all;
	int			nfields;
	AttrNumber	addr_attnos[EW_NUM_ADDR_SLOTS] = {0};
	bool		addr_taken[EW_NUM_ADDR_SLOTS] = {0};
	bool		is_account;

	baserel->fdw_private = info;
	EwGetOptions(foreigntableid, table->serverid,
				 baserel->userid ? baserel->userid : GetUserId(), &info->opts);

	rel = table_open(foreigntableid, NoLock);
	natts = RelationGetDescr(rel)->natts;
	colfields = resolve_columns(rel, info->opts.table);
	all = EwTableFields(info->opts.table, &nfields);

	info->block_attno = find_column(colfields, natts,
									info->opts.table == EW_TABLE_BLOCK ? "number" : "block");
	if (info->opts.table == EW_TABLE_TX)
		info->hash_attno = find_column(colfields, natts, "hash");
	is_account = info->opts.table == EW_TABLE_ACCOUNT;
	if (info->opts.table == EW_TABLE_TOKEN_TRANSFER)
	{
		addr_attnos[EW_ADDR_TOKEN] = find_column(colfields, natts, "token");
		addr_attnos[EW_ADDR_FROM] = find_column(colfields, natts, "from_address");
		addr_attnos[EW_ADDR_TO] = find_column(colfields, natts, "to_address");
	}
	else if (is_account)
		addr_attnos[EW_ADDR_ACCOUNT] = find_column(colfields, natts, "address");

	/* Bounds and hash lookups from the restriction clauses. */
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *ri = (RestrictInfo *) lfirst(lc);
		Expr	   *value;
		int			s = 0;

		if (info->block_attno != InvalidAttrNumber)
			s = EwClassifyBound(ri->clause, baserel->relid, info->block_attno, &value);
		if (s != 0)
		{
			info->bound_exprs = lappend(info->bound_exprs, value);
			info->bound_strategies = lappend_int(info->bound_strategies, s);
			if (s == BTEqualStrategyNumber || s == EW_STRATEGY_IN ||
				s == BTGreaterStrategyNumber || s == BTGreaterEqualStrategyNumber)
				info->has_lower = true;
			continue;
		}
		if (info->hash_attno != InvalidAttrNumber && info->hash_expr == NULL)
		{
			info->hash_expr = EwClassifyHashEq(ri->clause, baserel->relid,
											   info->hash_attno);
			if (info->hash_expr != NULL)
				continue;
		}
		if (push_address(info, addr_attnos, addr_taken, baserel->relid, ri))
			continue;
		info->other_conds = lappend(info->other_conds, ri);
		classify_value_filter(info, rel, colfields, baserel->relid, ri);
	}

	/* Columns needed by the output and by the local filters. */
	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid, &attrs);
	foreach(lc, baserel->baserestrictinfo)
		pull_varattnos((Node *) ((RestrictInfo *) lfirst(lc))->clause,
					   baserel->relid, &attrs);
	whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, attrs);
	info->count_only = info->opts.table == EW_TABLE_TX;
	for (i = 1; i <= natts; i++)
	{
		const EwField *f = colfields[i - 1];

		if (f == NULL)
			continue;			/* dropped */
		if (!whole_row &&
			!bms_is_member(i - FirstLowInvalidHeapAttributeNumber, attrs))
			continue;
		info->attnos = lappend_int(info->attnos, i);
		info->fields = lappend_int(info->fields, (int) (f - all));
		if (f->source != EW_SRC_BLOCK_NUMBER && f->source != EW_SRC_BLOCK_TIME)
			info->count_only = false;
	}

	if (is_account && !addr_taken[EW_ADDR_ACCOUNT])
	{
		const char *col = addr_attnos[EW_ADDR_ACCOUNT] != InvalidAttrNumber ?
			NameStr(TupleDescAttr(RelationGetDescr(rel), addr_attnos[EW_ADDR_ACCOUNT] - 1)->attname) :
			"address";

		ereport(ERROR,
				(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
				 errmsg("a scan of foreign table \"%s\" needs the addresses to read",
						RelationGetRelationName(rel)),
				 errdetail("A node cannot list its accounts; it answers for the addresses it is asked about."),
				 errhint("Add WHERE %s = '0x…', WHERE %s = ANY(ARRAY['0x…', …]) or WHERE %s = ANY(ARRAY(SELECT …)).",
						 col, col, col)));
	}
	/* an account scan without block bounds reads the head */
	if (info->hash_expr == NULL && !info->has_lower &&
		!(is_account && info->bound_exprs == NIL))
	{
		info->desc_pathkey = info->block_attno != InvalidAttrNumber ?
			desc_limit_pathkey(root, baserel, info->block_attno) : NULL;
		if (info->desc_pathkey == NULL)
		{
			const char *col = info->block_attno != InvalidAttrNumber ?
				NameStr(TupleDescAttr(RelationGetDescr(rel), info->block_attno - 1)->attname) :
				(info->opts.table == EW_TABLE_BLOCK ? "number" : "block");

			ereport(ERROR,
					(errcode(ERRCODE_FDW_UNABLE_TO_CREATE_EXECUTION),
					 errmsg("a scan of foreign table \"%s\" needs a lower bound on column \"%s\"",
							RelationGetRelationName(rel), col),
					 errdetail("Without one the node would be read from block 0 to its head."),
					 errhint("Bound the block range, e.g. WHERE %s BETWEEN 17000000 AND 17000100 or WHERE %s >= 17000000, or read the newest blocks with ORDER BY %s DESC LIMIT n.",
							 col, col, col)));
		}
	}
	table_close(rel, NoLock);

	if (info->hash_expr != NULL || (is_account && info->bound_exprs == NIL))
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
			baserel->tuples = info->hash_expr != NULL ? 1 : blocks * EW_TXS_PER_BLOCK;
			break;
		case EW_TABLE_TOKEN_TRANSFER:
			baserel->tuples = blocks * EW_LOGS_PER_BLOCK;
			for (i = EW_ADDR_TOKEN; i <= EW_ADDR_TO; i++)
				if (addr_taken[i])
					baserel->tuples *= EW_ADDRESS_FILTER_SEL;
			break;
		case EW_TABLE_ACCOUNT:
			baserel->tuples = blocks * estimate_addresses(root, info);
			break;
	}
	baserel->tuples = clamp_row_est(baserel->tuples);
	/* The bounds are in the estimate already: apply only the rest. */
	baserel->rows = clamp_row_est(baserel->tuples *
								  clauselist_selectivity(root, info->other_conds,
														 0, JOIN_INNER, NULL));
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
			 create_foreignscan_path(root, baserel, NULL, baserel->rows,
									 startup, total, pathkeys,
									 NULL, NULL, NIL));
}

/*
 * ethwhaleGetForeignPlan
 *		Build the ForeignScan: every clause stays a local filter, the bounds
 *		travel in fdw_exprs and the GraphQL document in fdw_private.
 */
static ForeignScan *
ethwhaleGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
					   Oid foreigntableid, ForeignPath *best_path,
					   List *tlist, List *scan_clauses, Plan *outer_plan)
{
	EwRelInfo  *info = (EwRelInfo *) baserel->fdw_private;
	List	   *fdw_exprs = list_concat(list_concat(list_copy(info->bound_exprs),
													info->filter_exprs),
										info->addr_exprs);
	List	   *local_clauses = NIL;
	List	   *fdw_private;
	EwScanMode	mode;
	const EwField **fields;
	int			nall;
	const EwField *all = EwTableFields(info->opts.table, &nall);
	int			n = 0;
	ListCell   *lc;
	char	   *query;

	if (info->hash_expr != NULL)
	{
		mode = EW_MODE_HASH;
		fdw_exprs = lappend(fdw_exprs, info->hash_expr);
	}
	else if (info->opts.table == EW_TABLE_ACCOUNT)
		mode = EW_MODE_ACCOUNT;
	else if (!info->has_lower)
		mode = EW_MODE_BACKWARD;
	else
		mode = EW_MODE_RANGE;

	fields = palloc(sizeof(EwField *) * (list_length(info->fields) + 1));
	foreach(lc, info->fields)
		fields[n++] = &all[lfirst_int(lc)];
	query = build_query(info->opts.table, mode,
						info->count_only && mode != EW_MODE_HASH, fields, n);

	fdw_private = list_make5(makeString(query),
							 makeInteger(mode),
							 makeInteger(info->count_only && mode != EW_MODE_HASH),
							 info->attnos,
							 info->fields);
	fdw_private = lappend(fdw_private, info->bound_strategies);
	fdw_private = lappend(fdw_private, info->filter_attnos);
	fdw_private = lappend(fdw_private, info->filter_ops);
	fdw_private = lappend(fdw_private, info->filter_texts);
	fdw_private = lappend(fdw_private, info->addr_slots);
	fdw_private = lappend(fdw_private, info->addr_arrays);

	/* The wrapper's filters are not tested again by the executor. */
	foreach(lc, scan_clauses)
	{
		RestrictInfo *ri = lfirst_node(RestrictInfo, lc);

		if (!list_member_ptr(info->filter_rinfos, ri))
			local_clauses = lappend(local_clauses, ri->clause);
	}
	return make_foreignscan(tlist, local_clauses, baserel->relid, fdw_exprs,
							fdw_private, NIL, NIL, outer_plan);
}

/*
 * build_query
 *		The GraphQL document of a scan.  Block numbers and hashes are passed
 *		as variables: Geth parses integer literals in query text as 32 bits.
 */
static char *
build_query(EwTableKind kind, EwScanMode mode, bool count_only,
			const EwField **fields, int nfields)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (mode == EW_MODE_ACCOUNT)
	{
		/*
		 * The aliases are repeated for each address when the scan runs; this
		 * is the selection each of them gets.
		 */
		EwAppendSelection(&buf, kind, fields, nfields, false, false);
		return buf.data;
	}
	if (mode == EW_MODE_HASH)
		appendStringInfoString(&buf, "query($hash: Bytes32!) { transaction(hash: $hash) ");
	else if (kind == EW_TABLE_TOKEN_TRANSFER)
		appendStringInfoString(&buf, "query($from: Long!, $to: Long!, $addresses: [Address!], $topics: [[Bytes32!]!]) { blocks(from: $from, to: $to) ");
	else
		appendStringInfoString(&buf, "query($from: Long!, $to: Long!) { blocks(from: $from, to: $to) ");
	EwAppendSelection(&buf, kind, fields, nfields, count_only, mode == EW_MODE_HASH);
	appendStringInfoString(&buf, " }");
	return buf.data;
}

/* ---------------------------------------------------------------------
 * Execution
 * ---------------------------------------------------------------------
 */

/*
 * decode_error_callback
 *		Name the column and block being decoded in any error.
 */
static void
decode_error_callback(void *arg)
{
	EwScanState *st = (EwScanState *) arg;

	if (st->cur_block < 0)
		errcontext("foreign table \"%s\"", RelationGetRelationName(st->rel));
	else if (st->dec.current != NULL)
		errcontext("column \"%s\" of foreign table \"%s\", block " INT64_FORMAT,
				   NameStr(TupleDescAttr(RelationGetDescr(st->rel),
										 st->dec.current->attidx)->attname),
				   RelationGetRelationName(st->rel), st->cur_block);
	else
		errcontext("foreign table \"%s\", block " INT64_FORMAT,
				   RelationGetRelationName(st->rel), st->cur_block);
}

/*
 * ethwhaleBeginForeignScan
 *		Set up the scan state; nothing is sent before the first row is asked
 *		for (EXPLAIN without ANALYZE sends nothing).
 */
static void
ethwhaleBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	EwScanState *st = palloc0(sizeof(EwScanState));
	RangeTblEntry *rte;
	Oid			userid;
	List	   *attnos,
			   *fieldidx,
			   *filter_attnos,
			   *filter_ops;
	int			pass;
	ListCell   *la,
			   *lf;
	int			nall,
				nbounds,
				naddr,
				i;
	const EwField *all;
	TupleDesc	desc;
	json_t	   *js;
	char	   *s;
	bool		need_prices = false;
	bool		need_tokens = false;

	node->fdw_state = st;
	st->rel = node->ss.ss_currentRelation;
	rte = exec_rt_fetch(fsplan->scan.scanrelid, estate);
	userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	st->server = GetForeignServer(GetForeignTable(RelationGetRelid(st->rel))->serverid);
	EwGetOptions(RelationGetRelid(st->rel), st->server->serverid, userid, &st->opts);

	st->mode = (EwScanMode) intVal(list_nth(fsplan->fdw_private, FdwScanPrivateMode));
	st->count_only = intVal(list_nth(fsplan->fdw_private, FdwScanPrivateCountOnly)) != 0;
	attnos = (List *) list_nth(fsplan->fdw_private, FdwScanPrivateAttnos);
	fieldidx = (List *) list_nth(fsplan->fdw_private, FdwScanPrivateFields);
	st->bound_strategies = (List *) list_nth(fsplan->fdw_private,
											 FdwScanPrivateBoundStrategies);

	/* The document is sent as a JSON string: escape it once. */
	s = strVal(list_nth(fsplan->fdw_private, FdwScanPrivateQuery));
	js = json_string(s);
	st->query_json = js ? json_dumps(js, JSON_ENCODE_ANY) : NULL;
	if (js)
		json_decref(js);
	if (st->query_json == NULL)
		elog(ERROR, "could not encode the GraphQL query as JSON");

	/* Bounds first, then the filters' constants, then the hash. */
	filter_attnos = (List *) list_nth(fsplan->fdw_private, FdwScanPrivateFilterAttnos);
	filter_ops = (List *) list_nth(fsplan->fdw_private, FdwScanPrivateFilterOps);
	nbounds = list_length(st->bound_strategies);
	st->nfilters = list_length(filter_attnos);
	st->filter_attidx = palloc0(sizeof(int) * Max(1, st->nfilters));
	st->filter_fn = palloc0(sizeof(FmgrInfo) * Max(1, st->nfilters));
	st->filter_states = palloc0(sizeof(ExprState *) * Max(1, st->nfilters));
	st->filter_values = palloc0(sizeof(Datum) * Max(1, st->nfilters));
	st->filter_nulls = palloc0(sizeof(bool) * Max(1, st->nfilters));
	st->addr_slots = (List *) list_nth(fsplan->fdw_private, FdwScanPrivateAddrSlots);
	st->addr_arrays = (List *) list_nth(fsplan->fdw_private, FdwScanPrivateAddrArrays);
	naddr = list_length(st->addr_slots);
	i = 0;
	foreach(la, fsplan->fdw_exprs)
	{
		ExprState  *es = ExecInitExpr((Expr *) lfirst(la), &node->ss.ps);

		if (i < nbounds)
			st->bound_states = lappend(st->bound_states, es);
		else if (i < nbounds + st->nfilters)
			st->filter_states[i - nbounds] = es;
		else if (i < nbounds + st->nfilters + naddr)
			st->addr_states = lappend(st->addr_states, es);
		else
			st->hash_state = es;
		i++;
	}
	if (st->mode == EW_MODE_ACCOUNT)
		st->selection = s;
	i = 0;
	forboth(la, filter_attnos, lf, filter_ops)
	{
		st->filter_attidx[i] = lfirst_int(la) - 1;
		fmgr_info(get_opcode(lfirst_oid(lf)), &st->filter_fn[i]);
		i++;
	}

	/*
	 * Decoder for the needed columns, those the filters test first, so a
	 * row that fails a filter is dropped before the rest is decoded.
	 */
	desc = RelationGetDescr(st->rel);
	all = EwTableFields(st->opts.table, &nall);
	st->dec.servername = st->server->servername;
	st->dec.relname = RelationGetRelationName(st->rel);
	st->dec.cols = palloc0(sizeof(EwColumn) * Max(1, list_length(attnos)));
	for (pass = 0; pass < 2; pass++)
	{
		forboth(la, attnos, lf, fieldidx)
		{
			int			attno = lfirst_int(la);
			const EwField *f = &all[lfirst_int(lf)];

			if (list_member_int(filter_attnos, attno) != (pass == 0))
				continue;
			EwInitColumn(&st->dec.cols[st->dec.ncols++],
						 TupleDescAttr(desc, attno - 1), f, attno - 1);
			if (f->source == EW_SRC_VALUE_USD || f->source == EW_SRC_AMOUNT_USD)
				need_prices = true;
			if (f->source == EW_SRC_AMOUNT_USD)
				need_tokens = true;
		}
		if (pass == 0)
			st->nfilter_cols = st->dec.ncols;
	}

	st->batch_cxt = AllocSetContextCreate(estate->es_query_cxt,
										  "ethwhale_fdw batch",
										  ALLOCSET_DEFAULT_SIZES);
	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt,
										"ethwhale_fdw row",
										ALLOCSET_DEFAULT_SIZES);
	st->scan_cxt = AllocSetContextCreate(estate->es_query_cxt,
										 "ethwhale_fdw scan",
										 ALLOCSET_SMALL_SIZES);
	if (need_prices && !(eflags & EXEC_FLAG_EXPLAIN_ONLY))
		st->dec.prices = EwLoadPrices(estate->es_query_cxt);
	if (need_tokens && !(eflags & EXEC_FLAG_EXPLAIN_ONLY))
		st->dec.tokens = EwLoadTokens(estate->es_query_cxt);

	/*
	 * Concurrent requests for ascending range scans.  Slots are given back
	 * at the end of the scan, or by the callback when an ERROR ends the
	 * query and the query's memory is deleted.
	 */
	if (st->mode == EW_MODE_RANGE && st->opts.concurrency > 1 &&
		!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
	{
		MemoryContextCallback *cb = palloc0(sizeof(MemoryContextCallback));

		/* splits after time-outs add at most one entry per halving */
		st->pipe_cap = st->opts.concurrency + 64;
		st->pipe = palloc0(sizeof(EwPending) * st->pipe_cap);
		st->free_slots = palloc0(sizeof(EwSlot *) * st->opts.concurrency);
		st->pipe_cxt = AllocSetContextCreate(estate->es_query_cxt,
											 "ethwhale_fdw pipeline",
											 ALLOCSET_SMALL_SIZES);
		cb->func = release_slots_callback;
		cb->arg = st;
		MemoryContextRegisterResetCallback(estate->es_query_cxt, cb);
	}
	st->dec.account_block = -1;
	st->cur_block = -1;
}

/*
 * eval_int64
 *		Evaluate a bound expression; false when it is NULL.
 */
static bool
eval_int64(ExprState *es, ExprContext *econtext, Oid type, int64 *v)
{
	bool		isnull;
	Datum		d = ExecEvalExpr(es, econtext, &isnull);

	if (isnull)
		return false;
	switch (type)
	{
		case INT2OID:
			*v = DatumGetInt16(d);
			break;
		case INT4OID:
			*v = DatumGetInt32(d);
			break;
		default:
			*v = DatumGetInt64(d);
			break;
	}
	return true;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return x < y ? -1 : x > y ? 1 : 0;
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
		v = elemtype == INT2OID ? DatumGetInt16(elems[i]) :
			elemtype == INT4OID ? DatumGetInt32(elems[i]) : DatumGetInt64(elems[i]);
		if (v < lo || v > hi)
			continue;
		if (*set != NULL)
		{
			/* keep only what the earlier set has too */
			if (bsearch(&v, *set, *nset, sizeof(int64), cmp_int64) == NULL)
				continue;
		}
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

static int
cmp_cstring(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
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

	*out = NULL;
	if (isnull)
		return 0;
	if (!is_array)
	{
		char	   *a = TextDatumGetCString(d);

		if (!EwIsAddress(a))
			return 0;
		*out = palloc(sizeof(char *));
		(*out)[0] = a;
		return 1;
	}
	else
	{
		ArrayType  *arr = DatumGetArrayTypeP(d);
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;

		deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
						  &elems, &nulls, &nelems);
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

/* Append a JSON array of strings, each prefixed (topics pad addresses). */
static void
append_json_list(StringInfo buf, char **v, int n, const char *prefix)
{
	int			i;

	appendStringInfoChar(buf, '[');
	for (i = 0; i < n; i++)
		appendStringInfo(buf, "%s\"%s%s\"", i ? "," : "", prefix, v[i] + 2);
	appendStringInfoChar(buf, ']');
}

/*
 * eval_addresses
 *		Evaluate the pushed address values: the variables of logs(filter:)
 *		for token transfers, the address list of an account scan.  False
 *		when some value lets nothing through.
 */
static bool
eval_addresses(EwScanState *st, ExprContext *econtext)
{
	char	  **sets[EW_NUM_ADDR_SLOTS] = {0};
	int			nsets[EW_NUM_ADDR_SLOTS] = {0};
	ListCell   *le,
			   *ls,
			   *la;
	StringInfoData buf;
	int			slot;

	forthree(le, st->addr_states, ls, st->addr_slots, la, st->addr_arrays)
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
	 * Geth answers HTTP 413 to a request body over 5 MiB.  A list longer
	 * than EW_MAX_FILTER_ADDRESSES is not sent: the node then returns every
	 * Transfer of the range for that position, and the clause, which stays
	 * a local filter, picks the rows.
	 */
	st->lists_unsent = 0;
	for (slot = 0; slot < EW_NUM_ADDR_SLOTS; slot++)
	{
		if (nsets[slot] > EW_MAX_FILTER_ADDRESSES)
		{
			sets[slot] = NULL;
			nsets[slot] = 0;
			st->lists_unsent++;
		}
	}

	/* a topic position with an empty list matches anything */
	initStringInfo(&buf);
	appendStringInfoString(&buf, ",\"addresses\":");
	if (sets[EW_ADDR_TOKEN])
		append_json_list(&buf, sets[EW_ADDR_TOKEN], nsets[EW_ADDR_TOKEN], "0x");
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, ",\"topics\":[[\"" EW_TRANSFER_TOPIC "\"]");
	if (sets[EW_ADDR_FROM] || sets[EW_ADDR_TO])
	{
		appendStringInfoChar(&buf, ',');
		append_json_list(&buf, sets[EW_ADDR_FROM], nsets[EW_ADDR_FROM],
						 "0x000000000000000000000000");
	}
	if (sets[EW_ADDR_TO])
	{
		appendStringInfoChar(&buf, ',');
		append_json_list(&buf, sets[EW_ADDR_TO], nsets[EW_ADDR_TO],
						 "0x000000000000000000000000");
	}
	appendStringInfoChar(&buf, ']');
	st->log_vars = buf.data;
	return true;
}

/*
 * start_scan
 *		Evaluate the bounds and turn them into the list of block ranges to
 *		read.  A NULL bound matches nothing.
 */
static void
start_scan(EwScanState *st, ExprContext *econtext)
{
	int64		lo = 0,
				hi = PG_INT64_MAX;
	bool		have_hi = false;
	int64	   *set = NULL;
	int			nset = 0;
	bool		have_set = false;
	bool		empty = false;
	ListCell   *le,
			   *ls;
	MemoryContext oldcxt;
	int			i;

	st->started = true;
	st->exhausted = false;
	st->nranges = 0;
	st->cur_range = 0;
	st->chunk = st->opts.batch_blocks;
	st->chunk_ceiling = st->opts.batch_blocks;

	MemoryContextReset(st->scan_cxt);
	oldcxt = MemoryContextSwitchTo(st->scan_cxt);
	for (i = 0; i < st->nfilters; i++)
	{
		Datum		d = ExecEvalExpr(st->filter_states[i], econtext,
									 &st->filter_nulls[i]);

		st->filter_values[i] = st->filter_nulls[i] ? (Datum) 0 :
			datumCopy(d, false, -1);
	}
	if (st->mode == EW_MODE_HASH)
	{
		MemoryContextSwitchTo(oldcxt);
		return;
	}
	if (!eval_addresses(st, econtext))
	{
		MemoryContextSwitchTo(oldcxt);
		return;					/* nranges is 0: nothing to read */
	}
	st->acct_next = 0;
	st->acct_block = NULL;
	st->head_block = -1;
	st->at_head = st->mode == EW_MODE_ACCOUNT && st->bound_states == NIL;
	if (st->at_head)
	{
		/* one pseudo-range; the block number is learnt from the answer */
		st->ranges = palloc(sizeof(EwRange));
		st->ranges[0].lo = st->ranges[0].hi = 0;
		st->nranges = 1;
		st->next_block = 0;
		MemoryContextSwitchTo(oldcxt);
		return;
	}

	/* Scalar bounds first, so the sets can be clipped by them. */
	forboth(le, st->bound_states, ls, st->bound_strategies)
	{
		ExprState  *es = (ExprState *) lfirst(le);
		int			s = lfirst_int(ls);
		int64		v;

		if (s == EW_STRATEGY_IN)
			continue;
		if (!eval_int64(es, econtext, exprType((Node *) es->expr), &v))
		{
			empty = true;
			continue;
		}
		switch (s)
		{
			case BTLessStrategyNumber:
				if (v <= 0)
					empty = true;
				else
					hi = Min(hi, v - 1);
				have_hi = true;
				break;
			case BTLessEqualStrategyNumber:
				hi = Min(hi, v);
				have_hi = true;
				break;
			case BTEqualStrategyNumber:
				lo = Max(lo, v);
				hi = Min(hi, v);
				have_hi = true;
				break;
			case BTGreaterEqualStrategyNumber:
				lo = Max(lo, v);
				break;
			case BTGreaterStrategyNumber:
				if (v == PG_INT64_MAX)
					empty = true;
				else
					lo = Max(lo, v + 1);
				break;
		}
	}
	forboth(le, st->bound_states, ls, st->bound_strategies)
	{
		ExprState  *es = (ExprState *) lfirst(le);
		bool		isnull;
		Datum		d;

		if (lfirst_int(ls) != EW_STRATEGY_IN)
			continue;
		d = ExecEvalExpr(es, econtext, &isnull);
		if (isnull)
		{
			empty = true;
			continue;
		}
		collect_set(d, lo, hi, have_set ? &set : (set = NULL, &set), &nset);
		have_set = true;
	}
	if (hi < 0 || lo > hi)
		empty = true;

	if (!empty && (st->mode == EW_MODE_BACKWARD || !have_hi) && !have_set)
	{
		int64		head = fetch_head(st);

		if (head < 0)
			empty = true;
		hi = Min(hi, head);
		if (lo > hi)
			empty = true;
	}

	if (empty)
		st->nranges = 0;
	else if (have_set)
	{
		int			i;

		/* consecutive blocks become one range */
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
	else
	{
		st->ranges = palloc(sizeof(EwRange));
		st->ranges[0].lo = lo;
		st->ranges[0].hi = hi;
		st->nranges = 1;
	}
	if (st->nranges > 0)
		st->next_block = st->mode == EW_MODE_BACKWARD ?
			st->ranges[0].hi : st->ranges[0].lo;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * backoff
 *		Wait before a retry, interruptibly: Retry-After when the node gave
 *		one (at most 30 s), else 200 ms doubling per attempt up to 5 s.
 */
static void
backoff(int attempt, long retry_after_s)
{
	long		ms;

	if (retry_after_s >= 0)
		ms = Min(retry_after_s, 30) * 1000L;
	else
		ms = Min(5000L, 200L << Min(attempt - 1, 5));
	while (ms > 0)
	{
		long		step = Min(ms, 100L);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 step, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		ms -= step;
	}
}

/*
 * body_excerpt
 *		The start of an answer body as printable text, for error details.
 */
static char *
body_excerpt(const EwResponse *resp)
{
	size_t		n = Min(resp->body_len, 200);
	char	   *s = palloc(n + 4);
	size_t		i;

	for (i = 0; i < n; i++)
	{
		unsigned char c = (unsigned char) resp->body[i];

		s[i] = (c >= 0x20 && c < 0x7f) ? (char) c : ' ';
	}
	while (n > 0 && s[n - 1] == ' ')
		n--;
	if (resp->body_len > Min(resp->body_len, 200))
	{
		memcpy(s + n, "...", 3);
		n += 3;
	}
	s[n] = '\0';
	return s;
}

/*
 * graphql_error_message
 *		The message of the first element of an "errors" array.
 */
static const char *
graphql_error_message(json_t *errors)
{
	json_t	   *first = json_array_get(errors, 0);
	json_t	   *msg = first ? json_object_get(first, "message") : NULL;

	return json_is_string(msg) ? json_string_value(msg) : "(no message)";
}

/*
 * printable_message
 *		A node's message made fit for an error report: at most
 *		EW_MAX_NODE_MESSAGE bytes (cut at a character boundary, with "..."),
 *		control characters as spaces, and non-ASCII as '?' unless the
 *		database encoding is UTF-8 (jansson hands out UTF-8 only).
 */
#define EW_MAX_NODE_MESSAGE 500

static char *
printable_message(const char *msg)
{
	bool		utf8 = GetDatabaseEncoding() == PG_UTF8;
	int			len = strlen(msg);
	int			keep = len;
	char	   *out;
	int			i;

	if (len > EW_MAX_NODE_MESSAGE)
		keep = utf8 ? pg_encoding_mbcliplen(PG_UTF8, msg, len, EW_MAX_NODE_MESSAGE) :
			EW_MAX_NODE_MESSAGE;
	out = palloc(keep + 4);
	for (i = 0; i < keep; i++)
	{
		unsigned char c = (unsigned char) msg[i];

		if (c < 0x20 || c == 0x7f)
			out[i] = ' ';
		else if (c >= 0x80 && !utf8)
			out[i] = '?';
		else
			out[i] = (char) c;
	}
	if (keep < len)
	{
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

/*
 * classify_response
 *		Decide what one answer means.  On success returns EW_OK and sets
 *		*data; otherwise fills reason (errmsg tail) and detail.
 */
static EwFailure
classify_response(EwScanState *st, const EwResponse *resp, json_t **data,
				  StringInfo reason, StringInfo detail)
{
	json_t	   *root;
	json_t	   *errors;
	json_error_t jerr;

	*data = NULL;
	if (resp->too_large)
	{
		appendStringInfo(reason, "the answer exceeds max_response_mb (%d MB)",
						 st->opts.max_response_mb);
		return EW_FAIL_SHRINK;
	}
	if (resp->curl_code != CURLE_OK)
	{
		switch (resp->curl_code)
		{
			case CURLE_OPERATION_TIMEDOUT:
				appendStringInfo(reason, "the request timed out after %d ms (timeout_ms)",
								 st->opts.timeout_ms);
				appendStringInfo(detail, "%s.", resp->errbuf);
				return EW_FAIL_SHRINK;
			case CURLE_COULDNT_CONNECT:
			case CURLE_COULDNT_RESOLVE_HOST:
				appendStringInfoString(reason, "could not connect");
				break;
			case CURLE_ABORTED_BY_CALLBACK:
				/* an interrupt that could not be serviced yet: no retry */
				appendStringInfoString(reason, "the request was interrupted");
				return EW_FAIL_FATAL;
			case CURLE_UNSUPPORTED_PROTOCOL:
			case CURLE_URL_MALFORMAT:
			case CURLE_PEER_FAILED_VERIFICATION:
			case CURLE_SSL_CERTPROBLEM:
			case CURLE_SSL_CACERT_BADFILE:
			case CURLE_LOGIN_DENIED:
				/* retrying cannot help */
				appendStringInfoString(reason, EwCurlStrerror(resp->curl_code));
				appendStringInfo(detail, "%s.", resp->errbuf[0] ? resp->errbuf :
								 EwCurlStrerror(resp->curl_code));
				return EW_FAIL_FATAL;
			case CURLE_GOT_NOTHING:
				appendStringInfoString(reason, "empty reply (the connection was closed)");
				break;
			case CURLE_PARTIAL_FILE:
				appendStringInfoString(reason, "truncated answer (the connection closed early)");
				break;
			case CURLE_RECV_ERROR:
				appendStringInfoString(reason, "could not receive the answer (connection reset)");
				break;
			default:
				appendStringInfoString(reason, EwCurlStrerror(resp->curl_code));
				break;
		}
		appendStringInfo(detail, "%s.", resp->errbuf[0] ? resp->errbuf :
						 EwCurlStrerror(resp->curl_code));
		return EW_FAIL_TRANSIENT;
	}
	if (resp->http_status == 429 || resp->http_status >= 500)
	{
		appendStringInfo(reason, "HTTP %ld", resp->http_status);
		appendStringInfo(detail, "Answer: \"%s\"", body_excerpt(resp));
		return EW_FAIL_TRANSIENT;
	}

	root = EwParseJson(st->batch_cxt, resp->body, resp->body_len, &jerr);
	if (root == NULL || !json_is_object(root))
	{
		if (resp->http_status != 200)
		{
			appendStringInfo(reason, "HTTP %ld", resp->http_status);
			appendStringInfo(detail, "Answer: \"%s\"", body_excerpt(resp));
		}
		else
		{
			appendStringInfoString(reason, "malformed JSON in the answer");
			if (root == NULL)
				appendStringInfo(detail, "%s at byte %d of %zu%s.", jerr.text,
								 jerr.position, resp->body_len,
								 jerr.position >= (int) resp->body_len ?
								 " (the answer is truncated)" : "");
			else
				appendStringInfoString(detail, "The answer is not a JSON object.");
		}
		return EW_FAIL_FATAL;
	}
	errors = json_object_get(root, "errors");
	if (errors != NULL && !json_is_null(errors) && !json_is_array(errors))
	{
		/* the GraphQL specification makes "errors" a list */
		appendStringInfoString(reason, "the answer's \"errors\" is not a list");
		appendStringInfo(detail, "\"errors\": %s.", EwJsonExcerpt(errors));
		return EW_FAIL_FATAL;
	}
	if (json_is_array(errors) && json_array_size(errors) > 0)
	{
		const char *msg = printable_message(graphql_error_message(errors));

		if (strcmp(msg, "request timed out") == 0)
		{
			appendStringInfoString(reason, "the node reported \"request timed out\"");
			appendStringInfoString(detail, "Geth stops a GraphQL request at its HTTP write timeout.");
			return EW_FAIL_SHRINK;
		}
		appendStringInfo(reason, "GraphQL error: %s", msg);
		if (json_array_size(errors) > 1)
			appendStringInfo(detail, "%zu errors; the first is shown.",
							 json_array_size(errors));
		return EW_FAIL_FATAL;
	}
	if (resp->http_status != 200)
	{
		appendStringInfo(reason, "HTTP %ld", resp->http_status);
		appendStringInfo(detail, "Answer: \"%s\"", body_excerpt(resp));
		return EW_FAIL_FATAL;
	}
	*data = json_object_get(root, "data");
	if (!json_is_object(*data))
	{
		appendStringInfoString(reason, "the answer has no \"data\" object");
		appendStringInfo(detail, "Answer: \"%s\"", body_excerpt(resp));
		return EW_FAIL_FATAL;
	}
	return EW_OK;
}

/*
 * redact_one
 *		Replace every occurrence of secret in buf by "[redacted]".
 */
static void
redact_one(StringInfo buf, const char *secret, size_t n)
{
	StringInfoData out;
	const char *p = buf->data;
	const char *hit;

	/* short values would blank out ordinary text, and cannot be secrets */
	if (n < 4)
		return;
	if (strstr(p, secret) == NULL)
		return;
	initStringInfo(&out);
	while ((hit = strstr(p, secret)) != NULL)
	{
		appendBinaryStringInfo(&out, p, hit - p);
		appendStringInfoString(&out, "[redacted]");
		p = hit + n;
	}
	appendStringInfoString(&out, p);
	resetStringInfo(buf);
	appendBinaryStringInfo(buf, out.data, out.len);
	pfree(out.data);
}

/*
 * redact_secrets
 *		A node may echo the request's headers in its answer, which the error
 *		quotes: blank out the user mapping's bearer token and header values.
 */
static void
redact_secrets(EwScanState *st, StringInfo buf)
{
	if (st->opts.bearer_token)
		redact_one(buf, st->opts.bearer_token, strlen(st->opts.bearer_token));
	if (st->opts.headers)
	{
		char	   *copy = pstrdup(st->opts.headers);
		char	   *save = NULL;
		char	   *line;

		for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		{
			char	   *v = strchr(line, ':');
			size_t		n;

			if (v == NULL)
				continue;
			v++;
			while (*v == ' ' || *v == '\t')
				v++;
			n = strlen(v);
			while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\r'))
				n--;
			v[n] = '\0';
			redact_one(buf, v, n);
		}
		pfree(copy);
	}
}

/*
 * raise_failure
 *		Report a request that failed for good.
 */
static void
raise_failure(EwScanState *st, EwFailure f, const char *what,
			  StringInfo reason, StringInfo detail, int attempt)
{
	redact_secrets(st, reason);
	redact_secrets(st, detail);
	if (attempt > 0)
		appendStringInfo(detail, "%sTried %d times (max_retries = %d).",
						 detail->len > 0 ? " " : "", attempt + 1,
						 st->opts.max_retries);
	ereport(ERROR,
			(errcode(f == EW_FAIL_FATAL ? ERRCODE_FDW_INVALID_DATA_TYPE :
					 ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
			 errmsg("could not read %s from server \"%s\": %s",
					what, st->server->servername, reason->data),
			 detail->len > 0 ? errdetail_internal("%s", detail->data) : 0,
			 f == EW_FAIL_SHRINK ?
			 errhint("Lower batch_blocks, or raise timeout_ms or max_response_mb, with ALTER SERVER %s OPTIONS (SET ...).",
					 quote_identifier(st->server->servername)) :
			 f == EW_FAIL_TRANSIENT ?
			 errhint("Check that the node is running and that endpoint is its /graphql URL; max_retries sets how often a request is retried.") :
			 errhint("Check that endpoint points at a GraphQL (EIP-1767) node such as geth --http --graphql.")));
}

/*
 * request_data
 *		POST body and return the answer's "data" object, retrying transient
 *		failures up to max_retries (shared with the caller through *attempt).
 *		When can_shrink and the failure is a time-out or an oversize answer,
 *		returns NULL with *shrink set so the caller asks for fewer blocks.
 *		Any other failure is raised as an ERROR naming the server and what.
 */
static json_t *
request_data(EwScanState *st, const char *body, const char *what,
			 bool can_shrink, int *attempt, bool *shrink)
{
	*shrink = false;
	for (;;)
	{
		EwResponse	resp;
		EwFailure	f;
		json_t	   *data;
		StringInfoData reason,
					detail;

		CHECK_FOR_INTERRUPTS();
		if (st->conn == NULL)
			st->conn = EwGetConnection(st->server, &st->opts);
		EwPost(st->conn, body, strlen(body), &st->opts, &resp);
		st->stats.requests++;
		st->stats.bytes += resp.body_len;
		st->last_body_len = resp.body_len;

		initStringInfo(&reason);
		initStringInfo(&detail);
		f = classify_response(st, &resp, &data, &reason, &detail);
		if (f == EW_OK)
			return data;

		/*
		 * Asking for fewer blocks is not a retry of the same request: it
		 * uses none of max_retries and needs no back-off.
		 */
		if (f == EW_FAIL_SHRINK && can_shrink)
		{
			elog(DEBUG1, "ethwhale_fdw: %s from server \"%s\" for %s; asking for fewer blocks",
				 reason.data, st->server->servername, what);
			*shrink = true;
			return NULL;
		}
		if (f != EW_FAIL_FATAL && *attempt < st->opts.max_retries)
		{
			(*attempt)++;
			st->stats.retries++;
			elog(DEBUG1, "ethwhale_fdw: %s from server \"%s\" for %s; retry %d of %d",
				 reason.data, st->server->servername, what, *attempt,
				 st->opts.max_retries);
			backoff(*attempt, resp.retry_after_s);
			continue;
		}
		raise_failure(st, f, what, &reason, &detail, *attempt);
	}
}

/*
 * fetch_head
 *		The node's newest block number.
 */
static int64
fetch_head(EwScanState *st)
{
	static const char body[] = "{\"query\":\"{ block { number } }\"}";
	int			attempt = 0;
	bool		shrink;
	json_t	   *data;
	json_t	   *block;
	uint64		v;
	MemoryContext oldcxt = MemoryContextSwitchTo(st->batch_cxt);

	data = request_data(st, body, "the head block", false, &attempt, &shrink);
	block = json_object_get(data, "block");
	if (!json_is_object(block) ||
		!EwJsonGetUint64(json_object_get(block, "number"), &v) ||
		v > (uint64) PG_INT64_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("could not read the head block number from server \"%s\"",
						st->server->servername),
				 errdetail("Answer: %s", EwJsonExcerpt(data))));
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(st->batch_cxt);
	return (int64) v;
}

/*
 * fetch_hash
 *		Hash mode: the one transaction, or nothing.
 */
static void
fetch_hash(EwScanState *st, ExprContext *econtext)
{
	bool		isnull;
	Datum		d = ExecEvalExpr(st->hash_state, econtext, &isnull);
	char	   *hash;
	char	   *body;
	char	   *what;
	json_t	   *data;
	json_t	   *tx;
	int			attempt = 0;
	bool		shrink;
	MemoryContext oldcxt;

	st->exhausted = true;
	if (isnull)
		return;
	hash = TextDatumGetCString(d);
	/* Hashes are stored lowercase: anything else cannot be equal. */
	if (strlen(hash) != 66 || hash[0] != '0' || hash[1] != 'x' ||
		strspn(hash + 2, "0123456789abcdef") != 64)
		return;

	oldcxt = MemoryContextSwitchTo(st->batch_cxt);
	body = psprintf("{\"query\":%s,\"variables\":{\"hash\":\"%s\"}}",
					st->query_json, hash);
	what = psprintf("transaction %s", hash);
	data = request_data(st, body, what, false, &attempt, &shrink);
	MemoryContextSwitchTo(oldcxt);
	tx = json_object_get(data, "transaction");
	if (!json_is_object(tx))
		return;					/* unknown hash */
	if (!json_is_object(json_object_get(tx, "block")))
		return;					/* pending: not in a block yet */
	st->hash_tx = tx;
}

/*
 * adapt_chunk
 *		Size the next requests after an answer of nblocks full blocks and
 *		bytes bytes: aim at the target answer size, at most doubling or
 *		halving at once, never above the size that last timed out.
 */
static void
adapt_chunk(EwScanState *st, int64 nblocks, size_t bytes)
{
	double		target = Min((double) EW_TARGET_RESPONSE_BYTES,
							 (double) st->opts.max_response_mb * 1024 * 1024 / 4);
	double		per_block = Max(1.0, (double) bytes / (double) Max(nblocks, 1));
	double		want = target / per_block;

	want = Max(want, st->chunk / 2.0);
	want = Min(want, st->chunk * 2.0);
	want = Min(want, (double) st->chunk_ceiling);
	st->chunk = (int) Max(1.0, want);
}

/*
 * chunk_body
 *		The request body for blocks from..to.  Block numbers are decimal
 *		strings: JSON numbers would pass through a float64.
 */
static char *
chunk_body(EwScanState *st, int64 from, int64 to)
{
	return psprintf("{\"query\":%s,\"variables\":{\"from\":\"" INT64_FORMAT "\",\"to\":\"" INT64_FORMAT "\"%s}}",
					st->query_json, from, to, st->log_vars ? st->log_vars : "");
}

/*
 * take_blocks
 *		Check that an answer holds the blocks from..to asked for, in order
 *		(fewer at the head), and make them the current chunk.
 */
static void
take_blocks(EwScanState *st, json_t *data, int64 from, int64 to, const char *what)
{
	json_t	   *blocks = json_object_get(data, "blocks");
	size_t		i;

	if (!json_is_array(blocks))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("could not read %s from server \"%s\": the answer has no \"blocks\" list",
						what, st->server->servername),
				 errdetail("Answer: %s", EwJsonExcerpt(data))));
	for (i = 0; i < json_array_size(blocks); i++)
	{
		json_t	   *b = json_array_get(blocks, i);
		uint64		n;

		if (!json_is_object(b) ||
			!EwJsonGetUint64(json_object_get(b, "number"), &n) ||
			(int64) n < from || (int64) n > to ||
			(i > 0 && (int64) n != st->cur_block + 1))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("server \"%s\" answered a block outside %s",
							st->server->servername, what),
					 errdetail("Element %zu of \"blocks\" is %s.", i, EwJsonExcerpt(b)),
					 errhint("The node may not follow EIP-1767 as Geth serves it.")));
		st->cur_block = (int64) n;
	}
	st->blocks = blocks;
	st->backward = st->mode == EW_MODE_BACKWARD;
	st->block_idx = 0;
	st->blocks_read += json_array_size(blocks);
}

/*
 * fetch_next_chunk
 *		Request the next chunk of blocks; false when the ranges are done.
 *		A time-out or oversize answer halves the chunk and asks again.
 */
static bool
fetch_next_chunk(EwScanState *st)
{
	int			attempt = 0;

	MemoryContextReset(st->batch_cxt);
	st->blocks = NULL;
	st->txs = NULL;

	while (st->cur_range < st->nranges)
	{
		EwRange    *r = &st->ranges[st->cur_range];
		int64		from,
					to;
		char	   *body;
		char	   *what;
		json_t	   *data;
		size_t		n;
		bool		shrink;
		MemoryContext oldcxt;

		if (st->mode == EW_MODE_BACKWARD)
		{
			if (st->next_block < r->lo)
			{
				st->cur_range++;
				continue;
			}
			to = st->next_block;
			from = Max(r->lo, to - st->chunk + 1);
		}
		else
		{
			from = st->next_block;
			/* written so that nothing overflows near PG_INT64_MAX */
			to = (r->hi - from >= st->chunk - 1) ? from + st->chunk - 1 : r->hi;
		}

		oldcxt = MemoryContextSwitchTo(st->batch_cxt);
		body = chunk_body(st, from, to);
		what = psprintf("blocks " INT64_FORMAT ".." INT64_FORMAT, from, to);
		data = request_data(st, body, what, to > from, &attempt, &shrink);
		MemoryContextSwitchTo(oldcxt);
		if (shrink)
		{
			st->chunk = Max(1, (int) ((to - from + 1) / 2));
			st->chunk_ceiling = st->chunk;
			MemoryContextReset(st->batch_cxt);
			continue;
		}
		attempt = 0;

		take_blocks(st, data, from, to, what);
		n = json_array_size(st->blocks);
		if ((int64) n == to - from + 1)
			adapt_chunk(st, to - from + 1, st->last_body_len);

		/*
		 * Move on.  A range beyond the head comes back short (Geth cuts "to"
		 * at the head): nothing more to read in this range then.
		 */
		if (st->mode == EW_MODE_BACKWARD)
			st->next_block = from - 1;
		else if (to == r->hi || n == 0 || st->cur_block < to)
		{
			if (++st->cur_range < st->nranges)
				st->next_block = st->ranges[st->cur_range].lo;
		}
		else
			st->next_block = to + 1;

		if (n > 0)
			return true;
	}
	st->exhausted = true;
	return false;
}

/* ---------------------------------------------------------------------
 * Concurrent range scans (concurrency > 1)
 *
 * Up to "concurrency" chunk requests are in flight, each on a slot of its
 * own; answers are taken strictly in block order, so the rows come out as a
 * sequential scan returns them.  Memory is bounded by concurrency answers
 * held as text plus the one chunk being decoded.
 * ---------------------------------------------------------------------
 */

/*
 * release_slots
 *		Give back every slot the scan holds, stopping their transfers.
 *		Runs at the end of a scan, at a rescan, and from a reset callback of
 *		the query's memory when an ERROR ends the query: it must not fail.
 */
static void
release_slots(EwScanState *st)
{
	int			i;

	for (i = 0; i < st->npipe; i++)
		if (st->pipe[i].slot != NULL)
		{
			EwReleaseSlot(st->conn, st->pipe[i].slot);
			st->pipe[i].slot = NULL;
		}
	for (i = 0; i < st->nfree; i++)
		EwReleaseSlot(st->conn, st->free_slots[i]);
	st->npipe = 0;
	st->nfree = 0;
	st->nheld = 0;
}

static void
release_slots_callback(void *arg)
{
	release_slots((EwScanState *) arg);
}

/* Start the pending request at index i on a free slot. */
static void
start_pending(EwScanState *st, int i)
{
	EwPending  *p = &st->pipe[i];

	if (p->slot == NULL)
	{
		if (st->nfree == 0)
		{
			if (st->conn == NULL)
				st->conn = EwGetConnection(st->server, &st->opts);
			st->free_slots[st->nfree++] = EwAcquireSlot(st->conn, st->server->servername);
			st->nheld++;
		}
		p->slot = st->free_slots[--st->nfree];
	}
	EwStartPost(st->conn, p->slot, p->body, strlen(p->body), &st->opts);
	st->stats.requests++;
}

/* Return the slot of pending request i to the scan's free list. */
static void
finish_pending(EwScanState *st, int i)
{
	EwPending  *p = &st->pipe[i];

	if (p->slot != NULL)
		st->free_slots[st->nfree++] = p->slot;
	p->slot = NULL;
	if (p->body)
		pfree(p->body);
	p->body = NULL;
}

/*
 * top_up
 *		Queue the next chunks until "concurrency" are pending, and start
 *		every pending request that has a free slot.
 */
static void
top_up(EwScanState *st)
{
	int			i;
	int			running = 0;

	while (st->npipe < st->opts.concurrency && st->cur_range < st->nranges)
	{
		EwRange    *r = &st->ranges[st->cur_range];
		EwPending  *p = &st->pipe[st->npipe++];
		int64		from = st->next_block;
		int64		to = (r->hi - from >= st->chunk - 1) ? from + st->chunk - 1 : r->hi;

		p->from = from;
		p->to = to;
		p->range = st->cur_range;
		{
			MemoryContext old = MemoryContextSwitchTo(st->pipe_cxt);

			p->body = chunk_body(st, from, to);
			MemoryContextSwitchTo(old);
		}
		p->slot = NULL;
		p->attempt = 0;
		if (to == r->hi)
		{
			if (++st->cur_range < st->nranges)
				st->next_block = st->ranges[st->cur_range].lo;
		}
		else
			st->next_block = to + 1;
	}
	for (i = 0; i < st->npipe; i++)
	{
		if (st->pipe[i].slot != NULL)
			running++;
		else if (running < st->opts.concurrency)
		{
			start_pending(st, i);
			running++;
		}
	}
}

/* Drop pending request i from the pipeline. */
static void
drop_pending(EwScanState *st, int i)
{
	finish_pending(st, i);
	memmove(&st->pipe[i], &st->pipe[i + 1], sizeof(EwPending) * (st->npipe - i - 1));
	st->npipe--;
}

/*
 * fetch_next_chunk_concurrent
 *		fetch_next_chunk with requests in flight ahead of the one decoded.
 */
static bool
fetch_next_chunk_concurrent(EwScanState *st)
{
	MemoryContextReset(st->batch_cxt);
	st->blocks = NULL;
	st->txs = NULL;

	for (;;)
	{
		EwPending  *p;
		EwResponse	resp;
		EwFailure	f;
		json_t	   *data;
		StringInfoData reason,
					detail;
		char	   *what;
		MemoryContext oldcxt;
		size_t		n;

		CHECK_FOR_INTERRUPTS();
		top_up(st);
		if (st->npipe == 0)
		{
			st->exhausted = true;
			return false;
		}
		p = &st->pipe[0];
		EwWaitPost(st->conn, p->slot, &resp);
		st->stats.bytes += resp.body_len;

		oldcxt = MemoryContextSwitchTo(st->batch_cxt);
		what = psprintf("blocks " INT64_FORMAT ".." INT64_FORMAT, p->from, p->to);
		initStringInfo(&reason);
		initStringInfo(&detail);
		f = classify_response(st, &resp, &data, &reason, &detail);
		MemoryContextSwitchTo(oldcxt);

		if (f == EW_FAIL_SHRINK && p->to > p->from)
		{
			/* split the chunk: its first half now, the second after it */
			int64		mid = p->from + (p->to - p->from) / 2;
			int64		old_to = p->to;
			int			k;

			st->chunk = Max(1, (int) (mid - p->from + 1));
			st->chunk_ceiling = st->chunk;
			if (st->npipe >= st->pipe_cap)
				elog(ERROR, "ethwhale_fdw: too many chunk requests pending");
			memmove(&st->pipe[2], &st->pipe[1], sizeof(EwPending) * (st->npipe - 1));
			st->npipe++;
			k = 1;
			st->pipe[k] = st->pipe[0];
			st->pipe[k].from = mid + 1;
			st->pipe[k].to = old_to;
			st->pipe[k].slot = NULL;
			st->pipe[k].attempt = 0;
			oldcxt = MemoryContextSwitchTo(st->pipe_cxt);
			st->pipe[k].body = chunk_body(st, mid + 1, old_to);
			pfree(p->body);
			p->to = mid;
			p->body = chunk_body(st, p->from, mid);
			MemoryContextSwitchTo(oldcxt);
			MemoryContextReset(st->batch_cxt);
			start_pending(st, 0);
			continue;
		}
		if (f != EW_OK)
		{
			if (f != EW_FAIL_FATAL && p->attempt < st->opts.max_retries)
			{
				p->attempt++;
				st->stats.retries++;
				elog(DEBUG1, "ethwhale_fdw: %s from server \"%s\" for %s; retry %d of %d",
					 reason.data, st->server->servername, what, p->attempt,
					 st->opts.max_retries);
				backoff(p->attempt, resp.retry_after_s);
				MemoryContextReset(st->batch_cxt);
				start_pending(st, 0);
				continue;
			}
			raise_failure(st, f, what, &reason, &detail, p->attempt);
		}

		take_blocks(st, data, p->from, p->to, what);
		n = json_array_size(st->blocks);
		if ((int64) n == p->to - p->from + 1)
			adapt_chunk(st, (int64) n, resp.body_len);
		else
		{
			/* the head is reached: later chunks of this range are empty */
			int			range = p->range;
			int			i;

			for (i = st->npipe - 1; i >= 1; i--)
				if (st->pipe[i].range == range)
					drop_pending(st, i);
			if (st->cur_range == range && ++st->cur_range < st->nranges)
				st->next_block = st->ranges[st->cur_range].lo;
		}
		drop_pending(st, 0);
		/* keep the node busy while this chunk is decoded */
		top_up(st);
		if (n > 0)
			return true;
	}
}

/*
 * fetch_account_batch
 *		Account mode: ask for the next EW_ACCOUNTS_PER_REQUEST addresses at
 *		the current block, each under an alias a0, a1, ….  False when every
 *		address has been read at every block.
 */
static bool
fetch_account_batch(EwScanState *st)
{
	int			attempt = 0;

	MemoryContextReset(st->batch_cxt);
	st->acct_block = NULL;
	while (st->cur_range < st->nranges)
	{
		EwRange    *r = &st->ranges[st->cur_range];
		StringInfoData q;
		json_t	   *qjs;
		char	   *qtext;
		char	   *body;
		char	   *what;
		char		blockvar[32];
		json_t	   *data;
		json_t	   *blk;
		uint64		number;
		bool		shrink;
		int			n,
					i;
		MemoryContext oldcxt;

		if (st->acct_next >= st->naccounts)
		{
			/* every address read at this block: on to the next one */
			st->acct_next = 0;
			if (st->at_head || st->next_block >= r->hi)
			{
				if (++st->cur_range < st->nranges)
					st->next_block = st->ranges[st->cur_range].lo;
			}
			else
				st->next_block++;
			continue;
		}
		n = Min(EW_ACCOUNTS_PER_REQUEST, st->naccounts - st->acct_next);

		oldcxt = MemoryContextSwitchTo(st->batch_cxt);
		initStringInfo(&q);
		appendStringInfoString(&q, "query($block: Long) { block(number: $block) { number");
		for (i = 0; i < n; i++)
			appendStringInfo(&q, " a%d: account(address: \"%s\") %s", i,
							 st->accounts[st->acct_next + i], st->selection);
		appendStringInfoString(&q, " } }");
		qjs = json_string(q.data);
		qtext = qjs ? json_dumps(qjs, JSON_ENCODE_ANY) : NULL;
		if (qtext == NULL)
			elog(ERROR, "could not encode the GraphQL query as JSON");
		/* the head's number once known, so that all batches agree */
		if (st->at_head && st->head_block < 0)
			strlcpy(blockvar, "null", sizeof(blockvar));
		else
			snprintf(blockvar, sizeof(blockvar), "\"" INT64_FORMAT "\"",
					 st->at_head ? st->head_block : st->next_block);
		/* jansson allocates with palloc: qtext goes with batch_cxt */
		body = psprintf("{\"query\":%s,\"variables\":{\"block\":%s}}", qtext, blockvar);
		json_decref(qjs);
		what = st->at_head && st->head_block < 0 ?
			psprintf("%d accounts at the head block", n) :
			psprintf("%d accounts at block " INT64_FORMAT, n,
					 st->at_head ? st->head_block : st->next_block);
		data = request_data(st, body, what, false, &attempt, &shrink);
		MemoryContextSwitchTo(oldcxt);
		attempt = 0;

		blk = json_object_get(data, "block");
		if (json_is_null(blk) || blk == NULL)
		{
			/* beyond the head: like a block range, the scan ends there */
			st->cur_range = st->nranges;
			break;
		}
		if (!json_is_object(blk) ||
			!EwJsonGetUint64(json_object_get(blk, "number"), &number) ||
			number > (uint64) PG_INT64_MAX ||
			(!st->at_head && (int64) number != st->next_block) ||
			(st->at_head && st->head_block >= 0 && (int64) number != st->head_block))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("server \"%s\" answered another block for %s",
							st->server->servername, what),
					 errdetail("Answer: %s", EwJsonExcerpt(blk))));
		if (st->at_head && st->head_block < 0)
			st->head_block = (int64) number;
		st->cur_block = (int64) number;
		st->dec.account_block = st->at_head ? -1 : (int64) number;
		st->acct_block = blk;
		st->acct_n = n;
		st->acct_idx = 0;
		st->acct_next += n;
		st->blocks_read++;
		return true;
	}
	st->exhausted = true;
	return false;
}

/*
 * current_block_obj
 *		The block object at block_idx, in scan order.
 */
static json_t *
current_block_obj(EwScanState *st)
{
	size_t		n = json_array_size(st->blocks);

	return json_array_get(st->blocks, st->backward ? n - 1 - st->block_idx : st->block_idx);
}

/*
 * next_row
 *		Position on the next (block, transaction) pair; false at the end of
 *		the scan.  *blk and *tx are set (tx NULL for eth_block and counts).
 */
static bool
next_row(EwScanState *st, ExprContext *econtext, json_t **blk, json_t **tx)
{
	if (st->mode == EW_MODE_HASH)
	{
		if (!st->started)
		{
			start_scan(st, econtext);
			fetch_hash(st, econtext);
			if (st->hash_tx == NULL)
				return false;
			*tx = st->hash_tx;
			*blk = json_object_get(st->hash_tx, "block");
			st->hash_tx = NULL;
			return true;
		}
		return false;
	}

	if (!st->started)
		start_scan(st, econtext);

	if (st->mode == EW_MODE_ACCOUNT)
	{
		for (;;)
		{
			if (st->acct_block != NULL && st->acct_idx < st->acct_n)
			{
				char		alias[16];
				json_t	   *a;

				snprintf(alias, sizeof(alias), "a%d", st->acct_idx++);
				a = json_object_get(st->acct_block, alias);
				if (!json_is_object(a))
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
							 errmsg("the answer of server \"%s\" has no account \"%s\" in block " INT64_FORMAT,
									st->server->servername, alias, st->cur_block),
							 errdetail("Got %s.", EwJsonExcerpt(a))));
				*blk = st->acct_block;
				*tx = a;
				return true;
			}
			if (st->exhausted || !fetch_account_batch(st))
				return false;
		}
	}

	for (;;)
	{
		json_t	   *b;

		if (st->blocks == NULL || st->block_idx >= json_array_size(st->blocks))
		{
			if (st->exhausted ||
				!(st->pipe != NULL ? fetch_next_chunk_concurrent(st) : fetch_next_chunk(st)))
				return false;
			st->txs = NULL;
			st->count_left = -1;
		}
		b = current_block_obj(st);
		*blk = b;
		/* first visit of this block (its number was checked when fetched) */
		if (st->opts.table == EW_TABLE_BLOCK || (st->txs == NULL && st->count_left < 0))
		{
			uint64		n;

			if (EwJsonGetUint64(json_object_get(b, "number"), &n))
				st->cur_block = (int64) n;
		}

		if (st->opts.table == EW_TABLE_BLOCK)
		{
			st->block_idx++;
			*tx = NULL;
			return true;
		}

		if (st->count_only)
		{
			if (st->count_left < 0)
			{
				uint64		c;
				json_t	   *jc = json_object_get(b, "transactionCount");

				/*
				 * A count beyond int32 is no real block: as int64 it would
				 * turn negative (rows silently dropped) or count for ages.
				 */
				if (!EwJsonGetUint64(jc, &c) || c > (uint64) PG_INT32_MAX)
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
							 errmsg("unexpected value for field \"transactionCount\" in the answer of server \"%s\"",
									st->server->servername),
							 errdetail("Expected a hex number, got %s.", EwJsonExcerpt(jc))));
				st->count_left = (int64) c;
			}
			if (st->count_left > 0)
			{
				st->count_left--;
				*tx = NULL;
				return true;
			}
		}
		else
		{
			bool		logs = st->opts.table == EW_TABLE_TOKEN_TRANSFER;
			const char *key = logs ? "logs" : "transactions";

			if (st->txs == NULL)
			{
				st->txs = json_object_get(b, key);
				st->tx_idx = 0;
				if (!json_is_array(st->txs))
					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
							 errmsg("block " INT64_FORMAT " in the answer of server \"%s\" has no \"%s\" list",
									st->cur_block, st->server->servername, key)));
			}
			while (st->tx_idx < json_array_size(st->txs))
			{
				*tx = json_array_get(st->txs, st->tx_idx++);
				if (logs && !EwIsErc20Transfer(*tx))
				{
					st->stats.logs_skipped++;
					continue;
				}
				return true;
			}
		}
		/* this block is done */
		st->block_idx++;
		st->txs = NULL;
		st->count_left = -1;
	}
}

/*
 * passes_filters
 *		Test the wrapper's filters on the decoded filter columns.  The
 *		operators are strict, so a NULL on either side fails, as in SQL.
 */
static bool
passes_filters(EwScanState *st, Datum *values, bool *nulls)
{
	int			i;

	for (i = 0; i < st->nfilters; i++)
	{
		int			a = st->filter_attidx[i];

		if (nulls[a] || st->filter_nulls[i])
			return false;
		if (!DatumGetBool(FunctionCall2Coll(&st->filter_fn[i], InvalidOid,
											values[a], st->filter_values[i])))
			return false;
	}
	return true;
}

/*
 * ethwhaleIterateForeignScan
 *		Return the next row, fetching a new chunk when the current one is
 *		used up.
 */
static TupleTableSlot *
ethwhaleIterateForeignScan(ForeignScanState *node)
{
	EwScanState *st = (EwScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	ErrorContextCallback errcb;
	json_t	   *blk = NULL;
	json_t	   *tx = NULL;
	MemoryContext oldcxt;
	int			natts = slot->tts_tupleDescriptor->natts;

	ExecClearTuple(slot);
	MemoryContextReset(st->row_cxt);

	errcb.callback = decode_error_callback;
	errcb.arg = st;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	for (;;)
	{
		if (!next_row(st, econtext, &blk, &tx))
		{
			error_context_stack = errcb.previous;
			return slot;
		}

		oldcxt = MemoryContextSwitchTo(st->row_cxt);
		memset(slot->tts_isnull, true, sizeof(bool) * natts);
		EwDecodeColumns(&st->dec, blk, tx, slot->tts_values, slot->tts_isnull,
						0, st->nfilter_cols);
		if (passes_filters(st, slot->tts_values, slot->tts_isnull))
		{
			EwDecodeColumns(&st->dec, blk, tx, slot->tts_values, slot->tts_isnull,
							st->nfilter_cols, st->dec.ncols);
			MemoryContextSwitchTo(oldcxt);
			break;
		}
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(st->row_cxt);
		st->stats.rows_filtered++;
		CHECK_FOR_INTERRUPTS();
	}
	error_context_stack = errcb.previous;

	ExecStoreVirtualTuple(slot);
	return slot;
}

/*
 * ethwhaleReScanForeignScan
 *		Start over: the bounds may depend on parameters that changed.
 */
static void
ethwhaleReScanForeignScan(ForeignScanState *node)
{
	EwScanState *st = (EwScanState *) node->fdw_state;

	MemoryContextReset(st->batch_cxt);
	st->blocks = NULL;
	st->txs = NULL;
	st->hash_tx = NULL;
	st->acct_block = NULL;
	st->started = false;
	st->exhausted = false;
	if (st->pipe != NULL)
	{
		release_slots(st);
		MemoryContextReset(st->pipe_cxt);
	}
}

/*
 * ethwhaleEndForeignScan
 *		Everything lives in the query's memory (jansson allocates with
 *		palloc); the HTTP handles stay cached for the next query, but
 *		concurrent requests still running are stopped.
 */
static void
ethwhaleEndForeignScan(ForeignScanState *node)
{
	EwScanState *st = (EwScanState *) node->fdw_state;

	/* stop requests still in flight (a LIMIT may end the scan early) */
	if (st != NULL && st->pipe != NULL)
		release_slots(st);
}

/*
 * ethwhaleExplainForeignScan
 *		Show the GraphQL document, the block bounds and, with ANALYZE, what
 *		the scan sent and received.
 */
static void
ethwhaleExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EwScanState *st = (EwScanState *) node->fdw_state;
	List	   *strategies = (List *) list_nth(fsplan->fdw_private,
											   FdwScanPrivateBoundStrategies);
	EwScanMode	mode = (EwScanMode) intVal(list_nth(fsplan->fdw_private,
													FdwScanPrivateMode));
	StringInfoData bounds;
	ListCell   *le,
			   *ls;
	static const char *const opnames[] = {"", "<", "<=", "=", ">=", ">"};
	List	   *dpcontext;

	if (es->verbose && mode == EW_MODE_ACCOUNT)
		ExplainPropertyText("Remote GraphQL",
							psprintf("query($block: Long) { block(number: $block) { number a0: account(address: \"0x…\") %s a1: … } }",
									 strVal(list_nth(fsplan->fdw_private, FdwScanPrivateQuery))),
							es);
	else if (es->verbose)
		ExplainPropertyText("Remote GraphQL",
							strVal(list_nth(fsplan->fdw_private, FdwScanPrivateQuery)),
							es);

	/*
	 * Deparse in the plan's context: a parameter of an initplan or an outer
	 * query (PARAM_EXEC) needs it.
	 */
	dpcontext = set_deparse_context_plan(es->deparse_cxt, node->ss.ps.plan, NIL);
	initStringInfo(&bounds);
	forboth(le, fsplan->fdw_exprs, ls, strategies)
	{
		int			s = lfirst_int(ls);
		char	   *e = deparse_expression((Node *) lfirst(le), dpcontext, false, false);

		appendStringInfo(&bounds, "%s%s %s%s%s", bounds.len ? " AND " : "",
						 s == EW_STRATEGY_IN ? "= ANY" : opnames[s],
						 s == EW_STRATEGY_IN ? "(" : "", e,
						 s == EW_STRATEGY_IN ? ")" : "");
	}
	{
		List	   *texts = (List *) list_nth(fsplan->fdw_private, FdwScanPrivateFilterTexts);
		StringInfoData f;
		ListCell   *lc;
		int			i = list_length(strategies);

		initStringInfo(&f);
		foreach(lc, texts)
			appendStringInfo(&f, "%s%s %s", f.len ? " AND " : "", strVal(lfirst(lc)),
							 deparse_expression((Node *) list_nth(fsplan->fdw_exprs, i++),
												dpcontext, false, false));
		if (f.len > 0)
			ExplainPropertyText("Wrapper Filter", f.data, es);
	}
	{
		static const char *const slotvars[] = {
			"addresses", "topics[1] (from)", "topics[2] (to)", "account(address:)"
		};
		List	   *slots = (List *) list_nth(fsplan->fdw_private, FdwScanPrivateAddrSlots);
		List	   *arrays = (List *) list_nth(fsplan->fdw_private, FdwScanPrivateAddrArrays);
		List	   *texts = (List *) list_nth(fsplan->fdw_private, FdwScanPrivateFilterTexts);
		int			i = list_length(strategies) + list_length(texts);
		StringInfoData f;
		ListCell   *ls,
				   *la;

		initStringInfo(&f);
		forboth(ls, slots, la, arrays)
			appendStringInfo(&f, "%s%s %s%s%s", f.len ? ", " : "", slotvars[lfirst_int(ls)],
							 lfirst_int(la) ? "= ANY(" : "= ",
							 deparse_expression((Node *) list_nth(fsplan->fdw_exprs, i++),
												dpcontext, false, false),
							 lfirst_int(la) ? ")" : "");
		if (f.len > 0)
			ExplainPropertyText("Remote Filter", f.data, es);
	}
	if (mode == EW_MODE_HASH)
		ExplainPropertyText("Lookup", "transaction(hash:)", es);
	else
	{
		if (mode == EW_MODE_BACKWARD)
			appendStringInfo(&bounds, "%sdescending from %s", bounds.len ? ", " : "",
							 bounds.len ? "the bound" : "the head");
		else if (bounds.len == 0)
			appendStringInfoString(&bounds, mode == EW_MODE_ACCOUNT ? "the head" : "none");
		ExplainPropertyText("Block Bounds", bounds.data, es);
	}

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

/* ---------------------------------------------------------------------
 * IMPORT FOREIGN SCHEMA
 * ---------------------------------------------------------------------
 */

/*
 * ethwhaleImportForeignSchema
 *		IMPORT FOREIGN SCHEMA ethereum: one foreign table per table kind,
 *		with the columns of the contract (SPEC.md).
 */
static List *
ethwhaleImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	static const struct
	{
		const char *name;
		EwTableKind kind;
	}			tables[] = {
		{"eth_block", EW_TABLE_BLOCK},
		{"eth_tx", EW_TABLE_TX},
		{"eth_token_transfer", EW_TABLE_TOKEN_TRANSFER},
		{"eth_account", EW_TABLE_ACCOUNT},
	};
	ForeignServer *server = GetForeignServer(serverOid);
	List	   *commands = NIL;
	int			t;

	if (strcmp(stmt->remote_schema, "ethereum") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("remote schema \"%s\" does not exist on server \"%s\"",
						stmt->remote_schema, server->servername),
				 errhint("ethwhale_fdw serves one remote schema: IMPORT FOREIGN SCHEMA ethereum FROM SERVER %s INTO ...",
						 quote_identifier(server->servername))));

	for (t = 0; t < lengthof(tables); t++)
	{
		bool		listed = false;
		ListCell   *lc;
		StringInfoData buf;
		int			n,
					i;
		const EwField *fields = EwTableFields(tables[t].kind, &n);

		foreach(lc, stmt->table_list)
			if (strcmp(((RangeVar *) lfirst(lc))->relname, tables[t].name) == 0)
				listed = true;
		if ((stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO && !listed) ||
			(stmt->list_type == FDW_IMPORT_SCHEMA_EXCEPT && listed))
			continue;

		initStringInfo(&buf);
		appendStringInfo(&buf, "CREATE FOREIGN TABLE %s (",
						 quote_identifier(tables[t].name));
		for (i = 0; i < n; i++)
			appendStringInfo(&buf, "%s%s %s", i ? ", " : "",
							 quote_identifier(fields[i].name), fields[i].sqltype);
		appendStringInfo(&buf, ") SERVER %s OPTIONS (\"table\" %s)",
						 quote_identifier(server->servername),
						 quote_literal_cstr(EwTableKindName(tables[t].kind)));
		commands = lappend(commands, buf.data);
	}
	return commands;
}

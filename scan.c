/*-------------------------------------------------------------------------
 *
 * scan.c
 *		  Running a foreign scan: the block ranges its bounds allow, the
 *		  fetch loop over chunks of blocks, the wrapper's filters, and the
 *		  walk from an answer's blocks to rows.
 *
 * Execution evaluates the bounds (constants, parameters, stable
 * expressions), splits the range into chunks of at most batch_blocks
 * blocks and fetches them one at a time (pipeline.c overlaps them when
 * concurrency > 1).  The parsed answer of one chunk lives in batch_cxt,
 * reset before the next chunk, so memory is bounded by the chunk, not by
 * the range; the Datums of one row live in row_cxt.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/table.h"
#include "compat.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "scan.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* ---------------------------------------------------------------------
 * Set-up
 * ---------------------------------------------------------------------
 */

/*
 * init_decoder
 *		The decoder of the needed columns, those the filters test first, so
 *		a row that fails a filter is dropped before the rest is decoded.
 */
static void
init_decoder(EwScanState *st, EState *estate, int eflags)
{
	TupleDesc	desc = st->desc;
	bool		need_prices = false;
	bool		need_tokens = false;
	int			pass;
	ListCell   *la,
			   *lf;

	st->dec.servername = st->server->servername;
	st->dec.cols = palloc0(sizeof(EwColumn) * Max(1, list_length(st->plan.attnos)));
	for (pass = 0; pass < 2; pass++)
	{
		forboth(la, st->plan.attnos, lf, st->plan.fields)
		{
			int			attno = lfirst_int(la);
			const EwField *f = EwFieldByCode(lfirst_int(lf));

			if (list_member_int(st->plan.filter_attnos, attno) != (pass == 0))
				continue;
			EwInitColumn(&st->dec.cols[st->dec.ncols], TupleDescAttr(desc, attno - 1),
						 f, attno - 1, st->dec.rpc);
			st->dec.cols[st->dec.ncols++].nested = EwFieldInLogTransaction(st->opts.table, f);
			need_prices |= f->source == EW_SRC_VALUE_USD || f->source == EW_SRC_AMOUNT_USD;
			need_tokens |= f->source == EW_SRC_AMOUNT_USD;
		}
		if (pass == 0)
			st->nfilter_cols = st->dec.ncols;
	}
	if (need_prices && !(eflags & EXEC_FLAG_EXPLAIN_ONLY))
		st->dec.prices = EwLoadPrices(estate->es_query_cxt);
	if (need_tokens && !(eflags & EXEC_FLAG_EXPLAIN_ONLY))
		st->dec.tokens = EwLoadTokens(estate->es_query_cxt);
	st->dec.account_block = -1;
}

/*
 * init_filters
 *		The wrapper's filters: column, operator, and the state of the
 *		constant side.
 */
static void
init_filters(EwScanState *st, PlanState *ps)
{
	int			n = list_length(st->plan.filter_attnos);
	ListCell   *la,
			   *lo,
			   *le;
	int			i = 0;

	st->nfilters = n;
	st->filter_attidx = palloc0(sizeof(int) * Max(1, n));
	st->filter_fn = palloc0(sizeof(FmgrInfo) * Max(1, n));
	st->filter_states = palloc0(sizeof(ExprState *) * Max(1, n));
	st->filter_values = palloc0(sizeof(Datum) * Max(1, n));
	st->filter_nulls = palloc0(sizeof(bool) * Max(1, n));
	forthree(la, st->plan.filter_attnos, lo, st->plan.filter_ops,
			 le, st->plan.filter_exprs)
	{
		st->filter_attidx[i] = lfirst_int(la) - 1;
		fmgr_info(get_opcode(lfirst_oid(lo)), &st->filter_fn[i]);
		st->filter_states[i] = ExecInitExpr((Expr *) lfirst(le), ps);
		i++;
	}
}

/*
 * EwInitRequestState
 *		What any request to server needs of a state: the options as userid
 *		sees them (with those of foreign table relid, unless InvalidOid), the
 *		node API they choose and the memory of an answer, under cxt.  A scan
 *		(EwBeginScan) adds its plan; a one-off request (nodeinfo.c) needs no
 *		more.  The API's begin is the caller's to call, once the state is
 *		complete.
 */
void
EwInitRequestState(EwScanState *st, ForeignServer *server, Oid relid,
				   Oid userid, MemoryContext cxt)
{
	st->server = server;
	EwGetOptions(relid, server->serverid, userid, &st->opts);
	st->api = st->opts.api == EW_API_JSONRPC ? &EwJsonRpcApi : &EwGraphqlApi;
	st->dec.rpc = st->opts.api == EW_API_JSONRPC;
	st->batch_cxt = AllocSetContextCreate(cxt, "ethwhale_fdw batch",
										  ALLOCSET_DEFAULT_SIZES);
	st->cur_block = -1;
	/* the head an account scan reads at holds for all its rescans */
	st->head_block = -1;
}

/*
 * EwBeginScan
 *		Set up the scan state; nothing is sent before the first row is asked
 *		for (EXPLAIN without ANALYZE sends nothing).
 */
void
EwBeginScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	EwScanState *st = palloc0(sizeof(EwScanState));
	Oid			userid;
	ListCell   *lc;

	node->fdw_state = st;
	EwUnpackScanPlan(fsplan->fdw_private, fsplan->fdw_exprs, &st->plan);
	if (fsplan->scan.scanrelid > 0)
		st->rel = node->ss.ss_currentRelation;
	else
	{
		/* a pushed join reads eth_tx (locked by the executor already) */
		st->rel = table_open(linitial_oid(st->plan.rel_oids), NoLock);
		st->own_rel = true;
	}
	st->desc = node->ss.ss_ScanTupleSlot->tts_tupleDescriptor;
	userid = ew_scan_userid(fsplan, estate);
	EwInitRequestState(st,
					   GetForeignServer(GetForeignTable(RelationGetRelid(st->rel))->serverid),
					   RelationGetRelid(st->rel), userid, estate->es_query_cxt);

	/* the document is sent as a JSON string: escape it once */
	if (st->plan.mode != EW_MODE_ACCOUNT)
		st->query_json = EwJsonQuote(st->plan.document);
	foreach(lc, st->plan.bound_exprs)
		st->bound_states = lappend(st->bound_states,
								   ExecInitExpr((Expr *) lfirst(lc), &node->ss.ps));
	foreach(lc, st->plan.addr_exprs)
		st->addr_states = lappend(st->addr_states,
								  ExecInitExpr((Expr *) lfirst(lc), &node->ss.ps));
	if (st->plan.hash_expr)
		st->hash_state = ExecInitExpr(st->plan.hash_expr, &node->ss.ps);
	init_filters(st, &node->ss.ps);
	init_decoder(st, estate, eflags);

	st->row_cxt = AllocSetContextCreate(estate->es_query_cxt,
										"ethwhale_fdw row",
										ALLOCSET_DEFAULT_SIZES);
	st->scan_cxt = AllocSetContextCreate(estate->es_query_cxt,
										 "ethwhale_fdw scan",
										 ALLOCSET_SMALL_SIZES);
	st->reuse_cxt = AllocSetContextCreate(estate->es_query_cxt,
										  "ethwhale_fdw reused answer",
										  ALLOCSET_DEFAULT_SIZES);
	if (st->plan.mode == EW_MODE_RANGE && st->opts.concurrency > 1 &&
		!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
		EwPipelineInit(st, estate->es_query_cxt);
	if (st->api->begin != NULL)
		st->api->begin(st);
}

/*
 * planned_requests
 *		The fewest requests the scan's ranges need at batch_blocks blocks (or
 *		EW_ACCOUNTS_PER_REQUEST addresses) per request.
 */
static double
planned_requests(EwScanState *st)
{
	double		n = 0;
	int			i;

	if (st->plan.mode == EW_MODE_HASH)
		return 1;
	for (i = 0; i < st->nranges; i++)
	{
		double		blocks = (double) st->ranges[i].hi - (double) st->ranges[i].lo + 1;

		if (st->plan.mode == EW_MODE_ACCOUNT)
			n += (st->at_head ? 1 : blocks) *
				ceil((double) st->naccounts / EW_ACCOUNTS_PER_REQUEST);
		else
			n += ceil(blocks / st->opts.batch_blocks);
	}
	return n;
}

/*
 * check_planned_requests
 *		Refuse, before sending anything for it, a scan whose ranges need more
 *		requests than its budget allows (the requests of earlier rescans
 *		count too).  A scan under a LIMIT is left to the check before each
 *		request: it may end early.
 */
static void
check_planned_requests(EwScanState *st)
{
	double		n;

	/* a LIMIT or a walk down from the head may stop long before the end */
	if (st->plan.slow_start || st->plan.mode == EW_MODE_BACKWARD)
		return;
	n = planned_requests(st);
	if ((double) st->stats.requests + n <= (double) st->opts.max_requests)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("a scan of foreign table \"%s\" would send %.0f requests to server \"%s\", more than max_requests (%d)",
					RelationGetRelationName(st->rel), n + (double) st->stats.requests,
					st->server->servername, st->opts.max_requests),
			 errdetail("%d block ranges, %d blocks per request%s.", st->nranges,
					   st->opts.batch_blocks,
					   st->stats.requests > 0 ?
					   psprintf(", after %lld requests already sent", (long long) st->stats.requests) : ""),
			 errhint("Narrow the block range, or raise the budget: SET ethwhale.max_requests_per_query, or the server or table option max_requests.")));
}

/*
 * EwCheckRequestBudget
 *		Before sending a request: stop a scan that has used its budget
 *		(open ranges, retries and halving can take it past the plan).
 */
void
EwCheckRequestBudget(EwScanState *st)
{
	if (st->stats.requests < st->opts.max_requests)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("a scan of foreign table \"%s\" reached max_requests (%d) on server \"%s\"",
					RelationGetRelationName(st->rel), st->opts.max_requests,
					st->server->servername),
			 errdetail("%lld blocks read so far%s.", (long long) st->blocks_read,
					   st->cur_block >= 0 ? psprintf(", the last one block %lld", (long long) st->cur_block) : ""),
			 errhint("Narrow the block range, or raise the budget: SET ethwhale.max_requests_per_query, or the server or table option max_requests.")));
}

/*
 * start_scan
 *		Evaluate the filters' constants, the pushed addresses and the
 *		bounds, once per scan (and per rescan).
 */
static void
start_scan(EwScanState *st, ExprContext *econtext)
{
	MemoryContext oldcxt;
	int			i;

	st->started = true;
	st->exhausted = false;
	st->nranges = 0;
	st->cur_range = 0;
	st->acct_next = 0;
	st->acct_block = NULL;
	st->log_vars = NULL;		/* in scan_cxt, reset below */
	st->lists_unsent = 0;

	MemoryContextReset(st->scan_cxt);
	oldcxt = MemoryContextSwitchTo(st->scan_cxt);
	for (i = 0; i < st->nfilters; i++)
	{
		Datum		d = ExecEvalExpr(st->filter_states[i], econtext,
									 &st->filter_nulls[i]);

		st->filter_values[i] = st->filter_nulls[i] ? (Datum) 0 :
			datumCopy(d, false, -1);
	}
	if (st->plan.mode != EW_MODE_HASH && EwEvalAddresses(st, econtext))
	{
		st->at_head = st->plan.mode == EW_MODE_ACCOUNT && st->bound_states == NIL;
		if (st->at_head)
			EwSingleRange(st, 0, 0);	/* the block is learnt from the answer */
		else
			EwPlanRanges(st, econtext);
	}
	MemoryContextSwitchTo(oldcxt);
	EwFirstChunk(st);
	check_planned_requests(st);
}

/* ---------------------------------------------------------------------
 * Fetching
 * ---------------------------------------------------------------------
 */

/*
 * EwFetchHead
 *		The node's newest block number.
 */
int64
EwFetchHead(EwScanState *st)
{
	int			attempt = 0;
	bool		shrink;
	json_t	   *data;
	int64		head;
	MemoryContext oldcxt = MemoryContextSwitchTo(st->batch_cxt);

	data = EwRequest(st, st->api->head_request(st), "the head block", false,
					 &attempt, &shrink);
	head = st->api->answer_head(st, data);
	MemoryContextSwitchTo(oldcxt);
	EwResetBatch(st);
	return head;
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
	json_t	   *data;
	int			attempt = 0;
	bool		shrink;
	MemoryContext oldcxt;

	st->exhausted = true;
	if (isnull)
		return;
	hash = TextDatumGetCString(d);
	/* hashes are stored lowercase: anything else cannot be equal */
	if (!EwIsHash(hash))
		return;

	oldcxt = MemoryContextSwitchTo(st->batch_cxt);
	data = EwRequest(st, st->api->hash_request(st, hash),
					 psprintf("transaction %s", hash), false, &attempt, &shrink);
	MemoryContextSwitchTo(EwAnswerCxt(st, data));
	st->hash_tx = st->api->answer_tx(st, data);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * EwResetBatch
 *		Release the answer being walked (and forget it as the scan's last).
 */
void
EwResetBatch(EwScanState *st)
{
	MemoryContextReset(st->batch_cxt);
	st->last_body = NULL;
	st->last_data = NULL;
	st->last_blocks = NULL;
}

/* "blocks from..to", for messages. */
char *
EwChunkWhat(int64 from, int64 to)
{
	return psprintf("blocks " INT64_FORMAT ".." INT64_FORMAT, from, to);
}

/*
 * EwClipChunk
 *		Cut from..*to at the last block the node may be asked for (the node
 *		API's clip_to: its head); false when not even from may be.  *clipped
 *		says the chunk now ends at the head, and so does its range.
 */
bool
EwClipChunk(EwScanState *st, int64 from, int64 *to, bool *clipped)
{
	int64		hi;

	*clipped = false;
	if (st->api->clip_to == NULL)
		return true;
	hi = st->api->clip_to(st, from, *to);
	if (hi < from)
		return false;
	*clipped = hi < *to;
	*to = Min(*to, hi);
	return true;
}

/*
 * EwAnswerCxt
 *		Where what is made from an answer lives: with the answer.  The node
 *		APIs edit answers in place (JSON-RPC merges receipts, sets counts),
 *		and a reused answer lives in reuse_cxt, which outlives batch_cxt:
 *		edits made in batch_cxt would dangle after the next rescan.
 */
MemoryContext
EwAnswerCxt(EwScanState *st, json_t *data)
{
	return (data != NULL && data == st->reuse_data) ? st->reuse_cxt : st->batch_cxt;
}

/*
 * EwTakeBlocks
 *		Make the blocks of an answer for from..to the current chunk; returns
 *		the last block the answer covers (below to: the head was reached).
 */
int64
EwTakeBlocks(EwScanState *st, json_t *data, int64 from, int64 to,
			 const char *what)
{
	int64		covered;
	MemoryContext oldcxt;

	/* a reused answer's blocks were taken by the scan before */
	if (data == st->reuse_data && st->reuse_blocks != NULL)
	{
		st->blocks = st->reuse_blocks;
		covered = st->reuse_covered;
	}
	else
	{
		/* the blocks may be assembled from the answer: in its memory */
		oldcxt = MemoryContextSwitchTo(EwAnswerCxt(st, data));
		st->blocks = st->api->answer_blocks(st, data, from, to, what, &covered);
		MemoryContextSwitchTo(oldcxt);
	}
	st->last_blocks = st->blocks;
	st->last_covered = covered;
	st->block_idx = 0;
	st->blocks_read += covered - from + 1;
	return covered;
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

	/* done: the last answer stays, for a rescan that asks the same */
	if (st->cur_range >= st->nranges)
	{
		st->exhausted = true;
		return false;
	}
	EwResetBatch(st);
	st->blocks = NULL;
	st->txs = NULL;

	while (st->cur_range < st->nranges)
	{
		EwRange    *r = &st->ranges[st->cur_range];
		int64		from,
					to;
		char	   *what;
		json_t	   *data;
		size_t		n;
		int64		covered;
		bool		shrink;
		bool		clipped;
		MemoryContext oldcxt;

		if (st->plan.mode == EW_MODE_BACKWARD)
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
		if (!EwClipChunk(st, from, &to, &clipped))
		{
			/* beyond the head: nothing more to read in this range */
			if (++st->cur_range < st->nranges)
				st->next_block = st->ranges[st->cur_range].lo;
			continue;
		}

		oldcxt = MemoryContextSwitchTo(st->batch_cxt);
		what = EwChunkWhat(from, to);
		data = EwRequest(st, st->api->chunk_request(st, from, to), what,
						 to > from, &attempt, &shrink);
		MemoryContextSwitchTo(oldcxt);
		if (shrink)
		{
			(void) EwShrinkChunk(st, from, to);
			EwResetBatch(st);
			continue;
		}
		attempt = 0;

		covered = EwTakeBlocks(st, data, from, to, what);
		n = json_array_size(st->blocks);
		if (covered == to)
			EwAdaptChunk(st, to - from + 1, st->last_body_len);

		/*
		 * Move on.  A range beyond the head comes back short (Geth cuts "to"
		 * at the head): nothing more to read in this range then.
		 */
		if (st->plan.mode == EW_MODE_BACKWARD)
			st->next_block = from - 1;
		else if (to == r->hi || covered < to || clipped)
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
 * Rows
 * ---------------------------------------------------------------------
 */

/*
 * current_block_obj
 *		The block object at block_idx, in scan order (backward scans walk
 *		each answer from its end).
 */
static json_t *
current_block_obj(EwScanState *st)
{
	size_t		n = json_array_size(st->blocks);

	return json_array_get(st->blocks, st->plan.mode == EW_MODE_BACKWARD ?
						  n - 1 - st->block_idx : st->block_idx);
}

/*
 * next_counted_row
 *		count_only: whether the block has a row left to count.
 */
static bool
next_counted_row(EwScanState *st, json_t *b)
{
	if (st->count_left < 0)
	{
		uint64		c;
		json_t	   *jc = json_object_get(b, "transactionCount");

		/*
		 * A count beyond int32 is no real block: as int64 it would turn
		 * negative (rows silently dropped) or count for ages.
		 */
		if (!EwJsonGetUint64(jc, &c) || c > (uint64) PG_INT32_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("unexpected value for field \"transactionCount\" in the answer of server \"%s\"",
							st->server->servername),
					 errdetail("Expected a hex number, got %s.", EwJsonExcerpt(jc))));
		st->count_left = (int64) c;
	}
	if (st->count_left == 0)
		return false;
	st->count_left--;
	return true;
}

/*
 * next_listed_row
 *		The block's next transaction or ERC-20 log, or NULL when it has no
 *		more.
 */
static json_t *
next_listed_row(EwScanState *st, json_t *b)
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
		json_t	   *row = json_array_get(st->txs, st->tx_idx++);

		if (logs && !EwIsErc20Transfer(row))
		{
			st->stats.logs_skipped++;
			continue;
		}
		return row;
	}
	return NULL;
}

/*
 * next_row
 *		Position on the next (block, row) pair; false at the end of the
 *		scan.  *row is NULL for eth_block and for counted rows.
 */
static bool
next_row(EwScanState *st, ExprContext *econtext, json_t **blk, json_t **row)
{
	if (!st->started)
	{
		start_scan(st, econtext);
		if (st->plan.mode == EW_MODE_HASH)
			fetch_hash(st, econtext);
	}
	*row = NULL;
	if (st->plan.mode == EW_MODE_HASH)
	{
		if (st->hash_tx == NULL)
			return false;
		*row = st->hash_tx;
		*blk = json_object_get(st->hash_tx, "block");
		st->hash_tx = NULL;
		return true;
	}
	if (st->plan.mode == EW_MODE_ACCOUNT)
		return EwNextAccountRow(st, blk, row);

	for (;;)
	{
		json_t	   *b;
		uint64		n;

		if (st->blocks == NULL || st->block_idx >= json_array_size(st->blocks))
		{
			if (st->exhausted ||
				!(st->pipe != NULL ? EwFetchChunkConcurrent(st) : fetch_next_chunk(st)))
				return false;
			st->txs = NULL;
			st->count_left = -1;
		}
		b = current_block_obj(st);
		*blk = b;
		/* the block's number was checked when the answer was taken */
		if (st->txs == NULL && st->count_left < 0 &&
			EwJsonGetUint64(json_object_get(b, "number"), &n))
			st->cur_block = (int64) n;

		if (st->opts.table == EW_TABLE_BLOCK)
		{
			st->block_idx++;
			return true;
		}
		if (st->plan.count_only ? next_counted_row(st, b) :
			(*row = next_listed_row(st, b)) != NULL)
			return true;
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
				   NameStr(TupleDescAttr(st->desc, st->dec.current->attidx)->attname),
				   RelationGetRelationName(st->rel), st->cur_block);
	else
		errcontext("foreign table \"%s\", block " INT64_FORMAT,
				   RelationGetRelationName(st->rel), st->cur_block);
}

/*
 * EwIterateScan
 *		The next row that passes the wrapper's filters, or an empty slot.
 */
TupleTableSlot *
EwIterateScan(ForeignScanState *node)
{
	EwScanState *st = (EwScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	ErrorContextCallback errcb;
	json_t	   *blk = NULL;
	json_t	   *row = NULL;
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
		bool		pass;

		if (!next_row(st, econtext, &blk, &row))
		{
			error_context_stack = errcb.previous;
			return slot;
		}
		oldcxt = MemoryContextSwitchTo(st->row_cxt);
		memset(slot->tts_isnull, true, sizeof(bool) * natts);
		EwDecodeColumns(&st->dec, blk, row, slot->tts_values, slot->tts_isnull,
						0, st->nfilter_cols);
		pass = passes_filters(st, slot->tts_values, slot->tts_isnull);
		if (pass)
			EwDecodeColumns(&st->dec, blk, row, slot->tts_values, slot->tts_isnull,
							st->nfilter_cols, st->dec.ncols);
		MemoryContextSwitchTo(oldcxt);
		if (pass)
			break;
		MemoryContextReset(st->row_cxt);
		st->stats.rows_filtered++;
		CHECK_FOR_INTERRUPTS();
	}
	error_context_stack = errcb.previous;
	st->rows_returned++;
	ExecStoreVirtualTuple(slot);
	return slot;
}

/*
 * EwRescan
 *		Start over at the next row: the bounds may depend on parameters that
 *		changed.
 */
void
EwRescan(EwScanState *st)
{
	/*
	 * Keep the answer of a scan that took one request (and a request body
	 * still next to it), for a rescan that asks the same: batch_cxt holds
	 * both, so it becomes the reuse context.  A reused answer stays.
	 */
	if (st->scan_requests == 1 && st->last_data != NULL &&
		st->last_body != st->reuse_body)
	{
		MemoryContext keep = st->batch_cxt;

		st->batch_cxt = st->reuse_cxt;
		st->reuse_cxt = keep;
		st->reuse_body = st->last_body;
		st->reuse_data = st->last_data;
		st->reuse_blocks = st->last_blocks;
		st->reuse_covered = st->last_covered;
	}
	else if (st->scan_requests != 1 || st->last_data == NULL)
	{
		MemoryContextReset(st->reuse_cxt);
		st->reuse_body = NULL;
		st->reuse_data = NULL;
		st->reuse_blocks = NULL;
	}
	st->scan_requests = 0;
	st->last_body = NULL;
	st->last_data = NULL;
	st->last_blocks = NULL;
	MemoryContextReset(st->batch_cxt);
	st->blocks = NULL;
	st->txs = NULL;
	st->hash_tx = NULL;
	st->acct_block = NULL;
	st->started = false;
	st->exhausted = false;
	if (st->pipe != NULL)
		EwPipelineRelease(st);
}

/*
 * EwEndScan
 *		Everything lives in the query's memory (jansson allocates with
 *		palloc); the HTTP handles stay cached for the next query, but
 *		concurrent requests still running are stopped (a LIMIT may end the
 *		scan early).
 */
void
EwEndScan(EwScanState *st)
{
	if (st == NULL)
		return;
	if (st->pipe != NULL)
		EwPipelineRelease(st);
	if (st->own_rel)
		table_close(st->rel, NoLock);
}

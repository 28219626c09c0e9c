/*-------------------------------------------------------------------------
 *
 * pipeline.c
 *		  Concurrent range scans (concurrency > 1) for ethwhale_fdw.
 *
 * Up to "concurrency" chunk requests are in flight, each on a slot of its
 * own (transport.c); answers are taken strictly in block order, so the rows
 * come out as a sequential scan returns them.  Memory is bounded by
 * concurrency answers held as text plus the one chunk being decoded.  Each
 * answer goes through the same request policy as a sequential fetch
 * (EwAfterResponse): a chunk that must shrink is split in two in place, a
 * transient failure is sent again on its slot.
 *
 * Slots are given back at the end of the scan, at a rescan, or by a reset
 * callback of the query's memory when an ERROR ends the query.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "scan.h"
#include "utils/memutils.h"

/*
 * release_slots
 *		Give back every slot the scan holds, stopping their transfers.
 *		Runs from a reset callback during abort too: it must not fail.
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
}

static void
release_callback(void *arg)
{
	release_slots((EwScanState *) arg);
}

/*
 * EwPipelineRelease
 *		End of scan or rescan: give the slots back and forget the pending
 *		requests.
 */
void
EwPipelineRelease(EwScanState *st)
{
	release_slots(st);
	MemoryContextReset(st->pipe_cxt);
}

/*
 * EwPipelineInit
 *		Make a range scan concurrent.
 */
void
EwPipelineInit(EwScanState *st, MemoryContext query_cxt)
{
	MemoryContextCallback *cb = MemoryContextAllocZero(query_cxt,
													   sizeof(MemoryContextCallback));

	/* splits after time-outs add at most one entry per halving */
	st->pipe_cap = st->opts.concurrency + 64;
	st->pipe = MemoryContextAllocZero(query_cxt, sizeof(EwPending) * st->pipe_cap);
	st->free_slots = MemoryContextAllocZero(query_cxt,
											sizeof(EwSlot *) * st->opts.concurrency);
	st->pipe_cxt = AllocSetContextCreate(query_cxt, "ethwhale_fdw pipeline",
										 ALLOCSET_SMALL_SIZES);
	cb->func = release_callback;
	cb->arg = st;
	MemoryContextRegisterResetCallback(query_cxt, cb);
}

/* The request body of blocks from..to, in the pipeline's memory. */
static char *
pipe_body(EwScanState *st, int64 from, int64 to)
{
	MemoryContext old = MemoryContextSwitchTo(st->pipe_cxt);
	char	   *body = st->api->chunk_request(st, from, to);

	MemoryContextSwitchTo(old);
	return body;
}

/* Start the pending request at index i on a free slot. */
static void
start_pending(EwScanState *st, int i)
{
	EwPending  *p = &st->pipe[i];

	EwCheckRequestBudget(st);
	if (p->slot == NULL)
	{
		if (st->nfree == 0)
		{
			if (st->conn == NULL)
				st->conn = EwGetConnection(st->server);
			st->free_slots[st->nfree++] = EwAcquireSlot(st->conn, st->server->servername);
		}
		p->slot = st->free_slots[--st->nfree];
	}
	EwStartPost(st->conn, p->slot, p->body, strlen(p->body), &st->opts);
	st->stats.requests++;
}

/* Drop pending request i from the pipeline, keeping its slot. */
static void
drop_pending(EwScanState *st, int i)
{
	EwPending  *p = &st->pipe[i];

	if (p->slot != NULL)
		st->free_slots[st->nfree++] = p->slot;
	if (p->body)
		pfree(p->body);
	memmove(&st->pipe[i], &st->pipe[i + 1], sizeof(EwPending) * (st->npipe - i - 1));
	st->npipe--;
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

	/* before a LIMIT has its first rows, nothing runs ahead */
	int			depth = st->plan.slow_start && st->rows_returned == 0 ? 1 :
		st->opts.concurrency;

	while (st->npipe < depth && st->cur_range < st->nranges)
	{
		EwRange    *r = &st->ranges[st->cur_range];
		EwPending  *p = &st->pipe[st->npipe++];
		int64		from = st->next_block;
		int64		to = (r->hi - from >= st->chunk - 1) ? from + st->chunk - 1 : r->hi;
		bool		clipped;

		if (!EwClipChunk(st, from, &to, &clipped))
		{
			/* beyond the head: nothing more to read in this range */
			st->npipe--;
			if (++st->cur_range < st->nranges)
				st->next_block = st->ranges[st->cur_range].lo;
			continue;
		}
		p->from = from;
		p->to = to;
		p->range = st->cur_range;
		p->body = pipe_body(st, from, to);
		p->slot = NULL;
		p->attempt = 0;
		if (to == r->hi || clipped)
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
		else if (running < depth)
		{
			start_pending(st, i);
			running++;
		}
	}
}

/*
 * split_first
 *		The first pending chunk must shrink: ask for its first half now and
 *		queue its second half right after it.
 */
static void
split_first(EwScanState *st)
{
	EwPending  *p = &st->pipe[0];
	int64		mid = p->from + EwShrinkChunk(st, p->from, p->to) - 1;

	if (st->npipe >= st->pipe_cap)
		elog(ERROR, "ethwhale_fdw: too many chunk requests pending");
	memmove(&st->pipe[2], &st->pipe[1], sizeof(EwPending) * (st->npipe - 1));
	st->npipe++;
	st->pipe[1] = *p;
	st->pipe[1].from = mid + 1;
	st->pipe[1].slot = NULL;
	st->pipe[1].attempt = 0;
	st->pipe[1].body = pipe_body(st, mid + 1, p->to);
	pfree(p->body);
	p->to = mid;
	p->body = pipe_body(st, p->from, mid);
	start_pending(st, 0);
}

/*
 * head_reached
 *		The first chunk came back short: the head is reached, later chunks
 *		of its range are empty.
 */
static void
head_reached(EwScanState *st)
{
	int			range = st->pipe[0].range;
	int			i;

	for (i = st->npipe - 1; i >= 1; i--)
		if (st->pipe[i].range == range)
			drop_pending(st, i);
	if (st->cur_range == range && ++st->cur_range < st->nranges)
		st->next_block = st->ranges[st->cur_range].lo;
}

/*
 * EwFetchChunkConcurrent
 *		The next chunk of blocks with requests in flight ahead of it; false
 *		when the ranges are done.
 */
bool
EwFetchChunkConcurrent(EwScanState *st)
{
	EwResetBatch(st);
	st->blocks = NULL;
	st->txs = NULL;

	for (;;)
	{
		EwPending  *p;
		EwResponse	resp;
		json_t	   *data;
		char	   *what;
		size_t		n;
		int64		covered;

		CHECK_FOR_INTERRUPTS();
		top_up(st);
		if (st->npipe == 0)
		{
			st->exhausted = true;
			return false;
		}
		p = &st->pipe[0];
		EwWaitPost(st->conn, p->slot, &resp);
		{
			MemoryContext old = MemoryContextSwitchTo(st->batch_cxt);

			what = EwChunkWhat(p->from, p->to);
			MemoryContextSwitchTo(old);
		}
		switch (EwAfterResponse(st, &resp, what, p->to > p->from, &p->attempt, &data))
		{
			case EW_STEP_SHRINK:
				EwResetBatch(st);
				split_first(st);
				continue;
			case EW_STEP_RETRY:
				EwResetBatch(st);
				start_pending(st, 0);
				continue;
			case EW_STEP_DONE:
				break;
		}

		covered = EwTakeBlocks(st, data, p->from, p->to, what);
		n = json_array_size(st->blocks);
		if (covered == p->to)
			EwAdaptChunk(st, p->to - p->from + 1, resp.body_len);
		else
			head_reached(st);
		drop_pending(st, 0);
		/* keep the node busy while this chunk is decoded */
		top_up(st);
		if (n > 0)
			return true;
	}
}

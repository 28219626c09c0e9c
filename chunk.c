/*-------------------------------------------------------------------------
 *
 * chunk.c
 *		  How many blocks a scan asks for per request: the first chunk, the
 *		  chunk after each answer, and after a node's refusal.
 *
 * Each answer aims at EW_TARGET_RESPONSE_BYTES (or a quarter of
 * max_response_mb if that is less), at most doubling or halving per
 * answer, never above batch_blocks: the user's number is the most a
 * request asks for, so that a node's limits (and its time-out) set by it
 * hold.
 *
 * The mean size of a block's answer is remembered for the rest of the
 * session, per server, foreign table, request document and whether
 * addresses are pushed, so that the next scan of the same kind over more
 * than batch_blocks blocks starts near the target rather than at
 * batch_blocks.  Without it every statement of a sync started with answers
 * several times the target (concurrency of them at once, before any had
 * come back), and the node sat idle while the backend decoded them.  A
 * node's refusals are not remembered: they bound one scan's chunks only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "scan.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#define EW_TARGET_RESPONSE_BYTES (4 * 1024 * 1024)

/* The kinds of scan remembered; past this many, new kinds are not. */
#define EW_MAX_LEARNED 256

typedef struct EwChunkKey
{
	Oid			serverid;
	Oid			relid;
	uint32		request_hash;	/* of the document, and whether addresses
								 * are pushed (not their values) */
} EwChunkKey;

typedef struct EwChunkEntry
{
	EwChunkKey	key;			/* hash key */
	double		block_bytes;	/* answer bytes per block, of the last scan */
} EwChunkEntry;

static HTAB *LearnedSizes = NULL;

/* The answer size the chunks aim at. */
static double
target_bytes(EwScanState *st)
{
	return Min((double) EW_TARGET_RESPONSE_BYTES,
			   (double) st->opts.max_response_mb * 1024 * 1024 / 4);
}

/*
 * learned_key
 *		The key of a kind of scan: its server, table and document, and
 *		whether its plan pushes addresses (into logs(filter:) or eth_getLogs;
 *		the same at EXPLAIN and at run time).  The address lists are not in
 *		the key: a nested loop's every outer row would be a kind.
 */
static void
learned_key(EwScanState *st, EwChunkKey *key)
{
	memset(key, 0, sizeof(*key));
	key->serverid = st->server->serverid;
	key->relid = RelationGetRelid(st->rel);
	key->request_hash = hash_bytes((const unsigned char *) st->plan.document,
								   strlen(st->plan.document));
	if (st->plan.addr_exprs != NIL)
		key->request_hash = hash_combine(key->request_hash, 1);
}

/*
 * find_learned
 *		The entry of this kind of scan, made (with no size yet) if new; NULL
 *		once EW_MAX_LEARNED kinds are remembered.
 */
static EwChunkEntry *
find_learned(EwScanState *st)
{
	EwChunkKey	key;
	EwChunkEntry *e;
	bool		found;

	if (LearnedSizes == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(EwChunkKey);
		ctl.entrysize = sizeof(EwChunkEntry);
		ctl.hcxt = TopMemoryContext;
		LearnedSizes = hash_create("ethwhale_fdw answer sizes", 64, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	learned_key(st, &key);
	e = (EwChunkEntry *) hash_search(LearnedSizes, &key, HASH_FIND, NULL);
	if (e != NULL || hash_get_num_entries(LearnedSizes) >= EW_MAX_LEARNED)
		return e;
	e = (EwChunkEntry *) hash_search(LearnedSizes, &key, HASH_ENTER, &found);
	e->block_bytes = 0;
	return e;
}

/* The blocks of the scan's ranges. */
static double
range_blocks(EwScanState *st)
{
	double		n = 0;
	int			i;

	for (i = 0; i < st->nranges; i++)
		n += (double) st->ranges[i].hi - (double) st->ranges[i].lo + 1;
	return n;
}

/*
 * learnt_chunk
 *		The first chunk of a scan over more than batch_blocks blocks whose
 *		kind had BLOCK_BYTES per block: as many blocks as the target holds,
 *		at least one, at most batch_blocks.
 */
static int
learnt_chunk(EwScanState *st, double block_bytes)
{
	double		want = target_bytes(st) / block_bytes;

	return (int) Max(1.0, Min(want, (double) st->opts.batch_blocks));
}

/*
 * EwFirstChunk
 *		The chunk a scan (or rescan) starts with, once its ranges are known:
 *		one block under a LIMIT; else batch_blocks, or, for ranges of more
 *		blocks than that, as many as the target holds at the size this kind
 *		of scan's blocks had before.  Ranges that fit one request keep it,
 *		so that a rescan sending the same request reuses its answer.
 */
void
EwFirstChunk(EwScanState *st)
{
	EwChunkEntry *e;

	st->chunk_ceiling = st->opts.batch_blocks;
	st->chunk = st->plan.slow_start ? 1 : st->opts.batch_blocks;
	st->learnt = NULL;
	st->answer_bytes = 0;
	st->answer_blocks = 0;
	if (st->plan.mode != EW_MODE_RANGE || st->nranges == 0 || st->plan.document == NULL)
		return;
	st->learnt = e = find_learned(st);
	if (e != NULL && e->block_bytes > 0 && !st->plan.slow_start &&
		range_blocks(st) > st->opts.batch_blocks)
		st->chunk = learnt_chunk(st, e->block_bytes);
}

/*
 * EwExpectedRequests
 *		For EXPLAIN: the requests a range scan of constant bounds would send
 *		at the answer size this session's last scan of its kind had, as
 *		EwFirstChunk would size them (the answers vary, so an estimate);
 *		-1 if the bounds are not constant or no scan of its kind has been
 *		seen.  Looks only: EXPLAIN makes no entry.
 */
double
EwExpectedRequests(EwScanState *st)
{
	int64		blocks = st->plan.planned_blocks;
	EwChunkKey	key;
	EwChunkEntry *e;

	if (LearnedSizes == NULL || st->plan.mode != EW_MODE_RANGE ||
		st->plan.document == NULL || blocks < 0 || st->plan.slow_start)
		return -1;
	learned_key(st, &key);
	e = (EwChunkEntry *) hash_search(LearnedSizes, &key, HASH_FIND, NULL);
	if (e == NULL || e->block_bytes <= 0)
		return -1;
	/* ranges that fit one request keep it (EwFirstChunk) */
	if ((double) blocks <= (double) st->opts.batch_blocks)
		return 1;
	return ceil((double) blocks / learnt_chunk(st, e->block_bytes));
}

/*
 * EwAdaptChunk
 *		Size the next requests after an answer of nblocks full blocks and
 *		bytes bytes: aim at the target answer size, at most doubling or
 *		halving at once, never above the size that last timed out.
 */
void
EwAdaptChunk(EwScanState *st, int64 nblocks, size_t bytes)
{
	double		per_block = Max(1.0, (double) bytes / (double) Max(nblocks, 1));
	double		want = target_bytes(st) / per_block;

	/* what the next scan of this kind starts from: this scan's mean */
	st->answer_bytes += (double) bytes;
	st->answer_blocks += (double) Max(nblocks, 1);
	if (st->learnt != NULL)
		st->learnt->block_bytes = Max(1.0, st->answer_bytes / st->answer_blocks);
	want = Max(want, st->chunk / 2.0);
	want = Min(want, st->chunk * 2.0);
	want = Min(want, (double) st->chunk_ceiling);
	st->chunk = (int) Max(1.0, want);
}

/*
 * EwShrinkChunk
 *		The node needs fewer blocks than from..to: the next request asks for
 *		the number it named, else half.  A cap on the blocks (or a time-out)
 *		lowers the ceiling; a cap on the results lets the chunk grow again
 *		where the answers are small.  Returns the new chunk.
 */
int64
EwShrinkChunk(EwScanState *st, int64 from, int64 to)
{
	int64		n = to - from + 1;
	int64		want = Max(1, n / 2);

	if (st->shrink_blocks > 0 && st->shrink_blocks < n)
		want = st->shrink_blocks;
	st->chunk = (int) want;

	/*
	 * A cap on results is sized to the blocks at hand, so the chunk may grow
	 * back; but the same suggestion twice in a row is a fixed cap on blocks
	 * (a free tier's ten blocks), and growing back would only be refused.
	 */
	if (!st->shrink_keeps_ceiling ||
		(st->shrink_blocks > 0 && st->shrink_blocks == st->last_suggestion))
		st->chunk_ceiling = st->chunk;
	st->last_suggestion = st->shrink_blocks;
	st->shrink_blocks = 0;
	st->shrink_keeps_ceiling = false;
	return want;
}

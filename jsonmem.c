/*-------------------------------------------------------------------------
 *
 * jsonmem.c
 *		  Where jansson allocates: palloc, and a bump arena for the trees of
 *		  parsed answers.
 *
 * jansson's allocation functions are global to the process, so this file
 * owns them for the whole backend: json_set_alloc_funcs is called once, from
 * _PG_init (EwJsonInit).  Outside a parse every jansson allocation is a
 * palloc in CurrentMemoryContext, freed with pfree.
 *
 * While an answer is parsed (EwJsonArenaBegin .. EwJsonArenaEnd, around
 * json_loadb in decode.c), small allocations are instead carved out of
 * 1 MB blocks by bumping a pointer.  An answer's tree is a few hundred
 * thousand small objects, strings and hash tables that all die together:
 * carving them costs a few instructions each where palloc keeps free lists
 * and rounds sizes up, and the blocks are kept in a pool for the next
 * answer, so that the pages of a batch's tree are not given back to the
 * kernel and faulted in again for every batch (13 % of a full-row scan's
 * profile was page faults).
 *
 * A tree's blocks belong to a small memory context made for it under the
 * context the caller named; when that context is reset or deleted, its
 * reset callback hands the blocks back to the pool.  So a tree dies with
 * its context, as a palloc'd one would, also when an ERROR unwinds the scan.
 * Freeing a chunk of a block is a no-op (jansson frees while it parses, and
 * the JSON-RPC answers are edited after, so json_pfree may be given one at
 * any time): blocks are aligned to their size, and json_pfree tells them
 * from palloc'd memory by looking the block's address up among the live
 * ones.  Allocations above EW_ARENA_LARGE are palloc'd in the tree's
 * context.  Nothing here raises an ERROR inside jansson: a failure is a
 * NULL, which jansson reports as out of memory.
 *
 * The pool keeps at most EW_ARENA_POOL_MAX blocks; they are all given back
 * at the end of each transaction (EwJsonArenaInit's callback), so an idle
 * backend holds none, also after an ERROR.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/mman.h>

#include "access/xact.h"
#include "ethwhale_fdw.h"
#include "utils/memdebug.h"
#include "utils/memutils.h"

#define EW_ARENA_BLOCK		((size_t) 1024 * 1024)	/* size and alignment */
#define EW_ARENA_LARGE		((size_t) 64 * 1024)	/* above: palloc */
#define EW_ARENA_POOL_MAX	64		/* blocks kept for the next answer */

/* The head of a block: the next block of its tree, or of the pool. */
typedef struct ArenaBlock
{
	struct ArenaBlock *next;
} ArenaBlock;

#define ARENA_HDR	MAXALIGN(sizeof(ArenaBlock))

/* One parsed answer's blocks, allocated in its own context. */
typedef struct ArenaTree
{
	MemoryContextCallback cb;	/* hands the blocks back on reset */
	MemoryContext cxt;			/* the tree's context: large chunks */
	ArenaBlock *blocks;			/* newest first */
} ArenaTree;

/* The tree being parsed (NULL: plain palloc) and its current block. */
static ArenaTree *cur_tree = NULL;
static char *cur_pos = NULL;
static char *cur_end = NULL;

/* Blocks of live trees, for json_pfree; in TopMemoryContext. */
static ArenaBlock **live = NULL;
static int	nlive = 0;
static int	live_cap = 0;

/* Blocks ready for reuse. */
static ArenaBlock *pool = NULL;
static int	npool = 0;

/*
 * map_block
 *		A new block of EW_ARENA_BLOCK bytes aligned to its size, or NULL:
 *		twice the size is mapped and the unaligned ends unmapped.
 */
static ArenaBlock *
map_block(void)
{
	size_t		len = 2 * EW_ARENA_BLOCK;
	char	   *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
						 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char	   *start;

	if (p == MAP_FAILED)
		return NULL;
	start = (char *) TYPEALIGN(EW_ARENA_BLOCK, p);
	if (start > p)
		munmap(p, start - p);
	if (start + EW_ARENA_BLOCK < p + len)
		munmap(start + EW_ARENA_BLOCK, p + len - (start + EW_ARENA_BLOCK));
	return (ArenaBlock *) start;
}

/*
 * new_block
 *		A block for the tree being parsed, from the pool or mapped, recorded
 *		as live; false when memory is short.
 */
static bool
new_block(void)
{
	ArenaBlock *b;

	if (nlive == live_cap)
	{
		int			cap = live_cap ? live_cap * 2 : 64;
		ArenaBlock **l = MemoryContextAllocExtended(TopMemoryContext,
													 sizeof(ArenaBlock *) * cap,
													 MCXT_ALLOC_NO_OOM);

		if (l == NULL)
			return false;
		if (nlive > 0)
			memcpy(l, live, sizeof(ArenaBlock *) * nlive);
		if (live)
			pfree(live);
		live = l;
		live_cap = cap;
	}
	if (pool != NULL)
	{
		b = pool;
		pool = b->next;
		npool--;
		VALGRIND_MAKE_MEM_UNDEFINED(b, EW_ARENA_BLOCK);
	}
	else if ((b = map_block()) == NULL)
		return false;
	b->next = cur_tree->blocks;
	cur_tree->blocks = b;
	live[nlive++] = b;
	cur_pos = (char *) b + ARENA_HDR;
	cur_end = (char *) b + EW_ARENA_BLOCK;
	return true;
}

/* Whether ptr is in a block of a live tree. */
static bool
in_live_block(const void *ptr)
{
	ArenaBlock *b = (ArenaBlock *) TYPEALIGN_DOWN(EW_ARENA_BLOCK, (uintptr_t) ptr);
	int			i;

	for (i = nlive - 1; i >= 0; i--)
		if (live[i] == b)
			return true;
	return false;
}

/*
 * release_tree
 *		The reset callback of a tree's context: its blocks are no longer
 *		live; they go back to the pool, or to the kernel when it is full.
 */
static void
release_tree(void *arg)
{
	ArenaTree  *t = (ArenaTree *) arg;
	ArenaBlock *b = t->blocks;

	if (t == cur_tree)
		cur_tree = NULL;		/* an ERROR inside a parse cannot happen */
	while (b != NULL)
	{
		ArenaBlock *next = b->next;
		int			i;

		for (i = 0; i < nlive; i++)
			if (live[i] == b)
			{
				live[i] = live[--nlive];
				break;
			}
		if (npool < EW_ARENA_POOL_MAX)
		{
			b->next = pool;
			pool = b;
			npool++;
			VALGRIND_MAKE_MEM_NOACCESS((char *) b + ARENA_HDR, EW_ARENA_BLOCK - ARENA_HDR);
		}
		else
			munmap(b, EW_ARENA_BLOCK);
		b = next;
	}
	t->blocks = NULL;
}

static void *
json_palloc(size_t size)
{
	void	   *p;

	if (cur_tree == NULL)
		/* Never throw inside jansson: report failure by returning NULL. */
		return MemoryContextAllocExtended(CurrentMemoryContext, size,
										  MCXT_ALLOC_NO_OOM | MCXT_ALLOC_HUGE);
	if (size > EW_ARENA_LARGE)
		return MemoryContextAllocExtended(cur_tree->cxt, size,
										  MCXT_ALLOC_NO_OOM | MCXT_ALLOC_HUGE);
	size = MAXALIGN(size);
	if (cur_pos == NULL || (size_t) (cur_end - cur_pos) < size)
	{
		if (!new_block())
			return NULL;
	}
	p = cur_pos;
	cur_pos += size;
	VALGRIND_MAKE_MEM_UNDEFINED(p, size);
	return p;
}

static void
json_pfree(void *ptr)
{
	if (ptr == NULL)
		return;
	if (nlive > 0 && in_live_block(ptr))
		return;					/* freed with its tree */
	pfree(ptr);
}

/*
 * EwJsonInit
 *		Route every jansson allocation of this backend through this file.
 *		Called once from _PG_init, before any jansson call, so that nothing
 *		is ever allocated with malloc and released with pfree or the other
 *		way round.
 */
void
EwJsonInit(void)
{
	json_set_alloc_funcs(json_palloc, json_pfree);
}

/*
 * EwJsonFree
 *		Free what a jansson function returned (json_dumps' text).
 */
void
EwJsonFree(void *ptr)
{
	json_pfree(ptr);
}

/*
 * EwJsonArenaBegin
 *		Make the tree of the answer about to be parsed die with cxt: until
 *		EwJsonArenaEnd, jansson allocates from the arena.  Not nested.
 */
void
EwJsonArenaBegin(MemoryContext cxt)
{
	MemoryContext tcxt = AllocSetContextCreate(cxt, "ethwhale_fdw JSON answer",
											   ALLOCSET_SMALL_SIZES);
	ArenaTree  *t = MemoryContextAllocZero(tcxt, sizeof(ArenaTree));

	Assert(cur_tree == NULL);
	t->cxt = tcxt;
	t->cb.func = release_tree;
	t->cb.arg = t;
	MemoryContextRegisterResetCallback(tcxt, &t->cb);
	cur_tree = t;
	cur_pos = cur_end = NULL;
}

/*
 * EwJsonArenaEnd
 *		Back to palloc.  keep: the parse gave a tree; otherwise what jansson
 *		left is released now.
 */
void
EwJsonArenaEnd(bool keep)
{
	ArenaTree  *t = cur_tree;

	cur_tree = NULL;
	cur_pos = cur_end = NULL;
	if (t != NULL && !keep)
		MemoryContextDelete(t->cxt);	/* runs release_tree */
}

/*
 * trim_pool
 *		Give the pooled blocks back to the kernel.  Blocks of live trees
 *		stay (their contexts may outlive the transaction: a held cursor).
 */
static void
trim_pool(void)
{
	while (pool != NULL)
	{
		ArenaBlock *next = pool->next;

		munmap(pool, EW_ARENA_BLOCK);
		pool = next;
	}
	npool = 0;
}

/* At the end of every transaction, the pool goes. */
static void
trim_at_xact_end(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		trim_pool();
}

/*
 * EwJsonArenaInit
 *		Called once from _PG_init, after EwJsonInit: the pool is emptied at
 *		the end of each transaction.
 */
void
EwJsonArenaInit(void)
{
	RegisterXactCallback(trim_at_xact_end, NULL);
}

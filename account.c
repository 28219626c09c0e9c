/*-------------------------------------------------------------------------
 *
 * account.c
 *		  Scans of eth_account: the addresses a query names, read in
 *		  batches of EW_ACCOUNTS_PER_REQUEST at each block of the bounds, or
 *		  at the head.
 *
 * A node cannot list its accounts, so an account scan needs the addresses
 * (planning refuses it otherwise).  Without block bounds the accounts are
 * read at the head: the first answer says which block that is, and every
 * later batch asks for that block, so all rows of one scan agree.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "scan.h"
#include "utils/memutils.h"

/*
 * next_block_of_ranges
 *		Every address has been read at the current block: on to the next
 *		block of the ranges.
 */
static void
next_block_of_ranges(EwScanState *st)
{
	EwRange    *r = &st->ranges[st->cur_range];

	st->acct_next = 0;
	if (st->at_head || st->next_block >= r->hi)
	{
		if (++st->cur_range < st->nranges)
			st->next_block = st->ranges[st->cur_range].lo;
	}
	else
		st->next_block++;
}

/*
 * fetch_account_batch
 *		Ask for the next addresses at the current block; false when every
 *		address has been read at every block.
 */
static bool
fetch_account_batch(EwScanState *st)
{
	int			attempt = 0;

	/* done: the last answer stays, for a rescan that asks the same */
	if (st->cur_range >= st->nranges ||
		(st->cur_range == st->nranges - 1 && st->acct_next >= st->naccounts &&
		 (st->at_head || st->next_block >= st->ranges[st->cur_range].hi)))
	{
		st->exhausted = true;
		return false;
	}
	EwResetBatch(st);
	st->acct_block = NULL;
	while (st->cur_range < st->nranges)
	{
		int64		block;
		char	   *what;
		json_t	   *data;
		json_t	   *blk;
		bool		shrink;
		int			n;
		MemoryContext oldcxt;

		if (st->acct_next >= st->naccounts)
		{
			next_block_of_ranges(st);
			continue;
		}
		n = Min(EW_ACCOUNTS_PER_REQUEST, st->naccounts - st->acct_next);
		/*
		 * The head's number once known, so that all batches agree; a node
		 * API that cannot learn it from the answer asks for it first.
		 */
		if (st->at_head && st->head_block < 0 && st->api->accounts_need_head)
			st->head_block = EwFetchHead(st);
		block = st->at_head ? st->head_block : st->next_block;

		oldcxt = MemoryContextSwitchTo(st->batch_cxt);
		what = block < 0 ? psprintf("%d accounts at the head block", n) :
			psprintf("%d accounts at block " INT64_FORMAT, n, block);
		data = EwRequest(st, st->api->accounts_request(st, st->acct_next, n, block),
						 what, false, &attempt, &shrink);
		MemoryContextSwitchTo(EwAnswerCxt(st, data));
		blk = st->api->answer_accounts(st, data, what, block);
		MemoryContextSwitchTo(oldcxt);
		attempt = 0;
		if (blk == NULL)
		{
			/* beyond the head: like a block range, the scan ends there */
			st->cur_range = st->nranges;
			break;
		}
		if (st->at_head && st->head_block < 0)
			st->head_block = st->cur_block;
		st->dec.account_block = st->at_head ? -1 : st->cur_block;
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
 * EwNextAccountRow
 *		The next account of the scan, in the answer's block; false at the
 *		end.
 */
bool
EwNextAccountRow(EwScanState *st, json_t **blk, json_t **row)
{
	for (;;)
	{
		if (st->acct_block != NULL && st->acct_idx < st->acct_n)
		{
			*blk = st->acct_block;
			*row = st->api->account_row(st, st->acct_block, st->acct_idx++);
			return true;
		}
		if (st->exhausted || !fetch_account_batch(st))
			return false;
	}
}

/*-------------------------------------------------------------------------
 *
 * rpcanswers.c
 *		  The JSON-RPC node API's answers: replies matched to their calls by
 *		  id, assembled into the blocks and rows the scan walks (receipts
 *		  merged into transactions, logs grouped into blocks, accounts under
 *		  one block), the chain id, and the follow-up calls an answer needs
 *		  (receipts by hash on a node without eth_getBlockReceipts, the
 *		  blocks of logs, the head).
 *
 * The objects are assembled in the answer's memory (batch_cxt): jansson
 * allocates in CurrentMemoryContext, and the scan calls the answer
 * functions in that context.  jsonrpc.c builds the requests.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <inttypes.h>

#include "jsonrpc.h"
#include "utils/memutils.h"

static void
bad_answer_detail(EwScanState *st, const char *what, const char *problem,
				  const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("unexpected answer of server \"%s\" for %s: %s",
					st->server->servername, what, problem),
			 errdetail_internal("%s", detail),
			 errhint("The node may not follow the Ethereum JSON-RPC specification as Geth serves it.")));
}

static void
bad_answer(EwScanState *st, const char *what, const char *problem, json_t *j)
{
	bad_answer_detail(st, what, problem, psprintf("Got %s.", EwJsonExcerpt(j)));
}

/*
 * replies_of
 *		The replies of method m to the calls for keys[0..n-1] (ascending):
 *		the reply objects by position, NULL where the answer has none.
 *		Unless missing_ok, a missing reply is an error.
 */
static json_t **
replies_of(EwScanState *st, json_t *data, EwRpcMethod m, const int64 *keys,
		   int n, bool missing_ok, const char *what)
{
	json_t	  **out = palloc0(sizeof(json_t *) * Max(n, 1));
	size_t		i;
	int			k;

	for (i = 0; i < json_array_size(data); i++)
	{
		json_t	   *r = json_array_get(data, i);
		int64		key;
		EwRpcMethod rm;
		int			lo = 0,
					hi = n - 1;

		if (!EwRpcDecodeId(json_object_get(r, "id"), &key, &rm))
			bad_answer(st, what, "a reply to no call that was sent", r);
		if (rm != m)
			continue;
		while (lo <= hi)
		{
			int			mid = (lo + hi) / 2;

			if (keys[mid] == key)
			{
				lo = mid;
				break;
			}
			if (keys[mid] < key)
				lo = mid + 1;
			else
				hi = mid - 1;
		}
		if (lo > hi || lo >= n || keys[lo] != key || out[lo] != NULL)
			bad_answer(st, what, "a reply to no call that was sent", r);
		out[lo] = r;
	}
	if (!missing_ok)
		for (k = 0; k < n; k++)
			if (out[k] == NULL)
				bad_answer(st, what, psprintf("no reply to %s for " INT64_FORMAT,
											  EwRpcMethodName(m), keys[k]), data);
	return out;
}

/* A reply's result; NULL for an error left in the answer (benign). */
static json_t *
result_of(json_t *reply)
{
	json_t	   *error = json_object_get(reply, "error");

	if (error != NULL && !json_is_null(error))
		return NULL;
	return json_object_get(reply, "result");
}

/*
 * EwRpcQuantity
 *		The value of a hex quantity ("0x1a"), or -1 when j is not one within
 *		int64.
 */
int64
EwRpcQuantity(json_t *j)
{
	uint64		v;

	if (!json_is_string(j) || !EwParseUint64(json_string_value(j), &v) ||
		v > (uint64) PG_INT64_MAX)
		return -1;
	return (int64) v;
}

/* Set key to null unless the object has it (an optional field left out). */
static void
default_null(json_t *obj, const char *key)
{
	if (json_object_get(obj, key) == NULL)
		json_object_set_new(obj, key, json_null());
}

/*
 * merge_receipt
 *		The receipt fields of a transaction, into the transaction object:
 *		status (absent before Byzantium, which has "root"), gasUsed and
 *		contractAddress.
 */
static void
merge_receipt(EwScanState *st, json_t *tx, json_t *receipt, const char *what)
{
	json_t	   *h = json_object_get(tx, "hash");
	json_t	   *rh = json_is_object(receipt) ? json_object_get(receipt, "transactionHash") : NULL;
	static const char *const keys[] = {"status", "gasUsed", "contractAddress"};
	int			i;

	if (!json_is_object(receipt))
		bad_answer(st, what, "a receipt that is not an object", receipt);

	/*
	 * A transaction hash that is not one is the decoder's to report (as
	 * the value of column hash); a receipt of another transaction is this
	 * answer's fault.
	 */
	if (json_is_string(h) && EwIsHash(EwLowerHex(json_string_value(h))) &&
		(!json_is_string(rh) ||
		 pg_strcasecmp(json_string_value(h), json_string_value(rh)) != 0))
		bad_answer(st, what, psprintf("a receipt that is not of transaction %s",
									  json_string_value(h)), receipt);

	/*
	 * A field the receipt lacks stays missing in the transaction, so that
	 * decoding it is an error; only a pre-Byzantium receipt, which has
	 * "root" instead, has no status (NULL).
	 */
	for (i = 0; i < lengthof(keys); i++)
	{
		json_t	   *v = json_object_get(receipt, keys[i]);

		if (v != NULL)
			json_object_set(tx, keys[i], v);
		else if (i == 0 && json_object_get(receipt, "root") != NULL)
			json_object_set(tx, keys[i], json_null());
	}
}

/* A follow-up request of the answer being read (receipts, headers). */
static json_t *
follow_up(EwScanState *st, const char *body, const char *what, bool *shrink)
{
	int			attempt = 0;
	size_t		len = st->last_body_len;
	json_t	   *data;
	MemoryContext oldcxt = MemoryContextSwitchTo(st->batch_cxt);

	data = EwRequest(st, body, what, true, &attempt, shrink);
	MemoryContextSwitchTo(oldcxt);
	/* the chunk is sized by its own answer */
	st->last_body_len = len;
	return data;
}

/*
 * receipts_by_hash
 *		The receipts of txs[0..n-1] by eth_getTransactionReceipt, for a node
 *		without eth_getBlockReceipts: in batches of at most max_calls,
 *		halved when the node refuses one as too large.
 */
static void
receipts_by_hash(EwScanState *st, json_t **txs, int n, const char *what)
{
	EwRpcState *rs = ew_rpc_state(st);
	int			first = 0;

	while (first < n)
	{
		int			cnt = Min(n - first, rs->max_calls);
		StringInfoData buf;
		int64	   *keys = palloc(sizeof(int64) * cnt);
		json_t	   *data;
		json_t	  **replies;
		bool		shrink;
		int			i;

		EwRpcStartBatch(st, &buf);
		for (i = 0; i < cnt; i++)
		{
			json_t	   *h = json_object_get(txs[first + i], "hash");

			if (!json_is_string(h) || !EwIsHash(EwLowerHex(json_string_value(h))))
				bad_answer(st, what, "a transaction without a hash", txs[first + i]);
			keys[i] = first + i;
			EwRpcBeginCall(st, &buf, first + i, EW_RPC_RECEIPT);
			appendStringInfo(&buf, "[\"%s\"]}", EwLowerHex(json_string_value(h)));
		}
		appendStringInfoChar(&buf, ']');
		rs->receipt_calls += cnt;
		data = follow_up(st, buf.data, psprintf("the receipts of %s", what), &shrink);
		if (shrink)
		{
			if (cnt == 1)
				elog(ERROR, "ethwhale_fdw: server \"%s\" refuses a batch of one call",
					 st->server->servername);
			rs->max_calls = Max(1, cnt / 2);
			continue;
		}
		replies = replies_of(st, data, EW_RPC_RECEIPT, keys, cnt, false, what);
		for (i = 0; i < cnt; i++)
		{
			json_t	   *r = result_of(replies[i]);

			if (!json_is_object(r))
				bad_answer(st, what, psprintf("no receipt for transaction %s",
											  json_string_value(json_object_get(txs[first + i], "hash"))),
						   replies[i]);
			merge_receipt(st, txs[first + i], r, what);
		}
		first += cnt;
	}
}

/*
 * take_block
 *		Check the block answered for number n and make it what the scan
 *		walks: transactionCount set, optional keys present.
 */
static json_t *
take_block(EwScanState *st, json_t *res, int64 n, EwRpcBlockShape shape,
		   const char *what)
{
	json_t	   *txs;
	size_t		i;

	if (shape == EW_RPC_COUNT)
	{
		json_t	   *b = ew_json_object();
		int64		c = EwRpcQuantity(res);

		if (c < 0 || c > PG_INT32_MAX)
			bad_answer(st, what, psprintf("a transaction count for block " INT64_FORMAT
										  " that is not a hex number up to 2^31 - 1", n), res);
		json_object_set_new(b, "number", json_integer(n));
		json_object_set_new(b, "transactionCount", json_integer(c));
		return b;
	}
	if (!json_is_object(res))
		bad_answer(st, what, psprintf("a block that is not an object for block " INT64_FORMAT, n), res);
	if (EwRpcQuantity(json_object_get(res, "number")) != n)
	{
		json_t	   *num = json_object_get(res, "number");

		/* the keys come sorted: an excerpt of the block would not reach it */
		bad_answer_detail(st, what, psprintf("another block for block " INT64_FORMAT, n),
						  num ? psprintf("Got {\"number\":%s,...}.", EwJsonExcerpt(num)) :
						  psprintf("Got {...} without \"number\": %s.", EwJsonExcerpt(res)));
	}
	txs = json_object_get(res, "transactions");
	if (!json_is_array(txs))
		bad_answer(st, what, psprintf("block " INT64_FORMAT " without a transaction list", n), res);
	json_object_set_new(res, "transactionCount", json_integer(json_array_size(txs)));
	default_null(res, "baseFeePerGas");
	if (shape == EW_RPC_FULL)
		for (i = 0; i < json_array_size(txs); i++)
		{
			json_t	   *tx = json_array_get(txs, i);

			if (!json_is_object(tx))
				bad_answer(st, what, psprintf("block " INT64_FORMAT " with a transaction that is not an object", n), tx);
			default_null(tx, "to");
		}
	return res;
}

/*
 * block_receipts
 *		Merge the eth_getBlockReceipts reply into block b's transactions;
 *		false when the node does not serve that method.
 */
static bool
block_receipts(EwScanState *st, json_t *b, json_t *reply, const char *what)
{
	json_t	   *txs = json_object_get(b, "transactions");
	json_t	   *r;
	size_t		i;

	if (reply == NULL)
		return false;			/* asked for before the node said it has none */
	r = result_of(reply);
	if (r == NULL)
	{
		ew_rpc_state(st)->no_block_receipts = true;
		return false;
	}
	if (!json_is_array(r) || json_array_size(r) != json_array_size(txs))
		bad_answer(st, what, psprintf("receipts that do not match the transactions of block %s",
									  EwJsonExcerpt(json_object_get(b, "number"))), r);
	for (i = 0; i < json_array_size(txs); i++)
		merge_receipt(st, json_array_get(txs, i), json_array_get(r, i), what);
	return true;
}

/*
 * take_blocks
 *		The blocks nums[0..n-1] (ascending) of an answer to blocks_batch,
 *		into out; returns how many there are.  A null reply is a block the
 *		node does not have: beyond its head (or a gap in a test chain, as
 *		GraphQL's blocks() leaves it out).  Receipts a node did not send
 *		come by transaction hash.
 */
static int
take_blocks(EwScanState *st, json_t *data, const int64 *nums, int n,
			EwRpcBlockShape shape, bool receipts, json_t **out, const char *what)
{
	json_t	  **blocks = replies_of(st, data, shape == EW_RPC_COUNT ? EW_RPC_TX_COUNT : EW_RPC_BLOCK,
									nums, n, false, what);
	json_t	  **rcpts = receipts ? replies_of(st, data, EW_RPC_BLOCK_RECEIPTS, nums, n, true, what) : NULL;
	json_t	  **missing = NULL;
	int			nmissing = 0;
	int			got = 0;
	int			i;

	for (i = 0; i < n; i++)
	{
		json_t	   *res = result_of(blocks[i]);

		if (res == NULL || json_is_null(res))
			continue;
		out[got] = take_block(st, res, nums[i], shape, what);
		st->cur_block = nums[i];
		if (receipts && !block_receipts(st, out[got], rcpts[i], what))
		{
			json_t	   *txs = json_object_get(out[got], "transactions");
			size_t		k;

			if (missing == NULL)
				missing = palloc(sizeof(json_t *) * 1024);
			for (k = 0; k < json_array_size(txs); k++)
			{
				if (nmissing > 0 && nmissing % 1024 == 0)
					missing = repalloc(missing, sizeof(json_t *) * (nmissing + 1024));
				missing[nmissing++] = json_array_get(txs, k);
			}
		}
		got++;
	}
	if (nmissing > 0)
		receipts_by_hash(st, missing, nmissing, what);
	return got;
}

/*
 * take_logs
 *		The logs of an eth_getLogs answer for from..to, grouped into blocks
 *		of "number", "timestamp" (from blockTimestamp) and "logs"; the
 *		block numbers into *nums.
 */
static json_t *
take_logs(EwScanState *st, json_t *logs, int64 from, int64 to,
		  int64 **nums, int *nblocks, bool *timeless, const char *what)
{
	json_t	   *blocks = json_array();
	json_t	   *cur = NULL;
	int64		prev = -1;
	size_t		i;

	if (!json_is_array(logs))
		bad_answer(st, what, "eth_getLogs' result is not a list", logs);
	*nums = palloc(sizeof(int64) * Max(1, Min(json_array_size(logs), (size_t) (to - from + 1))));
	*nblocks = 0;
	*timeless = false;
	for (i = 0; i < json_array_size(logs); i++)
	{
		json_t	   *log = json_array_get(logs, i);
		int64		n = json_is_object(log) ? EwRpcQuantity(json_object_get(log, "blockNumber")) : -1;
		json_t	   *ts;

		if (n < from || n > to || n < prev)
			bad_answer(st, what, "a log outside the blocks asked for, or out of order", log);
		if (json_is_true(json_object_get(log, "removed")))
			continue;
		if (n != prev)
		{
			cur = ew_json_object();
			json_object_set(cur, "number", json_object_get(log, "blockNumber"));
			ts = json_object_get(log, "blockTimestamp");
			if (ts != NULL && !json_is_null(ts))
				json_object_set(cur, "timestamp", ts);
			else
				*timeless = true;
			json_object_set_new(cur, "logs", json_array());
			json_array_append_new(blocks, cur);
			(*nums)[(*nblocks)++] = n;
			prev = n;
		}
		json_array_append(json_object_get(cur, "logs"), log);
	}
	return blocks;
}

/*
 * log_blocks
 *		The blocks nums[0..n-1] that have logs, asked for after eth_getLogs:
 *		their headers for the time (a node that sends no blockTimestamp), or
 *		in full for a pushed join to eth_tx; their data set into blocks.
 */
static void
log_blocks(EwScanState *st, json_t *blocks, const int64 *nums, int n,
		   const char *what)
{
	EwRpcState *rs = ew_rpc_state(st);
	EwRpcBlockShape shape = rs->log_txs ? EW_RPC_FULL : EW_RPC_HASHES;
	bool		receipts = rs->log_txs && rs->receipts;
	int			per_block = receipts && !rs->no_block_receipts ? 2 : 1;
	int			first = 0;

	while (first < n)
	{
		int			cnt = Min(n - first, Max(1, rs->max_calls / per_block));
		json_t	  **got = palloc0(sizeof(json_t *) * cnt);
		json_t	   *data;
		bool		shrink;
		int			i;

		rs->header_calls += cnt;
		data = follow_up(st, EwRpcBlocksBatch(st, nums + first, cnt, shape,
										  receipts && !rs->no_block_receipts),
						 psprintf("the blocks of the logs of %s", what), &shrink);
		if (shrink)
		{
			if (cnt == 1)
				elog(ERROR, "ethwhale_fdw: server \"%s\" refuses a batch of one block",
					 st->server->servername);
			rs->max_calls = Max(1, cnt * per_block / 2);
			continue;
		}
		if (take_blocks(st, data, nums + first, cnt, shape, receipts, got, what) < cnt)
			bad_answer(st, what, "no block for a block with logs", data);
		for (i = 0; i < cnt; i++)
		{
			json_t	   *b = json_array_get(blocks, first + i);
			json_t	   *logs = json_object_get(b, "logs");
			size_t		k;

			json_object_set(b, "timestamp", json_object_get(got[i], "timestamp"));
			if (!rs->log_txs)
				continue;
			for (k = 0; k < json_array_size(logs); k++)
			{
				json_t	   *log = json_array_get(logs, k);
				int64		idx = EwRpcQuantity(json_object_get(log, "transactionIndex"));
				json_t	   *tx = json_array_get(json_object_get(got[i], "transactions"), idx);

				if (!json_is_object(tx) || !json_is_string(json_object_get(tx, "hash")) ||
					!json_is_string(json_object_get(log, "transactionHash")) ||
					pg_strcasecmp(json_string_value(json_object_get(tx, "hash")),
								  json_string_value(json_object_get(log, "transactionHash"))) != 0)
					bad_answer(st, what, "a log whose transaction is not in its block", log);
				json_object_set(log, "transaction", tx);
			}
		}
		first += cnt;
	}
}

json_t *
EwRpcAnswerBlocks(EwScanState *st, json_t *data, int64 from, int64 to,
				  const char *what, int64 *covered_to)
{
	EwRpcState *rs = ew_rpc_state(st);
	json_t	   *blocks;
	int64	   *nums;
	int			n;

	if (st->opts.table == EW_TABLE_TOKEN_TRANSFER)
	{
		json_t	  **reply = replies_of(st, data, EW_RPC_LOGS, &from, 1, false, what);
		bool		timeless;

		blocks = take_logs(st, result_of(reply[0]), from, to, &nums, &n, &timeless, what);
		if (timeless && rs->need_time)
			rs->no_log_time = true;
		if (n > 0 && (rs->log_txs || (timeless && rs->need_time)))
			log_blocks(st, blocks, nums, n, what);
		st->cur_block = to;
		*covered_to = to;
		return blocks;
	}
	else
	{
		json_t	  **got = palloc0(sizeof(json_t *) * (to - from + 1));
		int			i;

		nums = EwRpcBlockNumbers(from, to);
		n = take_blocks(st, data, nums, (int) (to - from + 1), rs->shape,
						rs->receipts, got, what);
		blocks = json_array();
		for (i = 0; i < n; i++)
			json_array_append(blocks, got[i]);
		/* the blocks after the last one the node has are beyond its head */
		*covered_to = n > 0 ? st->cur_block : from - 1;
		return blocks;
	}
}

/*
 * plain_result
 *		The result of the answer to a plain call (plain_call in jsonrpc.c)
 *		of method m; NULL when the answer has none.
 */
static json_t *
plain_result(json_t *data, EwRpcMethod m)
{
	int64		n;
	EwRpcMethod rm;
	json_t	   *r = json_array_get(data, 0);

	if (EwRpcDecodeId(json_object_get(r, "id"), &n, &rm) && rm == m)
		return result_of(r);
	return NULL;
}

int64
EwRpcAnswerHead(EwScanState *st, json_t *data)
{
	int64		head = EwRpcQuantity(plain_result(data, EW_RPC_HEAD));

	if (head < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("could not read the head block number from server \"%s\"",
						st->server->servername),
				 errdetail("Answer: %s", EwJsonExcerpt(data))));
	return head;
}

int64
EwRpcAnswerChain(EwScanState *st, json_t *data)
{
	return EwChainIdOf(st, plain_result(data, EW_RPC_CHAIN_ID), "eth_chainId", data);
}

/* The head's number, for the answer being read (no batch reset). */
static int64
fetch_head(EwScanState *st)
{
	bool		shrink;
	json_t	   *data;
	MemoryContext oldcxt = MemoryContextSwitchTo(st->batch_cxt);

	data = follow_up(st, EwRpcHeadRequest(st), "the head block", &shrink);
	MemoryContextSwitchTo(oldcxt);
	return EwRpcAnswerHead(st, data);
}

/* The last block a call's id can name (no chain will get there). */
#define EW_RPC_MAX_BLOCK ((PG_INT64_MAX - EW_RPC_ID_STRIDE) / EW_RPC_ID_STRIDE)

/*
 * EwRpcClipTo
 *		Nodes refuse eth_getLogs beyond their head (Geth: "block range
 *		extends beyond current head block"): log ranges stop at the head,
 *		read when a range reaches past the last one read.  No range goes
 *		beyond EW_RPC_MAX_BLOCK: a bound near PG_INT64_MAX (block =
 *		9223372036854775807) would overflow the ids and block_numbers' loop.
 */
int64
EwRpcClipTo(EwScanState *st, int64 from, int64 to)
{
	EwRpcState *rs = ew_rpc_state(st);

	to = Min(to, EW_RPC_MAX_BLOCK);
	if (st->opts.table != EW_TABLE_TOKEN_TRANSFER)
		return to;
	if (rs->head < 0 || to > rs->head)
		rs->head = fetch_head(st);
	return Min(to, rs->head);
}

/*
 * EwRpcAnswerTx
 *		The transaction of a hash lookup with its block ("number" and
 *		"timestamp", or the header when block columns are needed), or NULL
 *		when the node does not know it or it is pending.
 */
json_t *
EwRpcAnswerTx(EwScanState *st, json_t *data)
{
	EwRpcState *rs = ew_rpc_state(st);
	int64		zero = 0;
	json_t	  **tx = replies_of(st, data, EW_RPC_TX, &zero, 1, false, "the transaction");
	json_t	   *t = result_of(tx[0]);
	json_t	   *blk;
	json_t	   *ts;
	int64		n;

	if (!json_is_object(t))
		return NULL;
	if (!json_is_string(json_object_get(t, "hash")) || rs->asked_hash == NULL ||
		pg_strcasecmp(json_string_value(json_object_get(t, "hash")), rs->asked_hash) != 0)
		bad_answer(st, "the transaction", psprintf("another transaction than %s",
												   rs->asked_hash ? rs->asked_hash : "?"), t);
	n = EwRpcQuantity(json_object_get(t, "blockNumber"));
	if (n < 0)
		return NULL;			/* pending */
	st->cur_block = n;
	default_null(t, "to");
	if (rs->receipts)
	{
		json_t	  **r = replies_of(st, data, EW_RPC_RECEIPT, &zero, 1, false, "the transaction");

		if (!json_is_object(result_of(r[0])))
			bad_answer(st, "the transaction", "no receipt for the transaction", r[0]);
		merge_receipt(st, t, result_of(r[0]), "the transaction");
	}
	ts = json_object_get(t, "blockTimestamp");
	if (rs->hash_block || ((ts == NULL || json_is_null(ts)) && rs->need_time))
	{
		bool		shrink;
		json_t	   *got = NULL;

		rs->header_calls++;
		data = follow_up(st, EwRpcBlocksBatch(st, &n, 1, EW_RPC_HASHES, false),
						 psprintf("block " INT64_FORMAT, n), &shrink);
		if (shrink || take_blocks(st, data, &n, 1, EW_RPC_HASHES, false, &got,
								  "the transaction's block") < 1)
			bad_answer(st, "the transaction", "no block for the transaction", data);
		blk = got;
	}
	else
	{
		blk = ew_json_object();
		json_object_set(blk, "number", json_object_get(t, "blockNumber"));
		json_object_set(blk, "timestamp", ts ? ts : json_null());
	}
	json_object_set_new(t, "block", blk);
	return t;
}

/*
 * EwRpcAnswerAccounts
 *		The accounts of an answer, as a block {"number", "accounts": [...]}
 *		of objects with address, balance, transactionCount and code; NULL
 *		when the block is beyond the head.
 */
json_t *
EwRpcAnswerAccounts(EwScanState *st, json_t *data, const char *what,
					int64 expect)
{
	EwRpcState *rs = ew_rpc_state(st);
	static const EwRpcMethod ms[3] = {EW_RPC_BALANCE, EW_RPC_NONCE, EW_RPC_CODE};
	static const char *const keys[3] = {"balance", "transactionCount", "code"};
	json_t	   *blk = ew_json_object();
	json_t	   *list = json_array();
	int64	   *idx;
	int			na = st->naccounts - rs->acct_first;
	int			i,
				k;

	na = Min(na, EW_ACCOUNTS_PER_REQUEST);
	idx = palloc(sizeof(int64) * na);
	for (i = 0; i < na; i++)
	{
		idx[i] = rs->acct_first + i;
		json_array_append_new(list, ew_json_object());
		json_object_set_new(json_array_get(list, i), "address",
							json_string(st->accounts[rs->acct_first + i]));
	}
	for (k = 0; k < 3; k++)
	{
		json_t	  **r = replies_of(st, data, ms[k], idx, na, true, what);

		for (i = 0; i < na; i++)
		{
			json_t	   *res;

			if (r[i] == NULL)
				continue;
			res = result_of(r[i]);
			if (res == NULL)
				return NULL;	/* "header not found": beyond the head */
			if (json_is_null(res))
				ereport(ERROR,
						(errcode(ERRCODE_FDW_ERROR),
						 errmsg("could not read %s from server \"%s\": %s of %s answered null",
								what, st->server->servername, EwRpcMethodName(ms[k]),
								st->accounts[rs->acct_first + i]),
						 errdetail("A node without the state of block " INT64_FORMAT " answers null (Besu).", expect),
						 errhint("Reading accounts at past blocks needs an archive node (e.g. a provider's archive tier, or besu --data-storage-format=FOREST --pruning-enabled=false); without block bounds eth_account reads the head.")));
			json_object_set(json_array_get(list, i), keys[k], res);
		}
	}
	json_object_set_new(blk, "number", json_integer(expect));
	json_object_set_new(blk, "accounts", list);
	st->cur_block = expect;
	return blk;
}

json_t *
EwRpcAccountRow(EwScanState *st, json_t *block, int i)
{
	json_t	   *a = json_array_get(json_object_get(block, "accounts"), i);

	if (!json_is_object(a))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("the answer of server \"%s\" has no account %d in block " INT64_FORMAT,
						st->server->servername, i, st->cur_block)));
	return a;
}

/*-------------------------------------------------------------------------
 *
 * jsonrpc.c
 *		  The JSON-RPC node API of ethwhale_fdw, which every node (Geth,
 *		  Reth, Nethermind, Erigon, Besu) and every hosted provider serves:
 *		  the batches of eth_* calls a scan sends, and the blocks and rows
 *		  assembled from their answers.
 *
 * Per table (the shapes are go-ethereum's internal/ethapi and the
 * execution-apis specification):
 *	eth_block, eth_tx	a batch of eth_getBlockByNumber per chunk of blocks,
 *						with transaction objects only when a transaction
 *						column is needed (count(*) asks
 *						eth_getBlockTransactionCountByNumber); the receipt
 *						columns add eth_getBlockReceipts per block, or, on a
 *						node without it, batches of eth_getTransactionReceipt
 *	hash = ...			eth_getTransactionByHash (+ its receipt)
 *	eth_token_transfer	eth_getLogs over the chunk with the pushed address
 *						lists and the Transfer topic; the block's time from
 *						each log's blockTimestamp, or the headers when the
 *						node does not send it; a pushed join to eth_tx asks
 *						for the blocks with logs in full
 *	eth_account			batches of eth_getBalance, eth_getTransactionCount
 *						and eth_getCode at the block (or the head, read
 *						first with eth_blockNumber)
 * The scan walks blocks with "number", "timestamp" and their rows; a
 * transaction gets the fields of its receipt (status, gasUsed,
 * contractAddress) merged in (rpcanswers.c).  The decoder reads
 * EwField.rpc_key.  This file builds the requests, sets up a scan's state
 * and says what is sent for EXPLAIN.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <inttypes.h>

#include "jsonrpc.h"
#include "utils/memutils.h"

/* Calls in one batch until the node says fewer (Geth allows 1,000). */
#define EW_RPC_DEFAULT_MAX_CALLS 1000

/*
 * The keys of blocks, transactions, receipts and logs (go-ethereum's
 * RPCMarshalBlock, RPCTransaction and receipt marshalling) that neither the
 * decoder (EwField.rpc_key) nor rpcanswers.c reads: jsonfast.c leaves them
 * out of the parsed result.  logsBloom alone is 43 % of a block's receipts;
 * with the signature, access list and fee caps they are over half of what
 * a full block and its receipts parse into.  Keys both read and not in one
 * shape ("nonce", "to", "from") are kept; check_answer_skip makes sure no
 * column's key is here.
 */
static const char *const answer_skip[] = {
	/* block headers */
	"logsBloom", "mixHash", "sha3Uncles", "stateRoot", "transactionsRoot",
	"receiptsRoot", "withdrawalsRoot", "difficulty", "totalDifficulty",
	"extraData", "size", "uncles", "withdrawals", "blobGasUsed",
	"excessBlobGas", "parentBeaconBlockRoot", "requestsHash",
	/* transactions (blockHash also of receipts and logs) */
	"blockHash", "type", "chainId", "v", "r", "s", "yParity",
	"maxFeePerGas", "maxPriorityFeePerGas", "maxFeePerBlobGas",
	"accessList", "blobVersionedHashes", "authorizationList",
	/* receipts: their logs too (eth_token_transfer asks eth_getLogs) */
	"cumulativeGasUsed", "effectiveGasPrice", "blobGasPrice", "logs",
	NULL
};

static const char *const method_names[EW_RPC_NUM_METHODS] = {
	"eth_getBlockByNumber", "eth_getBlockReceipts",
	"eth_getBlockTransactionCountByNumber", "eth_getLogs",
	"eth_getTransactionByHash", "eth_getTransactionReceipt",
	"eth_getBalance", "eth_getTransactionCount", "eth_getCode",
	"eth_blockNumber", "eth_chainId"
};

const char *
EwRpcMethodName(EwRpcMethod m)
{
	return method_names[m];
}

/*
 * EwRpcDecodeId
 *		The number and method a reply's id names; false for an id that is
 *		not one of ours.
 */
bool
EwRpcDecodeId(json_t *id, int64 *n, EwRpcMethod *m)
{
	json_int_t	v;

	if (!json_is_integer(id) || (v = json_integer_value(id)) < 0)
		return false;
	*n = v / EW_RPC_ID_STRIDE;
	*m = (EwRpcMethod) (v % EW_RPC_ID_STRIDE);
	return *m < EW_RPC_NUM_METHODS;
}

/* ---------------------------------------------------------------------
 * Requests
 * ---------------------------------------------------------------------
 */

/* Start a call in a batch: {"jsonrpc":"2.0","id":…,"method":…,"params": */
void
EwRpcBeginCall(EwScanState *st, StringInfo buf, int64 n, EwRpcMethod m)
{
	EwRpcState *rs = ew_rpc_state(st);

	appendStringInfo(buf, "%s{\"jsonrpc\":\"2.0\",\"id\":" INT64_FORMAT ",\"method\":\"%s\",\"params\":",
					 buf->len > 1 ? "," : "", n * EW_RPC_ID_STRIDE + m, method_names[m]);
	rs->calls++;
	rs->last_calls++;
}

void
EwRpcStartBatch(EwScanState *st, StringInfo buf)
{
	initStringInfo(buf);
	appendStringInfoChar(buf, '[');
	ew_rpc_state(st)->last_calls = 0;
}

/* Block calls for each of nums[0..n-1], in one batch. */
char *
EwRpcBlocksBatch(EwScanState *st, const int64 *nums, int n,
			 EwRpcBlockShape shape, bool receipts)
{
	StringInfoData buf;
	int			i;

	EwRpcStartBatch(st, &buf);
	for (i = 0; i < n; i++)
	{
		if (shape == EW_RPC_COUNT)
		{
			EwRpcBeginCall(st, &buf, nums[i], EW_RPC_TX_COUNT);
			appendStringInfo(&buf, "[\"0x%" PRIx64 "\"]}", (uint64_t) nums[i]);
			continue;
		}
		EwRpcBeginCall(st, &buf, nums[i], EW_RPC_BLOCK);
		appendStringInfo(&buf, "[\"0x%" PRIx64 "\",%s]}", (uint64_t) nums[i],
						 shape == EW_RPC_FULL ? "true" : "false");
		if (receipts)
		{
			EwRpcBeginCall(st, &buf, nums[i], EW_RPC_BLOCK_RECEIPTS);
			appendStringInfo(&buf, "[\"0x%" PRIx64 "\"]}", (uint64_t) nums[i]);
		}
	}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

/* from, from + 1, ..., to */
int64 *
EwRpcBlockNumbers(int64 from, int64 to)
{
	int64	   *nums = palloc(sizeof(int64) * (to - from + 1));
	int64		b;

	for (b = from; b <= to; b++)
		nums[b - from] = b;
	return nums;
}

static char *
rpc_chunk_request(EwScanState *st, int64 from, int64 to)
{
	EwRpcState *rs = ew_rpc_state(st);

	if (st->opts.table == EW_TABLE_TOKEN_TRANSFER)
	{
		StringInfoData buf;

		EwRpcStartBatch(st, &buf);
		resetStringInfo(&buf);	/* one call, not a batch */
		EwRpcBeginCall(st, &buf, from, EW_RPC_LOGS);
		appendStringInfo(&buf, "[{\"fromBlock\":\"0x%" PRIx64 "\",\"toBlock\":\"0x%" PRIx64 "\"%s}]}",
						 (uint64_t) from, (uint64_t) to, st->log_vars ? st->log_vars : "");
		return buf.data;
	}
	return EwRpcBlocksBatch(st, EwRpcBlockNumbers(from, to), (int) (to - from + 1),
						rs->shape, rs->receipts && !rs->no_block_receipts);
}

static char *
rpc_hash_request(EwScanState *st, const char *hash)
{
	StringInfoData buf;

	ew_rpc_state(st)->asked_hash = pstrdup(hash);
	EwRpcStartBatch(st, &buf);
	EwRpcBeginCall(st, &buf, 0, EW_RPC_TX);
	appendStringInfo(&buf, "[\"%s\"]}", hash);
	if (ew_rpc_state(st)->receipts)
	{
		EwRpcBeginCall(st, &buf, 0, EW_RPC_RECEIPT);
		appendStringInfo(&buf, "[\"%s\"]}", hash);
	}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

/* A request of one call without parameters, not in a batch. */
static char *
plain_call(EwScanState *st, EwRpcMethod m)
{
	StringInfoData buf;

	initStringInfo(&buf);
	EwRpcBeginCall(st, &buf, 0, m);
	appendStringInfoString(&buf, "[]}");
	return buf.data;
}

char *
EwRpcHeadRequest(EwScanState *st)
{
	return plain_call(st, EW_RPC_HEAD);
}

static char *
rpc_chain_request(EwScanState *st)
{
	return plain_call(st, EW_RPC_CHAIN_ID);
}

/*
 * rpc_accounts_request
 *		The accounts first .. first+n-1 at block: the calls the columns
 *		need, for each.  The head's number is known by then
 *		(accounts_need_head).
 */
static char *
rpc_accounts_request(EwScanState *st, int first, int n, int64 block)
{
	EwRpcState *rs = ew_rpc_state(st);
	StringInfoData buf;
	EwRpcMethod ms[3];
	int			nm = 0;
	int			i,
				k;

	if (rs->acct_balance)
		ms[nm++] = EW_RPC_BALANCE;
	if (rs->acct_nonce)
		ms[nm++] = EW_RPC_NONCE;
	if (rs->acct_code)
		ms[nm++] = EW_RPC_CODE;
	if (nm == 0)
		ms[nm++] = EW_RPC_NONCE;	/* the address alone: any call says the
									 * block exists */
	rs->acct_first = first;
	EwRpcStartBatch(st, &buf);
	for (i = first; i < first + n; i++)
		for (k = 0; k < nm; k++)
		{
			EwRpcBeginCall(st, &buf, i, ms[k]);
			appendStringInfo(&buf, "[\"%s\",\"0x%" PRIx64 "\"]}",
							 st->accounts[i], (uint64_t) block);
		}
	appendStringInfoChar(&buf, ']');
	return buf.data;
}

/* ---------------------------------------------------------------------
 * Set-up and EXPLAIN
 * ---------------------------------------------------------------------
 */

/*
 * check_answer_skip
 *		What the parse leaves out is no column's: a key added to a field
 *		of catalog.c and left in answer_skip would read as missing.  Once
 *		per backend, in every build (every JSON-RPC test would fail).
 */
static void
check_answer_skip(void)
{
	static bool checked = false;
	int			k;

	if (checked)
		return;
	for (k = 0; k < EW_NUM_TABLE_KINDS; k++)
	{
		int			n;
		int			i;
		const EwField *f = EwTableFields((EwTableKind) k, &n);
		const char *const *a;

		for (i = 0; i < n; i++)
			for (a = answer_skip; *a != NULL; a++)
				if (f[i].rpc_key != NULL && strcmp(f[i].rpc_key, *a) == 0)
					elog(ERROR, "ethwhale_fdw: JSON-RPC key \"%s\" is both read and left out", *a);
	}
	checked = true;
}

/*
 * rpc_begin
 *		What the scan's columns need of each block, transaction or account.
 */
static void
rpc_begin(EwScanState *st)
{
	EwRpcState *rs = palloc0(sizeof(EwRpcState));	/* the query's memory */
	bool		row_fields = false;
	bool		block_fields = false;
	int			i;

	st->api_state = rs;
	rs->max_calls = EW_RPC_DEFAULT_MAX_CALLS;
	rs->head = -1;
	check_answer_skip();
	for (i = 0; i < st->dec.ncols; i++)
	{
		const EwColumn *c = &st->dec.cols[i];
		const EwField *f = c->field;

		if (f->flags & EW_FIELD_RECEIPT)
			rs->receipts = true;
		if (c->nested)
			rs->log_txs = true;
		if (f->source == EW_SRC_BLOCK_TIME || f->source == EW_SRC_VALUE_USD ||
			f->source == EW_SRC_AMOUNT_USD)
			rs->need_time = true;
		if (f->source == EW_SRC_BLOCK)
			block_fields = true;
		else if (f->source != EW_SRC_BLOCK_NUMBER && f->source != EW_SRC_BLOCK_TIME)
			row_fields = true;
		if (strcmp(f->rpc_key, "balance") == 0)
			rs->acct_balance = true;
		else if (strcmp(f->rpc_key, "transactionCount") == 0 && f->source == EW_SRC_ROW)
			rs->acct_nonce = true;
		else if (strcmp(f->rpc_key, "code") == 0)
			rs->acct_code = true;
	}
	if (st->opts.table == EW_TABLE_BLOCK)
		rs->shape = EW_RPC_HASHES;
	else if (st->plan.count_only)
		rs->shape = rs->need_time || block_fields ? EW_RPC_HASHES : EW_RPC_COUNT;
	else
		rs->shape = row_fields ? EW_RPC_FULL : EW_RPC_HASHES;
	rs->hash_block = block_fields && st->plan.mode == EW_MODE_HASH;
}

/*
 * rpc_describe
 *		EXPLAIN VERBOSE: the calls of each request, from the same state the
 *		requests are built from.
 */
static char *
rpc_describe(EwScanState *st)
{
	EwRpcState *rs = ew_rpc_state(st);
	int			b = st->opts.batch_blocks;
	StringInfoData buf;

	initStringInfo(&buf);
	switch (st->plan.mode)
	{
		case EW_MODE_HASH:
			appendStringInfoString(&buf, "eth_getTransactionByHash");
			if (rs->receipts)
				appendStringInfoString(&buf, ", eth_getTransactionReceipt");
			if (rs->hash_block)
				appendStringInfoString(&buf, ", then eth_getBlockByNumber(hashes) of its block");
			return buf.data;
		case EW_MODE_ACCOUNT:
			appendStringInfo(&buf, "%s%s%s%s x%d accounts per batch, at %s",
							 rs->acct_balance ? "eth_getBalance" : "",
							 rs->acct_nonce ? (rs->acct_balance ? ", eth_getTransactionCount" : "eth_getTransactionCount") : "",
							 rs->acct_code ? (rs->acct_balance || rs->acct_nonce ? ", eth_getCode" : "eth_getCode") : "",
							 !(rs->acct_balance || rs->acct_nonce || rs->acct_code) ? "eth_getTransactionCount" : "",
							 EW_ACCOUNTS_PER_REQUEST,
							 st->bound_states == NIL ? "the head (eth_blockNumber first)" : "each block");
			return buf.data;
		default:
			break;
	}
	if (st->opts.table == EW_TABLE_TOKEN_TRANSFER)
	{
		appendStringInfo(&buf, "eth_getLogs(topics: [Transfer%s%s]%s) per %d blocks",
						 list_member_int(st->plan.addr_slots, EW_ADDR_FROM) ? ", from" :
						 list_member_int(st->plan.addr_slots, EW_ADDR_TO) ? ", any" : "",
						 list_member_int(st->plan.addr_slots, EW_ADDR_TO) ? ", to" : "",
						 list_member_int(st->plan.addr_slots, EW_ADDR_TOKEN) ? ", address: token" : "",
						 b);
		if (rs->log_txs)
			appendStringInfo(&buf, ", then eth_getBlockByNumber(full)%s of the blocks with logs",
							 rs->receipts ? " and eth_getBlockReceipts" : "");
		else if (rs->need_time)
			appendStringInfoString(&buf, ", block time from blockTimestamp");
		return buf.data;
	}
	if (rs->shape == EW_RPC_COUNT)
		appendStringInfo(&buf, "eth_getBlockTransactionCountByNumber x%d per batch", b);
	else
		appendStringInfo(&buf, "eth_getBlockByNumber(%s) x%d per batch",
						 rs->shape == EW_RPC_FULL ? "full" : "hashes", b);
	if (rs->receipts)
		appendStringInfo(&buf, ", eth_getBlockReceipts x%d", b);
	return buf.data;
}

/*
 * rpc_notes
 *		EXPLAIN ANALYZE: the calls sent and what the node made the scan do.
 */
static char *
rpc_notes(EwScanState *st)
{
	EwRpcState *rs = ew_rpc_state(st);
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, INT64_FORMAT " calls", rs->calls);
	if (rs->no_block_receipts)
		appendStringInfo(&buf, "; eth_getBlockReceipts not served, " INT64_FORMAT " receipts by eth_getTransactionReceipt",
						 rs->receipt_calls);
	if (rs->no_log_time)
		appendStringInfoString(&buf, "; logs without blockTimestamp, block times from the headers");
	if (rs->header_calls > 0)
		appendStringInfo(&buf, "; " INT64_FORMAT " blocks asked for after the logs or the transaction",
						 rs->header_calls);
	if (rs->max_calls < EW_RPC_DEFAULT_MAX_CALLS)
		appendStringInfo(&buf, "; batches of at most %d calls", rs->max_calls);
	return buf.data;
}

const EwNodeApi EwJsonRpcApi = {
	.name = "JSON-RPC",
	.hint_transient = "Check that the node is running and that endpoint is its JSON-RPC URL (e.g. http://127.0.0.1:8545); max_retries sets how often a request is retried.",
	.hint_fatal = "Check that endpoint is an Ethereum JSON-RPC URL (a node's --http endpoint or a provider's), or set the server option api 'graphql' for a GraphQL endpoint.",
	.begin = rpc_begin,
	.describe = rpc_describe,
	.notes = rpc_notes,
	.clip_to = EwRpcClipTo,
	.chunk_request = rpc_chunk_request,
	.hash_request = rpc_hash_request,
	.head_request = EwRpcHeadRequest,
	.chain_request = rpc_chain_request,
	.accounts_request = rpc_accounts_request,
	.check_answer = EwRpcCheckAnswer,
	.answer_blocks = EwRpcAnswerBlocks,
	.answer_head = EwRpcAnswerHead,
	.answer_chain = EwRpcAnswerChain,
	.answer_tx = EwRpcAnswerTx,
	.answer_accounts = EwRpcAnswerAccounts,
	.account_row = EwRpcAccountRow,
	.accounts_need_head = true,
	.answer_skip = answer_skip,
};

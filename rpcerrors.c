/*-------------------------------------------------------------------------
 *
 * rpcerrors.c
 *		  What a JSON-RPC node's answer means when it is not a plain result:
 *		  the limits of nodes and hosted providers (calls per batch, blocks
 *		  or results per eth_getLogs, answer size, rate), pruned history and
 *		  missing state, and everything else a node refuses.
 *
 * The texts and codes are those of Geth, Erigon, Reth, Nethermind, Besu
 * and the large providers (Alchemy, Infura, QuickNode, Ankr, Chainstack,
 * Cloudflare, ...), as collected in the project's node-limits notes; each
 * test below matches the family of messages one limit produces rather
 * than a single server's wording, because providers reword them.  What to
 * do follows request.c's policy:
 *	- a batch with too many calls, an answer too large, the node's own
 *	  time-out, or an eth_getLogs range or result count over a cap: ask for
 *	  fewer blocks (the number the node names, when it names one);
 *	- a rate limit (HTTP 429, -32005 with "rate", -32007, -32029, ...):
 *	  the same again after a back-off (Retry-After when given);
 *	- pruned history (4444) and missing state: final, with a hint naming
 *	  the block and what kind of node can answer;
 *	- anything else: final, naming the call.
 * Some errors are not failures of the request: a node without
 * eth_getBlockReceipts (the scan falls back to eth_getTransactionReceipt),
 * and "header not found" for state beyond the head (the scan ends there
 * as a block range does).  They are left in the answer for jsonrpc.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "jsonrpc.h"

/* Whether hay contains needle, ignoring ASCII case. */
static bool
has(const char *hay, const char *needle)
{
	size_t		n = strlen(needle);

	for (; *hay; hay++)
		if (pg_strncasecmp(hay, needle, n) == 0)
			return true;
	return false;
}

/* Whether msg contains any of the texts (a NULL-terminated list). */
static bool
has_any(const char *msg, const char *const *texts)
{
	for (; *texts; texts++)
		if (has(msg, *texts))
			return true;
	return false;
}

static const char *const rate_texts[] = {
	"rate limit", "rate exceeded", "too many requests", "credits limited",
	"request limit reached", "compute units per second",
	"daily request count exceeded", "exceeded the rps", "requests per second",
	NULL
};

static const char *const batch_texts[] = {
	"batch too large", "batch limit", "batch size limit",
	"exceeds max batch size", "batch request was too large",
	"number of requests exceeds", NULL
};

static const char *const size_texts[] = {
	"response too large", "response is too big", "batch response was too large",
	"request is too big",
	"maxbatchresponsebodysize", "response size should not", "response too big",
	NULL
};

/* eth_getLogs over a cap on results (the range may grow again later) */
static const char *const results_texts[] = {
	"more than", "too many logs", "max results", "logs matched",
	"too many results", "result limit", NULL
};

/* eth_getLogs over a cap on blocks */
static const char *const range_texts[] = {
	"block range", "blocks distance", "max range", "range limit",
	"maximum range", "is limited to", "range is too large",
	"range too large", "ranges over", "requested too many blocks",
	"at most", "number of requested blocks", "range is too wide",
	"exceeds limit", NULL
};

static const char *const pruned_texts[] = {
	"pruned history", "due to pruning", "history expired",
	"history has been pruned", NULL
};

static const char *const state_texts[] = {
	"missing trie node", "is not available", "historical state",
	"state at block", "no state available", "state histories", "is pruned",
	NULL
};

static const char *const beyond_head_texts[] = {
	"header not found", "block not found", "unknown block", NULL
};

static const char *const unserved_texts[] = {
	"does not exist", "not available", "method not found", "not supported",
	"is not whitelisted", NULL
};

/* The message and code of an error object ("" and 0 when absent). */
static const char *
error_message(json_t *error, json_int_t *code)
{
	json_t	   *m = json_object_get(error, "message");
	json_t	   *c = json_object_get(error, "code");

	*code = json_is_integer(c) ? json_integer_value(c) : 0;
	return json_is_string(m) ? json_string_value(m) : "";
}

/*
 * EwRpcIsBenign
 *		An error that jsonrpc.c reads as an answer: the method is not
 *		served (eth_getBlockReceipts only), or the state asked for is
 *		beyond the head.
 */
bool
EwRpcIsBenign(EwRpcMethod m, json_t *error)
{
	json_int_t	code;
	const char *msg;

	if (!json_is_object(error))
		return false;
	msg = error_message(error, &code);
	if (m == EW_RPC_BLOCK_RECEIPTS)
		return code == -32601 || (code != 4444 && has_any(msg, unserved_texts) &&
								  !has_any(msg, pruned_texts));
	if (m == EW_RPC_BALANCE || m == EW_RPC_NONCE || m == EW_RPC_CODE)
		return has_any(msg, beyond_head_texts);
	return false;
}

/*
 * last_number
 *		The last integer in a message ("... maximum of 10000 blocks", "a
 *		10,000 range", "1k blocks"), or 0 when there is none.
 */
static int64
last_number(const char *msg)
{
	int64		last = 0;
	const char *p = msg;

	while (*p)
	{
		if (isdigit((unsigned char) *p) && (p == msg || !isalnum((unsigned char) p[-1])))
		{
			int64		v = 0;

			while (isdigit((unsigned char) *p) || (*p == ',' && isdigit((unsigned char) p[1])))
			{
				if (*p != ',' && v < PG_INT64_MAX / 10)
					v = v * 10 + (*p - '0');
				p++;
			}
			if (*p == 'k' || *p == 'K')
				v = v > PG_INT64_MAX / 1000 ? PG_INT64_MAX : v * 1000;
			if (!isalpha((unsigned char) *p) || *p == 'k' || *p == 'K')
				last = v;
			continue;
		}
		p++;
	}
	return last;
}

/*
 * suggested_to
 *		The last block of a range a provider suggests: "[0xA, 0xB]"
 *		(Alchemy, Infura) or "the range A-B" (Reth, decimal); -1 if none.
 */
static int64
suggested_to(const char *msg)
{
	const char *p = strstr(msg, "[0x");
	uint64		a,
				b;
	char	   *end;

	if (p != NULL)
	{
		a = strtoull(p + 1, &end, 16);
		p = end;
		while (*p == ',' || *p == ' ')
			p++;
		if (strncmp(p, "0x", 2) == 0)
		{
			b = strtoull(p, &end, 16);
			if (end != p && b >= a && b <= (uint64) PG_INT64_MAX)
				return (int64) b;
		}
	}
	p = strstr(msg, "the range ");
	if (p != NULL && isdigit((unsigned char) p[10]))
	{
		a = strtoull(p + 10, &end, 10);
		if (*end == '-' && isdigit((unsigned char) end[1]))
		{
			b = strtoull(end + 1, &end, 10);
			if (b >= a && b <= (uint64) PG_INT64_MAX)
				return (int64) b;
		}
	}
	return -1;
}

/* "eth_getLogs from block 500000", "eth_getBalance of 0x…", for reasons */
static char *
call_name(EwScanState *st, EwRpcMethod m, int64 n)
{
	switch (m)
	{
		case EW_RPC_BLOCK:
		case EW_RPC_BLOCK_RECEIPTS:
		case EW_RPC_TX_COUNT:
			return psprintf("%s of block " INT64_FORMAT, EwRpcMethodName(m), n);
		case EW_RPC_LOGS:
			return psprintf("%s from block " INT64_FORMAT, EwRpcMethodName(m), n);
		case EW_RPC_BALANCE:
		case EW_RPC_NONCE:
		case EW_RPC_CODE:
			if (n >= 0 && n < st->naccounts)
				return psprintf("%s of %s", EwRpcMethodName(m), st->accounts[n]);
			break;
		default:
			break;
	}
	return pstrdup(EwRpcMethodName(m));
}

/*
 * classify_logs_cap
 *		An eth_getLogs call over one of the node's caps: fewer blocks, the
 *		number the answer names when it names one.  False when the error
 *		is not a cap.
 */
static bool
classify_logs_cap(const char *msg, int64 from, EwFailure *f)
{
	int64		to = suggested_to(msg);

	if (to >= from)
	{
		/* a range that would work: sized to these blocks' logs */
		f->shrink_blocks = to - from < PG_INT64_MAX ? to - from + 1 : PG_INT64_MAX;
		f->shrink_keeps_ceiling = true;
	}
	else if (has_any(msg, results_texts))
		f->shrink_keeps_ceiling = true;
	else if (has_any(msg, range_texts))
		f->shrink_blocks = last_number(msg);
	else
		return false;
	EwSetFailure(f, EW_FAIL_SHRINK, ERRCODE_FDW_ERROR);
	return true;
}

/*
 * classify_error
 *		One error object of the answer: the failure, its class and reason.
 *		ncalls is the size of the batch it answers (0: unknown).
 */
static EwFailureClass
classify_error(EwScanState *st, const EwResponse *resp, json_t *error,
			   bool known, EwRpcMethod m, int64 n, EwFailure *f)
{
	json_int_t	code;
	const char *raw = json_is_object(error) ? error_message(error, &code) : "";
	char	   *msg = EwPrintableMessage(raw);
	const char *name = known ? call_name(st, m, n) : "the batch";

	if (!json_is_object(error))
		code = 0;
	appendStringInfo(&f->reason, "%s: %s (code %lld)", name, msg, (long long) code);
	/* -32007 is QuickNode's rate limit, and jsonrpsee's request too big */
	if (resp->http_status == 429 || code == 429 || code == -32029 ||
		(code == -32007 && !has(raw, "too big")) ||
		(code == -32005 && has(raw, "rate")) || has_any(raw, rate_texts))
	{
		EwSetFailure(f, EW_FAIL_TRANSIENT, ERRCODE_FDW_ERROR);
		appendStringInfoString(&f->detail, "The node refused the request for its rate limit.");
		return f->cls;
	}
	if (code == -32010 || has_any(raw, batch_texts))
	{
		int64		limit = last_number(raw);
		int			per_block = ew_rpc_state(st)->receipts ? 2 : 1;

		/* "batch limit 100 exceeded ... size: 401": the first number */
		if (has(raw, "batch limit"))
			limit = strtol(raw + strcspn(raw, "0123456789"), NULL, 10);
		if (limit > 0 && limit < ew_rpc_state(st)->last_calls)
		{
			ew_rpc_state(st)->max_calls = (int) limit;
			f->shrink_blocks = Max(1, limit / per_block);
		}
		else
			ew_rpc_state(st)->max_calls = Max(1, ew_rpc_state(st)->last_calls / 2);
		EwSetFailure(f, EW_FAIL_SHRINK, ERRCODE_FDW_ERROR);
		appendStringInfo(&f->detail, "The node refused a batch of %d calls.",
						 ew_rpc_state(st)->last_calls);
		return f->cls;
	}
	if (code == -32003 || code == -32008 || code == -32011 || has_any(raw, size_texts))
	{
		EwSetFailure(f, EW_FAIL_SHRINK, ERRCODE_PROGRAM_LIMIT_EXCEEDED);
		return f->cls;
	}
	if (has(raw, "timed out") || has(raw, "timeout"))
	{
		EwSetFailure(f, EW_FAIL_SHRINK, ERRCODE_FDW_ERROR);
		appendStringInfoString(&f->detail, "The node stopped the request at its time-out.");
		return f->cls;
	}
	if (known && m == EW_RPC_LOGS && code != 4444 && classify_logs_cap(raw, n, f))
	{
		appendStringInfoString(&f->detail, "The node caps the blocks or the logs of one eth_getLogs call.");
		return f->cls;
	}
	if (code == 4444 || has_any(raw, pruned_texts))
	{
		EwSetFailure(f, EW_FAIL_FATAL, ERRCODE_FDW_ERROR);
		appendStringInfoString(&f->detail, "The node has pruned the history (block bodies, receipts or logs) of these blocks.");
		f->hint = "Bound the query to blocks the node keeps, or point the server at a node with full history (an archive node, or geth without --history.chain postmerge).";
		return f->cls;
	}
	if (known && (m == EW_RPC_BALANCE || m == EW_RPC_NONCE || m == EW_RPC_CODE) &&
		has_any(raw, state_texts))
	{
		EwSetFailure(f, EW_FAIL_FATAL, ERRCODE_FDW_ERROR);
		appendStringInfoString(&f->detail, "The node does not keep the state (balances, nonces, code) of that block.");
		f->hint = "Reading accounts at past blocks needs an archive node (e.g. geth --gcmode archive, or a provider's archive tier); without block bounds eth_account reads the head.";
		return f->cls;
	}
	if (has(raw, "try again") || has(raw, "temporarily") || has(raw, "busy") ||
		has(raw, "no backend") || has(raw, "shutting down"))
	{
		EwSetFailure(f, EW_FAIL_TRANSIENT, ERRCODE_FDW_ERROR);
		return f->cls;
	}
	EwSetFailure(f, EW_FAIL_FATAL, ERRCODE_FDW_ERROR);
	if (code == -32601)
		f->hint = psprintf("The node does not serve %s: ethwhale_fdw needs the eth namespace enabled (e.g. geth --http.api eth).",
						   known ? EwRpcMethodName(m) : "a method it was asked for");
	return f->cls;
}

/*
 * first_failure
 *		The first error of the answer that is a failure, classified; EW_OK
 *		when every error is one jsonrpc.c reads.  Each element must be a
 *		reply to a call of ours.
 */
static EwFailureClass
first_failure(EwScanState *st, const EwResponse *resp, json_t *replies,
			  EwFailure *f)
{
	size_t		i;

	for (i = 0; i < json_array_size(replies); i++)
	{
		json_t	   *r = json_array_get(replies, i);
		json_t	   *error = json_is_object(r) ? json_object_get(r, "error") : NULL;
		int64		n;
		EwRpcMethod m;
		bool		known;

		if (!json_is_object(r))
		{
			EwSetFailure(f, EW_FAIL_FATAL, ERRCODE_FDW_INVALID_DATA_TYPE);
			appendStringInfoString(&f->reason, "the answer is not a list of JSON-RPC replies");
			appendStringInfo(&f->detail, "Element %zu is %s.", i, EwJsonExcerpt(r));
			return f->cls;
		}
		if (error == NULL || json_is_null(error))
			continue;
		known = EwRpcDecodeId(json_object_get(r, "id"), &n, &m);
		if (known && EwRpcIsBenign(m, error))
			continue;
		return classify_error(st, resp, error, known, m, n, f);
	}
	return EW_OK;
}

/*
 * EwRpcCheckAnswer
 *		The JSON-RPC outcome of an answer: its replies as a list (a single
 *		reply is put in one), or a failure.  A batch the node refused as a
 *		whole comes back as one error object, or as a list of one.
 */
EwFailureClass
EwRpcCheckAnswer(EwScanState *st, const EwResponse *resp, json_t *root,
				 const json_error_t *jerr, json_t **data, EwFailure *f)
{
	json_t	   *replies;

	*data = NULL;
	if (root == NULL || !(json_is_object(root) || json_is_array(root)))
	{
		if (resp->http_status == 429 || resp->http_status >= 500)
			return EwHttpFailure(resp, EW_FAIL_TRANSIENT, f);
		return EwMalformedFailure(resp, root, jerr, "a JSON-RPC reply or a list of them", f);
	}
	if (json_is_object(root))
	{
		replies = json_array();
		json_array_append(replies, root);
	}
	else
		replies = root;
	if (json_array_size(replies) == 0)
	{
		EwSetFailure(f, EW_FAIL_FATAL, ERRCODE_FDW_INVALID_DATA_TYPE);
		appendStringInfoString(&f->reason, "the answer is an empty list of replies");
		return f->cls;
	}
	if (first_failure(st, resp, replies, f) != EW_OK)
		return f->cls;
	if (resp->http_status != 200)
		return EwHttpFailure(resp, resp->http_status == 429 || resp->http_status >= 500 ?
							 EW_FAIL_TRANSIENT : EW_FAIL_FATAL, f);
	*data = replies;
	return EW_OK;
}

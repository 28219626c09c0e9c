/*-------------------------------------------------------------------------
 *
 * graphql.c
 *		  The GraphQL (EIP-1767) node API of ethwhale_fdw, as Geth serves it
 *		  at /graphql: request bodies around the documents of deparse.c, and
 *		  the checks that turn an answer into the objects the scan walks.
 *
 * A request is {"query": <document>, "variables": {...}}; block numbers go
 * as decimal strings (JSON numbers would pass through a float64 and Geth
 * reads Long from strings).  An answer is {"data": ..., "errors": [...]}.
 * The objects in "data" already have the shape the scan and the decoder
 * read, so this file checks them rather than rebuilding them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "scan.h"

/* ---------------------------------------------------------------------
 * Requests
 * ---------------------------------------------------------------------
 */

static char *
gql_chunk_request(EwScanState *st, int64 from, int64 to)
{
	return psprintf("{\"query\":%s,\"variables\":{\"from\":\"" INT64_FORMAT "\",\"to\":\"" INT64_FORMAT "\"%s}}",
					st->query_json, from, to, st->log_vars ? st->log_vars : "");
}

static char *
gql_hash_request(EwScanState *st, const char *hash)
{
	return psprintf("{\"query\":%s,\"variables\":{\"hash\":\"%s\"}}",
					st->query_json, hash);
}

static char *
gql_head_request(EwScanState *st)
{
	return psprintf("{\"query\":%s}", EwJsonQuote(EwDeparseHeadDocument()));
}

static char *
gql_chain_request(EwScanState *st)
{
	return psprintf("{\"query\":%s}", EwJsonQuote(EwDeparseChainDocument()));
}

/*
 * gql_accounts_request
 *		The accounts first .. first+n-1 at block (-1: the head).
 */
static char *
gql_accounts_request(EwScanState *st, int first, int n, int64 block)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"query\":%s,\"variables\":{\"block\":",
					 EwJsonQuote(EwDeparseAccountDocument(st->plan.document, n)));
	if (block < 0)
		appendStringInfoString(&buf, "null");
	else
		appendStringInfo(&buf, "\"" INT64_FORMAT "\"", block);
	for (i = 0; i < n; i++)
		appendStringInfo(&buf, ",\"a%d\":\"%s\"", i, st->accounts[first + i]);
	appendStringInfoString(&buf, "}}");
	return buf.data;
}

/* ---------------------------------------------------------------------
 * Answers
 * ---------------------------------------------------------------------
 */

/*
 * gql_check_answer
 *		The GraphQL outcome of a parsed answer: its "data" object, or a
 *		failure from "errors".  Geth reports its HTTP write time-out as the
 *		error "request timed out": fewer blocks may fit.
 */
static EwFailureClass
gql_check_answer(EwScanState *st, const EwResponse *resp, json_t *root,
				 const json_error_t *jerr, json_t **data, EwFailure *f)
{
	json_t	   *errors;

	*data = NULL;
	if (resp->http_status == 429 || resp->http_status >= 500)
		return EwHttpFailure(resp, EW_FAIL_TRANSIENT, f);
	if (root == NULL || !json_is_object(root))
		return EwMalformedFailure(resp, root, jerr, "a JSON object", f);
	errors = json_object_get(root, "errors");
	if (errors != NULL && !json_is_null(errors) && !json_is_array(errors))
	{
		/* the GraphQL specification makes "errors" a list */
		EwSetFailure(f, EW_FAIL_FATAL, ERRCODE_FDW_INVALID_DATA_TYPE);
		appendStringInfoString(&f->reason, "the answer's \"errors\" is not a list");
		appendStringInfo(&f->detail, "\"errors\": %s.", EwJsonExcerpt(errors));
		return f->cls;
	}
	if (json_is_array(errors) && json_array_size(errors) > 0)
	{
		json_t	   *first = json_array_get(errors, 0);
		json_t	   *msg = json_is_object(first) ? json_object_get(first, "message") : NULL;
		char	   *text = EwPrintableMessage(json_is_string(msg) ?
											  json_string_value(msg) : "(no message)");

		if (strcmp(text, "request timed out") == 0)
		{
			EwSetFailure(f, EW_FAIL_SHRINK, ERRCODE_FDW_ERROR);
			appendStringInfoString(&f->reason, "the node reported \"request timed out\"");
			appendStringInfoString(&f->detail, "Geth stops a GraphQL request at its HTTP write timeout.");
			return f->cls;
		}
		EwSetFailure(f, EW_FAIL_FATAL, ERRCODE_FDW_ERROR);
		appendStringInfo(&f->reason, "GraphQL error: %s", text);
		if (json_array_size(errors) > 1)
			appendStringInfo(&f->detail, "%zu errors; the first is shown.",
							 json_array_size(errors));
		return f->cls;
	}
	*data = json_object_get(root, "data");
	if (!json_is_object(*data))
	{
		EwSetFailure(f, EW_FAIL_FATAL, ERRCODE_FDW_INVALID_DATA_TYPE);
		appendStringInfoString(&f->reason, "the answer has no \"data\" object");
		appendStringInfo(&f->detail, "Answer: %s", EwJsonExcerpt(root));
		*data = NULL;
		return f->cls;
	}
	if (resp->http_status != 200)
	{
		*data = NULL;
		return EwHttpFailure(resp, EW_FAIL_FATAL, f);
	}
	return EW_OK;
}

/*
 * gql_answer_blocks
 *		The "blocks" list of an answer for blocks from..to, checked: each
 *		block in the range, in order, consecutive (fewer at the head).
 */
static json_t *
gql_answer_blocks(EwScanState *st, json_t *data, int64 from, int64 to,
				  const char *what, int64 *covered_to)
{
	json_t	   *blocks = json_object_get(data, "blocks");
	size_t		i;
	int64		prev = -1;

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
			(i > 0 && (int64) n != prev + 1))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("server \"%s\" answered a block outside %s",
							st->server->servername, what),
					 errdetail("Element %zu of \"blocks\" is %s.", i, EwJsonExcerpt(b)),
					 errhint("The node may not follow EIP-1767 as Geth serves it.")));
		prev = (int64) n;
		st->cur_block = prev;
	}
	/* Geth cuts "to" at the head: a short answer ends there */
	*covered_to = json_array_size(blocks) > 0 ? prev : from - 1;
	return blocks;
}

/*
 * gql_answer_head
 *		The head block number of an answer to the head document.
 */
static int64
gql_answer_head(EwScanState *st, json_t *data)
{
	json_t	   *block = json_object_get(data, "block");
	uint64		v;

	if (!json_is_object(block) ||
		!EwJsonGetUint64(json_object_get(block, "number"), &v) ||
		v > (uint64) PG_INT64_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("could not read the head block number from server \"%s\"",
						st->server->servername),
				 errdetail("Answer: %s", EwJsonExcerpt(data))));
	return (int64) v;
}

/*
 * gql_answer_chain
 *		The chain id of an answer to the chain document.
 */
static int64
gql_answer_chain(EwScanState *st, json_t *data)
{
	return EwChainIdOf(st, json_object_get(data, "chainID"), "chainID", data);
}

/*
 * gql_answer_tx
 *		The transaction of a hash lookup, or NULL when the node does not
 *		know it or it is still pending (not in a block).
 */
static json_t *
gql_answer_tx(EwScanState *st, json_t *data)
{
	json_t	   *tx = json_object_get(data, "transaction");

	if (!json_is_object(tx))
		return NULL;
	if (!json_is_object(json_object_get(tx, "block")))
		return NULL;
	return tx;
}

/*
 * gql_answer_accounts
 *		The block object of an account answer, with the aliases a0 …; NULL
 *		when the block is beyond the head.  expect is the block asked for,
 *		or the pinned head, or -1 for the head not yet known.
 */
static json_t *
gql_answer_accounts(EwScanState *st, json_t *data, const char *what,
					int64 expect)
{
	json_t	   *blk = json_object_get(data, "block");
	uint64		number;

	if (blk == NULL || json_is_null(blk))
		return NULL;
	if (!json_is_object(blk) ||
		!EwJsonGetUint64(json_object_get(blk, "number"), &number) ||
		number > (uint64) PG_INT64_MAX ||
		(expect >= 0 && (int64) number != expect))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("server \"%s\" answered another block for %s",
						st->server->servername, what),
				 errdetail("Answer: %s", EwJsonExcerpt(blk))));
	st->cur_block = (int64) number;
	return blk;
}

/*
 * gql_account_row
 *		Account i of an account answer's block.
 */
static json_t *
gql_account_row(EwScanState *st, json_t *block, int i)
{
	char		alias[16];
	json_t	   *a;

	snprintf(alias, sizeof(alias), "a%d", i);
	a = json_object_get(block, alias);
	if (!json_is_object(a))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("the answer of server \"%s\" has no account \"%s\" in block " INT64_FORMAT,
						st->server->servername, alias, st->cur_block),
				 errdetail("Got %s.", EwJsonExcerpt(a))));
	return a;
}

/*
 * gql_describe
 *		EXPLAIN VERBOSE: the document itself; in account mode, the first
 *		batch's (as many aliases as plan time knows addresses, up to
 *		EW_ACCOUNTS_PER_REQUEST; one when it does not know).
 */
static char *
gql_describe(EwScanState *st)
{
	EwScanPlan *plan = &st->plan;

	if (plan->mode != EW_MODE_ACCOUNT)
		return plan->document;
	return EwDeparseAccountDocument(plan->document,
									plan->naddresses > 0 ?
									Min(plan->naddresses, EW_ACCOUNTS_PER_REQUEST) : 1);
}

const EwNodeApi EwGraphqlApi = {
	.name = "GraphQL",
	.hint_transient = "Check that the node is running and that endpoint is its /graphql URL; max_retries sets how often a request is retried.",
	.hint_fatal = "Check that endpoint points at a GraphQL (EIP-1767) node such as geth --http --graphql, or set the server option api 'jsonrpc'.",
	.describe = gql_describe,
	.chunk_request = gql_chunk_request,
	.hash_request = gql_hash_request,
	.head_request = gql_head_request,
	.chain_request = gql_chain_request,
	.accounts_request = gql_accounts_request,
	.check_answer = gql_check_answer,
	.answer_blocks = gql_answer_blocks,
	.answer_head = gql_answer_head,
	.answer_chain = gql_answer_chain,
	.answer_tx = gql_answer_tx,
	.answer_accounts = gql_answer_accounts,
	.account_row = gql_account_row,
};

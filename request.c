/*-------------------------------------------------------------------------
 *
 * request.c
 *		  The request policy of ethwhale_fdw: what an answer means, whether
 *		  to retry it, back off, ask for fewer blocks or give up, and the
 *		  ERROR a failure is reported with.
 *
 * Both the sequential fetch (EwRequest) and the concurrent pipeline
 * (pipeline.c) hand every answer to EwAfterResponse, so the two follow one
 * policy:
 *	- a time-out or an answer over max_response_mb asks for fewer blocks
 *	  (no retry used, no back-off), down to one block;
 *	- a transient failure (connection, 429, 5xx) is sent again after a
 *	  back-off, at most max_retries times;
 *	- anything else is final.
 *
 * A final failure is reported with the SQLSTATE of its class (README.md,
 * "Errors"): HV00N for a node that cannot be reached or a connection that
 * fails (TLS included), HV000 for an error the node answered, HV004 for an
 * answer that is not what was asked for, 54000 for an answer over
 * max_response_mb, 57014 for a cancel.  Class 08 is not used: connection
 * poolers take it to mean that the client's own connection is broken.
 * Secrets from the user mapping are blanked out of every error text.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "scan.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/wait_event.h"

/* Longest part of a node's message quoted in an error. */
#define EW_MAX_NODE_MESSAGE 500

/*
 * EwSetFailure
 *		Start describing a failure: its class and SQLSTATE.
 */
void
EwSetFailure(EwFailure *f, EwFailureClass cls, int sqlstate)
{
	f->cls = cls;
	f->sqlstate = sqlstate;
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
 * EwPrintableMessage
 *		A node's message made fit for an error report: at most
 *		EW_MAX_NODE_MESSAGE bytes (cut at a character boundary, with "..."),
 *		control characters as spaces (no forged log lines), and non-ASCII
 *		as '?' unless the database encoding is UTF-8 (jansson hands out
 *		UTF-8 only).
 */
char *
EwPrintableMessage(const char *msg)
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
 * classify_transport
 *		A request that got no complete answer.
 */
static EwFailureClass
classify_transport(EwScanState *st, const EwResponse *resp, EwFailure *f)
{
	switch (resp->status)
	{
		case EW_NET_OK:
			break;
		case EW_NET_TOO_LARGE:
			EwSetFailure(f, EW_FAIL_SHRINK, ERRCODE_PROGRAM_LIMIT_EXCEEDED);
			appendStringInfo(&f->reason, "the answer exceeds max_response_mb (%d MB)",
							 st->opts.max_response_mb);
			return f->cls;
		case EW_NET_TIMEOUT:
			EwSetFailure(f, EW_FAIL_SHRINK, ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION);
			appendStringInfo(&f->reason, "the request timed out after %d ms (timeout_ms)",
							 st->opts.timeout_ms);
			break;
		case EW_NET_CONNECT:
			EwSetFailure(f, EW_FAIL_TRANSIENT, ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION);
			appendStringInfoString(&f->reason, "could not connect");
			break;
		case EW_NET_INTERRUPTED:
			/* an interrupt that could not be serviced yet: no retry */
			EwSetFailure(f, EW_FAIL_FATAL, ERRCODE_QUERY_CANCELED);
			appendStringInfoString(&f->reason, "the request was interrupted");
			return f->cls;
		case EW_NET_TLS:
			/* retrying cannot help */
			EwSetFailure(f, EW_FAIL_FATAL, ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION);
			appendStringInfoString(&f->reason, "TLS failure");
			f->hint = "Check the node's certificate: it is verified against the system's CA certificates, or those of the server option ca_file.";
			break;
		case EW_NET_REFUSED_URL:
			EwSetFailure(f, EW_FAIL_FATAL, ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION);
			appendStringInfoString(&f->reason, "the endpoint URL was refused");
			break;
		case EW_NET_EMPTY:
			EwSetFailure(f, EW_FAIL_TRANSIENT, ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION);
			appendStringInfoString(&f->reason, "empty reply (the connection was closed)");
			break;
		case EW_NET_TRUNCATED:
			EwSetFailure(f, EW_FAIL_TRANSIENT, ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION);
			appendStringInfoString(&f->reason, "truncated answer (the connection closed early)");
			break;
		case EW_NET_RESET:
			EwSetFailure(f, EW_FAIL_TRANSIENT, ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION);
			appendStringInfoString(&f->reason, "could not receive the answer (connection reset)");
			break;
		case EW_NET_OTHER:
			EwSetFailure(f, EW_FAIL_TRANSIENT, ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION);
			appendStringInfoString(&f->reason, resp->error_name);
			break;
	}
	appendStringInfo(&f->detail, "%s.", resp->errbuf);
	return f->cls;
}

/*
 * EwHttpFailure
 *		An answer with an HTTP status that is not success: the node's own
 *		error (HV000), its body quoted.
 */
EwFailureClass
EwHttpFailure(const EwResponse *resp, EwFailureClass cls, EwFailure *f)
{
	EwSetFailure(f, cls, ERRCODE_FDW_ERROR);
	appendStringInfo(&f->reason, "HTTP %ld", resp->http_status);
	appendStringInfo(&f->detail, "Answer: \"%s\"", body_excerpt(resp));
	return cls;
}

/*
 * ascii_text
 *		A text that may hold any bytes, as printable ASCII: control
 *		characters as spaces, other bytes as '?'.
 */
static char *
ascii_text(const char *s)
{
	char	   *out = pstrdup(s);
	char	   *p;

	for (p = out; *p; p++)
	{
		unsigned char c = (unsigned char) *p;

		if (c < 0x20 || c == 0x7f)
			*p = ' ';
		else if (c >= 0x80)
			*p = '?';
	}
	return out;
}

/*
 * EwMalformedFailure
 *		An answer of HTTP 200 that is not the JSON the protocol answers with
 *		(root NULL: not JSON at all, jerr says where; else not of the
 *		protocol's shape); with another status, the status is the failure.
 */
EwFailureClass
EwMalformedFailure(const EwResponse *resp, json_t *root,
				   const json_error_t *jerr, const char *shape, EwFailure *f)
{
	if (resp->http_status != 200)
		return EwHttpFailure(resp, EW_FAIL_FATAL, f);
	EwSetFailure(f, EW_FAIL_FATAL, ERRCODE_FDW_INVALID_DATA_TYPE);
	appendStringInfoString(&f->reason, "malformed JSON in the answer");
	if (root == NULL)
		appendStringInfo(&f->detail, "%s at byte %d of %zu%s.",
						 ascii_text(jerr->text),
						 jerr->position, resp->body_len,
						 jerr->position >= (int) resp->body_len ?
						 " (the answer is truncated)" : "");
	else
		appendStringInfo(&f->detail, "The answer is not %s.", shape);
	return f->cls;
}

/*
 * classify_response
 *		Decide what one answer means.  On success returns EW_OK and sets
 *		*data; otherwise describes the failure in f.  What the HTTP status
 *		and the JSON mean is the node API's to say: a JSON-RPC provider
 *		sends its rate limits as HTTP 429 with an error object.
 */
static EwFailureClass
classify_response(EwScanState *st, const EwResponse *resp, json_t **data,
				  EwFailure *f)
{
	json_t	   *root;
	json_error_t jerr;

	*data = NULL;
	if (resp->status != EW_NET_OK)
		return classify_transport(st, resp, f);
	root = EwParseJson(st->batch_cxt, resp->body, resp->body_len,
					   st->api->answer_skip, &jerr);
	return st->api->check_answer(st, resp, root, &jerr, data, f);
}

/*
 * redact_one
 *		Replace every occurrence of secret in buf by "[redacted]".
 */
static void
redact_one(StringInfo buf, const char *secret)
{
	size_t		n = strlen(secret);
	StringInfoData out;
	const char *p = buf->data;
	const char *hit;

	/* short values would blank out ordinary text, and cannot be secrets */
	if (n < 4 || strstr(p, secret) == NULL)
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
 * EwRedactSecrets
 *		A node may echo the request's headers in its answer, which an error
 *		quotes: blank out the user mapping's bearer token and header values.
 */
void
EwRedactSecrets(const EwOptions *opts, StringInfo buf)
{
	if (opts->bearer_token)
		redact_one(buf, opts->bearer_token);
	if (opts->headers)
	{
		EwHeader   *h;
		int			n = EwParseHeaders(opts->headers, &h);
		int			i;

		for (i = 0; i < n; i++)
			redact_one(buf, h[i].value);
	}
}

/*
 * raise_failure
 *		Report a request that failed for good.
 */
static void
raise_failure(EwScanState *st, EwFailure *f, const char *what, int attempt)
{
	const char *hint = f->hint;

	EwRedactSecrets(&st->opts, &f->reason);
	EwRedactSecrets(&st->opts, &f->detail);
	if (attempt > 0)
		appendStringInfo(&f->detail, "%sTried %d times (max_retries = %d).",
						 f->detail.len > 0 ? " " : "", attempt + 1,
						 st->opts.max_retries);
	if (hint == NULL)
		hint = f->cls == EW_FAIL_SHRINK ?
			psprintf("Lower batch_blocks, or raise timeout_ms or max_response_mb, with ALTER SERVER %s OPTIONS (SET ...).",
					 quote_identifier(st->server->servername)) :
			f->cls == EW_FAIL_TRANSIENT ? st->api->hint_transient :
			st->api->hint_fatal;
	ereport(ERROR,
			(errcode(f->sqlstate),
			 errmsg("could not read %s from server \"%s\": %s",
					what, st->server->servername, f->reason.data),
			 f->detail.len > 0 ? errdetail_internal("%s", f->detail.data) : 0,
			 errhint("%s", hint)));
}

/*
 * EwAfterResponse
 *		What to do after one answer to the request for what: EW_STEP_DONE
 *		with *data set, EW_STEP_SHRINK when can_shrink and fewer blocks
 *		should be asked for, EW_STEP_RETRY after the back-off (*attempt
 *		counts the retries of this request against max_retries).  A final
 *		failure is raised as an ERROR.
 */
EwNextStep
EwAfterResponse(EwScanState *st, const EwResponse *resp, const char *what,
				bool can_shrink, int *attempt, json_t **data)
{
	EwFailure	f;
	MemoryContext oldcxt = MemoryContextSwitchTo(st->batch_cxt);

	st->stats.bytes += resp->body_len;
	st->last_body_len = resp->body_len;
	memset(&f, 0, sizeof(f));
	initStringInfo(&f.reason);
	initStringInfo(&f.detail);
	if (classify_response(st, resp, data, &f) == EW_OK)
	{
		MemoryContextSwitchTo(oldcxt);
		return EW_STEP_DONE;
	}
	MemoryContextSwitchTo(oldcxt);

	/*
	 * Asking for fewer blocks is not a retry of the same request: it uses
	 * none of max_retries and needs no back-off.
	 */
	if (f.cls == EW_FAIL_SHRINK && can_shrink)
	{
		st->shrink_blocks = f.shrink_blocks;
		st->shrink_keeps_ceiling = f.shrink_keeps_ceiling;
		elog(DEBUG1, "ethwhale_fdw: %s from server \"%s\" for %s; asking for fewer blocks",
			 f.reason.data, st->server->servername, what);
		return EW_STEP_SHRINK;
	}
	if (f.cls != EW_FAIL_FATAL && *attempt < st->opts.max_retries)
	{
		(*attempt)++;
		st->stats.retries++;
		elog(DEBUG1, "ethwhale_fdw: %s from server \"%s\" for %s; retry %d of %d",
			 f.reason.data, st->server->servername, what, *attempt,
			 st->opts.max_retries);
		backoff(*attempt, resp->retry_after_s);
		return EW_STEP_RETRY;
	}
	raise_failure(st, &f, what, *attempt);
	pg_unreachable();
}

/*
 * EwRequest
 *		POST body and return the answer's data, retrying as EwAfterResponse
 *		says.  When can_shrink and the node needs fewer blocks, returns NULL
 *		with *shrink set.  Any other failure is an ERROR naming the server
 *		and what.
 */
json_t *
EwRequest(EwScanState *st, const char *body, const char *what,
		  bool can_shrink, int *attempt, bool *shrink)
{
	*shrink = false;
	if (st->reuse_body != NULL && strcmp(st->reuse_body, body) == 0)
	{
		/* a rescan that asks what the scan before it asked */
		st->stats.reused++;
		st->scan_requests++;
		st->last_body = st->reuse_body;
		st->last_data = st->reuse_data;
		return st->reuse_data;
	}
	for (;;)
	{
		EwResponse	resp;
		json_t	   *data;

		CHECK_FOR_INTERRUPTS();
		EwCheckRequestBudget(st);
		if (st->conn == NULL)
			st->conn = EwGetConnection(st->server);
		EwPost(st->conn, body, strlen(body), &st->opts, &resp);
		st->stats.requests++;
		st->scan_requests++;
		switch (EwAfterResponse(st, &resp, what, can_shrink, attempt, &data))
		{
			case EW_STEP_DONE:
				st->last_body = body;
				st->last_data = data;
				return data;
			case EW_STEP_SHRINK:
				*shrink = true;
				return NULL;
			case EW_STEP_RETRY:
				break;
		}
	}
}

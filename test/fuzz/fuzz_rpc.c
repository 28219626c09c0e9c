/*
 * fuzz_rpc.c - target 7 of fuzz_decode.c: the JSON-RPC node API reading a
 * hostile node's answer.  rpcerrors.c's EwRpcCheckAnswer (with request.c's
 * EwHttpFailure, EwMalformedFailure and EwPrintableMessage) says what the
 * answer means; when it passes, jsonrpc.c assembles the replies into the
 * blocks and rows the scan walks (EwJsonRpcApi's answer_blocks,
 * answer_head, answer_tx, answer_accounts and account_row).  Before that the
 * API's own request builder makes the request the answer is for, so the
 * state the check reads (calls in the batch, the first account) is what a
 * scan would have.  The rows of the assembled answer, as scan.c walks them
 * (transactions, blocks, ERC-20 logs, the transaction, accounts), are
 * then decoded with every column of their table and JSON-RPC's keys
 * (fuzz_decode.c's checks, canonical column types).
 *
 * The scans are ones that send a single request: no block times or
 * transactions of logs, no block of a transaction by hash; receipts (a
 * flag) for a hash, and for blocks only when the answer has every taken
 * block's eth_getBlockReceipts result (else jsonrpc.c asks for the
 * receipts by hash: the blocks are then not assembled).  A follow-up
 * request (EwRequest) must not happen: build.sh links with
 * --wrap=EwRequest and __wrap_EwRequest below aborts.
 *
 * Input (after fuzz_decode.c's target byte), then the answer's body:
 *	[0]		the scan (mod 7): 0 eth_tx blocks in full, 1 eth_block (hashes),
 *			2 count(*) of eth_tx, 3 eth_token_transfer (eth_getLogs), 4 the
 *			head, 5 eth_tx by hash, 6 eth_account
 *	[1]		HTTP status (low 7 bits mod 5: 200 400 413 429 503); bit 7: the
 *			database encoding is SQL_ASCII, else UTF8
 *	[2]		blocks asked for (1 + mod 32); accounts (1 + mod 128)
 *	[3]		eth_account: bit 0 the second batch (accounts 100...); bits 1-3
 *			no balance, no nonce, no code; bit 4: receipts (eth_tx in full
 *			and by hash)
 *	[4..11]	the first block (big-endian, below 2^63); eth_account: the block
 * An ERROR is an expected outcome; a crash, a sanitizer report, a broken
 * invariant (fuzz_bug) or a follow-up request is a bug.
 */
#include "postgres.h"

#include "foreign/foreign.h"
#include "fuzz.h"
#include "jsonrpc.h"
#include "mb/pg_wchar.h"

#define FUZZ_RPC_HEADER 12

/* the accounts a query names: sorted, distinct, lowercase */
#define FUZZ_MAX_ACCOUNTS 128
static const char *const known_accounts[] = {
	"0x00000000219ab540356cbb839cbe05303d7705fa",
	"0xbe0eb53f46cd790cd13851d5eff43d12404d33e8",
	"0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
};

/* the rows the scan would decode from the assembled answer */
static FuzzRow *rows;
static int	nrows;

static void
add_row(EwTableKind kind, json_t *block, json_t *obj, int64 account_block)
{
	if (nrows < FUZZ_MAX_ROWS)
		rows[nrows++] = (FuzzRow) {kind, block, obj, account_block, true};
}

static const char *const fuzz_hash =
	"0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060";

static void fuzz_bug(const char *fmt,...) pg_attribute_printf(1, 2) pg_attribute_noreturn();

/* FUZZ_VERBOSE=1: each input's outcome on stderr, to see what a seed does */
static bool
verbose(void)
{
	static int	v = -1;

	if (v < 0)
		v = getenv("FUZZ_VERBOSE") != NULL;
	return v;
}

static void
fuzz_bug(const char *fmt,...)
{
	va_list		ap;

	fprintf(stderr, "fuzz: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	abort();
}

json_t	   *__wrap_EwRequest(EwScanState *st, const char *body, const char *what,
							 bool can_shrink, int *attempt, bool *shrink);

/* A follow-up request: the harness's scans send one request each. */
json_t *
__wrap_EwRequest(EwScanState *st, const char *body, const char *what,
				 bool can_shrink, int *attempt, bool *shrink)
{
	fuzz_bug("EwRequest reached (a follow-up request for %s: %.200s)", what, body);
}


/*
 * A text of a failure, as it goes into an ERROR: as long as it says, no
 * control character (no forged log lines), ASCII unless the database
 * encoding is UTF8, and then valid UTF-8.  DEL (0x7f) is let through when
 * del_ok: EwJsonExcerpt quotes JSON as jansson dumps it, with DEL as it is
 * (JSON escapes only below 0x20), which breaks no line.
 */
static void
check_text(const char *s, size_t len, bool utf8, bool del_ok, const char *what)
{
	size_t		i;

	if (s == NULL || strlen(s) != len)
		fuzz_bug("%s: not a string of its length", what);
	for (i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];
		int			n,
					k;

		if (c < 0x20 || (c == 0x7f && !del_ok))
			fuzz_bug("%s has the control character 0x%02x at byte %zu: %.300s", what, c, i, s);
		if (c < 0x80)
			continue;
		if (!utf8)
			fuzz_bug("%s has the non-ASCII byte 0x%02x at byte %zu in a SQL_ASCII database", what, c, i);
		n = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
		if (n < 0)
			fuzz_bug("%s is not UTF-8 at byte %zu", what, i);
		for (k = 1; k <= n; k++)
			if (i + k >= len || ((unsigned char) s[i + k] & 0xc0) != 0x80)
				fuzz_bug("%s has a UTF-8 character cut at byte %zu", what, i);
		i += n;
	}
}

/*
 * EwRpcCheckAnswer, through the API as the request policy calls it, and
 * what its outcome promises; true when the answer is data.
 */
static bool
check_answer(EwScanState *st, const EwResponse *resp, json_t *root,
			 const json_error_t *jerr, json_t **data)
{
	EwRpcState *rs = ew_rpc_state(st);
	EwFailure	f;
	EwFailureClass cls;
	bool		utf8 = fuzz_encoding == PG_UTF8;
	size_t		i;

	memset(&f, 0, sizeof(f));
	initStringInfo(&f.reason);
	initStringInfo(&f.detail);
	*data = (json_t *) 0x1;
	cls = st->api->check_answer(st, resp, root, jerr, data, &f);
	if (verbose())
		fprintf(stderr, "fuzz_rpc: HTTP %ld: class %d shrink %lld: %s | %s | %s\n",
				resp->http_status, (int) cls, (long long) f.shrink_blocks,
				f.reason.data, f.detail.data, f.hint ? f.hint : "");
	if (rs->max_calls < 1)
		fuzz_bug("max_calls %d after an answer", rs->max_calls);
	if (cls == EW_OK)
	{
		if (resp->http_status != 200)
			fuzz_bug("an answer of HTTP %ld taken as data", resp->http_status);
		if (!json_is_array(*data) || json_array_size(*data) == 0)
			fuzz_bug("EW_OK without a non-empty list of replies");
		for (i = 0; i < json_array_size(*data); i++)
			if (!json_is_object(json_array_get(*data, i)))
				fuzz_bug("EW_OK with reply %zu not an object", i);
		if (f.reason.len > 0 || f.detail.len > 0)
			fuzz_bug("EW_OK with a failure described: %s", f.reason.data);
		return true;
	}
	if (cls != EW_FAIL_TRANSIENT && cls != EW_FAIL_SHRINK && cls != EW_FAIL_FATAL)
		fuzz_bug("failure class %d", (int) cls);
	if (f.cls != cls)
		fuzz_bug("failure class %d returned, %d described", (int) cls, (int) f.cls);
	if (*data != NULL)
		fuzz_bug("a failure that leaves *data set");
	if (f.sqlstate == 0)
		fuzz_bug("a failure without a SQLSTATE");
	if (f.reason.len == 0)
		fuzz_bug("a failure without a reason");
	check_text(f.reason.data, f.reason.len, utf8, false, "reason");
	check_text(f.detail.data, f.detail.len, utf8, true, "detail");
	if (f.hint)
		check_text(f.hint, strlen(f.hint), utf8, false, "hint");
	if (cls == EW_FAIL_SHRINK && f.shrink_blocks < 0)
		fuzz_bug("shrink to %lld blocks", (long long) f.shrink_blocks);
	return false;
}

/*
 * Whether take_blocks will find the receipts of every block it takes in
 * the answer (each block's eth_getBlockReceipts reply without an error and
 * with a result), and so send no eth_getTransactionReceipt batch.
 */
static bool
receipts_in_answer(json_t *data)
{
	size_t		i,
				k;
	json_t	   *r,
			   *q,
			   *res,
			   *err;
	int64		n,
				nq;
	EwRpcMethod m,
				mq;

	json_array_foreach(data, i, r)
	{
		res = json_object_get(r, "result");
		err = json_object_get(r, "error");
		if (!EwRpcDecodeId(json_object_get(r, "id"), &n, &m) || m != EW_RPC_BLOCK ||
			(err != NULL && !json_is_null(err)) || res == NULL || json_is_null(res))
			continue;
		json_array_foreach(data, k, q)
		{
			err = json_object_get(q, "error");
			if (EwRpcDecodeId(json_object_get(q, "id"), &nq, &mq) &&
				mq == EW_RPC_BLOCK_RECEIPTS && nq == n &&
				(err == NULL || json_is_null(err)) && json_object_get(q, "result") != NULL)
				break;
		}
		if (k == json_array_size(data))
			return false;
	}
	return true;
}


/*
 * answer_blocks of a block table: blocks of from..covered, ascending, the
 * last one covered (the blocks a node does not have are left out: beyond
 * its head, or a gap of a test chain)
 */
static void
check_blocks(EwScanState *st, json_t *blocks, int64 from, int64 to,
			 int64 covered, EwRpcBlockShape shape)
{
	size_t		i,
				k;
	json_t	   *b;
	int64		prev = from - 1;

	if (!json_is_array(blocks))
		fuzz_bug("answer_blocks gave no list");
	if (covered < from - 1 || covered > to)
		fuzz_bug("blocks %lld..%lld covered to %lld", (long long) from,
				 (long long) to, (long long) covered);
	json_array_foreach(blocks, i, b)
	{
		json_t	   *number = json_object_get(b, "number");
		json_t	   *count = json_object_get(b, "transactionCount");
		json_t	   *txs = json_object_get(b, "transactions");
		int64		n = shape != EW_RPC_COUNT ? EwRpcQuantity(number) :
			json_is_integer(number) ? json_integer_value(number) : -1;

		if (!json_is_object(b))
			fuzz_bug("block %zu not an object", i);
		if (n <= prev || n > covered)
			fuzz_bug("block %zu is block %lld, after %lld, of %lld..%lld", i,
					 (long long) n, (long long) prev, (long long) from, (long long) covered);
		prev = n;
		if (!json_is_integer(count) || json_integer_value(count) < 0 ||
			(shape != EW_RPC_COUNT &&
			 json_integer_value(count) != (json_int_t) json_array_size(txs)))
			fuzz_bug("block %zu without its transaction count", i);
		if (shape == EW_RPC_FULL)
			for (k = 0; k < json_array_size(txs); k++)
			{
				json_t	   *tx = json_array_get(txs, k);

				if (!json_is_object(tx) || json_object_get(tx, "to") == NULL)
					fuzz_bug("block %zu: transaction %zu not an object with \"to\"", i, k);
				/*
				 * a receipt field the node left out stays missing in the
				 * transaction: the decoder reports it (add_row)
				 */
			}
	}
	if (prev != covered)
		fuzz_bug("blocks up to %lld, covered to %lld", (long long) prev, (long long) covered);
	if (covered >= from && st->cur_block != covered)
		fuzz_bug("cur_block %lld after blocks up to %lld", (long long) st->cur_block,
				 (long long) covered);
}

/* answer_blocks of eth_token_transfer: blocks with logs, ascending */
static void
check_log_blocks(json_t *blocks, int64 from, int64 to, int64 covered)
{
	size_t		i,
				k;
	int64		prev = -1;
	json_t	   *b;

	if (!json_is_array(blocks))
		fuzz_bug("answer_blocks gave no list");
	if (covered != to)
		fuzz_bug("logs of %lld..%lld covered to %lld", (long long) from,
				 (long long) to, (long long) covered);
	json_array_foreach(blocks, i, b)
	{
		int64		n = EwRpcQuantity(json_object_get(b, "number"));
		json_t	   *logs = json_object_get(b, "logs");

		if (n < from || n > to || n <= prev)
			fuzz_bug("log block %zu is block %lld, after %lld, of %lld..%lld", i,
					 (long long) n, (long long) prev, (long long) from, (long long) to);
		prev = n;
		if (!json_is_array(logs) || json_array_size(logs) == 0)
			fuzz_bug("log block %zu without logs", i);
		for (k = 0; k < json_array_size(logs); k++)
		{
			json_t	   *log = json_array_get(logs, k);

			if (!json_is_object(log) || EwRpcQuantity(json_object_get(log, "blockNumber")) != n)
				fuzz_bug("log %zu of block %lld is of another block", k, (long long) n);
			if (json_is_true(json_object_get(log, "removed")))
				fuzz_bug("a removed log kept");
		}
	}
}

static void
run_blocks(EwScanState *st, json_t *data, int64 from, int64 to)
{
	EwRpcState *rs = ew_rpc_state(st);
	int64		covered = PG_INT64_MIN;
	json_t	   *blocks,
			   *b,
			   *row;
	size_t		i,
				k;

	blocks = st->api->answer_blocks(st, data, from, to, "the blocks", &covered);
	if (verbose())
		fprintf(stderr, "fuzz_rpc: %zu blocks of %lld..%lld, covered to %lld\n",
				json_array_size(blocks), (long long) from, (long long) to,
				(long long) covered);
	if (st->opts.table == EW_TABLE_TOKEN_TRANSFER)
		check_log_blocks(blocks, from, to, covered);
	else
		check_blocks(st, blocks, from, to, covered, rs->shape);

	/* the rows as scan.c's next_row walks them (counted rows are not decoded) */
	json_array_foreach(blocks, i, b)
	{
		if (st->opts.table == EW_TABLE_BLOCK)
			add_row(EW_TABLE_BLOCK, b, NULL, -1);
		else if (!st->plan.count_only)
			json_array_foreach(json_object_get(b, st->opts.table == EW_TABLE_TX ?
											   "transactions" : "logs"), k, row)
			{
				if (st->opts.table == EW_TABLE_TX || EwIsErc20Transfer(row))
					add_row(st->opts.table, b, row, -1);
			}
	}
}

static void
run_tx(EwScanState *st, json_t *data)
{
	json_t	   *t = st->api->answer_tx(st, data);
	json_t	   *blk;
	int64		n;

	if (t == NULL)
		return;
	n = EwRpcQuantity(json_object_get(t, "blockNumber"));
	blk = json_object_get(t, "block");
	if (!json_is_object(t) || n < 0 || !json_is_object(blk) ||
		EwRpcQuantity(json_object_get(blk, "number")) != n || st->cur_block != n ||
		json_object_get(t, "to") == NULL)
		fuzz_bug("answer_tx gave a transaction without its block");
	add_row(EW_TABLE_TX, blk, t, -1);
}

static void
run_accounts(EwScanState *st, json_t *data, int64 block, int n)
{
	EwRpcState *rs = ew_rpc_state(st);
	json_t	   *blk = st->api->answer_accounts(st, data, "the accounts", block);
	json_t	   *list;
	sigjmp_buf	outer;
	int			i;

	if (blk == NULL)
		return;
	list = json_object_get(blk, "accounts");
	if (json_integer_value(json_object_get(blk, "number")) != block ||
		(int) json_array_size(list) != n || st->cur_block != block)
		fuzz_bug("answer_accounts: %zu accounts at block %lld for %d at %lld",
				 json_array_size(list), (long long) json_integer_value(json_object_get(blk, "number")),
				 n, (long long) block);
	for (i = 0; i < n; i++)
	{
		json_t	   *a = st->api->account_row(st, blk, i);
		json_t	   *addr = json_object_get(a, "address");

		if (a != json_array_get(list, i) || !json_is_string(addr) ||
			strcmp(json_string_value(addr), st->accounts[rs->acct_first + i]) != 0)
			fuzz_bug("account_row %d is not account %d", i, rs->acct_first + i);
		/* at the block of the bounds, or at the head */
		add_row(EW_TABLE_ACCOUNT, blk, a, block);
		add_row(EW_TABLE_ACCOUNT, blk, a, -1);
	}
	/* one past the batch: the scan never asks, but it is an ERROR */
	memcpy(&outer, &fuzz_jmp, sizeof(outer));
	if (sigsetjmp(fuzz_jmp, 0) == 0)
	{
		(void) st->api->account_row(st, blk, n);
		fuzz_bug("account_row %d of %d accounts", n, n);
	}
	memcpy(&fuzz_jmp, &outer, sizeof(outer));
	PG_exception_stack = NULL;
	error_context_stack = NULL;
}

static uint64
read_be64(const uint8_t *p)
{
	uint64		v = 0;
	int			i;

	for (i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

void		fuzz_rpc(const uint8_t *data, size_t size);

void
fuzz_rpc(const uint8_t *data, size_t size)
{
	static const long statuses[] = {200, 400, 413, 429, 503};
	EwScanState *st;
	EwRpcState *rs;
	ForeignServer *server;
	EwResponse	resp;
	json_error_t jerr;
	json_t	   *root;
	json_t	   *replies;
	int			scan;
	int			n;
	int			first = 0;
	int64		from,
				to;
	int			i;

	if (size < FUZZ_RPC_HEADER)
		return;
	rows = palloc(sizeof(FuzzRow) * FUZZ_MAX_ROWS);
	nrows = 0;
	scan = data[0] % 7;
	fuzz_encoding = (data[1] & 0x80) ? PG_SQL_ASCII : PG_UTF8;
	from = (int64) (read_be64(data + 4) & (uint64) PG_INT64_MAX);

	server = palloc0(sizeof(ForeignServer));
	server->servername = "fuzz";
	st = palloc0(sizeof(EwScanState));
	st->server = server;
	st->api = &EwJsonRpcApi;
	st->opts.endpoint = "http://127.0.0.1:8545/";
	st->opts.api = EW_API_JSONRPC;
	st->opts.timeout_ms = 30000;
	st->opts.connect_timeout_ms = 10000;
	st->opts.max_retries = 3;
	st->opts.batch_blocks = 100;
	st->opts.concurrency = 1;
	st->opts.max_response_mb = 256;
	st->opts.max_requests = 100000;
	st->cur_block = -1;
	st->head_block = -1;
	st->dec.servername = server->servername;
	st->dec.rpc = true;
	st->dec.account_block = -1;

	/* what rpc_begin makes of the columns: one request per scan */
	rs = palloc0(sizeof(EwRpcState));
	st->api_state = rs;
	rs->max_calls = 1000;
	rs->head = -1;
	rs->acct_balance = (data[3] & 2) == 0;
	rs->acct_nonce = (data[3] & 4) == 0;
	rs->acct_code = (data[3] & 8) == 0;
	rs->receipts = (data[3] & 16) != 0 && (scan == 0 || scan == 5);
	switch (scan)
	{
		case 0:
			st->opts.table = EW_TABLE_TX;
			rs->shape = EW_RPC_FULL;
			break;
		case 1:
			st->opts.table = EW_TABLE_BLOCK;
			rs->shape = EW_RPC_HASHES;
			break;
		case 2:
			st->opts.table = EW_TABLE_TX;
			st->plan.count_only = true;
			rs->shape = EW_RPC_COUNT;
			break;
		case 3:
			st->opts.table = EW_TABLE_TOKEN_TRANSFER;
			rs->head = PG_INT64_MAX;	/* read before: no head request */
			break;
		case 4:
			st->opts.table = EW_TABLE_BLOCK;
			st->plan.mode = EW_MODE_BACKWARD;
			break;
		case 5:
			st->opts.table = EW_TABLE_TX;
			st->plan.mode = EW_MODE_HASH;
			rs->shape = EW_RPC_FULL;
			break;
		case 6:
			st->opts.table = EW_TABLE_ACCOUNT;
			st->plan.mode = EW_MODE_ACCOUNT;
			break;
	}
	/* an error may name an account whatever the scan */
	st->naccounts = scan == 6 ? 1 + data[2] % FUZZ_MAX_ACCOUNTS : lengthof(known_accounts);
	st->accounts = palloc(sizeof(char *) * st->naccounts);
	for (i = 0; i < st->naccounts; i++)
		st->accounts[i] = i < lengthof(known_accounts) ? pstrdup(known_accounts[i]) :
			psprintf("0xd%039x", i);
	if (scan == 6)
	{
		if ((data[3] & 1) && st->naccounts > EW_ACCOUNTS_PER_REQUEST)
			first = EW_ACCOUNTS_PER_REQUEST;
		n = Min(EW_ACCOUNTS_PER_REQUEST, st->naccounts - first);
	}
	else
		n = 1 + data[2] % 32;
	/* from..to as the scan's ranges give them, and cut where the API says */
	to = from > PG_INT64_MAX - (n - 1) ? PG_INT64_MAX : from + (n - 1);
	if (scan <= 3)
	{
		int64		hi = st->api->clip_to(st, from, to);

		if (hi < from)
			return;
		to = Min(to, hi);
	}

	/* the request the answer is for */
	switch (scan)
	{
		case 0:
		case 1:
		case 2:
		case 3:
			(void) st->api->chunk_request(st, from, to);
			break;
		case 4:
			(void) st->api->head_request(st);
			break;
		case 5:
			(void) st->api->hash_request(st, fuzz_hash);
			break;
		case 6:
			(void) st->api->accounts_request(st, first, n, from);
			break;
	}

	memset(&resp, 0, sizeof(resp));
	resp.status = EW_NET_OK;
	resp.http_status = statuses[(data[1] & 0x7f) % lengthof(statuses)];
	resp.retry_after_s = -1;
	resp.body = (const char *) data + FUZZ_RPC_HEADER;
	resp.body_len = size - FUZZ_RPC_HEADER;
	resp.error_name = "";
	root = EwParseJson(NULL, resp.body, resp.body_len, st->api->answer_skip, &jerr);
	if (!check_answer(st, &resp, root, &jerr, &replies))
		return;
	if (scan == 0 && rs->receipts && !receipts_in_answer(replies))
		return;					/* receipts by hash: a follow-up request */

	switch (scan)
	{
		case 0:
		case 1:
		case 2:
		case 3:
			run_blocks(st, replies, from, to);
			break;
		case 4:
			if (st->api->answer_head(st, replies) < 0)
				fuzz_bug("a negative head");
			break;
		case 5:
			run_tx(st, replies);
			break;
		case 6:
			run_accounts(st, replies, from, n);
			break;
	}
	/* the rows, decoded with JSON-RPC's keys */
	i = fuzz_errors;
	fuzz_decode_collected(rows, nrows, false);
	if (verbose())
		fprintf(stderr, "fuzz_rpc: %d rows decoded, %d ERRORs\n", nrows, fuzz_errors - i);
}

/*
 * fuzz_decode.c - libFuzzer target over the wrapper's decoding and option
 * parsing: decode.c (EwParseJson with jansson, EwJsonExcerpt,
 * EwJsonGetUint64, and the decoder proper, EwInitColumn +
 * EwDecodeColumns/EwDecodeRow), hexnum.c (EwParseUint64, EwHexToDecimal,
 * EwWeiToEth), transport.c's EwCheckEndpointUrl and option.c's value
 * checks (EwParseHeaders, EwParseIntOption), with the backend replaced by
 * shim.c and shim_adt.c.  The files are linked as they are; build.sh
 * lists them.
 *
 * Target 7, in fuzz_rpc.c, is the JSON-RPC node API reading an answer.
 *
 * The first input byte picks the target (mod 8); the rest is its input.
 * An ERROR is an expected outcome; a crash, a sanitizer report or a broken
 * invariant (FUZZ_BUG) is a bug.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "datatype/timestamp.h"
#include "ethwhale_fdw.h"
#include "nodes/value.h"
#include "scan.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "fuzz.h"

/* j without the keys of skip, at any depth (jsonfast.c leaves them out) */
static void
strip_skipped(json_t *j, const char *const *skip)
{
	const char *const *k;
	const char *key;
	json_t	   *v;
	size_t		i;

	if (json_is_object(j))
	{
		for (k = skip; *k != NULL; k++)
			(void) json_object_del(j, *k);
		json_object_foreach(j, key, v)
			strip_skipped(v, skip);
	}
	else if (json_is_array(j))
		json_array_foreach(j, i, v)
			strip_skipped(v, skip);
}

/* A JSON-RPC answer (or batch) as jsonfast.c parses it with skip. */
static void
strip_answer(json_t *root, const char *const *skip)
{
	json_t	   *v;
	size_t		i;

	if (json_is_object(root))
		strip_skipped(json_object_get(root, "result"), skip);
	else if (json_is_array(root))
	{
		json_array_foreach(root, i, v)
		{
			if (json_is_object(v))
				strip_skipped(json_object_get(v, "result"), skip);
		}
	}
}

char *
defGetString(DefElem *def)
{
	return strVal(def->arg);
}

static void
decode_value(json_t *v)
{
	uint64		u;
	bool		ok;

	(void) EwJsonGetUint64(v, &u);
	if (json_is_string(v))
	{
		char	   *dec = EwHexToDecimal(json_string_value(v), &ok);

		(void) EwParseUint64(json_string_value(v), &u);
		if (ok)
			(void) EwWeiToEth(dec);
	}
}

/* every member of every block and transaction object, as the scan sees them */
static void
walk_answer(json_t *root)
{
	json_t	   *blocks = json_object_get(json_object_get(root, "data"), "blocks");
	size_t		i,
				k;
	json_t	   *b,
			   *t,
			   *v;
	const char *key;

	(void) EwJsonExcerpt(root);
	json_array_foreach(blocks, i, b)
	{
		json_object_foreach(b, key, v)
		{
			decode_value(v);
			if (json_is_object(v))
				decode_value(json_object_get(v, "address"));
		}
		json_array_foreach(json_object_get(b, "transactions"), k, t)
		{
			json_object_foreach(t, key, v)
				decode_value(v);
		}
	}
}

/*
 * Target 6: the decoder proper.  The input is an answer as the scan reads
 * it ({"data": ...}, or the data object itself): every block of
 * data.blocks gives an eth_block row, an eth_tx row per transaction (and a
 * counted row, tx NULL), an eth_token_transfer row per log; data.transaction
 * gives an eth_tx row by hash; data.block with accounts a0, a1, ... gives
 * eth_account rows, at that block and at the head.  Each row is decoded
 * with every column of its table, once with the canonical column types
 * (direct conversion) without tables, with price and token tables, and with
 * tokens but no prices (an ETH-priced token on an unpriced day), then once
 * per type of fuzz_col_types (most of them not direct: the type's input
 * function).  Each column is decoded alone, so an ERROR in one does not
 * hide the next, then the whole row with EwDecodeRow.
 */
/* what EwLoadPrices and EwLoadTokens give a decoder */
typedef struct FuzzTables
{
	HTAB	   *prices;
	HTAB	   *tokens;
} FuzzTables;

typedef struct FuzzColType
{
	Oid			typid;
	int32		typmod;
} FuzzColType;

/* column types other than the canonical ones */
static const FuzzColType fuzz_col_types[] = {
	{TEXTOID, -1},
	{VARCHAROID, 12 + VARHDRSZ},
	{INT2OID, -1},
	{INT4OID, -1},
	{INT8OID, -1},
	{NUMERICOID, -1},
	{NUMERICOID, ((10 << 16) | 2) + VARHDRSZ},
	{FLOAT8OID, -1},
	{BOOLOID, -1},
	{TIMESTAMPTZOID, -1},
	{TIMESTAMPTZOID, 0},
	{TIMESTAMPOID, -1},
};

/* the type IMPORT FOREIGN SCHEMA gives a field */
static Oid
canonical_type(const EwField *f)
{
	static const struct
	{
		const char *name;
		Oid			typid;
	}			map[] = {
		{"bigint", INT8OID}, {"int", INT4OID}, {"text", TEXTOID},
		{"numeric", NUMERICOID}, {"timestamptz", TIMESTAMPTZOID}, {"bool", BOOLOID},
	};
	int			i;

	for (i = 0; i < lengthof(map); i++)
		if (strcmp(f->sqltype, map[i].name) == 0)
			return map[i].typid;
	FUZZ_BUG("field type unknown to the harness");
	return InvalidOid;
}

static Datum
fuzz_numeric(const char *s)
{
	return DirectFunctionCall3(numeric_in, CStringGetDatum(s),
							   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
}

/* The token contract of a log row: account{address} (GraphQL), address */
static json_t *
row_token(const FuzzRow *row)
{
	if (row->rpc)
		return json_object_get(row->obj, "address");
	return json_object_get(json_object_get(row->obj, "account"), "address");
}

/*
 * The tables EwLoadPrices and EwLoadTokens would read: an ETH/USD price
 * for the day of every block (as day_price computes it) unless no_prices,
 * and ethwhale.token
 * with USDT, WETH and every log's contract that is an address (what
 * EwLoadTokens keeps), with decimals 0..77, pegged or priced as ETH.
 */
static void
fill_tables(FuzzTables *d, FuzzRow *rows, int nrows, bool no_prices)
{
	static const char *const prices[] = {"1834.56", "0.0001", "250000", "3.14159265358979323846"};
	static const char *const pegs[] = {"1", "0.5", "123456.789", "0"};
	HASHCTL		ctl;
	int			i;
	EwTokenEntry *te;

	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(EwPriceEntry);
	ctl.hcxt = NULL;
	d->prices = hash_create("prices", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ctl.keysize = 43;
	ctl.entrysize = sizeof(EwTokenEntry);
	d->tokens = hash_create("tokens", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	te = hash_search(d->tokens, "0xdac17f958d2ee523a2206206994597c13d831ec7", HASH_ENTER, NULL);
	te->decimals = 6;
	te->as_eth = false;
	te->peg = fuzz_numeric("1");
	te = hash_search(d->tokens, "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", HASH_ENTER, NULL);
	te->decimals = 18;
	te->as_eth = true;
	te->peg = (Datum) 0;

	for (i = 0; i < nrows; i++)
	{
		uint64		ts;
		json_t	   *a;

		if (!no_prices &&
			EwJsonGetUint64(json_object_get(rows[i].block, "timestamp"), &ts) &&
			ts <= (uint64) PG_INT64_MAX)
		{
			int32		day = (int32) ((int64) ts / SECS_PER_DAY);
			EwPriceEntry *pe = hash_search(d->prices, &day, HASH_ENTER, NULL);

			pe->price = fuzz_numeric(prices[(uint32) day % lengthof(prices)]);
		}
		a = row_token(&rows[i]);
		if (rows[i].kind == EW_TABLE_TOKEN_TRANSFER && json_is_string(a))
		{
			char	   *addr = EwLowerHex(json_string_value(a));
			bool		found;

			if (!EwIsAddress(addr))
				continue;
			te = hash_search(d->tokens, addr, HASH_ENTER, &found);
			if (found)
				continue;
			te->decimals = (int) strtol(addr + 38, NULL, 16) % 78;
			te->as_eth = addr[41] < '4';
			te->peg = te->as_eth ? (Datum) 0 : fuzz_numeric(pegs[addr[40] % lengthof(pegs)]);
		}
	}
}

/* the rows the scan would decode from this answer */
static int
collect_rows(json_t *root, FuzzRow *rows)
{
	json_t	   *data = json_object_get(root, "data");
	json_t	   *b,
			   *t,
			   *blk;
	size_t		i,
				k;
	int			n = 0;

#define ADD_ROW(K, B, O, A) \
	do { \
		if (n < FUZZ_MAX_ROWS) \
			rows[n++] = (FuzzRow) {(K), (B), (O), (A), false}; \
	} while (0)

	if (!json_is_object(data))
		data = root;
	json_array_foreach(json_object_get(data, "blocks"), i, b)
	{
		ADD_ROW(EW_TABLE_BLOCK, b, NULL, -1);
		ADD_ROW(EW_TABLE_TX, b, NULL, -1);
		json_array_foreach(json_object_get(b, "transactions"), k, t)
			ADD_ROW(EW_TABLE_TX, b, t, -1);
		/* the scan decodes only ERC-20 transfers; the decoder must cope with any log */
		json_array_foreach(json_object_get(b, "logs"), k, t)
			ADD_ROW(EW_TABLE_TOKEN_TRANSFER, b, t, -1);
	}
	t = json_object_get(data, "transaction");
	if (json_is_object(t) && json_is_object(json_object_get(t, "block")))
		ADD_ROW(EW_TABLE_TX, json_object_get(t, "block"), t, -1);
	blk = json_object_get(data, "block");
	if (json_is_object(blk))
	{
		uint64		number;
		int64		at = -1;
		char		alias[16];
		json_t	   *a;

		if (EwJsonGetUint64(json_object_get(blk, "number"), &number) &&
			number <= (uint64) PG_INT64_MAX)
			at = (int64) number;
		for (i = 0;; i++)
		{
			snprintf(alias, sizeof(alias), "a%d", (int) i);
			a = json_object_get(blk, alias);
			if (!json_is_object(a))
				break;
			ADD_ROW(EW_TABLE_ACCOUNT, blk, a, at);
			ADD_ROW(EW_TABLE_ACCOUNT, blk, a, -1);
		}
	}
#undef ADD_ROW
	return n;
}

/*
 * A BigInt column decoded directly must equal the exact hex-to-decimal
 * path (get_bignum and numeric_in), whatever shortcut the decoder took;
 * an ERROR from that path where the decoder succeeded is a bug too.
 */
static void
check_bignum(EwDecoder *d, const EwColumn *col, const FuzzRow *row, Datum v)
{
	const EwField *f = col->field;
	sigjmp_buf	local;
	sigjmp_buf *save = PG_exception_stack;
	Datum		want = (Datum) 0;

	PG_exception_stack = &local;
	if (sigsetjmp(local, 0) == 0)
	{
		json_t	   *j = json_object_get(f->source == EW_SRC_BLOCK ? row->block : row->obj,
										col->key);
		bool		ok = false;
		char	   *dec = NULL;

		if (j && col->subkey)
			j = json_object_get(j, col->subkey);
		if (json_is_string(j))
			dec = EwHexToDecimal(json_string_value(j), &ok);
		else if (json_is_integer(j) && json_integer_value(j) >= 0)
		{
			dec = psprintf(INT64_FORMAT, (int64) json_integer_value(j));
			ok = true;
		}
		if (!ok)
			FUZZ_BUG("BigInt decoded where the exact path finds no number");
		want = fuzz_numeric(dec);
	}
	else
		FUZZ_BUG("BigInt decoded where the exact path raises an ERROR");
	PG_exception_stack = save;
	if (strcmp(DatumGetCString(DirectFunctionCall1(numeric_out, v)),
			   DatumGetCString(DirectFunctionCall1(numeric_out, want))) != 0)
		FUZZ_BUG("BigInt decoded to another value than the exact path gives");
}

/* a column's Datum must be a well-formed value of the column's type */
static void
check_value(EwDecoder *d, const EwColumn *col, const FuzzRow *row, Datum v)
{
	const EwField *f = col->field;

	switch (col->typid)
	{
		case TEXTOID:
		case VARCHAROID:
			{
				text	   *t = (text *) DatumGetPointer(v);
				int			len = VARSIZE(t) - VARHDRSZ;
				char	   *s;

				if (len < 0 || memchr(VARDATA(t), '\0', len) != NULL)
					FUZZ_BUG("malformed text Datum");
				s = text_to_cstring(t);
				/* hashes and addresses are compared in lowercase */
				if (col->direct && f->kind == EW_KIND_TEXT &&
					strcspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != (size_t) len)
					FUZZ_BUG("text column not in lowercase");
				if (col->direct && f->source == EW_SRC_TOPIC_ADDRESS &&
					EwIsErc20Transfer(row->obj) && !EwIsAddress(s))
					FUZZ_BUG("address of an ERC-20 transfer is not an address");
				break;
			}
		case NUMERICOID:
			fuzz_check_numeric(v);
			if (col->direct && f->kind == EW_KIND_BIGNUM &&
				(f->source == EW_SRC_BLOCK || f->source == EW_SRC_ROW))
				check_bignum(d, col, row, v);
			break;
		case TIMESTAMPTZOID:
		case TIMESTAMPOID:
			if (!IS_VALID_TIMESTAMP(DatumGetTimestampTz(v)))
				FUZZ_BUG("timestamp Datum out of range");
			break;
		case BOOLOID:
			if (v != (Datum) 0 && v != (Datum) 1)
				FUZZ_BUG("bool Datum neither 0 nor 1");
			break;
	}

	/* a price of the day needs a day: the block's time must be one */
	if (f->source == EW_SRC_VALUE_USD || f->source == EW_SRC_AMOUNT_USD)
	{
		bool		by_day = f->source == EW_SRC_VALUE_USD;
		uint64		ts;

		if (!by_day)
		{
			json_t	   *a = row_token(row);
			EwTokenEntry *te = NULL;

			if (json_is_string(a) && d->tokens)
				te = hash_search(d->tokens, EwLowerHex(json_string_value(a)), HASH_FIND, NULL);
			by_day = te != NULL && te->as_eth;
		}
		if (by_day &&
			(!EwJsonGetUint64(json_object_get(row->block, "timestamp"), &ts) ||
			 ts > (uint64) 10000 * 366 * SECS_PER_DAY))
			FUZZ_BUG("priced at the day of a block time that is no timestamptz");
	}
}

/*
 * Decode one row with one set of column types (NULL: the canonical ones)
 * and price and token tables (NULL: none); ERRORs are caught.
 */
static void
decode_row(const FuzzRow *row, const FuzzColType *type,
		   const FuzzTables *tables)
{
	int			nfields;
	const EwField *fields = EwTableFields(row->kind, &nfields);
	EwDecoder	d;
	Datum	   *values;
	bool	   *nulls;
	volatile int i;
	int			j;
	uint64		mark = fuzz_mark();	/* the row's memory, as the scan's row_cxt */

	memset(&d, 0, sizeof(d));
	d.servername = "fuzz";
	d.rpc = row->rpc;
	d.account_block = row->account_block;
	d.cols = palloc0(sizeof(EwColumn) * nfields);
	d.ncols = nfields;
	values = palloc(sizeof(Datum) * nfields);
	nulls = palloc(sizeof(bool) * nfields);
	if (tables)
	{
		d.prices = tables->prices;
		d.tokens = tables->tokens;
	}

	/* columns in another order than the attributes, as filters put them */
	for (i = 0; i < nfields; i++)
	{
		FormData_pg_attribute attr;
		const EwField *f = &fields[(i + 1) % nfields];

		memset(&attr, 0, sizeof(attr));
		attr.atttypid = type ? type->typid : canonical_type(f);
		attr.atttypmod = type ? type->typmod : -1;
		EwInitColumn(&d.cols[i], &attr, f, (i + 1) % nfields, row->rpc);
		if (type == NULL && !d.cols[i].direct)
			FUZZ_BUG("canonical column type not converted directly");
	}

	for (i = 0; i <= nfields; i++)
	{
		for (j = 0; j < nfields; j++)
		{
			values[j] = (Datum) 0x5a5a5a5a;
			nulls[j] = true;
		}
		if (sigsetjmp(fuzz_jmp, 0) == 0)
		{
			if (i < nfields)
				EwDecodeColumns(&d, row->block, row->obj, values, nulls, i, i + 1);
			else
				EwDecodeRow(&d, row->block, row->obj, values, nulls);
			if (d.current != NULL)
				FUZZ_BUG("decoder left its error context set");
			for (j = 0; j < nfields; j++)
			{
				const EwColumn *col = &d.cols[j];

				if (i < nfields && j != i)
				{
					if (!nulls[col->attidx] || values[col->attidx] != (Datum) 0x5a5a5a5a)
						FUZZ_BUG("decoder wrote a column it was not asked for");
					continue;
				}
				if (!nulls[col->attidx])
					check_value(&d, col, row, values[col->attidx]);
			}
		}
		PG_exception_stack = NULL;
		error_context_stack = NULL;
	}
	fuzz_release(mark);
}

/*
 * Decode each row with every column of its table: with the canonical
 * types without tables, with both tables, with tokens only; then, if
 * all_types, with each type of fuzz_col_types.
 */
void
fuzz_decode_collected(FuzzRow *rows, int nrows, bool all_types)
{
	FuzzTables	full,
				tokens_only;
	int			r,
				t;
	sigjmp_buf	outer;

	/* decode_row catches ERRORs at fuzz_jmp: the caller's is restored */
	memcpy(&outer, &fuzz_jmp, sizeof(outer));
	fill_tables(&full, rows, nrows, false);
	fill_tables(&tokens_only, rows, nrows, true);
	for (r = 0; r < nrows; r++)
	{
		decode_row(&rows[r], NULL, NULL);
		decode_row(&rows[r], NULL, &full);
		decode_row(&rows[r], NULL, &tokens_only);
		for (t = 0; all_types && t < lengthof(fuzz_col_types); t++)
			decode_row(&rows[r], &fuzz_col_types[t], t % 2 ? &full : NULL);
	}
	memcpy(&fuzz_jmp, &outer, sizeof(outer));
}

static void
decode_rows(const char *json, size_t len)
{
	json_error_t err;
	json_t	   *root = EwParseJson(NULL, json, len, NULL, &err);
	FuzzRow    *rows;

	if (root == NULL)
		return;
	rows = palloc(sizeof(FuzzRow) * FUZZ_MAX_ROWS);
	fuzz_decode_collected(rows, collect_rows(root, rows), true);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited = false;
	char	   *s;
	int			target;

	if (!inited)
	{
		EwJsonInit();
		inited = true;
	}
	if (size < 1)
		return 0;
	target = data[0] % 8;
	s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';

	if (sigsetjmp(fuzz_jmp, 0) == 0)
	{
		switch (target)
		{
			case 0:
				{
					json_error_t err;
					json_t	   *root = EwParseJson(NULL, (const char *) data + 1, size - 1, NULL, &err);
					json_t	   *fast = EwJsonFastLoad((const char *) data + 1, size - 1, NULL);
					json_t	   *slow = json_loadb((const char *) data + 1, size - 1,
												  JSON_REJECT_DUPLICATES, &err);

					/*
					 * jsonfast.c accepts only what jansson accepts, and
					 * builds jansson's tree
					 */
					if (fast != NULL && (slow == NULL || !json_equal(fast, slow)))
						__builtin_trap();

					/*
					 * and with the keys of JSON-RPC data no decoder reads
					 * left out of "result": jansson's tree (duplicates
					 * allowed, as they are inside a skipped value) without
					 * them; never less than without skipping
					 */
					{
						const char *const *skip = EwJsonRpcApi.answer_skip;
						json_t	   *part = EwJsonFastLoad((const char *) data + 1, size - 1, skip);
						json_t	   *any = json_loadb((const char *) data + 1, size - 1, 0, &err);

						if (any != NULL)
							strip_answer(any, skip);
						if (part != NULL && (any == NULL || !json_equal(part, any)))
							__builtin_trap();
						if (fast != NULL && part == NULL)
							__builtin_trap();
						if (part)
							json_decref(part);
						if (any)
							json_decref(any);
					}
					if (fast)
						json_decref(fast);
					if (slow)
						json_decref(slow);
					if (root)
						walk_answer(root);
					break;
				}
			case 1:
				{
					bool		ok;
					char	   *dec = EwHexToDecimal(s, &ok);

					if (ok)
						(void) EwWeiToEth(dec);
					break;
				}
			case 2:
				{
					uint64		u;

					(void) EwParseUint64(s, &u);
					break;
				}
			case 3:
				{
					bool		userinfo;

					(void) EwCheckEndpointUrl(s, &userinfo);
					break;
				}
			case 4:
				{
					EwHeader   *h;
					int			n = EwParseHeaders(s, &h);
					int			k;

					/* a parsed header is one clean line: no CR or LF */
					for (k = 0; k < n; k++)
						if (strpbrk(h[k].name, "\r\n:") || strpbrk(h[k].value, "\r\n"))
							FUZZ_BUG("a header line with a line break or a colon in its name");
					break;
				}
			case 5:
				{
					/* the ranges of the integer options (option.c) */
					static const int ranges[][2] = {
						{1, 3600000}, {1, 600000}, {0, 100}, {1, 100000},
						{1, 64}, {1, 4096}, {0, 10000}
					};
					int			k;

					for (k = 0; k < lengthof(ranges); k++)
					{
						int			v = EwParseIntOption("x", s, ranges[k][0], ranges[k][1]);

						if (v < ranges[k][0] || v > ranges[k][1])
							FUZZ_BUG("an integer option outside its range");
					}
					break;
				}
			case 6:
				decode_rows((const char *) data + 1, size - 1);
				break;
			case 7:
				fuzz_rpc(data + 1, size - 1);
				break;
		}
	}
	fuzz_reset();
	free(s);
	return 0;
}

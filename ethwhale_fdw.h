/*-------------------------------------------------------------------------
 *
 * ethwhale_fdw.h
 *		  Foreign-data wrapper for Ethereum nodes serving the EIP-1767
 *		  GraphQL API (Geth's /graphql endpoint).
 *
 * The wrapper is split the way postgres_fdw is: ethwhale_fdw.c holds the
 * FDW callbacks, option.c the option table and validator, deparse.c the
 * clause classification and GraphQL builder, transport.c the libcurl handle
 * cache, and decode.c the JSON-to-Datum conversion.
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETHWHALE_FDW_H
#define ETHWHALE_FDW_H

#include "fmgr.h"

/*
 * PostgreSQL's SQL-callable json_object() and json_typeof() share their names
 * with jansson's json_object() function and json_typeof() macro.  Read
 * fmgrprotos.h first, with PostgreSQL's json_object renamed (its include
 * guard keeps later includes from declaring it again), then jansson.
 */
#define json_object ew_pg_json_object_unused
#include "utils/fmgrprotos.h"
#undef json_object
#include <jansson.h>

#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/pathnodes.h"
#include "utils/hsearch.h"
#include "utils/relcache.h"
#include "access/tupdesc.h"

/* Kinds of foreign table, chosen by the table option "table". */
typedef enum EwTableKind
{
	EW_TABLE_BLOCK,
	EW_TABLE_TX,
	EW_TABLE_TOKEN_TRANSFER,
	EW_TABLE_ACCOUNT
} EwTableKind;

/* How a logical field is converted to a Datum. */
typedef enum EwValueKind
{
	EW_KIND_INT,				/* Long or Int: hex string or JSON number */
	EW_KIND_BIGNUM,				/* BigInt: exact numeric */
	EW_KIND_TEXT,				/* address, hash, bytes */
	EW_KIND_TIME,				/* unix seconds as timestamptz */
	EW_KIND_BOOL				/* derived truth value */
} EwValueKind;

/* Where a logical field's value comes from in the GraphQL answer. */
typedef enum EwSource
{
	EW_SRC_BLOCK,				/* a field of the Block object */
	EW_SRC_TX,					/* a field of the Transaction object */
	EW_SRC_BLOCK_NUMBER,		/* tx table: the enclosing block's number */
	EW_SRC_BLOCK_TIME,			/* tx table: the enclosing block's timestamp */
	EW_SRC_VALUE_ETH,			/* tx.value / 1e18 */
	EW_SRC_VALUE_USD,			/* tx.value / 1e18 * price of the day */
	EW_SRC_SELECTOR,			/* first four bytes of tx.inputData */
	EW_SRC_TOPIC_ADDRESS,		/* log: address in topics[topic] */
	EW_SRC_AMOUNT,				/* log: uint256 in data */
	EW_SRC_AMOUNT_USD,			/* log: amount priced by ethwhale.token */
	EW_SRC_ACCOUNT_BLOCK,		/* account: the block asked for, NULL = head */
	EW_SRC_CODE_SIZE,			/* account: length of code in bytes */
	EW_SRC_IS_CONTRACT			/* account: code is not empty */
} EwSource;

/*
 * A logical field of a foreign table: the column it is normally called,
 * the GraphQL selection that fetches it, and how it is decoded.
 */
typedef struct EwField
{
	const char *name;			/* canonical column name */
	const char *gql_name;		/* GraphQL leaf name, also accepted by "field" */
	const char *sqltype;		/* column type created by IMPORT FOREIGN SCHEMA */
	const char *selection;		/* GraphQL selection text, NULL if derived */
	const char *key;			/* JSON key of the selection in the answer */
	const char *subkey;			/* nested key (e.g. "address"), or NULL */
	EwSource	source;
	EwValueKind kind;
	bool		receipt;		/* needs a receipt read on the node */
	int			topic;			/* EW_SRC_TOPIC_ADDRESS: index in topics */
} EwField;

/* Server, user mapping and table options, merged. */
typedef struct EwOptions
{
	char	   *endpoint;
	int			timeout_ms;
	int			connect_timeout_ms;
	int			max_retries;
	int			batch_blocks;
	int			concurrency;
	int			max_response_mb;
	int			confirmations;
	char	   *bearer_token;	/* from the user mapping, never shown */
	char	   *headers;		/* "Name: value" lines from the user mapping */
	EwTableKind table;
} EwOptions;

/* Counters shown by EXPLAIN ANALYZE. */
typedef struct EwStats
{
	int64		requests;
	int64		bytes;
	int64		retries;
	int64		rows_filtered;
	int64		logs_skipped;	/* Transfer logs that are not ERC-20 shaped */
} EwStats;

/* Result of one HTTP exchange, before interpretation. */
typedef struct EwResponse
{
	long		http_status;
	int			curl_code;		/* CURLcode, 0 on success */
	bool		too_large;		/* max_response_mb was exceeded */
	long		retry_after_s;	/* Retry-After header, -1 if none */
	const char *body;			/* owned by the connection, valid until the
								 * next request on it */
	size_t		body_len;
	char		errbuf[256];	/* curl's error text */
} EwResponse;

typedef struct EwConnection EwConnection;

/* keccak256("Transfer(address,address,uint256)") */
#define EW_TRANSFER_TOPIC "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

/* Strategy code for "block = ANY(array)", beyond the btree strategies. */
#define EW_STRATEGY_IN 10

/* One output column: which field fills it and how to convert. */
typedef struct EwColumn
{
	int			attidx;			/* 0-based index in the tuple descriptor */
	const EwField *field;
	Oid			typid;
	int32		typmod;
	bool		direct;			/* type is the field's natural type */
	FmgrInfo	infunc;			/* otherwise: the type's input function */
	Oid			ioparam;
} EwColumn;

/* State for turning JSON objects into rows. */
typedef struct EwDecoder
{
	const char *servername;
	const char *relname;
	EwColumn   *cols;			/* only the columns the query needs */
	int			ncols;
	HTAB	   *prices;			/* day -> ETH/USD, NULL if not needed */
	HTAB	   *tokens;			/* token address -> decimals and peg */
	int64		account_block;	/* eth_account: block asked for, -1 = head */
	/* what is being decoded, for the error context */
	const EwColumn *current;
	const char *current_block;
} EwDecoder;

/* in option.c */
extern void EwGetOptions(Oid foreigntableid, Oid serverid, Oid userid,
						 EwOptions *opts);
extern EwTableKind EwParseTableKind(const char *value);
extern const char *EwTableKindName(EwTableKind kind);

/* in deparse.c */
extern const EwField *EwTableFields(EwTableKind kind, int *nfields);
extern const EwField *EwLookupField(EwTableKind kind, const char *name);
extern void EwAppendSelection(StringInfo buf, EwTableKind kind,
							  const EwField **fields, int nfields,
							  bool count_only, bool by_hash);
extern int	EwClassifyBound(Expr *clause, Index relid, AttrNumber attno,
							Expr **value);
extern Expr *EwClassifyHashEq(Expr *clause, Index relid, AttrNumber attno);
extern Expr *EwClassifyTextIn(Expr *clause, Index relid, AttrNumber attno,
							  bool *is_array);
extern AttrNumber EwRelVarAttno(Node *node, Index relid);
extern bool EwClassifyValueFilter(Expr *clause, Index relid, AttrNumber *attno,
								  Oid *opno, Expr **value);

/* in transport.c */
extern EwConnection *EwGetConnection(ForeignServer *server, const EwOptions *opts);
extern void EwPost(EwConnection *conn, const char *body, size_t body_len,
				   const EwOptions *opts, EwResponse *resp);
extern const char *EwCurlStrerror(int code);

/* in decode.c */
extern void EwJsonInit(void);
extern json_t *EwParseJson(MemoryContext cxt, const char *body, size_t len,
						   json_error_t *err);
extern void EwInitColumn(EwColumn *col, Form_pg_attribute attr,
						 const EwField *field, int attidx);
extern HTAB *EwLoadPrices(MemoryContext cxt);
extern HTAB *EwLoadTokens(MemoryContext cxt);
extern bool EwIsErc20Transfer(json_t *log);
extern bool EwIsAddress(const char *s);
extern void EwDecodeColumns(EwDecoder *d, json_t *block, json_t *tx,
							Datum *values, bool *nulls, int first, int last);
extern void EwDecodeRow(EwDecoder *d, json_t *block, json_t *tx,
						Datum *values, bool *nulls);
extern bool EwJsonGetUint64(json_t *j, uint64 *result);
extern char *EwJsonExcerpt(json_t *j);
extern char *EwHexToDecimal(const char *s, bool *ok);
extern char *EwWeiToEth(const char *wei_decimal);
extern char *EwShiftDecimal(const char *digits, int places);
extern bool EwParseUint64(const char *s, uint64 *result);

#endif							/* ETHWHALE_FDW_H */

/*-------------------------------------------------------------------------
 *
 * ethwhale_fdw.h
 *		  Foreign-data wrapper for Ethereum nodes: the types shared by every
 *		  file, and the functions each file offers the others.
 *
 * The files, one concern each (README.md, "How it is built"):
 *	ethwhale_fdw.c	handler, FDW callbacks, the setting, EXPLAIN
 *	planner.c		estimates, costs, paths (parameterized too), the plan
 *	catalog.c		table kinds, their fields, column resolution, IMPORT
 *	option.c		option table, validator, merged options, "headers"
 *	deparse.c		clause classification and every GraphQL document
 *	scanplan.c		the plan (EwScanPlan) packed into fdw_private
 *	bounds.c		block ranges and address sets from the bounds
 *	scan.c			the fetch loop, the filters, rows
 *	chunk.c			blocks per request: first, adapted, shrunk; sizes learnt
 *	account.c		eth_account: address batches at a block or the head
 *	pipeline.c		concurrent chunk requests (concurrency > 1)
 *	request.c		retry, back-off, shrinking, failure -> SQLSTATE
 *	graphql.c		the GraphQL (EIP-1767) node API: documents to requests,
 *					answers checked
 *	jsonrpc.c		the JSON-RPC node API: batches of eth_* calls, EXPLAIN
 *	rpcanswers.c	JSON-RPC replies assembled into blocks and rows
 *	rpcerrors.c		what a JSON-RPC node's errors and limits mean
 *	transport.c		libcurl, the only file that includes curl.h
 *	jsonmem.c		jansson's allocator: palloc, the answers' bump arena
 *	jsonfast.c		the fast parser of the JSON subset nodes answer with
 *	decode.c		JSON values to Datums
 *	hexnum.c		hex and decimal arithmetic, free of the backend
 *	prices.c		ethwhale.eth_usd and ethwhale.token, read by SPI
 *
 * scan.h holds the executor's state, shared by the scan files.
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

/*
 * A new empty jansson object.  jansson's json_object() cannot be called
 * from here: the backend exports PostgreSQL's json_object (the SQL
 * function) and the dynamic linker binds this library's calls to it.
 */
#define ew_json_object() json_pack("{}")

#include "access/tupdesc.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/pathnodes.h"
#include "utils/hsearch.h"
#include "utils/relcache.h"

#include "hexnum.h"

/* Kinds of foreign table, chosen by the table option "table". */
typedef enum EwTableKind
{
	EW_TABLE_BLOCK,
	EW_TABLE_TX,
	EW_TABLE_TOKEN_TRANSFER,
	EW_TABLE_ACCOUNT
} EwTableKind;

#define EW_NUM_TABLE_KINDS 4

/* How a logical field is converted to a Datum. */
typedef enum EwValueKind
{
	EW_KIND_INT,				/* Long or Int: hex string or JSON number */
	EW_KIND_BIGNUM,				/* BigInt: exact numeric */
	EW_KIND_TEXT,				/* address or hash */
	EW_KIND_TIME,				/* unix seconds as timestamptz */
	EW_KIND_BOOL				/* derived truth value (is_contract) */
} EwValueKind;

/* Where a logical field's value comes from in the answer. */
typedef enum EwSource
{
	EW_SRC_BLOCK,				/* a field of the Block object */
	EW_SRC_ROW,					/* a field of the row object (tx, log,
								 * account) */
	EW_SRC_BLOCK_NUMBER,		/* row tables: the enclosing block's number */
	EW_SRC_BLOCK_TIME,			/* row tables: the enclosing block's time */
	EW_SRC_VALUE_ETH,			/* wei / 1e18 */
	EW_SRC_VALUE_USD,			/* wei / 1e18 * price of the day */
	EW_SRC_SELECTOR,			/* first four bytes of tx.inputData */
	EW_SRC_TOPIC_ADDRESS,		/* log: address in topics[topic] */
	EW_SRC_AMOUNT,				/* log: uint256 in data */
	EW_SRC_AMOUNT_USD,			/* log: amount priced by ethwhale.token */
	EW_SRC_ACCOUNT_BLOCK,		/* account: the block asked for, NULL = head */
	EW_SRC_CODE_SIZE,			/* account: length of code in bytes */
	EW_SRC_IS_CONTRACT			/* account: code is not empty */
} EwSource;

/* Roles of a field in planning and decoding (EwField.flags). */
#define EW_FIELD_BLOCK_KEY	0x01	/* the block number: bounds become ranges */
#define EW_FIELD_HASH_KEY	0x02	/* eth_tx.hash: transaction(hash:) */
#define EW_FIELD_AMOUNT		0x04	/* numeric the wrapper may filter on */
#define EW_FIELD_ADDRESS	0x08	/* text is an address (else a 32-byte hash) */
#define EW_FIELD_ALWAYS		0x10	/* always selected by the document */
#define EW_FIELD_RECEIPT	0x20	/* needs a receipt read on the node */
#define EW_FIELD_TX_KEY		0x40	/* a log's transaction hash (joins eth_tx) */

/*
 * Address columns pushed into the request: the token (logs' addresses),
 * the sender and receiver (topics 1 and 2) of eth_token_transfer, and the
 * address of eth_account.
 */
typedef enum EwAddrSlot
{
	EW_ADDR_NONE = -1,
	EW_ADDR_TOKEN,
	EW_ADDR_FROM,
	EW_ADDR_TO,
	EW_ADDR_ACCOUNT,
	EW_NUM_ADDR_SLOTS
} EwAddrSlot;

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
	const char *rpc_key;		/* JSON-RPC: the key in the call's result */
	EwSource	source;
	EwValueKind kind;
	int			flags;			/* EW_FIELD_* */
	int			topic;			/* EW_SRC_TOPIC_ADDRESS: index in topics */
	EwAddrSlot	addr_slot;		/* pushed as this address, or EW_ADDR_NONE */
} EwField;

/* A table kind: its option value, IMPORT name and fields (catalog.c). */
typedef struct EwTableKindInfo
{
	EwTableKind kind;
	const char *option;			/* value of the table option "table" */
	const char *import_name;	/* table created by IMPORT FOREIGN SCHEMA */
	const EwField *fields;
	int			nfields;
} EwTableKindInfo;

/* The protocol a server speaks (server option "api"). */
typedef enum EwApiKind
{
	EW_API_AUTO,				/* unset: from the endpoint's path */
	EW_API_GRAPHQL,
	EW_API_JSONRPC
} EwApiKind;

/* Server, user mapping and table options, merged. */
/*
 * The server option "compression": whether answers are asked for gzipped
 * (Accept-Encoding).  auto: not on a loopback endpoint, where gzip costs
 * both ends CPU and saves no transfer time.
 */
typedef enum EwCompression
{
	EW_COMPRESSION_AUTO,		/* unset: none on loopback, else gzip */
	EW_COMPRESSION_GZIP,
	EW_COMPRESSION_NONE
} EwCompression;

typedef struct EwOptions
{
	char	   *endpoint;
	EwApiKind	api;			/* never EW_API_AUTO once merged */
	EwCompression compression;	/* never EW_COMPRESSION_AUTO once merged */
	char	   *ca_file;		/* CA certificates for https, NULL: system's */
	int			timeout_ms;
	int			connect_timeout_ms;
	int			max_retries;
	int			batch_blocks;
	int			concurrency;
	int			max_response_mb;
	int			max_requests;	/* request budget of one scan */
	char	   *bearer_token;	/* from the user mapping, never shown */
	char	   *headers;		/* "Name: value" lines from the user mapping */
	EwTableKind table;
} EwOptions;

/* One "Name: value" line of the headers option, split. */
typedef struct EwHeader
{
	char	   *name;
	char	   *value;			/* without surrounding blanks */
} EwHeader;

/* Counters shown by EXPLAIN ANALYZE. */
typedef struct EwStats
{
	int64		requests;
	int64		bytes;
	int64		retries;
	int64		rows_filtered;
	int64		logs_skipped;	/* Transfer logs that are not ERC-20 shaped */
	int64		reused;			/* rescans answered by the last answer */
} EwStats;

/*
 * How one HTTP exchange ended, as transport.c reports it: a neutral status
 * that names no libcurl code, so that the request policy (request.c) can
 * decide what it means without including curl.h.
 */
typedef enum EwNetStatus
{
	EW_NET_OK,					/* an answer arrived (any HTTP status) */
	EW_NET_TIMEOUT,				/* timeout_ms or connect_timeout_ms */
	EW_NET_CONNECT,				/* could not resolve or connect */
	EW_NET_TLS,					/* TLS handshake or certificate failure */
	EW_NET_REFUSED_URL,			/* scheme or URL libcurl will not use */
	EW_NET_EMPTY,				/* connection closed with no answer */
	EW_NET_TRUNCATED,			/* connection closed within the answer */
	EW_NET_RESET,				/* could not receive (reset) */
	EW_NET_TOO_LARGE,			/* max_response_mb was exceeded */
	EW_NET_INTERRUPTED,			/* a cancel or die arrived */
	EW_NET_OTHER				/* anything else; errbuf says what */
} EwNetStatus;

/* Result of one HTTP exchange, before interpretation. */
typedef struct EwResponse
{
	EwNetStatus status;
	long		http_status;
	long		retry_after_s;	/* Retry-After header, -1 if none */
	const char *body;			/* owned by the connection, valid until the
								 * next request on it */
	size_t		body_len;
	const char *error_name;		/* the transport's name of the failure */
	char		errbuf[256];	/* the transport's error text */
} EwResponse;

typedef struct EwConnection EwConnection;
typedef struct EwSlot EwSlot;

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
	const char *key;			/* where the value is in the row or block */
	const char *subkey;			/* ... (GraphQL: e.g. from{address}) */
	bool		nested;			/* read from the row's "transaction" (a
								 * pushed eth_token_transfer JOIN eth_tx) */
	FmgrInfo	infunc;			/* otherwise: the type's input function */
	Oid			ioparam;
} EwColumn;

/* State for turning JSON objects into rows. */
typedef struct EwDecoder
{
	const char *servername;
	bool		rpc;			/* JSON-RPC shapes (rpc_key), else GraphQL */
	EwColumn   *cols;			/* only the columns the query needs */
	int			ncols;
	HTAB	   *prices;			/* day -> ETH/USD, NULL if not needed */
	HTAB	   *tokens;			/* token address -> decimals and peg */
	int64		account_block;	/* eth_account: block asked for, -1 = head */
	const EwColumn *current;	/* being decoded, for the error context */
} EwDecoder;

/* Entries of the price and token tables (prices.c, read by decode.c). */
typedef struct EwPriceEntry
{
	int32		day;			/* days since the Unix epoch */
	Datum		price;			/* numeric, in the hash's context */
} EwPriceEntry;

typedef struct EwTokenEntry
{
	char		address[43];	/* hash key: "0x" + 40 lowercase hex */
	int			decimals;
	bool		as_eth;			/* priced at the day's ETH/USD */
	Datum		peg;			/* numeric USD price, unless as_eth */
} EwTokenEntry;

/* in ethwhale_fdw.c: the setting ethwhale.max_requests_per_query */
extern int	EwMaxRequestsPerQuery;

/* in catalog.c */
extern const EwTableKindInfo *EwTableKindInfoOf(EwTableKind kind);
extern const EwField *EwTableFields(EwTableKind kind, int *nfields);
extern const EwField *EwLookupField(EwTableKind kind, const char *name);
extern int	EwFieldCode(const EwField *f);
extern const EwField *EwFieldByCode(int code);
extern bool EwFieldInLogTransaction(EwTableKind scan_kind, const EwField *f);
extern EwTableKind EwParseTableKind(const char *value);
extern const char *EwTableKindName(EwTableKind kind);
extern const char *EwTableKindList(void);
extern const EwField **EwResolveColumns(Relation rel, EwTableKind kind);
extern AttrNumber EwFindColumn(const EwField **colfields, int natts,
							   int flag, EwAddrSlot slot);
extern const char *EwColumnName(Relation rel, AttrNumber attno,
								const char *fallback);
extern List *EwImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid);

/* in option.c */
extern void EwGetOptions(Oid foreigntableid, Oid serverid, Oid userid,
						 EwOptions *opts);
extern int	EwParseHeaders(const char *value, EwHeader **headers);
extern int	EwParseIntOption(const char *name, const char *value, int min, int max);
extern EwApiKind EwParseApi(const char *value);
extern EwApiKind EwApiOfEndpoint(const char *endpoint);
extern EwCompression EwParseCompression(const char *value);

/* in decode.c */
extern json_t *EwParseJson(MemoryContext cxt, const char *body, size_t len,
						   const char *const *skip, json_error_t *err);
extern char *EwJsonExcerpt(json_t *j);
extern bool EwJsonGetUint64(json_t *j, uint64 *result);
extern bool EwIsErc20Transfer(json_t *log);
extern void EwInitColumn(EwColumn *col, Form_pg_attribute attr,
						 const EwField *field, int attidx, bool rpc);
extern void EwDecodeColumns(EwDecoder *d, json_t *block, json_t *row,
							Datum *values, bool *nulls, int first, int last);
extern void EwDecodeRow(EwDecoder *d, json_t *block, json_t *row,
						Datum *values, bool *nulls);

/* in prices.c */
extern HTAB *EwLoadPrices(MemoryContext cxt);
extern HTAB *EwLoadTokens(MemoryContext cxt);

/* in jsonmem.c */
extern void EwJsonInit(void);
extern void EwJsonFree(void *ptr);
extern void EwJsonArenaBegin(MemoryContext cxt);
extern void EwJsonArenaEnd(bool keep);
extern void EwJsonArenaInit(void);

/* in jsonfast.c */
extern json_t *EwJsonFastLoad(const char *body, size_t len,
							  const char *const *skip);

/* in transport.c */
extern void EwTransportInit(void);
extern bool EwEndpointIsLoopback(const char *endpoint);
extern bool EwCheckEndpointUrl(const char *value, bool *has_userinfo);
extern EwConnection *EwGetConnection(ForeignServer *server);
extern void EwPost(EwConnection *conn, const char *body, size_t body_len,
				   const EwOptions *opts, EwResponse *resp);
extern EwSlot *EwAcquireSlot(EwConnection *conn, const char *servername);
extern void EwReleaseSlot(EwConnection *conn, EwSlot *slot);
extern void EwStartPost(EwConnection *conn, EwSlot *slot, const char *body,
						size_t body_len, const EwOptions *opts);
extern void EwWaitPost(EwConnection *conn, EwSlot *slot, EwResponse *resp);

#endif							/* ETHWHALE_FDW_H */

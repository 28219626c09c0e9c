/*-------------------------------------------------------------------------
 *
 * scan.h
 *		  The plan of a foreign scan, its execution state, the request
 *		  policy and the node-API seam, shared by the files that plan and
 *		  run a scan.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EW_SCAN_H
#define EW_SCAN_H

#include "ethwhale_fdw.h"
#include "nodes/execnodes.h"

/* How a scan reaches its rows. */
typedef enum EwScanMode
{
	EW_MODE_RANGE,				/* blocks(from:, to:) in ascending chunks */
	EW_MODE_BACKWARD,			/* from the head down (ORDER BY ... DESC LIMIT) */
	EW_MODE_HASH,				/* transaction(hash:) */
	EW_MODE_ACCOUNT				/* block(number:) { aN: account(address:) } */
} EwScanMode;

/* Accounts asked for in one request, each under its own alias. */
#define EW_ACCOUNTS_PER_REQUEST 100

/*
 * Longest address list sent in logs(filter:): 10,000 topics of 66
 * characters stay well under Geth's 5 MiB request limit.
 */
#define EW_MAX_FILTER_ADDRESSES 10000
/* ... and Geth's eth_getLogs takes 1,000 per position (--rpc.logquerylimit) */
#define EW_MAX_RPC_FILTER_ADDRESSES 1000

/*
 * EwScanPlan: everything the executor takes from the planner.  scanplan.c
 * packs it into ForeignScan.fdw_private (the plain values) and fdw_exprs
 * (the expressions, which setrefs.c must see); no other code knows where
 * an item sits in those lists.
 */
typedef struct EwScanPlan
{
	char	   *document;		/* the GraphQL document; account mode: the
								 * selection of each account alias */
	EwScanMode	mode;
	bool		count_only;		/* rows counted, not decoded */
	int			naddresses;		/* account mode: addresses known at plan
								 * time, or -1 */
	int64		planned_requests;	/* per scan, as plan time knows; -1 */
	int64		planned_blocks;	/* range scans: the blocks of constant bounds
								 * (one range); -1 */
	bool		slow_start;		/* a LIMIT: first ask for one block */
	List	   *attnos;			/* needed columns of the scan tuple (int) ... */
	List	   *fields;			/* ... and their EwFieldCode (int) */
	List	   *rel_oids;		/* the foreign tables read (oid): one, or
								 * eth_tx then eth_block of a pushed join */
	char	   *relations;		/* a pushed join, for EXPLAIN; "" if none */
	/* block bounds: "block <strategy> expr" */
	List	   *bound_exprs;
	List	   *bound_strategies;	/* btree strategy or EW_STRATEGY_IN */
	/* comparisons applied by the wrapper while decoding */
	List	   *filter_exprs;	/* the constant side */
	List	   *filter_attnos;	/* the column (int) */
	List	   *filter_ops;		/* the operator, column on the left (oid) */
	List	   *filter_texts;	/* "column op", for EXPLAIN (String) */
	/* address equality pushed into logs(filter:) or account(address:) */
	List	   *addr_exprs;
	List	   *addr_slots;		/* EwAddrSlot (int) */
	List	   *addr_arrays;	/* "= ANY(array)" (int 0/1) */
	Expr	   *hash_expr;		/* hash mode: the hash */
} EwScanPlan;

/* What planning learned about a foreign table (baserel->fdw_private). */
typedef struct EwRelInfo
{
	EwOptions	opts;
	Oid			rel_oid;		/* the foreign table */
	/*
	 * A pushed join: eth_tx JOIN eth_block ON number = block, or
	 * eth_token_transfer JOIN eth_tx ON hash = tx_hash.  The scan relation
	 * gives the rows; the other one's fields are read from each row's block
	 * (eth_block) or transaction (eth_tx).
	 */
	bool		is_join;
	Index		scan_relid;
	Index		other_relid;
	Oid			other_oid;
	const EwField **other_colfields;
	List	   *join_conds;		/* every clause, checked on the joined row */
	const EwField **colfields;	/* field of each column (attno - 1) */
	double		blocks;			/* blocks the bounds let through (estimate) */
	bool		blocks_exact;	/* ... counted from constant bounds */
	EwScanPlan	plan;			/* filled by the classification */
	AttrNumber	block_attno;	/* the block number column, or Invalid */
	AttrNumber	hash_attno;		/* eth_tx hash column, or Invalid */
	AttrNumber	txkey_attno;	/* eth_token_transfer tx_hash, or Invalid */
	AttrNumber	addr_attnos[EW_NUM_ADDR_SLOTS];
	bool		addr_taken[EW_NUM_ADDR_SLOTS];
	bool		has_lower;		/* a lower bound or a set of blocks */
	PathKey    *desc_pathkey;	/* ORDER BY block DESC of a LIMIT query */
	PathKey    *asc_pathkey;	/* ORDER BY block of a bounded scan */
	List	   *other_conds;	/* RestrictInfos not used as bounds */
	List	   *filter_rinfos;	/* RestrictInfos the wrapper applies */
} EwRelInfo;

/* A range of block numbers, both ends included. */
typedef struct EwRange
{
	int64		lo;
	int64		hi;
} EwRange;

/* A chunk request of a concurrent scan, in block order in the pipeline. */
typedef struct EwPending
{
	int64		from;
	int64		to;
	int			range;			/* index in ranges */
	char	   *body;			/* request body, palloc'd in pipe_cxt */
	EwSlot	   *slot;			/* NULL until started */
	int			attempt;		/* retries used */
} EwPending;

typedef struct EwScanState EwScanState;

/* Failure classes of one request (request.c). */
typedef enum EwFailureClass
{
	EW_OK,
	EW_FAIL_TRANSIENT,			/* 5xx, 429, reset: send the same again */
	EW_FAIL_SHRINK,				/* time-out or too large: ask for less */
	EW_FAIL_FATAL				/* malformed, node error, 4xx: give up */
} EwFailureClass;

/*
 * A failed request: its class (what to do), the SQLSTATE it is reported
 * with if it is final (what a client can act on), the end of the message,
 * a detail and, where the class's default does not fit, a hint.
 */
typedef struct EwFailure
{
	EwFailureClass cls;
	int			sqlstate;
	StringInfoData reason;
	StringInfoData detail;
	const char *hint;			/* NULL: the class's hint */
	/* EW_FAIL_SHRINK: blocks the node says would work (0: halve) ... */
	int64		shrink_blocks;
	/* ... and whether more may work again later (a cap on results) */
	bool		shrink_keeps_ceiling;
} EwFailure;


/*
 * The node-API seam.  The scan core plans ranges, filters and rows; an
 * EwNodeApi builds the requests for a chunk of blocks, a transaction hash,
 * a batch of accounts, the head and the chain id, and turns the answers into the objects
 * the scan walks: a block with "number", "timestamp" and "transactions",
 * "logs" or "transactionCount"; rows whose keys the decoder reads
 * (EwField.key for GraphQL, EwField.rpc_key for JSON-RPC).  GraphQL's
 * answers already have that shape; JSON-RPC's are assembled from the calls
 * of a batch.  Request bodies are palloc'd in the current memory context;
 * an unexpected answer is an ERROR (HV004) naming the server and what was
 * asked for.
 */
typedef struct EwNodeApi
{
	const char *name;			/* for EXPLAIN: "GraphQL", "JSON-RPC" */
	/* hints of a final failure: transient (node down?), and any other */
	const char *hint_transient;
	const char *hint_fatal;
	/* optional: set up the API's own state of a scan (st->api_state) */
	void		(*begin) (EwScanState *st);
	/* what each request asks for, for EXPLAIN VERBOSE */
	char	   *(*describe) (EwScanState *st);
	/* optional: facts learnt about the node, for EXPLAIN ANALYZE */
	char	   *(*notes) (EwScanState *st);
	/*
	 * optional: the last block of from..to the node can be asked for (a
	 * node refuses a log range beyond its head); below from: none
	 */
	int64		(*clip_to) (EwScanState *st, int64 from, int64 to);
	char	   *(*chunk_request) (EwScanState *st, int64 from, int64 to);
	char	   *(*hash_request) (EwScanState *st, const char *hash);
	char	   *(*head_request) (EwScanState *st);
	char	   *(*chain_request) (EwScanState *st);
	char	   *(*accounts_request) (EwScanState *st, int first, int n,
									 int64 block);
	/*
	 * The protocol-level outcome of an answer (root: its parsed JSON, or
	 * NULL when it is not JSON; jerr says why): the data, or a failure.
	 */
	EwFailureClass (*check_answer) (EwScanState *st, const EwResponse *resp,
									json_t *root, const json_error_t *jerr,
									json_t **data, EwFailure *f);
	/*
	 * The blocks of an answer for from..to, in order; *covered_to is the
	 * last block the answer covers (below to at the head; from - 1 when it
	 * covers none).  Blocks without rows may be left out (logs).
	 */
	json_t	   *(*answer_blocks) (EwScanState *st, json_t *data, int64 from,
								  int64 to, const char *what,
								  int64 *covered_to);
	int64		(*answer_head) (EwScanState *st, json_t *data);
	/* the node's chain id (EIP-155), as nodeinfo.c asks for it */
	int64		(*answer_chain) (EwScanState *st, json_t *data);
	json_t	   *(*answer_tx) (EwScanState *st, json_t *data);
	json_t	   *(*answer_accounts) (EwScanState *st, json_t *data,
									const char *what, int64 expect);
	json_t	   *(*account_row) (EwScanState *st, json_t *block, int i);
	bool		accounts_need_head;	/* ask for the head's number first */
	/*
	 * optional: keys of the node's data no decoder reads, left out of the
	 * parsed answer (jsonfast.c; NULL-terminated)
	 */
	const char *const *answer_skip;
} EwNodeApi;

/* Execution state of a foreign scan. */
struct EwScanState
{
	Relation	rel;			/* the foreign table (eth_tx of a join) */
	bool		own_rel;		/* opened here: a pushed join's */
	TupleDesc	desc;			/* of the scan tuple */
	ForeignServer *server;
	EwOptions	opts;
	const EwNodeApi *api;
	void	   *api_state;		/* the API's own, in the query's memory */
	EwConnection *conn;
	EwScanPlan	plan;			/* as unpacked from the ForeignScan */
	char	   *query_json;		/* the document as a JSON string */
	List	   *bound_states;	/* ExprState of each bound */
	ExprState  *hash_state;
	List	   *addr_states;	/* ExprState of each pushed address */
	EwDecoder	dec;

	/* pushed address values, evaluated when the scan starts */
	char	   *log_vars;		/* token transfers: ,"addresses":…,"topics":… */
	int			lists_unsent;	/* address lists too long to send */
	char	  **accounts;		/* account mode: sorted distinct addresses */
	int			naccounts;
	int			acct_next;		/* next address to ask for at next_block */
	bool		at_head;		/* account mode without block bounds */
	int64		head_block;		/* ... the head they are read at, once known */
	json_t	   *acct_block;		/* the answer's block with aliases a0 … */
	int			acct_n;			/* ... how many */
	int			acct_idx;		/* ... and the next one to return */

	/* wrapper filters: "column op constant", tested on decoded values */
	int			nfilters;
	int		   *filter_attidx;	/* 0-based column of each filter */
	FmgrInfo   *filter_fn;
	ExprState **filter_states;
	Datum	   *filter_values;	/* evaluated when the scan starts */
	bool	   *filter_nulls;
	int			nfilter_cols;	/* dec.cols[0 .. n-1] feed the filters */

	/* block ranges to read, computed at the first fetch */
	bool		started;
	EwRange    *ranges;
	int			nranges;
	int			cur_range;
	int64		next_block;		/* next block to request */
	int			chunk;			/* blocks per request, adapted */
	int			chunk_ceiling;	/* below the size that timed out */
	int64		shrink_blocks;	/* from the last EW_FAIL_SHRINK */
	bool		shrink_keeps_ceiling;
	int64		last_suggestion;	/* the blocks the last refusal named */
	struct EwChunkEntry *learnt;	/* chunk.c's entry for this kind of
										 * scan */
	double		answer_bytes;	/* ... and this scan's answers so far */
	double		answer_blocks;
	bool		exhausted;

	/* concurrency > 1: chunk requests in flight, in block order */
	EwPending  *pipe;
	int			npipe;
	int			pipe_cap;
	EwSlot	  **free_slots;		/* slots held by this scan, not in use */
	int			nfree;
	MemoryContext pipe_cxt;		/* request bodies of the pipeline */

	/*
	 * A rescan (a nested loop's next outer row) that sends the same request
	 * as the scan before it takes that scan's answer again: reuse_cxt keeps
	 * the last answer of a scan that needed one request only.
	 */
	MemoryContext reuse_cxt;
	const char *reuse_body;		/* in reuse_cxt, or NULL */
	json_t	   *reuse_data;
	json_t	   *reuse_blocks;	/* the blocks taken from it, or NULL */
	int64		reuse_covered;
	int			scan_requests;	/* requests of this (re)scan */
	const char *last_body;		/* the last request of this scan, and ... */
	json_t	   *last_data;		/* ... its answer, both in batch_cxt */
	json_t	   *last_blocks;	/* ... and the blocks taken from it */
	int64		last_covered;

	/* memory */
	MemoryContext scan_cxt;		/* ranges and evaluated values; reset by
								 * ReScan */
	MemoryContext batch_cxt;	/* parsed JSON of one chunk */
	MemoryContext row_cxt;		/* Datums of one row */

	/* the answer being returned */
	json_t	   *blocks;			/* array of block objects */
	size_t		block_idx;
	json_t	   *txs;			/* rows of the current block */
	size_t		tx_idx;
	int64		count_left;		/* count_only: rows left in the block */
	json_t	   *hash_tx;		/* hash mode: the transaction, once */

	int64		cur_block;		/* for the error context; -1 before any */
	EwStats		stats;			/* all rescans together */
	int64		rows_returned;
	int64		blocks_read;
	size_t		last_body_len;	/* size of the last answer */
};


/* What to do after an answer (request.c). */
typedef enum EwNextStep
{
	EW_STEP_DONE,				/* *data is the answer's data */
	EW_STEP_RETRY,				/* send the same request again */
	EW_STEP_SHRINK				/* ask for fewer blocks */
} EwNextStep;

/* in planner.c */
extern void EwPlanRelSize(PlannerInfo *root, RelOptInfo *baserel,
						  Oid foreigntableid);
extern void EwPlanPaths(PlannerInfo *root, RelOptInfo *baserel);
extern void EwPlanJoinPaths(PlannerInfo *root, RelOptInfo *joinrel,
							RelOptInfo *outerrel, RelOptInfo *innerrel,
							JoinType jointype, JoinPathExtraData *extra);
extern ForeignScan *EwPlanForeignScan(PlannerInfo *root, RelOptInfo *baserel,
									  Oid foreigntableid, ForeignPath *best_path,
									  List *tlist, List *scan_clauses,
									  Plan *outer_plan);

/* in scanplan.c */
extern List *EwPackScanPlan(const EwScanPlan *plan, List **fdw_exprs);
extern void EwUnpackScanPlan(List *fdw_private, List *fdw_exprs,
							 EwScanPlan *plan);

/* in deparse.c */
extern AttrNumber EwRelVarAttno(Node *node, Index relid);
extern void EwFindKeyColumns(Relation rel, const EwField **colfields,
							 EwRelInfo *info);
extern void EwClassifyClauses(Index relid, Relation rel,
							  const EwField **colfields, EwRelInfo *info,
							  List *clauses);
extern bool EwIsParamClause(Index relid, EwRelInfo *info, RestrictInfo *ri);
extern char *EwDeparseDocument(EwTableKind kind, EwScanMode mode,
							   bool count_only, const EwField **fields,
							   int nfields);
extern char *EwDeparseAccountDocument(const char *selection, int n);
extern char *EwDeparseHeadDocument(void);
extern char *EwDeparseChainDocument(void);
extern char *EwDeparseLogVariables(char **sets[], const int nsets[], bool rpc);
extern char *EwJsonQuote(const char *text);

/* in graphql.c and jsonrpc.c */
extern const EwNodeApi EwGraphqlApi;
extern const EwNodeApi EwJsonRpcApi;

/* in request.c */
extern EwNextStep EwAfterResponse(EwScanState *st, const EwResponse *resp,
								  const char *what, bool can_shrink,
								  int *attempt, json_t **data);
extern json_t *EwRequest(EwScanState *st, const char *body, const char *what,
						 bool can_shrink, int *attempt, bool *shrink);
extern EwFailureClass EwHttpFailure(const EwResponse *resp, EwFailureClass cls,
									EwFailure *f);
extern EwFailureClass EwMalformedFailure(const EwResponse *resp, json_t *root,
										 const json_error_t *jerr, const char *shape,
										 EwFailure *f);
extern void EwRedactSecrets(const EwOptions *opts, StringInfo buf);
extern void EwSetFailure(EwFailure *f, EwFailureClass cls, int sqlstate);
extern char *EwPrintableMessage(const char *msg);

/* in bounds.c */
extern bool EwEvalAddresses(EwScanState *st, ExprContext *econtext);
extern void EwPlanRanges(EwScanState *st, ExprContext *econtext);
extern void EwSingleRange(EwScanState *st, int64 lo, int64 hi);

/* in scan.c */
extern void EwInitRequestState(EwScanState *st, ForeignServer *server,
							   Oid relid, Oid userid, MemoryContext cxt);
extern int64 EwFetchHead(EwScanState *st);
extern void EwCheckRequestBudget(EwScanState *st);
extern void EwBeginScan(ForeignScanState *node, int eflags);
extern TupleTableSlot *EwIterateScan(ForeignScanState *node);
extern void EwRescan(EwScanState *st);
extern void EwEndScan(EwScanState *st);
extern MemoryContext EwAnswerCxt(EwScanState *st, json_t *data);
extern int64 EwTakeBlocks(EwScanState *st, json_t *data, int64 from, int64 to,
						 const char *what);
/* chunk.c */
extern void EwFirstChunk(EwScanState *st);
extern void EwAdaptChunk(EwScanState *st, int64 nblocks, size_t bytes);
extern double EwExpectedRequests(EwScanState *st);
extern int64 EwShrinkChunk(EwScanState *st, int64 from, int64 to);
extern bool EwClipChunk(EwScanState *st, int64 from, int64 *to, bool *clipped);
extern void EwResetBatch(EwScanState *st);
extern char *EwChunkWhat(int64 from, int64 to);

/* in nodeinfo.c */
extern int64 EwChainIdOf(EwScanState *st, json_t *value, const char *asked,
						 json_t *answer);

/* in account.c */
extern bool EwNextAccountRow(EwScanState *st, json_t **blk, json_t **row);

/* in pipeline.c */
extern void EwPipelineInit(EwScanState *st, MemoryContext query_cxt);
extern bool EwFetchChunkConcurrent(EwScanState *st);
extern void EwPipelineRelease(EwScanState *st);

#endif							/* EW_SCAN_H */

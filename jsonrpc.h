/*-------------------------------------------------------------------------
 *
 * jsonrpc.h
 *		  The JSON-RPC node API's own state, shared by jsonrpc.c (the
 *		  requests), rpcanswers.c (the answers) and rpcerrors.c (what a
 *		  node's errors mean).
 *
 * Every call of a batch carries an id that says what it asked for: the
 * block number (or the position of an account or a transaction) times
 * EW_RPC_ID_STRIDE plus the method.  An answer is matched to its call by
 * that id, whatever order the node answers in, and an error names the
 * call it belongs to.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EW_JSONRPC_H
#define EW_JSONRPC_H

#include "scan.h"

typedef enum EwRpcMethod
{
	EW_RPC_BLOCK,				/* eth_getBlockByNumber */
	EW_RPC_BLOCK_RECEIPTS,		/* eth_getBlockReceipts */
	EW_RPC_TX_COUNT,			/* eth_getBlockTransactionCountByNumber */
	EW_RPC_LOGS,				/* eth_getLogs */
	EW_RPC_TX,					/* eth_getTransactionByHash */
	EW_RPC_RECEIPT,				/* eth_getTransactionReceipt */
	EW_RPC_BALANCE,				/* eth_getBalance */
	EW_RPC_NONCE,				/* eth_getTransactionCount */
	EW_RPC_CODE,				/* eth_getCode */
	EW_RPC_HEAD,				/* eth_blockNumber */
	EW_RPC_CHAIN_ID,			/* eth_chainId */
	EW_RPC_NUM_METHODS
} EwRpcMethod;

#define EW_RPC_ID_STRIDE 16

/* What eth_getBlockByNumber is asked for. */
typedef enum EwRpcBlockShape
{
	EW_RPC_COUNT,				/* only the count: another method */
	EW_RPC_HASHES,				/* the header and transaction hashes */
	EW_RPC_FULL					/* the transactions as objects */
} EwRpcBlockShape;

typedef struct EwRpcState
{
	/* what the scan's columns need */
	EwRpcBlockShape shape;
	bool		receipts;		/* status, gas_used, created_contract */
	bool		need_time;		/* logs: the block's time */
	bool		log_txs;		/* logs: each log's transaction (a join) */
	bool		hash_block;		/* hash mode: fields of the block */
	bool		acct_balance;
	bool		acct_nonce;
	bool		acct_code;

	/* learnt from the node; holds for every rescan */
	bool		no_block_receipts;	/* eth_getBlockReceipts not served */
	bool		no_log_time;	/* logs without blockTimestamp */
	int			max_calls;		/* most calls one batch may carry */
	int64		head;			/* logs: the head as last read, or -1 */

	/* the last request built */
	int			last_calls;
	int			acct_first;		/* account mode: its first address */
	char	   *asked_hash;		/* hash mode: the transaction asked for */

	/* for EXPLAIN ANALYZE */
	int64		calls;
	int64		receipt_calls;	/* eth_getTransactionReceipt, as fallback */
	int64		header_calls;	/* blocks asked for after eth_getLogs */
} EwRpcState;

static inline EwRpcState *
ew_rpc_state(EwScanState *st)
{
	return (EwRpcState *) st->api_state;
}

/* in jsonrpc.c: the requests */
extern const char *EwRpcMethodName(EwRpcMethod m);
extern bool EwRpcDecodeId(json_t *id, int64 *n, EwRpcMethod *m);
extern void EwRpcBeginCall(EwScanState *st, StringInfo buf, int64 n, EwRpcMethod m);
extern void EwRpcStartBatch(EwScanState *st, StringInfo buf);
extern char *EwRpcBlocksBatch(EwScanState *st, const int64 *nums, int n,
							  EwRpcBlockShape shape, bool receipts);
extern int64 *EwRpcBlockNumbers(int64 from, int64 to);
extern char *EwRpcHeadRequest(EwScanState *st);

/* in rpcanswers.c: the answers */
extern int64 EwRpcQuantity(json_t *j);
extern json_t *EwRpcAnswerBlocks(EwScanState *st, json_t *data, int64 from,
								 int64 to, const char *what, int64 *covered_to);
extern int64 EwRpcAnswerHead(EwScanState *st, json_t *data);
extern int64 EwRpcAnswerChain(EwScanState *st, json_t *data);
extern int64 EwRpcClipTo(EwScanState *st, int64 from, int64 to);
extern json_t *EwRpcAnswerTx(EwScanState *st, json_t *data);
extern json_t *EwRpcAnswerAccounts(EwScanState *st, json_t *data,
								   const char *what, int64 expect);
extern json_t *EwRpcAccountRow(EwScanState *st, json_t *block, int i);

/* in rpcerrors.c */
extern bool EwRpcIsBenign(EwRpcMethod m, json_t *error);
extern EwFailureClass EwRpcCheckAnswer(EwScanState *st, const EwResponse *resp,
									   json_t *root, const json_error_t *jerr,
									   json_t **data, EwFailure *f);

#endif							/* EW_JSONRPC_H */

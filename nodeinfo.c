/*-------------------------------------------------------------------------
 *
 * nodeinfo.c
 *		  SQL functions that ask a foreign server's node about itself, one
 *		  request each, outside any scan: ethwhale.node_chain_id(server).
 *
 * A one-off request goes the way a scan's requests go: the same options
 * (server, then user mapping: endpoint, headers, bearer token, time-outs,
 * retries), the same cached HTTP handle (transport.c), the same retry
 * policy, failure classes, SQLSTATEs and redaction of secrets (request.c)
 * and the same node API (graphql.c, jsonrpc.c).  Its state is the part of
 * an EwScanState that EwInitRequestState sets up, in a memory context of
 * its own that is deleted when the function ends, by an ERROR too.  The
 * HTTP handle is not this file's: it stays cached for the next request to
 * the server, as after a scan.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "compat.h"
#include "fmgr.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "scan.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(ethwhale_node_chain_id);

/*
 * c_function_text
 *		Column attnum (prosrc or probin) of C function funcid; NULL when it
 *		is not a C function or the column is null.
 */
static char *
c_function_text(Oid funcid, AttrNumber attnum)
{
	HeapTuple	tp = SearchSysCache1(PROCOID, ObjectIdGetDatum(funcid));
	char	   *value = NULL;
	Datum		d;
	bool		isnull;

	if (!HeapTupleIsValid(tp))
		return NULL;
	if (((Form_pg_proc) GETSTRUCT(tp))->prolang == ClanguageId)
	{
		d = SysCacheGetAttr(PROCOID, tp, attnum, &isnull);
		if (!isnull)
			value = TextDatumGetCString(d);
	}
	ReleaseSysCache(tp);
	return value;
}

/*
 * is_ethwhale_wrapper
 *		Whether the wrapper fdwid is ethwhale_fdw: its handler is the C
 *		function ethwhale_fdw_handler of the library self (the function
 *		being called) is in.  A wrapper is known by its handler, not its
 *		name: a second wrapper made with the same handler scans like
 *		ethwhale_fdw, and a wrapper named so need not be ours.
 */
static bool
is_ethwhale_wrapper(Oid fdwid, Oid self)
{
	ForeignDataWrapper *fdw = GetForeignDataWrapper(fdwid);
	char	   *symbol;
	char	   *library;
	char	   *own_library;

	if (!OidIsValid(fdw->fdwhandler))
		return false;
	symbol = c_function_text(fdw->fdwhandler, Anum_pg_proc_prosrc);
	library = c_function_text(fdw->fdwhandler, Anum_pg_proc_probin);
	own_library = c_function_text(self, Anum_pg_proc_probin);
	return symbol != NULL && library != NULL && own_library != NULL &&
		strcmp(symbol, "ethwhale_fdw_handler") == 0 &&
		strcmp(library, own_library) == 0;
}

/*
 * node_server
 *		The ethwhale_fdw server called name, which the current user may use
 *		(USAGE, as a foreign table of it needs).
 */
static ForeignServer *
node_server(const char *name, Oid self)
{
	ForeignServer *server = GetForeignServerByName(name, true);

	if (server == NULL || !is_ethwhale_wrapper(server->fdwid, self))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("server \"%s\" does not exist or is not an ethwhale_fdw server",
						name),
				 errhint("CREATE SERVER %s FOREIGN DATA WRAPPER ethwhale_fdw OPTIONS (endpoint 'http://127.0.0.1:8545/graphql');",
						 quote_identifier(name))));
	if (ew_foreign_server_aclcheck(server->serverid, GetUserId(), ACL_USAGE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied for foreign server %s", server->servername),
				 errhint("The owner of the server can GRANT USAGE ON FOREIGN SERVER %s TO %s.",
						 quote_identifier(server->servername),
						 quote_identifier(GetUserNameFromId(GetUserId(), false)))));
	return server;
}

/*
 * begin_node_request
 *		The state of a one-off request to server, in cxt: a scan's, without
 *		a plan.
 */
static EwScanState *
begin_node_request(ForeignServer *server, MemoryContext cxt)
{
	EwScanState *st = MemoryContextAllocZero(cxt, sizeof(EwScanState));

	EwInitRequestState(st, server, InvalidOid, GetUserId(), cxt);

	/*
	 * max_requests is the budget of a scan (and its message names the
	 * table); a single request is bounded by max_retries alone.
	 */
	st->opts.max_requests = PG_INT32_MAX;
	if (st->api->begin != NULL)
		st->api->begin(st);
	return st;
}

/*
 * EwChainIdOf
 *		The chain id in value, a hex quantity ("0x2105") in the answer of a
 *		node API (asked: what it was asked for, "chainID" or "eth_chainId");
 *		anything else is an ERROR naming the server and what was asked,
 *		with the answer (secrets of the user mapping blanked out).
 */
int64
EwChainIdOf(EwScanState *st, json_t *value, const char *asked, json_t *answer)
{
	const char *s = json_is_string(value) ? json_string_value(value) : NULL;
	uint64		v;
	StringInfoData detail;

	if (s != NULL && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') &&
		EwParseUint64(s, &v) && v <= (uint64) PG_INT64_MAX)
		return (int64) v;
	/* a node may echo a request's header into its answer */
	initStringInfo(&detail);
	appendStringInfo(&detail, "Answer: %s", EwJsonExcerpt(answer));
	EwRedactSecrets(&st->opts, &detail);
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
			 errmsg("could not read the chain id from server \"%s\": %s",
					st->server->servername,
					value == NULL || json_is_null(value) ?
					psprintf("the answer has no %s", asked) :
					psprintf("%s is not a hex quantity within bigint", asked)),
			 errdetail_internal("%s", detail.data),
			 errhint("%s", st->api->hint_fatal)));
	pg_unreachable();
}

/*
 * ethwhale_node_chain_id
 *		ethwhale.node_chain_id(server name) RETURNS bigint: the chain id of
 *		the server's node, asked over its API (GraphQL { chainID }, JSON-RPC
 *		eth_chainId), so that rows from several chains can be told apart.
 */
Datum
ethwhale_node_chain_id(PG_FUNCTION_ARGS)
{
	ForeignServer *server = node_server(NameStr(*PG_GETARG_NAME(0)),
										fcinfo->flinfo->fn_oid);
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "ethwhale_fdw node request",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext oldcxt = CurrentMemoryContext;
	volatile int64 chain = -1;

	PG_TRY();
	{
		EwScanState *st;
		int			attempt = 0;
		bool		shrink;
		json_t	   *data;

		MemoryContextSwitchTo(cxt);
		st = begin_node_request(server, cxt);
		data = EwRequest(st, st->api->chain_request(st), "the chain id", false,
						 &attempt, &shrink);
		MemoryContextSwitchTo(st->batch_cxt);
		chain = st->api->answer_chain(st, data);
	}
	PG_FINALLY();
	{
		MemoryContextSwitchTo(oldcxt);
		MemoryContextDelete(cxt);
	}
	PG_END_TRY();
	PG_RETURN_INT64(chain);
}

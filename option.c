/*-------------------------------------------------------------------------
 *
 * option.c
 *		  Option table, validator and option lookup for ethwhale_fdw.
 *
 * Every option is checked here, when it is set, so that a bad value is
 * reported by CREATE/ALTER with the option's name instead of failing later
 * in the middle of a scan.  Table options override server options; the user
 * mapping carries only credentials.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <limits.h>

#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "commands/defrem.h"
#include "ethwhale_fdw.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

/*
 * Describes a valid option: its name, the catalog it may appear in, and for
 * integer options the allowed range.
 */
typedef struct EwOption
{
	const char *name;
	Oid			context;		/* catalog OID where the option may appear */
	bool		is_int;
	int			min;
	int			max;
} EwOption;

static const EwOption ew_options[] = {
	/* server */
	{"endpoint", ForeignServerRelationId, false, 0, 0},
	{"timeout_ms", ForeignServerRelationId, true, 1, 3600000},
	{"connect_timeout_ms", ForeignServerRelationId, true, 1, 600000},
	{"max_retries", ForeignServerRelationId, true, 0, 100},
	{"batch_blocks", ForeignServerRelationId, true, 1, 100000},
	{"concurrency", ForeignServerRelationId, true, 1, 64},
	{"max_response_mb", ForeignServerRelationId, true, 1, 4096},
	{"confirmations", ForeignServerRelationId, true, 0, 10000},
	/* table: the kind, and per-table overrides of the server's tuning */
	{"table", ForeignTableRelationId, false, 0, 0},
	{"timeout_ms", ForeignTableRelationId, true, 1, 3600000},
	{"max_retries", ForeignTableRelationId, true, 0, 100},
	{"batch_blocks", ForeignTableRelationId, true, 1, 100000},
	{"concurrency", ForeignTableRelationId, true, 1, 64},
	{"max_response_mb", ForeignTableRelationId, true, 1, 4096},
	/* user mapping: credentials */
	{"bearer_token", UserMappingRelationId, false, 0, 0},
	{"headers", UserMappingRelationId, false, 0, 0},
	/* column */
	{"field", AttributeRelationId, false, 0, 0},
	{NULL, InvalidOid, false, 0, 0}
};

PG_FUNCTION_INFO_V1(ethwhale_fdw_validator);

static const EwOption *find_option(const char *name, Oid context);
static void report_unknown_option(const char *name, Oid context);
static int	parse_int_option(const DefElem *def, const EwOption *opt);
static void check_endpoint(const char *value);
static void check_header_lines(const char *value);

/*
 * ethwhale_fdw_validator
 *		Check the options of a CREATE/ALTER of a server, user mapping,
 *		foreign table or column using ethwhale_fdw.
 */
Datum
ethwhale_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options_list = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *cell;
	bool		have_endpoint = false;

	foreach(cell, options_list)
	{
		DefElem    *def = (DefElem *) lfirst(cell);
		const EwOption *opt = find_option(def->defname, catalog);
		char	   *value;

		if (opt == NULL)
			report_unknown_option(def->defname, catalog);

		value = defGetString(def);
		if (opt->is_int)
			(void) parse_int_option(def, opt);
		else if (strcmp(def->defname, "endpoint") == 0)
		{
			check_endpoint(value);
			have_endpoint = true;
		}
		else if (strcmp(def->defname, "table") == 0)
			(void) EwParseTableKind(value);
		else if (strcmp(def->defname, "headers") == 0)
			check_header_lines(value);
		else if (strcmp(def->defname, "bearer_token") == 0)
		{
			if (value[0] == '\0' || strpbrk(value, "\r\n") != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"bearer_token\""),
						 errdetail("The token must be non-empty and on one line.")));
		}
		else if (strcmp(def->defname, "field") == 0)
		{
			if (value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"field\": empty name")));
		}
	}

	/*
	 * The validator sees the complete resulting list on CREATE and ALTER, so
	 * a server without an endpoint can be refused here.
	 */
	if (catalog == ForeignServerRelationId && !have_endpoint)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("option \"endpoint\" is required for an ethwhale_fdw server"),
				 errhint("Add OPTIONS (endpoint 'http://127.0.0.1:8545/graphql').")));

	PG_RETURN_VOID();
}

/*
 * find_option
 *		Return the option table entry for name in context, or NULL.
 */
static const EwOption *
find_option(const char *name, Oid context)
{
	const EwOption *opt;

	for (opt = ew_options; opt->name; opt++)
	{
		if (opt->context == context && strcmp(opt->name, name) == 0)
			return opt;
	}
	return NULL;
}

/*
 * report_unknown_option
 *		Raise the error for an option that is not valid in this context,
 *		listing the valid ones and suggesting the closest name.
 */
static void
report_unknown_option(const char *name, Oid context)
{
	StringInfoData valid;
	const EwOption *opt;
	const char *closest = NULL;
	int			best = INT_MAX;

	initStringInfo(&valid);
	for (opt = ew_options; opt->name; opt++)
	{
		int			d;

		if (opt->context != context)
			continue;
		appendStringInfo(&valid, "%s%s", valid.len > 0 ? ", " : "", opt->name);
		d = varstr_levenshtein(name, strlen(name), opt->name, strlen(opt->name),
							   1, 1, 1, false);
		if (d < best)
		{
			best = d;
			closest = opt->name;
		}
	}

	/* Suggest a name only when it is plausibly a typo. */
	if (closest != NULL && best <= (int) Max(2, strlen(name) / 3))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\"", name),
				 errhint("Perhaps you meant the option \"%s\". Valid options in this context are: %s.",
						 closest, valid.data)));
	ereport(ERROR,
			(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
			 errmsg("invalid option \"%s\"", name),
			 valid.len > 0
			 ? errhint("Valid options in this context are: %s.", valid.data)
			 : errhint("There are no valid options in this context.")));
}

/*
 * parse_int_option
 *		Parse an integer option value, raising a clear error when it is not
 *		an integer or out of the option's range.
 */
static int
parse_int_option(const DefElem *def, const EwOption *opt)
{
	char	   *value = defGetString((DefElem *) def);
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < opt->min || v > opt->max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", opt->name, value),
				 errdetail("The value must be an integer between %d and %d.",
						   opt->min, opt->max)));
	return (int) v;
}

/*
 * check_endpoint
 *		Accept only absolute http:// or https:// URLs with a host.
 *
 * The value itself is not repeated in errors: an endpoint may carry
 * credentials in its user-info part.
 */
static void
check_endpoint(const char *value)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	bool		ok;

	if (u == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	ok = curl_url_set(u, CURLUPART_URL, value, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		host[0] != '\0' &&
		(pg_strcasecmp(scheme, "http") == 0 || pg_strcasecmp(scheme, "https") == 0);
	if (scheme)
		curl_free(scheme);
	if (host)
		curl_free(host);
	curl_url_cleanup(u);

	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"endpoint\""),
				 errdetail("The endpoint must be an absolute http:// or https:// URL with a host."),
				 errhint("For a local Geth started with --http --graphql use 'http://127.0.0.1:8545/graphql'.")));
}

/*
 * check_header_lines
 *		The "headers" option holds "Name: value" lines separated by newlines.
 */
static void
check_header_lines(const char *value)
{
	const char *line = value;

	while (*line)
	{
		const char *eol = strchr(line, '\n');
		size_t		len = eol ? (size_t) (eol - line) : strlen(line);
		const char *colon = memchr(line, ':', len);
		const char *p;

		if (len > 0)
		{
			bool		ok = colon != NULL && colon > line;

			for (p = line; ok && p < colon; p++)
				if (!(isalnum((unsigned char) *p) || *p == '-' || *p == '_'))
					ok = false;
			if (ok && memchr(line, '\r', len) != NULL)
				ok = false;
			if (!ok)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"headers\""),
						 errdetail("Each line must have the form \"Name: value\"; names are letters, digits, '-' and '_'.")));
		}
		if (!eol)
			break;
		line = eol + 1;
	}
}

/*
 * EwParseTableKind
 *		Map the "table" option to a table kind.
 */
EwTableKind
EwParseTableKind(const char *value)
{
	static const EwTableKind kinds[] = {EW_TABLE_BLOCK, EW_TABLE_TX,
	EW_TABLE_TOKEN_TRANSFER, EW_TABLE_ACCOUNT};
	int			i;

	for (i = 0; i < lengthof(kinds); i++)
		if (strcmp(value, EwTableKindName(kinds[i])) == 0)
			return kinds[i];
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"table\": \"%s\"", value),
			 errhint("Valid values are: block, tx, token_transfer, account.")));
	return EW_TABLE_BLOCK;		/* keep compiler quiet */
}

const char *
EwTableKindName(EwTableKind kind)
{
	switch (kind)
	{
		case EW_TABLE_BLOCK:
			return "block";
		case EW_TABLE_TX:
			return "tx";
		case EW_TABLE_TOKEN_TRANSFER:
			return "token_transfer";
		case EW_TABLE_ACCOUNT:
			return "account";
	}
	return "?";
}

/*
 * apply_options
 *		Fold a catalog option list into opts.
 */
static void
apply_options(List *options, Oid context, EwOptions *opts)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const EwOption *opt = find_option(def->defname, context);
		int			iv = 0;

		if (opt == NULL)
			continue;			/* validated at definition time */
		if (opt->is_int)
			iv = parse_int_option(def, opt);

		if (strcmp(def->defname, "endpoint") == 0)
			opts->endpoint = defGetString(def);
		else if (strcmp(def->defname, "timeout_ms") == 0)
			opts->timeout_ms = iv;
		else if (strcmp(def->defname, "connect_timeout_ms") == 0)
			opts->connect_timeout_ms = iv;
		else if (strcmp(def->defname, "max_retries") == 0)
			opts->max_retries = iv;
		else if (strcmp(def->defname, "batch_blocks") == 0)
			opts->batch_blocks = iv;
		else if (strcmp(def->defname, "concurrency") == 0)
			opts->concurrency = iv;
		else if (strcmp(def->defname, "max_response_mb") == 0)
			opts->max_response_mb = iv;
		else if (strcmp(def->defname, "confirmations") == 0)
			opts->confirmations = iv;
		else if (strcmp(def->defname, "table") == 0)
			opts->table = EwParseTableKind(defGetString(def));
		else if (strcmp(def->defname, "bearer_token") == 0)
			opts->bearer_token = defGetString(def);
		else if (strcmp(def->defname, "headers") == 0)
			opts->headers = defGetString(def);
	}
}

/*
 * user_mapping_options
 *		Options of the user's mapping for the server, or of the PUBLIC one,
 *		or NIL when there is none.
 *
 * GetUserMapping() raises an error when no mapping exists; a mapping is
 * optional here, so the catalog is read directly.
 */
static List *
user_mapping_options(Oid userid, Oid serverid)
{
	HeapTuple	tp;
	Datum		datum;
	bool		isnull;
	List	   *options = NIL;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(userid),
						 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return NIL;
	datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp,
							Anum_pg_user_mapping_umoptions, &isnull);
	if (!isnull)
		options = untransformRelOptions(datum);
	ReleaseSysCache(tp);
	return options;
}

/*
 * EwGetOptions
 *		Collect the options that apply to a scan: defaults, then the
 *		server's, the user mapping's (if any) and the table's.
 *
 * foreigntableid may be InvalidOid when only server options are wanted.
 */
void
EwGetOptions(Oid foreigntableid, Oid serverid, Oid userid, EwOptions *opts)
{
	ForeignServer *server = GetForeignServer(serverid);

	memset(opts, 0, sizeof(*opts));
	opts->timeout_ms = 30000;
	opts->connect_timeout_ms = 5000;
	opts->max_retries = 5;
	opts->batch_blocks = 100;
	opts->concurrency = 1;
	opts->max_response_mb = 256;
	opts->confirmations = 0;
	opts->table = EW_TABLE_TX;

	apply_options(server->options, ForeignServerRelationId, opts);

	/* A user mapping is optional: the credentials are all it carries. */
	apply_options(user_mapping_options(userid, serverid),
				  UserMappingRelationId, opts);

	if (OidIsValid(foreigntableid))
	{
		ForeignTable *table = GetForeignTable(foreigntableid);

		ListCell   *lc;
		bool		has_kind = false;

		apply_options(table->options, ForeignTableRelationId, opts);
		foreach(lc, table->options)
			if (strcmp(((DefElem *) lfirst(lc))->defname, "table") == 0)
				has_kind = true;
		if (!has_kind)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
					 errmsg("foreign table \"%s\" has no option \"table\"",
							get_rel_name(foreigntableid)),
					 errhint("Set the kind of rows it holds, e.g. ALTER FOREIGN TABLE %s OPTIONS (ADD \"table\" 'tx'); valid kinds are: block, tx, token_transfer, account.",
							 quote_identifier(get_rel_name(foreigntableid)))));
	}

	if (opts->endpoint == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" has no endpoint", server->servername),
				 errhint("Set it with ALTER SERVER %s OPTIONS (ADD endpoint 'http://127.0.0.1:8545/graphql').",
						 quote_identifier(server->servername))));
}

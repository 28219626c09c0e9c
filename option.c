/*-------------------------------------------------------------------------
 *
 * option.c
 *		  Option table, validator and option lookup for ethwhale_fdw.
 *
 * Every option is checked here, when it is set, so that a bad value is
 * reported by CREATE/ALTER with the option's name instead of failing later
 * in the middle of a scan.  Table options override server options; the user
 * mapping carries only credentials.  The "headers" option is parsed by
 * EwParseHeaders only: the validator, the transport and the redaction of
 * error texts all read it through that one function.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <sys/stat.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "commands/defrem.h"
#include "compat.h"
#include "ethwhale_fdw.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/varlena.h"

/*
 * Describes a valid option: its name, the catalog it may appear in, its
 * type, for integers the allowed range, and where it goes in EwOptions
 * (-1: an option only the SQL functions read, such as confirmations).
 * This table is the one list of option names.
 */
typedef enum EwOptionType
{
	EW_OPT_STRING,
	EW_OPT_INT,
	EW_OPT_KIND,
	EW_OPT_API,
	EW_OPT_COMPRESSION
} EwOptionType;

/* Where an option may appear (EwOption.contexts). */
#define CTX_SERVER	0x01
#define CTX_TABLE	0x02
#define CTX_MAPPING	0x04
#define CTX_COLUMN	0x08

typedef struct EwOption
{
	const char *name;
	int			contexts;		/* CTX_* */
	EwOptionType type;
	int			min;
	int			max;
	int			offset;			/* in EwOptions, or -1 */
} EwOption;

#define OPT_AT(field) ((int) offsetof(EwOptions, field))

/*
 * Server options tune every scan; a table may override the tuning for its
 * own scans.  The user mapping carries only credentials.
 */
static const EwOption ew_options[] = {
	{"table", CTX_TABLE, EW_OPT_KIND, 0, 0, OPT_AT(table)},
	{"endpoint", CTX_SERVER, EW_OPT_STRING, 0, 0, OPT_AT(endpoint)},
	{"api", CTX_SERVER, EW_OPT_API, 0, 0, OPT_AT(api)},
	{"compression", CTX_SERVER, EW_OPT_COMPRESSION, 0, 0, OPT_AT(compression)},
	{"ca_file", CTX_SERVER, EW_OPT_STRING, 0, 0, OPT_AT(ca_file)},
	{"timeout_ms", CTX_SERVER | CTX_TABLE, EW_OPT_INT, 1, 3600000, OPT_AT(timeout_ms)},
	{"connect_timeout_ms", CTX_SERVER, EW_OPT_INT, 1, 600000, OPT_AT(connect_timeout_ms)},
	{"max_retries", CTX_SERVER | CTX_TABLE, EW_OPT_INT, 0, 100, OPT_AT(max_retries)},
	{"batch_blocks", CTX_SERVER | CTX_TABLE, EW_OPT_INT, 1, 100000, OPT_AT(batch_blocks)},
	{"concurrency", CTX_SERVER | CTX_TABLE, EW_OPT_INT, 1, 64, OPT_AT(concurrency)},
	{"max_response_mb", CTX_SERVER | CTX_TABLE, EW_OPT_INT, 1, 4096, OPT_AT(max_response_mb)},
	{"max_requests", CTX_SERVER | CTX_TABLE, EW_OPT_INT, 1, INT_MAX, OPT_AT(max_requests)},
	/* read by ethwhale.sync (SQL), not by scans */
	{"confirmations", CTX_SERVER, EW_OPT_INT, 0, 10000, -1},
	{"bearer_token", CTX_MAPPING, EW_OPT_STRING, 0, 0, OPT_AT(bearer_token)},
	{"headers", CTX_MAPPING, EW_OPT_STRING, 0, 0, OPT_AT(headers)},
	{"field", CTX_COLUMN, EW_OPT_STRING, 0, 0, -1},
	{NULL, 0, EW_OPT_STRING, 0, 0, -1}
};

/* The context bit of a catalog. */
static int
context_of(Oid catalog)
{
	switch (catalog)
	{
		case ForeignServerRelationId:
			return CTX_SERVER;
		case ForeignTableRelationId:
			return CTX_TABLE;
		case UserMappingRelationId:
			return CTX_MAPPING;
		case AttributeRelationId:
			return CTX_COLUMN;
	}
	return 0;
}

/*
 * Headers that the wrapper sets itself or that would change how the
 * request is routed or framed: a user mapping may not set them (a Host of
 * its choosing would reach another virtual host behind the endpoint).
 */
static const char *const reserved_headers[] = {
	"host", "content-type", "content-length", "transfer-encoding",
	"connection", "expect", "accept-encoding", "te", "trailer", "upgrade",
	"keep-alive", "proxy-authorization", "proxy-connection", NULL
};

PG_FUNCTION_INFO_V1(ethwhale_fdw_validator);

static const EwOption *find_option(const char *name, Oid context);
static void report_unknown_option(const char *name, Oid context);
static void check_endpoint(const char *value);
static void check_endpoint_privilege(const char *value, Oid validator);
static bool option_already_usable(const char *name, const char *value, Oid validator);
static void check_bearer_token(const char *value);
static void check_ca_file(const char *value, Oid validator);
static void check_superuser_option(const char *name, const char *value, Oid validator,
								   const char *detail, const char *hint);

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
		EwHeader   *headers;

		if (opt == NULL)
			report_unknown_option(def->defname, catalog);

		value = defGetString(def);
		if (opt->type == EW_OPT_INT)
			(void) EwParseIntOption(opt->name, value, opt->min, opt->max);
		else if (opt->type == EW_OPT_KIND)
			(void) EwParseTableKind(value);
		else if (opt->type == EW_OPT_API)
			(void) EwParseApi(value);
		else if (opt->type == EW_OPT_COMPRESSION)
			(void) EwParseCompression(value);
		else if (strcmp(opt->name, "endpoint") == 0)
		{
			check_endpoint(value);
			check_endpoint_privilege(value, fcinfo->flinfo->fn_oid);
			have_endpoint = true;
		}
		else if (strcmp(opt->name, "ca_file") == 0)
			check_ca_file(value, fcinfo->flinfo->fn_oid);
		else if (strcmp(opt->name, "headers") == 0)
			(void) EwParseHeaders(value, &headers);
		else if (strcmp(opt->name, "bearer_token") == 0)
			check_bearer_token(value);
		else if (strcmp(opt->name, "field") == 0 && value[0] == '\0')
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for option \"field\": empty name")));
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
		if ((opt->contexts & context_of(context)) && strcmp(opt->name, name) == 0)
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

		if (!(opt->contexts & context_of(context)))
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
 * EwParseIntOption
 *		Parse an integer option value, raising a clear error when it is not
 *		an integer or out of the option's range.
 */
int
EwParseIntOption(const char *name, const char *value, int min, int max)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || v < min || v > max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"", name, value),
				 errdetail("The value must be an integer between %d and %d.",
						   min, max)));
	return (int) v;
}

/*
 * EwParseApi
 *		The value of the server option "api".
 */
EwApiKind
EwParseApi(const char *value)
{
	if (strcmp(value, "graphql") == 0)
		return EW_API_GRAPHQL;
	if (strcmp(value, "jsonrpc") == 0)
		return EW_API_JSONRPC;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"api\": \"%s\"", value),
			 errhint("Valid values are: graphql (Geth's EIP-1767 endpoint, .../graphql), jsonrpc (any node's or provider's JSON-RPC URL).")));
	return EW_API_AUTO;			/* keep compiler quiet */
}

/*
 * EwParseCompression
 *		The value of the server option "compression".
 */
EwCompression
EwParseCompression(const char *value)
{
	if (strcmp(value, "auto") == 0)
		return EW_COMPRESSION_AUTO;
	if (strcmp(value, "gzip") == 0)
		return EW_COMPRESSION_GZIP;
	if (strcmp(value, "none") == 0)
		return EW_COMPRESSION_NONE;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid value for option \"compression\": \"%s\"", value),
			 errhint("Valid values are: auto (none for a loopback endpoint, else gzip), gzip (ask for gzipped answers), none.")));
	return EW_COMPRESSION_AUTO;	/* keep compiler quiet */
}

/*
 * EwApiOfEndpoint
 *		The API of a server without the option "api": GraphQL when the
 *		endpoint's path ends in /graphql (Geth serves it there), else
 *		JSON-RPC, which every node and provider serves.
 */
EwApiKind
EwApiOfEndpoint(const char *endpoint)
{
	const char *p = strstr(endpoint, "://");
	size_t		len;

	p = p ? p + 3 : endpoint;
	p += strcspn(p, "/?#");		/* the path starts after the authority */
	len = strcspn(p, "?#");
	while (len > 0 && p[len - 1] == '/')
		len--;
	if (len >= 8 && pg_strncasecmp(p + len - 8, "/graphql", 8) == 0)
		return EW_API_GRAPHQL;
	return EW_API_JSONRPC;
}

/*
 * check_endpoint
 *		Accept only absolute http:// or https:// URLs with a host and no
 *		user-info part (transport.c parses the URL as libcurl will).
 *
 * The value itself is not repeated in errors: an endpoint may carry
 * credentials in its user-info part.
 */
static void
check_endpoint(const char *value)
{
	bool		has_userinfo = false;

	if (!EwCheckEndpointUrl(value, &has_userinfo))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"endpoint\""),
				 errdetail("The endpoint must be an absolute http:// or https:// URL with a host."),
				 errhint("For a local Geth started with --http --graphql use 'http://127.0.0.1:8545/graphql'.")));

	/*
	 * Server options are readable by every role (pg_foreign_server is not
	 * protected), so credentials in the URL would be public.
	 */
	if (has_userinfo)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"endpoint\""),
				 errdetail("The endpoint must not contain a user name or password: server options are visible to every role."),
				 errhint("Put credentials in the user mapping instead: OPTIONS (bearer_token '...') or OPTIONS (headers 'Authorization: Basic ...').")));
}

/*
 * check_endpoint_privilege
 *		Only superusers may point a server at a new URL.
 *
 * The backend fetches whatever URL the endpoint names, from inside the
 * database server's network: a role that could choose it could probe or
 * call internal services (server-side request forgery).  So a non-superuser
 * may only name an endpoint that a server it can already use has; that
 * keeps ALTER SERVER ... OPTIONS (SET timeout_ms ...) working for the owner
 * of a server a superuser set up, while any new or changed URL needs a
 * superuser.  The validator receives the complete option list on both
 * CREATE and ALTER SERVER, but not the server being altered, hence the
 * comparison with the catalog.
 */
static void
check_endpoint_privilege(const char *value, Oid validator)
{
	check_superuser_option("endpoint", value, validator,
						   "Only superusers may set or change the endpoint, because the database server sends requests to that URL.",
						   "Ask a superuser to create the server or change its endpoint; ALTER SERVER ... OWNER TO can then hand the server over, and its owner may change the other options.");
}

/*
 * check_superuser_option
 *		A server option that names something of the database server's (a URL
 *		it fetches, a file it reads): only superusers may set it, unless a
 *		server the user can already use has exactly that value.
 */
static void
check_superuser_option(const char *name, const char *value, Oid validator,
					   const char *detail, const char *hint)
{
	if (superuser() || option_already_usable(name, value, validator))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("permission denied to set option \"%s\" of an ethwhale_fdw server", name),
			 errdetail("%s", detail),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * option_already_usable
 *		True when a server of a wrapper validated by this function, on which
 *		the current user has USAGE (owners have it), has exactly this value
 *		for the option name.
 */
static bool
option_already_usable(const char *name, const char *value, Oid validator)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;
	Oid			userid = GetUserId();

	rel = table_open(ForeignServerRelationId, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_foreign_server srv = (Form_pg_foreign_server) GETSTRUCT(tup);
		ForeignDataWrapper *fdw;
		Datum		datum;
		bool		isnull;
		ListCell   *lc;

		CHECK_FOR_INTERRUPTS();
		fdw = GetForeignDataWrapper(srv->srvfdw);
		if (fdw->fdwvalidator != validator)
			continue;
		if (ew_foreign_server_aclcheck(srv->oid, userid, ACL_USAGE) != ACLCHECK_OK)
			continue;
		datum = heap_getattr(tup, Anum_pg_foreign_server_srvoptions,
							 RelationGetDescr(rel), &isnull);
		if (isnull)
			continue;
		foreach(lc, untransformRelOptions(datum))
		{
			DefElem    *def = (DefElem *) lfirst(lc);

			if (strcmp(def->defname, name) == 0 &&
				strcmp(defGetString(def), value) == 0)
			{
				found = true;
				break;
			}
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * check_ca_file
 *		The CA certificates (PEM) an https endpoint is verified against,
 *		instead of the system's: an absolute path the database server can
 *		read.  Like the endpoint, only a superuser may name it (it is a
 *		file of the server's file system), unless a server the user can use
 *		has the same one.
 */
static void
check_ca_file(const char *value, Oid validator)
{
	struct stat st;

	if (!is_absolute_path(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"ca_file\": \"%s\" is not an absolute path", value)));
	check_superuser_option("ca_file", value, validator,
						   "Only superusers may name a file of the database server.", NULL);
	if (stat(value, &st) != 0 || !S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"ca_file\": could not find a file \"%s\"", value),
				 errhint("Name a PEM file of CA certificates that the database server can read.")));
}

/*
 * check_bearer_token
 *		A token goes into one header line: it must be one line.
 */
static void
check_bearer_token(const char *value)
{
	const unsigned char *p;

	for (p = (const unsigned char *) value; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			break;
	if (value[0] == '\0' || *p != '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"bearer_token\""),
				 errdetail("The token must be non-empty, on one line and free of control characters.")));
}

/*
 * EwParseHeaders
 *		Split the "headers" option into its "Name: value" lines, newline
 *		separated (empty lines are ignored), into a palloc'd array; returns
 *		the count.  A malformed line, a control character in a value (CR
 *		would start a header of its own) or a header the wrapper sets itself
 *		is an ERROR that names the line.
 */
int
EwParseHeaders(const char *value, EwHeader **headers)
{
	const char *line = value;
	int			n = 0;
	int			lineno = 0;
	int			cap = 4;

	*headers = palloc(sizeof(EwHeader) * cap);
	while (*line)
	{
		const char *eol = strchr(line, '\n');
		size_t		len = eol ? (size_t) (eol - line) : strlen(line);
		const char *colon = memchr(line, ':', len);
		const char *p;
		const char *v;
		size_t		vlen;
		char	   *name;
		int			i;

		lineno++;
		if (len > 0)
		{
			bool		ok = colon != NULL && colon > line;

			for (p = line; ok && p < colon; p++)
				if (!(isalnum((unsigned char) *p) || *p == '-' || *p == '_'))
					ok = false;
			for (p = colon ? colon + 1 : line; ok && p < line + len; p++)
				if ((unsigned char) *p < 0x20 && *p != '\t')
					ok = false;
			if (!ok)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"headers\": line %d", lineno),
						 errdetail("Each line must have the form \"Name: value\"; names are letters, digits, '-' and '_', and values have no control characters.")));
			name = pnstrdup(line, colon - line);
			for (i = 0; reserved_headers[i]; i++)
				if (pg_strcasecmp(name, reserved_headers[i]) == 0)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid value for option \"headers\": header \"%s\" is reserved", name),
							 errdetail("The wrapper sets the headers that frame and route a request itself."),
							 errhint("Use \"headers\" for authentication and provider headers such as Authorization or X-API-Key.")));
			v = colon + 1;
			while (v < line + len && (*v == ' ' || *v == '\t'))
				v++;
			vlen = line + len - v;
			while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
				vlen--;
			if (n == cap)
			{
				cap *= 2;
				*headers = repalloc(*headers, sizeof(EwHeader) * cap);
			}
			(*headers)[n].name = name;
			(*headers)[n].value = pnstrdup(v, vlen);
			n++;
		}
		if (!eol)
			break;
		line = eol + 1;
	}
	return n;
}

/*
 * apply_options
 *		Fold a catalog option list into opts, through the option table.
 */
static void
apply_options(List *options, Oid context, EwOptions *opts)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const EwOption *opt = find_option(def->defname, context);
		char	   *at;

		if (opt == NULL || opt->offset < 0)
			continue;			/* validated at definition time */
		at = (char *) opts + opt->offset;
		switch (opt->type)
		{
			case EW_OPT_INT:
				*(int *) at = EwParseIntOption(opt->name, defGetString(def),
											   opt->min, opt->max);
				break;
			case EW_OPT_KIND:
				*(EwTableKind *) at = EwParseTableKind(defGetString(def));
				break;
			case EW_OPT_API:
				*(EwApiKind *) at = EwParseApi(defGetString(def));
				break;
			case EW_OPT_COMPRESSION:
				*(EwCompression *) at = EwParseCompression(defGetString(def));
				break;
			case EW_OPT_STRING:
				*(char **) at = defGetString(def);
				break;
		}
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
	opts->max_requests = EwMaxRequestsPerQuery;	/* the setting, unless set here */
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
					 errhint("Set the kind of rows it holds, e.g. ALTER FOREIGN TABLE %s OPTIONS (ADD \"table\" 'tx'); valid kinds are: %s.",
							 quote_identifier(get_rel_name(foreigntableid)),
							 EwTableKindList())));
	}

	if (opts->endpoint != NULL && opts->api == EW_API_AUTO)
		opts->api = EwApiOfEndpoint(opts->endpoint);
	if (opts->endpoint != NULL && opts->compression == EW_COMPRESSION_AUTO)
		opts->compression = EwEndpointIsLoopback(opts->endpoint) ?
			EW_COMPRESSION_NONE : EW_COMPRESSION_GZIP;
	if (opts->endpoint == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("server \"%s\" has no endpoint", server->servername),
				 errhint("Set it with ALTER SERVER %s OPTIONS (ADD endpoint 'http://127.0.0.1:8545/graphql').",
						 quote_identifier(server->servername))));
}

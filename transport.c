/*-------------------------------------------------------------------------
 *
 * transport.c
 *		  HTTP transport of ethwhale_fdw: one reusable libcurl handle per
 *		  foreign server per backend.
 *
 * A backend keeps one easy handle per server for its whole life, so HTTP
 * keep-alive reuses the TCP connection and thousands of queries do not use
 * thousands of sockets.  The response buffer belongs to the cached entry and
 * is reused by every request; nothing allocated by libcurl outlives a
 * request except the handle and its connection cache, so an ERROR thrown
 * between requests cannot leak.
 *
 * Nothing here raises an ERROR while libcurl is running: callbacks only set
 * flags, and interrupts are serviced after curl_easy_perform returns.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "ethwhale_fdw.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/wait_event.h"

struct EwConnection
{
	Oid			serverid;		/* hash key */
	CURL	   *curl;
	char	   *buf;			/* response body, malloc'd, grows */
	size_t		len;
	size_t		cap;
	size_t		limit;			/* max_response_mb in bytes */
	bool		too_large;
	long		retry_after_s;
};

static HTAB *ConnectionHash = NULL;

/* Response buffers above this size are released after use. */
#define EW_KEEP_BUFFER_BYTES (16 * 1024 * 1024)

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata);
static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *userdata);
static int	progress_cb(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
						curl_off_t ultotal, curl_off_t ulnow);

/*
 * EwGetConnection
 *		Return the cached connection for a server, creating it if needed.
 */
EwConnection *
EwGetConnection(ForeignServer *server, const EwOptions *opts)
{
	EwConnection *entry;
	bool		found;

	if (ConnectionHash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(EwConnection);
		ctl.hcxt = CacheMemoryContext;
		ConnectionHash = hash_create("ethwhale_fdw connections", 8, &ctl,
									 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	entry = hash_search(ConnectionHash, &server->serverid, HASH_ENTER, &found);
	if (!found)
	{
		entry->curl = NULL;
		entry->buf = NULL;
		entry->len = entry->cap = 0;
	}
	if (entry->curl == NULL)
	{
		entry->curl = curl_easy_init();
		if (entry->curl == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
					 errmsg("could not create an HTTP handle for server \"%s\"",
							server->servername)));
	}
	return entry;
}

/*
 * write_cb
 *		Append received bytes to the connection's buffer, refusing to grow
 *		past max_response_mb (returning a short count makes libcurl stop).
 */
static size_t
write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	EwConnection *conn = (EwConnection *) userdata;
	size_t		n = size * nmemb;

	if (conn->len + n > conn->limit)
	{
		conn->too_large = true;
		return 0;
	}
	if (conn->len + n + 1 > conn->cap)
	{
		size_t		newcap = Max(conn->cap * 2, conn->len + n + 1);
		char	   *p;

		newcap = Max(newcap, 64 * 1024);
		p = realloc(conn->buf, newcap);
		if (p == NULL)
			return 0;
		conn->buf = p;
		conn->cap = newcap;
	}
	memcpy(conn->buf + conn->len, ptr, n);
	conn->len += n;
	conn->buf[conn->len] = '\0';
	return n;
}

/*
 * header_cb
 *		Pick Retry-After (seconds form) out of the response headers.
 */
static size_t
header_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	EwConnection *conn = (EwConnection *) userdata;
	size_t		n = size * nmemb;
	static const char name[] = "retry-after:";

	if (n > sizeof(name) - 1 && pg_strncasecmp(ptr, name, sizeof(name) - 1) == 0)
	{
		char		tmp[32];
		size_t		k = Min(n - (sizeof(name) - 1), sizeof(tmp) - 1);
		char	   *end;
		long		v;

		memcpy(tmp, ptr + sizeof(name) - 1, k);
		tmp[k] = '\0';
		v = strtol(tmp, &end, 10);
		if (end != tmp && v >= 0)
			conn->retry_after_s = v;
	}
	return n;
}

/*
 * progress_cb
 *		Abort the transfer when the backend has a cancel or die pending; the
 *		caller services the interrupt once libcurl has returned.
 */
static int
progress_cb(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			curl_off_t ultotal, curl_off_t ulnow)
{
	return (QueryCancelPending || ProcDiePending) ? 1 : 0;
}

/*
 * add_header
 *		Append one header line; false when libcurl is out of memory (the
 *		list built so far stays valid and is freed by the caller).
 */
static bool
add_header(struct curl_slist **list, const char *line)
{
	struct curl_slist *h = curl_slist_append(*list, line);

	if (h == NULL)
		return false;
	*list = h;
	return true;
}

/*
 * EwPost
 *		POST one GraphQL request and fill resp.  Transport failures are
 *		reported in resp, not raised: the caller decides whether to retry.
 *		A pending cancel is raised here, with its own SQLSTATE.
 */
void
EwPost(EwConnection *conn, const char *body, size_t body_len,
	   const EwOptions *opts, EwResponse *resp)
{
	CURL	   *c = conn->curl;
	struct curl_slist *headers = NULL;
	CURLcode	rc;
	bool		ok = true;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after_s = -1;
	/* per request: two scans of one query may have different limits */
	conn->limit = (size_t) opts->max_response_mb * 1024 * 1024;

	/*
	 * The buffer only holds the previous answer, already parsed: do not
	 * keep a large one for the life of the backend.
	 */
	if (conn->cap > EW_KEEP_BUFFER_BYTES)
	{
		free(conn->buf);
		conn->buf = NULL;
		conn->cap = 0;
	}
	conn->len = 0;
	conn->too_large = false;
	conn->retry_after_s = -1;

	curl_easy_reset(c);

	ok = add_header(&headers, "Content-Type: application/json") &&
		add_header(&headers, "Accept: application/json") &&
		add_header(&headers, "Expect:");
	if (ok && opts->bearer_token)
	{
		char	   *auth = psprintf("Authorization: Bearer %s", opts->bearer_token);

		ok = add_header(&headers, auth);
		/* do not leave the token lying around in freed memory */
		explicit_bzero(auth, strlen(auth));
		pfree(auth);
	}
	if (ok && opts->headers)
	{
		char	   *copy = pstrdup(opts->headers);
		char	   *save = NULL;
		char	   *line;

		for (line = strtok_r(copy, "\n", &save); ok && line;
			 line = strtok_r(NULL, "\n", &save))
			ok = add_header(&headers, line);
		pfree(copy);
	}
	if (!ok)
	{
		curl_slist_free_all(headers);
		ereport(ERROR,
				(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
				 errmsg("out of memory while building an HTTP request")));
	}

	curl_easy_setopt(c, CURLOPT_URL, opts->endpoint);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_len);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) opts->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) opts->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
					 (curl_off_t) opts->max_response_mb * 1024 * 1024);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, conn);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, conn);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, resp->errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "ethwhale_fdw/0.1");

	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	rc = curl_easy_perform(c);
	pgstat_report_wait_end();

	curl_slist_free_all(headers);
	/* The error buffer lives in resp; make libcurl forget it. */
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);

	if (rc == CURLE_ABORTED_BY_CALLBACK)
		CHECK_FOR_INTERRUPTS();

	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->http_status);
	resp->curl_code = (int) rc;
	resp->too_large = conn->too_large || rc == CURLE_FILESIZE_EXCEEDED;
	resp->retry_after_s = conn->retry_after_s;
	resp->body = conn->buf ? conn->buf : "";
	resp->body_len = conn->len;
}

const char *
EwCurlStrerror(int code)
{
	return curl_easy_strerror((CURLcode) code);
}

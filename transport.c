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
 * libcurl's result codes stay in this file: a finished exchange is reported
 * as an EwNetStatus, which request.c interprets.
 *
 * The handles of a server are dropped (and its connections closed) when
 * its server or user mapping options change, as postgres_fdw does with its
 * connections, and all of them when the backend exits.
 *
 * For concurrency > 1 a scan takes slots: more easy handles of the same
 * server, driven together by one multi handle.  A slot is owned by one scan
 * at a time, so two scans of one query never share a transfer.  Slots keep
 * their connections between queries like the main handle does; a transfer
 * still running when its scan is released (end, rescan or ERROR) is removed
 * from the multi handle, which closes its connection.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <curl/curl.h>

#include "ethwhale_fdw.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/wait_event.h"

/* One easy handle and the answer it receives. */
struct EwSlot
{
	CURL	   *curl;
	char	   *buf;			/* response body, malloc'd, grows */
	size_t		len;
	size_t		cap;
	size_t		limit;			/* max_response_mb in bytes */
	bool		too_large;
	long		retry_after_s;
	/* multi transfers only */
	struct curl_slist *headers;
	char		errbuf[CURL_ERROR_SIZE];
	bool		in_use;			/* owned by a scan */
	bool		busy;			/* added to the multi handle */
	bool		done;			/* finished; rc is its result */
	CURLcode	rc;
};

/* Most slots per server and backend (the "concurrency" option's maximum). */
#define EW_MAX_SLOTS 64

struct EwConnection
{
	Oid			serverid;		/* hash key */
	bool		invalidated;	/* options changed: renew the handles */
	EwSlot		main;			/* EwPost's handle */
	CURLM	   *multi;			/* drives the slots */
	EwSlot	   *slots[EW_MAX_SLOTS];
	int			nslots;
};

static HTAB *ConnectionHash = NULL;

/* Response buffers above this size are released after use. */
#define EW_KEEP_BUFFER_BYTES (16 * 1024 * 1024)

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata);
static size_t header_cb(char *ptr, size_t size, size_t nmemb, void *userdata);
static int	progress_cb(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
						curl_off_t ultotal, curl_off_t ulnow);

/*
 * free_slot_handle
 *		Close a slot's handle and its connections, and free its buffer.
 */
static void
free_slot_handle(EwConnection *conn, EwSlot *slot)
{
	if (slot->curl == NULL)
		return;
	if (slot->busy && conn->multi)
		curl_multi_remove_handle(conn->multi, slot->curl);
	slot->busy = false;
	if (slot->headers)
		curl_slist_free_all(slot->headers);
	slot->headers = NULL;
	curl_easy_cleanup(slot->curl);
	slot->curl = NULL;
	free(slot->buf);
	slot->buf = NULL;
	slot->len = slot->cap = 0;
}

/*
 * free_connection
 *		Close every handle of a server's entry.  Slots that a scan still
 *		owns are kept (the entry stays invalidated until they are free).
 *		Returns whether everything was closed.
 */
static bool
free_connection(EwConnection *conn)
{
	int			i;

	for (i = 0; i < conn->nslots; i++)
		if (conn->slots[i]->in_use)
			return false;
	free_slot_handle(conn, &conn->main);
	for (i = 0; i < conn->nslots; i++)
	{
		free_slot_handle(conn, conn->slots[i]);
		pfree(conn->slots[i]);
	}
	conn->nslots = 0;
	if (conn->multi)
		curl_multi_cleanup(conn->multi);
	conn->multi = NULL;
	return true;
}

/*
 * invalidate_callback
 *		A server or user mapping changed: mark every entry, and renew its
 *		handles when it is next used.  (Which server an invalidation is for
 *		is not cheaply known from the hash value, so all entries are
 *		marked, as postgres_fdw does for user mappings.)
 */
static void
invalidate_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	EwConnection *entry;

	if (ConnectionHash == NULL)
		return;
	hash_seq_init(&scan, ConnectionHash);
	while ((entry = hash_seq_search(&scan)) != NULL)
		entry->invalidated = true;
}

/*
 * release_all
 *		Backend exit: close every handle, so connections end cleanly and
 *		nothing of libcurl's is left behind.
 */
static void
release_all(int code, Datum arg)
{
	HASH_SEQ_STATUS scan;
	EwConnection *entry;

	if (ConnectionHash != NULL)
	{
		hash_seq_init(&scan, ConnectionHash);
		while ((entry = hash_seq_search(&scan)) != NULL)
		{
			int			i;

			/* at exit no scan runs: whatever is in use is abandoned */
			for (i = 0; i < entry->nslots; i++)
				entry->slots[i]->in_use = false;
			(void) free_connection(entry);
		}
	}
	curl_global_cleanup();
}

/*
 * EwTransportInit
 *		Library start-up: libcurl's global state, the invalidation callbacks
 *		and the clean-up at exit.
 */
void
EwTransportInit(void)
{
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not initialize libcurl")));
	CacheRegisterSyscacheCallback(FOREIGNSERVEROID, invalidate_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(USERMAPPINGOID, invalidate_callback, (Datum) 0);
	on_proc_exit(release_all, (Datum) 0);
}

/*
 * EwCheckEndpointUrl
 *		Whether value is an absolute http:// or https:// URL with a host, as
 *		libcurl parses it; *has_userinfo tells whether it names a user.
 */
bool
EwCheckEndpointUrl(const char *value, bool *has_userinfo)
{
	CURLU	   *u = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	bool		ok;

	*has_userinfo = false;
	if (u == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	ok = curl_url_set(u, CURLUPART_URL, value, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
		host[0] != '\0' &&
		(pg_strcasecmp(scheme, "http") == 0 || pg_strcasecmp(scheme, "https") == 0);
	if (ok)
	{
		char	   *user = NULL;

		/* CURLUE_NO_USER when the URL has no user-info part */
		*has_userinfo = curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK;
		if (user)
			curl_free(user);
	}
	if (scheme)
		curl_free(scheme);
	if (host)
		curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

/*
 * EwEndpointIsLoopback
 *		Whether the endpoint's host, as libcurl parses it, is a loopback
 *		address: localhost, 127.0.0.0/8 or ::1.  The compression "auto"
 *		turns gzip off for those: on the same machine the bytes cost nothing
 *		to move, and gzip and gunzip cost both ends CPU.  A name that only
 *		resolves to loopback (other than localhost) is not looked up.
 */
bool
EwEndpointIsLoopback(const char *endpoint)
{
	CURLU	   *u = curl_url();
	char	   *host = NULL;
	bool		loopback = false;

	if (u == NULL)
		return false;			/* gzip then: the safe default */
	if (curl_url_set(u, CURLUPART_URL, endpoint, 0) == CURLUE_OK &&
		curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
	{
		size_t		len = strlen(host);
		struct in_addr a4;
		struct in6_addr a6;

		if (len > 0 && host[len - 1] == '.')
			host[--len] = '\0';	/* "localhost." is localhost */
		if (pg_strcasecmp(host, "localhost") == 0)
			loopback = true;
		else if (inet_pton(AF_INET, host, &a4) == 1)
			loopback = (ntohl(a4.s_addr) >> 24) == 127;
		else if (len > 2 && host[0] == '[' && host[len - 1] == ']')
		{
			host[len - 1] = '\0';
			loopback = inet_pton(AF_INET6, host + 1, &a6) == 1 &&
				IN6_IS_ADDR_LOOPBACK(&a6);
		}
	}
	if (host)
		curl_free(host);
	curl_url_cleanup(u);
	return loopback;
}

/*
 * EwGetConnection
 *		Return the cached connection for a server, creating it if needed,
 *		and renewing its handles if the server's options changed.
 */
EwConnection *
EwGetConnection(ForeignServer *server)
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
		memset(&entry->main, 0, sizeof(entry->main));
		entry->multi = NULL;
		entry->nslots = 0;
		entry->invalidated = false;
	}
	if (entry->invalidated && free_connection(entry))
		entry->invalidated = false;
	if (entry->main.curl == NULL)
	{
		entry->main.curl = curl_easy_init();
		if (entry->main.curl == NULL)
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
	EwSlot	   *conn = (EwSlot *) userdata;
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
	EwSlot	   *conn = (EwSlot *) userdata;
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
 * prepare_request
 *		Reset a slot and set its handle up for one POST of body: headers,
 *		limits, callbacks.  copy_body makes libcurl keep its own copy (for a
 *		transfer that outlives the caller's buffer).  Returns the header list
 *		the caller frees after the transfer.
 */
static struct curl_slist *
prepare_request(EwSlot *slot, const char *body, size_t body_len,
				const EwOptions *opts, char *errbuf, bool copy_body)
{
	CURL	   *c = slot->curl;
	struct curl_slist *headers = NULL;
	bool		ok;

	/* per request: two scans of one query may have different limits */
	slot->limit = (size_t) opts->max_response_mb * 1024 * 1024;

	/*
	 * The buffer only holds the previous answer, already parsed: do not
	 * keep a large one for the life of the backend.
	 */
	if (slot->cap > EW_KEEP_BUFFER_BYTES)
	{
		free(slot->buf);
		slot->buf = NULL;
		slot->cap = 0;
	}
	slot->len = 0;
	slot->too_large = false;
	slot->retry_after_s = -1;

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
		EwHeader   *h;
		int			n = EwParseHeaders(opts->headers, &h);
		int			i;

		for (i = 0; ok && i < n; i++)
		{
			char	   *line = psprintf("%s: %s", h[i].name, h[i].value);

			ok = add_header(&headers, line);
			explicit_bzero(line, strlen(line));
			pfree(line);
		}
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
	/* libcurl's defaults, stated: a reset must never turn them off */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (opts->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, opts->ca_file);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) body_len);
	if (copy_body)
		curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, body);
	else
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	/* "": every encoding libcurl can decode; NULL: no Accept-Encoding */
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING,
					 opts->compression == EW_COMPRESSION_NONE ? NULL : "");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long) opts->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long) opts->connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
					 (curl_off_t) opts->max_response_mb * 1024 * 1024);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, slot);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, slot);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "ethwhale_fdw/" EW_VERSION);
	curl_easy_setopt(c, CURLOPT_PRIVATE, slot);
	return headers;
}

/*
 * net_status
 *		libcurl's result as the neutral status request.c reads.
 */
static EwNetStatus
net_status(EwSlot *slot, CURLcode rc)
{
	if (slot->too_large || rc == CURLE_FILESIZE_EXCEEDED)
		return EW_NET_TOO_LARGE;
	switch (rc)
	{
		case CURLE_OK:
			return EW_NET_OK;
		case CURLE_OPERATION_TIMEDOUT:
			return EW_NET_TIMEOUT;
		case CURLE_COULDNT_CONNECT:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
			return EW_NET_CONNECT;
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_CIPHER:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_CRL_BADFILE:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		case CURLE_SSL_INVALIDCERTSTATUS:
		case CURLE_USE_SSL_FAILED:
		case CURLE_SSL_ENGINE_NOTFOUND:
		case CURLE_SSL_ENGINE_SETFAILED:
		case CURLE_SSL_ENGINE_INITFAILED:
			return EW_NET_TLS;
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
		case CURLE_LOGIN_DENIED:
			return EW_NET_REFUSED_URL;
		case CURLE_ABORTED_BY_CALLBACK:
			return EW_NET_INTERRUPTED;
		case CURLE_GOT_NOTHING:
			return EW_NET_EMPTY;
		case CURLE_PARTIAL_FILE:
			return EW_NET_TRUNCATED;
		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
			return EW_NET_RESET;
		default:
			return EW_NET_OTHER;
	}
}

/*
 * fill_response
 *		What a finished transfer of slot produced.  When libcurl left no
 *		error text, its description of the code is used.
 */
static void
fill_response(EwSlot *slot, CURLcode rc, EwResponse *resp)
{
	curl_easy_getinfo(slot->curl, CURLINFO_RESPONSE_CODE, &resp->http_status);
	resp->status = net_status(slot, rc);
	resp->retry_after_s = slot->retry_after_s;
	resp->body = slot->buf ? slot->buf : "";
	resp->body_len = slot->len;
	resp->error_name = curl_easy_strerror(rc);
	if (rc != CURLE_OK && resp->errbuf[0] == '\0')
		strlcpy(resp->errbuf, resp->error_name, sizeof(resp->errbuf));
}

/*
 * EwPost
 *		POST one request and fill resp.  Transport failures are
 *		reported in resp, not raised: the caller decides whether to retry.
 *		A pending cancel is raised here, with its own SQLSTATE.
 */
void
EwPost(EwConnection *conn, const char *body, size_t body_len,
	   const EwOptions *opts, EwResponse *resp)
{
	EwSlot	   *slot = &conn->main;
	struct curl_slist *headers;
	CURLcode	rc;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after_s = -1;
	headers = prepare_request(slot, body, body_len, opts, resp->errbuf, false);

	pgstat_report_wait_start(PG_WAIT_EXTENSION);
	rc = curl_easy_perform(slot->curl);
	pgstat_report_wait_end();

	curl_slist_free_all(headers);
	/* The error buffer lives in resp; make libcurl forget it. */
	curl_easy_setopt(slot->curl, CURLOPT_ERRORBUFFER, NULL);

	if (rc == CURLE_ABORTED_BY_CALLBACK)
		CHECK_FOR_INTERRUPTS();
	fill_response(slot, rc, resp);
}

/*
 * EwAcquireSlot
 *		A free slot of the server for a scan's concurrent requests.
 */
EwSlot *
EwAcquireSlot(EwConnection *conn, const char *servername)
{
	EwSlot	   *slot = NULL;
	int			i;

	if (conn->multi == NULL)
	{
		conn->multi = curl_multi_init();
		if (conn->multi == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
					 errmsg("could not create an HTTP multi handle for server \"%s\"",
							servername)));
	}
	for (i = 0; i < conn->nslots; i++)
		if (!conn->slots[i]->in_use)
		{
			slot = conn->slots[i];
			break;
		}
	if (slot == NULL)
	{
		if (conn->nslots >= EW_MAX_SLOTS)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
					 errmsg("more than %d concurrent requests to server \"%s\" in one backend",
							EW_MAX_SLOTS, servername),
					 errhint("Lower the \"concurrency\" option of the server.")));
		slot = MemoryContextAllocZero(CacheMemoryContext, sizeof(EwSlot));
		slot->curl = curl_easy_init();
		if (slot->curl == NULL)
		{
			pfree(slot);
			ereport(ERROR,
					(errcode(ERRCODE_FDW_OUT_OF_MEMORY),
					 errmsg("could not create an HTTP handle for server \"%s\"",
							servername)));
		}
		conn->slots[conn->nslots++] = slot;
	}
	slot->in_use = true;
	slot->busy = false;
	slot->done = false;
	return slot;
}

/*
 * stop_transfer
 *		Take a slot's transfer out of the multi handle, finished or not.
 */
static void
stop_transfer(EwConnection *conn, EwSlot *slot)
{
	if (slot->busy)
	{
		curl_multi_remove_handle(conn->multi, slot->curl);
		slot->busy = false;
	}
	if (slot->headers)
	{
		curl_slist_free_all(slot->headers);
		slot->headers = NULL;
	}
	curl_easy_setopt(slot->curl, CURLOPT_ERRORBUFFER, NULL);
}

/*
 * EwReleaseSlot
 *		Give a slot back, stopping its transfer if one runs.  Never raises
 *		an ERROR: it runs from memory-context reset callbacks during abort.
 */
void
EwReleaseSlot(EwConnection *conn, EwSlot *slot)
{
	stop_transfer(conn, slot);
	slot->done = false;
	slot->in_use = false;
}

/*
 * EwStartPost
 *		Start POSTing body on slot; EwWaitPost collects the answer.
 */
void
EwStartPost(EwConnection *conn, EwSlot *slot, const char *body, size_t body_len,
			const EwOptions *opts)
{
	CURLMcode	mc;

	stop_transfer(conn, slot);
	slot->errbuf[0] = '\0';
	slot->done = false;
	slot->headers = prepare_request(slot, body, body_len, opts, slot->errbuf, true);
	mc = curl_multi_add_handle(conn->multi, slot->curl);
	if (mc != CURLM_OK)
	{
		/* like a transfer that failed at once: the caller may retry */
		slot->done = true;
		slot->rc = CURLE_FAILED_INIT;
		strlcpy(slot->errbuf, curl_multi_strerror(mc), sizeof(slot->errbuf));
		return;
	}
	slot->busy = true;
}

/*
 * EwWaitPost
 *		Drive every running transfer of the server until slot's is done,
 *		then fill resp.  Other slots progress meanwhile and keep their
 *		answers until they are waited for.  Interrupts are serviced between
 *		polls (an ERROR leaves the slots to their owner's release).
 */
void
EwWaitPost(EwConnection *conn, EwSlot *slot, EwResponse *resp)
{
	memset(resp, 0, sizeof(*resp));
	resp->retry_after_s = -1;
	while (!slot->done)
	{
		int			running;
		int			queued;
		CURLMsg    *msg;

		curl_multi_perform(conn->multi, &running);
		while ((msg = curl_multi_info_read(conn->multi, &queued)) != NULL)
		{
			EwSlot	   *s = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &s);
			if (s == NULL)
				continue;
			s->rc = msg->data.result;
			s->done = true;
			curl_multi_remove_handle(conn->multi, s->curl);
			s->busy = false;
		}
		if (slot->done)
			break;
		if (!slot->busy)
		{
			/* not started: nothing will ever finish it */
			slot->done = true;
			slot->rc = CURLE_FAILED_INIT;
			break;
		}
		pgstat_report_wait_start(PG_WAIT_EXTENSION);
		curl_multi_poll(conn->multi, NULL, 0, 100, NULL);
		pgstat_report_wait_end();
		CHECK_FOR_INTERRUPTS();
	}
	if (slot->headers)
	{
		curl_slist_free_all(slot->headers);
		slot->headers = NULL;
	}
	memcpy(resp->errbuf, slot->errbuf, Min(sizeof(resp->errbuf), sizeof(slot->errbuf)));
	resp->errbuf[sizeof(resp->errbuf) - 1] = '\0';
	curl_easy_setopt(slot->curl, CURLOPT_ERRORBUFFER, NULL);
	fill_response(slot, slot->rc, resp);
}

/*-------------------------------------------------------------------------
 *
 * jsonfast.c
 *		  A fast path in front of json_loadb for the JSON nodes answer with.
 *
 * jansson's parser reads its input one byte at a time through a callback,
 * checks UTF-8 and appends each byte of a token to a buffer by another
 * call, and so spends ~10 ns per byte: over half of the time a full-row
 * scan took.  The answers of a node are a narrow subset of JSON: ASCII,
 * hex strings without escapes, small integers, true, false, null.  This
 * parser reads that subset with a plain loop and builds the same jansson
 * tree through jansson's own constructors (so the tree is jansson's, in
 * jsonmem.c's arena as before, and everything downstream is unchanged).
 *
 * It accepts only input that json_loadb(JSON_REJECT_DUPLICATES) accepts
 * and builds the tree jansson would (test/fuzz/fuzz_decode.c checks both
 * on every input: json_equal).  On anything else -- an escape, a byte
 * outside printable ASCII in a string, a real number, an integer beyond
 * 64 bits, a duplicate key, deep nesting, any syntax error -- it gives up
 * and returns NULL, and the caller runs json_loadb on the same bytes: its
 * tree, or its exact error message, is the answer's.  So an answer outside
 * the subset costs one partial pass more, and errors read as before.
 *
 * A caller may name keys to leave out (skip): the keys of a JSON-RPC
 * node's data that no decoder reads -- logsBloom, the signature, the
 * access list, a receipt's logs -- which are over half the bytes and the
 * objects of a block with its receipts.  Inside the value of "result" of
 * the top-level object (or of the top-level array's objects: a batch),
 * such a key's value is read for its syntax, in the same subset, and
 * left out of the tree; a key skipped twice in one object gives up as a
 * duplicate would, but duplicates inside a skipped value are not looked
 * for (nothing reads them).  The tree is then jansson's with those keys
 * removed (fuzz_decode.c checks that too).  Outside "result" (an error
 * object, a GraphQL answer) nothing is left out.
 *
 * jansson's json_object() cannot be called by name from the backend: the
 * backend exports PostgreSQL's json_object (the SQL function), and the
 * dynamic linker binds this library's calls to that one (ethwhale_fdw.h).
 * The constructors of containers are therefore looked up in libjansson
 * itself with dlsym, once; if that fails, the fast path is off and every
 * answer goes to json_loadb.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <dlfcn.h>

#include "ethwhale_fdw.h"

/* Under jansson's JSON_PARSER_MAX_DEPTH (2048): deeper input goes to it. */
#define FAST_MAX_DEPTH 1024

/* At most this many keys to skip (a bit each in fast_object's uint64). */
#define FAST_MAX_SKIP 64
/* Keys to skip are shorter than this (the per-length chains). */
#define FAST_SKIP_KEY_LEN 64

StaticAssertDecl(FAST_MAX_SKIP <= 64 && FAST_MAX_SKIP <= PG_INT8_MAX + 1,
				 "a skipped key's index is a bit of a uint64 and an int8");

typedef struct FastParser
{
	const char *p;
	const char *end;
	int			depth;
	bool		root_is_array;	/* a batch: its objects are answers */
	bool		in_result;		/* within the value of an answer's "result" */
	const char *const *skip;	/* keys to leave out there, or NULL */
	int			nskip;
	/* the skipped keys of n bytes: first[n], then next[] (-1 ends) */
	int8		first[FAST_SKIP_KEY_LEN];
	int8		next[FAST_MAX_SKIP];
} FastParser;

/* Bytes that may stand in a string as they are: printable ASCII but '"' and '\'. */
static bool plain_byte[256];
static bool plain_ready = false;

/* jansson's own json_object and json_array (see above), or NULL */
static json_t *(*new_object) (void) = NULL;
static json_t *(*new_array) (void) = NULL;

static json_t *fast_value(FastParser *ps);

static inline void
skip_ws(FastParser *ps)
{
	while (ps->p < ps->end &&
		   (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
		ps->p++;
}

/*
 * fast_string
 *		The string at ps->p (its opening quote): its bytes between the quotes,
 *		without escapes; false when it has any or runs past the end.
 */
static inline bool
fast_string(FastParser *ps, const char **s, size_t *len)
{
	const char *p = ps->p + 1;

	while (p < ps->end && plain_byte[(unsigned char) *p])
		p++;
	if (p >= ps->end || *p != '"')
		return false;
	*s = ps->p + 1;
	*len = p - *s;
	ps->p = p + 1;
	return true;
}

/*
 * fast_number
 *		An integer as jansson reads one: -?(0|[1-9][0-9]*) within json_int_t;
 *		NULL for a real, a leading zero or an overflow (jansson's to judge).
 */
static bool
scan_number(FastParser *ps, bool *negp, uint64 *vp)
{
	const char *p = ps->p;
	bool		neg = false;
	uint64		v = 0;
	uint64		limit = (uint64) PG_INT64_MAX;

	if (*p == '-')
	{
		neg = true;
		limit = (uint64) PG_INT64_MAX + 1;
		p++;
	}
	if (p >= ps->end || *p < '0' || *p > '9')
		return false;
	if (*p == '0')
		p++;
	else
		while (p < ps->end && *p >= '0' && *p <= '9')
		{
			uint64		d = (uint64) (*p - '0');

			if (v > (limit - d) / 10)
				return false;
			v = v * 10 + d;
			p++;
		}
	if (p < ps->end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E'))
		return false;
	ps->p = p;
	*negp = neg;
	*vp = v;
	return true;
}

static json_t *
fast_number(FastParser *ps)
{
	bool		neg;
	uint64		v;

	if (!scan_number(ps, &neg, &v))
		return NULL;
	if (neg)
		return json_integer(v == (uint64) PG_INT64_MAX + 1 ? PG_INT64_MIN : -(json_int_t) v);
	return json_integer((json_int_t) v);
}

/* true (1), false (0) or null (2) at ps->p, consumed; -1 for none. */
static int
scan_literal(FastParser *ps)
{
	size_t		left = ps->end - ps->p;

	if (left >= 4 && memcmp(ps->p, "true", 4) == 0)
	{
		ps->p += 4;
		return 1;
	}
	if (left >= 5 && memcmp(ps->p, "false", 5) == 0)
	{
		ps->p += 5;
		return 0;
	}
	if (left >= 4 && memcmp(ps->p, "null", 4) == 0)
	{
		ps->p += 4;
		return 2;
	}
	return -1;
}

/* true, false or null at ps->p, else NULL. */
static json_t *
fast_literal(FastParser *ps)
{
	switch (scan_literal(ps))
	{
		case 1:
			return json_true();
		case 0:
			return json_false();
		case 2:
			return json_null();
	}
	return NULL;
}

/* The index of key among the keys to skip, or -1. */
static inline int
skip_index(FastParser *ps, const char *key, size_t klen)
{
	int			i;

	if (klen >= FAST_SKIP_KEY_LEN)
		return -1;
	for (i = ps->first[klen]; i >= 0; i = ps->next[i])
		if (memcmp(ps->skip[i], key, klen) == 0)
			return i;
	return -1;
}

/*
 * skip_value
 *		Read past the value at ps->p as fast_value would parse it, building
 *		nothing; false where fast_value would give up (but for duplicate
 *		keys, which nothing reads here).  A false leaves ps->depth raised:
 *		it ends the whole parse.
 */
static bool
skip_value(FastParser *ps)
{
	const char *s;
	size_t		len;
	bool		neg;
	uint64		v;
	char		close;

	if (ps->p >= ps->end)
		return false;
	switch (*ps->p)
	{
		case '"':
			return fast_string(ps, &s, &len);
		case '{':
		case '[':
			if (++ps->depth > FAST_MAX_DEPTH)
				return false;
			close = *ps->p == '{' ? '}' : ']';
			ps->p++;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == close)
			{
				ps->p++;
				ps->depth--;
				return true;
			}
			for (;;)
			{
				if (close == '}')
				{
					if (ps->p >= ps->end || *ps->p != '"' || !fast_string(ps, &s, &len))
						return false;
					skip_ws(ps);
					if (ps->p >= ps->end || *ps->p != ':')
						return false;
					ps->p++;
					skip_ws(ps);
				}
				if (!skip_value(ps))
					return false;
				skip_ws(ps);
				if (ps->p < ps->end && *ps->p == ',')
				{
					ps->p++;
					skip_ws(ps);
					continue;
				}
				if (ps->p < ps->end && *ps->p == close)
				{
					ps->p++;
					ps->depth--;
					return true;
				}
				return false;
			}
		case 't':
		case 'f':
		case 'n':
			return scan_literal(ps) >= 0;
		default:
			if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
				return scan_number(ps, &neg, &v);
			return false;
	}
}

static json_t *
fast_object(FastParser *ps)
{
	json_t	   *obj = new_object();

	/* an answer: the top-level object, or an object of a top-level batch */
	bool		answer = ps->skip != NULL && !ps->in_result &&
		(ps->depth == 1 || (ps->depth == 2 && ps->root_is_array));
	uint64		skipped = 0;

	if (obj == NULL)
		return NULL;
	ps->p++;					/* '{' */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}')
	{
		ps->p++;
		return obj;
	}
	for (;;)
	{
		const char *key;
		size_t		klen;
		size_t		n;
		int			i;
		json_t	   *v;

		if (ps->p >= ps->end || *ps->p != '"' || !fast_string(ps, &key, &klen))
			break;
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':')
			break;
		ps->p++;
		skip_ws(ps);
		if (ps->in_result && (i = skip_index(ps, key, klen)) >= 0)
		{
			/* left out; twice in one object is a duplicate, for jansson */
			if ((skipped & (UINT64CONST(1) << i)) != 0 || !skip_value(ps))
				break;
			skipped |= UINT64CONST(1) << i;
			goto next;
		}
		if (answer && klen == 6 && memcmp(key, "result", 6) == 0)
		{
			ps->in_result = true;
			v = fast_value(ps);
			ps->in_result = false;
		}
		else
			v = fast_value(ps);
		if (v == NULL)
			break;
		n = json_object_size(obj);
		/* a duplicate key replaces: the size tells, and jansson refuses it */
		if (json_object_setn_new_nocheck(obj, key, klen, v) != 0 ||
			json_object_size(obj) == n)
			break;
next:
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',')
		{
			ps->p++;
			skip_ws(ps);
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}')
		{
			ps->p++;
			return obj;
		}
		break;
	}
	json_decref(obj);
	return NULL;
}

static json_t *
fast_array(FastParser *ps)
{
	json_t	   *arr = new_array();

	if (arr == NULL)
		return NULL;
	ps->p++;					/* '[' */
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']')
	{
		ps->p++;
		return arr;
	}
	for (;;)
	{
		json_t	   *v = fast_value(ps);

		if (v == NULL || json_array_append_new(arr, v) != 0)
			break;
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',')
		{
			ps->p++;
			skip_ws(ps);
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']')
		{
			ps->p++;
			return arr;
		}
		break;
	}
	json_decref(arr);
	return NULL;
}

/* The value at ps->p (no blanks before it), or NULL. */
static json_t *
fast_value(FastParser *ps)
{
	json_t	   *v;

	if (ps->p >= ps->end)
		return NULL;
	switch (*ps->p)
	{
		case '"':
			{
				const char *s;
				size_t		len;

				if (!fast_string(ps, &s, &len))
					return NULL;
				return json_stringn_nocheck(s, len);
			}
		case '{':
		case '[':
			if (++ps->depth > FAST_MAX_DEPTH)
				return NULL;
			v = *ps->p == '{' ? fast_object(ps) : fast_array(ps);
			ps->depth--;
			return v;
		case 't':
		case 'f':
		case 'n':
			return fast_literal(ps);
		default:
			if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
				return fast_number(ps);
			return NULL;
	}
}

/*
 * EwJsonFastLoad
 *		The tree json_loadb(body, len, JSON_REJECT_DUPLICATES) would give,
 *		when body is in the subset above (an object or array at the top, as
 *		without JSON_DECODE_ANY); NULL otherwise, for json_loadb to judge.
 *		With skip (NULL-terminated; NULL for none), the keys of skip are left
 *		out inside "result" (see above), and a duplicate key inside one of
 *		their values is accepted, where json_loadb, called when something
 *		else in the answer is outside the subset, refuses the answer.
 */
json_t *
EwJsonFastLoad(const char *body, size_t len, const char *const *skip)
{
	FastParser	ps;
	json_t	   *root;

	if (!plain_ready)
	{
		/* libjansson is loaded already: it is this library's dependency */
		void	   *lib = dlopen("libjansson.so.4", RTLD_LAZY | RTLD_NOLOAD);
		int			c;

		for (c = 0; c < 256; c++)
			plain_byte[c] = c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
		if (lib != NULL)
		{
			new_object = (json_t *(*) (void)) dlsym(lib, "json_object");
			new_array = (json_t *(*) (void)) dlsym(lib, "json_array");
		}
		plain_ready = true;
	}
	if (new_object == NULL || new_array == NULL)
		return NULL;			/* json_loadb then */
	ps.p = body;
	ps.end = body + len;
	ps.depth = 0;
	ps.in_result = false;
	ps.skip = skip;
	ps.nskip = 0;
	memset(ps.first, -1, sizeof(ps.first));
	for (; skip != NULL && skip[ps.nskip] != NULL; ps.nskip++)
	{
		size_t		n = strlen(skip[ps.nskip]);

		if (ps.nskip >= FAST_MAX_SKIP || n >= FAST_SKIP_KEY_LEN)
			elog(ERROR, "ethwhale_fdw: more than %d keys to skip, or one of %zu bytes",
				 FAST_MAX_SKIP, n);
		ps.next[ps.nskip] = ps.first[n];
		ps.first[n] = (int8) ps.nskip;
	}
	skip_ws(&ps);
	if (ps.p >= ps.end || (*ps.p != '{' && *ps.p != '['))
		return NULL;
	ps.root_is_array = *ps.p == '[';
	root = fast_value(&ps);
	if (root == NULL)
		return NULL;
	skip_ws(&ps);
	if (ps.p != ps.end)
	{
		json_decref(root);
		return NULL;
	}
	return root;
}

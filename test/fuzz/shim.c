/*
 * shim.c - just enough of the PostgreSQL backend to run decode.c,
 * option.c and the JSON-RPC answer checks under libFuzzer: palloc is malloc with every block on a list
 * freed after each input (pfree frees at once, so ASan sees use after
 * free), and an ERROR jumps back to the harness (or to the innermost
 * PG_TRY) with siglongjmp.  src/port's functions (snprintf, strlcpy,
 * pg_strcasecmp, pg_ascii_tolower ...) are the real ones, from libpgport.a.
 */
#include "postgres.h"

#include <setjmp.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"

typedef struct Blk
{
	struct Blk *prev, *next;
	size_t		size;
	uint64		seq;			/* allocation order: newest at arena.next */
} Blk;

static Blk	arena = {&arena, &arena, 0, 0};
static uint64 blk_seq = 0;
sigjmp_buf *PG_exception_stack = NULL;
ErrorContextCallback *error_context_stack = NULL;
MemoryContext CurrentMemoryContext = NULL;
sigjmp_buf	fuzz_jmp;
int			fuzz_errors = 0;

static void *
blk_alloc(size_t size)
{
	Blk		   *b = malloc(sizeof(Blk) + size);

	if (b == NULL)
		abort();
	b->size = size;
	b->seq = ++blk_seq;
	b->next = arena.next;
	b->prev = &arena;
	arena.next->prev = b;
	arena.next = b;
	return b + 1;
}

void
fuzz_reset(void)
{
	while (arena.next != &arena)
	{
		Blk		   *b = arena.next;

		arena.next = b->next;
		free(b);
	}
	arena.prev = &arena;
	PG_exception_stack = NULL;
	error_context_stack = NULL;
}

/*
 * fuzz_mark/fuzz_release: free what was allocated after a mark, like
 * resetting the scan's per-row memory context (blocks stay in allocation
 * order: pfree unlinks, repalloc makes a new block).
 */
uint64
fuzz_mark(void)
{
	return blk_seq;
}

void
fuzz_release(uint64 mark)
{
	while (arena.next != &arena && arena.next->seq > mark)
	{
		Blk		   *b = arena.next;

		arena.next = b->next;
		b->next->prev = &arena;
		free(b);
	}
}

void *palloc(Size size) { return blk_alloc(size); }
void *palloc0(Size size) { return memset(blk_alloc(size), 0, size); }
void *palloc_extended(Size size, int flags) { return (flags & MCXT_ALLOC_ZERO) ? palloc0(size) : palloc(size); }
void *MemoryContextAlloc(MemoryContext c, Size size) { return palloc(size); }
void *MemoryContextAllocZero(MemoryContext c, Size size) { return palloc0(size); }
void *
MemoryContextAllocExtended(MemoryContext c, Size size, int flags)
{
	return palloc_extended(size, flags);
}

void
pfree(void *p)
{
	Blk		   *b = ((Blk *) p) - 1;

	b->prev->next = b->next;
	b->next->prev = b->prev;
	free(b);
}

void *
repalloc(void *p, Size size)
{
	Blk		   *b = ((Blk *) p) - 1;
	void	   *n = blk_alloc(size);

	memcpy(n, p, Min(b->size, size));
	pfree(p);
	return n;
}

char *
pstrdup(const char *s)
{
	size_t		n = strlen(s) + 1;

	return memcpy(palloc(n), s, n);
}

char *
pnstrdup(const char *s, Size len)
{
	char	   *r;

	len = strnlen(s, len);
	r = palloc(len + 1);
	memcpy(r, s, len);
	r[len] = '\0';
	return r;
}

char *
psprintf(const char *fmt,...)
{
	va_list		ap;
	int			n;
	char	   *out;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	out = palloc(n + 1);
	va_start(ap, fmt);
	vsnprintf(out, n + 1, fmt, ap);
	va_end(ap);
	return out;
}

/* StringInfo */
void
initStringInfo(StringInfo s)
{
	s->maxlen = 1024;
	s->data = palloc(s->maxlen);
	resetStringInfo(s);
}

void
resetStringInfo(StringInfo s)
{
	s->data[0] = '\0';
	s->len = 0;
	s->cursor = 0;
}

void
enlargeStringInfo(StringInfo s, int needed)
{
	int			want = s->len + needed + 1;

	if (want <= s->maxlen)
		return;
	while (s->maxlen < want)
		s->maxlen *= 2;
	s->data = repalloc(s->data, s->maxlen);
}

void
appendBinaryStringInfo(StringInfo s, const char *data, int n)
{
	enlargeStringInfo(s, n);
	memcpy(s->data + s->len, data, n);
	s->len += n;
	s->data[s->len] = '\0';
}

void appendStringInfoString(StringInfo s, const char *t) { appendBinaryStringInfo(s, t, strlen(t)); }
void appendStringInfoChar(StringInfo s, char c) { appendBinaryStringInfo(s, &c, 1); }

void
appendStringInfoSpaces(StringInfo s, int count)
{
	enlargeStringInfo(s, count);
	memset(s->data + s->len, ' ', count);
	s->len += count;
	s->data[s->len] = '\0';
}

void
appendStringInfo(StringInfo s, const char *fmt,...)
{
	va_list		ap;
	int			n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	enlargeStringInfo(s, n);
	va_start(ap, fmt);
	vsnprintf(s->data + s->len, n + 1, fmt, ap);
	va_end(ap);
	s->len += n;
}

/* elog/ereport: every ERROR unwinds to the innermost PG_TRY or the harness */
bool errstart(int elevel, const char *domain) { return elevel >= ERROR; }
bool errstart_cold(int elevel, const char *domain) { return errstart(elevel, domain); }
int errcode(int sqlerrcode) { return 0; }
int errmsg(const char *fmt,...) { return 0; }
int errmsg_internal(const char *fmt,...) { return 0; }
int errdetail(const char *fmt,...) { return 0; }
int errdetail_internal(const char *fmt,...) { return 0; }
int errhint(const char *fmt,...) { return 0; }

void
pg_re_throw(void)
{
	if (PG_exception_stack)
		siglongjmp(*PG_exception_stack, 1);
	siglongjmp(fuzz_jmp, 1);
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	fuzz_errors++;
	pg_re_throw();
}

void
ExceptionalCondition(const char *c, const char *t, const char *f, int l)
{
	abort();
}

/*
 * The database encoding, as EwPrintableMessage asks for it: UTF8 or, as a
 * target chooses, SQL_ASCII.  pg_encoding_mbcliplen is PostgreSQL's
 * (mbutils.c) for UTF8, with pg_utf_mblen's lengths: the longest prefix
 * of at most limit bytes that ends at a character boundary.
 */
int			fuzz_encoding = PG_UTF8;

int
GetDatabaseEncoding(void)
{
	return fuzz_encoding;
}

int
pg_encoding_mbcliplen(int encoding, const char *mbstr, int len, int limit)
{
	int			clen = 0;

	if (encoding != PG_UTF8)
		abort();
	while (len > 0 && *mbstr)
	{
		unsigned char c = (unsigned char) *mbstr;
		int			l = (c & 0x80) == 0 ? 1 : (c & 0xe0) == 0xc0 ? 2 :
			(c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 1;

		if (clen + l > limit)
			break;
		clen += l;
		if (clen == limit)
			break;
		len -= l;
		mbstr += l;
	}
	return clen;
}

int
varstr_levenshtein(const char *source, int slen, const char *target, int tlen,
				   int ins_c, int del_c, int sub_c, bool trusted)
{
	return abs(slen - tlen);
}

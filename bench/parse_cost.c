/*
 * bench/parse_cost.c - CPU time of jsonfast.c's parse of one answer, with
 * and without JSON-RPC's keys to leave out (jsonrpc.c's answer_skip, read
 * from SKIP_FILE: one key per line).  Built and run by bench/parse_cost;
 * jsonfast.c is linked as it is, the backend's error functions are stubs
 * that abort (the parse of a well-formed answer reaches none).
 *
 *   parse_cost ANSWER_FILE SKIP_FILE ITERATIONS
 */
#include "postgres.h"

#include <time.h>
#include <jansson.h>

extern json_t *EwJsonFastLoad(const char *body, size_t len, const char *const *skip);

bool
errstart(int elevel, const char *domain)
{
	abort();
}

bool
errstart_cold(int elevel, const char *domain)
{
	abort();
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	abort();
}

int
errmsg_internal(const char *fmt,...)
{
	return 0;
}

static char *
slurp(const char *path, size_t *len)
{
	FILE	   *f = fopen(path, "rb");
	char	   *buf;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0)
	{
		perror(path);
		exit(2);
	}
	*len = ftell(f);
	rewind(f);
	buf = malloc(*len + 1);
	if (fread(buf, 1, *len, f) != *len)
	{
		perror(path);
		exit(2);
	}
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* The fastest of five rounds of iters parses, in microseconds per parse. */
static double
parse_us(const char *body, size_t len, const char *const *skip, int iters)
{
	double		best = -1;
	int			round;

	for (round = 0; round < 5; round++)
	{
		struct timespec t0,
					t1;
		double		us;
		int			i;

		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
		for (i = 0; i < iters; i++)
		{
			json_t	   *j = EwJsonFastLoad(body, len, skip);

			if (j == NULL)
			{
				fprintf(stderr, "parse_cost: the answer is outside jsonfast.c's subset\n");
				exit(1);
			}
			json_decref(j);
		}
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
		us = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / iters / 1e3;
		if (best < 0 || us < best)
			best = us;
	}
	return best;
}

int
main(int argc, char **argv)
{
	size_t		len,
				slen;
	char	   *body;
	char	   *keys;
	const char *skip[65];
	int			n = 0;
	char	   *p;
	int			iters;

	if (argc != 4)
	{
		fprintf(stderr, "usage: parse_cost ANSWER_FILE SKIP_FILE ITERATIONS\n");
		return 2;
	}
	body = slurp(argv[1], &len);
	keys = slurp(argv[2], &slen);
	iters = atoi(argv[3]);
	for (p = strtok(keys, "\n"); p != NULL && n < 64; p = strtok(NULL, "\n"))
		skip[n++] = p;
	skip[n] = NULL;
	printf("%zu bytes, %d keys to leave out\n", len, n);
	printf("without the keys' list: %8.1f us per parse\n", parse_us(body, len, NULL, iters));
	printf("with it:                %8.1f us per parse\n", parse_us(body, len, skip, iters));
	return 0;
}

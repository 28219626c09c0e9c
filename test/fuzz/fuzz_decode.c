/*
 * fuzz_decode.c - libFuzzer target over the wrapper's decoding and option
 * parsing: decode.c (EwParseJson with jansson, EwJsonExcerpt,
 * EwJsonGetUint64, EwParseUint64, EwHexToDecimal, EwWeiToEth) and
 * option.c's value checks (check_endpoint, check_header_lines,
 * parse_int_option), with the backend replaced by shim.c.
 *
 * The first input byte picks the target (mod 6); the rest is its input.
 * An ERROR is an expected outcome; a crash or sanitizer report is a bug.
 */
#include "option.c"				/* its static checks are the targets */

#include <setjmp.h>

extern sigjmp_buf fuzz_jmp;
extern void fuzz_reset(void);

char *
defGetString(DefElem *def)
{
	return strVal(def->arg);
}

static void
decode_value(json_t *v)
{
	uint64		u;
	bool		ok;

	(void) EwJsonGetUint64(v, &u);
	if (json_is_string(v))
	{
		char	   *dec = EwHexToDecimal(json_string_value(v), &ok);

		(void) EwParseUint64(json_string_value(v), &u);
		if (ok)
			(void) EwWeiToEth(dec);
	}
}

/* every member of every block and transaction object, as the scan sees them */
static void
walk_answer(json_t *root)
{
	json_t	   *blocks = json_object_get(json_object_get(root, "data"), "blocks");
	size_t		i,
				k;
	json_t	   *b,
			   *t,
			   *v;
	const char *key;

	(void) EwJsonExcerpt(root);
	json_array_foreach(blocks, i, b)
	{
		json_object_foreach(b, key, v)
		{
			decode_value(v);
			if (json_is_object(v))
				decode_value(json_object_get(v, "address"));
		}
		json_array_foreach(json_object_get(b, "transactions"), k, t)
		{
			json_object_foreach(t, key, v)
				decode_value(v);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool inited = false;
	char	   *s;
	int			target;

	if (!inited)
	{
		EwJsonInit();
		inited = true;
	}
	if (size < 1)
		return 0;
	target = data[0] % 6;
	s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';

	if (sigsetjmp(fuzz_jmp, 0) == 0)
	{
		switch (target)
		{
			case 0:
				{
					json_error_t err;
					json_t	   *root = EwParseJson(NULL, (const char *) data + 1, size - 1, &err);

					if (root)
						walk_answer(root);
					break;
				}
			case 1:
				{
					bool		ok;
					char	   *dec = EwHexToDecimal(s, &ok);

					if (ok)
						(void) EwWeiToEth(dec);
					break;
				}
			case 2:
				{
					uint64		u;

					(void) EwParseUint64(s, &u);
					break;
				}
			case 3:
				check_endpoint(s);
				break;
			case 4:
				check_header_lines(s);
				break;
			case 5:
				{
					String		str = {.type = T_String, .sval = s};
					DefElem		def = {.type = T_DefElem, .defname = "x", .arg = (Node *) &str};
					const EwOption *opt;

					for (opt = ew_options; opt->name; opt++)
						if (opt->is_int)
							(void) parse_int_option(&def, opt);
					break;
				}
		}
	}
	fuzz_reset();
	free(s);
	return 0;
}

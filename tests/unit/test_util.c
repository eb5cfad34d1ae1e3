/*
 * test_util.c - unit tests for util.c (bounded copies, case folding,
 * strict number parsing, saturating arithmetic), diag.c (collecting,
 * formatting, printing, DIAG_MAX and DIAG_MSG_MAX bounds) and stage.c
 * (stage/action names, terminal actions, where an action may be used).
 * Expected values come from the contracts in util.h, diag.h and stage.h,
 * from DESIGN.md §3/§4 and from hand arithmetic on INT64_MIN/MAX, never
 * from the code under test. Every copy is checked against a canary past
 * the size it was given.
 * Threads: none. Memory: every diag is freed (ASan checks).
 */
#include "testutil.h"

#include <limits.h>

#include "diag.h"
#include "stage.h"
#include "util.h"

#define CANARY	'\xa5'

#define WANT_INT(row, what, got, want) do {				\
	long long g_ = (long long)(got), w_ = (long long)(want);	\
	if (g_ != w_)							\
		fail_msg("%s: %s: got %lld, want %lld", (row), (what),	\
		    g_, w_);						\
} while (0)

#define WANT_STR(row, what, got, want) do {				\
	const char *g_ = (got), *w_ = (want);				\
	if (strcmp(g_, w_) != 0)					\
		fail_msg("%s: %s: got \"%s\", want \"%s\"", (row),	\
		    (what), g_, w_);					\
} while (0)

/* Fails when any byte of buf[from..to) is not the canary. */
static void
want_canary(const char *row, const char *buf, size_t from, size_t to)
{
	size_t i;

	for (i = from; i < to; i++)
		if (buf[i] != CANARY)
			fail_msg("%s: byte %zu past the buffer was written "
			    "(0x%02x)", row, i, (unsigned char)buf[i]);
}

/* --- str_copy / str_lower at every small size ---------------------- */

struct copy_case {
	const char	*src;
	size_t		srclen;
	size_t		dstlen;
	int		ret;		/* 1: truncated */
	const char	*want;		/* NULL: dst must be untouched */
};

/*
 * util.h: at most dstlen-1 bytes, always NUL-terminated, 1 when src had
 * to be cut. With dstlen 0 nothing can be written at all.
 */
static const struct copy_case copy_cases[] = {
	{ "abc", 3, 0, 1, NULL },
	{ "abc", 3, 1, 1, "" },
	{ "abc", 3, 2, 1, "a" },
	{ "abc", 3, 3, 1, "ab" },
	{ "abc", 3, 4, 0, "abc" },
	{ "abc", 3, 5, 0, "abc" },
	{ "", 0, 0, 0, NULL },
	{ "", 0, 1, 0, "" },
	{ "", 0, 4, 0, "" },
	/* srclen counts: no NUL needed, bytes after srclen ignored */
	{ "abcdef", 3, 8, 0, "abc" },
	{ "abcdef", 3, 3, 1, "ab" },
	{ "abcdef", 0, 8, 0, "" },
};

static void
test_str_copy(void **state)
{
	char dst[16], row[64];
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < NELEM(copy_cases); i++) {
		const struct copy_case *c = &copy_cases[i];

		snprintf(row, sizeof(row), "str_copy(\"%s\", %zu, dstlen %zu)",
		    c->src, c->srclen, c->dstlen);
		memset(dst, CANARY, sizeof(dst));
		ret = str_copy(dst, c->dstlen, c->src, c->srclen);
		WANT_INT(row, "return", ret, c->ret);
		if (c->want == NULL) {
			want_canary(row, dst, 0, sizeof(dst));
			continue;
		}
		if (memchr(dst, '\0', c->dstlen) == NULL)
			fail_msg("%s: no NUL within dstlen", row);
		WANT_STR(row, "dst", dst, c->want);
		want_canary(row, dst, c->dstlen, sizeof(dst));
	}
}

struct lower_case {
	const char	*src;
	size_t		srclen;
	size_t		dstlen;
	int		ret;
	const char	*want;
};

static const struct lower_case lower_cases[] = {
	{ "AbC", 3, 0, 1, NULL },
	{ "AbC", 3, 1, 1, "" },
	{ "AbC", 3, 2, 1, "a" },
	{ "AbC", 3, 3, 1, "ab" },
	{ "AbC", 3, 4, 0, "abc" },
	{ "AbC", 3, 9, 0, "abc" },
	/* only A-Z fold: '@' and '[' sit right next to them in ASCII */
	{ "@AZ[`az{", 8, 9, 0, "@az[`az{" },
	/* non-ASCII bytes are left alone (no locale) */
	{ "\xc3\x89T\xc9", 4, 9, 0, "\xc3\x89t\xc9" },
	{ "MiXeD.Example", 5, 9, 0, "mixed" },
	{ "", 0, 1, 0, "" },
};

static void
test_str_lower(void **state)
{
	char dst[16], row[64];
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < NELEM(lower_cases); i++) {
		const struct lower_case *c = &lower_cases[i];

		snprintf(row, sizeof(row), "str_lower(case %zu, dstlen %zu)",
		    i, c->dstlen);
		memset(dst, CANARY, sizeof(dst));
		ret = str_lower(dst, c->dstlen, c->src, c->srclen);
		WANT_INT(row, "return", ret, c->ret);
		if (c->want == NULL) {
			want_canary(row, dst, 0, sizeof(dst));
			continue;
		}
		if (memchr(dst, '\0', c->dstlen) == NULL)
			fail_msg("%s: no NUL within dstlen", row);
		WANT_STR(row, "dst", dst, c->want);
		want_canary(row, dst, c->dstlen, sizeof(dst));
	}
}

static const struct {
	const char	*a;
	size_t		alen;
	const char	*b;
	size_t		blen;
	int		want;
} ieq_cases[] = {
	{ "", 0, "", 0, 1 },
	{ "abc", 3, "abc", 3, 1 },
	{ "ABC", 3, "abc", 3, 1 },
	{ "Example.COM", 11, "example.com", 11, 1 },
	{ "abc", 3, "abd", 3, 0 },
	{ "abc", 3, "ab", 2, 0 },
	{ "ab", 2, "abc", 3, 0 },
	/* the lengths decide, not the bytes beyond them */
	{ "abc", 3, "abc", 2, 0 },
	{ "abc", 2, "abc", 3, 0 },
	/* counted: "abX" and "abY" are equal over 2 bytes */
	{ "abX", 2, "ABY", 2, 1 },
	/* '@' (0x40) and '`' (0x60) differ by the case bit, not letters */
	{ "@", 1, "`", 1, 0 },
	{ "[", 1, "{", 1, 0 },
	/* no folding of non-ASCII bytes */
	{ "\xc9", 1, "\xe9", 1, 0 },
	{ "a\0b", 3, "A\0B", 3, 1 },
	{ "a\0b", 3, "a\0c", 3, 0 },
};

static void
test_str_ieq(void **state)
{
	char row[64];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(ieq_cases); i++) {
		snprintf(row, sizeof(row), "str_ieq case %zu (\"%s\", \"%s\")",
		    i, ieq_cases[i].a, ieq_cases[i].b);
		WANT_INT(row, "result", str_ieq(ieq_cases[i].a,
		    ieq_cases[i].alen, ieq_cases[i].b, ieq_cases[i].blen),
		    ieq_cases[i].want);
	}
}

/* --- str_to_ll ---------------------------------------------------- */

#define UNTOUCHED	(-4242LL)

static const struct {
	const char	*s;
	long long	min, max;
	int		ret;
	long long	want;		/* *out; UNTOUCHED on -1 */
} ll_cases[] = {
	{ "0", 0, 10, 0, 0 },
	{ "7", 0, 10, 0, 7 },
	{ "10", 0, 10, 0, 10 },			/* max is inclusive */
	{ "11", 0, 10, -1, UNTOUCHED },
	{ "1", 1, 65535, 0, 1 },		/* min is inclusive */
	{ "0", 1, 65535, -1, UNTOUCHED },
	{ "65535", 1, 65535, 0, 65535 },
	{ "65536", 1, 65535, -1, UNTOUCHED },
	{ "007", 0, 10, 0, 7 },			/* decimal, not octal */
	{ "", 0, 10, -1, UNTOUCHED },
	{ "+1", 0, 10, -1, UNTOUCHED },
	{ "+1", -10, 10, -1, UNTOUCHED },
	{ " 1", 0, 10, -1, UNTOUCHED },
	{ "\t1", 0, 10, -1, UNTOUCHED },
	{ "1 ", 0, 10, -1, UNTOUCHED },
	{ "1\n", 0, 10, -1, UNTOUCHED },
	{ "1x", 0, 10, -1, UNTOUCHED },
	{ "0x10", 0, 100, -1, UNTOUCHED },
	{ "1e3", 0, 10000, -1, UNTOUCHED },
	{ "1.0", 0, 10, -1, UNTOUCHED },
	{ "x", 0, 10, -1, UNTOUCHED },
	/* a sign only where min < 0 */
	{ "-1", 0, 10, -1, UNTOUCHED },
	{ "-0", 0, 10, -1, UNTOUCHED },
	{ "-0", -1, 10, 0, 0 },
	{ "-1", -1, 10, 0, -1 },
	{ "-2", -1, 10, -1, UNTOUCHED },
	{ "-", -10, 10, -1, UNTOUCHED },
	{ "--1", -10, 10, -1, UNTOUCHED },
	{ "-+1", -10, 10, -1, UNTOUCHED },
	{ "- 1", -10, 10, -1, UNTOUCHED },
	{ "-x", -10, 10, -1, UNTOUCHED },
	/* the long long edges: 2^63 - 1 and -2^63 */
	{ "9223372036854775807", LLONG_MIN, LLONG_MAX, 0, LLONG_MAX },
	{ "9223372036854775808", LLONG_MIN, LLONG_MAX, -1, UNTOUCHED },
	{ "99999999999999999999", 0, LLONG_MAX, -1, UNTOUCHED },
	{ "-9223372036854775808", LLONG_MIN, LLONG_MAX, 0, LLONG_MIN },
	{ "-9223372036854775809", LLONG_MIN, LLONG_MAX, -1, UNTOUCHED },
	{ "9223372036854775807", 0, LLONG_MAX - 1, -1, UNTOUCHED },
	{ "-9223372036854775808", LLONG_MIN + 1, 0, -1, UNTOUCHED },
};

static void
test_str_to_ll(void **state)
{
	char row[96];
	long long out;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < NELEM(ll_cases); i++) {
		snprintf(row, sizeof(row), "str_to_ll(\"%s\", %lld, %lld)",
		    ll_cases[i].s, ll_cases[i].min, ll_cases[i].max);
		out = UNTOUCHED;
		ret = str_to_ll(ll_cases[i].s, ll_cases[i].min,
		    ll_cases[i].max, &out);
		WANT_INT(row, "return", ret, ll_cases[i].ret);
		WANT_INT(row, "*out", out, ll_cases[i].want);
	}
}

/* --- saturating arithmetic ---------------------------------------- */

#define P32	(INT64_C(1) << 32)
#define P31	(INT64_C(1) << 31)

static const struct {
	const char	*name;
	int64_t		a, b, mul, add;
} sat_cases[] = {
	{ "small", 3, 4, 12, 7 },
	{ "signs", -3, 4, -12, 1 },
	{ "zero by min", 0, INT64_MIN, 0, INT64_MIN },
	{ "max by 1", INT64_MAX, 1, INT64_MAX, INT64_MAX },
	{ "min by 1", INT64_MIN, 1, INT64_MIN, INT64_MIN + 1 },
	{ "max by 2", INT64_MAX, 2, INT64_MAX, INT64_MAX },
	{ "min by 2", INT64_MIN, 2, INT64_MIN, INT64_MIN + 2 },
	{ "max by -1", INT64_MAX, -1, -INT64_MAX, INT64_MAX - 1 },
	/* -(-2^63) = 2^63 does not fit */
	{ "min by -1", INT64_MIN, -1, INT64_MAX, INT64_MIN },
	{ "-1 by min", -1, INT64_MIN, INT64_MAX, INT64_MIN },
	{ "max by -2", INT64_MAX, -2, INT64_MIN, INT64_MAX - 2 },
	{ "min by min", INT64_MIN, INT64_MIN, INT64_MAX, INT64_MIN },
	{ "max by max", INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX },
	{ "max by min", INT64_MAX, INT64_MIN, INT64_MIN, -1 },
	/* 2^32 * 2^31 = 2^63: one past max; -2^63 fits exactly */
	{ "2^32 by 2^31", P32, P31, INT64_MAX, P32 + P31 },
	{ "2^32 by -2^31", P32, -P31, INT64_MIN, P32 - P31 },
	{ "max-1 by 1", INT64_MAX - 1, 1, INT64_MAX - 1, INT64_MAX },
	{ "min+1 by -1", INT64_MIN + 1, -1, INT64_MAX, INT64_MIN },
	{ "1 by -1", 1, -1, -1, 0 },
};

static void
test_i64_sat(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(sat_cases); i++) {
		WANT_INT(sat_cases[i].name, "i64_mul_sat",
		    i64_mul_sat(sat_cases[i].a, sat_cases[i].b),
		    sat_cases[i].mul);
		WANT_INT(sat_cases[i].name, "i64_mul_sat swapped",
		    i64_mul_sat(sat_cases[i].b, sat_cases[i].a),
		    sat_cases[i].mul);
		WANT_INT(sat_cases[i].name, "i64_add_sat",
		    i64_add_sat(sat_cases[i].a, sat_cases[i].b),
		    sat_cases[i].add);
		WANT_INT(sat_cases[i].name, "i64_add_sat swapped",
		    i64_add_sat(sat_cases[i].b, sat_cases[i].a),
		    sat_cases[i].add);
	}
}

/* --- diag ---------------------------------------------------------- */

/*
 * What a diag test owns lives here, so that the teardown frees it even
 * when a check fails half-way (cmocka jumps out of the test).
 */
static struct {
	struct diag	d;
	char		*text;		/* open_memstream output */
} T;

static int
diag_teardown(void **state)
{
	(void)state;
	diag_fini(&T.d);
	free(T.text);
	T.text = NULL;
	return 0;
}

#define DIAG_BUF	(DIAG_FILE_MAX + DIAG_MSG_MAX + 32)

/*
 * diag.h: "FILE:LINE: message" and "FILE:LINE: warning: message". A part
 * that is not known (line 0, file NULL or "") is left out; with no file
 * the program's name stands in, as Postfix's "postfix: " does.
 */
static const struct {
	const char	*name;
	enum diag_sev	sev;
	const char	*file;
	int		line;
	const char	*msg;
	const char	*want;
} fmt_cases[] = {
	{ "error file line", DIAG_ERROR, "rules/a.rules", 12,
	    "rule: unknown key 'x'",
	    "rules/a.rules:12: rule: unknown key 'x'" },
	{ "warning file line", DIAG_WARNING, "rules/a.rules", 7,
	    "reply: custom text",
	    "rules/a.rules:7: warning: reply: custom text" },
	{ "error file no line", DIAG_ERROR, "etc/warden.conf", 0,
	    "cannot read", "etc/warden.conf: cannot read" },
	{ "warning file no line", DIAG_WARNING, "etc/warden.conf", 0,
	    "empty", "etc/warden.conf: warning: empty" },
	{ "error no file", DIAG_ERROR, NULL, 0, "no rules",
	    "warden: no rules" },
	{ "warning no file", DIAG_WARNING, NULL, 0, "no rules",
	    "warden: warning: no rules" },
	{ "empty file name", DIAG_ERROR, "", 0, "x", "warden: x" },
	{ "line but no file", DIAG_ERROR, NULL, 5, "x", "warden: x" },
};

static void
test_diag_format(void **state)
{
	char buf[DIAG_BUF];
	size_t i;

	(void)state;
	diag_init(&T.d);
	for (i = 0; i < NELEM(fmt_cases); i++)
		diag_add(&T.d, fmt_cases[i].sev, fmt_cases[i].file,
		    fmt_cases[i].line, "%s", fmt_cases[i].msg);
	WANT_INT("after adds", "n", T.d.n, NELEM(fmt_cases));
	WANT_INT("after adds", "errors", T.d.errors, 5);
	WANT_INT("after adds", "warnings", T.d.warnings, 3);
	WANT_INT("after adds", "dropped", T.d.dropped, 0);
	for (i = 0; i < NELEM(fmt_cases); i++) {
		WANT_INT(fmt_cases[i].name, "sev", T.d.v[i].sev,
		    fmt_cases[i].sev);
		WANT_INT(fmt_cases[i].name, "line", T.d.v[i].line,
		    fmt_cases[i].line);
		WANT_STR(fmt_cases[i].name, "diag_format",
		    diag_format(&T.d, i, buf, sizeof(buf)), fmt_cases[i].want);
	}
	diag_fini(&T.d);
	WANT_INT("after fini", "n", T.d.n, 0);
	WANT_INT("after fini", "errors", T.d.errors, 0);
}

/* The printf-like arguments are formatted, not taken literally. */
static void
test_diag_printf(void **state)
{
	char buf[DIAG_BUF];

	(void)state;
	diag_init(&T.d);
	diag_err(&T.d, "f", 3, "port %d not in %d..%d (%s)", 70000, 1, 65535,
	    "listen");
	diag_warn(&T.d, "f", 4, "100%% sure");
	WANT_STR("printf", "entry 0", diag_format(&T.d, 0, buf, sizeof(buf)),
	    "f:3: port 70000 not in 1..65535 (listen)");
	WANT_STR("percent", "entry 1", diag_format(&T.d, 1, buf, sizeof(buf)),
	    "f:4: warning: 100% sure");
	diag_fini(&T.d);
}

static void
test_diag_print(void **state)
{
	size_t len = 0;
	FILE *f;

	(void)state;
	diag_init(&T.d);
	diag_err(&T.d, "a.rules", 1, "first");
	diag_warn(&T.d, "a.rules", 2, "second");
	diag_err(&T.d, NULL, 0, "third");
	f = open_memstream(&T.text, &len);
	assert_non_null(f);
	diag_print(&T.d, f);
	assert_int_equal(fclose(f), 0);
	WANT_STR("print in order", "text", T.text,
	    "a.rules:1: first\n"
	    "a.rules:2: warning: second\n"
	    "warden: third\n");
	free(T.text);
	T.text = NULL;
	diag_fini(&T.d);
}

/* Past DIAG_MAX the rest are only counted, and print says so. */
static void
test_diag_print_dropped(void **state)
{
	size_t len = 0, i;
	FILE *f;

	(void)state;
	diag_init(&T.d);
	for (i = 1; i < DIAG_MAX + 3; i++)
		diag_err(&T.d, "a.rules", (int)i, "e%zu", i);
	T.text = NULL;
	f = open_memstream(&T.text, &len);
	assert_non_null(f);
	diag_print(&T.d, f);
	assert_int_equal(fclose(f), 0);
	{
		const char *tail = "a.rules:1000: e1000\n"
		    "warden: 2 more diagnostics not shown\n";
		size_t tl = strlen(tail);

		if (len < tl || strcmp(T.text + len - tl, tail) != 0)
			fail_msg("print past DIAG_MAX: got tail \"%s\", want "
			    "\"%s\"", len > 80 ? T.text + len - 80 : T.text,
			    tail);
	}
	free(T.text);
	T.text = NULL;
	diag_fini(&T.d);
}

/*
 * diag.h: "past DIAG_MAX entries it only counts". Every entry past the
 * first DIAG_MAX is dropped and counted, errors and warnings alike.
 */
static void
test_diag_max(void **state)
{
	static const size_t adds[] = { DIAG_MAX - 1, DIAG_MAX, DIAG_MAX + 1,
	    DIAG_MAX + 5, 1030, 2100 };
	char row[64], buf[DIAG_BUF], want[64];
	size_t i, k, kept;

	(void)state;
	for (k = 0; k < NELEM(adds); k++) {
		snprintf(row, sizeof(row), "%zu adds", adds[k]);
		diag_init(&T.d);
		for (i = 0; i < adds[k]; i++) {
			if (i % 2 == 0)
				diag_err(&T.d, "f", (int)i + 1, "m%zu", i);
			else
				diag_warn(&T.d, "f", (int)i + 1, "m%zu", i);
		}
		kept = adds[k] < DIAG_MAX ? adds[k] : DIAG_MAX;
		WANT_INT(row, "n (kept)", T.d.n, kept);
		WANT_INT(row, "dropped", T.d.dropped, adds[k] - kept);
		WANT_INT(row, "errors", T.d.errors, (adds[k] + 1) / 2);
		WANT_INT(row, "warnings", T.d.warnings, adds[k] / 2);
		/* the kept ones are the first ones, in order */
		snprintf(want, sizeof(want), "f:%zu: %sm%zu", kept,
		    (kept - 1) % 2 ? "warning: " : "", kept - 1);
		WANT_STR(row, "last kept", diag_format(&T.d, T.d.n < kept ?
		    T.d.n - 1 : kept - 1, buf, sizeof(buf)), want);
		diag_fini(&T.d);
	}
}

/* Messages are cut at DIAG_MSG_MAX - 1 bytes, file names likewise. */
static void
test_diag_long(void **state)
{
	char big[2000], want[2000], buf[DIAG_BUF];
	char small[40];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(big) - 1; i++)
		big[i] = (char)('a' + i % 26);
	big[sizeof(big) - 1] = '\0';
	diag_init(&T.d);
	diag_err(&T.d, "f", 1, "%s", big);
	WANT_INT("long message", "strlen(msg)", strlen(T.d.v[0].msg),
	    DIAG_MSG_MAX - 1);
	if (memcmp(T.d.v[0].msg, big, DIAG_MSG_MAX - 1) != 0)
		fail_msg("long message: the kept part is not the start");
	snprintf(want, sizeof(want), "f:1: %.*s", DIAG_MSG_MAX - 1, big);
	WANT_STR("long message", "diag_format", diag_format(&T.d, 0, buf,
	    sizeof(buf)), want);

	big[DIAG_FILE_MAX + 100] = '\0';
	diag_err(&T.d, big, 2, "m");
	WANT_INT("long file", "strlen(file)", strlen(T.d.v[1].file),
	    DIAG_FILE_MAX - 1);

	/* diag_format into a small buffer: bounded and terminated */
	for (i = 0; i < sizeof(small); i++) {
		char row[48];

		snprintf(row, sizeof(row), "diag_format len %zu", i);
		memset(small, CANARY, sizeof(small));
		diag_format(&T.d, 0, small, i);
		want_canary(row, small, i, sizeof(small));
		if (i == 0)
			continue;
		if (memchr(small, '\0', i) == NULL)
			fail_msg("%s: no NUL", row);
		/* want still holds the whole line: its first i-1 bytes */
		if (strlen(small) != i - 1 ||
		    memcmp(small, want, i - 1) != 0)
			fail_msg("%s: got \"%s\", want the first %zu bytes "
			    "of \"%.60s...\"", row, small, i - 1, want);
	}
	diag_fini(&T.d);
}

/* --- stage.c ------------------------------------------------------ */

/* DESIGN.md §4 table, in protocol order. */
static const struct {
	enum stage	s;
	const char	*name;
} stage_names[] = {
	{ STAGE_CONNECT, "connect" },
	{ STAGE_HELO, "helo" },
	{ STAGE_ENVFROM, "envfrom" },
	{ STAGE_ENVRCPT, "envrcpt" },
	{ STAGE_DATA, "data" },
	{ STAGE_HEADER, "header" },
	{ STAGE_EOM, "eom" },
	{ STAGE_UNKNOWN, "unknown" },
};

#define ALL	STAGES_ALL
#define MSG	(STAGE_BIT(STAGE_ENVFROM) | STAGE_BIT(STAGE_ENVRCPT) | \
	STAGE_BIT(STAGE_DATA) | STAGE_BIT(STAGE_HEADER) | STAGE_BIT(STAGE_EOM))

/*
 * DESIGN.md §3: terminal = accept, reject, tempfail, discard, quarantine;
 * log, tag, continue are not. discard: envfrom..eom; quarantine: flagged
 * at any message stage (engine.h), applied at eom; tag: flagged at any
 * stage of a connection that can carry a message (connect/helo tags are
 * the connection's, session.h), not at an unknown command.
 */
static const struct {
	enum action	a;
	const char	*name;
	int		terminal;
	unsigned	stages;
} action_rows[] = {
	{ ACTION_ACCEPT, "accept", 1, ALL },
	{ ACTION_CONTINUE, "continue", 0, ALL },
	{ ACTION_LOG, "log", 0, ALL },
	{ ACTION_REJECT, "reject", 1, ALL },
	{ ACTION_TEMPFAIL, "tempfail", 1, ALL },
	{ ACTION_DISCARD, "discard", 1, MSG },
	{ ACTION_QUARANTINE, "quarantine", 1, MSG },
	{ ACTION_TAG, "tag", 0, ALL & ~STAGE_BIT(STAGE_UNKNOWN) },
};

static void
test_stage_names(void **state)
{
	static const char *const bad[] = { "", "Connect", "mail", "rcpt",
	    "envfrom ", "eoh", "body", "?", "connects" };
	size_t i;

	(void)state;
	WANT_INT("table", "rows", NELEM(stage_names), STAGE_COUNT);
	WANT_INT("STAGES_ALL", "value", STAGES_ALL, 0xff);
	for (i = 0; i < NELEM(stage_names); i++) {
		WANT_STR(stage_names[i].name, "stage_name",
		    stage_name(stage_names[i].s), stage_names[i].name);
		WANT_INT(stage_names[i].name, "stage_by_name",
		    stage_by_name(stage_names[i].name), stage_names[i].s);
	}
	for (i = 0; i < NELEM(bad); i++)
		WANT_INT(bad[i], "stage_by_name", stage_by_name(bad[i]), -1);
	/* out of range: some name, never one of the real ones */
	for (i = 0; i < NELEM(stage_names); i++) {
		assert_non_null(stage_name(STAGE_COUNT));
		if (strcmp(stage_name(STAGE_COUNT), stage_names[i].name) == 0)
			fail_msg("stage_name(STAGE_COUNT) = \"%s\"",
			    stage_names[i].name);
	}
}

static void
test_action_names(void **state)
{
	static const char *const bad[] = { "", "Reject", "deny", "defer",
	    "dry-run", "dryrun", "hold", "rejects", "?" };
	size_t i;

	(void)state;
	WANT_INT("table", "rows", NELEM(action_rows), ACTION_COUNT);
	for (i = 0; i < NELEM(action_rows); i++) {
		WANT_STR(action_rows[i].name, "action_name",
		    action_name(action_rows[i].a), action_rows[i].name);
		WANT_INT(action_rows[i].name, "action_by_name",
		    action_by_name(action_rows[i].name), action_rows[i].a);
	}
	for (i = 0; i < NELEM(bad); i++)
		WANT_INT(bad[i], "action_by_name", action_by_name(bad[i]), -1);
	assert_non_null(action_name(ACTION_COUNT));
	for (i = 0; i < NELEM(action_rows); i++)
		if (strcmp(action_name(ACTION_COUNT), action_rows[i].name) == 0)
			fail_msg("action_name(ACTION_COUNT) = \"%s\"",
			    action_rows[i].name);
}

static void
test_action_terminal_stages(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(action_rows); i++) {
		WANT_INT(action_rows[i].name, "action_is_terminal",
		    action_is_terminal(action_rows[i].a),
		    action_rows[i].terminal);
		if (action_stages(action_rows[i].a) != action_rows[i].stages)
			fail_msg("%s: action_stages: got 0x%02x, want 0x%02x",
			    action_rows[i].name,
			    action_stages(action_rows[i].a),
			    action_rows[i].stages);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_str_copy),
		cmocka_unit_test(test_str_lower),
		cmocka_unit_test(test_str_ieq),
		cmocka_unit_test(test_str_to_ll),
		cmocka_unit_test(test_i64_sat),
		cmocka_unit_test_teardown(test_diag_format, diag_teardown),
		cmocka_unit_test_teardown(test_diag_printf, diag_teardown),
		cmocka_unit_test_teardown(test_diag_print, diag_teardown),
		cmocka_unit_test_teardown(test_diag_print_dropped,
		    diag_teardown),
		cmocka_unit_test_teardown(test_diag_max, diag_teardown),
		cmocka_unit_test_teardown(test_diag_long, diag_teardown),
		cmocka_unit_test(test_stage_names),
		cmocka_unit_test(test_action_names),
		cmocka_unit_test(test_action_terminal_stages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

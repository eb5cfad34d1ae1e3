/*
 * test_lcfg.c - unit tests for lcfg.c: lcfg_text for every setting type
 * and small buffers, lcfg_check_keys (count, messages, FILE:LINE, the
 * file of an @include), lcfg_parse (NUL bytes, "\x00" escapes, nesting
 * at and beyond LCFG_NEST_MAX with the line, brackets in strings and
 * comments, syntax errors with their line) and the typed getters (absent,
 * wrong type, out of range, bounds inclusive).
 * Expected values are written by hand from lcfg.h, CONVENTIONS.md §3
 * (FILE:LINE: key: message) and the libconfig grammar, never from the
 * code under test.
 * Threads: none. Memory: every config_t and diag is freed (ASan checks).
 */
#include "testutil.h"

#include <limits.h>

#include "diag.h"
#include "lcfg.h"

#define T_FILE	"t.cfg"
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

struct fx {
	config_t	cfg;
	struct diag	d;
	int		rc;
};

/*
 * The one fixture; the teardown frees it when a check failed before
 * fx_free (cmocka jumps out of the test).
 */
static struct fx F;
static int live;

static void
fx_parse(struct fx *f, const char *buf, size_t len, const char *basedir)
{
	assert_false(live);
	live = 1;
	config_init(&f->cfg);
	diag_init(&f->d);
	f->rc = lcfg_parse(&f->cfg, T_FILE, basedir, buf, len, &f->d);
}

static void
fx_free(struct fx *f)
{
	config_destroy(&f->cfg);
	diag_fini(&f->d);
	live = 0;
}

static int
teardown(void **state)
{
	(void)state;
	if (live)
		fx_free(&F);
	return 0;
}

/* The only diagnostic of f must be want (the whole formatted line). */
static void
want_one_diag(const char *row, const struct fx *f, const char *want)
{
	char buf[DIAG_FILE_MAX + DIAG_MSG_MAX + 32];

	if (f->d.n != 1)
		fail_msg("%s: got %zu diagnostics, want 1 (\"%s\")", row,
		    f->d.n, want);
	WANT_STR(row, "diagnostic", diag_format(&f->d, 0, buf, sizeof(buf)),
	    want);
}

/* --- lcfg_text ---------------------------------------------------- */

static const char text_cfg[] =
	"i = 587;\n"
	"neg = -3;\n"
	"big = 10000000000L;\n"
	"s = \"mx.example\";\n"
	"empty = \"\";\n"
	"t = true;\n"
	"f = false;\n"
	"fl = 1.5;\n"
	"arr = [587, 465];\n"
	"sarr = [\"a\", \"*.b\"];\n"
	"one = [1];\n"
	"none = [];\n"
	"g = { x = 1; y = \"z\"; };\n"
	"long = [\"/^(mail|smtp|mx)[0-9]+[.](dyn|dsl|cable|pool)[.]isp[.]"
	    "example$/\", \"x\"];\n";

/* lcfg.h: the value as written: "587", "\"x\"", "[587, 465]", "{...}". */
static const struct {
	const char	*name;
	const char	*want;
} text_cases[] = {
	{ "i", "587" },
	{ "neg", "-3" },
	{ "big", "10000000000" },
	{ "s", "\"mx.example\"" },
	{ "empty", "\"\"" },
	{ "t", "true" },
	{ "f", "false" },
	{ "fl", "1.5" },
	{ "arr", "[587, 465]" },
	{ "sarr", "[\"a\", \"*.b\"]" },
	{ "one", "[1]" },
	{ "none", "[]" },
	{ "g", "{...}" },
};

static void
test_text_types(void **state)
{
	const config_setting_t *s;
	char buf[256];
	size_t i;

	(void)state;
	fx_parse(&F, text_cfg, strlen(text_cfg), NULL);
	WANT_INT("parse", "rc", F.rc, 0);
	for (i = 0; i < NELEM(text_cases); i++) {
		s = config_lookup(&F.cfg, text_cases[i].name);
		assert_non_null(s);
		memset(buf, CANARY, sizeof(buf));
		lcfg_text(s, buf, sizeof(buf));
		WANT_STR(text_cases[i].name, "lcfg_text", buf,
		    text_cases[i].want);
	}
	fx_free(&F);
}

/*
 * A 73-byte pattern in a list (a realistic /regex/ for client_name) is
 * shown whole, both quotes included, when the buffer has room: explain
 * prints this text for the condition.
 */
static void
test_text_long_element(void **state)
{
	const config_setting_t *s;
	char buf[256];

	(void)state;
	fx_parse(&F, text_cfg, strlen(text_cfg), NULL);
	WANT_INT("parse", "rc", F.rc, 0);
	s = config_lookup(&F.cfg, "long");
	assert_non_null(s);
	lcfg_text(s, buf, sizeof(buf));
	WANT_STR("long", "lcfg_text", buf, "[\"/^(mail|smtp|mx)[0-9]+[.]"
	    "(dyn|dsl|cable|pool)[.]isp[.]example$/\", \"x\"]");
	fx_free(&F);
}

/* Every size from 0 up: a prefix, NUL-terminated, nothing written past. */
static void
test_text_small(void **state)
{
	static const char *const names[] = { "i", "s", "arr", "sarr", "g",
	    "t" };
	const config_setting_t *s;
	char buf[64], full[64], row[48];
	size_t i, k, j, want;

	(void)state;
	fx_parse(&F, text_cfg, strlen(text_cfg), NULL);
	WANT_INT("parse", "rc", F.rc, 0);
	for (k = 0; k < NELEM(names); k++) {
		s = config_lookup(&F.cfg, names[k]);
		assert_non_null(s);
		for (i = 0; i < NELEM(text_cases); i++)
			if (strcmp(text_cases[i].name, names[k]) == 0)
				break;
		assert_true(i < NELEM(text_cases));
		snprintf(full, sizeof(full), "%s", text_cases[i].want);
		for (i = 0; i <= strlen(full) + 2; i++) {
			snprintf(row, sizeof(row), "%s len %zu", names[k], i);
			memset(buf, CANARY, sizeof(buf));
			lcfg_text(s, buf, i);
			for (j = i; j < sizeof(buf); j++)
				if (buf[j] != CANARY)
					fail_msg("%s: byte %zu written", row,
					    j);
			if (i == 0)
				continue;
			want = strlen(full) < i - 1 ? strlen(full) : i - 1;
			if (memchr(buf, '\0', i) == NULL)
				fail_msg("%s: no NUL", row);
			WANT_INT(row, "strlen", strlen(buf), want);
			if (memcmp(buf, full, want) != 0)
				fail_msg("%s: got \"%s\", want a prefix of "
				    "\"%s\"", row, buf, full);
		}
	}
	fx_free(&F);
}

static void
test_type_names(void **state)
{
	static const char cfg[] =
	    "i = 1; b = 10000000000L; f = 1.0; s = \"x\"; t = true;\n"
	    "a = [1]; l = (1, \"x\"); g = { };\n";
	static const struct {
		const char *name, *want;
	} rows[] = {
		{ "i", "an integer" }, { "b", "an integer" },
		{ "f", "a float" }, { "s", "a string" }, { "t", "a boolean" },
		{ "a", "an array" }, { "l", "a list" }, { "g", "a group" },
	};
	const config_setting_t *s;
	size_t i;

	(void)state;
	fx_parse(&F, cfg, strlen(cfg), NULL);
	WANT_INT("parse", "rc", F.rc, 0);
	for (i = 0; i < NELEM(rows); i++) {
		s = config_lookup(&F.cfg, rows[i].name);
		assert_non_null(s);
		WANT_STR(rows[i].name, "lcfg_type_name", lcfg_type_name(s),
		    rows[i].want);
		WANT_INT(rows[i].name, "lcfg_line", lcfg_line(s),
		    i < 5 ? 1 : 2);
		WANT_STR(rows[i].name, "lcfg_file", lcfg_file(s, "dflt"),
		    "dflt");
	}
	WANT_INT("NULL", "lcfg_line", lcfg_line(NULL), 0);
	WANT_STR("NULL", "lcfg_file", lcfg_file(NULL, "dflt"), "dflt");
	fx_free(&F);
}

/* --- lcfg_check_keys ---------------------------------------------- */

static const char *const rule_keys[] = { "name", "stage", "action", NULL };

static const char keys_cfg[] =
	"bad = {\n"			/* 1 */
	"  name = \"a\";\n"		/* 2 */
	"  stage = \"envfrom\";\n"	/* 3 */
	"  bogus = 1;\n"		/* 4 */
	"  actoin = \"reject\";\n"	/* 5 */
	"  action = \"reject\";\n"	/* 6 */
	"  Name = \"b\";\n"		/* 7: names are case-sensitive */
	"};\n"
	"good = { name = \"a\"; action = \"log\"; };\n"	/* 9 */
	"empty = { };\n"				/* 10 */
	"nested = { x = { y = 1; }; name = \"n\"; };\n";	/* 11 */

static const struct {
	const char	*group;
	int		ret;
	const char	*msgs[4];
} keys_cases[] = {
	{ "bad", 3, { T_FILE ":4: rule: unknown key 'bogus'",
	    T_FILE ":5: rule: unknown key 'actoin'",
	    T_FILE ":7: rule: unknown key 'Name'" } },
	{ "good", 0, { NULL } },
	{ "empty", 0, { NULL } },
	/* only the group's own members; the inner y is not looked at */
	{ "nested", 1, { T_FILE ":11: rule: unknown key 'x'" } },
};

static void
test_check_keys(void **state)
{
	char buf[DIAG_FILE_MAX + DIAG_MSG_MAX + 32];
	const config_setting_t *g;
	size_t i, j, n;
	int ret;

	(void)state;
	for (i = 0; i < NELEM(keys_cases); i++) {
		fx_parse(&F, keys_cfg, strlen(keys_cfg), NULL);
		WANT_INT("parse", "rc", F.rc, 0);
		g = config_lookup(&F.cfg, keys_cases[i].group);
		assert_non_null(g);
		ret = lcfg_check_keys(g, rule_keys, T_FILE, "rule", &F.d);
		WANT_INT(keys_cases[i].group, "return", ret,
		    keys_cases[i].ret);
		for (n = 0; n < NELEM(keys_cases[i].msgs) &&
		    keys_cases[i].msgs[n] != NULL; n++)
			;
		WANT_INT(keys_cases[i].group, "diagnostics", F.d.n, n);
		WANT_INT(keys_cases[i].group, "errors", F.d.errors, n);
		for (j = 0; j < n && j < F.d.n; j++)
			WANT_STR(keys_cases[i].group, "message",
			    diag_format(&F.d, j, buf, sizeof(buf)),
			    keys_cases[i].msgs[j]);
		fx_free(&F);
	}
}

/* A key that came from an @include file is reported at that file. */
static void
test_check_keys_include(void **state)
{
	static const char cfg[] =
	    "g = {\n"
	    "  name = \"a\";\n"
	    "  @include \"inc.cfg\"\n"
	    "};\n";
	char dir[256], want[512], buf[DIAG_FILE_MAX + DIAG_MSG_MAX + 32];
	const config_setting_t *g;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "inc.cfg", "stage = \"helo\";\n\nwrong = 2;\n",
	    (size_t)-1);
	fx_parse(&F, cfg, strlen(cfg), dir);
	tu_rmtree(dir);
	WANT_INT("parse", "rc", F.rc, 0);
	g = config_lookup(&F.cfg, "g");
	assert_non_null(g);
	WANT_INT("include", "return", lcfg_check_keys(g, rule_keys, T_FILE,
	    "rule", &F.d), 1);
	WANT_INT("include", "diagnostics", F.d.n, 1);
	/* libconfig names an included file as the @include wrote it */
	snprintf(want, sizeof(want), "inc.cfg:3: rule: unknown key "
	    "'wrong'");
	WANT_STR("include", "message", diag_format(&F.d, 0, buf,
	    sizeof(buf)), want);
	fx_free(&F);
}

/* --- lcfg_parse --------------------------------------------------- */

/*
 * "x = 1;\na =\n" then depth openers, one a line (opener k on line
 * k + 2), then inner, the closers and ";".
 */
static char *
nested(size_t depth, const char *open, const char *inner,
    const char *close)
{
	size_t cap = 64 + depth * (strlen(open) + strlen(close) + 1) +
	    strlen(inner);
	char *b = malloc(cap), *p;
	size_t i;

	assert_non_null(b);
	p = b + sprintf(b, "x = 1;\na =\n");
	for (i = 0; i < depth; i++)
		p += sprintf(p, "%s\n", open);
	p += sprintf(p, "%s", inner);
	for (i = 0; i < depth; i++)
		p += sprintf(p, "%s", close);
	sprintf(p, ";\n");
	return b;
}

static const struct {
	const char	*name;
	size_t		depth;
	const char	*open, *inner, *close;
	int		rc;
	int		line;		/* of the error */
} nest_cases[] = {
	{ "lists at the limit", LCFG_NEST_MAX, "(", "1", ")", 0, 0 },
	{ "lists one over", LCFG_NEST_MAX + 1, "(", "1", ")", -1,
	    LCFG_NEST_MAX + 1 + 2 },
	{ "lists far over", 5000, "(", "1", ")", -1, LCFG_NEST_MAX + 1 + 2 },
	/* a group and an array count as levels too */
	{ "mixed at the limit", LCFG_NEST_MAX - 2, "(", "{ v = [1]; }", ")",
	    0, 0 },
	/* the 65th level is the "[" on the line after the last "(" */
	{ "mixed one over", LCFG_NEST_MAX - 1, "(", "{ v = [1]; }", ")", -1,
	    LCFG_NEST_MAX - 1 + 3 },
	{ "groups at the limit", LCFG_NEST_MAX, "{ g =", "1", "; }", 0, 0 },
	{ "groups one over", LCFG_NEST_MAX, "{ g =", "{ h = 1; }", "; }",
	    -1, LCFG_NEST_MAX + 3 },
};

static void
test_parse_nest(void **state)
{
	char want[256], *buf;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(nest_cases); i++) {
		buf = nested(nest_cases[i].depth, nest_cases[i].open,
		    nest_cases[i].inner, nest_cases[i].close);
		fx_parse(&F, buf, strlen(buf), NULL);
		free(buf);
		WANT_INT(nest_cases[i].name, "rc", F.rc, nest_cases[i].rc);
		if (nest_cases[i].rc == 0) {
			WANT_INT(nest_cases[i].name, "diagnostics", F.d.n, 0);
			WANT_INT(nest_cases[i].name, "x", config_lookup(&F.cfg,
			    "x") != NULL, 1);
		} else {
			snprintf(want, sizeof(want), T_FILE ":%d: nested "
			    "deeper than %d levels", nest_cases[i].line,
			    LCFG_NEST_MAX);
			want_one_diag(nest_cases[i].name, &F, want);
		}
		fx_free(&F);
	}
}

/*
 * Brackets inside strings and comments are text, not nesting; the lines
 * inside a block comment still count (the error names line 7 + 65).
 */
static void
test_parse_nest_not_counted(void **state)
{
	static const char head[] =
	    "s = \"((((((((((((((((((((((((((((((((((((((((((((((((((((((("
	    "((((((((((((((((((((\";\n"				/* 1 */
	    "q = \"\\\"(((((((((((((((((((((((((((((((((((((((((((((((((((("
	    "(((((((((((((((((((((((\";\n"			/* 2 */
	    "# ((((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
	    "(((((((((((\n"					/* 3 */
	    "// (((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
	    "((((((((((((\n"					/* 4 */
	    "/* ((((((((((((((((((((((((((((((((((((((((((((((((((((((((("
	    "((((((((\n"					/* 5 */
	    "   (((( */ t = 1;\n"					/* 6 */
	    "u = (\n";						/* 7 */
	char want[128], *buf;
	size_t hl = strlen(head), i, depth;

	(void)state;
	/* u's "(" is level 1: LCFG_NEST_MAX - 1 more stay at the limit */
	for (depth = LCFG_NEST_MAX - 1; depth <= LCFG_NEST_MAX; depth++) {
		buf = malloc(hl + depth * 3 + 16);
		assert_non_null(buf);
		memcpy(buf, head, hl);
		for (i = 0; i < depth; i++)
			memcpy(buf + hl + i * 2, "(\n", 2);
		memcpy(buf + hl + depth * 2, "1", 1);
		memset(buf + hl + depth * 2 + 1, ')', depth + 1);
		memcpy(buf + hl + depth * 3 + 2, ";\n", 3);
		fx_parse(&F, buf, strlen(buf), NULL);
		free(buf);
		if (depth < LCFG_NEST_MAX) {
			WANT_INT("at the limit", "rc", F.rc, 0);
			WANT_INT("at the limit", "diagnostics", F.d.n, 0);
			WANT_INT("at the limit", "t", config_lookup(&F.cfg,
			    "t") != NULL, 1);
		} else {
			WANT_INT("one over", "rc", F.rc, -1);
			snprintf(want, sizeof(want), T_FILE ":%d: nested "
			    "deeper than %d levels", 7 + LCFG_NEST_MAX,
			    LCFG_NEST_MAX);
			want_one_diag("one over", &F, want);
		}
		fx_free(&F);
	}
}

static void
test_parse_nul(void **state)
{
	static const char with_nul[] = "a = 1;\nb = 2;\0c = 3;\n";
	static const char esc_nul[] =
	    "a = 1;\n"
	    "b = \"ok\";\n"
	    "c = \"x\\x00y\";\n"
	    "d = \"\\x00\";\n";
	/* an escaped backslash then "x00": the text \x00, no NUL */
	static const char not_nul[] = "a = \"\\\\x00\";\n";
	const config_setting_t *s;

	(void)state;
	fx_parse(&F, with_nul, sizeof(with_nul) - 1, NULL);
	WANT_INT("NUL byte", "rc", F.rc, -1);
	want_one_diag("NUL byte", &F, T_FILE ": binary file (NUL byte), not "
	    "a configuration file");
	fx_free(&F);

	fx_parse(&F, esc_nul, strlen(esc_nul), NULL);
	WANT_INT("\\x00 escape", "rc", F.rc, -1);
	want_one_diag("\\x00 escape", &F, T_FILE ":3: \\x00 in a string: NUL "
	    "is not allowed in text");
	fx_free(&F);

	fx_parse(&F, not_nul, strlen(not_nul), NULL);
	WANT_INT("\\\\x00", "rc", F.rc, 0);
	s = config_lookup(&F.cfg, "a");
	assert_non_null(s);
	WANT_STR("\\\\x00", "value", config_setting_get_string(s), "\\x00");
	fx_free(&F);
}

static const struct {
	const char	*name;
	const char	*buf;
	int		line;
} syntax_cases[] = {
	{ "missing value", "a = 1;\nb = ;\nc = 2;\n", 2 },
	/* libconfig names the line where the input ended */
	{ "unclosed group", "a = 1;\n\n\ng = { x = 1;", 4 },
	{ "stray closer", "a = 1;\n)\n", 2 },
	{ "bad key", "a = 1;\nb = 2;\n3x = 1;\n", 3 },
	{ "mixed array", "a = 1;\nb = [1, \"x\"];\n", 2 },
};

static void
test_parse_syntax(void **state)
{
	char want[64], buf[DIAG_FILE_MAX + DIAG_MSG_MAX + 32];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(syntax_cases); i++) {
		fx_parse(&F, syntax_cases[i].buf, strlen(syntax_cases[i].buf),
		    NULL);
		WANT_INT(syntax_cases[i].name, "rc", F.rc, -1);
		WANT_INT(syntax_cases[i].name, "errors", F.d.errors, 1);
		snprintf(want, sizeof(want), T_FILE ":%d: ",
		    syntax_cases[i].line);
		if (F.d.n == 1 && strncmp(diag_format(&F.d, 0, buf,
		    sizeof(buf)), want, strlen(want)) != 0)
			fail_msg("%s: got \"%s\", want it to start with \"%s\"",
			    syntax_cases[i].name, buf, want);
		fx_free(&F);
	}
	fx_parse(&F, "a = 1; b = \"x\";\n", 16, NULL);
	WANT_INT("valid", "rc", F.rc, 0);
	WANT_INT("valid", "diagnostics", F.d.n, 0);
	fx_free(&F);
}

/* --- typed getters ------------------------------------------------ */

static const char get_cfg[] =
	"g = {\n"			/* 1 */
	"  s = \"x\";\n"		/* 2 */
	"  i = 5;\n"			/* 3 */
	"  b = true;\n"			/* 4 */
	"  big = 10000000000L;\n"	/* 5 */
	"  f = 1.5;\n"			/* 6 */
	"  a = [1];\n"			/* 7 */
	"  n = -7;\n"			/* 8 */
	"  no = false;\n"		/* 9 */
	"};\n";

enum getter { G_STRING, G_INT, G_BOOL };

static const struct {
	enum getter	g;
	const char	*name;
	long long	min, max;
	int		ret;
	long long	n;		/* G_INT, G_BOOL value on 1 */
	const char	*s;		/* G_STRING value on 1 */
	const char	*msg;		/* the diagnostic on -1 */
} get_cases[] = {
	{ G_STRING, "s", 0, 0, 1, 0, "x", NULL },
	{ G_STRING, "absent", 0, 0, 0, 0, NULL, NULL },
	{ G_STRING, "i", 0, 0, -1, 0, NULL,
	    T_FILE ":3: store.i: must be a string, not an integer" },
	{ G_STRING, "a", 0, 0, -1, 0, NULL,
	    T_FILE ":7: store.a: must be a string, not an array" },
	{ G_INT, "i", 1, 10, 1, 5, NULL, NULL },
	{ G_INT, "i", 5, 5, 1, 5, NULL, NULL },		/* bounds inclusive */
	{ G_INT, "i", 6, 10, -1, 0, NULL,
	    T_FILE ":3: store.i: 5 not in 6..10" },
	{ G_INT, "i", 1, 4, -1, 0, NULL,
	    T_FILE ":3: store.i: 5 not in 1..4" },
	{ G_INT, "n", -10, -7, 1, -7, NULL, NULL },
	{ G_INT, "n", 0, 10, -1, 0, NULL,
	    T_FILE ":8: store.n: -7 not in 0..10" },
	{ G_INT, "big", 0, LLONG_MAX, 1, 10000000000LL, NULL, NULL },
	{ G_INT, "big", 0, INT_MAX, -1, 0, NULL,
	    T_FILE ":5: store.big: 10000000000 not in 0..2147483647" },
	{ G_INT, "absent", 0, 10, 0, 0, NULL, NULL },
	{ G_INT, "s", 0, 10, -1, 0, NULL,
	    T_FILE ":2: store.s: must be an integer, not a string" },
	/* no silent float/int conversion */
	{ G_INT, "f", 0, 10, -1, 0, NULL,
	    T_FILE ":6: store.f: must be an integer, not a float" },
	{ G_INT, "b", 0, 10, -1, 0, NULL,
	    T_FILE ":4: store.b: must be an integer, not a boolean" },
	{ G_BOOL, "b", 0, 0, 1, 1, NULL, NULL },
	{ G_BOOL, "no", 0, 0, 1, 0, NULL, NULL },
	{ G_BOOL, "absent", 0, 0, 0, 0, NULL, NULL },
	{ G_BOOL, "i", 0, 0, -1, 0, NULL,
	    T_FILE ":3: store.i: must be true or false, not an integer" },
	{ G_BOOL, "s", 0, 0, -1, 0, NULL,
	    T_FILE ":2: store.s: must be true or false, not a string" },
};

static void
test_getters(void **state)
{
	static const char *const gname[] = { "string", "int", "bool" };
	const config_setting_t *g;
	const char *sv;
	long long iv;
	char row[64];
	size_t i;
	int ret, bv;

	(void)state;
	for (i = 0; i < NELEM(get_cases); i++) {
		snprintf(row, sizeof(row), "lcfg_get_%s(%s) row %zu",
		    gname[get_cases[i].g], get_cases[i].name, i);
		fx_parse(&F, get_cfg, strlen(get_cfg), NULL);
		WANT_INT(row, "parse", F.rc, 0);
		g = config_lookup(&F.cfg, "g");
		assert_non_null(g);
		sv = "untouched";
		iv = -4242;
		bv = -4242;
		switch (get_cases[i].g) {
		case G_STRING:
			ret = lcfg_get_string(g, get_cases[i].name, &sv,
			    T_FILE, "store.", &F.d);
			WANT_STR(row, "value", sv, ret == 1 ? get_cases[i].s :
			    "untouched");
			break;
		case G_INT:
			ret = lcfg_get_int(g, get_cases[i].name,
			    get_cases[i].min, get_cases[i].max, &iv, T_FILE,
			    "store.", &F.d);
			WANT_INT(row, "value", iv, ret == 1 ? get_cases[i].n :
			    -4242);
			break;
		default:
			ret = lcfg_get_bool(g, get_cases[i].name, &bv, T_FILE,
			    "store.", &F.d);
			WANT_INT(row, "value", bv, ret == 1 ? get_cases[i].n :
			    -4242);
			break;
		}
		WANT_INT(row, "return", ret, get_cases[i].ret);
		if (get_cases[i].msg != NULL)
			want_one_diag(row, &F, get_cases[i].msg);
		else
			WANT_INT(row, "diagnostics", F.d.n, 0);
		fx_free(&F);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_text_types, teardown),
		cmocka_unit_test_teardown(test_text_long_element, teardown),
		cmocka_unit_test_teardown(test_text_small, teardown),
		cmocka_unit_test_teardown(test_type_names, teardown),
		cmocka_unit_test_teardown(test_check_keys, teardown),
		cmocka_unit_test_teardown(test_check_keys_include, teardown),
		cmocka_unit_test_teardown(test_parse_nest, teardown),
		cmocka_unit_test_teardown(test_parse_nest_not_counted,
		    teardown),
		cmocka_unit_test_teardown(test_parse_nul, teardown),
		cmocka_unit_test_teardown(test_parse_syntax, teardown),
		cmocka_unit_test_teardown(test_getters, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

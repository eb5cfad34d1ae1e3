/*
 * test_match.c - unit tests for match.c: pattern sets, file: lists, IP
 * parsing, CIDR tables, owner maps, regex limits and per-thread matching.
 * Owns: tables of cases whose expected values were worked out by hand.
 * Not: rule parsing (test_rules.c).
 * Threads: one test starts four threads; the rest run on the main thread.
 * Errors: cmocka failures naming the row, "got X, want Y".
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>

#include "diag.h"
#include "match.h"

#define SRC_FILE	"r.rules"
#define SRC_LINE	12
#define LIST		"\x01"		/* want_file: the list file itself */

static double
mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct match_src
src_in(const char *dir)
{
	struct match_src s = { SRC_FILE, SRC_LINE, dir };

	return s;
}

static void
dump_diag(const struct diag *d)
{
	char buf[1024];
	size_t i;

	for (i = 0; i < d->n; i++)
		print_message("#   diag: %s\n", diag_format(d, i, buf,
		    sizeof(buf)));
}

/* ---- match_set: kinds of pattern ---- */

struct set_case {
	const char	*pats[4];	/* NULL-terminated */
	const char	*val;
	int		 vlen;		/* -1: strlen(val) */
	int		 want;
};

static const struct set_case set_cases[] = {
	/* exact, ASCII case-insensitive, whole value only */
	{ { "alice@example.com" }, "ALICE@Example.COM", -1, 1 },
	{ { "alice@example.com" }, "alice@example.co", -1, 0 },
	{ { "alice@example.com" }, "xalice@example.com", -1, 0 },
	{ { "alice@example.com" }, "alice@example.comx", -1, 0 },
	{ { "Alice@Example.COM" }, "alice@example.com", -1, 1 },
	/* prefix* */
	{ { "postmaster@*" }, "PostMaster@x.org", -1, 1 },
	{ { "postmaster@*" }, "postmaster@", -1, 1 },
	{ { "postmaster@*" }, "postmaste@x.org", -1, 0 },
	/* *suffix */
	{ { "*.example.com" }, "mx1.EXAMPLE.com", -1, 1 },
	{ { "*.example.com" }, "example.com", -1, 0 },
	{ { "*.example.com" }, "badexample.com", -1, 0 },
	{ { "*.example.com" }, ".example.com", -1, 1 },
	/* *mid* and other globs */
	{ { "*spam*" }, "nospamhere", -1, 1 },
	{ { "*spam*" }, "SPAM", -1, 1 },
	{ { "*spam*" }, "spa", -1, 0 },
	{ { "a?c" }, "abc", -1, 1 },
	{ { "a?c" }, "ac", -1, 0 },
	{ { "a?c" }, "abbc", -1, 0 },
	{ { "*@?.org" }, "x@y.org", -1, 1 },
	{ { "*@?.org" }, "x@yy.org", -1, 0 },
	{ { "*a*b*c" }, "xxAxxbxxc", -1, 1 },
	{ { "*a*b*c" }, "xxaxxcxxb", -1, 0 },
	{ { "a*b*c" }, "abcbc", -1, 1 },
	{ { "a*b*c" }, "abcbcx", -1, 0 },
	{ { "*" }, "", -1, 1 },
	{ { "*" }, "anything", -1, 1 },
	{ { "?" }, "", -1, 0 },
	/* regex: unanchored search, caseless, anchors */
	{ { "/^user[0-9]+@/" }, "user12@x", -1, 1 },
	{ { "/^user[0-9]+@/" }, "userx@x", -1, 0 },
	{ { "/^ADMIN@/" }, "admin@example.org", -1, 1 },
	{ { "/example\\.com$/" }, "a@example.com", -1, 1 },
	{ { "/example\\.com$/" }, "a@example.com.evil", -1, 0 },
	{ { "/example\\.com$/" }, "a@exampleXcom", -1, 0 },
	{ { "/foo/" }, "xFOOx", -1, 1 },
	{ { "/(a)(b)(c)/" }, "xabcx", -1, 1 },	/* more groups than ovector */
	/* bytes, not UTF: NUL and 0xff inside the counted value are fine */
	{ { "/a\\x00b/" }, "a\0b", 3, 1 },
	{ { "/\\xff$/" }, "x\xff", -1, 1 },
	/* the empty pattern is the null sender, and only that */
	{ { "" }, "", -1, 1 },
	{ { "" }, "a", -1, 0 },
	{ { "*@x" }, "", -1, 0 },
	{ { "/./" }, "", -1, 0 },
	/* len bounds the value; no NUL is needed */
	{ { "abc" }, "abcdef", 3, 1 },
	{ { "abc" }, "abcdef", 2, 0 },
	{ { "*.com" }, "x.comZZ", 5, 1 },
	{ { "ab*" }, "abZZ", 1, 0 },
	{ { "/^abc$/" }, "abcdef", 3, 1 },
	/* a list holds if any element holds */
	{ { "a@x", "*.y", "/^z/", "q*" }, "a@X", -1, 1 },
	{ { "a@x", "*.y", "/^z/", "q*" }, "b.Y", -1, 1 },
	{ { "a@x", "*.y", "/^z/", "q*" }, "Zed", -1, 1 },
	{ { "a@x", "*.y", "/^z/", "q*" }, "Quux", -1, 1 },
	{ { "a@x", "*.y", "/^z/", "q*" }, "b@x", -1, 0 },
	/* prefixes and suffixes of several lengths share one pass */
	{ { "ab*", "abcd*", "*yz", "*wxyz" }, "abcdzz", -1, 1 },
	{ { "ab*", "abcd*", "*yz", "*wxyz" }, "aXcdzz", -1, 0 },
	{ { "ab*", "abcd*", "*yz", "*wxyz" }, "zzzwxyz", -1, 1 },
	{ { "ab*", "abcd*", "*yz", "*wxyz" }, "zzzwxy", -1, 0 },
	{ { "abcdef", "abc*" }, "abc", -1, 1 },
	{ { "abcdef", "abcd*" }, "abc", -1, 0 },
	/* an empty set holds for nothing */
	{ { NULL }, "", -1, 0 },
	{ { NULL }, "a", -1, 0 },
};

static void
test_set_table(void **state)
{
	struct match_src src = { SRC_FILE, SRC_LINE, NULL };
	const struct set_case *c;
	struct match_set *m;
	struct diag d;
	size_t i, j, len;
	int got, fails = 0;

	(void)state;
	for (i = 0; i < NELEM(set_cases); i++) {
		c = &set_cases[i];
		diag_init(&d);
		assert_non_null(m = match_set_new());
		for (j = 0; j < NELEM(c->pats) && c->pats[j] != NULL; j++)
			assert_int_equal(match_set_add(m, c->pats[j], &src,
			    &d), 0);
		assert_int_equal(d.n, 0);
		len = c->vlen < 0 ? strlen(c->val) : (size_t)c->vlen;
		got = match_set_test(m, c->val, len);
		if (got != c->want) {
			print_error("set case %zu: pattern %s, value \"%.*s\":"
			    " got %d, want %d\n", i, c->pats[0] ? c->pats[0] :
			    "(none)", (int)len, c->val, got, c->want);
			fails++;
		}
		match_set_free(m);
		diag_fini(&d);
	}
	assert_int_equal(fails, 0);
}

/* 5000 exact entries grow the hash table many times; all must stay found. */
static void
test_set_many_exact(void **state)
{
	struct match_src src = { SRC_FILE, SRC_LINE, NULL };
	struct match_counts cnt;
	struct match_set *m;
	struct diag d;
	char buf[64];
	int i, n, fails = 0;

	(void)state;
	diag_init(&d);
	assert_non_null(m = match_set_new());
	for (i = 0; i < 5000; i++) {
		snprintf(buf, sizeof(buf), "user%d@example.com", i);
		assert_int_equal(match_set_add(m, buf, &src, &d), 0);
	}
	for (i = 0; i < 5000; i++) {
		n = snprintf(buf, sizeof(buf), "USER%d@EXAMPLE.COM", i);
		if (match_set_test(m, buf, (size_t)n) != 1) {
			print_error("%s: got 0, want 1\n", buf);
			fails++;
		}
	}
	for (i = 5000; i < 6000; i++) {
		n = snprintf(buf, sizeof(buf), "user%d@example.com", i);
		if (match_set_test(m, buf, (size_t)n) != 0) {
			print_error("%s: got 1, want 0\n", buf);
			fails++;
		}
	}
	assert_int_equal(fails, 0);
	match_set_counts(m, &cnt);
	assert_int_equal(cnt.exact, 5000);
	assert_int_equal(cnt.glob, 0);
	assert_int_equal(cnt.regex, 0);
	match_set_free(m);
	diag_fini(&d);
}

static void
test_set_counts(void **state)
{
	static const char *pats[] = { "a", "A", "b", "*.x", "x*", "a*b",
	    "/r/", "/s/", "" };
	struct match_src src = { SRC_FILE, SRC_LINE, NULL };
	struct match_counts cnt;
	struct match_set *m;
	struct diag d;
	size_t i;

	(void)state;
	diag_init(&d);
	assert_non_null(m = match_set_new());
	for (i = 0; i < NELEM(pats); i++)
		assert_int_equal(match_set_add(m, pats[i], &src, &d), 0);
	match_set_counts(m, &cnt);
	/* "a" and "A" are one entry; "" is an exact pattern */
	if (cnt.exact != 3 || cnt.glob != 3 || cnt.regex != 2)
		fail_msg("counts: got exact=%zu glob=%zu regex=%zu, want 3 3 2",
		    cnt.exact, cnt.glob, cnt.regex);
	match_set_free(m);
	diag_fini(&d);
}

/* ---- regex limits ---- */

struct hostile_case {
	const char	*pat;
	char		 fill, last;	/* value: 10 KB of fill, then last */
	int		 want;
};

static const struct hostile_case hostile_cases[] = {
	/* required-char optimisation: no 'b' in the value, fails at once */
	{ "/(a+)+b/", 'a', 'c', 0 },
	/* exponential backtracking, stopped by the match limit */
	{ "/^(a+)+$/", 'a', '!', 0 },
	{ "/(a+)+$/", 'a', '!', 0 },
	{ "/^(\\w+\\s?)*$/", 'a', '!', 0 },
	{ "/(.*a){20}$/", 'a', '!', 0 },
	{ "/^(a|a?)+$/", 'a', '!', 0 },
	/* but a long legitimate match still succeeds (JIT stack, limits) */
	{ "/^([a-z]|\\.)+$/", 'a', 'z', 1 },
	{ "/b$/", 'a', 'b', 1 },
	{ "/^a+!$/", 'a', '!', 1 },
};

static void
test_set_regex_hostile(void **state)
{
	struct match_src src = { SRC_FILE, SRC_LINE, NULL };
	const struct hostile_case *c;
	struct match_set *m;
	struct diag d;
	char *v;
	size_t i, len = 10240;
	double t0, dt;
	int got, fails = 0;

	(void)state;
	assert_non_null(v = malloc(len));
	for (i = 0; i < NELEM(hostile_cases); i++) {
		c = &hostile_cases[i];
		memset(v, c->fill, len - 1);
		v[len - 1] = c->last;
		diag_init(&d);
		assert_non_null(m = match_set_new());
		assert_int_equal(match_set_add(m, c->pat, &src, &d), 0);
		t0 = mono_now();
		got = match_set_test(m, v, len);
		dt = mono_now() - t0;
		/* a hang detector only: unbounded, these take years */
		if (got != c->want || dt > 2.0) {
			print_error("hostile %s: got %d in %.3f s, want %d in "
			    "< 2 s\n", c->pat, got, dt, c->want);
			fails++;
		}
		match_set_free(m);
		diag_fini(&d);
	}
	free(v);
	assert_int_equal(fails, 0);
}

/*
 * Proof that our match limit, not PCRE2's default (10 million), is in
 * force: the first branch fails only after about 200000 steps for 26
 * a's (measured with JIT and the interpreter), so under our limit the
 * match errors out and counts as no match, while the default limit lets
 * the second branch match.
 */
static void
test_set_regex_limit(void **state)
{
	struct match_src src = { SRC_FILE, SRC_LINE, NULL };
	struct match_set *m;
	struct diag d;
	char v[27];
	int got;

	(void)state;
	memset(v, 'a', 26);
	v[26] = 'b';
	diag_init(&d);
	assert_non_null(m = match_set_new());
	assert_int_equal(match_set_add(m, "/^(?:(a|aa)+c|a+b)/", &src, &d), 0);
	if ((got = match_set_test(m, "aaaaab", 6)) != 1)
		fail_msg("5 a's: got %d, want 1 (under the limit)", got);
	if ((got = match_set_test(m, v, sizeof(v))) != 0)
		fail_msg("26 a's: got %d, want 0 (limit hit)", got);
	match_set_free(m);
	diag_fini(&d);
}

/* ---- errors, with FILE:LINE ---- */

struct err_case {
	const char	*pat;
	const char	*fname;		/* list file to create, or NULL */
	const char	*fdata;
	size_t		 flen;		/* (size_t)-1: strlen */
	const char	*want_file;	/* LIST: the list file's path */
	int		 want_line;
	size_t		 want_errors;
	const char	*want_msg;	/* expected text of the first error */
};

static const struct err_case err_cases[] = {
	{ "/a(b/", NULL, NULL, 0, SRC_FILE, SRC_LINE, 1,
	    "bad regex /a(b/: missing closing parenthesis at offset 3" },
	{ "/abc", NULL, NULL, 0, SRC_FILE, SRC_LINE, 1,
	    "/abc: a regex must end with '/' (no flags; matching is always "
	    "case-insensitive)" },
	{ "/", NULL, NULL, 0, SRC_FILE, SRC_LINE, 1,
	    "/: a regex must end with '/' (no flags; matching is always "
	    "case-insensitive)" },
	{ "/(*UTF)a/", NULL, NULL, 0, SRC_FILE, SRC_LINE, 1, NULL },
	{ "file:missing.txt", NULL, NULL, 0, SRC_FILE, SRC_LINE, 1,
	    "%s/missing.txt: cannot open: No such file or directory" },
	{ "file:bin.txt", "bin.txt", "abc\0def\n", 8, SRC_FILE, SRC_LINE, 1,
	    "%s/bin.txt: binary file (NUL byte at offset 3)" },
	{ "file:sub", NULL, NULL, 0, SRC_FILE, SRC_LINE, 1,
	    "%s/sub: not a regular file" },
	{ "file:", NULL, NULL, 0, SRC_FILE, SRC_LINE, 1,
	    "file:: bad path" },
	{ "file:list.txt", "list.txt", "ok@x\n# c\n/a(b/\n", (size_t)-1,
	    LIST, 3, 1,
	    "bad regex /a(b/: missing closing parenthesis at offset 3" },
	{ "file:crlf.txt", "crlf.txt", "a\r\n\r\n  /x(/ \r\n", (size_t)-1,
	    LIST, 3, 1,
	    "bad regex /x(/: missing closing parenthesis at offset 2" },
	{ "file:nest.txt", "nest.txt", "a\n\nfile:other.txt\n", (size_t)-1,
	    LIST, 3, 1, "file:other.txt: file: is not allowed inside a list" },
	/* every bad line is reported, not only the first */
	{ "file:two.txt", "two.txt", "/(/\nok\n/[/\n", (size_t)-1, LIST, 1,
	    2, NULL },
};

static void
check_err(const struct diag *d, size_t row, const char *want_file,
    int want_line, size_t want_errors, const char *want_msg)
{
	const struct diag_entry *e;

	if (d->errors != want_errors || d->n < 1) {
		dump_diag(d);
		fail_msg("row %zu: got %zu errors, want %zu", row, d->errors,
		    want_errors);
	}
	e = &d->v[0];
	if (e->sev != DIAG_ERROR || strcmp(e->file, want_file) != 0 ||
	    e->line != want_line) {
		dump_diag(d);
		fail_msg("row %zu: got %s:%d, want %s:%d", row, e->file,
		    e->line, want_file, want_line);
	}
	if (want_msg != NULL && strcmp(e->msg, want_msg) != 0)
		fail_msg("row %zu: got \"%s\", want \"%s\"", row, e->msg,
		    want_msg);
}

static void
test_set_errors(void **state)
{
	const struct err_case *c;
	struct match_src src;
	struct match_set *m;
	struct diag d;
	char dir[512], sub[600], listpath[700], msg[900];
	const char *want_file;
	size_t i;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	assert_int_equal(mkdir(sub, 0700), 0);
	src = src_in(dir);
	for (i = 0; i < NELEM(err_cases); i++) {
		c = &err_cases[i];
		if (c->fname != NULL)
			tu_write(dir, c->fname, c->fdata, c->flen);
		want_file = c->want_file;
		if (strcmp(want_file, LIST) == 0) {
			snprintf(listpath, sizeof(listpath), "%s/%s", dir,
			    c->fname);
			want_file = listpath;
		}
		/* a leading "%s" in want_msg stands for the temp dir */
		if (c->want_msg != NULL && strncmp(c->want_msg, "%s", 2) == 0)
			snprintf(msg, sizeof(msg), "%s%s", dir,
			    c->want_msg + 2);
		else if (c->want_msg != NULL)
			snprintf(msg, sizeof(msg), "%s", c->want_msg);
		diag_init(&d);
		assert_non_null(m = match_set_new());
		if (match_set_add(m, c->pat, &src, &d) != -1)
			fail_msg("row %zu (%s): got 0, want -1", i, c->pat);
		check_err(&d, i, want_file, c->want_line, c->want_errors,
		    c->want_msg != NULL ? msg : NULL);
		match_set_free(m);
		diag_fini(&d);
	}
	tu_rmtree(dir);
}

/* Bounds: MATCH_PAT_MAX per pattern (inline and in a list), file size. */
static void
test_set_limits(void **state)
{
	struct match_src src;
	struct match_set *m;
	struct diag d;
	char dir[512], path[700], *big, *pat;
	int fd;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	src = src_in(dir);
	assert_non_null(pat = malloc(MATCH_PAT_MAX + 2));
	memset(pat, 'a', MATCH_PAT_MAX + 1);
	pat[MATCH_PAT_MAX + 1] = '\0';

	diag_init(&d);
	assert_non_null(m = match_set_new());
	assert_int_equal(match_set_add(m, pat + 1, &src, &d), 0);
	assert_int_equal(match_set_test(m, pat + 1, MATCH_PAT_MAX), 1);
	assert_int_equal(match_set_add(m, pat, &src, &d), -1);
	check_err(&d, 0, SRC_FILE, SRC_LINE, 1, NULL);
	assert_non_null(strstr(d.v[0].msg, "pattern longer than 1024 bytes"));
	match_set_free(m);
	diag_fini(&d);

	/* the same line in a list: LISTFILE:LINE */
	assert_non_null(big = malloc(MATCH_PAT_MAX + 16));
	snprintf(big, MATCH_PAT_MAX + 16, "ok\n%s\n", pat);
	tu_write(dir, "long.txt", big, (size_t)-1);
	snprintf(path, sizeof(path), "%s/long.txt", dir);
	diag_init(&d);
	assert_non_null(m = match_set_new());
	assert_int_equal(match_set_add(m, "file:long.txt", &src, &d), -1);
	check_err(&d, 1, path, 2, 1, NULL);
	match_set_free(m);
	diag_fini(&d);
	free(big);

	/* one byte over MATCH_FILE_MAX */
	snprintf(path, sizeof(path), "%s/huge.txt", dir);
	assert_true((fd = open(path, O_WRONLY | O_CREAT, 0600)) >= 0);
	assert_int_equal(ftruncate(fd, MATCH_FILE_MAX + 1), 0);
	assert_int_equal(close(fd), 0);
	diag_init(&d);
	assert_non_null(m = match_set_new());
	assert_int_equal(match_set_add(m, "file:huge.txt", &src, &d), -1);
	check_err(&d, 2, SRC_FILE, SRC_LINE, 1, NULL);
	assert_non_null(strstr(d.v[0].msg, "larger than 4194304 bytes"));
	match_set_free(m);
	diag_fini(&d);

	free(pat);
	tu_rmtree(dir);
}

/* A good list: comments, blank lines, CRLF, blanks around patterns. */
static void
test_set_file(void **state)
{
	static const struct {
		const char	*val;
		int		 want;
	} rows[] = {
		{ "alice@x", 1 }, { "ALICE@X", 1 }, { "mx.example.org", 1 },
		{ "bob@y", 1 }, { "# comment", 0 }, { "", 0 },
		{ "alice@x\r", 0 }, { "example.org", 0 }, { "inline@z", 1 },
	};
	static const char list[] = "# comment\r\n\r\nalice@x\r\n"
	    "  *.example.org  \n\t/^bob@/\n   \n#/^x/\n";
	struct match_src src;
	struct match_counts cnt;
	struct match_set *m;
	struct diag d;
	char dir[512], abs[700];
	size_t i;
	int got;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "l.txt", list, (size_t)-1);
	src = src_in(dir);
	diag_init(&d);
	assert_non_null(m = match_set_new());
	assert_int_equal(match_set_add(m, "file:l.txt", &src, &d), 0);
	/* an absolute path ignores basedir: the same file, added again */
	snprintf(abs, sizeof(abs), "%s/l.txt", dir);
	src.basedir = "/nonexistent";
	memmove(abs + 5, abs, strlen(abs) + 1);
	memcpy(abs, "file:", 5);
	assert_int_equal(match_set_add(m, abs, &src, &d), 0);
	assert_int_equal(match_set_add(m, "inline@z", &src, &d), 0);
	assert_int_equal(d.n, 0);
	for (i = 0; i < NELEM(rows); i++) {
		got = match_set_test(m, rows[i].val, strlen(rows[i].val));
		if (got != rows[i].want)
			fail_msg("file row %zu \"%s\": got %d, want %d", i,
			    rows[i].val, got, rows[i].want);
	}
	match_set_counts(m, &cnt);
	if (cnt.exact != 2 || cnt.glob != 1 || cnt.regex != 2)
		fail_msg("counts: got %zu %zu %zu, want 2 1 2", cnt.exact,
		    cnt.glob, cnt.regex);
	match_set_free(m);
	diag_fini(&d);
	tu_rmtree(dir);
}

static void
test_read_file(void **state)
{
	char dir[512], path[700], err[128];
	size_t len = 99;
	char *buf;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "f", "hello\n", (size_t)-1);
	tu_write(dir, "e", "", 0);
	snprintf(path, sizeof(path), "%s/f", dir);
	assert_non_null(buf = match_read_file(path, 100, &len, err,
	    sizeof(err)));
	assert_int_equal(len, 6);
	assert_string_equal(buf, "hello\n");
	free(buf);
	assert_null(match_read_file(path, 5, &len, err, sizeof(err)));
	assert_string_equal(err, "larger than 5 bytes");
	assert_int_equal(len, 0);
	snprintf(path, sizeof(path), "%s/e", dir);
	assert_non_null(buf = match_read_file(path, 100, &len, err,
	    sizeof(err)));
	assert_int_equal(len, 0);
	assert_string_equal(buf, "");
	free(buf);
	assert_null(match_read_file(dir, 100, &len, err, sizeof(err)));
	assert_string_equal(err, "not a regular file");
	tu_rmtree(dir);
}

/* ---- IP addresses ---- */

struct ip_case {
	const char	*in;
	int		 len;		/* -1: strlen */
	int		 rc, family;
	const char	*fmt;
};

static const struct ip_case ip_cases[] = {
	{ "192.0.2.1", -1, 0, 4, "192.0.2.1" },
	{ "[192.0.2.1]", -1, 0, 4, "192.0.2.1" },
	{ "2001:DB8::1", -1, 0, 6, "2001:db8::1" },
	{ "[2001:db8::1]", -1, 0, 6, "2001:db8::1" },
	{ "::ffff:198.51.100.7", -1, 0, 4, "198.51.100.7" },
	{ "[::FFFF:198.51.100.7]", -1, 0, 4, "198.51.100.7" },
	{ "::ffff:c633:6407", -1, 0, 4, "198.51.100.7" },
	{ "IPv6:2001:db8::1", -1, 0, 6, "2001:db8::1" },
	{ "::1", -1, 0, 6, "::1" },
	{ "::", -1, 0, 6, "::" },
	{ "::198.51.100.7", -1, 0, 6, "::198.51.100.7" },	/* compat */
	{ "192.0.2.1XYZ", 9, 0, 4, "192.0.2.1" },
	{ "192.0.2.1 ", -1, -1, 0, "" },
	{ " 192.0.2.1", -1, -1, 0, "" },
	{ "192.0.2", -1, -1, 0, "" },
	{ "192.0.2.256", -1, -1, 0, "" },
	{ "192.0.2.01", -1, -1, 0, "" },
	{ "[192.0.2.1", -1, -1, 0, "" },
	{ "192.0.2.1]", -1, -1, 0, "" },
	{ "[]", -1, -1, 0, "" },
	{ "", -1, -1, 0, "" },
	{ "IPv6:192.0.2.1", -1, -1, 0, "" },
	{ "fe80::1%eth0", -1, -1, 0, "" },
	{ "2001:db8::1::2", -1, -1, 0, "" },
	{ "example.com", -1, -1, 0, "" },
	{ "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd"
	    ":eeee", -1, -1, 0, "" },
	{ "1.2.3.4\0" "5", 9, -1, 0, "" },
};

static void
test_ip_parse(void **state)
{
	const struct ip_case *c;
	struct match_ip ip;
	char buf[64];
	size_t i, len;
	int rc;

	(void)state;
	for (i = 0; i < NELEM(ip_cases); i++) {
		c = &ip_cases[i];
		len = c->len < 0 ? strlen(c->in) : (size_t)c->len;
		memset(&ip, 0x5a, sizeof(ip));
		rc = match_ip_parse(c->in, len, &ip);
		match_ip_format(&ip, buf, sizeof(buf));
		if (rc != c->rc || ip.family != c->family ||
		    strcmp(buf, c->fmt) != 0)
			fail_msg("ip \"%.*s\": got rc=%d family=%d \"%s\", "
			    "want rc=%d family=%d \"%s\"", (int)len, c->in, rc,
			    ip.family, buf, c->rc, c->family, c->fmt);
	}
}

static void
test_ip_mask(void **state)
{
	static const struct {
		const char	*in;
		unsigned	 prefix;
		const char	*want;
	} rows[] = {
		{ "192.0.2.255", 20, "192.0.0.0" },
		{ "192.0.2.255", 32, "192.0.2.255" },
		{ "192.0.2.255", 31, "192.0.2.254" },
		{ "192.0.2.255", 0, "0.0.0.0" },
		{ "192.0.2.255", 99, "192.0.2.255" },	/* clamped to 32 */
		{ "2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::" },
		{ "2001:db8:1:2:ffff:4:5:6", 65, "2001:db8:1:2:8000::" },
		{ "2001:db8:1:2:3:4:5:6", 28, "2001:db0::" },
		{ "2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6" },
	};
	struct match_ip ip;
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(rows); i++) {
		assert_int_equal(match_ip_parse(rows[i].in,
		    strlen(rows[i].in), &ip), 0);
		match_ip_mask(&ip, rows[i].prefix);
		match_ip_format(&ip, buf, sizeof(buf));
		if (strcmp(buf, rows[i].want) != 0)
			fail_msg("mask %s/%u: got %s, want %s", rows[i].in,
			    rows[i].prefix, buf, rows[i].want);
	}
}

/* ---- CIDR ---- */

struct cidr_case {
	const char	*nets[5];
	const char	*addr;
	int		 want;
};

static const struct cidr_case cidr_cases[] = {
	{ { "192.0.2.0/24" }, "192.0.2.77", 1 },
	{ { "192.0.2.0/24" }, "192.0.2.0", 1 },
	{ { "192.0.2.0/24" }, "192.0.2.255", 1 },
	{ { "192.0.2.0/24" }, "192.0.3.1", 0 },
	{ { "192.0.2.0/24" }, "192.0.1.255", 0 },
	{ { "192.0.2.0/24" }, "::ffff:192.0.2.5", 1 },
	{ { "192.0.2.0/24" }, "[192.0.2.1]", 1 },
	{ { "192.0.2.0/24" }, "2001:db8::1", 0 },
	{ { "192.0.2.0/24" }, "::c000:205", 0 },	/* v6 with same bits */
	{ { "2001:db8::/32" }, "2001:DB8:ffff::1", 1 },
	{ { "2001:db8::/32" }, "2001:db9::1", 0 },
	{ { "2001:db8::/32" }, "[2001:db8::5]", 1 },
	{ { "2001:db8::/32" }, "IPv6:2001:db8::1", 1 },
	{ { "2001:db8::/32" }, "32.1.13.184", 0 },	/* v4 with same bits */
	{ { "10.1.2.3" }, "10.1.2.3", 1 },
	{ { "10.1.2.3" }, "10.1.2.4", 0 },
	{ { "10.1.2.3/32" }, "10.1.2.3", 1 },
	{ { "2001:db8::1" }, "2001:db8::1", 1 },
	{ { "2001:db8::1" }, "2001:db8::2", 0 },
	{ { "2001:db8::1/128" }, "2001:db8::1", 1 },
	{ { "2001:db8::/127" }, "2001:db8::1", 1 },
	{ { "2001:db8::/127" }, "2001:db8::2", 0 },
	{ { "0.0.0.0/0" }, "203.0.113.9", 1 },
	{ { "0.0.0.0/0" }, "::1", 0 },
	{ { "::/0" }, "::1", 1 },
	{ { "::/0" }, "203.0.113.9", 0 },
	{ { "::/0" }, "::ffff:203.0.113.9", 0 },	/* a v4 client */
	{ { "128.0.0.0/1" }, "200.1.1.1", 1 },
	{ { "128.0.0.0/1" }, "127.255.255.255", 0 },
	{ { "192.0.2.0/31" }, "192.0.2.1", 1 },
	{ { "192.0.2.0/31" }, "192.0.2.2", 0 },
	{ { "2001:db8:0:0:8000::/65" }, "2001:db8::8000:0:0:1", 1 },
	{ { "2001:db8:0:0:8000::/65" }, "2001:db8::7fff:0:0:1", 0 },
	{ { "2001:db8::/63" }, "2001:db8:0:1:ffff::", 1 },
	{ { "2001:db8::/63" }, "2001:db8:0:2::", 0 },
	{ { "[2001:db8::]/32" }, "2001:db8::9", 1 },
	{ { "::ffff:198.51.100.0/120" }, "198.51.100.7", 1 },
	{ { "::ffff:198.51.100.0/120" }, "198.51.101.7", 0 },
	{ { "::ffff:0:0/96" }, "1.2.3.4", 1 },
	/* several prefix lengths and both families in one list */
	{ { "10.0.0.0/8", "192.168.1.0/24", "192.168.1.128/25",
	    "172.16.0.0/12", "2001:db8::/48" }, "172.31.255.255", 1 },
	{ { "10.0.0.0/8", "192.168.1.0/24", "192.168.1.128/25",
	    "172.16.0.0/12", "2001:db8::/48" }, "172.32.0.0", 0 },
	{ { "10.0.0.0/8", "192.168.1.0/24", "192.168.1.128/25",
	    "172.16.0.0/12", "2001:db8::/48" }, "192.168.1.200", 1 },
	{ { "10.0.0.0/8", "192.168.1.0/24", "192.168.1.128/25",
	    "172.16.0.0/12", "2001:db8::/48" }, "192.168.2.1", 0 },
	{ { "10.0.0.0/8", "192.168.1.0/24", "192.168.1.128/25",
	    "172.16.0.0/12", "2001:db8::/48" }, "10.255.0.1", 1 },
	{ { "10.0.0.0/8", "192.168.1.0/24", "192.168.1.128/25",
	    "172.16.0.0/12", "2001:db8::/48" }, "2001:db8:0:ffff::1", 1 },
	{ { "10.0.0.0/8", "192.168.1.0/24", "192.168.1.128/25",
	    "172.16.0.0/12", "2001:db8::/48" }, "2001:db8:1::1", 0 },
	{ { NULL }, "10.0.0.1", 0 },
};

static void
test_cidr_table(void **state)
{
	struct match_src src = { SRC_FILE, SRC_LINE, NULL };
	const struct cidr_case *c;
	struct match_cidr *t;
	struct match_ip ip;
	struct diag d;
	size_t i, j;
	int got, fails = 0;

	(void)state;
	for (i = 0; i < NELEM(cidr_cases); i++) {
		c = &cidr_cases[i];
		diag_init(&d);
		assert_non_null(t = match_cidr_new());
		for (j = 0; j < NELEM(c->nets) && c->nets[j] != NULL; j++)
			assert_int_equal(match_cidr_add(t, c->nets[j], &src,
			    &d), 0);
		if (d.n != 0) {
			dump_diag(&d);
			fail_msg("cidr case %zu: unexpected diagnostics", i);
		}
		match_cidr_compile(t);
		assert_int_equal(match_ip_parse(c->addr, strlen(c->addr),
		    &ip), 0);
		got = match_cidr_test(t, &ip);
		if (got != c->want) {
			print_error("cidr case %zu: %s in %s: got %d, want "
			    "%d\n", i, c->addr, c->nets[0] ? c->nets[0] :
			    "(empty)", got, c->want);
			fails++;
		}
		match_cidr_free(t);
		diag_fini(&d);
	}
	assert_int_equal(fails, 0);
}

static const struct {
	const char	*net;
	const char	*want_msg;
} cidr_bad[] = {
	{ "1.2.3.0/33", "1.2.3.0/33: prefix length must be a number in "
	    "0..32" },
	{ "1.2.3.0/", "1.2.3.0/: prefix length must be a number in 0..32" },
	{ "1.2.3.0/2x", "1.2.3.0/2x: prefix length must be a number in "
	    "0..32" },
	{ "1.2.3.0/-1", "1.2.3.0/-1: prefix length must be a number in "
	    "0..32" },
	{ "1.2.3.0/+8", "1.2.3.0/+8: prefix length must be a number in "
	    "0..32" },
	{ "1.2.3.0/ 8", "1.2.3.0/ 8: prefix length must be a number in "
	    "0..32" },
	{ "1.2.3.0/0008", "1.2.3.0/0008: prefix length must be a number in "
	    "0..32" },
	{ "::/129", "::/129: prefix length must be a number in 0..128" },
	{ "2001:db8::/64/1", "2001:db8::/64/1: prefix length must be a "
	    "number in 0..128" },
	{ "1.2.3", "1.2.3: not an IP address or network" },
	{ "300.1.1.1", "300.1.1.1: not an IP address or network" },
	{ "/24", "/24: not an IP address or network" },
	{ "", ": not an IP address or network" },
	{ "[1.2.3.4/32", "[1.2.3.4/32: not an IP address or network" },
	{ "example.com/24", "example.com/24: not an IP address or network" },
};

static void
test_cidr_errors(void **state)
{
	struct match_src src = { SRC_FILE, SRC_LINE, NULL };
	struct match_cidr *t;
	struct diag d;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cidr_bad); i++) {
		diag_init(&d);
		assert_non_null(t = match_cidr_new());
		if (match_cidr_add(t, cidr_bad[i].net, &src, &d) != -1)
			fail_msg("cidr \"%s\": got 0, want -1",
			    cidr_bad[i].net);
		check_err(&d, i, SRC_FILE, SRC_LINE, 1, cidr_bad[i].want_msg);
		match_cidr_compile(t);
		assert_int_equal(match_cidr_count(t), 0);
		match_cidr_free(t);
		diag_fini(&d);
	}
}

/* Host bits set: accepted with a warning naming the network used. */
static void
test_cidr_host_bits(void **state)
{
	static const struct {
		const char	*net, *msg, *in, *out;
	} rows[] = {
		{ "192.0.2.1/24", "192.0.2.1/24 has host bits set; using "
		    "192.0.2.0/24", "192.0.2.200", "192.0.3.1" },
		{ "2001:db8::1/32", "2001:db8::1/32 has host bits set; using "
		    "2001:db8::/32", "2001:db8:ffff::", "2001:db9::" },
		{ "::ffff:192.0.2.1/120", "::ffff:192.0.2.1/120 has host bits "
		    "set; using 192.0.2.0/24", "192.0.2.9", "192.0.3.9" },
	};
	struct match_src src = { SRC_FILE, SRC_LINE, NULL };
	struct match_cidr *t;
	struct match_ip ip;
	struct diag d;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(rows); i++) {
		diag_init(&d);
		assert_non_null(t = match_cidr_new());
		assert_int_equal(match_cidr_add(t, rows[i].net, &src, &d), 0);
		if (d.errors != 0 || d.warnings != 1 || d.n != 1 ||
		    d.v[0].sev != DIAG_WARNING || d.v[0].line != SRC_LINE ||
		    strcmp(d.v[0].msg, rows[i].msg) != 0) {
			dump_diag(&d);
			fail_msg("%s: got %zu errors %zu warnings, want one "
			    "warning \"%s\"", rows[i].net, d.errors,
			    d.warnings, rows[i].msg);
		}
		match_cidr_compile(t);
		assert_int_equal(match_ip_parse(rows[i].in, strlen(rows[i].in),
		    &ip), 0);
		if (match_cidr_test(t, &ip) != 1)
			fail_msg("%s in %s: got 0, want 1", rows[i].in,
			    rows[i].net);
		assert_int_equal(match_ip_parse(rows[i].out,
		    strlen(rows[i].out), &ip), 0);
		if (match_cidr_test(t, &ip) != 0)
			fail_msg("%s in %s: got 1, want 0", rows[i].out,
			    rows[i].net);
		match_cidr_free(t);
		diag_fini(&d);
	}
}

static void
test_cidr_file(void **state)
{
	static const struct {
		const char	*addr;
		int		 want;
	} rows[] = {
		{ "192.0.2.9", 1 }, { "2001:db8::1", 1 }, { "10.0.0.1", 1 },
		{ "10.0.0.2", 0 }, { "198.51.100.1", 0 },
	};
	static const char list[] = "# office\r\n192.0.2.0/24\r\n\r\n"
	    "  2001:db8::/32\t\n10.0.0.1/33\n10.0.0.1\n192.0.2.0/24\n"
	    "file:x\n";
	struct match_src src;
	struct match_cidr *t;
	struct match_ip ip;
	struct diag d;
	char dir[512], path[700];
	size_t i;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "nets.txt", list, (size_t)-1);
	snprintf(path, sizeof(path), "%s/nets.txt", dir);
	src = src_in(dir);
	diag_init(&d);
	assert_non_null(t = match_cidr_new());
	assert_int_equal(match_cidr_add(t, "file:nets.txt", &src, &d), -1);
	if (d.errors != 2 || strcmp(d.v[0].file, path) != 0 ||
	    d.v[0].line != 5 || d.v[1].line != 8 ||
	    strcmp(d.v[1].msg, "file:x: file: is not allowed inside a "
	    "list") != 0) {
		dump_diag(&d);
		fail_msg("got %zu errors, want 2 at %s:5 and :8", d.errors,
		    path);
	}
	match_cidr_compile(t);
	/* 192.0.2.0/24 twice counts once */
	assert_int_equal(match_cidr_count(t), 3);
	for (i = 0; i < NELEM(rows); i++) {
		assert_int_equal(match_ip_parse(rows[i].addr,
		    strlen(rows[i].addr), &ip), 0);
		if (match_cidr_test(t, &ip) != rows[i].want)
			fail_msg("%s: got %d, want %d", rows[i].addr,
			    !rows[i].want, rows[i].want);
	}
	match_cidr_free(t);
	diag_fini(&d);
	/* a missing list: the rule's FILE:LINE */
	diag_init(&d);
	assert_non_null(t = match_cidr_new());
	assert_int_equal(match_cidr_add(t, "file:nope", &src, &d), -1);
	check_err(&d, 0, SRC_FILE, SRC_LINE, 1, NULL);
	match_cidr_free(t);
	diag_fini(&d);
	tu_rmtree(dir);
}

/* ---- owner maps ---- */

static const char owner_map[] =
    "# owner map\n"
    "alice   alice@example.com  @example.net\n"
    "bob\t@*.example.org  *-bob@example.com\n"
    "\n"
    "carol   /^carol(\\+[a-z]+)?@example\\.com$/\r\n"
    "Alice   al@example.com\n"
    "  DAVE    dave@example.com\n";

static const struct {
	const char	*login, *sender;
	int		 want;
} owner_cases[] = {
	{ "alice", "alice@example.com", 1 },
	{ "alice", "ALICE@EXAMPLE.COM", 1 },
	{ "alice", "<alice@example.com>", 1 },
	{ "ALICE", "alice@example.com", 1 },
	{ "alice", "x@example.net", 1 },
	{ "alice", "<x@Example.NET>", 1 },
	{ "alice", "x@sub.example.net", 0 },
	{ "alice", "x@example.net.evil", 0 },
	{ "alice", "x@y@example.net", 1 },	/* domain: after the last @ */
	{ "alice", "x@example.net@evil.com", 0 },
	{ "alice", "example.net", 0 },
	{ "alice", "al@example.com", 1 },	/* second "Alice" line */
	{ "alice", "bob@example.com", 0 },
	{ "alice", "", 0 },
	{ "alice", "<>", 0 },
	{ "alice", "<alice@example.com", 0 },
	{ "bob", "x@a.example.org", 1 },
	{ "bob", "x@a.b.EXAMPLE.org", 1 },
	{ "bob", "x@example.org", 0 },
	{ "bob", "x@badexample.org", 0 },
	{ "bob", "x@.example.org", 0 },
	{ "bob", "x@a.example.org.evil", 0 },
	{ "bob", "team-bob@example.com", 1 },
	{ "bob", "bob@example.com", 0 },
	{ "bob", "alice@example.com", 0 },
	{ "carol", "carol@example.com", 1 },
	{ "carol", "Carol+News@Example.com", 1 },
	{ "carol", "carol@example.com.evil", 0 },
	{ "carol", "xcarol@example.com", 0 },
	{ "dave", "dave@example.com", 1 },
	{ "Dave", "DAVE@example.com", 1 },
	{ "eve", "alice@example.com", 0 },
	{ "", "alice@example.com", 0 },
	{ "alic", "alice@example.com", 0 },
};

static void
test_owners_table(void **state)
{
	struct match_owners *m;
	struct match_src src;
	struct diag d;
	char dir[512];
	size_t i;
	int got, fails = 0;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "senders.map", owner_map, (size_t)-1);
	src = src_in(dir);
	diag_init(&d);
	m = match_owners_load("senders.map", &src, &d);
	if (m == NULL || d.n != 0) {
		dump_diag(&d);
		fail_msg("owner map: load failed");
	}
	for (i = 0; i < NELEM(owner_cases); i++) {
		got = match_owners_test(m, owner_cases[i].login,
		    owner_cases[i].sender);
		if (got != owner_cases[i].want) {
			print_error("owner case %zu: %s as \"%s\": got %d, "
			    "want %d\n", i, owner_cases[i].login,
			    owner_cases[i].sender, got, owner_cases[i].want);
			fails++;
		}
	}
	assert_int_equal(match_owners_test(m, NULL, "a@b"), 0);
	assert_int_equal(match_owners_test(m, "alice", NULL), 0);
	assert_int_equal(match_owners_test(NULL, "alice", "a@b"), 0);
	match_owners_free(m);
	diag_fini(&d);
	tu_rmtree(dir);
	assert_int_equal(fails, 0);
}

static const struct {
	const char	*map;
	int		 want_line;
	size_t		 want_errors;
	const char	*want_msg;
} owner_bad[] = {
	{ "alice a@x\nfrank\n", 2, 1, "login frank has no sender pattern" },
	{ "alice a@x\n\n  frank   \r\n", 3, 1,
	    "login frank has no sender pattern" },
	{ "# c\nalice /a(/\n", 2, 1,
	    "bad regex /a(/: missing closing parenthesis at offset 2" },
	{ "alice file:x\n", 1, 1,
	    "file:x: file: is not allowed inside a list" },
	{ "alice @\n", 1, 1, "@: want @domain or @*.domain" },
	{ "alice @a@b\n", 1, 1, "@a@b: want @domain or @*.domain" },
	{ "alice /x(/ @ ok@x\nbob\n", 1, 3, NULL },
};

static void
test_owners_errors(void **state)
{
	struct match_owners *m;
	struct match_src src;
	struct diag d;
	char dir[512], path[700];
	size_t i;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/bad.map", dir);
	src = src_in(dir);
	for (i = 0; i < NELEM(owner_bad); i++) {
		tu_write(dir, "bad.map", owner_bad[i].map, (size_t)-1);
		diag_init(&d);
		m = match_owners_load("bad.map", &src, &d);
		if (m != NULL)
			fail_msg("owner row %zu: got a map, want NULL", i);
		check_err(&d, i, path, owner_bad[i].want_line,
		    owner_bad[i].want_errors, owner_bad[i].want_msg);
		diag_fini(&d);
	}
	/* a missing map: the owner_map setting's FILE:LINE */
	diag_init(&d);
	assert_null(match_owners_load("none.map", &src, &d));
	snprintf(path, sizeof(path),
	    "%s/none.map: cannot open: No such file or directory", dir);
	check_err(&d, 99, SRC_FILE, SRC_LINE, 1, path);
	diag_fini(&d);
	tu_rmtree(dir);
}

/* ---- threads ---- */

static const struct {
	const char	*val;
	int		 want;
} thread_rows[] = {
	{ "user17@example.com", 1 }, { "userx@example.com", 0 },
	{ "Admin@Example.Org", 1 }, { "root@example.org.evil", 0 },
	{ "mx.SPAM.example", 1 }, { "spam.example", 0 },
};

struct thread_arg {
	const struct match_set	*m;
	int			 id;
	int			 fails;
	long			 runs;
};

static void *
thread_main(void *p)
{
	struct thread_arg *a = p;
	size_t i;
	long n;

	for (n = 0; n < 20000; n++) {
		/* each thread walks the rows from its own offset */
		i = (size_t)(n + a->id) % NELEM(thread_rows);
		if (match_set_test(a->m, thread_rows[i].val,
		    strlen(thread_rows[i].val)) != thread_rows[i].want)
			a->fails++;
		a->runs++;
	}
	return NULL;
}

static void
test_set_threads(void **state)
{
	static const char *pats[] = { "/^user[0-9]+@example\\.com$/",
	    "/^admin@example\\.org$/", "/\\.spam\\.example$/" };
	struct match_src src = { SRC_FILE, SRC_LINE, NULL };
	struct thread_arg args[4];
	pthread_t tid[4];
	struct match_set *m;
	struct diag d;
	size_t i;

	(void)state;
	diag_init(&d);
	assert_non_null(m = match_set_new());
	for (i = 0; i < NELEM(pats); i++)
		assert_int_equal(match_set_add(m, pats[i], &src, &d), 0);
	for (i = 0; i < 4; i++) {
		args[i].m = m;
		args[i].id = (int)i;
		args[i].fails = 0;
		args[i].runs = 0;
		assert_int_equal(pthread_create(&tid[i], NULL, thread_main,
		    &args[i]), 0);
	}
	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_join(tid[i], NULL), 0);
	for (i = 0; i < 4; i++)
		if (args[i].fails != 0 || args[i].runs != 20000)
			fail_msg("thread %zu: got %d wrong of %ld, want 0 of "
			    "20000", i, args[i].fails, args[i].runs);
	match_set_free(m);
	diag_fini(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_table),
		cmocka_unit_test(test_set_many_exact),
		cmocka_unit_test(test_set_counts),
		cmocka_unit_test(test_set_regex_hostile),
		cmocka_unit_test(test_set_regex_limit),
		cmocka_unit_test(test_set_errors),
		cmocka_unit_test(test_set_limits),
		cmocka_unit_test(test_set_file),
		cmocka_unit_test(test_read_file),
		cmocka_unit_test(test_ip_parse),
		cmocka_unit_test(test_ip_mask),
		cmocka_unit_test(test_cidr_table),
		cmocka_unit_test(test_cidr_errors),
		cmocka_unit_test(test_cidr_host_bits),
		cmocka_unit_test(test_cidr_file),
		cmocka_unit_test(test_owners_table),
		cmocka_unit_test(test_owners_errors),
		cmocka_unit_test(test_set_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

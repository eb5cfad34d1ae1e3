/*
 * test_metrics.c - unit tests for metrics.c: label escaping (the three
 * escapes of the Prometheus text format 0.0.4, everything else that the
 * format cannot carry as '?', cuts never inside an escape), the exact
 * lines of the exposition text for known counters, the histogram
 * (cumulative buckets, le in seconds, +Inf == _count, _sum), one series
 * per rule (idle ones too) with escaped names, a line-by-line grammar
 * check of the whole text, metrics_collect from stats.c, the atomic
 * file replacement (content, mode 0644, no temporary file left, errors)
 * and the rate limit of metrics_update's failure lines.
 * Expected values are written by hand from the format's specification
 * ("Exposition formats", text format 0.0.4) and stats.h's bucket
 * definition, never from metrics.c's output.
 * Threads: none. Memory: formatted texts are freed (ASan checks).
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <syslog.h>

#include "log.h"
#include "metrics.h"
#include "rules.h"
#include "stats.h"

/* --- helpers -------------------------------------------------------- */

/* A ruleset of fake rules with the given names and counters. */
struct fakers {
	struct ruleset	rs;
	struct rule	r[4];
	struct rule	*p[4];
};

static void
fake_rules(struct fakers *f, const char *const *names, size_t n)
{
	size_t i;

	memset(f, 0, sizeof(*f));
	for (i = 0; i < n && i < 4; i++) {
		f->r[i].name = (char *)names[i];
		f->p[i] = &f->r[i];
	}
	f->rs.rules = f->p;
	f->rs.nrules = n;
}

static char *
format_or_fail(const struct metrics_in *in, size_t *len)
{
	char *t = metrics_format(in, len);

	if (t == NULL)
		fail_msg("metrics_format returned NULL");
	if (strlen(t) != *len)
		fail_msg("length %zu, strlen %zu", *len, strlen(t));
	return t;
}

/* The text has this line, whole. */
static void
want_line(const char *text, const char *line)
{
	const char *p = text;
	size_t n = strlen(line);

	for (; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	fail_msg("no line \"%s\" in:\n%s", line, text);
}

/* The text has no line starting with prefix. */
static void
no_line(const char *text, const char *prefix)
{
	const char *p = text;

	for (; (p = strstr(p, prefix)) != NULL; p++)
		if (p == text || p[-1] == '\n')
			fail_msg("unexpected line starting \"%s\"", prefix);
}

/* --- label escaping ------------------------------------------------- */

static const struct {
	const char	*name, *in;
	size_t		dstlen;
	const char	*want;
} esc_cases[] = {
	{ "plain", "submission-requires-auth", 64, "submission-requires-auth" },
	{ "dots", "a.b_c-9", 64, "a.b_c-9" },
	{ "empty", "", 64, "" },
	{ "quote", "a\"b", 64, "a\\\"b" },
	{ "backslash", "a\\b", 64, "a\\\\b" },
	{ "newline", "a\nb", 64, "a\\nb" },
	{ "all three", "\\\"\n", 64, "\\\\\\\"\\n" },
	/* no escape exists for these in the format: '?' */
	{ "CR", "a\rb", 64, "a?b" },
	{ "tab", "a\tb", 64, "a?b" },
	{ "DEL", "a\x7f" "b", 64, "a?b" },
	{ "8-bit", "\xc3\xa9t\xff", 64, "??t?" },
	/* cut to fit, never inside an escape */
	{ "fits exactly", "abc", 4, "abc" },
	{ "cut plain", "abcdef", 4, "abc" },
	{ "cut before escape", "ab\"c", 4, "ab" },
	{ "escape fits", "ab\"c", 5, "ab\\\"" },
	{ "dst 1", "abc", 1, "" },
};

static void
test_label_esc(void **state)
{
	char buf[128];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(esc_cases); i++) {
		memset(buf, '#', sizeof(buf));
		assert_ptr_equal(metrics_label_esc(esc_cases[i].in, buf,
		    esc_cases[i].dstlen), buf);
		if (strcmp(buf, esc_cases[i].want) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"",
			    esc_cases[i].name, buf, esc_cases[i].want);
		if (buf[esc_cases[i].dstlen] != '#')
			fail_msg("%s: wrote past dstlen", esc_cases[i].name);
	}
	/* dstlen 0: nothing written at all */
	buf[0] = '#';
	metrics_label_esc("abc", buf, 0);
	assert_int_equal(buf[0], '#');
}

/* --- the text --------------------------------------------------------- */

static void
test_format_counters(void **state)
{
	static const char *const names[] = { "busy", "idle" };
	struct metrics_in in;
	struct fakers f;
	size_t len;
	char *t;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.uptime_s = 300;
	in.counters[ST_CONNECTIONS] = 1200;
	in.counters[ST_MESSAGES] = 1100;
	in.counters[ST_RCPTS] = 2300;
	in.counters[ST_ACCEPT] = 1;
	in.counters[ST_REJECT] = 12;
	in.counters[ST_TEMPFAIL] = 3;
	in.counters[ST_DISCARD] = 2;
	in.counters[ST_QUARANTINE] = 5;
	in.counters[ST_DRYRUN] = 4;
	in.counters[ST_STORE_CALLS] = 2301;
	in.counters[ST_STORE_ERRORS] = 7;
	in.counters[ST_STORE_FALLBACKS] = 6;
	in.counters[ST_RELOADS] = 9;
	in.counters[ST_RELOAD_FAILURES] = 1;
	in.counters[ST_NOMEM] = 11;
	fake_rules(&f, names, 2);
	f.r[0].hits = 12;
	f.r[0].enforced = 10;
	f.r[0].dryrun = 2;
	in.rs = &f.rs;
	t = format_or_fail(&in, &len);

	want_line(t, "# TYPE warden_uptime_seconds gauge");
	want_line(t, "warden_uptime_seconds 300");
	want_line(t, "# TYPE warden_connections_total counter");
	want_line(t, "warden_connections_total 1200");
	want_line(t, "warden_messages_total 1100");
	want_line(t, "warden_recipients_total 2300");
	want_line(t, "# TYPE warden_decisions_total counter");
	want_line(t, "warden_decisions_total{action=\"accept\"} 1");
	want_line(t, "warden_decisions_total{action=\"reject\"} 12");
	want_line(t, "warden_decisions_total{action=\"tempfail\"} 3");
	want_line(t, "warden_decisions_total{action=\"discard\"} 2");
	want_line(t, "warden_decisions_total{action=\"quarantine\"} 5");
	want_line(t, "warden_dryrun_decisions_total 4");
	want_line(t, "warden_store_calls_total 2301");
	want_line(t, "warden_store_errors_total 7");
	want_line(t, "warden_store_fallbacks_total 6");
	want_line(t, "warden_out_of_memory_total 11");
	want_line(t, "warden_reloads_total{result=\"ok\"} 9");
	want_line(t, "warden_reloads_total{result=\"failed\"} 1");
	want_line(t, "# TYPE warden_rules gauge");
	want_line(t, "warden_rules 2");
	want_line(t, "# TYPE warden_rule_hits_total counter");
	want_line(t, "warden_rule_hits_total{rule=\"busy\"} 12");
	want_line(t, "warden_rule_enforced_total{rule=\"busy\"} 10");
	want_line(t, "warden_rule_dryrun_total{rule=\"busy\"} 2");
	/* idle rules too: 0 says a rule never fires */
	want_line(t, "warden_rule_hits_total{rule=\"idle\"} 0");
	want_line(t, "warden_rule_enforced_total{rule=\"idle\"} 0");
	want_line(t, "warden_rule_dryrun_total{rule=\"idle\"} 0");
	/* the exposition format: the text ends with a newline */
	assert_true(len > 0 && t[len - 1] == '\n');
	free(t);
}

/* Rule names the loader would refuse still come out parseable. */
static void
test_format_rule_escaping(void **state)
{
	static const char *const names[] = { "a\"b\\c\nd", "x\ty\xff" };
	struct metrics_in in;
	struct fakers f;
	size_t len;
	char *t;

	(void)state;
	memset(&in, 0, sizeof(in));
	fake_rules(&f, names, 2);
	f.r[0].hits = 5;
	f.r[1].dryrun = 3;
	in.rs = &f.rs;
	t = format_or_fail(&in, &len);
	want_line(t, "warden_rule_hits_total{rule=\"a\\\"b\\\\c\\nd\"} 5");
	want_line(t, "warden_rule_dryrun_total{rule=\"x?y?\"} 3");
	free(t);
}

/* No ruleset: the families are there, with no rule series. */
static void
test_format_no_rules(void **state)
{
	struct metrics_in in;
	size_t len;
	char *t;

	(void)state;
	memset(&in, 0, sizeof(in));
	t = format_or_fail(&in, &len);
	want_line(t, "warden_rules 0");
	want_line(t, "warden_uptime_seconds 0");
	no_line(t, "warden_rule_hits_total{");
	free(t);
}

/* --- the histogram ---------------------------------------------------- */

/* The value of the sample line that starts with prefix ("name{le=..} "). */
static unsigned long long
value_of(const char *text, const char *prefix)
{
	const char *p = text;
	size_t n = strlen(prefix);

	for (; (p = strstr(p, prefix)) != NULL; p++)
		if (p == text || p[-1] == '\n')
			return strtoull(p + n, NULL, 10);
	fail_msg("no line starting \"%s\"", prefix);
	return 0;
}

static void
test_histogram(void **state)
{
	struct metrics_in in;
	const char *p;
	unsigned long long prev = 0, v;
	size_t len, nb = 0;
	char *t;

	(void)state;
	memset(&in, 0, sizeof(in));
	/*
	 * stats.h: bucket 0 holds 0 us, bucket b [2^(b-1), 2^b) us, the
	 * last one (31) everything from 2^30 us on.
	 */
	in.lat[0] = 1;		/* 0 us */
	in.lat[1] = 2;		/* 1 us */
	in.lat[3] = 4;		/* 4..7 us */
	in.lat[10] = 8;		/* 512..1023 us */
	in.lat[30] = 16;	/* 2^29..2^30-1 us */
	in.lat[31] = 32;	/* from 2^30 us: only +Inf */
	in.lat_sum_us = 1500000;
	t = format_or_fail(&in, &len);

	want_line(t, "# TYPE warden_store_latency_seconds histogram");
	/* le = 2^b us in seconds, counts cumulative */
	want_line(t, "warden_store_latency_seconds_bucket{le=\"0.000001\"} 1");
	want_line(t, "warden_store_latency_seconds_bucket{le=\"0.000002\"} 3");
	want_line(t, "warden_store_latency_seconds_bucket{le=\"0.000004\"} 3");
	want_line(t, "warden_store_latency_seconds_bucket{le=\"0.000008\"} 7");
	want_line(t, "warden_store_latency_seconds_bucket{le=\"0.000512\"} 7");
	want_line(t, "warden_store_latency_seconds_bucket{le=\"0.001024\"} "
	    "15");
	want_line(t, "warden_store_latency_seconds_bucket{le=\"536.870912\"} "
	    "15");
	want_line(t, "warden_store_latency_seconds_bucket{le=\"1073.741824\"} "
	    "31");
	want_line(t, "warden_store_latency_seconds_bucket{le=\"+Inf\"} 63");
	want_line(t, "warden_store_latency_seconds_count 63");
	want_line(t, "warden_store_latency_seconds_sum 1.500000");
	no_line(t, "warden_store_latency_seconds_bucket{le=\"2147.483648\"}");

	/* every bucket line: 31 finite + +Inf, never decreasing */
	for (p = t; (p = strstr(p, "warden_store_latency_seconds_bucket{"))
	    != NULL; p++) {
		v = strtoull(strchr(p, '}') + 2, NULL, 10);
		if (v < prev)
			fail_msg("bucket line %zu: %llu after %llu", nb, v,
			    prev);
		prev = v;
		nb++;
	}
	assert_int_equal(nb, 32);
	assert_int_equal(value_of(t, "warden_store_latency_seconds_count "),
	    value_of(t, "warden_store_latency_seconds_bucket{le=\"+Inf\"} "));
	free(t);
}

/* Empty histogram: zeros everywhere, still well formed. */
static void
test_histogram_empty(void **state)
{
	struct metrics_in in;
	size_t len;
	char *t;

	(void)state;
	memset(&in, 0, sizeof(in));
	t = format_or_fail(&in, &len);
	want_line(t, "warden_store_latency_seconds_bucket{le=\"+Inf\"} 0");
	want_line(t, "warden_store_latency_seconds_count 0");
	want_line(t, "warden_store_latency_seconds_sum 0.000000");
	free(t);
}

/* --- grammar of the whole text ------------------------------------- */

/*
 * Each line: "# HELP name text", "# TYPE name counter|gauge|histogram",
 * or a sample "name[{label="value",...}] value". A family's TYPE comes
 * before its samples, once; sample names belong to the last TYPE
 * (histograms: _bucket, _sum, _count); counters end in _total.
 */
static void
test_grammar(void **state)
{
	static const char *const names[] = { "r1", "we\"ird\\" };
	regex_t help, type, smpl;
	regmatch_t m[4];
	struct metrics_in in;
	struct fakers f;
	char fam[128] = "", ftype[16] = "", name[128], *t, *line, *save;
	size_t len, n = 0;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.lat[5] = 3;
	fake_rules(&f, names, 2);
	in.rs = &f.rs;
	t = format_or_fail(&in, &len);
	assert_int_equal(regcomp(&help, "^# HELP (warden_[a-z_]+) [^\\]+$",
	    REG_EXTENDED), 0);
	assert_int_equal(regcomp(&type, "^# TYPE (warden_[a-z_]+) "
	    "(counter|gauge|histogram)$", REG_EXTENDED), 0);
	assert_int_equal(regcomp(&smpl, "^(warden_[a-z_]+)"
	    "(\\{[a-z]+=\"([^\"\\\\]|\\\\[\"\\\\n])*\"\\})? "
	    "([0-9]+(\\.[0-9]+)?)$", REG_EXTENDED), 0);
	for (line = strtok_r(t, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save), n++) {
		if (regexec(&help, line, 2, m, 0) == 0)
			continue;
		if (regexec(&type, line, 3, m, 0) == 0) {
			snprintf(fam, sizeof(fam), "%.*s",
			    (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so);
			snprintf(ftype, sizeof(ftype), "%.*s",
			    (int)(m[2].rm_eo - m[2].rm_so), line + m[2].rm_so);
			if (strcmp(ftype, "counter") == 0 &&
			    strstr(fam, "_total") != fam + strlen(fam) - 6)
				fail_msg("counter %s lacks _total", fam);
			continue;
		}
		if (regexec(&smpl, line, 2, m, 0) != 0)
			fail_msg("line %zu is not HELP, TYPE or a sample: "
			    "\"%s\"", n + 1, line);
		snprintf(name, sizeof(name), "%.*s",
		    (int)(m[1].rm_eo - m[1].rm_so), line + m[1].rm_so);
		if (strcmp(ftype, "histogram") == 0) {
			if (strncmp(name, fam, strlen(fam)) != 0 ||
			    (strcmp(name + strlen(fam), "_bucket") != 0 &&
			    strcmp(name + strlen(fam), "_sum") != 0 &&
			    strcmp(name + strlen(fam), "_count") != 0))
				fail_msg("line %zu: %s in histogram %s",
				    n + 1, name, fam);
		} else if (strcmp(name, fam) != 0)
			fail_msg("line %zu: sample %s after TYPE %s", n + 1,
			    name, fam);
	}
	regfree(&help);
	regfree(&type);
	regfree(&smpl);
	free(t);
	assert_true(n > 60);
}

/* --- collect ---------------------------------------------------------- */

static void
test_collect(void **state)
{
	static const char *const names[] = { "r" };
	struct metrics_in in;
	struct fakers f;
	unsigned i;

	(void)state;
	stats_reset();
	for (i = 0; i < ST_COUNT; i++)
		stats_add((enum stat_id)i, 10 + i);
	stats_store_latency(3);		/* bucket 2 */
	stats_store_latency(3);
	stats_store_latency(100);	/* bucket 7: [64, 128) */
	fake_rules(&f, names, 1);
	metrics_collect(&in, &f.rs, 42);
	assert_int_equal(in.uptime_s, 42);
	assert_ptr_equal(in.rs, &f.rs);
	for (i = 0; i < ST_COUNT; i++)
		if (in.counters[i] != 10 + i)
			fail_msg("counter %u: got %llu, want %u", i,
			    (unsigned long long)in.counters[i], 10 + i);
	for (i = 0; i < STATS_LAT_BUCKETS; i++)
		if (in.lat[i] != (i == 2 ? 2u : i == 7 ? 1u : 0u))
			fail_msg("bucket %u: got %llu", i,
			    (unsigned long long)in.lat[i]);
	assert_int_equal(in.lat_sum_us, 106);
	stats_reset();
}

/* --- writing the file ----------------------------------------------- */

static size_t
dir_entries(const char *dir)
{
	struct dirent *e;
	size_t n = 0;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
slurp(const char *path, char *buf, size_t len)
{
	FILE *fp = fopen(path, "r");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, len - 1, fp);
	buf[n] = '\0';
	fclose(fp);
}

static void
test_write(void **state)
{
	char dir[256], path[300], sub[300], err[512], buf[256];
	struct stat st;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/warden.prom", dir);

	assert_int_equal(metrics_write(path, "a 1\n", 4, err, sizeof(err)),
	    0);
	slurp(path, buf, sizeof(buf));
	assert_string_equal(buf, "a 1\n");
	assert_int_equal(stat(path, &st), 0);
	/* node_exporter runs as another user: readable by all */
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(dir_entries(dir), 1);

	/* replaced whole, not appended to */
	assert_int_equal(metrics_write(path, "b 22\n", 5, err, sizeof(err)),
	    0);
	slurp(path, buf, sizeof(buf));
	assert_string_equal(buf, "b 22\n");
	assert_int_equal(dir_entries(dir), 1);

	/* a directory that does not exist: an error naming the path */
	snprintf(sub, sizeof(sub), "%s/nope/warden.prom", dir);
	err[0] = '\0';
	assert_int_equal(metrics_write(sub, "x\n", 2, err, sizeof(err)), -1);
	if (strstr(err, sub) == NULL || strstr(err, "No such file") == NULL)
		fail_msg("error \"%s\" does not name %s and ENOENT", err, sub);

	/* the target is a directory: rename fails, no temporary left */
	snprintf(sub, sizeof(sub), "%s/adir", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	err[0] = '\0';
	assert_int_equal(metrics_write(sub, "x\n", 2, err, sizeof(err)), -1);
	if (strstr(err, "rename") == NULL)
		fail_msg("error \"%s\" does not say rename", err);
	assert_int_equal(dir_entries(dir), 2);	/* warden.prom, adir */
	slurp(path, buf, sizeof(buf));
	assert_string_equal(buf, "b 22\n");

	/* empty path */
	assert_int_equal(metrics_write("", "x\n", 2, err, sizeof(err)), -1);
	tu_rmtree(dir);
}

/* --- rate-limited failure lines ------------------------------------- */

/* Runs fn with stderr captured; the text goes to got. */
static void
capture(void (*fn)(void *), void *arg, char *got, size_t len)
{
	char path[256];
	const char *t = getenv("TMPDIR");
	int fd, saved;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/warden-metrics.XXXXXX",
	    t != NULL ? t : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
	fn(arg);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, got, len - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n >= 0);
	got[n] = '\0';
}

struct upd {
	struct metrics_state st;
	const char	*bad, *good;
	int		rcs[8];
};

/*
 * Fails at t = 1000 (logged), 1001 and 1299 (quiet), 1300 (logged with
 * 2 quiet), 1301 (quiet), then succeeds at 1302 (logged: back, 1 quiet)
 * and at 1303 (nothing), then fails at 1304 (a new episode: logged).
 */
static void
run_updates(void *arg)
{
	static const int64_t when[] = { 1000, 1001, 1299, 1300, 1301, 1302,
	    1303, 1304 };
	struct upd *u = arg;
	size_t i;

	for (i = 0; i < NELEM(when); i++)
		u->rcs[i] = metrics_update(&u->st, i == 5 || i == 6 ? u->good :
		    u->bad, NULL, 1, when[i]);
}

static void
test_update_rate_limit(void **state)
{
	static const int want_rc[] = { -1, -1, -1, -1, -1, 0, 0, -1 };
	char dir[256], bad[300], good[300], got[4096], want[2048];
	struct upd u;
	long pid = (long)getpid();
	size_t i;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(bad, sizeof(bad), "%s/missing/w.prom", dir);
	snprintf(good, sizeof(good), "%s/w.prom", dir);
	memset(&u, 0, sizeof(u));
	u.bad = bad;
	u.good = good;
	log_open(LOG_SINK_STDERR, "warden", LOG_MAIL, LOGL_INFO);
	capture(run_updates, &u, got, sizeof(got));
	for (i = 0; i < NELEM(want_rc); i++)
		if (u.rcs[i] != want_rc[i])
			fail_msg("update %zu: got %d, want %d", i, u.rcs[i],
			    want_rc[i]);
	snprintf(want, sizeof(want),
	    "warden[%ld]: metrics: cannot create a file beside %s: No such "
	    "file or directory\n"
	    "warden[%ld]: metrics: cannot create a file beside %s: No such "
	    "file or directory (2 more failures since the last line)\n"
	    "warden[%ld]: metrics: %s written again (1 more failures since "
	    "the last line)\n"
	    "warden[%ld]: metrics: cannot create a file beside %s: No such "
	    "file or directory\n", pid, bad, pid, bad, pid, good, pid, bad);
	if (strcmp(got, want) != 0)
		fail_msg("got:\n%swant:\n%s", got, want);
	/* the good writes made a real exposition file */
	slurp(good, want, sizeof(want));
	if (strncmp(want, "# HELP warden_uptime_seconds ", 29) != 0)
		fail_msg("file starts \"%.40s\"", want);
	tu_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_esc),
		cmocka_unit_test(test_format_counters),
		cmocka_unit_test(test_format_rule_escaping),
		cmocka_unit_test(test_format_no_rules),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_histogram_empty),
		cmocka_unit_test(test_grammar),
		cmocka_unit_test(test_collect),
		cmocka_unit_test(test_write),
		cmocka_unit_test(test_update_rate_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_stats.c - unit tests for stats.c: stats_reset, stats_add/get,
 * stats_decision per action and in dry-run, the store latency histogram
 * and its p99, the exact "stats:" lines (global and per rule), stats_log
 * writing one line per rule (idle ones too) and stats_carry across a
 * reload.
 * Expected values: the line formats of DESIGN.md §5 and README "Logs"
 * (which adds quarantine= and store_fallbacks=); the counting rules of
 * DESIGN.md §5 (reject=, tempfail= ... count enforced verdicts only,
 * dryrun= the would-be ones); p99 worked out by hand from the bucket
 * definition in stats.c ("[0,1us), [1,2), [2,4) ... up to 2^31 us",
 * reported as the upper bound of the bucket where 99% is reached).
 * Counters are process globals: every test starts with stats_reset.
 * Threads: none. Memory: rulesets are unreferenced (ASan checks).
 */
#include "testutil.h"

#include <fcntl.h>
#include <syslog.h>

#include "engine.h"
#include "log.h"
#include "rules.h"
#include "stats.h"
#include "tu_rules.h"

#define WANT_INT(row, what, got, want) do {				\
	unsigned long long g_ = (unsigned long long)(got);		\
	unsigned long long w_ = (unsigned long long)(want);		\
	if (g_ != w_)							\
		fail_msg("%s: %s: got %llu, want %llu", (row), (what),	\
		    g_, w_);						\
} while (0)

#define WANT_STR(row, what, got, want) do {				\
	const char *g_ = (got), *w_ = (want);				\
	if (strcmp(g_, w_) != 0)					\
		fail_msg("%s: %s: got \"%s\", want \"%s\"", (row),	\
		    (what), g_, w_);					\
} while (0)

static const char *const stat_names[ST_COUNT] = {
	"connections", "messages", "rcpts", "accept", "reject", "tempfail",
	"discard", "quarantine", "dryrun", "store_calls", "store_errors",
	"store_fallbacks", "reloads", "reload_failures", "nomem",
};

static int
setup(void **state)
{
	(void)state;
	stats_reset();
	return 0;
}

/* --- counters ----------------------------------------------------- */

static void
test_add_get_reset(void **state)
{
	unsigned i;

	(void)state;
	for (i = 0; i < ST_COUNT; i++)
		WANT_INT(stat_names[i], "after reset", stats_get(i), 0);
	/* distinct values so that a swapped index shows */
	for (i = 0; i < ST_COUNT; i++) {
		stats_add(i, 100 + i);
		stats_add(i, 1);
		stats_add(i, 0);
	}
	for (i = 0; i < ST_COUNT; i++)
		WANT_INT(stat_names[i], "after adds", stats_get(i), 101 + i);
	/* 64 bits: no wrap at 2^32 */
	stats_add(ST_STORE_CALLS, 0xffffffffULL);
	WANT_INT("store_calls", "past 2^32", stats_get(ST_STORE_CALLS),
	    0xffffffffULL + 101 + ST_STORE_CALLS);
	stats_store_latency(5);
	stats_reset();
	for (i = 0; i < ST_COUNT; i++)
		WANT_INT(stat_names[i], "after second reset", stats_get(i), 0);
	WANT_INT("p99", "after reset", stats_store_p99(), 0);
}

/*
 * One decision each; want: the one counter that moves (ST_COUNT: none).
 * Dry-run counts as dryrun whatever the action; log, tag and continue
 * are not verdicts and move no global counter.
 */
static const struct {
	const char	*name;
	enum action	action;
	int		dryrun, store_error;
	int		want;
} dec_cases[] = {
	{ "accept", ACTION_ACCEPT, 0, 0, ST_ACCEPT },
	{ "reject", ACTION_REJECT, 0, 0, ST_REJECT },
	{ "tempfail", ACTION_TEMPFAIL, 0, 0, ST_TEMPFAIL },
	{ "discard", ACTION_DISCARD, 0, 0, ST_DISCARD },
	{ "quarantine", ACTION_QUARANTINE, 0, 0, ST_QUARANTINE },
	{ "log", ACTION_LOG, 0, 0, ST_COUNT },
	{ "tag", ACTION_TAG, 0, 0, ST_COUNT },
	{ "continue", ACTION_CONTINUE, 0, 0, ST_COUNT },
	{ "dryrun reject", ACTION_REJECT, 1, 0, ST_DRYRUN },
	{ "dryrun tempfail", ACTION_TEMPFAIL, 1, 0, ST_DRYRUN },
	{ "dryrun accept", ACTION_ACCEPT, 1, 0, ST_DRYRUN },
	{ "dryrun discard", ACTION_DISCARD, 1, 0, ST_DRYRUN },
	{ "dryrun quarantine", ACTION_QUARANTINE, 1, 0, ST_DRYRUN },
	{ "dryrun log", ACTION_LOG, 1, 0, ST_DRYRUN },
	/* on_error=tempfail is an enforced tempfail */
	{ "store error tempfail", ACTION_TEMPFAIL, 0, 1, ST_TEMPFAIL },
	/* on_error=accept lets the event continue: no verdict */
	{ "store error accept", ACTION_CONTINUE, 0, 1, ST_COUNT },
};

static void
test_decision(void **state)
{
	static struct rule r;
	struct engine_decision d;
	struct sess s;
	size_t i;
	unsigned k;

	(void)state;
	r.name = (char *)"r";
	sess_init(&s);
	for (i = 0; i < NELEM(dec_cases); i++) {
		stats_reset();
		memset(&d, 0, sizeof(d));
		d.sess = &s;
		d.stage = STAGE_ENVRCPT;
		d.rule = &r;
		d.action = dec_cases[i].action;
		d.dryrun = dec_cases[i].dryrun;
		d.store_error = dec_cases[i].store_error;
		stats_decision(&d);
		stats_decision(&d);
		for (k = 0; k < ST_COUNT; k++)
			WANT_INT(dec_cases[i].name, stat_names[k],
			    stats_get(k), (int)k == dec_cases[i].want ? 2 : 0);
	}
}

/* --- latency histogram -------------------------------------------- */

struct lat {
	uint64_t	us;
	unsigned	n;
};

#define P(k)	((uint64_t)1 << (k))

/*
 * Bucket b >= 1 holds [2^(b-1), 2^b) us, bucket 0 holds 0; the last
 * (b = 31) holds everything from 2^30 on. p99 is the upper bound 2^b of
 * the first bucket where the running count reaches 99% of all samples.
 */
static const struct {
	const char	*name;
	struct lat	v[4];
	uint64_t	want;
} p99_cases[] = {
	{ "none", { { 0, 0 } }, 0 },
	{ "one 0us", { { 0, 1 } }, 1 },
	{ "one 1us", { { 1, 1 } }, 2 },
	{ "one 2us", { { 2, 1 } }, 4 },
	{ "one 3us", { { 3, 1 } }, 4 },
	{ "one 4us", { { 4, 1 } }, 8 },
	{ "one 7us", { { 7, 1 } }, 8 },
	{ "one 8us", { { 8, 1 } }, 16 },
	{ "one 1000us", { { 1000, 1 } }, 1024 },	/* [512, 1024) */
	{ "one 1023us", { { 1023, 1 } }, 1024 },
	{ "one 1024us", { { 1024, 1 } }, 2048 },
	{ "2^30 - 1", { { P(30) - 1, 1 } }, P(30) },
	{ "2^30", { { P(30), 1 } }, P(31) },
	{ "2^31", { { P(31), 1 } }, P(31) },		/* capped */
	{ "2^40", { { P(40), 1 } }, P(31) },
	{ "max", { { UINT64_MAX, 1 } }, P(31) },
	/* 99 of 100 in [4,8): 99% reached there */
	{ "99 fast 1 slow", { { 5, 99 }, { 100000, 1 } }, 8 },
	/* 98 of 100: not yet; the slow ones are in [65536, 131072) */
	{ "98 fast 2 slow", { { 5, 98 }, { 100000, 2 } }, 131072 },
	/* exactly 99%: 198 of 200 in [8, 16) */
	{ "198 of 200", { { 10, 198 }, { 5000, 2 } }, 16 },
	{ "197 of 200", { { 10, 197 }, { 5000, 3 } }, 8192 },
	/* spread: 50 in [1,2), 45 in [2,4), 4 in [16,32), 1 in [256,512) */
	{ "spread 100", { { 1, 50 }, { 3, 45 }, { 20, 4 }, { 300, 1 } }, 32 },
	{ "spread 99% at 95+4", { { 1, 50 }, { 3, 45 }, { 20, 4 },
	    { 300, 2 } }, 512 },
	/* all zero */
	{ "1000 at 0", { { 0, 1000 } }, 1 },
	/* 1% tail alone never moves p99 up: 990 + 10 of 1000 */
	{ "990 + 10", { { 100, 990 }, { 10000, 10 } }, 128 },
	{ "989 + 11", { { 100, 989 }, { 10000, 11 } }, 16384 },
};

/*
 * stats_store_latency_read: the per-bucket counts (not cumulative) of
 * the same definition, and the exact sum of the microseconds given;
 * stats_lat_bound_us: 2^b, none (0) for the last bucket.
 */
static void
test_latency_read(void **state)
{
	static const uint64_t us[] = { 0, 1, 2, 3, 4, 1000, 1023, 1024,
	    P(30) - 1, P(30), P(40) };
	uint64_t n[STATS_LAT_BUCKETS], sum = 1, want_sum = 0;
	unsigned b;
	size_t i;

	(void)state;
	stats_reset();
	stats_store_latency_read(n, &sum);
	for (b = 0; b < STATS_LAT_BUCKETS; b++)
		WANT_INT("empty", "bucket", n[b], 0);
	WANT_INT("empty", "sum", sum, 0);
	for (i = 0; i < NELEM(us); i++) {
		stats_store_latency(us[i]);
		want_sum += us[i];
	}
	stats_store_latency_read(n, &sum);
	WANT_INT("11 values", "sum", sum, want_sum);
	/* by hand: 0 -> b0; 1 -> b1; 2, 3 -> b2; 4 -> b3; 1000, 1023 ->
	 * b10 [512, 1024); 1024 -> b11; 2^30 - 1 -> b30; 2^30, 2^40 -> b31 */
	for (b = 0; b < STATS_LAT_BUCKETS; b++) {
		uint64_t want = b == 0 || b == 1 || b == 3 || b == 11 ||
		    b == 30 ? 1 : b == 2 || b == 10 || b == 31 ? 2 : 0;
		char row[32];

		snprintf(row, sizeof(row), "bucket %u", b);
		WANT_INT(row, "count", n[b], want);
	}
	WANT_INT("bound 0", "stats_lat_bound_us", stats_lat_bound_us(0), 1);
	WANT_INT("bound 1", "stats_lat_bound_us", stats_lat_bound_us(1), 2);
	WANT_INT("bound 10", "stats_lat_bound_us", stats_lat_bound_us(10),
	    1024);
	WANT_INT("bound 30", "stats_lat_bound_us", stats_lat_bound_us(30),
	    P(30));
	WANT_INT("bound 31 (last)", "stats_lat_bound_us",
	    stats_lat_bound_us(STATS_LAT_BUCKETS - 1), 0);
	stats_reset();
	stats_store_latency_read(n, &sum);
	WANT_INT("after reset", "sum", sum, 0);
}

static void
test_p99(void **state)
{
	size_t i, j;
	unsigned k;

	(void)state;
	for (i = 0; i < NELEM(p99_cases); i++) {
		stats_reset();
		for (j = 0; j < NELEM(p99_cases[i].v); j++)
			for (k = 0; k < p99_cases[i].v[j].n; k++)
				stats_store_latency(p99_cases[i].v[j].us);
		WANT_INT(p99_cases[i].name, "stats_store_p99",
		    stats_store_p99(), p99_cases[i].want);
	}
}

/* --- the lines ---------------------------------------------------- */

static void
test_format(void **state)
{
	/* README "Logs": the DESIGN.md §5 line plus quarantine= and
	 * store_fallbacks= */
	static const char want[] = "stats: uptime=300 connections=1200 "
	    "messages=1100 rcpts=2300 accept=1 reject=12 tempfail=3 "
	    "discard=2 quarantine=5 dryrun=4 store_calls=2301 store_errors=7 "
	    "store_fallbacks=6 store_p99_us=8 nomem=11";
	static const char zero[] = "stats: uptime=0 connections=0 "
	    "messages=0 rcpts=0 accept=0 reject=0 tempfail=0 discard=0 "
	    "quarantine=0 dryrun=0 store_calls=0 store_errors=0 "
	    "store_fallbacks=0 store_p99_us=0 nomem=0";
	char buf[512], small[64];
	size_t i, j;

	(void)state;
	WANT_STR("all zero", "stats_format", stats_format(0, buf,
	    sizeof(buf)), zero);
	stats_add(ST_CONNECTIONS, 1200);
	stats_add(ST_MESSAGES, 1100);
	stats_add(ST_RCPTS, 2300);
	stats_add(ST_ACCEPT, 1);
	stats_add(ST_REJECT, 12);
	stats_add(ST_TEMPFAIL, 3);
	stats_add(ST_DISCARD, 2);
	stats_add(ST_QUARANTINE, 5);
	stats_add(ST_DRYRUN, 4);
	stats_add(ST_STORE_CALLS, 2301);
	stats_add(ST_STORE_ERRORS, 7);
	stats_add(ST_STORE_FALLBACKS, 6);
	stats_add(ST_NOMEM, 11);
	stats_store_latency(5);			/* [4, 8) */
	WANT_STR("design example", "stats_format", stats_format(300, buf,
	    sizeof(buf)), want);
	/* the return value is the buffer */
	assert_ptr_equal(stats_format(300, buf, sizeof(buf)), buf);
	/* 64-bit counters print whole: 2^32 + 2301 */
	stats_add(ST_STORE_CALLS, 4294967296ULL);
	if (strstr(stats_format(300, buf, sizeof(buf)),
	    " store_calls=4294969597 ") == NULL)
		fail_msg("past 2^32: got \"%s\", want store_calls=4294969597",
		    buf);
	stats_add(ST_STORE_CALLS, (uint64_t)-4294967296LL);	/* back */

	/* a small buffer: a NUL-terminated prefix, nothing past it */
	for (i = 1; i < sizeof(small); i++) {
		char row[32];

		snprintf(row, sizeof(row), "len %zu", i);
		memset(small, 0xa5, sizeof(small));
		stats_format(300, small, i);
		for (j = i; j < sizeof(small); j++)
			if ((unsigned char)small[j] != 0xa5)
				fail_msg("%s: byte %zu written", row, j);
		WANT_INT(row, "strlen", strlen(small), i - 1);
		if (memcmp(small, want, i - 1) != 0)
			fail_msg("%s: got \"%s\", not a prefix", row, small);
	}
}

static void
test_format_rule(void **state)
{
	static struct rule r;
	char buf[256];

	(void)state;
	r.name = (char *)"recipients-per-user";
	WANT_STR("idle", "stats_format_rule", stats_format_rule(&r, buf,
	    sizeof(buf)), "stats: rule=recipients-per-user hits=0 "
	    "enforced=0 dryrun=0");
	atomic_store(&r.hits, 12);
	atomic_store(&r.enforced, 9);
	atomic_store(&r.dryrun, 3);
	WANT_STR("busy", "stats_format_rule", stats_format_rule(&r, buf,
	    sizeof(buf)), "stats: rule=recipients-per-user hits=12 "
	    "enforced=9 dryrun=3");
	atomic_store(&r.hits, 18446744073709551615ULL);
	WANT_STR("max", "stats_format_rule", stats_format_rule(&r, buf,
	    sizeof(buf)), "stats: rule=recipients-per-user "
	    "hits=18446744073709551615 enforced=9 dryrun=3");
	memset(buf, 0xa5, sizeof(buf));
	stats_format_rule(&r, buf, 20);
	WANT_STR("cut", "stats_format_rule", buf, "stats: rule=recipie");
	if ((unsigned char)buf[20] != 0xa5)
		fail_msg("cut: byte 20 written");
}

/* --- rulesets: stats_log and stats_carry -------------------------- */

#define RULE(name, stage)						\
	"  { name = \"" name "\"; stage = \"" stage "\";"		\
	" action = \"log\"; }"

static struct ruleset *
load(const char *text)
{
	return tu_load(text, ".", "stats rules");
}

static struct rule *
find(struct ruleset *rs, const char *name)
{
	size_t i;

	for (i = 0; i < rs->nrules; i++)
		if (strcmp(rs->rules[i]->name, name) == 0)
			return rs->rules[i];
	fail_msg("no rule %s", name);
	return NULL;
}

static void
set3(struct rule *r, uint64_t h, uint64_t e, uint64_t d)
{
	atomic_store(&r->hits, h);
	atomic_store(&r->enforced, e);
	atomic_store(&r->dryrun, d);
}

static void
want3(const char *row, const struct rule *r, uint64_t h, uint64_t e,
    uint64_t d)
{
	WANT_INT(row, "hits", atomic_load(&r->hits), h);
	WANT_INT(row, "enforced", atomic_load(&r->enforced), e);
	WANT_INT(row, "dryrun", atomic_load(&r->dryrun), d);
}

static void
test_carry(void **state)
{
	static const char old_text[] = "rules = (\n"
	    RULE("gone", "connect") ",\n"
	    RULE("kept", "envfrom") ",\n"
	    RULE("moved", "helo") "\n"
	    ");\n";
	/* new order, a new rule, "moved" now at another stage */
	static const char new_text[] = "rules = (\n"
	    RULE("fresh", "connect") ",\n"
	    RULE("moved", "envrcpt") ",\n"
	    RULE("kept", "envfrom") "\n"
	    ");\n";
	struct ruleset *from, *to;

	(void)state;
	from = load(old_text);
	to = load(new_text);
	set3(find(from, "gone"), 5, 4, 1);
	set3(find(from, "kept"), 70, 60, 10);
	set3(find(from, "moved"), 3, 0, 3);
	want3("fresh before", find(to, "fresh"), 0, 0, 0);

	stats_carry(from, to);
	want3("kept", find(to, "kept"), 70, 60, 10);
	want3("moved", find(to, "moved"), 3, 0, 3);
	want3("fresh (only in new)", find(to, "fresh"), 0, 0, 0);
	/* the old ruleset is read, not changed */
	want3("old gone", find(from, "gone"), 5, 4, 1);
	want3("old kept", find(from, "kept"), 70, 60, 10);

	/* no previous ruleset (first load): nothing changes */
	set3(find(to, "fresh"), 1, 1, 0);
	stats_carry(NULL, to);
	want3("from NULL fresh", find(to, "fresh"), 1, 1, 0);
	want3("from NULL kept", find(to, "kept"), 70, 60, 10);
	tu_drop(from);
	tu_drop(to);
}

/*
 * stats_log writes the global line and one line per rule in load order,
 * idle rules included, each "warden[PID]: " on the stderr sink.
 */
static void
test_log_lines(void **state)
{
	static const char text[] = "rules = (\n"
	    RULE("busy", "envfrom") ",\n"
	    RULE("idle", "connect") "\n"
	    ");\n";
	char path[256], want[1024], got[1024];
	struct ruleset *rs;
	const char *t = getenv("TMPDIR");
	int fd, saved;
	ssize_t n;
	long pid = (long)getpid();

	(void)state;
	rs = load(text);
	set3(find(rs, "busy"), 2, 1, 1);
	stats_add(ST_CONNECTIONS, 3);
	log_open(LOG_SINK_STDERR, "warden", LOG_MAIL, LOGL_INFO);

	snprintf(path, sizeof(path), "%s/warden-stats.XXXXXX",
	    t != NULL ? t : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
	stats_log(rs, 60);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, got, sizeof(got) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n >= 0);
	got[n] = '\0';

	snprintf(want, sizeof(want),
	    "warden[%ld]: stats: uptime=60 connections=3 messages=0 rcpts=0 "
	    "accept=0 reject=0 tempfail=0 discard=0 quarantine=0 dryrun=0 "
	    "store_calls=0 store_errors=0 store_fallbacks=0 store_p99_us=0 "
	    "nomem=0\n"
	    "warden[%ld]: stats: rule=busy hits=2 enforced=1 dryrun=1\n"
	    "warden[%ld]: stats: rule=idle hits=0 enforced=0 dryrun=0\n",
	    pid, pid, pid);
	WANT_STR("stats_log", "stderr", got, want);
	tu_drop(rs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_add_get_reset, setup,
		    tu_rules_teardown),
		cmocka_unit_test_setup_teardown(test_decision, setup,
		    tu_rules_teardown),
		cmocka_unit_test_setup_teardown(test_latency_read, setup,
		    tu_rules_teardown),
		cmocka_unit_test_setup_teardown(test_p99, setup,
		    tu_rules_teardown),
		cmocka_unit_test_setup_teardown(test_format, setup,
		    tu_rules_teardown),
		cmocka_unit_test_setup_teardown(test_format_rule, setup,
		    tu_rules_teardown),
		cmocka_unit_test_setup_teardown(test_carry, setup,
		    tu_rules_teardown),
		cmocka_unit_test_setup_teardown(test_log_lines, setup,
		    tu_rules_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

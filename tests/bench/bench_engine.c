/*
 * bench_engine.c - cost of one stage evaluation (engine_eval) on the
 * memory store with a fake clock: a 20-rule set at envrcpt (exact, CIDR,
 * glob, 2 regex; the target is 1,000,000 evaluations/s a core),
 * and the shipped rules (DIR/NAME.rules) plus 100 generated rules at
 * every stage that has rules. Also heap allocations per evaluation (the
 * stage path must allocate nothing) and 2-thread vs 1-thread throughput.
 * The store's own figures (1M vs 1k keys, RSS) are bench_store's.
 * Prints "name value unit" lines; a target, when there is one, follows
 * with PASS or BELOW. Never fails on timing, since machines differ.
 * Errors: exits 1 when a rule set fails to load or a thread cannot start.
 * This is a program, not a module: it reads the clock and has globals.
 */
#include <glob.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"
#include "engine.h"
#include "rules.h"
#include "session.h"
#include "store.h"

#define NSESS		512	/* concurrent sessions per thread */
#define EVALS		500000L	/* evaluations per timed run */
#define RUNS		3	/* best of */
#define NTHR_MAX	2
#define GEN_RULES	100
#define BENCH_T0	(1700000000LL * NS_PER_SEC)
/*
 * The fake clock moves 1 s per evaluation: with 512 sessions on distinct
 * networks a network then sees one event per 512 s, below every shipped
 * rate (the tightest is 30/1h), so sessions mostly pass as real traffic
 * does; what refuses is listed as *_refused.
 */
#define TICK_NS		NS_PER_SEC
#define TARGET_RATE	1000000.0	/* evaluations/s a core (the issue) */
#define TARGET_SCALE	1.8		/* 2 threads vs 1 on 2 cores */

/*
 * Counting allocator, as bench_match.c: glibc 2.34+ has no malloc hooks,
 * so the program interposes malloc/calloc/realloc (PCRE2 and the store
 * allocate through them) and forwards to glibc.
 */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static atomic_ulong nalloc;

void *
malloc(size_t n)
{
	atomic_fetch_add_explicit(&nalloc, 1, memory_order_relaxed);
	return __libc_malloc(n);
}

void *
calloc(size_t n, size_t m)
{
	atomic_fetch_add_explicit(&nalloc, 1, memory_order_relaxed);
	return __libc_calloc(n, m);
}

void *
realloc(void *p, size_t n)
{
	atomic_fetch_add_explicit(&nalloc, 1, memory_order_relaxed);
	return __libc_realloc(p, n);
}

static double
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double
thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t
mix(uint64_t x)
{
	/* splitmix64: session i's facts are a pure function of i. */
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* --- rule text ------------------------------------------------------- */

struct sbuf {
	char	*p;
	size_t	len, cap;
};

static void
app(struct sbuf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void
app(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len)
		abort();	/* the buffers below are sized for the text */
	b->len += (size_t)n;
}

/* Opens a rule; the caller adds match/limit and closes with rule_end. */
static void
rule_begin(struct sbuf *b, const char *name, int k, const char *stage)
{
	app(b, "{ name = \"%s-%d\"; stage = \"%s\";\n", name, k, stage);
}

static void
rule_end(struct sbuf *b, const char *action, const char *reply)
{
	app(b, "  action = \"%s\";", action);
	if (reply != NULL)
		app(b, " reply = \"%s\";", reply);
	app(b, " },\n");
}

/* n exact values "<pre><k * 100 + i><suf>". */
static void
list_of(struct sbuf *b, const char *key, const char *pre, const char *suf,
    int k, int n)
{
	int i;

	app(b, "%s = [", key);
	for (i = 0; i < n; i++)
		app(b, "%s\"%s%d%s\"", i > 0 ? ", " : "", pre, k * 100 + i,
		    suf);
	app(b, "]; ");
}

/* Eight networks, v4 and v6, that no bench session comes from. */
static void
nets_of(struct sbuf *b, int k)
{
	app(b, "client = [\"198.51.%d.0/24\", \"203.0.%d.0/26\", "
	    "\"192.0.2.%d\", \"100.%d.0.0/16\", \"2001:db8:%x::/48\", "
	    "\"2001:db8:%x00::/40\", \"2001:db8:1:%x::1\", "
	    "\"100.%d.128.0/17\"]; ", k % 256, k % 256, k % 256,
	    64 + k % 64, k, k % 256, k, 64 + (k + 7) % 64);
}

/*
 * The 20-rule set, all at envrcpt, no limits: 6 exact, 6 CIDR,
 * 6 glob, 2 regex. Sessions mostly match none of them, so a typical
 * evaluation tests all 20; the last rule refuses the "dsl-" clients
 * (1 session in 8).
 */
static void
gen_set20(struct sbuf *b)
{
	static const struct {
		const char	*key, *pre, *suf;
	} exact[] = {
		{ "rcpt", "trap", "@ourdomain.example" },
		{ "rcpt_domain", "blocked", ".example" },
		{ "sender", "spammer", "@bulk.example" },
		{ "sender_domain", "bulk", ".example" },
		{ "client_name", "bad", ".hosting.example" },
		{ "helo", "localhost", ".localdomain" },
	};
	static const char *globs[] = {
		"client_name = [\"*.dynamic.example.net\", "
		    "\"*.pool.example.org\"]",
		"helo = [\"*.local\", \"*.lan\", \"*.internal\"]",
		"sender = [\"*@*.bulk.example\", \"newsletter-*@*\"]",
		"rcpt = [\"bounce-*@*\", \"*+spam@*\"]",
		"sender_domain = [\"*.xyz\", \"*.top\", \"*.click\"]",
		"rcpt_domain = [\"*.invalid\", \"*.test\"]",
		/* the two regexes */
		"sender = [\"/^[0-9a-f]{16,}@/\"]",
		"client_name = [\"/^(dsl|dyn|ppp|cable)-[0-9]+-[0-9]+[.]/\"]",
	};
	static const char *rej = "550 5.7.1 Rejected by policy";
	size_t i;
	int k;

	app(b, "rules = (\n");
	for (i = 0; i < NELEM(exact); i++) {
		rule_begin(b, "exact", (int)i, "envrcpt");
		app(b, "  match = { ");
		list_of(b, exact[i].key, exact[i].pre, exact[i].suf, 0, 20);
		app(b, "};\n");
		rule_end(b, "reject", rej);
	}
	for (k = 0; k < 6; k++) {
		rule_begin(b, "cidr", k, "envrcpt");
		app(b, "  match = { ");
		nets_of(b, k);
		app(b, "};\n");
		rule_end(b, "reject", rej);
	}
	for (i = 0; i < NELEM(globs); i++) {
		rule_begin(b, i < 6 ? "glob" : "regex", (int)i, "envrcpt");
		app(b, "  match = { %s; };\n", globs[i]);
		/* the last rule: no trailing comma */
		if (i + 1 < NELEM(globs))
			rule_end(b, "reject", rej);
		else
			app(b, "  action = \"reject\"; reply = \"%s\"; }\n);\n",
			    rej);
	}
}

/* One generated rule k at stage st (rotating shapes per stage). */
static void
gen_one(struct sbuf *b, int k, enum stage st)
{
	static const char *rej = "550 5.7.1 Rejected by policy";
	static const char *tmp = "450 4.7.1 Try again in %{retry_after}s";
	const char *sn = stage_name(st);

	rule_begin(b, "gen", k, sn);
	/*
	 * Every eighth rule counts a rate for nearly every session: the
	 * store is on the path of every stage but header.
	 */
	if (k % 8 == 0 && st != STAGE_HEADER) {
		app(b, "  match = { not = { ");
		nets_of(b, k);
		app(b, "}; };\n  limit = { key = [\"client_ip\"]; rate = "
		    "\"1000/1h\"; burst = 100; };\n");
		rule_end(b, "tempfail", tmp);
		return;
	}
	app(b, "  match = { ");
	switch (st) {
	case STAGE_CONNECT:
		if (k % 3 == 0)
			nets_of(b, k);
		else if (k % 3 == 1)
			app(b, "client_name = [\"*.dyn%d.example.net\", "
			    "\"*.pool%d.example.org\"]; ", k, k);
		else
			app(b, "client_name = "
			    "[\"/^(ppp|dial)[0-9]+-%d[.]/\"]; ", k);
		break;
	case STAGE_HELO:
		if (k % 3 == 0)
			list_of(b, "helo", "badhelo", ".example", k, 6);
		else if (k % 3 == 1)
			app(b, "helo = [\"*.spam%d.example\", \"*.lan%d\"]; ",
			    k, k);
		else
			app(b, "helo = [\"/^[0-9]+[.][0-9]+[.]%d[.]/\"]; ", k);
		break;
	case STAGE_ENVFROM:
		if (k % 4 == 0)
			list_of(b, "sender", "spammer", "@bulk.example", k, 10);
		else if (k % 4 == 1)
			list_of(b, "sender_domain", "bulk", ".example", k, 10);
		else if (k % 4 == 2)
			app(b, "sender = [\"*@*.bulk%d.example\"]; "
			    "auth = false; ", k);
		else
			app(b, "any = ( { auth_user = [\"olduser%d\"]; }, "
			    "{ size_over = %d; } ); ", k, 30000000 + k);
		break;
	case STAGE_ENVRCPT:
		if (k % 4 == 0)
			list_of(b, "rcpt", "trap", "@ourdomain.example", k, 10);
		else if (k % 4 == 1)
			list_of(b, "rcpt_domain", "blocked", ".example", k, 10);
		else if (k % 4 == 2)
			app(b, "rcpt = [\"bounce%d-*@*\"]; not = { "
			    "auth = true; }; ", k);
		else
			app(b, "rcpt = [\"/^list-%d-[a-z]+@/\"]; ", k);
		break;
	case STAGE_DATA:
		if (k % 2 == 0)
			app(b, "rcpt_count_over = %d; auth = false; ",
			    100 + k);
		else
			nets_of(b, k);
		break;
	case STAGE_HEADER:
		if (k % 2 == 0)
			app(b, "header = [\"Subject\"]; header_value = "
			    "[\"/(casino|lottery)-%d/\"]; ", k);
		else
			app(b, "header = [\"X-Mailer\"]; header_value = "
			    "[\"BulkMailer %d*\", \"MassSend %d\"]; ", k, k);
		break;
	default:	/* STAGE_EOM */
		if (k % 2 == 0)
			app(b, "size_over = %d; ", 40000000 + k);
		else
			nets_of(b, k);
		break;
	}
	app(b, "};\n");
	rule_end(b, "reject", rej);
}

/*
 * 100 rules over the stages the shipped files do not cover much, plus a
 * few that match part of the traffic (log, tag, refuse), as a site's own
 * rules would.
 */
static void
gen_100(struct sbuf *b)
{
	static const struct {
		enum stage	st;
		int		n;
	} mixes[] = {
		{ STAGE_CONNECT, 10 }, { STAGE_HELO, 10 },
		{ STAGE_ENVFROM, 20 }, { STAGE_ENVRCPT, 30 },
		{ STAGE_DATA, 6 }, { STAGE_HEADER, 14 }, { STAGE_EOM, 7 },
	};
	size_t i;
	int k = 0, j;

	app(b, "rules = (\n");
	for (i = 0; i < NELEM(mixes); i++)
		for (j = 0; j < mixes[i].n; j++)
			gen_one(b, k++, mixes[i].st);
	/* three that match a share of the sessions (k = 97..99) */
	rule_begin(b, "gen-log-plain", k++, "helo");
	app(b, "  match = { tls = false; };\n");
	rule_end(b, "log", NULL);
	rule_begin(b, "gen-big", k++, "envfrom");
	app(b, "  match = { size_over = 25000000; };\n");
	rule_end(b, "reject", "552 5.3.4 Message too big");
	app(b, "{ name = \"gen-tag-%d\"; stage = \"eom\"; "
	    "match = { auth = false; }; action = \"tag\"; "
	    "add_header = \"X-Warden: checked by %%{rule}\"; }\n);\n", k++);
	if (k != GEN_RULES)
		abort();
}

/* --- loading --------------------------------------------------------- */

static struct ruleset *
load_set20(const struct rules_opts *o, struct diag *d)
{
	static char text[32768];
	struct sbuf b = { text, 0, sizeof(text) };

	gen_set20(&b);
	return rules_load_buf("set20.rules", ".", text, b.len, o, d);
}

/* DIR/NAME.rules (glob order), then the generated file (written to tmp). */
static struct ruleset *
load_shipped(const char *dir, const struct rules_opts *o, struct diag *d)
{
	static char text[131072];
	struct sbuf b = { text, 0, sizeof(text) };
	const char *files[64];
	char pat[4096], tmp[] = "/tmp/warden-bench-XXXXXX";
	struct ruleset *rs = NULL;
	glob_t g;
	size_t i, n = 0;
	FILE *f;
	int fd;

	snprintf(pat, sizeof(pat), "%s/*.rules", dir);
	if (glob(pat, 0, NULL, &g) != 0) {
		fprintf(stderr, "bench_engine: no %s\n", pat);
		return NULL;
	}
	for (i = 0; i < g.gl_pathc && n < NELEM(files) - 1; i++)
		files[n++] = g.gl_pathv[i];
	gen_100(&b);
	if ((fd = mkstemp(tmp)) == -1 || (f = fdopen(fd, "w")) == NULL) {
		perror("bench_engine: mkstemp");
		globfree(&g);
		return NULL;
	}
	if (fwrite(text, 1, b.len, f) != b.len || fclose(f) != 0)
		perror("bench_engine: write");
	else {
		files[n++] = tmp;
		rs = rules_load(files, n, o, d);
	}
	unlink(tmp);
	printf("shipped_files %zu files\n", g.gl_pathc);
	globfree(&g);
	return rs;
}

/* --- sessions -------------------------------------------------------- */

/*
 * Session i of a thread: a realistic mix. 1 in 8 clients on IPv6, every
 * session on its own network; 1 in 4 without reverse DNS ("unknown"),
 * 1 in 8 with a "dsl-" dynamic name; 1 in 5 on submission (587), nine in
 * ten of those authenticated; 3 in 5 with TLS; 1 in 32 messages over
 * 25 MB; 1 in 64 recipients already refused by the MTA.
 */
static void
sess_make(struct sess *s, uint64_t id)
{
	uint64_t h = mix(id), h2 = mix(id ^ 0xabcdef);
	char buf[256];
	unsigned a = (unsigned)(h >> 40);
	int n, sub = h2 % 5 == 0;

	sess_init(s);
	if (id % 8 == 7)
		n = snprintf(buf, sizeof(buf), "2a02:%x:%x:%x::%x",
		    (unsigned)(h & 0xffff), (unsigned)(id & 0xffff),
		    (unsigned)(h >> 16 & 0xffff), (unsigned)(h >> 32 & 0xff));
	else
		/* first octet 11..222 but 127: no loopback, no 10/8 */
		n = snprintf(buf, sizeof(buf), "%u.%u.%u.%u",
		    11 + a % 212 == 127 ? 128 : 11 + a % 212,
		    (unsigned)(id >> 8 & 255), (unsigned)(id & 255),
		    (unsigned)(h & 255));
	sess_set_client(s, buf, (size_t)n, 40000 + (unsigned)(h % 20000));
	if (h % 4 == 0)
		n = snprintf(buf, sizeof(buf), "unknown");
	else if (h % 8 == 1)
		n = snprintf(buf, sizeof(buf), "dsl-%u-%u.dyn.isp%u.example",
		    a % 1000, (unsigned)(id % 1000), (unsigned)(h % 50));
	else
		n = snprintf(buf, sizeof(buf), "mx%u.mail.example%u.com",
		    (unsigned)(h % 9), (unsigned)(id % 4000));
	sess_set_client_name(s, buf, (size_t)n);
	s->port = sub ? 587 : 25;
	sess_set_daemon(s, sub ? "submission" : "smtpd", sub ? 10 : 5);
	if (h % 4 == 0)
		n = snprintf(buf, sizeof(buf), "[%s]", s->client_ip);
	sess_set_helo(s, buf, (size_t)n);
	if (h2 % 5 < 3)
		sess_set_tls(s, "TLSv1.3", 7, 256);
	if (sub && h2 % 50 >= 5) {
		n = snprintf(buf, sizeof(buf), "user%u", (unsigned)(id % 300));
		sess_set_auth(s, buf, (size_t)n, "PLAIN", 5);
		n = snprintf(buf, sizeof(buf), "<user%u@ourdomain.example>",
		    (unsigned)(id % 300));
	} else if (h2 % 50 == 7)
		n = snprintf(buf, sizeof(buf), "<>");
	else
		n = snprintf(buf, sizeof(buf), "<news%u@sender%u.example>",
		    (unsigned)(h2 % 100000), (unsigned)(id % 700));
	sess_set_sender(s, buf, (size_t)n);
	n = snprintf(buf, sizeof(buf), "Q%010llX", (unsigned long long)id);
	sess_set_queue_id(s, buf, (size_t)n);
	s->size = h2 % 32 == 0 ? 26000000 + (long long)(h % 1000000) :
	    2000 + (long long)(h % 200000);
	n = snprintf(buf, sizeof(buf), "<%s%u@dest%u.example>",
	    h % 3 ? "rcpt" : "first.last", (unsigned)(h2 % 10000),
	    (unsigned)(id % 100));
	sess_set_rcpt(s, buf, (size_t)n, h2 % 64 == 3);
	if (id % 4 == 0)
		sess_set_header(s, "Subject", 7, "Minutes of the meeting",
		    22);
	else if (id % 4 == 1)
		sess_set_header(s, "X-Mailer", 8, "Thunderbird 115.3", 17);
	else if (id % 4 == 2)
		sess_set_header(s, "Received", 8, "from mx.example.com "
		    "(mx.example.com [192.0.2.1]) by mail.example.org", 68);
	else
		sess_set_header(s, "Message-ID", 10,
		    "<20240101.1234@example.com>", 27);
	sess_set_command(s, "EXPN root", 9);
}

/* --- timed runs ------------------------------------------------------ */

struct work {
	const struct engine_ctx *ctx;
	const struct ruleset *rs;
	enum stage	stage;
	struct sess	*tmpl;		/* NSESS fresh sessions */
	struct sess	*s;		/* the ones evaluated */
	struct engine_result res;
	int64_t		now;
	long		evals;
	long		refused;
	unsigned long	allocs;
	double		ns;		/* elapsed */
	double		cpu_ns;		/* this thread's CPU time in it */
	pthread_barrier_t *go;
};

/*
 * What the milter would do between events that the bench replays on the
 * same sessions, so that no session drifts into a state real ones never
 * reach: a message has at most 20 recipients, a new one its own tags,
 * and each replayed unknown command is its session's first.
 */
static inline void
event_prep(struct sess *s, enum stage st)
{
	switch (st) {
	case STAGE_ENVRCPT:
		if (s->rcpt_count >= 20)
			s->rcpt_count = 0;
		break;
	case STAGE_EOM:
		s->ntags = s->nconn_tags;
		s->quarantine = NULL;
		break;
	case STAGE_UNKNOWN:
		s->unknown_count = 0;
		break;
	default:
		break;
	}
}

static void
run_loop(struct work *w)
{
	unsigned long a0;
	double t0, c0;
	long i;
	size_t j = 0;

	a0 = atomic_load(&nalloc);
	c0 = thread_cpu_ns();
	t0 = mono_ns();
	for (i = 0; i < w->evals; i++) {
		event_prep(&w->s[j], w->stage);
		engine_eval(w->ctx, w->rs, &w->s[j], w->stage, w->now,
		    &w->res);
		w->refused += w->res.action == ACTION_REJECT ||
		    w->res.action == ACTION_TEMPFAIL;
		w->now += TICK_NS;
		if (++j == NSESS)
			j = 0;
	}
	w->ns = mono_ns() - t0;
	w->cpu_ns = thread_cpu_ns() - c0;
	w->allocs = atomic_load(&nalloc) - a0;
}

/* Fresh sessions, one untimed pass (first regex use, store growth). */
static void
work_reset(struct work *w, enum stage st)
{
	long evals = w->evals;

	memcpy(w->s, w->tmpl, NSESS * sizeof(*w->s));
	w->stage = st;
	w->evals = NSESS;
	run_loop(w);
	w->evals = evals;
	w->refused = 0;
}

static void *
thr_main(void *p)
{
	struct work *w = p;

	work_reset(w, w->stage);
	pthread_barrier_wait(w->go);
	run_loop(w);
	return NULL;
}

static int
work_init(struct work *w, const struct engine_ctx *ctx,
    const struct ruleset *rs, uint64_t base, int64_t now)
{
	size_t i;

	memset(w, 0, sizeof(*w));
	w->tmpl = calloc(NSESS, sizeof(*w->tmpl));
	w->s = calloc(NSESS, sizeof(*w->s));
	if (w->tmpl == NULL || w->s == NULL)
		return -1;
	for (i = 0; i < NSESS; i++)
		sess_make(&w->tmpl[i], base + i);
	w->ctx = ctx;
	w->rs = rs;
	w->now = now;
	w->evals = EVALS;
	return 0;
}

static void
work_fini(struct work *w)
{
	free(w->tmpl);
	free(w->s);
}

/* Best of RUNS single-thread runs; prints ns, rate, allocs, refusals. */
static double
bench_stage(const char *set, struct work *w, enum stage st, int target)
{
	double best = 0, rate;
	unsigned long allocs = 0;
	long refused = 0;
	int r;

	for (r = 0; r < RUNS; r++) {
		work_reset(w, st);
		run_loop(w);
		if (r == 0 || w->ns < best)
			best = w->ns;
		allocs += w->allocs;
		refused += w->refused;
	}
	rate = 1e9 * (double)w->evals / best;
	printf("%s_%s_rules %zu rules\n", set, stage_name(st),
	    w->rs->nby_stage[st]);
	printf("%s_%s %.1f ns/eval\n", set, stage_name(st),
	    best / (double)w->evals);
	printf("%s_%s_rate %.0f evals/s", set, stage_name(st), rate);
	if (target)
		printf(" target >= %.0f/s %s", TARGET_RATE,
		    rate >= TARGET_RATE ? "PASS" : "BELOW");
	printf("\n%s_%s_mallocs %.6f mallocs/eval target 0 %s\n", set,
	    stage_name(st), (double)allocs / ((double)w->evals * RUNS),
	    allocs == 0 ? "PASS" : "BELOW");
	printf("%s_%s_refused %.1f %%\n", set, stage_name(st),
	    100.0 * (double)refused / ((double)w->evals * RUNS));
	return rate;
}

/* One multi-thread measurement (the best of RUNS by wall time). */
struct thr_fig {
	double	rate;		/* evaluations/s, wall clock */
	double	cpu_rate;	/* evaluations per CPU-second of the threads */
	double	share;		/* CPU time / (threads * wall time) */
};

/*
 * nthr threads, each on its own sessions. A share below 1 means the
 * machine did not give each thread a whole core (another process ran),
 * which caps the wall ratio whatever the code does; cpu_rate does not
 * depend on that, so the ratio of cpu_rates shows what contention inside
 * warden (locks, shared cache lines) costs.
 */
static struct thr_fig
bench_threads(struct work *w, int nthr, enum stage st)
{
	struct thr_fig f = { 0, 0, 0 };
	pthread_barrier_t go;
	pthread_t tid[NTHR_MAX];
	double best = 0, t0, el, cpu;
	int64_t now;
	int i, r;

	for (r = 0; r < RUNS; r++) {
		if (pthread_barrier_init(&go, NULL, (unsigned)nthr + 1) != 0)
			exit(1);
		/* One clock for all: the store sees time move forward. */
		for (now = 0, i = 0; i < NTHR_MAX; i++)
			if (w[i].now > now)
				now = w[i].now;
		for (i = 0; i < nthr; i++) {
			w[i].stage = st;
			w[i].go = &go;
			w[i].now = now;
			if (pthread_create(&tid[i], NULL, thr_main, &w[i]))
				exit(1);
		}
		pthread_barrier_wait(&go);
		t0 = mono_ns();
		for (i = 0; i < nthr; i++)
			pthread_join(tid[i], NULL);
		el = mono_ns() - t0;
		pthread_barrier_destroy(&go);
		for (cpu = 0, i = 0; i < nthr; i++)
			cpu += w[i].cpu_ns;
		if (r == 0 || el < best) {
			best = el;
			f.rate = 1e9 * (double)EVALS * nthr / el;
			f.cpu_rate = 1e9 * (double)EVALS * nthr / cpu;
			f.share = cpu / (el * nthr);
		}
	}
	return f;
}

static void
scaling(const char *set, const struct engine_ctx *ctx,
    const struct ruleset *rs, enum stage st, int64_t *now)
{
	struct work w[NTHR_MAX];
	struct thr_fig one, two;
	const char *sn = stage_name(st);
	double ratio;
	int i;

	for (i = 0; i < NTHR_MAX; i++)
		if (work_init(&w[i], ctx, rs, 1000000 * (uint64_t)(i + 1),
		    *now) == -1)
			exit(1);
	one = bench_threads(w, 1, st);
	two = bench_threads(w, 2, st);
	ratio = two.rate / one.rate;
	printf("%s_%s_1_thread %.0f evals/s\n", set, sn, one.rate);
	printf("%s_%s_2_threads %.0f evals/s\n", set, sn, two.rate);
	printf("%s_%s_ratio_2_1 %.2f x target >= %.1f %s\n", set, sn,
	    ratio, TARGET_SCALE, ratio >= TARGET_SCALE ? "PASS" : "BELOW");
	printf("%s_%s_cpu_share_2 %.2f cores/thread\n", set, sn, two.share);
	printf("%s_%s_cpu_efficiency_2_1 %.2f x\n", set, sn,
	    two.cpu_rate / one.cpu_rate);
	for (i = 0; i < NTHR_MAX; i++) {
		if (w[i].now > *now)
			*now = w[i].now;
		work_fini(&w[i]);
	}
}

/*
 * bench_engine [RULES_DIR [PART]]: RULES_DIR defaults to "rules" (make
 * bench runs from the top directory); PART runs one part only, for a
 * profiler: set20, ship or threads.
 */
int
main(int argc, char **argv)
{
	struct rules_opts o = { MODE_ENFORCE, ONERR_ACCEPT };
	struct engine_ctx ctx;
	struct store_memory_stats ms;
	struct ruleset *set20 = NULL, *ship = NULL;
	struct store *st;
	struct work w;
	struct diag d;
	const char *part = argc > 2 ? argv[2] : "";
	int64_t now = BENCH_T0;
	int s, rc = 1;

	diag_init(&d);
	memset(&ctx, 0, sizeof(ctx));
	if ((st = store_memory_new(1000000)) == NULL)
		goto out;
	ctx.store = st;
	if ((set20 = load_set20(&o, &d)) == NULL ||
	    (ship = load_shipped(argc > 1 ? argv[1] : "rules", &o, &d)) ==
	    NULL) {
		diag_print(&d, stderr);
		goto out;
	}
	printf("sessions %d per thread\n", NSESS);
	printf("evals_per_run %ld evals\n", EVALS);

	if (part[0] == '\0' || strcmp(part, "set20") == 0) {
		if (work_init(&w, &ctx, set20, 0, now) == -1)
			goto out;
		bench_stage("set20", &w, STAGE_ENVRCPT, 1);
		now = w.now;
		work_fini(&w);
	}
	printf("ship_total_rules %zu rules\n", ship->nrules);
	if (part[0] == '\0' || strcmp(part, "ship") == 0) {
		if (work_init(&w, &ctx, ship, 0, now) == -1)
			goto out;
		for (s = 0; s < STAGE_COUNT; s++)
			if (ship->nby_stage[s] > 0)
				bench_stage("ship", &w, (enum stage)s, 0);
		now = w.now;
		work_fini(&w);
		store_memory_stats(st, &ms);
		printf("ship_store_keys %llu keys\n",
		    (unsigned long long)ms.keys);
	}
	if (part[0] == '\0' || strcmp(part, "threads") == 0) {
		scaling("set20", &ctx, set20, STAGE_ENVRCPT, &now);
		scaling("ship", &ctx, ship, STAGE_ENVRCPT, &now);
	}
	rc = 0;
out:
	rules_unref(set20);
	rules_unref(ship);
	store_free(st);
	diag_fini(&d);
	return rc;
}

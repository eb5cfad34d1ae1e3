/*
 * test_log.c - unit tests for log.c: log_esc escaping and bounds, level
 * and facility names, and the exact text of the stderr sink.
 * Expected strings are written by hand from log.h and DESIGN.md §5, not
 * produced by the code under test. The sink tests point fd 2 at a temp
 * file with dup2 and restore it before any assertion, so cmocka's own
 * messages are never captured. Each test leaves the sink at its default
 * (stderr, "warden", info).
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <syslog.h>

#include "log.h"

/*
 * Fails with "case: got X, want Y" when the strings differ. Long strings
 * are shown from 40 bytes before the first difference, 120 bytes at most,
 * because cmocka cuts longer messages (and the newline before its TAP
 * "not ok" line with them).
 */
static void
check_str(const char *name, const char *got, const char *want)
{
	size_t at, from;

	if (strcmp(got, want) == 0)
		return;
	if (strlen(got) < 120 && strlen(want) < 120)
		fail_msg("%s: got \"%s\", want \"%s\"", name, got, want);
	for (at = 0; got[at] == want[at]; at++)
		continue;
	from = at > 40 ? at - 40 : 0;
	fail_msg("%s: differs at byte %zu (got length %zu, want %zu): "
	    "got \"%.120s\", want \"%.120s\"", name, at, strlen(got),
	    strlen(want), got + from, want + from);
}

static void
check_int(const char *name, long long got, long long want)
{
	if (got != want)
		fail_msg("%s: got %lld, want %lld", name, got, want);
}

/* A string of n copies of c (n < cap). */
static char *
repeat(char *buf, size_t cap, const char *unit, size_t n)
{
	size_t i, ul = strlen(unit);

	assert_true(n * ul < cap);
	for (i = 0; i < n; i++)
		memcpy(buf + i * ul, unit, ul);
	buf[n * ul] = '\0';
	return buf;
}

static const struct esc_case {
	const char	*name;
	const char	*in;
	size_t		 len;
	const char	*want;
} esc_cases[] = {
	{ "empty", "", 0, "" },
	{ "plain", "mail.example.com", 16, "mail.example.com" },
	{ "space and punctuation", "a b<c>@[d]", 10, "a b<c>@[d]" },
	{ "quotes", "say \"hi\"", 8, "say \\\"hi\\\"" },
	{ "backslash", "a\\b", 3, "a\\\\b" },
	{ "CR LF", "x\r\ny", 4, "x\\x0d\\x0ay" },
	{ "tab and ESC", "\t\033[31m", 6, "\\x09\\x1b[31m" },
	{ "NUL in the middle", "ab\0cd", 5, "ab\\x00cd" },
	{ "trailing NUL counted", "a\0", 2, "a\\x00" },
	{ "DEL", "\x7f", 1, "\\x7f" },
	{ "0xff", "\xff", 1, "\\xff" },
	{ "0x80", "\x80", 1, "\\x80" },
	{ "UTF-8 e-acute", "caf\xc3\xa9", 5, "caf\\xc3\\xa9" },
	{ "tilde and space edges", " ~", 2, " ~" },
	{ "0x1f", "\x1f", 1, "\\x1f" },
	{ "len shorter than string", "abcdef", 3, "abc" },
};

static void
test_esc_table(void **state)
{
	char dst[LOG_ESC_BUF];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(esc_cases); i++) {
		const struct esc_case *c = &esc_cases[i];

		memset(dst, 'Z', sizeof(dst));
		assert_ptr_equal(log_esc(c->in, c->len, dst, sizeof(dst)),
		    dst);
		check_str(c->name, dst, c->want);
	}
}

/* The LOG_ESC_MAX boundary: exactly MAX is whole, MAX+1 gets the marker. */
static void
test_esc_max(void **state)
{
	static char in[10240 + 1], want[4 * 10240], dst[LOG_ESC_BUF];
	static const struct {
		const char	*name;
		const char	*unit;	/* input byte */
		const char	*out;	/* its escape */
		size_t		 n;
		int		 marker;
	} cases[] = {
		{ "exactly MAX plain", "a", "a", LOG_ESC_MAX, 0 },
		{ "MAX+1 plain", "a", "a", LOG_ESC_MAX + 1, 1 },
		{ "MAX-1 plain", "a", "a", LOG_ESC_MAX - 1, 0 },
		{ "exactly MAX 0xff", "\xff", "\\xff", LOG_ESC_MAX, 0 },
		{ "MAX+1 0xff", "\xff", "\\xff", LOG_ESC_MAX + 1, 1 },
		{ "10 KB plain", "a", "a", 10240, 1 },
		{ "10 KB 0xff", "\xff", "\\xff", 10240, 1 },
		{ "10 KB quotes", "\"", "\\\"", 10240, 1 },
	};
	size_t i, kept;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		repeat(in, sizeof(in), cases[i].unit, cases[i].n);
		kept = cases[i].n < LOG_ESC_MAX ? cases[i].n : LOG_ESC_MAX;
		repeat(want, sizeof(want), cases[i].out, kept);
		if (cases[i].marker)
			strcat(want, "...");
		memset(dst, 'Z', sizeof(dst));
		log_esc(in, cases[i].n, dst, sizeof(dst));
		check_str(cases[i].name, dst, want);
	}
	/* The worst case must fit LOG_ESC_BUF: 512 * 4 + 3 + NUL. */
	check_int("LOG_ESC_BUF covers worst case",
	    LOG_ESC_BUF >= 4 * LOG_ESC_MAX + 3 + 1, 1);
}

/*
 * Tiny destinations: input a " \x01 b c escapes to a\"\x01bc (9 bytes).
 * Escapes are never split; "..." goes after the last whole escape that
 * leaves room for it, and only when dst has room for "..." at all.
 */
static void
test_esc_small_dst(void **state)
{
	static const char in[] = "a\"\001bc";
	static const char *const want[] = {
		NULL,
		/* 1 */ "",
		/* 2 */ "a",
		/* 3 */ "a",
		/* 4 */ "...",
		/* 5 */ "a...",
		/* 6 */ "a...",
		/* 7 */ "a\\\"...",
		/* 8 */ "a\\\"...",
		/* 9 */ "a\\\"...",
		/* 10 */ "a\\\"\\x01bc",
	};
	char buf[16 + 1], name[32];
	size_t dstlen;

	(void)state;
	for (dstlen = 1; dstlen < NELEM(want); dstlen++) {
		memset(buf, 'Z', sizeof(buf));
		buf[dstlen] = '#';	/* canary right after dst */
		log_esc(in, 5, buf, dstlen);
		snprintf(name, sizeof(name), "dstlen %zu", dstlen);
		check_str(name, buf, want[dstlen]);
		if (buf[dstlen] != '#')
			fail_msg("%s: canary got 0x%02x, want '#'", name,
			    (unsigned char)buf[dstlen]);
	}
	/* dstlen 0: nothing may be written at all. */
	buf[0] = '#';
	log_esc(in, 5, buf, 0);
	check_int("dstlen 0 canary", buf[0], '#');
}

/* Every byte value escapes to its hand-derived class. */
static void
test_esc_all_bytes(void **state)
{
	char in[1], dst[8], want[8], name[32];
	int c;

	(void)state;
	for (c = 0; c < 256; c++) {
		in[0] = (char)c;
		if (c == '\\')
			strcpy(want, "\\\\");
		else if (c == '"')
			strcpy(want, "\\\"");
		else if (c >= ' ' && c <= '~')
			snprintf(want, sizeof(want), "%c", c);
		else
			snprintf(want, sizeof(want), "\\x%02x", c);
		log_esc(in, 1, dst, sizeof(dst));
		snprintf(name, sizeof(name), "byte 0x%02x", c);
		check_str(name, dst, want);
	}
}

static void
test_level_names(void **state)
{
	static const struct {
		const char	*name;
		int		 want;
	} cases[] = {
		{ "error", 3 }, { "warning", 4 }, { "notice", 5 },
		{ "info", 6 }, { "debug", 7 },
		{ "", -1 }, { "INFO", -1 }, { "warn", -1 }, { "err", -1 },
		{ "info ", -1 }, { "crit", -1 }, { "debug2", -1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		check_int(cases[i].name, log_level_by_name(cases[i].name),
		    cases[i].want);
	check_int("NULL", log_level_by_name(NULL), -1);
}

static void
test_facility_names(void **state)
{
	/* Values from RFC 5424 §6.2.1 (code << 3), as glibc defines them. */
	static const struct {
		const char	*name;
		int		 want;
	} cases[] = {
		{ "user", 1 << 3 }, { "mail", 2 << 3 }, { "daemon", 3 << 3 },
		{ "local0", 16 << 3 }, { "local1", 17 << 3 },
		{ "local2", 18 << 3 }, { "local3", 19 << 3 },
		{ "local4", 20 << 3 }, { "local5", 21 << 3 },
		{ "local6", 22 << 3 }, { "local7", 23 << 3 },
		{ "local8", -1 }, { "local", -1 }, { "", -1 },
		{ "MAIL", -1 }, { "auth", -1 }, { "kern", -1 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		check_int(cases[i].name, log_facility_by_name(cases[i].name),
		    cases[i].want);
	check_int("NULL", log_facility_by_name(NULL), -1);
	check_int("mail is LOG_MAIL", log_facility_by_name("mail"), LOG_MAIL);
}

/*
 * Captures fd 2 into a temp file between cap_begin and cap_end; cap_end
 * restores fd 2 and returns what was written (owned: caller frees).
 */
struct capture {
	char	path[256];
	int	fd;
	int	saved;
};

static void
cap_begin(struct capture *c)
{
	const char *t = getenv("TMPDIR");

	snprintf(c->path, sizeof(c->path), "%s/warden-log.XXXXXX",
	    t != NULL ? t : "/tmp");
	c->fd = mkstemp(c->path);
	assert_true(c->fd >= 0);
	/* O_APPEND: concurrent writers never overwrite each other. */
	assert_int_equal(fcntl(c->fd, F_SETFL, O_APPEND), 0);
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(c->fd, STDERR_FILENO) == STDERR_FILENO);
}

static char *
cap_end(struct capture *c)
{
	struct stat st;
	char *buf;
	ssize_t n;

	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	assert_int_equal(fstat(c->fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	n = pread(c->fd, buf, (size_t)st.st_size, 0);
	assert_int_equal(n, st.st_size);
	buf[n] = '\0';
	close(c->fd);
	unlink(c->path);
	return buf;
}

static void
reset_sink(void)
{
	log_open(LOG_SINK_STDERR, "warden", LOG_MAIL, LOGL_INFO);
}

/*
 * Runs first, before any log_open: the default sink is stderr with ident
 * "warden" at level info.
 */
static void
test_defaults_before_open(void **state)
{
	struct capture cap;
	char want[128], *got;

	(void)state;
	check_int("default enabled info", log_enabled(LOGL_INFO), 1);
	check_int("default enabled debug", log_enabled(LOGL_DEBUG), 0);
	cap_begin(&cap);
	log_info("first");
	log_debug("hidden");
	got = cap_end(&cap);
	snprintf(want, sizeof(want), "warden[%ld]: first\n", (long)getpid());
	check_str("defaults", got, want);
	free(got);
}

static void
test_stderr_levels(void **state)
{
	struct capture cap;
	char want[512], *got;
	long pid = (long)getpid();

	(void)state;
	log_open(LOG_SINK_STDERR, "warden", log_facility_by_name("mail"),
	    log_level_by_name("notice"));
	check_int("enabled error", log_enabled(LOGL_ERROR), 1);
	check_int("enabled notice", log_enabled(LOGL_NOTICE), 1);
	check_int("enabled info", log_enabled(LOGL_INFO), 0);
	check_int("enabled debug", log_enabled(LOGL_DEBUG), 0);
	cap_begin(&cap);
	log_error("stop: %s", "bye");
	log_info("connect from %s", "x");
	log_warning("store: %d errors", 3);
	log_debug("noise");
	log_notice("NOQUEUE: reject rule=%s stage=%s", "r1", "envfrom");
	got = cap_end(&cap);
	reset_sink();
	snprintf(want, sizeof(want),
	    "warden[%ld]: stop: bye\n"
	    "warden[%ld]: store: 3 errors\n"
	    "warden[%ld]: NOQUEUE: reject rule=r1 stage=envfrom\n",
	    pid, pid, pid);
	check_str("stderr at notice", got, want);
	free(got);
}

static void
test_stderr_default_and_ident(void **state)
{
	struct capture cap;
	char want[256], *got;
	long pid = (long)getpid();

	(void)state;
	/* reset_sink is the documented default: info passes, debug not. */
	reset_sink();
	cap_begin(&cap);
	log_info("a");
	log_debug("b");
	log_open(LOG_SINK_STDERR, "wtest", LOG_DAEMON, LOGL_DEBUG);
	log_debug("c");
	log_open(LOG_SINK_STDERR, NULL, LOG_DAEMON, LOGL_DEBUG);
	log_debug("d");
	got = cap_end(&cap);
	reset_sink();
	snprintf(want, sizeof(want),
	    "warden[%ld]: a\nwtest[%ld]: c\nwarden[%ld]: d\n", pid, pid, pid);
	check_str("default, ident, NULL ident", got, want);
	free(got);
}

/* After log_close the sink is stderr again, so late lines are kept. */
static void
test_close_back_to_stderr(void **state)
{
	struct capture cap;
	char want[128], *got;

	(void)state;
	log_open(LOG_SINK_SYSLOG, "warden", LOG_MAIL, LOGL_INFO);
	log_close();
	cap_begin(&cap);
	log_info("after close");
	got = cap_end(&cap);
	reset_sink();
	snprintf(want, sizeof(want), "warden[%ld]: after close\n",
	    (long)getpid());
	check_str("after log_close", got, want);
	free(got);
}

static void
test_long_line_cut(void **state)
{
	static char big[5000 + 1], want[LOG_LINE_MAX + 64];
	struct capture cap;
	char *got;
	int p;

	(void)state;
	repeat(big, sizeof(big), "x", 5000);
	cap_begin(&cap);
	log_info("%s", big);
	got = cap_end(&cap);
	/* 4095 bytes of text (LOG_LINE_MAX with its NUL), the last 3 "...". */
	p = snprintf(want, sizeof(want), "warden[%ld]: ", (long)getpid());
	repeat(want + p, sizeof(want) - (size_t)p, "x", LOG_LINE_MAX - 4);
	strcat(want, "...\n");
	check_int("cut line length", (long long)strlen(got),
	    (long long)p + 4095 + 1);
	check_str("cut line", got, want);
	free(got);
}

/*
 * A client HELO carrying CR LF and a forged record, logged the way every
 * caller must: through log_esc into a "%s". One line comes out.
 */
static void
test_no_newline_injection(void **state)
{
	static const char helo[] = "evil\r\nwarden[1]: NOQUEUE: accept";
	struct capture cap;
	char esc[LOG_ESC_BUF], want[256], *got;
	long pid = (long)getpid();

	(void)state;
	cap_begin(&cap);
	log_notice("NOQUEUE: reject helo=<%s>",
	    log_esc(helo, sizeof(helo) - 1, esc, sizeof(esc)));
	/* A caller that forgot log_esc still cannot split the record. */
	log_notice("raw=%s", "a\nb\rc\001d\xff");
	got = cap_end(&cap);
	snprintf(want, sizeof(want),
	    "warden[%ld]: NOQUEUE: reject "
	    "helo=<evil\\x0d\\x0awarden[1]: NOQUEUE: accept>\n"
	    "warden[%ld]: raw=a?b?c?d?\n", pid, pid);
	check_str("injection", got, want);
	free(got);
}

/* errno survives a log call, so "log then return -1" keeps it. */
static void
test_errno_kept(void **state)
{
	struct capture cap;
	char want[128], *got;

	(void)state;
	cap_begin(&cap);
	errno = ENOENT;
	log_error("open: %m");
	check_int("errno after log_error", errno, ENOENT);
	errno = EACCES;
	log_debug("dropped");
	check_int("errno after dropped line", errno, EACCES);
	got = cap_end(&cap);
	snprintf(want, sizeof(want), "warden[%ld]: open: %s\n",
	    (long)getpid(), "No such file or directory");
	check_str("%m", got, want);
	free(got);
}

/* A failing write(2) (fd 2 read-only: EBADF) must not leak into errno. */
static void
test_errno_kept_on_write_error(void **state)
{
	int fd, saved, err;

	(void)state;
	fd = open("/dev/null", O_RDONLY);
	assert_true(fd >= 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
	errno = ENOENT;
	log_error("lost");
	err = errno;
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	check_int("errno after failed write", err, ENOENT);
}

#define NTHREADS	4
#define NLINES		500

static void *
logger(void *arg)
{
	int i, t = (int)(intptr_t)arg;

	for (i = 0; i < NLINES; i++)
		log_info("t=%d i=%d pad=%s", t, i,
		    "0123456789012345678901234567890123456789");
	return NULL;
}

/*
 * Threads log while the main thread reopens with another ident: every
 * line must arrive whole, with one of the two idents, none lost.
 */
static void
test_threads_and_reopen(void **state)
{
	pthread_t th[NTHREADS];
	struct capture cap;
	char pa[64], pb[64], *got, *line, *nl;
	int i, count[NTHREADS] = { 0 }, t, n, lines = 0;
	size_t plen;

	(void)state;
	snprintf(pa, sizeof(pa), "warden[%ld]: ", (long)getpid());
	snprintf(pb, sizeof(pb), "wreload[%ld]: ", (long)getpid());
	cap_begin(&cap);
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, logger,
		    (void *)(intptr_t)i), 0);
	for (i = 0; i < 200; i++)
		log_open(LOG_SINK_STDERR, i % 2 ? "warden" : "wreload",
		    LOG_MAIL, LOGL_INFO);
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	got = cap_end(&cap);
	reset_sink();
	for (line = got; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		assert_non_null(nl);
		*nl = '\0';
		if (strncmp(line, pa, strlen(pa)) == 0)
			plen = strlen(pa);
		else if (strncmp(line, pb, strlen(pb)) == 0)
			plen = strlen(pb);
		else {
			fail_msg("line %d: got \"%s\", want a warden prefix",
			    lines, line);
			break;	/* not reached: fail_msg longjmps */
		}
		if (sscanf(line + plen, "t=%d i=%d pad=%*s%n", &t, &i,
		    &n) != 2 || t < 0 || t >= NTHREADS ||
		    strcmp(line + plen + n - 40,
		    "0123456789012345678901234567890123456789") != 0)
			fail_msg("line %d: got \"%s\", want a whole line",
			    lines, line);
		count[t]++;
		lines++;
	}
	check_int("lines", lines, NTHREADS * NLINES);
	for (i = 0; i < NTHREADS; i++)
		check_int("lines of one thread", count[i], NLINES);
	free(got);
}

/*
 * log_quiet on a fake clock: the first event writes, events within the
 * period are counted, the first one after it writes with that count.
 */
#define SEC	1000000000LL
static void
test_quiet(void **state)
{
	static const struct {
		int64_t	at;		/* fake now, ns */
		int	quiet;		/* want: 1 kept quiet, 0 written */
		uint64_t held;		/* want when written */
	} steps[] = {
		{ 5 * SEC, 0, 0 },		/* the first always */
		{ 5 * SEC, 1, 0 },
		{ 30 * SEC, 1, 0 },
		{ 65 * SEC - 1, 1, 0 },		/* one ns short */
		{ 65 * SEC, 0, 3 },		/* a period after the last line */
		{ 66 * SEC, 1, 0 },
		{ 500 * SEC, 0, 1 },		/* long silence: just the one */
		{ 560 * SEC, 0, 0 },		/* nothing held */
	};
	struct log_quiet q = { 0 };
	uint64_t held;
	size_t i;
	char name[32];

	(void)state;
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		snprintf(name, sizeof(name), "step %zu", i);
		held = 12345;
		check_int(name, log_quiet(&q, steps[i].at, 60 * SEC, &held),
		    steps[i].quiet);
		if (!steps[i].quiet)
			check_int(name, (int)held, (int)steps[i].held);
		else
			check_int(name, (int)held, 12345);	/* untouched */
	}
}

/*
 * Threads hitting one log_quiet, released together each round at a time
 * a period after the last line: exactly one line a round, and no event
 * missing from the counts. Two threads inside the few instructions
 * between log_quiet's load and its compare-and-swap are rare here, so
 * this checks the accounting under threads more than that race.
 */
#define QTHREADS	8
#define QROUNDS		2000
static struct log_quiet qshared;
static pthread_barrier_t qbar;
static atomic_int qwritten;
static _Atomic uint64_t qheld;

static void *
quiet_racer(void *arg)
{
	uint64_t held;
	int r;

	(void)arg;
	for (r = 1; r <= QROUNDS; r++) {
		pthread_barrier_wait(&qbar);
		if (log_quiet(&qshared, r * 60 * SEC, 60 * SEC, &held) == 0) {
			atomic_fetch_add(&qwritten, 1);
			atomic_fetch_add(&qheld, held);
		}
	}
	return NULL;
}

static void
test_quiet_threads(void **state)
{
	pthread_t th[QTHREADS];
	uint64_t held;
	int i;

	(void)state;
	assert_int_equal(pthread_barrier_init(&qbar, NULL, QTHREADS), 0);
	for (i = 0; i < QTHREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, quiet_racer,
		    NULL), 0);
	for (i = 0; i < QTHREADS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&qbar);
	check_int("lines", atomic_load(&qwritten), QROUNDS);
	check_int("last", log_quiet(&qshared, (QROUNDS + 1) * 60 * SEC,
	    60 * SEC, &held), 0);
	check_int("events counted", (long long)(held + atomic_load(&qheld)),
	    (long long)QROUNDS * (QTHREADS - 1));
}

/*
 * log_digest (daemon.log_privacy): "hmac:" + 16 hex digits of
 * HMAC-SHA256(key, "log:" + lower-cased value). Expected digests were
 * computed with Python's hmac module, key "k3y".
 */
static void
test_digest(void **state)
{
	static const struct {
		const char	*v, *want;
	} rows[] = {
		{ "192.0.2.1", "hmac:9fb9afa160818584" },
		{ "a@example.com", "hmac:f01a50baadc6ae07" },
		{ "A@EXAMPLE.com", "hmac:f01a50baadc6ae07" },	/* case */
		{ "Alice@Example.COM", "hmac:b748819afbca7abc" },
		{ "alice", "hmac:f806e93624ddc6a4" },
		{ "", "hmac:d9c7dd29211efd6d" },
	};
	char big[5001], dst[LOG_DIGEST_BUF + 8];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(rows); i++) {
		memset(dst, '#', sizeof(dst));
		assert_ptr_equal(log_digest("k3y", 3, rows[i].v,
		    strlen(rows[i].v), dst, LOG_DIGEST_BUF), dst);
		if (strcmp(dst, rows[i].want) != 0)
			fail_msg("\"%s\": got %s, want %s", rows[i].v, dst,
			    rows[i].want);
		assert_int_equal(dst[LOG_DIGEST_BUF], '#');
	}
	/* len, not the NUL, ends the value */
	log_digest("k3y", 3, "alice@x", 5, dst, sizeof(dst));
	assert_string_equal(dst, "hmac:f806e93624ddc6a4");
	/* over the stack buffer: 5000 bytes take the heap path */
	memset(big, 'Q', 5000);
	big[5000] = '\0';
	log_digest("k3y", 3, big, 5000, dst, sizeof(dst));
	assert_string_equal(dst, "hmac:d61482cf5dd86f6c");
	/* another key, another digest */
	log_digest("other", 5, "a@example.com", 13, dst, sizeof(dst));
	assert_string_equal(dst, "hmac:0d23532a20bd7c10");
	/* no room: NULL, and no byte past dstlen */
	memset(dst, '#', sizeof(dst));
	assert_null(log_digest("k3y", 3, "a", 1, dst, LOG_DIGEST_BUF - 1));
	assert_int_equal(dst[LOG_DIGEST_BUF - 1], '#');
	assert_null(log_digest("k3y", 3, "a", 1, dst, 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		/* First: it checks the state before any log_open. */
		cmocka_unit_test(test_defaults_before_open),
		cmocka_unit_test(test_esc_table),
		cmocka_unit_test(test_esc_max),
		cmocka_unit_test(test_esc_small_dst),
		cmocka_unit_test(test_esc_all_bytes),
		cmocka_unit_test(test_digest),
		cmocka_unit_test(test_level_names),
		cmocka_unit_test(test_facility_names),
		cmocka_unit_test(test_stderr_levels),
		cmocka_unit_test(test_stderr_default_and_ident),
		cmocka_unit_test(test_close_back_to_stderr),
		cmocka_unit_test(test_long_line_cut),
		cmocka_unit_test(test_no_newline_injection),
		cmocka_unit_test(test_errno_kept),
		cmocka_unit_test(test_errno_kept_on_write_error),
		cmocka_unit_test(test_threads_and_reopen),
		cmocka_unit_test(test_quiet),
		cmocka_unit_test(test_quiet_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * metrics.c - daemon.metrics_file: the stats counters in the Prometheus
 * text exposition format 0.0.4, replaced atomically for node_exporter's
 * textfile collector (which reads every *.prom file of its directory at
 * each scrape, so a half-written file would be a scrape error).
 * Owns: metric names, formatting, label escaping, the file replacement
 * and its rate-limited error lines. Not: counting (stats.c), timing
 * (daemon.c).
 * Threads: formatting is pure; one struct metrics_state per writer.
 * Memory: the text is built in one growing heap buffer, owned by the
 * caller of metrics_format; nothing else is allocated.
 * Errors: -1 and a bounded message; a write that fails leaves the old
 * file in place and no temporary file behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

/* A growing text buffer; oom sticks so callers check once at the end. */
struct sbuf {
	char	*p;
	size_t	len, cap;
	int	oom;
};

static void
sb_printf(struct sbuf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void
sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	size_t ncap;
	char *np;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		ncap = b->cap * 2 > b->len + (size_t)n + 1 ? b->cap * 2 :
		    b->len + (size_t)n + 1;
		if ((np = realloc(b->p, ncap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

/* "123.456789": exact, no floating point, as Prometheus parses it. */
static void
sb_seconds(struct sbuf *b, uint64_t us)
{
	sb_printf(b, "%llu.%06llu", (unsigned long long)(us / 1000000),
	    (unsigned long long)(us % 1000000));
}

static void
family(struct sbuf *b, const char *name, const char *type, const char *help)
{
	sb_printf(b, "# HELP warden_%s %s\n# TYPE warden_%s %s\n", name, help,
	    name, type);
}

static void
sample(struct sbuf *b, const char *name, uint64_t v)
{
	sb_printf(b, "warden_%s %llu\n", name, (unsigned long long)v);
}

char *
metrics_label_esc(const char *s, char *dst, size_t dstlen)
{
	size_t o = 0, e;
	char esc[2];
	unsigned char c;

	if (dstlen == 0)
		return dst;
	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		e = 1;
		esc[0] = (char)c;
		if (c == '\\' || c == '"') {
			esc[0] = '\\';
			esc[1] = (char)c;
			e = 2;
		} else if (c == '\n') {
			esc[0] = '\\';
			esc[1] = 'n';
			e = 2;
		} else if (c < 0x20 || c > 0x7e)
			esc[0] = '?';
		if (o + e > dstlen - 1)
			break;
		memcpy(dst + o, esc, e);
		o += e;
	}
	dst[o] = '\0';
	return dst;
}

static void
globals(struct sbuf *b, const struct metrics_in *in)
{
	static const struct {
		enum stat_id	id;
		const char	*name, *help;
	} plain[] = {
		{ ST_CONNECTIONS, "connections_total",
		    "SMTP connections the MTA passed to warden." },
		{ ST_MESSAGES, "messages_total",
		    "Transactions (MAIL FROM) seen." },
		{ ST_RCPTS, "recipients_total", "Recipients (RCPT TO) seen." },
		{ ST_DRYRUN, "dryrun_decisions_total",
		    "Verdicts that dry-run rules would have given." },
		{ ST_STORE_CALLS, "store_calls_total",
		    "Rate counter store calls (one per stage with limits)." },
		{ ST_STORE_ERRORS, "store_errors_total",
		    "Store calls that failed (on_error applied)." },
		{ ST_STORE_FALLBACKS, "store_fallbacks_total",
		    "Charges made to the local memory store by on_error = "
		    "\"memory\"." },
		{ ST_NOMEM, "out_of_memory_total",
		    "Commands that found no memory for their work (the "
		    "out of memory log lines)." },
	};
	static const struct {
		enum stat_id	id;
		const char	*action;
	} verdicts[] = {
		{ ST_ACCEPT, "accept" },
		{ ST_REJECT, "reject" },
		{ ST_TEMPFAIL, "tempfail" },
		{ ST_DISCARD, "discard" },
		{ ST_QUARANTINE, "quarantine" },
	};
	size_t i;

	family(b, "uptime_seconds", "gauge", "Seconds since warden started.");
	sample(b, "uptime_seconds", in->uptime_s > 0 ?
	    (uint64_t)in->uptime_s : 0);
	for (i = 0; i < NELEM(plain); i++) {
		family(b, plain[i].name, "counter", plain[i].help);
		sample(b, plain[i].name, in->counters[plain[i].id]);
	}
	family(b, "decisions_total", "counter",
	    "Enforced verdicts of rules, by action.");
	for (i = 0; i < NELEM(verdicts); i++)
		sb_printf(b, "warden_decisions_total{action=\"%s\"} %llu\n",
		    verdicts[i].action,
		    (unsigned long long)in->counters[verdicts[i].id]);
	family(b, "reloads_total", "counter",
	    "SIGHUP reloads, by result (failed: the old config kept).");
	sb_printf(b, "warden_reloads_total{result=\"ok\"} %llu\n",
	    (unsigned long long)in->counters[ST_RELOADS]);
	sb_printf(b, "warden_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)in->counters[ST_RELOAD_FAILURES]);
}

/*
 * A real histogram: buckets cumulative, le in seconds, +Inf equal to
 * _count. Bucket b of stats.c holds latencies below 2^b us, so its count
 * belongs to every le from 2^b up; the last bucket only to +Inf.
 */
static void
histogram(struct sbuf *b, const struct metrics_in *in)
{
	uint64_t cum = 0;
	unsigned i;

	family(b, "store_latency_seconds", "histogram",
	    "Store call latency (one round trip per stage).");
	for (i = 0; i < STATS_LAT_BUCKETS; i++) {
		cum += in->lat[i];
		if (stats_lat_bound_us(i) == 0)
			continue;
		sb_printf(b, "warden_store_latency_seconds_bucket{le=\"");
		sb_seconds(b, stats_lat_bound_us(i));
		sb_printf(b, "\"} %llu\n", (unsigned long long)cum);
	}
	sb_printf(b, "warden_store_latency_seconds_bucket{le=\"+Inf\"} "
	    "%llu\n", (unsigned long long)cum);
	sb_printf(b, "warden_store_latency_seconds_sum ");
	sb_seconds(b, in->lat_sum_us);
	sb_printf(b, "\nwarden_store_latency_seconds_count %llu\n",
	    (unsigned long long)cum);
}

static void
per_rule(struct sbuf *b, const struct metrics_in *in)
{
	static const struct {
		const char	*name, *help;
	} fams[] = {
		{ "rule_hits_total", "Times a rule matched (and its limit, "
		    "if any, was over)." },
		{ "rule_enforced_total", "Hits whose action was applied." },
		{ "rule_dryrun_total", "Hits of a dry-run rule (logged "
		    "only)." },
	};
	char esc[RULES_NAME_MAX * 2 + 1];
	const struct rule *r;
	uint64_t v;
	size_t f, i;

	family(b, "rules", "gauge", "Rules loaded.");
	sample(b, "rules", in->rs != NULL ? in->rs->nrules : 0);
	for (f = 0; f < NELEM(fams); f++) {
		family(b, fams[f].name, "counter", fams[f].help);
		/* Every rule, idle ones too: 0 says a rule never fires. */
		for (i = 0; in->rs != NULL && i < in->rs->nrules; i++) {
			r = in->rs->rules[i];
			v = f == 0 ? atomic_load(&r->hits) : f == 1 ?
			    atomic_load(&r->enforced) :
			    atomic_load(&r->dryrun);
			metrics_label_esc(r->name, esc, sizeof(esc));
			sb_printf(b, "warden_%s{rule=\"%s\"} %llu\n",
			    fams[f].name, esc, (unsigned long long)v);
		}
	}
}

void
metrics_collect(struct metrics_in *in, const struct ruleset *rs,
    int64_t uptime_s)
{
	unsigned i;

	memset(in, 0, sizeof(*in));
	in->uptime_s = uptime_s;
	for (i = 0; i < ST_COUNT; i++)
		in->counters[i] = stats_get((enum stat_id)i);
	stats_store_latency_read(in->lat, &in->lat_sum_us);
	in->rs = rs;
}

char *
metrics_format(const struct metrics_in *in, size_t *len_out)
{
	struct sbuf b = { NULL, 0, 0, 0 };

	if ((b.p = malloc(b.cap = 4096)) == NULL)
		return NULL;
	b.p[0] = '\0';
	globals(&b, in);
	histogram(&b, in);
	per_rule(&b, in);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len_out = b.len;
	return b.p;
}

/* "what PATH: strerror" into err. */
static int
fail(char *err, size_t errlen, const char *what, const char *path, int e)
{
	char eb[128];

	snprintf(err, errlen, "%s %s: %s", what, path,
	    strerror_r(e, eb, sizeof(eb)));
	return -1;
}

/* All of data to fd, through short writes and EINTR. */
static int
write_all(int fd, const char *data, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(fd, data, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int
metrics_write(const char *path, const char *data, size_t len, char *err,
    size_t errlen)
{
	char dirb[PATH_MAX], baseb[PATH_MAX], tmp[PATH_MAX];
	const char *dir, *base;
	int fd = -1, dfd = -1, rc = -1, e;

	if (path == NULL || path[0] == '\0' || strlen(path) >= PATH_MAX) {
		snprintf(err, errlen, "metrics_file: empty or too long");
		return -1;
	}
	/* dirname/basename may modify their argument: copies. */
	memcpy(dirb, path, strlen(path) + 1);
	memcpy(baseb, path, strlen(path) + 1);
	dir = dirname(dirb);
	base = basename(baseb);
	if (snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, base) >=
	    (int)sizeof(tmp)) {
		snprintf(err, errlen, "metrics_file: path too long");
		return -1;
	}
	if ((fd = mkstemp(tmp)) < 0)
		return fail(err, errlen, "cannot create a file beside", path,
		    errno);
	/* mkstemp makes 0600; node_exporter runs as another user. */
	if (fchmod(fd, 0644) != 0 || write_all(fd, data, len) != 0 ||
	    fsync(fd) != 0) {
		fail(err, errlen, "cannot write", tmp, errno);
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		fail(err, errlen, "cannot write", tmp, errno);
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		fail(err, errlen, "cannot rename to", path, errno);
		goto out;
	}
	tmp[0] = '\0';		/* it is path now: nothing to remove */
	/* The rename itself survives a crash only once the dir is synced. */
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
		(void)fsync(dfd);
	rc = 0;
out:
	e = errno;
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	if (tmp[0] != '\0')
		(void)unlink(tmp);
	errno = e;
	return rc;
}

int
metrics_update(struct metrics_state *st, const char *path,
    const struct ruleset *rs, int64_t uptime_s, int64_t now_s)
{
	struct metrics_in in;
	char err[PATH_MAX + 160];
	size_t len = 0;
	char *text;
	int rc;

	metrics_collect(&in, rs, uptime_s);
	if ((text = metrics_format(&in, &len)) == NULL) {
		snprintf(err, sizeof(err), "out of memory");
		rc = -1;
	} else
		rc = metrics_write(path, text, len, err, sizeof(err));
	free(text);
	if (rc == 0) {
		if (st->failing)
			log_notice("metrics: %s written again (%llu more "
			    "failures since the last line)", path,
			    (unsigned long long)st->quiet);
		/* A new episode of failures is news again. */
		st->failing = 0;
		st->logged = 0;
		st->quiet = 0;
		return 0;
	}
	st->failing = 1;
	if (st->logged && now_s - st->last_err_s < METRICS_ERR_QUIET_S) {
		st->quiet++;
		return -1;
	}
	if (st->quiet > 0)
		log_warning("metrics: %s (%llu more failures since the last "
		    "line)", err, (unsigned long long)st->quiet);
	else
		log_warning("metrics: %s", err);
	st->logged = 1;
	st->last_err_s = now_s;
	st->quiet = 0;
	return -1;
}

/*
 * metrics.h - the stats counters as a Prometheus text exposition file
 * (format 0.0.4) for node_exporter's textfile collector: daemon.metrics_file
 * (DESIGN.md §2, §5). No HTTP server: the collector reads the file.
 * Owns: the metric names and their text, label escaping, the atomic
 * replacement of the file and the rate limit of its error lines.
 * Not: counting (stats.c), when to write (daemon.c's timer and SIGUSR1).
 * Threads: metrics_format and metrics_write touch only their arguments;
 * a struct metrics_state belongs to one thread (daemon.c's signal loop).
 * Errors: -1 plus a message in the caller's buffer; never fatal.
 */
#ifndef WARDEN_METRICS_H
#define WARDEN_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "rules.h"
#include "stats.h"
#include "util.h"

/*
 * How often the file is rewritten when daemon.stats_interval is 0 (no
 * syslog counter lines): node_exporter scrapes every 15-60 s and flags
 * a file older than a few minutes, so "never" would be wrong here.
 */
#define METRICS_DEFAULT_INTERVAL	60
/* One failure line at most this often; the next says how many followed. */
#define METRICS_ERR_QUIET_S		300

/* A consistent-enough picture of the counters to format. */
struct metrics_in {
	int64_t		uptime_s;
	uint64_t	counters[ST_COUNT];
	uint64_t	lat[STATS_LAT_BUCKETS];	/* per bucket */
	uint64_t	lat_sum_us;
	const struct ruleset *rs;		/* borrowed; NULL: no rules */
};

/* Failure-line state of one writer (zeroed to start). */
struct metrics_state {
	int		logged;	/* a failure line was written */
	int64_t		last_err_s;	/* ... at this time */
	uint64_t	quiet;		/* failures not logged since */
	int		failing;	/* the last write failed */
};

/* Fills in from stats.c's counters; rs is borrowed for in's lifetime. */
void	metrics_collect(struct metrics_in *in, const struct ruleset *rs,
	    int64_t uptime_s);

/*
 * The exposition text for in: one # HELP and # TYPE per family, names
 * prefixed warden_, counters ending _total, rule names as escaped
 * rule="..." labels, the store latency as a histogram in seconds
 * (cumulative _bucket{le=...}, +Inf, _sum, _count). Returns the text
 * (owned: free()), NUL-terminated, its length in *len_out; NULL when
 * out of memory.
 */
char	*metrics_format(const struct metrics_in *in, size_t *len_out)
	    WARN_UNUSED;

/*
 * A label value as the text format wants it: '\\' -> "\\\\", '"' ->
 * "\\\"", LF -> "\\n". The format has no escape for other control bytes
 * or invalid UTF-8, so those become '?' (rules.c allows only
 * [A-Za-z0-9._-] in names: this is defence, not a feature). Cut to fit
 * dst, never inside an escape; always NUL-terminated. Returns dst.
 */
char	*metrics_label_esc(const char *s, char *dst, size_t dstlen);

/*
 * Replaces path atomically: a temporary file in the same directory
 * (".NAME.XXXXXX", which the collector's *.prom glob skips), mode 0644
 * so the collector's user can read it, fsync, rename over path, fsync
 * of the directory. A reader sees the old file or the new one, never a
 * part. Returns 0, or -1 with a message in err (the temporary file is
 * removed).
 */
int	metrics_write(const char *path, const char *data, size_t len,
	    char *err, size_t errlen) WARN_UNUSED;

/*
 * Collects, formats and writes to path. A failure is logged at most once
 * per METRICS_ERR_QUIET_S seconds of now_s (the next line counts the
 * ones in between); the first success after failures is logged too.
 * Returns 0 or -1.
 */
int	metrics_update(struct metrics_state *st, const char *path,
	    const struct ruleset *rs, int64_t uptime_s, int64_t now_s);

#endif

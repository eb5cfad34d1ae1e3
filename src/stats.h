/*
 * stats.h - process-wide counters and the periodic "stats:" syslog lines
 * (DESIGN.md §5). The counters are the one kind of mutable global the
 * conventions allow: atomics, bumped from every milter thread.
 * Owns: the counters, the store latency histogram (for p99), formatting
 * the lines. Not: when to print them (daemon.c's timer and SIGUSR1).
 * Threads: lock-free; all updates are relaxed atomics.
 */
#ifndef WARDEN_STATS_H
#define WARDEN_STATS_H

#include <stddef.h>
#include <stdint.h>
#include "engine.h"
#include "rules.h"

enum stat_id {
	ST_CONNECTIONS,
	ST_MESSAGES,
	ST_RCPTS,
	ST_ACCEPT,
	ST_REJECT,
	ST_TEMPFAIL,
	ST_DISCARD,
	ST_QUARANTINE,
	ST_DRYRUN,
	ST_STORE_CALLS,
	ST_STORE_ERRORS,
	ST_STORE_FALLBACKS,
	ST_RELOADS,		/* SIGHUP reloads that took effect */
	ST_RELOAD_FAILURES,	/* ... and those that kept the old config */
	ST_NOMEM,		/* commands that found no memory */
	ST_COUNT
};

/*
 * The store latency histogram: bucket 0 holds 0 us, bucket b >= 1 holds
 * [2^(b-1), 2^b) us, the last one everything from 2^(STATS_LAT_BUCKETS-2)
 * on (no upper bound).
 */
#define STATS_LAT_BUCKETS	32

void	stats_add(enum stat_id, uint64_t n);
uint64_t stats_get(enum stat_id);

/* Counts one decision (enforced verdicts and dry-run would-be ones). */
void	stats_decision(const struct engine_decision *);

/* One store round trip of us microseconds, for store_p99_us. */
void	stats_store_latency(uint64_t us);
/* The 99th percentile in microseconds (upper bucket bound), 0: none. */
uint64_t stats_store_p99(void);
/*
 * Copies the bucket counts (not cumulative) into counts_out and the sum
 * of all latencies in microseconds into *sum_us_out. Each value is read
 * atomically; the set may mix instants, like every reader here.
 */
void	stats_store_latency_read(uint64_t counts_out[STATS_LAT_BUCKETS],
	    uint64_t *sum_us_out);
/* Bucket b's exclusive upper bound in us (2^b); 0 for the last (none). */
uint64_t stats_lat_bound_us(unsigned b);

/*
 * Formats the global line ("stats: uptime=... connections=...") into
 * buf. Returns buf.
 */
const char *stats_format(int64_t uptime_s, char *buf, size_t len);
/* Formats one rule's line ("stats: rule=NAME hits=.. enforced=.. dryrun=.."). */
const char *stats_format_rule(const struct rule *, char *buf, size_t len);

/* Writes the global line and one line per rule through log.c. */
void	stats_log(const struct ruleset *, int64_t uptime_s);

/* Carries per-rule counters over a reload, matching rules by name. */
void	stats_carry(const struct ruleset *from, struct ruleset *to);

/* Zeroes every counter (tests). */
void	stats_reset(void);

#endif

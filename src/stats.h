/*
 * stats.h - process-wide counters and the periodic "stats:" syslog lines
 * (DESIGN.md §5). The counters are the one kind of mutable global the
 * conventions allow: atomics, bumped from every milter thread.
 * Owns: the counters, the store latency histogram (for p99), formatting
 * the lines. Not: when to print them (milter.c's timer and SIGUSR1).
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
	ST_COUNT
};

void	stats_add(enum stat_id, uint64_t n);
uint64_t stats_get(enum stat_id);

/* Counts one decision (enforced verdicts and dry-run would-be ones). */
void	stats_decision(const struct engine_decision *);

/* One store round trip of us microseconds, for store_p99_us. */
void	stats_store_latency(uint64_t us);
/* The 99th percentile in microseconds (upper bucket bound), 0: none. */
uint64_t stats_store_p99(void);

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

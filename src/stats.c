/*
 * stats.c - atomic counters and the "stats:" lines (DESIGN.md §5).
 * Owns: the process-wide counters (the only mutable globals besides
 * main's signal flags, as CONVENTIONS.md §1 allows) and their formats.
 * Threads: relaxed atomics; a reader may see counters from slightly
 * different instants, which is fine for monitoring.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "stats.h"

/* Latency buckets: [0,1us), [1,2), [2,4) ... up to 2^31 us. */
#define LAT_BUCKETS	STATS_LAT_BUCKETS

static _Atomic uint64_t counters[ST_COUNT];
static _Atomic uint64_t latency[LAT_BUCKETS];
/* Sum of every latency in us: the histogram's _sum for Prometheus. */
static _Atomic uint64_t latency_sum;

void
stats_add(enum stat_id s, uint64_t n)
{
	atomic_fetch_add_explicit(&counters[s], n, memory_order_relaxed);
}

uint64_t
stats_get(enum stat_id s)
{
	return atomic_load_explicit(&counters[s], memory_order_relaxed);
}

void
stats_decision(const struct engine_decision *d)
{
	if (d->dryrun) {
		stats_add(ST_DRYRUN, 1);
		return;
	}
	switch (d->action) {
	case ACTION_ACCEPT:
		stats_add(ST_ACCEPT, 1);
		break;
	case ACTION_REJECT:
		stats_add(ST_REJECT, 1);
		break;
	case ACTION_TEMPFAIL:
		stats_add(ST_TEMPFAIL, 1);
		break;
	case ACTION_DISCARD:
		stats_add(ST_DISCARD, 1);
		break;
	case ACTION_QUARANTINE:
		stats_add(ST_QUARANTINE, 1);
		break;
	default:
		break;
	}
}

void
stats_store_latency(uint64_t us)
{
	unsigned b = 0;

	/* Wraps after 584,000 years of store time; counters may wrap. */
	atomic_fetch_add_explicit(&latency_sum, us, memory_order_relaxed);
	while (us > 0 && b < LAT_BUCKETS - 1) {
		us >>= 1;
		b++;
	}
	atomic_fetch_add_explicit(&latency[b], 1, memory_order_relaxed);
}

void
stats_store_latency_read(uint64_t counts_out[STATS_LAT_BUCKETS],
    uint64_t *sum_us_out)
{
	unsigned b;

	for (b = 0; b < LAT_BUCKETS; b++)
		counts_out[b] = atomic_load_explicit(&latency[b],
		    memory_order_relaxed);
	*sum_us_out = atomic_load_explicit(&latency_sum,
	    memory_order_relaxed);
}

uint64_t
stats_lat_bound_us(unsigned b)
{
	return b < LAT_BUCKETS - 1 ? (uint64_t)1 << b : 0;
}

uint64_t
stats_store_p99(void)
{
	uint64_t n[LAT_BUCKETS], total = 0, seen = 0;
	unsigned b;

	for (b = 0; b < LAT_BUCKETS; b++)
		total += n[b] = atomic_load_explicit(&latency[b],
		    memory_order_relaxed);
	if (total == 0)
		return 0;
	for (b = 0; b < LAT_BUCKETS; b++) {
		seen += n[b];
		/* seen/total >= 0.99 without floating point */
		if (seen * 100 >= total * 99)
			return b == 0 ? 1 : (uint64_t)1 << b;
	}
	return (uint64_t)1 << (LAT_BUCKETS - 1);
}

const char *
stats_format(int64_t uptime_s, char *buf, size_t len)
{
	snprintf(buf, len, "stats: uptime=%lld connections=%llu messages=%llu "
	    "rcpts=%llu accept=%llu reject=%llu tempfail=%llu discard=%llu "
	    "quarantine=%llu dryrun=%llu store_calls=%llu store_errors=%llu "
	    "store_fallbacks=%llu store_p99_us=%llu nomem=%llu",
	    (long long)uptime_s,
	    (unsigned long long)stats_get(ST_CONNECTIONS),
	    (unsigned long long)stats_get(ST_MESSAGES),
	    (unsigned long long)stats_get(ST_RCPTS),
	    (unsigned long long)stats_get(ST_ACCEPT),
	    (unsigned long long)stats_get(ST_REJECT),
	    (unsigned long long)stats_get(ST_TEMPFAIL),
	    (unsigned long long)stats_get(ST_DISCARD),
	    (unsigned long long)stats_get(ST_QUARANTINE),
	    (unsigned long long)stats_get(ST_DRYRUN),
	    (unsigned long long)stats_get(ST_STORE_CALLS),
	    (unsigned long long)stats_get(ST_STORE_ERRORS),
	    (unsigned long long)stats_get(ST_STORE_FALLBACKS),
	    (unsigned long long)stats_store_p99(),
	    (unsigned long long)stats_get(ST_NOMEM));
	return buf;
}

const char *
stats_format_rule(const struct rule *r, char *buf, size_t len)
{
	snprintf(buf, len, "stats: rule=%s hits=%llu enforced=%llu dryrun=%llu",
	    r->name, (unsigned long long)atomic_load(&r->hits),
	    (unsigned long long)atomic_load(&r->enforced),
	    (unsigned long long)atomic_load(&r->dryrun));
	return buf;
}

void
stats_log(const struct ruleset *rs, int64_t uptime_s)
{
	char buf[512];
	size_t i;

	log_info("%s", stats_format(uptime_s, buf, sizeof(buf)));
	/* Every rule, idle ones too: hits=0 says a rule never fires. */
	for (i = 0; rs != NULL && i < rs->nrules; i++)
		log_info("%s", stats_format_rule(rs->rules[i], buf,
		    sizeof(buf)));
}

void
stats_carry(const struct ruleset *from, struct ruleset *to)
{
	const struct rule *o;
	size_t i;

	if (from == NULL)
		return;
	for (i = 0; i < to->nrules; i++) {
		if ((o = rules_find(from, to->rules[i]->name)) == NULL)
			continue;
		atomic_store(&to->rules[i]->hits, atomic_load(&o->hits));
		atomic_store(&to->rules[i]->enforced,
		    atomic_load(&o->enforced));
		atomic_store(&to->rules[i]->dryrun, atomic_load(&o->dryrun));
	}
}

void
stats_reset(void)
{
	unsigned i;

	for (i = 0; i < ST_COUNT; i++)
		atomic_store(&counters[i], 0);
	for (i = 0; i < LAT_BUCKETS; i++)
		atomic_store(&latency[i], 0);
	atomic_store(&latency_sum, 0);
}

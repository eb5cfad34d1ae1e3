/*
 * gcra.h - the Generic Cell Rate Algorithm's arithmetic (DESIGN.md §3),
 * shared by every store so that they give identical verdicts.
 * Owns: the math only. Not: where the state (one timestamp, the TAT) lives.
 * Threads: pure functions. Time is a parameter, in nanoseconds.
 *
 * A limit "N/PERIOD, burst B" has emission interval T = PERIOD/N: up to B
 * events may come at once, then one per T. An event of cost c is allowed
 * when max(tat, now) + c*T - B*T <= now; then tat becomes
 * max(tat, now) + c*T. A refused event leaves tat unchanged.
 */
#ifndef WARDEN_GCRA_H
#define WARDEN_GCRA_H

#include <stdint.h>
#include "util.h"

#define NS_PER_SEC	1000000000LL

struct gcra_limit {
	int64_t		interval_ns;	/* T = period / N, >= 1 */
	int64_t		burst;		/* B >= 1 */
	int64_t		period_ns;	/* for retry_after when cost > B */
};

struct gcra_result {
	int		allowed;
	int64_t		new_tat;	/* the TAT to store (== tat if refused) */
	int64_t		retry_after_ns;	/* refused: wait this long; else 0 */
	int64_t		ttl_ns;		/* how long the stored TAT matters */
};

/*
 * Fills l for "count per period_ns, burst" (burst 0: count). T is
 * period_ns / count rounded down, so the limit errs by under 1 ns per
 * event towards letting through; but T is at least 1 ns, which caps any
 * rate at 10^9 events a second. Returns 0, or -1 when count or
 * period_ns is below 1 or burst is negative.
 */
int	gcra_limit_init(struct gcra_limit *l, int64_t count, int64_t period_ns,
	    int64_t burst) WARN_UNUSED;

/*
 * Fills r for one event of cost (>= 1) against the stored tat (0: none)
 * at now. When cost exceeds the burst the event can never pass; it is
 * refused with retry_after = period.
 */
void	gcra_eval(const struct gcra_limit *, int64_t tat, int64_t cost,
	    int64_t now, struct gcra_result *r);

/* The TAT after undoing a charge of cost (never before now). */
int64_t	gcra_refund(const struct gcra_limit *, int64_t tat, int64_t cost,
	    int64_t now);

/* Seconds for %{retry_after}: rounded up, at least 1 when refused. */
int64_t	gcra_retry_secs(int64_t retry_after_ns);

/*
 * Parses "N/PERIOD" with PERIOD one of Ns, Nm, Nh, Nd or s, m, h, d
 * (meaning 1). Returns 0 and fills count and period_ns, or -1 with a
 * reason in err.
 */
int	gcra_parse_rate(const char *s, int64_t *count, int64_t *period_ns,
	    char *err, size_t errlen) WARN_UNUSED;

#endif

/*
 * gcra.c - the Generic Cell Rate Algorithm's arithmetic and the "N/PERIOD"
 * rate syntax (DESIGN.md §3). Both stores call this, so a key gets the
 * same verdict whichever store holds its TAT.
 * Owns: the math and the rate parser. Not: storing TATs, reading clocks.
 * Threads: pure functions; results go to the caller's structs/buffers.
 * Errors: gcra_parse_rate and gcra_limit_init return -1 (with a reason
 * for the parser). Arithmetic saturates at INT64_MIN/MAX instead of
 * wrapping, so a hostile cost (a 10^12-byte "message") cannot overflow.
 * Verdicts are exact while the burst window B*T and the stored TATs stay
 * below 2^63 ns (year 2262); past that saturation errs towards allowing.
 */
#include <stdarg.h>
#include <stdio.h>

#include "gcra.h"

#define GCRA_COUNT_MAX	1000000000000LL	/* 10^12 events per period */

static int64_t
sub_sat(int64_t a, int64_t b)
{
	int64_t r;

	if (__builtin_sub_overflow(a, b, &r))
		return b > 0 ? INT64_MIN : INT64_MAX;
	return r;
}

int
gcra_limit_init(struct gcra_limit *l, int64_t count, int64_t period_ns,
    int64_t burst)
{
	if (count < 1 || period_ns < 1 || burst < 0)
		return -1;
	/* Rounding down: "3/1s" gives 333333333 ns, never a stricter T. */
	l->interval_ns = period_ns / count;
	if (l->interval_ns < 1)
		l->interval_ns = 1;
	l->burst = burst > 0 ? burst : count;
	l->period_ns = period_ns;
	return 0;
}

void
gcra_eval(const struct gcra_limit *l, int64_t tat, int64_t cost,
    int64_t now, struct gcra_result *r)
{
	/* A zeroed or corrupt limit must not divide time into nothing. */
	int64_t t = l->interval_ns > 0 ? l->interval_ns : 1;
	int64_t b = l->burst > 0 ? l->burst : 1;
	int64_t base, new_tat, allow_at;

	/*
	 * The engine promises cost >= 1. A zero or negative cost would be a
	 * free pass or a disguised refund, so it is charged as 1.
	 */
	if (cost < 1)
		cost = 1;
	r->allowed = 0;
	r->new_tat = tat;
	r->retry_after_ns = 0;
	r->ttl_ns = sub_sat(tat, now);
	if (cost > b) {
		/* Can never pass; "a period" is the honest retry hint. */
		r->retry_after_ns = l->period_ns > 0 ? l->period_ns :
		    i64_mul_sat(b, t);
		return;
	}
	base = tat > now ? tat : now;
	new_tat = i64_add_sat(base, i64_mul_sat(cost, t));
	allow_at = sub_sat(new_tat, i64_mul_sat(b, t));
	if (allow_at > now) {
		r->retry_after_ns = sub_sat(allow_at, now);
		return;
	}
	r->allowed = 1;
	r->new_tat = new_tat;
	r->ttl_ns = sub_sat(new_tat, now);
}

int64_t
gcra_refund(const struct gcra_limit *l, int64_t tat, int64_t cost,
    int64_t now)
{
	int64_t t = l->interval_ns > 0 ? l->interval_ns : 1;
	int64_t r;

	/* Same clamp as gcra_eval, so a charge and its refund cancel. */
	if (cost < 1)
		cost = 1;
	r = sub_sat(tat, i64_mul_sat(cost, t));
	/* A TAT before now means "fresh" already; refunding gives no credit. */
	return r > now ? r : now;
}

int64_t
gcra_retry_secs(int64_t retry_after_ns)
{
	if (retry_after_ns <= 0)
		return 0;
	/* Round up: "retry in 0s" after a refusal would be a lie. */
	return (retry_after_ns - 1) / NS_PER_SEC + 1;
}

static int PRINTF_LIKE(3, 4)
parse_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/*
 * Reads the decimal digits at *pp into *out. Returns the number of digits
 * read (0: none), or -1 when the value exceeds max.
 */
static int
parse_digits(const char **pp, int64_t max, int64_t *out)
{
	const char *p = *pp;
	int64_t v = 0;
	int n = 0;

	while (*p >= '0' && *p <= '9') {
		if (v > (max - (*p - '0')) / 10)
			return -1;
		v = v * 10 + (*p - '0');
		p++;
		n++;
	}
	*pp = p;
	*out = v;
	return n;
}

static int64_t
unit_ns(char c)
{
	switch (c) {
	case 's':
		return NS_PER_SEC;
	case 'm':
		return 60 * NS_PER_SEC;
	case 'h':
		return 3600 * NS_PER_SEC;
	case 'd':
		return 86400 * NS_PER_SEC;
	default:
		return 0;
	}
}

int
gcra_parse_rate(const char *s, int64_t *count, int64_t *period_ns,
    char *err, size_t errlen)
{
	const char *p = s;
	int64_t n, mult, unit, period;
	int nd;

	if (s == NULL || *s == '\0')
		return parse_fail(err, errlen, "empty rate, want N/PERIOD "
		    "such as 3/1m");
	nd = parse_digits(&p, GCRA_COUNT_MAX, &n);
	if (nd < 0)
		return parse_fail(err, errlen, "count exceeds %lld",
		    GCRA_COUNT_MAX);
	if (nd == 0)
		return parse_fail(err, errlen, "want N/PERIOD with N a "
		    "positive integer, such as 3/1m");
	if (n == 0)
		return parse_fail(err, errlen, "count must be at least 1 "
		    "(a zero rate refuses everything; use reject instead)");
	if (*p != '/')
		return parse_fail(err, errlen, "want '/' after the count, "
		    "as in 3/1m");
	p++;
	if (*p == '-' || *p == '+')
		return parse_fail(err, errlen, "period must be a plain "
		    "positive number with a unit, such as 1m");
	/* INT64_MAX bounds the multiplier; the product is checked below. */
	nd = parse_digits(&p, INT64_MAX, &mult);
	if (nd < 0)
		return parse_fail(err, errlen, "period too large");
	if (nd == 0)
		mult = 1;
	else if (mult == 0)
		return parse_fail(err, errlen, "period must be positive");
	if (*p == '\0')
		return parse_fail(err, errlen, "period needs a unit: s, m, h "
		    "or d");
	unit = unit_ns(*p);
	if (unit == 0) {
		if (*p > ' ' && *p < 0x7f)
			return parse_fail(err, errlen, "unknown period unit "
			    "'%c', want s, m, h or d", *p);
		return parse_fail(err, errlen, "unexpected character in "
		    "period, want a count and s, m, h or d");
	}
	if (p[1] != '\0')
		return parse_fail(err, errlen, "unexpected text after the "
		    "period unit");
	if (__builtin_mul_overflow(mult, unit, &period))
		return parse_fail(err, errlen, "period too large");
	*count = n;
	*period_ns = period;
	return 0;
}

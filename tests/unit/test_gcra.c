/*
 * test_gcra.c - GCRA arithmetic, the rate parser and SipHash-2-4.
 * Every expected value is worked out by hand from the definition in
 * gcra.h (allowed when max(tat, now) + c*T - B*T <= now) or, for SipHash,
 * taken from the reference vectors published with the paper; none is
 * computed by the code under test.
 */
#include "testutil.h"

#include <limits.h>

#include "gcra.h"
#include "siphash.h"

#define S	NS_PER_SEC
#define MS	1000000LL
/* Any "now" but 0, which would mean "no TAT". */
#define T0	(1700000000LL * S)

struct step {
	int64_t		at;		/* now = T0 + at */
	int64_t		cost;		/* 0 ends the list */
	int		rep;		/* repeat this many times (0: once) */
	int		allowed;	/* every repetition */
	int64_t		retry_ns;	/* of the last repetition */
	int64_t		ttl_ns;		/* likewise */
};

struct gcra_case {
	const char	*name;
	int64_t		count, period, burst;	/* burst 0: default N */
	struct step	steps[12];
};

static const struct gcra_case gcra_cases[] = {
	/* DESIGN.md §3: T = 20 s, B = 3. */
	{ "3/1m burst then steady", 3, 60 * S, 0, {
		{ 0, 1, 0, 1, 0, 20 * S },
		{ 0, 1, 0, 1, 0, 40 * S },
		{ 0, 1, 0, 1, 0, 60 * S },
		{ 0, 1, 0, 0, 20 * S, 60 * S },
		{ 20 * S - 1, 1, 0, 0, 1, 40 * S + 1 },
		{ 20 * S, 1, 0, 1, 0, 60 * S },
		{ 20 * S, 1, 0, 0, 20 * S, 60 * S },
		{ 60 * S, 1, 0, 1, 0, 40 * S },
		{ 60 * S, 1, 0, 1, 0, 60 * S },
		{ 60 * S, 1, 0, 0, 20 * S, 60 * S },
	} },
	/* A refused event is not charged: else 1 s would not be enough. */
	{ "refused events are not charged", 1, S, 0, {
		{ 0, 1, 0, 1, 0, S },
		{ 500 * MS, 1, 0, 0, 500 * MS, 500 * MS },
		{ 900 * MS, 1, 0, 0, 100 * MS, 100 * MS },
		{ S, 1, 0, 1, 0, S },
		{ S, 1, 0, 0, S, S },
	} },
	/* T = 3600/200 = 18 s; B = 50 < N. */
	{ "200/1h burst 50", 200, 3600 * S, 50, {
		{ 0, 1, 50, 1, 0, 900 * S },
		{ 0, 1, 0, 0, 18 * S, 900 * S },
		{ 18 * S, 1, 0, 1, 0, 900 * S },
		{ 18 * S, 1, 0, 0, 18 * S, 900 * S },
	} },
	/* T = 60 s; B = 5 > N. */
	{ "1/1m burst 5", 1, 60 * S, 5, {
		{ 0, 1, 5, 1, 0, 300 * S },
		{ 0, 1, 0, 0, 60 * S, 300 * S },
		{ 60 * S, 1, 0, 1, 0, 300 * S },
		{ 119 * S, 1, 0, 0, S, 241 * S },
	} },
	/* T = 100 ms, B = 10. */
	{ "cost above 1", 10, S, 0, {
		{ 0, 4, 0, 1, 0, 400 * MS },
		{ 0, 6, 0, 1, 0, S },
		{ 0, 1, 0, 0, 100 * MS, S },
		{ 250 * MS, 3, 0, 0, 50 * MS, 750 * MS },
		{ 300 * MS, 3, 0, 1, 0, S },
	} },
	/* T = 100 ms, B = 5: a cost of 6 can never pass; retry = period. */
	{ "cost above burst", 10, S, 5, {
		{ 0, 6, 0, 0, S, -T0 },
		{ 0, 5, 0, 1, 0, 500 * MS },
		{ 0, 6, 0, 0, S, 500 * MS },
		{ 0, 1, 0, 0, 100 * MS, 500 * MS },
	} },
	/* T = 500 ms: after idling, the key behaves fresh; ttl goes <= 0. */
	{ "expiry", 2, S, 0, {
		{ 0, 1, 0, 1, 0, 500 * MS },
		{ 0, 1, 0, 1, 0, S },
		{ 0, 1, 0, 0, 500 * MS, S },
		{ 10 * S, 1, 0, 1, 0, 500 * MS },
		{ 10 * S, 1, 0, 1, 0, S },
		{ 10 * S, 1, 0, 0, 500 * MS, S },
		{ 20 * S, 3, 0, 0, S, -9 * S },
	} },
	/* Bytes: T = 86400 ns, B = 10^9; a 10^12-byte message never fits. */
	{ "hostile cost in bytes", 1000000000, 86400 * S, 0, {
		{ 0, 1000000000000LL, 0, 0, 86400 * S, -T0 },
		{ 0, 1000000000, 0, 1, 0, 86400 * S },
		{ 0, 1, 0, 0, 86400, 86400 * S },
	} },
	/* cost 0 or negative is charged as 1 (T = 20 s). */
	{ "cost below 1 counts as 1", 3, 60 * S, 0, {
		{ 0, -5, 0, 1, 0, 20 * S },
		{ 0, INT64_MIN, 0, 1, 0, 40 * S },
	} },
};

static void
test_gcra_table(void **state)
{
	const struct gcra_case *c;
	const struct step *st;
	struct gcra_limit l;
	struct gcra_result r;
	int64_t tat;
	size_t i, j;
	int k, rep;

	(void)state;
	for (i = 0; i < NELEM(gcra_cases); i++) {
		c = &gcra_cases[i];
		assert_int_equal(gcra_limit_init(&l, c->count, c->period,
		    c->burst), 0);
		tat = 0;
		for (j = 0; j < NELEM(c->steps) && c->steps[j].cost != 0;
		    j++) {
			st = &c->steps[j];
			rep = st->rep > 0 ? st->rep : 1;
			for (k = 0; k < rep; k++) {
				gcra_eval(&l, tat, st->cost, T0 + st->at, &r);
				if (r.allowed != st->allowed)
					fail_msg("%s step %zu rep %d: allowed "
					    "got %d, want %d", c->name, j, k,
					    r.allowed, st->allowed);
				if (!r.allowed && r.new_tat != tat)
					fail_msg("%s step %zu: refused but tat "
					    "got %lld, want %lld", c->name, j,
					    (long long)r.new_tat,
					    (long long)tat);
				tat = r.new_tat;
			}
			if (r.retry_after_ns != st->retry_ns)
				fail_msg("%s step %zu: retry_after got %lld, "
				    "want %lld", c->name, j,
				    (long long)r.retry_after_ns,
				    (long long)st->retry_ns);
			if (r.ttl_ns != st->ttl_ns)
				fail_msg("%s step %zu: ttl got %lld, want "
				    "%lld", c->name, j, (long long)r.ttl_ns,
				    (long long)st->ttl_ns);
		}
	}
}

/* Products past 2^63 saturate instead of wrapping negative. */
static void
test_gcra_saturation(void **state)
{
	struct gcra_limit l = { 86400 * S, 1000000000000LL, 86400 * S };
	struct gcra_result r;

	(void)state;
	/* c == B, fresh: allowed; c*T = 8.64e25 ns saturates. */
	gcra_eval(&l, 0, 1000000000000LL, T0, &r);
	if (!r.allowed || r.new_tat != INT64_MAX ||
	    r.ttl_ns != INT64_MAX - T0)
		fail_msg("c=B=1e12 T=1d: got allowed %d tat %lld ttl %lld, "
		    "want 1 %lld %lld", r.allowed, (long long)r.new_tat,
		    (long long)r.ttl_ns, (long long)INT64_MAX,
		    (long long)(INT64_MAX - T0));
	/* Any cost above B is refused for a period, even INT64_MAX. */
	gcra_eval(&l, T0, INT64_MAX, T0, &r);
	if (r.allowed || r.retry_after_ns != 86400 * S || r.new_tat != T0)
		fail_msg("cost INT64_MAX: got allowed %d retry %lld tat %lld, "
		    "want 0 %lld %lld", r.allowed, (long long)r.retry_after_ns,
		    (long long)r.new_tat, (long long)(86400 * S),
		    (long long)T0);
	/* Refunding more than there is stops at now. */
	if (gcra_refund(&l, INT64_MAX, INT64_MAX, T0) != T0)
		fail_msg("refund INT64_MAX: got %lld, want %lld",
		    (long long)gcra_refund(&l, INT64_MAX, INT64_MAX, T0),
		    (long long)T0);
	/* A zeroed limit is clamped (T = 1 ns, B = 1), not divided by. */
	memset(&l, 0, sizeof(l));
	gcra_eval(&l, 0, 1, T0, &r);
	if (!r.allowed || r.new_tat != T0 + 1)
		fail_msg("zero limit: got allowed %d tat %lld, want 1 %lld",
		    r.allowed, (long long)r.new_tat, (long long)(T0 + 1));
}

static void
test_gcra_refund(void **state)
{
	static const struct {
		int64_t		tat, cost, now, want;
	} cases[] = {
		/* 3/1m: T = 20 s. */
		{ T0 + 60 * S, 1, T0, T0 + 40 * S },
		{ T0 + 60 * S, 2, T0, T0 + 20 * S },
		{ T0 + 60 * S, 3, T0, T0 },
		{ T0 + 60 * S, 5, T0, T0 },		/* never before now */
		{ T0 + 60 * S, 1, T0 + 50 * S, T0 + 50 * S },
		{ T0 - 5 * S, 1, T0, T0 },		/* already expired */
		{ T0 + 60 * S, 0, T0, T0 + 40 * S },	/* cost 0 = 1 */
	};
	struct gcra_limit l;
	int64_t got;
	size_t i;

	(void)state;
	assert_int_equal(gcra_limit_init(&l, 3, 60 * S, 0), 0);
	for (i = 0; i < NELEM(cases); i++) {
		got = gcra_refund(&l, cases[i].tat, cases[i].cost,
		    cases[i].now);
		if (got != cases[i].want)
			fail_msg("refund case %zu: got %lld, want %lld", i,
			    (long long)got, (long long)cases[i].want);
	}
}

static void
test_gcra_retry_secs(void **state)
{
	static const struct {
		int64_t		ns, want;
	} cases[] = {
		{ 0, 0 }, { -5, 0 }, { 1, 1 }, { S, 1 }, { S + 1, 2 },
		{ 19 * S + 500 * MS, 20 }, { 20 * S, 20 },
		{ INT64_MAX, 9223372037LL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++)
		if (gcra_retry_secs(cases[i].ns) != cases[i].want)
			fail_msg("retry_secs(%lld): got %lld, want %lld",
			    (long long)cases[i].ns,
			    (long long)gcra_retry_secs(cases[i].ns),
			    (long long)cases[i].want);
}

static void
test_gcra_limit_init(void **state)
{
	static const struct {
		int64_t		count, period, burst;
		int		ret;
		int64_t		t, b;
	} cases[] = {
		{ 3, 60 * S, 0, 0, 20 * S, 3 },
		{ 200, 3600 * S, 50, 0, 18 * S, 50 },
		{ 3, S, 0, 0, 333333333, 3 },		/* rounded down */
		{ 1000000000000LL, S, 0, 0, 1, 1000000000000LL }, /* >= 1 */
		{ 7, 1, 2, 0, 1, 2 },
		{ 0, S, 0, -1, 0, 0 },
		{ -1, S, 0, -1, 0, 0 },
		{ 1, 0, 0, -1, 0, 0 },
		{ 1, S, -1, -1, 0, 0 },
	};
	struct gcra_limit l;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		memset(&l, 0, sizeof(l));
		ret = gcra_limit_init(&l, cases[i].count, cases[i].period,
		    cases[i].burst);
		if (ret != cases[i].ret)
			fail_msg("limit_init case %zu: got %d, want %d", i,
			    ret, cases[i].ret);
		if (ret == 0 && (l.interval_ns != cases[i].t ||
		    l.burst != cases[i].b || l.period_ns != cases[i].period))
			fail_msg("limit_init case %zu: got T %lld B %lld P %lld"
			    ", want %lld %lld %lld", i,
			    (long long)l.interval_ns, (long long)l.burst,
			    (long long)l.period_ns, (long long)cases[i].t,
			    (long long)cases[i].b, (long long)cases[i].period);
	}
}

static const struct {
	const char	*in;
	int64_t		count, period;	/* count 0: must be rejected */
	const char	*err;		/* substring of the reason */
} rate_cases[] = {
	{ "3/1m", 3, 60 * S, NULL },
	{ "200/1h", 200, 3600 * S, NULL },
	{ "10/s", 10, S, NULL },
	{ "5/30s", 5, 30 * S, NULL },
	{ "1/2d", 1, 2 * 86400 * S, NULL },
	{ "1/m", 1, 60 * S, NULL },
	{ "07/1h", 7, 3600 * S, NULL },
	{ "1000000000000/1s", 1000000000000LL, S, NULL },
	{ "1/106751d", 1, 106751LL * 86400 * S, NULL },
	{ "", 0, 0, "empty" },
	{ "0/1m", 0, 0, "at least 1" },
	{ "3/0m", 0, 0, "positive" },
	{ "-3/1m", 0, 0, "positive integer" },
	{ "+3/1m", 0, 0, "positive integer" },
	{ "3/-1m", 0, 0, "plain positive" },
	{ "3/+1m", 0, 0, "plain positive" },
	{ "3/1", 0, 0, "needs a unit" },
	{ "3/", 0, 0, "needs a unit" },
	{ "3/1x", 0, 0, "unknown period unit 'x'" },
	{ "3/1M", 0, 0, "unknown period unit 'M'" },
	{ "3/1mm", 0, 0, "after the period unit" },
	{ "3/1.5m", 0, 0, "unknown period unit '.'" },
	{ "3.5/1m", 0, 0, "want '/'" },
	{ "3m", 0, 0, "want '/'" },
	{ "3", 0, 0, "want '/'" },
	{ "/1m", 0, 0, "positive integer" },
	{ "abc", 0, 0, "positive integer" },
	{ " 3/1m", 0, 0, "positive integer" },
	{ "3 /1m", 0, 0, "want '/'" },
	{ "3/ 1m", 0, 0, "unexpected character" },
	{ "3/1 m", 0, 0, "unexpected character" },
	{ "3/1m ", 0, 0, "after the period unit" },
	{ "3/1m\n", 0, 0, "after the period unit" },
	{ "1000000000001/1s", 0, 0, "exceeds" },
	{ "99999999999999999999/1s", 0, 0, "exceeds" },
	{ "1/99999999999999999999s", 0, 0, "too large" },
	{ "1/106752d", 0, 0, "too large" },
};

static void
test_gcra_parse_rate(void **state)
{
	char err[128];
	int64_t count, period;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < NELEM(rate_cases); i++) {
		count = period = -7;
		err[0] = '\0';
		ret = gcra_parse_rate(rate_cases[i].in, &count, &period, err,
		    sizeof(err));
		if (rate_cases[i].count > 0) {
			if (ret != 0 || count != rate_cases[i].count ||
			    period != rate_cases[i].period)
				fail_msg("\"%s\": got %d %lld/%lld (%s), want "
				    "0 %lld/%lld", rate_cases[i].in, ret,
				    (long long)count, (long long)period, err,
				    (long long)rate_cases[i].count,
				    (long long)rate_cases[i].period);
			continue;
		}
		if (ret != -1 || count != -7 || period != -7)
			fail_msg("\"%s\": got %d %lld/%lld, want -1 and the "
			    "outputs untouched", rate_cases[i].in, ret,
			    (long long)count, (long long)period);
		if (strstr(err, rate_cases[i].err) == NULL)
			fail_msg("\"%s\": reason got \"%s\", want one with "
			    "\"%s\"", rate_cases[i].in, err,
			    rate_cases[i].err);
	}
	/* No buffer, a tiny one, no input: no crash, still -1. */
	assert_int_equal(gcra_parse_rate("0/1m", &count, &period, NULL, 0),
	    -1);
	assert_int_equal(gcra_parse_rate("0/1m", &count, &period, err, 4),
	    -1);
	assert_int_equal(strlen(err), 3);
	assert_int_equal(gcra_parse_rate(NULL, &count, &period, err,
	    sizeof(err)), -1);
}

/*
 * The SipHash paper's Appendix A vector (15-byte message) and others of
 * the reference set: key 00..0f, message 00 01 .. (len-1). The lengths
 * cover the empty message, a lone tail, one full word and word + tail.
 */
static void
test_siphash_vectors(void **state)
{
	static const struct {
		size_t		len;
		uint64_t	want;
	} cases[] = {
		{ 0, 0x726fdb47dd0e0e31ULL },
		{ 1, 0x74f839c593dc67fdULL },
		{ 7, 0xab0200f58b01d137ULL },
		{ 8, 0x93f5f5799a932462ULL },
		{ 15, 0xa129ca6149be45e5ULL },
		{ 16, 0x3f2acc7f57c29bdbULL },
		{ 63, 0x958a324ceb064572ULL },
	};
	uint8_t key[16], msg[64], shifted[65];
	uint64_t got;
	size_t i;

	(void)state;
	for (i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	memcpy(shifted + 1, msg, sizeof(msg));
	for (i = 0; i < NELEM(cases); i++) {
		got = siphash24(key, msg, cases[i].len);
		if (got != cases[i].want)
			fail_msg("siphash24 len %zu: got %016llx, want %016llx",
			    cases[i].len, (unsigned long long)got,
			    (unsigned long long)cases[i].want);
		/* Misaligned input reads the same bytes. */
		got = siphash24(key, shifted + 1, cases[i].len);
		if (got != cases[i].want)
			fail_msg("siphash24 len %zu unaligned: got %016llx, "
			    "want %016llx", cases[i].len,
			    (unsigned long long)got,
			    (unsigned long long)cases[i].want);
	}
	/* The empty message with a NULL pointer is allowed. */
	assert_true(siphash24(key, NULL, 0) == 0x726fdb47dd0e0e31ULL);
	/* Another key, another value. */
	key[0] ^= 1;
	assert_true(siphash24(key, msg, 15) != 0xa129ca6149be45e5ULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gcra_table),
		cmocka_unit_test(test_gcra_saturation),
		cmocka_unit_test(test_gcra_refund),
		cmocka_unit_test(test_gcra_retry_secs),
		cmocka_unit_test(test_gcra_limit_init),
		cmocka_unit_test(test_gcra_parse_rate),
		cmocka_unit_test(test_siphash_vectors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

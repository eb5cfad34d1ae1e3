/*
 * test_store_memory.c - the embedded store and the failing store: GCRA
 * verdicts through the store (fake clock, several independent keys),
 * eviction of the least recently used entry, reuse of expired entries,
 * refund, peek, batches, bounds, and four threads on the same keys.
 * Expected values are worked out by hand from the GCRA definition.
 */
#include "testutil.h"

#include <pthread.h>

#include "store.h"

#define S	NS_PER_SEC
#define MS	1000000LL
#define T0	(1700000000LL * S)

struct step {
	int64_t		at;		/* now = base + at */
	int64_t		cost;		/* 0 ends the list */
	int		rep;		/* repeat (0: once) */
	int		allowed;
	int64_t		retry_ns;
};

/* The cases of test_gcra.c without ttl, which the store does not show. */
static const struct {
	const char	*name;
	int64_t		count, period, burst;
	struct step	steps[12];
} cases[] = {
	{ "3/1m burst then steady", 3, 60 * S, 0, {
		{ 0, 1, 3, 1, 0 },
		{ 0, 1, 0, 0, 20 * S },
		{ 20 * S - 1, 1, 0, 0, 1 },
		{ 20 * S, 1, 0, 1, 0 },
		{ 20 * S, 1, 0, 0, 20 * S },
		{ 60 * S, 1, 2, 1, 0 },
		{ 60 * S, 1, 0, 0, 20 * S },
	} },
	{ "refused events are not charged", 1, S, 0, {
		{ 0, 1, 0, 1, 0 },
		{ 500 * MS, 1, 0, 0, 500 * MS },
		{ 900 * MS, 1, 0, 0, 100 * MS },
		{ S, 1, 0, 1, 0 },
		{ S, 1, 0, 0, S },
	} },
	{ "200/1h burst 50", 200, 3600 * S, 50, {
		{ 0, 1, 50, 1, 0 },
		{ 0, 1, 0, 0, 18 * S },
		{ 18 * S, 1, 0, 1, 0 },
		{ 18 * S, 1, 0, 0, 18 * S },
	} },
	{ "1/1m burst 5", 1, 60 * S, 5, {
		{ 0, 1, 5, 1, 0 },
		{ 0, 1, 0, 0, 60 * S },
		{ 60 * S, 1, 0, 1, 0 },
		{ 119 * S, 1, 0, 0, S },
	} },
	{ "cost above 1", 10, S, 0, {
		{ 0, 4, 0, 1, 0 },
		{ 0, 6, 0, 1, 0 },
		{ 0, 1, 0, 0, 100 * MS },
		{ 250 * MS, 3, 0, 0, 50 * MS },
		{ 300 * MS, 3, 0, 1, 0 },
	} },
	{ "cost above burst", 10, S, 5, {
		{ 0, 6, 0, 0, S },
		{ 0, 5, 0, 1, 0 },
		{ 0, 6, 0, 0, S },
		{ 0, 1, 0, 0, 100 * MS },
	} },
	{ "expiry", 2, S, 0, {
		{ 0, 1, 2, 1, 0 },
		{ 0, 1, 0, 0, 500 * MS },
		{ 10 * S, 1, 2, 1, 0 },
		{ 10 * S, 1, 0, 0, 500 * MS },
	} },
	{ "hostile cost in bytes", 1000000000, 86400 * S, 0, {
		{ 0, 1000000000000LL, 0, 0, 86400 * S },
		{ 0, 1000000000, 0, 1, 0 },
		{ 0, 1, 0, 0, 86400 },
	} },
};

static void
req_set(struct store_req *rq, const char *key, int64_t count, int64_t period,
    int64_t burst, int64_t cost)
{
	memset(rq, 0, sizeof(*rq));
	rq->key = key;
	rq->keylen = strlen(key);
	rq->cost = cost;
	assert_int_equal(gcra_limit_init(&rq->limit, count, period, burst),
	    0);
}

/* Charges (or peeks) one key; returns its result. */
static struct store_res
one(struct store *s, const char *key, int64_t count, int64_t period,
    int64_t burst, int64_t cost, int64_t now, int peek)
{
	struct store_req rq;
	struct store_res rs;

	req_set(&rq, key, count, period, burst, cost);
	memset(&rs, 0x55, sizeof(rs));
	if (peek)
		assert_int_equal(store_peek(s, &rq, &rs, 1, now), 0);
	else
		assert_int_equal(store_charge(s, &rq, &rs, 1, now), 0);
	assert_int_equal(rs.err, 0);
	return rs;
}

static void
want_stats(struct store *s, uint64_t keys, uint64_t evicted,
    uint64_t expired, const char *what)
{
	struct store_memory_stats st;

	store_memory_stats(s, &st);
	if (st.keys != keys || st.evicted != evicted || st.expired != expired)
		fail_msg("%s: stats got keys %llu evicted %llu expired %llu, "
		    "want %llu %llu %llu", what, (unsigned long long)st.keys,
		    (unsigned long long)st.evicted,
		    (unsigned long long)st.expired, (unsigned long long)keys,
		    (unsigned long long)evicted, (unsigned long long)expired);
}

static void
want_res(const struct store_res *rs, const struct step *st,
    const char *name, size_t j, const char *key)
{
	if (rs->err != 0 || rs->allowed != st->allowed ||
	    rs->retry_after_ns != st->retry_ns)
		fail_msg("%s step %zu key %s: got err %d allowed %d retry "
		    "%lld, want 0 %d %lld", name, j, key, rs->err,
		    rs->allowed, (long long)rs->retry_after_ns, st->allowed,
		    (long long)st->retry_ns);
}

/*
 * Each case drives three keys in one batch per step: all three must get
 * the case's answers, and a key nobody charged stays fresh. Cases run
 * one after the other on one store, the clock moving forward.
 */
static void
test_store_gcra_table(void **state)
{
	static const char *const sfx[] = { "a", "b", "c" };
	struct store_req rq[3];
	struct store_res rs[3];
	char keys[3][64], fresh[64];
	struct store *s;
	int64_t base;
	size_t i, j, k;
	int r, rep;

	(void)state;
	assert_non_null(s = store_memory_new(1000));
	assert_string_equal(s->ops->name, "memory");
	for (i = 0; i < NELEM(cases); i++) {
		base = T0 + (int64_t)i * 1000000 * S;
		for (k = 0; k < 3; k++) {
			snprintf(keys[k], sizeof(keys[k]), "case%zu:%s", i,
			    sfx[k]);
			req_set(&rq[k], keys[k], cases[i].count,
			    cases[i].period, cases[i].burst, 1);
		}
		for (j = 0; j < NELEM(cases[i].steps) &&
		    cases[i].steps[j].cost != 0; j++) {
			const struct step *st = &cases[i].steps[j];

			rep = st->rep > 0 ? st->rep : 1;
			for (r = 0; r < rep; r++) {
				for (k = 0; k < 3; k++)
					rq[k].cost = st->cost;
				memset(rs, 0x55, sizeof(rs));
				assert_int_equal(store_charge(s, rq, rs, 3,
				    base + st->at), 0);
				for (k = 0; k < 3; k++)
					want_res(&rs[k], st, cases[i].name,
					    j, keys[k]);
			}
		}
		/* Untouched key of the same rule: fresh, full burst. */
		snprintf(fresh, sizeof(fresh), "case%zu:fresh", i);
		rs[0] = one(s, fresh, cases[i].count, cases[i].period,
		    cases[i].burst, 1, base + 119 * S, 1);
		if (!rs[0].allowed)
			fail_msg("%s: fresh key got refused, want allowed",
			    cases[i].name);
	}
	store_free(s);
}

/* In one batch the same key twice sees its own earlier charge. */
static void
test_store_batch_same_key(void **state)
{
	static const int want[] = { 1, 1, 1, 0, 0 };
	struct store_req rq[5];
	struct store_res rs[5];
	struct store *s;
	size_t i;

	(void)state;
	assert_non_null(s = store_memory_new(100));
	for (i = 0; i < 5; i++)
		req_set(&rq[i], "k", 3, 60 * S, 0, 1);
	assert_int_equal(store_charge(s, rq, rs, 5, T0), 0);
	for (i = 0; i < 5; i++)
		if (rs[i].err || rs[i].allowed != want[i] ||
		    rs[i].retry_after_ns != (want[i] ? 0 : 20 * S))
			fail_msg("request %zu: got err %d allowed %d retry "
			    "%lld, want 0 %d %lld", i, rs[i].err, rs[i].allowed,
			    (long long)rs[i].retry_after_ns, want[i],
			    (long long)(want[i] ? 0 : 20 * S));
	/* A bad request fails alone; a batch of only bad ones fails. */
	rq[1].key = NULL;
	rq[1].keylen = 3;
	assert_int_equal(store_charge(s, rq, rs, 2, T0 + 20 * S), 0);
	assert_int_equal(rs[0].err, 0);
	assert_int_equal(rs[0].allowed, 1);
	assert_int_equal(rs[1].err, 1);
	assert_int_equal(store_charge(s, &rq[1], &rs[1], 1, T0), -1);
	assert_int_equal(rs[1].err, 1);
	/* The empty key is a key like any other. */
	req_set(&rq[0], "", 1, 3600 * S, 0, 1);
	assert_int_equal(store_charge(s, rq, rs, 1, T0), 0);
	assert_int_equal(rs[0].allowed, 1);
	assert_int_equal(store_charge(s, rq, rs, 1, T0), 0);
	assert_int_equal(rs[0].allowed, 0);
	assert_int_equal(store_charge(s, rq, rs, 0, T0), 0);
	store_free(s);
}

/* 1/1h, burst 1: a present key is refused, a fresh one allowed. */
static int
present(struct store *s, const char *key, int64_t now)
{
	return !one(s, key, 1, 3600 * S, 0, 1, now, 1).allowed;
}

static void
test_store_evicts_oldest(void **state)
{
	static const char *const k[] = { "k1", "k2", "k3", "k4", "k5" };
	struct store *s;
	size_t i;

	(void)state;
	assert_non_null(s = store_memory_new(4));
	for (i = 0; i < 5; i++)
		assert_true(one(s, k[i], 1, 3600 * S, 0, 1, T0, 0).allowed);
	want_stats(s, 4, 1, 0, "5 keys into 4");
	if (present(s, "k1", T0))
		fail_msg("k1: got present, want evicted (oldest)");
	for (i = 1; i < 5; i++)
		if (!present(s, k[i], T0))
			fail_msg("%s: got evicted, want present", k[i]);
	/* Least recently charged, not first inserted: touch k2 (refused). */
	assert_false(one(s, "k2", 1, 3600 * S, 0, 1, T0 + S, 0).allowed);
	assert_true(one(s, "k6", 1, 3600 * S, 0, 1, T0 + S, 0).allowed);
	want_stats(s, 4, 2, 0, "k6 in");
	if (!present(s, "k2", T0 + S) || present(s, "k3", T0 + S))
		fail_msg("after touching k2: got k2 %d k3 %d present, want "
		    "1 0", present(s, "k2", T0 + S), present(s, "k3", T0 + S));
	store_free(s);
}

static void
test_store_expired_reused_first(void **state)
{
	struct store *s;

	(void)state;
	/* All expired: the new key takes an expired slot. */
	assert_non_null(s = store_memory_new(4));
	assert_true(one(s, "a1", 1, S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "a2", 1, S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "a3", 1, S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "a4", 1, S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "a5", 1, S, 0, 1, T0 + 2 * S, 0).allowed);
	want_stats(s, 4, 0, 1, "expired reuse");
	store_free(s);

	/*
	 * The oldest entry is live (1/1h), a younger one expired: the
	 * expired one goes, not the oldest.
	 */
	assert_non_null(s = store_memory_new(4));
	assert_true(one(s, "old", 1, 3600 * S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "b2", 1, S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "b3", 1, 3600 * S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "b4", 1, 3600 * S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "b5", 1, 3600 * S, 0, 1, T0 + 2 * S, 0).allowed);
	want_stats(s, 4, 0, 1, "expired before oldest");
	if (!present(s, "old", T0 + 2 * S))
		fail_msg("old: got evicted, want kept (b2 had expired)");
	store_free(s);

	/*
	 * A key charged again after its first TAT passed is not expired:
	 * c1 (2/1s: T 500 ms, B 2) charged at 0 and 0.4 s has TAT 1 s.
	 */
	assert_non_null(s = store_memory_new(4));
	assert_true(one(s, "c1", 2, S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "c2", 1, 3600 * S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "c3", 1, 3600 * S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "c4", 1, 3600 * S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "c1", 2, S, 0, 1, T0 + 400 * MS, 0).allowed);
	/* At 0.7 s nothing has expired: c2, least recently used, goes. */
	assert_true(one(s, "c5", 1, 3600 * S, 0, 1, T0 + 700 * MS,
	    0).allowed);
	want_stats(s, 4, 1, 0, "stale heap key");
	/* c1 kept: cost 2 at 0.7 s needs TAT <= 0.7 s; it is 1 s. */
	if (one(s, "c1", 2, S, 0, 2, T0 + 700 * MS, 1).retry_after_ns !=
	    300 * MS)
		fail_msg("c1: got evicted or wrong TAT, want retry 300 ms");
	if (present(s, "c2", T0 + 700 * MS))
		fail_msg("c2: got present, want evicted");
	/* At 1.5 s c1 has expired and is reused before c3 is evicted. */
	assert_true(one(s, "c6", 1, 3600 * S, 0, 1, T0 + 1500 * MS,
	    0).allowed);
	want_stats(s, 4, 1, 1, "c1 expired");
	if (!present(s, "c3", T0 + 1500 * MS))
		fail_msg("c3: got evicted, want kept (c1 had expired)");
	store_free(s);

	/*
	 * A slot taken from an evicted live entry (TAT 1 h) holds a short
	 * one (1/1s, TAT 1 s): it must expire after 1 s, not 1 h.
	 */
	assert_non_null(s = store_memory_new(2));
	assert_true(one(s, "long", 1, 3600 * S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "x", 1, 3600 * S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "short", 1, S, 0, 1, T0, 0).allowed);
	want_stats(s, 2, 1, 0, "long evicted");
	assert_true(one(s, "n", 1, 3600 * S, 0, 1, T0 + 2 * S, 0).allowed);
	want_stats(s, 2, 1, 1, "short expired in the reused slot");
	if (!present(s, "x", T0 + 2 * S))
		fail_msg("x: got evicted, want kept (short had expired)");
	store_free(s);
}

/*
 * An insert re-sorts at most 32 stale expiry keys; past that it evicts
 * the least recently used entry, and counts it as expired if it was.
 */
static void
test_store_reclaim_budget(void **state)
{
	char key[16];
	struct store *s;
	int i;

	(void)state;
	assert_non_null(s = store_memory_new(40));
	/* v: 1/1s from -0.4 s, TAT 0.6 s, the least recently used. */
	assert_true(one(s, "v", 1, S, 0, 1, T0 - 400 * MS, 0).allowed);
	/* 39 keys at 2/1s, charged at 0 and 0.4 s: keys 0.5 s, TATs 1 s. */
	for (i = 0; i < 39; i++) {
		snprintf(key, sizeof(key), "s%d", i);
		assert_true(one(s, key, 2, S, 0, 1, T0, 0).allowed);
	}
	for (i = 0; i < 39; i++) {
		snprintf(key, sizeof(key), "s%d", i);
		assert_true(one(s, key, 2, S, 0, 1, T0 + 400 * MS,
		    0).allowed);
	}
	assert_true(one(s, "n", 1, 3600 * S, 0, 1, T0 + 700 * MS,
	    0).allowed);
	want_stats(s, 40, 0, 1, "v expired, found as the LRU entry");
	if (present(s, "v", T0 + 700 * MS))
		fail_msg("v: got present, want replaced");
	store_free(s);
}

static void
test_store_refund(void **state)
{
	struct store_req rq;
	struct store *s;
	int i;

	(void)state;
	assert_non_null(s = store_memory_new(100));
	for (i = 0; i < 3; i++)
		assert_true(one(s, "r", 3, 60 * S, 0, 1, T0, 0).allowed);
	assert_false(one(s, "r", 3, 60 * S, 0, 1, T0, 0).allowed);
	req_set(&rq, "r", 3, 60 * S, 0, 1);
	store_refund(s, &rq, 1, T0);
	assert_true(one(s, "r", 3, 60 * S, 0, 1, T0, 0).allowed);
	assert_false(one(s, "r", 3, 60 * S, 0, 1, T0, 0).allowed);
	/* Refunding more than was charged leaves a fresh key, no credit. */
	rq.cost = 10;
	store_refund(s, &rq, 1, T0);
	for (i = 0; i < 3; i++)
		assert_true(one(s, "r", 3, 60 * S, 0, 1, T0, 0).allowed);
	assert_false(one(s, "r", 3, 60 * S, 0, 1, T0, 0).allowed);
	/* Refunding an absent key creates nothing. */
	req_set(&rq, "absent", 3, 60 * S, 0, 1);
	store_refund(s, &rq, 1, T0);
	want_stats(s, 1, 0, 0, "refund of an absent key");
	store_free(s);

	/*
	 * A refund that makes a TAT pass early makes the entry reclaimable
	 * early: r (1/1h, refunded at 1 s: TAT 1 s) goes before o, the least
	 * recently used but live entry.
	 */
	assert_non_null(s = store_memory_new(2));
	assert_true(one(s, "o", 1, 3600 * S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "r", 1, 3600 * S, 0, 1, T0, 0).allowed);
	req_set(&rq, "r", 1, 3600 * S, 0, 1);
	store_refund(s, &rq, 1, T0 + S);
	assert_true(one(s, "n", 1, 3600 * S, 0, 1, T0 + 2 * S, 0).allowed);
	want_stats(s, 2, 0, 1, "refunded entry reclaimed");
	if (!present(s, "o", T0 + 2 * S))
		fail_msg("o: got evicted, want kept (r was refunded)");
	store_free(s);
}

static void
test_store_peek(void **state)
{
	struct store_res rs;
	struct store *s;
	int i;

	(void)state;
	assert_non_null(s = store_memory_new(100));
	for (i = 0; i < 10; i++)
		assert_true(one(s, "p", 1, 3600 * S, 0, 1, T0, 1).allowed);
	want_stats(s, 0, 0, 0, "peeks only");
	assert_true(one(s, "p", 1, 3600 * S, 0, 1, T0, 0).allowed);
	rs = one(s, "p", 1, 3600 * S, 0, 1, T0 + S, 1);
	if (rs.allowed || rs.retry_after_ns != 3599 * S)
		fail_msg("peek after charge: got allowed %d retry %lld, want "
		    "0 %lld", rs.allowed, (long long)rs.retry_after_ns,
		    (long long)(3599 * S));
	/* The peek charged nothing: the same answer again. */
	rs = one(s, "p", 1, 3600 * S, 0, 1, T0 + S, 0);
	assert_false(rs.allowed);
	assert_true(rs.retry_after_ns == 3599 * S);
	want_stats(s, 1, 0, 0, "one charged key");
	store_free(s);
}

/* store_req.peek inside a charge batch: answered, never stored. */
static void
test_store_req_peek(void **state)
{
	struct store_req rq[2];
	struct store_res rs[2];
	struct store *s;
	int i;

	(void)state;
	assert_non_null(s = store_memory_new(100));
	req_set(&rq[0], "shared", 1, 3600 * S, 0, 1);
	rq[0].peek = 1;
	req_set(&rq[1], "other", 1, 3600 * S, 0, 1);
	for (i = 0; i < 3; i++) {
		assert_int_equal(store_charge(s, rq, rs, 2, T0), 0);
		if (!rs[0].allowed || rs[1].allowed != (i == 0))
			fail_msg("round %d: got peeked %d charged %d, "
			    "want 1 %d", i, rs[0].allowed, rs[1].allowed,
			    i == 0);
	}
	want_stats(s, 1, 0, 0, "peeked key not stored");
	/* Once charged for real, the peeking request sees it. */
	rq[0].peek = 0;
	assert_int_equal(store_charge(s, rq, rs, 1, T0), 0);
	assert_true(rs[0].allowed);
	rq[0].peek = 1;
	assert_int_equal(store_charge(s, rq, rs, 1, T0 + S), 0);
	if (rs[0].allowed || rs[0].retry_after_ns != 3599 * S)
		fail_msg("peek of a charged key: got allowed %d retry %lld, "
		    "want 0 %lld", rs[0].allowed,
		    (long long)rs[0].retry_after_ns, (long long)(3599 * S));
	store_free(s);
}

static void
test_store_bounds(void **state)
{
	struct store_memory_stats st;
	char key[32];
	struct store *s;
	int i;

	(void)state;
	assert_null(store_memory_new(0));
	assert_null(store_memory_new(UINT64_C(1) << 40));
	assert_non_null(s = store_memory_new(1));
	assert_true(one(s, "x", 1, 3600 * S, 0, 1, T0, 0).allowed);
	assert_true(one(s, "y", 1, 3600 * S, 0, 1, T0, 0).allowed);
	want_stats(s, 1, 1, 0, "max_keys 1");
	store_free(s);
	/*
	 * Sharded (1000 keys: 8 shards of 125): the total never exceeds
	 * max_keys; 5000 random keys fill every shard.
	 */
	assert_non_null(s = store_memory_new(1000));
	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		assert_true(one(s, key, 1, 3600 * S, 0, 1, T0, 0).allowed);
		if (i % 500 == 0) {
			store_memory_stats(s, &st);
			assert_true(st.keys <= 1000);
		}
	}
	want_stats(s, 1000, 4000, 0, "5000 keys into 1000");
	store_free(s);
	store_free(NULL);
}

static void
test_store_fail(void **state)
{
	struct store_req rq[2];
	struct store_res rs[2];
	struct store *s;

	(void)state;
	assert_non_null(s = store_fail_new());
	assert_string_equal(s->ops->name, "fail");
	req_set(&rq[0], "a", 1, S, 0, 1);
	req_set(&rq[1], "b", 1, S, 0, 1);
	memset(rs, 0, sizeof(rs));
	assert_int_equal(store_charge(s, rq, rs, 2, T0), -1);
	assert_int_equal(rs[0].err, 1);
	assert_int_equal(rs[1].err, 1);
	memset(rs, 0, sizeof(rs));
	assert_int_equal(store_peek(s, rq, rs, 2, T0), -1);
	assert_int_equal(rs[0].err, 1);
	assert_int_equal(rs[1].err, 1);
	store_refund(s, rq, 2, T0);
	store_free(s);
}

#define THR_N		4
#define THR_KEYS	3
#define THR_TRIES	1000

struct thr_arg {
	struct store	*s;
	pthread_barrier_t *bar;
	int		allowed[THR_KEYS];
	int		errors;
};

static void *
thr_main(void *p)
{
	static const char *const keys[THR_KEYS] = { "t:a", "t:b", "t:c" };
	struct thr_arg *a = p;
	struct store_req rq;
	struct store_res rs;
	int i, k;

	memset(&rq, 0, sizeof(rq));
	rq.cost = 1;
	/* 1000/1h burst 1000: T = 3.6 s. */
	rq.limit.interval_ns = 3600 * S / 1000;
	rq.limit.burst = 1000;
	rq.limit.period_ns = 3600 * S;
	pthread_barrier_wait(a->bar);
	for (i = 0; i < THR_TRIES; i++)
		for (k = 0; k < THR_KEYS; k++) {
			rq.key = keys[k];
			rq.keylen = strlen(keys[k]);
			if (store_charge(a->s, &rq, &rs, 1, T0) != 0 ||
			    rs.err)
				a->errors++;
			else if (rs.allowed)
				a->allowed[k]++;
		}
	return NULL;
}

/* 4 x 1000 charges per key at one instant: exactly the burst passes. */
static void
test_store_threads(void **state)
{
	struct thr_arg args[THR_N];
	pthread_t tid[THR_N];
	pthread_barrier_t bar;
	int i, k, total;

	(void)state;
	memset(args, 0, sizeof(args));
	assert_int_equal(pthread_barrier_init(&bar, NULL, THR_N), 0);
	for (i = 0; i < THR_N; i++) {
		assert_non_null(args[i].s = (i == 0 ?
		    store_memory_new(1000000) : args[0].s));
		args[i].bar = &bar;
		assert_int_equal(pthread_create(&tid[i], NULL, thr_main,
		    &args[i]), 0);
	}
	for (i = 0; i < THR_N; i++)
		assert_int_equal(pthread_join(tid[i], NULL), 0);
	for (k = 0; k < THR_KEYS; k++) {
		total = 0;
		for (i = 0; i < THR_N; i++) {
			assert_int_equal(args[i].errors, 0);
			total += args[i].allowed[k];
		}
		if (total != 1000)
			fail_msg("key %d: allowed got %d of %d, want 1000", k,
			    total, THR_N * THR_TRIES);
	}
	pthread_barrier_destroy(&bar);
	store_free(args[0].s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_gcra_table),
		cmocka_unit_test(test_store_batch_same_key),
		cmocka_unit_test(test_store_evicts_oldest),
		cmocka_unit_test(test_store_expired_reused_first),
		cmocka_unit_test(test_store_reclaim_budget),
		cmocka_unit_test(test_store_refund),
		cmocka_unit_test(test_store_peek),
		cmocka_unit_test(test_store_req_peek),
		cmocka_unit_test(test_store_bounds),
		cmocka_unit_test(test_store_fail),
		cmocka_unit_test(test_store_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

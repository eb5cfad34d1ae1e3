/*
 * redis_guard.c - what spares Redis a round trip (DESIGN.md §4b): the
 * refusal cache answers a refusal that still holds, the circuit breaker
 * fails a batch at once while Redis is down.
 * Owns: the cache slots and their striped locks, the breaker's state
 * and its "redis down"/"redis up" log lines.
 * Not: talking to Redis (redis_exchange.c), on_error (the engine).
 * Threads: any number; the breaker has one small lock, each cache slot
 * one of RD_RC_LOCKS locks. Errors: none; a slot collision only forgets
 * a refusal.
 */
#include <stdint.h>

#include "log.h"
#include "redis_int.h"
#include "siphash.h"

/* --- the refusal cache ------------------------------------------------ */

/*
 * A refused event is not charged, so until its retry time passes Redis
 * would answer the same (or a later retry, if others charged the key):
 * the answer needs no round trip. Acceptances are never cached. The
 * digest covers the key and the limit, so a reload that changes a rate
 * misses; the cost must match exactly. Direct-mapped: a collision of
 * slots only forgets a refusal.
 */
static void
rc_digest(const struct store_redis *r, const struct store_req *q,
    uint64_t *d0, uint64_t *d1)
{
	struct {
		uint64_t	h;
		int64_t		t, b, p;
	} x;

	x.t = q->limit.interval_ns;
	x.b = q->limit.burst;
	x.p = q->limit.period_ns;
	x.h = siphash24(r->k0, q->key, q->keylen);
	*d0 = siphash24(r->k0, &x, sizeof(x));
	x.h = siphash24(r->k1, q->key, q->keylen);
	*d1 = siphash24(r->k1, &x, sizeof(x));
}

/* The slot of q's digest, its lock taken; release with rc_unlock. */
static struct rd_cached *
rc_lock(struct store_redis *r, const struct store_req *q, uint64_t *d0,
    uint64_t *d1)
{
	uint32_t slot;

	rc_digest(r, q, d0, d1);
	slot = (uint32_t)*d0 & r->rcmask;
	pthread_mutex_lock(&r->rclock[slot % RD_RC_LOCKS]);
	return &r->rc[slot];
}

static void
rc_unlock(struct store_redis *r, const struct rd_cached *e)
{
	pthread_mutex_unlock(&r->rclock[(uint32_t)(e - r->rc) % RD_RC_LOCKS]);
}

int
rd_cache_lookup(struct store_redis *r, const struct store_req *q,
    struct store_res *res, int64_t now)
{
	struct rd_cached *e;
	uint64_t d0, d1;
	int hit = 0;

	if (r->rcoff)
		return 0;
	e = rc_lock(r, q, &d0, &d1);
	if (e->d0 == d0 && e->d1 == d1 && e->cost == q->cost &&
	    e->until > now) {
		res->err = 0;
		res->allowed = 0;
		res->retry_after_ns = e->until - now;
		hit = 1;
	}
	rc_unlock(r, e);
	return hit;
}

void
rd_cache_put(struct store_redis *r, const struct store_req *q, int64_t until)
{
	struct rd_cached *e;
	uint64_t d0, d1;

	e = rc_lock(r, q, &d0, &d1);
	e->d0 = d0;
	e->d1 = d1;
	e->cost = q->cost;
	e->until = until;
	rc_unlock(r, e);
}

/* A refund lowers the TAT: a remembered refusal may no longer hold. */
void
rd_cache_drop(struct store_redis *r, const struct store_req *q)
{
	struct rd_cached *e;
	uint64_t d0, d1;

	e = rc_lock(r, q, &d0, &d1);
	if (e->d0 == d0 && e->d1 == d1)
		e->until = INT64_MIN;
	rc_unlock(r, e);
}

/* --- the circuit breaker ---------------------------------------------- */

/*
 * Closed: every batch goes to Redis. After fail_max consecutive failed
 * batches it opens: batches fail at once (on_error applies) for a
 * back-off that starts at bo_min and doubles with each failed probe up
 * to bo_max. When the back-off has passed, one batch is let through as
 * the probe; its success closes the breaker. One log line per change.
 * Returns 1 when the batch may go to Redis (*probe: it is the probe).
 */
int
rd_breaker_admit(struct store_redis *r, int64_t now, int *probe)
{
	int ok = 1;

	*probe = 0;
	pthread_mutex_lock(&r->blk);
	if (r->down) {
		if (!r->probing && now >= r->until)
			r->probing = *probe = 1;
		else
			ok = 0;
	}
	pthread_mutex_unlock(&r->blk);
	return ok;
}

void
rd_breaker_done(struct store_redis *r, int ok, int probe, int64_t now,
    const char *why)
{
	int went_down = 0, came_up = 0, fails;
	int64_t backoff;

	pthread_mutex_lock(&r->blk);
	if (probe)
		r->probing = 0;
	if (ok) {
		r->fails = 0;
		if (r->down) {
			r->down = 0;
			r->backoff = r->bo_min;
			came_up = 1;
		}
	} else {
		if (r->fails < INT32_MAX)
			r->fails++;
		if (r->down && probe) {
			r->backoff = r->backoff > r->bo_max / 2 ? r->bo_max :
			    r->backoff * 2;
			r->until = now + r->backoff;
		} else if (!r->down && r->fails >= r->fail_max) {
			r->down = went_down = 1;
			r->until = now + r->backoff;
		}
	}
	fails = r->fails;
	backoff = r->backoff;
	pthread_mutex_unlock(&r->blk);
	if (went_down) {
		st_add(r, RS_OPENS, 1);
		log_warning("store: redis down: %s: %s (%d failures in a row; "
		    "on_error applies, next try in %lld ms)", r->addr, why,
		    fails, (long long)(backoff / 1000000));
	}
	if (came_up)
		log_notice("store: redis up: %s", r->addr);
}

int
rd_breaker_is_down(struct store_redis *r)
{
	int down;

	pthread_mutex_lock(&r->blk);
	down = r->down;
	pthread_mutex_unlock(&r->blk);
	return down;
}

/*
 * store_timed.c - the store `warden run` hands the engine: the configured
 * backend wrapped to count calls and errors and measure latency, and the
 * store on_error = "memory" charges (DESIGN.md §4b).
 * Owns: struct timed and its ops, making the store from the config.
 * Not: when to call the store (engine.c), the backends (store_memory.c,
 * store_redis.c), the counters' format (stats.c). It reads the clock,
 * which nothing in libwarden.a does (CONVENTIONS.md §8): daemon only.
 * Threads: as safe as the wrapped store; counters are stats.c's atomics.
 * Errors: the inner store's results pass unchanged; store_timed_new logs
 * and returns NULL.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "daemon_int.h"
#include "log.h"
#include "stats.h"
#include "store.h"

/*
 * Wraps the configured store to count calls and errors and measure
 * latency; the engine and stores do not read clocks (CONVENTIONS.md §8).
 */
struct timed {
	struct store	base;
	struct store	*inner;
	int		fallback;	/* on_error=memory's store: counts
					 * store_fallbacks, not calls */
};

static int
timed_charge(struct store *st, const struct store_req *req,
    struct store_res *res, size_t n, int64_t now)
{
	struct timed *t = (struct timed *)st;
	int64_t t0 = now_ns();
	size_t i;
	int rc;

	if (t->fallback) {
		stats_add(ST_STORE_FALLBACKS, 1);
		return store_charge(t->inner, req, res, n, now);
	}
	rc = store_charge(t->inner, req, res, n, now);
	stats_add(ST_STORE_CALLS, 1);
	stats_store_latency((uint64_t)(now_ns() - t0) / 1000);
	for (i = 0; i < n; i++)
		if (res[i].err) {
			stats_add(ST_STORE_ERRORS, 1);
			break;
		}
	return rc;
}

static void
timed_refund(struct store *st, const struct store_req *req, size_t n,
    int64_t now)
{
	store_refund(((struct timed *)st)->inner, req, n, now);
}

static int
timed_peek(struct store *st, const struct store_req *req,
    struct store_res *res, size_t n, int64_t now)
{
	return store_peek(((struct timed *)st)->inner, req, res, n, now);
}

static void
timed_free(struct store *st)
{
	struct timed *t = (struct timed *)st;

	store_free(t->inner);
	free(t);
}

static const struct store_ops timed_ops = {
	"timed", timed_charge, timed_refund, timed_peek, timed_free
};

struct store *
store_timed_inner(struct store *st)
{
	return ((struct timed *)st)->inner;
}

/*
 * The configured store, wrapped to count calls, errors and latency, and
 * in *fallback_out the store on_error = "memory" charges: the memory
 * backend is its own; with Redis a local memory store of
 * store.memory.max_keys, whose charges count as store_fallbacks.
 * Returns NULL (logged) when the store cannot be made. An unreachable
 * Redis is not that: warden starts, logs "store: redis down", and each
 * rule's on_error applies until Redis answers.
 */
struct store *
store_timed_new(const struct config *c, struct store **fallback_out)
{
	const uint64_t max = (uint64_t)c->store.max_keys;
	struct store_redis_opts o;
	struct timed *t, *fb = NULL;
	char err[256];

	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto fail;
	t->base.ops = &timed_ops;
	if (strcmp(c->store.backend, "memory") == 0) {
		if ((t->inner = store_memory_new(max)) == NULL)
			goto fail;
		*fallback_out = &t->base;
		return &t->base;
	}
	if (strcmp(c->store.backend, "redis") != 0) {
		log_error("store.backend %s is not available in this build",
		    c->store.backend);
		goto fail;
	}
	/* hiredis writes to sockets that a stopped Redis has closed. */
	signal(SIGPIPE, SIG_IGN);
	config_redis_opts(c, &o);
	if ((t->inner = store_redis_new(&o, err, sizeof(err))) == NULL) {
		log_error("store: %s", err);
		goto fail;
	}
	if ((fb = calloc(1, sizeof(*fb))) == NULL ||
	    (fb->inner = store_memory_new(max)) == NULL)
		goto fail;
	fb->base.ops = &timed_ops;
	fb->fallback = 1;
	*fallback_out = &fb->base;
	return &t->base;
fail:
	if (fb != NULL)
		timed_free(&fb->base);
	if (t != NULL)
		timed_free(&t->base);
	return NULL;
}

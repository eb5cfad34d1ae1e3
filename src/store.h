/*
 * store.h - rate counters behind one interface (DESIGN.md §4b).
 * Owns: the contract between the engine and a backend. The engine never
 * names a backend; backends are looked up by name (store_new).
 * Threads: every backend is safe to call from many threads at once.
 * Errors: a backend that cannot answer sets res.err for that request;
 * the engine then applies the rule's on_error. Nothing here aborts on
 * input.
 */
#ifndef WARDEN_STORE_H
#define WARDEN_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "gcra.h"

/* One counter key, at most (the engine digests longer ones). */
#define STORE_KEY_MAX	512

/* One limit to charge: the key is namespaced by the rule already. */
struct store_req {
	const char	*key;
	size_t		keylen;
	struct gcra_limit limit;
	int64_t		cost;
	int		peek;		/* answer as charge would, store nothing */
};

/*
 * What a counter's state means depends on its limit: a TAT stored under
 * one rate is misread under another. Both stores keep a counter per key
 * AND limit (interval, burst, period), so a reload that changes a rule's
 * rate or burst restarts its counters and one that changes nothing keeps
 * them. The same on every host (no random seed): Redis keys carry it.
 */
static inline uint64_t
store_limit_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;	/* splitmix64 */
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static inline uint64_t
store_limit_id(const struct gcra_limit *l)
{
	uint64_t h = store_limit_mix((uint64_t)l->interval_ns);

	h = store_limit_mix(h ^ (uint64_t)l->burst);
	return store_limit_mix(h ^ (uint64_t)l->period_ns);
}

struct store_res {
	int		err;		/* 1: backend failed; others unset */
	int		allowed;
	int64_t		retry_after_ns;
};

struct store;

struct store_ops {
	const char	*name;
	/*
	 * Charges each request if it is allowed (charge-if-allowed), all in
	 * one batch (one round trip for remote stores). Fills res[i] for
	 * each. Returns 0, or -1 when the whole batch failed (every res[i].err
	 * is then set too).
	 */
	int	(*charge)(struct store *, const struct store_req *req,
		    struct store_res *res, size_t n, int64_t now);
	/* Undoes earlier allowed charges; best effort, nobody waits. */
	void	(*refund)(struct store *, const struct store_req *req,
		    size_t n, int64_t now);
	/* Non-destructive look: what charge would answer. For explain. */
	int	(*peek)(struct store *, const struct store_req *req,
		    struct store_res *res, size_t n, int64_t now);
	void	(*free)(struct store *);
};

/* Every backend embeds this as its first member. */
struct store {
	const struct store_ops *ops;
};

struct store_memory_stats {
	uint64_t	keys;		/* live entries now */
	uint64_t	evicted;	/* dropped because the table was full */
	uint64_t	expired;	/* reclaimed after their TAT passed */
};

/* The embedded store: at most max_keys counters, oldest evicted first. */
struct store *store_memory_new(uint64_t max_keys);
void	store_memory_stats(struct store *, struct store_memory_stats *out);

/* A store whose every call fails: on_error in tests (Postfix dict_surrogate). */
struct store *store_fail_new(void);

/*
 * The Redis store (store_redis.c, DESIGN.md §4b). Strings are copied;
 * zero numbers take the defaults named here.
 */
struct store_redis_opts {
	const char	*host;		/* TCP, when socket is NULL or "" */
	int		port;
	const char	*socket;	/* unix socket path, or NULL / "" */
	/* Sentinel: ask these "HOST:PORT" for master_name's address. */
	const char *const *sentinels;	/* with nsentinels > 0, host, port */
	size_t		nsentinels;	/* and socket are not used */
	const char	*master_name;
	/* AUTH towards the sentinels (requirepass/ACL on the sentinels); */
	const char	*sentinel_username;	/* username/password below */
	const char	*sentinel_password;	/* are for the data nodes */
	const char	*username;	/* "" or NULL: AUTH password only */
	const char	*password;	/* "" or NULL: no AUTH */
	int		db;		/* 0: no SELECT (proxies refuse it) */
	const char	*prefix;	/* "warden:"; at most 128 bytes */
	const char	*key_secret;	/* non-empty: keys HMAC-SHA256'd */
	int		connect_timeout_ms;	/* 200 */
	int		command_timeout_ms;	/* 100 */
	int		pool;		/* connections, 8 */
	int		breaker_failures; /* consecutive failed batches: 3 */
	int64_t		breaker_min_ns;	/* first back-off: 1 s */
	int64_t		breaker_max_ns;	/* back-off cap: 30 s */
	uint32_t	cache_slots;	/* refusal cache, 16384 (power of 2) */
	int		cache_off;	/* 1: ask Redis every time (tests) */
	int		quiet;		/* 1: no log lines (warden check) */
};

struct store_redis_stats {
	uint64_t	round_trips;	/* request/answer exchanges */
	uint64_t	scripts;	/* script calls sent (charge, peek) */
	uint64_t	cache_hits;	/* refusals answered locally */
	uint64_t	connects;	/* connections opened */
	uint64_t	failures;	/* batches that failed on Redis */
	uint64_t	fast_fails;	/* batches failed by the open breaker */
	uint64_t	breaker_opens;	/* closed -> open transitions */
	uint64_t	refunds_sent;
	uint64_t	refunds_dropped; /* breaker open, no idle connection */
	int		down;		/* 1 while the breaker is open */
};

/*
 * Returns the Redis store (owned, free with store_free), or NULL with a
 * reason in err for options it cannot use or when memory is short.
 * It connects once before returning; an unreachable Redis is not an
 * error: the store starts with its breaker open (logged), every charge
 * fails until a probe gets through, and the rules' on_error apply.
 */
struct store *store_redis_new(const struct store_redis_opts *,
	    char *err, size_t errlen);
/* Counters of a store made by store_redis_new. */
void	store_redis_stats(struct store *, struct store_redis_stats *out);

/*
 * A small hash beside the counters, prefix + name (rulefp.c): put
 * replaces it whole, atomically, with n field/value pairs (NUL-terminated
 * strings) and keeps them: each new connection of the store writes them
 * again where the hash is missing, or in whole until a put got through.
 * get opens its own connection from o (bounded by o's timeouts), calls
 * fn with each pair (untrusted bytes, not NUL-terminated) and closes.
 * Both return 0, or -1 with a reason in err.
 */
int	store_redis_hash_put(struct store *, const char *name,
	    const char *const *field, const char *const *value, size_t n,
	    char *err, size_t errlen);
int	store_redis_hash_get(const struct store_redis_opts *o,
	    const char *name,
	    void (*fn)(void *, const char *, size_t, const char *, size_t),
	    void *ctx, char *err, size_t errlen);

static inline int
store_charge(struct store *s, const struct store_req *req,
    struct store_res *res, size_t n, int64_t now)
{
	return s->ops->charge(s, req, res, n, now);
}

static inline void
store_refund(struct store *s, const struct store_req *req, size_t n,
    int64_t now)
{
	s->ops->refund(s, req, n, now);
}

static inline int
store_peek(struct store *s, const struct store_req *req,
    struct store_res *res, size_t n, int64_t now)
{
	return s->ops->peek(s, req, res, n, now);
}

static inline void
store_free(struct store *s)
{
	if (s != NULL)
		s->ops->free(s);
}

#endif

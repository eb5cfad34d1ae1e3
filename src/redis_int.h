/*
 * redis_int.h - the inside of the Redis store, shared by its files and
 * by nothing else (not installed; the engine sees store.h only):
 * store_redis.c (the store interface, construction, the rules record),
 * redis_conn.c (the pool, the handshake, Sentinel), redis_exchange.c
 * (one pipelined exchange, the script) and redis_guard.c (the refusal
 * cache, the circuit breaker).
 * Owns: struct store_redis and the calls between those files.
 * Not: on_error (the engine applies it), the GCRA math (gcra.c).
 * Threads: each pooled connection has its own mutex, held for one
 * exchange: every call below that takes a struct rd_conn wants its lock
 * held. The breaker has one small lock, the cache striped locks, the
 * record reclock; counters are atomic.
 * Errors: 0 or -1 with a reason in the caller's why (RD_WHY_MAX);
 * nothing Redis sends can abort us.
 */
#ifndef WARDEN_REDIS_INT_H
#define WARDEN_REDIS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "store.h"
#include "util.h"

/*
 * Requests in one pipeline, at most; also the width of rd_exchange's
 * NOSCRIPT mask (uint64_t), so no more than 64.
 */
#define RD_CHUNK	64
#define RD_PREFIX_MAX	128
#define RD_WHY_MAX	256
#define RD_RC_LOCKS	64
/* No caller's clock at hand (start-up, the record's put). */
#define RD_NOW_NONE	INT64_MIN

/* The GCRA script (redis_exchange.c); rd_script_len excludes the NUL. */
extern const char rd_script[];
extern const size_t rd_script_len;

enum rd_stat {
	RS_ROUND_TRIPS,
	RS_SCRIPTS,
	RS_CACHE_HITS,
	RS_CONNECTS,
	RS_FAILURES,
	RS_FAST_FAILS,
	RS_OPENS,
	RS_REFUNDS_SENT,
	RS_REFUNDS_DROPPED,
	RS_COUNT
};

struct rd_conn {
	pthread_mutex_t	lock;
	redisContext	*c;		/* NULL: not connected */
	unsigned	gen;		/* store's generation at connect */
	unsigned	skip;		/* refund replies still to read */
	uint64_t	recput;		/* the first of them: a record put */
	int		eval;		/* no SCRIPT LOAD: send EVAL */
};

/* A refusal remembered until it ends ("retry in T"). */
struct rd_cached {
	uint64_t	d0, d1;		/* key and limit */
	int64_t		cost;
	int64_t		until;		/* the caller's clock */
};

struct store_redis {
	struct store	base;		/* first: store.h casts */
	char		*host, *sock, *user, *pass, *prefix, *secret;
	size_t		prefixlen, secretlen;
	int		port, db;
	char		addr[300];	/* for log lines */
	char		**sent_host;	/* Sentinel mode when nsent > 0 */
	int		*sent_port;
	size_t		nsent;
	char		*master;	/* the name the sentinels know */
	char		*suser, *spass;	/* AUTH towards the sentinels */
	pthread_mutex_t	mlock;		/* guards mcur */
	char		mcur[280];	/* master last found, escaped */
	struct timeval	ctv, ttv;	/* connect, command timeouts */
	char		sha[41];
	struct rd_conn	*conns;
	unsigned	nconns;
	atomic_uint	rr;		/* round robin start */
	atomic_uint	gen;		/* ++ on failure: reconnect all */
	atomic_int	eval_logged;
	atomic_int	noload;		/* SCRIPT LOAD closes the link */
	_Atomic int64_t	noload_at;	/* since (caller's clock), or NONE */
	int		quiet;		/* no log lines (check) */
	/* The last store_redis_hash_put, written again by each new
	 * connection when Redis lacks it (restarted empty), or when it
	 * never reached Redis (rec_due). */
	pthread_mutex_t	reclock;
	char		*rec_key;	/* NULL: nothing recorded */
	char		**rec_fv;	/* field, value, ... */
	size_t		rec_n;		/* pairs */
	uint64_t	rec_serial;	/* ++ each put */
	int		rec_due;	/* not yet written whole */
	char		why0[RD_WHY_MAX]; /* the first connect's */

	pthread_mutex_t	blk;		/* the breaker */
	int		down, probing, fails, fail_max;
	int64_t		until, backoff, bo_min, bo_max;

	uint8_t		k0[16], k1[16];	/* cache digest keys (random) */
	struct rd_cached *rc;
	uint32_t	rcmask;
	int		rcoff;
	pthread_mutex_t	rclock[RD_RC_LOCKS];

	_Atomic uint64_t st[RS_COUNT];
};

enum rd_hs {
	HS_AUTH,
	HS_SELECT,
	HS_ROLE,	/* Sentinel mode: is it still the master? */
	HS_SCRIPT,
};

static inline void
st_add(struct store_redis *r, enum rd_stat i, uint64_t n)
{
	atomic_fetch_add_explicit(&r->st[i], n, memory_order_relaxed);
}

/* --- redis_guard.c: the refusal cache, the circuit breaker ------------- */

/* 1 and res filled when q was refused and its retry time has not come. */
int	rd_cache_lookup(struct store_redis *, const struct store_req *q,
	    struct store_res *res, int64_t now);
/* Remembers q refused until until (the caller's clock). */
void	rd_cache_put(struct store_redis *, const struct store_req *q,
	    int64_t until);
/* Forgets q's refusal: a refund lowered its TAT. */
void	rd_cache_drop(struct store_redis *, const struct store_req *q);
/* 1 when a batch may go to Redis (*probe: it is the probe), else 0. */
int	rd_breaker_admit(struct store_redis *, int64_t now, int *probe);
/* A batch admitted went (ok 1) or failed with why: may open or close. */
void	rd_breaker_done(struct store_redis *, int ok, int probe, int64_t now,
	    const char *why);
/* 1 while the breaker is open. */
int	rd_breaker_is_down(struct store_redis *);

/* --- redis_conn.c: the pool, the handshake, Sentinel ------------------- */

/* Frees k's context (if any) and forgets what it owed. */
void	rd_conn_drop(struct rd_conn *k);
/* why = "what: " + rp's text, escaped and bounded (rp may be NULL). */
void	rd_why_reply(char *why, size_t len, const char *what,
	    const redisReply *rp);
/* Connects k, appends the handshake into hs: their number, or -1. */
int	rd_conn_open(struct store_redis *, struct rd_conn *k, int64_t now,
	    enum rd_hs hs[4], char *why, size_t wlen) WARN_UNUSED;
/* Reads the handshake's n replies: 0, -1, or -2 (after an error reply). */
int	rd_conn_check(struct store_redis *, struct rd_conn *k,
	    const enum rd_hs *hs, int n, char *why, size_t wlen) WARN_UNUSED;
/* The link closed at SCRIPT LOAD: EVAL from now on. Returns 1 (retry). */
int	rd_script_closed(struct store_redis *, int64_t now);
/* A pooled connection, locked (borrowed: unlock its lock when done). */
struct rd_conn *rd_pool_get(struct store_redis *);
/* An idle, connected one with room for m more replies, locked; or NULL. */
struct rd_conn *rd_pool_idle(struct store_redis *, size_t m);

/* --- redis_exchange.c: one pipelined exchange, the record's copy ------- */

/* Appends one script call for q (op c, p or r): 0 or -1. */
int	rd_append(struct store_redis *, struct rd_conn *k,
	    const struct store_req *q, char op, int eval) WARN_UNUSED;
/* One exchange of m requests on k (locked): 0, or -1 with *retry. */
int	rd_exchange(struct store_redis *, struct rd_conn *k,
	    const struct store_req *req, const size_t *idx, size_t m,
	    struct store_res *res, char op, int64_t now, char *why,
	    size_t wlen, int *retry) WARN_UNUSED;
/* Sends m requests (m <= RD_CHUNK); fills their res, err on failure. */
void	rd_send(struct store_redis *, const struct store_req *req,
	    const size_t *idx, size_t m, struct store_res *res, char op,
	    int64_t now);
/* Reads the replies k owes from earlier exchanges: 0 or -1. */
int	rd_skip_read(struct store_redis *, struct rd_conn *k) WARN_UNUSED;
/* Appends the kept record's script to c (reclock held): 0 or -1. */
int	rd_rec_cmd(struct store_redis *, redisContext *c,
	    const char *mode) WARN_UNUSED;
/* A put of record serial answered rp. */
void	rd_rec_done(struct store_redis *, uint64_t serial,
	    const redisReply *rp);
/* Keeps a copy of the record: its serial (> 0), or 0 out of memory. */
uint64_t rd_rec_keep(struct store_redis *, const char *key,
	    const char *const *field, const char *const *value, size_t n)
	    WARN_UNUSED;
/* Frees the kept record (reclock held, or no other thread). */
void	rd_rec_clear(struct store_redis *);

#endif

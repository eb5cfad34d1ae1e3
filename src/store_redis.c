/*
 * store_redis.c - rate counters shared by several MTAs, in Redis
 * (DESIGN.md §4b): one GCRA Lua script call per limit key, all calls of
 * a batch pipelined in one round trip, time read from the server's TIME.
 * Owns: the connection pool, the script, Redis key names (prefix, hash
 * tag, HMAC), the refusal cache and the circuit breaker.
 * Not: on_error (the engine applies it), counting calls and latency
 * (milter.c wraps every store), the reference GCRA math (gcra.c; the
 * script repeats it in microseconds).
 * Threads: any number. Each pooled connection has its own mutex, held
 * for one exchange; the breaker has one small lock, the cache striped
 * locks. Errors: a batch Redis does not answer sets err on each request
 * it carried; no wait is longer than connect_timeout_ms plus
 * command_timeout_ms. Every reply is checked: nothing Redis sends can
 * abort us, and a context with err set is dropped, never reused. Every
 * reply of a pipeline is read, error or not, before the connection
 * serves again: one left unread would answer the next caller.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "log.h"
#include "siphash.h"
#include "store.h"

#define RD_CHUNK	64	/* requests in one pipeline, at most */
#define RD_PREFIX_MAX	128
#define RD_CLEAR_MAX	128	/* counter name in clear with HMAC */
#define RD_KEY_BUF	(RD_PREFIX_MAX + STORE_KEY_MAX + 32)
#define RD_SKIP_MAX	1024	/* unread refund replies, a connection */
#define RD_WHY_MAX	256
#define RD_RC_LOCKS	64
/*
 * Lua numbers are doubles: integers are exact below 2^53. Timestamps are
 * microseconds since 1970 (2^50.6 in 2026), so every span the script adds
 * (cost * T, B * T) is kept below 2^49 us, about 17.8 years; longer
 * windows are shortened, which errs towards letting mail through.
 */
#define RD_US_MAX	(1LL << 49)
/* No caller's clock at hand (start-up, the record's put). */
#define RD_NOW_NONE	INT64_MIN
/*
 * After a close at SCRIPT LOAD, one new connection tries it again this
 * long after: a server that closed for another reason (a restart while
 * we connected) gets EVALSHA back; behind a proxy a try costs one lost
 * pipeline, sent again at once with EVAL.
 */
#define RD_NOLOAD_RETRY	(300 * NS_PER_SEC)

/*
 * The GCRA of gcra.c in microseconds. KEYS[1]: the counter. ARGV: op
 * (c: charge if allowed, p: peek, r: refund), T, B, period (us), cost.
 * Returns {allowed, retry_us}. The TAT is stored as an integer string
 * with an expiry at the TAT itself (SET PX), so no key outlives the
 * moment it stops mattering; an absent key is a TAT in the past.
 * string.format("%d") because tostring() keeps only 14 digits.
 */
static const char rd_script[] =
"if redis.replicate_commands then redis.replicate_commands() end\n"
"local t = redis.call('TIME')\n"
"local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
"local op, T, B = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])\n"
"local c = tonumber(ARGV[5])\n"
"local tat = tonumber(redis.call('GET', KEYS[1])) or 0\n"
"local function put(v)\n"
"  redis.call('SET', KEYS[1], string.format('%d', v), 'PX',\n"
"    string.format('%d', math.ceil((v - now) / 1000)))\n"
"end\n"
"if op == 'r' then\n"
"  local r = tat - c * T\n"
"  if r > now then put(r) elseif tat > 0 then redis.call('DEL', KEYS[1]) end\n"
"  return {1, 0}\n"
"end\n"
"if c > B then return {0, tonumber(ARGV[4])} end\n"
"local base = now\n"
"if tat > now then base = tat end\n"
"local new = base + c * T\n"
"local at = new - B * T\n"
"if at > now then return {0, at - now} end\n"
"if op == 'c' then put(new) end\n"
"return {1, 0}\n";

/*
 * The rules record (store_redis_hash_put). KEYS[1]: the hash. ARGV[1]:
 * "put" replaces it whole, "nx" writes it only when it is missing;
 * then field, value, ... One script, so `warden check` never reads it
 * half written. HSET in chunks: unpack() has a stack limit. Returns 1
 * when written, 0 when nx found it there.
 */
static const char rd_rec_script[] =
"local there = redis.call('EXISTS', KEYS[1])\n"
"if ARGV[1] == 'nx' and there == 1 then return 0 end\n"
"if there == 1 then redis.call('DEL', KEYS[1]) end\n"
"for i = 2, #ARGV, 256 do\n"
"  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 255, #ARGV)))\n"
"end\n"
"return 1\n";

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

static void
st_add(struct store_redis *r, enum rd_stat i, uint64_t n)
{
	atomic_fetch_add_explicit(&r->st[i], n, memory_order_relaxed);
}

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

static int
rc_lookup(struct store_redis *r, const struct store_req *q,
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

static void
rc_put(struct store_redis *r, const struct store_req *q, int64_t until)
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
static void
rc_drop(struct store_redis *r, const struct store_req *q)
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
static int
breaker_admit(struct store_redis *r, int64_t now, int *probe)
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

static void
breaker_done(struct store_redis *r, int ok, int probe, int64_t now,
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

static int
breaker_is_down(struct store_redis *r)
{
	int down;

	pthread_mutex_lock(&r->blk);
	down = r->down;
	pthread_mutex_unlock(&r->blk);
	return down;
}

/* --- connections ------------------------------------------------------ */

static void
conn_drop(struct rd_conn *k)
{
	if (k->c != NULL)
		redisFree(k->c);
	k->c = NULL;
	k->skip = 0;
	k->recput = 0;
	k->eval = 0;
}

/* Redis error text is untrusted: escaped, bounded. */
static void
why_reply(char *why, size_t len, const char *what, const redisReply *rp)
{
	char esc[LOG_ESC_BUF];

	if (rp != NULL && (rp->type == REDIS_REPLY_ERROR ||
	    rp->type == REDIS_REPLY_STATUS || rp->type == REDIS_REPLY_STRING))
		log_esc(rp->str, rp->len, esc, sizeof(esc));
	else
		snprintf(esc, sizeof(esc), "unexpected reply type %d",
		    rp != NULL ? rp->type : -1);
	snprintf(why, len, "%s: %.200s", what, esc);
}

enum rd_hs {
	HS_AUTH,
	HS_SELECT,
	HS_ROLE,	/* Sentinel mode: is it still the master? */
	HS_SCRIPT,
};

/*
 * A proxy (nutcracker) refuses SCRIPT LOAD: EVAL carries the script with
 * every call on this connection instead. Said once per store.
 */
static void
script_refused(struct store_redis *r, struct rd_conn *k,
    const redisReply *rp)
{
	char w[RD_WHY_MAX];

	k->eval = 1;
	if (atomic_exchange(&r->eval_logged, 1) == 0 && !r->quiet) {
		why_reply(w, sizeof(w), "SCRIPT LOAD", rp);
		log_notice("store: redis %s: %s; sending the script with EVAL",
		    r->addr, w);
	}
}

/*
 * AUTH on a fresh sentinel connection (requirepass or an ACL user in
 * sentinel.conf). Returns 0, or -1 with a reason.
 */
static int
sentinel_auth(struct store_redis *r, redisContext *c, size_t i, char *why,
    size_t wlen)
{
	const char *argv[3];
	size_t len[3];
	redisReply *rp;
	char w[RD_WHY_MAX];
	int a = 0, rc = 0;

	if (r->spass == NULL)
		return 0;
	argv[a] = "AUTH";
	len[a++] = 4;
	if (r->suser != NULL) {
		argv[a] = r->suser;
		len[a++] = strlen(r->suser);
	}
	argv[a] = r->spass;
	len[a++] = strlen(r->spass);
	rp = redisCommandArgv(c, a, argv, len);
	if (rp == NULL || rp->type != REDIS_REPLY_STATUS) {
		why_reply(w, sizeof(w), "AUTH", rp);
		snprintf(why, wlen, "sentinel %.60s:%d: %.150s",
		    r->sent_host[i], r->sent_port[i], rp != NULL ? w :
		    c->errstr);
		rc = -1;
	}
	if (rp != NULL)
		freeReplyObject(rp);
	return rc;
}

/*
 * nutcracker (twemproxy) does not answer SCRIPT LOAD: it closes the
 * connection, without answering even the AUTH pipelined before it, and
 * the batch behind it is lost. The caller saw no error reply first: a
 * Redis at maxclients also closes, but answers with an error first. A
 * server that closed for another reason (a restart as we connected)
 * looks the same: noload_probe tries SCRIPT LOAD again later. New
 * connections skip it until then, and EVAL carries the script. Logged
 * once per change. Returns 1: the lost batch is worth one more try,
 * with EVAL.
 */
static int
script_closed(struct store_redis *r, int64_t now)
{
	atomic_store(&r->noload_at, now);
	if (atomic_exchange(&r->noload, 1) == 0 && !r->quiet)
		log_notice("store: redis %s: the connection closed at "
		    "SCRIPT LOAD (a proxy such as nutcracker?); sending the "
		    "script with EVAL", r->addr);
	return 1;
}

/* SCRIPT LOAD answered with our SHA: a close at it was not for good. */
static void
script_loaded(struct store_redis *r)
{
	if (atomic_load(&r->noload) && atomic_exchange(&r->noload, 0) == 1 &&
	    !r->quiet)
		log_notice("store: redis %s: SCRIPT LOAD answered again; "
		    "sending EVALSHA", r->addr);
}

/*
 * Whether a new connection sends SCRIPT LOAD: always, unless it closed
 * a connection (script_closed); then one new connection tries again
 * each RD_NOLOAD_RETRY, so that a server that closed for another reason
 * (a restart while we connected) is not sent EVAL for good.
 */
static int
noload_probe(struct store_redis *r, int64_t now)
{
	int64_t at;

	if (!atomic_load(&r->noload))
		return 1;
	if (now == RD_NOW_NONE)
		return 0;
	at = atomic_load(&r->noload_at);
	if (at == RD_NOW_NONE || now < at ||
	    (uint64_t)now - (uint64_t)at < (uint64_t)RD_NOLOAD_RETRY)
		return 0;
	/* One connection tries; the others wait for the next turn. */
	return atomic_compare_exchange_strong(&r->noload_at, &at, now);
}

/*
 * Asks the sentinels, in order, for the master's address and connects
 * there. Each sentinel costs at most one connect and one command
 * timeout. Returns the context (err not set), or NULL with a reason.
 */
static redisContext *
sentinel_master(struct store_redis *r, char *why, size_t wlen)
{
	const char *argv[3] = { "SENTINEL", "get-master-addr-by-name",
	    r->master };
	size_t len[3] = { 8, 23, strlen(r->master) };
	char ip[64], eip[LOG_ESC_BUF], now[sizeof(r->mcur)];
	redisContext *c;
	redisReply *rp;
	long long port;
	size_t i;
	int changed;

	snprintf(why, wlen, "no sentinel answered");
	for (i = 0; i < r->nsent; i++) {
		c = redisConnectWithTimeout(r->sent_host[i], r->sent_port[i],
		    r->ctv);
		if (c == NULL || c->err || redisSetTimeout(c, r->ttv) !=
		    REDIS_OK) {
			snprintf(why, wlen, "sentinel %s:%d: %s",
			    r->sent_host[i], r->sent_port[i], c != NULL ?
			    c->errstr : "out of memory");
			if (c != NULL)
				redisFree(c);
			continue;
		}
		if (sentinel_auth(r, c, i, why, wlen) == -1) {
			redisFree(c);
			continue;
		}
		rp = redisCommandArgv(c, 3, argv, len);
		port = 0;
		if (rp != NULL && rp->type == REDIS_REPLY_ARRAY &&
		    rp->elements == 2 &&
		    rp->element[0]->type == REDIS_REPLY_STRING &&
		    rp->element[1]->type == REDIS_REPLY_STRING &&
		    rp->element[0]->len < sizeof(ip) &&
		    str_to_ll(rp->element[1]->str, 1, 65535, &port) == 0) {
			memcpy(ip, rp->element[0]->str, rp->element[0]->len);
			ip[rp->element[0]->len] = '\0';
		} else {
			why_reply(ip, sizeof(ip), "", rp);
			snprintf(why, wlen, "sentinel %s:%d: no address for "
			    "master %s%s", r->sent_host[i], r->sent_port[i],
			    r->master, rp != NULL && rp->type ==
			    REDIS_REPLY_ERROR ? ip : "");
			port = 0;
		}
		if (rp != NULL)
			freeReplyObject(rp);
		redisFree(c);
		if (port == 0)
			continue;
		/* The address is the sentinel's text: escaped for logs. */
		log_esc(ip, strlen(ip), eip, sizeof(eip));
		snprintf(now, sizeof(now), "%.260s:%lld", eip, port);
		pthread_mutex_lock(&r->mlock);
		changed = strcmp(now, r->mcur) != 0;
		if (changed)
			snprintf(r->mcur, sizeof(r->mcur), "%s", now);
		pthread_mutex_unlock(&r->mlock);
		if (changed && !r->quiet)
			log_notice("store: redis sentinel %s:%d: master %s is "
			    "at %s", r->sent_host[i], r->sent_port[i],
			    r->master, now);
		c = redisConnectWithTimeout(ip, (int)port, r->ctv);
		if (c != NULL && !c->err)
			return c;
		snprintf(why, wlen, "master %.60s at %.80s: %.90s",
		    r->master, now, c != NULL ? c->errstr : "out of memory");
		if (c != NULL)
			redisFree(c);
		return NULL;
	}
	return NULL;
}

/*
 * Connects k and appends the handshake (AUTH, SELECT, ROLE with
 * Sentinel, SCRIPT LOAD) so that it travels with the first batch: a
 * reconnect costs the TCP connect and no extra round trip. Fills hs
 * with what each reply answers. Returns their number, or -1 with a
 * reason in why.
 */
static int
conn_open(struct store_redis *r, struct rd_conn *k, int64_t now,
    enum rd_hs hs[4], char *why, size_t wlen)
{
	const char *argv[3];
	size_t len[3];
	redisContext *c;
	int n = 0, a;

	if (r->nsent > 0)
		c = sentinel_master(r, why, wlen);
	else if (r->sock != NULL)
		c = redisConnectUnixWithTimeout(r->sock, r->ctv);
	else
		c = redisConnectWithTimeout(r->host, r->port, r->ctv);
	st_add(r, RS_CONNECTS, 1);
	if (c == NULL && r->nsent > 0)
		return -1;
	if (c == NULL || c->err) {
		snprintf(why, wlen, "connect: %s", c != NULL ? c->errstr :
		    "out of memory");
		if (c != NULL)
			redisFree(c);
		return -1;
	}
	/* Without it a stopped server blocks the caller forever. */
	if (redisSetTimeout(c, r->ttv) != REDIS_OK)
		goto fail;
	if (r->pass != NULL) {
		a = 0;
		argv[a] = "AUTH";
		len[a++] = 4;
		if (r->user != NULL) {
			argv[a] = r->user;
			len[a++] = strlen(r->user);
		}
		argv[a] = r->pass;
		len[a++] = strlen(r->pass);
		if (redisAppendCommandArgv(c, a, argv, len) != REDIS_OK)
			goto fail;
		hs[n++] = HS_AUTH;
	}
	if (r->db != 0) {
		char db[16];

		snprintf(db, sizeof(db), "%d", r->db);
		argv[0] = "SELECT";
		len[0] = 6;
		argv[1] = db;
		len[1] = strlen(db);
		if (redisAppendCommandArgv(c, 2, argv, len) != REDIS_OK)
			goto fail;
		hs[n++] = HS_SELECT;
	}
	if (r->nsent > 0) {
		argv[0] = "ROLE";
		len[0] = 4;
		if (redisAppendCommandArgv(c, 1, argv, len) != REDIS_OK)
			goto fail;
		hs[n++] = HS_ROLE;
	}
	k->eval = !noload_probe(r, now);
	if (!k->eval) {
		argv[0] = "SCRIPT";
		len[0] = 6;
		argv[1] = "LOAD";
		len[1] = 4;
		argv[2] = rd_script;
		len[2] = sizeof(rd_script) - 1;
		if (redisAppendCommandArgv(c, 3, argv, len) != REDIS_OK)
			goto fail;
		hs[n++] = HS_SCRIPT;
	}
	k->c = c;
	k->gen = atomic_load(&r->gen);
	k->skip = 0;
	k->recput = 0;
	return n;
fail:
	snprintf(why, wlen, "connect: %s", c->err ? c->errstr :
	    "out of memory");
	redisFree(c);
	return -1;
}

/*
 * Reads the handshake replies. Returns 0, or -1 with a reason; -2 when
 * the link failed after an error reply, which is the reason (a Redis at
 * maxclients answers the first command with an error, then closes:
 * that is no proxy refusing SCRIPT LOAD).
 */
static int
conn_check(struct store_redis *r, struct rd_conn *k, const enum rd_hs *hs,
    int n, char *why, size_t wlen)
{
	static const char *const what[] = { "AUTH", "SELECT", "ROLE" };
	redisReply *rp;
	void *v;
	int i, rc = 0, bad;

	for (i = 0; i < n; i++) {
		if (redisGetReply(k->c, &v) != REDIS_OK)
			return rc == -1 ? -2 : -1;
		rp = v;
		if (hs[i] == HS_SCRIPT) {
			if (rp->type != REDIS_REPLY_STRING || rp->len != 40 ||
			    memcmp(rp->str, r->sha, 40) != 0)
				script_refused(r, k, rp);
			else
				script_loaded(r);
			freeReplyObject(rp);
			continue;
		}
		if (hs[i] == HS_ROLE) {
			/* After a failover the old master is a replica. */
			bad = rp->type != REDIS_REPLY_ARRAY ||
			    rp->elements < 1 ||
			    rp->element[0]->type != REDIS_REPLY_STRING ||
			    strcmp(rp->element[0]->str, "master") != 0;
			if (bad && rc == 0)
				why_reply(why, wlen, "ROLE: not the master",
				    rp->type == REDIS_REPLY_ARRAY &&
				    rp->elements > 0 ? rp->element[0] : rp);
		} else {
			bad = rp->type != REDIS_REPLY_STATUS;
			if (bad && rc == 0)
				why_reply(why, wlen, what[hs[i]], rp);
		}
		if (bad)
			rc = -1;
		freeReplyObject(rp);
	}
	return rc;
}

/* --- one exchange ----------------------------------------------------- */

static int64_t
clamp_us(int64_t ns)
{
	int64_t us = ns / 1000;

	if (us < 1)
		return 1;
	return us > RD_US_MAX ? RD_US_MAX : us;
}

/*
 * The Redis key of q: prefix "{" key "}" ":" limit. The braces are a
 * hash tag: a counter and its key map to one slot whatever routes them.
 * With a secret the parts become HMAC-SHA256 (hex) and only the counter
 * name, which comes from the rules, stays readable. The 8 hex digits
 * after the tag name the limit (store_limit_id): a reload that changes
 * a rule's rate or burst starts new counters, the old ones expire.
 * Returns the length, or -1.
 */
static int
rd_key(const struct store_redis *r, const struct store_req *q, char *buf)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	const char *bar;
	size_t at, clear;
	uint64_t lid;

	memcpy(buf, r->prefix, r->prefixlen);
	at = r->prefixlen;
	buf[at++] = '{';
	if (r->secret != NULL || q->keylen > STORE_KEY_MAX) {
		bar = q->keylen > 0 ? memchr(q->key, '|', q->keylen) : NULL;
		clear = bar != NULL ? (size_t)(bar - q->key) + 1 : 0;
		if (clear > RD_CLEAR_MAX)
			clear = 0;
		memcpy(buf + at, q->key, clear);
		at += clear;
		if (r->secret != NULL) {
			if (HMAC(EVP_sha256(), r->secret, (int)r->secretlen,
			    (const unsigned char *)q->key, q->keylen, md,
			    &mdlen) == NULL)
				return -1;
		} else {
			buf[at++] = '#';
			if (EVP_Digest(q->key, q->keylen, md, &mdlen,
			    EVP_sha256(), NULL) != 1)
				return -1;
		}
		for (i = 0; i < mdlen; i++) {
			buf[at++] = "0123456789abcdef"[md[i] >> 4];
			buf[at++] = "0123456789abcdef"[md[i] & 15];
		}
	} else {
		memcpy(buf + at, q->key, q->keylen);
		at += q->keylen;
	}
	buf[at++] = '}';
	lid = store_limit_id(&q->limit);
	lid ^= lid >> 32;
	buf[at++] = ':';
	for (i = 0; i < 8; i++)
		buf[at++] = "0123456789abcdef"[(lid >> (28 - 4 * i)) & 15];
	return (int)at;
}

/*
 * Appends one script call for q (op c, p or r) to k's output buffer:
 * argv with lengths, so no byte of a key is ever parsed as a format.
 */
static int
rd_append(struct store_redis *r, struct rd_conn *k, const struct store_req *q,
    char op, int eval)
{
	char key[RD_KEY_BUF], num[4][24], opc[2] = { op, '\0' };
	const char *argv[9];
	size_t len[9];
	int64_t t, b, p, cost;
	int n, i;

	if ((n = rd_key(r, q, key)) < 0)
		return -1;
	t = clamp_us(q->limit.interval_ns);
	b = q->limit.burst > 0 ? q->limit.burst : 1;
	if (b > RD_US_MAX / t)
		b = RD_US_MAX / t;
	p = q->limit.period_ns > 0 ? clamp_us(q->limit.period_ns) : b * t;
	cost = q->cost < 1 ? 1 : q->cost;
	if (cost > b)
		cost = b + 1;	/* refused anyway; keeps c * T exact */
	snprintf(num[0], sizeof(num[0]), "%lld", (long long)t);
	snprintf(num[1], sizeof(num[1]), "%lld", (long long)b);
	snprintf(num[2], sizeof(num[2]), "%lld", (long long)p);
	snprintf(num[3], sizeof(num[3]), "%lld", (long long)cost);
	argv[0] = eval ? "EVAL" : "EVALSHA";
	argv[1] = eval ? rd_script : r->sha;
	len[1] = eval ? sizeof(rd_script) - 1 : 40;
	argv[2] = "1";
	argv[3] = key;
	len[3] = (size_t)n;
	argv[4] = opc;
	for (i = 0; i < 4; i++)
		argv[5 + i] = num[i];
	for (i = 0; i < 9; i++)
		if (i != 1 && i != 3)
			len[i] = strlen(argv[i]);
	return redisAppendCommandArgv(k->c, 9, argv, len) == REDIS_OK ? 0 : -1;
}

enum rd_kind {
	RK_OK,
	RK_NOSCRIPT,	/* the server forgot the script: send EVAL */
	RK_CONN,	/* this server cannot serve us: reconnect, back off */
	RK_REQ,		/* this call failed; the connection is fine */
};

static enum rd_kind
rd_classify(const redisReply *rp)
{
	static const char *const conn_errs[] = {
		"READONLY", "LOADING", "MASTERDOWN", "NOAUTH", "WRONGPASS",
		"NOPERM", "BUSY", "MISCONF",
	};
	size_t i, n;

	if (rp->type != REDIS_REPLY_ERROR)
		return RK_OK;
	if (rp->len >= 8 && memcmp(rp->str, "NOSCRIPT", 8) == 0)
		return RK_NOSCRIPT;
	for (i = 0; i < NELEM(conn_errs); i++) {
		n = strlen(conn_errs[i]);
		if (rp->len >= n && memcmp(rp->str, conn_errs[i], n) == 0 &&
		    (rp->len == n || rp->str[n] == ' '))
			return RK_CONN;
	}
	return RK_REQ;
}

/* Checks a script's answer, {allowed, retry_us}, and fills res. */
static int
rd_parse(const redisReply *rp, struct store_res *res)
{
	long long a, t;

	if (rp->type != REDIS_REPLY_ARRAY || rp->elements != 2 ||
	    rp->element[0]->type != REDIS_REPLY_INTEGER ||
	    rp->element[1]->type != REDIS_REPLY_INTEGER)
		return -1;
	a = rp->element[0]->integer;
	t = rp->element[1]->integer;
	if ((a != 0 && a != 1) || t < 0 || t > 2 * RD_US_MAX ||
	    (a == 0 && t == 0))
		return -1;
	res->err = 0;
	res->allowed = (int)a;
	res->retry_after_ns = a ? 0 : (int64_t)t * 1000;
	return 0;
}

/* Reads m answers into res; NOSCRIPT ones are marked in *again. */
static int
rd_read(struct rd_conn *k, const size_t *idx, size_t m,
    struct store_res *res, uint64_t *again, size_t *got, char *why,
    size_t wlen)
{
	redisReply *rp;
	enum rd_kind kind;
	void *v;
	size_t j;
	int rc = 0;

	for (j = 0; j < m; j++) {
		if (redisGetReply(k->c, &v) != REDIS_OK)
			return -1;
		(*got)++;
		rp = v;
		kind = rd_classify(rp);
		if (kind == RK_OK && rd_parse(rp, &res[idx[j]]) == -1) {
			why_reply(why, wlen, "bad script reply", rp);
			kind = RK_REQ;
		}
		if (kind == RK_NOSCRIPT)
			*again |= 1ULL << j;
		else if (kind == RK_REQ)
			res[idx[j]].err = 1;
		else if (kind == RK_CONN && rc == 0) {
			why_reply(why, wlen, "reply", rp);
			rc = -2;
		}
		freeReplyObject(rp);
	}
	return rc;
}

/*
 * Appends the record script (rd_rec_script) in mode "put" or "nx" to c,
 * with the record kept by rec_keep (reclock held). Returns 0 or -1.
 */
static int
rec_cmd(struct store_redis *r, redisContext *c, const char *mode)
{
	const char **argv;
	size_t *len, i, argc = 5 + 2 * r->rec_n;
	int rc = -1;

	argv = calloc(argc, sizeof(*argv));
	len = calloc(argc, sizeof(*len));
	if (argv == NULL || len == NULL)
		goto out;
	argv[0] = "EVAL";
	argv[1] = rd_rec_script;
	argv[2] = "1";
	argv[3] = r->rec_key;
	argv[4] = mode;
	for (i = 0; i < 2 * r->rec_n; i++)
		argv[5 + i] = r->rec_fv[i];
	for (i = 0; i < argc; i++)
		len[i] = i == 1 ? sizeof(rd_rec_script) - 1 : strlen(argv[i]);
	rc = redisAppendCommandArgv(c, (int)argc, argv, len) == REDIS_OK ?
	    0 : -1;
out:
	free(argv);
	free(len);
	return rc;
}

/*
 * Appends the last record to a new connection k: fire and forget, like
 * a refund. Only where Redis lacks it (nx): a Redis restarted empty
 * gets it back, and a record another warden put since stays (it is the
 * last start's or reload's). In whole when the last put has not reached
 * Redis (rec_due), noted in k->recput. Returns the number of replies to
 * skip (0 or 1), or -1.
 */
static int
rec_append(struct store_redis *r, struct rd_conn *k)
{
	int n = 0;

	pthread_mutex_lock(&r->reclock);
	if (r->rec_key != NULL) {
		n = rec_cmd(r, k->c, r->rec_due ? "put" : "nx") == 0 ? 1 : -1;
		if (n == 1 && r->rec_due)
			k->recput = r->rec_serial;
	}
	pthread_mutex_unlock(&r->reclock);
	return n;
}

/* A put of record serial answered rp: written, unless a newer one came. */
static void
rec_done(struct store_redis *r, uint64_t serial, const redisReply *rp)
{
	if (rp->type != REDIS_REPLY_INTEGER)
		return;
	pthread_mutex_lock(&r->reclock);
	if (r->rec_serial == serial)
		r->rec_due = 0;
	pthread_mutex_unlock(&r->reclock);
}

/*
 * Reads the replies k owes from earlier exchanges (refunds, the
 * record), in order: the first may answer a record put. Every one is
 * read, error or not, so the next reply is the caller's. 0 or -1.
 */
static int
skip_read(struct store_redis *r, struct rd_conn *k)
{
	void *v;

	for (; k->skip > 0; k->skip--) {
		if (redisGetReply(k->c, &v) != REDIS_OK)
			return -1;
		if (k->recput != 0)
			rec_done(r, k->recput, v);
		k->recput = 0;
		freeReplyObject(v);
	}
	return 0;
}

static void
rec_clear(struct store_redis *r)
{
	size_t i;

	for (i = 0; r->rec_fv != NULL && i < 2 * r->rec_n; i++)
		free(r->rec_fv[i]);
	free(r->rec_fv);
	free(r->rec_key);
	r->rec_fv = NULL;
	r->rec_key = NULL;
	r->rec_n = 0;
}

/*
 * Keeps a copy of the record for new connections, due until a put of it
 * is answered. Returns its serial (> 0), or 0 when memory is short.
 */
static uint64_t
rec_keep(struct store_redis *r, const char *key, const char *const *field,
    const char *const *value, size_t n)
{
	char **fv, *k;
	uint64_t serial;
	size_t i;

	if ((k = strdup(key)) == NULL ||
	    (fv = calloc(2 * n + 1, sizeof(*fv))) == NULL) {
		free(k);
		return 0;
	}
	for (i = 0; i < n; i++)
		if ((fv[2 * i] = strdup(field[i])) == NULL ||
		    (fv[2 * i + 1] = strdup(value[i])) == NULL)
			break;
	if (i < n) {
		for (i = 0; i < 2 * n; i++)
			free(fv[i]);
		free(fv);
		free(k);
		return 0;
	}
	pthread_mutex_lock(&r->reclock);
	rec_clear(r);
	r->rec_key = k;
	r->rec_fv = fv;
	r->rec_n = n;
	r->rec_due = 1;
	serial = ++r->rec_serial;
	pthread_mutex_unlock(&r->reclock);
	return serial;
}

/*
 * One exchange of m requests on k (locked): the handshake of a new
 * connection, refund replies left from earlier, then the batch, all in
 * one write and one read. Scripts the server forgot (NOSCRIPT: restart,
 * failover, SCRIPT FLUSH) are sent again with EVAL, which also loads
 * them: a second round trip, once. now: the caller's clock, or
 * RD_NOW_NONE. Returns 0, or -1 when the connection failed (dropped;
 * *retry: it failed at once and had been used before, or it closed at
 * SCRIPT LOAD, so a fresh connection is worth one more try).
 */
static int
rd_exchange(struct store_redis *r, struct rd_conn *k,
    const struct store_req *req, const size_t *idx, size_t m,
    struct store_res *res, char op, int64_t now, char *why, size_t wlen,
    int *retry)
{
	enum rd_hs hs[4];
	uint64_t again = 0;
	size_t j, got = 0;
	int nhs = 0, fresh = 0, nrec = 0, ck = 0, rc, timeout;

	*retry = 0;
	if (k->c != NULL && k->gen != atomic_load(&r->gen))
		conn_drop(k);
	if (k->c == NULL) {
		if ((nhs = conn_open(r, k, now, hs, why, wlen)) < 0)
			return -1;
		fresh = 1;
	}
	for (j = 0; j < m; j++)
		if (rd_append(r, k, &req[idx[j]], req[idx[j]].peek ? 'p' : op,
		    k->eval) == -1)
			goto fail;
	if (fresh && (nrec = rec_append(r, k)) < 0)
		goto fail;
	st_add(r, RS_ROUND_TRIPS, 1);
	st_add(r, RS_SCRIPTS, m);
	if (skip_read(r, k) == -1)
		goto fail;
	if (fresh && (ck = conn_check(r, k, hs, nhs, why, wlen)) != 0) {
		if (k->c->err == 0 || ck == -2) {
			conn_drop(k);
			return -1;
		}
		goto fail;
	}
	if ((rc = rd_read(k, idx, m, res, &again, &got, why, wlen)) == -1)
		goto fail;
	if (rc == -2) {
		conn_drop(k);
		return -1;
	}
	/* The record's reply follows the batch's: read it later. */
	k->skip += (unsigned)nrec;
	if (again == 0)
		return 0;
	for (j = 0; j < m; j++)
		if ((again & (1ULL << j)) && rd_append(r, k, &req[idx[j]],
		    req[idx[j]].peek ? 'p' : op, 1) == -1)
			goto fail;
	st_add(r, RS_ROUND_TRIPS, 1);
	if (skip_read(r, k) == -1)
		goto fail;
	for (j = 0; j < m; j++) {
		redisReply *rp;
		void *v;

		if (!(again & (1ULL << j)))
			continue;
		if (redisGetReply(k->c, &v) != REDIS_OK)
			goto fail;
		rp = v;
		if (rd_classify(rp) != RK_OK || rd_parse(rp, &res[idx[j]]) ==
		    -1)
			res[idx[j]].err = 1;
		freeReplyObject(rp);
	}
	return 0;
fail:
	timeout = k->c->err == REDIS_ERR_IO &&
	    (errno == EAGAIN || errno == EWOULDBLOCK);
	if (timeout)
		snprintf(why, wlen, "no answer within %ld ms",
		    (long)(r->ttv.tv_sec * 1000 + r->ttv.tv_usec / 1000));
	else if (k->c->err)
		snprintf(why, wlen, "%s", k->c->errstr);
	else
		snprintf(why, wlen, "out of memory");
	*retry = !fresh && got == 0 && !timeout && k->c->err != 0;
	/*
	 * Closed in a handshake with SCRIPT LOAD, no error reply before:
	 * nutcracker closes at it without answering the AUTH before it.
	 */
	if (ck == -1 && !timeout && nhs > 0 && hs[nhs - 1] == HS_SCRIPT &&
	    (k->c->err == REDIS_ERR_EOF || k->c->err == REDIS_ERR_IO))
		*retry = script_closed(r, now);
	conn_drop(k);
	return -1;
}

/* A connection for one exchange: an idle one if any, else wait for one. */
static struct rd_conn *
pool_get(struct store_redis *r)
{
	unsigned start = atomic_fetch_add(&r->rr, 1) % r->nconns, i;
	struct rd_conn *k;

	for (i = 0; i < r->nconns; i++) {
		k = &r->conns[(start + i) % r->nconns];
		if (pthread_mutex_trylock(&k->lock) == 0)
			return k;
	}
	/* Every holder's exchange is bounded by the timeouts. */
	k = &r->conns[start];
	pthread_mutex_lock(&k->lock);
	return k;
}

/* Sends m requests of one chunk; fills their res (err on failure). */
static void
rd_send(struct store_redis *r, const struct store_req *req,
    const size_t *idx, size_t m, struct store_res *res, char op,
    int64_t now)
{
	char why[RD_WHY_MAX] = "";
	struct rd_conn *k;
	int64_t none = RD_NOW_NONE;
	int probe, retry, rc;
	size_t j;

	/* A close at SCRIPT LOAD where no clock was at hand: since now. */
	if (atomic_load(&r->noload) && atomic_load(&r->noload_at) == none)
		(void)atomic_compare_exchange_strong(&r->noload_at, &none,
		    now);
	if (!breaker_admit(r, now, &probe)) {
		st_add(r, RS_FAST_FAILS, 1);
		for (j = 0; j < m; j++)
			res[idx[j]].err = 1;
		return;
	}
	k = pool_get(r);
	/* Waited for a connection while the breaker opened: fail now. */
	if (!probe && breaker_is_down(r)) {
		pthread_mutex_unlock(&k->lock);
		st_add(r, RS_FAST_FAILS, 1);
		for (j = 0; j < m; j++)
			res[idx[j]].err = 1;
		return;
	}
	rc = rd_exchange(r, k, req, idx, m, res, op, now, why, sizeof(why),
	    &retry);
	/* A connection the server closed since (restart): once more. */
	if (rc == -1 && retry)
		rc = rd_exchange(r, k, req, idx, m, res, op, now, why,
		    sizeof(why), &retry);
	pthread_mutex_unlock(&k->lock);
	if (rc == -1) {
		st_add(r, RS_FAILURES, 1);
		/* Every pooled connection may be as stale: reconnect each. */
		atomic_fetch_add(&r->gen, 1);
		for (j = 0; j < m; j++) {
			res[idx[j]].err = 1;
			res[idx[j]].allowed = 0;
		}
	}
	breaker_done(r, rc == 0, probe, now, why);
	if (rc == -1)
		return;
	for (j = 0; j < m; j++)
		if (!res[idx[j]].err && !res[idx[j]].allowed)
			rc_put(r, &req[idx[j]],
			    now + res[idx[j]].retry_after_ns);
}

/* --- the store interface ---------------------------------------------- */

static int
rd_batch(struct store *s, const struct store_req *req, struct store_res *res,
    size_t n, int64_t now, char op)
{
	struct store_redis *r = (struct store_redis *)s;
	size_t idx[RD_CHUNK], i, m, base, end, failed = 0;
	int64_t b, p;

	for (base = 0; base < n; base = end) {
		end = n - base > RD_CHUNK ? base + RD_CHUNK : n;
		m = 0;
		for (i = base; i < end; i++) {
			memset(&res[i], 0, sizeof(res[i]));
			if (req[i].key == NULL && req[i].keylen > 0) {
				res[i].err = 1;
				continue;
			}
			/* gcra_eval: more than the burst never passes. */
			b = req[i].limit.burst > 0 ? req[i].limit.burst : 1;
			if (req[i].cost > b) {
				p = req[i].limit.period_ns;
				res[i].retry_after_ns = p > 0 ? p :
				    i64_mul_sat(b, req[i].limit.interval_ns);
				continue;
			}
			if (rc_lookup(r, &req[i], &res[i], now)) {
				st_add(r, RS_CACHE_HITS, 1);
				continue;
			}
			idx[m++] = i;
		}
		if (m > 0)
			rd_send(r, req, idx, m, res, op, now);
	}
	for (i = 0; i < n; i++)
		if (res[i].err)
			failed++;
	return n > 0 && failed == n ? -1 : 0;
}

static int
rd_charge(struct store *s, const struct store_req *req, struct store_res *res,
    size_t n, int64_t now)
{
	return rd_batch(s, req, res, n, now, 'c');
}

static int
rd_peek(struct store *s, const struct store_req *req, struct store_res *res,
    size_t n, int64_t now)
{
	return rd_batch(s, req, res, n, now, 'p');
}

/* An idle, connected connection with room for m more refund replies. */
static struct rd_conn *
pool_idle(struct store_redis *r, size_t m)
{
	unsigned start = atomic_fetch_add(&r->rr, 1) % r->nconns, i;
	struct rd_conn *k;

	for (i = 0; i < r->nconns; i++) {
		k = &r->conns[(start + i) % r->nconns];
		if (pthread_mutex_trylock(&k->lock) != 0)
			continue;
		if (k->c != NULL && k->gen == atomic_load(&r->gen) &&
		    k->skip + m <= RD_SKIP_MAX)
			return k;
		pthread_mutex_unlock(&k->lock);
	}
	return NULL;
}

/*
 * Refunds are written and not waited for: their replies stay in the
 * socket and the next exchange on that connection reads them first (in
 * its own round trip, which is there anyway). When the breaker is open,
 * or no connection is idle and connected, the refund is dropped: the
 * counter then errs by that charge, towards refusing, until its TAT
 * passes.
 */
static void
rd_refund(struct store *s, const struct store_req *req, size_t n,
    int64_t now)
{
	struct store_redis *r = (struct store_redis *)s;
	struct rd_conn *k;
	size_t i, m = 0;
	int done = 0;

	(void)now;
	for (i = 0; i < n; i++)
		if (req[i].key != NULL || req[i].keylen == 0) {
			rc_drop(r, &req[i]);
			m++;
		}
	if (m == 0)
		return;
	if (breaker_is_down(r) || (k = pool_idle(r, m)) == NULL) {
		st_add(r, RS_REFUNDS_DROPPED, m);
		return;
	}
	for (i = 0; i < n; i++) {
		if (req[i].key == NULL && req[i].keylen > 0)
			continue;
		if (rd_append(r, k, &req[i], 'r', k->eval) == -1)
			goto fail;
	}
	do {
		if (redisBufferWrite(k->c, &done) != REDIS_OK)
			goto fail;
	} while (!done);
	k->skip += (unsigned)m;
	pthread_mutex_unlock(&k->lock);
	st_add(r, RS_REFUNDS_SENT, m);
	return;
fail:
	conn_drop(k);
	pthread_mutex_unlock(&k->lock);
	st_add(r, RS_REFUNDS_DROPPED, m);
}

static void
strfree(char **p)
{
	if (*p != NULL) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

static void
rd_free(struct store *s)
{
	struct store_redis *r = (struct store_redis *)s;
	unsigned i;

	if (r == NULL)
		return;
	if (r->conns != NULL) {
		for (i = 0; i < r->nconns; i++) {
			conn_drop(&r->conns[i]);
			pthread_mutex_destroy(&r->conns[i].lock);
		}
		free(r->conns);
	}
	for (i = 0; i < RD_RC_LOCKS; i++)
		pthread_mutex_destroy(&r->rclock[i]);
	pthread_mutex_destroy(&r->blk);
	pthread_mutex_destroy(&r->mlock);
	rec_clear(r);
	pthread_mutex_destroy(&r->reclock);
	free(r->rc);
	for (i = 0; r->sent_host != NULL && i < r->nsent; i++)
		free(r->sent_host[i]);
	free(r->sent_host);
	free(r->sent_port);
	strfree(&r->master);
	strfree(&r->suser);
	strfree(&r->spass);
	strfree(&r->host);
	strfree(&r->sock);
	strfree(&r->user);
	strfree(&r->pass);
	strfree(&r->prefix);
	strfree(&r->secret);
	explicit_bzero(r->k0, sizeof(r->k0));
	explicit_bzero(r->k1, sizeof(r->k1));
	free(r);
}

static const struct store_ops rd_ops = {
	.name = "redis",
	.charge = rd_charge,
	.refund = rd_refund,
	.peek = rd_peek,
	.free = rd_free,
};

/* --- construction ----------------------------------------------------- */

/* NULL for NULL or "", else an owned copy; *fail set when out of memory. */
static char *
optdup(const char *s, int *fail)
{
	char *d;

	if (s == NULL || *s == '\0')
		return NULL;
	if ((d = strdup(s)) == NULL)
		*fail = 1;
	return d;
}

static int
rd_random(uint8_t *buf, size_t len)
{
	ssize_t got;

	while (len > 0) {
		got = getrandom(buf, len, 0);
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += got;
		len -= (size_t)got;
	}
	return 0;
}

static int
rd_sha1(char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	if (EVP_Digest(rd_script, sizeof(rd_script) - 1, md, &len,
	    EVP_sha1(), NULL) != 1 || len != 20)
		return -1;
	for (i = 0; i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static struct timeval
ms_tv(int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return tv;
}

/* Parses the sentinels' "HOST:PORT" (or "[V6]:PORT") and master_name. */
static int
rd_sentinels(struct store_redis *r, const struct store_redis_opts *o,
    char *err, size_t errlen)
{
	const char *hp, *colon;
	long long port;
	size_t i, hl;

	if (o->master_name == NULL || *o->master_name == '\0' ||
	    o->nsentinels > 64) {
		snprintf(err, errlen, "store.redis.sentinels: needs "
		    "master_name (and at most 64 sentinels)");
		return -1;
	}
	r->sent_host = calloc(o->nsentinels, sizeof(*r->sent_host));
	r->sent_port = calloc(o->nsentinels, sizeof(*r->sent_port));
	if ((r->master = strdup(o->master_name)) == NULL ||
	    r->sent_host == NULL || r->sent_port == NULL)
		goto oom;
	for (i = 0; i < o->nsentinels; i++) {
		hp = o->sentinels[i];
		colon = hp != NULL ? strrchr(hp, ':') : NULL;
		if (colon == NULL || colon == hp ||
		    str_to_ll(colon + 1, 1, 65535, &port) != 0) {
			snprintf(err, errlen, "store.redis.sentinels: "
			    "\"%.100s\" is not HOST:PORT", hp != NULL ? hp :
			    "");
			return -1;
		}
		hl = (size_t)(colon - hp);
		if (hp[0] == '[' && hl > 2 && hp[hl - 1] == ']') {
			hp++;
			hl -= 2;
		}
		if ((r->sent_host[i] = strndup(hp, hl)) == NULL)
			goto oom;
		r->sent_port[i] = (int)port;
		r->nsent = i + 1;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* Copies and checks the options. Returns 0, or -1 with a reason. */
static int
rd_setup(struct store_redis *r, const struct store_redis_opts *o, char *err,
    size_t errlen)
{
	const char *prefix = o->prefix != NULL ? o->prefix : "warden:";
	uint32_t slots = o->cache_slots ? o->cache_slots : 16384;
	int oom = 0;

	if (strlen(prefix) > RD_PREFIX_MAX) {
		snprintf(err, errlen, "store.redis.prefix: longer than %d "
		    "bytes", RD_PREFIX_MAX);
		return -1;
	}
	if (strchr(prefix, '{') != NULL || strchr(prefix, '}') != NULL) {
		/* The hash tag must be the key's, not the prefix's. */
		snprintf(err, errlen, "store.redis.prefix: no braces, please");
		return -1;
	}
	if (o->nsentinels > 0) {
		if (rd_sentinels(r, o, err, errlen) == -1)
			return -1;
	} else if ((o->socket == NULL || *o->socket == '\0') &&
	    (o->host == NULL || *o->host == '\0' || o->port < 1 ||
	    o->port > 65535)) {
		snprintf(err, errlen, "store.redis: needs host and port, or "
		    "socket");
		return -1;
	}
	if (o->pool < 0 || o->pool > 1024 || o->connect_timeout_ms < 0 ||
	    o->command_timeout_ms < 0 || slots > (1U << 24)) {
		snprintf(err, errlen, "store.redis: pool, timeouts or cache "
		    "out of range");
		return -1;
	}
	r->sock = optdup(o->socket, &oom);
	r->host = optdup(o->host, &oom);
	r->user = optdup(o->username, &oom);
	r->pass = optdup(o->password, &oom);
	r->secret = optdup(o->key_secret, &oom);
	r->suser = optdup(o->sentinel_username, &oom);
	r->spass = optdup(o->sentinel_password, &oom);
	r->prefix = strdup(prefix);
	if (oom || r->prefix == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* Redis 6 ACL users need a password; a username alone is unused. */
	if (r->pass == NULL)
		strfree(&r->user);
	if (r->spass == NULL)
		strfree(&r->suser);
	r->prefixlen = strlen(r->prefix);
	r->secretlen = r->secret != NULL ? strlen(r->secret) : 0;
	r->port = o->port;
	r->db = o->db;
	if (r->nsent > 0)
		snprintf(r->addr, sizeof(r->addr), "master %.200s via %zu "
		    "sentinel%s", r->master, r->nsent, r->nsent > 1 ? "s" : "");
	else if (r->sock != NULL)
		snprintf(r->addr, sizeof(r->addr), "unix:%.280s", r->sock);
	else
		snprintf(r->addr, sizeof(r->addr), "%.280s:%d", r->host,
		    r->port);
	r->ctv = ms_tv(o->connect_timeout_ms ? o->connect_timeout_ms : 200);
	r->ttv = ms_tv(o->command_timeout_ms ? o->command_timeout_ms : 100);
	r->nconns = o->pool ? (unsigned)o->pool : 8;
	r->fail_max = o->breaker_failures > 0 ? o->breaker_failures : 3;
	r->bo_min = o->breaker_min_ns > 0 ? o->breaker_min_ns :
	    NS_PER_SEC;
	r->bo_max = o->breaker_max_ns >= r->bo_min ? o->breaker_max_ns :
	    30 * NS_PER_SEC;
	if (r->bo_max < r->bo_min)
		r->bo_max = r->bo_min;
	r->backoff = r->bo_min;
	while (slots & (slots - 1))
		slots &= slots - 1;
	if (slots < RD_RC_LOCKS)
		slots = RD_RC_LOCKS;
	r->rcmask = slots - 1;
	r->rcoff = o->cache_off;
	r->quiet = o->quiet;
	if ((r->rc = calloc(slots, sizeof(*r->rc))) == NULL ||
	    (r->conns = calloc(r->nconns, sizeof(*r->conns))) == NULL ||
	    rd_random(r->k0, sizeof(r->k0)) == -1 ||
	    rd_random(r->k1, sizeof(r->k1)) == -1 || rd_sha1(r->sha) == -1) {
		snprintf(err, errlen, "out of memory or no randomness");
		return -1;
	}
	return 0;
}

struct store *
store_redis_new(const struct store_redis_opts *o, char *err, size_t errlen)
{
	struct store_redis *r;
	char why[RD_WHY_MAX] = "";
	unsigned i;
	int retry, rc;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->base.ops = &rd_ops;
	pthread_mutex_init(&r->blk, NULL);
	pthread_mutex_init(&r->mlock, NULL);
	pthread_mutex_init(&r->reclock, NULL);
	for (i = 0; i < RD_RC_LOCKS; i++)
		pthread_mutex_init(&r->rclock[i], NULL);
	if (rd_setup(r, o, err, errlen) == -1) {
		rd_free(&r->base);
		return NULL;
	}
	for (i = 0; i < r->nconns; i++)
		pthread_mutex_init(&r->conns[i].lock, NULL);
	/* One connection now, to say at start whether Redis answers. */
	pthread_mutex_lock(&r->conns[0].lock);
	rc = rd_exchange(r, &r->conns[0], NULL, NULL, 0, NULL, 'c',
	    RD_NOW_NONE, why, sizeof(why), &retry);
	if (rc == -1 && retry)
		rc = rd_exchange(r, &r->conns[0], NULL, NULL, 0, NULL, 'c',
		    RD_NOW_NONE, why, sizeof(why), &retry);
	pthread_mutex_unlock(&r->conns[0].lock);
	if (rc == 0 && r->quiet)
		return &r->base;
	if (rc == 0) {
		log_info("store: redis %s: connected, pool of %u", r->addr,
		    r->nconns);
		return &r->base;
	}
	/*
	 * Start anyway: the breaker is open and the first charge probes.
	 * Until Redis answers, each rule's on_error decides.
	 */
	r->down = 1;
	r->until = INT64_MIN;
	st_add(r, RS_OPENS, 1);
	snprintf(r->why0, sizeof(r->why0), "%s", why);
	if (!r->quiet)
		log_warning("store: redis down: %s: %s (starting without "
		    "it; on_error applies until it answers)", r->addr, why);
	return &r->base;
}

void
store_redis_stats(struct store *s, struct store_redis_stats *out)
{
	struct store_redis *r = (struct store_redis *)s;

	out->round_trips = atomic_load(&r->st[RS_ROUND_TRIPS]);
	out->scripts = atomic_load(&r->st[RS_SCRIPTS]);
	out->cache_hits = atomic_load(&r->st[RS_CACHE_HITS]);
	out->connects = atomic_load(&r->st[RS_CONNECTS]);
	out->failures = atomic_load(&r->st[RS_FAILURES]);
	out->fast_fails = atomic_load(&r->st[RS_FAST_FAILS]);
	out->breaker_opens = atomic_load(&r->st[RS_OPENS]);
	out->refunds_sent = atomic_load(&r->st[RS_REFUNDS_SENT]);
	out->refunds_dropped = atomic_load(&r->st[RS_REFUNDS_DROPPED]);
	out->down = breaker_is_down(r);
}

/* --- small records beside the counters (rulefp.c) ---------------------- */

/* An idle-or-waited connection, connected (handshake done), locked. */
static struct rd_conn *
conn_ready(struct store_redis *r, char *why, size_t wlen)
{
	struct rd_conn *k = pool_get(r);
	int retry, rc = 0;

	if (k->c != NULL && k->gen != atomic_load(&r->gen))
		conn_drop(k);
	if (k->c == NULL) {
		rc = rd_exchange(r, k, NULL, NULL, 0, NULL, 'c', RD_NOW_NONE,
		    why, wlen, &retry);
		if (rc == -1 && retry)
			rc = rd_exchange(r, k, NULL, NULL, 0, NULL, 'c',
			    RD_NOW_NONE, why, wlen, &retry);
	}
	if (rc == -1) {
		pthread_mutex_unlock(&k->lock);
		return NULL;
	}
	return k;
}

/* Reads the replies still due, then one reply (owned); NULL on failure. */
static redisReply *
conn_reply(struct store_redis *r, struct rd_conn *k)
{
	void *v;

	if (skip_read(r, k) == -1 || redisGetReply(k->c, &v) != REDIS_OK)
		return NULL;
	return v;
}

/*
 * One command, one reply: a reply left unread would answer the next
 * exchange on this pooled connection, and every answer after it would
 * be one behind (issue 5: a refused DEL of the record did that, since
 * be63390 pipelined DEL and HSET).
 */
int
store_redis_hash_put(struct store *s, const char *name,
    const char *const *field, const char *const *value, size_t n,
    char *err, size_t errlen)
{
	struct store_redis *r = (struct store_redis *)s;
	char key[RD_PREFIX_MAX + 80], why[RD_WHY_MAX] = "";
	struct rd_conn *k = NULL;
	redisReply *rp;
	uint64_t serial;
	int rc = -1, app;

	snprintf(err, errlen, "out of memory");
	if (strlen(name) > 64 || n > 100000)
		return -1;
	snprintf(key, sizeof(key), "%s%s", r->prefix, name);
	/* Kept first: if Redis is away, a new connection writes it. */
	if ((serial = rec_keep(r, key, field, value, n)) == 0)
		return -1;
	if ((k = conn_ready(r, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	pthread_mutex_lock(&r->reclock);
	app = rec_cmd(r, k->c, "put");
	pthread_mutex_unlock(&r->reclock);
	if (app == -1 || (rp = conn_reply(r, k)) == NULL) {
		snprintf(err, errlen, "%s", k->c->err ? k->c->errstr :
		    "out of memory");
		conn_drop(k);
		goto out;
	}
	if (rp->type == REDIS_REPLY_INTEGER) {
		rec_done(r, serial, rp);
		rc = 0;
		err[0] = '\0';
	} else
		why_reply(err, errlen, "record", rp);
	freeReplyObject(rp);
out:
	pthread_mutex_unlock(&k->lock);
	return rc;
}

int
store_redis_hash_get(const struct store_redis_opts *o, const char *name,
    void (*fn)(void *, const char *, size_t, const char *, size_t),
    void *ctx, char *err, size_t errlen)
{
	struct store_redis_opts q = *o;
	struct store_redis *r;
	struct rd_conn *k = NULL;
	char key[RD_PREFIX_MAX + 80], why[RD_WHY_MAX] = "";
	const char *argv[2];
	size_t len[2], i;
	redisReply *rp = NULL, *f, *v;
	int rc = -1;

	q.pool = 1;
	q.cache_slots = 64;
	q.quiet = 1;
	if (strlen(name) > 64 ||
	    (r = (struct store_redis *)store_redis_new(&q, err, errlen)) ==
	    NULL)
		return -1;
	if (r->down) {
		snprintf(err, errlen, "%s", r->why0);
		goto out;
	}
	if ((k = conn_ready(r, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "%s", why);
		goto out;
	}
	snprintf(key, sizeof(key), "%s%s", r->prefix, name);
	argv[0] = "HGETALL";
	len[0] = 7;
	argv[1] = key;
	len[1] = strlen(key);
	if (redisAppendCommandArgv(k->c, 2, argv, len) != REDIS_OK ||
	    (rp = conn_reply(r, k)) == NULL) {
		snprintf(err, errlen, "%s", k->c->err ? k->c->errstr :
		    "out of memory");
		goto out;
	}
	/* RESP2 answers a flat array of field, value, ... */
	if (rp->type != REDIS_REPLY_ARRAY || rp->elements % 2 != 0) {
		why_reply(err, errlen, "HGETALL", rp);
		goto out;
	}
	for (i = 0; i + 1 < rp->elements; i += 2) {
		f = rp->element[i];
		v = rp->element[i + 1];
		if (f->type == REDIS_REPLY_STRING &&
		    v->type == REDIS_REPLY_STRING)
			fn(ctx, f->str, f->len, v->str, v->len);
	}
	rc = 0;
out:
	if (rp != NULL)
		freeReplyObject(rp);
	if (k != NULL)
		pthread_mutex_unlock(&k->lock);
	rd_free(&r->base);
	return rc;
}

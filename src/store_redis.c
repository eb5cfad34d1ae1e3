/*
 * store_redis.c - rate counters shared by several MTAs, in Redis
 * (DESIGN.md §4b): one GCRA Lua script call per limit key, all calls of
 * a batch pipelined in one round trip, time read from the server's TIME.
 * Owns: the store interface (charge, peek, refund, in chunks), options
 * and construction, the counters, the small records beside them. The
 * rest is in redis_conn.c (the pool, the handshake, Sentinel),
 * redis_exchange.c (the script, key names, one pipelined exchange) and
 * redis_guard.c (the refusal cache, the circuit breaker): redis_int.h.
 * Not: on_error (the engine applies it), counting calls and latency
 * (store_timed.c wraps every store), the reference GCRA math (gcra.c; the
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

#include <openssl/evp.h>

#include "log.h"
#include "redis_int.h"

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
			if (rd_cache_lookup(r, &req[i], &res[i], now)) {
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
			rd_cache_drop(r, &req[i]);
			m++;
		}
	if (m == 0)
		return;
	if (rd_breaker_is_down(r) || (k = rd_pool_idle(r, m)) == NULL) {
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
	rd_conn_drop(k);
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
			rd_conn_drop(&r->conns[i]);
			pthread_mutex_destroy(&r->conns[i].lock);
		}
		free(r->conns);
	}
	for (i = 0; i < RD_RC_LOCKS; i++)
		pthread_mutex_destroy(&r->rclock[i]);
	pthread_mutex_destroy(&r->blk);
	pthread_mutex_destroy(&r->mlock);
	rd_rec_clear(r);
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

	if (EVP_Digest(rd_script, rd_script_len, md, &len,
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
	out->down = rd_breaker_is_down(r);
}

/* --- small records beside the counters (rulefp.c) ---------------------- */

/* An idle-or-waited connection, connected (handshake done), locked. */
static struct rd_conn *
conn_ready(struct store_redis *r, char *why, size_t wlen)
{
	struct rd_conn *k = rd_pool_get(r);
	int retry, rc = 0;

	if (k->c != NULL && k->gen != atomic_load(&r->gen))
		rd_conn_drop(k);
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

	if (rd_skip_read(r, k) == -1 || redisGetReply(k->c, &v) != REDIS_OK)
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
	if ((serial = rd_rec_keep(r, key, field, value, n)) == 0)
		return -1;
	if ((k = conn_ready(r, why, sizeof(why))) == NULL) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	pthread_mutex_lock(&r->reclock);
	app = rd_rec_cmd(r, k->c, "put");
	pthread_mutex_unlock(&r->reclock);
	if (app == -1 || (rp = conn_reply(r, k)) == NULL) {
		snprintf(err, errlen, "%s", k->c->err ? k->c->errstr :
		    "out of memory");
		rd_conn_drop(k);
		goto out;
	}
	if (rp->type == REDIS_REPLY_INTEGER) {
		rd_rec_done(r, serial, rp);
		rc = 0;
		err[0] = '\0';
	} else
		rd_why_reply(err, errlen, "record", rp);
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
		rd_why_reply(err, errlen, "HGETALL", rp);
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

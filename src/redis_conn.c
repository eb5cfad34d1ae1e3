/*
 * redis_conn.c - connections to Redis (DESIGN.md §4b): the pool, the
 * handshake that travels with the first batch (AUTH, SELECT, ROLE,
 * SCRIPT LOAD), the master's address from Sentinel, the timeouts.
 * Owns: opening, checking and dropping a connection; whether a new one
 * sends SCRIPT LOAD or EVAL (a proxy such as nutcracker refuses it).
 * Not: what an exchange sends (redis_exchange.c), the breaker.
 * Threads: each pooled connection has its own mutex; rd_pool_get and
 * rd_pool_idle return it locked. mlock guards the master's last address.
 * Errors: -1 with a reason in why; every wait is bounded by the connect
 * and command timeouts (Sentinel: those of each sentinel asked, then
 * the master's). A context with err set is dropped, never reused.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "redis_int.h"

#define RD_SKIP_MAX	1024	/* unread refund replies, a connection */
/*
 * After a close at SCRIPT LOAD, one new connection tries it again this
 * long after (at once after a refused connect: noload_reprobe): a
 * server that closed for another reason (a restart while we connected)
 * gets EVALSHA back; behind a proxy a try costs one lost pipeline, sent
 * again at once with EVAL.
 */
#define RD_NOLOAD_RETRY	(300 * NS_PER_SEC)

/* --- connections ------------------------------------------------------ */

void
rd_conn_drop(struct rd_conn *k)
{
	if (k->c != NULL)
		redisFree(k->c);
	k->c = NULL;
	k->skip = 0;
	k->recput = 0;
	k->eval = 0;
}

/* Redis error text is untrusted: escaped, bounded. */
void
rd_why_reply(char *why, size_t len, const char *what, const redisReply *rp)
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
		rd_why_reply(w, sizeof(w), "SCRIPT LOAD", rp);
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
		rd_why_reply(w, sizeof(w), "AUTH", rp);
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
int
rd_script_closed(struct store_redis *r, int64_t now)
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
 * a connection (rd_script_closed); then one new connection tries again
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
 * A connect that fails means nothing listens there: what closed at
 * SCRIPT LOAD was a server going away (killed or restarted as we
 * connected), not a proxy, which keeps accepting. The next connection
 * tries SCRIPT LOAD again instead of waiting RD_NOLOAD_RETRY.
 */
static void
noload_reprobe(struct store_redis *r, int64_t now)
{
	if (atomic_load(&r->noload) && now != RD_NOW_NONE)
		atomic_store(&r->noload_at, now - RD_NOLOAD_RETRY);
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
			rd_why_reply(ip, sizeof(ip), "", rp);
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
int
rd_conn_open(struct store_redis *r, struct rd_conn *k, int64_t now,
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
	if (c == NULL && r->nsent > 0) {
		noload_reprobe(r, now);
		return -1;
	}
	if (c == NULL || c->err) {
		if (c != NULL)
			noload_reprobe(r, now);
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
		len[2] = rd_script_len;
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
int
rd_conn_check(struct store_redis *r, struct rd_conn *k, const enum rd_hs *hs,
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
				rd_why_reply(why, wlen, "ROLE: not the master",
				    rp->type == REDIS_REPLY_ARRAY &&
				    rp->elements > 0 ? rp->element[0] : rp);
		} else {
			bad = rp->type != REDIS_REPLY_STATUS;
			if (bad && rc == 0)
				rd_why_reply(why, wlen, what[hs[i]], rp);
		}
		if (bad)
			rc = -1;
		freeReplyObject(rp);
	}
	return rc;
}

/* A connection for one exchange: an idle one if any, else wait for one. */
struct rd_conn *
rd_pool_get(struct store_redis *r)
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

/* An idle, connected connection with room for m more refund replies. */
struct rd_conn *
rd_pool_idle(struct store_redis *r, size_t m)
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

/*
 * redis_exchange.c - one exchange with Redis (DESIGN.md §4b): one GCRA
 * Lua script call per limit key, all calls of a chunk pipelined in one
 * round trip, time read from the server's TIME; and the copy of the
 * rules record each new connection writes again.
 * Owns: the scripts, Redis key names (prefix, hash tag, HMAC), reading
 * and checking every reply, the record's copy (reclock).
 * Not: opening connections (redis_conn.c), the cache and the breaker
 * (redis_guard.c) beyond asking them, on_error (the engine).
 * Threads: rd_exchange wants its connection locked; rd_send takes one.
 * Errors: a chunk Redis does not answer sets err on each request it
 * carried. Every reply of a pipeline is read, error or not, before the
 * connection serves again: one left unread would answer the next caller.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "log.h"
#include "redis_int.h"

#define RD_CLEAR_MAX	128	/* counter name in clear with HMAC */
#define RD_KEY_BUF	(RD_PREFIX_MAX + STORE_KEY_MAX + 32)
/*
 * Lua numbers are doubles: integers are exact below 2^53. Timestamps are
 * microseconds since 1970 (2^50.6 in 2026), so every span the script adds
 * (cost * T, B * T) is kept below 2^49 us, about 17.8 years; longer
 * windows are shortened, which errs towards letting mail through.
 */
#define RD_US_MAX	(1LL << 49)

/*
 * The GCRA of gcra.c in microseconds. KEYS[1]: the counter. ARGV: op
 * (c: charge if allowed, p: peek, r: refund), T, B, period (us), cost.
 * Returns {allowed, retry_us}. The TAT is stored as an integer string
 * with an expiry at the TAT itself (SET PX), so no key outlives the
 * moment it stops mattering; an absent key is a TAT in the past.
 * string.format("%d") because tostring() keeps only 14 digits.
 */
const char rd_script[] =
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
const size_t rd_script_len = sizeof(rd_script) - 1;

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
int
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
			rd_why_reply(why, wlen, "bad script reply", rp);
			kind = RK_REQ;
		}
		if (kind == RK_NOSCRIPT)
			*again |= 1ULL << j;
		else if (kind == RK_REQ)
			res[idx[j]].err = 1;
		else if (kind == RK_CONN && rc == 0) {
			rd_why_reply(why, wlen, "reply", rp);
			rc = -2;
		}
		freeReplyObject(rp);
	}
	return rc;
}

/*
 * Appends the record script (rd_rec_script) in mode "put" or "nx" to c,
 * with the record kept by rd_rec_keep (reclock held). Returns 0 or -1.
 */
int
rd_rec_cmd(struct store_redis *r, redisContext *c, const char *mode)
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
		n = rd_rec_cmd(r, k->c, r->rec_due ? "put" : "nx") == 0 ?
		    1 : -1;
		if (n == 1 && r->rec_due)
			k->recput = r->rec_serial;
	}
	pthread_mutex_unlock(&r->reclock);
	return n;
}

/* A put of record serial answered rp: written, unless a newer one came. */
void
rd_rec_done(struct store_redis *r, uint64_t serial, const redisReply *rp)
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
int
rd_skip_read(struct store_redis *r, struct rd_conn *k)
{
	void *v;

	for (; k->skip > 0; k->skip--) {
		if (redisGetReply(k->c, &v) != REDIS_OK)
			return -1;
		if (k->recput != 0)
			rd_rec_done(r, k->recput, v);
		k->recput = 0;
		freeReplyObject(v);
	}
	return 0;
}

void
rd_rec_clear(struct store_redis *r)
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
uint64_t
rd_rec_keep(struct store_redis *r, const char *key, const char *const *field,
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
	rd_rec_clear(r);
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
int
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
		rd_conn_drop(k);
	if (k->c == NULL) {
		if ((nhs = rd_conn_open(r, k, now, hs, why, wlen)) < 0)
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
	if (rd_skip_read(r, k) == -1)
		goto fail;
	if (fresh && (ck = rd_conn_check(r, k, hs, nhs, why, wlen)) != 0) {
		if (k->c->err == 0 || ck == -2) {
			rd_conn_drop(k);
			return -1;
		}
		goto fail;
	}
	if ((rc = rd_read(k, idx, m, res, &again, &got, why, wlen)) == -1)
		goto fail;
	if (rc == -2) {
		rd_conn_drop(k);
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
	if (rd_skip_read(r, k) == -1)
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
		*retry = rd_script_closed(r, now);
	rd_conn_drop(k);
	return -1;
}

/* Sends m requests of one chunk; fills their res (err on failure). */
void
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
	if (!rd_breaker_admit(r, now, &probe)) {
		st_add(r, RS_FAST_FAILS, 1);
		for (j = 0; j < m; j++)
			res[idx[j]].err = 1;
		return;
	}
	k = rd_pool_get(r);
	/* Waited for a connection while the breaker opened: fail now. */
	if (!probe && rd_breaker_is_down(r)) {
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
	rd_breaker_done(r, rc == 0, probe, now, why);
	if (rc == -1)
		return;
	for (j = 0; j < m; j++)
		if (!res[idx[j]].err && !res[idx[j]].allowed)
			rd_cache_put(r, &req[idx[j]],
			    now + res[idx[j]].retry_after_ns);
}

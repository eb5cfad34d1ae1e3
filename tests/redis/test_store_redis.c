/*
 * test_store_redis.c - the Redis store against a real redis-server
 * (started and stopped by tests/redis/run.sh). Prints TAP.
 *
 *   test_store_redis gcra PORT
 *       one GCRA case table run step by step against the memory store
 *       and the Redis store at the same moments: the verdicts and
 *       retry_after (in whole seconds) must equal the table's and each
 *       other's; round trips counted by a proxy in this program that
 *       sees the bytes (1 per charge, however many limits); INFO
 *       commandstats (N script calls); PTTL on every key; key_secret
 *       leaves no address in KEYS; NOSCRIPT recovery; 8 threads on one
 *       key admit exactly the burst.
 *   test_store_redis fail PORT PIDFILE RESTART-COMMAND
 *       the server paused (SIGSTOP) and stopped (SIGTERM) under a live
 *       store: every charge fails within a bound, the breaker opens (no
 *       connect attempts while it is open), and after SIGCONT or a
 *       restart charges succeed again in the same process.
 *   test_store_redis down PORT
 *       a store made while nothing listens starts degraded.
 *   test_store_redis sentinel SPORT MPORT RPORT MPIDFILE [SPASS]
 *       Sentinel: find the master, follow a failover (master stopped).
 *       With SPASS the sentinel wants AUTH: a store without the
 *       password (or with a wrong one) finds no master; with it, it does.
 *   test_store_redis shard NPORT PORT1 PORT2 [PASSWORD]
 *       through nutcracker (NPORT) over two redis-servers (PASSWORD:
 *       their requirepass and the proxy's redis_auth): the case
 *       table, limits exact on 40 keys charged 5 to a batch, the keys
 *       spread over both servers (SCAN on each), every key with a TTL.
 *   test_store_redis desync PORT
 *       the server has DEL renamed away: the rules record cannot be
 *       replaced; the put says so and every later verdict on the same
 *       pooled connection is exact (issue 5: a reply left unread).
 *   test_store_redis noload PORT PASSWORD
 *       maxclients 1, the slot held while the store connects: once it
 *       is free the store loads the script (EVALSHA, no EVAL).
 *   test_store_redis probe PORT
 *       the store's first connection closes before any reply (no AUTH):
 *       EVAL, until a new connection 5 minutes later (caller's clock)
 *       loads the script again; at once when a connect was refused in
 *       between (a server going away, not a proxy).
 *   test_store_redis sentesc 0
 *       a fake sentinel names the master "127.0.0.1\x1b[31mX": the store
 *       logs it escaped (run.sh checks stderr).
 *   test_store_redis record PORT
 *       two stores on one prefix: the rules record is the last put's,
 *       survives the other's reconnect, and comes back when lost.
 *   test_store_redis bench PORT
 *       figures (TAP comments): PING vs a charge of 1 and of 5 limits.
 *
 * Log lines of the store go to stderr; run.sh counts them.
 * Expected values are worked out by hand from the GCRA definition
 * (DESIGN.md §3), not from gcra.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <hiredis/hiredis.h>

#include "gcra.h"
#include "log.h"
#include "store.h"

#define MS	1000000LL

static int ntest, nfail;

static void PRINTF_LIKE(2, 3)
ok(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", cond ? "" : "not ", ++ntest);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		nfail++;
}

static void PRINTF_LIKE(1, 2)
diag(const char *fmt, ...)
{
	va_list ap;

	printf("#   ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static int64_t
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* --- a direct connection for looking at the server ------------------ */

/* The servers' requirepass (shard part), for admin and the stores. */
static const char *redis_pass;

static redisContext *
admin(int port)
{
	struct timeval tv = { 2, 0 };
	redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
	redisReply *rp;

	if (c == NULL || c->err) {
		printf("Bail out! cannot connect to redis on %d\n", port);
		exit(1);
	}
	redisSetTimeout(c, tv);
	if (redis_pass != NULL) {
		rp = redisCommand(c, "AUTH %s", redis_pass);
		if (rp == NULL || rp->type != REDIS_REPLY_STATUS) {
			printf("Bail out! AUTH on %d refused\n", port);
			exit(1);
		}
		freeReplyObject(rp);
	}
	return c;
}

/* The calls= of one command in INFO commandstats, or -1. */
static long long
cmd_calls(redisContext *c, const char *cmd)
{
	redisReply *rp = redisCommand(c, "INFO commandstats");
	char want[64];
	const char *p;
	long long n = -1;

	if (rp == NULL || rp->type != REDIS_REPLY_STRING) {
		if (rp != NULL)
			freeReplyObject(rp);
		return -1;
	}
	snprintf(want, sizeof(want), "cmdstat_%s:calls=", cmd);
	if ((p = strstr(rp->str, want)) != NULL)
		n = atoll(p + strlen(want));
	else
		n = 0;
	freeReplyObject(rp);
	return n;
}

/* --- a proxy that counts round trips ---------------------------------- */

/*
 * Forwards 127.0.0.1:lport to the server and counts turns: each time
 * bytes go back to the client after bytes went to the server. That is a
 * round trip, however the kernel splits the segments.
 */
struct proxy {
	int		lfd, port, upstream, stop[2];
	pthread_t	tid;
	atomic_long	turns;
	atomic_int	drop;	/* connections to close at once, unanswered */
};

#define PX_PAIRS 16

static int
px_connect(int port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

static void *
px_run(void *arg)
{
	struct proxy *p = arg;
	struct pollfd pfd[2 + 2 * PX_PAIRS];
	int cl[PX_PAIRS], up[PX_PAIRS], sent[PX_PAIRS];
	char buf[65536];
	ssize_t got;
	int n = 0, i, j, fd, from, to;

	for (;;) {
		pfd[0].fd = p->lfd;
		pfd[0].events = POLLIN;
		pfd[1].fd = p->stop[0];
		pfd[1].events = POLLIN;
		for (i = 0; i < n; i++) {
			pfd[2 + 2 * i].fd = cl[i];
			pfd[2 + 2 * i].events = POLLIN;
			pfd[3 + 2 * i].fd = up[i];
			pfd[3 + 2 * i].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)(2 + 2 * n), -1) < 0)
			continue;
		if (pfd[1].revents)
			break;
		for (i = 0; i < n; i++) {
			for (j = 0; j < 2; j++) {
				if (!(pfd[2 + 2 * i + j].revents &
				    (POLLIN | POLLHUP | POLLERR)))
					continue;
				from = j == 0 ? cl[i] : up[i];
				to = j == 0 ? up[i] : cl[i];
				got = read(from, buf, sizeof(buf));
				if (got <= 0) {
					shutdown(to, SHUT_WR);
					close(cl[i]);
					close(up[i]);
					cl[i] = up[i] = -1;
					break;
				}
				if (j == 0)
					sent[i] = 1;
				else if (sent[i]) {
					atomic_fetch_add(&p->turns, 1);
					sent[i] = 0;
				}
				if (write(to, buf, (size_t)got) != got) {
					/* a closed peer: drop the pair */
				}
			}
		}
		for (i = 0; i < n; ) {
			if (cl[i] == -1) {
				cl[i] = cl[n - 1];
				up[i] = up[n - 1];
				sent[i] = sent[n - 1];
				n--;
			} else
				i++;
		}
		if ((pfd[0].revents & POLLIN) &&
		    (fd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
			if (atomic_load(&p->drop) > 0) {
				atomic_fetch_sub(&p->drop, 1);
				close(fd);
				continue;
			}
			if (n == PX_PAIRS ||
			    (up[n] = px_connect(p->upstream)) < 0) {
				close(fd);
				continue;
			}
			cl[n] = fd;
			sent[n] = 0;
			n++;
		}
	}
	for (i = 0; i < n; i++) {
		close(cl[i]);
		close(up[i]);
	}
	return NULL;
}

/* port 0: any free one; p->port tells which. */
static void
px_start_at(struct proxy *p, int upstream, int port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int one = 1;

	memset(p, 0, sizeof(*p));
	p->upstream = upstream;
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(p->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(p->lfd, 16) != 0 || getsockname(p->lfd,
	    (struct sockaddr *)&sa, &len) != 0 || pipe(p->stop) != 0) {
		printf("Bail out! proxy: %s\n", strerror(errno));
		exit(1);
	}
	p->port = ntohs(sa.sin_port);
	pthread_create(&p->tid, NULL, px_run, p);
}

static void
px_start(struct proxy *p, int upstream)
{
	px_start_at(p, upstream, 0);
}

static void
px_stop(struct proxy *p)
{
	if (write(p->stop[1], "x", 1) != 1)
		return;
	pthread_join(p->tid, NULL);
	close(p->lfd);
	close(p->stop[0]);
	close(p->stop[1]);
}

/* --- the case table --------------------------------------------------- */

enum op {
	OP_END,
	OP_CHARGE,	/* store_charge */
	OP_LOOK,	/* store_charge of a request with peek set */
	OP_PEEK,	/* store_peek */
	OP_REFUND,	/* store_refund */
};

struct step {
	int		sleep_ms;	/* before the step */
	enum op		op;
	int64_t		cost;
	int		rep;		/* repeat; 0: once */
	int		allowed;
	int64_t		retry_s;	/* gcra_retry_secs(retry_after) */
};

/*
 * Real time passes between steps on both stores alike; the sleeps keep
 * every step at least 40 ms away from a boundary of its limit, so
 * scheduling jitter cannot change a verdict.
 */
static const struct gcase {
	const char	*name;
	const char	*rate;
	int64_t		burst;
	struct step	steps[10];
} cases[] = {
	{ "3/1m: three at once, the 4th refused, retry 20s", "3/1m", 0, {
		{ 0, OP_CHARGE, 1, 3, 1, 0 },
		{ 0, OP_CHARGE, 1, 0, 0, 20 },
	} },
	{ "refused events are not charged (retry stays 20s)", "3/1m", 0, {
		{ 0, OP_CHARGE, 1, 3, 1, 0 },
		{ 0, OP_CHARGE, 1, 5, 0, 20 },
		{ 100, OP_CHARGE, 1, 0, 0, 20 },
	} },
	{ "1/1m burst 5: five, then retry 60s", "1/1m", 5, {
		{ 0, OP_CHARGE, 1, 5, 1, 0 },
		{ 0, OP_CHARGE, 1, 0, 0, 60 },
	} },
	{ "200/1h burst 50: 50, then retry 18s", "200/1h", 50, {
		{ 0, OP_CHARGE, 1, 50, 1, 0 },
		{ 0, OP_CHARGE, 1, 0, 0, 18 },
	} },
	{ "steady rate 10/1s burst 1: one per 100 ms", "10/1s", 1, {
		{ 0, OP_CHARGE, 1, 0, 1, 0 },
		{ 0, OP_CHARGE, 1, 0, 0, 1 },
		{ 150, OP_CHARGE, 1, 0, 1, 0 },
		{ 0, OP_CHARGE, 1, 0, 0, 1 },
		{ 150, OP_CHARGE, 1, 0, 1, 0 },
		{ 40, OP_CHARGE, 1, 0, 0, 1 },
	} },
	{ "cost 2 on 4/1m: two of cost 2, then cost 1 waits 15s", "4/1m", 0, {
		{ 0, OP_CHARGE, 2, 2, 1, 0 },
		{ 0, OP_CHARGE, 1, 0, 0, 15 },
		{ 0, OP_CHARGE, 3, 0, 0, 45 },
	} },
	{ "cost above the burst: refused, retry = period, nothing charged",
	    "3/1m", 0, {
		{ 0, OP_CHARGE, 4, 0, 0, 60 },
		{ 0, OP_CHARGE, 1000000, 0, 0, 60 },
		{ 0, OP_CHARGE, 3, 0, 1, 0 },
		{ 0, OP_CHARGE, 1, 0, 0, 20 },
	} },
	{ "peek (req.peek and store_peek) answers and stores nothing",
	    "2/1m", 0, {
		{ 0, OP_LOOK, 1, 3, 1, 0 },
		{ 0, OP_PEEK, 1, 3, 1, 0 },
		{ 0, OP_CHARGE, 1, 2, 1, 0 },
		{ 0, OP_LOOK, 1, 0, 0, 30 },
		{ 0, OP_PEEK, 1, 0, 0, 30 },
		{ 0, OP_CHARGE, 1, 0, 0, 30 },
	} },
	{ "refund gives one event back", "2/1m", 0, {
		{ 0, OP_CHARGE, 1, 2, 1, 0 },
		{ 0, OP_CHARGE, 1, 0, 0, 30 },
		{ 0, OP_REFUND, 1, 0, 0, 0 },
		{ 0, OP_CHARGE, 1, 0, 1, 0 },
		{ 0, OP_CHARGE, 1, 0, 0, 30 },
		{ 0, OP_REFUND, 1, 2, 0, 0 },
		{ 0, OP_CHARGE, 1, 2, 1, 0 },
		{ 0, OP_CHARGE, 1, 0, 0, 30 },
	} },
	{ "refund never gives credit beyond a fresh key", "2/1m", 0, {
		{ 0, OP_REFUND, 1, 4, 0, 0 },
		{ 0, OP_CHARGE, 1, 2, 1, 0 },
		{ 0, OP_CHARGE, 1, 0, 0, 30 },
	} },
};

static void
mkreq(struct store_req *q, const char *key, const struct gcase *c,
    int64_t cost, int peek)
{
	int64_t count, period;
	char err[128];

	memset(q, 0, sizeof(*q));
	q->key = key;
	q->keylen = strlen(key);
	if (gcra_parse_rate(c->rate, &count, &period, err, sizeof(err)) ||
	    gcra_limit_init(&q->limit, count, period, c->burst)) {
		printf("Bail out! bad rate %s\n", c->rate);
		exit(1);
	}
	q->cost = cost;
	q->peek = peek;
}

/* One operation on one store; res.err set when it failed. */
static void
apply(struct store *s, const struct store_req *q, enum op op,
    struct store_res *res)
{
	memset(res, 0, sizeof(*res));
	switch (op) {
	case OP_CHARGE:
	case OP_LOOK:
		(void)store_charge(s, q, res, 1, mono());
		break;
	case OP_PEEK:
		(void)store_peek(s, q, res, 1, mono());
		break;
	case OP_REFUND:
		store_refund(s, q, 1, mono());
		break;
	default:
		break;
	}
}

static int
run_case(struct store *mem, struct store *rd, const struct gcase *c,
    int ci, const char *tag)
{
	struct store_res a, b;
	struct store_req q;
	char key[128];
	const struct step *st;
	int n, r, bad = 0;

	/* An address in the key: key_secret must hide it. */
	snprintf(key, sizeof(key), "t-case%d|%s|user%d@example.com", ci, tag,
	    ci);
	for (st = c->steps; st->op != OP_END; st++) {
		if (st->sleep_ms > 0)
			sleep_ms(st->sleep_ms);
		n = st->rep > 0 ? st->rep : 1;
		for (r = 0; r < n; r++) {
			mkreq(&q, key, c, st->cost, st->op == OP_LOOK);
			apply(mem, &q, st->op, &a);
			apply(rd, &q, st->op, &b);
			if (st->op == OP_REFUND)
				continue;
			if (a.err || b.err || a.allowed != st->allowed ||
			    b.allowed != st->allowed ||
			    gcra_retry_secs(a.retry_after_ns) != st->retry_s ||
			    gcra_retry_secs(b.retry_after_ns) != st->retry_s) {
				diag("%s: step %d.%d: want allowed=%d "
				    "retry=%llds; "
				    "memory err=%d allowed=%d retry=%lldns; "
				    "redis err=%d allowed=%d retry=%lldns",
				    c->name, (int)(st - c->steps), r,
				    st->allowed,
				    (long long)st->retry_s, a.err, a.allowed,
				    (long long)a.retry_after_ns, b.err,
				    b.allowed, (long long)b.retry_after_ns);
				bad = 1;
			}
		}
	}
	return !bad;
}

/*
 * 100 ms where a test is about timeouts; longer where it is about
 * verdicts or figures on a loaded machine (slow there is not wrong).
 */
static int cmd_timeout_ms = 100;

static struct store *
mkredis(int port, const char *prefix, const char *secret, int pool,
    int cache_off)
{
	struct store_redis_opts o;
	struct store *s;
	char err[256];

	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = port;
	o.prefix = prefix;
	o.key_secret = secret;
	o.pool = pool;
	o.command_timeout_ms = cmd_timeout_ms;
	o.connect_timeout_ms = 200;
	o.password = redis_pass;
	o.breaker_failures = 3;
	o.breaker_min_ns = 500 * MS;
	o.breaker_max_ns = 2000 * MS;
	o.cache_off = cache_off;
	if ((s = store_redis_new(&o, err, sizeof(err))) == NULL) {
		printf("Bail out! store_redis_new: %s\n", err);
		exit(1);
	}
	return s;
}

/* Every key under prefix: a PTTL in (0, max_ms]; none holds any of bad. */
static void
check_keys(redisContext *ad, const char *prefix, long long max_ms,
    const char *const *bad, const char *what)
{
	redisReply *keys, *t;
	size_t i, nbad = 0, nttl = 0;
	int j;

	keys = redisCommand(ad, "KEYS %s*", prefix);
	if (keys == NULL || keys->type != REDIS_REPLY_ARRAY) {
		ok(0, "%s: KEYS failed", what);
		return;
	}
	for (i = 0; i < keys->elements; i++) {
		t = redisCommand(ad, "PTTL %b", keys->element[i]->str,
		    keys->element[i]->len);
		/* -2: gone since KEYS (expired, or an async refund's DEL) */
		if (t == NULL || t->type != REDIS_REPLY_INTEGER ||
		    (t->integer <= 0 && t->integer != -2) ||
		    t->integer > max_ms) {
			diag("%s: PTTL %s = %lld", what, keys->element[i]->str,
			    t != NULL ? t->integer : -9);
			nttl++;
		}
		if (t != NULL)
			freeReplyObject(t);
		for (j = 0; bad != NULL && bad[j] != NULL; j++)
			if (strstr(keys->element[i]->str, bad[j]) != NULL) {
				diag("%s: key %s holds %s", what,
				    keys->element[i]->str, bad[j]);
				nbad++;
			}
	}
	ok(keys->elements > 0 && nttl == 0, "%s: %zu keys, each with "
	    "0 < PTTL <= %lld ms", what, keys->elements, max_ms);
	if (bad != NULL) {
		ok(keys->elements > 0 && nbad == 0, "%s: no key holds an "
		    "address or IP in clear", what);
		if (keys->elements > 0)
			diag("e.g. %s", keys->element[0]->str);
	}
	freeReplyObject(keys);
}

/* 8 threads charge one key 25 times each: exactly the burst passes. */
struct race {
	struct store	*s;
	atomic_int	allowed, errs;
};

static void *
race_run(void *arg)
{
	struct race *rc = arg;
	struct store_req q;
	struct store_res res;
	int i;

	for (i = 0; i < 25; i++) {
		mkreq(&q, "t-race|192.0.2.99", &cases[0], 1, 0);
		if (gcra_limit_init(&q.limit, 50, 3600 * NS_PER_SEC, 50) != 0)
			abort();
		(void)store_charge(rc->s, &q, &res, 1, mono());
		if (res.err)
			atomic_fetch_add(&rc->errs, 1);
		else if (res.allowed)
			atomic_fetch_add(&rc->allowed, 1);
	}
	return NULL;
}

static int
test_gcra(int port)
{
	struct store *mem, *rd, *sec, *nc;
	struct store_redis_stats s0, s1;
	struct store_req q[5];
	struct store_res res[5];
	struct proxy px;
	redisContext *ad = admin(port);
	char prefix[64], keys[5][64];
	long long ev0, ev1, turns0;
	size_t i;
	int all = 1;
	static const char *const bad[] = { "example.com", "user", "192.0.2",
	    NULL };
	struct race race;
	pthread_t th[8];

	snprintf(prefix, sizeof(prefix), "wt%d:", (int)getpid());
	/* Verdicts, not speed: a loaded (or ASan) run may be slow. */
	cmd_timeout_ms = 2000;
	px_start(&px, port);
	mem = store_memory_new(1000);
	/* pool 1: a refund and the next charge share one connection */
	rd = mkredis(px.port, prefix, NULL, 1, 0);

	/* 1. the case table, both stores at the same moments */
	for (i = 0; i < NELEM(cases); i++)
		all &= run_case(mem, rd, &cases[i], (int)i, "plain") ? 1 : 0;
	ok(all, "GCRA case table (%zu cases): memory and redis give the "
	    "table's verdicts and retry_after", NELEM(cases));
	/* Again with every answer from Redis: the cache hides repeats. */
	snprintf(prefix, sizeof(prefix), "wn%d:", (int)getpid());
	nc = mkredis(port, prefix, NULL, 1, 1);
	all = 1;
	for (i = 0; i < NELEM(cases); i++)
		all &= run_case(mem, nc, &cases[i], (int)i, "nocache") ? 1 : 0;
	ok(all, "GCRA case table without the refusal cache: the same");
	store_free(nc);
	snprintf(prefix, sizeof(prefix), "wt%d:", (int)getpid());

	/* 2. one round trip for five limits */
	store_redis_stats(rd, &s0);
	turns0 = atomic_load(&px.turns);
	ev0 = cmd_calls(ad, "evalsha");
	for (i = 0; i < 5; i++) {
		snprintf(keys[i], sizeof(keys[i]), "t-rt%zu|192.0.2.%zu", i, i);
		mkreq(&q[i], keys[i], &cases[0], 1, i == 4);
	}
	(void)store_charge(rd, q, res, 5, mono());
	ev1 = cmd_calls(ad, "evalsha");
	store_redis_stats(rd, &s1);
	ok(!res[0].err && !res[4].err && res[0].allowed && res[4].allowed,
	    "a batch of 5 limits is answered");
	ok(atomic_load(&px.turns) - turns0 == 1, "a batch of 5 limits costs "
	    "1 round trip on the wire (proxy saw %lld)",
	    (long long)(atomic_load(&px.turns) - turns0));
	ok(ev1 - ev0 == 5, "... and 5 EVALSHA calls on the server "
	    "(commandstats: %lld)", ev1 - ev0);
	ok(s1.round_trips - s0.round_trips == 1, "... and the store counts "
	    "1 round trip (%llu)",
	    (unsigned long long)(s1.round_trips - s0.round_trips));

	/* the same key five times in one batch sees its own charges */
	{
		static const int want[] = { 1, 1, 1, 0, 0 };
		struct store_res mres[5];
		int same = 1;

		for (i = 0; i < 5; i++)
			mkreq(&q[i], "t-same|192.0.2.60", &cases[0], 1, 0);
		(void)store_charge(rd, q, res, 5, mono());
		(void)store_charge(mem, q, mres, 5, mono());
		for (i = 0; i < 5; i++)
			if (res[i].err || res[i].allowed != want[i] ||
			    mres[i].allowed != want[i] ||
			    gcra_retry_secs(res[i].retry_after_ns) !=
			    (want[i] ? 0 : 20))
				same = 0;
		ok(same, "one key 5 times in a batch (3/1m): allowed 1 1 1 0 0 "
		    "on both stores, retry 20s");
	}

	/*
	 * A reload that changes a rule's rate or burst restarts its
	 * counters (a TAT is misread under another rate); one that
	 * changes nothing keeps them. Both stores, same answers.
	 */
	{
		static const struct { const char *rate; int64_t burst;
		    int allowed; } steps[] = {
			{ "3/1m", 0, 0 },	/* the 4th under 3/1m */
			{ "6/1m", 0, 1 },	/* rate changed: fresh */
			{ "3/1m", 5, 1 },	/* burst changed: fresh */
			{ "3/1m", 0, 0 },	/* back: the first counter */
		};
		struct gcase c = cases[0];
		struct store_res mres;
		int same = 1;
		size_t k;

		for (k = 0; k < 3; k++) {
			mkreq(&q[0], "t-reload|192.0.2.70", &c, 1, 0);
			(void)store_charge(rd, q, res, 1, mono());
			(void)store_charge(mem, q, &mres, 1, mono());
		}
		for (k = 0; k < NELEM(steps); k++) {
			c.rate = steps[k].rate;
			c.burst = steps[k].burst;
			mkreq(&q[0], "t-reload|192.0.2.70", &c, 1, 0);
			(void)store_charge(rd, q, res, 1, mono());
			(void)store_charge(mem, q, &mres, 1, mono());
			if (res[0].err || res[0].allowed != steps[k].allowed ||
			    mres.allowed != steps[k].allowed) {
				diag("step %zu (%s burst %lld): redis err=%d "
				    "allowed=%d, memory allowed=%d, want %d",
				    k, c.rate, (long long)c.burst, res[0].err,
				    res[0].allowed, mres.allowed,
				    steps[k].allowed);
				same = 0;
			}
		}
		ok(same, "one key, the limit changed (rate, then burst): a "
		    "fresh counter each; the old limit finds its counter "
		    "again (both stores)");
	}

	/* 3. a refusal is remembered: no round trip until its retry time */
	mkreq(&q[0], "t-cache|192.0.2.50", &cases[0], 1, 0);
	for (i = 0; i < 4; i++)
		(void)store_charge(rd, q, res, 1, mono());
	turns0 = atomic_load(&px.turns);
	store_redis_stats(rd, &s0);
	for (i = 0; i < 10; i++)
		(void)store_charge(rd, q, res, 1, mono());
	store_redis_stats(rd, &s1);
	ok(!res[0].err && !res[0].allowed && gcra_retry_secs(
	    res[0].retry_after_ns) == 20 && atomic_load(&px.turns) == turns0 &&
	    s1.cache_hits - s0.cache_hits == 10, "a refusal is answered "
	    "locally until its retry time (10 repeats, 0 round trips, "
	    "retry 20s)");

	/* 4. a refund goes out and nobody waits for it */
	store_redis_stats(rd, &s0);
	mkreq(&q[0], "t-refund|192.0.2.51", &cases[0], 1, 0);
	(void)store_charge(rd, q, res, 1, mono());
	turns0 = atomic_load(&px.turns);
	store_refund(rd, q, 1, mono());
	store_redis_stats(rd, &s1);
	ok(s1.refunds_sent - s0.refunds_sent == 1 &&
	    s1.round_trips - s0.round_trips == 1, "refund: sent without a "
	    "round trip of its own");

	/* 5. TTLs */
	check_keys(ad, prefix, 3600 * 1000, NULL, "plain keys");

	/* 6. NOSCRIPT: the server forgot the script */
	freeReplyObject(redisCommand(ad, "SCRIPT FLUSH"));
	store_redis_stats(rd, &s0);
	mkreq(&q[0], "t-noscript|192.0.2.52", &cases[0], 1, 0);
	(void)store_charge(rd, q, res, 1, mono());
	(void)store_charge(rd, q, res, 1, mono());
	store_redis_stats(rd, &s1);
	ok(!res[0].err && res[0].allowed && s1.round_trips - s0.round_trips ==
	    3, "after SCRIPT FLUSH: answered via EVAL (2 round trips), then "
	    "EVALSHA works again (1)");
	store_free(rd);
	px_stop(&px);

	/* 7. key_secret */
	snprintf(prefix, sizeof(prefix), "ws%d:", (int)getpid());
	sec = mkredis(port, prefix, "s3cret", 2, 0);
	all = 1;
	for (i = 0; i < 3; i++)
		all &= run_case(mem, sec, &cases[i], (int)i, "secret") ? 1 : 0;
	mkreq(&q[0], "t-secret|192.0.2.7|alice@example.com", &cases[0], 1, 0);
	(void)store_charge(sec, q, res, 1, mono());
	ok(all && !res[0].err, "key_secret: the same verdicts");
	check_keys(ad, prefix, 3600 * 1000, bad, "key_secret keys");
	store_free(sec);

	/* 8. 8 threads, one key, pool of 8: exactly the burst */
	snprintf(prefix, sizeof(prefix), "wr%d:", (int)getpid());
	memset(&race, 0, sizeof(race));
	race.s = mkredis(port, prefix, NULL, 8, 0);
	for (i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, race_run, &race);
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	ok(atomic_load(&race.allowed) == 50 && atomic_load(&race.errs) == 0,
	    "atomicity: 8 threads x 25 charges of one key (50/1h) admit "
	    "exactly 50 (got %d, errors %d)", atomic_load(&race.allowed),
	    atomic_load(&race.errs));
	store_free(race.s);
	store_free(mem);
	redisFree(ad);
	return 0;
}

/* --- failures --------------------------------------------------------- */

static pid_t
read_pid(const char *file)
{
	FILE *f = fopen(file, "r");
	long pid = 0;

	if (f == NULL || fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	if (f != NULL)
		fclose(f);
	return (pid_t)pid;
}

/* Charges a fresh key; returns the time it took (ns) and fills res. */
static int64_t
timed_charge(struct store *s, int i, struct store_res *res)
{
	struct store_req q;
	char key[64];
	int64_t t0;

	snprintf(key, sizeof(key), "t-fail|192.0.2.%d", i);
	mkreq(&q, key, &cases[0], 1, 0);
	t0 = mono();
	(void)store_charge(s, &q, res, 1, t0);
	return mono() - t0;
}

/*
 * Charges n fresh keys; ok when all fail (want_err) or all succeed,
 * each within max_ms. Returns the slowest, in ms.
 */
static int
charges(struct store *s, int *serial, int n, int want_err, int max_ms,
    const char *what)
{
	struct store_res res;
	int64_t t, worst = 0;
	int i, good = 1;

	for (i = 0; i < n; i++) {
		t = timed_charge(s, (*serial)++, &res);
		if (t > worst)
			worst = t;
		if (res.err != want_err || t > max_ms * MS) {
			diag("%s: charge %d: err=%d in %lld ms", what, i,
			    res.err, (long long)(t / MS));
			good = 0;
		}
	}
	ok(good, "%s: %d charges %s, each within %d ms (slowest %lld ms)",
	    what, n, want_err ? "fail" : "succeed", max_ms,
	    (long long)(worst / MS));
	return (int)(worst / MS);
}

/* Charges every 50 ms until one succeeds; returns the ms it took, -1. */
static int
until_up(struct store *s, int *serial, int max_ms)
{
	struct store_res res;
	int64_t t0 = mono();

	while (mono() - t0 < max_ms * MS) {
		(void)timed_charge(s, (*serial)++, &res);
		if (!res.err)
			return (int)((mono() - t0) / MS);
		sleep_ms(50);
	}
	return -1;
}

/* Threads charging at once while the server is paused. */
struct crowd {
	struct store	*s;
	int		base;
	atomic_int	*errs;
	_Atomic int64_t	*worst;
};

static void *
crowd_run(void *arg)
{
	struct crowd *c = arg;
	struct store_res res;
	int64_t t, w;
	int i;

	for (i = 0; i < 5; i++) {
		t = timed_charge(c->s, c->base + i, &res);
		if (res.err)
			atomic_fetch_add(c->errs, 1);
		w = atomic_load(c->worst);
		while (t > w && !atomic_compare_exchange_weak(c->worst, &w, t))
			;
	}
	return NULL;
}

static int
test_fail(int port, const char *pidfile, const char *restart)
{
	struct store_redis_stats s0, s1;
	struct store *s;
	pid_t pid = read_pid(pidfile);
	int serial = 1, ms, rc;

	if (pid <= 0) {
		printf("Bail out! no pid in %s\n", pidfile);
		return 1;
	}
	s = mkredis(port, "wf:", NULL, 2, 0);
	charges(s, &serial, 3, 0, 200, "redis up");

	/* paused: connects still succeed (the kernel's backlog) */
	kill(pid, SIGSTOP);
	charges(s, &serial, 3, 1, 1000, "redis paused (SIGSTOP)");
	store_redis_stats(s, &s0);
	ok(s0.down == 1 && s0.breaker_opens == 1, "paused: the breaker is "
	    "open after 3 failed batches");
	charges(s, &serial, 20, 1, 5, "paused, breaker open");
	store_redis_stats(s, &s1);
	ok(s1.connects == s0.connects && s1.fast_fails - s0.fast_fails == 20,
	    "paused, breaker open: no connect attempt, 20 fast failures");
	kill(pid, SIGCONT);
	ms = until_up(s, &serial, 3000);
	store_redis_stats(s, &s1);
	ok(ms >= 0 && s1.down == 0, "SIGCONT: charges succeed again after "
	    "the back-off, same process (%d ms)", ms);
	charges(s, &serial, 5, 0, 200, "after SIGCONT");

	/* 16 threads on a pool of 2 while paused: nobody waits long */
	{
		struct crowd cw[16];
		pthread_t th[16];
		atomic_int errs = 0;
		_Atomic int64_t worst = 0;
		int i;

		kill(pid, SIGSTOP);
		for (i = 0; i < 16; i++) {
			cw[i].s = s;
			cw[i].base = 10000 + 100 * i;
			cw[i].errs = &errs;
			cw[i].worst = &worst;
			pthread_create(&th[i], NULL, crowd_run, &cw[i]);
		}
		for (i = 0; i < 16; i++)
			pthread_join(th[i], NULL);
		ok(atomic_load(&errs) == 80 && atomic_load(&worst) < 1000 * MS,
		    "paused, 16 threads x 5 charges on a pool of 2: all fail, "
		    "slowest %lld ms", (long long)(atomic_load(&worst) / MS));
		kill(pid, SIGCONT);
		ms = until_up(s, &serial, 3000);
		ok(ms >= 0, "SIGCONT: up again (%d ms)", ms);
	}

	/* stopped: connections refused */
	kill(pid, SIGTERM);
	for (rc = 0; rc < 100; rc++) {
		int fd = px_connect(port);

		if (fd < 0)
			break;
		close(fd);
		sleep_ms(50);
	}
	charges(s, &serial, 3, 1, 1000, "redis stopped (SIGTERM)");
	store_redis_stats(s, &s0);
	ok(s0.down == 1 && s0.breaker_opens == 3, "stopped: the breaker is "
	    "open again");
	charges(s, &serial, 10, 1, 5, "stopped, breaker open");
	store_redis_stats(s, &s1);
	ok(s1.connects == s0.connects, "stopped, breaker open: no connect "
	    "attempt");
	sleep_ms(700);
	charges(s, &serial, 1, 1, 1000, "stopped, the probe after the "
	    "back-off");
	rc = system(restart);
	ok(rc == 0, "redis restarted (%s)", restart);
	ms = until_up(s, &serial, 5000);
	store_redis_stats(s, &s1);
	ok(ms >= 0 && s1.down == 0, "restarted: charges succeed again, "
	    "same process (%d ms; back-off had doubled)", ms);
	charges(s, &serial, 5, 0, 200, "after the restart");
	store_redis_stats(s, &s1);
	diag("connects=%llu failures=%llu fast_fails=%llu opens=%llu",
	    (unsigned long long)s1.connects, (unsigned long long)s1.failures,
	    (unsigned long long)s1.fast_fails,
	    (unsigned long long)s1.breaker_opens);
	store_free(s);
	return 0;
}

static int
test_down(int port)
{
	struct store_redis_stats st;
	struct store_res res;
	struct store *s;
	int serial = 1000;
	int64_t t;

	s = mkredis(port, "wd:", NULL, 2, 0);
	store_redis_stats(s, &st);
	ok(s != NULL && st.down == 1, "nothing listening: the store is made, "
	    "its breaker open");
	t = timed_charge(s, serial++, &res);
	ok(res.err && t < 300 * MS, "the first charge probes and fails "
	    "(%lld ms)", (long long)(t / MS));
	t = timed_charge(s, serial++, &res);
	ok(res.err && t < 5 * MS, "the next fails at once (%lld us)",
	    (long long)(t / 1000));
	store_free(s);
	return 0;
}

/* --- Sentinel -------------------------------------------------------- */

/*
 * A master, its replica and one sentinel (run.sh): the store finds the
 * master through the sentinel; the master is stopped; the sentinel
 * promotes the replica and the store follows it, same process, with the
 * counters the replica had copied.
 */
/* A store that asks the sentinel with this AUTH (NULL: none). */
static struct store *
mksentinel(const char *const *sents, size_t n, const char *spass)
{
	struct store_redis_opts o;
	struct store *s;
	char err[256];

	memset(&o, 0, sizeof(o));
	o.sentinels = sents;
	o.nsentinels = n;
	o.master_name = "warden";
	o.sentinel_password = spass;
	o.prefix = "wsen:";
	o.pool = 2;
	o.command_timeout_ms = 100;
	o.connect_timeout_ms = 200;
	o.breaker_min_ns = 200 * MS;
	o.breaker_max_ns = 1000 * MS;
	if ((s = store_redis_new(&o, err, sizeof(err))) == NULL) {
		printf("Bail out! store_redis_new: %s\n", err);
		exit(1);
	}
	return s;
}

/* With AUTH on the sentinel: no password or a wrong one finds nothing. */
static void
sentinel_noauth(const char *const *sents, const char *spass)
{
	struct store_redis_stats st;
	struct store_req q;
	struct store_res res;
	struct store *s;
	int i;

	for (i = 0; i < 2; i++) {
		s = mksentinel(sents + 1, 1, i == 0 ? NULL : "wrong");
		mkreq(&q, "t-sentinel-noauth|192.0.2.81", &cases[0], 1, 0);
		(void)store_charge(s, &q, &res, 1, mono());
		store_redis_stats(s, &st);
		ok(st.down == 1 && res.err, "sentinel with requirepass, store "
		    "%s: no master found, charges fail",
		    i == 0 ? "without sentinel_password" : "with a wrong one");
		store_free(s);
	}
	(void)spass;
}

static int
test_sentinel(int sport, int mport, int rport, const char *mpidfile,
    const char *spass)
{
	struct store_redis_stats st;
	struct store_req q;
	struct store_res res;
	struct store *s;
	redisContext *rep;
	redisReply *rp;
	char sent[32], key[64];
	const char *sents[2];
	pid_t mpid = read_pid(mpidfile);
	int i, allowed = 0, serial = 1, ms;
	int64_t t0;

	snprintf(sent, sizeof(sent), "127.0.0.1:%d", sport);
	/* the first does not answer: the store asks the next */
	sents[0] = "127.0.0.1:1";
	sents[1] = sent;
	if (spass != NULL)
		sentinel_noauth(sents, spass);
	s = mksentinel(sents, 2, spass);
	store_redis_stats(s, &st);
	ok(st.down == 0, "the store finds the master through the second "
	    "sentinel (port %d)%s", mport, spass != NULL ? ", with "
	    "sentinel_password" : "");
	for (i = 0; i < 3; i++) {
		mkreq(&q, "t-sentinel|192.0.2.80", &cases[0], 1, 0);
		(void)store_charge(s, &q, &res, 1, mono());
		allowed += !res.err && res.allowed;
	}
	ok(allowed == 3, "3 charges on the master");
	/* the replica has the counter before the master goes */
	rep = admin(rport);
	for (i = 0; i < 40; i++) {
		rp = redisCommand(rep, "KEYS %s",
		    "wsen:{t-sentinel|192.0.2.80}:*");
		allowed = rp != NULL && rp->type == REDIS_REPLY_ARRAY &&
		    rp->elements == 1;
		if (rp != NULL)
			freeReplyObject(rp);
		if (allowed)
			break;
		sleep_ms(50);
	}
	ok(allowed, "the replica has the counter");
	kill(mpid, SIGTERM);
	t0 = mono();
	for (i = 0; i < 100; i++) {
		int fd = px_connect(mport);

		if (fd < 0)
			break;
		close(fd);
		sleep_ms(20);
	}
	ms = until_up(s, &serial, 30000);
	ok(ms >= 0, "master stopped: the store follows the failover without "
	    "a restart (%d ms after the master was gone)", ms);
	/* Sentinel kills the clients of the replica it promotes. */
	redisFree(rep);
	rep = admin(rport);
	rp = redisCommand(rep, "ROLE");
	ok(rp != NULL && rp->type == REDIS_REPLY_ARRAY && rp->elements > 0 &&
	    strcmp(rp->element[0]->str, "master") == 0, "... to the promoted "
	    "replica (port %d)", rport);
	if (rp != NULL)
		freeReplyObject(rp);
	mkreq(&q, "t-sentinel|192.0.2.80", &cases[0], 1, 0);
	(void)store_charge(s, &q, &res, 1, mono());
	/* 20 s after the 3rd charge, less the time the failover took */
	ok(!res.err && !res.allowed && gcra_retry_secs(res.retry_after_ns) <=
	    20, "... where the 4th charge of the 3/1m counter is refused "
	    "(retry %llds)",
	    (long long)gcra_retry_secs(res.retry_after_ns));
	snprintf(key, sizeof(key), "%lld", (long long)((mono() - t0) / MS));
	store_redis_stats(s, &st);
	diag("failover: %s ms to the first success; connects=%llu "
	    "failures=%llu fast_fails=%llu", key,
	    (unsigned long long)st.connects, (unsigned long long)st.failures,
	    (unsigned long long)st.fast_fails);
	redisFree(rep);
	store_free(s);
	return 0;
}

/* --- sharding through nutcracker ------------------------------------ */

/* Keys under prefix on one server (SCAN), each with a TTL; -1: error. */
static long
scan_count(int port, const char *prefix, long *nottl)
{
	redisContext *c = admin(port);
	redisReply *rp, *t;
	char cursor[32] = "0";
	long n = 0;
	size_t i;

	*nottl = 0;
	do {
		rp = redisCommand(c, "SCAN %s MATCH %s* COUNT 1000", cursor,
		    prefix);
		if (rp == NULL || rp->type != REDIS_REPLY_ARRAY ||
		    rp->elements != 2) {
			n = -1;
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", rp->element[0]->str);
		for (i = 0; i < rp->element[1]->elements; i++) {
			t = redisCommand(c, "PTTL %b",
			    rp->element[1]->element[i]->str,
			    rp->element[1]->element[i]->len);
			if (t == NULL || t->type != REDIS_REPLY_INTEGER ||
			    (t->integer <= 0 && t->integer != -2))
				(*nottl)++;
			if (t != NULL)
				freeReplyObject(t);
			n++;
		}
		freeReplyObject(rp);
	} while (strcmp(cursor, "0") != 0);
	redisFree(c);
	return n;
}

struct readback {
	int	n, match;
};

static void
read_pair(void *ctx, const char *f, size_t fl, const char *v, size_t vl)
{
	struct readback *rb = ctx;

	rb->n++;
	if ((fl == 5 && memcmp(f, "r-one", 5) == 0 && vl == 32 &&
	    memcmp(v, "key=client_ip rate=1/60s burst=1", 32) == 0) ||
	    (fl == 5 && memcmp(f, "r-two", 5) == 0 && vl == 29 &&
	    memcmp(v, "key=helo rate=5/3600s burst=5", 29) == 0))
		rb->match++;
}

static int
test_shard(int nport, int port1, int port2)
{
	struct store_redis_stats st;
	struct store_req q[5];
	struct store_res res[5];
	struct store *mem, *s;
	char prefix[64], keys[5][64];
	long n1, n2, t1, t2;
	int i, j, k, all = 1, exact = 1, errs = 0;
	size_t ci;

	snprintf(prefix, sizeof(prefix), "wsh%d:", (int)getpid());
	cmd_timeout_ms = 2000;
	mem = store_memory_new(1000);
	/*
	 * The refusal cache off: every answer comes through the proxy.
	 * Pool 1: refunds are not waited for, and on another connection a
	 * later charge may overtake them in the proxy (the case table
	 * refunds events it never charged, where order shows).
	 */
	s = mkredis(nport, prefix, NULL, 1, 1);
	store_redis_stats(s, &st);
	ok(st.down == 0, "through nutcracker: the store connects (SCRIPT "
	    "LOAD refused, EVAL from then on)");
	for (ci = 0; ci < NELEM(cases); ci++)
		all &= run_case(mem, s, &cases[ci], (int)ci, "shard") ? 1 : 0;
	ok(all, "through nutcracker: the GCRA case table gives the table's "
	    "verdicts, as the memory store");
	/* 40 keys of 3/1m, 5 to a batch: charges 1-3 pass, 4 and 5 not */
	for (i = 0; i < 40; i += 5) {
		for (k = 0; k < 5; k++) {
			for (j = 0; j < 5; j++) {
				snprintf(keys[j], sizeof(keys[j]),
				    "t-shard|192.0.2.%d", i + j);
				mkreq(&q[j], keys[j], &cases[0], 1, 0);
			}
			(void)store_charge(s, q, res, 5, mono());
			for (j = 0; j < 5; j++) {
				errs += res[j].err;
				if (res[j].allowed != (k < 3)) {
					diag("key %d charge %d: allowed=%d "
					    "err=%d", i + j, k + 1,
					    res[j].allowed, res[j].err);
					exact = 0;
				}
			}
		}
	}
	ok(exact && errs == 0, "through nutcracker: 40 keys of 3/1m, 5 a "
	    "batch: exactly 3 pass on each, then refused (errors %d)", errs);
	n1 = scan_count(port1, prefix, &t1);
	n2 = scan_count(port2, prefix, &t2);
	ok(n1 > 0 && n2 > 0 && t1 == 0 && t2 == 0, "keys on both servers "
	    "(%ld on :%d, %ld on :%d), each with a TTL", n1, port1, n2,
	    port2);
	/* The daemon's record of its rules (rulefp.c) goes through too. */
	{
		static const char *const f[] = { "r-one", "r-two" };
		static const char *const v[] = { "key=client_ip rate=1/60s "
		    "burst=1", "key=helo rate=5/3600s burst=5" };
		struct store_redis_opts o;
		struct readback rb = { 0, 0 };
		char err[256] = "";
		int put, got;

		put = store_redis_hash_put(s, "rules", f, v, 2, err,
		    sizeof(err));
		memset(&o, 0, sizeof(o));
		o.host = "127.0.0.1";
		o.port = nport;
		o.prefix = prefix;
		o.password = redis_pass;
		got = store_redis_hash_get(&o, "rules", read_pair, &rb, err,
		    sizeof(err));
		ok(put == 0 && got == 0 && rb.n == 2 && rb.match == 2,
		    "through nutcracker: the rules record is written (one "
		    "EVAL) and read back (HGETALL): %d pairs, %d as written "
		    "%s", rb.n, rb.match, put == 0 && got == 0 ? "" : err);
	}
	store_redis_stats(s, &st);
	diag("round_trips=%llu scripts=%llu connects=%llu failures=%llu",
	    (unsigned long long)st.round_trips,
	    (unsigned long long)st.scripts,
	    (unsigned long long)st.connects,
	    (unsigned long long)st.failures);
	store_free(s);
	store_free(mem);
	return 0;
}

/* --- issue 5: a failed record write, a refused first connect, records --- */

/*
 * One charge of key under 1 per hour, burst 1: the first passes, the
 * next is refused for about an hour (GCRA, DESIGN.md §3: T = 3600 s,
 * B = 1, so the second event conforms at TAT = first + 3600 s).
 */
static int
hourly(struct store *s, const char *key, int want, const char *what)
{
	struct store_req q;
	struct store_res res;
	int64_t secs;

	memset(&q, 0, sizeof(q));
	q.key = key;
	q.keylen = strlen(key);
	q.cost = 1;
	if (gcra_limit_init(&q.limit, 1, 3600 * NS_PER_SEC, 1) != 0)
		abort();
	memset(&res, 0, sizeof(res));
	(void)store_charge(s, &q, &res, 1, mono());
	secs = gcra_retry_secs(res.retry_after_ns);
	if (!res.err && res.allowed == want && (want ? secs == 0 :
	    secs >= 3590 && secs <= 3600))
		return 1;
	diag("%s: key %s: want %s, got err=%d allowed=%d retry=%llds", what,
	    key, want ? "allowed" : "refused ~3600 s", res.err, res.allowed,
	    (long long)secs);
	return 0;
}

/*
 * The server runs with DEL renamed away (run.sh): replacing the record
 * fails. The pool has one connection, so a reply left unread by the
 * failed write would answer the next charge, and every later answer
 * would be one behind.
 */
static int
test_desync(int port)
{
	static const char *const f[] = { "r1", "r2" };
	static const char *const v[] = { "key=client_ip rate=1/3600s "
	    "burst=1", "key=helo rate=5/60s burst=5" };
	char err[256] = "", prefix[64], key[64];
	struct store *s;
	int put[3], i, good = 1;

	snprintf(prefix, sizeof(prefix), "wds%d:", (int)getpid());
	cmd_timeout_ms = 2000;
	s = mkredis(port, prefix, NULL, 1, 1);
	for (i = 0; i < 2; i++)
		put[i] = store_redis_hash_put(s, "rules", f, v, 2, err,
		    sizeof(err));
	ok(put[0] == -1 || put[1] == -1, "DEL renamed away: a put that "
	    "cannot replace the record says so (%d, %d: %s)", put[0], put[1],
	    err);
	for (i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "t-desync|%c", 'A' + i);
		good &= hourly(s, key, 1, "after the failed put");
		good &= hourly(s, key, 0, "after the failed put");
	}
	ok(good, "after it, on the same connection: A, B, C each pass once, "
	    "then are refused for ~3600 s");
	put[2] = store_redis_hash_put(s, "rules", f, v, 2, err, sizeof(err));
	good = hourly(s, "t-desync|D", 1, "after a third put") &
	    hourly(s, "t-desync|D", 0, "after a third put") &
	    hourly(s, "t-desync|A", 0, "after a third put");
	ok(put[2] == -1 && good, "another failed put: D passes once, then "
	    "refused; A still refused");
	store_free(s);
	return 0;
}

/* A look at the server that waits (bounded) for a free client slot. */
static redisContext *
admin_wait(int port)
{
	struct timeval tv = { 2, 0 };
	redisContext *c;
	redisReply *rp;
	int i;

	for (i = 0; i < 100; i++) {
		c = redisConnectWithTimeout("127.0.0.1", port, tv);
		if (c != NULL && !c->err && redisSetTimeout(c, tv) == REDIS_OK) {
			rp = redisCommand(c, "AUTH %s", redis_pass);
			if (rp != NULL && rp->type == REDIS_REPLY_STATUS) {
				freeReplyObject(rp);
				return c;
			}
			if (rp != NULL)
				freeReplyObject(rp);
		}
		if (c != NULL)
			redisFree(c);
		sleep_ms(100);
	}
	printf("Bail out! no client slot on %d within 10 s\n", port);
	exit(1);
}

/*
 * maxclients 1 and requirepass (run.sh): while this program holds the
 * only slot, Redis answers the store's first connection with "max
 * number of clients reached" in place of AUTH's reply and closes it,
 * before SCRIPT LOAD is answered. That is not a proxy refusing SCRIPT
 * LOAD: once the slot is free the store must load the script and send
 * EVALSHA, never EVAL.
 */
static int
test_noload(int port, const char *pass)
{
	struct store_redis_stats st;
	redisContext *hold, *ad;
	struct store *s;
	char prefix[64];
	long long ev, evs;
	int serial = 20000, ms;

	redis_pass = pass;
	snprintf(prefix, sizeof(prefix), "wnl%d:", (int)getpid());
	hold = admin_wait(port);
	s = mkredis(port, prefix, NULL, 1, 1);
	store_redis_stats(s, &st);
	ok(st.down == 1, "maxclients 1, the slot held: the store starts "
	    "without Redis");
	redisFree(hold);
	ms = until_up(s, &serial, 10000);
	ok(ms >= 0, "the slot freed: a charge gets through (%d ms)", ms);
	charges(s, &serial, 3, 0, 5000, "after the slot was freed");
	store_free(s);
	ad = admin_wait(port);
	ev = cmd_calls(ad, "eval");
	evs = cmd_calls(ad, "evalsha");
	ok(evs >= 4 && ev == 0, "the script was loaded: %lld EVALSHA, %lld "
	    "EVAL (want >= 4 and 0)", evs, ev);
	redisFree(ad);
	return 0;
}

/* HGETALL of key as "f=v f=v" (a small hash keeps insertion order). */
static void
hgetall(redisContext *ad, const char *key, char *buf, size_t len)
{
	redisReply *rp = redisCommand(ad, "HGETALL %s", key);
	size_t i, at = 0;

	buf[0] = '\0';
	for (i = 0; rp != NULL && rp->type == REDIS_REPLY_ARRAY &&
	    i + 1 < rp->elements && at < len; i += 2)
		at += (size_t)snprintf(buf + at, len - at, "%s%s=%s",
		    at ? " " : "", rp->element[i]->str,
		    rp->element[i + 1]->str);
	if (rp != NULL)
		freeReplyObject(rp);
}

/* Closes every client but ad: the stores reconnect on their next call. */
static void
kill_clients(redisContext *ad)
{
	redisReply *rp = redisCommand(ad, "CLIENT KILL TYPE normal SKIPME yes");

	if (rp != NULL)
		freeReplyObject(rp);
}

/*
 * Two wardens' stores on one prefix with different rules (README
 * "Counters across a reload"): the record is the last put's, a
 * reconnect does not change it, and a record Redis lost comes back.
 */
static int
test_record(int port)
{
	static const char *const f1[] = { "t-a", "t-b" };
	static const char *const v1[] = { "key=helo rate=1/60s burst=1",
	    "key=client_ip rate=2/60s burst=2" };
	static const char *const f2[] = { "t-a" };
	static const char *const v2[] = { "key=helo rate=9/60s burst=9" };
	struct store *s1, *s2;
	redisContext *ad = admin(port);
	char prefix[64], key[96], got[512], err[256] = "";
	int p1, p2, i, good = 1, serial = 30000;
	struct store_res res;

	snprintf(prefix, sizeof(prefix), "wrec%d:", (int)getpid());
	snprintf(key, sizeof(key), "%srules", prefix);
	cmd_timeout_ms = 2000;
	s1 = mkredis(port, prefix, NULL, 1, 1);
	s2 = mkredis(port, prefix, NULL, 1, 1);
	p1 = store_redis_hash_put(s1, "rules", f1, v1, 2, err, sizeof(err));
	p2 = store_redis_hash_put(s2, "rules", f2, v2, 1, err, sizeof(err));
	hgetall(ad, key, got, sizeof(got));
	ok(p1 == 0 && p2 == 0 && strcmp(got, "t-a=key=helo rate=9/60s "
	    "burst=9") == 0, "two puts: the record is the last one's, whole "
	    "(got \"%s\") %s", got, err);
	kill_clients(ad);
	/* Two charges: the second reads what the reconnect wrote. */
	for (i = 0; i < 2; i++) {
		(void)timed_charge(s1, serial++, &res);
		good &= !res.err;
	}
	hgetall(ad, key, got, sizeof(got));
	ok(good && strcmp(got, "t-a=key=helo rate=9/60s burst=9") == 0,
	    "the first warden reconnects: the record stays the last put's "
	    "(got \"%s\")", got);
	freeReplyObject(redisCommand(ad, "DEL %s", key));
	kill_clients(ad);
	for (i = 0; i < 2; i++) {
		(void)timed_charge(s1, serial++, &res);
		good &= !res.err;
	}
	hgetall(ad, key, got, sizeof(got));
	ok(good && strcmp(got, "t-a=key=helo rate=1/60s burst=1 "
	    "t-b=key=client_ip rate=2/60s burst=2") == 0, "the record lost "
	    "(Redis restarted empty): the next new connection writes its "
	    "own back (got \"%s\")", got);
	/* A reload whose put fails (the link died): a new one writes it. */
	kill_clients(ad);
	p1 = store_redis_hash_put(s1, "rules", f2, v2, 1, err, sizeof(err));
	freeReplyObject(redisCommand(ad, "HSET %s t-z stale", key));
	for (i = 0; i < 2; i++) {
		(void)timed_charge(s1, serial++, &res);
		good &= !res.err;
	}
	hgetall(ad, key, got, sizeof(got));
	ok(p1 == -1 && good && strcmp(got, "t-a=key=helo rate=9/60s "
	    "burst=9") == 0, "a put that failed (%s) is written whole by the "
	    "next new connection (got \"%s\")", err, got);
	freeReplyObject(redisCommand(ad, "HSET %s t-z other", key));
	kill_clients(ad);
	for (i = 0; i < 2; i++) {
		(void)timed_charge(s1, serial++, &res);
		good &= !res.err;
	}
	hgetall(ad, key, got, sizeof(got));
	ok(good && strcmp(got, "t-a=key=helo rate=9/60s burst=9 "
	    "t-z=other") == 0, "once written, a reconnect leaves it alone "
	    "again (got \"%s\")", got);
	store_free(s1);
	store_free(s2);
	redisFree(ad);
	return 0;
}

/*
 * No AUTH, no SELECT: the first connection closes before any reply, as
 * nutcracker does at SCRIPT LOAD, but here because the server "went
 * away" (the proxy of this program drops it). The store sends EVAL;
 * with the caller's clock 301 s later (README: 5 minutes), a new
 * connection tries SCRIPT LOAD again and gets EVALSHA back.
 */
static int
test_probe(int port)
{
	struct store_req q;
	struct store_res res;
	struct proxy px;
	struct store *s;
	redisContext *ad = admin(port);
	char prefix[64];
	long long ev[4], evs[4];
	int64_t t0 = 1000 * NS_PER_SEC;
	int i, errs = 0;
	static const int64_t at[3] = { 0, 60, 301 };

	snprintf(prefix, sizeof(prefix), "wpr%d:", (int)getpid());
	cmd_timeout_ms = 2000;
	px_start(&px, port);
	atomic_store(&px.drop, 1);
	s = mkredis(px.port, prefix, NULL, 1, 1);
	memset(&q, 0, sizeof(q));
	q.key = "t-probe|x";
	q.keylen = strlen(q.key);
	q.cost = 1;
	if (gcra_limit_init(&q.limit, 1000, 60 * NS_PER_SEC, 1000) != 0)
		abort();
	ev[0] = cmd_calls(ad, "eval");
	evs[0] = cmd_calls(ad, "evalsha");
	/* The first on the start-up connection, then each on a new one. */
	for (i = 0; i < 3; i++) {
		if (i > 0)
			kill_clients(ad);
		(void)store_charge(s, &q, &res, 1, t0 + at[i] * NS_PER_SEC);
		errs += res.err;
		ev[i + 1] = cmd_calls(ad, "eval");
		evs[i + 1] = cmd_calls(ad, "evalsha");
	}
	ok(errs == 0 && ev[1] - ev[0] == 1 && evs[1] == evs[0] &&
	    ev[2] - ev[1] == 1 && evs[2] == evs[1], "closed before any "
	    "reply: EVAL at once and on a new connection 60 s later (EVAL "
	    "+%lld +%lld, EVALSHA +%lld +%lld, errors %d)", ev[1] - ev[0],
	    ev[2] - ev[1], evs[1] - evs[0], evs[2] - evs[1], errs);
	ok(errs == 0 && ev[3] == ev[2] && evs[3] - evs[2] == 1, "a new "
	    "connection 301 s later loads the script: EVALSHA again (EVAL "
	    "+%lld, EVALSHA +%lld)", ev[3] - ev[2], evs[3] - evs[2]);

	/*
	 * A close at SCRIPT LOAD, then nothing listens (a server killed as
	 * the store connected, not a proxy): the next connection, 20 s
	 * later, loads the script without waiting the 5 minutes.
	 */
	atomic_store(&px.drop, 1);
	kill_clients(ad);
	(void)store_charge(s, &q, &res, 1, t0 + 400 * NS_PER_SEC);
	diag("closed at SCRIPT LOAD: charge err=%d", res.err);
	ev[0] = cmd_calls(ad, "eval");
	evs[0] = cmd_calls(ad, "evalsha");
	i = px.port;
	px_stop(&px);
	(void)store_charge(s, &q, &res, 1, t0 + 410 * NS_PER_SEC);
	ok(res.err == 1, "the proxy gone: a charge fails (connect refused)");
	px_start_at(&px, port, i);
	(void)store_charge(s, &q, &res, 1, t0 + 420 * NS_PER_SEC);
	errs = res.err;
	ev[1] = cmd_calls(ad, "eval");
	evs[1] = cmd_calls(ad, "evalsha");
	ok(errs == 0 && ev[1] == ev[0] && evs[1] - evs[0] == 1, "closed at "
	    "SCRIPT LOAD, then refused: the next connection loads the script "
	    "(EVAL +%lld, EVALSHA +%lld, errors %d)", ev[1] - ev[0],
	    evs[1] - evs[0], errs);
	store_free(s);
	px_stop(&px);
	redisFree(ad);
	return 0;
}

/*
 * A sentinel of this program that names the master with an address
 * holding an escape sequence: the store's log line (stderr, run.sh
 * reads it) must show it escaped. One connection, then it closes.
 */
struct fakesent {
	int		lfd, port;
	pthread_t	tid;
};

static void *
fs_run(void *arg)
{
	static const char reply[] = "*2\r\n$15\r\n127.0.0.1\x1b[31mX\r\n"
	    "$4\r\n6399\r\n";
	struct fakesent *f = arg;
	char buf[4096];
	int fd;

	if ((fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
		return NULL;
	if (read(fd, buf, sizeof(buf)) > 0 &&
	    write(fd, reply, sizeof(reply) - 1) != (ssize_t)sizeof(reply) - 1)
		diag("fake sentinel: short write");
	close(fd);
	return NULL;
}

static int
test_sentesc(void)
{
	struct store_redis_stats st;
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	struct fakesent f;
	struct store *s;
	char hp[64];
	const char *sents[1] = { hp };

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f.lfd < 0 || bind(f.lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(f.lfd, 4) != 0 || getsockname(f.lfd,
	    (struct sockaddr *)&sa, &len) != 0) {
		printf("Bail out! fake sentinel: %s\n", strerror(errno));
		exit(1);
	}
	f.port = ntohs(sa.sin_port);
	snprintf(hp, sizeof(hp), "127.0.0.1:%d", f.port);
	pthread_create(&f.tid, NULL, fs_run, &f);
	s = mksentinel(sents, 1, NULL);
	pthread_join(f.tid, NULL);
	close(f.lfd);
	store_redis_stats(s, &st);
	ok(st.down == 1, "a sentinel naming a master address with an escape "
	    "sequence: no master reached (the log line is run.sh's to check)");
	store_free(s);
	return 0;
}

/* --- figures ---------------------------------------------------------- */

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void
report(const char *what, int64_t *t, int n)
{
	qsort(t, (size_t)n, sizeof(*t), cmp64);
	diag("%-34s p50 %4lld us  p99 %4lld us  (n=%d)", what,
	    (long long)(t[n / 2] / 1000), (long long)(t[n * 99 / 100] / 1000),
	    n);
}

/*
 * Latency of one charge against a bare round trip, on this machine,
 * same run. Figures only: a loaded CI machine makes any bound flaky.
 */
static int
test_bench(int port)
{
	static int64_t t[2000];
	struct store_req q[5];
	struct store_res res[5];
	struct store *s;
	redisContext *ad = admin(port);
	char keys[5][64];
	int i, j, errs = 0;
	int64_t t0;

	cmd_timeout_ms = 5000;
	s = mkredis(port, "wb:", NULL, 1, 1);
	for (i = 0; i < 2000; i++) {
		t0 = mono();
		freeReplyObject(redisCommand(ad, "PING"));
		t[i] = mono() - t0;
	}
	report("PING (hiredis, one round trip)", t, 2000);
	for (j = 1; j <= 5; j += 4) {
		for (i = 0; i < 2000; i++) {
			int k;

			for (k = 0; k < j; k++) {
				snprintf(keys[k], sizeof(keys[k]),
				    "t-bench%d|192.0.2.%d", k, i % 250);
				mkreq(&q[k], keys[k], &cases[3], 1, 0);
				q[k].limit.burst = 1000000;
			}
			t0 = mono();
			(void)store_charge(s, q, res, (size_t)j, t0);
			t[i] = mono() - t0;
			errs += res[0].err;
		}
		report(j == 1 ? "store_charge, 1 limit" :
		    "store_charge, 5 limits pipelined", t, 2000);
	}
	ok(errs == 0, "figures measured (no errors)");
	store_free(s);
	redisFree(ad);
	return 0;
}

int
main(int argc, char **argv)
{
	int port;

	signal(SIGPIPE, SIG_IGN);
	/* A store that hangs fails the run instead of hanging it. */
	alarm(120);
	log_open(LOG_SINK_STDERR, "warden", 0, LOGL_DEBUG);
	if (argc < 3) {
		fprintf(stderr, "usage: test_store_redis gcra|fail|down|bench "
		    "PORT [PIDFILE RESTART]\n");
		return 2;
	}
	port = atoi(argv[2]);
	if (strcmp(argv[1], "gcra") == 0)
		test_gcra(port);
	else if (strcmp(argv[1], "fail") == 0 && argc == 5)
		test_fail(port, argv[3], argv[4]);
	else if (strcmp(argv[1], "down") == 0)
		test_down(port);
	else if (strcmp(argv[1], "shard") == 0 && (argc == 5 || argc == 6)) {
		redis_pass = argc == 6 ? argv[5] : NULL;
		test_shard(port, atoi(argv[3]), atoi(argv[4]));
	}
	else if (strcmp(argv[1], "bench") == 0)
		test_bench(port);
	else if (strcmp(argv[1], "desync") == 0)
		test_desync(port);
	else if (strcmp(argv[1], "noload") == 0 && argc == 4)
		test_noload(port, argv[3]);
	else if (strcmp(argv[1], "record") == 0)
		test_record(port);
	else if (strcmp(argv[1], "probe") == 0)
		test_probe(port);
	else if (strcmp(argv[1], "sentesc") == 0)
		test_sentesc();
	else if (strcmp(argv[1], "sentinel") == 0 && (argc == 6 || argc == 7))
		test_sentinel(port, atoi(argv[3]), atoi(argv[4]), argv[5],
		    argc == 7 ? argv[6] : NULL);
	else
		return 2;
	printf("1..%d\n", ntest);
	return nfail > 0;
}

/*
 * nullmilter.c - the null-policy milter of tests/bench/postfix_bench.sh:
 * the floor no libmilter-based policy milter can beat.
 * Owns: nothing but the protocol. Every callback answers SMFIS_CONTINUE;
 * xxfi_negotiate asks the MTA to leave out headers, end-of-headers, body
 * and unknown commands, as warden does when no rule reads them.
 * It keeps DATA with a reply (never SMFIP_NODATA nor SMFIP_NR_DATA): over
 * TCP Postfix's lone DATA macro packet then meets a delayed ACK and Nagle,
 * ~40 ms a message (DESIGN.md §4), which would measure the trap, not us.
 * With "full" it is the plain null milter instead: it asks for every
 * step (headers one by one, end of headers, body, unknown commands),
 * each with a reply, as a milter written without negotiation does.
 * With a hex mask (0x...) it asks for exactly those SMFIP_* steps, as
 * far as the MTA offers them, and answers none where the mask asks for
 * no reply (SMFIP_NR_*; the MTA must offer those bits, as Postfix 3.7
 * and miltergen do): given the mask a milter negotiated (the
 * "negotiated ... protocol=" line of miltergen), the null milter walks
 * the same path, so that the stages it leaves unanswered are queued
 * before the next one with a reply for both; a per-stage comparison
 * then measures the milter's work, not the protocol's shape.
 * With "redis RPORT ARG..." after the mask it is the Redis floor of
 * tests/bench/redis_bench.sh: at RCPT, and nowhere else, it sends the
 * command ARG... to redis-server on 127.0.0.1:RPORT and waits for the
 * reply, synchronously through hiredis, as a libmilter milter can:
 * an argument's "__rand_int__" (one an argument at most) becomes the
 * call's number, 12 digits (redis-benchmark -r's form; counted up, not
 * drawn, so every call has a fresh key), and the connections are a
 * pool of 8 (warden's pool in that bench), each behind a mutex,
 * connected on first use with warden's default timeouts (200 ms
 * connect, 100 ms a command). No reply (a timeout, a lost connection)
 * and a reply that is not an array are counted apart and printed at
 * exit; the stage still answers continue. What is between this
 * milter's RCPT time and warden-redis's is warden's own work.
 * Threads: libmilter's; the callbacks share nothing but the pool and
 * the counters (atomics). Their
 * stack is 2 MiB, as warden's (daemon.c THREAD_STACK): at glibc's
 * default of 8 MiB its stack cache holds four, and libmilter's pool,
 * which starts and ends threads all the time, then pays page faults and
 * TLB flushes that a milter avoids with one call; the floor has it.
 * Build: gcc -O2 -o nullmilter nullmilter.c -lmilter -lhiredis -lpthread
 * Usage: nullmilter PORT [full|0xMASK|0xMASK redis RPORT ARG...]
 * (listens on inet:PORT@127.0.0.1); SIGTERM, SIGINT or SIGHUP stop it
 * (libmilter's own signal thread). Exits 0 when stopped (1 if a Redis
 * call failed), 1 on a usage or listen error.
 */
#define _GNU_SOURCE	/* pthread_setattr_default_np; any build line */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <libmilter/mfapi.h>

static int full;	/* set once in main, before any thread */
static int mirror;	/* the same: steps holds the mask to ask for */
static unsigned long steps;

/* --- the Redis floor (all set in main before any thread but the pool) */
#define RPOOL	8
#define RMAXARG	32
#define RAND_TAG	"__rand_int__"
static int rport;	/* 0: no Redis call */
static int rargc;
static char **rargv;
static struct rconn {
	pthread_mutex_t lock;
	redisContext *c;
} rpool[RPOOL];
static atomic_uint rnext;
static atomic_ulong rseq, rnoreply, rwrong;

static struct rconn *
rpool_take(void)
{
	unsigned i, start = atomic_fetch_add(&rnext, 1);

	for (i = 0; i < RPOOL; i++)
		if (pthread_mutex_trylock(&rpool[(start + i) % RPOOL].lock) == 0)
			return &rpool[(start + i) % RPOOL];
	pthread_mutex_lock(&rpool[start % RPOOL].lock);
	return &rpool[start % RPOOL];
}

/* One call of the command with the next number: 0 when an array came
 * back, -1 when no reply did, -2 when another reply did. */
static int
redis_call(void)
{
	static const struct timeval cto = { 0, 200000 }, rto = { 0, 100000 };
	char buf[RMAXARG][256];
	const char *av[RMAXARG];
	size_t al[RMAXARG];
	struct rconn *k;
	redisReply *rep;
	unsigned long n = atomic_fetch_add(&rseq, 1) % 1000000;
	char *t;
	int i, ok;	/* 0, -1 or -2 as returned */

	for (i = 0; i < rargc; i++) {
		t = strstr(rargv[i], RAND_TAG);
		if (t == NULL) {
			av[i] = rargv[i];
		} else {
			snprintf(buf[i], sizeof(buf[i]), "%.*s%012lu%s",
			    (int)(t - rargv[i]), rargv[i], n,
			    t + strlen(RAND_TAG));
			av[i] = buf[i];
		}
		al[i] = strlen(av[i]);
	}
	k = rpool_take();
	if (k->c == NULL) {
		k->c = redisConnectWithTimeout("127.0.0.1", rport, cto);
		if (k->c != NULL && (k->c->err ||
		    redisSetTimeout(k->c, rto) != REDIS_OK)) {
			redisFree(k->c);
			k->c = NULL;
		}
	}
	rep = k->c == NULL ? NULL : redisCommandArgv(k->c, rargc, av, al);
	ok = rep == NULL ? -1 : rep->type == REDIS_REPLY_ARRAY ? 0 : -2;
	if (rep == NULL && k->c != NULL) {
		redisFree(k->c);	/* a context with err set is not reused */
		k->c = NULL;
	}
	pthread_mutex_unlock(&k->lock);
	freeReplyObject(rep);
	return ok;
}

static sfsistat
n_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	(void)ctx;
	(void)f0;
	(void)f2;
	(void)f3;
	*pf0 = 0;		/* no modification actions */
	if (mirror)
		*pf1 = steps & f1;
	else
		*pf1 = full ? 0 : (SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOBODY |
		    SMFIP_NOUNKNOWN) & f1;
	*pf2 = *pf3 = 0;
	return SMFIS_CONTINUE;
}

/*
 * Continue, or in mask mode no reply where the mask asked for none:
 * a continue there makes libmilter log "milter claimed not to reply"
 * through syslog, each time, before it drops the reply.
 */
static sfsistat
answer(unsigned long nr)
{
	return mirror && (steps & nr) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
n_connect(SMFICTX *ctx, char *host, struct sockaddr *sa)
{
	(void)ctx;
	(void)host;
	(void)sa;
	return answer(SMFIP_NR_CONN);
}

static sfsistat
n_helo(SMFICTX *ctx, char *helo)
{
	(void)ctx;
	(void)helo;
	return answer(SMFIP_NR_HELO);
}

static sfsistat
n_envfrom(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return answer(SMFIP_NR_MAIL);
}

static sfsistat
n_envrcpt(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	if (rport != 0)
		switch (redis_call()) {
		case -1:
			atomic_fetch_add(&rnoreply, 1);
			break;
		case -2:
			atomic_fetch_add(&rwrong, 1);
			break;
		}
	return answer(SMFIP_NR_RCPT);
}

static sfsistat
n_data(SMFICTX *ctx)
{
	(void)ctx;
	return answer(SMFIP_NR_DATA);
}

static sfsistat
n_eoh(SMFICTX *ctx)
{
	(void)ctx;
	return answer(SMFIP_NR_EOH);
}

static sfsistat
n_eom(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static sfsistat
n_header(SMFICTX *ctx, char *name, char *value)
{
	(void)ctx;
	(void)name;
	(void)value;
	return answer(SMFIP_NR_HDR);
}

static sfsistat
n_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	(void)ctx;
	(void)chunk;
	(void)len;
	return answer(SMFIP_NR_BODY);
}

static sfsistat
n_unknown(SMFICTX *ctx, const char *cmd)
{
	(void)ctx;
	(void)cmd;
	return answer(SMFIP_NR_UNKN);
}

static struct smfiDesc desc = {
	.xxfi_name = "nullmilter",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = 0,
	.xxfi_connect = n_connect,
	.xxfi_helo = n_helo,
	.xxfi_envfrom = n_envfrom,
	.xxfi_envrcpt = n_envrcpt,
	.xxfi_data = n_data,
	.xxfi_eom = n_eom,
	.xxfi_header = n_header,
	.xxfi_eoh = n_eoh,
	.xxfi_body = n_body,
	.xxfi_unknown = n_unknown,
	.xxfi_negotiate = n_negotiate,
};

int
main(int argc, char **argv)
{
	pthread_attr_t attr;
	char conn[64];
	char *end;
	long port;
	int i, rc;

	if (argc >= 6 && strncmp(argv[2], "0x", 2) == 0 &&
	    strcmp(argv[3], "redis") == 0) {
		port = strtol(argv[4], &end, 10);
		if (*argv[4] == '\0' || *end != '\0' || port < 1 ||
		    port > 65535 || argc - 5 > RMAXARG) {
			fprintf(stderr, "nullmilter: bad redis port %s or "
			    "more than %d arguments\n", argv[4], RMAXARG);
			return 1;
		}
		for (i = 5; i < argc; i++) {
			const char *t = strstr(argv[i], RAND_TAG);

			if (strlen(argv[i]) >= 200 || (t != NULL &&
			    strstr(t + 1, RAND_TAG) != NULL)) {
				fprintf(stderr, "nullmilter: argument %d is "
				    "longer than 199 bytes or has two %s\n",
				    i, RAND_TAG);
				return 1;
			}
		}
		rport = (int)port;
		rargc = argc - 5;
		rargv = argv + 5;
		for (i = 0; i < RPOOL; i++)
			pthread_mutex_init(&rpool[i].lock, NULL);
		argc = 3;
	}
	if (argc == 3 && strcmp(argv[2], "full") == 0)
		full = 1;
	else if (argc == 3 && strncmp(argv[2], "0x", 2) == 0) {
		steps = strtoul(argv[2] + 2, &end, 16);
		if (argv[2][2] == '\0' || *end != '\0') {
			fprintf(stderr, "nullmilter: bad mask %s\n", argv[2]);
			return 1;
		}
		mirror = 1;
	} else if (argc != 2) {
		fprintf(stderr, "usage: nullmilter PORT "
		    "[full|0xMASK|0xMASK redis RPORT ARG...]\n");
		return 1;
	}
	port = strtol(argv[1], &end, 10);
	if (*argv[1] == '\0' || *end != '\0' || port < 1 || port > 65535) {
		fprintf(stderr, "nullmilter: bad port %s\n", argv[1]);
		return 1;
	}
	snprintf(conn, sizeof(conn), "inet:%ld@127.0.0.1", port);
	if (pthread_attr_init(&attr) != 0 ||
	    pthread_attr_setstacksize(&attr, (size_t)2 << 20) != 0 ||
	    pthread_setattr_default_np(&attr) != 0) {
		fprintf(stderr, "nullmilter: cannot set the stack size\n");
		return 1;
	}
	/* warden's default (DESIGN.md §2): Postfix may idle 300 s. */
	if (smfi_setconn(conn) != MI_SUCCESS ||
	    smfi_settimeout(7210) != MI_SUCCESS ||
	    smfi_register(desc) != MI_SUCCESS ||
	    smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "nullmilter: cannot listen on %s\n", conn);
		return 1;
	}
	rc = smfi_main() == MI_SUCCESS ? 0 : 1;
	if (rport != 0) {
		fprintf(stderr, "nullmilter: redis calls %lu no_reply %lu "
		    "wrong_reply %lu\n", atomic_load(&rseq),
		    atomic_load(&rnoreply), atomic_load(&rwrong));
		if (atomic_load(&rnoreply) + atomic_load(&rwrong) > 0)
			rc = 1;
	}
	return rc;
}

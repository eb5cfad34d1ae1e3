/*
 * test_store_redis.c - the Redis store without a server: option checks,
 * and a start with nothing listening (degraded: the breaker is open, each
 * request fails at once, refunds are dropped, and what needs no server
 * is still answered). The behaviour against a real redis-server is in
 * tests/redis/ (GCRA table, round trips, outages).
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "log.h"
#include "store.h"

#define S	NS_PER_SEC

/* A loopback port bound but not listening: connect is refused. */
static int
dead_port(int *fd_out)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*fd_out = fd;
	return ntohs(sa.sin_port);
}

static void
test_redis_bad_options(void **state)
{
	static const struct {
		const char	*name;
		const char	*host;
		int		port;
		const char	*prefix;
		int		pool;
		const char	*want;
	} cases[] = {
		{ "no host, no socket", "", 6379, NULL, 1, "needs host" },
		{ "port 0", "127.0.0.1", 0, NULL, 1, "needs host" },
		{ "prefix too long", "127.0.0.1", 6379,
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxx", 1, "prefix" },
		{ "pool 2000", "127.0.0.1", 6379, NULL, 2000, "out of range" },
	};
	struct store_redis_opts o;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		memset(&o, 0, sizeof(o));
		o.host = cases[i].host;
		o.port = cases[i].port;
		o.prefix = cases[i].prefix;
		o.pool = cases[i].pool;
		err[0] = '\0';
		if (store_redis_new(&o, err, sizeof(err)) != NULL)
			fail_msg("%s: got a store, want NULL", cases[i].name);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("%s: err \"%s\", want it to say \"%s\"",
			    cases[i].name, err, cases[i].want);
	}
}

static void
test_redis_degraded_start(void **state)
{
	struct store_redis_opts o;
	struct store_redis_stats st;
	struct store_req rq[2];
	struct store_res rs[2];
	struct store *s;
	char err[256];
	int fd, i;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.host = "127.0.0.1";
	o.port = dead_port(&fd);
	o.pool = 2;
	o.key_secret = "k";
	assert_non_null(s = store_redis_new(&o, err, sizeof(err)));
	assert_string_equal(s->ops->name, "redis");
	store_redis_stats(s, &st);
	assert_int_equal(st.down, 1);
	memset(rq, 0, sizeof(rq));
	for (i = 0; i < 2; i++) {
		rq[i].key = i == 0 ? "r|192.0.2.1" : "r|192.0.2.2";
		rq[i].keylen = strlen(rq[i].key);
		assert_int_equal(gcra_limit_init(&rq[i].limit, 3, 60 * S, 0),
		    0);
		rq[i].cost = 1;
	}
	/* The first batch probes (connect refused), the second fails fast. */
	for (i = 0; i < 2; i++) {
		memset(rs, 0x55, sizeof(rs));
		assert_int_equal(store_charge(s, rq, rs, 2, 1000 * S), -1);
		assert_int_equal(rs[0].err, 1);
		assert_int_equal(rs[1].err, 1);
	}
	store_redis_stats(s, &st);
	assert_int_equal(st.connects, 2);	/* at start, and the probe */
	assert_int_equal(st.fast_fails, 1);
	assert_int_equal(st.down, 1);
	/* More than the burst never passes: no server needed to say so. */
	rq[1].cost = 4;
	assert_int_equal(store_charge(s, rq, rs, 2, 1000 * S), 0);
	assert_int_equal(rs[0].err, 1);
	assert_int_equal(rs[1].err, 0);
	assert_int_equal(rs[1].allowed, 0);
	assert_int_equal(rs[1].retry_after_ns, 60 * S);
	store_refund(s, rq, 1, 1000 * S);
	store_redis_stats(s, &st);
	assert_int_equal(st.refunds_dropped, 1);
	assert_int_equal(store_peek(s, rq, rs, 1, 1000 * S), -1);
	assert_int_equal(rs[0].err, 1);
	store_free(s);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redis_bad_options),
		cmocka_unit_test(test_redis_degraded_start),
	};

	/* The store logs its state changes; keep them off the TAP. */
	log_open(LOG_SINK_STDERR, "warden", 0, LOGL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

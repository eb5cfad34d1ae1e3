/*
 * store_fail.c - a store whose every call fails, so tests can drive the
 * engine's on_error paths without a broken Redis (as Postfix's
 * dict_surrogate and Dovecot's dict-fail do).
 * Owns: nothing but its ops table. Not: any counting.
 * Threads: stateless; safe anywhere. Errors: charge and peek set err on
 * every result and return -1; refund does nothing.
 */
#include <stdlib.h>

#include "store.h"

static int
fail_all(struct store_res *res, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		res[i].err = 1;
		res[i].allowed = 0;
		res[i].retry_after_ns = 0;
	}
	return -1;
}

static int
fail_charge(struct store *s, const struct store_req *req,
    struct store_res *res, size_t n, int64_t now)
{
	(void)s;
	(void)req;
	(void)now;
	return fail_all(res, n);
}

static void
fail_refund(struct store *s, const struct store_req *req, size_t n,
    int64_t now)
{
	(void)s;
	(void)req;
	(void)n;
	(void)now;
}

static void
fail_free(struct store *s)
{
	free(s);
}

static const struct store_ops fail_ops = {
	.name = "fail",
	.charge = fail_charge,
	.refund = fail_refund,
	.peek = fail_charge,	/* a look fails the same way */
	.free = fail_free,
};

struct store *
store_fail_new(void)
{
	struct store *s;

	if ((s = malloc(sizeof(*s))) == NULL)
		return NULL;
	s->ops = &fail_ops;
	return s;
}

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

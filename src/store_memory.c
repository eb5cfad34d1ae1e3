/*
 * store_memory.c - the embedded store: GCRA TATs in a bounded, sharded
 * hash table in this process (DESIGN.md §4b, store.memory.max_keys).
 * Owns: the table, its eviction and expiry. Not: the GCRA math (gcra.c),
 * key naming (the engine namespaces keys by rule).
 * Threads: any number; each shard has its own mutex, held only for the
 * lookup and update of one request. There is no global lock.
 * Errors: a request fails (res.err = 1) only when memory runs out while
 * the table is still empty; otherwise a full table evicts. Never aborts.
 * Memory: about 70 bytes a key (measured by tests/bench/bench_store.c).
 */
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "siphash.h"
#include "store.h"

/*
 * 64 shards keep two threads on the same mutex rare (1/64 per pair of
 * requests) and cost nothing at 1M keys. Small tables get fewer shards:
 * each shard evicts its own oldest entry, which approximates "oldest
 * first" only when a shard holds a fair sample of the keys, so a shard
 * is never split below MEM_SHARD_MIN keys (max_keys 4 means one shard,
 * and eviction order is then exact).
 */
#define MEM_SHARDS_MAX	64
#define MEM_SHARD_MIN	64
#define MEM_INIT_CAP	64u
#define MEM_NIL		0u	/* entry 0 is never used: calloc'd = empty */
/* How many stale heap tops one insert may re-sort (see shard_reclaim). */
#define MEM_RECLAIM_ROOM	2
#define MEM_RECLAIM_FULL	32

/*
 * One counter, 40 bytes. The key itself is not kept, only a 128-bit
 * digest made of two SipHash-2-4 values under two secret random keys.
 * Without the keys nobody can predict the digest, so collisions cannot be
 * searched for offline, and by chance they are negligible: among n keys
 * the probability of any collision is about n^2 / 2^129, 2^-89 at a
 * million keys. A collision would only make two keys share one counter.
 *
 * The TAT is also the expiry: once tat <= now, gcra_eval treats the entry
 * exactly like an absent key, so it can be reused with no change in any
 * verdict.
 */
struct mem_entry {
	uint64_t	d0, d1;		/* digest; d0 picks the bucket */
	int64_t		tat;
	uint64_t	used;		/* shard's use count at last charge */
	uint32_t	chain;		/* next entry in the same bucket */
	uint32_t	xpos;		/* position in the expiry heap */
};

/*
 * Entries live in one array per shard, slots 1..count (slots are reused
 * in place, never freed, so they stay dense). Three orders over them:
 * - buckets: chained hash indexed by d0, load factor at most 1;
 * - the expiry heap (xkey, xslot), a binary min-heap whose key never
 *   exceeds the slot's TAT: the top tells whether anything has expired;
 * - the use heap (ukey, uslot), likewise with key <= the slot's use
 *   stamp: the top, once its key is exact, is the least recently used.
 * Both heaps are lazy: a charge raises the entry's TAT and stamp and
 * touches neither heap, and a stale (too small) key is corrected only
 * when it reaches the top. A linked LRU list would cost a charge two
 * more cache misses (its neighbours) at a million keys.
 */
struct mem_shard {
	/* Each shard on its own cache lines: no false sharing. */
	alignas(64) pthread_mutex_t lock;
	struct mem_entry *ents;
	uint32_t	*buckets;
	int64_t		*xkey;
	uint32_t	*xslot;
	uint64_t	*ukey;
	uint32_t	*uslot;
	uint64_t	uses;		/* stamps: 64 bits never wrap */
	uint32_t	cap;		/* slots allocated in each array */
	uint32_t	nbuckets;	/* power of two */
	uint32_t	count;		/* entries in use = size of each heap */
	uint32_t	limit;		/* this shard's share of max_keys */
	uint64_t	evicted, expired;
};

struct store_memory {
	struct store	base;		/* first: store.h casts */
	uint8_t		k0[16], k1[16];	/* SipHash keys, from getrandom */
	uint32_t	nshards;	/* power of two */
	struct mem_shard *shards;
};

enum mem_op {
	MEM_CHARGE,
	MEM_PEEK,
	MEM_REFUND,
};

static void
xheap_place(struct mem_shard *sh, uint32_t pos, int64_t key, uint32_t slot)
{
	sh->xkey[pos] = key;
	sh->xslot[pos] = slot;
	sh->ents[slot].xpos = pos;
}

static void
xheap_sift_up(struct mem_shard *sh, uint32_t pos)
{
	int64_t key = sh->xkey[pos];
	uint32_t slot = sh->xslot[pos], parent;

	while (pos > 0) {
		parent = (pos - 1) / 2;
		if (sh->xkey[parent] <= key)
			break;
		xheap_place(sh, pos, sh->xkey[parent], sh->xslot[parent]);
		pos = parent;
	}
	xheap_place(sh, pos, key, slot);
}

static void
xheap_sift_down(struct mem_shard *sh, uint32_t pos)
{
	int64_t key = sh->xkey[pos];
	uint32_t slot = sh->xslot[pos], child;

	for (;;) {
		child = 2 * pos + 1;
		if (child >= sh->count)
			break;
		if (child + 1 < sh->count &&
		    sh->xkey[child + 1] < sh->xkey[child])
			child++;
		if (key <= sh->xkey[child])
			break;
		xheap_place(sh, pos, sh->xkey[child], sh->xslot[child]);
		pos = child;
	}
	xheap_place(sh, pos, key, slot);
}

/* Gives the expiry heap node at pos a new key and restores order. */
static void
xheap_rekey(struct mem_shard *sh, uint32_t pos, int64_t key)
{
	int64_t old = sh->xkey[pos];

	sh->xkey[pos] = key;
	if (key < old)
		xheap_sift_up(sh, pos);
	else
		xheap_sift_down(sh, pos);
}

/*
 * The use heap needs no back pointers: its keys are only ever raised at
 * the top (lazily) or set when a node is added at the bottom.
 */
static void
uheap_push(struct mem_shard *sh, uint32_t pos, uint64_t key, uint32_t slot)
{
	uint32_t parent;

	while (pos > 0) {
		parent = (pos - 1) / 2;
		if (sh->ukey[parent] <= key)
			break;
		sh->ukey[pos] = sh->ukey[parent];
		sh->uslot[pos] = sh->uslot[parent];
		pos = parent;
	}
	sh->ukey[pos] = key;
	sh->uslot[pos] = slot;
}

/* Gives the top a larger key and sinks it to its place. */
static void
uheap_raise_top(struct mem_shard *sh, uint64_t key)
{
	uint32_t slot = sh->uslot[0], pos = 0, child;

	for (;;) {
		child = 2 * pos + 1;
		if (child >= sh->count)
			break;
		if (child + 1 < sh->count &&
		    sh->ukey[child + 1] < sh->ukey[child])
			child++;
		if (key <= sh->ukey[child])
			break;
		sh->ukey[pos] = sh->ukey[child];
		sh->uslot[pos] = sh->uslot[child];
		pos = child;
	}
	sh->ukey[pos] = key;
	sh->uslot[pos] = slot;
}

/*
 * The least recently used entry: the use heap's top once its key is
 * exact. Each stale top is corrected once per call, so the loop ends
 * after at most count turns; amortised, a charge costs one correction,
 * O(log n), paid here. Needs count > 0.
 */
static uint32_t
uheap_lru(struct mem_shard *sh)
{
	uint32_t i;

	for (;;) {
		i = sh->uslot[0];
		if (sh->ents[i].used == sh->ukey[0])
			return i;
		uheap_raise_top(sh, sh->ents[i].used);
	}
}

static uint32_t
shard_find(const struct mem_shard *sh, uint64_t d0, uint64_t d1)
{
	uint32_t i = sh->buckets[d0 & (sh->nbuckets - 1)];

	while (i != MEM_NIL) {
		if (sh->ents[i].d0 == d0 && sh->ents[i].d1 == d1)
			return i;
		i = sh->ents[i].chain;
	}
	return MEM_NIL;
}

/* Takes entry i out of its bucket chain (the heaps keep its slot). */
static void
shard_unchain(struct mem_shard *sh, uint32_t i)
{
	uint32_t *p = &sh->buckets[sh->ents[i].d0 & (sh->nbuckets - 1)];

	while (*p != i)
		p = &sh->ents[*p].chain;
	*p = sh->ents[i].chain;
}

/*
 * Makes room for one more slot: the arrays grow by doubling up to
 * limit + 1 (slot 0 is the NIL sentinel), the buckets double with the
 * count. Returns 0, or -1 when memory is short (the shard is unchanged
 * and still valid: a realloc that succeeded only leaves spare room).
 */
static int
shard_grow(struct mem_shard *sh)
{
	uint32_t ncap, nb, i, *bk;
	size_t n;
	void *p;

	if (sh->count + 2 > sh->cap) {
		ncap = sh->cap > (sh->limit + 1) / 2 ? sh->limit + 1 :
		    sh->cap * 2;
		n = ncap;
		if ((p = realloc(sh->ents, n * sizeof(*sh->ents))) == NULL)
			return -1;
		sh->ents = p;
		if ((p = realloc(sh->xkey, n * sizeof(*sh->xkey))) == NULL)
			return -1;
		sh->xkey = p;
		if ((p = realloc(sh->xslot, n * sizeof(*sh->xslot))) == NULL)
			return -1;
		sh->xslot = p;
		if ((p = realloc(sh->ukey, n * sizeof(*sh->ukey))) == NULL)
			return -1;
		sh->ukey = p;
		if ((p = realloc(sh->uslot, n * sizeof(*sh->uslot))) == NULL)
			return -1;
		sh->uslot = p;
		sh->cap = ncap;
	}
	if (sh->count + 1 > sh->nbuckets) {
		nb = sh->nbuckets * 2;
		if ((bk = calloc(nb, sizeof(*bk))) == NULL)
			return -1;
		for (i = 1; i <= sh->count; i++) {
			sh->ents[i].chain = bk[sh->ents[i].d0 & (nb - 1)];
			bk[sh->ents[i].d0 & (nb - 1)] = i;
		}
		free(sh->buckets);
		sh->buckets = bk;
		sh->nbuckets = nb;
	}
	return 0;
}

/*
 * Returns an entry whose TAT has passed, or MEM_NIL. The expiry heap's
 * top has the smallest key; if that key is still ahead of now, so is
 * every TAT (keys never exceed TATs) and the answer is no: one compare
 * on the common path. A top whose key has passed but whose TAT has not
 * was charged since; its key is corrected, at most budget times a call
 * so that one insert never stalls the shard.
 */
static uint32_t
shard_reclaim(struct mem_shard *sh, int64_t now, int budget)
{
	uint32_t i;

	while (sh->count > 0 && budget-- > 0) {
		if (sh->xkey[0] > now)
			return MEM_NIL;
		i = sh->xslot[0];
		if (sh->ents[i].tat <= now)
			return i;
		xheap_rekey(sh, 0, sh->ents[i].tat);
	}
	return MEM_NIL;
}

/*
 * Stores a new key's TAT: into an expired entry if there is one, else a
 * fresh slot while the shard is under its limit, else over the least
 * recently used entry. Returns 0, or -1 when there is nowhere to put it.
 */
static int
shard_insert(struct mem_shard *sh, uint64_t d0, uint64_t d1, int64_t tat,
    int64_t now)
{
	struct mem_entry *e;
	uint32_t i, b;
	int fresh = 0;

	i = shard_reclaim(sh, now, sh->count < sh->limit ?
	    MEM_RECLAIM_ROOM : MEM_RECLAIM_FULL);
	if (i != MEM_NIL)
		sh->expired++;
	else if (sh->count < sh->limit && shard_grow(sh) == 0) {
		i = sh->count + 1;
		fresh = 1;
	} else if (sh->count > 0) {
		/* Out of room (or memory): the least recently used goes. */
		i = uheap_lru(sh);
		if (sh->ents[i].tat <= now)
			sh->expired++;
		else
			sh->evicted++;
	} else
		return -1;
	if (!fresh)
		shard_unchain(sh, i);
	e = &sh->ents[i];
	e->d0 = d0;
	e->d1 = d1;
	e->tat = tat;
	e->used = ++sh->uses;
	b = d0 & (sh->nbuckets - 1);
	e->chain = sh->buckets[b];
	sh->buckets[b] = i;
	if (fresh) {
		sh->count++;
		xheap_place(sh, sh->count - 1, tat, i);
		xheap_sift_up(sh, sh->count - 1);
		uheap_push(sh, sh->count - 1, e->used, i);
		return 0;
	}
	/*
	 * The new TAT may be below the old key (an evicted live entry);
	 * the use key is merely stale now, which uheap_lru corrects.
	 */
	xheap_rekey(sh, e->xpos, tat);
	return 0;
}

/* One request under the shard lock. */
static void
shard_apply(struct mem_shard *sh, uint64_t d0, uint64_t d1,
    const struct store_req *rq, struct store_res *rs, int64_t now,
    enum mem_op op)
{
	struct gcra_result g;
	struct mem_entry *e;
	uint32_t i;
	int64_t tat;

	i = shard_find(sh, d0, d1);
	e = i != MEM_NIL ? &sh->ents[i] : NULL;
	if (op == MEM_REFUND) {
		if (e == NULL)
			return;
		e->tat = gcra_refund(&rq->limit, e->tat, rq->cost, now);
		/* Keep key <= TAT, or the entry would be reclaimed late. */
		if (e->tat < sh->xkey[e->xpos])
			xheap_rekey(sh, e->xpos, e->tat);
		return;
	}
	tat = e != NULL ? e->tat : 0;
	gcra_eval(&rq->limit, tat, rq->cost, now, &g);
	rs->err = 0;
	rs->allowed = g.allowed;
	rs->retry_after_ns = g.retry_after_ns;
	/* req.peek: a rule that looks at a shared counter, never charges. */
	if (op == MEM_PEEK || rq->peek)
		return;
	if (e != NULL) {
		e->tat = g.new_tat;
		/*
		 * A refused attempt counts as use too: evicting the counter
		 * of a client that is hammering us would reset its limit.
		 */
		e->used = ++sh->uses;
	} else if (g.allowed &&
	    shard_insert(sh, d0, d1, g.new_tat, now) == -1)
		rs->err = 1;
}

static int
mem_batch(struct store *s, const struct store_req *req,
    struct store_res *res, size_t n, int64_t now, enum mem_op op)
{
	struct store_memory *m = (struct store_memory *)s;
	struct mem_shard *sh;
	uint64_t d0, d1, lid;
	size_t i, failed = 0;

	for (i = 0; i < n; i++) {
		if (req[i].key == NULL && req[i].keylen > 0) {
			if (res != NULL)
				res[i].err = 1;
			failed++;
			continue;
		}
		/* Hashing outside the lock keeps the lock hold short. */
		/* One counter per key and limit (store.h, store_limit_id). */
		lid = store_limit_id(&req[i].limit);
		d0 = siphash24(m->k0, req[i].key, req[i].keylen) ^ lid;
		d1 = siphash24(m->k1, req[i].key, req[i].keylen) ^
		    (lid << 32 | lid >> 32);
		sh = &m->shards[(d1 >> 32) & (m->nshards - 1)];
		pthread_mutex_lock(&sh->lock);
		shard_apply(sh, d0, d1, &req[i], res != NULL ? &res[i] : NULL,
		    now, op);
		pthread_mutex_unlock(&sh->lock);
		if (res != NULL && res[i].err)
			failed++;
	}
	return n > 0 && failed == n ? -1 : 0;
}

static int
mem_charge(struct store *s, const struct store_req *req,
    struct store_res *res, size_t n, int64_t now)
{
	return mem_batch(s, req, res, n, now, MEM_CHARGE);
}

static int
mem_peek(struct store *s, const struct store_req *req,
    struct store_res *res, size_t n, int64_t now)
{
	return mem_batch(s, req, res, n, now, MEM_PEEK);
}

static void
mem_refund(struct store *s, const struct store_req *req, size_t n,
    int64_t now)
{
	(void)mem_batch(s, req, NULL, n, now, MEM_REFUND);
}

static void
mem_free(struct store *s)
{
	struct store_memory *m = (struct store_memory *)s;
	uint32_t i;

	if (m == NULL)
		return;
	if (m->shards != NULL) {
		for (i = 0; i < m->nshards; i++) {
			pthread_mutex_destroy(&m->shards[i].lock);
			free(m->shards[i].ents);
			free(m->shards[i].buckets);
			free(m->shards[i].xkey);
			free(m->shards[i].xslot);
			free(m->shards[i].ukey);
			free(m->shards[i].uslot);
		}
		free(m->shards);
	}
	explicit_bzero(m->k0, sizeof(m->k0));
	explicit_bzero(m->k1, sizeof(m->k1));
	free(m);
}

static const struct store_ops mem_ops = {
	.name = "memory",
	.charge = mem_charge,
	.refund = mem_refund,
	.peek = mem_peek,
	.free = mem_free,
};

static int
fill_random(uint8_t *buf, size_t len)
{
	ssize_t r;

	while (len > 0) {
		r = getrandom(buf, len, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += r;
		len -= (size_t)r;
	}
	return 0;
}

static int
shard_init(struct mem_shard *sh, uint32_t limit)
{
	memset(sh, 0, sizeof(*sh));
	/* The mutex first: mem_free destroys it on every shard it reaches. */
	if (pthread_mutex_init(&sh->lock, NULL) != 0)
		return -1;
	sh->limit = limit;
	sh->cap = limit + 1 < MEM_INIT_CAP ? limit + 1 : MEM_INIT_CAP;
	sh->nbuckets = MEM_INIT_CAP;
	sh->ents = calloc(sh->cap, sizeof(*sh->ents));
	sh->xkey = calloc(sh->cap, sizeof(*sh->xkey));
	sh->xslot = calloc(sh->cap, sizeof(*sh->xslot));
	sh->ukey = calloc(sh->cap, sizeof(*sh->ukey));
	sh->uslot = calloc(sh->cap, sizeof(*sh->uslot));
	sh->buckets = calloc(sh->nbuckets, sizeof(*sh->buckets));
	if (sh->ents == NULL || sh->xkey == NULL || sh->xslot == NULL ||
	    sh->ukey == NULL || sh->uslot == NULL || sh->buckets == NULL)
		return -1;
	return 0;
}

struct store *
store_memory_new(uint64_t max_keys)
{
	struct store_memory *m;
	uint64_t per, extra;
	uint32_t i, ns = MEM_SHARDS_MAX;

	while (ns > 1 && max_keys < (uint64_t)ns * MEM_SHARD_MIN)
		ns /= 2;
	/*
	 * Slots and bucket counts are 32-bit (slot 0 is the sentinel);
	 * 2^31 keys a shard is far beyond any memory this could have.
	 */
	if (max_keys == 0 || max_keys / ns + 1 > INT32_MAX) {
		errno = EINVAL;
		return NULL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	m->base.ops = &mem_ops;
	if (fill_random(m->k0, sizeof(m->k0)) == -1 ||
	    fill_random(m->k1, sizeof(m->k1)) == -1)
		goto fail;
	m->shards = aligned_alloc(alignof(struct mem_shard),
	    ns * sizeof(*m->shards));
	if (m->shards == NULL)
		goto fail;
	/*
	 * Shares differ by at most one and add up to max_keys exactly, so
	 * the total can never exceed it.
	 */
	per = max_keys / ns;
	extra = max_keys % ns;
	for (i = 0; i < ns; i++) {
		m->nshards = i + 1;
		if (shard_init(&m->shards[i], (uint32_t)(per +
		    (i < extra))) == -1)
			goto fail;
	}
	m->nshards = ns;
	return &m->base;
fail:
	mem_free(&m->base);
	return NULL;
}

/*
 * keys counts the entries held; some may have expired without having been
 * reclaimed yet (that happens lazily, when a new key needs the slot).
 */
void
store_memory_stats(struct store *s, struct store_memory_stats *out)
{
	struct store_memory *m = (struct store_memory *)s;
	uint32_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < m->nshards; i++) {
		pthread_mutex_lock(&m->shards[i].lock);
		out->keys += m->shards[i].count;
		out->evicted += m->shards[i].evicted;
		out->expired += m->shards[i].expired;
		pthread_mutex_unlock(&m->shards[i].lock);
	}
}

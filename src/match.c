/*
 * match.c - condition primitives compiled into their cheapest form
 * (DESIGN.md §3, §4b): pattern sets and the string tables under them.
 * Addresses and CIDR sets are in match_ip.c, owner maps in
 * match_owners.c, file reading and file: lists in match_file.c.
 * Owns: compiling patterns at load, testing values on the stage path.
 * Not: which condition uses a list (rules.c), logging (log.c).
 * Threads: compiled objects are immutable and shared; the only per-thread
 * state is PCRE2's match data and JIT stack (see thread_md()). Tests take
 * no lock and allocate nothing but that state, once per thread.
 * Errors: load problems go to the caller's diag as FILE:LINE (lines of a
 * file: list name the list's own file and line); tests never fail.
 */
#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "match_int.h"
#include "util.h"

/*
 * Regex budgets. A start position that hits match_limit ends the whole
 * match (about 0.2 ms with JIT here); as PCRE2 restarts the count at each
 * start position of an unanchored pattern, a pattern staying just under
 * it everywhere costs at most (value length x limit), and session values
 * are capped at 2 KB. 100000 steps a position is far above what a sane
 * pattern needs (a linear scan costs about one a byte). Depth and heap
 * bind only the interpreter (no JIT): its backtracking frames stay in the
 * thread's match data, so the heap limit is also what a thread may keep;
 * "^([a-z]|\.)+$" needs a depth of about 3 a byte, so 50000 lets the
 * interpreter match every session value (2 KB) and more.
 */
#define RE_MATCH_LIMIT	100000
#define RE_DEPTH_LIMIT	50000
#define RE_HEAP_KIB	4096
/* pcre2jit(3): "512KiB to 1MiB should be more than enough for any pattern" */
#define RE_JIT_STACK_MIN	(32 * 1024)
#define RE_JIT_STACK_MAX	(1024 * 1024)
/*
 * Bytes, never UTF: every client byte sequence is a valid subject, so no
 * UTF check can fail or be skipped unsafely; (*UTF) in a pattern is refused.
 */
#define RE_OPTIONS	(PCRE2_CASELESS | PCRE2_NEVER_UTF | PCRE2_NEVER_UCP | \
	PCRE2_NEVER_BACKSLASH_C)

#define FNV_BASIS	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL

struct glob {
	char		*p;		/* lower-cased */
	size_t		 len;
};

struct match_set {
	struct strtab	 exact;		/* hash of the whole value */
	struct strtab	 prefix;	/* "ab*": hash of the first len bytes */
	struct strtab	 suffix;	/* "*ab": last len bytes, backwards */
	struct glob	*glob;		/* anything else with * or ? */
	size_t		 nglob, globcap;
	pcre2_code	**re;
	size_t		 nre, recap;
	pcre2_match_context *mctx;	/* limits; read-only once built */
};

static int
lc(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static uint64_t
fnv_step(uint64_t h, unsigned char c)
{
	return (h ^ (uint64_t)lc(c)) * FNV_PRIME;
}

uint64_t
match_hash_fwd(const char *s, size_t len)
{
	uint64_t h = FNV_BASIS;
	size_t i;

	for (i = 0; i < len; i++)
		h = fnv_step(h, (unsigned char)s[i]);
	return h;
}

static uint64_t
hash_rev(const char *s, size_t len)
{
	uint64_t h = FNV_BASIS;

	while (len > 0)
		h = fnv_step(h, (unsigned char)s[--len]);
	return h;
}

static int
lens_has(const struct strtab *t, size_t len)
{
	return len <= MATCH_PAT_MAX &&
	    (t->lens[len / 64] >> (len % 64) & 1) != 0;
}

static size_t
strtab_idx(const struct strtab *t, uint64_t h)
{
	return (size_t)(h ^ (h >> 29)) & (t->cap - 1);
}

const struct strent *
match_strtab_find(const struct strtab *t, uint64_t h, const char *s, size_t len)
{
	const struct strent *e;
	size_t i;

	if (t->n == 0)
		return NULL;
	for (i = strtab_idx(t, h);; i = (i + 1) & (t->cap - 1)) {
		e = &t->slot[i];
		if (e->s == NULL)
			return NULL;
		if (e->h == h && str_ieq(e->s, e->len, s, len))
			return e;
	}
}

static int
strtab_grow(struct strtab *t)
{
	struct strent *ns, *e;
	size_t ncap, i, j;

	ncap = t->cap ? t->cap * 2 : 16;
	if ((ns = calloc(ncap, sizeof(*ns))) == NULL)
		return -1;
	for (i = 0; i < t->cap; i++) {
		e = &t->slot[i];
		if (e->s == NULL)
			continue;
		j = (size_t)(e->h ^ (e->h >> 29)) & (ncap - 1);
		while (ns[j].s != NULL)
			j = (j + 1) & (ncap - 1);
		ns[j] = *e;
	}
	free(t->slot);
	t->slot = ns;
	t->cap = ncap;
	return 0;
}

/* Interns s (lower-cased); returns the new or existing entry, NULL: OOM. */
struct strent *
match_strtab_put(struct strtab *t, uint64_t h, const char *s, size_t len)
{
	struct strent *e;
	size_t i;

	assert(len <= MATCH_PAT_MAX);
	if ((e = (struct strent *)match_strtab_find(t, h, s, len)) != NULL)
		return e;
	if ((t->n + 1) * 2 > t->cap && strtab_grow(t) == -1)
		return NULL;
	for (i = strtab_idx(t, h); t->slot[i].s != NULL;
	    i = (i + 1) & (t->cap - 1))
		;
	e = &t->slot[i];
	if ((e->s = malloc(len + 1)) == NULL)
		return NULL;
	str_lower(e->s, len + 1, s, len);
	e->len = len;
	e->h = h;
	e->val = 0;
	t->n++;
	if (len > t->maxlen)
		t->maxlen = len;
	t->lens[len / 64] |= (uint64_t)1 << (len % 64);
	return e;
}

void
match_strtab_fini(struct strtab *t)
{
	size_t i;

	for (i = 0; i < t->cap; i++)
		free(t->slot[i].s);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}

/*
 * Glob with * and ?, p already lower-cased. Iterative, remembering only
 * the last star: a later star supersedes earlier ones, so backtracking
 * never nests and the worst case is O(plen * slen), not exponential.
 */
static int
glob_match(const char *p, size_t plen, const char *s, size_t slen)
{
	size_t pi = 0, si = 0, star = SIZE_MAX, mark = 0;

	while (si < slen) {
		if (pi < plen && p[pi] == '*') {
			star = pi++;
			mark = si;
		} else if (pi < plen && (p[pi] == '?' ||
		    p[pi] == lc((unsigned char)s[si]))) {
			pi++;
			si++;
		} else if (star != SIZE_MAX) {
			pi = star + 1;
			si = ++mark;
		} else
			return 0;
	}
	while (pi < plen && p[pi] == '*')
		pi++;
	return pi == plen;
}

/*
 * Per-thread PCRE2 state: the match data (every match writes into it) and
 * a JIT stack (the default 32 KiB on the machine stack already fails
 * "^([a-z]|\.)+$" on a 1 KB value). Sharing either would need a lock on
 * the stage path. The block is cached in a _Thread_local (the allowed
 * exception to "no mutable globals") and registered under a pthread key
 * whose destructor frees it when a libmilter worker exits. The key and
 * tls_key_ok are written once, inside pthread_once, and then only read.
 */
struct re_tls {
	pcre2_match_data	*md;
	pcre2_jit_stack		*js;	/* NULL: PCRE2's 32 KiB default */
};

static pthread_once_t tls_once = PTHREAD_ONCE_INIT;
static pthread_key_t tls_key;
static int tls_key_ok;
static _Thread_local struct re_tls *re_tls;

static void
tls_destroy(void *p)
{
	struct re_tls *t = p;

	pcre2_match_data_free(t->md);
	pcre2_jit_stack_free(t->js);
	free(t);
}

static void
tls_key_init(void)
{
	tls_key_ok = pthread_key_create(&tls_key, tls_destroy) == 0;
}

/* Called by PCRE2 when JIT code starts, on the matching thread. */
static pcre2_jit_stack *
jit_stack_cb(void *unused)
{
	(void)unused;
	return re_tls != NULL ? re_tls->js : NULL;
}

static pcre2_match_data *
thread_md(void)
{
	struct re_tls *t;

	if (re_tls != NULL)
		return re_tls->md;
	(void)pthread_once(&tls_once, tls_key_init);
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return NULL;
	/* One ovector pair: conditions need "matched or not", no groups. */
	if ((t->md = pcre2_match_data_create(1, NULL)) == NULL) {
		free(t);
		return NULL;
	}
	/* Address space is reserved up front, pages are used on demand. */
	t->js = pcre2_jit_stack_create(RE_JIT_STACK_MIN, RE_JIT_STACK_MAX,
	    NULL);
	/* Without the key the block outlives its thread: a small leak. */
	if (tls_key_ok)
		(void)pthread_setspecific(tls_key, t);
	re_tls = t;
	return t->md;
}

struct match_set *
match_set_new(void)
{
	return calloc(1, sizeof(struct match_set));
}

void
match_set_free(struct match_set *m)
{
	size_t i;

	if (m == NULL)
		return;
	match_strtab_fini(&m->exact);
	match_strtab_fini(&m->prefix);
	match_strtab_fini(&m->suffix);
	for (i = 0; i < m->nglob; i++)
		free(m->glob[i].p);
	free(m->glob);
	for (i = 0; i < m->nre; i++)
		pcre2_code_free(m->re[i]);
	free(m->re);
	pcre2_match_context_free(m->mctx);
	free(m);
}

static int
set_add_glob(struct match_set *m, const char *pat, size_t len)
{
	struct glob *ng;
	size_t ncap;
	char *p;

	if (m->nglob == m->globcap) {
		ncap = m->globcap ? m->globcap * 2 : 8;
		if ((ng = realloc(m->glob, ncap * sizeof(*ng))) == NULL)
			return -1;
		m->glob = ng;
		m->globcap = ncap;
	}
	if ((p = malloc(len + 1)) == NULL)
		return -1;
	str_lower(p, len + 1, pat, len);
	m->glob[m->nglob].p = p;
	m->glob[m->nglob].len = len;
	m->nglob++;
	return 0;
}

static int
set_add_regex(struct match_set *m, const char *pat, size_t len,
    const struct match_src *src, struct diag *d)
{
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE off;
	pcre2_code *re, **nre;
	size_t ncap;
	int ec;

	/* Postfix pcre: flags have no meaning here (always caseless). */
	if (len < 2 || pat[len - 1] != '/') {
		diag_err(d, src->file, src->line, "%.*s: a regex must end "
		    "with '/' (no flags; matching is always case-insensitive)",
		    (int)(len > 80 ? 80 : len), pat);
		return -1;
	}
	if (m->mctx == NULL) {
		if ((m->mctx = pcre2_match_context_create(NULL)) == NULL)
			goto oom;
		pcre2_set_match_limit(m->mctx, RE_MATCH_LIMIT);
		pcre2_set_depth_limit(m->mctx, RE_DEPTH_LIMIT);
		pcre2_set_heap_limit(m->mctx, RE_HEAP_KIB);
		pcre2_jit_stack_assign(m->mctx, jit_stack_cb, NULL);
	}
	if (m->nre == m->recap) {
		ncap = m->recap ? m->recap * 2 : 4;
		if ((nre = realloc(m->re, ncap * sizeof(*nre))) == NULL)
			goto oom;
		m->re = nre;
		m->recap = ncap;
	}
	re = pcre2_compile((PCRE2_SPTR)pat + 1, len - 2, RE_OPTIONS, &ec, &off,
	    NULL);
	if (re == NULL) {
		if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
			str_copy((char *)msg, sizeof(msg), "unknown error", 13);
		diag_err(d, src->file, src->line, "bad regex %.*s: %s at "
		    "offset %zu", (int)(len > 80 ? 80 : len), pat,
		    (char *)msg, (size_t)off);
		return -1;
	}
	/*
	 * A failure only means no JIT on this platform or for this pattern;
	 * pcre2_match() then runs the interpreter under the same limits.
	 */
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	m->re[m->nre++] = re;
	return 0;
oom:
	diag_err(d, src->file, src->line, "out of memory");
	return -1;
}

static int
set_line(void *arg, const char *line, size_t len,
    const struct match_src *lsrc, struct diag *d)
{
	return match_set_add_len(arg, line, len, lsrc, 1, d);
}

/* nested: pat comes from a list, where file: is not allowed. */
int
match_set_add_len(struct match_set *m, const char *pat, size_t len,
    const struct match_src *src, int nested, struct diag *d)
{
	const char *star, *q;
	int r = 0;

	if (len > MATCH_PAT_MAX) {
		diag_err(d, src->file, src->line, "%.40s...: pattern longer "
		    "than %d bytes", pat, MATCH_PAT_MAX);
		return -1;
	}
	if (len >= 5 && memcmp(pat, "file:", 5) == 0) {
		if (nested) {
			diag_err(d, src->file, src->line, "%.*s: file: is not "
			    "allowed inside a list", (int)len, pat);
			return -1;
		}
		return match_list_load(pat + 5, src, d, set_line, m);
	}
	if (len > 0 && pat[0] == '/')
		return set_add_regex(m, pat, len, src, d);
	star = memchr(pat, '*', len);
	q = memchr(pat, '?', len);
	if (star == NULL && q == NULL) {
		if (match_strtab_put(&m->exact, match_hash_fwd(pat, len), pat,
		    len) == NULL)
			r = -1;
	} else if (q == NULL && star == pat &&
	    memchr(pat + 1, '*', len - 1) == NULL) {
		if (match_strtab_put(&m->suffix, hash_rev(pat + 1, len - 1),
		    pat + 1, len - 1) == NULL)
			r = -1;
	} else if (q == NULL && star == pat + len - 1) {
		if (match_strtab_put(&m->prefix, match_hash_fwd(pat, len - 1),
		    pat, len - 1) == NULL)
			r = -1;
	} else
		r = set_add_glob(m, pat, len);
	if (r == -1)
		diag_err(d, src->file, src->line, "out of memory");
	return r;
}

int
match_set_add(struct match_set *m, const char *pat,
    const struct match_src *src, struct diag *d)
{
	return match_set_add_len(m, pat, strlen(pat), src, 0, d);
}

/*
 * Prefixes and the exact value in one forward pass: the running hash
 * after L bytes is the key of a prefix pattern of length L, so each
 * length present costs one probe and the value is read once.
 */
static int
test_fwd(const struct match_set *m, const char *s, size_t len)
{
	size_t end = 0, l;
	uint64_t h = FNV_BASIS;
	int exact;

	exact = m->exact.n > 0 && len <= m->exact.maxlen;
	if (m->prefix.n > 0)
		end = len < m->prefix.maxlen ? len : m->prefix.maxlen;
	if (exact)
		end = len;
	else if (m->prefix.n == 0)
		return 0;
	for (l = 0;; l++) {
		if (m->prefix.n > 0 && lens_has(&m->prefix, l) &&
		    match_strtab_find(&m->prefix, h, s, l) != NULL)
			return 1;
		if (l == end)
			break;
		h = fnv_step(h, (unsigned char)s[l]);
	}
	return exact && match_strtab_find(&m->exact, h, s, len) != NULL;
}

/* Suffixes likewise, reading the value from its end. */
static int
test_suffix(const struct match_set *m, const char *s, size_t len)
{
	size_t end, l;
	uint64_t h = FNV_BASIS;

	if (m->suffix.n == 0)
		return 0;
	end = len < m->suffix.maxlen ? len : m->suffix.maxlen;
	for (l = 0;; l++) {
		if (lens_has(&m->suffix, l) &&
		    match_strtab_find(&m->suffix, h, s + len - l, l) != NULL)
			return 1;
		if (l == end)
			return 0;
		h = fnv_step(h, (unsigned char)s[len - 1 - l]);
	}
}

/* A regex that fails at match time (a limit hit, no memory) is no match. */
static int
test_regex(const struct match_set *m, const char *s, size_t len)
{
	pcre2_match_data *md;
	size_t i;

	if (m->nre == 0 || (md = thread_md()) == NULL)
		return 0;
	for (i = 0; i < m->nre; i++)
		if (pcre2_match(m->re[i], (PCRE2_SPTR)s, len, 0, 0, md,
		    m->mctx) >= 0)
			return 1;
	return 0;
}

int
match_set_test(const struct match_set *m, const char *s, size_t len)
{
	size_t i;

	if (m == NULL)
		return 0;
	if (s == NULL) {
		if (len != 0)
			return 0;
		s = "";
	}
	if (test_fwd(m, s, len) || test_suffix(m, s, len))
		return 1;
	for (i = 0; i < m->nglob; i++)
		if (glob_match(m->glob[i].p, m->glob[i].len, s, len))
			return 1;
	return test_regex(m, s, len);
}

void
match_set_counts(const struct match_set *m, struct match_counts *c)
{
	memset(c, 0, sizeof(*c));
	if (m == NULL)
		return;
	c->exact = m->exact.n;
	c->glob = m->prefix.n + m->suffix.n + m->nglob;
	c->regex = m->nre;
}

/*
 * match.c - condition primitives compiled into their cheapest form
 * (DESIGN.md §3, §4b): pattern sets, CIDR prefix tables, owner maps.
 * Owns: compiling patterns at load, testing values on the stage path.
 * Not: which condition uses a list (rules.c), logging (log.c).
 * Threads: compiled objects are immutable and shared; the only per-thread
 * state is PCRE2's match data and JIT stack (see thread_md()). Tests take
 * no lock and allocate nothing but that state, once per thread.
 * Errors: load problems go to the caller's diag as FILE:LINE (lines of a
 * file: list name the list's own file and line); tests never fail.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "match.h"
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

#define LENS_WORDS	((MATCH_PAT_MAX + 64) / 64)
#define FNV_BASIS	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL

/* An interned lower-cased key; s == NULL marks an empty slot. */
struct strent {
	char		*s;
	size_t		 len;
	uint64_t	 h;
	size_t		 val;		/* owner maps: index of the login */
};

/*
 * Open addressing with linear probing, at most half full. Lookups hash
 * client input, but the table is fixed at load and only its own keys
 * decide how long a probe runs, so no seed is needed against flooding.
 */
struct strtab {
	struct strent	*slot;
	size_t		 cap;		/* 0 or a power of two */
	size_t		 n;
	size_t		 maxlen;
	uint64_t	 lens[LENS_WORDS];	/* bit L: a key of L bytes */
};

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

static uint64_t
hash_fwd(const char *s, size_t len)
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

static const struct strent *
strtab_find(const struct strtab *t, uint64_t h, const char *s, size_t len)
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
static struct strent *
strtab_put(struct strtab *t, uint64_t h, const char *s, size_t len)
{
	struct strent *e;
	size_t i;

	assert(len <= MATCH_PAT_MAX);
	if ((e = (struct strent *)strtab_find(t, h, s, len)) != NULL)
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

static void
strtab_fini(struct strtab *t)
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
	strtab_fini(&m->exact);
	strtab_fini(&m->prefix);
	strtab_fini(&m->suffix);
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

static int	set_add(struct match_set *, const char *, size_t,
		    const struct match_src *, int, struct diag *) WARN_UNUSED;
/* fn gets each line of a list, with the list's own FILE:LINE. */
static int	list_load(const char *, const struct match_src *,
		    struct diag *, int (*)(void *, const char *, size_t,
		    const struct match_src *, struct diag *),
		    void *) WARN_UNUSED;

static int
set_line(void *arg, const char *line, size_t len,
    const struct match_src *lsrc, struct diag *d)
{
	return set_add(arg, line, len, lsrc, 1, d);
}

/* nested: pat comes from a list, where file: is not allowed. */
static int
set_add(struct match_set *m, const char *pat, size_t len,
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
		return list_load(pat + 5, src, d, set_line, m);
	}
	if (len > 0 && pat[0] == '/')
		return set_add_regex(m, pat, len, src, d);
	star = memchr(pat, '*', len);
	q = memchr(pat, '?', len);
	if (star == NULL && q == NULL) {
		if (strtab_put(&m->exact, hash_fwd(pat, len), pat, len) == NULL)
			r = -1;
	} else if (q == NULL && star == pat &&
	    memchr(pat + 1, '*', len - 1) == NULL) {
		if (strtab_put(&m->suffix, hash_rev(pat + 1, len - 1), pat + 1,
		    len - 1) == NULL)
			r = -1;
	} else if (q == NULL && star == pat + len - 1) {
		if (strtab_put(&m->prefix, hash_fwd(pat, len - 1), pat,
		    len - 1) == NULL)
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
	return set_add(m, pat, strlen(pat), src, 0, d);
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
		    strtab_find(&m->prefix, h, s, l) != NULL)
			return 1;
		if (l == end)
			break;
		h = fnv_step(h, (unsigned char)s[l]);
	}
	return exact && strtab_find(&m->exact, h, s, len) != NULL;
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
		    strtab_find(&m->suffix, h, s + len - l, l) != NULL)
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

/* ---- files ---- */

static void
set_err(char *err, size_t errlen, const char *what, int e)
{
	char eb[128];

	if (err == NULL || errlen == 0)
		return;
	if (e != 0)
		snprintf(err, errlen, "%s: %s", what,
		    strerror_r(e, eb, sizeof(eb)));
	else
		snprintf(err, errlen, "%s", what);
}

/*
 * Debian gives each user a group of their own and umask 002: a file
 * writable by its owner's own, member-less group is the owner's alone.
 */
static int
private_group(uid_t uid, gid_t gid)
{
	struct passwd pw, *pwr = NULL;
	struct group gr, *grr = NULL;
	char pbuf[2048], gbuf[4096];

	if (getpwuid_r(uid, &pw, pbuf, sizeof(pbuf), &pwr) != 0 ||
	    pwr == NULL || pw.pw_gid != gid ||
	    getgrgid_r(gid, &gr, gbuf, sizeof(gbuf), &grr) != 0 || grr == NULL)
		return 0;
	return strcmp(gr.gr_name, pw.pw_name) == 0 &&
	    (gr.gr_mem == NULL || gr.gr_mem[0] == NULL);
}

void
match_file_perms(const char *path, int secret, struct diag *d)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return;
	if ((st.st_mode & S_IWOTH) || ((st.st_mode & S_IWGRP) &&
	    !private_group(st.st_uid, st.st_gid)))
		diag_warn(d, path, 0, "writable by %s (mode %04o): whoever "
		    "can write it sets the mail policy",
		    st.st_mode & S_IWOTH ? "everyone" : "its group",
		    (unsigned)(st.st_mode & 07777));
	if (secret && (st.st_mode & S_IROTH))
		diag_warn(d, path, 0, "holds a password or key_secret and is "
		    "readable by everyone (mode %04o): chmod o-r",
		    (unsigned)(st.st_mode & 07777));
}

char *
match_read_file(const char *path, size_t max, size_t *len_out, char *err,
    size_t errlen)
{
	struct stat st;
	char *buf = NULL, *nul, what[64];
	size_t n = 0, size;
	ssize_t r;
	int fd;

	if (len_out != NULL)
		*len_out = 0;
	/* O_NONBLOCK: a FIFO must not hang the load before fstat sees it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1) {
		set_err(err, errlen, "cannot open", errno);
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		set_err(err, errlen, "cannot stat", errno);
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(err, errlen, "not a regular file", 0);
		goto fail;
	}
	if ((uintmax_t)st.st_size > max) {
		snprintf(what, sizeof(what), "larger than %zu bytes", max);
		set_err(err, errlen, what, 0);
		goto fail;
	}
	size = (size_t)st.st_size;
	if ((buf = malloc(size + 1)) == NULL) {
		set_err(err, errlen, "out of memory", 0);
		goto fail;
	}
	/* A file that shrinks meanwhile ends early; one that grows is cut. */
	while (n < size) {
		r = read(fd, buf + n, size - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1) {
			set_err(err, errlen, "cannot read", errno);
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if ((nul = memchr(buf, '\0', n)) != NULL) {
		snprintf(what, sizeof(what), "binary file (NUL byte at offset "
		    "%zu)", (size_t)(nul - buf));
		set_err(err, errlen, what, 0);
		goto fail;
	}
	buf[n] = '\0';
	(void)close(fd);
	if (len_out != NULL)
		*len_out = n;
	return buf;
fail:
	free(buf);
	(void)close(fd);
	return NULL;
}

/* path relative to src->basedir unless absolute; 0, or -1 if too long. */
static int
path_resolve(char *buf, size_t len, const char *path,
    const struct match_src *src)
{
	int n;

	if (path[0] == '/' || src->basedir == NULL || src->basedir[0] == '\0')
		n = snprintf(buf, len, "%s", path);
	else
		n = snprintf(buf, len, "%s/%s", src->basedir, path);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static int
is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/*
 * Reads a list (file errors at src's FILE:LINE) and hands each line to fn
 * with its own FILE:LINE: surrounding blanks and a CR are cut, blank lines
 * and lines starting with '#' are skipped. Goes on after a bad line so
 * that `warden check` reports every one.
 */
static int
list_load(const char *path, const struct match_src *src, struct diag *d,
    int (*fn)(void *, const char *, size_t, const struct match_src *,
    struct diag *), void *arg)
{
	struct match_src lsrc;
	char full[PATH_MAX], err[192];
	char *buf;
	const char *p, *e, *nl;
	size_t len;
	int r = 0, lineno = 0;

	if (path[0] == '\0' || path_resolve(full, sizeof(full), path, src)) {
		diag_err(d, src->file, src->line, "file:%.200s: bad path",
		    path);
		return -1;
	}
	buf = match_read_file(full, MATCH_FILE_MAX, &len, err, sizeof(err));
	if (buf == NULL) {
		diag_err(d, src->file, src->line, "%s: %s", full, err);
		return -1;
	}
	match_file_perms(full, 0, d);
	lsrc.file = full;
	lsrc.basedir = src->basedir;
	for (p = buf; p < buf + len; p = nl + 1) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(buf + len - p))) == NULL)
			nl = buf + len;
		for (e = nl; e > p && is_blank((unsigned char)e[-1]); e--)
			;
		while (p < e && is_blank((unsigned char)*p))
			p++;
		if (p == e || *p == '#')
			continue;
		lsrc.line = lineno;
		if (fn(arg, p, (size_t)(e - p), &lsrc, d) == -1)
			r = -1;
	}
	free(buf);
	return r;
}

/* ---- IP addresses and CIDR ---- */

/* Parses without folding IPv4-mapped IPv6 into IPv4. */
static int
ip_parse_raw(const char *s, size_t len, struct match_ip *out)
{
	char buf[64];
	const char *p = s;
	int v6only = 0;

	memset(out, 0, sizeof(*out));
	if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
		p++;
		len -= 2;
	}
	/* Sendmail writes {client_addr} of IPv6 peers as "IPv6:addr". */
	if (len > 5 && strncasecmp(p, "IPv6:", 5) == 0) {
		p += 5;
		len -= 5;
		v6only = 1;
	}
	if (len == 0 || len >= sizeof(buf) || memchr(p, '\0', len) != NULL)
		return -1;
	memcpy(buf, p, len);
	buf[len] = '\0';
	if (memchr(buf, ':', len) != NULL) {
		if (inet_pton(AF_INET6, buf, out->a) != 1)
			return -1;
		out->family = 6;
	} else {
		if (v6only || inet_pton(AF_INET, buf, out->a) != 1)
			return -1;
		out->family = 4;
	}
	return 0;
}

static int
ip_is_mapped(const struct match_ip *ip)
{
	static const uint8_t pfx[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xff, 0xff };

	return ip->family == 6 && memcmp(ip->a, pfx, sizeof(pfx)) == 0;
}

static void
ip_unmap(struct match_ip *ip)
{
	memmove(ip->a, ip->a + 12, 4);
	memset(ip->a + 4, 0, 12);
	ip->family = 4;
}

int
match_ip_parse(const char *s, size_t len, struct match_ip *out)
{
	if (s == NULL || ip_parse_raw(s, len, out) == -1) {
		if (out != NULL)
			memset(out, 0, sizeof(*out));
		return -1;
	}
	if (ip_is_mapped(out))
		ip_unmap(out);
	return 0;
}

void
match_ip_mask(struct match_ip *ip, unsigned prefix)
{
	unsigned bits = ip->family == 4 ? 32 : 128, i;

	if (prefix > bits)
		prefix = bits;
	for (i = prefix / 8; i < 16; i++) {
		if (i == prefix / 8 && prefix % 8 != 0)
			ip->a[i] &= (uint8_t)(0xff << (8 - prefix % 8));
		else
			ip->a[i] = 0;
	}
}

const char *
match_ip_format(const struct match_ip *ip, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	buf[0] = '\0';
	if ((ip->family == 4 && inet_ntop(AF_INET, ip->a, buf,
	    (socklen_t)len) == NULL) || (ip->family == 6 &&
	    inet_ntop(AF_INET6, ip->a, buf, (socklen_t)len) == NULL))
		buf[0] = '\0';
	return buf;
}

/*
 * A network as a 128-bit big-endian number: IPv4 sits in the top 32 bits,
 * so one mask and compare serves both families (kept in separate tables).
 */
struct cnet {
	uint64_t	hi, lo;
	unsigned	prefix;
};

struct cgroup {
	unsigned	prefix;
	size_t		start, n;
};

struct cfam {
	struct cnet	*v;
	size_t		 n, cap;
	struct cgroup	 grp[129];	/* distinct prefixes, longest first */
	size_t		 ngrp;
};

struct match_cidr {
	struct cfam	v4, v6;
	int		compiled;
};

static uint64_t
be64(const uint8_t *a)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | a[i];
	return v;
}

static void
cnet_set(struct cnet *c, const struct match_ip *ip, unsigned prefix)
{
	c->hi = be64(ip->a);
	c->lo = ip->family == 4 ? 0 : be64(ip->a + 8);
	c->prefix = prefix;
}

/* prefix counts from the top of the 128 bits. */
static void
cnet_mask(uint64_t *hi, uint64_t *lo, unsigned prefix)
{
	if (prefix == 0) {
		*hi = *lo = 0;
	} else if (prefix <= 64) {
		*hi &= ~(uint64_t)0 << (64 - prefix);
		*lo = 0;
	} else
		*lo &= ~(uint64_t)0 << (128 - prefix);
}

struct match_cidr *
match_cidr_new(void)
{
	return calloc(1, sizeof(struct match_cidr));
}

void
match_cidr_free(struct match_cidr *c)
{
	if (c == NULL)
		return;
	free(c->v4.v);
	free(c->v6.v);
	free(c);
}

static int
cidr_push(struct cfam *f, const struct cnet *c)
{
	struct cnet *nv;
	size_t ncap;

	if (f->n == f->cap) {
		ncap = f->cap ? f->cap * 2 : 16;
		if ((nv = realloc(f->v, ncap * sizeof(*nv))) == NULL)
			return -1;
		f->v = nv;
		f->cap = ncap;
	}
	f->v[f->n++] = *c;
	return 0;
}

static int	cidr_add(struct match_cidr *, const char *, size_t,
		    const struct match_src *, int, struct diag *) WARN_UNUSED;

static int
cidr_line(void *arg, const char *line, size_t len,
    const struct match_src *lsrc, struct diag *d)
{
	return cidr_add(arg, line, len, lsrc, 1, d);
}

/* "ADDR[/LEN]" into ip and prefix; -1 after a diag. */
static int
cidr_parse(const char *net, size_t len, const struct match_src *src,
    struct diag *d, struct match_ip *ip, unsigned *prefix_out)
{
	const char *slash = memchr(net, '/', len);
	char pbuf[4];
	long long v;
	unsigned bits, prefix;
	int n = (int)(len > 80 ? 80 : len);

	if (ip_parse_raw(net, slash ? (size_t)(slash - net) : len, ip) == -1) {
		diag_err(d, src->file, src->line, "%.*s: not an IP address "
		    "or network", n, net);
		return -1;
	}
	bits = ip->family == 4 ? 32 : 128;
	prefix = bits;
	if (slash != NULL) {
		len -= (size_t)(slash + 1 - net);
		if (len == 0 || len >= sizeof(pbuf) ||
		    str_copy(pbuf, sizeof(pbuf), slash + 1, len) != 0 ||
		    str_to_ll(pbuf, 0, bits, &v) == -1) {
			diag_err(d, src->file, src->line, "%.*s: prefix length "
			    "must be a number in 0..%u", n, net, bits);
			return -1;
		}
		prefix = (unsigned)v;
	}
	/*
	 * Clients given as ::ffff:a.b.c.d are matched as IPv4, so a mapped
	 * network becomes the IPv4 one; a shorter prefix is left as IPv6.
	 */
	if (ip_is_mapped(ip) && prefix >= 96) {
		ip_unmap(ip);
		prefix -= 96;
	}
	*prefix_out = prefix;
	return 0;
}

/* nested: net comes from a list, where file: is not allowed. */
static int
cidr_add(struct match_cidr *c, const char *net, size_t len,
    const struct match_src *src, int nested, struct diag *d)
{
	struct match_ip ip, masked;
	struct cnet cn;
	char abuf[INET6_ADDRSTRLEN];
	unsigned prefix;

	if (len >= 5 && memcmp(net, "file:", 5) == 0) {
		if (nested) {
			diag_err(d, src->file, src->line, "%.*s: file: is not "
			    "allowed inside a list", (int)(len > 80 ? 80 : len),
			    net);
			return -1;
		}
		return list_load(net + 5, src, d, cidr_line, c);
	}
	if (cidr_parse(net, len, src, d, &ip, &prefix) == -1)
		return -1;
	masked = ip;
	match_ip_mask(&masked, prefix);
	/* As Postfix cidr tables: a likely typo, but its meaning is clear. */
	if (memcmp(masked.a, ip.a, sizeof(ip.a)) != 0)
		diag_warn(d, src->file, src->line, "%.*s has host bits set; "
		    "using %s/%u", (int)(len > 80 ? 80 : len), net,
		    match_ip_format(&masked, abuf, sizeof(abuf)), prefix);
	/* IPv4 sits in the top 32 bits: its prefix counts from there too. */
	cnet_set(&cn, &masked, prefix);
	if (cidr_push(masked.family == 4 ? &c->v4 : &c->v6, &cn) == -1) {
		diag_err(d, src->file, src->line, "out of memory");
		return -1;
	}
	c->compiled = 0;
	return 0;
}

int
match_cidr_add(struct match_cidr *c, const char *net,
    const struct match_src *src, struct diag *d)
{
	return cidr_add(c, net, strlen(net), src, 0, d);
}

/* Longest prefix first, then by address, so each group is sorted. */
static int
cnet_cmp(const void *a, const void *b)
{
	const struct cnet *x = a, *y = b;

	if (x->prefix != y->prefix)
		return x->prefix > y->prefix ? -1 : 1;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return 0;
}

static void
cfam_compile(struct cfam *f)
{
	size_t i, n = 0;

	f->ngrp = 0;
	if (f->n == 0)
		return;
	qsort(f->v, f->n, sizeof(*f->v), cnet_cmp);
	for (i = 0; i < f->n; i++)
		if (n == 0 || cnet_cmp(&f->v[n - 1], &f->v[i]) != 0)
			f->v[n++] = f->v[i];
	f->n = n;
	for (i = 0; i < n; i++) {
		if (f->ngrp == 0 ||
		    f->grp[f->ngrp - 1].prefix != f->v[i].prefix) {
			f->grp[f->ngrp].prefix = f->v[i].prefix;
			f->grp[f->ngrp].start = i;
			f->grp[f->ngrp].n = 0;
			f->ngrp++;
		}
		f->grp[f->ngrp - 1].n++;
	}
}

void
match_cidr_compile(struct match_cidr *c)
{
	cfam_compile(&c->v4);
	cfam_compile(&c->v6);
	c->compiled = 1;
}

int
match_cidr_test(const struct match_cidr *c, const struct match_ip *ip)
{
	const struct cfam *f;
	const struct cgroup *g;
	const struct cnet *v;
	struct cnet key;
	size_t i, lo, hi, mid;
	uint64_t h, l;

	if (c == NULL || ip == NULL || (ip->family != 4 && ip->family != 6))
		return 0;
	/* Testing an uncompiled list is our bug, not the client's. */
	assert(c->compiled);
	f = ip->family == 4 ? &c->v4 : &c->v6;
	cnet_set(&key, ip, 0);
	for (i = 0; i < f->ngrp; i++) {
		g = &f->grp[i];
		h = key.hi;
		l = key.lo;
		cnet_mask(&h, &l, g->prefix);
		v = f->v + g->start;
		lo = 0;
		hi = g->n;
		while (lo < hi) {
			mid = lo + (hi - lo) / 2;
			if (v[mid].hi == h && v[mid].lo == l)
				return 1;
			if (v[mid].hi < h || (v[mid].hi == h && v[mid].lo < l))
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	return 0;
}

size_t
match_cidr_count(const struct match_cidr *c)
{
	return c == NULL ? 0 : c->v4.n + c->v6.n;
}

/* ---- owner maps ---- */

/* What one login may send as: whole addresses, and domain parts. */
struct owner {
	struct match_set *addr;
	struct match_set *dom;		/* "@P": P against the domain part */
};

struct match_owners {
	struct strtab	 login;		/* val: index into own */
	struct owner	*own;
	size_t		 n, cap;
};

void
match_owners_free(struct match_owners *m)
{
	size_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n; i++) {
		match_set_free(m->own[i].addr);
		match_set_free(m->own[i].dom);
	}
	free(m->own);
	strtab_fini(&m->login);
	free(m);
}

/* The login's owner, created on first sight; NULL: out of memory. */
static struct owner *
owners_get(struct match_owners *m, const char *login, size_t len)
{
	struct strent *e;
	struct owner *no;
	size_t ncap;

	if ((e = strtab_put(&m->login, hash_fwd(login, len), login,
	    len)) == NULL)
		return NULL;
	/*
	 * A login on several lines gets the union of their patterns: long
	 * lists are easier to keep one address a line, and no pattern can
	 * conflict with another (a list holds if any element holds).
	 */
	if (e->val != 0)
		return &m->own[e->val - 1];
	if (m->n == m->cap) {
		ncap = m->cap ? m->cap * 2 : 16;
		if ((no = realloc(m->own, ncap * sizeof(*no))) == NULL)
			return NULL;
		m->own = no;
		m->cap = ncap;
	}
	memset(&m->own[m->n], 0, sizeof(m->own[m->n]));
	e->val = ++m->n;
	return &m->own[m->n - 1];
}

static int
owner_pattern(struct owner *o, const char *p, size_t len,
    const struct match_src *lsrc, struct diag *d)
{
	struct match_set **setp = &o->addr;

	if (len > 0 && p[0] == '@') {
		if (len == 1 || memchr(p + 1, '@', len - 1) != NULL) {
			p++;
			len--;
			diag_err(d, lsrc->file, lsrc->line, "@%.*s: want "
			    "@domain or @*.domain", (int)(len > 80 ? 80 : len),
			    p);
			return -1;
		}
		p++;
		len--;
		setp = &o->dom;
	}
	if (*setp == NULL && (*setp = match_set_new()) == NULL) {
		diag_err(d, lsrc->file, lsrc->line, "out of memory");
		return -1;
	}
	return set_add(*setp, p, len, lsrc, 1, d);
}

static int
owners_line(void *arg, const char *line, size_t len,
    const struct match_src *lsrc, struct diag *d)
{
	struct match_owners *m = arg;
	struct owner *o;
	const char *p = line, *end = line + len, *tok;
	size_t llen;
	int r = 0, npat = 0;

	while (p < end && !is_blank((unsigned char)*p))
		p++;
	llen = (size_t)(p - line);
	if (llen > MATCH_PAT_MAX) {
		diag_err(d, lsrc->file, lsrc->line, "login longer than %d "
		    "bytes", MATCH_PAT_MAX);
		return -1;
	}
	if ((o = owners_get(m, line, llen)) == NULL) {
		diag_err(d, lsrc->file, lsrc->line, "out of memory");
		return -1;
	}
	for (;;) {
		while (p < end && is_blank((unsigned char)*p))
			p++;
		if (p == end)
			break;
		for (tok = p; p < end && !is_blank((unsigned char)*p); p++)
			;
		npat++;
		if (owner_pattern(o, tok, (size_t)(p - tok), lsrc, d) == -1)
			r = -1;
	}
	if (npat == 0) {
		diag_err(d, lsrc->file, lsrc->line, "login %.*s has no sender "
		    "pattern", (int)(llen > 80 ? 80 : llen), line);
		return -1;
	}
	return r;
}

struct match_owners *
match_owners_load(const char *path, const struct match_src *src,
    struct diag *d)
{
	struct match_owners *m;

	if ((m = calloc(1, sizeof(*m))) == NULL) {
		diag_err(d, src->file, src->line, "out of memory");
		return NULL;
	}
	if (list_load(path, src, d, owners_line, m) == -1) {
		match_owners_free(m);
		return NULL;
	}
	return m;
}

int
match_owners_test(const struct match_owners *m, const char *login,
    const char *sender)
{
	const struct strent *e;
	const struct owner *o;
	const char *at, *dom;
	size_t llen, slen, dlen;

	if (m == NULL || login == NULL || sender == NULL)
		return 0;
	llen = strlen(login);
	if (llen == 0 || llen > MATCH_PAT_MAX ||
	    (e = strtab_find(&m->login, hash_fwd(login, llen), login,
	    llen)) == NULL)
		return 0;
	o = &m->own[e->val - 1];
	slen = strlen(sender);
	if (slen >= 2 && sender[0] == '<' && sender[slen - 1] == '>') {
		sender++;
		slen -= 2;
	}
	/* RFC 5321 null sender: bounces belong to nobody. */
	if (slen == 0)
		return 0;
	if (o->addr != NULL && match_set_test(o->addr, sender, slen))
		return 1;
	if (o->dom == NULL || (at = memrchr(sender, '@', slen)) == NULL)
		return 0;
	dom = at + 1;
	dlen = (size_t)(sender + slen - dom);
	/*
	 * An empty first label is no domain; refusing it also keeps
	 * "@*.example.com" (suffix ".example.com") off "x@.example.com".
	 */
	if (dlen == 0 || dom[0] == '.')
		return 0;
	return match_set_test(o->dom, dom, dlen);
}

/*
 * bench_match.c - cost of one condition test on the stage path: an exact
 * set of 10,000 entries, a CIDR list of 10,000 networks, suffix globs and
 * a JIT-compiled regex. Prints "name value unit" lines, nothing else.
 * Owns: figures for DESIGN.md §4b ("cheapest form"). Not: pass/fail;
 * there are no timing asserts, machines differ.
 * Threads: one. Errors: exits 1 if a list fails to load or a result is
 * wrong (a fast wrong answer is no figure).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "diag.h"
#include "match.h"

#define ROUNDS	2000000L

/*
 * Counting allocator: the stage path must not allocate, and glibc 2.34+
 * has no malloc hooks, so the program interposes malloc/calloc/realloc
 * (PCRE2 allocates through them too) and forwards to glibc. The counter
 * is the one mutable global here: a benchmark driver, not library code.
 */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static atomic_ulong nalloc;

void *
malloc(size_t n)
{
	atomic_fetch_add_explicit(&nalloc, 1, memory_order_relaxed);
	return __libc_malloc(n);
}

void *
calloc(size_t n, size_t m)
{
	atomic_fetch_add_explicit(&nalloc, 1, memory_order_relaxed);
	return __libc_calloc(n, m);
}

void *
realloc(void *p, size_t n)
{
	atomic_fetch_add_explicit(&nalloc, 1, memory_order_relaxed);
	return __libc_realloc(p, n);
}

static double
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

struct probe {
	const char	*val;
	int		 want;
};

/* Times ROUNDS tests cycling through probes; checks every answer. */
static int
bench_set(const char *name, const struct match_set *m,
    const struct probe *p, size_t np)
{
	size_t lens[16], i;
	unsigned long a0;
	double t0, t1;
	long r;
	int bad = 0;

	for (i = 0; i < np; i++) {
		lens[i] = strlen(p[i].val);
		/* warm-up: the first regex use allocates per-thread state */
		if (match_set_test(m, p[i].val, lens[i]) != p[i].want) {
			fprintf(stderr, "%s: %s: wrong answer\n", name,
			    p[i].val);
			return -1;
		}
	}
	a0 = atomic_load(&nalloc);
	t0 = mono_ns();
	for (r = 0; r < ROUNDS; r++) {
		i = (size_t)r % np;
		bad |= match_set_test(m, p[i].val, lens[i]) != p[i].want;
	}
	t1 = mono_ns();
	printf("%s %.1f ns/test\n", name, (t1 - t0) / ROUNDS);
	printf("%s_mallocs %.3f mallocs/test\n", name,
	    (double)(atomic_load(&nalloc) - a0) / ROUNDS);
	return bad ? -1 : 0;
}

static int
bench_cidr(const char *name, const struct match_cidr *c,
    const struct match_ip *ip, const int *want, size_t n)
{
	unsigned long a0;
	double t0, t1;
	long r;
	size_t i;
	int bad = 0;

	a0 = atomic_load(&nalloc);
	t0 = mono_ns();
	for (r = 0; r < ROUNDS; r++) {
		i = (size_t)r % n;
		bad |= match_cidr_test(c, &ip[i]) != want[i];
	}
	t1 = mono_ns();
	printf("%s %.1f ns/test\n", name, (t1 - t0) / ROUNDS);
	printf("%s_mallocs %.3f mallocs/test\n", name,
	    (double)(atomic_load(&nalloc) - a0) / ROUNDS);
	return bad ? -1 : 0;
}

static struct match_set *
set_of(const char **pats, size_t n, struct diag *d)
{
	struct match_src src = { "bench", 1, NULL };
	struct match_set *m;
	size_t i;

	if ((m = match_set_new()) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		if (match_set_add(m, pats[i], &src, d) == -1) {
			match_set_free(m);
			return NULL;
		}
	return m;
}

static int
run_exact(struct diag *d)
{
	static const struct probe p[] = {
		{ "User4711@Example.COM", 1 }, { "user9999@example.com", 1 },
		{ "user10000@example.com", 0 }, { "someone@example.org", 0 },
	};
	struct match_src src = { "bench", 1, NULL };
	struct match_set *m;
	char buf[64];
	int i, r;

	if ((m = match_set_new()) == NULL)
		return -1;
	for (i = 0; i < 10000; i++) {
		snprintf(buf, sizeof(buf), "user%d@example.com", i);
		if (match_set_add(m, buf, &src, d) == -1) {
			match_set_free(m);
			return -1;
		}
	}
	r = bench_set("exact_10k", m, p, NELEM(p));
	match_set_free(m);
	return r;
}

static int
run_suffix(struct diag *d)
{
	static const char *one[] = { "*.example.com" };
	static const struct probe p[] = {
		{ "mx1.mail.EXAMPLE.com", 1 }, { "mail.example.org", 0 },
	};
	struct match_src src = { "bench", 1, NULL };
	struct match_set *m;
	char buf[64];
	int i, r;

	if ((m = set_of(one, NELEM(one), d)) == NULL)
		return -1;
	r = bench_set("suffix_1", m, p, NELEM(p));
	match_set_free(m);
	if (r == -1)
		return -1;
	/* 10,000 "*.domainN.example" of 9 distinct lengths */
	if ((m = match_set_new()) == NULL)
		return -1;
	for (i = 0; i < 10000; i++) {
		snprintf(buf, sizeof(buf), "*.d%d.example.com", i * 7);
		if (match_set_add(m, buf, &src, d) == -1) {
			match_set_free(m);
			return -1;
		}
	}
	{
		static const struct probe q[] = {
			{ "mx.d4907.example.com", 1 },
			{ "mx.d4908.example.com", 0 },
		};

		r = bench_set("suffix_10k", m, q, NELEM(q));
	}
	match_set_free(m);
	return r;
}

static int
run_regex(struct diag *d)
{
	static const char *pats[] = { "/^user[0-9]+@example\\.(com|org)$/" };
	static const struct probe p[] = {
		{ "USER1234@example.org", 1 }, { "user1234@example.net", 0 },
		{ "someone.else@example.com", 0 },
	};
	struct match_set *m;
	int r;

	if ((m = set_of(pats, NELEM(pats), d)) == NULL)
		return -1;
	r = bench_set("regex_jit", m, p, NELEM(p));
	match_set_free(m);
	return r;
}

/*
 * 10,000 networks: 5,000 IPv4 (/22 to /29, 10.0.0.0 + k * 1024) and 5,000
 * IPv6 (/48 to /62, 2001:db8:k::), so 8 prefix lengths per family.
 */
static int
run_cidr(struct diag *d)
{
	static const char *probes[] = { "10.19.72.77", "10.200.1.1",
	    "2001:db8:4e:1::1", "2001:db9::1" };
	static const int want[] = { 1, 0, 1, 0 };
	struct match_src src = { "bench", 1, NULL };
	struct match_ip ip[NELEM(probes)];
	struct match_cidr *c;
	char buf[80];
	unsigned long a;
	size_t i;
	int k, r;

	if ((c = match_cidr_new()) == NULL)
		return -1;
	for (k = 0; k < 5000; k++) {
		a = 0x0a000000UL + (unsigned long)k * 1024;
		snprintf(buf, sizeof(buf), "%lu.%lu.%lu.%lu/%d", a >> 24,
		    a >> 16 & 255, a >> 8 & 255, a & 255, 22 + k % 8);
		if (match_cidr_add(c, buf, &src, d) == -1)
			goto fail;
		snprintf(buf, sizeof(buf), "2001:db8:%x::/%d", k,
		    48 + (k % 8) * 2);
		if (match_cidr_add(c, buf, &src, d) == -1)
			goto fail;
	}
	match_cidr_compile(c);
	for (i = 0; i < NELEM(probes); i++)
		if (match_ip_parse(probes[i], strlen(probes[i]),
		    &ip[i]) == -1 || match_cidr_test(c, &ip[i]) != want[i]) {
			fprintf(stderr, "cidr: %s: wrong answer\n", probes[i]);
			match_cidr_free(c);
			return -1;
		}
	printf("cidr_10k_entries %zu networks\n", match_cidr_count(c));
	r = bench_cidr("cidr_10k", c, ip, want, NELEM(probes));
	match_cidr_free(c);
	return r;
fail:
	match_cidr_free(c);
	return -1;
}

int
main(void)
{
	struct diag d;
	int r = 0;

	diag_init(&d);
	if (run_exact(&d) == -1 || run_cidr(&d) == -1 ||
	    run_suffix(&d) == -1 || run_regex(&d) == -1)
		r = 1;
	if (d.errors > 0)
		diag_print(&d, stderr);
	diag_fini(&d);
	return r;
}

/*
 * match_ip.c - IP addresses and CIDR sets (DESIGN.md §3, §4b): parsing
 * and formatting client addresses, networks in prefix tables.
 * Owns: address syntax (brackets, Sendmail's "IPv6:", IPv4-mapped IPv6
 * folded to IPv4) and the sorted per-prefix tables of a CIDR set.
 * Not: reading file: lists (match_file.c), which condition uses a set.
 * Threads: a compiled set is immutable and shared; testing takes no lock
 * and allocates nothing.
 * Errors: load problems go to the caller's diag as FILE:LINE; parsing a
 * client's address returns -1; tests never fail.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "match_int.h"
#include "util.h"

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
		return match_list_load(net + 5, src, d, cidr_line, c);
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

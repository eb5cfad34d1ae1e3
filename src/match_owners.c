/*
 * match_owners.c - sender owner maps (DESIGN.md §4b): which envelope
 * senders a login may use, from a file of "LOGIN PATTERN..." lines.
 * Owns: the login table and each login's address and domain sets.
 * Not: pattern syntax (match.c), reading the file (match_file.c), where
 * the login comes from (the engine).
 * Threads: a loaded map is immutable and shared; testing takes no lock
 * and allocates nothing beyond what match_set_test may.
 * Errors: load problems go to the caller's diag as FILE:LINE of the map;
 * a map with any bad line is not returned; tests never fail.
 */
#include <stdlib.h>
#include <string.h>

#include "match_int.h"

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
	match_strtab_fini(&m->login);
	free(m);
}

/* The login's owner, created on first sight; NULL: out of memory. */
static struct owner *
owners_get(struct match_owners *m, const char *login, size_t len)
{
	struct strent *e;
	struct owner *no;
	size_t ncap;

	if ((e = match_strtab_put(&m->login, match_hash_fwd(login, len), login,
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
	return match_set_add_len(*setp, p, len, lsrc, 1, d);
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

	while (p < end && !match_is_blank((unsigned char)*p))
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
		while (p < end && match_is_blank((unsigned char)*p))
			p++;
		if (p == end)
			break;
		for (tok = p; p < end && !match_is_blank((unsigned char)*p);
		    p++)
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
	if (match_list_load(path, src, d, owners_line, m) == -1) {
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
	    (e = match_strtab_find(&m->login, match_hash_fwd(login, llen),
	    login, llen)) == NULL)
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

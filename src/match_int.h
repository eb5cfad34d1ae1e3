/*
 * match_int.h - what the files of the match module share and callers
 * must not see (only src/match*.c include it): match.c (pattern sets and
 * the string tables under them), match_file.c (reading files, file:
 * lists), match_ip.c (addresses, CIDR sets), match_owners.c (owner maps).
 * Owns: struct strtab and the calls between those files. Not: the public
 * interface (match.h), which callers keep using unchanged.
 * Threads: a table is written only while loading, then only read, from
 * any thread, without a lock.
 * Errors: as match.h: load problems go to the caller's diag.
 */
#ifndef WARDEN_MATCH_INT_H
#define WARDEN_MATCH_INT_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "match.h"

#define LENS_WORDS	((MATCH_PAT_MAX + 64) / 64)

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

/* The hash a table expects for s: FNV-1a of the lower-cased bytes. */
uint64_t match_hash_fwd(const char *s, size_t len);

/* The entry for s (h its hash), or NULL; borrowed, valid until fini. */
const struct strent *match_strtab_find(const struct strtab *, uint64_t h,
	    const char *s, size_t len);

/* Interns s (lower-cased); returns the new or existing entry, NULL: OOM. */
struct strent *match_strtab_put(struct strtab *, uint64_t h, const char *s,
	    size_t len);

/* Frees the keys and the slots and zeroes t, which may be reused. */
void	match_strtab_fini(struct strtab *);

/*
 * match_set_add for len bytes of pat (need not be NUL-terminated); nested:
 * pat comes from a list, where file: is not allowed. 0, or -1 after
 * adding the reason to d.
 */
int	match_set_add_len(struct match_set *, const char *pat, size_t len,
	    const struct match_src *, int nested, struct diag *d) WARN_UNUSED;

/*
 * Reads a list (file errors at src's FILE:LINE) and hands each line to fn
 * with its own FILE:LINE: surrounding blanks and a CR are cut, blank lines
 * and lines starting with '#' are skipped. Goes on after a bad line so
 * that `warden check` reports every one.
 */
int	match_list_load(const char *path, const struct match_src *src,
	    struct diag *d, int (*fn)(void *, const char *, size_t,
	    const struct match_src *, struct diag *), void *arg) WARN_UNUSED;

/* The blanks a list line is trimmed of, and that separate its fields. */
static inline int
match_is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

#endif

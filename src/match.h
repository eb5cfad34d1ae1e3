/*
 * match.h - condition primitives compiled into their cheapest form
 * (DESIGN.md §3, §4b): pattern lists (exact, glob, /regex/, file:),
 * CIDR lists (IPv4 and IPv6) and sender owner maps.
 * Owns: compiling patterns at load and testing values at evaluation.
 * Not: which condition a pattern belongs to (rules.c).
 * Threads: a compiled set is immutable and may be tested from many threads;
 * PCRE2 match data is per thread, so no lock is taken while matching.
 * Errors: compile problems go to a struct diag with FILE:LINE (file: lists
 * name their own file and line); testing never fails and never allocates
 * except the first regex match on a new thread.
 */
#ifndef WARDEN_MATCH_H
#define WARDEN_MATCH_H

#include <stddef.h>
#include <stdint.h>
#include "diag.h"

#define MATCH_FILE_MAX	(4 * 1024 * 1024)	/* a file: list, at most */
#define MATCH_PAT_MAX	1024			/* one pattern, at most */

/* Where a pattern comes from: for diagnostics and for file: paths. */
struct match_src {
	const char	*file;		/* the rule file */
	int		line;		/* the setting's line */
	const char	*basedir;	/* directory that file: is relative to */
};

/*
 * A list of string patterns. A value matches when any pattern does.
 * Exact patterns and globs compare ASCII case-insensitively; /regex/ is
 * PCRE2, case-insensitive, JIT-compiled when the JIT is available.
 */
struct match_set;

struct match_set *match_set_new(void);
void	match_set_free(struct match_set *);

/*
 * Adds one pattern: "exact", a glob with * and ?, "/regex/", or
 * "file:PATH" (one pattern a line, # comments, blank lines ignored; a
 * file: inside a file is an error). Returns 0, or -1 after adding the
 * reason to d.
 */
int	match_set_add(struct match_set *, const char *pat,
	    const struct match_src *, struct diag *d) WARN_UNUSED;

/* 1 when s (len bytes, need not be NUL-terminated) matches, else 0. */
int	match_set_test(const struct match_set *, const char *s, size_t len);

/* How many patterns of each kind: for `warden check`'s summary. */
struct match_counts {
	size_t	exact, glob, regex;
};
void	match_set_counts(const struct match_set *, struct match_counts *);

/*
 * A parsed IP address: family 4 or 6; IPv4-mapped IPv6 (::ffff:a.b.c.d)
 * is stored as IPv4 so that v4 CIDRs match it.
 */
struct match_ip {
	int		family;		/* 0: none, 4 or 6 */
	uint8_t		a[16];		/* network order; v4 in a[0..3] */
};

/* Parses an address (optionally in [brackets]); 0 ok, -1 bad. */
int	match_ip_parse(const char *s, size_t len, struct match_ip *out);
/* Zeroes all bits past prefix (prefix within 0..32 or 0..128). */
void	match_ip_mask(struct match_ip *, unsigned prefix);
/* Formats the address (no prefix) into buf; returns buf. */
const char *match_ip_format(const struct match_ip *, char *buf, size_t len);

/* A list of networks ("192.0.2.0/24", "2001:db8::/32", "10.1.2.3", file:). */
struct match_cidr;

struct match_cidr *match_cidr_new(void);
void	match_cidr_free(struct match_cidr *);
int	match_cidr_add(struct match_cidr *, const char *net,
	    const struct match_src *, struct diag *d) WARN_UNUSED;
/* Sorts and indexes; call once after the last add. */
void	match_cidr_compile(struct match_cidr *);
int	match_cidr_test(const struct match_cidr *, const struct match_ip *);
size_t	match_cidr_count(const struct match_cidr *);

/*
 * An owner map (lines "LOGIN PATTERN...", # comments): which envelope
 * senders a login may use. Patterns: as match_set, plus "@domain" (any
 * address in exactly that domain) and "@*.domain" (its subdomains).
 */
struct match_owners;

/*
 * Loads the map from path (relative to src->basedir when not absolute).
 * Returns the map, or NULL after adding the reasons to d.
 */
struct match_owners *match_owners_load(const char *path,
	    const struct match_src *, struct diag *d);
void	match_owners_free(struct match_owners *);

/*
 * 1 when login may send as sender. The null sender ("" or "<>") is never
 * owned; a login not in the map owns nothing.
 */
int	match_owners_test(const struct match_owners *, const char *login,
	    const char *sender);

/*
 * Reads a whole file for a list: rejects missing, unreadable, over-size
 * and binary (NUL byte) files with a reason in err. Returns a malloc'd,
 * NUL-terminated buffer (owned by the caller) or NULL.
 */
char	*match_read_file(const char *path, size_t max, size_t *len_out,
	    char *err, size_t errlen);

/*
 * Warns (FILE:0) when others than the owner may write path: whoever can
 * write a config, rule or map file sets the mail policy (the owner's own
 * member-less group, Debian's user private group, does not count). With secret
 * set (the file holds a password or store.key_secret) also when anyone
 * may read it.
 */
void	match_file_perms(const char *path, int secret, struct diag *);

#endif

/*
 * rules_int.h - what the files of the rules module share and callers
 * must not see (only src/rules*.c include it): rules.c (the tables of
 * names, one rule, files, checks across rules, the public entry points),
 * rules_cond.c (match conditions), rules_limit.c (limit = { ... }),
 * rules_reply.c (reply and add_header).
 * Owns: struct loader and the calls between those files. Not: the
 * public interface (rules.h), which callers keep using unchanged.
 * Threads: a loader lives on one thread for one load.
 * Errors: as rules.h: every problem goes into the loader's diag as
 * FILE:LINE and parsing goes on.
 */
#ifndef WARDEN_RULES_INT_H
#define WARDEN_RULES_INT_H

#include <stddef.h>

#include "lcfg.h"
#include "rules.h"

enum cond_type {
	CT_PATTERNS,
	CT_CIDR,
	CT_PORTS,
	CT_BOOL,
	CT_COUNT,
	CT_ANY,
	CT_NOT,
};

/* State of one load: several files feed one ruleset. */
struct loader {
	struct ruleset	*rs;
	const struct rules_opts *opts;
	struct diag	*d;
	size_t		cap;
	const char	*file;		/* current file, owned by rs->files */
	const char	*basedir;
	int		have_owned;	/* line of the rule's sender_owned, or 0 */
};

/* How a condition's value is parsed and freed; k must be a valid kind. */
enum cond_type rules_cond_type(enum cond_kind);

/* The keys a limit = { ... } may have, NULL-terminated; static data. */
const char *const *rules_limit_keys(void);

/* "connect, helo, ..." for the stages in mask, written into buf. */
const char *rules_stages_text(unsigned mask, char *buf, size_t len);

/* Whether s is a valid rule or counter name (1 if so, else 0). */
int	rules_valid_name(const char *s);

/*
 * Calls add(elem) for a string or each string of an array/list; what
 * names the setting in messages. 0, or -1 after adding the reasons to
 * l->d (it goes on after a bad element).
 */
int	rules_each_string(struct loader *l, const config_setting_t *s,
	    const char *what, int (*add)(struct loader *, void *,
	    const char *, const config_setting_t *), void *obj) WARN_UNUSED;

/*
 * Parses match = { ... } (or a group of any/not) of r into out, whose
 * conditions the caller frees with rules_group_fini also on failure.
 * 0, or -1 with the reasons in l->d.
 */
int	rules_parse_group(struct loader *, struct rule *,
	    const config_setting_t *, struct cond_group *out, int depth)
	    WARN_UNUSED;

/* Frees the conditions of g and empties it; g itself is the caller's. */
void	rules_group_fini(struct cond_group *g);

/*
 * Parse limit = { ... }, reply and add_header of r (stage and action
 * already known) into r; 0, or -1 with the reasons in l->d. What they
 * allocate hangs off r and is freed with it, also on failure.
 */
int	rules_parse_limit(struct loader *l, struct rule *r,
	    const config_setting_t *g) WARN_UNUSED;
int	rules_parse_reply(struct loader *l, struct rule *r,
	    const config_setting_t *s) WARN_UNUSED;
int	rules_parse_tag(struct loader *l, struct rule *r,
	    const config_setting_t *s) WARN_UNUSED;

#endif

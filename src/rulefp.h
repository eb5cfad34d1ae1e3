/*
 * rulefp.h - what a rule's counters depend on, as readable text
 * ("key=client_ip rate=10/60s burst=5"), so that a reload can say which
 * counters restart and `warden check` can say it before the reload.
 * Owns: the fingerprint text, comparing two sets of them, and where the
 * running daemon records its set (Redis: prefix + "rules").
 * Not: restarting counters (the stores key each counter by its limit,
 * store.h store_limit_id; the engine keys it by counter name and parts).
 * Threads: pure functions, except rulefp_publish (one Redis exchange).
 * Errors: -1 and a reason in the caller's buffer; text read back from
 * Redis is untrusted: bounded here, escaped by whoever prints it.
 */
#ifndef WARDEN_RULEFP_H
#define WARDEN_RULEFP_H

#include <stddef.h>
#include <stdio.h>
#include "rules.h"
#include "store.h"

#define RULEFP_MAX	192	/* one fingerprint, NUL included */

struct rulefp {
	char	name[RULES_NAME_MAX + 1];
	char	fp[RULEFP_MAX];
};

enum rulefp_change {
	RULEFP_RESTART,		/* its key, rate or burst changed */
	RULEFP_NEW,		/* a limited rule the old set did not have */
	RULEFP_GONE,		/* a limited rule the new set dropped */
};

/*
 * The fingerprint of r's limit into buf: key parts (and the prefixes
 * with client_net), the rate as count/seconds, the burst, and the
 * counter when it is not the rule's name. Returns its length, or -1
 * when r has no limit.
 */
int	rulefp_format(const struct rule *r, char *buf, size_t len);

/*
 * The limited rules of rs with their fingerprints: an array (owned,
 * free()) in *out, its length returned; -1 when memory is short.
 */
int	rulefp_list(const struct ruleset *rs, struct rulefp **out);

/*
 * Calls fn for each rule whose counters restart, appear or go from old
 * to new, with what changed ("rate 10/60s -> 20/60s, burst 10 -> 20";
 * for NEW and GONE the fingerprint). Returns the number of calls.
 */
size_t	rulefp_compare(const struct rulefp *old, size_t nold,
	    const struct rulefp *new, size_t nnew,
	    void (*fn)(void *, enum rulefp_change, const char *name,
	    const char *what), void *ctx);

/* Logs "reload: counters restart for rule=X (...)" for each restart. */
void	rulefp_log_reload(const struct ruleset *old,
	    const struct ruleset *new);

/*
 * Records rs's fingerprints in the Redis store s (made by
 * store_redis_new), replacing the last record whole (at start and on
 * reload; s's new connections write it again only where Redis lacks
 * it). Returns 0, or -1 with a reason in err.
 */
int	rulefp_publish(struct store *s, const struct ruleset *rs, char *err,
	    size_t errlen);

/*
 * `warden check`: compares rs with what the running daemon recorded in
 * Redis (o) and prints one line per change on out; when Redis cannot be
 * read, one line that says so. Never an error of the check.
 */
void	rulefp_check_redis(const struct store_redis_opts *o,
	    const struct ruleset *rs, FILE *out);

#endif

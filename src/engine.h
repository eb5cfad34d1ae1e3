/*
 * engine.h - evaluate one SMTP stage of a session against a ruleset
 * (DESIGN.md §3, §4): rules of that stage in load order, limits charged in
 * one store batch, the first terminal verdict wins.
 * Owns: evaluation order, limit keys, refunds, on_error, the session's
 * verdict state (accepted, closed, quarantine, tags).
 * Not: libmilter, logging format (callers get decisions through hooks),
 * which store it talks to.
 * Threads: engine_eval may run on many threads at once with distinct
 * sessions; the ruleset and store are shared.
 * Memory: no heap allocation; scratch lives in the caller's result.
 * Errors: store failures apply the rule's on_error; nothing aborts.
 */
#ifndef WARDEN_ENGINE_H
#define WARDEN_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include "reply.h"
#include "rules.h"
#include "session.h"
#include "store.h"

#define ENGINE_BATCH_MAX	32	/* limits charged in one round trip */
#define ENGINE_KEY_MAX		512	/* longer keys are digested */
#define ENGINE_KEYBUF		(ENGINE_BATCH_MAX * 256)
#define ENGINE_WHY_MAX		512

/* One decision that is not "continue": for the log line and counters. */
struct engine_decision {
	const struct sess *sess;
	enum stage	stage;
	const struct rule *rule;
	enum action	action;		/* what the rule does (or would) */
	int		dryrun;
	int		store_error;	/* on_error decided it */
	const struct reply_out *reply;	/* reject/tempfail, else NULL */
	int64_t		retry_ns;	/* reply's %{retry_after}: a log
					 * form expands the template again */
};

struct engine_hooks {
	void	*arg;
	/* every non-continue decision, dry-run ones included; may be NULL */
	void	(*decision)(void *arg, const struct engine_decision *);
	/*
	 * explain: each rule of the stage, whether it matched and why. When
	 * set, limits are peeked, never charged. May be NULL.
	 */
	void	(*trace)(void *arg, const struct rule *, int matched,
		    const char *why);
};

struct engine_ctx {
	struct store	*store;		/* the configured backend */
	struct store	*fallback;	/* memory store for on_error=memory */
	struct engine_hooks hooks;
};

struct engine_result {
	enum action	action;		/* CONTINUE, ACCEPT, REJECT, TEMPFAIL,
					 * DISCARD, QUARANTINE (flagged at any
					 * message stage, applied at eom) */
	const struct rule *rule;	/* that decided; NULL: none */
	int		closes;		/* a 421: the MTA closes the session */
	int		store_error;	/* a store failure decided it */
	struct reply_out reply;		/* valid for REJECT and TEMPFAIL */
	/* scratch for one evaluation; callers ignore it */
	char		keybuf[ENGINE_KEYBUF];
};

/*
 * Evaluates stage for sess at now (ns) and fills out. Updates the
 * session's counters (recipients, unknown commands) and verdict state.
 * At STAGE_EOM, the session's quarantine and tags are the caller's to
 * apply (sess->quarantine, sess->tags) when out->action is not REJECT,
 * TEMPFAIL or DISCARD.
 */
void	engine_eval(const struct engine_ctx *, const struct ruleset *,
	    struct sess *, enum stage, int64_t now, struct engine_result *out);

/*
 * Builds the counter key of a rule's limit for the session into buf
 * ("counter|part|part", parts lower-cased, "|", "%" and bytes outside
 * printable ASCII %-escaped; past ENGINE_KEY_MAX bytes "counter|#" and
 * the SHA-256 of the parts). buf needs ENGINE_KEY_MAX bytes. Returns the
 * length, or -1 when a part has no value (the limit is then skipped).
 */
int	engine_limit_key(const struct rule *, const struct sess *,
	    char *buf, size_t len);

/* Fills the template values of the session for reply expansion. */
void	engine_reply_vars(const struct sess *, const struct rule *,
	    int64_t retry_ns, struct reply_vars *out, char *retrybuf,
	    size_t retrylen);

#endif

/*
 * rules.h - rule files (DESIGN.md §3): parse with libconfig, validate with
 * FILE:LINE for every problem, compile into an immutable, refcounted
 * ruleset indexed by stage.
 * Owns: the rule data model and its load-time checks.
 * Not: evaluating rules (engine.c), the main config (config.c).
 * Threads: a ruleset is immutable after rules_load and may be read from
 * many threads; rules_ref/rules_unref are atomic. Per-rule counters are
 * atomics.
 * Errors: every problem goes into a struct diag; loading never aborts on
 * input and returns NULL when there was any error.
 */
#ifndef WARDEN_RULES_H
#define WARDEN_RULES_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "diag.h"
#include "gcra.h"
#include "match.h"
#include "reply.h"
#include "stage.h"

#define RULES_FILE_MAX		(4 * 1024 * 1024)
#define RULES_NAME_MAX		64
#define RULES_NEST_MAX		8	/* any/not depth */
#define RULES_KEY_PARTS_MAX	8

enum on_error {
	ONERR_DEFAULT,		/* rules only: use store.on_error */
	ONERR_ACCEPT,
	ONERR_TEMPFAIL,
	ONERR_MEMORY,		/* rules only: fall back to the memory store */
};

enum cond_kind {
	COND_CLIENT,
	COND_CLIENT_NAME,
	COND_PORT,
	COND_DAEMON,
	COND_HELO,
	COND_SENDER,
	COND_SENDER_DOMAIN,
	COND_RCPT,
	COND_RCPT_DOMAIN,
	COND_AUTH,
	COND_AUTH_USER,
	COND_AUTH_MECH,
	COND_TLS,
	COND_TLS_VERSION,
	COND_CIPHER_BITS_BELOW,
	COND_SIZE_OVER,
	COND_RCPT_COUNT_OVER,
	COND_RCPT_REJECTED,
	COND_COMMAND,
	COND_UNKNOWN_COUNT_OVER,
	COND_BAD_RCPT_COUNT_OVER,
	COND_HEADER,
	COND_HEADER_VALUE,
	COND_SENDER_OWNED,
	COND_ANY,
	COND_NOT,
	COND_COUNT
};

enum key_part {
	KEY_CLIENT_IP,
	KEY_CLIENT_NET,
	KEY_HELO,
	KEY_SENDER,
	KEY_SENDER_DOMAIN,
	KEY_RCPT,
	KEY_RCPT_DOMAIN,
	KEY_AUTH_USER,
	KEY_COUNT
};

struct cond;

/* Conditions that must all hold. */
struct cond_group {
	struct cond	*v;
	size_t		n;
};

struct cond {
	enum cond_kind	kind;
	int		line;
	char		*text;		/* the value as written, for explain */
	int		empty_ok;	/* patterns: "" or "<>" was listed */
	union {
		struct match_set *set;		/* string conditions */
		struct match_cidr *cidr;	/* client */
		int		b;		/* bool conditions */
		long long	n;		/* *_over, cipher_bits_below */
		struct {
			int	*v;
			size_t	n;
		} ports;
		struct {
			struct cond_group *v;
			size_t	n;
		} any;
		struct cond_group *not;
	} u;
};

struct limit {
	int		line;
	enum key_part	parts[RULES_KEY_PARTS_MAX];
	size_t		nparts;
	unsigned	ipv4_prefix, ipv6_prefix;
	int64_t		count, period_ns;
	struct gcra_limit g;
	int		cost_size;	/* cost = message bytes */
	int64_t		cost;		/* fixed cost otherwise */
	enum on_error	on_error;	/* resolved: never ONERR_DEFAULT */
	char		*counter;	/* key namespace: the rule's name or
					 * a counter shared by several rules */
	int		charge;		/* 0: look at the counter only */
	char		rate[32];	/* as written, for messages */
};

struct rule {
	char		*name;
	const char	*file;		/* owned by the ruleset */
	int		line;		/* of `name` */
	unsigned	index;		/* load order */
	enum stage	stage;
	enum action	action;
	enum rule_mode	mode;
	int		has_match;
	struct cond_group match;
	struct limit	*limit;		/* NULL: none */
	struct match_owners *owners;	/* owner_map, for sender_owned */
	int		has_reply;	/* written in the rule */
	struct reply	reply;		/* reject/tempfail: always set */
	char		*tag_name;	/* tag: header to add */
	struct reply	tag_value;	/* tag: template, via reply pieces */
	/* counters; atomics because many sessions evaluate at once */
	_Atomic uint64_t hits, enforced, dryrun;
};

struct ruleset {
	atomic_int	refs;
	struct rule	**rules;	/* load order */
	size_t		nrules;
	struct rule	**by_stage[STAGE_COUNT];
	size_t		nby_stage[STAGE_COUNT];
	char		**files;	/* every file loaded */
	size_t		nfiles;
	/* what the loaded rules need from the MTA (milter negotiation) */
	uint32_t	conds_used[STAGE_COUNT];	/* 1u << cond_kind */
	uint32_t	keys_used[STAGE_COUNT];		/* 1u << key_part */
	uint32_t	vars_used[STAGE_COUNT];		/* 1u << reply_var */
	size_t		nlimits, ndryrun;
};

struct rules_opts {
	enum rule_mode	default_mode;
	enum on_error	default_on_error;	/* ACCEPT or TEMPFAIL */
};

/*
 * Loads the files in the given order (already expanded and sorted by the
 * caller) and compiles them. Returns a ruleset with one reference (owned),
 * or NULL when any error was found (all of them are in d). Warnings do not
 * fail the load.
 */
struct ruleset *rules_load(const char *const *files, size_t nfiles,
	    const struct rules_opts *, struct diag *d);

/*
 * Parses one rule file from a buffer (tests and fuzzing). file names the
 * buffer in diagnostics; basedir resolves file: paths. Returns as
 * rules_load.
 */
struct ruleset *rules_load_buf(const char *file, const char *basedir,
	    const char *buf, size_t len, const struct rules_opts *,
	    struct diag *d);

struct ruleset *rules_ref(struct ruleset *);
void	rules_unref(struct ruleset *);

/* Stages where a condition / key part has data (DESIGN.md §3). */
unsigned rules_cond_stages(enum cond_kind);
unsigned rules_key_stages(enum key_part);
const char *rules_cond_name(enum cond_kind);
const char *rules_key_name(enum key_part);
const char *rules_on_error_name(enum on_error);
/* "enforce" / "dry-run" -> MODE_*; "accept" / "tempfail" / "memory" ->
 * ONERR_*; -1 for anything else. */
int	rules_mode_by_name(const char *);
int	rules_on_error_by_name(const char *);

/* Finds a rule by name; borrowed, valid while the ruleset is. */
const struct rule *rules_find(const struct ruleset *, const char *name);

#endif

/*
 * rules.c - rule files (DESIGN.md §3): parse each rule with libconfig,
 * check every setting with FILE:LINE, check across rules (duplicate
 * names, shared counters) and index the rules by stage.
 * Owns: the rule data model and its tables of names, the load and its
 * public entry points, refcounting and freeing. Not: parsing conditions
 * (rules_cond.c), limits (rules_limit.c), reply and add_header
 * (rules_reply.c); evaluation (engine.c), reply syntax (reply.c),
 * patterns (match.c).
 * Threads: loading is single-threaded; the result is immutable and
 * refcounted with atomics.
 * Errors: every problem is collected in a struct diag and loading goes on
 * to the end; a load with any error returns NULL.
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

#define SESS_STAGES	STAGES_ALL
#define HELO_STAGES	(STAGES_ALL & ~STAGE_BIT(STAGE_CONNECT))
#define MSG_STAGES	(STAGE_BIT(STAGE_ENVFROM) | STAGE_BIT(STAGE_ENVRCPT) | \
	STAGE_BIT(STAGE_DATA) | STAGE_BIT(STAGE_HEADER) | STAGE_BIT(STAGE_EOM))
#define RCPT_STAGES	STAGE_BIT(STAGE_ENVRCPT)
#define AFTER_RCPT	(STAGE_BIT(STAGE_ENVRCPT) | STAGE_BIT(STAGE_DATA) | \
	STAGE_BIT(STAGE_HEADER) | STAGE_BIT(STAGE_EOM))

/*
 * The names a rule file may use stay together in this file: tests/man
 * reads these tables from it to check that warden.rules.5 documents each.
 */
static const struct cond_def {
	const char	*name;
	enum cond_type	type;
	unsigned	stages;
} cond_defs[COND_COUNT] = {
	[COND_CLIENT] = { "client", CT_CIDR, SESS_STAGES },
	[COND_CLIENT_NAME] = { "client_name", CT_PATTERNS, SESS_STAGES },
	[COND_PORT] = { "port", CT_PORTS, SESS_STAGES },
	[COND_DAEMON] = { "daemon", CT_PATTERNS, SESS_STAGES },
	/* HELO and TLS facts arrive with HELO/EHLO (Postfix milter_helo_macros). */
	[COND_HELO] = { "helo", CT_PATTERNS, HELO_STAGES },
	[COND_TLS] = { "tls", CT_BOOL, HELO_STAGES },
	[COND_TLS_VERSION] = { "tls_version", CT_PATTERNS, HELO_STAGES },
	[COND_CIPHER_BITS_BELOW] = { "cipher_bits_below", CT_COUNT,
	    HELO_STAGES },
	/* AUTH macros come with MAIL FROM (Postfix milter_mail_macros). */
	[COND_SENDER] = { "sender", CT_PATTERNS, MSG_STAGES },
	[COND_SENDER_DOMAIN] = { "sender_domain", CT_PATTERNS, MSG_STAGES },
	[COND_AUTH] = { "auth", CT_BOOL, MSG_STAGES },
	[COND_AUTH_USER] = { "auth_user", CT_PATTERNS, MSG_STAGES },
	[COND_AUTH_MECH] = { "auth_mech", CT_PATTERNS, MSG_STAGES },
	[COND_SENDER_OWNED] = { "sender_owned", CT_BOOL, MSG_STAGES },
	[COND_RCPT] = { "rcpt", CT_PATTERNS, RCPT_STAGES },
	[COND_RCPT_DOMAIN] = { "rcpt_domain", CT_PATTERNS, RCPT_STAGES },
	[COND_RCPT_REJECTED] = { "rcpt_rejected", CT_BOOL, RCPT_STAGES },
	[COND_RCPT_COUNT_OVER] = { "rcpt_count_over", CT_COUNT, AFTER_RCPT },
	[COND_BAD_RCPT_COUNT_OVER] = { "bad_rcpt_count_over", CT_COUNT,
	    AFTER_RCPT | STAGE_BIT(STAGE_UNKNOWN) },
	/* SIZE= at MAIL FROM; the real size once the body is in. */
	[COND_SIZE_OVER] = { "size_over", CT_COUNT,
	    STAGE_BIT(STAGE_ENVFROM) | STAGE_BIT(STAGE_EOM) },
	[COND_COMMAND] = { "command", CT_PATTERNS, STAGE_BIT(STAGE_UNKNOWN) },
	[COND_UNKNOWN_COUNT_OVER] = { "unknown_count_over", CT_COUNT,
	    MSG_STAGES | STAGE_BIT(STAGE_UNKNOWN) },
	[COND_HEADER] = { "header", CT_PATTERNS, STAGE_BIT(STAGE_HEADER) },
	[COND_HEADER_VALUE] = { "header_value", CT_PATTERNS,
	    STAGE_BIT(STAGE_HEADER) },
	[COND_ANY] = { "any", CT_ANY, SESS_STAGES },
	[COND_NOT] = { "not", CT_NOT, SESS_STAGES },
};

static const struct key_def {
	const char	*name;
	unsigned	stages;
} key_defs[KEY_COUNT] = {
	[KEY_CLIENT_IP] = { "client_ip", SESS_STAGES },
	[KEY_CLIENT_NET] = { "client_net", SESS_STAGES },
	[KEY_HELO] = { "helo", HELO_STAGES },
	[KEY_SENDER] = { "sender", MSG_STAGES },
	[KEY_SENDER_DOMAIN] = { "sender_domain", MSG_STAGES },
	[KEY_RCPT] = { "rcpt", RCPT_STAGES },
	[KEY_RCPT_DOMAIN] = { "rcpt_domain", RCPT_STAGES },
	[KEY_AUTH_USER] = { "auth_user", MSG_STAGES },
};

static const char *const rule_keys[] = {
	"name", "stage", "match", "limit", "action", "reply", "mode",
	"add_header", "owner_map", NULL
};
static const char *const limit_keys[] = {
	"key", "rate", "burst", "cost", "on_error", "ipv4_prefix",
	"ipv6_prefix", "counter", "charge", NULL
};

unsigned
rules_cond_stages(enum cond_kind k)
{
	return (unsigned)k < COND_COUNT ? cond_defs[k].stages : 0;
}

unsigned
rules_key_stages(enum key_part k)
{
	return (unsigned)k < KEY_COUNT ? key_defs[k].stages : 0;
}

const char *
rules_cond_name(enum cond_kind k)
{
	return (unsigned)k < COND_COUNT ? cond_defs[k].name : "?";
}

const char *
rules_key_name(enum key_part k)
{
	return (unsigned)k < KEY_COUNT ? key_defs[k].name : "?";
}

/* rules_cond.c frees and parses a condition by its type. */
enum cond_type
rules_cond_type(enum cond_kind k)
{
	return cond_defs[k].type;
}

/* The keys a limit = { ... } may have, NULL-terminated (rules_limit.c). */
const char *const *
rules_limit_keys(void)
{
	return limit_keys;
}

int
rules_mode_by_name(const char *s)
{
	if (strcmp(s, "enforce") == 0)
		return MODE_ENFORCE;
	if (strcmp(s, "dry-run") == 0)
		return MODE_DRYRUN;
	return -1;
}

int
rules_on_error_by_name(const char *s)
{
	if (strcmp(s, "accept") == 0)
		return ONERR_ACCEPT;
	if (strcmp(s, "tempfail") == 0)
		return ONERR_TEMPFAIL;
	if (strcmp(s, "memory") == 0)
		return ONERR_MEMORY;
	return -1;
}

const char *
rules_on_error_name(enum on_error e)
{
	switch (e) {
	case ONERR_ACCEPT:
		return "accept";
	case ONERR_TEMPFAIL:
		return "tempfail";
	case ONERR_MEMORY:
		return "memory";
	default:
		return "default";
	}
}

const char *
rules_stages_text(unsigned mask, char *buf, size_t len)
{
	size_t at = 0;
	int s, n;

	buf[0] = '\0';
	for (s = 0; s < STAGE_COUNT; s++) {
		if (!(mask & STAGE_BIT(s)))
			continue;
		n = snprintf(buf + at, len - at, "%s%s", at ? ", " : "",
		    stage_name(s));
		if (n < 0 || (size_t)n >= len - at)
			break;
		at += (size_t)n;
	}
	return buf;
}

/* --- freeing --------------------------------------------------------- */

static void
rule_free(struct rule *r)
{
	if (r == NULL)
		return;
	free(r->name);
	rules_group_fini(&r->match);
	if (r->limit != NULL)
		free(r->limit->counter);
	free(r->limit);
	match_owners_free(r->owners);
	reply_fini(&r->reply);
	free(r->tag_name);
	reply_fini(&r->tag_value);
	free(r);
}

static void
ruleset_free(struct ruleset *rs)
{
	size_t i;
	int s;

	if (rs == NULL)
		return;
	for (i = 0; i < rs->nrules; i++)
		rule_free(rs->rules[i]);
	free(rs->rules);
	for (s = 0; s < STAGE_COUNT; s++)
		free(rs->by_stage[s]);
	for (i = 0; i < rs->nfiles; i++)
		free(rs->files[i]);
	free(rs->files);
	free(rs);
}

struct ruleset *
rules_ref(struct ruleset *rs)
{
	if (rs != NULL)
		atomic_fetch_add(&rs->refs, 1);
	return rs;
}

void
rules_unref(struct ruleset *rs)
{
	if (rs != NULL && atomic_fetch_sub(&rs->refs, 1) == 1)
		ruleset_free(rs);
}

const struct rule *
rules_find(const struct ruleset *rs, const char *name)
{
	size_t i;

	for (i = 0; i < rs->nrules; i++)
		if (strcmp(rs->rules[i]->name, name) == 0)
			return rs->rules[i];
	return NULL;
}

/* --- one rule -------------------------------------------------------- */

int
rules_valid_name(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > RULES_NAME_MAX)
		return 0;
	/* Names go into logs and counter keys: keep them plain. */
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		    (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		    s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

static int
parse_rule(struct loader *l, const config_setting_t *g, struct rule *r)
{
	const char *file = lcfg_file(g, l->file), *str;
	const config_setting_t *s;
	struct match_src src;
	int rc = 0, got, v, have_stage = 0, have_action = 0;

	r->file = file;
	r->line = lcfg_line(g);
	r->mode = l->opts->default_mode;
	l->have_owned = 0;
	if (!config_setting_is_group(g)) {
		diag_err(l->d, file, r->line, "rules: each rule must be a "
		    "group { name = ...; ... }, not %s", lcfg_type_name(g));
		return -1;
	}
	if (lcfg_check_keys(g, rule_keys, file, "rule", l->d) > 0)
		rc = -1;

	got = lcfg_get_string(g, "name", &str, file, "", l->d);
	if (got == 0) {
		diag_err(l->d, file, r->line, "rule: name is missing");
		rc = -1;
	} else if (got < 0)
		rc = -1;
	else {
		r->line = lcfg_line(config_setting_get_member(g, "name"));
		if (!rules_valid_name(str)) {
			diag_err(l->d, file, r->line, "name: \"%s\" must be "
			    "1..%d of A-Z a-z 0-9 . _ -", str, RULES_NAME_MAX);
			rc = -1;
		}
		if ((r->name = strdup(str)) == NULL)
			return -1;
	}

	got = lcfg_get_choice(g, "stage", stage_by_name, "connect, helo, "
	    "envfrom, envrcpt, data, header, eom, unknown", &v, file, "", l->d);
	if (got == 0) {
		diag_err(l->d, file, r->line, "rule: stage is missing");
		rc = -1;
	} else if (got < 0)
		rc = -1;
	else {
		r->stage = (enum stage)v;
		have_stage = 1;
	}

	got = lcfg_get_choice(g, "action", action_by_name, "accept, continue, "
	    "log, reject, tempfail, discard, quarantine, tag", &v, file, "",
	    l->d);
	if (got == 0) {
		diag_err(l->d, file, r->line, "rule: action is missing");
		rc = -1;
	} else if (got < 0)
		rc = -1;
	else {
		r->action = (enum action)v;
		have_action = 1;
		if (have_stage && !(action_stages(r->action) &
		    STAGE_BIT(r->stage))) {
			diag_err(l->d, file, lcfg_line(
			    config_setting_get_member(g, "action")),
			    "action: %s is not possible at stage %s",
			    action_name(r->action), stage_name(r->stage));
			rc = -1;
		}
	}

	got = lcfg_get_choice(g, "mode", rules_mode_by_name,
	    "enforce, dry-run", &v, file, "", l->d);
	if (got < 0)
		rc = -1;
	else if (got > 0)
		r->mode = (enum rule_mode)v;

	/* What follows depends on a known stage and action. */
	if (!have_stage || !have_action)
		return -1;

	if ((s = config_setting_get_member(g, "match")) != NULL) {
		r->has_match = 1;
		if (rules_parse_group(l, r, s, &r->match, 0) != 0)
			rc = -1;
	}
	if ((s = config_setting_get_member(g, "limit")) != NULL &&
	    rules_parse_limit(l, r, s) != 0)
		rc = -1;

	if ((s = config_setting_get_member(g, "reply")) != NULL) {
		if (rules_parse_reply(l, r, s) != 0)
			rc = -1;
	} else if (r->action == ACTION_REJECT && r->stage == STAGE_UNKNOWN) {
		/* The default 550 would load and then never reach a client. */
		diag_err(l->d, file, lcfg_line(config_setting_get_member(g,
		    "action")), "action: reject at stage unknown is not "
		    "honoured: Postfix answers unknown commands with its own "
		    "500 5.5.2 and honours only 4xx from a milter; use tempfail "
		    "(e.g. reply = \"421 4.7.0 ...\")");
		rc = -1;
	} else if (r->action == ACTION_REJECT ||
	    r->action == ACTION_TEMPFAIL) {
		if (reply_default(&r->reply, r->action) != 0)
			rc = -1;
	}

	if ((s = config_setting_get_member(g, "add_header")) != NULL) {
		if (rules_parse_tag(l, r, s) != 0)
			rc = -1;
	} else if (r->action == ACTION_TAG) {
		diag_err(l->d, file, lcfg_line(config_setting_get_member(g,
		    "action")), "action: tag needs add_header = \"Name: "
		    "value\"");
		rc = -1;
	}

	got = lcfg_get_string(g, "owner_map", &str, file, "", l->d);
	if (got < 0)
		rc = -1;
	else if (got > 0) {
		s = config_setting_get_member(g, "owner_map");
		src.file = file;
		src.line = lcfg_line(s);
		src.basedir = l->basedir;
		if (strncmp(str, "file:", 5) != 0) {
			diag_err(l->d, file, src.line, "owner_map: must be "
			    "\"file:PATH\"");
			rc = -1;
		} else if ((r->owners = match_owners_load(str + 5, &src,
		    l->d)) == NULL)
			rc = -1;
		if (!l->have_owned)
			diag_warn(l->d, file, src.line, "owner_map: unused: "
			    "no sender_owned condition in this rule");
	} else if (l->have_owned) {
		/* DESIGN.md §3: name the condition's line. */
		diag_err(l->d, file, l->have_owned, "match: sender_owned "
		    "needs owner_map = \"file:PATH\" in the rule");
		rc = -1;
	}
	if (r->mode == MODE_DRYRUN)
		l->rs->ndryrun++;
	return rc;
}

/* --- files ----------------------------------------------------------- */

static int
add_rule(struct loader *l, struct rule *r)
{
	struct rule **nv;
	size_t ncap;

	if (l->rs->nrules == l->cap) {
		ncap = l->cap ? l->cap * 2 : 32;
		if ((nv = realloc(l->rs->rules, ncap * sizeof(*nv))) == NULL)
			return -1;
		l->rs->rules = nv;
		l->cap = ncap;
	}
	r->index = (unsigned)l->rs->nrules;
	l->rs->rules[l->rs->nrules++] = r;
	return 0;
}

static int
load_buf(struct loader *l, const char *buf, size_t len)
{
	const config_setting_t *root, *list, *e;
	static const char *const top_keys[] = { "rules", NULL };
	struct rule *r;
	config_t cfg;
	int i, rc = 0;

	config_init(&cfg);
	if (lcfg_parse(&cfg, l->file, l->basedir, buf, len, l->d) != 0) {
		config_destroy(&cfg);
		return -1;
	}
	root = config_root_setting(&cfg);
	if (lcfg_check_keys(root, top_keys, l->file, "rule file", l->d) > 0)
		rc = -1;
	list = config_setting_get_member(root, "rules");
	if (list == NULL) {
		diag_warn(l->d, l->file, 0, "no rules = ( ... ); list: the "
		    "file defines no rule");
	} else if (config_setting_type(list) != CONFIG_TYPE_LIST) {
		diag_err(l->d, l->file, lcfg_line(list), "rules: must be a "
		    "list ( { ... }, { ... } ), not %s",
		    lcfg_type_name(list));
		rc = -1;
	} else {
		for (i = 0; (e = config_setting_get_elem(list, i)) != NULL;
		    i++) {
			if ((r = calloc(1, sizeof(*r))) == NULL ||
			    add_rule(l, r) != 0) {
				free(r);
				diag_err(l->d, l->file, 0, "out of memory");
				rc = -1;
				break;
			}
			if (parse_rule(l, e, r) != 0)
				rc = -1;
			/* file pointers must outlive the libconfig tree */
			r->file = l->file;
		}
	}
	config_destroy(&cfg);
	return rc;
}

static int
by_name_then_index(const void *a, const void *b)
{
	const struct rule *ra = *(const struct rule *const *)a;
	const struct rule *rb = *(const struct rule *const *)b;
	int c;

	if (ra->name == NULL || rb->name == NULL)
		return (ra->name == NULL) - (rb->name == NULL);
	if ((c = strcmp(ra->name, rb->name)) != 0)
		return c;
	return (ra->index > rb->index) - (ra->index < rb->index);
}

/* Duplicate names: the second `name` line, naming the first's place. */
static int
check_duplicates(struct loader *l)
{
	struct rule **v;
	size_t i, first = 0;
	int rc = 0;

	if (l->rs->nrules < 2)
		return 0;
	if ((v = malloc(l->rs->nrules * sizeof(*v))) == NULL)
		return -1;
	memcpy(v, l->rs->rules, l->rs->nrules * sizeof(*v));
	qsort(v, l->rs->nrules, sizeof(*v), by_name_then_index);
	for (i = 1; i < l->rs->nrules; i++) {
		if (v[i]->name == NULL || v[first]->name == NULL ||
		    strcmp(v[i]->name, v[first]->name) != 0) {
			first = i;
			continue;
		}
		diag_err(l->d, v[i]->file, v[i]->line, "name: \"%s\" is "
		    "already used at %s:%d", v[i]->name, v[first]->file,
		    v[first]->line);
		rc = -1;
	}
	free(v);
	return rc;
}

static int
same_limit(const struct limit *a, const struct limit *b)
{
	return a->nparts == b->nparts && memcmp(a->parts, b->parts,
	    a->nparts * sizeof(a->parts[0])) == 0 && a->count == b->count &&
	    a->period_ns == b->period_ns && a->g.burst == b->g.burst &&
	    a->ipv4_prefix == b->ipv4_prefix &&
	    a->ipv6_prefix == b->ipv6_prefix;
}

/* Rules sharing a counter must agree on what it counts and how fast. */
static int
check_counters(struct loader *l)
{
	struct rule **v = l->rs->rules, *a, *b;
	size_t i, j;
	int rc = 0;

	for (i = 0; i < l->rs->nrules; i++) {
		if ((b = v[i])->limit == NULL || b->limit->counter == NULL)
			continue;
		for (j = 0; j < i; j++) {
			a = v[j];
			if (a->limit == NULL || a->limit->counter == NULL ||
			    strcmp(a->limit->counter, b->limit->counter) != 0)
				continue;
			if (!same_limit(a->limit, b->limit)) {
				diag_err(l->d, b->file, b->limit->line,
				    "limit: counter \"%s\" is shared with "
				    "rule %s (%s:%d) but key, rate, burst or "
				    "prefixes differ", b->limit->counter,
				    a->name, a->file, a->limit->line);
				rc = -1;
			}
			break;
		}
	}
	return rc;
}

static int
index_stages(struct ruleset *rs)
{
	size_t i, n[STAGE_COUNT] = { 0 };
	int s;

	for (i = 0; i < rs->nrules; i++)
		n[rs->rules[i]->stage]++;
	for (s = 0; s < STAGE_COUNT; s++) {
		if (n[s] == 0)
			continue;
		if ((rs->by_stage[s] = calloc(n[s], sizeof(struct rule *))) ==
		    NULL)
			return -1;
	}
	for (i = 0; i < rs->nrules; i++) {
		s = rs->rules[i]->stage;
		rs->by_stage[s][rs->nby_stage[s]++] = rs->rules[i];
	}
	return 0;
}

static struct ruleset *
ruleset_new(size_t nfiles)
{
	struct ruleset *rs = calloc(1, sizeof(*rs));

	if (rs == NULL)
		return NULL;
	atomic_init(&rs->refs, 1);
	if (nfiles > 0 && (rs->files = calloc(nfiles, sizeof(char *))) ==
	    NULL) {
		free(rs);
		return NULL;
	}
	return rs;
}

static struct ruleset *
finish(struct loader *l, int rc)
{
	if (check_duplicates(l) != 0)
		rc = -1;
	if (check_counters(l) != 0)
		rc = -1;
	if (rc == 0 && index_stages(l->rs) != 0) {
		diag_err(l->d, NULL, 0, "out of memory");
		rc = -1;
	}
	if (rc != 0 || l->d->errors > 0) {
		ruleset_free(l->rs);
		return NULL;
	}
	return l->rs;
}

static int
keep_file(struct loader *l, const char *path)
{
	char *dup = strdup(path);

	if (dup == NULL)
		return -1;
	l->rs->files[l->rs->nfiles++] = dup;
	l->file = dup;
	return 0;
}

struct ruleset *
rules_load_buf(const char *file, const char *basedir, const char *buf,
    size_t len, const struct rules_opts *opts, struct diag *d)
{
	struct loader l = { .opts = opts, .d = d, .basedir = basedir };

	if ((l.rs = ruleset_new(1)) == NULL || keep_file(&l, file) != 0) {
		ruleset_free(l.rs);
		diag_err(d, file, 0, "out of memory");
		return NULL;
	}
	return finish(&l, load_buf(&l, buf, len));
}

struct ruleset *
rules_load(const char *const *files, size_t nfiles,
    const struct rules_opts *opts, struct diag *d)
{
	struct loader l = { .opts = opts, .d = d };
	char err[256], dir[PATH_MAX];
	size_t i, len;
	char *buf;
	int rc = 0;

	if ((l.rs = ruleset_new(nfiles)) == NULL) {
		diag_err(d, NULL, 0, "out of memory");
		return NULL;
	}
	for (i = 0; i < nfiles; i++) {
		if (keep_file(&l, files[i]) != 0) {
			diag_err(d, files[i], 0, "out of memory");
			rc = -1;
			break;
		}
		str_copy(dir, sizeof(dir), files[i], strlen(files[i]));
		l.basedir = dirname(dir);
		buf = match_read_file(files[i], RULES_FILE_MAX, &len, err,
		    sizeof(err));
		if (buf == NULL) {
			diag_err(d, files[i], 0, "%s", err);
			rc = -1;
			continue;
		}
		match_file_perms(files[i], 0, d);
		if (load_buf(&l, buf, len) != 0)
			rc = -1;
		free(buf);
	}
	return finish(&l, rc);
}


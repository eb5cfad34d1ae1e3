/*
 * check.c - `warden check`: every error and warning of a config and its
 * rules, then what a postmaster needs to wire the MTA: a summary and the
 * exact macro lines for Postfix main.cf and a Sendmail .mc.
 * Not: loading (config.c) or validation (rules.c, reply.c).
 * Errors: diagnostics on err, the report on out.
 */
#include <string.h>

#include "check.h"
#include "config.h"
#include "macros.h"
#include "rulefp.h"

/* "a b" + needed names missing from it, joined with sep. */
static void
merge(const char *deflt, const char **need, size_t n, const char *sep,
    char *buf, size_t len)
{
	size_t i, at;
	const char *p;
	int found;

	at = (size_t)snprintf(buf, len, "%s", deflt);
	for (i = 0; i < n && at < len; i++) {
		/* Whole-word search in the default list. */
		for (found = 0, p = deflt; (p = strstr(p, need[i])) != NULL;
		    p++) {
			size_t l = strlen(need[i]);

			if ((p == deflt || p[-1] == ' ') && (p[l] == '\0' ||
			    p[l] == ' ' || p[l] == ',')) {
				found = 1;
				break;
			}
		}
		if (!found)
			at += (size_t)snprintf(buf + at, len - at, "%s%s", sep,
			    need[i]);
	}
}

static void
print_macros(const struct ruleset *rs, FILE *out)
{
	const char *need[MACROS_MAX];
	char line[512];
	size_t n;
	int ms;

	fprintf(out, "postfix main.cf (defaults plus what warden needs):\n");
	for (ms = 0; ms < MS_COUNT; ms++) {
		n = macros_needed(rs, ms, need, MACROS_MAX);
		if (n == 0)
			continue;
		merge(macros_postfix_default(ms), need, n, " ", line,
		    sizeof(line));
		fprintf(out, "  %s = %s\n", macros_postfix_param(ms), line);
	}
	fprintf(out, "sendmail .mc (defaults plus what warden needs):\n");
	for (ms = 0; ms < MS_COUNT; ms++) {
		n = macros_needed(rs, ms, need, MACROS_MAX);
		if (n == 0)
			continue;
		merge(macros_sendmail_default(ms), need, n, ", ", line,
		    sizeof(line));
		fprintf(out, "  define(`%s', `%s')dnl\n",
		    macros_sendmail_define(ms), line);
	}
}

static void
print_summary(const struct config *c, FILE *out)
{
	const struct ruleset *rs = c->rs;
	size_t i;
	int s;

	fprintf(out, "files: %zu\n", rs->nfiles);
	for (i = 0; i < rs->nfiles; i++)
		fprintf(out, "  %s\n", rs->files[i]);
	fprintf(out, "rules: %zu (", rs->nrules);
	for (s = 0; s < STAGE_COUNT; s++)
		fprintf(out, "%s%s %zu", s ? ", " : "", stage_name(s),
		    rs->nby_stage[s]);
	fprintf(out, ")\nlimits: %zu\ndry-run rules: %zu\n", rs->nlimits,
	    rs->ndryrun);
	fprintf(out, "store: %s, on_error %s\n", c->store.backend,
	    rules_on_error_name(c->store.on_error));
}

/*
 * Which counters a reload of this config would restart in the running
 * daemon: it records its rules' fingerprints in Redis (rulefp.c). The
 * memory store lives inside the daemon; its reload log says it.
 */
static void
print_counters(const struct config *c, FILE *out)
{
	struct store_redis_opts o;

	if (strcmp(c->store.backend, "redis") != 0) {
		fprintf(out, "counters on reload: not visible from here with "
		    "store.backend %s (the daemon logs \"reload: counters "
		    "restart for rule=...\")\n", c->store.backend);
		return;
	}
	config_redis_opts(c, &o);
	rulefp_check_redis(&o, c->rs, out);
}

/*
 * The man page section that explains what a diagnostic is about, by the
 * key its message starts with (every message names its key first).
 */
static const struct manref {
	const char	*prefix;
	const char	*page;		/* "warden.conf(5)" or "warden.rules(5)" */
	const char	*section;
} manrefs[] = {
	{ "milter",		"warden.conf(5)",	"THE MILTER GROUP" },
	{ "daemon",		"warden.conf(5)",	"THE DAEMON GROUP" },
	{ "rules.",		"warden.conf(5)",	"THE RULES GROUP" },
	{ "store",		"warden.conf(5)",	"THE STORE GROUP" },
	{ "writable by",	"warden.conf(5)",	"FILES" },
	{ "holds a password",	"warden.conf(5)",	"FILES" },
	{ "rules:",		"warden.rules(5)",	"DESCRIPTION" },
	{ "rule:",		"warden.rules(5)",	"RULE KEYS" },
	{ "name:",		"warden.rules(5)",	"RULE KEYS" },
	{ "mode:",		"warden.rules(5)",	"MODES" },
	{ "stage:",		"warden.rules(5)",	"STAGES" },
	{ "match",		"warden.rules(5)",	"MATCH" },
	{ "any:",		"warden.rules(5)",	"MATCH" },
	{ "not:",		"warden.rules(5)",	"MATCH" },
	{ "owner_map",		"warden.rules(5)",	"Owner maps" },
	{ "limit",		"warden.rules(5)",	"LIMITS" },
	{ "on_error",		"warden.rules(5)",	"LIMITS" },
	{ "action",		"warden.rules(5)",	"ACTIONS" },
	{ "add_header",		"warden.rules(5)",	"ACTIONS" },
	{ "reply",		"warden.rules(5)",	"REPLIES" },
};

#define NMANREF	(sizeof(manrefs) / sizeof(manrefs[0]))

/* One "see" line naming each page section the diagnostics touch, once. */
static void
print_manrefs(const struct diag *d, FILE *err)
{
	unsigned char seen[NMANREF] = { 0 };
	const char *page = NULL;
	size_t i, k, n = 0;

	for (i = 0; i < d->n; i++)
		for (k = 0; k < NMANREF; k++)
			if (strncmp(d->v[i].msg, manrefs[k].prefix,
			    strlen(manrefs[k].prefix)) == 0) {
				seen[k] = 1;
				break;
			}
	/* In table order: the config page first, then the rules page. */
	for (k = 0; k < NMANREF; k++) {
		if (!seen[k])
			continue;
		for (i = 0; i < k; i++)	/* a section listed twice */
			if (seen[i] && strcmp(manrefs[i].section,
			    manrefs[k].section) == 0 &&
			    strcmp(manrefs[i].page, manrefs[k].page) == 0)
				break;
		if (i < k)
			continue;
		if (n++ == 0)
			fprintf(err, "warden: see");
		if (page == NULL || strcmp(page, manrefs[k].page) != 0)
			fprintf(err, "%s %s %s", page != NULL ? ";" : "",
			    manrefs[k].page, manrefs[k].section);
		else
			fprintf(err, ", %s", manrefs[k].section);
		page = manrefs[k].page;
	}
	if (n > 0)
		fputc('\n', err);
}

int
check_main(const char *conf, FILE *out, FILE *err)
{
	struct config *c;
	struct diag d;
	int rc;

	diag_init(&d);
	c = config_load(conf, &d);
	diag_print(&d, err);
	print_manrefs(&d, err);
	if (c != NULL) {
		print_summary(c, out);
		print_counters(c, out);
		print_macros(c->rs, out);
	}
	fprintf(c != NULL ? out : err, "check: %s: %s (%zu error%s, %zu "
	    "warning%s)\n", conf, c != NULL ? "ok" : "FAILED", d.errors,
	    d.errors == 1 ? "" : "s", d.warnings, d.warnings == 1 ? "" : "s");
	rc = c != NULL ? 0 : -1;
	config_free(c);
	diag_fini(&d);
	return rc;
}

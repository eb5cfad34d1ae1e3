/*
 * rules_limit.c - a rule's limit = { ... } (DESIGN.md §3): the counter
 * key and its parts, rate, burst, cost, on_error, prefixes, a shared
 * counter.
 * Owns: struct limit, as loaded. Not: the tables of key parts and limit
 * keys or checks across rules (rules.c), counting (gcra.c, the stores).
 * Threads: loading is single-threaded; the limit is then only read.
 * Errors: every problem goes into the loader's diag as FILE:LINE and
 * parsing goes on to the next setting.
 */
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

/* --- limits ---------------------------------------------------------- */

static int
add_key_part(struct loader *l, void *obj, const char *name,
    const config_setting_t *s)
{
	struct rule *r = obj;
	struct limit *lim = r->limit;
	const char *file = lcfg_file(s, l->file);
	char sbuf[128];
	size_t i;
	int k;

	for (k = 0; k < KEY_COUNT; k++)
		if (strcmp(rules_key_name(k), name) == 0)
			break;
	if (k == KEY_COUNT) {
		diag_err(l->d, file, lcfg_line(s), "limit.key: unknown part "
		    "'%s' (client_ip, client_net, helo, sender, sender_domain, "
		    "rcpt, rcpt_domain, auth_user)", name);
		return -1;
	}
	for (i = 0; i < lim->nparts; i++)
		if (lim->parts[i] == (enum key_part)k) {
			diag_err(l->d, file, lcfg_line(s), "limit.key: '%s' "
			    "given twice", name);
			return -1;
		}
	if (!(rules_key_stages(k) & STAGE_BIT(r->stage))) {
		diag_err(l->d, file, lcfg_line(s), "limit.key: %s has no "
		    "value at stage %s (available at: %s)", name,
		    stage_name(r->stage),
		    rules_stages_text(rules_key_stages(k), sbuf, sizeof(sbuf)));
		return -1;
	}
	if (lim->nparts == RULES_KEY_PARTS_MAX)
		return -1;
	lim->parts[lim->nparts++] = (enum key_part)k;
	l->rs->keys_used[r->stage] |= 1u << k;
	return 0;
}

int
rules_parse_limit(struct loader *l, struct rule *r, const config_setting_t *g)
{
	const char *file = lcfg_file(g, l->file), *str;
	const config_setting_t *s;
	struct limit *lim;
	char err[128];
	long long v;
	int rc = 0, got, v32;

	if (!config_setting_is_group(g)) {
		diag_err(l->d, file, lcfg_line(g), "limit: must be a group "
		    "{ key = ...; rate = ...; }, not %s", lcfg_type_name(g));
		return -1;
	}
	if ((lim = r->limit = calloc(1, sizeof(*lim))) == NULL)
		return -1;
	lim->line = lcfg_line(g);
	lim->ipv4_prefix = 24;
	lim->ipv6_prefix = 64;
	lim->cost = 1;
	lim->charge = 1;
	lim->on_error = l->opts->default_on_error;
	if (lcfg_check_keys(g, rules_limit_keys(), file, "limit", l->d) > 0)
		rc = -1;

	if ((s = config_setting_get_member(g, "key")) == NULL) {
		diag_err(l->d, file, lim->line, "limit: key is missing");
		rc = -1;
	} else if (rules_each_string(l, s, "limit.key", add_key_part, r) != 0)
		rc = -1;

	got = lcfg_get_string(g, "rate", &str, file, "limit.", l->d);
	if (got == 0) {
		diag_err(l->d, file, lim->line, "limit: rate is missing");
		rc = -1;
	} else if (got < 0)
		rc = -1;
	else if (gcra_parse_rate(str, &lim->count, &lim->period_ns, err,
	    sizeof(err)) != 0) {
		s = config_setting_get_member(g, "rate");
		diag_err(l->d, file, lcfg_line(s), "limit.rate: \"%s\": %s",
		    str, err);
		rc = -1;
	} else
		str_copy(lim->rate, sizeof(lim->rate), str, strlen(str));

	lim->g.burst = lim->count;
	got = lcfg_get_int(g, "burst", 1, 1000000000000LL, &v, file,
	    "limit.", l->d);
	if (got < 0)
		rc = -1;
	else if (got > 0)
		lim->g.burst = v;

	s = config_setting_get_member(g, "cost");
	if (s != NULL && config_setting_type(s) == CONFIG_TYPE_STRING) {
		if (strcmp(config_setting_get_string(s), "size") != 0) {
			diag_err(l->d, file, lcfg_line(s), "limit.cost: must "
			    "be a positive integer or \"size\"");
			rc = -1;
		} else if (r->stage != STAGE_EOM) {
			diag_err(l->d, file, lcfg_line(s), "limit.cost: "
			    "\"size\" is known only at stage eom");
			rc = -1;
		} else
			lim->cost_size = 1;
	} else if ((got = lcfg_get_int(g, "cost", 1, 1000000000LL, &v, file,
	    "limit.", l->d)) < 0)
		rc = -1;
	else if (got > 0)
		lim->cost = v;

	v32 = (int)lim->on_error;
	if (lcfg_get_choice(g, "on_error", rules_on_error_by_name,
	    "accept, tempfail, memory", &v32, file, "limit.", l->d) < 0)
		rc = -1;
	lim->on_error = (enum on_error)v32;

	/*
	 * counter: rules naming the same counter share it (one rule counts
	 * refused recipients, another refuses the network at connect).
	 */
	got = lcfg_get_string(g, "counter", &str, file, "limit.", l->d);
	if (got < 0)
		rc = -1;
	else if (got > 0 && !rules_valid_name(str)) {
		diag_err(l->d, file, lcfg_line(config_setting_get_member(g,
		    "counter")), "limit.counter: \"%s\" must be 1..%d of "
		    "A-Z a-z 0-9 . _ -", str, RULES_NAME_MAX);
		rc = -1;
	}
	lim->counter = strdup(got > 0 ? str : r->name != NULL ? r->name : "");
	if (lim->counter == NULL)
		rc = -1;
	if (lcfg_get_bool(g, "charge", &lim->charge, file, "limit.",
	    l->d) < 0)
		rc = -1;

	if ((got = lcfg_get_int(g, "ipv4_prefix", 0, 32, &v, file, "limit.",
	    l->d)) < 0)
		rc = -1;
	else if (got > 0)
		lim->ipv4_prefix = (unsigned)v;
	if ((got = lcfg_get_int(g, "ipv6_prefix", 0, 128, &v, file,
	    "limit.", l->d)) < 0)
		rc = -1;
	else if (got > 0)
		lim->ipv6_prefix = (unsigned)v;

	if (lim->count > 0 && gcra_limit_init(&lim->g, lim->count,
	    lim->period_ns, lim->g.burst) != 0)
		rc = -1;
	l->rs->nlimits++;
	return rc;
}

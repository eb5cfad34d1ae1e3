/*
 * rules_cond.c - the match conditions of a rule (DESIGN.md §3): each
 * checked against the rule's stage and compiled into match.c's cheapest
 * form (pattern set, CIDR set, ports, bool, count, nested any/not
 * groups).
 * Owns: struct cond and cond_group, built and freed. Not: the table of
 * conditions (rules.c), the rest of a rule, pattern syntax (match.c).
 * Threads: loading is single-threaded; the conditions are then only read.
 * Errors: every problem goes into the loader's diag as FILE:LINE and
 * parsing goes on to the next condition.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "rules_int.h"

/* --- freeing --------------------------------------------------------- */

static void
cond_fini(struct cond *c)
{
	size_t i;

	free(c->text);
	switch (rules_cond_type(c->kind)) {
	case CT_PATTERNS:
		match_set_free(c->u.set);
		break;
	case CT_CIDR:
		match_cidr_free(c->u.cidr);
		break;
	case CT_PORTS:
		free(c->u.ports.v);
		break;
	case CT_ANY:
		for (i = 0; i < c->u.any.n; i++)
			rules_group_fini(&c->u.any.v[i]);
		free(c->u.any.v);
		break;
	case CT_NOT:
		if (c->u.not != NULL) {
			rules_group_fini(c->u.not);
			free(c->u.not);
		}
		break;
	default:
		break;
	}
}

void
rules_group_fini(struct cond_group *g)
{
	size_t i;

	for (i = 0; i < g->n; i++)
		cond_fini(&g->v[i]);
	free(g->v);
	g->v = NULL;
	g->n = 0;
}

/* --- conditions ------------------------------------------------------ */

static int
cond_by_name(const char *name)
{
	int k;

	for (k = 0; k < COND_COUNT; k++)
		if (strcmp(rules_cond_name(k), name) == 0)
			return k;
	return -1;
}

/* Calls add(elem) for a string or each string of an array/list. */
int
rules_each_string(struct loader *l, const config_setting_t *s, const char *what,
    int (*add)(struct loader *, void *, const char *,
    const config_setting_t *), void *obj)
{
	const config_setting_t *e;
	int i, rc = 0;

	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		return add(l, obj, config_setting_get_string(s), s);
	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST) {
		diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
		    "%s: must be a string or a list of strings, not %s", what,
		    lcfg_type_name(s));
		return -1;
	}
	if (config_setting_length(s) == 0) {
		diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
		    "%s: empty list never matches", what);
		return -1;
	}
	for (i = 0; (e = config_setting_get_elem(s, i)) != NULL; i++) {
		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			diag_err(l->d, lcfg_file(e, l->file), lcfg_line(e),
			    "%s: list element %d must be a string, not %s",
			    what, i + 1, lcfg_type_name(e));
			rc = -1;
			continue;
		}
		if (add(l, obj, config_setting_get_string(e), e) != 0)
			rc = -1;
	}
	return rc;
}

static int
add_pattern(struct loader *l, void *obj, const char *pat,
    const config_setting_t *s)
{
	struct match_src src = { lcfg_file(s, l->file), lcfg_line(s),
	    l->basedir };

	return match_set_add(obj, pat, &src, l->d);
}

static int
add_cidr(struct loader *l, void *obj, const char *net,
    const config_setting_t *s)
{
	struct match_src src = { lcfg_file(s, l->file), lcfg_line(s),
	    l->basedir };

	return match_cidr_add(obj, net, &src, l->d);
}

static int
parse_ports(struct loader *l, const config_setting_t *s, struct cond *c)
{
	const config_setting_t *e;
	int i, n, rc = 0;

	n = config_setting_is_aggregate(s) ? config_setting_length(s) : 1;
	if (config_setting_is_group(s) || n == 0) {
		diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
		    "port: must be a port number or a list of them");
		return -1;
	}
	c->u.ports.v = calloc((size_t)n, sizeof(int));
	if (c->u.ports.v == NULL) {
		diag_err(l->d, l->file, lcfg_line(s), "out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		e = config_setting_is_aggregate(s) ?
		    config_setting_get_elem(s, i) : s;
		if (config_setting_type(e) != CONFIG_TYPE_INT ||
		    config_setting_get_int(e) < 1 ||
		    config_setting_get_int(e) > 65535) {
			diag_err(l->d, lcfg_file(e, l->file), lcfg_line(e),
			    "port: must be an integer in 1..65535");
			rc = -1;
			continue;
		}
		c->u.ports.v[c->u.ports.n++] = config_setting_get_int(e);
	}
	return rc;
}

/* Whether "" or "<>" (an absent value, the null sender) is listed. */
static int
lists_empty(const config_setting_t *s)
{
	const config_setting_t *e;
	const char *v;
	int i;

	for (i = 0; ; i++) {
		e = config_setting_is_aggregate(s) ?
		    config_setting_get_elem(s, i) : i == 0 ? s : NULL;
		if (e == NULL)
			return 0;
		v = config_setting_get_string(e);
		if (v != NULL && (v[0] == '\0' || strcmp(v, "<>") == 0))
			return 1;
	}
}

static int
parse_cond(struct loader *l, struct rule *r, const config_setting_t *s,
    struct cond *c, int depth)
{
	const char *name = config_setting_name(s);
	const char *file = lcfg_file(s, l->file);
	const config_setting_t *e;
	char buf[256], sbuf[128];
	int k, i, rc = 0;
	long long v;

	k = cond_by_name(name);
	if (k < 0) {
		diag_err(l->d, file, lcfg_line(s), "match: unknown condition "
		    "'%s'", name);
		return -1;
	}
	c->kind = (enum cond_kind)k;
	c->line = lcfg_line(s);
	if (!(rules_cond_stages(k) & STAGE_BIT(r->stage))) {
		diag_err(l->d, file, c->line, "match: %s has no value at "
		    "stage %s (available at: %s)", name, stage_name(r->stage),
		    rules_stages_text(rules_cond_stages(k), sbuf,
		    sizeof(sbuf)));
		rc = -1;
	}
	l->rs->conds_used[r->stage] |= 1u << k;
	lcfg_text(s, buf, sizeof(buf));
	if ((c->text = strdup(buf)) == NULL) {
		diag_err(l->d, file, c->line, "out of memory");
		return -1;
	}
	switch (rules_cond_type(k)) {
	case CT_PATTERNS:
		if ((c->u.set = match_set_new()) == NULL)
			return -1;
		if (rules_each_string(l, s, name, add_pattern, c->u.set) != 0)
			rc = -1;
		c->empty_ok = lists_empty(s);
		break;
	case CT_CIDR:
		if ((c->u.cidr = match_cidr_new()) == NULL)
			return -1;
		if (rules_each_string(l, s, name, add_cidr, c->u.cidr) != 0)
			rc = -1;
		match_cidr_compile(c->u.cidr);
		break;
	case CT_PORTS:
		if (parse_ports(l, s, c) != 0)
			rc = -1;
		break;
	case CT_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
			diag_err(l->d, file, c->line, "%s: must be true or "
			    "false, not %s", name, lcfg_type_name(s));
			return -1;
		}
		c->u.b = config_setting_get_bool(s);
		if (k == COND_SENDER_OWNED && !l->have_owned)
			l->have_owned = c->line > 0 ? c->line : 1;
		break;
	case CT_COUNT:
		if (config_setting_type(s) != CONFIG_TYPE_INT &&
		    config_setting_type(s) != CONFIG_TYPE_INT64) {
			diag_err(l->d, file, c->line, "%s: must be an integer, "
			    "not %s", name, lcfg_type_name(s));
			return -1;
		}
		v = config_setting_get_int64(s);
		if (v < 0 || v > (k == COND_SIZE_OVER ? LLONG_MAX / 2 :
		    1000000000LL)) {
			diag_err(l->d, file, c->line, "%s: %lld out of range",
			    name, v);
			return -1;
		}
		c->u.n = v;
		break;
	case CT_ANY:
		if (config_setting_type(s) != CONFIG_TYPE_LIST ||
		    config_setting_length(s) == 0) {
			diag_err(l->d, file, c->line, "any: must be a list of "
			    "groups: any = ( { ... }, { ... } )");
			return -1;
		}
		if (depth >= RULES_NEST_MAX) {
			diag_err(l->d, file, c->line, "any: nested deeper "
			    "than %d levels", RULES_NEST_MAX);
			return -1;
		}
		c->u.any.n = (size_t)config_setting_length(s);
		c->u.any.v = calloc(c->u.any.n, sizeof(*c->u.any.v));
		if (c->u.any.v == NULL) {
			c->u.any.n = 0;
			return -1;
		}
		for (i = 0; (e = config_setting_get_elem(s, i)) != NULL; i++)
			if (rules_parse_group(l, r, e, &c->u.any.v[i],
			    depth + 1))
				rc = -1;
		break;
	case CT_NOT:
		if (depth >= RULES_NEST_MAX) {
			diag_err(l->d, file, c->line, "not: nested deeper "
			    "than %d levels", RULES_NEST_MAX);
			return -1;
		}
		if ((c->u.not = calloc(1, sizeof(*c->u.not))) == NULL)
			return -1;
		if (rules_parse_group(l, r, s, c->u.not, depth + 1) != 0)
			rc = -1;
		break;
	}
	return rc;
}

int
rules_parse_group(struct loader *l, struct rule *r, const config_setting_t *g,
    struct cond_group *out, int depth)
{
	const config_setting_t *e;
	int i, n, rc = 0;

	if (!config_setting_is_group(g)) {
		diag_err(l->d, lcfg_file(g, l->file), lcfg_line(g),
		    "match: must be a group { ... }, not %s",
		    lcfg_type_name(g));
		return -1;
	}
	n = config_setting_length(g);
	if (n == 0)
		return 0;
	if ((out->v = calloc((size_t)n, sizeof(*out->v))) == NULL) {
		diag_err(l->d, l->file, lcfg_line(g), "out of memory");
		return -1;
	}
	for (i = 0; (e = config_setting_get_elem(g, i)) != NULL; i++) {
		/* Keep the slot so cond_fini frees what was built. */
		out->n++;
		if (parse_cond(l, r, e, &out->v[i], depth) != 0)
			rc = -1;
	}
	return rc;
}

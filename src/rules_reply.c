/*
 * rules_reply.c - a rule's reply and add_header settings (DESIGN.md §3),
 * checked against the rule's stage and action.
 * Owns: reading those settings into the rule. Not: reply syntax and
 * templates (reply.c), sending them (milter.c).
 * Threads: loading is single-threaded; the result is then only read.
 * Errors: every problem goes into the loader's diag as FILE:LINE.
 */
#include <string.h>

#include "rules_int.h"
#include "session.h"

/* --- replies and tags ------------------------------------------------ */

int
rules_parse_reply(struct loader *l, struct rule *r, const config_setting_t *s)
{
	const char *lines[REPLY_LINES_MAX + 1];
	const config_setting_t *e;
	struct reply_ctx ctx;
	size_t n = 0;
	int i;

	ctx.file = lcfg_file(s, l->file);
	ctx.line = lcfg_line(s);
	ctx.stage = r->stage;
	ctx.action = r->action;
	if (r->action != ACTION_REJECT && r->action != ACTION_TEMPFAIL) {
		diag_err(l->d, ctx.file, ctx.line, "reply: action %s sends no "
		    "reply (only reject and tempfail do)",
		    action_name(r->action));
		return -1;
	}
	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		lines[n++] = config_setting_get_string(s);
	else if (config_setting_type(s) == CONFIG_TYPE_ARRAY ||
	    config_setting_type(s) == CONFIG_TYPE_LIST) {
		if (config_setting_length(s) > REPLY_LINES_MAX) {
			diag_err(l->d, ctx.file, ctx.line, "reply: %d lines, "
			    "at most %d", config_setting_length(s),
			    REPLY_LINES_MAX);
			return -1;
		}
		for (i = 0; (e = config_setting_get_elem(s, i)) != NULL; i++) {
			if (config_setting_type(e) != CONFIG_TYPE_STRING) {
				diag_err(l->d, ctx.file, lcfg_line(e), "reply: "
				    "line %d must be a string", i + 1);
				return -1;
			}
			lines[n++] = config_setting_get_string(e);
		}
	}
	if (n == 0) {
		diag_err(l->d, ctx.file, ctx.line, "reply: must be a string "
		    "\"CODE X.Y.Z text\" or a list of them");
		return -1;
	}
	if (reply_parse(&r->reply, lines, n, &ctx, l->d) != 0)
		return -1;
	r->has_reply = 1;
	l->rs->vars_used[r->stage] |= r->reply.vars;
	return 0;
}

/* add_header = "Name: value template" */
int
rules_parse_tag(struct loader *l, struct rule *r, const config_setting_t *s)
{
	const char *file = lcfg_file(s, l->file), *v, *colon, *p;
	struct reply_ctx ctx = { file, lcfg_line(s), r->stage, r->action };

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		diag_err(l->d, file, ctx.line, "add_header: must be a string "
		    "\"Name: value\"");
		return -1;
	}
	if (r->action != ACTION_TAG) {
		diag_err(l->d, file, ctx.line, "add_header: only action tag "
		    "adds a header, not %s", action_name(r->action));
		return -1;
	}
	v = config_setting_get_string(s);
	colon = strchr(v, ':');
	/* RFC 5322 §2.2: field names are printable ASCII except ':'. */
	for (p = v; colon != NULL && p < colon; p++)
		if (*p <= ' ' || *p > '~')
			break;
	if (colon == NULL || colon == v || p != colon ||
	    (size_t)(colon - v) >= SESS_HDR_NAME_MAX) {
		diag_err(l->d, file, ctx.line, "add_header: \"%s\" is not "
		    "\"Name: value\" with a valid header name", v);
		return -1;
	}
	if ((r->tag_name = strndup(v, (size_t)(colon - v))) == NULL)
		return -1;
	for (p = colon + 1; *p == ' ' || *p == '\t'; p++)
		;
	if (reply_tmpl_parse(&r->tag_value, p, &ctx, l->d) != 0)
		return -1;
	l->rs->vars_used[r->stage] |= r->tag_value.vars;
	return 0;
}

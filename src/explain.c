/*
 * explain.c - `warden explain`: one session evaluated offline, stage by
 * stage in SMTP order, each rule with matched or not and why, limits with
 * the key they would charge (peeked on a private memory store, never
 * charged), and the exact reply lines the MTA would send (DESIGN.md §8).
 * Not: policy (engine.c). Errors: usage problems return 2, config
 * problems 1 (printed as FILE:LINE: message).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine.h"
#include "explain.h"

#define EXPLAIN_ITEMS_MAX 64
#define REPLY_BUF	(REPLY_OUT_MAX + REPLY_LINES_MAX * 24)
#define VERDICT_BUF	(REPLY_BUF + 256)

struct item {
	const char	*val;
	int		rejected;	/* rcpt_rejected */
};

struct input {
	struct sess	s;
	int		have_helo, have_sender;
	struct item	rcpts[EXPLAIN_ITEMS_MAX];
	size_t		nrcpts;
	const char	*commands[EXPLAIN_ITEMS_MAX];
	size_t		ncommands;
	const char	*headers[EXPLAIN_ITEMS_MAX];
	size_t		nheaders;
	long long	size;
};

struct out {
	FILE		*f;
};

static int
parse_num(const char *name, const char *v, long long max, long long *out,
    FILE *err)
{
	if (str_to_ll(v, 0, max, out) != 0) {
		fprintf(err, "warden explain: %s=%s: not a number in 0..%lld\n",
		    name, v, max);
		return -1;
	}
	return 0;
}

static int
push(const char **v, size_t *n, const char *s, const char *name, FILE *err)
{
	if (*n == EXPLAIN_ITEMS_MAX) {
		fprintf(err, "warden explain: more than %d %s\n",
		    EXPLAIN_ITEMS_MAX, name);
		return -1;
	}
	v[(*n)++] = s;
	return 0;
}

static int
parse_arg(struct input *in, const char *arg, FILE *err)
{
	const char *eq = strchr(arg, '='), *v;
	struct sess *s = &in->s;
	char name[32];
	long long n;

	if (eq == NULL || (size_t)(eq - arg) >= sizeof(name)) {
		fprintf(err, "warden explain: \"%s\" is not NAME=VALUE\n", arg);
		return -1;
	}
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = '\0';
	v = eq + 1;
	if (strcmp(name, "client") == 0) {
		sess_set_client(s, v, strlen(v), 0);
		if (s->ip.family == 0) {
			fprintf(err, "warden explain: client=%s: not an IP "
			    "address\n", v);
			return -1;
		}
	} else if (strcmp(name, "client_name") == 0)
		sess_set_client_name(s, v, strlen(v));
	else if (strcmp(name, "port") == 0) {
		if (parse_num(name, v, 65535, &n, err) != 0)
			return -1;
		s->port = (int)n;
	} else if (strcmp(name, "daemon") == 0)
		sess_set_daemon(s, v, strlen(v));
	else if (strcmp(name, "helo") == 0) {
		sess_set_helo(s, v, strlen(v));
		in->have_helo = 1;
	} else if (strcmp(name, "sender") == 0) {
		sess_set_sender(s, v, strlen(v));
		in->have_sender = 1;
	} else if (strcmp(name, "rcpt") == 0 ||
	    strcmp(name, "rcpt_rejected") == 0) {
		if (in->nrcpts == EXPLAIN_ITEMS_MAX) {
			fprintf(err, "warden explain: too many recipients\n");
			return -1;
		}
		in->rcpts[in->nrcpts].val = v;
		in->rcpts[in->nrcpts++].rejected = name[4] == '_';
	} else if (strcmp(name, "auth_user") == 0)
		sess_set_auth(s, v, strlen(v), s->auth_mech,
		    strlen(s->auth_mech));
	else if (strcmp(name, "auth_mech") == 0)
		str_copy(s->auth_mech, sizeof(s->auth_mech), v, strlen(v));
	else if (strcmp(name, "tls") == 0) {
		if (strcmp(v, "none") == 0 || v[0] == '\0')
			sess_set_tls(s, NULL, 0, 0);
		else
			sess_set_tls(s, v, strlen(v), s->cipher_bits ?
			    s->cipher_bits : 256);
	} else if (strcmp(name, "cipher_bits") == 0) {
		if (parse_num(name, v, 65535, &n, err) != 0)
			return -1;
		s->cipher_bits = (int)n;
	} else if (strcmp(name, "size") == 0) {
		if (parse_num(name, v, (long long)1 << 50, &in->size, err) != 0)
			return -1;
	} else if (strcmp(name, "command") == 0)
		return push(in->commands, &in->ncommands, v, "commands", err);
	else if (strcmp(name, "header") == 0) {
		if (strchr(v, ':') == NULL) {
			fprintf(err, "warden explain: header=%s: not \"Name: "
			    "value\"\n", v);
			return -1;
		}
		return push(in->headers, &in->nheaders, v, "headers", err);
	} else {
		fprintf(err, "warden explain: unknown name \"%s\"\n", name);
		return -1;
	}
	return 0;
}

static void
on_trace(void *arg, const struct rule *r, int matched, const char *why)
{
	struct out *o = arg;

	fprintf(o->f, "  rule %s: %s (%s)%s\n", r->name, matched ? "matched" :
	    "no", why[0] ? why : "no match conditions",
	    r->mode == MODE_DRYRUN && matched ? " [dry-run]" : "");
}

static void
print_reply(FILE *f, const char *what, const struct reply_out *rep)
{
	char buf[REPLY_BUF];
	char *line, *save = NULL;

	if (rep->nlines <= 1) {
		reply_out_format(rep, "\n", buf, sizeof(buf));
		fprintf(f, "  -> %s \"%s\"\n", what, buf);
		return;
	}
	fprintf(f, "  -> %s\n", what);
	reply_out_format(rep, "\n", buf, sizeof(buf));
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		fprintf(f, "       %s\n", line);
}

static void
on_decision(void *arg, const struct engine_decision *d)
{
	struct out *o = arg;
	char what[64];

	if (!d->dryrun && d->action != ACTION_LOG && d->action != ACTION_TAG &&
	    !(d->store_error && d->action == ACTION_CONTINUE))
		return;	/* the final verdict is printed by the walk */
	if (d->store_error && d->action == ACTION_CONTINUE) {
		fprintf(o->f, "  -> %s: store error, on_error=accept\n",
		    d->rule->name);
		return;
	}
	if (d->dryrun)
		snprintf(what, sizeof(what), "dryrun would=%s",
		    action_name(d->action));
	else
		snprintf(what, sizeof(what), "%s", action_name(d->action));
	if (d->reply != NULL)
		print_reply(o->f, what, d->reply);
	else if (d->action == ACTION_TAG)
		fprintf(o->f, "  -> tag %s: %s\n",
		    d->sess->tags[d->sess->ntags - 1].hdr_name,
		    d->sess->tags[d->sess->ntags - 1].hdr_value);
	else
		fprintf(o->f, "  -> %s\n", what);
}

/*
 * DESIGN.md §8 lists each rule of the stage: the ones after the rule that
 * decided are not evaluated (nor in the daemon), and say so.
 */
static void
not_reached(const struct ruleset *rs, enum stage st, const struct rule *by,
    FILE *f)
{
	size_t i;
	int after = 0;

	for (i = 0; i < rs->nby_stage[st]; i++) {
		if (after)
			fprintf(f, "  rule %s: not evaluated (rule %s "
			    "decided)\n", rs->by_stage[st][i]->name, by->name);
		else if (rs->by_stage[st][i] == by)
			after = 1;
	}
}

/* Runs one stage; returns 1 when its verdict ends the session or the
 * transaction (so later stages are not walked). */
static int
stage(const struct engine_ctx *ctx, const struct ruleset *rs,
    struct input *in, enum stage st, const char *label, int64_t now,
    struct engine_result *res, FILE *f, char *verdict, size_t vlen)
{
	char buf[REPLY_BUF];
	int was_closed = in->s.closed_by != NULL;

	fprintf(f, "stage %s%s\n", stage_name(st), label);
	if (was_closed)
		fprintf(f, "  (session closed by rule %s: every command gets "
		    "its 421)\n", in->s.closed_by->name);
	else if (rs->nby_stage[st] == 0)
		fprintf(f, "  (no rules)\n");
	engine_eval(ctx, rs, &in->s, st, now, res);
	if (res->action != ACTION_CONTINUE && res->rule != NULL && !was_closed)
		not_reached(rs, st, res->rule, f);
	switch (res->action) {
	case ACTION_CONTINUE:
		return 0;
	case ACTION_REJECT:
	case ACTION_TEMPFAIL:
		print_reply(f, action_name(res->action), &res->reply);
		reply_out_format_log(&res->reply, buf, sizeof(buf));
		/*
		 * DESIGN.md §4a: the MTA ignores a milter's reply to a
		 * recipient it has refused already; the client sees the
		 * MTA's own reply, and a 421 lands at its next command.
		 */
		if (st == STAGE_ENVRCPT && in->s.rcpt_rejected) {
			fprintf(f, "  (the MTA refused this recipient itself "
			    "and ignores this reply%s)\n", res->closes ?
			    "; the 421 answers the client's next command" :
			    "");
			if (res->closes)
				snprintf(verdict, vlen, "%s after envrcpt: %s "
				    "(at the client's next command)",
				    action_name(res->action), buf);
			return 0;
		}
		snprintf(verdict, vlen, "%s at %s: %s",
		    action_name(res->action), stage_name(st), buf);
		if (res->closes)
			fprintf(f, "  (421: the MTA closes the session)\n");
		/* A recipient's refusal ends only that recipient. */
		return st != STAGE_ENVRCPT || res->closes;
	default:
		fprintf(f, "  -> %s (rule %s)\n", action_name(res->action),
		    res->rule->name);
		snprintf(verdict, vlen, "%s at %s (rule %s)",
		    action_name(res->action), stage_name(st), res->rule->name);
		return res->action == ACTION_DISCARD;
	}
}

static void
walk(const struct engine_ctx *ctx, const struct ruleset *rs,
    struct input *in, int64_t now, FILE *f)
{
	struct engine_result *res;
	char verdict[VERDICT_BUF], label[SESS_ADDR_MAX + 64], name[SESS_HDR_NAME_MAX];
	const char *v, *colon;
	size_t i, ok_rcpts = 0;
	int done = 0;

	if ((res = malloc(sizeof(*res))) == NULL) {
		fprintf(f, "out of memory\n");
		return;
	}
	snprintf(verdict, sizeof(verdict), "accept");
	done = stage(ctx, rs, in, STAGE_CONNECT, "", now, res, f, verdict,
	    sizeof(verdict));
	if (!done && in->have_helo)
		done = stage(ctx, rs, in, STAGE_HELO, "", now, res, f, verdict,
		    sizeof(verdict));
	for (i = 0; !done && i < in->ncommands; i++) {
		sess_set_command(&in->s, in->commands[i],
		    strlen(in->commands[i]));
		snprintf(label, sizeof(label), " (%s)", in->s.command);
		done = stage(ctx, rs, in, STAGE_UNKNOWN, label, now, res, f,
		    verdict, sizeof(verdict));
	}
	if (!done && in->have_sender) {
		in->s.size = in->size;
		done = stage(ctx, rs, in, STAGE_ENVFROM, "", now, res, f,
		    verdict, sizeof(verdict));
	}
	for (i = 0; !done && in->have_sender && i < in->nrcpts; i++) {
		v = in->rcpts[i].val;
		sess_set_rcpt(&in->s, v, strlen(v), in->rcpts[i].rejected);
		snprintf(label, sizeof(label), " (%s<%s>)",
		    in->rcpts[i].rejected ? "refused by the MTA: " : "", in->s.rcpt);
		done = stage(ctx, rs, in, STAGE_ENVRCPT, label, now, res, f,
		    verdict, sizeof(verdict));
		if (!done && res->action == ACTION_CONTINUE &&
		    !in->rcpts[i].rejected)
			ok_rcpts++;
	}
	if (!done && in->have_sender && in->nrcpts > 0 && ok_rcpts == 0) {
		fprintf(f, "no recipient left: the MTA sends no DATA\n");
		done = 1;
	}
	if (!done && in->have_sender && ok_rcpts > 0) {
		in->s.rcpt[0] = '\0';
		done = stage(ctx, rs, in, STAGE_DATA, "", now, res, f, verdict,
		    sizeof(verdict));
		for (i = 0; !done && i < in->nheaders; i++) {
			colon = strchr(in->headers[i], ':');
			str_copy(name, sizeof(name), in->headers[i],
			    (size_t)(colon - in->headers[i]));
			for (v = colon + 1; *v == ' '; v++)
				;
			sess_set_header(&in->s, name, strlen(name), v,
			    strlen(v));
			snprintf(label, sizeof(label), " (%s)", name);
			done = stage(ctx, rs, in, STAGE_HEADER, label, now, res,
			    f, verdict, sizeof(verdict));
		}
		if (!done) {
			in->s.size = in->size;
			(void)stage(ctx, rs, in, STAGE_EOM, "", now, res, f,
			    verdict, sizeof(verdict));
			for (i = 0; i < in->s.ntags; i++)
				fprintf(f, "  header added: %s: %s\n",
				    in->s.tags[i].hdr_name,
				    in->s.tags[i].hdr_value);
		}
	}
	fprintf(f, "verdict: %s\n", verdict);
	free(res);
}

int
explain_main(const char *conf, int argc, char **argv, int64_t now,
    FILE *out, FILE *err)
{
	struct engine_ctx ctx;
	struct out o = { out };
	struct config *c;
	struct input *in;
	struct diag d;
	int i, rc = 0;

	if ((in = calloc(1, sizeof(*in))) == NULL)
		return 1;
	sess_init(&in->s);
	for (i = 0; i < argc; i++)
		if (parse_arg(in, argv[i], err) != 0) {
			free(in);
			return 2;
		}
	diag_init(&d);
	c = config_load(conf, &d);
	diag_print(&d, err);
	if (c == NULL) {
		rc = 1;
		goto out;
	}
	memset(&ctx, 0, sizeof(ctx));
	/* A private, empty store: explain shows keys, it charges nothing. */
	ctx.store = store_memory_new(1024);
	ctx.fallback = ctx.store;
	ctx.hooks.arg = &o;
	ctx.hooks.trace = on_trace;
	ctx.hooks.decision = on_decision;
	if (ctx.store == NULL) {
		fprintf(err, "warden explain: out of memory\n");
		rc = 1;
	} else
		walk(&ctx, c->rs, in, now, out);
	store_free(ctx.store);
	config_free(c);
out:
	diag_fini(&d);
	free(in);
	return rc;
}

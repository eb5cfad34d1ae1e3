/*
 * declog.c - formats one decision as a Postfix-style log line:
 *   4XyZ1abc: reject rule=R stage=envfrom client=[192.0.2.1]:41233
 *   port=587 helo=<x> from=<a@b> to=<c@d> user=u reply="530 5.7.0 ..."
 * Everything the client sent goes through log_esc (no control bytes,
 * bounded), so a line can neither be split nor forged.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "declog.h"
#include "log.h"

struct line {
	char	*buf;
	size_t	len, at;
};

static void
put(struct line *l, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void
put(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (l->at + 1 >= l->len)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->at, l->len - l->at, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->at += (size_t)n < l->len - l->at ? (size_t)n :
		    l->len - l->at - 1;
}

/* key=<escaped value>, or key="..." with quote="\"". */
/*
 * key=<escaped value>, or key="..." with quote="\"". A value the session
 * had to cut at its cap ends with "..." so it does not look complete.
 */
static void
field(struct line *l, const char *key, const char *v, const char *open,
    const char *close, int cut)
{
	char esc[LOG_ESC_BUF];

	/* log_esc marks a value it had to cut itself: one marker is enough. */
	log_esc(v, strlen(v), esc, sizeof(esc));
	put(l, " %s=%s%s%s%s", key, open, esc,
	    cut && strlen(v) <= LOG_ESC_MAX ? "..." : "", close);
}

const char *
declog_format(const struct engine_decision *d, char *buf, size_t len)
{
	const struct sess *s = d->sess;
	struct line l = { buf, len, 0 };
	char rep[REPLY_OUT_MAX + 64], qid[LOG_ESC_BUF];

	if (len == 0)
		return buf;
	buf[0] = '\0';
	if (s->queue_id[0] != '\0')
		log_esc(s->queue_id, strlen(s->queue_id), qid, sizeof(qid));
	else
		snprintf(qid, sizeof(qid), "NOQUEUE");
	if (d->dryrun)
		put(&l, "%s: dryrun would=%s", qid, action_name(d->action));
	else if (d->store_error && d->action == ACTION_CONTINUE)
		put(&l, "%s: store-error on_error=accept", qid);
	else
		put(&l, "%s: %s", qid, action_name(d->action));
	put(&l, " rule=%s stage=%s", d->rule->name, stage_name(d->stage));
	if (s->client_ip[0] != '\0') {
		log_esc(s->client_ip, strlen(s->client_ip), rep, sizeof(rep));
		put(&l, " client=[%s]:%u", rep, s->client_port);
	}
	if (s->port > 0)
		put(&l, " port=%d", s->port);
	if (s->helo[0] != '\0')
		field(&l, "helo", s->helo, "<", ">", s->truncated & SF_HELO);
	if (s->has_sender)
		field(&l, "from", s->sender, "<", ">",
		    s->truncated & SF_SENDER);
	if (d->stage == STAGE_ENVRCPT && s->rcpt[0] != '\0')
		field(&l, "to", s->rcpt, "<", ">", s->truncated & SF_RCPT);
	if (s->auth)
		field(&l, "user", s->auth_user, "", "",
		    s->truncated & SF_AUTH_USER);
	if (d->stage == STAGE_UNKNOWN && s->command[0] != '\0')
		field(&l, "command", s->command, "", "",
		    s->truncated & SF_COMMAND);
	if (d->reply != NULL) {
		reply_out_format_log(d->reply, rep, sizeof(rep));
		field(&l, "reply", rep, "\"", "\"", 0);
	}
	return buf;
}

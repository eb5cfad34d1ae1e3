/*
 * declog.c - formats one decision as a Postfix-style log line:
 *   4XyZ1abc: reject rule=R stage=envfrom client=[192.0.2.1]:41233
 *   port=587 helo=<x> from=<a@b> to=<c@d> user=u reply="530 5.7.0 ..."
 * Everything the client sent goes through log_esc (no control bytes,
 * bounded), so a line can neither be split nor forged. With
 * daemon.log_privacy the client IP, addresses and login are replaced by
 * keyed digests (log_digest), also inside the HELO and the reply text.
 * Threads: pure; everything is on the caller's stack.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "declog.h"
#include "log.h"

/* The private values of a session, at most: IP, sender, rcpt, user. */
#define PRIV_VALUES	4

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

/* One value to hide: its digest, and how a reply or HELO shows it. */
struct priv_value {
	const char *src;			/* the session's field */
	char	shown[REPLY_VAR_MAX + 1];	/* as reply.c expands it */
	size_t	len;
	char	digest[LOG_DIGEST_BUF];
};

struct privacy {
	const struct declog_priv *p;		/* NULL: clear text */
	struct priv_value v[PRIV_VALUES];
	size_t	n;
};

/*
 * reply.c puts at most REPLY_VAR_MAX bytes of a value into a reply and
 * turns every byte outside printable ASCII into '?': that is the text
 * to look for.
 */
static void
priv_add(struct privacy *pv, const char *v)
{
	struct priv_value *x;
	size_t i;

	if (pv->p == NULL || v[0] == '\0' || pv->n == PRIV_VALUES)
		return;
	x = &pv->v[pv->n++];
	x->src = v;
	x->len = strnlen(v, REPLY_VAR_MAX);
	for (i = 0; i < x->len; i++)
		x->shown[i] = (unsigned char)v[i] < 0x20 ||
		    (unsigned char)v[i] > 0x7e ? '?' : v[i];
	x->shown[x->len] = '\0';
	log_digest(pv->p->key, pv->p->keylen, v, strlen(v), x->digest,
	    sizeof(x->digest));
}

/* The digest of the session field v (one that priv_add took). */
static const char *
priv_digest(const struct privacy *pv, const char *v)
{
	size_t i;

	for (i = 0; i < pv->n; i++)
		if (pv->v[i].src == v)
			return pv->v[i].digest;
	return "hmac:?";
}

/*
 * Copies in to out replacing every occurrence of a private value by its
 * digest, in one pass (a digest is never searched again), the longest
 * value first where several start at the same byte. Substrings of other
 * words are replaced too: a login "ann" also hides "ann" in "annual".
 * That reads oddly but never leaks, where a word-boundary rule would
 * leak "%{auth_user}s". Cut to fit out; always NUL-terminated.
 */
static void
redact(const struct privacy *pv, const char *in, char *out, size_t outlen)
{
	const struct priv_value *best;
	size_t o = 0, i, dl;

	while (*in != '\0' && o + 1 < outlen) {
		best = NULL;
		for (i = 0; i < pv->n; i++)
			if (strncmp(in, pv->v[i].shown, pv->v[i].len) == 0 &&
			    (best == NULL || pv->v[i].len > best->len))
				best = &pv->v[i];
		if (best == NULL) {
			out[o++] = *in++;
			continue;
		}
		dl = strlen(best->digest);
		if (o + dl + 1 > outlen)
			break;
		memcpy(out + o, best->digest, dl);
		o += dl;
		in += best->len;
	}
	out[o] = '\0';
}

/* A private field: its digest in place of the escaped value. */
static void
pfield(struct line *l, const struct privacy *pv, const char *key,
    const char *v, const char *open, const char *close, int cut)
{
	if (pv->p == NULL) {
		field(l, key, v, open, close, cut);
		return;
	}
	/* A cut value's digest is not the whole address's: say so. */
	put(l, " %s=%s%s%s%s", key, open, priv_digest(pv, v), cut ? "..." :
	    "", close);
}

static const char *
format(const struct engine_decision *d, const struct declog_priv *priv,
    char *buf, size_t len)
{
	const struct sess *s = d->sess;
	struct line l = { buf, len, 0 };
	struct privacy pv;
	char rep[REPLY_OUT_MAX + 64], qid[LOG_ESC_BUF];
	char red[REPLY_OUT_MAX + 64];

	if (len == 0)
		return buf;
	buf[0] = '\0';
	memset(&pv, 0, sizeof(pv));
	if (priv != NULL && priv->key != NULL && priv->keylen > 0) {
		pv.p = priv;
		priv_add(&pv, s->client_ip);
		if (s->has_sender)
			priv_add(&pv, s->sender);
		priv_add(&pv, s->rcpt);
		if (s->auth)
			priv_add(&pv, s->auth_user);
	}
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
		if (pv.p != NULL)
			snprintf(rep, sizeof(rep), "%s",
			    priv_digest(&pv, s->client_ip));
		else
			log_esc(s->client_ip, strlen(s->client_ip), rep,
			    sizeof(rep));
		put(&l, " client=[%s]:%u", rep, s->client_port);
	}
	if (s->port > 0)
		put(&l, " port=%d", s->port);
	if (s->helo[0] != '\0') {
		/* A HELO may be the client's IP literal: "[192.0.2.1]". */
		redact(&pv, s->helo, red, sizeof(red));
		field(&l, "helo", red, "<", ">", s->truncated & SF_HELO);
	}
	/* The null sender is no address: from=<> stays. */
	if (s->has_sender && s->sender[0] == '\0')
		field(&l, "from", "", "<", ">", 0);
	else if (s->has_sender)
		pfield(&l, &pv, "from", s->sender, "<", ">",
		    s->truncated & SF_SENDER);
	if (d->stage == STAGE_ENVRCPT && s->rcpt[0] != '\0')
		pfield(&l, &pv, "to", s->rcpt, "<", ">",
		    s->truncated & SF_RCPT);
	if (s->auth && s->auth_user[0] != '\0')
		pfield(&l, &pv, "user", s->auth_user, "", "",
		    s->truncated & SF_AUTH_USER);
	else if (s->auth)
		field(&l, "user", "", "", "", 0);
	if (d->stage == STAGE_UNKNOWN && s->command[0] != '\0')
		field(&l, "command", s->command, "", "",
		    s->truncated & SF_COMMAND);
	if (d->reply != NULL) {
		reply_out_format_log(d->reply, rep, sizeof(rep));
		redact(&pv, rep, red, sizeof(red));
		field(&l, "reply", red, "\"", "\"", 0);
	}
	return buf;
}

const char *
declog_format(const struct engine_decision *d, char *buf, size_t len)
{
	return format(d, NULL, buf, len);
}

const char *
declog_format_priv(const struct engine_decision *d,
    const struct declog_priv *priv, char *buf, size_t len)
{
	return format(d, priv, buf, len);
}

/*
 * declog.c - formats one decision as a Postfix-style log line:
 *   4XyZ1abc: reject rule=R stage=envfrom client=[192.0.2.1]:41233
 *   port=587 helo=<x> from=<a@b> to=<c@d> user=u reply="530 5.7.0 ..."
 * Everything the client sent goes through log_esc (no control bytes,
 * bounded), so a line can neither be split nor forged. With
 * daemon.log_privacy the client IP, addresses and login are replaced by
 * keyed digests (log_digest). The logged reply is then the rule's
 * template expanded again with digests as the values, never the client's
 * reply with values searched for afterwards: wrapping and cutting split
 * values, and a split value is no longer found. A HELO or client name
 * that is an IP literal, or embeds the client's address, shows digests
 * in place of the address (helo_priv).
 * Threads: pure; everything is on the caller's stack.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "declog.h"
#include "log.h"
#include "match.h"

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
	const struct sess *s;
	struct priv_value v[PRIV_VALUES];
	size_t	n;
};

/* A HELO or client name as logged under privacy: the name's bound
 * with room for digests. */
#define NAME_LOG_MAX	(SESS_NAME_MAX * 2)

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

/* --- IP addresses inside HELO and client names ------------------- */

/* Where a name embeds an address: bytes [from, to) of it. */
struct span {
	size_t	from, to;
};

/* Keeps the earlier of two spans in *best. Returns 1 (found). */
static int
span_min(struct span *best, int found, size_t from, size_t to)
{
	if (!found || from < best->from) {
		best->from = from;
		best->to = to;
	}
	return 1;
}

static int
is_dig(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * IPv4 a.b.c.d in a name, as ISPs write it: four decimal numbers in a
 * row, either order, each 1-3 separator bytes apart ("1-2-3-4",
 * "4.3.2.1.in-addr", "ip1_2_3_4", "001.002.003.004"), twelve digits
 * zero-padded ("192000002001"), or 8 hex digits ("c0000201").
 */
static int
find_v4(const uint8_t o[4], const char *n, size_t len, struct span *sp)
{
	size_t st[NAME_LOG_MAX], en[NAME_LOG_MAX], nr = 0, i, k, at;
	int val[NAME_LOG_MAX], found = 0, fw, rv;
	char fwd[16], rev[16], hf[9], hr[9];

	for (at = 0; at < len && nr < NAME_LOG_MAX; ) {
		if (!is_dig(n[at])) {
			at++;
			continue;
		}
		st[nr] = at;
		val[nr] = 0;
		while (at < len && is_dig(n[at])) {
			if (val[nr] >= 0)
				val[nr] = at - st[nr] < 3 ?
				    val[nr] * 10 + (n[at] - '0') : -1;
			at++;
		}
		en[nr++] = at;
	}
	snprintf(fwd, sizeof(fwd), "%03u%03u%03u%03u", o[0], o[1], o[2],
	    o[3]);
	snprintf(rev, sizeof(rev), "%03u%03u%03u%03u", o[3], o[2], o[1],
	    o[0]);
	for (i = 0; i < nr; i++) {
		if (en[i] - st[i] == 12 && (memcmp(n + st[i], fwd, 12) == 0 ||
		    memcmp(n + st[i], rev, 12) == 0))
			found = span_min(sp, found, st[i], en[i]);
		if (i + 4 > nr)
			continue;
		fw = rv = 1;
		for (k = 0; k < 4; k++) {
			if (k > 0 && (st[i + k] - en[i + k - 1] > 3))
				fw = rv = 0;
			if (val[i + k] != o[k])
				fw = 0;
			if (val[i + k] != o[3 - k])
				rv = 0;
		}
		if (fw || rv)
			found = span_min(sp, found, st[i], en[i + 3]);
	}
	snprintf(hf, sizeof(hf), "%02x%02x%02x%02x", o[0], o[1], o[2], o[3]);
	snprintf(hr, sizeof(hr), "%02x%02x%02x%02x", o[3], o[2], o[1], o[0]);
	for (at = 0; at + 8 <= len; at++)
		if (strncasecmp(n + at, hf, 8) == 0 ||
		    strncasecmp(n + at, hr, 8) == 0)
			found = span_min(sp, found, at, at + 8);
	return found;
}

static int
hexval(char c)
{
	if (is_dig(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The client's IPv6 address written out inside one label, with ':' or
 * '-' between groups: "2001-db8--1", "host-2001-db8--1",
 * "x2001:0db8:0:0:0:0:0:1". Candidates start anywhere, so a word glued
 * to the address ("host", "x", even hex "a") does not hide it, and end
 * where no hex digit follows: "2001-db8--10" is another address. buf
 * holds the label with '-' already turned into ':'.
 */
static int
v6_in_label(const uint8_t a[16], const char *buf, size_t len)
{
	struct match_ip ip;
	size_t from, to, colons, k;

	for (from = 0; from < len; from++) {
		if (hexval(buf[from]) < 0 && buf[from] != ':')
			continue;
		colons = 0;
		/* 39 bytes: the longest text of an IPv6 address. */
		for (to = from; to < len && to - from < 40 &&
		    (buf[to] == ':' || hexval(buf[to]) >= 0); to++) {
			colons += buf[to] == ':';
			k = to + 1;
			if (colons < 2 || (k < len && hexval(buf[k]) >= 0))
				continue;
			if (match_ip_parse(buf + from, k - from, &ip) == 0 &&
			    ip.family == 6 && memcmp(ip.a, a, 16) == 0)
				return 1;
		}
	}
	return 0;
}

/*
 * IPv6 in a name: the address with '-' or ':' between groups inside a
 * label (v6_in_label), or its 32 nibbles in either order with or
 * without separators ("20010db8...0001", ip6.arpa's
 * "1.0.0...8.b.d.0.1.0.0.2").
 */
static int
find_v6(const uint8_t a[16], const char *n, size_t len, struct span *sp)
{
	size_t pos[NAME_LOG_MAX], nn = 0, at, lab, i, k;
	signed char nib[NAME_LOG_MAX];
	char buf[NAME_LOG_MAX];
	int found = 0, fw, rv, h;

	for (lab = 0; lab < len; lab = at + 1) {
		for (at = lab; at < len && n[at] != '.'; at++)
			;
		if (at - lab < 2 || at - lab >= sizeof(buf))
			continue;
		for (i = lab; i < at; i++)
			buf[i - lab] = n[i] == '-' ? ':' : n[i];
		if (v6_in_label(a, buf, at - lab))
			found = span_min(sp, found, lab, at);
	}
	/* Separators are skipped; any other byte breaks a run. */
	for (at = 0; at < len && nn < NAME_LOG_MAX; at++) {
		if (n[at] == '.' || n[at] == '-' || n[at] == ':' ||
		    n[at] == '_')
			continue;
		nib[nn] = (signed char)hexval(n[at]);
		pos[nn++] = at;
	}
	for (i = 0; i + 32 <= nn; i++) {
		fw = rv = 1;
		for (k = 0; k < 32 && (fw || rv); k++) {
			h = k % 2 == 0 ? a[k / 2] >> 4 : a[k / 2] & 0xf;
			if (nib[i + k] != h)
				fw = 0;
			h = (31 - k) % 2 == 0 ? a[(31 - k) / 2] >> 4 :
			    a[(31 - k) / 2] & 0xf;
			if (nib[i + k] != h)
				rv = 0;
		}
		if (fw || rv)
			found = span_min(sp, found, pos[i], pos[i + 31] + 1);
	}
	return found;
}

/* The first place n embeds the client's address, widened to labels. */
static int
find_client(const struct sess *s, const char *n, size_t len,
    struct span *sp)
{
	int found;

	if (s->ip.family == 4)
		found = find_v4(s->ip.a, n, len, sp);
	else if (s->ip.family == 6)
		found = find_v6(s->ip.a, n, len, sp);
	else
		found = 0;
	if (!found)
		return 0;
	/* "1-2-3-4.dsl.example": the label goes, the provider stays. */
	while (sp->from > 0 && n[sp->from - 1] != '.')
		sp->from--;
	while (sp->to < len && n[sp->to] != '.')
		sp->to++;
	return 1;
}

/* Appends s (n bytes) to out at *o, cut to fit; keeps it terminated. */
static void
cat(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
	if (*o + 1 >= outlen)
		return;
	if (n > outlen - 1 - *o)
		n = outlen - 1 - *o;
	memcpy(out + *o, s, n);
	*o += n;
	out[*o] = '\0';
}

/*
 * A HELO or client name under privacy. An IP literal ("[192.0.2.1]",
 * "[IPv6:2001:DB8::1]", a bare address) is parsed, so every spelling of
 * one address gives one digest, the client's own when it is the
 * client's; the brackets and IPv6 tag stay, so the line still shows a
 * literal. A name embedding the client's address ("1-2-3-4.dsl.example")
 * gets the client's digest in place of the labels that hold it: the
 * provider's domain stays readable. Other names stay, but for private
 * values found whole in them (a login as HELO). NUL-terminated in out.
 */
static void
name_priv(const struct privacy *pv, const char *n, char *out,
    size_t outlen)
{
	char red[NAME_LOG_MAX], canon[SESS_IP_MAX], dig[LOG_DIGEST_BUF];
	struct match_ip ip;
	struct span sp;
	size_t len = strlen(n), o = 0, at = 0;
	const char *p = n;

	out[0] = '\0';
	if (match_ip_parse(n, len, &ip) == 0) {
		match_ip_format(&ip, canon, sizeof(canon));
		log_digest(pv->p->key, pv->p->keylen, canon, strlen(canon),
		    dig, sizeof(dig));
		if (*p == '[')
			cat(out, outlen, &o, p++, 1);
		if (strncasecmp(p, "IPv6:", 5) == 0)
			cat(out, outlen, &o, "IPv6:", 5);
		cat(out, outlen, &o, dig, strlen(dig));
		if (n[0] == '[')
			cat(out, outlen, &o, "]", 1);
		return;
	}
	while (at < len && find_client(pv->s, n + at, len - at, &sp)) {
		/* The parts around a digest are searched, never a digest. */
		(void)str_copy(red, sizeof(red), n + at, sp.from);
		redact(pv, red, out + o, outlen - o);
		o += strlen(out + o);
		cat(out, outlen, &o, priv_digest(pv, pv->s->client_ip),
		    strlen(priv_digest(pv, pv->s->client_ip)));
		at += sp.to;
	}
	redact(pv, n + at, out + o, outlen - o);
}

/*
 * The reply as logged under privacy: the rule's template expanded with
 * digests for the private values, so no wrap or cut of the client's
 * reply can split a value into pieces nobody finds. Returns 0, or -1
 * when the reply did not come from the rule's template (on_error's
 * fixed 451, which carries no client value).
 */
static int
reply_priv(const struct engine_decision *d, const struct privacy *pv,
    const char *helo, char *buf, size_t len)
{
	const struct sess *s = d->sess;
	struct reply_out ro;
	struct reply_vars vars;
	char retry[24], name[NAME_LOG_MAX];

	if (d->store_error || d->rule == NULL || d->rule->reply.code == 0 ||
	    d->rule->reply.code != d->reply->code)
		return -1;
	engine_reply_vars(s, d->rule, d->retry_ns, &vars, retry,
	    sizeof(retry));
	/* The digests of the fields, so a reply's match the line's. */
	if (s->client_ip[0] != '\0')
		vars.v[RVAR_CLIENT_IP] = priv_digest(pv, s->client_ip);
	if (s->client_name[0] != '\0') {
		name_priv(pv, s->client_name, name, sizeof(name));
		vars.v[RVAR_CLIENT_NAME] = name;
	}
	vars.v[RVAR_HELO] = helo;
	if (s->has_sender && s->sender[0] != '\0')
		vars.v[RVAR_SENDER] = priv_digest(pv, s->sender);
	if (s->rcpt[0] != '\0')
		vars.v[RVAR_RCPT] = priv_digest(pv, s->rcpt);
	if (s->auth_user[0] != '\0')
		vars.v[RVAR_AUTH_USER] = priv_digest(pv, s->auth_user);
	reply_expand(&d->rule->reply, &vars, &ro);
	reply_out_format_log(&ro, buf, len);
	return 0;
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

/*
 * The reply field under privacy. Apart, and not inlined, for its 48 kB
 * of buffers: the whole reply has to be redacted before field() cuts it
 * (a value cut in two would not be found), and on the clear path those
 * pages would sit deep in every decision's stack, which glibc gives back
 * at each exit of one of libmilter's short-lived threads and the next
 * one faults in again (doc/performance.md).
 */
static void __attribute__((noinline))
reply_field_priv(struct line *l, const struct engine_decision *d,
    const struct privacy *pv, const char *helo)
{
	char rep[REPLY_OUT_MAX + 64], red[REPLY_OUT_MAX + 64];

	if (reply_priv(d, pv, helo, red, sizeof(red)) != 0) {
		/* A fixed reply: nothing of the client's. */
		reply_out_format_log(d->reply, rep, sizeof(rep));
		redact(pv, rep, red, sizeof(red));
	}
	field(l, "reply", red, "\"", "\"", 0);
}

static const char *
format(const struct engine_decision *d, const struct declog_priv *priv,
    char *buf, size_t len)
{
	const struct sess *s = d->sess;
	struct line l = { buf, len, 0 };
	struct privacy pv;
	/*
	 * Also the clear reply: field() shows LOG_ESC_MAX bytes of it and
	 * marks a longer one cut, which this size still lets it see.
	 */
	char rep[LOG_ESC_BUF], qid[LOG_ESC_BUF];
	char helo[NAME_LOG_MAX];

	if (len == 0)
		return buf;
	buf[0] = '\0';
	memset(&pv, 0, sizeof(pv));
	if (priv != NULL && priv->key != NULL && priv->keylen > 0) {
		pv.p = priv;
		pv.s = s;
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
	helo[0] = '\0';
	if (pv.p != NULL && s->helo[0] != '\0')
		name_priv(&pv, s->helo, helo, sizeof(helo));
	if (s->helo[0] != '\0')
		field(&l, "helo", pv.p != NULL ? helo : s->helo, "<", ">",
		    s->truncated & SF_HELO);
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
	if (d->reply != NULL && pv.p != NULL)
		reply_field_priv(&l, d, &pv, helo);
	else if (d->reply != NULL) {
		reply_out_format_log(d->reply, rep, sizeof(rep));
		field(&l, "reply", rep, "\"", "\"", 0);
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

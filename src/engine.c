/*
 * engine.c - evaluate one stage of a session (DESIGN.md §3, §4, §4b).
 * Owns: rule order, first terminal verdict, limit keys and their one
 * batched store call per stage, refunds of refused events, on_error, and
 * the verdict state kept in the session.
 * Not: libmilter, log formats, store internals.
 * Threads: many sessions evaluate at once; the ruleset and stores are
 * shared and read-only here except for the rules' atomic counters.
 * Memory: no heap; keys live in the caller's result (out->keybuf).
 * Errors: a store failure applies the limit's on_error; never aborts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "engine.h"

#define PEND_MAX	64	/* matched rules resolved per batch */

#define MSG_STAGES (STAGE_BIT(STAGE_ENVFROM) | STAGE_BIT(STAGE_ENVRCPT) | \
	STAGE_BIT(STAGE_DATA) | STAGE_BIT(STAGE_HEADER) | STAGE_BIT(STAGE_EOM))

/* A matched rule waiting for its limit's answer. */
struct pend {
	const struct rule *r;
	int		req;		/* index into reqs, -1: no limit */
};

/* One evaluation's working state. */
struct eval {
	const struct engine_ctx *ctx;
	struct sess	*s;
	enum stage	stage;
	int64_t		now;
	struct engine_result *out;
	int		trace;
	struct store_req reqs[ENGINE_BATCH_MAX];
	struct store_res res[ENGINE_BATCH_MAX];
	/* on_error=memory: the fallback store charged this request */
	unsigned char	fbcharged[ENGINE_BATCH_MAX];
	size_t		nreqs;
	size_t		keyused;
	struct pend	pend[PEND_MAX];
	size_t		npend;
	char		why[ENGINE_WHY_MAX];
};

/* --- why text (explain only) ----------------------------------------- */

static void
why_add(char *why, const char *fmt, ...) PRINTF_LIKE(2, 3);

static void
why_add(char *why, const char *fmt, ...)
{
	size_t at;
	va_list ap;

	if (why == NULL)
		return;
	at = strlen(why);
	if (at + 1 >= ENGINE_WHY_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(why + at, ENGINE_WHY_MAX - at, fmt, ap);
	va_end(ap);
}

/* Client text in explain output stays on one printable line. */
static const char *
printable(const char *v, char *buf, size_t len)
{
	size_t i, j = 0;

	for (i = 0; v[i] != '\0' && j + 1 < len && i < 96; i++)
		buf[j++] = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
	if (v[i] != '\0' && j + 4 < len) {
		memcpy(buf + j, "...", 3);
		j += 3;
	}
	buf[j] = '\0';
	return buf;
}

/* --- conditions ------------------------------------------------------ */

static const char *
cond_value(const struct cond *c, const struct sess *s)
{
	switch (c->kind) {
	case COND_CLIENT_NAME:
		return s->client_name;
	case COND_DAEMON:
		return s->daemon;
	case COND_HELO:
		return s->helo;
	case COND_SENDER:
		return s->sender;
	case COND_SENDER_DOMAIN:
		return sess_domain(s->sender);
	case COND_RCPT:
		return s->rcpt;
	case COND_RCPT_DOMAIN:
		return sess_domain(s->rcpt);
	case COND_AUTH_USER:
		return s->auth_user;
	case COND_AUTH_MECH:
		return s->auth_mech;
	case COND_TLS_VERSION:
		return s->tls_version;
	case COND_COMMAND:
		return s->command;
	case COND_HEADER:
		return s->hdr_name;
	case COND_HEADER_VALUE:
		return s->hdr_value;
	default:
		return "";
	}
}

static long long
cond_count(const struct cond *c, const struct sess *s)
{
	switch (c->kind) {
	case COND_SIZE_OVER:
		return s->size;
	case COND_RCPT_COUNT_OVER:
		return s->rcpt_count;
	case COND_UNKNOWN_COUNT_OVER:
		return s->unknown_count;
	case COND_BAD_RCPT_COUNT_OVER:
		return s->bad_rcpt_count;
	case COND_CIPHER_BITS_BELOW:
		return s->cipher_bits;
	default:
		return 0;
	}
}

static int
cond_bool(const struct cond *c, const struct rule *r, const struct sess *s)
{
	switch (c->kind) {
	case COND_AUTH:
		return s->auth;
	case COND_TLS:
		return s->tls;
	case COND_RCPT_REJECTED:
		return s->rcpt_rejected;
	case COND_SENDER_OWNED:
		/* A sender we had to cut is nobody's: fail closed. */
		return s->auth && r->owners != NULL &&
		    !(s->truncated & SF_SENDER) &&
		    match_owners_test(r->owners, s->auth_user, s->sender) == 1;
	default:
		return 0;
	}
}

static int group_eval(const struct cond_group *, const struct rule *,
    const struct sess *, char *why);

static int
cond_eval(const struct cond *c, const struct rule *r, const struct sess *s,
    char *why)
{
	const char *name = rules_cond_name(c->kind), *v;
	char buf[128];
	long long n;
	size_t i;
	int ok, b;

	switch (c->kind) {
	case COND_CLIENT:
		ok = s->ip.family != 0 && match_cidr_test(c->u.cidr, &s->ip);
		why_add(why, "client=%s %s %s", s->client_ip[0] ?
		    s->client_ip : "(unknown)", ok ? "in" : "not in", c->text);
		return ok;
	case COND_PORT:
		for (ok = 0, i = 0; i < c->u.ports.n && !ok; i++)
			ok = c->u.ports.v[i] == s->port;
		why_add(why, "port=%d %s %s", s->port, ok ? "in" : "not in",
		    c->text);
		return ok;
	case COND_AUTH:
	case COND_TLS:
	case COND_RCPT_REJECTED:
	case COND_SENDER_OWNED:
		b = cond_bool(c, r, s);
		ok = b == c->u.b;
		why_add(why, "%s=%s%s", name, b ? "true" : "false", ok ? "" :
		    c->u.b ? ", wants true" : ", wants false");
		return ok;
	case COND_CIPHER_BITS_BELOW:
		n = cond_count(c, s);
		ok = n < c->u.n;
		why_add(why, "cipher_bits=%lld %s %lld", n, ok ? "<" : ">=",
		    c->u.n);
		return ok;
	case COND_SIZE_OVER:
	case COND_RCPT_COUNT_OVER:
	case COND_UNKNOWN_COUNT_OVER:
	case COND_BAD_RCPT_COUNT_OVER:
		n = cond_count(c, s);
		ok = n > c->u.n;
		why_add(why, "%.*s=%lld %s %lld", (int)(strlen(name) - 5),
		    name, n, ok ? ">" : "not over", c->u.n);
		return ok;
	case COND_ANY:
		for (i = 0; i < c->u.any.n; i++)
			if (group_eval(&c->u.any.v[i], r, s, NULL)) {
				why_add(why, "any: group %zu holds (", i + 1);
				(void)group_eval(&c->u.any.v[i], r, s, why);
				why_add(why, ")");
				return 1;
			}
		why_add(why, "any: no group holds");
		return 0;
	case COND_NOT:
		ok = !group_eval(c->u.not, r, s, NULL);
		why_add(why, "not (");
		(void)group_eval(c->u.not, r, s, why);
		why_add(why, ")%s", ok ? "" : ": holds");
		return ok;
	default:
		v = cond_value(c, s);
		/*
		 * An absent value (no AUTH, no TLS, no sender) matches only
		 * an explicit "" or "<>", never a glob such as "*": an accept
		 * rule on auth_user = "*" must not let anonymous clients in.
		 */
		ok = v[0] != '\0' ? match_set_test(c->u.set, v, strlen(v)) :
		    c->empty_ok;
		/* Only explain wants the text: keep the hot path free of it. */
		if (why != NULL)
			why_add(why, "%s=<%s> %s %s", name, printable(v, buf,
			    sizeof(buf)), ok ? "matches" : "does not match",
			    c->text);
		return ok;
	}
}

/* AND of the group; why gets every condition when all hold, else the
 * first one that does not. */
static int
group_eval(const struct cond_group *g, const struct rule *r,
    const struct sess *s, char *why)
{
	size_t i, at = why != NULL ? strlen(why) : 0;

	for (i = 0; i < g->n; i++) {
		if (why != NULL && i > 0)
			why_add(why, "; ");
		if (!cond_eval(&g->v[i], r, s, NULL)) {
			if (why != NULL) {
				why[at] = '\0';
				(void)cond_eval(&g->v[i], r, s, why);
			}
			return 0;
		}
		if (why != NULL)
			(void)cond_eval(&g->v[i], r, s, why);
	}
	return 1;
}

/* --- limit keys ------------------------------------------------------ */

static int
key_put(char *buf, size_t len, size_t *at, const char *v, int fold)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c;

	if (*at + 1 >= len)
		return -1;
	buf[(*at)++] = '|';
	for (; *v != '\0'; v++) {
		c = (unsigned char)*v;
		if (fold && c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		/* Unambiguous keys: the separator and odd bytes are escaped. */
		if (c > 0x20 && c < 0x7f && c != '|' && c != '%') {
			if (*at + 1 >= len)
				return -1;
			buf[(*at)++] = (char)c;
		} else {
			if (*at + 3 >= len)
				return -1;
			buf[(*at)++] = '%';
			buf[(*at)++] = hex[c >> 4];
			buf[(*at)++] = hex[c & 15];
		}
	}
	buf[*at] = '\0';
	return 0;
}

/* The value of one key part, or "" when the session has none. */
static const char *
key_value(const struct limit *lim, enum key_part part, const struct sess *s,
    char *tmp, size_t tmplen)
{
	struct match_ip net;
	char ipbuf[64];
	unsigned prefix;

	switch (part) {
	case KEY_CLIENT_IP:
		return s->ip.family != 0 ? s->client_ip : "";
	case KEY_CLIENT_NET:
		if (s->ip.family == 0)
			return "";
		net = s->ip;
		prefix = net.family == 4 ? lim->ipv4_prefix : lim->ipv6_prefix;
		match_ip_mask(&net, prefix);
		snprintf(tmp, tmplen, "%s/%u", match_ip_format(&net, ipbuf,
		    sizeof(ipbuf)), prefix);
		return tmp;
	case KEY_HELO:
		return s->helo;
	case KEY_SENDER:
		return !s->has_sender ? "" : s->sender[0] != '\0' ? s->sender :
		    "<>";
	case KEY_SENDER_DOMAIN:
		return sess_domain(s->sender);
	case KEY_RCPT:
		return s->rcpt;
	case KEY_RCPT_DOMAIN:
		return sess_domain(s->rcpt);
	case KEY_AUTH_USER:
		return s->auth ? s->auth_user : "";
	default:
		return "";
	}
}

/*
 * A key too long to send as it is (hostile 2 kB addresses, escaped)
 * becomes "counter|#" and the SHA-256 of its parts, so it still counts
 * against the same counter on every MTA: skipping it would let long
 * values slip past the limit. Lower-cased like the plain form.
 */
static int
key_digest(const char *counter, const char *const *v, size_t n, char *buf,
    size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE], c;
	unsigned int mdlen = 0, j;
	EVP_MD_CTX *ctx;
	size_t i, at, k;
	int ok;

	at = strlen(counter);
	if (at + 2 + 64 + 1 > len || (ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (i = 0; ok && i < n; i++) {
		/* NUL separates parts; values hold no NUL. */
		for (k = 0; ok && v[i][k] != '\0'; k++) {
			c = (unsigned char)v[i][k];
			if (c >= 'A' && c <= 'Z')
				c += 'a' - 'A';
			ok = EVP_DigestUpdate(ctx, &c, 1);
		}
		ok = ok && EVP_DigestUpdate(ctx, "", 1);
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return -1;
	memcpy(buf, counter, at);
	buf[at++] = '|';
	buf[at++] = '#';
	for (j = 0; j < mdlen && j < 32; j++) {
		buf[at++] = hex[md[j] >> 4];
		buf[at++] = hex[md[j] & 15];
	}
	buf[at] = '\0';
	return (int)at;
}

/*
 * Builds the key into buf. *novalue_out tells "a part has no value" (the
 * limit does not apply) from "buf is too small" (settle the batch first).
 */
static int
limit_key(const struct rule *r, const struct sess *s, char *buf,
    size_t len, int *novalue_out)
{
	const struct limit *lim = r->limit;
	const char *v[RULES_KEY_PARTS_MAX];
	char tmp[80];
	size_t at, i;

	*novalue_out = 1;
	if (lim == NULL)
		return -1;
	for (i = 0; i < lim->nparts; i++) {
		v[i] = key_value(lim, lim->parts[i], s, tmp, sizeof(tmp));
		/* A part without a value: the limit does not apply. */
		if (v[i][0] == '\0')
			return -1;
	}
	*novalue_out = 0;
	if (len < ENGINE_KEY_MAX)
		return -1;
	at = strlen(lim->counter);
	memcpy(buf, lim->counter, at + 1);
	for (i = 0; i < lim->nparts; i++)
		if (key_put(buf, ENGINE_KEY_MAX, &at, v[i], 1) != 0)
			return key_digest(lim->counter, v, lim->nparts, buf,
			    len);
	return (int)at;
}

int
engine_limit_key(const struct rule *r, const struct sess *s, char *buf,
    size_t len)
{
	int novalue;

	return limit_key(r, s, buf, len, &novalue);
}

void
engine_reply_vars(const struct sess *s, const struct rule *r,
    int64_t retry_ns, struct reply_vars *out, char *retrybuf,
    size_t retrylen)
{
	memset(out, 0, sizeof(*out));
	out->v[RVAR_CLIENT_IP] = s->client_ip;
	out->v[RVAR_CLIENT_NAME] = s->client_name;
	out->v[RVAR_HELO] = s->helo;
	out->v[RVAR_SENDER] = s->has_sender && s->sender[0] == '\0' ? "<>" :
	    s->sender;
	out->v[RVAR_RCPT] = s->rcpt;
	out->v[RVAR_AUTH_USER] = s->auth_user;
	out->v[RVAR_RULE] = r != NULL ? r->name : "";
	out->v[RVAR_QUEUE_ID] = s->queue_id;
	snprintf(retrybuf, retrylen, "%lld",
	    (long long)gcra_retry_secs(retry_ns));
	out->v[RVAR_RETRY_AFTER] = retrybuf;
}

/* --- verdicts -------------------------------------------------------- */

static void
expand(struct eval *e, const struct reply *rep, const struct rule *r,
    int64_t retry_ns)
{
	struct reply_vars vars;
	char retry[24];

	engine_reply_vars(e->s, r, retry_ns, &vars, retry, sizeof(retry));
	reply_expand(rep, &vars, &e->out->reply);
}

static void
decide(struct eval *e, const struct rule *r, enum action a, int dryrun,
    int store_error, const struct reply_out *reply, int64_t retry_ns)
{
	struct engine_decision d;

	if (e->ctx->hooks.decision == NULL)
		return;
	d.sess = e->s;
	d.stage = e->stage;
	d.rule = r;
	d.action = a;
	d.dryrun = dryrun;
	d.store_error = store_error;
	d.reply = reply;
	d.retry_ns = retry_ns;
	e->ctx->hooks.decision(e->ctx->hooks.arg, &d);
}

static void
add_tag(struct eval *e, const struct rule *r)
{
	struct sess_tag *t;
	struct reply_out *o = &e->out->reply;
	size_t i, at = 0, n;

	if (e->s->ntags >= SESS_TAGS_MAX)
		return;
	t = &e->s->tags[e->s->ntags++];
	/* Tags flagged before any message belong to the connection. */
	if (e->stage == STAGE_CONNECT || e->stage == STAGE_HELO)
		e->s->nconn_tags = e->s->ntags;
	t->rule = r;
	str_copy(t->hdr_name, sizeof(t->hdr_name), r->tag_name,
	    strlen(r->tag_name));
	expand(e, &r->tag_value, r, 0);
	t->hdr_value[0] = '\0';
	/*
	 * The wrapped lines are joined again with a space, cut to the tag's
	 * cap: client values can make them far longer (three or more lines
	 * left no room at all and underflowed n). A line starts only where
	 * the space and one byte of it fit.
	 */
	for (i = 0; i < o->nlines && at + 2 < sizeof(t->hdr_value); i++) {
		if (i > 0)
			t->hdr_value[at++] = ' ';
		n = strlen(o->line[i]);
		if (n > sizeof(t->hdr_value) - 1 - at)
			n = sizeof(t->hdr_value) - 1 - at;
		memcpy(t->hdr_value + at, o->line[i], n);
		at += n;
		t->hdr_value[at] = '\0';
	}
	o->nlines = 0;
}

/*
 * A rule fired (matched, and over its limit if it has one). Returns 1
 * when its verdict ends the event.
 */
static int
fire(struct eval *e, const struct rule *r, int64_t retry_ns, int store_err)
{
	struct rule *rw = (struct rule *)r;	/* counters only */
	enum action a = r->action;
	struct engine_result *out = e->out;
	const struct reply_out *rep = NULL;

	atomic_fetch_add_explicit(&rw->hits, 1, memory_order_relaxed);
	if (store_err) {
		/* on_error=tempfail: the counter could not be read. */
		a = ACTION_TEMPFAIL;
		reply_out_set(&out->reply, 451, 4, 3, 0, "Temporary policy "
		    "failure, try again later");
		rep = &out->reply;
	} else if (a == ACTION_REJECT || a == ACTION_TEMPFAIL) {
		expand(e, &r->reply, r, retry_ns);
		rep = &out->reply;
	}
	if (r->mode == MODE_DRYRUN) {
		atomic_fetch_add_explicit(&rw->dryrun, 1, memory_order_relaxed);
		decide(e, r, a, 1, store_err, rep, retry_ns);
		return 0;
	}
	/* enforced counts every firing in enforce mode, log and tag too. */
	atomic_fetch_add_explicit(&rw->enforced, 1, memory_order_relaxed);
	switch (a) {
	case ACTION_CONTINUE:
		return 0;
	case ACTION_LOG:
		decide(e, r, a, 0, 0, NULL, 0);
		return 0;
	case ACTION_TAG:
		add_tag(e, r);
		decide(e, r, a, 0, 0, NULL, 0);
		return 0;
	case ACTION_ACCEPT:
		if (e->stage == STAGE_CONNECT || e->stage == STAGE_HELO)
			e->s->conn_accepted = 1;
		else if (STAGE_BIT(e->stage) & MSG_STAGES)
			e->s->msg_accepted = 1;
		break;
	case ACTION_QUARANTINE:
		e->s->quarantine = r;
		break;
	case ACTION_REJECT:
	case ACTION_TEMPFAIL:
		if (out->reply.code == 421) {
			/* The MTA closes the session: every later event of
			 * it gets the same answer (DESIGN.md §4a). */
			e->s->closed_by = r;
			e->s->closed_retry_ns = retry_ns;
			out->closes = 1;
		}
		break;
	default:
		break;
	}
	out->action = a;
	out->rule = r;
	out->store_error = store_err;
	decide(e, r, a, 0, store_err, rep, retry_ns);
	return 1;
}

/* --- batches --------------------------------------------------------- */

/* Queues r's limit. Returns the request index, -1 when it has no key,
 * -2 when the batch is full. */
static int
queue_limit(struct eval *e, const struct rule *r)
{
	char *key = e->out->keybuf + e->keyused;
	size_t room = sizeof(e->out->keybuf) - e->keyused;
	struct store_req *q;
	int n, novalue;

	if (e->nreqs == ENGINE_BATCH_MAX)
		return -2;
	n = limit_key(r, e->s, key, room, &novalue);
	/*
	 * No room left for a key that has values: settle the batch and
	 * queue again, or a client sending long (escaped) values would
	 * slip past the later limits of the stage.
	 */
	if (n < 0)
		return !novalue && e->nreqs > 0 ? -2 : -1;
	e->fbcharged[e->nreqs] = 0;
	q = &e->reqs[e->nreqs];
	q->key = key;
	q->keylen = (size_t)n;
	q->limit = r->limit->g;
	q->cost = r->limit->cost;
	q->peek = !r->limit->charge;
	if (r->limit->cost_size)
		q->cost = e->s->size > 0 ? e->s->size : 1;
	e->keyused += (size_t)n + 1;
	return (int)e->nreqs++;
}

static void
charge(struct eval *e)
{
	size_t i;

	if (e->nreqs == 0)
		return;
	memset(e->res, 0, sizeof(e->res));
	if (e->trace)
		(void)store_peek(e->ctx->store, e->reqs, e->res, e->nreqs,
		    e->now);
	else
		(void)store_charge(e->ctx->store, e->reqs, e->res, e->nreqs,
		    e->now);
	for (i = 0; i < e->nreqs; i++)
		if (e->res[i].err)
			e->res[i].allowed = 0;
}

/* Undoes the allowed charges of requests [from, nreqs). */
static void
refund(struct eval *e, size_t from)
{
	struct store_req back[ENGINE_BATCH_MAX], fb[ENGINE_BATCH_MAX];
	size_t i, n = 0, nfb = 0;

	if (e->trace)
		return;
	for (i = from; i < e->nreqs; i++) {
		if (e->reqs[i].peek)
			continue;
		if (!e->res[i].err && e->res[i].allowed)
			back[n++] = e->reqs[i];
		else if (e->fbcharged[i])
			fb[nfb++] = e->reqs[i];
	}
	if (n > 0)
		store_refund(e->ctx->store, back, n, e->now);
	/* on_error=memory charged the fallback: a refusal undoes it too */
	if (nfb > 0)
		store_refund(e->ctx->fallback, fb, nfb, e->now);
}

/* Whether a matched rule fired, given its limit's answer. */
static int
limit_fired(struct eval *e, const struct rule *r, int req, int64_t *retry,
    int *store_err)
{
	struct store_res fb;

	*retry = 0;
	*store_err = 0;
	if (r->limit == NULL)
		return 1;
	if (req < 0)
		return 0;
	if (e->res[req].err) {
		switch (r->limit->on_error) {
		case ONERR_TEMPFAIL:
			*store_err = 1;
			return 1;
		case ONERR_MEMORY:
			/* explain looks only, on the fallback store too */
			if (e->ctx->fallback != NULL && (e->trace ?
			    store_peek(e->ctx->fallback, &e->reqs[req], &fb, 1,
			    e->now) : store_charge(e->ctx->fallback,
			    &e->reqs[req], &fb, 1, e->now)) == 0 && !fb.err) {
				e->fbcharged[req] = !e->trace && fb.allowed;
				*retry = fb.retry_after_ns;
				return !fb.allowed;
			}
			/* FALLTHROUGH */
		default:
			decide(e, r, ACTION_CONTINUE, 0, 1, NULL, 0);
			return 0;
		}
	}
	*retry = e->res[req].retry_after_ns;
	return !e->res[req].allowed;
}

static void
trace_limit(struct eval *e, const struct rule *r, int req)
{
	const struct limit *lim = r->limit;
	int64_t retry;

	if (e->why[0] != '\0')
		why_add(e->why, "; ");
	if (req < 0) {
		why_add(e->why, "limit: a key part has no value, skipped");
		return;
	}
	why_add(e->why, "limit %s burst %lld key=\"%s\" (not charged)",
	    lim->rate, (long long)lim->g.burst, e->reqs[req].key);
	if (e->res[req].err)
		why_add(e->why, ": store error, on_error=%s",
		    rules_on_error_name(lim->on_error));
	else if (!e->res[req].allowed) {
		retry = gcra_retry_secs(e->res[req].retry_after_ns);
		why_add(e->why, ": over, retry in %llds", (long long)retry);
	} else
		why_add(e->why, ": within the limit");
}

/*
 * Resolves the queued batch in rule order. Returns 1 when a rule ended
 * the event.
 */
static int
resolve(struct eval *e)
{
	const struct pend *p;
	int64_t retry;
	size_t i, j, after;
	int fired, err, refused;

	charge(e);
	for (i = 0; i < e->npend; i++) {
		p = &e->pend[i];
		fired = limit_fired(e, p->r, p->req, &retry, &err);
		if (e->trace) {
			if (p->r->limit != NULL)
				trace_limit(e, p->r, p->req);
			/* A limit rule within its limit does not fire. */
			e->ctx->hooks.trace(e->ctx->hooks.arg, p->r, fired,
			    e->why);
		}
		if (!fired || !fire(e, p->r, retry, err))
			continue;
		/*
		 * A refused event charges no limit of its stage; otherwise
		 * only the rules after this one, which did not get to act,
		 * give their charges back.
		 */
		refused = e->out->action == ACTION_REJECT ||
		    e->out->action == ACTION_TEMPFAIL;
		after = e->nreqs;
		for (j = i + 1; j < e->npend && after == e->nreqs; j++)
			if (e->pend[j].req >= 0)
				after = (size_t)e->pend[j].req;
		refund(e, refused ? 0 : after);
		return 1;
	}
	return 0;
}

static void
result_init(struct engine_result *out)
{
	out->action = ACTION_CONTINUE;
	out->rule = NULL;
	out->closes = 0;
	out->store_error = 0;
	out->reply.code = 0;
	out->reply.nlines = 0;
}

static void
count_event(struct sess *s, enum stage stage)
{
	if (stage == STAGE_ENVRCPT) {
		if (s->rcpt_rejected)
			s->bad_rcpt_count++;
		else
			s->rcpt_count++;
	} else if (stage == STAGE_UNKNOWN)
		s->unknown_count++;
}

void
engine_eval(const struct engine_ctx *ctx, const struct ruleset *rs,
    struct sess *s, enum stage stage, int64_t now, struct engine_result *out)
{
	struct eval e;
	const struct rule *r;
	size_t i, n;
	int req, matched, done = 0;

	result_init(out);
	count_event(s, stage);
	if (s->closed_by != NULL) {
		out->action = s->closed_by->action;
		out->rule = s->closed_by;
		out->closes = 1;
		memset(&e, 0, sizeof(e));
		e.ctx = ctx;
		e.s = s;
		e.stage = stage;
		e.out = out;
		expand(&e, &s->closed_by->reply, s->closed_by,
		    s->closed_retry_ns);
		/* Each 421 the client gets is a decision line of its own. */
		decide(&e, s->closed_by, out->action, 0, 0, &out->reply,
		    s->closed_retry_ns);
		return;
	}
	if (s->conn_accepted ||
	    (s->msg_accepted && (STAGE_BIT(stage) & MSG_STAGES)))
		goto eom;

	e.ctx = ctx;
	e.s = s;
	e.stage = stage;
	e.now = now;
	e.out = out;
	e.trace = ctx->hooks.trace != NULL;
	e.nreqs = e.npend = e.keyused = 0;
	n = rs->nby_stage[stage];
	for (i = 0; i < n && !done; i++) {
		r = rs->by_stage[stage][i];
		e.why[0] = '\0';
		matched = !r->has_match ||
		    group_eval(&r->match, r, s, e.trace ? e.why : NULL);
		if (!matched) {
			if (e.trace)
				ctx->hooks.trace(ctx->hooks.arg, r, 0, e.why);
			continue;
		}
		req = -1;
		if (r->limit != NULL && (req = queue_limit(&e, r)) == -2) {
			/* Batch full: settle it, then queue again. */
			done = resolve(&e);
			e.nreqs = e.npend = e.keyused = 0;
			if (done)
				break;
			req = queue_limit(&e, r);
		}
		e.pend[e.npend].r = r;
		e.pend[e.npend].req = req < 0 ? -1 : req;
		e.npend++;
		/*
		 * Settle now when nothing after this rule can matter (an
		 * enforced terminal rule without a limit), when the pending
		 * list is full, or in explain, which prints rules in order.
		 */
		if ((r->limit == NULL && r->mode == MODE_ENFORCE &&
		    action_is_terminal(r->action)) || e.npend == PEND_MAX ||
		    e.trace) {
			done = resolve(&e);
			e.nreqs = e.npend = e.keyused = 0;
		}
	}
	if (!done && e.npend > 0)
		(void)resolve(&e);
eom:
	/* A later accept ends the rules, not a quarantine already decided. */
	if (stage == STAGE_EOM && s->quarantine != NULL &&
	    (out->action == ACTION_CONTINUE || out->action == ACTION_ACCEPT)) {
		out->action = ACTION_QUARANTINE;
		out->rule = s->quarantine;
	}
}

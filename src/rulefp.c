/*
 * rulefp.c - the fingerprint of each limited rule ("key=client_ip
 * rate=10/60s burst=5"): what its counters depend on. A reload logs the
 * rules whose fingerprint changed (their counters restart: the engine
 * keys a counter by counter name and key parts, the stores by its limit
 * too); the daemon records its set in Redis so that `warden check` can
 * say the same before the reload.
 * Not: restarting anything; the stores do that by keying.
 * Threads: pure functions except rulefp_publish / rulefp_check_redis.
 * Errors: text read from Redis is untrusted: bounded, escaped on output.
 */
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rulefp.h"
#include "util.h"

#define RULEFP_HASH	"rules"	/* prefix + this: the record */
#define RULEFP_READ_MAX	4096	/* rules read back, at most */

int
rulefp_format(const struct rule *r, char *buf, size_t len)
{
	const struct limit *lim = r->limit;
	size_t at, i;
	int net = 0, n;

	if (lim == NULL || len == 0)
		return -1;
	at = (size_t)snprintf(buf, len, "key=");
	for (i = 0; i < lim->nparts && at < len; i++) {
		net |= lim->parts[i] == KEY_CLIENT_NET;
		at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? "," :
		    "", rules_key_name(lim->parts[i]));
	}
	/* The rate as the GCRA sees it: 1/1m and 60/1h are not the same. */
	if (at < len)
		at += (size_t)snprintf(buf + at, len - at, " rate=%lld/%llds "
		    "burst=%lld", (long long)lim->count,
		    (long long)(lim->period_ns / NS_PER_SEC),
		    (long long)lim->g.burst);
	if (net && at < len)
		at += (size_t)snprintf(buf + at, len - at, " ipv4_prefix=%u "
		    "ipv6_prefix=%u", lim->ipv4_prefix, lim->ipv6_prefix);
	if (lim->counter != NULL && strcmp(lim->counter, r->name) != 0 &&
	    at < len)
		at += (size_t)snprintf(buf + at, len - at, " counter=%s",
		    lim->counter);
	n = at < len ? (int)at : (int)len - 1;
	return n;
}

int
rulefp_list(const struct ruleset *rs, struct rulefp **out)
{
	struct rulefp *v;
	size_t i, n = 0;

	*out = NULL;
	if ((v = calloc(rs->nrules + 1, sizeof(*v))) == NULL)
		return -1;
	for (i = 0; i < rs->nrules; i++) {
		if (rs->rules[i]->limit == NULL)
			continue;
		snprintf(v[n].name, sizeof(v[n].name), "%s",
		    rs->rules[i]->name);
		if (rulefp_format(rs->rules[i], v[n].fp, sizeof(v[n].fp)) >= 0)
			n++;
	}
	*out = v;
	return (int)n;
}

/* The value of "name=" in a fingerprint, into val; 0 when absent. */
static int
fp_field(const char *fp, const char *name, size_t nlen, char *val,
    size_t vlen)
{
	const char *p = fp, *end;

	while (*p != '\0') {
		end = strchr(p, ' ');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) > nlen && strncmp(p, name, nlen) == 0 &&
		    p[nlen] == '=') {
			snprintf(val, vlen, "%.*s", (int)(end - p - nlen - 1),
			    p + nlen + 1);
			return 1;
		}
		p = *end == ' ' ? end + 1 : end;
	}
	*val = '\0';
	return 0;
}

/* "rate 10/60s -> 20/60s, burst 10 -> 20": every field that differs. */
static void
fp_diff(const char *old, const char *new, char *buf, size_t len)
{
	static const char *const names[] = { "key", "rate", "burst",
	    "ipv4_prefix", "ipv6_prefix", "counter" };
	char a[RULEFP_MAX], b[RULEFP_MAX];
	size_t i, at = 0;

	buf[0] = '\0';
	for (i = 0; i < NELEM(names) && at < len; i++) {
		fp_field(old, names[i], strlen(names[i]), a, sizeof(a));
		fp_field(new, names[i], strlen(names[i]), b, sizeof(b));
		if (strcmp(a, b) != 0)
			at += (size_t)snprintf(buf + at, len - at, "%s%s %s -> "
			    "%s", at ? ", " : "", names[i], a[0] ? a : "-",
			    b[0] ? b : "-");
	}
	/* A field this version does not know: say the whole change. */
	if (at == 0)
		snprintf(buf, len, "%.90s -> %.90s", old, new);
}

static const struct rulefp *
fp_find(const struct rulefp *v, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return &v[i];
	return NULL;
}

size_t
rulefp_compare(const struct rulefp *old, size_t nold,
    const struct rulefp *new, size_t nnew,
    void (*fn)(void *, enum rulefp_change, const char *, const char *),
    void *ctx)
{
	const struct rulefp *o;
	char what[2 * RULEFP_MAX + 64];
	size_t i, calls = 0;

	for (i = 0; i < nnew; i++) {
		if ((o = fp_find(old, nold, new[i].name)) == NULL) {
			fn(ctx, RULEFP_NEW, new[i].name, new[i].fp);
			calls++;
		} else if (strcmp(o->fp, new[i].fp) != 0) {
			fp_diff(o->fp, new[i].fp, what, sizeof(what));
			fn(ctx, RULEFP_RESTART, new[i].name, what);
			calls++;
		}
	}
	for (i = 0; i < nold; i++)
		if (fp_find(new, nnew, old[i].name) == NULL) {
			fn(ctx, RULEFP_GONE, old[i].name, old[i].fp);
			calls++;
		}
	return calls;
}

static void
log_restart(void *ctx, enum rulefp_change ch, const char *name,
    const char *what)
{
	(void)ctx;
	if (ch == RULEFP_RESTART)
		log_info("reload: counters restart for rule=%s (%s)", name,
		    what);
}

void
rulefp_log_reload(const struct ruleset *old, const struct ruleset *new)
{
	struct rulefp *a = NULL, *b = NULL;
	int na, nb;

	na = rulefp_list(old, &a);
	nb = rulefp_list(new, &b);
	if (na >= 0 && nb >= 0)
		(void)rulefp_compare(a, (size_t)na, b, (size_t)nb,
		    log_restart, NULL);
	free(a);
	free(b);
}

int
rulefp_publish(struct store *s, const struct ruleset *rs, char *err,
    size_t errlen)
{
	struct rulefp *v = NULL;
	const char **f = NULL, **val = NULL;
	int n, i, rc = -1;

	snprintf(err, errlen, "out of memory");
	if ((n = rulefp_list(rs, &v)) < 0 ||
	    (f = calloc((size_t)n + 1, sizeof(*f))) == NULL ||
	    (val = calloc((size_t)n + 1, sizeof(*val))) == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		f[i] = v[i].name;
		val[i] = v[i].fp;
	}
	rc = store_redis_hash_put(s, RULEFP_HASH, f, val, (size_t)n, err,
	    errlen);
out:
	free(f);
	free(val);
	free(v);
	return rc;
}

/* --- warden check ------------------------------------------------------ */

struct readback {
	struct rulefp	*v;
	size_t		n, cap;
};

/* One field of the daemon's record; untrusted, so bounded here. */
static void
read_one(void *ctx, const char *f, size_t flen, const char *val,
    size_t vlen)
{
	struct readback *rb = ctx;
	struct rulefp *e;

	if (rb->n == rb->cap || flen > RULES_NAME_MAX || vlen >= RULEFP_MAX ||
	    memchr(f, '\0', flen) != NULL || memchr(val, '\0', vlen) != NULL)
		return;
	e = &rb->v[rb->n++];
	memcpy(e->name, f, flen);
	e->name[flen] = '\0';
	memcpy(e->fp, val, vlen);
	e->fp[vlen] = '\0';
}

static void
print_change(void *ctx, enum rulefp_change ch, const char *name,
    const char *what)
{
	static const char *const verb[] = { "restart", "start (new rule)",
	    "end (rule gone)" };
	char en[LOG_ESC_BUF], ew[LOG_ESC_BUF];

	log_esc(name, strlen(name), en, sizeof(en));
	log_esc(what, strlen(what), ew, sizeof(ew));
	fprintf(ctx, "counters %s on reload: rule=%s (%s)\n", verb[ch], en,
	    ew);
}

void
rulefp_check_redis(const struct store_redis_opts *o,
    const struct ruleset *rs, FILE *out)
{
	struct readback rb = { NULL, 0, RULEFP_READ_MAX };
	struct rulefp *mine = NULL;
	char err[256], esc[LOG_ESC_BUF];
	int n;

	if ((rb.v = calloc(rb.cap, sizeof(*rb.v))) == NULL ||
	    (n = rulefp_list(rs, &mine)) < 0) {
		fprintf(out, "counters on reload: not compared (out of "
		    "memory)\n");
		goto out;
	}
	if (store_redis_hash_get(o, RULEFP_HASH, read_one, &rb, err,
	    sizeof(err)) == -1) {
		log_esc(err, strlen(err), esc, sizeof(esc));
		fprintf(out, "counters on reload: not compared, Redis not "
		    "read: %s\n", esc);
		goto out;
	}
	if (rb.n == 0 && n > 0) {
		fprintf(out, "counters on reload: no record of a running "
		    "daemon in Redis (%s" RULEFP_HASH ")\n", o->prefix != NULL ?
		    o->prefix : "warden:");
		goto out;
	}
	if (rulefp_compare(rb.v, rb.n, mine, (size_t)n, print_change, out) ==
	    0)
		fprintf(out, "counters on reload: all %d kept (compared with "
		    "the running daemon's record in Redis)\n", n);
out:
	free(rb.v);
	free(mine);
}

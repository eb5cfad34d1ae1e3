/*
 * milter.c - `warden run`: the libmilter side (DESIGN.md §4, §5, §6).
 * Owns: translating libmilter callbacks into session facts and engine
 * stages, verdicts into smfi_setreply/SMFIS_*, negotiation, the listening
 * socket, privilege drop, signals (reload, stats, stop).
 * Not: policy (engine.c), formats (declog.c, stats.c, metrics.c).
 * Threads: libmilter's only (see sigwait): the listener in the main
 * thread, callbacks on its worker pool (one connection's callbacks are
 * serialised), signals in its signal thread. The running config is a refcounted snapshot:
 * a connection takes one at connect and keeps it until close, so a reload
 * never changes the rules under a session in flight. libmilter gives
 * xxfi_connect no user pointer, so the current snapshot is the one
 * mutable file-scope state here (guarded by snap_lock).
 * Errors: nothing the MTA sends can abort us; out of memory at connect
 * tempfails that connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "config.h"
#include "declog.h"
#include "engine.h"
#include "log.h"
#include "macros.h"
#include "metrics.h"
#include "milter.h"
#include "rulefp.h"
#include "stats.h"

/* One loaded configuration; sessions hold a reference. */
struct snap {
	atomic_int	refs;
	struct config	*cfg;
	unsigned long	proto;		/* SMFIP_NO* we may ask for */
	unsigned long	noreply;	/* SMFIP_NR_* we may ask for */
	int		need_rej;	/* SMFIP_RCPT_REJ */
	char		*symlist[MS_COUNT];	/* "{daemon_port} i" */
};

/* Per connection (smfi_setpriv). */
struct conn {
	struct snap	*snap;
	struct sess	*s;		/* during a callback: see conn_open */
	unsigned long	noreply;	/* SMFIP_NR_* the MTA agreed to */
	struct sess_keep keep;		/* between callbacks */
	int		gk;		/* enum gate_kind of this callback */
	int		draining;	/* answered while stopping */
};

/* Freed connections kept for reuse: see conn_alloc. */
#define CONN_SPARE_MAX	64

/* The daemon's shared state; see the file comment for why it is here. */
static struct {
	pthread_mutex_t	snap_lock;
	struct snap	*snap;
	struct store	*store;		/* survives reloads */
	struct engine_ctx ctx;
	int64_t		start;
	const char	*path;		/* the config file, for reloads */
	pid_t		main_tid;	/* libmilter's listener */
	_Atomic int64_t	kick_until;	/* see on_kick */
	_Atomic int64_t	err_logged;	/* last store-error line */
	_Atomic uint64_t err_quiet;	/* store-error lines not written */
	struct metrics_state metrics;	/* the signal loop's, then main's */
	_Atomic uint64_t gate;		/* see gate_enter */
	atomic_int	stopping;	/* the signal loop is stopping warden */
	atomic_int	have_sigthr;	/* sigthr is set */
	atomic_int	loop_done;	/* the signal loop has returned */
	pthread_t	sigthr;		/* libmilter's signal thread */
	pthread_mutex_t	spare_lock;
	size_t		nspare;
	struct conn	*spare[CONN_SPARE_MAX];	/* see conn_alloc */
} D = { .snap_lock = PTHREAD_MUTEX_INITIALIZER,
    .spare_lock = PTHREAD_MUTEX_INITIALIZER };

static int64_t
now_ns(void)
{
	struct timespec ts;

	/* Monotonic: rate counters must not jump with the wall clock. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

/* --- the timed store ------------------------------------------------- */

/*
 * Wraps the configured store to count calls and errors and measure
 * latency; the engine and stores do not read clocks (CONVENTIONS.md §8).
 */
struct timed {
	struct store	base;
	struct store	*inner;
	int		fallback;	/* on_error=memory's store: counts
					 * store_fallbacks, not calls */
};

static int
timed_charge(struct store *st, const struct store_req *req,
    struct store_res *res, size_t n, int64_t now)
{
	struct timed *t = (struct timed *)st;
	int64_t t0 = now_ns();
	size_t i;
	int rc;

	if (t->fallback) {
		stats_add(ST_STORE_FALLBACKS, 1);
		return store_charge(t->inner, req, res, n, now);
	}
	rc = store_charge(t->inner, req, res, n, now);
	stats_add(ST_STORE_CALLS, 1);
	stats_store_latency((uint64_t)(now_ns() - t0) / 1000);
	for (i = 0; i < n; i++)
		if (res[i].err) {
			stats_add(ST_STORE_ERRORS, 1);
			break;
		}
	return rc;
}

static void
timed_refund(struct store *st, const struct store_req *req, size_t n,
    int64_t now)
{
	store_refund(((struct timed *)st)->inner, req, n, now);
}

static int
timed_peek(struct store *st, const struct store_req *req,
    struct store_res *res, size_t n, int64_t now)
{
	return store_peek(((struct timed *)st)->inner, req, res, n, now);
}

static void
timed_free(struct store *st)
{
	struct timed *t = (struct timed *)st;

	store_free(t->inner);
	free(t);
}

static const struct store_ops timed_ops = {
	"timed", timed_charge, timed_refund, timed_peek, timed_free
};

/* --- snapshots ------------------------------------------------------- */

static void
snap_unref(struct snap *sn)
{
	int i;

	if (sn == NULL || atomic_fetch_sub(&sn->refs, 1) != 1)
		return;
	config_free(sn->cfg);
	for (i = 0; i < MS_COUNT; i++)
		free(sn->symlist[i]);
	free(sn);
}

static struct snap *
snap_get(void)
{
	struct snap *sn;

	pthread_mutex_lock(&D.snap_lock);
	sn = D.snap;
	atomic_fetch_add(&sn->refs, 1);
	pthread_mutex_unlock(&D.snap_lock);
	return sn;
}

/*
 * Stages without rules need no reply: SMFIP_NR_* spares the MTA a round
 * trip. Never DATA (DESIGN.md §4: delayed ACK + Nagle). A 421 at envrcpt
 * on a recipient the MTA refused itself is ignored by Postfix, so the
 * session goes on and every later command must be answered with it:
 * then only connect, which comes first, may go without a reply.
 */
static unsigned long
noreply_stages(const struct ruleset *rs)
{
	static const struct {
		enum stage	stage;
		unsigned long	flag;
	} nr[] = {
		{ STAGE_CONNECT, SMFIP_NR_CONN }, { STAGE_HELO, SMFIP_NR_HELO },
		{ STAGE_ENVFROM, SMFIP_NR_MAIL }, { STAGE_ENVRCPT, SMFIP_NR_RCPT },
		{ STAGE_UNKNOWN, SMFIP_NR_UNKN }, { STAGE_HEADER, SMFIP_NR_HDR },
	};
	unsigned long flags = SMFIP_NR_BODY;
	size_t i;
	int closes = 0;

	for (i = 0; i < rs->nby_stage[STAGE_ENVRCPT]; i++)
		if (rs->by_stage[STAGE_ENVRCPT][i]->reply.code == 421)
			closes = 1;
	for (i = 0; i < NELEM(nr); i++)
		if (rs->nby_stage[nr[i].stage] == 0 &&
		    (!closes || nr[i].stage == STAGE_CONNECT))
			flags |= nr[i].flag;
	return flags;
}

/* What to negotiate follows from what the rules read. */
static struct snap *
snap_new(struct config *c)
{
	const struct ruleset *rs = c->rs;
	const char *m[MACROS_MAX];
	struct snap *sn;
	size_t n, i, at, len;
	uint32_t all = 0;
	int s, need_body;

	if ((sn = calloc(1, sizeof(*sn))) == NULL)
		return NULL;
	atomic_init(&sn->refs, 1);
	sn->cfg = c;
	for (s = 0; s < STAGE_COUNT; s++)
		all |= rs->conds_used[s];
	if (rs->nby_stage[STAGE_HEADER] == 0)
		sn->proto |= SMFIP_NOHDRS | SMFIP_NOEOH;
	/* The body only matters for the size at eom. */
	need_body = (rs->conds_used[STAGE_EOM] & (1u << COND_SIZE_OVER)) != 0;
	for (i = 0; i < rs->nby_stage[STAGE_EOM]; i++)
		if (rs->by_stage[STAGE_EOM][i]->limit != NULL &&
		    rs->by_stage[STAGE_EOM][i]->limit->cost_size)
			need_body = 1;
	if (!need_body)
		sn->proto |= SMFIP_NOBODY;
	if (rs->nby_stage[STAGE_UNKNOWN] == 0)
		sn->proto |= SMFIP_NOUNKNOWN;
	sn->need_rej = (all & ((1u << COND_RCPT_REJECTED) |
	    (1u << COND_BAD_RCPT_COUNT_OVER))) != 0;
	sn->noreply = noreply_stages(rs);
	for (s = 0; s < MS_COUNT; s++) {
		n = macros_needed(rs, s, m, MACROS_MAX);
		for (len = 1, i = 0; i < n; i++)
			len += strlen(m[i]) + 1;
		if ((sn->symlist[s] = calloc(1, len)) == NULL) {
			sn->cfg = NULL;
			snap_unref(sn);
			return NULL;
		}
		for (at = 0, i = 0; i < n; i++)
			at += (size_t)snprintf(sn->symlist[s] + at, len - at,
			    "%s%s", i ? " " : "", m[i]);
	}
	return sn;
}

/* --- helpers --------------------------------------------------------- */

static const char *
macro(SMFICTX *ctx, const char *name)
{
	const char *v = smfi_getsymval(ctx, (char *)name);

	return v != NULL ? v : "";
}

/*
 * A store outage would otherwise log one line per event: at most one
 * line a minute, carrying the count of those it stood for.
 */
static int
store_error_quiet(void)
{
	int64_t now = now_ns(), last = atomic_load(&D.err_logged);

	if (last != 0 && now - last < 60 * NS_PER_SEC) {
		atomic_fetch_add(&D.err_quiet, 1);
		return 1;
	}
	return !atomic_compare_exchange_strong(&D.err_logged, &last, now);
}

static void
on_decision(void *arg, const struct engine_decision *d)
{
	char line[LOG_LINE_MAX];
	uint64_t quiet;

	struct declog_priv priv;
	struct snap *sn;

	(void)arg;
	stats_decision(d);
	if (d->store_error && d->action == ACTION_CONTINUE &&
	    store_error_quiet())
		return;
	/* The running config's: a reload turning privacy on acts at once. */
	sn = snap_get();
	priv.key = sn->cfg->store.key_secret;
	priv.keylen = strlen(priv.key);
	declog_format_priv(d, sn->cfg->daemon.log_privacy ? &priv : NULL,
	    line, sizeof(line));
	snap_unref(sn);
	if (d->store_error && d->action == ACTION_CONTINUE) {
		quiet = atomic_exchange(&D.err_quiet, 0);
		log_warning("%s (%llu more store errors in the last minute)",
		    line, (unsigned long long)quiet);
		return;
	}
	log_info("%s", line);
}

/*
 * Hands the reply to libmilter: '%' doubled (Sendmail formats the text),
 * multi-line through smfi_setmlreply. When libmilter refuses the text
 * (over its 980-byte line limit once escaped) the codes alone still go.
 */
static void
set_reply(SMFICTX *ctx, const struct reply_out *r)
{
	char esc[REPLY_LINES_MAX][REPLY_TEXT_MAX * 2 + 1];
	char *l[REPLY_LINES_MAX + 1];
	size_t i;
	int rc;

	for (i = 0; i < REPLY_LINES_MAX + 1; i++)
		l[i] = NULL;
	for (i = 0; i < r->nlines && i < REPLY_LINES_MAX; i++) {
		reply_milter_esc(r->line[i], esc[i], sizeof(esc[i]));
		l[i] = esc[i];
	}
	if (r->nlines <= 1)
		rc = smfi_setreply(ctx, (char *)r->rcode, (char *)r->xcode,
		    r->nlines == 1 && esc[0][0] != '\0' ? esc[0] : NULL);
	else
		rc = smfi_setmlreply(ctx, r->rcode, r->xcode, l[0], l[1], l[2],
		    l[3], l[4], l[5], l[6], l[7], l[8], l[9], l[10], l[11],
		    l[12], l[13], l[14], l[15], l[16], l[17], l[18], l[19],
		    l[20], l[21], l[22], l[23], l[24], l[25], l[26], l[27],
		    l[28], l[29], l[30], l[31], (char *)NULL);
	if (rc != MI_SUCCESS) {
		log_warning("libmilter refused the reply text of %s; sending "
		    "the codes only", r->rcode);
		(void)smfi_setreply(ctx, (char *)r->rcode, (char *)r->xcode,
		    NULL);
	}
}

static unsigned long
stage_noreply(enum stage stage)
{
	switch (stage) {
	case STAGE_CONNECT:
		return SMFIP_NR_CONN;
	case STAGE_HELO:
		return SMFIP_NR_HELO;
	case STAGE_ENVFROM:
		return SMFIP_NR_MAIL;
	case STAGE_ENVRCPT:
		return SMFIP_NR_RCPT;
	case STAGE_UNKNOWN:
		return SMFIP_NR_UNKN;
	case STAGE_HEADER:
		return SMFIP_NR_HDR;
	default:
		return 0;
	}
}

/*
 * After these answers libmilter takes the message as over: it goes back
 * to expecting MAIL and drops the MTA's abort for it, so x_abort never
 * runs. The transaction is forgotten here instead, or a later command
 * would be judged (and logged) with its queue id and sender.
 */
static sfsistat
msg_over(struct conn *c, enum stage stage, sfsistat rc)
{
	int over = 0;

	switch (stage) {
	case STAGE_ENVFROM:
	case STAGE_DATA:
	case STAGE_HEADER:
		over = rc == SMFIS_REJECT || rc == SMFIS_TEMPFAIL ||
		    rc == SMFIS_DISCARD || rc == SMFIS_ACCEPT;
		break;
	case STAGE_ENVRCPT:
		/*
		 * A refusal is the recipient's only; after a discard
		 * libmilter stays in the transaction (more RCPTs, DATA,
		 * and the MTA's abort still come). Only accept ends it.
		 */
		over = rc == SMFIS_ACCEPT;
		break;
	default:
		break;
	}
	if (over)
		sess_reset_msg(c->s);
	return rc;
}

/* Runs the engine for one stage and turns its result into SMFIS_*. */
static sfsistat
eval_stage(SMFICTX *ctx, struct conn *c, enum stage stage)
{
	/*
	 * The result (24 kB: reply and key buffers) lives on the callback's
	 * stack, not in the connection: an idle session then costs only
	 * its kept session head (issue #4: 2 kB per open session).
	 */
	struct engine_result rbuf, *res = &rbuf;

	/*
	 * Out of memory lost this transaction's sender and tags: judged
	 * without them, sender rules would stop matching. conn_done logged.
	 */
	if (sess_lost(c->s, stage)) {
		/*
		 * Where the MTA agreed to no reply, none can go: the mark
		 * stays for the next stage that has one (eom always does).
		 */
		if (c->noreply & stage_noreply(stage))
			return SMFIS_NOREPLY;
		reply_out_set(&res->reply, 451, 4, 3, 0,
		    "Temporary local problem, try again later");
		set_reply(ctx, &res->reply);
		return SMFIS_TEMPFAIL;
	}
	engine_eval(&D.ctx, c->snap->cfg->rs, c->s, stage, now_ns(), res);
	switch (res->action) {
	case ACTION_ACCEPT:
		/*
		 * SMFIS_ACCEPT skips eom, where tags and a quarantine
		 * flagged earlier are applied; the engine skips the rules of
		 * the rest of the message by itself.
		 */
		if (stage != STAGE_CONNECT && stage != STAGE_HELO &&
		    stage != STAGE_EOM && (c->s->ntags > 0 ||
		    c->s->quarantine != NULL))
			return SMFIS_CONTINUE;
		return SMFIS_ACCEPT;
	case ACTION_REJECT:
		set_reply(ctx, &res->reply);
		return SMFIS_REJECT;
	case ACTION_TEMPFAIL:
		set_reply(ctx, &res->reply);
		return SMFIS_TEMPFAIL;
	case ACTION_DISCARD:
		return SMFIS_DISCARD;
	default:
		return (c->noreply & stage_noreply(stage)) ? SMFIS_NOREPLY :
		    SMFIS_CONTINUE;
	}
}

static sfsistat
eval(SMFICTX *ctx, struct conn *c, enum stage stage)
{
	return msg_over(c, stage, eval_stage(ctx, c, stage));
}

static struct conn *
conn_of(SMFICTX *ctx)
{
	return smfi_getpriv(ctx);
}

/* --- stopping -------------------------------------------------------- */

/*
 * D.gate lets a stop wait for the callbacks in flight with no lock on
 * the hot path (one atomic add and one compare-and-swap a callback).
 * Low bits: callbacks running; next: connections answered after the
 * stop began and not closed yet; two flags set by stop_sessions.
 */
#define GATE_BUSY	((uint64_t)1)
#define GATE_DRAIN	((uint64_t)1 << 24)
#define GATE_COUNTS	(((uint64_t)1 << 48) - 1)
#define GATE_STOP	((uint64_t)1 << 61)	/* commands wait */
#define GATE_SHUT	((uint64_t)1 << 62)	/* every callback waits */

enum gate_kind { GATE_CMD, GATE_END };	/* END: abort, close */

/*
 * Once warden stops, a callback for a new command never returns: no
 * answer goes out, the connection closes when the process exits and the
 * MTA applies its milter_default_action, as for any milter that is down.
 * Answering tempfail here would overrule a postmaster's "accept".
 */
static void
gate_enter(enum gate_kind k)
{
	uint64_t w = atomic_fetch_add(&D.gate, GATE_BUSY);

	if ((w & GATE_SHUT) || (k == GATE_CMD && (w & GATE_STOP))) {
		atomic_fetch_sub(&D.gate, GATE_BUSY);
		for (;;)
			pause();
	}
}

/*
 * A command answered after the stop began still has its reply to be
 * written by libmilter, which then sees MILTER_ABRT and closes the
 * connection (x_close): the stop waits for that close. One atomic step,
 * so the stop cannot see this callback gone before it is counted.
 */
static void
gate_leave(struct conn *c, enum gate_kind k)
{
	uint64_t w = atomic_load(&D.gate), nw;
	int drain;

	do {
		drain = k == GATE_CMD && c != NULL && !c->draining &&
		    (w & GATE_STOP) != 0;
		nw = w - GATE_BUSY + (drain ? GATE_DRAIN : 0);
	} while (!atomic_compare_exchange_weak(&D.gate, &w, nw));
	if (drain)
		c->draining = 1;
}

/*
 * A struct conn (~1.4 kB) is a large-bin request for glibc's malloc,
 * which then consolidates its fastbins (full of libmilter's per-command
 * buffers) on each one: ~2% of warden's CPU at 50 connections (perf).
 * Freed ones are kept for the next connections instead, a few dozen at
 * most; the lock is held for one pointer.
 */
static struct conn *
conn_alloc(void)
{
	struct conn *c = NULL;

	pthread_mutex_lock(&D.spare_lock);
	if (D.nspare > 0)
		c = D.spare[--D.nspare];
	pthread_mutex_unlock(&D.spare_lock);
	return c != NULL ? c : malloc(sizeof(*c));
}

static void
conn_release(struct conn *c)
{
	pthread_mutex_lock(&D.spare_lock);
	if (D.nspare < CONN_SPARE_MAX) {
		D.spare[D.nspare++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&D.spare_lock);
	free(c);
}

/*
 * A connection's state is made at negotiation (so both use the same
 * snapshot) or, when the MTA skips that, at connect.
 */
static struct conn *
conn_new(SMFICTX *ctx)
{
	struct conn *c;

	if ((c = conn_alloc()) == NULL) {
		log_error("out of memory: tempfailing a connection");
		return NULL;
	}
	c->snap = snap_get();
	c->noreply = 0;
	c->s = NULL;
	c->gk = GATE_CMD;
	c->draining = 0;
	sess_keep_init(&c->keep);
	smfi_setpriv(ctx, c);
	return c;
}

/*
 * The session for this callback, rebuilt in tmp (the callback's stack)
 * from what the connection keeps; conn_done packs back what must outlive
 * the callback, so a held connection costs ~1.5 kB, not ~13 kB.
 */
static void
conn_open(struct conn *c, struct sess *tmp, enum gate_kind k)
{
	gate_enter(k);
	c->gk = k;
	c->s = sess_keep_open(&c->keep, tmp);
}

static sfsistat
conn_done(struct conn *c, sfsistat rc)
{
	if (sess_keep_close(&c->keep, c->s) != 0) {
		log_error("out of memory: transaction lost, its commands "
		    "get 451 4.3.0 until the next MAIL");
		/* A stage without a reply cannot get one now. */
		if (rc != SMFIS_NOREPLY)
			rc = SMFIS_TEMPFAIL;
	}
	c->s = NULL;
	gate_leave(c, c->gk);
	return rc;
}

/* --- callbacks ------------------------------------------------------- */

static sfsistat
x_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	static const int ms_of[MS_COUNT] = {
		[MS_CONNECT] = SMFIM_CONNECT, [MS_HELO] = SMFIM_HELO,
		[MS_ENVFROM] = SMFIM_ENVFROM, [MS_ENVRCPT] = SMFIM_ENVRCPT,
		[MS_EOM] = SMFIM_EOM,
	};
	struct conn *c = conn_of(ctx);
	struct snap *sn;
	int s;

	(void)f2;
	(void)f3;
	gate_enter(GATE_CMD);
	if (c == NULL)
		c = conn_new(ctx);
	sn = c != NULL ? c->snap : snap_get();
	*pf0 = (SMFIF_ADDHDRS | SMFIF_QUARANTINE) & f0;
	if (f0 & SMFIF_SETSYMLIST)
		*pf0 |= SMFIF_SETSYMLIST;
	/*
	 * Never SMFIP_NODATA nor no-reply for DATA: over TCP, Postfix's
	 * lone DATA macro packet meets a delayed ACK and Nagle, capping a
	 * session at ~23 msg/s (DESIGN.md §4).
	 */
	*pf1 = (sn->proto | sn->noreply) & f1;
	if (sn->need_rej && (f1 & SMFIP_RCPT_REJ))
		*pf1 |= SMFIP_RCPT_REJ;
	if (c != NULL)
		c->noreply = sn->noreply & f1;
	*pf2 = *pf3 = 0;
	if (f0 & SMFIF_SETSYMLIST)
		for (s = 0; s < MS_COUNT; s++)
			if (sn->symlist[s][0] != '\0')
				(void)smfi_setsymlist(ctx, ms_of[s],
				    sn->symlist[s]);
	if (c == NULL)
		snap_unref(sn);
	gate_leave(c, GATE_CMD);
	return SMFIS_CONTINUE;
}

/*
 * A dotted quad without inet_ntop, whose sprintf showed in the profile
 * of every connection. out: at least 16 bytes.
 */
static void
ip4_format(const struct in_addr *in, char *out)
{
	const unsigned char *b = (const unsigned char *)&in->s_addr;
	size_t n = 0;
	int i;

	for (i = 0; i < 4; i++) {
		if (i > 0)
			out[n++] = '.';
		if (b[i] >= 100)
			out[n++] = (char)('0' + b[i] / 100);
		if (b[i] >= 10)
			out[n++] = (char)('0' + b[i] / 10 % 10);
		out[n++] = (char)('0' + b[i] % 10);
	}
	out[n] = '\0';
}

static void
set_client(struct sess *s, const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN];
	unsigned port = 0;

	ip[0] = '\0';
	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

		ip4_format(&a->sin_addr, ip);
		port = ntohs(a->sin_port);
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		port = ntohs(a->sin6_port);
	}
	sess_set_client(s, ip[0] ? ip : NULL, strlen(ip), port);
}

static sfsistat
x_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *hostaddr)
{
	struct conn *c = conn_of(ctx);
	struct sess tmp;
	const char *v;
	long long port;

	/*
	 * Postfix's XCLIENT makes a second connect on the same milter
	 * connection: a new client, the same snapshot and negotiation.
	 */
	gate_enter(GATE_CMD);
	if (c != NULL) {
		sess_keep_fini(&c->keep);
		sess_keep_init(&c->keep);
	} else if ((c = conn_new(ctx)) == NULL) {
		gate_leave(NULL, GATE_CMD);
		return SMFIS_TEMPFAIL;
	}
	c->gk = GATE_CMD;
	c->s = sess_keep_open(&c->keep, &tmp);
	stats_add(ST_CONNECTIONS, 1);
	set_client(c->s, (const struct sockaddr *)hostaddr);
	/* Postfix says "unknown", Sendmail "[ip]", when there is no name. */
	if (hostname != NULL && strcmp(hostname, "unknown") != 0 &&
	    hostname[0] != '[')
		sess_set_client_name(c->s, hostname, strlen(hostname));
	v = macro(ctx, "{daemon_port}");
	if (str_to_ll(v, 1, 65535, &port) == 0)
		c->s->port = (int)port;
	v = macro(ctx, "{daemon_name}");
	sess_set_daemon(c->s, v, strlen(v));
	return conn_done(c, eval(ctx, c, STAGE_CONNECT));
}

static sfsistat
x_helo(SMFICTX *ctx, char *helo)
{
	struct conn *c = conn_of(ctx);
	struct sess tmp;
	const char *tls, *bits;
	long long nbits = 0;

	if (c == NULL)
		return SMFIS_CONTINUE;
	conn_open(c, &tmp, GATE_CMD);
	sess_set_helo(c->s, helo, helo != NULL ? strlen(helo) : 0);
	tls = macro(ctx, "{tls_version}");
	bits = macro(ctx, "{cipher_bits}");
	if (str_to_ll(bits, 0, 65535, &nbits) != 0)
		nbits = 0;
	sess_set_tls(c->s, tls, strlen(tls), (int)nbits);
	return conn_done(c, eval(ctx, c, STAGE_HELO));
}

static sfsistat
x_envfrom(SMFICTX *ctx, char **argv)
{
	struct conn *c = conn_of(ctx);
	struct sess tmp;
	const char *user, *mech, *qid;
	long long size;
	int i;

	if (c == NULL)
		return SMFIS_CONTINUE;
	conn_open(c, &tmp, GATE_CMD);
	sess_reset_msg(c->s);
	stats_add(ST_MESSAGES, 1);
	sess_set_sender(c->s, argv[0], argv[0] != NULL ? strlen(argv[0]) : 0);
	for (i = 1; argv[i] != NULL; i++)
		if (strncasecmp(argv[i], "SIZE=", 5) == 0 &&
		    str_to_ll(argv[i] + 5, 0, LLONG_MAX / 2, &size) == 0)
			c->s->size = size;
	qid = macro(ctx, "i");
	sess_set_queue_id(c->s, qid, strlen(qid));
	user = macro(ctx, "{auth_authen}");
	mech = macro(ctx, "{auth_type}");
	sess_set_auth(c->s, user, strlen(user), mech, strlen(mech));
	return conn_done(c, eval(ctx, c, STAGE_ENVFROM));
}

static sfsistat
x_envrcpt(SMFICTX *ctx, char **argv)
{
	struct conn *c = conn_of(ctx);
	struct sess tmp;
	const char *qid;
	int rej;

	if (c == NULL)
		return SMFIS_CONTINUE;
	conn_open(c, &tmp, GATE_CMD);
	/* With SMFIP_RCPT_REJ Postfix marks refused ones mailer "error". */
	rej = strcmp(macro(ctx, "{rcpt_mailer}"), "error") == 0;
	sess_set_rcpt(c->s, argv[0], argv[0] != NULL ? strlen(argv[0]) : 0,
	    rej);
	if (c->s->queue_id[0] == '\0') {
		qid = macro(ctx, "i");
		sess_set_queue_id(c->s, qid, strlen(qid));
	}
	if (!rej)
		stats_add(ST_RCPTS, 1);
	return conn_done(c, eval(ctx, c, STAGE_ENVRCPT));
}

static sfsistat
x_data(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);
	struct sess tmp;
	const char *qid;

	if (c == NULL)
		return SMFIS_CONTINUE;
	conn_open(c, &tmp, GATE_CMD);
	c->s->rcpt[0] = '\0';
	c->s->size = 0;
	/* Postfix's default milter_data_macros carry the queue id. */
	if (c->s->queue_id[0] == '\0') {
		qid = macro(ctx, "i");
		sess_set_queue_id(c->s, qid, strlen(qid));
	}
	return conn_done(c, eval(ctx, c, STAGE_DATA));
}

static sfsistat
x_header(SMFICTX *ctx, char *name, char *value)
{
	struct conn *c = conn_of(ctx);
	struct sess tmp;

	if (c == NULL)
		return SMFIS_CONTINUE;
	conn_open(c, &tmp, GATE_CMD);
	sess_set_header(c->s, name, strlen(name), value, strlen(value));
	return conn_done(c, eval(ctx, c, STAGE_HEADER));
}

static sfsistat
x_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct conn *c = conn_of(ctx);
	struct sess tmp;

	(void)chunk;
	if (c == NULL)
		return SMFIS_CONTINUE;
	conn_open(c, &tmp, GATE_CMD);
	c->s->size += (long long)len;
	return conn_done(c, (c->noreply & SMFIP_NR_BODY) ? SMFIS_NOREPLY :
	    SMFIS_CONTINUE);
}

static sfsistat
x_eom(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);
	struct sess tmp;
	const char *qid;
	char q[SESS_QID_MAX * 4 + 8];
	sfsistat rc;
	size_t i;

	if (c == NULL)
		return SMFIS_CONTINUE;
	conn_open(c, &tmp, GATE_CMD);
	qid = macro(ctx, "i");
	if (qid[0] != '\0')
		sess_set_queue_id(c->s, qid, strlen(qid));
	rc = eval(ctx, c, STAGE_EOM);
	if (rc == SMFIS_CONTINUE || rc == SMFIS_ACCEPT) {
		/* The queue id is the MTA's text: escaped like a client's. */
		log_esc(c->s->queue_id, strlen(c->s->queue_id), q, sizeof(q));
		for (i = 0; i < c->s->ntags; i++)
			if (smfi_addheader(ctx, c->s->tags[i].hdr_name,
			    c->s->tags[i].hdr_value) != MI_SUCCESS)
				log_warning("%s: cannot add header %s (rule %s)",
				    q, c->s->tags[i].hdr_name,
				    c->s->tags[i].rule->name);
		/* The engine applies a flagged quarantine at eom unless
		 * the message was refused or discarded, as rc says here. */
		if (c->s->quarantine != NULL && smfi_quarantine(ctx,
		    c->s->quarantine->name) != MI_SUCCESS)
			log_warning("%s: quarantine refused by the MTA (rule "
			    "%s)", q, c->s->quarantine->name);
	}
	sess_reset_msg(c->s);
	return conn_done(c, rc);
}

static sfsistat
x_abort(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);
	struct sess tmp;

	if (c == NULL)
		return SMFIS_CONTINUE;
	/* Also how libmilter ends a transaction when warden stops. */
	conn_open(c, &tmp, GATE_END);
	sess_reset_msg(c->s);
	return conn_done(c, SMFIS_CONTINUE);
}

static sfsistat
x_unknown(SMFICTX *ctx, const char *cmd)
{
	struct conn *c = conn_of(ctx);
	struct sess tmp;

	if (c == NULL)
		return SMFIS_CONTINUE;
	conn_open(c, &tmp, GATE_CMD);
	sess_set_command(c->s, cmd, strlen(cmd));
	return conn_done(c, eval(ctx, c, STAGE_UNKNOWN));
}

static sfsistat
x_close(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);

	gate_enter(GATE_END);
	if (c != NULL) {
		if (c->draining)
			atomic_fetch_sub(&D.gate, GATE_DRAIN);
		smfi_setpriv(ctx, NULL);
		snap_unref(c->snap);
		sess_keep_fini(&c->keep);
		conn_release(c);
	}
	gate_leave(NULL, GATE_END);
	return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
	.xxfi_name = "warden",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFIF_ADDHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST,
	.xxfi_connect = x_connect,
	.xxfi_helo = x_helo,
	.xxfi_envfrom = x_envfrom,
	.xxfi_envrcpt = x_envrcpt,
	.xxfi_header = x_header,
	.xxfi_eoh = NULL,
	.xxfi_body = x_body,
	.xxfi_eom = x_eom,
	.xxfi_abort = x_abort,
	.xxfi_close = x_close,
	.xxfi_unknown = x_unknown,
	.xxfi_data = x_data,
	.xxfi_negotiate = x_negotiate,
};

/* --- process --------------------------------------------------------- */

static void
apply_log(const struct config *c)
{
	log_open(c->daemon.log, "warden", c->daemon.facility,
	    c->daemon.log_level);
}

/* What `warden check` compares a new config with (rulefp.c). */
static void
publish_rules(const struct config *c)
{
	struct store *in;
	char err[256];

	/* The running store: a reload does not change the backend. */
	if (D.store == NULL || strcmp((in = ((struct timed *)
	    D.store)->inner)->ops->name, "redis") != 0)
		return;
	if (rulefp_publish(in, c->rs, err, sizeof(err)) == -1)
		log_warning("store: redis: the rules' fingerprints for warden "
		    "check not recorded: %s", err);
}

static void
reload(const char *path)
{
	struct snap *sn, *old;
	struct config *c;
	struct diag d;
	char line[DIAG_FILE_MAX + DIAG_MSG_MAX + 32];
	size_t i;

	diag_init(&d);
	c = config_load(path, &d);
	if (c == NULL || (sn = snap_new(c)) == NULL) {
		if (c == NULL && d.n == 0)
			log_error("reload: failed, keeping the running rules: "
			    "out of memory");
		for (i = 0; c == NULL && i < d.n; i++)
			if (d.v[i].sev == DIAG_ERROR)
				log_error("reload: failed, keeping the running "
				    "rules: %s", diag_format(&d, i, line,
				    sizeof(line)));
		config_free(c);
		diag_fini(&d);
		stats_add(ST_RELOAD_FAILURES, 1);
		return;
	}
	stats_add(ST_RELOADS, 1);
	pthread_mutex_lock(&D.snap_lock);
	old = D.snap;
	/* Counters follow the rules by name across the swap. */
	stats_carry(old->cfg->rs, c->rs);
	D.snap = sn;
	pthread_mutex_unlock(&D.snap_lock);
	if (config_restart_changes(old->cfg, c, line, sizeof(line))[0] !=
	    '\0')
		log_warning("reload: changed settings that take effect at "
		    "the next start only: %s", line);
	apply_log(c);
	log_info("reload: ok files=%zu rules=%zu", c->rs->nfiles,
	    c->rs->nrules);
	rulefp_log_reload(old->cfg->rs, c->rs);
	publish_rules(c);
	for (i = 0; i < d.n; i++)
		log_warning("reload: %s", diag_format(&d, i, line,
		    sizeof(line)));
	snap_unref(old);
	diag_fini(&d);
}

/*
 * A unix socket left by a crashed instance is removed; one that still
 * answers belongs to a running instance and is left alone.
 */
static int
clear_stale_socket(const char *spec)
{
	struct sockaddr_un sa;
	struct stat st;
	const char *path = strchr(spec, ':') + 1;
	int fd, rc;

	if (strncmp(spec, "unix:", 5) != 0 && strncmp(spec, "local:", 6) != 0)
		return 0;
	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("%s exists and is not a socket: not removing it",
		    path);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	str_copy(sa.sun_path, sizeof(sa.sun_path), path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return -1;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0) {
		log_error("%s: another milter is listening there", path);
		return -1;
	}
	return unlink(path);
}

static int
drop_privileges(const struct config *c)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (geteuid() != 0)
		return 0;
	if (c->daemon.user[0] == '\0') {
		log_error("started as root with daemon.user empty: refusing "
		    "to serve as root");
		return -1;
	}
	if (getpwnam_r(c->daemon.user, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL) {
		log_error("daemon.user %s: no such user", c->daemon.user);
		return -1;
	}
	if (setgroups(0, NULL) != 0 || initgroups(pw.pw_name, pw.pw_gid) !=
	    0 || setgid(pw.pw_gid) != 0 || setuid(pw.pw_uid) != 0) {
		log_error("cannot drop privileges to %s: %s", c->daemon.user,
		    strerror(errno));
		return -1;
	}
	/* Make sure there is no way back. */
	if (setuid(0) == 0) {
		log_error("still able to regain root after dropping to %s",
		    c->daemon.user);
		return -1;
	}
	return 0;
}

/*
 * Started as root, the socket is bound before the drop, so it would stay
 * root's and the MTA (a member of daemon.user's group, the usual way to
 * share a milter socket) could not open it: hand it to daemon.user and
 * its primary group. drop_privileges refuses an empty user later.
 */
static int
chown_socket(const struct config *c, const char *path)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (geteuid() != 0 || c->daemon.user[0] == '\0')
		return 0;
	if (getpwnam_r(c->daemon.user, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL) {
		log_error("daemon.user %s: no such user", c->daemon.user);
		return -1;
	}
	/* lchown: a symlink put in the socket's place is not followed. */
	if (lchown(path, pw.pw_uid, pw.pw_gid) != 0) {
		log_error("chown %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
open_socket(const struct config *c)
{
	const char *path;

	if (clear_stale_socket(c->milter.socket) != 0)
		return -1;
	if (smfi_setconn((char *)c->milter.socket) != MI_SUCCESS ||
	    smfi_settimeout(c->milter.timeout) != MI_SUCCESS ||
	    smfi_register(desc) != MI_SUCCESS ||
	    smfi_opensocket(false) != MI_SUCCESS) {
		log_error("cannot listen on %s", c->milter.socket);
		return -1;
	}
	if ((strncmp(c->milter.socket, "unix:", 5) == 0 ||
	    strncmp(c->milter.socket, "local:", 6) == 0)) {
		path = strchr(c->milter.socket, ':') + 1;
		if (c->milter.socket_mode >= 0 &&
		    chmod(path, (mode_t)c->milter.socket_mode) != 0) {
			log_error("chmod %s: %s", path, strerror(errno));
			return -1;
		}
		if (chown_socket(c, path) != 0)
			return -1;
	}
	return 0;
}

static int
write_pidfile(const char *path)
{
	FILE *f;

	if (path[0] == '\0')
		return 0;
	if ((f = fopen(path, "w")) == NULL) {
		log_error("pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(f, "%ld\n", (long)getpid());
	return fclose(f) == 0 ? 0 : -1;
}

/* daemon.metrics_file, when set; failures are logged rate-limited. */
static void
write_metrics(void)
{
	const struct config *c = D.snap->cfg;

	if (c->daemon.metrics_file[0] != '\0')
		(void)metrics_update(&D.metrics, c->daemon.metrics_file, c->rs,
		    (now_ns() - D.start) / NS_PER_SEC, now_ns() / NS_PER_SEC);
}

/*
 * The timer's period: stats_interval; with stats_interval = 0 (no
 * counter lines) and a metrics_file, METRICS_DEFAULT_INTERVAL, so the
 * file never goes stale; 0 when there is nothing to do.
 */
static int
timer_interval(const struct config *c)
{
	if (c->daemon.stats_interval > 0)
		return c->daemon.stats_interval;
	return c->daemon.metrics_file[0] != '\0' ?
	    METRICS_DEFAULT_INTERVAL : 0;
}

/* Each period and on SIGUSR1 (usr1: counter lines even when off). */
static void
report(int usr1)
{
	if (usr1 || D.snap->cfg->daemon.stats_interval > 0)
		stats_log(D.snap->cfg->rs, (now_ns() - D.start) / NS_PER_SEC);
	write_metrics();
}

/*
 * warden's signal work, in libmilter's signal thread (see sigwait):
 * SIGHUP reloads, SIGUSR1 and the timer write counters, SIGTERM and
 * SIGINT stop. Returns when warden stops; with start_kicks done.
 */
static void
signal_loop(void)
{
	char mpath[PATH_MAX];
	struct timespec ts;
	int64_t next, now;
	sigset_t set;
	int interval, r;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (;;) {
		interval = timer_interval(D.snap->cfg);
		if (interval > 0) {
			now = now_ns();
			next = D.start + ((now - D.start) / NS_PER_SEC /
			    interval + 1) * interval * NS_PER_SEC;
			ts.tv_sec = (next - now) / NS_PER_SEC;
			ts.tv_nsec = (next - now) % NS_PER_SEC;
			r = sigtimedwait(&set, NULL, &ts);
		} else
			r = sigwaitinfo(&set, NULL);
		if (r < 0) {
			if (errno == EAGAIN)
				report(0);
			continue;
		}
		switch (r) {
		case SIGHUP:
			str_copy(mpath, sizeof(mpath),
			    D.snap->cfg->daemon.metrics_file,
			    strlen(D.snap->cfg->daemon.metrics_file));
			reload(D.path);
			/*
			 * A file left where the collector reads it would be
			 * served frozen for ever: gone with the setting.
			 */
			if (mpath[0] != '\0' && strcmp(mpath,
			    D.snap->cfg->daemon.metrics_file) != 0)
				(void)unlink(mpath);
			/* Rules may have come or gone: show it now. */
			write_metrics();
			break;
		case SIGUSR1:
			report(1);
			break;
		default:	/* SIGTERM, SIGINT */
			return;
		}
	}
}

/*
 * How long a stop waits for libmilter's listener and for the commands in
 * flight (store timeouts bound a callback well below this); past it,
 * warden exits anyway.
 */
#define STOP_WAIT_NS	(10 * NS_PER_SEC)

/* Its SIGUSR2 only cuts the listener's poll short (start_kicks). */
static void
on_kick(int sig)
{
	static const char msg[] =
	    "warden: stop: libmilter's listener did not stop; exiting\n";
	int64_t until = atomic_load(&D.kick_until);

	(void)sig;
	/* Async-signal-safe: the listener is stuck, nothing else runs. */
	if (until != 0 && now_ns() > until) {
		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
			(void)0;
		_exit(3);
	}
}

/*
 * smfi_stop takes up to 5 s: libmilter's listener polls its socket 5 s
 * at a time (MI_CHK_TIME in listener.c) holding the mutex that closing
 * the socket needs. Instead sigwait hands libmilter SIGINT: MILTER_ABRT
 * stops the listener, and ends each session after the command it is
 * answering (the reply is written first). A timer aims SIGUSR2 at the
 * listener's thread every 20 ms from now on, so its poll ends and it
 * sees that at once, whenever libmilter sets it. Returns the timer, to
 * be deleted once smfi_main has returned.
 */
static int
start_kicks(timer_t *tm)
{
	struct itimerspec it = { { 0, 20000000 }, { 0, 20000000 } };
	struct sigevent ev;

	atomic_store(&D.kick_until, now_ns() + STOP_WAIT_NS);
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev.sigev_signo = SIGUSR2;
	ev._sigev_un._tid = D.main_tid;	/* glibc names no macro for it */
	if (timer_create(CLOCK_MONOTONIC, &ev, tm) != 0)
		goto fail;
	if (timer_settime(*tm, 0, &it, NULL) != 0) {
		timer_delete(*tm);
		goto fail;
	}
	return 0;
fail:
	log_warning("stop: no timer to wake libmilter's listener (%s); it "
	    "sees the stop within 5 s", strerror(errno));
	return -1;
}

static timer_t kick_timer;
static int kick_armed;

/*
 * libmilter's signal thread sigwait()s SIGHUP, SIGTERM and SIGINT and
 * takes each one as "stop". This definition takes the place of libc's
 * for libmilter (its only caller here) and makes that thread warden's
 * signal thread: it waits for every signal warden handles, which every
 * thread blocks (milter_run), and returns to libmilter only to stop
 * it, as SIGINT (start_kicks). So SIGHUP can never stop warden, and
 * warden runs no thread of its own: as many as libmilter's (issue #4).
 */
int
sigwait(const sigset_t *restrict set, int *restrict sig)
{
	(void)set;
	D.sigthr = pthread_self();
	atomic_store(&D.have_sigthr, 1);
	signal_loop();
	atomic_store(&D.stopping, 1);
	kick_armed = start_kicks(&kick_timer) == 0;
	atomic_store(&D.loop_done, 1);
	*sig = SIGINT;
	return 0;
}

/*
 * Once smfi_main has returned: the signal loop is over, so nothing else
 * uses D. When smfi_main returned by itself, the loop is told to end.
 * Returns 0, or -1 at the deadline.
 */
static int
end_signal_loop(int64_t deadline)
{
	/* No signal thread this soon after smfi_main: it started none. */
	int64_t none = now_ns() + NS_PER_SEC / 5;
	int told = 0;

	while (!atomic_load(&D.loop_done)) {
		if (!told && atomic_load(&D.have_sigthr))
			told = pthread_kill(D.sigthr, SIGTERM) == 0;
		if (!told && now_ns() > none)
			return 0;
		if (now_ns() > deadline) {
			log_error("stop: the signal thread did not end");
			return -1;
		}
		(void)poll(NULL, 0, 5);
	}
	return 0;
}

/*
 * After the listener: no new command is answered (gate_enter), the
 * commands in flight are, and their connections close; connections idle
 * between commands stay open until the process exits. Returns 0, or -1
 * when a callback still ran at the deadline: then nothing it may use
 * must be freed.
 */
static int
stop_sessions(int64_t deadline)
{
	const uint64_t busy = GATE_DRAIN - 1;

	atomic_fetch_or(&D.gate, GATE_STOP);
	while ((atomic_load(&D.gate) & GATE_COUNTS) != 0) {
		if (now_ns() > deadline)
			goto late;
		(void)poll(NULL, 0, 5);
	}
	atomic_fetch_or(&D.gate, GATE_SHUT);
	while ((atomic_load(&D.gate) & busy) != 0) {
		if (now_ns() > deadline)
			goto late;
		(void)poll(NULL, 0, 5);
	}
	/*
	 * XXX A callback that returned just before GATE_STOP was not
	 * counted and libmilter may not have written its reply yet: a
	 * moment for that write, which libmilter gives no hook to wait for.
	 */
	(void)poll(NULL, 0, 50);
	return 0;
late:
	log_warning("stop: %llu commands still in flight after %d s; "
	    "exiting without them", (unsigned long long)(atomic_load(
	    &D.gate) & busy), (int)(STOP_WAIT_NS / NS_PER_SEC));
	return -1;
}

/*
 * The configured store, wrapped to count calls, errors and latency, and
 * in *fallback_out the store on_error = "memory" charges: the memory
 * backend is its own; with Redis a local memory store of
 * store.memory.max_keys, whose charges count as store_fallbacks.
 * Returns NULL (logged) when the store cannot be made. An unreachable
 * Redis is not that: warden starts, logs "store: redis down", and each
 * rule's on_error applies until Redis answers.
 */
static struct store *
open_store(const struct config *c, struct store **fallback_out)
{
	const uint64_t max = (uint64_t)c->store.max_keys;
	struct store_redis_opts o;
	struct timed *t, *fb = NULL;
	char err[256];

	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto fail;
	t->base.ops = &timed_ops;
	if (strcmp(c->store.backend, "memory") == 0) {
		if ((t->inner = store_memory_new(max)) == NULL)
			goto fail;
		*fallback_out = &t->base;
		return &t->base;
	}
	if (strcmp(c->store.backend, "redis") != 0) {
		log_error("store.backend %s is not available in this build",
		    c->store.backend);
		goto fail;
	}
	/* hiredis writes to sockets that a stopped Redis has closed. */
	signal(SIGPIPE, SIG_IGN);
	config_redis_opts(c, &o);
	if ((t->inner = store_redis_new(&o, err, sizeof(err))) == NULL) {
		log_error("store: %s", err);
		goto fail;
	}
	if ((fb = calloc(1, sizeof(*fb))) == NULL ||
	    (fb->inner = store_memory_new(max)) == NULL)
		goto fail;
	fb->base.ops = &timed_ops;
	fb->fallback = 1;
	*fallback_out = &fb->base;
	return &t->base;
fail:
	if (fb != NULL)
		timed_free(&fb->base);
	if (t != NULL)
		timed_free(&t->base);
	return NULL;
}

int
milter_run(const char *path)
{
	struct config *c;
	struct diag d;
	struct sigaction sa;
	sigset_t set;
	int rc = 0, mrc, gone, clean = 1;

	diag_init(&d);
	if ((c = config_load(path, &d)) == NULL) {
		diag_print(&d, stderr);
		diag_fini(&d);
		return 1;
	}
	diag_print(&d, stderr);
	diag_fini(&d);
	apply_log(c);
	if ((D.snap = snap_new(c)) == NULL) {
		config_free(c);
		return 3;
	}
	if ((D.store = open_store(c, &D.ctx.fallback)) == NULL) {
		rc = 3;
		goto out;
	}
	D.ctx.store = D.store;
	publish_rules(c);
	D.ctx.hooks.decision = on_decision;
	D.start = now_ns();
	D.path = path;
	if (open_socket(c) != 0 || write_pidfile(c->daemon.pidfile) != 0 ||
	    drop_privileges(c) != 0) {
		rc = 3;
		goto out;
	}
	/*
	 * Every thread libmilter starts inherits this mask: the signals
	 * warden handles reach only the thread that waits for them, its
	 * signal thread (see sigwait).
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_kick;	/* no SA_RESTART: poll returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	D.main_tid = gettid();
	log_info("start: warden listening on %s, files=%zu rules=%zu store=%s",
	    c->milter.socket, c->rs->nfiles, c->rs->nrules, c->store.backend);
	write_metrics();	/* the file exists from the start */
	mrc = smfi_main();
	gone = !atomic_load(&D.stopping);
	clean = end_signal_loop(now_ns() + STOP_WAIT_NS) == 0;
	if (kick_armed)
		timer_delete(kick_timer);
	atomic_store(&D.kick_until, 0);
	if (clean)
		clean = stop_sessions(now_ns() + STOP_WAIT_NS) == 0;
	write_metrics();	/* the final counts */
	/*
	 * When warden stopped smfi_main, a failure is the abort racing the
	 * listener's accept on the socket it closes (seen once in ~100
	 * stops): logged, not an exit status that would mark a clean stop
	 * as failed. When it returned by itself, the milter is gone: that
	 * is a failure.
	 */
	if (clean && mrc != MI_SUCCESS)
		log_notice("stop: libmilter's listener reported an error "
		    "while %s", gone ? "running" : "stopping");
	if (!clean || (gone && mrc != MI_SUCCESS))
		rc = 3;
	log_info("stop: warden exiting");
out:
	if (D.snap->cfg->daemon.pidfile[0] != '\0')
		(void)unlink(D.snap->cfg->daemon.pidfile);
	/* Callbacks still running may use these: the exit frees them. */
	if (!clean)
		return rc;
	while (D.nspare > 0)
		free(D.spare[--D.nspare]);
	if (D.ctx.fallback != D.store)
		store_free(D.ctx.fallback);
	store_free(D.store);
	snap_unref(D.snap);
	return rc;
}

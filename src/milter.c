/*
 * milter.c - `warden run`: the libmilter callbacks (DESIGN.md §4).
 * Owns: translating libmilter callbacks into session facts and engine
 * stages, verdicts into smfi_setreply/SMFIS_*, negotiation, a
 * connection's state between callbacks, the gate a stop closes.
 * Not: policy (engine.c), formats (declog.c, stats.c, metrics.c), the
 * process: socket, privileges, signals, reload (daemon.c); snapshots
 * (snap.c).
 * Threads: libmilter's worker pool (one connection's callbacks are
 * serialised). A connection takes the running snapshot at negotiation
 * or connect and keeps it until close. The gate and the spare
 * connections and scratch blocks are the mutable file-scope state here:
 * libmilter gives its callbacks no user pointer but the connection's.
 * Errors: nothing the MTA sends can abort us; out of memory at connect
 * tempfails that connection, out of memory for a callback's scratch
 * (see struct scratch) every later command of the connection.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "daemon_int.h"
#include "engine.h"
#include "log.h"
#include "stats.h"

/* Per connection (smfi_setpriv). */
struct conn {
	struct snap	*snap;
	struct sess	*s;		/* during a callback: see conn_open */
	unsigned long	noreply;	/* SMFIP_NR_* the MTA agreed to */
	struct sess_keep keep;		/* between callbacks */
	int		gk;		/* enum gate_kind of this callback */
	int		draining;	/* answered while stopping */
	int		lost;		/* a callback had no scratch: its
					 * facts are gone, the rest tempfails */
	struct scratch	*x;		/* during a callback: see conn_open */
};

/*
 * A callback's large buffers: the session rebuilt from what the
 * connection keeps, the engine's result and the reply escaped for
 * libmilter (~70 kB; a few pages of it touched by a callback that
 * continues). Taken for one callback from a small pool, not kept by the
 * connection (an idle one then costs ~2 kB) nor put on the stack: there
 * they sat 13-70 kB below the worker's frame, and libmilter's pool ends
 * and starts workers all the time (one new thread per ~8 sessions at
 * 50 connections); glibc gives back a dead thread's stack pages deeper
 * than 16 kB (madvise), so each new worker faulted them in again and
 * each exit flushed the other CPU's TLB: 4-6 page faults a session
 * against the null milter's ~1, ~10% of warden's CPU at 50 miltergen
 * connections (doc/performance.md). Nor one per thread: those
 * come and go with the threads, and a burst of them left memory behind.
 */
struct scratch {
	struct sess	sess;
	struct engine_result res;
	char		esc[REPLY_LINES_MAX][REPLY_TEXT_MAX * 2 + 1];
};

/* The text of warden's own 451 4.3.0 when a connection's facts are lost. */
#define LOST_TEXT	"Temporary local problem, try again later"

/* Freed connections kept for reuse: see conn_alloc. */
#define CONN_SPARE_MAX	64
/*
 * Scratch blocks kept for the next callbacks: as many as callbacks ran
 * at once, up to this; past it (a Redis stall holding many callbacks)
 * they are freed again.
 */
#define SCRATCH_SPARE_MAX 16
_Static_assert(SCRATCH_SPARE_MAX <= CONN_SPARE_MAX, "struct spares holds both");

/* Freed blocks of one size kept for reuse, under M.spare_lock. */
struct spares {
	size_t		n;
	size_t		max;		/* <= CONN_SPARE_MAX */
	void		*p[CONN_SPARE_MAX];
};

/* The callbacks' shared state; see the file comment for why it is here. */
static struct {
	const struct engine_ctx *ctx;	/* set before libmilter runs */
	_Atomic uint64_t gate;		/* see gate_enter */
	pthread_mutex_t	spare_lock;
	struct spares	conns;		/* see conn_alloc */
	struct spares	scratch;	/* see struct scratch */
	struct log_quiet nomem;		/* see nomem */
} M = {
	.spare_lock = PTHREAD_MUTEX_INITIALIZER,
	.conns = { .max = CONN_SPARE_MAX },
	.scratch = { .max = SCRATCH_SPARE_MAX },
};

/* --- helpers --------------------------------------------------------- */

/*
 * A shortage of memory hits every command while it lasts: each is
 * counted (nomem= in the stats line), one line a minute is written,
 * with the count of those it stands for.
 */
static void
nomem(const char *what)
{
	uint64_t held;

	stats_add(ST_NOMEM, 1);
	if (log_quiet(&M.nomem, now_ns(), 60 * NS_PER_SEC, &held))
		return;
	if (held == 0)
		log_error("out of memory: %s", what);
	else
		log_error("out of memory: %s (%llu more since the last "
		    "out-of-memory line)", what, (unsigned long long)held);
}

static const char *
macro(SMFICTX *ctx, const char *name)
{
	const char *v = smfi_getsymval(ctx, (char *)name);

	return v != NULL ? v : "";
}

/*
 * Hands the reply to libmilter: '%' doubled (Sendmail formats the text),
 * multi-line through smfi_setmlreply. When libmilter refuses the text
 * (over its 980-byte line limit once escaped) the codes alone still go.
 */
static void
set_reply(SMFICTX *ctx, struct scratch *x, const struct reply_out *r)
{
	char (*esc)[REPLY_TEXT_MAX * 2 + 1] = x->esc;
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
	 * The result (24 kB: reply and key buffers) is the callback's
	 * scratch block, not the connection's: an idle session then costs
	 * only its kept session head (issue #4: 2 kB per open session).
	 */
	struct engine_result *res = &c->x->res;

	/*
	 * Out of memory lost this transaction's sender and tags (or, with
	 * c->lost, facts of any stage): judged without them, rules would
	 * stop matching. conn_done or conn_lost logged.
	 */
	if (c->lost || sess_lost(c->s, stage)) {
		/*
		 * Where the MTA agreed to no reply, none can go: the mark
		 * stays for the next stage that has one (eom always does).
		 */
		if (c->noreply & stage_noreply(stage))
			return SMFIS_NOREPLY;
		reply_out_set(&res->reply, 451, 4, 3, 0, LOST_TEXT);
		set_reply(ctx, c->x, &res->reply);
		return SMFIS_TEMPFAIL;
	}
	engine_eval(M.ctx, c->snap->cfg->rs, c->s, stage, now_ns(), res);
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
		set_reply(ctx, c->x, &res->reply);
		return SMFIS_REJECT;
	case ACTION_TEMPFAIL:
		set_reply(ctx, c->x, &res->reply);
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
 * M.gate lets a stop wait for the callbacks in flight with no lock on
 * the hot path (one atomic add and one compare-and-swap a callback).
 * Low bits: callbacks running; next: connections answered after the
 * stop began and not closed yet; two flags set by stop_sessions
 * (daemon.c, through milter_gate_close).
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
	uint64_t w = atomic_fetch_add(&M.gate, GATE_BUSY);

	if ((w & GATE_SHUT) || (k == GATE_CMD && (w & GATE_STOP))) {
		atomic_fetch_sub(&M.gate, GATE_BUSY);
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
	uint64_t w = atomic_load(&M.gate), nw;
	int drain;

	do {
		drain = k == GATE_CMD && c != NULL && !c->draining &&
		    (w & GATE_STOP) != 0;
		nw = w - GATE_BUSY + (drain ? GATE_DRAIN : 0);
	} while (!atomic_compare_exchange_weak(&M.gate, &w, nw));
	if (drain)
		c->draining = 1;
}

/*
 * A kept block, or a new one of size (NULL when out of memory). The
 * lock is held for one pointer.
 */
static void *
spares_take(struct spares *sp, size_t size)
{
	void *p = NULL;

	pthread_mutex_lock(&M.spare_lock);
	if (sp->n > 0)
		p = sp->p[--sp->n];
	pthread_mutex_unlock(&M.spare_lock);
	return p != NULL ? p : malloc(size);
}

/* Keeps p for reuse, or frees it when sp is full. */
static void
spares_give(struct spares *sp, void *p)
{
	pthread_mutex_lock(&M.spare_lock);
	if (sp->n < sp->max) {
		sp->p[sp->n++] = p;
		p = NULL;
	}
	pthread_mutex_unlock(&M.spare_lock);
	free(p);
}

static void
spares_fini(struct spares *sp)
{
	while (sp->n > 0)
		free(sp->p[--sp->n]);
}

/*
 * A struct conn (~1.4 kB) is a large-bin request for glibc's malloc,
 * which then consolidates its fastbins (full of libmilter's per-command
 * buffers) on each one: ~2% of warden's CPU at 50 connections (perf).
 * Freed ones are kept for the next connections instead.
 */
static struct conn *
conn_alloc(void)
{
	return spares_take(&M.conns, sizeof(struct conn));
}

static void
conn_release(struct conn *c)
{
	spares_give(&M.conns, c);
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
		nomem("tempfailing a connection");
		return NULL;
	}
	c->snap = snap_get();
	c->noreply = 0;
	c->s = NULL;
	c->gk = GATE_CMD;
	c->draining = 0;
	c->lost = 0;
	c->x = NULL;
	sess_keep_init(&c->keep);
	smfi_setpriv(ctx, c);
	return c;
}

/* A scratch block for one callback; NULL when out of memory. */
static struct scratch *
scratch_take(void)
{
	return spares_take(&M.scratch, sizeof(struct scratch));
}

/*
 * The session for this callback (the gate entered), rebuilt in a
 * scratch block from what the connection keeps; conn_done packs back
 * what must outlive the callback, so a held connection costs ~1.5 kB,
 * not ~13 kB. Returns -1 when there is no scratch: the callback then
 * ends with conn_lost.
 */
static int
conn_attach(struct conn *c, enum gate_kind k)
{
	c->gk = k;
	if ((c->x = scratch_take()) == NULL)
		return -1;
	c->s = sess_keep_open(&c->keep, &c->x->sess);
	return 0;
}

/* conn_attach once the gate is entered; -1 the same. */
static int
conn_open(struct conn *c, enum gate_kind k)
{
	gate_enter(k);
	return conn_attach(c, k);
}

/*
 * Out of memory before the session could be opened: this command's
 * facts are lost, so the connection answers 451 4.3.0 to every later
 * command that has a reply (rules judging without them could let mail
 * through that they refuse), and to this one unless the MTA agreed to
 * no reply for it (nr: the command's SMFIP_NR_* bit, 0 for none).
 */
static sfsistat
conn_lost(SMFICTX *ctx, struct conn *c, unsigned long nr)
{
	nomem("a command's facts lost, the connection's commands get "
	    "451 4.3.0");
	c->lost = 1;
	gate_leave(c, c->gk);
	if (nr != 0 && (c->noreply & nr))
		return SMFIS_NOREPLY;
	(void)smfi_setreply(ctx, "451", "4.3.0", LOST_TEXT);
	return SMFIS_TEMPFAIL;
}

static sfsistat
conn_done(struct conn *c, sfsistat rc)
{
	if (sess_keep_close(&c->keep, c->s) != 0) {
		nomem("transaction lost, its commands get 451 4.3.0 until "
		    "the next MAIL");
		/* A stage without a reply cannot get one now. */
		if (rc != SMFIS_NOREPLY)
			rc = SMFIS_TEMPFAIL;
	}
	c->s = NULL;
	if (c->x != NULL)
		spares_give(&M.scratch, c->x);
	c->x = NULL;
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
		c->lost = 0;
	} else if ((c = conn_new(ctx)) == NULL) {
		gate_leave(NULL, GATE_CMD);
		return SMFIS_TEMPFAIL;
	}
	stats_add(ST_CONNECTIONS, 1);
	if (conn_attach(c, GATE_CMD) != 0)
		return conn_lost(ctx, c, SMFIP_NR_CONN);
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
	const char *tls, *bits;
	long long nbits = 0;

	if (c == NULL)
		return SMFIS_CONTINUE;
	if (conn_open(c, GATE_CMD) != 0)
		return conn_lost(ctx, c, SMFIP_NR_HELO);
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
	const char *user, *mech, *qid;
	long long size;
	int i;

	if (c == NULL)
		return SMFIS_CONTINUE;
	if (conn_open(c, GATE_CMD) != 0)
		return conn_lost(ctx, c, SMFIP_NR_MAIL);
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
	const char *qid;
	int rej;

	if (c == NULL)
		return SMFIS_CONTINUE;
	if (conn_open(c, GATE_CMD) != 0)
		return conn_lost(ctx, c, SMFIP_NR_RCPT);
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
	const char *qid;

	if (c == NULL)
		return SMFIS_CONTINUE;
	if (conn_open(c, GATE_CMD) != 0)
		return conn_lost(ctx, c, 0);
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

	if (c == NULL)
		return SMFIS_CONTINUE;
	if (conn_open(c, GATE_CMD) != 0)
		return conn_lost(ctx, c, SMFIP_NR_HDR);
	sess_set_header(c->s, name, strlen(name), value, strlen(value));
	return conn_done(c, eval(ctx, c, STAGE_HEADER));
}

static sfsistat
x_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct conn *c = conn_of(ctx);

	(void)chunk;
	if (c == NULL)
		return SMFIS_CONTINUE;
	if (conn_open(c, GATE_CMD) != 0)
		return conn_lost(ctx, c, SMFIP_NR_BODY);
	c->s->size += (long long)len;
	return conn_done(c, (c->noreply & SMFIP_NR_BODY) ? SMFIS_NOREPLY :
	    SMFIS_CONTINUE);
}

static sfsistat
x_eom(SMFICTX *ctx)
{
	struct conn *c = conn_of(ctx);
	const char *qid;
	char q[SESS_QID_MAX * 4 + 8];
	sfsistat rc;
	size_t i;

	if (c == NULL)
		return SMFIS_CONTINUE;
	if (conn_open(c, GATE_CMD) != 0)
		return conn_lost(ctx, c, 0);
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
	/*
	 * Also how libmilter ends a transaction when warden stops. No
	 * engine call: the session alone (13 kB, on the stack) will do,
	 * and an abort needs no memory that could be missing.
	 */
	gate_enter(GATE_END);
	c->gk = GATE_END;
	c->s = sess_keep_open(&c->keep, &tmp);
	sess_reset_msg(c->s);
	return conn_done(c, SMFIS_CONTINUE);
}

static sfsistat
x_unknown(SMFICTX *ctx, const char *cmd)
{
	struct conn *c = conn_of(ctx);

	if (c == NULL)
		return SMFIS_CONTINUE;
	if (conn_open(c, GATE_CMD) != 0)
		return conn_lost(ctx, c, SMFIP_NR_UNKN);
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
			atomic_fetch_sub(&M.gate, GATE_DRAIN);
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

/* --- for daemon.c ---------------------------------------------------- */

int
milter_register(const struct engine_ctx *ctx)
{
	M.ctx = ctx;
	return smfi_register(desc);
}

void
milter_gate_close(int shut)
{
	atomic_fetch_or(&M.gate, shut ? GATE_SHUT : GATE_STOP);
}

uint64_t
milter_gate_count(int conns)
{
	return atomic_load(&M.gate) & (conns ? GATE_COUNTS : GATE_DRAIN - 1);
}

void
milter_spares_free(void)
{
	spares_fini(&M.conns);
	spares_fini(&M.scratch);
}

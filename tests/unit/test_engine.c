/*
 * test_engine.c - unit tests for engine.c: rule order and the first
 * terminal verdict, every condition of DESIGN.md §3 true and false, pattern
 * kinds, limits (keys, GCRA through the memory store, refunds, shared
 * counters, peeks), dry-run, on_error with the failing store, 421, hostile
 * template values, the explain trace and engine_limit_key.
 * Rules come from rules_load_buf; the store is store_memory_new or
 * store_fail_new; the clock is a parameter (T0 + offsets, in ns).
 * Expected values: worked out by hand from DESIGN.md (GCRA: T = PERIOD/N,
 * an event of cost c passes when max(tat, now) + c*T - B*T <= now), never
 * taken from the code under test.
 * Errors: cmocka failures naming the row, "got X, want Y".
 */
#include "testutil.h"

#include "engine.h"
#include "rules.h"
#include "session.h"
#include "store.h"

#define S	NS_PER_SEC
#define MS	1000000LL
#define T0	(1700000000LL * S)
#define MIN	(60 * S)

#define WANT_INT(row, what, got, want) do {				\
	long long g_ = (long long)(got), w_ = (long long)(want);	\
	if (g_ != w_)							\
		fail_msg("%s: %s: got %lld, want %lld", (row), (what),	\
		    g_, w_);						\
} while (0)

#define WANT_STR(row, what, got, want) do {				\
	const char *g_ = (got), *w_ = (want);				\
	if (strcmp(g_, w_) != 0)					\
		fail_msg("%s: %s: got \"%s\", want \"%s\"", (row),	\
		    (what), g_, w_);					\
} while (0)

#define WANT_ACT(row, got, want) do {					\
	enum action ga_ = (got), wa_ = (want);				\
	if (ga_ != wa_)							\
		fail_msg("%s: action: got %s, want %s", (row),		\
		    action_name(ga_), action_name(wa_));		\
} while (0)

#define WANT_SUB(row, what, hay, needle) do {				\
	const char *h_ = (hay), *n_ = (needle);				\
	if (strstr(h_, n_) == NULL)					\
		fail_msg("%s: %s: got \"%s\", want it to contain \"%s\"", \
		    (row), (what), h_, n_);				\
} while (0)

/* ---- fixture: ruleset, stores, session, recorded hooks ---- */

struct dec {
	char		rule[RULES_NAME_MAX + 1];
	enum stage	stage;
	enum action	action;
	int		dryrun, store_error;
	char		reply[1024];
};

struct tr {
	char		rule[RULES_NAME_MAX + 1];
	int		matched;
	char		why[ENGINE_WHY_MAX];
};

#define REC_MAX	64

struct fx {
	struct ruleset	*rs;
	struct store	*store, *fallback;
	struct engine_ctx ctx;
	struct rules_opts opts;
	struct sess	s;
	struct engine_result out;
	struct dec	dec[REC_MAX];
	size_t		ndec;
	struct tr	tr[REC_MAX];
	size_t		ntr;
	char		dir[256];
	char		rep[REPLY_OUT_MAX + 2048];
};

static void
on_decision(void *arg, const struct engine_decision *d)
{
	struct fx *f = arg;
	struct dec *r;

	if (f->ndec == REC_MAX)
		fail_msg("more than %d decisions", REC_MAX);
	r = &f->dec[f->ndec++];
	snprintf(r->rule, sizeof(r->rule), "%s", d->rule ? d->rule->name :
	    "(none)");
	r->stage = d->stage;
	r->action = d->action;
	r->dryrun = d->dryrun;
	r->store_error = d->store_error;
	r->reply[0] = '\0';
	if (d->reply != NULL)
		reply_out_format_log(d->reply, r->reply, sizeof(r->reply));
}

static void
on_trace(void *arg, const struct rule *rule, int matched, const char *why)
{
	struct fx *f = arg;
	struct tr *t;

	if (f->ntr == REC_MAX)
		fail_msg("more than %d trace calls", REC_MAX);
	t = &f->tr[f->ntr++];
	snprintf(t->rule, sizeof(t->rule), "%s", rule->name);
	t->matched = matched;
	snprintf(t->why, sizeof(t->why), "%s", why != NULL ? why : "");
}

/* Files every fixture has next to its rules (file: lists, owner maps). */
static const char bad_helo_list[] =
	"# known bad HELO names\n"
	"localhost\n"
	"*.dynamic.example\n"
	"/^[0-9.]+$/\n";

static const char senders_map[] =
	"# LOGIN PATTERN...\n"
	"alice alice@example.com @example.org @*.example.net\n"
	"bob   /^bob[+][a-z]+@example[.]com$/\n";

/* Fixtures still alive when a check fails; the teardown frees them. */
static struct fx *live[8];

static struct fx *
fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));
	size_t i;

	assert_non_null(f);
	for (i = 0; i < NELEM(live) && live[i] != NULL; i++)
		;
	assert_true(i < NELEM(live));
	live[i] = f;
	tu_mkdtemp(f->dir, sizeof(f->dir));
	tu_write(f->dir, "bad-helo.txt", bad_helo_list, (size_t)-1);
	tu_write(f->dir, "senders.map", senders_map, (size_t)-1);
	f->store = store_memory_new(10000);
	assert_non_null(f->store);
	f->ctx.store = f->store;
	f->ctx.hooks.arg = f;
	f->ctx.hooks.decision = on_decision;
	f->opts.default_mode = MODE_ENFORCE;
	f->opts.default_on_error = ONERR_ACCEPT;
	sess_init(&f->s);
	return f;
}

static void
fx_load(struct fx *f, const char *text)
{
	struct diag d;
	char buf[1024];
	size_t i;

	diag_init(&d);
	f->rs = rules_load_buf("t.rules", f->dir, text, strlen(text),
	    &f->opts, &d);
	if (f->rs == NULL || d.errors > 0) {
		for (i = 0; i < d.n; i++)
			print_message("#   diag: %s\n", diag_format(&d, i, buf,
			    sizeof(buf)));
		diag_fini(&d);
		fail_msg("rules did not load:\n%s", text);
	}
	diag_fini(&d);
}

static struct fx *
fx_with(const char *text)
{
	struct fx *f = fx_new();

	fx_load(f, text);
	return f;
}

static void
fx_free(struct fx *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < NELEM(live); i++)
		if (live[i] == f)
			live[i] = NULL;
	rules_unref(f->rs);
	if (f->ctx.store != f->store)
		store_free(f->ctx.store);
	store_free(f->store);
	store_free(f->fallback);
	tu_rmtree(f->dir);
	free(f);
}

static int
teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(live); i++)
		fx_free(live[i]);
	return 0;
}

static enum action
ev(struct fx *f, enum stage st, int64_t now)
{
	engine_eval(&f->ctx, f->rs, &f->s, st, now, &f->out);
	return f->out.action;
}

/* The reply as a log line: "450 4.7.1 text". */
static const char *
rep(struct fx *f)
{
	reply_out_format_log(&f->out.reply, f->rep, sizeof(f->rep));
	return f->rep;
}

static const char *
rule_of(const struct fx *f)
{
	return f->out.rule != NULL ? f->out.rule->name : "(none)";
}

static const struct rule *
rule_named(const struct fx *f, const char *name)
{
	const struct rule *r = rules_find(f->rs, name);

	if (r == NULL)
		fail_msg("no rule %s", name);
	return r;
}

/* Session values for table rows; unset fields stay unset. */
struct sx {
	const char	*ip, *name, *daemon, *helo, *sender, *rcpt, *user,
			*mech, *tls, *cmd, *hname, *hval;
	int		port, bits, rej;
	long long	size;
};

static void
sx_apply(struct sess *s, const struct sx *x)
{
	sess_init(s);
	if (x->ip != NULL)
		sess_set_client(s, x->ip, strlen(x->ip), 41233);
	if (x->name != NULL)
		sess_set_client_name(s, x->name, strlen(x->name));
	if (x->daemon != NULL)
		sess_set_daemon(s, x->daemon, strlen(x->daemon));
	s->port = x->port;
	if (x->helo != NULL)
		sess_set_helo(s, x->helo, strlen(x->helo));
	if (x->tls != NULL)
		sess_set_tls(s, x->tls, strlen(x->tls), x->bits);
	if (x->user != NULL)
		sess_set_auth(s, x->user, strlen(x->user), x->mech,
		    x->mech != NULL ? strlen(x->mech) : 0);
	if (x->sender != NULL)
		sess_set_sender(s, x->sender, strlen(x->sender));
	if (x->rcpt != NULL)
		sess_set_rcpt(s, x->rcpt, strlen(x->rcpt), x->rej);
	if (x->cmd != NULL)
		sess_set_command(s, x->cmd, strlen(x->cmd));
	if (x->hname != NULL)
		sess_set_header(s, x->hname, strlen(x->hname), x->hval,
		    x->hval != NULL ? strlen(x->hval) : 0);
	s->size = x->size;
}

static void
set_sender(struct sess *s, const char *v)
{
	sess_set_sender(s, v, strlen(v));
}

static void
set_rcpt(struct sess *s, const char *v, int rejected)
{
	sess_set_rcpt(s, v, strlen(v), rejected);
}

static void
set_client(struct sess *s, const char *ip)
{
	sess_set_client(s, ip, strlen(ip), 41233);
}

/* ==== conditions: each true and false at least once ==== */

struct cond_case {
	const char	*row;
	enum stage	stage;
	const char	*match;		/* NULL: the rule has no match */
	struct sx	x;
	int		want;		/* 1: the rule fires (reject) */
};

static const struct cond_case cond_cases[] = {
	/* client: v4 and v6 CIDR, IPv4-mapped IPv6, unknown client */
	{ "client v4 in", STAGE_CONNECT,
	    "client = [\"192.0.2.0/24\", \"2001:db8::/32\"];",
	    { .ip = "192.0.2.200" }, 1 },
	{ "client v4 out", STAGE_CONNECT,
	    "client = [\"192.0.2.0/24\", \"2001:db8::/32\"];",
	    { .ip = "192.0.3.1" }, 0 },
	{ "client v6 in", STAGE_CONNECT,
	    "client = [\"192.0.2.0/24\", \"2001:db8::/32\"];",
	    { .ip = "2001:db8:ffff::1" }, 1 },
	{ "client v6 out", STAGE_CONNECT,
	    "client = [\"192.0.2.0/24\", \"2001:db8::/32\"];",
	    { .ip = "2001:db9::1" }, 0 },
	{ "client v4-mapped in", STAGE_CONNECT,
	    "client = [\"192.0.2.0/24\", \"2001:db8::/32\"];",
	    { .ip = "::ffff:192.0.2.5" }, 1 },
	{ "client v4-mapped out", STAGE_CONNECT,
	    "client = [\"192.0.2.0/24\", \"2001:db8::/32\"];",
	    { .ip = "::ffff:198.51.100.5" }, 0 },
	{ "client unknown", STAGE_CONNECT, "client = \"0.0.0.0/0\";",
	    { .ip = NULL }, 0 },
	{ "client single host", STAGE_HELO, "client = \"198.51.100.7\";",
	    { .ip = "198.51.100.7" }, 1 },
	/* client_name, port, daemon */
	{ "client_name glob in", STAGE_CONNECT,
	    "client_name = \"*.example.com\";",
	    { .ip = "192.0.2.1", .name = "mx.EXAMPLE.com" }, 1 },
	{ "client_name glob out", STAGE_CONNECT,
	    "client_name = \"*.example.com\";",
	    { .ip = "192.0.2.1", .name = "example.com" }, 0 },
	{ "port in list", STAGE_CONNECT, "port = [587, 465];",
	    { .port = 465 }, 1 },
	{ "port not in list", STAGE_CONNECT, "port = [587, 465];",
	    { .port = 25 }, 0 },
	{ "port single", STAGE_ENVFROM, "port = 587;",
	    { .port = 587, .sender = "a@b" }, 1 },
	{ "daemon in", STAGE_CONNECT, "daemon = \"submission\";",
	    { .daemon = "Submission" }, 1 },
	{ "daemon out", STAGE_CONNECT, "daemon = \"submission\";",
	    { .daemon = "smtpd" }, 0 },
	/* helo, exact case-insensitive */
	{ "helo exact in", STAGE_HELO, "helo = \"mail.example.com\";",
	    { .helo = "MAIL.Example.COM" }, 1 },
	{ "helo exact out", STAGE_HELO, "helo = \"mail.example.com\";",
	    { .helo = "mail.example.co" }, 0 },
	/* pattern kinds through a file: list */
	{ "file: exact", STAGE_HELO, "helo = \"file:bad-helo.txt\";",
	    { .helo = "LOCALHOST" }, 1 },
	{ "file: glob", STAGE_HELO, "helo = \"file:bad-helo.txt\";",
	    { .helo = "a.b.Dynamic.Example" }, 1 },
	{ "file: regex", STAGE_HELO, "helo = \"file:bad-helo.txt\";",
	    { .helo = "192.0.2.1" }, 1 },
	{ "file: none", STAGE_HELO, "helo = \"file:bad-helo.txt\";",
	    { .helo = "mail.example.com" }, 0 },
	{ "regex anchored", STAGE_HELO, "helo = \"/^[a-z]+[.]local$/\";",
	    { .helo = "HOST.LOCAL" }, 1 },
	{ "regex no match", STAGE_HELO, "helo = \"/^[a-z]+[.]local$/\";",
	    { .helo = "host.local.example" }, 0 },
	{ "glob ?", STAGE_HELO, "helo = \"mx?.example\";",
	    { .helo = "mx1.example" }, 1 },
	{ "glob ? needs one", STAGE_HELO, "helo = \"mx?.example\";",
	    { .helo = "mx.example" }, 0 },
	/* sender, the null sender, sender_domain */
	{ "sender in", STAGE_ENVFROM, "sender = \"alice@example.com\";",
	    { .sender = "<Alice@Example.com>" }, 1 },
	{ "sender out", STAGE_ENVFROM, "sender = \"alice@example.com\";",
	    { .sender = "<bob@example.com>" }, 0 },
	{ "sender <> is null", STAGE_ENVFROM, "sender = \"<>\";",
	    { .sender = "<>" }, 1 },
	{ "sender <> not a@b", STAGE_ENVFROM, "sender = \"<>\";",
	    { .sender = "<a@b.example>" }, 0 },
	{ "null sender vs address", STAGE_ENVFROM,
	    "sender = \"alice@example.com\";", { .sender = "<>" }, 0 },
	{ "sender_domain in", STAGE_ENVFROM, "sender_domain = \"example.org\";",
	    { .sender = "<a@EXAMPLE.org>" }, 1 },
	{ "sender_domain sub out", STAGE_ENVFROM,
	    "sender_domain = \"example.org\";",
	    { .sender = "<a@sub.example.org>" }, 0 },
	{ "sender_domain null", STAGE_ENVFROM,
	    "sender_domain = \"example.org\";", { .sender = "<>" }, 0 },
	/* rcpt, rcpt_domain, rcpt_rejected */
	{ "rcpt glob in", STAGE_ENVRCPT, "rcpt = \"postmaster@*\";",
	    { .rcpt = "<PostMaster@x.org>" }, 1 },
	{ "rcpt glob out", STAGE_ENVRCPT, "rcpt = \"postmaster@*\";",
	    { .rcpt = "<abuse@x.org>" }, 0 },
	{ "rcpt_domain in", STAGE_ENVRCPT,
	    "rcpt_domain = [\"example.net\", \"*.example.net\"];",
	    { .rcpt = "<a@mx.example.NET>" }, 1 },
	{ "rcpt_domain out", STAGE_ENVRCPT,
	    "rcpt_domain = [\"example.net\", \"*.example.net\"];",
	    { .rcpt = "<a@example.com>" }, 0 },
	{ "rcpt_rejected true", STAGE_ENVRCPT, "rcpt_rejected = true;",
	    { .rcpt = "<nobody@x.org>", .rej = 1 }, 1 },
	{ "rcpt_rejected false", STAGE_ENVRCPT, "rcpt_rejected = true;",
	    { .rcpt = "<a@x.org>", .rej = 0 }, 0 },
	{ "rcpt_rejected = false", STAGE_ENVRCPT, "rcpt_rejected = false;",
	    { .rcpt = "<a@x.org>", .rej = 0 }, 1 },
	/* auth, auth_user, auth_mech */
	{ "auth true, authed", STAGE_ENVFROM, "auth = true;",
	    { .user = "alice", .mech = "PLAIN" }, 1 },
	{ "auth true, anonymous", STAGE_ENVFROM, "auth = true;",
	    { .sender = "a@b" }, 0 },
	{ "auth false, anonymous", STAGE_ENVFROM, "auth = false;",
	    { .sender = "a@b" }, 1 },
	{ "auth false, authed", STAGE_ENVFROM, "auth = false;",
	    { .user = "alice" }, 0 },
	{ "auth_user regex in", STAGE_ENVFROM, "auth_user = \"/^adm-/\";",
	    { .user = "ADM-joe" }, 1 },
	{ "auth_user regex out", STAGE_ENVFROM, "auth_user = \"/^adm-/\";",
	    { .user = "joe-adm-x" }, 0 },
	{ "auth_user anonymous", STAGE_ENVFROM, "auth_user = \"alice\";",
	    { .sender = "a@b" }, 0 },
	{ "auth_mech in", STAGE_ENVFROM, "auth_mech = [\"PLAIN\", \"LOGIN\"];",
	    { .user = "u", .mech = "login" }, 1 },
	{ "auth_mech out", STAGE_ENVFROM,
	    "auth_mech = [\"PLAIN\", \"LOGIN\"];",
	    { .user = "u", .mech = "CRAM-MD5" }, 0 },
	/* tls, tls_version, cipher_bits_below (no TLS = 0 bits) */
	{ "tls true, tls", STAGE_HELO, "tls = true;",
	    { .tls = "TLSv1.3", .bits = 256 }, 1 },
	{ "tls true, plain", STAGE_HELO, "tls = true;", { .helo = "x" }, 0 },
	{ "tls false, plain", STAGE_ENVFROM, "tls = false;",
	    { .sender = "a@b" }, 1 },
	{ "tls false, tls", STAGE_ENVFROM, "tls = false;",
	    { .tls = "TLSv1.2", .bits = 128 }, 0 },
	{ "tls_version in", STAGE_HELO, "tls_version = [\"TLSv1\", \"TLSv1.1\"];",
	    { .tls = "TLSv1.1", .bits = 128 }, 1 },
	{ "tls_version out", STAGE_HELO,
	    "tls_version = [\"TLSv1\", \"TLSv1.1\"];",
	    { .tls = "TLSv1.3", .bits = 256 }, 0 },
	{ "tls_version plain", STAGE_HELO,
	    "tls_version = [\"TLSv1\", \"TLSv1.1\"];", { .helo = "x" }, 0 },
	{ "cipher_bits 112 < 128", STAGE_HELO, "cipher_bits_below = 128;",
	    { .tls = "TLSv1.2", .bits = 112 }, 1 },
	{ "cipher_bits 128 not < 128", STAGE_HELO, "cipher_bits_below = 128;",
	    { .tls = "TLSv1.2", .bits = 128 }, 0 },
	{ "cipher_bits 256", STAGE_ENVFROM, "cipher_bits_below = 128;",
	    { .tls = "TLSv1.3", .bits = 256 }, 0 },
	{ "cipher_bits no TLS = 0", STAGE_ENVFROM, "cipher_bits_below = 128;",
	    { .sender = "a@b" }, 1 },
	/* size_over: strictly greater */
	{ "size 1001 > 1000", STAGE_ENVFROM, "size_over = 1000;",
	    { .size = 1001 }, 1 },
	{ "size 1000 not > 1000", STAGE_ENVFROM, "size_over = 1000;",
	    { .size = 1000 }, 0 },
	{ "size at eom", STAGE_EOM, "size_over = 1000;", { .size = 5000 }, 1 },
	{ "size unknown", STAGE_ENVFROM, "size_over = 0;", { .size = 0 }, 0 },
	/* command: the verb only */
	{ "command EXPN root", STAGE_UNKNOWN, "command = \"EXPN\";",
	    { .cmd = "EXPN root" }, 1 },
	{ "command expn (case)", STAGE_UNKNOWN, "command = \"EXPN\";",
	    { .cmd = "expn" }, 1 },
	{ "command VRFY", STAGE_UNKNOWN, "command = \"EXPN\";",
	    { .cmd = "VRFY root" }, 0 },
	{ "command EXPNX", STAGE_UNKNOWN, "command = \"EXPN\";",
	    { .cmd = "EXPNX" }, 0 },
	/* header + header_value */
	{ "header + value in", STAGE_HEADER,
	    "header = \"Subject\"; header_value = \"*viagra*\";",
	    { .hname = "subject", .hval = "Buy VIAGRA now" }, 1 },
	{ "header + value: value out", STAGE_HEADER,
	    "header = \"Subject\"; header_value = \"*viagra*\";",
	    { .hname = "Subject", .hval = "hello" }, 0 },
	{ "header + value: name out", STAGE_HEADER,
	    "header = \"Subject\"; header_value = \"*viagra*\";",
	    { .hname = "X-Subject", .hval = "viagra" }, 0 },
	{ "header regex alone", STAGE_HEADER, "header = \"/^x-spam-/\";",
	    { .hname = "X-Spam-Flag", .hval = "YES" }, 1 },
	{ "header regex alone out", STAGE_HEADER, "header = \"/^x-spam-/\";",
	    { .hname = "Subject", .hval = "x-spam-flag" }, 0 },
	/* AND, any, not, nesting, absent and empty match */
	{ "AND both", STAGE_ENVFROM, "port = 587; auth = false;",
	    { .port = 587 }, 1 },
	{ "AND second fails", STAGE_ENVFROM, "port = 587; auth = false;",
	    { .port = 587, .user = "u" }, 0 },
	{ "AND first fails", STAGE_ENVFROM, "port = 587; auth = false;",
	    { .port = 25 }, 0 },
	{ "any second group", STAGE_ENVFROM,
	    "any = ( { port = 587; }, { port = 465; auth = false; } );",
	    { .port = 465 }, 1 },
	{ "any second group fails", STAGE_ENVFROM,
	    "any = ( { port = 587; }, { port = 465; auth = false; } );",
	    { .port = 465, .user = "u" }, 0 },
	{ "any first group", STAGE_ENVFROM,
	    "any = ( { port = 587; }, { port = 465; auth = false; } );",
	    { .port = 587, .user = "u" }, 1 },
	{ "any none", STAGE_ENVFROM,
	    "any = ( { port = 587; }, { port = 465; auth = false; } );",
	    { .port = 25 }, 0 },
	{ "not holds", STAGE_CONNECT, "not = { client = \"10.0.0.0/8\"; };",
	    { .ip = "192.0.2.1" }, 1 },
	{ "not fails", STAGE_CONNECT, "not = { client = \"10.0.0.0/8\"; };",
	    { .ip = "10.1.2.3" }, 0 },
	{ "not of AND: one fails", STAGE_ENVFROM,
	    "not = { port = 587; auth = true; };", { .port = 587 }, 1 },
	{ "not of AND: both hold", STAGE_ENVFROM,
	    "not = { port = 587; auth = true; };",
	    { .port = 587, .user = "u" }, 0 },
#define NESTED "any = ( { not = { auth = true; }; port = 25; }, " \
	"{ not = { any = ( { helo = \"*.good\"; }, { tls = true; } ); }; } );"
	{ "nested: group 1", STAGE_ENVFROM, NESTED,
	    { .port = 25, .helo = "x.good", .tls = "TLSv1.3" }, 1 },
	{ "nested: none", STAGE_ENVFROM, NESTED,
	    { .port = 25, .user = "u", .helo = "x.good", .tls = "TLSv1.3" },
	    0 },
	{ "nested: group 2", STAGE_ENVFROM, NESTED,
	    { .port = 587, .user = "u", .helo = "bad.example" }, 1 },
	{ "nested: group 2 tls", STAGE_ENVFROM, NESTED,
	    { .port = 587, .user = "u", .helo = "bad.example",
	    .tls = "TLSv1.2" }, 0 },
	{ "absent match", STAGE_CONNECT, NULL, { .ip = "192.0.2.1" }, 1 },
	{ "absent match, nothing known", STAGE_UNKNOWN, NULL, { .port = 0 },
	    1 },
	{ "empty match", STAGE_DATA, "", { .port = 0 }, 1 },
};

static void
test_conditions(void **state)
{
	const struct cond_case *c;
	enum action act;
	char text[2048];
	struct fx *f;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cond_cases); i++) {
		c = &cond_cases[i];
		/* At unknown only a 4xx is honoured: tempfail. */
		act = c->stage == STAGE_UNKNOWN ? ACTION_TEMPFAIL :
		    ACTION_REJECT;
		if (c->match != NULL)
			snprintf(text, sizeof(text), "rules = ( { name = \"c\"; "
			    "stage = \"%s\"; match = { %s }; action = "
			    "\"%s\"; } );", stage_name(c->stage), c->match,
			    action_name(act));
		else
			snprintf(text, sizeof(text), "rules = ( { name = \"c\"; "
			    "stage = \"%s\"; action = \"%s\"; } );",
			    stage_name(c->stage), action_name(act));
		f = fx_with(text);
		sx_apply(&f->s, &c->x);
		WANT_ACT(c->row, ev(f, c->stage, T0),
		    c->want ? act : ACTION_CONTINUE);
		WANT_INT(c->row, "hits", atomic_load(&rule_named(f,
		    "c")->hits), c->want);
		fx_free(f);
	}
}

/* ---- counts: strictly greater, current event included ---- */

static void
test_rcpt_count_over(void **state)
{
	struct fx *f;
	int i;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"rc\"; stage = \"envrcpt\"; match = { rcpt_count_over"
	    " = 3; }; action = \"tempfail\"; reply = \"452 4.5.3 Too many "
	    "recipients\"; },"
	    "{ name = \"rc-data\"; stage = \"data\"; match = { "
	    "rcpt_count_over = 3; }; action = \"reject\"; } );");
	set_client(&f->s, "192.0.2.1");
	for (int msg = 0; msg < 2; msg++) {
		set_sender(&f->s, "<a@b.example>");
		for (i = 1; i <= 5; i++) {
			char row[64];

			snprintf(row, sizeof(row), "message %d rcpt %d", msg, i);
			set_rcpt(&f->s, "<r@c.example>", 0);
			WANT_ACT(row, ev(f, STAGE_ENVRCPT, T0), i <= 3 ?
			    ACTION_CONTINUE : ACTION_TEMPFAIL);
			if (i == 4)
				WANT_STR(row, "reply", rep(f),
				    "452 4.5.3 Too many recipients");
			if (i == 3)
				WANT_ACT("3 rcpts at data", ev(f, STAGE_DATA,
				    T0), ACTION_CONTINUE);
		}
		WANT_ACT("5 rcpts at data", ev(f, STAGE_DATA, T0),
		    ACTION_REJECT);
		/* The count is per transaction. */
		sess_reset_msg(&f->s);
	}
	/* Recipients the MTA refused are not part of the transaction. */
	set_sender(&f->s, "<a@b.example>");
	for (i = 1; i <= 3; i++) {
		set_rcpt(&f->s, "<x@c.example>", 1);
		WANT_ACT("rejected rcpts", ev(f, STAGE_ENVRCPT, T0),
		    ACTION_CONTINUE);
	}
	set_rcpt(&f->s, "<r@c.example>", 0);
	WANT_ACT("1 valid after 3 refused", ev(f, STAGE_ENVRCPT, T0),
	    ACTION_CONTINUE);
	fx_free(f);
}

static void
test_bad_rcpt_and_unknown_count_over(void **state)
{
	struct fx *f;
	char row[64];
	int i;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"bad\"; stage = \"envrcpt\"; match = { "
	    "bad_rcpt_count_over = 3; }; action = \"reject\"; },"
	    "{ name = \"unk\"; stage = \"unknown\"; match = { "
	    "unknown_count_over = 2; command = [\"EXPN\", \"VRFY\"]; }; "
	    "action = \"tempfail\"; reply = \"450 4.7.0 No\"; } );");
	set_client(&f->s, "192.0.2.1");
	set_sender(&f->s, "<a@b.example>");
	for (i = 1; i <= 2; i++) {
		snprintf(row, sizeof(row), "bad rcpt %d", i);
		set_rcpt(&f->s, "<nobody@c.example>", 1);
		WANT_ACT(row, ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	}
	/* valid recipients do not count */
	set_rcpt(&f->s, "<ok@c.example>", 0);
	WANT_ACT("valid rcpt", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	/* the count is per session: a new transaction keeps it */
	sess_reset_msg(&f->s);
	set_sender(&f->s, "<a@b.example>");
	set_rcpt(&f->s, "<nobody@c.example>", 1);
	WANT_ACT("bad rcpt 3", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	set_rcpt(&f->s, "<nobody@c.example>", 1);
	WANT_ACT("bad rcpt 4", ev(f, STAGE_ENVRCPT, T0), ACTION_REJECT);
	/* the fourth bad one is counted: a valid one now still sees 4 */
	set_rcpt(&f->s, "<ok@c.example>", 0);
	WANT_ACT("valid rcpt after 4 bad", ev(f, STAGE_ENVRCPT, T0),
	    ACTION_REJECT);

	/* unknown commands: the third is the first over 2 */
	for (i = 1; i <= 4; i++) {
		snprintf(row, sizeof(row), "unknown %d", i);
		sess_set_command(&f->s, "EXPN root", 9);
		WANT_ACT(row, ev(f, STAGE_UNKNOWN, T0), i <= 2 ?
		    ACTION_CONTINUE : ACTION_TEMPFAIL);
	}
	/* a command that does not match still counts */
	sess_set_command(&f->s, "XFOO", 4);
	WANT_ACT("XFOO", ev(f, STAGE_UNKNOWN, T0), ACTION_CONTINUE);
	WANT_INT("after XFOO", "unknown_count", f->s.unknown_count, 5);
	sess_reset_msg(&f->s);
	sess_set_command(&f->s, "VRFY x", 6);
	WANT_ACT("VRFY after reset", ev(f, STAGE_UNKNOWN, T0),
	    ACTION_TEMPFAIL);
	fx_free(f);
}

/* ---- sender_owned with an owner map ---- */

static const struct {
	const char	*user;		/* NULL: not authenticated */
	const char	*sender;
	int		owned;
} owned_cases[] = {
	{ "alice", "<alice@example.com>", 1 },
	{ "alice", "<ALICE@Example.COM>", 1 },		/* case-insensitive */
	{ "alice", "<x@example.org>", 1 },		/* @domain */
	{ "alice", "<x@sub.example.org>", 0 },		/* exactly that */
	{ "alice", "<x@mx.example.net>", 1 },		/* @*.domain */
	{ "alice", "<x@a.b.example.net>", 1 },
	{ "alice", "<x@example.net>", 0 },		/* subdomains only */
	{ "alice", "<bob@example.com>", 0 },
	{ "alice", "<>", 0 },				/* null: nobody's */
	{ "bob", "<bob+lists@example.com>", 1 },	/* regex */
	{ "bob", "<bob@example.com>", 0 },
	{ "carol", "<alice@example.com>", 0 },		/* not in the map */
	{ NULL, "<alice@example.com>", 0 },		/* no AUTH */
};

static void
test_sender_owned(void **state)
{
	struct fx *f, *g;
	char row[128];
	size_t i;

	(void)state;
	f = fx_with("rules = ( { name = \"owned\"; stage = \"envfrom\"; "
	    "match = { sender_owned = true; }; action = \"reject\"; "
	    "owner_map = \"file:senders.map\"; } );");
	g = fx_with("rules = ( { name = \"not-owned\"; stage = \"envfrom\"; "
	    "match = { auth = true; sender_owned = false; }; action = "
	    "\"reject\"; reply = \"553 5.7.1 Sender not owned by %{auth_user}"
	    "\"; owner_map = \"file:senders.map\"; } );");
	for (i = 0; i < NELEM(owned_cases); i++) {
		snprintf(row, sizeof(row), "%s %s", owned_cases[i].user ?
		    owned_cases[i].user : "(anonymous)",
		    owned_cases[i].sender);
		sess_init(&f->s);
		if (owned_cases[i].user != NULL)
			sess_set_auth(&f->s, owned_cases[i].user,
			    strlen(owned_cases[i].user), "PLAIN", 5);
		set_sender(&f->s, owned_cases[i].sender);
		g->s = f->s;
		WANT_ACT(row, ev(f, STAGE_ENVFROM, T0), owned_cases[i].owned ?
		    ACTION_REJECT : ACTION_CONTINUE);
		WANT_ACT(row, ev(g, STAGE_ENVFROM, T0),
		    !owned_cases[i].owned && owned_cases[i].user != NULL ?
		    ACTION_REJECT : ACTION_CONTINUE);
		if (g->out.action == ACTION_REJECT) {
			char want[128];

			snprintf(want, sizeof(want), "553 5.7.1 Sender not "
			    "owned by %s", owned_cases[i].user);
			WANT_STR(row, "reply", rep(g), want);
		}
	}
	fx_free(f);
	fx_free(g);
}

/* ==== order and the first terminal verdict ==== */

static const struct {
	const char	*action;
	enum action	want;
} terminal_cases[] = {
	{ "accept", ACTION_ACCEPT },
	{ "reject", ACTION_REJECT },
	{ "tempfail", ACTION_TEMPFAIL },
	{ "discard", ACTION_DISCARD },
	{ "quarantine", ACTION_QUARANTINE },
};

static void
test_first_terminal_wins(void **state)
{
	char text[2048];
	struct fx *f;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(terminal_cases); i++) {
		const char *row = terminal_cases[i].action;

		snprintf(text, sizeof(text), "rules = ("
		    "{ name = \"log1\"; stage = \"eom\"; action = \"log\"; },"
		    "{ name = \"tag1\"; stage = \"eom\"; action = \"tag\"; "
		    "add_header = \"X-Tag: %%{rule} for %%{sender}\"; },"
		    "{ name = \"cont1\"; stage = \"eom\"; action = "
		    "\"continue\"; },"
		    "{ name = \"nomatch\"; stage = \"eom\"; match = { "
		    "size_over = 1000000; }; action = \"reject\"; },"
		    "{ name = \"decider\"; stage = \"eom\"; action = \"%s\"; },"
		    "{ name = \"after\"; stage = \"eom\"; action = "
		    "\"tempfail\"; } );", terminal_cases[i].action);
		f = fx_with(text);
		set_client(&f->s, "192.0.2.1");
		set_sender(&f->s, "<a@b.example>");
		set_rcpt(&f->s, "<c@d.example>", 0);
		f->s.size = 10;
		WANT_ACT(row, ev(f, STAGE_EOM, T0), terminal_cases[i].want);
		WANT_STR(row, "rule", rule_of(f), "decider");
		WANT_INT(row, "decisions", f->ndec, 3);
		WANT_STR(row, "decision 0", f->dec[0].rule, "log1");
		WANT_ACT(row, f->dec[0].action, ACTION_LOG);
		WANT_STR(row, "decision 1", f->dec[1].rule, "tag1");
		WANT_ACT(row, f->dec[1].action, ACTION_TAG);
		WANT_STR(row, "decision 2", f->dec[2].rule, "decider");
		WANT_ACT(row, f->dec[2].action, terminal_cases[i].want);
		WANT_INT(row, "decision 2 stage", f->dec[2].stage, STAGE_EOM);
		WANT_INT(row, "tags", f->s.ntags, 1);
		WANT_STR(row, "tag name", f->s.tags[0].hdr_name, "X-Tag");
		WANT_STR(row, "tag value", f->s.tags[0].hdr_value,
		    "tag1 for a@b.example");
		WANT_INT(row, "hits of cont1", atomic_load(&rule_named(f,
		    "cont1")->hits), 1);
		WANT_INT(row, "hits of nomatch", atomic_load(&rule_named(f,
		    "nomatch")->hits), 0);
		WANT_INT(row, "hits of after", atomic_load(&rule_named(f,
		    "after")->hits), 0);
		WANT_INT(row, "enforced of decider", atomic_load(&rule_named(f,
		    "decider")->enforced), 1);
		WANT_INT(row, "closes", f->out.closes, 0);
		fx_free(f);
	}
}

/* Only non-terminal rules: the event continues, no rule decided. */
static void
test_non_terminal_only(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"l\"; stage = \"envfrom\"; action = \"log\"; },"
	    "{ name = \"c\"; stage = \"envfrom\"; action = \"continue\"; },"
	    "{ name = \"t\"; stage = \"envfrom\"; action = \"tag\"; "
	    "add_header = \"X-A: b\"; } );");
	set_sender(&f->s, "<a@b>");
	WANT_ACT("non-terminal only", ev(f, STAGE_ENVFROM, T0),
	    ACTION_CONTINUE);
	WANT_STR("non-terminal only", "rule", rule_of(f), "(none)");
	WANT_INT("non-terminal only", "decisions (log, tag)", f->ndec, 2);
	/* Rules of other stages are not evaluated. */
	WANT_ACT("other stage", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	WANT_INT("other stage", "decisions", f->ndec, 2);
	fx_free(f);
}

/* Order: the first matching terminal rule decides, not the last. */
static void
test_rule_order(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"t1\"; stage = \"envrcpt\"; match = { rcpt_domain = "
	    "\"a.example\"; }; action = \"tempfail\"; },"
	    "{ name = \"r1\"; stage = \"envrcpt\"; action = \"reject\"; "
	    "reply = \"550 5.7.1 No %{rcpt}\"; } );");
	set_rcpt(&f->s, "<x@a.example>", 0);
	WANT_ACT("t1 first", ev(f, STAGE_ENVRCPT, T0), ACTION_TEMPFAIL);
	WANT_STR("t1 first", "rule", rule_of(f), "t1");
	WANT_STR("t1 first", "default tempfail reply code",
	    f->out.reply.rcode, "450");
	WANT_STR("t1 first", "default tempfail enhanced code",
	    f->out.reply.xcode, "4.7.1");
	set_rcpt(&f->s, "<x@b.example>", 0);
	WANT_ACT("r1 second", ev(f, STAGE_ENVRCPT, T0), ACTION_REJECT);
	WANT_STR("r1 second", "reply", rep(f), "550 5.7.1 No x@b.example");
	fx_free(f);
}

/* A rule at every stage that refuses everything, after an accept rule. */
static const char accept_rules_fmt[] = "rules = ("
	"{ name = \"acc\"; stage = \"%s\"; match = { %s }; action = "
	"\"accept\"; },"
	"{ name = \"x-connect\"; stage = \"connect\"; match = { client = "
	"\"198.51.100.0/24\"; }; action = \"reject\"; },"
	"{ name = \"x-helo\"; stage = \"helo\"; action = \"reject\"; },"
	"{ name = \"x-envfrom\"; stage = \"envfrom\"; action = \"reject\"; },"
	"{ name = \"x-envrcpt\"; stage = \"envrcpt\"; action = \"reject\"; },"
	"{ name = \"x-data\"; stage = \"data\"; action = \"reject\"; },"
	"{ name = \"x-header\"; stage = \"header\"; action = \"reject\"; },"
	"{ name = \"x-eom\"; stage = \"eom\"; action = \"reject\"; },"
	"{ name = \"x-unknown\"; stage = \"unknown\"; action = \"tempfail\"; }"
	");";

static void
test_accept_connection(void **state)
{
	static const struct {
		const char	*stage, *match;
		enum stage	st;
	} rows[] = {
		{ "connect", "client = \"192.0.2.0/24\";", STAGE_CONNECT },
		{ "helo", "helo = \"trusted.example\";", STAGE_HELO },
	};
	static const enum stage later[] = { STAGE_ENVFROM, STAGE_ENVRCPT,
	    STAGE_DATA, STAGE_HEADER, STAGE_EOM, STAGE_UNKNOWN };
	char text[4096], row[96];
	struct fx *f;
	size_t i, k;
	int msg;

	(void)state;
	for (i = 0; i < NELEM(rows); i++) {
		snprintf(text, sizeof(text), accept_rules_fmt, rows[i].stage,
		    rows[i].match);
		f = fx_with(text);
		set_client(&f->s, "192.0.2.1");
		sess_set_helo(&f->s, "trusted.example", 15);
		WANT_ACT(rows[i].stage, ev(f, STAGE_CONNECT, T0),
		    rows[i].st == STAGE_CONNECT ? ACTION_ACCEPT :
		    ACTION_CONTINUE);
		if (rows[i].st == STAGE_HELO)
			WANT_ACT("accept at helo", ev(f, STAGE_HELO, T0),
			    ACTION_ACCEPT);
		else
			WANT_ACT("helo after connect accept", ev(f, STAGE_HELO,
			    T0), ACTION_CONTINUE);
		/* Two messages: the whole connection is accepted. */
		for (msg = 0; msg < 2; msg++) {
			set_sender(&f->s, "<a@b.example>");
			set_rcpt(&f->s, "<c@d.example>", 0);
			sess_set_command(&f->s, "EXPN x", 6);
			for (k = 0; k < NELEM(later); k++) {
				snprintf(row, sizeof(row), "accept at %s, msg %d, "
				    "%s", rows[i].stage, msg,
				    stage_name(later[k]));
				WANT_ACT(row, ev(f, later[k], T0),
				    ACTION_CONTINUE);
			}
			sess_reset_msg(&f->s);
		}
		WANT_INT(rows[i].stage, "decisions (the accept only)", f->ndec,
		    1);
		WANT_ACT(rows[i].stage, f->dec[0].action, ACTION_ACCEPT);
		fx_free(f);

		/* Not accepted: every later stage refuses. */
		f = fx_with(text);
		set_client(&f->s, "203.0.113.1");
		sess_set_helo(&f->s, "other.example", 13);
		WANT_ACT("not accepted: connect", ev(f, STAGE_CONNECT, T0),
		    ACTION_CONTINUE);
		WANT_ACT("not accepted: helo", ev(f, STAGE_HELO, T0),
		    ACTION_REJECT);
		set_sender(&f->s, "<a@b.example>");
		set_rcpt(&f->s, "<c@d.example>", 0);
		for (k = 0; k < NELEM(later); k++) {
			snprintf(row, sizeof(row), "not accepted: %s",
			    stage_name(later[k]));
			/* At unknown only a 4xx is honoured: tempfail. */
			WANT_ACT(row, ev(f, later[k], T0), later[k] ==
			    STAGE_UNKNOWN ? ACTION_TEMPFAIL : ACTION_REJECT);
		}
		fx_free(f);
	}
}

static void
test_accept_message(void **state)
{
	static const enum stage msg_stages[] = { STAGE_ENVRCPT, STAGE_DATA,
	    STAGE_HEADER, STAGE_EOM };
	char text[4096], row[96];
	struct fx *f;
	size_t k;

	(void)state;
	snprintf(text, sizeof(text), accept_rules_fmt, "envfrom",
	    "sender_domain = \"trusted.example\";");
	f = fx_with(text);
	set_client(&f->s, "192.0.2.1");
	WANT_ACT("connect", ev(f, STAGE_CONNECT, T0), ACTION_CONTINUE);
	set_sender(&f->s, "<a@trusted.example>");
	WANT_ACT("envfrom", ev(f, STAGE_ENVFROM, T0), ACTION_ACCEPT);
	set_rcpt(&f->s, "<c@d.example>", 0);
	for (k = 0; k < NELEM(msg_stages); k++) {
		snprintf(row, sizeof(row), "accepted message: %s",
		    stage_name(msg_stages[k]));
		WANT_ACT(row, ev(f, msg_stages[k], T0), ACTION_CONTINUE);
	}
	/* Only the message: an unknown command is not part of it. */
	sess_set_command(&f->s, "EXPN x", 6);
	WANT_ACT("unknown during accepted message", ev(f, STAGE_UNKNOWN, T0),
	    ACTION_TEMPFAIL);
	/* The next message starts afresh. */
	sess_reset_msg(&f->s);
	set_sender(&f->s, "<a@other.example>");
	WANT_ACT("next message: envfrom", ev(f, STAGE_ENVFROM, T0),
	    ACTION_REJECT);
	sess_reset_msg(&f->s);
	set_rcpt(&f->s, "<c@d.example>", 0);
	for (k = 0; k < NELEM(msg_stages); k++) {
		snprintf(row, sizeof(row), "next message: %s",
		    stage_name(msg_stages[k]));
		WANT_ACT(row, ev(f, msg_stages[k], T0), ACTION_REJECT);
	}
	fx_free(f);
}

static void
test_quarantine_and_tags(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"tag-conn\"; stage = \"connect\"; action = \"tag\"; "
	    "add_header = \"X-Conn: %{client_ip}\"; },"
	    "{ name = \"tag-msg\"; stage = \"envfrom\"; action = \"tag\"; "
	    "add_header = \"X-Msg: from %{sender}\"; },"
	    "{ name = \"q\"; stage = \"envfrom\"; match = { sender_domain = "
	    "\"suspect.example\"; }; action = \"quarantine\"; },"
	    "{ name = \"r-rcpt\"; stage = \"envrcpt\"; match = { rcpt = "
	    "\"nobody@*\"; }; action = \"reject\"; },"
	    "{ name = \"big\"; stage = \"eom\"; match = { size_over = 100; }; "
	    "action = \"reject\"; reply = \"552 5.3.4 Too big\"; } );");
	set_client(&f->s, "192.0.2.1");
	WANT_ACT("connect", ev(f, STAGE_CONNECT, T0), ACTION_CONTINUE);
	WANT_INT("connect", "ntags", f->s.ntags, 1);

	/* message 1: quarantined at envfrom, applied at eom */
	set_sender(&f->s, "<a@suspect.example>");
	WANT_ACT("m1 envfrom", ev(f, STAGE_ENVFROM, T0), ACTION_QUARANTINE);
	WANT_STR("m1 envfrom", "rule", rule_of(f), "q");
	/* quarantine ends the envfrom event only */
	set_rcpt(&f->s, "<nobody@d.example>", 0);
	WANT_ACT("m1 envrcpt", ev(f, STAGE_ENVRCPT, T0), ACTION_REJECT);
	set_rcpt(&f->s, "<ok@d.example>", 0);
	WANT_ACT("m1 envrcpt ok", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	f->s.size = 50;
	WANT_ACT("m1 eom", ev(f, STAGE_EOM, T0), ACTION_QUARANTINE);
	WANT_STR("m1 eom", "rule", rule_of(f), "q");
	WANT_INT("m1 eom", "ntags", f->s.ntags, 2);
	WANT_STR("m1", "tag 0 name", f->s.tags[0].hdr_name, "X-Conn");
	WANT_STR("m1", "tag 0 value", f->s.tags[0].hdr_value, "192.0.2.1");
	WANT_STR("m1", "tag 1 name", f->s.tags[1].hdr_name, "X-Msg");
	WANT_STR("m1", "tag 1 value", f->s.tags[1].hdr_value,
	    "from a@suspect.example");
	sess_reset_msg(&f->s);
	WANT_INT("after reset", "ntags", f->s.ntags, 1);

	/* message 2: quarantined, but a reject at eom wins */
	set_sender(&f->s, "<b@suspect.example>");
	WANT_ACT("m2 envfrom", ev(f, STAGE_ENVFROM, T0), ACTION_QUARANTINE);
	f->s.size = 500;
	WANT_ACT("m2 eom", ev(f, STAGE_EOM, T0), ACTION_REJECT);
	WANT_STR("m2 eom", "reply", rep(f), "552 5.3.4 Too big");
	sess_reset_msg(&f->s);

	/* message 3: nothing flagged */
	set_sender(&f->s, "<c@fine.example>");
	WANT_ACT("m3 envfrom", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	f->s.size = 50;
	WANT_ACT("m3 eom", ev(f, STAGE_EOM, T0), ACTION_CONTINUE);
	WANT_STR("m3 eom", "rule", rule_of(f), "(none)");
	WANT_INT("m3", "ntags", f->s.ntags, 2);
	WANT_STR("m3", "tag 1 value", f->s.tags[1].hdr_value,
	    "from c@fine.example");
	WANT_STR("m3", "tag 0 value", f->s.tags[0].hdr_value, "192.0.2.1");
	fx_free(f);
}

/* ==== limits ==== */

struct lim_step {
	int64_t		at;		/* T0 + at */
	long long	size;		/* eom: message bytes */
	enum action	want;
	int		retry;		/* %{retry_after} when refused */
};

static const struct lim_case {
	const char	*row;
	const char	*limit;		/* inside limit = { key = ...; HERE } */
	enum stage	stage;
	struct lim_step	steps[12];
} lim_cases[] = {
	/* 3/1m: T = 20 s, B = 3 */
	{ "3/1m", "rate = \"3/1m\";", STAGE_ENVRCPT, {
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, ACTION_TEMPFAIL, 20 },
		/* the refused 4th was not charged: the 5th passes at +20 s */
		{ 20 * S, 0, ACTION_CONTINUE, 0 },
		{ 20 * S, 0, ACTION_TEMPFAIL, 20 },
		{ 39 * S + 500 * MS, 0, ACTION_TEMPFAIL, 1 },	/* 0.5 s up */
		{ 40 * S, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, 0, -1 } } },
	/* steady: 6/1m burst 1, T = 10 s */
	{ "6/1m burst 1", "rate = \"6/1m\"; burst = 1;", STAGE_ENVFROM, {
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 9 * S, 0, ACTION_TEMPFAIL, 1 },
		{ 10 * S, 0, ACTION_CONTINUE, 0 },
		{ 15 * S, 0, ACTION_TEMPFAIL, 5 },
		{ 20 * S, 0, ACTION_CONTINUE, 0 },
		{ 30 * S, 0, ACTION_CONTINUE, 0 },
		{ 30 * S, 0, ACTION_TEMPFAIL, 10 },
		{ 0, 0, 0, -1 } } },
	/* burst: 1/1m burst 5, T = 60 s */
	{ "1/1m burst 5", "rate = \"1/1m\"; burst = 5;", STAGE_ENVRCPT, {
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, ACTION_TEMPFAIL, 60 },
		{ 60 * S, 0, ACTION_CONTINUE, 0 },
		{ 60 * S, 0, ACTION_TEMPFAIL, 60 },
		{ 119 * S, 0, ACTION_TEMPFAIL, 1 },
		{ 120 * S, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, 0, -1 } } },
	/* cost 2 on 10/1m: T = 6 s, B*T = 60 s, 5 events at once */
	{ "10/1m cost 2", "rate = \"10/1m\"; cost = 2;", STAGE_ENVRCPT, {
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, ACTION_TEMPFAIL, 12 },
		{ 11 * S, 0, ACTION_TEMPFAIL, 1 },
		{ 12 * S, 0, ACTION_CONTINUE, 0 },
		{ 0, 0, 0, -1 } } },
	/* cost size: 1000 bytes/1h, T = 3.6 s a byte, B*T = 3600 s */
	{ "1000/1h cost size", "rate = \"1000/1h\"; cost = \"size\";",
	    STAGE_EOM, {
		{ 0, 600, ACTION_CONTINUE, 0 },		/* tat +2160 s */
		{ 0, 600, ACTION_TEMPFAIL, 720 },	/* 4320 - 3600 */
		{ 0, 400, ACTION_CONTINUE, 0 },		/* tat +3600 s */
		{ 0, 0, ACTION_TEMPFAIL, 4 },		/* cost 1: 3.6 s */
		{ 3600 * S, 1000, ACTION_CONTINUE, 0 },
		{ 36000 * S, 1001, ACTION_TEMPFAIL, 3600 },	/* > burst */
		{ 36000 * S, 1000, ACTION_CONTINUE, 0 },
		{ 0, 0, 0, -1 } } },
};

static void
test_limit_rates(void **state)
{
	const struct lim_case *c;
	const struct lim_step *st;
	char text[2048], row[128], want[256];
	struct fx *f;
	size_t i, k;
	int64_t last = 0;

	(void)state;
	for (i = 0; i < NELEM(lim_cases); i++) {
		c = &lim_cases[i];
		snprintf(text, sizeof(text), "rules = ( { name = \"lim\"; "
		    "stage = \"%s\"; limit = { key = [\"client_ip\"]; %s }; "
		    "action = \"tempfail\"; reply = \"450 4.7.1 Slow down "
		    "%%{client_ip}, retry in %%{retry_after}s\"; } );",
		    stage_name(c->stage), c->limit);
		f = fx_with(text);
		set_client(&f->s, "192.0.2.1");
		set_sender(&f->s, "<a@b.example>");
		set_rcpt(&f->s, "<c@d.example>", 0);
		for (k = 0; c->steps[k].retry >= 0; k++) {
			st = &c->steps[k];
			snprintf(row, sizeof(row), "%s step %zu (T0+%lldms)",
			    c->row, k, (long long)(st->at / MS));
			if (st->at < last)
				fail_msg("%s: steps go back in time", row);
			last = st->at;
			f->s.size = st->size;
			WANT_ACT(row, ev(f, c->stage, T0 + st->at), st->want);
			if (st->want == ACTION_TEMPFAIL) {
				snprintf(want, sizeof(want), "450 4.7.1 Slow "
				    "down 192.0.2.1, retry in %ds", st->retry);
				WANT_STR(row, "reply", rep(f), want);
				WANT_STR(row, "rule", rule_of(f), "lim");
			}
		}
		last = 0;
		fx_free(f);
	}
}

/* ---- key parts: who shares a counter ---- */

static const struct sx key_base = {
	.ip = "192.0.2.1", .helo = "mx.example.com", .sender = "<a@x.org>",
	.rcpt = "<r@y.org>", .user = "alice", .mech = "PLAIN",
};

static const struct key_case {
	const char	*row;
	const char	*limit;		/* key and prefixes */
	struct sx	a, b;		/* share a counter */
	struct sx	c;		/* has its own */
} key_cases[] = {
	{ "client_ip", "key = \"client_ip\";",
	    { .ip = "192.0.2.1" }, { .ip = "::ffff:192.0.2.1" },
	    { .ip = "192.0.2.2" } },
	{ "client_ip v6", "key = \"client_ip\";",
	    { .ip = "2001:db8::1" }, { .ip = "2001:DB8:0::1" },
	    { .ip = "2001:db8::2" } },
	{ "client_net /24", "key = \"client_net\";",
	    { .ip = "192.0.2.1" }, { .ip = "192.0.2.254" },
	    { .ip = "192.0.3.1" } },
	{ "client_net /24 mapped", "key = \"client_net\";",
	    { .ip = "192.0.2.1" }, { .ip = "::ffff:192.0.2.99" },
	    { .ip = "192.0.1.255" } },
	{ "client_net /64", "key = \"client_net\";",
	    { .ip = "2001:db8:1:2::1" }, { .ip = "2001:db8:1:2:ffff::9" },
	    { .ip = "2001:db8:1:3::1" } },
	{ "client_net /16", "key = \"client_net\"; ipv4_prefix = 16;",
	    { .ip = "192.0.2.1" }, { .ip = "192.0.200.9" },
	    { .ip = "192.1.0.1" } },
	{ "client_net /48", "key = \"client_net\"; ipv6_prefix = 48;",
	    { .ip = "2001:db8:1:2::1" }, { .ip = "2001:db8:1:ffff::1" },
	    { .ip = "2001:db8:2::1" } },
	{ "helo", "key = \"helo\";",
	    { .helo = "mx.example.com" }, { .helo = "MX.Example.COM" },
	    { .helo = "mx2.example.com" } },
	{ "sender", "key = \"sender\";",
	    { .sender = "<a@x.org>" }, { .sender = "A@X.ORG" },
	    { .sender = "<b@x.org>" } },
	{ "null sender", "key = \"sender\";",
	    { .sender = "<>" }, { .sender = "" },
	    { .sender = "<a@x.org>" } },
	{ "sender_domain", "key = \"sender_domain\";",
	    { .sender = "<a@x.org>" }, { .sender = "<b@X.org>" },
	    { .sender = "<a@y.org>" } },
	{ "rcpt", "key = \"rcpt\";",
	    { .rcpt = "<r@y.org>" }, { .rcpt = "<R@y.ORG>" },
	    { .rcpt = "<s@y.org>" } },
	{ "rcpt_domain", "key = \"rcpt_domain\";",
	    { .rcpt = "<r@y.org>" }, { .rcpt = "<s@y.org>" },
	    { .rcpt = "<r@z.org>" } },
	{ "auth_user", "key = \"auth_user\";",
	    { .user = "alice" }, { .user = "alice", .mech = "LOGIN" },
	    { .user = "bob" } },
	{ "client_ip + rcpt", "key = [\"client_ip\", \"rcpt\"];",
	    { .ip = "192.0.2.1" }, { .ip = "192.0.2.1" },
	    { .ip = "192.0.2.1", .rcpt = "<other@y.org>" } },
};

/* key_base with the row's fields laid over it */
static void
key_sess(struct sess *s, const struct sx *over)
{
	struct sx x = key_base;

	if (over->ip != NULL)
		x.ip = over->ip;
	if (over->helo != NULL)
		x.helo = over->helo;
	if (over->sender != NULL)
		x.sender = over->sender;
	if (over->rcpt != NULL)
		x.rcpt = over->rcpt;
	if (over->user != NULL)
		x.user = over->user;
	if (over->mech != NULL)
		x.mech = over->mech;
	sx_apply(s, &x);
}

static void
test_limit_key_parts(void **state)
{
	const struct key_case *c;
	char text[1024], row[128];
	struct fx *f;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(key_cases); i++) {
		c = &key_cases[i];
		snprintf(text, sizeof(text), "rules = ( { name = \"k\"; "
		    "stage = \"envrcpt\"; limit = { %s rate = \"1/1h\"; }; "
		    "action = \"reject\"; } );", c->limit);
		f = fx_with(text);
		snprintf(row, sizeof(row), "%s: a", c->row);
		key_sess(&f->s, &c->a);
		WANT_ACT(row, ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
		snprintf(row, sizeof(row), "%s: b shares a's counter", c->row);
		key_sess(&f->s, &c->b);
		WANT_ACT(row, ev(f, STAGE_ENVRCPT, T0), ACTION_REJECT);
		snprintf(row, sizeof(row), "%s: c has its own", c->row);
		key_sess(&f->s, &c->c);
		WANT_ACT(row, ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
		WANT_ACT(row, ev(f, STAGE_ENVRCPT, T0), ACTION_REJECT);
		fx_free(f);
	}
}

/* A key part without a value: the limit is skipped, the rule never fires. */
static const struct {
	const char	*row;
	const char	*key;
	struct sx	x;
} nokey_cases[] = {
	{ "auth_user, anonymous", "auth_user",
	    { .ip = "192.0.2.1", .sender = "<a@b.example>",
	    .rcpt = "<c@d.example>" } },
	{ "helo, none", "helo",
	    { .ip = "192.0.2.1", .sender = "<a@b.example>",
	    .rcpt = "<c@d.example>" } },
	{ "client_ip, unknown", "client_ip",
	    { .sender = "<a@b.example>", .rcpt = "<c@d.example>" } },
	{ "client_net, unparsable", "client_net",
	    { .ip = "unknown", .sender = "<a@b.example>",
	    .rcpt = "<c@d.example>" } },
	{ "sender_domain, null sender", "sender_domain",
	    { .ip = "192.0.2.1", .sender = "<>", .rcpt = "<c@d.example>" } },
	{ "rcpt_domain, no domain", "rcpt_domain",
	    { .ip = "192.0.2.1", .sender = "<a@b.example>",
	    .rcpt = "<postmaster>" } },
	{ "two parts, second empty", "client_ip\", \"auth_user",
	    { .ip = "192.0.2.1", .sender = "<a@b.example>",
	    .rcpt = "<c@d.example>" } },
};

static void
test_limit_key_without_value(void **state)
{
	char text[1024], row[128];
	struct fx *f;
	size_t i;
	int k;

	(void)state;
	for (i = 0; i < NELEM(nokey_cases); i++) {
		snprintf(text, sizeof(text), "rules = ( { name = \"nk\"; "
		    "stage = \"envrcpt\"; limit = { key = [\"%s\"]; rate = "
		    "\"1/1h\"; }; action = \"reject\"; } );",
		    nokey_cases[i].key);
		f = fx_with(text);
		sx_apply(&f->s, &nokey_cases[i].x);
		for (k = 0; k < 3; k++) {
			snprintf(row, sizeof(row), "%s #%d", nokey_cases[i].row,
			    k + 1);
			WANT_ACT(row, ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
		}
		WANT_INT(nokey_cases[i].row, "hits", atomic_load(&rule_named(f,
		    "nk")->hits), 0);
		WANT_INT(nokey_cases[i].row, "decisions", f->ndec, 0);
		fx_free(f);
	}
}

/* Peeks at rule's counter for the fixture's session: 1 when an event of
 * cost 1 would pass now. */
static int
probe(struct fx *f, const char *rule, int64_t now)
{
	const struct rule *r = rule_named(f, rule);
	struct store_req q;
	struct store_res res;
	char key[STORE_KEY_MAX];
	int n;

	n = engine_limit_key(r, &f->s, key, sizeof(key));
	if (n < 0)
		fail_msg("probe %s: no key", rule);
	memset(&q, 0, sizeof(q));
	q.key = key;
	q.keylen = (size_t)n;
	q.limit = r->limit->g;
	q.cost = 1;
	memset(&res, 0, sizeof(res));
	(void)store_peek(f->store, &q, &res, 1, now);
	if (res.err)
		fail_msg("probe %s: store error", rule);
	return res.allowed;
}

/* Two limits at one stage; the second refuses: the first is refunded. */
static void
test_limit_refund(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"per-ip\"; stage = \"envrcpt\"; limit = { key = "
	    "\"client_ip\"; rate = \"2/1h\"; }; action = \"tempfail\"; },"
	    "{ name = \"per-rcpt\"; stage = \"envrcpt\"; limit = { key = "
	    "\"rcpt\"; rate = \"1/1h\"; }; action = \"reject\"; } );");
	set_client(&f->s, "192.0.2.1");
	set_sender(&f->s, "<a@b.example>");
	set_rcpt(&f->s, "<x@d.example>", 0);
	WANT_ACT("x #1", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	/* per-ip: 1 of 2 used; per-rcpt x: 1 of 1 */
	WANT_INT("after x #1", "per-ip has room", probe(f, "per-ip", T0), 1);
	WANT_ACT("x #2", ev(f, STAGE_ENVRCPT, T0), ACTION_REJECT);
	WANT_STR("x #2", "rule", rule_of(f), "per-rcpt");
	/* per-ip charged a 2nd time and given back: still 1 of 2 */
	WANT_INT("after x #2", "per-ip has room (refunded)", probe(f,
	    "per-ip", T0), 1);
	WANT_ACT("x #3", ev(f, STAGE_ENVRCPT, T0), ACTION_REJECT);
	set_rcpt(&f->s, "<y@d.example>", 0);
	WANT_ACT("y #1 (per-ip 2 of 2)", ev(f, STAGE_ENVRCPT, T0),
	    ACTION_CONTINUE);
	WANT_INT("after y #1", "per-ip full", probe(f, "per-ip", T0), 0);
	set_rcpt(&f->s, "<z@d.example>", 0);
	WANT_ACT("z #1 (per-ip over)", ev(f, STAGE_ENVRCPT, T0),
	    ACTION_TEMPFAIL);
	WANT_STR("z #1", "rule", rule_of(f), "per-ip");
	/* refused by per-ip: per-rcpt z must not keep its charge */
	WANT_INT("after z #1", "per-rcpt z has room (refunded)", probe(f,
	    "per-rcpt", T0), 1);
	fx_free(f);
}

static void
test_limit_refund_after_discard(void **state)
{
	struct fx *f;

	(void)state;
	/*
	 * An accepting verdict (discard) is not a refusal: limits before
	 * the deciding rule keep their charge, those after it are given
	 * back because their rules never got to act.
	 */
	f = fx_with("rules = ("
	    "{ name = \"before\"; stage = \"envfrom\"; limit = { key = "
	    "\"client_ip\"; rate = \"5/1h\"; }; action = \"log\"; },"
	    "{ name = \"disc\"; stage = \"envfrom\"; limit = { key = "
	    "\"client_ip\"; rate = \"1/1h\"; }; action = \"discard\"; },"
	    "{ name = \"later\"; stage = \"envfrom\"; limit = { key = "
	    "\"client_ip\"; rate = \"2/1h\"; }; action = \"reject\"; } );");
	set_client(&f->s, "192.0.2.1");
	set_sender(&f->s, "<a@b.example>");
	WANT_ACT("#1", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	WANT_ACT("#2", ev(f, STAGE_ENVFROM, T0), ACTION_DISCARD);
	WANT_ACT("#3", ev(f, STAGE_ENVFROM, T0), ACTION_DISCARD);
	WANT_ACT("#4", ev(f, STAGE_ENVFROM, T0), ACTION_DISCARD);
	/* later: only #1 charged it (1 of 2) */
	WANT_INT("later", "has room", probe(f, "later", T0), 1);
	/* before: #1..#4 charged it (4 of 5) */
	WANT_INT("before", "has room", probe(f, "before", T0), 1);
	WANT_ACT("#5", ev(f, STAGE_ENVFROM, T0), ACTION_DISCARD);
	WANT_INT("before after #5", "full", probe(f, "before", T0), 0);
	fx_free(f);
}

/* A limit, then a rule without one that rejects: the limit gives back. */
static void
test_limit_refund_plain_reject(void **state)
{
	struct fx *f;
	char row[64];
	int i;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"per-ip\"; stage = \"envrcpt\"; limit = { key = "
	    "\"client_ip\"; rate = \"2/1h\"; }; action = \"tempfail\"; },"
	    "{ name = \"bad-dom\"; stage = \"envrcpt\"; match = { "
	    "rcpt_domain = \"bad.example\"; }; action = \"reject\"; } );");
	set_client(&f->s, "192.0.2.1");
	set_sender(&f->s, "<a@b.example>");
	for (i = 0; i < 5; i++) {
		snprintf(row, sizeof(row), "bad rcpt #%d", i + 1);
		set_rcpt(&f->s, "<x@bad.example>", 0);
		WANT_ACT(row, ev(f, STAGE_ENVRCPT, T0), ACTION_REJECT);
		WANT_STR(row, "rule", rule_of(f), "bad-dom");
	}
	/* none of the five refused events used per-ip: 2 pass, then over */
	set_rcpt(&f->s, "<x@ok.example>", 0);
	WANT_ACT("ok #1", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	WANT_ACT("ok #2", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	WANT_ACT("ok #3", ev(f, STAGE_ENVRCPT, T0), ACTION_TEMPFAIL);
	WANT_STR("ok #3", "rule", rule_of(f), "per-ip");
	fx_free(f);
}

/* Two rules with the same key have separate counters (their names). */
static void
test_limit_namespaces(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"n1\"; stage = \"envfrom\"; limit = { key = "
	    "\"client_ip\"; rate = \"1/1h\"; }; action = \"log\"; },"
	    "{ name = \"n2\"; stage = \"envfrom\"; limit = { key = "
	    "\"client_ip\"; rate = \"1/1h\"; }; action = \"log\"; } );");
	set_client(&f->s, "192.0.2.1");
	set_sender(&f->s, "<a@b.example>");
	WANT_ACT("#1", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	WANT_INT("#1", "decisions", f->ndec, 0);
	WANT_ACT("#2", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	WANT_INT("#2", "decisions", f->ndec, 2);
	WANT_STR("#2", "decision 0", f->dec[0].rule, "n1");
	WANT_STR("#2", "decision 1", f->dec[1].rule, "n2");
	fx_free(f);
}

/* limit.counter shared by two rules; limit.charge = false only looks. */
static void
test_limit_shared_counter_peek(void **state)
{
	struct fx *f;
	char row[64];
	int i;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"harvest-block\"; stage = \"connect\"; limit = { key = "
	    "\"client_net\"; rate = \"3/1h\"; counter = \"harvest\"; "
	    "charge = false; }; action = \"reject\"; },"
	    "{ name = \"harvest-count\"; stage = \"envrcpt\"; match = { "
	    "rcpt_rejected = true; }; limit = { key = \"client_net\"; "
	    "rate = \"3/1h\"; counter = \"harvest\"; }; action = \"tempfail\"; "
	    "reply = \"421 4.7.0 Too many unknown recipients\"; } );");
	/* connects look at the counter and charge nothing */
	for (i = 0; i < 5; i++) {
		snprintf(row, sizeof(row), "connect #%d", i + 1);
		sess_init(&f->s);
		set_client(&f->s, "192.0.2.10");
		WANT_ACT(row, ev(f, STAGE_CONNECT, T0), ACTION_CONTINUE);
	}
	/* three refused recipients exhaust it (3/1h: T = 20 min) */
	set_sender(&f->s, "<a@b.example>");
	for (i = 0; i < 3; i++) {
		snprintf(row, sizeof(row), "bad rcpt #%d", i + 1);
		set_rcpt(&f->s, "<nobody@d.example>", 1);
		WANT_ACT(row, ev(f, STAGE_ENVRCPT, T0 + i * S),
		    ACTION_CONTINUE);
	}
	/* a new session from the same /24 is refused at connect */
	sess_init(&f->s);
	set_client(&f->s, "192.0.2.77");
	WANT_ACT("same /24 connect", ev(f, STAGE_CONNECT, T0 + 3 * S),
	    ACTION_REJECT);
	WANT_STR("same /24 connect", "rule", rule_of(f), "harvest-block");
	sess_init(&f->s);
	set_client(&f->s, "198.51.100.1");
	WANT_ACT("other /24 connect", ev(f, STAGE_CONNECT, T0 + 3 * S),
	    ACTION_CONTINUE);
	/*
	 * TAT = T0 + 60 min after three charges; the counter has room
	 * again at T0 + 20 min. Nothing the connects did moved that.
	 */
	sess_init(&f->s);
	set_client(&f->s, "192.0.2.1");
	WANT_ACT("connect at +20min-1s", ev(f, STAGE_CONNECT, T0 + 20 * MIN -
	    S), ACTION_REJECT);
	WANT_ACT("connect at +20min", ev(f, STAGE_CONNECT, T0 + 20 * MIN),
	    ACTION_CONTINUE);
	WANT_ACT("connect at +20min again", ev(f, STAGE_CONNECT, T0 +
	    20 * MIN), ACTION_CONTINUE);
	/* one more refused recipient fills it again */
	set_sender(&f->s, "<a@b.example>");
	set_rcpt(&f->s, "<nobody@d.example>", 1);
	WANT_ACT("bad rcpt #4", ev(f, STAGE_ENVRCPT, T0 + 20 * MIN),
	    ACTION_CONTINUE);
	set_rcpt(&f->s, "<nobody@d.example>", 1);
	WANT_ACT("bad rcpt #5", ev(f, STAGE_ENVRCPT, T0 + 20 * MIN),
	    ACTION_TEMPFAIL);
	WANT_INT("bad rcpt #5", "closes", f->out.closes, 1);
	WANT_INT("harvest-block", "enforced", atomic_load(&rule_named(f,
	    "harvest-block")->enforced), 2);
	fx_free(f);
}

/*
 * Many limits at one stage with long (escaped) keys: every one of them
 * must still be charged and enforced, however full the key buffer gets.
 */
static void
test_limit_many_long_keys(void **state)
{
	char text[8192], sender[400];
	size_t at = 0, i;
	struct fx *f;

	(void)state;
	at += (size_t)snprintf(text + at, sizeof(text) - at, "rules = (");
	for (i = 0; i < 12; i++)
		at += (size_t)snprintf(text + at, sizeof(text) - at,
		    "%s{ name = \"k%02zu\"; stage = \"envfrom\"; limit = { "
		    "key = [\"sender\", \"helo\"]; rate = \"1/1h\"; }; "
		    "action = \"log\"; }", i ? "," : "", i);
	snprintf(text + at, sizeof(text) - at, ");");
	f = fx_with(text);
	/*
	 * sender: 226 '%' escape to 678 bytes; each key "kNN|...|h" takes
	 * 685 bytes with its NUL, so after 11 keys 657 bytes are left:
	 * more than STORE_KEY_MAX, less than the 12th key needs.
	 */
	sender[0] = '<';
	memset(sender + 1, '%', 226);
	strcpy(sender + 227, ">");
	set_client(&f->s, "192.0.2.1");
	sess_set_helo(&f->s, "h", 1);
	set_sender(&f->s, sender);
	WANT_ACT("#1", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	WANT_INT("#1", "decisions", f->ndec, 0);
	WANT_ACT("#2", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	WANT_INT("#2: every limit over", "decisions", f->ndec, 12);
	for (i = 0; i < 12 && i < f->ndec; i++) {
		char want[8];

		snprintf(want, sizeof(want), "k%02zu", i);
		WANT_STR("#2", "decision rule", f->dec[i].rule, want);
	}
	fx_free(f);
}

/* Keys of the longest parts (~3.4 KB each): the third must not be lost. */
static void
test_limit_wide_keys(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"w1\"; stage = \"envrcpt\"; limit = { key = [\"helo\", "
	    "\"sender\", \"rcpt\", \"auth_user\"]; rate = \"1/1h\"; }; "
	    "action = \"log\"; },"
	    "{ name = \"w2\"; stage = \"envrcpt\"; limit = { key = [\"helo\", "
	    "\"sender\", \"rcpt\", \"auth_user\"]; rate = \"1/1h\"; }; "
	    "action = \"log\"; },"
	    "{ name = \"w3\"; stage = \"envrcpt\"; limit = { key = [\"helo\", "
	    "\"sender\", \"rcpt\", \"auth_user\"]; rate = \"1/1h\"; }; "
	    "action = \"reject\"; } );");
	{
		char big[400];

		memset(big, 0x01, sizeof(big));
		sess_set_helo(&f->s, big, sizeof(big));
		sess_set_sender(&f->s, big, sizeof(big));
		sess_set_rcpt(&f->s, big, sizeof(big), 0);
		sess_set_auth(&f->s, big, sizeof(big), "PLAIN", 5);
	}
	WANT_ACT("wide #1", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	WANT_ACT("wide #2", ev(f, STAGE_ENVRCPT, T0), ACTION_REJECT);
	WANT_STR("wide #2", "rule", rule_of(f), "w3");
	WANT_INT("wide #2", "decisions (w1, w2 log; w3)", f->ndec, 3);
	fx_free(f);
}

/*
 * A key longer than ENGINE_KEY_MAX becomes "counter|#" and the SHA-256
 * of its lower-cased parts, NUL-separated: it still counts (a long
 * recipient must not slip past the limit) and is the same on every MTA.
 * Expected digest: printf 'aaa...a@example.org\0' | sha256sum, computed
 * outside warden for a local part of 600 'a'.
 */
#define DIGEST_600A \
	"1df3330e6a579a73a2fa70e6bbed1b30e6cabedf3b8b10b44e1564ae0bb4de06"

static void
test_limit_key_digest(void **state)
{
	char rcpt[700], buf[ENGINE_KEY_MAX];
	struct fx *f;
	int n;

	(void)state;
	f = fx_with("rules = ( { name = \"d\"; stage = \"envrcpt\"; limit = "
	    "{ key = \"rcpt\"; rate = \"3/1m\"; }; action = \"tempfail\"; "
	    "} );");
	set_client(&f->s, "192.0.2.1");
	set_sender(&f->s, "<s@example.org>");
	memset(rcpt, 'A', 600);
	strcpy(rcpt + 600, "@Example.ORG");
	sess_set_rcpt(&f->s, rcpt, strlen(rcpt), 0);
	n = engine_limit_key(rule_named(f, "d"), &f->s, buf, sizeof(buf));
	WANT_INT("digest", "length", n, 1 + 2 + 64);
	WANT_STR("digest", "key", buf, "d|#" DIGEST_600A);
	/* and the limit holds: the 4th is refused */
	WANT_ACT("digest #1", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	WANT_ACT("digest #2", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	WANT_ACT("digest #3", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	WANT_ACT("digest #4", ev(f, STAGE_ENVRCPT, T0), ACTION_TEMPFAIL);
	fx_free(f);
}

/* ==== dry-run ==== */

static void
test_dryrun(void **state)
{
	struct fx *f;
	const struct rule *r;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"dry-reject\"; stage = \"envrcpt\"; mode = \"dry-run\"; "
	    "action = \"reject\"; reply = \"550 5.7.1 Would refuse %{rcpt}\"; },"
	    "{ name = \"dry-421\"; stage = \"envrcpt\"; mode = \"dry-run\"; "
	    "action = \"tempfail\"; reply = \"421 4.7.0 Would close\"; },"
	    "{ name = \"dry-discard\"; stage = \"envrcpt\"; mode = \"dry-run\"; "
	    "action = \"discard\"; },"
	    "{ name = \"dry-tag\"; stage = \"envrcpt\"; mode = \"dry-run\"; "
	    "action = \"tag\"; add_header = \"X-Dry: 1\"; },"
	    "{ name = \"real\"; stage = \"envrcpt\"; match = { rcpt_domain = "
	    "\"bad.example\"; }; action = \"tempfail\"; reply = "
	    "\"450 4.7.1 Later\"; } );");
	set_client(&f->s, "192.0.2.1");
	set_sender(&f->s, "<a@b.example>");
	set_rcpt(&f->s, "<c@good.example>", 0);
	WANT_ACT("good rcpt", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	WANT_INT("good rcpt", "closes", f->out.closes, 0);
	WANT_INT("good rcpt", "decisions", f->ndec, 4);
	WANT_STR("good rcpt", "decision 0", f->dec[0].rule, "dry-reject");
	WANT_ACT("good rcpt: dec 0", f->dec[0].action, ACTION_REJECT);
	WANT_INT("good rcpt", "dec 0 dryrun", f->dec[0].dryrun, 1);
	WANT_STR("good rcpt", "dec 0 reply", f->dec[0].reply,
	    "550 5.7.1 Would refuse c@good.example");
	WANT_ACT("good rcpt: dec 1", f->dec[1].action, ACTION_TEMPFAIL);
	WANT_INT("good rcpt", "dec 1 dryrun", f->dec[1].dryrun, 1);
	WANT_STR("good rcpt", "dec 1 reply", f->dec[1].reply,
	    "421 4.7.0 Would close");
	WANT_ACT("good rcpt: dec 2", f->dec[2].action, ACTION_DISCARD);
	WANT_ACT("good rcpt: dec 3", f->dec[3].action, ACTION_TAG);
	WANT_INT("good rcpt", "dec 3 dryrun", f->dec[3].dryrun, 1);
	WANT_INT("good rcpt", "tags (dry-run adds none)", f->s.ntags, 0);
	/* the dry-run 421 did not close the session */
	WANT_ACT("next rcpt", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	WANT_INT("next rcpt", "closed_by", f->s.closed_by != NULL, 0);

	f->ndec = 0;
	set_rcpt(&f->s, "<c@bad.example>", 0);
	WANT_ACT("bad rcpt", ev(f, STAGE_ENVRCPT, T0), ACTION_TEMPFAIL);
	WANT_STR("bad rcpt", "rule", rule_of(f), "real");
	WANT_STR("bad rcpt", "reply", rep(f), "450 4.7.1 Later");
	WANT_INT("bad rcpt", "decisions", f->ndec, 5);
	WANT_STR("bad rcpt", "last decision", f->dec[4].rule, "real");
	WANT_INT("bad rcpt", "last decision dryrun", f->dec[4].dryrun, 0);

	r = rule_named(f, "dry-reject");
	WANT_INT("dry-reject", "hits", atomic_load(&r->hits), 3);
	WANT_INT("dry-reject", "enforced", atomic_load(&r->enforced), 0);
	WANT_INT("dry-reject", "dryrun", atomic_load(&r->dryrun), 3);
	r = rule_named(f, "real");
	WANT_INT("real", "hits", atomic_load(&r->hits), 1);
	WANT_INT("real", "enforced", atomic_load(&r->enforced), 1);
	WANT_INT("real", "dryrun", atomic_load(&r->dryrun), 0);
	fx_free(f);
}

/* rules.mode = dry-run by default; a rule may still enforce */
static void
test_dryrun_default_mode(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_new();
	f->opts.default_mode = MODE_DRYRUN;
	fx_load(f, "rules = ("
	    "{ name = \"d\"; stage = \"envfrom\"; action = \"reject\"; },"
	    "{ name = \"e\"; stage = \"envfrom\"; mode = \"enforce\"; match = "
	    "{ sender = \"x@y\"; }; action = \"discard\"; } );");
	set_sender(&f->s, "<a@b>");
	WANT_ACT("default dry-run", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	WANT_INT("default dry-run", "dryrun decision", f->ndec == 1 &&
	    f->dec[0].dryrun == 1, 1);
	set_sender(&f->s, "<x@y>");
	WANT_ACT("enforced override", ev(f, STAGE_ENVFROM, T0),
	    ACTION_DISCARD);
	fx_free(f);
}

/* a dry-run limit: would-be verdict when over, charges as usual */
static void
test_dryrun_limit(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_with("rules = ( { name = \"dl\"; stage = \"envfrom\"; mode = "
	    "\"dry-run\"; limit = { key = \"client_ip\"; rate = \"1/1m\"; }; "
	    "action = \"tempfail\"; reply = \"450 4.7.1 retry in "
	    "%{retry_after}s\"; } );");
	set_client(&f->s, "192.0.2.1");
	set_sender(&f->s, "<a@b>");
	WANT_ACT("dry limit #1", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	WANT_INT("dry limit #1", "decisions", f->ndec, 0);
	WANT_ACT("dry limit #2", ev(f, STAGE_ENVFROM, T0 + 15 * S),
	    ACTION_CONTINUE);
	WANT_INT("dry limit #2", "decisions", f->ndec, 1);
	WANT_STR("dry limit #2", "would-be reply", f->dec[0].reply,
	    "450 4.7.1 retry in 45s");
	fx_free(f);
}

/* ==== on_error with the failing store ==== */

static const char onerr_fmt[] = "rules = ("
	"{ name = \"lim\"; stage = \"envrcpt\"; limit = { key = \"client_ip\"; "
	"rate = \"3/1m\"; %s }; action = \"tempfail\"; reply = \"450 4.7.1 "
	"retry in %%{retry_after}s\"; },"
	"{ name = \"after\"; stage = \"envrcpt\"; match = { rcpt_domain = "
	"\"after.example\"; }; action = \"reject\"; } );";

static struct fx *
fx_failing(const char *on_error, enum on_error def)
{
	char text[1024];
	struct fx *f = fx_new();

	f->opts.default_on_error = def;
	snprintf(text, sizeof(text), onerr_fmt, on_error);
	fx_load(f, text);
	f->ctx.store = store_fail_new();
	assert_non_null(f->ctx.store);
	set_client(&f->s, "192.0.2.1");
	set_sender(&f->s, "<a@b.example>");
	set_rcpt(&f->s, "<c@d.example>", 0);
	return f;
}

/* accept: the rule does not fire; the hook says why */
static void
test_on_error(void **state)
{
	struct fx *f;
	char row[64];
	int i;

	(void)state;
	/* accept: the rule does not fire; the hook says why */
	f = fx_failing("on_error = \"accept\";", ONERR_TEMPFAIL);
	for (i = 0; i < 5; i++) {
		snprintf(row, sizeof(row), "accept #%d", i + 1);
		WANT_ACT(row, ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
		WANT_INT(row, "store_error", f->out.store_error, 0);
	}
	WANT_INT("accept", "decisions", f->ndec, 5);
	WANT_STR("accept", "decision rule", f->dec[0].rule, "lim");
	WANT_ACT("accept: decision", f->dec[0].action, ACTION_CONTINUE);
	WANT_INT("accept", "decision store_error", f->dec[0].store_error, 1);
	WANT_INT("accept", "decision dryrun", f->dec[0].dryrun, 0);
	WANT_INT("accept", "hits", atomic_load(&rule_named(f, "lim")->hits), 0);
	/* evaluation goes on after it */
	set_rcpt(&f->s, "<c@after.example>", 0);
	WANT_ACT("accept, later rule", ev(f, STAGE_ENVRCPT, T0),
	    ACTION_REJECT);
	fx_free(f);
}

/* tempfail: 451 4.3.0; store.on_error is the default */
static void
test_on_error_tempfail(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_failing("on_error = \"tempfail\";", ONERR_ACCEPT);
	WANT_ACT("tempfail", ev(f, STAGE_ENVRCPT, T0), ACTION_TEMPFAIL);
	WANT_STR("tempfail", "rule", rule_of(f), "lim");
	WANT_INT("tempfail", "store_error", f->out.store_error, 1);
	WANT_STR("tempfail", "code", f->out.reply.rcode, "451");
	WANT_STR("tempfail", "enhanced code", f->out.reply.xcode, "4.3.0");
	WANT_INT("tempfail", "closes", f->out.closes, 0);
	WANT_INT("tempfail", "decisions", f->ndec, 1);
	WANT_INT("tempfail", "decision store_error", f->dec[0].store_error, 1);
	WANT_ACT("tempfail: decision", f->dec[0].action, ACTION_TEMPFAIL);
	WANT_SUB("tempfail", "decision reply", f->dec[0].reply, "451 4.3.0");
	fx_free(f);

	/* store.on_error is the default for rules that do not say */
	f = fx_failing("", ONERR_TEMPFAIL);
	WANT_ACT("default tempfail", ev(f, STAGE_ENVRCPT, T0),
	    ACTION_TEMPFAIL);
	WANT_STR("default tempfail", "code", f->out.reply.rcode, "451");
	fx_free(f);
	f = fx_failing("", ONERR_ACCEPT);
	WANT_ACT("default accept", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	fx_free(f);
}

/* memory: the fallback store enforces the same limit */
static void
test_on_error_memory(void **state)
{
	struct fx *f;
	char row[64];
	int i;

	(void)state;
	f = fx_failing("on_error = \"memory\";", ONERR_ACCEPT);
	f->fallback = store_memory_new(100);
	f->ctx.fallback = f->fallback;
	for (i = 0; i < 3; i++) {
		snprintf(row, sizeof(row), "memory #%d", i + 1);
		WANT_ACT(row, ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	}
	WANT_ACT("memory #4", ev(f, STAGE_ENVRCPT, T0), ACTION_TEMPFAIL);
	WANT_STR("memory #4", "reply", rep(f), "450 4.7.1 retry in 20s");
	WANT_ACT("memory #5 at +20s", ev(f, STAGE_ENVRCPT, T0 + 20 * S),
	    ACTION_CONTINUE);
	fx_free(f);

	/* memory without a fallback store: as accept */
	f = fx_failing("on_error = \"memory\";", ONERR_TEMPFAIL);
	for (i = 0; i < 5; i++)
		WANT_ACT("memory, no fallback", ev(f, STAGE_ENVRCPT, T0),
		    ACTION_CONTINUE);
	fx_free(f);
}

/* The fallback store's charges are refunded like the main store's. */
static void
test_on_error_memory_refund(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_new();
	fx_load(f, "rules = ("
	    "{ name = \"per-ip\"; stage = \"envrcpt\"; limit = { key = "
	    "\"client_ip\"; rate = \"2/1h\"; on_error = \"memory\"; }; "
	    "action = \"tempfail\"; },"
	    "{ name = \"per-rcpt\"; stage = \"envrcpt\"; limit = { key = "
	    "\"rcpt\"; rate = \"1/1h\"; on_error = \"memory\"; }; "
	    "action = \"reject\"; } );");
	f->ctx.store = store_fail_new();
	f->fallback = store_memory_new(100);
	f->ctx.fallback = f->fallback;
	set_client(&f->s, "192.0.2.1");
	set_sender(&f->s, "<a@b.example>");
	set_rcpt(&f->s, "<x@d.example>", 0);
	WANT_ACT("x #1", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	WANT_ACT("x #2", ev(f, STAGE_ENVRCPT, T0), ACTION_REJECT);
	WANT_ACT("x #3", ev(f, STAGE_ENVRCPT, T0), ACTION_REJECT);
	/* per-ip: only x #1 kept its charge, so y passes */
	set_rcpt(&f->s, "<y@d.example>", 0);
	WANT_ACT("y #1", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	fx_free(f);
}

/* ==== 421 closes the session ==== */

static void
test_421_closes(void **state)
{
	static const enum stage later[] = { STAGE_ENVRCPT, STAGE_DATA,
	    STAGE_HEADER, STAGE_EOM, STAGE_UNKNOWN, STAGE_ENVFROM,
	    STAGE_HELO, STAGE_CONNECT };
	struct fx *f;
	char row[64];
	size_t k;
	int i;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"ok-sender\"; stage = \"envfrom\"; action = \"accept\"; },"
	    "{ name = \"harvest\"; stage = \"envrcpt\"; match = { "
	    "bad_rcpt_count_over = 2; }; action = \"tempfail\"; reply = "
	    "\"421 4.7.0 Too many errors from %{client_ip}\"; },"
	    "{ name = \"log-all\"; stage = \"unknown\"; action = \"log\"; } );");
	set_client(&f->s, "192.0.2.1");
	for (i = 1; i <= 3; i++) {
		snprintf(row, sizeof(row), "bad rcpt %d", i);
		set_rcpt(&f->s, "<nobody@d.example>", 1);
		WANT_ACT(row, ev(f, STAGE_ENVRCPT, T0), i < 3 ?
		    ACTION_CONTINUE : ACTION_TEMPFAIL);
		WANT_INT(row, "closes", f->out.closes, i == 3);
	}
	WANT_STR("421", "reply", rep(f),
	    "421 4.7.0 Too many errors from 192.0.2.1");
	WANT_INT("421", "decisions", f->ndec, 1);
	sess_reset_msg(&f->s);
	set_sender(&f->s, "<a@b.example>");
	set_rcpt(&f->s, "<ok@d.example>", 0);
	sess_set_command(&f->s, "EXPN x", 6);
	for (k = 0; k < NELEM(later); k++) {
		snprintf(row, sizeof(row), "after 421: %s",
		    stage_name(later[k]));
		WANT_ACT(row, ev(f, later[k], T0 + S), ACTION_TEMPFAIL);
		WANT_INT(row, "closes", f->out.closes, 1);
		WANT_STR(row, "rule", rule_of(f), "harvest");
		WANT_STR(row, "code", f->out.reply.rcode, "421");
		WANT_STR(row, "enhanced", f->out.reply.xcode, "4.7.0");
		WANT_STR(row, "reply", rep(f),
		    "421 4.7.0 Too many errors from 192.0.2.1");
	}
	/*
	 * Nothing else ran (no accept at envfrom, no log at unknown), but
	 * each repeated 421 is a decision of its own for the log (§5).
	 */
	WANT_INT("after 421", "decisions", f->ndec, 1 + NELEM(later));
	for (k = 1; k < f->ndec; k++) {
		snprintf(row, sizeof(row), "after 421: decision %zu", k);
		WANT_STR(row, "rule", f->dec[k].rule, "harvest");
		WANT_ACT(row, f->dec[k].action, ACTION_TEMPFAIL);
		WANT_INT(row, "stage", f->dec[k].stage, later[k - 1]);
	}
	WANT_INT("after 421", "hits of harvest", atomic_load(&rule_named(f,
	    "harvest")->hits), 1);
	WANT_INT("after 421", "hits of ok-sender", atomic_load(&rule_named(f,
	    "ok-sender")->hits), 0);
	fx_free(f);
}

/* 421 at connect, from a limit: the retry hint is kept */
static void
test_421_at_connect(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_with("rules = ( { name = \"c421\"; stage = \"connect\"; "
	    "limit = { key = \"client_net\"; rate = \"1/1h\"; }; action = "
	    "\"tempfail\"; reply = \"421 4.7.0 Busy, retry in "
	    "%{retry_after}s\"; } );");
	set_client(&f->s, "192.0.2.1");
	WANT_ACT("c421 #1", ev(f, STAGE_CONNECT, T0), ACTION_CONTINUE);
	sess_init(&f->s);
	set_client(&f->s, "192.0.2.2");
	WANT_ACT("c421 #2", ev(f, STAGE_CONNECT, T0 + 600 * S),
	    ACTION_TEMPFAIL);
	WANT_INT("c421 #2", "closes", f->out.closes, 1);
	WANT_STR("c421 #2", "reply", rep(f), "421 4.7.0 Busy, retry in 3000s");
	WANT_ACT("c421 helo", ev(f, STAGE_HELO, T0 + 601 * S),
	    ACTION_TEMPFAIL);
	WANT_STR("c421 helo", "reply", rep(f),
	    "421 4.7.0 Busy, retry in 3000s");
	fx_free(f);
}

/* ==== hostile values in templates ==== */

static void
check_clean_reply(const char *row, const struct reply_out *o)
{
	size_t i, total = 0;
	const unsigned char *p;

	if (o->nlines < 1 || o->nlines > REPLY_LINES_MAX)
		fail_msg("%s: nlines: got %zu, want 1..%d", row, o->nlines,
		    REPLY_LINES_MAX);
	for (i = 0; i < o->nlines; i++) {
		if (strlen(o->line[i]) > REPLY_TEXT_MAX)
			fail_msg("%s: line %zu: got %zu bytes, want <= %d", row,
			    i, strlen(o->line[i]), REPLY_TEXT_MAX);
		total += strlen(o->line[i]);
		for (p = (const unsigned char *)o->line[i]; *p != '\0'; p++)
			if (*p < 0x20 || *p > 0x7e)
				fail_msg("%s: line %zu: byte 0x%02x, want "
				    "printable ASCII", row, i, *p);
	}
	if (total > REPLY_OUT_MAX)
		fail_msg("%s: %zu bytes of text, want <= %d", row, total,
		    REPLY_OUT_MAX);
}

static void
test_hostile_templates(void **state)
{
	static char big[10240];
	char hostile[512];
	struct fx *f;
	size_t i;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"h\"; stage = \"envrcpt\"; action = \"reject\"; "
	    "reply = [\"550-5.7.1 from <%{sender}> helo %{helo}\", "
	    "\"550 5.7.1 to <%{rcpt}> user %{auth_user} name "
	    "%{client_name} rule %{rule}\"]; },"
	    "{ name = \"t\"; stage = \"envfrom\"; action = \"tag\"; "
	    "add_header = \"X-From: %{sender} %{helo}\"; } );");
	snprintf(hostile, sizeof(hostile), "<%%{rcpt}%%%%s%%n\r\n"
	    "RCPT TO:<x>\r\n\x01\xff\x7f%%>");
	set_client(&f->s, "192.0.2.1");
	set_sender(&f->s, hostile);
	sess_set_helo(&f->s, "\r\n250 ok\r\n%{sender}\x01", 19);
	set_rcpt(&f->s, "<r@d.example>", 0);
	sess_set_auth(&f->s, "u\rser", 5, "PLAIN", 5);
	WANT_ACT("hostile", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	WANT_ACT("hostile", ev(f, STAGE_ENVRCPT, T0), ACTION_REJECT);
	check_clean_reply("hostile", &f->out.reply);
	/* values are not expanded again: %{rcpt} inside a value stays */
	WANT_SUB("hostile", "reply", rep(f), "from <%{rcpt}%%s%n");
	WANT_SUB("hostile", "reply", rep(f), "to <r@d.example>");
	WANT_SUB("hostile", "reply", rep(f), "helo ");
	if (strstr(rep(f), "%{sender}") == NULL)
		fail_msg("hostile: reply: %%{sender} in the HELO was expanded:"
		    " %s", rep(f));
	WANT_SUB("hostile", "reply", rep(f), "rule h");
	WANT_STR("hostile", "code", f->out.reply.rcode, "550");
	/* the tag is one header value: no CR/LF, no control bytes */
	WANT_INT("hostile", "ntags", f->s.ntags, 1);
	for (i = 0; f->s.tags[0].hdr_value[i] != '\0'; i++)
		if ((unsigned char)f->s.tags[0].hdr_value[i] < 0x20 ||
		    (unsigned char)f->s.tags[0].hdr_value[i] > 0x7e)
			fail_msg("hostile tag: byte 0x%02x at %zu", (unsigned)
			    (unsigned char)f->s.tags[0].hdr_value[i], i);

	/* 10 KB values: the setters cut, the reply stays bounded */
	memset(big, 'A', sizeof(big));
	for (i = 0; i < sizeof(big); i += 97)
		big[i] = (char)(i % 5 == 0 ? '\n' : i % 5 == 1 ? '%' :
		    i % 5 == 2 ? '\xff' : i % 5 == 3 ? ' ' : '\r');
	sess_reset_msg(&f->s);
	sess_set_sender(&f->s, big, sizeof(big));
	sess_set_helo(&f->s, big, sizeof(big));
	sess_set_rcpt(&f->s, big, sizeof(big), 0);
	sess_set_client_name(&f->s, big, sizeof(big));
	sess_set_auth(&f->s, big, sizeof(big), big, sizeof(big));
	WANT_INT("10 KB", "truncated bits", f->s.truncated & (SF_SENDER |
	    SF_HELO | SF_RCPT | SF_CLIENT_NAME | SF_AUTH_USER), SF_SENDER |
	    SF_HELO | SF_RCPT | SF_CLIENT_NAME | SF_AUTH_USER);
	WANT_INT("10 KB", "sender length", strlen(f->s.sender),
	    SESS_ADDR_MAX - 1);
	WANT_ACT("10 KB", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	WANT_ACT("10 KB", ev(f, STAGE_ENVRCPT, T0), ACTION_REJECT);
	check_clean_reply("10 KB", &f->out.reply);
	WANT_INT("10 KB", "tags", f->s.ntags, 1);
	if (strlen(f->s.tags[0].hdr_value) >= SESS_TAG_MAX)
		fail_msg("10 KB: tag value %zu bytes", strlen(
		    f->s.tags[0].hdr_value));
	fx_free(f);
}

/*
 * A tag template whose expansion wraps to three lines or more. Found by
 * fuzz_session (tests/fuzz/corpus/session/long-tag): joining the third
 * line underflowed the room left in the 512-byte tag and overran it.
 * Each value is cut to REPLY_VAR_MAX (256) bytes; the expansion wraps at
 * the spaces between values (REPLY_TEXT_MAX 490), and the lines join
 * again with one space up to SESS_TAG_MAX - 1 = 511 bytes:
 * 256 's', a space, 254 'r'.
 */
static void
test_tag_long_values(void **state)
{
	char sender[320], rcpt[320], other[300], want[SESS_TAG_MAX];
	struct fx *f;

	(void)state;
	f = fx_with("rules = ( { name = \"t\"; stage = \"envrcpt\"; "
	    "action = \"tag\"; add_header = \"X-Long: %{sender} %{rcpt} "
	    "%{helo} %{client_name} %{auth_user}\"; } );");
	memset(sender, 's', 300);
	memcpy(sender + 300, "@example.org", 13);
	memset(rcpt, 'r', 300);
	memcpy(rcpt + 300, "@example.com", 13);
	memset(other, 'h', sizeof(other));
	set_client(&f->s, "192.0.2.1");
	sess_set_client_name(&f->s, other, sizeof(other));
	sess_set_helo(&f->s, other, sizeof(other));
	sess_set_auth(&f->s, other, sizeof(other), "PLAIN", 5);
	set_sender(&f->s, sender);
	set_rcpt(&f->s, rcpt, 0);
	WANT_ACT("long tag", ev(f, STAGE_ENVRCPT, T0), ACTION_CONTINUE);
	WANT_INT("long tag", "ntags", f->s.ntags, 1);
	memset(want, 's', 256);
	want[256] = ' ';
	memset(want + 257, 'r', 254);
	want[511] = '\0';
	WANT_STR("long tag", "tag value", f->s.tags[0].hdr_value, want);
	fx_free(f);
}

/* ==== explain: the trace hook ==== */

static void
test_trace(void **state)
{
	static const char *const names[] = { "t-nomatch", "t-limit",
	    "t-log" };
	struct fx *f;
	char row[64];
	int pass;
	size_t i;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"t-nomatch\"; stage = \"envfrom\"; match = { port = "
	    "[465, 587]; }; action = \"reject\"; },"
	    "{ name = \"t-limit\"; stage = \"envfrom\"; match = { "
	    "sender_domain = \"b.example\"; }; limit = { key = \"sender\"; "
	    "rate = \"1/1m\"; }; action = \"tempfail\"; },"
	    "{ name = \"t-log\"; stage = \"envfrom\"; action = \"log\"; },"
	    "{ name = \"t-other-stage\"; stage = \"envrcpt\"; action = "
	    "\"reject\"; } );");
	f->s.port = 25;
	set_client(&f->s, "192.0.2.1");
	set_sender(&f->s, "<a@b.example>");
	f->ctx.hooks.trace = on_trace;
	for (pass = 0; pass < 3; pass++) {
		snprintf(row, sizeof(row), "trace #%d", pass + 1);
		f->ntr = 0;
		WANT_ACT(row, ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
		WANT_INT(row, "trace calls", f->ntr, 3);
		for (i = 0; i < 3 && i < f->ntr; i++)
			WANT_STR(row, "traced rule", f->tr[i].rule, names[i]);
		WANT_INT(row, "t-nomatch matched", f->tr[0].matched, 0);
		WANT_SUB(row, "t-nomatch why", f->tr[0].why, "port=25");
		/* a limit rule within its limit does not fire: "no" */
		WANT_INT(row, "t-limit matched", f->tr[1].matched, 0);
		WANT_SUB(row, "t-limit why", f->tr[1].why, "b.example");
		WANT_SUB(row, "t-limit why", f->tr[1].why, "within the limit");
		WANT_INT(row, "t-log matched", f->tr[2].matched, 1);
	}
	/* nothing was charged: the real evaluations see a fresh counter */
	f->ctx.hooks.trace = NULL;
	WANT_ACT("real #1", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	WANT_ACT("real #2", ev(f, STAGE_ENVFROM, T0), ACTION_TEMPFAIL);
	f->ctx.hooks.trace = on_trace;
	f->ntr = 0;
	WANT_ACT("trace over", ev(f, STAGE_ENVFROM, T0 + 15 * S),
	    ACTION_TEMPFAIL);
	WANT_INT("trace over", "trace calls", f->ntr, 2);
	WANT_INT("trace over", "t-limit matched", f->tr[1].matched, 1);
	WANT_SUB("trace over", "t-limit why", f->tr[1].why, "retry in 45s");
	f->ctx.hooks.trace = NULL;
	WANT_ACT("real #3 at +60s", ev(f, STAGE_ENVFROM, T0 + 60 * S),
	    ACTION_CONTINUE);
	fx_free(f);
}

/* a key part without value is reported, not charged */
static void
test_trace_no_value(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_with("rules = ( { name = \"t-user\"; stage = \"envfrom\"; "
	    "limit = { key = \"auth_user\"; rate = \"1/1h\"; }; action = "
	    "\"reject\"; } );");
	f->ctx.hooks.trace = on_trace;
	set_sender(&f->s, "<a@b.example>");
	WANT_ACT("no value", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	WANT_INT("no value", "trace calls", f->ntr, 1);
	WANT_INT("no value", "matched", f->tr[0].matched, 0);
	WANT_SUB("no value", "why", f->tr[0].why, "no value");
	fx_free(f);
}

/* explain never charges, not even the on_error=memory fallback */
static void
test_trace_fallback(void **state)
{
	struct fx *f;

	(void)state;
	f = fx_new();
	fx_load(f, "rules = ( { name = \"t-mem\"; stage = \"envfrom\"; "
	    "limit = { key = \"client_ip\"; rate = \"1/1h\"; on_error = "
	    "\"memory\"; }; action = \"reject\"; } );");
	f->ctx.store = store_fail_new();
	f->fallback = store_memory_new(100);
	f->ctx.fallback = f->fallback;
	set_client(&f->s, "192.0.2.1");
	set_sender(&f->s, "<a@b.example>");
	f->ctx.hooks.trace = on_trace;
	WANT_ACT("trace memory #1", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	WANT_ACT("trace memory #2", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	f->ctx.hooks.trace = NULL;
	WANT_ACT("real memory #1", ev(f, STAGE_ENVFROM, T0), ACTION_CONTINUE);
	WANT_ACT("real memory #2", ev(f, STAGE_ENVFROM, T0), ACTION_REJECT);
	fx_free(f);
}

/* ==== engine_limit_key ==== */

static const struct lk_case {
	const char	*rule;
	struct sx	x;
	const char	*want;		/* NULL: -1 */
} lk_cases[] = {
	{ "k-ip", { .ip = "192.0.2.1" }, "k-ip|192.0.2.1" },
	{ "k-ip", { .ip = "[::ffff:192.0.2.1]" }, "k-ip|192.0.2.1" },
	{ "k-ip", { .ip = "2001:DB8:0:0:0:0:0:1" }, "k-ip|2001:db8::1" },
	{ "k-ip", { .ip = NULL }, NULL },
	{ "k-net", { .ip = "192.0.2.77" }, "k-net|192.0.2.0/24" },
	{ "k-net", { .ip = "2001:db8:1:2:3:4:5:6" },
	    "k-net|2001:db8:1:2::/64" },
	{ "k-net16", { .ip = "192.0.2.77" }, "k-net16|192.0.0.0/16" },
	{ "k-net16", { .ip = "2001:db8:1:2:3:4:5:6" },
	    "k-net16|2001:db8:1::/48" },
	{ "k-helo-sender", { .helo = "MX.Example.COM",
	    .sender = "<A|B%c d@X.org>" },
	    "k-helo-sender|mx.example.com|a%7cb%25c%20d@x.org" },
	{ "k-helo-sender", { .helo = "h\x01\xff\x7f", .sender = "<>" },
	    "k-helo-sender|h%01%ff%7f|<>" },
	{ "k-helo-sender", { .helo = "", .sender = "<a@b>" }, NULL },
	{ "k-helo-sender", { .helo = "h" }, NULL },	/* no MAIL FROM */
	{ "k-all", { .ip = "192.0.2.1", .helo = "h", .sender = "<a@B.org>",
	    .rcpt = "<C@d.NET>", .user = "Alice" },
	    "k-all|192.0.2.1|192.0.2.0/24|h|a@b.org|b.org|c@d.net|d.net|"
	    "alice" },
	{ "k-all", { .ip = "192.0.2.1", .helo = "h", .sender = "<a@B.org>",
	    .rcpt = "<C@d.NET>" }, NULL },
	{ "k-shared", { .rcpt = "<x@Example.com>" }, "Shared.Ctr|example.com" },
};

static void
test_limit_key_strings(void **state)
{
	char buf[STORE_KEY_MAX];
	struct fx *f;
	size_t i;
	int n;

	(void)state;
	f = fx_with("rules = ("
	    "{ name = \"k-ip\"; stage = \"connect\"; limit = { key = "
	    "\"client_ip\"; rate = \"1/1s\"; }; action = \"reject\"; },"
	    "{ name = \"k-net\"; stage = \"connect\"; limit = { key = "
	    "\"client_net\"; rate = \"1/1s\"; }; action = \"reject\"; },"
	    "{ name = \"k-net16\"; stage = \"connect\"; limit = { key = "
	    "\"client_net\"; ipv4_prefix = 16; ipv6_prefix = 48; rate = "
	    "\"1/1s\"; }; action = \"reject\"; },"
	    "{ name = \"k-helo-sender\"; stage = \"envfrom\"; limit = { key = "
	    "[\"helo\", \"sender\"]; rate = \"1/1s\"; }; action = "
	    "\"reject\"; },"
	    "{ name = \"k-all\"; stage = \"envrcpt\"; limit = { key = "
	    "[\"client_ip\", \"client_net\", \"helo\", \"sender\", "
	    "\"sender_domain\", \"rcpt\", \"rcpt_domain\", \"auth_user\"]; "
	    "rate = \"1/1s\"; }; action = \"reject\"; },"
	    "{ name = \"k-shared\"; stage = \"envrcpt\"; limit = { key = "
	    "\"rcpt_domain\"; counter = \"Shared.Ctr\"; rate = \"1/1s\"; }; "
	    "action = \"reject\"; } );");
	for (i = 0; i < NELEM(lk_cases); i++) {
		char row[128];

		snprintf(row, sizeof(row), "%s #%zu", lk_cases[i].rule, i);
		sx_apply(&f->s, &lk_cases[i].x);
		memset(buf, 'Z', sizeof(buf));
		n = engine_limit_key(rule_named(f, lk_cases[i].rule), &f->s,
		    buf, sizeof(buf));
		if (lk_cases[i].want == NULL) {
			WANT_INT(row, "return", n, -1);
			continue;
		}
		WANT_INT(row, "return", n, strlen(lk_cases[i].want));
		WANT_STR(row, "key", buf, lk_cases[i].want);
	}
	/* bounds: a key needs ENGINE_KEY_MAX bytes of room, whatever its size */
	sx_apply(&f->s, &(struct sx){ .ip = "192.0.2.1" });
	memset(buf, 'Z', sizeof(buf));
	WANT_INT("len max", "return", engine_limit_key(rule_named(f, "k-ip"),
	    &f->s, buf, ENGINE_KEY_MAX), 14);
	WANT_STR("len max", "key", buf, "k-ip|192.0.2.1");
	memset(buf, 'Z', sizeof(buf));
	WANT_INT("len max-1", "return", engine_limit_key(rule_named(f, "k-ip"),
	    &f->s, buf, ENGINE_KEY_MAX - 1), -1);
	WANT_INT("len max-1", "nothing written", buf[0], 'Z');
	WANT_INT("len 4", "return", engine_limit_key(rule_named(f, "k-ip"),
	    &f->s, buf, 4), -1);
	/* a rule without a limit has no key */
	fx_free(f);
	f = fx_with("rules = ( { name = \"nolim\"; stage = \"connect\"; "
	    "action = \"reject\"; } );");
	WANT_INT("no limit", "return", engine_limit_key(rule_named(f,
	    "nolim"), &f->s, buf, sizeof(buf)), -1);
	fx_free(f);
}

/* ==== reply variables ==== */

static void
test_reply_vars(void **state)
{
	struct reply_vars v;
	char retry[24];
	struct sess s;

	(void)state;
	sess_init(&s);
	set_client(&s, "192.0.2.1");
	sess_set_client_name(&s, "mx.example.com", 14);
	sess_set_helo(&s, "helo.example", 12);
	set_sender(&s, "<>");
	set_rcpt(&s, "<r@d.example>", 0);
	sess_set_auth(&s, "alice", 5, "PLAIN", 5);
	sess_set_queue_id(&s, "4XyZ1abc", 8);
	engine_reply_vars(&s, NULL, 20 * S + 1, &v, retry, sizeof(retry));
	WANT_STR("vars", "client_ip", v.v[RVAR_CLIENT_IP], "192.0.2.1");
	WANT_STR("vars", "client_name", v.v[RVAR_CLIENT_NAME],
	    "mx.example.com");
	WANT_STR("vars", "helo", v.v[RVAR_HELO], "helo.example");
	WANT_STR("vars", "sender (null)", v.v[RVAR_SENDER], "<>");
	WANT_STR("vars", "rcpt", v.v[RVAR_RCPT], "r@d.example");
	WANT_STR("vars", "auth_user", v.v[RVAR_AUTH_USER], "alice");
	WANT_STR("vars", "queue_id", v.v[RVAR_QUEUE_ID], "4XyZ1abc");
	WANT_STR("vars", "retry_after (rounded up)", v.v[RVAR_RETRY_AFTER],
	    "21");
	WANT_STR("vars", "rule (none)", v.v[RVAR_RULE] ? v.v[RVAR_RULE] : "",
	    "");
	engine_reply_vars(&s, NULL, 0, &v, retry, sizeof(retry));
	WANT_STR("no retry", "retry_after", v.v[RVAR_RETRY_AFTER], "0");
	set_sender(&s, "<a@b.example>");
	engine_reply_vars(&s, NULL, 0, &v, retry, sizeof(retry));
	WANT_STR("sender", "sender", v.v[RVAR_SENDER], "a@b.example");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_conditions, teardown),
		cmocka_unit_test_teardown(test_rcpt_count_over, teardown),
		cmocka_unit_test_teardown(test_bad_rcpt_and_unknown_count_over, teardown),
		cmocka_unit_test_teardown(test_sender_owned, teardown),
		cmocka_unit_test_teardown(test_first_terminal_wins, teardown),
		cmocka_unit_test_teardown(test_non_terminal_only, teardown),
		cmocka_unit_test_teardown(test_rule_order, teardown),
		cmocka_unit_test_teardown(test_accept_connection, teardown),
		cmocka_unit_test_teardown(test_accept_message, teardown),
		cmocka_unit_test_teardown(test_quarantine_and_tags, teardown),
		cmocka_unit_test_teardown(test_limit_rates, teardown),
		cmocka_unit_test_teardown(test_limit_key_parts, teardown),
		cmocka_unit_test_teardown(test_limit_key_without_value, teardown),
		cmocka_unit_test_teardown(test_limit_refund, teardown),
		cmocka_unit_test_teardown(test_limit_refund_after_discard,
		    teardown),
		cmocka_unit_test_teardown(test_limit_refund_plain_reject,
		    teardown),
		cmocka_unit_test_teardown(test_limit_namespaces, teardown),
		cmocka_unit_test_teardown(test_limit_shared_counter_peek, teardown),
		cmocka_unit_test_teardown(test_limit_many_long_keys, teardown),
		cmocka_unit_test_teardown(test_limit_key_digest, teardown),
		cmocka_unit_test_teardown(test_limit_wide_keys, teardown),
		cmocka_unit_test_teardown(test_dryrun, teardown),
		cmocka_unit_test_teardown(test_dryrun_default_mode, teardown),
		cmocka_unit_test_teardown(test_dryrun_limit, teardown),
		cmocka_unit_test_teardown(test_on_error, teardown),
		cmocka_unit_test_teardown(test_on_error_tempfail, teardown),
		cmocka_unit_test_teardown(test_on_error_memory, teardown),
		cmocka_unit_test_teardown(test_on_error_memory_refund, teardown),
		cmocka_unit_test_teardown(test_421_closes, teardown),
		cmocka_unit_test_teardown(test_421_at_connect, teardown),
		cmocka_unit_test_teardown(test_hostile_templates, teardown),
		cmocka_unit_test_teardown(test_tag_long_values, teardown),
		cmocka_unit_test_teardown(test_trace, teardown),
		cmocka_unit_test_teardown(test_trace_no_value, teardown),
		cmocka_unit_test_teardown(test_trace_fallback, teardown),
		cmocka_unit_test_teardown(test_limit_key_strings, teardown),
		cmocka_unit_test_teardown(test_reply_vars, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

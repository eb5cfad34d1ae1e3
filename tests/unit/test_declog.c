/*
 * test_declog.c - unit tests for declog.c: the exact decision line of
 * DESIGN.md §5 for each kind of decision (reject, tempfail, dry-run,
 * log, tag, accept, discard, quarantine, the store-error line), each
 * field present only when known (client, port, helo, from incl. the null
 * sender, to only at envrcpt, user only when authenticated, command only
 * at unknown), escaping of client text (log.h: printable kept, '\\' and
 * '"' backslashed, other bytes \xNN), values the session cut ("..."
 * inside the brackets), a bounded huge reply, and tiny buffers.
 * With daemon.log_privacy (declog_format_priv): IP, from, to and user
 * as digests, the null sender kept, the values also hidden inside the
 * HELO and the reply text: a rule's reply is its template expanded with
 * the digests (issue #8: values the client's reply wrapped or cut), HELO
 * literals compared as addresses and names embedding the client's
 * address; and every client-supplied field fed control bytes, 8-bit
 * bytes and 10 KB: one line, printable, bounded.
 * Expected lines are written by hand from DESIGN.md §5 and README "Logs"
 * (both example lines are rows here), never from declog.c's output; the
 * digests were computed with Python's hmac module (HMAC-SHA256 of "log:"
 * and the lower-cased value, key "k3y", first 16 hex digits).
 * Sessions come from the sess_set_* setters, replies from reply_out_set,
 * rules are zeroed structs with a name.
 * Threads: none. Memory: stack only (ASan checks the canaries' bounds).
 */
#include "testutil.h"

#include "declog.h"
#include "engine.h"
#include "log.h"
#include "reply.h"
#include "session.h"

#define CANARY	'\xa5'
#define LINE	(LOG_LINE_MAX + 64)

/* Shows long lines from a bit before the first difference. */
static void
want_line(const char *row, const char *got, const char *want)
{
	size_t at, from;

	if (strcmp(got, want) == 0)
		return;
	if (strlen(got) < 200 && strlen(want) < 200)
		fail_msg("%s: got\n  \"%s\"\nwant\n  \"%s\"", row, got, want);
	for (at = 0; got[at] == want[at]; at++)
		;
	from = at > 40 ? at - 40 : 0;
	fail_msg("%s: differs at byte %zu (got length %zu, want %zu): got "
	    "\"%.120s\", want \"%.120s\"", row, at, strlen(got), strlen(want),
	    got + from, want + from);
}

/* --- building sessions and decisions ------------------------------ */

#define NONE	((const char *)0)

/* What a row sets; NONE leaves the field unset. */
struct in {
	const char	*qid;
	const char	*ip;
	unsigned	cport;
	int		port;
	const char	*helo;
	const char	*from;		/* as the MTA sends it: "<a@b>", "<>" */
	const char	*rcpt;
	const char	*user;
	const char	*cmd;
};

struct dec_in {
	const char	*rule;
	enum stage	stage;
	enum action	action;
	int		dryrun, store_error;
	int		code, xc, xs, xd;	/* reply; code 0: none */
	const char	*text;
};

static void
setstr(void (*fn)(struct sess *, const char *, size_t), struct sess *s,
    const char *v)
{
	if (v != NONE)
		fn(s, v, strlen(v));
}

static void
build(struct sess *s, const struct in *in)
{
	sess_init(s);
	if (in->ip != NONE)
		sess_set_client(s, in->ip, strlen(in->ip), in->cport);
	s->port = in->port;
	setstr(sess_set_helo, s, in->helo);
	setstr(sess_set_sender, s, in->from);
	if (in->rcpt != NONE)
		sess_set_rcpt(s, in->rcpt, strlen(in->rcpt), 0);
	if (in->user != NONE)
		sess_set_auth(s, in->user, strlen(in->user), "PLAIN", 5);
	setstr(sess_set_command, s, in->cmd);
	setstr(sess_set_queue_id, s, in->qid);
}

struct fx {
	struct sess	s;
	struct rule	r;
	struct reply_out ro;
	struct engine_decision d;
};

static void
decision(struct fx *f, const struct in *in, const struct dec_in *di)
{
	memset(f, 0, sizeof(*f));
	build(&f->s, in);
	f->r.name = (char *)di->rule;
	f->r.stage = di->stage;
	f->r.action = di->action;
	f->d.sess = &f->s;
	f->d.stage = di->stage;
	f->d.rule = &f->r;
	f->d.action = di->action;
	f->d.dryrun = di->dryrun;
	f->d.store_error = di->store_error;
	if (di->code != 0) {
		reply_out_set(&f->ro, di->code, di->xc, di->xs, di->xd,
		    di->text);
		f->d.reply = &f->ro;
	}
}

/* --- the table ---------------------------------------------------- */

static const struct {
	const char	*name;
	struct in	in;
	struct dec_in	d;
	const char	*want;
} cases[] = {
	/* DESIGN.md §5, first example line */
	{ "design reject",
	    { "4XyZ1abc", "192.0.2.1", 41233, 587, "x.example",
		"<a@example.com>", NONE, NONE, NONE },
	    { "submission-requires-auth", STAGE_ENVFROM, ACTION_REJECT, 0, 0,
		530, 5, 7, 0, "Authentication required" },
	    "4XyZ1abc: reject rule=submission-requires-auth stage=envfrom "
	    "client=[192.0.2.1]:41233 port=587 helo=<x.example> "
	    "from=<a@example.com> reply=\"530 5.7.0 Authentication "
	    "required\"" },
	/* DESIGN.md §5, second example line (no port, helo, from known) */
	{ "design dryrun",
	    { NONE, "192.0.2.1", 41233, 0, NONE, NONE, "<b@example.org>",
		NONE, NONE },
	    { "rcpt-rate", STAGE_ENVRCPT, ACTION_TEMPFAIL, 1, 0,
		450, 4, 7, 1, "Too many recipients, retry in 20s" },
	    "NOQUEUE: dryrun would=tempfail rule=rcpt-rate stage=envrcpt "
	    "client=[192.0.2.1]:41233 to=<b@example.org> reply=\"450 4.7.1 "
	    "Too many recipients, retry in 20s\"" },
	/* README "Logs", second line: user= after from= */
	{ "readme dryrun user",
	    { NONE, "192.0.2.1", 41233, 587, NONE, "<b@example.com>", NONE,
		"alice", NONE },
	    { "sender-login-mismatch", STAGE_ENVFROM, ACTION_REJECT, 1, 0,
		553, 5, 7, 1, "Sender not owned" },
	    "NOQUEUE: dryrun would=reject rule=sender-login-mismatch "
	    "stage=envfrom client=[192.0.2.1]:41233 port=587 "
	    "from=<b@example.com> user=alice reply=\"553 5.7.1 Sender not "
	    "owned\"" },
	/* every field at once, in the order of DESIGN.md §5 */
	{ "all fields envrcpt",
	    { "3F2A81C0D4", "198.51.100.7", 2525, 25, "mx.example.net",
		"<s@example.net>", "<r@example.org>", "bob", NONE },
	    { "rcpt-rate", STAGE_ENVRCPT, ACTION_TEMPFAIL, 0, 0,
		450, 4, 7, 1, "Slow down" },
	    "3F2A81C0D4: tempfail rule=rcpt-rate stage=envrcpt "
	    "client=[198.51.100.7]:2525 port=25 helo=<mx.example.net> "
	    "from=<s@example.net> to=<r@example.org> user=bob "
	    "reply=\"450 4.7.1 Slow down\"" },
	/* to= only at envrcpt: the last recipient is not shown at eom */
	{ "no to at eom",
	    { "Q1", "192.0.2.1", 1, 25, "h", "<s@x>", "<r@y>", NONE, NONE },
	    { "big", STAGE_EOM, ACTION_REJECT, 0, 0, 552, 5, 3, 4,
		"Message too big" },
	    "Q1: reject rule=big stage=eom client=[192.0.2.1]:1 port=25 "
	    "helo=<h> from=<s@x> reply=\"552 5.3.4 Message too big\"" },
	{ "no to at data",
	    { "Q1", "192.0.2.1", 1, 0, NONE, "<s@x>", "<r@y>", NONE, NONE },
	    { "d", STAGE_DATA, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "Q1: log rule=d stage=data client=[192.0.2.1]:1 from=<s@x>" },
	/* the null sender is known: from=<> */
	{ "null sender",
	    { NONE, "192.0.2.9", 5000, 25, "h.example", "<>", NONE, NONE,
		NONE },
	    { "bounces", STAGE_ENVFROM, ACTION_REJECT, 0, 0, 550, 5, 7, 1,
		"No bounces here" },
	    "NOQUEUE: reject rule=bounces stage=envfrom "
	    "client=[192.0.2.9]:5000 port=25 helo=<h.example> from=<> "
	    "reply=\"550 5.7.1 No bounces here\"" },
	{ "null sender bare",
	    { NONE, NONE, 0, 0, NONE, "", NONE, NONE, NONE },
	    { "n", STAGE_ENVFROM, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: log rule=n stage=envfrom from=<>" },
	/* nothing known at all: only rule and stage */
	{ "bare",
	    { NONE, NONE, 0, 0, NONE, NONE, NONE, NONE, NONE },
	    { "r", STAGE_CONNECT, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: log rule=r stage=connect" },
	{ "log",
	    { NONE, "203.0.113.5", 33000, 25, NONE, NONE, NONE, NONE, NONE },
	    { "watch", STAGE_CONNECT, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: log rule=watch stage=connect client=[203.0.113.5]:33000 "
	    "port=25" },
	{ "tag",
	    { "ABC", "203.0.113.5", 33000, 25, "h", "<a@b>", "<c@d>", NONE,
		NONE },
	    { "tagger", STAGE_EOM, ACTION_TAG, 0, 0, 0, 0, 0, 0, NONE },
	    "ABC: tag rule=tagger stage=eom client=[203.0.113.5]:33000 "
	    "port=25 helo=<h> from=<a@b>" },
	{ "accept helo ipv6",
	    { NONE, "2001:db8::1", 40000, 25, "v6.example", NONE, NONE, NONE,
		NONE },
	    { "trusted", STAGE_HELO, ACTION_ACCEPT, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: accept rule=trusted stage=helo "
	    "client=[2001:db8::1]:40000 port=25 helo=<v6.example>" },
	{ "discard",
	    { "Q2", "192.0.2.1", 7, 25, NONE, "<a@b>", NONE, NONE, NONE },
	    { "drop", STAGE_ENVFROM, ACTION_DISCARD, 0, 0, 0, 0, 0, 0, NONE },
	    "Q2: discard rule=drop stage=envfrom client=[192.0.2.1]:7 port=25 "
	    "from=<a@b>" },
	{ "quarantine",
	    { "Q3", "192.0.2.1", 7, 25, NONE, "<a@b>", NONE, NONE, NONE },
	    { "hold", STAGE_EOM, ACTION_QUARANTINE, 0, 0, 0, 0, 0, 0, NONE },
	    "Q3: quarantine rule=hold stage=eom client=[192.0.2.1]:7 port=25 "
	    "from=<a@b>" },
	{ "dryrun log",
	    { NONE, "192.0.2.1", 7, 0, NONE, NONE, NONE, NONE, NONE },
	    { "try", STAGE_CONNECT, ACTION_LOG, 1, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: dryrun would=log rule=try stage=connect "
	    "client=[192.0.2.1]:7" },
	/* user= only when authenticated */
	{ "not authenticated",
	    { NONE, "192.0.2.1", 7, 587, NONE, "<a@b>", NONE, "", NONE },
	    { "r", STAGE_ENVFROM, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: log rule=r stage=envfrom client=[192.0.2.1]:7 port=587 "
	    "from=<a@b>" },
	/* on_error=accept: the store failed and the event went on */
	{ "store error accept",
	    { NONE, "192.0.2.1", 41233, 25, NONE, "<a@b>", "<c@d>", NONE,
		NONE },
	    { "rcpt-rate", STAGE_ENVRCPT, ACTION_CONTINUE, 0, 1,
		0, 0, 0, 0, NONE },
	    "NOQUEUE: store-error on_error=accept rule=rcpt-rate "
	    "stage=envrcpt client=[192.0.2.1]:41233 port=25 from=<a@b> "
	    "to=<c@d>" },
	/* on_error=tempfail: an ordinary tempfail line with 451 4.3.0 */
	{ "store error tempfail",
	    { NONE, "192.0.2.1", 41233, 25, NONE, "<a@b>", "<c@d>", NONE,
		NONE },
	    { "rcpt-rate", STAGE_ENVRCPT, ACTION_TEMPFAIL, 0, 1,
		451, 4, 3, 0, "Temporary policy failure" },
	    "NOQUEUE: tempfail rule=rcpt-rate stage=envrcpt "
	    "client=[192.0.2.1]:41233 port=25 from=<a@b> to=<c@d> "
	    "reply=\"451 4.3.0 Temporary policy failure\"" },
	/* command= at unknown, the verb only; after user, before reply */
	{ "unknown command",
	    { NONE, "192.0.2.66", 1025, 25, "probe", NONE, NONE, NONE,
		"EXPN root" },
	    { "harvest", STAGE_UNKNOWN, ACTION_TEMPFAIL, 0, 0,
		421, 4, 7, 0, "Bye" },
	    "NOQUEUE: tempfail rule=harvest stage=unknown "
	    "client=[192.0.2.66]:1025 port=25 helo=<probe> command=EXPN "
	    "reply=\"421 4.7.0 Bye\"" },
	{ "no command at envfrom",
	    { NONE, NONE, 0, 0, NONE, "<a@b>", NONE, NONE, "VRFY" },
	    { "r", STAGE_ENVFROM, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: log rule=r stage=envfrom from=<a@b>" },
	/* escaping (log.h): '"' -> \", '\\' -> \\\\, others \xNN */
	{ "escape helo",
	    { NONE, "192.0.2.1", 7, 0, "a\"b\\c\r\nd\x01\x7f\xff e", NONE,
		NONE, NONE, NONE },
	    { "r", STAGE_HELO, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: log rule=r stage=helo client=[192.0.2.1]:7 "
	    "helo=<a\\\"b\\\\c\\x0d\\x0ad\\x01\\x7f\\xff e>" },
	/* a forged second record is just text */
	{ "escape forged line",
	    { NONE, "192.0.2.1", 7, 0, NONE, "<a@b>\n warden[1]: Q: accept",
		NONE, NONE, NONE },
	    { "r", STAGE_ENVFROM, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: log rule=r stage=envfrom client=[192.0.2.1]:7 "
	    "from=<<a@b>\\x0a warden[1]: Q: accept>" },
	{ "escape to user command",
	    { NONE, NONE, 0, 0, NONE, NONE, "<x\ty@z>", "u\"s\\r", NONE },
	    { "r", STAGE_ENVRCPT, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: log rule=r stage=envrcpt to=<x\\x09y@z> "
	    "user=u\\\"s\\\\r" },
	{ "escape command",
	    { NONE, NONE, 0, 0, NONE, NONE, NONE, NONE, "X\x1b[2J" },
	    { "r", STAGE_UNKNOWN, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: log rule=r stage=unknown command=X\\x1b[2J" },
	{ "escape queue id",
	    { "Q\nX", NONE, 0, 0, NONE, NONE, NONE, NONE, NONE },
	    { "r", STAGE_EOM, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "Q\\x0aX: log rule=r stage=eom" },
	/* an address the MTA could not parse stays as it came, escaped */
	{ "escape client",
	    { NONE, "bad\"ip\n", 9, 0, NONE, NONE, NONE, NONE, NONE },
	    { "r", STAGE_CONNECT, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: log rule=r stage=connect client=[bad\\\"ip\\x0a]:9" },
	/* reply text may carry client text: quotes and backslashes */
	{ "escape reply",
	    { NONE, NONE, 0, 0, NONE, NONE, NONE, NONE, NONE },
	    { "r", STAGE_HELO, ACTION_REJECT, 0, 0, 550, 5, 7, 1,
		"bad \"helo\" a\\b" },
	    "NOQUEUE: reject rule=r stage=helo "
	    "reply=\"550 5.7.1 bad \\\"helo\\\" a\\\\b\"" },
};

static void
test_table(void **state)
{
	char buf[LINE];
	struct fx f;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		decision(&f, &cases[i].in, &cases[i].d);
		memset(buf, CANARY, sizeof(buf));
		want_line(cases[i].name, declog_format(&f.d, buf,
		    sizeof(buf)), cases[i].want);
	}
}

/* The return value is the caller's buffer. */
static void
test_returns_buf(void **state)
{
	char buf[256];
	struct fx f;

	(void)state;
	decision(&f, &cases[0].in, &cases[0].d);
	assert_ptr_equal(declog_format(&f.d, buf, sizeof(buf)), buf);
}

/* --- values the session cut --------------------------------------- */

static void
test_truncated(void **state)
{
	static const struct dec_in log_rcpt = { "r", STAGE_ENVRCPT,
	    ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE };
	static const struct dec_in log_unk = { "r", STAGE_UNKNOWN,
	    ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE };
	char helo[401], addr[601], user[401], cmd[101];
	char buf[LINE], want[LINE];
	struct in in;
	struct fx f;

	(void)state;
	memset(helo, 'h', 400);
	helo[400] = '\0';
	memset(addr, 'a', 600);
	addr[0] = '<';
	addr[599] = '>';
	addr[600] = '\0';
	memset(user, 'u', 400);
	user[400] = '\0';
	memset(cmd, 'C', 100);
	cmd[100] = '\0';

	/* a 400-byte HELO: the SESS_HELO_MAX - 1 kept bytes, then "..." */
	memset(&in, 0, sizeof(in));
	in.helo = helo;
	decision(&f, &in, &log_rcpt);
	assert_true(f.s.truncated & SF_HELO);
	snprintf(want, sizeof(want), "NOQUEUE: log rule=r stage=envrcpt "
	    "helo=<%.*s...>", SESS_HELO_MAX - 1, helo);
	want_line("helo 400", declog_format(&f.d, buf, sizeof(buf)), want);

	/* exactly at the cap: whole, no marker */
	helo[SESS_HELO_MAX - 1] = '\0';
	decision(&f, &in, &log_rcpt);
	snprintf(want, sizeof(want), "NOQUEUE: log rule=r stage=envrcpt "
	    "helo=<%s>", helo);
	want_line("helo at cap", declog_format(&f.d, buf, sizeof(buf)), want);

	/*
	 * A 598-byte sender and recipient fit the session (SESS_ADDR_MAX)
	 * but not the log: LOG_ESC_MAX bytes, then "..."; a 400-byte user
	 * is cut by the session at SESS_USER_MAX - 1.
	 */
	memset(&in, 0, sizeof(in));
	in.from = addr;
	in.rcpt = addr;
	in.user = user;
	decision(&f, &in, &log_rcpt);
	assert_false(f.s.truncated & SF_SENDER);
	assert_true(f.s.truncated & SF_AUTH_USER);
	snprintf(want, sizeof(want), "NOQUEUE: log rule=r stage=envrcpt "
	    "from=<%.*s...> to=<%.*s...> user=%.*s...", LOG_ESC_MAX,
	    addr + 1, LOG_ESC_MAX, addr + 1, SESS_USER_MAX - 1, user);
	want_line("from, to, user", declog_format(&f.d, buf, sizeof(buf)),
	    want);

	memset(&in, 0, sizeof(in));
	in.cmd = cmd;
	decision(&f, &in, &log_unk);
	snprintf(want, sizeof(want), "NOQUEUE: log rule=r stage=unknown "
	    "command=%.*s...", SESS_CMD_MAX - 1, cmd);
	want_line("command", declog_format(&f.d, buf, sizeof(buf)), want);
}

/*
 * Cut twice (by the session at SESS_ADDR_MAX, then by the log at
 * LOG_ESC_MAX): still one "..." marker, not "......".
 */
static void
test_cut_twice(void **state)
{
	static const struct dec_in log_rcpt = { "r", STAGE_ENVRCPT,
	    ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE };
	char big[SESS_ADDR_MAX + 100], buf[LINE], want[LINE];
	struct in in;
	struct fx f;

	(void)state;
	memset(&in, 0, sizeof(in));
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	in.from = big;
	decision(&f, &in, &log_rcpt);
	assert_true(f.s.truncated & SF_SENDER);
	snprintf(want, sizeof(want), "NOQUEUE: log rule=r stage=envrcpt "
	    "from=<%.*s...>", LOG_ESC_MAX, big);
	want_line("from cut twice", declog_format(&f.d, buf, sizeof(buf)),
	    want);
}

/*
 * A huge reply is bounded: log.h takes at most LOG_ESC_MAX bytes of a
 * value and ends a longer one with "...".
 */
static void
test_huge_reply(void **state)
{
	static const struct in none;
	static const struct dec_in d = { "r", STAGE_ENVFROM, ACTION_REJECT,
	    0, 0, 550, 5, 7, 1, NONE };
	static const char head[] = "NOQUEUE: reject rule=r stage=envfrom "
	    "reply=\"550 5.7.1 ";
	char text[20000], buf[LINE];
	struct dec_in di = d;
	struct fx f;
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(text) - 1; i++)
		text[i] = i % 10 == 9 ? ' ' : 'w';
	text[sizeof(text) - 1] = '\0';
	di.text = text;
	decision(&f, &none, &di);
	declog_format(&f.d, buf, sizeof(buf));
	len = strlen(buf);
	/* the reply field: 512 bytes (all printable, one each) + "..." */
	if (strncmp(buf, head, strlen(head)) != 0)
		fail_msg("huge reply: got \"%.80s\", want it to start with "
		    "\"%s\"", buf, head);
	if (len != strlen("NOQUEUE: reject rule=r stage=envfrom reply=\"") +
	    LOG_ESC_MAX + 3 + 1)
		fail_msg("huge reply: got length %zu, want %zu", len,
		    strlen("NOQUEUE: reject rule=r stage=envfrom reply=\"") +
		    LOG_ESC_MAX + 3 + 1);
	if (len < 4 || strcmp(buf + len - 4, "...\"") != 0)
		fail_msg("huge reply: got end \"%s\", want \"...\\\"\"",
		    len > 10 ? buf + len - 10 : buf);
}

/*
 * Every size from 0 to past the full line: a NUL-terminated prefix of
 * the full line, never a byte past len (canary).
 */
static void
test_small_buffers(void **state)
{
	static const size_t rows[] = { 0, 3, 4, 16 };	/* cases[] rows */
	char full[LINE], buf[LINE + 32], row[64];
	size_t r, len, j, flen, want;
	struct fx f;

	(void)state;
	for (r = 0; r < NELEM(rows); r++) {
		decision(&f, &cases[rows[r]].in, &cases[rows[r]].d);
		declog_format(&f.d, full, sizeof(full));
		flen = strlen(full);
		for (len = 0; len <= flen + 2; len++) {
			snprintf(row, sizeof(row), "%s, len %zu",
			    cases[rows[r]].name, len);
			memset(buf, CANARY, sizeof(buf));
			declog_format(&f.d, buf, len);
			for (j = len; j < sizeof(buf); j++)
				if (buf[j] != CANARY)
					fail_msg("%s: byte %zu written", row,
					    j);
			if (len == 0)
				continue;
			if (memchr(buf, '\0', len) == NULL)
				fail_msg("%s: no NUL", row);
			want = flen < len - 1 ? flen : len - 1;
			if (strlen(buf) != want || memcmp(buf, full, want) != 0)
				fail_msg("%s: got \"%s\", want the first %zu "
				    "bytes of \"%s\"", row, buf, want, full);
		}
	}
}

/* The worst case of every field escaped 4:1 still stays in bounds. */
static void
test_worst_case_bounded(void **state)
{
	static const struct dec_in d = { "r", STAGE_ENVRCPT, ACTION_TEMPFAIL,
	    0, 0, 450, 4, 7, 1, NONE };
	char helo[SESS_HELO_MAX + 8], addr[SESS_ADDR_MAX + 8];
	char user[SESS_USER_MAX + 8], text[4000];
	char buf[LOG_LINE_MAX + 16];
	struct dec_in di = d;
	struct in in;
	struct fx f;
	size_t i;

	(void)state;
	memset(helo, '\x01', sizeof(helo) - 1);
	helo[sizeof(helo) - 1] = '\0';
	memset(addr, '\x02', sizeof(addr) - 1);
	addr[sizeof(addr) - 1] = '\0';
	memset(user, '\x03', sizeof(user) - 1);
	user[sizeof(user) - 1] = '\0';
	memset(text, '"', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	memset(&in, 0, sizeof(in));
	in.qid = "Q";
	in.ip = "192.0.2.1";
	in.cport = 65535;
	in.port = 65535;
	in.helo = helo;
	in.from = addr;
	in.rcpt = addr;
	in.user = user;
	di.text = text;
	decision(&f, &in, &di);
	memset(buf, CANARY, sizeof(buf));
	declog_format(&f.d, buf, LOG_LINE_MAX);
	for (i = LOG_LINE_MAX; i < sizeof(buf); i++)
		if (buf[i] != CANARY)
			fail_msg("worst case: byte %zu written", i);
	if (strlen(buf) != LOG_LINE_MAX - 1)
		fail_msg("worst case: got length %zu, want %d (cut)",
		    strlen(buf), LOG_LINE_MAX - 1);
	{
		static const char head[] = "Q: tempfail rule=r "
		    "stage=envrcpt client=[192.0.2.1]:65535 port=65535 "
		    "helo=<\\x01\\x01";

		if (strncmp(buf, head, strlen(head)) != 0)
			fail_msg("worst case: got \"%.90s\", want it to "
			    "start with \"%s\"", buf, head);
	}
}

/* --- daemon.log_privacy ------------------------------------------- */

#define KEY	"k3y"
/* Python: hmac.new(b"k3y", b"log:" + v.lower(), sha256).hexdigest()[:16] */
#define D_IP	"hmac:9fb9afa160818584"		/* 192.0.2.1 */
#define D_IP6	"hmac:84358a908c58ffb1"		/* 2001:db8::1 */
#define D_A	"hmac:f01a50baadc6ae07"		/* a@example.com */
#define D_B	"hmac:cb911717d4f6b7c0"		/* b@example.org */
#define D_ALICE	"hmac:f806e93624ddc6a4"		/* alice */
#define D_BOBX	"hmac:86fa899f913f90ad"		/* bob@x.example */
#define D_BOB	"hmac:f5bb443cc4ef6c68"		/* bob */

static const struct {
	const char	*name;
	struct in	in;
	struct dec_in	d;
	const char	*want;
} priv_cases[] = {
	/* every private field at once; the reply's %{auth_user} too */
	{ "all fields",
	    { "Q1", "192.0.2.1", 41233, 587, "x.example", "<a@example.com>",
		"<b@example.org>", "alice", NONE },
	    { "rcpt-rate", STAGE_ENVRCPT, ACTION_TEMPFAIL, 0, 0,
		450, 4, 7, 1, "Too many recipients from alice, retry in 20s" },
	    "Q1: tempfail rule=rcpt-rate stage=envrcpt client=[" D_IP "]:41233 "
	    "port=587 helo=<x.example> from=<" D_A "> to=<" D_B "> user="
	    D_ALICE " reply=\"450 4.7.1 Too many recipients from " D_ALICE
	    ", retry in 20s\"" },
	/* the null sender is no address */
	{ "null sender",
	    { NONE, "192.0.2.1", 1, 25, NONE, "<>", NONE, NONE, NONE },
	    { "n", STAGE_ENVFROM, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: log rule=n stage=envfrom client=[" D_IP "]:1 port=25 "
	    "from=<>" },
	/* a HELO that is the client's address literal */
	{ "helo literal",
	    { NONE, "192.0.2.1", 1, 25, "[192.0.2.1]", NONE, NONE, NONE,
		NONE },
	    { "h", STAGE_HELO, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: log rule=h stage=helo client=[" D_IP "]:1 port=25 "
	    "helo=<[" D_IP "]>" },
	{ "helo ipv6 literal",
	    { NONE, "2001:db8::1", 1, 0, "[IPv6:2001:db8::1]", NONE, NONE,
		NONE, NONE },
	    { "h", STAGE_HELO, ACTION_LOG, 0, 0, 0, 0, 0, 0, NONE },
	    "NOQUEUE: log rule=h stage=helo client=[" D_IP6 "]:1 "
	    "helo=<[IPv6:" D_IP6 "]>" },
	/* %{rcpt} and %{sender} in a reply; the HELO is a name: kept */
	{ "reply addresses",
	    { NONE, NONE, 0, 0, "mx.example", "<a@example.com>",
		"<b@example.org>", NONE, NONE },
	    { "r", STAGE_ENVRCPT, ACTION_REJECT, 0, 0, 550, 5, 7, 1,
		"Recipient b@example.org refused for a@example.com" },
	    "NOQUEUE: reject rule=r stage=envrcpt helo=<mx.example> from=<"
	    D_A "> to=<" D_B "> reply=\"550 5.7.1 Recipient " D_B
	    " refused for " D_A "\"" },
	/* lower-cased before digesting: one digest for both spellings */
	{ "case folded",
	    { NONE, NONE, 0, 0, NONE, "<A@Example.COM>", NONE, NONE, NONE },
	    { "r", STAGE_ENVFROM, ACTION_REJECT, 0, 0, 550, 5, 7, 1,
		"No mail from A@Example.COM" },
	    "NOQUEUE: reject rule=r stage=envfrom from=<" D_A "> "
	    "reply=\"550 5.7.1 No mail from " D_A "\"" },
	/* the longest value wins where two start at the same byte */
	{ "overlap",
	    { NONE, NONE, 0, 0, NONE, "<bob@x.example>", NONE, "bob", NONE },
	    { "r", STAGE_ENVFROM, ACTION_REJECT, 0, 0, 553, 5, 7, 1,
		"bob@x.example is not bob's" },
	    "NOQUEUE: reject rule=r stage=envfrom from=<" D_BOBX "> user="
	    D_BOB " reply=\"553 5.7.1 " D_BOBX " is not " D_BOB "'s\"" },
	/* the store-error line is a decision line: no address either */
	{ "store error",
	    { NONE, "192.0.2.1", 41233, 25, NONE, "<a@example.com>",
		"<b@example.org>", NONE, NONE },
	    { "rcpt-rate", STAGE_ENVRCPT, ACTION_CONTINUE, 0, 1,
		0, 0, 0, 0, NONE },
	    "NOQUEUE: store-error on_error=accept rule=rcpt-rate "
	    "stage=envrcpt client=[" D_IP "]:41233 port=25 from=<" D_A "> "
	    "to=<" D_B ">" },
	/* dry-run, and the unknown command (a verb, not private) */
	{ "dryrun unknown",
	    { NONE, "192.0.2.1", 7, 25, "probe", NONE, NONE, NONE, "EXPN" },
	    { "harvest", STAGE_UNKNOWN, ACTION_TEMPFAIL, 1, 0, 421, 4, 7, 0,
		"Bye 192.0.2.1" },
	    "NOQUEUE: dryrun would=tempfail rule=harvest stage=unknown "
	    "client=[" D_IP "]:7 port=25 helo=<probe> command=EXPN "
	    "reply=\"421 4.7.0 Bye " D_IP "\"" },
};

static void
test_privacy(void **state)
{
	const struct declog_priv priv = { KEY, strlen(KEY) };
	char buf[LINE];
	struct fx f;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(priv_cases); i++) {
		decision(&f, &priv_cases[i].in, &priv_cases[i].d);
		memset(buf, CANARY, sizeof(buf));
		want_line(priv_cases[i].name, declog_format_priv(&f.d, &priv,
		    buf, sizeof(buf)), priv_cases[i].want);
	}
}

/* Privacy off (NULL, or an empty key): exactly declog_format's line. */
static void
test_privacy_off(void **state)
{
	const struct declog_priv nokey = { "", 0 };
	char a[LINE], b[LINE], c[LINE];
	struct fx f;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		decision(&f, &cases[i].in, &cases[i].d);
		declog_format(&f.d, a, sizeof(a));
		want_line(cases[i].name, declog_format_priv(&f.d, NULL, b,
		    sizeof(b)), a);
		want_line(cases[i].name, declog_format_priv(&f.d, &nokey, c,
		    sizeof(c)), a);
	}
}

/* Another key, other digests: a digest is no plain hash of the value. */
static void
test_privacy_key(void **state)
{
	/* Python, key b"other": a@example.com */
	const struct declog_priv priv = { "other", 5 };
	static const struct in in = { NONE, NONE, 0, 0, NONE,
	    "<a@example.com>", NONE, NONE, NONE };
	static const struct dec_in d = { "r", STAGE_ENVFROM, ACTION_LOG, 0,
	    0, 0, 0, 0, 0, NONE };
	char buf[LINE];
	struct fx f;

	(void)state;
	decision(&f, &in, &d);
	want_line("key other", declog_format_priv(&f.d, &priv, buf,
	    sizeof(buf)), "NOQUEUE: log rule=r stage=envfrom "
	    "from=<hmac:0d23532a20bd7c10>");
}

/*
 * A sender the session cut: its digest is of the kept bytes, marked
 * "..." so nobody takes it for the whole address's digest; no byte of
 * it in clear. The same for a 2 kB recipient the session kept whole.
 */
static void
test_privacy_long(void **state)
{
	const struct declog_priv priv = { KEY, strlen(KEY) };
	static const struct dec_in d = { "r", STAGE_ENVRCPT, ACTION_LOG, 0,
	    0, 0, 0, 0, 0, NONE };
	char big[SESS_ADDR_MAX + 100], buf[LINE];
	struct in in;
	struct fx f;
	const char *p;

	(void)state;
	memset(&in, 0, sizeof(in));
	memset(big, 'Q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	in.from = big;
	in.rcpt = big + 200;
	decision(&f, &in, &d);
	assert_true(f.s.truncated & SF_SENDER);
	declog_format_priv(&f.d, &priv, buf, sizeof(buf));
	if (strstr(buf, "QQ") != NULL)
		fail_msg("long: clear text in \"%.200s\"", buf);
	p = strstr(buf, "from=<hmac:");
	if (p == NULL || strncmp(p + 11 + LOG_DIGEST_HEX, "...>", 4) != 0)
		fail_msg("long: from= not a marked digest: \"%s\"", buf);
	p = strstr(buf, " to=<hmac:");
	if (p == NULL || strcmp(p + 10 + LOG_DIGEST_HEX, ">") != 0)
		fail_msg("long: to= not a digest: \"%s\"", buf);
}

/*
 * The rule's reply from template lines, expanded for the client the way
 * the engine does it: the decision carries that wire reply.
 */
static void
with_template(struct fx *f, const char *const *lines, size_t n,
    int64_t retry_ns)
{
	struct reply_ctx ctx = { "test", 1, f->d.stage, f->d.action };
	struct reply_vars vars;
	struct diag dg;
	char retry[24];

	diag_init(&dg);
	if (reply_parse(&f->r.reply, lines, n, &ctx, &dg) != 0)
		fail_msg("template \"%s\" does not parse", lines[0]);
	diag_fini(&dg);
	engine_reply_vars(&f->s, &f->r, retry_ns, &vars, retry,
	    sizeof(retry));
	reply_expand(&f->r.reply, &vars, &f->ro);
	f->d.reply = &f->ro;
	f->d.retry_ns = retry_ns;
}

/* Python, key b"k3y" (as above) */
#define D_LS	"hmac:1f224550bcdc62b3"		/* 250 'a' "@ex.org" */
#define D_LR	"hmac:57ebbf437d3cda13"		/* 240 'b' "@victim.example" */
#define D_NET	"hmac:a1d090b5fd2342b5"		/* 198.51.100.7 */

/*
 * Issue #8 (a), the reviewer's case: the client's reply hard-cuts the
 * 512-byte "Refused:%{sender}%{rcpt}" at 490 bytes, splitting the
 * recipient over two lines that the log joins with a space; searching
 * the joined text for the recipient never found it, so it was logged in
 * clear next to to=<hmac:...>. Also cut after 32 lines ("...").
 */
static void
test_privacy_split_reply(void **state)
{
	const struct declog_priv priv = { KEY, strlen(KEY) };
	static const char *const one[] = {
	    "550 5.7.1 Refused:%{sender}%{rcpt}" };
	static const char *many[REPLY_LINES_MAX];
	static const struct dec_in d = { "r", STAGE_ENVRCPT, ACTION_REJECT,
	    0, 0, 0, 0, 0, 0, NONE };
	char snd[300], rc[300], buf[LINE];
	struct in in;
	struct fx f;
	size_t i;

	(void)state;
	memset(snd, 'a', 250);
	strcpy(snd + 250, "@ex.org");
	memset(rc, 'b', 240);
	strcpy(rc + 240, "@victim.example");
	memset(&in, 0, sizeof(in));
	in.ip = "192.0.2.1";
	in.cport = 41233;
	in.from = snd;
	in.rcpt = rc;
	decision(&f, &in, &d);
	with_template(&f, one, 1, 0);
	/* the wire reply did split it: the case is the reviewer's */
	assert_int_equal(f.ro.nlines, 2);
	want_line("split reply", declog_format_priv(&f.d, &priv, buf,
	    sizeof(buf)), "NOQUEUE: reject rule=r stage=envrcpt client=["
	    D_IP "]:41233 from=<" D_LS "> to=<" D_LR "> reply=\"550 5.7.1 "
	    "Refused:" D_LS D_LR "\"");
	reply_fini(&f.r.reply);

	many[0] = one[0];
	for (i = 1; i < REPLY_LINES_MAX; i++)
		many[i] = "%{rcpt}%{sender}";
	decision(&f, &in, &d);
	with_template(&f, many, REPLY_LINES_MAX, 0);
	assert_int_equal(f.ro.nlines, REPLY_LINES_MAX);
	declog_format_priv(&f.d, &priv, buf, sizeof(buf));
	if (strstr(buf, "bbbb") != NULL || strstr(buf, "aaaa") != NULL ||
	    strstr(buf, "victim") != NULL || strstr(buf, "ex.org") != NULL)
		fail_msg("32 lines: clear text in \"%.300s\"", buf);
	if (strstr(buf, "reply=\"550 5.7.1 Refused:" D_LS D_LR " " D_LR
	    D_LS " " D_LR D_LS) == NULL)
		fail_msg("32 lines: not the digests: \"%.300s\"", buf);
	reply_fini(&f.r.reply);
}

/*
 * The template's other variables in the log form: each as its field
 * shows it, %{retry_after} and %{rule} as the client got them. A fixed
 * template keeps its text (the log form is the template's, not a copy
 * of the digests' positions).
 */
static void
test_privacy_template_vars(void **state)
{
	const struct declog_priv priv = { KEY, strlen(KEY) };
	static const char *const t1[] = {
	    "450 4.7.1 %{rule}: %{rcpt} from %{sender} (%{auth_user}) via "
	    "%{client_ip} %{client_name} %{helo}, retry in %{retry_after}s" };
	static const char *const t2[] = { "451 4.7.1 Slow down" };
	static const struct in in = { "Q1", "192.0.2.1", 41233, 587,
	    "[192.0.2.1]", "<a@example.com>", "<b@example.org>", "alice",
	    NONE };
	static const struct dec_in d = { "rcpt-rate", STAGE_ENVRCPT,
	    ACTION_TEMPFAIL, 0, 0, 0, 0, 0, 0, NONE };
	char buf[LINE];
	struct fx f;

	(void)state;
	decision(&f, &in, &d);
	sess_set_client_name(&f.s, "192-0-2-1.pool.example", 22);
	with_template(&f, t1, 1, 19500000000LL);
	want_line("template vars", declog_format_priv(&f.d, &priv, buf,
	    sizeof(buf)), "Q1: tempfail rule=rcpt-rate stage=envrcpt client=["
	    D_IP "]:41233 port=587 helo=<[" D_IP "]> from=<" D_A "> to=<"
	    D_B "> user=" D_ALICE " reply=\"450 4.7.1 rcpt-rate: " D_B
	    " from " D_A " (" D_ALICE ") via " D_IP " " D_IP ".pool.example "
	    "[" D_IP "], retry in 20s\"");
	reply_fini(&f.r.reply);
	decision(&f, &in, &d);
	with_template(&f, t2, 1, 0);
	want_line("fixed template", declog_format_priv(&f.d, &priv, buf,
	    sizeof(buf)), "Q1: tempfail rule=rcpt-rate stage=envrcpt client=["
	    D_IP "]:41233 port=587 helo=<[" D_IP "]> from=<" D_A "> to=<"
	    D_B "> user=" D_ALICE " reply=\"451 4.7.1 Slow down\"");
	reply_fini(&f.r.reply);
}

/*
 * Issue #8 (b): HELO literals are compared as addresses, not text, and
 * names that embed the client's address lose the labels that hold it.
 * The reviewer's case is the first row.
 */
static const struct {
	const char	*ip, *helo, *want;
} helo_cases[] = {
	{ "2001:db8::1", "[IPv6:2001:DB8::1]", "[IPv6:" D_IP6 "]" },
	{ "2001:db8::1", "[IPv6:2001:0db8:0:0:0:0:0:1]", "[IPv6:" D_IP6 "]" },
	{ "2001:db8::1", "2001:DB8::1", D_IP6 },
	{ "192.0.2.1", "[IPv6:::ffff:192.0.2.1]", "[IPv6:" D_IP "]" },
	{ "192.0.2.1", "192.0.2.1", D_IP },
	/* another address: hidden as well, its own digest */
	{ "192.0.2.1", "[198.51.100.7]", "[" D_NET "]" },
	{ "2001:db8::1", "[198.51.100.7]", "[" D_NET "]" },
	/* names embedding the client's address, as ISPs spell them */
	{ "192.0.2.1", "192-0-2-1.dsl.example", D_IP ".dsl.example" },
	{ "192.0.2.1", "host-192-000-002-001.example", D_IP ".example" },
	{ "192.0.2.1", "mail.192.0.2.1.example", "mail." D_IP ".example" },
	{ "192.0.2.1", "1.2.0.192.in-addr.example", D_IP ".in-addr.example" },
	{ "192.0.2.1", "ip192_0_2_1", D_IP },
	{ "192.0.2.1", "c0-192000002001.example", D_IP ".example" },
	{ "192.0.2.1", "C0000201.dyn.example", D_IP ".dyn.example" },
	{ "192.0.2.1", "[192-0-2-1]", D_IP },
	{ "192.0.2.1", "192-0-2-1.x.192.0.2.1.example",
	    D_IP ".x." D_IP ".example" },
	{ "2001:db8::1", "2001-db8--1.v6.example", D_IP6 ".v6.example" },
	/* glued to a word, fully written, or followed by more text */
	{ "2001:db8::1", "host-2001-db8--1.example", D_IP6 ".example" },
	{ "2001:db8::1", "x2001:0db8:0:0:0:0:0:1", D_IP6 },
	{ "2001:db8::1", "abc-2001-0DB8-0-0-0-0-0-1.example",
	    D_IP6 ".example" },
	{ "2001:db8::1", "mx.2001-db8--1-v6.example", "mx." D_IP6 ".example" },
	{ "2001:db8::1", "a2001-db8--1.example", D_IP6 ".example" },
	{ "2001:db8::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8."
	    "b.d.0.1.0.0.2.ip6.example", D_IP6 ".ip6.example" },
	{ "2001:db8::1", "20010DB8000000000000000000000001.example",
	    D_IP6 ".example" },
	/* no address of the client's: kept, a postmaster reads it */
	{ "192.0.2.1", "mx.example", "mx.example" },
	{ "192.0.2.1", "192-0-2-2.dsl.example", "192-0-2-2.dsl.example" },
	{ "192.0.2.1", "10-192-0-2.example", "10-192-0-2.example" },
	{ "2001:db8::1", "2001-db8--2.v6.example", "2001-db8--2.v6.example" },
	{ "2001:db8::1", "2001-db8--10.v6.example", "2001-db8--10.v6.example" },
	/* a private value found whole: the sender's digest */
	{ "192.0.2.1", "a@example.com", D_A },
};

static void
test_privacy_helo(void **state)
{
	const struct declog_priv priv = { KEY, strlen(KEY) };
	static const struct dec_in d = { "h", STAGE_ENVFROM, ACTION_LOG, 0,
	    0, 0, 0, 0, 0, NONE };
	char buf[LINE], want[LINE];
	struct in in;
	struct fx f;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(helo_cases); i++) {
		memset(&in, 0, sizeof(in));
		in.ip = helo_cases[i].ip;
		in.cport = 1;
		in.helo = helo_cases[i].helo;
		in.from = "<a@example.com>";
		decision(&f, &in, &d);
		snprintf(want, sizeof(want), "NOQUEUE: log rule=h stage=envfrom "
		    "client=[%s]:1 helo=<%s> from=<" D_A ">",
		    strchr(helo_cases[i].ip, ':') ? D_IP6 : D_IP,
		    helo_cases[i].want);
		want_line(helo_cases[i].helo, declog_format_priv(&f.d, &priv,
		    buf, sizeof(buf)), want);
	}
}

/* --- hostile values in every client field ------------------------- */

enum hfield { H_HELO, H_FROM, H_TO, H_USER, H_CMD, H_QID, H_IP,
	H_CLIENT_NAME, H_HEADER, H_COUNT };

static const char *const hfield_names[H_COUNT] = { "helo", "from", "to",
	"user", "command", "queue id", "client ip", "client name",
	"header" };

/* kinds of hostile value */
enum hkind { K_CTL, K_8BIT, K_10K, K_COUNT };

static const char *const hkind_names[K_COUNT] = { "control bytes",
	"8-bit bytes", "10 KB" };

static void
hostile_value(enum hkind k, char *v, size_t len)
{
	size_t i;

	switch (k) {
	case K_CTL:
		snprintf(v, len, "ZZ\r\nwarden[1]: forged\x01\x1b[2J\x7f\tZZ");
		break;
	case K_8BIT:
		snprintf(v, len, "ZZ\xc3\xa9\xff\x80\xfeZZ");
		break;
	default:
		for (i = 0; i < 10240 && i + 1 < len; i++)
			v[i] = i % 7 == 0 ? '\x01' : 'Z';
		v[i] = '\0';
		break;
	}
}

/*
 * Each field gets each kind, on a session that has every other field
 * too, at the stage where the field is logged: the line is one line of
 * printable ASCII, within LOG_LINE_MAX, with the field escaped (\xNN)
 * or cut ("..."); client name and header text are never logged at all.
 * With privacy on, no 'Z' run of the private fields remains.
 */
static void
test_hostile_fields(void **state)
{
	const struct declog_priv priv = { KEY, strlen(KEY) };
	static char v[10240 + 1];
	char buf[LOG_LINE_MAX], row[96];
	enum hfield h;
	enum hkind k;
	struct fx f;
	size_t i, len;
	int p;

	(void)state;
	for (h = 0; h < H_COUNT; h++) {
		for (k = 0; k < K_COUNT; k++) {
			for (p = 0; p < 2; p++) {
				struct in in = { "Q9", "192.0.2.9", 25, 25,
				    "h.example", "<s@example.net>",
				    "<r@example.org>", "u", NONE };
				struct dec_in d = { "r", STAGE_ENVRCPT,
				    ACTION_REJECT, 0, 0, 550, 5, 7, 1,
				    "no" };

				snprintf(row, sizeof(row), "%s, %s%s",
				    hfield_names[h], hkind_names[k],
				    p ? ", privacy" : "");
				hostile_value(k, v, sizeof(v));
				switch (h) {
				case H_HELO: in.helo = v; break;
				case H_FROM: in.from = v; break;
				case H_TO: in.rcpt = v; break;
				case H_USER: in.user = v; break;
				case H_CMD:
					in.cmd = v;
					d.stage = STAGE_UNKNOWN;
					break;
				case H_QID: in.qid = v; break;
				case H_IP: in.ip = v; break;
				default: break;
				}
				decision(&f, &in, &d);
				if (h == H_CLIENT_NAME)
					sess_set_client_name(&f.s, v,
					    strlen(v));
				if (h == H_HEADER)
					sess_set_header(&f.s, "Subject", 7, v,
					    strlen(v));
				memset(buf, CANARY, sizeof(buf));
				declog_format_priv(&f.d, p ? &priv : NULL,
				    buf, sizeof(buf));
				len = strnlen(buf, sizeof(buf));
				if (len == sizeof(buf))
					fail_msg("%s: not terminated", row);
				for (i = 0; i < len; i++)
					if ((unsigned char)buf[i] < 0x20 ||
					    (unsigned char)buf[i] > 0x7e)
						fail_msg("%s: byte 0x%02x at "
						    "%zu", row,
						    (unsigned char)buf[i], i);
				if (h == H_CLIENT_NAME || h == H_HEADER) {
					if (strstr(buf, "ZZ") != NULL)
						fail_msg("%s: logged: %s",
						    row, buf);
					continue;
				}
				if (p && h != H_HELO && h != H_CMD &&
				    h != H_QID && strstr(buf, "ZZ") != NULL)
					fail_msg("%s: clear text: %.300s",
					    row, buf);
				if (p && h != H_HELO && h != H_CMD &&
				    h != H_QID)
					continue;
				/* in clear: escaped, or cut by the session */
				if (k == K_10K && h == H_QID) {
					/* a queue id is cut to its cap
					 * quietly: it only names the line */
					if (strstr(buf, ": reject ") - buf >
					    (SESS_QID_MAX - 1) * 4)
						fail_msg("%s: long: %.300s",
						    row, buf);
				} else if (k == K_10K && h == H_IP) {
					/* the MTA's own text, cut quietly
					 * at SESS_IP_MAX like the qid */
					if (strstr(buf, "]:25 ") - buf >
					    40 + (SESS_IP_MAX - 1) * 4)
						fail_msg("%s: long: %.300s",
						    row, buf);
				} else if (k == K_10K) {
					if (strstr(buf, "...") == NULL)
						fail_msg("%s: not cut: %.300s",
						    row, buf);
				} else if (strstr(buf, k == K_CTL ? "ZZ\\x0d"
				    : "ZZ\\xc3\\xa9\\xff") == NULL &&
				    !(h == H_CMD && strstr(buf,
				    "command=ZZ") != NULL))
					fail_msg("%s: not escaped: %.300s",
					    row, buf);
			}
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_returns_buf),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_cut_twice),
		cmocka_unit_test(test_huge_reply),
		cmocka_unit_test(test_small_buffers),
		cmocka_unit_test(test_worst_case_bounded),
		cmocka_unit_test(test_privacy),
		cmocka_unit_test(test_privacy_off),
		cmocka_unit_test(test_privacy_key),
		cmocka_unit_test(test_privacy_long),
		cmocka_unit_test(test_privacy_split_reply),
		cmocka_unit_test(test_privacy_template_vars),
		cmocka_unit_test(test_privacy_helo),
		cmocka_unit_test(test_hostile_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

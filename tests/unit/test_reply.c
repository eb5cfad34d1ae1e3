/*
 * test_reply.c - unit tests for reply.c: parsing, validation and the
 * Postfix/Sendmail linter (one table), template expansion with hostile
 * values, wrapping, cutting at 32 lines, formatting and '%' escaping.
 * Expected values come from RFC 5321/3463, DESIGN.md §3/§4 and hand
 * computation (split points, lengths), never from reply.c itself.
 * Threads: none. Memory: every test frees what it parsed (ASan checks).
 */
#include "testutil.h"

#include "diag.h"
#include "reply.h"
#include "stage.h"

#define T_FILE	"rules/test.rules"
#define T_LINE	42

/* Collects failures of a table so that one run shows all of them. */
static int
check(int ok, const char *name, const char *what, const char *got,
    const char *want)
{
	if (!ok)
		print_error("case %s: %s: got \"%s\", want \"%s\"\n", name,
		    what, got, want);
	return ok ? 0 : 1;
}

static int
check_n(long got, long want, const char *name, const char *what)
{
	if (got != want)
		print_error("case %s: %s: got %ld, want %ld\n", name, what,
		    got, want);
	return got != want;
}

static int
parse(struct reply *r, const char *const *lines, size_t n, enum stage st,
    enum action act, struct diag *d)
{
	struct reply_ctx ctx = { T_FILE, T_LINE, st, act };

	return reply_parse(r, lines, n, &ctx, d);
}

/* A struct reply that owns nothing, as reply_parse leaves it on -1. */
static int
is_empty(const struct reply *r)
{
	return r->pieces == NULL && r->line_first == NULL && r->buf == NULL &&
	    r->npieces == 0 && r->nlines == 0;
}

/* --- the linter table ---------------------------------------------- */

struct lint_case {
	const char	*name;
	const char	*lines[4];
	size_t		n;
	enum stage	stage;
	enum action	action;
	int		ret;
	long		errs, warns;
	const char	*first;		/* substring of the first message */
	const char	*any;		/* substring of some message */
};

static const struct lint_case lint_cases[] = {
	/* Accepted as they are: DESIGN.md §3 and §4 examples. */
	{ "policy-550-envfrom", { "550 5.7.1 Rejected" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, 0, 0, 0, NULL, NULL },
	{ "auth-530-envfrom", { "530 5.7.0 Authentication required" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, 0, 0, 0, NULL, NULL },
	{ "tls-538-envfrom", { "538 5.7.11 Encryption required for "
	    "requested authentication mechanism" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, 0, 0, 0, NULL, NULL },
	{ "owned-553-envfrom", { "553 5.7.1 Sender not owned" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, 0, 0, 0, NULL, NULL },
	{ "rate-450-envrcpt", { "450 4.7.1 Too many recipients from "
	    "%{auth_user}, retry in %{retry_after}s" }, 1,
	    STAGE_ENVRCPT, ACTION_TEMPFAIL, 0, 0, 0, NULL, NULL },
	{ "rcpt-452-envrcpt", { "452 4.5.3 Too many recipients" }, 1,
	    STAGE_ENVRCPT, ACTION_TEMPFAIL, 0, 0, 0, NULL, NULL },
	{ "rcpt-551", { "551 5.1.6 User not local" }, 1,
	    STAGE_ENVRCPT, ACTION_REJECT, 0, 0, 0, NULL, NULL },
	{ "mail-455", { "455 4.5.4 Parameters unavailable" }, 1,
	    STAGE_ENVFROM, ACTION_TEMPFAIL, 0, 0, 0, NULL, NULL },
	{ "mail-555", { "555 5.5.4 Parameters not recognized" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, 0, 0, 0, NULL, NULL },
	{ "data-554", { "554 5.7.1 No" }, 1,
	    STAGE_DATA, ACTION_REJECT, 0, 0, 0, NULL, NULL },
	{ "header-550", { "550 5.7.1 Bad header" }, 1,
	    STAGE_HEADER, ACTION_REJECT, 0, 0, 0, NULL, NULL },
	{ "eom-552", { "552 5.3.4 Message too big" }, 1,
	    STAGE_EOM, ACTION_REJECT, 0, 0, 0, NULL, NULL },
	{ "eom-451", { "451 4.3.0 Temporary policy failure" }, 1,
	    STAGE_EOM, ACTION_TEMPFAIL, 0, 0, 0, NULL, NULL },
	{ "421-envrcpt-tempfail", { "421 4.7.0 Closing" }, 1,
	    STAGE_ENVRCPT, ACTION_TEMPFAIL, 0, 0, 0, NULL, NULL },
	{ "421-unknown", { "421 4.7.0 Bye" }, 1,
	    STAGE_UNKNOWN, ACTION_TEMPFAIL, 0, 0, 0, NULL, NULL },
	{ "450-unknown", { "450 4.7.1 Slow down" }, 1,
	    STAGE_UNKNOWN, ACTION_TEMPFAIL, 0, 0, 0, NULL, NULL },
	{ "literal-percent", { "550 5.7.1 100%% sure, 5% off, %x" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, 0, 0, 0, NULL, NULL },
	{ "all-vars-envrcpt", { "450 4.7.1 %{client_ip} %{client_name} "
	    "%{helo} %{sender} %{rcpt} %{auth_user} %{rule} "
	    "%{retry_after} %{queue_id}" }, 1,
	    STAGE_ENVRCPT, ACTION_TEMPFAIL, 0, 0, 0, NULL, NULL },
	{ "multi-ok", { "550 5.7.1 first", "550 5.7.1 second", "third" }, 3,
	    STAGE_ENVRCPT, ACTION_REJECT, 0, 0, 0, NULL, NULL },
	{ "multi-hyphen-ok", { "550-5.7.1 first", "550 5.7.1 second" }, 2,
	    STAGE_ENVRCPT, ACTION_REJECT, 0, 0, 0, NULL, NULL },

	/* Code and enhanced code syntax (DESIGN.md §3, RFC 3463). */
	{ "code-2-digits", { "55 5.7.1 x" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "code \"55\" is not three digits", NULL },
	{ "code-4-digits", { "5500 5.7.1 x" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "is not three digits", NULL },
	{ "code-2xx", { "250 2.0.0 Ok" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "code 250 must start with 4 or 5", NULL },
	{ "code-second-digit", { "560 5.7.1 x" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "second digit must be 0-5", NULL },
	{ "class-mismatch", { "550 4.7.1 x" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "reply: enhanced code class 4 does not match reply code 550",
	    NULL },
	{ "subject-8", { "550 5.8.1 x" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "enhanced code subject 8 is not 0-7", NULL },
	{ "detail-4-digits", { "550 5.7.1000 x" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "enhanced code \"5.7.1000\" is not X.Y.Z", NULL },
	{ "xcode-2-parts", { "550 5.7 x" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "enhanced code \"5.7\" is not X.Y.Z", NULL },
	/* Fuzz finding: ten digits overflowed an int while parsing. */
	{ "xcode-overflow", { "550 3333333333.7.1 x" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "enhanced code \"3333333333.7.1\" is not X.Y.Z", NULL },
	{ "xcode-junk", { "550 +5.7.1 x" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "enhanced code \"+5.7.1\" is not X.Y.Z", NULL },
	{ "xcode-absent", { "550 Rejected" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 2, 0,
	    "enhanced code \"Rejected\" is not X.Y.Z", "reply text is empty" },
	{ "code-only", { "550" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 2, 0,
	    "enhanced code missing", "reply text is empty" },
	{ "text-empty", { "550 5.7.1" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "reply: reply text is empty", NULL },

	/* Action against code (DESIGN.md §3). */
	{ "tempfail-5xx", { "550 5.7.1 x" }, 1,
	    STAGE_ENVFROM, ACTION_TEMPFAIL, -1, 1, 0,
	    "reply: action tempfail needs a 4xx code, got 550", NULL },
	{ "reject-4xx", { "450 4.7.1 x" }, 1,
	    STAGE_ENVRCPT, ACTION_REJECT, -1, 1, 0,
	    "reply: action reject needs a 5xx code, got 450", NULL },
	{ "reject-421", { "421 4.7.0 Closing" }, 1,
	    STAGE_ENVRCPT, ACTION_REJECT, -1, 1, 0,
	    "action reject needs a 5xx code, got 421", NULL },
	{ "accept-no-reply", { "550 5.7.1 x" }, 1,
	    STAGE_ENVFROM, ACTION_ACCEPT, -1, 1, 0,
	    "action accept sends no reply", NULL },

	/* Stage linter (DESIGN.md §4). */
	{ "connect-554", { "554 5.7.1 Go away" }, 1,
	    STAGE_CONNECT, ACTION_REJECT, 0, 0, 1,
	    "reply: custom text at stage connect is not in the greeting: "
	    "Postfix greets with its own 554 and shows this reply from MAIL "
	    "FROM on; Sendmail does not show it", NULL },
	{ "connect-codes-only", { "421 4.7.0" }, 1,
	    STAGE_CONNECT, ACTION_TEMPFAIL, 0, 0, 0, NULL, NULL },
	{ "connect-554-codes-only", { "554 5.7.1" }, 1,
	    STAGE_CONNECT, ACTION_REJECT, 0, 0, 0, NULL, NULL },
	{ "connect-421", { "421 4.7.0 Not now" }, 1,
	    STAGE_CONNECT, ACTION_TEMPFAIL, 0, 0, 1,
	    "custom text at stage connect is never shown", NULL },
	{ "connect-450", { "450 4.7.1 Later" }, 1,
	    STAGE_CONNECT, ACTION_TEMPFAIL, 0, 0, 2,
	    "greets with its own 220", NULL },
	{ "helo-421", { "421 4.7.0 Bad HELO, closing" }, 1,
	    STAGE_HELO, ACTION_TEMPFAIL, 0, 0, 0, NULL, NULL },
	{ "connect-550", { "550 5.7.1 Go away" }, 1,
	    STAGE_CONNECT, ACTION_REJECT, 0, 0, 2,
	    "custom text at stage connect",
	    "does not list 550 for the greeting (stage connect)" },
	{ "helo-550", { "550 5.7.1 Bad HELO" }, 1,
	    STAGE_HELO, ACTION_REJECT, 0, 0, 1,
	    "Postfix and Sendmail still answer the HELO with 250",
	    "apply this reply from MAIL FROM on" },
	{ "helo-504", { "504 5.5.2 Need FQDN" }, 1,
	    STAGE_HELO, ACTION_REJECT, 0, 0, 1,
	    "stage helo", NULL },
	{ "helo-554", { "554 5.7.1 Bad HELO" }, 1,
	    STAGE_HELO, ACTION_REJECT, 0, 0, 2,
	    "stage helo", "does not list 554 for HELO/EHLO (stage helo)" },
	{ "unknown-5xx", { "550 5.5.2 No" }, 1,
	    STAGE_UNKNOWN, ACTION_REJECT, -1, 1, 0,
	    "reply: stage unknown needs a 4xx code: Postfix answers unknown "
	    "commands with its own 500 5.5.2 and honours only 4xx from a "
	    "milter", NULL },
	{ "mail-450", { "450 4.7.1 Try later" }, 1,
	    STAGE_ENVFROM, ACTION_TEMPFAIL, 0, 0, 1,
	    "reply: RFC 5321 does not list 450 for MAIL FROM (stage "
	    "envfrom); clients may misread it", NULL },
	{ "rcpt-554", { "554 5.7.1 No" }, 1,
	    STAGE_ENVRCPT, ACTION_REJECT, 0, 0, 1,
	    "does not list 554 for RCPT TO (stage envrcpt)", NULL },
	{ "data-553", { "553 5.7.1 No" }, 1,
	    STAGE_DATA, ACTION_REJECT, 0, 0, 1,
	    "does not list 553 for DATA (stage data)", NULL },
	{ "eom-530", { "530 5.7.0 Auth" }, 1,
	    STAGE_EOM, ACTION_REJECT, 0, 0, 1,
	    "does not list 530 for end of data (stage eom)", NULL },

	/* Variables at stages without a value. */
	{ "rcpt-at-envfrom", { "550 5.7.1 Not for %{rcpt}" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "reply: %{rcpt} has no value at stage envfrom", NULL },
	{ "rcpt-at-data", { "550 5.7.1 Not for %{rcpt}" }, 1,
	    STAGE_DATA, ACTION_REJECT, -1, 1, 0,
	    "%{rcpt} has no value at stage data", NULL },
	{ "sender-at-unknown", { "450 4.7.1 %{sender}" }, 1,
	    STAGE_UNKNOWN, ACTION_TEMPFAIL, -1, 1, 0,
	    "%{sender} has no value at stage unknown", NULL },
	{ "queue-id-at-helo", { "421 4.7.0 id %{queue_id}" }, 1,
	    STAGE_HELO, ACTION_TEMPFAIL, -1, 1, 0,
	    "%{queue_id} has no value at stage helo", NULL },
	{ "helo-at-connect", { "554 5.7.1 %{helo} %{helo}" }, 1,
	    STAGE_CONNECT, ACTION_REJECT, -1, 1, 1,
	    "custom text at stage connect",
	    "%{helo} has no value at stage connect" },
	{ "auth-user-at-helo", { "550 5.7.1 %{auth_user}" }, 1,
	    STAGE_HELO, ACTION_REJECT, -1, 1, 1,
	    "stage helo", "%{auth_user} has no value at stage helo" },

	/* Template syntax. */
	{ "unknown-var", { "550 5.7.1 %{bogus}" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "reply: unknown template variable %{bogus}", NULL },
	{ "empty-var", { "550 5.7.1 %{}" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "unknown template variable %{}", NULL },
	{ "unterminated-var", { "550 5.7.1 50%{client_ip" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "reply: unterminated %{ in text", NULL },

	/* Bytes that must never reach the wire. */
	{ "crlf", { "550 5.7.1 bad\r\n250 ok" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "reply: CR or LF in text", NULL },
	{ "tab", { "550 5.7.1 tab\there" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "reply: control byte 0x09 in text", NULL },
	{ "del", { "550 5.7.1 del\x7f" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "control byte 0x7f in text", NULL },
	{ "utf8", { "550 5.7.1 caf\xc3\xa9" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 1, 0,
	    "reply: non-ASCII byte 0xc3 in text", NULL },

	/* Multi-line replies. */
	{ "multi-code-differs", { "550 5.7.1 first", "451 4.7.1 second" }, 2,
	    STAGE_ENVRCPT, ACTION_REJECT, -1, 1, 0,
	    "reply: line 2: code differs from the first line's "
	    "\"550 5.7.1\"", NULL },
	{ "multi-xcode-differs", { "550 5.7.1 a", "b", "550 5.7.2 c" }, 3,
	    STAGE_ENVRCPT, ACTION_REJECT, -1, 1, 0,
	    "line 3: code differs", NULL },
	{ "multi-code-no-xcode", { "550 5.7.1 a", "550 b" }, 2,
	    STAGE_ENVRCPT, ACTION_REJECT, -1, 1, 0,
	    "line 2: code differs", NULL },
	{ "multi-ctl-line2", { "550 5.7.1 ok", "bad\x01" }, 2,
	    STAGE_ENVRCPT, ACTION_REJECT, -1, 1, 0,
	    "reply: line 2: control byte 0x01 in text", NULL },

	/* Every problem is reported, not only the first. */
	{ "all-problems", { "250 4.9.1 a\tb %{nope}" }, 1,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 5, 0,
	    "code 250 must start with 4 or 5", "unknown template variable" },
	{ "all-problems-multi", { "550 5.7.1 a\r", "b\xff", "c %{rcpt}" }, 3,
	    STAGE_ENVFROM, ACTION_REJECT, -1, 3, 0,
	    "line 1: CR or LF in text", "line 2: non-ASCII byte 0xff" },
};

static void
test_lint_table(void **state)
{
	const struct lint_case *c;
	struct reply r;
	struct diag d;
	size_t i, k;
	int bad = 0, ret, found;

	(void)state;
	for (i = 0; i < NELEM(lint_cases); i++) {
		c = &lint_cases[i];
		diag_init(&d);
		ret = parse(&r, c->lines, c->n, c->stage, c->action, &d);
		bad += check_n(ret, c->ret, c->name, "return");
		bad += check_n((long)d.errors, c->errs, c->name, "errors");
		bad += check_n((long)d.warnings, c->warns, c->name,
		    "warnings");
		if (c->first != NULL) {
			bad += check(d.n > 0 && strstr(d.v[0].msg, c->first) !=
			    NULL, c->name, "first message",
			    d.n > 0 ? d.v[0].msg : "(none)", c->first);
		}
		if (c->any != NULL) {
			found = 0;
			for (k = 0; k < d.n; k++)
				if (strstr(d.v[k].msg, c->any) != NULL)
					found = 1;
			bad += check(found, c->name, "some message",
			    d.n > 0 ? d.v[d.n - 1].msg : "(none)", c->any);
		}
		/* FILE:LINE of the reply setting, on every entry. */
		for (k = 0; k < d.n; k++) {
			bad += check(strcmp(d.v[k].file, T_FILE) == 0, c->name,
			    "file", d.v[k].file, T_FILE);
			bad += check_n(d.v[k].line, T_LINE, c->name, "line");
		}
		if (ret == -1)
			bad += check(is_empty(&r), c->name, "reply after -1",
			    "owns memory", "empty");
		reply_fini(&r);
		diag_fini(&d);
	}
	assert_int_equal(bad, 0);
}

/* --- header templates (tag's add_header) ---------------------------- */

static void
test_tmpl_parse(void **state)
{
	struct reply_ctx ctx = { T_FILE, T_LINE, STAGE_ENVRCPT, ACTION_TAG };
	struct reply_vars vars = { { NULL } };
	struct reply_out *out = malloc(sizeof(*out));
	struct reply r;
	struct diag d;

	(void)state;
	assert_non_null(out);
	diag_init(&d);
	assert_int_equal(reply_tmpl_parse(&r, "rule=%{rule} rcpt=%{rcpt} 5%%",
	    &ctx, &d), 0);
	assert_int_equal(d.errors, 0);
	vars.v[RVAR_RULE] = "r1";
	vars.v[RVAR_RCPT] = "a@b\r\nX-Evil: 1";
	reply_expand(&r, &vars, out);
	assert_int_equal(out->nlines, 1);
	assert_string_equal(out->line[0], "rule=r1 rcpt=a@b??X-Evil: 1 5%");
	reply_fini(&r);

	/* Variables are checked against the stage; CR/LF are errors. */
	ctx.stage = STAGE_CONNECT;
	assert_int_equal(reply_tmpl_parse(&r, "%{rcpt}", &ctx, &d), -1);
	assert_int_equal(reply_tmpl_parse(&r, "a\nb", &ctx, &d), -1);
	assert_int_equal(d.errors, 2);
	assert_int_equal(d.v[0].line, T_LINE);
	assert_non_null(strstr(d.v[0].msg, "%{rcpt} has no value at stage "
	    "connect"));
	assert_true(is_empty(&r));
	diag_fini(&d);
	free(out);
}

/* --- parsing details ------------------------------------------------ */

static void
test_parse_pieces(void **state)
{
	const char *lines[] = {
		"550 5.7.1 Hi %{client_ip}, 100%% %x",
		"550 5.7.1 %{rule}",
		"",
	};
	struct reply r;
	struct diag d;

	(void)state;
	diag_init(&d);
	assert_int_equal(parse(&r, lines, 3, STAGE_ENVRCPT, ACTION_REJECT,
	    &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(r.code, 550);
	assert_int_equal(r.xclass, 5);
	assert_int_equal(r.xsubject, 7);
	assert_int_equal(r.xdetail, 1);
	assert_int_equal(r.nlines, 3);
	/* "Hi ", client_ip, ", 100% %x" | rule | (none) */
	assert_int_equal(r.npieces, 4);
	assert_int_equal(r.line_first[0], 0);
	assert_int_equal(r.line_first[1], 3);
	assert_int_equal(r.line_first[2], 4);
	assert_int_equal(r.pieces[0].var, -1);
	assert_int_equal(r.pieces[0].len, 3);
	assert_memory_equal(r.pieces[0].text, "Hi ", 3);
	assert_int_equal(r.pieces[1].var, RVAR_CLIENT_IP);
	assert_int_equal(r.pieces[2].var, -1);
	assert_int_equal(r.pieces[2].len, 9);
	assert_memory_equal(r.pieces[2].text, ", 100% %x", 9);
	assert_int_equal(r.pieces[3].var, RVAR_RULE);
	assert_int_equal(r.vars, (1u << RVAR_CLIENT_IP) | (1u << RVAR_RULE));
	reply_fini(&r);
	/* A zeroed (finished) reply may be finished again. */
	reply_fini(&r);
	assert_true(is_empty(&r));
	diag_fini(&d);
}

static void
test_parse_no_lines(void **state)
{
	struct reply r;
	struct diag d;

	(void)state;
	diag_init(&d);
	assert_int_equal(parse(&r, NULL, 0, STAGE_ENVFROM, ACTION_REJECT, &d),
	    -1);
	assert_int_equal(d.errors, 1);
	assert_non_null(strstr(d.v[0].msg, "no reply given"));
	assert_true(is_empty(&r));
	reply_fini(&r);
	diag_fini(&d);
}

static void
test_parse_too_many_lines(void **state)
{
	const char *lines[33];
	struct reply r;
	struct diag d;
	size_t i;

	(void)state;
	lines[0] = "550 5.7.1 first";
	for (i = 1; i < 33; i++)
		lines[i] = "more";
	diag_init(&d);
	assert_int_equal(parse(&r, lines, 32, STAGE_ENVRCPT, ACTION_REJECT,
	    &d), 0);
	assert_int_equal(d.n, 0);
	reply_fini(&r);
	assert_int_equal(parse(&r, lines, 33, STAGE_ENVRCPT, ACTION_REJECT,
	    &d), -1);
	assert_int_equal(d.errors, 1);
	assert_string_equal(d.v[0].msg, "reply: 33 lines, at most 32");
	assert_true(is_empty(&r));
	diag_fini(&d);
}

/*
 * One literal line of 'a's: 32 * 490 bytes fill exactly 32 hard-cut
 * lines; one byte more needs a 33rd and is an error. A long line that
 * fits is no error at all.
 */
static void
test_parse_literal_wrap_limit(void **state)
{
	static const struct {
		size_t	textlen;
		int	ret;
	} cases[] = {
		{ 1000, 0 },
		{ 32 * 490, 0 },
		{ 32 * 490 + 1, -1 },
	};
	const char *lines[1];
	struct reply r;
	struct diag d;
	char *s;
	size_t i;
	int ret;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		s = malloc(10 + cases[i].textlen + 1);
		assert_non_null(s);
		memcpy(s, "550 5.7.1 ", 10);
		memset(s + 10, 'a', cases[i].textlen);
		s[10 + cases[i].textlen] = '\0';
		lines[0] = s;
		diag_init(&d);
		ret = parse(&r, lines, 1, STAGE_ENVFROM, ACTION_REJECT, &d);
		if (ret != cases[i].ret)
			fail_msg("len %zu: got %d, want %d", cases[i].textlen,
			    ret, cases[i].ret);
		if (ret == -1) {
			assert_int_equal(d.errors, 1);
			assert_non_null(strstr(d.v[0].msg,
			    "needs more than 32 lines when wrapped at 490"));
		} else {
			assert_int_equal(d.n, 0);
		}
		reply_fini(&r);
		diag_fini(&d);
		free(s);
	}
}

/* --- defaults and expansion ---------------------------------------- */

static void
test_default(void **state)
{
	static const struct {
		enum action	a;
		int		ret;
		const char	*want;
	} cases[] = {
		{ ACTION_REJECT, 0, "550 5.7.1 Message rejected by policy" },
		{ ACTION_TEMPFAIL, 0, "450 4.7.1 Try again later" },
		{ ACTION_ACCEPT, -1, NULL },
		{ ACTION_DISCARD, -1, NULL },
	};
	struct reply_out *out;
	struct reply r;
	char buf[128];
	size_t i;

	(void)state;
	out = malloc(sizeof(*out));
	assert_non_null(out);
	for (i = 0; i < NELEM(cases); i++) {
		assert_int_equal(reply_default(&r, cases[i].a), cases[i].ret);
		if (cases[i].ret == 0) {
			reply_expand(&r, NULL, out);
			reply_out_format(out, "\r\n", buf, sizeof(buf));
			if (strcmp(buf, cases[i].want) != 0)
				fail_msg("%s: got \"%s\", want \"%s\"",
				    action_name(cases[i].a), buf,
				    cases[i].want);
			assert_int_equal(out->code, cases[i].a ==
			    ACTION_REJECT ? 550 : 450);
		} else {
			assert_true(is_empty(&r));
		}
		reply_fini(&r);
	}
	free(out);
}

/* Parses one line at envrcpt/reject and expands it with vars. */
static void
expand1(const char *line, const struct reply_vars *vars,
    struct reply_out *out)
{
	const char *lines[] = { line };
	struct reply r;
	struct diag d;

	diag_init(&d);
	assert_int_equal(parse(&r, lines, 1, STAGE_ENVRCPT, ACTION_REJECT,
	    &d), 0);
	reply_expand(&r, vars, out);
	reply_fini(&r);
	diag_fini(&d);
}

static void
test_expand_hostile(void **state)
{
	static const struct {
		const char	*value;
		const char	*want;		/* line 0 of the reply */
	} cases[] = {
		{ "mx.example", "helo=mx.example." },
		{ "100%", "helo=100%." },
		{ "%{rcpt}", "helo=%{rcpt}." },
		{ "evil\r\n250 2.0.0 Ok", "helo=evil??250 2.0.0 Ok." },
		{ "a\x01" "b\xff" "c\x7f", "helo=a?b?c?." },
		{ "tab\tnul", "helo=tab?nul." },
		{ "", "helo=." },
		{ NULL, "helo=." },
	};
	struct reply_out *out;
	struct reply_vars v;
	size_t i;

	(void)state;
	out = malloc(sizeof(*out));
	assert_non_null(out);
	for (i = 0; i < NELEM(cases); i++) {
		memset(&v, 0, sizeof(v));
		v.v[RVAR_HELO] = cases[i].value;
		expand1("550 5.7.1 helo=%{helo}.", &v, out);
		assert_int_equal(out->nlines, 1);
		if (strcmp(out->line[0], cases[i].want) != 0)
			fail_msg("value %zu: got \"%s\", want \"%s\"", i,
			    out->line[0], cases[i].want);
	}
	assert_string_equal(out->rcode, "550");
	assert_string_equal(out->xcode, "5.7.1");
	assert_int_equal(out->code, 550);
	/* vars == NULL: every variable is unknown. */
	expand1("550 5.7.1 [%{client_ip}]", NULL, out);
	assert_string_equal(out->line[0], "[]");
	free(out);
}

/* '%' stays single in reply_out and is doubled only for libmilter. */
static void
test_expand_percent_esc(void **state)
{
	struct reply_out *out;
	struct reply_vars v;
	char buf[64];

	(void)state;
	out = malloc(sizeof(*out));
	assert_non_null(out);
	memset(&v, 0, sizeof(v));
	v.v[RVAR_SENDER] = "50%off@example.com";
	expand1("550 5.7.1 100%% no: %{sender}", &v, out);
	assert_string_equal(out->line[0], "100% no: 50%off@example.com");
	assert_int_equal(reply_milter_esc(out->line[0], buf, sizeof(buf)),
	    29);
	assert_string_equal(buf, "100%% no: 50%%off@example.com");
	free(out);
}

/* A 10 KB value is cut to REPLY_VAR_MAX (256) bytes. */
static void
test_expand_10k(void **state)
{
	struct reply_out *out;
	struct reply_vars v;
	char *big;
	size_t i;

	(void)state;
	out = malloc(sizeof(*out));
	big = malloc(10240 + 1);
	assert_non_null(out);
	assert_non_null(big);
	memset(big, 'x', 10240);
	big[10240] = '\0';
	memset(&v, 0, sizeof(v));
	v.v[RVAR_CLIENT_NAME] = big;
	expand1("550 5.7.1 <%{client_name}>", &v, out);
	assert_int_equal(out->nlines, 1);
	/* "<" + 256 'x' + ">" */
	assert_int_equal(strlen(out->line[0]), 258);
	assert_int_equal(out->line[0][0], '<');
	for (i = 1; i <= 256; i++)
		assert_int_equal(out->line[0][i], 'x');
	assert_int_equal(out->line[0][257], '>');
	free(big);
	free(out);
}

/*
 * 20 template lines, each "%{client_name} %{helo}" with 256-byte values:
 * 513 bytes, wrapped at the space (index 256) into two 256-byte lines, 40
 * in all. 32 are kept; line 31 is the 16th helo line, marked "...".
 */
static void
test_expand_40_lines_cut(void **state)
{
	const char *lines[20];
	char name[257], helo[257];
	struct reply_out *out;
	struct reply_vars v;
	struct reply r;
	struct diag d;
	size_t i;

	(void)state;
	lines[0] = "450 4.7.1 %{client_name} %{helo}";
	for (i = 1; i < 20; i++)
		lines[i] = "%{client_name} %{helo}";
	memset(name, 'n', 256);
	name[256] = '\0';
	memset(helo, 'h', 256);
	helo[256] = '\0';
	memset(&v, 0, sizeof(v));
	v.v[RVAR_CLIENT_NAME] = name;
	v.v[RVAR_HELO] = helo;
	out = malloc(sizeof(*out));
	assert_non_null(out);
	diag_init(&d);
	assert_int_equal(parse(&r, lines, 20, STAGE_ENVRCPT, ACTION_TEMPFAIL,
	    &d), 0);
	reply_expand(&r, &v, out);
	assert_int_equal(out->nlines, 32);
	for (i = 0; i < 31; i++) {
		assert_int_equal(strlen(out->line[i]), 256);
		assert_int_equal(out->line[i][0], i % 2 == 0 ? 'n' : 'h');
		assert_int_equal(out->line[i][255], i % 2 == 0 ? 'n' : 'h');
	}
	assert_int_equal(strlen(out->line[31]), 259);
	assert_int_equal(out->line[31][255], 'h');
	assert_string_equal(out->line[31] + 256, "...");
	/* Lines never overlap: each one ends before the next starts. */
	for (i = 0; i + 1 < 32; i++)
		assert_true(out->line[i] + strlen(out->line[i]) <
		    out->line[i + 1]);
	reply_fini(&r);
	diag_fini(&d);
	free(out);
}

/* --- wrapping (reply_out_set) -------------------------------------- */

/* Text as runs of one byte: { 'a', 480 }, { ' ', 1 }, ... */
struct run {
	char	c;
	size_t	n;
};

static size_t
build(char *buf, const struct run *runs)
{
	size_t len = 0;

	for (; runs->n > 0; runs++) {
		memset(buf + len, runs->c, runs->n);
		len += runs->n;
	}
	buf[len] = '\0';
	return len;
}

static void
test_wrap_word_boundary(void **state)
{
	static const struct {
		const char	*name;
		struct run	text[6];
		struct run	want[3][4];	/* expected lines as runs */
		size_t		nlines;
	} cases[] = {
		/* 496 bytes; spaces at 480 and 491: 491 > 490, so 480. */
		{ "last-space-before-limit",
		    { { 'a', 480 }, { ' ', 1 }, { 'b', 10 }, { ' ', 1 },
		    { 'c', 4 }, { 0, 0 } },
		    { { { 'a', 480 }, { 0, 0 } },
		    { { 'b', 10 }, { ' ', 1 }, { 'c', 4 }, { 0, 0 } } }, 2 },
		/* A space exactly at index 490 is at the limit: used. */
		{ "space-at-limit",
		    { { 'a', 490 }, { ' ', 1 }, { 't', 4 }, { 0, 0 } },
		    { { { 'a', 490 }, { 0, 0 } }, { { 't', 4 }, { 0, 0 } } },
		    2 },
		/* No space: hard cut at 490. */
		{ "hard-cut",
		    { { 'a', 500 }, { 0, 0 } },
		    { { { 'a', 490 }, { 0, 0 } }, { { 'a', 10 }, { 0, 0 } } },
		    2 },
		/* Only a leading space: a cut there would leave nothing. */
		{ "leading-space-only",
		    { { ' ', 1 }, { 'a', 495 }, { 0, 0 } },
		    { { { ' ', 1 }, { 'a', 489 }, { 0, 0 } },
		    { { 'a', 6 }, { 0, 0 } } }, 2 },
		/* Exactly 490 bytes: no wrap. */
		{ "exact-fit",
		    { { 'a', 245 }, { ' ', 1 }, { 'b', 244 }, { 0, 0 } },
		    { { { 'a', 245 }, { ' ', 1 }, { 'b', 244 }, { 0, 0 } } },
		    1 },
		/* 1200 bytes: words of 399 + space: cut twice at spaces. */
		{ "three-lines",
		    { { 'a', 399 }, { ' ', 1 }, { 'b', 399 }, { ' ', 1 },
		    { 'c', 400 }, { 0, 0 } },
		    { { { 'a', 399 }, { 0, 0 } }, { { 'b', 399 }, { 0, 0 } },
		    { { 'c', 400 }, { 0, 0 } } }, 3 },
	};
	struct reply_out *out;
	char *text, *want;
	size_t i, k;

	(void)state;
	out = malloc(sizeof(*out));
	text = malloc(4096);
	want = malloc(4096);
	assert_non_null(out);
	assert_non_null(text);
	assert_non_null(want);
	for (i = 0; i < NELEM(cases); i++) {
		build(text, cases[i].text);
		reply_out_set(out, 550, 5, 7, 1, text);
		if (out->nlines != cases[i].nlines)
			fail_msg("%s: got %zu lines, want %zu", cases[i].name,
			    out->nlines, cases[i].nlines);
		for (k = 0; k < cases[i].nlines; k++) {
			build(want, cases[i].want[k]);
			if (strcmp(out->line[k], want) != 0)
				fail_msg("%s: line %zu: got %zu bytes \"%.20s"
				    "...\", want %zu bytes \"%.20s...\"",
				    cases[i].name, k, strlen(out->line[k]),
				    out->line[k], strlen(want), want);
		}
	}
	free(want);
	free(text);
	free(out);
}

/* 20000 bytes without a space need 41 lines; 32 are kept. */
static void
test_out_set_cut(void **state)
{
	struct reply_out *out;
	char *text;
	size_t i;

	(void)state;
	out = malloc(sizeof(*out));
	text = malloc(20001);
	assert_non_null(out);
	assert_non_null(text);
	memset(text, 'z', 20000);
	text[20000] = '\0';
	reply_out_set(out, 451, 4, 3, 0, text);
	assert_int_equal(out->nlines, 32);
	for (i = 0; i < 31; i++)
		assert_int_equal(strlen(out->line[i]), 490);
	/* 487 'z' + "..." = 490 */
	assert_int_equal(strlen(out->line[31]), 490);
	assert_int_equal(out->line[31][486], 'z');
	assert_string_equal(out->line[31] + 487, "...");
	free(text);
	free(out);
}

static void
test_out_set_fixed(void **state)
{
	struct reply_out *out;
	char buf[128];

	(void)state;
	out = malloc(sizeof(*out));
	assert_non_null(out);
	reply_out_set(out, 451, 4, 3, 0,
	    "Temporary policy failure, try again later");
	assert_int_equal(out->code, 451);
	assert_string_equal(out->rcode, "451");
	assert_string_equal(out->xcode, "4.3.0");
	assert_int_equal(reply_out_format(out, "\r\n", buf, sizeof(buf)),
	    51);
	assert_string_equal(buf, "451 4.3.0 Temporary policy failure, try "
	    "again later");
	/* Cleaned like values: no CR/LF from anyone reaches the wire. */
	reply_out_set(out, 421, 4, 7, 0, "a\r\nb");
	assert_string_equal(out->line[0], "a??b");
	reply_out_set(out, 554, 5, 7, 999, NULL);
	assert_int_equal(out->nlines, 1);
	assert_string_equal(out->line[0], "");
	assert_string_equal(out->xcode, "5.7.999");
	free(out);
}

/* --- formatting ----------------------------------------------------- */

static void
test_format_multiline(void **state)
{
	static const struct {
		const char	*sep;
		const char	*want;
	} cases[] = {
		{ "\r\n", "550-5.7.1 first\r\n550-5.7.1 second\r\n"
		    "550 5.7.1 third" },
		{ "\n", "550-5.7.1 first\n550-5.7.1 second\n550 5.7.1 third" },
	};
	const char *lines[] = { "550 5.7.1 first", "second",
	    "550 5.7.1 third" };
	struct reply_out *out;
	struct reply r;
	struct diag d;
	char buf[256];
	size_t i, n;

	(void)state;
	out = malloc(sizeof(*out));
	assert_non_null(out);
	diag_init(&d);
	assert_int_equal(parse(&r, lines, 3, STAGE_EOM, ACTION_REJECT, &d), 0);
	reply_expand(&r, NULL, out);
	assert_int_equal(out->nlines, 3);
	for (i = 0; i < NELEM(cases); i++) {
		n = reply_out_format(out, cases[i].sep, buf, sizeof(buf));
		if (strcmp(buf, cases[i].want) != 0)
			fail_msg("sep %zu: got \"%s\", want \"%s\"", i, buf,
			    cases[i].want);
		assert_int_equal(n, strlen(cases[i].want));
	}
	n = reply_out_format_log(out, buf, sizeof(buf));
	assert_string_equal(buf, "550 5.7.1 first second third");
	assert_int_equal(n, 28);
	reply_fini(&r);
	diag_fini(&d);
	free(out);
}

/* An empty continuation line stays, without a trailing space. */
static void
test_format_empty_line(void **state)
{
	const char *lines[] = { "450 4.7.1 a", "", "b" };
	struct reply_out *out;
	struct reply r;
	struct diag d;
	char buf[128];

	(void)state;
	out = malloc(sizeof(*out));
	assert_non_null(out);
	diag_init(&d);
	assert_int_equal(parse(&r, lines, 3, STAGE_ENVRCPT, ACTION_TEMPFAIL,
	    &d), 0);
	reply_expand(&r, NULL, out);
	assert_int_equal(out->nlines, 3);
	reply_out_format(out, "\n", buf, sizeof(buf));
	assert_string_equal(buf, "450-4.7.1 a\n450-4.7.1\n450 4.7.1 b");
	reply_out_format_log(out, buf, sizeof(buf));
	assert_string_equal(buf, "450 4.7.1 a b");
	reply_fini(&r);
	diag_fini(&d);
	free(out);
}

static void
test_format_small_buf(void **state)
{
	static const struct {
		size_t		len;
		const char	*want;
	} cases[] = {
		{ 1, "" },
		{ 4, "550" },
		{ 10, "550-5.7.1" },
		{ 18, "550-5.7.1 first\r\n" },
		{ 19, "550-5.7.1 first\r\n5" },
	};
	const char *lines[] = { "550 5.7.1 first", "second" };
	struct reply_out *out;
	struct reply r;
	struct diag d;
	char buf[32];
	size_t i, n;

	(void)state;
	out = malloc(sizeof(*out));
	assert_non_null(out);
	diag_init(&d);
	assert_int_equal(parse(&r, lines, 2, STAGE_ENVRCPT, ACTION_REJECT,
	    &d), 0);
	reply_expand(&r, NULL, out);
	for (i = 0; i < NELEM(cases); i++) {
		memset(buf, '#', sizeof(buf));
		n = reply_out_format(out, "\r\n", buf, cases[i].len);
		if (strcmp(buf, cases[i].want) != 0)
			fail_msg("len %zu: got \"%s\", want \"%s\"",
			    cases[i].len, buf, cases[i].want);
		assert_int_equal(n, strlen(cases[i].want));
		/* Nothing written past len. */
		assert_int_equal(buf[cases[i].len], '#');
	}
	buf[0] = '#';
	assert_int_equal(reply_out_format(out, "\r\n", buf, 0), 0);
	assert_int_equal(buf[0], '#');
	memset(buf, '#', sizeof(buf));
	assert_int_equal(reply_out_format_log(out, buf, 12), 11);
	assert_string_equal(buf, "550 5.7.1 f");
	assert_int_equal(buf[12], '#');
	reply_fini(&r);
	diag_fini(&d);
	free(out);
}

static void
test_milter_esc(void **state)
{
	static const struct {
		const char	*in;
		size_t		len;
		const char	*want;
	} cases[] = {
		{ "", 8, "" },
		{ "plain", 8, "plain" },
		{ "100%", 8, "100%%" },
		{ "%%", 8, "%%%%" },
		{ "%", 2, "" },		/* "%%" does not fit in 1 byte */
		{ "a%b", 3, "a" },	/* never "a%" */
		{ "ab%", 4, "ab" },
		{ "ab%", 5, "ab%%" },
		{ "abcdef", 4, "abc" },
	};
	char buf[16];
	size_t i, n;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		memset(buf, '#', sizeof(buf));
		n = reply_milter_esc(cases[i].in, buf, cases[i].len);
		if (strcmp(buf, cases[i].want) != 0)
			fail_msg("\"%s\" len %zu: got \"%s\", want \"%s\"",
			    cases[i].in, cases[i].len, buf, cases[i].want);
		assert_int_equal(n, strlen(cases[i].want));
		assert_int_equal(buf[cases[i].len], '#');
	}
	assert_int_equal(reply_milter_esc("x", buf, 0), 0);
}

/* --- variable table --------------------------------------------------- */

static void
test_var_table(void **state)
{
	const unsigned all = STAGES_ALL;
	const unsigned mail = STAGE_BIT(STAGE_ENVFROM) |
	    STAGE_BIT(STAGE_ENVRCPT) | STAGE_BIT(STAGE_DATA) |
	    STAGE_BIT(STAGE_HEADER) | STAGE_BIT(STAGE_EOM);
	const struct {
		enum reply_var	v;
		const char	*name;
		unsigned	stages;
	} cases[] = {
		{ RVAR_CLIENT_IP, "client_ip", all },
		{ RVAR_CLIENT_NAME, "client_name", all },
		{ RVAR_HELO, "helo", all & ~STAGE_BIT(STAGE_CONNECT) },
		{ RVAR_SENDER, "sender", mail },
		{ RVAR_RCPT, "rcpt", STAGE_BIT(STAGE_ENVRCPT) },
		{ RVAR_AUTH_USER, "auth_user", mail },
		{ RVAR_RULE, "rule", all },
		{ RVAR_RETRY_AFTER, "retry_after", all },
		{ RVAR_QUEUE_ID, "queue_id", mail },
	};
	size_t i;

	(void)state;
	assert_int_equal(NELEM(cases), RVAR_COUNT);
	for (i = 0; i < NELEM(cases); i++) {
		if (strcmp(reply_var_name(cases[i].v), cases[i].name) != 0)
			fail_msg("var %d: got \"%s\", want \"%s\"",
			    (int)cases[i].v, reply_var_name(cases[i].v),
			    cases[i].name);
		if (reply_var_stages(cases[i].v) != cases[i].stages)
			fail_msg("%s: got stages 0x%x, want 0x%x",
			    cases[i].name, reply_var_stages(cases[i].v),
			    cases[i].stages);
	}
	assert_string_equal(reply_var_name(RVAR_COUNT), "?");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lint_table),
		cmocka_unit_test(test_parse_pieces),
		cmocka_unit_test(test_parse_no_lines),
		cmocka_unit_test(test_parse_too_many_lines),
		cmocka_unit_test(test_parse_literal_wrap_limit),
		cmocka_unit_test(test_default),
		cmocka_unit_test(test_expand_hostile),
		cmocka_unit_test(test_expand_percent_esc),
		cmocka_unit_test(test_expand_10k),
		cmocka_unit_test(test_expand_40_lines_cut),
		cmocka_unit_test(test_wrap_word_boundary),
		cmocka_unit_test(test_out_set_cut),
		cmocka_unit_test(test_out_set_fixed),
		cmocka_unit_test(test_format_multiline),
		cmocka_unit_test(test_format_empty_line),
		cmocka_unit_test(test_format_small_buf),
		cmocka_unit_test(test_milter_esc),
		cmocka_unit_test(test_var_table),
		cmocka_unit_test(test_tmpl_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_probe.c - unit tests for warden probe's pure parts (probe_smtp.c,
 * probe_out.c), fed from buffers: the SMTP reply parser (one table, also
 * fed one byte at a time and split at every offset), EHLO capabilities,
 * and every verdict function.
 * Expected values come from RFC 5321 4.2 / 4.5.3.1.5 (reply syntax, 512
 * octets), RFC 3463 (enhanced codes), RFC 3207, 4954, 6409 and Postfix's
 * documented replies, never from probe.c itself.
 * Threads: none. Memory: replies live on the heap (each is ~50 KB).
 */
#include "testutil.h"

#include <openssl/ssl.h>

#include "probe.h"

struct parse_case {
	const char	*name;
	const char	*in;
	size_t		inlen;		/* 0: strlen(in) */
	int		rc;		/* probe_reply_feed's return */
	size_t		used;		/* 0: all of it */
	int		code;
	size_t		nlines;
	int		enh[3];		/* {-1}: none */
	int		mismatch;
	const char	*text;		/* probe_reply_text, or NULL */
	const char	*last;		/* the last line's text, or NULL */
	const char	*err;		/* substring of r->err when rc == -1 */
};

static const struct parse_case parse_cases[] = {
	{ "one-line", "220 mx.example ESMTP\r\n", 0, 1, 0, 220, 1, { -1 }, 0,
	    "mx.example ESMTP", NULL, NULL },
	{ "multi", "250-mx\r\n250-PIPELINING\r\n250 SIZE 1000\r\n", 0, 1, 0,
	    250, 3, { -1 }, 0, "mx", "SIZE 1000", NULL },
	{ "code-only", "250\r\n", 0, 1, 0, 250, 1, { -1 }, 0, "", NULL,
	    NULL },
	{ "empty-continuation", "250-\r\n250 x\r\n", 0, 1, 0, 250, 2, { -1 },
	    0, "", "x", NULL },
	{ "enhanced", "550 5.1.1 <x@y>: User unknown\r\n", 0, 1, 0, 550, 1,
	    { 5, 1, 1 }, 0, "<x@y>: User unknown", NULL, NULL },
	{ "enhanced-3-digits", "250 2.999.999 ok\r\n", 0, 1, 0, 250, 1,
	    { 2, 999, 999 }, 0, "ok", NULL, NULL },
	{ "enhanced-only", "250 2.0.0\r\n", 0, 1, 0, 250, 1, { 2, 0, 0 }, 0,
	    "", NULL, NULL },
	{ "enhanced-mismatch", "550 4.7.1 try later\r\n", 0, 1, 0, 550, 1,
	    { 4, 7, 1 }, 1, "try later", NULL, NULL },
	{ "enh-two-parts", "250 2.0 ok\r\n", 0, 1, 0, 250, 1, { -1 }, 0,
	    "2.0 ok", NULL, NULL },
	{ "enh-detail-4-digits", "250 2.0.1000 ok\r\n", 0, 1, 0, 250, 1,
	    { -1 }, 0, "2.0.1000 ok", NULL, NULL },
	{ "enh-class-2-digits", "250 22.0.0 ok\r\n", 0, 1, 0, 250, 1, { -1 },
	    0, "22.0.0 ok", NULL, NULL },
	{ "enh-class-3", "354 3.0.0 go\r\n", 0, 1, 0, 354, 1, { -1 }, 0,
	    "3.0.0 go", NULL, NULL },
	{ "enh-glued", "250 2.0.0ok\r\n", 0, 1, 0, 250, 1, { -1 }, 0,
	    "2.0.0ok", NULL, NULL },
	{ "tab-and-utf8", "220 a\tcaf\xc3\xa9\r\n", 0, 1, 0, 220, 1, { -1 },
	    0, "a\tcaf\xc3\xa9", NULL, NULL },
	{ "trailing-next-reply", "220 a\r\n250 b\r\n", 0, 1, 7, 220, 1,
	    { -1 }, 0, "a", NULL, NULL },
	{ "incomplete", "220 no end yet", 0, 0, 0, 220, 0, { -1 }, 0, NULL,
	    NULL, NULL },
	{ "incomplete-multi", "250-a\r\n250-b\r\n", 0, 0, 0, 250, 2, { -1 },
	    0, NULL, NULL, NULL },
	{ "empty", "", 0, 0, 0, 0, 0, { -1 }, 0, NULL, NULL, NULL },
	/* violations */
	{ "bare-lf", "220 x\n", 0, -1, 0, 0, 0, { -1 }, 0, NULL, NULL,
	    "line 1 ends in a bare LF" },
	{ "lone-lf", "\n", 0, -1, 0, 0, 0, { -1 }, 0, NULL, NULL,
	    "bare LF" },
	{ "cr-cr-lf", "220 x\r\r\n", 0, -1, 0, 0, 0, { -1 }, 0, NULL, NULL,
	    "control byte 0x0d" },
	{ "code-changes", "220-a\r\n250 b\r\n", 0, -1, 0, 220, 1, { -1 }, 0,
	    NULL, NULL, "line 2 has code 250, line 1 had 220" },
	{ "code-1xx", "120 x\r\n", 0, -1, 0, 0, 0, { -1 }, 0, NULL, NULL,
	    "reply code" },
	{ "code-6xx", "600 x\r\n", 0, -1, 0, 0, 0, { -1 }, 0, NULL, NULL,
	    "reply code" },
	{ "code-260", "260 x\r\n", 0, -1, 0, 0, 0, { -1 }, 0, NULL, NULL,
	    "reply code" },
	{ "code-2-digits", "22 x\r\n", 0, -1, 0, 0, 0, { -1 }, 0, NULL, NULL,
	    "reply code" },
	{ "garbage", "SSH-2.0-OpenSSH\r\n", 0, -1, 0, 0, 0, { -1 }, 0, NULL,
	    NULL, "line 1 does not start with a reply code" },
	{ "no-separator", "220_x\r\n", 0, -1, 0, 0, 0, { -1 }, 0, NULL, NULL,
	    "no space or '-'" },
	{ "nul", "220 a\0b\r\n", 9, -1, 0, 0, 0, { -1 }, 0, NULL, NULL,
	    "control byte 0x00" },
	{ "del", "220 a\x7f" "b\r\n", 0, -1, 0, 0, 0, { -1 }, 0, NULL, NULL,
	    "control byte 0x7f" },
	{ "esc", "220 a\x1b[2J\r\n", 0, -1, 0, 0, 0, { -1 }, 0, NULL, NULL,
	    "line 1: control byte 0x1b" },
};

static struct probe_reply *
reply_new(void)
{
	struct probe_reply *r = malloc(sizeof(*r));

	assert_non_null(r);
	probe_reply_init(r);
	return r;
}

/* Feeds in as chunks of at most step bytes; returns the final rc. */
static int
feed_chunks(struct probe_reply *r, const char *in, size_t len, size_t step,
    size_t *used_total)
{
	size_t off = 0, n, used;
	int rc = 0;

	*used_total = 0;
	while (off < len) {
		n = len - off < step ? len - off : step;
		rc = probe_reply_feed(r, in + off, n, &used);
		*used_total += used;
		if (rc != 0)
			return rc;
		assert_int_equal(used, n);	/* 0: all consumed */
		off += n;
	}
	return rc;
}

static int
check_case(const struct parse_case *c, size_t step)
{
	struct probe_reply *r = reply_new();
	size_t len = c->inlen ? c->inlen : strlen(c->in), used, want_used;
	int rc, bad = 0;

	rc = feed_chunks(r, c->in, len, step, &used);
	want_used = c->used ? c->used : len;
#define BAD(...) do { print_error("case %s (step %zu): ", c->name, step); \
	print_error(__VA_ARGS__); print_error("\n"); bad = 1; } while (0)
	if (rc != c->rc)
		BAD("rc: got %d, want %d (err \"%s\")", rc, c->rc, r->err);
	if (c->rc != -1 && used != want_used)
		BAD("used: got %zu, want %zu", used, want_used);
	if (c->rc == -1 && strstr(r->err, c->err) == NULL)
		BAD("err: got \"%s\", want \"%s\"", r->err, c->err);
	if (c->rc == 1 && r->code != c->code)
		BAD("code: got %d, want %d", r->code, c->code);
	if (c->rc != -1 && r->nlines != c->nlines)
		BAD("nlines: got %zu, want %zu", r->nlines, c->nlines);
	if (c->rc == 1 && (r->enh[0] != c->enh[0] || (c->enh[0] >= 0 &&
	    (r->enh[1] != c->enh[1] || r->enh[2] != c->enh[2]))))
		BAD("enh: got %d.%d.%d, want %d.%d.%d", r->enh[0], r->enh[1],
		    r->enh[2], c->enh[0], c->enh[1], c->enh[2]);
	if (c->rc == 1 && r->enh_mismatch != c->mismatch)
		BAD("mismatch: got %d, want %d", r->enh_mismatch, c->mismatch);
	if (c->text != NULL && strcmp(probe_reply_text(r), c->text) != 0)
		BAD("text: got \"%s\", want \"%s\"", probe_reply_text(r),
		    c->text);
	if (c->last != NULL && (r->nlines == 0 ||
	    strcmp(r->text[r->nlines - 1], c->last) != 0))
		BAD("last line: got \"%s\", want \"%s\"",
		    r->nlines ? r->text[r->nlines - 1] : "", c->last);
#undef BAD
	free(r);
	return bad;
}

static void
test_parse_table(void **state)
{
	size_t i, steps[] = { 1, 2, 3, 7, 4096 }, s;
	int bad = 0;

	(void)state;
	for (i = 0; i < NELEM(parse_cases); i++)
		for (s = 0; s < NELEM(steps); s++)
			bad += check_case(&parse_cases[i], steps[s]);
	if (bad)
		fail_msg("%d parse case(s) failed", bad);
}

/* Split at every offset into two feeds: same reply as in one piece. */
static void
test_parse_every_split(void **state)
{
	const char in[] = "250-mx.example\r\n250-AUTH PLAIN LOGIN\r\n"
	    "250 ENHANCEDSTATUSCODES\r\n";
	struct probe_reply *r = reply_new();
	size_t len = sizeof(in) - 1, cut, u1, u2;
	int rc;

	(void)state;
	for (cut = 0; cut <= len; cut++) {
		probe_reply_init(r);
		rc = probe_reply_feed(r, in, cut, &u1);
		assert_int_equal(rc, cut == len ? 1 : 0);
		if (cut < len) {
			rc = probe_reply_feed(r, in + cut, len - cut, &u2);
			assert_int_equal(rc, 1);
			assert_int_equal(u1 + u2, len);
		}
		assert_int_equal(r->nlines, 3);
		assert_string_equal(r->text[1], "AUTH PLAIN LOGIN");
	}
	free(r);
}

/* RFC 5321 4.5.3.1.5: 512 octets with CRLF pass, 513 do not. */
static void
test_parse_line_limit(void **state)
{
	char line[600];
	struct probe_reply *r = reply_new();
	size_t used;

	(void)state;
	memset(line, 'x', sizeof(line));
	memcpy(line, "220 ", 4);
	memcpy(line + 510, "\r\n", 2);		/* 512 octets */
	assert_int_equal(probe_reply_feed(r, line, 512, &used), 1);
	assert_int_equal(used, 512);
	assert_int_equal(r->len[0], 506);
	assert_int_equal(strlen(r->text[0]), 506);

	probe_reply_init(r);
	memset(line, 'x', sizeof(line));
	memcpy(line, "220 ", 4);
	memcpy(line + 511, "\r\n", 2);		/* 513 octets */
	assert_int_equal(probe_reply_feed(r, line, 513, &used), -1);
	assert_non_null(strstr(r->err, "line 1 longer than 512 octets"));
	/* stays failed, consumes nothing more */
	assert_int_equal(probe_reply_feed(r, "220 x\r\n", 7, &used), -1);
	assert_int_equal(used, 0);

	/* 100 KB without LF stops at octet 513, not at the end */
	probe_reply_init(r);
	{
		char *big = malloc(100000);

		assert_non_null(big);
		memset(big, 'x', 100000);
		memcpy(big, "220 ", 4);
		assert_int_equal(probe_reply_feed(r, big, 100000, &used), -1);
		assert_int_equal(used, 512);
		free(big);
	}
	free(r);
}

static void
test_parse_line_count(void **state)
{
	char buf[PROBE_LINES_MAX * 8 + 16];
	struct probe_reply *r = reply_new();
	size_t i, o = 0, used;

	(void)state;
	for (i = 0; i + 1 < PROBE_LINES_MAX; i++)
		o += (size_t)sprintf(buf + o, "250-%02zu\r\n", i);
	o += (size_t)sprintf(buf + o, "250 end\r\n");
	assert_int_equal(probe_reply_feed(r, buf, o, &used), 1);
	assert_int_equal(r->nlines, PROBE_LINES_MAX);
	assert_string_equal(r->text[PROBE_LINES_MAX - 1], "end");

	/* the 100th line must be the last: "250-" there is one too many */
	probe_reply_init(r);
	o = 0;
	for (i = 0; i < PROBE_LINES_MAX; i++)
		o += (size_t)sprintf(buf + o, "250-%02zu\r\n", i);
	assert_int_equal(probe_reply_feed(r, buf, o, &used), -1);
	assert_string_equal(r->err, "more than 100 lines");
	free(r);
}

/* --- capabilities --------------------------------------------------------- */

static struct probe_reply *
parsed(const char *in)
{
	struct probe_reply *r = reply_new();
	size_t used;

	if (probe_reply_feed(r, in, strlen(in), &used) != 1)
		fail_msg("not a complete reply: \"%s\" (%s)", in, r->err);
	return r;
}

/* Postfix 3.7's EHLO replies before and after STARTTLS (tests/probe). */
#define PF_PLAIN "250-mx.example.test\r\n250-PIPELINING\r\n" \
	"250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n" \
	"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n" \
	"250-SMTPUTF8\r\n250 CHUNKING\r\n"
#define PF_TLS "250-mx.example.test\r\n250-PIPELINING\r\n" \
	"250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n" \
	"250-AUTH PLAIN LOGIN\r\n250-ENHANCEDSTATUSCODES\r\n" \
	"250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n"

static void
test_caps(void **state)
{
	struct probe_reply *a = parsed(PF_PLAIN), *b = parsed(PF_TLS), *c;
	struct probe_caps ca, cb, cc;
	char d[256];

	(void)state;
	assert_int_equal(probe_caps_parse(a, &ca), 0);
	assert_int_equal(probe_caps_parse(b, &cb), 0);
	assert_true(ca.starttls && ca.enhanced && !ca.auth);
	assert_true(!cb.starttls && cb.enhanced && cb.auth);
	assert_string_equal(cb.mechs, "PLAIN LOGIN");
	assert_int_equal(ca.nkw, 10);
	assert_true(probe_caps_mech(&cb, "LOGIN"));
	assert_false(probe_caps_mech(&cb, "LOG"));
	assert_false(probe_caps_mech(&ca, "PLAIN"));
	probe_caps_diff(&ca, &cb, d, sizeof(d));
	assert_string_equal(d, "+AUTH -STARTTLS");
	probe_caps_diff(&ca, &ca, d, sizeof(d));
	assert_string_equal(d, "");

	/* lower case, the pre-RFC 4954 "AUTH=" form, duplicates merged */
	c = parsed("250-x\r\n250-auth plain cram-md5\r\n250-AUTH=LOGIN PLAIN"
	    "\r\n250 starttls\r\n");
	assert_int_equal(probe_caps_parse(c, &cc), 0);
	assert_true(cc.auth && cc.starttls);
	assert_string_equal(cc.mechs, "PLAIN CRAM-MD5 LOGIN");
	assert_int_equal(cc.nkw, 2);	/* AUTH once, STARTTLS */
	free(c);

	/* a refused EHLO has no capabilities */
	c = parsed("502 5.5.1 no\r\n");
	assert_int_equal(probe_caps_parse(c, &cc), -1);
	assert_false(cc.auth || cc.starttls || cc.nkw);
	free(c);
	free(a);
	free(b);
}

static void
test_caps_bounds(void **state)
{
	char buf[8192];
	struct probe_reply *r;
	struct probe_caps c;
	size_t i, o = 0;

	(void)state;
	o += (size_t)sprintf(buf + o, "250-x\r\n");
	for (i = 0; i < 60; i++)
		o += (size_t)sprintf(buf + o, "250-KW%02zu\r\n", i);
	/* a keyword too long to keep is skipped, not cut */
	o += (size_t)sprintf(buf + o, "250-%s\r\n",
	    "STARTTLSXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX");
	/* mechanisms beyond PROBE_MECHS_MAX are dropped whole */
	o += (size_t)sprintf(buf + o, "250 AUTH");
	for (i = 0; i < 40; i++)
		o += (size_t)sprintf(buf + o, " MECH-%02zu", i);
	o += (size_t)sprintf(buf + o, "\r\n");
	r = parsed(buf);
	assert_int_equal(probe_caps_parse(r, &c), 0);
	assert_int_equal(c.nkw, PROBE_KW_MAX);
	assert_false(c.starttls);
	assert_true(c.auth);
	assert_true(strlen(c.mechs) < PROBE_MECHS_MAX);
	assert_true(probe_caps_mech(&c, "MECH-00"));
	assert_false(probe_caps_mech(&c, "MECH-39"));
	free(r);
}

/* --- verdicts ------------------------------------------------------------- */

struct vcase {
	const char	*reply;
	enum probe_verdict want;
	const char	*why;		/* substring of the reason */
};

typedef void (*judge_fn)(const struct probe_reply *, struct probe_judgement *);

static int
run_vcases(const char *what, judge_fn fn, const struct vcase *c, size_t n)
{
	struct probe_judgement j;
	struct probe_reply *r;
	size_t i;
	int bad = 0;

	for (i = 0; i < n; i++) {
		r = parsed(c[i].reply);
		memset(&j, 0, sizeof(j));
		fn(r, &j);
		if (j.v != c[i].want || strstr(j.why, c[i].why) == NULL) {
			print_error("%s \"%s\": got %s \"%s\", "
			    "want %s \"%s\"\n", what, c[i].reply,
			    probe_verdict_name(j.v), j.why,
			    probe_verdict_name(c[i].want), c[i].why);
			bad++;
		}
		free(r);
	}
	return bad;
}

static void
test_judge_replies(void **state)
{
	static const struct vcase banner[] = {
		{ "220 mx ESMTP\r\n", PV_OK, "service ready" },
		{ "554 5.7.1 go away\r\n", PV_PROBLEM, "554" },
		{ "421 4.3.2 busy\r\n", PV_PROBLEM, "421" },
		{ "250 hello\r\n", PV_PROBLEM, "not a greeting" },
	}, ehlo[] = {
		{ "250-mx\r\n250 STARTTLS\r\n", PV_OK, "1 extension " },
		{ "502 5.5.1 no\r\n", PV_PROBLEM, "EHLO refused with 502" },
	}, auth[] = {
		{ "235 2.7.0 Authentication successful\r\n", PV_OK, "235" },
		{ "535 5.7.8 Authentication failed\r\n", PV_PROBLEM, "535" },
		{ "454 4.7.0 Temporary failure\r\n", PV_WARNING, "temporary" },
		{ "504 5.5.4 Unrecognized mechanism\r\n", PV_PROBLEM, "504" },
		{ "334 VXNlcm5hbWU6\r\n", PV_PROBLEM, "334" },
	}, vrfy[] = {
		{ "250 2.1.5 John <john@x>\r\n", PV_PROBLEM, "harvest" },
		{ "251 2.1.5 forwarded\r\n", PV_PROBLEM, "harvest" },
		{ "252 2.0.0 john\r\n", PV_OK, "cannot verify" },
		{ "502 5.5.1 VRFY command is disabled\r\n", PV_OK, "refused" },
		{ "550 5.1.1 unknown\r\n", PV_OK, "refused" },
		{ "454 4.7.1 Relay access denied\r\n", PV_OK, "refused" },
	}, expn[] = {
		{ "250-2.1.5 <a@x>\r\n250 2.1.5 <b@x>\r\n", PV_PROBLEM,
		    "harvest" },
		{ "252 2.0.0 no\r\n", PV_OK, "no expansion" },
		{ "500 5.5.2 Error: command not recognized\r\n", PV_OK,
		    "refused" },
		{ "502 5.5.1 no\r\n", PV_OK, "refused" },
	}, mail[] = {
		{ "250 2.1.0 Ok\r\n", PV_OK, "accepted" },
		{ "530 5.7.0 Authentication required\r\n", PV_OK,
		    "needs AUTH" },
		{ "553 5.7.1 Sender not owned\r\n", PV_WARNING, "refused" },
		{ "451 4.3.0 try later\r\n", PV_WARNING, "refused" },
	}, rcpt[] = {
		{ "250 2.1.5 Ok\r\n", PV_OK, "accepted" },
		{ "550 5.1.1 unknown\r\n", PV_WARNING, "refused" },
		{ "450 4.7.1 later\r\n", PV_WARNING, "deferred" },
	}, data[] = {
		/* RFC 5321 4.3.2: DATA -> 354 or 450 451 452 503 550 554 */
		{ "354 End data with <CR><LF>.<CR><LF>\r\n", PV_OK, "354" },
		{ "554 5.5.1 Error: no valid recipients\r\n", PV_WARNING,
		    "DATA refused" },
		{ "451 4.3.0 try later\r\n", PV_WARNING, "DATA refused" },
		{ "250 2.0.0 Ok\r\n", PV_PROBLEM, "want 354" },
	}, message[] = {
		{ "250 2.0.0 Ok: queued as 4F1\r\n", PV_OK, "accepted" },
		/* a policy refusal is information, not a broken server */
		{ "550 5.7.1 Message content rejected\r\n", PV_WARNING,
		    "refused" },
		{ "451 4.7.1 greylisted\r\n", PV_WARNING, "deferred" },
		{ "354 again\r\n", PV_PROBLEM, "want 2xx" },
	};
	int bad = 0;

	(void)state;
	bad += run_vcases("banner", probe_judge_banner, banner, NELEM(banner));
	bad += run_vcases("ehlo", probe_judge_ehlo, ehlo, NELEM(ehlo));
	bad += run_vcases("auth", probe_judge_auth, auth, NELEM(auth));
	bad += run_vcases("vrfy", probe_judge_vrfy, vrfy, NELEM(vrfy));
	bad += run_vcases("expn", probe_judge_expn, expn, NELEM(expn));
	bad += run_vcases("mail", probe_judge_mail, mail, NELEM(mail));
	bad += run_vcases("rcpt", probe_judge_rcpt, rcpt, NELEM(rcpt));
	bad += run_vcases("data", probe_judge_data, data, NELEM(data));
	bad += run_vcases("message", probe_judge_message, message,
	    NELEM(message));
	if (bad)
		fail_msg("%d verdict case(s) failed", bad);
}

static void
test_judge_auth_offer(void **state)
{
	static const struct {
		const char	*ehlo;
		int		tls, sub;
		enum probe_verdict want;
		const char	*why;
	} c[] = {
		/* RFC 4954 4: no cleartext password mechanisms without TLS */
		{ "250-x\r\n250 AUTH PLAIN LOGIN\r\n", 0, 0, PV_PROBLEM,
		    "AUTH PLAIN LOGIN offered without TLS" },
		{ "250-x\r\n250 AUTH PLAIN LOGIN\r\n", 0, 1, PV_PROBLEM,
		    "without TLS" },
		{ "250-x\r\n250 AUTH CRAM-MD5 SCRAM-SHA-256\r\n", 0, 0,
		    PV_WARNING, "no cleartext" },
		/* RFC 8314 3 / 6409: submission encrypts before any AUTH */
		{ "250-x\r\n250 AUTH CRAM-MD5\r\n", 0, 1, PV_PROBLEM,
		    "without TLS" },
		/* a bearer token is a password in clear too */
		{ "250-x\r\n250 AUTH XOAUTH2\r\n", 0, 0, PV_PROBLEM,
		    "without TLS" },
		{ "250-x\r\n250 STARTTLS\r\n", 0, 1, PV_OK, "not offered" },
		{ "250-x\r\n250 AUTH PLAIN\r\n", 1, 1, PV_OK, "under TLS" },
		{ "250-x\r\n250 SIZE 1\r\n", 1, 1, PV_WARNING, "RFC 6409" },
		{ "250-x\r\n250 SIZE 1\r\n", 1, 0, PV_OK, "MX" },
	};
	struct probe_judgement j;
	struct probe_reply *r;
	struct probe_caps caps;
	size_t i;
	int bad = 0;

	(void)state;
	for (i = 0; i < NELEM(c); i++) {
		r = parsed(c[i].ehlo);
		assert_int_equal(probe_caps_parse(r, &caps), 0);
		probe_judge_auth_offer(&caps, c[i].tls, c[i].sub, &j);
		if (j.v != c[i].want || strstr(j.why, c[i].why) == NULL) {
			print_error("case %zu: got %s \"%s\", want %s \"%s\"\n",
			    i, probe_verdict_name(j.v), j.why,
			    probe_verdict_name(c[i].want), c[i].why);
			bad++;
		}
		free(r);
	}
	if (bad)
		fail_msg("%d case(s) failed", bad);
}

static void
test_judge_tls_steps(void **state)
{
	struct probe_judgement j;
	struct probe_reply *ok = parsed("220 2.0.0 Ready to start TLS\r\n");
	struct probe_reply *no = parsed("454 4.7.0 TLS not available\r\n");
	struct probe_reply *a = parsed(PF_PLAIN), *b = parsed(PF_TLS);
	struct probe_caps ca, cb;

	(void)state;
	probe_judge_no_starttls(0, 0, &j);
	assert_int_equal(j.v, PV_WARNING);
	probe_judge_no_starttls(1, 0, &j);
	assert_int_equal(j.v, PV_PROBLEM);
	assert_non_null(strstr(j.why, "submission"));
	probe_judge_no_starttls(0, 1, &j);
	assert_int_equal(j.v, PV_PROBLEM);
	assert_non_null(strstr(j.why, "--starttls"));

	probe_judge_starttls(ok, 1, 1, &j);
	assert_int_equal(j.v, PV_OK);
	probe_judge_starttls(no, 0, 0, &j);
	assert_int_equal(j.v, PV_WARNING);
	probe_judge_starttls(no, 1, 0, &j);
	assert_int_equal(j.v, PV_PROBLEM);

	probe_judge_tls(TLS1_3_VERSION, 256, &j);
	assert_int_equal(j.v, PV_OK);
	probe_judge_tls(TLS1_2_VERSION, 128, &j);
	assert_int_equal(j.v, PV_OK);
	probe_judge_tls(TLS1_1_VERSION, 256, &j);	/* RFC 8996 */
	assert_int_equal(j.v, PV_WARNING);
	probe_judge_tls(TLS1_2_VERSION, 56, &j);
	assert_int_equal(j.v, PV_WARNING);

	assert_int_equal(probe_caps_parse(a, &ca), 0);
	assert_int_equal(probe_caps_parse(b, &cb), 0);
	probe_judge_caps_change(&ca, &cb, &j);
	assert_int_equal(j.v, PV_OK);
	assert_non_null(strstr(j.why, "+AUTH -STARTTLS"));
	/* RFC 3207 4.2: no STARTTLS once TLS is on */
	probe_judge_caps_change(&ca, &ca, &j);
	assert_int_equal(j.v, PV_WARNING);
	free(ok);
	free(no);
	free(a);
	free(b);
}

static void
test_judge_pairs(void **state)
{
	static const struct {
		const char	*known, *unknown;
		enum probe_verdict want;
	} vu[] = {
		/* Postfix with VRFY on: 252 for a valid, 550 for others */
		{ "252 2.0.0 a@x\r\n", "550 5.1.1 <b@x>: User unknown\r\n",
		    PV_WARNING },
		{ "250 2.1.5 a@x\r\n", "550 5.1.1 unknown\r\n", PV_WARNING },
		{ "252 2.0.0 a@x\r\n", "252 2.0.0 b@x\r\n", PV_OK },
		{ "502 5.5.1 VRFY command is disabled\r\n",
		    "502 5.5.1 VRFY command is disabled\r\n", PV_OK },
		{ "550 5.1.1 unknown\r\n", "550 5.1.1 unknown\r\n", PV_OK },
	};
	static const struct {
		const char	*reply;
		int		authed;
		enum probe_verdict want;
	} relay[] = {
		{ "250 2.1.5 Ok\r\n", 0, PV_PROBLEM },
		{ "250 2.1.5 Ok\r\n", 1, PV_OK },
		{ "454 4.7.1 Relay access denied\r\n", 0, PV_OK },
		{ "554 5.7.1 Relay access denied\r\n", 0, PV_OK },
	};
	struct probe_judgement j;
	struct probe_reply *k, *u;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(vu); i++) {
		k = parsed(vu[i].known);
		u = parsed(vu[i].unknown);
		probe_judge_vrfy_unknown(k, u, &j);
		if (j.v != vu[i].want)
			fail_msg("vrfy pair %zu: got %s \"%s\"", i,
			    probe_verdict_name(j.v), j.why);
		free(k);
		free(u);
	}
	for (i = 0; i < NELEM(relay); i++) {
		k = parsed(relay[i].reply);
		probe_judge_relay(k, relay[i].authed, &j);
		if (j.v != relay[i].want)
			fail_msg("relay %zu: got %s \"%s\"", i,
			    probe_verdict_name(j.v), j.why);
		free(k);
	}
	k = parsed("221 2.0.0 Bye\r\n");
	probe_judge_expect(k, 221, "closing", &j);
	assert_int_equal(j.v, PV_OK);
	probe_judge_expect(k, 250, "reset", &j);
	assert_int_equal(j.v, PV_WARNING);
	free(k);
}

static void
test_judge_codes(void **state)
{
	struct probe_judgement j;
	struct probe_reply *mis = parsed("550 4.7.1 x\r\n");
	struct probe_reply *none = parsed("250 Ok\r\n");
	struct probe_reply *chal = parsed("334 VXNlcm5hbWU6\r\n");
	struct probe_reply *good = parsed("250 2.0.0 Ok\r\n");

	(void)state;
	j.v = PV_OK;
	probe_judge_codes(mis, 0, &j);		/* RFC 3463 2 */
	assert_int_equal(j.v, PV_WARNING);
	assert_non_null(strstr(j.why, "4.7.1 does not match 550"));
	j.v = PV_OK;
	probe_judge_codes(none, 1, &j);		/* RFC 2034 3 */
	assert_int_equal(j.v, PV_WARNING);
	j.v = PV_OK;
	probe_judge_codes(none, 0, &j);
	assert_int_equal(j.v, PV_OK);
	j.v = PV_OK;
	probe_judge_codes(chal, 1, &j);		/* a challenge has none */
	assert_int_equal(j.v, PV_OK);
	j.v = PV_OK;
	probe_judge_codes(good, 1, &j);
	assert_int_equal(j.v, PV_OK);
	snprintf(j.why, sizeof(j.why), "kept");
	j.v = PV_PROBLEM;				/* never lowered */
	probe_judge_codes(mis, 1, &j);
	assert_int_equal(j.v, PV_PROBLEM);
	assert_string_equal(j.why, "kept");
	assert_string_equal(probe_verdict_name(PV_OK), "ok");
	assert_string_equal(probe_verdict_name(PV_WARNING), "warning");
	assert_string_equal(probe_verdict_name(PV_PROBLEM), "problem");
	free(mis);
	free(none);
	free(chal);
	free(good);
}

/* RFC 5321 4.5.2 transparency and 2.3.8 line ends, by hand. */
static void
test_data_encode(void **state)
{
	static const struct {
		const char	*in;
		const char	*want;		/* NULL: does not fit */
		size_t		room;		/* 0: plenty */
	} c[] = {
		{ "", ".\r\n", 0 },
		{ "a", "a\r\n.\r\n", 0 },
		{ "a\n", "a\r\n.\r\n", 0 },
		{ "a\r\nb\r\n", "a\r\nb\r\n.\r\n", 0 },
		{ "a\rb\n", "a\r\nb\r\n.\r\n", 0 },
		{ "\n\n", "\r\n\r\n.\r\n", 0 },
		{ ".", "..\r\n.\r\n", 0 },
		{ ".\n", "..\r\n.\r\n", 0 },
		{ "a\n.\nb", "a\r\n..\r\nb\r\n.\r\n", 0 },
		{ "a\r\n..x\r\n", "a\r\n...x\r\n.\r\n", 0 },
		{ "x.y\n a.\n", "x.y\r\n a.\r\n.\r\n", 0 },
		{ "a\n.\r\n", "a\r\n..\r\n.\r\n", 0 },
		{ "ab", "ab\r\n.\r\n", 7 },		/* exactly */
		{ "ab", NULL, 6 },
		{ ".", NULL, 5 },
		{ "", NULL, 2 },
	};
	char buf[64];
	size_t i, n;

	(void)state;
	for (i = 0; i < NELEM(c); i++) {
		memset(buf, 'Z', sizeof(buf));
		n = probe_data_encode(c[i].in, strlen(c[i].in), buf,
		    c[i].room ? c[i].room : sizeof(buf));
		if (c[i].want == NULL) {
			if (n != 0)
				fail_msg("case %zu: got %zu bytes, want 0", i,
				    n);
			continue;
		}
		if (n != strlen(c[i].want) || memcmp(buf, c[i].want, n) != 0)
			fail_msg("case %zu: got \"%.*s\" (%zu), want \"%s\"",
			    i, (int)n, buf, n, c[i].want);
		if (c[i].room && n < sizeof(buf) && buf[n] != 'Z')
			fail_msg("case %zu: wrote past the end", i);
	}
}

static void
test_message(void **state)
{
	const char *const rcpt[] = { "a@x.example", "b@y.example" };
	/* 2024-02-29 23:59:58 UTC, a Thursday (RFC 5322 3.3) */
	const time_t t = 1709251198;
	char buf[2048], small[100];
	size_t n;

	(void)state;
	n = probe_message(buf, sizeof(buf) - 1, "s@x.example", rcpt, 2, t,
	    "1.00ff", "mx.example");
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf,
	    "Date: Thu, 29 Feb 2024 23:59:58 +0000\r\n"
	    "From: <s@x.example>\r\n"
	    "To: <a@x.example>,\r\n"
	    " <b@y.example>\r\n"
	    "Subject: warden probe test\r\n"
	    "Message-ID: <warden-probe.1.00ff@mx.example>\r\n"
	    "\r\n"
	    "A test message sent by warden probe --data; it can be deleted.\r\n"
	    ".\r\n");
	/* the null sender: a From of our own; no recipient: an empty group */
	n = probe_message(buf, sizeof(buf) - 1, "", rcpt, 0, 0, "t",
	    "warden-probe.invalid");
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"
	    "From: warden probe <warden-probe@warden-probe.invalid>\r\n"
	    "To: undisclosed-recipients:;\r\n"));
	assert_int_equal(probe_message(small, sizeof(small), "s@x.example",
	    rcpt, 2, t, "1", "mx.example"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_every_split),
		cmocka_unit_test(test_parse_line_limit),
		cmocka_unit_test(test_parse_line_count),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_caps_bounds),
		cmocka_unit_test(test_judge_replies),
		cmocka_unit_test(test_judge_auth_offer),
		cmocka_unit_test(test_judge_tls_steps),
		cmocka_unit_test(test_judge_pairs),
		cmocka_unit_test(test_judge_codes),
		cmocka_unit_test(test_data_encode),
		cmocka_unit_test(test_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

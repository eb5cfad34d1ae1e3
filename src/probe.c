/*
 * probe.c - `warden probe`: audit a live MTA from outside (DESIGN.md §4a,
 * §8): banner, EHLO, STARTTLS (OpenSSL), AUTH before/after TLS, VRFY,
 * EXPN, a test MAIL/RCPT ended by RSET (with --data: DATA and a test
 * message instead), QUIT; one verdict per step with the exact reply.
 * Owns: the SMTP reply parser, capability reading, verdicts, the client.
 * Not: policy (engine.c). The parser and the verdicts are pure functions
 * on buffers; only the client part below "connection" does I/O.
 * Untrusted: every server byte. Replies are parsed strictly and bounded,
 * printed escaped; each step has a deadline (--timeout), the step count
 * is bounded, so the whole run is. Credentials are never sent in clear
 * nor printed. The clock comes from main.c (CONVENTIONS.md §8).
 * Threads: one command, one thread; no globals (SIGPIPE is ignored for
 * the process, as a client that writes to sockets must).
 * Memory: probe_main frees all it allocates; credentials are wiped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "probe.h"

/* --- the reply parser (RFC 5321 4.2) ------------------------------------- */

void
probe_reply_init(struct probe_reply *r)
{
	r->code = 0;
	r->enh[0] = r->enh[1] = r->enh[2] = -1;
	r->enh_mismatch = 0;
	r->nlines = 0;
	r->linelen = 0;
	r->state = 0;
	r->err[0] = '\0';
}

static int
reply_err(struct probe_reply *r, const char *fmt, ...) PRINTF_LIKE(2, 3);

static int
reply_err(struct probe_reply *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	r->state = -1;
	return -1;
}

/*
 * RFC 3463 2: class "." subject "." detail, class one digit (2, 4, 5),
 * subject and detail 1-3 digits, at the start of the text.
 */
static void
reply_enh(struct probe_reply *r)
{
	const char *s = r->text[0];
	int v[3], i, d;

	for (i = 0; i < 3; i++) {
		for (v[i] = 0, d = 0; *s >= '0' && *s <= '9'; s++, d++) {
			if (d == (i == 0 ? 1 : 3))
				return;
			v[i] = v[i] * 10 + (*s - '0');
		}
		if (d == 0 || (i < 2 && *s++ != '.'))
			return;
	}
	if ((*s != '\0' && *s != ' ') || (v[0] != 2 && v[0] != 4 &&
	    v[0] != 5))
		return;
	memcpy(r->enh, v, sizeof(v));
	r->enh_mismatch = v[0] != r->code / 100;
}

/* One complete line (ending in LF) in r->line. */
static int
reply_line(struct probe_reply *r)
{
	const unsigned char *l = (const unsigned char *)r->line;
	size_t n = r->linelen, ln = r->nlines + 1, i;
	int code, last;

	if (n < 2 || l[n - 2] != '\r')
		return reply_err(r, "line %zu ends in a bare LF, not CRLF", ln);
	n -= 2;
	if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '5' ||
	    l[2] < '0' || l[2] > '9')
		return reply_err(r, "line %zu does not start with a reply "
		    "code", ln);
	code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
	if (n == 3 || l[3] == ' ')
		last = 1;
	else if (l[3] == '-')
		last = 0;
	else
		return reply_err(r, "line %zu: no space or '-' after the code",
		    ln);
	if (r->nlines > 0 && code != r->code)
		return reply_err(r, "line %zu has code %d, line 1 had %d", ln,
		    code, r->code);
	for (i = 4; i < n; i++)
		if ((l[i] < 0x20 && l[i] != '\t') || l[i] == 0x7f)
			return reply_err(r, "line %zu: control byte 0x%02x",
			    ln, l[i]);
	if (!last && ln == PROBE_LINES_MAX)
		return reply_err(r, "more than %d lines", PROBE_LINES_MAX);
	r->code = code;
	r->len[r->nlines] = n > 4 ? n - 4 : 0;
	memcpy(r->text[r->nlines], l + 4, r->len[r->nlines]);
	r->text[r->nlines][r->len[r->nlines]] = '\0';
	r->nlines++;
	if (last) {
		reply_enh(r);
		r->state = 1;
	}
	return 0;
}

int
probe_reply_feed(struct probe_reply *r, const char *buf, size_t len,
    size_t *used_out)
{
	size_t i;

	*used_out = 0;
	if (r->state != 0)
		return r->state;
	for (i = 0; i < len; i++) {
		if (r->linelen == PROBE_LINE_MAX) {
			*used_out = i;
			return reply_err(r, "line %zu longer than %d octets",
			    r->nlines + 1, PROBE_LINE_MAX);
		}
		r->line[r->linelen++] = buf[i];
		if (buf[i] != '\n')
			continue;
		if (reply_line(r) < 0) {
			*used_out = i + 1;
			return -1;
		}
		r->linelen = 0;
		if (r->state == 1) {
			*used_out = i + 1;
			return 1;
		}
	}
	*used_out = len;
	return 0;
}

const char *
probe_reply_text(const struct probe_reply *r)
{
	const char *s = r->text[0];

	if (r->nlines == 0)
		return "";
	if (r->enh[0] < 0)
		return s;
	s += strspn(s, "0123456789.");
	return *s == ' ' ? s + 1 : s;
}

/* --- EHLO capabilities (RFC 5321 4.1.1.1) -------------------------------- */

static int
word_in(const char *list, const char *w, size_t wlen)
{
	size_t n;

	while (*list != '\0') {
		n = strcspn(list, " ");
		if (n == wlen && strncmp(list, w, n) == 0)
			return 1;
		list += n;
		list += strspn(list, " ");
	}
	return 0;
}

/* Adds the space-separated words of s, upper-cased, to c->mechs. */
static void
caps_mechs_add(struct probe_caps *c, const char *s)
{
	char w[PROBE_MECHS_MAX];
	size_t n, have, i;

	for (s += strspn(s, " "); *s != '\0'; s += strspn(s, " ")) {
		n = strcspn(s, " ");
		have = strlen(c->mechs);
		if (n < sizeof(w) && have + n + 2 <= sizeof(c->mechs)) {
			for (i = 0; i < n; i++)
				w[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ?
				    s[i] - 32 : s[i]);
			if (!word_in(c->mechs, w, n)) {
				if (have > 0)
					c->mechs[have++] = ' ';
				memcpy(c->mechs + have, w, n);
				c->mechs[have + n] = '\0';
			}
		}
		s += n;
	}
}

int
probe_caps_parse(const struct probe_reply *r, struct probe_caps *c)
{
	char kw[PROBE_KW_LEN];
	const char *t;
	size_t i, j, n;

	memset(c, 0, sizeof(*c));
	if (r->code != 250 || r->state != 1)
		return -1;
	for (i = 1; i < r->nlines; i++) {
		t = r->text[i];
		n = strcspn(t, " =");
		if (n == 0 || n >= sizeof(kw))
			continue;
		for (j = 0; j < n; j++)
			kw[j] = (char)(t[j] >= 'a' && t[j] <= 'z' ?
			    t[j] - 32 : t[j]);
		kw[n] = '\0';
		if (strcmp(kw, "STARTTLS") == 0)
			c->starttls = 1;
		else if (strcmp(kw, "ENHANCEDSTATUSCODES") == 0)
			c->enhanced = 1;
		else if (strcmp(kw, "AUTH") == 0) {
			/* "AUTH=..." is the pre-RFC 4954 form, still seen */
			c->auth = 1;
			caps_mechs_add(c, t[n] ? t + n + 1 : t + n);
		}
		for (j = 0; j < c->nkw; j++)
			if (strcmp(c->kw[j], kw) == 0)
				break;
		if (j == c->nkw && c->nkw < PROBE_KW_MAX)
			memcpy(c->kw[c->nkw++], kw, n + 1);
	}
	return 0;
}

int
probe_caps_mech(const struct probe_caps *c, const char *mech)
{
	return word_in(c->mechs, mech, strlen(mech));
}

static int
caps_has(const struct probe_caps *c, const char *kw)
{
	size_t i;

	for (i = 0; i < c->nkw; i++)
		if (strcmp(c->kw[i], kw) == 0)
			return 1;
	return 0;
}

void
probe_caps_diff(const struct probe_caps *a, const struct probe_caps *b,
    char *buf, size_t len)
{
	size_t i, o = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < b->nkw && o < len; i++)
		if (!caps_has(a, b->kw[i]) && (n = snprintf(buf + o, len - o,
		    "%s+%s", o ? " " : "", b->kw[i])) > 0)
			o += (size_t)n;
	for (i = 0; i < a->nkw && o < len; i++)
		if (!caps_has(b, a->kw[i]) && (n = snprintf(buf + o, len - o,
		    "%s-%s", o ? " " : "", a->kw[i])) > 0)
			o += (size_t)n;
}

/* --- verdicts ------------------------------------------------------------ */

static const char *const verdict_names[PV_COUNT] = {
	"ok", "warning", "problem"
};

const char *
probe_verdict_name(enum probe_verdict v)
{
	return v < PV_COUNT ? verdict_names[v] : "?";
}

static void
judge(struct probe_judgement *j, enum probe_verdict v, const char *fmt, ...)
    PRINTF_LIKE(3, 4);

static void
judge(struct probe_judgement *j, enum probe_verdict v, const char *fmt, ...)
{
	va_list ap;

	j->v = v;
	va_start(ap, fmt);
	vsnprintf(j->why, sizeof(j->why), fmt, ap);
	va_end(ap);
}

#define CLASS(r)	((r)->code / 100)

void
probe_judge_banner(const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 220)
		judge(j, PV_OK, "220: service ready (RFC 5321 4.2.3)");
	else if (r->code == 554)
		judge(j, PV_PROBLEM, "554: no SMTP service here for this "
		    "client (RFC 5321 3.1)");
	else if (r->code == 421)
		judge(j, PV_PROBLEM, "421: service not available, closing "
		    "(RFC 5321 3.8)");
	else
		judge(j, PV_PROBLEM, "%d is not a greeting: 220 or 554 "
		    "(RFC 5321 4.3.2)", r->code);
}

void
probe_judge_ehlo(const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 250)
		judge(j, PV_OK, "250: ESMTP, %zu extension%s "
		    "(RFC 5321 4.1.1.1)", r->nlines - 1,
		    r->nlines == 2 ? "" : "s");
	else
		judge(j, PV_PROBLEM, "EHLO refused with %d: no ESMTP, hence no "
		    "STARTTLS or AUTH (RFC 5321 4.1.1.1)", r->code);
}

/* Mechanisms that send no reusable secret (RFC 4954 4, RFC 5802 9). */
static int
mechs_cleartext(const char *mechs)
{
	static const char *const safe[] = { "CRAM-MD5", "DIGEST-MD5",
	    "GSSAPI", "NTLM", "EXTERNAL", "SCRAM-SHA-1", "SCRAM-SHA-256",
	    "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS" };
	size_t n, i;

	for (mechs += strspn(mechs, " "); *mechs != '\0';
	    mechs += strspn(mechs, " ")) {
		n = strcspn(mechs, " ");
		for (i = 0; i < NELEM(safe); i++)
			if (strlen(safe[i]) == n &&
			    strncmp(safe[i], mechs, n) == 0)
				break;
		if (i == NELEM(safe))
			return 1;	/* PLAIN, LOGIN, or unknown to us */
		mechs += n;
	}
	return 0;
}

void
probe_judge_auth_offer(const struct probe_caps *c, int tls, int submission,
    struct probe_judgement *j)
{
	char m[LOG_ESC_BUF];

	log_esc(c->mechs, strlen(c->mechs), m, sizeof(m));
	if (tls) {
		if (c->auth)
			judge(j, PV_OK, "AUTH %s offered under TLS", m);
		else if (submission)
			judge(j, PV_WARNING, "no AUTH on a submission port: "
			    "clients cannot authenticate (RFC 6409 4.3)");
		else
			judge(j, PV_OK, "no AUTH: fine for a relay/MX port");
		return;
	}
	if (!c->auth)
		judge(j, PV_OK, "AUTH not offered before TLS");
	else if (submission || mechs_cleartext(c->mechs))
		judge(j, PV_PROBLEM, "AUTH %s offered without TLS: passwords "
		    "can travel in clear (RFC 4954 4, RFC 8314 3; Postfix: "
		    "smtpd_tls_auth_only = yes)", m);
	else
		judge(j, PV_WARNING, "AUTH %s offered without TLS (no "
		    "cleartext mechanism, RFC 4954 4)", m);
}

void
probe_judge_no_starttls(int submission, int required,
    struct probe_judgement *j)
{
	if (submission || required)
		judge(j, PV_PROBLEM, "STARTTLS not offered: %s (RFC 3207, "
		    "RFC 8314 3)", submission ? "a submission port must "
		    "encrypt" : "--starttls requires it");
	else
		judge(j, PV_WARNING, "STARTTLS not offered: mail to this host "
		    "travels in clear (RFC 3207)");
}

void
probe_judge_starttls(const struct probe_reply *r, int submission,
    int required, struct probe_judgement *j)
{
	if (r->code == 220)
		judge(j, PV_OK, "220: ready to start TLS (RFC 3207 4)");
	else
		judge(j, submission || required ? PV_PROBLEM : PV_WARNING,
		    "STARTTLS advertised but refused with %d (RFC 3207 4)",
		    r->code);
}

void
probe_judge_tls(int version, int bits, struct probe_judgement *j)
{
	if (version < TLS1_2_VERSION)
		judge(j, PV_WARNING, "protocol older than TLS 1.2 (RFC 8996)");
	else if (bits < 128)
		judge(j, PV_WARNING, "cipher of %d bits, under 128 "
		    "(RFC 9325 4.2)", bits);
	else
		judge(j, PV_OK, "TLS 1.2 or later, %d-bit cipher (RFC 9325)",
		    bits);
}

void
probe_judge_caps_change(const struct probe_caps *before,
    const struct probe_caps *after, struct probe_judgement *j)
{
	char d[512], e[LOG_ESC_BUF];

	probe_caps_diff(before, after, d, sizeof(d));
	log_esc(d, strlen(d), e, sizeof(e));
	if (after->starttls)
		judge(j, PV_WARNING, "STARTTLS still offered under TLS "
		    "(RFC 3207 4.2)%s%s", *e ? ": " : "", e);
	else
		judge(j, PV_OK, "capabilities after TLS: %s", *e ? e :
		    "no change");
}

void
probe_judge_auth(const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 235)
		judge(j, PV_OK, "235: authenticated (RFC 4954 6)");
	else if (CLASS(r) == 4)
		judge(j, PV_WARNING, "%d: temporary AUTH failure (RFC 4954 6)",
		    r->code);
	else if (r->code == 535)
		judge(j, PV_PROBLEM, "535: credentials refused (RFC 4954 6)");
	else
		judge(j, PV_PROBLEM, "%d: AUTH failed (RFC 4954 6)", r->code);
}

void
probe_judge_vrfy(const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 250 || r->code == 251)
		judge(j, PV_PROBLEM, "%d: VRFY confirms addresses, a harvest "
		    "exposure (RFC 5321 7.3; Postfix: disable_vrfy_command = "
		    "yes)", r->code);
	else if (CLASS(r) == 2)
		judge(j, PV_OK, "%d: cannot verify, will try delivery "
		    "(RFC 5321 3.5.3)", r->code);
	else
		judge(j, PV_OK, "%d: VRFY refused (RFC 5321 7.3)", r->code);
}

void
probe_judge_vrfy_unknown(const struct probe_reply *known,
    const struct probe_reply *unknown, struct probe_judgement *j)
{
	if (CLASS(known) == 2 && CLASS(unknown) != 2)
		judge(j, PV_WARNING, "%d for the given address, %d for a "
		    "made-up one: VRFY tells them apart (harvest oracle, RFC "
		    "5321 7.3; Postfix: disable_vrfy_command = yes)",
		    known->code, unknown->code);
	else if (CLASS(unknown) == 2)
		judge(j, PV_OK, "%d: same answer as for the given address",
		    unknown->code);
	else
		judge(j, PV_OK, "%d: VRFY refused (RFC 5321 7.3)",
		    unknown->code);
}

void
probe_judge_expn(const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 250 || r->code == 251)
		judge(j, PV_PROBLEM, "%d: EXPN expands lists, a harvest "
		    "exposure (RFC 5321 7.3)", r->code);
	else if (CLASS(r) == 2)
		judge(j, PV_OK, "%d: no expansion given (RFC 5321 3.5.3)",
		    r->code);
	else
		judge(j, PV_OK, "%d: EXPN refused (RFC 5321 7.3)", r->code);
}

void
probe_judge_mail(const struct probe_reply *r, struct probe_judgement *j)
{
	if (CLASS(r) == 2)
		judge(j, PV_OK, "%d: sender accepted", r->code);
	else if (r->code == 530)
		judge(j, PV_OK, "530: MAIL needs AUTH (RFC 4954 6)");
	else
		judge(j, PV_WARNING, "%d: sender refused, no RCPT tested",
		    r->code);
}

void
probe_judge_rcpt(const struct probe_reply *r, struct probe_judgement *j)
{
	if (CLASS(r) == 2)
		judge(j, PV_OK, "%d: recipient accepted", r->code);
	else
		judge(j, PV_WARNING, "%d: recipient %s", r->code,
		    CLASS(r) == 4 ? "deferred" : "refused");
}

void
probe_judge_relay(const struct probe_reply *r, int authed,
    struct probe_judgement *j)
{
	if (CLASS(r) != 2)
		judge(j, PV_OK, "%d: relay to a foreign domain refused",
		    r->code);
	else if (authed)
		judge(j, PV_OK, "%d: relay allowed after AUTH (RFC 6409)",
		    r->code);
	else
		judge(j, PV_PROBLEM, "%d: a foreign recipient accepted without "
		    "AUTH: open relay, unless this client is trusted (Postfix "
		    "mynetworks) (RFC 5321 7.1)", r->code);
}

void
probe_judge_data(const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 354)
		judge(j, PV_OK, "354: send the message (RFC 5321 4.1.1.4)");
	else if (CLASS(r) == 4 || CLASS(r) == 5)
		judge(j, PV_WARNING, "%d: DATA refused, no message sent "
		    "(RFC 5321 4.1.1.4)", r->code);
	else
		judge(j, PV_PROBLEM, "%d to DATA, want 354, 4xx or 5xx "
		    "(RFC 5321 4.3.2)", r->code);
}

void
probe_judge_message(const struct probe_reply *r, struct probe_judgement *j)
{
	if (CLASS(r) == 2)
		judge(j, PV_OK, "%d: test message accepted (RFC 5321 4.1.1.4)",
		    r->code);
	else if (CLASS(r) == 4 || CLASS(r) == 5)
		judge(j, PV_WARNING, "%d: test message %s by the server's "
		    "policy (RFC 5321 4.2.5)", r->code, CLASS(r) == 4 ?
		    "deferred" : "refused");
	else
		judge(j, PV_PROBLEM, "%d after the end of the data, want 2xx, "
		    "4xx or 5xx (RFC 5321 4.3.2)", r->code);
}

void
probe_judge_expect(const struct probe_reply *r, int want, const char *what,
    struct probe_judgement *j)
{
	if (r->code == want)
		judge(j, PV_OK, "%d: %s", r->code, what);
	else
		judge(j, PV_WARNING, "%d to %s, want %d (RFC 5321 4.3.2)",
		    r->code, what, want);
}

void
probe_judge_codes(const struct probe_reply *r, int enhanced,
    struct probe_judgement *j)
{
	if (j->v != PV_OK)
		return;
	if (r->enh_mismatch)
		judge(j, PV_WARNING, "enhanced code %d.%d.%d does not match "
		    "%d (RFC 3463 2)", r->enh[0], r->enh[1], r->enh[2],
		    r->code);
	else if (enhanced && r->enh[0] < 0 && CLASS(r) != 3)
		judge(j, PV_WARNING, "%d without an enhanced code although "
		    "ENHANCEDSTATUSCODES was advertised (RFC 2034 3)",
		    r->code);
}

/* --- the --data test message (RFC 5321 4.5.2, RFC 5322 3.6) ------------- */

/* Appends n bytes of s at buf[*o]: 0, or -1 when they do not fit. */
static int
put(char *buf, size_t len, size_t *o, const char *s, size_t n)
{
	if (len - *o < n)
		return -1;
	memcpy(buf + *o, s, n);
	*o += n;
	return 0;
}

size_t
probe_data_encode(const char *text, size_t textlen, char *buf, size_t len)
{
	size_t i, o = 0;
	int bol = 1;

	for (i = 0; i < textlen; i++) {
		if (text[i] == '\r' || text[i] == '\n') {
			if (text[i] == '\r' && i + 1 < textlen &&
			    text[i + 1] == '\n')
				i++;
			if (put(buf, len, &o, "\r\n", 2) < 0)
				return 0;
			bol = 1;
			continue;
		}
		/* RFC 5321 4.5.2: a line that starts with '.' gets another */
		if ((bol && text[i] == '.' && put(buf, len, &o, ".", 1) < 0) ||
		    put(buf, len, &o, text + i, 1) < 0)
			return 0;
		bol = 0;
	}
	if ((!bol && put(buf, len, &o, "\r\n", 2) < 0) ||
	    put(buf, len, &o, ".\r\n", 3) < 0)
		return 0;
	return o;
}

static int
app(char *buf, size_t len, size_t *o, const char *fmt, ...) PRINTF_LIKE(4, 5);

static int
app(char *buf, size_t len, size_t *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *o, len - *o, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len - *o)
		return -1;
	*o += (size_t)n;
	return 0;
}

size_t
probe_message(char *buf, size_t len, const char *from,
    const char *const *rcpt, size_t nrcpt, time_t now, const char *tag,
    const char *domain)
{
	static const char *const wday[] = { "Sun", "Mon", "Tue", "Wed",
	    "Thu", "Fri", "Sat" }, *const mon[] = { "Jan", "Feb", "Mar",
	    "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	char text[8192];
	struct tm tm;
	size_t o = 0, i;
	int bad;

	if (gmtime_r(&now, &tm) == NULL || tm.tm_wday < 0 || tm.tm_wday > 6 ||
	    tm.tm_mon < 0 || tm.tm_mon > 11)
		return 0;
	/* RFC 5322 3.3 date-time, in UTC; one header field a line */
	bad = app(text, sizeof(text), &o, "Date: %s, %02d %s %04d "
	    "%02d:%02d:%02d +0000\n", wday[tm.tm_wday], tm.tm_mday,
	    mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	    tm.tm_sec) < 0;
	if (*from != '\0')
		bad |= app(text, sizeof(text), &o, "From: <%s>\n", from) < 0;
	else
		bad |= app(text, sizeof(text), &o, "From: warden probe "
		    "<warden-probe@%s>\n", domain) < 0;
	if (nrcpt == 0)	/* RFC 5322 3.4: an empty group */
		bad |= app(text, sizeof(text), &o,
		    "To: undisclosed-recipients:;\n") < 0;
	for (i = 0; i < nrcpt; i++)	/* folded: one address a line */
		bad |= app(text, sizeof(text), &o, "%s<%s>%s", i ? " " :
		    "To: ", rcpt[i], i + 1 < nrcpt ? ",\n" : "\n") < 0;
	bad |= app(text, sizeof(text), &o, "Subject: warden probe test\n"
	    "Message-ID: <warden-probe.%s@%s>\n\n"
	    "A test message sent by warden probe --data; it can be "
	    "deleted.\n", tag, domain) < 0;
	if (bad)
		return 0;
	return probe_data_encode(text, o, buf, len);
}

/* --- options ------------------------------------------------------------- */

#define PROBE_RCPT_MAX		16
#define PROBE_TIMEOUT_DEF	10	/* seconds per step */
#define PROBE_TIMEOUT_MAX	300	/* RFC 5321 4.5.3.2's longest */
#define PROBE_ARG_MAX		254	/* an address (RFC 5321 4.5.3.1.3) */
#define PROBE_CRED_MAX		255
/* RFC 2606: .example is never delegated, so this is foreign everywhere. */
#define PROBE_RELAY_RCPT	"relay-test@warden-probe.example"
#define PROBE_PASS_ENV		"WARDEN_PROBE_PASSWORD"

struct probe_opts {
	char	host[256];
	char	port[8];
	int	implicit_tls, require_tls, submission, json, timeout_s;
	int	data;
	int	have_auth;
	char	user[PROBE_CRED_MAX + 1], pass[PROBE_CRED_MAX + 1];
	const char *from, *helo, *cafile;
	const char *rcpt[PROBE_RCPT_MAX];
	size_t	nrcpt;
};

static const char probe_usage_text[] =
    "usage: warden probe HOST[:PORT] [--starttls | --tls] [--submission]\n"
    "         [--auth USER[:PASS]] [--from ADDR] [--rcpt ADDR]...\n"
    "         [--helo NAME] [--timeout S] [--cafile FILE] [--data] [--json]\n"
    "PORT defaults to 25 (465 with --tls). --starttls: TLS is required.\n"
    "--auth USER alone reads the password from " PROBE_PASS_ENV ".\n"
    "--timeout: seconds per step (default 10, at most 300).\n"
    "--data: send a test message to the accepted --rcpt (else RSET).\n";

static int
usage_err(FILE *err, const char *fmt, ...) PRINTF_LIKE(2, 3);

static int
usage_err(FILE *err, const char *fmt, ...)
{
	va_list ap;

	fputs("warden probe: ", err);
	va_start(ap, fmt);
	vfprintf(err, fmt, ap);
	va_end(ap);
	fputs("\n", err);
	fputs(probe_usage_text, err);
	return 2;
}

/* A command argument: printable ASCII, no space, '<' or '>', bounded. */
static int
arg_ok(const char *s, size_t max)
{
	size_t n = strlen(s), i;

	if (n > max)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '<' || s[i] == '>')
			return 0;
	return 1;
}

/* HOST, HOST:PORT, [V6], [V6]:PORT or a bare V6 address. */
static int
target_parse(const char *s, struct probe_opts *o)
{
	const char *host = s, *port = NULL, *c;
	long long v;
	size_t n;

	if (*s == '[') {
		if ((c = strchr(s, ']')) == NULL)
			return -1;
		host = s + 1;
		n = (size_t)(c - host);
		if (c[1] == ':')
			port = c + 2;
		else if (c[1] != '\0')
			return -1;
	} else if ((c = strchr(s, ':')) != NULL && strchr(c + 1, ':') == NULL) {
		n = (size_t)(c - s);
		port = c + 1;
	} else
		n = strlen(s);
	if (n == 0 || n >= sizeof(o->host) || strcspn(host, " \t\r\n<>[]/") < n)
		return -1;
	memcpy(o->host, host, n);
	o->host[n] = '\0';
	if (!arg_ok(o->host, sizeof(o->host) - 1))
		return -1;
	if (port != NULL) {
		if (str_to_ll(port, 1, 65535, &v) < 0)
			return -1;
		snprintf(o->port, sizeof(o->port), "%lld", v);
	}
	return 0;
}

/* "--name VALUE" or "--name=VALUE": 1 matched, 0 not this one, -1 no value. */
static int
opt_val(int argc, char **argv, int *i, const char *name, char **val)
{
	size_t n = strlen(name);
	char *a = argv[*i];

	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}

/* USER:PASS (or USER and the environment); wipes PASS from argv. */
static int
auth_parse(char *arg, struct probe_opts *o)
{
	char *colon = strchr(arg, ':');
	const char *pass;
	size_t ulen;

	ulen = colon != NULL ? (size_t)(colon - arg) : strlen(arg);
	pass = colon != NULL ? colon + 1 : getenv(PROBE_PASS_ENV);
	if (ulen == 0 || ulen > PROBE_CRED_MAX || pass == NULL ||
	    strlen(pass) > PROBE_CRED_MAX)
		return -1;
	memcpy(o->user, arg, ulen);
	o->user[ulen] = '\0';
	snprintf(o->pass, sizeof(o->pass), "%s", pass);
	if (colon != NULL)	/* so that ps(1) shows it for less time */
		memset(colon + 1, '*', strlen(colon + 1));
	o->have_auth = 1;
	return 0;
}

static int
opts_parse(int argc, char **argv, struct probe_opts *o, FILE *err)
{
	const char *target = NULL;
	long long t;
	char *v;
	int i, m;

	memset(o, 0, sizeof(*o));
	o->timeout_s = PROBE_TIMEOUT_DEF;
	o->from = "";
	for (i = 0; i < argc; i++) {
		v = NULL;
		if (strcmp(argv[i], "--starttls") == 0)
			o->require_tls = 1;
		else if (strcmp(argv[i], "--tls") == 0)
			o->implicit_tls = 1;
		else if (strcmp(argv[i], "--submission") == 0)
			o->submission = 1;
		else if (strcmp(argv[i], "--json") == 0)
			o->json = 1;
		else if (strcmp(argv[i], "--data") == 0)
			o->data = 1;
		else if ((m = opt_val(argc, argv, &i, "--auth", &v)) != 0) {
			if (m < 0 || auth_parse(v, o) < 0)
				return usage_err(err, "--auth wants USER:PASS "
				    "(or USER and " PROBE_PASS_ENV "), each "
				    "1-255 bytes");
		} else if ((m = opt_val(argc, argv, &i, "--from", &v)) != 0) {
			if (m < 0 || !arg_ok(v, PROBE_ARG_MAX))
				return usage_err(err, "bad --from address");
			o->from = v;
		} else if ((m = opt_val(argc, argv, &i, "--rcpt", &v)) != 0) {
			if (m < 0 || !arg_ok(v, PROBE_ARG_MAX) || *v == '\0')
				return usage_err(err, "bad --rcpt address");
			if (o->nrcpt == PROBE_RCPT_MAX)
				return usage_err(err, "at most %d --rcpt",
				    PROBE_RCPT_MAX);
			o->rcpt[o->nrcpt++] = v;
		} else if ((m = opt_val(argc, argv, &i, "--helo", &v)) != 0) {
			if (m < 0 || !arg_ok(v, 255) || *v == '\0')
				return usage_err(err, "--helo wants a name");
			o->helo = v;
		} else if ((m = opt_val(argc, argv, &i, "--cafile", &v)) != 0) {
			if (m < 0 || *v == '\0')
				return usage_err(err, "--cafile wants a file");
			o->cafile = v;
		} else if ((m = opt_val(argc, argv, &i, "--timeout", &v))
		    != 0) {
			if (m < 0 || str_to_ll(v, 1, PROBE_TIMEOUT_MAX, &t) < 0)
				return usage_err(err, "--timeout wants 1..%d "
				    "seconds", PROBE_TIMEOUT_MAX);
			o->timeout_s = (int)t;
		} else if (argv[i][0] == '-')
			return usage_err(err, "unknown option %s", argv[i]);
		else if (target != NULL)
			return usage_err(err, "one HOST[:PORT] only");
		else
			target = argv[i];
	}
	if (target == NULL)
		return usage_err(err, "no HOST given");
	if (target_parse(target, o) < 0)
		return usage_err(err, "bad HOST[:PORT]");
	if (o->implicit_tls && o->require_tls)
		return usage_err(err, "--starttls or --tls, not both");
	if (o->data && o->nrcpt == 0)
		return usage_err(err, "--data needs a --rcpt to send to");
	if (o->port[0] == '\0')
		snprintf(o->port, sizeof(o->port), "%s",
		    o->implicit_tls ? "465" : "25");
	/* RFC 8314 3.3: 465 is implicit TLS; RFC 6409: 587 is submission. */
	if (strcmp(o->port, "465") == 0 && !o->require_tls)
		o->implicit_tls = 1;
	if (strcmp(o->port, "465") == 0 || strcmp(o->port, "587") == 0)
		o->submission = 1;
	return 0;
}

/* --- connection ---------------------------------------------------------- */

struct probe {
	const struct probe_opts *o;
	int64_t	(*now_ms)(void);
	time_t	wall;		/* start of the run, for the Date header */
	int64_t	deadline;
	FILE	*out;
	int	fd;
	SSL_CTX	*ctx;
	SSL	*ssl;
	char	buf[4096];	/* received, not yet parsed: buf[off..len) */
	size_t	off, len;
	int	reached, alive, tls, authed, nsteps;
	int	count[PV_COUNT];
	int	verr[4];	/* certificate verification errors seen */
	size_t	nverr;
	struct probe_reply *r, *r2;
	struct probe_caps caps, caps_tls;
	const struct probe_caps *cur;
	char	helo[300];
	char	addr[INET6_ADDRSTRLEN + 8];
	char	ioerr[256];
	char	seen[80];	/* the bytes of a reply that went wrong */
};

/* "what: strerror(e)" into p->ioerr. */
static void
sys_err(struct probe *p, const char *what, int e)
{
	char b[128];

	snprintf(p->ioerr, sizeof(p->ioerr), "%s: %s", what,
	    strerror_r(e, b, sizeof(b)));
}

/* 1 ready, 0 deadline passed, -1 error (in p->ioerr). */
static int
io_wait(struct probe *p, short events)
{
	struct pollfd pfd;
	int64_t left;
	int rc;

	for (;;) {
		left = p->deadline - p->now_ms();
		if (left <= 0)
			return 0;
		pfd.fd = p->fd;
		pfd.events = events;
		pfd.revents = 0;
		rc = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (rc > 0)
			return 1;
		if (rc == 0)
			return 0;
		if (errno != EINTR) {
			sys_err(p, "poll", errno);
			return -1;
		}
	}
}

/* OpenSSL's first queued error, else errno, else "closed". */
static void
tls_errstr(struct probe *p, const char *what)
{
	char e[200];
	unsigned long code = ERR_get_error();
	int saved = errno;

	ERR_clear_error();
	if (code == 0 && saved != 0) {
		sys_err(p, what, saved);
		return;
	}
	if (code != 0)
		ERR_error_string_n(code, e, sizeof(e));
	else
		snprintf(e, sizeof(e), "connection closed");
	snprintf(p->ioerr, sizeof(p->ioerr), "%s: %s", what, e);
}

/*
 * One SSL call's outcome: 1 retry after waiting for ev, 0 closed cleanly,
 * -1 error (p->ioerr).
 */
static int
tls_retry(struct probe *p, int n, short *ev, const char *what)
{
	switch (SSL_get_error(p->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		*ev = POLLIN;
		return 1;
	case SSL_ERROR_WANT_WRITE:
		*ev = POLLOUT;
		return 1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		tls_errstr(p, what);
		return -1;
	}
}

/* >0 bytes read, 0 closed, -1 error, -2 deadline (p->ioerr set). */
static ssize_t
conn_read(struct probe *p, char *buf, size_t len)
{
	ssize_t n;
	short ev = POLLIN;
	int rc;

	for (;;) {
		errno = 0;
		if (p->ssl != NULL) {
			ERR_clear_error();
			n = SSL_read(p->ssl, buf, (int)len);
			if (n > 0)
				return n;
			if ((rc = tls_retry(p, (int)n, &ev, "TLS read")) <= 0)
				return rc;
		} else {
			n = recv(p->fd, buf, len, 0);
			if (n >= 0)
				return n;
			if (errno != EAGAIN && errno != EINTR) {
				sys_err(p, "read", errno);
				return -1;
			}
		}
		if ((rc = io_wait(p, ev)) <= 0)
			return rc == 0 ? -2 : -1;
	}
}

/* 0 written, -1 error, -2 deadline. */
static int
conn_write(struct probe *p, const char *s, size_t len)
{
	ssize_t n;
	short ev = POLLOUT;
	int rc;

	while (len > 0) {
		errno = 0;
		if (p->ssl != NULL) {
			ERR_clear_error();
			n = SSL_write(p->ssl, s, (int)len);
			if (n <= 0 && (rc = tls_retry(p, (int)n, &ev,
			    "TLS write")) <= 0) {
				if (rc == 0)
					snprintf(p->ioerr, sizeof(p->ioerr),
					    "TLS write: connection closed");
				return -1;
			}
		} else {
			n = send(p->fd, s, len, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				sys_err(p, "write", errno);
				return -1;
			}
		}
		if (n > 0) {
			s += n;
			len -= (size_t)n;
			continue;
		}
		if ((rc = io_wait(p, ev)) <= 0) {
			if (rc == 0)
				snprintf(p->ioerr, sizeof(p->ioerr),
				    "could not send within %d s",
				    p->o->timeout_s);
			return -1;
		}
	}
	return 0;
}

/* What a broken reply showed: its last (partial) line, cut. */
static void
reply_seen(const struct probe_reply *r, char *buf, size_t len)
{
	size_t n = r->linelen;

	if (n == 0 && r->nlines > 0) {
		snprintf(buf, len, "%d%c%s", r->code, r->state == 1 ? ' ' : '-',
		    r->text[r->nlines - 1]);
		return;
	}
	if (n > len - 4) {
		memcpy(buf, r->line, len - 4);
		memcpy(buf + len - 4, "...", 4);
	} else {
		memcpy(buf, r->line, n);
		buf[n] = '\0';
	}
}

/* Reads one reply into r: 0, or -1 with the reason in p->ioerr. */
static int
read_reply(struct probe *p, struct probe_reply *r)
{
	size_t used;
	ssize_t n;
	int rc;

	probe_reply_init(r);
	for (;;) {
		if (p->off < p->len) {
			rc = probe_reply_feed(r, p->buf + p->off,
			    p->len - p->off, &used);
			p->off += used;
			if (rc == 1)
				return 0;
			if (rc < 0) {
				reply_seen(r, p->seen, sizeof(p->seen));
				snprintf(p->ioerr, sizeof(p->ioerr),
				    "malformed reply: %s", r->err);
				return -1;
			}
		}
		p->off = p->len = 0;
		n = conn_read(p, p->buf, sizeof(p->buf));
		if (n > 0) {
			p->len = (size_t)n;
			continue;
		}
		reply_seen(r, p->seen, sizeof(p->seen));
		if (n == 0)
			snprintf(p->ioerr, sizeof(p->ioerr), "connection "
			    "closed by the server%s", r->nlines || r->linelen ?
			    " in the middle of a reply" : "");
		else if (n == -2)
			snprintf(p->ioerr, sizeof(p->ioerr), "no complete "
			    "reply within %d s", p->o->timeout_s);
		return -1;
	}
}

/* getaddrinfo(3) blocks; glibc's asynchronous lookup keeps the deadline. */
struct gai_req {
	struct gaicb	cb;
	struct addrinfo	hints;
	char		host[256], port[8];
};

static int
resolve(struct probe *p, struct addrinfo **res, char *why, size_t len)
{
	struct addrinfo hints;
	struct gai_req *q;
	struct gaicb *list[1];
	struct timespec ts;
	int64_t left;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if ((rc = getaddrinfo(p->o->host, p->o->port, &hints, res)) == 0)
		return 0;
	if (rc != EAI_NONAME || (q = calloc(1, sizeof(*q))) == NULL) {
		snprintf(why, len, "%s", gai_strerror(rc));
		return -1;
	}
	q->hints.ai_socktype = SOCK_STREAM;
	q->hints.ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG;
	memcpy(q->host, p->o->host, sizeof(q->host));
	memcpy(q->port, p->o->port, sizeof(q->port));
	q->cb.ar_name = q->host;
	q->cb.ar_service = q->port;
	q->cb.ar_request = &q->hints;
	list[0] = &q->cb;
	if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0) {
		free(q);
		snprintf(why, len, "cannot start the name lookup");
		return -1;
	}
	while ((left = p->deadline - p->now_ms()) > 0) {
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		rc = gai_suspend((const struct gaicb *const *)list, 1, &ts);
		if (rc != EAI_INTR)
			break;
	}
	if ((rc = gai_error(&q->cb)) == EAI_INPROGRESS) {
		snprintf(why, len, "name lookup timed out after %d s",
		    p->o->timeout_s);
		/* XXX the resolver thread still owns q unless cancelled. */
		if (gai_cancel(&q->cb) == EAI_CANCELED)
			free(q);
		return -1;
	}
	if (rc != 0)
		snprintf(why, len, "cannot resolve: %s", gai_strerror(rc));
	*res = q->cb.ar_result;
	free(q);
	return rc == 0 ? 0 : -1;
}

/* Tries each address until one connects: 0, or -1 with why. */
static int
conn_open(struct probe *p, char *why, size_t len)
{
	struct addrinfo *res = NULL, *ai;
	socklen_t sl;
	char eb[128];
	int e, rc;

	if (resolve(p, &res, why, len) < 0)
		return -1;
	snprintf(why, len, "no address");
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, p->addr,
		    sizeof(p->addr), NULL, 0, NI_NUMERICHOST) != 0)
			snprintf(p->addr, sizeof(p->addr), "?");
		p->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, 0);
		if (p->fd < 0) {
			e = errno;
		} else if (connect(p->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			e = 0;
		} else if ((e = errno) == EINPROGRESS) {
			rc = io_wait(p, POLLOUT);
			sl = sizeof(e);
			if (rc == 0)
				e = ETIMEDOUT;
			else if (rc < 0 || getsockopt(p->fd, SOL_SOCKET,
			    SO_ERROR, &e, &sl) < 0)
				e = errno;
		}
		if (e == 0)
			break;
		snprintf(why, len, "%s port %s: %s", p->addr, p->o->port,
		    strerror_r(e, eb, sizeof(eb)));
		if (p->fd >= 0)
			close(p->fd);
		p->fd = -1;
	}
	freeaddrinfo(res);
	return p->fd >= 0 ? 0 : -1;
}

static void
conn_close(struct probe *p)
{
	if (p->ssl != NULL)
		SSL_free(p->ssl);
	if (p->ctx != NULL)
		SSL_CTX_free(p->ctx);
	if (p->fd >= 0)
		close(p->fd);
	p->ssl = NULL;
	p->ctx = NULL;
	p->fd = -1;
}

/* Records why the chain does not verify, and lets the handshake go on. */
static int
tls_verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x,
	    SSL_get_ex_data_X509_STORE_CTX_idx());
	struct probe *p = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
	int e = X509_STORE_CTX_get_error(x);
	size_t i;

	if (ok || p == NULL)
		return 1;
	for (i = 0; i < p->nverr; i++)
		if (p->verr[i] == e)
			return 1;
	if (p->nverr < NELEM(p->verr))
		p->verr[p->nverr++] = e;
	return 1;
}

/* The TLS handshake on p->fd: 0, or -1 with p->ioerr. */
static int
tls_handshake(struct probe *p)
{
	unsigned char ip[16];
	short ev = POLLOUT;
	int n, rc;

	ERR_clear_error();
	if ((p->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    (p->o->cafile != NULL ? SSL_CTX_load_verify_locations(p->ctx,
	    p->o->cafile, NULL) : SSL_CTX_set_default_verify_paths(p->ctx))
	    != 1) {
		tls_errstr(p, p->o->cafile ? "cannot load --cafile" :
		    "TLS set-up");
		return -1;
	}
	SSL_CTX_set_verify(p->ctx, SSL_VERIFY_PEER, tls_verify_cb);
	if ((p->ssl = SSL_new(p->ctx)) == NULL ||
	    SSL_set_fd(p->ssl, p->fd) != 1) {
		tls_errstr(p, "TLS set-up");
		return -1;
	}
	SSL_set_app_data(p->ssl, p);
	if (inet_pton(AF_INET, p->o->host, ip) == 1 ||
	    inet_pton(AF_INET6, p->o->host, ip) == 1)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(p->ssl),
		    p->o->host);
	else if (SSL_set_tlsext_host_name(p->ssl, p->o->host) != 1 ||
	    SSL_set1_host(p->ssl, p->o->host) != 1) {
		tls_errstr(p, "TLS set-up");
		return -1;
	}
	for (;;) {
		ERR_clear_error();
		errno = 0;
		if ((n = SSL_connect(p->ssl)) == 1)
			break;
		if ((rc = tls_retry(p, n, &ev, "TLS handshake")) <= 0) {
			if (rc == 0)
				snprintf(p->ioerr, sizeof(p->ioerr),
				    "TLS handshake: connection closed");
			return -1;
		}
		if ((rc = io_wait(p, ev)) <= 0) {
			if (rc == 0)
				snprintf(p->ioerr, sizeof(p->ioerr), "TLS "
				    "handshake not done within %d s",
				    p->o->timeout_s);
			return -1;
		}
	}
	p->tls = 1;
	return 0;
}

/* --- output -------------------------------------------------------------- */

#define COL_REPLY	69	/* where the REPLY column starts */

/*
 * Our own text, which may quote server text already escaped: printed as
 * it is, but a stray non-printable byte becomes '?'.
 */
static const char *
printable(const char *s, char *buf, size_t len)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < len; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* A JSON string of printable ASCII (see printable). */
static void
json_raw(FILE *f, const char *s)
{
	char e[LOG_ESC_BUF];
	const char *q;

	fputc('"', f);
	for (q = printable(s, e, sizeof(e)); *q != '\0'; q++) {
		if (*q == '\\' || *q == '"')
			fputc('\\', f);
		fputc(*q, f);
	}
	fputc('"', f);
}

/* A JSON string of untrusted bytes: escaped as in the table first. */
static void
json_str(FILE *f, const char *s)
{
	char e[LOG_ESC_BUF];

	if (s == NULL)
		fputs("null", f);
	else
		json_raw(f, log_esc(s, strlen(s), e, sizeof(e)));
}

/*
 * One step: its name, what we sent (NULL: nothing), the reply (NULL: the
 * step has no SMTP reply, info says what was seen) and the verdict.
 */
static void
emit(struct probe *p, const char *step, const char *sent,
    const struct probe_reply *r, const char *info,
    const struct probe_judgement *j)
{
	char code[8] = "-", enh[16] = "-", e[LOG_ESC_BUF], w[LOG_ESC_BUF];
	size_t i;

	p->count[j->v]++;
	if (r != NULL && r->code != 0)
		snprintf(code, sizeof(code), "%d", r->code);
	if (r != NULL && r->enh[0] >= 0)
		snprintf(enh, sizeof(enh), "%d.%d.%d", r->enh[0], r->enh[1],
		    r->enh[2]);
	printable(j->why, w, sizeof(w));
	if (p->o->json) {
		fprintf(p->out, "%s\n    {\"step\": \"%s\", \"verdict\": "
		    "\"%s\", \"sent\": ", p->nsteps ? "," : "", step,
		    probe_verdict_name(j->v));
		json_str(p->out, sent);
		fprintf(p->out, ", \"code\": %s, \"enhanced\": %s%s%s, "
		    "\"reply\": [", r != NULL && r->code ? code : "null",
		    r != NULL && r->enh[0] >= 0 ? "\"" : "",
		    r != NULL && r->enh[0] >= 0 ? enh : "null",
		    r != NULL && r->enh[0] >= 0 ? "\"" : "");
		for (i = 0; r != NULL && i < r->nlines; i++) {
			fputs(i ? ", " : "", p->out);
			json_str(p->out, i ? r->text[i] : probe_reply_text(r));
		}
		fputs("], \"info\": ", p->out);
		json_str(p->out, info);
		fputs(", \"why\": ", p->out);
		json_raw(p->out, j->why);
		fputs("}", p->out);
		p->nsteps++;
		return;
	}
	p->nsteps++;
	log_esc(sent ? sent : "-", strlen(sent ? sent : "-"), e, sizeof(e));
	fprintf(p->out, "%-15s %-7s %-4s %-8s %-30s ", step,
	    probe_verdict_name(j->v), code, enh, e);
	if (r == NULL)
		fprintf(p->out, "%s\n", log_esc(info ? info : "-",
		    strlen(info ? info : "-"), e, sizeof(e)));
	for (i = 0; r != NULL && i < r->nlines; i++) {
		if (i == 0)
			log_esc(probe_reply_text(r),
			    strlen(probe_reply_text(r)), e, sizeof(e));
		else
			log_esc(r->text[i], r->len[i], e, sizeof(e));
		fprintf(p->out, "%*s%s\n", i ? COL_REPLY : 0, "", e);
	}
	fprintf(p->out, "%16s-> %s\n", "", w);
}

/* A step that failed for want of a usable reply: ends the session. */
static void
emit_ioerr(struct probe *p, const char *step, const char *sent)
{
	struct probe_judgement j;

	judge(&j, PV_PROBLEM, "%s", p->ioerr);
	emit(p, step, sent, NULL, p->seen[0] ? p->seen : "-", &j);
	p->seen[0] = '\0';
	p->alive = 0;
}

/* A judged reply: shared code checks, and 421 closes the session. */
static void
emit_reply(struct probe *p, const char *step, const char *sent,
    const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 421) {
		judge(j, PV_WARNING, "421: the server closed the session here; "
		    "later steps skipped (RFC 5321 3.8)");
		p->alive = 0;
	}
	probe_judge_codes(r, p->cur != NULL && p->cur->enhanced, j);
	emit(p, step, sent, r, NULL, j);
}

/*
 * Sends wire (NULL: nothing, just read) and reads the reply into r.
 * shown is what the table prints (credentials masked). 0, or -1 after a
 * problem row (no reply, malformed, closed, unsolicited data).
 */
static int
exchange(struct probe *p, const char *step, const char *shown,
    const char *wire, struct probe_reply *r)
{
	char line[1100];
	int n;

	p->deadline = p->now_ms() + (int64_t)p->o->timeout_s * 1000;
	if (wire != NULL) {
		if (p->off < p->len) {
			/* RFC 5321 4.3.1: the server speaks when spoken to */
			snprintf(p->ioerr, sizeof(p->ioerr), "the server sent "
			    "%zu unrequested bytes before this command",
			    p->len - p->off);
			emit_ioerr(p, step, shown);
			return -1;
		}
		n = snprintf(line, sizeof(line), "%s\r\n", wire);
		if (n < 0 || (size_t)n >= sizeof(line) ||
		    conn_write(p, line, (size_t)n) < 0) {
			OPENSSL_cleanse(line, sizeof(line));
			emit_ioerr(p, step, shown);
			return -1;
		}
		OPENSSL_cleanse(line, sizeof(line));
	}
	if (read_reply(p, r) < 0) {
		emit_ioerr(p, step, shown);
		return -1;
	}
	return 0;
}

/* --- the steps ----------------------------------------------------------- */

static int
step_connect(struct probe *p)
{
	struct probe_judgement j;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char why[300], host[256], lit[INET6_ADDRSTRLEN + 8];
	int64_t t0 = p->now_ms();

	p->deadline = t0 + (int64_t)p->o->timeout_s * 1000;
	if (conn_open(p, why, sizeof(why)) < 0) {
		judge(&j, PV_PROBLEM, "host unreachable: %s", why);
		emit(p, "connect", NULL, NULL, "-", &j);
		return -1;
	}
	p->reached = p->alive = 1;
	snprintf(why, sizeof(why), "%s port %s", p->addr, p->o->port);
	judge(&j, PV_OK, "TCP connection in %lld ms",
	    (long long)(p->now_ms() - t0));
	emit(p, "connect", NULL, NULL, why, &j);
	/* RFC 5321 4.1.4: our FQDN, or an address literal without one. */
	if (p->o->helo != NULL)
		snprintf(p->helo, sizeof(p->helo), "%s", p->o->helo);
	else if (gethostname(host, sizeof(host)) == 0 &&
	    memchr(host, '\0', sizeof(host)) != NULL && strchr(host, '.') &&
	    arg_ok(host, 255))
		snprintf(p->helo, sizeof(p->helo), "%s", host);
	else if (getsockname(p->fd, (struct sockaddr *)&ss, &sl) == 0 &&
	    getnameinfo((struct sockaddr *)&ss, sl, lit, sizeof(lit), NULL, 0,
	    NI_NUMERICHOST) == 0)
		snprintf(p->helo, sizeof(p->helo), ss.ss_family == AF_INET6 ?
		    "[IPv6:%s]" : "[%s]", lit);
	else
		snprintf(p->helo, sizeof(p->helo), "localhost");
	return 0;
}

static void
name_str(const X509_NAME *name, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n = 0;

	if (b != NULL && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0)
		n = BIO_read(b, buf, (int)len - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

static void
step_cert(struct probe *p)
{
	struct probe_judgement j;
	char subj[256], iss[256], info[800], errs[200], date[32] = "?";
	X509 *c = SSL_get1_peer_certificate(p->ssl);
	EVP_PKEY *k;
	struct tm tm;
	int days = 0, secs = 0;
	size_t i, o = 0;

	if (c == NULL) {
		judge(&j, PV_PROBLEM, "the server sent no certificate");
		emit(p, "certificate", NULL, NULL, "-", &j);
		return;
	}
	name_str(X509_get_subject_name(c), subj, sizeof(subj));
	name_str(X509_get_issuer_name(c), iss, sizeof(iss));
	if (ASN1_TIME_to_tm(X509_get0_notAfter(c), &tm) == 1)
		strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(c));
	k = X509_get0_pubkey(c);
	snprintf(info, sizeof(info), "subject=%s issuer=%s expires=%s key=%s "
	    "%d bits", subj, iss, date, k ? EVP_PKEY_get0_type_name(k) : "?",
	    k ? EVP_PKEY_get_bits(k) : 0);
	errs[0] = '\0';
	for (i = 0; i < p->nverr && o < sizeof(errs); i++)
		o += (size_t)snprintf(errs + o, sizeof(errs) - o, "%s%s",
		    i ? "; " : "", X509_verify_cert_error_string(p->verr[i]));
	if (days < 0 || (days == 0 && secs < 0))
		judge(&j, PV_WARNING, "expired %d days ago%s%s", -days,
		    *errs ? ": " : "", errs);
	else if (p->nverr > 0)
		judge(&j, PV_WARNING, "not verified (%s): opportunistic TLS "
		    "between MTAs takes it (RFC 7435), clients that verify "
		    "refuse it", errs);
	else
		judge(&j, PV_OK, "verified against %s, name matches, "
		    "%d days left", p->o->cafile ? "--cafile" :
		    "the system CA store", days);
	X509_free(c);
	emit(p, "certificate", NULL, NULL, info, &j);
}

/* The handshake and its two rows; -1 ends the session. */
static int
step_tls(struct probe *p)
{
	struct probe_judgement j;
	char info[200];

	p->deadline = p->now_ms() + (int64_t)p->o->timeout_s * 1000;
	if (tls_handshake(p) < 0) {
		emit_ioerr(p, "tls", NULL);
		return -1;
	}
	snprintf(info, sizeof(info), "%s %s %d bits", SSL_get_version(p->ssl),
	    SSL_get_cipher_name(p->ssl), SSL_get_cipher_bits(p->ssl, NULL));
	probe_judge_tls(SSL_version(p->ssl), SSL_get_cipher_bits(p->ssl,
	    NULL), &j);
	emit(p, "tls", NULL, NULL, info, &j);
	step_cert(p);
	return 0;
}

static int
step_ehlo(struct probe *p, const char *step, struct probe_caps *caps)
{
	struct probe_judgement j;
	char cmd[320];

	snprintf(cmd, sizeof(cmd), "EHLO %s", p->helo);
	if (exchange(p, step, cmd, cmd, p->r) < 0)
		return -1;
	probe_judge_ehlo(p->r, &j);
	emit(p, step, cmd, p->r, NULL, &j);
	if (p->r->code == 421)
		p->alive = 0;
	if (probe_caps_parse(p->r, caps) < 0)
		return -1;
	p->cur = caps;
	return 0;
}

/* Plain session: AUTH in clear?, STARTTLS, TLS, EHLO again. */
static int
step_starttls(struct probe *p)
{
	struct probe_judgement j;
	int sub = p->o->submission, req = p->o->require_tls;

	probe_judge_auth_offer(&p->caps, 0, sub, &j);
	emit(p, "auth-before-tls", NULL, NULL, p->caps.auth ? "AUTH offered" :
	    "no AUTH", &j);
	if (!p->caps.starttls) {
		probe_judge_no_starttls(sub, req, &j);
		emit(p, "starttls", NULL, NULL, "not offered", &j);
		return 0;
	}
	if (exchange(p, "starttls", "STARTTLS", "STARTTLS", p->r) < 0)
		return -1;
	probe_judge_starttls(p->r, sub, req, &j);
	if (p->r->code == 220 && p->off < p->len) {
		/* CVE-2011-0411 class: plaintext that would pass as TLS's */
		judge(&j, PV_PROBLEM, "%zu bytes after the 220, before TLS: "
		    "response injection (RFC 3207 5)", p->len - p->off);
		p->alive = 0;
	}
	emit_reply(p, "starttls", "STARTTLS", p->r, &j);
	if (p->r->code != 220 || !p->alive)
		return p->alive ? 0 : -1;
	if (step_tls(p) < 0)
		return -1;
	/* RFC 3207 4.2: forget what was learned in clear, ask again. */
	if (step_ehlo(p, "ehlo-tls", &p->caps_tls) < 0)
		return -1;
	probe_judge_caps_change(&p->caps, &p->caps_tls, &j);
	emit(p, "caps-change", NULL, NULL, "-", &j);
	return 0;
}

/* AUTH PLAIN (or LOGIN) under TLS only; the secret never reaches out. */
static void
step_auth(struct probe *p)
{
	struct probe_judgement j;
	unsigned char raw[2 * PROBE_CRED_MAX + 3];
	char b64[4 * sizeof(raw) / 3 + 16], wire[sizeof(b64) + 16];
	const char *mech;
	size_t ul = strlen(p->o->user), pl = strlen(p->o->pass);

	if (!p->tls) {
		judge(&j, PV_PROBLEM, "not sent: no TLS session, and warden "
		    "probe never sends credentials in clear (RFC 4954 4)");
		emit(p, "auth", NULL, NULL, "-", &j);
		return;
	}
	mech = probe_caps_mech(p->cur, "PLAIN") ? "PLAIN" :
	    probe_caps_mech(p->cur, "LOGIN") ? "LOGIN" : NULL;
	if (mech == NULL) {
		judge(&j, PV_PROBLEM, "no AUTH PLAIN or LOGIN offered");
		emit(p, "auth", NULL, NULL, p->cur->auth ? "AUTH offered" :
		    "no AUTH", &j);
		return;
	}
	if (*mech == 'P') {	/* RFC 4616: authzid NUL authcid NUL passwd */
		raw[0] = '\0';
		memcpy(raw + 1, p->o->user, ul + 1);
		memcpy(raw + ul + 2, p->o->pass, pl);
		EVP_EncodeBlock((unsigned char *)b64, raw, (int)(ul + pl + 2));
		snprintf(wire, sizeof(wire), "AUTH PLAIN %s", b64);
		if (exchange(p, "auth", "AUTH PLAIN ****", wire, p->r) < 0)
			goto out;
	} else {
		if (exchange(p, "auth", "AUTH LOGIN ****", "AUTH LOGIN",
		    p->r) < 0 || p->r->code != 334)
			goto judged;
		EVP_EncodeBlock((unsigned char *)b64,
		    (const unsigned char *)p->o->user, (int)ul);
		if (exchange(p, "auth", "AUTH LOGIN ****", b64, p->r) < 0 ||
		    p->r->code != 334)
			goto judged;
		EVP_EncodeBlock((unsigned char *)b64,
		    (const unsigned char *)p->o->pass, (int)pl);
		if (exchange(p, "auth", "AUTH LOGIN ****", b64, p->r) < 0)
			goto out;
	}
judged:
	if (!p->alive)
		goto out;
	if (p->r->code == 334)	/* a challenge we will not answer: hang up */
		p->alive = 0;
	probe_judge_auth(p->r, &j);
	p->authed = p->r->code == 235;
	emit_reply(p, "auth", *mech == 'P' ? "AUTH PLAIN ****" :
	    "AUTH LOGIN ****", p->r, &j);
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	OPENSSL_cleanse(b64, sizeof(b64));
	OPENSSL_cleanse(wire, sizeof(wire));
}

static void
step_harvest(struct probe *p)
{
	struct probe_judgement j;
	const char *known = p->o->nrcpt ? p->o->rcpt[0] : "postmaster";
	const char *at = strchr(known, '@');
	char cmd[300], cmd2[340];
	unsigned char rnd[4] = { 0 };

	snprintf(cmd, sizeof(cmd), "VRFY %s", known);
	if (exchange(p, "vrfy", cmd, cmd, p->r) < 0)
		return;
	probe_judge_vrfy(p->r, &j);
	emit_reply(p, "vrfy", cmd, p->r, &j);
	if (!p->alive)
		return;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		ERR_clear_error();	/* a fixed name does as well */
	snprintf(cmd2, sizeof(cmd2), "VRFY warden-probe-%02x%02x%02x%02x%s",
	    rnd[0], rnd[1], rnd[2], rnd[3], at ? at : "");
	if (exchange(p, "vrfy-unknown", cmd2, cmd2, p->r2) < 0)
		return;
	probe_judge_vrfy_unknown(p->r, p->r2, &j);
	emit_reply(p, "vrfy-unknown", cmd2, p->r2, &j);
	if (!p->alive)
		return;
	snprintf(cmd, sizeof(cmd), "EXPN %s", known);
	if (exchange(p, "expn", cmd, cmd, p->r) < 0)
		return;
	probe_judge_expn(p->r, &j);
	emit_reply(p, "expn", cmd, p->r, &j);
}

/* MAIL FROM into p->r: 0, or -1 when the session is over. */
static int
env_mail(struct probe *p, const char *step)
{
	struct probe_judgement j;
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>", p->o->from);
	if (exchange(p, step, cmd, cmd, p->r) < 0)
		return -1;
	probe_judge_mail(p->r, &j);
	emit_reply(p, step, cmd, p->r, &j);
	return p->alive ? 0 : -1;
}

/* A domain for the test message: the HELO name if a plain one. */
static const char *
msg_domain(const struct probe *p)
{
	const char *h = p->helo;

	if (*h == '\0' || *h == '.' || strspn(h, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(h))
		return "warden-probe.invalid";
	return h;
}

/*
 * --data: DATA, the test message, its final reply (replies in p->r2).
 * 1 when the transaction is over (final reply read), 0 when DATA was
 * refused (the envelope stands), -1 when the envelope steps must stop.
 */
static int
step_data(struct probe *p)
{
	struct probe_judgement j;
	char msg[12288], shown[48], tag[40];
	unsigned char rnd[8] = { 0 };
	/* The Date header: main.c passes the wall clock. */
	time_t now = p->wall;
	size_t n;

	if (exchange(p, "data", "DATA", "DATA", p->r2) < 0)
		return -1;
	probe_judge_data(p->r2, &j);
	if (p->r2->code == 354 && p->off < p->len) {
		/* RFC 5321 4.3.1: nothing until the end of the data */
		judge(&j, PV_PROBLEM, "%zu bytes after the 354, before the "
		    "message (RFC 5321 4.3.1)", p->len - p->off);
		p->alive = 0;
	}
	emit_reply(p, "data", "DATA", p->r2, &j);
	if (!p->alive || p->r2->code != 354)
		return p->alive && (CLASS(p->r2) == 4 || CLASS(p->r2) == 5) ?
		    0 : -1;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		ERR_clear_error();	/* the time keeps it unique enough */
	snprintf(tag, sizeof(tag), "%lld.%02x%02x%02x%02x%02x%02x%02x%02x",
	    (long long)now, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
	    rnd[5], rnd[6], rnd[7]);
	n = probe_message(msg, sizeof(msg), p->o->from, p->o->rcpt,
	    p->o->nrcpt, now, tag, msg_domain(p));
	snprintf(shown, sizeof(shown), "(%zu bytes) CRLF.CRLF", n);
	p->deadline = p->now_ms() + (int64_t)p->o->timeout_s * 1000;
	if (n == 0) {
		/* cannot happen with the bounds of the options */
		snprintf(p->ioerr, sizeof(p->ioerr), "test message too long");
		emit_ioerr(p, "message", shown);
		return -1;
	}
	if (conn_write(p, msg, n) < 0 || read_reply(p, p->r2) < 0) {
		emit_ioerr(p, "message", shown);
		return -1;
	}
	probe_judge_message(p->r2, &j);
	emit_reply(p, "message", shown, p->r2, &j);
	return p->alive ? 1 : -1;
}

/*
 * MAIL, each RCPT, with --data DATA and the test message, the relay test
 * (in a transaction of its own after a message), RSET.
 */
static void
step_envelope(struct probe *p)
{
	struct probe_judgement j;
	char cmd[300];
	size_t i, accepted = 0;
	int rc;

	if (env_mail(p, "mail") < 0)
		return;
	for (i = 0; CLASS(p->r) == 2 && i < p->o->nrcpt; i++) {
		snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", p->o->rcpt[i]);
		if (exchange(p, "rcpt", cmd, cmd, p->r2) < 0)
			return;
		probe_judge_rcpt(p->r2, &j);
		emit_reply(p, "rcpt", cmd, p->r2, &j);
		if (!p->alive)
			return;
		accepted += CLASS(p->r2) == 2;
	}
	if (p->o->data && CLASS(p->r) == 2) {
		if (accepted == 0) {
			judge(&j, PV_WARNING, "not sent: no --rcpt accepted");
			emit(p, "data", NULL, NULL, "-", &j);
		} else if ((rc = step_data(p)) < 0)
			return;
		else if (rc == 1 && env_mail(p, "relay-mail") < 0)
			return;
	}
	if (CLASS(p->r) == 2) {
		snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", PROBE_RELAY_RCPT);
		if (exchange(p, "relay", cmd, cmd, p->r2) < 0)
			return;
		probe_judge_relay(p->r2, p->authed, &j);
		emit_reply(p, "relay", cmd, p->r2, &j);
	}
	if (!p->alive || exchange(p, "rset", "RSET", "RSET", p->r) < 0)
		return;
	probe_judge_expect(p->r, 250, "transaction reset", &j);
	emit_reply(p, "rset", "RSET", p->r, &j);
}

static void
probe_session(struct probe *p)
{
	struct probe_judgement j;

	if (step_connect(p) < 0)
		return;
	if (p->o->implicit_tls && step_tls(p) < 0)
		return;
	if (exchange(p, "banner", NULL, NULL, p->r) < 0)
		return;
	probe_judge_banner(p->r, &j);
	emit(p, "banner", NULL, p->r, NULL, &j);
	if (p->r->code != 220)
		return;
	if (step_ehlo(p, "ehlo", &p->caps) < 0 || !p->alive)
		goto quit;
	if (!p->tls && step_starttls(p) < 0)
		return;
	if (p->tls) {
		probe_judge_auth_offer(p->cur, 1, p->o->submission, &j);
		emit(p, "auth-offer", NULL, NULL, p->cur->auth ?
		    "AUTH offered" : "no AUTH", &j);
	}
	if (p->o->have_auth)
		step_auth(p);
	if (p->alive)
		step_harvest(p);
	if (p->alive)
		step_envelope(p);
quit:
	if (p->alive && exchange(p, "quit", "QUIT", "QUIT", p->r) == 0) {
		probe_judge_expect(p->r, 221, "closing", &j);
		emit_reply(p, "quit", "QUIT", p->r, &j);
	}
}

int
probe_main(int argc, char **argv, int64_t (*now_ms)(void), time_t wall,
    FILE *out, FILE *err)
{
	struct probe_opts o;
	struct probe p;
	struct sigaction sa;
	int rc;

	if ((rc = opts_parse(argc, argv, &o, err)) != 0)
		return rc;
	/* SSL writes through write(2): a peer that closed must not kill us */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	memset(&p, 0, sizeof(p));
	p.o = &o;
	p.now_ms = now_ms;
	p.wall = wall;
	p.out = out;
	p.fd = -1;
	p.r = malloc(sizeof(*p.r));
	p.r2 = malloc(sizeof(*p.r2));
	if (p.r == NULL || p.r2 == NULL) {
		fprintf(err, "warden probe: out of memory\n");
		rc = 3;
		goto out;
	}
	probe_reply_init(p.r);
	probe_reply_init(p.r2);
	if (o.json) {
		fputs("{\"target\": ", out);
		json_str(out, o.host);
		fprintf(out, ", \"port\": %s, \"steps\": [", o.port);
	} else {
		fprintf(out, "warden probe %s%s%s:%s: %s, %s listener, %d s "
		    "per step\n", strchr(o.host, ':') ? "[" :
		    "", o.host, strchr(o.host, ':') ? "]" : "", o.port,
		    o.implicit_tls ? "implicit TLS" : o.require_tls ?
		    "STARTTLS required" : "STARTTLS if offered",
		    o.submission ? "submission" : "relay/MX", o.timeout_s);
		fprintf(out, "%-15s %-7s %-4s %-8s %-30s %s\n", "STEP",
		    "VERDICT", "CODE", "ENH", "SENT", "REPLY");
	}
	probe_session(&p);
	conn_close(&p);
	rc = !p.reached ? 3 : p.count[PV_PROBLEM] > 0 ? 1 : 0;
	if (o.json)
		fprintf(out, "\n  ], \"summary\": {\"ok\": %d, "
		    "\"warning\": %d, \"problem\": %d}, \"exit\": %d}\n",
		    p.count[PV_OK],
		    p.count[PV_WARNING], p.count[PV_PROBLEM], rc);
	else
		fprintf(out, "summary: %d ok, %d warning, %d problem: %s "
		    "(exit %d)\n", p.count[PV_OK], p.count[PV_WARNING],
		    p.count[PV_PROBLEM], rc == 3 ? "host unreachable" :
		    rc == 1 ? "problems found" : "no problem found", rc);
out:
	free(p.r);
	free(p.r2);
	OPENSSL_cleanse(&o, sizeof(o));
	return rc;
}

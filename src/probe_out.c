/*
 * probe_out.c - what `warden probe` says about each step: the verdicts
 * (RFC 5321, 3463, 3207, 4954, 6409, 8314) and the rows of the table or
 * the JSON, and the send-and-read exchange that ends in a row on failure.
 * Owns: judging replies, printing steps. Not: the order of the steps
 * (probe.c), socket and TLS I/O (probe_conn.c).
 * Untrusted: every server byte; printed escaped (log_esc), never as a
 * format. A row shows what was sent only as shown (credentials masked);
 * the line exchange sends, which may hold them, is wiped after use.
 * Threads: the verdicts are pure; the rest writes to one run's struct
 * probe and its output stream.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "log.h"
#include "probe_int.h"

/* --- verdicts ------------------------------------------------------------ */

static const char *const verdict_names[PV_COUNT] = {
	"ok", "warning", "problem"
};

const char *
probe_verdict_name(enum probe_verdict v)
{
	return v < PV_COUNT ? verdict_names[v] : "?";
}

void
probe_judge(struct probe_judgement *j, enum probe_verdict v,
    const char *fmt, ...)
{
	va_list ap;

	j->v = v;
	va_start(ap, fmt);
	vsnprintf(j->why, sizeof(j->why), fmt, ap);
	va_end(ap);
}

void
probe_judge_banner(const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 220)
		probe_judge(j, PV_OK, "220: service ready (RFC 5321 4.2.3)");
	else if (r->code == 554)
		probe_judge(j, PV_PROBLEM, "554: no SMTP service here for this "
		    "client (RFC 5321 3.1)");
	else if (r->code == 421)
		probe_judge(j, PV_PROBLEM, "421: service not available, "
		    "closing (RFC 5321 3.8)");
	else
		probe_judge(j, PV_PROBLEM, "%d is not a greeting: 220 or 554 "
		    "(RFC 5321 4.3.2)", r->code);
}

void
probe_judge_ehlo(const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 250)
		probe_judge(j, PV_OK, "250: ESMTP, %zu extension%s "
		    "(RFC 5321 4.1.1.1)", r->nlines - 1,
		    r->nlines == 2 ? "" : "s");
	else
		probe_judge(j, PV_PROBLEM, "EHLO refused with %d: no ESMTP, "
		    "hence no STARTTLS or AUTH (RFC 5321 4.1.1.1)", r->code);
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
			probe_judge(j, PV_OK, "AUTH %s offered under TLS", m);
		else if (submission)
			probe_judge(j, PV_WARNING, "no AUTH on a submission "
			    "port: clients cannot authenticate (RFC 6409 4.3)");
		else
			probe_judge(j, PV_OK, "no AUTH: fine for a relay/MX "
			    "port");
		return;
	}
	if (!c->auth)
		probe_judge(j, PV_OK, "AUTH not offered before TLS");
	else if (submission || mechs_cleartext(c->mechs))
		probe_judge(j, PV_PROBLEM, "AUTH %s offered without TLS: "
		    "passwords can travel in clear (RFC 4954 4, RFC 8314 3; "
		    "Postfix: smtpd_tls_auth_only = yes)", m);
	else
		probe_judge(j, PV_WARNING, "AUTH %s offered without TLS (no "
		    "cleartext mechanism, RFC 4954 4)", m);
}

void
probe_judge_no_starttls(int submission, int required,
    struct probe_judgement *j)
{
	if (submission || required)
		probe_judge(j, PV_PROBLEM, "STARTTLS not offered: %s (RFC "
		    "3207, RFC 8314 3)", submission ? "a submission port must "
		    "encrypt" : "--starttls requires it");
	else
		probe_judge(j, PV_WARNING, "STARTTLS not offered: mail to this "
		    "host travels in clear (RFC 3207)");
}

void
probe_judge_starttls(const struct probe_reply *r, int submission,
    int required, struct probe_judgement *j)
{
	if (r->code == 220)
		probe_judge(j, PV_OK, "220: ready to start TLS (RFC 3207 4)");
	else
		probe_judge(j, submission || required ? PV_PROBLEM : PV_WARNING,
		    "STARTTLS advertised but refused with %d (RFC 3207 4)",
		    r->code);
}

void
probe_judge_tls(int version, int bits, struct probe_judgement *j)
{
	if (version < TLS1_2_VERSION)
		probe_judge(j, PV_WARNING, "protocol older than TLS 1.2 "
		    "(RFC 8996)");
	else if (bits < 128)
		probe_judge(j, PV_WARNING, "cipher of %d bits, under 128 "
		    "(RFC 9325 4.2)", bits);
	else
		probe_judge(j, PV_OK, "TLS 1.2 or later, %d-bit cipher "
		    "(RFC 9325)", bits);
}

void
probe_judge_caps_change(const struct probe_caps *before,
    const struct probe_caps *after, struct probe_judgement *j)
{
	char d[512], e[LOG_ESC_BUF];

	probe_caps_diff(before, after, d, sizeof(d));
	log_esc(d, strlen(d), e, sizeof(e));
	if (after->starttls)
		probe_judge(j, PV_WARNING, "STARTTLS still offered under TLS "
		    "(RFC 3207 4.2)%s%s", *e ? ": " : "", e);
	else
		probe_judge(j, PV_OK, "capabilities after TLS: %s", *e ? e :
		    "no change");
}

void
probe_judge_auth(const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 235)
		probe_judge(j, PV_OK, "235: authenticated (RFC 4954 6)");
	else if (PROBE_CLASS(r) == 4)
		probe_judge(j, PV_WARNING, "%d: temporary AUTH failure "
		    "(RFC 4954 6)", r->code);
	else if (r->code == 535)
		probe_judge(j, PV_PROBLEM, "535: credentials refused "
		    "(RFC 4954 6)");
	else
		probe_judge(j, PV_PROBLEM, "%d: AUTH failed (RFC 4954 6)",
		    r->code);
}

void
probe_judge_vrfy(const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 250 || r->code == 251)
		probe_judge(j, PV_PROBLEM, "%d: VRFY confirms addresses, a "
		    "harvest exposure (RFC 5321 7.3; Postfix: "
		    "disable_vrfy_command = yes)", r->code);
	else if (PROBE_CLASS(r) == 2)
		probe_judge(j, PV_OK, "%d: cannot verify, will try delivery "
		    "(RFC 5321 3.5.3)", r->code);
	else
		probe_judge(j, PV_OK, "%d: VRFY refused (RFC 5321 7.3)",
		    r->code);
}

void
probe_judge_vrfy_unknown(const struct probe_reply *known,
    const struct probe_reply *unknown, struct probe_judgement *j)
{
	if (PROBE_CLASS(known) == 2 && PROBE_CLASS(unknown) != 2)
		probe_judge(j, PV_WARNING, "%d for the given address, %d for a "
		    "made-up one: VRFY tells them apart (harvest oracle, RFC "
		    "5321 7.3; Postfix: disable_vrfy_command = yes)",
		    known->code, unknown->code);
	else if (PROBE_CLASS(unknown) == 2)
		probe_judge(j, PV_OK, "%d: same answer as for the given "
		    "address", unknown->code);
	else
		probe_judge(j, PV_OK, "%d: VRFY refused (RFC 5321 7.3)",
		    unknown->code);
}

void
probe_judge_expn(const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 250 || r->code == 251)
		probe_judge(j, PV_PROBLEM, "%d: EXPN expands lists, a harvest "
		    "exposure (RFC 5321 7.3)", r->code);
	else if (PROBE_CLASS(r) == 2)
		probe_judge(j, PV_OK, "%d: no expansion given (RFC 5321 3.5.3)",
		    r->code);
	else
		probe_judge(j, PV_OK, "%d: EXPN refused (RFC 5321 7.3)",
		    r->code);
}

void
probe_judge_mail(const struct probe_reply *r, struct probe_judgement *j)
{
	if (PROBE_CLASS(r) == 2)
		probe_judge(j, PV_OK, "%d: sender accepted", r->code);
	else if (r->code == 530)
		probe_judge(j, PV_OK, "530: MAIL needs AUTH (RFC 4954 6)");
	else
		probe_judge(j, PV_WARNING, "%d: sender refused, no RCPT tested",
		    r->code);
}

void
probe_judge_rcpt(const struct probe_reply *r, struct probe_judgement *j)
{
	if (PROBE_CLASS(r) == 2)
		probe_judge(j, PV_OK, "%d: recipient accepted", r->code);
	else
		probe_judge(j, PV_WARNING, "%d: recipient %s", r->code,
		    PROBE_CLASS(r) == 4 ? "deferred" : "refused");
}

void
probe_judge_relay(const struct probe_reply *r, int authed,
    struct probe_judgement *j)
{
	if (PROBE_CLASS(r) != 2)
		probe_judge(j, PV_OK, "%d: relay to a foreign domain refused",
		    r->code);
	else if (authed)
		probe_judge(j, PV_OK, "%d: relay allowed after AUTH (RFC 6409)",
		    r->code);
	else
		probe_judge(j, PV_PROBLEM, "%d: a foreign recipient accepted "
		    "without AUTH: open relay, unless this client is trusted "
		    "(Postfix mynetworks) (RFC 5321 7.1)", r->code);
}

void
probe_judge_data(const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 354)
		probe_judge(j, PV_OK, "354: send the message "
		    "(RFC 5321 4.1.1.4)");
	else if (PROBE_CLASS(r) == 4 || PROBE_CLASS(r) == 5)
		probe_judge(j, PV_WARNING, "%d: DATA refused, no message sent "
		    "(RFC 5321 4.1.1.4)", r->code);
	else
		probe_judge(j, PV_PROBLEM, "%d to DATA, want 354, 4xx or 5xx "
		    "(RFC 5321 4.3.2)", r->code);
}

void
probe_judge_message(const struct probe_reply *r, struct probe_judgement *j)
{
	if (PROBE_CLASS(r) == 2)
		probe_judge(j, PV_OK, "%d: test message accepted "
		    "(RFC 5321 4.1.1.4)", r->code);
	else if (PROBE_CLASS(r) == 4 || PROBE_CLASS(r) == 5)
		probe_judge(j, PV_WARNING, "%d: test message %s by the "
		    "server's policy (RFC 5321 4.2.5)", r->code,
		    PROBE_CLASS(r) == 4 ? "deferred" : "refused");
	else
		probe_judge(j, PV_PROBLEM, "%d after the end of the data, want "
		    "2xx, 4xx or 5xx (RFC 5321 4.3.2)", r->code);
}

void
probe_judge_expect(const struct probe_reply *r, int want, const char *what,
    struct probe_judgement *j)
{
	if (r->code == want)
		probe_judge(j, PV_OK, "%d: %s", r->code, what);
	else
		probe_judge(j, PV_WARNING, "%d to %s, want %d (RFC 5321 4.3.2)",
		    r->code, what, want);
}

void
probe_judge_codes(const struct probe_reply *r, int enhanced,
    struct probe_judgement *j)
{
	if (j->v != PV_OK)
		return;
	if (r->enh_mismatch)
		probe_judge(j, PV_WARNING, "enhanced code %d.%d.%d does not "
		    "match %d (RFC 3463 2)", r->enh[0], r->enh[1], r->enh[2],
		    r->code);
	else if (enhanced && r->enh[0] < 0 && PROBE_CLASS(r) != 3)
		probe_judge(j, PV_WARNING, "%d without an enhanced code "
		    "although ENHANCEDSTATUSCODES was advertised (RFC 2034 3)",
		    r->code);
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
void
probe_json_str(FILE *f, const char *s)
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
void
probe_emit(struct probe *p, const char *step, const char *sent,
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
		probe_json_str(p->out, sent);
		fprintf(p->out, ", \"code\": %s, \"enhanced\": %s%s%s, "
		    "\"reply\": [", r != NULL && r->code ? code : "null",
		    r != NULL && r->enh[0] >= 0 ? "\"" : "",
		    r != NULL && r->enh[0] >= 0 ? enh : "null",
		    r != NULL && r->enh[0] >= 0 ? "\"" : "");
		for (i = 0; r != NULL && i < r->nlines; i++) {
			fputs(i ? ", " : "", p->out);
			probe_json_str(p->out, i ? r->text[i] :
			    probe_reply_text(r));
		}
		fputs("], \"info\": ", p->out);
		probe_json_str(p->out, info);
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
void
probe_emit_ioerr(struct probe *p, const char *step, const char *sent)
{
	struct probe_judgement j;

	probe_judge(&j, PV_PROBLEM, "%s", p->ioerr);
	probe_emit(p, step, sent, NULL, p->seen[0] ? p->seen : "-", &j);
	p->seen[0] = '\0';
	p->alive = 0;
}

/* A judged reply: shared code checks, and 421 closes the session. */
void
probe_emit_reply(struct probe *p, const char *step, const char *sent,
    const struct probe_reply *r, struct probe_judgement *j)
{
	if (r->code == 421) {
		probe_judge(j, PV_WARNING, "421: the server closed the session "
		    "here; later steps skipped (RFC 5321 3.8)");
		p->alive = 0;
	}
	probe_judge_codes(r, p->cur != NULL && p->cur->enhanced, j);
	probe_emit(p, step, sent, r, NULL, j);
}

/*
 * Sends wire (NULL: nothing, just read) and reads the reply into r.
 * shown is what the table prints (credentials masked). 0, or -1 after a
 * problem row (no reply, malformed, closed, unsolicited data).
 */
int
probe_exchange(struct probe *p, const char *step, const char *shown,
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
			probe_emit_ioerr(p, step, shown);
			return -1;
		}
		n = snprintf(line, sizeof(line), "%s\r\n", wire);
		if (n < 0 || (size_t)n >= sizeof(line) ||
		    probe_conn_write(p, line, (size_t)n) < 0) {
			OPENSSL_cleanse(line, sizeof(line));
			probe_emit_ioerr(p, step, shown);
			return -1;
		}
		OPENSSL_cleanse(line, sizeof(line));
	}
	if (probe_read_reply(p, r) < 0) {
		probe_emit_ioerr(p, step, shown);
		return -1;
	}
	return 0;
}

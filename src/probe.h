/*
 * probe.h - `warden probe`: an SMTP/ESMTP audit client (DESIGN.md §4a, §8).
 * The reply parser, the EHLO capability reader and the verdicts are pure
 * functions on buffers (unit tests and libFuzzer feed them bytes); only
 * probe_main does I/O. Untrusted: every byte the server sends.
 * Parser, capabilities and DATA: probe_smtp.c; verdicts: probe_out.c;
 * probe_main: probe.c (the rest of the client: probe_int.h).
 * Errors: the parser stops at the first violation with a message; nothing
 * the server sends can abort us or make a step wait past its deadline.
 */
#ifndef WARDEN_PROBE_H
#define WARDEN_PROBE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "util.h"

/* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF. */
#define PROBE_LINE_MAX	512
/* "ddd" + "-" + text + CRLF fits in PROBE_LINE_MAX. */
#define PROBE_TEXT_MAX	(PROBE_LINE_MAX - 6)
/* Lines of one reply: an EHLO reply has ~15; more is a hostile server. */
#define PROBE_LINES_MAX	100
#define PROBE_ERR_MAX	128

struct probe_reply {
	int	code;		/* 200..559 once a line is parsed, else 0 */
	int	enh[3];		/* RFC 3463 class.subject.detail, or -1 */
	int	enh_mismatch;	/* an enhanced code whose class != code / 100 */
	size_t	nlines;
	/* Each line's text after "ddd-"/"ddd ", NUL-terminated; may hold HT
	 * and bytes >= 0x80 (escape before printing), never other controls. */
	char	text[PROBE_LINES_MAX][PROBE_TEXT_MAX + 1];
	size_t	len[PROBE_LINES_MAX];
	/* parser state */
	char	line[PROBE_LINE_MAX];
	size_t	linelen;
	int	state;		/* 0 more, 1 complete, -1 error */
	char	err[PROBE_ERR_MAX];
};

void	probe_reply_init(struct probe_reply *);

/*
 * Feeds len bytes of server output. Consumes bytes up to the end of one
 * reply and stores how many in *used_out (what follows belongs to the
 * next reply). Returns 1 when the reply is complete, 0 when it needs more
 * bytes (all were consumed), -1 on a protocol violation (message in
 * r->err; later calls keep returning -1). Strict (RFC 5321 4.2): CRLF
 * line ends, code [2-5][0-5][0-9], ' ' or '-' after it, the same code on
 * every line, no control bytes but HT, at most PROBE_LINE_MAX octets a
 * line and PROBE_LINES_MAX lines.
 */
int	probe_reply_feed(struct probe_reply *, const char *buf, size_t len,
	    size_t *used_out) WARN_UNUSED;

/* The first line's text after its enhanced code, if any (borrowed). */
const char *probe_reply_text(const struct probe_reply *);

#define PROBE_KW_MAX	32	/* keywords remembered from one EHLO */
#define PROBE_KW_LEN	24
#define PROBE_MECHS_MAX	128

struct probe_caps {
	int	starttls, auth, enhanced;
	char	mechs[PROBE_MECHS_MAX];	/* AUTH parameters, upper case */
	size_t	nkw;
	char	kw[PROBE_KW_MAX][PROBE_KW_LEN];	/* keywords, upper case */
};

/* Reads the keywords of a 250 EHLO reply. Returns 0, or -1 if not 250. */
int	probe_caps_parse(const struct probe_reply *, struct probe_caps *out)
	    WARN_UNUSED;

/* 1 when mech (upper case) is among the AUTH mechanisms, else 0. */
int	probe_caps_mech(const struct probe_caps *, const char *mech);

/* "+KW ... -KW ..." (keywords gained and lost) into buf; "" if none. */
void	probe_caps_diff(const struct probe_caps *before,
	    const struct probe_caps *after, char *buf, size_t len);

enum probe_verdict {
	PV_OK,
	PV_WARNING,
	PV_PROBLEM,
	PV_COUNT
};

struct probe_judgement {
	enum probe_verdict v;
	char	why[256];
};

const char *probe_verdict_name(enum probe_verdict);

/*
 * Verdicts, each with a one-line reason naming the RFC (5321, 3463, 3207,
 * 4954, 6409, 8314). submission: the listener is a submission port (587,
 * 465 or --submission); tls: a TLS session is up; authed: AUTH succeeded.
 */
void	probe_judge_banner(const struct probe_reply *,
	    struct probe_judgement *);
void	probe_judge_ehlo(const struct probe_reply *, struct probe_judgement *);
void	probe_judge_auth_offer(const struct probe_caps *, int tls,
	    int submission, struct probe_judgement *);
void	probe_judge_no_starttls(int submission, int required,
	    struct probe_judgement *);
void	probe_judge_starttls(const struct probe_reply *, int submission,
	    int required, struct probe_judgement *);
/* version: OpenSSL's TLS1_2_VERSION etc.; bits: cipher strength. */
void	probe_judge_tls(int version, int bits, struct probe_judgement *);
void	probe_judge_caps_change(const struct probe_caps *before,
	    const struct probe_caps *after, struct probe_judgement *);
void	probe_judge_auth(const struct probe_reply *, struct probe_judgement *);
void	probe_judge_vrfy(const struct probe_reply *, struct probe_judgement *);
/* known: the reply to the address given, unknown: to a made-up one. */
void	probe_judge_vrfy_unknown(const struct probe_reply *known,
	    const struct probe_reply *unknown, struct probe_judgement *);
void	probe_judge_expn(const struct probe_reply *, struct probe_judgement *);
void	probe_judge_mail(const struct probe_reply *, struct probe_judgement *);
void	probe_judge_rcpt(const struct probe_reply *, struct probe_judgement *);
void	probe_judge_relay(const struct probe_reply *, int authed,
	    struct probe_judgement *);
/* --data: the reply to DATA (354 wanted) and the final reply. */
void	probe_judge_data(const struct probe_reply *,
	    struct probe_judgement *);
void	probe_judge_message(const struct probe_reply *,
	    struct probe_judgement *);
/* RSET, QUIT and the like: want is the expected code. */
void	probe_judge_expect(const struct probe_reply *, int want,
	    const char *what, struct probe_judgement *);
/*
 * Checks every judged reply shares: an enhanced code whose class differs
 * from the reply's (RFC 3463 2), none although ENHANCEDSTATUSCODES was
 * advertised (RFC 2034 3). Turns an ok into a warning, never lowers a verdict.
 */
void	probe_judge_codes(const struct probe_reply *, int enhanced_advertised,
	    struct probe_judgement *);

/*
 * text (lines ended by CRLF, LF or a lone CR; the last may lack one) as
 * the DATA phase sends it (RFC 5321 4.5.2, 2.3.8): CRLF line ends, a
 * leading '.' doubled, ended by CRLF "." CRLF. Returns the length written
 * to buf (not NUL-terminated), or 0 when it does not fit in len.
 */
size_t	probe_data_encode(const char *text, size_t textlen, char *buf,
	    size_t len) WARN_UNUSED;

/*
 * The --data test message (RFC 5322 3.6: Date, From, To, Subject "warden
 * probe test", Message-ID, a one-line body), encoded as above. from: the
 * envelope sender ("" for <>), rcpt: the To addresses, now: the Date (UTC),
 * tag: a token that makes the Message-ID unique, domain: its right side
 * and the From domain without a sender. Returns the length, or 0 when it
 * does not fit.
 */
size_t	probe_message(char *buf, size_t len, const char *from,
	    const char *const *rcpt, size_t nrcpt, time_t now, const char *tag,
	    const char *domain) WARN_UNUSED;

/*
 * `warden probe HOST[:PORT] [options]`. now_ms is a monotonic clock in
 * milliseconds (deadlines); wall the time of day (the test message's
 * Date header). Prints the table (or JSON) on out, usage and
 * argument errors on err. Returns the exit code: 0 no problem, 1 problems
 * found, 2 usage error, 3 host unreachable.
 */
int	probe_main(int argc, char **argv, int64_t (*now_ms)(void),
	    time_t wall, FILE *out, FILE *err);

#endif

/*
 * probe_smtp.c - the SMTP text of `warden probe`: the reply parser (RFC
 * 5321 4.2), the EHLO capabilities, the DATA encoding and the --data test
 * message (RFC 5322 3.6).
 * Owns: bytes to replies and capabilities, a message to DATA bytes. Not:
 * sockets (probe_conn.c), verdicts (probe_out.c).
 * Untrusted: every server byte. Replies are parsed strictly and bounded.
 * Threads: pure functions on the caller's buffers; no globals.
 * Errors: the parser stops at the first violation with a message in the
 * reply; nothing a server sends can abort us.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

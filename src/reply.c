/*
 * reply.c - SMTP replies with RFC 3463 enhanced codes: parse, validate
 * (lint for Postfix and Sendmail), expand %{var} templates, format.
 * Owns: reply syntax, the per-command code table, wrapping, cleaning of
 * client values, '%' escaping. Not: choosing a reply (engine.c), libmilter.
 * Threads: a parsed reply is immutable; expansion writes only to the
 * caller's buffers. Memory: struct reply owns its arrays (reply_fini);
 * expansion never allocates, as it runs per stage.
 * Errors: every parse problem goes into the caller's diag at FILE:LINE;
 * expansion never fails (values are cleaned, bounded and cut).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

#define ST(s)		STAGE_BIT(STAGE_##s)
/* Stages inside a mail transaction (from MAIL FROM on). */
#define MAIL_STAGES	(ST(ENVFROM) | ST(ENVRCPT) | ST(DATA) | ST(HEADER) | \
	ST(EOM))

#define TOKEN_SHOW_MAX	24	/* bytes of a bad token quoted in a message */

static const char *const var_names[RVAR_COUNT] = {
	"client_ip", "client_name", "helo", "sender", "rcpt", "auth_user",
	"rule", "retry_after", "queue_id",
};

/*
 * The codes RFC 5321 §4.3.2 lists for each command, plus RFC 4954 §6
 * (530 before AUTH; 534, 538 and 454 are its answers to AUTH that sites
 * commonly give at MAIL FROM when AUTH was not good enough). 421 may
 * answer any command when the service shuts down (§3.8, §4.2.2) and is
 * accepted everywhere. The header and eom stages answer the end of data
 * ("." line). Stage unknown has no list: Postfix honours any 4xx there
 * and a 5xx is an error of its own. An unlisted code is only a warning:
 * §4.2.1 lets clients act on the first digit, but some misread others.
 */
struct stage_codes {
	enum stage	stage;
	const char	*command;	/* as named in the warning */
	int		codes[14];	/* 0-terminated */
};

static const struct stage_codes stage_codes[] = {
	{ STAGE_CONNECT, "the greeting", { 554, 0 } },
	{ STAGE_HELO, "HELO/EHLO", { 550, 504, 502, 0 } },
	{ STAGE_ENVFROM, "MAIL FROM", { 451, 452, 455, 550, 552, 553, 503,
	    555, 530, 534, 538, 454, 0 } },
	{ STAGE_ENVRCPT, "RCPT TO", { 450, 451, 452, 455, 550, 551, 552,
	    553, 503, 555, 530, 0 } },
	{ STAGE_DATA, "DATA", { 450, 451, 452, 503, 550, 552, 554, 0 } },
	{ STAGE_HEADER, "end of data", { 450, 451, 452, 550, 552, 554, 0 } },
	{ STAGE_EOM, "end of data", { 450, 451, 452, 550, 552, 554, 0 } },
};

/* What the first line's code and enhanced code looked like. */
struct head {
	const char	*code;		/* token as written */
	size_t		codelen;
	const char	*xcode;
	size_t		xcodelen;
	int		code_ok;	/* code passed every check */
	int		digits3;	/* three digits, maybe out of range */
};

/* Reports problems of one reply_parse call. */
struct rep {
	const struct reply_ctx *ctx;
	struct diag	*d;
	size_t		nlines;
	size_t		errors;
};

/* Writes output lines into a reply_out, wrapping and cutting them. */
struct writer {
	struct reply_out *out;
	char		*cur;		/* the current line, or NULL */
	size_t		curlen;
	size_t		used;		/* bytes of out->buf before cur */
	char		*last;		/* the line opened last */
	int		cut;		/* something was dropped */
};

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Prints at most TOKEN_SHOW_MAX bytes of s, non-printables as '?'. */
static const char *
show(const char *s, size_t n, char *buf, size_t len)
{
	size_t i;

	if (n > TOKEN_SHOW_MAX)
		n = TOKEN_SHOW_MAX;
	if (n > len - 1)
		n = len - 1;
	for (i = 0; i < n; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[n] = '\0';
	return buf;
}

/* "reply: " or, for multi-line replies, "reply: line N: ". */
static const char *
prefix(const struct rep *rp, size_t lineno, char *buf, size_t len)
{
	if (rp->nlines > 1 && lineno > 0)
		snprintf(buf, len, "reply: line %zu: ", lineno);
	else
		snprintf(buf, len, "reply: ");
	return buf;
}

#define REP_ERR(rp, ...) do {						\
	(rp)->errors++;							\
	diag_err((rp)->d, (rp)->ctx->file, (rp)->ctx->line, __VA_ARGS__); \
} while (0)
#define REP_WARN(rp, ...)						\
	diag_warn((rp)->d, (rp)->ctx->file, (rp)->ctx->line, __VA_ARGS__)

/*
 * Parses "X.Y.Z" as Postfix dsn_valid() and libmilter accept it: one class
 * digit, then 1-3 digits twice, nothing else. Ranges are checked later.
 */
static int
xcode_split(const char *s, size_t n, int *cl, int *sub, int *det)
{
	size_t i = 0, k;
	int part[3], p;

	for (p = 0; p < 3; p++) {
		if (p > 0) {
			if (i >= n || s[i] != '.')
				return -1;
			i++;
		}
		part[p] = 0;
		/* Count every digit, accumulate only what fits the limit. */
		for (k = 0; i < n && is_digit(s[i]); k++, i++)
			if (k < 4)
				part[p] = part[p] * 10 + (s[i] - '0');
		if (k == 0 || k > (p == 0 ? 1u : 3u))
			return -1;
	}
	if (i != n)
		return -1;
	*cl = part[0];
	*sub = part[1];
	*det = part[2];
	return 0;
}

/*
 * A later line repeats the code when it starts with three digits and a
 * space or '-' (so continuation text cannot start that way; "550 b"
 * without X.Y.Z is then an error rather than text sent as "550 b").
 */
static int
has_code(const char *s)
{
	return is_digit(s[0]) && is_digit(s[1]) && is_digit(s[2]) &&
	    (s[3] == ' ' || s[3] == '-' || s[3] == '\0');
}

/*
 * Splits "CODE X.Y.Z text" into its tokens; *text_out is what follows the
 * single space after X.Y.Z (or the end of the line). "550-5.7.1 text", as
 * copied from a multi-line reply, is taken as "550 5.7.1 text": the
 * hyphens are added again when the reply is sent.
 */
static void
split_head(const char *s, struct head *h, const char **text_out)
{
	const char *p;

	h->code = s;
	if (has_code(s) && s[3] == '-')
		h->codelen = 3;
	else
		h->codelen = strcspn(s, " ");
	p = s + h->codelen;
	if (*p == '-')
		p++;
	while (*p == ' ')
		p++;
	h->xcode = p;
	h->xcodelen = strcspn(p, " ");
	p += h->xcodelen;
	if (*p == ' ')
		p++;
	*text_out = p;
}

/* Checks the first line's code and enhanced code; fills r on success. */
static void
check_head(struct rep *rp, struct head *h, struct reply *r)
{
	char tok[TOKEN_SHOW_MAX + 1];
	const char *c = h->code;
	int cl, sub, det;

	h->digits3 = h->codelen == 3 && is_digit(c[0]) && is_digit(c[1]) &&
	    is_digit(c[2]);
	h->code_ok = 0;
	if (!h->digits3)
		REP_ERR(rp, "reply: code \"%s\" is not three digits",
		    show(c, h->codelen, tok, sizeof(tok)));
	else if (c[0] != '4' && c[0] != '5')
		REP_ERR(rp, "reply: code %.3s must start with 4 or 5 "
		    "(a milter can only refuse)", c);
	else if (c[1] > '5')
		REP_ERR(rp, "reply: code %.3s: second digit must be 0-5 "
		    "(RFC 5321 4.2.1)", c);
	else
		h->code_ok = 1;
	if (h->digits3)
		r->code = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');

	if (h->xcodelen == 0) {
		REP_ERR(rp, "reply: enhanced code missing: write "
		    "\"CODE X.Y.Z text\" (RFC 3463)");
		return;
	}
	if (xcode_split(h->xcode, h->xcodelen, &cl, &sub, &det) == -1) {
		REP_ERR(rp, "reply: enhanced code \"%s\" is not X.Y.Z "
		    "(one class digit, 1-3 digits each after)",
		    show(h->xcode, h->xcodelen, tok, sizeof(tok)));
		return;
	}
	if (h->digits3 && cl != c[0] - '0')
		REP_ERR(rp, "reply: enhanced code class %d does not match "
		    "reply code %.3s", cl, c);
	/* RFC 3463 §4 defines subjects 0 to 7 only. */
	if (sub > 7)
		REP_ERR(rp, "reply: enhanced code subject %d is not 0-7", sub);
	r->xclass = cl;
	r->xsubject = sub;
	r->xdetail = det;
}

/* Rejects bytes that must not reach the wire; one entry per kind a line. */
static void
check_text(struct rep *rp, size_t lineno, const char *s)
{
	char pfx[48];
	int crlf = 0, ctl = 0, high = 0;
	unsigned char c;

	/*
	 * NUL cannot occur: the lines are C strings. CR/LF would end the
	 * reply line early and let the rest pose as a new reply; other
	 * controls and TAB are not allowed by Postfix's reply check, and
	 * SMTP replies are ASCII (RFC 5321 §4.2; RFC 6531 is not in use).
	 */
	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c == '\r' || c == '\n') && !crlf) {
			crlf = 1;
			REP_ERR(rp, "%sCR or LF in text: give a multi-line "
			    "reply as a list of lines",
			    prefix(rp, lineno, pfx, sizeof(pfx)));
		} else if ((c < 0x20 || c == 0x7f) && c != '\r' &&
		    c != '\n' && !ctl) {
			ctl = 1;
			REP_ERR(rp, "%scontrol byte 0x%02x in text",
			    prefix(rp, lineno, pfx, sizeof(pfx)), c);
		} else if (c >= 0x80 && !high) {
			high = 1;
			REP_ERR(rp, "%snon-ASCII byte 0x%02x in text",
			    prefix(rp, lineno, pfx, sizeof(pfx)), c);
		}
	}
}

static int
var_by_name(const char *s, size_t n)
{
	int i;

	for (i = 0; i < RVAR_COUNT; i++)
		if (strlen(var_names[i]) == n &&
		    memcmp(var_names[i], s, n) == 0)
			return i;
	return -1;
}

/* Appends a literal byte to the reply's buffer, merging literal pieces. */
static void
add_lit(struct reply *r, size_t *blen, char c)
{
	struct reply_piece *pc;

	pc = r->npieces > 0 ? &r->pieces[r->npieces - 1] : NULL;
	r->buf[*blen] = c;
	if (pc == NULL || pc->var != -1 ||
	    pc->text + pc->len != r->buf + *blen ||
	    r->npieces == r->line_first[r->nlines - 1]) {
		pc = &r->pieces[r->npieces++];
		pc->var = -1;
		pc->text = r->buf + *blen;
		pc->len = 0;
	}
	pc->len++;
	(*blen)++;
}

/*
 * Splits one line's text into pieces: "%%" and a '%' not before '{' are
 * a literal '%'; "%{name}" is a variable. Returns nothing: problems are
 * reported and the bad part skipped, so later ones are found too.
 */
static void
add_template(struct rep *rp, struct reply *r, size_t *blen, size_t lineno,
    const char *s)
{
	struct reply_piece *pc;
	char pfx[48], tok[TOKEN_SHOW_MAX + 1];
	const char *end;
	int v;

	while (*s != '\0') {
		if (s[0] != '%' || (s[1] != '{' && s[1] != '%')) {
			add_lit(r, blen, *s++);
			continue;
		}
		if (s[1] == '%') {
			add_lit(r, blen, '%');
			s += 2;
			continue;
		}
		end = strchr(s + 2, '}');
		if (end == NULL) {
			REP_ERR(rp, "%sunterminated %%{ in text",
			    prefix(rp, lineno, pfx, sizeof(pfx)));
			return;
		}
		v = var_by_name(s + 2, (size_t)(end - s - 2));
		if (v == -1) {
			REP_ERR(rp, "%sunknown template variable %%{%s}",
			    prefix(rp, lineno, pfx, sizeof(pfx)),
			    show(s + 2, (size_t)(end - s - 2), tok,
			    sizeof(tok)));
		} else {
			pc = &r->pieces[r->npieces++];
			pc->var = v;
			pc->text = NULL;
			pc->len = 0;
			r->vars |= 1u << v;
		}
		s = end + 1;
	}
}

/* Allocates the pieces and buffer for the given lines (upper bounds). */
static int
alloc_reply(struct reply *r, const char *const *lines, size_t n)
{
	size_t i, total = 0;

	for (i = 0; i < n; i++)
		total += strlen(lines[i]) + 1;
	/* Every piece takes at least one byte of text: total bounds both. */
	r->buf = malloc(total);
	r->pieces = calloc(total, sizeof(*r->pieces));
	r->line_first = calloc(n, sizeof(*r->line_first));
	if (r->buf == NULL || r->pieces == NULL || r->line_first == NULL)
		return -1;
	return 0;
}

/* A later line that repeats the code must repeat the first one's. */
static void
check_repeat(struct rep *rp, size_t lineno, const struct head *h,
    const char **text_out)
{
	char pfx[48], c[TOKEN_SHOW_MAX + 1], x[TOKEN_SHOW_MAX + 1];
	struct head hi;

	split_head(*text_out, &hi, text_out);
	if (hi.codelen != h->codelen ||
	    memcmp(hi.code, h->code, h->codelen) != 0 ||
	    hi.xcodelen != h->xcodelen ||
	    memcmp(hi.xcode, h->xcode, h->xcodelen) != 0)
		REP_ERR(rp, "%scode differs from the first line's \"%s %s\"",
		    prefix(rp, lineno, pfx, sizeof(pfx)),
		    show(h->code, h->codelen, c, sizeof(c)),
		    show(h->xcode, h->xcodelen, x, sizeof(x)));
}

/* Code checks against action and stage, then the linter warnings. */
static void
lint(struct rep *rp, const struct reply *r, const struct head *h)
{
	const struct reply_ctx *ctx = rp->ctx;
	const struct stage_codes *sc = NULL;
	size_t i;
	int first = r->code / 100, listed;

	/*
	 * What Postfix 3.7 does with a milter reply at connect and helo was
	 * measured (tests/mta): a 421 at connect becomes Postfix's own "421
	 * <host> Service unavailable" and a close, the text never shown;
	 * other codes give Postfix's own 554 (5xx) or 220 (4xx) greeting
	 * and the reply, text included, to MAIL FROM and later commands.
	 * At helo a 421 answers the HELO itself and closes; other codes
	 * leave HELO at 250 and apply from MAIL FROM on. Sendmail 8.17
	 * (tests/mta/sendmail.sh) does the same at helo, and at connect
	 * uses neither the code nor the text of a non-421 reply.
	 */
	if (ctx->stage == STAGE_CONNECT && r->npieces > 0 && r->code == 421)
		REP_WARN(rp, "reply: custom text at stage connect is never "
		    "shown: Postfix answers a 421 at connect with its own "
		    "\"421 <host> Service unavailable\" and closes; give "
		    "only the codes, \"421 4.7.0\"");
	else if (ctx->stage == STAGE_CONNECT && r->npieces > 0)
		REP_WARN(rp, "reply: custom text at stage connect is not in "
		    "the greeting: Postfix greets with its own %s and shows "
		    "this reply from MAIL FROM on; Sendmail does not show it",
		    first == 5 ? "554" : "220");
	else if (ctx->stage == STAGE_HELO && r->code != 421)
		REP_WARN(rp, "reply: at stage helo Postfix and Sendmail still "
		    "answer the HELO with 250 and apply this reply from MAIL "
		    "FROM on");
	if (!h->code_ok)
		return;
	if (ctx->action == ACTION_REJECT && first != 5)
		REP_ERR(rp, "reply: action reject needs a 5xx code, got %d",
		    r->code);
	else if (ctx->action == ACTION_TEMPFAIL && first != 4)
		REP_ERR(rp, "reply: action tempfail needs a 4xx code, got %d",
		    r->code);
	else if (ctx->action != ACTION_REJECT && ctx->action != ACTION_TEMPFAIL)
		REP_ERR(rp, "reply: action %s sends no reply (only reject "
		    "and tempfail do)", action_name(ctx->action));
	/*
	 * 421 needs no check of its own: it is 4xx, so only tempfail may
	 * use it, and the MTA then closes the session after sending it.
	 */
	if (ctx->stage == STAGE_UNKNOWN && first == 5)
		REP_ERR(rp, "reply: stage unknown needs a 4xx code: Postfix "
		    "answers unknown commands with its own 500 5.5.2 and "
		    "honours only 4xx from a milter");
	if (r->code == 421)
		return;
	for (i = 0; i < NELEM(stage_codes); i++)
		if (stage_codes[i].stage == ctx->stage)
			sc = &stage_codes[i];
	if (sc == NULL)
		return;
	listed = 0;
	for (i = 0; sc->codes[i] != 0; i++)
		if (sc->codes[i] == r->code)
			listed = 1;
	if (!listed)
		REP_WARN(rp, "reply: RFC 5321 does not list %d for %s (stage "
		    "%s); clients may misread it", r->code, sc->command,
		    stage_name(ctx->stage));
}

/* Each variable used must have a value at the stage. */
static void
check_vars(struct rep *rp, const struct reply *r)
{
	int v;

	if ((unsigned)rp->ctx->stage >= STAGE_COUNT)
		return;
	for (v = 0; v < RVAR_COUNT; v++)
		if ((r->vars & (1u << v)) != 0 &&
		    (reply_var_stages(v) & STAGE_BIT(rp->ctx->stage)) == 0)
			REP_ERR(rp, "reply: %%{%s} has no value at stage %s",
			    var_names[v], stage_name(rp->ctx->stage));
}

/*
 * Output writer. Every line gets REPLY_TEXT_MAX + 1 bytes at most, so
 * line i starts at or before i * (REPLY_TEXT_MAX + 1) and buf, sized
 * REPLY_OUT_MAX, always has room for the current line.
 */
static void
writer_start(struct writer *w, struct reply_out *out, int code, int cl,
    int sub, int det)
{
	memset(w, 0, sizeof(*w));
	w->out = out;
	out->code = code;
	out->nlines = 0;
	/* The modulos only bound the text; callers pass checked values. */
	snprintf(out->rcode, sizeof(out->rcode), "%03u",
	    (unsigned)code % 1000u);
	snprintf(out->xcode, sizeof(out->xcode), "%u.%u.%u",
	    (unsigned)cl % 10u, (unsigned)sub % 1000u, (unsigned)det % 1000u);
	out->buf[0] = '\0';
}

/* Ends the current line (if any) and opens the next, unless 32 are out. */
static void
writer_line(struct writer *w)
{
	if (w->cur != NULL) {
		w->cur[w->curlen] = '\0';
		w->used += w->curlen + 1;
		w->cur = NULL;
	}
	if (w->out->nlines == REPLY_LINES_MAX) {
		w->cut = 1;
		return;
	}
	w->cur = w->out->buf + w->used;
	w->last = w->cur;
	w->curlen = 0;
	w->out->line[w->out->nlines++] = w->cur;
}

/*
 * Appends n bytes; bytes other than printable ASCII become '?' so that no
 * CR, LF, NUL or 8-bit byte from a client reaches the wire. A line that
 * would pass REPLY_TEXT_MAX is broken at its last space (which is
 * dropped), or cut hard when it has none after its first byte.
 */
static void
writer_put(struct writer *w, const char *s, size_t n)
{
	size_t i, sp;
	char c;

	for (i = 0; i < n; i++) {
		if (w->cur == NULL) {
			w->cut = 1;
			return;
		}
		c = s[i];
		if ((unsigned char)c < 0x20 || (unsigned char)c > 0x7e)
			c = '?';
		if (w->curlen < REPLY_TEXT_MAX) {
			w->cur[w->curlen++] = c;
			continue;
		}
		if (w->out->nlines == REPLY_LINES_MAX) {
			w->cut = 1;
			return;
		}
		if (c == ' ') {
			writer_line(w);
			continue;
		}
		for (sp = w->curlen - 1; sp > 0 && w->cur[sp] != ' '; sp--)
			;
		if (sp == 0) {
			writer_line(w);
		} else {
			/*
			 * The tail after the space is already where the next
			 * line starts: end this line on the space, in place.
			 */
			char *tail = w->cur + sp + 1;
			size_t tlen = w->curlen - sp - 1;

			w->curlen = sp;
			writer_line(w);
			assert(w->cur == tail);
			w->curlen = tlen;
		}
		w->cur[w->curlen++] = c;
	}
}

/* Closes the last line; marks a cut with "...". Returns 1 when cut. */
static int
writer_end(struct writer *w)
{
	char *last;
	size_t n;

	if (w->cur != NULL) {
		w->cur[w->curlen] = '\0';
		w->cur = NULL;
	}
	if (!w->cut || w->last == NULL)
		return w->cut;
	last = w->last;
	n = strlen(last);
	if (n > REPLY_TEXT_MAX - 3)
		n = REPLY_TEXT_MAX - 3;
	memcpy(last + n, "...", 4);
	return 1;
}

/* Expands r into out; returns 1 when lines had to be dropped. */
static int
expand(const struct reply *r, const struct reply_vars *vars,
    struct reply_out *out)
{
	const struct reply_piece *pc;
	struct writer w;
	const char *v;
	size_t i, k, end;

	writer_start(&w, out, r->code, r->xclass, r->xsubject, r->xdetail);
	for (i = 0; i < r->nlines; i++) {
		writer_line(&w);
		end = i + 1 < r->nlines ? r->line_first[i + 1] : r->npieces;
		for (k = r->line_first[i]; k < end; k++) {
			pc = &r->pieces[k];
			if (pc->var == -1) {
				writer_put(&w, pc->text, pc->len);
				continue;
			}
			v = vars != NULL && (unsigned)pc->var < RVAR_COUNT ?
			    vars->v[pc->var] : NULL;
			if (v != NULL)
				writer_put(&w, v, strnlen(v, REPLY_VAR_MAX));
		}
	}
	if (r->nlines == 0)
		writer_line(&w);
	return writer_end(&w);
}

int
reply_parse(struct reply *r, const char *const *lines, size_t nlines,
    const struct reply_ctx *ctx, struct diag *d)
{
	struct rep rp = { ctx, d, nlines, 0 };
	struct reply_out *tmp = NULL;
	struct head h;
	size_t i, blen = 0;
	const char *text;

	memset(r, 0, sizeof(*r));
	if (lines == NULL || nlines == 0) {
		REP_ERR(&rp, "reply: no reply given");
		return -1;
	}
	for (i = 0; i < nlines; i++)
		if (lines[i] == NULL) {
			REP_ERR(&rp, "reply: line %zu is missing", i + 1);
			return -1;
		}
	/* libmilter smfi_setmlreply and Postfix milter8 take 32 lines. */
	if (nlines > REPLY_LINES_MAX)
		REP_ERR(&rp, "reply: %zu lines, at most %d", nlines,
		    REPLY_LINES_MAX);
	if (alloc_reply(r, lines, nlines) == -1) {
		REP_ERR(&rp, "reply: out of memory");
		goto out;
	}

	split_head(lines[0], &h, &text);
	check_head(&rp, &h, r);
	/* RFC 5321 §4.2 makes the text optional; only connect needs none. */
	if (*text == '\0' && ctx->stage != STAGE_CONNECT)
		REP_ERR(&rp, "reply: reply text is empty");
	for (i = 0; i < nlines; i++) {
		if (i > 0) {
			text = lines[i];
			if (has_code(text))
				check_repeat(&rp, i + 1, &h, &text);
		}
		r->line_first[i] = r->npieces;
		r->nlines = i + 1;
		check_text(&rp, i + 1, text);
		add_template(&rp, r, &blen, i + 1, text);
	}
	lint(&rp, r, &h);
	check_vars(&rp, r);

	/*
	 * Long literal text is wrapped when sent; it must fit 32 lines with
	 * every variable empty. Too many lines as written was said above.
	 */
	if (nlines <= REPLY_LINES_MAX) {
		if ((tmp = malloc(sizeof(*tmp))) == NULL) {
			REP_ERR(&rp, "reply: out of memory");
			goto out;
		}
		if (expand(r, NULL, tmp))
			REP_ERR(&rp, "reply: text needs more than %d lines "
			    "when wrapped at %d bytes", REPLY_LINES_MAX,
			    REPLY_TEXT_MAX);
	}
out:
	free(tmp);
	if (rp.errors > 0) {
		reply_fini(r);
		return -1;
	}
	return 0;
}

int
reply_tmpl_parse(struct reply *r, const char *text,
    const struct reply_ctx *ctx, struct diag *d)
{
	struct rep rp = { ctx, d, 1, 0 };
	size_t blen = 0;

	memset(r, 0, sizeof(*r));
	if (alloc_reply(r, &text, 1) == -1) {
		REP_ERR(&rp, "out of memory");
		goto out;
	}
	r->line_first[0] = 0;
	r->nlines = 1;
	check_text(&rp, 1, text);
	add_template(&rp, r, &blen, 1, text);
	check_vars(&rp, r);
out:
	if (rp.errors > 0) {
		reply_fini(r);
		return -1;
	}
	return 0;
}

void
reply_fini(struct reply *r)
{
	free(r->pieces);
	free(r->line_first);
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

int
reply_default(struct reply *r, enum action a)
{
	const char *text;
	size_t n;

	memset(r, 0, sizeof(*r));
	switch (a) {
	case ACTION_REJECT:
		text = "Message rejected by policy";
		r->code = 550;
		r->xclass = 5;
		break;
	case ACTION_TEMPFAIL:
		text = "Try again later";
		r->code = 450;
		r->xclass = 4;
		break;
	default:
		return -1;
	}
	r->xsubject = 7;
	r->xdetail = 1;
	n = strlen(text);
	r->buf = malloc(n + 1);
	r->pieces = calloc(1, sizeof(*r->pieces));
	r->line_first = calloc(1, sizeof(*r->line_first));
	if (r->buf == NULL || r->pieces == NULL || r->line_first == NULL) {
		reply_fini(r);
		return -1;
	}
	memcpy(r->buf, text, n + 1);
	r->pieces[0].var = -1;
	r->pieces[0].text = r->buf;
	r->pieces[0].len = n;
	r->npieces = 1;
	r->nlines = 1;
	return 0;
}

unsigned
reply_var_stages(enum reply_var v)
{
	switch (v) {
	case RVAR_CLIENT_IP:
	case RVAR_CLIENT_NAME:
	case RVAR_RULE:
	case RVAR_RETRY_AFTER:	/* "0" when the rule has no limit */
		return STAGES_ALL;
	case RVAR_HELO:
		/* Unknown commands may come after HELO; connect is before. */
		return STAGES_ALL & ~ST(CONNECT);
	case RVAR_SENDER:
	case RVAR_AUTH_USER:
		/* MTAs send {mail_addr} and {auth_authen} with MAIL FROM. */
		return MAIL_STAGES;
	case RVAR_RCPT:
		/* Only the recipient being refused; later stages have many. */
		return ST(ENVRCPT);
	case RVAR_QUEUE_ID:
		/*
		 * Postfix opens the queue file at MAIL FROM only with
		 * smtpd_delay_open_until_valid_rcpt = no; by default at the
		 * first valid RCPT. Before that it expands to "".
		 */
		return MAIL_STAGES;
	default:
		return 0;
	}
}

const char *
reply_var_name(enum reply_var v)
{
	return (unsigned)v < RVAR_COUNT ? var_names[v] : "?";
}

void
reply_expand(const struct reply *r, const struct reply_vars *vars,
    struct reply_out *out)
{
	(void)expand(r, vars, out);
}

void
reply_out_set(struct reply_out *out, int code, int xclass, int xsubject,
    int xdetail, const char *text)
{
	struct writer w;

	/* Callers pass constants; anything else is our bug. */
	assert(code >= 400 && code <= 599 && xclass == code / 100);
	assert(xsubject >= 0 && xsubject <= 7);
	assert(xdetail >= 0 && xdetail <= 999);
	writer_start(&w, out, code, xclass, xsubject, xdetail);
	writer_line(&w);
	if (text != NULL)
		writer_put(&w, text, strlen(text));
	(void)writer_end(&w);
}

/* Appends s to buf at *pos, cutting at len - 1; keeps buf terminated. */
static void
append(char *buf, size_t len, size_t *pos, const char *s)
{
	size_t n = strlen(s);

	if (*pos + 1 >= len)
		return;
	if (n > len - 1 - *pos)
		n = len - 1 - *pos;
	memcpy(buf + *pos, s, n);
	*pos += n;
	buf[*pos] = '\0';
}

/* "550-5.7.1 text": the hyphen on all but the last line (RFC 5321 4.2.1). */
static void
append_line(const struct reply_out *out, size_t i, char *buf, size_t len,
    size_t *pos)
{
	append(buf, len, pos, out->rcode);
	append(buf, len, pos, i + 1 < out->nlines ? "-" : " ");
	append(buf, len, pos, out->xcode);
	if (out->line[i][0] != '\0') {
		append(buf, len, pos, " ");
		append(buf, len, pos, out->line[i]);
	}
}

size_t
reply_out_format(const struct reply_out *out, const char *sep, char *buf,
    size_t len)
{
	size_t i, pos = 0;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (out->nlines == 0) {
		append(buf, len, &pos, out->rcode);
		append(buf, len, &pos, " ");
		append(buf, len, &pos, out->xcode);
		return pos;
	}
	for (i = 0; i < out->nlines; i++) {
		if (i > 0)
			append(buf, len, &pos, sep);
		append_line(out, i, buf, len, &pos);
	}
	return pos;
}

size_t
reply_out_format_log(const struct reply_out *out, char *buf, size_t len)
{
	size_t i, pos = 0;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	append(buf, len, &pos, out->rcode);
	append(buf, len, &pos, " ");
	append(buf, len, &pos, out->xcode);
	/* Empty lines add nothing, so no double spaces. */
	for (i = 0; i < out->nlines; i++) {
		if (out->line[i][0] == '\0')
			continue;
		append(buf, len, &pos, " ");
		append(buf, len, &pos, out->line[i]);
	}
	return pos;
}

/*
 * Sendmail hands the milter's reply text to a printf-like routine and
 * refuses a lone '%' (milter.c MILTER_CHECK_REPLYCODE), so every '%' is
 * doubled. A "%%" pair is never split when buf is too small.
 */
size_t
reply_milter_esc(const char *text, char *buf, size_t len)
{
	size_t pos = 0, need;

	if (len == 0)
		return 0;
	for (; *text != '\0'; text++) {
		need = *text == '%' ? 2 : 1;
		if (pos + need > len - 1)
			break;
		buf[pos++] = *text;
		if (*text == '%')
			buf[pos++] = '%';
	}
	buf[pos] = '\0';
	return pos;
}

/*
 * fuzz_template.c - libFuzzer target: %{var} template expansion with a
 * different hostile value for every variable, checked against a
 * reference expansion written here from reply.h and DESIGN.md §3.
 * Input: byte 0 picks the mode (bit 0: a tag's add_header template, as
 * reply_tmpl_parse; else a reply, as reply_parse) and the stage and
 * action; then the template (lines split at '\n') up to a NUL; then the
 * RVAR_COUNT values, NUL-separated (missing ones are NULL).
 * Oracles: lines are printable ASCII, at most REPLY_TEXT_MAX bytes, at
 * most REPLY_LINES_MAX of them; an uncut add_header expansion is the
 * reference text, its lines split at a dropped space or cut hard; the
 * wire and log formats are rebuilt from the lines; the libmilter escape
 * undoubles to the line. A broken oracle aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The oracles' own compares are no coverage of the code under test. */
#if defined(__clang__)
#define ORACLE	__attribute__((no_sanitize("coverage")))
#else
#define ORACLE
#endif

static const char *const var_names[RVAR_COUNT] = {
	[RVAR_CLIENT_IP] = "client_ip",
	[RVAR_CLIENT_NAME] = "client_name",
	[RVAR_HELO] = "helo",
	[RVAR_SENDER] = "sender",
	[RVAR_RCPT] = "rcpt",
	[RVAR_AUTH_USER] = "auth_user",
	[RVAR_RULE] = "rule",
	[RVAR_RETRY_AFTER] = "retry_after",
	[RVAR_QUEUE_ID] = "queue_id",
};

struct text {
	char	*b;
	size_t	len, cap;
};

ORACLE static void
put(struct text *t, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && t->len < t->cap; i++) {
		/* reply.h: bytes other than printable ASCII go out as '?'. */
		t->b[t->len++] = (unsigned char)s[i] < 0x20 ||
		    (unsigned char)s[i] > 0x7e ? '?' : s[i];
	}
}

/*
 * DESIGN.md §3 templates: "%%" is one '%', "%{name}" the value (cut to
 * REPLY_VAR_MAX bytes, never expanded again), any other '%' is itself.
 * Returns -1 on an unknown name (the parser must have refused it).
 */
ORACLE static int
reference(const char *s, const struct reply_vars *vars, struct text *t)
{
	const char *end, *v;
	size_t n;
	int i;

	while (*s != '\0') {
		if (s[0] == '%' && s[1] == '%') {
			put(t, "%", 1);
			s += 2;
			continue;
		}
		if (s[0] != '%' || s[1] != '{') {
			put(t, s++, 1);
			continue;
		}
		if ((end = strchr(s + 2, '}')) == NULL)
			return -1;
		n = (size_t)(end - s - 2);
		for (i = 0; i < RVAR_COUNT; i++)
			if (strlen(var_names[i]) == n &&
			    memcmp(var_names[i], s + 2, n) == 0)
				break;
		if (i == RVAR_COUNT)
			return -1;
		if ((v = vars->v[i]) != NULL)
			put(t, v, strnlen(v, REPLY_VAR_MAX));
		s = end + 1;
	}
	return 0;
}

ORACLE static int
printable(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* The expanded lines are the reference text, split at wraps. */
ORACLE static void
check_wrap(const struct reply_out *o, const struct text *ref)
{
	size_t i, n, pos = 0;

	if (o->nlines != 1 && ref->len <= REPLY_TEXT_MAX)
		abort();
	for (i = 0; i < o->nlines; i++) {
		n = strlen(o->line[i]);
		if (pos + n > ref->len || memcmp(ref->b + pos, o->line[i], n))
			abort();
		pos += n;
		/* A wrap at a space drops it; a hard cut drops nothing. */
		if (i + 1 < o->nlines && pos < ref->len && ref->b[pos] == ' ')
			pos++;
	}
	if (pos != ref->len)
		abort();
}

ORACLE static void
check_out(const struct reply_out *o)
{
	char buf[2 * REPLY_OUT_MAX], want[2 * REPLY_OUT_MAX];
	char esc[2 * REPLY_TEXT_MAX + 2];
	size_t i, j, k, n, w = 0;

	if (o->nlines > REPLY_LINES_MAX)
		abort();
	for (i = 0; i < o->nlines; i++) {
		n = strlen(o->line[i]);
		if (n > REPLY_TEXT_MAX || !printable(o->line[i], n))
			abort();
		/* libmilter: every '%' doubled, nothing else changed. */
		reply_milter_esc(o->line[i], esc, sizeof(esc));
		for (j = k = 0; esc[j] != '\0'; j++, k++) {
			if (esc[j] == '%' && esc[++j] != '%')
				abort();
			if (esc[j] != o->line[i][k])
				abort();
		}
		if (k != n)
			abort();
	}
	/* RFC 5321 §4.2.1: "CODE-X.Y.Z text" lines, the last with ' '. */
	for (i = 0; i < o->nlines; i++) {
		n = strlen(o->line[i]);
		memcpy(want + w, i > 0 ? "\r\n" : "", i > 0 ? 2 : 0);
		w += i > 0 ? 2 : 0;
		memcpy(want + w, o->rcode, strlen(o->rcode));
		w += strlen(o->rcode);
		want[w++] = i + 1 < o->nlines ? '-' : ' ';
		memcpy(want + w, o->xcode, strlen(o->xcode));
		w += strlen(o->xcode);
		if (n > 0) {
			want[w++] = ' ';
			memcpy(want + w, o->line[i], n);
			w += n;
		}
	}
	want[w] = '\0';
	if (o->nlines > 0) {
		n = reply_out_format(o, "\r\n", buf, sizeof(buf));
		if (n != w || strcmp(buf, want) != 0)
			abort();
	}
	n = reply_out_format_log(o, buf, sizeof(buf));
	if (n != strlen(buf) || !printable(buf, n))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reply_ctx ctx = { "fuzz", 1, STAGE_ENVRCPT, ACTION_REJECT };
	const char *lines[REPLY_LINES_MAX + 8];
	struct reply_vars vars;
	struct reply_out *out = NULL;
	struct text ref = { NULL, 0, 0 };
	struct reply r;
	struct diag d;
	char *buf = NULL, *p, *end;
	size_t n = 0, i;

	if (size < 1 || (buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	end = buf + size - 1;
	ctx.stage = (data[0] >> 1) % STAGE_COUNT;
	ctx.action = (data[0] >> 4) & 1 ? ACTION_TEMPFAIL : ACTION_REJECT;
	/* Values follow the template's NUL; each ends at the next NUL. */
	p = buf + strlen(buf);
	for (i = 0; i < RVAR_COUNT; i++) {
		vars.v[i] = p < end ? p + 1 : NULL;
		if (p < end)
			p += 1 + strlen(p + 1);
	}
	for (p = buf; n < NELEM(lines); ) {
		lines[n++] = p;
		if ((p = strchr(p, '\n')) == NULL)
			break;
		*p++ = '\0';
	}
	diag_init(&d);
	if ((out = malloc(sizeof(*out))) == NULL)
		goto done;
	if (data[0] & 1) {
		if (reply_tmpl_parse(&r, lines[0], &ctx, &d) != 0)
			goto done;
		reply_expand(&r, &vars, out);
		reply_fini(&r);
		check_out(out);
		ref.cap = REPLY_OUT_MAX;
		if ((ref.b = malloc(ref.cap)) == NULL)
			goto done;
		/* A template the parser took has only known names. */
		if (reference(lines[0], &vars, &ref) != 0)
			abort();
		/* Not cut at REPLY_LINES_MAX: the text is all there. */
		if (out->nlines < REPLY_LINES_MAX)
			check_wrap(out, &ref);
	} else if (reply_parse(&r, lines, n, &ctx, &d) == 0) {
		reply_expand(&r, &vars, out);
		/* The parser validated the code: it reaches the wire as is. */
		if (out->code != r.code || (int)strtol(out->rcode, NULL, 10) !=
		    r.code || out->nlines < 1)
			abort();
		reply_fini(&r);
		check_out(out);
	}
done:
	diag_fini(&d);
	free(ref.b);
	free(out);
	free(buf);
	return 0;
}

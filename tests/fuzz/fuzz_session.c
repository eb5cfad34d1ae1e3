/*
 * fuzz_session.c - libFuzzer target: untrusted SMTP client data through
 * the session setters, the engine (every condition, limit key part and
 * template variable of a fixed ruleset), tags, replies and the decision
 * log line.
 * The input is a list of records "OP LEN DATA": OP picks a setter, an
 * engine evaluation or a reset; LEN is one byte, or two (little endian)
 * when OP has its 0x80 bit, so values can pass every field's cap.
 * Oracles, worked out from session.h, log.h and DESIGN.md rather than
 * from the code: every field stays NUL-terminated within its cap; a
 * value under its cap is kept byte for byte; a long address keeps its
 * domain; log_esc output decodes back to its input; decision lines,
 * replies, tags and counter keys hold printable ASCII only. A broken
 * oracle aborts, so libFuzzer reports it as a crash.
 * Deterministic: a new memory store per input, a clock that only counts.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "declog.h"
#include "engine.h"
#include "log.h"
#include "rules.h"
#include "session.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The oracles loop over every byte of every value: without coverage
 * tracing of their own compares the target runs about twice as fast,
 * and their branches say nothing about the code under test.
 */
#if defined(__clang__)
#define ORACLE	__attribute__((no_sanitize("coverage")))
#else
#define ORACLE
#endif

/*
 * Non-terminal actions (log, tag, dry-run) first, so that one event runs
 * through most rules before a terminal verdict ends it. Every template
 * variable appears in a reply or a tag; the long tag template expands
 * past SESS_TAG_MAX when the client's values are long.
 */
static const char rules_text[] =
"rules = (\n"
" { name = \"c-log\"; stage = \"connect\"; action = \"log\";\n"
"   match = {\n"
"     client = [\"192.0.2.0/24\", \"2001:db8::/32\",\n"
"       \"::ffff:10.0.0.0/104\"];\n"
"     client_name = [\"*.example\", \"/^mx[0-9]+\\\\./\"];\n"
"     port = [25, 587]; daemon = [\"smtpd\"]; }; },\n"
" { name = \"c-tag\"; stage = \"connect\"; action = \"tag\";\n"
"   add_header = \"X-C: %{client_ip} %{client_name}\"; },\n"
" { name = \"c-limit\"; stage = \"connect\"; action = \"tempfail\";\n"
"   limit = { key = [\"client_ip\", \"client_net\"]; rate = \"5/1m\";\n"
"     ipv4_prefix = 20; ipv6_prefix = 48; };\n"
"   reply = \"421 4.7.0 %{client_ip} slow down, %{retry_after}s\"; },\n"
" { name = \"h-dry\"; stage = \"helo\"; action = \"reject\";\n"
"   mode = \"dry-run\";\n"
"   match = {\n"
"     helo = [\"localhost\", \"/^\\\\[?[0-9.]+\\\\]?$/\", \"*.invalid\"];\n"
"     any = ( { tls = true; tls_version = [\"TLSv1\", \"TLSv1.1\"]; },\n"
"             { cipher_bits_below = 128; } ); };\n"
"   reply = \"550 5.7.1 bad helo %{helo} from %{client_ip}\"; },\n"
" { name = \"h-limit\"; stage = \"helo\"; action = \"tag\";\n"
"   limit = { key = [\"helo\"]; rate = \"2/1h\"; };\n"
"   add_header = \"X-H: %{helo} %{client_name} %{client_ip}\"; },\n"
" { name = \"f-owned\"; stage = \"envfrom\"; action = \"reject\";\n"
"   mode = \"dry-run\";\n"
"   match = { auth = true; sender_owned = false; };\n"
"   owner_map = \"file:senders.map\";\n"
"   reply = [\"553-5.7.1 %{sender} is not yours, %{auth_user}\",\n"
"            \"553 5.7.1 %{queue_id} %{rule}\"]; },\n"
" { name = \"f-log\"; stage = \"envfrom\"; action = \"log\";\n"
"   match = { sender = [\"/^[^@]{64,}@/\", \"*@*.example\"];\n"
"     sender_domain = [\"example.org\", \"*.test\"];\n"
"     auth_user = [\"/./\"]; auth_mech = [\"PLAIN\", \"LOGIN\"];\n"
"     size_over = 1000; unknown_count_over = 1; }; },\n"
" { name = \"f-limit\"; stage = \"envfrom\"; action = \"tempfail\";\n"
"   limit = { key = [\"sender\", \"sender_domain\", \"auth_user\"];\n"
"     rate = \"3/1m\"; cost = 1; };\n"
"   reply = \"451 4.7.1 %{sender} as %{auth_user}: wait %{retry_after}s\";\n"
" },\n"
" { name = \"r-tag\"; stage = \"envrcpt\"; action = \"tag\";\n"
"   add_header =\n"
"     \"X-R: %{sender} %{rcpt} %{helo} %{client_name} %{auth_user}\"; },\n"
" { name = \"r-log\"; stage = \"envrcpt\"; action = \"log\";\n"
"   match = { rcpt = [\"postmaster@*\", \"/^(abuse|root)@/\"];\n"
"     rcpt_domain = [\"*.example\", \"example.com\"];\n"
"     rcpt_rejected = false; rcpt_count_over = 2; }; },\n"
" { name = \"r-bad\"; stage = \"envrcpt\"; action = \"tempfail\";\n"
"   match = { bad_rcpt_count_over = 3; };\n"
"   reply = \"421 4.7.0 %{rcpt} and others refused, bye %{helo}\"; },\n"
" { name = \"r-limit\"; stage = \"envrcpt\"; action = \"tempfail\";\n"
"   limit = { key = [\"rcpt\", \"rcpt_domain\", \"client_net\", \"helo\"];\n"
"     rate = \"4/1h\"; burst = 2; };\n"
"   reply = \"450 4.7.1 Too many for %{rcpt} from %{sender}\"; },\n"
" { name = \"d-log\"; stage = \"data\"; action = \"log\";\n"
"   match = { not = { client = [\"127.0.0.0/8\", \"::1\"]; }; }; },\n"
" { name = \"hd-q\"; stage = \"header\"; action = \"quarantine\";\n"
"   match = { header = [\"subject\", \"/^x-/\"];\n"
"     header_value = [\"*viagra*\", \"/\\\\x00|[^ -~]/\"]; }; },\n"
" { name = \"e-size\"; stage = \"eom\"; action = \"reject\";\n"
"   match = { size_over = 100000; };\n"
"   limit = { key = [\"sender\"]; rate = \"1/1d\"; cost = \"size\"; };\n"
"   reply = \"552 5.3.4 %{queue_id}: too big from %{sender}\"; },\n"
" { name = \"u-cmd\"; stage = \"unknown\"; action = \"tempfail\";\n"
"   match = { command = [\"EXPN\", \"VRFY\", \"/^X/\"];\n"
"     unknown_count_over = 1; };\n"
"   reply = \"421 4.7.0 no %{client_ip}\"; }\n"
");\n";

static const char senders_map[] =
    "# login  patterns\n"
    "alice alice@example.org @example.com\n"
    "bob /^bob\\+.*@example\\.org$/ @*.example\n";

/* The ruleset is loaded once and never changes (rules.h: immutable). */
static struct ruleset *rs;

static struct ruleset *
load_rules(void)
{
	struct rules_opts ro = { MODE_ENFORCE, ONERR_ACCEPT };
	char dir[] = "/tmp/fuzz_session.XXXXXX", path[64];
	struct ruleset *r;
	struct diag d;
	FILE *f;

	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/senders.map", dir);
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fputs(senders_map, f);
	fclose(f);
	diag_init(&d);
	r = rules_load_buf("fuzz_session.rules", dir, rules_text,
	    strlen(rules_text), &ro, &d);
	unlink(path);
	rmdir(dir);
	/* A target that fuzzes no rules would pass while testing nothing. */
	if (r == NULL) {
		diag_print(&d, stderr);
		abort();
	}
	diag_fini(&d);
	return r;
}

/* 1 when n bytes of s are all printable ASCII. */
ORACLE static int
printable(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

ORACLE static void
check_str(const char *s, size_t cap)
{
	if (strnlen(s, cap) >= cap)
		abort();
}

/*
 * A setter's oracle (session.h): NUL inside cap; input under the cap
 * without NUL bytes is kept whole, a longer one is its prefix and sets
 * the field's truncated bit.
 */
ORACLE static void
check_set(const struct sess *s, const char *field, size_t cap,
    unsigned flag, const char *v, size_t len)
{
	size_t got;

	check_str(field, cap);
	if (v == NULL) {
		if (field[0] != '\0')
			abort();
		return;
	}
	if (memchr(v, '\0', len) != NULL)
		return;
	got = strlen(field);
	if (got != (len < cap ? len : cap - 1) || memcmp(field, v, got) != 0)
		abort();
	if (len >= cap && !(s->truncated & flag))
		abort();
}

/*
 * An address (session.h, DESIGN.md §3): one pair of angle brackets goes;
 * a value too long for the field loses local-part bytes, not its domain,
 * when the domain takes at most half the field.
 */
ORACLE static void
check_addr(const struct sess *s, const char *field, size_t cap,
    unsigned flag, const char *v, size_t len)
{
	const char *at;
	size_t got, dlen;

	check_str(field, cap);
	if (v == NULL || memchr(v, '\0', len) != NULL)
		return;
	if (len >= 2 && v[0] == '<' && v[len - 1] == '>') {
		v++;
		len -= 2;
	}
	got = strlen(field);
	if (got != (len < cap ? len : cap - 1))
		abort();
	if (len < cap) {
		if (memcmp(field, v, len) != 0)
			abort();
		return;
	}
	if (!(s->truncated & flag))
		abort();
	at = memrchr(v, '@', len);
	dlen = at != NULL ? len - (size_t)(at - v) : 0;
	if (at != NULL && dlen <= cap / 2) {
		if (memcmp(field + got - dlen, at, dlen) != 0 ||
		    strlen(sess_domain(field)) != dlen - 1)
			abort();
		if (memcmp(field, v, got - dlen) != 0)
			abort();
	} else if (memcmp(field, v, got) != 0)
		abort();
}

/* A lower-case hex digit's value, or 0x100 (never a byte) for others. */
ORACLE static unsigned
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return (unsigned)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (unsigned)(c - 'a' + 10);
	return 0x100;
}

/*
 * log.h's promise, decoded independently: printable output, every
 * escape well-formed, decoding to a prefix of the input (the whole input
 * when it is at most LOG_ESC_MAX bytes and not cut with "...").
 */
ORACLE static void
check_esc(const char *v, size_t len)
{
	char esc[LOG_ESC_BUF], dec[LOG_ESC_MAX];
	size_t i, n = 0, elen;
	unsigned x;

	log_esc(v, len, esc, sizeof(esc));
	elen = strlen(esc);
	if (!printable(esc, elen))
		abort();
	if (len > LOG_ESC_MAX) {
		if (elen < 3 || memcmp(esc + elen - 3, "...", 3) != 0)
			abort();
		elen -= 3;
	}
	for (i = 0; i < elen; i++) {
		if (n >= sizeof(dec))
			abort();
		if (esc[i] == '"')
			abort();
		if (esc[i] != '\\') {
			dec[n++] = esc[i];
			continue;
		}
		if (i + 1 >= elen)
			abort();
		if (esc[i + 1] == '\\' || esc[i + 1] == '"') {
			dec[n++] = esc[++i];
			continue;
		}
		if (esc[i + 1] != 'x' || i + 3 >= elen ||
		    (x = hexval(esc[i + 2]) << 4 | hexval(esc[i + 3])) > 0xff)
			abort();
		/* Printable bytes other than \ and " are never escaped. */
		if (x >= 0x20 && x <= 0x7e && x != '\\' && x != '"')
			abort();
		dec[n++] = (char)x;
		i += 3;
	}
	if (n > len || memcmp(dec, v, n) != 0)
		abort();
	if (len <= LOG_ESC_MAX && n != len)
		abort();
}

static void
decision(void *arg, const struct engine_decision *d)
{
	char line[LOG_LINE_MAX];
	size_t n;

	(void)arg;
	declog_format(d, line, sizeof(line));
	n = strnlen(line, sizeof(line));
	if (n == sizeof(line) || !printable(line, n))
		abort();
}

ORACLE static void
check_reply(const struct reply_out *o)
{
	char buf[REPLY_OUT_MAX + 64], esc[2 * REPLY_TEXT_MAX + 2];
	size_t i, n;

	if (o->nlines > REPLY_LINES_MAX)
		abort();
	for (i = 0; i < o->nlines; i++) {
		n = strlen(o->line[i]);
		if (n > REPLY_TEXT_MAX || !printable(o->line[i], n))
			abort();
		reply_milter_esc(o->line[i], esc, sizeof(esc));
	}
	reply_out_format(o, "\r\n", buf, sizeof(buf));
	reply_out_format_log(o, buf, sizeof(buf));
	if (!printable(buf, strlen(buf)))
		abort();
}

ORACLE static void
check_after_eval(const struct sess *s, const struct engine_result *out)
{
	char key[ENGINE_KEY_MAX];
	size_t i;
	int n;

	if (out->action == ACTION_REJECT || out->action == ACTION_TEMPFAIL)
		check_reply(&out->reply);
	if (s->ntags > SESS_TAGS_MAX || s->nconn_tags > s->ntags)
		abort();
	for (i = 0; i < s->ntags; i++) {
		check_str(s->tags[i].hdr_name, sizeof(s->tags[i].hdr_name));
		check_str(s->tags[i].hdr_value, sizeof(s->tags[i].hdr_value));
		if (!printable(s->tags[i].hdr_value,
		    strlen(s->tags[i].hdr_value)))
			abort();
	}
	/* engine.h: keys are printable, bounded by ENGINE_KEY_MAX. */
	for (i = 0; i < rs->nrules; i++) {
		if (rs->rules[i]->limit == NULL)
			continue;
		n = engine_limit_key(rs->rules[i], s, key, sizeof(key));
		if (n < 0)
			continue;
		if ((size_t)n >= sizeof(key) || strlen(key) != (size_t)n ||
		    !printable(key, (size_t)n))
			abort();
	}
}

/* Splits v at the first sep: *a gets the head, *b the rest (or NULL). */
static void
split(const char *v, size_t len, char sep, size_t *alen,
    const char **b, size_t *blen)
{
	const char *p = memchr(v, sep, len);

	*alen = p != NULL ? (size_t)(p - v) : len;
	*b = p != NULL ? p + 1 : NULL;
	*blen = p != NULL ? len - *alen - 1 : 0;
}

struct fx {
	struct sess	s;
	struct engine_result out;
	struct engine_ctx ctx;
	int64_t		now;
};

static void
eval(struct fx *f, const char *v, size_t len)
{
	struct store *keep = f->ctx.store;
	enum stage st;

	st = len > 0 ? (enum stage)((unsigned char)v[0] % STAGE_COUNT) :
	    STAGE_CONNECT;
	/* Sometimes the store fails: on_error and refunds get their turn. */
	if (len > 1 && (v[1] & 1))
		f->ctx.store = f->ctx.fallback;
	/* The clock moves by 0..255 s: limits both pass and refuse. */
	f->now += (len > 2 ? (unsigned char)v[2] : 1) * 1000000000LL;
	engine_eval(&f->ctx, rs, &f->s, st, f->now, &f->out);
	f->ctx.store = keep;
	check_after_eval(&f->s, &f->out);
}

static void
op_set(struct fx *f, unsigned op, const char *v, size_t len)
{
	struct sess *s = &f->s;
	const char *b;
	size_t alen, blen;
	int null = (op & 0x40) && len == 0;

	switch ((op & 0x3f) % 16) {
	case 0:
		sess_set_client(s, null ? NULL : v, len, (unsigned)len);
		check_str(s->client_ip, sizeof(s->client_ip));
		break;
	case 1:
		sess_set_client_name(s, null ? NULL : v, len);
		check_set(s, s->client_name, sizeof(s->client_name),
		    SF_CLIENT_NAME, null ? NULL : v, len);
		break;
	case 2:
		sess_set_daemon(s, null ? NULL : v, len);
		check_set(s, s->daemon, sizeof(s->daemon), SF_DAEMON,
		    null ? NULL : v, len);
		break;
	case 3:
		sess_set_helo(s, null ? NULL : v, len);
		check_set(s, s->helo, sizeof(s->helo), SF_HELO,
		    null ? NULL : v, len);
		break;
	case 4:
		sess_set_tls(s, null ? NULL : v + (len > 0), len - (len > 0),
		    len > 0 ? (unsigned char)v[0] : 0);
		check_str(s->tls_version, sizeof(s->tls_version));
		break;
	case 5:
		split(v, len, '\0', &alen, &b, &blen);
		sess_set_auth(s, null ? NULL : v, alen, b, blen);
		check_set(s, s->auth_user, sizeof(s->auth_user), SF_AUTH_USER,
		    null ? NULL : v, alen);
		check_str(s->auth_mech, sizeof(s->auth_mech));
		break;
	case 6:
		sess_set_sender(s, null ? NULL : v, len);
		check_addr(s, s->sender, sizeof(s->sender), SF_SENDER,
		    null ? NULL : v, len);
		break;
	case 7:
		sess_set_rcpt(s, null ? NULL : v, len, op & 0x20);
		check_addr(s, s->rcpt, sizeof(s->rcpt), SF_RCPT,
		    null ? NULL : v, len);
		break;
	case 8:
		sess_set_queue_id(s, null ? NULL : v, len);
		check_str(s->queue_id, sizeof(s->queue_id));
		break;
	case 9:
		sess_set_command(s, null ? NULL : v, len);
		check_str(s->command, sizeof(s->command));
		break;
	case 10:
		split(v, len, ':', &alen, &b, &blen);
		sess_set_header(s, v, alen, b != NULL ? b : "", blen);
		check_set(s, s->hdr_name, sizeof(s->hdr_name), SF_HEADER,
		    v, alen);
		break;
	case 11:
		s->port = len > 1 ? (unsigned char)v[0] |
		    (unsigned char)v[1] << 8 : 0;
		break;
	case 12:
		s->size = (long long)len << (len > 0 ?
		    (unsigned char)v[0] % 24 : 0);
		break;
	case 13:
		sess_reset_msg(s);
		break;
	case 14:
		eval(f, v, len);
		break;
	default:
		sess_init(s);
		break;
	}
	check_esc(v, len);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	struct fx *f;
	unsigned op;
	size_t len;

	if (rs == NULL)
		rs = load_rules();
	if ((f = malloc(sizeof(*f))) == NULL)
		return 0;
	memset(&f->ctx, 0, sizeof(f->ctx));
	f->ctx.store = store_memory_new(64);
	f->ctx.fallback = store_fail_new();
	f->ctx.hooks.decision = decision;
	f->now = 1700000000LL * 1000000000LL;
	if (f->ctx.store == NULL || f->ctx.fallback == NULL)
		goto out;
	sess_init(&f->s);
	while (p < end) {
		op = (unsigned char)*p++;
		if (op & 0x80) {
			len = end - p >= 2 ? (unsigned char)p[0] |
			    (size_t)(unsigned char)p[1] << 8 : 0;
			p += end - p >= 2 ? 2 : end - p;
		} else
			len = p < end ? (unsigned char)*p++ : 0;
		if (len > (size_t)(end - p))
			len = (size_t)(end - p);
		op_set(f, op, p, len);
		p += len;
	}
out:
	store_free(f->ctx.store);
	store_free(f->ctx.fallback);
	free(f);
	return 0;
}

/*
 * test_session.c - unit tests for session.c: every setter's cap and
 * truncation bit, angle-bracket stripping and the null sender, domains,
 * verbs of unknown commands, TLS/AUTH flags, client addresses, what
 * sess_reset_msg keeps and forgets, and what struct sess_keep keeps
 * between events (the head always, the rest only while needed).
 * Expected values: the caps are the *_MAX constants of session.h (a field
 * keeps cap - 1 bytes and a NUL); everything else is worked out by hand
 * from DESIGN.md §3/§4a, never from session.c.
 * Errors: cmocka failures naming the row, "got X, want Y".
 */
#include "testutil.h"

#include <stddef.h>

#include "session.h"

#define WANT_INT(row, what, got, want) do {				\
	long long g_ = (long long)(got), w_ = (long long)(want);	\
	if (g_ != w_)							\
		fail_msg("%s: %s: got %lld, want %lld", (row), (what),	\
		    g_, w_);						\
} while (0)

#define WANT_STR(row, what, got, want) do {				\
	const char *g_ = (got), *w_ = (want);				\
	if (strcmp(g_, w_) != 0)					\
		fail_msg("%s: %s: got \"%s\", want \"%s\"", (row),	\
		    (what), g_, w_);					\
} while (0)

/* ---- setters: caps and truncation bits ---- */

static void
set_client_name(struct sess *s, const char *v, size_t n)
{
	sess_set_client_name(s, v, n);
}

static void
set_daemon(struct sess *s, const char *v, size_t n)
{
	sess_set_daemon(s, v, n);
}

static void
set_helo(struct sess *s, const char *v, size_t n)
{
	sess_set_helo(s, v, n);
}

static void
set_sender(struct sess *s, const char *v, size_t n)
{
	sess_set_sender(s, v, n);
}

static void
set_rcpt(struct sess *s, const char *v, size_t n)
{
	sess_set_rcpt(s, v, n, 0);
}

static void
set_auth_user(struct sess *s, const char *v, size_t n)
{
	sess_set_auth(s, v, n, "PLAIN", 5);
}

static void
set_auth_mech(struct sess *s, const char *v, size_t n)
{
	sess_set_auth(s, "u", 1, v, n);
}

static void
set_tls_version(struct sess *s, const char *v, size_t n)
{
	sess_set_tls(s, v, n, 256);
}

static void
set_queue_id(struct sess *s, const char *v, size_t n)
{
	sess_set_queue_id(s, v, n);
}

static void
set_command(struct sess *s, const char *v, size_t n)
{
	sess_set_command(s, v, n);
}

static void
set_hdr_name(struct sess *s, const char *v, size_t n)
{
	sess_set_header(s, v, n, "v", 1);
}

static void
set_hdr_value(struct sess *s, const char *v, size_t n)
{
	sess_set_header(s, "Subject", 7, v, n);
}

static void
set_client_text(struct sess *s, const char *v, size_t n)
{
	sess_set_client(s, v, n, 25);
}

static const struct cap_case {
	const char	*name;
	void		(*set)(struct sess *, const char *, size_t);
	size_t		off;		/* offsetof the field */
	size_t		keep;		/* bytes kept: cap - 1, by hand */
	unsigned	flag;		/* truncation bit */
} cap_cases[] = {
	{ "client_name", set_client_name, offsetof(struct sess, client_name),
	    255, SF_CLIENT_NAME },
	{ "daemon", set_daemon, offsetof(struct sess, daemon), 255,
	    SF_DAEMON },
	{ "helo", set_helo, offsetof(struct sess, helo), 255, SF_HELO },
	{ "sender", set_sender, offsetof(struct sess, sender), 2047,
	    SF_SENDER },
	{ "rcpt", set_rcpt, offsetof(struct sess, rcpt), 2047, SF_RCPT },
	{ "auth_user", set_auth_user, offsetof(struct sess, auth_user), 255,
	    SF_AUTH_USER },
	{ "auth_mech", set_auth_mech, offsetof(struct sess, auth_mech), 31,
	    SF_OTHER },
	{ "tls_version", set_tls_version, offsetof(struct sess, tls_version),
	    31, SF_OTHER },
	{ "queue_id", set_queue_id, offsetof(struct sess, queue_id), 31,
	    SF_OTHER },
	{ "command", set_command, offsetof(struct sess, command), 63,
	    SF_COMMAND },
	{ "hdr_name", set_hdr_name, offsetof(struct sess, hdr_name), 127,
	    SF_HEADER },
	{ "hdr_value", set_hdr_value, offsetof(struct sess, hdr_value), 2047,
	    SF_HEADER },
	/* not an address: kept as text (bounded) for the log */
	{ "client_ip (text)", set_client_text, offsetof(struct sess,
	    client_ip), 63, SF_OTHER },
};

static void
test_setter_caps(void **state)
{
	static char big[8192], row[96];
	struct sess s;
	const struct cap_case *c;
	const char *field;
	size_t i, len, k;

	(void)state;
	memset(big, 'x', sizeof(big));
	for (i = 0; i < NELEM(cap_cases); i++) {
		c = &cap_cases[i];
		/* exactly the cap - 1, the cap, and far past it */
		const size_t lens[] = { 0, 1, c->keep, c->keep + 1,
		    sizeof(big) };
		for (k = 0; k < NELEM(lens); k++) {
			len = lens[k];
			snprintf(row, sizeof(row), "%s len %zu", c->name, len);
			sess_init(&s);
			c->set(&s, big, len);
			field = (const char *)&s + c->off;
			WANT_INT(row, "stored length", strlen(field),
			    len > c->keep ? c->keep : len);
			if (memcmp(field, big, strlen(field)) != 0)
				fail_msg("%s: stored bytes differ", row);
			WANT_INT(row, "truncated bits", s.truncated,
			    len > c->keep ? c->flag : 0);
		}
	}
}

/* A long bracketed address: brackets come off before the cap applies. */
static void
test_sender_brackets_then_cap(void **state)
{
	static char buf[4096];
	struct sess s;

	(void)state;
	buf[0] = '<';
	memset(buf + 1, 'a', 2047);
	buf[2048] = '>';
	sess_init(&s);
	sess_set_sender(&s, buf, 2049);
	WANT_INT("<2047 a>", "sender length", strlen(s.sender), 2047);
	WANT_INT("<2047 a>", "truncated", s.truncated, 0);
	WANT_INT("<2047 a>", "sender[0]", s.sender[0], 'a');

	memset(buf + 1, 'a', 2048);
	buf[2049] = '>';
	sess_init(&s);
	sess_set_sender(&s, buf, 2050);
	WANT_INT("<2048 a>", "sender length", strlen(s.sender), 2047);
	WANT_INT("<2048 a>", "truncated", s.truncated, SF_SENDER);
	WANT_INT("<2048 a>", "sender[0]", s.sender[0], 'a');
}

/*
 * Too long: the local part is cut, "@domain" kept, so domain patterns,
 * owner maps and rcpt_domain keys see the domain the client gave (a
 * 1,000-character local part once pushed it out).
 */
static void
test_long_address_keeps_domain(void **state)
{
	static char buf[4096], want[2048];
	struct sess s;
	size_t n;

	(void)state;
	buf[0] = '<';
	memset(buf + 1, 'a', 3000);
	memcpy(buf + 3001, "@Example.ORG>", 13);
	n = 3014;
	sess_init(&s);
	sess_set_rcpt(&s, buf, n, 0);
	/* 2047 bytes: 2035 a's, then the 12 bytes of "@Example.ORG" */
	memset(want, 'a', 2035);
	memcpy(want + 2035, "@Example.ORG", 13);
	WANT_INT("long rcpt", "length", strlen(s.rcpt), 2047);
	WANT_STR("long rcpt", "value", s.rcpt, want);
	WANT_STR("long rcpt", "domain", sess_domain(s.rcpt), "Example.ORG");
	WANT_INT("long rcpt", "truncated", s.truncated, SF_RCPT);

	sess_init(&s);
	sess_set_sender(&s, buf, n);
	WANT_STR("long sender", "domain", sess_domain(s.sender),
	    "Example.ORG");
	WANT_INT("long sender", "truncated", s.truncated, SF_SENDER);

	/* A "domain" longer than half the cap is cut like any text. */
	buf[0] = 'a';
	buf[1] = '@';
	memset(buf + 2, 'd', 3000);
	sess_init(&s);
	sess_set_rcpt(&s, buf, 3002, 0);
	WANT_INT("long domain", "length", strlen(s.rcpt), 2047);
	WANT_INT("long domain", "rcpt[0]", s.rcpt[0], 'a');
	WANT_INT("long domain", "truncated", s.truncated, SF_RCPT);
}

/* ---- addresses: brackets and the null sender ---- */

static const struct addr_case {
	const char	*in;		/* NULL: cleared */
	const char	*want;
	int		has_sender;
} addr_cases[] = {
	{ "<alice@example.com>", "alice@example.com", 1 },
	{ "alice@example.com", "alice@example.com", 1 },
	{ "<>", "", 1 },		/* RFC 5321 null sender */
	{ "", "", 1 },
	{ "<a@b", "<a@b", 1 },		/* unbalanced: kept as given */
	{ "a@b>", "a@b>", 1 },
	{ "<<a@b>>", "<a@b>", 1 },	/* one pair only */
	{ "<", "<", 1 },
	{ NULL, "", 0 },
};

static void
test_addresses(void **state)
{
	const struct addr_case *c;
	struct sess s;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(addr_cases); i++) {
		c = &addr_cases[i];
		sess_init(&s);
		strcpy(s.sender, "stale@x");
		strcpy(s.rcpt, "stale@x");
		sess_set_sender(&s, c->in, c->in ? strlen(c->in) : 0);
		WANT_STR(c->in ? c->in : "(null)", "sender", s.sender,
		    c->want);
		WANT_INT(c->in ? c->in : "(null)", "has_sender", s.has_sender,
		    c->has_sender);
		sess_set_rcpt(&s, c->in, c->in ? strlen(c->in) : 0, 1);
		WANT_STR(c->in ? c->in : "(null)", "rcpt", s.rcpt, c->want);
		WANT_INT(c->in ? c->in : "(null)", "rcpt_rejected",
		    s.rcpt_rejected, 1);
	}
	sess_set_rcpt(&s, "<b@c>", 5, 7);
	WANT_INT("rejected=7", "rcpt_rejected", s.rcpt_rejected, 1);
	sess_set_rcpt(&s, "<b@c>", 5, 0);
	WANT_INT("rejected=0", "rcpt_rejected", s.rcpt_rejected, 0);
}

/* The length is honoured: bytes past len are not read. */
static void
test_counted_input(void **state)
{
	struct sess s;

	(void)state;
	sess_init(&s);
	sess_set_sender(&s, "<a@b>GARBAGE", 5);
	WANT_STR("counted sender", "sender", s.sender, "a@b");
	sess_set_helo(&s, "mx.example.comJUNK", 14);
	WANT_STR("counted helo", "helo", s.helo, "mx.example.com");
	sess_set_helo(&s, NULL, 5);
	WANT_STR("NULL helo", "helo", s.helo, "");
	sess_set_client_name(&s, "a", 1);
	sess_set_client_name(&s, NULL, 0);
	WANT_STR("NULL client_name", "client_name", s.client_name, "");
	WANT_INT("no cut", "truncated", s.truncated, 0);
}

/* ---- sess_domain ---- */

static const struct {
	const char	*addr, *want;
} dom_cases[] = {
	{ "alice@example.com", "example.com" },
	{ "a@b@c.example", "c.example" },	/* after the last '@' */
	{ "postmaster", "" },
	{ "", "" },
	{ "a@", "" },
	{ "@x.org", "x.org" },
};

static void
test_domain(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(dom_cases); i++)
		WANT_STR(dom_cases[i].addr, "sess_domain",
		    sess_domain(dom_cases[i].addr), dom_cases[i].want);
}

/* ---- unknown commands: the verb only ---- */

static const struct {
	const char	*in;
	const char	*want;
	unsigned	truncated;
} cmd_cases[] = {
	{ "EXPN root", "EXPN", 0 },		/* Sendmail: whole line */
	{ "EXPN", "EXPN", 0 },			/* Postfix: the verb */
	{ "XFOO\targ", "XFOO", 0 },
	{ "vrfy  a b", "vrfy", 0 },
	{ "", "", 0 },
	/* 70-byte verb: cut to 63 */
	{ "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	  "AAAAA x", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	  "AAAAAAAA", SF_COMMAND },
	/* a long argument does not truncate the verb */
	{ "EXPN aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "EXPN", 0 },
};

static void
test_command_verb(void **state)
{
	struct sess s;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(cmd_cases); i++) {
		sess_init(&s);
		sess_set_command(&s, cmd_cases[i].in, strlen(cmd_cases[i].in));
		WANT_STR(cmd_cases[i].in, "command", s.command,
		    cmd_cases[i].want);
		WANT_INT(cmd_cases[i].in, "truncated", s.truncated,
		    cmd_cases[i].truncated);
	}
	sess_init(&s);
	sess_set_command(&s, "EXPN root", 4);
	WANT_STR("counted", "command", s.command, "EXPN");
	sess_set_command(&s, NULL, 0);
	WANT_STR("NULL", "command", s.command, "");
}

/* ---- TLS and AUTH flags ---- */

static const struct {
	const char	*row;
	const char	*ver;
	int		bits;
	int		want_tls, want_bits;
	const char	*want_ver;
} tls_cases[] = {
	{ "TLSv1.3/256", "TLSv1.3", 256, 1, 256, "TLSv1.3" },
	{ "TLSv1.2/128", "TLSv1.2", 128, 1, 128, "TLSv1.2" },
	{ "no TLS (NULL)", NULL, 256, 0, 0, "" },
	{ "no TLS (empty)", "", 256, 0, 0, "" },
	{ "negative bits", "TLSv1.3", -5, 1, 0, "TLSv1.3" },
};

static void
test_tls(void **state)
{
	struct sess s;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(tls_cases); i++) {
		sess_init(&s);
		sess_set_tls(&s, "stale", 5, 99);
		sess_set_tls(&s, tls_cases[i].ver, tls_cases[i].ver ?
		    strlen(tls_cases[i].ver) : 0, tls_cases[i].bits);
		WANT_INT(tls_cases[i].row, "tls", s.tls, tls_cases[i].want_tls);
		WANT_INT(tls_cases[i].row, "cipher_bits", s.cipher_bits,
		    tls_cases[i].want_bits);
		WANT_STR(tls_cases[i].row, "tls_version", s.tls_version,
		    tls_cases[i].want_ver);
	}
}

static void
test_auth(void **state)
{
	struct sess s;

	(void)state;
	sess_init(&s);
	sess_set_auth(&s, "alice", 5, "PLAIN", 5);
	WANT_INT("alice", "auth", s.auth, 1);
	WANT_STR("alice", "auth_user", s.auth_user, "alice");
	WANT_STR("alice", "auth_mech", s.auth_mech, "PLAIN");
	sess_set_auth(&s, NULL, 0, NULL, 0);
	WANT_INT("NULL", "auth", s.auth, 0);
	WANT_STR("NULL", "auth_user", s.auth_user, "");
	WANT_STR("NULL", "auth_mech", s.auth_mech, "");
	sess_set_auth(&s, "", 0, "LOGIN", 5);
	WANT_INT("empty user", "auth", s.auth, 0);
}

/* ---- client address ---- */

static const struct {
	const char	*in;
	int		family;
	const char	*want_ip;	/* canonical form kept for logs/keys */
} client_cases[] = {
	{ "192.0.2.1", 4, "192.0.2.1" },
	{ "[192.0.2.1]", 4, "192.0.2.1" },
	{ "::ffff:192.0.2.1", 4, "192.0.2.1" },		/* IPv4-mapped */
	/* Sendmail's {client_addr} form for IPv6 */
	{ "IPv6:2001:DB8::1", 6, "2001:db8::1" },
	{ "2001:DB8:0:0::1", 6, "2001:db8::1" },
	{ "[2001:db8::1]", 6, "2001:db8::1" },
	{ "unknown", 0, "unknown" },
	{ "", 0, "" },
};

static void
test_client(void **state)
{
	struct sess s;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(client_cases); i++) {
		sess_init(&s);
		sess_set_client(&s, client_cases[i].in,
		    strlen(client_cases[i].in), 41233);
		WANT_INT(client_cases[i].in, "family", s.ip.family,
		    client_cases[i].family);
		WANT_STR(client_cases[i].in, "client_ip", s.client_ip,
		    client_cases[i].want_ip);
		WANT_INT(client_cases[i].in, "client_port", s.client_port,
		    41233);
	}
	sess_set_client(&s, NULL, 0, 0);
	WANT_INT("NULL", "family", s.ip.family, 0);
	WANT_STR("NULL", "client_ip", s.client_ip, "");
}

/* ---- sess_reset_msg ---- */

static void
test_reset_msg(void **state)
{
	static const struct sess zero;
	struct sess s;
	const struct rule *r = (const struct rule *)&zero;	/* a token */

	(void)state;
	/* The large tail buffers are cleared by their first byte only. */
	memset(&s, 0x5a, sizeof(s));
	sess_init(&s);
	WANT_INT("init", "memcmp zero", memcmp(&s, &zero,
	    SESS_HEAD_SIZE) != 0, 0);
	WANT_INT("init", "command", s.command[0], 0);
	WANT_INT("init", "sender", s.sender[0], 0);
	WANT_INT("init", "rcpt", s.rcpt[0], 0);
	WANT_INT("init", "hdr_name", s.hdr_name[0], 0);
	WANT_INT("init", "hdr_value", s.hdr_value[0], 0);
	sess_set_client(&s, "192.0.2.1", 9, 25);
	sess_set_client_name(&s, "mx.example.com", 14);
	sess_set_daemon(&s, "smtpd", 5);
	s.port = 587;
	sess_set_helo(&s, "mx.example.com", 14);
	sess_set_tls(&s, "TLSv1.3", 7, 256);
	sess_set_auth(&s, "alice", 5, "PLAIN", 5);
	s.unknown_count = 4;
	s.bad_rcpt_count = 5;
	sess_set_command(&s, "EXPN x", 6);
	sess_set_queue_id(&s, "4XyZ1abc", 8);
	sess_set_sender(&s, "<a@b>", 5);
	s.size = 12345;
	sess_set_rcpt(&s, "<c@d>", 5, 1);
	s.rcpt_count = 3;
	sess_set_header(&s, "Subject", 7, "hi", 2);
	s.conn_accepted = 0;
	s.msg_accepted = 1;
	s.quarantine = r;
	s.closed_by = r;
	s.closed_retry_ns = 7;
	s.ntags = 3;
	s.nconn_tags = 1;
	strcpy(s.tags[0].hdr_name, "X-Conn");
	s.tags[0].rule = r;

	sess_reset_msg(&s);

	/* transaction: gone */
	WANT_STR("reset", "queue_id", s.queue_id, "");
	WANT_INT("reset", "has_sender", s.has_sender, 0);
	WANT_STR("reset", "sender", s.sender, "");
	WANT_INT("reset", "size", s.size, 0);
	WANT_STR("reset", "rcpt", s.rcpt, "");
	WANT_INT("reset", "rcpt_rejected", s.rcpt_rejected, 0);
	WANT_INT("reset", "rcpt_count", s.rcpt_count, 0);
	WANT_STR("reset", "hdr_name", s.hdr_name, "");
	WANT_STR("reset", "hdr_value", s.hdr_value, "");
	WANT_INT("reset", "msg_accepted", s.msg_accepted, 0);
	WANT_INT("reset", "quarantine", s.quarantine != NULL, 0);
	WANT_INT("reset", "ntags (conn tags only)", s.ntags, 1);
	WANT_STR("reset", "tags[0]", s.tags[0].hdr_name, "X-Conn");
	/* connection: kept */
	WANT_STR("reset", "client_ip", s.client_ip, "192.0.2.1");
	WANT_INT("reset", "ip.family", s.ip.family, 4);
	WANT_STR("reset", "client_name", s.client_name, "mx.example.com");
	WANT_STR("reset", "daemon", s.daemon, "smtpd");
	WANT_INT("reset", "port", s.port, 587);
	WANT_STR("reset", "helo", s.helo, "mx.example.com");
	WANT_INT("reset", "tls", s.tls, 1);
	WANT_STR("reset", "tls_version", s.tls_version, "TLSv1.3");
	WANT_INT("reset", "cipher_bits", s.cipher_bits, 256);
	WANT_INT("reset", "auth", s.auth, 1);
	WANT_STR("reset", "auth_user", s.auth_user, "alice");
	WANT_INT("reset", "unknown_count", s.unknown_count, 4);
	WANT_INT("reset", "bad_rcpt_count", s.bad_rcpt_count, 5);
	WANT_INT("reset", "closed_by", s.closed_by == r, 1);
	WANT_INT("reset", "nconn_tags", s.nconn_tags, 1);
}

/* ---- sess_keep: the events of one connection, as milter.c runs them ---- */

/* One callback's stack: filled with junk, as a real stack may be. */
static struct sess *
open_junk(struct sess_keep *k, struct sess *tmp)
{
	memset(tmp, 0x5a, sizeof(*tmp));
	return sess_keep_open(k, tmp);
}

static void
test_keep(void **state)
{
	static char long_addr[SESS_ADDR_MAX + 10];
	static const struct sess zero;
	const struct rule *r = (const struct rule *)&zero;	/* a token */
	struct sess_keep k;
	struct sess tmp, *s;
	int rc;

	(void)state;
	memset(long_addr, 'a', sizeof(long_addr) - 1);
	memcpy(long_addr + sizeof(long_addr) - 1 - 12, "@b.example.ne", 12);
	long_addr[sizeof(long_addr) - 1] = '\0';
	sess_keep_init(&k);
	/* connect + helo: no transaction, nothing on the heap */
	s = open_junk(&k, &tmp);
	WANT_INT("connect", "uses the stack", s == &tmp, 1);
	WANT_INT("connect", "memcmp zero", memcmp(s, &zero,
	    SESS_HEAD_SIZE) != 0, 0);
	WANT_STR("connect", "command", s->command, "");
	WANT_STR("connect", "sender", s->sender, "");
	WANT_STR("connect", "rcpt", s->rcpt, "");
	WANT_STR("connect", "hdr_name", s->hdr_name, "");
	WANT_STR("connect", "hdr_value", s->hdr_value, "");
	sess_set_client(s, "192.0.2.1", 9, 25);
	sess_set_helo(s, "mx.example.com", 14);
	s->unknown_count = 2;
	s->closed_by = r;
	sess_set_command(s, "EXPN root", 9);
	rc = sess_keep_close(&k, s);
	WANT_INT("connect", "close", rc, 0);
	WANT_INT("connect", "heap", k.tail != NULL, 0);
	s = open_junk(&k, &tmp);
	WANT_STR("helo", "client_ip", s->client_ip, "192.0.2.1");
	WANT_STR("helo", "helo", s->helo, "mx.example.com");
	WANT_INT("helo", "unknown_count", s->unknown_count, 2);
	/* one event's command: not kept for the next */
	WANT_STR("helo", "command", s->command, "");
	WANT_INT("helo", "closed_by", s->closed_by == r, 1);
	WANT_STR("helo", "sender", s->sender, "");
	WANT_INT("helo", "ntags", s->ntags, 0);
	/* MAIL FROM: the transaction goes to the heap */
	sess_reset_msg(s);
	sess_set_sender(s, "<a@b.example>", 13);
	sess_set_header(s, "Subject", 7, "hi", 2);
	rc = sess_keep_close(&k, s);
	WANT_INT("mail", "close", rc, 0);
	WANT_INT("mail", "heap", k.tail != NULL, 1);
	/* "a@b.example", "", "Subject", "hi", each with its NUL */
	WANT_INT("mail", "packed size", k.tailcap, 12 + 1 + 8 + 3);
	s = open_junk(&k, &tmp);
	WANT_INT("rcpt", "uses the stack", s == &tmp, 1);
	WANT_STR("rcpt", "sender", s->sender, "a@b.example");
	WANT_STR("rcpt", "hdr_value", s->hdr_value, "hi");
	WANT_STR("rcpt", "helo", s->helo, "mx.example.com");
	sess_set_rcpt(s, "<c@d.example>", 13, 0);
	s->ntags = 1;
	s->tags[0].rule = r;
	strcpy(s->tags[0].hdr_name, "X-Tag");
	strcpy(s->tags[0].hdr_value, "v");
	rc = sess_keep_close(&k, s);
	WANT_INT("rcpt", "close", rc, 0);
	s = open_junk(&k, &tmp);
	WANT_STR("eom", "rcpt", s->rcpt, "c@d.example");
	WANT_STR("eom", "tag", s->tags[0].hdr_name, "X-Tag");
	/* eom: the transaction is over, the heap part goes */
	sess_reset_msg(s);
	rc = sess_keep_close(&k, s);
	WANT_INT("after eom", "close", rc, 0);
	WANT_INT("after eom", "heap", k.tail != NULL, 0);
	s = open_junk(&k, &tmp);
	WANT_INT("after eom", "uses the stack", s == &tmp, 1);
	WANT_STR("after eom", "sender", s->sender, "");
	WANT_INT("after eom", "has_sender", s->has_sender, 0);
	WANT_INT("after eom", "ntags", s->ntags, 0);
	WANT_STR("after eom", "helo", s->helo, "mx.example.com");
	/* a tag flagged at connect: kept for every message, from the stack */
	s->ntags = s->nconn_tags = 1;
	s->tags[0].rule = r;
	strcpy(s->tags[0].hdr_name, "X-Conn");
	strcpy(s->tags[0].hdr_value, "192.0.2.1");
	rc = sess_keep_close(&k, s);
	WANT_INT("conn tag", "close", rc, 0);
	WANT_INT("conn tag", "heap", k.tail != NULL, 1);
	s = open_junk(&k, &tmp);
	WANT_INT("conn tag", "ntags", s->ntags, 1);
	WANT_INT("conn tag", "tag rule", s->tags[0].rule == r, 1);
	WANT_STR("conn tag", "tag name", s->tags[0].hdr_name, "X-Conn");
	WANT_STR("conn tag", "tag value", s->tags[0].hdr_value, "192.0.2.1");
	WANT_STR("conn tag", "sender", s->sender, "");
	sess_reset_msg(s);
	rc = sess_keep_close(&k, s);
	WANT_INT("conn tag after reset", "heap", k.tail != NULL, 1);
	/* values at their caps come back whole */
	s = open_junk(&k, &tmp);
	WANT_INT("caps", "ntags", s->ntags, 1);
	sess_set_sender(s, long_addr, sizeof(long_addr) - 1);
	memset(s->tags[0].hdr_value, 'v', SESS_TAG_MAX - 1);
	s->tags[0].hdr_value[SESS_TAG_MAX - 1] = '\0';
	rc = sess_keep_close(&k, s);
	WANT_INT("caps", "close", rc, 0);
	s = open_junk(&k, &tmp);
	WANT_INT("caps", "sender length", strlen(s->sender), SESS_ADDR_MAX - 1);
	WANT_INT("caps", "tag value length", strlen(s->tags[0].hdr_value),
	    SESS_TAG_MAX - 1);
	WANT_STR("caps", "tag name", s->tags[0].hdr_name, "X-Conn");
	WANT_STR("caps", "helo", s->helo, "mx.example.com");
	rc = sess_keep_close(&k, s);
	WANT_INT("caps", "close again", rc, 0);
	/* close: nothing left (ASan's leak check sees the rest) */
	sess_keep_fini(&k);
	WANT_INT("fini", "heap", k.tail != NULL, 0);
	sess_keep_fini(&k);
}

/* ---- out of memory mid-transaction: the transaction is lost ---- */

static void *
no_memory(void *p, size_t n)
{
	(void)p;
	(void)n;
	return NULL;
}

/* The stages of one SMTP transaction after MAIL, and outside it. */
static const struct {
	enum stage	st;
	int		lost;
} lost_rows[] = {
	{ STAGE_CONNECT, 0 }, { STAGE_HELO, 0 }, { STAGE_ENVFROM, 0 },
	{ STAGE_ENVRCPT, 1 }, { STAGE_DATA, 1 }, { STAGE_HEADER, 1 },
	{ STAGE_EOM, 1 }, { STAGE_UNKNOWN, 0 },
};

static void
want_lost(const char *row, const struct sess *s, int lost)
{
	char what[64];
	size_t i;

	for (i = 0; i < sizeof(lost_rows) / sizeof(lost_rows[0]); i++) {
		snprintf(what, sizeof(what), "sess_lost(%s)",
		    stage_name(lost_rows[i].st));
		WANT_INT(row, what, sess_lost(s, lost_rows[i].st),
		    lost && lost_rows[i].lost);
	}
}

static void
test_keep_oom(void **state)
{
	struct sess_keep k;
	struct sess tmp, *s;
	int rc;

	(void)state;
	sess_keep_init(&k);
	s = open_junk(&k, &tmp);
	sess_set_client(s, "192.0.2.1", 9, 25);
	sess_set_helo(s, "mx.example.com", 14);
	rc = sess_keep_close(&k, s);
	WANT_INT("helo", "close", rc, 0);
	/* MAIL FROM: the transaction's strings cannot be kept */
	s = open_junk(&k, &tmp);
	sess_reset_msg(s);
	sess_set_sender(s, "<a@b.example>", 13);
	want_lost("mail, before close", s, 0);
	k.grow = no_memory;
	rc = sess_keep_close(&k, s);
	WANT_INT("mail", "close", rc, -1);
	WANT_INT("mail", "heap", k.tail != NULL, 0);
	k.grow = realloc;
	/* RCPT, DATA, ...: no sender to judge by, so every one is lost */
	s = open_junk(&k, &tmp);
	WANT_INT("rcpt", "has_sender", s->has_sender, 0);
	WANT_STR("rcpt", "helo", s->helo, "mx.example.com");
	want_lost("rcpt", s, 1);
	sess_set_rcpt(s, "<c@d.example>", 13, 0);
	rc = sess_keep_close(&k, s);
	WANT_INT("rcpt", "close", rc, 0);
	s = open_junk(&k, &tmp);
	want_lost("data", s, 1);
	rc = sess_keep_close(&k, s);
	WANT_INT("data", "close", rc, 0);
	/* abort (or eom) ends it; the next MAIL is judged again */
	s = open_junk(&k, &tmp);
	want_lost("abort, before reset", s, 1);
	sess_reset_msg(s);
	want_lost("abort", s, 0);
	rc = sess_keep_close(&k, s);
	WANT_INT("abort", "close", rc, 0);
	s = open_junk(&k, &tmp);
	want_lost("after abort", s, 0);
	sess_reset_msg(s);
	sess_set_sender(s, "<a@b.example>", 13);
	rc = sess_keep_close(&k, s);
	WANT_INT("mail again", "close", rc, 0);
	s = open_junk(&k, &tmp);
	WANT_STR("rcpt again", "sender", s->sender, "a@b.example");
	want_lost("rcpt again", s, 0);
	/* a tail already big enough needs no memory: nothing is lost */
	k.grow = no_memory;
	rc = sess_keep_close(&k, s);
	WANT_INT("rcpt again, no memory needed", "close", rc, 0);
	s = open_junk(&k, &tmp);
	want_lost("data again", s, 0);
	/* a longer value needs more: lost again, the heap part freed */
	sess_set_rcpt(s, "<a-much-longer-recipient@d.example>", 35, 0);
	rc = sess_keep_close(&k, s);
	WANT_INT("rcpt grows", "close", rc, -1);
	WANT_INT("rcpt grows", "heap", k.tail != NULL, 0);
	s = open_junk(&k, &tmp);
	want_lost("after rcpt grows", s, 1);
	WANT_STR("after rcpt grows", "sender", s->sender, "");
	/* a new connection (XCLIENT) starts clean */
	sess_keep_fini(&k);
	sess_keep_init(&k);
	s = open_junk(&k, &tmp);
	want_lost("new connection", s, 0);
	sess_keep_fini(&k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setter_caps),
		cmocka_unit_test(test_sender_brackets_then_cap),
		cmocka_unit_test(test_long_address_keeps_domain),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_counted_input),
		cmocka_unit_test(test_domain),
		cmocka_unit_test(test_command_verb),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_client),
		cmocka_unit_test(test_reset_msg),
		cmocka_unit_test(test_keep),
		cmocka_unit_test(test_keep_oom),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

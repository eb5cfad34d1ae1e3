/*
 * probe.c - `warden probe`: audit a live MTA from outside (DESIGN.md §4a,
 * §8): banner, EHLO, STARTTLS (OpenSSL), AUTH before/after TLS, VRFY,
 * EXPN, a test MAIL/RCPT ended by RSET (with --data: DATA and a test
 * message instead), QUIT; one verdict per step with the exact reply.
 * Owns: the options, the steps and their order. Not: policy (engine.c);
 * reply parsing (probe_smtp.c), socket and TLS I/O (probe_conn.c),
 * verdicts and output (probe_out.c).
 * Untrusted: every server byte. Replies are parsed strictly and bounded,
 * printed escaped; each step has a deadline (--timeout), the step count
 * is bounded, so the whole run is. Credentials are never sent in clear
 * nor printed. The clock comes from main.c (CONVENTIONS.md §8).
 * Threads: one command, one thread; no globals (SIGPIPE is ignored for
 * the process, as a client that writes to sockets must).
 * Memory: probe_main frees all it allocates; credentials are wiped.
 */
#include <netdb.h>
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

#include "probe_int.h"

/* --- options ------------------------------------------------------------- */

#define PROBE_TIMEOUT_DEF	10	/* seconds per step */
#define PROBE_TIMEOUT_MAX	300	/* RFC 5321 4.5.3.2's longest */
#define PROBE_ARG_MAX		254	/* an address (RFC 5321 4.5.3.1.3) */
/* RFC 2606: .example is never delegated, so this is foreign everywhere. */
#define PROBE_RELAY_RCPT	"relay-test@warden-probe.example"
#define PROBE_PASS_ENV		"WARDEN_PROBE_PASSWORD"

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
	if (probe_conn_open(p, why, sizeof(why)) < 0) {
		probe_judge(&j, PV_PROBLEM, "host unreachable: %s", why);
		probe_emit(p, "connect", NULL, NULL, "-", &j);
		return -1;
	}
	p->reached = p->alive = 1;
	snprintf(why, sizeof(why), "%s port %s", p->addr, p->o->port);
	probe_judge(&j, PV_OK, "TCP connection in %lld ms",
	    (long long)(p->now_ms() - t0));
	probe_emit(p, "connect", NULL, NULL, why, &j);
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
		probe_judge(&j, PV_PROBLEM, "the server sent no certificate");
		probe_emit(p, "certificate", NULL, NULL, "-", &j);
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
		probe_judge(&j, PV_WARNING, "expired %d days ago%s%s", -days,
		    *errs ? ": " : "", errs);
	else if (p->nverr > 0)
		probe_judge(&j, PV_WARNING, "not verified (%s): opportunistic "
		    "TLS between MTAs takes it (RFC 7435), clients that verify "
		    "refuse it", errs);
	else
		probe_judge(&j, PV_OK, "verified against %s, name matches, "
		    "%d days left", p->o->cafile ? "--cafile" :
		    "the system CA store", days);
	X509_free(c);
	probe_emit(p, "certificate", NULL, NULL, info, &j);
}

/* The handshake and its two rows; -1 ends the session. */
static int
step_tls(struct probe *p)
{
	struct probe_judgement j;
	char info[200];

	p->deadline = p->now_ms() + (int64_t)p->o->timeout_s * 1000;
	if (probe_tls_handshake(p) < 0) {
		probe_emit_ioerr(p, "tls", NULL);
		return -1;
	}
	snprintf(info, sizeof(info), "%s %s %d bits", SSL_get_version(p->ssl),
	    SSL_get_cipher_name(p->ssl), SSL_get_cipher_bits(p->ssl, NULL));
	probe_judge_tls(SSL_version(p->ssl), SSL_get_cipher_bits(p->ssl,
	    NULL), &j);
	probe_emit(p, "tls", NULL, NULL, info, &j);
	step_cert(p);
	return 0;
}

static int
step_ehlo(struct probe *p, const char *step, struct probe_caps *caps)
{
	struct probe_judgement j;
	char cmd[320];

	snprintf(cmd, sizeof(cmd), "EHLO %s", p->helo);
	if (probe_exchange(p, step, cmd, cmd, p->r) < 0)
		return -1;
	probe_judge_ehlo(p->r, &j);
	probe_emit(p, step, cmd, p->r, NULL, &j);
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
	probe_emit(p, "auth-before-tls", NULL, NULL, p->caps.auth ?
	    "AUTH offered" : "no AUTH", &j);
	if (!p->caps.starttls) {
		probe_judge_no_starttls(sub, req, &j);
		probe_emit(p, "starttls", NULL, NULL, "not offered", &j);
		return 0;
	}
	if (probe_exchange(p, "starttls", "STARTTLS", "STARTTLS", p->r) < 0)
		return -1;
	probe_judge_starttls(p->r, sub, req, &j);
	if (p->r->code == 220 && p->off < p->len) {
		/* CVE-2011-0411 class: plaintext that would pass as TLS's */
		probe_judge(&j, PV_PROBLEM, "%zu bytes after the 220, before "
		    "TLS: response injection (RFC 3207 5)", p->len - p->off);
		p->alive = 0;
	}
	probe_emit_reply(p, "starttls", "STARTTLS", p->r, &j);
	if (p->r->code != 220 || !p->alive)
		return p->alive ? 0 : -1;
	if (step_tls(p) < 0)
		return -1;
	/* RFC 3207 4.2: forget what was learned in clear, ask again. */
	if (step_ehlo(p, "ehlo-tls", &p->caps_tls) < 0)
		return -1;
	probe_judge_caps_change(&p->caps, &p->caps_tls, &j);
	probe_emit(p, "caps-change", NULL, NULL, "-", &j);
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
		probe_judge(&j, PV_PROBLEM, "not sent: no TLS session, and "
		    "warden probe never sends credentials in clear "
		    "(RFC 4954 4)");
		probe_emit(p, "auth", NULL, NULL, "-", &j);
		return;
	}
	mech = probe_caps_mech(p->cur, "PLAIN") ? "PLAIN" :
	    probe_caps_mech(p->cur, "LOGIN") ? "LOGIN" : NULL;
	if (mech == NULL) {
		probe_judge(&j, PV_PROBLEM, "no AUTH PLAIN or LOGIN offered");
		probe_emit(p, "auth", NULL, NULL, p->cur->auth ?
		    "AUTH offered" : "no AUTH", &j);
		return;
	}
	if (*mech == 'P') {	/* RFC 4616: authzid NUL authcid NUL passwd */
		raw[0] = '\0';
		memcpy(raw + 1, p->o->user, ul + 1);
		memcpy(raw + ul + 2, p->o->pass, pl);
		EVP_EncodeBlock((unsigned char *)b64, raw, (int)(ul + pl + 2));
		snprintf(wire, sizeof(wire), "AUTH PLAIN %s", b64);
		if (probe_exchange(p, "auth", "AUTH PLAIN ****", wire,
		    p->r) < 0)
			goto out;
	} else {
		if (probe_exchange(p, "auth", "AUTH LOGIN ****", "AUTH LOGIN",
		    p->r) < 0 || p->r->code != 334)
			goto judged;
		EVP_EncodeBlock((unsigned char *)b64,
		    (const unsigned char *)p->o->user, (int)ul);
		if (probe_exchange(p, "auth", "AUTH LOGIN ****", b64,
		    p->r) < 0 || p->r->code != 334)
			goto judged;
		EVP_EncodeBlock((unsigned char *)b64,
		    (const unsigned char *)p->o->pass, (int)pl);
		if (probe_exchange(p, "auth", "AUTH LOGIN ****", b64, p->r) < 0)
			goto out;
	}
judged:
	if (!p->alive)
		goto out;
	if (p->r->code == 334)	/* a challenge we will not answer: hang up */
		p->alive = 0;
	probe_judge_auth(p->r, &j);
	p->authed = p->r->code == 235;
	probe_emit_reply(p, "auth", *mech == 'P' ? "AUTH PLAIN ****" :
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
	if (probe_exchange(p, "vrfy", cmd, cmd, p->r) < 0)
		return;
	probe_judge_vrfy(p->r, &j);
	probe_emit_reply(p, "vrfy", cmd, p->r, &j);
	if (!p->alive)
		return;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		ERR_clear_error();	/* a fixed name does as well */
	snprintf(cmd2, sizeof(cmd2), "VRFY warden-probe-%02x%02x%02x%02x%s",
	    rnd[0], rnd[1], rnd[2], rnd[3], at ? at : "");
	if (probe_exchange(p, "vrfy-unknown", cmd2, cmd2, p->r2) < 0)
		return;
	probe_judge_vrfy_unknown(p->r, p->r2, &j);
	probe_emit_reply(p, "vrfy-unknown", cmd2, p->r2, &j);
	if (!p->alive)
		return;
	snprintf(cmd, sizeof(cmd), "EXPN %s", known);
	if (probe_exchange(p, "expn", cmd, cmd, p->r) < 0)
		return;
	probe_judge_expn(p->r, &j);
	probe_emit_reply(p, "expn", cmd, p->r, &j);
}

/* MAIL FROM into p->r: 0, or -1 when the session is over. */
static int
env_mail(struct probe *p, const char *step)
{
	struct probe_judgement j;
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>", p->o->from);
	if (probe_exchange(p, step, cmd, cmd, p->r) < 0)
		return -1;
	probe_judge_mail(p->r, &j);
	probe_emit_reply(p, step, cmd, p->r, &j);
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

	if (probe_exchange(p, "data", "DATA", "DATA", p->r2) < 0)
		return -1;
	probe_judge_data(p->r2, &j);
	if (p->r2->code == 354 && p->off < p->len) {
		/* RFC 5321 4.3.1: nothing until the end of the data */
		probe_judge(&j, PV_PROBLEM, "%zu bytes after the 354, before "
		    "the message (RFC 5321 4.3.1)", p->len - p->off);
		p->alive = 0;
	}
	probe_emit_reply(p, "data", "DATA", p->r2, &j);
	if (!p->alive || p->r2->code != 354)
		return p->alive && (PROBE_CLASS(p->r2) == 4 ||
		    PROBE_CLASS(p->r2) == 5) ? 0 : -1;
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
		probe_emit_ioerr(p, "message", shown);
		return -1;
	}
	if (probe_conn_write(p, msg, n) < 0 || probe_read_reply(p, p->r2) < 0) {
		probe_emit_ioerr(p, "message", shown);
		return -1;
	}
	probe_judge_message(p->r2, &j);
	probe_emit_reply(p, "message", shown, p->r2, &j);
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
	for (i = 0; PROBE_CLASS(p->r) == 2 && i < p->o->nrcpt; i++) {
		snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", p->o->rcpt[i]);
		if (probe_exchange(p, "rcpt", cmd, cmd, p->r2) < 0)
			return;
		probe_judge_rcpt(p->r2, &j);
		probe_emit_reply(p, "rcpt", cmd, p->r2, &j);
		if (!p->alive)
			return;
		accepted += PROBE_CLASS(p->r2) == 2;
	}
	if (p->o->data && PROBE_CLASS(p->r) == 2) {
		if (accepted == 0) {
			probe_judge(&j, PV_WARNING, "not sent: no --rcpt "
			    "accepted");
			probe_emit(p, "data", NULL, NULL, "-", &j);
		} else if ((rc = step_data(p)) < 0)
			return;
		else if (rc == 1 && env_mail(p, "relay-mail") < 0)
			return;
	}
	if (PROBE_CLASS(p->r) == 2) {
		snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>", PROBE_RELAY_RCPT);
		if (probe_exchange(p, "relay", cmd, cmd, p->r2) < 0)
			return;
		probe_judge_relay(p->r2, p->authed, &j);
		probe_emit_reply(p, "relay", cmd, p->r2, &j);
	}
	if (!p->alive || probe_exchange(p, "rset", "RSET", "RSET", p->r) < 0)
		return;
	probe_judge_expect(p->r, 250, "transaction reset", &j);
	probe_emit_reply(p, "rset", "RSET", p->r, &j);
}

static void
probe_session(struct probe *p)
{
	struct probe_judgement j;

	if (step_connect(p) < 0)
		return;
	if (p->o->implicit_tls && step_tls(p) < 0)
		return;
	if (probe_exchange(p, "banner", NULL, NULL, p->r) < 0)
		return;
	probe_judge_banner(p->r, &j);
	probe_emit(p, "banner", NULL, p->r, NULL, &j);
	if (p->r->code != 220)
		return;
	if (step_ehlo(p, "ehlo", &p->caps) < 0 || !p->alive)
		goto quit;
	if (!p->tls && step_starttls(p) < 0)
		return;
	if (p->tls) {
		probe_judge_auth_offer(p->cur, 1, p->o->submission, &j);
		probe_emit(p, "auth-offer", NULL, NULL, p->cur->auth ?
		    "AUTH offered" : "no AUTH", &j);
	}
	if (p->o->have_auth)
		step_auth(p);
	if (p->alive)
		step_harvest(p);
	if (p->alive)
		step_envelope(p);
quit:
	if (p->alive && probe_exchange(p, "quit", "QUIT", "QUIT", p->r) == 0) {
		probe_judge_expect(p->r, 221, "closing", &j);
		probe_emit_reply(p, "quit", "QUIT", p->r, &j);
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
		probe_json_str(out, o.host);
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
	probe_conn_close(&p);
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

/*
 * miltergen.c - a milter-protocol load generator: it plays the MTA side
 * of milter protocol version 6 the way Postfix 3.7's milter8.c does, so
 * a milter's own capacity can be measured without an MTA in the way
 * (issues #7, #8, #4).
 * Owns: the client side of the protocol (OPTNEG with actions and steps,
 * SMFIC_MACRO before each stage with Postfix's default macros or the
 * milter's SMFIR_SETSYMLIST choice, CONNECT..EOM, ABORT, QUIT), one epoll
 * loop over N connections, latency per stage and reply counts.
 * Honours what the milter negotiated: SMFIP_NO* commands are not sent
 * (their macros are, as Postfix does), SMFIP_NR_* replies not awaited.
 * Every length from the wire is bounds-checked; a malformed reply closes
 * that session and counts as a protocol error, never aborts the run.
 * Not linked with libmilter or libwarden. Threads: one.
 * Exit: 0 ran without errors, 1 some session failed, 2 usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Protocol constants (libmilter's mfdef.h; not included on purpose). */
#define P_NOCONNECT	0x00000001UL
#define P_NOHELO	0x00000002UL
#define P_NOMAIL	0x00000004UL
#define P_NORCPT	0x00000008UL
#define P_NOBODY	0x00000010UL
#define P_NOHDRS	0x00000020UL
#define P_NOEOH		0x00000040UL
#define P_NR_HDR	0x00000080UL
#define P_NOUNKNOWN	0x00000100UL
#define P_NODATA	0x00000200UL
#define P_SKIP		0x00000400UL
#define P_RCPT_REJ	0x00000800UL
#define P_NR_CONN	0x00001000UL
#define P_NR_HELO	0x00002000UL
#define P_NR_MAIL	0x00004000UL
#define P_NR_RCPT	0x00008000UL
#define P_NR_DATA	0x00010000UL
#define P_NR_UNKN	0x00020000UL
#define P_NR_EOH	0x00040000UL
#define P_NR_BODY	0x00080000UL
#define P_HDR_LEADSPC	0x00100000UL
/* What Postfix 3.7 offers: every step above (milter8.c). */
#define MTA_PROTO	0x001fffffUL
/* ADDHDRS CHGBODY ADDRCPT DELRCPT CHGHDRS QUARANTINE CHGFROM
 * ADDRCPT_PAR SETSYMLIST */
#define MTA_ACTIONS	0x000001ffUL
#define MILTER_VERSION	6

/*
 * A reply longer than this is a protocol error: libmilter's largest
 * (SMFIP_MDS_1M) body replacement chunk, with room for the header.
 */
#define PKT_MAX		(1024 * 1024 + 64)
#define OUT_MAX		8192	/* one batch of commands */
#define NAME_MAX_	64

enum stage {
	ST_CONNECT, ST_HELO, ST_MAIL, ST_RCPT, ST_DATA, ST_HEADER, ST_EOH,
	ST_BODY, ST_EOM, ST_COUNT
};
static const char *const stage_name[ST_COUNT] = {
	"connect", "helo", "mail", "rcpt", "data", "header", "eoh", "body",
	"eom"
};
static const char stage_cmd[ST_COUNT] = {
	'C', 'H', 'M', 'R', 'T', 'L', 'N', 'B', 'E'
};
static const unsigned long stage_no[ST_COUNT] = {
	P_NOCONNECT, P_NOHELO, P_NOMAIL, P_NORCPT, P_NODATA, P_NOHDRS,
	P_NOEOH, P_NOBODY, 0
};
static const unsigned long stage_nr[ST_COUNT] = {
	P_NR_CONN, P_NR_HELO, P_NR_MAIL, P_NR_RCPT, P_NR_DATA, P_NR_HDR,
	P_NR_EOH, P_NR_BODY, 0
};
/* SMFIM_* macro list index of a stage; -1: Postfix sends none. */
static const int stage_ms[ST_COUNT] = { 0, 1, 2, 3, 4, -1, 6, -1, 5 };
#define MS_COUNT	7

/* The macros we can provide; values come from macro_value(). */
enum mac {
	M_J, M_UNDERSCORE, M_V, M_DAEMON_NAME, M_DAEMON_ADDR, M_DAEMON_PORT,
	M_CLIENT_ADDR, M_CLIENT_PORT, M_CLIENT_NAME, M_IF_ADDR,
	M_TLS_VERSION, M_CIPHER, M_CIPHER_BITS, M_I, M_AUTH_TYPE,
	M_AUTH_AUTHEN, M_MAIL_ADDR, M_MAIL_HOST, M_MAIL_MAILER, M_RCPT_ADDR,
	M_RCPT_HOST, M_RCPT_MAILER, M_COUNT
};
static const char *const mac_name[M_COUNT] = {
	"j", "_", "v", "daemon_name", "daemon_addr", "daemon_port",
	"client_addr", "client_port", "client_name", "if_addr",
	"tls_version", "cipher", "cipher_bits", "i", "auth_type",
	"auth_authen", "mail_addr", "mail_host", "mail_mailer", "rcpt_addr",
	"rcpt_host", "rcpt_mailer"
};
#define MB(m)	(1UL << (m))
/* Postfix 3.7's milter_*_macros defaults, per SMFIM_* index. */
static const unsigned long ms_default[MS_COUNT] = {
	MB(M_J) | MB(M_UNDERSCORE) | MB(M_V) | MB(M_DAEMON_NAME) |
	    MB(M_DAEMON_ADDR) | MB(M_DAEMON_PORT) | MB(M_CLIENT_ADDR) |
	    MB(M_CLIENT_PORT) | MB(M_CLIENT_NAME) | MB(M_IF_ADDR),
	MB(M_TLS_VERSION) | MB(M_CIPHER) | MB(M_CIPHER_BITS),
	MB(M_I) | MB(M_AUTH_TYPE) | MB(M_AUTH_AUTHEN) | MB(M_MAIL_ADDR) |
	    MB(M_MAIL_HOST) | MB(M_MAIL_MAILER) | MB(M_TLS_VERSION) |
	    MB(M_CIPHER),
	MB(M_I) | MB(M_RCPT_ADDR) | MB(M_RCPT_HOST) | MB(M_RCPT_MAILER),
	MB(M_I),
	MB(M_I),
	MB(M_I),
};

/* Reply kinds we count. */
enum rk {
	R_CONTINUE, R_ACCEPT, R_REJECT, R_TEMPFAIL, R_DISCARD, R_CODE4,
	R_CODE5, R_CODE421, R_PROGRESS, R_SKIP, R_ADDHEADER, R_INSHEADER,
	R_CHGHEADER, R_QUARANTINE, R_OTHERMOD, R_CONNFAIL, R_COUNT
};
static const char *const rk_name[R_COUNT] = {
	"continue", "accept", "reject", "tempfail", "discard", "replycode_4xx",
	"replycode_5xx", "replycode_421", "progress", "skip", "addheader",
	"insheader", "chgheader", "quarantine", "other_mod", "connfail"
};

enum err {
	E_CONNECT, E_TIMEOUT, E_CLOSED, E_PROTOCOL, E_WRITE, E_NEGOTIATE,
	E_COUNT
};
static const char *const err_name[E_COUNT] = {
	"connect", "timeout", "closed", "protocol", "write", "negotiate"
};

/* Where a session is. */
enum cst {
	C_FREE, C_CONNECTING, C_NEG, C_RUN, C_HELD, C_DONE
};

struct conn {
	int		fd;
	enum cst	st;
	unsigned long	proto;		/* steps the milter asked for */
	unsigned long	ms[MS_COUNT];	/* macros to send per list */
	int		ms_set[MS_COUNT];
	/* position in the session script */
	enum stage	next;		/* next stage to send */
	unsigned	msg, rcpt, hdr;	/* counters within the script */
	unsigned	rcpt_ok;	/* recipients not refused */
	int		msg_over;	/* the message ended early */
	int		quit;		/* send QUIT next */
	/* the command awaiting its reply */
	int		waiting;
	enum stage	wstage;
	int64_t		t_sent;
	/* session identity */
	unsigned long	id;
	char		ip[24];
	unsigned	cport;
	/* buffers */
	unsigned char	*in;
	size_t		inlen, incap;
	unsigned char	out[OUT_MAX];
	size_t		outlen, outoff;
};

struct lat {
	uint32_t	*v;
	size_t		n, cap;
};

static struct {
	/* options */
	const char	*sock;
	unsigned	conns, msgs, rcpts, ips, ramp, daemon_port;
	unsigned long	sessions;
	double		duration, timeout;
	const char	*auth;
	int		tls, hold, hold_at_rcpt, drop;
	/* state */
	struct sockaddr_storage sa;
	socklen_t	salen;
	int		ep, sfd;
	struct conn	*c;
	unsigned long	started, finished, failed, held, next_id, qid;
	unsigned	handshaking;
	int		stop_new, released;
	int64_t		t0, t_end;
	/* results */
	unsigned long	rk[R_COUNT];
	unsigned long	err[E_COUNT];
	unsigned long	decisions, messages, eom_replies, noreply_cmds;
	unsigned long	neg_actions, neg_proto;
	struct lat	lat[ST_COUNT];
} G;

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
lat_add(struct lat *l, int64_t us)
{
	uint32_t *nv;
	size_t ncap;

	if (l->n == l->cap) {
		ncap = l->cap ? l->cap * 2 : 4096;
		if ((nv = realloc(l->v, ncap * sizeof(*nv))) == NULL)
			return;		/* the figure loses a sample, no more */
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX :
	    (uint32_t)us;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static uint32_t
pct(const struct lat *l, double p)
{
	size_t k;

	if (l->n == 0)
		return 0;
	k = (size_t)(p / 100.0 * (double)l->n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > l->n)
		k = l->n;
	return l->v[k - 1];
}

/* --- output buffer --------------------------------------------------- */

/* Appends one packet: length, command, then the parts. -1: no room. */
static int
put_pkt(struct conn *c, char cmd, const void *data, size_t len)
{
	uint32_t n = htonl((uint32_t)len + 1);

	if (c->outlen + 5 + len > sizeof(c->out))
		return -1;
	memcpy(c->out + c->outlen, &n, 4);
	c->out[c->outlen + 4] = (unsigned char)cmd;
	if (len > 0)
		memcpy(c->out + c->outlen + 5, data, len);
	c->outlen += 5 + len;
	return 0;
}

/* Appends NUL-terminated strings to buf; -1 when they do not fit. */
static int
strs(char *buf, size_t cap, size_t *at, ...)
{
	va_list ap;
	const char *s;
	size_t n;

	va_start(ap, at);
	while ((s = va_arg(ap, const char *)) != NULL) {
		n = strlen(s) + 1;
		if (*at + n > cap) {
			va_end(ap);
			return -1;
		}
		memcpy(buf + *at, s, n);
		*at += n;
	}
	va_end(ap);
	return 0;
}

/* --- the session script ---------------------------------------------- */

static const char *
macro_value(const struct conn *c, enum mac m, char *tmp, size_t cap)
{
	switch (m) {
	case M_J:
		return "mx.bench.example";
	case M_UNDERSCORE:
		snprintf(tmp, cap, "client-%lu.example.net [%s]", c->id, c->ip);
		return tmp;
	case M_V:
		return "Postfix 3.7.11";
	case M_DAEMON_NAME:
		return G.daemon_port == 587 ? "submission" : "smtpd";
	case M_DAEMON_ADDR:
	case M_IF_ADDR:
		return "127.0.0.1";
	case M_DAEMON_PORT:
		snprintf(tmp, cap, "%u", G.daemon_port);
		return tmp;
	case M_CLIENT_ADDR:
		return c->ip;
	case M_CLIENT_PORT:
		snprintf(tmp, cap, "%u", c->cport);
		return tmp;
	case M_CLIENT_NAME:
		snprintf(tmp, cap, "client-%lu.example.net", c->id);
		return tmp;
	case M_TLS_VERSION:
		return G.tls ? "TLSv1.3" : NULL;
	case M_CIPHER:
		return G.tls ? "TLS_AES_256_GCM_SHA384" : NULL;
	case M_CIPHER_BITS:
		return G.tls ? "256" : NULL;
	case M_I:
		if (c->next < ST_MAIL)
			return NULL;	/* Postfix has a queue id from MAIL on */
		snprintf(tmp, cap, "%lX%04X", c->id, c->msg & 0xffff);
		return tmp;
	case M_AUTH_TYPE:
		return G.auth != NULL ? "PLAIN" : NULL;
	case M_AUTH_AUTHEN:
		return G.auth;
	case M_MAIL_ADDR:
		snprintf(tmp, cap, "s%lu@bench.example", c->id);
		return tmp;
	case M_MAIL_HOST:
	case M_RCPT_HOST:
		return "bench.example";
	case M_MAIL_MAILER:
	case M_RCPT_MAILER:
		return "smtp";
	case M_RCPT_ADDR:
		snprintf(tmp, cap, "r%u@bench.example", c->rcpt);
		return tmp;
	default:
		return NULL;
	}
}

/* SMFIC_MACRO for the list of stage st, when it has anything to send. */
static int
put_macros(struct conn *c, enum stage st)
{
	char buf[2048], tmp[128], name[NAME_MAX_];
	const char *v;
	unsigned long want;
	size_t at = 1;
	int ms = stage_ms[st], m;

	if (ms < 0)
		return 0;
	want = c->ms_set[ms] ? c->ms[ms] : ms_default[ms];
	buf[0] = stage_cmd[st];
	for (m = 0; m < M_COUNT; m++) {
		if (!(want & MB(m)))
			continue;
		if ((v = macro_value(c, (enum mac)m, tmp, sizeof(tmp))) == NULL)
			continue;	/* Postfix sends only defined ones */
		snprintf(name, sizeof(name), strlen(mac_name[m]) == 1 ? "%s" :
		    "{%s}", mac_name[m]);
		if (strs(buf, sizeof(buf), &at, name, v, (char *)NULL) != 0)
			return -1;
	}
	if (at == 1)
		return 0;
	return put_pkt(c, 'D', buf, at);
}

static int
put_command(struct conn *c, enum stage st)
{
	static const char *const hdrs[][2] = {
		{ "From", "<sender@bench.example>" },
		{ "To", "<rcpt@bench.example>" },
		{ "Subject", "miltergen load" },
		{ "Message-ID", "<bench@bench.example>" },
	};
	char buf[512], tmp[128];
	size_t at = 0;
	uint16_t port;

	switch (st) {
	case ST_CONNECT:
		snprintf(tmp, sizeof(tmp), "client-%lu.example.net", c->id);
		if (strs(buf, sizeof(buf), &at, tmp, (char *)NULL) != 0)
			return -1;
		buf[at++] = '4';
		port = htons((uint16_t)c->cport);
		memcpy(buf + at, &port, 2);
		at += 2;
		if (strs(buf, sizeof(buf), &at, c->ip, (char *)NULL) != 0)
			return -1;
		break;
	case ST_HELO:
		snprintf(tmp, sizeof(tmp), "client-%lu.example.net", c->id);
		(void)strs(buf, sizeof(buf), &at, tmp, (char *)NULL);
		break;
	case ST_MAIL:
		snprintf(tmp, sizeof(tmp), "<s%lu@bench.example>", c->id);
		(void)strs(buf, sizeof(buf), &at, tmp, "SIZE=400",
		    (char *)NULL);
		break;
	case ST_RCPT:
		snprintf(tmp, sizeof(tmp), "<r%u@bench.example>", c->rcpt);
		(void)strs(buf, sizeof(buf), &at, tmp, (char *)NULL);
		break;
	case ST_HEADER:
		(void)strs(buf, sizeof(buf), &at, hdrs[c->hdr][0],
		    hdrs[c->hdr][1], (char *)NULL);
		break;
	case ST_BODY:
		at = (size_t)snprintf(buf, sizeof(buf),
		    "This is a test message from miltergen.\r\n"
		    "It has a few lines of body.\r\n\r\n-- \r\nbench\r\n");
		break;
	default:
		break;
	}
	return put_pkt(c, stage_cmd[st], buf, at);
}

/* The stage after st in the script; ST_COUNT: the message is over. */
static enum stage
stage_after(struct conn *c, enum stage st)
{
	switch (st) {
	case ST_CONNECT:
		return ST_HELO;
	case ST_HELO:
		return ST_COUNT;
	case ST_MAIL:
		c->rcpt = 0;
		return ST_RCPT;
	case ST_RCPT:
		return ++c->rcpt < G.rcpts ? ST_RCPT : ST_DATA;
	case ST_DATA:
		c->hdr = 0;
		return ST_HEADER;
	case ST_HEADER:
		return ++c->hdr < 4 ? ST_HEADER : ST_EOH;
	case ST_EOH:
		return ST_BODY;
	case ST_BODY:
		return ST_EOM;
	default:
		return ST_COUNT;
	}
}

static void conn_close(struct conn *, int failed);

/*
 * Queues commands from c->next on until one awaits a reply (or the
 * session is held or over), as the MTA would: macros always, the command
 * unless negotiated away, no wait when its reply was negotiated away.
 */
static int
advance(struct conn *c)
{
	enum stage st;

	for (;;) {
		if (c->quit) {
			if (put_pkt(c, 'Q', NULL, 0) != 0)
				return -1;
			c->st = C_DONE;
			return 0;
		}
		st = c->next;
		if (st == ST_COUNT) {
			/* Between messages: held, the next one, or QUIT. */
			if (c->msg_over) {
				c->msg_over = 0;
				if (put_pkt(c, 'A', NULL, 0) != 0)
					return -1;
			}
			if (G.hold && !G.hold_at_rcpt && !G.released &&
			    c->st != C_HELD) {
				c->st = C_HELD;
				G.held++;
				return 0;
			}
			if (c->msg >= G.msgs) {
				c->quit = 1;
				continue;
			}
			c->msg++;
			c->rcpt_ok = 0;
			c->next = st = ST_MAIL;
		}
		if (st == ST_DATA && G.hold && G.hold_at_rcpt && !G.released &&
		    c->st != C_HELD) {
			c->st = C_HELD;
			G.held++;
			return 0;
		}
		if (put_macros(c, st) != 0)
			return -1;
		if (c->proto & stage_no[st]) {
			c->next = stage_after(c, st);
			if (c->next == ST_DATA && st == ST_RCPT)
				c->rcpt_ok = G.rcpts;
			continue;
		}
		if (put_command(c, st) != 0)
			return -1;
		if (c->proto & stage_nr[st]) {
			G.noreply_cmds++;
			if (st == ST_RCPT)
				c->rcpt_ok++;
			c->next = stage_after(c, st);
			continue;
		}
		c->waiting = 1;
		c->wstage = st;
		return 0;
	}
}

static int
flush_out(struct conn *c)
{
	ssize_t n;

	while (c->outoff < c->outlen) {
		n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff,
		    MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct epoll_event ev = { EPOLLIN | EPOLLOUT,
			    { .ptr = c } };

			return epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev);
		}
		if (n <= 0)
			return -1;
		c->outoff += (size_t)n;
	}
	c->outlen = c->outoff = 0;
	return 0;
}

/* advance + write; the time of the write starts the awaited reply. */
static void
step(struct conn *c)
{
	if (advance(c) != 0) {
		G.err[E_PROTOCOL]++;	/* our batch overflowed: a bug */
		conn_close(c, 1);
		return;
	}
	if (c->waiting)
		c->t_sent = now_us();
	if (flush_out(c) != 0) {
		G.err[E_WRITE]++;
		conn_close(c, 1);
		return;
	}
	if (c->st == C_DONE && c->outlen == 0)
		conn_close(c, 0);
}

/* --- replies --------------------------------------------------------- */

/* A name from a symlist, without braces, to a macro bit (0: unknown). */
static unsigned long
mac_bit(const char *n, size_t len)
{
	int m;

	if (len >= 2 && n[0] == '{' && n[len - 1] == '}') {
		n++;
		len -= 2;
	}
	for (m = 0; m < M_COUNT; m++)
		if (strlen(mac_name[m]) == len && memcmp(mac_name[m], n,
		    len) == 0)
			return MB(m);
	return 0;
}

static int
parse_negotiate(struct conn *c, const unsigned char *p, size_t len)
{
	uint32_t v[3], idx;
	const unsigned char *end = p + len, *z, *w, *e;
	int i;

	if (len < 12)
		return -1;
	for (i = 0; i < 3; i++) {
		memcpy(&v[i], p + 4 * i, 4);
		v[i] = ntohl(v[i]);
	}
	if (v[0] < 2 || v[0] > MILTER_VERSION)
		return -1;
	/* A milter may not ask for what the MTA did not offer. */
	if ((v[1] & ~MTA_ACTIONS) != 0 || (v[2] & ~MTA_PROTO) != 0)
		return -1;
	G.neg_actions = v[1];
	G.neg_proto = v[2];
	c->proto = v[2];
	p += 12;
	while (p < end) {
		if (end - p < 5)
			return -1;
		memcpy(&idx, p, 4);
		idx = ntohl(idx);
		p += 4;
		if (idx >= MS_COUNT ||
		    (z = memchr(p, '\0', (size_t)(end - p))) == NULL)
			return -1;
		c->ms_set[idx] = 1;
		c->ms[idx] = 0;
		for (w = p; w < z; w = e) {
			while (w < z && *w == ' ')
				w++;
			for (e = w; e < z && *e != ' '; e++)
				;
			if (e > w)
				c->ms[idx] |= mac_bit((const char *)w,
				    (size_t)(e - w));
		}
		p = z + 1;
	}
	return 0;
}

/* The verdict's effect on the script, as an MTA applies it. */
static void
verdict(struct conn *c, enum stage st, int final_refuse, int closes)
{
	if (closes) {
		c->quit = 1;
		return;
	}
	if (st == ST_CONNECT || st == ST_HELO) {
		/* Accept or refusal at connect/helo: the milter is done. */
		c->quit = 1;
		return;
	}
	if (st == ST_RCPT && final_refuse) {
		/* That recipient only. */
		c->next = stage_after(c, st);
		if (c->next == ST_DATA && c->rcpt_ok == 0) {
			c->msg_over = 1;
			c->next = ST_COUNT;
		}
		return;
	}
	if (st == ST_EOM) {
		c->next = ST_COUNT;
		return;
	}
	/* Accept, discard or refusal for the message: ABORT, next one. */
	c->msg_over = 1;
	c->next = ST_COUNT;
}

/*
 * A final reply the MTA would accept: a known one; SMFIR_SKIP only for
 * a body chunk; SMFIR_REPLYCODE as "ddd[ -]text\0" with a 4xx or 5xx.
 */
static int
final_ok(unsigned char cmd, enum stage st, const unsigned char *p,
    size_t len)
{
	if (cmd == '\0' || strchr("cartdyf4s", cmd) == NULL)
		return 0;
	if (cmd == 's')
		return st == ST_BODY;
	if (cmd != 'y')
		return 1;
	return len >= 4 && p[len - 1] == '\0' && p[0] >= '4' && p[0] <= '5' &&
	    p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9' &&
	    (p[3] == ' ' || p[3] == '-' || p[3] == '\0');
}

/*
 * Progress, or a modification before the final reply (only valid at end
 * of message): counted; the reply is still awaited. -1: out of place.
 */
static int
interim(unsigned char cmd, enum stage st)
{
	if (cmd == 'p') {
		G.rk[R_PROGRESS]++;
		return 0;
	}
	if (st != ST_EOM)
		return -1;
	G.rk[cmd == 'h' ? R_ADDHEADER : cmd == 'i' ? R_INSHEADER :
	    cmd == 'm' ? R_CHGHEADER : cmd == 'q' ? R_QUARANTINE :
	    R_OTHERMOD]++;
	return 0;
}

/* One packet from the milter. 0 ok, -1 protocol error. */
static int
on_packet(struct conn *c, unsigned char cmd, const unsigned char *p,
    size_t len)
{
	enum stage st = c->wstage;
	int code;

	if (c->st == C_NEG) {
		if (cmd != 'O' || parse_negotiate(c, p, len) != 0) {
			G.err[E_NEGOTIATE]++;
			conn_close(c, 1);
			return 0;
		}
		c->st = C_RUN;
		G.handshaking--;
		c->next = ST_CONNECT;
		step(c);
		return 0;
	}
	if (!c->waiting)
		return -1;	/* a reply nobody asked for */
	if (strchr("phimqb+-2e", cmd) != NULL && cmd != '\0')
		return interim(cmd, st);
	/* Only a well-formed final reply counts as a decision. */
	if (!final_ok(cmd, st, p, len))
		return -1;
	c->waiting = 0;
	G.decisions++;
	lat_add(&G.lat[st], now_us() - c->t_sent);
	if (st == ST_EOM)
		G.eom_replies++;
	switch (cmd) {
	case 'c':
		G.rk[R_CONTINUE]++;
		if (st == ST_RCPT)
			c->rcpt_ok++;
		c->next = stage_after(c, st);
		if (st == ST_EOM)
			G.messages++;
		break;
	case 's':
		G.rk[R_SKIP]++;
		c->next = ST_EOM;
		break;
	case 'a':
		G.rk[R_ACCEPT]++;
		if (st >= ST_MAIL)
			G.messages++;
		verdict(c, st, 0, 0);
		break;
	case 'r':
	case 't':
		G.rk[cmd == 'r' ? R_REJECT : R_TEMPFAIL]++;
		verdict(c, st, 1, 0);
		break;
	case 'd':
		G.rk[R_DISCARD]++;
		verdict(c, st, 1, st < ST_MAIL);
		break;
	case 'y':
		/* "ddd[ -]text\0", checked above: 421 closes the session. */
		code = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
		G.rk[code == 421 ? R_CODE421 : code >= 500 ? R_CODE5 :
		    R_CODE4]++;
		verdict(c, st, 1, code == 421);
		break;
	case 'f':
	case '4':
		G.rk[R_CONNFAIL]++;
		c->quit = 1;
		break;
	default:
		return -1;
	}
	step(c);
	return 0;
}

static void
on_readable(struct conn *c)
{
	unsigned char *nb;
	uint32_t plen;
	ssize_t n;
	size_t off;

	for (;;) {
		if (c->incap - c->inlen < 512) {
			size_t ncap = c->incap ? c->incap * 2 : 1024;

			if (ncap > PKT_MAX + 4)
				ncap = PKT_MAX + 4;
			if (ncap <= c->incap ||
			    (nb = realloc(c->in, ncap)) == NULL) {
				G.err[E_PROTOCOL]++;
				conn_close(c, 1);
				return;
			}
			c->in = nb;
			c->incap = ncap;
		}
		n = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			/* After QUIT a close is expected; before, an error. */
			G.err[E_CLOSED]++;
			conn_close(c, 1);
			return;
		}
		c->inlen += (size_t)n;
		break;	/* level-triggered: the rest comes with the next event */
	}
	off = 0;
	while (c->inlen - off >= 4) {
		memcpy(&plen, c->in + off, 4);
		plen = ntohl(plen);
		if (plen < 1 || plen > PKT_MAX) {
			G.err[E_PROTOCOL]++;
			conn_close(c, 1);
			return;
		}
		if (c->inlen - off - 4 < plen)
			break;
		if (on_packet(c, c->in[off + 4], c->in + off + 5,
		    plen - 1) != 0) {
			if (c->st != C_FREE) {
				G.err[E_PROTOCOL]++;
				conn_close(c, 1);
			}
			return;
		}
		if (c->st == C_FREE)
			return;		/* closed while handling it */
		off += 4 + plen;
	}
	if (off > 0) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
	}
}

/* --- connections ----------------------------------------------------- */

static void
conn_close(struct conn *c, int failed)
{
	if (c->st == C_FREE)
		return;
	if (c->st == C_CONNECTING || c->st == C_NEG)
		G.handshaking--;
	if (c->st == C_HELD)
		G.held--;
	epoll_ctl(G.ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->st = C_FREE;
	free(c->in);
	c->in = NULL;
	c->inlen = c->incap = c->outlen = c->outoff = 0;
	if (failed)
		G.failed++;
	else
		G.finished++;
}

static void
send_optneg(struct conn *c)
{
	uint32_t v[3] = { htonl(MILTER_VERSION), htonl(MTA_ACTIONS),
	    htonl(MTA_PROTO) };

	c->st = C_NEG;
	c->t_sent = now_us();
	if (put_pkt(c, 'O', v, sizeof(v)) != 0 || flush_out(c) != 0) {
		G.err[E_WRITE]++;
		conn_close(c, 1);
	}
}

static void
conn_start(struct conn *c)
{
	struct epoll_event ev = { EPOLLIN | EPOLLOUT, { .ptr = c } };
	unsigned long k = G.next_id++, x;
	int one = 1;

	memset(c, 0, offsetof(struct conn, out));
	c->id = k;
	x = G.ips ? k % G.ips : k;
	/* Distinct /24s, so per-network limits do not all trip at once. */
	snprintf(c->ip, sizeof(c->ip), "10.%lu.%lu.%lu", (x >> 8) & 255,
	    x & 255, 1 + ((x >> 16) & 127));
	c->cport = 20000 + (unsigned)(k % 40000);
	G.started++;
	G.handshaking++;
	c->st = C_CONNECTING;
	c->fd = socket(G.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	c->t_sent = now_us();	/* the handshake's deadline counts from here */
	if (c->fd < 0) {
		G.err[E_CONNECT]++;
		c->st = C_FREE;
		G.handshaking--;
		G.failed++;
		return;
	}
	/* As Postfix's milter8 over inet: small writes, no Nagle wait. */
	if (G.sa.ss_family != AF_UNIX)
		(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&G.sa, G.salen) != 0 &&
	    errno != EINPROGRESS) {
		G.err[E_CONNECT]++;
		close(c->fd);
		c->fd = -1;
		c->st = C_FREE;
		G.handshaking--;
		G.failed++;
		return;
	}
	if (epoll_ctl(G.ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
		G.err[E_CONNECT]++;
		close(c->fd);
		c->fd = -1;
		c->st = C_FREE;
		G.handshaking--;
		G.failed++;
	}
}

static void
on_event(struct conn *c, uint32_t events)
{
	struct epoll_event ev = { EPOLLIN, { .ptr = c } };
	int err = 0;
	socklen_t elen = sizeof(err);

	if (c->st == C_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 ||
		    err != 0) {
			G.err[E_CONNECT]++;
			conn_close(c, 1);
			return;
		}
		epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev);
		send_optneg(c);
		return;
	}
	if (events & EPOLLOUT) {
		epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev);
		if (flush_out(c) != 0) {
			G.err[E_WRITE]++;
			conn_close(c, 1);
			return;
		}
		if (c->st == C_DONE && c->outlen == 0) {
			conn_close(c, 0);
			return;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_readable(c);
}

/* Starts sessions in free slots while the run wants more. */
static void
fill(void)
{
	unsigned i;

	for (i = 0; i < G.conns; i++) {
		if (G.c[i].st != C_FREE)
			continue;
		if (G.stop_new || (G.hold && G.next_id >= G.conns))
			return;
		if (G.sessions && G.next_id >= G.sessions)
			return;
		if (G.handshaking >= G.ramp)
			return;
		conn_start(&G.c[i]);
	}
}

static void
check_timeouts(int64_t now)
{
	int64_t lim = (int64_t)(G.timeout * 1e6);
	unsigned i;

	for (i = 0; i < G.conns; i++) {
		struct conn *c = &G.c[i];

		if (c->st == C_FREE || c->st == C_HELD)
			continue;
		if ((c->waiting || c->st == C_NEG || c->st == C_CONNECTING) &&
		    now - c->t_sent > lim) {
			G.err[E_TIMEOUT]++;
			conn_close(c, 1);
		}
	}
}

static void
release(void)
{
	unsigned i;

	if (G.released)
		return;
	G.released = 1;
	printf("released %lu\n", G.held);
	fflush(stdout);
	for (i = 0; i < G.conns; i++)
		if (G.c[i].st == C_HELD && G.drop) {
			/* An MTA that goes away mid-session: no QUIT. */
			conn_close(&G.c[i], 0);
		} else if (G.c[i].st == C_HELD) {
			G.c[i].st = C_RUN;
			G.held--;
			step(&G.c[i]);
		}
}

static unsigned
active(void)
{
	unsigned i, n = 0;

	for (i = 0; i < G.conns; i++)
		n += G.c[i].st != C_FREE;
	return n;
}

/* --- set-up and report ----------------------------------------------- */

static int
parse_socket(const char *spec)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&G.sa;
	struct sockaddr_un *un = (struct sockaddr_un *)&G.sa;
	const char *at;
	char *end;
	unsigned long port;

	memset(&G.sa, 0, sizeof(G.sa));
	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0) {
		spec = strchr(spec, ':') + 1;
		if (strlen(spec) == 0 || strlen(spec) >= sizeof(un->sun_path))
			return -1;
		un->sun_family = AF_UNIX;
		memcpy(un->sun_path, spec, strlen(spec) + 1);
		G.salen = sizeof(*un);
		return 0;
	}
	if (strncmp(spec, "inet:", 5) != 0)
		return -1;
	spec += 5;
	port = strtoul(spec, &end, 10);
	if (end == spec || port < 1 || port > 65535)
		return -1;
	at = *end == '@' ? end + 1 : "127.0.0.1";
	if (*end != '@' && *end != '\0')
		return -1;
	in->sin_family = AF_INET;
	in->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, at, &in->sin_addr) != 1)
		return -1;
	G.salen = sizeof(*in);
	return 0;
}

static void
report(double secs)
{
	uint32_t all_p99 = 0;
	struct lat every = { NULL, 0, 0 };
	int s, k;
	size_t i;

	printf("miltergen socket=%s conns=%u msgs=%u rcpts=%u ips=%u "
	    "hold=%s secs=%.3f\n", G.sock, G.conns, G.msgs, G.rcpts, G.ips,
	    !G.hold ? "no" : G.hold_at_rcpt ? "rcpt" : "helo", secs);
	printf("negotiated actions=0x%lx protocol=0x%lx\n", G.neg_actions,
	    G.neg_proto);
	printf("sessions started=%lu completed=%lu failed=%lu\n", G.started,
	    G.finished, G.failed);
	printf("totals decisions=%lu messages=%lu eom_replies=%lu "
	    "noreply_cmds=%lu\n", G.decisions, G.messages, G.eom_replies,
	    G.noreply_cmds);
	printf("rate decisions_per_s=%.1f messages_per_s=%.1f\n",
	    secs > 0 ? (double)G.decisions / secs : 0.0,
	    secs > 0 ? (double)G.messages / secs : 0.0);
	for (s = 0; s < ST_COUNT; s++) {
		struct lat *l = &G.lat[s];

		if (l->n == 0)
			continue;
		qsort(l->v, l->n, sizeof(*l->v), cmp_u32);
		printf("stage=%s n=%zu p50_us=%u p90_us=%u p99_us=%u "
		    "max_us=%u\n", stage_name[s], l->n, pct(l, 50), pct(l, 90),
		    pct(l, 99), l->v[l->n - 1]);
		for (i = 0; i < l->n; i++)
			lat_add(&every, l->v[i]);
	}
	if (every.n > 0) {
		qsort(every.v, every.n, sizeof(*every.v), cmp_u32);
		all_p99 = pct(&every, 99);
		printf("stage=all n=%zu p50_us=%u p90_us=%u p99_us=%u "
		    "max_us=%u\n", every.n, pct(&every, 50), pct(&every, 90),
		    all_p99, every.v[every.n - 1]);
	}
	free(every.v);
	printf("replies");
	for (k = 0; k < R_COUNT; k++)
		printf(" %s=%lu", rk_name[k], G.rk[k]);
	printf("\nerrors");
	for (k = 0; k < E_COUNT; k++)
		printf(" %s=%lu", err_name[k], G.err[k]);
	printf("\n");
}

static void
usage(void)
{
	fprintf(stderr,
"usage: miltergen -s inet:PORT[@127.0.0.1]|unix:PATH [options]\n"
"  -c, --conns N      concurrent connections (10)\n"
"  -m, --msgs N       messages per connection (1)\n"
"  -r, --rcpts N      recipients per message (1)\n"
"  -n, --sessions N   stop after N sessions (default: run --duration)\n"
"  -d, --duration S   seconds to start new sessions for (3)\n"
"  -i, --ips N        distinct client addresses, each in its own /24\n"
"                     (65536; 1 = one address, to trip its limits)\n"
"  -p, --port N       {daemon_port} the MTA reports (25)\n"
"      --auth USER    {auth_authen}=USER {auth_type}=PLAIN\n"
"      --tls          {tls_version} {cipher} {cipher_bits}\n"
"      --hold[=helo|rcpt]  open --conns sessions, hold each after HELO\n"
"                     (or its last RCPT), print \"held N\"; SIGUSR1 or\n"
"                     a line (or EOF) on stdin finishes them all\n"
"      --drop         with --hold: close the held sessions instead, no QUIT\n"
"      --ramp N       handshakes in flight at once (64)\n"
"      --timeout S    seconds to wait for one reply (30)\n");
	exit(2);
}

static unsigned long
num(const char *s, unsigned long lo, unsigned long hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
		fprintf(stderr, "miltergen: bad number %s\n", s);
		usage();
	}
	return v;
}

static void
options(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "socket", 1, NULL, 's' }, { "conns", 1, NULL, 'c' },
		{ "msgs", 1, NULL, 'm' }, { "rcpts", 1, NULL, 'r' },
		{ "sessions", 1, NULL, 'n' }, { "duration", 1, NULL, 'd' },
		{ "ips", 1, NULL, 'i' }, { "port", 1, NULL, 'p' },
		{ "auth", 1, NULL, 'A' }, { "tls", 0, NULL, 'T' },
		{ "hold", 2, NULL, 'H' }, { "ramp", 1, NULL, 'R' },
		{ "timeout", 1, NULL, 'O' }, { "drop", 0, NULL, 'D' },
		{ NULL, 0, NULL, 0 }
	};
	char *end;
	int o;

	G.conns = 10;
	G.msgs = 1;
	G.rcpts = 1;
	G.duration = 3;
	G.ips = 65536;
	G.daemon_port = 25;
	G.ramp = 64;
	G.timeout = 30;
	while ((o = getopt_long(argc, argv, "s:c:m:r:n:d:i:p:", lo,
	    NULL)) != -1) {
		switch (o) {
		case 's': G.sock = optarg; break;
		case 'c': G.conns = (unsigned)num(optarg, 1, 100000); break;
		case 'm': G.msgs = (unsigned)num(optarg, 0, 1000000); break;
		case 'r': G.rcpts = (unsigned)num(optarg, 1, 1000); break;
		case 'n': G.sessions = num(optarg, 1, 1000000000); break;
		case 'i': G.ips = (unsigned)num(optarg, 1, 8388608); break;
		case 'p': G.daemon_port = (unsigned)num(optarg, 1, 65535);
			break;
		case 'R': G.ramp = (unsigned)num(optarg, 1, 100000); break;
		case 'A':
			if (strlen(optarg) == 0 || strlen(optarg) > 64)
				usage();
			G.auth = optarg;
			break;
		case 'T': G.tls = 1; break;
		case 'D': G.drop = 1; break;
		case 'H':
			G.hold = 1;
			if (optarg != NULL && strcmp(optarg, "rcpt") == 0)
				G.hold_at_rcpt = 1;
			else if (optarg != NULL && strcmp(optarg, "helo") != 0)
				usage();
			break;
		case 'd':
		case 'O':
			errno = 0;
			{
				double v = strtod(optarg, &end);

				if (*end != '\0' || errno != 0 || !(v > 0) ||
				    v > 86400)
					usage();
				if (o == 'd')
					G.duration = v;
				else
					G.timeout = v;
			}
			break;
		default: usage();
		}
	}
	if (G.sock == NULL || optind != argc || parse_socket(G.sock) != 0)
		usage();
	if (G.hold && G.msgs == 0)
		G.msgs = 1;
	if (G.drop && !G.hold)
		usage();
}

/* SIGUSR1 or stdin releases held sessions; SIGINT/SIGTERM stop new ones. */
static int
setup_signals(void)
{
	struct epoll_event ev = { EPOLLIN, { .ptr = NULL } };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0 ||
	    (G.sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK)) < 0 ||
	    epoll_ctl(G.ep, EPOLL_CTL_ADD, G.sfd, &ev) != 0)
		return -1;
	return 0;
}

static void
on_signalfd(void)
{
	struct signalfd_siginfo si;

	while (read(G.sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1 || G.hold)
			release();
		if (si.ssi_signo != SIGUSR1)
			G.stop_new = 1;
	}
}

int
main(int argc, char **argv)
{
	static struct epoll_event evs[256];
	static int stdin_tag;
	struct epoll_event sev = { EPOLLIN, { .ptr = &stdin_tag } };
	int n, i, announced = 0, stdin_eof = 0;
	int64_t now;
	char line[256];

	options(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if ((G.c = calloc(G.conns, sizeof(*G.c))) == NULL ||
	    (G.ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    setup_signals() != 0) {
		perror("miltergen");
		return 1;
	}
	/*
	 * A pipe or terminal on stdin can release the held sessions; an
	 * unpollable one (/dev/null, a file) leaves that to SIGUSR1.
	 */
	if (G.hold)
		(void)epoll_ctl(G.ep, EPOLL_CTL_ADD, 0, &sev);
	G.t0 = now_us();
	G.t_end = G.sessions ? INT64_MAX : G.t0 + (int64_t)(G.duration * 1e6);
	for (;;) {
		now = now_us();
		if (!G.hold && now >= G.t_end)
			G.stop_new = 1;
		fill();
		if (G.hold && !announced && G.next_id >= G.conns &&
		    G.held + G.failed + G.finished >= G.conns) {
			announced = 1;
			printf("held %lu\n", G.held);
			fflush(stdout);
			if (stdin_eof)
				release();
		}
		if (active() == 0 && (G.stop_new || (G.sessions &&
		    G.next_id >= G.sessions) || (G.hold && G.released)))
			break;
		n = epoll_wait(G.ep, evs, 256, 100);
		if (n < 0 && errno != EINTR) {
			perror("miltergen: epoll_wait");
			return 1;
		}
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				on_signalfd();
			} else if (evs[i].data.ptr == &stdin_tag) {
				/* A line, or EOF (then once all are held). */
				ssize_t r = read(0, line, sizeof(line));

				if (r <= 0) {
					epoll_ctl(G.ep, EPOLL_CTL_DEL, 0, NULL);
					stdin_eof = 1;
				}
				if (announced)
					release();
			} else {
				on_event(evs[i].data.ptr, evs[i].events);
			}
		}
		check_timeouts(now_us());
	}
	report((double)(now_us() - G.t0) / 1e6);
	for (i = 0; i < ST_COUNT; i++)
		free(G.lat[i].v);
	free(G.c);
	return G.failed > 0 ? 1 : 0;
}

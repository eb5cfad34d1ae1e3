/*
 * probe_conn.c - the connection of `warden probe`: name lookup, TCP
 * connect, the TLS handshake (OpenSSL) and reads and writes, each within
 * the step's deadline; reading one reply through probe_smtp.c's parser.
 * Owns: p->fd, p->ctx, p->ssl and the receive buffer. Not: what is sent
 * or judged (probe.c, probe_out.c).
 * Untrusted: every server byte; a reply that breaks the parser or the
 * deadline ends in -1 with the reason in p->ioerr, never in a wait past
 * the deadline.
 * Threads: one run, one thread; the name lookup runs on glibc's resolver
 * thread, which owns its request until it is done or cancelled.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "probe_int.h"

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
int
probe_conn_write(struct probe *p, const char *s, size_t len)
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
int
probe_read_reply(struct probe *p, struct probe_reply *r)
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
int
probe_conn_open(struct probe *p, char *why, size_t len)
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

void
probe_conn_close(struct probe *p)
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
int
probe_tls_handshake(struct probe *p)
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

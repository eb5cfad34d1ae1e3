/*
 * probe_int.h - what the files of `warden probe` share: the options, the
 * state of one run and the functions that cross files (probe.c: options
 * and steps, probe_conn.c: TCP/TLS I/O, probe_out.c: verdicts and rows).
 * Owns: struct probe_opts, struct probe. Not: the public interface
 * (probe.h); only src/probe*.c include this file.
 * Threads: one run, one thread; a struct probe is never shared.
 * Errors: I/O returns -1 with the reason in p->ioerr; a step that fails
 * for want of a reply prints a problem row and ends the session.
 */
#ifndef WARDEN_PROBE_INT_H
#define WARDEN_PROBE_INT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include <openssl/ssl.h>

#include "probe.h"

#define PROBE_RCPT_MAX		16
#define PROBE_CRED_MAX		255

struct probe_opts {
	char	host[256];
	char	port[8];
	int	implicit_tls, require_tls, submission, json, timeout_s;
	int	data;
	int	have_auth;
	char	user[PROBE_CRED_MAX + 1], pass[PROBE_CRED_MAX + 1];
	const char *from, *helo, *cafile;
	const char *rcpt[PROBE_RCPT_MAX];
	size_t	nrcpt;
};

struct probe {
	const struct probe_opts *o;
	int64_t	(*now_ms)(void);
	time_t	wall;		/* start of the run, for the Date header */
	int64_t	deadline;
	FILE	*out;
	int	fd;
	SSL_CTX	*ctx;
	SSL	*ssl;
	char	buf[4096];	/* received, not yet parsed: buf[off..len) */
	size_t	off, len;
	int	reached, alive, tls, authed, nsteps;
	int	count[PV_COUNT];
	int	verr[4];	/* certificate verification errors seen */
	size_t	nverr;
	struct probe_reply *r, *r2;
	struct probe_caps caps, caps_tls;
	const struct probe_caps *cur;
	char	helo[300];
	char	addr[INET6_ADDRSTRLEN + 8];
	char	ioerr[256];
	char	seen[80];	/* the bytes of a reply that went wrong */
};

/* The reply's class: 2 success, 3 more, 4 transient, 5 permanent. */
#define PROBE_CLASS(r)	((r)->code / 100)

/* probe_out.c: sets j's verdict and its reason, cut to fit. */
void	probe_judge(struct probe_judgement *j, enum probe_verdict v,
	    const char *fmt, ...) PRINTF_LIKE(3, 4);

/*
 * probe_conn.c, all within p->deadline. conn_open: resolves p->o->host
 * and connects to the first address that answers: 0, or -1 with the
 * reason in why. conn_close: frees the TLS objects and closes the socket
 * (idempotent). conn_write, read_reply (one reply into r) and
 * tls_handshake (on p->fd, p->tls set): 0, or -1 with p->ioerr.
 */
int	probe_conn_open(struct probe *p, char *why, size_t len) WARN_UNUSED;
void	probe_conn_close(struct probe *p);
int	probe_conn_write(struct probe *p, const char *s, size_t len)
	    WARN_UNUSED;
int	probe_read_reply(struct probe *p, struct probe_reply *r) WARN_UNUSED;
int	probe_tls_handshake(struct probe *p) WARN_UNUSED;

/*
 * probe_out.c: one row. emit: step, what was sent (NULL: nothing), the
 * reply (NULL: info says what was seen), the verdict. emit_ioerr: a
 * problem row from p->ioerr; ends the session. emit_reply: adds the
 * checks every reply shares; a 421 ends the session.
 */
void	probe_emit(struct probe *p, const char *step, const char *sent,
	    const struct probe_reply *r, const char *info,
	    const struct probe_judgement *j);
void	probe_emit_ioerr(struct probe *p, const char *step, const char *sent);
void	probe_emit_reply(struct probe *p, const char *step, const char *sent,
	    const struct probe_reply *r, struct probe_judgement *j);
/*
 * Sends wire (NULL: just reads) and reads the reply into r; shown is
 * what the row prints. 0, or -1 after a problem row.
 */
int	probe_exchange(struct probe *p, const char *step, const char *shown,
	    const char *wire, struct probe_reply *r) WARN_UNUSED;
/* A JSON string of untrusted bytes (NULL: null), escaped, on f. */
void	probe_json_str(FILE *f, const char *s);

#endif

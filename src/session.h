/*
 * session.h - what warden knows about one SMTP connection and its current
 * transaction: the facts rules test (DESIGN.md §3) and the verdict state
 * that outlives one event (accepted, closed by 421, pending quarantine
 * and tags).
 * Owns: bounded copies of MTA-supplied values. Every field has a cap;
 * longer input is cut and the field's bit is set in `truncated`.
 * Not: policy (engine.c), libmilter (milter.c fills it).
 * Threads: a session is used by one callback at a time (libmilter
 * serialises a connection's callbacks); no locking inside.
 * Memory: struct sess is fixed size, no heap; it borrows the ruleset it
 * started with. Between events a connection keeps it as a struct
 * sess_keep: the small head in place, the strings of the large buffers
 * packed on the heap only while a transaction or a tag needs them.
 */
#ifndef WARDEN_SESSION_H
#define WARDEN_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include "match.h"
#include "stage.h"

#define SESS_IP_MAX		64
#define SESS_NAME_MAX		256	/* client_name, daemon: DNS names */
#define SESS_HELO_MAX		256
/*
 * RFC 5321 allows a 256-octet path, but Postfix and Sendmail accept up to
 * their 2048-byte command lines: hold what they can pass.
 */
#define SESS_ADDR_MAX		2048
#define SESS_USER_MAX		256
#define SESS_MECH_MAX		32
#define SESS_TLSVER_MAX		32
#define SESS_QID_MAX		32
#define SESS_CMD_MAX		64
#define SESS_HDR_NAME_MAX	128
#define SESS_HDR_VALUE_MAX	2048
#define SESS_TAGS_MAX		8
#define SESS_TAG_MAX		512	/* one "Name: value" header to add */

/* Bits of sess.truncated: which fields were cut to their cap. */
enum sess_field {
	SF_CLIENT_NAME = 1u << 0,
	SF_DAEMON = 1u << 1,
	SF_HELO = 1u << 2,
	SF_SENDER = 1u << 3,
	SF_RCPT = 1u << 4,
	SF_AUTH_USER = 1u << 5,
	SF_COMMAND = 1u << 6,
	SF_HEADER = 1u << 7,
	SF_OTHER = 1u << 8,
};

struct rule;

struct sess_tag {
	const struct rule *rule;
	char		hdr_name[SESS_HDR_NAME_MAX];
	char		hdr_value[SESS_TAG_MAX];
};

struct sess {
	/* connection */
	char		client_ip[SESS_IP_MAX];	/* as given, unbracketed */
	struct match_ip	ip;			/* family 0: unknown */
	unsigned	client_port;
	char		client_name[SESS_NAME_MAX];
	char		daemon[SESS_NAME_MAX];
	int		port;			/* MTA listener; 0 unknown */
	char		helo[SESS_HELO_MAX];
	int		tls;
	char		tls_version[SESS_TLSVER_MAX];
	int		cipher_bits;
	int		auth;
	char		auth_user[SESS_USER_MAX];
	char		auth_mech[SESS_MECH_MAX];
	unsigned	unknown_count;		/* session */
	unsigned	bad_rcpt_count;		/* session */
	/* transaction */
	char		queue_id[SESS_QID_MAX];
	int		has_sender;
	long long	size;			/* SIZE= at MAIL, bytes at eom */
	int		rcpt_rejected;		/* by the MTA */
	unsigned	rcpt_count;		/* transaction */
	unsigned	truncated;
	/*
	 * Out of memory dropped this transaction's strings and tags: its
	 * later events must not be judged without them (a sender rule
	 * would stop matching), so each is tempfailed until MAIL or abort.
	 */
	int		msg_lost;
	/* verdict state */
	int		conn_accepted;		/* accept at connect/helo */
	int		msg_accepted;		/* accept at envfrom..eom */
	const struct rule *closed_by;		/* a 421: every later event */
	int64_t		closed_retry_ns;
	const struct rule *quarantine;		/* applied at eom */
	size_t		ntags, nconn_tags;	/* conn tags come first */
	/*
	 * The buffers come last: sess_init clears only their first bytes,
	 * and struct sess_keep holds only what comes before them while no
	 * transaction is open. command lives for one event (the unknown
	 * command being judged), so no connection keeps it; the others are
	 * transaction state, but for the tags flagged at connect/helo
	 * (nconn_tags).
	 */
	char		command[SESS_CMD_MAX];	/* this event's unknown command */
	char		sender[SESS_ADDR_MAX];	/* no <>; "" = null sender */
	char		rcpt[SESS_ADDR_MAX];	/* current recipient */
	char		hdr_name[SESS_HDR_NAME_MAX];
	char		hdr_value[SESS_HDR_VALUE_MAX];
	struct sess_tag	tags[SESS_TAGS_MAX];	/* added at eom */
};

/* Forgets everything: a new connection. */
void	sess_init(struct sess *);

/*
 * What a connection keeps between events: the head of struct sess (~1.4
 * kB) and, while a transaction is open (MAIL FROM to eom/abort) or a tag
 * is pending, the tail's strings and tags packed end to end in `tail`
 * (their lengths, not their 2 kB caps). Issue #4 budgets 2 kB a session;
 * a whole struct sess is ~13 kB.
 */
#define SESS_HEAD_SIZE	offsetof(struct sess, command)
struct sess_keep {
	unsigned char	*tail;		/* owned; NULL: empty transaction */
	size_t		tailcap;
	/* realloc; tests put a failing one here to reach the OOM path */
	void		*(*grow)(void *, size_t);
	unsigned char	head[SESS_HEAD_SIZE];
};

/* A new connection (as sess_init). No heap. */
void	sess_keep_init(struct sess_keep *);
/* Frees the heap part; the keep may then be initialised again. */
void	sess_keep_fini(struct sess_keep *);
/*
 * The session for one event, rebuilt in tmp (the caller's, usually on
 * its stack) from what was kept. Returns tmp.
 */
struct sess *sess_keep_open(struct sess_keep *, struct sess *tmp);
/*
 * After the event: keeps what must outlive it and frees the heap part
 * once nothing needs it. Returns 0, or -1 when memory for a transaction
 * ran out: then the transaction and pending tags are dropped (the head
 * is kept, with msg_lost set) and the caller tempfails this event and
 * logs; sess_lost() then says which later events to tempfail.
 */
int	sess_keep_close(struct sess_keep *, struct sess *s) WARN_UNUSED;
/*
 * Forgets the transaction (new MAIL FROM, RSET, abort, after eom),
 * msg_lost included.
 */
void	sess_reset_msg(struct sess *);
/*
 * 1 when an event at stage belongs to a transaction sess_keep_close
 * lost: the caller answers it 451 4.3.0 without evaluating it. MAIL
 * starts a new transaction (the caller resets first), and commands
 * outside a transaction (connect, helo, unknown) are not its events.
 */
int	sess_lost(const struct sess *, enum stage);

/*
 * Setters take untrusted bytes (len need not include a NUL) and copy them
 * bounded; a cut value sets its truncated bit. NULL clears the field.
 */
void	sess_set_client(struct sess *, const char *ip, size_t len,
	    unsigned port);
void	sess_set_client_name(struct sess *, const char *, size_t);
void	sess_set_daemon(struct sess *, const char *, size_t);
void	sess_set_helo(struct sess *, const char *, size_t);
void	sess_set_tls(struct sess *, const char *version, size_t len,
	    int cipher_bits);
void	sess_set_auth(struct sess *, const char *user, size_t ulen,
	    const char *mech, size_t mlen);
/* "<a@b>", "a@b", "<>" (null sender): angle brackets are removed. */
void	sess_set_sender(struct sess *, const char *, size_t);
void	sess_set_rcpt(struct sess *, const char *, size_t, int rejected);
void	sess_set_queue_id(struct sess *, const char *, size_t);
void	sess_set_command(struct sess *, const char *, size_t);
void	sess_set_header(struct sess *, const char *name, size_t nlen,
	    const char *value, size_t vlen);

/* Domain part of an address (after the last '@'), or "" when none. */
const char *sess_domain(const char *addr);

#endif

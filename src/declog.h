/*
 * declog.h - the decision line (DESIGN.md §5): queue id first, the
 * action, then rule, stage, client, port, helo, from, to, user, reply,
 * each present when known, client text escaped and bounded; with
 * daemon.log_privacy, addresses, logins and IPs as keyed digests.
 * Threads: pure; formats into the caller's buffer.
 */
#ifndef WARDEN_DECLOG_H
#define WARDEN_DECLOG_H

#include <stddef.h>
#include "engine.h"

/* Returns buf, always NUL-terminated; a line too long is cut. */
const char *declog_format(const struct engine_decision *, char *buf,
	    size_t len);

/* daemon.log_privacy: the key (store.key_secret) of the digests. */
struct declog_priv {
	const char	*key;
	size_t		keylen;
};

/*
 * The same line with daemon.log_privacy (priv NULL: as declog_format):
 * the client IP, from, to and user become log_digest()s ("hmac:" and 16
 * hex digits), the null sender stays from=<>. The reply of a rule is
 * its template expanded again with those digests as the values (d's
 * retry_ns for %{retry_after}). A HELO that is an IP literal shows the
 * digest of the address it names ("[hmac:...]", the client's own digest
 * in any spelling of the client's address); a HELO embedding the
 * client's address ("192-0-2-1.dsl.example") shows the client's digest
 * in place of the labels holding it; a private value found whole in the
 * HELO is replaced too. No line carries them in clear. Returns buf.
 */
const char *declog_format_priv(const struct engine_decision *,
	    const struct declog_priv *priv, char *buf, size_t len);

#endif

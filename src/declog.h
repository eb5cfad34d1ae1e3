/*
 * declog.h - the decision line (DESIGN.md §5): queue id first, the
 * action, then rule, stage, client, port, helo, from, to, user, reply,
 * each present when known, client text escaped and bounded.
 * Threads: pure; formats into the caller's buffer.
 */
#ifndef WARDEN_DECLOG_H
#define WARDEN_DECLOG_H

#include <stddef.h>
#include "engine.h"

/* Returns buf, always NUL-terminated; a line too long is cut. */
const char *declog_format(const struct engine_decision *, char *buf,
	    size_t len);

#endif

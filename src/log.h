/*
 * log.h - the one place that writes log lines: syslog, or stderr with the
 * same text prefixed "warden[PID]: " (DESIGN.md §5).
 * Owns: the sink switch, levels, escaping of client-supplied text, the
 * digests that replace it under daemon.log_privacy.
 * Not: what to log (the callers), counters (stats.c).
 * Threads: safe; each line is written with one write(2)/syslog(3) call.
 * Errors: logging never fails the caller; a line too long is cut with
 * a marker.
 */
#ifndef WARDEN_LOG_H
#define WARDEN_LOG_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

#define LOG_LINE_MAX	4096
#define LOG_ESC_MAX	512	/* escaped client text per field, at most */

enum log_sink {
	LOG_SINK_SYSLOG,
	LOG_SINK_STDERR,
};

/* syslog(3) priorities, named here so callers need not include syslog.h. */
enum log_level {
	LOGL_ERROR = 3,
	LOGL_WARNING = 4,
	LOGL_NOTICE = 5,
	LOGL_INFO = 6,
	LOGL_DEBUG = 7,
};

/* Returns the level/facility for a name ("info", "mail"), or -1. */
int	log_level_by_name(const char *);
int	log_facility_by_name(const char *);

/*
 * Chooses the sink. facility is a syslog LOG_* facility value (from
 * log_facility_by_name). Lines above max_level are dropped. May be called
 * again (reload); the default before any call is stderr at info.
 */
void	log_open(enum log_sink, const char *ident, int facility,
	    enum log_level max_level);
void	log_close(void);

/* 1 when a line at level would be written (to skip costly formatting). */
int	log_enabled(enum log_level);

/* fmt is ours, never client text: pass client text through log_esc. */
void	log_msg(enum log_level, const char *fmt, ...) PRINTF_LIKE(2, 3);
#define log_error(...)	log_msg(LOGL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOGL_WARNING, __VA_ARGS__)
#define log_notice(...)	log_msg(LOGL_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOGL_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOGL_DEBUG, __VA_ARGS__)

/*
 * A line that an outage or a shortage would write for every event it
 * hits: at most one a period, carrying the count of those it stands
 * for. Zero-initialised (static, or { 0 }); any thread.
 */
struct log_quiet {
	_Atomic int64_t	last;	/* now_ns of the last line let through */
	_Atomic uint64_t held;	/* events kept quiet since */
};

/*
 * 1: keep this event's line quiet (it is counted). 0: write it; *held
 * is then the count of events kept quiet since the last line. The first
 * event always gets its line. now_ns is monotonic and > 0.
 */
int	log_quiet(struct log_quiet *, int64_t now_ns, int64_t period_ns,
	    uint64_t *held);

/*
 * Escapes len bytes of untrusted s into dst: printable ASCII except '\\'
 * and '"' is kept, those two become "\\\\" and "\\\"", every other byte
 * "\\xNN". At most LOG_ESC_MAX input bytes are taken; longer input ends
 * with "...". Always NUL-terminates; returns dst.
 */
char	*log_esc(const char *s, size_t len, char *dst, size_t dstlen);

/* A dst size that always holds log_esc's output. */
#define LOG_ESC_BUF	(LOG_ESC_MAX * 4 + 8)

/*
 * daemon.log_privacy: what stands in a log line for a client's address,
 * login or IP. "hmac:" and the first LOG_DIGEST_HEX hex digits of
 * HMAC-SHA256(key, "log:" + the value with ASCII letters lower-cased).
 * Keyed, so nobody without store.key_secret can test guesses; stable
 * across restarts, so `warden hash` finds a given address in old logs;
 * lower-cased, so Alice@Example.COM and alice@example.com are one
 * digest. The "log:" prefix keeps these apart from the store's keyed
 * counter names (rule names cannot contain ':').
 */
#define LOG_DIGEST_HEX	16
#define LOG_DIGEST_BUF	(5 + LOG_DIGEST_HEX + 1)

/*
 * Writes the digest of len bytes of v into dst (LOG_DIGEST_BUF bytes at
 * least). Returns dst, or NULL (dst then holds "hmac:?") when OpenSSL
 * or memory failed or dstlen is too small.
 */
char	*log_digest(const char *key, size_t keylen, const char *v,
	    size_t len, char *dst, size_t dstlen);

#endif

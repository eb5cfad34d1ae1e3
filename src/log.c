/*
 * log.c - the only caller of syslog(3): one sink (syslog or stderr) that
 * writes the same text, levels, escaping of client-supplied bytes, and
 * the keyed digests that stand for them under daemon.log_privacy.
 * Owns: the sink state. Not: what is logged, counters (stats.c).
 * Threads: log_open/log_close and the sink write share one mutex; the
 * level check is one atomic load, so dropped lines cost no lock.
 * Memory: every line is formatted on the caller's stack; nothing is
 * allocated and no buffer is shared between threads.
 * Errors: none reach the caller; a failed write(2) drops the line, a
 * line longer than LOG_LINE_MAX is cut and ends with "...".
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "log.h"

/* log.h promises syslog's priorities without including syslog.h. */
_Static_assert(LOGL_ERROR == LOG_ERR, "LOGL_ERROR != LOG_ERR");
_Static_assert(LOGL_WARNING == LOG_WARNING, "LOGL_WARNING != LOG_WARNING");
_Static_assert(LOGL_NOTICE == LOG_NOTICE, "LOGL_NOTICE != LOG_NOTICE");
_Static_assert(LOGL_INFO == LOG_INFO, "LOGL_INFO != LOG_INFO");
_Static_assert(LOGL_DEBUG == LOG_DEBUG, "LOGL_DEBUG != LOG_DEBUG");

#define LOG_IDENT_MAX	32	/* longer idents are cut */
/* "IDENT[PID]: ": ident, brackets, a pid of up to 20 digits, ": ". */
#define LOG_PREFIX_MAX	(LOG_IDENT_MAX + 24)
#define LOG_MARK	"..."
#define LOG_MARK_LEN	3

/*
 * The sink is process-wide by nature, so this is the one mutable global
 * the conventions allow here: syslog(3) keeps a single ident and facility
 * per process, and fd 2 is shared by every thread. openlog(3) keeps the
 * ident pointer rather than a copy, so ident lives here and is changed
 * and read by syslog(3) only under lock. max_level is atomic so that
 * log_enabled and dropped lines never take the lock.
 */
static struct {
	pthread_mutex_t	lock;
	enum log_sink	sink;		/* under lock */
	int		syslog_open;	/* under lock: openlog done */
	char		ident[LOG_IDENT_MAX + 1]; /* under lock */
	atomic_int	max_level;
} log_state = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.sink = LOG_SINK_STDERR,
	.syslog_open = 0,
	.ident = "warden",
	.max_level = LOGL_INFO,
};

static const struct {
	const char	*name;
	int		 value;
} log_levels[] = {
	{ "error", LOGL_ERROR },
	{ "warning", LOGL_WARNING },
	{ "notice", LOGL_NOTICE },
	{ "info", LOGL_INFO },
	{ "debug", LOGL_DEBUG },
}, log_facilities[] = {
	/* The facilities a mail filter plausibly logs to; others are typos. */
	{ "mail", LOG_MAIL },
	{ "daemon", LOG_DAEMON },
	{ "user", LOG_USER },
	{ "local0", LOG_LOCAL0 },
	{ "local1", LOG_LOCAL1 },
	{ "local2", LOG_LOCAL2 },
	{ "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 },
	{ "local5", LOG_LOCAL5 },
	{ "local6", LOG_LOCAL6 },
	{ "local7", LOG_LOCAL7 },
};

int
log_level_by_name(const char *name)
{
	size_t i;

	if (name == NULL)
		return -1;
	for (i = 0; i < NELEM(log_levels); i++)
		if (strcmp(log_levels[i].name, name) == 0)
			return log_levels[i].value;
	return -1;
}

int
log_facility_by_name(const char *name)
{
	size_t i;

	if (name == NULL)
		return -1;
	for (i = 0; i < NELEM(log_facilities); i++)
		if (strcmp(log_facilities[i].name, name) == 0)
			return log_facilities[i].value;
	return -1;
}

void
log_open(enum log_sink sink, const char *ident, int facility,
    enum log_level max_level)
{
	if (ident == NULL || *ident == '\0')
		ident = "warden";
	pthread_mutex_lock(&log_state.lock);
	/* closelog first: syslog(3) must stop using the old ident. */
	if (log_state.syslog_open) {
		closelog();
		log_state.syslog_open = 0;
	}
	(void)str_copy(log_state.ident, sizeof(log_state.ident), ident,
	    strlen(ident));
	log_state.sink = sink;
	if (sink == LOG_SINK_SYSLOG) {
		/*
		 * LOG_NDELAY connects now, before a chroot or privilege
		 * drop could hide /dev/log from us.
		 */
		openlog(log_state.ident, LOG_PID | LOG_NDELAY, facility);
		log_state.syslog_open = 1;
	}
	atomic_store(&log_state.max_level, (int)max_level);
	pthread_mutex_unlock(&log_state.lock);
}

void
log_close(void)
{
	pthread_mutex_lock(&log_state.lock);
	if (log_state.syslog_open) {
		closelog();
		log_state.syslog_open = 0;
	}
	/* Lines logged after close (shutdown) still go somewhere. */
	log_state.sink = LOG_SINK_STDERR;
	pthread_mutex_unlock(&log_state.lock);
}

int
log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&log_state.max_level);
}

/*
 * Writes all of buf to fd 2. One write(2) call unless interrupted or
 * short, so lines of concurrent threads do not interleave.
 */
static void
log_write_stderr(const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		n = write(STDERR_FILENO, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;		/* nowhere left to report it */
		}
		buf += n;
		len -= (size_t)n;
	}
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	/* Prefix room, the text (LOG_LINE_MAX with its NUL), "\n". */
	char line[LOG_PREFIX_MAX + LOG_LINE_MAX + 1];
	char prefix[LOG_PREFIX_MAX + 1];
	char *text = line + LOG_PREFIX_MAX;
	size_t i, len;
	va_list ap;
	int n, p, saved_errno;

	if (!log_enabled(level))
		return;
	saved_errno = errno;	/* callers may log, then look at errno */

	va_start(ap, fmt);
	n = vsnprintf(text, LOG_LINE_MAX, fmt, ap);
	va_end(ap);
	if (n < 0) {
		(void)str_copy(text, LOG_LINE_MAX, "(unformattable log line)",
		    strlen("(unformattable log line)"));
		len = strlen(text);
	} else if ((size_t)n >= LOG_LINE_MAX) {
		len = LOG_LINE_MAX - 1;
		memcpy(text + len - LOG_MARK_LEN, LOG_MARK, LOG_MARK_LEN);
	} else
		len = (size_t)n;

	/*
	 * Defence in depth, as Postfix msg_output() does: client text should
	 * have gone through log_esc, but if a caller forgot, a CR or LF must
	 * still not forge a second log record.
	 */
	for (i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 ||
		    (unsigned char)text[i] > 0x7e)
			text[i] = '?';

	pthread_mutex_lock(&log_state.lock);
	if (log_state.sink == LOG_SINK_SYSLOG) {
		/* Under lock: syslog(3) reads the ident that log_open sets. */
		syslog((int)level, "%s", text);
		pthread_mutex_unlock(&log_state.lock);
		errno = saved_errno;
		return;
	}
	p = snprintf(prefix, sizeof(prefix), "%s[%ld]: ", log_state.ident,
	    (long)getpid());
	pthread_mutex_unlock(&log_state.lock);

	/* The prefix fits by construction; place it right before text. */
	if (p < 0 || (size_t)p >= sizeof(prefix))
		p = 0;
	memcpy(text - p, prefix, (size_t)p);
	text[len] = '\n';
	log_write_stderr(text - p, (size_t)p + len + 1);
	errno = saved_errno;
}

int
log_quiet(struct log_quiet *q, int64_t now, int64_t period, uint64_t *held)
{
	int64_t last = atomic_load(&q->last);

	/*
	 * A thread that loses the race to write the period's line is one
	 * more quiet event, so the next line's count stays exact.
	 */
	if ((last != 0 && now - last < period) ||
	    !atomic_compare_exchange_strong(&q->last, &last, now)) {
		atomic_fetch_add(&q->held, 1);
		return 1;
	}
	*held = atomic_exchange(&q->held, 0);
	return 0;
}

/*
 * Writes the escape for byte c into out (at least 5 bytes, no NUL) and
 * returns its length: 1, 2 ("\\\\", "\\\"") or 4 ("\\xNN").
 */
static size_t
log_esc_byte(unsigned char c, char *out)
{
	static const char hex[] = "0123456789abcdef";

	if (c == '\\' || c == '"') {
		out[0] = '\\';
		out[1] = (char)c;
		return 2;
	}
	if (c >= 0x20 && c <= 0x7e) {
		out[0] = (char)c;
		return 1;
	}
	out[0] = '\\';
	out[1] = 'x';
	out[2] = hex[c >> 4];
	out[3] = hex[c & 0x0f];
	return 4;
}

/*
 * Escapes are written whole or not at all. When the output is cut (input
 * over LOG_ESC_MAX, or dst too small) the "..." marker goes after the last
 * whole escape that leaves room for it; a dst under 4 bytes has no room
 * and then holds only the whole escapes that fit.
 */
char *
log_esc(const char *s, size_t len, char *dst, size_t dstlen)
{
	char esc[4];
	size_t cap, e, i, n, o, keep;

	if (dstlen == 0)
		return dst;		/* not even room for the NUL */
	if (s == NULL)
		len = 0;
	cap = dstlen - 1;		/* bytes before the NUL */
	n = len < LOG_ESC_MAX ? len : LOG_ESC_MAX;
	o = 0;
	keep = 0;	/* end of the last escape that leaves room for "..." */
	for (i = 0; i < n; i++) {
		e = log_esc_byte((unsigned char)s[i], esc);
		if (o + e > cap)
			break;
		memcpy(dst + o, esc, e);
		o += e;
		if (o + LOG_MARK_LEN <= cap)
			keep = o;
	}
	if (i < len && cap >= LOG_MARK_LEN) {
		memcpy(dst + keep, LOG_MARK, LOG_MARK_LEN);
		o = keep + LOG_MARK_LEN;
	}
	dst[o] = '\0';
	return dst;
}

/* Values this long are digested from the stack; longer ones (only from
 * `warden hash`: sessions cap addresses at 2 kB) take the heap. */
#define LOG_DIGEST_STACK	4096
#define LOG_DIGEST_PREFIX	"log:"

char *
log_digest(const char *key, size_t keylen, const char *v, size_t len,
    char *dst, size_t dstlen)
{
	static const char hex[] = "0123456789abcdef";
	const size_t plen = strlen(LOG_DIGEST_PREFIX);
	unsigned char md[EVP_MAX_MD_SIZE], stackbuf[LOG_DIGEST_STACK];
	unsigned char *in = stackbuf;
	unsigned int mdlen = 0;
	size_t i;
	char *rc = NULL;

	if (dstlen < LOG_DIGEST_BUF) {
		if (dstlen > 0)
			dst[0] = '\0';
		return NULL;
	}
	memcpy(dst, "hmac:?", 7);
	if (v == NULL)
		len = 0;
	if (len > sizeof(stackbuf) - plen &&
	    (len > SIZE_MAX - plen || (in = malloc(plen + len)) == NULL))
		return NULL;
	memcpy(in, LOG_DIGEST_PREFIX, plen);
	for (i = 0; i < len; i++)
		in[plen + i] = (unsigned char)(v[i] >= 'A' && v[i] <= 'Z' ?
		    v[i] - 'A' + 'a' : v[i]);
	if (keylen <= INT32_MAX && HMAC(EVP_sha256(), key, (int)keylen, in,
	    plen + len, md, &mdlen) != NULL && mdlen * 2 >= LOG_DIGEST_HEX) {
		for (i = 0; i < LOG_DIGEST_HEX / 2; i++) {
			dst[5 + 2 * i] = hex[md[i] >> 4];
			dst[5 + 2 * i + 1] = hex[md[i] & 15];
		}
		dst[5 + LOG_DIGEST_HEX] = '\0';
		rc = dst;
	}
	if (in != stackbuf)
		free(in);
	return rc;
}

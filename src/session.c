/*
 * session.c - bounded per-connection and per-transaction state.
 * Owns: copying untrusted MTA values into fixed buffers (cut values are
 * flagged in sess.truncated), resetting a transaction, and keeping a
 * session compact between events (struct sess_keep).
 * Not: policy. Threads: one caller at a time per session.
 * Memory: only sess_keep_* use the heap: one struct sess per connection
 * while a transaction is open; out of memory drops the transaction.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

void
sess_init(struct sess *s)
{
	memset(s, 0, offsetof(struct sess, sender));
	s->sender[0] = '\0';
	s->rcpt[0] = '\0';
	s->hdr_name[0] = '\0';
	s->hdr_value[0] = '\0';
}

void
sess_keep_init(struct sess_keep *k)
{
	/* An all-zero head is what sess_init leaves before the buffers. */
	k->full = NULL;
	memset(k->head, 0, sizeof(k->head));
}

void
sess_keep_fini(struct sess_keep *k)
{
	free(k->full);
	k->full = NULL;
}

/* The tail: empty strings, no tags (the head's ntags is 0 then). */
static void
clear_tail(struct sess *s)
{
	s->sender[0] = '\0';
	s->rcpt[0] = '\0';
	s->hdr_name[0] = '\0';
	s->hdr_value[0] = '\0';
}

struct sess *
sess_keep_open(struct sess_keep *k, struct sess *tmp)
{
	if (k->full != NULL)
		return k->full;
	memcpy(tmp, k->head, sizeof(k->head));
	clear_tail(tmp);
	return tmp;
}

static int
needs_tail(const struct sess *s)
{
	return s->has_sender || s->ntags > 0;
}

/*
 * Copies only the strings and tags in use: copying the whole struct
 * would make all of a fresh 13 kB allocation resident.
 */
static void
copy_tail(struct sess *dst, const struct sess *src)
{
	size_t i;

	str_copy(dst->sender, sizeof(dst->sender), src->sender,
	    strlen(src->sender));
	str_copy(dst->rcpt, sizeof(dst->rcpt), src->rcpt, strlen(src->rcpt));
	str_copy(dst->hdr_name, sizeof(dst->hdr_name), src->hdr_name,
	    strlen(src->hdr_name));
	str_copy(dst->hdr_value, sizeof(dst->hdr_value), src->hdr_value,
	    strlen(src->hdr_value));
	for (i = 0; i < src->ntags && i < SESS_TAGS_MAX; i++) {
		dst->tags[i].rule = src->tags[i].rule;
		str_copy(dst->tags[i].hdr_name, sizeof(dst->tags[i].hdr_name),
		    src->tags[i].hdr_name, strlen(src->tags[i].hdr_name));
		str_copy(dst->tags[i].hdr_value,
		    sizeof(dst->tags[i].hdr_value), src->tags[i].hdr_value,
		    strlen(src->tags[i].hdr_value));
	}
}

int
sess_keep_close(struct sess_keep *k, struct sess *s)
{
	struct sess *full;

	if (s == k->full) {
		if (needs_tail(s))
			return 0;
		/* Transaction over: back to the head alone. */
		memcpy(k->head, s, sizeof(k->head));
		free(k->full);
		k->full = NULL;
		return 0;
	}
	if (!needs_tail(s)) {
		memcpy(k->head, s, sizeof(k->head));
		return 0;
	}
	if ((full = malloc(sizeof(*full))) == NULL) {
		sess_reset_msg(s);
		s->ntags = s->nconn_tags = 0;
		memcpy(k->head, s, sizeof(k->head));
		return -1;
	}
	memcpy(full, s, sizeof(k->head));
	copy_tail(full, s);
	k->full = full;
	return 0;
}

void
sess_reset_msg(struct sess *s)
{
	s->queue_id[0] = '\0';
	s->has_sender = 0;
	s->sender[0] = '\0';
	s->size = 0;
	s->rcpt[0] = '\0';
	s->rcpt_rejected = 0;
	s->rcpt_count = 0;
	s->hdr_name[0] = '\0';
	s->hdr_value[0] = '\0';
	s->msg_accepted = 0;
	s->quarantine = NULL;
	/* Tags flagged at connect/helo stay for every message. */
	s->ntags = s->nconn_tags;
}

static void
set(struct sess *s, char *dst, size_t cap, const char *v, size_t len,
    unsigned flag)
{
	if (v == NULL) {
		dst[0] = '\0';
		return;
	}
	if (str_copy(dst, cap, v, len))
		s->truncated |= flag;
}

void
sess_set_client(struct sess *s, const char *ip, size_t len, unsigned port)
{
	set(s, s->client_ip, sizeof(s->client_ip), ip, len, SF_OTHER);
	s->client_port = port;
	memset(&s->ip, 0, sizeof(s->ip));
	if (ip == NULL || match_ip_parse(ip, len, &s->ip) != 0)
		s->ip.family = 0;
	else
		/* Log and key the canonical form: "[::ffff:1.2.3.4]" -> v4. */
		match_ip_format(&s->ip, s->client_ip, sizeof(s->client_ip));
}

void
sess_set_client_name(struct sess *s, const char *v, size_t len)
{
	set(s, s->client_name, sizeof(s->client_name), v, len, SF_CLIENT_NAME);
}

void
sess_set_daemon(struct sess *s, const char *v, size_t len)
{
	set(s, s->daemon, sizeof(s->daemon), v, len, SF_DAEMON);
}

void
sess_set_helo(struct sess *s, const char *v, size_t len)
{
	set(s, s->helo, sizeof(s->helo), v, len, SF_HELO);
}

void
sess_set_tls(struct sess *s, const char *version, size_t len,
    int cipher_bits)
{
	s->tls = version != NULL && len > 0;
	set(s, s->tls_version, sizeof(s->tls_version), version, len, SF_OTHER);
	s->cipher_bits = s->tls && cipher_bits > 0 ? cipher_bits : 0;
}

void
sess_set_auth(struct sess *s, const char *user, size_t ulen,
    const char *mech, size_t mlen)
{
	s->auth = user != NULL && ulen > 0;
	set(s, s->auth_user, sizeof(s->auth_user), user, ulen, SF_AUTH_USER);
	set(s, s->auth_mech, sizeof(s->auth_mech), mech, mlen, SF_OTHER);
}

/* Strips one pair of angle brackets: "<a@b>" -> "a@b", "<>" -> "". */
static void
set_addr(struct sess *s, char *dst, size_t cap, const char *v, size_t len,
    unsigned flag)
{
	const char *at;
	size_t dlen, keep;

	if (v != NULL && len >= 2 && v[0] == '<' && v[len - 1] == '>') {
		v++;
		len -= 2;
	}
	if (v == NULL || len < cap) {
		set(s, dst, cap, v, len, flag);
		return;
	}
	/*
	 * Too long: cut the local part, keep "@domain". Otherwise a long
	 * local part would push the domain out, and rcpt_domain keys and
	 * domain patterns (an owner map's @domain) would see another
	 * address than the client gave.
	 */
	s->truncated |= flag;
	at = memrchr(v, '@', len);
	dlen = at != NULL ? len - (size_t)(at - v) : 0;
	if (at == NULL || dlen > cap / 2) {
		str_copy(dst, cap, v, len);
		return;
	}
	keep = cap - 1 - dlen;
	memcpy(dst, v, keep);
	memcpy(dst + keep, at, dlen);
	dst[cap - 1] = '\0';
}

void
sess_set_sender(struct sess *s, const char *v, size_t len)
{
	s->has_sender = v != NULL;
	set_addr(s, s->sender, sizeof(s->sender), v, len, SF_SENDER);
}

void
sess_set_rcpt(struct sess *s, const char *v, size_t len, int rejected)
{
	set_addr(s, s->rcpt, sizeof(s->rcpt), v, len, SF_RCPT);
	s->rcpt_rejected = rejected != 0;
}

void
sess_set_queue_id(struct sess *s, const char *v, size_t len)
{
	set(s, s->queue_id, sizeof(s->queue_id), v, len, SF_OTHER);
}

void
sess_set_command(struct sess *s, const char *v, size_t len)
{
	size_t n = 0;

	/*
	 * Rules test the verb: Postfix passes only the verb, Sendmail the
	 * whole line ("EXPN root"); keep what both have in common.
	 */
	while (v != NULL && n < len && v[n] != ' ' && v[n] != '\t' &&
	    v[n] != '\0')
		n++;
	set(s, s->command, sizeof(s->command), v, n, SF_COMMAND);
}

void
sess_set_header(struct sess *s, const char *name, size_t nlen,
    const char *value, size_t vlen)
{
	set(s, s->hdr_name, sizeof(s->hdr_name), name, nlen, SF_HEADER);
	set(s, s->hdr_value, sizeof(s->hdr_value), value, vlen, SF_HEADER);
}

const char *
sess_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

/*
 * session.c - bounded per-connection and per-transaction state.
 * Owns: copying untrusted MTA values into fixed buffers (cut values are
 * flagged in sess.truncated), resetting a transaction, and keeping a
 * session compact between events (struct sess_keep).
 * Not: policy. Threads: one caller at a time per session.
 * Memory: only sess_keep_* use the heap: a connection's transaction
 * strings and tags, packed, while a transaction is open; out of memory
 * drops the transaction and marks it lost (sess_lost).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

void
sess_init(struct sess *s)
{
	memset(s, 0, SESS_HEAD_SIZE);
	s->command[0] = '\0';
	s->sender[0] = '\0';
	s->rcpt[0] = '\0';
	s->hdr_name[0] = '\0';
	s->hdr_value[0] = '\0';
}

void
sess_keep_init(struct sess_keep *k)
{
	/* An all-zero head is what sess_init leaves before the buffers. */
	k->tail = NULL;
	k->tailcap = 0;
	k->grow = realloc;
	memset(k->head, 0, sizeof(k->head));
}

void
sess_keep_fini(struct sess_keep *k)
{
	free(k->tail);
	k->tail = NULL;
	k->tailcap = 0;
}

/* The tail's strings, in packing order, and their caps. */
#define TAIL_STRS	4
static void
tail_strs(struct sess *s, char *v[TAIL_STRS], size_t cap[TAIL_STRS])
{
	v[0] = s->sender;
	cap[0] = sizeof(s->sender);
	v[1] = s->rcpt;
	cap[1] = sizeof(s->rcpt);
	v[2] = s->hdr_name;
	cap[2] = sizeof(s->hdr_name);
	v[3] = s->hdr_value;
	cap[3] = sizeof(s->hdr_value);
}

/* Copies one NUL-terminated string from *p into dst, bounded. */
static void
unpack_str(const unsigned char **p, const unsigned char *end, char *dst,
    size_t cap)
{
	size_t n = strnlen((const char *)*p, (size_t)(end - *p));

	str_copy(dst, cap, (const char *)*p, n);
	*p += n < (size_t)(end - *p) ? n + 1 : n;
}

struct sess *
sess_keep_open(struct sess_keep *k, struct sess *tmp)
{
	const unsigned char *p = k->tail, *end;
	char *v[TAIL_STRS];
	size_t cap[TAIL_STRS], i;

	memcpy(tmp, k->head, sizeof(k->head));
	tmp->command[0] = '\0';
	tail_strs(tmp, v, cap);
	for (i = 0; i < TAIL_STRS; i++)
		v[i][0] = '\0';
	if (p == NULL) {
		tmp->ntags = 0;		/* kept only with a tail */
		return tmp;
	}
	end = k->tail + k->tailcap;
	for (i = 0; i < TAIL_STRS; i++)
		unpack_str(&p, end, v[i], cap[i]);
	for (i = 0; i < tmp->ntags && i < SESS_TAGS_MAX; i++) {
		struct sess_tag *t = &tmp->tags[i];

		if ((size_t)(end - p) < sizeof(t->rule))
			break;		/* cannot happen: we packed it */
		memcpy(&t->rule, p, sizeof(t->rule));
		p += sizeof(t->rule);
		unpack_str(&p, end, t->hdr_name, sizeof(t->hdr_name));
		unpack_str(&p, end, t->hdr_value, sizeof(t->hdr_value));
	}
	tmp->ntags = i;
	return tmp;
}

static void
pack_str(unsigned char **p, const char *v, size_t cap)
{
	size_t n = strnlen(v, cap - 1);

	memcpy(*p, v, n);
	(*p)[n] = '\0';
	*p += n + 1;
}

int
sess_keep_close(struct sess_keep *k, struct sess *s)
{
	char *v[TAIL_STRS];
	size_t cap[TAIL_STRS], need = 0, i, ntags;
	unsigned char *p, *nt;

	ntags = s->ntags < SESS_TAGS_MAX ? s->ntags : SESS_TAGS_MAX;
	if (!s->has_sender && ntags == 0) {
		/* No transaction, no tag: the head alone. */
		memcpy(k->head, s, sizeof(k->head));
		sess_keep_fini(k);
		return 0;
	}
	tail_strs(s, v, cap);
	for (i = 0; i < TAIL_STRS; i++)
		need += strnlen(v[i], cap[i] - 1) + 1;
	for (i = 0; i < ntags; i++)
		need += sizeof(s->tags[i].rule) +
		    strnlen(s->tags[i].hdr_name, SESS_HDR_NAME_MAX - 1) + 1 +
		    strnlen(s->tags[i].hdr_value, SESS_TAG_MAX - 1) + 1;
	/* Grown, never shrunk, until the transaction ends. */
	if (need > k->tailcap) {
		if ((nt = k->grow(k->tail, need)) == NULL) {
			sess_reset_msg(s);
			s->ntags = s->nconn_tags = 0;
			/* After the reset, which clears it. */
			s->msg_lost = 1;
			memcpy(k->head, s, sizeof(k->head));
			sess_keep_fini(k);
			return -1;
		}
		k->tail = nt;
		k->tailcap = need;
	}
	p = k->tail;
	for (i = 0; i < TAIL_STRS; i++)
		pack_str(&p, v[i], cap[i]);
	for (i = 0; i < ntags; i++) {
		memcpy(p, &s->tags[i].rule, sizeof(s->tags[i].rule));
		p += sizeof(s->tags[i].rule);
		pack_str(&p, s->tags[i].hdr_name, SESS_HDR_NAME_MAX);
		pack_str(&p, s->tags[i].hdr_value, SESS_TAG_MAX);
	}
	s->ntags = ntags;
	memcpy(k->head, s, sizeof(k->head));
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
	s->msg_lost = 0;
	s->quarantine = NULL;
	/* Tags flagged at connect/helo stay for every message. */
	s->ntags = s->nconn_tags;
}

int
sess_lost(const struct sess *s, enum stage st)
{
	return s->msg_lost && (st == STAGE_ENVRCPT || st == STAGE_DATA ||
	    st == STAGE_HEADER || st == STAGE_EOM);
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

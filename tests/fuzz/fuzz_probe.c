/*
 * fuzz_probe.c - libFuzzer target: the SMTP reply parser of `warden
 * probe`, as the client uses it (reply after reply from one byte stream),
 * then capabilities and every verdict on each complete reply. Byte 0
 * picks a chunk size: the stream fed in chunks must give the same
 * replies as fed whole (checked, abort on a difference).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feeds buf from off in chunks of step; returns rc, *used_out bytes. */
static int
feed(struct probe_reply *r, const char *buf, size_t len, size_t step,
    size_t *used_out)
{
	size_t off = 0, n, used;
	int rc = 0;

	while (off < len) {
		n = len - off < step ? len - off : step;
		rc = probe_reply_feed(r, buf + off, n, &used);
		off += used;
		if (rc != 0)
			break;
	}
	*used_out = off;
	return rc;
}

static void
judge_all(const struct probe_reply *r, const struct probe_reply *prev,
    struct probe_caps *caps, struct probe_caps *prevcaps)
{
	struct probe_judgement j;
	char d[512];

	(void)probe_caps_parse(r, caps);
	probe_caps_diff(prevcaps, caps, d, sizeof(d));
	(void)probe_caps_mech(caps, "PLAIN");
	probe_judge_banner(r, &j);
	probe_judge_ehlo(r, &j);
	probe_judge_auth_offer(caps, 0, 1, &j);
	probe_judge_auth_offer(caps, 1, 0, &j);
	probe_judge_starttls(r, 0, 0, &j);
	probe_judge_caps_change(prevcaps, caps, &j);
	probe_judge_auth(r, &j);
	probe_judge_vrfy(r, &j);
	probe_judge_vrfy_unknown(prev, r, &j);
	probe_judge_expn(r, &j);
	probe_judge_mail(r, &j);
	probe_judge_rcpt(r, &j);
	probe_judge_relay(r, 0, &j);
	probe_judge_expect(r, 250, "x", &j);
	probe_judge_codes(r, 1, &j);
	(void)strlen(probe_reply_text(r));
	*prevcaps = *caps;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct probe_reply *a, *b, *prev;
	struct probe_caps caps, prevcaps;
	const char *buf = (const char *)data + 1;
	size_t len, step, off = 0, ua, ub;
	int ra, rb;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	len = size - 1;
	a = malloc(sizeof(*a));
	b = malloc(sizeof(*b));
	prev = malloc(sizeof(*prev));
	if (a == NULL || b == NULL || prev == NULL)
		goto out;
	memset(&prevcaps, 0, sizeof(prevcaps));
	probe_reply_init(prev);
	while (off < len) {
		probe_reply_init(a);
		probe_reply_init(b);
		ra = feed(a, buf + off, len - off, len - off, &ua);
		rb = feed(b, buf + off, len - off, step, &ub);
		if (ra != rb || ua != ub || a->code != b->code ||
		    a->nlines != b->nlines || (ra == 1 &&
		    memcmp(a->enh, b->enh, sizeof(a->enh)) != 0))
			abort();
		if (ra != 1)
			break;
		for (size_t i = 0; i < a->nlines; i++)
			if (a->len[i] != strlen(a->text[i]) ||
			    strcmp(a->text[i], b->text[i]) != 0)
				abort();
		judge_all(a, prev, &caps, &prevcaps);
		memcpy(prev, a, sizeof(*prev));
		off += ua;
	}
out:
	free(a);
	free(b);
	free(prev);
	return 0;
}

/*
 * fuzz_reply.c - libFuzzer target: reply parsing, linting, expansion and
 * formatting. Byte 0 picks the stage, byte 1 the action; the rest up to a
 * NUL is the reply (lines split at '\n'); what follows the NUL feeds the
 * template values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reply_ctx ctx = { "fuzz", 1, STAGE_ENVRCPT, ACTION_REJECT };
	const char *lines[REPLY_LINES_MAX + 8];
	struct reply_vars vars;
	struct reply_out *out;
	struct reply r;
	struct diag d;
	char *buf, *p, *v, fmt[2048];
	size_t n = 0, i;

	if (size < 2 || (buf = malloc(size + 1)) == NULL)
		return 0;
	ctx.stage = data[0] % STAGE_COUNT;
	ctx.action = data[1] % ACTION_COUNT;
	memcpy(buf, data + 2, size - 2);
	buf[size - 2] = '\0';
	v = buf + strlen(buf) + 1 <= buf + size - 2 ? buf + strlen(buf) + 1 :
	    buf + strlen(buf);
	for (p = buf; n < NELEM(lines); ) {
		lines[n++] = p;
		if ((p = strchr(p, '\n')) == NULL)
			break;
		*p++ = '\0';
	}
	diag_init(&d);
	out = malloc(sizeof(*out));
	if (out != NULL && reply_parse(&r, lines, n, &ctx, &d) == 0) {
		for (i = 0; i < RVAR_COUNT; i++)
			vars.v[i] = v;
		reply_expand(&r, &vars, out);
		reply_out_format(out, "\r\n", fmt, sizeof(fmt));
		reply_out_format_log(out, fmt, sizeof(fmt));
		for (i = 0; i < out->nlines; i++)
			reply_milter_esc(out->line[i], fmt, sizeof(fmt));
		reply_fini(&r);
	}
	if (out != NULL && reply_tmpl_parse(&r, lines[0], &ctx, &d) == 0)
		reply_fini(&r);
	diag_fini(&d);
	free(out);
	free(buf);
	return 0;
}

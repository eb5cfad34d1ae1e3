/*
 * nullmilter_full.c - the "null milter" contender of postfix_bench.sh:
 * a libmilter milter that answers continue to everything and asks for
 * everything, the way a naive milter written without xxfi_negotiate
 * tuning behaves. Compare tests/bench/nullmilter.c (the null-policy
 * milter), which negotiates headers, body and unknown commands away.
 * Owns: nothing but the protocol; no state, no allocation.
 * It asks for no SMFIP_NO* and no SMFIP_NR_* step, so Postfix sends the
 * headers one by one, end of headers, the body, and waits for a reply to
 * each (no delayed-ACK/Nagle stall: every packet gets an answer).
 * Threads: libmilter's; the callbacks touch no shared state.
 * Usage: nullmilter_full PORT (listens on inet:PORT@127.0.0.1); SIGTERM,
 * SIGINT or SIGHUP stop it. Exits 0 when stopped, 1 on a usage or
 * listen error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmilter/mfapi.h>

static sfsistat
f_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	(void)ctx;
	(void)f0;
	(void)f1;
	(void)f2;
	(void)f3;
	/* No modification actions; every step, each with a reply. */
	*pf0 = *pf1 = *pf2 = *pf3 = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
f_connect(SMFICTX *ctx, char *host, struct sockaddr *sa)
{
	(void)ctx;
	(void)host;
	(void)sa;
	return SMFIS_CONTINUE;
}

static sfsistat
f_helo(SMFICTX *ctx, char *helo)
{
	(void)ctx;
	(void)helo;
	return SMFIS_CONTINUE;
}

/* envfrom, envrcpt and unknown share a signature and an answer. */
static sfsistat
f_argv(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat
f_unknown(SMFICTX *ctx, const char *cmd)
{
	(void)ctx;
	(void)cmd;
	return SMFIS_CONTINUE;
}

static sfsistat
f_header(SMFICTX *ctx, char *name, char *value)
{
	(void)ctx;
	(void)name;
	(void)value;
	return SMFIS_CONTINUE;
}

static sfsistat
f_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	(void)ctx;
	(void)chunk;
	(void)len;
	return SMFIS_CONTINUE;
}

/* data, eoh and eom. */
static sfsistat
f_step(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static struct smfiDesc desc = {
	.xxfi_name = "nullmilter_full",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = 0,
	.xxfi_connect = f_connect,
	.xxfi_helo = f_helo,
	.xxfi_envfrom = f_argv,
	.xxfi_envrcpt = f_argv,
	.xxfi_header = f_header,
	.xxfi_eoh = f_step,
	.xxfi_body = f_body,
	.xxfi_eom = f_step,
	.xxfi_unknown = f_unknown,
	.xxfi_data = f_step,
	.xxfi_negotiate = f_negotiate,
};

int
main(int argc, char **argv)
{
	char conn[64];
	char *end;
	long port;

	if (argc != 2) {
		fprintf(stderr, "usage: nullmilter_full PORT\n");
		return 1;
	}
	port = strtol(argv[1], &end, 10);
	if (*argv[1] == '\0' || *end != '\0' || port < 1 || port > 65535) {
		fprintf(stderr, "nullmilter_full: bad port %s\n", argv[1]);
		return 1;
	}
	snprintf(conn, sizeof(conn), "inet:%ld@127.0.0.1", port);
	if (smfi_setconn(conn) != MI_SUCCESS ||
	    smfi_settimeout(7210) != MI_SUCCESS ||
	    smfi_register(desc) != MI_SUCCESS ||
	    smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "nullmilter_full: cannot listen on %s\n", conn);
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}

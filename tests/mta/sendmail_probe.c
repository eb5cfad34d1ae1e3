/*
 * sendmail_probe.c - a milter that only reports what the MTA sends it
 * (tests/mta/sendmail.sh builds and chains it after warden on one
 * listener). Owns: nothing but its stdout. Never rejects anything.
 * Each callback prints one line: "probe STAGE [ARG] {macro}=value ...",
 * listing every macro of a fixed set that smfi_getsymval returns at that
 * point (libmilter keeps the macros of earlier stages of the session, so
 * the first line a macro appears on is the stage that sent it). It asks
 * for SMFIP_RCPT_REJ, so recipients the MTA refused show too, and sets
 * no symbol list: it sees the MTA's configured macro lists.
 * Usage: sendmail_probe inet:PORT@127.0.0.1
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmilter/mfapi.h>

static const char *names[] = {
	"j", "_", "i", "{daemon_name}", "{daemon_port}", "{daemon_addr}",
	"{if_name}", "{if_addr}", "{client_addr}", "{client_port}",
	"{client_name}", "{tls_version}", "{cipher}", "{cipher_bits}",
	"{auth_type}", "{auth_authen}", "{auth_ssf}", "{mail_mailer}",
	"{mail_addr}", "{rcpt_mailer}", "{rcpt_host}", "{rcpt_addr}",
	"{msg_id}",
};

static void
report(SMFICTX *ctx, const char *stage, const char *arg)
{
	char line[4096];
	size_t i, at;
	const char *v;

	at = (size_t)snprintf(line, sizeof(line), "probe %s", stage);
	if (arg != NULL && at < sizeof(line))
		at += (size_t)snprintf(line + at, sizeof(line) - at, " [%s]",
		    arg);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		v = smfi_getsymval(ctx, (char *)names[i]);
		if (v != NULL && at < sizeof(line))
			at += (size_t)snprintf(line + at, sizeof(line) - at,
			    " %s=%s", names[i], v);
	}
	/* one write per line: callbacks run on several threads */
	if (at >= sizeof(line))
		at = sizeof(line) - 1;
	line[at] = '\n';
	fwrite(line, 1, at + 1, stdout);
	fflush(stdout);
}

static sfsistat
p_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	(void)ctx;
	(void)f0;
	(void)f2;
	(void)f3;
	*pf0 = 0;
	*pf1 = f1 & SMFIP_RCPT_REJ;
	*pf2 = *pf3 = 0;
	return SMFIS_CONTINUE;
}

static sfsistat
p_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	(void)sa;
	report(ctx, "connect", host);
	return SMFIS_CONTINUE;
}

static sfsistat
p_helo(SMFICTX *ctx, char *helo)
{
	report(ctx, "helo", helo);
	return SMFIS_CONTINUE;
}

static sfsistat
p_envfrom(SMFICTX *ctx, char **argv)
{
	report(ctx, "envfrom", argv[0]);
	return SMFIS_CONTINUE;
}

static sfsistat
p_envrcpt(SMFICTX *ctx, char **argv)
{
	report(ctx, "envrcpt", argv[0]);
	return SMFIS_CONTINUE;
}

static sfsistat
p_data(SMFICTX *ctx)
{
	report(ctx, "data", NULL);
	return SMFIS_CONTINUE;
}

static sfsistat
p_unknown(SMFICTX *ctx, const char *cmd)
{
	report(ctx, "unknown", cmd);
	return SMFIS_CONTINUE;
}

static sfsistat
p_eom(SMFICTX *ctx)
{
	report(ctx, "eom", NULL);
	return SMFIS_CONTINUE;
}

static sfsistat
p_abort(SMFICTX *ctx)
{
	report(ctx, "abort", NULL);
	return SMFIS_CONTINUE;
}

static sfsistat
p_close(SMFICTX *ctx)
{
	(void)ctx;
	fputs("probe close\n", stdout);
	fflush(stdout);
	return SMFIS_CONTINUE;
}

int
main(int argc, char **argv)
{
	struct smfiDesc d = {
		.xxfi_name = "probe",
		.xxfi_version = SMFI_VERSION,
		.xxfi_flags = 0,
		.xxfi_connect = p_connect,
		.xxfi_helo = p_helo,
		.xxfi_envfrom = p_envfrom,
		.xxfi_envrcpt = p_envrcpt,
		.xxfi_eom = p_eom,
		.xxfi_abort = p_abort,
		.xxfi_close = p_close,
		.xxfi_unknown = p_unknown,
		.xxfi_data = p_data,
		.xxfi_negotiate = p_negotiate,
	};

	if (argc != 2) {
		fprintf(stderr, "usage: sendmail_probe SOCKET\n");
		return 2;
	}
	if (smfi_setconn(argv[1]) != MI_SUCCESS ||
	    smfi_register(d) != MI_SUCCESS) {
		fprintf(stderr, "sendmail_probe: cannot use %s\n", argv[1]);
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}

/*
 * main.c - the warden command line (DESIGN.md §8): run, check, explain,
 * probe, hash, version. The only place that calls exit() and reads the clock
 * for the offline commands (and probe's deadlines).
 * Owns: argument parsing, exit codes (0 ok, 1 config/check failure,
 * 2 usage, 3 runtime), the `check` summary and `explain` walk.
 * Not: policy (engine.c), the milter (milter.c).
 * Errors: config problems print as FILE:LINE: message on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "config.h"
#include "explain.h"
#include "milter.h"
#include "probe.h"

#define DEFAULT_CONF	"/etc/warden/warden.conf"
#define WARDEN_VERSION	"0.1.0"

enum {
	EXIT_OK = 0,
	EXIT_CONFIG = 1,
	EXIT_USAGE = 2,
	EXIT_RUNTIME = 3,
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: warden run     [-c FILE]\n"
	    "       warden check   [-c FILE]\n"
	    "       warden explain [-c FILE] NAME=VALUE...\n"
	    "       warden probe   HOST[:PORT] [--starttls | --tls] "
	    "[--auth USER:PASS] ...\n"
	    "       warden hash    [-c FILE] VALUE...\n"
	    "       warden version\n"
	    "FILE defaults to " DEFAULT_CONF ".\n"
	    "explain names: client client_name port daemon helo sender rcpt\n"
	    "  rcpt_rejected auth_user auth_mech tls cipher_bits size command\n"
	    "  header (rcpt, rcpt_rejected, command and header repeat)\n");
}

/* The monotonic clock for probe's deadlines, in milliseconds. */
static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * `warden hash`: the digest that daemon.log_privacy writes for each
 * VALUE (an address, login or client IP), one a line, so a postmaster
 * can grep old logs for it. Exit 0, or 1 when the config does not load
 * or has no store.key_secret.
 */
static int
hash_main(const char *conf, int argc, char **argv)
{
	char dig[LOG_DIGEST_BUF];
	struct config *c;
	struct diag d;
	int i, rc = EXIT_OK;

	diag_init(&d);
	c = config_load(conf, &d);
	if (c == NULL)
		diag_print(&d, stderr);
	diag_fini(&d);
	if (c == NULL)
		return EXIT_CONFIG;
	if (c->store.key_secret[0] == '\0') {
		fprintf(stderr, "warden hash: %s: store.key_secret is empty: "
		    "log lines carry no digests\n", conf);
		config_free(c);
		return EXIT_CONFIG;
	}
	for (i = 0; i < argc && rc == EXIT_OK; i++) {
		if (log_digest(c->store.key_secret,
		    strlen(c->store.key_secret), argv[i], strlen(argv[i]),
		    dig, sizeof(dig)) == NULL) {
			fprintf(stderr, "warden hash: cannot compute the "
			    "digest\n");
			rc = EXIT_RUNTIME;
		} else
			printf("%s\n", dig);
	}
	config_free(c);
	return rc;
}

/* Takes "-c FILE" off the front of argv; returns the index after it. */
static int
conf_opt(int argc, char **argv, int i, const char **conf)
{
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			*conf = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "-c", 2) == 0 && argv[i][2]) {
			*conf = argv[i] + 2;
			i++;
		} else if (strcmp(argv[i], "--") == 0)
			return i + 1;
		else
			return -1;
	}
	return i;
}

int
main(int argc, char **argv)
{
	const char *conf = DEFAULT_CONF, *cmd;
	struct timespec ts;
	int i;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("warden %s\n", WARDEN_VERSION);
		return EXIT_OK;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	/* exit 0 no problem, 1 problems, 2 usage, 3 unreachable (§8) */
	if (strcmp(cmd, "probe") == 0)
		return probe_main(argc - 2, argv + 2, mono_ms, time(NULL),
		    stdout, stderr);
	if ((i = conf_opt(argc, argv, 2, &conf)) < 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(cmd, "check") == 0) {
		if (i != argc) {
			usage(stderr);
			return EXIT_USAGE;
		}
		return check_main(conf, stdout, stderr) == 0 ? EXIT_OK :
		    EXIT_CONFIG;
	}
	if (strcmp(cmd, "explain") == 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		switch (explain_main(conf, argc - i, argv + i,
		    (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec, stdout,
		    stderr)) {
		case 0:
			return EXIT_OK;
		case 2:
			usage(stderr);
			return EXIT_USAGE;
		default:
			return EXIT_CONFIG;
		}
	}
	if (strcmp(cmd, "hash") == 0) {
		if (i == argc) {
			usage(stderr);
			return EXIT_USAGE;
		}
		return hash_main(conf, argc - i, argv + i);
	}
	if (strcmp(cmd, "run") == 0) {
		if (i != argc) {
			usage(stderr);
			return EXIT_USAGE;
		}
		return milter_run(conf);
	}
	fprintf(stderr, "warden: unknown command \"%s\"\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}

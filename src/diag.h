/*
 * diag.h - collected configuration diagnostics (errors and warnings).
 * Owns: the list of FILE:LINE: messages a load produced, and printing it.
 * Not: deciding what is wrong; config.c, rules.c and reply.c do that.
 * Threads: one diag per load; not shared.
 * Errors: never fails the caller: past DIAG_MAX entries it only counts.
 * Messages are bounded (DIAG_MSG_MAX); longer ones are cut.
 */
#ifndef WARDEN_DIAG_H
#define WARDEN_DIAG_H

#include <stdio.h>
#include "util.h"

#define DIAG_MSG_MAX	320
#define DIAG_FILE_MAX	512
#define DIAG_MAX	1000

enum diag_sev {
	DIAG_ERROR,
	DIAG_WARNING,
};

struct diag_entry {
	enum diag_sev	sev;
	int		line;			/* 0: none */
	char		file[DIAG_FILE_MAX];	/* "": none */
	char		msg[DIAG_MSG_MAX];
};

struct diag {
	struct diag_entry *v;
	size_t		n, cap;
	size_t		errors, warnings;	/* including dropped ones */
	size_t		dropped;
};

void	diag_init(struct diag *);
void	diag_fini(struct diag *);
void	diag_add(struct diag *, enum diag_sev, const char *file, int line,
	    const char *fmt, ...) PRINTF_LIKE(5, 6);
#define diag_err(d, f, l, ...)	diag_add((d), DIAG_ERROR, (f), (l), __VA_ARGS__)
#define diag_warn(d, f, l, ...)	diag_add((d), DIAG_WARNING, (f), (l), __VA_ARGS__)

/*
 * Prints every entry as "FILE:LINE: message" (errors) or
 * "FILE:LINE: warning: message", in the order they were found.
 */
void	diag_print(const struct diag *, FILE *);

/* Formats entry i into buf as diag_print would; returns buf. */
const char *diag_format(const struct diag *, size_t i, char *buf, size_t len);

#endif

/*
 * explain.h - `warden explain`: evaluate one session offline and print,
 * per stage, each rule's outcome and why, and the final verdict.
 * Returns 0 when the config loaded (whatever the verdict), 1 on config
 * errors, 2 on usage errors. now is the wall clock in ns.
 */
#ifndef WARDEN_EXPLAIN_H
#define WARDEN_EXPLAIN_H

#include <stdint.h>
#include <stdio.h>

int	explain_main(const char *conf, int argc, char **argv, int64_t now,
	    FILE *out, FILE *err);

#endif

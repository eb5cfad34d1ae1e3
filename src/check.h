/*
 * check.h - `warden check`: load the config and rules, print every
 * diagnostic as FILE:LINE: message, a summary, and the Postfix and
 * Sendmail macro lines the rules need (DESIGN.md §8).
 * Errors: returns 0 when the config loaded with no error, -1 otherwise.
 */
#ifndef WARDEN_CHECK_H
#define WARDEN_CHECK_H

#include <stdio.h>

int	check_main(const char *conf, FILE *out, FILE *err);

#endif

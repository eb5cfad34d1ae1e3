/*
 * milter.h - `warden run`: serve the milter protocol (libmilter).
 * Returns the process exit code (0 clean stop, 1 config, 3 runtime).
 */
#ifndef WARDEN_MILTER_H
#define WARDEN_MILTER_H

int	milter_run(const char *conf);

#endif

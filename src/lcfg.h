/*
 * lcfg.h - libconfig helpers shared by config.c and rules.c: parse a
 * buffer with FILE:LINE errors, strict typed getters, unknown-key checks,
 * and rendering a setting's value as written (for explain).
 * Owns: nothing beyond the call. Threads: none shared. Errors: into a
 * struct diag; never aborts on input.
 */
#ifndef WARDEN_LCFG_H
#define WARDEN_LCFG_H

#include <libconfig.h>
#include "diag.h"

#define LCFG_NEST_MAX	64	/* deeper input is refused before parsing */

/* Where diagnostics go: the file a setting came from, or deflt. */
const char *lcfg_file(const config_setting_t *, const char *deflt);
int	lcfg_line(const config_setting_t *);
const char *lcfg_type_name(const config_setting_t *);

/*
 * Parses buf (len bytes, NUL-terminated) into cfg, already initialised.
 * Rejects NUL bytes and nesting deeper than LCFG_NEST_MAX up front (a
 * deeply nested file must not exhaust the parser's stack). Returns 0, or
 * -1 with the error in d as file:line.
 */
int	lcfg_parse(config_t *cfg, const char *file, const char *basedir,
	    const char *buf, size_t len, struct diag *d) WARN_UNUSED;

/*
 * Adds an error for every member of group whose name is not in the
 * NULL-terminated list allowed. what prefixes the messages ("rule").
 * Returns the number of unknown keys.
 */
int	lcfg_check_keys(const config_setting_t *group,
	    const char *const *allowed, const char *file, const char *what,
	    struct diag *d);

/*
 * Typed getters: 1 found and of the right type (value in *out), 0 absent,
 * -1 wrong type or out of range (error added, naming what).
 */
int	lcfg_get_string(const config_setting_t *, const char *name,
	    const char **out, const char *file, const char *what,
	    struct diag *d);
int	lcfg_get_int(const config_setting_t *, const char *name,
	    long long min, long long max, long long *out, const char *file,
	    const char *what, struct diag *d);
int	lcfg_get_bool(const config_setting_t *, const char *name, int *out,
	    const char *file, const char *what, struct diag *d);

/*
 * A string with a fixed set of values: lookup maps it to an int or -1;
 * choices lists them for the message. Returns as the getters above.
 */
int	lcfg_get_choice(const config_setting_t *, const char *name,
	    int (*lookup)(const char *), const char *choices, int *out,
	    const char *file, const char *what, struct diag *d);

/* The value as written: "587", "\"x\"", "[587, 465]", "{...}". */
void	lcfg_text(const config_setting_t *, char *buf, size_t len);

#endif

/*
 * macros.h - which MTA macros warden needs at each milter stage, from
 * what the loaded rules use (DESIGN.md §4): for smfi_setsymlist and for
 * the Postfix/Sendmail lines `warden check` prints.
 * Owns: the stage-to-macro mapping and both MTAs' default macro lists.
 * Threads: pure functions over an immutable ruleset.
 */
#ifndef WARDEN_MACROS_H
#define WARDEN_MACROS_H

#include <stddef.h>
#include "rules.h"

#define MACROS_MAX	16

/* The milter stages that carry macros, in protocol order. */
enum macro_stage {
	MS_CONNECT,
	MS_HELO,
	MS_ENVFROM,
	MS_ENVRCPT,
	MS_EOM,
	MS_COUNT
};

/*
 * Fills out with the macro names ("{daemon_port}", "i") warden reads at
 * ms for this ruleset; returns how many. Names are static strings.
 */
size_t	macros_needed(const struct ruleset *, enum macro_stage ms,
	    const char **out, size_t max);

/* Postfix parameter and Sendmail define for a stage; their defaults. */
const char *macros_postfix_param(enum macro_stage);
const char *macros_postfix_default(enum macro_stage);
const char *macros_sendmail_define(enum macro_stage);
const char *macros_sendmail_default(enum macro_stage);

#endif

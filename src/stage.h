/*
 * stage.h - SMTP stages, actions and verdicts: the vocabulary every module
 * shares. Pure data and name lookups; no state.
 */
#ifndef WARDEN_STAGE_H
#define WARDEN_STAGE_H

enum stage {
	STAGE_CONNECT,
	STAGE_HELO,
	STAGE_ENVFROM,
	STAGE_ENVRCPT,
	STAGE_DATA,
	STAGE_HEADER,
	STAGE_EOM,
	STAGE_UNKNOWN,
	STAGE_COUNT
};
#define STAGE_BIT(s)	(1u << (s))
#define STAGES_ALL	((1u << STAGE_COUNT) - 1)

enum action {
	ACTION_ACCEPT,
	ACTION_CONTINUE,
	ACTION_LOG,
	ACTION_REJECT,
	ACTION_TEMPFAIL,
	ACTION_DISCARD,
	ACTION_QUARANTINE,
	ACTION_TAG,
	ACTION_COUNT
};

enum rule_mode {
	MODE_ENFORCE,
	MODE_DRYRUN,
};

/* Returns the stage/action for name, or -1. */
int	stage_by_name(const char *);
int	action_by_name(const char *);
const char *stage_name(enum stage);
const char *action_name(enum action);

/* 1 when the action ends evaluation of the event (DESIGN.md §3). */
int	action_is_terminal(enum action);

/* Bit set of the stages where an action may be used. */
unsigned action_stages(enum action);

#endif

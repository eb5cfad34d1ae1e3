/*
 * stage.c - names of stages and actions, and where each action may be
 * used (DESIGN.md §3). Pure tables; thread-safe.
 */
#include <string.h>

#include "stage.h"

static const char *const stage_names[STAGE_COUNT] = {
	"connect", "helo", "envfrom", "envrcpt", "data", "header", "eom",
	"unknown",
};

static const char *const action_names[ACTION_COUNT] = {
	"accept", "continue", "log", "reject", "tempfail", "discard",
	"quarantine", "tag",
};

#define MSG_STAGES (STAGE_BIT(STAGE_ENVFROM) | STAGE_BIT(STAGE_ENVRCPT) | \
	STAGE_BIT(STAGE_DATA) | STAGE_BIT(STAGE_HEADER) | STAGE_BIT(STAGE_EOM))

static int
by_name(const char *const *names, int n, const char *s)
{
	int i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

int
stage_by_name(const char *s)
{
	return by_name(stage_names, STAGE_COUNT, s);
}

int
action_by_name(const char *s)
{
	return by_name(action_names, ACTION_COUNT, s);
}

const char *
stage_name(enum stage s)
{
	return (unsigned)s < STAGE_COUNT ? stage_names[s] : "?";
}

const char *
action_name(enum action a)
{
	return (unsigned)a < ACTION_COUNT ? action_names[a] : "?";
}

int
action_is_terminal(enum action a)
{
	switch (a) {
	case ACTION_ACCEPT:
	case ACTION_REJECT:
	case ACTION_TEMPFAIL:
	case ACTION_DISCARD:
	case ACTION_QUARANTINE:
		return 1;
	default:
		return 0;
	}
}

unsigned
action_stages(enum action a)
{
	switch (a) {
	case ACTION_DISCARD:
	case ACTION_QUARANTINE:
		/* libmilter: SMFIS_DISCARD and smfi_quarantine need a message. */
		return MSG_STAGES;
	case ACTION_TAG:
		/* Applied at eom; flagged on any stage that belongs to a
		 * connection that can carry a message. */
		return STAGES_ALL & ~STAGE_BIT(STAGE_UNKNOWN);
	default:
		return STAGES_ALL;
	}
}

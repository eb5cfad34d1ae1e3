/*
 * tu_rules.h - rulesets for unit tests: load one from rule text and hold
 * it, so that the teardown drops it even when a check fails (cmocka
 * jumps out of the test). Include after testutil.h and rules.h.
 */
#ifndef WARDEN_TU_RULES_H
#define WARDEN_TU_RULES_H

#define TU_HELD_MAX	4

static struct ruleset *tu_held[TU_HELD_MAX];

static inline struct ruleset *
tu_hold(struct ruleset *rs)
{
	size_t i;

	for (i = 0; i < TU_HELD_MAX; i++)
		if (tu_held[i] == NULL) {
			tu_held[i] = rs;
			return rs;
		}
	fail_msg("more than %d rulesets held", TU_HELD_MAX);
	return NULL;
}

static inline void
tu_drop(struct ruleset *rs)
{
	size_t i;

	for (i = 0; i < TU_HELD_MAX; i++)
		if (tu_held[i] == rs)
			tu_held[i] = NULL;
	rules_unref(rs);
}

static inline int
tu_rules_teardown(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < TU_HELD_MAX; i++)
		if (tu_held[i] != NULL) {
			rules_unref(tu_held[i]);
			tu_held[i] = NULL;
		}
	return 0;
}

/* Loads text as "t.rules" in basedir; prints every diagnostic and fails
 * the test (naming row) when it does not load. */
static inline struct ruleset *
tu_load(const char *text, const char *basedir, const char *row)
{
	static const struct rules_opts o = { MODE_ENFORCE, ONERR_ACCEPT };
	char buf[DIAG_FILE_MAX + DIAG_MSG_MAX + 32];
	struct ruleset *rs;
	struct diag d;
	size_t i;

	diag_init(&d);
	rs = rules_load_buf("t.rules", basedir, text, strlen(text), &o, &d);
	if (rs == NULL) {
		for (i = 0; i < d.n; i++)
			print_error("    %s\n", diag_format(&d, i, buf,
			    sizeof(buf)));
		diag_fini(&d);
		fail_msg("%s: rules did not load", row);
	}
	diag_fini(&d);
	return tu_hold(rs);
}

#endif

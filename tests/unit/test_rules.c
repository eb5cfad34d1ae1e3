/*
 * test_rules.c - unit tests for rules.c: every load-time validation error
 * of DESIGN.md §3 (one table: exact FILE:LINE, a message substring, the
 * exact number of errors), the positive forms (every condition at a stage
 * that has its data, multi-line replies, dry-run, default replies, the
 * conds_used/keys_used bits), shared counters, and whole files through
 * rules_load (missing, unreadable, directory, binary, truncated, too
 * large, deeply nested, empty).
 * Line numbers in the expectations were counted by hand from the buffers
 * below (one "\n" per source line), never taken from rules.c.
 * Threads: none. Memory: every ruleset and diag is released (ASan).
 */
#include "testutil.h"

#include <errno.h>
#include <stdbool.h>

#include "diag.h"
#include "rules.h"

#define T_FILE	"t.rules"
#define T_DIR	"/nonexistent-basedir"

/*
 * One rule, lines 1-5 fixed, the case's own lines from line 6 on:
 *   1 rules = (
 *   2   {
 *   3     name = "r";
 *   4     stage = "ST";
 *   5     action = "ACT";
 *   6     X...
 *     }
 *   );
 */
#define RULE(st, act, x) \
	"rules = (\n" \
	"  {\n" \
	"    name = \"r\";\n" \
	"    stage = \"" st "\";\n" \
	"    action = \"" act "\";\n" \
	x \
	"  }\n" \
	");\n"

static struct ruleset *
load_opts(const char *buf, const char *basedir, const struct rules_opts *o,
    struct diag *d)
{
	diag_init(d);
	return rules_load_buf(T_FILE, basedir, buf, strlen(buf), o, d);
}

static struct ruleset *
load(const char *buf, struct diag *d)
{
	static const struct rules_opts o = { MODE_ENFORCE, ONERR_ACCEPT };

	return load_opts(buf, T_DIR, &o, d);
}

static void
dump(const struct diag *d)
{
	char buf[DIAG_FILE_MAX + DIAG_MSG_MAX + 32];
	size_t i;

	for (i = 0; i < d->n; i++)
		print_error("    diag: %s\n", diag_format(d, i, buf,
		    sizeof(buf)));
}

/* 1 when d has an error (or warning) at file:line whose text has msg. */
static int
has(const struct diag *d, enum diag_sev sev, const char *file, int line,
    const char *msg)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (d->v[i].sev == sev && strcmp(d->v[i].file, file) == 0 &&
		    d->v[i].line == line && strstr(d->v[i].msg, msg) != NULL)
			return 1;
	return 0;
}

/* --- the validation table ------------------------------------------ */

struct bad_case {
	const char	*name;
	const char	*buf;
	size_t		errors;		/* exact */
	int		line;		/* of the error below */
	const char	*msg;		/* substring of its message */
};

/* 33 one-word lines after the first: one over REPLY_LINES_MAX. */
#define LINES33 \
	"\"550 5.7.1 l1\", \"l2\", \"l3\", \"l4\", \"l5\", \"l6\", \"l7\", " \
	"\"l8\", \"l9\", \"l10\", \"l11\", \"l12\", \"l13\", \"l14\", " \
	"\"l15\", \"l16\", \"l17\", \"l18\", \"l19\", \"l20\", \"l21\", " \
	"\"l22\", \"l23\", \"l24\", \"l25\", \"l26\", \"l27\", \"l28\", " \
	"\"l29\", \"l30\", \"l31\", \"l32\", \"l33\""

static const struct bad_case bad_cases[] = {
	/* Replies: the `reply` line (6) is named (DESIGN.md §3). */
	{ "reject-with-4xx",
	    RULE("envfrom", "reject", "    reply = \"451 4.7.1 x\";\n"),
	    1, 6, "reject needs a 5xx code, got 451" },
	{ "tempfail-with-5xx",
	    RULE("envrcpt", "tempfail", "    reply = \"550 5.7.1 x\";\n"),
	    1, 6, "tempfail needs a 4xx code, got 550" },
	{ "class-mismatch-5-4",
	    RULE("envfrom", "reject", "    reply = \"550 4.7.1 x\";\n"),
	    1, 6, "class 4 does not match reply code 550" },
	{ "class-mismatch-4-5",
	    RULE("envrcpt", "tempfail", "    reply = \"450 5.7.1 x\";\n"),
	    1, 6, "class 5 does not match reply code 450" },
	{ "subject-8",
	    RULE("envfrom", "reject", "    reply = \"550 5.8.1 x\";\n"),
	    1, 6, "subject 8 is not 0-7" },
	{ "detail-1000",
	    RULE("envfrom", "reject", "    reply = \"550 5.7.1000 x\";\n"),
	    1, 6, "\"5.7.1000\" is not X.Y.Z" },
	{ "421-with-reject",
	    RULE("envrcpt", "reject", "    reply = \"421 4.7.0 bye\";\n"),
	    1, 6, "reject needs a 5xx code, got 421" },
	{ "code-not-4-or-5",
	    RULE("envfrom", "reject", "    reply = \"250 2.0.0 ok\";\n"),
	    1, 6, "must start with 4 or 5" },
	{ "cr-in-reply",
	    RULE("envfrom", "reject", "    reply = \"550 5.7.1 a\\rb\";\n"),
	    1, 6, "CR or LF in text" },
	{ "lf-in-reply",
	    RULE("envfrom", "reject", "    reply = \"550 5.7.1 a\\nb\";\n"),
	    1, 6, "CR or LF in text" },
	{ "lf-in-second-line",
	    RULE("envfrom", "reject",
	    "    reply = [ \"550 5.7.1 a\",\n"
	    "              \"b\\nc\" ];\n"),
	    1, 6, "line 2: CR or LF in text" },
	/* libconfig turns \x00 into nothing: refused, not silently cut. */
	{ "nul-in-reply",
	    RULE("envfrom", "reject", "    reply = \"550 5.7.1 a\\x00b\";\n"),
	    1, 6, "NUL" },
	{ "33-reply-lines",
	    RULE("envfrom", "reject", "    reply = [ " LINES33 " ];\n"),
	    1, 6, "33 lines, at most 32" },
	{ "reply-not-string",
	    RULE("envfrom", "reject", "    reply = 550;\n"),
	    1, 6, "reply: must be a string" },
	/* Unknown keys at each level. */
	{ "unknown-rule-key",
	    RULE("envfrom", "reject", "    colour = \"red\";\n"),
	    1, 6, "rule: unknown key 'colour'" },
	{ "unknown-top-key",
	    "rules = ();\n"
	    "ruels = ();\n",
	    1, 2, "unknown key 'ruels'" },
	{ "unknown-condition",
	    RULE("envrcpt", "log",
	    "    match = {\n"
	    "      auth = true;\n"
	    "      rcpt_to = \"x@example.com\";\n"
	    "    };\n"),
	    1, 8, "unknown condition 'rcpt_to'" },
	{ "unknown-condition-in-not",
	    RULE("envrcpt", "log",
	    "    match = {\n"
	    "      not = {\n"
	    "        sender_dom = \"example.com\";\n"
	    "      };\n"
	    "    };\n"),
	    1, 8, "unknown condition 'sender_dom'" },
	{ "unknown-limit-key",
	    RULE("envrcpt", "tempfail",
	    "    limit = {\n"
	    "      key = \"client_ip\";\n"
	    "      rate = \"3/1m\";\n"
	    "      brust = 5;\n"
	    "    };\n"),
	    1, 9, "limit: unknown key 'brust'" },
	{ "unknown-key-part",
	    RULE("envrcpt", "tempfail",
	    "    limit = {\n"
	    "      key = [\"client_ip\", \"mailbox\"];\n"
	    "      rate = \"3/1m\";\n"
	    "    };\n"),
	    1, 7, "unknown part 'mailbox'" },
	/* Patterns and networks: the condition's line. */
	{ "bad-cidr-prefix-v4",
	    RULE("connect", "reject",
	    "    match = {\n"
	    "      client = [\"192.0.2.0/24\", \"198.51.100.0/33\"];\n"
	    "    };\n"),
	    1, 7, "198.51.100.0/33" },
	{ "bad-cidr-prefix-v6",
	    RULE("connect", "reject",
	    "    match = {\n"
	    "      client = \"2001:db8::/129\";\n"
	    "    };\n"),
	    1, 7, "2001:db8::/129" },
	{ "bad-cidr-address",
	    RULE("connect", "reject",
	    "    match = {\n"
	    "      client = \"192.0.2.300\";\n"
	    "    };\n"),
	    1, 7, "192.0.2.300" },
	{ "bad-regex",
	    RULE("envfrom", "reject",
	    "    match = {\n"
	    "      sender = \"/[a-z/\";\n"
	    "    };\n"),
	    1, 7, "bad regex" },
	/* Rates. */
	{ "rate-zero",
	    RULE("envrcpt", "tempfail",
	    "    limit = {\n"
	    "      key = \"client_ip\";\n"
	    "      rate = \"0/1h\";\n"
	    "    };\n"),
	    1, 8, "\"0/1h\"" },
	{ "rate-zero-period",
	    RULE("envrcpt", "tempfail",
	    "    limit = {\n"
	    "      key = \"client_ip\";\n"
	    "      rate = \"3/0h\";\n"
	    "    };\n"),
	    1, 8, "\"3/0h\"" },
	{ "rate-bad-unit",
	    RULE("envrcpt", "tempfail",
	    "    limit = {\n"
	    "      key = \"client_ip\";\n"
	    "      rate = \"3/1x\";\n"
	    "    };\n"),
	    1, 8, "\"3/1x\"" },
	{ "rate-missing",
	    RULE("envrcpt", "tempfail",
	    "    limit = {\n"
	    "      key = \"client_ip\";\n"
	    "    };\n"),
	    1, 6, "rate is missing" },
	{ "limit-key-missing",
	    RULE("envrcpt", "tempfail",
	    "    limit = {\n"
	    "      rate = \"3/1m\";\n"
	    "    };\n"),
	    1, 6, "key is missing" },
	{ "burst-zero",
	    RULE("envrcpt", "tempfail",
	    "    limit = {\n"
	    "      key = \"client_ip\";\n"
	    "      rate = \"3/1m\";\n"
	    "      burst = 0;\n"
	    "    };\n"),
	    1, 9, "burst" },
	{ "cost-size-not-at-eom",
	    RULE("envrcpt", "tempfail",
	    "    limit = {\n"
	    "      key = \"client_ip\";\n"
	    "      rate = \"3/1m\";\n"
	    "      cost = \"size\";\n"
	    "    };\n"),
	    1, 9, "only at stage eom" },
	{ "on-error-bad",
	    RULE("envrcpt", "tempfail",
	    "    limit = {\n"
	    "      key = \"client_ip\";\n"
	    "      rate = \"3/1m\";\n"
	    "      on_error = \"ignore\";\n"
	    "    };\n"),
	    1, 9, "\"ignore\"" },
	/* Stage availability. */
	{ "discard-at-connect",
	    RULE("connect", "discard", ""),
	    1, 5, "discard is not possible at stage connect" },
	{ "quarantine-at-helo",
	    RULE("helo", "quarantine", ""),
	    1, 5, "quarantine is not possible at stage helo" },
	{ "rcpt-at-envfrom",
	    RULE("envfrom", "reject",
	    "    match = {\n"
	    "      auth = false;\n"
	    "      rcpt = \"b@example.org\";\n"
	    "    };\n"),
	    1, 8, "rcpt has no value at stage envfrom" },
	{ "helo-at-connect",
	    RULE("connect", "reject",
	    "    match = {\n"
	    "      helo = \"localhost\";\n"
	    "    };\n"),
	    1, 7, "helo has no value at stage connect" },
	{ "command-at-envrcpt",
	    RULE("envrcpt", "tempfail",
	    "    match = {\n"
	    "      command = \"EXPN\";\n"
	    "    };\n"),
	    1, 7, "command has no value at stage envrcpt" },
	{ "unavailable-inside-any",
	    RULE("connect", "reject",
	    "    match = {\n"
	    "      any = (\n"
	    "        { client = \"192.0.2.0/24\"; },\n"
	    "        { sender = \"a@example.com\"; }\n"
	    "      );\n"
	    "    };\n"),
	    1, 9, "sender has no value at stage connect" },
	{ "key-part-at-connect",
	    RULE("connect", "tempfail",
	    "    limit = {\n"
	    "      key = [\"client_ip\",\n"
	    "             \"sender\"];\n"
	    "      rate = \"3/1m\";\n"
	    "    };\n"),
	    1, 8, "sender has no value at stage connect" },
	{ "key-part-rcpt-at-envfrom",
	    RULE("envfrom", "tempfail",
	    "    limit = {\n"
	    "      key = \"rcpt_domain\";\n"
	    "      rate = \"3/1m\";\n"
	    "    };\n"),
	    1, 7, "rcpt_domain has no value at stage envfrom" },
	{ "5xx-at-unknown",
	    RULE("unknown", "reject", "    reply = \"550 5.5.2 no\";\n"),
	    1, 6, "stage unknown needs a 4xx code" },
	{ "reject-at-unknown-default-reply",
	    RULE("unknown", "reject", ""),
	    1, 5, "reject at stage unknown is not honoured" },
	/* Settings that conflict. */
	{ "reply-with-accept",
	    RULE("envfrom", "accept", "    reply = \"550 5.7.1 x\";\n"),
	    1, 6, "action accept sends no reply" },
	{ "reply-with-log",
	    RULE("envfrom", "log", "    reply = \"550 5.7.1 x\";\n"),
	    1, 6, "action log sends no reply" },
	{ "tag-without-add-header",
	    RULE("eom", "tag", ""),
	    1, 5, "tag needs add_header" },
	{ "add-header-with-reject",
	    RULE("eom", "reject", "    add_header = \"X-Warden: %{rule}\";\n"),
	    1, 6, "only action tag adds a header, not reject" },
	{ "add-header-bad-name",
	    RULE("eom", "tag", "    add_header = \"X Warden: y\";\n"),
	    1, 6, "valid header name" },
	{ "sender-owned-without-owner-map",
	    RULE("envfrom", "reject",
	    "    match = {\n"
	    "      auth = true;\n"
	    "      sender_owned = false;\n"
	    "    };\n"),
	    1, 8, "sender_owned needs owner_map" },
	{ "owner-map-not-file",
	    RULE("envfrom", "reject",
	    "    match = { sender_owned = false; };\n"
	    "    owner_map = \"senders.map\";\n"),
	    1, 7, "owner_map: must be \"file:PATH\"" },
	{ "owner-map-missing-file",
	    RULE("envfrom", "reject",
	    "    match = { sender_owned = false; };\n"
	    "    owner_map = \"file:no-such.map\";\n"),
	    1, 7, "no-such.map" },
	/* Wrong types: the setting's line. */
	{ "port-string",
	    RULE("envfrom", "reject",
	    "    match = {\n"
	    "      port = \"x\";\n"
	    "    };\n"),
	    1, 7, "port: must be" },
	{ "port-zero",
	    RULE("envfrom", "reject",
	    "    match = {\n"
	    "      port = [587, 0];\n"
	    "    };\n"),
	    1, 7, "1..65535" },
	{ "auth-int",
	    RULE("envfrom", "reject",
	    "    match = {\n"
	    "      auth = 1;\n"
	    "    };\n"),
	    1, 7, "auth: must be true or false, not an integer" },
	{ "count-string",
	    RULE("envrcpt", "tempfail",
	    "    match = {\n"
	    "      rcpt_count_over = \"5\";\n"
	    "    };\n"),
	    1, 7, "rcpt_count_over: must be an integer" },
	{ "count-negative",
	    RULE("envrcpt", "tempfail",
	    "    match = {\n"
	    "      bad_rcpt_count_over = -1;\n"
	    "    };\n"),
	    1, 7, "out of range" },
	{ "rate-int",
	    RULE("envrcpt", "tempfail",
	    "    limit = {\n"
	    "      key = \"client_ip\";\n"
	    "      rate = 5;\n"
	    "    };\n"),
	    1, 8, "rate: must be a string, not an integer" },
	{ "name-int",
	    "rules = (\n"
	    "  {\n"
	    "    name = 7;\n"
	    "    stage = \"envfrom\";\n"
	    "    action = \"log\";\n"
	    "  }\n"
	    ");\n",
	    1, 3, "name: must be a string" },
	{ "name-with-space",
	    "rules = (\n"
	    "  {\n"
	    "    name = \"two words\";\n"
	    "    stage = \"envfrom\";\n"
	    "    action = \"log\";\n"
	    "  }\n"
	    ");\n",
	    1, 3, "must be 1..64 of" },
	{ "stage-unknown-name",
	    RULE("mail", "reject", ""),
	    1, 4, "stage: \"mail\" is not one of" },
	{ "action-unknown-name",
	    RULE("envfrom", "refuse", ""),
	    1, 5, "action: \"refuse\" is not one of" },
	{ "mode-bad",
	    RULE("envfrom", "reject", "    mode = \"dryrun\";\n"),
	    1, 6, "mode: \"dryrun\" is not one of" },
	{ "match-not-group",
	    RULE("envfrom", "reject", "    match = ( { auth = true; } );\n"),
	    1, 6, "match: must be a group" },
	{ "any-not-list",
	    RULE("envfrom", "reject",
	    "    match = {\n"
	    "      any = { auth = true; };\n"
	    "    };\n"),
	    1, 7, "any: must be a list of groups" },
	{ "empty-pattern-list",
	    RULE("envfrom", "reject",
	    "    match = {\n"
	    "      sender = [];\n"
	    "    };\n"),
	    1, 7, "empty list never matches" },
	{ "rules-not-list",
	    "rules = { name = \"x\"; };\n",
	    1, 1, "rules: must be a list" },
	/*
	 * libconfig 1.5 dates a scalar list element by the token after it:
	 * keep that token on the same line.
	 */
	{ "rule-not-group",
	    "rules = (\n"
	    "  \"r\" );\n",
	    1, 2, "each rule must be a group" },
	/* Missing settings: the rule's first line, or its name line. */
	{ "missing-name",
	    "rules = (\n"
	    "  {\n"
	    "    stage = \"envfrom\";\n"
	    "    action = \"reject\";\n"
	    "  }\n"
	    ");\n",
	    1, 2, "name is missing" },
	{ "missing-stage",
	    "rules = (\n"
	    "  {\n"
	    "    name = \"r\";\n"
	    "    action = \"reject\";\n"
	    "  }\n"
	    ");\n",
	    1, 3, "stage is missing" },
	{ "missing-action",
	    "rules = (\n"
	    "  {\n"
	    "    name = \"r\";\n"
	    "    stage = \"envfrom\";\n"
	    "  }\n"
	    ");\n",
	    1, 3, "action is missing" },
	/* Duplicates: the second name line, naming the first's place. */
	{ "duplicate-name",
	    "rules = (\n"
	    "  {\n"
	    "    name = \"dup\";\n"
	    "    stage = \"envfrom\";\n"
	    "    action = \"log\";\n"
	    "  },\n"
	    "  {\n"
	    "    stage = \"envrcpt\";\n"
	    "    name = \"dup\";\n"
	    "    action = \"log\";\n"
	    "  }\n"
	    ");\n",
	    1, 9, "\"dup\" is already used at t.rules:3" },
	{ "duplicate-name-third",
	    "rules = (\n"
	    "  { name = \"a\"; stage = \"helo\"; action = \"log\"; },\n"
	    "  { name = \"b\"; stage = \"helo\"; action = \"log\"; },\n"
	    "  { name = \"a\"; stage = \"helo\"; action = \"log\"; },\n"
	    "  { name = \"a\"; stage = \"helo\"; action = \"log\"; }\n"
	    ");\n",
	    2, 5, "\"a\" is already used at t.rules:2" },
	/* Shared counters must agree (rules.c extension). */
	{ "counter-shared-other-rate",
	    "rules = (\n"
	    "  {\n"
	    "    name = \"a\";\n"
	    "    stage = \"envrcpt\";\n"
	    "    action = \"tempfail\";\n"
	    "    limit = { key = \"client_net\"; rate = \"30/1h\"; "
	    "counter = \"c\"; };\n"
	    "  },\n"
	    "  {\n"
	    "    name = \"b\";\n"
	    "    stage = \"connect\";\n"
	    "    action = \"tempfail\";\n"
	    "    reply = \"421 4.7.0\";\n"
	    "    limit = { key = \"client_net\"; rate = \"31/1h\"; "
	    "counter = \"c\"; charge = false; };\n"
	    "  }\n"
	    ");\n",
	    1, 13, "counter \"c\" is shared with rule a (t.rules:6)" },
	{ "counter-shared-other-key",
	    "rules = (\n"
	    "  {\n"
	    "    name = \"a\";\n"
	    "    stage = \"envrcpt\";\n"
	    "    action = \"tempfail\";\n"
	    "    limit = { key = \"client_net\"; rate = \"30/1h\"; "
	    "counter = \"c\"; };\n"
	    "  },\n"
	    "  {\n"
	    "    name = \"b\";\n"
	    "    stage = \"envrcpt\";\n"
	    "    action = \"tempfail\";\n"
	    "    limit = { key = \"client_ip\"; rate = \"30/1h\"; "
	    "counter = \"c\"; };\n"
	    "  }\n"
	    ");\n",
	    1, 12, "shared with rule a" },
	{ "counter-shared-other-prefix",
	    "rules = (\n"
	    "  {\n"
	    "    name = \"a\";\n"
	    "    stage = \"envrcpt\";\n"
	    "    action = \"tempfail\";\n"
	    "    limit = { key = \"client_net\"; rate = \"30/1h\"; "
	    "counter = \"c\"; };\n"
	    "  },\n"
	    "  {\n"
	    "    name = \"b\";\n"
	    "    stage = \"envrcpt\";\n"
	    "    action = \"tempfail\";\n"
	    "    limit = { key = \"client_net\"; rate = \"30/1h\"; "
	    "counter = \"c\"; ipv4_prefix = 16; };\n"
	    "  }\n"
	    ");\n",
	    1, 12, "shared with rule a" },
	{ "counter-bad-name",
	    RULE("envrcpt", "tempfail",
	    "    limit = {\n"
	    "      key = \"client_ip\";\n"
	    "      rate = \"3/1m\";\n"
	    "      counter = \"a b\";\n"
	    "    };\n"),
	    1, 9, "limit.counter: \"a b\" must be" },
	{ "charge-int",
	    RULE("envrcpt", "tempfail",
	    "    limit = {\n"
	    "      key = \"client_ip\";\n"
	    "      rate = \"3/1m\";\n"
	    "      charge = 0;\n"
	    "    };\n"),
	    1, 9, "charge: must be true or false" },
	/* Template variables need a value at the stage. */
	{ "rcpt-var-at-envfrom",
	    RULE("envfrom", "reject", "    reply = \"550 5.7.1 %{rcpt}\";\n"),
	    1, 6, "%{rcpt} has no value at stage envfrom" },
	{ "unknown-var",
	    RULE("envfrom", "reject", "    reply = \"550 5.7.1 %{user}\";\n"),
	    1, 6, "unknown template variable %{user}" },
	/* libconfig syntax: the line of the error. */
	{ "syntax-error",
	    "rules = (\n"
	    "  {\n"
	    "    name = \"r\";\n"
	    "    stage = = \"envfrom\";\n"
	    "  }\n"
	    ");\n",
	    1, 4, "syntax error" },
};

static void
test_bad_table(void **state)
{
	char want[96];
	struct ruleset *rs;
	struct diag d;
	size_t i;
	int fails = 0, ok;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];

		rs = load(c->buf, &d);
		ok = 1;
		if (rs != NULL) {
			print_error("case %s: got a ruleset, want NULL\n",
			    c->name);
			ok = 0;
		}
		if (d.errors != c->errors) {
			print_error("case %s: errors: got %zu, want %zu\n",
			    c->name, d.errors, c->errors);
			ok = 0;
		}
		if (!has(&d, DIAG_ERROR, T_FILE, c->line, c->msg)) {
			snprintf(want, sizeof(want), "%s:%d: ...%s...", T_FILE,
			    c->line, c->msg);
			print_error("case %s: no error %s\n", c->name, want);
			ok = 0;
		}
		if (!ok) {
			dump(&d);
			fails++;
		}
		rules_unref(rs);
		diag_fini(&d);
	}
	assert_int_equal(fails, 0);
}

/* --- nesting of any/not: RULES_NEST_MAX levels load, one more not -- */

/*
 * Builds a rule at envfrom whose match nests `depth` levels of kind
 * ("not" or "any"), one level a line: "match = {" is line 6, the first
 * nested condition line 7, the k-th (1-based) line 6 + k.
 */
static char *
nested(const char *kind, int depth)
{
	size_t cap = 4096 + (size_t)depth * 64, at = 0;
	char *b = malloc(cap);
	int k;

	assert_non_null(b);
	at += (size_t)snprintf(b + at, cap - at, "%s",
	    "rules = (\n  {\n    name = \"r\";\n    stage = \"envfrom\";\n"
	    "    action = \"reject\";\n    match = {\n");
	for (k = 0; k < depth; k++)
		at += (size_t)snprintf(b + at, cap - at, "%s\n",
		    strcmp(kind, "not") == 0 ? "not = {" : "any = ( {");
	at += (size_t)snprintf(b + at, cap - at, "auth = true;\n");
	for (k = 0; k < depth; k++)
		at += (size_t)snprintf(b + at, cap - at, "%s\n",
		    strcmp(kind, "not") == 0 ? "};" : "} );");
	snprintf(b + at, cap - at, "    };\n  }\n);\n");
	return b;
}

static void
test_nesting(void **state)
{
	static const char *const kinds[] = { "not", "any" };
	struct ruleset *rs;
	struct diag d;
	char *b, want[64];
	size_t i;

	(void)state;
	for (i = 0; i < 2; i++) {
		b = nested(kinds[i], RULES_NEST_MAX);
		rs = load(b, &d);
		if (rs == NULL) {
			print_error("%s x%d: got errors, want it to load\n",
			    kinds[i], RULES_NEST_MAX);
			dump(&d);
		}
		assert_non_null(rs);
		rules_unref(rs);
		diag_fini(&d);
		free(b);

		b = nested(kinds[i], RULES_NEST_MAX + 1);
		rs = load(b, &d);
		snprintf(want, sizeof(want), "%s: nested deeper than %d",
		    kinds[i], RULES_NEST_MAX);
		/* the (MAX+1)-th level is on line 6 + MAX + 1 */
		if (rs != NULL || d.errors != 1 || !has(&d, DIAG_ERROR, T_FILE,
		    6 + RULES_NEST_MAX + 1, want)) {
			print_error("%s x%d: got %zu errors, want 1 at line "
			    "%d: %s\n", kinds[i], RULES_NEST_MAX + 1, d.errors,
			    6 + RULES_NEST_MAX + 1, want);
			dump(&d);
			fail();
		}
		rules_unref(rs);
		diag_fini(&d);
		free(b);
	}
}

/* --- several errors in one file: all of them, one run -------------- */

static const char many_errors[] =
	"rules = (\n"						/* 1 */
	"  {\n"							/* 2 */
	"    name = \"one\";\n"					/* 3 */
	"    stage = \"envfrom\";\n"				/* 4 */
	"    action = \"reject\";\n"				/* 5 */
	"    reply = \"450 4.7.1 wrong class of code\";\n"	/* 6 E1 */
	"  },\n"						/* 7 */
	"  {\n"							/* 8 */
	"    name = \"fine\";\n"				/* 9 */
	"    stage = \"envrcpt\";\n"				/* 10 */
	"    action = \"log\";\n"				/* 11 */
	"  },\n"						/* 12 */
	"  {\n"							/* 13 */
	"    name = \"two\";\n"					/* 14 */
	"    stage = \"connect\";\n"				/* 15 */
	"    match = { helo = \"x\"; };\n"			/* 16 E2 */
	"    action = \"discard\";\n"				/* 17 E3 */
	"  },\n"						/* 18 */
	"  {\n"							/* 19 */
	"    name = \"three\";\n"				/* 20 */
	"    stage = \"envrcpt\";\n"				/* 21 */
	"    action = \"tempfail\";\n"				/* 22 */
	"    limit = { key = \"rcpt\"; rate = \"0/1h\"; };\n"	/* 23 E4 */
	"    color = 1;\n"					/* 24 E5 */
	"  },\n"						/* 25 */
	"  {\n"							/* 26 */
	"    name = \"one\";\n"					/* 27 E6 */
	"    stage = \"eom\";\n"				/* 28 */
	"    action = \"tag\";\n"				/* 29 E7 */
	"  }\n"							/* 30 */
	");\n";							/* 31 */

static void
test_many_errors(void **state)
{
	static const struct { int line; const char *msg; } want[] = {
		{ 6, "reject needs a 5xx code" },
		{ 16, "helo has no value at stage connect" },
		{ 17, "discard is not possible at stage connect" },
		{ 23, "\"0/1h\"" },
		{ 24, "unknown key 'color'" },
		{ 27, "\"one\" is already used at t.rules:3" },
		{ 29, "tag needs add_header" },
	};
	struct ruleset *rs;
	struct diag d;
	size_t i;
	int fails = 0;

	(void)state;
	rs = load(many_errors, &d);
	assert_null(rs);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!has(&d, DIAG_ERROR, T_FILE, want[i].line, want[i].msg)) {
			print_error("many: missing error at line %d: %s\n",
			    want[i].line, want[i].msg);
			fails++;
		}
	if (d.errors != 7) {
		print_error("many: errors: got %zu, want 7\n", d.errors);
		fails++;
	}
	if (fails)
		dump(&d);
	assert_int_equal(fails, 0);
	diag_fini(&d);
}

/* `;` is optional in libconfig: leaving it out is not an error. */
static void
test_semicolons_optional(void **state)
{
	static const char buf[] =
	    "rules = (\n"
	    "  {\n"
	    "    name = \"r\"\n"
	    "    stage = \"envfrom\"\n"
	    "    match = { port = [587, 465] auth = false }\n"
	    "    action = \"reject\"\n"
	    "    reply = \"530 5.7.0 Authentication required\"\n"
	    "  }\n"
	    ")\n";
	struct ruleset *rs;
	struct diag d;

	(void)state;
	rs = load(buf, &d);
	if (rs == NULL)
		dump(&d);
	assert_non_null(rs);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 0);
	assert_int_equal(rs->nrules, 1);
	assert_int_equal(rs->rules[0]->match.n, 2);
	rules_unref(rs);
	diag_fini(&d);
}

/* --- positive: every condition where it has data ------------------- */

struct cond_case {
	enum cond_kind	kind;
	const char	*stage;
	enum stage	st;
	const char	*match;		/* the match body */
};

/*
 * Stages from DESIGN.md §3/§4a: the client facts exist from connect,
 * HELO/TLS from helo, the envelope sender and AUTH from MAIL FROM, the
 * recipient at RCPT, commands at unknown, headers at header.
 */
static const struct cond_case cond_cases[] = {
	{ COND_CLIENT, "connect", STAGE_CONNECT,
	    "client = [\"192.0.2.0/24\", \"2001:db8::/32\", \"::1\"];" },
	{ COND_CLIENT_NAME, "connect", STAGE_CONNECT,
	    "client_name = \"*.example.com\";" },
	{ COND_PORT, "connect", STAGE_CONNECT, "port = 25;" },
	{ COND_DAEMON, "connect", STAGE_CONNECT,
	    "daemon = \"submission\";" },
	{ COND_HELO, "helo", STAGE_HELO, "helo = \"/^localhost$/\";" },
	{ COND_SENDER, "envfrom", STAGE_ENVFROM,
	    "sender = \"a@example.com\";" },
	{ COND_SENDER_DOMAIN, "envfrom", STAGE_ENVFROM,
	    "sender_domain = [\"example.com\", \"*.example.net\"];" },
	{ COND_RCPT, "envrcpt", STAGE_ENVRCPT,
	    "rcpt = \"b@example.org\";" },
	{ COND_RCPT_DOMAIN, "envrcpt", STAGE_ENVRCPT,
	    "rcpt_domain = \"example.org\";" },
	{ COND_AUTH, "envfrom", STAGE_ENVFROM, "auth = true;" },
	{ COND_AUTH_USER, "envrcpt", STAGE_ENVRCPT,
	    "auth_user = \"alice\";" },
	{ COND_AUTH_MECH, "envfrom", STAGE_ENVFROM,
	    "auth_mech = [\"PLAIN\", \"LOGIN\"];" },
	{ COND_TLS, "helo", STAGE_HELO, "tls = false;" },
	{ COND_TLS_VERSION, "envfrom", STAGE_ENVFROM,
	    "tls_version = [\"TLSv1\", \"TLSv1.1\"];" },
	{ COND_CIPHER_BITS_BELOW, "helo", STAGE_HELO,
	    "cipher_bits_below = 128;" },
	{ COND_SIZE_OVER, "eom", STAGE_EOM, "size_over = 10000000;" },
	{ COND_RCPT_COUNT_OVER, "envrcpt", STAGE_ENVRCPT,
	    "rcpt_count_over = 50;" },
	{ COND_RCPT_REJECTED, "envrcpt", STAGE_ENVRCPT,
	    "rcpt_rejected = true;" },
	{ COND_COMMAND, "unknown", STAGE_UNKNOWN,
	    "command = [\"EXPN\", \"VRFY\"];" },
	{ COND_UNKNOWN_COUNT_OVER, "unknown", STAGE_UNKNOWN,
	    "unknown_count_over = 3;" },
	{ COND_BAD_RCPT_COUNT_OVER, "envrcpt", STAGE_ENVRCPT,
	    "bad_rcpt_count_over = 3;" },
	{ COND_HEADER, "header", STAGE_HEADER, "header = \"Subject\";" },
	{ COND_HEADER_VALUE, "header", STAGE_HEADER,
	    "header = \"Subject\"; header_value = \"/viagra/\";" },
	{ COND_SENDER_OWNED, "envfrom", STAGE_ENVFROM,
	    "sender_owned = false;" },
	{ COND_ANY, "envfrom", STAGE_ENVFROM,
	    "any = ( { auth = true; }, { port = 587; } );" },
	{ COND_NOT, "connect", STAGE_CONNECT,
	    "not = { client = \"127.0.0.0/8\"; };" },
};

static void
test_every_condition(void **state)
{
	char dir[256], buf[1024];
	struct rules_opts o = { MODE_ENFORCE, ONERR_ACCEPT };
	uint32_t seen = 0;
	struct ruleset *rs;
	struct diag d;
	size_t i;
	int fails = 0, s;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "senders.map", "alice alice@example.com\n", (size_t)-1);
	for (i = 0; i < sizeof(cond_cases) / sizeof(cond_cases[0]); i++) {
		const struct cond_case *c = &cond_cases[i];

		snprintf(buf, sizeof(buf),
		    "rules = (\n"
		    "  {\n"
		    "    name = \"r\";\n"
		    "    stage = \"%s\";\n"
		    "    action = \"log\";\n"
		    "    match = {\n"
		    "      %s\n"
		    "    };\n"
		    "%s"
		    "  }\n"
		    ");\n", c->stage, c->match,
		    c->kind == COND_SENDER_OWNED ?
		    "    owner_map = \"file:senders.map\";\n" : "");
		rs = load_opts(buf, dir, &o, &d);
		if (rs == NULL || d.errors != 0 || d.warnings != 0) {
			print_error("cond %s at %s: got %zu errors, %zu "
			    "warnings, want none\n", rules_cond_name(c->kind),
			    c->stage, d.errors, d.warnings);
			dump(&d);
			fails++;
		} else {
			const struct cond *k = &rs->rules[0]->match.v[0];

			seen |= 1u << c->kind;
			if (rs->nby_stage[c->st] != 1 ||
			    rs->by_stage[c->st][0] != rs->rules[0]) {
				print_error("cond %s: not indexed at %s\n",
				    rules_cond_name(c->kind), c->stage);
				fails++;
			}
			if (k->line != 7) {
				print_error("cond %s: line: got %d, want 7\n",
				    rules_cond_name(c->kind), k->line);
				fails++;
			}
			if (!(rs->conds_used[c->st] & (1u << c->kind))) {
				print_error("cond %s: conds_used[%s] bit not "
				    "set\n", rules_cond_name(c->kind),
				    c->stage);
				fails++;
			}
			for (s = 0; s < STAGE_COUNT; s++)
				if (s != (int)c->st && rs->conds_used[s] != 0) {
					print_error("cond %s: conds_used[%d] "
					    "= %#x, want 0\n",
					    rules_cond_name(c->kind), s,
					    rs->conds_used[s]);
					fails++;
				}
		}
		rules_unref(rs);
		diag_fini(&d);
	}
	tu_rmtree(dir);
	/* Every kind of enum cond_kind was loaded once. */
	if (seen != (1u << COND_COUNT) - 1) {
		print_error("conditions not covered: %#x\n",
		    ~seen & ((1u << COND_COUNT) - 1));
		fails++;
	}
	assert_int_equal(fails, 0);
}

/* --- positive: replies, modes, defaults ---------------------------- */

static void
test_multiline_reply(void **state)
{
	static const char buf[] = RULE("envrcpt", "tempfail",
	    "    reply = [ \"452 4.5.3 Too many recipients\",\n"
	    "              \"452-4.5.3 for this message\",\n"
	    "              \"try again later\" ];\n");
	const struct rule *r;
	struct ruleset *rs;
	struct diag d;

	(void)state;
	rs = load(buf, &d);
	if (rs == NULL)
		dump(&d);
	assert_non_null(rs);
	assert_int_equal(d.errors, 0);
	r = rules_find(rs, "r");
	assert_non_null(r);
	assert_true(r->has_reply);
	assert_int_equal(r->reply.code, 452);
	assert_int_equal(r->reply.xclass, 4);
	assert_int_equal(r->reply.xsubject, 5);
	assert_int_equal(r->reply.xdetail, 3);
	assert_int_equal(r->reply.nlines, 3);
	assert_int_equal(r->action, ACTION_TEMPFAIL);
	assert_int_equal(r->stage, STAGE_ENVRCPT);
	assert_int_equal(r->line, 3);
	assert_string_equal(r->file, T_FILE);
	rules_unref(rs);
	diag_fini(&d);
}

static void
test_default_replies(void **state)
{
	static const char buf[] =
	    "rules = (\n"
	    "  { name = \"rej\"; stage = \"envfrom\"; action = \"reject\"; },\n"
	    "  { name = \"tmp\"; stage = \"envrcpt\"; action = \"tempfail\"; },\n"
	    "  { name = \"acc\"; stage = \"connect\"; action = \"accept\"; }\n"
	    ");\n";
	const struct rule *r;
	struct ruleset *rs;
	struct diag d;

	(void)state;
	rs = load(buf, &d);
	assert_non_null(rs);
	/* DESIGN.md §4: policy reject 550 5.7.1; rate limit 450 4.7.1. */
	r = rules_find(rs, "rej");
	assert_non_null(r);
	assert_false(r->has_reply);
	assert_int_equal(r->reply.code, 550);
	assert_int_equal(r->reply.xclass, 5);
	assert_int_equal(r->reply.xsubject, 7);
	assert_int_equal(r->reply.xdetail, 1);
	r = rules_find(rs, "tmp");
	assert_non_null(r);
	assert_false(r->has_reply);
	assert_int_equal(r->reply.code, 450);
	assert_int_equal(r->reply.xclass, 4);
	assert_int_equal(r->reply.xsubject, 7);
	assert_int_equal(r->reply.xdetail, 1);
	r = rules_find(rs, "acc");
	assert_non_null(r);
	assert_int_equal(r->reply.code, 0);
	assert_null(rules_find(rs, "nope"));
	assert_int_equal(rs->nrules, 3);
	assert_int_equal(rs->rules[1]->index, 1);
	rules_unref(rs);
	diag_fini(&d);
}

static void
test_modes(void **state)
{
	static const char buf[] =
	    "rules = (\n"
	    "  { name = \"d\"; stage = \"envfrom\"; action = \"reject\";\n"
	    "    mode = \"dry-run\"; },\n"
	    "  { name = \"e\"; stage = \"envfrom\"; action = \"reject\";\n"
	    "    mode = \"enforce\"; },\n"
	    "  { name = \"x\"; stage = \"envfrom\"; action = \"reject\"; }\n"
	    ");\n";
	struct rules_opts o = { MODE_ENFORCE, ONERR_ACCEPT };
	struct ruleset *rs;
	struct diag d;

	(void)state;
	rs = load_opts(buf, T_DIR, &o, &d);
	assert_non_null(rs);
	assert_int_equal(rules_find(rs, "d")->mode, MODE_DRYRUN);
	assert_int_equal(rules_find(rs, "e")->mode, MODE_ENFORCE);
	assert_int_equal(rules_find(rs, "x")->mode, MODE_ENFORCE);
	assert_int_equal(rs->ndryrun, 1);
	rules_unref(rs);
	diag_fini(&d);

	/* rules.mode = "dry-run": the default for rules without a mode. */
	o.default_mode = MODE_DRYRUN;
	rs = load_opts(buf, T_DIR, &o, &d);
	assert_non_null(rs);
	assert_int_equal(rules_find(rs, "d")->mode, MODE_DRYRUN);
	assert_int_equal(rules_find(rs, "e")->mode, MODE_ENFORCE);
	assert_int_equal(rules_find(rs, "x")->mode, MODE_DRYRUN);
	assert_int_equal(rs->ndryrun, 2);
	rules_unref(rs);
	diag_fini(&d);
}

/* A 421 with tempfail is right (DESIGN.md §4a), also at connect. */
static void
test_421_tempfail(void **state)
{
	static const char buf[] =
	    "rules = (\n"
	    "  { name = \"a\"; stage = \"unknown\"; action = \"tempfail\";\n"
	    "    match = { unknown_count_over = 3; };\n"
	    "    reply = \"421 4.7.0 Too many unrecognized commands\"; },\n"
	    "  { name = \"b\"; stage = \"connect\"; action = \"tempfail\";\n"
	    "    reply = \"421 4.7.0\"; }\n"
	    ");\n";
	struct ruleset *rs;
	struct diag d;

	(void)state;
	rs = load(buf, &d);
	if (rs == NULL || d.warnings != 0)
		dump(&d);
	assert_non_null(rs);
	assert_int_equal(d.warnings, 0);
	assert_int_equal(rules_find(rs, "a")->reply.code, 421);
	assert_int_equal(rules_find(rs, "b")->reply.code, 421);
	rules_unref(rs);
	diag_fini(&d);
}

/* Custom text at connect is not shown by the MTAs: a warning. */
static void
test_connect_text_warning(void **state)
{
	static const char buf[] = RULE("connect", "reject",
	    "    reply = \"554 5.7.1 Go away\";\n");
	struct ruleset *rs;
	struct diag d;

	(void)state;
	rs = load(buf, &d);
	assert_non_null(rs);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 1);
	assert_true(has(&d, DIAG_WARNING, T_FILE, 6, "stage connect"));
	rules_unref(rs);
	diag_fini(&d);
}

static void
test_limits_and_keys(void **state)
{
	static const char buf[] =
	    "rules = (\n"						/* 1 */
	    "  {\n"							/* 2 */
	    "    name = \"per-user\";\n"				/* 3 */
	    "    stage = \"envrcpt\";\n"				/* 4 */
	    "    action = \"tempfail\";\n"				/* 5 */
	    "    limit = {\n"						/* 6 */
	    "      key = [\"auth_user\", \"rcpt_domain\"];\n"		/* 7 */
	    "      rate = \"200/1h\";\n"				/* 8 */
	    "      burst = 50;\n"					/* 9 */
	    "      on_error = \"tempfail\";\n"				/* 10 */
	    "    };\n"							/* 11 */
	    "    reply = \"450 4.7.1 %{auth_user} retry in "
	    "%{retry_after}s\";\n"					/* 12 */
	    "  },\n"							/* 13 */
	    "  {\n"							/* 14 */
	    "    name = \"net-a\";\n"					/* 15 */
	    "    stage = \"envrcpt\";\n"				/* 16 */
	    "    action = \"tempfail\";\n"				/* 17 */
	    "    limit = { key = \"client_net\"; rate = \"30/1h\";\n"	/* 18 */
	    "              counter = \"net\"; ipv6_prefix = 48; };\n"	/* 19 */
	    "  },\n"							/* 20 */
	    "  {\n"							/* 21 */
	    "    name = \"net-b\";\n"					/* 22 */
	    "    stage = \"connect\";\n"				/* 23 */
	    "    action = \"tempfail\";\n"				/* 24 */
	    "    reply = \"421 4.7.0\";\n"				/* 25 */
	    "    limit = { key = \"client_net\"; rate = \"30/1h\";\n"	/* 26 */
	    "              counter = \"net\"; charge = false;\n"	/* 27 */
	    "              ipv6_prefix = 48; };\n"			/* 28 */
	    "  },\n"							/* 29 */
	    "  {\n"							/* 30 */
	    "    name = \"size\";\n"					/* 31 */
	    "    stage = \"eom\";\n"					/* 32 */
	    "    action = \"tempfail\";\n"				/* 33 */
	    "    limit = { key = \"sender\"; rate = \"100000000/1d\";\n"	/* 34 */
	    "              cost = \"size\"; on_error = \"memory\"; };\n" /* 35 */
	    "  }\n"							/* 36 */
	    ");\n";
	struct rules_opts o = { MODE_ENFORCE, ONERR_TEMPFAIL };
	const struct rule *r;
	struct ruleset *rs;
	struct diag d;

	(void)state;
	rs = load_opts(buf, T_DIR, &o, &d);
	if (rs == NULL)
		dump(&d);
	assert_non_null(rs);
	assert_int_equal(rs->nlimits, 4);

	r = rules_find(rs, "per-user");
	assert_non_null(r->limit);
	assert_int_equal(r->limit->line, 6);
	assert_int_equal(r->limit->nparts, 2);
	assert_int_equal(r->limit->parts[0], KEY_AUTH_USER);
	assert_int_equal(r->limit->parts[1], KEY_RCPT_DOMAIN);
	assert_int_equal(r->limit->count, 200);
	assert_int_equal(r->limit->period_ns, 3600LL * 1000000000LL);
	assert_int_equal(r->limit->g.burst, 50);
	assert_int_equal(r->limit->g.interval_ns, 18LL * 1000000000LL);
	assert_int_equal(r->limit->on_error, ONERR_TEMPFAIL);
	assert_string_equal(r->limit->counter, "per-user");
	assert_int_equal(r->limit->charge, 1);
	assert_int_equal(r->limit->ipv4_prefix, 24);

	r = rules_find(rs, "net-a");
	assert_string_equal(r->limit->counter, "net");
	assert_int_equal(r->limit->g.burst, 30);	/* burst defaults to N */
	assert_int_equal(r->limit->ipv6_prefix, 48);
	assert_int_equal(r->limit->charge, 1);
	/* rule's own on_error absent: the store's (opts) applies */
	assert_int_equal(r->limit->on_error, ONERR_TEMPFAIL);
	r = rules_find(rs, "net-b");
	assert_string_equal(r->limit->counter, "net");
	assert_int_equal(r->limit->charge, 0);

	r = rules_find(rs, "size");
	assert_int_equal(r->limit->cost_size, 1);
	assert_int_equal(r->limit->on_error, ONERR_MEMORY);

	/* What the MTA must send: keys and template variables. */
	assert_int_equal(rs->keys_used[STAGE_ENVRCPT],
	    (1u << KEY_AUTH_USER) | (1u << KEY_RCPT_DOMAIN) |
	    (1u << KEY_CLIENT_NET));
	assert_int_equal(rs->keys_used[STAGE_CONNECT], 1u << KEY_CLIENT_NET);
	assert_int_equal(rs->keys_used[STAGE_EOM], 1u << KEY_SENDER);
	assert_int_equal(rs->keys_used[STAGE_ENVFROM], 0);
	assert_true(rs->vars_used[STAGE_ENVRCPT] & (1u << RVAR_AUTH_USER));
	assert_true(rs->vars_used[STAGE_ENVRCPT] & (1u << RVAR_RETRY_AFTER));
	assert_int_equal(rs->nby_stage[STAGE_ENVRCPT], 2);
	assert_int_equal(rs->nby_stage[STAGE_CONNECT], 1);
	assert_int_equal(rs->nby_stage[STAGE_EOM], 1);
	rules_unref(rs);
	diag_fini(&d);
}

static void
test_tag(void **state)
{
	static const char buf[] = RULE("eom", "tag",
	    "    add_header = \"X-Warden:   %{rule} hit\";\n");
	const struct rule *r;
	struct ruleset *rs;
	struct diag d;

	(void)state;
	rs = load(buf, &d);
	if (rs == NULL)
		dump(&d);
	assert_non_null(rs);
	r = rules_find(rs, "r");
	assert_string_equal(r->tag_name, "X-Warden");
	assert_true(r->tag_value.vars & (1u << RVAR_RULE));
	rules_unref(rs);
	diag_fini(&d);
}

/* owner_map without sender_owned loads, with a warning. */
static void
test_owner_map_unused(void **state)
{
	static const char buf[] = RULE("envfrom", "reject",
	    "    owner_map = \"file:senders.map\";\n");
	char dir[256];
	struct rules_opts o = { MODE_ENFORCE, ONERR_ACCEPT };
	struct ruleset *rs;
	struct diag d;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "senders.map", "# nobody\n", (size_t)-1);
	rs = load_opts(buf, dir, &o, &d);
	assert_non_null(rs);
	assert_int_equal(d.warnings, 1);
	assert_true(has(&d, DIAG_WARNING, T_FILE, 6, "unused"));
	rules_unref(rs);
	diag_fini(&d);
	tu_rmtree(dir);
}

/* The shipped rules load with no error and no warning. */
static void
test_shipped_rules(void **state)
{
	static const char *const files[] = {
		"rules/harvest.rules", "rules/ratelimit.rules",
		"rules/submission.rules",
	};
	struct rules_opts o = { MODE_ENFORCE, ONERR_ACCEPT };
	struct ruleset *rs;
	struct diag d;

	(void)state;
	if (access(files[0], R_OK) != 0)
		skip();		/* not run from the repository root */
	diag_init(&d);
	rs = rules_load(files, 3, &o, &d);
	if (rs == NULL || d.warnings)
		dump(&d);
	assert_non_null(rs);
	assert_int_equal(d.errors, 0);
	assert_int_equal(d.warnings, 0);
	assert_int_equal(rs->nfiles, 3);
	/* submission.rules: shipped in dry-run until senders.map is filled */
	assert_non_null(rules_find(rs, "sender-login-mismatch"));
	assert_int_equal(rules_find(rs, "sender-login-mismatch")->mode,
	    MODE_DRYRUN);
	rules_unref(rs);
	diag_fini(&d);
}

/* --- files through rules_load -------------------------------------- */

struct file_run {
	char		dir[256];
	char		path[512];
	struct diag	d;
	struct ruleset	*rs;
};

static void
run_file(struct file_run *f, const char *path)
{
	struct rules_opts o = { MODE_ENFORCE, ONERR_ACCEPT };
	const char *files[1] = { path };

	diag_init(&f->d);
	f->rs = rules_load(files, 1, &o, &f->d);
}

static void
expect_error(struct file_run *f, const char *name, int line,
    const char *msg)
{
	if (f->rs != NULL || f->d.errors != 1 ||
	    !has(&f->d, DIAG_ERROR, f->path, line, msg)) {
		print_error("file %s: got %zu errors, want 1 at %s:%d: %s\n",
		    name, f->d.errors, f->path, line, msg);
		dump(&f->d);
		fail();
	}
	rules_unref(f->rs);
	diag_fini(&f->d);
}

static void
test_file_missing(void **state)
{
	struct file_run f;

	(void)state;
	tu_mkdtemp(f.dir, sizeof(f.dir));
	snprintf(f.path, sizeof(f.path), "%s/none.rules", f.dir);
	run_file(&f, f.path);
	expect_error(&f, "missing", 0, "No such file");
	tu_rmtree(f.dir);
}

static void
test_file_unreadable(void **state)
{
	struct file_run f;

	(void)state;
	if (geteuid() == 0)
		skip();		/* root reads a mode 000 file anyway */
	tu_mkdtemp(f.dir, sizeof(f.dir));
	tu_write(f.dir, "x.rules", "rules = ();\n", (size_t)-1);
	snprintf(f.path, sizeof(f.path), "%s/x.rules", f.dir);
	assert_int_equal(chmod(f.path, 0), 0);
	run_file(&f, f.path);
	expect_error(&f, "unreadable", 0, "Permission denied");
	tu_rmtree(f.dir);
}

static void
test_file_directory(void **state)
{
	struct file_run f;

	(void)state;
	tu_mkdtemp(f.dir, sizeof(f.dir));
	snprintf(f.path, sizeof(f.path), "%s", f.dir);
	run_file(&f, f.path);
	expect_error(&f, "directory", 0, "not a regular file");
	tu_rmtree(f.dir);
}

static void
test_file_binary(void **state)
{
	static const char bin[] = "rules = (\n\0\x01\x02\xff\n);\n";
	struct file_run f;

	(void)state;
	tu_mkdtemp(f.dir, sizeof(f.dir));
	tu_write(f.dir, "bin.rules", bin, sizeof(bin) - 1);
	snprintf(f.path, sizeof(f.path), "%s/bin.rules", f.dir);
	run_file(&f, f.path);
	expect_error(&f, "binary", 0, "binary file");
	tu_rmtree(f.dir);
}

/* Cut in the middle of a rule: libconfig's error, with its line. */
static void
test_file_truncated(void **state)
{
	static const char cut[] =
	    "rules = (\n"
	    "  {\n"
	    "    name = \"r\";\n"
	    "    stage = \"envfrom\";\n"
	    "    action = \"rej";
	struct file_run f;

	(void)state;
	tu_mkdtemp(f.dir, sizeof(f.dir));
	tu_write(f.dir, "cut.rules", cut, sizeof(cut) - 1);
	snprintf(f.path, sizeof(f.path), "%s/cut.rules", f.dir);
	run_file(&f, f.path);
	expect_error(&f, "truncated", 5, "syntax error");
	tu_rmtree(f.dir);
}

static void
test_file_huge(void **state)
{
	struct file_run f;
	size_t n = 10 * 1024 * 1024;
	char *big;

	(void)state;
	tu_mkdtemp(f.dir, sizeof(f.dir));
	big = malloc(n);
	assert_non_null(big);
	memset(big, '#', n);
	big[n - 1] = '\n';
	tu_write(f.dir, "big.rules", big, n);
	free(big);
	snprintf(f.path, sizeof(f.path), "%s/big.rules", f.dir);
	run_file(&f, f.path);
	expect_error(&f, "10 MB", 0, "larger than");
	tu_rmtree(f.dir);
}

static void
test_file_deep(void **state)
{
	struct file_run f;
	size_t n = 100000;
	char *deep;

	(void)state;
	tu_mkdtemp(f.dir, sizeof(f.dir));
	deep = malloc(n + 16);
	assert_non_null(deep);
	memcpy(deep, "rules = ", 8);
	memset(deep + 8, '(', n);
	deep[8 + n] = '\n';
	tu_write(f.dir, "deep.rules", deep, 8 + n + 1);
	free(deep);
	snprintf(f.path, sizeof(f.path), "%s/deep.rules", f.dir);
	run_file(&f, f.path);
	expect_error(&f, "deep", 1, "nested deeper than");
	tu_rmtree(f.dir);
}

static void
test_file_empty(void **state)
{
	struct file_run f;

	(void)state;
	tu_mkdtemp(f.dir, sizeof(f.dir));
	tu_write(f.dir, "empty.rules", "", 0);
	snprintf(f.path, sizeof(f.path), "%s/empty.rules", f.dir);
	run_file(&f, f.path);
	assert_non_null(f.rs);
	assert_int_equal(f.d.errors, 0);
	assert_int_equal(f.d.warnings, 1);
	assert_true(has(&f.d, DIAG_WARNING, f.path, 0, "defines no rule"));
	assert_int_equal(f.rs->nrules, 0);
	rules_unref(f.rs);
	diag_fini(&f.d);
	tu_rmtree(f.dir);
}

/* Duplicates across files name the first file; a bad file does not
 * stop the next one from being checked. */
static void
test_files_cross(void **state)
{
	struct rules_opts o = { MODE_ENFORCE, ONERR_ACCEPT };
	char dir[256], a[300], b[300], c[300], want[400];
	const char *files[3] = { a, b, c };
	struct ruleset *rs;
	struct diag d;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "a.rules",
	    "# first\n"
	    "rules = (\n"
	    "  { name = \"x\"; stage = \"helo\"; action = \"log\"; }\n"
	    ");\n", (size_t)-1);
	tu_write(dir, "b.rules", "rules = (\n", (size_t)-1);
	tu_write(dir, "c.rules",
	    "rules = (\n"
	    "  {\n"
	    "    name = \"x\";\n"
	    "    stage = \"helo\";\n"
	    "    action = \"discard\";\n"
	    "  }\n"
	    ");\n", (size_t)-1);
	snprintf(a, sizeof(a), "%s/a.rules", dir);
	snprintf(b, sizeof(b), "%s/b.rules", dir);
	snprintf(c, sizeof(c), "%s/c.rules", dir);
	diag_init(&d);
	rs = rules_load(files, 3, &o, &d);
	assert_null(rs);
	snprintf(want, sizeof(want), "\"x\" is already used at %s:3", a);
	if (d.errors != 3 || !has(&d, DIAG_ERROR, b, 2, "syntax error") ||
	    !has(&d, DIAG_ERROR, c, 5, "discard is not possible") ||
	    !has(&d, DIAG_ERROR, c, 3, want)) {
		print_error("cross: got %zu errors, want 3\n", d.errors);
		dump(&d);
		fail();
	}
	diag_fini(&d);
	tu_rmtree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_table),
		cmocka_unit_test(test_nesting),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_semicolons_optional),
		cmocka_unit_test(test_every_condition),
		cmocka_unit_test(test_multiline_reply),
		cmocka_unit_test(test_default_replies),
		cmocka_unit_test(test_modes),
		cmocka_unit_test(test_421_tempfail),
		cmocka_unit_test(test_connect_text_warning),
		cmocka_unit_test(test_limits_and_keys),
		cmocka_unit_test(test_tag),
		cmocka_unit_test(test_owner_map_unused),
		cmocka_unit_test(test_shipped_rules),
		cmocka_unit_test(test_file_missing),
		cmocka_unit_test(test_file_unreadable),
		cmocka_unit_test(test_file_directory),
		cmocka_unit_test(test_file_binary),
		cmocka_unit_test(test_file_truncated),
		cmocka_unit_test(test_file_huge),
		cmocka_unit_test(test_file_deep),
		cmocka_unit_test(test_file_empty),
		cmocka_unit_test(test_files_cross),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

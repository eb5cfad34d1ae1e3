/*
 * test_macros.c - unit tests for macros.c: the exact macro list per milter
 * stage for small rule sets (macros_needed), bounded output, and the
 * Postfix/Sendmail parameter names and default lists.
 * Expected values: DESIGN.md §4a (the listener from {daemon_port} or
 * {daemon_name}, TLS from {tls_version}/{cipher_bits}, AUTH from
 * {auth_type}/{auth_authen}, refused recipients from {rcpt_mailer}),
 * DESIGN.md §5 (every decision line has the queue id "i" and port=), the
 * defaults as printed by `postconf -d` on Postfix 3.7 and as listed in
 * libmilter's smfi_getsymval.html / Sendmail cf/README, never the code.
 * Threads: none. Memory: rulesets are unreferenced (ASan checks).
 */
#include "testutil.h"

#include "diag.h"
#include "macros.h"
#include "rules.h"
#include "tu_rules.h"

#define WANT_INT(row, what, got, want) do {				\
	long long g_ = (long long)(got), w_ = (long long)(want);	\
	if (g_ != w_)							\
		fail_msg("%s: %s: got %lld, want %lld", (row), (what),	\
		    g_, w_);						\
} while (0)

#define WANT_STR(row, what, got, want) do {				\
	const char *g_ = (got), *w_ = (want);				\
	if (strcmp(g_, w_) != 0)					\
		fail_msg("%s: %s: got \"%s\", want \"%s\"", (row),	\
		    (what), g_, w_);					\
} while (0)

static const char *const ms_names[MS_COUNT] = {
	"connect", "helo", "envfrom", "envrcpt", "eom",
};

/* One rule of stage st whose body (match, limit, ...) is x. */
#define R1(st, act, x)							\
	"rules = ( { name = \"r\"; stage = \"" st "\"; action = \""	\
	act "\"; " x " } );\n"

static struct ruleset *
load(const char *text, const char *row)
{
	return tu_load(text, ".", row);
}

/* Joins a list with spaces, "" for none. */
static const char *
join(const char *const *v, size_t n, char *buf, size_t len)
{
	size_t i, at = 0;

	buf[0] = '\0';
	for (i = 0; i < n && v[i] != NULL; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%s",
		    i > 0 ? " " : "", v[i]);
	return buf;
}

/*
 * want[ms]: the macros, space-separated, in the order asked for. Always:
 * {daemon_port} at connect (port= on every decision line) and the queue
 * id "i" at envfrom, envrcpt (Postfix assigns it at the first accepted
 * RCPT; a list sent with smfi_setsymlist replaces Postfix's own) and eom.
 */
static const struct {
	const char	*name;
	const char	*rules;
	const char	*want[MS_COUNT];
} cases[] = {
	{ "no conditions", R1("connect", "log", ""),
	    { "{daemon_port}", "", "i", "i", "i" } },
	{ "port only", R1("envfrom", "log", "match = { port = 587; };"),
	    { "{daemon_port}", "", "i", "i", "i" } },
	{ "daemon", R1("connect", "log",
	    "match = { daemon = \"submission\"; };"),
	    { "{daemon_port} {daemon_name}", "", "i", "i", "i" } },
	{ "tls", R1("helo", "log", "match = { tls = false; };"),
	    { "{daemon_port}", "{tls_version} {cipher_bits}", "i", "i",
	    "i" } },
	{ "tls_version", R1("envfrom", "log",
	    "match = { tls_version = \"TLSv1\"; };"),
	    { "{daemon_port}", "{tls_version} {cipher_bits}", "i", "i",
	    "i" } },
	{ "cipher_bits_below", R1("eom", "log",
	    "match = { cipher_bits_below = 128; };"),
	    { "{daemon_port}", "{tls_version} {cipher_bits}", "i", "i",
	    "i" } },
	{ "auth", R1("envfrom", "log", "match = { auth = false; };"),
	    { "{daemon_port}", "", "i {auth_type} {auth_authen}", "i",
	    "i" } },
	{ "auth_user", R1("envrcpt", "log",
	    "match = { auth_user = \"alice\"; };"),
	    { "{daemon_port}", "", "i {auth_type} {auth_authen}", "i",
	    "i" } },
	{ "auth_mech", R1("envfrom", "log",
	    "match = { auth_mech = \"PLAIN\"; };"),
	    { "{daemon_port}", "", "i {auth_type} {auth_authen}", "i",
	    "i" } },
	{ "limit keyed on auth_user", R1("envrcpt", "tempfail",
	    "limit = { key = [\"auth_user\"]; rate = \"10/1m\"; };"),
	    { "{daemon_port}", "", "i {auth_type} {auth_authen}", "i",
	    "i" } },
	{ "limit keyed on client_ip", R1("envrcpt", "tempfail",
	    "limit = { key = [\"client_ip\", \"rcpt\"]; rate = \"10/1m\"; };"),
	    { "{daemon_port}", "", "i", "i", "i" } },
	{ "%{auth_user} in a reply", R1("envfrom", "reject",
	    "reply = \"550 5.7.1 no %{auth_user}\";"),
	    { "{daemon_port}", "", "i {auth_type} {auth_authen}", "i",
	    "i" } },
	{ "%{auth_user} in add_header", R1("eom", "tag",
	    "add_header = \"X-User: %{auth_user}\";"),
	    { "{daemon_port}", "", "i {auth_type} {auth_authen}", "i",
	    "i" } },
	{ "%{helo} in a reply", R1("envfrom", "reject",
	    "reply = \"550 5.7.1 no %{helo} %{sender}\";"),
	    { "{daemon_port}", "", "i", "i", "i" } },
	{ "rcpt_rejected", R1("envrcpt", "log",
	    "match = { rcpt_rejected = true; };"),
	    { "{daemon_port}", "", "i", "i {rcpt_mailer}", "i" } },
	{ "bad_rcpt_count_over at unknown", R1("unknown", "tempfail",
	    "match = { bad_rcpt_count_over = 3; }; "
	    "reply = \"421 4.7.0 Bye\";"),
	    { "{daemon_port}", "", "i", "i {rcpt_mailer}", "i" } },
	/* conditions inside any/not count like top-level ones */
	{ "nested any/not", R1("envfrom", "log",
	    "match = { any = ( { not = { tls = true; }; }, "
	    "{ not = { any = ( { auth = true; }, "
	    "{ daemon = \"x\"; } ); }; } ); };"),
	    { "{daemon_port} {daemon_name}", "{tls_version} {cipher_bits}",
	    "i {auth_type} {auth_authen}", "i", "i" } },
	/* conditions that need no macro */
	{ "plain conditions", R1("envrcpt", "log",
	    "match = { client = \"192.0.2.0/24\"; client_name = \"*.x\"; "
	    "helo = \"h\"; sender = \"a@b\"; rcpt_domain = \"c\"; "
	    "rcpt_count_over = 5; };"),
	    { "{daemon_port}", "", "i", "i", "i" } },
	/* everything at once, from several rules */
	{ "all", "rules = (\n"
	    "  { name = \"a\"; stage = \"connect\"; action = \"log\";"
	    "    match = { daemon = \"smtpd\"; }; },\n"
	    "  { name = \"b\"; stage = \"envfrom\"; action = \"log\";"
	    "    match = { tls = true; auth = true; }; },\n"
	    "  { name = \"c\"; stage = \"envrcpt\"; action = \"log\";"
	    "    match = { rcpt_rejected = true; }; }\n"
	    ");\n",
	    { "{daemon_port} {daemon_name}", "{tls_version} {cipher_bits}",
	    "i {auth_type} {auth_authen}", "i {rcpt_mailer}", "i" } },
};

static void
test_needed(void **state)
{
	const char *out[MACROS_MAX + 1];
	char got[256], row[96];
	struct ruleset *rs;
	size_t i, n;
	int ms;

	(void)state;
	for (i = 0; i < NELEM(cases); i++) {
		rs = load(cases[i].rules, cases[i].name);
		for (ms = 0; ms < MS_COUNT; ms++) {
			snprintf(row, sizeof(row), "%s: %s", cases[i].name,
			    ms_names[ms]);
			memset(out, 0, sizeof(out));
			n = macros_needed(rs, ms, out, MACROS_MAX);
			WANT_STR(row, "macros", join(out, n, got,
			    sizeof(got)), cases[i].want[ms]);
			if (n > MACROS_MAX)
				fail_msg("%s: %zu > MACROS_MAX", row, n);
			if (out[n] != NULL)
				fail_msg("%s: wrote past the count", row);
		}
		tu_drop(rs);
	}
}

/* sender_owned needs the login: the AUTH macros at envfrom. */
static void
test_needed_sender_owned(void **state)
{
	const char *out[MACROS_MAX + 1];
	char dir[256], got[256];
	struct ruleset *rs;
	size_t n;

	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	tu_write(dir, "senders.map", "alice alice@example.com\n", (size_t)-1);
	rs = tu_load(R1("envfrom", "reject",
	    "match = { sender_owned = false; }; "
	    "owner_map = \"file:senders.map\"; "
	    "reply = \"553 5.7.1 Not yours\";"), dir, "sender_owned");
	tu_rmtree(dir);
	memset(out, 0, sizeof(out));
	n = macros_needed(rs, MS_ENVFROM, out, MACROS_MAX);
	WANT_STR("sender_owned", "envfrom", join(out, n, got, sizeof(got)),
	    "i {auth_type} {auth_authen}");
	n = macros_needed(rs, MS_HELO, out, MACROS_MAX);
	WANT_STR("sender_owned", "helo", join(out, n, got, sizeof(got)), "");
	tu_drop(rs);
}

/* max bounds what is written: the first max names, never more. */
static void
test_needed_max(void **state)
{
	static const char *const sentinel = "untouched";
	const char *out[4];
	char got[128], row[32];
	struct ruleset *rs;
	size_t n, max, i;

	(void)state;
	rs = load(R1("envfrom", "log", "match = { auth = true; };"), "max");
	for (max = 0; max <= 3; max++) {
		snprintf(row, sizeof(row), "envfrom max %zu", max);
		for (i = 0; i < NELEM(out); i++)
			out[i] = sentinel;
		n = macros_needed(rs, MS_ENVFROM, out, max);
		WANT_INT(row, "count", n, max);
		WANT_STR(row, "macros", join(out, n, got, sizeof(got)),
		    max == 0 ? "" : max == 1 ? "i" : max == 2 ?
		    "i {auth_type}" : "i {auth_type} {auth_authen}");
		for (i = n; i < NELEM(out); i++)
			if (out[i] != sentinel)
				fail_msg("%s: out[%zu] written", row, i);
	}
	tu_drop(rs);
}

/*
 * Postfix 3.7 `postconf -d`; Sendmail 8.17 cf/README (the same sets as
 * libmilter's smfi_getsymval.html lists per callback).
 */
static const struct {
	const char	*pf_param, *pf_default, *sm_define, *sm_default;
} mta[MS_COUNT] = {
	{ "milter_connect_macros", "j {daemon_name} {daemon_addr} v _",
	    "confMILTER_MACROS_CONNECT",
	    "j, _, {daemon_name}, {if_name}, {if_addr}" },
	{ "milter_helo_macros",
	    "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
	    "confMILTER_MACROS_HELO",
	    "{tls_version}, {cipher}, {cipher_bits}, {cert_subject}, "
	    "{cert_issuer}" },
	{ "milter_mail_macros",
	    "i {auth_type} {auth_authen} {auth_author} {mail_addr} "
	    "{mail_host} {mail_mailer}",
	    "confMILTER_MACROS_ENVFROM",
	    "i, {auth_type}, {auth_authen}, {auth_ssf}, {auth_author}, "
	    "{mail_mailer}, {mail_host}, {mail_addr}" },
	{ "milter_rcpt_macros", "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
	    "confMILTER_MACROS_ENVRCPT",
	    "{rcpt_mailer}, {rcpt_host}, {rcpt_addr}" },
	{ "milter_end_of_data_macros", "i", "confMILTER_MACROS_EOM",
	    "{msg_id}" },
};

static void
test_defaults(void **state)
{
	int ms;

	(void)state;
	for (ms = 0; ms < MS_COUNT; ms++) {
		WANT_STR(ms_names[ms], "macros_postfix_param",
		    macros_postfix_param(ms), mta[ms].pf_param);
		WANT_STR(ms_names[ms], "macros_postfix_default",
		    macros_postfix_default(ms), mta[ms].pf_default);
		WANT_STR(ms_names[ms], "macros_sendmail_define",
		    macros_sendmail_define(ms), mta[ms].sm_define);
		WANT_STR(ms_names[ms], "macros_sendmail_default",
		    macros_sendmail_default(ms), mta[ms].sm_default);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_needed, tu_rules_teardown),
		cmocka_unit_test_teardown(test_needed_sender_owned, tu_rules_teardown),
		cmocka_unit_test_teardown(test_needed_max, tu_rules_teardown),
		cmocka_unit_test_teardown(test_defaults, tu_rules_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

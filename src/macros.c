/*
 * macros.c - the MTA macros the loaded rules need, per milter stage.
 * Defaults are those of Postfix 3.7 (postconf -d) and Sendmail 8.17
 * (cf/README); the lines `warden check` prints are default plus what is
 * missing, so pasting them never takes a macro away from another milter.
 */
#include <string.h>

#include "macros.h"

static const struct {
	const char *pf_param, *pf_default, *sm_define, *sm_default;
} mta[MS_COUNT] = {
	[MS_CONNECT] = { "milter_connect_macros",
	    "j {daemon_name} {daemon_addr} v _", "confMILTER_MACROS_CONNECT",
	    "j, _, {daemon_name}, {if_name}, {if_addr}" },
	[MS_HELO] = { "milter_helo_macros",
	    "{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
	    "confMILTER_MACROS_HELO",
	    "{tls_version}, {cipher}, {cipher_bits}, {cert_subject}, "
	    "{cert_issuer}" },
	[MS_ENVFROM] = { "milter_mail_macros",
	    "i {auth_type} {auth_authen} {auth_author} {mail_addr} "
	    "{mail_host} {mail_mailer}", "confMILTER_MACROS_ENVFROM",
	    "i, {auth_type}, {auth_authen}, {auth_ssf}, {auth_author}, "
	    "{mail_mailer}, {mail_host}, {mail_addr}" },
	[MS_ENVRCPT] = { "milter_rcpt_macros",
	    "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
	    "confMILTER_MACROS_ENVRCPT",
	    "{rcpt_mailer}, {rcpt_host}, {rcpt_addr}" },
	[MS_EOM] = { "milter_end_of_data_macros", "i",
	    "confMILTER_MACROS_EOM", "{msg_id}" },
};

#define C(k)	(1u << (k))
#define TLS_CONDS	(C(COND_TLS) | C(COND_TLS_VERSION) | \
	C(COND_CIPHER_BITS_BELOW))
#define AUTH_CONDS	(C(COND_AUTH) | C(COND_AUTH_USER) | C(COND_AUTH_MECH) | \
	C(COND_SENDER_OWNED))
#define REJ_CONDS	(C(COND_RCPT_REJECTED) | C(COND_BAD_RCPT_COUNT_OVER))

size_t
macros_needed(const struct ruleset *rs, enum macro_stage ms,
    const char **out, size_t max)
{
	uint32_t conds = 0, keys = 0, vars = 0;
	size_t n = 0;
	int s;

	for (s = 0; s < STAGE_COUNT; s++) {
		conds |= rs->conds_used[s];
		keys |= rs->keys_used[s];
		vars |= rs->vars_used[s];
	}
#define ADD(m)	do { if (n < max) out[n++] = (m); } while (0)
	switch (ms) {
	case MS_CONNECT:
		/* The listener's port: rules and every decision log line. */
		ADD("{daemon_port}");
		if (conds & C(COND_DAEMON))
			ADD("{daemon_name}");
		break;
	case MS_HELO:
		if (conds & TLS_CONDS) {
			ADD("{tls_version}");
			ADD("{cipher_bits}");
		}
		break;
	case MS_ENVFROM:
		/* The queue id: every decision line starts with it. */
		ADD("i");
		if ((conds & AUTH_CONDS) || (keys & C(KEY_AUTH_USER)) ||
		    (vars & C(RVAR_AUTH_USER))) {
			ADD("{auth_type}");
			ADD("{auth_authen}");
		}
		break;
	case MS_ENVRCPT:
		/*
		 * The queue id: Postfix assigns it at the first accepted
		 * RCPT, and a macro list we send replaces its default one.
		 */
		ADD("i");
		/* Postfix marks recipients it refused with {rcpt_mailer}. */
		if (conds & REJ_CONDS)
			ADD("{rcpt_mailer}");
		break;
	case MS_EOM:
		ADD("i");
		break;
	default:
		break;
	}
#undef ADD
	return n;
}

const char *
macros_postfix_param(enum macro_stage ms)
{
	return mta[ms].pf_param;
}

const char *
macros_postfix_default(enum macro_stage ms)
{
	return mta[ms].pf_default;
}

const char *
macros_sendmail_define(enum macro_stage ms)
{
	return mta[ms].sm_define;
}

const char *
macros_sendmail_default(enum macro_stage ms)
{
	return mta[ms].sm_default;
}

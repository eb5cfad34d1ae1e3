/*
 * reply.h - SMTP replies with RFC 3463 enhanced codes: parse, validate
 * (lint) for Postfix and Sendmail, expand templates.
 * Owns: reply syntax, the %{var} templates, wrapping and escaping.
 * Not: choosing which reply to send (engine.c).
 * Threads: a parsed reply is immutable; expansion writes only to the
 * caller's struct reply_out.
 * Errors: problems go into a struct diag with FILE:LINE; expansion never
 * fails (hostile values are cleaned and bounded, output is cut at
 * REPLY_LINES_MAX lines).
 */
#ifndef WARDEN_REPLY_H
#define WARDEN_REPLY_H

#include <stddef.h>
#include "diag.h"
#include "stage.h"

#define REPLY_LINES_MAX	32	/* Postfix milter8 and libmilter limit */
/*
 * RFC 5321 §4.5.3.1.5: a reply line, code and CRLF included, is at most
 * 512 octets. "550-5.7.1 " takes 4 + up to 12, CRLF 2: text gets 490.
 */
#define REPLY_LINE_MAX	512
#define REPLY_TEXT_MAX	490
#define REPLY_VAR_MAX	256	/* one expanded %{var} value, at most */
#define REPLY_OUT_MAX	(REPLY_LINES_MAX * (REPLY_TEXT_MAX + 1))

enum reply_var {
	RVAR_CLIENT_IP,
	RVAR_CLIENT_NAME,
	RVAR_HELO,
	RVAR_SENDER,
	RVAR_RCPT,
	RVAR_AUTH_USER,
	RVAR_RULE,
	RVAR_RETRY_AFTER,
	RVAR_QUEUE_ID,
	RVAR_COUNT
};

/* A template piece: literal text or one variable. */
struct reply_piece {
	int		var;	/* -1: literal */
	const char	*text;	/* literal, borrowed from the reply's buffer */
	size_t		len;
};

/* A parsed, validated reply. Immutable after reply_parse. */
struct reply {
	int		code;		/* 421..599 */
	int		xclass, xsubject, xdetail;	/* RFC 3463 */
	size_t		nlines;		/* template lines as written */
	struct reply_piece *pieces;	/* all lines' pieces, owned */
	size_t		*line_first;	/* index of each line's first piece */
	size_t		npieces;
	char		*buf;		/* owned copy of the literal text */
	unsigned	vars;		/* bit set of RVAR_* used */
};

/* Where the reply is set up: for diagnostics and stage-specific lint. */
struct reply_ctx {
	const char	*file;
	int		line;
	enum stage	stage;
	enum action	action;		/* REJECT or TEMPFAIL */
};

/*
 * Parses the reply lines (each "CODE X.Y.Z text", or text only after the
 * first line), validates them against DESIGN.md §3 and the linter rules
 * for the stage and action, and fills *r. Every problem is added to d
 * (errors and warnings). Returns 0 when there was no error (warnings
 * allowed), -1 otherwise; on -1 *r holds nothing to free.
 */
int	reply_parse(struct reply *r, const char *const *lines, size_t nlines,
	    const struct reply_ctx *, struct diag *d) WARN_UNUSED;
void	reply_fini(struct reply *);

/*
 * Parses one line of template text alone (no code), e.g. the value of a
 * tag's add_header, with the same checks on bytes and variables. The
 * result has code 0; reply_expand fills only lines.
 */
int	reply_tmpl_parse(struct reply *r, const char *text,
	    const struct reply_ctx *, struct diag *d) WARN_UNUSED;

/* The default reply for an action (REJECT 550 5.7.1, TEMPFAIL 450 4.7.1). */
int	reply_default(struct reply *, enum action) WARN_UNUSED;

/* Stages at which a template variable has a value. */
unsigned reply_var_stages(enum reply_var);
const char *reply_var_name(enum reply_var);

/* The values for expansion; NULL or "" means unknown (expands to ""). */
struct reply_vars {
	const char	*v[RVAR_COUNT];
};

/*
 * An expanded reply as the MTA will send it: code, enhanced code, and
 * lines of text (wrapped at word boundaries to REPLY_TEXT_MAX, cleaned of
 * control bytes, at most REPLY_LINES_MAX lines). No '%' doubling here:
 * reply_milter_esc does that for libmilter.
 */
struct reply_out {
	int		code;
	char		rcode[4];	/* "550" */
	char		xcode[16];	/* "5.7.1" */
	size_t		nlines;
	const char	*line[REPLY_LINES_MAX];	/* into buf */
	char		buf[REPLY_OUT_MAX];
};

void	reply_expand(const struct reply *, const struct reply_vars *,
	    struct reply_out *out);

/* A fixed reply (e.g. 451 4.3.0 for on_error=tempfail) into out. */
void	reply_out_set(struct reply_out *out, int code, int xclass,
	    int xsubject, int xdetail, const char *text);

/*
 * Formats out as the client sees it: "550-5.7.1 a\r\n550 5.7.1 b" with
 * the given separator between lines ("\n" for explain, "\r\n" on the
 * wire). Returns the length written (always NUL-terminated, cut if needed).
 */
size_t	reply_out_format(const struct reply_out *, const char *sep,
	    char *buf, size_t len);

/* Single-line "550 5.7.1 a b" form for logs: lines joined by a space. */
size_t	reply_out_format_log(const struct reply_out *, char *buf, size_t len);

/* Copies text to buf doubling every '%' (libmilter, Sendmail). */
size_t	reply_milter_esc(const char *text, char *buf, size_t len);

#endif

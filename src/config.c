/*
 * config.c - etc/warden.conf (DESIGN.md §2): every key, type and range is
 * checked with FILE:LINE, the rule globs are expanded relative to the
 * file and the rules loaded.
 * Owns: the config data model and its validation. Not: rule syntax
 * (rules.c), acting on settings (main.c, the stores).
 * Threads: built once per load, immutable afterwards.
 * Errors: collected in a struct diag, all of them; config_load returns
 * NULL when there was any error. Never aborts on input.
 */
#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "lcfg.h"
#include "match.h"
#include "store.h"

static const char *const top_keys[] = {
	"milter", "daemon", "rules", "store", NULL
};
static const char *const milter_keys[] = {
	"socket", "socket_mode", "timeout", NULL
};
static const char *const daemon_keys[] = {
	"user", "pidfile", "log", "syslog_facility", "log_level",
	"stats_interval", "metrics_file", "log_privacy", NULL
};
static const char *const rules_keys[] = { "files", "mode", NULL };
static const char *const store_keys[] = {
	"backend", "on_error", "key_secret", "memory", "redis", NULL
};
static const char *const memory_keys[] = { "max_keys", NULL };
static const char *const redis_keys[] = {
	"host", "port", "socket", "username", "password", "db", "prefix",
	"connect_timeout_ms", "command_timeout_ms", "pool", "sentinels",
	"master_name", "sentinel_username", "sentinel_password",
	"breaker_failures", "breaker_backoff_ms", "breaker_backoff_max_ms",
	NULL
};

struct cl {
	struct config	*c;
	const char	*file;
	struct diag	*d;
	int		rc;
};

static char *
xstrdup(struct cl *l, const char *s)
{
	char *p = strdup(s != NULL ? s : "");

	if (p == NULL) {
		diag_err(l->d, l->file, 0, "out of memory");
		l->rc = -1;
	}
	return p;
}

/* A sub-group; absent is fine (defaults), anything else is an error. */
static const config_setting_t *
group(struct cl *l, const config_setting_t *parent, const char *name,
    const char *path, const char *const *keys)
{
	const config_setting_t *g = config_setting_get_member(parent, name);

	if (g == NULL)
		return NULL;
	if (!config_setting_is_group(g)) {
		diag_err(l->d, lcfg_file(g, l->file), lcfg_line(g),
		    "%s: must be a group { ... }, not %s", path,
		    lcfg_type_name(g));
		l->rc = -1;
		return NULL;
	}
	if (lcfg_check_keys(g, keys, l->file, path, l->d) > 0)
		l->rc = -1;
	return g;
}

static void
get_str(struct cl *l, const config_setting_t *g, const char *name,
    const char *what, char **out)
{
	const char *v;
	int got;

	if (g == NULL)
		return;
	got = lcfg_get_string(g, name, &v, l->file, what, l->d);
	if (got < 0)
		l->rc = -1;
	else if (got > 0) {
		free(*out);
		*out = xstrdup(l, v);
	}
}

static void
get_int(struct cl *l, const config_setting_t *g, const char *name,
    const char *what, long long min, long long max, int *out)
{
	long long v;
	int got;

	if (g == NULL)
		return;
	got = lcfg_get_int(g, name, min, max, &v, l->file, what, l->d);
	if (got < 0)
		l->rc = -1;
	else if (got > 0)
		*out = (int)v;
}

/* A string setting with a fixed set of values. */
static void
get_choice(struct cl *l, const config_setting_t *g, const char *name,
    const char *what, int (*lookup)(const char *), const char *choices,
    int *out)
{
	if (g != NULL && lcfg_get_choice(g, name, lookup, choices, out,
	    l->file, what, l->d) < 0)
		l->rc = -1;
}

static int
sink_by_name(const char *s)
{
	if (strcmp(s, "syslog") == 0)
		return LOG_SINK_SYSLOG;
	if (strcmp(s, "stderr") == 0)
		return LOG_SINK_STDERR;
	return -1;
}

/* store.on_error: "memory" is a per-rule fallback, not a default. */
static int
onerr_by_name(const char *s)
{
	int v = rules_on_error_by_name(s);

	return v == ONERR_MEMORY ? -1 : v;
}

static int
backend_by_name(const char *s)
{
	if (strcmp(s, "memory") == 0)
		return 0;
	if (strcmp(s, "redis") == 0)
		return 1;
	return -1;
}

/* "inet:PORT@HOST", "inet6:PORT@HOST", "unix:PATH" or "local:PATH". */
static int
valid_socket(const char *s, char *why, size_t len)
{
	const char *at, *p;
	long long port;
	char buf[16];

	if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "local:", 6) == 0) {
		p = strchr(s, ':') + 1;
		if (*p != '/') {
			snprintf(why, len, "the socket path must be absolute");
			return 0;
		}
		/* sun_path holds 108 bytes on Linux. */
		if (strlen(p) >= 108) {
			snprintf(why, len, "the socket path is longer than "
			    "107 bytes");
			return 0;
		}
		return 1;
	}
	if (strncmp(s, "inet:", 5) != 0 && strncmp(s, "inet6:", 6) != 0) {
		snprintf(why, len, "must start with inet:, inet6: or unix:");
		return 0;
	}
	p = strchr(s, ':') + 1;
	at = strchr(p, '@');
	if (at == NULL || (size_t)(at - p) >= sizeof(buf) || at[1] == '\0') {
		snprintf(why, len, "must be inet:PORT@HOST");
		return 0;
	}
	memcpy(buf, p, (size_t)(at - p));
	buf[at - p] = '\0';
	if (str_to_ll(buf, 1, 65535, &port) != 0) {
		snprintf(why, len, "port \"%s\" not in 1..65535", buf);
		return 0;
	}
	return 1;
}

static void
load_milter(struct cl *l, const config_setting_t *root)
{
	const config_setting_t *g, *s;
	struct config *c = l->c;
	char why[96];
	const char *v;
	long long mode;

	g = group(l, root, "milter", "milter", milter_keys);
	get_str(l, g, "socket", "milter.", &c->milter.socket);
	if (!valid_socket(c->milter.socket, why, sizeof(why))) {
		s = g != NULL ? config_setting_get_member(g, "socket") : NULL;
		diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
		    "milter.socket: \"%s\": %s", c->milter.socket, why);
		l->rc = -1;
	}
	if (g != NULL && lcfg_get_string(g, "socket_mode", &v, l->file,
	    "milter.", l->d) > 0) {
		s = config_setting_get_member(g, "socket_mode");
		/* An octal string: libconfig has no octal integers. */
		if (strlen(v) < 3 || strlen(v) > 4 ||
		    strspn(v, "01234567") != strlen(v) ||
		    (mode = strtoll(v, NULL, 8)) > 0777) {
			diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
			    "milter.socket_mode: \"%s\" is not an octal mode "
			    "like \"0660\"", v);
			l->rc = -1;
		} else {
			c->milter.socket_mode = (int)mode;
			if (strncmp(c->milter.socket, "inet", 4) == 0)
				diag_warn(l->d, lcfg_file(s, l->file),
				    lcfg_line(s), "milter.socket_mode: only "
				    "applies to unix sockets");
		}
	} else if (g != NULL && config_setting_get_member(g, "socket_mode"))
		l->rc = -1;
	get_int(l, g, "timeout", "milter.", 1, 86400, &c->milter.timeout);
	if (g != NULL && c->milter.timeout < 600 &&
	    (s = config_setting_get_member(g, "timeout")) != NULL)
		diag_warn(l->d, lcfg_file(s, l->file), lcfg_line(s),
		    "milter.timeout: %d s is shorter than Postfix's "
		    "smtpd_timeout (300 s) plus slack; idle sessions may be "
		    "cut", c->milter.timeout);
}

/*
 * The daemon's working directory is wherever it was started from
 * (systemd: /), so a relative path would land somewhere else than the
 * postmaster thinks and than `warden check` could tell.
 */
static void
need_abs(struct cl *l, const config_setting_t *g, const char *key,
    const char *v)
{
	const config_setting_t *s;

	if (v[0] == '\0' || v[0] == '/')
		return;
	s = config_setting_get_member(g, key);
	diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
	    "daemon.%s: \"%s\" must be an absolute path", key, v);
	l->rc = -1;
}

static void
load_daemon(struct cl *l, const config_setting_t *root)
{
	const config_setting_t *g;
	struct config *c = l->c;
	int v, b;

	g = group(l, root, "daemon", "daemon", daemon_keys);
	get_str(l, g, "user", "daemon.", &c->daemon.user);
	get_str(l, g, "pidfile", "daemon.", &c->daemon.pidfile);
	v = (int)c->daemon.log;
	get_choice(l, g, "log", "daemon.", sink_by_name, "syslog, stderr", &v);
	c->daemon.log = (enum log_sink)v;
	get_choice(l, g, "syslog_facility", "daemon.", log_facility_by_name,
	    "mail, daemon, user, local0..local7", &c->daemon.facility);
	v = (int)c->daemon.log_level;
	get_choice(l, g, "log_level", "daemon.", log_level_by_name,
	    "error, warning, notice, info, debug", &v);
	c->daemon.log_level = (enum log_level)v;
	get_int(l, g, "stats_interval", "daemon.", 0, 86400,
	    &c->daemon.stats_interval);
	get_str(l, g, "metrics_file", "daemon.", &c->daemon.metrics_file);
	need_abs(l, g, "pidfile", c->daemon.pidfile);
	need_abs(l, g, "metrics_file", c->daemon.metrics_file);
	if (g != NULL) {
		switch (lcfg_get_bool(g, "log_privacy", &b, l->file,
		    "daemon.", l->d)) {
		case 1:
			c->daemon.log_privacy = b;
			break;
		case -1:
			l->rc = -1;
			break;
		}
	}
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
push(struct cl *l, char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(char *));

	if (nv == NULL) {
		diag_err(l->d, l->file, 0, "out of memory");
		l->rc = -1;
		return -1;
	}
	*v = nv;
	if ((nv[*n] = xstrdup(l, s)) == NULL)
		return -1;
	(*n)++;
	return 0;
}

/*
 * A directory that does not exist (yet) matches nothing, like an empty
 * one: a warning. One that cannot be read is an error. GLOB_ERR alone
 * made both errors.
 */
static int
glob_err(const char *path, int err)
{
	(void)path;
	return err != ENOENT && err != ENOTDIR;
}

/*
 * More rule files than this is a typo (a stray leading slash globs the
 * whole file system), not a rule set. Refusing it bounds the duplicate
 * check below, which is quadratic: such a glob kept a load busy for
 * seconds (found by fuzz_config).
 */
#define CFG_RULE_FILES_MAX	1000

/* One glob, relative to the config file; each match once, sorted. */
static void
expand_glob(struct cl *l, const config_setting_t *s, const char *pat)
{
	char path[PATH_MAX];
	glob_t gl;
	size_t i, j, first = l->c->rules.nfiles;
	int rc, dup;

	if (pat[0] == '/')
		snprintf(path, sizeof(path), "%s", pat);
	else
		snprintf(path, sizeof(path), "%s/%s", l->c->basedir, pat);
	memset(&gl, 0, sizeof(gl));
	rc = glob(path, 0, glob_err, &gl);
	if (rc == GLOB_NOMATCH) {
		/* A literal path must exist; an empty glob is a warning. */
		if (strpbrk(pat, "*?[") == NULL) {
			diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
			    "rules.files: %s: no such file", path);
			l->rc = -1;
		} else
			diag_warn(l->d, lcfg_file(s, l->file), lcfg_line(s),
			    "rules.files: \"%s\" matches no file", pat);
	} else if (rc != 0) {
		diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
		    "rules.files: \"%s\": cannot read the directory", pat);
		l->rc = -1;
	} else if (gl.gl_pathc > CFG_RULE_FILES_MAX - l->c->rules.nfiles) {
		diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
		    "rules.files: \"%s\" matches %zu files: more than %d "
		    "rule files in all", pat, gl.gl_pathc, CFG_RULE_FILES_MAX);
		l->rc = -1;
		rc = GLOB_NOSPACE;
	}
	for (i = 0; rc == 0 && i < gl.gl_pathc; i++) {
		for (dup = 0, j = 0; j < l->c->rules.nfiles && !dup; j++)
			dup = strcmp(l->c->rules.files[j], gl.gl_pathv[i]) == 0;
		if (!dup && push(l, &l->c->rules.files, &l->c->rules.nfiles,
		    gl.gl_pathv[i]) != 0)
			break;
	}
	globfree(&gl);
	/* glob sorts already; keep each pattern's files in sorted order. */
	if (l->c->rules.nfiles > first)
		qsort(l->c->rules.files + first, l->c->rules.nfiles - first,
		    sizeof(char *), cmp_str);
}

static void
load_rules(struct cl *l, const config_setting_t *root)
{
	const config_setting_t *g, *s, *e;
	struct config *c = l->c;
	int i, v;

	g = group(l, root, "rules", "rules", rules_keys);
	if (g == NULL || (s = config_setting_get_member(g, "files")) == NULL) {
		diag_err(l->d, l->file, g != NULL ? lcfg_line(g) : 0,
		    "rules.files: missing: no rule file would be loaded");
		l->rc = -1;
	} else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		push(l, &c->rules.globs, &c->rules.nglobs,
		    config_setting_get_string(s));
		expand_glob(l, s, config_setting_get_string(s));
	} else if (config_setting_type(s) == CONFIG_TYPE_ARRAY ||
	    config_setting_type(s) == CONFIG_TYPE_LIST) {
		for (i = 0; (e = config_setting_get_elem(s, i)) != NULL; i++) {
			if (config_setting_type(e) != CONFIG_TYPE_STRING) {
				diag_err(l->d, lcfg_file(e, l->file),
				    lcfg_line(e), "rules.files: element %d "
				    "must be a string", i + 1);
				l->rc = -1;
				continue;
			}
			push(l, &c->rules.globs, &c->rules.nglobs,
			    config_setting_get_string(e));
			expand_glob(l, e, config_setting_get_string(e));
		}
	} else {
		diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
		    "rules.files: must be a string or a list of globs, not %s",
		    lcfg_type_name(s));
		l->rc = -1;
	}
	v = (int)c->rules.mode;
	get_choice(l, g, "mode", "rules.", rules_mode_by_name, "enforce, dry-run",
	    &v);
	c->rules.mode = (enum rule_mode)v;
}

/* The circuit breaker: a back-off cap below the first back-off is a typo. */
static void
load_breaker(struct cl *l, const config_setting_t *g)
{
	struct config *c = l->c;
	const config_setting_t *s;

	get_int(l, g, "breaker_failures", "store.redis.", 1, 1000,
	    &c->store.redis.breaker_failures);
	get_int(l, g, "breaker_backoff_ms", "store.redis.", 1, 3600000,
	    &c->store.redis.breaker_backoff_ms);
	get_int(l, g, "breaker_backoff_max_ms", "store.redis.", 1, 3600000,
	    &c->store.redis.breaker_backoff_max_ms);
	if (g == NULL || c->store.redis.breaker_backoff_max_ms >=
	    c->store.redis.breaker_backoff_ms)
		return;
	if ((s = config_setting_get_member(g, "breaker_backoff_max_ms")) ==
	    NULL)
		s = config_setting_get_member(g, "breaker_backoff_ms");
	diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
	    "store.redis.breaker_backoff_max_ms: %d is below "
	    "breaker_backoff_ms %d", c->store.redis.breaker_backoff_max_ms,
	    c->store.redis.breaker_backoff_ms);
	l->rc = -1;
}

/*
 * What store_redis.c would refuse when the store opens, refused here so
 * that `warden check` says it, not the daemon's start.
 */
static void
check_prefix(struct cl *l, const config_setting_t *g)
{
	const char *p = l->c->store.redis.prefix;
	const config_setting_t *s;

	if (strlen(p) <= 128 && strpbrk(p, "{}") == NULL)
		return;
	s = config_setting_get_member(g, "prefix");
	/* Braces would make the prefix the hash tag, not the key's. */
	diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
	    "store.redis.prefix: %s", strlen(p) > 128 ?
	    "longer than 128 bytes" : "must not contain '{' or '}'");
	l->rc = -1;
}

/* "HOST:PORT" or "[V6]:PORT", PORT 1..65535. */
static int
host_port_ok(const char *v)
{
	const char *colon = strrchr(v, ':');
	char *end;
	long port;

	if (colon == NULL || colon == v || colon[1] == '\0')
		return 0;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	return errno == 0 && *end == '\0' && port >= 1 && port <= 65535 &&
	    (colon[1] >= '0' && colon[1] <= '9');
}

static void
load_redis(struct cl *l, const config_setting_t *g)
{
	const config_setting_t *s, *e;
	struct config *c = l->c;
	const char *v;
	int i;

	get_str(l, g, "host", "store.redis.", &c->store.redis.host);
	get_int(l, g, "port", "store.redis.", 1, 65535, &c->store.redis.port);
	get_str(l, g, "socket", "store.redis.", &c->store.redis.socket);
	get_str(l, g, "username", "store.redis.", &c->store.redis.username);
	get_str(l, g, "password", "store.redis.", &c->store.redis.password);
	get_int(l, g, "db", "store.redis.", 0, 65535, &c->store.redis.db);
	get_str(l, g, "prefix", "store.redis.", &c->store.redis.prefix);
	check_prefix(l, g);
	get_int(l, g, "connect_timeout_ms", "store.redis.", 1, 60000,
	    &c->store.redis.connect_timeout_ms);
	get_int(l, g, "command_timeout_ms", "store.redis.", 1, 60000,
	    &c->store.redis.command_timeout_ms);
	get_int(l, g, "pool", "store.redis.", 1, 1024, &c->store.redis.pool);
	get_str(l, g, "master_name", "store.redis.",
	    &c->store.redis.master_name);
	get_str(l, g, "sentinel_username", "store.redis.",
	    &c->store.redis.sentinel_username);
	get_str(l, g, "sentinel_password", "store.redis.",
	    &c->store.redis.sentinel_password);
	load_breaker(l, g);
	if (g == NULL || (s = config_setting_get_member(g, "sentinels")) ==
	    NULL)
		return;
	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST) {
		diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
		    "store.redis.sentinels: must be a list of \"HOST:PORT\"");
		l->rc = -1;
		return;
	}
	for (i = 0; (e = config_setting_get_elem(s, i)) != NULL; i++) {
		v = config_setting_type(e) == CONFIG_TYPE_STRING ?
		    config_setting_get_string(e) : NULL;
		if (v == NULL || !host_port_ok(v) || i >= CFG_SENTINELS_MAX) {
			diag_err(l->d, lcfg_file(e, l->file), lcfg_line(e),
			    "store.redis.sentinels: element %d must be "
			    "\"HOST:PORT\" with PORT 1..65535 (at most %d)", i + 1,
			    CFG_SENTINELS_MAX);
			l->rc = -1;
			continue;
		}
		c->store.redis.sentinels[c->store.redis.nsentinels++] =
		    xstrdup(l, v);
	}
	if (c->store.redis.nsentinels > 0) {
		if (c->store.redis.master_name[0] == '\0') {
			diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
			    "store.redis.sentinels: needs master_name");
			l->rc = -1;
		}
		if (config_setting_get_member(g, "host") != NULL ||
		    config_setting_get_member(g, "port") != NULL ||
		    config_setting_get_member(g, "socket") != NULL)
			diag_warn(l->d, lcfg_file(s, l->file), lcfg_line(s),
			    "store.redis: host, port and socket are not used "
			    "when sentinels are set");
	}
}

static void
load_store(struct cl *l, const config_setting_t *root)
{
	const config_setting_t *g, *m, *r, *s;
	struct config *c = l->c;
	long long v;
	int x = 0, oe, got;

	g = group(l, root, "store", "store", store_keys);
	get_choice(l, g, "backend", "store.", backend_by_name,
	    "memory, redis", &x);
	if (x == 1) {
		free(c->store.backend);
		c->store.backend = xstrdup(l, "redis");
	}
	oe = (int)c->store.on_error;
	get_choice(l, g, "on_error", "store.", onerr_by_name,
	    "accept, tempfail", &oe);
	c->store.on_error = (enum on_error)oe;
	get_str(l, g, "key_secret", "store.", &c->store.key_secret);
	if (g == NULL)
		return;
	m = group(l, g, "memory", "store.memory", memory_keys);
	if (m != NULL) {
		got = lcfg_get_int(m, "max_keys", 1, 1000000000LL, &v,
		    l->file, "store.memory.", l->d);
		if (got < 0)
			l->rc = -1;
		else if (got > 0)
			c->store.max_keys = v;
	}
	r = group(l, g, "redis", "store.redis", redis_keys);
	load_redis(l, r);
	if (x == 1 && r == NULL && (s = config_setting_get_member(g,
	    "backend")) != NULL)
		diag_warn(l->d, lcfg_file(s, l->file), lcfg_line(s),
		    "store.backend: redis with no store.redis group: using "
		    "127.0.0.1:6379");
}

/*
 * log_privacy digests with store.key_secret: without a secret a digest of
 * an address is a plain hash anyone can recompute from a guess, which is
 * no privacy. Named at the log_privacy line, the setting that needs it.
 */
static void
check_privacy(struct cl *l, const config_setting_t *root)
{
	const config_setting_t *g, *s;

	if (!l->c->daemon.log_privacy || l->c->store.key_secret[0] != '\0')
		return;
	g = config_setting_get_member(root, "daemon");
	s = g != NULL ? config_setting_get_member(g, "log_privacy") : NULL;
	diag_err(l->d, lcfg_file(s, l->file), lcfg_line(s),
	    "daemon.log_privacy: needs store.key_secret (the key of the "
	    "address digests); it is empty");
	l->rc = -1;
}

static struct config *
config_new(struct cl *l, const char *path)
{
	char dir[PATH_MAX];
	struct config *c = calloc(1, sizeof(*c));

	if ((l->c = c) == NULL)
		return NULL;
	c->path = xstrdup(l, path);
	str_copy(dir, sizeof(dir), path, strlen(path));
	c->basedir = xstrdup(l, dirname(dir));
	c->milter.socket = xstrdup(l, "inet:8890@127.0.0.1");
	c->milter.socket_mode = -1;
	/* libmilter's default; Postfix may idle smtpd_timeout (300 s). */
	c->milter.timeout = 7210;
	c->daemon.user = xstrdup(l, "nobody");
	c->daemon.pidfile = xstrdup(l, "");
	c->daemon.log = LOG_SINK_SYSLOG;
	c->daemon.facility = log_facility_by_name("mail");
	c->daemon.log_level = LOGL_INFO;
	c->daemon.stats_interval = 300;
	c->daemon.metrics_file = xstrdup(l, "");
	c->rules.mode = MODE_ENFORCE;
	c->store.backend = xstrdup(l, "memory");
	c->store.on_error = ONERR_ACCEPT;
	c->store.key_secret = xstrdup(l, "");
	c->store.max_keys = 1000000;
	c->store.redis.host = xstrdup(l, "127.0.0.1");
	c->store.redis.port = 6379;
	c->store.redis.socket = xstrdup(l, "");
	c->store.redis.username = xstrdup(l, "");
	c->store.redis.password = xstrdup(l, "");
	c->store.redis.prefix = xstrdup(l, "warden:");
	c->store.redis.connect_timeout_ms = 200;
	c->store.redis.command_timeout_ms = 100;
	c->store.redis.pool = 8;
	c->store.redis.master_name = xstrdup(l, "");
	c->store.redis.sentinel_username = xstrdup(l, "");
	c->store.redis.sentinel_password = xstrdup(l, "");
	c->store.redis.breaker_failures = 3;
	c->store.redis.breaker_backoff_ms = 1000;
	c->store.redis.breaker_backoff_max_ms = 30000;
	return c;
}

static void
changed(char *buf, size_t len, int differs, const char *key)
{
	size_t n = strlen(buf);

	/* Whole names only: a cut one would name another setting. */
	if (!differs || n + 2 + strlen(key) >= len)
		return;
	snprintf(buf + n, len - n, "%s%s", n > 0 ? ", " : "", key);
}

const char *
config_restart_changes(const struct config *a, const struct config *b,
    char *buf, size_t len)
{
	int sent = a->store.redis.nsentinels != b->store.redis.nsentinels;
	size_t i;

#define S(f)	(strcmp(a->f, b->f) != 0)
#define I(f)	(a->f != b->f)
	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (i = 0; !sent && i < a->store.redis.nsentinels; i++)
		sent = strcmp(a->store.redis.sentinels[i],
		    b->store.redis.sentinels[i]) != 0;
	changed(buf, len, S(milter.socket), "milter.socket");
	changed(buf, len, I(milter.socket_mode), "milter.socket_mode");
	changed(buf, len, I(milter.timeout), "milter.timeout");
	changed(buf, len, S(daemon.user), "daemon.user");
	changed(buf, len, S(daemon.pidfile), "daemon.pidfile");
	changed(buf, len, S(store.backend), "store.backend");
	changed(buf, len, S(store.key_secret),
	    "store.key_secret (counter keys; log digests use the new key now)");
	changed(buf, len, I(store.max_keys), "store.memory.max_keys");
	changed(buf, len, S(store.redis.host), "store.redis.host");
	changed(buf, len, I(store.redis.port), "store.redis.port");
	changed(buf, len, S(store.redis.socket), "store.redis.socket");
	changed(buf, len, S(store.redis.username), "store.redis.username");
	changed(buf, len, S(store.redis.password), "store.redis.password");
	changed(buf, len, I(store.redis.db), "store.redis.db");
	changed(buf, len, S(store.redis.prefix), "store.redis.prefix");
	changed(buf, len, I(store.redis.connect_timeout_ms),
	    "store.redis.connect_timeout_ms");
	changed(buf, len, I(store.redis.command_timeout_ms),
	    "store.redis.command_timeout_ms");
	changed(buf, len, I(store.redis.pool), "store.redis.pool");
	changed(buf, len, sent, "store.redis.sentinels");
	changed(buf, len, S(store.redis.master_name),
	    "store.redis.master_name");
	changed(buf, len, S(store.redis.sentinel_username),
	    "store.redis.sentinel_username");
	changed(buf, len, S(store.redis.sentinel_password),
	    "store.redis.sentinel_password");
	changed(buf, len, I(store.redis.breaker_failures),
	    "store.redis.breaker_failures");
	changed(buf, len, I(store.redis.breaker_backoff_ms),
	    "store.redis.breaker_backoff_ms");
	changed(buf, len, I(store.redis.breaker_backoff_max_ms),
	    "store.redis.breaker_backoff_max_ms");
#undef S
#undef I
	return buf;
}

void
config_redis_opts(const struct config *c, struct store_redis_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->host = c->store.redis.host;
	o->port = c->store.redis.port;
	o->socket = c->store.redis.socket;
	o->sentinels = (const char *const *)c->store.redis.sentinels;
	o->nsentinels = c->store.redis.nsentinels;
	o->master_name = c->store.redis.master_name;
	o->sentinel_username = c->store.redis.sentinel_username;
	o->sentinel_password = c->store.redis.sentinel_password;
	o->username = c->store.redis.username;
	o->password = c->store.redis.password;
	o->db = c->store.redis.db;
	o->prefix = c->store.redis.prefix;
	o->key_secret = c->store.key_secret;
	o->connect_timeout_ms = c->store.redis.connect_timeout_ms;
	o->command_timeout_ms = c->store.redis.command_timeout_ms;
	o->pool = c->store.redis.pool;
	o->breaker_failures = c->store.redis.breaker_failures;
	o->breaker_min_ns = (int64_t)c->store.redis.breaker_backoff_ms *
	    1000000;
	o->breaker_max_ns = (int64_t)c->store.redis.breaker_backoff_max_ms *
	    1000000;
}

void
config_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	free(c->path);
	free(c->basedir);
	free(c->milter.socket);
	free(c->daemon.user);
	free(c->daemon.pidfile);
	free(c->daemon.metrics_file);
	for (i = 0; i < c->rules.nglobs; i++)
		free(c->rules.globs[i]);
	free(c->rules.globs);
	for (i = 0; i < c->rules.nfiles; i++)
		free(c->rules.files[i]);
	free(c->rules.files);
	free(c->store.backend);
	free(c->store.key_secret);
	free(c->store.redis.host);
	free(c->store.redis.socket);
	free(c->store.redis.username);
	free(c->store.redis.password);
	free(c->store.redis.prefix);
	for (i = 0; i < c->store.redis.nsentinels; i++)
		free(c->store.redis.sentinels[i]);
	free(c->store.redis.master_name);
	free(c->store.redis.sentinel_username);
	free(c->store.redis.sentinel_password);
	rules_unref(c->rs);
	free(c);
}

struct config *
config_load_buf(const char *path, const char *buf, size_t len,
    struct diag *d)
{
	struct cl l = { .file = path, .d = d };
	struct rules_opts ro;
	const config_setting_t *root;
	config_t cfg;

	if (config_new(&l, path) == NULL) {
		diag_err(d, path, 0, "out of memory");
		return NULL;
	}
	config_init(&cfg);
	if (lcfg_parse(&cfg, path, l.c->basedir, buf, len, d) != 0) {
		config_destroy(&cfg);
		config_free(l.c);
		return NULL;
	}
	root = config_root_setting(&cfg);
	if (lcfg_check_keys(root, top_keys, path, "warden.conf", d) > 0)
		l.rc = -1;
	load_milter(&l, root);
	load_daemon(&l, root);
	load_rules(&l, root);
	load_store(&l, root);
	check_privacy(&l, root);
	config_destroy(&cfg);

	/* Rules are checked even when the config has errors: all at once. */
	ro.default_mode = l.c->rules.mode;
	ro.default_on_error = l.c->store.on_error;
	l.c->rs = rules_load((const char *const *)l.c->rules.files,
	    l.c->rules.nfiles, &ro, d);
	if (l.c->rs == NULL || l.rc != 0 || d->errors > 0) {
		config_free(l.c);
		return NULL;
	}
	return l.c;
}

struct config *
config_load(const char *path, struct diag *d)
{
	struct config *c;
	char err[256];
	size_t len;
	char *buf;

	buf = match_read_file(path, CFG_FILE_MAX, &len, err, sizeof(err));
	if (buf == NULL) {
		diag_err(d, path, 0, "%s", err);
		return NULL;
	}
	c = config_load_buf(path, buf, len, d);
	free(buf);
	if (c != NULL)
		match_file_perms(path, c->store.key_secret[0] != '\0' ||
		    c->store.redis.password[0] != '\0' ||
		    c->store.redis.sentinel_password[0] != '\0', d);
	return c;
}

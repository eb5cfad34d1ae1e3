/*
 * config.h - etc/warden.conf (DESIGN.md §2): load with libconfig, check
 * every key, type and range with FILE:LINE, expand the rule globs and
 * load the rules.
 * Owns: the configuration data model and its validation.
 * Not: rule syntax (rules.c), acting on settings (main.c, stores).
 * Threads: a config is immutable after config_load; reload builds a new
 * one aside and swaps it only when it loaded with zero errors.
 * Errors: all go into a struct diag; config_load returns NULL when there
 * was any error.
 */
#ifndef WARDEN_CONFIG_H
#define WARDEN_CONFIG_H

#include <stddef.h>
#include "diag.h"
#include "log.h"
#include "rules.h"

#define CFG_FILE_MAX	(1024 * 1024)
#define CFG_SENTINELS_MAX 16

struct config {
	char		*path;
	char		*basedir;
	struct {
		char	*socket;	/* "inet:PORT@HOST" or "unix:PATH" */
		int	socket_mode;	/* -1: not set */
		int	timeout;	/* seconds */
	} milter;
	struct {
		char	*user;
		char	*pidfile;	/* "": none */
		enum log_sink log;
		int	facility;	/* syslog LOG_* value */
		enum log_level log_level;
		int	stats_interval;	/* seconds; 0: off */
		char	*metrics_file;	/* "": off */
		int	log_privacy;
	} daemon;
	struct {
		char	**globs;	/* as written, for messages */
		size_t	nglobs;
		char	**files;	/* expanded, sorted, loaded in order */
		size_t	nfiles;
		enum rule_mode mode;
	} rules;
	struct {
		char	*backend;	/* "memory" | "redis" */
		enum on_error on_error;	/* ACCEPT or TEMPFAIL */
		char	*key_secret;
		long long max_keys;
		struct {
			char	*host;
			int	port;
			char	*socket;
			char	*username;
			char	*password;
			int	db;
			char	*prefix;
			int	connect_timeout_ms;
			int	command_timeout_ms;
			int	pool;
			char	*sentinels[CFG_SENTINELS_MAX];
			size_t	nsentinels;
			char	*master_name;
			char	*sentinel_username;	/* AUTH towards */
			char	*sentinel_password;	/* the sentinels */
			int	breaker_failures;
			int	breaker_backoff_ms;
			int	breaker_backoff_max_ms;
		} redis;
	} store;
	struct ruleset	*rs;		/* owned reference */
};

/*
 * Loads path and the rule files it names. Returns the config (owned,
 * free with config_free) or NULL when any error was found; every problem
 * is in d as FILE:LINE: key: message.
 */
struct config *config_load(const char *path, struct diag *d);

/* The same from a buffer (tests, fuzzing); path names it in messages. */
struct config *config_load_buf(const char *path, const char *buf,
	    size_t len, struct diag *d);

void	config_free(struct config *);

/*
 * The settings read only at start (the socket, the user, the store) that
 * differ between a and b, as "milter.socket, store.redis.pool" into buf
 * ("" when none). A reload names them so nobody thinks they applied.
 */
const char *config_restart_changes(const struct config *a,
	    const struct config *b, char *buf, size_t len);

struct store_redis_opts;
/* Fills o from store.* (its strings point into c, which must outlive o). */
void	config_redis_opts(const struct config *c, struct store_redis_opts *o);

#endif

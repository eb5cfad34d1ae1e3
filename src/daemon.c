/*
 * daemon.c - `warden run`: the process around libmilter (DESIGN.md §5,
 * §6): milter_run (milter.h), the listening socket, pidfile, privilege
 * drop, reloads, decision lines, counters and the metrics file, signals
 * (reload, stats, stop) and the stop itself.
 * Not: the callbacks and what they answer (milter.c), policy
 * (engine.c), formats (declog.c, stats.c, metrics.c).
 * Threads: libmilter's only (see sigwait): the listener in the main
 * thread, callbacks on its worker pool, signals in its signal thread,
 * which alone reloads (swapping snap.c's running snapshot) and writes
 * the counters until the stop; then main does.
 * Errors: a start-up failure is logged and milter_run returns 1 or 3;
 * a failed reload keeps the running rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "config.h"
#include "daemon_int.h"
#include "declog.h"
#include "engine.h"
#include "log.h"
#include "metrics.h"
#include "milter.h"
#include "rulefp.h"
#include "stats.h"

/* The process's state; see the file comment for who uses what. */
static struct {
	struct store	*store;		/* survives reloads */
	struct engine_ctx ctx;
	int64_t		start;
	const char	*path;		/* the config file, for reloads */
	pid_t		main_tid;	/* libmilter's listener */
	_Atomic int64_t	kick_until;	/* see on_kick */
	timer_t		kick_timer;	/* see start_kicks */
	int		kick_armed;	/* kick_timer exists */
	struct log_quiet err_quiet;	/* store-error lines */
	struct metrics_state metrics;	/* the signal loop's, then main's */
	atomic_int	have_sigthr;	/* sigthr is set */
	atomic_int	loop_done;	/* the signal loop stopped warden */
	pthread_t	sigthr;		/* libmilter's signal thread */
} D;

/* --- decision lines -------------------------------------------------- */

static void
on_decision(void *arg, const struct engine_decision *d)
{
	char line[LOG_LINE_MAX];
	uint64_t quiet = 0;

	struct declog_priv priv;
	struct snap *sn;

	(void)arg;
	stats_decision(d);
	/* A store outage would otherwise log a line per event. */
	if (d->store_error && d->action == ACTION_CONTINUE &&
	    log_quiet(&D.err_quiet, now_ns(), 60 * NS_PER_SEC, &quiet))
		return;
	/* The running config's: a reload turning privacy on acts at once. */
	sn = snap_get();
	priv.key = sn->cfg->store.key_secret;
	priv.keylen = strlen(priv.key);
	declog_format_priv(d, sn->cfg->daemon.log_privacy ? &priv : NULL,
	    line, sizeof(line));
	snap_unref(sn);
	if (d->store_error && d->action == ACTION_CONTINUE) {
		log_warning("%s (%llu more store errors in the last minute)",
		    line, (unsigned long long)quiet);
		return;
	}
	log_info("%s", line);
}

/* --- process --------------------------------------------------------- */

/*
 * The stack of every thread libmilter starts. Its worker pool starts and
 * ends threads all the time (one per ~8 sessions at 50 connections),
 * and glibc keeps 40 MiB of dead threads' stacks for reuse: at the
 * default size, RLIMIT_STACK's 8 MiB plus a guard page, four. The rest
 * are unmapped at exit and mapped anew at start, with page faults and a
 * TLB flush on every CPU each time: 10-15 % of warden's decisions/s at
 * 50 connections, and as much for the null milter (miltergen). At 2 MiB
 * nineteen are kept; 1 MiB was no faster and kept more of them resident
 * (tests/load: +0.2 kB a held session). The deepest path, a decision
 * line, has under 100 kB of frames (gcc -fstack-usage); reloads run in
 * libmilter's signal thread, started after this too.
 */
#define THREAD_STACK	((size_t)2 << 20)

static void
set_thread_stack(void)
{
	pthread_attr_t a;
	int e;

	if ((e = pthread_attr_init(&a)) != 0)
		goto fail;
	if ((e = pthread_attr_setstacksize(&a, THREAD_STACK)) == 0)
		e = pthread_setattr_default_np(&a);
	pthread_attr_destroy(&a);
	if (e == 0)
		return;
fail:
	log_warning("cannot set the threads' stack size: error %d; "
	    "keeping the default", e);
}

static void
apply_log(const struct config *c)
{
	log_open(c->daemon.log, "warden", c->daemon.facility,
	    c->daemon.log_level);
}

/* What `warden check` compares a new config with (rulefp.c). */
static void
publish_rules(const struct config *c)
{
	struct store *in;
	char err[256];

	/* The running store: a reload does not change the backend. */
	if (D.store == NULL || strcmp((in = store_timed_inner(
	    D.store))->ops->name, "redis") != 0)
		return;
	if (rulefp_publish(in, c->rs, err, sizeof(err)) == -1)
		log_warning("store: redis: the rules' fingerprints for warden "
		    "check not recorded: %s", err);
}

static void
reload(const char *path)
{
	struct snap *sn, *old;
	struct config *c;
	struct diag d;
	char line[DIAG_FILE_MAX + DIAG_MSG_MAX + 32];
	size_t i;

	diag_init(&d);
	c = config_load(path, &d);
	if (c == NULL || (sn = snap_new(c)) == NULL) {
		if (c == NULL && d.n == 0)
			log_error("reload: failed, keeping the running rules: "
			    "out of memory");
		for (i = 0; c == NULL && i < d.n; i++)
			if (d.v[i].sev == DIAG_ERROR)
				log_error("reload: failed, keeping the running "
				    "rules: %s", diag_format(&d, i, line,
				    sizeof(line)));
		config_free(c);
		diag_fini(&d);
		stats_add(ST_RELOAD_FAILURES, 1);
		return;
	}
	stats_add(ST_RELOADS, 1);
	old = snap_swap(sn);
	if (config_restart_changes(old->cfg, c, line, sizeof(line))[0] !=
	    '\0')
		log_warning("reload: changed settings that take effect at "
		    "the next start only: %s", line);
	apply_log(c);
	log_info("reload: ok files=%zu rules=%zu", c->rs->nfiles,
	    c->rs->nrules);
	rulefp_log_reload(old->cfg->rs, c->rs);
	publish_rules(c);
	for (i = 0; i < d.n; i++)
		log_warning("reload: %s", diag_format(&d, i, line,
		    sizeof(line)));
	snap_unref(old);
	diag_fini(&d);
}

/*
 * A unix socket left by a crashed instance is removed; one that still
 * answers belongs to a running instance and is left alone.
 */
static int
clear_stale_socket(const char *spec)
{
	struct sockaddr_un sa;
	struct stat st;
	const char *path = strchr(spec, ':') + 1;
	int fd, rc;

	if (strncmp(spec, "unix:", 5) != 0 && strncmp(spec, "local:", 6) != 0)
		return 0;
	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("%s exists and is not a socket: not removing it",
		    path);
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	str_copy(sa.sun_path, sizeof(sa.sun_path), path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		return -1;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0) {
		log_error("%s: another milter is listening there", path);
		return -1;
	}
	return unlink(path);
}

static int
drop_privileges(const struct config *c)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (geteuid() != 0)
		return 0;
	if (c->daemon.user[0] == '\0') {
		log_error("started as root with daemon.user empty: refusing "
		    "to serve as root");
		return -1;
	}
	if (getpwnam_r(c->daemon.user, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL) {
		log_error("daemon.user %s: no such user", c->daemon.user);
		return -1;
	}
	if (setgroups(0, NULL) != 0 || initgroups(pw.pw_name, pw.pw_gid) !=
	    0 || setgid(pw.pw_gid) != 0 || setuid(pw.pw_uid) != 0) {
		log_error("cannot drop privileges to %s: %s", c->daemon.user,
		    strerror(errno));
		return -1;
	}
	/* Make sure there is no way back. */
	if (setuid(0) == 0) {
		log_error("still able to regain root after dropping to %s",
		    c->daemon.user);
		return -1;
	}
	return 0;
}

/*
 * Started as root, the socket is bound before the drop, so it would stay
 * root's and the MTA (a member of daemon.user's group, the usual way to
 * share a milter socket) could not open it: hand it to daemon.user and
 * its primary group. drop_privileges refuses an empty user later.
 */
static int
chown_socket(const struct config *c, const char *path)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (geteuid() != 0 || c->daemon.user[0] == '\0')
		return 0;
	if (getpwnam_r(c->daemon.user, &pw, buf, sizeof(buf), &res) != 0 ||
	    res == NULL) {
		log_error("daemon.user %s: no such user", c->daemon.user);
		return -1;
	}
	/* lchown: a symlink put in the socket's place is not followed. */
	if (lchown(path, pw.pw_uid, pw.pw_gid) != 0) {
		log_error("chown %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int
open_socket(const struct config *c)
{
	const char *path;

	if (clear_stale_socket(c->milter.socket) != 0)
		return -1;
	if (smfi_setconn((char *)c->milter.socket) != MI_SUCCESS ||
	    smfi_settimeout(c->milter.timeout) != MI_SUCCESS ||
	    milter_register(&D.ctx) != MI_SUCCESS ||
	    smfi_opensocket(false) != MI_SUCCESS) {
		log_error("cannot listen on %s", c->milter.socket);
		return -1;
	}
	if ((strncmp(c->milter.socket, "unix:", 5) == 0 ||
	    strncmp(c->milter.socket, "local:", 6) == 0)) {
		path = strchr(c->milter.socket, ':') + 1;
		if (c->milter.socket_mode >= 0 &&
		    chmod(path, (mode_t)c->milter.socket_mode) != 0) {
			log_error("chmod %s: %s", path, strerror(errno));
			return -1;
		}
		if (chown_socket(c, path) != 0)
			return -1;
	}
	return 0;
}

static int
write_pidfile(const char *path)
{
	FILE *f;

	if (path[0] == '\0')
		return 0;
	if ((f = fopen(path, "w")) == NULL) {
		log_error("pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	fprintf(f, "%ld\n", (long)getpid());
	return fclose(f) == 0 ? 0 : -1;
}

/* daemon.metrics_file, when set; failures are logged rate-limited. */
static void
write_metrics(void)
{
	const struct config *c = snap_running()->cfg;

	if (c->daemon.metrics_file[0] != '\0')
		(void)metrics_update(&D.metrics, c->daemon.metrics_file, c->rs,
		    (now_ns() - D.start) / NS_PER_SEC, now_ns() / NS_PER_SEC);
}

/*
 * The timer's period: stats_interval; with stats_interval = 0 (no
 * counter lines) and a metrics_file, METRICS_DEFAULT_INTERVAL, so the
 * file never goes stale; 0 when there is nothing to do.
 */
static int
timer_interval(const struct config *c)
{
	if (c->daemon.stats_interval > 0)
		return c->daemon.stats_interval;
	return c->daemon.metrics_file[0] != '\0' ?
	    METRICS_DEFAULT_INTERVAL : 0;
}

/* Each period and on SIGUSR1 (usr1: counter lines even when off). */
static void
report(int usr1)
{
	const struct config *c = snap_running()->cfg;

	if (usr1 || c->daemon.stats_interval > 0)
		stats_log(c->rs, (now_ns() - D.start) / NS_PER_SEC);
	write_metrics();
}

/* The signals warden handles: blocked everywhere, waited for in one place. */
static void
handled_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
}

/*
 * warden's signal work, in libmilter's signal thread (see sigwait):
 * SIGHUP reloads, SIGUSR1 and the timer write counters, SIGTERM and
 * SIGINT stop. Returns when warden is to stop.
 */
static void
signal_loop(void)
{
	char mpath[PATH_MAX];
	struct timespec ts;
	int64_t next, now;
	const char *mfile;
	sigset_t set;
	int interval, r;

	handled_signals(&set);
	for (;;) {
		interval = timer_interval(snap_running()->cfg);
		if (interval > 0) {
			now = now_ns();
			next = D.start + ((now - D.start) / NS_PER_SEC /
			    interval + 1) * interval * NS_PER_SEC;
			ts.tv_sec = (next - now) / NS_PER_SEC;
			ts.tv_nsec = (next - now) % NS_PER_SEC;
			r = sigtimedwait(&set, NULL, &ts);
		} else
			r = sigwaitinfo(&set, NULL);
		if (r < 0) {
			if (errno == EAGAIN)
				report(0);
			continue;
		}
		switch (r) {
		case SIGHUP:
			mfile = snap_running()->cfg->daemon.metrics_file;
			str_copy(mpath, sizeof(mpath), mfile, strlen(mfile));
			reload(D.path);
			/*
			 * A file left where the collector reads it would be
			 * served frozen for ever: gone with the setting.
			 */
			if (mpath[0] != '\0' && strcmp(mpath,
			    snap_running()->cfg->daemon.metrics_file) != 0)
				(void)unlink(mpath);
			/* Rules may have come or gone: show it now. */
			write_metrics();
			break;
		case SIGUSR1:
			report(1);
			break;
		default:	/* SIGTERM, SIGINT */
			return;
		}
	}
}

/*
 * How long a stop waits for libmilter's listener and for the commands in
 * flight (store timeouts bound a callback well below this); past it,
 * warden exits anyway.
 */
#define STOP_WAIT_NS	(10 * NS_PER_SEC)

/* Its SIGUSR2 only cuts the listener's poll short (start_kicks). */
static void
on_kick(int sig)
{
	static const char msg[] =
	    "warden: stop: libmilter's listener did not stop; exiting\n";
	int64_t until = atomic_load(&D.kick_until);

	(void)sig;
	/* Async-signal-safe: the listener is stuck, nothing else runs. */
	if (until != 0 && now_ns() > until) {
		if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
			(void)0;
		_exit(3);
	}
}

/*
 * smfi_stop takes up to 5 s: libmilter's listener polls its socket 5 s
 * at a time (MI_CHK_TIME in listener.c) holding the mutex that closing
 * the socket needs. Instead sigwait hands libmilter SIGINT: MILTER_ABRT
 * stops the listener, and ends each session after the command it is
 * answering (the reply is written first). A timer aims SIGUSR2 at the
 * listener's thread every 20 ms from now on, so its poll ends and it
 * sees that at once, whenever libmilter sets it. Returns 0 with the
 * timer in *tm, to be deleted once smfi_main has returned, or -1.
 */
static int
start_kicks(timer_t *tm)
{
	struct itimerspec it = { { 0, 20000000 }, { 0, 20000000 } };
	struct sigevent ev;

	atomic_store(&D.kick_until, now_ns() + STOP_WAIT_NS);
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev.sigev_signo = SIGUSR2;
	ev._sigev_un._tid = D.main_tid;	/* glibc names no macro for it */
	if (timer_create(CLOCK_MONOTONIC, &ev, tm) != 0)
		goto fail;
	if (timer_settime(*tm, 0, &it, NULL) != 0) {
		timer_delete(*tm);
		goto fail;
	}
	return 0;
fail:
	log_warning("stop: no timer to wake libmilter's listener (%s); it "
	    "sees the stop within 5 s", strerror(errno));
	return -1;
}

/*
 * libmilter's signal thread sigwait()s SIGHUP, SIGTERM and SIGINT and
 * takes each one as "stop". This definition takes the place of libc's
 * for libmilter (its only caller here) and makes that thread warden's
 * signal thread: it waits for every signal warden handles, which every
 * thread blocks (milter_run), and returns to libmilter only to stop
 * it, as SIGINT (start_kicks). So SIGHUP can never stop warden, and
 * warden runs no thread of its own: as many as libmilter's (issue #4).
 */
int
sigwait(const sigset_t *restrict set, int *restrict sig)
{
	(void)set;
	D.sigthr = pthread_self();
	atomic_store(&D.have_sigthr, 1);
	signal_loop();
	D.kick_armed = start_kicks(&D.kick_timer) == 0;
	atomic_store(&D.loop_done, 1);
	*sig = SIGINT;
	return 0;
}

/*
 * Once smfi_main has returned: the signal loop is over, so nothing else
 * uses D. When smfi_main returned by itself, the loop is told to end.
 * Returns 0, or -1 at the deadline.
 */
static int
end_signal_loop(int64_t deadline)
{
	/* No signal thread this soon after smfi_main: it started none. */
	int64_t none = now_ns() + NS_PER_SEC / 5;
	int told = 0;

	while (!atomic_load(&D.loop_done)) {
		if (!told && atomic_load(&D.have_sigthr))
			told = pthread_kill(D.sigthr, SIGTERM) == 0;
		if (!told && now_ns() > none)
			return 0;
		if (now_ns() > deadline) {
			log_error("stop: the signal thread did not end");
			return -1;
		}
		(void)poll(NULL, 0, 5);
	}
	return 0;
}

/*
 * After the listener: no new command is answered (gate_enter), the
 * commands in flight are, and their connections close; connections idle
 * between commands stay open until the process exits. Returns 0, or -1
 * when a callback still ran at the deadline: then nothing it may use
 * must be freed.
 */
static int
stop_sessions(int64_t deadline)
{
	milter_gate_close(0);
	while (milter_gate_count(1) != 0) {
		if (now_ns() > deadline)
			goto late;
		(void)poll(NULL, 0, 5);
	}
	milter_gate_close(1);
	while (milter_gate_count(0) != 0) {
		if (now_ns() > deadline)
			goto late;
		(void)poll(NULL, 0, 5);
	}
	/*
	 * XXX A callback that returned just before GATE_STOP was not
	 * counted and libmilter may not have written its reply yet: a
	 * moment for that write, which libmilter gives no hook to wait for.
	 */
	(void)poll(NULL, 0, 50);
	return 0;
late:
	log_warning("stop: %llu commands still in flight after %d s; "
	    "exiting without them", (unsigned long long)milter_gate_count(0),
	    (int)(STOP_WAIT_NS / NS_PER_SEC));
	return -1;
}

int
milter_run(const char *path)
{
	struct snap *sn;
	struct config *c;
	struct diag d;
	struct sigaction sa;
	sigset_t set;
	int rc = 0, mrc, gone, clean = 1;

	diag_init(&d);
	if ((c = config_load(path, &d)) == NULL) {
		diag_print(&d, stderr);
		diag_fini(&d);
		return 1;
	}
	diag_print(&d, stderr);
	diag_fini(&d);
	apply_log(c);
	if ((sn = snap_new(c)) == NULL) {
		config_free(c);
		return 3;
	}
	(void)snap_swap(sn);
	if ((D.store = store_timed_new(c, &D.ctx.fallback)) == NULL) {
		rc = 3;
		goto out;
	}
	D.ctx.store = D.store;
	publish_rules(c);
	D.ctx.hooks.decision = on_decision;
	D.start = now_ns();
	D.path = path;
	if (open_socket(c) != 0 || write_pidfile(c->daemon.pidfile) != 0 ||
	    drop_privileges(c) != 0) {
		rc = 3;
		goto out;
	}
	/*
	 * Every thread libmilter starts inherits this mask: the signals
	 * warden handles reach only the thread that waits for them, its
	 * signal thread (see sigwait).
	 */
	handled_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	set_thread_stack();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_kick;	/* no SA_RESTART: poll returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	D.main_tid = gettid();
	log_info("start: warden listening on %s, files=%zu rules=%zu store=%s",
	    c->milter.socket, c->rs->nfiles, c->rs->nrules, c->store.backend);
	write_metrics();	/* the file exists from the start */
	mrc = smfi_main();
	gone = !atomic_load(&D.loop_done);
	clean = end_signal_loop(now_ns() + STOP_WAIT_NS) == 0;
	if (D.kick_armed)
		timer_delete(D.kick_timer);
	atomic_store(&D.kick_until, 0);
	if (clean)
		clean = stop_sessions(now_ns() + STOP_WAIT_NS) == 0;
	write_metrics();	/* the final counts */
	/*
	 * When warden stopped smfi_main, a failure is the abort racing the
	 * listener's accept on the socket it closes (seen once in ~100
	 * stops): logged, not an exit status that would mark a clean stop
	 * as failed. When it returned by itself, the milter is gone: that
	 * is a failure.
	 */
	if (clean && mrc != MI_SUCCESS)
		log_notice("stop: libmilter's listener reported an error "
		    "while %s", gone ? "running" : "stopping");
	if (!clean || (gone && mrc != MI_SUCCESS))
		rc = 3;
	log_info("stop: warden exiting");
out:
	if (snap_running()->cfg->daemon.pidfile[0] != '\0')
		(void)unlink(snap_running()->cfg->daemon.pidfile);
	/* Callbacks still running may use these: the exit frees them. */
	if (!clean)
		return rc;
	milter_spares_free();
	if (D.ctx.fallback != D.store)
		store_free(D.ctx.fallback);
	store_free(D.store);
	snap_unref(snap_swap(NULL));
	return rc;
}

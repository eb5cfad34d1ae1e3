/*
 * daemon_int.h - what the files of `warden run` share, and nothing else
 * includes: milter.c (the libmilter callbacks), daemon.c (the process:
 * milter_run, signals, reload, socket), snap.c (config snapshots) and
 * store_timed.c (the counted store). None of them is in libwarden.a.
 * Owns: struct snap and the calls between those files. Not: the public
 * interface (milter.h); shared mutable state (each file keeps its own).
 * Threads: as each function says below.
 * Errors: as each function says; nothing the MTA sends aborts them.
 */
#ifndef WARDEN_DAEMON_INT_H
#define WARDEN_DAEMON_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "engine.h"
#include "gcra.h"
#include "macros.h"
#include "store.h"
#include "util.h"

/* One loaded configuration; sessions hold a reference. */
struct snap {
	atomic_int	refs;
	struct config	*cfg;
	unsigned long	proto;		/* SMFIP_NO* we may ask for */
	unsigned long	noreply;	/* SMFIP_NR_* we may ask for */
	int		need_rej;	/* SMFIP_RCPT_REJ */
	char		*symlist[MS_COUNT];	/* "{daemon_port} i" */
};

static inline int64_t
now_ns(void)
{
	struct timespec ts;

	/* Monotonic: rate counters must not jump with the wall clock. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

/*
 * snap.c. snap_new: owned (one reference), and from then on owns c;
 * NULL when out of memory, c still the caller's. snap_unref drops one
 * reference (NULL is fine). snap_get: a reference to the running
 * snapshot, any thread. snap_swap: sn's reference becomes the running
 * one; returns the previous one, whose reference the caller now holds
 * (NULL the first time). snap_running: the running one borrowed, no
 * lock and no reference, for the thread that swaps it only (the signal
 * thread, and milter_run while it runs no other).
 */
struct snap	*snap_new(struct config *c);
void		 snap_unref(struct snap *sn);
struct snap	*snap_get(void);
struct snap	*snap_swap(struct snap *sn);
struct snap	*snap_running(void);

/*
 * milter.c. milter_register: hands libmilter the callbacks, which
 * evaluate with ctx (borrowed until the process exits); before
 * smfi_opensocket. Returns smfi_register's MI_SUCCESS or MI_FAILURE.
 * The stop gate, for stop_sessions: milter_gate_close(0) holds every new
 * command, milter_gate_close(1) every callback; milter_gate_count counts
 * the callbacks running and, with conns, the connections answered after
 * the stop began and not closed yet. milter_spares_free frees the
 * connections and scratch blocks kept for reuse: only once no callback
 * can run.
 */
int		 milter_register(const struct engine_ctx *ctx) WARN_UNUSED;
void		 milter_gate_close(int shut);
uint64_t	 milter_gate_count(int conns);
void		 milter_spares_free(void);

/*
 * store_timed.c. store_timed_new: owned (store_free), see its comment;
 * NULL, logged, when the store cannot be made. store_timed_inner: the
 * store a timed one wraps, borrowed while st lives.
 */
struct store	*store_timed_new(const struct config *c,
		    struct store **fallback_out) WARN_UNUSED;
struct store	*store_timed_inner(struct store *st);

#endif

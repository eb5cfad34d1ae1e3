/*
 * snap.c - config snapshots for `warden run`: one loaded configuration
 * with what to negotiate with the MTA for it, refcounted, and the
 * running one (DESIGN.md §6: a reload swaps it).
 * Owns: struct snap's lifetime, the running snapshot and its lock.
 * Not: loading the config (config.c), when to swap (daemon.c), the
 * negotiation itself (milter.c).
 * Threads: a connection takes a reference at connect and keeps it until
 * close, so a reload never changes the rules under a session in flight.
 * libmilter gives xxfi_connect no user pointer, so the running snapshot
 * is the one mutable file-scope state here (guarded by snap_lock).
 * Errors: snap_new returns NULL when out of memory.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmilter/mfapi.h>

#include "config.h"
#include "daemon_int.h"
#include "macros.h"
#include "stats.h"

/* The running snapshot; see the file comment for why it is here. */
static struct {
	pthread_mutex_t	snap_lock;
	struct snap	*snap;
} D = { .snap_lock = PTHREAD_MUTEX_INITIALIZER };

void
snap_unref(struct snap *sn)
{
	int i;

	if (sn == NULL || atomic_fetch_sub(&sn->refs, 1) != 1)
		return;
	config_free(sn->cfg);
	for (i = 0; i < MS_COUNT; i++)
		free(sn->symlist[i]);
	free(sn);
}

struct snap *
snap_get(void)
{
	struct snap *sn;

	pthread_mutex_lock(&D.snap_lock);
	sn = D.snap;
	atomic_fetch_add(&sn->refs, 1);
	pthread_mutex_unlock(&D.snap_lock);
	return sn;
}

/*
 * Stages without rules need no reply: SMFIP_NR_* spares the MTA a round
 * trip. Never DATA (DESIGN.md §4: delayed ACK + Nagle). A 421 at envrcpt
 * on a recipient the MTA refused itself is ignored by Postfix, so the
 * session goes on and every later command must be answered with it:
 * then only connect, which comes first, may go without a reply.
 */
static unsigned long
noreply_stages(const struct ruleset *rs)
{
	static const struct {
		enum stage	stage;
		unsigned long	flag;
	} nr[] = {
		{ STAGE_CONNECT, SMFIP_NR_CONN }, { STAGE_HELO, SMFIP_NR_HELO },
		{ STAGE_ENVFROM, SMFIP_NR_MAIL }, { STAGE_ENVRCPT, SMFIP_NR_RCPT },
		{ STAGE_UNKNOWN, SMFIP_NR_UNKN }, { STAGE_HEADER, SMFIP_NR_HDR },
	};
	unsigned long flags = SMFIP_NR_BODY;
	size_t i;
	int closes = 0;

	for (i = 0; i < rs->nby_stage[STAGE_ENVRCPT]; i++)
		if (rs->by_stage[STAGE_ENVRCPT][i]->reply.code == 421)
			closes = 1;
	for (i = 0; i < NELEM(nr); i++)
		if (rs->nby_stage[nr[i].stage] == 0 &&
		    (!closes || nr[i].stage == STAGE_CONNECT))
			flags |= nr[i].flag;
	return flags;
}

/* What to negotiate follows from what the rules read. */
struct snap *
snap_new(struct config *c)
{
	const struct ruleset *rs = c->rs;
	const char *m[MACROS_MAX];
	struct snap *sn;
	size_t n, i, at, len;
	uint32_t all = 0;
	int s, need_body;

	if ((sn = calloc(1, sizeof(*sn))) == NULL)
		return NULL;
	atomic_init(&sn->refs, 1);
	sn->cfg = c;
	for (s = 0; s < STAGE_COUNT; s++)
		all |= rs->conds_used[s];
	if (rs->nby_stage[STAGE_HEADER] == 0)
		sn->proto |= SMFIP_NOHDRS | SMFIP_NOEOH;
	/* The body only matters for the size at eom. */
	need_body = (rs->conds_used[STAGE_EOM] & (1u << COND_SIZE_OVER)) != 0;
	for (i = 0; i < rs->nby_stage[STAGE_EOM]; i++)
		if (rs->by_stage[STAGE_EOM][i]->limit != NULL &&
		    rs->by_stage[STAGE_EOM][i]->limit->cost_size)
			need_body = 1;
	if (!need_body)
		sn->proto |= SMFIP_NOBODY;
	if (rs->nby_stage[STAGE_UNKNOWN] == 0)
		sn->proto |= SMFIP_NOUNKNOWN;
	sn->need_rej = (all & ((1u << COND_RCPT_REJECTED) |
	    (1u << COND_BAD_RCPT_COUNT_OVER))) != 0;
	sn->noreply = noreply_stages(rs);
	for (s = 0; s < MS_COUNT; s++) {
		n = macros_needed(rs, s, m, MACROS_MAX);
		for (len = 1, i = 0; i < n; i++)
			len += strlen(m[i]) + 1;
		if ((sn->symlist[s] = calloc(1, len)) == NULL) {
			sn->cfg = NULL;
			snap_unref(sn);
			return NULL;
		}
		for (at = 0, i = 0; i < n; i++)
			at += (size_t)snprintf(sn->symlist[s] + at, len - at,
			    "%s%s", i ? " " : "", m[i]);
	}
	return sn;
}

struct snap *
snap_swap(struct snap *sn)
{
	struct snap *old;

	pthread_mutex_lock(&D.snap_lock);
	old = D.snap;
	/* Counters follow the rules by name across the swap. */
	if (old != NULL && sn != NULL)
		stats_carry(old->cfg->rs, sn->cfg->rs);
	D.snap = sn;
	pthread_mutex_unlock(&D.snap_lock);
	return old;
}

struct snap *
snap_running(void)
{
	return D.snap;
}

// SPDX-License-Identifier: MIT
/*
 * host.c - machine memory: the budget of frames that guests may hold and
 * minFree.  What to do when they run short is the scheduler's (sched.c).
 *
 * Design: every frame behind a guest page is counted in consumed_pages, and
 * a frame is reserved (mv__frames_reserve) before any guest page is filled,
 * so consumption never exceeds the budget, not even for an instant.  A fault
 * that finds no frame free sleeps on frames_freed after dropping its page
 * locks and wakes the scheduler, which reclaims at once; each release wakes
 * the sleepers.  A reservation that leaves free memory below the hard
 * state's floor wakes the scheduler too, rather than leave it to its tick.
 *
 * minFree follows ESXi's tiers: 6% of the first 4 GiB, 4% of the next 8,
 * 2% of the next 16, 1% of the rest.
 *
 * When faults have waited OVERRUN_AFTER_MS with no frame released and the
 * scheduler finds nothing to reclaim (every swap file failing, nothing
 * compressible), memory that cannot come is not waited for: the budget
 * grows by a run of frames at a time (overrun_pages), counted and said,
 * and shrinks back as frames return.  A real host would be overcommitting
 * its RAM then; the alternative is guests that never run again.
 *
 * Invariants: consumed_pages <= memsize_pages + overrun_pages at all times
 * (overrun_pages is 0 unless reclamation failed); consumed_pages
 * equals the sum of the VMs' consumed_pages whenever no fault or reclaim is
 * between its reserve/release and its pmap update.
 *
 * Messages: errmsg holds the host's last sentence, copied out under
 * msg_lock (mv_host_errmsg_copy); background events are also queued for
 * the config's log callback and delivered by a log thread of the host's
 * own, with no engine lock held, so that a callback can never deadlock the
 * engine nor slow a fault.  A failed mv_host_create() leaves its sentence
 * in a buffer of the calling thread.  Settings are checked against
 * settings.c's table before anything is built.
 *
 * Lock ordering:
 *   vms_lock -> vm->reclaim_lock -> pmap entry locks -> frames_lock
 *   sched_lock and msg_lock are leaves, never held with another lock
 *   except msg_lock under pmap entry locks and share.lock.  The log
 *   callback runs with no lock held.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inject.h"
#include "internal.h"

#define FRAME_WAIT_MS 20
/* The log thread's idle wait, re-armed while it has nothing to deliver */
#define LOG_IDLE_MS 1000
/*
 * Faults that have waited this long with no frame released, while the
 * scheduler finds nothing to reclaim, are let over the budget
 */
#define OVERRUN_AFTER_MS 500
/* The hard state's floor, percent of minFree: below it the scheduler swaps */
#define HARD_FLOOR_PCT 64

uint64_t mv_minfree_bytes(uint64_t memsize_bytes)
{
	static const struct {
		uint64_t span; /* bytes in this tier (0: the rest) */
		unsigned pct;
	} tiers[] = { { 4ull << 30, 6 },
		      { 8ull << 30, 4 },
		      { 16ull << 30, 2 },
		      { 0, 1 } };
	uint64_t left = memsize_bytes, minfree = 0, part;

	for (size_t i = 0; i < sizeof(tiers) / sizeof(tiers[0]) && left; i++) {
		part = tiers[i].span && left > tiers[i].span ? tiers[i].span :
							       left;
		minfree += part / 100 * tiers[i].pct +
			   part % 100 * tiers[i].pct / 100;
		left -= part;
	}
	return minfree;
}

void mv_host_config_init(struct mv_host_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->memsize_bytes = 1ull << 30;
	cfg->swapdir = "/var/tmp/memvisor";
	mv_settings_init(&cfg->settings);
}

static void deadline_ms(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	ts->tv_sec += ms / 1000 + ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
}

int mv__cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t a;
	int err;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	err = pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
	return -err;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Free frames under the budget; 0 while guests hold more (overrun). */
static uint64_t free_pages(struct mv_host *h)
{
	uint64_t used = atomic_load(&h->consumed_pages);

	return used < h->memsize_pages ? h->memsize_pages - used : 0;
}

unsigned mv__frames_reserve(struct mv_host *h, unsigned want)
{
	uint64_t used = atomic_load(&h->consumed_pages), take, limit;

	do {
		limit = h->memsize_pages + atomic_load(&h->overrun_pages);
		take = used < limit ? limit - used : 0;
		if (take > want)
			take = want;
		if (!take)
			break;
	} while (!atomic_compare_exchange_weak(&h->consumed_pages, &used,
					       used + take));
	if (used + take >= h->memsize_pages ||
	    (h->memsize_pages - used - take) * 100 <
		    h->minfree_pages * HARD_FLOOR_PCT)
		mv__sched_kick(h);
	return (unsigned)take;
}

/* The overrun allowance follows consumption back down as frames return. */
static void shrink_overrun(struct mv_host *h)
{
	uint64_t over = atomic_load(&h->overrun_pages), used, want;

	while (over) {
		used = atomic_load(&h->consumed_pages);
		want = used > h->memsize_pages ? used - h->memsize_pages : 0;
		if (want >= over || atomic_compare_exchange_weak(
					    &h->overrun_pages, &over, want))
			break;
	}
}

void mv__frames_release(struct mv_host *h, uint64_t n)
{
	if (!n)
		return;
	atomic_fetch_sub(&h->consumed_pages, n);
	shrink_overrun(h);
	/* frames under the budget again end the starvation; frames given
	 * back over it (a run reserved larger than it grew) do not */
	if (free_pages(h))
		atomic_store_explicit(&h->starved_since_ms, 0,
				      memory_order_relaxed);
	pthread_mutex_lock(&h->frames_lock);
	if (h->frame_waiters)
		pthread_cond_broadcast(&h->frames_freed);
	pthread_mutex_unlock(&h->frames_lock);
}

/*
 * Faults have waited OVERRUN_AFTER_MS with no frame released and the
 * scheduler finds nothing to reclaim: memory that cannot come is not
 * waited for.  The budget grows by one run for the caller's next reserve;
 * it is counted, said, and given back as frames return.
 */
static bool grant_overrun(struct mv_host *h)
{
	uint64_t now = now_ms(), since = 0, over, max;

	if (!atomic_load(&h->sched_stuck) || free_pages(h))
		return false;
	if (atomic_compare_exchange_strong(&h->starved_since_ms, &since, now))
		return false; /* the wait starts now */
	if (now - since < OVERRUN_AFTER_MS)
		return false;
	over = atomic_fetch_add(&h->overrun_pages, MV_MAX_RUN_PAGES) +
	       MV_MAX_RUN_PAGES;
	atomic_fetch_add_explicit(&h->overrun_grants, 1, memory_order_relaxed);
	max = atomic_load(&h->overrun_max_pages);
	while (over > max &&
	       !atomic_compare_exchange_weak(&h->overrun_max_pages, &max, over))
		;
	mv__host_set_msg(
		h,
		"host over its memory budget by %llu MiB: faults waited %llu ms and nothing could be reclaimed (see swap errors); guests proceed rather than wait for ever",
		(unsigned long long)(over >> (20 - MV_PAGE_SHIFT)),
		(unsigned long long)(now - since));
	return true;
}

void mv__frames_wait(struct mv_host *h)
{
	struct timespec ts;

	atomic_fetch_add_explicit(&h->alloc_waits, 1, memory_order_relaxed);
	if (grant_overrun(h))
		return;
	mv__sched_kick(h);
	deadline_ms(&ts, FRAME_WAIT_MS);
	pthread_mutex_lock(&h->frames_lock);
	h->frame_waiters++;
	if (!free_pages(h))
		pthread_cond_timedwait(&h->frames_freed, &h->frames_lock, &ts);
	h->frame_waiters--;
	pthread_mutex_unlock(&h->frames_lock);
}

/*
 * Messages and events.  errmsg is the last sentence, copied out under
 * msg_lock.  An event is also queued (when the host has a log callback)
 * and delivered by the log thread, which holds no engine lock while the
 * callback runs: events are raised under pmap entry locks and share.lock,
 * and a callback that touched guest memory or called back into the engine
 * there could deadlock.
 */
static void host_vmsg(struct mv_host *h, int level, const char *fmt, va_list ap)
{
	struct mv__log_event *e;

	pthread_mutex_lock(&h->msg_lock);
	vsnprintf(h->errmsg, sizeof(h->errmsg), fmt, ap);
	if (level >= 0 && h->log) {
		if (h->logq_n == MV_LOG_QUEUE) {
			h->logq_head = (h->logq_head + 1) % MV_LOG_QUEUE;
			h->logq_n--;
			h->log_dropped++;
		}
		e = &h->logq[(h->logq_head + h->logq_n++) % MV_LOG_QUEUE];
		e->level = (enum mv_log_level)level;
		memcpy(e->msg, h->errmsg, sizeof(e->msg));
		pthread_cond_signal(&h->log_wake);
	}
	pthread_mutex_unlock(&h->msg_lock);
}

void mv__host_set_msg(struct mv_host *h, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	host_vmsg(h, MV_LOG_WARNING, fmt, ap);
	va_end(ap);
}

void mv__host_event(struct mv_host *h, enum mv_log_level level, const char *fmt,
		    ...)
{
	va_list ap;

	va_start(ap, fmt);
	host_vmsg(h, (int)level, fmt, ap);
	va_end(ap);
}

void mv__host_api_msg(struct mv_host *h, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	host_vmsg(h, -1, fmt, ap);
	va_end(ap);
}

/* Delivers queued events, one at a time, with msg_lock dropped. */
static void *log_main(void *arg)
{
	struct mv_host *h = arg;
	char msg[MV_ERRMSG_MAX + 48];
	enum mv_log_level level;
	struct timespec ts;
	uint64_t dropped;

	pthread_mutex_lock(&h->msg_lock);
	for (;;) {
		if (!h->logq_n) {
			if (h->log_stop)
				break;
			deadline_ms(&ts, LOG_IDLE_MS);
			pthread_cond_timedwait(&h->log_wake, &h->msg_lock, &ts);
			continue;
		}
		level = h->logq[h->logq_head].level;
		dropped = h->log_dropped;
		h->log_dropped = 0;
		if (dropped)
			snprintf(msg, sizeof(msg),
				 "(%llu earlier events dropped) %s",
				 (unsigned long long)dropped,
				 h->logq[h->logq_head].msg);
		else
			memcpy(msg, h->logq[h->logq_head].msg,
			       sizeof(h->logq[0].msg));
		h->logq_head = (h->logq_head + 1) % MV_LOG_QUEUE;
		h->logq_n--;
		pthread_mutex_unlock(&h->msg_lock);
		h->log(h->log_arg, level, msg);
		pthread_mutex_lock(&h->msg_lock);
	}
	pthread_mutex_unlock(&h->msg_lock);
	return NULL;
}

/* Stops the log thread after it has delivered every queued event. */
static void log_stop(struct mv_host *h)
{
	if (!h->log)
		return;
	pthread_mutex_lock(&h->msg_lock);
	h->log_stop = true;
	pthread_cond_signal(&h->log_wake);
	pthread_mutex_unlock(&h->msg_lock);
	pthread_join(h->log_thread, NULL);
}

/* Why this thread's last mv_host_create() failed (there is no host to
 * hold it). */
static _Thread_local char create_msg[MV_ERRMSG_MAX];

static int create_fail(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int create_fail(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(create_msg, sizeof(create_msg), fmt, ap);
	va_end(ap);
	return err;
}

int mv_host_errmsg_copy(const mv_host *h, char *buf, size_t len)
{
	/* the lock guards errmsg; it is not part of the host's value */
	struct mv_host *m = (struct mv_host *)h;
	int n;

	if (!buf || !len)
		return -EINVAL;
	if (!h)
		return snprintf(buf, len, "%s", create_msg);
	pthread_mutex_lock(&m->msg_lock);
	n = snprintf(buf, len, "%s", m->errmsg);
	pthread_mutex_unlock(&m->msg_lock);
	return n;
}

const char *mv_host_errmsg(const mv_host *h)
{
	static _Thread_local char copy[MV_ERRMSG_MAX];

	mv_host_errmsg_copy(h, copy, sizeof(copy));
	return copy;
}

void mv__host_link_vm(struct mv_host *h, struct mv_vm *vm)
{
	pthread_mutex_lock(&h->vms_lock);
	vm->next = h->vms;
	h->vms = vm;
	h->nvms++;
	pthread_mutex_unlock(&h->vms_lock);
}

void mv__host_unlink_vm(struct mv_host *h, struct mv_vm *vm)
{
	struct mv_vm **p;

	pthread_mutex_lock(&h->vms_lock);
	for (p = &h->vms; *p; p = &(*p)->next) {
		if (*p == vm) {
			*p = vm->next;
			h->nvms--;
			break;
		}
	}
	pthread_mutex_unlock(&h->vms_lock);
}

int mv_host_create(const struct mv_host_config *cfg, mv_host **out)
{
	char msg[MV_ERRMSG_MAX];
	struct mv_host *h;
	int err;

	create_msg[0] = '\0';
	if (!cfg || !out)
		return create_fail(-EINVAL, "no config or no result pointer");
	if (!cfg->swapdir || !cfg->swapdir[0])
		return create_fail(-EINVAL, "no swap directory");
	if (cfg->memsize_bytes < 16 * MV_PAGE_SIZE ||
	    cfg->memsize_bytes % MV_PAGE_SIZE)
		return create_fail(
			-EINVAL,
			"memsize %llu bytes: it must be a multiple of 4 KiB and at least 64 KiB",
			(unsigned long long)cfg->memsize_bytes);
	if (strlen(cfg->swapdir) >= sizeof(h->swapdir))
		return create_fail(-ENAMETOOLONG,
				   "swap directory name too long");
	err = mv_settings_check(&cfg->settings, msg, sizeof(msg));
	if (err)
		return create_fail(err, "%s", msg);
	h = mv__calloc(1, sizeof(*h));
	if (!h)
		return create_fail(-ENOMEM, "out of memory for the host");
	h->settings = cfg->settings;
	h->log = cfg->log;
	h->log_arg = cfg->log_arg;
	strcpy(h->swapdir, cfg->swapdir);
	h->memsize_pages = cfg->memsize_bytes >> MV_PAGE_SHIFT;
	h->minfree_pages = mv_minfree_bytes(cfg->memsize_bytes) >>
			   MV_PAGE_SHIFT;
	pthread_mutex_init(&h->frames_lock, NULL);
	pthread_mutex_init(&h->vms_lock, NULL);
	pthread_mutex_init(&h->msg_lock, NULL);
	atomic_store(&h->state, MV_STATE_HIGH);
	err = mv__cond_init_monotonic(&h->frames_freed);
	if (err)
		goto fail_locks;
	err = mv__cond_init_monotonic(&h->log_wake);
	if (err)
		goto fail_frames_cond;
	if (h->log) {
		err = -pthread_create(&h->log_thread, NULL, log_main, h);
		if (err) {
			create_fail(err, "cannot start the log thread");
			goto fail_log_cond;
		}
	}
	err = mv__share_host_init(h);
	if (err)
		goto fail_log;
	err = mv__sched_start(h);
	if (err)
		goto fail_share;
	*out = h;
	return 0;

fail_share:
	mv__share_host_fini(h);
fail_log:
	log_stop(h);
fail_log_cond:
	pthread_cond_destroy(&h->log_wake);
fail_frames_cond:
	pthread_cond_destroy(&h->frames_freed);
fail_locks:
	if (!create_msg[0])
		snprintf(create_msg, sizeof(create_msg), "%s", h->errmsg);
	pthread_mutex_destroy(&h->msg_lock);
	pthread_mutex_destroy(&h->vms_lock);
	pthread_mutex_destroy(&h->frames_lock);
	free(h);
	return err;
}

void mv_host_destroy(mv_host *h)
{
	if (!h)
		return;
	mv__sched_stop(h);
	mv__share_host_fini(h);
	log_stop(h);
	pthread_cond_destroy(&h->log_wake);
	pthread_cond_destroy(&h->frames_freed);
	pthread_mutex_destroy(&h->msg_lock);
	pthread_mutex_destroy(&h->vms_lock);
	pthread_mutex_destroy(&h->frames_lock);
	free(h);
}

int mv_host_stats(mv_host *h, struct mv_host_stats *st)
{
	struct mv_vm *vm;
	uint64_t zero;

	if (!h || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->memsize_pages = h->memsize_pages;
	st->consumed_pages = atomic_load(&h->consumed_pages);
	st->free_pages = st->consumed_pages < st->memsize_pages ?
				 st->memsize_pages - st->consumed_pages :
				 0;
	st->minfree_pages = h->minfree_pages;
	st->state = (enum mv_mem_state)atomic_load(&h->state);
	st->alloc_waits = atomic_load(&h->alloc_waits);
	st->reclaim_pages = atomic_load(&h->reclaim_pages);
	st->lost_pages = atomic_load(&h->lost_pages);
	st->move_miscounts = atomic_load(&h->move_miscounts);
	st->blocked_waits = atomic_load(&h->blocked_waits);
	st->overrun_pages = atomic_load(&h->overrun_pages);
	st->overrun_max_pages = atomic_load(&h->overrun_max_pages);
	st->overrun_grants = atomic_load(&h->overrun_grants);
	st->admit_overruns = atomic_load(&h->admit_overruns);
	pthread_mutex_lock(&h->vms_lock);
	st->nvms = h->nvms;
	for (vm = h->vms; vm; vm = vm->next) {
		st->swap_errors += atomic_load(&vm->c.swap_errors);
		st->parked_pages += MV_PARK_PAGES - mv__sample_park_free(vm);
		st->unreadable_pages += atomic_load(&vm->c.unreadable_pages);
		st->share_saved_pages += atomic_load_explicit(
			&vm->census.pages[MV_PAGE_ZERO], memory_order_relaxed);
	}
	pthread_mutex_unlock(&h->vms_lock);
	zero = st->share_saved_pages;
	mv__share_host_stats(h, st);
	st->share_saved_pages += zero;
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * host.c - the host: creation and destruction (settings checked against
 * settings.c's table before anything is built; the budget, messages,
 * page sharing and the scheduler started in that order and stopped in
 * reverse), the VM list, minFree (ESXi's tiers: 6% of the first 4 GiB, 4%
 * of the next 8, 2% of the next 16, 1% of the rest), and the host's
 * statistics.  API layer.
 *
 * A failed mv_host_create() leaves its sentence in a buffer of the calling
 * thread, since there is no host to hold it.
 *
 * Invariants: the VM list changes only under vms_lock; a VM is on it from
 * the end of its creation to the start of its destruction.
 *
 * Locks (order: internal.h): vms_lock for the list and the statistics'
 * totals, briefly; what the layers below take.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inject.h"
#include "internal.h"

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
	if (!vm->remote)
		atomic_fetch_add(&h->local_vms, 1);
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
			if (!vm->remote)
				atomic_fetch_sub(&h->local_vms, 1);
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
	/* aligned: its hot counters have cache lines of their own */
	h = mv__aligned_alloc(MV_CACHELINE, sizeof(*h));
	if (!h)
		return create_fail(-ENOMEM, "out of memory for the host");
	memset(h, 0, sizeof(*h));
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
	atomic_store(&h->grant_target_pages, UINT64_MAX);
	err = mv__cond_init_monotonic(&h->frames_freed);
	if (err)
		goto fail_locks;
	err = mv__cond_init_monotonic(&h->log_wake);
	if (err)
		goto fail_frames_cond;
	err = mv__log_start(h);
	if (err) {
		create_fail(err, "cannot start the log thread");
		goto fail_log_cond;
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
	mv__log_stop(h);
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
	mv__log_stop(h);
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
	st->reclaim_flushes = atomic_load(&h->reclaim_flushes);
	st->reclaim_moved_pages = atomic_load(&h->reclaim_moved_pages);
	st->lost_pages = atomic_load(&h->lost_pages);
	st->move_miscounts = atomic_load(&h->move_miscounts);
	st->blocked_waits = atomic_load(&h->blocked_waits);
	st->overrun_pages = atomic_load(&h->overrun_pages);
	st->overrun_max_pages = atomic_load(&h->overrun_max_pages);
	st->overrun_grants = atomic_load(&h->overrun_grants);
	st->admit_overruns = atomic_load(&h->admit_overruns);
	st->stall_overrun_grants = atomic_load(&h->stall_overrun_grants);
	st->lpage_collapses = atomic_load(&h->lpage_collapses);
	st->lpage_breaks = atomic_load(&h->lpage_breaks);
	st->balances = atomic_load(&h->balances);
	st->balances_state = atomic_load(&h->balances_state);
	st->balances_asked = atomic_load(&h->balances_asked);
	st->balances_early = atomic_load(&h->balances_early);
	pthread_mutex_lock(&h->vms_lock);
	st->nvms = h->nvms;
	for (vm = h->vms; vm; vm = vm->next) {
		st->swap_errors += atomic_load(&vm->c.swap_errors);
		st->parked_pages += MV_PARK_PAGES - mv__sample_park_free(vm);
		st->unreadable_pages += atomic_load(&vm->c.unreadable_pages);
		st->lpage_pages +=
			atomic_load(&vm->lp.regions) * MV_LPAGE_PAGES;
		/* ZERO pages but the open ones, which hold a frame */
		st->share_saved_pages += mv__zero_frameless(vm);
	}
	pthread_mutex_unlock(&h->vms_lock);
	zero = st->share_saved_pages;
	mv__share_host_stats(h, st);
	st->share_saved_pages += zero;
	return 0;
}

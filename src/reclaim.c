// SPDX-License-Identifier: MIT
/*
 * reclaim.c - swap-out: choose victim pages, save their content, free their
 * frames.  The other direction from fault.c, kept apart from it.
 *
 * Design: victims are chosen by Mem.ReclaimPolicy: 1 (the default) the
 * coldest first, by a clock over per-page warmth that refault distances
 * and sampling keep (cold.c has the design and why), falling back to
 * random pages when the clock finds too few in its bounded pass; 0 at random, ESX's policy,
 * which needs no access tracking and cannot be fooled by a guest that
 * touches pages in a pattern the hypervisor would mispredict, but takes a
 * page the guest uses as readily as one it does not.  A batch of up to
 * MV_RECLAIM_BATCH victims is locked (trylock only: a page someone is busy
 * with is not a good victim anyway), each is taken out of the guest with
 * UFFDIO_MOVE into the
 * VM's staging area, kept in the VM's compression cache if it compresses to
 * 2 KiB or less (zcache.c); the rest are written to consecutive swap slots
 * with one vectored write (swap.c has why), and the staging area is
 * emptied with one MADV_DONTNEED for the whole batch, which is what makes
 * MOVE cheaper than write-protecting (vm.c has the figures).
 *
 * A guest thread that touches a victim after its move faults, and its fault
 * thread waits on the page's lock until the page is saved (SWAPPED, then
 * swapped back in) or restored (PRIVATE, moved back).
 *
 * Invariants: a page is SWAPPED only once its whole content is in its slot,
 * whose number is the entry's payload.  If the write fails (full disk, I/O
 * error) after its retries (swap.c), the page is moved back into the guest
 * unchanged and stays PRIVATE: the guest keeps its data, the error is
 * counted (swap_errors per page, swap_write_errors per write) and the host
 * says so.  If the kernel refuses to put it back (mv__reclaim_restore,
 * bounded), its content goes to a park slot (sample.c) and the page is
 * SAMPLED there until it can be; a batch never has more victims than free
 * park slots.  The swap file is then paused for a while (swap.c), during
 * which a batch's incompressible victims go straight back: the scheduler
 * finds nothing to take from this VM and moves on to others; if no VM has
 * anything to give, faults are let through over budget (host.c), so no
 * guest waits for a disk that does not write.  Frames are released only
 * for pages whose content is safely elsewhere.
 *
 * Each UFFDIO_MOVE and each MADV_DONTNEED flushes the TLBs of every CPU
 * the guest runs on, so a batch's victims are moved in address order,
 * neighbours in one call, and the host counts the calls per page
 * (reclaim_flushes).
 *
 * Staging is emptied with one MADV_DONTNEED per batch; if the kernel
 * refuses, the next batch retries it first and takes no victim until it
 * works (staged copies are then stale: everything in them is saved).
 *
 * The kernel's count of a failed UFFDIO_MOVE is checked against
 * /proc/self/pagemap (settle_run): trusting a count lower than what moved
 * would leave a page PRIVATE whose only copy is in staging, about to be
 * dropped, which is the shape of the lost pages of issue 2.
 *
 * Pages of a large region (lpage.c) are taken only once it is broken: the
 * scheduler's reclaim passes them by (the scheduler breaks regions under
 * pressure first), the API's swap-out calls break the region themselves;
 * so a victim is always a small page and staging's MADV_DONTNEED frees
 * exactly its frames.
 *
 * Locks (order: internal.h): vm->reclaim_lock, pmap entry locks
 * (trylock), then vm->zc.lock, vm->swap.lock, host->frames_lock,
 * host->msg_lock.  Never vms_lock: the scheduler calls in without it.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"
#include "internal.h"
#include "uffd.h"

/* Probes per wanted victim before concluding the VM has few PRIVATE pages */
#define PROBES_PER_VICTIM 8
/* Entries the cold policy's clock hand passes per wanted victim, at most,
 * before the rest of a batch is taken at random (cold.c) */
#define SCAN_PER_VICTIM 256
/* MOVE-then-COPY attempts of a restore before its page is parked */
#define RESTORE_TRIES 3

/*
 * Puts a page whose swap-out failed back where it was (its entry locked by
 * the caller).  Its content exists only in staging now, so giving up is
 * not an option, and neither is waiting: MOVE, then COPY, RESTORE_TRIES
 * times; if the kernel refuses them all, the content is copied into a park
 * slot (sample.c) and the entry, still locked, becomes SAMPLED there, to be
 * put back by the guest's next touch, the VM's next reclaim or the next
 * sampling period.  Callers unlock with the entry's current value
 * (pmap_peek), not the one they locked.  Counted (parked_pages) and
 * reported as a warning.
 */
void mv__reclaim_restore(struct mv_vm *vm, uint64_t ppn, uint8_t *stage)
{
	uint8_t *dst = vm->mem + (ppn << MV_PAGE_SHIFT);
	mv_pte *e = &vm->pmap[ppn];
	enum mv__put_back how;
	uint64_t parked;
	int err;

	pmap_assert_locked(e);
	err = mv__put_back_page(vm, dst, stage, true, RESTORE_TRIES, &how);
	if (!err)
		return;
	if (err == -ENOENT) {
		/* stage and guest both empty: cannot happen */
		MV_ASSERT(!"the page is neither staged nor in the guest");
		mv__host_event(
			vm->host, MV_LOG_ERROR,
			"VM %s: page %llu is neither in staging nor in the guest after a failed swap-out (engine bug)",
			vm->name, (unsigned long long)ppn);
		return;
	}
	parked = mv__sample_park(vm, ppn, pmap_peek(e) & ~PMAP_LOCK, stage);
	if (parked) {
		/* still locked: the caller's unlock publishes it */
		pmap_store_locked(vm, ppn, parked);
		mv__host_set_msg(
			vm->host,
			"VM %s: cannot put page %llu back after a failed swap-out: %s; its content is kept in a park slot until it can be",
			vm->name, (unsigned long long)ppn, strerror(-err));
		return;
	}
	/* unreachable: a batch never has more victims than free park slots */
	MV_ASSERT(!"a park slot for every victim");
	for (struct timespec ts = { 0, 1000000L };
	     mv__move_page(vm, dst, stage) && mv__copy_page(vm, dst, stage);)
		nanosleep(&ts, NULL);
}

/*
 * Drops the staged copies of a batch.  If the kernel refuses, staging
 * keeps stale pages that would make every later move into it fail, so the
 * next batch retries first (reclaim_ready) and reclaims nothing until it
 * works: no content is at stake, only the reclaim.
 */
static void empty_staging(struct mv_vm *vm, size_t len)
{
	int err = mv__madvise(vm->staging, len, MADV_DONTNEED);

	if (!err)
		return;
	vm->staging_dirty = true;
	mv__host_set_msg(
		vm->host,
		"VM %s: cannot empty the reclaim staging area: %s (reclaim of this VM waits until it can)",
		vm->name, strerror(-err));
}

/*
 * Under reclaim_lock, before a batch: the staging area empty, and parked
 * pages tried once.  Returns how many victims the batch may take (a park
 * slot for each): 0 when none.
 */
static unsigned reclaim_ready(struct mv_vm *vm, unsigned want)
{
	unsigned room;

	if (vm->staging_dirty) {
		if (mv__madvise(vm->staging, MV_RECLAIM_BATCH * MV_PAGE_SIZE,
				MADV_DONTNEED))
			return 0;
		vm->staging_dirty = false;
	}
	mv__sample_retry_parked(vm);
	room = mv__sample_park_free(vm);
	return want < room ? want : room;
}

struct victim {
	uint64_t ppn;
	uint64_t old; /* entry when locked */
};

/*
 * Whether the locked PRIVATE page ppn may be a victim: a page of a large
 * region only once the region is broken (lpage.c), which the scheduler
 * does first under pressure (sched.c), idle VMs first; asked through the
 * API (may_break), reclaim breaks it itself.
 */
static bool small_or_broken(struct mv_vm *vm, uint64_t ppn, bool may_break)
{
	if (!mv__lpage_is_large(vm, ppn))
		return true;
	if (!may_break)
		return false;
	mv__lpage_break_locked(vm, ppn);
	return true;
}

/* Locks up to `want` PRIVATE pages at random; returns how many. */
static unsigned pick_random(struct mv_vm *vm, unsigned want, struct victim *out,
			    bool may_break)
{
	unsigned n = 0, probes = want * PROBES_PER_VICTIM, run_max;
	uint64_t ppn, end, old;
	bool started;

	run_max = vm->host->settings.swap_run_pages;
	while (n < want && probes--) {
		/*
		 * A random page picks its window of run_max pages, aligned as
		 * swap-in's cluster window is; the victims are the first run
		 * of PRIVATE pages in that window.  One run, in consecutive
		 * slots, that one fault reads back; and any PRIVATE page in
		 * the window makes the probe count, so a VM with few left is
		 * still found.
		 */
		ppn = mv__rand(&vm->rng) % vm->npages;
		ppn -= ppn % run_max;
		end = ppn + run_max < vm->npages ? ppn + run_max : vm->npages;
		for (started = false; ppn < end && n < want; ppn++) {
			if (!pmap_trylock(&vm->pmap[ppn], &old)) {
				if (started)
					break;
				continue;
			}
			if (pmap_state(old) != MV_PAGE_PRIVATE ||
			    pmap_pinned(old) ||
			    !small_or_broken(vm, ppn, may_break)) {
				pmap_unlock(vm, ppn, old);
				if (started)
					break;
				continue;
			}
			out[n].ppn = ppn;
			out[n].old = old;
			n++;
			started = true;
		}
	}
	return n;
}

/*
 * Locks up to `want` cold PRIVATE pages (Mem.ReclaimPolicy 1, cold.c): the
 * VM's clock hand passes pages in order and takes those no warmer than the
 * threshold (or taken before and brought back unasked); the threshold
 * rises a step each MV_COLD_RAISE_AFTER candidates without a victim and
 * sinks a little at each quick find, so it settles where the hand finds a
 * victim every few candidates.  At most SCAN_PER_VICTIM entries per
 * wanted victim (and MV_COLD_MAX_PASSES rounds of the VM), then the rest
 * of the batch is taken at random, so reclaim never finds less than the
 * random policy would.
 * Cold neighbours come out in ppn order: a run of them moves in one call.
 * Returns how many.
 */
static unsigned pick_cold(struct mv_vm *vm, unsigned want, struct victim *out,
			  bool may_break)
{
	struct mv__cold *c = &vm->cold;
	uint64_t budget = (uint64_t)want * SCAN_PER_VICTIM, ppn, old, passed;
	uint64_t since = 0;
	unsigned n = 0, more;

	if (budget > MV_COLD_MAX_PASSES * vm->npages)
		budget = MV_COLD_MAX_PASSES * vm->npages;
	for (passed = 0; n < want && passed < budget; passed++) {
		ppn = mv__cold_advance(c, vm->npages);
		old = pmap_peek(&vm->pmap[ppn]);
		/* only a page that could be a victim is a candidate */
		if (pmap_state(old) != MV_PAGE_PRIVATE || pmap_pinned(old) ||
		    (old & PMAP_LOCK) ||
		    (!may_break && mv__lpage_is_large(vm, ppn)) ||
		    !mv__cold_consider(c, ppn, &since) ||
		    !pmap_trylock(&vm->pmap[ppn], &old))
			continue;
		if (pmap_state(old) != MV_PAGE_PRIVATE || pmap_pinned(old) ||
		    !small_or_broken(vm, ppn, may_break)) {
			pmap_unlock(vm, ppn, old);
			continue;
		}
		mv__cold_took(c, &since);
		out[n].ppn = ppn;
		out[n].old = old;
		n++;
	}
	atomic_fetch_add_explicit(&c->scanned, passed, memory_order_relaxed);
	atomic_fetch_add_explicit(&c->cold_victims, n, memory_order_relaxed);
	if (n == want)
		return n;
	more = pick_random(vm, want - n, out + n, may_break);
	atomic_fetch_add_explicit(&c->fallback_victims, more,
				  memory_order_relaxed);
	return n + more;
}

/* Locks up to `want` victims by the host's Mem.ReclaimPolicy. */
static unsigned pick_victims(struct mv_vm *vm, unsigned want,
			     struct victim *out, bool may_break)
{
	unsigned n = vm->cold.heat ? pick_cold(vm, want, out, may_break) :
				     pick_random(vm, want, out, may_break);

	/* a victim comes back warm only if the guest asks for it */
	for (unsigned i = 0; i < n; i++)
		mv__cold_taken(&vm->cold, out[i].ppn);
	return n;
}

/* Locks `ppn` if it is PRIVATE. */
static unsigned pick_one(struct mv_vm *vm, uint64_t ppn, struct victim *out)
{
	uint64_t old = pmap_lock(&vm->pmap[ppn]);

	if (pmap_state(old) != MV_PAGE_PRIVATE || pmap_pinned(old)) {
		pmap_unlock(vm, ppn, old);
		return 0;
	}
	small_or_broken(vm, ppn, true);
	mv__cold_taken(&vm->cold, ppn);
	out->ppn = ppn;
	out->old = old;
	return 1;
}

/*
 * Writes the staged pages idx[0..k) (all locked, moved out) to swap.  Pages
 * that cannot be written go back into the guest unchanged.  Unlocks each
 * page; returns how many were swapped.
 */
static unsigned write_staged(struct mv_vm *vm, struct victim *v,
			     const unsigned *idx, unsigned k, int *errp)
{
	struct iovec iov[MV_RECLAIM_BATCH];
	uint64_t slots[MV_RECLAIM_BATCH];
	bool paused = !mv__swap_usable(&vm->swap);
	unsigned done;
	int err;

	for (unsigned j = 0; j < k; j++) {
		iov[j].iov_base =
			vm->staging + ((uint64_t)idx[j] << MV_PAGE_SHIFT);
		iov[j].iov_len = MV_PAGE_SIZE;
	}
	done = mv__swap_put(&vm->swap, iov, k, slots, &err);
	for (unsigned j = 0; j < done; j++)
		pmap_unlock(vm, v[idx[j]].ppn,
			    pmap_make(MV_PAGE_SWAPPED, v[idx[j]].old,
				      slots[j]));
	if (done == k)
		return done;
	/* keep the rest: back into the guest, untouched */
	if (!*errp)
		*errp = err;
	atomic_fetch_add_explicit(&vm->c.swap_errors, k - done,
				  memory_order_relaxed);
	if (paused)
		mv__host_set_msg(
			vm->host,
			"VM %s: swap file %s paused after %llu failed write(s), last: %s; the pages stay in memory and reclaim uses other means (free space in swapdir %s)",
			vm->name, vm->swap.path,
			(unsigned long long)atomic_load(&vm->swap.write_errors),
			strerror(-err), vm->host->swapdir);
	else
		mv__host_set_msg(
			vm->host,
			"VM %s: swap-out to %s failed %d times: %s; the pages stay in memory and the swap file is paused (free space in swapdir %s)",
			vm->name, vm->swap.path, MV_SWAP_WRITE_TRIES,
			strerror(-err), vm->host->swapdir);
	for (unsigned j = done; j < k; j++) {
		mv__reclaim_restore(vm, v[idx[j]].ppn, iov[j].iov_base);
		/* PRIVATE as it was, or SAMPLED in a park slot */
		pmap_unlock(vm, v[idx[j]].ppn,
			    pmap_peek(&vm->pmap[v[idx[j]].ppn]));
	}
	return done;
}

/*
 * Victims in address order, so that neighbours picked apart (two windows
 * side by side, or a victim choice that is not in address order) move in
 * one UFFDIO_MOVE: each call is a TLB flush on every CPU the guest runs on.
 */
static void sort_victims(struct victim *v, unsigned n)
{
	struct victim x;
	unsigned j;

	for (unsigned i = 1; i < n; i++) {
		x = v[i];
		for (j = i; j > 0 && v[j - 1].ppn > x.ppn; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/*
 * Takes the locked victims out of the guest: each into the compression
 * cache if it compresses well enough, the rest into the swap file with as
 * few writes as possible.  Returns pages taken; *errp gets the first error.
 * Unlocks every victim.
 */
static unsigned swap_out_locked(struct mv_vm *vm, struct victim *v, unsigned n,
				int *errp)
{
	struct mv_host *h = vm->host;
	unsigned idx[MV_RECLAIM_BATCH], k = 0, ok = 0, swapped, moved;
	int64_t credit = 0; /* frames freed for the host, net of the cache */
	uint64_t entry, strays, flushes = 1, moved_pages = 0;
	uint8_t *stage;
	int err;

	sort_victims(v, n);
	for (unsigned i = 0, len; i < n; i += len) {
		/* victims next to each other in the guest move in one call */
		for (len = 1; i + len < n && v[i + len].ppn == v[i].ppn + len;)
			len++;
		moved = mv__move_run(
			vm, vm->staging + ((uint64_t)i << MV_PAGE_SHIFT),
			vm->mem + (v[i].ppn << MV_PAGE_SHIFT), len, &err,
			&strays);
		flushes++;
		moved_pages += moved;
		if (err && !*errp)
			*errp = err;
		/* found moved past the count: back into the guest (or parked) */
		for (unsigned j = 0; j < len; j++)
			if (strays >> j & 1)
				mv__reclaim_restore(vm, v[i + j].ppn,
						    vm->staging +
							    ((uint64_t)(i + j)
							     << MV_PAGE_SHIFT));
		for (unsigned j = i; j < i + len; j++) {
			stage = vm->staging + ((uint64_t)j << MV_PAGE_SHIFT);
			if (j - i >= moved) {
				/* as it was, or parked by mv__reclaim_restore */
				pmap_unlock(vm, v[j].ppn,
					    pmap_peek(&vm->pmap[v[j].ppn]));
				continue;
			}
			if (!mv__zcache_store(vm, v[j].ppn, stage, v[j].old,
					      &entry, &credit)) {
				pmap_unlock(vm, v[j].ppn, entry);
				ok++;
				continue;
			}
			idx[k++] = j;
		}
	}
	swapped = k ? write_staged(vm, v, idx, k, errp) : 0;
	ok += swapped;
	credit += swapped;
	/* what is left in staging is saved elsewhere, or put back */
	empty_staging(vm, (size_t)n << MV_PAGE_SHIFT);
	atomic_fetch_add_explicit(&h->reclaim_flushes, flushes,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&h->reclaim_moved_pages, moved_pages,
				  memory_order_relaxed);
	atomic_fetch_sub_explicit(&vm->consumed_pages, ok,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->swcur_pages, swapped,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->c.swapout_pages, swapped,
				  memory_order_relaxed);
	mv__frames_release(h, (uint64_t)credit);
	return ok;
}

static int reclaim_vm(struct mv_vm *vm, uint64_t want, uint64_t *done,
		      bool may_break)
{
	struct victim v[MV_RECLAIM_BATCH];
	unsigned n, got;
	int err = 0;

	*done = 0;
	pthread_mutex_lock(&vm->reclaim_lock);
	while (*done < want) {
		n = want - *done < MV_RECLAIM_BATCH ? (unsigned)(want - *done) :
						      MV_RECLAIM_BATCH;
		/* a park slot for every victim whose restore could fail */
		n = reclaim_ready(vm, n);
		if (!n) {
			err = -EBUSY;
			break;
		}
		n = pick_victims(vm, n, v, may_break);
		if (!n)
			break;
		got = swap_out_locked(vm, v, n, &err);
		*done += got;
		if (!got)
			break;
	}
	pthread_mutex_unlock(&vm->reclaim_lock);
	if (*done)
		return 0;
	return err ? err : -EAGAIN;
}

int mv__reclaim_vm(struct mv_vm *vm, uint64_t want, uint64_t *done)
{
	uint64_t closed;
	int err;

	if (vm->remote) { /* its agent reclaims, to its grant (daemon.c) */
		*done = 0;
		return 0;
	}
	/* open zero pages first (zero_open.c): a frame back for a change of
	 * protection, with no data moved */
	closed = mv__zero_close(vm, want);
	if (closed >= want) {
		*done = closed;
		return 0;
	}
	err = reclaim_vm(vm, want - closed, done, false);
	*done += closed;
	return closed ? 0 : err;
}

int mv_vm_swap_out(mv_vm *vm, uint64_t npages, uint64_t *done)
{
	uint64_t dummy;
	int err;

	if (!vm)
		return -EINVAL;
	err = reclaim_vm(vm, npages, done ? done : &dummy, true);
	return err == -EAGAIN ? 0 : err;
}

int mv_vm_swap_out_page(mv_vm *vm, uint64_t ppn)
{
	struct victim v;
	int err = 0;

	if (!vm || ppn >= vm->npages)
		return -EINVAL;
	pthread_mutex_lock(&vm->reclaim_lock);
	if (!reclaim_ready(vm, 1))
		err = -EBUSY;
	else if (pick_one(vm, ppn, &v) && swap_out_locked(vm, &v, 1, &err) == 1)
		err = 0;
	else if (!err)
		err = -EAGAIN;
	pthread_mutex_unlock(&vm->reclaim_lock);
	return err;
}

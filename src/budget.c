// SPDX-License-Identifier: MIT
/*
 * budget.c - machine memory: the budget of frames that guests may hold,
 * and the admission of faults in the low state.  Budget layer: the
 * mechanisms ask it "may I take N frames" (mv__frames_reserve), tell it "I
 * gave back N frames" (mv__frames_release), wait on it
 * (mv__frames_wait), and pass its gate (mv__budget_admit) with the target
 * the scheduler set; it calls nothing above it.  When memory runs short it
 * wakes the scheduler through the hook the scheduler installed
 * (mv__budget_set_pressure_hook), as Linux shrinkers register, so the
 * budget never calls up into the policy layer.
 *
 * Design: every frame behind a guest page, and every frame of page
 * sharing's pool, is counted in consumed_pages, and a frame is reserved
 * before any guest page is filled, so consumption never exceeds the
 * budget, not even for an instant.  A fault that finds no frame free
 * sleeps on frames_freed after dropping its page locks and wakes the
 * scheduler, which reclaims at once; each release wakes the sleepers.  A
 * reservation that leaves free memory below the hard state's floor wakes
 * the scheduler too, rather than leave it to its tick.
 *
 * When faults have waited OVERRUN_AFTER_MS with no frame released and the
 * scheduler finds nothing to reclaim (every swap file failing, nothing
 * compressible), memory that cannot come is not waited for: the budget
 * grows by a run of frames at a time (overrun_pages), counted and said,
 * and shrinks back as frames return.  A real host would be overcommitting
 * its RAM then; the alternative is guests that never run again.  The same
 * holds, up to minFree and no further, while reclaim is stalled inside
 * the kernel: a page move (move.c) in there for OVERRUN_AFTER_MS with no
 * frame released since (stalled_move).  UFFDIO_MOVE waits for the page's
 * reverse-map lock, and the kernel's own walkers of that map can hold it
 * for seconds: measured here, a DAMON monitor of physical addresses left
 * a VM's reclaim asleep in the kernel for up to 15 s (docs/ARCHITECTURE.md).
 * minFree is the reserve for such moments; past it, faults wait for the
 * move as before.  The reserve is every VM's, not only the stalled one's:
 * it opens only while no frame has come back from anywhere for
 * OVERRUN_AFTER_MS, so no other VM's reclaim is freeing frames either (one
 * that did would close it for all); frames are one pool, and with per-VM
 * reclaim threads the scheduler, its first choice busy, asks only VMs
 * above their target, so a VM below its own has no reclaim to wait for
 * but the stalled one; and the sampler's moves run in the scheduler's
 * thread, whose stall holds up every VM's reclaim.
 *
 * Admission: in the low state a VM above its target waits before its
 * fault is served (ADMIT_WAIT_MS at a time, at most ADMIT_MAX_MS), so that
 * reclaim can catch up; a scheduler that found nothing to reclaim
 * (sched_stuck), or reclaim stalled in the kernel, lets everyone through
 * (to the frames, which a stall grants up to minFree).
 *
 * The budget of an agent's host (agent.c) follows the grant of its daemon
 * (mv__budget_set_memsize): a smaller one leaves guests above it until the
 * scheduler, woken at once, has reclaimed down to it; meanwhile no frame
 * is handed out.
 *
 * Invariants: consumed_pages <= memsize_pages + overrun_pages at all times
 * (overrun_pages is 0 unless reclamation failed), except after the budget
 * shrank, until reclaim catches up; consumed_pages equals
 * the sum of the VMs' consumed_pages plus the share pool's frames whenever
 * no fault, reclaim or merge is between its reserve/release and its pmap
 * update.  Every wait here is bounded.
 *
 * Locks (order: internal.h): frames_lock (the sleepers), under pmap entry
 * locks or none; nothing else.  The pressure hook is called with no lock
 * held but the caller's.
 */
#include "internal.h"

#define FRAME_WAIT_MS 20
/*
 * Faults that have waited this long with no frame released, while the
 * scheduler finds nothing to reclaim, are let over the budget
 */
#define OVERRUN_AFTER_MS 500
/* The hard state's floor, percent of minFree: below it the scheduler swaps */
#define HARD_FLOOR_PCT 64
#define ADMIT_WAIT_MS 20 /* a held-back fault looks again this often */
#define ADMIT_MAX_MS 1000 /* and is let through after this long, counted */

void mv__budget_set_pressure_hook(struct mv_host *h,
				  void (*fn)(struct mv_host *h))
{
	atomic_store_explicit(&h->pressure_hook, fn, memory_order_release);
}

/* Memory is short, or a fault waits for a frame: tell the scheduler. */
static void budget_pressure(struct mv_host *h)
{
	void (*fn)(struct mv_host *) =
		atomic_load_explicit(&h->pressure_hook, memory_order_acquire);

	if (fn)
		fn(h);
}

void mv__budget_set_memsize(struct mv_host *h, uint64_t pages, uint64_t minfree)
{
	uint64_t old = atomic_load(&h->memsize_pages);

	if (pages < 16 || minfree >= pages || pages == old)
		return;
	/* minFree stays below memsize for a reader between the two stores */
	if (pages < old) {
		atomic_store(&h->minfree_pages, minfree);
		atomic_store(&h->memsize_pages, pages);
		budget_pressure(h);
		return;
	}
	atomic_store(&h->memsize_pages, pages);
	atomic_store(&h->minfree_pages, minfree);
	pthread_mutex_lock(&h->frames_lock);
	if (h->frame_waiters)
		pthread_cond_broadcast(&h->frames_freed);
	pthread_mutex_unlock(&h->frames_lock);
}

void mv__budget_set_grant_target(struct mv_host *h, uint64_t pages)
{
	atomic_store_explicit(&h->grant_target_pages, pages,
			      memory_order_relaxed);
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
		budget_pressure(h);
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

static void give_back(struct mv_host *h, uint64_t n, bool progress)
{
	if (!n)
		return;
	atomic_fetch_sub(&h->consumed_pages, n);
	if (progress)
		atomic_store_explicit(&h->last_release_ms, mv__now_ms(),
				      memory_order_relaxed);
	shrink_overrun(h);
	/* frames under the budget again end the starvation; frames given
	 * back over it (a run reserved larger than it grew) do not */
	if (free_pages(h))
		atomic_store_explicit(&h->starved_since_ms, 0,
				      memory_order_relaxed);
	/*
	 * No sleeper, no lock: a fault about to sleep counts itself in
	 * frame_waiters before it looks at free memory, and this release
	 * changed consumed_pages before it looks at frame_waiters (both
	 * sequentially consistent), so either it sees our frames or we see
	 * it.  Every release used to take frames_lock, a lock all fault
	 * threads of all VMs share, even with nobody asleep.
	 */
	if (!atomic_load(&h->frame_waiters))
		return;
	pthread_mutex_lock(&h->frames_lock);
	if (h->frame_waiters)
		pthread_cond_broadcast(&h->frames_freed);
	pthread_mutex_unlock(&h->frames_lock);
}

void mv__frames_release(struct mv_host *h, uint64_t n)
{
	give_back(h, n, true);
}

void mv__frames_unreserve(struct mv_host *h, uint64_t n)
{
	give_back(h, n, false);
}

/*
 * A page move has been in the kernel OVERRUN_AFTER_MS or more, and no frame
 * has come back since (mv__frames_release: a fault giving back what it
 * reserved and did not use is no progress, mv__frames_unreserve): reclaim
 * frees nothing until it returns.  (The two
 * times are read after now, so either may be a moment later than it.)
 */
static bool stalled_move(struct mv_host *h, uint64_t now, uint64_t *busy_ms)
{
	uint64_t busy = atomic_load_explicit(&h->moves_busy_since_ms,
					     memory_order_relaxed),
		 rel = atomic_load_explicit(&h->last_release_ms,
					    memory_order_relaxed);

	*busy_ms = busy <= now ? now - busy : 0;
	return atomic_load(&h->moves_inflight) && busy <= now &&
	       now - busy >= OVERRUN_AFTER_MS && rel <= now &&
	       now - rel >= OVERRUN_AFTER_MS;
}

/*
 * Faults have waited OVERRUN_AFTER_MS with no frame released, and either
 * the scheduler finds nothing to reclaim, or reclaim is stalled in the
 * kernel (then only up to minFree): memory that cannot come is not waited
 * for.  The budget grows by one run for the caller's next reserve; it is
 * counted, said, and given back as frames return.
 */
static bool grant_overrun(struct mv_host *h)
{
	uint64_t now = mv__now_ms(), since = 0, over, max, cap, busy = 0;
	bool stuck = atomic_load(&h->sched_stuck);

	if (free_pages(h))
		return false;
	if (!stuck) {
		/* the stall is the wait: OVERRUN_AFTER_MS with nothing
		 * released but faults' own reservations given back */
		cap = atomic_load(&h->minfree_pages);
		if (cap < MV_MAX_RUN_PAGES)
			cap = MV_MAX_RUN_PAGES;
		if (!stalled_move(h, now, &busy) ||
		    atomic_load(&h->overrun_pages) + MV_MAX_RUN_PAGES > cap)
			return false;
	} else {
		if (atomic_compare_exchange_strong(&h->starved_since_ms, &since,
						   now))
			return false; /* the wait starts now */
		if (now - since < OVERRUN_AFTER_MS)
			return false;
	}
	over = atomic_fetch_add(&h->overrun_pages, MV_MAX_RUN_PAGES) +
	       MV_MAX_RUN_PAGES;
	atomic_fetch_add_explicit(&h->overrun_grants, 1, memory_order_relaxed);
	if (!stuck)
		atomic_fetch_add_explicit(&h->stall_overrun_grants, 1,
					  memory_order_relaxed);
	max = atomic_load(&h->overrun_max_pages);
	while (over > max &&
	       !atomic_compare_exchange_weak(&h->overrun_max_pages, &max, over))
		;
	if (stuck)
		mv__host_set_msg(
			h,
			"host over its memory budget by %llu MiB: faults waited %llu ms and nothing could be reclaimed (see swap errors); guests proceed rather than wait for ever",
			(unsigned long long)(over >> (20 - MV_PAGE_SHIFT)),
			(unsigned long long)(now - since));
	else
		mv__host_set_msg(
			h,
			"host over its memory budget by %llu MiB, on its minFree reserve: reclaim has been stalled in the kernel for %llu ms (a page move waiting for the kernel's reverse-map lock; a DAMON monitor of physical addresses holds it for seconds on some kernels); guests proceed meanwhile",
			(unsigned long long)(over >> (20 - MV_PAGE_SHIFT)),
			(unsigned long long)busy);
	return true;
}

void mv__frames_wait(struct mv_host *h, struct mv_vm *vm)
{
	struct timespec ts;

	atomic_fetch_add_explicit(&h->alloc_waits, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->c.alloc_waits, 1, memory_order_relaxed);
	if (grant_overrun(h))
		return;
	budget_pressure(h);
	mv__deadline_ms(&ts, FRAME_WAIT_MS);
	pthread_mutex_lock(&h->frames_lock);
	h->frame_waiters++;
	if (!free_pages(h))
		pthread_cond_timedwait(&h->frames_freed, &h->frames_lock, &ts);
	h->frame_waiters--;
	pthread_mutex_unlock(&h->frames_lock);
}

void mv__budget_admit(struct mv_vm *vm)
{
	struct mv_host *h = vm->host;
	struct timespec ts;
	uint64_t until = 0, busy;

	/* the clock is read only for a fault the gate would hold */
	while (atomic_load(&h->state) == MV_STATE_LOW &&
	       !atomic_load(&h->sched_stuck) &&
	       atomic_load(&vm->consumed_pages) >
		       atomic_load(&vm->sched.sztgt_pages) &&
	       !stalled_move(h, mv__now_ms(), &busy)) {
		if (!until) {
			until = mv__now_ms() + ADMIT_MAX_MS;
		} else if (mv__now_ms() >= until) {
			/* reclaim makes no headway for this VM: waiting
			 * longer would only stall its guest */
			atomic_fetch_add_explicit(&h->admit_overruns, 1,
						  memory_order_relaxed);
			return;
		}
		atomic_fetch_add_explicit(&h->blocked_waits, 1,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&vm->c.blocked_waits, 1,
					  memory_order_relaxed);
		budget_pressure(h);
		mv__deadline_ms(&ts, ADMIT_WAIT_MS);
		pthread_mutex_lock(&h->frames_lock);
		h->frame_waiters++;
		pthread_cond_timedwait(&h->frames_freed, &h->frames_lock, &ts);
		h->frame_waiters--;
		pthread_mutex_unlock(&h->frames_lock);
	}
}

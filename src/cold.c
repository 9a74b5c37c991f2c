// SPDX-License-Identifier: MIT
/*
 * cold.c - how warm each guest page is: the access tracking behind
 * reclaim's victim choice when Mem.ReclaimPolicy is 1 (cold, the
 * default); with 0 reclaim takes random runs of pages, ESX's policy, and
 * nothing here is kept.
 *
 * Design: one warmth byte and one stamp word per guest page, a clock hand
 * and a threshold per VM (reclaim.c's pick_cold).  The signals are the
 * ones the engine already has, at no cost on the guest's path:
 *   - a page reclaim took is stamped with the VM's count of victims; when
 *     the guest faults on it, the victims taken since are its refault
 *     distance, and its warmth becomes 255 - 8 log2 of the mean of that
 *     distance and the one its warmth stood for (the first return sets
 *     it; MV_COLD_STEPS steps per doubling).  A page the guest wants back
 *     soon time after time is warm; one it wanted back soon once, by
 *     chance, cools at its next slow return.  Under a steady popularity
 *     the distance is the page's inter-access time measured in victims:
 *     keeping the pages with the shortest mean distance keeps the most
 *     used ones, where a single quick-or-slow verdict per return (the
 *     streaks this replaced) mistook chance returns for use.  Measured on
 *     bench linux's kvstore-8 scenario: 10% fewer misses per operation,
 *     5-18% more operations (docs/BENCHMARKS.md).  A return from the swap
 *     file counts an eighth of its distance (MV_COLD_SWAP_SHIFT): it costs
 *     about ten times one from the compression cache, so such a page is
 *     kept as if wanted back eight times as often, and the pages reclaim
 *     takes instead are more often ones that compress (cost-aware
 *     eviction, as GreedyDual weighs a miss by its cost).  On
 *     bench linux's kvstore-2 VMs, whose full pages do not compress and go
 *     to disk: a quarter fewer pages read from disk, 4-5% more operations
 *     (docs/BENCHMARKS.md);
 *   - any other fault on a cold page (first touch, copy on write, a sampled
 *     page touched): MV_COLD_FAULTED, just warmer than cold, so the
 *     neighbours a fault-around or swap-in cluster brings along go first
 *     (they keep the "taken" stamp reclaim left them, or are cold), not the
 *     page the guest wanted;
 *   - a sampled page (sample.c) nobody touched for a whole sampling
 *     period: cold at once.
 * The hand walks the VM's pages in order; a PRIVATE page no warmer than
 * the threshold (or taken and not asked for since) is a victim.  The
 * threshold rises a step each MV_COLD_RAISE_AFTER candidates without a
 * victim and sinks a sixteenth of a step at each victim found within
 * MV_COLD_LOWER_BELOW, so it settles where a victim comes every few
 * candidates: the coolest pages of the VM go, whatever their absolute
 * warmth.  Every MV_COLD_AGE_PASSES passes the hand takes a step off each
 * page it passes (spread over passes by page number), so a page that
 * stopped being used loses its warmth, one step per 32 passes.
 *
 * What it does not see: touches of a resident page (no fault).  The
 * kernel keeps the accessed bits, and user space reads them per page only
 * through idle page tracking, which the development kernel lacks
 * (CONFIG_IDLE_PAGE_TRACKING unset, no MGLRU).  DAMON reports them per
 * region, and there only for physical addresses: the kernel is built
 * without its vaddr operations (avail_operations lists paddr alone), its
 * one kdamond is already running, and the workloads whose hot pages are
 * scattered (a hash table, every fourth page of an image) have no cold
 * region to find anyway.  Soft-dirty would see writes only (most touches
 * are reads), and the development kernel is built without it too
 * (CONFIG_MEM_SOFT_DIRTY unset: pagemap's bit 55 stays 0 after a write);
 * PAGEMAP_SCAN's written bit needs UFFD_FEATURE_WP_ASYNC, which would undo
 * page sharing's write protection.  So warmth is learnt only from
 * returns, and a page stays resident on the warmth it earned: the cost of
 * the blindness is a retry of a hot page each time aging brings it down
 * to the threshold, against the random policy's refaults of every hot
 * page it happens to take (docs/ARCHITECTURE.md has the figures).
 *
 * Bounded: the hand passes at most SCAN_PER_VICTIM entries per victim
 * wanted (and at most MV_COLD_MAX_PASSES times the VM's pages), a few
 * microseconds per batch; if that finds too few cold pages (every page
 * far warmer than the threshold) the rest of the batch is taken at
 * random, counted (fallback_victims), so reclaim never finds less than the
 * random policy would.
 *
 * Invariants: warmth and stamp are hints, read and written with relaxed
 * accesses and no lock (a fault thread's touch racing the hand's step or
 * a taking may be lost: the page is then tried early or late); they never
 * decide what a page holds or where, only which PRIVATE page reclaim tries
 * first, and the victim is then locked and checked as with the random
 * policy.  The hand and the threshold are reclaim's, under
 * vm->reclaim_lock; a distance is counted modulo 2^31 victims.
 *
 * Locks: none taken here.
 */
#include <errno.h>
#include <stdlib.h>

#include "inject.h"
#include "internal.h"

int mv__cold_init(struct mv_vm *vm, unsigned policy)
{
	vm->cold.heat = NULL;
	vm->cold.stamp = NULL;
	vm->cold.hand = 0;
	vm->cold.threshold = 0;
	if (policy != MV_RECLAIM_COLD)
		return 0;
	/* calloc: every page cold until the guest faults on it, and none
	 * taken */
	vm->cold.heat = mv__calloc(vm->npages, sizeof(*vm->cold.heat));
	vm->cold.stamp = mv__calloc(vm->npages, sizeof(*vm->cold.stamp));
	if (vm->cold.heat && vm->cold.stamp)
		return 0;
	mv__cold_fini(vm);
	return -ENOMEM;
}

void mv__cold_fini(struct mv_vm *vm)
{
	free((void *)vm->cold.heat);
	free((void *)vm->cold.stamp);
	vm->cold.heat = NULL;
	vm->cold.stamp = NULL;
}

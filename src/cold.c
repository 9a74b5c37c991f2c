// SPDX-License-Identifier: MIT
/*
 * cold.c - how warm each guest page is: the access tracking behind
 * reclaim's victim choice when Mem.ReclaimPolicy is 1 (cold, the
 * default); with 0 reclaim takes random runs of pages, ESX's policy, and
 * nothing here is kept.
 *
 * Design: one heat byte per guest page, 0 (cold) to 120, and
 * a clock hand per VM (reclaim.c's pick_cold).  The signals are the ones
 * the engine already has, at no cost on the guest's path:
 *   - a fault on the page (first touch, swap-in, unzip, copy on write, a
 *     sampled page touched): the guest uses it, heat MV_COLD_HOT, or
 *     MV_COLD_REFAULT if reclaim took it less than two passes of the hand
 *     ago (the guest wanted it back soon: the kernel's refault distance,
 *     in passes), doubled for each such quick return in a row, up to
 *     MV_COLD_STREAK_MAX (15, 30, 60, 120 passes; a slow return takes one
 *     off the streak).  A page in steady use is read without faults, so
 *     the clock cannot see it and takes it after its passes; the streak
 *     makes each such mistake rarer for the page that keeps coming back
 *     (on bench linux's kvstore-8 scenario 3-7% fewer misses per
 *     operation in four runs beside the single step, docs/BENCHMARKS.md).
 *     Only the faulting page: the neighbours a fault-around
 *     or swap-in cluster brings along keep the byte they had, "taken"
 *     for a page reclaim took, which counts as cold, so a cluster's
 *     unused pages are the next victims, not the page the guest wanted
 *     (without this, each hot page evicted comes back with a cluster of
 *     cold ones that push out more hot pages);
 *   - a sampled page (sample.c) nobody touched for a whole sampling
 *     period: cold at once;
 *   - a page chosen as a victim: "taken", MV_COLD_TAKEN with the hand's
 *     pass count (7 bits), cold until the guest asks for it.
 * The hand walks the VM's pages in order; a PRIVATE page at heat 0 (or
 * taken) is a victim, any other PRIVATE page becomes one step cooler.  So
 * a page the guest faulted on stays through MV_COLD_HOT passes of the
 * hand, one it wanted right back through MV_COLD_REFAULT or more, and one
 * that never faulted goes at the first: a CLOCK approximation of "least
 * recently faulted", where the random policy takes a page the guest uses
 * as readily as one it does not.
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
 * page sharing's write protection.  A page used but resident for long is
 * therefore taken after its passes and comes back on its next touch, warm
 * again (and warmer for having been wanted back soon): the cost of the
 * policy's blindness is one refault per hot page every MV_COLD_REFAULT +
 * 1 passes, or up to 121 once it has come back quickly four times in a
 * row, against the random policy's refaults of every hot page it happens
 * to take (docs/ARCHITECTURE.md has the figures).
 *
 * Bounded: the hand passes at most SCAN_PER_VICTIM entries per victim
 * wanted (and at most MV_COLD_REFAULT + 1 times the VM's pages), a few
 * microseconds per batch; if that finds too few cold pages (every page
 * recently faulted) the rest of the batch is taken at random, counted
 * (fallback_victims), so reclaim never finds less than the random policy
 * would.
 *
 * Invariants: heat is a hint, read and written with relaxed byte accesses
 * and no lock (a fault thread's touch racing the hand's step may be
 * lost: the page is then taken one pass early); it never decides what a
 * page holds or where, only which PRIVATE page reclaim tries first, and
 * the victim is then locked and checked as with the random policy.  The
 * hand is reclaim's, under vm->reclaim_lock.
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
	vm->cold.streak = NULL;
	vm->cold.hand = 0;
	if (policy != MV_RECLAIM_COLD)
		return 0;
	/* calloc: every page cold until the guest faults on it, with no
	 * streak */
	vm->cold.heat = mv__calloc(vm->npages, sizeof(*vm->cold.heat));
	vm->cold.streak = mv__calloc(vm->npages, sizeof(*vm->cold.streak));
	if (vm->cold.heat && vm->cold.streak)
		return 0;
	mv__cold_fini(vm);
	return -ENOMEM;
}

void mv__cold_fini(struct mv_vm *vm)
{
	free((void *)vm->cold.heat);
	free((void *)vm->cold.streak);
	vm->cold.heat = NULL;
	vm->cold.streak = NULL;
}

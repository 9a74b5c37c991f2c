// SPDX-License-Identifier: MIT
/*
 * lpage.c - large pages: which 2 MiB regions of a VM's guest memory are
 * backed by one 2 MiB page, making them so (collapse) and undoing it
 * (break).  The mechanism; when to do either is the scheduler's policy
 * (sched.c), and the kernel calls are system.c's (mv__lpage_sys_*).
 *
 * Design (docs/LARGEPAGES.md has the measurements): a region is the 512
 * pages of an aligned 2 MiB of guest physical memory (the mapping is 2 MiB
 * aligned, system.c).  The kernel collapses a region of a userfaultfd
 * mapping only when all 512 pages are present, writable and its own: for
 * the pmap, all 512 entries PRIVATE (a SHARED, ZERO, SAMPLED or empty page
 * blocks it, as does a write-protected one).  A collapse locks all 512
 * entries (trylock, ascending: nothing waits), checks them, asks the
 * kernel, and on success sets the region's bit in `large` before it
 * unlocks; no entry changes, the pages stay PRIVATE with the same content.
 * A break splits the 2 MiB page into 512 small ones (the kernel keeps every
 * byte, a write meanwhile waits and lands) and only then clears the bit.
 *
 * Invariants: a region's bit is set only by a collapse holding all 512 of
 * its entry locks, and cleared only by a break holding at least one of
 * them; so a mechanism that holds the lock of a page and sees the bit clear
 * knows the page is a small page for as long as it holds the lock, and one
 * that sees it set must break the region (mv__lpage_break_locked) or pass
 * the page by before it moves, drops, protects or maps over it.  Every
 * page of a large region is PRIVATE.  Reclaim by the scheduler and
 * sampling pass large regions by; the share scanner only hashes their
 * pages as hints in the high state, and below it breaks a region whose
 * page matches another (share_merge.c); the balloon and the explicit
 * swap-out calls break them first.  The kernel may split a large
 * page on its own (it never merges one back behind us: the mapping stays
 * MADV_NOHUGEPAGE outside a collapse), so the bit says "memvisor made it
 * large and has not broken it"; every operation memvisor makes on a small
 * page is correct on a split or unsplit large one too, only a 4 KiB
 * MADV_DONTNEED of an unsplit one would free nothing until the kernel's
 * deferred split: hence the break first.
 *
 * Counters: regions large now, collapses and breaks per VM and host, and
 * collapses the kernel refused.
 *
 * Locks (order: internal.h): pmap entry locks (trylock for a collapse, one
 * blocking lock of a region's first entry for a break by the scheduler,
 * which holds nothing else), host->msg_lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inject.h"
#include "internal.h"

#define WORD_BITS 64

static uint64_t region_of(uint64_t ppn)
{
	return ppn / MV_LPAGE_PAGES;
}

static uint8_t *region_addr(struct mv_vm *vm, uint64_t r)
{
	return vm->mem + ((r * MV_LPAGE_PAGES) << MV_PAGE_SHIFT);
}

int mv__lpage_init(struct mv_vm *vm, bool enabled)
{
	struct mv__lpage *lp = &vm->lp;
	uint64_t words;

	memset(lp, 0, sizeof(*lp));
	lp->nregions = vm->npages / MV_LPAGE_PAGES;
	if (!enabled || !lp->nregions ||
	    (uintptr_t)vm->mem % (MV_LPAGE_PAGES << MV_PAGE_SHIFT))
		return 0; /* off: no region can ever be large */
	words = (lp->nregions + WORD_BITS - 1) / WORD_BITS;
	lp->large = mv__calloc(words, sizeof(*lp->large));
	lp->seen = mv__calloc(words, sizeof(*lp->seen));
	if (!lp->large || !lp->seen) {
		free(lp->large);
		free(lp->seen);
		lp->large = NULL;
		lp->seen = NULL;
		return -ENOMEM;
	}
	return 0;
}

void mv__lpage_fini(struct mv_vm *vm)
{
	atomic_fetch_sub(&vm->host->lpage_regions,
			 atomic_exchange(&vm->lp.regions, 0));
	free(vm->lp.large);
	free(vm->lp.seen);
	vm->lp.large = NULL;
	vm->lp.seen = NULL;
}

/* Whether region r's entries are all PRIVATE, unpinned and unlocked now
 * (a peek: the collapse checks again under the locks). */
static bool eligible(struct mv_vm *vm, uint64_t r)
{
	uint64_t v;

	for (uint64_t p = r * MV_LPAGE_PAGES; p < (r + 1) * MV_LPAGE_PAGES;
	     p++) {
		v = pmap_peek(&vm->pmap[p]);
		if ((v & PMAP_LOCK) || pmap_state(v) != MV_PAGE_PRIVATE ||
		    pmap_pinned(v))
			return false;
	}
	return true;
}

static void unlock_region(struct mv_vm *vm, uint64_t first, const uint64_t *old,
			  unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		pmap_unlock(vm, first + i, old[i]);
}

/*
 * Collapses region r: 0, -EBUSY when a page is busy or not PRIVATE (or
 * the region is large already), or the kernel's -errno.
 */
static int collapse(struct mv_vm *vm, uint64_t r)
{
	struct mv__lpage *lp = &vm->lp;
	uint64_t first = r * MV_LPAGE_PAGES, old[MV_LPAGE_PAGES], bit;
	unsigned n;
	int err;

	bit = 1ull << (r % WORD_BITS);
	if (atomic_load(&lp->large[r / WORD_BITS]) & bit)
		return -EBUSY;
	for (n = 0; n < MV_LPAGE_PAGES; n++) {
		if (!pmap_trylock(&vm->pmap[first + n], &old[n]))
			break;
		if (pmap_state(old[n]) != MV_PAGE_PRIVATE ||
		    pmap_pinned(old[n])) {
			pmap_unlock(vm, first + n, old[n]);
			break;
		}
	}
	if (n < MV_LPAGE_PAGES) {
		unlock_region(vm, first, old, n);
		return -EBUSY;
	}
	err = mv__lpage_sys_collapse(region_addr(vm, r));
	if (!err) {
		atomic_fetch_or(&lp->large[r / WORD_BITS], bit);
		atomic_fetch_add(&lp->regions, 1);
		atomic_fetch_add(&vm->host->lpage_regions, 1);
		atomic_fetch_add(&lp->collapses, 1);
		atomic_fetch_add(&vm->host->lpage_collapses, 1);
	} else {
		atomic_fetch_add(&lp->collapse_errors, 1);
	}
	unlock_region(vm, first, old, MV_LPAGE_PAGES);
	return err;
}

bool mv__lpage_break_locked(struct mv_vm *vm, uint64_t ppn)
{
	struct mv__lpage *lp = &vm->lp;
	uint64_t r = region_of(ppn), bit = 1ull << (r % WORD_BITS);
	int err;

	pmap_assert_locked(&vm->pmap[ppn]);
	if (!mv__lpage_is_large(vm, ppn))
		return false;
	/* split first, bit after: whoever sees the bit clear finds small
	 * pages */
	err = mv__lpage_sys_split(region_addr(vm, r));
	if (err)
		/* nothing is at stake: each 4 KiB operation on the page is
		 * still correct, and a 4 KiB move splits it by itself */
		mv__host_set_msg(
			vm->host,
			"VM %s: the kernel did not split the large page at guest page %llu: %s (its pages are handled one by one all the same)",
			vm->name, (unsigned long long)(r * MV_LPAGE_PAGES),
			strerror(-err));
	if (!(atomic_fetch_and(&lp->large[r / WORD_BITS], ~bit) & bit))
		return false; /* another break won */
	atomic_fetch_and(&lp->seen[r / WORD_BITS], ~bit);
	atomic_fetch_sub(&lp->regions, 1);
	atomic_fetch_sub(&vm->host->lpage_regions, 1);
	atomic_fetch_add(&lp->breaks, 1);
	atomic_fetch_add(&vm->host->lpage_breaks, 1);
	return true;
}

/* Breaks region r, locking its first entry (the caller holds no entry). */
static bool break_region(struct mv_vm *vm, uint64_t r)
{
	uint64_t first = r * MV_LPAGE_PAGES, v = pmap_lock(&vm->pmap[first]);
	bool broke = mv__lpage_break_locked(vm, first);

	pmap_unlock(vm, first, v);
	return broke;
}

static bool is_large_region(struct mv_vm *vm, uint64_t r)
{
	return atomic_load_explicit(&vm->lp.large[r / WORD_BITS],
				    memory_order_relaxed) >>
		       (r % WORD_BITS) &
	       1;
}

unsigned mv__lpage_break_some(struct mv_vm *vm, unsigned max)
{
	struct mv__lpage *lp = &vm->lp;
	uint64_t start, r;
	unsigned done = 0;

	if (!lp->large || !max || !atomic_load(&lp->regions))
		return 0;
	/* from a random region on: no part of the VM is favoured */
	start = mv__rand(&lp->rng) % lp->nregions;
	for (uint64_t i = 0; i < lp->nregions && done < max; i++) {
		r = (start + i) % lp->nregions;
		if (is_large_region(vm, r) && break_region(vm, r))
			done++;
	}
	return done;
}

unsigned mv__lpage_pass(struct mv_vm *vm, unsigned max)
{
	struct mv__lpage *lp = &vm->lp;
	uint64_t bit;
	unsigned done = 0;
	bool now;

	if (!lp->large)
		return 0;
	for (uint64_t r = 0; r < lp->nregions; r++) {
		bit = 1ull << (r % WORD_BITS);
		if (is_large_region(vm, r))
			continue;
		now = eligible(vm, r);
		/* resident and private on two passes in a row: worth it */
		if (now && done < max &&
		    (atomic_load(&lp->seen[r / WORD_BITS]) & bit) &&
		    !collapse(vm, r)) {
			done++;
			continue;
		}
		if (now)
			atomic_fetch_or(&lp->seen[r / WORD_BITS], bit);
		else
			atomic_fetch_and(&lp->seen[r / WORD_BITS], ~bit);
	}
	return done;
}

int mv_vm_lpage_collapse(mv_vm *vm, uint64_t *regions)
{
	uint64_t done = 0;

	if (!vm)
		return -EINVAL;
	if (regions)
		*regions = 0;
	if (!vm->lp.large)
		return -EOPNOTSUPP;
	for (uint64_t r = 0; r < vm->lp.nregions; r++)
		if (!is_large_region(vm, r) && eligible(vm, r) &&
		    !collapse(vm, r))
			done++;
	if (regions)
		*regions = done;
	return 0;
}

int mv_vm_lpage_break(mv_vm *vm, uint64_t *regions)
{
	uint64_t done = 0;

	if (!vm)
		return -EINVAL;
	if (vm->lp.large)
		for (uint64_t r = 0; r < vm->lp.nregions; r++)
			if (is_large_region(vm, r) && break_region(vm, r))
				done++;
	if (regions)
		*regions = done;
	return 0;
}

int mv_vm_page_large(mv_vm *vm, uint64_t ppn)
{
	if (!vm || ppn >= vm->npages)
		return -EINVAL;
	return mv__lpage_is_large(vm, ppn);
}

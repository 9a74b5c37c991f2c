// SPDX-License-Identifier: MIT
/*
 * sample.c - active-memory estimation by sampling (Waldspurger 2002,
 * section 5.3): every Mem.SamplePeriod, MV_SAMPLE_PAGES random pages of a
 * VM are made to fault on their next touch, and the fraction the guest
 * touched before the period ends estimates how much of its memory it uses.
 *
 * Design: guest memory is anonymous, registered for MISSING and WP faults
 * (vm.c has why); anonymous memory has no MINOR faults to invalidate a
 * page with, and write-protection would see writes only, not reads.
 * Instead a sampled PRIVATE page is taken out of the guest with
 * UFFDIO_MOVE into slot i of the VM's sample area (registered with the same
 * userfaultfd, as reclaim's staging area is) and its entry becomes SAMPLED
 * with payload i | origin << 8.  A guest touch raises MISSING; the fault
 * service hands it to mv__sample_fault(), which moves the page back (zero
 * copy: the same frame, never another) and counts it.  At the end of the
 * period the pages nobody touched are moved back too.  The touched
 * fraction feeds a slow and a fast moving average; the estimate is the
 * larger, so that a VM becoming busy is believed at once and one going
 * idle only slowly.  Only PRIVATE pages are sampled: the fraction is of the
 * frames the VM holds, which is what the idle tax charges.  Pages of large
 * regions (lpage.c) are not: moving one out would break its 2 MiB page; a
 * VM whose every page is large keeps its last estimate until some are
 * broken.
 *
 * Sampling measures touches per period, so a VM that reclaim keeps
 * faulting (it touches its pages faster than it gets them back) runs
 * slowly, touches little, and would look idle, be taxed, and lose more:
 * a spiral.  Pages it faults back from swap or the compression cache in a
 * period are touches too, of pages it did not have; so the period's
 * figure is the larger of the sampled fraction and those refaults as a
 * fraction of its frames.
 *
 * Demand (mv__sample_demand_pages, for the scheduler's demand caps): the
 * active pages at the end of the last period, as a count, plus every page
 * the VM filled since (swap-ins, unzips, first touches): reclaim that
 * takes a VM's pages does not shrink its demand, as a fraction of what it
 * holds would, and a VM waking up counts what it touches at once, not a
 * period later.  Fills are the frames a VM took because its guest wanted
 * them, a write to a shared page's copy among them.  Known once a whole
 * period has passed, whether or not it had pages to sample: a VM whose
 * memory is nearly all shared or zero (the default scenario's web VMs)
 * holds too few frames of its own for a sample, and its demand is then
 * what it holds (all of it active until measured otherwise) plus its
 * fills.
 *
 * A page that goes back untouched at the end of its period is marked cold
 * for reclaim's victim choice (cold.c): a whole period unused.
 *
 * Park slots.  When reclaim cannot put a page back after a failed
 * swap-out (the kernel refuses UFFDIO_MOVE and UFFDIO_COPY alike), its
 * content, then only in staging, is copied into a park slot: plain memory
 * of ours after the sample area, not registered with the userfaultfd, so
 * that memcpy into it cannot fail.  The page becomes SAMPLED with slot
 * MV_SAMPLE_PAGES + i, and the same machinery brings it back: a guest
 * touch faults it in (UFFDIO_COPY from the slot), and each reclaim of the
 * VM and each sampling period tries the parked pages once (trylock, no
 * waiting).  A reclaim batch never takes more victims than there are free
 * park slots, so a victim always has one.
 *
 * Bounded: a put-back is tried PUT_BACK_TRIES times, never waiting; if the
 * kernel still refuses, the page stays SAMPLED in its slot (its content
 * safe there), the refusal is counted (put_back_errors, and fault_errors
 * for a fault) and reported, and a later event retries: the faulting guest
 * is woken to fault again after a pause taken with no lock held; a period
 * that cannot put all its pages back stays open, and the next period
 * retries before starting another.
 *
 * Invariants: a SAMPLED page's frame is in its slot (or its bytes in its
 * park slot) and stays charged to the VM (consumed_pages does not
 * change); a slot holds at most one page; only the scheduler thread starts
 * and ends periods, so sample slots and ppn[] are its alone; park slots
 * are taken under reclaim_lock and freed by whoever puts the page back,
 * under its entry lock; the entry's lock is held across every move.
 * Reclaim takes PRIVATE pages only and never sees a SAMPLED one; the
 * balloon puts one back before taking it (and refuses it if it cannot).
 *
 * Locks (order: internal.h): pmap entry locks only (trylock when
 * sampling), then host->msg_lock.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "inject.h"
#include "internal.h"
#include "uffd.h"

/* Probes per sampled page before settling for fewer: a VM with few
 * PRIVATE pages still ends its sampling quickly. */
#define PROBES_PER_SAMPLE 4
/* Weights of the moving averages, in periods: the fast one follows a
 * change within a period or two, the slow one over about eight. */
#define FAST_WEIGHT 2
#define SLOW_WEIGHT 8
#define PERMILLE 1000
#define SLOT_MASK 0xffu
/* Attempts of one put-back before it is left for later */
#define PUT_BACK_TRIES 3
/* A guest whose page cannot be put back faults again after this pause */
#define RETRY_PAUSE_NS 1000000L

_Static_assert(MV_SAMPLE_PAGES + MV_PARK_PAGES <= SLOT_MASK + 1,
	       "a sample or park slot fits the low byte of a SAMPLED payload");
_Static_assert(MV_PARK_PAGES <= 64, "one bit per park slot in a word");
_Static_assert(PMAP_FROM_COW_IN_PLACE < 1ull << (PMAP_PAYLOAD_BITS - 8),
	       "the PRIVATE origin fits above the slot in a SAMPLED payload");

static uint8_t *slot_addr(struct mv_vm *vm, unsigned slot)
{
	return vm->sample.area + ((uint64_t)slot << MV_PAGE_SHIFT);
}

static uint8_t *page_addr(struct mv_vm *vm, uint64_t ppn)
{
	return vm->mem + (ppn << MV_PAGE_SHIFT);
}

static int move(struct mv_vm *vm, void *dst, void *src)
{
	uint64_t strays;
	int err;

	/* one page: nothing can be found moved past the count */
	return mv__move_run(vm, dst, src, 1, &err, &strays) ? 0 : err;
}

static bool is_park_slot(unsigned slot)
{
	return slot >= MV_SAMPLE_PAGES;
}

static uint8_t *park_addr(struct mv_vm *vm, unsigned slot)
{
	return vm->sample.park +
	       ((uint64_t)(slot - MV_SAMPLE_PAGES) << MV_PAGE_SHIFT);
}

int mv__sample_init(struct mv_vm *vm)
{
	size_t area = MV_SAMPLE_PAGES * MV_PAGE_SIZE;
	size_t park = MV_PARK_PAGES * MV_PAGE_SIZE;
	uint8_t *p;
	int err;

	/* one mapping: the sample area, registered with the uffd, then the
	 * park slots, which are not */
	p = mmap(NULL, area + park, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	err = mv__madvise(p, area + park, MADV_NOHUGEPAGE);
	if (!err)
		err = mv__uffd_register(vm->uffd, p, area, false);
	if (err) {
		munmap(p, area + park);
		return err;
	}
	vm->sample.area = p;
	vm->sample.park = p + area;
	vm->sample.rng = 0x9e3779b97f4a7c15ull * (vm->id + 1);
	atomic_store(&vm->sample.active_permille, PERMILLE);
	return 0;
}

void mv__sample_fini(struct mv_vm *vm)
{
	if (vm->sample.area)
		munmap(vm->sample.area,
		       (MV_SAMPLE_PAGES + MV_PARK_PAGES) * MV_PAGE_SIZE);
	vm->sample.area = NULL;
	vm->sample.park = NULL;
}

/* The slot no longer holds the page: drop its frame, say so if it stays. */
static void drop_slot(struct mv_vm *vm, uint8_t *src)
{
	int err = mv__madvise(src, MV_PAGE_SIZE, MADV_DONTNEED);

	if (err)
		mv__host_set_msg(
			vm->host,
			"VM %s: cannot drop a sampling slot's frame: %s (the slot stays unused)",
			vm->name, strerror(-err));
}

/*
 * Moves the page of a locked SAMPLED entry v back into the guest, at most
 * PUT_BACK_TRIES times without waiting.  From a sample slot: MOVE, else
 * COPY and drop the slot's frame (the VM's count is the same either way);
 * from a park slot: COPY, and the slot is free again.  Returns 0 with
 * *e the PRIVATE entry, or -errno with the page still in its slot and the
 * entry as it was: the content is never given up, the caller retries
 * later, from a fresh fault or the next period.
 */
static int put_back(struct mv_vm *vm, uint64_t ppn, uint64_t v, uint64_t *e)
{
	unsigned slot = (unsigned)(pmap_payload(v) & SLOT_MASK);
	uint8_t *dst = page_addr(vm, ppn), *src;
	enum mv__put_back how;
	int err;

	pmap_assert_locked(&vm->pmap[ppn]);
	MV_ASSERT(pmap_state(v) == MV_PAGE_SAMPLED);
	MV_ASSERT(slot < MV_SAMPLE_PAGES + MV_PARK_PAGES);
	src = is_park_slot(slot) ? park_addr(vm, slot) : slot_addr(vm, slot);
	err = mv__put_back_page(vm, dst, src, !is_park_slot(slot),
				PUT_BACK_TRIES, &how);
	/* THERE: the guest page is there: a move that worked but said it
	 * failed (we hold the entry's lock: nobody else fills it); from a
	 * park slot, which no move touches, it cannot be, and is refused */
	if (!err && how == MV__PUT_THERE && is_park_slot(slot))
		err = -EEXIST;
	else if (!err && how != MV__PUT_MOVED && !is_park_slot(slot))
		drop_slot(vm, src);
	if (err) {
		atomic_fetch_add_explicit(&vm->sample.put_back_errors, 1,
					  memory_order_relaxed);
		mv__host_set_msg(
			vm->host,
			"VM %s: cannot put page %llu back from its %s slot: %s (its content is kept there; retrying later)",
			vm->name, (unsigned long long)ppn,
			is_park_slot(slot) ? "park" : "sampling",
			strerror(-err));
		return err;
	}
	if (is_park_slot(slot))
		atomic_fetch_and(&vm->sample.parked,
				 ~(1ull << (slot - MV_SAMPLE_PAGES)));
	*e = pmap_make(MV_PAGE_PRIVATE, v, pmap_payload(v) >> 8);
	return 0;
}

void mv__sample_fault(struct mv_vm *vm, uint64_t ppn, uint64_t v)
{
	unsigned slot = (unsigned)(pmap_payload(v) & SLOT_MASK);
	struct timespec ts = { 0, RETRY_PAUSE_NS };
	struct uffdio_range r = { .start = (uintptr_t)page_addr(vm, ppn),
				  .len = MV_PAGE_SIZE };
	uint64_t e;

	if (!put_back(vm, ppn, v, &e)) {
		if (!is_park_slot(slot))
			atomic_fetch_add_explicit(&vm->sample.touched, 1,
						  memory_order_relaxed);
		pmap_unlock(vm, ppn, e | PMAP_TOUCHED);
		return;
	}
	/* the content stays in its slot; the guest faults again, and that
	 * fresh event retries, after a pause taken with no lock held */
	pmap_unlock(vm, ppn, v);
	atomic_fetch_add_explicit(&vm->c.fault_errors, 1, memory_order_relaxed);
	nanosleep(&ts, NULL);
	ioctl(vm->uffd, UFFDIO_WAKE, &r);
}

int mv__sample_unsample_locked(struct mv_vm *vm, uint64_t ppn, uint64_t *v)
{
	return put_back(vm, ppn, *v, v);
}

unsigned mv__sample_park_free(struct mv_vm *vm)
{
	return MV_PARK_PAGES -
	       (unsigned)__builtin_popcountll(atomic_load(&vm->sample.parked));
}

uint64_t mv__sample_park(struct mv_vm *vm, uint64_t ppn, uint64_t v,
			 const uint8_t *stage)
{
	uint64_t mask = atomic_load(&vm->sample.parked);
	unsigned i;

	pmap_assert_locked(&vm->pmap[ppn]);
	MV_ASSERT(pmap_state(v) == MV_PAGE_PRIVATE);
	MV_ASSERT(~mask != 0);
	if (~mask == 0)
		return 0;
	i = (unsigned)__builtin_ctzll(~mask);
	/* a copy in memory of our own: nothing the kernel can refuse */
	memcpy(vm->sample.park + ((uint64_t)i << MV_PAGE_SHIFT), stage,
	       MV_PAGE_SIZE);
	atomic_store(&vm->sample.park_ppn[i], ppn);
	atomic_fetch_or(&vm->sample.parked, 1ull << i);
	atomic_fetch_add_explicit(&vm->sample.parked_total, 1,
				  memory_order_relaxed);
	return pmap_make(MV_PAGE_SAMPLED, v,
			 (MV_SAMPLE_PAGES + i) | pmap_payload(v) << 8);
}

unsigned mv__sample_retry_parked(struct mv_vm *vm)
{
	uint64_t mask = atomic_load(&vm->sample.parked), ppn, v, e;
	unsigned back = 0, i;

	for (; mask; mask &= mask - 1) {
		i = (unsigned)__builtin_ctzll(mask);
		ppn = atomic_load(&vm->sample.park_ppn[i]);
		if (!pmap_trylock(&vm->pmap[ppn], &v))
			continue; /* someone is at it; next time */
		if (pmap_state(v) == MV_PAGE_SAMPLED &&
		    (pmap_payload(v) & SLOT_MASK) == MV_SAMPLE_PAGES + i &&
		    !put_back(vm, ppn, v, &e)) {
			v = e;
			back++;
		}
		pmap_unlock(vm, ppn, v);
	}
	return back;
}

/*
 * Puts back what the guest left alone; true when every page is back, with
 * *permille the touched fraction.  A page the kernel refuses stays in its
 * slot, and the period stays open: the next call tries again.
 */
static bool end_period(struct mv_vm *vm, uint32_t *permille)
{
	struct mv__sample *s = &vm->sample;
	bool all = true;
	uint64_t v, e;

	for (unsigned i = 0; i < s->n; i++) {
		v = pmap_lock(&vm->pmap[s->ppn[i]]);
		if (pmap_state(v) == MV_PAGE_SAMPLED &&
		    (pmap_payload(v) & SLOT_MASK) == i) {
			if (put_back(vm, s->ppn[i], v, &e)) {
				all = false;
			} else {
				v = e;
				/* untouched for a period: cold (cold.c) */
				mv__cold_forget(&vm->cold, s->ppn[i]);
			}
		}
		pmap_unlock(vm, s->ppn[i], v);
	}
	if (!all)
		return false;
	*permille =
		(uint32_t)(atomic_exchange(&s->touched, 0) * PERMILLE / s->n);
	return true;
}

static void start_period(struct mv_vm *vm)
{
	struct mv__sample *s = &vm->sample;
	unsigned probes = MV_SAMPLE_PAGES * PROBES_PER_SAMPLE;
	uint64_t ppn, v;

	s->n = 0;
	while (s->n < MV_SAMPLE_PAGES && probes--) {
		ppn = mv__rand(&s->rng) % vm->npages;
		if (!pmap_trylock(&vm->pmap[ppn], &v))
			continue;
		/* a page of a large region is not moved out: that would
		 * break it (lpage.c) */
		if (pmap_state(v) != MV_PAGE_PRIVATE || pmap_pinned(v) ||
		    mv__lpage_is_large(vm, ppn) ||
		    move(vm, slot_addr(vm, s->n), page_addr(vm, ppn))) {
			pmap_unlock(vm, ppn, v);
			continue;
		}
		s->ppn[s->n] = ppn;
		pmap_unlock(vm, ppn,
			    pmap_make(MV_PAGE_SAMPLED, v,
				      s->n | pmap_payload(v) << 8));
		s->n++;
	}
}

/* Refaults this period, permille of the frames the VM holds. */
static uint32_t refault_permille(struct mv_vm *vm)
{
	struct mv__sample *s = &vm->sample;
	uint64_t now = atomic_load(&vm->c.swapin_pages) +
		       atomic_load(&vm->zc.unzip_pages),
		 held = atomic_load(&vm->consumed_pages), r;

	r = now - s->refaults;
	s->refaults = now;
	if (!held)
		return r ? PERMILLE : 0;
	return r >= held ? PERMILLE : (uint32_t)(r * PERMILLE / held);
}

/* Pages the VM filled since it began: swap-ins, unzips, first touches,
 * copies of shared pages it wrote, and those its VMM wrote before it
 * attached the memory. */
static uint64_t fills(struct mv_vm *vm)
{
	return atomic_load(&vm->c.swapin_pages) +
	       atomic_load(&vm->zc.unzip_pages) +
	       atomic_load(&vm->c.fault_fill_pages) +
	       atomic_load(&vm->sh.cow_breaks) + vm->adopted_pages;
}

uint64_t mv__sample_filled_pages(struct mv_vm *vm)
{
	return fills(vm);
}

uint64_t mv__sample_demand_pages(struct mv_vm *vm)
{
	struct mv__sample *s = &vm->sample;
	uint64_t now = fills(vm), base = atomic_load(&s->base_fills);

	/* a remote VM is never measured here: its agent samples */
	if (!atomic_load_explicit(&s->demand_known, memory_order_relaxed))
		return UINT64_MAX;
	return atomic_load(&s->active_base) + (now > base ? now - base : 0);
}

void mv__sample_period(struct mv_vm *vm)
{
	struct mv__sample *s = &vm->sample;
	uint32_t f = 0, r;

	if (vm->remote) /* its agent samples (daemon.c) */
		return;
	mv__sample_retry_parked(vm);
	if (s->n && !end_period(vm, &f))
		return; /* slots still in use: the period stays open */
	r = refault_permille(vm);
	if (s->n) {
		if (r > f)
			f = r;
		if (s->measured) {
			s->fast = mv__moving_average(s->fast, f, FAST_WEIGHT);
			s->slow = mv__moving_average(s->slow, f, SLOW_WEIGHT);
		} else {
			s->fast = s->slow = f;
			s->measured = true;
		}
		atomic_store(&s->active_permille,
			     s->fast > s->slow ? s->fast : s->slow);
	}
	atomic_store_explicit(&s->demand_known, s->begun, memory_order_relaxed);
	s->begun = true;
	/* the demand estimate restarts from the frames active now */
	atomic_store(&s->active_base, atomic_load(&vm->consumed_pages) *
					      atomic_load(&s->active_permille) /
					      PERMILLE);
	atomic_store(&s->base_fills, fills(vm));
	start_period(vm);
}

uint32_t mv__sample_active_permille(struct mv_vm *vm)
{
	return atomic_load(&vm->sample.active_permille);
}

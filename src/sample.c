// SPDX-License-Identifier: MIT
/*
 * sample.c - active-memory estimation by sampling (Waldspurger 2002,
 * section 5.3): every Mem.SamplePeriod, MV_SAMPLE_PAGES random pages of a
 * VM are made to fault on their next touch, and the fraction the guest
 * touched before the period ends estimates how much of its memory it uses.
 *
 * Design: guest memory is anonymous and registered for MISSING faults only
 * (vm.c has why), so there are no MINOR faults to invalidate a page with.
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
 * frames the VM holds, which is what the idle tax charges.
 *
 * Sampling measures touches per period, so a VM that reclaim keeps
 * faulting (it touches its pages faster than it gets them back) runs
 * slowly, touches little, and would look idle, be taxed, and lose more:
 * a spiral.  Pages it faults back from swap or the compression cache in a
 * period are touches too, of pages it did not have; so the period's
 * figure is the larger of the sampled fraction and those refaults as a
 * fraction of its frames.
 *
 * Invariants: a SAMPLED page's frame is in its slot and stays charged to
 * the VM (consumed_pages does not change); a slot holds at most one page;
 * only the scheduler thread starts and ends periods, so slots and ppn[] are
 * its alone; the entry's lock is held across every move.  Reclaim takes
 * PRIVATE pages only and never sees a SAMPLED one; the balloon puts one
 * back before taking it.
 *
 * Lock ordering: pmap entry locks only (trylock when sampling), then
 * host->msg_lock.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

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
	int err;

	return mv__move_run(vm, dst, src, 1, &err) ? 0 : err;
}

int mv__sample_init(struct mv_vm *vm)
{
	void *p = mmap(NULL, MV_SAMPLE_PAGES * MV_PAGE_SIZE,
		       PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)p,
			   .len = MV_SAMPLE_PAGES * MV_PAGE_SIZE },
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};
	int err;

	if (p == MAP_FAILED)
		return -errno;
	madvise(p, MV_SAMPLE_PAGES * MV_PAGE_SIZE, MADV_NOHUGEPAGE);
	if (ioctl(vm->uffd, UFFDIO_REGISTER, &r) < 0) {
		err = -errno;
		munmap(p, MV_SAMPLE_PAGES * MV_PAGE_SIZE);
		return err;
	}
	vm->sample.area = p;
	vm->sample.rng = 0x9e3779b97f4a7c15ull * (vm->id + 1);
	atomic_store(&vm->sample.active_permille, PERMILLE);
	return 0;
}

void mv__sample_fini(struct mv_vm *vm)
{
	if (vm->sample.area)
		munmap(vm->sample.area, MV_SAMPLE_PAGES * MV_PAGE_SIZE);
	vm->sample.area = NULL;
}

/*
 * Moves the page of a locked SAMPLED entry v back into the guest.  Its
 * content exists only in the slot, so giving up is not an option: MOVE,
 * else COPY and drop the slot's frame (the VM's count is the same either
 * way), and keep trying while saying so.  Returns the PRIVATE entry.
 */
static uint64_t put_back(struct mv_vm *vm, uint64_t ppn, uint64_t v)
{
	unsigned slot = (unsigned)(pmap_payload(v) & SLOT_MASK);
	struct timespec ts = { 0, 1000000L };
	uint8_t *dst = page_addr(vm, ppn), *src = slot_addr(vm, slot);
	struct uffdio_copy c;
	int err;

	while ((err = move(vm, dst, src))) {
		c = (struct uffdio_copy){ .dst = (uintptr_t)dst,
					  .src = (uintptr_t)src,
					  .len = MV_PAGE_SIZE };
		if (ioctl(vm->uffd, UFFDIO_COPY, &c) == 0) {
			madvise(src, MV_PAGE_SIZE, MADV_DONTNEED);
			break;
		}
		/* a move that worked but said it failed leaves the slot empty */
		if (errno == EEXIST && !mv__page_present(vm, src))
			break;
		mv__host_set_msg(
			vm->host,
			"VM %s: cannot put sampled page %llu back: %s (retrying)",
			vm->name, (unsigned long long)ppn, strerror(-err));
		nanosleep(&ts, NULL);
	}
	return pmap_make(MV_PAGE_PRIVATE, v, pmap_payload(v) >> 8);
}

void mv__sample_fault(struct mv_vm *vm, uint64_t ppn, uint64_t v)
{
	uint64_t e = put_back(vm, ppn, v);

	atomic_fetch_add_explicit(&vm->sample.touched, 1, memory_order_relaxed);
	pmap_unlock(&vm->pmap[ppn], e | PMAP_TOUCHED);
}

void mv__sample_unsample_locked(struct mv_vm *vm, uint64_t ppn, uint64_t *v)
{
	*v = put_back(vm, ppn, *v);
}

/* Puts back what the guest left alone; returns the touched permille. */
static uint32_t end_period(struct mv_vm *vm)
{
	struct mv__sample *s = &vm->sample;
	uint64_t v;

	for (unsigned i = 0; i < s->n; i++) {
		v = pmap_lock(&vm->pmap[s->ppn[i]]);
		if (pmap_state(v) == MV_PAGE_SAMPLED &&
		    (pmap_payload(v) & SLOT_MASK) == i)
			v = put_back(vm, s->ppn[i], v);
		pmap_unlock(&vm->pmap[s->ppn[i]], v);
	}
	return (uint32_t)(atomic_exchange(&s->touched, 0) * PERMILLE / s->n);
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
		if (pmap_state(v) != MV_PAGE_PRIVATE || pmap_pinned(v) ||
		    move(vm, slot_addr(vm, s->n), page_addr(vm, ppn))) {
			pmap_unlock(&vm->pmap[ppn], v);
			continue;
		}
		s->ppn[s->n] = ppn;
		pmap_unlock(&vm->pmap[ppn],
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

void mv__sample_period(struct mv_vm *vm)
{
	struct mv__sample *s = &vm->sample;
	uint32_t f, r = refault_permille(vm);

	if (s->n) {
		f = end_period(vm);
		if (r > f)
			f = r;
		if (s->measured) {
			s->fast = mv__sched_average(s->fast, f, FAST_WEIGHT);
			s->slow = mv__sched_average(s->slow, f, SLOW_WEIGHT);
		} else {
			s->fast = s->slow = f;
			s->measured = true;
		}
		atomic_store(&s->active_permille,
			     s->fast > s->slow ? s->fast : s->slow);
	}
	start_period(vm);
}

uint32_t mv__sample_active_permille(struct mv_vm *vm)
{
	return atomic_load(&vm->sample.active_permille);
}

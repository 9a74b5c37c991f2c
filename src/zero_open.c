// SPDX-License-Identifier: MIT
/*
 * zero_open.c - open zero pages: a page the guest read as zeros, left
 * writable, so that its first write is the kernel's own copy of the zero
 * page, with no userfaultfd round trip (Mem.ZeroOpen).
 *
 * Why: a page read before it is written (a kvstore probing its table) is
 * mapped to the kernel's zero page, frameless (fault.c, zero_read), and
 * write-protected so that its first write comes here for a frame.  That
 * write is a round trip of about 17 us of CPU against the kernel's 2 us;
 * eight kvstore VMs filling their memory spent two thirds of the host's
 * CPU on them, and Linux filled the same memory two to three times faster
 * (docs/BENCHMARKS.md).  An open page's write is the kernel's alone.
 *
 * Design: an open page is ZERO with payload PMAP_ZERO_OPEN (pmap.h).  A
 * frame is counted for it (vm->consumed_pages, reserved from the budget)
 * the moment it is opened, written or not, so the budget never lags what
 * the guest may hold: consumption never exceeds the budget, as for every
 * other frame (budget.c).  What makes this cheaper than giving frames
 * ahead (Mem.ZeroWriteAround, which made such pages PRIVATE) is that an
 * open page the guest did not write goes back for a protection change and
 * a look, with no copy and no I/O: closing it.
 *   Open: a read of pages of a VM with no image (zero_read) maps them
 *     open when the room rule allows; the scheduler, each tick, opens
 *     pages already mapped protected of a VM that writes what it reads
 *     (mv__zero_writer), by lifting their protection (top_up).
 *   The room rule: the VM stays within its target (for an agent's VM,
 *     also its daemon's, as fault.c's write-around guard) and the host's
 *     free memory stays at twice minFree or above, so open pages only ever
 *     hold memory nothing else wants at the time.
 *   Harvest: every HARVEST_MS the scheduler asks the kernel which of a
 *     VM's pages still map the zero page (PAGEMAP_SCAN, PAGE_IS_PFNZERO,
 *     one walk for the VM) and makes the open pages that do not PRIVATE:
 *     the guest wrote them; their frame was counted already.
 *   Close: when the host's free memory falls below twice minFree the
 *     scheduler closes open pages (and reclaim closes a VM's own before it
 *     takes any of its data, reclaim.c): a run of open pages, locked, is
 *     write-protected first and looked at second, so no write can slip in
 *     between; those still on the zero page are PMAP_ZERO_MAPPED again and
 *     their frames released, the others PRIVATE, their protection lifted.
 *
 * Invariants: an open page holds a counted frame; only the holder of its
 * entry lock changes it; a page becomes PMAP_ZERO_MAPPED from open only
 * after it was protected and then found on the zero page, so a ZERO entry
 * that says MAPPED never hides a write made here (a write that raced
 * zero_read's protection is fault.c's, as before).  Turning an open page
 * PRIVATE is always safe (a PRIVATE page on the zero page reads as zeros
 * and is reclaimed as one), so whenever the kernel's answer is missing
 * (PAGEMAP_SCAN refused) a close takes every page of its run as written;
 * a harvest then just converts nothing.  Protections are changed only on
 * pages whose locks are held here: never a page another thread is
 * between a lift and a populate on (share.h).
 *
 * Locks (order: internal.h): pmap entry locks, by trylock only, so this
 * never waits on a fault or a reclaim; host->vms_lock is the scheduler's,
 * held around mv__zero_tick.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "inject.h"
#include "internal.h"
#include "uffd.h"

/* Open pages looked at per call of close and top-up: a run */
#define RUN_MAX 64
/* A VM's open pages are harvested this often */
#define HARVEST_MS 200
/* Regions of zero-page pages one PAGEMAP_SCAN returns at most */
#define SCAN_VEC 256

/* Host free memory below which open pages are closed: twice minFree */
static uint64_t margin(const struct mv_host *h)
{
	return 2 * atomic_load(&h->minfree_pages);
}

static uint64_t host_free(struct mv_host *h)
{
	uint64_t used = atomic_load(&h->consumed_pages),
		 size = atomic_load(&h->memsize_pages);

	return used < size ? size - used : 0;
}

/*
 * Asks the kernel once whether PAGEMAP_SCAN answers with the zero-page
 * category (Linux 6.7), on a page of our own that maps the zero page.
 */
static int probe(struct mv_host *h)
{
	struct mv__page_region r;
	volatile uint8_t *p;
	struct mv__pm_scan_arg a;
	long n;
	int err;

	if (h->share.pagemap_fd < 0)
		return -EBADF;
	p = mmap(NULL, MV_PAGE_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		 0);
	if (p == MAP_FAILED)
		return -errno;
	(void)p[0]; /* maps the zero page */
	a = (struct mv__pm_scan_arg){
		.size = sizeof(a),
		.start = (uintptr_t)p,
		.end = (uintptr_t)p + MV_PAGE_SIZE,
		.vec = (uintptr_t)&r,
		.vec_len = 1,
		.category_mask = MV_PAGE_IS_PFNZERO,
		.return_mask = MV_PAGE_IS_PFNZERO,
	};
	n = ioctl(h->share.pagemap_fd, MV_PAGEMAP_SCAN, &a);
	err = n < 0 ? -errno : n == 1 ? 0 : -EOPNOTSUPP;
	munmap((void *)p, MV_PAGE_SIZE);
	return err;
}

/* What a probe's answer s (a -errno) says is missing. */
static const char *why_not(int s)
{
	return s == -ENOTTY || s == -EINVAL || s == -EOPNOTSUPP ?
		       "this kernel has no PAGEMAP_SCAN with the zero-page category (Linux 6.7)" :
		       "/proc/self/pagemap cannot be read";
}

const char *mv__zero_supported(struct mv_host *h)
{
	int s = atomic_load(&h->zero_scan), expect = 0, err;

	if (!s) {
		err = probe(h);
		s = err ? err : 1;
		/* the first to look says so, once */
		if (!atomic_compare_exchange_strong(&h->zero_scan, &expect, s))
			s = expect;
		else if (s != 1 && h->settings.zero_open)
			mv__host_event(
				h, MV_LOG_WARNING,
				"Mem.ZeroOpen does nothing here: %s; pages read as zeros stay write-protected",
				why_not(s));
	}
	return s == 1 ? NULL : why_not(s);
}

static bool enabled(struct mv_vm *vm)
{
	return vm->host->settings.zero_open && !vm->remote &&
	       !mv__zero_supported(vm->host);
}

/* Pages of vm that may be opened now (the room rule, above). */
static uint64_t room(struct mv_vm *vm)
{
	struct mv_host *h = vm->host;
	uint64_t tgt = atomic_load(&vm->sched.sztgt_pages),
		 grant = atomic_load_explicit(&h->grant_target_pages,
					      memory_order_relaxed),
		 used = atomic_load(&vm->consumed_pages), free = host_free(h),
		 m = margin(h), r;

	if (tgt > grant)
		tgt = grant;
	r = tgt > used ? tgt - used : 0;
	free = free > m ? free - m : 0;
	return r < free ? r : free;
}

bool mv__zero_open_reserve(struct mv_vm *vm, unsigned n)
{
	unsigned got;

	if (!n || !enabled(vm) || room(vm) < n)
		return false;
	got = mv__frames_reserve(vm->host, n);
	if (got == n)
		return true;
	mv__frames_unreserve(vm->host, got);
	return false;
}

void mv__zero_open_count(struct mv_vm *vm, uint64_t n)
{
	atomic_fetch_add_explicit(&vm->consumed_pages, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->zo.pages, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->c.zero_opens, n, memory_order_relaxed);
}

/*
 * Bit i set: page lo + i (of n <= 64, addresses from vm->mem) maps the
 * zero page.  false when the kernel would not say.
 */
static bool zero_mask(struct mv_vm *vm, uint64_t lo, uint64_t n, uint64_t *mask)
{
	struct mv__page_region r[RUN_MAX / 2 + 1];
	uintptr_t base = (uintptr_t)vm->mem;
	struct mv__pm_scan_arg a = {
		.size = sizeof(a),
		.start = base + (lo << MV_PAGE_SHIFT),
		.end = base + ((lo + n) << MV_PAGE_SHIFT),
		.vec = (uintptr_t)r,
		.vec_len = sizeof(r) / sizeof(r[0]),
		.category_mask = MV_PAGE_IS_PFNZERO,
		.return_mask = MV_PAGE_IS_PFNZERO,
	};
	long got = mv__pagemap_scan(vm->host->share.pagemap_fd, &a);

	MV_ASSERT(n <= RUN_MAX);
	if (got < 0)
		return false;
	*mask = 0;
	for (long k = 0; k < got; k++)
		for (uint64_t p = (r[k].start - base) >> MV_PAGE_SHIFT;
		     p < (r[k].end - base) >> MV_PAGE_SHIFT; p++)
			if (p >= lo && p < lo + n)
				*mask |= 1ull << (p - lo);
	return true;
}

/* An open page the guest wrote (locked, entry v): PRIVATE from now. */
static void written(struct mv_vm *vm, uint64_t ppn, uint64_t v)
{
	pmap_assert_locked(&vm->pmap[ppn]);
	MV_ASSERT(pmap_zero_open(v));
	/* a first touch, as a fill is (demand counts it), and warm */
	mv__cold_touch(&vm->cold, ppn, 0);
	pmap_unlock(vm, ppn, pmap_make(MV_PAGE_PRIVATE, v, PMAP_FROM_GIVEN_UP));
}

static void count_written(struct mv_vm *vm, uint64_t n)
{
	if (!n)
		return;
	atomic_fetch_sub_explicit(&vm->zo.pages, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->c.zero_open_writes, n,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->c.fault_fill_pages, n,
				  memory_order_relaxed);
}

/*
 * Closes the run of open pages [lo, lo + n), all locked (entries old[]):
 * protected, then looked at.  Returns the frames released.
 */
static uint64_t close_run(struct mv_vm *vm, uint64_t lo, uint64_t n,
			  const uint64_t *old)
{
	uint8_t *g = vm->mem + (lo << MV_PAGE_SHIFT);
	uint64_t mask = 0, freed = 0, wrote = 0;
	uint64_t a;

	if (mv__uffd_wp(vm->uffd, g, n << MV_PAGE_SHIFT,
			UFFDIO_WRITEPROTECT_MODE_WP)) {
		/* still writable: still open, and looked at again later */
		atomic_fetch_add_explicit(&vm->c.zero_open_errors, 1,
					  memory_order_relaxed);
		for (uint64_t i = 0; i < n; i++)
			pmap_unlock(vm, lo + i, old[i]);
		return 0;
	}
	/* without the kernel's answer every page counts as written */
	if (!zero_mask(vm, lo, n, &mask)) {
		mask = 0;
		atomic_fetch_add_explicit(&vm->c.zero_open_errors, 1,
					  memory_order_relaxed);
	}
	/* the written ones writable again, a call per run of them; a lift
	 * refused leaves a PRIVATE page protected, which its next write's
	 * fault lifts (fault.c) */
	for (uint64_t i = 0; i < n; i = a) {
		for (a = i; a < n && !(mask >> a & 1); a++)
			;
		if (a > i)
			mv__uffd_wp(vm->uffd, g + (i << MV_PAGE_SHIFT),
				    (a - i) << MV_PAGE_SHIFT,
				    UFFDIO_WRITEPROTECT_MODE_DONTWAKE);
		while (a < n && (mask >> a & 1))
			a++;
	}
	for (uint64_t i = 0; i < n; i++) {
		if (mask >> i & 1) {
			pmap_unlock(vm, lo + i,
				    pmap_make(MV_PAGE_ZERO, old[i],
					      PMAP_ZERO_MAPPED));
			freed++;
		} else {
			written(vm, lo + i, old[i]);
			wrote++;
		}
	}
	count_written(vm, wrote);
	if (freed) {
		atomic_fetch_sub_explicit(&vm->zo.pages, freed,
					  memory_order_relaxed);
		atomic_fetch_sub_explicit(&vm->consumed_pages, freed,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&vm->c.zero_closes, freed,
					  memory_order_relaxed);
		mv__frames_release(vm->host, freed);
	}
	return freed;
}

/*
 * Locks the run of pages from p on (up to RUN_MAX, within the VM) whose
 * entries satisfy want(), by trylock; returns how many (0: p itself did
 * not, or was busy).
 */
static uint64_t lock_run(struct mv_vm *vm, uint64_t p, bool (*want)(uint64_t),
			 uint64_t *old)
{
	uint64_t n = 0, v;

	while (n < RUN_MAX && p + n < vm->npages &&
	       want(pmap_peek(&vm->pmap[p + n])) &&
	       pmap_trylock(&vm->pmap[p + n], &v)) {
		if (!want(v)) {
			pmap_unlock(vm, p + n, v);
			break;
		}
		old[n++] = v;
	}
	return n;
}

static bool is_open(uint64_t v)
{
	return pmap_zero_open(v);
}

static bool is_mapped(uint64_t v)
{
	return pmap_state(v) == MV_PAGE_ZERO &&
	       pmap_payload(v) == PMAP_ZERO_MAPPED;
}

uint64_t mv__zero_close(struct mv_vm *vm, uint64_t want)
{
	uint64_t old[RUN_MAX], freed = 0, looked = 0, p, n;

	if (vm->remote || !atomic_load(&vm->zo.pages))
		return 0;
	p = atomic_load_explicit(&vm->zo.close_cursor, memory_order_relaxed);
	while (freed < want && looked < vm->npages &&
	       atomic_load(&vm->zo.pages)) {
		if (p >= vm->npages)
			p = 0;
		n = lock_run(vm, p, is_open, old);
		if (n) {
			freed += close_run(vm, p, n, old);
		} else {
			n = 1;
		}
		p += n;
		looked += n;
	}
	atomic_store_explicit(&vm->zo.close_cursor, p, memory_order_relaxed);
	return freed;
}

/*
 * Makes the open pages in [a, b) PRIVATE: the kernel said none of them
 * maps the zero page, so the guest wrote each open one.  Busy ones wait
 * for the next harvest.
 */
static uint64_t harvest_range(struct mv_vm *vm, uint64_t a, uint64_t b)
{
	uint64_t n = 0, v;

	for (uint64_t p = a; p < b; p++) {
		if (!pmap_zero_open(pmap_peek(&vm->pmap[p])) ||
		    !pmap_trylock(&vm->pmap[p], &v))
			continue;
		if (!pmap_zero_open(v)) {
			pmap_unlock(vm, p, v);
			continue;
		}
		written(vm, p, v);
		n++;
	}
	return n;
}

/*
 * One walk of the kernel's page tables for the VM: the open pages that no
 * longer map the zero page were written.  A page that maps the zero page
 * now and is written a moment later is found next time.  A page seen
 * written cannot map the zero page again but by a drop under its lock
 * (the balloon's, which takes it out of the open state first), so a
 * page still open when locked was written; were it not, turning it
 * PRIVATE is still safe (above).
 */
static void harvest(struct mv_vm *vm)
{
	struct mv__page_region r[SCAN_VEC];
	uintptr_t base = (uintptr_t)vm->mem;
	uint64_t p = 0, got = 0, s, e;
	struct mv__pm_scan_arg a;
	long n;

	while (p < vm->npages && atomic_load(&vm->zo.pages)) {
		a = (struct mv__pm_scan_arg){
			.size = sizeof(a),
			.start = base + (p << MV_PAGE_SHIFT),
			.end = base + (vm->npages << MV_PAGE_SHIFT),
			.vec = (uintptr_t)r,
			.vec_len = SCAN_VEC,
			.category_mask = MV_PAGE_IS_PFNZERO,
			.return_mask = MV_PAGE_IS_PFNZERO,
		};
		n = mv__pagemap_scan(vm->host->share.pagemap_fd, &a);
		if (n < 0) {
			atomic_fetch_add_explicit(&vm->c.zero_open_errors, 1,
						  memory_order_relaxed);
			break;
		}
		for (long k = 0; k < n; k++) {
			s = (r[k].start - base) >> MV_PAGE_SHIFT;
			e = (r[k].end - base) >> MV_PAGE_SHIFT;
			got += harvest_range(vm, p, s);
			p = e;
		}
		/* the walk stops early only when the vector is full: what
		 * lies between the last region and its stop is not on the
		 * zero page */
		e = a.walk_end > base ? (a.walk_end - base) >> MV_PAGE_SHIFT :
					vm->npages;
		if (e > vm->npages)
			e = vm->npages;
		if (e > p) {
			got += harvest_range(vm, p, e);
			p = e;
		}
		if (n < SCAN_VEC)
			break;
	}
	count_written(vm, got);
}

/*
 * Opens pages of vm mapped protected to the zero page, up to `can`, from
 * where the last top-up stopped, by lifting their protection a run at a
 * time.  A sweep that finds none is not made again until the VM reads
 * more pages as zeros.
 */
static void top_up(struct mv_vm *vm, uint64_t can)
{
	uint64_t old[RUN_MAX], looked = 0, opened = 0, n, got,
			       p = atomic_load_explicit(&vm->zo.open_cursor,
							memory_order_relaxed),
			       maps = atomic_load(&vm->c.zero_maps);

	if (maps ==
	    atomic_load_explicit(&vm->zo.swept_maps, memory_order_relaxed))
		return;
	while (opened < can && looked < vm->npages) {
		if (p >= vm->npages)
			p = 0;
		n = lock_run(vm, p, is_mapped, old);
		if (!n) {
			p++;
			looked++;
			continue;
		}
		if (n > can - opened) { /* a shorter run: let the rest go */
			for (uint64_t i = can - opened; i < n; i++)
				pmap_unlock(vm, p + i, old[i]);
			n = can - opened;
		}
		got = mv__frames_reserve(vm->host, (unsigned)n);
		if (got < n ||
		    mv__uffd_wp(vm->uffd, vm->mem + (p << MV_PAGE_SHIFT),
				n << MV_PAGE_SHIFT,
				UFFDIO_WRITEPROTECT_MODE_DONTWAKE)) {
			mv__frames_unreserve(vm->host, got);
			for (uint64_t i = 0; i < n; i++)
				pmap_unlock(vm, p + i, old[i]);
			if (got == n)
				atomic_fetch_add_explicit(
					&vm->c.zero_open_errors, 1,
					memory_order_relaxed);
			break;
		}
		mv__zero_open_count(vm, n);
		for (uint64_t i = 0; i < n; i++)
			pmap_unlock(vm, p + i,
				    pmap_make(MV_PAGE_ZERO, old[i],
					      PMAP_ZERO_OPEN));
		opened += n;
		p += n;
		looked += n;
	}
	atomic_store_explicit(&vm->zo.open_cursor, p, memory_order_relaxed);
	if (looked >= vm->npages && !opened)
		atomic_store_explicit(&vm->zo.swept_maps, maps,
				      memory_order_relaxed);
}

void mv__zero_tick(struct mv_vm *vm, uint64_t now_ms)
{
	struct mv_host *h = vm->host;
	uint64_t free, m, can;

	if (vm->remote)
		return;
	if (atomic_load(&vm->zo.pages) &&
	    now_ms >= atomic_load_explicit(&vm->zo.next_harvest_ms,
					   memory_order_relaxed) &&
	    !mv__zero_supported(h)) {
		harvest(vm);
		atomic_store_explicit(&vm->zo.next_harvest_ms,
				      now_ms + HARVEST_MS,
				      memory_order_relaxed);
	}
	free = host_free(h);
	m = margin(h);
	if (free < m) {
		mv__zero_close(vm, m - free);
		return;
	}
	if (!enabled(vm) || !mv__zero_writer(vm, MV__ZERO_WRITER_PCT))
		return;
	can = room(vm);
	if (can)
		top_up(vm, can);
}

// SPDX-License-Identifier: MIT
/*
 * fault.c - the fault service: turns userfaultfd MISSING events into filled
 * guest pages, by what the pmap says each page holds.
 *
 * Design: each VM has Mem.FaultThreads threads reading its userfaultfd (the
 * kernel hands each event to one reader).  They block in read(), not in
 * poll(): a poll() woke every thread for each event, and all but one then
 * read nothing; a blocking reader that loses sleeps on in the kernel.  They
 * are stopped through the VM's stop page, registered with the same
 * userfaultfd: mv__fault_stop touches it once, each thread reads that
 * fault as its stop and wakes the toucher to fault again for the next, and
 * the last one fills the page so that the touch completes.  A fault on page p locks pmap[p]
 * and, by its state:
 *   UNTOUCHED  fill with zeros, or with the RAM image's bytes for a VM
 *              restored from an image (read lazily, like a VMM restoring a
 *              snapshot; the image's zero pages are mapped to the kernel's
 *              zero page, ZERO with no frame, as a Linux process reading
 *              untouched memory gets); a read of one of a VM with no
 *              image maps the zero page too (zero_read);
 *   SWAPPED    read the page back from the VM's swap file;
 *   ZERO, BALLOONED  zeros, never old bytes nor the image's: the guest
 *              gave the content up through its balloon (a fault read
 *              before the page was ballooned is stale and only woken);
 *              a write to a ZERO page mapped to the zero page gives it a
 *              frame (zero_write), and its neighbours mapped so too when
 *              the VM writes what it reads and memory is not short
 *              (zero_write_run: one fault for the run, not one per page);
 *   COMPRESSED decompress it from the VM's compression cache;
 *   PRIVATE    already present: another thread's fault won the race, so just
 *              wake the faulting thread; a write-protect fault is a write
 *              that raced the share scanner, which held the page
 *              write-protected while it compared it: lift the protection;
 *   SHARED     a write-protect fault is a write to a shared page: share_cow.c
 *              gives the writer its own copy; a MISSING fault raced the
 *              page being mapped, so just wake.
 * A VM restored from a RAM image shares the image's pages from the first
 * touch: the first-touch run maps the image's shared frames (share_cow.c),
 * maps the zero page over its zeros, and copies in only the pages that
 * can do neither (another salt, a VM alone with its image, the page a
 * write fault is for).
 *   SAMPLED    taken out for active-memory sampling: sample.c puts it back.
 * Before that, a VM above its target waits while the host is in the low
 * state (sched.c).
 * Frames are reserved from the host before anything is filled; with none
 * free the thread drops its lock and sleeps until reclaim frees some.
 *
 * Batching is where the speed is (docs/BENCHMARKS.md: 16 pages per UFFDIO_COPY cost
 * a fifth of one at a time).  A first-touch fault fills the run of
 * UNTOUCHED neighbours inside its aligned window of Mem.FaultAroundPages
 * pages; a swap-in reads the run of SWAPPED neighbours inside its window
 * with one pread, since page p lives in slot p.  A read-back's window (swap
 * or compression cache) adapts per VM, up to Mem.SwapInClusterPages: it
 * grows while the guest goes on to use what reads bring and shrinks to one
 * page for random access (readahead.c).
 * Neighbours are taken with trylock only, so batching never waits and never
 * deadlocks against reclaim, which also uses trylock.  Only the page the
 * fault is for is marked warm for reclaim's victim choice (cold.c): the
 * neighbours a run brings along stay as cold as they were.
 *
 * A zero fill (and a put-back from a sampling or park slot, sample.c) that
 * the kernel refuses is not retried in place: the error is counted and
 * reported, and after a pause with no lock held the guest is woken to
 * fault again, so each retry is a fresh event and the thread keeps
 * serving other pages and can be stopped.
 *
 * Invariants: a page is filled only by the holder of its lock, and only
 * with its own content: zeros, its image bytes, or its own swap slot.  The
 * whole page is always written (UFFDIO_COPY copies 4 KiB), so a fresh frame
 * can never show another VM's or an earlier life's data.  Content that
 * cannot be read (image or swap I/O error) is never replaced by guesswork:
 * the read is retried, page alone, IO_TRIES times over 630 ms, each error
 * counted and reported; then the page is declared unreadable: its entry
 * stays as it was (SWAPPED keeps its slot), the VM counts it
 * (unreadable_pages, the first page and its error in mv_vm_stats), and the
 * page is poisoned (UFFDIO_POISON) so that the waiting guest thread, and
 * every later touch, takes SIGBUS at the page's address, as on a machine
 * whose memory failed: a VMM would turn that into a machine check for its
 * guest.  No thread waits on a read for ever, and nothing reads as zeros.  A page copied in
 * is PRIVATE: when UFFDIO_COPY fails partway through a run, the pages it
 * did copy become PRIVATE and only the rest are retried.
 *
 * Locks (order: internal.h): the faulting page's pmap entry, neighbours
 * by trylock, then host->share.lock, vm->zc.lock, vm->swap.lock,
 * host->frames_lock (inside mv__frames_*), host->msg_lock.  Never sleeps
 * for frames holding a pmap lock, and never makes a call that can fault
 * on its own userfaultfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"
#include "internal.h"
#include "uffd.h"

#define FAULT_MSGS 16
#define IO_RETRY_MS 10
/* Reads of a page's content before it is declared unreadable: 10 ms
 * apart, doubling, 630 ms in all */
#define IO_TRIES 7
/* Spurious faults in a row on one page that mean it is not mapped at all */
#define SPURIOUS_LIMIT 100000

struct fault_ctx {
	struct mv_vm *vm;
	uint8_t *buf; /* MV_MAX_RUN_PAGES pages, 4 KiB aligned for O_DIRECT */
	uint64_t spurious_ppn; /* page of the last spurious fault */
	uint64_t spurious_count; /* spurious faults on it in a row */
	uint64_t read_inflates; /* vm->balloon.inflates after the last read */
	struct mv__affinity_cursor aff; /* the vCPU it follows (affinity.c) */
};

struct run {
	uint64_t lo, n; /* pages [lo, lo + n) locked by us */
	uint64_t old[MV_MAX_RUN_PAGES]; /* their entries when locked */
};

static void wake_range(struct mv_vm *vm, uint64_t ppn, uint64_t n)
{
	struct uffdio_range r = { .start = (uintptr_t)vm->mem +
					   (ppn << MV_PAGE_SHIFT),
				  .len = n << MV_PAGE_SHIFT };

	ioctl(vm->uffd, UFFDIO_WAKE, &r);
}

static void wake(struct mv_vm *vm, uint64_t ppn)
{
	wake_range(vm, ppn, 1);
}

/*
 * Whether a neighbour (entry old) can join a run whose page next to it has
 * entry edge: same state (a ZERO page only if not present), and for swapped
 * pages the slot right after (dir
 * 1) or before (dir -1) the edge's, so one pread reads them all.
 */
static bool joins(enum mv_page_state s, uint64_t old, uint64_t edge, int dir)
{
	if (pmap_state(old) != s)
		return false;
	/* a ZERO page mapping the zero page is present: no fill over it,
	 * and a run of such pages (zero_write_run) takes only them; an open
	 * one (zero_open.c) joins no run */
	if (s == MV_PAGE_ZERO)
		return pmap_payload(old) == pmap_payload(edge);
	if (s != MV_PAGE_SWAPPED)
		return true;
	return pmap_payload(old) == pmap_payload(edge) + (uint64_t)(int64_t)dir;
}

/*
 * Grows a run around ppn (already locked, entry v) over neighbours in the
 * same state within the aligned window of `window` pages, up to `max`
 * pages.
 */
static void grow_run(struct mv_vm *vm, uint64_t ppn, uint64_t v,
		     unsigned window, unsigned max, struct run *r)
{
	uint64_t wlo = ppn - ppn % window, whi = wlo + window, old;
	enum mv_page_state s = pmap_state(v);

	if (whi > vm->npages)
		whi = vm->npages;
	r->lo = ppn;
	r->n = 1;
	r->old[0] = v;
	/* forwards first: guests mostly touch memory upwards */
	while (r->n < max && r->lo + r->n < whi) {
		uint64_t p = r->lo + r->n;

		if (!pmap_trylock(&vm->pmap[p], &old))
			break;
		if (!joins(s, old, r->old[r->n - 1], 1)) {
			pmap_unlock(vm, p, old);
			break;
		}
		r->old[r->n++] = old;
	}
	while (r->n < max && r->lo > wlo) {
		uint64_t p = r->lo - 1;

		if (!pmap_trylock(&vm->pmap[p], &old))
			break;
		if (!joins(s, old, r->old[0], -1)) {
			pmap_unlock(vm, p, old);
			break;
		}
		memmove(&r->old[1], &r->old[0], r->n * sizeof(r->old[0]));
		r->old[0] = old;
		r->lo = p;
		r->n++;
	}
}

/* Publishes r->old as the run's entries: the census once per run. */
static void unlock_run(struct mv_vm *vm, struct run *r)
{
	pmap_unlock_run(vm, r->lo, r->n, r->old);
}

static int unzip_run(struct mv_vm *vm, struct run *r, uint8_t *buf)
{
	int err;

	for (uint64_t i = 0; i < r->n; i++) {
		err = mv__zcache_load(vm, r->old[i],
				      buf + (i << MV_PAGE_SHIFT));
		if (err)
			return err;
	}
	return 0;
}

static int read_image(struct mv_vm *vm, struct run *r, uint8_t *buf)
{
	uint64_t off = r->lo << MV_PAGE_SHIFT, len = r->n << MV_PAGE_SHIFT;
	uint64_t want = 0, done = 0;
	ssize_t got;

	if (off < vm->image_bytes)
		want = vm->image_bytes - off < len ? vm->image_bytes - off :
						     len;
	while (done < want) {
		got = mv__pread(vm->image_fd, buf + done, want - done,
				(off_t)(off + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			break; /* the image shrank under us: rest reads zero */
		done += (uint64_t)got;
	}
	memset(buf + done, 0, len - done);
	atomic_fetch_add_explicit(&vm->c.image_pages,
				  (done + MV_PAGE_SIZE - 1) >> MV_PAGE_SHIFT,
				  memory_order_relaxed);
	return 0;
}

/*
 * UFFDIO_COPY of n pages from lo; the kernel may copy part and ask again.
 * One copy stays within one mapping, and shared pages split the guest's
 * mapping, so a run the kernel refuses (ENOENT) is copied page by page.
 * Returns 0, or the error that stopped it, with *copied set to how many
 * pages, from lo, are in place all the same.
 */
static int copy_range(struct mv_vm *vm, uint64_t lo, uint64_t n,
		      const uint8_t *buf, uint64_t *copied)
{
	uint64_t done = 0, len = n << MV_PAGE_SHIFT, step = len;
	struct uffdio_copy c;
	int err = 0;

	while (done < len) {
		c = (struct uffdio_copy){
			.dst = (uintptr_t)vm->mem + (lo << MV_PAGE_SHIFT) +
			       done,
			.src = (uintptr_t)buf + done,
			.len = step < len - done ? step : len - done,
		};
		if (mv__uffd_copy(vm->uffd, &c) == 0) {
			done += c.len;
			continue;
		}
		if (c.copy > 0) {
			done += (uint64_t)c.copy;
		} else if (errno == ENOENT && step > MV_PAGE_SIZE) {
			step = MV_PAGE_SIZE;
		} else if (errno != EAGAIN && c.copy != -EAGAIN) {
			err = -errno;
			break;
		}
	}
	*copied = done >> MV_PAGE_SHIFT;
	return err;
}

static int copy_in(struct mv_vm *vm, struct run *r, uint8_t *buf,
		   uint64_t *copied)
{
	return copy_range(vm, r->lo, r->n, buf, copied);
}

/*
 * After a copy that failed partway, the run's first `copied` pages are
 * present, and a present page must be PRIVATE: left in its old state it
 * would be refilled over (EEXIST, forever) or never counted.  Gives the
 * rest back unfilled, with their frames, and shrinks r to the filled part.
 */
static void keep_copied(struct mv_vm *vm, struct run *r, uint64_t copied)
{
	for (uint64_t i = copied; i < r->n; i++)
		pmap_unlock(vm, r->lo + i, r->old[i]);
	mv__frames_unreserve(vm->host, r->n - copied);
	r->n = copied;
}

static bool in_run(const struct run *r, uint64_t ppn)
{
	return ppn >= r->lo && ppn < r->lo + r->n;
}

/*
 * Maps the kernel's shared zero page over the n pages from lo (locked, not
 * present) and write-protects them, without waking anyone: they read as
 * zeros with no frame, and a write faults (zero_write).  Open (their
 * frames reserved, zero_open.c), they are left writable.  Returns how many
 * from lo it mapped (the kernel may stop early); those left unprotected
 * by a refused protection are counted as fault errors and stay mapped
 * (zero_read says why).
 */
static uint64_t zero_map(struct mv_vm *vm, uint64_t lo, uint64_t n, bool open)
{
	uint8_t *g = vm->mem + (lo << MV_PAGE_SHIFT);
	struct uffdio_zeropage z = {
		.range = { .start = (uintptr_t)g, .len = n << MV_PAGE_SHIFT },
		.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE,
	};
	uint64_t mapped;
	int err;

	err = mv__inject_check(MV_INJ_UFFD_ZEROPAGE);
	if (!err && ioctl(vm->uffd, UFFDIO_ZEROPAGE, &z) < 0)
		err = errno;
	/* on an error, the kernel's count of what it did map, if any */
	mapped = !err		? n :
		 z.zeropage > 0 ? (uint64_t)z.zeropage >> MV_PAGE_SHIFT :
				  0;
	if (mapped && !open &&
	    mv__uffd_wp(vm->uffd, g, mapped << MV_PAGE_SHIFT,
			UFFDIO_WRITEPROTECT_MODE_WP)) {
		/* Left mapped, unprotected: ZERO_MAPPED all the same.  A
		 * guest write may already have landed on one of them since
		 * UFFDIO_ZEROPAGE (and got a page of its own, unseen), so
		 * dropping them could lose it.  A later write makes the
		 * guest its own page unseen too; nothing empties such a page
		 * but the balloon, once the guest gave it up, and the frame
		 * is uncounted: memory, never content, is what is at stake. */
		atomic_fetch_add_explicit(&vm->c.fault_errors, 1,
					  memory_order_relaxed);
	}
	atomic_fetch_add_explicit(&vm->c.zero_maps, mapped,
				  memory_order_relaxed);
	return mapped;
}

/* What fill_image does with each page of a run */
enum image_fill { FILL_COPY, FILL_SHARED, FILL_ZERO };

/*
 * First touch of a run of an image VM's pages: those the image's shared
 * frames can serve are mapped to them (share_cow.c); those the image holds
 * zeros for (two thirds of a booted Linux guest's memory, and all past the
 * image's end) are mapped to the kernel's zero page, ZERO with no frame as
 * after a read of a ZERO page (zero_read), but for the page a write fault
 * is for (index `written` in the run), which is copied in at once; the
 * rest are copied in, as are zeros the kernel would not map.  Each entry
 * in r->old becomes what to publish: SHARED, ZERO, PRIVATE, or as it was
 * for a page a failed copy left unfilled.
 */
static int fill_image(struct mv_vm *vm, struct run *r, const uint8_t *buf,
		      uint64_t written)
{
	uint64_t frame[MV_MAX_RUN_PAGES], i, j, k, copied, mapped;
	uint8_t kind[MV_MAX_RUN_PAGES];
	int err = 0;

	mv__share_image_map(vm, r->lo, r->n, buf, frame);
	for (i = 0; i < r->n; i++) {
		kind[i] = frame[i] != MV_NO_FRAME ? FILL_SHARED :
			  i != written && mv__share_page_is_zero(
						  buf + (i << MV_PAGE_SHIFT)) ?
						    FILL_ZERO :
						    FILL_COPY;
		if (kind[i] == FILL_SHARED)
			r->old[i] = pmap_make(MV_PAGE_SHARED, PMAP_TOUCHED,
					      frame[i]);
	}
	for (i = 0; i < r->n && !err; i = j) {
		for (j = i + 1; j < r->n && kind[j] == kind[i]; j++)
			;
		if (kind[i] == FILL_SHARED)
			continue;
		mapped = kind[i] == FILL_ZERO ?
				 zero_map(vm, r->lo + i, j - i, false) :
				 0;
		for (k = i; k < i + mapped; k++)
			r->old[k] = pmap_make(MV_PAGE_ZERO, PMAP_TOUCHED,
					      PMAP_ZERO_MAPPED);
		if (i + mapped == j)
			continue;
		err = copy_range(vm, r->lo + i + mapped, j - i - mapped,
				 buf + ((i + mapped) << MV_PAGE_SHIFT),
				 &copied);
		for (k = i + mapped; k < i + mapped + copied; k++)
			r->old[k] = pmap_make(MV_PAGE_PRIVATE, PMAP_TOUCHED,
					      PMAP_FROM_IMAGE);
	}
	return err;
}

/*
 * Publishes an image run filled by fill_image(): the PRIVATE pages keep
 * the frames reserved for them, the rest go back.  Mapping shared frames
 * wakes nobody, so the whole run is woken.
 */
static void publish_image(struct mv_vm *vm, struct run *r)
{
	uint64_t private = 0;

	for (uint64_t i = 0; i < r->n; i++)
	private += pmap_state(r->old[i]) == MV_PAGE_PRIVATE;
	atomic_fetch_add_explicit(&vm->consumed_pages, private,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->c.fault_fill_pages, private,
				  memory_order_relaxed);
	mv__frames_unreserve(vm->host, r->n - private);
	unlock_run(vm, r);
	wake_range(vm, r->lo, r->n);
}

static void io_backoff(void)
{
	struct timespec ts = { 0, IO_RETRY_MS * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Fills a page the guest gave up through its balloon: ZERO after a
 * deflate, or still BALLOONED when a guest touches its own balloon (a
 * violation, and the page leaves the balloon).  Either reads as zeros,
 * never as its old bytes nor as the RAM image's: the content was given
 * up.  A ballooned page is filled alone, so one stray touch does not take
 * its neighbours out of the balloon.  Returns false when the caller must
 * start over (no frame was free), with the lock dropped.  A fill the
 * kernel refuses is not retried here: after a pause taken with no lock
 * held, the guest is woken to fault again, and that fresh event retries,
 * so that this thread keeps serving other faults and can be stopped.
 */
static bool fill_given_up(struct fault_ctx *ctx, uint64_t ppn, uint64_t v)
{
	struct mv_vm *vm = ctx->vm;
	struct mv_host *h = vm->host;
	bool ballooned = pmap_state(v) == MV_PAGE_BALLOONED;
	unsigned window = ballooned ? 1 : h->settings.fault_around_pages, got;
	uint64_t copied;
	struct run r;
	int err;

	pmap_assert_locked(&vm->pmap[ppn]);
	got = mv__frames_reserve(h, window);
	if (!got) {
		pmap_unlock(vm, ppn, v);
		mv__frames_wait(h, vm);
		return false;
	}
	grow_run(vm, ppn, v, window, got, &r);
	if (r.n < got)
		mv__frames_unreserve(h, got - r.n);
	memset(ctx->buf, 0, r.n << MV_PAGE_SHIFT);
	err = copy_in(vm, &r, ctx->buf, &copied);
	if (err) {
		keep_copied(vm, &r, copied);
		atomic_fetch_add_explicit(&vm->c.fault_errors, 1,
					  memory_order_relaxed);
		mv__host_set_msg(
			h,
			"VM %s: cannot fill page %llu with zeros: %s (retrying)",
			vm->name, (unsigned long long)ppn, strerror(-err));
	}
	for (uint64_t i = 0; i < r.n; i++)
		r.old[i] = pmap_make(MV_PAGE_PRIVATE, PMAP_TOUCHED,
				     PMAP_FROM_GIVEN_UP);
	atomic_fetch_add_explicit(&vm->consumed_pages, r.n,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->c.fault_fill_pages, r.n,
				  memory_order_relaxed);
	if (ballooned)
		mv__balloon_touched(vm, r.n);
	unlock_run(vm, &r);
	if (err && !in_run(&r, ppn)) {
		io_backoff();
		wake(vm, ppn);
	}
	return true;
}

/*
 * A read of a ZERO page (locked, entry v, not present) maps the kernel's
 * shared zero page there and write-protects it: the page reads as zeros
 * and stays ZERO, with no frame, as ESX maps its zero frame; its first
 * write faults (zero_write).  Before, every read gave the page (and its
 * fault-around neighbours) a frame of zeros, and a read-mostly guest undid
 * the scanner's work as fast as it was done.  So does a read of an
 * UNTOUCHED page of a VM with no image (Mem.ReadMapsZeroPage, 1), with its
 * untouched neighbours, which become ZERO: as Linux serves anonymous
 * memory, a page the guest only reads holds no frame.  A guest that reads
 * sparse tables before it writes them (bench linux's kvstore VMs: a probe
 * for a key never stored reads an empty slot) held frames of zeros for
 * pages it had not written (28 MB of a 384 MiB VM at the end of a
 * kvstore-8 run), and reclaim took pages it wanted to make room for them;
 * now their first write costs a second fault.  Neighbours in the same
 * state are mapped with it, two calls for the run, as fills are.  Between
 * the two a guest write to one of them is not seen: the zero page's entry
 * is not protected yet, so the kernel gives the guest a page of its own;
 * such a page holds the guest's bytes while its entry says ZERO, and its
 * next write's fault keeps them (zero_write).  While memory is plentiful
 * the run is mapped open instead (Mem.ZeroOpen, zero_open.c): writable,
 * a frame counted for each page, so that each first write is the
 * kernel's own copy with no fault here.  false, with ppn still locked
 * and the neighbours let go, when ppn could not be mapped so: the caller
 * fills it as before.
 */
static bool zero_read(struct fault_ctx *ctx, uint64_t ppn, uint64_t v)
{
	struct mv_vm *vm = ctx->vm;
	unsigned window = vm->host->settings.fault_around_pages;
	uint64_t mapped, me;
	struct run r;
	bool open;

	pmap_assert_locked(&vm->pmap[ppn]);
	grow_run(vm, ppn, v, window, window, &r);
	open = mv__zero_open_reserve(vm, (unsigned)r.n);
	mapped = zero_map(vm, r.lo, r.n, open);
	if (open) {
		mv__frames_unreserve(vm->host, r.n - mapped);
		mv__zero_open_count(vm, mapped);
	}
	me = ppn - r.lo;
	for (uint64_t i = 0; i < r.n; i++) {
		if (i < mapped)
			r.old[i] = pmap_make(MV_PAGE_ZERO, r.old[i],
					     open ? PMAP_ZERO_OPEN :
						    PMAP_ZERO_MAPPED);
		if (i != me || i < mapped)
			pmap_unlock(vm, r.lo + i, r.old[i]);
	}
	if (mapped)
		wake_range(vm, r.lo, mapped);
	return me < mapped;
}

/*
 * The first write to a ZERO page mapped to the zero page (locked, entry
 * v): the zero page's entry is dropped (MADV_DONTNEED) and a page of zeros
 * of the VM's own copied in (UFFDIO_COPY, which wakes the writer), PRIVATE
 * from then on.  Unless the page holds something else than zeros: a guest
 * write that landed between zero_read's UFFDIO_ZEROPAGE and its
 * protection (on a neighbour of the page read; the zero page's entry was
 * not protected yet) made the guest a page of its own, with no fault.
 * Protected since, it cannot change while this looks at it; its bytes are
 * the guest's and stay: the page becomes PRIVATE where it is, its
 * protection lifted.  (Dropping it lost that write: torture_share's rare
 * integrity errors.)  No call here can raise a userfault (the look at
 * the bytes reads a present page): a fault thread must never wait on its
 * own userfaultfd.  (Lifting the protection and having
 * the kernel copy the zero page with MADV_POPULATE_WRITE, as before, did:
 * the share scanner write-protects whole runs, pages between its
 * candidates included, and a run that took this page in between the lift
 * and the populate turned the populate into a write-protect fault on this
 * very thread, which hung the VM.)  Returns false, with the lock dropped,
 * when the caller must start over (no frame was free).
 */
static bool zero_write(struct fault_ctx *ctx, uint64_t ppn, uint64_t v)
{
	struct mv_vm *vm = ctx->vm;
	struct mv_host *h = vm->host;
	uint8_t *g = vm->mem + (ppn << MV_PAGE_SHIFT);
	struct uffdio_copy c = { .dst = (uintptr_t)g,
				 .src = (uintptr_t)ctx->buf,
				 .len = MV_PAGE_SIZE };
	int err;

	pmap_assert_locked(&vm->pmap[ppn]);
	if (!mv__frames_reserve(h, 1)) {
		pmap_unlock(vm, ppn, v);
		mv__frames_wait(h, vm);
		return false;
	}
	if (!mv__share_page_is_zero(g)) {
		/* lifted here, or else by the PRIVATE page's next fault */
		mv__uffd_wp(vm->uffd, g, MV_PAGE_SIZE,
			    UFFDIO_WRITEPROTECT_MODE_DONTWAKE);
		atomic_fetch_add_explicit(&vm->consumed_pages, 1,
					  memory_order_relaxed);
		/* a first touch, as a fill is (demand counts it) */
		atomic_fetch_add_explicit(&vm->c.fault_fill_pages, 1,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&vm->c.zero_writes, 1,
					  memory_order_relaxed);
		pmap_unlock(vm, ppn,
			    pmap_make(MV_PAGE_PRIVATE, v, PMAP_FROM_GIVEN_UP));
		wake(vm, ppn);
		return true;
	}
	err = mv__madvise(g, MV_PAGE_SIZE, MADV_DONTNEED);
	if (!err) {
		/* no longer mapped: a ZERO page like any other from here */
		v = pmap_make(MV_PAGE_ZERO, v, 0);
		memset(ctx->buf, 0, MV_PAGE_SIZE);
		err = mv__uffd_copy(vm->uffd, &c) ? -errno : 0;
	}
	if (err) {
		/* still ZERO (mapped to the zero page if the drop failed):
		 * the writer faults again once woken (after a pause, no lock
		 * held), and that fresh event retries */
		mv__frames_unreserve(h, 1);
		pmap_unlock(vm, ppn, v);
		atomic_fetch_add_explicit(&vm->c.fault_errors, 1,
					  memory_order_relaxed);
		mv__host_set_msg(
			h, "VM %s: cannot give zero page %llu a frame: %s",
			vm->name, (unsigned long long)ppn, strerror(-err));
		io_backoff();
		wake(vm, ppn);
		return true;
	}
	atomic_fetch_add_explicit(&vm->consumed_pages, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->c.fault_fill_pages, 1,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->c.zero_writes, 1, memory_order_relaxed);
	pmap_unlock(vm, ppn, pmap_make(MV_PAGE_PRIVATE, v, PMAP_FROM_GIVEN_UP));
	wake(vm, ppn);
	return true;
}

/*
 * Whether the first write to a page read as zeros gives frames to its
 * neighbours read as zeros too (zero_write_run, Mem.ZeroWriteAround): when
 * the VM has written, one fault each, at least MV__ZERO_AROUND_WRITTEN_PCT
 * percent of the pages it was given as zeros (it writes what it reads, as
 * a kvstore filling its table does); were it to write every ZERO page it
 * has, it would still be within its target (the scheduler's split of the
 * host among its VMs; for an agent's VM, its daemon's); and were every VM
 * that writes what it reads (MV__ZERO_WRITER_PCT) to write all of its
 * own, free memory would stay at minFree or above (before the first
 * balance every target is the VM's limit: this is the guard that holds
 * when many VMs fill at once).  Then a page read before it is written
 * costs one fault per run, as with Mem.ReadMapsZeroPage 0, where frames
 * are not short; a VM that reads far ahead of its writes (a kvstore whose
 * table outgrows its memory probes most of it before it has written a
 * tenth), or one that would outgrow its target or the host's free memory,
 * keeps its reads frameless.  The pages given frames this way do not
 * count as written: the rule cannot feed itself.
 */
static bool zero_write_around(const struct mv_vm *vm)
{
	struct mv_host *h = vm->host;
	uint64_t zero, all, tgt, grant;

	if (!h->settings.zero_write_around ||
	    !mv__zero_writer(vm, MV__ZERO_AROUND_WRITTEN_PCT))
		return false;
	zero = mv__zero_frameless(vm); /* the open ones have frames */
	/* an agent's VM: its daemon's target, not the local one, which
	 * follows a grant that may be speculative (agent.c) */
	tgt = atomic_load(&vm->sched.sztgt_pages);
	grant = atomic_load_explicit(&h->grant_target_pages,
				     memory_order_relaxed);
	if (tgt > grant)
		tgt = grant;
	if (atomic_load(&vm->consumed_pages) + zero > tgt)
		return false;
	/* this VM's ZERO pages and every other writer's, as the scheduler
	 * last summed them (sched.c): giving frames moves pages from one
	 * side of used + all to the other, so the sum is not left behind
	 * by the runs given since */
	all = atomic_load_explicit(&h->zero_writer_pages, memory_order_relaxed);
	if (all < zero)
		all = zero;
	return atomic_load(&h->consumed_pages) + all +
		       atomic_load(&h->minfree_pages) <=
	       atomic_load(&h->memsize_pages);
}

/*
 * The first write to a ZERO page mapped to the zero page (locked, entry
 * v), with the neighbours in the same state around it (zero_write_around)
 * that the fault-around window holds: all are given frames at once by
 * lifting their protection in one call.  Each keeps the zero page until
 * its own first write, which the kernel serves with a page of the VM's own
 * and no fault here; the frames are counted now, reserved before, as a
 * fill's are, so the budget never lags what the guest may hold.  A page
 * that holds bytes of its own (a write that raced zero_read's protection)
 * keeps them, as in zero_write: nothing is dropped.  Only the writer is
 * woken: a neighbour's writer waiting on a fault of its own is woken by
 * that fault's service, which finds the page PRIVATE and lifts its
 * protection (a no-op by then), as for any write to a PRIVATE page the
 * share scanner protected.  A lift the kernel refuses leaves the pages
 * PRIVATE and protected: their first writes fault and that service lifts
 * it.  false, with ppn still locked and the neighbours let go, when there
 * is no run (no neighbour in that state, or no frames for all of it): the
 * caller gives ppn alone its frame.
 */
static bool zero_write_run(struct fault_ctx *ctx, uint64_t ppn, uint64_t v)
{
	struct mv_vm *vm = ctx->vm;
	struct mv_host *h = vm->host;
	unsigned window = h->settings.fault_around_pages;
	uint64_t me, got = 0;
	struct run r;

	pmap_assert_locked(&vm->pmap[ppn]);
	grow_run(vm, ppn, v, window, window, &r);
	me = ppn - r.lo;
	if (r.n > 1)
		got = mv__frames_reserve(h, (unsigned)r.n);
	if (got < r.n) {
		mv__frames_unreserve(h, got);
		for (uint64_t i = 0; i < r.n; i++)
			if (i != me)
				pmap_unlock(vm, r.lo + i, r.old[i]);
		return false;
	}
	if (mv__uffd_wp(vm->uffd, vm->mem + (r.lo << MV_PAGE_SHIFT),
			r.n << MV_PAGE_SHIFT,
			UFFDIO_WRITEPROTECT_MODE_DONTWAKE))
		atomic_fetch_add_explicit(&vm->c.fault_errors, 1,
					  memory_order_relaxed);
	for (uint64_t i = 0; i < r.n; i++)
		r.old[i] = pmap_make(MV_PAGE_PRIVATE, r.old[i],
				     PMAP_FROM_GIVEN_UP);
	atomic_fetch_add_explicit(&vm->consumed_pages, r.n,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->c.fault_fill_pages, r.n,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->c.zero_writes, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->c.zero_around_pages, r.n - 1,
				  memory_order_relaxed);
	unlock_run(vm, &r);
	wake(vm, ppn);
	return true;
}

/*
 * A PRIVATE page is present, so a fault on it is a race another fault
 * thread won, and waking is all it needs.  A PRIVATE page that keeps
 * faulting is not present: the pmap lies, its content is gone, and the
 * guest thread would spin here forever.  That must never happen; if it does,
 * say so loudly rather than spin in silence.
 */
static enum pmap_origin origin_of(enum mv_page_state s, struct mv_vm *vm)
{
	if (s == MV_PAGE_SWAPPED)
		return PMAP_FROM_SWAP;
	if (s == MV_PAGE_COMPRESSED)
		return PMAP_FROM_ZIP;
	return vm->image_fd >= 0 ? PMAP_FROM_IMAGE : PMAP_FROM_ZEROS;
}

static void spurious_guard(struct fault_ctx *ctx, uint64_t ppn, uint64_t v)
{
	static const char *const origins[] = { "?",
					       "zero fill",
					       "image",
					       "swap-in",
					       "unzip",
					       "given-up fill",
					       "copy on write",
					       "copy on write in place",
					       "adopted at attach" };
	struct mv_vm *vm = ctx->vm;
	uint64_t o = pmap_payload(v);

	if (ppn != ctx->spurious_ppn) {
		ctx->spurious_ppn = ppn;
		ctx->spurious_count = 0;
		return;
	}
	if (++ctx->spurious_count != SPURIOUS_LIMIT)
		return;
	atomic_fetch_add_explicit(&vm->c.fault_errors, 1, memory_order_relaxed);
	atomic_fetch_add(&vm->host->lost_pages, 1);
	mv__host_event(
		vm->host, MV_LOG_ERROR,
		"VM %s: page %llu is PRIVATE in the pmap (last filled by %s) but not mapped (engine bug: its content is lost); the guest thread touching it cannot proceed",
		vm->name, (unsigned long long)ppn,
		origins[o < sizeof(origins) / sizeof(origins[0]) ? o : 0]);
#ifdef MV_TRACE
	mv__trace_dump(vm->pmap, ppn);
	for (uint64_t q = ppn > 2 ? ppn - 2 : 0; q < ppn + 3 && q < vm->npages;
	     q++)
		if (q != ppn)
			mv__trace_dump(vm->pmap, q);
#endif
}

/*
 * Whether a fault on a BALLOONED page (entry v) was read before the page
 * went into the balloon.  Faults are read in batches, so one can wait while
 * an earlier one's run fills its page and wakes its thread, which may then
 * free the page to its guest OS and the driver balloon it, all before this
 * fault is served.  Its touch was of a page the guest owned, not of its
 * balloon: counting it as a violation would take the page out of the
 * balloon behind the driver's back (and refuse the driver's deflate of it).
 * The inflate's number was counted before it locked the page, and
 * read_inflates after the read, so a larger number means the inflate came
 * after the fault.  Waking is all a stale fault needs; a thread that does
 * touch its balloon faults again and is served then.
 */
static bool stale_balloon_fault(struct fault_ctx *ctx, uint64_t v)
{
	return pmap_state(v) == MV_PAGE_BALLOONED &&
	       pmap_payload(v) > ctx->read_inflates;
}

/*
 * Makes the filled run r, whose pages were in state s, PRIVATE: frees what
 * held their content (cache objects, swap slots), counts them, unlocks.
 */
static void publish(struct mv_vm *vm, struct run *r, enum mv_page_state s)
{
	uint64_t slot = pmap_payload(r->old[0]);

	if (!r->n)
		return;
	atomic_fetch_add_explicit(&vm->consumed_pages, r->n,
				  memory_order_relaxed);
	for (uint64_t i = 0; i < r->n; i++) {
		if (s == MV_PAGE_COMPRESSED)
			mv__zcache_drop(vm, r->lo + i, r->old[i]);
		r->old[i] = pmap_make(MV_PAGE_PRIVATE, PMAP_TOUCHED,
				      origin_of(s, vm));
	}
	if (s == MV_PAGE_COMPRESSED) {
		atomic_fetch_add_explicit(&vm->zc.unzip_pages, r->n,
					  memory_order_relaxed);
	} else if (s == MV_PAGE_SWAPPED) {
		mv__swap_free(&vm->swap, slot, (unsigned)r->n);
		atomic_fetch_sub_explicit(&vm->swcur_pages, r->n,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&vm->c.swapin_pages, r->n,
					  memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&vm->c.fault_fill_pages, r->n,
					  memory_order_relaxed);
	}
	unlock_run(vm, r);
}

static void io_backoff_n(unsigned tries)
{
	long ms = (long)IO_RETRY_MS << (tries - 1);
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * The content of ppn (locked, entry v, state s: SWAPPED or an image VM's
 * UNTOUCHED) could not be read IO_TRIES times.  It is not replaced by
 * anything: the entry stays as it is (a swapped page keeps its slot, so a
 * later reader of the file could still try) and the page is poisoned, so
 * the guest thread waiting for it, and any later touch, gets SIGBUS at its
 * address, as on a real machine whose memory failed; the VM counts the
 * page unreadable.  Unlocks ppn.
 */
static void give_up_unreadable(struct mv_vm *vm, uint64_t ppn, uint64_t v,
			       int err)
{
	bool swapped = pmap_state(v) == MV_PAGE_SWAPPED;
	uint64_t none = 0;
	int perr;

	perr = mv__uffd_poison(vm->uffd, vm->mem + (ppn << MV_PAGE_SHIFT),
			       MV_PAGE_SIZE);
	if (perr == -EEXIST) {
		pmap_unlock(vm, ppn, v);
		wake(vm, ppn);
		return; /* another fault on it gave up first */
	}
	if (perr) {
		/* the guest thread cannot be told: it faults again, and the
		 * page is tried again, a bounded time each round */
		mv__host_set_msg(
			vm->host,
			"VM %s: page %llu cannot be read back from %s: %s (%d tries), and cannot be poisoned: %s; it is kept and tried again when touched",
			vm->name, (unsigned long long)ppn,
			swapped ? "swap" : "its image", strerror(-err),
			IO_TRIES, strerror(-perr));
		pmap_unlock(vm, ppn, v);
		wake(vm, ppn);
		return;
	}
	/* counted and said before the guest thread is woken to its SIGBUS */
	if (atomic_compare_exchange_strong(&vm->c.unreadable_pages, &none, 1)) {
		atomic_store(&vm->c.first_unreadable_ppn, ppn);
		atomic_store(&vm->c.unreadable_err, err);
	} else {
		atomic_fetch_add(&vm->c.unreadable_pages, 1);
	}
	mv__host_set_msg(
		vm->host,
		"VM %s: page %llu is unreadable: %s read failed %d times over %d ms: %s; its content is kept there, never guessed, and a guest touch of it raises SIGBUS (a memory error)",
		vm->name, (unsigned long long)ppn, swapped ? "swap" : "image",
		IO_TRIES, IO_RETRY_MS * ((1 << (IO_TRIES - 1)) - 1),
		strerror(-err));
	pmap_unlock(vm, ppn, v);
	wake(vm, ppn);
}

/*
 * Serves one fault on ppn.  Returns when the faulting thread has been woken
 * (or, for an error that cannot be retried, has been reported).
 */
static void serve(struct fault_ctx *ctx, uint64_t ppn, uint64_t flags)
{
	struct mv_vm *vm = ctx->vm;
	struct mv_host *h = vm->host;
	unsigned window, got, ra_win = 0, ra_stream = 0;
	enum mv_page_state s;
	uint64_t v, copied;
	unsigned io_tries = 0;
	struct run r;
	bool served, io;
	int err;

	/* the guest wants this page: warm for reclaim's clock (cold.c), the
	 * more so if it comes back from the swap file (a hint: the entry is
	 * read unlocked) */
	mv__cold_touch(&vm->cold, ppn,
		       pmap_state(pmap_peek(&vm->pmap[ppn])) ==
				       MV_PAGE_SWAPPED ?
			       MV_COLD_SWAP_SHIFT :
			       0);
	mv__budget_admit(vm);
	for (;;) {
		v = pmap_lock(&vm->pmap[ppn]);
		s = pmap_state(v);
		if (s == MV_PAGE_SAMPLED) {
			mv__sample_fault(vm, ppn, v);
			return;
		}
		if (stale_balloon_fault(ctx, v)) {
			pmap_unlock(vm, ppn, v);
			atomic_fetch_add_explicit(&vm->c.faults_spurious, 1,
						  memory_order_relaxed);
			wake(vm, ppn);
			return;
		}
		if (s == MV_PAGE_ZERO && pmap_payload(v) == PMAP_ZERO_MAPPED) {
			/* present: a write (or a stale read) */
			if (!(flags & UFFD_PAGEFAULT_FLAG_WP)) {
				pmap_unlock(vm, ppn, v);
				atomic_fetch_add_explicit(
					&vm->c.faults_spurious, 1,
					memory_order_relaxed);
				wake(vm, ppn);
				return;
			}
			if (zero_write_around(vm) &&
			    zero_write_run(ctx, ppn, v))
				return;
			if (zero_write(ctx, ppn, v))
				return;
			continue;
		}
		if (pmap_zero_open(v)) {
			/* present and writable (zero_open.c): a stale fault,
			 * or a write to a page the share scanner protected
			 * among its candidates' neighbours: lifted (the lift
			 * wakes the writer), as for a PRIVATE page */
			err = 0;
			if (flags & UFFD_PAGEFAULT_FLAG_WP)
				err = mv__uffd_wp(vm->uffd,
						  vm->mem + (ppn
							     << MV_PAGE_SHIFT),
						  MV_PAGE_SIZE, 0);
			pmap_unlock(vm, ppn, v);
			atomic_fetch_add_explicit(&vm->c.faults_spurious, 1,
						  memory_order_relaxed);
			if (err || !(flags & UFFD_PAGEFAULT_FLAG_WP))
				wake(vm, ppn);
			return;
		}
		/* a read of a page the guest never touched (its image's, if
		 * it has one, are filled below) reads the zero page too */
		if ((s == MV_PAGE_ZERO ||
		     (s == MV_PAGE_UNTOUCHED && vm->image_fd < 0 &&
		      h->settings.read_maps_zero_page)) &&
		    !(flags &
		      (UFFD_PAGEFAULT_FLAG_WRITE | UFFD_PAGEFAULT_FLAG_WP)) &&
		    zero_read(ctx, ppn, v))
			return;
		if (s == MV_PAGE_ZERO || s == MV_PAGE_BALLOONED) {
			if (fill_given_up(ctx, ppn, v))
				return;
			continue;
		}
		if (s == MV_PAGE_SHARED && (flags & UFFD_PAGEFAULT_FLAG_WP)) {
			if (!mv__share_cow(vm, ppn, v))
				continue;
			wake(vm, ppn);
			return;
		}
		if (s == MV_PAGE_PRIVATE && (flags & UFFD_PAGEFAULT_FLAG_WP)) {
			/* a write to a page the share scanner protected (a
			 * candidate let go, or a neighbour of candidates): it
			 * never wakes the writer, so that only this, the
			 * write's own fault, does, and no stale fault
			 * outlives it to find the page in another state
			 * (given up to the balloon, say) */
			err = mv__uffd_wp(vm->uffd,
					  vm->mem + (ppn << MV_PAGE_SHIFT),
					  MV_PAGE_SIZE, 0);
			pmap_unlock(vm, ppn, v);
			atomic_fetch_add_explicit(&vm->c.faults_spurious, 1,
						  memory_order_relaxed);
			/* still protected: the writer is woken to fault
			 * again, and this is tried again then */
			if (err)
				wake(vm, ppn);
			return;
		}
		if (s == MV_PAGE_SHARED && !(flags & UFFD_PAGEFAULT_FLAG_WP)) {
			/* a shared page left empty (share_cow.c could neither map
			 * its frame nor put it back) is filled now */
			err = mv__share_fill(vm, ppn, v);
			if (!err) {
				wake(vm, ppn);
				return;
			}
			if (err == -EAGAIN) {
				pmap_unlock(vm, ppn, v);
				mv__frames_wait(h, vm);
				continue;
			}
		}
		if (s == MV_PAGE_PRIVATE || s == MV_PAGE_SHARED) {
			pmap_unlock(vm, ppn, v);
			atomic_fetch_add_explicit(&vm->c.faults_spurious, 1,
						  memory_order_relaxed);
			spurious_guard(ctx, ppn, v);
			wake(vm, ppn);
			return;
		}
		if (s != MV_PAGE_UNTOUCHED && s != MV_PAGE_SWAPPED &&
		    s != MV_PAGE_COMPRESSED) {
			pmap_unlock(vm, ppn, v);
			atomic_fetch_add_explicit(&vm->c.fault_errors, 1,
						  memory_order_relaxed);
			mv__host_set_msg(
				h,
				"VM %s: fault on page %llu in state %s, which this engine cannot serve",
				vm->name, (unsigned long long)ppn,
				mv_page_state_name(s));
			return;
		}
		/* a read-back's window adapts (readahead.c), once a fault */
		if (s != MV_PAGE_UNTOUCHED && !ra_win)
			ra_win = mv__ra_window(vm, ppn,
					       h->settings.swapin_cluster_pages,
					       &ra_stream);
		window = s == MV_PAGE_UNTOUCHED ?
				 h->settings.fault_around_pages :
				 ra_win;
		if (io_tries)
			window = 1; /* after a read error: this page alone */
		got = mv__frames_reserve(h, window);
		if (!got) {
			pmap_unlock(vm, ppn, v);
			mv__frames_wait(h, vm);
			continue;
		}
		grow_run(vm, ppn, v, window, got, &r);
		if (r.n < got)
			mv__frames_unreserve(h, got - r.n);

		if (s == MV_PAGE_SWAPPED)
			err = mv__swap_read(&vm->swap, pmap_payload(r.old[0]),
					    (unsigned)r.n, ctx->buf);
		else if (s == MV_PAGE_COMPRESSED)
			err = unzip_run(vm, &r, ctx->buf);
		else if (vm->image_fd >= 0)
			err = read_image(vm, &r, ctx->buf);
		else
			err = (memset(ctx->buf, 0, r.n << MV_PAGE_SHIFT), 0);
		io = err && (s == MV_PAGE_SWAPPED ||
			     (s == MV_PAGE_UNTOUCHED && vm->image_fd >= 0));
		if (io) {
			/* the content is where it was: retried a bounded
			 * time, then given up on, never guessed; from the
			 * second try on, the run is this page alone */
			atomic_fetch_add_explicit(&vm->c.fault_errors, 1,
						  memory_order_relaxed);
			mv__frames_unreserve(h, r.n);
			if (++io_tries >= IO_TRIES && r.n == 1) {
				give_up_unreadable(vm, ppn, r.old[0], err);
				return;
			}
			unlock_run(vm, &r);
			mv__host_set_msg(
				h,
				"VM %s: cannot fill page %llu from %s: %s (retrying, %u of %d tries)",
				vm->name, (unsigned long long)ppn,
				s == MV_PAGE_SWAPPED ? "swap" : "image",
				strerror(-err), io_tries, IO_TRIES);
			io_backoff_n(io_tries);
			continue;
		}
		if (!err && s == MV_PAGE_UNTOUCHED && vm->image_fd >= 0) {
			err = fill_image(vm, &r, ctx->buf,
					 flags & UFFD_PAGEFAULT_FLAG_WRITE ?
						 ppn - r.lo :
						 UINT64_MAX);
			served = pmap_state(r.old[ppn - r.lo]) !=
				 MV_PAGE_UNTOUCHED;
			publish_image(vm, &r);
			if (err) {
				atomic_fetch_add_explicit(&vm->c.fault_errors,
							  1,
							  memory_order_relaxed);
				mv__host_set_msg(
					h,
					"VM %s: cannot fill page %llu from its image: %s (retrying)",
					vm->name, (unsigned long long)ppn,
					strerror(-err));
			}
			if (served)
				return;
			io_backoff();
			continue;
		}
		copied = 0;
		if (!err)
			err = copy_in(vm, &r, ctx->buf, &copied);
		if (err) {
			keep_copied(vm, &r, copied);
			atomic_fetch_add_explicit(&vm->c.fault_errors, 1,
						  memory_order_relaxed);
			mv__host_set_msg(
				h,
				"VM %s: cannot fill page %llu from %s: %s (retrying)",
				vm->name, (unsigned long long)ppn,
				s == MV_PAGE_SWAPPED ? "swap" :
				s == MV_PAGE_COMPRESSED ?
						       "the compression cache" :
				vm->image_fd >= 0 ? "image" :
						    "zeros",
				strerror(-err));
		}
		if (s != MV_PAGE_UNTOUCHED)
			mv__ra_record(vm, ra_stream, r.lo, r.n, ra_win);
		publish(vm, &r, s);
		if (err && !in_run(&r, ppn)) {
			io_backoff();
			continue;
		}
		return;
	}
}

/*
 * A fault on the stop page: this thread stops once it has served the rest
 * of its batch.  All but the last thread stopping wake the toucher without
 * filling the page, so that its touch faults again and the next thread
 * reads it; the last fills it with zeros, and the touch completes.  The
 * fill is retried until the kernel takes it: the toucher waits for it.
 */
static void stop_event(struct mv_vm *vm)
{
	struct uffdio_range r = { .start = (uintptr_t)vm->fault_stop_page,
				  .len = MV_PAGE_SIZE };
	struct uffdio_zeropage z = { .range = r };
	struct timespec ts = { 0, 1000000L };

	if (atomic_fetch_sub(&vm->fault_live, 1) != 1) {
		ioctl(vm->uffd, UFFDIO_WAKE, &r);
		return;
	}
	while (ioctl(vm->uffd, UFFDIO_ZEROPAGE, &z) < 0 && errno != EEXIST) {
		z.zeropage = 0;
		nanosleep(&ts, NULL);
	}
}

static void *fault_main(void *arg)
{
	struct fault_ctx *ctx = arg;
	struct mv_vm *vm = ctx->vm;
	struct uffd_msg msgs[FAULT_MSGS];
	uint64_t addr, base = (uintptr_t)vm->mem;
	uint64_t stop_addr = (uintptr_t)vm->fault_stop_page;
	struct timespec ts = { 0, IO_RETRY_MS * 1000000L };
	bool stop = false;
	ssize_t n;

	pthread_setname_np(pthread_self(), "mv-fault"); /* for perf, top */
	while (!stop) {
		/* blocking: the kernel hands each event to one reader, and
		 * the others sleep on in the kernel (a poll() first made every
		 * thread return, and all but one read nothing) */
		n = read(vm->uffd, msgs, sizeof(msgs));
		if (n < 0) {
			if (errno != EINTR && errno != EAGAIN)
				nanosleep(&ts, NULL); /* cannot happen */
			continue;
		}
		ctx->read_inflates = atomic_load(&vm->balloon.inflates);
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++) {
			if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
				continue;
			addr = msgs[i].arg.pagefault.address;
			if (addr - stop_addr < MV_PAGE_SIZE) {
				stop = true;
				continue;
			}
			atomic_fetch_add_explicit(&vm->c.faults, 1,
						  memory_order_relaxed);
			if (addr < base ||
			    addr >= base + (vm->npages << MV_PAGE_SHIFT)) {
				/* only staging lies outside, and nobody
				 * touches staging while it is empty */
				atomic_fetch_add_explicit(&vm->c.fault_errors,
							  1,
							  memory_order_relaxed);
				continue;
			}
			serve(ctx, (addr - base) >> MV_PAGE_SHIFT,
			      msgs[i].arg.pagefault.flags);
			/* after the wake-up: the vCPU runs on meanwhile */
			mv__affinity_fault(
				vm, &vm->aff, &ctx->aff,
				(pid_t)msgs[i].arg.pagefault.feat.ptid);
		}
	}
	stop_event(vm);
	free(ctx->buf);
	free(ctx);
	return NULL;
}

/* The stop page, and the uffd made blocking for the fault threads. */
static int stop_page_init(struct mv_vm *vm)
{
	int fl, err;

	fl = fcntl(vm->uffd, F_GETFL);
	if (fl < 0 || fcntl(vm->uffd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -errno;
	err = mv__map_anon(MV_PAGE_SIZE, &vm->fault_stop_page);
	if (err)
		return err;
	err = mv__uffd_register(vm->uffd, vm->fault_stop_page, MV_PAGE_SIZE,
				false);
	if (err) {
		munmap(vm->fault_stop_page, MV_PAGE_SIZE);
		vm->fault_stop_page = NULL;
	}
	return err;
}

int mv__fault_start(struct mv_vm *vm)
{
	unsigned want = vm->host->settings.fault_threads;
	struct fault_ctx *ctx;
	int err;

	if (want > MV_MAX_FAULT_THREADS)
		want = MV_MAX_FAULT_THREADS;
	err = stop_page_init(vm);
	if (err)
		return err;
	for (vm->nfault_threads = 0; vm->nfault_threads < want;
	     vm->nfault_threads++) {
		ctx = mv__calloc(1, sizeof(*ctx));
		if (!ctx) {
			err = -ENOMEM;
			break;
		}
		ctx->vm = vm;
		ctx->buf = mv__aligned_alloc(MV_PAGE_SIZE,
					     MV_MAX_RUN_PAGES * MV_PAGE_SIZE);
		if (!ctx->buf) {
			free(ctx);
			err = -ENOMEM;
			break;
		}
		atomic_fetch_add(&vm->fault_live, 1);
		err = -pthread_create(&vm->fault_threads[vm->nfault_threads],
				      NULL, fault_main, ctx);
		if (err) {
			atomic_fetch_sub(&vm->fault_live, 1);
			free(ctx->buf);
			free(ctx);
			break;
		}
	}
	if (err)
		mv__fault_stop(vm);
	return err;
}

/*
 * Stops the fault threads: one touch of the stop page, which each thread
 * in turn reads as its stop and the last one fills (stop_event).  Called
 * from no fault thread (internal.h: a fault thread never faults on its
 * own uffd); bounded as long as the threads serve, which they always do.
 */
void mv__fault_stop(struct mv_vm *vm)
{
	if (!vm->fault_stop_page)
		return;
	if (atomic_load(&vm->fault_live))
		(void)*(volatile uint8_t *)vm->fault_stop_page;
	for (unsigned i = 0; i < vm->nfault_threads; i++)
		pthread_join(vm->fault_threads[i], NULL);
	vm->nfault_threads = 0;
	munmap(vm->fault_stop_page, MV_PAGE_SIZE);
	vm->fault_stop_page = NULL;
}

// SPDX-License-Identifier: MIT
/*
 * reclaim.c - swap-out: choose victim pages, save their content, free their
 * frames.  The other direction from fault.c, kept apart from it.
 *
 * Design: victims are chosen at random, ESX's policy: it needs no access
 * tracking and cannot be fooled by a guest that touches pages in a pattern
 * the hypervisor would mispredict.  A batch of up to MV_RECLAIM_BATCH
 * victims is locked (trylock only: a page someone is busy with is not a good
 * victim anyway), each is taken out of the guest with UFFDIO_MOVE into the
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
 * Staging is emptied with one MADV_DONTNEED per batch; if the kernel
 * refuses, the next batch retries it first and takes no victim until it
 * works (staged copies are then stale: everything in them is saved).
 *
 * The kernel's count of a failed UFFDIO_MOVE is checked against
 * /proc/self/pagemap (settle_run): trusting a count lower than what moved
 * would leave a page PRIVATE whose only copy is in staging, about to be
 * dropped, which is the shape of the lost pages of issue 2.
 *
 * Lock ordering: vm->reclaim_lock -> pmap entry locks (trylock) ->
 * host->frames_lock.
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
/* MOVE-then-COPY attempts of a restore before its page is parked */
#define RESTORE_TRIES 3

uint64_t mv__rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

static int move_page(struct mv_vm *vm, void *dst, void *src)
{
	struct uffdio_move m = { .dst = (uintptr_t)dst,
				 .src = (uintptr_t)src,
				 .len = MV_PAGE_SIZE };

	if (mv__uffd_move(vm->uffd, &m) == 0)
		return 0;
	return m.move < 0 ? (int)m.move : -errno;
}

/*
 * Bit i set: page i of the n pages from addr is there, present or swapped
 * by the kernel (pagemap bits 63 and 62); UINT64_MAX if pagemap cannot be
 * read, which callers must not take for "not there".
 */
static uint64_t present_mask(struct mv_vm *vm, const void *addr, unsigned n)
{
	uint64_t e[MV_RECLAIM_BATCH], mask = 0;
	size_t len = (size_t)n * sizeof(e[0]);
	int fd = vm->host->share.pagemap_fd;

	if (fd < 0 || n > MV_RECLAIM_BATCH ||
	    mv__pagemap_read(fd, e, len,
			     (off_t)((uintptr_t)addr >> MV_PAGE_SHIFT) * 8) !=
		    (ssize_t)len)
		return UINT64_MAX;
	for (unsigned i = 0; i < n; i++)
		mask |= ((e[i] >> 63 | e[i] >> 62) & 1) << i;
	return mask;
}

/*
 * Without pagemap, where pages [moved, len) are is found by moving each
 * back from dst to src, which only the page itself can make succeed: 0,
 * it was in dst and is back; EEXIST, src holds it; ENOENT, dst is empty,
 * so src holds it.  Another error says nothing, and is tried again (a
 * move back that the kernel miscounts answers ENOENT or EEXIST the next
 * time).  If the kernel refuses every move back with another error,
 * mincore() decides: a page resident in dst is there (and readable, not a
 * userfault hole): it extends the count if it follows it, or else restore
 * puts it back or parks it (only a reclaim run of several pages gets
 * there, under reclaim_lock).  One that is not resident is taken as not
 * moved, which only a move the kernel both miscounted and swapped out in
 * between could contradict; if mincore fails too, the host reports it as
 * an error.  Returns the true count, a prefix as always.
 */
static unsigned probe_run(struct mv_vm *vm, uint8_t *dst, uint8_t *src,
			  unsigned len, unsigned moved)
{
	unsigned count = moved;
	unsigned char in_core;
	uint64_t ppn;
	int err = 0, merr;

	for (unsigned j = moved; j < len; j++) {
		size_t off = (size_t)j << MV_PAGE_SHIFT;

		for (unsigned t = 0; t < RESTORE_TRIES; t++) {
			err = move_page(vm, src + off, dst + off);
			if (!err || err == -EEXIST || err == -ENOENT)
				break;
		}
		if (!err || err == -EEXIST || err == -ENOENT)
			continue; /* in src: the count ends before it */
		ppn = (uint64_t)(src - vm->mem) / MV_PAGE_SIZE + j;
		merr = mv__mincore(dst + off, MV_PAGE_SIZE, &in_core);
		if (!merr && (in_core & 1)) {
			if (j == count)
				count++;
			else
				mv__reclaim_restore(vm, ppn, dst + off);
			continue;
		}
		if (merr)
			mv__host_event(
				vm->host, MV_LOG_ERROR,
				"VM %s: cannot tell whether page %llu left the guest (pagemap unreadable, UFFDIO_MOVE failing: %s, mincore failing: %s); it is taken as not moved",
				vm->name, (unsigned long long)ppn,
				strerror(-err), strerror(-merr));
	}
	if (count != moved) {
		atomic_fetch_add(&vm->host->move_miscounts, 1);
		mv__host_set_msg(
			vm->host,
			"VM %s: UFFDIO_MOVE reported %u of %u pages moved, %u were (corrected without pagemap)",
			vm->name, moved, len, count);
	}
	return count;
}

/*
 * After a move that stopped with an error, what the kernel reported is
 * checked against where the pages are: callers trust the count to the
 * page, and a page moved but counted as not moved would be left marked
 * PRIVATE while its only copy sits in staging, to be dropped with it.
 * Pages found moved past the first that was not are moved back, so the
 * count stays a prefix.  Returns the true count.  When pagemap cannot be
 * read, the pages past the count are probed back instead (probe_run).
 */
static unsigned settle_run(struct mv_vm *vm, uint8_t *dst, uint8_t *src,
			   unsigned len, unsigned moved)
{
	uint64_t in_dst = present_mask(vm, dst, len);
	uint64_t in_src = present_mask(vm, src, len);
	unsigned k = 0;

	if (in_dst == UINT64_MAX || in_src == UINT64_MAX)
		return probe_run(vm, dst, src, len, moved);
	while (k < len && (in_dst >> k & 1) && !(in_src >> k & 1))
		k++;
	for (unsigned j = k + 1; j < len; j++)
		if ((in_dst >> j & 1) && !(in_src >> j & 1))
			mv__reclaim_restore(
				vm,
				(uint64_t)(src - vm->mem) / MV_PAGE_SIZE + j,
				dst + ((size_t)j << MV_PAGE_SHIFT));
	if (k != moved) {
		atomic_fetch_add(&vm->host->move_miscounts, 1);
		mv__host_set_msg(
			vm->host,
			"VM %s: UFFDIO_MOVE reported %u of %u pages moved, %u were (corrected)",
			vm->name, moved, len, k);
	}
	return k;
}

/*
 * Moves a run of len pages out of the guest; returns how many, from the
 * first, were moved (the kernel may stop early), and *err why not all.
 */
unsigned mv__move_run(struct mv_vm *vm, void *dst, void *src, unsigned len,
		      int *err)
{
	struct uffdio_move m = { .dst = (uintptr_t)dst,
				 .src = (uintptr_t)src,
				 .len = (uint64_t)len << MV_PAGE_SHIFT };
	unsigned moved;

	*err = 0;
	if (mv__uffd_move(vm->uffd, &m) == 0)
		return len;
	moved = m.move > 0 ? (unsigned)(m.move >> MV_PAGE_SHIFT) : 0;
	/* one move stays in one mapping, and shared pages split mappings */
	while (moved < len &&
	       !(*err = move_page(
			 vm, (uint8_t *)dst + ((size_t)moved << MV_PAGE_SHIFT),
			 (uint8_t *)src + ((size_t)moved << MV_PAGE_SHIFT))))
		moved++;
	if (moved < len && (uint8_t *)src >= vm->mem &&
	    (uint8_t *)src < vm->mem + (vm->npages << MV_PAGE_SHIFT))
		moved = settle_run(vm, dst, src, len, moved);
	return moved;
}

/* The one-page COPY of a restore (its MOVE is move_page's). */
static int restore_copy(struct mv_vm *vm, void *dst, void *src)
{
	struct uffdio_copy c = { .dst = (uintptr_t)dst,
				 .src = (uintptr_t)src,
				 .len = MV_PAGE_SIZE };

	return mv__uffd_copy(vm->uffd, &c) == 0 ? 0 : -errno;
}

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
	uint64_t parked;
	int err = 0;

	pmap_assert_locked(e);
	for (unsigned i = 0; i < RESTORE_TRIES; i++) {
		/* EEXIST: the page is in the guest again (we hold its lock, so
		 * only an earlier move that said it failed put it there) */
		err = move_page(vm, dst, stage);
		if (!err || err == -EEXIST)
			return;
		if (err == -ENOENT) {
			/* stage and guest both empty: cannot happen */
			MV_ASSERT(
				!"the page is neither staged nor in the guest");
			mv__host_event(
				vm->host, MV_LOG_ERROR,
				"VM %s: page %llu is neither in staging nor in the guest after a failed swap-out (engine bug)",
				vm->name, (unsigned long long)ppn);
			return;
		}
		err = restore_copy(vm, dst, stage);
		if (!err || err == -EEXIST)
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
	     move_page(vm, dst, stage) && restore_copy(vm, dst, stage);)
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

/* Locks up to `want` PRIVATE pages at random; returns how many. */
static unsigned pick_random(struct mv_vm *vm, unsigned want, struct victim *out)
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
			    pmap_pinned(old)) {
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

/* Locks `ppn` if it is PRIVATE. */
static unsigned pick_one(struct mv_vm *vm, uint64_t ppn, struct victim *out)
{
	uint64_t old = pmap_lock(&vm->pmap[ppn]);

	if (pmap_state(old) != MV_PAGE_PRIVATE || pmap_pinned(old)) {
		pmap_unlock(vm, ppn, old);
		return 0;
	}
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
	uint64_t entry;
	uint8_t *stage;
	int err;

	for (unsigned i = 0, len; i < n; i += len) {
		/* victims next to each other in the guest move in one call */
		for (len = 1; i + len < n && v[i + len].ppn == v[i].ppn + len;)
			len++;
		moved = mv__move_run(
			vm, vm->staging + ((uint64_t)i << MV_PAGE_SHIFT),
			vm->mem + (v[i].ppn << MV_PAGE_SHIFT), len, &err);
		if (err && !*errp)
			*errp = err;
		for (unsigned j = i; j < i + len; j++) {
			stage = vm->staging + ((uint64_t)j << MV_PAGE_SHIFT);
			if (j - i >= moved) {
				/* as it was, or parked by settle_run */
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
	atomic_fetch_sub_explicit(&vm->consumed_pages, ok,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->swcur_pages, swapped,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->c.swapout_pages, swapped,
				  memory_order_relaxed);
	mv__frames_release(h, (uint64_t)credit);
	return ok;
}

int mv__reclaim_vm(struct mv_vm *vm, uint64_t want, uint64_t *done)
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
		n = pick_random(vm, n, v);
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

int mv_vm_swap_out(mv_vm *vm, uint64_t npages, uint64_t *done)
{
	uint64_t dummy;
	int err;

	if (!vm)
		return -EINVAL;
	err = mv__reclaim_vm(vm, npages, done ? done : &dummy);
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

// SPDX-License-Identifier: MIT
/*
 * move.c - pages moved between a guest and the engine's own areas
 * (reclaim's staging, the sample slots) with UFFDIO_MOVE, and put back.
 * Platform layer: the kernel calls and the checks they need; which page
 * moves, and what becomes of a page that cannot be put back, is the
 * callers' (reclaim.c parks it, sample.c keeps it in its slot).
 *
 * Design: a run of neighbours moves with one UFFDIO_MOVE (mv__move_run);
 * the kernel may stop early, and its count of a failed move is checked
 * against /proc/self/pagemap (settle_run): trusting a count lower than
 * what moved would leave a page PRIVATE whose only copy is in staging,
 * about to be dropped.  Without pagemap each page past the count is probed
 * by moving it back (probe_run).  Pages found moved past the first that
 * was not are the callers' *strays*: they hold those pages' locks, and put
 * them back.  A page goes back with mv__put_back_page, the one bounded
 * MOVE-then-COPY loop reclaim's restore and sampling's put-back share.
 *
 * Invariants: the count mv__move_run returns is a prefix: pages [0, count)
 * are in dst, the rest in src or named in *strays; every entry of a page
 * in flight is locked by the caller; nothing here waits.
 *
 * Locks (order: internal.h): none of its own; callers hold the entries of
 * the pages in flight; host->msg_lock for messages.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "inject.h"
#include "internal.h"
#include "uffd.h"

/* Moves back tried per page by probe_run before mincore decides */
#define PROBE_TRIES 3

/*
 * One UFFDIO_MOVE, counted while it is in the kernel: the budget lets
 * faults use the minFree reserve when a move has been in there for long
 * with no frame released meanwhile (budget.c, stalled_move), as a move
 * waits behind the kernel's reverse-map walks (a DAMON monitor of
 * physical addresses holds them back for seconds on some kernels).
 */
static int move_call(struct mv_vm *vm, struct uffdio_move *m)
{
	struct mv_host *h = vm->host;
	uint64_t now = mv__now_ms();
	int ret;

	if (atomic_fetch_add(&h->moves_inflight, 1) == 0)
		atomic_store_explicit(&h->moves_busy_since_ms, now,
				      memory_order_relaxed);
	ret = mv__uffd_move(vm->uffd, m);
	atomic_fetch_sub(&h->moves_inflight, 1);
	return ret;
}

int mv__move_page(struct mv_vm *vm, void *dst, void *src)
{
	struct uffdio_move m = { .dst = (uintptr_t)dst,
				 .src = (uintptr_t)src,
				 .len = MV_PAGE_SIZE };

	if (move_call(vm, &m) == 0)
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
			  unsigned len, unsigned moved, uint64_t *strays)
{
	unsigned count = moved;
	unsigned char in_core;
	uint64_t ppn;
	int err = 0, merr;

	for (unsigned j = moved; j < len; j++) {
		size_t off = (size_t)j << MV_PAGE_SHIFT;

		for (unsigned t = 0; t < PROBE_TRIES; t++) {
			err = mv__move_page(vm, src + off, dst + off);
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
				*strays |= 1ull << j;
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
			   unsigned len, unsigned moved, uint64_t *strays)
{
	uint64_t in_dst = present_mask(vm, dst, len);
	uint64_t in_src = present_mask(vm, src, len);
	unsigned k = 0;

	if (in_dst == UINT64_MAX || in_src == UINT64_MAX)
		return probe_run(vm, dst, src, len, moved, strays);
	while (k < len && (in_dst >> k & 1) && !(in_src >> k & 1))
		k++;
	for (unsigned j = k + 1; j < len; j++)
		if ((in_dst >> j & 1) && !(in_src >> j & 1))
			*strays |= 1ull << j;
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
		      int *err, uint64_t *strays)
{
	struct uffdio_move m = { .dst = (uintptr_t)dst,
				 .src = (uintptr_t)src,
				 .len = (uint64_t)len << MV_PAGE_SHIFT };
	unsigned moved;

	*err = 0;
	*strays = 0;
	if (move_call(vm, &m) == 0)
		return len;
	moved = m.move > 0 ? (unsigned)(m.move >> MV_PAGE_SHIFT) : 0;
	/* one move stays in one mapping, and shared pages split mappings */
	while (moved < len &&
	       !(*err = mv__move_page(
			 vm, (uint8_t *)dst + ((size_t)moved << MV_PAGE_SHIFT),
			 (uint8_t *)src + ((size_t)moved << MV_PAGE_SHIFT))))
		moved++;
	if (moved < len && (uint8_t *)src >= vm->mem &&
	    (uint8_t *)src < vm->mem + (vm->npages << MV_PAGE_SHIFT))
		moved = settle_run(vm, dst, src, len, moved, strays);
	return moved;
}

/* UFFDIO_COPY of one page: 0 or -errno. */
int mv__copy_page(struct mv_vm *vm, void *dst, const void *src)
{
	struct uffdio_copy c = { .dst = (uintptr_t)dst,
				 .src = (uintptr_t)src,
				 .len = MV_PAGE_SIZE };

	return mv__uffd_copy(vm->uffd, &c) == 0 ? 0 : -errno;
}

int mv__put_back_page(struct mv_vm *vm, void *dst, void *src, bool may_move,
		      unsigned tries, enum mv__put_back *how)
{
	int err = 0;

	for (unsigned i = 0; i < tries; i++) {
		if (may_move) {
			err = mv__move_page(vm, dst, src);
			if (!err || err == -EEXIST) {
				/* EEXIST: the page is in the guest again (the
				 * caller holds its lock, so only an earlier
				 * move that said it failed put it there) */
				*how = err ? MV__PUT_THERE : MV__PUT_MOVED;
				return 0;
			}
			if (err == -ENOENT)
				return err; /* neither side holds the page */
		}
		err = mv__copy_page(vm, dst, src);
		if (!err || err == -EEXIST) {
			*how = err ? MV__PUT_THERE : MV__PUT_COPIED;
			return 0;
		}
	}
	return err;
}

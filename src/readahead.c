// SPDX-License-Identifier: MIT
/*
 * readahead.c - adaptive swap-in: how many neighbours a fault on a
 * swapped or compressed page reads back with it, per VM, by whether the
 * neighbours earlier reads brought were used.
 *
 * Design: a read-back fault reads the run of neighbours in the same state
 * inside an aligned window (fault.c); a window of Mem.SwapInClusterPages
 * pages for every fault costs a random-access guest a disk read (or
 * decompression) and a frame for each neighbour it never touches, and the
 * frames push other pages out, which then fault back.  So the window
 * adapts, as the kernel's swap readahead does with its hit count.
 *
 * "Used" has to be inferred: a neighbour read back is mapped into the
 * guest, and a guest never faults on a mapped page, so no event says it
 * was touched.  Two ways were open: keep prefetched neighbours unmapped in
 * a cache, so that a touch faults and counts as a hit; or watch where the
 * faults land.  A cache costs a userfaultfd round trip for every
 * neighbour used, which is the very cost clustering exists to save (a
 * round trip is 5-7 times the kernel's own fault), so this watches faults:
 * a guest walking through memory faults next at, or shortly after, the
 * end of the run the last read brought in, having used it on the way.
 * Each VM keeps its last MV_RA_STREAMS runs (several guest threads may
 * walk at once); a fault within Mem.SwapInClusterPages pages after the end
 * of one of them is a hit, and reads twice that run's window (up to the
 * maximum); any other fault is a miss, reads the VM's window, and halves
 * it for the next one, so random access comes down to one page per fault
 * within a few faults (16, 8, 4, 2, 1), while a stream ramps back up by
 * doubling.  A hit doubles the VM's window too.  A fresh VM starts at the
 * maximum (what every read took before).
 *
 * Invariants: a window is from 1 to the maximum given; the state is a
 * heuristic only, so it is kept in relaxed atomics without a lock: fault
 * threads of one VM racing on it may lose an update, never a page.
 *
 * Locks: none (called under the faulting page's pmap lock).
 */
#include "internal.h"

static unsigned clamp(unsigned w, unsigned max)
{
	return w < 1 ? 1 : w > max ? max : w;
}

unsigned mv__ra_window(struct mv_vm *vm, uint64_t ppn, unsigned max,
		       unsigned *stream)
{
	struct mv__ra *ra = &vm->ra;
	unsigned w, vmw;
	uint64_t end;

	if (!max)
		max = 1;
	for (unsigned i = 0; i < MV_RA_STREAMS; i++) {
		end = atomic_load_explicit(&ra->end[i], memory_order_relaxed);
		if (!end || ppn < end || ppn >= end + max)
			continue;
		/* the guest walked through run i and on: it was used */
		w = atomic_load_explicit(&ra->win[i], memory_order_relaxed);
		w = clamp(2 * w, max);
		vmw = atomic_load_explicit(&ra->window, memory_order_relaxed);
		atomic_store_explicit(&ra->window,
				      clamp(vmw ? 2 * vmw : max, max),
				      memory_order_relaxed);
		atomic_fetch_add_explicit(&ra->hits, 1, memory_order_relaxed);
		*stream = i;
		return w;
	}
	vmw = atomic_load_explicit(&ra->window, memory_order_relaxed);
	w = vmw ? clamp(vmw, max) : max;
	atomic_store_explicit(&ra->window, clamp(w / 2, max),
			      memory_order_relaxed);
	atomic_fetch_add_explicit(&ra->misses, 1, memory_order_relaxed);
	*stream =
		atomic_fetch_add_explicit(&ra->next, 1, memory_order_relaxed) %
		MV_RA_STREAMS;
	return w;
}

void mv__ra_record(struct mv_vm *vm, unsigned stream, uint64_t lo, uint64_t n,
		   unsigned window)
{
	struct mv__ra *ra = &vm->ra;

	if (!n || stream >= MV_RA_STREAMS)
		return;
	atomic_store_explicit(&ra->win[stream], window, memory_order_relaxed);
	atomic_store_explicit(&ra->end[stream], lo + n, memory_order_relaxed);
	atomic_fetch_add_explicit(&ra->runs, 1, memory_order_relaxed);
}

unsigned mv__ra_current(struct mv_vm *vm, unsigned max)
{
	unsigned w = atomic_load_explicit(&vm->ra.window, memory_order_relaxed);

	return w ? clamp(w, max ? max : 1) : max;
}

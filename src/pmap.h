/* SPDX-License-Identifier: MIT */
/*
 * pmap.h - one 64-bit word per guest page: its state, its lock, and a
 * payload, so that looking a page up and locking it is one cache line and
 * one atomic.
 *
 * Layout of an entry:
 *   bits 0-3   enum mv_page_state
 *   bit  4     PMAP_LOCK: held by whoever is changing the page (a fault
 *              thread filling it, a reclaimer saving it)
 *   bit  5     PMAP_TOUCHED: the guest has touched the page at least once
 *   bits 8-63  payload, owned by the state: a compression handle
 *              (COMPRESSED), a swap slot (SWAPPED), a pool frame (SHARED),
 *              a sample slot and the PRIVATE payload it had (SAMPLED,
 *              sample.c), the number of the inflate that took a
 *              BALLOONED page (balloon.c), or for PRIVATE the
 *              path that last filled the page (enum pmap_origin), kept
 *              for the one diagnosis that needs it: a PRIVATE page found
 *              unmapped
 *
 * Invariants: only the holder of PMAP_LOCK changes an entry; the state says
 * where the page's content is, and the content is there whenever the lock
 * is free.  A page is present in the guest mapping only if it is PRIVATE,
 * SHARED, or ZERO with payload PMAP_ZERO_MAPPED (the kernel's zero page,
 * write-protected) or PMAP_ZERO_OPEN (the zero page, unprotected: a
 * frame is counted for it, and the guest may have written it with no
 * fault: zero_open.c), and a PRIVATE one always is.
 *
 * Functions that take an entry locked by their caller say so in their name
 * or comment and check it with pmap_assert_locked() (invariant.h: debug and
 * sanitizer builds); pmap_unlock() checks that the entry was locked.
 *
 * The lock spins briefly and then yields: it is held for at most one disk
 * read or write, and contention on one page is rare (two guest threads
 * faulting the same page, or a fault racing a swap-out).
 */
#ifndef MV_PMAP_H
#define MV_PMAP_H

#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "invariant.h"
#include "memvisor.h"

typedef _Atomic uint64_t mv_pte;

#define PMAP_STATE_MASK 0xfull
#define PMAP_LOCK (1ull << 4)
#define PMAP_TOUCHED (1ull << 5)
#define PMAP_PAYLOAD_SHIFT 8
#define PMAP_PAYLOAD_BITS (64 - PMAP_PAYLOAD_SHIFT)

_Static_assert(sizeof(mv_pte) == sizeof(uint64_t), "one word per page");
_Static_assert(MV_PAGE_NSTATES - 1 <= PMAP_STATE_MASK,
	       "every page state fits the state bits");
_Static_assert(((PMAP_STATE_MASK | PMAP_LOCK | PMAP_TOUCHED) >>
		PMAP_PAYLOAD_SHIFT) == 0,
	       "state, lock and touched bits lie below the payload");
_Static_assert((PMAP_STATE_MASK & (PMAP_LOCK | PMAP_TOUCHED)) == 0 &&
		       (PMAP_LOCK & PMAP_TOUCHED) == 0,
	       "state, lock and touched bits do not overlap");

/* How a PRIVATE page got its frame; the payload of a PRIVATE entry. */
enum pmap_origin {
	PMAP_FROM_ZEROS = 1, /* first touch, zero fill */
	PMAP_FROM_IMAGE, /* first touch of a VM restored from an image */
	PMAP_FROM_SWAP, /* swap-in */
	PMAP_FROM_ZIP, /* decompressed from the compression cache */
	PMAP_FROM_GIVEN_UP, /* zero fill of a ballooned or ZERO page */
	PMAP_FROM_COW, /* copy of a shared page, on a write */
	PMAP_FROM_COW_IN_PLACE, /* the same, made without a new mapping
				 * (share_cow.c, at vm.max_map_count): pinned */
	PMAP_FROM_ADOPTED, /* written by the VMM before the attach (attach.c) */
};

static inline enum mv_page_state pmap_state(uint64_t v)
{
	return (enum mv_page_state)(v & PMAP_STATE_MASK);
}

static inline uint64_t pmap_payload(uint64_t v)
{
	return v >> PMAP_PAYLOAD_SHIFT;
}

/*
 * Payload of a ZERO entry whose guest address maps the kernel's shared
 * zero page, read-only and write-protected (a read of a ZERO page, fault.c):
 * it reads as zeros without a frame, and its first write faults.  A ZERO
 * entry with payload 0 is not present.
 */
#define PMAP_ZERO_MAPPED 1
/*
 * Payload of a ZERO entry whose guest address maps the kernel's zero page
 * with no write protection (zero_open.c): its first write is the kernel's
 * own copy, with no fault here, so it may hold the guest's bytes by now.
 * A frame is counted for it (vm->consumed_pages) from the moment it is
 * opened, so the budget never lags what the guest may hold; only
 * zero_open.c turns it back into PMAP_ZERO_MAPPED, after protecting it
 * and finding it still maps the zero page.
 */
#define PMAP_ZERO_OPEN 2

/* A ZERO page present in the guest mapping: the zero page, or (open) what
 * the guest's own write put there. */
static inline bool pmap_zero_present(uint64_t v)
{
	return (v & PMAP_STATE_MASK) == MV_PAGE_ZERO &&
	       (v >> PMAP_PAYLOAD_SHIFT == PMAP_ZERO_MAPPED ||
		v >> PMAP_PAYLOAD_SHIFT == PMAP_ZERO_OPEN);
}

static inline bool pmap_zero_open(uint64_t v)
{
	return (v & PMAP_STATE_MASK) == MV_PAGE_ZERO &&
	       v >> PMAP_PAYLOAD_SHIFT == PMAP_ZERO_OPEN;
}

/*
 * A PRIVATE page that must stay where it is: a copy share_cow.c made inside a
 * pool mapping (emptied, it would show that frame's bytes), or one whose
 * mapping could not be registered (emptied, it would never fault back).
 * Reclaim, sampling, the balloon and the share scanner pass it by.
 */
static inline bool pmap_pinned(uint64_t v)
{
	return (v & PMAP_STATE_MASK) == MV_PAGE_PRIVATE &&
	       pmap_payload(v) == PMAP_FROM_COW_IN_PLACE;
}

static inline uint64_t pmap_make(enum mv_page_state s, uint64_t flags,
				 uint64_t payload)
{
	MV_ASSERT((unsigned)s < MV_PAGE_NSTATES);
	MV_ASSERT(payload >> PMAP_PAYLOAD_BITS == 0);
	return (uint64_t)s | (flags & PMAP_TOUCHED) |
	       (payload << PMAP_PAYLOAD_SHIFT);
}

static inline void pmap_backoff(unsigned *spins)
{
	struct timespec ts = { 0, 20000 };

	if (++*spins < 64)
		__builtin_ia32_pause();
	else if (*spins < 2048)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

/* Returns the entry's value at the moment it was locked (lock bit clear). */
static inline uint64_t pmap_lock(mv_pte *e)
{
	unsigned spins = 0;
	uint64_t v;

	for (;;) {
		v = atomic_load_explicit(e, memory_order_relaxed);
		if (!(v & PMAP_LOCK) &&
		    atomic_compare_exchange_weak_explicit(e, &v, v | PMAP_LOCK,
							  memory_order_acquire,
							  memory_order_relaxed))
			return v;
		pmap_backoff(&spins);
	}
}

static inline bool pmap_trylock(mv_pte *e, uint64_t *old)
{
	uint64_t v = atomic_load_explicit(e, memory_order_relaxed);

	if (v & PMAP_LOCK)
		return false;
	if (!atomic_compare_exchange_strong_explicit(e, &v, v | PMAP_LOCK,
						     memory_order_acquire,
						     memory_order_relaxed))
		return false;
	*old = v;
	return true;
}

/*
 * Whoever calls a function that takes a locked entry asserts it here (debug
 * and sanitizer builds): the lock bit says that some thread holds the
 * entry, which is what the caller's contract promises.
 */
static inline void pmap_assert_locked(mv_pte *e)
{
	MV_ASSERT(atomic_load_explicit(e, memory_order_relaxed) & PMAP_LOCK);
	(void)e;
}

/*
 * The census of a pmap: how many entries are in each state and how many have
 * PMAP_TOUCHED, kept on every store that changes them, so that statistics
 * read counters instead of walking every entry.  Only the holder of an
 * entry's lock changes it (pmap_unlock, pmap_store_locked), so each change is
 * counted exactly once; readers see each counter exact, and the set of them
 * at most a few in-flight changes apart (mv_vm_stats() reads until they add
 * up to the VM's pages, waiting out a preempted writer: vm.c census_read).
 * tests/ check it against a walk.
 */
struct mv__pmap_census {
	_Atomic uint64_t pages[MV_PAGE_NSTATES];
	_Atomic uint64_t touched;
};

static inline void pmap_census_move(struct mv__pmap_census *c, uint64_t from,
				    uint64_t to)
{
	if (pmap_state(from) != pmap_state(to)) {
		atomic_fetch_sub_explicit(&c->pages[pmap_state(from)], 1,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&c->pages[pmap_state(to)], 1,
					  memory_order_relaxed);
	}
	if ((from ^ to) & PMAP_TOUCHED) {
		if (to & PMAP_TOUCHED)
			atomic_fetch_add_explicit(&c->touched, 1,
						  memory_order_relaxed);
		else
			atomic_fetch_sub_explicit(&c->touched, 1,
						  memory_order_relaxed);
	}
}

#ifdef MV_TRACE
void mv__trace_pte(mv_pte *p, uint64_t newv, const char *file, int line);
void mv__trace_vm(uint8_t *mem, mv_pte *pmap, uint64_t npages);
void mv__trace_vm_gone(uint8_t *mem);
void mv__trace_dump(mv_pte *pmap, uint64_t ppn);
#define MV__HERE __FILE__, __LINE__
#else
#define MV__HERE NULL, 0
#endif
/*
 * Publishes v as the entry of page ppn of vm (any struct with pmap and
 * census) and releases the lock in one store.
 */
#define pmap_unlock(vm, ppn, v) \
	pmap_unlock_at(&(vm)->pmap[ppn], &(vm)->census, v, MV__HERE)
/* Changes a locked entry without releasing it (the next unlock publishes). */
#define pmap_store_locked(vm, ppn, v) \
	pmap_store_locked_at(&(vm)->pmap[ppn], &(vm)->census, v)

static inline void pmap_store_locked_at(mv_pte *e, struct mv__pmap_census *c,
					uint64_t v)
{
	pmap_assert_locked(e);
	pmap_census_move(c, atomic_load_explicit(e, memory_order_relaxed), v);
	atomic_store_explicit(e, v | PMAP_LOCK, memory_order_relaxed);
}

static inline void pmap_unlock_at(mv_pte *e, struct mv__pmap_census *c,
				  uint64_t v, const char *file, int line)
{
#ifdef MV_TRACE
	mv__trace_pte(e, v, file, line);
#else
	(void)file;
	(void)line;
#endif
	pmap_assert_locked(e);
	pmap_census_move(c, atomic_load_explicit(e, memory_order_relaxed), v);
	atomic_store_explicit(e, v & ~PMAP_LOCK, memory_order_release);
}

/*
 * Publishes v[0..n) as the entries of pages [lo, lo + n) of vm (all locked
 * by the caller) and releases them, with the census changed once per state
 * for the whole run instead of twice per page: a 16-page fill made 48
 * atomic additions on the census's cache line, which every fault thread of
 * the VM writes.  The counts move while every page of the run is still
 * locked, so no counter can go below the pages it counts.
 */
#define pmap_unlock_run(vm, lo, n, v) \
	pmap_unlock_run_at(&(vm)->pmap[lo], &(vm)->census, n, v, MV__HERE)

static inline void pmap_unlock_run_at(mv_pte *e, struct mv__pmap_census *c,
				      uint64_t n, const uint64_t *v,
				      const char *file, int line)
{
	int64_t d[MV_PAGE_NSTATES] = { 0 }, touched = 0;
	uint64_t from;

	for (uint64_t i = 0; i < n; i++) {
		pmap_assert_locked(&e[i]);
		from = atomic_load_explicit(&e[i], memory_order_relaxed);
		d[pmap_state(from)]--;
		d[pmap_state(v[i])]++;
		touched += !!(v[i] & PMAP_TOUCHED) - !!(from & PMAP_TOUCHED);
	}
	for (unsigned s = 0; s < MV_PAGE_NSTATES; s++)
		if (d[s])
			atomic_fetch_add_explicit(&c->pages[s], (uint64_t)d[s],
						  memory_order_relaxed);
	if (touched)
		atomic_fetch_add_explicit(&c->touched, (uint64_t)touched,
					  memory_order_relaxed);
	for (uint64_t i = 0; i < n; i++) {
#ifdef MV_TRACE
		mv__trace_pte(&e[i], v[i], file, line);
#endif
		atomic_store_explicit(&e[i], v[i] & ~PMAP_LOCK,
				      memory_order_release);
	}
	(void)file;
	(void)line;
}

static inline uint64_t pmap_peek(mv_pte *e)
{
	return atomic_load_explicit(e, memory_order_relaxed);
}

#endif /* MV_PMAP_H */

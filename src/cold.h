/* SPDX-License-Identifier: MIT */
/*
 * cold.h - how warm each guest page is, for reclaim's victim choice
 * (Mem.ReclaimPolicy 1, cold.c has the design).  The calls the fault
 * service makes on every fault are inline here: one relaxed byte store.
 */
#ifndef MV_COLD_H
#define MV_COLD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Heat of a page the guest has just faulted on: the clock hand passes it
 * this many times, one step cooler each time, before it is a victim. */
#define MV_COLD_HOT 3
/* Heat of a page the guest faults on less than two passes of the hand
 * after reclaim took it: proven in use */
#define MV_COLD_REFAULT 15
/* Quick refaults in a row that each double that heat: 15, 30, 60, 120 */
#define MV_COLD_STREAK_MAX 4
/* A taken page's byte: this flag and the hand's pass count (7 bits) */
#define MV_COLD_TAKEN 0x80u
_Static_assert((MV_COLD_REFAULT << (MV_COLD_STREAK_MAX - 1)) < MV_COLD_TAKEN,
	       "the hottest heat is below the taken flag");

/* Mem.ReclaimPolicy */
enum mv__reclaim_policy {
	MV_RECLAIM_RANDOM = 0, /* ESX's: random runs of pages */
	MV_RECLAIM_COLD = 1, /* the clock over the heat bytes */
};

struct mv__cold {
	/* one byte per page: heat 0 (cold) to 120 (MV_COLD_REFAULT doubled
	 * for a streak of MV_COLD_STREAK_MAX), or MV_COLD_TAKEN | pass; NULL
	 * with the random policy.  A hint: written without the entry's lock,
	 * relaxed */
	_Atomic uint8_t *heat;
	/* one byte per page: its quick refaults in a row (0 to
	 * MV_COLD_STREAK_MAX), one fewer for each slow one; a hint as heat */
	_Atomic uint8_t *streak;
	uint64_t hand; /* the page the clock looks at next; reclaim_lock */
	_Atomic uint32_t passes; /* times the hand went round; relaxed */
	/* statistics, relaxed */
	_Atomic uint64_t scanned; /* entries the hand passed */
	_Atomic uint64_t cold_victims; /* victims the clock found cold */
	_Atomic uint64_t fallback_victims; /* taken at random: too few cold */
};

/* The heat of a page back within two passes of its taking, its streak of
 * such returns then s (1 to MV_COLD_STREAK_MAX): each doubles it. */
static inline uint8_t mv__cold_refault_heat(unsigned s)
{
	return (uint8_t)(MV_COLD_REFAULT << (s - 1));
}

/* The guest touched page ppn (it faulted on it): warm again, hotter if
 * reclaim took it recently, and hotter still each time in a row that it
 * does; a page warmer than MV_COLD_HOT stays so. */
static inline void mv__cold_touch(struct mv__cold *c, uint64_t ppn)
{
	uint8_t h, s, was, to = MV_COLD_HOT;
	uint32_t now;

	if (!c->heat)
		return;
	h = atomic_load_explicit(&c->heat[ppn], memory_order_relaxed);
	if (h & MV_COLD_TAKEN) {
		now = atomic_load_explicit(&c->passes, memory_order_relaxed);
		s = was = atomic_load_explicit(&c->streak[ppn],
					       memory_order_relaxed);
		if (((now - h) & 0x7f) <= 1) {
			s += s < MV_COLD_STREAK_MAX;
			to = mv__cold_refault_heat(s);
		} else if (s) {
			s--;
		}
		/* on the fault path: a line written only when it changes */
		if (s != was)
			atomic_store_explicit(&c->streak[ppn], s,
					      memory_order_relaxed);
	} else if (h >= MV_COLD_HOT) {
		return;
	}
	atomic_store_explicit(&c->heat[ppn], to, memory_order_relaxed);
}

/* Page ppn is a victim: cold, and when (for mv__cold_touch). */
static inline void mv__cold_taken(struct mv__cold *c, uint64_t ppn)
{
	uint32_t now;

	if (!c->heat)
		return;
	now = atomic_load_explicit(&c->passes, memory_order_relaxed);
	atomic_store_explicit(&c->heat[ppn],
			      (uint8_t)(MV_COLD_TAKEN | (now & 0x7f)),
			      memory_order_relaxed);
}

/* Page ppn was seen unused (a whole sampling period untouched): cold. */
static inline void mv__cold_forget(struct mv__cold *c, uint64_t ppn)
{
	if (c->heat)
		atomic_store_explicit(&c->heat[ppn], 0, memory_order_relaxed);
}

/* The clock hand passes page ppn: true if it is cold (or was taken and
 * came back unasked, a cluster's neighbour), else one step cooler. */
static inline bool mv__cold_pass(struct mv__cold *c, uint64_t ppn)
{
	uint8_t h = atomic_load_explicit(&c->heat[ppn], memory_order_relaxed);

	if (!h || (h & MV_COLD_TAKEN))
		return true;
	atomic_store_explicit(&c->heat[ppn], (uint8_t)(h - 1),
			      memory_order_relaxed);
	return false;
}

#endif /* MV_COLD_H */

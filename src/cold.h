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
/* A taken page's byte: this flag and the hand's pass count (7 bits) */
#define MV_COLD_TAKEN 0x80u

/* Mem.ReclaimPolicy */
enum mv__reclaim_policy {
	MV_RECLAIM_RANDOM = 0, /* ESX's: random runs of pages */
	MV_RECLAIM_COLD = 1, /* the clock over the heat bytes */
};

struct mv__cold {
	/* one byte per page: heat 0 (cold) to MV_COLD_REFAULT, or
	 * MV_COLD_TAKEN | pass; NULL with the random policy.  A hint: written
	 * without the entry's lock, relaxed */
	_Atomic uint8_t *heat;
	uint64_t hand; /* the page the clock looks at next; reclaim_lock */
	_Atomic uint32_t passes; /* times the hand went round; relaxed */
	/* statistics, relaxed */
	_Atomic uint64_t scanned; /* entries the hand passed */
	_Atomic uint64_t cold_victims; /* victims the clock found cold */
	_Atomic uint64_t fallback_victims; /* taken at random: too few cold */
};

/* The guest touched page ppn (it faulted on it): warm again, hotter if
 * reclaim took it recently; a page warmer than MV_COLD_HOT stays so. */
static inline void mv__cold_touch(struct mv__cold *c, uint64_t ppn)
{
	uint8_t h, to = MV_COLD_HOT;
	uint32_t now;

	if (!c->heat)
		return;
	h = atomic_load_explicit(&c->heat[ppn], memory_order_relaxed);
	if (h & MV_COLD_TAKEN) {
		now = atomic_load_explicit(&c->passes, memory_order_relaxed);
		if (((now - h) & 0x7f) <= 1)
			to = MV_COLD_REFAULT;
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

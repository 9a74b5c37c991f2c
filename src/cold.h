/* SPDX-License-Identifier: MIT */
/*
 * cold.h - how warm each guest page is, for reclaim's victim choice
 * (Mem.ReclaimPolicy 1, cold.c has the design).  The calls the fault
 * service makes on every fault are inline here: a relaxed load, and a
 * store or two when the page was one reclaim took.
 */
#ifndef MV_COLD_H
#define MV_COLD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Warmth of a page the guest faulted on with no refault to go by (a first
 * touch, a copy on write, a sampled page touched): just above cold, so a
 * cluster's neighbours it never asked for go before it */
#define MV_COLD_FAULTED 1
/* Warmth steps per doubling of a page's mean refault distance */
#define MV_COLD_STEPS 8
/* The hand takes one step of warmth off a page every this many passes
 * (a power of two): a page that stops being wanted loses its warmth in
 * time, and a warm one is tried again now and then */
#define MV_COLD_AGE_PASSES 32
/* Entries the hand passes without a victim before the threshold rises a
 * step */
#define MV_COLD_RAISE_AFTER 64
/* A victim found within fewer entries than this lowers the threshold a
 * sixteenth of a step */
#define MV_COLD_LOWER_BELOW 4
/* Times the hand goes round a VM at most for one batch of victims */
#define MV_COLD_MAX_PASSES 16
/* A taken page's stamp: this flag and the VM's victim count (31 bits) */
#define MV_COLD_TAKEN 0x80000000u
#define MV_COLD_WARMEST 255u
/* A return from the swap file counts its refault distance shifted right by
 * this much (an eighth): on these machines an O_DIRECT read of a page
 * (100-260 us) costs about ten times a return from the compression cache
 * (the round trip and a decompression, 15-20 us), so a page that comes
 * back from disk is kept as long as one wanted back eight times as often
 * (cold.c) */
#define MV_COLD_SWAP_SHIFT 3
_Static_assert((MV_COLD_AGE_PASSES & (MV_COLD_AGE_PASSES - 1)) == 0,
	       "aging is a mask of the pass count");

/* Mem.ReclaimPolicy */
enum mv__reclaim_policy {
	MV_RECLAIM_RANDOM = 0, /* ESX's: random runs of pages */
	MV_RECLAIM_COLD = 1, /* the clock over the warmth bytes */
};

struct mv__cold {
	/* one byte per page: 0 cold (never wanted back, or seen unused), else
	 * 255 - MV_COLD_STEPS * log2 of the page's mean refault distance in
	 * victims (at least 1); NULL with the random policy.  A hint:
	 * written without the entry's lock, relaxed */
	_Atomic uint8_t *heat;
	/* one word per page: MV_COLD_TAKEN | victims when reclaim took it,
	 * until the guest faults on it; the flag alone is cleared then */
	_Atomic uint32_t *stamp;
	_Atomic uint32_t victims; /* pages this VM's reclaim took; relaxed */
	uint64_t hand; /* the page the clock looks at next; reclaim_lock */
	uint32_t threshold; /* sixteenths of warmth: at most this is a
			     * victim; reclaim_lock */
	_Atomic uint32_t passes; /* times the hand went round; relaxed */
	/* statistics, relaxed */
	_Atomic uint64_t scanned; /* entries the hand passed */
	_Atomic uint64_t cold_victims; /* victims the clock found cold */
	_Atomic uint64_t fallback_victims; /* taken at random: too few cold */
};

/* floor(MV_COLD_STEPS * log2(d)) for d >= 1, from the top four bits */
static inline unsigned mv__cold_log(uint32_t d)
{
	unsigned b = 31u - (unsigned)__builtin_clz(d);
	unsigned frac = b >= 3 ? (d >> (b - 3)) & 7u : (d << (3 - b)) & 7u;

	return MV_COLD_STEPS * b + frac;
}

/* The refault distance a warmth stands for (its inverse, to the step). */
static inline uint64_t mv__cold_distance(uint8_t warmth)
{
	unsigned l = MV_COLD_WARMEST - warmth;

	return ((uint64_t)(8 + (l & 7u)) << (l >> 3)) >> 3;
}

/* The warmth of a page whose mean refault distance is d victims. */
static inline uint8_t mv__cold_warmth(uint64_t d)
{
	unsigned l;

	if (d > UINT32_MAX)
		return MV_COLD_FAULTED;
	l = mv__cold_log(d ? (uint32_t)d : 1);
	return l >= MV_COLD_WARMEST ? MV_COLD_FAULTED :
				      (uint8_t)(MV_COLD_WARMEST - l);
}

/*
 * The guest faulted on page ppn.  If reclaim took it, `d` victims ago, its
 * warmth becomes that of the mean of d and the distance its warmth stood
 * for (the first return sets it): a page the guest wants back soon, time
 * after time, is warm, one it wanted back once by chance cools again.  Any
 * other fault makes a cold page MV_COLD_FAULTED.  cost_shift: d counts
 * shifted right by this much (at least 1), for a return that costs more
 * than one from the compression cache (MV_COLD_SWAP_SHIFT).
 */
static inline void mv__cold_touch(struct mv__cold *c, uint64_t ppn,
				  unsigned cost_shift)
{
	uint32_t s, now;
	uint64_t d;
	uint8_t w;

	if (!c->heat)
		return;
	s = atomic_load_explicit(&c->stamp[ppn], memory_order_relaxed);
	w = atomic_load_explicit(&c->heat[ppn], memory_order_relaxed);
	if (!(s & MV_COLD_TAKEN)) {
		if (!w)
			atomic_store_explicit(&c->heat[ppn], MV_COLD_FAULTED,
					      memory_order_relaxed);
		return;
	}
	now = atomic_load_explicit(&c->victims, memory_order_relaxed);
	/* at least 1: its own taking counted */
	d = (now - s) & ~MV_COLD_TAKEN;
	d >>= cost_shift;
	if (!d)
		d = 1;
	if (w > MV_COLD_FAULTED)
		d = (d + mv__cold_distance(w)) / 2;
	atomic_store_explicit(&c->stamp[ppn], s & ~MV_COLD_TAKEN,
			      memory_order_relaxed);
	atomic_store_explicit(&c->heat[ppn], mv__cold_warmth(d),
			      memory_order_relaxed);
}

/* Page ppn is a victim: stamped with the VM's victim count, a victim
 * again until the guest asks for it (mv__cold_touch); its warmth, the
 * history of its refaults, stays. */
static inline void mv__cold_taken(struct mv__cold *c, uint64_t ppn)
{
	uint32_t now;

	if (!c->heat)
		return;
	now = atomic_fetch_add_explicit(&c->victims, 1, memory_order_relaxed);
	atomic_store_explicit(&c->stamp[ppn], MV_COLD_TAKEN | now,
			      memory_order_relaxed);
}

/* Page ppn was seen unused (a whole sampling period untouched): cold. */
static inline void mv__cold_forget(struct mv__cold *c, uint64_t ppn)
{
	if (c->heat)
		atomic_store_explicit(&c->heat[ppn], 0, memory_order_relaxed);
}

/*
 * The clock hand passes PRIVATE page ppn: true if it is a victim (its
 * warmth at most the threshold, or taken and brought back unasked, a
 * cluster's neighbour); else every MV_COLD_AGE_PASSES passes it loses a
 * step of warmth.  Under reclaim_lock.
 */
static inline bool mv__cold_pass(struct mv__cold *c, uint64_t ppn)
{
	uint8_t w = atomic_load_explicit(&c->heat[ppn], memory_order_relaxed);
	uint32_t pass;

	if ((uint32_t)w * 16 <= c->threshold ||
	    (atomic_load_explicit(&c->stamp[ppn], memory_order_relaxed) &
	     MV_COLD_TAKEN))
		return true;
	pass = atomic_load_explicit(&c->passes, memory_order_relaxed);
	if (!((pass + ppn) & (MV_COLD_AGE_PASSES - 1)))
		atomic_store_explicit(&c->heat[ppn], (uint8_t)(w - 1),
				      memory_order_relaxed);
	return false;
}

/* The page the clock hand looks at next; it moves on one. */
static inline uint64_t mv__cold_advance(struct mv__cold *c, uint64_t npages)
{
	uint64_t ppn = c->hand;

	c->hand = ppn + 1 < npages ? ppn + 1 : 0;
	if (!c->hand)
		atomic_fetch_add_explicit(&c->passes, 1, memory_order_relaxed);
	return ppn;
}

/*
 * The hand passes PRIVATE page ppn, the candidate after `*since` others
 * since its last victim: true if it is a victim (mv__cold_pass).  Else the
 * threshold rises a step every MV_COLD_RAISE_AFTER candidates without
 * one: every page is warmer than it.  Under reclaim_lock.
 */
static inline bool mv__cold_consider(struct mv__cold *c, uint64_t ppn,
				     uint64_t *since)
{
	if (mv__cold_pass(c, ppn))
		return true;
	if (++*since % MV_COLD_RAISE_AFTER == 0 &&
	    c->threshold < MV_COLD_WARMEST * 16)
		c->threshold += 16;
	return false;
}

/* The candidate mv__cold_consider named is the hand's victim: a quick
 * find (within MV_COLD_LOWER_BELOW candidates) lowers the threshold a
 * sixteenth of a step, and the count starts again. */
static inline void mv__cold_took(struct mv__cold *c, uint64_t *since)
{
	if (*since + 1 < MV_COLD_LOWER_BELOW && c->threshold)
		c->threshold--;
	*since = 0;
}

#endif /* MV_COLD_H */

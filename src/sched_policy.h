/* SPDX-License-Identifier: MIT */
/*
 * sched_policy.h - the memory scheduler's policy as pure functions (sched.c): the
 * arithmetic of shares, reservation, limit and the idle memory tax, and the
 * free-memory state machine.  They take numbers and return numbers, so
 * tests reach them without threads, VMs or timing.
 */
#ifndef MV_SCHED_POLICY_H
#define MV_SCHED_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "memvisor.h"

/* One VM as the policy sees it. */
struct mv__sched_vm {
	uint64_t shares; /* S */
	uint64_t min_pages; /* reservation: never targeted below */
	uint64_t max_pages; /* limit, or memsize: never targeted above */
	uint64_t alloc_pages; /* P: machine frames it holds now */
	uint32_t active_permille; /* f: estimated active fraction of P */
	/*
	 * Demand cap (mv__sched_demand): when `capped`, the VM's target is at
	 * most max(min_pages, demand_pages), and it is reclaimed from first
	 * while it holds more.  Not capped (zero-initialised): shares alone.
	 */
	bool capped;
	uint64_t demand_pages;
	/*
	 * Pages the VM was measured to use (mv__sched_demand's `active`,
	 * UINT64_MAX while not measured); 0 when nobody said.  Its active
	 * pages under the tax are the larger of f * P and this (up to its
	 * limit): a VM using all it holds and faulting in more uses more
	 * than it holds, and the pages it would be given are not idle.
	 */
	uint64_t used_pages;
};

/*
 * A VM's demand cap (ESX: active memory plus headroom): `active` pages
 * (sampling's estimate as a count, plus what the VM filled since; see
 * mv__sample_demand_pages) plus `headroom_pct` percent of them.  Sets
 * v->capped and v->demand_pages (at most the limit).  Every measured VM
 * is capped: one using all it holds at the headroom above it, which it
 * may grow into before the next balance (its fills raise `active` as it
 * does).  Not measured yet (active UINT64_MAX): not capped.  (Before,
 * only a VM holding more than its demand was, and a VM using all of a
 * few frames, its memory shared, kept a share-sized target it never
 * used while the VMs that needed memory were reclaimed.)
 */
void mv__sched_demand(struct mv__sched_vm *v, uint64_t active,
		      unsigned headroom_pct);
/*
 * The cap of a VM not measured yet (after mv__sched_demand with active
 * UINT64_MAX), from the pages it has filled since it began: every frame
 * it holds was filled, so `filled` is at least what it holds and grows as
 * it does.  Capped at twice `filled` (a VM that is filling its memory may
 * double it before the next balance), and at least a 64th of its limit
 * above it, never above the limit; its pages all count as used for the
 * tax (used_pages stays UINT64_MAX).  So a VM whose memory is shared or
 * zero from the start (clones of a template) does not hold a share-sized
 * target it never fills through its whole first period.
 */
void mv__sched_demand_unmeasured(struct mv__sched_vm *v, uint64_t filled);
/*
 * Lifts the cap of a VM whose demand is at least what it holds (a VM
 * using all it holds): its shares alone bound its target, as they bound
 * every such VM's before all were capped.  For a VM whose target bounds it
 * hard, a remote VM (its grant never grows past its target, even with the
 * host's memory free), and for one with pages in its balloon (which
 * deflates only by what its target leaves above what it holds): capped at
 * 25% above what they hold, they would grow by a quarter per balance.
 * One using less than it holds, or nothing, stays capped.
 */
void mv__sched_uncap_if_full(struct mv__sched_vm *v);

/*
 * The target a balance gave v when its demand cap bound it, or
 * MV__SCHED_UNCAPPED: the cap was above what its shares and limit gave.
 */
#define MV__SCHED_UNCAPPED UINT64_MAX
uint64_t mv__sched_binding_cap(const struct mv__sched_vm *v, uint64_t target);
/*
 * Whether a VM whose cap bound its target at the last balance (`capped_at`,
 * from mv__sched_binding_cap) has outgrown it since: it holds nearly all of
 * it (within a 64th) and its demand now (v, as a balance would gather it)
 * gives a cap at least a 32nd higher (MV__SCHED_OUTGROWN_MIN pages at
 * least).  The scheduler then balances before its period ends, so that a
 * VM waking up or growing is not held at its old cap (its faults waiting
 * in low, its new pages the first taken in soft) for up to a period.
 */
#define MV__SCHED_OUTGROWN_MIN 64
bool mv__sched_cap_outgrown(const struct mv__sched_vm *v, uint64_t capped_at);

/*
 * Cost of holding `pages` frames for v with idle tax `tax_pct`: active
 * pages count once, idle ones k = 1 / (1 - tax) times (Waldspurger 2002,
 * section 5.2).  Its active pages are f * P at the VM's current
 * allocation, or the pages it was measured to use (used_pages) if more,
 * held fixed as `pages` varies: reclaim takes idle pages first.  With no
 * measured use above f * P, rho at P is the paper's
 * S / (P (f + k (1 - f))).  A VM's pages are taxed only beyond what it
 * uses, so two alike VMs that hold different amounts while both use more
 * than they hold are given alike targets, where f * P alone would tax the
 * poorer one's every further page and keep it poorer.
 */
double mv__sched_cost(const struct mv__sched_vm *v, uint64_t pages,
		      unsigned tax_pct);

/*
 * Shares-per-page ratio rho = S / cost(pages).  The VM with the lowest rho
 * pays least for its memory and loses it first.
 */
double mv__sched_rho(const struct mv__sched_vm *v, uint64_t pages,
		     unsigned tax_pct);

/*
 * Allocation targets (SZTGT) by min-funding revocation: the largest
 * allocation of `avail` pages in which no VM could take a page from
 * another with a lower rho, each target clamped to [min_pages, max_pages]
 * and, for a capped VM, to at most its demand (never below min_pages):
 * what the cap leaves goes to the others, as shares say.  The targets add
 * up to at most avail, or to the reservations if those alone exceed it
 * (admission control keeps that from happening).
 */
void mv__sched_targets(const struct mv__sched_vm *v, unsigned n, uint64_t avail,
		       unsigned tax_pct, uint64_t *target);

/*
 * The VM to reclaim from: one above its limit first (the most above);
 * otherwise, if `pressure`, the one with the lowest rho at its current
 * allocation among the capped VMs holding more than their demand (memory
 * they do not use) and above their reservation, then among all those above
 * their reservation.  Entries with
 * skip[i] set are passed over.  -1 when there is none.
 */
int mv__sched_victim(const struct mv__sched_vm *v, const unsigned char *skip,
		     unsigned n, unsigned tax_pct, int pressure);
/*
 * The VM whose memory above its demand cap goes first: the lowest rho
 * among the capped VMs holding more than their demand and above their
 * reservation (skip[i] set: passed over).  -1 when there is none.
 */
int mv__sched_idle_victim(const struct mv__sched_vm *v,
			  const unsigned char *skip, unsigned n,
			  unsigned tax_pct);

/*
 * The free-memory state after `prev`, with `free` pages free against
 * `minfree`.  A worse state is entered as soon as free memory falls below
 * its threshold; a better one only once free memory is above that state's
 * threshold by MV__SCHED_HYST_PCT of minFree, so a host hovering at a
 * threshold does not flip mechanisms on and off with every page.
 */
#define MV__SCHED_HYST_PCT 8
enum mv_mem_state mv__sched_state(enum mv_mem_state prev, uint64_t free,
				  uint64_t minfree);

/* What runs in a state (ESXi 6+). */
enum {
	MV__MECH_SHARE = 1u << 0, /* page sharing: in every state */
	MV__MECH_BALLOON = 1u << 1, /* balloon targets may grow: soft */
	MV__MECH_SWAP = 1u << 2, /* compress and swap: hard, low */
	MV__MECH_BLOCK = 1u << 3, /* VMs above target wait to allocate: low */
	/* memory above a VM's demand cap is compressed or swapped: soft,
	 * hard, low (not ESX's: a VM with no balloon driver would keep its
	 * idle memory through soft) */
	MV__MECH_IDLE = 1u << 4,
};
unsigned mv__sched_mechanisms(enum mv_mem_state s);

/*
 * Large pages (lpage.c): made only in the high state, broken in soft, hard
 * and low (and whenever a fault waits for a frame), before any other
 * mechanism takes a small page.
 */
static inline bool mv__sched_lpage_collapses(enum mv_mem_state s)
{
	return s == MV_STATE_HIGH;
}
static inline bool mv__sched_lpage_breaks_in(enum mv_mem_state s)
{
	return s == MV_STATE_SOFT || s == MV_STATE_HARD || s == MV_STATE_LOW;
}
/*
 * Large pages to break under pressure, out[i] regions of 2 MiB for VM i:
 * only VMs above target[i] by more than their small pages (those not in
 * its large[i] regions) can give, the most idle first (lowest active
 * fraction; ties: the one needing most), each as many regions as cover the
 * rest, at most large[i], `budget` in all.  So a VM is not broken up again
 * every tick while reclaim takes the small pages an earlier break made.
 * Returns the total.
 */
uint64_t mv__sched_lpage_breaks(const struct mv__sched_vm *in,
				const uint64_t *target, const uint64_t *large,
				unsigned n, uint64_t budget, uint64_t *out);

/*
 * Balloon target for a VM holding `alloc` frames against target `sztgt`
 * with `actual` pages ballooned now: enough more to bring it down to its
 * target, or fewer by what it is below its target.  It grows only if
 * `can_grow`; otherwise it never rises above `cur`, the target set now.
 */
uint64_t mv__sched_balloon_target(uint64_t alloc, uint64_t sztgt,
				  uint64_t actual, uint64_t cur, int can_grow);

#endif /* MV_SCHED_POLICY_H */

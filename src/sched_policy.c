// SPDX-License-Identifier: MIT
/*
 * sched_policy.c - the memory scheduler's policy as pure functions
 * (declared in sched_policy.h): the cost of a VM's pages under the idle
 * memory tax, shares per page, demand caps, targets by min-funding
 * revocation, the victim (memory above demand caps first), the free-memory
 * state machine with its hysteresis, what runs in each state, balloon
 * targets, and the shares of a level.  Policy layer: no threads, no locks,
 * no engine state, no system calls; the scheduler thread (sched.c) feeds
 * them a view of the VMs and acts on the answers, and tests/test_sched.c
 * and tests/test_sched_policy.c check them alone.
 *
 * Invariants: targets lie within [reservation, limit], a capped VM's at
 * most max(reservation, demand), and add up to at most what is available
 * (what a cap leaves goes to the VMs not at a bound); the state machine
 * enters a worse state at once
 * and a better one only MV__SCHED_HYST_PCT of minFree above its floor.
 *
 * Locks: none.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SHARES_PER_MB_LOW 5 /* ESX: low, normal, high = 5, 10, 20 per MB */

static double tax_k(unsigned tax_pct)
{
	return 100.0 / (double)(100 - tax_pct);
}

static double active_pages(const struct mv__sched_vm *v)
{
	double a = (double)v->alloc_pages * v->active_permille / 1000.0;
	uint64_t used = v->used_pages < v->max_pages ? v->used_pages :
						       v->max_pages;

	return (double)used > a ? (double)used : a;
}

double mv__sched_cost(const struct mv__sched_vm *v, uint64_t pages,
		      unsigned tax_pct)
{
	double a = active_pages(v), p = (double)pages;

	if (p <= a)
		return p;
	return a + tax_k(tax_pct) * (p - a);
}

double mv__sched_rho(const struct mv__sched_vm *v, uint64_t pages,
		     unsigned tax_pct)
{
	double c = mv__sched_cost(v, pages, tax_pct);

	return c > 0 ? (double)v->shares / c : HUGE_VAL;
}

void mv__sched_demand(struct mv__sched_vm *v, uint64_t active,
		      unsigned headroom_pct)
{
	unsigned __int128 d =
		(unsigned __int128)active * (100 + headroom_pct) / 100;

	v->used_pages = active;
	/* every measured VM: one using more than it holds is capped above
	 * what it holds, by the headroom, and grows by what it fills */
	v->capped = active != UINT64_MAX;
	v->demand_pages = !v->capped	   ? 0 :
			  d > v->max_pages ? v->max_pages :
					     (uint64_t)d;
}

void mv__sched_demand_unmeasured(struct mv__sched_vm *v, uint64_t filled)
{
	uint64_t d = filled +
		     (filled > v->max_pages / 64 ? filled : v->max_pages / 64);

	v->capped = true;
	v->demand_pages = d > v->max_pages || d < filled ? v->max_pages : d;
}

void mv__sched_uncap_if_full(struct mv__sched_vm *v)
{
	if (v->capped && v->demand_pages && v->demand_pages >= v->alloc_pages) {
		v->capped = false;
		v->demand_pages = 0;
	}
}

/* Most pages v may be given: its limit, or its demand if capped (but never
 * less than its reservation). */
static uint64_t ceiling(const struct mv__sched_vm *v)
{
	uint64_t c = v->max_pages;

	if (v->capped && v->demand_pages < c)
		c = v->demand_pages > v->min_pages ? v->demand_pages :
						     v->min_pages;
	return c;
}

uint64_t mv__sched_binding_cap(const struct mv__sched_vm *v, uint64_t target)
{
	uint64_t c = ceiling(v);

	return c < v->max_pages && target >= c ? c : MV__SCHED_UNCAPPED;
}

bool mv__sched_cap_outgrown(const struct mv__sched_vm *v, uint64_t capped_at)
{
	uint64_t step = capped_at / 32 > MV__SCHED_OUTGROWN_MIN ?
				capped_at / 32 :
				MV__SCHED_OUTGROWN_MIN;

	if (capped_at == MV__SCHED_UNCAPPED)
		return false;
	if (v->alloc_pages + capped_at / 64 < capped_at)
		return false; /* room left below its cap */
	/* uncapped now (a remote VM using all it holds), or capped higher */
	return ceiling(v) >= capped_at + step;
}

/* The most pages v can hold at `x` cost per share, within its bounds. */
static uint64_t pages_at(const struct mv__sched_vm *v, double x,
			 unsigned tax_pct)
{
	double c = (double)v->shares * x, a = active_pages(v), p;
	uint64_t top = ceiling(v);

	p = c <= a ? c : a + (c - a) / tax_k(tax_pct);
	if (p >= (double)top)
		p = (double)top;
	if (p <= (double)v->min_pages)
		return v->min_pages;
	return (uint64_t)p;
}

static uint64_t sum_at(const struct mv__sched_vm *v, unsigned n, double x,
		       unsigned tax_pct)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += pages_at(v + i, x, tax_pct);
	return sum;
}

/*
 * Min-funding revocation takes a page from the VM with the lowest rho
 * until the targets fit.  Where that ends, every VM not held at a bound
 * pays the same cost per share x; so instead of revoking page by page, the
 * largest x whose targets fit is found by bisection (sum_at grows with x).
 */
void mv__sched_targets(const struct mv__sched_vm *v, unsigned n, uint64_t avail,
		       unsigned tax_pct, uint64_t *target)
{
	double lo = 0, hi = 0, mid, x;

	for (unsigned i = 0; i < n; i++) {
		if (!v[i].shares)
			continue;
		x = mv__sched_cost(v + i, ceiling(v + i), tax_pct) /
		    (double)v[i].shares;
		if (x > hi)
			hi = x;
	}
	if (sum_at(v, n, hi, tax_pct) > avail) {
		/* 64 halvings take a double's range down to its last bit */
		for (int iter = 0; iter < 64; iter++) {
			mid = (lo + hi) / 2;
			if (sum_at(v, n, mid, tax_pct) <= avail)
				lo = mid;
			else
				hi = mid;
		}
		hi = lo;
	}
	for (unsigned i = 0; i < n; i++)
		target[i] = pages_at(v + i, hi, tax_pct);
}

int mv__sched_idle_victim(const struct mv__sched_vm *v,
			  const unsigned char *skip, unsigned n,
			  unsigned tax_pct)
{
	double best = HUGE_VAL, rho;
	int pick = -1;

	for (unsigned i = 0; i < n; i++) {
		if (skip[i] || !v[i].capped ||
		    v[i].alloc_pages <= v[i].min_pages ||
		    v[i].alloc_pages <= v[i].demand_pages)
			continue;
		rho = mv__sched_rho(v + i, v[i].alloc_pages, tax_pct);
		if (pick < 0 || rho < best) {
			best = rho;
			pick = (int)i;
		}
	}
	return pick;
}

int mv__sched_victim(const struct mv__sched_vm *v, const unsigned char *skip,
		     unsigned n, unsigned tax_pct, int pressure)
{
	double best = HUGE_VAL, rho;
	uint64_t over = 0;
	int pick = -1;

	for (unsigned i = 0; i < n; i++) {
		if (skip[i] || v[i].alloc_pages <= v[i].max_pages)
			continue;
		if (v[i].alloc_pages - v[i].max_pages > over) {
			over = v[i].alloc_pages - v[i].max_pages;
			pick = (int)i;
		}
	}
	if (pick >= 0 || !pressure)
		return pick;
	/* memory a VM holds beyond its demand goes first: it is not used */
	pick = mv__sched_idle_victim(v, skip, n, tax_pct);
	if (pick >= 0)
		return pick;
	for (unsigned i = 0; i < n; i++) {
		if (skip[i] || v[i].alloc_pages <= v[i].min_pages)
			continue;
		rho = mv__sched_rho(v + i, v[i].alloc_pages, tax_pct);
		if (pick < 0 || rho < best) {
			best = rho;
			pick = (int)i;
		}
	}
	return pick;
}

/* Lowest free memory of each state, percent of minFree. */
static const unsigned state_floor_pct[] = {
	[MV_STATE_HIGH] = 400, [MV_STATE_CLEAR] = 100, [MV_STATE_SOFT] = 64,
	[MV_STATE_HARD] = 32,  [MV_STATE_LOW] = 0,
};

enum mv_mem_state mv__sched_state(enum mv_mem_state prev, uint64_t free,
				  uint64_t minfree)
{
	unsigned __int128 f = (unsigned __int128)free * 100;
	enum mv_mem_state raw = MV_STATE_LOW;

	if (!minfree)
		return MV_STATE_HIGH;
	for (int s = MV_STATE_HIGH; s < MV_STATE_LOW; s++) {
		if (f >= (unsigned __int128)minfree * state_floor_pct[s]) {
			raw = (enum mv_mem_state)s;
			break;
		}
	}
	if (raw >= prev)
		return raw;
	for (int s = MV_STATE_HIGH; s < (int)prev; s++)
		if (f >= (unsigned __int128)minfree *
				 (state_floor_pct[s] + MV__SCHED_HYST_PCT))
			return (enum mv_mem_state)s;
	return prev;
}

unsigned mv__sched_mechanisms(enum mv_mem_state s)
{
	switch (s) {
	case MV_STATE_SOFT:
		return MV__MECH_SHARE | MV__MECH_BALLOON | MV__MECH_IDLE;
	case MV_STATE_HARD:
		return MV__MECH_SHARE | MV__MECH_SWAP | MV__MECH_IDLE;
	case MV_STATE_LOW:
		return MV__MECH_SHARE | MV__MECH_SWAP | MV__MECH_BLOCK |
		       MV__MECH_IDLE;
	default:
		return MV__MECH_SHARE;
	}
}

uint64_t mv__sched_balloon_target(uint64_t alloc, uint64_t sztgt,
				  uint64_t actual, uint64_t cur, int can_grow)
{
	uint64_t want;

	if (alloc > sztgt)
		want = actual + (alloc - sztgt);
	else
		want = actual > sztgt - alloc ? actual - (sztgt - alloc) : 0;
	if (!can_grow && want > cur)
		want = cur;
	return want;
}

uint64_t mv_shares_for(enum mv_shares_level level, uint64_t memsize_bytes)
{
	uint64_t mb = memsize_bytes >> 20, per = SHARES_PER_MB_LOW, s;

	if (level == MV_SHARES_NORMAL)
		per *= 2;
	else if (level == MV_SHARES_HIGH)
		per *= 4;
	s = mb * per;
	if (!s)
		s = 1;
	return s < MV_SHARES_MAX ? s : MV_SHARES_MAX;
}

uint64_t mv__sched_lpage_breaks(const struct mv__sched_vm *in,
				const uint64_t *target, const uint64_t *large,
				unsigned n, uint64_t budget, uint64_t *out)
{
	uint64_t total = 0, above, small, want, best_need = 0;
	int best;

	for (unsigned i = 0; i < n; i++)
		out[i] = 0;
	for (;;) {
		best = -1;
		for (unsigned i = 0; i < n; i++) {
			if (out[i] || !large[i] ||
			    in[i].alloc_pages <= target[i])
				continue;
			/* what its small pages cannot cover */
			above = in[i].alloc_pages - target[i];
			small = in[i].alloc_pages > large[i] * MV_LPAGE_PAGES ?
					in[i].alloc_pages -
						large[i] * MV_LPAGE_PAGES :
					0;
			if (above <= small)
				continue;
			above -= small;
			if (best < 0 ||
			    in[i].active_permille < in[best].active_permille ||
			    (in[i].active_permille ==
				     in[best].active_permille &&
			     above > best_need)) {
				best = (int)i;
				best_need = above;
			}
		}
		if (best < 0 || total >= budget)
			return total;
		want = (best_need + MV_LPAGE_PAGES - 1) / MV_LPAGE_PAGES;
		if (want > large[best])
			want = large[best];
		if (want > budget - total)
			want = budget - total;
		out[best] = want;
		total += want;
	}
}

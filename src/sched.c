// SPDX-License-Identifier: MIT
/*
 * sched.c - the memory scheduler: decides how much machine memory each VM
 * should hold (its target, SZTGT) and which mechanism takes back the rest,
 * by the host's free-memory state.  One policy, one thread.
 *
 * Design (Waldspurger, OSDI 2002, sections 5-6; ESXi 6+ states):
 *   - Each VM has shares S, a reservation and a limit.  Targets come from
 *     min-funding revocation: memory goes to the VMs that pay most for it,
 *     in shares per page rho = S / (P * (f + k * (1 - f))), where P is what
 *     the VM holds, f the active fraction sampled (sample.c) and
 *     k = 1 / (1 - Mem.IdleTax): an idle page costs k times an active one,
 *     so idle VMs lose memory first.  Targets never go below the
 *     reservation nor above the limit, and add up to what the host can give:
 *     memsize less minFree.  Compression cache frames count against the VM
 *     that owns them (they are in its consumed pages), so they come out of
 *     its own target; frames held by page sharing, once it lands, are to be
 *     taken off what the host can give.  Targets are recomputed every
 *     Mem.BalancePeriod and whenever the state changes.
 *   - Demand caps (ESX): a VM's demand is its active pages as a count
 *     (mv__sample_demand_pages) plus Mem.DemandHeadroomPct of them; a VM
 *     holding more has a target of at most that (never below its
 *     reservation), and what that leaves goes to the others by their
 *     shares.  Its memory above the cap is reclaimed before any other
 *     victim is chosen by rho (the lowest rho first): in hard and low, and
 *     in soft too, there only down to the cap (MV__MECH_IDLE), so an idle
 *     VM ends with nothing but its reservation (and what reclaim cannot
 *     take: its sampled pages and compression cache).  A VM using all it
 *     holds is capped too, the headroom above it: it grows by that much
 *     before the next balance, and its demand by every page it fills, so
 *     the cap follows a VM that wants more, and one that does not (a VM
 *     whose memory is shared, or small) leaves the rest to the others.
 *     A VM held at the cap that bound its target (capped_at1) and
 *     outgrowing it is balanced at once, not at the period's end
 *     (mv__sched_cap_outgrown, at most every EARLY_BALANCE_MS), and a
 *     change of shares, reservation or limit through the API balances at
 *     the next tick (balance_asked).
 *     A VM not yet measured (no whole period yet) is capped at twice the
 *     pages it has filled since it began (mv__sched_demand_unmeasured),
 *     all of them taken as used, once it is a Mem.BalancePeriod old: a
 *     clone whose memory is shared from its first touch holds no
 *     share-sized target through its first period, one filling its
 *     memory may double it between balances, and a VM just made is not
 *     held to what it filled before its first balance (in low, a fault
 *     of a VM above its target waits).  A remote VM not measured by its
 *     agent yet is not capped.  A remote VM (whose grant never grows past
 *     its target, even with the host's memory free) and a VM with pages
 *     in its balloon (which deflates only by what its target leaves above
 *     what it holds) are capped only when they use less than they hold
 *     (mv__sched_uncap_if_full): capped at 25% above it, they would grow
 *     by a quarter per balance.
 *   - The state (high, clear, soft, hard, low) follows free memory against
 *     minFree with hysteresis (mv__sched_state).  What runs in each, as in
 *     ESX: sharing always; in soft the balloon targets of VMs above their
 *     target grow by what they are above (guest drivers poll them); in hard
 *     and low, pages are compressed or swapped (reclaim.c) from the VM with
 *     the lowest rho until the host is back in soft, and balloons stop
 *     growing; in low, faults of VMs above their target wait
 *     (mv__sched_admit).  A fault that finds no free frame wakes the
 *     scheduler, which reclaims at once whatever the state, so no guest
 *     waits for a balance period.  A VM above its limit is swapped down to
 *     it in any state; the limit is enforced by reclaim, so a VM can be
 *     above it for a scheduler tick.
 *   - Large pages (lpage.c): in the high state, once per Mem.BalancePeriod,
 *     2 MiB regions found resident and private on two passes in a row are
 *     collapsed, a few per VM; in soft, hard and low (or when a fault waits
 *     for a frame) the large pages of the VMs above their target are broken
 *     first, the most idle VM first, so that every other mechanism finds
 *     small pages; if reclaim then finds nothing, any VM's are broken.
 *   - Reclaim runs per VM (Mem.ReclaimPerVM, the default): each VM has a
 *     reclaim thread, and the scheduler only hands out requests (a batch
 *     each, to the VM the policy picks, and while that one is busy to the
 *     other VMs above their target or limit), then waits for one to end;
 *     so VMs are reclaimed concurrently and one VM's slow swap write holds
 *     no other VM.  With 0 the scheduler's thread reclaims one VM at a time.
 *   - The arithmetic and the state machine are pure functions, declared in
 *     sched_policy.h (not sched.h: that name is the system's), so that
 *     tests check them without threads.
 *
 * Invariants: consumption never exceeds the host's budget (host.c reserves
 * every frame before it is used); targets are within [reservation, limit];
 * the reservations of all VMs fit memsize less minFree (checked when set);
 * a fault held back in low is let through when the scheduler finds nothing
 * to reclaim, or after ADMIT_MAX_MS at most (counted in admit_overruns),
 * so that no guest waits for memory that cannot come.
 *
 * Locks (order: internal.h): sched_lock, a leaf, dropped before any work;
 * vms_lock to gather a view or sample and balance (no disk I/O under it:
 * the VMs of a reclaim view are pinned and the batch runs without it),
 * then whatever the mechanisms it calls take; a VM's rc.lock, a leaf, to
 * hand its reclaim thread a request (the thread drops it to work).  A
 * VM's reclaim thread is stopped by mv_vm_destroy once the VM is unlinked
 * and unpinned, after the batch it is in.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define SCHED_TICK_MS 50 /* state and limits are looked at this often */
#define SCHED_STUCK_MS 10 /* retry after finding nothing to reclaim */
/* A VM outgrowing its demand cap is balanced early, this often at most */
#define EARLY_BALANCE_MS 250
/* Large pages broken per tick at most: 64 MiB, ~10 ms of splitting */
#define LPAGE_BREAKS_PER_TICK 32
/* Large pages made per VM and Mem.BalancePeriod at most (~1 ms each) */
#define LPAGE_COLLAPSES_PER_PASS 8

/* Shares, reservation and limit through the API. */

/* The budget's pressure hook: wakes the scheduler now. */
static void sched_kick(struct mv_host *h)
{
	/* under pressure every fault's reservation kicks: one kick until
	 * the scheduler has looked is enough (it clears the flag under
	 * sched_lock before it sleeps, and does not sleep if it was set) */
	if (atomic_exchange(&h->sched_kicked, true))
		return;
	pthread_mutex_lock(&h->sched_lock);
	pthread_cond_signal(&h->sched_wake);
	pthread_mutex_unlock(&h->sched_lock);
}

/* Under sched_lock, before a wait: whether a kick came since the last
 * look (and the wait must not start). */
static bool sched_kicked(struct mv_host *h)
{
	return atomic_exchange(&h->sched_kicked, false);
}

/* A change of shares, reservation or limit: new targets now, not at the
 * end of the balance period. */
static void ask_balance(struct mv_host *h)
{
	atomic_store(&h->balance_asked, true);
	sched_kick(h);
}

static uint64_t sum_reservations(struct mv_host *h, struct mv_vm *except)
{
	uint64_t sum = 0;
	struct mv_vm *vm;

	for (vm = h->vms; vm; vm = vm->next)
		if (vm != except)
			sum += atomic_load(&vm->sched.min_pages);
	return sum;
}

int mv__sched_check_reservation(struct mv_host *h, struct mv_vm *vm,
				uint64_t min_pages)
{
	uint64_t room = h->memsize_pages - h->minfree_pages, others;

	pthread_mutex_lock(&h->vms_lock);
	others = sum_reservations(h, vm);
	pthread_mutex_unlock(&h->vms_lock);
	if (others + min_pages <= room)
		return 0;
	mv__host_api_msg(
		h,
		"VM %s: reservation of %llu MB does not fit: the host has %llu MB less minFree and %llu MB are reserved already",
		vm->name,
		(unsigned long long)(min_pages >> (20 - MV_PAGE_SHIFT)),
		(unsigned long long)(room >> (20 - MV_PAGE_SHIFT)),
		(unsigned long long)(others >> (20 - MV_PAGE_SHIFT)));
	return -EINVAL;
}

int mv_vm_set_shares(mv_vm *vm, uint64_t shares)
{
	if (!vm)
		return -EINVAL;
	if (!shares || shares > MV_SHARES_MAX) {
		mv__host_api_msg(vm->host,
				 "VM %s: shares must be 1 to %llu, not %llu",
				 vm->name, (unsigned long long)MV_SHARES_MAX,
				 (unsigned long long)shares);
		return -EINVAL;
	}
	atomic_store(&vm->sched.shares, shares);
	ask_balance(vm->host);
	return 0;
}

int mv_vm_set_reservation(mv_vm *vm, uint64_t bytes)
{
	uint64_t pages;
	int err;

	if (!vm)
		return -EINVAL;
	pages = bytes >> MV_PAGE_SHIFT;
	if (pages > atomic_load(&vm->sched.limit_pages)) {
		mv__host_api_msg(vm->host,
				 "VM %s: reservation is above the VM's limit",
				 vm->name);
		return -EINVAL;
	}
	err = mv__sched_check_reservation(vm->host, vm, pages);
	if (!err) {
		atomic_store(&vm->sched.min_pages, pages);
		ask_balance(vm->host);
	}
	return err;
}

int mv_vm_set_limit(mv_vm *vm, uint64_t bytes)
{
	uint64_t pages;

	if (!vm)
		return -EINVAL;
	pages = bytes ? bytes >> MV_PAGE_SHIFT : vm->npages;
	if (pages > vm->npages || pages < atomic_load(&vm->sched.min_pages)) {
		mv__host_api_msg(
			vm->host,
			"VM %s: limit must be between its reservation and its memsize",
			vm->name);
		return -EINVAL;
	}
	atomic_store(&vm->sched.limit_pages, pages);
	ask_balance(vm->host);
	return 0;
}

/* The scheduler thread. */

/* What the policy looks at, gathered under vms_lock. */
struct view {
	struct mv_vm **vm;
	struct mv__sched_vm *in;
	uint64_t *target;
	unsigned char *skip;
	unsigned n, cap;
};

static uint64_t free_pages(struct mv_host *h)
{
	uint64_t used = atomic_load(&h->consumed_pages);

	/* 0 while guests hold frames over the budget (host.c) */
	return used < h->memsize_pages ? h->memsize_pages - used : 0;
}

static unsigned frame_waiters(struct mv_host *h)
{
	return atomic_load(&h->frame_waiters);
}

static enum mv_mem_state update_state(struct mv_host *h)
{
	enum mv_mem_state s;

	s = mv__sched_state((enum mv_mem_state)atomic_load(&h->state),
			    free_pages(h), h->minfree_pages);
	atomic_store(&h->state, (int)s);
	return s;
}

/*
 * Sums the ZERO pages of the VMs that write what they read as zeros, for
 * the fault service's write-around guard (fault.c, zero_write_around):
 * were they all written, would the host run short?  One walk of the VM
 * list a tick (a counter kept on every page's change of state could not
 * tell writers from readers); a run given its frames moves pages from the
 * sum to consumed_pages, so between walks the guard is left behind only
 * by new reads and by reclaim.
 */
static void sum_zero_writers(struct mv_host *h)
{
	uint64_t sum = 0;

	pthread_mutex_lock(&h->vms_lock);
	for (struct mv_vm *vm = h->vms; vm; vm = vm->next)
		if (mv__zero_writer(vm, MV__ZERO_WRITER_PCT))
			sum += mv__zero_frameless(vm);
	pthread_mutex_unlock(&h->vms_lock);
	atomic_store_explicit(&h->zero_writer_pages, sum, memory_order_relaxed);
}

/* Open zero pages: harvested, closed or topped up, a VM at a time. */
static void zero_pass(struct mv_host *h, uint64_t now)
{
	pthread_mutex_lock(&h->vms_lock);
	for (struct mv_vm *vm = h->vms; vm; vm = vm->next)
		mv__zero_tick(vm, now);
	pthread_mutex_unlock(&h->vms_lock);
}

static void view_free(struct view *w)
{
	free(w->vm);
	free(w->in);
	free(w->target);
	free(w->skip);
}

/* What the policy sees of one VM at `now`.  Caller holds vms_lock. */
static void vm_input(struct mv_host *h, struct mv_vm *vm, uint64_t now,
		     struct mv__sched_vm *in)
{
	uint64_t young_ms = (uint64_t)h->settings.balance_period_s * 1000;
	uint64_t demand, mctl, ballooned;

	*in = (struct mv__sched_vm){
		.shares = atomic_load(&vm->sched.shares),
		.min_pages = atomic_load(&vm->sched.min_pages),
		.max_pages = atomic_load(&vm->sched.limit_pages),
		.alloc_pages = atomic_load(&vm->consumed_pages),
		.active_permille = mv__sample_active_permille(vm),
	};
	demand = mv__sample_demand_pages(vm);
	mv__sched_demand(in, demand, h->settings.demand_headroom_pct);
	/* not measured yet: capped by what it filled, once it has had a
	 * balance period to start (a remote VM's fills are its agent's,
	 * which says nothing until it has measured) */
	if (demand == UINT64_MAX && !vm->remote &&
	    now - vm->sched.born_ms >= young_ms)
		mv__sched_demand_unmeasured(in, mv__sample_filled_pages(vm));
	/* bound hard by its target, or with a balloon to deflate: shares
	 * alone while it uses all it holds */
	mv__balloon_sched_view(vm, &mctl, &ballooned);
	if (vm->remote || ballooned)
		mv__sched_uncap_if_full(in);
}

/* Caller holds vms_lock.  -ENOMEM leaves the view as it was. */
static int gather(struct mv_host *h, struct view *w)
{
	uint64_t now = mv__now_ms();
	struct mv_vm *vm;
	unsigned i = 0;

	if (h->nvms > w->cap) {
		struct view nw = {
			.vm = calloc(h->nvms, sizeof(*nw.vm)),
			.in = calloc(h->nvms, sizeof(*nw.in)),
			.target = calloc(h->nvms, sizeof(*nw.target)),
			.skip = calloc(h->nvms, sizeof(*nw.skip)),
			.cap = h->nvms,
		};

		if (!nw.vm || !nw.in || !nw.target || !nw.skip) {
			view_free(&nw);
			return -ENOMEM;
		}
		view_free(w);
		*w = nw;
	}
	for (vm = h->vms; vm; vm = vm->next, i++) {
		w->vm[i] = vm;
		w->skip[i] = 0;
		vm_input(h, vm, now, &w->in[i]);
	}
	w->n = i;
	return 0;
}

/*
 * Whether a VM whose demand cap bound its target at the last balance has
 * outgrown it since (mv__sched_cap_outgrown).  Takes vms_lock.
 */
static bool caps_outgrown(struct mv_host *h)
{
	uint64_t now = mv__now_ms(), c1;
	struct mv__sched_vm in;
	bool out = false;

	pthread_mutex_lock(&h->vms_lock);
	for (struct mv_vm *vm = h->vms; vm && !out; vm = vm->next) {
		c1 = atomic_load(&vm->sched.capped_at1);
		if (!c1)
			continue;
		vm_input(h, vm, now, &in);
		out = mv__sched_cap_outgrown(&in, c1 - 1);
	}
	pthread_mutex_unlock(&h->vms_lock);
	return out;
}

static void sample_all(struct mv_host *h)
{
	struct mv_vm *vm;

	pthread_mutex_lock(&h->vms_lock);
	for (vm = h->vms; vm; vm = vm->next)
		mv__sample_period(vm);
	pthread_mutex_unlock(&h->vms_lock);
}

/* New targets, and the balloon and swap targets that follow from them. */
static void balance(struct mv_host *h, struct view *w, enum mv_mem_state st)
{
	uint64_t avail = h->memsize_pages - h->minfree_pages, alloc, tgt;
	uint64_t pool = mv__share_frames(h);
	unsigned mech = mv__sched_mechanisms(st);
	uint64_t sched_mctl, actual, swcur, cap;
	struct mv_vm *vm;

	pthread_mutex_lock(&h->vms_lock);
	if (gather(h, w)) {
		pthread_mutex_unlock(&h->vms_lock);
		return;
	}
	/* shared frames are machine memory no VM is charged for, and no
	 * mechanism reclaims them: what the targets share is the rest */
	avail = avail > pool ? avail - pool : 0;
	mv__sched_targets(w->in, w->n, avail, h->settings.idle_tax_pct,
			  w->target);
	for (unsigned i = 0; i < w->n; i++) {
		vm = w->vm[i];
		alloc = w->in[i].alloc_pages;
		tgt = w->target[i];
		atomic_store(&vm->sched.sztgt_pages, tgt);
		cap = mv__sched_binding_cap(&w->in[i], tgt);
		atomic_store(&vm->sched.capped_at1,
			     cap == MV__SCHED_UNCAPPED ? 0 : cap + 1);
		swcur = atomic_load(&vm->swcur_pages);
		atomic_store(&vm->sched.swtgt_pages,
			     swcur + ((mech & MV__MECH_SWAP) && alloc > tgt ?
					      alloc - tgt :
					      0));
		mv__balloon_sched_view(vm, &sched_mctl, &actual);
		mv__balloon_set_sched_target(
			vm,
			mv__sched_balloon_target(alloc, tgt, actual, sched_mctl,
						 !!(mech & MV__MECH_BALLOON)));
	}
	pthread_mutex_unlock(&h->vms_lock);
}

/* Without a view (no memory for one), any VM with pages to give. */
static uint64_t reclaim_any(struct mv_host *h)
{
	uint64_t done = 0;
	struct mv_vm *vm;

	for (vm = h->vms; vm && !done; vm = vm->next)
		mv__reclaim_vm(vm, MV_RECLAIM_BATCH, &done);
	return done;
}

/*
 * One batch from the VM the policy picks, or the next if it has nothing
 * to give.  Returns pages reclaimed.  The view is gathered under vms_lock
 * and each VM in it pinned (sched_refs), so that the batch itself, with
 * its disk writes, runs without vms_lock: VM creation and destruction,
 * statistics and the share scanner never wait for a disk.  A VM being
 * destroyed waits for its pin to go (mv_vm_destroy), which is one batch.
 * Only when the view cannot grow (no memory) does the batch fall back to
 * reclaim_any under vms_lock.
 */
/*
 * The next victim of a view: as the policy says under `pressure`; with
 * none and `idle` (soft state), a VM holding more than its demand cap, and
 * then only down to its cap (*floor).
 */
static int pick_victim(struct mv_host *h, struct view *w, int pressure,
		       bool idle, uint64_t *floor)
{
	unsigned tax = h->settings.idle_tax_pct;
	int i = mv__sched_victim(w->in, w->skip, w->n, tax, pressure);
	const struct mv__sched_vm *v;

	if (i < 0 && idle && !pressure) {
		i = mv__sched_idle_victim(w->in, w->skip, w->n, tax);
		if (i >= 0) {
			v = &w->in[i];
			*floor = v->demand_pages > v->min_pages ?
					 v->demand_pages :
					 v->min_pages;
			return i;
		}
	}
	if (i >= 0)
		*floor = w->in[i].alloc_pages > w->in[i].max_pages ?
				 w->in[i].max_pages :
				 w->in[i].min_pages;
	return i;
}

static uint64_t reclaim_batch(struct mv_host *h, struct view *w, int pressure,
			      bool idle)
{
	uint64_t done = 0, want, floor = 0;
	int i;

	pthread_mutex_lock(&h->vms_lock);
	if (gather(h, w)) {
		done = pressure ? reclaim_any(h) : 0;
		pthread_mutex_unlock(&h->vms_lock);
		return done;
	}
	for (unsigned k = 0; k < w->n; k++)
		atomic_fetch_add_explicit(&w->vm[k]->sched_refs, 1,
					  memory_order_acquire);
	pthread_mutex_unlock(&h->vms_lock);
	while ((i = pick_victim(h, w, pressure, idle, &floor)) >= 0) {
		want = w->in[i].alloc_pages - floor;
		if (want > MV_RECLAIM_BATCH)
			want = MV_RECLAIM_BATCH;
		mv__reclaim_vm(w->vm[i], want, &done);
		if (done)
			break;
		w->skip[i] = 1;
	}
	for (unsigned k = 0; k < w->n; k++)
		atomic_fetch_sub_explicit(&w->vm[k]->sched_refs, 1,
					  memory_order_release);
	return done;
}

/* A fresh view whose VMs are pinned (see reclaim_batch); false without
 * one (no memory). */
static bool pin_view(struct mv_host *h, struct view *w)
{
	pthread_mutex_lock(&h->vms_lock);
	if (gather(h, w)) {
		pthread_mutex_unlock(&h->vms_lock);
		return false;
	}
	for (unsigned k = 0; k < w->n; k++)
		atomic_fetch_add_explicit(&w->vm[k]->sched_refs, 1,
					  memory_order_acquire);
	pthread_mutex_unlock(&h->vms_lock);
	return true;
}

static void unpin_view(struct view *w)
{
	for (unsigned k = 0; k < w->n; k++)
		atomic_fetch_sub_explicit(&w->vm[k]->sched_refs, 1,
					  memory_order_release);
}

enum break_mode {
	BREAK_LIMIT, /* VMs above their limit only (any state) */
	BREAK_TARGET, /* VMs above their target or limit (soft, hard, low) */
	BREAK_ANY, /* reclaim found nothing small: every VM */
};

/*
 * Under pressure, large pages go first (ESX: "large pages are broken
 * before swapping"): those of the VMs above their target (or limit), the
 * most idle first, as many as cover what each is above, so that sharing,
 * the balloon, compression and swapping find small pages.  BREAK_ANY:
 * reclaim found nothing at all, so every VM counts as above a target of
 * 0.  Returns regions broken.
 */
static uint64_t break_large(struct mv_host *h, struct view *w,
			    enum break_mode mode)
{
	uint64_t total = 0, *large, *out, tgt, lim;

	if (!atomic_load(&h->lpage_regions))
		return 0;
	if (!pin_view(h, w))
		return 0;
	large = calloc(w->n ? w->n : 1, sizeof(*large));
	out = calloc(w->n ? w->n : 1, sizeof(*out));
	if (large && out) {
		for (unsigned i = 0; i < w->n; i++) {
			tgt = atomic_load(&w->vm[i]->sched.sztgt_pages);
			lim = w->in[i].max_pages;
			w->target[i] = mode == BREAK_ANY   ? 0 :
				       mode == BREAK_LIMIT ? lim :
				       tgt < lim	   ? tgt :
							     lim;
			large[i] = atomic_load(&w->vm[i]->lp.regions);
		}
		mv__sched_lpage_breaks(w->in, w->target, large, w->n,
				       LPAGE_BREAKS_PER_TICK, out);
		for (unsigned i = 0; i < w->n; i++)
			total += mv__lpage_break_some(w->vm[i],
						      (unsigned)out[i]);
	}
	free(large);
	free(out);
	unpin_view(w);
	return total;
}

/*
 * In the high state, once per Mem.BalancePeriod: each VM's regions found
 * resident and private on this pass and the last become large pages, a
 * few per VM (a collapse copies 2 MiB), stopping as soon as a fault waits
 * for a frame.
 */
static void collapse_pass(struct mv_host *h, struct view *w)
{
	if (!h->settings.alloc_guest_large_page || !pin_view(h, w))
		return;
	for (unsigned i = 0; i < w->n && !frame_waiters(h); i++)
		mv__lpage_pass(w->vm[i], LPAGE_COLLAPSES_PER_PASS);
	unpin_view(w);
}

/*
 * Per-VM reclaim (Mem.ReclaimPerVM).  Each VM has a reclaim thread that
 * takes requests from the scheduler: "take `want` pages" (one batch at a
 * time, as the scheduler's own loop did).  The scheduler keeps the policy
 * (which VM, how many pages, when to stop) and no longer waits for the
 * work: it asks the next VM while the first one's thread moves pages out
 * and writes them, so reclaim runs for as many VMs at once as there are
 * CPUs and disk queues to serve them, and one VM's slow swap file holds
 * only that VM's reclaim.  The thread counts what it reclaimed, notes a
 * request that found nothing (the scheduler passes that VM by for the rest
 * of the tick), and moves reclaim_gen on so that the scheduler, waiting
 * for work to end, looks again.
 */
static void *reclaimer_main(void *arg)
{
	struct mv_vm *vm = arg;
	struct mv__reclaimer *rc = &vm->rc;
	struct mv_host *h = vm->host;
	uint64_t want, done;
	struct timespec ts;
	unsigned tick, aff_gen = 0;

	pthread_setname_np(pthread_self(), "mv-reclaim"); /* for perf, top */
	pthread_mutex_lock(&rc->lock);
	for (;;) {
		/* idle: bounded waits, so a lost signal costs a second */
		while (!rc->stop && !rc->want) {
			mv__deadline_ms(&ts, 1000);
			pthread_cond_timedwait(&rc->wake, &rc->lock, &ts);
		}
		if (rc->stop)
			break;
		want = rc->want;
		tick = rc->tick;
		rc->want = 0;
		pthread_mutex_unlock(&rc->lock);

		/* beside the VM's vCPUs, whose CPUs pay for it (affinity.c) */
		mv__affinity_follow(vm, &aff_gen);
		mv__reclaim_vm(vm, want, &done);
		if (done) {
			atomic_store(&h->sched_stuck, false);
			atomic_fetch_add_explicit(&h->reclaim_pages, done,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&rc->pages, done,
						  memory_order_relaxed);
		}
		atomic_fetch_add_explicit(&rc->requests, 1,
					  memory_order_relaxed);

		pthread_mutex_lock(&rc->lock);
		rc->busy = false;
		if (!done)
			rc->empty_tick = tick;
		pthread_mutex_unlock(&rc->lock);
		/* not sched_kick(): a fault's kick may have set the flag, and
		 * the scheduler, waiting for this, would not hear it */
		pthread_mutex_lock(&h->sched_lock);
		atomic_fetch_add(&h->reclaim_gen, 1);
		pthread_cond_broadcast(&h->sched_wake);
		pthread_mutex_unlock(&h->sched_lock);
		pthread_mutex_lock(&rc->lock);
	}
	pthread_mutex_unlock(&rc->lock);
	return NULL;
}

int mv__reclaimer_start(struct mv_vm *vm)
{
	struct mv__reclaimer *rc = &vm->rc;
	int err;

	if (!vm->host->settings.reclaim_per_vm)
		return 0;
	pthread_mutex_init(&rc->lock, NULL);
	err = mv__cond_init_monotonic(&rc->wake);
	if (err)
		goto fail_lock;
	err = -pthread_create(&rc->thread, NULL, reclaimer_main, vm);
	if (err)
		goto fail_cond;
	rc->started = true;
	return 0;

fail_cond:
	pthread_cond_destroy(&rc->wake);
fail_lock:
	pthread_mutex_destroy(&rc->lock);
	return err;
}

void mv__reclaimer_stop(struct mv_vm *vm)
{
	struct mv__reclaimer *rc = &vm->rc;

	if (!rc->started)
		return;
	pthread_mutex_lock(&rc->lock);
	rc->stop = true;
	pthread_cond_signal(&rc->wake);
	pthread_mutex_unlock(&rc->lock);
	pthread_join(rc->thread, NULL);
	pthread_cond_destroy(&rc->wake);
	pthread_mutex_destroy(&rc->lock);
	rc->started = false;
}

/* Whether VM k's thread can take a request in this tick. */
static bool reclaimer_idle(struct mv_vm *vm, unsigned tick)
{
	struct mv__reclaimer *rc = &vm->rc;
	bool idle;

	pthread_mutex_lock(&rc->lock);
	idle = !rc->busy && rc->empty_tick != tick;
	pthread_mutex_unlock(&rc->lock);
	return idle;
}

static void reclaimer_ask(struct mv_vm *vm, uint64_t want, unsigned tick)
{
	struct mv__reclaimer *rc = &vm->rc;

	pthread_mutex_lock(&rc->lock);
	rc->want = want;
	rc->tick = tick;
	rc->busy = true;
	pthread_cond_signal(&rc->wake);
	pthread_mutex_unlock(&rc->lock);
}

/* Requests in flight (asked and not yet finished) among the view's VMs. */
static unsigned reclaimers_busy(struct view *w)
{
	unsigned n = 0;

	for (unsigned k = 0; k < w->n; k++) {
		pthread_mutex_lock(&w->vm[k]->rc.lock);
		n += w->vm[k]->rc.busy;
		pthread_mutex_unlock(&w->vm[k]->rc.lock);
	}
	return n;
}

/*
 * One round of dispatch: requests for the VMs the policy picks, as many
 * as have an idle reclaim thread, each a batch, as reclaim_batch would
 * take them one after the other.  The policy's first choice is asked if
 * its thread is idle; while it is busy, the next VMs are asked only if
 * they are above their target (or limit): the ones the policy would come
 * to anyway, and not one that merely has the next lowest rho.  Victims
 * and floors are pick_victim's (with `idle`, soft: memory above demand
 * caps, down to the caps).  Returns
 * requests made; *busy gets the requests in flight after it (0 and 0:
 * nothing to take from anyone this tick).
 */
static unsigned dispatch_round(struct mv_host *h, struct view *w, int pressure,
			       bool idle, unsigned tick, unsigned *busy)
{
	uint64_t want, floor = 0, tgt;
	unsigned asked = 0;
	bool first = true;
	int i;

	*busy = 0;
	if (!pin_view(h, w))
		return 0;
	for (unsigned k = 0; k < w->n; k++)
		w->skip[k] = !w->vm[k]->rc.started;
	while ((i = pick_victim(h, w, pressure, idle, &floor)) >= 0) {
		w->skip[i] = 1;
		if (!reclaimer_idle(w->vm[i], tick)) {
			first = false;
			continue;
		}
		tgt = atomic_load(&w->vm[i]->sched.sztgt_pages);
		if (tgt > w->in[i].max_pages)
			tgt = w->in[i].max_pages;
		if (!first && w->in[i].alloc_pages <= tgt)
			continue;
		want = w->in[i].alloc_pages - floor;
		if (want > MV_RECLAIM_BATCH)
			want = MV_RECLAIM_BATCH;
		reclaimer_ask(w->vm[i], want, tick);
		asked++;
		first = false;
	}
	*busy = reclaimers_busy(w);
	unpin_view(w);
	return asked;
}

/*
 * Waits (SCHED_STUCK_MS at most) for a reclaim thread to finish a request,
 * or the scheduler to be stopped.  Faults' kicks do not end it: while
 * every thread it could ask is busy, another look finds nothing new, and
 * under pressure every fault kicks.
 */
static void dispatch_wait(struct mv_host *h, uint64_t gen)
{
	struct timespec ts;

	mv__deadline_ms(&ts, SCHED_STUCK_MS);
	pthread_mutex_lock(&h->sched_lock);
	while (atomic_load(&h->reclaim_gen) == gen && !h->sched_stop &&
	       pthread_cond_timedwait(&h->sched_wake, &h->sched_lock, &ts) !=
		       ETIMEDOUT)
		;
	pthread_mutex_unlock(&h->sched_lock);
}

/*
 * reclaim() with per-VM reclaim threads: for a tick at most, while there
 * is pressure (or a VM above its limit), requests go to the VMs' threads;
 * the scheduler waits for one to finish before it asks again.  false when
 * there was pressure and no VM had anything to give.
 */
static bool reclaim_per_vm(struct mv_host *h, struct view *w)
{
	uint64_t until = mv__now_ms() + SCHED_TICK_MS, gen;
	uint64_t before = atomic_load(&h->reclaim_pages);
	/* tick numbers only need to differ from one call to the next (of
	 * any host): a VM's empty_tick is compared with them */
	static _Atomic unsigned ticks;
	unsigned tick = atomic_fetch_add(&ticks, 1) + 1, busy = 0, asked;
	enum mv_mem_state st;
	int pressure = 0;
	bool stop;

	st = update_state(h);
	break_large(h, w,
		    mv__sched_lpage_breaks_in(st) || frame_waiters(h) ?
			    BREAK_TARGET :
			    BREAK_LIMIT);
	while (mv__now_ms() < until) {
		gen = atomic_load(&h->reclaim_gen);
		st = update_state(h);
		pressure = (mv__sched_mechanisms(st) & MV__MECH_SWAP) ||
			   frame_waiters(h);
		asked = dispatch_round(h, w, pressure,
				       mv__sched_mechanisms(st) & MV__MECH_IDLE,
				       tick, &busy);
		if (!asked && !busy) {
			/* nothing small left to take: break more, then try
			 * again, this time with every VM */
			if (pressure && break_large(h, w, BREAK_ANY)) {
				tick = atomic_fetch_add(&ticks, 1) + 1;
				continue;
			}
			break;
		}
		dispatch_wait(h, gen);
		pthread_mutex_lock(&h->sched_lock);
		stop = h->sched_stop;
		pthread_mutex_unlock(&h->sched_lock);
		if (stop)
			return true;
	}
	/* requests still in flight (a slow disk) are not "nothing" */
	if (!pressure || busy || atomic_load(&h->reclaim_pages) != before) {
		if (!busy)
			atomic_store(&h->sched_stuck, false);
		return true;
	}
	/* with remote VMs only, their agents reclaim to their grants: a
	 * budget all granted is not "nothing could be swapped out" */
	if (!atomic_exchange(&h->sched_stuck, true) && free_pages(h) == 0 &&
	    atomic_load_explicit(&h->local_vms, memory_order_relaxed))
		mv__host_set_msg(
			h,
			"host out of machine memory and nothing could be swapped out (see swap errors): faults wait, then go over the budget");
	return false;
}

static bool reclaim(struct mv_host *h, struct view *w)
{
	uint64_t got, until = mv__now_ms() + SCHED_TICK_MS;
	enum mv_mem_state st;
	int pressure = 0;

	if (h->settings.reclaim_per_vm)
		return reclaim_per_vm(h, w);
	st = update_state(h);
	break_large(h, w,
		    mv__sched_lpage_breaks_in(st) || frame_waiters(h) ?
			    BREAK_TARGET :
			    BREAK_LIMIT);
	/* a tick at most: sampling and balancing must not wait on pressure */
	while (mv__now_ms() < until) {
		st = update_state(h);
		pressure = (mv__sched_mechanisms(st) & MV__MECH_SWAP) ||
			   frame_waiters(h);
		got = reclaim_batch(h, w, pressure,
				    mv__sched_mechanisms(st) & MV__MECH_IDLE);
		/* nothing small left to take: break more, then try again */
		if (!got && pressure && break_large(h, w, BREAK_ANY))
			continue;
		if (!got)
			goto nothing;
		atomic_store(&h->sched_stuck, false);
		atomic_fetch_add_explicit(&h->reclaim_pages, got,
					  memory_order_relaxed);
	}
	return true;
nothing:
	if (!pressure) {
		atomic_store(&h->sched_stuck, false);
		return true;
	}
	/* with remote VMs only, their agents reclaim to their grants: a
	 * budget all granted is not "nothing could be swapped out" */
	if (!atomic_exchange(&h->sched_stuck, true) && free_pages(h) == 0 &&
	    atomic_load_explicit(&h->local_vms, memory_order_relaxed))
		mv__host_set_msg(
			h,
			"host out of machine memory and nothing could be swapped out (see swap errors): faults wait, then go over the budget");
	return false;
}

/* Idle time is when fragmented compression caches give frames back. */
static void compact_caches(struct mv_host *h)
{
	struct mv_vm *vm;

	pthread_mutex_lock(&h->vms_lock);
	for (vm = h->vms; vm; vm = vm->next)
		mv__zcache_compact(vm);
	pthread_mutex_unlock(&h->vms_lock);
}

static bool needed(struct mv_host *h)
{
	enum mv_mem_state s =
		mv__sched_state((enum mv_mem_state)atomic_load(&h->state),
				free_pages(h), h->minfree_pages);

	return (mv__sched_mechanisms(s) & MV__MECH_SWAP) || frame_waiters(h);
}

static void *sched_main(void *arg)
{
	struct mv_host *h = arg;
	uint64_t sample_ms = (uint64_t)h->settings.sample_period_s * 1000;
	uint64_t balance_ms = (uint64_t)h->settings.balance_period_s * 1000;
	/* the first period starts a second in, once guests hold pages to
	 * sample, not a whole period in: until a period ends every VM counts
	 * as fully active and the idle tax cannot act; a period of 0 keeps
	 * it that way for good */
	uint64_t now = mv__now_ms(),
		 next_sample = now + (sample_ms < 1000 ? sample_ms : 1000);
	uint64_t next_balance = now, next_lpage = now, next_early = now;
	enum mv_mem_state st, balanced = MV_STATE_HIGH;
	struct view w = { 0 };
	struct timespec ts;
	bool ok = true, due, moved, asked;

	pthread_setname_np(pthread_self(), "mv-sched"); /* for perf, top */
	pthread_mutex_lock(&h->sched_lock);
	while (!h->sched_stop) {
		pthread_mutex_unlock(&h->sched_lock);
		now = mv__now_ms();
		st = update_state(h);
		sum_zero_writers(h);
		zero_pass(h, now);
		if (sample_ms && now >= next_sample) {
			sample_all(h);
			next_sample = now + sample_ms;
		}
		due = now >= next_balance;
		moved = st != balanced;
		asked = atomic_exchange(&h->balance_asked, false);
		if (due || moved || asked ||
		    (now >= next_early && caps_outgrown(h))) {
			atomic_fetch_add(&h->balances, 1);
			if (!due)
				atomic_fetch_add(moved ? &h->balances_state :
						 asked ? &h->balances_asked :
							 &h->balances_early,
						 1);
			balance(h, &w, st);
			next_balance = now + balance_ms;
			next_early = now + EARLY_BALANCE_MS;
			balanced = st;
		}
		if (mv__sched_lpage_collapses(st) && now >= next_lpage) {
			collapse_pass(h, &w);
			next_lpage = now + balance_ms;
		}
		ok = reclaim(h, &w);
		pthread_mutex_lock(&h->sched_lock);
		if (h->sched_stop)
			break;
		mv__deadline_ms(&ts, ok ? SCHED_TICK_MS : SCHED_STUCK_MS);
		if (ok && needed(h))
			continue;
		/* a kick since the last look: look again (stuck, wait
		 * anyway: a fault kicks on every try) */
		if (sched_kicked(h) && ok)
			continue;
		if (!ok)
			pthread_cond_timedwait(&h->sched_wake, &h->sched_lock,
					       &ts);
		else if (pthread_cond_timedwait(&h->sched_wake, &h->sched_lock,
						&ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&h->sched_lock);
			compact_caches(h);
			pthread_mutex_lock(&h->sched_lock);
		}
	}
	pthread_mutex_unlock(&h->sched_lock);
	view_free(&w);
	return NULL;
}

int mv__sched_start(struct mv_host *h)
{
	int err;

	pthread_mutex_init(&h->sched_lock, NULL);
	err = mv__cond_init_monotonic(&h->sched_wake);
	if (err)
		goto fail_lock;
	err = -pthread_create(&h->sched, NULL, sched_main, h);
	if (err)
		goto fail_cond;
	h->sched_started = true;
	mv__budget_set_pressure_hook(h, sched_kick);
	return 0;

fail_cond:
	pthread_cond_destroy(&h->sched_wake);
fail_lock:
	pthread_mutex_destroy(&h->sched_lock);
	return err;
}

void mv__sched_stop(struct mv_host *h)
{
	if (!h->sched_started)
		return;
	mv__budget_set_pressure_hook(h, NULL);
	pthread_mutex_lock(&h->sched_lock);
	h->sched_stop = true;
	pthread_cond_signal(&h->sched_wake);
	pthread_mutex_unlock(&h->sched_lock);
	pthread_join(h->sched, NULL);
	pthread_cond_destroy(&h->sched_wake);
	pthread_mutex_destroy(&h->sched_lock);
	h->sched_started = false;
}

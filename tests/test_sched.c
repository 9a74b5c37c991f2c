// SPDX-License-Identifier: MIT
/*
 * test_sched.c - the memory scheduler: targets from shares, reservation
 * and limit, the idle memory tax, the free-memory states with their
 * hysteresis and mechanisms (pure functions, no threads), then sampling
 * and limits on a live host.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"
#include "inject.h"
#include "internal.h"

#define MiB (1ull << 20)

static struct mv__sched_vm vm_of(uint64_t shares, uint64_t alloc,
				 uint32_t active_permille)
{
	return (struct mv__sched_vm){ .shares = shares,
				      .min_pages = 0,
				      .max_pages = 1000,
				      .alloc_pages = alloc,
				      .active_permille = active_permille };
}

static void test_rho_is_shares_per_taxed_page(void **state)
{
	struct mv__sched_vm v = vm_of(1000, 400, 250);

	(void)state;
	/* S / (P * (f + k (1 - f))), k = 1 / (1 - 0.75) = 4 */
	assert_true(fabs(mv__sched_rho(&v, 400, 75) -
			 1000.0 / (400 * (0.25 + 4 * 0.75))) < 1e-9);
	assert_true(fabs(mv__sched_rho(&v, 400, 0) - 1000.0 / 400) < 1e-9);
}

static void test_targets_are_limits_when_memory_suffices(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(10, 500, 1000),
				     vm_of(10, 500, 1000) };
	uint64_t t[2];

	(void)state;
	mv__sched_targets(v, 2, 5000, 75, t);
	assert_int_equal(t[0], 1000);
	assert_int_equal(t[1], 1000);
}

static void test_targets_split_by_shares(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(100, 500, 1000),
				     vm_of(200, 500, 1000) };
	uint64_t t[2];

	(void)state;
	mv__sched_targets(v, 2, 600, 0, t);
	th_assert_near(t[0], 200, 1);
	th_assert_near(t[1], 400, 1);
	assert_true(t[0] + t[1] <= 600);
}

static void test_target_never_below_reservation(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(10, 500, 1000),
				     vm_of(1000, 500, 1000) };
	uint64_t t[2];

	(void)state;
	v[0].min_pages = 300;
	mv__sched_targets(v, 2, 800, 0, t);
	assert_int_equal(t[0], 300);
	th_assert_near(t[1], 500, 1);
}

static void test_target_never_above_limit(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(1000, 500, 1000),
				     vm_of(10, 500, 1000) };
	uint64_t t[2];

	(void)state;
	v[0].max_pages = 100;
	mv__sched_targets(v, 2, 800, 0, t);
	assert_int_equal(t[0], 100);
	th_assert_near(t[1], 700, 1);
}

static void test_without_tax_idleness_does_not_matter(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(10, 500, 1000), vm_of(10, 500, 0) };
	uint64_t t[2];

	(void)state;
	mv__sched_targets(v, 2, 800, 0, t);
	th_assert_near(t[0], 400, 1);
	th_assert_near(t[1], 400, 1);
}

static void test_idle_tax_takes_more_from_idle_vm(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(10, 500, 1000), vm_of(10, 500, 0) };
	uint64_t t[2];

	(void)state;
	/* k = 4: idle Sx/4, active 500 + (Sx - 500)/4, sum 800: Sx = 850 */
	mv__sched_targets(v, 2, 800, 75, t);
	th_assert_near(t[1], 212, 1);
	th_assert_near(t[0], 587, 1);
	assert_true(t[0] + t[1] <= 800);
}

/* Two alike VMs using more than they hold (both fully active, faulting in
 * more than they have), one of them holding less, as happens when one
 * filled faster: the tax must not keep the poorer one poorer. */
static void
test_alike_vms_using_more_than_they_hold_get_alike_targets(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(10, 250, 1000),
				     vm_of(10, 229, 1000) };
	uint64_t t[2];

	(void)state;
	/* measured: each filled far more pages than it holds */
	mv__sched_demand(&v[0], 5000, 25);
	mv__sched_demand(&v[1], 5000, 25);
	mv__sched_targets(v, 2, 480, 75, t);
	th_assert_near(t[0], 240, 1);
	th_assert_near(t[1], 240, 1);
	/* not yet measured: all active, so not taxed either */
	mv__sched_demand(&v[0], UINT64_MAX, 25);
	mv__sched_demand(&v[1], UINT64_MAX, 25);
	mv__sched_targets(v, 2, 480, 75, t);
	th_assert_near(t[0], 240, 1);
	th_assert_near(t[1], 240, 1);
	/* with f * P as their only active pages, every page the poorer one
	 * would get is taxed: 250 + 4 (t1 - 229) ... it stays poorer */
	v[0].used_pages = v[1].used_pages = 0;
	mv__sched_targets(v, 2, 480, 75, t);
	assert_true(t[1] + 10 < t[0]);
}

static void
test_pages_a_vm_uses_beyond_what_it_holds_are_not_taxed(void **state)
{
	struct mv__sched_vm v = vm_of(10, 400, 1000);

	(void)state;
	v.used_pages = 600;
	assert_true(fabs(mv__sched_cost(&v, 600, 75) - 600) < 1e-9);
	/* beyond what it uses, taxed: 600 + 4 * 100 */
	assert_true(fabs(mv__sched_cost(&v, 700, 75) - 1000) < 1e-9);
	/* half active, using 300: f * P = 200 is less, so 300 are active */
	v.active_permille = 500;
	v.used_pages = 300;
	assert_true(fabs(mv__sched_cost(&v, 400, 75) - 700) < 1e-9);
	/* never beyond its limit (max_pages 1000) */
	v.used_pages = UINT64_MAX;
	assert_true(fabs(mv__sched_cost(&v, 1000, 75) - 1000) < 1e-9);
}

static void test_victim_is_lowest_rho(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(10, 500, 1000),
				     vm_of(10, 500, 100) };
	unsigned char skip[2] = { 0, 0 };

	(void)state;
	assert_int_equal(mv__sched_victim(v, skip, 2, 75, 1), 1);
	v[1].active_permille = 1000;
	v[0].shares = 5;
	assert_int_equal(mv__sched_victim(v, skip, 2, 75, 1), 0);
	skip[0] = 1;
	assert_int_equal(mv__sched_victim(v, skip, 2, 75, 1), 1);
}

static void test_victim_skips_vms_at_reservation(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(10, 500, 1000), vm_of(10, 500, 0) };
	unsigned char skip[2] = { 0, 0 };

	(void)state;
	v[1].min_pages = 500;
	assert_int_equal(mv__sched_victim(v, skip, 2, 75, 1), 0);
	v[0].min_pages = 500;
	assert_int_equal(mv__sched_victim(v, skip, 2, 75, 1), -1);
}

static void test_vm_above_limit_is_victim_without_pressure(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(10, 500, 1000), vm_of(10, 500, 0) };
	unsigned char skip[2] = { 0, 0 };

	(void)state;
	assert_int_equal(mv__sched_victim(v, skip, 2, 75, 0), -1);
	v[0].max_pages = 400;
	assert_int_equal(mv__sched_victim(v, skip, 2, 75, 0), 0);
	assert_int_equal(mv__sched_victim(v, skip, 2, 75, 1), 0);
}

static void test_states_follow_esxi_thresholds(void **state)
{
	static const struct {
		uint64_t free;
		enum mv_mem_state want;
	} c[] = {
		{ 4000, MV_STATE_HIGH },  { 3999, MV_STATE_CLEAR },
		{ 1000, MV_STATE_CLEAR }, { 999, MV_STATE_SOFT },
		{ 640, MV_STATE_SOFT },	  { 639, MV_STATE_HARD },
		{ 320, MV_STATE_HARD },	  { 319, MV_STATE_LOW },
		{ 0, MV_STATE_LOW },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		assert_int_equal(mv__sched_state(MV_STATE_HIGH, c[i].free,
						 1000),
				 c[i].want);
}

static void test_worse_state_is_entered_at_once(void **state)
{
	(void)state;
	assert_int_equal(mv__sched_state(MV_STATE_HIGH, 10, 1000),
			 MV_STATE_LOW);
	assert_int_equal(mv__sched_state(MV_STATE_SOFT, 500, 1000),
			 MV_STATE_HARD);
}

static void test_better_state_needs_the_margin(void **state)
{
	(void)state;
	/* soft is left for clear at 100% + 8% of minFree, not at 100% */
	assert_int_equal(mv__sched_state(MV_STATE_SOFT, 1000, 1000),
			 MV_STATE_SOFT);
	assert_int_equal(mv__sched_state(MV_STATE_SOFT, 1079, 1000),
			 MV_STATE_SOFT);
	assert_int_equal(mv__sched_state(MV_STATE_SOFT, 1080, 1000),
			 MV_STATE_CLEAR);
	assert_int_equal(mv__sched_state(MV_STATE_LOW, 399, 1000),
			 MV_STATE_LOW);
	assert_int_equal(mv__sched_state(MV_STATE_LOW, 400, 1000),
			 MV_STATE_HARD);
	assert_int_equal(mv__sched_state(MV_STATE_HARD, 719, 1000),
			 MV_STATE_HARD);
	assert_int_equal(mv__sched_state(MV_STATE_HARD, 720, 1000),
			 MV_STATE_SOFT);
	/* several states at once when free memory jumps */
	assert_int_equal(mv__sched_state(MV_STATE_LOW, 5000, 1000),
			 MV_STATE_HIGH);
}

static void test_mechanisms_by_state(void **state)
{
	(void)state;
	for (int s = MV_STATE_HIGH; s <= MV_STATE_LOW; s++)
		assert_true(mv__sched_mechanisms(s) & MV__MECH_SHARE);
	assert_int_equal(mv__sched_mechanisms(MV_STATE_HIGH), MV__MECH_SHARE);
	assert_int_equal(mv__sched_mechanisms(MV_STATE_CLEAR), MV__MECH_SHARE);
	assert_int_equal(mv__sched_mechanisms(MV_STATE_SOFT),
			 MV__MECH_SHARE | MV__MECH_BALLOON | MV__MECH_IDLE);
	assert_int_equal(mv__sched_mechanisms(MV_STATE_HARD),
			 MV__MECH_SHARE | MV__MECH_SWAP | MV__MECH_IDLE);
	assert_int_equal(mv__sched_mechanisms(MV_STATE_LOW),
			 MV__MECH_SHARE | MV__MECH_SWAP | MV__MECH_BLOCK |
				 MV__MECH_IDLE);
}

static void test_balloon_target_grows_only_when_allowed(void **state)
{
	(void)state;
	/* 100 above target with 20 ballooned: balloon 120 */
	assert_int_equal(mv__sched_balloon_target(600, 500, 20, 20, 1), 120);
	assert_int_equal(mv__sched_balloon_target(600, 500, 20, 20, 0), 20);
}

static void test_balloon_target_shrinks_below_target(void **state)
{
	(void)state;
	assert_int_equal(mv__sched_balloon_target(450, 500, 80, 80, 0), 30);
	assert_int_equal(mv__sched_balloon_target(300, 500, 80, 80, 1), 0);
}

static void test_moving_average_moves_by_weight(void **state)
{
	(void)state;
	assert_int_equal(mv__moving_average(1000, 0, 2), 500);
	assert_int_equal(mv__moving_average(1000, 0, 8), 875);
	assert_int_equal(mv__moving_average(0, 1000, 8), 125);
}

static void test_shares_levels_are_esx_per_mb(void **state)
{
	(void)state;
	assert_int_equal(mv_shares_for(MV_SHARES_LOW, 100 * MiB), 500);
	assert_int_equal(mv_shares_for(MV_SHARES_NORMAL, 100 * MiB), 1000);
	assert_int_equal(mv_shares_for(MV_SHARES_HIGH, 100 * MiB), 2000);
}

static void test_vm_settings_out_of_range_are_refused(void **state)
{
	struct mv_vm_config cfg;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm, *bad = NULL;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "a", 16 * MiB);
	assert_int_equal(mv_vm_set_shares(vm, 0), -EINVAL);
	assert_int_equal(mv_vm_set_shares(vm, MV_SHARES_MAX + 1), -EINVAL);
	assert_int_equal(mv_vm_set_limit(vm, 32 * MiB), -EINVAL);
	assert_int_equal(mv_vm_set_reservation(vm, 60 * MiB), -EINVAL);
	assert_int_equal(mv_vm_set_limit(vm, 8 * MiB), 0);
	assert_int_equal(mv_vm_set_reservation(vm, 12 * MiB), -EINVAL);
	assert_int_equal(mv_vm_set_reservation(vm, 4 * MiB), 0);
	assert_int_equal(mv_vm_set_limit(vm, 2 * MiB), -EINVAL);
	assert_int_equal(mv_vm_set_shares(vm, 1234), 0);
	assert_int_equal(mv_vm_stats(vm, &st), 0);
	assert_int_equal(st.shares, 1234);
	assert_int_equal(st.reservation_pages, 4 * MiB / MV_PAGE_SIZE);
	assert_int_equal(st.limit_pages, 8 * MiB / MV_PAGE_SIZE);
	/* a second VM whose reservation would not fit beside the first */
	mv_vm_config_init(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "b");
	cfg.memsize_bytes = 64 * MiB;
	cfg.reservation_bytes = 58 * MiB;
	assert_int_equal(mv_vm_create(t.host, &cfg, &bad), -EINVAL);
	assert_null(bad);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

struct toucher {
	mv_vm *vm;
	atomic_bool stop;
	pthread_t th;
	bool running;
};

/* Stops and joins the toucher's thread if it runs (also th_teardown's, so
 * that a failed assert does not leave it touching a destroyed VM). */
static void toucher_stop(void *arg)
{
	struct toucher *t = arg;

	if (!t->running)
		return;
	atomic_store(&t->stop, true);
	pthread_join(t->th, NULL);
	t->running = false;
}

/* t is static in its test, so that th_teardown can reach it. */
static void toucher_start(struct toucher *t, mv_vm *vm, void *(*main)(void *))
{
	*t = (struct toucher){ .vm = vm };
	th_at_teardown(toucher_stop, t);
	assert_int_equal(pthread_create(&t->th, NULL, main, t), 0);
	t->running = true;
}

/* Reads every page over and over: a VM whose memory is all active. */
static void *touch_main(void *arg)
{
	struct toucher *t = arg;
	volatile uint8_t *m = mv_vm_mem(t->vm);
	uint64_t n = mv_vm_memsize(t->vm) / MV_PAGE_SIZE, sum = 0;

	while (!atomic_load(&t->stop))
		for (uint64_t p = 0; p < n; p++)
			sum += m[p * MV_PAGE_SIZE];
	return (void *)(uintptr_t)sum;
}

static uint64_t sampled(mv_vm *vm)
{
	struct mv_vm_stats st;

	assert_int_equal(mv_vm_stats(vm, &st), 0);
	return st.state_pages[MV_PAGE_SAMPLED];
}

/* Every page sampled this period has been touched (and put back). */
static bool all_samples_touched(void *arg)
{
	return sampled(arg) == 0;
}

/*
 * A host whose scheduler never samples (Mem.SamplePeriod = 0), so that the
 * test drives the periods itself with mv__sample_period(): each period
 * lasts exactly until the test has seen what it waits for, however slow
 * the machine.  The test's thread is then the only one that starts and
 * ends periods, as sample.c requires.
 */
static void sampling_host(struct th_host *t, uint64_t memsize)
{
	th_host_create(t, memsize, NULL);
}

static void test_sampling_tells_idle_from_active(void **state)
{
	struct mv_vm_stats idle_st, busy_st;
	static struct toucher busy;
	struct th_host t;
	mv_vm *idle, *vm;

	(void)state;
	sampling_host(&t, 128 * MiB);
	idle = th_vm_create(&t, "idle", 16 * MiB);
	th_fill_vm(idle, 1, false);
	vm = th_vm_create(&t, "busy", 16 * MiB);
	th_fill_vm(vm, 2, false);
	toucher_start(&busy, vm, touch_main);
	/* three periods: two measured, each ended once the busy VM has
	 * touched every page sampled in it */
	for (int period = 0; period < 3; period++) {
		if (period)
			assert_true(th_wait_until(all_samples_touched, busy.vm,
						  TH_WAIT_MS));
		mv__sample_period(idle);
		mv__sample_period(busy.vm);
		assert_true(sampled(idle) > 0);
	}
	assert_int_equal(mv_vm_stats(idle, &idle_st), 0);
	assert_int_equal(mv_vm_stats(busy.vm, &busy_st), 0);
	toucher_stop(&busy);
	assert_true(idle_st.active_permille < 100);
	assert_true(busy_st.active_permille > 900);
	/* a sampled page keeps its frame charged to its VM */
	assert_true(idle_st.state_pages[MV_PAGE_SAMPLED] > 0);
	assert_int_equal(idle_st.consumed_pages, 16 * MiB / MV_PAGE_SIZE);
	assert_int_equal(th_presence_mismatches(idle), 0);
	assert_int_equal(th_bad_pages(idle, 1, false), 0);
	assert_int_equal(th_bad_pages(busy.vm, 2, false), 0);
	mv_vm_destroy(idle);
	mv_vm_destroy(busy.vm);
	th_host_destroy(&t);
}

/* A VM and a number of pages, for the predicates below. */
struct vm_pages {
	mv_vm *vm;
	uint64_t pages;
};

static bool private_at_most(void *arg)
{
	struct vm_pages *k = arg;
	struct mv_vm_stats st;

	assert_int_equal(mv_vm_stats(k->vm, &st), 0);
	return st.state_pages[MV_PAGE_PRIVATE] <= k->pages;
}

/*
 * A VM measured idle is capped at its demand, 0: a busy VM's pressure
 * takes all its private pages, not only down to where its taxed cost per
 * share meets the busy VM's (with these shares about a twelfth of what the
 * busy VM holds, 900 pages, before demand caps).
 */
static void test_vm_measured_idle_is_reclaimed_to_its_floor(void **state)
{
	static struct toucher busy;
	struct vm_pages k;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *idle, *vm;

	(void)state;
	sampling_host(&t, 48 * MiB);
	idle = th_vm_create(&t, "idle", 16 * MiB);
	th_fill_vm(idle, 1, false);
	/* one period, in which nobody touches it: measured idle */
	mv__sample_period(idle);
	mv__sample_period(idle);
	assert_int_equal(mv_vm_stats(idle, &st), 0);
	assert_int_equal(st.active_permille, 0);
	/* more than the host: it always needs memory */
	vm = th_vm_create(&t, "busy", 48 * MiB);
	th_fill_vm(vm, 2, false);
	toucher_start(&busy, vm, touch_main);
	k = (struct vm_pages){ idle, 64 };
	assert_true(th_wait_until(private_at_most, &k, TH_WAIT_MS));
	toucher_stop(&busy);
	assert_int_equal(mv_vm_stats(idle, &st), 0);
	assert_int_equal(st.sztgt_pages, 0);
	assert_int_equal(th_bad_pages(idle, 1, false), 0);
	assert_int_equal(th_bad_pages(vm, 2, false), 0);
	mv_vm_destroy(idle);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

struct balance_seen {
	mv_vm *vm;
	uint64_t sztgt;
};

/* The scheduler has balanced since the VM's limit was set to sztgt. */
static bool balanced(void *arg)
{
	struct balance_seen *k = arg;
	struct mv_vm_stats st;

	assert_int_equal(mv_vm_stats(k->vm, &st), 0);
	return st.sztgt_pages == k->sztgt;
}

/* Sets the VM's limit and waits for a balance that saw it. */
static void limit_and_balance(mv_vm *vm, uint64_t bytes)
{
	struct balance_seen k = { vm, bytes / MV_PAGE_SIZE };

	assert_int_equal(mv_vm_set_limit(vm, bytes), 0);
	assert_true(th_wait_until(balanced, &k, TH_WAIT_MS));
}

static bool target_at_most(void *arg)
{
	struct vm_pages *k = arg;
	struct mv_vm_stats st;

	assert_int_equal(mv_vm_stats(k->vm, &st), 0);
	return st.sztgt_pages <= k->pages;
}

static bool target_at_least(void *arg)
{
	struct vm_pages *k = arg;
	struct mv_vm_stats st;

	assert_int_equal(mv_vm_stats(k->vm, &st), 0);
	return st.sztgt_pages >= k->pages;
}

static bool balanced_once(void *host)
{
	struct mv_host_stats hs;

	assert_int_equal(mv_host_stats(host, &hs), 0);
	return hs.balances > 0;
}

/* A host that balances once an hour unless something asks sooner, past
 * its first (periodic) balance, at its scheduler's first tick. */
static void hourly_host(struct th_host *t, uint64_t memsize)
{
	struct mv_settings s;

	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.BalancePeriod", "3600"), 0);
	th_host_create(t, memsize, &s);
	assert_true(th_wait_until(balanced_once, t->host, TH_WAIT_MS));
}

/*
 * A new limit is a new target at once, not at the end of the balance
 * period (an hour here); so are new shares and a new reservation.
 */
static void test_new_limit_is_a_new_target_before_the_period_ends(void **state)
{
	struct mv_host_stats before, after;
	struct vm_pages k;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	hourly_host(&t, 64 * MiB);
	vm = th_vm_create(&t, "a", 32 * MiB);
	k = (struct vm_pages){ vm, 32 * MiB / MV_PAGE_SIZE };
	assert_true(th_wait_until(target_at_least, &k, TH_WAIT_MS));
	assert_int_equal(mv_host_stats(t.host, &before), 0);
	assert_int_equal(mv_vm_set_limit(vm, 20 * MiB), 0);
	k.pages = 20 * MiB / MV_PAGE_SIZE;
	assert_true(th_wait_until(target_at_most, &k, TH_WAIT_MS));
	assert_int_equal(mv_vm_set_limit(vm, 0), 0);
	k.pages = 32 * MiB / MV_PAGE_SIZE;
	assert_true(th_wait_until(target_at_least, &k, TH_WAIT_MS));
	/* counted as balances asked through the API, none periodic (the
	 * hour's first was before) */
	assert_int_equal(mv_host_stats(t.host, &after), 0);
	assert_true(after.balances_asked >= before.balances_asked + 2);
	assert_int_equal(
		after.balances - before.balances,
		(after.balances_asked - before.balances_asked) +
			(after.balances_state - before.balances_state) +
			(after.balances_early - before.balances_early));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * A VM measured idle is capped at nothing; when it starts filling its
 * memory, its target follows within moments, not at the next balance an
 * hour later: the scheduler balances early when a VM held at its cap has
 * outgrown it (each balance lets it grow by the headroom above its demand,
 * so it climbs in steps).
 */
static void
test_vm_outgrowing_its_cap_is_balanced_before_the_period_ends(void **state)
{
	const uint64_t grow = 16 * MiB / MV_PAGE_SIZE;
	struct mv_host_stats hs;
	struct mv_vm_stats st;
	struct vm_pages k;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	hourly_host(&t, 64 * MiB);
	vm = th_vm_create(&t, "a", 32 * MiB);
	m = mv_vm_mem(vm);
	for (uint64_t p = 0; p < 256; p++)
		th_fill(m + p * MV_PAGE_SIZE, 1, p, 0);
	th_quiesce(vm);
	/* one period, in which nobody touches it: measured idle */
	mv__sample_period(vm);
	mv__sample_period(vm);
	assert_int_equal(mv_vm_stats(vm, &st), 0);
	assert_int_equal(st.active_permille, 0);
	/* the same shares: asks for a balance, which caps it at nothing */
	assert_int_equal(mv_vm_set_shares(vm, st.shares), 0);
	k = (struct vm_pages){ vm, 0 };
	assert_true(th_wait_until(target_at_most, &k, TH_WAIT_MS));
	/* now it fills 16 MiB more */
	for (uint64_t p = 256; p < 256 + grow; p++)
		th_fill(m + p * MV_PAGE_SIZE, 1, p, 0);
	k.pages = grow;
	assert_true(th_wait_until(target_at_least, &k, TH_WAIT_MS));
	/* counted as early balances (the share change was asked) */
	assert_int_equal(mv_host_stats(t.host, &hs), 0);
	assert_true(hs.balances_early > 0);
	assert_true(hs.balances_asked > 0);
	for (uint64_t p = 0; p < 256 + grow; p++)
		assert_true(th_check(m + p * MV_PAGE_SIZE, 1, p, 0));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * A VM not measured yet (sampling off here, so never) that fills nothing,
 * as a clone whose memory is all shared does, is capped at a 64th of its
 * memory by the next balance, and the VM filling its memory is given the
 * rest; before, the clone kept a target by its shares (half of what the
 * host gives) that it never used.
 */
static void
test_unmeasured_vm_that_fills_nothing_leaves_memory_to_others(void **state)
{
	struct vm_pages k;
	struct mv_vm_stats st;
	struct mv_settings s;
	struct th_host t;
	mv_vm *clone, *vm;

	(void)state;
	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.BalancePeriod", "1"), 0);
	th_host_create(&t, 64 * MiB, &s);
	clone = th_vm_create(&t, "clone", 32 * MiB);
	vm = th_vm_create(&t, "filler", 32 * MiB);
	th_fill_vm(vm, 3, false);
	k = (struct vm_pages){ clone, 32 * MiB / MV_PAGE_SIZE / 64 };
	assert_true(th_wait_until(target_at_most, &k, TH_WAIT_MS));
	/* a balance while the fill was under half done capped the filler
	 * at twice what it had filled: the next one, once it is full */
	k = (struct vm_pages){ vm, 32 * MiB / MV_PAGE_SIZE };
	assert_true(th_wait_until(target_at_least, &k, TH_WAIT_MS));
	assert_int_equal(mv_vm_stats(vm, &st), 0);
	assert_int_equal(st.sztgt_pages, 32 * MiB / MV_PAGE_SIZE);
	assert_int_equal(th_bad_pages(vm, 3, false), 0);
	mv_vm_destroy(clone);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_sample_period_zero_never_samples(void **state)
{
	struct mv_vm_stats st;
	struct mv_settings s;
	struct th_host t;
	uint8_t *m;
	mv_vm *idle;

	(void)state;
	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.BalancePeriod", "1"), 0);
	th_host_create(&t, 128 * MiB, &s);
	idle = th_vm_create(&t, "idle", 16 * MiB);
	/* half of it, so that the limits below take nothing */
	m = mv_vm_mem(idle);
	for (uint64_t p = 0; p < 8 * MiB / MV_PAGE_SIZE; p++)
		th_fill(m + p * MV_PAGE_SIZE, 1, p, 0);
	th_quiesce(idle);
	/*
	 * Past the second at which a first period would have started, as the
	 * scheduler counts: a host in the high state balances once a second
	 * (Mem.BalancePeriod = 1), so of two balances seen one after the
	 * other the second came at least a second after the host started,
	 * and in that round the scheduler looked at sampling first.
	 */
	limit_and_balance(idle, 15 * MiB);
	limit_and_balance(idle, 14 * MiB);
	assert_int_equal(mv_vm_stats(idle, &st), 0);
	assert_int_equal(st.state_pages[MV_PAGE_SAMPLED], 0);
	assert_int_equal(st.state_pages[MV_PAGE_PRIVATE],
			 8 * MiB / MV_PAGE_SIZE);
	assert_int_equal(st.active_permille, 1000);
	for (uint64_t p = 0; p < 8 * MiB / MV_PAGE_SIZE; p++)
		assert_true(th_check(m + p * MV_PAGE_SIZE, 1, p, 0));
	mv_vm_destroy(idle);
	th_host_destroy(&t);
}

/*
 * Touches the first quarter of the VM over and over, each page swapped out
 * first: a VM that keeps faulting its pages back, as one reclaim takes too
 * much from does.
 */
static void *refault_main(void *arg)
{
	struct toucher *t = arg;
	volatile uint8_t *m = mv_vm_mem(t->vm);
	uint64_t n = mv_vm_memsize(t->vm) / MV_PAGE_SIZE / 4, sum = 0;

	while (!atomic_load(&t->stop)) {
		for (uint64_t p = 0; p < n; p++)
			mv_vm_swap_out_page(t->vm, p);
		for (uint64_t p = 0; p < n; p++)
			sum += m[p * MV_PAGE_SIZE];
	}
	return (void *)(uintptr_t)sum;
}

struct refaults {
	mv_vm *vm;
	uint64_t from;
};

static uint64_t swapins(mv_vm *vm)
{
	struct mv_vm_stats st;

	assert_int_equal(mv_vm_stats(vm, &st), 0);
	return st.swapin_pages + st.unzip_pages;
}

/* The VM has faulted back as many pages as it holds since r->from. */
static bool refaulted_a_vm(void *arg)
{
	struct refaults *r = arg;

	return swapins(r->vm) - r->from >= mv_vm_memsize(r->vm) / MV_PAGE_SIZE;
}

static void test_refaulting_vm_is_not_estimated_idle(void **state)
{
	static struct toucher busy;
	struct mv_vm_stats st;
	struct refaults r;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	sampling_host(&t, 128 * MiB);
	vm = th_vm_create(&t, "refaults", 4 * MiB);
	th_fill_vm(vm, 3, false);
	toucher_start(&busy, vm, refault_main);
	/* three periods, two measured; each ends once the VM has faulted
	 * back its size */
	for (int period = 0; period < 3; period++) {
		if (period) {
			r = (struct refaults){ busy.vm, swapins(busy.vm) };
			assert_true(
				th_wait_until(refaulted_a_vm, &r, TH_WAIT_MS));
		}
		mv__sample_period(busy.vm);
	}
	assert_int_equal(mv_vm_stats(busy.vm, &st), 0);
	toucher_stop(&busy);
	/* sampling alone sees a quarter touched; the refaults say more */
	assert_true(st.swapin_pages > 4 * MiB / MV_PAGE_SIZE);
	assert_true(st.active_permille > 600);
	assert_int_equal(th_bad_pages(busy.vm, 3, false), 0);
	mv_vm_destroy(busy.vm);
	th_host_destroy(&t);
}

static void test_reclaim_never_takes_a_sampled_page(void **state)
{
	struct mv_vm_stats before, after;
	struct th_host t;
	uint64_t done;
	mv_vm *vm;

	(void)state;
	sampling_host(&t, 64 * MiB);
	vm = th_vm_create(&t, "a", 4 * MiB);
	th_fill_vm(vm, 3, false);
	mv__sample_period(vm);
	assert_int_equal(mv_vm_stats(vm, &before), 0);
	assert_true(before.state_pages[MV_PAGE_SAMPLED] > 0);
	assert_int_equal(mv_vm_swap_out(vm, 4 * MiB / MV_PAGE_SIZE, &done), 0);
	assert_int_equal(mv_vm_stats(vm, &after), 0);
	/* only the period's end (the test's to call) puts them back */
	assert_int_equal(after.state_pages[MV_PAGE_PRIVATE], 0);
	assert_int_equal(after.state_pages[MV_PAGE_SAMPLED],
			 before.state_pages[MV_PAGE_SAMPLED]);
	assert_int_equal(th_bad_pages(vm, 3, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/* The VM holds no more than its limit. */
static bool within_limit(void *arg)
{
	struct mv_vm_stats st;

	mv_vm_stats(arg, &st);
	return st.consumed_pages <= st.limit_pages;
}

static void test_vm_is_swapped_down_to_its_limit(void **state)
{
	struct mv_vm_config cfg;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	mv_vm_config_init(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "capped");
	cfg.memsize_bytes = 16 * MiB;
	cfg.limit_bytes = 4 * MiB;
	assert_int_equal(mv_vm_create(t.host, &cfg, &vm), 0);
	th_fill_vm(vm, 4, false);
	assert_true(th_wait_until(within_limit, vm, TH_WAIT_MS));
	mv_vm_stats(vm, &st);
	assert_true(st.consumed_pages <= 4 * MiB / MV_PAGE_SIZE);
	assert_int_equal(th_bad_pages(vm, 4, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

struct filler {
	mv_vm *vm;
	pthread_t th;
};

static void *fill_main(void *arg)
{
	th_fill_vm(((struct filler *)arg)->vm, 5, false);
	return NULL;
}

static bool swap_write_paused(void *unused)
{
	(void)unused;
	return mv__inject_paused();
}

/*
 * The scheduler's swap writes run without vms_lock: while one is held
 * inside its pwrite, the host's statistics (which take vms_lock) and a new
 * VM (linked under it) go ahead.  Before, the whole batch ran under
 * vms_lock and both waited for the disk.
 */
static void test_swap_writes_hold_no_host_lock(void **state)
{
	struct mv_vm_config cfg;
	struct mv_host_stats hs;
	struct filler f;
	struct th_host t;
	mv_vm *vm, *other;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	mv_vm_config_init(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "capped");
	cfg.memsize_bytes = 16 * MiB;
	cfg.limit_bytes = 4 * MiB;
	assert_int_equal(mv_vm_create(t.host, &cfg, &vm), 0);
	mv__inject_pause(MV_INJ_PWRITE);
	f.vm = vm;
	assert_int_equal(pthread_create(&f.th, NULL, fill_main, &f), 0);
	assert_true(th_wait_until(swap_write_paused, NULL, TH_WAIT_MS));
	assert_int_equal(mv_host_stats(t.host, &hs), 0);
	snprintf(cfg.name, sizeof(cfg.name), "other");
	cfg.limit_bytes = 0;
	assert_int_equal(mv_vm_create(t.host, &cfg, &other), 0);
	mv_vm_destroy(other);
	/* all of that while the swap write was still held */
	assert_true(mv__inject_paused());
	mv__inject_resume();
	assert_int_equal(pthread_join(f.th, NULL), 0);
	assert_true(th_wait_until(within_limit, vm, TH_WAIT_MS));
	assert_int_equal(th_bad_pages(vm, 5, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/* Quiet settings with compression off: every reclaimed page is written. */
static void settings_swap_only(struct mv_settings *s, const char *per_vm)
{
	th_settings_quiet(s);
	assert_int_equal(mv_settings_set(s, "Mem.MemZipEnable", "0"), 0);
	assert_int_equal(mv_settings_set(s, "Mem.ReclaimPerVM", per_vm), 0);
}

/* Below the pause's own bound (inject.c: 10 s), so that a VM reclaimed
 * only once the held write goes on misses it. */
#define HELD_WAIT_MS 8000u

/*
 * Reclaim runs per VM: while one VM's reclaim thread is held inside its
 * swap write, another VM is swapped down to its limit.  With
 * Mem.ReclaimPerVM = 0 the scheduler's one thread is the one held, and the
 * second VM waits for the first VM's disk.
 */
static void test_one_vms_swap_write_holds_no_other_vms_reclaim(void **state)
{
	struct mv_settings s;
	struct th_host t;
	mv_vm *a, *b;

	(void)state;
	settings_swap_only(&s, "1");
	th_host_create(&t, 64 * MiB, &s);
	a = th_vm_create(&t, "held", 16 * MiB);
	b = th_vm_create(&t, "free", 16 * MiB);
	th_fill_vm(a, 6, false);
	th_fill_vm(b, 7, false);
	mv__inject_pause(MV_INJ_PWRITE);
	assert_int_equal(mv_vm_set_limit(a, 4 * MiB), 0);
	assert_true(th_wait_until(swap_write_paused, NULL, TH_WAIT_MS));
	assert_int_equal(mv_vm_set_limit(b, 4 * MiB), 0);
	assert_true(th_wait_until(within_limit, b, HELD_WAIT_MS));
	/* all of b's reclaim while a's write was still held */
	assert_true(mv__inject_paused());
	mv__inject_resume();
	assert_true(th_wait_until(within_limit, a, TH_WAIT_MS));
	assert_int_equal(th_bad_pages(a, 6, false), 0);
	assert_int_equal(th_bad_pages(b, 7, false), 0);
	mv_vm_destroy(a);
	mv_vm_destroy(b);
	th_host_destroy(&t);
}

struct destroyer {
	mv_vm *vm;
	pthread_t th;
	_Atomic int tid;
	atomic_bool done;
};

static void *destroy_main(void *arg)
{
	struct destroyer *d = arg;

	atomic_store(&d->tid, (int)gettid());
	mv_vm_destroy(d->vm);
	atomic_store(&d->done, true);
	return NULL;
}

static bool destroyer_sleeps(void *arg)
{
	struct destroyer *d = arg;
	int tid = atomic_load(&d->tid);

	return tid && th_thread_sleeps(tid);
}

static bool host_holds_only(void *arg)
{
	mv_vm *vm = arg;
	struct mv_host_stats hs;
	struct mv_vm_stats st;

	mv_vm_stats(vm, &st);
	mv_host_stats(vm->host, &hs);
	return hs.consumed_pages == st.consumed_pages;
}

/*
 * A VM destroyed while its reclaim thread is inside a swap write: the
 * destroy waits for that batch to end (it cannot free the VM under it),
 * then gives back every frame; the other VM keeps its pages and is
 * reclaimed as before.
 */
static void test_vm_destroyed_while_its_reclaim_writes(void **state)
{
	struct destroyer d = { 0 };
	struct mv_settings s;
	struct th_host t;
	mv_vm *a, *b;

	(void)state;
	settings_swap_only(&s, "1");
	th_host_create(&t, 64 * MiB, &s);
	a = th_vm_create(&t, "doomed", 16 * MiB);
	b = th_vm_create(&t, "stays", 16 * MiB);
	th_fill_vm(a, 8, false);
	th_fill_vm(b, 9, false);
	mv__inject_pause(MV_INJ_PWRITE);
	assert_int_equal(mv_vm_set_limit(a, 4 * MiB), 0);
	assert_true(th_wait_until(swap_write_paused, NULL, TH_WAIT_MS));
	d.vm = a;
	assert_int_equal(pthread_create(&d.th, NULL, destroy_main, &d), 0);
	assert_true(th_wait_until(destroyer_sleeps, &d, TH_WAIT_MS));
	/* held with the batch, not finished under it */
	assert_false(atomic_load(&d.done));
	assert_true(mv__inject_paused());
	mv__inject_resume();
	assert_int_equal(pthread_join(d.th, NULL), 0);
	assert_true(th_wait_until(host_holds_only, b, TH_WAIT_MS));
	assert_int_equal(mv_vm_set_limit(b, 4 * MiB), 0);
	assert_true(th_wait_until(within_limit, b, TH_WAIT_MS));
	assert_int_equal(th_bad_pages(b, 9, false), 0);
	mv_vm_destroy(b);
	th_host_destroy(&t);
}

/* The host's log callback, counting what it is given. */
struct events {
	pthread_mutex_t lock;
	unsigned n;
	char first[MV_ERRMSG_MAX + 48];
};

static void count_event(void *arg, enum mv_log_level level, const char *msg)
{
	struct events *e = arg;

	(void)level;
	pthread_mutex_lock(&e->lock);
	if (!e->n++)
		snprintf(e->first, sizeof(e->first), "%s", msg);
	pthread_mutex_unlock(&e->lock);
}

static bool an_event_came(void *arg)
{
	struct events *e = arg;
	bool yes;

	pthread_mutex_lock(&e->lock);
	yes = e->n > 0;
	pthread_mutex_unlock(&e->lock);
	return yes;
}

/*
 * A shares, reservation or limit the caller got wrong is its error: the
 * call returns -EINVAL with the reason in mv_host_errmsg(), and the log
 * (the host's background events) hears nothing of it.
 */
static void test_bad_settings_are_the_callers_errors_not_events(void **state)
{
	static struct events ev = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct mv_host_config cfg;
	struct mv_vm_config vc;
	char swapdir[TH_DIR_LEN];
	mv_host *h = NULL;
	mv_vm *vm = NULL;

	(void)state;
	th_scratch(swapdir, sizeof(swapdir), "mvsched");
	mv_host_config_init(&cfg);
	cfg.memsize_bytes = 64 * MiB;
	cfg.swapdir = swapdir;
	cfg.settings.sample_period_s = 0;
	cfg.settings.share_scan_ghz = 0;
	cfg.log = count_event;
	cfg.log_arg = &ev;
	assert_int_equal(mv_host_create(&cfg, &h), 0);
	mv_vm_config_init(&vc);
	snprintf(vc.name, sizeof(vc.name), "v");
	vc.memsize_bytes = 4 * MiB;
	assert_int_equal(mv_vm_create(h, &vc, &vm), 0);
	assert_int_equal(mv_vm_set_shares(vm, 0), -EINVAL);
	assert_non_null(strstr(mv_host_errmsg(h), "shares must be"));
	assert_int_equal(mv_vm_set_limit(vm, 8 * MiB), -EINVAL);
	assert_non_null(strstr(mv_host_errmsg(h), "limit must be"));
	assert_int_equal(mv_vm_set_reservation(vm, 2 * MiB), 0);
	assert_int_equal(mv_vm_set_limit(vm, 1 * MiB), -EINVAL);
	assert_int_equal(mv_vm_set_reservation(vm, 1ull << 30), -EINVAL);
	assert_non_null(strstr(mv_host_errmsg(h), "reservation"));
	mv__host_event(h, MV_LOG_INFO, "marker");
	assert_true(th_wait_until(an_event_came, &ev, TH_WAIT_MS));
	mv_vm_destroy(vm);
	mv_host_destroy(h);
	/* the marker was the first event: no error reached the log */
	assert_string_equal(ev.first, "marker");
	assert_int_equal(ev.n, 1);
	rmdir(swapdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rho_is_shares_per_taxed_page),
		cmocka_unit_test(test_targets_are_limits_when_memory_suffices),
		cmocka_unit_test(test_targets_split_by_shares),
		cmocka_unit_test(test_target_never_below_reservation),
		cmocka_unit_test(test_target_never_above_limit),
		cmocka_unit_test(
			test_bad_settings_are_the_callers_errors_not_events),
		cmocka_unit_test(test_without_tax_idleness_does_not_matter),
		cmocka_unit_test(test_idle_tax_takes_more_from_idle_vm),
		cmocka_unit_test(
			test_alike_vms_using_more_than_they_hold_get_alike_targets),
		cmocka_unit_test(
			test_pages_a_vm_uses_beyond_what_it_holds_are_not_taxed),
		cmocka_unit_test(test_victim_is_lowest_rho),
		cmocka_unit_test(test_victim_skips_vms_at_reservation),
		cmocka_unit_test(
			test_vm_above_limit_is_victim_without_pressure),
		cmocka_unit_test(test_states_follow_esxi_thresholds),
		cmocka_unit_test(test_worse_state_is_entered_at_once),
		cmocka_unit_test(test_better_state_needs_the_margin),
		cmocka_unit_test(test_mechanisms_by_state),
		cmocka_unit_test(test_balloon_target_grows_only_when_allowed),
		cmocka_unit_test(test_balloon_target_shrinks_below_target),
		cmocka_unit_test(test_moving_average_moves_by_weight),
		cmocka_unit_test(test_shares_levels_are_esx_per_mb),
		cmocka_unit_test(test_vm_settings_out_of_range_are_refused),
		cmocka_unit_test(test_sampling_tells_idle_from_active),
		cmocka_unit_test(test_refaulting_vm_is_not_estimated_idle),
		cmocka_unit_test(test_sample_period_zero_never_samples),
		cmocka_unit_test(
			test_unmeasured_vm_that_fills_nothing_leaves_memory_to_others),
		cmocka_unit_test(test_reclaim_never_takes_a_sampled_page),
		cmocka_unit_test(
			test_vm_measured_idle_is_reclaimed_to_its_floor),
		cmocka_unit_test(
			test_new_limit_is_a_new_target_before_the_period_ends),
		cmocka_unit_test(
			test_vm_outgrowing_its_cap_is_balanced_before_the_period_ends),
		cmocka_unit_test(test_vm_is_swapped_down_to_its_limit),
		cmocka_unit_test(test_swap_writes_hold_no_host_lock),
		cmocka_unit_test(
			test_one_vms_swap_write_holds_no_other_vms_reclaim),
		cmocka_unit_test(test_vm_destroyed_while_its_reclaim_writes),
	};

	return th_run_tests(tests);
}

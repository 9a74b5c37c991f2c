// SPDX-License-Identifier: MIT
/*
 * test_sched_policy.c - the scheduler's demand caps as pure functions
 * (sched_policy.c): which VMs are capped and at what, targets capped by
 * demand with the rest going to the others, an idle VM driven to its
 * floor over balance rounds, reservations and limits respected, and the
 * victim order.  No threads, no host.  (The older policy tests, shares,
 * tax, states, are in test_sched.c.)
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helper.h"
#include "internal.h"

#define HEADROOM 25 /* Mem.DemandHeadroomPct's default */
#define TAX 75 /* Mem.IdleTax's default */

static struct mv__sched_vm vm_of(uint64_t shares, uint64_t alloc,
				 uint32_t active_permille)
{
	struct mv__sched_vm v = { .shares = shares,
				  .min_pages = 0,
				  .max_pages = 1000,
				  .alloc_pages = alloc,
				  .active_permille = active_permille };

	mv__sched_demand(&v, alloc * active_permille / 1000, HEADROOM);
	return v;
}

static uint64_t sum(const uint64_t *t, unsigned n)
{
	uint64_t s = 0;

	for (unsigned i = 0; i < n; i++)
		s += t[i];
	return s;
}

static void
test_vm_using_less_than_it_holds_is_capped_at_active_plus_headroom(void **state)
{
	struct mv__sched_vm v = vm_of(100, 800, 200);

	(void)state;
	/* 160 active pages and 25% of them */
	assert_true(v.capped);
	assert_int_equal(v.demand_pages, 200);
	mv__sched_demand(&v, 160, 100);
	assert_int_equal(v.demand_pages, 320);
	/* what it holds does not move its demand: reclaim taking pages
	 * leaves the cap where it was */
	v.alloc_pages = 400;
	mv__sched_demand(&v, 160, HEADROOM);
	assert_true(v.capped);
	assert_int_equal(v.demand_pages, 200);
}

/* Using all it holds: capped by the headroom above it, so that it can
 * grow by that much (and by what it fills) before the next balance; never
 * above its limit.  Not measured yet: not capped. */
static void test_vm_using_all_it_holds_is_capped_headroom_above_it(void **state)
{
	struct mv__sched_vm v;

	(void)state;
	v = vm_of(100, 400, 1000); /* fully active */
	assert_true(v.capped);
	assert_int_equal(v.demand_pages, 500);
	v = vm_of(100, 900, 1000);
	assert_true(v.capped);
	assert_int_equal(v.demand_pages, 1000); /* its limit */
	mv__sched_demand(&v, UINT64_MAX, HEADROOM); /* not yet measured */
	assert_false(v.capped);
}

/*
 * The default scenario's web VMs: fully active on the few frames they
 * hold (their working set is in shared frames), with shares that would
 * give them more.  Their target is what they use plus the headroom, and
 * the rest goes to the VMs that use more than they hold.  Uncapped
 * (before), each was given more than it used (its pages beyond its use
 * taxed, not refused) and kept it unused while the busy VMs were
 * reclaimed.
 */
static void
test_vm_using_less_than_its_share_leaves_the_rest_to_others(void **state)
{
	struct mv__sched_vm v[3] = { vm_of(100, 40, 1000),
				     vm_of(100, 400, 1000),
				     vm_of(100, 400, 1000) };
	uint64_t t[3], uncapped[3];

	(void)state;
	/* the two busy ones filled far more than they hold this period */
	mv__sched_demand(&v[1], 5000, HEADROOM);
	mv__sched_demand(&v[2], 5000, HEADROOM);
	mv__sched_targets(v, 3, 900, TAX, t);
	assert_int_equal(t[0], 50);
	th_assert_near(t[1], 425, 1);
	th_assert_near(t[2], 425, 1);
	/* uncapped, it was given its pages taxed beyond the 40 it uses */
	v[0].capped = false;
	mv__sched_targets(v, 3, 900, TAX, uncapped);
	assert_true(uncapped[0] > 100);
	assert_true(uncapped[1] + 30 < t[1]);
}

/*
 * Not measured yet: capped at twice what it has filled (at least a 64th of
 * its limit above that), all of it counted as used for the tax.  A clone
 * whose memory is all shared (it filled 10 pages) leaves the rest to the
 * two VMs filling theirs; uncapped (before), it was given a third.
 */
static void test_unmeasured_vm_is_capped_at_twice_what_it_filled(void **state)
{
	struct mv__sched_vm v[3] = { vm_of(100, 10, 1000),
				     vm_of(100, 400, 1000),
				     vm_of(100, 400, 1000) };
	uint64_t t[3], uncapped[3];

	(void)state;
	for (unsigned i = 0; i < 3; i++)
		mv__sched_demand(&v[i], UINT64_MAX, HEADROOM);
	mv__sched_demand_unmeasured(&v[0], 10);
	assert_true(v[0].capped);
	assert_int_equal(v[0].demand_pages, 10 + 1000 / 64);
	assert_int_equal(v[0].used_pages, UINT64_MAX);
	mv__sched_demand_unmeasured(&v[1], 400);
	assert_int_equal(v[1].demand_pages, 800);
	mv__sched_demand_unmeasured(&v[2], 600);
	assert_int_equal(v[2].demand_pages, 1000); /* its limit */
	mv__sched_targets(v, 3, 900, TAX, t);
	assert_int_equal(t[0], 25);
	th_assert_near(t[1], 437, 1);
	th_assert_near(t[2], 437, 1);
	for (unsigned i = 0; i < 3; i++)
		v[i].capped = false;
	mv__sched_targets(v, 3, 900, TAX, uncapped);
	th_assert_near(uncapped[0], 300, 1);
}

/*
 * A remote VM, or one with pages in its balloon, using all it holds is
 * bound by its shares alone: capped 25% above what it holds, a remote
 * VM's grant (never above its target) and a balloon's deflation would
 * grow by a quarter per balance while the host had memory free.  One
 * using less than it holds, or nothing, stays capped.
 */
static void test_vm_using_all_it_holds_can_be_uncapped(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(100, 100, 1000),
				     vm_of(100, 400, 1000) };
	uint64_t t[2];

	(void)state;
	assert_true(v[0].capped);
	assert_int_equal(v[0].demand_pages, 125);
	mv__sched_targets(v, 2, 1000, TAX, t);
	assert_int_equal(t[0], 125);
	mv__sched_uncap_if_full(&v[0]);
	assert_false(v[0].capped);
	mv__sched_targets(v, 2, 1000, TAX, t);
	assert_true(t[0] > 125);
	v[0] = vm_of(100, 800, 200); /* 160 active of 800 */
	mv__sched_uncap_if_full(&v[0]);
	assert_true(v[0].capped);
	assert_int_equal(v[0].demand_pages, 200);
	v[0] = vm_of(100, 0, 0); /* measured using nothing */
	mv__sched_uncap_if_full(&v[0]);
	assert_true(v[0].capped);
	assert_int_equal(v[0].demand_pages, 0);
}

static void
test_capped_target_is_demand_and_the_rest_goes_to_others(void **state)
{
	struct mv__sched_vm v[3] = { vm_of(100, 500, 100),
				     vm_of(100, 400, 1000),
				     vm_of(100, 100, 1000) };
	uint64_t t[3], uncapped[3];

	(void)state;
	/* the other two use more than they hold */
	mv__sched_demand(&v[1], 5000, HEADROOM);
	mv__sched_demand(&v[2], 5000, HEADROOM);
	assert_true(v[0].capped);
	assert_int_equal(v[0].demand_pages, 62);
	mv__sched_targets(v, 3, 1000, TAX, t);
	assert_true(t[0] <= 62);
	assert_true(sum(t, 3) <= 1000);
	/* without the cap the same VMs split it otherwise */
	v[0].capped = false;
	mv__sched_targets(v, 3, 1000, TAX, uncapped);
	assert_true(uncapped[0] > 62);
	/* what the cap freed went to the two that need it, by shares */
	assert_true(t[1] > uncapped[1]);
	assert_true(t[2] > uncapped[2]);
	assert_true(sum(t, 3) >= 1000 - 3);
}

static void test_capped_target_is_never_below_reservation(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(100, 500, 0),
				     vm_of(100, 500, 1000) };
	uint64_t t[2];

	(void)state;
	v[0].min_pages = 150;
	mv__sched_demand(&v[0], 0, HEADROOM);
	mv__sched_demand(&v[1], 5000, HEADROOM);
	assert_true(v[0].capped);
	assert_int_equal(v[0].demand_pages, 0);
	mv__sched_targets(v, 2, 1000, TAX, t);
	assert_int_equal(t[0], 150);
	assert_int_equal(t[1], 850);
}

static void test_freed_memory_never_lifts_a_vm_past_its_limit(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(100, 600, 0),
				     vm_of(100, 300, 1000) };
	uint64_t t[2];

	(void)state;
	v[1].max_pages = 400;
	mv__sched_demand(&v[1], 5000, HEADROOM);
	mv__sched_targets(v, 2, 1000, TAX, t);
	assert_int_equal(t[0], 0);
	assert_int_equal(t[1], 400);
}

static void test_without_a_cap_targets_are_as_before(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(100, 600, 200),
				     vm_of(100, 600, 200) };
	uint64_t capped[2], t[2];

	(void)state;
	mv__sched_targets(v, 2, 1000, TAX, capped);
	assert_true(capped[0] <= v[0].demand_pages);
	v[0].capped = v[1].capped = false;
	mv__sched_targets(v, 2, 1000, TAX, t);
	assert_int_equal(t[0], 500);
	assert_int_equal(t[1], 500);
}

/*
 * Balance rounds as the scheduler runs them: each VM uses a fixed number
 * of pages, and sampling finds it active on what it uses of what it
 * holds; reclaim brings a VM down to its target, and a VM grows only by
 * touching what it uses, up to its target.
 */
static void
test_idle_vm_is_driven_to_its_floor_and_busy_vms_get_it(void **state)
{
	const uint64_t uses[3] = { 0, 450, 450 }; /* idle, busy, busy */
	uint64_t alloc[3] = { 300, 300, 300 }, t[3] = { 0 };
	struct mv__sched_vm v[3];

	(void)state;
	for (int round = 0; round < 20; round++) {
		for (unsigned i = 0; i < 3; i++) {
			v[i] = vm_of(i ? 1000 : 500, alloc[i], 1000);
			mv__sched_demand(
				&v[i], uses[i] < alloc[i] ? uses[i] : alloc[i],
				HEADROOM);
		}
		mv__sched_targets(v, 3, 900, TAX, t);
		assert_true(sum(t, 3) <= 900);
		for (unsigned i = 0; i < 3; i++)
			alloc[i] = alloc[i] > t[i]    ? t[i] :
				   uses[i] > t[i]     ? t[i] :
				   uses[i] > alloc[i] ? uses[i] :
							alloc[i];
	}
	assert_int_equal(alloc[0], 0);
	assert_int_equal(alloc[1], 450);
	assert_int_equal(alloc[2], 450);
}

static void test_victim_is_a_vm_above_its_demand_first_by_rho(void **state)
{
	/* 1 has the lowest rho but uses all it holds; 0 and 2 hold pages
	 * they do not use, 0 more of them, 2 at a lower rho */
	struct mv__sched_vm v[3] = { vm_of(1000, 500, 100),
				     vm_of(10, 500, 1000),
				     vm_of(100, 500, 500) };
	unsigned char skip[3] = { 0 };

	(void)state;
	assert_true(v[0].alloc_pages - v[0].demand_pages >
		    v[2].alloc_pages - v[2].demand_pages);
	assert_int_equal(mv__sched_victim(v, skip, 3, TAX, 1), 2);
	skip[2] = 1;
	assert_int_equal(mv__sched_victim(v, skip, 3, TAX, 1), 0);
	skip[0] = 1;
	assert_int_equal(mv__sched_victim(v, skip, 3, TAX, 1), 1);
	/* a VM down to its demand is chosen by rho like any other */
	memset(skip, 0, sizeof(skip));
	v[2].alloc_pages = v[2].demand_pages;
	v[0].alloc_pages = v[0].demand_pages;
	assert_int_equal(mv__sched_victim(v, skip, 3, TAX, 1), 1);
	/* without pressure, nothing below its limit is a victim */
	assert_int_equal(mv__sched_victim(v, skip, 3, TAX, 0), -1);
}

static void test_victim_above_limit_comes_before_one_above_demand(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(100, 500, 0),
				     vm_of(100, 500, 1000) };
	unsigned char skip[2] = { 0 };

	(void)state;
	v[1].max_pages = 490;
	assert_int_equal(mv__sched_victim(v, skip, 2, TAX, 1), 1);
}

static void test_vm_at_its_reservation_is_no_victim_for_its_demand(void **state)
{
	struct mv__sched_vm v[2] = { vm_of(100, 200, 0),
				     vm_of(100, 500, 1000) };
	unsigned char skip[2] = { 0 };

	(void)state;
	v[0].min_pages = 200;
	assert_int_equal(mv__sched_victim(v, skip, 2, TAX, 1), 1);
}

static void test_demand_headroom_setting_has_default_and_range(void **state)
{
	struct mv_settings s;

	(void)state;
	mv_settings_init(&s);
	assert_int_equal(s.demand_headroom_pct, 25);
	assert_int_equal(mv_settings_set(&s, "Mem.DemandHeadroomPct", "0"), 0);
	assert_int_equal(s.demand_headroom_pct, 0);
	assert_int_equal(mv_settings_set(&s, "Mem.DemandHeadroomPct", "1000"),
			 0);
	assert_int_equal(mv_settings_set(&s, "Mem.DemandHeadroomPct", "1001"),
			 -EINVAL);
	s.demand_headroom_pct = 2000;
	assert_int_equal(mv_settings_check(&s, NULL, 0), -EINVAL);
}

/*
 * A balance records the cap only where it bound the target: a cap above
 * what shares give, or at the limit, bound nothing.
 */
static void test_binding_cap_is_the_cap_that_set_the_target(void **state)
{
	struct mv__sched_vm v = vm_of(100, 400, 500);

	(void)state;
	/* 200 active, capped at 250 */
	assert_int_equal(v.demand_pages, 250);
	assert_int_equal(mv__sched_binding_cap(&v, 250), 250);
	/* shares gave less than the cap */
	assert_int_equal(mv__sched_binding_cap(&v, 180), MV__SCHED_UNCAPPED);
	/* a reservation above the cap is the floor that bound it */
	v.min_pages = 300;
	assert_int_equal(mv__sched_binding_cap(&v, 300), 300);
	/* a cap at the limit is the limit's doing */
	mv__sched_demand(&v, 900, HEADROOM);
	assert_int_equal(v.demand_pages, 1000);
	assert_int_equal(mv__sched_binding_cap(&v, 1000), MV__SCHED_UNCAPPED);
	v.capped = false;
	assert_int_equal(mv__sched_binding_cap(&v, 400), MV__SCHED_UNCAPPED);
}

/*
 * A VM held at its cap whose demand has grown since is to be balanced at
 * once; one with room left below its cap, one whose demand grew by less
 * than a step, and one that was not capped are not.
 */
static void test_cap_outgrown_only_when_held_at_it_and_demand_grew(void **state)
{
	struct mv__sched_vm v = vm_of(100, 250, 800);

	(void)state;
	/* capped at 250 (200 active) and holding all of it */
	assert_int_equal(v.demand_pages, 250);
	assert_false(mv__sched_cap_outgrown(&v, 250));
	/* filled 60 pages since: a cap of 325 */
	mv__sched_demand(&v, 260, HEADROOM);
	assert_true(mv__sched_cap_outgrown(&v, 250));
	/* holding less than its cap less a 64th: room left */
	v.alloc_pages = 240;
	assert_false(mv__sched_cap_outgrown(&v, 250));
	v.alloc_pages = 247;
	assert_true(mv__sched_cap_outgrown(&v, 250));
	/* grown by less than the step (64 pages at least) */
	mv__sched_demand(&v, 240, HEADROOM);
	assert_int_equal(v.demand_pages, 300);
	assert_false(mv__sched_cap_outgrown(&v, 250));
	/* not capped at the last balance */
	mv__sched_demand(&v, 800, HEADROOM);
	assert_false(mv__sched_cap_outgrown(&v, MV__SCHED_UNCAPPED));
	/* uncapped now (a remote VM using all it holds): its limit */
	v.capped = false;
	assert_true(mv__sched_cap_outgrown(&v, 250));
	/* an idle VM capped at nothing that starts filling */
	v = vm_of(100, 0, 0);
	assert_int_equal(v.demand_pages, 0);
	mv__sched_demand(&v, 40, HEADROOM);
	assert_false(mv__sched_cap_outgrown(&v, 0));
	mv__sched_demand(&v, 60, HEADROOM);
	assert_true(mv__sched_cap_outgrown(&v, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_vm_using_less_than_it_holds_is_capped_at_active_plus_headroom),
		cmocka_unit_test(
			test_vm_using_all_it_holds_is_capped_headroom_above_it),
		cmocka_unit_test(
			test_vm_using_less_than_its_share_leaves_the_rest_to_others),
		cmocka_unit_test(
			test_unmeasured_vm_is_capped_at_twice_what_it_filled),
		cmocka_unit_test(test_vm_using_all_it_holds_can_be_uncapped),
		cmocka_unit_test(
			test_capped_target_is_demand_and_the_rest_goes_to_others),
		cmocka_unit_test(test_capped_target_is_never_below_reservation),
		cmocka_unit_test(
			test_freed_memory_never_lifts_a_vm_past_its_limit),
		cmocka_unit_test(test_without_a_cap_targets_are_as_before),
		cmocka_unit_test(
			test_idle_vm_is_driven_to_its_floor_and_busy_vms_get_it),
		cmocka_unit_test(
			test_victim_is_a_vm_above_its_demand_first_by_rho),
		cmocka_unit_test(
			test_victim_above_limit_comes_before_one_above_demand),
		cmocka_unit_test(
			test_vm_at_its_reservation_is_no_victim_for_its_demand),
		cmocka_unit_test(
			test_demand_headroom_setting_has_default_and_range),
		cmocka_unit_test(
			test_binding_cap_is_the_cap_that_set_the_target),
		cmocka_unit_test(
			test_cap_outgrown_only_when_held_at_it_and_demand_grew),
	};

	return th_run_tests(tests);
}

// SPDX-License-Identifier: MIT
/*
 * test_sample.c - pages out of the guest in sample.c's slots: a put-back
 * the kernel refuses is bounded and loses nothing, and a page reclaim
 * cannot put back after a failed swap-out waits in a park slot, content
 * intact, until a touch, a reclaim or a sampling period brings it back.
 *
 * Every host here has sampling and scanning off, so that only the test
 * drives mv__sample_period() (which is otherwise the scheduler thread's).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "helper.h"
#include "inject.h"
#include "internal.h"

#define MiB (1ull << 20)
#define PAGES 256u /* 1 MiB VMs */
#define DEADLINE_MS 10000

static void quiet_host(struct th_host *t)
{
	struct mv_settings s;

	mv_settings_init(&s);
	s.sample_period_s = 0;
	s.share_scan_ghz = 0;
	th_host_create(t, 64 * MiB, &s);
}

static struct mv_vm_stats stats(mv_vm *vm)
{
	struct mv_vm_stats st;

	assert_int_equal(mv_vm_stats(vm, &st), 0);
	return st;
}

/* Polls cond(vm) every millisecond until it holds or the deadline passes. */
static bool poll_until(bool (*cond)(mv_vm *), mv_vm *vm)
{
	struct timespec ts = { 0, 1000000L };

	for (int i = 0; i < DEADLINE_MS; i++) {
		if (cond(vm))
			return true;
		nanosleep(&ts, NULL);
	}
	return cond(vm);
}

/*
 * Swaps out page ppn while the swap write fails and the kernel refuses
 * every UFFDIO_MOVE and UFFDIO_COPY after the move out: the page cannot
 * go back.  Leaves the MOVE and COPY failures armed.
 */
static int swap_out_unrestorable(mv_vm *vm, uint64_t ppn)
{
	int err;

	/* every write: the swap store retries a failed one (swap.c) */
	mv__inject_fail(MV_INJ_PWRITE, 1, 0, ENOSPC);
	mv__inject_fail(MV_INJ_UFFD_MOVE, 2, 0, ENOMEM);
	mv__inject_fail(MV_INJ_UFFD_COPY, 1, 0, ENOMEM);
	err = mv_vm_swap_out_page(vm, ppn);
	assert_true(mv__inject_hits(MV_INJ_PWRITE) >= 1);
	/* the failed write paused the swap file: the next tests write now */
	atomic_store(&vm->swap.paused_until, 0);
	return err;
}

static mv_vm *filled_vm(struct th_host *t, uint64_t tag)
{
	mv_vm *vm = th_vm_create(t, "s", PAGES * 4096ull);

	th_fill_vm(vm, tag, false);
	th_drain_lru();
	return vm;
}

static void test_a_page_that_cannot_be_put_back_is_parked_not_lost(void **state)
{
	struct mv_host_stats hs;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	quiet_host(&t);
	vm = filled_vm(&t, 11);
	m = mv_vm_mem(vm);
	/* before: the restore retried forever, and this call never returned */
	assert_int_equal(swap_out_unrestorable(vm, 7), -ENOSPC);
	assert_int_equal(mv_vm_page_state(vm, 7), MV_PAGE_SAMPLED);
	assert_int_equal(stats(vm).parked_pages, 1);
	assert_int_equal(stats(vm).parked_total, 1);
	assert_int_equal(mv_host_stats(t.host, &hs), 0);
	assert_int_equal(hs.parked_pages, 1);
	assert_int_equal(stats(vm).swap_errors, 1);
	assert_non_null(strstr(mv_host_errmsg(t.host), "park slot"));
	assert_int_equal(th_presence_mismatches(vm), 0);
	mv__inject_reset();
	/* the guest's touch brings it back, exactly */
	assert_true(th_check(m + 7 * MV_PAGE_SIZE, 11, 7, 0));
	assert_int_equal(mv_vm_page_state(vm, 7), MV_PAGE_PRIVATE);
	assert_int_equal(stats(vm).parked_pages, 0);
	assert_int_equal(th_bad_pages(vm, 11, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_a_parked_page_goes_back_at_the_next_reclaim(void **state)
{
	struct th_host t;
	mv_vm *vm;

	(void)state;
	quiet_host(&t);
	vm = filled_vm(&t, 12);
	assert_int_equal(swap_out_unrestorable(vm, 9), -ENOSPC);
	mv__inject_reset();
	assert_int_equal(mv_vm_page_state(vm, 9), MV_PAGE_SAMPLED);
	/* no touch: the next reclaim of the VM tries its parked pages first */
	assert_int_equal(mv_vm_swap_out_page(vm, 100), 0);
	assert_int_equal(mv_vm_page_state(vm, 9), MV_PAGE_PRIVATE);
	assert_int_equal(stats(vm).parked_pages, 0);
	assert_int_equal(th_presence_mismatches(vm), 0);
	assert_int_equal(th_bad_pages(vm, 12, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void
test_a_parked_page_goes_back_at_the_next_sampling_period(void **state)
{
	struct th_host t;
	mv_vm *vm;

	(void)state;
	quiet_host(&t);
	vm = filled_vm(&t, 13);
	assert_int_equal(swap_out_unrestorable(vm, 3), -ENOSPC);
	mv__inject_reset();
	mv__sample_period(vm);
	assert_int_equal(mv_vm_page_state(vm, 3), MV_PAGE_PRIVATE);
	assert_int_equal(stats(vm).parked_pages, 0);
	/* end the period that call started, putting its samples back */
	mv__sample_period(vm);
	assert_int_equal(th_bad_pages(vm, 13, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_reclaim_stops_when_every_park_slot_is_taken(void **state)
{
	uint64_t done = 0;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	quiet_host(&t);
	vm = filled_vm(&t, 14);
	for (uint64_t p = 0; p < MV_PARK_PAGES; p++) {
		assert_int_equal(swap_out_unrestorable(vm, p), -ENOSPC);
		mv__inject_reset();
		/* keep the next restore failing: re-arm before the next */
		mv__inject_fail(MV_INJ_UFFD_MOVE, 1, 0, ENOMEM);
		mv__inject_fail(MV_INJ_UFFD_COPY, 1, 0, ENOMEM);
	}
	assert_int_equal(stats(vm).parked_pages, MV_PARK_PAGES);
	/* a victim whose restore failed would have nowhere to go */
	assert_int_equal(mv_vm_swap_out_page(vm, 200), -EBUSY);
	assert_int_equal(mv_vm_swap_out(vm, 16, &done), -EBUSY);
	assert_int_equal(done, 0);
	assert_int_equal(mv_vm_page_state(vm, 200), MV_PAGE_PRIVATE);
	mv__inject_reset();
	/* once the kernel lets them back, reclaim goes on */
	assert_int_equal(mv_vm_swap_out_page(vm, 200), 0);
	assert_int_equal(stats(vm).parked_pages, 0);
	assert_int_equal(th_presence_mismatches(vm), 0);
	assert_int_equal(th_bad_pages(vm, 14, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

struct toucher {
	const uint8_t *page;
	uint64_t tag, ppn;
	bool ok;
};

static void *touch_main(void *arg)
{
	struct toucher *x = arg;

	x->ok = th_check(x->page, x->tag, x->ppn, 0);
	return NULL;
}

static bool three_put_back_errors(mv_vm *vm)
{
	struct mv_vm_stats st = stats(vm);

	return st.put_back_errors >= 3 && st.fault_errors >= 3;
}

static void
test_a_touch_the_kernel_keeps_refusing_is_retried_by_fresh_faults(void **state)
{
	struct toucher x = { 0 };
	struct th_host t;
	uint64_t faults;
	pthread_t th;
	mv_vm *vm;

	(void)state;
	quiet_host(&t);
	vm = filled_vm(&t, 15);
	assert_int_equal(swap_out_unrestorable(vm, 5), -ENOSPC);
	faults = stats(vm).faults;
	/* MOVE and COPY still fail: the guest's touch cannot be served yet */
	x = (struct toucher){ .page = (uint8_t *)mv_vm_mem(vm) + 5 * 4096,
			      .tag = 15,
			      .ppn = 5 };
	assert_int_equal(pthread_create(&th, NULL, touch_main, &x), 0);
	assert_true(poll_until(three_put_back_errors, vm));
	/* each failure gave the event up: the guest faulted afresh */
	assert_true(stats(vm).faults >= faults + 3);
	assert_int_equal(mv_vm_page_state(vm, 5), MV_PAGE_SAMPLED);
	mv__inject_reset();
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_true(x.ok);
	assert_int_equal(mv_vm_page_state(vm, 5), MV_PAGE_PRIVATE);
	assert_int_equal(th_bad_pages(vm, 15, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void
test_a_period_whose_pages_cannot_go_back_stays_open_and_loses_nothing(
	void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	uint64_t sampled;
	mv_vm *vm;

	(void)state;
	quiet_host(&t);
	vm = filled_vm(&t, 16);
	mv__sample_period(vm); /* the first period: pages go to their slots */
	sampled = stats(vm).state_pages[MV_PAGE_SAMPLED];
	assert_true(sampled > 0);
	mv__inject_fail(MV_INJ_UFFD_MOVE, 1, 0, ENOMEM);
	mv__inject_fail(MV_INJ_UFFD_COPY, 1, 0, ENOMEM);
	/* before: this looped forever, under vms_lock when the scheduler
	 * called it */
	mv__sample_period(vm);
	st = stats(vm);
	assert_int_equal(st.state_pages[MV_PAGE_SAMPLED], sampled);
	assert_true(st.put_back_errors >= sampled);
	assert_non_null(strstr(mv_host_errmsg(t.host), "sampling slot"));
	mv__inject_reset();
	/* the next period puts them back before it samples again */
	mv__sample_period(vm);
	mv__sample_period(vm);
	assert_int_equal(th_presence_mismatches(vm), 0);
	assert_int_equal(th_bad_pages(vm, 16, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * A VM holding no frame of its own has nothing to sample, yet once a whole
 * period has passed its demand is known: what it holds plus what it filled
 * since.  (Before, only a period with pages sampled counted, and a VM
 * whose memory is all shared or zero stayed unmeasured, so uncapped, and
 * was given memory it did not use.)
 */
static void
test_a_vm_with_nothing_to_sample_has_its_demand_after_a_period(void **state)
{
	struct th_host t;
	mv_vm *vm;
	uint8_t *m;

	(void)state;
	quiet_host(&t);
	vm = th_vm_create(&t, "s", PAGES * 4096ull);
	mv__sample_period(vm); /* the first period begins */
	assert_int_equal(mv__sample_demand_pages(vm), UINT64_MAX);
	mv__sample_period(vm); /* ... and ends, nothing sampled */
	assert_false(vm->sample.measured);
	assert_int_equal(mv__sample_demand_pages(vm), 0);
	m = mv_vm_mem(vm);
	th_fill(m, 21, 0, 0);
	th_quiesce(vm);
	assert_int_equal(mv__sample_demand_pages(vm), stats(vm).consumed_pages);
	assert_true(stats(vm).consumed_pages > 0);
	assert_true(th_check(m, 21, 0, 0));
	th_host_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_a_page_that_cannot_be_put_back_is_parked_not_lost),
		cmocka_unit_test(
			test_a_parked_page_goes_back_at_the_next_reclaim),
		cmocka_unit_test(
			test_a_parked_page_goes_back_at_the_next_sampling_period),
		cmocka_unit_test(
			test_reclaim_stops_when_every_park_slot_is_taken),
		cmocka_unit_test(
			test_a_touch_the_kernel_keeps_refusing_is_retried_by_fresh_faults),
		cmocka_unit_test(
			test_a_period_whose_pages_cannot_go_back_stays_open_and_loses_nothing),
		cmocka_unit_test(
			test_a_vm_with_nothing_to_sample_has_its_demand_after_a_period),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * test_host.c - machine memory: minFree by ESXi's tiers, settings by ESX
 * names, the frame budget, and the free-memory state.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "helper.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void test_minfree_follows_esxi_tiers(void **state)
{
	(void)state;
	assert_int_equal(mv_minfree_bytes(1 * GiB),
			 1 * GiB / 100 * 6 + (1 * GiB % 100) * 6 / 100);
	assert_int_equal(mv_minfree_bytes(4 * GiB),
			 4 * GiB / 100 * 6 + (4 * GiB % 100) * 6 / 100);
	/* 4 GiB at 6% + 8 GiB at 4% + 4 GiB at 2% */
	assert_true(mv_minfree_bytes(16 * GiB) / MiB ==
		    (4 * 1024 * 6 + 8 * 1024 * 4 + 4 * 1024 * 2) / 100);
	/* and 1% beyond 28 GiB */
	assert_true(
		mv_minfree_bytes(128 * GiB) / MiB ==
		(4 * 1024 * 6 + 8 * 1024 * 4 + 16 * 1024 * 2 + 100 * 1024 * 1) /
			100);
}

static void test_settings_default_to_esx_values(void **state)
{
	struct mv_settings s;

	(void)state;
	mv_settings_init(&s);
	assert_int_equal(s.share_scan_time_min, 60);
	assert_int_equal(s.share_scan_ghz, 4);
	assert_int_equal(s.share_rate_max_pages, 1024);
	assert_int_equal(s.share_force_salting, 2);
	assert_int_equal(s.ctl_max_pct, 65);
	assert_int_equal(s.mem_zip_max_pct, 10);
	assert_int_equal(s.idle_tax_pct, 75);
	assert_int_equal(s.sample_period_s, 60);
	assert_int_equal(s.balance_period_s, 15);
	assert_int_equal(s.fault_around_pages, 16);
}

static void test_settings_set_by_esx_name(void **state)
{
	struct mv_settings s;

	(void)state;
	mv_settings_init(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.ShareScanTime", "10"), 0);
	assert_int_equal(s.share_scan_time_min, 10);
	assert_int_equal(mv_settings_set(&s, "mem.idletax", " 0 "), 0);
	assert_int_equal(s.idle_tax_pct, 0);
}

static void test_settings_reject_unknown_names_and_bad_values(void **state)
{
	struct mv_settings s, before;

	(void)state;
	mv_settings_init(&s);
	before = s;
	assert_int_equal(mv_settings_set(&s, "Mem.NoSuchThing", "1"), -EINVAL);
	assert_int_equal(mv_settings_set(&s, "Mem.IdleTax", "100"), -EINVAL);
	assert_int_equal(mv_settings_set(&s, "Mem.IdleTax", "-1"), -EINVAL);
	assert_int_equal(mv_settings_set(&s, "Mem.IdleTax", "7x"), -EINVAL);
	assert_int_equal(mv_settings_set(&s, "Mem.IdleTax", ""), -EINVAL);
	assert_int_equal(mv_settings_set(&s, "Mem.FaultAroundPages", "65"),
			 -EINVAL);
	assert_int_equal(mv_settings_set(&s, "Mem.ShareScanTime",
					 "99999999999999999999"),
			 -EINVAL);
	assert_memory_equal(&s, &before, sizeof(s));
}

static void test_host_rejects_bad_config(void **state)
{
	struct mv_host_config cfg;
	mv_host *h = NULL;

	(void)state;
	mv_host_config_init(&cfg);
	cfg.memsize_bytes = 4096;
	assert_int_equal(mv_host_create(&cfg, &h), -EINVAL);
	cfg.memsize_bytes = 64 * MiB + 1;
	assert_int_equal(mv_host_create(&cfg, &h), -EINVAL);
	cfg.memsize_bytes = 64 * MiB;
	cfg.swapdir = "";
	assert_int_equal(mv_host_create(&cfg, &h), -EINVAL);
	assert_null(h);
}

static void test_idle_host_is_in_high_state(void **state)
{
	struct mv_host_stats st;
	struct th_host t;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	mv_host_stats(t.host, &st);
	assert_int_equal(st.state, MV_STATE_HIGH);
	assert_int_equal(st.free_pages, st.memsize_pages);
	assert_int_equal(st.minfree_pages, mv_minfree_bytes(64 * MiB) / 4096);
	assert_string_equal(mv_mem_state_name(st.state), "high");
	th_host_destroy(&t);
}

struct watch {
	mv_host *host;
	atomic_bool stop;
	uint64_t max_consumed; /* the most ever seen */
	bool over; /* ever above the budget */
};

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	struct mv_host_stats st;

	while (!atomic_load(&w->stop)) {
		mv_host_stats(w->host, &st);
		if (st.consumed_pages > w->max_consumed)
			w->max_consumed = st.consumed_pages;
		if (st.consumed_pages > st.memsize_pages)
			w->over = true;
	}
	return NULL;
}

static void test_consumption_never_exceeds_budget(void **state)
{
	struct watch w = { 0 };
	struct mv_host_stats st;
	struct th_host t;
	pthread_t th;
	uint8_t *m;
	mv_vm *a, *b;

	(void)state;
	th_host_create(&t, 8 * MiB, NULL);
	a = th_vm_create(&t, "a", 16 * MiB);
	b = th_vm_create(&t, "b", 16 * MiB);
	w.host = t.host;
	assert_int_equal(pthread_create(&th, NULL, watch_main, &w), 0);
	for (int round = 0; round < 2; round++) {
		m = mv_vm_mem(round ? b : a);
		for (uint64_t p = 0; p < 16 * MiB / MV_PAGE_SIZE; p++)
			m[p * MV_PAGE_SIZE] = 1;
	}
	atomic_store(&w.stop, true);
	pthread_join(th, NULL);
	assert_false(w.over);
	assert_int_equal(w.max_consumed <= 8 * MiB / MV_PAGE_SIZE, 1);
	th_settle(t.host);
	mv_host_stats(t.host, &st);
	assert_true(st.state <= MV_STATE_SOFT);
	assert_true(st.free_pages * 100 >= st.minfree_pages * 64);
	assert_true(st.reclaim_pages > 0);
	assert_true(st.alloc_waits > 0);
	mv_vm_destroy(a);
	mv_vm_destroy(b);
	th_host_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minfree_follows_esxi_tiers),
		cmocka_unit_test(test_settings_default_to_esx_values),
		cmocka_unit_test(test_settings_set_by_esx_name),
		cmocka_unit_test(
			test_settings_reject_unknown_names_and_bad_values),
		cmocka_unit_test(test_host_rejects_bad_config),
		cmocka_unit_test(test_idle_host_is_in_high_state),
		cmocka_unit_test(test_consumption_never_exceeds_budget),
	};

	return th_run_tests(tests);
}

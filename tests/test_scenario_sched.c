// SPDX-License-Identifier: MIT
/*
 * test_scenario_sched.c - the scenario keys of the scheduler: shares =
 * low|normal|high|NUMBER, reservation = SIZE and limit = SIZE per VM, what
 * they accept and what they refuse, and the shipped idle-tax scenarios.
 */

/* The parser is part of the command: compiled in, as test_scenario.c does. */
#include "../tools/scenario.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "scenario_expect.h"

#define MiB (1ull << 20)

static void test_sched_keys_reach_the_vm(void **state)
{
	struct scenario sc;
	char err[512];

	(void)state;
	if (scenario_load_string("[vm a]\nmemsize = 100M\nshares = high\n"
				 "reservation = 16M\nlimit = 64M\n"
				 "[vm b]\nmemsize = 100M\nshares = 777\n"
				 "[vm c]\nmemsize = 100M\n",
				 "t.ini", &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(scenario_vm_shares(&sc.vms[0]), 2000);
	assert_int_equal(sc.vms[0].reservation, 16 * MiB);
	assert_int_equal(sc.vms[0].limit, 64 * MiB);
	assert_int_equal(scenario_vm_shares(&sc.vms[1]), 777);
	/* normal by default, as in ESX */
	assert_int_equal(scenario_vm_shares(&sc.vms[2]), 1000);
	assert_int_equal(sc.vms[2].reservation, 0);
	assert_int_equal(sc.vms[2].limit, 0);
	scenario_free(&sc);
}

static void test_bad_sched_values_are_refused(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 64M\nshares = lots\n", 3,
		     "bad shares 'lots' (expected low, normal, high");
	expect_error("[vm a]\nmemsize = 64M\nshares = 0\n", 3,
		     "bad shares '0'");
	expect_error("[vm a]\nmemsize = 64M\nreservation = 12\n", 3,
		     "bad reservation '12'");
	expect_error("[vm a]\nmemsize = 64M\nlimit = -1M\n", 3,
		     "bad limit '-1M'");
	expect_error("[vm a]\nmemsize = 64M\nlimit = 128M\n", 1,
		     "reservation or limit out of range");
	expect_error("[vm a]\nmemsize = 64M\nreservation = 32M\nlimit = 16M\n",
		     1, "reservation or limit out of range");
}

static void load_shipped(const char *name, struct scenario *sc)
{
	const char *slash = strrchr(__FILE__, '/');
	int dirlen = slash ? (int)(slash - __FILE__) : 1;
	char err[512], path[512];

	snprintf(path, sizeof(path), "%.*s/../scenarios/%s", dirlen,
		 slash ? __FILE__ : ".", name);
	if (scenario_load_file(path, sc, err, sizeof(err)))
		fail_msg("%s", err);
}

static void test_idle_tax_scenarios_differ_only_in_the_tax(void **state)
{
	struct scenario a, b;

	(void)state;
	load_shipped("idle-tax-0.ini", &a);
	load_shipped("idle-tax-75.ini", &b);
	assert_int_equal(a.settings.idle_tax_pct, 0);
	assert_int_equal(b.settings.idle_tax_pct, 75);
	assert_int_equal(a.nvms, 2);
	assert_int_equal(b.nvms, 2);
	assert_true(scenario_vm_memsize_total(&a) > a.host.memsize);
	assert_int_equal(scenario_vm_shares(&a.vms[0]),
			 scenario_vm_shares(&a.vms[1]));
	a.settings.idle_tax_pct = b.settings.idle_tax_pct;
	assert_memory_equal(&a.settings, &b.settings, sizeof(a.settings));
	scenario_free(&a);
	scenario_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sched_keys_reach_the_vm),
		cmocka_unit_test(test_bad_sched_values_are_refused),
		cmocka_unit_test(
			test_idle_tax_scenarios_differ_only_in_the_tax),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

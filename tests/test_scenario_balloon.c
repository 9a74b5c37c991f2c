// SPDX-License-Identifier: MIT
/*
 * test_scenario_balloon.c - the scenario keys of ballooning: balloon =
 * on|off and balloon_target = SIZE per VM, what they accept and what they
 * refuse, with the line named (test_scenario.c has balloon = on without
 * the burst workload), and the shipped balloon scenario.
 */

/* The parser is part of the command: compiled in, as test_scenario.c does. */
#include "../tools/scenario.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "scenario_expect.h"

#define MiB (1ull << 20)

static void test_balloon_keys_reach_the_vm(void **state)
{
	struct scenario sc;
	char err[512];

	(void)state;
	if (scenario_load_string("[vm a]\nmemsize = 256M\nworkload = burst\n"
				 "balloon = on\nballoon_target = 128M\n"
				 "[vm b]\nmemsize = 64M\nballoon_target = 0\n"
				 "[vm c]\nmemsize = 64M\nballoon = OFF\n",
				 "t.ini", &sc, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(sc.vms[0].workload, MVG_BURST);
	assert_int_equal(sc.vms[0].balloon, 1);
	assert_int_equal(sc.vms[0].balloon_target, 128 * MiB);
	assert_int_equal(sc.vms[1].balloon, 0);
	assert_int_equal(sc.vms[1].balloon_target, 0);
	assert_int_equal(sc.vms[2].balloon, 0);
	scenario_free(&sc);
}

static void test_bad_balloon_values_are_refused(void **state)
{
	(void)state;
	expect_error("[vm a]\nmemsize = 64M\nballoon = yes\n", 3,
		     "bad balloon 'yes' (expected on or off)");
	expect_error("[vm a]\nmemsize = 64M\nballoon_target = 12\n", 3,
		     "bad balloon_target '12'");
	expect_error("[vm a]\nmemsize = 64M\nballoon_target = lots\n", 3,
		     "bad balloon_target 'lots'");
}

static void test_shipped_balloon_scenario_parses(void **state)
{
	const char *slash = strrchr(__FILE__, '/');
	int dirlen = slash ? (int)(slash - __FILE__) : 1;
	struct scenario sc;
	char err[512], path[512];
	size_t on = 0;

	(void)state;
	snprintf(path, sizeof(path), "%.*s/../scenarios/balloon.ini", dirlen,
		 slash ? __FILE__ : ".");
	if (scenario_load_file(path, &sc, err, sizeof(err)))
		fail_msg("%s", err);
	for (size_t i = 0; i < sc.nvms; i++)
		on += sc.vms[i].balloon && sc.vms[i].balloon_target;
	assert_true(on > 0);
	assert_true(scenario_vm_memsize_total(&sc) > sc.host.memsize);
	scenario_free(&sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_balloon_keys_reach_the_vm),
		cmocka_unit_test(test_bad_balloon_values_are_refused),
		cmocka_unit_test(test_shipped_balloon_scenario_parses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

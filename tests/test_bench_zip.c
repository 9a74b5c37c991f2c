// SPDX-License-Identifier: MIT
/*
 * test_bench_zip.c - `memvisor bench zip` runs to the end on a small mix:
 * its own checks (every page the guest reads back, every page cached iff
 * LZ4's full search fits it in 2 KiB) pass with Mem.ZipFastAccel at its
 * default, and its JSON has the fast search's row beside the full one with
 * the note by class.  Before the fault-in VMs were held to the full search,
 * the run failed at its first text page near the 2 KiB limit.  Nothing
 * here is about speed: no figure is held to a bound.
 *
 * Every wait polls the command's exit with a deadline.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "helper.h"

/* Longest the small run may take on a loaded machine before it is hung. */
#define RUN_MS 300000

static int setup(void **state)
{
	return th_cmd_setup(state, "bench-zip");
}

static void test_the_mix_runs_through_with_the_fast_search_beside(void **state)
{
	struct th_cmd *f = *state;
	cJSON *root;

	th_cmd_start(f, "bench", "zip", "--pages", "1024", "--trials", "1",
		     "--json", "--swapdir", f->dir, NULL);
	assert_int_equal(th_wait_exit(&f->pid, f->out, RUN_MS), 0);
	root = th_cmd_stdout_report(f);
	assert_true(th_jnum(root, "zip_fast_all_us") > 0);
	assert_true(th_jnum(root, "zip_fast_all_floor_us") ==
		    th_jnum(root, "zip_all_us"));
	assert_true(th_jnum(root, "cached_pages") > 0);
	assert_true(th_jnote(root, "LZ4's fast search"));
	cJSON_Delete(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_the_mix_runs_through_with_the_fast_search_beside,
			setup, th_cmd_teardown),
	};

	return th_run_tests(tests);
}

// SPDX-License-Identifier: MIT
/*
 * test_bench_swapin.c - `memvisor bench swapin` runs to the end on a small
 * VM: its own checks (every page read back in its latest version after each
 * swap-in, the VM's counters adding up) pass in every row, the pinned rows
 * included, and its JSON has the pinned rows beside the unpinned one, each
 * against the raw 4 KiB read, with the note naming the CPUs.  Nothing here
 * is about speed: no figure is held to a bound.
 *
 * Every wait polls the command's exit with a deadline.
 */
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
	return th_cmd_setup(state, "bench-swapin");
}

static void test_the_pinned_rows_run_beside_the_unpinned_one(void **state)
{
	static const char *const rows[] = { "swapin1_rand", "swapin1_pin_first",
					    "swapin1_pin_last" };
	struct th_cmd *f = *state;
	char key[64];
	cJSON *root;

	th_cmd_start(f, "bench", "swapin", "--pages", "1024", "--trials", "1",
		     "--json", "--swapdir", f->dir, NULL);
	assert_int_equal(th_wait_exit(&f->pid, f->out, RUN_MS), 0);
	root = th_cmd_stdout_report(f);
	for (unsigned i = 0; i < 3; i++) {
		snprintf(key, sizeof(key), "%s_us", rows[i]);
		assert_true(th_jnum(root, key) > 0);
		snprintf(key, sizeof(key), "%s_floor_us", rows[i]);
		assert_true(th_jnum(root, key) ==
			    th_jnum(root, "raw_pages_us"));
	}
	assert_true(th_jnote(root, "first CPU, last CPU: the guest alone on"));
	cJSON_Delete(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_the_pinned_rows_run_beside_the_unpinned_one, setup,
			th_cmd_teardown),
	};

	return th_run_tests(tests);
}

// SPDX-License-Identifier: MIT
/*
 * test_bench_fault.c - `memvisor bench fault`'s pinned figures (the
 * service beside the vCPUs), by running the built command on a few pages
 * for one trial: with two CPUs its JSON has the five pinned rows, each a
 * time with its range, memvisor's two beside the raw handler on the
 * guest's CPU, and ratios that are the quotients of those rows; a
 * Mem.ServiceAffinity=1 run whose fault thread did not follow the guest
 * would have failed the command.  Given one CPU it skips them with a note
 * saying why.  The fault served in the faulting thread (SIGBUS) has its
 * row beside the round trip.  Nothing here is about speed: no figure is held to a bound.
 *
 * Every wait polls the command's exit with a deadline.
 */
#include <math.h>
#include <sched.h>
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

/* Longest the tiny run may take on a loaded machine before it is hung. */
#define RUN_MS 120000

static const char *const pinned_rows[] = { "pin_kernel", "pin_floor_same",
					   "pin_floor_other", "pin_sa0",
					   "pin_sa1" };
#define NPINNED (sizeof(pinned_rows) / sizeof(pinned_rows[0]))

static int setup(void **state)
{
	return th_cmd_setup(state, "bench-fault");
}

/* Starts `memvisor bench fault` on 64 pages, one trial, --json. */
static void start_bench(struct th_cmd *f)
{
	th_cmd_start(f, "bench", "fault", "--pages", "64", "--trials", "1",
		     "--json", "--swapdir", f->dir, NULL);
}

/* Waits for it to succeed; the parsed report (its output is the JSON
 * object alone). */
static cJSON *bench_json(struct th_cmd *f)
{
	cJSON *root;

	assert_int_equal(th_wait_exit(&f->pid, f->out, RUN_MS), 0);
	root = th_cmd_stdout_report(f);
	return root;
}

/* The row key's median, min or max ("_us", "_min_us", ...): a number. */
static double row(const cJSON *root, const char *key, const char *suffix)
{
	char name[64];

	snprintf(name, sizeof(name), "%s%s", key, suffix);
	return th_jnum(root, name);
}

/* a equals b but for the rounding of the figures in the JSON (3 decimals) */
static bool near(double a, double b)
{
	return fabs(a - b) <= 0.01 * fabs(b) + 0.001;
}

static void test_pinned_figures_stand_beside_the_same_cpu_floor(void **state)
{
	struct th_cmd *f = *state;
	double med, same;
	cpu_set_t cpus;
	cJSON *root;
	int cpu, other;

	assert_int_equal(sched_getaffinity(0, sizeof(cpus), &cpus), 0);
	if (CPU_COUNT(&cpus) < 2)
		skip(); /* the next test covers one CPU */
	start_bench(f);
	root = bench_json(f);
	for (unsigned i = 0; i < NPINNED; i++) {
		med = row(root, pinned_rows[i], "_us");
		assert_true(isfinite(med) && med > 0);
		assert_true(row(root, pinned_rows[i], "_min_us") <= med);
		assert_true(med <= row(root, pinned_rows[i], "_max_us"));
	}
	/* memvisor's two rows both stand beside the same-CPU floor */
	same = row(root, "pin_floor_same", "_us");
	assert_true(row(root, "pin_sa0", "_floor_us") == same);
	assert_true(row(root, "pin_sa1", "_floor_us") == same);
	assert_true(near(th_jnum(root, "pin_sa1_over_sa0"),
			 row(root, "pin_sa1", "_us") /
				 row(root, "pin_sa0", "_us")));
	assert_true(near(th_jnum(root, "pin_other_over_same"),
			 row(root, "pin_floor_other", "_us") / same));
	cpu = (int)th_jnum(root, "pin_guest_cpu");
	other = (int)th_jnum(root, "pin_other_cpu");
	assert_true(cpu != other);
	assert_true(CPU_ISSET(cpu, &cpus) && CPU_ISSET(other, &cpus));
	assert_true(th_jnote(root, "ServiceAffinity=1 takes"));
	cJSON_Delete(root);
}

static void test_pinned_figures_on_one_cpu_are_skipped_saying_so(void **state)
{
	struct th_cmd *f = *state;
	cpu_set_t was, one;
	cJSON *root;

	/* the command inherits the mask of the thread that starts it */
	assert_int_equal(sched_getaffinity(0, sizeof(was), &was), 0);
	CPU_ZERO(&one);
	for (int c = 0; c < CPU_SETSIZE && !CPU_COUNT(&one); c++)
		if (CPU_ISSET(c, &was))
			CPU_SET(c, &one);
	assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
	start_bench(f);
	assert_int_equal(sched_setaffinity(0, sizeof(was), &was), 0);
	root = bench_json(f);
	assert_true(th_jnote(root, "pinned guest figures skipped: they need "
				   "two CPUs, and this process may use 1"));
	assert_null(cJSON_GetObjectItem(root, "pin_sa1_us"));
	/* the rest of the benchmark still ran */
	assert_true(th_jnum(root, "fault1_seq_us") > 0);
	cJSON_Delete(root);
}

/*
 * The fault served in the faulting thread (UFFD_FEATURE_SIGBUS) stands
 * beside the handler thread's round trip, every page checked by the
 * command (a wrong byte fails it), with its ratio in a note.
 */
static void
test_the_in_thread_sigbus_floor_stands_beside_the_round_trip(void **state)
{
	struct th_cmd *f = *state;
	double med;
	cJSON *root;

	start_bench(f);
	root = bench_json(f);
	med = row(root, "sigbus_seq", "_us");
	assert_true(isfinite(med) && med > 0);
	assert_true(row(root, "sigbus_seq", "_min_us") <= med);
	assert_true(row(root, "sigbus_seq", "_floor_us") ==
		    row(root, "floor_seq", "_us"));
	assert_true(th_jnote(root, "serving the fault in the faulting thread"));
	cJSON_Delete(root);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, th_cmd_teardown)
	const struct CMUnitTest tests[] = {
		T(test_pinned_figures_stand_beside_the_same_cpu_floor),
		T(test_pinned_figures_on_one_cpu_are_skipped_saying_so),
		T(test_the_in_thread_sigbus_floor_stands_beside_the_round_trip),
	};
#undef T
	return th_run_tests(tests);
}

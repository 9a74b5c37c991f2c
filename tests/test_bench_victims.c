// SPDX-License-Identifier: MIT
/*
 * test_bench_victims.c - `memvisor bench victims`, the simulation of
 * reclaim's victim choice, by running the built command on small traces:
 * the oracle misses as often as the popularity outside its frames says,
 * with uniform keys and Zipf keys (a check of the simulation itself); with
 * Zipf keys the oracle misses
 * least and memvisor's clock less than ESX's random choice; one set of
 * options gives one set of figures; bad options are refused with the
 * reason.  Nothing here is about speed.
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

/* Longest a small trace may take on a loaded machine. */
#define RUN_MS 120000

static const char *const policies[] = { "oracle", "lru", "random", "cold" };
#define NPOL (sizeof(policies) / sizeof(policies[0]))

static int setup(void **state)
{
	return th_cmd_setup(state, "bench-victims");
}

/* Runs the command on 4096 pages, 60% resident, 300k operations, with the
 * extra option and its value (or none); fills m with each policy's misses
 * per operation. */
static double run_victims(struct th_cmd *f, const char *opt, const char *val,
			  double *m)
{
	double expect;
	cJSON *root, *mo;

	th_cmd_start(f, "bench", "victims", "--pages", "4096", "--resident",
		     "60", "--ops", "300000", "--json", opt, val, NULL);
	assert_int_equal(th_wait_exit(&f->pid, f->out, RUN_MS), 0);
	root = th_cmd_stdout_report(f);
	mo = cJSON_GetObjectItem(root, "misses_per_op");
	assert_non_null(mo);
	for (unsigned i = 0; i < NPOL; i++) {
		m[i] = th_jnum(mo, policies[i]);
		assert_true(isfinite(m[i]) && m[i] >= 0 && m[i] <= 1);
	}
	assert_true(fabs(th_jnum(root, "cold_vs_lru") - m[3] / m[1]) < 1e-9);
	expect = th_jnum(root, "oracle_expected");
	cJSON_Delete(root);
	return expect;
}

/* 300k draws: the oracle's rate is within a few standard errors of the
 * popularity it leaves out */
static void oracle_as_expected(struct th_cmd *f, const char *zipf)
{
	double m[NPOL], expect;

	expect = run_victims(f, "--zipf", zipf, m);
	assert_true(expect > 0.01 && expect < 1);
	if (fabs(m[0] - expect) > 0.01)
		fail_msg("zipf %s: the oracle missed %.4f, expected %.4f", zipf,
			 m[0], expect);
}

static void
test_the_oracle_misses_the_popularity_outside_its_frames(void **state)
{
	/* uniform keys: pages differ only by how many keys land on each */
	oracle_as_expected(*state, "0");
	oracle_as_expected(*state, "0.99");
}

static void
test_zipf_keys_order_the_oracle_then_the_clock_then_random(void **state)
{
	double m[NPOL];

	run_victims(*state, NULL, NULL, m);
	assert_true(m[0] > 0);
	for (unsigned i = 1; i < NPOL; i++)
		assert_true(m[0] <= m[i]);
	/* the clock learns which pages come back soon; random does not */
	assert_true(m[3] < 0.95 * m[2]);
}

static void test_the_same_options_give_the_same_figures(void **state)
{
	double a[NPOL], b[NPOL];

	run_victims(*state, "--shift", "100000", a);
	run_victims(*state, "--shift", "100000", b);
	for (unsigned i = 0; i < NPOL; i++)
		assert_true(a[i] == b[i]);
}

static void test_bad_options_are_refused_with_the_reason(void **state)
{
	static const char *const bad[][3] = {
		{ "--resident", "100", "bad --resident '100'" },
		{ "--zipf", "x", "bad --zipf 'x'" },
		{ "--pages", "8", "bad --pages '8'" },
	};
	struct th_cmd *f = *state;
	char *text;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		th_cmd_start(f, "bench", "victims", bad[i][0], bad[i][1], NULL);
		assert_int_equal(th_wait_exit(&f->pid, f->out, RUN_MS), 2);
		text = th_slurp(f->out);
		if (!strstr(text, bad[i][2]))
			fail_msg("expected '%s' in '%s'", bad[i][2], text);
		free(text);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_the_oracle_misses_the_popularity_outside_its_frames,
			setup, th_cmd_teardown),
		cmocka_unit_test_setup_teardown(
			test_zipf_keys_order_the_oracle_then_the_clock_then_random,
			setup, th_cmd_teardown),
		cmocka_unit_test_setup_teardown(
			test_the_same_options_give_the_same_figures, setup,
			th_cmd_teardown),
		cmocka_unit_test_setup_teardown(
			test_bad_options_are_refused_with_the_reason, setup,
			th_cmd_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

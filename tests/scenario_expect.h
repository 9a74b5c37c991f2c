/* SPDX-License-Identifier: MIT */
/*
 * scenario_expect.h - the scenario tests' one check of a refused
 * scenario.  Included by test files that include tools/scenario.c and
 * cmocka.h before it.
 */
#ifndef MV_TEST_SCENARIO_EXPECT_H
#define MV_TEST_SCENARIO_EXPECT_H

/*
 * Parses text as "t.ini" and checks that it is refused, that the message
 * begins with "t.ini:LINE: " and contains what, and that nothing of the
 * scenario is left behind.
 */
static void expect_error(const char *text, int line, const char *what)
{
	struct scenario sc;
	char err[512], prefix[32];

	assert_int_equal(scenario_load_string(text, "t.ini", &sc, err,
					      sizeof(err)),
			 -EINVAL);
	snprintf(prefix, sizeof(prefix), "t.ini:%d: ", line);
	if (strncmp(err, prefix, strlen(prefix)) || !strstr(err, what))
		fail_msg("expected \"%s...%s...\", got \"%s\"", prefix, what,
			 err);
	assert_int_equal(sc.nvms, 0);
	assert_null(sc.vms);
	assert_null(sc.source);
}

#endif /* MV_TEST_SCENARIO_EXPECT_H */

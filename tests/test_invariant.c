// SPDX-License-Identifier: MIT
/*
 * test_invariant.c - invariants that execute: MV_ASSERT and
 * pmap_assert_locked stop a debug or sanitizer build at the first broken
 * invariant, and cost nothing (nor evaluate anything) in the default build.
 * Each case that must stop runs in a child process.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "pmap.h"

/* Runs fn in a child with stderr closed; returns its wait status. */
static int in_child(void (*fn)(void))
{
	int status = 0;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		/* cmocka catches these to report a test; the child must die */
		signal(SIGILL, SIG_DFL);
		signal(SIGTRAP, SIG_DFL);
		close(2);
		fn();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

/* A debug build stops at the trap; the default build runs on. */
static void assert_stopped_only_in_debug_builds(int status)
{
#ifdef MV_DEBUG
	assert_true(WIFSIGNALED(status) && (WTERMSIG(status) == SIGILL ||
					    WTERMSIG(status) == SIGTRAP));
#else
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
#endif
}

static void unlock_an_unlocked_entry(void)
{
	struct {
		mv_pte pmap[1];
		struct mv__pmap_census census;
	} one = { .pmap = { pmap_make(MV_PAGE_PRIVATE, 0, PMAP_FROM_ZEROS) },
		  .census = { .pages[MV_PAGE_PRIVATE] = 1 } };

	pmap_unlock(&one, 0, pmap_peek(&one.pmap[0]));
}

static void make_an_entry_with_too_large_a_payload(void)
{
	mv_pte e = pmap_make(MV_PAGE_SWAPPED, 0, 1ull << PMAP_PAYLOAD_BITS);

	(void)e;
}

static void test_unlocking_an_unlocked_entry_stops_a_debug_build(void **state)
{
	int status;

	(void)state;
	status = in_child(unlock_an_unlocked_entry);
	assert_stopped_only_in_debug_builds(status);
}

static void test_a_payload_too_large_stops_a_debug_build(void **state)
{
	int status;

	(void)state;
	status = in_child(make_an_entry_with_too_large_a_payload);
	assert_stopped_only_in_debug_builds(status);
}

static void test_a_locked_entry_passes_its_check(void **state)
{
	struct {
		mv_pte pmap[1];
		struct mv__pmap_census census;
	} one = { .pmap = { pmap_make(MV_PAGE_PRIVATE, 0, PMAP_FROM_ZEROS) },
		  .census = { .pages[MV_PAGE_PRIVATE] = 1 } };
	uint64_t v;

	(void)state;
	v = pmap_lock(&one.pmap[0]);
	pmap_assert_locked(&one.pmap[0]);
	pmap_unlock(&one, 0, v);
	assert_int_equal(pmap_peek(&one.pmap[0]) & PMAP_LOCK, 0);
}

static void test_assert_evaluates_only_in_debug_builds(void **state)
{
	int n = 0;

	(void)state;
	MV_ASSERT(++n == 1);
#ifdef MV_DEBUG
	assert_int_equal(n, 1);
#else
	assert_int_equal(n, 0);
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_unlocking_an_unlocked_entry_stops_a_debug_build),
		cmocka_unit_test(test_a_payload_too_large_stops_a_debug_build),
		cmocka_unit_test(test_a_locked_entry_passes_its_check),
		cmocka_unit_test(test_assert_evaluates_only_in_debug_builds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * test_swap_slots.c - the swap file's slot allocator (src/swap.c,
 * mv__swap_alloc): it hands out only free slots, never one past the end,
 * finds a run of the size asked anywhere after its cursor (wrapping once),
 * else the longest run there is; and it chooses exactly as the plain
 * definition, a slot at a time, does, on random maps of every shape.
 * No file: the map alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "helper.h"
#include "internal.h"
#include "swap.h"

static struct mv__swap sw;

/* Idempotent: a failed test's teardown frees what it left. */
static void map_cleanup(void *arg)
{
	(void)arg;
	if (!sw.map)
		return;
	free(sw.map);
	sw.map = NULL;
	pthread_mutex_destroy(&sw.lock);
}

/* An empty map of npages slots; a test registers map_cleanup once. */
static void map_up(uint64_t npages)
{
	memset(&sw, 0, sizeof(sw));
	sw.fd = -1;
	sw.npages = npages;
	sw.map = calloc((npages + 63) / 64, sizeof(uint64_t));
	assert_non_null(sw.map);
	pthread_mutex_init(&sw.lock, NULL);
}

static void set_used(uint64_t lo, uint64_t hi, bool used)
{
	for (uint64_t i = lo; i < hi; i++) {
		if (used)
			sw.map[i / 64] |= 1ull << (i % 64);
		else
			sw.map[i / 64] &= ~(1ull << (i % 64));
	}
}

static bool is_used(uint64_t i)
{
	return sw.map[i / 64] >> (i % 64) & 1;
}

static void map_down(void)
{
	map_cleanup(NULL);
}

static uint64_t below(uint64_t *rng, uint64_t n)
{
	return th_xs(rng) % n;
}

/* The allocator's definition, a slot at a time: the first run of want
 * from the cursor on (wrapping once, runs not wrapping around the end),
 * else the first longest run. */
static unsigned reference(uint64_t cursor, unsigned want, uint64_t *slot)
{
	uint64_t start = 0, best = 0, run = 0, bestlen = 0, i = cursor;

	for (uint64_t left = sw.npages; left && bestlen < want; left--, i++) {
		if (i == sw.npages) {
			i = 0;
			run = 0;
		}
		if (is_used(i)) {
			run = 0;
			continue;
		}
		if (!run++)
			start = i;
		if (run > bestlen) {
			best = start;
			bestlen = run;
		}
	}
	*slot = best;
	return (unsigned)bestlen;
}

/* A run of 16 far past the cursor, beyond single free slots, is found. */
static void test_a_run_is_found_anywhere_after_the_cursor(void **state)
{
	uint64_t slot;

	(void)state;
	th_at_teardown(map_cleanup, NULL);
	map_up(1000);
	set_used(0, 1000, true);
	set_used(5, 6, false);
	set_used(410, 411, false);
	set_used(700, 716, false);
	sw.cursor = 400;
	assert_int_equal(mv__swap_alloc(&sw, 16, &slot), 16);
	assert_int_equal(slot, 700);
	for (uint64_t i = 700; i < 716; i++)
		assert_true(is_used(i));
	assert_int_equal(sw.used, 16);
	assert_int_equal(sw.cursor, 716);
	map_down();
}

/* With no run as long as asked, the longest is taken, here one that
 * crosses from one map word into the next. */
static void test_the_longest_run_is_taken_when_none_is_long_enough(void **state)
{
	uint64_t slot;

	(void)state;
	th_at_teardown(map_cleanup, NULL);
	map_up(1000);
	set_used(0, 1000, true);
	set_used(100, 103, false);
	set_used(60, 67, false); /* 7 slots over the word boundary at 64 */
	set_used(900, 905, false);
	sw.cursor = 80;
	assert_int_equal(mv__swap_alloc(&sw, 16, &slot), 7);
	assert_int_equal(slot, 60);
	map_down();
}

/* The last slot of a file whose size is no multiple of 64 is handed out,
 * and nothing past it ever is. */
static void test_the_last_slot_is_found_and_none_past_it(void **state)
{
	uint64_t slot;

	(void)state;
	th_at_teardown(map_cleanup, NULL);
	map_up(1000);
	set_used(0, 1000, true);
	set_used(999, 1000, false);
	sw.cursor = 3;
	assert_int_equal(mv__swap_alloc(&sw, 16, &slot), 1);
	assert_int_equal(slot, 999);
	assert_int_equal(sw.cursor, 0);
	/* all used now: nothing, and the bits past 1000 stay clear */
	assert_int_equal(mv__swap_alloc(&sw, 16, &slot), 0);
	assert_int_equal(sw.map[15] >> (1000 % 64), 0);
	map_down();
}

/* A run does not wrap from the last slot to the first. */
static void test_a_run_does_not_wrap_around_the_end(void **state)
{
	uint64_t slot;

	(void)state;
	th_at_teardown(map_cleanup, NULL);
	map_up(1024);
	set_used(0, 1024, true);
	set_used(1020, 1024, false);
	set_used(0, 3, false);
	sw.cursor = 512;
	assert_int_equal(mv__swap_alloc(&sw, 8, &slot), 4);
	assert_int_equal(slot, 1020);
	map_down();
}

/* Random maps (sparse, dense, clustered), random cursors and sizes: the
 * same slots as the definition, every one free before and used after. */
static void test_choices_match_the_slot_by_slot_definition(void **state)
{
	static const uint64_t sizes[] = { 1, 63, 64, 65, 1000, 4096, 98304 };
	uint64_t rng = 0x5107, slot, ref_slot, cursor;
	unsigned want, got, ref;

	(void)state;
	th_at_teardown(map_cleanup, NULL);
	for (unsigned z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		for (unsigned t = 0; t < 300; t++) {
			unsigned pct = (unsigned)below(&rng, 101);
			unsigned clump = 1 + (unsigned)below(&rng, 24);

			map_up(sizes[z]);
			for (uint64_t i = 0; i < sizes[z]; i += clump)
				set_used(i,
					 i + clump < sizes[z] ? i + clump :
								sizes[z],
					 below(&rng, 100) < pct);
			cursor = below(&rng, sizes[z]);
			want = 1 + (unsigned)below(&rng, 16);
			ref = reference(cursor, want, &ref_slot);
			sw.cursor = cursor;
			got = mv__swap_alloc(&sw, want, &slot);
			assert_int_equal(got, ref);
			if (got)
				assert_int_equal(slot, ref_slot);
			for (uint64_t i = slot; i < slot + got; i++)
				assert_true(is_used(i));
			assert_true(slot + got <= sizes[z]);
			map_down();
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_run_is_found_anywhere_after_the_cursor),
		cmocka_unit_test(
			test_the_longest_run_is_taken_when_none_is_long_enough),
		cmocka_unit_test(test_the_last_slot_is_found_and_none_past_it),
		cmocka_unit_test(test_a_run_does_not_wrap_around_the_end),
		cmocka_unit_test(
			test_choices_match_the_slot_by_slot_definition),
	};

	return th_run_tests(tests);
}

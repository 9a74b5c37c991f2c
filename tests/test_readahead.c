// SPDX-License-Identifier: MIT
/*
 * test_readahead.c - adaptive swap-in (readahead.c): the window grows for
 * faults that go on where the last read ended and shrinks to one page for
 * faults anywhere else, alone and then on a live VM, where a sequential
 * read-back reads many pages per fault, a random one a single page, and
 * every byte comes back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "helper.h"
#include "internal.h"

#define MiB (1ull << 20)
#define MAX 16 /* Mem.SwapInClusterPages's default */

/* A fault on ppn reads the aligned window around it; returns the window
 * and the run's end through *end. */
static unsigned fault_at(struct mv_vm *vm, uint64_t ppn, uint64_t *end)
{
	unsigned stream, w = mv__ra_window(vm, ppn, MAX, &stream);
	uint64_t lo = ppn - ppn % w;

	/* the pages before ppn are resident: the run starts at ppn */
	mv__ra_record(vm, stream, ppn, lo + w - ppn, w);
	*end = lo + w;
	return w;
}

static struct mv_vm *fresh_vm(void)
{
	struct mv_vm *vm = calloc(1, sizeof(*vm));

	assert_non_null(vm);
	return vm;
}

static void test_a_fresh_vm_reads_the_whole_cluster(void **state)
{
	struct mv_vm *vm = fresh_vm();
	uint64_t end;

	(void)state;
	assert_int_equal(mv__ra_current(vm, MAX), MAX);
	assert_int_equal(fault_at(vm, 100, &end), MAX);
	free(vm);
}

static void test_random_faults_shrink_the_window_to_one(void **state)
{
	struct mv_vm *vm = fresh_vm();
	uint64_t end, rng = 7, ppn;
	unsigned w = MAX;

	(void)state;
	for (int i = 0; i < 50; i++) {
		/* far apart: never just after a recent run */
		ppn = (uint64_t)i * 1000 + th_xs(&rng) % 500;
		w = fault_at(vm, ppn, &end);
	}
	assert_int_equal(w, 1);
	assert_int_equal(mv__ra_current(vm, MAX), 1);
	assert_int_equal(atomic_load(&vm->ra.hits), 0);
	assert_int_equal(atomic_load(&vm->ra.misses), 50);
	free(vm);
}

static void test_sequential_faults_grow_the_window_to_the_max(void **state)
{
	struct mv_vm *vm = fresh_vm();
	uint64_t end, ppn;
	unsigned w = 0;

	(void)state;
	for (int i = 0; i < 20; i++)
		fault_at(vm, (uint64_t)i * 1000, &end);
	assert_int_equal(mv__ra_current(vm, MAX), 1);
	/* a guest walking up from 5000 faults where each read ended */
	ppn = 5000;
	for (int i = 0; i < 8; i++) {
		w = fault_at(vm, ppn, &end);
		ppn = end;
	}
	assert_int_equal(w, MAX);
	assert_int_equal(atomic_load(&vm->ra.hits), 7);
	free(vm);
}

static void test_a_walk_past_resident_pages_is_still_a_hit(void **state)
{
	struct mv_vm *vm = fresh_vm();
	uint64_t end;
	unsigned w;

	(void)state;
	w = fault_at(vm, 64, &end);
	/* pages end .. end + 2 were resident: the walk faults after them */
	assert_int_equal(fault_at(vm, end + 3, &end), MAX);
	assert_int_equal(w, MAX);
	assert_int_equal(atomic_load(&vm->ra.hits), 1);
	free(vm);
}

static void test_interleaved_walks_each_grow(void **state)
{
	struct mv_vm *vm = fresh_vm();
	uint64_t a = 10000, b = 50000, ea, eb;
	unsigned wa = 0, wb = 0;

	(void)state;
	for (int i = 0; i < 20; i++)
		fault_at(vm, (uint64_t)i * 1000 + 100000, &ea);
	for (int i = 0; i < 8; i++) {
		wa = fault_at(vm, a, &ea);
		wb = fault_at(vm, b, &eb);
		a = ea;
		b = eb;
	}
	assert_int_equal(wa, MAX);
	assert_int_equal(wb, MAX);
	free(vm);
}

/* A VM of `pages` pages filled with tag 5, every page swapped out. */
static mv_vm *swapped_vm(struct th_host *t, uint64_t pages)
{
	mv_vm *vm;

	th_host_create(t, 64 * MiB, NULL);
	vm = th_vm_create(t, "ra", pages * MV_PAGE_SIZE);
	th_fill_vm(vm, 5, false);
	for (uint64_t p = 0; p < pages; p++)
		assert_int_equal(mv_vm_swap_out_page(vm, p), 0);
	return vm;
}

static void
test_sequential_read_back_grows_to_many_pages_per_fault(void **state)
{
	uint64_t pages = 2048, bad = 0;
	struct mv_vm_stats before, after;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	vm = swapped_vm(&t, pages);
	m = mv_vm_mem(vm);
	/* scattered touches first, each far past the last run's end: the
	 * window comes down to one page */
	for (uint64_t i = 0; i < 24; i++)
		bad += !th_check(m + (1024 + i * 37) * MV_PAGE_SIZE, 5,
				 1024 + i * 37, 0);
	assert_int_equal(mv_vm_stats(vm, &before), 0);
	assert_int_equal(before.swapin_window, 1);
	/* then a walk up through the first half */
	for (uint64_t p = 0; p < 1024; p++)
		bad += !th_check(m + p * MV_PAGE_SIZE, 5, p, 0);
	assert_int_equal(bad, 0);
	assert_int_equal(mv_vm_stats(vm, &after), 0);
	assert_int_equal(after.swapin_window, MAX);
	/* 1024 pages in a few more runs than 1024 / 16: 1, 2, 4, 8, 16... */
	assert_true(after.swapin_runs - before.swapin_runs <= 1024 / MAX + 8);
	assert_true(after.swapin_ra_hits - before.swapin_ra_hits >=
		    after.swapin_runs - before.swapin_runs - 2);
	assert_int_equal(th_bad_pages(vm, 5, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_random_read_back_reads_one_page_per_fault(void **state)
{
	uint64_t pages = 2048, *order, rng = 11, j, tmp, bad = 0;
	struct mv_vm_stats before, after;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	vm = swapped_vm(&t, pages);
	m = mv_vm_mem(vm);
	order = malloc(pages * sizeof(*order));
	assert_non_null(order);
	for (uint64_t p = 0; p < pages; p++)
		order[p] = p;
	for (uint64_t p = pages - 1; p > 0; p--) {
		j = th_xs(&rng) % (p + 1);
		tmp = order[p];
		order[p] = order[j];
		order[j] = tmp;
	}
	/* the window comes down within a few faults */
	for (uint64_t i = 0; i < 32; i++)
		bad += !th_check(m + order[i] * MV_PAGE_SIZE, 5, order[i], 0);
	assert_int_equal(mv_vm_stats(vm, &before), 0);
	for (uint64_t i = 32; i < 512; i++)
		bad += !th_check(m + order[i] * MV_PAGE_SIZE, 5, order[i], 0);
	assert_int_equal(mv_vm_stats(vm, &after), 0);
	assert_int_equal(bad, 0);
	assert_int_equal(after.swapin_window, 1);
	/* one page per run, but for the odd touch just after a recent run */
	assert_true(after.swapin_runs > before.swapin_runs);
	assert_true((after.swapin_pages - before.swapin_pages) +
			    (after.unzip_pages - before.unzip_pages) <=
		    (after.swapin_runs - before.swapin_runs) * 11 / 10 + 4);
	free(order);
	/* and every page, read back or not yet, is intact */
	assert_int_equal(th_bad_pages(vm, 5, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_fresh_vm_reads_the_whole_cluster),
		cmocka_unit_test(test_random_faults_shrink_the_window_to_one),
		cmocka_unit_test(
			test_sequential_faults_grow_the_window_to_the_max),
		cmocka_unit_test(
			test_a_walk_past_resident_pages_is_still_a_hit),
		cmocka_unit_test(test_interleaved_walks_each_grow),
		cmocka_unit_test(
			test_sequential_read_back_grows_to_many_pages_per_fault),
		cmocka_unit_test(
			test_random_read_back_reads_one_page_per_fault),
	};

	return th_run_tests(tests);
}

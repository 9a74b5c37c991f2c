// SPDX-License-Identifier: MIT
/*
 * test_fault.c - the fault service's write-around of pages read as zeros
 * (fault.c, zero_write_run; Mem.ZeroWriteAround): a VM that writes what it
 * reads gets the rest of a run of such pages with one write's fault, a VM
 * that reads ahead of its writes, or one that would outgrow its target or
 * (with every other such VM) the host's free memory, keeps them
 * frameless; nothing a guest wrote is ever lost on the way,
 * not when the kernel refuses the lift and not when its threads race it.
 * (The first read and the single write are test_vm.c's.)
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "helper.h"
#include "inject.h"
#include "internal.h"
#include "uffd.h"

#define MiB (1ull << 20)
#define RUN 16 /* Mem.FaultAroundPages' default: runs are 16-page aligned */
/* single writes to one run read as zeros that meet the written ratio */
#define W (RUN * MV__ZERO_AROUND_WRITTEN_PCT / 100)
_Static_assert(W >= 1 && 16 + W < 30,
	       "the tests write-around pages 16 + W + 1 to 31");

static mv_vm *vm_on(struct th_host *t, uint64_t host_bytes, uint64_t vm_bytes,
		    const char *around)
{
	struct mv_settings s;

	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.ZeroWriteAround", around), 0);
	th_host_create(t, host_bytes, &s);
	return th_vm_create(t, "around", vm_bytes);
}

/* A first read of one byte of each run from lo: the runs map the zero page. */
static void read_runs(mv_vm *vm, uint64_t lo, uint64_t runs)
{
	for (uint64_t r = 0; r < runs; r++)
		assert_int_equal(*(volatile uint8_t *)th_page(vm, lo + r * RUN),
				 0);
}

/*
 * A VM with the run of pages 16-31 read as zeros and its first W pages
 * written one fault each (tag, version 0): its next write to the run
 * meets the ratio.
 */
static mv_vm *ratio_met(struct th_host *t, uint64_t tag)
{
	mv_vm *vm = vm_on(t, 64 * MiB, 4 * MiB, "1");

	read_runs(vm, 16, 1);
	for (uint64_t p = 16; p < 16 + W; p++)
		th_fill(th_page(vm, p), tag, p, 0);
	return vm;
}

/*
 * A quarter of a run read as zeros written page by page (a quarter of all
 * the VM was given as zeros: it writes what it reads), the next write
 * gives the rest of the run its frames too: one fault, and none for their
 * own writes.  One write fewer, and that write takes its page alone.
 */
static void
test_a_vm_that_writes_what_it_reads_gets_the_rest_of_a_run_in_one_fault(
	void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = ratio_met(&t, 3);
	st = th_stats(vm);
	assert_int_equal(st.faults, 1 + W);
	assert_int_equal(st.zero_around_pages, 0);
	assert_int_equal(mv_vm_page_state(vm, 16 + W), MV_PAGE_ZERO);
	th_fill(th_page(vm, 16 + W), 3, 16 + W, 0);
	for (uint64_t p = 16 + W; p < 32; p++)
		assert_int_equal(mv_vm_page_state(vm, p), MV_PAGE_PRIVATE);
	st = th_stats(vm);
	assert_int_equal(st.faults, 1 + W + 1);
	assert_int_equal(st.zero_writes, W + 1);
	assert_int_equal(st.zero_around_pages, RUN - W - 1);
	assert_int_equal(st.consumed_pages, RUN);
	for (uint64_t p = 16 + W + 1; p < 32; p++) {
		assert_true(th_is_zero(th_page(vm, p)));
		th_fill(th_page(vm, p), 3, p, 0);
	}
	assert_int_equal(th_stats(vm).faults, 1 + W + 1);
	for (uint64_t p = 16; p < 32; p++)
		assert_true(th_check(th_page(vm, p), 3, p, 0));
	assert_int_equal(mv_vm_page_state(vm, 15), MV_PAGE_UNTOUCHED);
	assert_int_equal(mv_vm_page_state(vm, 32), MV_PAGE_UNTOUCHED);
	assert_int_equal(th_presence_mismatches(vm), 0);
	assert_int_equal(th_census_mismatches(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * A VM that reads far more than it writes (one page written of each of
 * four runs read) keeps its reads frameless: each write takes one page.
 */
static void
test_a_vm_that_reads_ahead_of_its_writes_keeps_its_reads_frameless(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = vm_on(&t, 64 * MiB, 4 * MiB, "1");
	read_runs(vm, 0, 4);
	for (uint64_t r = 0; r < 4; r++)
		th_fill(th_page(vm, r * RUN + 5), 4, r * RUN + 5, 0);
	st = th_stats(vm);
	assert_int_equal(st.zero_around_pages, 0);
	assert_int_equal(st.consumed_pages, 4);
	for (uint64_t p = 0; p < 4 * RUN; p++)
		assert_int_equal(mv_vm_page_state(vm, p),
				 p % RUN == 5 ? MV_PAGE_PRIVATE : MV_PAGE_ZERO);
	assert_int_equal(th_presence_mismatches(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * A VM that writes what it reads, on a host where its pages read as zeros
 * would leave less than minFree free were they all written, gets no
 * frames it did not write: the guard holds before the ratio matters.
 */
static void test_no_write_around_where_memory_would_run_short(void **state)
{
	const uint64_t host_pages = 16 * MiB / MV_PAGE_SIZE;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = vm_on(&t, 16 * MiB, 32 * MiB, "1");
	/* as many pages read as zeros as the host has frames */
	read_runs(vm, 0, host_pages / RUN);
	for (uint64_t p = 0; p <= host_pages / 2; p++)
		th_fill(th_page(vm, p), 5, p, 0);
	st = th_stats(vm);
	assert_int_equal(st.zero_around_pages, 0);
	assert_int_equal(st.zero_writes, host_pages / 2 + 1);
	assert_int_equal(st.consumed_pages, host_pages / 2 + 1);
	assert_int_equal(mv_vm_page_state(vm, host_pages / 2 + 1),
			 MV_PAGE_ZERO);
	for (uint64_t p = 0; p <= host_pages / 2; p++)
		assert_true(th_check(th_page(vm, p), 5, p, 0));
	assert_int_equal(th_presence_mismatches(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static bool target_at_most_256(void *arg)
{
	struct mv_vm_stats st;

	mv_vm_stats(arg, &st);
	return st.sztgt_pages <= 256;
}

/*
 * A VM that writes what it reads on a host with memory to spare, but
 * whose target (its limit here: 1 MiB) its pages read as zeros would
 * outgrow were they all written, gets no frames it did not write: with
 * many VMs writing at once each keeps to its share.
 */
static void test_no_write_around_past_the_vms_target(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = vm_on(&t, 64 * MiB, 4 * MiB, "1");
	assert_int_equal(mv_vm_set_limit(vm, 1 * MiB), 0);
	assert_true(th_wait_until(target_at_most_256, vm, TH_WAIT_MS));
	read_runs(vm, 0, 32); /* 512 pages as zeros */
	for (uint64_t r = 0; r < 32; r++)
		for (uint64_t i = 0; i <= W; i++)
			th_fill(th_page(vm, r * RUN + i), 10, r * RUN + i, 0);
	st = th_stats(vm);
	assert_int_equal(st.zero_around_pages, 0);
	assert_int_equal(st.zero_writes, 32 * (W + 1));
	assert_int_equal(mv_vm_page_state(vm, 31 * RUN + W + 1), MV_PAGE_ZERO);
	for (uint64_t r = 0; r < 32; r++)
		for (uint64_t i = 0; i <= W; i++)
			assert_true(th_check(th_page(vm, r * RUN + i), 10,
					     r * RUN + i, 0));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * An agent's VM (process mode) is held to its daemon's target, not to its
 * own host's, which follows a grant the daemon may give speculatively:
 * with no target from the daemon yet, or one its pages read as zeros
 * would outgrow, a write takes its page alone; with one they fit in, the
 * rest of the run gets its frames.
 */
static void test_an_agents_vm_is_held_to_its_daemons_target(void **state)
{
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = ratio_met(&t, 13);
	mv__budget_set_grant_target(t.host, 0); /* as mv_agent_create does */
	th_fill(th_page(vm, 16 + W), 13, 16 + W, 0);
	assert_int_equal(th_stats(vm).zero_around_pages, 0);
	mv__budget_set_grant_target(t.host, W + 1); /* a grant's target */
	th_fill(th_page(vm, 16 + W + 1), 13, 16 + W + 1, 0);
	assert_int_equal(th_stats(vm).zero_around_pages, 0);
	mv__budget_set_grant_target(t.host, RUN);
	th_fill(th_page(vm, 16 + W + 2), 13, 16 + W + 2, 0);
	assert_int_equal(th_stats(vm).zero_around_pages, RUN - W - 3);
	for (uint64_t p = 16; p < 16 + W + 3; p++)
		assert_true(th_check(th_page(vm, p), 13, p, 0));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

struct writers {
	mv_host *host;
	uint64_t want;
};

static bool writers_summed(void *arg)
{
	struct writers *w = arg;

	return atomic_load(&w->host->zero_writer_pages) == w->want;
}

/* Reads all of vm as zeros and writes a quarter of each run, one fault
 * each: it writes what it reads (the ratio, met exactly). */
static void read_all_write_a_quarter(mv_vm *vm, uint64_t tag)
{
	uint64_t runs = mv_vm_memsize(vm) / MV_PAGE_SIZE / RUN;

	read_runs(vm, 0, runs);
	for (uint64_t r = 0; r < runs; r++)
		for (uint64_t i = 0; i < W; i++)
			th_fill(th_page(vm, r * RUN + i), tag, r * RUN + i, 0);
	assert_int_equal(th_stats(vm).zero_around_pages, 0);
}

/*
 * Two VMs that write what they read, each of whose pages read as zeros
 * would fit in the host's free memory alone but not together, get no
 * frames they did not write (the scheduler sums every such VM's pages);
 * once the other is gone, the same write gives the rest of its run frames.
 * The one written has high shares, the other low: whether or not the
 * scheduler balances while both are there (its first balance races their
 * creation), its target holds all its pages, so the sum is what decides.
 */
static void test_no_write_around_where_all_writers_would_not_fit(void **state)
{
	struct writers w;
	struct th_host t;
	mv_vm *a, *b;

	(void)state;
	a = vm_on(&t, 64 * MiB, 32 * MiB, "1");
	b = th_vm_create(&t, "other", 32 * MiB);
	assert_int_equal(
		mv_vm_set_shares(a, mv_shares_for(MV_SHARES_HIGH, 32 * MiB)),
		0);
	assert_int_equal(
		mv_vm_set_shares(b, mv_shares_for(MV_SHARES_LOW, 32 * MiB)), 0);
	read_all_write_a_quarter(a, 11);
	read_all_write_a_quarter(b, 12);
	w = (struct writers){ t.host, 2 * (32 * MiB / MV_PAGE_SIZE -
					   32 * MiB / MV_PAGE_SIZE / RUN * W) };
	assert_true(th_wait_until(writers_summed, &w, TH_WAIT_MS));
	th_fill(th_page(a, W), 11, W, 0);
	assert_int_equal(th_stats(a).zero_around_pages, 0);
	assert_int_equal(mv_vm_page_state(a, W + 1), MV_PAGE_ZERO);
	mv_vm_destroy(b);
	w.want =
		32 * MiB / MV_PAGE_SIZE - 32 * MiB / MV_PAGE_SIZE / RUN * W - 1;
	assert_true(th_wait_until(writers_summed, &w, TH_WAIT_MS));
	th_fill(th_page(a, RUN + W), 11, RUN + W, 0);
	assert_int_equal(th_stats(a).zero_around_pages, RUN - W - 1);
	assert_true(th_check(th_page(a, W), 11, W, 0));
	assert_true(th_check(th_page(a, RUN + W), 11, RUN + W, 0));
	assert_int_equal(th_presence_mismatches(a), 0);
	mv_vm_destroy(a);
	th_host_destroy(&t);
}

/* Mem.ZeroWriteAround 0: every page read as zeros faults on its own write. */
static void test_write_around_off_faults_once_per_page_written(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = vm_on(&t, 64 * MiB, 4 * MiB, "0");
	read_runs(vm, 16, 1);
	for (uint64_t p = 16; p < 32; p++)
		th_fill(th_page(vm, p), 6, p, 0);
	st = th_stats(vm);
	assert_int_equal(st.faults, 1 + 16);
	assert_int_equal(st.zero_writes, 16);
	assert_int_equal(st.zero_around_pages, 0);
	for (uint64_t p = 16; p < 32; p++)
		assert_true(th_check(th_page(vm, p), 6, p, 0));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * The kernel refuses the lift of the run's protection: the pages are
 * PRIVATE, counted, still protected; each first write faults, that service
 * lifts it, and every byte written lands.
 */
static void test_a_refused_lift_loses_no_write(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = ratio_met(&t, 7);
	mv__inject_fail(MV_INJ_UFFD_WP, 1, 1, ENOMEM);
	th_fill(th_page(vm, 16 + W), 7, 16 + W, 0);
	assert_int_equal(mv__inject_hits(MV_INJ_UFFD_WP), 1);
	mv__inject_reset();
	st = th_stats(vm);
	assert_int_equal(st.fault_errors, 1);
	assert_int_equal(st.consumed_pages, 16);
	for (uint64_t p = 16 + W + 1; p < 32; p++) {
		assert_int_equal(mv_vm_page_state(vm, p), MV_PAGE_PRIVATE);
		th_fill(th_page(vm, p), 7, p, 0);
	}
	for (uint64_t p = 16; p < 32; p++)
		assert_true(th_check(th_page(vm, p), 7, p, 0));
	assert_int_equal(th_stats(vm).consumed_pages, 16);
	assert_int_equal(th_presence_mismatches(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * Pages of a run given frames ahead of their writes are PRIVATE on the
 * kernel's zero page until written: reclaimed (compressed or swapped),
 * the one since written comes back with its bytes and the others as zeros
 * (reclaim moves a zero-page entry as it moves any page).
 */
static void
test_pages_given_frames_ahead_swap_out_and_back_exactly(void **state)
{
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = ratio_met(&t, 14);
	th_fill(th_page(vm, 16 + W), 14, 16 + W, 0);
	th_fill(th_page(vm, 16 + W + 1), 14, 16 + W + 1,
		0); /* the kernel's copy */
	assert_int_equal(th_stats(vm).zero_around_pages, RUN - W - 1);
	for (uint64_t p = 16; p < 32; p++) {
		assert_int_equal(mv_vm_swap_out_page(vm, p), 0);
		assert_true(mv_vm_page_state(vm, p) == MV_PAGE_COMPRESSED ||
			    mv_vm_page_state(vm, p) == MV_PAGE_SWAPPED);
	}
	for (uint64_t p = 16; p < 32; p++)
		if (p <= 16 + W + 1)
			assert_true(th_check(th_page(vm, p), 14, p, 0));
		else
			assert_true(th_is_zero(th_page(vm, p)));
	assert_int_equal(th_presence_mismatches(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * A page of the run that holds bytes of the guest's own while its entry
 * says ZERO (a write that landed where zero_read's protection did not: its
 * lift here stands for the refused protection) keeps them when the run is
 * given its frames.
 */
static void test_a_neighbours_unseen_write_is_kept(void **state)
{
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = ratio_met(&t, 8);
	assert_int_equal(mv__uffd_wp(vm->uffd, th_page(vm, 30), MV_PAGE_SIZE,
				     UFFDIO_WRITEPROTECT_MODE_DONTWAKE),
			 0);
	th_fill(th_page(vm, 30), 8, 30, 1); /* no fault: the kernel's copy */
	assert_int_equal(mv_vm_page_state(vm, 30), MV_PAGE_ZERO);
	th_fill(th_page(vm, 16 + W), 8, 16 + W, 0);
	assert_int_equal(th_stats(vm).zero_around_pages, RUN - W - 1);
	assert_int_equal(mv_vm_page_state(vm, 30), MV_PAGE_PRIVATE);
	assert_true(th_check(th_page(vm, 30), 8, 30, 1));
	for (uint64_t p = 16; p <= 16 + W; p++)
		assert_true(th_check(th_page(vm, p), 8, p, 0));
	assert_int_equal(th_presence_mismatches(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * Two guest threads write interleaved pages (one the even, the other the
 * odd) of memory read as zeros, three versions each, so that every run a
 * write gives its frames to holds pages the other thread is writing at
 * that moment: every page reads back its last version.
 */
#define RACE_PAGES (2 * MiB / MV_PAGE_SIZE)

struct racer {
	mv_vm *vm;
	uint64_t parity;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	for (uint64_t v = 0; v < 3; v++)
		for (uint64_t p = r->parity; p < RACE_PAGES; p += 2)
			th_fill(th_page(r->vm, p), 9, p, v);
	return NULL;
}

static void test_threads_racing_a_run_lose_no_write(void **state)
{
	struct racer r[2];
	pthread_t tid[2];
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = vm_on(&t, 64 * MiB, 2 * MiB, "1");
	read_runs(vm, 0, RACE_PAGES / RUN);
	/* the first half of each run written first: the ratio is met */
	for (uint64_t p = 0; p < RACE_PAGES; p += RUN)
		for (uint64_t i = 0; i < RUN / 2; i++)
			th_fill(th_page(vm, p + i), 9, p + i, 0);
	for (unsigned i = 0; i < 2; i++) {
		r[i] = (struct racer){ .vm = vm, .parity = i };
		assert_int_equal(
			pthread_create(&tid[i], NULL, racer_main, &r[i]), 0);
	}
	for (unsigned i = 0; i < 2; i++)
		pthread_join(tid[i], NULL);
	for (uint64_t p = 0; p < RACE_PAGES; p++) {
		assert_int_equal(mv_vm_page_state(vm, p), MV_PAGE_PRIVATE);
		assert_true(th_check(th_page(vm, p), 9, p, 2));
	}
	assert_true(th_stats(vm).zero_around_pages > 0);
	assert_int_equal(th_stats(vm).consumed_pages, RACE_PAGES);
	assert_int_equal(th_presence_mismatches(vm), 0);
	assert_int_equal(th_census_mismatches(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_a_vm_that_writes_what_it_reads_gets_the_rest_of_a_run_in_one_fault),
		cmocka_unit_test(
			test_a_vm_that_reads_ahead_of_its_writes_keeps_its_reads_frameless),
		cmocka_unit_test(
			test_no_write_around_where_memory_would_run_short),
		cmocka_unit_test(test_no_write_around_past_the_vms_target),
		cmocka_unit_test(
			test_an_agents_vm_is_held_to_its_daemons_target),
		cmocka_unit_test(
			test_no_write_around_where_all_writers_would_not_fit),
		cmocka_unit_test(
			test_write_around_off_faults_once_per_page_written),
		cmocka_unit_test(test_a_refused_lift_loses_no_write),
		cmocka_unit_test(test_a_neighbours_unseen_write_is_kept),
		cmocka_unit_test(
			test_pages_given_frames_ahead_swap_out_and_back_exactly),
		cmocka_unit_test(test_threads_racing_a_run_lose_no_write),
	};

	return th_run_tests(tests);
}

// SPDX-License-Identifier: MIT
/*
 * test_swap.c - hypervisor swapping: content survives swap-out and swap-in
 * exactly, frames are zeroed between VMs, and a swap directory that is
 * unwritable, full or failing loses nothing and says so.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest.h"
#include "helper.h"
#include "inject.h"
#include "internal.h"
#include "swap.h"

#define MiB (1ull << 20)

/* The pause between two looks of a poll with a deadline. */
static void poll_pause_ms(unsigned ms)
{
	struct timespec ts = { 0, (long)ms * 1000000L };

	nanosleep(&ts, NULL);
}

static void test_swapped_pages_come_back_exactly(void **state)
{
	uint64_t npages = 4 * MiB / MV_PAGE_SIZE, done = 0;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "sw", 4 * MiB);
	th_fill_vm(vm, 5, false);
	assert_int_equal(mv_vm_swap_out(vm, npages, &done), 0);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.swcur_pages, done);
	assert_int_equal(st.consumed_pages, npages - done);
	assert_true(done > npages / 2); /* random probing finds most */
	assert_int_equal(th_bad_pages(vm, 5, false), 0);
	th_quiesce(vm);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.swcur_pages, 0);
	assert_int_equal(st.swapin_pages, done);
	assert_int_equal(st.consumed_pages, npages);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * A batch's victims move in address order: the four 16-page windows of a
 * 64-page VM, picked in a random order, are one run of 64 neighbours, taken
 * out with one UFFDIO_MOVE, and staging is dropped once: two TLB flushes
 * for 64 pages (each window moved alone made five).
 */
static void test_neighbouring_victims_move_in_one_call(void **state)
{
	struct mv_host_stats hs;
	uint64_t done = 0;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "runs", 64 * MV_PAGE_SIZE);
	th_fill_vm(vm, 6, false);
	assert_int_equal(mv_vm_swap_out(vm, 64, &done), 0);
	assert_int_equal(done, 64);
	assert_int_equal(mv_host_stats(t.host, &hs), 0);
	assert_int_equal(hs.reclaim_moved_pages, 64);
	assert_int_equal(hs.reclaim_flushes, 2);
	assert_int_equal(th_bad_pages(vm, 6, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_a_move_the_kernel_miscounts_loses_nothing(void **state)
{
	uint64_t npages = 1 * MiB / MV_PAGE_SIZE, done = 0;
	struct mv_host_stats hs;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "miscount", 1 * MiB);
	th_fill_vm(vm, 6, false);
	th_drain_lru();
	/* every move that works says it moved nothing */
	mv__inject_fail(MV_INJ_MOVE_MISCOUNT, 1, 0, EAGAIN);
	mv_vm_swap_out(vm, npages, &done);
	mv__inject_reset();
	/* a page moved but left PRIVATE would be missing here, not hang */
	assert_int_equal(th_presence_mismatches(vm), 0);
	mv_host_stats(t.host, &hs);
	assert_true(hs.move_miscounts > 0);
	assert_int_equal(th_bad_pages(vm, 6, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * A move that stops with pages past its count moved too (strays): the
 * caller puts each back into the guest, and a fault on them finds their
 * bytes.  Here the kernel moves every page of a run but its second and
 * says one moved; the second's own move is refused too.
 */
static void test_pages_moved_past_the_count_are_put_back(void **state)
{
	uint64_t npages = 1 * MiB / MV_PAGE_SIZE, done = 0;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "strays", 1 * MiB);
	th_fill_vm(vm, 5, false);
	th_drain_lru();
	mv__inject_fail(MV_INJ_MOVE_HOLE, 1, 1, EAGAIN);
	/* the call after the run's: the second page alone */
	mv__inject_fail(MV_INJ_UFFD_MOVE, 2, 1, EBUSY);
	mv_vm_swap_out(vm, npages, &done);
	assert_int_equal(mv__inject_hits(MV_INJ_MOVE_HOLE), 1);
	assert_int_equal(mv__inject_hits(MV_INJ_UFFD_MOVE), 1);
	mv__inject_reset();
	/* a stray left PRIVATE but out of the guest would be missing here */
	assert_int_equal(th_presence_mismatches(vm), 0);
	assert_int_equal(th_census_mismatches(vm), 0);
	assert_int_equal(th_bad_pages(vm, 5, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_a_miscounted_move_without_pagemap_loses_nothing(void **state)
{
	uint64_t npages = 1 * MiB / MV_PAGE_SIZE, done = 0;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "nopagemap", 1 * MiB);
	th_fill_vm(vm, 7, false);
	th_drain_lru();
	/* every move that works says it moved nothing, and pagemap, which
	 * would tell, cannot be read: "not there" would drop the pages */
	mv__inject_fail(MV_INJ_MOVE_MISCOUNT, 1, 0, EAGAIN);
	mv__inject_fail(MV_INJ_PAGEMAP, 1, 0, EIO);
	mv_vm_swap_out(vm, npages, &done);
	assert_true(mv__inject_hits(MV_INJ_PAGEMAP) > 0);
	mv__inject_reset();
	assert_int_equal(th_presence_mismatches(vm), 0);
	assert_int_equal(th_bad_pages(vm, 7, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_a_miscounted_move_the_kernel_will_not_undo_is_found_by_mincore(
	void **state)
{
	struct mv_host_stats hs;
	struct mv_settings s;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	mv_settings_init(&s);
	s.sample_period_s = 0;
	s.share_scan_ghz = 0;
	th_host_create(&t, 64 * MiB, &s);
	vm = th_vm_create(&t, "mincore", 1 * MiB);
	th_fill_vm(vm, 8, false);
	th_drain_lru();
	/* the move out works but says it moved nothing; every move after it
	 * is refused, and pagemap cannot be read: only mincore can tell */
	mv__inject_fail(MV_INJ_MOVE_MISCOUNT, 1, 1, EAGAIN);
	mv__inject_fail(MV_INJ_UFFD_MOVE, 2, 0, ENOMEM);
	mv__inject_fail(MV_INJ_PAGEMAP, 1, 0, EIO);
	assert_int_equal(mv_vm_swap_out_page(vm, 9), 0);
	assert_true(mv__inject_hits(MV_INJ_UFFD_MOVE) >= 3);
	mv__inject_reset();
	/* taken as not moved, the page would be PRIVATE and absent here */
	assert_int_equal(th_presence_mismatches(vm), 0);
	assert_int_equal(mv_vm_page_state(vm, 9), MV_PAGE_SWAPPED);
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.move_miscounts, 1);
	assert_int_equal(th_bad_pages(vm, 8, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_swap_slots_are_reused_cycle_after_cycle(void **state)
{
	uint64_t npages = 2 * MiB / MV_PAGE_SIZE, done;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "cycles", 2 * MiB);
	th_fill_vm(vm, 12, false);
	for (int cycle = 0; cycle < 4; cycle++) {
		/* everything out: the file has exactly one slot per page */
		assert_int_equal(mv_vm_swap_out(vm, npages / 2, &done), 0);
		for (uint64_t p = 0; p < npages; p++)
			if (mv_vm_page_state(vm, p) == MV_PAGE_PRIVATE)
				assert_int_equal(mv_vm_swap_out_page(vm, p), 0);
		mv_vm_stats(vm, &st);
		assert_int_equal(st.swcur_pages, npages);
		assert_int_equal(st.swap_errors, 0);
		assert_int_equal(th_bad_pages(vm, 12, false), 0);
	}
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_swap_out_page_marks_swapped_and_frees_frame(void **state)
{
	struct mv_host_stats before, after;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "one", 1 * MiB);
	m = mv_vm_mem(vm);
	th_fill(m + 3 * MV_PAGE_SIZE, 9, 3, 1);
	mv_host_stats(t.host, &before);
	assert_int_equal(mv_vm_swap_out_page(vm, 3), 0);
	assert_int_equal(mv_vm_page_state(vm, 3), MV_PAGE_SWAPPED);
	mv_host_stats(t.host, &after);
	assert_int_equal(after.consumed_pages, before.consumed_pages - 1);
	assert_int_equal(mv_vm_swap_out_page(vm, 3), -EAGAIN);
	assert_true(th_check(m + 3 * MV_PAGE_SIZE, 9, 3, 1));
	assert_int_equal(mv_vm_page_state(vm, 3), MV_PAGE_PRIVATE);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_swap_in_reads_a_cluster_of_neighbours(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "cluster", 1 * MiB);
	m = mv_vm_mem(vm);
	for (uint64_t p = 32; p < 48; p++) {
		th_fill(m + p * MV_PAGE_SIZE, 3, p, 0);
		assert_int_equal(mv_vm_swap_out_page(vm, p), 0);
	}
	mv_vm_stats(vm, &st);
	assert_true(th_check(m + 40 * MV_PAGE_SIZE, 3, 40, 0));
	for (uint64_t p = 32; p < 48; p++)
		assert_int_equal(mv_vm_page_state(vm, p), MV_PAGE_PRIVATE);
	for (uint64_t p = 32; p < 48; p++)
		assert_true(th_check(m + p * MV_PAGE_SIZE, 3, p, 0));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_overcommitted_vm_keeps_every_byte(void **state)
{
	struct mv_host_stats hs;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 8 * MiB, NULL);
	vm = th_vm_create(&t, "big", 32 * MiB);
	th_fill_vm(vm, 11, false);
	assert_int_equal(th_bad_pages(vm, 11, false), 0);
	th_quiesce(vm);
	mv_vm_stats(vm, &st);
	mv_host_stats(t.host, &hs);
	assert_true(st.swapout_pages >= 24 * MiB / MV_PAGE_SIZE);
	assert_true(hs.consumed_pages <= hs.memsize_pages);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_fresh_frames_never_show_another_vms_data(void **state)
{
	uint64_t npages = 16 * MiB / MV_PAGE_SIZE;
	struct th_host t;
	mv_vm *a, *b;
	uint8_t *m;

	(void)state;
	/* a 4 MiB host: B's frames are the ones A's swapped pages gave up */
	th_host_create(&t, 4 * MiB, NULL);
	a = th_vm_create(&t, "a", 16 * MiB);
	b = th_vm_create(&t, "b", 16 * MiB);
	th_fill_vm(a, 1, false);
	m = mv_vm_mem(b);
	for (uint64_t p = 0; p < npages; p++)
		assert_true(th_is_zero(m + p * MV_PAGE_SIZE));
	assert_int_equal(th_bad_pages(a, 1, false), 0);
	mv_vm_destroy(a);
	/* B now takes the frames A held when it died */
	th_fill_vm(b, 2, false);
	assert_int_equal(th_bad_pages(b, 2, false), 0);
	mv_vm_destroy(b);
	th_host_destroy(&t);
}

static void test_full_swap_disk_keeps_the_page_and_says_so(void **state)
{
	struct mv_vm_stats st;
	struct mv_host_stats hs;
	struct th_host t;
	uint64_t deadline;
	uint8_t *m;
	mv_vm *vm;
	int err;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "full", 1 * MiB);
	m = mv_vm_mem(vm);
	th_fill(m + 7 * MV_PAGE_SIZE, 4, 7, 2);
	/* one failure is retried and is no error at all */
	mv__inject_fail(MV_INJ_PWRITE, 1, 1, ENOSPC);
	assert_int_equal(mv_vm_swap_out_page(vm, 7), 0);
	assert_true(th_check(m + 7 * MV_PAGE_SIZE, 4, 7, 2));
	mv__inject_reset();
	/* a disk that stays full: the write gives up after its tries */
	th_fill(m + 8 * MV_PAGE_SIZE, 4, 8, 2);
	mv__inject_fail(MV_INJ_PWRITE, 1, 0, ENOSPC);
	assert_int_equal(mv_vm_swap_out_page(vm, 8), -ENOSPC);
	assert_int_equal(mv__inject_hits(MV_INJ_PWRITE), MV_SWAP_WRITE_TRIES);
	assert_int_equal(mv_vm_page_state(vm, 8), MV_PAGE_PRIVATE);
	assert_true(th_check(m + 8 * MV_PAGE_SIZE, 4, 8, 2));
	assert_non_null(strstr(mv_host_errmsg(t.host), "stay in memory"));
	mv_vm_stats(vm, &st);
	mv_host_stats(t.host, &hs);
	assert_int_equal(st.swap_errors, 1);
	assert_int_equal(hs.swap_errors, 1);
	assert_int_equal(st.swap_write_errors, 1);
	assert_int_equal(st.swap_paused, 1);
	/* paused: the next swap-out fails at once, without touching the disk */
	assert_int_equal(mv_vm_swap_out_page(vm, 8), -ENOSPC);
	assert_int_equal(mv__inject_hits(MV_INJ_PWRITE), MV_SWAP_WRITE_TRIES);
	assert_non_null(strstr(mv_host_errmsg(t.host), "paused"));
	mv__inject_reset();
	/* once the disk has room again and the pause is over, it swaps */
	deadline = th_now_ms() + 10000;
	while ((err = mv_vm_swap_out_page(vm, 8)) == -ENOSPC &&
	       th_now_ms() < deadline)
		poll_pause_ms(10);
	assert_int_equal(err, 0);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.swap_paused, 0);
	assert_int_equal(st.consumed_pages, 15); /* 7 came back when checked */
	assert_true(th_check(m + 7 * MV_PAGE_SIZE, 4, 7, 2));
	assert_true(th_check(m + 8 * MV_PAGE_SIZE, 4, 8, 2));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

struct filler {
	mv_vm *vm;
	uint64_t tag;
	_Atomic bool done;
};

static void *filler_main(void *arg)
{
	struct filler *f = arg;

	th_fill_vm(f->vm, f->tag, false);
	atomic_store(&f->done, true);
	return NULL;
}

/*
 * A guest filling a VM twice the host's size while every swap write fails:
 * before, it waited for frames for ever; it must finish, over the budget,
 * counted, with every byte.
 */
static void test_guest_finishes_when_every_swap_write_fails(void **state)
{
	struct filler f = { .tag = 8 };
	struct mv_host_stats hs;
	struct mv_vm_stats st;
	struct th_host t;
	uint64_t deadline;
	pthread_t th;

	(void)state;
	th_host_create(&t, 8 * MiB, NULL);
	f.vm = th_vm_create(&t, "dead", 16 * MiB);
	mv__inject_fail(MV_INJ_PWRITE, 1, 0, EIO);
	assert_int_equal(pthread_create(&th, NULL, filler_main, &f), 0);
	deadline = th_now_ms() + 30000;
	while (!atomic_load(&f.done) && th_now_ms() < deadline)
		poll_pause_ms(10);
	if (!atomic_load(&f.done)) {
		fprintf(stderr, "the guest still waits after 30 s: %s\n",
			mv_host_errmsg(t.host));
		abort(); /* its thread cannot be joined: end the binary */
	}
	pthread_join(th, NULL);
	assert_true(mv__inject_hits(MV_INJ_PWRITE) >= MV_SWAP_WRITE_TRIES);
	mv__inject_reset();
	assert_int_equal(th_bad_pages(f.vm, 8, false), 0);
	mv_vm_stats(f.vm, &st);
	mv_host_stats(t.host, &hs);
	assert_true(st.swap_write_errors >= 1);
	assert_true(st.swap_errors >= 1);
	assert_true(hs.overrun_grants > 0);
	assert_true(hs.overrun_max_pages > 0);
	assert_true(hs.consumed_pages <= hs.memsize_pages + hs.overrun_pages);
	mv_vm_destroy(f.vm);
	mv_host_stats(t.host, &hs);
	/* the allowance went back with the frames */
	assert_int_equal(hs.overrun_pages, 0);
	th_host_destroy(&t);
}

/*
 * Reclaim asleep inside the kernel (its UFFDIO_MOVE paused, as a DAMON
 * monitor of physical addresses held it for up to 15 s on the development
 * machine): before, a guest needing a frame waited for the move, however
 * long; it must go on over the budget, on the minFree reserve and no
 * further, counted, and every byte must be there once the move returns.
 */
static void
test_guest_proceeds_on_minfree_while_a_page_move_stalls(void **state)
{
	struct filler f = { .tag = 9 };
	struct mv_vm_stats st, qst;
	struct mv_host_stats hs;
	struct th_host t;
	uint64_t deadline, cap = 0;
	pthread_t th;
	mv_vm *quiet;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	f.vm = th_vm_create(&t, "stalled", 128 * MiB);
	quiet = th_vm_create(&t, "quiet", 1 * MiB);
	/* the move sleeps longer than the wait below may take */
	mv__inject_pause_for(MV_INJ_UFFD_MOVE, TH_WAIT_MS + 10000);
	assert_int_equal(pthread_create(&th, NULL, filler_main, &f), 0);
	/* reclaim's first move sleeps; the guest takes the free frames, then
	 * waits, then is let onto the reserve, run after run, until the
	 * reserve is used up (the faults' own leftovers given back on the
	 * way are no progress of reclaim's) */
	deadline = th_now_ms() + TH_WAIT_MS;
	do {
		poll_pause_ms(10);
		mv_host_stats(t.host, &hs);
		cap = hs.minfree_pages > MV_MAX_RUN_PAGES ? hs.minfree_pages :
							    MV_MAX_RUN_PAGES;
	} while (hs.overrun_pages + MV_MAX_RUN_PAGES <= cap &&
		 !atomic_load(&f.done) && th_now_ms() < deadline);
	assert_true(mv__inject_paused()); /* the move is still asleep */
	assert_true(hs.stall_overrun_grants > 1);
	assert_true(hs.consumed_pages > hs.memsize_pages);
	assert_true(hs.overrun_pages + MV_MAX_RUN_PAGES > cap);
	assert_true(hs.overrun_pages <= cap);
	mv__inject_resume();
	deadline = th_now_ms() + 30000;
	while (!atomic_load(&f.done) && th_now_ms() < deadline)
		poll_pause_ms(10);
	if (!atomic_load(&f.done)) {
		fprintf(stderr,
			"the guest still waits 30 s after the move: %s\n",
			mv_host_errmsg(t.host));
		abort(); /* its thread cannot be joined: end the binary */
	}
	pthread_join(th, NULL);
	mv__inject_reset();
	assert_int_equal(th_bad_pages(f.vm, 9, false), 0);
	mv_host_stats(t.host, &hs);
	assert_true(hs.overrun_max_pages <= cap);
	assert_true(hs.overrun_grants >= hs.stall_overrun_grants);
	/* the waits are the stalled VM's, counted for it as for the host */
	mv_vm_stats(f.vm, &st);
	mv_vm_stats(quiet, &qst);
	assert_true(st.alloc_waits > 0);
	assert_int_equal(st.alloc_waits, hs.alloc_waits);
	assert_int_equal(st.blocked_waits, hs.blocked_waits);
	assert_int_equal(qst.alloc_waits, 0);
	assert_int_equal(qst.blocked_waits, 0);
	mv_vm_destroy(quiet);
	mv_vm_destroy(f.vm);
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.overrun_pages, 0);
	th_host_destroy(&t);
}

struct toucher_b {
	mv_vm *vm;
	unsigned pages;
	_Atomic bool done;
	_Atomic bool paused_at_end; /* the move still stalled when done */
};

static void *toucher_b_main(void *arg)
{
	struct toucher_b *b = arg;
	uint8_t *mem = mv_vm_mem(b->vm);

	for (uint64_t p = 0; p < b->pages; p++)
		th_fill(mem + (p << 12), 12, p, 0);
	atomic_store(&b->paused_at_end, mv__inject_paused());
	atomic_store(&b->done, true);
	return NULL;
}

static bool move_paused(void *arg)
{
	(void)arg;
	return mv__inject_paused();
}

/*
 * While one VM's reclaim sleeps in the kernel, another VM, below its
 * target, whose pages no reclaim thread is asked for (the scheduler,
 * its first choice busy, asks only VMs above their target), must not wait
 * for that move: the minFree reserve is its too, and its guest finishes
 * before the move returns, every byte kept in both VMs.
 */
static void
test_a_stalled_move_lets_another_vms_guest_onto_minfree_too(void **state)
{
	struct toucher_b b = { .pages = 256 };
	struct mv_host_stats hs;
	struct th_host t;
	uint64_t deadline, filled = 0;
	uint8_t *mem;
	pthread_t th;
	mv_vm *a;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	a = th_vm_create(&t, "stalled", 128 * MiB);
	b.vm = th_vm_create(&t, "other", 8 * MiB);
	mem = mv_vm_mem(a);
	mv__inject_pause(MV_INJ_UFFD_MOVE);
	/* the stalled VM takes the free frames, all but a few, and its
	 * reclaim's first move goes to sleep */
	do {
		for (unsigned k = 0; k < 16; k++, filled++)
			th_fill(mem + (filled << 12), 11, filled, 0);
		mv_host_stats(t.host, &hs);
	} while (hs.free_pages > 64);
	assert_true(th_wait_until(move_paused, NULL, TH_WAIT_MS));
	assert_true(hs.minfree_pages > b.pages);
	assert_int_equal(pthread_create(&th, NULL, toucher_b_main, &b), 0);
	deadline = th_now_ms() + 30000;
	while (!atomic_load(&b.done) && th_now_ms() < deadline)
		poll_pause_ms(10);
	if (!atomic_load(&b.done)) {
		fprintf(stderr, "the other guest still waits after 30 s: %s\n",
			mv_host_errmsg(t.host));
		abort(); /* its thread cannot be joined: end the binary */
	}
	pthread_join(th, NULL);
	assert_true(atomic_load(&b.paused_at_end));
	mv_host_stats(t.host, &hs);
	assert_true(hs.stall_overrun_grants > 0);
	mv__inject_resume();
	mv__inject_reset();
	for (uint64_t p = 0; p < filled; p++)
		if (!th_check(mem + (p << 12), 11, p, 0))
			fail_msg("stalled VM's page %llu lost its content",
				 (unsigned long long)p);
	mem = mv_vm_mem(b.vm);
	for (uint64_t p = 0; p < b.pages; p++)
		if (!th_check(mem + (p << 12), 12, p, 0))
			fail_msg("other VM's page %llu lost its content",
				 (unsigned long long)p);
	mv_vm_destroy(b.vm);
	mv_vm_destroy(a);
	th_host_destroy(&t);
}

static void test_failing_swap_disk_under_pressure_loses_nothing(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 8 * MiB, NULL);
	vm = th_vm_create(&t, "flaky", 16 * MiB);
	/* twenty swap write attempts fail while the scheduler reclaims */
	mv__inject_fail(MV_INJ_PWRITE, 5, 20, EIO);
	th_fill_vm(vm, 8, false);
	assert_true(mv__inject_hits(MV_INJ_PWRITE) >= MV_SWAP_WRITE_TRIES);
	mv__inject_reset();
	assert_int_equal(th_bad_pages(vm, 8, false), 0);
	mv_vm_stats(vm, &st);
	assert_true(st.swap_errors >= 1);
	assert_true(st.swap_write_errors >= 1);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_swap_read_errors_retry_without_loss(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "rderr", 1 * MiB);
	m = mv_vm_mem(vm);
	th_fill(m, 6, 0, 0);
	assert_int_equal(mv_vm_swap_out_page(vm, 0), 0);
	mv__inject_fail(MV_INJ_PREAD, 1, 2, EIO);
	assert_true(th_check(m, 6, 0, 0));
	assert_int_equal(mv__inject_hits(MV_INJ_PREAD), 2);
	mv__inject_reset();
	th_quiesce(vm);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.fault_errors, 2);
	assert_non_null(strstr(mv_host_errmsg(t.host), "retrying"));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void
test_persistent_swap_read_error_fails_the_page_in_bounded_time(void **state)
{
	struct mv_host_stats hs;
	struct mv_vm_stats st;
	struct th_host t;
	uint64_t t0;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "rdead", 1 * MiB);
	m = mv_vm_mem(vm);
	for (uint64_t p = 0; p < 4; p++)
		th_fill(m + p * MV_PAGE_SIZE, 6, p, 0);
	for (uint64_t p = 0; p < 4; p++)
		assert_int_equal(mv_vm_swap_out_page(vm, p), 0);
	mv__inject_fail(MV_INJ_PREAD, 1, 0, EIO);
	t0 = th_now_ms();
	assert_int_equal(th_touch(m + 2 * MV_PAGE_SIZE, t.host), 2);
	assert_true(th_now_ms() - t0 < 10000);
	mv__inject_reset();
	th_quiesce(vm);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.unreadable_pages, 1);
	assert_int_equal(st.first_unreadable_ppn, 2);
	assert_int_equal(st.unreadable_err, -EIO);
	assert_true(st.fault_errors >= 2);
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.unreadable_pages, 1);
	assert_non_null(strstr(mv_host_errmsg(t.host), "page 2 is unreadable"));
	/* kept where it was, never guessed: still SWAPPED in its slot, and
	 * a second touch fails the same way without reading anything */
	assert_int_equal(mv_vm_page_state(vm, 2), MV_PAGE_SWAPPED);
	assert_int_equal(st.swcur_pages, 4);
	assert_int_equal(th_touch(m + 2 * MV_PAGE_SIZE, t.host), 2);
	/* its neighbours, in the same run of slots, come back whole */
	for (uint64_t p = 0; p < 4; p++)
		if (p != 2)
			assert_true(th_check(m + p * MV_PAGE_SIZE, 6, p, 0));
	mv_vm_stats(vm, &st);
	assert_int_equal(st.unreadable_pages, 1);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/* A page that cannot be poisoned yet is tried again, never filled. */
static void
test_unreadable_page_that_cannot_be_poisoned_is_tried_again(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "nopoison", 1 * MiB);
	m = mv_vm_mem(vm);
	th_fill(m, 6, 0, 0);
	assert_int_equal(mv_vm_swap_out_page(vm, 0), 0);
	mv__inject_fail(MV_INJ_PREAD, 1, 0, EIO);
	mv__inject_fail(MV_INJ_UFFD_POISON, 1, 1, ENOMEM);
	assert_int_equal(th_touch(m, t.host), 2);
	assert_int_equal(mv__inject_hits(MV_INJ_UFFD_POISON), 1);
	/* two rounds of tries: the page was read 2 * 7 times */
	assert_true(mv__inject_hits(MV_INJ_PREAD) >= 14);
	mv__inject_reset();
	th_quiesce(vm);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.unreadable_pages, 1);
	assert_int_equal(mv_vm_page_state(vm, 0), MV_PAGE_SWAPPED);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void
test_persistent_image_read_error_fails_the_page_in_bounded_time(void **state)
{
	struct mv_vm_config cfg;
	uint8_t buf[MV_PAGE_SIZE];
	struct mv_vm_stats st;
	struct th_host t;
	char path[TH_PATH_LEN];
	uint8_t *m;
	mv_vm *vm;
	int fd;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	snprintf(path, sizeof(path), "%s/image", t.swapdir);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	for (uint64_t p = 0; p < 32; p++) {
		th_fill(buf, 77, p, 0);
		assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
	}
	close(fd);
	mv_vm_config_init(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "imgdead");
	cfg.memsize_bytes = 1 * MiB;
	cfg.image_path = path;
	assert_int_equal(mv_vm_create(t.host, &cfg, &vm), 0);
	m = mv_vm_mem(vm);
	mv__inject_fail(MV_INJ_PREAD, 1, 0, EIO);
	assert_int_equal(th_touch(m + 5 * MV_PAGE_SIZE, t.host), 2);
	mv__inject_reset();
	th_quiesce(vm);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.unreadable_pages, 1);
	assert_int_equal(st.first_unreadable_ppn, 5);
	assert_int_equal(st.unreadable_err, -EIO);
	assert_int_equal(mv_vm_page_state(vm, 5), MV_PAGE_UNTOUCHED);
	assert_non_null(strstr(mv_host_errmsg(t.host), "image"));
	for (uint64_t p = 0; p < 32; p++)
		if (p != 5)
			assert_true(th_check(m + p * MV_PAGE_SIZE, 77, p, 0));
	mv_vm_destroy(vm);
	unlink(path);
	th_host_destroy(&t);
}

struct verifier {
	struct mvg_workload *w;
	struct mvg_stats st;
	int err;
	_Atomic bool done;
};

static void *verifier_main(void *arg)
{
	struct verifier *v = arg;

	v->err = mvg_stop_and_verify(v->w, &v->st);
	atomic_store(&v->done, true);
	return NULL;
}

/*
 * A guest's final verification over pages the host cannot read back: it
 * used to hang on the first; it must end, naming them, with the rest
 * verified.
 */
static void test_verification_names_unreadable_pages_and_ends(void **state)
{
	uint64_t npages = 1 * MiB / MV_PAGE_SIZE, deadline;
	struct mvg_config cfg = { .kind = MVG_IDLE, .threads = 2, .seed = 7 };
	struct verifier v = { 0 };
	struct mvg_stats gs;
	struct mv_vm_stats st;
	struct th_host t;
	pthread_t th;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "verif", 1 * MiB);
	cfg.mem = mv_vm_mem(vm);
	cfg.memsize = 1 * MiB;
	assert_int_equal(mvg_start(&cfg, &v.w), 0);
	deadline = th_now_ms() + 20000;
	do {
		mvg_get_stats(v.w, &gs);
	} while (gs.writes < npages && th_now_ms() < deadline &&
		 (poll_pause_ms(5), 1));
	assert_int_equal(gs.writes, npages);
	assert_int_equal(mv_vm_swap_out_page(vm, 10), 0);
	assert_int_equal(mv_vm_swap_out_page(vm, 200), 0);
	mv__inject_fail(MV_INJ_PREAD, 1, 0, EIO);
	assert_int_equal(pthread_create(&th, NULL, verifier_main, &v), 0);
	deadline = th_now_ms() + 30000;
	while (!atomic_load(&v.done) && th_now_ms() < deadline)
		poll_pause_ms(10);
	if (!atomic_load(&v.done)) {
		fprintf(stderr, "verification still runs after 30 s: %s\n",
			mv_host_errmsg(t.host));
		abort(); /* its thread cannot be joined: end the binary */
	}
	pthread_join(th, NULL);
	mv__inject_reset();
	assert_int_equal(v.st.memory_errors, 2);
	assert_int_equal(v.st.integrity_errors, 2);
	assert_non_null(strstr(v.st.first_error, "memory error"));
	assert_true(strstr(v.st.first_error, "ppn 10:") ||
		    strstr(v.st.first_error, "ppn 200:"));
	/* every other page was read back and matched */
	assert_int_equal(v.st.pages_verified, npages - 2);
	th_quiesce(vm);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.unreadable_pages, 2);
	assert_int_equal(mv_vm_page_state(vm, 10), MV_PAGE_SWAPPED);
	assert_int_equal(mv_vm_page_state(vm, 200), MV_PAGE_SWAPPED);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/* The same for the burst workload, whose pages pass between threads. */
static void
test_burst_verification_names_unreadable_pages_and_ends(void **state)
{
	uint64_t npages = 1 * MiB / MV_PAGE_SIZE, deadline, bad[2];
	struct mvg_config cfg = { .kind = MVG_BURST,
				  .threads = 2,
				  .seed = 9,
				  .burst_pct = 80,
				  .burst_keep_pct = 100,
				  .burst_idle_ms = 50 };
	struct verifier v = { 0 };
	struct mvg_stats gs;
	struct th_host t;
	unsigned nbad = 0;
	pthread_t th;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "vburst", 1 * MiB);
	cfg.mem = mv_vm_mem(vm);
	cfg.memsize = 1 * MiB;
	assert_int_equal(mvg_start(&cfg, &v.w), 0);
	/* every page it takes is written once, then kept */
	deadline = th_now_ms() + 20000;
	do {
		mvg_get_stats(v.w, &gs);
	} while (gs.writes < npages * 8 / 10 - 2 && th_now_ms() < deadline &&
		 (poll_pause_ms(5), 1));
	assert_true(gs.writes >= npages * 8 / 10 - 2);
	for (uint64_t p = 0; p < npages && nbad < 2; p += 37)
		if (mv_vm_page_state(vm, p) == MV_PAGE_PRIVATE &&
		    mv_vm_swap_out_page(vm, p) == 0)
			bad[nbad++] = p;
	assert_int_equal(nbad, 2);
	mv__inject_fail(MV_INJ_PREAD, 1, 0, EIO);
	assert_int_equal(pthread_create(&th, NULL, verifier_main, &v), 0);
	deadline = th_now_ms() + 30000;
	while (!atomic_load(&v.done) && th_now_ms() < deadline)
		poll_pause_ms(10);
	if (!atomic_load(&v.done)) {
		fprintf(stderr, "verification still runs after 30 s: %s\n",
			mv_host_errmsg(t.host));
		abort(); /* its thread cannot be joined: end the binary */
	}
	pthread_join(th, NULL);
	mv__inject_reset();
	/* the guest may have met them itself before it was stopped: each
	 * counts once either way */
	assert_int_equal(v.st.memory_errors, 2);
	assert_int_equal(v.st.integrity_errors, 2);
	assert_non_null(strstr(v.st.first_error, "memory error"));
	assert_int_equal(mv_vm_page_state(vm, bad[0]), MV_PAGE_SWAPPED);
	assert_int_equal(mv_vm_page_state(vm, bad[1]), MV_PAGE_SWAPPED);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

struct admitter {
	struct mv_vm *vm;
	_Atomic bool done;
};

static void *admitter_main(void *arg)
{
	struct admitter *a = arg;

	mv__budget_admit(a->vm);
	atomic_store(&a->done, true);
	return NULL;
}

/*
 * The low state's gate holds a fault of a VM above its target while the
 * scheduler reclaims; if reclaim makes progress elsewhere but never for
 * it (its swap failing), the fault must still go through in bounded time.
 * A host stuck in low with the scheduler not stuck, built by hand.
 */
static void
test_admission_gate_lets_a_fault_through_in_bounded_time(void **state)
{
	struct mv_host *h = calloc(1, sizeof(*h));
	struct mv_vm *vm = calloc(1, sizeof(*vm));
	struct admitter a = { .vm = vm };
	uint64_t t0, deadline;
	pthread_t th;

	(void)state;
	assert_non_null(h);
	assert_non_null(vm);
	pthread_mutex_init(&h->frames_lock, NULL);
	pthread_mutex_init(&h->sched_lock, NULL);
	assert_int_equal(mv__cond_init_monotonic(&h->frames_freed), 0);
	assert_int_equal(mv__cond_init_monotonic(&h->sched_wake), 0);
	atomic_store(&h->state, MV_STATE_LOW);
	atomic_store(&h->sched_stuck, false);
	vm->host = h;
	atomic_store(&vm->consumed_pages, 100);
	atomic_store(&vm->sched.sztgt_pages, 10);
	t0 = th_now_ms();
	assert_int_equal(pthread_create(&th, NULL, admitter_main, &a), 0);
	deadline = t0 + 20000;
	while (!atomic_load(&a.done) && th_now_ms() < deadline)
		poll_pause_ms(10);
	if (!atomic_load(&a.done)) {
		fprintf(stderr, "a fault still waits at the gate after 20 s\n");
		abort(); /* its thread cannot be joined: end the binary */
	}
	pthread_join(th, NULL);
	assert_true(th_now_ms() - t0 < 10000);
	assert_int_equal(atomic_load(&h->admit_overruns), 1);
	assert_true(atomic_load(&h->blocked_waits) > 0);
	pthread_cond_destroy(&h->frames_freed);
	pthread_cond_destroy(&h->sched_wake);
	pthread_mutex_destroy(&h->frames_lock);
	pthread_mutex_destroy(&h->sched_lock);
	free(vm);
	free(h);
}

static int create_vm_in(const char *swapdir, uint64_t vmsize, char *msg,
			size_t msglen)
{
	struct mv_host_config cfg;
	struct mv_vm_config vc;
	mv_vm *vm = NULL;
	mv_host *h;
	int err;

	mv_host_config_init(&cfg);
	cfg.memsize_bytes = 16 * MiB;
	cfg.swapdir = swapdir;
	assert_int_equal(mv_host_create(&cfg, &h), 0);
	mv_vm_config_init(&vc);
	snprintf(vc.name, sizeof(vc.name), "vm1");
	vc.memsize_bytes = vmsize;
	err = mv_vm_create(h, &vc, &vm);
	snprintf(msg, msglen, "%s", mv_host_errmsg(h));
	if (!err)
		mv_vm_destroy(vm);
	mv_host_destroy(h);
	return err;
}

static void test_unusable_swapdir_is_a_clear_error(void **state)
{
	char msg[512];

	(void)state;
	/* a path through a regular file can never hold a swap file */
	assert_int_equal(create_vm_in("/etc/hostname/swap", MiB, msg,
				      sizeof(msg)),
			 -ENOTDIR);
	assert_non_null(strstr(msg, "/etc/hostname/swap"));
	assert_non_null(strstr(msg, "writable"));
}

/* A tmpfs a failed test left mounted on its scratch directory comes off
 * at teardown, so that the directory can go. */
static char mounted[TH_DIR_LEN];

static void unmount_left(void *arg)
{
	if (mounted[0])
		umount(mounted); /* EINVAL if the test unmounted it */
	mounted[0] = '\0';
	(void)arg;
}

static void unmount_at_teardown(const char *dir)
{
	snprintf(mounted, sizeof(mounted), "%s", dir);
	th_at_teardown(unmount_left, NULL);
}

static void test_read_only_swapdir_is_a_clear_error(void **state)
{
	char dir[TH_DIR_LEN], msg[512];

	(void)state;
	th_scratch(dir, sizeof(dir), "swap-ro");
	th_remove_at_teardown(dir);
	unmount_at_teardown(dir);
	if (mount("tmpfs", dir, "tmpfs", MS_RDONLY, "size=1m") < 0) {
		rmdir(dir);
		skip(); /* needs root */
	}
	assert_int_equal(create_vm_in(dir, MiB, msg, sizeof(msg)), -EROFS);
	assert_non_null(strstr(msg, "writable"));
	umount(dir);
	rmdir(dir);
}

static void test_full_swapdir_refuses_the_vm_at_start(void **state)
{
	char dir[TH_DIR_LEN], msg[512];

	(void)state;
	th_scratch(dir, sizeof(dir), "swap-full");
	th_remove_at_teardown(dir);
	unmount_at_teardown(dir);
	if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") < 0) {
		rmdir(dir);
		skip(); /* needs root */
	}
	assert_int_equal(create_vm_in(dir, 8 * MiB, msg, sizeof(msg)), -ENOSPC);
	assert_non_null(strstr(msg, "cannot hold"));
	assert_non_null(strstr(msg, "needs 8 MiB"));
	assert_non_null(strstr(msg, "MiB were free"));
	assert_int_equal(create_vm_in(dir, 512 * 1024, msg, sizeof(msg)), 0);
	umount(dir);
	rmdir(dir);
}

static unsigned dir_entries(const char *dir)
{
	struct dirent *e;
	unsigned n = 0;
	DIR *d = opendir(dir);

	assert_non_null(d);
	while ((e = readdir(d)))
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

static void test_swapdir_others_can_write_is_refused_unless_sticky(void **state)
{
	char dir[TH_DIR_LEN], msg[512];

	(void)state;
	th_scratch(dir, sizeof(dir), "swap-mode");
	th_remove_at_teardown(dir);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(create_vm_in(dir, MiB, msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, dir));
	assert_non_null(strstr(msg, "not sticky"));
	assert_int_equal(chmod(dir, 0770), 0);
	assert_int_equal(create_vm_in(dir, MiB, msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "group"));
	/* as /tmp: anyone may write, nobody may replace another's file */
	assert_int_equal(chmod(dir, 01777), 0);
	assert_int_equal(create_vm_in(dir, MiB, msg, sizeof(msg)), 0);
	assert_int_equal(dir_entries(dir), 0);
	rmdir(dir);
}

static void test_swapdir_of_another_user_is_refused(void **state)
{
	char dir[TH_DIR_LEN], msg[512];

	(void)state;
	th_scratch(dir, sizeof(dir), "swap-owner");
	th_remove_at_teardown(dir);
	if (geteuid() != 0 || chown(dir, 65534, 65534) < 0) {
		rmdir(dir);
		skip(); /* needs root to give a directory away */
	}
	assert_int_equal(chmod(dir, 0777), 0);
	assert_int_equal(create_vm_in(dir, MiB, msg, sizeof(msg)), -EPERM);
	assert_non_null(strstr(msg, "belongs to user 65534"));
	rmdir(dir);
}

/* While a VM runs, its swap file has no name anybody could open. */
static void test_swap_file_has_no_name_while_the_vm_runs(void **state)
{
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "anon", 1 * MiB);
	assert_int_equal(dir_entries(t.swapdir), 0);
	th_fill_vm(vm, 3, false);
	assert_int_equal(mv_vm_swap_out_page(vm, 9), 0);
	assert_int_equal(th_bad_pages(vm, 3, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/* Without O_TMPFILE, a random name is made, O_EXCL, and unlinked. */
static void test_swap_file_without_tmpfile_gets_a_random_name(void **state)
{
	struct mv__swap a, b;
	char dir[TH_DIR_LEN], msg[256];

	(void)state;
	th_scratch(dir, sizeof(dir), "swap-name");
	th_remove_at_teardown(dir);
	/* open #1 is the directory, #2 the O_TMPFILE */
	mv__inject_fail(MV_INJ_OPEN, 2, 1, EOPNOTSUPP);
	assert_int_equal(mv__swap_open(&a, dir, "vm", 1, 16, false, msg,
				       sizeof(msg)),
			 0);
	mv__inject_fail(MV_INJ_OPEN, 2, 1, EOPNOTSUPP);
	assert_int_equal(mv__swap_open(&b, dir, "vm", 1, 16, false, msg,
				       sizeof(msg)),
			 0);
	mv__inject_reset();
	assert_false(a.unnamed);
	/* same VM name, same id, same process: still two different names */
	assert_non_null(strstr(a.path, "/vm-"));
	assert_string_not_equal(a.path, b.path);
	assert_int_equal(dir_entries(dir), 0);
	mv__swap_close(&a);
	mv__swap_close(&b);
	rmdir(dir);
}

/*
 * A filesystem that runs out partway through the preallocation keeps what
 * it gave (ext4 does): it must go back at once, and the message must say
 * what was free before, not the nothing left after.
 */
static void test_failed_preallocation_gives_the_space_back(void **state)
{
	char dir[TH_DIR_LEN], msg[512], *p;
	struct statvfs before, after;
	unsigned long long said, had;
	struct mv__swap s;
	int64_t freed;

	(void)state;
	th_scratch(dir, sizeof(dir), "swap-prealloc");
	th_remove_at_teardown(dir);
	assert_int_equal(statvfs(dir, &before), 0);
	if ((uint64_t)before.f_bavail * before.f_frsize < 1024 * MiB) {
		rmdir(dir);
		skip(); /* room for the 256 MiB this takes, and to spare */
	}
	mv__inject_fallocate_partial((off_t)(256 * MiB));
	mv__inject_fail(MV_INJ_FALLOCATE, 1, 1, ENOSPC);
	assert_int_equal(mv__swap_open(&s, dir, "big", 1, 512 * MiB / 4096,
				       false, msg, sizeof(msg)),
			 -ENOSPC);
	assert_int_equal(mv__inject_hits(MV_INJ_FALLOCATE), 1);
	mv__inject_reset();
	assert_int_equal(statvfs(dir, &after), 0);
	/* within 64 MiB of before: others use the same disk meanwhile */
	freed = ((int64_t)after.f_bavail - (int64_t)before.f_bavail) *
		(int64_t)before.f_frsize;
	assert_true(freed > -(int64_t)(64 * MiB));
	/* the free space said is the one before, not what was left after
	 * 256 MiB were taken (others use the disk too: within 64 MiB) */
	p = strstr(msg, "needs 512 MiB, ");
	assert_non_null(p);
	assert_int_equal(sscanf(p, "needs 512 MiB, %llu MiB were free", &said),
			 1);
	had = (uint64_t)before.f_bavail * before.f_frsize >> 20;
	assert_true(said + 64 > had && said < had + 64);
	assert_int_equal(dir_entries(dir), 0);
	rmdir(dir);
}

static uint64_t blocks_of(int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	return (uint64_t)st.st_blocks;
}

/* What swap ever held is zeroed and the blocks handed back. */
static void test_discard_zeroes_and_punches_what_swap_held(void **state)
{
	char dir[TH_DIR_LEN], msg[256];
	uint8_t *page = aligned_alloc(MV_PAGE_SIZE, 8 * MV_PAGE_SIZE);
	struct iovec iov[8];
	uint64_t slots[8];
	struct mv__swap s;
	int err;

	(void)state;
	assert_non_null(page);
	th_scratch(dir, sizeof(dir), "swap-discard");
	th_remove_at_teardown(dir);
	assert_int_equal(mv__swap_open(&s, dir, "disc", 1, 64, true, msg,
				       sizeof(msg)),
			 0);
	for (unsigned i = 0; i < 8; i++) {
		th_fill(page + i * MV_PAGE_SIZE, 21, i, 0);
		iov[i] =
			(struct iovec){ page + i * MV_PAGE_SIZE, MV_PAGE_SIZE };
	}
	assert_int_equal(mv__swap_put(&s, iov, 8, slots, &err), 8);
	/* read back: each freed, so the next put reuses nothing of it */
	for (unsigned i = 0; i < 8; i++) {
		assert_int_equal(mv__swap_read(&s, slots[i], 1, page), 0);
		assert_true(th_check(page, 21, i, 0));
		mv__swap_free(&s, slots[i], 1);
	}
	assert_true(s.hwm >= 8);
	assert_int_equal(mv__swap_discard(&s), 0);
	/* the same descriptor, before close: zeros everywhere, no blocks */
	for (uint64_t sl = 0; sl < s.npages; sl += 8) {
		assert_int_equal(mv__swap_read(&s, sl, 8, page), 0);
		for (unsigned i = 0; i < 8; i++)
			assert_true(th_is_zero(page + i * MV_PAGE_SIZE));
	}
	assert_int_equal(blocks_of(s.fd), 0);
	/* and close discards too: it zeroes and punches on its way */
	assert_int_equal(mv__swap_put(&s, iov, 1, slots, &err), 1);
	mv__inject_fail(MV_INJ_PUNCH, 1, 0, EIO);
	mv__swap_close(&s);
	assert_int_equal(mv__inject_hits(MV_INJ_PUNCH), 1);
	mv__inject_reset();
	free(page);
	rmdir(dir);
}

static void test_vm_destroy_discards_its_swap(void **state)
{
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "gone", 1 * MiB);
	th_fill_vm(vm, 4, false);
	assert_int_equal(mv_vm_swap_out_page(vm, 3), 0);
	/* a punch that fails shows that destroy tried to */
	mv__inject_fail(MV_INJ_PUNCH, 1, 0, EIO);
	mv_vm_destroy(vm);
	assert_int_equal(mv__inject_hits(MV_INJ_PUNCH), 1);
	mv__inject_reset();
	th_host_destroy(&t);
}

static void
test_staging_that_cannot_be_emptied_stops_reclaim_unharmed(void **state)
{
	struct mv_settings s;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	mv_settings_init(&s);
	s.sample_period_s = 0;
	s.share_scan_ghz = 0;
	th_host_create(&t, 64 * MiB, &s);
	vm = th_vm_create(&t, "stage", 1 * MiB);
	th_fill_vm(vm, 9, false);
	th_drain_lru();
	mv__inject_fail(MV_INJ_MADVISE, 1, 1, ENOMEM);
	assert_int_equal(mv_vm_swap_out_page(vm, 4), 0);
	assert_int_equal(mv__inject_hits(MV_INJ_MADVISE), 1);
	assert_non_null(strstr(mv_host_errmsg(t.host), "staging"));
	/* the retry before the next batch fails too: no batch */
	mv__inject_fail(MV_INJ_MADVISE, 1, 1, ENOMEM);
	assert_int_equal(mv_vm_swap_out_page(vm, 5), -EBUSY);
	assert_int_equal(mv_vm_page_state(vm, 5), MV_PAGE_PRIVATE);
	mv__inject_reset();
	assert_int_equal(mv_vm_swap_out_page(vm, 5), 0);
	assert_int_equal(mv_vm_page_state(vm, 5), MV_PAGE_SWAPPED);
	assert_int_equal(th_bad_pages(vm, 9, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_swapped_pages_come_back_exactly),
		cmocka_unit_test(test_swap_slots_are_reused_cycle_after_cycle),
		cmocka_unit_test(
			test_swap_out_page_marks_swapped_and_frees_frame),
		cmocka_unit_test(test_swap_in_reads_a_cluster_of_neighbours),
		cmocka_unit_test(test_overcommitted_vm_keeps_every_byte),
		cmocka_unit_test(test_fresh_frames_never_show_another_vms_data),
		cmocka_unit_test(
			test_full_swap_disk_keeps_the_page_and_says_so),
		cmocka_unit_test(
			test_failing_swap_disk_under_pressure_loses_nothing),
		cmocka_unit_test(
			test_guest_finishes_when_every_swap_write_fails),
		cmocka_unit_test_teardown(
			test_guest_proceeds_on_minfree_while_a_page_move_stalls,
			th_teardown),
		cmocka_unit_test_teardown(
			test_a_stalled_move_lets_another_vms_guest_onto_minfree_too,
			th_teardown),
		cmocka_unit_test(
			test_admission_gate_lets_a_fault_through_in_bounded_time),
		cmocka_unit_test(test_swap_read_errors_retry_without_loss),
		cmocka_unit_test(
			test_persistent_swap_read_error_fails_the_page_in_bounded_time),
		cmocka_unit_test(
			test_unreadable_page_that_cannot_be_poisoned_is_tried_again),
		cmocka_unit_test(
			test_persistent_image_read_error_fails_the_page_in_bounded_time),
		cmocka_unit_test(
			test_verification_names_unreadable_pages_and_ends),
		cmocka_unit_test(
			test_burst_verification_names_unreadable_pages_and_ends),
		cmocka_unit_test(
			test_a_move_the_kernel_miscounts_loses_nothing),
		cmocka_unit_test(test_pages_moved_past_the_count_are_put_back),
		cmocka_unit_test(test_unusable_swapdir_is_a_clear_error),
		cmocka_unit_test(test_read_only_swapdir_is_a_clear_error),
		cmocka_unit_test(test_full_swapdir_refuses_the_vm_at_start),
		cmocka_unit_test(
			test_swapdir_others_can_write_is_refused_unless_sticky),
		cmocka_unit_test(test_swapdir_of_another_user_is_refused),
		cmocka_unit_test(test_swap_file_has_no_name_while_the_vm_runs),
		cmocka_unit_test(
			test_swap_file_without_tmpfile_gets_a_random_name),
		cmocka_unit_test(
			test_failed_preallocation_gives_the_space_back),
		cmocka_unit_test(
			test_discard_zeroes_and_punches_what_swap_held),
		cmocka_unit_test(test_vm_destroy_discards_its_swap),
		cmocka_unit_test(test_neighbouring_victims_move_in_one_call),
		cmocka_unit_test(
			test_staging_that_cannot_be_emptied_stops_reclaim_unharmed),
		cmocka_unit_test(
			test_a_miscounted_move_without_pagemap_loses_nothing),
		cmocka_unit_test(
			test_a_miscounted_move_the_kernel_will_not_undo_is_found_by_mincore),
	};

	return th_run_tests(tests);
}

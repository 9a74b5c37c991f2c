// SPDX-License-Identifier: MIT
/*
 * test_zero_open.c - open zero pages (zero_open.c, Mem.ZeroOpen): a read
 * of pages as zeros leaves them writable while memory is plentiful, a
 * frame counted for each, so that their first writes take no fault; the
 * written ones become PRIVATE (harvest, close), the others give their
 * frames back when closed; nothing a guest wrote is lost on the way, not
 * when the kernel refuses a call, and not when guest threads race it.
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

static mv_vm *vm_on(struct th_host *t, uint64_t host_bytes, uint64_t vm_bytes,
		    const char *open)
{
	struct mv_settings s;

	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.ZeroOpen", open), 0);
	/* the first write of a protected page takes it alone */
	assert_int_equal(mv_settings_set(&s, "Mem.ZeroWriteAround", "0"), 0);
	th_host_create(t, host_bytes, &s);
	return th_vm_create(t, "open", vm_bytes);
}

static void read_runs(mv_vm *vm, uint64_t lo, uint64_t runs)
{
	for (uint64_t r = 0; r < runs; r++)
		assert_int_equal(*(volatile uint8_t *)th_page(vm, lo + r * RUN),
				 0);
}

static bool is_open(mv_vm *vm, uint64_t ppn)
{
	return pmap_zero_open(pmap_peek(&vm->pmap[ppn]));
}

/* The kernels CI runs on (6.7 and later) have PAGEMAP_SCAN's zero-page
 * category; the engine's answer without it is tested below. */
static bool supported(struct th_host *t)
{
	const char *why = mv__zero_supported(t->host);

	if (why)
		fail_msg("open zero pages cannot run here: %s", why);
	return true;
}

/* The VM most tests start from: 4 MiB on a 64 MiB host, Mem.ZeroOpen 1 */
static mv_vm *open_vm(struct th_host *t)
{
	mv_vm *vm = vm_on(t, 64 * MiB, 4 * MiB, "1");

	assert_true(supported(t));
	return vm;
}

/* And where they end: every page present as its entry says, the counts
 * those of a walk; the VM and its host destroyed. */
static void done(struct th_host *t, mv_vm *vm)
{
	assert_int_equal(th_presence_mismatches(vm), 0);
	assert_int_equal(th_census_mismatches(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(t);
}

/* Every open page of vm, closed: what came back */
static uint64_t close_all(mv_vm *vm)
{
	return mv__zero_close(vm, UINT64_MAX);
}

/*
 * A read of a run of untouched pages opens it: a frame counted for each
 * page, and the first writes of its pages take no fault at all; the
 * bytes are the guest's.
 */
static void
test_a_read_opens_its_run_and_the_first_writes_take_no_fault(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = open_vm(&t);
	read_runs(vm, 16, 1);
	st = th_stats(vm);
	assert_int_equal(st.faults, 1);
	assert_int_equal(st.zero_opens, RUN);
	assert_int_equal(st.zero_open_pages, RUN);
	assert_int_equal(st.consumed_pages, RUN);
	assert_int_equal(st.state_pages[MV_PAGE_ZERO], RUN);
	/* each holds a frame: none reads as zeros for free */
	assert_int_equal(st.zero_pages, 0);
	assert_int_equal(st.shrdsvd_pages, 0);
	for (uint64_t p = 16; p < 32; p++) {
		assert_true(is_open(vm, p));
		th_fill(th_page(vm, p), 7, p, 0);
	}
	st = th_stats(vm);
	assert_int_equal(st.faults, 1);
	assert_int_equal(st.zero_writes, 0);
	for (uint64_t p = 16; p < 32; p++)
		assert_true(th_check(th_page(vm, p), 7, p, 0));
	done(&t, vm);
}

/*
 * Closing: the pages the guest wrote become PRIVATE with their bytes
 * (their frames still counted), the others map the zero page protected
 * again and their frames come back; a later write of one of those faults
 * and is kept.
 */
static void
test_a_close_gives_back_unwritten_frames_and_keeps_written_bytes(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	uint64_t back;
	mv_vm *vm;

	(void)state;
	vm = open_vm(&t);
	read_runs(vm, 0, 2);
	for (uint64_t p = 0; p < 2 * RUN; p += 3)
		th_fill(th_page(vm, p), 8, p, 0);
	back = close_all(vm);
	assert_int_equal(back, 2 * RUN - 11); /* pages 0, 3, ... 30 written */
	st = th_stats(vm);
	assert_int_equal(st.zero_open_pages, 0);
	assert_int_equal(st.zero_open_writes, 11);
	assert_int_equal(st.zero_closes, 2 * RUN - 11);
	assert_int_equal(st.consumed_pages, 11);
	for (uint64_t p = 0; p < 2 * RUN; p++) {
		assert_int_equal(mv_vm_page_state(vm, p),
				 p % 3 ? MV_PAGE_ZERO : MV_PAGE_PRIVATE);
		if (p % 3)
			assert_true(th_is_zero(th_page(vm, p)));
		else
			assert_true(th_check(th_page(vm, p), 8, p, 0));
	}
	/* a closed page is protected again: its first write faults */
	th_fill(th_page(vm, 1), 8, 1, 1);
	st = th_stats(vm);
	assert_int_equal(st.zero_writes, 1);
	assert_int_equal(st.consumed_pages, 12);
	assert_true(th_check(th_page(vm, 1), 8, 1, 1));
	/* and a written one was made writable again: no fault */
	th_fill(th_page(vm, 3), 8, 3, 1);
	assert_int_equal(th_stats(vm).faults, st.faults);
	assert_true(th_check(th_page(vm, 3), 8, 3, 1));
	done(&t, vm);
}

static bool harvested_5(void *arg)
{
	struct mv_vm_stats st;

	mv_vm_stats(arg, &st);
	return st.zero_open_writes == 5;
}

/*
 * The scheduler finds the open pages the guest wrote (PAGEMAP_SCAN) and
 * makes them PRIVATE, with no fault; the others stay open.
 */
static void
test_the_scheduler_finds_the_open_pages_the_guest_wrote(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = open_vm(&t);
	read_runs(vm, 32, 1);
	for (uint64_t p = 32; p < 37; p++)
		th_fill(th_page(vm, p), 9, p, 0);
	assert_true(th_wait_until(harvested_5, vm, 10000));
	st = th_stats(vm);
	assert_int_equal(st.faults, 1);
	assert_int_equal(st.zero_open_pages, RUN - 5);
	assert_int_equal(st.consumed_pages, RUN);
	for (uint64_t p = 32; p < 48; p++)
		assert_int_equal(mv_vm_page_state(vm, p),
				 p < 37 ? MV_PAGE_PRIVATE : MV_PAGE_ZERO);
	for (uint64_t p = 32; p < 37; p++)
		assert_true(th_check(th_page(vm, p), 9, p, 0));
	done(&t, vm);
}

/*
 * A kernel that will not say which pages map the zero page (PAGEMAP_SCAN
 * refused) makes a close take every page as written: PRIVATE, frames
 * kept, the bytes the guest's; nothing comes back that was written.
 */
static void
test_a_close_without_the_kernels_answer_takes_every_page_written(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = open_vm(&t);
	read_runs(vm, 0, 1);
	th_fill(th_page(vm, 4), 10, 4, 0);
	mv__inject_fail(MV_INJ_PAGEMAP_SCAN, 1, 0, EIO);
	assert_int_equal(close_all(vm), 0);
	mv__inject_reset();
	st = th_stats(vm);
	assert_true(st.zero_open_errors >= 1);
	assert_int_equal(st.zero_open_pages, 0);
	assert_int_equal(st.consumed_pages, RUN);
	for (uint64_t p = 0; p < RUN; p++) {
		assert_int_equal(mv_vm_page_state(vm, p), MV_PAGE_PRIVATE);
		if (p == 4)
			assert_true(th_check(th_page(vm, p), 10, p, 0));
		else
			assert_true(th_is_zero(th_page(vm, p)));
	}
	/* writable again: no fault */
	th_fill(th_page(vm, 5), 10, 5, 0);
	assert_int_equal(th_stats(vm).faults, st.faults);
	assert_true(th_check(th_page(vm, 5), 10, 5, 0));
	done(&t, vm);
}

/*
 * A protection the kernel refuses leaves the run open (its frames still
 * counted, its bytes as written); the next close does it.
 */
static void test_a_refused_protection_leaves_the_run_open(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = open_vm(&t);
	/* no harvest by the scheduler's tick: it would make page 2 PRIVATE
	 * between the write and the count */
	atomic_store(&vm->zo.next_harvest_ms, UINT64_MAX);
	read_runs(vm, 0, 1);
	th_fill(th_page(vm, 2), 11, 2, 0);
	mv__inject_fail(MV_INJ_UFFD_WP, 1, 1, EAGAIN);
	assert_int_equal(mv__zero_close(vm, RUN), 0);
	mv__inject_reset();
	st = th_stats(vm);
	assert_int_equal(st.zero_open_errors, 1);
	assert_int_equal(st.zero_open_pages, RUN);
	assert_int_equal(st.consumed_pages, RUN);
	th_fill(th_page(vm, 3), 11, 3, 0); /* still writable: no fault */
	assert_int_equal(th_stats(vm).faults, 1);
	assert_int_equal(close_all(vm), RUN - 2);
	assert_true(th_check(th_page(vm, 2), 11, 2, 0));
	assert_true(th_check(th_page(vm, 3), 11, 3, 0));
	assert_int_equal(th_stats(vm).consumed_pages, 2);
	done(&t, vm);
}

/*
 * With Mem.ZeroOpen 0, or where the host's free memory would fall below
 * twice minFree, or the VM past its target, a read maps the zero page
 * protected as before: no frame counted, the first write a fault.
 */
static void test_no_page_opens_without_room_or_the_setting(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = vm_on(&t, 64 * MiB, 4 * MiB, "0");
	read_runs(vm, 0, 1);
	th_fill(th_page(vm, 0), 12, 0, 0);
	st = th_stats(vm);
	assert_int_equal(st.zero_opens, 0);
	assert_int_equal(st.zero_writes, 1);
	assert_int_equal(st.consumed_pages, 1);
	mv_vm_destroy(vm);
	th_host_destroy(&t);

	/* a host whose free memory is all but twice minFree taken */
	vm = vm_on(&t, 16 * MiB, 32 * MiB, "1");
	{
		struct mv_host *h = t.host;
		uint64_t keep = 2 * atomic_load(&h->minfree_pages) + RUN - 1;
		uint64_t fill = h->memsize_pages - keep;

		/* fill pages from 64 on: written first, never read */
		for (uint64_t p = 0; p < fill; p++)
			th_fill(th_page(vm, 64 + p), 12, 64 + p, 0);
	}
	read_runs(vm, 0, 1);
	st = th_stats(vm);
	assert_int_equal(st.zero_opens, 0);
	assert_int_equal(mv_vm_page_state(vm, 0), MV_PAGE_ZERO);
	assert_false(is_open(vm, 0));
	done(&t, vm);
}

/*
 * A VM that writes what it reads (a tenth of its pages read as zeros
 * written, each a fault) has its pages mapped protected (closed here, as
 * when memory ran short) opened again by the scheduler: their writes
 * take no fault from then on.  A VM that only reads has none opened.
 */
static void test_the_scheduler_opens_the_zero_pages_of_a_writer(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = open_vm(&t);
	read_runs(vm, 0, 4);
	assert_int_equal(close_all(vm), 4 * RUN);
	mv__zero_tick(vm, th_now_ms()); /* a reader: nothing opened */
	assert_int_equal(th_stats(vm).zero_opens, 4 * RUN);
	for (uint64_t p = 0; p < 8; p++) /* 8 of 64: past a tenth */
		th_fill(th_page(vm, p), 13, p, 0);
	/* 7 faults make it a writer (7 >= 6.4): the scheduler's own tick
	 * may have opened page 7 before its write */
	st = th_stats(vm);
	assert_true(st.zero_writes == 7 || st.zero_writes == 8);
	/* the scheduler's tick, at once (if its own came first, this one
	 * finds nothing left to open) */
	mv__zero_tick(vm, th_now_ms());
	st = th_stats(vm);
	assert_int_equal(st.zero_opens, 4 * RUN + 4 * RUN - st.zero_writes);
	assert_int_equal(st.consumed_pages, 4 * RUN);
	for (uint64_t p = 8; p < 4 * RUN; p++) {
		assert_true(is_open(vm, p));
		th_fill(th_page(vm, p), 13, p, 0);
	}
	assert_int_equal(th_stats(vm).faults, st.faults);
	for (uint64_t p = 0; p < 4 * RUN; p++)
		assert_true(th_check(th_page(vm, p), 13, p, 0));
	done(&t, vm);
}

/*
 * A kernel without PAGEMAP_SCAN's zero-page category (before 6.7): the
 * engine says why, and reads map the zero page protected, as with the
 * setting off.
 */
static void
test_a_kernel_without_the_zero_page_category_opens_nothing(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = vm_on(&t, 64 * MiB, 4 * MiB, "1");
	atomic_store(&t.host->zero_scan, -ENOTTY);
	assert_string_equal(
		mv__zero_supported(t.host),
		"this kernel has no PAGEMAP_SCAN with the zero-page category (Linux 6.7)");
	read_runs(vm, 0, 1);
	th_fill(th_page(vm, 0), 16, 0, 0);
	st = th_stats(vm);
	assert_int_equal(st.zero_opens, 0);
	assert_int_equal(st.zero_writes, 1);
	assert_int_equal(st.consumed_pages, 1);
	assert_true(th_check(th_page(vm, 0), 16, 0, 0));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * The balloon takes an open page, written or not, with its frame: the
 * count of open pages and the VM's frames both drop, and the page reads
 * as zeros after the deflate.
 */
static void test_the_balloon_takes_an_open_page_and_its_frame(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	vm = open_vm(&t);
	read_runs(vm, 0, 1);
	th_fill(th_page(vm, 1), 14, 1, 0);
	assert_int_equal(mv_vm_discard(vm, 0, 2 * MV_PAGE_SIZE), 0);
	st = th_stats(vm);
	assert_int_equal(st.zero_open_pages, RUN - 2);
	assert_int_equal(st.consumed_pages, RUN - 2);
	/* read again: zeros, and open again */
	assert_true(th_is_zero(th_page(vm, 0)));
	assert_true(th_is_zero(th_page(vm, 1)));
	assert_int_equal(close_all(vm), RUN);
	assert_int_equal(th_stats(vm).consumed_pages, 0);
	done(&t, vm);
}

/* ---- guests racing closes and harvests ---- */

#define RACE_PAGES 512
#define RACE_THREADS 2

struct race {
	mv_vm *vm;
	_Atomic bool stop;
	_Atomic uint64_t bad, writes, discards;
	uint64_t version[RACE_PAGES]; /* each thread owns p % RACE_THREADS */
	unsigned id;
};

struct racer {
	struct race *r;
	unsigned id;
};

/* Each thread reads (opening runs), checks and rewrites its own pages. */
static void *racer_main(void *arg)
{
	struct racer *w = arg;
	struct race *r = w->r;
	uint64_t rng = 7 + w->id, p, v, k;

	while (!atomic_load(&r->stop)) {
		p = th_xs(&rng) % RACE_PAGES;
		p -= p % RACE_THREADS;
		p += w->id;
		v = r->version[p];
		if (v ? !th_check(th_page(r->vm, p), 15, p, v - 1) :
			!th_is_zero(th_page(r->vm, p)))
			atomic_fetch_add(&r->bad, 1);
		k = th_xs(&rng) % 16;
		if (k == 0) {
			/* given up, as to a balloon: zeros, untouched again */
			if (mv_vm_discard(r->vm, p << MV_PAGE_SHIFT,
					  MV_PAGE_SIZE))
				atomic_fetch_add(&r->bad, 1);
			r->version[p] = 0;
			atomic_fetch_add(&r->discards, 1);
		} else if (k <= 8) {
			th_fill(th_page(r->vm, p), 15, p, v);
			r->version[p] = v + 1;
			atomic_fetch_add(&r->writes, 1);
		}
	}
	return NULL;
}

/*
 * Guest threads read, write and give up their own pages (every read of an
 * untouched run opens it; a page given up is untouched again) while
 * another thread closes and harvests over and over: every page holds what
 * was last written (or zeros), and the frames counted are the VM's
 * PRIVATE and open pages, exactly.  The race goes on until closes have
 * taken unwritten pages back (bounded: the positive control), however
 * the threads were scheduled.
 */
static void
test_nothing_is_lost_while_guests_race_closes_and_harvests(void **state)
{
	static struct race r;
	struct racer w[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	struct mv_vm_stats st;
	struct th_host t;
	uint64_t end, limit, rounds = 0;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.vm = vm_on(&t, 64 * MiB, RACE_PAGES * MV_PAGE_SIZE, "1");
	assert_true(supported(&t));
	for (unsigned i = 0; i < RACE_THREADS; i++) {
		w[i] = (struct racer){ &r, i };
		assert_int_equal(
			pthread_create(&th[i], NULL, racer_main, &w[i]), 0);
	}
	end = th_now_ms() + 1000 * th_torture_seconds() / 3;
	limit = th_now_ms() + 60000;
	while ((th_now_ms() < end || atomic_load(&r.writes) < 10000 ||
		atomic_load(&r.discards) < 100 ||
		!atomic_load(&r.vm->c.zero_closes)) &&
	       th_now_ms() < limit) {
		close_all(r.vm);
		atomic_store(&r.vm->zo.next_harvest_ms, 0);
		mv__zero_tick(r.vm, th_now_ms());
		rounds++;
	}
	atomic_store(&r.stop, true);
	for (unsigned i = 0; i < RACE_THREADS; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&r.bad), 0);
	for (uint64_t p = 0; p < RACE_PAGES; p++)
		assert_true(r.version[p] ? th_check(th_page(r.vm, p), 15, p,
						    r.version[p] - 1) :
					   th_is_zero(th_page(r.vm, p)));
	st = th_stats(r.vm);
	print_message(
		"rounds %llu opens %llu closes %llu open writes %llu zero writes %llu faults %llu\n",
		(unsigned long long)rounds, (unsigned long long)st.zero_opens,
		(unsigned long long)st.zero_closes,
		(unsigned long long)st.zero_open_writes,
		(unsigned long long)st.zero_writes,
		(unsigned long long)st.faults);
	assert_true(st.zero_closes > 0 && rounds > 10);
	assert_int_equal(st.consumed_pages,
			 st.state_pages[MV_PAGE_PRIVATE] + st.zero_open_pages);
	assert_int_equal(th_presence_mismatches(r.vm), 0);
	assert_int_equal(th_census_mismatches(r.vm), 0);
	mv_vm_destroy(r.vm);
	th_host_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(
			test_a_read_opens_its_run_and_the_first_writes_take_no_fault,
			th_teardown),
		cmocka_unit_test_teardown(
			test_a_close_gives_back_unwritten_frames_and_keeps_written_bytes,
			th_teardown),
		cmocka_unit_test_teardown(
			test_the_scheduler_finds_the_open_pages_the_guest_wrote,
			th_teardown),
		cmocka_unit_test_teardown(
			test_a_close_without_the_kernels_answer_takes_every_page_written,
			th_teardown),
		cmocka_unit_test_teardown(
			test_a_refused_protection_leaves_the_run_open,
			th_teardown),
		cmocka_unit_test_teardown(
			test_no_page_opens_without_room_or_the_setting,
			th_teardown),
		cmocka_unit_test_teardown(
			test_the_scheduler_opens_the_zero_pages_of_a_writer,
			th_teardown),
		cmocka_unit_test_teardown(
			test_a_kernel_without_the_zero_page_category_opens_nothing,
			th_teardown),
		cmocka_unit_test_teardown(
			test_the_balloon_takes_an_open_page_and_its_frame,
			th_teardown),
		cmocka_unit_test_teardown(
			test_nothing_is_lost_while_guests_race_closes_and_harvests,
			th_teardown),
	};

	return th_run_group("zero_open", tests,
			    sizeof(tests) / sizeof(tests[0]));
}

// SPDX-License-Identifier: MIT
/*
 * test_attach.c - guest memory that belongs to the VMM (src/attach.c): a
 * caller's mapping attached as a VM's memory, the pages it wrote before
 * adopted, reclaim and faults on it, its content put back at destroy,
 * and discards (mv_vm_discard) against every page state and against
 * concurrent faults and reclaim.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"
#include "internal.h"

#define MiB (1ull << 20)
#define TAG 0xa77ac4ull

/* A private anonymous read/write mapping, as a VMM maps guest RAM. */
static uint8_t *vmm_map(uint64_t len)
{
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	assert_true(m != MAP_FAILED);
	return m;
}

static int attach(struct th_host *t, const char *name, void *mem, uint64_t len,
		  mv_vm **vm)
{
	struct mv_vm_config cfg;
	int err;

	mv_vm_config_init(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	cfg.memsize_bytes = len;
	cfg.mem = mem;
	err = mv_vm_create(t->host, &cfg, vm);
	if (err)
		fprintf(stderr, "attach: %s: %s\n", mv_strerror(err),
			mv_host_errmsg(t->host));
	return err;
}

static struct mv_vm_stats stats_of(mv_vm *vm)
{
	struct mv_vm_stats st;

	assert_int_equal(mv_vm_stats(vm, &st), 0);
	return st;
}

static void test_an_attached_vm_uses_the_callers_mapping(void **state)
{
	uint64_t len = 8 * MiB;
	uint8_t *m = vmm_map(len);
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	assert_int_equal(attach(&t, "att", m, len, &vm), 0);
	assert_ptr_equal(mv_vm_mem(vm), m);
	assert_int_equal(stats_of(vm).attached, 1);
	assert_int_equal(mv_vm_page_state(vm, 3), MV_PAGE_UNTOUCHED);
	th_fill_vm(vm, TAG, false);
	assert_int_equal(mv_vm_page_state(vm, 3), MV_PAGE_PRIVATE);
	assert_int_equal(stats_of(vm).consumed_pages, len / MV_PAGE_SIZE);
	assert_int_equal(th_bad_pages(vm, TAG, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
	assert_int_equal(munmap(m, len), 0);
}

static void test_pages_written_before_attach_are_adopted(void **state)
{
	uint64_t len = 4 * MiB, npages = len / MV_PAGE_SIZE, n = 0;
	uint8_t *m = vmm_map(len);
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	/* every third page written, as ROMs and a kernel image would be */
	for (uint64_t p = 0; p < npages; p += 3, n++)
		th_fill(m + p * MV_PAGE_SIZE, TAG, p, 0);
	th_host_create(&t, 64 * MiB, NULL);
	assert_int_equal(attach(&t, "adopt", m, len, &vm), 0);
	st = stats_of(vm);
	assert_int_equal(st.adopted_pages, n);
	assert_int_equal(st.consumed_pages, n);
	/* filled, for the scheduler's demand, as a fault's fill is: never
	 * taken for memory the VM holds and does not use */
	assert_int_equal(mv__sample_filled_pages(vm), n);
	assert_int_equal(st.state_pages[MV_PAGE_PRIVATE], n);
	assert_int_equal(st.state_pages[MV_PAGE_UNTOUCHED], npages - n);
	assert_int_equal(mv_vm_page_state(vm, 3), MV_PAGE_PRIVATE);
	assert_int_equal(mv_vm_page_state(vm, 4), MV_PAGE_UNTOUCHED);
	/* and they are the engine's like any other: out and back */
	assert_int_equal(mv_vm_swap_out_page(vm, 3), 0);
	assert_int_equal(mv_vm_page_state(vm, 3), MV_PAGE_SWAPPED);
	for (uint64_t p = 0; p < npages; p++)
		assert_true(p % 3 ? th_is_zero(m + p * MV_PAGE_SIZE) :
				    th_check(m + p * MV_PAGE_SIZE, TAG, p, 0));
	assert_int_equal(th_presence_mismatches(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
	munmap(m, len);
}

static void test_attach_refuses_memory_the_budget_cannot_hold(void **state)
{
	uint64_t len = 16 * MiB;
	uint8_t *m = vmm_map(len);
	struct mv_host_stats hs;
	struct th_host t;
	mv_vm *vm = NULL;

	(void)state;
	for (uint64_t p = 0; p < len / MV_PAGE_SIZE; p++)
		th_fill(m + p * MV_PAGE_SIZE, TAG, p, 0);
	th_host_create(&t, 8 * MiB, NULL);
	assert_int_equal(attach(&t, "big", m, len, &vm), -ENOMEM);
	assert_non_null(strstr(mv_host_errmsg(t.host), "already written"));
	assert_int_equal(mv_host_stats(t.host, &hs), 0);
	assert_int_equal(hs.consumed_pages, 0);
	/* nothing lost, and the mapping is plain memory again */
	for (uint64_t p = 0; p < len / MV_PAGE_SIZE; p++)
		assert_true(th_check(m + p * MV_PAGE_SIZE, TAG, p, 0));
	th_host_destroy(&t);
	munmap(m, len);
}

static void
test_attach_refuses_what_is_not_private_anonymous_memory(void **state)
{
	uint64_t len = 2 * MiB;
	uint8_t *m = vmm_map(len), *shared;
	struct th_host t;
	mv_vm *vm = NULL;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	assert_int_equal(attach(&t, "odd", m + 100, len - MV_PAGE_SIZE, &vm),
			 -EINVAL);
	shared = mmap(NULL, len, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(shared != MAP_FAILED);
	assert_int_equal(attach(&t, "shared", shared, len, &vm), -EINVAL);
	assert_non_null(strstr(mv_host_errmsg(t.host), "not private"));
	/* a hole inside the range */
	munmap(m + MiB, MV_PAGE_SIZE);
	assert_int_equal(attach(&t, "hole", m, len, &vm), -EINVAL);
	assert_non_null(strstr(mv_host_errmsg(t.host), "nothing is mapped"));
	assert_null(vm);
	th_host_destroy(&t);
	munmap(m, len);
	munmap(shared, len);
}

/*
 * The budget is half the guest: filling and verifying every page reclaims
 * (compresses and swaps) and faults pages back on the caller's mapping.
 */
static void test_an_attached_vm_over_its_budget_keeps_every_page(void **state)
{
	uint64_t len = 16 * MiB;
	uint8_t *m = vmm_map(len);
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 8 * MiB, NULL);
	assert_int_equal(attach(&t, "over", m, len, &vm), 0);
	th_fill_vm(vm, TAG, false);
	assert_int_equal(th_bad_pages(vm, TAG, false), 0);
	th_fill_vm(vm, TAG + 1, true);
	assert_int_equal(th_bad_pages(vm, TAG + 1, true), 0);
	st = stats_of(vm);
	assert_true(st.swapout_pages + st.zip_pages > 0);
	assert_true(st.swapin_pages + st.unzip_pages > 0);
	assert_true(st.consumed_pages <= 8 * MiB / MV_PAGE_SIZE);
	assert_int_equal(st.fault_errors, 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
	munmap(m, len);
}

/*
 * At destroy every page is put back into the caller's mapping: swapped,
 * compressed, shared and zero pages alike; the mapping stays, unregistered,
 * plain memory the caller may write and unmap.
 */
static void test_destroy_puts_every_page_back_into_the_mapping(void **state)
{
	uint64_t len = 4 * MiB, npages = len / MV_PAGE_SIZE, done = 0;
	uint8_t *m = vmm_map(len);
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	assert_int_equal(attach(&t, "back", m, len, &vm), 0);
	/* quarter by quarter: random, compressible, equal, zero */
	for (uint64_t p = 0; p < npages; p++) {
		uint8_t *g = m + p * MV_PAGE_SIZE;

		if (p < npages / 4)
			th_fill(g, TAG, p, 0);
		else if (p < npages / 2)
			th_fill_z(g, TAG, p, 0);
		else if (p < 3 * npages / 4)
			th_fill(g, TAG, 7, 0);
		else
			g[0] = 0;
	}
	th_quiesce(vm);
	assert_int_equal(mv_vm_share_scan(vm, npages, NULL), 0);
	th_drain_lru();
	assert_int_equal(mv_vm_swap_out(vm, npages, &done), 0);
	st = stats_of(vm);
	assert_true(st.shrd_pages > 0);
	assert_true(st.zero_pages > 0);
	assert_true(st.swcur_pages > 0);
	assert_true(st.zip_cached_pages > 0);
	mv_vm_destroy(vm);
	for (uint64_t p = 0; p < npages; p++) {
		uint8_t *g = m + p * MV_PAGE_SIZE;

		if (p < npages / 4)
			assert_true(th_check(g, TAG, p, 0));
		else if (p < npages / 2)
			assert_true(th_check_z(g, TAG, p, 0));
		else if (p < 3 * npages / 4)
			assert_true(th_check(g, TAG, 7, 0));
		else
			assert_true(th_is_zero(g));
	}
	/* plain memory now: writes land, nothing faults to anyone */
	for (uint64_t p = 0; p < npages; p++)
		th_fill(m + p * MV_PAGE_SIZE, TAG + 2, p, 0);
	for (uint64_t p = 0; p < npages; p++)
		assert_true(th_check(m + p * MV_PAGE_SIZE, TAG + 2, p, 0));
	th_host_destroy(&t);
	assert_int_equal(munmap(m, len), 0);
}

/* ---- discard ---- */

static void test_discard_frees_frames_and_the_pages_read_zeros(void **state)
{
	uint64_t len = 4 * MiB, npages = len / MV_PAGE_SIZE;
	uint8_t *m = vmm_map(len);
	struct mv_host_stats hs;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	assert_int_equal(attach(&t, "disc", m, len, &vm), 0);
	th_fill_vm(vm, TAG, false);
	assert_int_equal(
		mv_vm_discard(vm, 256 * MV_PAGE_SIZE, 512 * MV_PAGE_SIZE), 0);
	st = stats_of(vm);
	assert_int_equal(st.consumed_pages, npages - 512);
	assert_int_equal(st.discard_pages, 512);
	assert_int_equal(st.discard_frames_freed, 512);
	assert_int_equal(st.state_pages[MV_PAGE_UNTOUCHED], 512);
	assert_int_equal(st.mctlsz_pages, 0);
	assert_int_equal(mv_host_stats(t.host, &hs), 0);
	assert_int_equal(hs.consumed_pages, npages - 512);
	assert_int_equal(th_presence_mismatches(vm), 0);
	for (uint64_t p = 0; p < npages; p++) {
		uint8_t *g = m + p * MV_PAGE_SIZE;

		if (p >= 256 && p < 768)
			assert_true(th_is_zero(g));
		else
			assert_true(th_check(g, TAG, p, 0));
	}
	mv_vm_destroy(vm);
	th_host_destroy(&t);
	munmap(m, len);
}

static void
test_discard_frees_swap_slots_cache_entries_and_shared_pages(void **state)
{
	uint64_t len = 2 * MiB, npages = len / MV_PAGE_SIZE, done = 0;
	uint8_t *m = vmm_map(len);
	struct mv_host_stats hs;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	assert_int_equal(attach(&t, "states", m, len, &vm), 0);
	/* a third each: random (swapped), compressible (cached), equal
	 * (shared) */
	for (uint64_t p = 0; p < npages; p++) {
		uint8_t *g = m + p * MV_PAGE_SIZE;

		if (p % 3 == 0)
			th_fill(g, TAG, p, 0);
		else if (p % 3 == 1)
			th_fill_z(g, TAG, p, 0);
		else
			th_fill(g, TAG, 5, 0);
	}
	th_quiesce(vm);
	assert_int_equal(mv_vm_share_scan(vm, npages, NULL), 0);
	th_drain_lru();
	assert_int_equal(mv_vm_swap_out(vm, npages, &done), 0);
	st = stats_of(vm);
	assert_true(st.swcur_pages > 0 && st.zip_cached_pages > 0 &&
		    st.shrd_pages > 0);
	assert_int_equal(mv_vm_discard(vm, 0, len), 0);
	st = stats_of(vm);
	assert_int_equal(st.swcur_pages, 0);
	assert_int_equal(st.zip_cached_pages, 0);
	assert_int_equal(st.shrd_pages, 0);
	assert_int_equal(st.consumed_pages, 0);
	assert_int_equal(st.state_pages[MV_PAGE_UNTOUCHED], npages);
	assert_int_equal(st.discard_pages, npages);
	assert_int_equal(mv_host_stats(t.host, &hs), 0);
	assert_int_equal(hs.share_frames, 0);
	assert_int_equal(hs.consumed_pages, 0);
	for (uint64_t p = 0; p < npages; p++)
		assert_true(th_is_zero(m + p * MV_PAGE_SIZE));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
	munmap(m, len);
}

/* A discard inside a large page breaks it first: only the discarded
 * pages lose their frames. */
static void
test_a_discard_inside_a_large_page_frees_only_its_pages(void **state)
{
	uint64_t len = 4 * MiB, npages = len / MV_PAGE_SIZE, regions = 0;
	uint8_t *res = vmm_map(len + 2 * MiB), *m;
	struct mv_settings s;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	m = (uint8_t *)(((uintptr_t)res + 2 * MiB - 1) & ~(2 * MiB - 1));
	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.AllocGuestLargePage", "1"),
			 0);
	th_host_create(&t, 64 * MiB, &s);
	assert_int_equal(attach(&t, "large", m, len, &vm), 0);
	th_fill_vm(vm, TAG, false);
	th_drain_lru();
	assert_int_equal(mv_vm_lpage_collapse(vm, &regions), 0);
	assert_int_equal(regions, 2);
	assert_int_equal(
		mv_vm_discard(vm, 100 * MV_PAGE_SIZE, 16 * MV_PAGE_SIZE), 0);
	st = stats_of(vm);
	assert_int_equal(st.lpage_breaks, 1);
	assert_int_equal(st.lpage_pages, 512);
	assert_int_equal(st.consumed_pages, npages - 16);
	assert_int_equal(st.discard_frames_freed, 16);
	for (uint64_t p = 0; p < npages; p++) {
		uint8_t *g = m + p * MV_PAGE_SIZE;

		if (p >= 100 && p < 116)
			assert_true(th_is_zero(g));
		else
			assert_true(th_check(g, TAG, p, 0));
	}
	assert_int_equal(th_presence_mismatches(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
	munmap(res, len + 2 * MiB);
}

static void test_discard_refuses_ranges_outside_the_vm(void **state)
{
	uint64_t len = 1 * MiB;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "range", len);
	assert_int_equal(mv_vm_discard(vm, 1, MV_PAGE_SIZE), -EINVAL);
	assert_int_equal(mv_vm_discard(vm, 0, 100), -EINVAL);
	assert_int_equal(mv_vm_discard(vm, len, MV_PAGE_SIZE), -EINVAL);
	assert_int_equal(mv_vm_discard(vm, MV_PAGE_SIZE, len), -EINVAL);
	assert_int_equal(mv_vm_discard(vm, len, 0), 0);
	assert_int_equal(mv_vm_discard(NULL, 0, 0), -EINVAL);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/* A VM with a RAM image: a discarded page reads zeros, not the image. */
static void test_a_discarded_page_of_an_image_vm_reads_zeros(void **state)
{
	char dir[TH_DIR_LEN], path[TH_PATH_LEN];
	uint8_t page[MV_PAGE_SIZE];
	struct mv_vm_config cfg;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;
	int fd;

	(void)state;
	th_scratch(dir, sizeof(dir), "attach");
	th_remove_at_teardown(dir);
	snprintf(path, sizeof(path), "%s/image", dir);
	fd = open(path, O_CREAT | O_EXCL | O_RDWR, 0600);
	assert_true(fd >= 0);
	th_remove_at_teardown(path);
	for (uint64_t p = 0; p < 16; p++) {
		th_fill(page, TAG, p, 0);
		assert_int_equal(write(fd, page, sizeof(page)), sizeof(page));
	}
	close(fd);
	th_host_create(&t, 64 * MiB, NULL);
	mv_vm_config_init(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "img");
	cfg.memsize_bytes = 16 * MV_PAGE_SIZE;
	cfg.image_path = path;
	assert_int_equal(mv_vm_create(t.host, &cfg, &vm), 0);
	m = mv_vm_mem(vm);
	assert_true(th_check(m + 2 * MV_PAGE_SIZE, TAG, 2, 0));
	assert_int_equal(mv_vm_discard(vm, 0, 16 * MV_PAGE_SIZE), 0);
	assert_int_equal(mv_vm_page_state(vm, 2), MV_PAGE_ZERO);
	assert_int_equal(mv_vm_page_state(vm, 9), MV_PAGE_ZERO);
	assert_true(th_is_zero(m + 2 * MV_PAGE_SIZE));
	assert_true(th_is_zero(m + 9 * MV_PAGE_SIZE));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
	unlink(path);
}

/*
 * A guest thread writes and verifies the pages of one half while the
 * other half is discarded again and again, a toucher writes and reads
 * words in that half, a reclaimer swaps pages of both halves out, and the
 * host samples (every second) and a thread scans for sharing at the
 * same time: the kept half loses nothing, a
 * discarded page reads either its last word or zeros, and the pmap agrees
 * with the mapping and the census with a walk at the end.
 */
struct race {
	mv_vm *vm;
	uint8_t *m;
	uint64_t npages;
	_Atomic bool stop;
	_Atomic uint64_t bad, rounds, touches;
};

static void *keeper_main(void *arg)
{
	struct race *r = arg;
	uint64_t half = r->npages / 2;

	for (uint64_t v = 1; !atomic_load(&r->stop); v++) {
		for (uint64_t p = 0; p < half; p++)
			th_fill(r->m + p * MV_PAGE_SIZE, TAG, p, v);
		for (uint64_t p = 0; p < half; p++)
			if (!th_check(r->m + p * MV_PAGE_SIZE, TAG, p, v))
				atomic_fetch_add(&r->bad, 1);
		atomic_fetch_add(&r->rounds, 1);
	}
	return NULL;
}

/* One word per page, so that a discard never lands in the middle of a
 * write: a page reads all zeros, or zeros and its word. */
static uint64_t word_of(uint64_t p)
{
	return 0x5a5a000000000000ull | p;
}

static bool word_page_ok(const uint8_t *g, uint64_t p)
{
	const volatile uint64_t *w = (const volatile uint64_t *)g;
	unsigned at = (unsigned)(p % (MV_PAGE_SIZE / 8));

	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i++)
		if (w[i] && (i != at || w[i] != word_of(p)))
			return false;
	return true;
}

static void *toucher_main(void *arg)
{
	struct race *r = arg;
	uint64_t half = r->npages / 2, rng = 77;

	while (!atomic_load(&r->stop)) {
		uint64_t p = half + th_xs(&rng) % half;
		uint8_t *g = r->m + p * MV_PAGE_SIZE;

		if (th_xs(&rng) & 1)
			((volatile uint64_t *)g)[p % (MV_PAGE_SIZE / 8)] =
				word_of(p);
		else if (!word_page_ok(g, p))
			atomic_fetch_add(&r->bad, 1);
		atomic_fetch_add(&r->touches, 1);
	}
	return NULL;
}

static void *sharer_main(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop))
		mv_vm_share_scan(r->vm, 64, NULL);
	return NULL;
}

static bool keeper_went_round(void *arg)
{
	struct race *r = arg;
	struct mv_vm_stats st;

	/* the swapper ran too (on this host only it takes pages out) */
	return atomic_load(&r->rounds) >= 20 &&
	       atomic_load(&r->touches) >= 20000 && !mv_vm_stats(r->vm, &st) &&
	       st.share_scanned_pages > 0 &&
	       st.swapout_pages + st.zip_pages > 0;
}

static void test_discards_race_faults_and_reclaim_without_loss(void **state)
{
	static struct race r;
	uint64_t len = 4 * MiB, half;
	_Atomic bool stop_swap = false;
	pthread_t keeper, toucher, swapper, sharer;
	struct th_swapper sw = { .nvms = 1,
				 .pause_ns = 200000,
				 .stop = &stop_swap };
	struct mv_settings s;
	struct th_host t;
	mv_vm *vm;
	int busy = 0;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.m = vmm_map(len);
	r.npages = len / MV_PAGE_SIZE;
	half = r.npages / 2;
	mv_settings_init(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.SamplePeriod", "1"), 0);
	assert_int_equal(mv_settings_set(&s, "Mem.ShareScanGHz", "0"), 0);
	assert_int_equal(mv_settings_set(&s, "Mem.AllocGuestLargePage", "0"),
			 0);
	th_host_create(&t, 64 * MiB, &s);
	assert_int_equal(attach(&t, "race", r.m, len, &vm), 0);
	r.vm = vm;
	sw.vms = &r.vm;
	assert_int_equal(pthread_create(&keeper, NULL, keeper_main, &r), 0);
	assert_int_equal(pthread_create(&toucher, NULL, toucher_main, &r), 0);
	assert_int_equal(pthread_create(&swapper, NULL, th_swapper_main, &sw),
			 0);
	assert_int_equal(pthread_create(&sharer, NULL, sharer_main, &r), 0);
	for (uint64_t i = 0, end = th_now_ms() + TH_WAIT_MS;
	     !keeper_went_round(&r) && th_now_ms() < end; i++) {
		uint64_t lo = half + (i * 37) % half, n = 1 + i % 48;

		if (lo + n > r.npages)
			n = r.npages - lo;
		busy += mv_vm_discard(vm, lo * MV_PAGE_SIZE,
				      n * MV_PAGE_SIZE) != 0;
	}
	atomic_store(&r.stop, true);
	atomic_store(&stop_swap, true);
	pthread_join(keeper, NULL);
	pthread_join(toucher, NULL);
	pthread_join(swapper, NULL);
	pthread_join(sharer, NULL);
	assert_true(keeper_went_round(&r));
	assert_int_equal(atomic_load(&r.bad), 0);
	assert_int_equal(busy, 0);
	assert_true(sw.swapped > 0);
	assert_true(stats_of(vm).discard_pages > 0);
	assert_int_equal(th_presence_mismatches(vm), 0);
	assert_int_equal(th_census_mismatches(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
	munmap(r.m, len);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_an_attached_vm_uses_the_callers_mapping),
		cmocka_unit_test(test_pages_written_before_attach_are_adopted),
		cmocka_unit_test(
			test_attach_refuses_memory_the_budget_cannot_hold),
		cmocka_unit_test(
			test_attach_refuses_what_is_not_private_anonymous_memory),
		cmocka_unit_test(
			test_an_attached_vm_over_its_budget_keeps_every_page),
		cmocka_unit_test(
			test_destroy_puts_every_page_back_into_the_mapping),
		cmocka_unit_test(
			test_discard_frees_frames_and_the_pages_read_zeros),
		cmocka_unit_test(
			test_discard_frees_swap_slots_cache_entries_and_shared_pages),
		cmocka_unit_test(
			test_a_discard_inside_a_large_page_frees_only_its_pages),
		cmocka_unit_test(test_discard_refuses_ranges_outside_the_vm),
		cmocka_unit_test(
			test_a_discarded_page_of_an_image_vm_reads_zeros),
		cmocka_unit_test(
			test_discards_race_faults_and_reclaim_without_loss),
	};

	return th_run_tests(tests);
}

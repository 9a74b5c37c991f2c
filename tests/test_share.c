// SPDX-License-Identifier: MIT
/*
 * test_share.c - transparent page sharing: equal pages become one frame
 * and read the same in every sharer; a write in one VM never shows in
 * another, whatever path it takes; zero pages need no frame; a hash
 * collision never merges different pages; salts are respected; VMs
 * restored from one image share from the first touch; failures lose
 * nothing.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"
#include "inject.h"
#include "internal.h"

#define MiB (1ull << 20)
#define COMMON 77 /* tag of content every VM holds */

static void quiet_host(struct th_host *t, unsigned salting)
{
	struct mv_settings s;
	char v[8];

	th_settings_quiet(&s); /* no sampler taking pages mid-test */
	snprintf(v, sizeof(v), "%u", salting);
	assert_int_equal(mv_settings_set(&s, "Mem.ShareForceSalting", v), 0);
	th_host_create(t, 64 * MiB, &s);
}

static mv_vm *salted_vm(struct th_host *t, const char *name, uint64_t size,
			const char *salt, const char *image)
{
	struct mv_vm_config cfg;
	mv_vm *vm;

	mv_vm_config_init(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	snprintf(cfg.salt, sizeof(cfg.salt), "%s", salt);
	cfg.memsize_bytes = size;
	cfg.image_path = image;
	assert_int_equal(mv_vm_create(t->host, &cfg, &vm), 0);
	return vm;
}

static uint64_t npages_of(mv_vm *vm)
{
	return mv_vm_memsize(vm) / MV_PAGE_SIZE;
}

static void fill_common(mv_vm *vm)
{
	uint8_t *m = mv_vm_mem(vm);

	for (uint64_t p = 0; p < npages_of(vm); p++)
		th_fill(m + p * MV_PAGE_SIZE, COMMON, p, 0);
}

/*
 * Whole passes over each VM until one merges nothing: hints first, merges
 * after.  The kernel's per-CPU LRU batches are emptied first, as pages
 * sitting in them refuse UFFDIO_MOVE (EBUSY) when reclaim runs beside.
 * And the VMs' faults are all served first: a fault thread wakes the guest
 * before it unlocks the run it filled, and on a busy CPU it may not unlock
 * it until after both passes, which would pass the locked pages by.
 */
static uint64_t scan_all(mv_vm **vms, unsigned n)
{
	uint64_t merged, total = 0, last = 1;

	for (unsigned i = 0; i < n; i++)
		th_quiesce(vms[i]);

	for (unsigned round = 0; round < 2 || (last && round < 8); round++) {
		last = 0;
		th_drain_lru();
		for (unsigned i = 0; i < n; i++) {
			assert_int_equal(mv_vm_share_scan(vms[i],
							  npages_of(vms[i]),
							  &merged),
					 0);
			total += merged;
			last += merged;
		}
	}
	return total;
}

static uint64_t in_state(mv_vm *vm, enum mv_page_state s)
{
	struct mv_vm_stats st;

	mv_vm_stats(vm, &st);
	return st.state_pages[s];
}

static uint64_t bad_common(mv_vm *vm)
{
	uint8_t *m = mv_vm_mem(vm);
	uint64_t bad = 0;

	for (uint64_t p = 0; p < npages_of(vm); p++)
		bad += !th_check(m + p * MV_PAGE_SIZE, COMMON, p, 0);
	return bad;
}

static void test_equal_pages_of_two_vms_share_one_frame(void **state)
{
	struct mv_host_stats hs;
	struct th_host t;
	mv_vm *vm[2];
	uint64_t n, consumed_before;

	(void)state;
	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "a", 1 * MiB);
	vm[1] = th_vm_create(&t, "b", 1 * MiB);
	n = npages_of(vm[0]);
	fill_common(vm[0]);
	fill_common(vm[1]);
	mv_host_stats(t.host, &hs);
	consumed_before = hs.consumed_pages;
	assert_int_equal(scan_all(vm, 2), 2 * n);
	assert_int_equal(in_state(vm[0], MV_PAGE_SHARED), n);
	assert_int_equal(in_state(vm[1], MV_PAGE_SHARED), n);
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.share_frames, n);
	assert_int_equal(hs.share_refs, 2 * n);
	assert_int_equal(hs.share_saved_pages, n);
	assert_int_equal(hs.consumed_pages, consumed_before - n);
	assert_int_equal(bad_common(vm[0]), 0);
	assert_int_equal(bad_common(vm[1]), 0);
	assert_int_equal(th_presence_mismatches(vm[0]), 0);
	assert_int_equal(th_presence_mismatches(vm[1]), 0);
	mv_vm_destroy(vm[0]);
	mv_vm_destroy(vm[1]);
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.share_frames, 0);
	assert_int_equal(hs.consumed_pages, 0);
	th_host_destroy(&t);
}

static void test_write_to_shared_page_stays_in_the_writer(void **state)
{
	struct mv_vm_stats st;
	struct mv_host_stats hs;
	struct th_host t;
	mv_vm *vm[3];
	uint8_t *a;
	uint64_t n;

	(void)state;
	quiet_host(&t, 0);
	for (unsigned i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "v%u", i);
		vm[i] = th_vm_create(&t, name, 1 * MiB);
		fill_common(vm[i]);
	}
	n = npages_of(vm[0]);
	scan_all(vm, 3);
	a = mv_vm_mem(vm[0]);
	for (uint64_t p = 0; p < n; p += 2)
		th_fill(a + p * MV_PAGE_SIZE, 1, p, 1);
	for (uint64_t p = 0; p < n; p++)
		assert_true(
			p % 2 ? th_check(a + p * MV_PAGE_SIZE, COMMON, p, 0) :
				th_check(a + p * MV_PAGE_SIZE, 1, p, 1));
	assert_int_equal(bad_common(vm[1]), 0);
	assert_int_equal(bad_common(vm[2]), 0);
	th_quiesce(vm[0]);
	mv_vm_stats(vm[0], &st);
	assert_int_equal(st.cow_breaks, n / 2);
	assert_int_equal(st.state_pages[MV_PAGE_PRIVATE], n / 2);
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.share_refs, 3 * n - n / 2);
	assert_int_equal(hs.share_frames, n);
	assert_int_equal(th_presence_mismatches(vm[0]), 0);
	for (unsigned i = 0; i < 3; i++)
		mv_vm_destroy(vm[i]);
	th_host_destroy(&t);
}

/*
 * A write to a shared page gives the writer a frame of its own: a page it
 * filled, which counts in its demand (mv__sample_demand_pages) as a fault
 * filling a page does, so that the scheduler's demand cap grows with it.
 * Not counted (before), a VM sharing most of its memory was capped below
 * the frames its writes took, and reclaimed first.
 */
static void
test_a_write_to_a_shared_page_counts_in_the_writers_demand(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm[2];
	uint64_t n, d0, cow0;
	uint8_t *a;

	(void)state;
	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "v0", 1 * MiB);
	vm[1] = th_vm_create(&t, "v1", 1 * MiB);
	fill_common(vm[0]);
	fill_common(vm[1]);
	/* two periods (the scheduler's work, which this host does not do):
	 * measured, and sampling holds some pages out of the scan */
	mv__sample_period(vm[0]);
	mv__sample_period(vm[0]);
	scan_all(vm, 2);
	n = npages_of(vm[0]);
	mv_vm_stats(vm[0], &st);
	assert_true(st.state_pages[MV_PAGE_SHARED] > n / 4);
	cow0 = st.cow_breaks;
	d0 = mv__sample_demand_pages(vm[0]);
	assert_true(d0 != UINT64_MAX);
	a = mv_vm_mem(vm[0]);
	for (uint64_t p = 0; p < n; p += 2)
		th_fill(a + p * MV_PAGE_SIZE, 1, p, 1);
	th_quiesce(vm[0]);
	mv_vm_stats(vm[0], &st);
	assert_true(st.cow_breaks > cow0);
	assert_int_equal(mv__sample_demand_pages(vm[0]) - d0,
			 st.cow_breaks - cow0);
	for (uint64_t p = 0; p < n; p++)
		assert_true(
			p % 2 ? th_check(a + p * MV_PAGE_SIZE, COMMON, p, 0) :
				th_check(a + p * MV_PAGE_SIZE, 1, p, 1));
	assert_int_equal(bad_common(vm[1]), 0);
	mv_vm_destroy(vm[0]);
	mv_vm_destroy(vm[1]);
	th_host_destroy(&t);
}

/* The VMs' SHRDSVD added up, and the host's figure. */
static void saved_sums(struct th_host *t, mv_vm **vm, unsigned n, uint64_t *vms,
		       uint64_t *host)
{
	struct mv_host_stats hs;
	struct mv_vm_stats st;

	*vms = 0;
	for (unsigned i = 0; i < n; i++) {
		if (!vm[i])
			continue;
		mv_vm_stats(vm[i], &st);
		*vms += st.shrdsvd_pages;
	}
	mv_host_stats(t->host, &hs);
	*host = hs.share_saved_pages;
}

/* A whole pass over every VM (two passes' worth: one starts anywhere). */
static void scan_pass(mv_vm **vm, unsigned n)
{
	th_drain_lru();
	for (unsigned i = 0; i < n; i++)
		if (vm[i])
			assert_int_equal(mv_vm_share_scan(vm[i],
							  2 * npages_of(vm[i]),
							  NULL),
					 0);
}

/*
 * Each VM's SHRDSVD is counted as pages change (no walk), and the VMs'
 * figures add up to the host's (refs - frames + ZERO pages): after
 * merging, after copy-on-write breaks in two VMs once the scanner has
 * been by, and after a VM is destroyed.
 */
static void test_the_vms_saved_pages_add_up_to_the_hosts(void **state)
{
	struct th_host t;
	uint64_t n, vms, host, nz;
	mv_vm *vm[3];
	uint8_t *m;

	(void)state;
	quiet_host(&t, 0);
	for (unsigned i = 0; i < 3; i++) {
		char name[8];

		snprintf(name, sizeof(name), "v%u", i);
		vm[i] = th_vm_create(&t, name, 1 * MiB);
		fill_common(vm[i]);
		m = mv_vm_mem(vm[i]);
		for (uint64_t p = 0; p < npages_of(vm[i]); p += 8)
			memset(m + p * MV_PAGE_SIZE, 0, MV_PAGE_SIZE);
	}
	n = npages_of(vm[0]);
	nz = n - n / 8; /* pages that are not zero, in each VM */
	scan_all(vm, 3);
	saved_sums(&t, vm, 3, &vms, &host);
	assert_int_equal(host, 2 * nz + 3 * (n / 8));
	assert_int_equal(vms, host);

	/* the last VM scanned took every frame last; both it and the first
	 * write half their copies */
	for (unsigned i = 0; i < 3; i += 2) {
		m = mv_vm_mem(vm[i]);
		for (uint64_t p = 1; p < n; p += 2)
			th_fill(m + p * MV_PAGE_SIZE, 100 + i, p, 1);
		th_quiesce(vm[i]);
	}
	scan_pass(vm, 3);
	saved_sums(&t, vm, 3, &vms, &host);
	/* odd pages shared by v1 alone now: they save nothing */
	assert_int_equal(host, 2 * (nz - n / 2) + 3 * (n / 8));
	assert_int_equal(vms, host);

	mv_vm_destroy(vm[0]);
	vm[0] = NULL;
	saved_sums(&t, vm, 3, &vms, &host);
	assert_int_equal(host, (nz - n / 2) + 2 * (n / 8));
	assert_int_equal(vms, host);
	scan_pass(vm, 3);
	saved_sums(&t, vm, 3, &vms, &host);
	assert_int_equal(vms, host);
	for (unsigned i = 1; i < 3; i++)
		mv_vm_destroy(vm[i]);
	th_host_destroy(&t);
}

/* Bit 57 of /proc/self/pagemap: the page is userfaultfd write-protected. */
static bool write_protected(const void *page)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &e, sizeof(e),
			       (off_t)((uintptr_t)page / MV_PAGE_SIZE) * 8),
			 sizeof(e));
	close(fd);
	return e >> 57 & 1;
}

/*
 * The scanner write-protects a span of candidates with one call, and the
 * pages between them with it: they stay PRIVATE, and a guest write to one
 * faults, is let through and lands, even when lifting the protection
 * fails the first time.
 */
static void test_pages_protected_beside_candidates_stay_writable(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	uint64_t n, protected = 0;
	uint8_t *m[2];
	mv_vm *vm[2];

	(void)state;
	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "a", 1 * MiB);
	vm[1] = th_vm_create(&t, "b", 1 * MiB);
	n = npages_of(vm[0]);
	for (unsigned v = 0; v < 2; v++) {
		m[v] = mv_vm_mem(vm[v]);
		for (uint64_t p = 0; p < n; p++)
			th_fill(m[v] + p * MV_PAGE_SIZE, p % 2 ? 1 + v : COMMON,
				p, 0);
	}
	scan_all(vm, 2);
	for (unsigned v = 0; v < 2; v++) {
		assert_int_equal(in_state(vm[v], MV_PAGE_SHARED), n / 2);
		for (uint64_t p = 1; p < n; p += 2)
		protected += write_protected(m[v] + p * MV_PAGE_SIZE);
	}
	assert_true(protected > 0);
	/* the first lift fails: the writer must fault again, not hang */
	mv__inject_fail(MV_INJ_UFFD_WP, 1, 1, EAGAIN);
	for (unsigned v = 0; v < 2; v++)
		for (uint64_t p = 1; p < n; p += 2)
			th_fill(m[v] + p * MV_PAGE_SIZE, 1 + v, p, 1);
	assert_int_equal(mv__inject_hits(MV_INJ_UFFD_WP), 1);
	mv__inject_reset();
	for (unsigned v = 0; v < 2; v++) {
		for (uint64_t p = 0; p < n; p++)
			assert_true(p % 2 ? th_check(m[v] + p * MV_PAGE_SIZE,
						     1 + v, p, 1) :
					    th_check(m[v] + p * MV_PAGE_SIZE,
						     COMMON, p, 0));
		th_quiesce(vm[v]);
		mv_vm_stats(vm[v], &st);
		assert_int_equal(st.state_pages[MV_PAGE_PRIVATE], n / 2);
		assert_int_equal(st.cow_breaks, 0);
		assert_int_equal(th_presence_mismatches(vm[v]), 0);
	}
	mv_vm_destroy(vm[0]);
	mv_vm_destroy(vm[1]);
	th_host_destroy(&t);
}

static void test_last_sharer_writing_frees_the_frame(void **state)
{
	struct mv_host_stats hs;
	struct th_host t;
	mv_vm *vm[2];
	uint8_t *m;

	(void)state;
	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "a", 256 * 1024);
	vm[1] = th_vm_create(&t, "b", 256 * 1024);
	fill_common(vm[0]);
	fill_common(vm[1]);
	scan_all(vm, 2);
	for (unsigned i = 0; i < 2; i++) {
		m = mv_vm_mem(vm[i]);
		for (uint64_t p = 0; p < npages_of(vm[i]); p++)
			th_fill(m + p * MV_PAGE_SIZE, i + 10, p, 1);
	}
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.share_frames, 0);
	assert_int_equal(hs.share_refs, 0);
	assert_int_equal(hs.consumed_pages, 2 * npages_of(vm[0]));
	assert_int_equal(th_bad_pages(vm[0], 10, false), npages_of(vm[0]));
	mv_vm_destroy(vm[0]);
	mv_vm_destroy(vm[1]);
	th_host_destroy(&t);
}

/*
 * A read of a ZERO page is answered with the kernel's zero page: the page
 * stays ZERO and takes no frame (a read-mostly guest would otherwise undo
 * the scanner's work as fast as it is done); its first write gives it a
 * frame and the written bytes, and its neighbours stay ZERO.
 */
static void test_a_read_of_a_zero_page_takes_no_frame(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	volatile uint8_t *m;
	mv_vm *vm;
	uint64_t n, consumed;

	(void)state;
	quiet_host(&t, 0);
	vm = th_vm_create(&t, "z", 64 * 1024);
	n = npages_of(vm);
	m = mv_vm_mem(vm);
	for (uint64_t p = 0; p < n; p++)
		m[p * MV_PAGE_SIZE] = 1;
	for (uint64_t p = 0; p < n; p++)
		m[p * MV_PAGE_SIZE] = 0;
	th_quiesce(vm);
	scan_all(&vm, 1);
	assert_int_equal(in_state(vm, MV_PAGE_ZERO), n);
	mv_vm_stats(vm, &st);
	consumed = st.consumed_pages;
	/* one read maps its fault-around window (the whole 16-page VM) */
	assert_true(th_is_zero((const void *)m));
	th_quiesce(vm);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.zero_maps, n);
	for (uint64_t p = 0; p < n; p++)
		assert_true(th_is_zero((const void *)(m + p * MV_PAGE_SIZE)));
	th_quiesce(vm);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.consumed_pages, consumed);
	assert_int_equal(st.zero_maps, n);
	assert_int_equal(in_state(vm, MV_PAGE_ZERO), n);
	assert_int_equal(th_presence_mismatches(vm), 0);
	/* a write to a mapped zero page faults and gets its own frame */
	m[3 * MV_PAGE_SIZE + 5] = 42;
	th_quiesce(vm);
	assert_int_equal(m[3 * MV_PAGE_SIZE + 5], 42);
	assert_int_equal(mv_vm_page_state(vm, 3), MV_PAGE_PRIVATE);
	assert_int_equal(in_state(vm, MV_PAGE_ZERO), n - 1);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.consumed_pages, consumed + 1);
	assert_true(th_is_zero((const void *)(m + 4 * MV_PAGE_SIZE)));
	assert_int_equal(th_presence_mismatches(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/* When the kernel refuses the zero page, the read is served as before,
 * with a frame of zeros. */
static void test_a_zero_page_read_the_kernel_refuses_gets_a_frame(void **state)
{
	struct th_host t;
	volatile uint8_t *m;
	mv_vm *vm;

	(void)state;
	quiet_host(&t, 0);
	vm = th_vm_create(&t, "z", 64 * 1024);
	m = mv_vm_mem(vm);
	m[0] = 1;
	m[0] = 0;
	th_quiesce(vm);
	scan_all(&vm, 1);
	assert_int_equal(mv_vm_page_state(vm, 0), MV_PAGE_ZERO);
	mv__inject_fail(MV_INJ_UFFD_ZEROPAGE, 1, 0, ENOMEM);
	assert_true(th_is_zero((const void *)m));
	th_quiesce(vm);
	assert_true(mv__inject_hits(MV_INJ_UFFD_ZEROPAGE) > 0);
	mv__inject_reset();
	assert_int_equal(mv_vm_page_state(vm, 0), MV_PAGE_PRIVATE);
	assert_int_equal(th_presence_mismatches(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_zero_pages_become_zero_without_a_frame(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;
	uint8_t *m;
	uint64_t n;

	(void)state;
	quiet_host(&t, 2);
	vm = th_vm_create(&t, "z", 1 * MiB);
	n = npages_of(vm);
	m = mv_vm_mem(vm);
	for (uint64_t p = 0; p < n; p++) {
		if (p % 4)
			memset(m + p * MV_PAGE_SIZE, 0, MV_PAGE_SIZE);
		else
			th_fill(m + p * MV_PAGE_SIZE, 3, p, 0);
	}
	/* one pass only: every page must be published PRIVATE before it */
	th_quiesce(vm);
	assert_int_equal(mv_vm_share_scan(vm, n, NULL), 0);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.zero_pages, n - n / 4);
	assert_int_equal(st.consumed_pages, n / 4);
	assert_int_equal(st.shrdsvd_pages, n - n / 4);
	for (uint64_t p = 0; p < n; p++)
		assert_true(p % 4 ? th_is_zero(m + p * MV_PAGE_SIZE) :
				    th_check(m + p * MV_PAGE_SIZE, 3, p, 0));
	th_fill(m + MV_PAGE_SIZE, 4, 1, 0);
	assert_true(th_check(m + MV_PAGE_SIZE, 4, 1, 0));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_hash_collision_never_merges_different_pages(void **state)
{
	struct mv_host_stats hs;
	struct th_host t;
	mv_vm *vm[2];
	uint8_t *m;

	(void)state;
	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "a", 256 * 1024);
	vm[1] = th_vm_create(&t, "b", 256 * 1024);
	th_fill_vm(vm[0], 1, false);
	th_fill_vm(vm[1], 2, false);
	mv__inject_hash_mask(0); /* every page hashes to 0 */
	scan_all(vm, 2);
	mv_host_stats(t.host, &hs);
	assert_true(hs.share_collisions > 0);
	assert_int_equal(hs.share_frames, 0);
	assert_int_equal(in_state(vm[0], MV_PAGE_PRIVATE), npages_of(vm[0]));
	assert_int_equal(th_bad_pages(vm[0], 1, false), 0);
	assert_int_equal(th_bad_pages(vm[1], 2, false), 0);
	/* equal pages still merge when the hash says nothing */
	m = mv_vm_mem(vm[1]);
	memcpy(m, mv_vm_mem(vm[0]), MV_PAGE_SIZE);
	for (unsigned i = 0; i < 8; i++) {
		mv_vm_share_scan(vm[0], npages_of(vm[0]), NULL);
		mv_vm_share_scan(vm[1], npages_of(vm[1]), NULL);
	}
	mv__inject_reset();
	assert_int_equal(th_presence_mismatches(vm[0]), 0);
	assert_int_equal(th_bad_pages(vm[0], 1, false), 0);
	assert_true(th_check(m, 1, 0, 0));
	mv_vm_destroy(vm[0]);
	mv_vm_destroy(vm[1]);
	th_host_destroy(&t);
}

static void test_salts_decide_who_shares(void **state)
{
	struct th_host t;
	mv_vm *vm[4];
	uint8_t *m;

	(void)state;
	quiet_host(&t, 2);
	vm[0] = salted_vm(&t, "x1", 256 * 1024, "x", NULL);
	vm[1] = salted_vm(&t, "y", 256 * 1024, "y", NULL);
	vm[2] = salted_vm(&t, "x2", 256 * 1024, "x", NULL);
	vm[3] = salted_vm(&t, "none", 256 * 1024, "", NULL);
	for (unsigned i = 0; i < 3; i++)
		fill_common(vm[i]);
	/* an unsalted VM shares only with itself: two equal halves */
	m = mv_vm_mem(vm[3]);
	for (uint64_t p = 0; p < npages_of(vm[3]); p++)
		th_fill(m + p * MV_PAGE_SIZE, COMMON,
			p % (npages_of(vm[3]) / 2), 0);
	scan_all(vm, 4);
	assert_int_equal(in_state(vm[0], MV_PAGE_SHARED), npages_of(vm[0]));
	assert_int_equal(in_state(vm[2], MV_PAGE_SHARED), npages_of(vm[2]));
	assert_int_equal(in_state(vm[1], MV_PAGE_SHARED), 0);
	assert_int_equal(in_state(vm[3], MV_PAGE_SHARED), npages_of(vm[3]));
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(bad_common(vm[i]), 0);
	for (uint64_t p = 0; p < npages_of(vm[3]); p++)
		assert_true(th_check(m + p * MV_PAGE_SIZE, COMMON,
				     p % (npages_of(vm[3]) / 2), 0));
	for (unsigned i = 0; i < 4; i++)
		mv_vm_destroy(vm[i]);
	th_host_destroy(&t);
}

static void test_swap_out_leaves_shared_pages_shared(void **state)
{
	struct th_host t;
	mv_vm *vm[2];
	uint64_t done = 0;
	uint8_t *a;

	(void)state;
	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "a", 1 * MiB);
	vm[1] = th_vm_create(&t, "b", 1 * MiB);
	fill_common(vm[0]);
	fill_common(vm[1]);
	scan_all(vm, 2);
	a = mv_vm_mem(vm[0]);
	th_fill(a, 5, 0, 0); /* one private page to swap */
	assert_int_equal(mv_vm_swap_out(vm[0], npages_of(vm[0]), &done), 0);
	assert_true(done <= 1);
	assert_int_equal(mv_vm_swap_out_page(vm[1], 3) < 0 ||
				 mv_vm_page_state(vm[1], 3) == MV_PAGE_SHARED,
			 1);
	for (uint64_t p = 1; p < npages_of(vm[0]); p += 3)
		th_fill(a + p * MV_PAGE_SIZE, 6, p, 0);
	assert_true(th_check(a, 5, 0, 0));
	assert_int_equal(bad_common(vm[1]), 0);
	assert_int_equal(th_presence_mismatches(vm[0]), 0);
	assert_int_equal(th_presence_mismatches(vm[1]), 0);
	mv_vm_destroy(vm[0]);
	mv_vm_destroy(vm[1]);
	th_host_destroy(&t);
}

/*
 * Two VMs of equal pages are scanned while op fails with err: nothing may
 * be shared, lost or left unwritable, and a scan afterwards shares it all.
 */
static void failed_merges_lose_nothing(enum mv__inject_op op, int err)
{
	struct mv_host_stats hs;
	struct th_host t;
	mv_vm *vm[2];

	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "a", 256 * 1024);
	vm[1] = th_vm_create(&t, "b", 256 * 1024);
	fill_common(vm[0]);
	fill_common(vm[1]);
	mv__inject_fail(op, 1, 0, err);
	scan_all(vm, 2);
	assert_true(mv__inject_hits(op) > 0);
	mv__inject_reset();
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.share_frames, 0);
	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(in_state(vm[i], MV_PAGE_PRIVATE),
				 npages_of(vm[i]));
		assert_int_equal(bad_common(vm[i]), 0);
		assert_int_equal(th_presence_mismatches(vm[i]), 0);
	}
	/* writable again: a write goes through (or faults and is served) */
	th_fill(mv_vm_mem(vm[0]), 7, 0, 1);
	assert_true(th_check(mv_vm_mem(vm[0]), 7, 0, 1));
	th_fill(mv_vm_mem(vm[0]), COMMON, 0, 0);
	scan_all(vm, 2);
	assert_int_equal(in_state(vm[1], MV_PAGE_SHARED), npages_of(vm[1]));
	assert_int_equal(bad_common(vm[1]), 0);
	mv_vm_destroy(vm[0]);
	mv_vm_destroy(vm[1]);
	th_host_destroy(&t);
}

static void test_write_protect_failure_loses_nothing(void **state)
{
	(void)state;
	failed_merges_lose_nothing(MV_INJ_UFFD_WP, EAGAIN);
}

/* The pages were emptied before the mapping: they come back from the
 * frames. */
static void test_refused_frame_mapping_loses_nothing(void **state)
{
	(void)state;
	failed_merges_lose_nothing(MV_INJ_MMAP, ENOMEM);
}

static void test_pool_write_failure_loses_nothing(void **state)
{
	(void)state;
	failed_merges_lose_nothing(MV_INJ_PWRITE, ENOSPC);
}

/*
 * Pages 0, 1 and 2 of a one-window VM hold the same bytes (the first pair
 * and a third copy, its peer), the others their own; one pass over it,
 * with every write to the pool failing if fail.
 */
static void three_copies_in_one_pass(bool fail)
{
	struct mv_host_stats hs;
	struct th_host t;
	uint64_t merged;
	uint8_t *m;
	mv_vm *vm;

	quiet_host(&t, 0);
	vm = th_vm_create(&t, "a", 1 * MiB);
	m = mv_vm_mem(vm);
	for (uint64_t p = 0; p < npages_of(vm); p++)
		th_fill(m + p * MV_PAGE_SIZE, p < 3 ? 5 : COMMON, p < 3 ? 0 : p,
			0);
	th_drain_lru();
	if (fail)
		mv__inject_fail(MV_INJ_PWRITE, 1, 0, ENOSPC);
	assert_int_equal(mv_vm_share_scan(vm, npages_of(vm), &merged), 0);
	if (fail)
		assert_true(mv__inject_hits(MV_INJ_PWRITE) > 0);
	mv__inject_reset();
	mv_host_stats(t.host, &hs);
	assert_int_equal(merged, !fail ? 3 : 0);
	assert_int_equal(hs.share_frames, !fail ? 1 : 0);
	assert_int_equal(hs.share_refs, !fail ? 3 : 0);
	assert_int_equal(in_state(vm, MV_PAGE_SHARED), merged);
	for (uint64_t p = 0; p < npages_of(vm); p++)
		assert_true(th_check(m + p * MV_PAGE_SIZE, p < 3 ? 5 : COMMON,
				     p < 3 ? 0 : p, 0));
	assert_int_equal(th_presence_mismatches(vm), 0);
	mv_vm_destroy(vm);
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.share_frames, 0);
	assert_int_equal(hs.consumed_pages, 0);
	th_host_destroy(&t);
}

static void test_three_copies_in_one_window_share_in_one_pass(void **state)
{
	(void)state;
	three_copies_in_one_pass(false);
}

static void test_a_pair_that_fails_keeps_its_peer_intact(void **state)
{
	(void)state;
	three_copies_in_one_pass(true);
}

static void test_balloon_takes_a_shared_page_from_one_sharer(void **state)
{
	struct mv_balloon_msg msg = { .type = MV_BALLOON_MSG_INFLATE,
				      .num = 2 };
	struct mv_balloon_reply rep;
	struct mv_balloon_chan *ch;
	struct mv_host_stats hs;
	struct th_host t;
	mv_vm *vm[2];
	uint8_t *a;

	(void)state;
	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "a", 256 * 1024);
	vm[1] = th_vm_create(&t, "b", 256 * 1024);
	fill_common(vm[0]);
	fill_common(vm[1]);
	scan_all(vm, 2);
	assert_int_equal(mv_vm_page_state(vm[0], 4), MV_PAGE_SHARED);
	assert_int_equal(mv_vm_balloon_set_target(vm[0], 2 * MV_PAGE_SIZE), 0);
	assert_int_equal(mv_balloon_open(vm[0], &ch), 0);
	msg.u.pfns[0] = 4;
	msg.u.pfns[1] = 5;
	assert_int_equal(mv_balloon_send(ch, &msg, &rep), 0);
	assert_int_equal(rep.accepted, 2);
	assert_int_equal(mv_vm_page_state(vm[0], 4), MV_PAGE_BALLOONED);
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.share_refs, 2 * npages_of(vm[0]) - 2);
	assert_int_equal(bad_common(vm[1]), 0);
	/* a guest touching its ballooned page reads zeros, never the frame */
	a = mv_vm_mem(vm[0]);
	assert_true(th_is_zero(a + 4 * MV_PAGE_SIZE));
	assert_int_equal(th_presence_mismatches(vm[0]), 0);
	mv_balloon_close(ch);
	mv_vm_destroy(vm[0]);
	mv_vm_destroy(vm[1]);
	th_host_destroy(&t);
}

static long maps_in_use(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int ch;

	assert_non_null(f);
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

/* Pages of b are a's, shuffled, so that no two shared neighbours merge. */
static void fill_scattered(mv_vm *a, mv_vm *b)
{
	uint8_t *ma = mv_vm_mem(a), *mb = mv_vm_mem(b);
	uint64_t n = npages_of(a);

	fill_common(a);
	for (uint64_t p = 0; p < n; p++)
		th_fill(mb + p * MV_PAGE_SIZE, COMMON, (p * 37 + 11) % n, 0);
	(void)ma;
}

static void test_sharing_stops_short_of_max_map_count(void **state)
{
	struct mv_host_stats hs;
	struct th_host t;
	mv_vm *vm[3];
	long before;

	(void)state;
	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "a", 1 * MiB);
	vm[1] = th_vm_create(&t, "b", 1 * MiB);
	fill_scattered(vm[0], vm[1]);
	/* room for 100 more mappings beyond the engine's slack of 1024; the
	 * limit is read again when a VM is created */
	mv__inject_max_map_count(maps_in_use() + 64 + 1024 + 100);
	vm[2] = th_vm_create(&t, "c", 64 * 1024);
	before = maps_in_use();
	scan_all(vm, 2);
	mv_host_stats(t.host, &hs);
	assert_true(hs.share_refs > 0);
	assert_true(hs.share_refs < 2 * npages_of(vm[0]));
	assert_true(maps_in_use() - before <= 64 + 100);
	assert_non_null(strstr(mv_host_errmsg(t.host), "vm.max_map_count"));
	assert_int_equal(bad_common(vm[0]), 0);
	for (uint64_t p = 0; p < npages_of(vm[1]); p++)
		assert_true(
			th_check((uint8_t *)mv_vm_mem(vm[1]) + p * MV_PAGE_SIZE,
				 COMMON, (p * 37 + 11) % npages_of(vm[1]), 0));
	for (unsigned i = 0; i < 3; i++)
		mv_vm_destroy(vm[i]);
	th_host_destroy(&t);
	mv__inject_reset();
}

/*
 * At the limit the scanner keeps going without reading /proc/self/maps
 * (tens of thousands of lines, ~40 ms) for its windows: once that read
 * was made for every page while share.lock was held, and every
 * copy-on-write fault and statistics call waited behind it.  Only the
 * scanner thread's recount, every 2 s, may read it.
 */
static void test_scanning_at_max_map_count_never_rereads_the_maps(void **state)
{
	struct timespec t0, t1;
	struct mv_host_stats hs;
	struct th_host t;
	unsigned long reads;
	double seconds;
	mv_vm *vm[3];

	(void)state;
	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "a", 1 * MiB);
	vm[1] = th_vm_create(&t, "b", 1 * MiB);
	fill_scattered(vm[0], vm[1]);
	mv__inject_max_map_count(maps_in_use() + 64 + 1024 + 20);
	vm[2] = th_vm_create(&t, "c", 64 * 1024);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	reads = mv__map_count_reads();
	for (unsigned pass = 0; pass < 4; pass++)
		scan_all(vm, 2);
	reads = mv__map_count_reads() - reads;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	seconds = (double)(t1.tv_sec - t0.tv_sec) +
		  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.share_maps_full, 1);
	assert_true(hs.share_refs > 0);
	/* the background recount only: one per 2 s, and one to spare */
	assert_true(reads <= (unsigned long)(seconds / 2) + 2);
	assert_int_equal(bad_common(vm[0]), 0);
	for (unsigned i = 0; i < 3; i++)
		mv_vm_destroy(vm[i]);
	th_host_destroy(&t);
	mv__inject_reset();
}

static void test_write_at_max_map_count_copies_in_place(void **state)
{
	struct mv_balloon_msg msg = { .type = MV_BALLOON_MSG_INFLATE,
				      .num = 1 };
	struct mv_balloon_reply rep;
	struct mv_balloon_chan *ch;
	struct mv_vm_stats st;
	struct th_host t;
	uint64_t done = 0;
	mv_vm *vm[2];
	uint8_t *a;

	(void)state;
	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "a", 256 * 1024);
	vm[1] = th_vm_create(&t, "b", 256 * 1024);
	fill_common(vm[0]);
	fill_common(vm[1]);
	scan_all(vm, 2);
	/* no mapping can be made: mremap fails as at vm.max_map_count */
	mv__inject_fail(MV_INJ_MREMAP, 1, 0, ENOMEM);
	a = mv_vm_mem(vm[0]);
	for (uint64_t p = 0; p < npages_of(vm[0]); p++)
		th_fill(a + p * MV_PAGE_SIZE, 8, p, 1);
	mv__inject_reset();
	assert_int_equal(th_bad_pages(vm[0], 8, false), npages_of(vm[0]));
	for (uint64_t p = 0; p < npages_of(vm[0]); p++)
		assert_true(th_check(a + p * MV_PAGE_SIZE, 8, p, 1));
	assert_int_equal(bad_common(vm[1]), 0);
	th_quiesce(vm[0]);
	mv_vm_stats(vm[0], &st);
	assert_int_equal(st.cow_breaks, npages_of(vm[0]));
	assert_int_equal(st.state_pages[MV_PAGE_PRIVATE], npages_of(vm[0]));
	assert_non_null(strstr(mv_host_errmsg(t.host), "vm.max_map_count"));
	/* reclaim passes such copies by; the balloon refuses them */
	mv_vm_swap_out(vm[0], npages_of(vm[0]), &done);
	assert_int_equal(done, 0);
	for (uint64_t p = 0; p < npages_of(vm[0]); p++)
		assert_true(th_check(a + p * MV_PAGE_SIZE, 8, p, 1));
	assert_int_equal(mv_vm_balloon_set_target(vm[0], MV_PAGE_SIZE), 0);
	assert_int_equal(mv_balloon_open(vm[0], &ch), 0);
	msg.u.pfns[0] = 3;
	assert_int_equal(mv_balloon_send(ch, &msg, &rep), 0);
	assert_int_equal(rep.rejected, 1);
	assert_true(th_check(a + 3 * MV_PAGE_SIZE, 8, 3, 1));
	assert_int_equal(bad_common(vm[1]), 0);
	assert_int_equal(th_presence_mismatches(vm[0]), 0);
	mv_balloon_close(ch);
	mv_vm_destroy(vm[0]);
	mv_vm_destroy(vm[1]);
	th_host_destroy(&t);
}

struct writer {
	mv_vm *vm;
	uint64_t tag;
};

static void *write_all(void *arg)
{
	struct writer *w = arg;
	uint8_t *m = mv_vm_mem(w->vm);

	for (uint64_t p = 0; p < npages_of(w->vm); p++)
		th_fill(m + p * MV_PAGE_SIZE, w->tag, p, 1);
	return NULL;
}

/*
 * At vm.max_map_count every sharer of a frame writes its copy at once, so
 * the last copy frees the frame while the others' copies are made in
 * place.  Each page keeps what its VM wrote; none is lost when the frame
 * goes (a copy in place must be made before the frame's last reference
 * is dropped, or freeing the frame takes the page with it).
 */
static void
test_writes_of_every_sharer_at_max_map_count_lose_nothing(void **state)
{
	struct writer w[2];
	struct mv_host_stats hs;
	struct th_host t;
	pthread_t th[2];
	mv_vm *vm[3];

	(void)state;
	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "a", 1 * MiB);
	vm[1] = th_vm_create(&t, "b", 1 * MiB);
	fill_common(vm[0]);
	fill_common(vm[1]);
	scan_all(vm, 2);
	assert_int_equal(in_state(vm[1], MV_PAGE_SHARED), npages_of(vm[1]));
	/* room for a few mappings only; read again when a VM is created */
	mv__inject_max_map_count(maps_in_use() + 64 + 1024 + 8);
	vm[2] = th_vm_create(&t, "c", 64 * 1024);
	/* and the kernel refuses mappings, as it does at the real limit */
	mv__inject_fail(MV_INJ_MREMAP, 1, 0, ENOMEM);
	for (unsigned i = 0; i < 2; i++) {
		w[i] = (struct writer){ vm[i], 8 + i };
		assert_int_equal(pthread_create(&th[i], NULL, write_all, &w[i]),
				 0);
	}
	for (unsigned i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (unsigned i = 0; i < 2; i++) {
		th_quiesce(vm[i]);
		assert_int_equal(th_presence_mismatches(vm[i]), 0);
		for (uint64_t p = 0; p < npages_of(vm[i]); p++)
			assert_true(th_check((uint8_t *)mv_vm_mem(vm[i]) +
						     p * MV_PAGE_SIZE,
					     8 + i, p, 1));
		assert_int_equal(in_state(vm[i], MV_PAGE_PRIVATE),
				 npages_of(vm[i]));
	}
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.lost_pages, 0);
	assert_int_equal(hs.share_frames, 0); /* every frame was freed */
	assert_true(hs.share_kept_in_place > 0);
	for (unsigned i = 0; i < 3; i++)
		mv_vm_destroy(vm[i]);
	th_host_destroy(&t);
	mv__inject_reset();
}

/*
 * A copy made in place lives in a mapping of its old pool frame.  Once
 * that frame is freed and reused for other VMs' pages, emptying the copy
 * (as the scanner does with a zero page) would show those VMs' bytes:
 * the scanner must pass such copies by.
 */
static void test_a_copy_in_place_never_shows_a_reused_frame(void **state)
{
	struct th_host t;
	mv_vm *vm[4];
	uint8_t *a, *b;
	uint64_t n;

	(void)state;
	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "a", 64 * 1024);
	vm[1] = th_vm_create(&t, "b", 64 * 1024);
	n = npages_of(vm[0]);
	fill_common(vm[0]);
	fill_common(vm[1]);
	scan_all(vm, 2);
	assert_int_equal(in_state(vm[0], MV_PAGE_SHARED), n);
	/* no mapping can be made: every copy on write is made in place */
	mv__inject_fail(MV_INJ_MREMAP, 1, 0, ENOMEM);
	a = mv_vm_mem(vm[0]);
	b = mv_vm_mem(vm[1]);
	for (uint64_t p = 0; p < n; p++) {
		memset(a + p * MV_PAGE_SIZE, 0, MV_PAGE_SIZE);
		th_fill(b + p * MV_PAGE_SIZE, 9, p, 1);
	}
	mv__inject_reset();
	/* the frames are free now; two other VMs share theirs in them */
	vm[2] = th_vm_create(&t, "c", 64 * 1024);
	vm[3] = th_vm_create(&t, "d", 64 * 1024);
	th_fill_vm(vm[2], 5, false);
	th_fill_vm(vm[3], 5, false);
	scan_all(vm + 2, 2);
	assert_int_equal(in_state(vm[3], MV_PAGE_SHARED), n);
	/* a's zero pages are scanned again */
	scan_all(vm, 1);
	for (uint64_t p = 0; p < n; p++) {
		assert_true(th_is_zero(a + p * MV_PAGE_SIZE));
		assert_true(th_check(b + p * MV_PAGE_SIZE, 9, p, 1));
	}
	assert_int_equal(th_bad_pages(vm[2], 5, false), 0);
	for (unsigned i = 0; i < 4; i++) {
		th_quiesce(vm[i]);
		assert_int_equal(th_presence_mismatches(vm[i]), 0);
		mv_vm_destroy(vm[i]);
	}
	th_host_destroy(&t);
}

/*
 * When a merged page's frame can be neither mapped nor copied back (every
 * retry failed), the page is left empty and SHARED, holding its frame, and
 * its next touch fills it with its bytes: nothing waits without bound and
 * nothing is lost.
 */
static void test_a_page_that_cannot_be_put_back_is_filled_on_touch(void **state)
{
	struct mv_host_stats hs;
	struct th_host t;
	mv_vm *vm[2];
	uint64_t n;

	(void)state;
	quiet_host(&t, 0);
	vm[0] = th_vm_create(&t, "a", 4 * MV_PAGE_SIZE);
	vm[1] = th_vm_create(&t, "b", 4 * MV_PAGE_SIZE);
	n = npages_of(vm[0]);
	fill_common(vm[0]);
	fill_common(vm[1]);
	th_quiesce(vm[0]);
	th_quiesce(vm[1]);
	/* no frame can be mapped, and no page put back */
	mv__inject_fail(MV_INJ_MMAP, 1, 0, ENOMEM);
	mv__inject_fail(MV_INJ_UFFD_COPY, 1, 0, ENOMEM);
	scan_all(vm, 2);
	assert_true(mv__inject_hits(MV_INJ_UFFD_COPY) > 0);
	mv__inject_reset();
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.share_lazy_fills, 2 * n);
	assert_true(hs.share_errors > 0);
	assert_int_equal(in_state(vm[0], MV_PAGE_SHARED), n);
	/* the guest reads its bytes back */
	assert_int_equal(bad_common(vm[0]), 0);
	assert_int_equal(bad_common(vm[1]), 0);
	for (unsigned i = 0; i < 2; i++) {
		th_quiesce(vm[i]);
		assert_int_equal(in_state(vm[i], MV_PAGE_PRIVATE), n);
		assert_int_equal(th_presence_mismatches(vm[i]), 0);
	}
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.share_frames, 0);
	assert_int_equal(hs.lost_pages, 0);
	mv_vm_destroy(vm[0]);
	mv_vm_destroy(vm[1]);
	th_host_destroy(&t);
}

/* An image of pages pages in a fresh scratch directory, its path into
 * path; th_teardown removes both if the test does not. */
static void make_image(char *path, size_t len, uint64_t pages)
{
	uint8_t page[MV_PAGE_SIZE];
	char dir[TH_DIR_LEN];
	int fd;

	th_scratch(dir, sizeof(dir), "share");
	th_remove_at_teardown(dir);
	assert_true((size_t)snprintf(path, len, "%s/image", dir) < len);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	assert_true(fd >= 0);
	th_remove_at_teardown(path);
	for (uint64_t p = 0; p < pages; p++) {
		if (p % 8 == 7)
			memset(page, 0, sizeof(page));
		else
			th_fill(page, COMMON, p, 0);
		assert_int_equal(write(fd, page, sizeof(page)), sizeof(page));
	}
	close(fd);
}

static void test_vms_from_one_image_share_from_first_touch(void **state)
{
	uint64_t pages = 256, sum;
	struct mv_host_stats hs;
	struct th_host t;
	char path[TH_PATH_LEN];
	mv_vm *vm[2];
	uint8_t *m;

	(void)state;
	make_image(path, sizeof(path), pages);
	quiet_host(&t, 0);
	vm[0] = salted_vm(&t, "i1", pages * MV_PAGE_SIZE, "", path);
	vm[1] = salted_vm(&t, "i2", pages * MV_PAGE_SIZE, "", path);
	for (unsigned i = 0; i < 2; i++) {
		m = mv_vm_mem(vm[i]);
		sum = 0;
		for (uint64_t p = 0; p < pages; p++)
			sum += p % 8 == 7 ? !th_is_zero(m + p * MV_PAGE_SIZE) :
					    !th_check(m + p * MV_PAGE_SIZE,
						      COMMON, p, 0);
		assert_int_equal(sum, 0);
		th_quiesce(vm[i]);
	}
	assert_int_equal(in_state(vm[0], MV_PAGE_SHARED), pages - pages / 8);
	assert_int_equal(in_state(vm[1], MV_PAGE_SHARED), pages - pages / 8);
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.share_frames, pages - pages / 8);
	/* the image's zero pages read as the kernel's zero page: no frame */
	assert_int_equal(in_state(vm[0], MV_PAGE_ZERO), pages / 8);
	assert_int_equal(in_state(vm[1], MV_PAGE_ZERO), pages / 8);
	assert_int_equal(hs.consumed_pages, pages - pages / 8);
	/* a write is the writer's alone */
	m = mv_vm_mem(vm[1]);
	th_fill(m, 9, 0, 0);
	assert_true(th_check(mv_vm_mem(vm[0]), COMMON, 0, 0));
	assert_int_equal(th_presence_mismatches(vm[0]), 0);
	assert_int_equal(th_presence_mismatches(vm[1]), 0);
	mv_vm_destroy(vm[0]);
	mv_vm_destroy(vm[1]);
	th_host_destroy(&t);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equal_pages_of_two_vms_share_one_frame),
		cmocka_unit_test(test_write_to_shared_page_stays_in_the_writer),
		cmocka_unit_test(
			test_a_write_to_a_shared_page_counts_in_the_writers_demand),
		cmocka_unit_test(test_the_vms_saved_pages_add_up_to_the_hosts),
		cmocka_unit_test(
			test_pages_protected_beside_candidates_stay_writable),
		cmocka_unit_test(test_last_sharer_writing_frees_the_frame),
		cmocka_unit_test(test_zero_pages_become_zero_without_a_frame),
		cmocka_unit_test(
			test_hash_collision_never_merges_different_pages),
		cmocka_unit_test(test_salts_decide_who_shares),
		cmocka_unit_test(test_swap_out_leaves_shared_pages_shared),
		cmocka_unit_test(test_pool_write_failure_loses_nothing),
		cmocka_unit_test(test_write_protect_failure_loses_nothing),
		cmocka_unit_test(test_refused_frame_mapping_loses_nothing),
		cmocka_unit_test(
			test_three_copies_in_one_window_share_in_one_pass),
		cmocka_unit_test(test_a_pair_that_fails_keeps_its_peer_intact),
		cmocka_unit_test(
			test_balloon_takes_a_shared_page_from_one_sharer),
		cmocka_unit_test(
			test_vms_from_one_image_share_from_first_touch),
		cmocka_unit_test(test_sharing_stops_short_of_max_map_count),
		cmocka_unit_test(test_write_at_max_map_count_copies_in_place),
		cmocka_unit_test(
			test_scanning_at_max_map_count_never_rereads_the_maps),
		cmocka_unit_test(
			test_writes_of_every_sharer_at_max_map_count_lose_nothing),
		cmocka_unit_test(
			test_a_copy_in_place_never_shows_a_reused_frame),
		cmocka_unit_test(test_a_read_of_a_zero_page_takes_no_frame),
		cmocka_unit_test(
			test_a_zero_page_read_the_kernel_refuses_gets_a_frame),
		cmocka_unit_test(
			test_a_page_that_cannot_be_put_back_is_filled_on_touch),
	};

	return th_run_tests(tests);
}

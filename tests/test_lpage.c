// SPDX-License-Identifier: MIT
/*
 * test_lpage.c - large pages (lpage.c): a collapse keeps every byte and
 * makes a real 2 MiB page, only of fully resident private regions; writes
 * made while regions are collapsed and broken all land; reclaim and the
 * balloon break a region before they take a page of it, and a reclaimed
 * region gives back exactly its frames; the scheduler breaks large pages
 * under pressure, the most idle VM first, and the share scanner never maps
 * a frame into a large page.
 *
 * What the kernel did is read from /proc/self/smaps (AnonHugePages: bytes
 * mapped by 2 MiB pages; Rss), not taken from the engine's own word.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "helper.h"
#include "inject.h"
#include "internal.h"

#define MiB (1ull << 20)
#define REGION (2 * MiB)
#define RPAGES (REGION / MV_PAGE_SIZE)
#define TAG 0x1a29e

/* Large pages on, every other background mechanism off. */
static void lpage_settings(struct mv_settings *s)
{
	th_settings_quiet(s);
	assert_int_equal(mv_settings_set(s, "Mem.AllocGuestLargePage", "1"), 0);
}

static void lpage_host(struct th_host *t, uint64_t memsize)
{
	struct mv_settings s;

	lpage_settings(&s);
	th_host_create(t, memsize, &s);
}

static struct mv_vm_stats stats(mv_vm *vm)
{
	struct mv_vm_stats st;

	assert_int_equal(mv_vm_stats(vm, &st), 0);
	return st;
}

/* Sum of an smaps field (kB) over the mappings within [lo, hi). */
static long smaps_kb(const void *lo_p, uint64_t len, const char *field)
{
	uintptr_t lo = (uintptr_t)lo_p, hi = lo + len, a, b;
	char line[512], key[64];
	long kb, sum = 0;
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	assert_non_null(f);
	snprintf(key, sizeof(key), "%s: %%ld", field);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &a, &b) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = a < hi && b > lo;
			continue;
		}
		if (in && sscanf(line, key, &kb) == 1)
			sum += kb;
	}
	fclose(f);
	return sum;
}

static long huge_kb(mv_vm *vm)
{
	return smaps_kb(mv_vm_mem(vm), mv_vm_memsize(vm), "AnonHugePages");
}

/*
 * Collapses until `want` regions of the VM are large (a collapse the
 * kernel refuses for a passing reason, a page still in a per-CPU LRU
 * batch, is tried again), with a deadline.
 */
static void collapse_all(mv_vm *vm, uint64_t want)
{
	uint64_t t0 = th_now_ms(), got;

	th_drain_lru();
	while (stats(vm).lpage_pages < want * RPAGES &&
	       th_now_ms() - t0 < TH_WAIT_MS) {
		assert_int_equal(mv_vm_lpage_collapse(vm, &got), 0);
		th_drain_lru();
	}
	assert_int_equal(stats(vm).lpage_pages, want * RPAGES);
}

static void test_collapse_keeps_content_and_makes_a_huge_page(void **state)
{
	struct th_host t;
	mv_vm *vm;

	(void)state;
	lpage_host(&t, 64 * MiB);
	vm = th_vm_create(&t, "a", 8 * MiB);
	th_fill_vm(vm, TAG, false);
	assert_int_equal(huge_kb(vm), 0);
	collapse_all(vm, 4);
	/* the kernel says so, not just the engine */
	assert_int_equal(huge_kb(vm), 8 * 1024);
	for (uint64_t p = 0; p < 8 * MiB / MV_PAGE_SIZE; p += 97)
		assert_int_equal(mv_vm_page_large(vm, p), 1);
	assert_int_equal(th_bad_pages(vm, TAG, false), 0);
	assert_int_equal(stats(vm).lpage_collapses, 4);
	assert_int_equal(stats(vm).state_pages[MV_PAGE_PRIVATE],
			 8 * MiB / MV_PAGE_SIZE);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static bool hole(uint64_t p)
{
	return p >= RPAGES + 64 && p < RPAGES + 128;
}

static void test_collapse_takes_only_fully_private_regions(void **state)
{
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	lpage_host(&t, 64 * MiB);
	vm = th_vm_create(&t, "a", 6 * MiB);
	m = mv_vm_mem(vm);
	/* region 0 whole; region 1 missing 64 pages (more than a
	 * first-touch fault fills around a page); region 2 with one page
	 * swapped out */
	for (uint64_t p = 0; p < 3 * RPAGES; p++)
		if (!hole(p))
			th_fill(m + p * MV_PAGE_SIZE, TAG, p, 0);
	th_quiesce(vm);
	th_drain_lru();
	assert_int_equal(mv_vm_swap_out_page(vm, 2 * RPAGES + 3), 0);
	collapse_all(vm, 1);
	assert_int_equal(mv_vm_page_large(vm, 0), 1);
	assert_int_equal(mv_vm_page_large(vm, RPAGES), 0);
	assert_int_equal(mv_vm_page_large(vm, 2 * RPAGES), 0);
	assert_int_equal(huge_kb(vm), 2048);
	assert_int_equal(mv_vm_page_state(vm, RPAGES + 100), MV_PAGE_UNTOUCHED);
	for (uint64_t p = 0; p < 3 * RPAGES; p++)
		if (!hole(p))
			assert_true(th_check(m + p * MV_PAGE_SIZE, TAG, p, 0));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_large_pages_off_for_a_vm(void **state)
{
	struct mv_vm_config vc;
	struct th_host t;
	uint64_t n = 1;
	mv_vm *vm;

	(void)state;
	lpage_host(&t, 64 * MiB);
	mv_vm_config_init(&vc);
	vc.memsize_bytes = 4 * MiB;
	vc.large_pages_off = 1;
	assert_int_equal(mv_vm_create(t.host, &vc, &vm), 0);
	th_fill_vm(vm, TAG, false);
	assert_int_equal(mv_vm_lpage_collapse(vm, &n), -EOPNOTSUPP);
	assert_int_equal(n, 0);
	assert_int_equal(huge_kb(vm), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/* A guest thread adding one to a counter in random pages (word 1; word 0
 * holds the page's number) until told to stop. */
struct writer {
	uint64_t *mem;
	uint64_t pages;
	_Atomic bool stop;
	_Atomic uint64_t writes;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t rng = 0x9e3779b97f4a7c15ull, p;

	while (!atomic_load_explicit(&w->stop, memory_order_relaxed)) {
		p = th_xs(&rng) % w->pages;
		w->mem[p * (MV_PAGE_SIZE / 8) + 1]++;
		atomic_fetch_add_explicit(&w->writes, 1, memory_order_relaxed);
	}
	return NULL;
}

/* Whether the writer wrote more than @from writes within the tests' bound. */
static bool writes_grow(struct writer *w, uint64_t from)
{
	uint64_t t0 = th_now_ms();

	while (atomic_load(&w->writes) <= from && th_now_ms() - t0 < TH_WAIT_MS)
		sched_yield();
	return atomic_load(&w->writes) > from;
}

static void test_writes_during_collapse_and_break_all_land(void **state)
{
	const uint64_t pages = 16 * MiB / MV_PAGE_SIZE;
	struct writer w = { .pages = pages };
	uint64_t sum = 0, broken = 0, t0;
	struct th_host t;
	pthread_t thr;
	mv_vm *vm;

	(void)state;
	lpage_host(&t, 64 * MiB);
	vm = th_vm_create(&t, "a", 16 * MiB);
	w.mem = mv_vm_mem(vm);
	for (uint64_t p = 0; p < pages; p++) {
		w.mem[p * (MV_PAGE_SIZE / 8)] = p;
		w.mem[p * (MV_PAGE_SIZE / 8) + 1] = 0;
	}
	th_quiesce(vm);
	assert_int_equal(pthread_create(&thr, NULL, writer_main, &w), 0);
	/* with both CPUs busy the writer may not run for a while: wait for it
	 * before the collapse, and again while the regions are large */
	assert_true(writes_grow(&w, 0));
	collapse_all(vm, 8);
	assert_true(writes_grow(&w, atomic_load(&w.writes)));
	t0 = th_now_ms();
	while (stats(vm).lpage_pages && th_now_ms() - t0 < TH_WAIT_MS) {
		uint64_t n = 0;

		assert_int_equal(mv_vm_lpage_break(vm, &n), 0);
		broken += n;
	}
	atomic_store(&w.stop, true);
	pthread_join(thr, NULL);
	assert_int_equal(broken, 8);
	assert_int_equal(stats(vm).lpage_breaks, 8);
	assert_int_equal(stats(vm).lpage_pages, 0);
	assert_int_equal(huge_kb(vm), 0);
	for (uint64_t p = 0; p < pages; p++) {
		assert_int_equal(w.mem[p * (MV_PAGE_SIZE / 8)], p);
		sum += w.mem[p * (MV_PAGE_SIZE / 8) + 1];
	}
	assert_int_equal(sum, atomic_load(&w.writes));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void
test_reclaim_of_a_large_region_gives_back_exactly_its_frames(void **state)
{
	struct mv_vm_stats before, after;
	long rss0, huge0;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	lpage_host(&t, 64 * MiB);
	vm = th_vm_create(&t, "a", 4 * MiB);
	th_fill_vm(vm, TAG, false);
	collapse_all(vm, 2);
	m = mv_vm_mem(vm);
	before = stats(vm);
	rss0 = smaps_kb(m, 4 * MiB, "Rss");
	huge0 = huge_kb(vm);
	assert_int_equal(huge0, 4096);
	/* every page of region 0: the first breaks it */
	for (uint64_t p = 0; p < RPAGES; p++)
		assert_int_equal(mv_vm_swap_out_page(vm, p), 0);
	after = stats(vm);
	assert_int_equal(after.lpage_breaks, 1);
	assert_int_equal(mv_vm_page_large(vm, 0), 0);
	assert_int_equal(mv_vm_page_large(vm, RPAGES), 1);
	/* the engine's count and the kernel's agree: 2 MiB, no more, no less */
	assert_int_equal(before.consumed_pages - after.consumed_pages, RPAGES);
	assert_int_equal(rss0 - smaps_kb(m, 4 * MiB, "Rss"), 2048);
	assert_int_equal(huge_kb(vm), 2048);
	assert_int_equal(after.state_pages[MV_PAGE_PRIVATE], RPAGES);
	/* and every byte comes back */
	assert_int_equal(th_bad_pages(vm, TAG, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_balloon_inflate_breaks_the_region_first(void **state)
{
	struct mv_balloon_reply rep;
	struct mv_balloon_msg msg = { .type = MV_BALLOON_MSG_INFLATE,
				      .num = 1 };
	mv_balloon_chan *ch;
	struct th_host t;
	uint64_t c0;
	mv_vm *vm;

	(void)state;
	lpage_host(&t, 64 * MiB);
	vm = th_vm_create(&t, "a", 4 * MiB);
	th_fill_vm(vm, TAG, false);
	collapse_all(vm, 2);
	c0 = stats(vm).consumed_pages;
	msg.u.pfns[0] = RPAGES + 5;
	assert_int_equal(mv_balloon_open(vm, &ch), 0);
	assert_int_equal(mv_balloon_send(ch, &msg, &rep), 0);
	assert_int_equal(rep.accepted, 1);
	mv_balloon_close(ch);
	assert_int_equal(mv_vm_page_large(vm, RPAGES), 0);
	assert_int_equal(mv_vm_page_large(vm, 0), 1);
	assert_int_equal(stats(vm).lpage_breaks, 1);
	assert_int_equal(c0 - stats(vm).consumed_pages, 1);
	assert_int_equal(huge_kb(vm), 2048);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_policy_breaks_the_most_idle_vm_first(void **state)
{
	/* three VMs above target by 3, 1 and 5 regions, VM 1 the most idle;
	 * VM 2 has 3 regions of small pages, the others none */
	struct mv__sched_vm in[4] = {
		{ .alloc_pages = 10 * RPAGES, .active_permille = 900 },
		{ .alloc_pages = 10 * RPAGES, .active_permille = 100 },
		{ .alloc_pages = 10 * RPAGES, .active_permille = 500 },
		{ .alloc_pages = 10 * RPAGES, .active_permille = 0 },
	};
	uint64_t target[4] = { 7 * RPAGES, 9 * RPAGES, 5 * RPAGES,
			       10 * RPAGES };
	uint64_t large[4] = { 10, 10, 7, 10 }, out[4];

	(void)state;
	/* budget 4: VM 3 is at its target; VM 1 (1 region) then VM 2 (2:
	 * its small pages cover 3 of the 5) then 1 of VM 0's 3 */
	assert_int_equal(mv__sched_lpage_breaks(in, target, large, 4, 4, out),
			 4);
	assert_int_equal(out[3], 0);
	assert_int_equal(out[1], 1);
	assert_int_equal(out[2], 2);
	assert_int_equal(out[0], 1);
	/* a budget of 1 goes to the most idle VM above target only */
	assert_int_equal(mv__sched_lpage_breaks(in, target, large, 4, 1, out),
			 1);
	assert_int_equal(out[1], 1);
	assert_int_equal(out[0] + out[2] + out[3], 0);
	/* small pages enough for what it is above: nothing to break */
	large[0] = 7;
	large[1] = 9;
	large[2] = 5;
	assert_int_equal(mv__sched_lpage_breaks(in, target, large, 4, 32, out),
			 0);
}

static bool at_or_below_limit(void *arg)
{
	mv_vm *vm = arg;

	return stats(vm).consumed_pages <= 4 * MiB / MV_PAGE_SIZE;
}

static void test_scheduler_breaks_before_it_swaps_a_vm_down(void **state)
{
	struct th_host t;
	mv_vm *vm;

	(void)state;
	lpage_host(&t, 64 * MiB);
	vm = th_vm_create(&t, "a", 8 * MiB);
	th_fill_vm(vm, TAG, false);
	collapse_all(vm, 4);
	/* nothing small to take: reclaim alone could not bring it down */
	assert_int_equal(mv_vm_set_limit(vm, 4 * MiB), 0);
	assert_true(th_wait_until(at_or_below_limit, vm, TH_WAIT_MS));
	assert_true(stats(vm).lpage_breaks >= 2);
	assert_true(stats(vm).swapout_pages + stats(vm).zip_pages > 0);
	assert_int_equal(th_bad_pages(vm, TAG, false), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

struct pressure {
	mv_vm *vm;
	mv_host *host;
};

static bool broke(void *arg)
{
	struct pressure *p = arg;

	return stats(p->vm).lpage_breaks > 0;
}

/* The host's count of large pages and a's agree (one reading, both
 * around it: the scheduler breaks a's while it is above its target). */
static bool lpage_counts_agree(void *arg)
{
	struct pressure *p = arg;
	struct mv_host_stats x, y;
	uint64_t v;

	assert_int_equal(mv_host_stats(p->host, &x), 0);
	v = stats(p->vm).lpage_pages;
	assert_int_equal(mv_host_stats(p->host, &y), 0);
	return x.lpage_pages == y.lpage_pages && x.lpage_pages == v;
}

static void test_host_pressure_breaks_large_pages(void **state)
{
	struct mv_host_stats hs;
	struct pressure pr;
	struct th_host t;
	mv_vm *a, *b;

	(void)state;
	/* minFree of 64 MiB is 3.84 MiB: hard below 2.46 MiB free */
	lpage_host(&t, 64 * MiB);
	a = th_vm_create(&t, "a", 40 * MiB);
	b = th_vm_create(&t, "b", 24 * MiB);
	th_fill_vm(a, TAG, false);
	collapse_all(a, 20);
	/* b takes all but ~1 MiB: the host goes hard; a is the one above
	 * its target, and all of it is large */
	th_fill_vm(b, TAG + 1, false);
	pr.vm = a;
	pr.host = t.host;
	assert_true(th_wait_until(broke, &pr, TH_WAIT_MS));
	assert_int_equal(mv_host_stats(t.host, &hs), 0);
	assert_true(hs.lpage_breaks > 0);
	assert_int_equal(hs.lpage_collapses, 20);
	assert_true(th_wait_until(lpage_counts_agree, &pr, TH_WAIT_MS));
	th_settle(t.host);
	assert_int_equal(th_bad_pages(a, TAG, false), 0);
	assert_int_equal(th_bad_pages(b, TAG + 1, false), 0);
	mv_vm_destroy(a);
	mv_vm_destroy(b);
	th_host_destroy(&t);
}

static mv_vm *salted_vm(struct th_host *t, const char *name)
{
	struct mv_vm_config vc;
	mv_vm *vm;

	mv_vm_config_init(&vc);
	snprintf(vc.name, sizeof(vc.name), "%s", name);
	snprintf(vc.salt, sizeof(vc.salt), "same");
	vc.memsize_bytes = 4 * MiB;
	assert_int_equal(mv_vm_create(t->host, &vc, &vm), 0);
	return vm;
}

static void test_sharing_never_maps_a_frame_into_a_large_page(void **state)
{
	const uint64_t pages = 4 * MiB / MV_PAGE_SIZE;
	struct mv_host_stats hs;
	uint64_t merged = 0, all = 0;
	struct th_host t;
	mv_vm *a, *b;

	(void)state;
	lpage_host(&t, 64 * MiB);
	a = salted_vm(&t, "a");
	b = salted_vm(&t, "b");
	/* the same bytes in both VMs, page for page */
	th_fill_vm(a, TAG, false);
	th_fill_vm(b, TAG, false);
	collapse_all(a, 2);
	/* a's pages become hints, b's match them: and still nothing merges */
	for (int pass = 0; pass < 2; pass++) {
		assert_int_equal(mv_vm_share_scan(a, pages, &merged), 0);
		all += merged;
		assert_int_equal(mv_vm_share_scan(b, pages, &merged), 0);
		all += merged;
	}
	assert_int_equal(all, 0);
	assert_true(stats(a).share_scanned_pages >= pages);
	assert_int_equal(mv_host_stats(t.host, &hs), 0);
	assert_true(hs.share_hints > 0);
	assert_int_equal(stats(a).state_pages[MV_PAGE_PRIVATE], pages);
	assert_int_equal(stats(a).lpage_pages, pages);
	assert_int_equal(huge_kb(a), 4096);
	/* broken up, the same pages do share */
	assert_int_equal(mv_vm_lpage_break(a, NULL), 0);
	all = 0;
	for (int pass = 0; pass < 2; pass++) {
		assert_int_equal(mv_vm_share_scan(a, pages, &merged), 0);
		all += merged;
		assert_int_equal(mv_vm_share_scan(b, pages, &merged), 0);
		all += merged;
	}
	assert_true(all > 0);
	assert_int_equal(th_bad_pages(a, TAG, false), 0);
	assert_int_equal(th_bad_pages(b, TAG, false), 0);
	mv_vm_destroy(a);
	mv_vm_destroy(b);
	th_host_destroy(&t);
}

static bool below_high(void *host)
{
	struct mv_host_stats hs;

	return !mv_host_stats(host, &hs) && hs.state != MV_STATE_HIGH;
}

/*
 * Below the high state a large page whose small pages match others is
 * broken by the share scanner so that they share (ESX breaks large pages
 * once memory is no longer plentiful): both VMs' regions collapsed, the
 * host in clear (no reclaim, so nothing else breaks them), and the scans
 * merge pages and break regions, every byte kept.
 */
static void
test_below_high_matching_large_pages_are_broken_and_shared(void **state)
{
	const uint64_t pages = 4 * MiB / MV_PAGE_SIZE;
	uint64_t merged = 0, all = 0;
	struct th_host t;
	mv_vm *a, *b;

	(void)state;
	/* 8 MiB of guests on 10 MiB: free below 400% of minFree, above it */
	lpage_host(&t, 10 * MiB);
	a = salted_vm(&t, "a");
	b = salted_vm(&t, "b");
	th_fill_vm(a, TAG, false);
	th_fill_vm(b, TAG, false);
	collapse_all(a, 2);
	collapse_all(b, 2);
	assert_true(th_wait_until(below_high, t.host, TH_WAIT_MS));
	for (int pass = 0; pass < 2; pass++) {
		assert_int_equal(mv_vm_share_scan(a, pages, &merged), 0);
		all += merged;
		assert_int_equal(mv_vm_share_scan(b, pages, &merged), 0);
		all += merged;
	}
	assert_true(all > 0);
	assert_true(stats(a).lpage_breaks + stats(b).lpage_breaks > 0);
	assert_true(stats(a).shrd_pages > 0);
	assert_int_equal(th_bad_pages(a, TAG, false), 0);
	assert_int_equal(th_bad_pages(b, TAG, false), 0);
	assert_int_equal(th_presence_mismatches(a), 0);
	assert_int_equal(th_presence_mismatches(b), 0);
	mv_vm_destroy(a);
	mv_vm_destroy(b);
	th_host_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_collapse_keeps_content_and_makes_a_huge_page),
		cmocka_unit_test(
			test_collapse_takes_only_fully_private_regions),
		cmocka_unit_test(test_large_pages_off_for_a_vm),
		cmocka_unit_test(
			test_writes_during_collapse_and_break_all_land),
		cmocka_unit_test(
			test_reclaim_of_a_large_region_gives_back_exactly_its_frames),
		cmocka_unit_test(test_balloon_inflate_breaks_the_region_first),
		cmocka_unit_test(test_policy_breaks_the_most_idle_vm_first),
		cmocka_unit_test(
			test_scheduler_breaks_before_it_swaps_a_vm_down),
		cmocka_unit_test(test_host_pressure_breaks_large_pages),
		cmocka_unit_test(
			test_sharing_never_maps_a_frame_into_a_large_page),
		cmocka_unit_test(
			test_below_high_matching_large_pages_are_broken_and_shared),
	};

	return th_run_tests(tests);
}

// SPDX-License-Identifier: MIT
/*
 * test_zcache.c - the compression cache in front of swapping: exact content
 * through compress, decompress, eviction to swap and swap-in; incompressible
 * pages skip it; the cap holds; its frames are counted.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "helper.h"

#define MiB (1ull << 20)

static void test_compressible_page_is_cached_and_comes_back(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "z", 4 * MiB);
	m = mv_vm_mem(vm);
	th_fill_z(m + 9 * MV_PAGE_SIZE, 1, 9, 1);
	assert_int_equal(mv_vm_swap_out_page(vm, 9), 0);
	assert_int_equal(mv_vm_page_state(vm, 9), MV_PAGE_COMPRESSED);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.zip_pages, 1);
	assert_int_equal(st.zip_cached_pages, 1);
	assert_int_equal(st.swcur_pages, 0);
	assert_true(st.zip_stored_bytes > 0 && st.zip_stored_bytes <= 2048);
	assert_true(th_check_z(m + 9 * MV_PAGE_SIZE, 1, 9, 1));
	/* the page's lock is free once the fault thread has finished */
	assert_int_equal(mv_vm_page_state(vm, 9), MV_PAGE_PRIVATE);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.unzip_pages, 1);
	assert_int_equal(st.zip_cached_pages, 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_incompressible_page_skips_the_cache(void **state)
{
	struct mv_vm_stats st;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "r", 4 * MiB);
	m = mv_vm_mem(vm);
	th_fill(m, 1, 0, 1);
	assert_int_equal(mv_vm_swap_out_page(vm, 0), 0);
	assert_int_equal(mv_vm_page_state(vm, 0), MV_PAGE_SWAPPED);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.zip_incompressible, 1);
	assert_int_equal(st.zip_cached_pages, 0);
	assert_true(th_check(m, 1, 0, 1));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_zero_heavy_pages_cost_little(void **state)
{
	uint64_t n = 4 * MiB / MV_PAGE_SIZE, done;
	struct mv_vm_stats st;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "zh", 4 * MiB);
	m = mv_vm_mem(vm);
	for (uint64_t p = 0; p < n; p++)
		m[p * MV_PAGE_SIZE + p % MV_PAGE_SIZE] = (uint8_t)(p | 1);
	assert_int_equal(mv_vm_swap_out(vm, n / 4, &done), 0);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.zip_cached_pages, done);
	/* a nearly empty page packs into a few dozen bytes */
	assert_true(st.zip_used_bytes * 20 < done * MV_PAGE_SIZE);
	assert_int_equal(st.zip_saved_bytes,
			 done * MV_PAGE_SIZE - st.zip_used_bytes);
	for (uint64_t p = 0; p < n; p++)
		assert_int_equal(m[p * MV_PAGE_SIZE + p % MV_PAGE_SIZE],
				 (uint8_t)(p | 1));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_full_cache_sends_oldest_pages_to_swap(void **state)
{
	uint64_t n = 8 * MiB / MV_PAGE_SIZE, done = 0, d;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "full", 8 * MiB);
	th_fill_vm(vm, 2, true);
	/* all of it: far more than a 10% cache can hold */
	for (int i = 0; i < 64 && done < n * 9 / 10; i++) {
		assert_int_equal(mv_vm_swap_out(vm, n, &d), 0);
		done += d;
	}
	mv_vm_stats(vm, &st);
	assert_true(st.zip_used_bytes <= st.zip_max_bytes);
	assert_int_equal(st.zip_max_bytes,
			 8 * MiB / 10 / MV_PAGE_SIZE * MV_PAGE_SIZE);
	assert_true(st.zip_evict_pages > 0);
	assert_true(st.swcur_pages > 0);
	assert_int_equal(st.zip_cached_pages + st.swcur_pages,
			 st.state_pages[MV_PAGE_COMPRESSED] +
				 st.state_pages[MV_PAGE_SWAPPED]);
	/* evicted pages come back from swap, cached ones from the cache */
	assert_int_equal(th_bad_pages(vm, 2, true), 0);
	th_quiesce(vm);
	mv_vm_stats(vm, &st);
	assert_true(st.swapin_pages > 0);
	assert_true(st.unzip_pages > 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_cache_frames_count_against_vm_and_host(void **state)
{
	uint64_t n = 4 * MiB / MV_PAGE_SIZE, done;
	struct mv_host_stats hs;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	vm = th_vm_create(&t, "acct", 4 * MiB);
	th_fill_vm(vm, 3, true);
	assert_int_equal(mv_vm_swap_out(vm, 200, &done), 0);
	mv_vm_stats(vm, &st);
	mv_host_stats(t.host, &hs);
	assert_true(st.zip_used_bytes > 0);
	assert_int_equal(st.consumed_pages,
			 st.state_pages[MV_PAGE_PRIVATE] +
				 st.zip_used_bytes / MV_PAGE_SIZE);
	assert_int_equal(hs.consumed_pages, st.consumed_pages);
	assert_int_equal(th_bad_pages(vm, 3, true), 0);
	th_quiesce(vm);
	mv_vm_stats(vm, &st);
	mv_host_stats(t.host, &hs);
	assert_int_equal(st.zip_used_bytes, 0);
	assert_int_equal(st.consumed_pages, n);
	assert_int_equal(hs.consumed_pages, n);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_zstd_cache_round_trips(void **state)
{
	uint64_t done;
	struct mv_settings s;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.ZipAlgorithm", "1"), 0);
	th_host_create(&t, 64 * MiB, &s);
	vm = th_vm_create(&t, "zstd", 2 * MiB);
	th_fill_vm(vm, 4, true);
	assert_int_equal(mv_vm_swap_out(vm, 40, &done), 0);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.zip_cached_pages, done);
	assert_int_equal(th_bad_pages(vm, 4, true), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_disabled_compression_swaps_everything(void **state)
{
	uint64_t done;
	struct mv_settings s;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.MemZipEnable", "0"), 0);
	th_host_create(&t, 64 * MiB, &s);
	vm = th_vm_create(&t, "nozip", 2 * MiB);
	th_fill_vm(vm, 5, true);
	assert_int_equal(mv_vm_swap_out(vm, 40, &done), 0);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.zip_cached_pages, 0);
	assert_int_equal(st.swcur_pages, done);
	assert_int_equal(th_bad_pages(vm, 5, true), 0);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

static void test_overcommit_with_compressible_memory_stays_exact(void **state)
{
	struct mv_host_stats hs;
	struct mv_vm_stats st;
	struct th_host t;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 8 * MiB, NULL);
	vm = th_vm_create(&t, "oc", 32 * MiB);
	th_fill_vm(vm, 6, true);
	assert_int_equal(th_bad_pages(vm, 6, true), 0);
	mv_vm_stats(vm, &st);
	mv_host_stats(t.host, &hs);
	assert_true(st.zip_pages > 0);
	assert_true(hs.consumed_pages <= hs.memsize_pages);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/* Fast compression: pages the way the kvstore guests write them. */
#define FZ_PAGES 1024 /* two judgements of 16 probes, one in 32 pages */

static uint64_t fz_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* Records of 256 random bytes in 6 of a page's 16 slots, zeros between. */
static void fz_records(uint8_t *page, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	memset(page, 0, MV_PAGE_SIZE);
	for (unsigned r = 0; r < 16; r++) {
		if (fz_next(&x) % 16 >= 6)
			continue;
		for (unsigned w = 0; w < 32; w++) {
			uint64_t v = fz_next(&x);

			memcpy(page + r * 256 + w * 8, &v, 8);
		}
	}
}

/* Records of text: a random id, then a vocabulary from a random word. */
static void fz_text(uint8_t *page, uint64_t seed)
{
	static const char *const words[] = {
		"user ",  "session ", "cart ",	 "item ",  "price ", "total ",
		"state ", "region ",  "visits ", "the ",   "and ",   "memory ",
		"page ",  "guest ",   "host ",	 "order ",
	};
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1, first;
	size_t w;

	for (unsigned r = 0; r < 16; r++) {
		uint8_t *rec = page + r * 256;
		uint64_t id = fz_next(&x);

		memcpy(rec, &id, 8);
		first = fz_next(&x);
		for (size_t i = 0, n = 8; n < 256; i++, n += w) {
			const char *word = words[(first + i) % 16];

			w = strlen(word) < 256 - n ? strlen(word) : 256 - n;
			memcpy(rec + n, word, w);
		}
	}
}

static void fz_fill(uint8_t *m, uint64_t lo, uint64_t hi, bool text)
{
	for (uint64_t p = lo; p < hi; p++)
		(text ? fz_text : fz_records)(m + p * MV_PAGE_SIZE, p);
}

static bool fz_check(const uint8_t *m, uint64_t lo, uint64_t hi, bool text)
{
	uint8_t want[MV_PAGE_SIZE];

	for (uint64_t p = lo; p < hi; p++) {
		(text ? fz_text : fz_records)(want, p);
		if (memcmp(m + p * MV_PAGE_SIZE, want, MV_PAGE_SIZE))
			return false;
	}
	return true;
}

static void fz_swap_out(mv_vm *vm, uint64_t lo, uint64_t hi)
{
	for (uint64_t p = lo; p < hi; p++)
		assert_int_equal(mv_vm_swap_out_page(vm, p), 0);
}

/*
 * A VM whose victims are text goes back to LZ4's full search (the fast one
 * would cost it space); when its victims become random records and zeros,
 * which the fast search packs as tightly, it takes the fast search again.
 * Every page comes back exact either way.
 */
static void test_the_search_follows_what_the_pages_hold(void **state)
{
	struct mv_settings s;
	struct mv_vm_stats st;
	struct th_host t;
	uint64_t fast_before;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	th_settings_quiet(&s);
	s.mem_zip_max_pct = 100;
	th_host_create(&t, 64 * MiB, &s);
	vm = th_vm_create(&t, "fz", 2 * FZ_PAGES * MV_PAGE_SIZE);
	m = mv_vm_mem(vm);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.zip_accel, 8); /* Mem.ZipFastAccel's default */
	fz_fill(m, 0, 2 * FZ_PAGES, false);
	fz_fill(m, 0, FZ_PAGES, true);
	fz_swap_out(vm, 0, FZ_PAGES);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.zip_accel, 1);
	assert_int_equal(st.zip_pages, FZ_PAGES);
	fast_before = st.zip_fast_pages;
	/* the first window ran fast, the second did not */
	assert_true(fast_before > 0 && fast_before < FZ_PAGES / 2);
	fz_swap_out(vm, FZ_PAGES, 2 * FZ_PAGES);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.zip_accel, 8);
	assert_true(st.zip_fast_pages > fast_before);
	assert_true(fz_check(m, 0, FZ_PAGES, true));
	assert_true(fz_check(m, FZ_PAGES, 2 * FZ_PAGES, false));
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/* Mem.ZipFastAccel = 1: every victim gets LZ4's full search, no probes. */
static void test_fast_compression_off_searches_every_page_fully(void **state)
{
	struct mv_settings s;
	struct mv_vm_stats st;
	struct th_host t;
	uint8_t *m;
	mv_vm *vm;

	(void)state;
	th_settings_quiet(&s);
	s.mem_zip_max_pct = 100;
	assert_int_equal(mv_settings_set(&s, "Mem.ZipFastAccel", "1"), 0);
	th_host_create(&t, 64 * MiB, &s);
	vm = th_vm_create(&t, "fz", FZ_PAGES * MV_PAGE_SIZE);
	m = mv_vm_mem(vm);
	fz_fill(m, 0, FZ_PAGES, false);
	fz_swap_out(vm, 0, FZ_PAGES);
	mv_vm_stats(vm, &st);
	assert_int_equal(st.zip_accel, 1);
	assert_int_equal(st.zip_fast_pages, 0);
	assert_true(st.zip_pages > FZ_PAGES / 2);
	assert_true(fz_check(m, 0, FZ_PAGES, false));
	assert_int_equal(mv_settings_set(&s, "Mem.ZipFastAccel", "0"), -EINVAL);
	assert_int_equal(mv_settings_set(&s, "Mem.ZipFastAccel", "65"),
			 -EINVAL);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_compressible_page_is_cached_and_comes_back),
		cmocka_unit_test(test_incompressible_page_skips_the_cache),
		cmocka_unit_test(test_zero_heavy_pages_cost_little),
		cmocka_unit_test(test_full_cache_sends_oldest_pages_to_swap),
		cmocka_unit_test(test_cache_frames_count_against_vm_and_host),
		cmocka_unit_test(test_zstd_cache_round_trips),
		cmocka_unit_test(test_disabled_compression_swaps_everything),
		cmocka_unit_test(
			test_overcommit_with_compressible_memory_stays_exact),
		cmocka_unit_test(test_the_search_follows_what_the_pages_hold),
		cmocka_unit_test(
			test_fast_compression_off_searches_every_page_fully),
	};

	return th_run_tests(tests);
}

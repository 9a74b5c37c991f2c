// SPDX-License-Identifier: MIT
/*
 * test_zip.c - page compression: pages that look like guest memory come
 * back exactly with LZ4 and zstd, pages that do not compress to 2 KiB are
 * refused, and damaged, truncated or foreign data is -EIO, never a crash or
 * a write past the page.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <lz4.h>
#include <zstd.h>

#include "inject.h"
#include "zip.h"

#define PAGE MV_ZIP_PAGE_SIZE

static const enum mv__zip_algo algos[] = { MV_ZIP_LZ4, MV_ZIP_ZSTD };
static const char *const algo_names[] = { "lz4", "zstd" };

#define for_each_algo(i) \
	for (unsigned i = 0; i < sizeof(algos) / sizeof(algos[0]); i++)

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void random_bytes(uint8_t *p, size_t len, uint64_t *s)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)splitmix(s);
}

/* A log: lines from a few templates, with times and numbers that vary. */
static void text_page(uint8_t *p, uint64_t seed)
{
	static const char *const users[] = { "alice", "bob",  "carol",
					     "dave",  "erin", "frank" };
	uint64_t s = seed;
	unsigned t = seed % 3600;
	size_t n = 0;

	while (n < PAGE) {
		const char *user = users[splitmix(&s) % 6];
		unsigned v = splitmix(&s) % 1000;
		char line[160];
		int len;

		t += splitmix(&s) % 3;
		len = snprintf(line, sizeof(line), "2024-05-17 %02u:%02u:%02u ",
			       t / 3600 % 24, t / 60 % 60, t % 60);
		switch (splitmix(&s) % 4) {
		case 0:
			len += snprintf(
				line + len, sizeof(line) - len,
				"INFO request handled in %u ms for user %s\n",
				v, user);
			break;
		case 1:
			len += snprintf(
				line + len, sizeof(line) - len,
				"INFO session of %s closed after %u s\n", user,
				v);
			break;
		case 2:
			len += snprintf(
				line + len, sizeof(line) - len,
				"WARN cache miss for key user:%s:%u, retrying\n",
				user, v);
			break;
		default:
			len += snprintf(line + len, sizeof(line) - len,
					"INFO queue flushed %u bytes to disk\n",
					v * 4096);
			break;
		}
		for (int i = 0; i < len && n < PAGE; i++)
			p[n++] = line[i];
	}
}

/* A mostly free page: zeros with a few small records scattered over it. */
static void zero_heavy_page(uint8_t *p, uint64_t seed)
{
	uint64_t s = seed;

	memset(p, 0, PAGE);
	for (unsigned r = 0; r < 12; r++)
		random_bytes(p + splitmix(&s) % (PAGE - 24), 24, &s);
}

/*
 * Machine code: compiler idioms (prologues, epilogues, stack checks,
 * argument spills, loop tails) between calls to nearby functions, loads
 * from small frame offsets and short jumps.
 */
static void code_page(uint8_t *p, uint64_t seed)
{
	static const struct {
		uint8_t len;
		uint8_t bytes[16];
	} idioms[] = {
		{ 13,
		  { 0x55, 0x48, 0x89, 0xe5, 0x41, 0x57, 0x41, 0x56, 0x53, 0x48,
		    0x83, 0xec, 0x18 } },
		{ 11,
		  { 0x48, 0x83, 0xc4, 0x18, 0x5b, 0x41, 0x5e, 0x41, 0x5f, 0x5d,
		    0xc3 } },
		{ 15,
		  { 0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00, 0x00, 0x48,
		    0x89, 0x45, 0xf8, 0x31, 0xc0 } },
		{ 11,
		  { 0x48, 0x89, 0x7d, 0xe8, 0x48, 0x89, 0x75, 0xe0, 0x89, 0x55,
		    0xdc } },
		{ 11,
		  { 0x83, 0x45, 0xfc, 0x01, 0x8b, 0x45, 0xfc, 0x3b, 0x45, 0xdc,
		    0x7c } },
	};
	uint64_t s = seed;
	size_t n = 0;

	while (n + 16 < PAGE) {
		unsigned r = splitmix(&s) % 8;

		if (r < 5) {
			memcpy(p + n, idioms[r].bytes, idioms[r].len);
			n += idioms[r].len;
		} else if (r == 5) { /* call rel32, a function nearby */
			p[n++] = 0xe8;
			random_bytes(p + n, 2, &s);
			p[n + 2] = p[n + 3] = 0xff;
			n += 4;
		} else if (r == 6) { /* mov -disp8(%rbp), %reg */
			p[n++] = 0x48;
			p[n++] = 0x8b;
			p[n++] = 0x45 + 8 * (splitmix(&s) % 4);
			p[n++] = (uint8_t)(0xf8 - 8 * (splitmix(&s) % 4));
		} else { /* test + je rel8 */
			p[n++] = 0x85;
			p[n++] = 0xc0;
			p[n++] = 0x74;
			p[n++] = (uint8_t)(splitmix(&s) % 64);
		}
	}
	memset(p + n, 0xcc, PAGE - n);
}

/* Half noise (encrypted or already compressed data), half zeros. */
static void partly_random_page(uint8_t *p, uint64_t seed)
{
	uint64_t s = seed;

	memset(p, 0, PAGE);
	random_bytes(p, PAGE * 2 / 5, &s);
}

static void random_page(uint8_t *p, uint64_t seed)
{
	uint64_t s = seed;

	random_bytes(p, PAGE, &s);
}

/* Compresses and decompresses 16 pages of the kind with each algorithm. */
static void check_round_trip_at(const char *kind,
				void (*make)(uint8_t *, uint64_t),
				unsigned accel)
{
	uint8_t page[PAGE], out[PAGE], buf[MV_ZIP_MAX_BYTES];

	for_each_algo(a)
	{
		size_t total = 0;

		for (uint64_t seed = 1; seed <= 16; seed++) {
			int len;

			make(page, seed);
			len = mv__zip_compress(algos[a], accel, page, buf,
					       sizeof(buf));
			/* a faster search may miss the 2 KiB: the page is
			 * then swapped, which the cache counts as its cost */
			if (accel > 1 && len == -E2BIG) {
				total += PAGE;
				continue;
			}
			assert_true(len > 0);
			assert_true(len <= (int)MV_ZIP_MAX_BYTES);
			memset(out, 0xa5, sizeof(out));
			assert_int_equal(
				mv__zip_decompress(algos[a], buf, len, out), 0);
			assert_memory_equal(page, out, PAGE);
			total += len;
		}
		print_message(
			"%s %s page, acceleration %u: %zu bytes on average\n",
			algo_names[a], kind, accel, total / 16);
	}
}

static void check_round_trip(const char *kind,
			     void (*make)(uint8_t *, uint64_t))
{
	check_round_trip_at(kind, make, 1);
}

static void test_text_page_round_trips_exactly(void **state)
{
	(void)state;
	check_round_trip("text", text_page);
}

/* LZ4's faster searches (Mem.ZipFastAccel) give back the same bytes. */
static void test_fast_searches_round_trip_exactly(void **state)
{
	(void)state;
	for (unsigned accel = 2; accel <= 64; accel *= 2) {
		check_round_trip_at("text", text_page, accel);
		check_round_trip_at("zero-heavy", zero_heavy_page, accel);
	}
}

static void test_zero_heavy_page_round_trips_exactly(void **state)
{
	(void)state;
	check_round_trip("zero-heavy", zero_heavy_page);
}

static void test_code_page_round_trips_exactly(void **state)
{
	(void)state;
	check_round_trip("code", code_page);
}

static void test_partly_random_page_round_trips_exactly(void **state)
{
	(void)state;
	check_round_trip("partly random", partly_random_page);
}

static void test_random_page_gives_e2big(void **state)
{
	static uint8_t page[PAGE], buf[2 * PAGE];

	(void)state;
	random_page(page, 99);
	for_each_algo(a)
	{
		assert_int_equal(mv__zip_compress(algos[a], 1, page, buf,
						  MV_ZIP_MAX_BYTES),
				 -E2BIG);
		/* a roomier buffer does not lift the 2 KiB limit */
		assert_int_equal(mv__zip_compress(algos[a], 1, page, buf,
						  sizeof(buf)),
				 -E2BIG);
	}
}

static void test_page_too_big_for_the_buffer_gives_e2big(void **state)
{
	uint8_t page[PAGE], buf[MV_ZIP_MAX_BYTES];

	(void)state;
	text_page(page, 5);
	for_each_algo(a)
	{
		int len = mv__zip_compress(algos[a], 1, page, buf, sizeof(buf));

		assert_true(len > 0);
		assert_int_equal(mv__zip_compress(algos[a], 1, page, buf,
						  len - 1),
				 -E2BIG);
		/* the libraries may want a little slack beyond the result */
		assert_int_equal(mv__zip_compress(algos[a], 1, page, buf,
						  len + 16),
				 len);
	}
}

static void test_truncated_data_gives_eio(void **state)
{
	uint8_t page[PAGE], buf[MV_ZIP_MAX_BYTES];
	uint8_t *out = malloc(PAGE); /* exact size: ASan sees overruns */

	(void)state;
	assert_non_null(out);
	code_page(page, 3);
	for_each_algo(a)
	{
		int len = mv__zip_compress(algos[a], 1, page, buf, sizeof(buf));

		assert_true(len > 0);
		for (int cut = 0; cut < len; cut++) {
			uint8_t *copy = malloc(cut ? cut : 1);

			assert_non_null(copy);
			memcpy(copy, buf, cut);
			assert_int_equal(mv__zip_decompress(algos[a], copy, cut,
							    out),
					 -EIO);
			free(copy);
		}
	}
	free(out);
}

static void test_garbage_gives_eio(void **state)
{
	uint8_t garbage[MV_ZIP_MAX_BYTES];
	uint8_t *out = malloc(PAGE);
	uint64_t s = 77;

	(void)state;
	assert_non_null(out);
	for_each_algo(a)
	{
		for (unsigned i = 0; i < 2000; i++) {
			size_t len = 1 + splitmix(&s) % sizeof(garbage);

			random_bytes(garbage, len, &s);
			assert_int_equal(mv__zip_decompress(algos[a], garbage,
							    len, out),
					 -EIO);
		}
	}
	free(out);
}

/*
 * No checksum in either format, so a flip inside a literal can decode to a
 * wrong page; what must hold is that every result is 0 or -EIO and that
 * nothing is read or written out of bounds.
 */
static void test_corrupted_data_never_crashes(void **state)
{
	uint8_t page[PAGE], buf[MV_ZIP_MAX_BYTES];
	uint8_t *out = malloc(PAGE);
	uint64_t s = 13;

	(void)state;
	assert_non_null(out);
	text_page(page, 8);
	for_each_algo(a)
	{
		int len = mv__zip_compress(algos[a], 1, page, buf, sizeof(buf));
		unsigned eio = 0, trials = 0;
		uint8_t *bad;

		assert_true(len > 0);
		bad = malloc(len);
		assert_non_null(bad);
		for (int bit = 0; bit < len * 8; bit++, trials++) {
			int ret;

			memcpy(bad, buf, len);
			bad[bit / 8] ^= 1u << (bit % 8);
			ret = mv__zip_decompress(algos[a], bad, len, out);
			assert_true(ret == 0 || ret == -EIO);
			eio += ret == -EIO;
		}
		for (unsigned i = 0; i < 4000; i++, trials++) {
			int ret;

			memcpy(bad, buf, len);
			for (unsigned k = 0; k < 8; k++)
				bad[splitmix(&s) % len] = (uint8_t)splitmix(&s);
			ret = mv__zip_decompress(algos[a], bad, len, out);
			assert_true(ret == 0 || ret == -EIO);
			eio += ret == -EIO;
		}
		print_message("%s: %u of %u corruptions detected as -EIO\n",
			      algo_names[a], eio, trials);
		assert_true(eio > 0);
		free(bad);
	}
	free(out);
}

/* Valid streams of the wrong amount of data are not a page. */
static void test_data_of_another_length_gives_eio(void **state)
{
	static uint8_t src[2 * PAGE];
	uint8_t buf[MV_ZIP_MAX_BYTES];
	uint8_t *out = malloc(PAGE);
	const size_t lens[] = { 1, PAGE / 2, PAGE - 1, PAGE + 1, 2 * PAGE };

	(void)state;
	assert_non_null(out);
	zero_heavy_page(src, 1);
	zero_heavy_page(src + PAGE, 2);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		int n = LZ4_compress_default((const char *)src, (char *)buf,
					     (int)lens[i], sizeof(buf));
		size_t z;

		assert_true(n > 0);
		assert_int_equal(mv__zip_decompress(MV_ZIP_LZ4, buf, n, out),
				 -EIO);
		z = ZSTD_compress(buf, sizeof(buf), src, lens[i], 1);
		assert_false(ZSTD_isError(z));
		assert_int_equal(mv__zip_decompress(MV_ZIP_ZSTD, buf, z, out),
				 -EIO);
	}
	free(out);
}

static void test_out_of_range_lengths_give_eio(void **state)
{
	uint8_t page[PAGE], buf[PAGE] = { 0 };

	(void)state;
	for_each_algo(a)
	{
		assert_int_equal(mv__zip_decompress(algos[a], buf, 0, page),
				 -EIO);
		assert_int_equal(mv__zip_decompress(algos[a], buf,
						    MV_ZIP_MAX_BYTES + 1, page),
				 -EIO);
	}
}

static void test_unknown_algorithm_gives_einval(void **state)
{
	uint8_t page[PAGE] = { 0 }, buf[MV_ZIP_MAX_BYTES];

	(void)state;
	assert_int_equal(mv__zip_compress(MV_ZIP_NALGOS, 1, page, buf,
					  sizeof(buf)),
			 -EINVAL);
	assert_int_equal(mv__zip_compress((enum mv__zip_algo) - 1, 1, page, buf,
					  sizeof(buf)),
			 -EINVAL);
	assert_int_equal(mv__zip_decompress(MV_ZIP_NALGOS, buf, 10, page),
			 -EINVAL);
}

static void *zstd_first_use(void *arg)
{
	uint8_t page[PAGE], buf[MV_ZIP_MAX_BYTES];
	int *ret = arg;

	text_page(page, 4);
	ret[0] = mv__zip_compress(MV_ZIP_ZSTD, 1, page, buf, sizeof(buf));
	ret[1] = mv__zip_compress(MV_ZIP_LZ4, 1, page, buf, sizeof(buf));
	return NULL;
}

/* A thread's zstd context is made at its first use; without memory for
 * it zstd says -ENOMEM, and LZ4, which needs none, still works. */
static void test_zstd_without_memory_for_a_context_gives_enomem(void **state)
{
	pthread_t tid;
	int ret[2];

	(void)state;
	mv__inject_fail(MV_INJ_ALLOC, 1, 0, ENOMEM);
	assert_int_equal(pthread_create(&tid, NULL, zstd_first_use, ret), 0);
	pthread_join(tid, NULL);
	mv__inject_reset();
	assert_int_equal(ret[0], -ENOMEM);
	assert_true(ret[1] > 0);
}

#define NTHREADS 4
#define THREAD_PAGES 300

static void *round_trip_main(void *arg)
{
	void (*const makers[])(uint8_t *,
			       uint64_t) = { text_page, zero_heavy_page,
					     code_page, partly_random_page };
	uint8_t page[PAGE], out[PAGE], buf[MV_ZIP_MAX_BYTES];
	uintptr_t id = (uintptr_t)arg, bad = 0;

	for (unsigned i = 0; i < THREAD_PAGES; i++) {
		enum mv__zip_algo algo = algos[i % 2];
		int len;

		makers[i % 4](page, id * 100000 + i);
		len = mv__zip_compress(algo, 1, page, buf, sizeof(buf));
		if (len <= 0 || mv__zip_decompress(algo, buf, len, out) ||
		    memcmp(page, out, PAGE))
			bad++;
	}
	return (void *)bad;
}

static void test_threads_compress_and_decompress_at_once(void **state)
{
	pthread_t tid[NTHREADS];
	uintptr_t bad = 0;

	(void)state;
	for (uintptr_t i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&tid[i], NULL, round_trip_main,
						(void *)i),
				 0);
	for (unsigned i = 0; i < NTHREADS; i++) {
		void *ret;

		pthread_join(tid[i], &ret);
		bad += (uintptr_t)ret;
	}
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text_page_round_trips_exactly),
		cmocka_unit_test(test_fast_searches_round_trip_exactly),
		cmocka_unit_test(test_zero_heavy_page_round_trips_exactly),
		cmocka_unit_test(test_code_page_round_trips_exactly),
		cmocka_unit_test(test_partly_random_page_round_trips_exactly),
		cmocka_unit_test(test_random_page_gives_e2big),
		cmocka_unit_test(test_page_too_big_for_the_buffer_gives_e2big),
		cmocka_unit_test(test_truncated_data_gives_eio),
		cmocka_unit_test(test_garbage_gives_eio),
		cmocka_unit_test(test_corrupted_data_never_crashes),
		cmocka_unit_test(test_data_of_another_length_gives_eio),
		cmocka_unit_test(test_out_of_range_lengths_give_eio),
		cmocka_unit_test(test_unknown_algorithm_gives_einval),
		cmocka_unit_test(
			test_zstd_without_memory_for_a_context_gives_enomem),
		cmocka_unit_test(test_threads_compress_and_decompress_at_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * test_guest.c - the guest workloads on plain memory: each runs without
 * integrity errors, and a byte changed behind a workload's back is reported
 * exactly (page, offset, expected, got), so these tests can fail.
 *
 * Lock ordering: none.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <lz4.h>
#include <zstd.h>

#include "guest.h"
#include "helper.h"

#define PAGE 4096u
#define MiB (1ull << 20)
/* A condition polled for longer than this has failed, even under TSan. */
#define WAIT_MS 10000

static uint8_t *guest_mem(uint64_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	return p;
}

static struct mvg_config config(enum mvg_kind kind, void *mem, uint64_t size,
				unsigned threads)
{
	struct mvg_config cfg = {
		.kind = kind,
		.mem = mem,
		.memsize = size,
		.threads = threads,
		.seed = 42,
	};

	return cfg;
}

struct stat_wait {
	struct mvg_workload *w;
	size_t field;
	uint64_t n;
	uint64_t v;
};

static bool stat_reached(void *arg)
{
	struct stat_wait *k = arg;
	struct mvg_stats st;

	mvg_get_stats(k->w, &st);
	memcpy(&k->v, (const char *)&st + k->field, sizeof(k->v));
	return k->v >= k->n;
}

/* Polls until the stats field at offset field reaches n; fails on timeout. */
static void wait_stat(struct mvg_workload *w, size_t field, uint64_t n)
{
	struct stat_wait k = { w, field, n, 0 };

	if (!th_wait_until(stat_reached, &k, WAIT_MS))
		fail_msg("stat at offset %zu stuck at %llu, want %llu", field,
			 (unsigned long long)k.v, (unsigned long long)n);
}

#define WAIT_STAT(w, name, n) wait_stat(w, offsetof(struct mvg_stats, name), n)

/* Every guest thread of the workload has gone to sleep (no host here). */
static void wait_idle(void)
{
	assert_true(th_wait_until(th_other_threads_sleep, NULL, WAIT_MS));
}

/*
 * Runs a workload until it has done at least reads reads and writes
 * writes, and returns its verified stats.
 */
static void run_clean(const struct mvg_config *cfg, uint64_t reads,
		      uint64_t writes, struct mvg_stats *st)
{
	struct mvg_workload *w;

	assert_int_equal(mvg_start(cfg, &w), 0);
	WAIT_STAT(w, reads, reads);
	WAIT_STAT(w, writes, writes);
	assert_int_equal(mvg_stop_and_verify(w, st), 0);
	assert_string_equal(st->first_error, "");
	assert_int_equal(st->integrity_errors, 0);
	assert_int_equal(st->ops, st->reads + st->writes);
}

/* A temporary image file of size bytes of random data in a fresh scratch
 * directory, unlinked by the caller (th_teardown removes the directory). */
static void make_image(char *path, size_t pathlen, uint8_t *data, size_t size)
{
	char dir[TH_DIR_LEN];
	uint64_t x = 0x1234567;
	int fd;

	th_scratch(dir, sizeof(dir), "guest");
	th_remove_at_teardown(dir);
	assert_true((size_t)snprintf(path, pathlen, "%s/image", dir) < pathlen);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	assert_true(fd >= 0);
	th_remove_at_teardown(path); /* should the test fail before it does */
	for (size_t i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		data[i] = (uint8_t)x;
	}
	assert_int_equal(write(fd, data, size), (ssize_t)size);
	close(fd);
}

static void test_kind_names_round_trip(void **state)
{
	enum mvg_kind k;

	(void)state;
	for (unsigned i = 0; i < MVG_NKINDS; i++) {
		assert_int_equal(mvg_kind_parse(mvg_kind_name(i), &k), 0);
		assert_int_equal(k, i);
	}
	assert_string_equal(mvg_kind_name(MVG_KVSTORE), "kvstore");
	assert_int_equal(mvg_kind_parse("bogus", &k), -EINVAL);
	assert_int_equal(mvg_kind_parse("", &k), -EINVAL);
	assert_int_equal(mvg_kind_parse(NULL, &k), -EINVAL);
}

static void test_bad_config_is_rejected(void **state)
{
	uint8_t *mem = guest_mem(16 * PAGE);
	struct mvg_workload *w = (void *)1;
	struct mvg_config cfg;

	(void)state;
	assert_int_equal(mvg_start(NULL, &w), -EINVAL);
	assert_null(w);
	cfg = config(MVG_RANDOM, mem, 16 * PAGE, 1);
	assert_int_equal(mvg_start(&cfg, NULL), -EINVAL);
	cfg.kind = MVG_NKINDS;
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	cfg = config(MVG_RANDOM, NULL, 16 * PAGE, 1);
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	cfg = config(MVG_RANDOM, mem + 8, 15 * PAGE, 1);
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	cfg = config(MVG_RANDOM, mem, 0, 1);
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	cfg = config(MVG_RANDOM, mem, 16 * PAGE - 1, 1);
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	cfg = config(MVG_RANDOM, mem, 16 * PAGE, 0);
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	cfg = config(MVG_RANDOM, mem, 16 * PAGE, 17);
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	cfg = config(MVG_KVSTORE, mem, 16 * PAGE, 1);
	cfg.zipf_s = -1;
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	cfg.zipf_s = NAN;
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	cfg.zipf_s = INFINITY;
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	cfg = config(MVG_IMAGE, mem, 16 * PAGE, 1);
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	assert_null(w);
	munmap(mem, 16 * PAGE);
}

static void test_image_must_exist_and_fit_in_memory(void **state)
{
	uint8_t *mem = guest_mem(4 * PAGE);
	uint8_t data[5 * PAGE];
	struct mvg_workload *w;
	struct mvg_config cfg;
	char path[TH_PATH_LEN];

	(void)state;
	make_image(path, sizeof(path), data, sizeof(data));
	cfg = config(MVG_IMAGE, mem, 4 * PAGE, 1);
	cfg.image_path = "/nonexistent/image";
	assert_int_equal(mvg_start(&cfg, &w), -ENOENT);
	cfg.image_path = path;
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	unlink(path);
	munmap(mem, 4 * PAGE);
}

static void test_idle_writes_each_page_once(void **state)
{
	uint64_t size = 4 * MiB, npages = size / PAGE;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_IDLE, mem, size, 4);
	struct mvg_workload *w;
	struct mvg_stats st;

	(void)state;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, writes, npages);
	/* asleep once every page is written, and wrote nothing more */
	wait_idle();
	mvg_get_stats(w, &st);
	assert_int_equal(st.writes, npages);
	assert_int_equal(st.reads, 0);
	assert_int_equal(mvg_stop_and_verify(w, &st), 0);
	assert_int_equal(st.integrity_errors, 0);
	assert_int_equal(st.ops, npages);
	assert_int_equal(st.pages_verified, npages);
	munmap(mem, size);
}

static void test_idle_stops_promptly(void **state)
{
	uint8_t *mem = guest_mem(64 * PAGE);
	struct mvg_config cfg = config(MVG_IDLE, mem, 64 * PAGE, 2);
	struct mvg_workload *w;
	uint64_t t0;

	(void)state;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, writes, 64);
	wait_idle();
	t0 = th_now_ms();
	mvg_stop(w);
	/* its naps are 20 ms; a stop that missed them would never end */
	assert_true(th_now_ms() - t0 < 5000);
	munmap(mem, 64 * PAGE);
}

static void test_think_time_does_not_delay_stop(void **state)
{
	uint8_t *mem = guest_mem(64 * PAGE);
	struct mvg_config cfg = config(MVG_RANDOM, mem, 64 * PAGE, 2);
	struct mvg_workload *w;
	struct mvg_stats st;
	uint64_t t0;

	(void)state;
	cfg.think_us = 10 * 1000 * 1000;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, ops, 2);
	wait_idle(); /* both threads in their 10 s pause */
	t0 = th_now_ms();
	assert_int_equal(mvg_stop_and_verify(w, &st), 0);
	/* well inside the 10 s pause, even on a loaded machine */
	assert_true(th_now_ms() - t0 < 5000);
	/* one op per thread before the long pause */
	assert_int_equal(st.ops, 2);
	assert_int_equal(st.integrity_errors, 0);
	munmap(mem, 64 * PAGE);
}

static void test_kvstore_runs_without_integrity_errors(void **state)
{
	uint64_t size = 8 * MiB;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_KVSTORE, mem, size, 3);
	struct mvg_stats st;

	(void)state;
	run_clean(&cfg, 3000, 3000, &st);
	assert_true(st.pages_verified > 0);
	munmap(mem, size);
}

static void test_kvstore_reads_seventy_percent(void **state)
{
	uint64_t size = 2 * MiB;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_KVSTORE, mem, size, 1);
	struct mvg_workload *w;
	struct mvg_stats st;
	double share;

	(void)state;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, ops, 5000);
	assert_int_equal(mvg_stop_and_verify(w, &st), 0);
	share = (double)st.reads / (double)st.ops;
	assert_true(share > 0.65 && share < 0.75);
	munmap(mem, size);
}

static void test_kvstore_runs_clean_at_any_skew(void **state)
{
	const double skews[] = { 0.2, 1.0, 2.5, 16.0 };
	uint64_t size = 1 * MiB;
	uint8_t *mem = guest_mem(size);
	struct mvg_stats st;

	(void)state;
	for (unsigned i = 0; i < sizeof(skews) / sizeof(skews[0]); i++) {
		struct mvg_config cfg = config(MVG_KVSTORE, mem, size, 2);

		memset(mem, 0, size);
		cfg.zipf_s = skews[i];
		run_clean(&cfg, 0, 1000, &st);
	}
	munmap(mem, size);
}

static void test_kvstore_fits_in_one_page(void **state)
{
	uint8_t *mem = guest_mem(PAGE);
	struct mvg_config cfg = config(MVG_KVSTORE, mem, PAGE, 1);
	struct mvg_stats st;

	(void)state;
	cfg.zipf_s = 0.01;
	run_clean(&cfg, 0, 1000, &st);
	munmap(mem, PAGE);
}

static void test_random_runs_without_integrity_errors(void **state)
{
	uint64_t size = 8 * MiB;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_RANDOM, mem, size, 4);
	struct mvg_stats st;

	(void)state;
	run_clean(&cfg, 3000, 3000, &st);
	assert_true(st.pages_verified >= st.reads);
	munmap(mem, size);
}

static void test_random_pages_are_incompressible(void **state)
{
	uint64_t size = 1 * MiB, written = 0;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_RANDOM, mem, size, 2);
	size_t cap = ZSTD_compressBound(PAGE);
	uint8_t *out = malloc(cap);
	struct mvg_stats st;

	(void)state;
	assert_non_null(out);
	run_clean(&cfg, 0, 1000, &st);
	for (uint64_t p = 0; p < size / PAGE; p++) {
		size_t n;

		if (!memcmp(mem + p * PAGE, mem + p * PAGE + 1, PAGE - 1) &&
		    !mem[p * PAGE])
			continue;
		n = ZSTD_compress(out, cap, mem + p * PAGE, PAGE, 3);
		assert_false(ZSTD_isError(n));
		assert_true(n >= PAGE);
		written++;
	}
	assert_true(written > 0);
	free(out);
	munmap(mem, size);
}

static const uint8_t zeros256[256];

static void test_kvstore_text_values_verify_and_compress(void **state)
{
	uint64_t size = 2 * MiB, full = 0;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_KVSTORE, mem, size, 1);
	char out[LZ4_COMPRESSBOUND(PAGE)];
	struct mvg_stats st;
	int n;

	(void)state;
	cfg.kv_text = true;
	/* enough records that some table pages fill up */
	run_clean(&cfg, 0, 4 * size / 256, &st);
	/* a page full of records still fits the compression cache's 2 KiB */
	for (uint64_t p = 0; p < size / PAGE; p++) {
		if (memchr(mem + p * PAGE, 0, PAGE) &&
		    !memcmp(mem + p * PAGE + PAGE - 256, zeros256, 256))
			continue; /* last record slot empty: not a full page */
		n = LZ4_compress_default((char *)mem + p * PAGE, out, PAGE,
					 sizeof(out));
		assert_true(n > 0 && n <= 2048);
		full++;
	}
	assert_true(full > 0);
	munmap(mem, size);
}

static void test_image_verifies_every_page_against_file(void **state)
{
	uint64_t size = 1 * MiB, npages = size / PAGE;
	uint8_t *mem = guest_mem(size);
	uint8_t *data = malloc(size);
	struct mvg_config cfg = config(MVG_IMAGE, mem, size, 3);
	struct mvg_workload *w;
	struct mvg_stats st;
	char path[TH_PATH_LEN];

	(void)state;
	assert_non_null(data);
	make_image(path, sizeof(path), data, size);
	memcpy(mem, data, size);
	cfg.image_path = path;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, pages_verified, npages);
	WAIT_STAT(w, writes, 1); /* the working set, after the first pass */
	/* the first pass says how far the load of the image is */
	WAIT_STAT(w, loaded_pages, npages);
	WAIT_STAT(w, load_pages, npages);
	assert_int_equal(mvg_stop_and_verify(w, &st), 0);
	assert_string_equal(st.first_error, "");
	assert_int_equal(st.integrity_errors, 0);
	/* the first pass, the working set, and the final pass */
	assert_true(st.pages_verified > 2 * npages);
	assert_true(st.writes > 0);
	unlink(path);
	free(data);
	munmap(mem, size);
}

static void test_image_tail_beyond_file_reads_zero(void **state)
{
	uint64_t size = 64 * PAGE;
	size_t isize = 20 * PAGE + 100;
	uint8_t *mem = guest_mem(size);
	uint8_t *data = malloc(isize);
	struct mvg_config cfg = config(MVG_IMAGE, mem, size, 2);
	struct mvg_workload *w;
	struct mvg_stats st;
	char path[TH_PATH_LEN];

	(void)state;
	assert_non_null(data);
	make_image(path, sizeof(path), data, isize);
	memcpy(mem, data, isize);
	cfg.image_path = path;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, pages_verified, 64); /* the first pass */
	assert_int_equal(mvg_stop_and_verify(w, &st), 0);
	assert_int_equal(st.integrity_errors, 0);
	/* and the final one */
	assert_true(st.pages_verified >= 2 * 64);
	unlink(path);
	free(data);
	munmap(mem, size);
}

static void test_image_reports_byte_that_differs_from_file(void **state)
{
	uint64_t size = 64 * PAGE;
	size_t isize = 20 * PAGE + 100;
	uint8_t *mem = guest_mem(size);
	uint8_t *data = malloc(isize);
	struct mvg_config cfg = config(MVG_IMAGE, mem, size, 2);
	struct mvg_workload *w;
	struct mvg_stats st;
	char path[TH_PATH_LEN], want[160];

	(void)state;
	assert_non_null(data);
	make_image(path, sizeof(path), data, isize);
	memcpy(mem, data, isize);
	/* inside the image's partial last page, past the file's end */
	mem[20 * PAGE + 200] = 0x5a;
	cfg.image_path = path;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, pages_verified, 64);
	assert_int_equal(mvg_stop_and_verify(w, &st), 0);
	assert_true(st.integrity_errors >= 1);
	snprintf(want, sizeof(want),
		 "image: ppn 20 offset 200: expected 0x00 got 0x5a (image)");
	assert_string_equal(st.first_error, want);
	unlink(path);
	free(data);
	munmap(mem, size);
}

/* On an image, idle reads and checks every page instead of writing it,
 * so the image stays as it was, and the final verification checks every
 * page against the image. */
static void test_idle_on_an_image_reads_every_page_and_keeps_it(void **state)
{
	uint64_t size = 64 * PAGE, npages = size / PAGE;
	uint8_t *mem = guest_mem(size);
	uint8_t *data = malloc(size);
	struct mvg_config cfg = config(MVG_IDLE, mem, size, 2);
	struct mvg_workload *w;
	struct mvg_stats st;
	char path[TH_PATH_LEN];

	(void)state;
	assert_non_null(data);
	make_image(path, sizeof(path), data, size);
	memcpy(mem, data, size);
	cfg.image_path = path;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, reads, npages);
	mvg_halt(w);
	mvg_get_stats(w, &st);
	assert_int_equal(st.load_pages, npages);
	assert_int_equal(st.loaded_pages, npages);
	assert_int_equal(mvg_verify_pages(w), npages);
	assert_int_equal(mvg_verify(w, NULL, &st), 0);
	mvg_stop(w);
	assert_int_equal(st.writes, 0);
	assert_int_equal(st.integrity_errors, 0);
	assert_int_equal(st.pages_verified, 2 * npages);
	assert_memory_equal(mem, data, size);
	unlink(path);
	free(data);
	munmap(mem, size);
}

static void test_idle_on_an_image_reports_a_changed_page(void **state)
{
	uint64_t size = 64 * PAGE, npages = size / PAGE;
	uint8_t *mem = guest_mem(size);
	uint8_t *data = malloc(size);
	struct mvg_config cfg = config(MVG_IDLE, mem, size, 1);
	struct mvg_workload *w;
	struct mvg_stats st;
	char path[TH_PATH_LEN], want[160];

	(void)state;
	assert_non_null(data);
	make_image(path, sizeof(path), data, size);
	memcpy(mem, data, size);
	cfg.image_path = path;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, reads, npages);
	wait_idle();
	mem[30 * PAGE + 7] ^= 0xff;
	assert_int_equal(mvg_stop_and_verify(w, &st), 0);
	assert_int_equal(st.integrity_errors, 1);
	snprintf(want, sizeof(want),
		 "idle: ppn 30 offset 7: expected 0x%02x got 0x%02x (image)",
		 data[30 * PAGE + 7], (uint8_t)(data[30 * PAGE + 7] ^ 0xff));
	assert_string_equal(st.first_error, want);
	unlink(path);
	free(data);
	munmap(mem, size);
}

/* random on an image: a page it never wrote must read as the image's. */
static void
test_random_on_an_image_checks_unwritten_pages_against_it(void **state)
{
	uint64_t size = 256 * PAGE;
	uint8_t *mem = guest_mem(size);
	uint8_t *data = malloc(size);
	struct mvg_config cfg = config(MVG_RANDOM, mem, size, 2);
	struct mvg_stats st;
	char path[TH_PATH_LEN];

	(void)state;
	assert_non_null(data);
	make_image(path, sizeof(path), data, size);
	memcpy(mem, data, size);
	cfg.image_path = path;
	run_clean(&cfg, 200, 200, &st);
	unlink(path);
	free(data);
	munmap(mem, size);
}

static void test_kvstore_refuses_an_image(void **state)
{
	uint64_t size = 16 * PAGE;
	uint8_t *mem = guest_mem(size);
	uint8_t data[PAGE];
	struct mvg_config cfg = config(MVG_KVSTORE, mem, size, 1);
	struct mvg_workload *w;
	char path[TH_PATH_LEN];

	(void)state;
	make_image(path, sizeof(path), data, sizeof(data));
	cfg.image_path = path;
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	unlink(path);
	munmap(mem, size);
}

/* What mvg_verify_pages() announces is what the verification reads. */
static void test_verify_pages_is_what_verify_reads(void **state)
{
	static const enum mvg_kind kinds[] = { MVG_IDLE, MVG_RANDOM,
					       MVG_KVSTORE };
	uint64_t size = 128 * PAGE, want;
	uint8_t *mem = guest_mem(size);
	struct mvg_workload *w;
	struct mvg_stats before, after;

	(void)state;
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct mvg_config cfg = config(kinds[k], mem, size, 2);

		memset(mem, 0, size);
		assert_int_equal(mvg_start(&cfg, &w), 0);
		WAIT_STAT(w, writes, 64);
		want = mvg_verify_pages(w);
		assert_true(want > 0 && want <= 128);
		mvg_get_stats(w, &before);
		assert_int_equal(mvg_verify(w, NULL, &after), 0);
		mvg_stop(w);
		assert_int_equal(after.pages_verified - before.pages_verified,
				 want);
	}
	munmap(mem, size);
}

static void test_verify_reports_corrupted_byte(void **state)
{
	uint64_t size = 64 * PAGE;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_IDLE, mem, size, 2);
	struct mvg_workload *w;
	struct mvg_stats st;
	char want[160];
	uint8_t old;

	(void)state;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, writes, 64);
	old = mem[37 * PAGE + 1234];
	mem[37 * PAGE + 1234] = (uint8_t)~old;
	assert_int_equal(mvg_stop_and_verify(w, &st), 0);
	assert_int_equal(st.integrity_errors, 1);
	snprintf(
		want, sizeof(want),
		"idle: ppn 37 offset 1234: expected 0x%02x got 0x%02x (version 1)",
		old, (uint8_t)~old);
	assert_string_equal(st.first_error, want);
	munmap(mem, size);
}

static void test_verify_reports_page_lost_to_zero(void **state)
{
	uint64_t size = 64 * PAGE;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_IDLE, mem, size, 2);
	struct mvg_workload *w;
	struct mvg_stats st;
	char want[160];
	size_t off = 0;

	(void)state;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, writes, 64);
	while (!mem[5 * PAGE + off])
		off++;
	snprintf(want, sizeof(want),
		 "idle: ppn 5 offset %zu: expected 0x%02x got 0x00 (version 1)",
		 off, mem[5 * PAGE + off]);
	memset(mem + 5 * PAGE, 0, PAGE);
	assert_int_equal(mvg_stop_and_verify(w, &st), 0);
	assert_int_equal(st.integrity_errors, 1);
	assert_string_equal(st.first_error, want);
	munmap(mem, size);
}

static void test_verify_keeps_the_workload_for_stop(void **state)
{
	uint64_t size = 2 * MiB, npages = size / PAGE;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_IDLE, mem, size, 2);
	struct mvg_workload *w;
	struct mvg_stats st;

	(void)state;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, writes, npages);
	assert_int_equal(mvg_verify(w, NULL, &st), 0);
	assert_int_equal(st.pages_verified, npages);
	assert_int_equal(st.integrity_errors, 0);
	mvg_stop(w);
	munmap(mem, size);
}

static void test_cancelled_verify_returns_ecanceled(void **state)
{
	uint64_t size = 2 * MiB, npages = size / PAGE;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_IDLE, mem, size, 2);
	struct mvg_workload *w;
	struct mvg_stats st;
	atomic_bool cancel;

	(void)state;
	atomic_init(&cancel, true);
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, writes, npages);
	assert_int_equal(mvg_verify(w, &cancel, &st), -ECANCELED);
	assert_int_equal(st.pages_verified, 0);
	mvg_stop(w);
	munmap(mem, size);
}

static void test_halted_workload_does_no_more_ops(void **state)
{
	uint64_t size = 1 * MiB;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_RANDOM, mem, size, 2);
	struct mvg_workload *w;
	struct mvg_stats a, b;

	(void)state;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	WAIT_STAT(w, ops, 100);
	mvg_request_stop(w);
	mvg_halt(w);
	mvg_get_stats(w, &a);
	assert_int_equal(mvg_verify(w, NULL, &b), 0);
	assert_int_equal(a.ops, b.ops);
	assert_int_equal(b.integrity_errors, 0);
	mvg_stop(w);
	munmap(mem, size);
}

/* The last CPU this process may run on (not always CPU 0). */
static int last_usable_cpu(void)
{
	cpu_set_t set;
	int last = -1;

	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			last = c;
	assert_true(last >= 0);
	return last;
}

static void test_pinned_workload_runs_its_threads_on_their_cpu(void **state)
{
	uint64_t size = 2 * MiB;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_KVSTORE, mem, size, 3);
	int before[64], cpu = last_usable_cpu();
	unsigned nbefore = th_task_ids(before, 64);
	struct mvg_workload *w;
	struct mvg_stats st;
	cpu_set_t cpus;

	(void)state;
	assert_true(nbefore <= 64);
	CPU_ZERO(&cpus);
	CPU_SET(cpu, &cpus);
	cfg.cpus = &cpus;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	/* the workload keeps its own copy of the set */
	CPU_ZERO(&cpus);
	WAIT_STAT(w, ops, 3000);
	th_assert_new_threads_pinned(before, nbefore, 3, cpu);
	assert_int_equal(mvg_stop_and_verify(w, &st), 0);
	assert_int_equal(st.integrity_errors, 0);
	munmap(mem, size);
}

static bool threads_back_to(void *arg)
{
	int tids[64];

	return th_task_ids(tids, 64) == *(unsigned *)arg;
}

static void
test_pinning_to_a_cpu_this_process_cannot_use_fails_the_start(void **state)
{
	uint64_t size = 64 * PAGE;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_RANDOM, mem, size, 2);
	struct mvg_workload *w = (void *)1;
	int tids[64], missing = -1;
	unsigned nbefore = th_task_ids(tids, 64);
	cpu_set_t usable, cpus;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(usable), &usable), 0);
	for (int c = 0; c < CPU_SETSIZE && missing < 0; c++)
		if (!CPU_ISSET(c, &usable))
			missing = c;
	assert_true(missing >= 0);
	CPU_ZERO(&cpus);
	CPU_SET(missing, &cpus);
	cfg.cpus = &cpus;
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	assert_null(w);
	/* no guest thread is left running, pinned or not */
	assert_true(th_wait_until(threads_back_to, &nbefore, WAIT_MS));
	munmap(mem, size);
}

static void test_empty_cpu_set_is_refused(void **state)
{
	uint64_t size = 64 * PAGE;
	uint8_t *mem = guest_mem(size);
	struct mvg_config cfg = config(MVG_IDLE, mem, size, 1);
	struct mvg_workload *w = (void *)1;
	cpu_set_t cpus;

	(void)state;
	CPU_ZERO(&cpus);
	cfg.cpus = &cpus;
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
	assert_null(w);
	munmap(mem, size);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind_names_round_trip),
		cmocka_unit_test(test_bad_config_is_rejected),
		cmocka_unit_test(test_image_must_exist_and_fit_in_memory),
		cmocka_unit_test(test_idle_writes_each_page_once),
		cmocka_unit_test(test_idle_stops_promptly),
		cmocka_unit_test(test_think_time_does_not_delay_stop),
		cmocka_unit_test(test_kvstore_runs_without_integrity_errors),
		cmocka_unit_test(test_kvstore_reads_seventy_percent),
		cmocka_unit_test(test_kvstore_runs_clean_at_any_skew),
		cmocka_unit_test(test_kvstore_fits_in_one_page),
		cmocka_unit_test(test_random_runs_without_integrity_errors),
		cmocka_unit_test(test_random_pages_are_incompressible),
		cmocka_unit_test(test_kvstore_text_values_verify_and_compress),
		cmocka_unit_test(test_image_verifies_every_page_against_file),
		cmocka_unit_test(test_image_tail_beyond_file_reads_zero),
		cmocka_unit_test(
			test_idle_on_an_image_reads_every_page_and_keeps_it),
		cmocka_unit_test(test_idle_on_an_image_reports_a_changed_page),
		cmocka_unit_test(
			test_random_on_an_image_checks_unwritten_pages_against_it),
		cmocka_unit_test(test_kvstore_refuses_an_image),
		cmocka_unit_test(test_verify_pages_is_what_verify_reads),
		cmocka_unit_test(
			test_image_reports_byte_that_differs_from_file),
		cmocka_unit_test(test_verify_keeps_the_workload_for_stop),
		cmocka_unit_test(test_cancelled_verify_returns_ecanceled),
		cmocka_unit_test(test_halted_workload_does_no_more_ops),
		cmocka_unit_test(
			test_pinned_workload_runs_its_threads_on_their_cpu),
		cmocka_unit_test(
			test_pinning_to_a_cpu_this_process_cannot_use_fails_the_start),
		cmocka_unit_test(test_empty_cpu_set_is_refused),
		cmocka_unit_test(test_verify_reports_corrupted_byte),
		cmocka_unit_test(test_verify_reports_page_lost_to_zero),
	};

	return th_run_tests(tests);
}

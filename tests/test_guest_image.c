// SPDX-License-Identifier: MIT
/*
 * test_guest_image.c - generated guest images (guest/image.c): the page
 * mix follows the mix asked for, VMs of one os have the same common pages
 * and different private ones, two os names share no page, text-like pages
 * compress and binary ones do not, the file written holds exactly the
 * pages (zero pages as holes), and VMs restored from one generated image
 * share its pages from the first touch, as with a real image file.
 *
 * Lock ordering: none.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <lz4.h>

#include "helper.h"
#include "image.h"
#include "memvisor.h"

#define PAGE 4096u
#define MiB (1ull << 20)

static struct mvg_image_spec spec(const char *os, uint64_t seed, uint64_t size)
{
	struct mvg_image_spec s = { .seed = seed,
				    .size = size,
				    .mix = MVG_IMAGE_MIX_DEFAULT };

	snprintf(s.os, sizeof(s.os), "%s", os);
	return s;
}

/* The share of each class, in percent, within tolerance of the mix. */
static void assert_mix(const struct mvg_image_mix *mix, unsigned tolerance)
{
	struct mvg_image_spec s = spec("debian", 1, 256 * MiB);
	uint64_t n = s.size / PAGE, count[3] = { 0 }, text = 0;
	uint8_t *cls = malloc(n);
	bool *t = malloc(n * sizeof(*t));
	double pct[3], text_pct;

	assert_non_null(cls);
	assert_non_null(t);
	s.mix = *mix;
	mvg_image_layout(&s, cls, t);
	for (uint64_t i = 0; i < n; i++) {
		assert_true(cls[i] <= MVG_IMAGE_PRIVATE);
		count[cls[i]]++;
		text += cls[i] != MVG_IMAGE_ZERO && t[i];
	}
	for (int c = 0; c < 3; c++)
		pct[c] = 100.0 * (double)count[c] / (double)n;
	text_pct = 100.0 * (double)text /
		   (double)(count[MVG_IMAGE_COMMON] + count[MVG_IMAGE_PRIVATE]);
	if (pct[0] < mix->zero_pct - tolerance ||
	    pct[0] > mix->zero_pct + tolerance ||
	    pct[1] < mix->common_pct - tolerance ||
	    pct[1] > mix->common_pct + tolerance ||
	    pct[2] < mix->private_pct - tolerance ||
	    pct[2] > mix->private_pct + tolerance ||
	    text_pct < mix->text_pct - tolerance ||
	    text_pct > mix->text_pct + tolerance)
		fail_msg(
			"got zero %.1f common %.1f private %.1f text %.1f, asked %u %u %u %u",
			pct[0], pct[1], pct[2], text_pct, mix->zero_pct,
			mix->common_pct, mix->private_pct, mix->text_pct);
	free(t);
	free(cls);
}

static void test_layout_follows_the_mix(void **state)
{
	const struct mvg_image_mix measured = MVG_IMAGE_MIX_DEFAULT;
	const struct mvg_image_mix other = { 20, 30, 50, 90 };

	(void)state;
	assert_mix(&measured, 3);
	assert_mix(&other, 3);
}

/* Zero, common and private pages come in runs, as in a real guest. */
static void test_pages_come_in_runs(void **state)
{
	struct mvg_image_spec s = spec("debian", 1, 64 * MiB);
	uint64_t n = s.size / PAGE, runs = 1;
	uint8_t *cls = malloc(n);

	(void)state;
	assert_non_null(cls);
	mvg_image_layout(&s, cls, NULL);
	for (uint64_t i = 1; i < n; i++)
		runs += cls[i] != cls[i - 1];
	/* extents of 1 to 64 pages, neighbours often of the same class */
	assert_true(runs < n / 8);
	assert_true(runs > n / 64);
	free(cls);
}

/* A larger image of an os starts with a smaller one's pages. */
static void test_larger_image_starts_like_a_smaller_one(void **state)
{
	struct mvg_image_spec a = spec("debian", 1, 8 * MiB);
	struct mvg_image_spec b = spec("debian", 1, 32 * MiB);
	uint8_t *ca = malloc(a.size / PAGE), *cb = malloc(b.size / PAGE);

	(void)state;
	assert_non_null(ca);
	assert_non_null(cb);
	mvg_image_layout(&a, ca, NULL);
	mvg_image_layout(&b, cb, NULL);
	assert_memory_equal(ca, cb, a.size / PAGE);
	free(ca);
	free(cb);
}

/*
 * Two VMs of one os (different seeds) have equal common pages and
 * different private ones; another os has none of their non-zero pages.
 */
static void test_same_os_shares_common_pages_only(void **state)
{
	struct mvg_image_spec a = spec("debian", 1, 4 * MiB);
	struct mvg_image_spec b = spec("debian", 2, 4 * MiB);
	struct mvg_image_spec c = spec("fedora", 1, 4 * MiB);
	uint64_t n = a.size / PAGE, common = 0, private = 0;
	uint8_t *cls = malloc(n), *cc = malloc(n);
	bool *text = malloc(n * sizeof(*text)), *tc = malloc(n * sizeof(*tc));
	uint8_t pa[PAGE], pb[PAGE], pc[PAGE];

	(void)state;
	assert_true(cls && cc && text && tc);
	mvg_image_layout(&a, cls, text);
	mvg_image_layout(&c, cc, tc);
	for (uint64_t i = 0; i < n; i++) {
		if (cls[i] == MVG_IMAGE_ZERO)
			continue;
		mvg_image_page(&a, i, cls[i], text[i], pa);
		mvg_image_page(&b, i, cls[i], text[i], pb);
		if (cls[i] == MVG_IMAGE_COMMON) {
			assert_memory_equal(pa, pb, PAGE);
			common++;
		} else {
			assert_memory_not_equal(pa, pb, PAGE);
			private++;
		}
		/* fedora's page at the same place, and at every place of
		 * the same kind, is another */
		for (uint64_t j = 0; j < n; j += 37)
			if (cc[j] != MVG_IMAGE_ZERO && (j == i || !(i % 64))) {
				mvg_image_page(&c, j, cc[j], tc[j], pc);
				assert_memory_not_equal(pa, pc, PAGE);
			}
	}
	assert_true(common > 0);
	assert_true(private > 0);
	free(cls);
	free(cc);
	free(text);
	free(tc);
}

/* Text-like pages fit the compression cache (2 KiB); binary ones not. */
static void test_text_pages_compress_and_binary_pages_do_not(void **state)
{
	struct mvg_image_spec s = spec("debian", 1, 64 * MiB);
	char page[PAGE], out[LZ4_COMPRESSBOUND(PAGE)];
	int n;

	(void)state;
	for (uint64_t ppn = 0; ppn < 64; ppn++) {
		mvg_image_page(&s, ppn, MVG_IMAGE_COMMON, true, page);
		assert_true(memchr(page, '\n', PAGE) != NULL);
		n = LZ4_compress_default(page, out, PAGE, sizeof(out));
		assert_true(n > 0 && n <= (int)PAGE / 2);
		mvg_image_page(&s, ppn, MVG_IMAGE_PRIVATE, false, page);
		n = LZ4_compress_default(page, out, PAGE, sizeof(out));
		assert_true(n > (int)PAGE / 2);
	}
}

static bool all_zero(const uint8_t *p)
{
	for (unsigned i = 0; i < PAGE; i++)
		if (p[i])
			return false;
	return true;
}

/* The file holds the pages, zero pages as holes, and nothing else. */
static void test_created_image_holds_every_page(void **state)
{
	struct mvg_image_spec s = spec("debian", 7, 16 * MiB);
	uint64_t n = s.size / PAGE, zero = 0;
	uint8_t *cls = malloc(n), got[PAGE], want[PAGE];
	bool *text = malloc(n * sizeof(*text));
	struct stat st;
	int fd;

	(void)state;
	assert_true(cls && text);
	assert_int_equal(mvg_image_create(&s, NULL, &fd, NULL, NULL), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, s.size);
	mvg_image_layout(&s, cls, text);
	for (uint64_t i = 0; i < n; i++) {
		assert_int_equal(pread(fd, got, PAGE, (off_t)(i * PAGE)), PAGE);
		if (cls[i] == MVG_IMAGE_ZERO) {
			assert_true(all_zero(got));
			zero++;
			continue;
		}
		assert_false(all_zero(got));
		mvg_image_page(&s, i, cls[i], text[i], want);
		assert_memory_equal(got, want, PAGE);
	}
	/* the zero pages take no memory */
	assert_true((uint64_t)st.st_blocks * 512 <= (n - zero) * PAGE);
	close(fd);
	free(cls);
	free(text);
}

struct progress_seen {
	uint64_t calls, last, total;
};

static int on_progress(void *arg, uint64_t done, uint64_t total)
{
	struct progress_seen *p = arg;

	assert_true(done >= p->last);
	p->calls++;
	p->last = done;
	p->total = total;
	return 0;
}

static void test_writing_reports_progress_to_the_end(void **state)
{
	struct mvg_image_spec s = spec("debian", 7, 64 * MiB);
	struct progress_seen p = { 0 };
	int fd;

	(void)state;
	assert_int_equal(mvg_image_create(&s, NULL, &fd, on_progress, &p), 0);
	assert_true(p.calls >= 2);
	assert_int_equal(p.last, s.size);
	assert_int_equal(p.total, s.size);
	close(fd);
}

static int stop_at_once(void *arg, uint64_t done, uint64_t total)
{
	(void)arg;
	(void)done;
	(void)total;
	return -EINTR;
}

static void test_progress_can_stop_the_writing(void **state)
{
	struct mvg_image_spec s = spec("debian", 7, 64 * MiB);
	int fd = -1;

	(void)state;
	assert_int_equal(mvg_image_create(&s, NULL, &fd, stop_at_once, NULL),
			 -EINTR);
	assert_int_equal(fd, -1);
}

/* An image in a directory is a file without a name: nothing is left. */
static void test_image_in_a_directory_leaves_no_file(void **state)
{
	struct mvg_image_spec s = spec("debian", 7, 4 * MiB);
	char dir[TH_DIR_LEN], path[64];
	uint8_t cls[1024], got[PAGE], want[PAGE];
	bool text[1024];
	int fd, fd2;

	(void)state;
	th_scratch(dir, sizeof(dir), "guest_image");
	th_remove_at_teardown(dir);
	assert_int_equal(mvg_image_create(&s, dir, &fd, NULL, NULL), 0);
	assert_int_equal(rmdir(dir), 0); /* empty */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	mvg_image_layout(&s, cls, text);
	for (unsigned i = 0; i < 1024; i++) {
		if (cls[i] == MVG_IMAGE_ZERO)
			continue;
		assert_int_equal(pread(fd, got, PAGE, i * (off_t)PAGE), PAGE);
		mvg_image_page(&s, i, cls[i], text[i], want);
		assert_memory_equal(got, want, PAGE);
	}
	/* the engine and the guest open it by that path */
	fd2 = open(path, O_RDONLY);
	assert_true(fd2 >= 0);
	assert_int_equal(pread(fd2, got, PAGE, 0), PAGE);
	close(fd2);
	close(fd);
}

static void test_bad_mix_or_size_is_refused(void **state)
{
	struct mvg_image_spec s = spec("debian", 7, 1 * MiB);
	int fd = -1;

	(void)state;
	s.mix.zero_pct = 50; /* 50 + 23 + 11 */
	assert_int_equal(mvg_image_create(&s, NULL, &fd, NULL, NULL), -EINVAL);
	s = spec("debian", 7, 1 * MiB + 1);
	assert_int_equal(mvg_image_create(&s, NULL, &fd, NULL, NULL), -EINVAL);
	s = spec("debian", 7, 1 * MiB);
	s.mix.text_pct = 101;
	assert_int_equal(mvg_image_create(&s, NULL, &fd, NULL, NULL), -EINVAL);
	assert_int_equal(fd, -1);
}

/*
 * Two VMs restored from one generated image (its /proc/self/fd path, as
 * `memvisor run` gives it) read it back exactly and share its non-zero
 * pages from the first touch, as VMs restored from one image file do.
 */
static void test_vms_restored_from_one_generated_image_share_it(void **state)
{
	struct mvg_image_spec s = spec("debian", 3, 4 * MiB);
	uint64_t n = s.size / PAGE, nonzero = 0;
	uint8_t *cls = malloc(n), want[PAGE];
	bool *text = malloc(n * sizeof(*text));
	struct mv_vm_config cfg;
	struct mv_vm_stats st;
	struct th_host t;
	char path[64];
	mv_vm *vm[2];
	int fd;

	(void)state;
	assert_true(cls && text);
	assert_int_equal(mvg_image_create(&s, NULL, &fd, NULL, NULL), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	mvg_image_layout(&s, cls, text);
	th_host_create(&t, 64 * MiB, NULL);
	for (int v = 0; v < 2; v++) {
		mv_vm_config_init(&cfg);
		snprintf(cfg.name, sizeof(cfg.name), "vm%d", v);
		cfg.memsize_bytes = s.size;
		cfg.image_path = path;
		snprintf(cfg.salt, sizeof(cfg.salt), "debian");
		assert_int_equal(mv_vm_create(t.host, &cfg, &vm[v]), 0);
	}
	for (int v = 0; v < 2; v++) {
		const uint8_t *mem = mv_vm_mem(vm[v]);

		for (uint64_t i = 0; i < n; i++) {
			if (cls[i] == MVG_IMAGE_ZERO) {
				assert_true(all_zero(mem + i * PAGE));
				continue;
			}
			nonzero += !v;
			mvg_image_page(&s, i, cls[i], text[i], want);
			assert_memory_equal(mem + i * PAGE, want, PAGE);
		}
	}
	/* the second VM maps every non-zero page the first one filled */
	assert_int_equal(mv_vm_stats(vm[1], &st), 0);
	assert_int_equal(st.shrd_pages, nonzero);
	for (int v = 0; v < 2; v++)
		mv_vm_destroy(vm[v]);
	th_host_destroy(&t);
	close(fd);
	free(cls);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_follows_the_mix),
		cmocka_unit_test(test_pages_come_in_runs),
		cmocka_unit_test(test_larger_image_starts_like_a_smaller_one),
		cmocka_unit_test(test_same_os_shares_common_pages_only),
		cmocka_unit_test(
			test_text_pages_compress_and_binary_pages_do_not),
		cmocka_unit_test(test_created_image_holds_every_page),
		cmocka_unit_test(test_writing_reports_progress_to_the_end),
		cmocka_unit_test(test_progress_can_stop_the_writing),
		cmocka_unit_test(test_image_in_a_directory_leaves_no_file),
		cmocka_unit_test(test_bad_mix_or_size_is_refused),
		cmocka_unit_test(
			test_vms_restored_from_one_generated_image_share_it),
	};

	return th_run_tests(tests);
}

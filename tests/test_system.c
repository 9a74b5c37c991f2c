// SPDX-License-Identifier: MIT
/*
 * test_system.c - the kernel calls of system.c that the mechanisms share:
 * here, dropping many ranges in one process_madvise (mv__dontneed_batch).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include <cmocka.h>

#include "inject.h"
#include "internal.h"

#define PAGES 8

/* Two ranges of present, non-zero pages (pages 0-1 and 4-6), in iov. */
static uint8_t *two_ranges(struct iovec iov[2])
{
	uint8_t *m = mmap(NULL, PAGES * MV_PAGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(m != MAP_FAILED);
	memset(m, 0xa5, PAGES * MV_PAGE_SIZE);
	iov[0] = (struct iovec){ m, 2 * MV_PAGE_SIZE };
	iov[1] = (struct iovec){ m + 4 * MV_PAGE_SIZE, 3 * MV_PAGE_SIZE };
	return m;
}

/* Pages of m dropped (reading zero) are exactly those of the two ranges. */
static void assert_dropped(const uint8_t *m)
{
	for (unsigned p = 0; p < PAGES; p++) {
		bool in = p < 2 || (p >= 4 && p < 7);

		assert_int_equal(m[p * MV_PAGE_SIZE], in ? 0 : 0xa5);
	}
}

/*
 * A call that fails after the kernel has shown it has the call (a range it
 * refused, memory short) is that call's failure: the caller drops those
 * ranges with madvise(), and the next batch is tried in one call again,
 * not given up for the rest of the process's life.
 */
static void test_batch_is_tried_again_after_one_failed_call(void **state)
{
	static const int errs[] = { EINVAL, EPERM, ENOMEM };
	struct iovec iov[2];
	uint8_t *m;

	(void)state;
	m = two_ranges(iov);
	if (mv__dontneed_batch(iov, 2) != 2) {
		munmap(m, PAGES * MV_PAGE_SIZE);
		skip(); /* a kernel without the call: nothing to show */
	}
	assert_dropped(m);
	memset(m, 0xa5, PAGES * MV_PAGE_SIZE);
	for (unsigned i = 0; i < 3; i++) {
		mv__inject_fail(MV_INJ_PROCESS_MADVISE, 1, 1, errs[i]);
		assert_int_equal(mv__dontneed_batch(iov, 2), 0);
		assert_int_equal(mv__inject_hits(MV_INJ_PROCESS_MADVISE), 1);
		mv__inject_reset();
		/* nothing dropped by the failed call */
		assert_int_equal(m[0], 0xa5);
		assert_int_equal(m[4 * MV_PAGE_SIZE], 0xa5);
	}
	assert_int_equal(mv__dontneed_batch(iov, 2), 2);
	assert_dropped(m);
	munmap(m, PAGES * MV_PAGE_SIZE);
}

/* One range is not a batch: the caller's madvise() does it. */
static void test_single_range_is_left_to_madvise(void **state)
{
	struct iovec iov[2];
	uint8_t *m;

	(void)state;
	m = two_ranges(iov);
	assert_int_equal(mv__dontneed_batch(iov, 1), 0);
	assert_int_equal(m[0], 0xa5);
	munmap(m, PAGES * MV_PAGE_SIZE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_batch_is_tried_again_after_one_failed_call),
		cmocka_unit_test(test_single_range_is_left_to_madvise),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * test_maps.c - the mapping bound a VMM (or `memvisor check`) reads before
 * it starts VMs: each VM's own mappings, two more per guest page when page
 * sharing can reach it, and the limit and use of this process.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "inject.h"
#include "internal.h"

static void test_vm_without_sharing_needs_its_own_mappings_only(void **state)
{
	(void)state;
	assert_int_equal(mv_vm_maps_bound(1ull << 30, 0), MV_VM_MAPS);
}

static void test_sharing_costs_at_most_two_mappings_per_guest_page(void **state)
{
	(void)state;
	assert_int_equal(mv_vm_maps_bound(1ull << 30, 1),
			 MV_VM_MAPS + 2 * (1ull << 30) / MV_PAGE_SIZE);
	assert_int_equal(mv_vm_maps_bound(MV_PAGE_SIZE, 1), MV_VM_MAPS + 2);
}

static void test_map_count_reads_the_limit_and_the_use(void **state)
{
	long used, max, reserve;

	(void)state;
	mv__inject_max_map_count(12345);
	assert_int_equal(mv_map_count(&used, &max, &reserve), 0);
	mv__inject_max_map_count(0);
	assert_int_equal(max, 12345);
	assert_true(used > 0);
	assert_int_equal(reserve, MV_MAP_COUNT_SLACK);
	assert_int_equal(mv_map_count(NULL, &max, &reserve), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_vm_without_sharing_needs_its_own_mappings_only),
		cmocka_unit_test(
			test_sharing_costs_at_most_two_mappings_per_guest_page),
		cmocka_unit_test(test_map_count_reads_the_limit_and_the_use),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * test_preflight.c - what `memvisor check` and the start of `memvisor run`
 * say about a scenario on a machine: the mapping bound of its guests, the
 * exact sysctl when vm.max_map_count is below it, and a host larger than
 * physical memory.  The machine is given as numbers, so any can be tested.
 */
#include "../tools/preflight.c"
#include "../tools/scenario.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "helper.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void load(struct scenario *sc, const char *text)
{
	char err[512];

	if (scenario_load_string(text, "t.ini", sc, err, sizeof(err)))
		fail_msg("%s", err);
}

/* What preflight_print() writes to info and warn, as two strings. */
struct printed {
	char *info, *warn;
	size_t ninfo, nwarn;
	int warnings;
};

static void print(const struct scenario *sc, const struct preflight *pf,
		  struct printed *out)
{
	FILE *info = open_memstream(&out->info, &out->ninfo);
	FILE *warn = open_memstream(&out->warn, &out->nwarn);

	assert_non_null(info);
	assert_non_null(warn);
	out->warnings = preflight_print(sc, pf, info, warn);
	fclose(info);
	fclose(warn);
}

static void printed_free(struct printed *out)
{
	free(out->info);
	free(out->warn);
}

/* A machine with plenty of memory and mappings unless a test says not. */
static struct preflight machine(const struct scenario *sc)
{
	struct preflight pf = { .phys_bytes = 64 * GiB,
				.map_max = 1 << 30,
				.map_used = 100,
				.map_reserve = 256 };

	pf.guest_maps = preflight_guest_maps(sc, &pf.sharing_vms);
	return pf;
}

static void test_sharing_vms_count_two_mappings_per_page(void **state)
{
	uint64_t base = mv_vm_maps_bound(0, 0);
	struct scenario sc;
	size_t sharing;

	(void)state;
	load(&sc, "[vm a]\nmemsize = 4M\n[vm b]\nmemsize = 8M\n");
	assert_int_equal(mv_vm_maps_bound(4 * MiB, 1) - base, 2 * 1024);
	/* and a stack and guard for each of the two guest threads */
	assert_int_equal(preflight_guest_maps(&sc, &sharing),
			 2 * base + 2 * (1024 + 2048) + 2 * 2);
	assert_int_equal(sharing, 2);
	scenario_free(&sc);
}

static void
test_vms_page_sharing_cannot_reach_count_their_own_only(void **state)
{
	uint64_t base = mv_vm_maps_bound(0, 0);
	struct scenario sc;
	size_t sharing;

	(void)state;
	load(&sc,
	     "[vm a]\nmemsize = 4M\n[vm b]\nmemsize = 8M\n[advanced]\nMem.ShareScanGHz = 0\n");
	assert_int_equal(preflight_guest_maps(&sc, &sharing), 2 * base + 2 * 2);
	assert_int_equal(sharing, 0);
	scenario_free(&sc);
}

static void test_low_limit_gets_the_exact_sysctl(void **state)
{
	struct scenario sc;
	struct preflight pf;
	struct printed out;
	char want[96];

	(void)state;
	load(&sc, "[vm a]\nmemsize = 1G\n");
	pf = machine(&sc);
	pf.map_max = 65530;
	print(&sc, &pf, &out);
	snprintf(want, sizeof(want), "sysctl -w vm.max_map_count=%llu",
		 (unsigned long long)(pf.guest_maps + 100 + 256));
	assert_non_null(strstr(out.warn, want));
	assert_non_null(strstr(out.warn, "stops safely"));
	assert_int_equal(out.warnings, 1);
	assert_non_null(strstr(out.info, "an upper bound"));
	printed_free(&out);
	scenario_free(&sc);
}

static void test_enough_mappings_get_no_sysctl(void **state)
{
	struct scenario sc;
	struct preflight pf;
	struct printed out;

	(void)state;
	load(&sc, "[vm a]\nmemsize = 1G\n");
	pf = machine(&sc);
	print(&sc, &pf, &out);
	assert_null(strstr(out.warn, "sysctl"));
	assert_int_equal(out.warnings, 0);
	assert_non_null(strstr(out.info, "the guests may need up to"));
	printed_free(&out);
	scenario_free(&sc);
}

static void test_unknown_limit_gets_no_sysctl(void **state)
{
	struct scenario sc;
	struct preflight pf;
	struct printed out;

	(void)state;
	load(&sc, "[vm a]\nmemsize = 1G\n");
	pf = machine(&sc);
	pf.map_max = -1;
	pf.map_used = -1;
	print(&sc, &pf, &out);
	assert_int_equal(out.warnings, 0);
	assert_non_null(strstr(out.info, "unknown"));
	printed_free(&out);
	scenario_free(&sc);
}

static void test_host_larger_than_physical_memory_is_warned(void **state)
{
	struct scenario sc;
	struct preflight pf;
	struct printed out;

	(void)state;
	load(&sc, "[host]\nmemsize = 8G\n[vm a]\nmemsize = 1M\n");
	pf = machine(&sc);
	pf.phys_bytes = 4 * GiB;
	print(&sc, &pf, &out);
	assert_non_null(strstr(out.warn, "more than this machine's"));
	assert_int_equal(out.warnings, 1);
	printed_free(&out);
	scenario_free(&sc);
}

static void test_host_within_physical_memory_is_not_warned(void **state)
{
	struct scenario sc;
	struct preflight pf;
	struct printed out;

	(void)state;
	load(&sc, "[host]\nmemsize = 4G\n[vm a]\nmemsize = 1M\n");
	pf = machine(&sc);
	pf.phys_bytes = 4 * GiB;
	print(&sc, &pf, &out);
	assert_int_equal(out.nwarn, 0);
	printed_free(&out);
	scenario_free(&sc);
}

static void test_damon_paddr_monitor_is_warned(void **state)
{
	struct scenario sc;
	struct preflight pf;
	struct printed out;

	(void)state;
	load(&sc, "[host]\nmemsize = 1G\n[vm a]\nmemsize = 1M\n");
	pf = machine(&sc);
	pf.damon_paddr = 1;
	pf.damon_first = 3;
	print(&sc, &pf, &out);
	assert_non_null(
		strstr(out.warn, "DAMON monitor of physical addresses"));
	assert_non_null(strstr(out.warn, "kdamonds/3/state"));
	assert_int_equal(out.warnings, 1);
	printed_free(&out);
	scenario_free(&sc);
}

/* A file under dir (made with its parents), holding text. */
static void put(const char *dir, const char *rel, const char *text)
{
	char path[TH_PATH_LEN], cmd[TH_PATH_LEN + 40];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	f = fopen(path, "we");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Only a kdamond that is on and monitors paddr counts: off ones, vaddr
 * ones and an unreadable tree do not. */
static void test_damon_paddr_monitors_are_found_in_sysfs(void **state)
{
	char root[TH_DIR_LEN], cmd[TH_DIR_LEN + 16];
	unsigned first = 99;

	(void)state;
	th_scratch(root, sizeof(root), "preflight");
	assert_int_equal(preflight_damon_paddr(root, &first), 0);
	put(root, "0/state", "off\n");
	put(root, "0/contexts/0/operations", "paddr\n");
	put(root, "1/state", "on\n");
	put(root, "1/contexts/0/operations", "vaddr\n");
	assert_int_equal(preflight_damon_paddr(root, &first), 0);
	put(root, "2/state", "on\n");
	put(root, "2/contexts/0/operations", "vaddr\n");
	put(root, "2/contexts/1/operations", "paddr\n");
	assert_int_equal(preflight_damon_paddr(root, &first), 1);
	assert_int_equal(first, 2);
	put(root, "0/state", "on\n");
	assert_int_equal(preflight_damon_paddr(root, &first), 2);
	assert_int_equal(first, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(preflight_damon_paddr(root, &first), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sharing_vms_count_two_mappings_per_page),
		cmocka_unit_test(
			test_vms_page_sharing_cannot_reach_count_their_own_only),
		cmocka_unit_test(test_low_limit_gets_the_exact_sysctl),
		cmocka_unit_test(test_enough_mappings_get_no_sysctl),
		cmocka_unit_test(test_unknown_limit_gets_no_sysctl),
		cmocka_unit_test(
			test_host_larger_than_physical_memory_is_warned),
		cmocka_unit_test(
			test_host_within_physical_memory_is_not_warned),
		cmocka_unit_test(test_damon_paddr_monitor_is_warned),
		cmocka_unit_test(test_damon_paddr_monitors_are_found_in_sysfs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

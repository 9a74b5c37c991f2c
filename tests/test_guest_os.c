// SPDX-License-Identifier: MIT
/*
 * test_guest_os.c - the guest OS's page allocator on its own: each page
 * handed out once, the last freed handed out first, the balloon's pinned
 * pages never handed out, bad frees refused whole, and deflate-on-OOM
 * called only when the free list is dry and never for the balloon itself.
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "helper.h"
#include "os.h"

#define NPAGES 256u

struct fixture {
	void *mem;
	struct mvg_os *os;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	f->mem = aligned_alloc(4096, NPAGES * 4096);
	assert_non_null(f->mem);
	assert_int_equal(mvg_os_create(f->mem, NPAGES * 4096ull, &f->os), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	mvg_os_destroy(f->os);
	free(f->mem);
	free(f);
	return 0;
}

static void test_every_page_is_handed_out_once(void **state)
{
	struct fixture *f = *state;
	uint32_t pfns[NPAGES], one;
	uint8_t seen[NPAGES] = { 0 };
	struct mvg_os_stats st;

	assert_int_equal(mvg_os_alloc(f->os, NPAGES, pfns, 0), NPAGES);
	for (unsigned i = 0; i < NPAGES; i++) {
		assert_true(pfns[i] < NPAGES);
		assert_int_equal(seen[pfns[i]]++, 0);
	}
	assert_int_equal(mvg_os_alloc(f->os, 1, &one, 0), -ENOMEM);
	mvg_os_get_stats(f->os, &st);
	assert_int_equal(st.free_pages, 0);
	assert_int_equal(st.used_pages, NPAGES);
	assert_int_equal(st.alloc_failures, 1);
}

static void test_short_free_list_gives_what_it_has(void **state)
{
	struct fixture *f = *state;
	uint32_t pfns[NPAGES];

	assert_int_equal(mvg_os_alloc(f->os, NPAGES - 3, pfns, 0), NPAGES - 3);
	assert_int_equal(mvg_os_alloc(f->os, 10, pfns, 0), 3);
}

static void test_last_freed_page_is_handed_out_first(void **state)
{
	struct fixture *f = *state;
	uint32_t pfns[8], again[2];

	assert_int_equal(mvg_os_alloc(f->os, 8, pfns, 0), 8);
	assert_int_equal(mvg_os_free(f->os, &pfns[2], 1, 0), 0);
	assert_int_equal(mvg_os_free(f->os, &pfns[5], 1, 0), 0);
	assert_int_equal(mvg_os_alloc(f->os, 2, again, 0), 2);
	assert_int_equal(again[0], pfns[5]);
	assert_int_equal(again[1], pfns[2]);
}

static void test_pinned_pages_are_never_handed_out(void **state)
{
	struct fixture *f = *state;
	uint32_t pinned[64], pfns[NPAGES];
	uint8_t is_pinned[NPAGES] = { 0 };
	struct mvg_os_stats st;
	int got;

	assert_int_equal(mvg_os_alloc(f->os, 64, pinned, MVG_OS_BALLOON), 64);
	for (unsigned i = 0; i < 64; i++)
		is_pinned[pinned[i]] = 1;
	got = mvg_os_alloc(f->os, NPAGES, pfns, 0);
	assert_int_equal(got, NPAGES - 64);
	for (int i = 0; i < got; i++)
		assert_false(is_pinned[pfns[i]]);
	mvg_os_get_stats(f->os, &st);
	assert_int_equal(st.pinned_pages, 64);
	/* an application cannot free the balloon's pages */
	assert_int_equal(mvg_os_free(f->os, pinned, 1, 0), -EINVAL);
	assert_int_equal(mvg_os_free(f->os, pinned, 64, MVG_OS_BALLOON), 0);
	assert_int_equal(mvg_os_alloc(f->os, NPAGES, pfns, 0), 64);
}

static void test_bad_frees_change_nothing(void **state)
{
	struct fixture *f = *state;
	uint32_t pfns[4], bad[3];
	struct mvg_os_stats before, after;

	assert_int_equal(mvg_os_alloc(f->os, 4, pfns, 0), 4);
	mvg_os_get_stats(f->os, &before);
	bad[0] = pfns[0];
	bad[1] = NPAGES; /* out of range */
	assert_int_equal(mvg_os_free(f->os, bad, 2, 0), -EINVAL);
	bad[1] = pfns[1];
	bad[2] = pfns[0]; /* repeated */
	assert_int_equal(mvg_os_free(f->os, bad, 3, 0), -EINVAL);
	/* not the balloon's */
	assert_int_equal(mvg_os_free(f->os, pfns, 1, MVG_OS_BALLOON), -EINVAL);
	mvg_os_get_stats(f->os, &after);
	assert_int_equal(after.bad_frees, before.bad_frees + 3);
	assert_int_equal(after.free_pages, before.free_pages);
	assert_int_equal(after.used_pages, 4);
	/* and all four are still the application's to free, once */
	assert_int_equal(mvg_os_free(f->os, pfns, 4, 0), 0);
	assert_int_equal(mvg_os_free(f->os, pfns, 1, 0), -EINVAL);
}

struct oom_pool {
	struct mvg_os *os;
	uint32_t pfns[NPAGES];
	unsigned n;
	unsigned calls;
};

/* A stand-in for the balloon: gives back up to 16 pinned pages per call. */
static unsigned give_back(void *arg, unsigned want)
{
	struct oom_pool *p = arg;
	unsigned k = p->n < 16 ? p->n : 16;

	(void)want;
	p->calls++;
	p->n -= k;
	assert_int_equal(mvg_os_free(p->os, p->pfns + p->n, k, MVG_OS_BALLOON),
			 0);
	return k;
}

static void test_empty_free_list_calls_the_oom_notifier(void **state)
{
	struct fixture *f = *state;
	struct oom_pool p = { .os = f->os };
	uint32_t pfns[NPAGES];
	struct mvg_os_stats st;

	assert_int_equal(mvg_os_alloc(f->os, 40, p.pfns, MVG_OS_BALLOON), 40);
	p.n = 40;
	mvg_os_set_oom_notifier(f->os, give_back, &p);
	assert_int_equal(mvg_os_alloc(f->os, NPAGES - 40, pfns, 0),
			 NPAGES - 40);
	assert_int_equal(p.calls, 0); /* the free list sufficed */
	assert_int_equal(mvg_os_alloc(f->os, 20, pfns, 0), 20);
	assert_int_equal(p.calls, 2);
	assert_int_equal(mvg_os_alloc(f->os, 30, pfns, 0), 20);
	mvg_os_get_stats(f->os, &st);
	assert_int_equal(st.oom_pages, 40);
	assert_int_equal(st.pinned_pages, 0);
	assert_int_equal(st.free_pages, 0);
	mvg_os_set_oom_notifier(f->os, NULL, NULL);
}

static void test_balloon_allocations_never_call_the_oom_notifier(void **state)
{
	struct fixture *f = *state;
	struct oom_pool p = { .os = f->os };
	uint32_t pfns[NPAGES];

	assert_int_equal(mvg_os_alloc(f->os, 16, p.pfns, MVG_OS_BALLOON), 16);
	p.n = 16;
	mvg_os_set_oom_notifier(f->os, give_back, &p);
	assert_int_equal(mvg_os_alloc(f->os, NPAGES, pfns, MVG_OS_BALLOON),
			 NPAGES - 16);
	assert_int_equal(mvg_os_alloc(f->os, 1, pfns, MVG_OS_BALLOON), -ENOMEM);
	assert_int_equal(p.calls, 0);
	mvg_os_set_oom_notifier(f->os, NULL, NULL);
}

static void test_bad_geometry_is_refused(void **state)
{
	struct fixture *f = *state;
	struct mvg_os *os;

	assert_int_equal(mvg_os_create(f->mem, 0, &os), -EINVAL);
	assert_int_equal(mvg_os_create(f->mem, 4095, &os), -EINVAL);
	assert_int_equal(mvg_os_create((char *)f->mem + 8, 4096, &os), -EINVAL);
}

static struct mvg_config burst_config(void *mem, uint64_t size)
{
	struct mvg_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.kind = MVG_BURST;
	cfg.mem = mem;
	cfg.memsize = size;
	cfg.threads = 2;
	cfg.seed = 42;
	cfg.burst_idle_ms = 20;
	return cfg;
}

struct reads_or_writes {
	struct mvg_workload *w;
	uint64_t reads, writes;
};

/* The workload has done at least k->reads reads and k->writes writes. */
static bool did(void *arg)
{
	struct reads_or_writes *k = arg;
	struct mvg_stats st;

	mvg_get_stats(k->w, &st);
	return st.reads >= k->reads && st.writes >= k->writes;
}

static void test_burst_rounds_verify_clean(void **state)
{
	struct fixture *f = *state;
	struct mvg_config cfg = burst_config(f->mem, NPAGES * 4096ull);
	struct mvg_workload *w;
	struct mvg_stats st;
	struct reads_or_writes rounds;
	enum mvg_kind k;

	assert_int_equal(mvg_kind_parse("burst", &k), 0);
	assert_int_equal(k, MVG_BURST);
	assert_int_equal(mvg_start(&cfg, &w), 0);
	/* several rounds of 85% of memory each */
	rounds = (struct reads_or_writes){ w, 0, 3 * NPAGES * 85 / 100 + 1 };
	assert_true(th_wait_until(did, &rounds, TH_WAIT_MS));
	assert_int_equal(mvg_stop_and_verify(w, &st), 0);
	assert_int_equal(st.integrity_errors, 0);
	assert_int_equal(st.ops, st.reads + st.writes);
}

static void test_pinned_burst_runs_its_threads_on_their_cpu(void **state)
{
	struct fixture *f = *state;
	struct mvg_config cfg = burst_config(f->mem, NPAGES * 4096ull);
	struct reads_or_writes round;
	struct mvg_workload *w;
	struct mvg_stats st;
	int before[64], cpu = -1;
	unsigned nbefore = th_task_ids(before, 64);
	cpu_set_t cpus;

	assert_true(nbefore <= 64);
	/* the last CPU this process may run on, not always CPU 0 */
	assert_int_equal(sched_getaffinity(0, sizeof(cpus), &cpus), 0);
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &cpus))
			cpu = c;
	CPU_ZERO(&cpus);
	CPU_SET(cpu, &cpus);
	cfg.cpus = &cpus;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	CPU_ZERO(&cpus); /* the workload keeps its own copy */
	round = (struct reads_or_writes){ w, 0, NPAGES * 85 / 100 };
	assert_true(th_wait_until(did, &round, TH_WAIT_MS));
	th_assert_new_threads_pinned(before, nbefore, cfg.threads, cpu);
	assert_int_equal(mvg_stop_and_verify(w, &st), 0);
	assert_int_equal(st.integrity_errors, 0);
}

static void test_burst_reports_a_corrupted_kept_page(void **state)
{
	struct fixture *f = *state;
	struct mvg_config cfg = burst_config(f->mem, NPAGES * 4096ull);
	struct mvg_workload *w;
	struct mvg_stats st;
	uint64_t share = NPAGES * 85 / 100;
	struct reads_or_writes round;

	cfg.threads = 1;
	cfg.burst_idle_ms = 5000;
	assert_int_equal(mvg_start(&cfg, &w), 0);
	/* the first round written and verified; page 0 is kept, and the
	 * thread idles for 5 s */
	round = (struct reads_or_writes){ w, share, 0 };
	assert_true(th_wait_until(did, &round, TH_WAIT_MS));
	assert_true(th_wait_until(th_other_threads_sleep, NULL, TH_WAIT_MS));
	((volatile uint64_t *)f->mem)[100] ^= 1;
	assert_int_equal(mvg_stop_and_verify(w, &st), 0);
	assert_int_equal(st.integrity_errors, 1);
	assert_non_null(strstr(st.first_error, "pfn 0 "));
	assert_non_null(strstr(st.first_error, "checksum"));
}

static void test_balloon_driver_needs_the_burst_workload(void **state)
{
	struct fixture *f = *state;
	struct mvg_config cfg = burst_config(f->mem, NPAGES * 4096ull);
	struct mvg_workload *w;

	cfg.kind = MVG_IDLE;
	cfg.balloon_vm = (struct mv_vm *)f; /* never reached */
	assert_int_equal(mvg_start(&cfg, &w), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_every_page_is_handed_out_once, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_short_free_list_gives_what_it_has, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_last_freed_page_is_handed_out_first, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_pinned_pages_are_never_handed_out, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_bad_frees_change_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_empty_free_list_calls_the_oom_notifier, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_balloon_allocations_never_call_the_oom_notifier,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_geometry_is_refused,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_burst_rounds_verify_clean,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_burst_reports_a_corrupted_kept_page, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_pinned_burst_runs_its_threads_on_their_cpu, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_balloon_driver_needs_the_burst_workload, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: MIT
/*
 * torture_reclaim.c - several VMs, several guest threads each, random reads
 * and writes of whole pages with checksums, while the scheduler reclaims on a
 * host far too small and a reclaimer thread reclaims random pages on top:
 * into the swap file (random, incompressible pages) or the compression
 * cache and on to swap (compressible pages); with 1, 2 or 4 fault threads a
 * VM, and each VM reclaimed by its own thread or all by the scheduler's.
 *
 * Each guest thread owns the pages p with p % threads == its index, so it
 * knows every page's version; each VM writes its own tag, so a page that
 * showed another VM's data, another page's data or a lost write fails the
 * check.  MV_TORTURE_SECONDS sets the length of each run (default 6).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"

#define MiB (1ull << 20)
#define NVMS 3
#define THREADS 3

struct guest {
	mv_vm *vm;
	uint64_t tag;
	unsigned index;
	uint32_t *version; /* per page, owned by this thread's pages only */
	atomic_bool *stop;
	bool z; /* compressible content */
	uint64_t ops;
	uint64_t errors;
};

static void fill(bool z, void *page, uint64_t tag, uint64_t ppn, uint64_t ver)
{
	if (z)
		th_fill_z(page, tag, ppn, ver);
	else
		th_fill(page, tag, ppn, ver);
}

static bool check(bool z, const void *page, uint64_t tag, uint64_t ppn,
		  uint64_t ver)
{
	return z ? th_check_z(page, tag, ppn, ver) :
		   th_check(page, tag, ppn, ver);
}

static void *guest_main(void *arg)
{
	struct guest *g = arg;
	uint64_t npages = mv_vm_memsize(g->vm) / MV_PAGE_SIZE, ppn;
	uint64_t rng = 0x1234567ull * (g->tag * 7 + g->index + 1);
	uint8_t *m = mv_vm_mem(g->vm), *page;

	while (!atomic_load_explicit(g->stop, memory_order_relaxed)) {
		ppn = th_xs(&rng) % npages;
		ppn -= ppn % THREADS;
		ppn += g->index;
		if (ppn >= npages)
			continue;
		page = m + ppn * MV_PAGE_SIZE;
		if (th_xs(&rng) % 2) {
			fill(g->z, page, g->tag, ppn, ++g->version[ppn]);
		} else if (g->version[ppn]) {
			g->errors += !check(g->z, page, g->tag, ppn,
					    g->version[ppn]);
		} else {
			g->errors += !th_is_zero(page);
		}
		g->ops++;
	}
	return NULL;
}

struct refaults {
	mv_vm **vms;
	bool z;
};

/* Some VM has faulted a page back from where the run put it (for
 * compressible pages the cache, else swap), as the checks below require. */
static bool refaulted(void *arg)
{
	struct refaults *r = arg;
	struct mv_vm_stats vs;

	for (int v = 0; v < NVMS; v++) {
		mv_vm_stats(r->vms[v], &vs);
		if (r->z ? vs.unzip_pages : vs.swapin_pages)
			return true;
	}
	return false;
}

static void torture(unsigned fault_threads, bool z, bool per_vm)
{
	struct guest g[NVMS][THREADS];
	uint32_t *version[NVMS];
	pthread_t gt[NVMS][THREADS], rt;
	struct th_swapper r;
	struct mv_settings s;
	struct mv_host_stats hs;
	struct mv_vm_stats st = { 0 }, vs;
	struct th_host t;
	mv_vm *vms[NVMS];
	struct refaults rf;
	atomic_bool stop = false;
	uint64_t npages = 8 * MiB / MV_PAGE_SIZE, errors = 0, ops = 0;
	char name[16], buf[8];
	uint8_t *m;

	mv_settings_init(&s);
	snprintf(buf, sizeof(buf), "%u", fault_threads);
	assert_int_equal(mv_settings_set(&s, "Mem.FaultThreads", buf), 0);
	assert_int_equal(
		mv_settings_set(&s, "Mem.ReclaimPerVM", per_vm ? "1" : "0"), 0);
	/* 24 MiB of guests on a 6 MiB host */
	th_host_create(&t, 6 * MiB, &s);
	for (int v = 0; v < NVMS; v++) {
		snprintf(name, sizeof(name), "t%d", v);
		vms[v] = th_vm_create(&t, name, npages * MV_PAGE_SIZE);
		version[v] = calloc(npages, sizeof(uint32_t));
		assert_non_null(version[v]);
		for (unsigned i = 0; i < THREADS; i++) {
			g[v][i] = (struct guest){ .vm = vms[v],
						  .tag = 100 + (uint64_t)v,
						  .index = i,
						  .version = version[v],
						  .stop = &stop,
						  .z = z };
			assert_int_equal(pthread_create(&gt[v][i], NULL,
							guest_main, &g[v][i]),
					 0);
		}
	}
	r = (struct th_swapper){
		.vms = vms, .nvms = NVMS, .pause_ns = 200000L, .stop = &stop
	};
	assert_int_equal(pthread_create(&rt, NULL, th_swapper_main, &r), 0);
	/* the run's length, then as long as it takes to have refaulted */
	sleep(th_torture_seconds());
	rf = (struct refaults){ vms, z };
	th_wait_until(refaulted, &rf, TH_WAIT_MS);
	atomic_store(&stop, true);
	pthread_join(rt, NULL);
	for (int v = 0; v < NVMS; v++)
		for (unsigned i = 0; i < THREADS; i++) {
			pthread_join(gt[v][i], NULL);
			errors += g[v][i].errors;
			ops += g[v][i].ops;
		}
	/* the final proof: every page of every VM, as last written */
	for (int v = 0; v < NVMS; v++) {
		m = mv_vm_mem(vms[v]);
		for (uint64_t p = 0; p < npages; p++)
			errors += version[v][p] ?
					  !check(z, m + p * MV_PAGE_SIZE,
						 100 + (uint64_t)v, p,
						 version[v][p]) :
					  !th_is_zero(m + p * MV_PAGE_SIZE);
	}
	/* present in the mapping iff PRIVATE, or a fault would be lost */
	for (int v = 0; v < NVMS; v++) {
		assert_int_equal(th_presence_mismatches(vms[v]), 0);
		/* the statistics' counters agree with a walk of the pmap */
		assert_int_equal(th_census_mismatches(vms[v]), 0);
	}
	mv_host_stats(t.host, &hs);
	/*
	 * The scheduler reclaims from the VM with the fewest shares per page,
	 * so which VM's pages go to swap or the cache varies: count them all.
	 */
	for (int v = 0; v < NVMS; v++) {
		mv_vm_stats(vms[v], &vs);
		st.swapin_pages += vs.swapin_pages;
		st.unzip_pages += vs.unzip_pages;
	}
	printf("torture(%u fault threads, %s, %s): %llu ops, %llu reclaimed by hand, %llu by the scheduler, all VMs %llu swap-ins %llu unzips, %llu integrity errors\n",
	       fault_threads, z ? "compressible" : "random",
	       per_vm ? "reclaim per VM" : "one reclaim thread",
	       (unsigned long long)ops, (unsigned long long)r.swapped,
	       (unsigned long long)hs.reclaim_pages,
	       (unsigned long long)st.swapin_pages,
	       (unsigned long long)st.unzip_pages, (unsigned long long)errors);
	assert_int_equal(errors, 0);
	assert_true(hs.consumed_pages <= hs.memsize_pages);
	/* compressible pages may all fit the caches: then none hit swap */
	if (z)
		assert_true(st.unzip_pages > 0);
	else
		assert_true(st.swapin_pages > 0);
	for (int v = 0; v < NVMS; v++) {
		mv_vm_destroy(vms[v]);
		free(version[v]);
	}
	th_host_destroy(&t);
}

static void test_torture_one_fault_thread(void **state)
{
	(void)state;
	torture(1, false, true);
}

static void test_torture_two_fault_threads(void **state)
{
	(void)state;
	torture(2, false, true);
}

static void test_torture_compressible_pages(void **state)
{
	(void)state;
	torture(2, true, true);
}

/* four fault threads a VM, each VM reclaimed by its own thread */
static void test_torture_four_fault_threads(void **state)
{
	(void)state;
	torture(4, false, true);
}

/* the scheduler's own thread reclaims, one VM at a time */
static void test_torture_one_reclaim_thread(void **state)
{
	(void)state;
	torture(2, false, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_torture_one_fault_thread),
		cmocka_unit_test(test_torture_two_fault_threads),
		cmocka_unit_test(test_torture_compressible_pages),
		cmocka_unit_test(test_torture_four_fault_threads),
		cmocka_unit_test(test_torture_one_reclaim_thread),
	};

	return th_run_tests(tests);
}

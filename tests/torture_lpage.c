// SPDX-License-Identifier: MIT
/*
 * torture_lpage.c - large pages under fire: VMs whose guest threads keep
 * writing and verifying pages, while a thread collapses every region it
 * can into a large page and breaks them up again, a scanner hashes and
 * merges (pages are sometimes equal across VMs, or zero), a reclaimer
 * swaps random pages through the API (which breaks a large region first)
 * and, on the small host, the scheduler breaks large pages and reclaims
 * under pressure.  A lost write, a stale read or another VM's bytes fail
 * the check; at the end the pmap agrees with the mapping and the census
 * with a walk.
 *
 * Each guest thread owns the pages p with p % THREADS == its index; a
 * page's content follows its version: odd versions are the VM's own
 * (tag, ppn, version) bytes, versions that are multiples of 16 are zeros,
 * other even ones content every VM may hold (COMMON, ppn, version / 2 %
 * 3).  Most writes go to odd versions, so that regions are often wholly
 * private and can be collapsed.  MV_TORTURE_SECONDS sets the length of
 * each run (default 6).
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
#define NVMS 2
#define THREADS 2
#define COMMON 91
#define VM_MIB 8

struct guest {
	mv_vm *vm;
	uint64_t tag;
	unsigned index;
	uint32_t *version; /* per page, owned by this thread's pages only */
	atomic_bool *stop;
	uint64_t ops;
	uint64_t errors;
};

static void fill(void *page, uint64_t tag, uint64_t ppn, uint32_t ver)
{
	if (ver % 2)
		th_fill(page, tag, ppn, ver);
	else if (ver % 16 == 0)
		memset(page, 0, MV_PAGE_SIZE);
	else
		th_fill(page, COMMON, ppn, ver / 2 % 3);
}

static bool check(const void *page, uint64_t tag, uint64_t ppn, uint32_t ver)
{
	if (ver % 2)
		return th_check(page, tag, ppn, ver);
	if (ver % 16 == 0)
		return th_is_zero(page);
	return th_check(page, COMMON, ppn, ver / 2 % 3);
}

static void *guest_main(void *arg)
{
	struct guest *g = arg;
	uint64_t npages = mv_vm_memsize(g->vm) / MV_PAGE_SIZE, ppn;
	uint64_t rng = 0x1234567ull * (g->tag * 7 + g->index + 1);
	uint8_t *m = mv_vm_mem(g->vm), *page;

	/* every page of ours once: the regions start wholly resident */
	for (ppn = g->index; ppn < npages; ppn += THREADS) {
		g->version[ppn] = 1;
		fill(m + ppn * MV_PAGE_SIZE, g->tag, ppn, 1);
	}
	while (!atomic_load_explicit(g->stop, memory_order_relaxed)) {
		ppn = th_xs(&rng) % npages;
		ppn -= ppn % THREADS;
		ppn += g->index;
		if (ppn >= npages)
			continue;
		page = m + ppn * MV_PAGE_SIZE;
		if (th_xs(&rng) % 4 == 0) {
			/* mostly to odd versions: the VM's own content */
			g->version[ppn] +=
				th_xs(&rng) % 8 ? 2 - g->version[ppn] % 2 : 1;
			if (g->version[ppn] % 2 == 0 && th_xs(&rng) % 2)
				g->version[ppn]++;
			fill(page, g->tag, ppn, g->version[ppn]);
		} else {
			g->errors += !check(page, g->tag, ppn, g->version[ppn]);
		}
		g->ops++;
	}
	return NULL;
}

struct helper {
	mv_vm **vms;
	atomic_bool *stop;
	uint64_t done, broken;
};

static void *scanner_main(void *arg)
{
	struct helper *h = arg;
	struct timespec ts = { 0, 2000000L };
	uint64_t merged;

	/* paced, so that regions are often wholly private again */
	while (!atomic_load(h->stop))
		for (int v = 0; v < NVMS; v++) {
			mv_vm_share_scan(h->vms[v], 64, &merged);
			h->done += merged;
			nanosleep(&ts, NULL);
		}
	return NULL;
}

/* Collapses what it can in one VM, then (every other round) breaks it
 * all up again. */
static void *lpager_main(void *arg)
{
	struct helper *h = arg;
	struct timespec ts = { 0, 500000L };
	uint64_t n;
	unsigned k = 0;

	while (!atomic_load(h->stop)) {
		mv_vm *vm = h->vms[k % NVMS];

		th_drain_lru();
		if (!mv_vm_lpage_collapse(vm, &n))
			h->done += n;
		nanosleep(&ts, NULL);
		if (k++ % 4 == 3 && !mv_vm_lpage_break(vm, &n))
			h->broken += n;
	}
	return NULL;
}

static void torture(uint64_t host_mib, bool expect_collapses)
{
	struct guest g[NVMS][THREADS];
	uint32_t *version[NVMS];
	pthread_t gt[NVMS][THREADS], st, rt, lt;
	struct helper sc, lp;
	struct th_swapper rc;
	struct mv_settings s;
	struct mv_host_stats hs;
	struct th_host t;
	mv_vm *vms[NVMS];
	atomic_bool stop = false;
	uint64_t npages = VM_MIB * MiB / MV_PAGE_SIZE, errors = 0, ops = 0;
	char name[16];
	uint8_t *m;

	mv_settings_init(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.FaultThreads", "2"), 0);
	assert_int_equal(mv_settings_set(&s, "Mem.ShareForceSalting", "0"), 0);
	assert_int_equal(mv_settings_set(&s, "Mem.ShareScanGHz", "0"), 0);
	assert_int_equal(mv_settings_set(&s, "Mem.AllocGuestLargePage", "1"),
			 0);
	th_host_create(&t, host_mib * MiB, &s);
	for (int v = 0; v < NVMS; v++) {
		snprintf(name, sizeof(name), "l%d", v);
		vms[v] = th_vm_create(&t, name, npages * MV_PAGE_SIZE);
		version[v] = calloc(npages, sizeof(uint32_t));
		assert_non_null(version[v]);
		for (unsigned i = 0; i < THREADS; i++) {
			g[v][i] = (struct guest){ .vm = vms[v],
						  .tag = 300 + (uint64_t)v,
						  .index = i,
						  .version = version[v],
						  .stop = &stop };
			assert_int_equal(pthread_create(&gt[v][i], NULL,
							guest_main, &g[v][i]),
					 0);
		}
	}
	sc = (struct helper){ .vms = vms, .stop = &stop };
	lp = (struct helper){ .vms = vms, .stop = &stop };
	rc = (struct th_swapper){
		.vms = vms, .nvms = NVMS, .pause_ns = 20000000L, .stop = &stop
	};
	assert_int_equal(pthread_create(&st, NULL, scanner_main, &sc), 0);
	assert_int_equal(pthread_create(&lt, NULL, lpager_main, &lp), 0);
	assert_int_equal(pthread_create(&rt, NULL, th_swapper_main, &rc), 0);
	sleep(th_torture_seconds());
	atomic_store(&stop, true);
	pthread_join(st, NULL);
	pthread_join(lt, NULL);
	pthread_join(rt, NULL);
	for (int v = 0; v < NVMS; v++)
		for (unsigned i = 0; i < THREADS; i++) {
			pthread_join(gt[v][i], NULL);
			errors += g[v][i].errors;
			ops += g[v][i].ops;
		}
	for (int v = 0; v < NVMS; v++) {
		m = mv_vm_mem(vms[v]);
		for (uint64_t p = 0; p < npages; p++)
			errors += !check(m + p * MV_PAGE_SIZE,
					 300 + (uint64_t)v, p, version[v][p]);
		assert_int_equal(th_presence_mismatches(vms[v]), 0);
		assert_int_equal(th_census_mismatches(vms[v]), 0);
	}
	mv_host_stats(t.host, &hs);
	printf("torture_lpage(%llu MiB host): %llu ops, %llu collapsed, %llu broken by hand, %llu breaks in all, %llu merged, %llu swapped by hand, %llu integrity errors\n",
	       (unsigned long long)host_mib, (unsigned long long)ops,
	       (unsigned long long)lp.done, (unsigned long long)lp.broken,
	       (unsigned long long)hs.lpage_breaks, (unsigned long long)sc.done,
	       (unsigned long long)rc.swapped, (unsigned long long)errors);
	assert_int_equal(errors, 0);
	if (expect_collapses)
		assert_true(lp.done > 0);
	for (int v = 0; v < NVMS; v++) {
		mv_vm_destroy(vms[v]);
		free(version[v]);
	}
	th_host_destroy(&t);
}

static void test_torture_lpage_roomy_host(void **state)
{
	(void)state;
	torture(64, true);
}

/* 12 MiB for 16 MiB of guests: the scheduler breaks and reclaims */
static void test_torture_lpage_under_pressure(void **state)
{
	(void)state;
	torture(12, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_torture_lpage_roomy_host),
		cmocka_unit_test(test_torture_lpage_under_pressure),
	};

	return th_run_tests(tests);
}

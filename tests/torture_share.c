// SPDX-License-Identifier: MIT
/*
 * torture_share.c - page sharing under fire: several VMs whose guest
 * threads keep writing pages that are often equal across VMs (and often
 * zero), read and verify them, while a scanner thread merges at full speed,
 * a reclaimer swaps random pages, and the enforcer swaps on a host too
 * small for the guests.  Every copy-on-write happens during scans and
 * reclaim.  A write that showed in another VM, a lost write or a stale
 * read fails the check.
 *
 * Each guest thread owns the pages p with p % THREADS == its index.  A
 * page's content follows its version: odd versions are the VM's own
 * (tag, ppn, version) bytes; even ones are content every VM may hold
 * (COMMON, ppn, version / 2 % 3), or zeros, so that pages keep becoming
 * shareable and shared pages keep being written.  MV_TORTURE_SECONDS sets
 * the length of each run (default 6), MV_TORTURE_SETTINGS more settings.
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
#define THREADS 2
#define COMMON 77

struct guest {
	mv_vm *vm;
	uint64_t tag;
	unsigned index;
	uint32_t *version; /* per page, owned by this thread's pages only */
	atomic_bool *stop;
	uint64_t ops;
	uint64_t errors;
	char first[320]; /* what the first bad page held */
};

static void fill(void *page, uint64_t tag, uint64_t ppn, uint32_t ver)
{
	if (ver % 2)
		th_fill(page, tag, ppn, ver);
	else if (ver % 8 == 4)
		memset(page, 0, MV_PAGE_SIZE);
	else
		th_fill(page, COMMON, ppn, ver / 2 % 3);
}

static bool check(const void *page, uint64_t tag, uint64_t ppn, uint32_t ver)
{
	if (ver % 2)
		return th_check(page, tag, ppn, ver);
	if (ver % 8 == 4 || !ver)
		return th_is_zero(page);
	return th_check(page, COMMON, ppn, ver / 2 % 3);
}

/* Names what a bad page holds: which (tag, ppn, version) content, zeros,
 * or nothing known; and whether a second read still sees it wrong. */
static void describe(char *out, size_t len, const void *page, uint64_t tag,
		     uint64_t ppn, uint32_t ver, bool again)
{
	const char *what = "unknown bytes";
	char buf[96];

	if (th_is_zero(page))
		what = "zeros";
	for (uint32_t v = 0; v < 3 && !strcmp(what, "unknown bytes"); v++)
		if (th_check(page, COMMON, ppn, v)) {
			snprintf(buf, sizeof(buf), "common version %u", v);
			what = buf;
		}
	for (uint64_t t = 200; t < 200 + NVMS && !strcmp(what, "unknown bytes");
	     t++)
		for (uint32_t v = 1; v <= ver + 64; v += 2)
			if (th_check(page, t, ppn, v)) {
				snprintf(buf, sizeof(buf),
					 "tag %llu version %u",
					 (unsigned long long)t, v);
				what = buf;
				break;
			}
	/* word by word against what it should hold: a torn page (part
	 * right, part zeros, say) tells which write was lost, and where */
	uint64_t want[MV_PAGE_SIZE / 8];
	const volatile uint64_t *w = page;
	unsigned right = 0, zero = 0, first = MV_PAGE_SIZE / 8, last = 0;

	if (ver)
		fill(want, tag, ppn, ver);
	else
		memset(want, 0, sizeof(want));
	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i++) {
		uint64_t x = w[i];

		if (x == want[i]) {
			right++;
			continue;
		}
		zero += !x;
		if (first > i)
			first = i;
		last = i;
	}
	snprintf(
		out, len,
		"vm tag %llu ppn %llu version %u: page holds %s (%u of %u words right, %u zero where they should not be, wrong from word %u to %u); a second read %s",
		(unsigned long long)tag, (unsigned long long)ppn, ver, what,
		right, MV_PAGE_SIZE / 8, zero, first, last,
		again ? "is right (transient)" : "is still wrong");
}

/* MV_TORTURE_SETTINGS="Mem.ReclaimPolicy=0,Mem.ReclaimPerVM=0", say:
 * settings of the runs' host, after the test's own (to hunt a rare error
 * under other settings). */
static void more_settings(struct mv_settings *s)
{
	const char *env = getenv("MV_TORTURE_SETTINGS");
	char buf[256], *save = NULL, *eq;

	if (!env)
		return;
	snprintf(buf, sizeof(buf), "%s", env);
	for (char *kv = strtok_r(buf, ",", &save); kv;
	     kv = strtok_r(NULL, ",", &save)) {
		eq = strchr(kv, '=');
		assert_non_null(eq);
		*eq = 0;
		assert_int_equal(mv_settings_set(s, kv, eq + 1), 0);
	}
}

static void *guest_main(void *arg)
{
	struct guest *g = arg;
	uint64_t npages = mv_vm_memsize(g->vm) / MV_PAGE_SIZE, ppn;
	uint64_t rng = 0x7654321ull * (g->tag * 5 + g->index + 1);
	uint8_t *m = mv_vm_mem(g->vm), *page;

	while (!atomic_load_explicit(g->stop, memory_order_relaxed)) {
		ppn = th_xs(&rng) % npages;
		ppn -= ppn % THREADS;
		ppn += g->index;
		if (ppn >= npages)
			continue;
		page = m + ppn * MV_PAGE_SIZE;
		if (th_xs(&rng) % 4 == 0) {
			/* mostly to even versions: shareable content */
			g->version[ppn] +=
				th_xs(&rng) % 4 ? 2 - g->version[ppn] % 2 : 1;
			fill(page, g->tag, ppn, g->version[ppn]);
		} else if (!check(page, g->tag, ppn, g->version[ppn])) {
			if (!g->errors++)
				describe(g->first, sizeof(g->first), page,
					 g->tag, ppn, g->version[ppn],
					 check(page, g->tag, ppn,
					       g->version[ppn]));
		}
		g->ops++;
	}
	return NULL;
}

struct helper {
	mv_vm **vms;
	atomic_bool *stop;
	uint64_t done;
};

static void *scanner_main(void *arg)
{
	struct helper *h = arg;
	uint64_t merged;

	while (!atomic_load(h->stop))
		for (int v = 0; v < NVMS; v++) {
			mv_vm_share_scan(h->vms[v], 64, &merged);
			h->done += merged;
		}
	return NULL;
}

/* A write has broken sharing in some VM: pages were merged, and
 * copy-on-write has run, as the checks below require. */
static bool cow_broken(void *arg)
{
	mv_vm **vms = arg;
	struct mv_vm_stats vs;

	for (int v = 0; v < NVMS; v++) {
		mv_vm_stats(vms[v], &vs);
		if (vs.cow_breaks)
			return true;
	}
	return false;
}

static void torture(unsigned fault_threads, uint64_t host_mib)
{
	struct guest g[NVMS][THREADS];
	uint32_t *version[NVMS];
	pthread_t gt[NVMS][THREADS], st, rt;
	struct helper sc;
	struct th_swapper rc;
	struct mv_settings s;
	struct mv_host_stats hs;
	struct mv_vm_stats vs;
	struct th_host t;
	mv_vm *vms[NVMS];
	atomic_bool stop = false;
	uint64_t npages = 4 * MiB / MV_PAGE_SIZE, errors = 0, ops = 0;
	uint64_t cow = 0, saved, end_errors = 0;
	char name[16], buf[8];
	uint8_t *m;

	mv_settings_init(&s);
	snprintf(buf, sizeof(buf), "%u", fault_threads);
	assert_int_equal(mv_settings_set(&s, "Mem.FaultThreads", buf), 0);
	assert_int_equal(mv_settings_set(&s, "Mem.ShareForceSalting", "0"), 0);
	assert_int_equal(mv_settings_set(&s, "Mem.ShareScanGHz", "0"), 0);
	more_settings(&s);
	th_host_create(&t, host_mib * MiB, &s);
	for (int v = 0; v < NVMS; v++) {
		snprintf(name, sizeof(name), "s%d", v);
		vms[v] = th_vm_create(&t, name, npages * MV_PAGE_SIZE);
		version[v] = calloc(npages, sizeof(uint32_t));
		assert_non_null(version[v]);
		for (unsigned i = 0; i < THREADS; i++) {
			g[v][i] = (struct guest){ .vm = vms[v],
						  .tag = 200 + (uint64_t)v,
						  .index = i,
						  .version = version[v],
						  .stop = &stop };
			assert_int_equal(pthread_create(&gt[v][i], NULL,
							guest_main, &g[v][i]),
					 0);
		}
	}
	sc = (struct helper){ .vms = vms, .stop = &stop };
	rc = (struct th_swapper){
		.vms = vms, .nvms = NVMS, .pause_ns = 500000L, .stop = &stop
	};
	assert_int_equal(pthread_create(&st, NULL, scanner_main, &sc), 0);
	assert_int_equal(pthread_create(&rt, NULL, th_swapper_main, &rc), 0);
	/* the run's length, then as long as it takes to break a share */
	sleep(th_torture_seconds());
	th_wait_until(cow_broken, vms, TH_WAIT_MS);
	atomic_store(&stop, true);
	pthread_join(st, NULL);
	pthread_join(rt, NULL);
	for (int v = 0; v < NVMS; v++)
		for (unsigned i = 0; i < THREADS; i++) {
			pthread_join(gt[v][i], NULL);
			errors += g[v][i].errors;
			ops += g[v][i].ops;
			if (g[v][i].errors)
				printf("torture_share: first error of guest %d.%u: %s\n",
				       v, i, g[v][i].first);
		}
	for (int v = 0; v < NVMS; v++) {
		m = mv_vm_mem(vms[v]);
		for (uint64_t p = 0; p < npages; p++)
			if (!check(m + p * MV_PAGE_SIZE, 200 + (uint64_t)v, p,
				   version[v][p])) {
				char why[320];

				describe(why, sizeof(why), m + p * MV_PAGE_SIZE,
					 200 + (uint64_t)v, p, version[v][p],
					 false);
				if (!end_errors++)
					printf("torture_share: at the end, %s\n",
					       why);
			}
		assert_int_equal(th_presence_mismatches(vms[v]), 0);
		/* the statistics' counters agree with a walk of the pmap */
		assert_int_equal(th_census_mismatches(vms[v]), 0);
		mv_vm_stats(vms[v], &vs);
		cow += vs.cow_breaks;
	}
	errors += end_errors;
	/* once the scanner has been by every page, the VMs' parts of the
	 * sharing's savings add up to the host's (docs/SHARING.md) */
	th_drain_lru();
	for (int v = 0; v < NVMS; v++)
		assert_int_equal(mv_vm_share_scan(vms[v], 2 * npages, NULL), 0);
	saved = 0;
	for (int v = 0; v < NVMS; v++) {
		mv_vm_stats(vms[v], &vs);
		saved += vs.shrdsvd_pages;
	}
	mv_host_stats(t.host, &hs);
	assert_int_equal(saved, hs.share_saved_pages);
	printf("torture_share(%u fault threads, %llu MiB host): %llu ops, %llu merged, %llu swapped by hand, %llu COW breaks, %llu shared frames now, %llu integrity errors\n",
	       fault_threads, (unsigned long long)host_mib,
	       (unsigned long long)ops, (unsigned long long)sc.done,
	       (unsigned long long)rc.swapped, (unsigned long long)cow,
	       (unsigned long long)hs.share_frames, (unsigned long long)errors);
	assert_int_equal(errors, 0);
	assert_true(sc.done > 0);
	assert_true(cow > 0);
	assert_true(hs.consumed_pages <= hs.memsize_pages);
	for (int v = 0; v < NVMS; v++) {
		mv_vm_destroy(vms[v]);
		free(version[v]);
	}
	mv_host_stats(t.host, &hs);
	assert_int_equal(hs.share_frames, 0);
	assert_int_equal(hs.consumed_pages, 0);
	th_host_destroy(&t);
}

static void test_torture_share_roomy_host(void **state)
{
	(void)state;
	torture(1, 64);
}

static void test_torture_share_under_pressure(void **state)
{
	(void)state;
	torture(2, 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_torture_share_roomy_host),
		cmocka_unit_test(test_torture_share_under_pressure),
	};

	return th_run_tests(tests);
}

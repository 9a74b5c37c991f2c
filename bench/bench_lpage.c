// SPDX-License-Identifier: MIT
/*
 * bench_lpage.c - `memvisor bench lpage`: what 2 MiB large pages buy a
 * random-access guest, with and without them, in the same run.
 *
 * Design: the workload is a guest thread adding one to a random 64-bit
 * word of its working set, again and again (GUPS-like): every access
 * lands on a page the TLB has most likely forgotten, since the working set
 * (1 GiB by default) is hundreds of times the TLB's reach with 4 KiB pages
 * (about 1536 entries: 6 MiB) and about the reach with 2 MiB pages
 * (1024-2048 entries: 2-4 GiB).  The figure is ops/s over a fixed number
 * of operations; a second, dependent run on the same memory chains each
 * access to the value the last one read, so that the CPU cannot overlap
 * page walks and misses (chase_speedup).  It is measured on:
 *   - plain memory, 4 KiB pages (MADV_NOHUGEPAGE) and transparent huge
 *     pages (MADV_HUGEPAGE, then MADV_COLLAPSE for any range the faults
 *     left small): the floor and peer, what Linux alone gives;
 *   - memvisor guest memory, a VM with large pages off and one whose
 *     regions the engine collapsed (mv_vm_lpage_collapse()).
 * Each trial measures every figure once, interleaved (odd trials in the
 * reverse order), and the report has medians; `speedup` is memvisor's large over small ops/s (and
 * `plain_speedup` Linux's own).  dTLB load misses are counted per
 * operation with perf_event_open (the counters `perf stat` reads) where the
 * machine has them; in a virtual machine without a PMU the report says
 * that it has none.
 *
 * A fast wrong answer is no figure: every page's first word holds its own
 * number and is checked at the end, and the increments, summed over the
 * whole working set, must equal the operations made.  The share of each
 * working set actually in huge pages (smaps' AnonHugePages) is reported, so
 * a "large page" run that got none cannot pass for one.
 *
 * Invariants: rows are per 1000 operations (the "us/page" column of the
 * table is microseconds per 1000 operations here, and MB/s means nothing); the working set is touched whole
 * before any timing, so no fault is timed.
 *
 * Lock ordering: none; one thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "memvisor.h"

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define HUGE_SIZE (2ull << 20)
#define HUGE_PAGES (HUGE_SIZE / MV_PAGE_SIZE)
#define OPS ((uint64_t)8000000) /* operations per timed run */
/* operations of the dependent run: each waits for the last one's load */
#define CHASE_OPS ((uint64_t)2000000)
#define SEED 0x6c70616765ull

enum figure { PLAIN_SMALL, PLAIN_HUGE, MV_SMALL, MV_LARGE, NFIG };

static const char *const fig_name[NFIG] = { "plain 4 KiB", "plain THP",
					    "memvisor 4 KiB",
					    "memvisor large" };

/* A counter of dTLB load misses on this thread, or -1 with errno. */
static int tlb_counter_open(void)
{
	struct perf_event_attr a = {
		.type = PERF_TYPE_HW_CACHE,
		.size = sizeof(a),
		.config = PERF_COUNT_HW_CACHE_DTLB |
			  (PERF_COUNT_HW_CACHE_OP_READ << 8) |
			  (PERF_COUNT_HW_CACHE_RESULT_MISS << 16),
		.disabled = 1,
		.exclude_kernel = 1,
		.exclude_hv = 1,
	};

	return (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * The workload: OPS increments of random words (never a page's first word,
 * which holds its number), independent of each other, so that the CPU
 * overlaps their misses; or (chase) CHASE_OPS increments where the next
 * word's address depends on the value just read, so that each waits for
 * the last one's page walk and cache miss.  Returns us per 1000
 * operations; *misses gets the dTLB load misses per operation (or -1
 * without a counter).
 */
static double workload(uint8_t *mem, uint64_t pages, uint64_t *seed, int tlb,
		       double *misses, bool chase)
{
	uint64_t words = pages * (MV_PAGE_SIZE / 8), w, t0, count = 0;
	uint64_t n = chase ? CHASE_OPS : OPS, prev = 0;
	volatile uint64_t *m = (volatile uint64_t *)mem;

	if (tlb >= 0) {
		ioctl(tlb, PERF_EVENT_IOC_RESET, 0);
		ioctl(tlb, PERF_EVENT_IOC_ENABLE, 0);
	}
	t0 = bench_now_ns();
	if (chase) {
		for (uint64_t i = 0; i < n; i++) {
			w = (xs(seed) ^ prev) % words;
			w |= (w & (MV_PAGE_SIZE / 8 - 1)) == 0;
			prev = m[w];
			m[w] = prev + 1;
		}
	} else {
		for (uint64_t i = 0; i < n; i++) {
			w = xs(seed) % words;
			w |= (w & (MV_PAGE_SIZE / 8 - 1)) == 0; /* not word 0 */
			m[w] = m[w] + 1;
		}
	}
	t0 = bench_now_ns() - t0;
	*misses = -1;
	if (tlb >= 0) {
		ioctl(tlb, PERF_EVENT_IOC_DISABLE, 0);
		if (read(tlb, &count, sizeof(count)) == sizeof(count))
			*misses = (double)count / (double)n;
	}
	return (double)t0 / (double)n; /* ns per op = us per 1000 ops */
}

/* Each page's first word is its number; the rest zeros. */
static void fill(uint8_t *mem, uint64_t pages)
{
	for (uint64_t p = 0; p < pages; p++) {
		memset(mem + p * MV_PAGE_SIZE, 0, MV_PAGE_SIZE);
		*(uint64_t *)(mem + p * MV_PAGE_SIZE) = p;
	}
}

/* 0 when every page holds its number and the increments add up to ops. */
static int verify(const char *what, const uint8_t *mem, uint64_t pages,
		  uint64_t ops)
{
	const uint64_t *m = (const uint64_t *)mem;
	uint64_t sum = 0;

	for (uint64_t p = 0; p < pages; p++) {
		if (m[p * (MV_PAGE_SIZE / 8)] != p) {
			fprintf(stderr,
				"bench lpage: %s: page %" PRIu64
				" lost its number\n",
				what, p);
			return -EIO;
		}
		for (uint64_t w = 1; w < MV_PAGE_SIZE / 8; w++)
			sum += m[p * (MV_PAGE_SIZE / 8) + w];
	}
	if (sum != ops) {
		fprintf(stderr,
			"bench lpage: %s: %" PRIu64
			" increments found, %" PRIu64 " made\n",
			what, sum, ops);
		return -EIO;
	}
	return 0;
}

/* AnonHugePages of the mapping holding addr, in kB; -1 if not found. */
static long huge_kb(const void *addr)
{
	uintptr_t lo, hi, a = (uintptr_t)addr;
	char line[512];
	bool in = false;
	long kb = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = a >= lo && a < hi;
			continue;
		}
		if (in && sscanf(line, "AnonHugePages: %ld", &kb) == 1)
			break;
	}
	fclose(f);
	return kb;
}

/* Plain anonymous memory, 2 MiB aligned, in 4 KiB pages or huge pages. */
static int plain_map(uint64_t pages, bool huge, uint8_t **out, void **base,
		     size_t *len)
{
	size_t n = pages * MV_PAGE_SIZE;
	uint8_t *p, *a;

	*len = n + HUGE_SIZE;
	p = mmap(NULL, *len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	a = (uint8_t *)(((uintptr_t)p + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1));
	if (madvise(a, n, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) < 0) {
		munmap(p, *len);
		return -errno;
	}
	fill(a, pages);
	/* faults may have left ranges small (no free 2 MiB block at once) */
	if (huge)
		for (size_t o = 0; o + HUGE_SIZE <= n; o += HUGE_SIZE)
			madvise(a + o, HUGE_SIZE, MADV_COLLAPSE);
	*out = a;
	*base = p;
	return 0;
}

struct trial {
	double us[NFIG], misses[NFIG], huge_pct[NFIG];
	double chase_us[NFIG], chase_misses[NFIG]; /* the dependent run */
	double collapse_us; /* per 2 MiB region, memvisor */
};

static int plain_run(uint64_t pages, bool huge, int tlb, uint64_t *seed,
		     struct trial *t)
{
	enum figure f = huge ? PLAIN_HUGE : PLAIN_SMALL;
	uint8_t *mem = NULL;
	void *base = NULL;
	size_t len = 0;
	int err;

	err = plain_map(pages, huge, &mem, &base, &len);
	if (err)
		return err;
	t->huge_pct[f] = 100.0 * (double)huge_kb(mem) * 1024 /
			 (double)(pages * MV_PAGE_SIZE);
	t->us[f] = workload(mem, pages, seed, tlb, &t->misses[f], false);
	t->chase_us[f] =
		workload(mem, pages, seed, tlb, &t->chase_misses[f], true);
	err = verify(fig_name[f], mem, pages, OPS + CHASE_OPS);
	munmap(base, len);
	return err;
}

/*
 * The same workload on a memvisor VM's guest memory: a host with room for
 * it, sampling and the share scanner off (they would take pages out of
 * the regions), a VM with large pages off or one whose regions are all
 * collapsed after the guest has touched every page.
 */
static int engine_run(uint64_t pages, bool large, const char *swapdir, int tlb,
		      uint64_t *seed, struct trial *t)
{
	enum figure f = large ? MV_LARGE : MV_SMALL;
	struct mv_host_config hc;
	struct mv_vm_config vc;
	struct mv_vm_stats st;
	mv_host *host = NULL;
	mv_vm *vm = NULL;
	uint64_t regions = 0, t0;
	uint8_t *mem;
	int err;

	bench_host_config(&hc);
	hc.memsize_bytes = pages * MV_PAGE_SIZE + (256ull << 20);
	hc.swapdir = swapdir;
	/* made now, by mv_vm_lpage_collapse, not by the scheduler later */
	hc.settings.alloc_guest_large_page = 1;
	err = mv_host_create(&hc, &host);
	if (err)
		return err;
	mv_vm_config_init(&vc);
	snprintf(vc.name, sizeof(vc.name), "%s", large ? "large" : "small");
	vc.memsize_bytes = pages * MV_PAGE_SIZE;
	vc.large_pages_off = !large;
	err = mv_vm_create(host, &vc, &vm);
	if (err)
		goto out;
	mem = mv_vm_mem(vm);
	fill(mem, pages);
	if (large) {
		t0 = bench_now_ns();
		/* a region still in a per-CPU LRU batch is refused once */
		for (int i = 0; i < 3 && !err; i++) {
			err = mv_vm_lpage_collapse(vm, &regions);
			if (!err && mv_vm_stats(vm, &st) == 0 &&
			    st.lpage_pages == pages)
				break;
		}
		if (err)
			goto out;
		t->collapse_us = (double)(bench_now_ns() - t0) / 1e3 /
				 (double)(pages / HUGE_PAGES);
	}
	t->huge_pct[f] = 100.0 * (double)huge_kb(mem) * 1024 /
			 (double)(pages * MV_PAGE_SIZE);
	t->us[f] = workload(mem, pages, seed, tlb, &t->misses[f], false);
	t->chase_us[f] =
		workload(mem, pages, seed, tlb, &t->chase_misses[f], true);
	err = verify(fig_name[f], mem, pages, OPS + CHASE_OPS);
out:
	mv_vm_destroy(vm);
	mv_host_destroy(host);
	return err;
}

int bench_lpage(struct bench_report *r, uint64_t pages, unsigned trials,
		const char *swapdir)
{
	double fig[NFIG][trials], miss[NFIG][trials], pct[NFIG][trials];
	double chase[NFIG][trials], cmiss[NFIG][trials], cops[NFIG], cm[NFIG];
	double ops[NFIG], m[NFIG], hp[NFIG], coll[trials];
	uint64_t seed = SEED;
	struct trial t;
	int tlb, tlb_err, err = 0;
	unsigned nfig = NFIG;

	pages -= pages % HUGE_PAGES;
	if (!pages)
		pages = HUGE_PAGES;
	bench_set_pages(r, pages);
	tlb = tlb_counter_open();
	tlb_err = tlb < 0 ? errno : 0;
	for (unsigned k = 0; k < trials && !err; k++) {
		memset(&t, 0, sizeof(t));
		/* odd trials in the reverse order, so that what runs
		 * first (or after what) is not always the same figure */
		for (unsigned j = 0; j < NFIG && !err; j++) {
			unsigned f = k % 2 ? NFIG - 1 - j : j;

			bench_watch("random access", 4 * pages);
			if (f == PLAIN_SMALL || f == PLAIN_HUGE)
				err = plain_run(pages, f == PLAIN_HUGE, tlb,
						&seed, &t);
			else
				err = engine_run(pages, f == MV_LARGE, swapdir,
						 tlb, &seed, &t);
		}
		coll[k] = t.collapse_us;
		for (unsigned f = 0; f < nfig; f++) {
			fig[f][k] = t.us[f];
			miss[f][k] = t.misses[f];
			chase[f][k] = t.chase_us[f];
			cmiss[f][k] = t.chase_misses[f];
			pct[f][k] = t.huge_pct[f];
		}
	}
	if (tlb >= 0)
		close(tlb);
	if (err)
		return err;
	for (unsigned f = 0; f < nfig; f++) {
		ops[f] = 1e9 / bench_median(fig[f], trials);
		m[f] = bench_median(miss[f], trials);
		cops[f] = 1e9 / bench_median(chase[f], trials);
		cm[f] = bench_median(cmiss[f], trials);
		hp[f] = bench_median(pct[f], trials);
	}
	bench_row(r, "plain_small", "plain memory, 4 KiB pages, per 1000 ops",
		  fig[PLAIN_SMALL], NULL, NULL);
	bench_row(r, "plain_thp", "plain memory, THP, per 1000 ops",
		  fig[PLAIN_HUGE], "plain 4 KiB", fig[PLAIN_SMALL]);
	bench_row(r, "mv_small", "memvisor guest, 4 KiB pages, per 1000 ops",
		  fig[MV_SMALL], "plain 4 KiB", fig[PLAIN_SMALL]);
	bench_row(r, "mv_large", "memvisor guest, large pages, per 1000 ops",
		  fig[MV_LARGE], "memvisor 4 KiB", fig[MV_SMALL]);
	bench_row(r, "mv_large_vs_thp", "  the same, beside plain THP",
		  fig[MV_LARGE], "plain THP", fig[PLAIN_HUGE]);
	bench_row(r, "plain_small_chase",
		  "dependent: plain memory, 4 KiB pages, per 1000",
		  chase[PLAIN_SMALL], NULL, NULL);
	bench_row(r, "plain_thp_chase",
		  "dependent: plain memory, THP, per 1000", chase[PLAIN_HUGE],
		  "plain 4 KiB", chase[PLAIN_SMALL]);
	bench_row(r, "mv_small_chase", "dependent: memvisor, 4 KiB, per 1000",
		  chase[MV_SMALL], "plain 4 KiB", chase[PLAIN_SMALL]);
	bench_row(r, "mv_large_chase", "dependent: memvisor, large, per 1000",
		  chase[MV_LARGE], "memvisor 4 KiB", chase[MV_SMALL]);
	bench_value(r, "speedup", ops[MV_LARGE] / ops[MV_SMALL]);
	bench_value(r, "chase_speedup", cops[MV_LARGE] / cops[MV_SMALL]);
	bench_value(r, "plain_chase_speedup",
		    cops[PLAIN_HUGE] / cops[PLAIN_SMALL]);
	bench_value(r, "mv_small_ops", ops[MV_SMALL]);
	bench_value(r, "mv_large_ops", ops[MV_LARGE]);
	bench_value(r, "mv_large_huge_pct", hp[MV_LARGE]);
	bench_value(r, "collapse_us", bench_median(coll, trials));
	bench_value(r, "plain_small_ops", ops[PLAIN_SMALL]);
	bench_value(r, "plain_thp_ops", ops[PLAIN_HUGE]);
	bench_value(r, "plain_speedup", ops[PLAIN_HUGE] / ops[PLAIN_SMALL]);
	bench_value(r, "plain_thp_huge_pct", hp[PLAIN_HUGE]);
	bench_note(
		r,
		"%" PRIu64 " random increments per run over %" PRIu64
		" MiB; plain memory: %.2f Mops/s with 4 KiB pages, %.2f with THP (%.0f%% of it huge): x%.2f",
		OPS, pages * MV_PAGE_SIZE >> 20, ops[PLAIN_SMALL] / 1e6,
		ops[PLAIN_HUGE] / 1e6, hp[PLAIN_HUGE],
		ops[PLAIN_HUGE] / ops[PLAIN_SMALL]);
	bench_note(
		r,
		"memvisor guest memory: %.2f Mops/s with 4 KiB pages, %.2f with large pages (%.0f%% of it huge): speedup x%.2f; a collapse cost %.0f us per 2 MiB",
		ops[MV_SMALL] / 1e6, ops[MV_LARGE] / 1e6, hp[MV_LARGE],
		ops[MV_LARGE] / ops[MV_SMALL], bench_median(coll, trials));
	bench_note(
		r,
		"dependent accesses (%" PRIu64
		" per run, each address from the value read before): plain %.2f -> %.2f Mops/s (x%.2f), memvisor %.2f -> %.2f Mops/s (x%.2f)",
		CHASE_OPS, cops[PLAIN_SMALL] / 1e6, cops[PLAIN_HUGE] / 1e6,
		cops[PLAIN_HUGE] / cops[PLAIN_SMALL], cops[MV_SMALL] / 1e6,
		cops[MV_LARGE] / 1e6, cops[MV_LARGE] / cops[MV_SMALL]);
	bench_note(
		r,
		"hosts with sampling and the share scanner off, so that no page of a region is out when it is collapsed or timed");
	if (tlb < 0)
		bench_note(
			r,
			"dTLB misses: not counted, this machine has no dTLB counter for perf (perf_event_open: %s; `perf stat -e dTLB-load-misses` says <not supported> in a VM without a PMU)",
			strerror(tlb_err));
	else
		for (unsigned f = 0; f < nfig; f++)
			bench_note(
				r,
				"dTLB load misses per op, %s: %.3f (dependent: %.3f)",
				fig_name[f], m[f], cm[f]);
	return 0;
}

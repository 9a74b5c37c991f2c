// SPDX-License-Identifier: MIT
/*
 * bench_balloon.c - `memvisor bench balloon`: how fast the balloon gives a
 * guest's free memory back to the host and returns it, in GiB/s, beside
 * what the kernel needs to drop the same frames.
 *
 * Design: a VM of N pages runs the guest OS (guest/os.c); its application
 * writes every page and frees them all onto the guest's free list, in
 * address order or in a random order.  The balloon driver (manual mode)
 * then inflates to Mem.CtlMaxPercent of the VM in one round: allocate
 * pinned pages, send them in messages of 256 PFNs, the host locks, drops
 * the frames and marks them BALLOONED.  That is timed, and so is the
 * deflate round that gives them all back.  Freed in address order, the
 * pages reach the host in runs of 256 neighbours (one madvise each); in a
 * random order, scattered, as 256 ranges in one process_madvise().  The
 * floors are the kernel dropping as many pages of a plain anonymous mapping
 * of N written pages: MADV_DONTNEED in 1 MiB runs, process_madvise() of
 * 256 scattered pages a call, and for context MADV_DONTNEED page by page.  A third figure sends the same
 * contiguous PFN lists straight down the channel, without the guest OS
 * and driver, to show the host's own share.  Deflate moves no memory (the
 * pages are refilled later by faults, which `memvisor bench fault`
 * measures), so it has no floor.
 *
 * Each trial measures every figure once; the report has medians.  After
 * each round the VM's counters must say exactly what happened (frames
 * consumed, pages in the balloon), or the benchmark fails: a fast wrong
 * answer is no figure.
 *
 * Invariants: the benchmark's host is twice the VM, so no reclaim runs
 * and every frame the VM drops is one the balloon dropped.
 *
 * Lock ordering: none; one thread drives everything.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bench.h"
#include "memvisor.h"
#include "os.h"

#ifndef PIDFD_SELF_THREAD_GROUP
#define PIDFD_SELF_THREAD_GROUP -10001
#endif

#define SEED 0x62616c6c6f6f6e21ull
#define RUN_PAGES 256 /* a message's worth of neighbours: 1 MiB */

enum figure {
	FLOOR_RUN, /* MADV_DONTNEED, 1 MiB runs */
	FLOOR_PAGE, /* MADV_DONTNEED, page by page, random order */
	FLOOR_BATCH, /* process_madvise of 256 random pages per call */
	INF_SEQ, /* driver inflate, pages freed in address order */
	DEF_SEQ, /* driver deflate of those */
	INF_RAND, /* driver inflate, pages freed in random order */
	DEF_RAND, /* driver deflate of those */
	HOST_SEQ, /* channel only: contiguous 256-PFN messages */
	NFIGURES
};

struct engine {
	mv_host *host;
	mv_vm *vm;
	struct mvg_os *os;
	uint64_t npages;
	uint64_t cap; /* Mem.CtlMaxPercent of the VM, pages */
};

static double per_page(uint64_t t0, uint64_t n)
{
	return (double)(bench_now_ns() - t0) / 1e3 / (double)n;
}

static double gibs(double us)
{
	return us > 0 ? MV_PAGE_SIZE / us * 1e6 / (1u << 30) : 0;
}

static void touch_all(uint8_t *mem, uint64_t npages)
{
	for (uint64_t p = 0; p < npages; p++)
		((volatile uint8_t *)mem)[p * MV_PAGE_SIZE] = (uint8_t)(p | 1);
}

/*
 * The floors: the kernel dropping n written frames, the first n of order
 * (address order if NULL) in 1 MiB runs, or page by page, or `batch`
 * pages per process_madvise() call (the engine's way for scattered pages).
 */
static int floor_run(uint64_t npages, uint64_t n, const uint64_t *order,
		     unsigned batch, double *us)
{
	size_t len = npages * MV_PAGE_SIZE;
	struct iovec iov[RUN_PAGES];
	uint64_t t0, run;
	uint8_t *mem;
	int err = 0;

	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return -errno;
	madvise(mem, len, MADV_NOHUGEPAGE);
	touch_all(mem, npages);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n && !err; i += run) {
		run = !order ? RUN_PAGES : batch;
		if (run > n - i)
			run = n - i;
		if (!order) {
			if (madvise(mem + i * MV_PAGE_SIZE, run * MV_PAGE_SIZE,
				    MADV_DONTNEED))
				err = -errno;
			continue;
		}
		for (uint64_t k = 0; k < run; k++)
			iov[k] = (struct iovec){
				.iov_base = mem + order[i + k] * MV_PAGE_SIZE,
				.iov_len = MV_PAGE_SIZE
			};
		if (run == 1 ? madvise(iov[0].iov_base, MV_PAGE_SIZE,
				       MADV_DONTNEED) :
			       syscall(SYS_process_madvise,
				       PIDFD_SELF_THREAD_GROUP, iov,
				       (size_t)run, MADV_DONTNEED, 0u) < 0)
			err = -errno;
	}
	*us = per_page(t0, n);
	munmap(mem, len);
	return err;
}

static int fail(struct engine *e, const char *what, int err)
{
	fprintf(stderr, "memvisor bench balloon: %s: %s%s%s\n", what,
		mv_strerror(err), e->host ? ": " : "",
		e->host ? mv_host_errmsg(e->host) : "");
	return err;
}

static void engine_down(struct engine *e)
{
	mvg_os_destroy(e->os);
	mv_vm_destroy(e->vm);
	mv_host_destroy(e->host);
}

static int engine_up(struct engine *e, uint64_t npages, const char *swapdir)
{
	struct mv_host_config hc;
	struct mv_vm_config vc;
	int err;

	memset(e, 0, sizeof(*e));
	e->npages = npages;
	bench_host_config(&hc);
	hc.memsize_bytes = 2 * npages * MV_PAGE_SIZE + (64u << 20);
	hc.swapdir = swapdir;
	e->cap = npages * hc.settings.ctl_max_pct / 100;
	err = mv_host_create(&hc, &e->host);
	if (err)
		return fail(e, "cannot create host", err);
	mv_vm_config_init(&vc);
	snprintf(vc.name, sizeof(vc.name), "bench-balloon");
	vc.memsize_bytes = npages * MV_PAGE_SIZE;
	err = mv_vm_create(e->host, &vc, &e->vm);
	if (err) {
		fail(e, "cannot create VM", err);
		goto fail_host;
	}
	err = mvg_os_create(mv_vm_mem(e->vm), vc.memsize_bytes, &e->os);
	if (err) {
		fail(e, "cannot create the guest OS", err);
		goto fail_vm;
	}
	return 0;

fail_vm:
	mv_vm_destroy(e->vm);
fail_host:
	mv_host_destroy(e->host);
	return err;
}

/* The VM holds `frames` frames and `ballooned` pages in its balloon. */
static int expect(struct engine *e, uint64_t frames, uint64_t ballooned,
		  const char *what)
{
	struct mv_vm_stats st;

	/* the guest is woken before its pages are published */
	for (uint64_t p = 0; p < e->npages; p++)
		mv_vm_page_state(e->vm, p);
	mv_vm_stats(e->vm, &st);
	if (st.consumed_pages == frames && st.mctlsz_pages == ballooned &&
	    st.state_pages[MV_PAGE_BALLOONED] == ballooned)
		return 0;
	fprintf(stderr,
		"memvisor bench balloon: after %s the VM holds %llu frames and %llu ballooned pages (%llu BALLOONED); expected %llu and %llu\n",
		what, (unsigned long long)st.consumed_pages,
		(unsigned long long)st.mctlsz_pages,
		(unsigned long long)st.state_pages[MV_PAGE_BALLOONED],
		(unsigned long long)frames, (unsigned long long)ballooned);
	return -EIO;
}

/*
 * The application writes every page and frees them all, in address order
 * (order NULL) or in the given one; the driver inflates to the cap, then
 * deflates.  Times both.
 */
static int driver_round(struct engine *e, const uint64_t *order, double *inf,
			double *def)
{
	struct mvg_balloon_config bc;
	struct mvg_balloon *drv;
	uint32_t *pfns;
	uint64_t t0;
	int err;

	pfns = malloc(e->npages * sizeof(*pfns));
	if (!pfns)
		return -ENOMEM;
	err = mvg_os_alloc(e->os, (unsigned)e->npages, pfns, 0);
	if (err != (int)e->npages) {
		free(pfns);
		return fail(e, "the guest OS cannot hand out every page",
			    err < 0 ? err : -ENOMEM);
	}
	touch_all(mv_vm_mem(e->vm), e->npages);
	for (uint64_t i = 0; order && i < e->npages; i++)
		pfns[i] = (uint32_t)order[i];
	err = mvg_os_free(e->os, pfns, (unsigned)e->npages, 0);
	free(pfns);
	if (err)
		return fail(e, "the guest OS refused the pages back", err);
	err = expect(e, e->npages, 0, "writing every page");
	if (err)
		return err;

	mvg_balloon_config_init(&bc);
	bc.manual = true;
	err = mvg_balloon_start(e->vm, e->os, &bc, &drv);
	if (err)
		return fail(e, "cannot load the balloon driver", err);
	mv_vm_balloon_set_target(e->vm, e->npages * MV_PAGE_SIZE);
	bench_watch("balloon inflate", e->cap);
	t0 = bench_now_ns();
	err = mvg_balloon_poll(drv);
	*inf = per_page(t0, e->cap);
	if (!err)
		err = expect(e, e->npages - e->cap, e->cap, "inflating");
	if (!err) {
		mv_vm_balloon_set_target(e->vm, 0);
		bench_watch("balloon deflate", e->cap);
		t0 = bench_now_ns();
		err = mvg_balloon_poll(drv);
		*def = per_page(t0, e->cap);
	}
	bench_watch(NULL, 0);
	mvg_balloon_stop(drv);
	if (!err)
		err = expect(e, e->npages - e->cap, 0, "deflating");
	return err;
}

/* The host's share: contiguous 256-PFN messages straight down the channel. */
static int channel_round(struct engine *e, double *us)
{
	struct mv_balloon_msg m = { .type = MV_BALLOON_MSG_INFLATE };
	struct mv_balloon_reply rep;
	mv_balloon_chan *ch;
	uint64_t t0, done = 0;
	int err;

	touch_all(mv_vm_mem(e->vm), e->npages);
	err = mv_balloon_open(e->vm, &ch);
	if (err)
		return fail(e, "cannot open the balloon channel", err);
	bench_watch("channel inflate", e->cap);
	t0 = bench_now_ns();
	while (done < e->cap && !err) {
		m.num = e->cap - done < MV_BALLOON_PFNS_MAX ?
				(uint32_t)(e->cap - done) :
				MV_BALLOON_PFNS_MAX;
		for (uint32_t i = 0; i < m.num; i++)
			m.u.pfns[i] = (uint32_t)(done + i);
		err = mv_balloon_send(ch, &m, &rep);
		if (!err && rep.accepted != m.num)
			err = -EIO;
		done += m.num;
	}
	*us = per_page(t0, e->cap);
	bench_watch(NULL, 0);
	if (!err)
		err = expect(e, e->npages - e->cap, e->cap,
			     "inflating through the channel");
	mv_balloon_close(ch);
	return err;
}

static int trial(uint64_t npages, const uint64_t *order, const char *swapdir,
		 double *us)
{
	struct engine e;
	uint64_t cap;
	int err;

	err = engine_up(&e, npages, swapdir);
	if (err)
		return err;
	cap = e.cap;
	err = driver_round(&e, NULL, &us[INF_SEQ], &us[DEF_SEQ]);
	if (!err)
		err = channel_round(&e, &us[HOST_SEQ]);
	engine_down(&e);
	if (!err)
		err = floor_run(npages, cap, NULL, 0, &us[FLOOR_RUN]);
	if (!err)
		err = engine_up(&e, npages, swapdir);
	if (err)
		return err;
	err = driver_round(&e, order, &us[INF_RAND], &us[DEF_RAND]);
	engine_down(&e);
	if (!err)
		err = floor_run(npages, cap, order + (npages - cap), 1,
				&us[FLOOR_PAGE]);
	if (!err)
		err = floor_run(npages, cap, order + (npages - cap), RUN_PAGES,
				&us[FLOOR_BATCH]);
	if (err == -EINVAL)
		fprintf(stderr,
			"memvisor bench balloon: process_madvise(MADV_DONTNEED) on this process needs Linux 6.13 or later\n");
	return err;
}

int bench_balloon(struct bench_report *r, uint64_t pages, unsigned trials,
		  const char *swapdir)
{
	double *samples, *fig[NFIGURES], med[NFIGURES];
	uint64_t *order;
	int err = 0;

	if (pages > UINT32_MAX || pages < 2 * RUN_PAGES) {
		fprintf(stderr,
			"memvisor bench balloon: --pages must be from %u to %u\n",
			2 * RUN_PAGES, UINT32_MAX);
		return -EINVAL;
	}
	samples = calloc((size_t)trials * NFIGURES, sizeof(*samples));
	order = calloc(pages, sizeof(*order));
	if (!samples || !order) {
		err = -ENOMEM;
		goto out;
	}
	bench_shuffle(order, pages, SEED);
	for (unsigned t = 0; t < trials && !err; t++) {
		double us[NFIGURES];

		err = trial(pages, order, swapdir, us);
		for (unsigned f = 0; f < NFIGURES && !err; f++)
			samples[(size_t)f * trials + t] = us[f];
	}
	if (err)
		goto out;
	for (unsigned f = 0; f < NFIGURES; f++) {
		fig[f] = samples + (size_t)f * trials;
		med[f] = bench_median(fig[f], trials);
	}
	bench_value(r, "inflate_gibs", gibs(med[INF_SEQ]));
	bench_value(r, "deflate_gibs", gibs(med[DEF_SEQ]));
	bench_value(r, "inflate_scattered_gibs", gibs(med[INF_RAND]));
	bench_value(r, "deflate_scattered_gibs", gibs(med[DEF_RAND]));
	bench_value(r, "floor_gibs", gibs(med[FLOOR_RUN]));
	bench_row(r, "floor_run", "MADV_DONTNEED, 1 MiB runs", fig[FLOOR_RUN],
		  NULL, NULL);
	bench_row(r, "floor_page", "MADV_DONTNEED, page by page, random",
		  fig[FLOOR_PAGE], NULL, NULL);
	bench_row(r, "floor_batch", "process_madvise, 256 random pages a call",
		  fig[FLOOR_BATCH], NULL, NULL);
	bench_row(r, "inflate", "inflate, guest freed in address order",
		  fig[INF_SEQ], "dontneed run", fig[FLOOR_RUN]);
	bench_row(r, "inflate_host", "host alone: 256-PFN messages, no guest",
		  fig[HOST_SEQ], "dontneed run", fig[FLOOR_RUN]);
	bench_row(r, "inflate_scattered",
		  "inflate, guest freed in random order", fig[INF_RAND],
		  "batched", fig[FLOOR_BATCH]);
	bench_row(r, "deflate", "deflate, address order", fig[DEF_SEQ], NULL,
		  NULL);
	bench_row(r, "deflate_scattered", "deflate, random order",
		  fig[DEF_RAND], NULL, NULL);
	bench_note(
		r,
		"inflate %.2f GiB/s (floor %.2f), deflate %.2f GiB/s; scattered: inflate %.2f GiB/s (floor %.2f), deflate %.2f GiB/s",
		gibs(med[INF_SEQ]), gibs(med[FLOOR_RUN]), gibs(med[DEF_SEQ]),
		gibs(med[INF_RAND]), gibs(med[FLOOR_BATCH]),
		gibs(med[DEF_RAND]));
	bench_note(
		r,
		"each round moves Mem.CtlMaxPercent of the VM; deflate only marks pages, their refill is `memvisor bench fault`");
out:
	free(order);
	free(samples);
	return err;
}

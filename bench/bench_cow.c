// SPDX-License-Identifier: MIT
/*
 * bench_cow.c - `memvisor bench cow`: what page sharing costs per page,
 * beside what the kernel needs for the same steps.
 *
 * Design: two VMs of N pages hold the same N distinct random pages.  A pass
 * of the share scanner over the first stores N hints; a pass over the
 * second merges N pairs (move out, compare bit by bit, one pool frame, two
 * mappings); both are timed per page.  Then a guest thread writes one byte
 * to each shared page of the first VM in a random order, each write timed:
 * a copy-on-write break through userfaultfd.  Floors measured in the same
 * run: the raw userfaultfd round trip (a handler doing only UFFDIO_COPY),
 * the kernel's own copy-on-write of a page of a private file mapping (no
 * handler at all), and for merging the bare mmap(MAP_FIXED) of a memfd page
 * over anonymous memory.  The mappings sharing added are counted, per
 * shared page, against vm.max_map_count.
 *
 * After every trial each page of both VMs must hold its bytes (the written
 * byte in the first), or the benchmark fails.
 *
 * Lock ordering: none; one thread drives everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "memvisor.h"

#define SEED 0x636f7721ull

enum figure {
	HINT, /* scanner pass storing hints, per page */
	MERGE, /* scanner pass merging pairs, per page */
	MAP_FLOOR, /* mmap(MAP_FIXED) of a memfd page over anonymous memory */
	COW, /* copy-on-write break of a shared page, per write */
	KCOW, /* the kernel's COW of a private file page, per write */
	UFFD, /* raw userfaultfd round trip */
	MAPS, /* mappings added per shared page */
	NFIG
};

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s * 0x2545f4914f6cdd1dull;
}

static long count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int ch;

	if (!f)
		return -1;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

/* Per-write times of one byte written to each page in order, median. */
static double timed_writes(uint8_t *mem, const uint64_t *order, uint64_t n,
			   double *samples)
{
	uint64_t t0;

	for (uint64_t i = 0; i < n; i++) {
		t0 = bench_now_ns();
		((volatile uint8_t *)mem)[order[i] * MV_PAGE_SIZE] ^= 0xff;
		samples[i] = (double)(bench_now_ns() - t0) / 1e3;
	}
	return bench_median(samples, (unsigned)n);
}

static int kernel_floors(const uint8_t *src, const uint64_t *order, uint64_t n,
			 double *samples, double *kcow, double *map_us)
{
	size_t len = n * MV_PAGE_SIZE;
	uint8_t *priv, *anon;
	uint64_t t0;
	int fd, err = 0;

	fd = memfd_create("bench-cow", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (pwrite(fd, src, len, 0) != (ssize_t)len) {
		close(fd);
		return -EIO;
	}
	priv = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	anon = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (priv == MAP_FAILED || anon == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	*kcow = timed_writes(priv, order, n, samples);
	memset(anon, 1, len);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < n; i++)
		if (mmap(anon + order[i] * MV_PAGE_SIZE, MV_PAGE_SIZE,
			 PROT_READ | PROT_WRITE, MAP_FIXED | MAP_PRIVATE, fd,
			 (off_t)(order[i] * MV_PAGE_SIZE)) == MAP_FAILED) {
			err = -errno;
			goto out;
		}
	*map_us = (double)(bench_now_ns() - t0) / 1e3 / (double)n;
out:
	if (priv != MAP_FAILED)
		munmap(priv, len);
	if (anon != MAP_FAILED)
		munmap(anon, len);
	close(fd);
	return err;
}

static int engine(uint64_t n, const uint8_t *src, const uint64_t *order,
		  const char *swapdir, double *samples, double *fig)
{
	struct mv_host_config hc;
	struct mv_vm_config vc;
	mv_host *host;
	mv_vm *vm[2] = { NULL, NULL };
	uint64_t merged, t0, bad = 0;
	long maps0;
	uint8_t *m;
	int err;

	bench_host_config(&hc);
	hc.memsize_bytes = 4 * n * MV_PAGE_SIZE + (64ull << 20);
	hc.swapdir = swapdir;
	mv_settings_set(&hc.settings, "Mem.ShareForceSalting", "0");
	err = mv_host_create(&hc, &host);
	if (err)
		return err;
	for (int i = 0; i < 2; i++) {
		mv_vm_config_init(&vc);
		snprintf(vc.name, sizeof(vc.name), "cow%d", i);
		vc.memsize_bytes = n * MV_PAGE_SIZE;
		err = mv_vm_create(host, &vc, &vm[i]);
		if (err)
			goto out;
		memcpy(mv_vm_mem(vm[i]), src, n * MV_PAGE_SIZE);
	}
	maps0 = count_maps();
	t0 = bench_now_ns();
	mv_vm_share_scan(vm[0], n, NULL);
	fig[HINT] = (double)(bench_now_ns() - t0) / 1e3 / (double)n;
	t0 = bench_now_ns();
	mv_vm_share_scan(vm[1], n, &merged);
	fig[MERGE] = (double)(bench_now_ns() - t0) / 1e3 / (double)n;
	/* a merged pair counts its two pages */
	fig[MAPS] = merged ? (double)(count_maps() - maps0) / (double)merged :
			     0;
	if (merged != 2 * n) {
		fprintf(stderr,
			"bench cow: %llu of %llu equal pages merged (expected all)\n",
			(unsigned long long)merged,
			(unsigned long long)(2 * n));
		err = -EPROTO;
		goto out;
	}
	fig[COW] = timed_writes(mv_vm_mem(vm[0]), order, n, samples);
	for (int i = 0; i < 2; i++) {
		m = mv_vm_mem(vm[i]);
		for (uint64_t p = 0; p < n; p++) {
			const uint8_t *want = src + p * MV_PAGE_SIZE;
			unsigned first = i ? want[0] : want[0] ^ 0xffu;

			bad += m[p * MV_PAGE_SIZE] != first ||
			       memcmp(m + p * MV_PAGE_SIZE + 1, want + 1,
				      MV_PAGE_SIZE - 1);
		}
	}
	if (bad) {
		fprintf(stderr,
			"bench cow: %llu pages do not hold their bytes after copy-on-write\n",
			(unsigned long long)bad);
		err = -EIO;
	}
out:
	for (int i = 0; i < 2; i++)
		mv_vm_destroy(vm[i]);
	mv_host_destroy(host);
	return err;
}

int bench_cow(struct bench_report *r, uint64_t pages, unsigned trials,
	      const char *swapdir)
{
	double fig[NFIG][trials], one[NFIG], *samples;
	static const uint8_t zeros[MV_PAGE_SIZE]; /* the floor's one page */
	uint64_t *order, seed = SEED;
	uint8_t *src;
	int err = 0;

	src = malloc(pages * MV_PAGE_SIZE);
	order = malloc(pages * sizeof(*order));
	samples = malloc(pages * sizeof(*samples));
	if (!src || !order || !samples) {
		err = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < pages * MV_PAGE_SIZE / 8; i++)
		((uint64_t *)src)[i] = xs(&seed);
	for (uint64_t i = 0; i < pages; i++)
		order[i] = i;
	bench_shuffle(order, pages, SEED);
	for (unsigned t = 0; t < trials && !err; t++) {
		bench_watch("share and copy-on-write", pages);
		err = engine(pages, src, order, swapdir, samples, one);
		if (!err)
			err = kernel_floors(src, order, pages, samples,
					    &one[KCOW], &one[MAP_FLOOR]);
		if (!err)
			err = bench_uffd_floor(pages, order, false, zeros,
					       &one[UFFD]);
		for (int f = 0; f < NFIG && !err; f++)
			fig[f][t] = one[f];
	}
	if (err)
		goto out;
	bench_row(r, "share_hint", "scan storing hints, per page", fig[HINT],
		  NULL, NULL);
	bench_row(r, "share_merge", "scan merging pairs, per page", fig[MERGE],
		  "mmap of a memfd page", fig[MAP_FLOOR]);
	bench_row(r, "cow", "copy-on-write break, per write (median)", fig[COW],
		  "uffd round trip", fig[UFFD]);
	bench_row(r, "cow_vs_kernel", "  the same, beside the kernel's own COW",
		  fig[COW], "kernel COW", fig[KCOW]);
	bench_value(r, "maps_per_shared_page", bench_median(fig[MAPS], trials));
	bench_note(
		r,
		"%.2f mappings per shared page (both VMs hold the pages in the same order, so neighbours get neighbouring frames and their mappings merge): about %.0f shared pages fit under vm.max_map_count = 65530",
		bench_median(fig[MAPS], trials),
		65530 / (bench_median(fig[MAPS], trials) > 0 ?
				 bench_median(fig[MAPS], trials) :
				 1));
out:
	free(src);
	free(order);
	free(samples);
	return err;
}

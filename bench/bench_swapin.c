// SPDX-License-Identifier: MIT
/*
 * bench_swapin.c - `memvisor bench swapin`: hypervisor swapping, both ways,
 * beside raw I/O on the very same swap file.
 *
 * Design: a VM of N pages is filled with incompressible pages that name
 * themselves (ppn and version in the first word), swapped out whole
 * (mv_vm_swap_out: random victims, ESX's policy), and read back by a guest
 * thread touching every page, once in address order and, after a rewrite
 * and a second swap-out, once in a random order.  The same random order is
 * run again on a host with Mem.SwapInClusterPages=1, one page per fault, the
 * figure comparable with a raw 4 KiB read, and twice more with the guest
 * thread pinned, as VM hosts pin vCPUs, to the first and then the last CPU
 * it may use, where the engine's fault thread follows it
 * (Mem.ServiceAffinity).  Each read's completion wakes the fault thread
 * from the CPU that takes the disk's interrupts: measured here (those on
 * CPU 1), 1.24x the raw read pinned on CPU 1, 1.66x on CPU 0, 1.28-1.47x
 * unpinned.
 *
 * The floors are measured on the engine's own swap file, reached through
 * /proc/self/fd (it is unlinked as soon as it is made) and opened again with
 * the flags the engine gave it (O_DIRECT unless the filesystem refused it).
 * Reads run while every page is swapped out: the whole file in clusters
 * (Mem.SwapInClusterPages pages, 64 KiB by default) in file order, the same
 * clusters in a random order, and single 4 KiB slots in a random order.
 * Writes run once every page is back in memory, when no slot holds anything
 * the engine will read again: single 4 KiB slots in a random order (what
 * swapping one page at a time costs) and clusters in file order (what a
 * batch written to consecutive slots costs).  Which slot holds which page
 * is the engine's business, so the floors never assume a layout: they read
 * every slot, and the file-order pass checks that the file holds every page
 * exactly once, in its latest version.
 *
 * Each trial measures every figure once, so the noise of a virtual machine
 * falls on figures and floors alike; the report has medians.  The first
 * swap-out of a VM writes into preallocated, never-written extents, which
 * the filesystem must convert; later ones need not: both are reported.
 *
 * Only the loops are timed.  After each swap-in every page must hold its
 * latest version and the VM's counters must add up, or the benchmark fails
 * naming the page: a fast wrong answer is no figure.
 *
 * Invariants: the benchmark writes into the engine's swap file only while
 * every page of the VM is PRIVATE, i.e. no slot is live.
 *
 * Lock ordering: none; one thread drives everything.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "memvisor.h"

#define SEED 0x73776170696e2121ull
#define SETTLE_TRIES 1000 /* of 1 ms */
#define WORDS (MV_PAGE_SIZE / 8)
#define MAGIC 0x5357ull /* "SW": top 16 bits of a page's first word */

enum figure {
	OUT_FRESH, /* first swap-out, into never-written extents */
	OUT_AGAIN, /* later swap-outs, overwriting */
	RAW_WRITE, /* pwrite 4 KiB, random order */
	RAW_WRITE_SEQ, /* pwrite one cluster, file order */
	RAW_SEQ, /* pread one cluster, file order */
	RAW_CLUSTERS, /* pread one cluster, random order */
	RAW_PAGES, /* pread 4 KiB, random order */
	IN_SEQ, /* swap-in by touch, default cluster, address order */
	IN_RAND, /* the same, random order */
	IN1_RAND, /* Mem.SwapInClusterPages=1, random order */
	IN1_PIN_FIRST, /* the same, the guest pinned to the first CPU */
	IN1_PIN_LAST, /* ... and to the last CPU it may use */
	NFIGURES
};

struct counts {
	uint64_t stragglers; /* pages mv_vm_swap_out left, taken one by one */
	double faults_per_page[NFIGURES]; /* for the swap-in figures */
	bool direct; /* the engine's swap file is O_DIRECT */
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The first word of version gen of page ppn: it names the page. */
static uint64_t header(uint64_t ppn, uint64_t gen)
{
	return MAGIC << 48 | (gen & 0xffff) << 32 | ppn;
}

/* Word i of a page; the rest of the page is incompressible noise. */
static uint64_t word(uint64_t ppn, uint64_t gen, unsigned i)
{
	return i ? mix(SEED ^ header(ppn, gen) ^ (uint64_t)i << 40) :
		   header(ppn, gen);
}

static void fill(uint8_t *mem, uint64_t npages, uint64_t gen)
{
	uint64_t *w;

	for (uint64_t ppn = 0; ppn < npages; ppn++) {
		w = (uint64_t *)(mem + ppn * MV_PAGE_SIZE);
		for (unsigned i = 0; i < WORDS; i++)
			w[i] = word(ppn, gen, i);
	}
}

/* Page ppn must hold version gen; names the first word that does not. */
static int check_page(const uint8_t *page, uint64_t ppn, uint64_t gen,
		      const char *what)
{
	const uint64_t *w = (const uint64_t *)page;

	for (unsigned i = 0; i < WORDS; i++) {
		if (w[i] == word(ppn, gen, i))
			continue;
		fprintf(stderr,
			"memvisor bench swapin: %s: page %" PRIu64
			" word %u is %#" PRIx64 ", expected %#" PRIx64
			" (version %" PRIu64 ")\n",
			what, ppn, i, w[i], word(ppn, gen, i), gen);
		return -EIO;
	}
	return 0;
}

static int check(const uint8_t *mem, uint64_t npages, uint64_t gen,
		 const char *what)
{
	int err = 0;

	for (uint64_t ppn = 0; ppn < npages && !err; ppn++)
		err = check_page(mem + ppn * MV_PAGE_SIZE, ppn, gen, what);
	return err;
}

/*
 * A slot read raw must hold some page's version gen: its first two words
 * are checked (the whole page would cost more than the read being timed).
 * With seen, also counts the page and fails if it was seen before.
 */
static int check_slot(const uint8_t *page, uint64_t slot, uint64_t npages,
		      uint64_t gen, uint8_t *seen, uint64_t *nseen)
{
	const uint64_t *w = (const uint64_t *)page;
	uint64_t ppn = w[0] & 0xffffffffull;

	if (w[0] != header(ppn, gen) || ppn >= npages ||
	    w[1] != word(ppn, gen, 1)) {
		fprintf(stderr,
			"memvisor bench swapin: swap file slot %" PRIu64
			" holds no page of version %" PRIu64
			" while every page is swapped out (first words %#" PRIx64
			" %#" PRIx64 ")\n",
			slot, gen, w[0], w[1]);
		return -EIO;
	}
	if (!seen)
		return 0;
	if (seen[ppn / 8] & 1u << ppn % 8) {
		fprintf(stderr,
			"memvisor bench swapin: page %" PRIu64
			" is in two swap slots, the second %" PRIu64 "\n",
			ppn, slot);
		return -EIO;
	}
	seen[ppn / 8] |= (uint8_t)(1u << ppn % 8);
	++*nseen;
	return 0;
}

static double us_per_page(uint64_t t0, uint64_t npages)
{
	return (double)(bench_now_ns() - t0) / 1e3 / (double)npages;
}

/*
 * Opens the engine's swap file again, the only file open under swapdir,
 * with the flags the engine gave it.
 */
static int open_swap_file(const char *swapdir, bool *direct, int *out)
{
	char path[64], target[4096], line[128];
	size_t dirlen = strlen(swapdir);
	unsigned long flags = 0;
	struct dirent *d;
	int num = -1, fd;
	ssize_t n;
	FILE *f;
	DIR *dir;

	dir = opendir("/proc/self/fd");
	if (!dir)
		return -errno;
	while (num < 0 && (d = readdir(dir))) {
		if (d->d_name[0] < '0' || d->d_name[0] > '9')
			continue;
		n = readlinkat(dirfd(dir), d->d_name, target,
			       sizeof(target) - 1);
		if (n <= (ssize_t)dirlen)
			continue;
		target[n] = '\0';
		if (!strncmp(target, swapdir, dirlen) && target[dirlen] == '/')
			num = atoi(d->d_name);
	}
	closedir(dir);
	if (num < 0) {
		fprintf(stderr,
			"memvisor bench swapin: no open swap file under %s\n",
			swapdir);
		return -ENOENT;
	}
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", num);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "flags: %lo", &flags) == 1)
			break;
	fclose(f);
	*direct = flags & O_DIRECT;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", num);
	fd = open(path, O_RDWR | O_CLOEXEC | (*direct ? O_DIRECT : 0));
	if (fd < 0)
		return -errno;
	*out = fd;
	return 0;
}

static int io_error(const char *what, ssize_t got)
{
	int err = got < 0 ? -errno : -EIO;

	fprintf(stderr, "memvisor bench swapin: %s: %s\n", what,
		got < 0 ? strerror(errno) : "short transfer");
	return err;
}

/* An I/O pattern: runs of `run` slots (fewer at the end) from each start. */
struct pattern {
	const uint64_t *start;
	uint64_t n;
	unsigned run;
};

/*
 * Raw I/O on the swap file by pattern; us/page.  Reads check every slot
 * (check_slot) and, given seen, which pages they found.
 */
static int raw_io(int fd, const struct pattern *p, uint64_t npages,
		  uint8_t *buf, bool write, uint64_t gen, uint8_t *seen,
		  uint64_t *nseen, double *us)
{
	uint64_t t0 = bench_now_ns(), pages = 0, slot, n;
	ssize_t got;
	size_t len;
	int err;

	for (uint64_t i = 0; i < p->n; i++) {
		slot = p->start[i];
		n = npages - slot < p->run ? npages - slot : p->run;
		len = n * MV_PAGE_SIZE;
		if (write)
			got = pwrite(fd, buf, len,
				     (off_t)(slot * MV_PAGE_SIZE));
		else
			got = pread(fd, buf, len, (off_t)(slot * MV_PAGE_SIZE));
		if (got != (ssize_t)len)
			return io_error(write ? "raw pwrite" : "raw pread",
					got);
		for (uint64_t j = 0; !write && j < n; j++) {
			err = check_slot(buf + j * MV_PAGE_SIZE, slot + j,
					 npages, gen, seen, nseen);
			if (err)
				return err;
		}
		pages += n;
	}
	*us = us_per_page(t0, pages);
	return 0;
}

/*
 * Waits until the pmap counts `want` pages in state s: the engine wakes a
 * guest before it books the fill, so the last fault's bookkeeping may trail
 * the guest's last touch.
 */
static int settle(mv_vm *vm, enum mv_page_state s, uint64_t want,
		  struct mv_vm_stats *st)
{
	struct timespec pause = { 0, 1000000 };
	int err;

	for (int tries = 0; tries < SETTLE_TRIES; tries++) {
		if (tries)
			nanosleep(&pause, NULL);
		err = mv_vm_stats(vm, st);
		if (err || st->state_pages[s] == want)
			return err;
	}
	return 0;
}

/*
 * Swaps out every page: mv_vm_swap_out (random victims) is timed; the few
 * pages its random probes miss at the end are then taken by number.
 */
static int swap_out_all(mv_vm *vm, uint64_t npages, double *us,
			uint64_t *stragglers)
{
	uint64_t t0, total = 0, done;
	struct mv_vm_stats st;
	int err;

	bench_watch("swap-out", npages);
	t0 = bench_now_ns();
	while (total < npages) {
		err = mv_vm_swap_out(vm, npages - total, &done);
		if (err) {
			fprintf(stderr,
				"memvisor bench swapin: mv_vm_swap_out: %s\n",
				mv_strerror(err));
			return err;
		}
		if (!done)
			break;
		total += done;
	}
	if (!total) {
		fprintf(stderr,
			"memvisor bench swapin: mv_vm_swap_out swapped out none of %" PRIu64
			" private pages\n",
			npages);
		return -EIO;
	}
	*us = us_per_page(t0, total);
	*stragglers += npages - total;
	for (uint64_t ppn = 0; total < npages && ppn < npages; ppn++) {
		if (mv_vm_page_state(vm, ppn) != MV_PAGE_PRIVATE)
			continue;
		err = mv_vm_swap_out_page(vm, ppn);
		if (err) {
			fprintf(stderr,
				"memvisor bench swapin: mv_vm_swap_out_page(%" PRIu64
				"): %s\n",
				ppn, mv_strerror(err));
			return err;
		}
		total++;
	}
	err = mv_vm_stats(vm, &st);
	if (err)
		return err;
	if (st.state_pages[MV_PAGE_SWAPPED] != npages ||
	    st.swcur_pages != npages || st.consumed_pages || st.swap_errors) {
		fprintf(stderr,
			"memvisor bench swapin: after swapping out all %" PRIu64
			" incompressible pages the VM counts %" PRIu64
			" swapped, %" PRIu64 " compressed, SWCUR %" PRIu64
			", %" PRIu64 " consumed, %" PRIu64 " swap errors\n",
			npages, st.state_pages[MV_PAGE_SWAPPED],
			st.state_pages[MV_PAGE_COMPRESSED], st.swcur_pages,
			st.consumed_pages, st.swap_errors);
		return -EIO;
	}
	return 0;
}

/*
 * The guest reads one word of every page, in order[] or address order,
 * which swaps each back in; then every page must hold version gen.
 */
static int swap_in_all(mv_vm *vm, const uint64_t *order, uint64_t gen,
		       const char *what, double *us, double *faults_per_page)
{
	const volatile uint64_t *mem = mv_vm_mem(vm);
	uint64_t npages = mv_vm_memsize(vm) / MV_PAGE_SIZE, t0, faults0;
	struct mv_vm_stats st;
	int err;

	err = mv_vm_stats(vm, &st);
	if (err)
		return err;
	faults0 = st.faults;
	bench_watch(what, npages);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < npages; i++)
		(void)mem[(order ? order[i] : i) * WORDS];
	*us = us_per_page(t0, npages);
	bench_watch(NULL, 0);
	err = check(mv_vm_mem(vm), npages, gen, what);
	if (!err)
		err = settle(vm, MV_PAGE_PRIVATE, npages, &st);
	if (err)
		return err;
	*faults_per_page = (double)(st.faults - faults0) / (double)npages;
	if (st.state_pages[MV_PAGE_PRIVATE] != npages || st.swcur_pages ||
	    st.fault_errors) {
		fprintf(stderr,
			"memvisor bench swapin: %s: after touching all %" PRIu64
			" pages the VM counts %" PRIu64
			" private, SWCUR %" PRIu64 ", %" PRIu64
			" fault errors\n",
			what, npages, st.state_pages[MV_PAGE_PRIVATE],
			st.swcur_pages, st.fault_errors);
		return -EIO;
	}
	return 0;
}

static int vm_up(uint64_t npages, unsigned cluster, const char *swapdir,
		 mv_host **host, mv_vm **vm)
{
	struct mv_host_config hc;
	struct mv_vm_config vc;
	int err;

	bench_host_config(&hc);
	/* twice the VM: free memory stays far above minFree, no reclaim */
	hc.memsize_bytes = 2 * npages * MV_PAGE_SIZE + (64u << 20);
	hc.swapdir = swapdir;
	hc.settings.swapin_cluster_pages = cluster;
	err = mv_host_create(&hc, host);
	if (err) {
		fprintf(stderr,
			"memvisor bench swapin: cannot create host: %s\n",
			mv_strerror(err));
		return err;
	}
	mv_vm_config_init(&vc);
	snprintf(vc.name, sizeof(vc.name), "bench-swapin");
	vc.memsize_bytes = npages * MV_PAGE_SIZE;
	err = mv_vm_create(*host, &vc, vm);
	if (err) {
		fprintf(stderr, "memvisor bench swapin: cannot create VM: %s\n",
			mv_host_errmsg(*host));
		mv_host_destroy(*host);
	}
	return err;
}

/*
 * The orders things happen in.  A random permutation serves twice: as the
 * guest's order of pages and as the floor's order of slots.
 */
struct patterns {
	struct pattern seq; /* clusters in file order */
	struct pattern clusters; /* clusters in a random order */
	struct pattern pages; /* single slots (or pages) in a random order */
	uint8_t *seen; /* a bit per page, for the file-order read */
};

static int patterns_make(struct patterns *p, uint64_t npages, unsigned cluster)
{
	uint64_t nclusters = (npages + cluster - 1) / cluster, *seq, *cl, *pg;

	seq = calloc(nclusters, sizeof(*seq));
	cl = calloc(nclusters, sizeof(*cl));
	pg = calloc(npages, sizeof(*pg));
	p->seen = calloc((npages + 7) / 8, 1);
	if (!seq || !cl || !pg || !p->seen) {
		free(p->seen);
		free(pg);
		free(cl);
		free(seq);
		return -ENOMEM;
	}
	bench_shuffle(pg, npages, SEED);
	bench_shuffle(cl, nclusters, SEED + 1);
	for (uint64_t c = 0; c < nclusters; c++) {
		seq[c] = c * cluster;
		cl[c] *= cluster;
	}
	p->seq = (struct pattern){ .start = seq,
				   .n = nclusters,
				   .run = cluster };
	p->clusters =
		(struct pattern){ .start = cl, .n = nclusters, .run = cluster };
	p->pages = (struct pattern){ .start = pg, .n = npages, .run = 1 };
	return 0;
}

static void patterns_free(struct patterns *p)
{
	free((void *)p->seq.start);
	free((void *)p->clusters.start);
	free((void *)p->pages.start);
	free(p->seen);
}

/* The floors' reads, while every page is swapped out as version gen. */
static int raw_reads(int fd, const struct patterns *pat, uint64_t npages,
		     uint8_t *buf, uint64_t gen, double *us)
{
	uint64_t nseen = 0;
	int err;

	memset(pat->seen, 0, (npages + 7) / 8);
	err = raw_io(fd, &pat->seq, npages, buf, false, gen, pat->seen, &nseen,
		     &us[RAW_SEQ]);
	if (!err && nseen != npages) {
		fprintf(stderr,
			"memvisor bench swapin: the swap file holds %" PRIu64
			" of the %" PRIu64 " pages swapped out\n",
			nseen, npages);
		err = -EIO;
	}
	if (!err)
		err = raw_io(fd, &pat->clusters, npages, buf, false, gen, NULL,
			     NULL, &us[RAW_CLUSTERS]);
	if (!err)
		err = raw_io(fd, &pat->pages, npages, buf, false, gen, NULL,
			     NULL, &us[RAW_PAGES]);
	return err;
}

/*
 * Host with the default cluster: swap-out, raw reads, swap-in in address
 * order, rewrite, swap-out, swap-in in random order, raw writes.
 */
static int run_default(uint64_t npages, const struct patterns *pat,
		       const char *swapdir, uint64_t gen, uint8_t *buf,
		       double *us, struct counts *c)
{
	mv_host *host;
	mv_vm *vm;
	int err, fd = -1;

	err = vm_up(npages, pat->seq.run, swapdir, &host, &vm);
	if (err)
		return err;
	err = open_swap_file(swapdir, &c->direct, &fd);
	if (err)
		goto out_vm;
	fill(mv_vm_mem(vm), npages, gen);
	err = swap_out_all(vm, npages, &us[OUT_FRESH], &c->stragglers);
	if (!err)
		err = raw_reads(fd, pat, npages, buf, gen, us);
	if (!err)
		err = swap_in_all(vm, NULL, gen, "swap-in, address order",
				  &us[IN_SEQ], &c->faults_per_page[IN_SEQ]);
	if (err)
		goto out_fd;
	fill(mv_vm_mem(vm), npages, gen + 1);
	err = swap_out_all(vm, npages, &us[OUT_AGAIN], &c->stragglers);
	if (!err)
		err = swap_in_all(vm, pat->pages.start, gen + 1,
				  "swap-in, random order", &us[IN_RAND],
				  &c->faults_per_page[IN_RAND]);
	/* every page is PRIVATE again: no slot is live */
	if (!err)
		err = raw_io(fd, &pat->pages, npages, buf, true, 0, NULL, NULL,
			     &us[RAW_WRITE]);
	if (!err)
		err = raw_io(fd, &pat->seq, npages, buf, true, 0, NULL, NULL,
			     &us[RAW_WRITE_SEQ]);
out_fd:
	close(fd);
out_vm:
	mv_vm_destroy(vm);
	mv_host_destroy(host);
	return err;
}

/*
 * Host with Mem.SwapInClusterPages=1: swap-in in random order, figure f:
 * IN1_RAND with the guest wherever the scheduler puts it, IN1_PIN_* with
 * it pinned to `cpu` for the whole VM, as a VM host pins a vCPU (the
 * engine's fault thread then follows it there, Mem.ServiceAffinity).
 */
static int run_cluster1(uint64_t npages, const uint64_t *order,
			const char *swapdir, uint64_t gen, enum figure f,
			int cpu, double *us, struct counts *c)
{
	const char *what = f == IN1_RAND ?
				   "swap-in, random order, cluster 1" :
				   "swap-in, random order, cluster 1, pinned";
	double out_us;
	cpu_set_t was;
	mv_host *host;
	mv_vm *vm;
	int err, err2;

	/* pinned from before the first fault: the fault thread reads a
	 * vCPU's mask when it first sees the thread (affinity.c) */
	err = bench_pin_self("swapin", cpu, &was);
	if (err)
		return err;
	err = vm_up(npages, 1, swapdir, &host, &vm);
	if (err)
		goto out;
	fill(mv_vm_mem(vm), npages, gen);
	err = swap_out_all(vm, npages, &out_us, &c->stragglers);
	if (!err)
		err = swap_in_all(vm, order, gen, what, &us[f],
				  &c->faults_per_page[f]);
	mv_vm_destroy(vm);
	mv_host_destroy(host);
out:
	err2 = bench_unpin_self("swapin", cpu, &was);
	return err ? err : err2;
}

int bench_swapin(struct bench_report *r, uint64_t pages, unsigned trials,
		 const char *swapdir)
{
	double *samples, *fig[NFIGURES], med[NFIGURES], us[NFIGURES];
	struct mv_settings defaults;
	struct patterns pat;
	struct counts c = { 0 };
	unsigned cluster;
	size_t buflen;
	uint8_t *buf;
	int err, cpu[2];

	mv_settings_init(&defaults);
	cluster = defaults.swapin_cluster_pages;
	cpu[0] = bench_first_cpu();
	cpu[1] = bench_last_cpu();
	if (cpu[0] < 0 || cpu[1] < 0)
		return cpu[0] < 0 ? cpu[0] : cpu[1];
	buflen = (size_t)cluster * MV_PAGE_SIZE;
	err = patterns_make(&pat, pages, cluster);
	if (err)
		return err;
	samples = calloc((size_t)trials * NFIGURES, sizeof(*samples));
	buf = aligned_alloc(MV_PAGE_SIZE, buflen);
	if (!samples || !buf) {
		err = -ENOMEM;
		goto out;
	}
	memset(buf, 0x5a, buflen);
	for (unsigned t = 0; t < trials; t++) {
		err = run_default(pages, &pat, swapdir, 4 * t, buf, us, &c);
		if (!err)
			err = run_cluster1(pages, pat.pages.start, swapdir,
					   4 * t + 2, IN1_RAND, -1, us, &c);
		for (unsigned k = 0; k < 2 && !err; k++)
			err = run_cluster1(pages, pat.pages.start, swapdir,
					   4 * t + 3, IN1_PIN_FIRST + k, cpu[k],
					   us, &c);
		if (err)
			goto out;
		for (unsigned f = 0; f < NFIGURES; f++)
			samples[(size_t)f * trials + t] = us[f];
	}
	for (unsigned f = 0; f < NFIGURES; f++) {
		fig[f] = samples + (size_t)f * trials;
		med[f] = bench_median(fig[f], trials);
	}

	bench_value(r, "swapin_us", med[IN_SEQ]);
	bench_value(r, "floor_us", med[RAW_SEQ]);
	bench_value(r, "ratio", med[IN_SEQ] / med[RAW_SEQ]);
	bench_value(r, "swapout_us", med[OUT_AGAIN]);
	bench_value(r, "swapout_floor_us", med[RAW_WRITE_SEQ]);
	bench_value(r, "direct_io", c.direct);
	bench_value(r, "cluster_pages", cluster);
	bench_value(r, "swap_run_pages", defaults.swap_run_pages);
	bench_value(r, "stragglers", (double)c.stragglers);
	bench_row(r, "raw_seq", "raw pread cluster, file order", fig[RAW_SEQ],
		  NULL, NULL);
	bench_row(r, "raw_clusters", "raw pread cluster, random order",
		  fig[RAW_CLUSTERS], NULL, NULL);
	bench_row(r, "raw_pages", "raw pread 4 KiB, random order",
		  fig[RAW_PAGES], NULL, NULL);
	bench_row(r, "raw_write_seq", "raw pwrite cluster, file order",
		  fig[RAW_WRITE_SEQ], NULL, NULL);
	bench_row(r, "raw_write", "raw pwrite 4 KiB, random order",
		  fig[RAW_WRITE], NULL, NULL);
	bench_row(r, "swapin_seq", "swap-in, address order", fig[IN_SEQ],
		  "pread cl seq", fig[RAW_SEQ]);
	bench_row(r, "swapin_rand", "swap-in, random order", fig[IN_RAND],
		  "pread cl rand", fig[RAW_CLUSTERS]);
	bench_row(r, "swapin1_rand", "swap-in, random order, cluster 1",
		  fig[IN1_RAND], "pread 4K rand", fig[RAW_PAGES]);
	bench_row(r, "swapin1_pin_first", "swap-in, rand, cl 1, first CPU",
		  fig[IN1_PIN_FIRST], "pread 4K rand", fig[RAW_PAGES]);
	bench_row(r, "swapin1_pin_last", "swap-in, rand, cl 1, last CPU",
		  fig[IN1_PIN_LAST], "pread 4K rand", fig[RAW_PAGES]);
	bench_row(r, "swapout_fresh", "swap-out, first (fresh file)",
		  fig[OUT_FRESH], "pwrite cl seq", fig[RAW_WRITE_SEQ]);
	bench_row(r, "swapout", "swap-out, again (overwrite)", fig[OUT_AGAIN],
		  "pwrite cl seq", fig[RAW_WRITE_SEQ]);
	bench_note(
		r,
		"swap file %s; cluster = Mem.SwapInClusterPages = %u pages (%u KiB); Mem.SwapRunPages = %u",
		c.direct ? "O_DIRECT" :
			   "in the page cache (O_DIRECT refused here)",
		cluster, cluster * MV_PAGE_SIZE / 1024,
		defaults.swap_run_pages);
	bench_note(
		r,
		"uffd events per page (last trial): address order %.3f, random %.3f, random cluster 1 %.3f, pinned %.3f and %.3f",
		c.faults_per_page[IN_SEQ], c.faults_per_page[IN_RAND],
		c.faults_per_page[IN1_RAND], c.faults_per_page[IN1_PIN_FIRST],
		c.faults_per_page[IN1_PIN_LAST]);
	bench_note(
		r,
		"first CPU, last CPU: the guest alone on CPU %d, then on CPU %d, for the whole VM, with the engine's fault thread beside it (Mem.ServiceAffinity), as a VM host pins a vCPU; the other rows leave it where the scheduler puts it. A read's completion wakes the fault thread from the CPU that takes the disk's interrupts (/proc/interrupts): from another CPU that is an inter-processor interrupt",
		cpu[0], cpu[1]);
	bench_note(
		r,
		"pages mv_vm_swap_out's random probes missed, swapped by number (untimed): %" PRIu64
		" in %u swap-outs of %" PRIu64 " pages",
		c.stragglers, 3 * trials, pages);
	err = 0;
out:
	free(buf);
	free(samples);
	patterns_free(&pat);
	return err;
}

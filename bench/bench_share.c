// SPDX-License-Identifier: MIT
/*
 * bench_share.c - `memvisor bench share`: how much memory transparent page
 * sharing saves on real Linux guest memory, beside the most any sharing
 * could save, and what it costs beside Linux KSM on the same pages.
 *
 * Purpose: the goals of issue 4 in one run.  memvisor must save at least
 * 95% of the ideal (every page whose content is already held elsewhere, and
 * every zero page, costs no frame) and save as much as KSM at less CPU per
 * GiB: CPU seconds to converge per GiB of guest memory, the same GiB for
 * both (cpu_per_gib_vs_ksm).
 *
 * Design: three guest RAM images from scripts/make-guest-image.sh (boot,
 * work, boot by default: docs/IMAGES.md) are mapped read-only.
 *
 * The ideal is computed offline: XXH3 of every 4 KiB page, sorted by hash,
 * and pages of equal hash compared byte for byte, so that a collision can
 * only split a group, never merge one: the count of distinct contents is
 * exact.  It is split into what each image saves alone (intra-image) and
 * what only sharing across images adds (inter-image).  The time to hash a
 * page is the floor of any content-based sharing.
 *
 * memvisor: a host with twice the VMs' memory (no pressure, state high) and
 * one VM per image, with no image_path: each VM is filled as a guest fills
 * its RAM, by writing the image's bytes into guest memory in runs, so every
 * page is PRIVATE and only the scanner can share it.  The background
 * scanner is off (Mem.ShareScanGHz = 0), salting too (ShareForceSalting
 * = 0, equal salts besides) and sampling (SamplePeriod = 0: it would keep
 * 100 pages of each VM aside, unscanned), and this thread calls mv_vm_share_scan() over
 * the VMs in turn, a chunk each, until a whole pass of every VM merges
 * nothing.  Scanning runs in the caller's thread, so the process's CPU time
 * over that loop (getrusage, all threads: fault threads too) is the cost.
 * Afterwards every page of every VM must still equal its image, or the run
 * fails naming the page: sharing that corrupts is no figure.
 *
 * KSM (where /sys/kernel/mm/ksm can be written, and KSM is not already
 * running for someone else): one anonymous mapping per image, 4 KiB pages,
 * filled the same way, MADV_MERGEABLE; ksmd at full speed
 * (sleep_millisecs = 0) and use_zero_pages = 1, so that zero pages cost no
 * frame as in memvisor (like with like: with 0 KSM keeps one zero frame per
 * max_page_sharing pages).  Converged once two full scans change nothing;
 * its cost is the CPU time of the ksmd thread (/proc/PID/stat).  Every KSM
 * setting written is restored and merged pages are unmerged (run = 2) on
 * every exit path: errors, the watchdog, SIGINT, SIGTERM, SIGHUP, SIGQUIT
 * (only SIGKILL leaves KSM on: then `echo 2 >run; echo 0 >run` there).
 *
 * "CPU per GiB scanned" is reported beside it (cpu_per_gib_scanned_vs_ksm):
 * memvisor's scanned pages are the PRIVATE pages it examined
 * (share_scanned_pages), KSM's its full scans times its mapped size; both
 * include the last pass that only confirmed convergence.  It is no measure
 * of the work to share a GiB: a scanner that needs fewer passes, or skips
 * what it already shared, divides its CPU by fewer pages and looks worse.
 *
 * Invariants: the images never change during a run (mapped read-only,
 * MAP_PRIVATE); a memvisor trial ends with all its VMs destroyed; the KSM
 * knobs hold their original values whenever ksm.active is false.
 *
 * Lock ordering: none; one thread drives everything.  The signal handlers
 * touch only ksm, whose strings are written before they are installed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "bench.h"
#include "memvisor.h"

#define IMAGE_DIR "/var/tmp/memvisor-images"
#define GOAL_SAVED_VS_IDEAL 0.95
#define FILL_RUN_PAGES 64 /* a guest writes its RAM in runs: 256 KiB */
/* Pages of one VM scanned before the next VM's turn, as the background
 * scanner interleaves VMs */
#define SCAN_CHUNK_PAGES 4096
/* Passes after which a scan that still merges is called not converging */
#define MAX_PASSES 16
#define SALT "bench-share"
#define KSM_DIR "/sys/kernel/mm/ksm"
/* ksmd's batch between sleeps: large, so that its wake-ups cost little */
#define KSM_PAGES_TO_SCAN "4096"
#define KSM_POLL_NS 20000000ull /* 20 ms between reads of the counters */
#define KSM_STABLE_SCANS 2 /* full scans with no change: converged */
#define KSM_MAX_SCANS 32 /* full scans after which KSM is not converging */
#define KSM_MAX_RUNS 2 /* KSM takes seconds a run: at most this many */
/* Two runs of this benchmark must not both drive KSM's global knobs */
#define KSM_LOCK "/run/memvisor-bench-ksm.lock"
#define MISMATCHES_SHOWN 5

struct image {
	const char *path;
	const uint8_t *map;
	uint64_t npages; /* used, after --pages */
	size_t maplen;
};

struct images {
	struct image v[BENCH_SHARE_MAX_IMAGES];
	unsigned n;
	uint64_t total; /* pages in all */
};

/* The most any sharing saves on these images, computed offline. */
struct ideal {
	uint64_t zero; /* all-zero pages */
	uint64_t distinct; /* distinct non-zero contents */
	uint64_t saved; /* total - distinct: zero pages need no frame */
	uint64_t intra; /* what the images save each alone, summed */
	uint64_t inter; /* what only sharing across images adds */
	uint64_t collisions; /* equal XXH3, different bytes */
	double hash_us; /* XXH3 per page */
};

/* One memvisor trial. */
struct mv_result {
	uint64_t saved; /* host share_saved_pages */
	uint64_t vm_saved; /* sum of the VMs' shrdsvd_pages */
	uint64_t shrd, zero; /* SHRD and ZERO, all VMs */
	uint64_t scanned; /* host share_scanned_pages during the loop */
	uint64_t frames, vmas, table_bytes, collisions, cow_breaks;
	unsigned passes;
	double wall_s; /* until the pass that merged nothing ended */
	double final_s; /* until the last pass that merged something ended */
	double cpu_s; /* process CPU over the loop */
	double thread_cpu_s; /* this thread's alone */
};

/* One KSM run. */
struct ksm_result {
	uint64_t saved; /* pages_sharing + ksm_zero_pages, deltas */
	uint64_t shared; /* pages_shared: KSM frames */
	uint64_t zero; /* ksm_zero_pages */
	uint64_t full_scans, pages_scanned;
	uint64_t merging; /* this process's ksm_merging_pages */
	double wall_s, final_s, cpu_s;
};

/* A KSM knob: its path and the value it had, kept for the restore. */
struct knob {
	const char *name;
	char path[64];
	char saved[32];
	const char *want;
};

enum { K_RUN, K_PAGES_TO_SCAN, K_SLEEP, K_ZERO, NKNOBS };

/* What stops the process and can be caught: each restores KSM first. */
static const int ksm_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
#define NSIGNALS (sizeof(ksm_signals) / sizeof(ksm_signals[0]))

/*
 * Global because signal handlers restore it.  Strings are complete before
 * active is set, and active is cleared before anything is freed.
 */
static struct {
	struct knob knobs[NKNOBS];
	volatile sig_atomic_t active; /* knobs may differ from saved */
	struct sigaction old[NSIGNALS];
} ksm = { .knobs = {
		  [K_RUN] = { "run", "", "", "1" },
		  [K_PAGES_TO_SCAN] = { "pages_to_scan", "", "",
					KSM_PAGES_TO_SCAN },
		  [K_SLEEP] = { "sleep_millisecs", "", "", "0" },
		  [K_ZERO] = { "use_zero_pages", "", "", "1" },
	  } };

static const char *paths[BENCH_SHARE_MAX_IMAGES];
static unsigned npaths;

void bench_share_images(const char *const *v, unsigned n)
{
	npaths = n < BENCH_SHARE_MAX_IMAGES ? n : BENCH_SHARE_MAX_IMAGES;
	for (unsigned i = 0; i < npaths; i++)
		paths[i] = v[i];
}

/* The default: two VMs booted, one after a workload (docs/IMAGES.md). */
static void default_images(void)
{
	static const char *const def[] = { IMAGE_DIR "/guest-boot.raw",
					   IMAGE_DIR "/guest-work.raw",
					   IMAGE_DIR "/guest-boot.raw" };

	if (!npaths)
		bench_share_images(def, sizeof(def) / sizeof(def[0]));
}

int bench_share_missing(char *msg, size_t len)
{
	struct stat st;

	default_images();
	for (unsigned i = 0; i < npaths; i++) {
		if (stat(paths[i], &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_size >= MV_PAGE_SIZE)
			continue;
		snprintf(
			msg, len,
			"guest RAM image %s is missing (or not a file of at least 4 KiB); make the images with `scripts/make-guest-image.sh` as root (about 10 minutes the first time, docs/IMAGES.md), or name others with --image PATH",
			paths[i]);
		return -ENOENT;
	}
	return 0;
}

static void images_close(struct images *im)
{
	for (unsigned i = 0; i < im->n; i++)
		munmap((void *)im->v[i].map, im->v[i].maplen);
	im->n = 0;
}

/* Maps every image read-only, at most max_pages pages of each (0: all). */
static int images_open(struct images *im, uint64_t max_pages)
{
	struct stat st;
	void *p;
	int fd;

	memset(im, 0, sizeof(*im));
	for (unsigned i = 0; i < npaths; i++) {
		struct image *g = &im->v[i];

		fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0) {
			fprintf(stderr, "memvisor bench share: %s: %s\n",
				paths[i], strerror(errno));
			if (fd >= 0)
				close(fd);
			images_close(im);
			return -ENOENT;
		}
		g->path = paths[i];
		/* a partial last page is no page a guest could have */
		g->npages = (uint64_t)st.st_size / MV_PAGE_SIZE;
		if (max_pages && g->npages > max_pages)
			g->npages = max_pages;
		g->maplen = g->npages * MV_PAGE_SIZE;
		p = g->npages ? mmap(NULL, g->maplen, PROT_READ, MAP_PRIVATE,
				     fd, 0) :
				MAP_FAILED;
		close(fd);
		if (p == MAP_FAILED) {
			fprintf(stderr,
				"memvisor bench share: cannot map %s: %s\n",
				paths[i],
				g->npages ? strerror(errno) :
					    "smaller than a page");
			images_close(im);
			return -EINVAL;
		}
		g->map = p;
		/* read in and mapped now, so that no timed pass pays for it */
		madvise(p, g->maplen, MADV_POPULATE_READ);
		im->n++;
		im->total += g->npages;
	}
	return 0;
}

static const uint8_t *page_of(const struct image *g, uint64_t p)
{
	return g->map + p * MV_PAGE_SIZE;
}

static bool is_zero(const uint8_t *page)
{
	static const uint8_t zero[MV_PAGE_SIZE];

	return !memcmp(page, zero, MV_PAGE_SIZE);
}

static double ts_s(const struct timespec *t)
{
	return (double)t->tv_sec + (double)t->tv_nsec / 1e9;
}

static double rusage_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double thread_cpu_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return ts_s(&t);
}

struct entry {
	uint64_t hash;
	uint32_t img, page;
};

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return (x->hash > y->hash) - (x->hash < y->hash);
}

static const uint8_t *entry_page(const struct images *im, const struct entry *e)
{
	return page_of(&im->v[e->img], e->page);
}

/*
 * The ideal.  Within a run of equal hashes, each page is compared with the
 * distinct contents of the run seen so far (nearly always one), so that
 * `distinct` is exact whatever the hash does.  mask[c] says which images
 * hold content c: an image's own distinct contents are the masks with its
 * bit set.
 */
static int ideal_compute(const struct images *im, struct ideal *id)
{
	uint64_t n = im->total, k = 0, nclass = 0;
	uint64_t own[BENCH_SHARE_MAX_IMAGES] = { 0 };
	struct entry *e = malloc(n * sizeof(*e));
	uint32_t *rep = malloc(n * sizeof(*rep)); /* a run's contents */
	uint8_t *mask = malloc(n);
	double t0;

	memset(id, 0, sizeof(*id));
	if (!e || !rep || !mask) {
		free(e);
		free(rep);
		free(mask);
		return -ENOMEM;
	}
	/* CPU time, as the scan figures it is the floor of: on a busy machine
	 * wall time would time the other work */
	t0 = thread_cpu_s();
	for (unsigned i = 0; i < im->n; i++)
		for (uint64_t p = 0; p < im->v[i].npages; p++, k++)
			e[k] = (struct entry){
				.hash = XXH3_64bits(page_of(&im->v[i], p),
						    MV_PAGE_SIZE),
				.img = i,
				.page = (uint32_t)p,
			};
	id->hash_us = (thread_cpu_s() - t0) * 1e6 / (double)n;
	qsort(e, n, sizeof(*e), cmp_entry);
	for (uint64_t a = 0, b; a < n; a = b) {
		unsigned nrep = 0;

		for (b = a; b < n && e[b].hash == e[a].hash; b++) {
			const uint8_t *pg = entry_page(im, &e[b]);
			unsigned c = 0;

			while (c < nrep &&
			       memcmp(pg, entry_page(im, &e[a + rep[c]]),
				      MV_PAGE_SIZE))
				c++;
			if (c == nrep) {
				rep[nrep++] = (uint32_t)(b - a);
				mask[nclass + c] = 0;
				if (c)
					id->collisions++;
			}
			if (is_zero(pg))
				id->zero++;
			else
				mask[nclass + c] |= (uint8_t)(1u << e[b].img);
		}
		for (unsigned c = 0; c < nrep; c++)
			if (mask[nclass + c])
				id->distinct++;
		nclass += nrep;
	}
	for (uint64_t c = 0; c < nclass; c++)
		for (unsigned i = 0; i < im->n; i++)
			own[i] += mask[c] >> i & 1;
	id->saved = n - id->distinct;
	for (unsigned i = 0; i < im->n; i++)
		id->intra += im->v[i].npages - own[i];
	id->inter = id->saved - id->intra;
	free(e);
	free(rep);
	free(mask);
	return 0;
}

/* Writes the image into dst as a guest fills its RAM: in runs. */
static void fill(uint8_t *dst, const struct image *g)
{
	for (uint64_t p = 0; p < g->npages; p += FILL_RUN_PAGES) {
		uint64_t run = g->npages - p < FILL_RUN_PAGES ? g->npages - p :
								FILL_RUN_PAGES;

		memcpy(dst + p * MV_PAGE_SIZE, page_of(g, p),
		       run * MV_PAGE_SIZE);
	}
}

static int mv_fail(mv_host *host, const char *what, int err)
{
	fprintf(stderr, "memvisor bench share: %s: %s%s%s\n", what,
		mv_strerror(err), host ? ": " : "",
		host ? mv_host_errmsg(host) : "");
	return err;
}

/* Every page of every VM must still hold its image's bytes. */
static int verify(const struct images *im, mv_vm **vms)
{
	uint64_t bad = 0;

	bench_watch("share: verify every page", im->total);
	for (unsigned i = 0; i < im->n; i++) {
		const uint8_t *mem = mv_vm_mem(vms[i]);

		for (uint64_t p = 0; p < im->v[i].npages; p++) {
			if (!memcmp(mem + p * MV_PAGE_SIZE,
				    page_of(&im->v[i], p), MV_PAGE_SIZE))
				continue;
			if (bad++ < MISMATCHES_SHOWN)
				fprintf(stderr,
					"memvisor bench share: FAILED: VM %s page %" PRIu64
					" (state %s) differs from %s\n",
					mv_vm_name(vms[i]), p,
					mv_page_state_name(
						mv_vm_page_state(vms[i], p)),
					im->v[i].path);
		}
	}
	bench_watch(NULL, 0);
	if (!bad)
		return 0;
	fprintf(stderr,
		"memvisor bench share: FAILED: %" PRIu64
		" pages no longer equal their image after sharing: the engine corrupts guest memory\n",
		bad);
	return -EIO;
}

/* Scans every VM, a chunk each in turn, until a whole pass merges nothing. */
static int scan_until_converged(const struct images *im, mv_vm **vms,
				struct mv_result *res)
{
	uint64_t t0 = bench_now_ns(), maxp = 0, merged, pass_merged;
	double cpu0 = rusage_s(), th0 = thread_cpu_s();
	int err = 0;

	for (unsigned i = 0; i < im->n; i++)
		if (im->v[i].npages > maxp)
			maxp = im->v[i].npages;
	bench_watch("share: memvisor scan", MAX_PASSES * im->total);
	do {
		pass_merged = 0;
		for (uint64_t off = 0; off < maxp && !err;
		     off += SCAN_CHUNK_PAGES)
			for (unsigned i = 0; i < im->n && !err; i++) {
				uint64_t left = im->v[i].npages > off ?
							im->v[i].npages - off :
							0;

				if (!left)
					continue;
				err = mv_vm_share_scan(vms[i],
						       left < SCAN_CHUNK_PAGES ?
							       left :
							       SCAN_CHUNK_PAGES,
						       &merged);
				pass_merged += merged;
			}
		res->passes++;
		if (pass_merged)
			res->final_s = (double)(bench_now_ns() - t0) / 1e9;
	} while (!err && pass_merged && res->passes < MAX_PASSES);
	res->wall_s = (double)(bench_now_ns() - t0) / 1e9;
	res->cpu_s = rusage_s() - cpu0;
	res->thread_cpu_s = thread_cpu_s() - th0;
	bench_watch(NULL, 0);
	if (err)
		return err;
	if (pass_merged) {
		fprintf(stderr,
			"memvisor bench share: FAILED: pass %u still merged %" PRIu64
			" pages: the scanner does not converge\n",
			res->passes, pass_merged);
		return -EIO;
	}
	return 0;
}

static int mv_trial(const struct images *im, const char *swapdir,
		    struct mv_result *res)
{
	mv_vm *vms[BENCH_SHARE_MAX_IMAGES] = { 0 };
	struct mv_host_stats h0, hs;
	struct mv_host_config hc;
	struct mv_vm_config vc;
	struct mv_vm_stats st;
	mv_host *host = NULL;
	int err;

	memset(res, 0, sizeof(*res));
	mv_host_config_init(&hc);
	hc.memsize_bytes = 2 * im->total * MV_PAGE_SIZE;
	hc.swapdir = swapdir;
	hc.settings.share_scan_ghz = 0;
	hc.settings.share_force_salting = 0;
	/* the scheduler would move 100 pages of each VM aside to sample
	 * them, and the scanner leaves SAMPLED pages alone */
	hc.settings.sample_period_s = 0;
	err = mv_host_create(&hc, &host);
	if (err)
		return mv_fail(NULL, "cannot create host", err);
	for (unsigned i = 0; i < im->n && !err; i++) {
		mv_vm_config_init(&vc);
		snprintf(vc.name, sizeof(vc.name), "share-%u", i);
		snprintf(vc.salt, sizeof(vc.salt), SALT);
		vc.memsize_bytes = im->v[i].npages * MV_PAGE_SIZE;
		err = mv_vm_create(host, &vc, &vms[i]);
		if (err) {
			mv_fail(host, "cannot create VM", err);
			break;
		}
		bench_watch("share: fill the VMs", im->v[i].npages);
		fill(mv_vm_mem(vms[i]), &im->v[i]);
		bench_watch(NULL, 0);
		/* the guest is woken before its pages are published: asking
		 * for each page's state waits for the fault service */
		for (uint64_t p = 0; p < im->v[i].npages; p++)
			mv_vm_page_state(vms[i], p);
		mv_vm_stats(vms[i], &st);
		if (st.state_pages[MV_PAGE_PRIVATE] != im->v[i].npages) {
			fprintf(stderr,
				"memvisor bench share: VM %s has %" PRIu64
				" PRIVATE pages of %" PRIu64
				" after the fill: some were shared or reclaimed before the scan\n",
				vc.name, st.state_pages[MV_PAGE_PRIVATE],
				im->v[i].npages);
			err = -EIO;
		}
	}
	if (!err) {
		mv_host_stats(host, &h0);
		err = scan_until_converged(im, vms, res);
		if (err && err != -EIO)
			mv_fail(host, "mv_vm_share_scan", err);
	}
	if (!err) {
		mv_host_stats(host, &hs);
		res->saved = hs.share_saved_pages;
		res->scanned = hs.share_scanned_pages - h0.share_scanned_pages;
		res->frames = hs.share_frames;
		res->vmas = hs.share_vmas;
		res->table_bytes = hs.share_table_bytes;
		res->collisions = hs.share_collisions;
		res->cow_breaks = hs.cow_breaks;
		for (unsigned i = 0; i < im->n; i++) {
			mv_vm_stats(vms[i], &st);
			res->vm_saved += st.shrdsvd_pages;
			res->shrd += st.shrd_pages;
			res->zero += st.zero_pages;
		}
		err = verify(im, vms);
	}
	for (unsigned i = 0; i < im->n; i++)
		mv_vm_destroy(vms[i]);
	mv_host_destroy(host);
	return err;
}

/* ---- Linux KSM ---- */

/* Async-signal-safe: open, write, close. */
static void knob_write(const struct knob *k, const char *v)
{
	int fd = open(k->path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return;
	n = write(fd, v, strlen(v));
	(void)n; /* nothing better to do in a signal handler */
	close(fd);
}

/*
 * Puts every knob back; async-signal-safe.  run = 2 first unmerges every
 * page KSM merged (ours), then run gets its own value back.
 */
static void ksm_restore(void)
{
	if (!ksm.active)
		return;
	ksm.active = 0;
	knob_write(&ksm.knobs[K_RUN], "2");
	for (int i = 0; i < NKNOBS; i++)
		knob_write(&ksm.knobs[i], ksm.knobs[i].saved);
}

static void ksm_on_signal(int sig)
{
	ksm_restore();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* A counter of /sys/kernel/mm/ksm; 0 if this kernel has none. */
static uint64_t ksm_counter(const char *name)
{
	char path[64], buf[32];

	snprintf(path, sizeof(path), KSM_DIR "/%s", name);
	return read_text(path, buf, sizeof(buf)) ? 0 : strtoull(buf, NULL, 10);
}

/* A line "key value" of /proc/self/ksm_stat; 0 if absent. */
static uint64_t ksm_stat_self(const char *key)
{
	size_t klen = strlen(key);
	uint64_t v = 0;
	char line[128];
	FILE *f = fopen("/proc/self/ksm_stat", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, klen) && line[klen] == ' ')
			v = strtoull(line + klen + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/* ksmd's pid, found by its name among the kernel's threads; -1 if none. */
static pid_t ksmd_pid(void)
{
	char path[300], comm[32];
	struct dirent *d;
	pid_t pid = -1;
	DIR *dir = opendir("/proc");

	while (dir && pid < 0 && (d = readdir(dir))) {
		if (d->d_name[0] < '1' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", d->d_name);
		if (!read_text(path, comm, sizeof(comm)) &&
		    !strcmp(comm, "ksmd"))
			pid = (pid_t)atoi(d->d_name);
	}
	if (dir)
		closedir(dir);
	return pid;
}

/* utime + stime of a thread, seconds: fields 14 and 15 of its stat. */
static double proc_cpu_s(pid_t pid)
{
	unsigned long long ut, st;
	char path[64], buf[1024], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_text(path, buf, sizeof(buf)) || !(p = strrchr(buf, ')')) ||
	    sscanf(p + 1,
		   " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
		   &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/*
 * Whether KSM can be measured here; if not, why, for the report.  On
 * success the knobs' values are saved and the lock is held (*lockfd).
 */
static int ksm_prepare(char *why, size_t len, int *lockfd)
{
	*lockfd = -1;
	if (access(KSM_DIR "/run", W_OK)) {
		snprintf(
			why, len,
			"KSM not measured: %s/run cannot be written here (%s; it needs root and CONFIG_KSM)",
			KSM_DIR, strerror(errno));
		return -EPERM;
	}
	for (int i = 0; i < NKNOBS; i++) {
		struct knob *k = &ksm.knobs[i];

		snprintf(k->path, sizeof(k->path), KSM_DIR "/%s", k->name);
		if (read_text(k->path, k->saved, sizeof(k->saved))) {
			snprintf(why, len,
				 "KSM not measured: this kernel has no %s",
				 k->path);
			return -ENOENT;
		}
	}
	*lockfd = open(KSM_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*lockfd < 0 || flock(*lockfd, LOCK_EX | LOCK_NB)) {
		snprintf(
			why, len,
			"KSM not measured: another `memvisor bench share` holds %s",
			KSM_LOCK);
		return -EBUSY;
	}
	if (strcmp(ksm.knobs[K_RUN].saved, "0")) {
		snprintf(
			why, len,
			"KSM not measured: it is already running (run = %s) for other processes; left alone",
			ksm.knobs[K_RUN].saved);
		return -EBUSY;
	}
	return 0;
}

static void ksm_arm(void)
{
	struct sigaction sa = { .sa_handler = ksm_on_signal };

	sigemptyset(&sa.sa_mask);
	bench_on_abort(ksm_restore);
	for (unsigned i = 0; i < NSIGNALS; i++)
		sigaction(ksm_signals[i], &sa, &ksm.old[i]);
	ksm.active = 1;
}

static void ksm_disarm(void)
{
	ksm_restore();
	for (unsigned i = 0; i < NSIGNALS; i++)
		sigaction(ksm_signals[i], &ksm.old[i], NULL);
	bench_on_abort(NULL);
}

/* What KSM has saved since the start: a tuple that stops changing. */
struct ksm_now {
	uint64_t sharing, shared, zero, full_scans, pages_scanned;
};

static void ksm_read(struct ksm_now *k)
{
	k->sharing = ksm_counter("pages_sharing");
	k->shared = ksm_counter("pages_shared");
	k->zero = ksm_counter("ksm_zero_pages");
	k->full_scans = ksm_counter("full_scans");
	k->pages_scanned = ksm_counter("pages_scanned");
}

/* Runs ksmd until two full scans change nothing. */
static int ksm_converge(const struct images *im, pid_t ksmd,
			struct ksm_result *res)
{
	struct ksm_now k0, k, last;
	struct timespec nap = { 0, KSM_POLL_NS };
	uint64_t t0, scans_seen, stable = 0;
	double cpu0;

	ksm_read(&k0);
	last = k0;
	scans_seen = k0.full_scans;
	cpu0 = proc_cpu_s(ksmd);
	t0 = bench_now_ns();
	knob_write(&ksm.knobs[K_RUN], "1");
	bench_watch("share: KSM converging", im->total);
	for (;;) {
		nanosleep(&nap, NULL);
		ksm_read(&k);
		if (k.sharing != last.sharing || k.zero != last.zero ||
		    k.shared != last.shared) {
			res->final_s = (double)(bench_now_ns() - t0) / 1e9;
			stable = 0;
			last = k;
		}
		if (k.full_scans == scans_seen)
			continue;
		/*
		 * Scans ended since the last look.  stable counts the scan
		 * of the last change too, hence ">".  KSM's first scan only
		 * takes checksums, so nothing merged yet is no convergence.
		 */
		stable += k.full_scans - scans_seen;
		scans_seen = k.full_scans;
		if ((stable > KSM_STABLE_SCANS &&
		     k.sharing + k.zero > k0.sharing + k0.zero) ||
		    k.full_scans - k0.full_scans >= KSM_MAX_SCANS)
			break;
	}
	res->wall_s = (double)(bench_now_ns() - t0) / 1e9;
	res->cpu_s = proc_cpu_s(ksmd) - cpu0;
	bench_watch(NULL, 0);
	res->merging = ksm_stat_self("ksm_merging_pages");
	res->shared = k.shared - k0.shared;
	res->zero = k.zero - k0.zero;
	res->saved = k.sharing - k0.sharing + res->zero;
	res->full_scans = k.full_scans - k0.full_scans;
	res->pages_scanned = k.pages_scanned - k0.pages_scanned;
	if (stable <= KSM_STABLE_SCANS) {
		fprintf(stderr,
			"memvisor bench share: KSM still changed after %" PRIu64
			" full scans\n",
			res->full_scans);
		return -ETIMEDOUT;
	}
	return 0;
}

/* One KSM run over the images; knobs restored whatever happens. */
static int ksm_trial(const struct images *im, struct ksm_result *res)
{
	uint8_t *areas[BENCH_SHARE_MAX_IMAGES] = { 0 };
	pid_t ksmd = ksmd_pid();
	int err = 0;

	memset(res, 0, sizeof(*res));
	if (ksmd < 0) {
		fprintf(stderr,
			"memvisor bench share: no ksmd thread in /proc\n");
		return -ESRCH;
	}
	for (unsigned i = 0; i < im->n && !err; i++) {
		areas[i] = mmap(NULL, im->v[i].maplen, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (areas[i] == MAP_FAILED) {
			areas[i] = NULL;
			err = -errno;
			break;
		}
		/* 4 KiB pages, as memvisor's: no huge page to split first */
		madvise(areas[i], im->v[i].maplen, MADV_NOHUGEPAGE);
		fill(areas[i], &im->v[i]);
		if (madvise(areas[i], im->v[i].maplen, MADV_MERGEABLE))
			err = -errno;
	}
	if (!err) {
		ksm_arm();
		for (int i = K_PAGES_TO_SCAN; i < NKNOBS; i++)
			knob_write(&ksm.knobs[i], ksm.knobs[i].want);
		err = ksm_converge(im, ksmd, res);
		/* unmapped first, so run = 2 has nothing of ours to copy */
		for (unsigned i = 0; i < im->n; i++)
			if (areas[i])
				munmap(areas[i], im->v[i].maplen);
		memset(areas, 0, sizeof(areas));
		ksm_disarm();
	}
	for (unsigned i = 0; i < im->n; i++)
		if (areas[i])
			munmap(areas[i], im->v[i].maplen);
	if (err && err != -ETIMEDOUT)
		fprintf(stderr, "memvisor bench share: KSM run failed: %s\n",
			strerror(-err));
	return err;
}

/* ---- the report ---- */

static double mib(uint64_t pages)
{
	return (double)pages * MV_PAGE_SIZE / (double)(1u << 20);
}

/* us per page from seconds over pages */
static double us_per(double s, uint64_t pages)
{
	return pages ? s * 1e6 / (double)pages : 0;
}

static void report_ideal(struct bench_report *r, const struct images *im,
			 const struct ideal *id)
{
	bench_value(r, "vms", im->n);
	bench_value(r, "total_pages", (double)im->total);
	bench_value(r, "ideal_zero_pages", (double)id->zero);
	bench_value(r, "ideal_distinct_pages", (double)id->distinct);
	bench_value(r, "ideal_saved_pages", (double)id->saved);
	bench_value(r, "ideal_intra_pages", (double)id->intra);
	bench_value(r, "ideal_inter_pages", (double)id->inter);
	for (unsigned i = 0; i < im->n; i++)
		bench_note(r, "VM %u: %s, %" PRIu64 " pages", i, im->v[i].path,
			   im->v[i].npages);
	bench_note(r,
		   "ideal: %" PRIu64 " pages, %" PRIu64 " zero, %" PRIu64
		   " distinct non-zero contents: saves %" PRIu64
		   " (%.1f%%, %.1f MiB) = %" PRIu64 " within images + %" PRIu64
		   " across them; %" PRIu64 " XXH3 collisions",
		   im->total, id->zero, id->distinct, id->saved,
		   100.0 * (double)id->saved / (double)im->total,
		   mib(id->saved), id->intra, id->inter, id->collisions);
}

/* Samples of one figure per trial; KSM's fewer runs are padded below. */
enum figure {
	F_HASH, /* XXH3, us per page (computed once) */
	F_MV_CPU, /* memvisor CPU, us per page scanned */
	F_MV_WALL, /* memvisor wall time, us per page scanned */
	F_MV_GUEST, /* memvisor CPU to converge, us per guest page */
	F_MV_SAVED, /* pages saved */
	F_MV_CONV, /* s until a pass merged nothing */
	F_MV_FINAL, /* s until the last merge */
	F_MV_CPU_S, /* CPU s to converge */
	F_KSM_CPU, /* ksmd CPU, us per page scanned */
	F_KSM_GUEST, /* ksmd CPU to converge, us per guest page */
	F_KSM_SAVED,
	F_KSM_CONV,
	F_KSM_FINAL,
	F_KSM_CPU_S,
	F_KSM_SCANS, /* full scans to converge */
	NFIGURES
};
#define F_KSM_FIRST F_KSM_CPU

/*
 * KSM runs fewer times than memvisor: its samples are padded with their
 * median, which keeps their median, min and max as they were.
 */
static double median_of(const double *v, unsigned n)
{
	double *tmp = malloc(n * sizeof(*tmp)), m;

	if (!tmp)
		return 0;
	memcpy(tmp, v, n * sizeof(*tmp));
	m = bench_median(tmp, n);
	free(tmp);
	return m;
}

static void pad(double *v, unsigned n, unsigned trials)
{
	double m = median_of(v, n);

	for (unsigned i = n; i < trials; i++)
		v[i] = m;
}

/* us per page scanned -> CPU seconds per GiB scanned */
static double s_per_gib(double us)
{
	return us * 1e-6 * (double)(1u << 30) / MV_PAGE_SIZE;
}

static void report_mv(struct bench_report *r, const struct images *im,
		      const struct ideal *id, double *const *fig,
		      const double *med, const struct mv_result *mr,
		      unsigned trials)
{
	double ratio = id->saved ? med[F_MV_SAVED] / (double)id->saved : 0;
	double lo = fig[F_MV_SAVED][0], hi = lo;

	for (unsigned t = 1; t < trials; t++) {
		lo = fig[F_MV_SAVED][t] < lo ? fig[F_MV_SAVED][t] : lo;
		hi = fig[F_MV_SAVED][t] > hi ? fig[F_MV_SAVED][t] : hi;
	}
	bench_value(r, "saved_pages", med[F_MV_SAVED]);
	bench_value(r, "saved_vs_ideal", ratio);
	bench_value(r, "goal_saved_vs_ideal", GOAL_SAVED_VS_IDEAL);
	bench_value(r, "converge_s", med[F_MV_CONV]);
	bench_value(r, "last_merge_s", med[F_MV_FINAL]);
	bench_value(r, "cpu_s", med[F_MV_CPU_S]);
	bench_value(r, "cpu_s_per_gib", s_per_gib(med[F_MV_CPU]));
	bench_value(r, "cpu_s_per_gib_guest", s_per_gib(med[F_MV_GUEST]));
	bench_value(r, "passes", mr->passes);
	bench_value(r, "scanned_pages", (double)mr->scanned);
	bench_value(r, "shrd_pages", (double)mr->shrd);
	bench_value(r, "zero_pages", (double)mr->zero);
	bench_value(r, "shrdsvd_pages", (double)mr->vm_saved);
	bench_value(r, "share_frames", (double)mr->frames);
	bench_value(r, "share_vmas", (double)mr->vmas);
	bench_value(r, "share_table_bytes", (double)mr->table_bytes);
	bench_value(r, "share_collisions", (double)mr->collisions);
	bench_value(r, "cow_breaks", (double)mr->cow_breaks);
	bench_note(
		r,
		"goal: memvisor saves >= %.2f of the ideal: %.0f pages (%.1f MiB; trials %.0f-%.0f) of %" PRIu64
		": %.3f, %s",
		GOAL_SAVED_VS_IDEAL, med[F_MV_SAVED],
		mib((uint64_t)med[F_MV_SAVED]), lo, hi, id->saved, ratio,
		ratio >= GOAL_SAVED_VS_IDEAL ? "met" : "NOT met");
	bench_note(
		r,
		"memvisor (medians): last merge at %.2f s, converged at %.2f s, %.2f CPU s, %.2f s/GiB scanned; last trial: %u passes, this thread %.2f of %.2f CPU s, SHRD %" PRIu64
		", ZERO %" PRIu64 ", %" PRIu64 " shared frames, %" PRIu64
		" mappings, table %.2f MiB (%.2f%% of guest memory)",
		med[F_MV_FINAL], med[F_MV_CONV], med[F_MV_CPU_S],
		s_per_gib(med[F_MV_CPU]), mr->passes, mr->thread_cpu_s,
		mr->cpu_s, mr->shrd, mr->zero, mr->frames, mr->vmas,
		(double)mr->table_bytes / (1u << 20),
		100.0 * (double)mr->table_bytes /
			((double)im->total * MV_PAGE_SIZE));
	if (mr->vm_saved != mr->saved || mr->collisions || mr->cow_breaks)
		bench_note(r,
			   "check: the VMs' SHRDSVD add up to %" PRIu64
			   " (the host's share_saved_pages: %" PRIu64
			   "); hash collisions %" PRIu64 "; COW breaks %" PRIu64
			   " (nothing wrote: 0 expected)",
			   mr->vm_saved, mr->saved, mr->collisions,
			   mr->cow_breaks);
}

static void report_ksm(struct bench_report *r, const struct ideal *id,
		       const double *med, const struct ksm_result *kr,
		       unsigned kdone, const char *why)
{
	double vs_ksm, scanned_vs_ksm, saved_vs_ksm;

	if (!kdone) {
		bench_note(r, "%s", why);
		return;
	}
	vs_ksm = med[F_MV_GUEST] / med[F_KSM_GUEST];
	scanned_vs_ksm = med[F_MV_CPU] / med[F_KSM_CPU];
	saved_vs_ksm = med[F_MV_SAVED] / med[F_KSM_SAVED];
	bench_value(r, "cpu_per_gib_vs_ksm", vs_ksm);
	bench_value(r, "cpu_per_gib_scanned_vs_ksm", scanned_vs_ksm);
	bench_value(r, "saved_vs_ksm", saved_vs_ksm);
	bench_value(r, "ksm_saved_pages", med[F_KSM_SAVED]);
	bench_value(r, "ksm_saved_vs_ideal",
		    id->saved ? med[F_KSM_SAVED] / (double)id->saved : 0);
	bench_value(r, "ksm_converge_s", med[F_KSM_CONV]);
	bench_value(r, "ksm_last_merge_s", med[F_KSM_FINAL]);
	bench_value(r, "ksm_cpu_s", med[F_KSM_CPU_S]);
	bench_value(r, "ksm_cpu_s_per_gib", s_per_gib(med[F_KSM_CPU]));
	bench_value(r, "ksm_cpu_s_per_gib_guest", s_per_gib(med[F_KSM_GUEST]));
	bench_value(r, "ksm_full_scans", med[F_KSM_SCANS]);
	bench_note(
		r,
		"goal: as much saved as KSM at less CPU per GiB: saved %.3f of KSM's (%s), CPU to converge per GiB of guest memory %.3f of KSM's (%s); per GiB scanned %.3f of KSM's",
		saved_vs_ksm, saved_vs_ksm >= 1 ? "met" : "NOT met", vs_ksm,
		vs_ksm < 1 ? "met" : "NOT met", scanned_vs_ksm);
	bench_note(
		r,
		"KSM (%u run%s; use_zero_pages=1 so zero pages cost no frame as in memvisor, pages_to_scan=%s, sleep_millisecs=0): saved %.0f pages (%.3f of the ideal), %" PRIu64
		" KSM frames, %" PRIu64
		" zero pages; converged after %.0f full scans at %.2f s (last change %.2f s), ksmd %.2f CPU s, %.2f s/GiB scanned; pages_scanned %" PRIu64,
		kdone, kdone > 1 ? "s" : "", KSM_PAGES_TO_SCAN,
		med[F_KSM_SAVED],
		id->saved ? med[F_KSM_SAVED] / (double)id->saved : 0,
		kr->shared, kr->zero, med[F_KSM_SCANS], med[F_KSM_CONV],
		med[F_KSM_FINAL], med[F_KSM_CPU_S], s_per_gib(med[F_KSM_CPU]),
		kr->pages_scanned);
	if (kr->merging != kr->shared + kr->saved - kr->zero)
		bench_note(
			r,
			"KSM also held other processes' pages (this one merged %" PRIu64
			" of %" PRIu64 "): its figures include them",
			kr->merging, kr->shared + kr->saved - kr->zero);
}

static void report_rows(struct bench_report *r, double *const *fig,
			unsigned kdone)
{
	bench_row(r, "xxh3", "XXH3-64 of a page (the ideal's pass)",
		  fig[F_HASH], NULL, NULL);
	if (kdone)
		bench_row(r, "ksm_scan_cpu", "KSM: ksmd CPU per page scanned",
			  fig[F_KSM_CPU], NULL, NULL);
	bench_row(r, "scan_cpu", "memvisor: scan CPU per page scanned",
		  fig[F_MV_CPU], kdone ? "KSM ksmd" : "XXH3",
		  kdone ? fig[F_KSM_CPU] : fig[F_HASH]);
	bench_row(r, "scan_wall", "memvisor: scan wall time per page scanned",
		  fig[F_MV_WALL], "XXH3", fig[F_HASH]);
	bench_row(r, "converge_cpu",
		  "memvisor: CPU to converge, per guest page", fig[F_MV_GUEST],
		  kdone ? "KSM ksmd" : "XXH3",
		  kdone ? fig[F_KSM_GUEST] : fig[F_HASH]);
	if (kdone)
		bench_row(r, "ksm_converge_cpu",
			  "KSM: ksmd CPU to converge, per guest page",
			  fig[F_KSM_GUEST], "XXH3", fig[F_HASH]);
}

/* Runs KSM up to kt times; the runs that succeeded, or 0 and why not. */
static unsigned ksm_runs(const struct images *im, unsigned kt,
			 double *const *fig, struct ksm_result *kr, char *why,
			 size_t len)
{
	unsigned k;
	int lockfd;

	if (ksm_prepare(why, len, &lockfd)) {
		if (lockfd >= 0)
			close(lockfd);
		return 0;
	}
	for (k = 0; k < kt; k++) {
		if (ksm_trial(im, kr)) {
			snprintf(why, len,
				 "KSM not measured: its run failed (above)");
			k = 0;
			break;
		}
		fig[F_KSM_CPU][k] =
			us_per(kr->cpu_s, kr->full_scans * im->total);
		fig[F_KSM_GUEST][k] = us_per(kr->cpu_s, im->total);
		fig[F_KSM_SAVED][k] = (double)kr->saved;
		fig[F_KSM_CONV][k] = kr->wall_s;
		fig[F_KSM_FINAL][k] = kr->final_s;
		fig[F_KSM_CPU_S][k] = kr->cpu_s;
		fig[F_KSM_SCANS][k] = (double)kr->full_scans;
	}
	close(lockfd);
	return k;
}

int bench_share(struct bench_report *r, uint64_t pages, unsigned trials,
		const char *swapdir)
{
	unsigned kt = trials < KSM_MAX_RUNS ? trials : KSM_MAX_RUNS, kdone;
	double *samples, *fig[NFIGURES], med[NFIGURES];
	struct ksm_result kr = { 0 };
	struct mv_result mr = { 0 };
	struct images im;
	struct ideal id;
	char msg[320];
	int err;

	if (bench_share_missing(msg, sizeof(msg))) {
		fprintf(stderr, "memvisor bench share: %s\n", msg);
		return -ENOENT;
	}
	err = images_open(&im, pages);
	if (err)
		return err;
	samples = calloc((size_t)trials * NFIGURES, sizeof(*samples));
	if (!samples) {
		images_close(&im);
		return -ENOMEM;
	}
	for (unsigned f = 0; f < NFIGURES; f++)
		fig[f] = samples + (size_t)f * trials;
	bench_set_pages(r, im.v[0].npages);
	bench_watch("share: the ideal, offline", im.total);
	err = ideal_compute(&im, &id);
	bench_watch(NULL, 0);
	if (err)
		goto out;
	report_ideal(r, &im, &id);
	for (unsigned t = 0; t < trials; t++) {
		err = mv_trial(&im, swapdir, &mr);
		if (err)
			goto out;
		fig[F_HASH][t] = id.hash_us;
		fig[F_MV_CPU][t] = us_per(mr.cpu_s, mr.scanned);
		fig[F_MV_WALL][t] = us_per(mr.wall_s, mr.scanned);
		fig[F_MV_GUEST][t] = us_per(mr.cpu_s, im.total);
		fig[F_MV_SAVED][t] = (double)mr.saved;
		fig[F_MV_CONV][t] = mr.wall_s;
		fig[F_MV_FINAL][t] = mr.final_s;
		fig[F_MV_CPU_S][t] = mr.cpu_s;
	}
	kdone = ksm_runs(&im, kt, fig, &kr, msg, sizeof(msg));
	for (unsigned f = F_KSM_FIRST; f < NFIGURES && kdone; f++)
		pad(fig[f], kdone, trials);
	for (unsigned f = 0; f < NFIGURES; f++)
		med[f] = median_of(fig[f], trials);
	report_mv(r, &im, &id, fig, med, &mr, trials);
	report_ksm(r, &id, med, &kr, kdone, msg);
	report_rows(r, fig, kdone);
	bench_note(
		r,
		"CPU per GiB: CPU to converge over the GiB of guest memory, the same for both; per GiB scanned: over memvisor's scanned PRIVATE pages and KSM's full scans x its mapped size, confirming passes included");
out:
	free(samples);
	images_close(&im);
	return err;
}

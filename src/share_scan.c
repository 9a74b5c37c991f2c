// SPDX-License-Identifier: MIT
/*
 * share_scan.c - the policy side of transparent page sharing: the scanner
 * thread and its pacing, salts, each VM's setup and teardown, the host's,
 * the mapping count's refresh, and the statistics.
 *
 * Design.  A scanner thread per host visits each VM's pages in a random
 * order: windows of MV_SHARE_WINDOW pages (1 MiB), the windows in a random
 * permutation each pass (start and stride drawn anew, the stride prime to
 * the number of windows, so every window is visited once a pass), so that
 * neighbours that match neighbours end up on consecutive frames and their
 * mappings merge.  Each window goes through the merge pipeline
 * (share_merge.c).  The pace follows ESX: every SHARE_TICK_MS each VM
 * earns memsize / Mem.ShareScanTime pages a second, at most
 * Mem.ShareRateMax, all VMs together at most Mem.ShareScanGHz MiB/s per
 * GHz of host CPU (cores x clock from /proc/cpuinfo); Mem.ShareScanGHz = 0
 * stops the thread's scanning.  mv_vm_share_scan() scans in the caller's
 * thread.  Every MAPS_CHECK_MS the thread reads the real mapping count,
 * outside share.lock, which corrects the count kept as mappings are made
 * (share_cow.c).
 *
 * Salting: pages of VMs with different salts never share (Mem.ShareForce
 * Salting: 0 one salt for all, 1 the VM's salt or the common one, 2 the
 * VM's salt or one of its own).  The salt seeds the hash and is stored
 * (by index) in every frame, and both are compared.
 *
 * Setup: each VM grows the table to 9/8 of all guest pages, gets its salt
 * and, when restored from a RAM image, the image's range of pool frames
 * (one range per image file, by device, inode, size and mtime).  Teardown
 * drops the VM's references and hints, and passes the frames it pays for
 * to a VM with their salt (share_table.c, "Ownership").
 *
 * Statistics in O(1): the host's figures are the table's counters; a VM's
 * SHRDSVD is its SHARED + ZERO pages (the pmap census, pmap.h) - the
 * frames it pays for, so that the VMs' figures add up to the host's
 * (refs - frames + ZERO pages).  Nothing walks pages for a statistic.
 *
 * Invariants: a VM's pass (rng, pass_*, credit, buf) is touched only with
 * host->vms_lock held, by whoever scans; the scanner thread stops before
 * the pool and table go.
 *
 * Lock ordering: host->vms_lock -> share.lock (the scanner, teardown);
 * share.lock alone for the condition the thread sleeps on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "inject.h"
#include "share_int.h"

#define SHARE_TICK_MS 100
#define MAPS_CHECK_MS 2000
#define SALT_NAMED (1ull << 62) /* salts from a VM's salt setting */
#define SALT_OWN (1ull << 63) /* salts of VMs that share with no one */

/* Reads the real mapping count without share.lock and stores it under it. */
static void maps_recount(struct mv__share *s)
{
	long used, max;

	if (mv__map_count(&used, &max))
		return; /* no procfs: maps_max stays 0 and nothing is mapped */
	pthread_mutex_lock(&s->lock);
	s->maps_now = used;
	s->maps_max = max;
	s->maps_full = used + MV_SHARE_MAPS_PER_CHANGE + MV_SHARE_MAPS_SLACK >
		       max;
	pthread_mutex_unlock(&s->lock);
}

/* ---- the scanner ---- */

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* Next window of the VM's pass; a new random order when a pass ends. */
static uint64_t pass_next_window(struct mv_vm *vm)
{
	struct mv__vm_share *sh = &vm->sh;
	uint64_t win;

	if (!sh->pass_pos) {
		sh->pass_start = mv__rand(&sh->rng) % sh->nwin;
		sh->pass_stride = mv__rand(&sh->rng) % sh->nwin;
		while (gcd(sh->pass_stride, sh->nwin) != 1)
			sh->pass_stride++;
	}
	win = (sh->pass_start + sh->pass_pos * sh->pass_stride) % sh->nwin;
	if (++sh->pass_pos == sh->nwin)
		sh->pass_pos = 0;
	return win;
}

/*
 * Scans npages pages' worth of windows (rounded up).  Caller holds
 * host->vms_lock, which keeps hinted VMs alive.
 */
static uint64_t vm_scan(struct mv_vm *vm, uint64_t npages)
{
	uint64_t merged = 0;

	if (vm->remote) /* its agent shares its pages (daemon.c) */
		return 0;
	for (uint64_t k = 0; k < npages; k += MV_SHARE_WINDOW)
		merged += mv__share_scan_window(vm, pass_next_window(vm),
						vm->sh.buf);
	return merged;
}

int mv_vm_share_scan(mv_vm *vm, uint64_t npages, uint64_t *merged)
{
	uint64_t got;

	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->host->vms_lock);
	got = vm_scan(vm, npages);
	pthread_mutex_unlock(&vm->host->vms_lock);
	if (merged)
		*merged = got;
	return 0;
}

/* Host CPU in GHz (cores x clock), the unit of Mem.ShareScanGHz. */
static double host_ghz(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	double mhz = 0;
	char line[256];
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "cpu MHz : %lf", &mhz) == 1)
			break;
	if (f)
		fclose(f);
	if (mhz <= 0)
		mhz = 2000; /* no clock reported: assume a common one */
	return (double)(cpus > 0 ? cpus : 1) * mhz / 1000;
}

/*
 * One tick of the scanner: each VM gets memsize / Mem.ShareScanTime pages
 * a second, at most Mem.ShareRateMax, all VMs together at most
 * Mem.ShareScanGHz MiB/s per GHz of host CPU.
 */
static void scanner_tick(struct mv_host *h, double seconds)
{
	const struct mv_settings *st = &h->settings;
	double want = 0, cap, scale, rate;
	struct mv_vm *vm;
	uint64_t n;

	cap = st->share_scan_ghz * h->share.ghz * (1 << 20) / MV_PAGE_SIZE;
	pthread_mutex_lock(&h->vms_lock);
	for (vm = h->vms; vm; vm = vm->next) {
		rate = (double)vm->npages / (st->share_scan_time_min * 60.0);
		want += rate < st->share_rate_max_pages ?
				rate :
				st->share_rate_max_pages;
	}
	scale = want > cap ? cap / want : 1;
	for (vm = h->vms; vm; vm = vm->next) {
		rate = (double)vm->npages / (st->share_scan_time_min * 60.0);
		if (rate > st->share_rate_max_pages)
			rate = st->share_rate_max_pages;
		vm->sh.credit += rate * scale * seconds;
		n = (uint64_t)(vm->sh.credit / MV_SHARE_WINDOW) *
		    MV_SHARE_WINDOW;
		vm->sh.credit -= (double)n;
		vm_scan(vm, n);
	}
	pthread_mutex_unlock(&h->vms_lock);
}

static void *scanner_main(void *arg)
{
	struct mv_host *h = arg;
	struct mv__share *s = &h->share;
	struct timespec ts;
	unsigned since_maps = 0;
	bool stop, recount;

	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += SHARE_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&s->lock);
		if (!s->scanner_stop)
			pthread_cond_timedwait(&s->scanner_wake, &s->lock, &ts);
		stop = s->scanner_stop;
		pthread_mutex_unlock(&s->lock);
		recount = (since_maps += SHARE_TICK_MS) >= MAPS_CHECK_MS;
		if (!stop && recount) {
			since_maps = 0;
			maps_recount(s); /* reads procfs outside the lock */
		}
		if (stop)
			break;
		if (h->settings.share_scan_ghz)
			scanner_tick(h, SHARE_TICK_MS / 1000.0);
	}
	return NULL;
}

/* ---- salts, images, VMs ---- */

static uint64_t salt_of(struct mv_vm *vm, const char *salt)
{
	unsigned force = vm->host->settings.share_force_salting;

	if (force == 0 || (force == 1 && !salt[0]))
		return 0;
	if (salt[0])
		return SALT_NAMED |
		       (XXH3_64bits(salt, strlen(salt)) & (SALT_NAMED - 1));
	return SALT_OWN | vm->id;
}

/* The index of salt in the host's list, added if new. */
static int salt_index(struct mv__share *s, uint64_t salt, uint32_t *id)
{
	uint64_t *n;

	for (uint32_t i = 0; i < s->nsalts; i++) {
		if (s->salts[i] == salt) {
			*id = i;
			return 0;
		}
	}
	if (s->nsalts == 1u << 24)
		return -ENOSPC;
	n = realloc(s->salts, (s->nsalts + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	s->salts = n;
	s->salts[s->nsalts] = salt;
	*id = s->nsalts++;
	return 0;
}

static int image_attach(struct mv_vm *vm)
{
	struct mv__share *s = &vm->host->share;
	struct mv__share_image *img;
	uint64_t pages = (vm->image_bytes + MV_PAGE_SIZE - 1) >> MV_PAGE_SHIFT;
	struct stat st;
	uint32_t i;

	if (fstat(vm->image_fd, &st) < 0)
		return -errno;
	if (s->nimages == MV_SHARE_MAX_IMAGES)
		return 0; /* restored privately: the image will not be shared */
	for (i = 0; i < s->nimages; i++) {
		img = &s->images[i];
		if (img->dev == st.st_dev && img->ino == st.st_ino &&
		    img->size == (uint64_t)st.st_size &&
		    img->mtime_ns ==
			    (uint64_t)st.st_mtim.tv_sec * 1000000000ull +
				    (uint64_t)st.st_mtim.tv_nsec)
			break;
	}
	if (i == s->nimages) {
		img = realloc(s->images, (i + 1) * sizeof(*img));
		if (!img || mv__share_frames_room(s, s->frames_end + pages)) {
			if (img)
				s->images = img;
			return -ENOMEM;
		}
		s->images = img;
		s->images[i] = (struct mv__share_image){
			.dev = st.st_dev,
			.ino = st.st_ino,
			.size = (uint64_t)st.st_size,
			.mtime_ns =
				(uint64_t)st.st_mtim.tv_sec * 1000000000ull +
				(uint64_t)st.st_mtim.tv_nsec,
			.base = s->frames_end,
			.pages = pages,
		};
		for (uint64_t f = s->frames_end; f < s->frames_end + pages; f++)
			s->frames[f].image = i + 1;
		s->frames_end += pages;
		s->nimages++;
	}
	s->images[i].users++;
	vm->sh.image = (int)i;
	return 0;
}

int mv__share_vm_init(struct mv_vm *vm, const char *salt)
{
	struct mv__share *s = &vm->host->share;
	uint64_t want;
	int err;

	vm->sh.image = -1;
	vm->sh.salt = salt_of(vm, salt);
	vm->sh.nwin = (vm->npages + MV_SHARE_WINDOW - 1) / MV_SHARE_WINDOW;
	vm->sh.rng = 0x9e3779b97f4a7c15ull * (vm->id + 7);
	vm->sh.buf = mv__aligned_alloc(MV_PAGE_SIZE, MV_PAGE_SIZE);
	if (!vm->sh.buf)
		return -ENOMEM;
	pthread_mutex_init(&vm->sh.wp_lock, NULL);
	pthread_mutex_lock(&s->lock);
	err = salt_index(s, vm->sh.salt, &vm->sh.salt_id);
	if (err) {
		pthread_mutex_unlock(&s->lock);
		goto fail_buf;
	}
	want = (s->guest_pages + vm->npages) / 8 * 9 + 64;
	err = want > s->table_cap ? mv__share_table_grow(s, want) : 0;
	if (!err && vm->image_fd >= 0)
		err = image_attach(vm);
	if (!err)
		s->guest_pages += vm->npages;
	pthread_mutex_unlock(&s->lock);
	if (err)
		goto fail_buf;
	maps_recount(s); /* the VM's own mappings count too */
	return 0;

fail_buf:
	pthread_mutex_destroy(&vm->sh.wp_lock);
	free(vm->sh.buf);
	return err;
}

/* SHARED + ZERO pages - frames paid for: SHRDSVD, below 0 only while the
 * VM pays for frames it no longer maps (share_table.c, "Ownership").  An
 * open ZERO page (zero_open.c) has a frame counted: it saves nothing. */
static int64_t share_margin_signed(struct mv_vm *vm)
{
	return (int64_t)(atomic_load_explicit(&vm->census.pages[MV_PAGE_SHARED],
					      memory_order_relaxed) +
			 atomic_load_explicit(&vm->census.pages[MV_PAGE_ZERO],
					      memory_order_relaxed)) -
	       (int64_t)atomic_load_explicit(&vm->zo.pages,
					     memory_order_relaxed) -
	       (int64_t)atomic_load_explicit(&vm->sh.frames_owned,
					     memory_order_relaxed);
}

static uint64_t share_margin(struct mv_vm *vm)
{
	int64_t m = share_margin_signed(vm);

	return m > 0 ? (uint64_t)m : 0;
}

void mv__share_vm_fini(struct mv_vm *vm)
{
	struct mv_host *h = vm->host;
	struct mv__share *s = &h->share;
	struct mv_vm *o;
	uint64_t v;

	/* its fault threads are stopped and it is out of the host's list:
	 * nobody else changes its entries */
	for (uint64_t p = 0; p < vm->npages; p++) {
		v = pmap_peek(&vm->pmap[p]);
		if (pmap_state(v) == MV_PAGE_SHARED)
			mv__share_frame_put(vm, mv__share_frame_of(v));
	}
	pthread_mutex_lock(&h->vms_lock);
	pthread_mutex_lock(&s->lock);
	/* the frames it paid for that others still map: only VMs with their
	 * salt can map them; each takes what it can pay for without going
	 * below 0, the first the rest; NULL (none left, which refs > 0 rules
	 * out) rather than a dangling owner */
	for (o = h->vms; o; o = o->next)
		if (o != vm)
			mv__share_frames_pass(s, &vm->sh, &o->sh, o->sh.salt_id,
					      share_margin(o));
	for (o = h->vms; o; o = o->next)
		if (o != vm)
			mv__share_frames_pass(s, &vm->sh, &o->sh, o->sh.salt_id,
					      UINT64_MAX);
	mv__share_frames_pass(s, &vm->sh, NULL, UINT32_MAX, UINT64_MAX);
	mv__share_table_drop_hints(s, vm->id);
	if (vm->sh.image >= 0)
		s->images[vm->sh.image].users--;
	s->guest_pages -= vm->npages;
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&h->vms_lock);
	pthread_mutex_destroy(&vm->sh.wp_lock);
	free(vm->sh.buf);
}

/* ---- statistics ---- */

uint64_t mv__share_frames(struct mv_host *h)
{
	uint64_t n;

	pthread_mutex_lock(&h->share.lock);
	n = h->share.nframes;
	pthread_mutex_unlock(&h->share.lock);
	return n;
}

uint64_t mv__share_vm_saved(struct mv_vm *vm)
{
	return share_margin(vm);
}

void mv__share_host_stats(struct mv_host *h, struct mv_host_stats *st)
{
	struct mv__share *s = &h->share;

	pthread_mutex_lock(&s->lock);
	st->share_frames = s->nframes;
	st->share_refs = s->nrefs;
	st->share_hints = s->table_hints;
	st->share_table_bytes = s->table_cap * sizeof(*s->table) +
				s->frames_cap * sizeof(*s->frames);
	st->share_maps_full = s->maps_full;
	st->share_vmas = s->maps_now > s->maps_base ?
				 (uint64_t)(s->maps_now - s->maps_base) :
				 0;
	pthread_mutex_unlock(&s->lock);
	st->share_saved_pages = st->share_refs - st->share_frames;
	st->share_scanned_pages = atomic_load(&s->scanned);
	st->share_collisions = atomic_load(&s->collisions);
	st->cow_breaks = atomic_load(&s->cow_breaks);
	st->share_kept_in_place = atomic_load(&s->kept_in_place);
	st->share_lazy_fills = atomic_load(&s->lazy_fills);
	st->share_errors = atomic_load(&s->errors) +
			   atomic_load(&s->pagemap_errors) +
			   atomic_load(&s->punch_errors);
}

/* ---- the host ---- */

int mv__share_host_init(struct mv_host *h)
{
	struct mv__share *s = &h->share;
	int err;

	s->pagemap_fd = -1;
	s->ghz = host_ghz();
	s->pool_fd = memfd_create("memvisor-shared", MFD_CLOEXEC);
	if (s->pool_fd < 0)
		return -errno;
	/* sparse: only frames written take memory */
	if (ftruncate(s->pool_fd, (off_t)1 << 44) < 0) {
		err = -errno;
		goto fail_pool;
	}
	s->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	pthread_mutex_init(&s->lock, NULL);
	maps_recount(s);
	s->maps_base = s->maps_now;
	err = mv__cond_init_monotonic(&s->scanner_wake);
	if (err)
		goto fail_lock;
	err = -pthread_create(&s->scanner, NULL, scanner_main, h);
	if (err)
		goto fail_cond;
	s->scanner_started = true;
	return 0;

fail_cond:
	pthread_cond_destroy(&s->scanner_wake);
fail_lock:
	pthread_mutex_destroy(&s->lock);
	if (s->pagemap_fd >= 0)
		close(s->pagemap_fd);
fail_pool:
	close(s->pool_fd);
	return err;
}

void mv__share_host_fini(struct mv_host *h)
{
	struct mv__share *s = &h->share;

	if (s->scanner_started) {
		pthread_mutex_lock(&s->lock);
		s->scanner_stop = true;
		pthread_cond_signal(&s->scanner_wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->scanner, NULL);
	}
	pthread_cond_destroy(&s->scanner_wake);
	pthread_mutex_destroy(&s->lock);
	if (s->pagemap_fd >= 0)
		close(s->pagemap_fd);
	close(s->pool_fd);
	free(s->table);
	free(s->frames);
	free(s->free_frames);
	free(s->images);
	free(s->salts);
}

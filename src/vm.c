// SPDX-License-Identifier: MIT
/*
 * vm.c - a VM's guest physical memory: its mapping, its pmap, and its
 * registration with userfaultfd.
 *
 * Design: guest physical memory is one private anonymous mapping of memsize
 * bytes (the VM's own, or the VMM's when attached: cfg.mem, attach.c),
 * registered with a per-VM userfaultfd in MISSING and WP modes
 * (write-protection is set by the share scanner on runs of pages around
 * the PRIVATE candidates it compares, the pages between them included, and
 * by the fault service on shared pages and on ZERO pages it maps to the
 * kernel's zero page; a write to a protected PRIVATE page faults once and
 * is let through), with transparent huge pages off (a 2 MiB page would
 * fill 512 guest pages behind the pmap's back; a VM whose mapping cannot
 * be set so is refused).  A page is present only as pmap.h says (PRIVATE,
 * SHARED, or ZERO mapped to the zero page): faults fill pages with
 * UFFDIO_COPY, and reclaim takes a page out
 * with UFFDIO_MOVE into a small staging area registered with the same
 * userfaultfd (the kernel moves only between ranges of one userfaultfd).
 * Active-memory sampling moves pages out and back the same way, through
 * its own small area (sample.c).
 *
 * Why anonymous memory and UFFDIO_MOVE, measured on this machine (kernel
 * 6.18, 4096 pages, /tmp/probe in the commit that made this choice):
 *   fill, UFFDIO_COPY 1 page          2.3-2.7 us/page
 *   fill, UFFDIO_COPY 16 pages        0.6 us/page
 *   take out, UFFDIO_MOVE + DONTNEED of the staging page each time
 *                                     17.3 us/page
 *   take out, UFFDIO_MOVE, staging DONTNEED once per 16 pages
 *                                     7.2-7.4 us/page
 *   take out, UFFDIO_WRITEPROTECT + memcpy + MADV_DONTNEED (random order)
 *                                     13.0-17.8 us/page
 * MOVE is atomic against the guest (a write either lands before the move and
 * is saved, or faults after it and waits for the page lock), needs no
 * write-protect step per page, and in batches it is the cheapest for taking
 * pages out one by one.  (Sharing, which replaces whole runs of pages by a
 * mapping, write-protects a run in one call instead: share_merge.c.)  A memfd
 * backing would let another process serve faults and give MINOR faults for
 * sampling, but shmem has no UFFDIO_MOVE (EINVAL) and allocates a frame for
 * a zero page; those later mechanisms can map memfd-backed frames over
 * single pages of this mapping where they need them.
 *
 * A remote VM (mv__vm_create_remote, for daemon.c) has none of this: only
 * its place in the VM list and the scheduler, and the agent's figures.
 *
 * Invariants: mem and npages never change; pmap[ppn] is changed only under
 * its entry lock; consumed_pages counts the PRIVATE and SAMPLED pages, the
 * open ZERO pages (zero_open.c), the compression cache's frames, and
 * frames reserved by a fault in flight.
 *
 * Locks (order: internal.h): host->vms_lock to link and unlink (briefly);
 * pmap entry locks for a page's state; mv_vm_destroy waits, with no lock
 * held, for the scheduler's pin, then stops the VM's reclaim thread (it
 * ends its batch) before the fault threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"
#include "internal.h"
#include "uffd.h"

/* VMAs a VM adds (internal.h) */
#define VM_MAPS MV_VM_MAPS

void mv_vm_config_init(struct mv_vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->name, sizeof(cfg->name), "vm");
	cfg->memsize_bytes = 256ull << 20;
}

/* Shares, reservation and limit from the config, checked as the setters
 * check them. */
static int sched_init(struct mv_vm *vm, const struct mv_vm_config *cfg)
{
	uint64_t shares = cfg->shares,
		 min = cfg->reservation_bytes >> MV_PAGE_SHIFT;
	uint64_t limit = cfg->limit_bytes ? cfg->limit_bytes >> MV_PAGE_SHIFT :
					    vm->npages;
	struct mv_host *h = vm->host;

	if (!shares)
		shares = mv_shares_for(MV_SHARES_NORMAL, cfg->memsize_bytes);
	if (shares > MV_SHARES_MAX) {
		mv__host_api_msg(h, "VM %s: more than %llu shares", vm->name,
				 MV_SHARES_MAX);
		return -EINVAL;
	}
	if (limit > vm->npages || min > limit) {
		mv__host_api_msg(
			h,
			"VM %s: the reservation must be at most the limit, and the limit at most memsize",
			vm->name);
		return -EINVAL;
	}
	atomic_store(&vm->sched.shares, shares);
	atomic_store(&vm->sched.min_pages, min);
	atomic_store(&vm->sched.limit_pages, limit);
	atomic_store(&vm->sched.sztgt_pages, limit);
	return mv__sched_check_reservation(h, vm, min);
}

static int open_image(struct mv_vm *vm, const char *path)
{
	struct mv_host *h = vm->host;
	struct stat st;
	int err;

	vm->image_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (vm->image_fd < 0) {
		err = -errno;
		mv__host_api_msg(h, "VM %s: cannot open RAM image %s: %s",
				 vm->name, path, strerror(errno));
		return err;
	}
	if (fstat(vm->image_fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		mv__host_api_msg(h, "VM %s: RAM image %s is not a regular file",
				 vm->name, path);
		close(vm->image_fd);
		vm->image_fd = -1;
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > vm->npages << MV_PAGE_SHIFT) {
		mv__host_api_msg(
			h,
			"VM %s: RAM image %s (%llu bytes) is larger than the VM's memsize (%llu bytes)",
			vm->name, path, (unsigned long long)st.st_size,
			(unsigned long long)(vm->npages << MV_PAGE_SHIFT));
		close(vm->image_fd);
		vm->image_fd = -1;
		return -EFBIG;
	}
	vm->image_bytes = (uint64_t)st.st_size;
	return 0;
}

int mv_vm_create(mv_host *h, const struct mv_vm_config *cfg, mv_vm **out)
{
	char msg[MV_ERRMSG_MAX];
	struct mv_vm *vm;
	size_t len;
	int err;

	if (!h || !cfg || !out || !cfg->name[0] ||
	    memchr(cfg->name, '\0', sizeof(cfg->name)) == NULL ||
	    strchr(cfg->name, '/'))
		return -EINVAL;
	if (!cfg->memsize_bytes || cfg->memsize_bytes % MV_PAGE_SIZE) {
		mv__host_api_msg(
			h,
			"VM %s: memsize must be a non-zero multiple of 4 KiB",
			cfg->name);
		return -EINVAL;
	}
	if (cfg->mem &&
	    ((uintptr_t)cfg->mem % MV_PAGE_SIZE || cfg->image_path)) {
		mv__host_api_msg(
			h,
			"VM %s: attached memory must be 4 KiB aligned and cannot have a RAM image",
			cfg->name);
		return -EINVAL;
	}
	err = mv__check_map_count(VM_MAPS, msg, sizeof(msg));
	if (err) {
		mv__host_api_msg(h, "VM %s: %s", cfg->name, msg);
		return err;
	}
	/* aligned: its hot counters have cache lines of their own */
	vm = mv__aligned_alloc(MV_CACHELINE, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	memset(vm, 0, sizeof(*vm));
	vm->host = h;
	memcpy(vm->name, cfg->name, sizeof(vm->name));
	vm->npages = cfg->memsize_bytes >> MV_PAGE_SHIFT;
	vm->image_fd = -1;
	vm->uffd = -1;
	vm->swap.fd = -1;
	len = vm->npages << MV_PAGE_SHIFT;
	pthread_mutex_init(&vm->reclaim_lock, NULL);
	mv__balloon_init(vm);

	err = sched_init(vm, cfg);
	if (err)
		goto fail_vm;
	vm->pmap = mv__calloc(vm->npages, sizeof(*vm->pmap));
	if (!vm->pmap) {
		err = -ENOMEM;
		goto fail_vm;
	}
	/* calloc: every entry UNTOUCHED (0), none touched */
	atomic_store(&vm->census.pages[MV_PAGE_UNTOUCHED], vm->npages);
	if (cfg->image_path) {
		err = open_image(vm, cfg->image_path);
		if (err)
			goto fail_pmap;
	}
	if (cfg->mem) {
		vm->mem = cfg->mem;
		vm->attached = true;
		err = mv__attach_prepare(vm, msg, sizeof(msg));
		if (err) {
			mv__host_api_msg(h, "VM %s: cannot attach: %s",
					 vm->name, msg);
			goto fail_image;
		}
	} else {
		err = mv__map_anon(len, &vm->mem);
	}
	if (err) {
		mv__host_api_msg(
			h, "VM %s: cannot map %llu MiB of 4 KiB pages: %s",
			vm->name, (unsigned long long)(len >> 20),
			strerror(-err));
		goto fail_image;
	}
	err = mv__map_anon(MV_RECLAIM_BATCH * MV_PAGE_SIZE, &vm->staging);
	if (err) {
		mv__host_api_msg(h, "VM %s: cannot map its staging area: %s",
				 vm->name, strerror(-err));
		goto fail_mem;
	}
	err = mv__uffd_open(&vm->uffd, msg, sizeof(msg));
	if (err) {
		mv__host_api_msg(h, "VM %s: %s", vm->name, msg);
		goto fail_staging;
	}
	err = mv__uffd_register(vm->uffd, vm->mem, len, true);
	if (!err)
		err = mv__uffd_register(vm->uffd, vm->staging,
					MV_RECLAIM_BATCH * MV_PAGE_SIZE, false);
	if (err) {
		mv__host_api_msg(h,
				 "VM %s: userfaultfd registration failed: %s",
				 vm->name, strerror(-err));
		goto fail_uffd;
	}
#ifdef MV_TRACE
	mv__trace_vm(vm->mem, vm->pmap, vm->npages);
#endif
	vm->id = atomic_fetch_add(&h->next_vm_id, 1);
	vm->rng = 0x2545f4914f6cdd1dull * (vm->id + 1);
	err = mv__lpage_init(vm, h->settings.alloc_guest_large_page &&
					 !cfg->large_pages_off);
	if (err)
		goto fail_uffd;
	vm->lp.rng = 0x9e3779b97f4a7c15ull * (vm->id + 1);
	err = mv__sample_init(vm);
	if (err) {
		mv__host_api_msg(h, "VM %s: cannot set up sampling: %s",
				 vm->name, strerror(-err));
		goto fail_lpage;
	}
	err = mv__cold_init(vm, h->settings.reclaim_policy);
	if (err)
		goto fail_sample;
	mv__affinity_init(vm, h->settings.service_affinity);
	err = mv__swap_open(&vm->swap, h->swapdir, vm->name, vm->id, vm->npages,
			    h->settings.swap_direct_io, msg, sizeof(msg));
	if (err) {
		mv__host_api_msg(h, "%s", msg);
		goto fail_cold;
	}
	err = mv__zcache_init(vm);
	if (err)
		goto fail_swap;
	err = mv__share_vm_init(vm, cfg->salt);
	if (err)
		goto fail_zcache;
	err = mv__fault_start(vm);
	if (err) {
		mv__host_api_msg(h, "VM %s: cannot start fault threads: %s",
				 vm->name, strerror(-err));
		goto fail_share;
	}
	err = mv__reclaimer_start(vm);
	if (err) {
		mv__host_api_msg(h,
				 "VM %s: cannot start its reclaim thread: %s",
				 vm->name, strerror(-err));
		goto fail_faults;
	}
	/* last: from here on the scheduler may pick it, so it must be whole;
	 * its age counts from here, after a slow create (a swap file
	 * preallocated, an attach's adoption), not before */
	vm->sched.born_ms = mv__now_ms();
	mv__host_link_vm(h, vm);
	*out = vm;
	return 0;

fail_faults:
	mv__fault_stop(vm);
fail_share:
	mv__share_vm_fini(vm);
fail_zcache:
	mv__zcache_fini(vm);
fail_swap:
	mv__swap_close(&vm->swap);
fail_cold:
	mv__affinity_fini(vm);
	mv__cold_fini(vm);
fail_sample:
	mv__sample_fini(vm);
fail_lpage:
	mv__lpage_fini(vm);
fail_uffd:
	close(vm->uffd);
fail_staging:
	munmap(vm->staging, MV_RECLAIM_BATCH * MV_PAGE_SIZE);
fail_mem:
	/* an attached mapping stays as it was: the adopted pages' content
	 * is untouched, only their frames go back to the budget */
	if (vm->attached)
		mv__frames_release(h, atomic_load(&vm->consumed_pages));
	else
		munmap(vm->mem, len);
fail_image:
	if (vm->image_fd >= 0)
		close(vm->image_fd);
fail_pmap:
	free(vm->pmap);
fail_vm:
	mv__balloon_fini(vm);
	pthread_mutex_destroy(&vm->reclaim_lock);
	free(vm);
	return err;
}

int mv__vm_create_remote(struct mv_host *h, const struct mv_vm_config *cfg,
			 uint32_t pid, struct mv_vm **out)
{
	struct mv_vm *vm;
	int err;

	if (!cfg->name[0] || !memchr(cfg->name, '\0', sizeof(cfg->name)) ||
	    !cfg->memsize_bytes || cfg->memsize_bytes % MV_PAGE_SIZE)
		return -EINVAL;
	vm = mv__aligned_alloc(MV_CACHELINE, sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	memset(vm, 0, sizeof(*vm));
	vm->remote = mv__calloc(1, sizeof(*vm->remote));
	if (!vm->remote) {
		free(vm);
		return -ENOMEM;
	}
	pthread_mutex_init(&vm->remote->lock, NULL);
	vm->remote->pid = pid;
	vm->host = h;
	memcpy(vm->name, cfg->name, sizeof(vm->name));
	vm->npages = cfg->memsize_bytes >> MV_PAGE_SHIFT;
	vm->image_fd = -1;
	vm->uffd = -1;
	vm->swap.fd = -1;
	/* no salt any shared frame carries (share_table.c keeps 24 bits):
	 * a VM destroyed never passes its shared frames to a remote one */
	vm->sh.salt_id = UINT32_MAX - 1;
	pthread_mutex_init(&vm->reclaim_lock, NULL);
	mv__balloon_init(vm);
	atomic_store(&vm->sample.active_permille, 1000);
	err = sched_init(vm, cfg);
	if (err) {
		mv__balloon_fini(vm);
		pthread_mutex_destroy(&vm->reclaim_lock);
		pthread_mutex_destroy(&vm->remote->lock);
		free(vm->remote);
		free(vm);
		return err;
	}
	vm->id = atomic_fetch_add(&h->next_vm_id, 1);
	vm->sched.born_ms = mv__now_ms();
	mv__host_link_vm(h, vm);
	*out = vm;
	return 0;
}

/* A remote VM: out of the list, unpinned, its grant's frames given back. */
static void destroy_remote(struct mv_vm *vm)
{
	mv__host_unlink_vm(vm->host, vm);
	for (struct timespec ts = { 0, 1000000L };
	     atomic_load_explicit(&vm->sched_refs, memory_order_acquire);)
		nanosleep(&ts, NULL);
	mv__frames_release(vm->host, atomic_load(&vm->consumed_pages));
	mv__balloon_fini(vm);
	pthread_mutex_destroy(&vm->reclaim_lock);
	pthread_mutex_destroy(&vm->remote->lock);
	free(vm->remote);
	free(vm);
}

void mv_vm_destroy(mv_vm *vm)
{
	if (!vm)
		return;
	if (vm->remote) {
		destroy_remote(vm);
		return;
	}
	/* first out of the host's list, so the scheduler no longer picks it,
	 * then the scheduler's pin gone: a reclaim batch in flight on this VM
	 * ends (bounded: its swap writes are) with fault threads still here */
	mv__host_unlink_vm(vm->host, vm);
	for (struct timespec ts = { 0, 1000000L };
	     atomic_load_explicit(&vm->sched_refs, memory_order_acquire);)
		nanosleep(&ts, NULL);
	/* its reclaim thread ends the batch it is in (bounded), then the
	 * fault threads, which that batch's victims may be waiting on */
	mv__reclaimer_stop(vm);
	mv__fault_stop(vm);
	/* the VMM keeps its mapping: every page's content goes back into
	 * it while the uffd can still fill pages */
	if (vm->attached)
		mv__attach_restore(vm);
#ifdef MV_TRACE
	mv__trace_vm_gone(vm->mem);
#endif
	mv__share_vm_fini(vm);
	close(vm->uffd);
	mv__sample_fini(vm);
	munmap(vm->staging, MV_RECLAIM_BATCH * MV_PAGE_SIZE);
	if (!vm->attached)
		munmap(vm->mem, vm->npages << MV_PAGE_SHIFT);
	mv__lpage_fini(vm);
	mv__zcache_fini(vm);
	mv__frames_release(vm->host, atomic_load(&vm->consumed_pages));
	mv__swap_close(&vm->swap);
	if (vm->image_fd >= 0)
		close(vm->image_fd);
	free(vm->pmap);
	mv__cold_fini(vm);
	mv__affinity_fini(vm);
	mv__balloon_fini(vm);
	pthread_mutex_destroy(&vm->reclaim_lock);
	free(vm);
}

void *mv_vm_mem(const mv_vm *vm)
{
	return vm->mem;
}

uint64_t mv_vm_memsize(const mv_vm *vm)
{
	return vm->npages << MV_PAGE_SHIFT;
}

const char *mv_vm_name(const mv_vm *vm)
{
	return vm->name;
}

int mv_vm_page_state(mv_vm *vm, uint64_t ppn)
{
	uint64_t v;

	if (!vm || ppn >= vm->npages)
		return -EINVAL;
	/*
	 * The lock, not a peek: UFFDIO_COPY wakes the guest before the fault
	 * thread publishes PRIVATE, and a caller that just touched the page
	 * must see the state its touch caused.
	 */
	v = pmap_lock(&vm->pmap[ppn]);
	pmap_unlock(vm, ppn, v);
	return (int)pmap_state(v);
}

/* A remote VM: its agent's last report, with this host's view of its
 * place in the scheduler and its balloon target. */
static int remote_stats(struct mv_vm *vm, struct mv_vm_stats *st)
{
	uint64_t mctlsz;

	pthread_mutex_lock(&vm->remote->lock);
	*st = vm->remote->stats;
	pthread_mutex_unlock(&vm->remote->lock);
	memcpy(st->name, vm->name, sizeof(st->name));
	st->memsz_pages = vm->npages;
	st->shares = atomic_load(&vm->sched.shares);
	st->reservation_pages = atomic_load(&vm->sched.min_pages);
	st->limit_pages = atomic_load(&vm->sched.limit_pages);
	st->sztgt_pages = atomic_load(&vm->sched.sztgt_pages);
	st->swtgt_pages = atomic_load(&vm->sched.swtgt_pages);
	mctlsz = st->mctlsz_pages;
	mv__balloon_stats(vm, st);
	st->mctlsz_pages = mctlsz;
	return 0;
}

/*
 * The census's pages per state, read until they add up to the VM's pages:
 * each counter is exact, but a page changing state is taken from one and
 * given to the other in two steps, so one read may see it in neither (a
 * series whose states did not add up to MEMSZ).  Most reads that miss are
 * mended by reading again at once; a writer preempted between its two steps
 * leaves the counts off for its whole timeslice, so after CENSUS_SPINS
 * immediate reads the reader sleeps CENSUS_NAP_US between reads, letting the
 * writer run, until CENSUS_WAIT_MS have gone by.  Bounded: then the last
 * read stands (counts that never add up are a bug the debug walk in tests/
 * catches).  Measured, with a swapper and a guest thread keeping pages
 * moving: one read, 46 and 116 of 200k reads off; 64 immediate reads, 37 off
 * on a busy CI machine; with the naps, none.  No caller is on a fault or
 * reclaim path (statistics, the agent's reports, the tools).
 */
#define CENSUS_SPINS 64
#define CENSUS_NAP_US 50
#define CENSUS_WAIT_MS 250
static bool census_try(struct mv_vm *vm, uint64_t *pages)
{
	uint64_t sum = 0;

	for (unsigned s = 0; s < MV_PAGE_NSTATES; s++)
		sum += pages[s] = atomic_load_explicit(&vm->census.pages[s],
						       memory_order_relaxed);
	return sum == vm->npages;
}

static void census_read(struct mv_vm *vm, uint64_t *pages)
{
	struct timespec nap = { .tv_nsec = CENSUS_NAP_US * 1000 };
	uint64_t deadline;

	for (unsigned t = 0; t < CENSUS_SPINS; t++)
		if (census_try(vm, pages))
			return;
	deadline = mv__now_ms() + CENSUS_WAIT_MS;
	do {
		nanosleep(&nap, NULL);
		if (census_try(vm, pages))
			return;
	} while (mv__now_ms() < deadline);
}

int mv_vm_stats(mv_vm *vm, struct mv_vm_stats *st)
{
	struct mv__zcache_stats zs;

	if (!vm || !st)
		return -EINVAL;
	if (vm->remote)
		return remote_stats(vm, st);
	memset(st, 0, sizeof(*st));
	memcpy(st->name, vm->name, sizeof(st->name));
	st->memsz_pages = vm->npages;
	census_read(vm, st->state_pages);
	st->touched_pages =
		atomic_load_explicit(&vm->census.touched, memory_order_relaxed);
	st->consumed_pages = atomic_load(&vm->consumed_pages);
	st->active_permille = mv__sample_active_permille(vm);
	st->active_pages = st->consumed_pages * st->active_permille / 1000;
	st->shares = atomic_load(&vm->sched.shares);
	st->reservation_pages = atomic_load(&vm->sched.min_pages);
	st->limit_pages = atomic_load(&vm->sched.limit_pages);
	st->sztgt_pages = atomic_load(&vm->sched.sztgt_pages);
	st->swtgt_pages = atomic_load(&vm->sched.swtgt_pages);
	st->swcur_pages = atomic_load(&vm->swcur_pages);
	st->swapin_pages = atomic_load(&vm->c.swapin_pages);
	st->swapout_pages = atomic_load(&vm->c.swapout_pages);
	st->faults = atomic_load(&vm->c.faults);
	st->faults_spurious = atomic_load(&vm->c.faults_spurious);
	st->fault_fill_pages = atomic_load(&vm->c.fault_fill_pages);
	st->zero_maps = atomic_load(&vm->c.zero_maps);
	st->zero_writes = atomic_load(&vm->c.zero_writes);
	st->zero_around_pages = atomic_load(&vm->c.zero_around_pages);
	st->zero_opens = atomic_load(&vm->c.zero_opens);
	st->zero_open_writes = atomic_load(&vm->c.zero_open_writes);
	st->zero_closes = atomic_load(&vm->c.zero_closes);
	st->zero_open_pages = atomic_load(&vm->zo.pages);
	st->zero_open_errors = atomic_load(&vm->c.zero_open_errors);
	st->image_pages = atomic_load(&vm->c.image_pages);
	st->swap_errors = atomic_load(&vm->c.swap_errors);
	st->fault_errors = atomic_load(&vm->c.fault_errors);
	st->swap_write_errors = atomic_load(&vm->swap.write_errors);
	st->swap_paused = !mv__swap_usable(&vm->swap);
	st->unreadable_pages = atomic_load(&vm->c.unreadable_pages);
	st->alloc_waits = atomic_load(&vm->c.alloc_waits);
	st->blocked_waits = atomic_load(&vm->c.blocked_waits);
	st->first_unreadable_ppn = atomic_load(&vm->c.first_unreadable_ppn);
	st->unreadable_err = atomic_load(&vm->c.unreadable_err);
	st->swapin_runs = atomic_load(&vm->ra.runs);
	st->swapin_ra_hits = atomic_load(&vm->ra.hits);
	st->swapin_ra_misses = atomic_load(&vm->ra.misses);
	st->swapin_window =
		mv__ra_current(vm, vm->host->settings.swapin_cluster_pages);
	mv__affinity_stats(vm, st);
	mv__balloon_stats(vm, st);
	mv__zcache_stats(vm, &zs);
	st->zip_cached_pages = zs.pages;
	st->zip_used_bytes = zs.used_bytes;
	st->zip_stored_bytes = zs.stored_bytes;
	st->zip_saved_bytes =
		zs.pages << MV_PAGE_SHIFT > zs.used_bytes ?
			(zs.pages << MV_PAGE_SHIFT) - zs.used_bytes :
			0;
	st->zip_max_bytes = zs.max_bytes;
	st->zip_pages = atomic_load(&vm->zc.zip_pages);
	st->unzip_pages = atomic_load(&vm->zc.unzip_pages);
	st->zip_evict_pages = atomic_load(&vm->zc.evict_pages);
	st->zip_incompressible = atomic_load(&vm->zc.incompressible);
	st->zip_fast_pages = atomic_load(&vm->zc.fast_pages);
	st->zip_accel = atomic_load(&vm->zc.accel);
	st->shrd_pages = st->state_pages[MV_PAGE_SHARED];
	/* the open ones hold a frame (zero_open.c) */
	st->zero_pages =
		st->state_pages[MV_PAGE_ZERO] > st->zero_open_pages ?
			st->state_pages[MV_PAGE_ZERO] - st->zero_open_pages :
			0;
	st->shrdsvd_pages = mv__share_vm_saved(vm);
	st->share_scanned_pages = atomic_load(&vm->sh.scanned);
	st->cow_breaks = atomic_load(&vm->sh.cow_breaks);
	st->parked_pages = MV_PARK_PAGES - mv__sample_park_free(vm);
	st->parked_total = atomic_load(&vm->sample.parked_total);
	st->put_back_errors = atomic_load(&vm->sample.put_back_errors);
	st->lpage_pages = atomic_load(&vm->lp.regions) * MV_LPAGE_PAGES;
	st->lpage_collapses = atomic_load(&vm->lp.collapses);
	st->lpage_breaks = atomic_load(&vm->lp.breaks);
	st->lpage_collapse_errors = atomic_load(&vm->lp.collapse_errors);
	st->discard_pages = atomic_load(&vm->c.discard_pages);
	st->discard_frames_freed = atomic_load(&vm->c.discard_frames_freed);
	st->adopted_pages = vm->adopted_pages;
	st->attached = vm->attached;
	return 0;
}

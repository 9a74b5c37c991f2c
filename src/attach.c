// SPDX-License-Identifier: MIT
/*
 * attach.c - guest memory that belongs to the VMM: attaching its existing
 * mapping (cfg.mem), the discards it makes (mv_vm_discard), and putting
 * every page's content back into its mapping when the VM is destroyed.
 *
 * Design.  Attach: the VMM (QEMU through the preload, tools/preload.c, or
 * any VMM linking the library) already has its guest RAM mapped, private,
 * anonymous, read/write, and may have written into it (QEMU writes ROMs,
 * firmware and -kernel images into RAM, though at reset, after the attach).
 * Before the mapping is registered with the VM's userfaultfd it is checked
 * against /proc/self/maps (one private anonymous read/write run of
 * mappings, no file behind it), kept to 4 KiB pages (MADV_NOHUGEPAGE, and
 * a large folio already there split, as lpage.c splits one: large pages
 * are made only by lpage.c), and /proc/self/pagemap says which pages hold
 * content: present, or in the kernel's swap (read once so that it is
 * present).  Those are adopted PRIVATE, their frames reserved from the
 * host's budget; a budget that cannot hold them refuses the attach with
 * -ENOMEM, the mapping left as it was.  Nothing is ever copied at attach.
 *
 * Discard: what MADV_DONTNEED means for anonymous memory, done under the
 * engine's page locks instead of behind its back.  Pages are taken in
 * chunks, locked in ascending order (the pmap's rule for holding several,
 * as the balloon's inflate does); by state:
 *   PRIVATE     (a large region is broken first) the frames of each run
 *               of neighbours are dropped with one MADV_DONTNEED
 *               (process_madvise batching them when the kernel can) and go
 *               back to the host at once;
 *   ZERO mapped to the zero page: the mapping is dropped with them;
 *   SWAPPED     the slot is freed;  COMPRESSED  the cache object dropped;
 *   SHARED      share_cow.c unmaps it and drops its reference;
 *   SAMPLED     put back first (a page the kernel will not let back keeps
 *               its content and the discard says -EBUSY);
 *   a pinned copy (share_cow.c, at vm.max_map_count) is kept: -EBUSY;
 *   UNTOUCHED, ZERO not mapped, BALLOONED: nothing to free.
 * They become UNTOUCHED (first touch: zeros), or ZERO for a VM with a RAM
 * image (whose UNTOUCHED pages read the image).  Discards are not balloon
 * pages: MCTLSZ stays the balloon's own count (for a QEMU VM, the size
 * its virtio-balloon device reports); discards are counted in
 * discard_pages and discard_frames_freed.
 *
 * Restore, at destroy, with the fault threads stopped and the VM off the
 * host's list, the userfaultfd still open: SWAPPED pages are read back
 * (retried, then poisoned and said at MV_LOG_ERROR if the read keeps
 * failing), COMPRESSED ones decompressed, both filled with UFFDIO_COPY;
 * SAMPLED ones put back; a SHARED page or a pinned copy lives in a mapping
 * of the share pool over the guest address, which is replaced by a private
 * anonymous page holding the same bytes (the reference is dropped by
 * share_vm_fini).  Frames for the restored pages are not taken from the
 * budget: the VM is leaving and hands back what it held.  Everything else
 * (UNTOUCHED, ZERO, BALLOONED) reads as zeros once the mapping is
 * unregistered, as it should.
 *
 * Invariants: an adopted page was present when its entry became PRIVATE;
 * a discarded page is never left PRIVATE without a frame; a page is
 * changed only under its entry lock.
 *
 * Locks (order: internal.h): pmap entry locks in ascending ppn; under
 * them vm->zc.lock, vm->swap.lock, host->share.lock, host->frames_lock,
 * host->msg_lock (inside the calls made).  Never vm->reclaim_lock or
 * vm->balloon.lock.  Called from VMM threads, never from a fault thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "inject.h"
#include "internal.h"
#include "share_int.h"

#define DISCARD_CHUNK 256 /* pages locked at once by a discard */
#define PAGEMAP_CHUNK 512 /* pagemap entries read at once */
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define RESTORE_TRIES 7 /* swap reads at destroy before a page is lost */
#define HUGE_BYTES ((uint64_t)MV_LPAGE_PAGES << MV_PAGE_SHIFT)

/* ---- attach ---- */

/*
 * Whether [a, a + len) is covered, without a gap, by private anonymous
 * read/write mappings.  0, -EINVAL with msg, or 0 when procfs cannot tell
 * (registration then refuses what userfaultfd cannot take).
 */
static int check_mapping(uintptr_t a, uint64_t len, char *msg, size_t msglen)
{
	FILE *f = fopen("/proc/self/maps", "re");
	uintptr_t next = a, end = a + len, lo, hi;
	char line[512], perms[8];
	unsigned long long off, inode;
	char path[256];
	int n, err = 0;

	if (!f)
		return 0;
	while (next < end && fgets(line, sizeof(line), f)) {
		path[0] = '\0';
		n = sscanf(line,
			   "%" SCNxPTR "-%" SCNxPTR " %7s %llx %*s %llu %255s",
			   &lo, &hi, perms, &off, &inode, path);
		if (n < 5 || hi <= next)
			continue;
		if (lo > next)
			break; /* a gap */
		if (strcmp(perms, "rw-p") || inode || path[0] == '/') {
			snprintf(
				msg, msglen,
				"the mapping at %#" PRIxPTR
				" is not private anonymous read/write memory (%s %s)",
				lo, perms, path[0] ? path : "anonymous");
			err = -EINVAL;
			break;
		}
		next = hi;
	}
	fclose(f);
	if (!err && next < end) {
		snprintf(msg, msglen,
			 "nothing is mapped at %#" PRIxPTR
			 " inside the %llu bytes to attach",
			 next, (unsigned long long)len);
		err = -EINVAL;
	}
	return err;
}

/* Pages of the mapping that hold content: *n of them, bit p of map. */
static int written_pages(struct mv_vm *vm, uint64_t *map, uint64_t *n)
{
	uint64_t pm[PAGEMAP_CHUNK], first = (uintptr_t)vm->mem >> MV_PAGE_SHIFT;
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	ssize_t got;

	*n = 0;
	if (fd < 0)
		return -errno;
	for (uint64_t p = 0; p < vm->npages; p += PAGEMAP_CHUNK) {
		uint64_t k = vm->npages - p < PAGEMAP_CHUNK ? vm->npages - p :
							      PAGEMAP_CHUNK;

		got = pread(fd, pm, k * sizeof(pm[0]),
			    (off_t)((first + p) * sizeof(pm[0])));
		if (got != (ssize_t)(k * sizeof(pm[0]))) {
			close(fd);
			return got < 0 ? -errno : -EIO;
		}
		for (uint64_t i = 0; i < k; i++) {
			if (!(pm[i] & (PM_PRESENT | PM_SWAPPED)))
				continue;
			/* in the kernel's swap: read it in now, while the
			 * mapping is not registered, so that PRIVATE means
			 * present as everywhere else */
			if (!(pm[i] & PM_PRESENT))
				(void)*(volatile uint8_t *)(vm->mem +
							    ((p + i)
							     << MV_PAGE_SHIFT));
			map[(p + i) / 64] |= 1ull << ((p + i) % 64);
			(*n)++;
		}
	}
	close(fd);
	return 0;
}

int mv__attach_prepare(struct mv_vm *vm, char *msg, size_t msglen)
{
	struct mv_host *h = vm->host;
	uint64_t len = vm->npages << MV_PAGE_SHIFT, n, got = 0, *map;
	uintptr_t a = (uintptr_t)vm->mem;
	unsigned take;
	int err;

	err = check_mapping(a, len, msg, msglen);
	if (err)
		return err;
	/* as mv__map_anon: 4 KiB pages only, large ones made by lpage.c */
	err = mv__madvise(vm->mem, len, MADV_NOHUGEPAGE);
	if (err) {
		snprintf(msg, msglen, "MADV_NOHUGEPAGE refused: %s",
			 strerror(-err));
		return err;
	}
	map = mv__calloc((vm->npages + 63) / 64, sizeof(*map));
	if (!map) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	err = written_pages(vm, map, &n);
	if (err) {
		snprintf(
			msg, msglen,
			"cannot read /proc/self/pagemap to find the pages already written: %s",
			strerror(-err));
		goto out;
	}
	/* a large folio the VMM's writes made is split, content kept */
	for (uint64_t r = (a + HUGE_BYTES - 1) & ~(HUGE_BYTES - 1);
	     n && r + HUGE_BYTES <= a + len; r += HUGE_BYTES) {
		uint64_t p = (r - a) >> MV_PAGE_SHIFT;

		if (map[p / 64] >> (p % 64) & 1)
			mv__lpage_sys_split((void *)r);
	}
	while (got < n) {
		take = mv__frames_reserve(h, n - got > UINT32_MAX ?
						     UINT32_MAX :
						     (unsigned)(n - got));
		if (!take)
			break;
		got += take;
	}
	if (got < n) {
		mv__frames_release(h, got);
		snprintf(
			msg, msglen,
			"%llu pages are already written, more than the host's budget has free (%llu pages); give the host more memory",
			(unsigned long long)n, (unsigned long long)got);
		err = -ENOMEM;
		goto out;
	}
	for (uint64_t p = 0; p < vm->npages; p++)
		if (map[p / 64] >> (p % 64) & 1)
			atomic_store(&vm->pmap[p],
				     pmap_make(MV_PAGE_PRIVATE, PMAP_TOUCHED,
					       PMAP_FROM_ADOPTED));
	atomic_fetch_sub(&vm->census.pages[MV_PAGE_UNTOUCHED], n);
	atomic_fetch_add(&vm->census.pages[MV_PAGE_PRIVATE], n);
	atomic_fetch_add(&vm->census.touched, n);
	atomic_store(&vm->consumed_pages, n);
	vm->adopted_pages = n;
out:
	free(map);
	return err;
}

/* ---- discard ---- */

struct dpage {
	uint64_t ppn;
	uint64_t old; /* entry when locked; ~0: given back unchanged */
};

/* Present in the guest mapping: a frame, or the kernel's zero page. */
static bool present(uint64_t v)
{
	return pmap_state(v) == MV_PAGE_PRIVATE || pmap_zero_present(v);
}

/*
 * Drops the present pages among t[0..n) (ascending ppn), one range per run
 * of neighbours.  A run whose drop the kernel refused is unlocked as it
 * was and its t[].old set to ~0.  Returns frames dropped; *busy counts the
 * pages kept.
 */
static uint64_t drop_present(struct mv_vm *vm, struct dpage *t, unsigned n,
			     unsigned *busy)
{
	struct iovec iov[DISCARD_CHUNK];
	unsigned first[DISCARD_CHUNK], nruns = 0, done, k;
	uint64_t freed = 0;

	for (unsigned i = 0; i < n; i = k) {
		k = i + 1;
		if (!present(t[i].old))
			continue;
		while (k < n && t[k].ppn == t[k - 1].ppn + 1 &&
		       present(t[k].old))
			k++;
		first[nruns] = i;
		iov[nruns++] = (struct iovec){
			.iov_base = vm->mem + (t[i].ppn << MV_PAGE_SHIFT),
			.iov_len = (size_t)(k - i) << MV_PAGE_SHIFT,
		};
	}
	done = mv__dontneed_batch(iov, nruns);
	for (unsigned r = 0; r < nruns; r++) {
		unsigned pages = (unsigned)(iov[r].iov_len >> MV_PAGE_SHIFT);

		if (r < done || !mv__madvise(iov[r].iov_base, iov[r].iov_len,
					     MADV_DONTNEED)) {
			for (unsigned i = first[r]; i < first[r] + pages; i++)
				freed += mv__frame_dropped(vm, t[i].old);
			continue;
		}
		for (unsigned i = first[r]; i < first[r] + pages; i++) {
			pmap_unlock(vm, t[i].ppn, t[i].old);
			t[i].old = ~0ull;
			(*busy)++;
		}
	}
	return freed;
}

/* Discards pages [lo, lo + n), n <= DISCARD_CHUNK; returns pages kept. */
static unsigned discard_chunk(struct mv_vm *vm, uint64_t lo, unsigned n)
{
	enum mv_page_state to = vm->image_fd >= 0 ? MV_PAGE_ZERO :
						    MV_PAGE_UNTOUCHED;
	struct dpage t[DISCARD_CHUNK];
	uint64_t freed, swapped = 0, content = 0, v;
	unsigned k = 0, busy = 0;
	enum mv_page_state s;

	for (uint64_t p = lo; p < lo + n; p++) {
		v = pmap_lock(&vm->pmap[p]);
		if (pmap_state(v) == MV_PAGE_SAMPLED &&
		    mv__sample_unsample_locked(vm, p, &v)) {
			pmap_unlock(vm, p, v);
			busy++;
			continue;
		}
		s = pmap_state(v);
		if (pmap_pinned(v) ||
		    (s == MV_PAGE_SHARED && mv__share_give_up(vm, p, v))) {
			pmap_unlock(vm, p, v);
			busy++;
			continue;
		}
		if (s == MV_PAGE_BALLOONED ||
		    (s == MV_PAGE_UNTOUCHED && to == MV_PAGE_UNTOUCHED) ||
		    (s == MV_PAGE_ZERO && !present(v))) {
			pmap_unlock(vm, p, v);
			continue; /* nothing held, reads as zeros already */
		}
		if (s == MV_PAGE_PRIVATE)
			mv__lpage_break_locked(vm, p);
		t[k++] = (struct dpage){ .ppn = p, .old = v };
	}
	freed = drop_present(vm, t, k, &busy);
	for (unsigned i = 0; i < k; i++) {
		v = t[i].old;
		if (v == ~0ull)
			continue;
		s = pmap_state(v);
		if (s == MV_PAGE_SWAPPED) {
			mv__swap_free(&vm->swap, pmap_payload(v), 1);
			swapped++;
		} else if (s == MV_PAGE_COMPRESSED) {
			mv__zcache_drop(vm, t[i].ppn, v);
		}
		content += s != MV_PAGE_ZERO && s != MV_PAGE_UNTOUCHED;
		pmap_unlock(vm, t[i].ppn, pmap_make(to, v, 0));
	}
	if (swapped)
		atomic_fetch_sub(&vm->swcur_pages, swapped);
	if (freed) {
		atomic_fetch_sub(&vm->consumed_pages, freed);
		atomic_fetch_add_explicit(&vm->c.discard_frames_freed, freed,
					  memory_order_relaxed);
		mv__frames_release(vm->host, freed);
	}
	atomic_fetch_add_explicit(&vm->c.discard_pages, content,
				  memory_order_relaxed);
	return busy;
}

int mv_vm_discard(mv_vm *vm, uint64_t offset, uint64_t len)
{
	uint64_t size, lo, n, busy = 0;
	unsigned k;

	if (!vm || offset % MV_PAGE_SIZE || len % MV_PAGE_SIZE)
		return -EINVAL;
	size = vm->npages << MV_PAGE_SHIFT;
	if (offset > size || len > size - offset)
		return -EINVAL;
	lo = offset >> MV_PAGE_SHIFT;
	n = len >> MV_PAGE_SHIFT;
	for (uint64_t p = lo; p < lo + n; p += k) {
		k = lo + n - p < DISCARD_CHUNK ? (unsigned)(lo + n - p) :
						 DISCARD_CHUNK;
		busy += discard_chunk(vm, p, k);
	}
	if (busy)
		mv__host_set_msg(
			vm->host,
			"VM %s: %llu pages of a discard kept their content (being put back from sampling, or pinned in a shared mapping)",
			vm->name, (unsigned long long)busy);
	return busy ? -EBUSY : 0;
}

/* ---- restore, at destroy ---- */

/* The page at g becomes a private anonymous page holding buf (its
 * mapping was the share pool's): 0 or -errno. */
static int replace_page(uint8_t *g, const uint8_t *buf)
{
	void *p = mmap(g, MV_PAGE_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	memcpy(g, buf, MV_PAGE_SIZE); /* not registered: a plain fault */
	return 0;
}

/* Reads a SWAPPED page, retried; 0 or the last -errno. */
static int read_swapped(struct mv_vm *vm, uint64_t v, uint8_t *buf)
{
	struct timespec ts = { 0, 10 * 1000000L };
	int err = 0;

	for (unsigned i = 0; i < RESTORE_TRIES; i++) {
		err = mv__swap_read(&vm->swap, pmap_payload(v), 1, buf);
		if (!err)
			return 0;
		nanosleep(&ts, NULL);
		ts.tv_nsec = ts.tv_nsec * 2 % 1000000000L;
	}
	return err;
}

/* Puts page ppn (locked, entry v) back into the mapping; returns its
 * new entry.  *err: why its content could not be put back (0 if it was). */
static uint64_t restore_page(struct mv_vm *vm, uint64_t ppn, uint64_t v,
			     uint8_t *buf, int *err)
{
	uint8_t *g = vm->mem + (ppn << MV_PAGE_SHIFT);
	struct mv__share *s = &vm->host->share;
	uint64_t e = v;

	*err = 0;
	switch (pmap_state(v)) {
	case MV_PAGE_SWAPPED:
		*err = read_swapped(vm, v, buf);
		if (!*err)
			*err = mv__copy_page(vm, g, buf);
		if (*err)
			break;
		mv__swap_free(&vm->swap, pmap_payload(v), 1);
		atomic_fetch_sub(&vm->swcur_pages, 1);
		e = pmap_make(MV_PAGE_PRIVATE, v, PMAP_FROM_SWAP);
		break;
	case MV_PAGE_COMPRESSED:
		*err = mv__zcache_load(vm, v, buf);
		if (!*err)
			*err = mv__copy_page(vm, g, buf);
		if (*err)
			break;
		mv__zcache_drop(vm, ppn, v);
		e = pmap_make(MV_PAGE_PRIVATE, v, PMAP_FROM_ZIP);
		break;
	case MV_PAGE_SAMPLED:
		*err = mv__sample_unsample_locked(vm, ppn, &e);
		break;
	case MV_PAGE_SHARED:
		/* stays SHARED: share_vm_fini drops its reference */
		if (pmap_payload(v) & MV_SHARE_EMPTY) {
			if (mv__pread(s->pool_fd, buf, MV_PAGE_SIZE,
				      (off_t)(mv__share_frame_of(v)
					      << MV_PAGE_SHIFT)) !=
			    MV_PAGE_SIZE)
				*err = -EIO;
		} else {
			memcpy(buf, g, MV_PAGE_SIZE);
		}
		if (!*err)
			*err = replace_page(g, buf);
		break;
	case MV_PAGE_PRIVATE:
		if (pmap_pinned(v)) {
			memcpy(buf, g, MV_PAGE_SIZE);
			*err = replace_page(g, buf);
		}
		break;
	default:
		break;
	}
	return e;
}

void mv__attach_restore(struct mv_vm *vm)
{
	uint8_t *buf = mv__aligned_alloc(MV_PAGE_SIZE, MV_PAGE_SIZE);
	uint64_t lost = 0, first = 0, v;
	int err, why = 0;

	for (uint64_t p = 0; p < vm->npages; p++) {
		v = pmap_lock(&vm->pmap[p]);
		err = buf ? 0 : -ENOMEM;
		if (buf)
			v = restore_page(vm, p, v, buf, &err);
		else if (pmap_state(v) != MV_PAGE_SWAPPED &&
			 pmap_state(v) != MV_PAGE_COMPRESSED &&
			 pmap_state(v) != MV_PAGE_SAMPLED &&
			 pmap_state(v) != MV_PAGE_SHARED && !pmap_pinned(v))
			err = 0;
		if (err) {
			/* a touch must not read zeros for lost bytes */
			mv__uffd_poison(vm->uffd,
					vm->mem + (p << MV_PAGE_SHIFT),
					MV_PAGE_SIZE);
			if (!lost++) {
				first = p;
				why = err;
			}
		}
		pmap_unlock(vm, p, v);
	}
	free(buf);
	if (lost)
		mv__host_event(
			vm->host, MV_LOG_ERROR,
			"VM %s: %llu pages could not be put back into the VMM's mapping at destroy (the first, page %llu: %s); they are poisoned: a touch raises SIGBUS",
			vm->name, (unsigned long long)lost,
			(unsigned long long)first, strerror(-why));
}

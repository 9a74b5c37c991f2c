// SPDX-License-Identifier: MIT
/*
 * share.c - transparent page sharing (Waldspurger, OSDI 2002, section 4):
 * identical guest pages of all VMs kept once, copy-on-write.
 *
 * Design.  A scanner visits each VM's pages in a random order (windows of
 * SHARE_WINDOW pages in a random permutation each pass, so that neighbours
 * that match neighbours end up on consecutive frames and their mappings
 * merge), at the rates of Mem.ShareScanTime, Mem.ShareRateMax and
 * Mem.ShareScanGHz.  A scanned PRIVATE page is hashed (XXH3-64, seeded with
 * the VM's salt) into one host-wide table:
 *   - all-zero: the page is dropped and becomes ZERO, with no frame;
 *   - no entry: a *hint* naming the page is stored; the page stays
 *     writable and untouched;
 *   - a hint: the hinted page is rehashed in place; if it still matches,
 *     both pages are write-protected where they are (UFFDIO_WRITEPROTECT,
 *     so neither can change while it is compared; guest memory is
 *     registered in MISSING and WP modes for this), compared bit
 *     by bit, copied once into a new frame of the pool memfd, emptied, and
 *     both guest addresses are mapped to that frame; the two private
 *     frames go back to the host, the pool frame costs one;
 *   - a shared frame: the page is write-protected, compared bit by bit
 *     with the frame, emptied and mapped to it; its frame goes back to the
 *     host;
 *   - a hint an earlier page of the same window has already taken (a
 *     third copy, a peer): compared with that page and mapped to its
 *     pair's new frame, in the same pass.
 * TLB flushes are what this costs (each one a hypervisor exit when the
 * host is itself a guest), so a window of SHARE_WINDOW pages is worked in
 * as few calls as possible: its candidates are write-protected with one
 * call per side where one flush of the whole TLB is cheaper than one per
 * page, the pages between them included, and emptied with one
 * process_madvise() for both sides and all VMs.
 * Equal hashes with different bytes (a collision) never merge anything:
 * the bit-by-bit comparison decides, always on content that cannot change.
 *
 * A shared guest page is a MAP_PRIVATE mapping of its pool frame, read and
 * write, registered with userfaultfd in MISSING and WP modes and
 * write-protected.  Isolation does not rest on the write-protection: the
 * mapping is private, so the kernel can never write a guest's store into
 * the pool frame; at worst it gives the writer a private copy.  The
 * write-protection is what tells us about the write: its fault breaks the
 * sharing here (mv__share_cow): a fresh anonymous page gets the guest
 * page's bytes (read through the guest address, so a write that raced the
 * mapping is kept), and mremap() moves it over the guest address with its
 * page already present, so no guest access ever sees an empty page between
 * the old mapping and the new one.  The writer is then woken and writes to
 * its own page.  The broken page keeps its own mapping (mremap keeps the
 * page's anon_vma and offset, so it never merges back): about two
 * mappings per page ever shared, counted against vm.max_map_count, which
 * is checked as sharing goes (sharing stops with a message near it).
 *
 * VMs restored from the same RAM image share from the first touch: each
 * image gets a range of pool frames in page order, the first fault on an
 * image page fills that frame from the image, and every VM restored from
 * the image maps it instead of copying, whole fault-around runs per mmap.
 *
 * Salting: pages of VMs with different salts never share (Mem.ShareForce
 * Salting: 0 one salt for all, 1 the VM's salt or the common one, 2 the
 * VM's salt or one of its own).  The salt seeds the hash and is stored in
 * every frame, and both are compared.
 *
 * Table: open addressing with linear probing, 16 bytes a slot, sized to
 * 9/8 of all guest pages (0.44% of guest memory), backward-shift deletion.
 * Frame metadata: 8 bytes per pool frame (salts by index).
 *
 * Invariants: a page is SHARED iff its guest address maps pool frame
 * pmap_payload(entry) through a write-protected private mapping; a frame's
 * refs is the number of SHARED entries naming it; a frame with refs > 0 is
 * present in the pool and never written again; every present frame has a
 * table slot.  Pool frames are counted in the host's consumed frames, not
 * in any VM's.  PRIVATE pages are in anonymous mappings (so that
 * reclaim's UFFDIO_MOVE works on them), but for copies made in place at
 * vm.max_map_count (cow_in_place), which stay resident.  A PRIVATE page
 * may be write-protected without anyone holding its lock (a neighbour of
 * candidates, protected in the same call, or a candidate let go): its
 * first write faults and the fault service lifts the protection (fault.c).
 * The scanner never wakes a writer; that fault's service does, so no
 * fault outlives the page's state.
 *
 * Lock ordering: host->vms_lock -> pmap entry (trylock by the scanner) ->
 * share.lock -> further pmap entries by trylock only -> host->frames_lock.
 * The fault path takes pmap entry -> share.lock.
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
#include <xxhash.h>

#include "inject.h"
#include "internal.h"
#include "uffd.h"

#define SHARE_WINDOW 256 /* pages scanned together before a random jump */
#define SHARE_TICK_MS 100
#define SLOT_FRAME (1ull << 63)
#define SLOT_HINT (1ull << 62)
#define HINT_PPN_BITS 36
#define NO_SLOT UINT64_MAX
#define MAPS_CHECK_MS 2000
#define MAPS_SLACK 1024 /* mappings left for everything else */
#define SALT_NAMED (1ull << 62) /* salts from a VM's salt setting */
#define SALT_OWN (1ull << 63) /* salts of VMs that share with no one */
/*
 * The payload of a SHARED entry is its frame, with SHARED_EMPTY set for a
 * page left empty (its frame could be neither mapped nor copied back): its
 * next touch faults and mv__share_fill fills it.
 */
#define SHARED_EMPTY (1ull << 54)

static uint64_t frame_of(uint64_t v)
{
	return pmap_payload(v) & ~SHARED_EMPTY;
}

static uint8_t *page_of(struct mv_vm *vm, uint64_t ppn)
{
	return vm->mem + (ppn << MV_PAGE_SHIFT);
}

/*
 * Guest pages are read where they are.  Before a page is write-protected
 * what is read is only a hint (zero check, hash) and may be torn by a
 * guest write; what decides is a comparison made while the page is
 * write-protected, so that nothing can change it.  ThreadSanitizer cannot
 * see the protection (nor the guest thread's fault waiting on it), so these
 * loads are hidden from it; XXH3 runs in libxxhash, which it does not see.
 */
__attribute__((no_sanitize("thread"), noinline)) static bool
zero_in_place(const uint64_t *p)
{
	uint64_t acc;

	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i += 8) {
		acc = 0;
		for (unsigned k = 0; k < 8; k++)
			acc |= p[i + k];
		if (acc)
			return false;
	}
	return true;
}

__attribute__((no_sanitize("thread"), noinline)) static bool
same_in_place(const uint64_t *a, const uint64_t *b)
{
	uint64_t diff;

	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i += 8) {
		diff = 0;
		for (unsigned k = 0; k < 8; k++)
			diff |= a[i + k] ^ b[i + k];
		if (diff)
			return false;
	}
	return true;
}

static uint64_t hash_page(const void *p, uint64_t salt)
{
	return XXH3_64bits_withSeed(p, MV_PAGE_SIZE, salt) &
	       mv__inject_get_hash_mask();
}

/* ---- the hash table ---- */

static uint64_t home_of(const struct mv__share *s, uint64_t hash)
{
	return (uint64_t)(((unsigned __int128)hash * s->table_cap) >> 64);
}

static uint64_t next_slot(const struct mv__share *s, uint64_t i)
{
	return i + 1 == s->table_cap ? 0 : i + 1;
}

static uint64_t table_find(const struct mv__share *s, uint64_t hash)
{
	if (!s->table_cap)
		return NO_SLOT;
	for (uint64_t i = home_of(s, hash);; i = next_slot(s, i)) {
		if (!s->table[i].ref)
			return NO_SLOT;
		if (s->table[i].hash == hash)
			return i;
	}
}

static bool table_insert(struct mv__share *s, uint64_t hash, uint64_t ref)
{
	uint64_t i;

	/* beyond 90% linear probing slows down; the hint is simply dropped */
	if (!s->table_cap || (s->table_used + 1) * 10 > s->table_cap * 9)
		return false;
	for (i = home_of(s, hash); s->table[i].ref; i = next_slot(s, i))
		;
	s->table[i] = (struct mv__share_slot){ hash, ref };
	s->table_used++;
	s->table_hints += !(ref & SLOT_FRAME);
	return true;
}

/* Backward-shift deletion: no tombstones, probes stay short. */
static void table_delete(struct mv__share *s, uint64_t i)
{
	uint64_t j = i, home;

	s->table_hints -= !(s->table[i].ref & SLOT_FRAME);
	s->table_used--;
	for (;;) {
		s->table[i].ref = 0;
		for (;;) {
			j = next_slot(s, j);
			if (!s->table[j].ref)
				return;
			home = home_of(s, s->table[j].hash);
			/* j may move to i if its home is not in (i, j] */
			if (i <= j ? (home <= i || home > j) :
				     (home <= i && home > j))
				break;
		}
		s->table[i] = s->table[j];
		i = j;
	}
}

static void table_set_hint(struct mv__share *s, uint64_t i, struct mv_vm *vm,
			   uint64_t ppn)
{
	s->table_hints += !!(s->table[i].ref & SLOT_FRAME);
	s->table[i].ref = SLOT_HINT | ((uint64_t)vm->id << HINT_PPN_BITS) | ppn;
}

static int table_grow(struct mv__share *s, uint64_t want)
{
	struct mv__share_slot *old = s->table, *t;
	uint64_t old_cap = s->table_cap;

	t = mv__calloc(want, sizeof(*t));
	if (!t)
		return -ENOMEM;
	s->table = t;
	s->table_cap = want;
	s->table_used = s->table_hints = 0;
	for (uint64_t i = 0; i < old_cap; i++)
		if (old[i].ref)
			table_insert(s, old[i].hash, old[i].ref);
	free(old);
	return 0;
}

/* ---- pool frames ---- */

static int frames_room(struct mv__share *s, uint64_t end)
{
	struct mv__share_frame *f;
	uint64_t cap = s->frames_cap ? s->frames_cap : 1024;

	if (end <= s->frames_cap)
		return 0;
	/* by halves, not doubling: this array is most of the overhead */
	while (cap < end)
		cap += cap / 2;
	f = realloc(s->frames, cap * sizeof(*f));
	if (!f)
		return -ENOMEM;
	memset(f + s->frames_cap, 0, (cap - s->frames_cap) * sizeof(*f));
	s->frames = f;
	s->frames_cap = cap;
	return 0;
}

/* Keeps a freed scanner frame for reuse; if memory is short, it is lost to
 * reuse but not to the host (its budget was given back already). */
static void free_push(struct mv__share *s, uint64_t f)
{
	uint64_t cap = s->free_cap ? s->free_cap * 2 : 1024, *n;

	if (s->nfree == s->free_cap) {
		n = realloc(s->free_frames, cap * sizeof(*n));
		if (!n)
			return;
		s->free_frames = n;
		s->free_cap = cap;
	}
	s->free_frames[s->nfree++] = f;
}

/*
 * Gives frame f's memory back to the kernel.  Should that fail, the frame
 * keeps its memory until it is written again (a reused frame is always
 * written whole first), which is only counted: no content depends on it.
 */
static void frame_punch(struct mv__share *s, uint64_t f)
{
	int err = mv__inject_check(MV_INJ_SHARE_MADVISE);

	if (!err &&
	    fallocate(s->pool_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(f << MV_PAGE_SHIFT), MV_PAGE_SIZE) < 0)
		err = errno;
	if (err)
		atomic_fetch_add_explicit(&s->punch_errors, 1,
					  memory_order_relaxed);
}

/* Returns a scanner frame that never became shared. */
static void frame_discard(struct mv__share *s, uint64_t f)
{
	frame_punch(s, f);
	free_push(s, f);
}

/* A free scanner frame, or NO_SLOT. */
static uint64_t frame_alloc(struct mv__share *s)
{
	if (s->nfree)
		return s->free_frames[--s->nfree];
	if (frames_room(s, s->frames_end + 1))
		return NO_SLOT;
	return s->frames_end++;
}

static int frame_write(struct mv__share *s, uint64_t f, const void *page)
{
	ssize_t n = mv__pwrite(s->pool_fd, page, MV_PAGE_SIZE,
			       (off_t)(f << MV_PAGE_SHIFT));

	if (n == MV_PAGE_SIZE)
		return 0;
	return n < 0 ? -errno : -EIO;
}

static int frame_read(struct mv__share *s, uint64_t f, void *page)
{
	ssize_t n = mv__pread(s->pool_fd, page, MV_PAGE_SIZE,
			      (off_t)(f << MV_PAGE_SHIFT));

	if (n == MV_PAGE_SIZE)
		return 0;
	return n < 0 ? -errno : -EIO;
}

/* Frees a frame nobody maps any more: its slot, its memory, its budget. */
static void frame_free(struct mv_host *h, uint64_t f)
{
	struct mv__share *s = &h->share;
	uint8_t page[MV_PAGE_SIZE];
	uint64_t i, hash;

	if (!frame_read(s, f, page)) {
		hash = hash_page(page, s->salts[s->frames[f].salt]);
		for (i = table_find(s, hash); i != NO_SLOT && s->table[i].ref;
		     i = next_slot(s, i)) {
			if (s->table[i].ref == (SLOT_FRAME | f)) {
				table_delete(s, i);
				break;
			}
		}
	}
	if (s->frames[f].image)
		frame_punch(s, f);
	else
		frame_discard(s, f);
	s->nframes--;
	mv__frames_release(h, 1);
}

static void frame_put(struct mv_host *h, uint64_t f)
{
	struct mv__share *s = &h->share;

	s->nrefs--;
	if (--s->frames[f].refs == 0)
		frame_free(h, f);
}

/* ---- mappings ---- */

/*
 * Mappings are counted as they are made, never by reading /proc/self/maps
 * where share.lock is held: that file has a line per mapping, tens of
 * thousands near the limit (~40 ms to read), and reading it under the lock
 * once stalled every fault on a shared page.  Each call that can add
 * mappings adds its worst case (MAPS_PER_CHANGE: a page mapped in the
 * middle of a mapping splits it in three) to maps_now; merges and unmaps
 * are not seen, so the count only errs high, and the scanner thread reads
 * the real count every MAPS_CHECK_MS outside the lock (maps_recount),
 * which also sees mappings anyone else in the process made.
 */
#define MAPS_PER_CHANGE 2

/* Reads the real count without share.lock and stores it under it. */
static void maps_recount(struct mv__share *s)
{
	long used, max;

	if (mv__map_count(&used, &max))
		return; /* no procfs: maps_max stays 0 and nothing is mapped */
	pthread_mutex_lock(&s->lock);
	s->maps_now = used;
	s->maps_max = max;
	s->maps_full = used + MAPS_PER_CHANGE + MAPS_SLACK > max;
	pthread_mutex_unlock(&s->lock);
}

/*
 * Whether want more mappings may be made (share.lock held): MAPS_SLACK
 * stay for everything else in the process (thread stacks, malloc, the
 * compression cache).  Reads no file.  The first refusal is said once,
 * with the sysctl to set.
 */
static bool maps_room(struct mv_host *h, unsigned want)
{
	struct mv__share *s = &h->share;

	if (!s->maps_full &&
	    s->maps_now + (long)want + MAPS_SLACK <= s->maps_max)
		return true;
	s->maps_full = true;
	if (!s->maps_said) {
		s->maps_said = true;
		mv__host_set_msg(
			h,
			"page sharing stopped: about %ld of vm.max_map_count=%ld mappings in use; sharing resumes if mappings are freed; to share more, raise it, e.g. sysctl -w vm.max_map_count=%ld",
			s->maps_now, s->maps_max,
			s->maps_max > 0 ? s->maps_max * 4 : 262144);
	}
	return false;
}

/*
 * Bounded retries.  A call that should not fail (registering a mapping
 * just made, reading the pool) is tried RETRY_MAX more times, 1, 2, 4 ...
 * 64 ms apart (under half a second in all); then the caller takes its safe
 * way out, and the failure is counted and said.
 */
#define RETRY_MAX 12

static bool retry(struct mv_vm *vm, const char *what, int err, unsigned *tries)
{
	struct timespec ts = { 0, 1000000L << (*tries < 6 ? *tries : 6) };

	if (++*tries > RETRY_MAX) {
		atomic_fetch_add_explicit(&vm->host->share.errors, 1,
					  memory_order_relaxed);
		mv__host_set_msg(vm->host,
				 "VM %s: %s failed %u times (%s); kept safe",
				 vm->name, what, RETRY_MAX + 1, strerror(-err));
		return false;
	}
	nanosleep(&ts, NULL);
	return true;
}

/* UFFDIO_REGISTER (MISSING | WP) of guest pages just remapped. */
static int register_pages(struct mv_vm *vm, void *addr, size_t len)
{
	int err = mv__inject_check(MV_INJ_SHARE_REGISTER);

	return err ? -err : mv__uffd_register(vm->uffd, addr, len, true);
}

/*
 * Which of n pages from addr the guest got a private copy of behind our
 * back: bit i of the result for page i (n <= 64), from one pagemap read.
 * When pagemap cannot be read every page counts as written: the caller
 * then gives each its own copy of what the guest sees, which is always
 * right (and never shares a page it cannot check).
 */
static uint64_t written_in_window(struct mv__share *s, const void *addr,
				  uint64_t n)
{
	uint64_t e[64], mask = 0;
	size_t len = n * sizeof(e[0]);

	if (s->pagemap_fd < 0 || mv__inject_check(MV_INJ_SHARE_PAGEMAP) ||
	    pread(s->pagemap_fd, e, len,
		  (off_t)((uintptr_t)addr >> MV_PAGE_SHIFT) * 8) !=
		    (ssize_t)len) {
		atomic_fetch_add_explicit(&s->pagemap_errors, 1,
					  memory_order_relaxed);
		return n == 64 ? ~0ull : (1ull << n) - 1;
	}
	/* present (bit 63) and not a file page (bit 61): an anonymous copy */
	for (uint64_t i = 0; i < n; i++)
		if ((e[i] >> 63 & 1) && !(e[i] >> 61 & 1))
			mask |= 1ull << i;
	return mask;
}

/*
 * Gives the locked SHARED (or just mapped) page at ppn its own anonymous
 * page with the bytes the guest sees now (share.lock held).  The guest
 * address is never without a present page: mremap() replaces the shared
 * mapping with one whose page is already there.  0; 1 when the new page
 * could not be registered with userfaultfd (it is the guest's, present,
 * but must never be emptied: the caller pins it); or -errno with nothing
 * changed.
 */
static int unshare_page(struct mv_vm *vm, uint64_t ppn)
{
	struct mv__share *s = &vm->host->share;
	uint8_t *g = page_of(vm, ppn);
	unsigned tries = 0;
	void *t;
	int err;

	if (!maps_room(vm->host, MAPS_PER_CHANGE))
		return -ENOMEM;
	t = mmap(NULL, MV_PAGE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED)
		return -errno;
	memcpy(t, g, MV_PAGE_SIZE);
	if (mv__mremap_fixed(t, g, MV_PAGE_SIZE)) {
		err = -errno;
		munmap(t, MV_PAGE_SIZE);
		return err;
	}
	s->maps_now += MAPS_PER_CHANGE;
	/* the page is present, so until this succeeds the guest runs on */
	while ((err = register_pages(vm, g, MV_PAGE_SIZE)))
		if (!retry(vm, "registering an unshared page", err, &tries))
			return 1;
	return 0;
}

/*
 * Gives the locked page at ppn, mapped to a pool frame, the guest's own
 * copy inside that mapping, with no new mapping (share.lock held): the
 * protection is lifted without waking anyone and MADV_POPULATE_WRITE has
 * the kernel copy the frame into a private page, as for any private
 * mapping (a page the guest already wrote keeps its bytes).  The pool
 * frame is untouched.  The copy lives in a file mapping, where neither
 * UFFDIO_MOVE nor an emptied page would work, so it must stay resident:
 * the caller marks it PMAP_FROM_COW_IN_PLACE, which reclaim, sampling,
 * the balloon and the scanner pass by.  0, or -errno with the page still
 * mapping its frame (write-protected again if possible).
 */
static int keep_in_place(struct mv_vm *vm, uint64_t ppn)
{
	uint8_t *g = page_of(vm, ppn);
	int err;

	err = mv__uffd_wp(vm->uffd, g, MV_PAGE_SIZE,
			  UFFDIO_WRITEPROTECT_MODE_DONTWAKE);
	if (err)
		return err;
	err = -mv__inject_check(MV_INJ_SHARE_POPULATE);
	if (!err && madvise(g, MV_PAGE_SIZE, MADV_POPULATE_WRITE) < 0)
		err = -errno;
	if (err)
		mv__uffd_wp(vm->uffd, g, MV_PAGE_SIZE,
			    UFFDIO_WRITEPROTECT_MODE_WP);
	return err;
}

/*
 * Gives the locked page at ppn, mapped to a pool frame, the guest's own
 * copy of what it sees there (share.lock held): in its own mapping where
 * one can be made, else in place.  *origin tells which.  -errno when
 * neither worked: nothing changed, and the page still maps its frame.
 */
static int own_copy(struct mv_vm *vm, uint64_t ppn, enum pmap_origin *origin)
{
	struct mv__share *s = &vm->host->share;
	int err;

	*origin = PMAP_FROM_COW;
	err = unshare_page(vm, ppn);
	if (err == 1)
		*origin = PMAP_FROM_COW_IN_PLACE;
	if (err >= 0)
		return 0;
	err = keep_in_place(vm, ppn);
	if (err) {
		atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
		return err;
	}
	*origin = PMAP_FROM_COW_IN_PLACE;
	if (!atomic_fetch_add_explicit(&s->kept_in_place, 1,
				       memory_order_relaxed))
		mv__host_set_msg(
			vm->host,
			"VM %s: page %llu copied in place on write: no mapping could be made (vm.max_map_count=%ld; raise it, e.g. sysctl -w vm.max_map_count=%ld); such copies stay resident",
			vm->name, (unsigned long long)ppn, s->maps_max,
			s->maps_max > 0 ? s->maps_max * 4 : 262144);
	return 0;
}

/*
 * Maps n pool frames from f over the guest pages from ppn (all emptied or
 * never filled, and locked).  0, or -errno with nothing changed.  Should
 * registering or protecting the new mapping keep failing, the pages stay
 * mapped all the same: the mapping is private, so a guest write makes the
 * guest its own copy (found by written_in_window, or kept unnoticed in
 * place) and never reaches the frame.
 */
static int map_frames(struct mv_vm *vm, uint64_t ppn, uint64_t n, uint64_t f)
{
	struct mv__share *s = &vm->host->share;
	uint8_t *g = page_of(vm, ppn);
	size_t len = n << MV_PAGE_SHIFT;
	unsigned tries = 0;
	int err;

	if (!maps_room(vm->host, MAPS_PER_CHANGE))
		return -ENOMEM;
	if (mv__map_fixed(g, len, s->pool_fd, f << MV_PAGE_SHIFT))
		return -errno;
	s->maps_now += MAPS_PER_CHANGE;
	while ((err = register_pages(vm, g, len)))
		if (!retry(vm, "registering a shared page", err, &tries))
			return 0;
	tries = 0;
	while ((err = mv__uffd_wp(vm->uffd, g, len,
				  UFFDIO_WRITEPROTECT_MODE_WP)))
		if (!retry(vm, "write-protecting a shared page", err, &tries))
			return 0;
	return 0;
}

/* ---- scanning ---- */

static struct mv_vm *vm_by_id(struct mv_host *h, uint32_t id)
{
	for (struct mv_vm *vm = h->vms; vm; vm = vm->next)
		if (vm->id == id)
			return vm;
	return NULL;
}

/*
 * A candidate whose sharing did not happen: writable again, and let go,
 * PRIVATE.  A guest write that faulted on the protection is not woken
 * here: the fault service wakes it when it serves that fault (fault.c), so
 * the fault cannot be served later, after the page has moved on to
 * another state.  Should lifting the protection fail, the fault service
 * lifts it.
 */
static void release(struct mv_vm *vm, uint64_t ppn, uint64_t v)
{
	mv__uffd_wp(vm->uffd, page_of(vm, ppn), MV_PAGE_SIZE,
		    UFFDIO_WRITEPROTECT_MODE_DONTWAKE);
	pmap_unlock(vm, ppn, v);
}

/* What the scan of one window found for one page. */
enum cand_kind {
	C_SKIP, /* not a candidate (busy, not PRIVATE, no match): unlocked */
	C_ZERO, /* all zero */
	C_FRAME, /* equal hash to a shared frame */
	C_HINT, /* equal hash to a hinted page, which is locked too */
	C_PEER, /* equal hash to the hinted page of an earlier C_HINT of the
		 * window (a third copy): maps that pair's frame */
};

struct cand {
	enum cand_kind kind;
	uint64_t v; /* entry when locked */
	uint64_t slot; /* table slot matched (C_FRAME, C_HINT) */
	uint64_t frame; /* the frame to map, MV_NO_FRAME until known */
	struct mv_vm *vm2; /* C_HINT: the hinted page's VM */
	uint64_t ppn2, v2; /* C_HINT: the hinted page, its entry */
	unsigned peer; /* C_PEER: the C_HINT candidate whose frame it maps */
	bool shared1, shared2; /* mapped to the frame: this page, hinted */
	uint64_t empty1, empty2; /* SHARED_EMPTY: left empty, not mapped */
	bool owned; /* C_HINT: a page's budget has become the new frame's */
};

/* One window of one VM. */
struct window {
	struct mv_vm *vm;
	uint64_t lo, n; /* pages [lo, lo + n) */
	struct cand c[SHARE_WINDOW];
	uint64_t released; /* frames the host gets back */
	uint8_t *buf; /* a page for the scanner's copies */
};

/* The window's page i and its hinted page. */
static uint8_t *page1(struct window *w, uint64_t i)
{
	return page_of(w->vm, w->lo + i);
}

static uint8_t *page2(struct window *w, uint64_t i)
{
	return page_of(w->c[i].vm2, w->c[i].ppn2);
}

/* Gives up candidate i: its page, and its hinted page, are let go. */
static void drop_cand(struct window *w, uint64_t i)
{
	struct cand *c = &w->c[i];

	if (c->kind == C_HINT)
		release(c->vm2, c->ppn2, c->v2);
	release(w->vm, w->lo + i, c->v);
	c->kind = C_SKIP;
}

/*
 * Checks the hinted page of slot i for the window's page i (locked, hash
 * given): still there, PRIVATE, same hash, same salt.  Locks it and makes
 * i a C_HINT candidate, or updates the hint and leaves i alone.
 */
static bool take_hint(struct window *w, uint64_t i, uint64_t hash,
		      uint64_t slot)
{
	struct mv_vm *vm = w->vm, *vm2;
	struct mv__share *s = &vm->host->share;
	struct cand *c = &w->c[i];
	uint64_t ref = s->table[slot].ref;

	vm2 = vm_by_id(vm->host,
		       (uint32_t)((ref & ~SLOT_HINT) >> HINT_PPN_BITS));
	c->ppn2 = ref & ((1ull << HINT_PPN_BITS) - 1);
	if (!vm2 || c->ppn2 >= vm2->npages) {
		table_set_hint(s, slot, vm, w->lo + i);
		return false;
	}
	if (vm2->sh.salt != vm->sh.salt ||
	    (vm2 == vm && c->ppn2 == w->lo + i) ||
	    !pmap_trylock(&vm2->pmap[c->ppn2], &c->v2))
		return false;
	if (pmap_state(c->v2) != MV_PAGE_PRIVATE ||
	    hash_page(page_of(vm2, c->ppn2), vm->sh.salt) != hash) {
		table_set_hint(s, slot, vm, w->lo + i); /* stale */
		pmap_unlock(vm2, c->ppn2, c->v2);
		return false;
	}
	c->vm2 = vm2;
	c->kind = C_HINT;
	return true;
}

/*
 * A third copy in one window: the hint of slot is already locked as the
 * hinted page of an earlier candidate, whose frame page i can map too,
 * rather than wait for the next pass.
 */
static bool peer_of(struct window *w, uint64_t i, uint64_t slot)
{
	for (uint64_t j = 0; j < i; j++) {
		if (w->c[j].kind == C_HINT && w->c[j].slot == slot) {
			w->c[i].kind = C_PEER;
			w->c[i].peer = (unsigned)j;
			return true;
		}
	}
	return false;
}

/* Phase 1: lock, hash and look up every page of the window. */
static void classify(struct window *w)
{
	struct mv_vm *vm = w->vm;
	struct mv__share *s = &vm->host->share;
	uint64_t ppn, hash, slot, ref;
	struct cand *c;

	for (uint64_t i = 0; i < w->n; i++) {
		c = &w->c[i];
		ppn = w->lo + i;
		*c = (struct cand){ .kind = C_SKIP, .frame = MV_NO_FRAME };
		if (!pmap_trylock(&vm->pmap[ppn], &c->v))
			continue;
		/* a copy kept in place lives in a pool mapping, where an
		 * emptied page would show that frame's bytes: never touched */
		if (pmap_state(c->v) != MV_PAGE_PRIVATE ||
		    pmap_payload(c->v) == PMAP_FROM_COW_IN_PLACE) {
			pmap_unlock(vm, ppn, c->v);
			continue;
		}
		atomic_fetch_add_explicit(&vm->sh.scanned, 1,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&s->scanned, 1, memory_order_relaxed);
		if (zero_in_place((const uint64_t *)page_of(vm, ppn))) {
			c->kind = C_ZERO;
			continue;
		}
		/* a page that would need a mapping: only with room for
		 * one, and with pagemap to see the guest's racing writes */
		if (!maps_room(vm->host, MAPS_PER_CHANGE) ||
		    s->pagemap_fd < 0) {
			pmap_unlock(vm, ppn, c->v);
			continue;
		}
		hash = hash_page(page_of(vm, ppn), vm->sh.salt);
		slot = table_find(s, hash);
		ref = slot == NO_SLOT ? 0 : s->table[slot].ref;
		c->slot = slot;
		if (!ref) {
			table_insert(s, hash,
				     SLOT_HINT |
					     ((uint64_t)vm->id
					      << HINT_PPN_BITS) |
					     ppn);
		} else if (ref & SLOT_FRAME) {
			c->frame = ref & ~SLOT_FRAME;
			if (s->frames[c->frame].salt == vm->sh.salt_id) {
				c->kind = C_FRAME;
				continue;
			}
		} else if (peer_of(w, i, slot) || take_hint(w, i, hash, slot)) {
			continue;
		}
		pmap_unlock(vm, ppn, c->v);
	}
}

/* A page to write-protect: candidate i of the window, on one side. */
struct wp_page {
	struct mv_vm *vm;
	uint64_t ppn;
	unsigned i;
};

/*
 * What one UFFDIO_WRITEPROTECT call over span pages costs, in single-page
 * TLB flushes.  x86 Linux flushes the changed range page by page up to
 * tlb_single_page_flush_ceiling (33) pages and the whole TLB beyond it.
 * Measured here (a paravirtualized guest, where each flush is an exit): a
 * page 3.7 us, the whole TLB 45 us, so about 12 pages; the call itself
 * about one (docs/SHARING.md).  Pages of the span that are not candidates
 * are flushed too, but a range whose changed pages are far apart is
 * better protected in pieces.
 */
#define WP_FLUSH_CEILING 33
#define WP_FULL_FLUSH 12
#define WP_SPAN_MAX 512 /* beyond it the walk of the page table counts */

static uint64_t wp_cost(uint64_t span)
{
	return 1 + (span <= WP_FLUSH_CEILING ? span : WP_FULL_FLUSH);
}

static int wp_page_order(const void *a, const void *b)
{
	const struct wp_page *x = a, *y = b;

	if (x->vm != y->vm)
		return x->vm->id < y->vm->id ? -1 : 1;
	return x->ppn < y->ppn ? -1 : x->ppn > y->ppn;
}

/*
 * Write-protects the pages p[0..n) (sorted, by VM then page) in as few
 * calls as flush less: a group grows by the next run of neighbours while
 * one call over both costs no more than two.  Pages between them are
 * protected too; that is allowed (see the invariants above): a write to
 * such a page faults once and the fault service lifts the protection.
 * The candidates of a group whose call fails are given up.
 */
static void protect_pages(struct window *w, struct wp_page *p, unsigned n)
{
	unsigned a, b, e;
	uint64_t span;

	for (a = 0; a < n; a = b) {
		for (b = a + 1; b < n; b = e) {
			for (e = b + 1; e < n && p[e].vm == p[b].vm &&
					p[e].ppn == p[e - 1].ppn + 1;
			     e++)
				;
			span = p[e - 1].ppn - p[a].ppn + 1;
			if (p[b].vm != p[a].vm || span > WP_SPAN_MAX ||
			    wp_cost(span) >
				    wp_cost(p[b - 1].ppn - p[a].ppn + 1) +
					    wp_cost(e - b))
				break;
		}
		span = p[b - 1].ppn - p[a].ppn + 1;
		if (!mv__uffd_wp(p[a].vm->uffd, page_of(p[a].vm, p[a].ppn),
				 span << MV_PAGE_SHIFT,
				 UFFDIO_WRITEPROTECT_MODE_WP))
			continue;
		for (unsigned k = a; k < b; k++)
			if (w->c[p[k].i].kind != C_SKIP)
				drop_cand(w, p[k].i);
	}
}

/*
 * Phase 2: write-protects the candidates where they are, so that nothing
 * can change what is compared: a guest write now faults and waits for the
 * page's lock.  Guest reads go on.  The window's own pages first, then
 * the hinted pages, sorted so that neighbours in their VMs go together.
 */
static void protect(struct window *w)
{
	struct wp_page p[SHARE_WINDOW];
	unsigned n = 0;

	for (unsigned i = 0; i < w->n; i++)
		if (w->c[i].kind != C_SKIP)
			p[n++] = (struct wp_page){ w->vm, w->lo + i, i };
	protect_pages(w, p, n);
	n = 0;
	for (unsigned i = 0; i < w->n; i++)
		if (w->c[i].kind == C_HINT)
			p[n++] = (struct wp_page){ w->c[i].vm2, w->c[i].ppn2,
						   i };
	qsort(p, n, sizeof(p[0]), wp_page_order);
	protect_pages(w, p, n);
}

/*
 * Writes the new frames of the window's pairs from this VM's side, one
 * write per run of consecutive frames (their pages are neighbours).  A
 * pair whose write fails is let go, its frame with it.
 */
static void write_frames(struct window *w)
{
	struct mv__share *s = &w->vm->host->share;
	struct cand *c = w->c;
	ssize_t got;
	uint64_t i, j;

	for (i = 0; i < w->n; i = j) {
		for (j = i + 1;
		     j < w->n && c[i].kind == C_HINT && c[j].kind == C_HINT &&
		     c[j].frame == c[i].frame + (j - i);
		     j++)
			;
		if (c[i].kind != C_HINT)
			continue;
		got = mv__pwrite_guest(s->pool_fd, page1(w, i),
				       (j - i) << MV_PAGE_SHIFT,
				       (off_t)(c[i].frame << MV_PAGE_SHIFT));
		if (got == (ssize_t)((j - i) << MV_PAGE_SHIFT))
			continue;
		for (uint64_t k = i; k < j; k++) {
			frame_discard(s, c[k].frame);
			table_set_hint(s, c[k].slot, w->vm, w->lo + k);
			drop_cand(w, k);
		}
	}
}

/*
 * Phase 3: compares bit by bit what was write-protected; gives the pairs
 * that match new frames, consecutive where the pairs are, and writes them.
 */
static void compare(struct window *w, uint8_t *buf)
{
	struct mv__share *s = &w->vm->host->share;
	uint64_t salt = w->vm->sh.salt, f;
	const uint8_t *other;

	struct cand *c;
	bool same;

	for (uint64_t i = 0; i < w->n; i++) {
		c = &w->c[i];
		if (c->kind == C_ZERO)
			same = zero_in_place((const uint64_t *)page1(w, i));
		else if (c->kind == C_FRAME)
			same = !frame_read(s, c->frame, buf) &&
			       same_in_place((const uint64_t *)page1(w, i),
					     (const uint64_t *)buf);
		else if (c->kind == C_HINT)
			same = same_in_place((const uint64_t *)page1(w, i),
					     (const uint64_t *)page2(w, i));
		else if (c->kind == C_PEER)
			same = w->c[c->peer].kind == C_HINT &&
			       same_in_place((const uint64_t *)page1(w, i),
					     (const uint64_t *)page1(w,
								     c->peer));
		else
			continue;
		if (same)
			continue;
		/* a peer whose pair fell through was compared with nothing */
		if (c->kind == C_PEER && w->c[c->peer].kind != C_HINT)
			other = NULL;
		else
			other = c->kind == C_HINT ? page2(w, i) :
				c->kind == C_PEER ? page1(w, c->peer) :
						    buf;
		if (c->kind != C_ZERO && other &&
		    hash_page(page1(w, i), salt) == hash_page(other, salt))
			atomic_fetch_add(&s->collisions, 1);
		if (c->kind == C_HINT)
			table_set_hint(s, c->slot, w->vm, w->lo + i);
		drop_cand(w, i);
	}
	for (uint64_t i = 0; i < w->n; i++) {
		c = &w->c[i];
		if (c->kind != C_HINT)
			continue;
		/* the frame after the previous pair's, so mappings merge */
		f = i && w->c[i - 1].kind == C_HINT &&
				    w->c[i - 1].frame + 1 == s->frames_end &&
				    !frames_room(s, s->frames_end + 1) ?
			    s->frames_end++ :
			    frame_alloc(s);
		if (f == NO_SLOT) {
			table_set_hint(s, c->slot, w->vm, w->lo + i);
			drop_cand(w, i);
			continue;
		}
		s->frames[f] =
			(struct mv__share_frame){ .salt = w->vm->sh.salt_id &
							  0xffffff };
		c->frame = f;
	}
	write_frames(w);
	for (uint64_t i = 0; i < w->n; i++) {
		c = &w->c[i];
		if (c->kind != C_PEER)
			continue;
		if (w->c[c->peer].kind == C_HINT)
			c->frame = w->c[c->peer].frame;
		else
			drop_cand(w, i);
	}
}

/*
 * Puts back the content of an emptied page whose frame could not be mapped
 * (the mapping limit, no memory), copied from that frame, PRIVATE again.
 * false when that kept failing: the page is then left empty and SHARED,
 * holding its frame, and its next touch fills it (mv__share_fill).
 */
static bool refill(struct mv_vm *vm, uint64_t ppn, uint64_t f, uint8_t *buf)
{
	struct mv__share *s = &vm->host->share;
	struct uffdio_copy cp = { .dst = (uintptr_t)page_of(vm, ppn),
				  .src = (uintptr_t)buf,
				  .len = MV_PAGE_SIZE };
	unsigned tries = 0;
	int err;

	while ((err = frame_read(s, f, buf)))
		if (!retry(vm, "reading a frame back", err, &tries))
			return false;
	tries = 0;
	while (mv__uffd_copy(vm->uffd, &cp) && errno != EEXIST) {
		if (!retry(vm, "putting a page back", -errno, &tries))
			return false;
		cp.copy = 0;
	}
	return true;
}

/* Page k of the window, on one side, is shared from now on. */
static void mark_shared(struct cand *c, bool hinted)
{
	if (hinted)
		c->shared2 = true;
	else
		c->shared1 = true;
}

/*
 * Maps frames over pages [i, j) of the window (this VM's side, or the
 * hinted side), emptied: one mmap for consecutive frames.  Sets
 * shared1/shared2 of each page that ends up holding its frame; a page the
 * guest wrote in the mapping's window keeps its own copy.
 */
static void map_side(struct window *w, uint64_t i, uint64_t j, bool hinted)
{
	struct cand *c = w->c;
	struct mv_vm *vm = hinted ? c[i].vm2 : w->vm;
	uint64_t ppn = hinted ? c[i].ppn2 : w->lo + i;
	struct mv__share *s = &vm->host->share;
	enum pmap_origin origin;
	uint64_t written = 0, *v;

	if (map_frames(vm, ppn, j - i, c[i].frame)) {
		for (uint64_t k = i; k < j; k++) {
			if (refill(vm, ppn + (k - i), c[k].frame, w->buf))
				continue;
			atomic_fetch_add_explicit(&s->lazy_fills, 1,
						  memory_order_relaxed);
			mark_shared(&c[k], hinted);
			if (hinted)
				c[k].empty2 = SHARED_EMPTY;
			else
				c[k].empty1 = SHARED_EMPTY;
		}
		return;
	}
	for (uint64_t k = i; k < j; k++) {
		/* the pagemap is read 64 pages at a time */
		if ((k - i) % 64 == 0)
			written = written_in_window(s,
						    page_of(vm, ppn + (k - i)),
						    j - k < 64 ? j - k : 64);
		if (!(written >> ((k - i) % 64) & 1)) {
			mark_shared(&c[k], hinted);
			continue;
		}
		/* a page that cannot get its copy stays mapped: SHARED,
		 * with the guest's write in place, which the next write's
		 * fault copies out (mv__share_cow reads what the guest
		 * sees) */
		if (own_copy(vm, ppn + (k - i), &origin)) {
			mark_shared(&c[k], hinted);
			continue;
		}
		v = hinted ? &c[k].v2 : &c[k].v;
		if (origin == PMAP_FROM_COW_IN_PLACE)
			*v = pmap_make(MV_PAGE_PRIVATE, *v, origin);
	}
}

static bool mappable(const struct cand *c)
{
	return c->kind == C_FRAME || c->kind == C_HINT || c->kind == C_PEER;
}

static bool runs_on(const struct cand *a, const struct cand *b, bool hinted)
{
	if (!mappable(a) || !mappable(b) || b->frame != a->frame + 1)
		return false;
	if (!hinted)
		return true;
	return a->kind == C_HINT && b->kind == C_HINT && b->vm2 == a->vm2 &&
	       b->ppn2 == a->ppn2 + 1;
}

/*
 * Phase 4: empties the guest addresses of every page about to map a frame
 * and of the zero pages, in one process_madvise() on this process: one TLB
 * flush for the window, both sides and all VMs, where mapping a frame over
 * a present page flushed once a run.  Nothing can be lost: the pages have
 * been write-protected since they were compared, and each one's content
 * is in its frame, or is zeros.  A guest touching one meanwhile faults and
 * waits for the page's lock.
 */
static void empty_pages(struct window *w)
{
	struct iovec iov[2 * SHARE_WINDOW];
	struct cand *c = w->c;
	unsigned n = 0, done;
	uint64_t i, j;

	for (i = 0; i < w->n; i = j) {
		for (j = i + 1;
		     j < w->n && c[i].kind != C_SKIP && c[j].kind != C_SKIP;
		     j++)
			;
		if (c[i].kind != C_SKIP)
			iov[n++] = (struct iovec){ page1(w, i),
						   (j - i) << MV_PAGE_SHIFT };
	}
	for (i = 0; i < w->n; i = j) {
		for (j = i + 1;
		     j < w->n && c[i].kind == C_HINT && c[j].kind == C_HINT &&
		     c[j].vm2 == c[i].vm2 && c[j].ppn2 == c[i].ppn2 + (j - i);
		     j++)
			;
		if (c[i].kind == C_HINT)
			iov[n++] = (struct iovec){ page2(w, i),
						   (j - i) << MV_PAGE_SHIFT };
	}
	for (done = mv__dontneed_batch(iov, n); done < n; done++)
		madvise(iov[done].iov_base, iov[done].iov_len, MADV_DONTNEED);
}

/* Phase 5: maps the frames, in runs of consecutive frames. */
static void map_all(struct window *w)
{
	struct cand *c = w->c;
	uint64_t i, j;

	for (i = 0; i < w->n; i = j) {
		for (j = i + 1; j < w->n && runs_on(&c[j - 1], &c[j], false);
		     j++)
			;
		if (mappable(&c[i]))
			map_side(w, i, j, false);
	}
	for (i = 0; i < w->n; i = j) {
		for (j = i + 1; j < w->n && runs_on(&c[j - 1], &c[j], true);
		     j++)
			;
		if (c[i].kind == C_HINT)
			map_side(w, i, j, true);
	}
}

/*
 * The page's own frame is gone (replaced by a mapping of a shared frame,
 * or dropped as ZERO).  to_host: the frame goes back to the host, rather
 * than to the pool as a new shared frame.
 */
static void drop_private(struct window *w, struct mv_vm *vm, bool to_host)
{
	atomic_fetch_sub_explicit(&vm->consumed_pages, 1, memory_order_relaxed);
	w->released += to_host;
}

/* How many peers of the window's C_HINT candidate i map its frame. */
static uint64_t peers_mapped(const struct window *w, uint64_t i)
{
	uint64_t n = 0;

	for (uint64_t k = i + 1; k < w->n; k++)
		n += w->c[k].kind == C_PEER && w->c[k].peer == i &&
		     w->c[k].shared1;
	return n;
}

/* Phase 6: publishes every candidate's outcome and counts it. */
static uint64_t publish(struct window *w)
{
	struct mv__share *s = &w->vm->host->share;
	struct mv_vm *vm = w->vm;
	uint64_t merged = 0, got;
	struct cand *c;

	for (uint64_t i = 0; i < w->n; i++) {
		c = &w->c[i];
		switch (c->kind) {
		case C_SKIP:
			continue;
		case C_ZERO:
			drop_private(w, vm, true);
			pmap_unlock(vm, w->lo + i,
				    pmap_make(MV_PAGE_ZERO, c->v, 0));
			merged++;
			continue;
		case C_FRAME:
			if (c->shared1) {
				drop_private(w, vm, true);
				s->frames[c->frame].refs++;
				s->nrefs++;
			}
			break;
		case C_PEER:
			if (c->shared1) {
				drop_private(w, vm, w->c[c->peer].owned);
				w->c[c->peer].owned = true;
				s->frames[c->frame].refs++;
				s->nrefs++;
			}
			break;
		case C_HINT:
			/* the first sharer's frame becomes the pool frame */
			got = c->shared1 + c->shared2 + peers_mapped(w, i);
			if (c->shared1)
				drop_private(w, vm, false);
			if (c->shared2)
				drop_private(w, c->vm2, c->shared1);
			c->owned = c->shared1 || c->shared2;
			if (!got) {
				frame_discard(s, c->frame);
				table_set_hint(s, c->slot, vm, w->lo + i);
			} else {
				/* its peers, later in the window, add theirs */
				s->frames[c->frame].refs =
					(uint32_t)(c->shared1 + c->shared2);
				s->nrefs += c->shared1 + c->shared2;
				s->nframes++;
				if (!(s->table[c->slot].ref & SLOT_FRAME))
					s->table_hints--;
				s->table[c->slot].ref = SLOT_FRAME | c->frame;
			}
			pmap_unlock(c->vm2, c->ppn2,
				    c->shared2 ?
					    pmap_make(MV_PAGE_SHARED, c->v2,
						      c->frame | c->empty2) :
					    c->v2);
			merged += c->shared2;
			break;
		}
		pmap_unlock(vm, w->lo + i,
			    c->shared1 ? pmap_make(MV_PAGE_SHARED, c->v,
						   c->frame | c->empty1) :
					 c->v);
		merged += c->shared1;
	}
	atomic_fetch_add_explicit(&vm->sh.merged, merged, memory_order_relaxed);
	return merged;
}

/*
 * Scans one window: every PRIVATE page in it is hashed and looked up, and
 * those that match are merged together, each step for all of them at once
 * (one write-protection, one mapping per run), since per page system calls and TLB
 * flushes are what sharing costs.  Pages that are not shared in the end
 * (put back, or copied on a racing write) keep their frame and stay
 * PRIVATE.
 */
static uint64_t scan_window(struct mv_vm *vm, uint64_t win, uint8_t *buf)
{
	struct mv__share *s = &vm->host->share;
	struct window w = { .vm = vm, .lo = win * SHARE_WINDOW, .buf = buf };
	uint64_t merged;

	w.n = vm->npages - w.lo < SHARE_WINDOW ? vm->npages - w.lo :
						 SHARE_WINDOW;
	pthread_mutex_lock(&s->lock);
	classify(&w);
	protect(&w);
	compare(&w, buf);
	empty_pages(&w);
	map_all(&w);
	merged = publish(&w);
	pthread_mutex_unlock(&s->lock);
	mv__frames_release(vm->host, w.released);
	return merged;
}

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
static uint64_t next_window(struct mv_vm *vm)
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
static uint64_t scan_vm(struct mv_vm *vm, uint64_t npages)
{
	uint64_t merged = 0;

	for (uint64_t k = 0; k < npages; k += SHARE_WINDOW)
		merged += scan_window(vm, next_window(vm), vm->sh.buf);
	return merged;
}

int mv_vm_share_scan(mv_vm *vm, uint64_t npages, uint64_t *merged)
{
	uint64_t got;

	if (!vm)
		return -EINVAL;
	pthread_mutex_lock(&vm->host->vms_lock);
	got = scan_vm(vm, npages);
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
static void scan_tick(struct mv_host *h, double seconds)
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
		n = (uint64_t)(vm->sh.credit / SHARE_WINDOW) * SHARE_WINDOW;
		vm->sh.credit -= (double)n;
		scan_vm(vm, n);
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
			scan_tick(h, SHARE_TICK_MS / 1000.0);
	}
	return NULL;
}

/* ---- copy-on-write ---- */

/*
 * A write to a SHARED page.  The copy gets its own mapping where one can
 * be made; at vm.max_map_count it is made in place (keep_in_place), so the
 * write always goes on: nothing here waits for a mapping.  Should both
 * fail, nothing changes and the writer is woken: it faults again and is
 * served then (each attempt bounded, each failure counted).
 */
bool mv__share_cow(struct mv_vm *vm, uint64_t ppn, uint64_t v)
{
	struct mv_host *h = vm->host;
	struct mv__share *s = &h->share;
	enum pmap_origin origin;
	int err;

	pmap_assert_locked(&vm->pmap[ppn]);
	/* an empty page (a protection marker left when it was emptied) has
	 * nothing to copy through the guest address: it is filled instead */
	if (pmap_payload(v) & SHARED_EMPTY) {
		err = mv__share_fill(vm, ppn, v);
		if (!err)
			return true;
		pmap_unlock(vm, ppn, v);
		if (err == -EAGAIN)
			mv__frames_wait(h);
		return err != -EAGAIN;
	}
	if (!mv__frames_reserve(h, 1)) {
		pmap_unlock(vm, ppn, v);
		mv__frames_wait(h);
		return false;
	}
	pthread_mutex_lock(&s->lock);
	err = own_copy(vm, ppn, &origin);
	if (!err)
		frame_put(h, frame_of(v));
	pthread_mutex_unlock(&s->lock);
	if (err) {
		mv__frames_release(h, 1);
		pmap_unlock(vm, ppn, v);
		mv__host_set_msg(
			h,
			"VM %s: cannot break sharing of page %llu on write: %s; the writer will fault again",
			vm->name, (unsigned long long)ppn, strerror(-err));
		return true;
	}
	atomic_fetch_add_explicit(&vm->consumed_pages, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->sh.cow_breaks, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->cow_breaks, 1, memory_order_relaxed);
	pmap_unlock(vm, ppn, pmap_make(MV_PAGE_PRIVATE, v, origin));
	return true;
}

int mv__share_give_up(struct mv_vm *vm, uint64_t ppn, uint64_t v)
{
	struct mv_host *h = vm->host;
	struct mv__share *s = &h->share;
	uint8_t *g = page_of(vm, ppn);
	volatile uint8_t *t;
	unsigned tries = 0;
	bool room;
	int err;

	pmap_assert_locked(&vm->pmap[ppn]);
	pthread_mutex_lock(&s->lock);
	room = maps_room(h, MAPS_PER_CHANGE);
	if (room)
		s->maps_now += MAPS_PER_CHANGE;
	pthread_mutex_unlock(&s->lock);
	if (!room)
		return -ENOMEM;
	/*
	 * The same mremap() as for a copy, but of the kernel's zero page,
	 * which costs no frame; then the address is emptied so that the next
	 * touch faults.  A touch in between reads zeros, as a ballooned page
	 * must.
	 */
	t = mmap(NULL, MV_PAGE_SIZE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (t == MAP_FAILED)
		return -errno;
	(void)t[0];
	if (mv__mremap_fixed((void *)t, g, MV_PAGE_SIZE)) {
		err = -errno;
		munmap((void *)t, MV_PAGE_SIZE);
		return err;
	}
	/*
	 * Unregistered, the page would never fault again: it keeps the zero
	 * page then (emptying it would let the guest's next touch take a
	 * fresh page unseen), and reads as zeros all the same.
	 */
	while ((err = register_pages(vm, g, MV_PAGE_SIZE)))
		if (!retry(vm, "registering a page given up", err, &tries))
			break;
	if (!err && (mv__inject_check(MV_INJ_SHARE_MADVISE) ||
		     madvise(g, MV_PAGE_SIZE, MADV_DONTNEED) < 0))
		atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
	pthread_mutex_lock(&s->lock);
	frame_put(h, frame_of(v));
	pthread_mutex_unlock(&s->lock);
	return 0;
}

int mv__share_fill(struct mv_vm *vm, uint64_t ppn, uint64_t v)
{
	struct mv_host *h = vm->host;
	struct mv__share *s = &h->share;
	uint8_t *buf = vm->sh.buf; /* share.lock is held */
	struct uffdio_copy cp = { .dst = (uintptr_t)page_of(vm, ppn),
				  .src = (uintptr_t)buf,
				  .len = MV_PAGE_SIZE };
	int err;

	pmap_assert_locked(&vm->pmap[ppn]);
	/* a page mapping its frame faults only on a stale event: nothing
	 * to do (a copy made now would land inside the pool mapping) */
	if (!(pmap_payload(v) & SHARED_EMPTY))
		return -EEXIST;
	if (!mv__frames_reserve(h, 1))
		return -EAGAIN;
	pthread_mutex_lock(&s->lock);
	err = frame_read(s, frame_of(v), buf);
	if (!err && mv__uffd_copy(vm->uffd, &cp))
		err = -errno;
	if (!err)
		frame_put(h, frame_of(v));
	pthread_mutex_unlock(&s->lock);
	if (err) {
		mv__frames_release(h, 1);
		return err; /* -EEXIST: it is mapped after all */
	}
	atomic_fetch_add_explicit(&vm->consumed_pages, 1, memory_order_relaxed);
	pmap_unlock(vm, ppn, pmap_make(MV_PAGE_PRIVATE, v, PMAP_FROM_COW));
	return 0;
}

/* ---- VMs restored from one RAM image ---- */

/*
 * Makes frame f (of the VM's image, page content in page) usable by the
 * VM: fills it on first use.  false if it cannot be shared with this VM.
 */
static bool image_frame(struct mv_host *h, struct mv_vm *vm, uint64_t f,
			const uint8_t *page)
{
	struct mv__share *s = &h->share;
	uint64_t hash;

	if (s->frames[f].refs)
		return s->frames[f].salt == vm->sh.salt_id;
	if (!mv__frames_reserve(h, 1))
		return false;
	if (frame_write(s, f, page)) {
		mv__frames_release(h, 1);
		return false;
	}
	s->frames[f].salt = vm->sh.salt_id & 0xffffff;
	s->nframes++;
	hash = hash_page(page, vm->sh.salt);
	if (table_find(s, hash) == NO_SLOT)
		table_insert(s, hash, SLOT_FRAME | f);
	return true;
}

unsigned mv__share_image_map(struct mv_vm *vm, uint64_t lo, uint64_t n,
			     const uint8_t *buf, uint64_t *frame)
{
	struct mv_host *h = vm->host;
	struct mv__share *s = &h->share;
	const struct mv__share_image *img;
	unsigned done = 0;
	uint64_t i, j, f;
	int err;

	for (i = 0; i < n; i++)
		frame[i] = MV_NO_FRAME;
	if (vm->sh.image < 0)
		return 0;
	pthread_mutex_lock(&s->lock);
	img = &s->images[vm->sh.image];
	/*
	 * A VM alone with its image would only move its pages into the pool,
	 * where reclaim cannot take them: it fills them privately, and the
	 * scanner shares them if others come.
	 */
	if (img->users < 2) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	for (i = 0; i < n && lo + i < img->pages; i++)
		if (!zero_in_place(
			    (const uint64_t *)(buf + (i << MV_PAGE_SHIFT))) &&
		    image_frame(h, vm, img->base + lo + i,
				buf + (i << MV_PAGE_SHIFT)))
			frame[i] = img->base + lo + i;
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && (frame[j] == MV_NO_FRAME) ==
						 (frame[i] == MV_NO_FRAME);
		     j++)
			;
		if (frame[i] == MV_NO_FRAME)
			continue;
		/*
		 * A guest thread may touch a page of the run as soon as it is
		 * mapped (its frame is in the pool, so nothing faults), and a
		 * write then makes it a private copy inside the mapping.  Such
		 * a page is published SHARED all the same: what the guest sees
		 * is its content, the copy is write-protected with the rest,
		 * and the next write's fault copies it out (mv__share_cow).
		 */
		err = map_frames(vm, lo + i, j - i, frame[i]);
		for (uint64_t k = i; k < j; k++) {
			f = frame[k];
			if (!err) {
				s->frames[f].refs++;
				s->nrefs++;
				done++;
				continue;
			}
			frame[k] = MV_NO_FRAME;
			if (!s->frames[f].refs)
				frame_free(h, f);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return done;
}

/* ---- setup, teardown, statistics ---- */

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
static int salt_id(struct mv__share *s, uint64_t salt, uint32_t *id)
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
		if (!img || frames_room(s, s->frames_end + pages)) {
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
	vm->sh.nwin = (vm->npages + SHARE_WINDOW - 1) / SHARE_WINDOW;
	vm->sh.rng = 0x9e3779b97f4a7c15ull * (vm->id + 7);
	vm->sh.buf = mv__aligned_alloc(MV_PAGE_SIZE, MV_PAGE_SIZE);
	if (!vm->sh.buf)
		return -ENOMEM;
	pthread_mutex_lock(&s->lock);
	err = salt_id(s, vm->sh.salt, &vm->sh.salt_id);
	if (err) {
		pthread_mutex_unlock(&s->lock);
		goto fail_buf;
	}
	want = (s->guest_pages + vm->npages) / 8 * 9 + 64;
	err = want > s->table_cap ? table_grow(s, want) : 0;
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
	free(vm->sh.buf);
	return err;
}

void mv__share_vm_fini(struct mv_vm *vm)
{
	struct mv__share *s = &vm->host->share;
	uint64_t v, ref;

	pthread_mutex_lock(&s->lock);
	for (uint64_t p = 0; p < vm->npages; p++) {
		v = pmap_peek(&vm->pmap[p]);
		if (pmap_state(v) == MV_PAGE_SHARED)
			frame_put(vm->host, frame_of(v));
	}
	for (uint64_t i = 0; i < s->table_cap;) {
		ref = s->table[i].ref;
		if ((ref & SLOT_HINT) &&
		    ((ref & ~SLOT_HINT) >> HINT_PPN_BITS) == vm->id)
			table_delete(s, i); /* slot i now holds a later one */
		else
			i++;
	}
	if (vm->sh.image >= 0)
		s->images[vm->sh.image].users--;
	s->guest_pages -= vm->npages;
	pthread_mutex_unlock(&s->lock);
	free(vm->sh.buf);
}

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
	struct mv__share *s = &vm->host->share;
	double saved = 0;
	uint64_t v;

	pthread_mutex_lock(&s->lock);
	for (uint64_t p = 0; p < vm->npages; p++) {
		v = pmap_peek(&vm->pmap[p]);
		if (pmap_state(v) == MV_PAGE_ZERO)
			saved += 1;
		else if (pmap_state(v) == MV_PAGE_SHARED)
			saved += 1 - 1.0 / s->frames[frame_of(v)].refs;
	}
	pthread_mutex_unlock(&s->lock);
	return (uint64_t)(saved + 0.5);
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

// SPDX-License-Identifier: MIT
/*
 * share_cow.c - the page side of transparent page sharing: a write to a
 * shared page (copy-on-write), the fill of a page left empty, a shared page
 * given up to the balloon, the first touch of VMs restored from one RAM
 * image; and the kernel calls on guest pages and pool frames that the
 * merge pipeline (share_merge.c) uses too: mapping frames, a page's own
 * copy, pool reads, writes and punches, a frame's last reference.
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
 * is checked as sharing goes (sharing stops with a message near it).  At
 * the limit the copy is made in place (page_copy_in_place): the
 * protection is lifted without a wake and MADV_POPULATE_WRITE has the
 * kernel copy the frame into a private page inside the pool mapping; such
 * a copy is pinned (PMAP_FROM_COW_IN_PLACE), since emptying it would show
 * whatever its old frame holds later.
 *
 * VMs restored from the same RAM image share from the first touch: each
 * image gets a range of pool frames in page order, the first fault on an
 * image page fills that frame from the image, and every VM restored from
 * the image maps it instead of copying, whole fault-around runs per mmap.
 *
 * Mappings are counted as they are made (maps_now, under share.lock),
 * never by reading /proc/self/maps where share.lock is held: that file has
 * a line per mapping, tens of thousands near the limit (~40 ms to read),
 * and reading it under the lock once stalled every fault on a shared page.
 * Each call that can add mappings counts its worst case first
 * (MV_SHARE_MAPS_PER_CHANGE); merges, unmaps and calls that then fail are
 * not seen, so the count only errs high, and the scanner thread reads the
 * real count every few seconds outside the lock (share_scan.c).
 *
 * Every kernel call that should not fail (registering a mapping just made,
 * reading the pool back) is retried a bounded number of times, then the
 * page takes a safe way out, counted and said (mv__share_retry).
 *
 * Short critical sections: the calls here hold the page's lock, which is
 * what keeps the guest page still, and a reference to its frame, which
 * keeps the frame's content; share.lock is taken only to count mappings
 * and to change the frame's metadata.  No system call is made under it
 * but three, which cannot move out: the punch of an image frame freed
 * (image_map reaches an image frame by its index, and refills it once its
 * refs reach 0: a punch after that would empty the new content), the
 * first write of an image frame (until its refs count the mapping VM,
 * another VM would find it unfilled and fill it too), and, rarely, the
 * read of a frame whose last reference went unforeseen (another sharer
 * left between the two looks of mv__share_frame_put: the frame's hash,
 * needed to find its slot, is otherwise read before, without the lock,
 * while the page still maps the frame and its content cannot change).
 *
 * Invariants: a page is SHARED iff its guest address maps pool frame
 * pmap_payload(entry) through a write-protected private mapping (or is
 * empty, MV_SHARE_EMPTY, holding its frame); a frame's refs is the number
 * of SHARED entries naming it whenever their locks are free; a frame with
 * refs > 0 is present in the pool and never written again.  Pool frames
 * are counted in the host's consumed frames, not in any VM's.
 *
 * Lock ordering: pmap entry (held by the caller) -> share.lock ->
 * host->frames_lock, host->msg_lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"
#include "share_int.h"
#include "uffd.h"

/*
 * Guest pages are read where they are.  Before a page is write-protected
 * what is read is only a hint (zero check, hash) and may be torn by a
 * guest write; what decides is a comparison made while the page is
 * write-protected, so that nothing can change it.  ThreadSanitizer cannot
 * see the protection (nor the guest thread's fault waiting on it), so these
 * loads are hidden from it; XXH3 runs in libxxhash, which it does not see.
 */
__attribute__((no_sanitize("thread"), noinline)) bool
mv__share_page_is_zero(const void *page)
{
	const uint64_t *p = page;
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

void mv__share_wp_lock(struct mv_vm *vm)
{
	pthread_mutex_lock(&vm->sh.wp_lock);
}

void mv__share_wp_unlock(struct mv_vm *vm)
{
	pthread_mutex_unlock(&vm->sh.wp_lock);
}

/* ---- mapping count ---- */

/*
 * MV_SHARE_MAPS_SLACK stay for everything else in the process.  Reads no
 * file.  The first refusal is said once, with the sysctl to set.
 */
bool mv__share_maps_room(struct mv_host *h, unsigned want)
{
	struct mv__share *s = &h->share;

	if (!s->maps_full &&
	    s->maps_now + (long)want + MV_SHARE_MAPS_SLACK <= s->maps_max)
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

bool mv__share_maps_take(struct mv_host *h, unsigned want)
{
	struct mv__share *s = &h->share;
	bool room;

	pthread_mutex_lock(&s->lock);
	room = mv__share_maps_room(h, want);
	if (room)
		s->maps_now += want;
	pthread_mutex_unlock(&s->lock);
	return room;
}

/*
 * Bounded retries: a call is tried RETRY_MAX more times, 1, 2, 4 ... 64 ms
 * apart (under half a second in all); then the caller takes its safe way
 * out, and the failure is counted and said.
 */
#define RETRY_MAX 12

bool mv__share_retry(struct mv_vm *vm, const char *what, int err,
		     unsigned *tries)
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
static int pages_register(struct mv_vm *vm, void *addr, size_t len)
{
	int err = mv__inject_check(MV_INJ_SHARE_REGISTER);

	return err ? -err : mv__uffd_register(vm->uffd, addr, len, true);
}

/* ---- pool frames ---- */

int mv__share_pool_read(struct mv__share *s, uint64_t f, void *page)
{
	ssize_t n = mv__pread(s->pool_fd, page, MV_PAGE_SIZE,
			      (off_t)(f << MV_PAGE_SHIFT));

	if (n == MV_PAGE_SIZE)
		return 0;
	return n < 0 ? -errno : -EIO;
}

int mv__share_pool_write(struct mv__share *s, uint64_t f, const void *page)
{
	ssize_t n = mv__pwrite(s->pool_fd, page, MV_PAGE_SIZE,
			       (off_t)(f << MV_PAGE_SHIFT));

	if (n == MV_PAGE_SIZE)
		return 0;
	return n < 0 ? -errno : -EIO;
}

/*
 * Gives frame f's memory back to the kernel.  Should that fail, the frame
 * keeps its memory until it is written again (a reused frame is always
 * written whole first), which is only counted: no content depends on it.
 */
void mv__share_frame_punch(struct mv__share *s, uint64_t f)
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

void mv__share_frame_put(struct mv_vm *vm, uint64_t f)
{
	struct mv_host *h = vm->host;
	struct mv__share *s = &h->share;
	uint8_t page[MV_PAGE_SIZE];
	bool last, hashed = false, image;
	uint64_t salt, hash = 0;

	pthread_mutex_lock(&s->lock);
	last = s->frames[f].refs == 1;
	salt = s->salts[s->frames[f].salt];
	pthread_mutex_unlock(&s->lock);
	/* the frame's slot is found by its hash; this page still maps the
	 * frame, so its content cannot change while it is read unlocked */
	if (last && !mv__share_pool_read(s, f, page)) {
		hash = mv__share_hash(page, salt);
		hashed = true;
	}
	pthread_mutex_lock(&s->lock);
	if (!mv__share_frame_drop(s, f)) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	/* another sharer went between the two looks (rare): read it here */
	if (!hashed && !mv__share_pool_read(s, f, page)) {
		hash = mv__share_hash(page, salt);
		hashed = true;
	}
	if (hashed)
		mv__share_table_unlink_frame(s, hash, f);
	image = s->frames[f].image;
	if (image)
		mv__share_frame_punch(s, f); /* under the lock: see the top */
	pthread_mutex_unlock(&s->lock);
	if (!image) {
		/* refs 0, no slot, not on the free list: nobody reaches it */
		mv__share_frame_punch(s, f);
		pthread_mutex_lock(&s->lock);
		mv__share_frame_recycle(s, f);
		pthread_mutex_unlock(&s->lock);
	}
	mv__frames_release(h, 1);
}

/* ---- a page's own copy ---- */

/*
 * Gives the locked SHARED (or just mapped) page at ppn its own anonymous
 * page with the bytes the guest sees now.  The guest address is never
 * without a present page: mremap() replaces the shared mapping with one
 * whose page is already there.  0; 1 when the new page could not be
 * registered with userfaultfd (it is the guest's, present, but must never
 * be emptied: the caller pins it); or -errno with nothing changed.
 */
static int page_unshare(struct mv_vm *vm, uint64_t ppn)
{
	uint8_t *g = mv__share_page(vm, ppn);
	unsigned tries = 0;
	void *t;
	int err;

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
	/* the page is present, so until this succeeds the guest runs on */
	while ((err = pages_register(vm, g, MV_PAGE_SIZE)))
		if (!mv__share_retry(vm, "registering an unshared page", err,
				     &tries))
			return 1;
	return 0;
}

/*
 * Gives the locked page at ppn, mapped to a pool frame, the guest's own
 * copy inside that mapping, with no new mapping: the protection is lifted
 * without waking anyone and MADV_POPULATE_WRITE has the kernel copy the
 * frame into a private page, as for any private mapping (a page the guest
 * already wrote keeps its bytes).  The pool frame is untouched.  The copy
 * lives in a file mapping, where neither UFFDIO_MOVE nor an emptied page
 * would work, so it must stay resident: the caller marks it
 * PMAP_FROM_COW_IN_PLACE, which reclaim, sampling, the balloon and the
 * scanner pass by.  0, or -errno with the page still mapping its frame
 * (write-protected again if possible).
 */
static int page_copy_in_place(struct mv_vm *vm, uint64_t ppn)
{
	uint8_t *g = mv__share_page(vm, ppn);
	int err;

	/* no span protection may land between the lift and the populate */
	mv__share_wp_lock(vm);
	err = mv__uffd_wp(vm->uffd, g, MV_PAGE_SIZE,
			  UFFDIO_WRITEPROTECT_MODE_DONTWAKE);
	if (err)
		goto out;
	err = -mv__inject_check(MV_INJ_SHARE_POPULATE);
	if (!err && madvise(g, MV_PAGE_SIZE, MADV_POPULATE_WRITE) < 0)
		err = -errno;
	if (err)
		mv__uffd_wp(vm->uffd, g, MV_PAGE_SIZE,
			    UFFDIO_WRITEPROTECT_MODE_WP);
out:
	mv__share_wp_unlock(vm);
	return err;
}

int mv__share_own_copy(struct mv_vm *vm, uint64_t ppn, bool maps_counted,
		       enum pmap_origin *origin)
{
	struct mv__share *s = &vm->host->share;
	int err = -ENOMEM;

	*origin = PMAP_FROM_COW;
	if (maps_counted)
		err = page_unshare(vm, ppn);
	if (err == 1)
		*origin = PMAP_FROM_COW_IN_PLACE;
	if (err >= 0)
		return 0;
	err = page_copy_in_place(vm, ppn);
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
 * Should registering or protecting the new mapping keep failing, the pages
 * stay mapped all the same: the mapping is private, so a guest write makes
 * the guest its own copy (found by the merge pipeline's pagemap read, or
 * kept unnoticed in place) and never reaches the frame.
 */
int mv__share_map_frames(struct mv_vm *vm, uint64_t ppn, uint64_t n, uint64_t f)
{
	struct mv__share *s = &vm->host->share;
	uint8_t *g = mv__share_page(vm, ppn);
	size_t len = n << MV_PAGE_SHIFT;
	unsigned tries = 0;
	int err;

	if (mv__map_fixed(g, len, s->pool_fd, f << MV_PAGE_SHIFT))
		return -errno;
	while ((err = pages_register(vm, g, len)))
		if (!mv__share_retry(vm, "registering a shared page", err,
				     &tries))
			return 0;
	tries = 0;
	while ((err = mv__uffd_wp(vm->uffd, g, len,
				  UFFDIO_WRITEPROTECT_MODE_WP)))
		if (!mv__share_retry(vm, "write-protecting a shared page", err,
				     &tries))
			return 0;
	return 0;
}

/* ---- copy-on-write, fill, give-up ---- */

/*
 * A write to a SHARED page.  The copy gets its own mapping where one can
 * be made; at vm.max_map_count it is made in place, so the write always
 * goes on: nothing here waits for a mapping.  Should both fail, nothing
 * changes and the writer is woken: it faults again and is served then
 * (each attempt bounded, each failure counted).  The frame's reference is
 * dropped only once the copy is made.
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
	if (pmap_payload(v) & MV_SHARE_EMPTY) {
		err = mv__share_fill(vm, ppn, v);
		if (!err)
			return true;
		pmap_unlock(vm, ppn, v);
		if (err == -EAGAIN)
			mv__frames_wait(h, vm);
		return err != -EAGAIN;
	}
	if (!mv__frames_reserve(h, 1)) {
		pmap_unlock(vm, ppn, v);
		mv__frames_wait(h, vm);
		return false;
	}
	err = mv__share_own_copy(
		vm, ppn, mv__share_maps_take(h, MV_SHARE_MAPS_PER_CHANGE),
		&origin);
	if (err) {
		mv__frames_release(h, 1);
		pmap_unlock(vm, ppn, v);
		mv__host_set_msg(
			h,
			"VM %s: cannot break sharing of page %llu on write: %s; the writer will fault again",
			vm->name, (unsigned long long)ppn, strerror(-err));
		return true;
	}
	mv__share_frame_put(vm, mv__share_frame_of(v));
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
	uint8_t *g = mv__share_page(vm, ppn);
	volatile uint8_t *t;
	unsigned tries = 0;
	int err;

	pmap_assert_locked(&vm->pmap[ppn]);
	if (!mv__share_maps_take(h, MV_SHARE_MAPS_PER_CHANGE))
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
	while ((err = pages_register(vm, g, MV_PAGE_SIZE)))
		if (!mv__share_retry(vm, "registering a page given up", err,
				     &tries))
			break;
	if (!err && (mv__inject_check(MV_INJ_SHARE_MADVISE) ||
		     madvise(g, MV_PAGE_SIZE, MADV_DONTNEED) < 0))
		atomic_fetch_add_explicit(&s->errors, 1, memory_order_relaxed);
	mv__share_frame_put(vm, mv__share_frame_of(v));
	return 0;
}

int mv__share_fill(struct mv_vm *vm, uint64_t ppn, uint64_t v)
{
	struct mv_host *h = vm->host;
	uint8_t buf[MV_PAGE_SIZE] __attribute__((aligned(MV_PAGE_SIZE)));
	struct uffdio_copy cp = { .dst = (uintptr_t)mv__share_page(vm, ppn),
				  .src = (uintptr_t)buf,
				  .len = MV_PAGE_SIZE };
	int err;

	pmap_assert_locked(&vm->pmap[ppn]);
	/* a page mapping its frame faults only on a stale event: nothing
	 * to do (a copy made now would land inside the pool mapping) */
	if (!(pmap_payload(v) & MV_SHARE_EMPTY))
		return -EEXIST;
	if (!mv__frames_reserve(h, 1))
		return -EAGAIN;
	/* the page holds its frame's reference: the frame cannot change */
	err = mv__share_pool_read(&h->share, mv__share_frame_of(v), buf);
	if (!err && mv__uffd_copy(vm->uffd, &cp))
		err = -errno;
	if (err) {
		mv__frames_release(h, 1);
		return err; /* -EEXIST: it is mapped after all */
	}
	mv__share_frame_put(vm, mv__share_frame_of(v));
	atomic_fetch_add_explicit(&vm->consumed_pages, 1, memory_order_relaxed);
	/* a frame the guest's touch took: a fill (demand counts it) */
	atomic_fetch_add_explicit(&vm->c.fault_fill_pages, 1,
				  memory_order_relaxed);
	pmap_unlock(vm, ppn, pmap_make(MV_PAGE_PRIVATE, v, PMAP_FROM_COW));
	return 0;
}

/* ---- VMs restored from one RAM image ---- */

/*
 * Makes frame f (of the VM's image, page content in page) usable by the
 * VM: fills it on first use (share.lock held: see the top), and takes one
 * reference for the VM.  false if it cannot be shared with this VM.
 */
static bool image_frame_take(struct mv_host *h, struct mv_vm *vm, uint64_t f,
			     const uint8_t *page)
{
	struct mv__share *s = &h->share;
	uint64_t hash;

	if (s->frames[f].refs) {
		if (s->frames[f].salt != vm->sh.salt_id)
			return false;
		/* its owner stays: this VM may yet fail to map it */
		mv__share_frame_take(s, f, s->frames[f].owner, 1);
		return true;
	}
	if (!mv__frames_reserve(h, 1))
		return false;
	if (mv__share_pool_write(s, f, page)) {
		mv__frames_release(h, 1);
		return false;
	}
	s->frames[f].salt = vm->sh.salt_id & 0xffffff;
	mv__share_frame_take(s, f, &vm->sh, 1);
	hash = mv__share_hash(page, vm->sh.salt);
	if (mv__share_table_find(s, hash) == MV_SHARE_NO_SLOT)
		mv__share_table_insert(s, hash, MV_SHARE_SLOT_FRAME | f);
	return true;
}

/* Whether frame[i] and frame[j] are in the same kind of run. */
static bool image_same_run(const uint64_t *frame, uint64_t i, uint64_t j)
{
	return (frame[i] == MV_NO_FRAME) == (frame[j] == MV_NO_FRAME);
}

unsigned mv__share_image_map(struct mv_vm *vm, uint64_t lo, uint64_t n,
			     const uint8_t *buf, uint64_t *frame)
{
	struct mv_host *h = vm->host;
	struct mv__share *s = &h->share;
	const struct mv__share_image *img;
	unsigned done = 0, runs = 0;
	uint64_t i, j, k;
	bool room;

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
	/* each frame taken holds a reference for its page from here: it
	 * stays filled while the runs are mapped without the lock */
	for (i = 0; i < n && lo + i < img->pages; i++)
		if (!mv__share_page_is_zero(buf + (i << MV_PAGE_SHIFT)) &&
		    image_frame_take(h, vm, img->base + lo + i,
				     buf + (i << MV_PAGE_SHIFT)))
			frame[i] = img->base + lo + i;
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && image_same_run(frame, i, j); j++)
			;
		runs += frame[i] != MV_NO_FRAME;
	}
	room = runs && mv__share_maps_room(h, runs * MV_SHARE_MAPS_PER_CHANGE);
	if (room)
		s->maps_now += runs * MV_SHARE_MAPS_PER_CHANGE;
	pthread_mutex_unlock(&s->lock);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && image_same_run(frame, i, j); j++)
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
		if (room &&
		    !mv__share_map_frames(vm, lo + i, j - i, frame[i])) {
			done += (unsigned)(j - i);
			continue;
		}
		for (k = i; k < j; k++) {
			mv__share_frame_put(vm, frame[k]);
			frame[k] = MV_NO_FRAME;
		}
	}
	return done;
}

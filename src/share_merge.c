// SPDX-License-Identifier: MIT
/*
 * share_merge.c - the window merge pipeline of transparent page sharing
 * (Waldspurger, OSDI 2002, section 4): the PRIVATE pages of one window of a
 * VM that equal pages elsewhere (or zeros) become one frame, in six steps
 * each done for the whole window at once.
 *
 * Design.  The scanner (share_scan.c) hands one window of MV_SHARE_WINDOW
 * pages at a time.  Each PRIVATE page is hashed (XXH3-64, seeded with the
 * VM's salt) and looked up in the host table (share_table.c):
 *   - all-zero: the page is dropped and becomes ZERO, with no frame;
 *   - no entry: a *hint* naming the page is stored; the page stays
 *     writable and untouched;
 *   - a hint: the hinted page is rehashed in place; if it still matches,
 *     both pages are write-protected where they are (UFFDIO_WRITEPROTECT,
 *     so neither can change while it is compared; guest memory is
 *     registered in MISSING and WP modes for this), compared bit by bit,
 *     copied once into a new frame of the pool memfd, emptied, and both
 *     guest addresses are mapped to that frame; the two private frames go
 *     back to the host, the pool frame costs one;
 *   - a shared frame: the page is write-protected, compared bit by bit
 *     with the frame, emptied and mapped to it; its frame goes back to the
 *     host;
 *   - a hint an earlier page of the same window has already taken (a
 *     third copy, a peer): compared with that page and mapped to its
 *     pair's new frame, in the same pass.
 * The steps: classify (lock, hash, look up), window_protect, window_compare
 * (and write the new frames), window_empty, window_map, window_publish.
 * TLB flushes are what this costs (each one a hypervisor exit when the
 * host is itself a guest), so a window is worked in as few calls as
 * possible: its candidates are write-protected with one call per side
 * where one flush of the whole TLB is cheaper than one per page, the pages
 * between them included, emptied with one process_madvise() for both sides
 * and all VMs, and mapped with one mmap per run of consecutive frames
 * (pairs found in a row get frames in a row).  Equal hashes with different
 * bytes (a collision) never merge anything: the bit-by-bit comparison
 * decides, always on content that cannot change.
 *
 * The one window of a mapping: between the mmap() of a pool frame and its
 * write-protection a guest store gets a kernel COW copy without a fault;
 * after protecting, /proc/self/pagemap is read and a page that turned
 * anonymous gets its own copy of its (newer) bytes at once.  A pagemap that
 * cannot be read counts every page as written: never "nothing written".
 *
 * Large pages (lpage.c): a page of a large region is hashed and its hint
 * stored, as ESX hashes the small pages of its large pages, but it is
 * never a candidate, on either side: it is not write-protected, emptied or
 * mapped over, so sharing never splits a large page in the high state;
 * once the scheduler breaks a region under pressure its pages are
 * candidates, and below the high state a small page whose match is a hint
 * inside another large region breaks that region (mv__lpage_break_locked,
 * one MADV_COLD under share.lock: it cannot fault) and merges with it.  A
 * protection call never spans two 2 MiB regions of a VM with large pages:
 * the region of a locked candidate cannot be collapsed, so the pages
 * between candidates of one region are never part of a large page.
 *
 * Invariants: a PRIVATE page may be write-protected without anyone holding
 * its lock (a neighbour of candidates, protected in the same call, or a
 * candidate let go): its first write faults and the fault service lifts
 * the protection (fault.c).  The scanner never wakes a writer; that
 * fault's service does, so no fault outlives the page's state.  A copy kept
 * in place (PMAP_FROM_COW_IN_PLACE) is never a candidate.  Nothing is lost
 * on any failure: a candidate that fails a step is let go PRIVATE with its
 * bytes where they were; a page emptied whose frame cannot be mapped is
 * put back from the frame, or left empty SHARED holding it (share_cow.c
 * fills it on touch).
 *
 * share.lock is held only where the window reads or changes the host's
 * structures: classify (the table, the frames' metadata), the allocation
 * of new frames, and publish; no system call is made under it.  Between
 * them the window keeps what it refers to by other means: the candidates'
 * pages by their locks (taken by trylock in classify), the frame of each
 * C_FRAME candidate by a reference of its own (taken in classify, given
 * to the page in publish or dropped after it), its new frames by being
 * the only one to know them (off the free list, in no slot until
 * publish), and the slots it matched by their hashes, which find them
 * again wherever deletions elsewhere have shifted them (only the scanner
 * changes hints, one window at a time under host->vms_lock).  So a frame's
 * refs also counts, for the length of a window, the scanner's reference.
 *
 * Lock ordering: host->vms_lock (held by the caller: hinted VMs stay
 * alive) -> pmap entries (the window's and hinted ones, by trylock only,
 * under share.lock in classify; held after it is dropped) -> share.lock
 * (taken again with them held, as the fault path does) ->
 * host->frames_lock (after share.lock is released).
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "inject.h"
#include "share_int.h"
#include "uffd.h"

__attribute__((no_sanitize("thread"), noinline)) static bool
pages_same_in_place(const void *a_, const void *b_)
{
	const uint64_t *a = a_, *b = b_;
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

/*
 * Which of n pages from addr the guest got a private copy of behind our
 * back: bit i of the result for page i (n <= 64), from one pagemap read.
 * When pagemap cannot be read every page counts as written: the caller
 * then gives each its own copy of what the guest sees, which is always
 * right (and never shares a page it cannot check).
 */
static uint64_t pages_written(struct mv__share *s, const void *addr, uint64_t n)
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

static struct mv_vm *vm_by_id(struct mv_host *h, uint32_t id)
{
	for (struct mv_vm *vm = h->vms; vm; vm = vm->next)
		if (vm->id == id)
			return vm;
	return NULL;
}

/*
 * A candidate page whose sharing did not happen: writable again, and let
 * go, PRIVATE.  A guest write that faulted on the protection is not woken
 * here: the fault service wakes it when it serves that fault (fault.c), so
 * the fault cannot be served later, after the page has moved on to
 * another state.  Should lifting the protection fail, the fault service
 * lifts it.
 */
static void candidate_page_release(struct mv_vm *vm, uint64_t ppn, uint64_t v)
{
	mv__uffd_wp(vm->uffd, mv__share_page(vm, ppn), MV_PAGE_SIZE,
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
	uint64_t hash; /* the page's hash: finds its slot again */
	uint64_t slot; /* table slot matched (C_FRAME, C_HINT), while the
			* window holds share.lock in classify */
	uint64_t frame; /* the frame to map, MV_NO_FRAME until known */
	struct mv_vm *vm2; /* C_HINT: the hinted page's VM */
	uint64_t ppn2, v2; /* C_HINT: the hinted page, its entry */
	unsigned peer; /* C_PEER: the C_HINT candidate whose frame it maps */
	bool shared1, shared2; /* mapped to the frame: this page, hinted */
	uint64_t empty1, empty2; /* MV_SHARE_EMPTY: left empty, not mapped */
	bool owned; /* C_HINT: a page's budget has become the new frame's */
	bool pinned; /* C_FRAME: the window holds a reference to frame */
	bool rehint; /* C_HINT given up: its slot names this page again */
};

/* One window of one VM. */
struct window {
	struct mv_vm *vm;
	uint64_t lo, n; /* pages [lo, lo + n) */
	struct cand c[MV_SHARE_WINDOW];
	uint64_t released; /* frames the host gets back */
	uint8_t *buf; /* a page for the scanner's copies */
	uint64_t discard[MV_SHARE_WINDOW]; /* new frames that stay unshared */
	unsigned ndiscard;
};

/* The window's page i and its hinted page. */
static uint8_t *window_page(struct window *w, uint64_t i)
{
	return mv__share_page(w->vm, w->lo + i);
}

static uint8_t *window_hinted_page(struct window *w, uint64_t i)
{
	return mv__share_page(w->c[i].vm2, w->c[i].ppn2);
}

/* Slot of candidate i names the window's page i again (in classify,
 * share.lock held). */
static void window_hint_again(struct window *w, uint64_t i)
{
	mv__share_table_set_hint(&w->vm->host->share, w->c[i].slot,
				 mv__share_hint(w->vm->id, w->lo + i));
}

/* The same after classify: done in window_publish, under share.lock,
 * where the slot is found again by its hash. */
static void window_rehint(struct window *w, uint64_t i)
{
	w->c[i].rehint = true;
}

/* Gives up candidate i: its page, and its hinted page, are let go. */
static void window_drop_candidate(struct window *w, uint64_t i)
{
	struct cand *c = &w->c[i];

	if (c->kind == C_HINT)
		candidate_page_release(c->vm2, c->ppn2, c->v2);
	candidate_page_release(w->vm, w->lo + i, c->v);
	c->kind = C_SKIP;
}

/*
 * Checks the hinted page of slot for the window's page i (locked, hash
 * given): still there, PRIVATE, same hash, same salt.  Locks it and makes
 * i a C_HINT candidate, or updates the hint and leaves i alone.
 */
static bool window_take_hint(struct window *w, uint64_t i, uint64_t hash,
			     uint64_t slot)
{
	struct mv_vm *vm = w->vm, *vm2;
	struct mv__share *s = &vm->host->share;
	struct cand *c = &w->c[i];
	uint64_t ref = s->table[slot].ref;

	vm2 = vm_by_id(vm->host, mv__share_hint_vm(ref));
	c->ppn2 = mv__share_hint_ppn(ref);
	if (!vm2 || c->ppn2 >= vm2->npages) {
		window_hint_again(w, i);
		return false;
	}
	if (vm2->sh.salt != vm->sh.salt ||
	    (vm2 == vm && c->ppn2 == w->lo + i) ||
	    !pmap_trylock(&vm2->pmap[c->ppn2], &c->v2))
		return false;
	/* a hinted page inside a large page: in the high state it stays a
	 * hint; below it, a small page matching it is worth more than the
	 * large page, and the region is broken now (ESX breaks large pages
	 * to share their small ones once memory is no longer plentiful) */
	if (mv__lpage_is_large(vm2, c->ppn2)) {
		bool high = atomic_load_explicit(&vm->host->state,
						 memory_order_relaxed) ==
			    MV_STATE_HIGH;

		if (!high)
			mv__lpage_break_locked(vm2, c->ppn2);
		if (high || mv__lpage_is_large(vm2, c->ppn2)) {
			pmap_unlock(vm2, c->ppn2, c->v2);
			return false;
		}
	}
	if (pmap_state(c->v2) != MV_PAGE_PRIVATE ||
	    mv__share_hash(mv__share_page(vm2, c->ppn2), vm->sh.salt) != hash) {
		window_hint_again(w, i); /* stale */
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
static bool window_find_peer(struct window *w, uint64_t i, uint64_t slot)
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

/*
 * A SHARED page seen by the scanner: its VM pays for its frame from now on
 * if the frame's owner pays for more frames than it has shared pages (it
 * then certainly pays for frames it no longer maps; share_table.c).
 */
static void window_adopt(struct window *w, uint64_t v)
{
	struct mv__share *s = &w->vm->host->share;
	struct mv__vm_share *o = s->frames[mv__share_frame_of(v)].owner;
	struct mv_vm *ov;

	if (o == &w->vm->sh)
		return;
	if (!o) { /* its owner was destroyed with no heir (share_scan.c) */
		mv__share_frame_adopt(s, mv__share_frame_of(v), &w->vm->sh);
		return;
	}
	ov = (struct mv_vm *)((char *)o - offsetof(struct mv_vm, sh));
	if (atomic_load_explicit(&o->frames_owned, memory_order_relaxed) >
	    atomic_load_explicit(&ov->census.pages[MV_PAGE_SHARED],
				 memory_order_relaxed))
		mv__share_frame_adopt(s, mv__share_frame_of(v), &w->vm->sh);
}

/*
 * A page of a large region (locked, under share.lock): its hash goes into
 * the table as a hint when the table has nothing under it, so that an
 * equal page scanned later finds it; nothing else happens to it.
 */
/*
 * A page of a large region (locked) whose hash some other page or a
 * shared frame already has: below the high state the region is broken
 * (mv__lpage_break_locked, one MADV_COLD: it cannot fault) so that the page
 * can be shared.  True if the page is small now.
 */
static bool window_break_large_match(struct window *w, uint64_t ppn)
{
	struct mv_vm *vm = w->vm;
	struct mv__share *s = &vm->host->share;
	const uint8_t *page = mv__share_page(vm, ppn);
	uint64_t slot;

	if (atomic_load_explicit(&vm->host->state, memory_order_relaxed) ==
		    MV_STATE_HIGH ||
	    mv__share_page_is_zero(page))
		return false;
	slot = mv__share_table_find(s, mv__share_hash(page, vm->sh.salt));
	if (slot == MV_SHARE_NO_SLOT ||
	    s->table[slot].ref == mv__share_hint(vm->id, ppn))
		return false;
	mv__lpage_break_locked(vm, ppn);
	return !mv__lpage_is_large(vm, ppn);
}

static void window_hint_large(struct window *w, uint64_t ppn)
{
	struct mv_vm *vm = w->vm;
	struct mv__share *s = &vm->host->share;
	const uint8_t *page = mv__share_page(vm, ppn);
	uint64_t hash;

	if (mv__share_page_is_zero(page))
		return;
	hash = mv__share_hash(page, vm->sh.salt);
	if (mv__share_table_find(s, hash) == MV_SHARE_NO_SLOT)
		mv__share_table_insert(s, hash, mv__share_hint(vm->id, ppn));
}

/* Step 1: lock, hash and look up every page of the window. */
static void window_classify(struct window *w)
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
		if (pmap_state(c->v) == MV_PAGE_SHARED)
			window_adopt(w, c->v);
		/* a copy kept in place lives in a pool mapping, where an
		 * emptied page would show that frame's bytes: never touched */
		if (pmap_state(c->v) != MV_PAGE_PRIVATE || pmap_pinned(c->v)) {
			pmap_unlock(vm, ppn, c->v);
			continue;
		}
		atomic_fetch_add_explicit(&vm->sh.scanned, 1,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&s->scanned, 1, memory_order_relaxed);
		/* inside a large page: a hint only, never a candidate */
		if (mv__lpage_is_large(vm, ppn) &&
		    !window_break_large_match(w, ppn)) {
			window_hint_large(w, ppn);
			pmap_unlock(vm, ppn, c->v);
			continue;
		}
		if (mv__share_page_is_zero(mv__share_page(vm, ppn))) {
			c->kind = C_ZERO;
			continue;
		}
		/* a page that would need a mapping: only with room for
		 * one, and with pagemap to see the guest's racing writes */
		if (!mv__share_maps_room(vm->host, MV_SHARE_MAPS_PER_CHANGE) ||
		    s->pagemap_fd < 0) {
			pmap_unlock(vm, ppn, c->v);
			continue;
		}
		hash = mv__share_hash(mv__share_page(vm, ppn), vm->sh.salt);
		slot = mv__share_table_find(s, hash);
		ref = slot == MV_SHARE_NO_SLOT ? 0 : s->table[slot].ref;
		c->slot = slot;
		c->hash = hash;
		if (!ref) {
			mv__share_table_insert(s, hash,
					       mv__share_hint(vm->id, ppn));
		} else if (ref & MV_SHARE_SLOT_FRAME) {
			c->frame = ref & ~MV_SHARE_SLOT_FRAME;
			/* a slot whose frame lost its last reference
			 * unread (share_cow.c) matches nothing */
			if (s->frames[c->frame].salt == vm->sh.salt_id &&
			    s->frames[c->frame].refs) {
				/* held, its owner unchanged, until publish:
				 * the frame stays while share.lock is
				 * dropped */
				mv__share_frame_take(s, c->frame,
						     s->frames[c->frame].owner,
						     1);
				c->pinned = true;
				c->kind = C_FRAME;
				continue;
			}
		} else if (window_find_peer(w, i, slot) ||
			   window_take_hint(w, i, hash, slot)) {
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
static void wp_pages_protect(struct window *w, struct wp_page *p, unsigned n)
{
	unsigned a, b, e;
	uint64_t span;
	int err;

	for (a = 0; a < n; a = b) {
		for (b = a + 1; b < n; b = e) {
			for (e = b + 1; e < n && p[e].vm == p[b].vm &&
					p[e].ppn == p[e - 1].ppn + 1;
			     e++)
				;
			span = p[e - 1].ppn - p[a].ppn + 1;
			if (p[b].vm != p[a].vm || span > WP_SPAN_MAX ||
			    (p[a].vm->lp.large &&
			     p[e - 1].ppn / MV_LPAGE_PAGES !=
				     p[a].ppn / MV_LPAGE_PAGES) ||
			    wp_cost(span) >
				    wp_cost(p[b - 1].ppn - p[a].ppn + 1) +
					    wp_cost(e - b))
				break;
		}
		span = p[b - 1].ppn - p[a].ppn + 1;
		/* not between another thread's lift and populate (share.h) */
		mv__share_wp_lock(p[a].vm);
		err = mv__uffd_wp(p[a].vm->uffd,
				  mv__share_page(p[a].vm, p[a].ppn),
				  span << MV_PAGE_SHIFT,
				  UFFDIO_WRITEPROTECT_MODE_WP);
		mv__share_wp_unlock(p[a].vm);
		if (!err)
			continue;
		for (unsigned k = a; k < b; k++)
			if (w->c[p[k].i].kind != C_SKIP)
				window_drop_candidate(w, p[k].i);
	}
}

/*
 * Step 2: write-protects the candidates where they are, so that nothing
 * can change what is compared: a guest write now faults and waits for the
 * page's lock.  Guest reads go on.  The window's own pages first, then
 * the hinted pages, sorted so that neighbours in their VMs go together.
 */
static void window_protect(struct window *w)
{
	struct wp_page p[MV_SHARE_WINDOW];
	unsigned n = 0;

	for (unsigned i = 0; i < w->n; i++)
		if (w->c[i].kind != C_SKIP)
			p[n++] = (struct wp_page){ w->vm, w->lo + i, i };
	wp_pages_protect(w, p, n);
	n = 0;
	for (unsigned i = 0; i < w->n; i++)
		if (w->c[i].kind == C_HINT)
			p[n++] = (struct wp_page){ w->c[i].vm2, w->c[i].ppn2,
						   i };
	qsort(p, n, sizeof(p[0]), wp_page_order);
	wp_pages_protect(w, p, n);
}

/*
 * Writes the new frames of the window's pairs from this VM's side, one
 * write per run of consecutive frames (their pages are neighbours).  A
 * pair whose write fails is let go, its frame with it.
 */
static void window_write_frames(struct window *w)
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
		got = mv__pwrite_guest(s->pool_fd, window_page(w, i),
				       (j - i) << MV_PAGE_SHIFT,
				       (off_t)(c[i].frame << MV_PAGE_SHIFT));
		if (got == (ssize_t)((j - i) << MV_PAGE_SHIFT))
			continue;
		for (uint64_t k = i; k < j; k++) {
			w->discard[w->ndiscard++] = c[k].frame;
			window_rehint(w, k);
			window_drop_candidate(w, k);
		}
	}
}

/*
 * Step 3: compares bit by bit what was write-protected; gives the pairs
 * that match new frames, consecutive where the pairs are, and writes them.
 */
static void window_compare(struct window *w, uint8_t *buf)
{
	struct mv__share *s = &w->vm->host->share;
	uint64_t salt = w->vm->sh.salt, f;
	const uint8_t *other;
	struct cand *c;
	bool same;

	for (uint64_t i = 0; i < w->n; i++) {
		c = &w->c[i];
		if (c->kind == C_ZERO)
			same = mv__share_page_is_zero(window_page(w, i));
		else if (c->kind == C_FRAME)
			same = !mv__share_pool_read(s, c->frame, buf) &&
			       pages_same_in_place(window_page(w, i), buf);
		else if (c->kind == C_HINT)
			same = pages_same_in_place(window_page(w, i),
						   window_hinted_page(w, i));
		else if (c->kind == C_PEER)
			same = w->c[c->peer].kind == C_HINT &&
			       pages_same_in_place(window_page(w, i),
						   window_page(w, c->peer));
		else
			continue;
		if (same)
			continue;
		/* a peer whose pair fell through was compared with nothing */
		if (c->kind == C_PEER && w->c[c->peer].kind != C_HINT)
			other = NULL;
		else
			other = c->kind == C_HINT ? window_hinted_page(w, i) :
				c->kind == C_PEER ? window_page(w, c->peer) :
						    buf;
		if (c->kind != C_ZERO && other &&
		    mv__share_hash(window_page(w, i), salt) ==
			    mv__share_hash(other, salt))
			atomic_fetch_add(&s->collisions, 1);
		if (c->kind == C_HINT)
			window_rehint(w, i);
		window_drop_candidate(w, i);
	}
	pthread_mutex_lock(&s->lock);
	for (uint64_t i = 0; i < w->n; i++) {
		c = &w->c[i];
		if (c->kind != C_HINT)
			continue;
		/* the frame after the previous pair's, so mappings merge */
		f = i && w->c[i - 1].kind == C_HINT &&
				    w->c[i - 1].frame != MV_NO_FRAME ?
			    mv__share_frame_alloc_after(s, w->c[i - 1].frame) :
			    mv__share_frame_alloc(s);
		if (f == MV_SHARE_NO_SLOT)
			continue; /* let go below, without the lock */
		s->frames[f] =
			(struct mv__share_frame){ .salt = w->vm->sh.salt_id &
							  0xffffff };
		c->frame = f;
	}
	pthread_mutex_unlock(&s->lock);
	for (uint64_t i = 0; i < w->n; i++) {
		if (w->c[i].kind == C_HINT && w->c[i].frame == MV_NO_FRAME) {
			window_rehint(w, i);
			window_drop_candidate(w, i);
		}
	}
	window_write_frames(w);
	for (uint64_t i = 0; i < w->n; i++) {
		c = &w->c[i];
		if (c->kind != C_PEER)
			continue;
		if (w->c[c->peer].kind == C_HINT)
			c->frame = w->c[c->peer].frame;
		else
			window_drop_candidate(w, i);
	}
}

/*
 * Puts back the content of an emptied page whose frame could not be mapped
 * (the mapping limit, no memory), copied from that frame, PRIVATE again.
 * false when that kept failing: the page is then left empty and SHARED,
 * holding its frame, and its next touch fills it (mv__share_fill).
 */
static bool page_refill_from_frame(struct mv_vm *vm, uint64_t ppn, uint64_t f,
				   uint8_t *buf)
{
	struct mv__share *s = &vm->host->share;
	struct uffdio_copy cp = { .dst = (uintptr_t)mv__share_page(vm, ppn),
				  .src = (uintptr_t)buf,
				  .len = MV_PAGE_SIZE };
	unsigned tries = 0;
	int err;

	while ((err = mv__share_pool_read(s, f, buf)))
		if (!mv__share_retry(vm, "reading a frame back", err, &tries))
			return false;
	tries = 0;
	while (mv__uffd_copy(vm->uffd, &cp) && errno != EEXIST) {
		if (!mv__share_retry(vm, "putting a page back", -errno, &tries))
			return false;
		cp.copy = 0;
	}
	return true;
}

/* The candidate's page, on one side, is shared from now on. */
static void candidate_mark_shared(struct cand *c, bool hinted)
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
static void window_map_run(struct window *w, uint64_t i, uint64_t j,
			   bool hinted)
{
	struct cand *c = w->c;
	struct mv_vm *vm = hinted ? c[i].vm2 : w->vm;
	uint64_t ppn = hinted ? c[i].ppn2 : w->lo + i;
	struct mv__share *s = &vm->host->share;
	enum pmap_origin origin;
	uint64_t written = 0, *v;
	int err = -ENOMEM;

	if (mv__share_maps_take(vm->host, MV_SHARE_MAPS_PER_CHANGE))
		err = mv__share_map_frames(vm, ppn, j - i, c[i].frame);
	if (err) {
		for (uint64_t k = i; k < j; k++) {
			if (page_refill_from_frame(vm, ppn + (k - i),
						   c[k].frame, w->buf))
				continue;
			atomic_fetch_add_explicit(&s->lazy_fills, 1,
						  memory_order_relaxed);
			candidate_mark_shared(&c[k], hinted);
			if (hinted)
				c[k].empty2 = MV_SHARE_EMPTY;
			else
				c[k].empty1 = MV_SHARE_EMPTY;
		}
		return;
	}
	for (uint64_t k = i; k < j; k++) {
		/* the pagemap is read 64 pages at a time */
		if ((k - i) % 64 == 0)
			written = pages_written(
				s, mv__share_page(vm, ppn + (k - i)),
				j - k < 64 ? j - k : 64);
		if (!(written >> ((k - i) % 64) & 1)) {
			candidate_mark_shared(&c[k], hinted);
			continue;
		}
		/* a page that cannot get its copy stays mapped: SHARED,
		 * with the guest's write in place, which the next write's
		 * fault copies out (mv__share_cow reads what the guest
		 * sees) */
		if (mv__share_own_copy(
			    vm, ppn + (k - i),
			    mv__share_maps_take(vm->host,
						MV_SHARE_MAPS_PER_CHANGE),
			    &origin)) {
			candidate_mark_shared(&c[k], hinted);
			continue;
		}
		v = hinted ? &c[k].v2 : &c[k].v;
		if (origin == PMAP_FROM_COW_IN_PLACE)
			*v = pmap_make(MV_PAGE_PRIVATE, *v, origin);
	}
}

static bool candidate_mappable(const struct cand *c)
{
	return c->kind == C_FRAME || c->kind == C_HINT || c->kind == C_PEER;
}

static bool candidates_run_on(const struct cand *a, const struct cand *b,
			      bool hinted)
{
	if (!candidate_mappable(a) || !candidate_mappable(b) ||
	    b->frame != a->frame + 1)
		return false;
	if (!hinted)
		return true;
	return a->kind == C_HINT && b->kind == C_HINT && b->vm2 == a->vm2 &&
	       b->ppn2 == a->ppn2 + 1;
}

/*
 * Step 4: empties the guest addresses of every page about to map a frame
 * and of the zero pages, in one process_madvise() on this process: one TLB
 * flush for the window, both sides and all VMs, where mapping a frame over
 * a present page flushed once a run.  Nothing can be lost: the pages have
 * been write-protected since they were compared, and each one's content
 * is in its frame, or is zeros.  A guest touching one meanwhile faults and
 * waits for the page's lock.
 */
static void window_empty(struct window *w)
{
	struct iovec iov[2 * MV_SHARE_WINDOW];
	struct cand *c = w->c;
	unsigned n = 0, done;
	uint64_t i, j;

	for (i = 0; i < w->n; i = j) {
		for (j = i + 1;
		     j < w->n && c[i].kind != C_SKIP && c[j].kind != C_SKIP;
		     j++)
			;
		if (c[i].kind != C_SKIP)
			iov[n++] = (struct iovec){ window_page(w, i),
						   (j - i) << MV_PAGE_SHIFT };
	}
	for (i = 0; i < w->n; i = j) {
		for (j = i + 1;
		     j < w->n && c[i].kind == C_HINT && c[j].kind == C_HINT &&
		     c[j].vm2 == c[i].vm2 && c[j].ppn2 == c[i].ppn2 + (j - i);
		     j++)
			;
		if (c[i].kind == C_HINT)
			iov[n++] = (struct iovec){ window_hinted_page(w, i),
						   (j - i) << MV_PAGE_SHIFT };
	}
	for (done = mv__dontneed_batch(iov, n); done < n; done++)
		madvise(iov[done].iov_base, iov[done].iov_len, MADV_DONTNEED);
}

/* Step 5: maps the frames, in runs of consecutive frames. */
static void window_map(struct window *w)
{
	struct cand *c = w->c;
	uint64_t i, j;

	for (i = 0; i < w->n; i = j) {
		for (j = i + 1;
		     j < w->n && candidates_run_on(&c[j - 1], &c[j], false);
		     j++)
			;
		if (candidate_mappable(&c[i]))
			window_map_run(w, i, j, false);
	}
	for (i = 0; i < w->n; i = j) {
		for (j = i + 1;
		     j < w->n && candidates_run_on(&c[j - 1], &c[j], true); j++)
			;
		if (c[i].kind == C_HINT)
			window_map_run(w, i, j, true);
	}
}

/*
 * The page's own frame is gone (replaced by a mapping of a shared frame,
 * or dropped as ZERO).  to_host: the frame goes back to the host, rather
 * than to the pool as a new shared frame.
 */
static void window_drop_private(struct window *w, struct mv_vm *vm,
				bool to_host)
{
	atomic_fetch_sub_explicit(&vm->consumed_pages, 1, memory_order_relaxed);
	w->released += to_host;
}

/* How many peers of the window's C_HINT candidate i map its frame. */
static uint64_t window_peers_mapped(const struct window *w, uint64_t i)
{
	uint64_t n = 0;

	for (uint64_t k = i + 1; k < w->n; k++)
		n += w->c[k].kind == C_PEER && w->c[k].peer == i &&
		     w->c[k].shared1;
	return n;
}

/* The slot of candidate i (found by its hash) names its new frame. */
static void window_slot_set_frame(struct window *w, uint64_t i)
{
	struct mv__share *s = &w->vm->host->share;
	uint64_t slot = mv__share_table_find(s, w->c[i].hash);

	if (slot != MV_SHARE_NO_SLOT &&
	    !(s->table[slot].ref & MV_SHARE_SLOT_FRAME))
		mv__share_table_set_frame(s, slot, w->c[i].frame);
}

/*
 * The slot of a candidate given up (found by its hash) names its page
 * again, as it named a hinted page the window has let go.  Only the
 * scanner changes hints, and only VMs the scanner keeps alive are hinted,
 * so a hint found by the hash is the candidate's.
 */
static void window_slots_rehint(struct window *w)
{
	struct mv__share *s = &w->vm->host->share;
	uint64_t slot;

	for (uint64_t i = 0; i < w->n; i++) {
		if (!w->c[i].rehint)
			continue;
		slot = mv__share_table_find(s, w->c[i].hash);
		if (slot != MV_SHARE_NO_SLOT &&
		    (s->table[slot].ref & MV_SHARE_SLOT_HINT))
			mv__share_table_set_hint(
				s, slot, mv__share_hint(w->vm->id, w->lo + i));
	}
}

/* Step 6: publishes every candidate's outcome and counts it (share.lock
 * held). */
static uint64_t window_publish(struct window *w)
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
			window_drop_private(w, vm, true);
			pmap_unlock(vm, w->lo + i,
				    pmap_make(MV_PAGE_ZERO, c->v, 0));
			merged++;
			continue;
		case C_FRAME:
			if (c->shared1) {
				/* the window's reference becomes the page's */
				window_drop_private(w, vm, true);
				mv__share_frame_adopt(s, c->frame, &vm->sh);
				c->pinned = false;
			}
			break;
		case C_PEER:
			if (c->shared1) {
				window_drop_private(w, vm, w->c[c->peer].owned);
				w->c[c->peer].owned = true;
				mv__share_frame_take(s, c->frame, &vm->sh, 1);
			}
			break;
		case C_HINT:
			/* the first sharer's frame becomes the pool frame */
			got = c->shared1 + c->shared2 +
			      window_peers_mapped(w, i);
			if (c->shared1)
				window_drop_private(w, vm, false);
			if (c->shared2)
				window_drop_private(w, c->vm2, c->shared1);
			c->owned = c->shared1 || c->shared2;
			if (!got) {
				w->discard[w->ndiscard++] = c->frame;
				c->rehint = true;
			} else {
				/* its peers, later in the window, add theirs */
				mv__share_frame_take(s, c->frame, &c->vm2->sh,
						     c->shared2);
				mv__share_frame_take(s, c->frame, &vm->sh,
						     c->shared1);
				window_slot_set_frame(w, i);
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
	window_slots_rehint(w);
	atomic_fetch_add_explicit(&vm->sh.merged, merged, memory_order_relaxed);
	return merged;
}

/*
 * After publishing, without share.lock: frames made for pairs that did
 * not share are punched and recycled, and the references the window held
 * on frames it did not map are dropped (the last one frees its frame).
 */
static void window_let_go(struct window *w)
{
	struct mv__share *s = &w->vm->host->share;

	for (unsigned k = 0; k < w->ndiscard; k++)
		mv__share_frame_punch(s, w->discard[k]);
	if (w->ndiscard) {
		pthread_mutex_lock(&s->lock);
		for (unsigned k = 0; k < w->ndiscard; k++)
			mv__share_frame_recycle(s, w->discard[k]);
		pthread_mutex_unlock(&s->lock);
	}
	for (uint64_t i = 0; i < w->n; i++)
		if (w->c[i].pinned)
			mv__share_frame_put(w->vm, w->c[i].frame);
}

/*
 * Every PRIVATE page of the window is hashed and looked up, and those that
 * match are merged together, each step for all of them at once (one
 * write-protection, one mapping per run), since per page system calls and
 * TLB flushes are what sharing costs.  Pages that are not shared in the
 * end (put back, or copied on a racing write) keep their frame and stay
 * PRIVATE.
 */
uint64_t mv__share_scan_window(struct mv_vm *vm, uint64_t win, uint8_t *buf)
{
	struct mv__share *s = &vm->host->share;
	struct window w = { .vm = vm, .lo = win * MV_SHARE_WINDOW, .buf = buf };
	uint64_t merged;

	w.n = vm->npages - w.lo < MV_SHARE_WINDOW ? vm->npages - w.lo :
						    MV_SHARE_WINDOW;
	pthread_mutex_lock(&s->lock);
	window_classify(&w);
	pthread_mutex_unlock(&s->lock);
	window_protect(&w);
	window_compare(&w, buf); /* takes share.lock to allocate frames */
	window_empty(&w);
	window_map(&w);
	pthread_mutex_lock(&s->lock);
	merged = window_publish(&w);
	pthread_mutex_unlock(&s->lock);
	window_let_go(&w);
	mv__frames_release(vm->host, w.released);
	return merged;
}

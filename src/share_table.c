// SPDX-License-Identifier: MIT
/*
 * share_table.c - the host-wide table of page sharing, the metadata of the
 * pool's frames and their free list: pure data structures, no system
 * call, no host, no VM, so that tests/test_share_table.c checks them alone.
 *
 * Table.  Every scanned PRIVATE page is looked up by its hash (XXH3-64 of
 * the page seeded with the VM's salt) in one host-wide table: open
 * addressing with linear probing, 16 bytes a slot (hash, ref), sized by
 * share_scan.c to 9/8 of all guest pages (0.44% of guest memory).  A slot
 * holds a shared frame (SLOT_FRAME | frame) or a *hint* naming one guest
 * page (SLOT_HINT | vm id | ppn) that has not matched anything yet.  A
 * slot's home is hash * capacity >> 64; probing goes forward and wraps.
 * Beyond 90% full an insert is refused (a hint is simply not kept: probes
 * stay short).  Deletion shifts the following keys back instead of leaving
 * tombstones: a key at j moves into the freed slot i unless its home lies
 * cyclically in (i, j], so every key stays reachable from its home by a
 * run of occupied slots.  Equal hashes with different bytes (a collision)
 * may share a slot's probe run; the table never decides a merge: the
 * bit-by-bit comparison does (share_merge.c).
 *
 * Frames.  Pool frame f is page f of the pool memfd; its metadata (16
 * bytes): refs, the guest pages mapping it (0: not live); its salt's
 * index, so that only VMs with that salt map it; the RAM image it belongs
 * to, if any (images get a fixed range of frames, share_scan.c); and its
 * owner.  Scanner frames come from the free list first (frames freed by
 * copy-on-write, already punched out of the pool), else from the bump
 * pointer frames_end.  Image frames never go on the free list.
 *
 * Ownership, for SHRDSVD in O(1).  Each live frame (refs > 0) is paid for
 * by exactly one VM, its owner, counted in that VM's frames_owned; a VM's
 * SHRDSVD is its SHARED + ZERO pages - frames_owned (share_scan.c).  The
 * sum over VMs is then sum(refs) - live frames + ZERO pages, the host's
 * figure, exactly, at every moment.  The owner is the VM that last took a
 * reference to the frame (mv__share_frame_take) or was last seen mapping
 * it by the scanner (mv__share_frame_adopt); a frame's last reference
 * takes its charge with it; a VM being destroyed passes its frames to VMs
 * with their salt (mv__share_frames_pass), since only such VMs can map
 * them, each up to what it can pay without going below 0.  So an owner maps its frame unless it has since written (or given
 * up) every copy it had: then it keeps paying until the scanner next sees
 * another sharer's page, or the frame dies.  Meanwhile its own figure is
 * low (floored at 0, share_scan.c) and the others' high by as much.
 * Finding a sharer at once would need a reverse map per frame.
 *
 * Invariants (share.lock held between calls): table_used counts occupied
 * slots, table_hints the hints among them; every key is reachable from its
 * home; nframes counts frames with refs > 0 and nrefs their refs; a frame
 * has an owner iff refs > 0, and sum(frames_owned) == nframes; a frame on
 * the free list has refs == 0 and no slot.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "inject.h"
#include "share_int.h"

uint64_t mv__share_hash(const void *page, uint64_t salt)
{
	return XXH3_64bits_withSeed(page, MV_PAGE_SIZE, salt) &
	       mv__inject_get_hash_mask();
}

/* ---- the hash table ---- */

static uint64_t slot_home(const struct mv__share *s, uint64_t hash)
{
	return (uint64_t)(((unsigned __int128)hash * s->table_cap) >> 64);
}

static uint64_t slot_next(const struct mv__share *s, uint64_t i)
{
	return i + 1 == s->table_cap ? 0 : i + 1;
}

uint64_t mv__share_table_find(const struct mv__share *s, uint64_t hash)
{
	if (!s->table_cap)
		return MV_SHARE_NO_SLOT;
	for (uint64_t i = slot_home(s, hash);; i = slot_next(s, i)) {
		if (!s->table[i].ref)
			return MV_SHARE_NO_SLOT;
		if (s->table[i].hash == hash)
			return i;
	}
}

bool mv__share_table_insert(struct mv__share *s, uint64_t hash, uint64_t ref)
{
	uint64_t i;

	/* beyond 90% linear probing slows down; the hint is simply dropped */
	if (!s->table_cap || (s->table_used + 1) * 10 > s->table_cap * 9)
		return false;
	for (i = slot_home(s, hash); s->table[i].ref; i = slot_next(s, i))
		;
	s->table[i] = (struct mv__share_slot){ hash, ref };
	s->table_used++;
	s->table_hints += !(ref & MV_SHARE_SLOT_FRAME);
	return true;
}

void mv__share_table_delete(struct mv__share *s, uint64_t i)
{
	uint64_t j = i, home;

	s->table_hints -= !(s->table[i].ref & MV_SHARE_SLOT_FRAME);
	s->table_used--;
	for (;;) {
		s->table[i].ref = 0;
		for (;;) {
			j = slot_next(s, j);
			if (!s->table[j].ref)
				return;
			home = slot_home(s, s->table[j].hash);
			/* j may move to i if its home is not in (i, j] */
			if (i <= j ? (home <= i || home > j) :
				     (home <= i && home > j))
				break;
		}
		s->table[i] = s->table[j];
		i = j;
	}
}

void mv__share_table_set_hint(struct mv__share *s, uint64_t i, uint64_t hint)
{
	s->table_hints += !!(s->table[i].ref & MV_SHARE_SLOT_FRAME);
	s->table[i].ref = hint;
}

void mv__share_table_set_frame(struct mv__share *s, uint64_t i, uint64_t f)
{
	s->table_hints -= !(s->table[i].ref & MV_SHARE_SLOT_FRAME);
	s->table[i].ref = MV_SHARE_SLOT_FRAME | f;
}

bool mv__share_table_unlink_frame(struct mv__share *s, uint64_t hash,
				  uint64_t f)
{
	/* equal hashes of other pages sit in the same probe run */
	for (uint64_t i = mv__share_table_find(s, hash);
	     i != MV_SHARE_NO_SLOT && s->table[i].ref; i = slot_next(s, i)) {
		if (s->table[i].ref == (MV_SHARE_SLOT_FRAME | f)) {
			mv__share_table_delete(s, i);
			return true;
		}
	}
	return false;
}

void mv__share_table_drop_hints(struct mv__share *s, uint32_t vm_id)
{
	uint64_t ref;

	for (uint64_t i = 0; i < s->table_cap;) {
		ref = s->table[i].ref;
		if ((ref & MV_SHARE_SLOT_HINT) &&
		    mv__share_hint_vm(ref) == vm_id)
			mv__share_table_delete(s, i); /* i now holds a later
						       * key, or is empty */
		else
			i++;
	}
}

int mv__share_table_grow(struct mv__share *s, uint64_t want)
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
			mv__share_table_insert(s, old[i].hash, old[i].ref);
	free(old);
	return 0;
}

/* ---- pool frames ---- */

int mv__share_frames_room(struct mv__share *s, uint64_t end)
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

uint64_t mv__share_frame_alloc(struct mv__share *s)
{
	if (s->nfree)
		return s->free_frames[--s->nfree];
	if (mv__share_frames_room(s, s->frames_end + 1))
		return MV_SHARE_NO_SLOT;
	return s->frames_end++;
}

uint64_t mv__share_frame_alloc_after(struct mv__share *s, uint64_t prev)
{
	if (prev + 1 == s->frames_end &&
	    !mv__share_frames_room(s, s->frames_end + 1))
		return s->frames_end++;
	return mv__share_frame_alloc(s);
}

/* If memory is short the frame is lost to reuse but not to the host (its
 * budget was given back already). */
void mv__share_frame_recycle(struct mv__share *s, uint64_t f)
{
	uint64_t cap = s->free_cap ? s->free_cap * 2 : 1024, *n;

	if (s->frames[f].image)
		return;
	if (s->nfree == s->free_cap) {
		n = realloc(s->free_frames, cap * sizeof(*n));
		if (!n)
			return;
		s->free_frames = n;
		s->free_cap = cap;
	}
	s->free_frames[s->nfree++] = f;
}

static void frame_owner_set(struct mv__share_frame *fr, struct mv__vm_share *sh)
{
	if (fr->owner == sh)
		return;
	if (fr->owner)
		atomic_fetch_sub_explicit(&fr->owner->frames_owned, 1,
					  memory_order_relaxed);
	if (sh)
		atomic_fetch_add_explicit(&sh->frames_owned, 1,
					  memory_order_relaxed);
	fr->owner = sh;
}

void mv__share_frame_take(struct mv__share *s, uint64_t f,
			  struct mv__vm_share *sh, uint32_t n)
{
	struct mv__share_frame *fr = &s->frames[f];

	if (!n)
		return;
	s->nframes += !fr->refs;
	fr->refs += n;
	s->nrefs += n;
	frame_owner_set(fr, sh);
}

void mv__share_frame_adopt(struct mv__share *s, uint64_t f,
			   struct mv__vm_share *sh)
{
	if (s->frames[f].refs)
		frame_owner_set(&s->frames[f], sh);
}

bool mv__share_frame_drop(struct mv__share *s, uint64_t f)
{
	struct mv__share_frame *fr = &s->frames[f];

	s->nrefs--;
	if (--fr->refs)
		return false;
	s->nframes--;
	frame_owner_set(fr, NULL);
	return true;
}

uint64_t mv__share_frames_pass(struct mv__share *s, struct mv__vm_share *from,
			       struct mv__vm_share *to, uint32_t salt,
			       uint64_t max)
{
	uint64_t n = 0;

	for (uint64_t f = 0;
	     f < s->frames_end && n < max &&
	     atomic_load_explicit(&from->frames_owned, memory_order_relaxed);
	     f++) {
		if (s->frames[f].owner == from &&
		    (salt == UINT32_MAX || s->frames[f].salt == salt)) {
			frame_owner_set(&s->frames[f], to);
			n++;
		}
	}
	return n;
}

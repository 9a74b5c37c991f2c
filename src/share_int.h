/* SPDX-License-Identifier: MIT */
/*
 * share_int.h - what the four files of page sharing call between
 * themselves; nothing else includes it (tests do, to reach inside).
 *
 * Layers (each file calls only those below it, never back up):
 *   share_scan.c   policy: the scanner thread, pacing, salts, setup,
 *                  statistics; calls the three below
 *   share_merge.c  the window merge pipeline; calls share_cow, share_table
 *   share_cow.c    the page side (copy-on-write, fill, give-up, image
 *                  mapping) and the kernel calls on guest pages and pool
 *                  frames the pipeline shares; calls share_table
 *   share_table.c  the host table, pool-frame metadata and free list; no
 *                  system call, no host, no VM: unit-tested alone
 *                  (tests/test_share_table.c)
 *
 * Locks: share.lock protects the table, the frame metadata, the free list
 * and the mapping count; functions below say when they take it or expect
 * it held.  Lock ordering (internal.h): host->vms_lock -> pmap entry ->
 * share.lock -> further pmap entries by trylock only -> host->frames_lock.
 */
#ifndef MV_SHARE_INT_H
#define MV_SHARE_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "internal.h"

#define MV_SHARE_WINDOW 256 /* pages scanned together before a random jump */
#define MV_SHARE_NO_SLOT UINT64_MAX /* no table slot; no free frame */

/* A table slot's ref: 0 empty, SLOT_FRAME | frame, or a hint naming one
 * guest page, SLOT_HINT | vm id << HINT_PPN_BITS | ppn. */
#define MV_SHARE_SLOT_FRAME (1ull << 63)
#define MV_SHARE_SLOT_HINT (1ull << 62)
#define MV_SHARE_HINT_PPN_BITS 36

/*
 * The payload of a SHARED entry is its frame, with MV_SHARE_EMPTY set for
 * a page left empty (its frame could be neither mapped nor copied back):
 * its next touch faults and mv__share_fill fills it.
 */
#define MV_SHARE_EMPTY (1ull << 54)

/*
 * Mappings one change can add: a page mapped in the middle of a mapping
 * splits it in three.  MV_SHARE_MAPS_SLACK are left for everything else
 * in the process (thread stacks, malloc, the compression cache).
 */
#define MV_SHARE_MAPS_PER_CHANGE 2
#define MV_SHARE_MAPS_SLACK 1024

static inline uint64_t mv__share_hint(uint32_t vm_id, uint64_t ppn)
{
	return MV_SHARE_SLOT_HINT |
	       ((uint64_t)vm_id << MV_SHARE_HINT_PPN_BITS) | ppn;
}

static inline uint32_t mv__share_hint_vm(uint64_t ref)
{
	return (uint32_t)((ref & ~MV_SHARE_SLOT_HINT) >>
			  MV_SHARE_HINT_PPN_BITS);
}

static inline uint64_t mv__share_hint_ppn(uint64_t ref)
{
	return ref & ((1ull << MV_SHARE_HINT_PPN_BITS) - 1);
}

/* The frame a SHARED entry names. */
static inline uint64_t mv__share_frame_of(uint64_t v)
{
	return pmap_payload(v) & ~MV_SHARE_EMPTY;
}

/* The guest address of page ppn. */
static inline uint8_t *mv__share_page(struct mv_vm *vm, uint64_t ppn)
{
	return vm->mem + (ppn << MV_PAGE_SHIFT);
}

/* ---- share_table.c (share.lock held by the caller of each) ---- */

/* XXH3-64 of a page seeded with salt (masked by fault injection). */
uint64_t mv__share_hash(const void *page, uint64_t salt);
/* The slot holding hash, or MV_SHARE_NO_SLOT. */
uint64_t mv__share_table_find(const struct mv__share *s, uint64_t hash);
/* false (nothing stored) when the table is 90% full. */
bool mv__share_table_insert(struct mv__share *s, uint64_t hash, uint64_t ref);
/* Backward-shift deletion: slot i then holds the next key, if any moved. */
void mv__share_table_delete(struct mv__share *s, uint64_t i);
/* Slot i (same hash) names another page, or becomes frame f's. */
void mv__share_table_set_hint(struct mv__share *s, uint64_t i, uint64_t hint);
void mv__share_table_set_frame(struct mv__share *s, uint64_t i, uint64_t f);
/* Deletes frame f's slot, found from its content's hash; false if none. */
bool mv__share_table_unlink_frame(struct mv__share *s, uint64_t hash,
				  uint64_t f);
/* Deletes every hint naming a page of VM vm_id. */
void mv__share_table_drop_hints(struct mv__share *s, uint32_t vm_id);
/* Rehashes into want slots; -ENOMEM with the table unchanged. */
int mv__share_table_grow(struct mv__share *s, uint64_t want);

/* Room for frame metadata up to frame end. */
int mv__share_frames_room(struct mv__share *s, uint64_t end);
/* A free scanner frame (reused first), or MV_SHARE_NO_SLOT. */
uint64_t mv__share_frame_alloc(struct mv__share *s);
/* Frame prev + 1 if it is the next one never handed out, else any free
 * frame: pairs found in a row get frames in a row. */
uint64_t mv__share_frame_alloc_after(struct mv__share *s, uint64_t prev);
/* Puts a scanner frame nobody maps on the free list (written whole before
 * reuse); image frames are not kept there. */
void mv__share_frame_recycle(struct mv__share *s, uint64_t f);
/*
 * n more guest pages of the VM sh map frame f (refs += n; the first makes
 * it a live frame, counted in nframes); sh pays for it from now on.
 */
void mv__share_frame_take(struct mv__share *s, uint64_t f,
			  struct mv__vm_share *sh, uint32_t n);
/* The VM sh, seen mapping frame f, pays for it from now on. */
void mv__share_frame_adopt(struct mv__share *s, uint64_t f,
			   struct mv__vm_share *sh);
/*
 * One page fewer maps frame f.  true when it was the last: the frame is
 * no longer live (nframes, its owner's count), and the caller unlinks its
 * slot and recycles it.
 */
bool mv__share_frame_drop(struct mv__share *s, uint64_t f);
/* At most max frames from pays for, of salt index salt (UINT32_MAX:
 * any), are paid by to (NULL: nobody) from now on; returns how many. */
uint64_t mv__share_frames_pass(struct mv__share *s, struct mv__vm_share *from,
			       struct mv__vm_share *to, uint32_t salt,
			       uint64_t max);

/* ---- share_cow.c ---- */

/* Whether want more mappings may be made (share.lock held); says so once
 * when not.  mv__share_maps_take also counts them (takes share.lock). */
bool mv__share_maps_room(struct mv_host *h, unsigned want);
bool mv__share_maps_take(struct mv_host *h, unsigned want);
/* Bounded retries of a call that should not fail; false: give up (counted
 * and said). */
bool mv__share_retry(struct mv_vm *vm, const char *what, int err,
		     unsigned *tries);
/* Pool frame I/O; 0 or -errno. */
int mv__share_pool_read(struct mv__share *s, uint64_t f, void *page);
int mv__share_pool_write(struct mv__share *s, uint64_t f, const void *page);
/* Gives frame f's memory back to the kernel (a failure is only counted:
 * a frame is written whole before reuse).  Takes no lock: the caller
 * makes sure nobody else can reach f. */
void mv__share_frame_punch(struct mv__share *s, uint64_t f);
/* Drops a reference of vm's locked page to f (share.lock NOT held); frees
 * the frame (slot, memory, budget) with its last one. */
void mv__share_frame_put(struct mv_vm *vm, uint64_t f);
/*
 * Maps n pool frames from f over the locked, empty guest pages from ppn
 * (MV_SHARE_MAPS_PER_CHANGE mappings counted by the caller).  0, or -errno
 * with nothing mapped.  Takes no lock.
 */
int mv__share_map_frames(struct mv_vm *vm, uint64_t ppn, uint64_t n,
			 uint64_t f);
/*
 * Gives the locked page at ppn, mapped to a pool frame, the guest's own
 * copy of what it sees there: in its own mapping when maps_counted (the
 * caller counted MV_SHARE_MAPS_PER_CHANGE), else in place.  *origin says
 * which.  -errno when neither worked: nothing changed.  Takes no lock.
 */
int mv__share_own_copy(struct mv_vm *vm, uint64_t ppn, bool maps_counted,
		       enum pmap_origin *origin);

/* ---- share_merge.c ---- */

/* Scans window win of vm (host->vms_lock held: hinted VMs stay alive),
 * merging what matches; returns the pages merged. */
uint64_t mv__share_scan_window(struct mv_vm *vm, uint64_t win, uint8_t *buf);

#endif /* MV_SHARE_INT_H */

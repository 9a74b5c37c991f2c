/* SPDX-License-Identifier: MIT */
/*
 * share.h - transparent page sharing as the rest of the engine sees it: the
 * host's part (pool of shared frames, hash table, scanner), each VM's part
 * (salt, scan pass, scratch page, counters), and the entry points the fault
 * path, the balloon, VM setup and statistics call.  What the four files of
 * sharing call between themselves is in share_int.h:
 *   share_table.c  the host table, pool-frame metadata and free list
 *   share_cow.c    copy-on-write, fill, give-up, image mapping, and the
 *                  kernel calls on guest pages and pool frames
 *   share_merge.c  the window merge pipeline
 *   share_scan.c   the scanner thread and its pacing, salts, setup,
 *                  statistics (docs/SHARING.md)
 */
#ifndef MV_SHARE_H
#define MV_SHARE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define MV_NO_FRAME UINT64_MAX

struct mv_host;
struct mv_vm;

struct mv__vm_share;

/* One shared frame: page `index` of the pool memfd.  16 bytes, since there
 * is one per pool frame (0.39% of the memory the pool holds), with the
 * table the overhead ESX keeps under 0.5%. */
struct mv__share_frame {
	/* guest pages mapping it (and, while a scanner window compares a
	 * page with it, the window's); 0: the frame is free */
	uint32_t refs;
	uint32_t salt : 24; /* index in salts[]: only VMs with it may map it */
	uint32_t image : 8; /* 1 + index of the RAM image it belongs to, or 0 */
	/* the VM that pays for it in SHRDSVD (share_table.c); NULL iff
	 * refs == 0 */
	struct mv__vm_share *owner;
};

#define MV_SHARE_MAX_IMAGES 255

/* A hash table slot: a shared frame, or a hint naming one guest page. */
struct mv__share_slot {
	uint64_t hash; /* XXH3-64 of the page, seeded with the salt */
	uint64_t ref; /* 0 empty; SLOT_FRAME | frame; or a hint (vm id, ppn) */
};

/* A RAM image VMs were restored from: its pages get pool frames in order. */
struct mv__share_image {
	uint64_t dev, ino, size, mtime_ns; /* identity of the file */
	uint64_t base; /* pool frame of the image's page 0 */
	uint64_t pages;
	uint32_t users; /* VMs restored from it */
};

struct mv__share {
	pthread_mutex_t lock; /* protects every field up to the statistics */
	int pool_fd; /* memfd holding the shared frames; immutable */
	int pagemap_fd; /* /proc/self/pagemap, or -1; immutable */
	struct mv__share_frame *frames; /* metadata per pool frame */
	uint64_t frames_cap; /* entries allocated in frames */
	uint64_t frames_end; /* frames handed out so far by the bump pointer */
	uint64_t *free_frames; /* freed scanner frames, reused first */
	uint64_t nfree, free_cap;
	uint64_t nframes; /* frames with refs > 0 */
	uint64_t nrefs; /* sum of their refs */
	struct mv__share_slot *table; /* open addressing, linear probing */
	uint64_t table_cap, table_used, table_hints;
	uint64_t guest_pages; /* pages of all VMs; sizes the table */
	struct mv__share_image *images;
	uint32_t nimages;
	uint64_t *salts; /* the salt values frames and VMs refer to by index */
	uint32_t nsalts;
	long maps_base; /* mappings in use when the host was created */
	long maps_max; /* vm.max_map_count */
	long maps_now; /* mappings counted at the last check */
	bool maps_full; /* sharing stopped: too close to max_map_count */
	bool maps_said; /* the stop was reported */

	pthread_t scanner; /* the background scanner */
	bool scanner_started;
	bool scanner_stop; /* protected by lock */
	pthread_cond_t scanner_wake;
	double ghz; /* host CPU: cores x clock, for Mem.ShareScanGHz */

	/* statistics, relaxed atomics */
	_Atomic uint64_t scanned;
	_Atomic uint64_t collisions;
	_Atomic uint64_t cow_breaks;
	_Atomic uint64_t errors; /* calls that kept failing (kept safe) */
	_Atomic uint64_t kept_in_place; /* copies made in place (no mapping) */
	_Atomic uint64_t lazy_fills; /* pages left to fill on next touch */
	_Atomic uint64_t pagemap_errors; /* unreadable: pages taken as written */
	_Atomic uint64_t punch_errors; /* frames whose memory stayed */
};

/* A VM's part; buf, rng, credit and the pass are protected by
 * host->vms_lock (held by whoever scans); salt, salt_id, nwin and image are
 * set before the VM is linked and never change. */
struct mv__vm_share {
	uint64_t salt; /* effective salt (Mem.ShareForceSalting), seeds hashes */
	uint32_t salt_id; /* its index in the host's salts[] */
	uint8_t *buf; /* a page for the scanner's copies (scanner only) */
	uint64_t rng; /* xorshift state for the pass order */
	uint64_t nwin; /* windows of SHARE_WINDOW pages in the VM */
	uint64_t pass_start, pass_stride, pass_pos; /* window order this pass */
	double credit; /* pages the scanner may still scan this tick */
	int image; /* index into the host's images, or -1 */

	/* pool frames this VM pays for (owner above): changed under
	 * share.lock, read without it */
	_Atomic uint64_t frames_owned;
	/* held by the scanner while it write-protects a span of the VM's
	 * pages, and by whoever lifts a page's protection to populate it
	 * (mv__share_wp_lock): a leaf, taken with pmap entries held */
	pthread_mutex_t wp_lock;

	/* statistics, relaxed atomics */
	_Atomic uint64_t scanned;
	_Atomic uint64_t cow_breaks;
	_Atomic uint64_t merged;
};

int mv__share_host_init(struct mv_host *h);
void mv__share_host_fini(struct mv_host *h);
/* Before the VM is linked into the host: salt, scratch page, table room,
 * image */
int mv__share_vm_init(struct mv_vm *vm, const char *salt);
/* After it is unlinked: drops its references and hints, and passes the
 * frames it pays for to a VM that may map them. */
void mv__share_vm_fini(struct mv_vm *vm);

/*
 * A write fault on a SHARED page (locked by the caller, entry v): gives the
 * writer its own copy.  Returns false, with the lock dropped, when the
 * caller must start over (no frame was free).
 */
bool mv__share_cow(struct mv_vm *vm, uint64_t ppn, uint64_t v);

/*
 * A missing-page fault on a SHARED page (locked by the caller, entry v):
 * one whose frame could not be mapped is left empty, SHARED, and filled
 * here on its next touch with its frame's bytes, PRIVATE.  0 with the
 * lock released; -EAGAIN (no frame free), -EEXIST (the page is mapped
 * after all: a stale fault) or another -errno with the lock still held
 * and nothing changed.
 */
int mv__share_fill(struct mv_vm *vm, uint64_t ppn, uint64_t v);

/*
 * The guest gave up the content of a SHARED page (locked, entry v) through
 * its balloon: the page is unmapped so that its next touch faults, and its
 * reference dropped.  0 or -errno (nothing changed).
 */
int mv__share_give_up(struct mv_vm *vm, uint64_t ppn, uint64_t v);

/*
 * First touch of n pages from lo of an image VM (locked, UNTOUCHED, their
 * image bytes in buf): maps the image's shared frame over each page that
 * can share one, in runs, and sets frame[i] to its frame (MV_NO_FRAME for
 * the others, which the caller fills).  Returns how many were mapped.
 */
unsigned mv__share_image_map(struct mv_vm *vm, uint64_t lo, uint64_t n,
			     const uint8_t *buf, uint64_t *frame);

/*
 * The scanner write-protects spans of a VM's pages, the pages between its
 * candidates included, whoever holds their locks (a write to one faults
 * and is let through).  A thread that lifts a page's protection and then
 * populates it for writing (MADV_POPULATE_WRITE) must not see the span's
 * protection land in between: its own populate would raise a userfault
 * that only a fault thread can serve, and a fault thread doing this would
 * wait for itself.  Such a lift-and-populate holds this lock; so does the
 * scanner around each span.  Takes nothing else; held briefly.
 */
void mv__share_wp_lock(struct mv_vm *vm);
void mv__share_wp_unlock(struct mv_vm *vm);

/* All-zero page, read in place (see share_cow.c on reading guest pages):
 * exact only while nothing can write it (write-protected, say). */
bool mv__share_page_is_zero(const void *page);

/* Frames the pool holds now: machine memory no VM is charged for. */
uint64_t mv__share_frames(struct mv_host *h);

/* SHRDSVD of one VM (its part of the frames saved: SHARED + ZERO pages -
 * frames it pays for; O(1), no lock), and the host's part of struct
 * mv_host_stats. */
uint64_t mv__share_vm_saved(struct mv_vm *vm);
struct mv_host_stats;
void mv__share_host_stats(struct mv_host *h, struct mv_host_stats *st);

#endif /* MV_SHARE_H */

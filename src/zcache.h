/* SPDX-License-Identifier: MIT */
/*
 * zcache.h - a VM's compression cache: compressed pages in a packed store,
 * oldest first out to the swap file, its frames counted against the VM.
 */
#ifndef MV_ZCACHE_H
#define MV_ZCACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "zip.h"
#include "zpool.h"

struct mv_vm;

struct mv__zcache {
	struct mv__zpool *pool; /* NULL when compression is off */
	enum mv__zip_algo algo; /* immutable */

	pthread_mutex_t lock; /* protects everything below */
	uint32_t *prev, *next; /* FIFO links per ppn, ZC_NIL at the ends */
	uint64_t head, tail; /* oldest and newest compressed ppn, or ZC_NIL */
	uint64_t count; /* pages in the cache */
	uint64_t charged_frames; /* pool frames counted against host and VM */
	void *bounce; /* aligned pages for eviction's swap write */
	uint64_t probe_full, probe_fast; /* this window's probe costs, bytes */
	unsigned probes; /* probes in this window */

	/* fast compression (zcache.c): relaxed atomics, read without the lock */
	_Atomic uint32_t accel; /* LZ4 acceleration now: 1 or the fast one */
	_Atomic uint64_t stores; /* compressions so far; every 32nd probes */

	/* statistics, relaxed atomics */
	_Atomic uint64_t zip_pages; /* pages compressed into the cache */
	_Atomic uint64_t unzip_pages; /* pages decompressed on faults */
	_Atomic uint64_t evict_pages; /* oldest pages pushed on to swap */
	_Atomic uint64_t incompressible; /* victims too big for the cache */
	_Atomic uint64_t fast_pages; /* victims given the fast search */
};

int mv__zcache_init(struct mv_vm *vm);
void mv__zcache_fini(struct mv_vm *vm);

/*
 * Tries to keep the page in staging (ppn locked by the caller, moved out of
 * the guest) in the cache.  On success stores the pmap entry to publish in
 * *entry and adjusts *credit (frames the caller may give back to the host:
 * +1 for the page's own frame, minus frames the pool grew by).  Returns
 * -E2BIG (incompressible), -ENOSPC (no room even after compaction and
 * eviction), or another -errno; the caller then swaps the page.
 */
int mv__zcache_store(struct mv_vm *vm, uint64_t ppn, const void *page,
		     uint64_t flags, uint64_t *entry, int64_t *credit);

/*
 * Decompresses the cached page of the locked entry into dst.  0 or -EIO.
 * The object stays in the cache until mv__zcache_drop().
 */
int mv__zcache_load(struct mv_vm *vm, uint64_t entry, void *dst);

/*
 * Removes the locked page's object from the cache (after a fault filled it
 * or a balloon took it) and gives back the frames the pool shrank by.
 */
void mv__zcache_drop(struct mv_vm *vm, uint64_t ppn, uint64_t entry);

/* Compacts the pool if it is fragmented and gives back freed frames. */
void mv__zcache_compact(struct mv_vm *vm);

struct mv__zcache_stats {
	uint64_t pages; /* compressed pages held */
	uint64_t stored_bytes; /* sum of their compressed sizes */
	uint64_t used_bytes; /* frames the pool holds, in bytes */
	uint64_t max_bytes; /* Mem.MemZipMaxPct of the VM */
};
void mv__zcache_stats(struct mv_vm *vm, struct mv__zcache_stats *st);

#endif /* MV_ZCACHE_H */

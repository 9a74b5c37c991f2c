/* SPDX-License-Identifier: MIT */
/*
 * zpool.h - a packed store for compressed pages: objects of 1..2048 bytes
 * share 4 KiB frames, each reached through a handle that stays the same when
 * compaction moves the object.
 */
#ifndef MV_ZPOOL_H
#define MV_ZPOOL_H

#include <stddef.h>
#include <stdint.h>

#define MV_ZPOOL_FRAME_SIZE 4096u
#define MV_ZPOOL_MAX_OBJ 2048u
/* Handles are below 2^56, so one fits in a pmap entry's payload. */
#define MV_ZPOOL_HANDLE_BITS 56

struct mv__zpool;

struct mv__zpool_stats {
	uint64_t stored_bytes; /* sum of the sizes of the objects held */
	uint64_t used_bytes; /* frames * MV_ZPOOL_FRAME_SIZE */
	uint64_t objects; /* objects held */
	uint64_t frames; /* frames held */
	uint64_t max_bytes; /* the cap on used_bytes */
	uint64_t meta_bytes; /* bookkeeping malloc'd beside the frames */
	uint64_t moved; /* objects moved by compaction since create */
	uint64_t compact_freed; /* frames freed by compaction since create */
};

/*
 * A pool whose frames never add up to more than max_bytes.  0 or -ENOMEM.
 */
int mv__zpool_create(uint64_t max_bytes, struct mv__zpool **out);
/* Frees the pool and every object in it; no call may be running on it. */
void mv__zpool_destroy(struct mv__zpool *zp);

/*
 * Makes room for an object of size bytes (1..MV_ZPOOL_MAX_OBJ) and stores
 * its handle (never 0) in *handle.  Its content is undefined until written.
 * -EINVAL for a bad size, -ENOSPC if a new frame would take the pool past
 * its cap (compacting may make room), -ENOMEM.
 */
int mv__zpool_alloc(struct mv__zpool *zp, size_t size, uint64_t *handle);
/* Copies len bytes into the object; len must be its size.  0 or -EINVAL. */
int mv__zpool_write(struct mv__zpool *zp, uint64_t handle, const void *src,
		    size_t len);
/*
 * Copies the object into dst and returns its size; -ENOBUFS if cap is
 * smaller than that, -EINVAL for a handle that is not live.
 */
int mv__zpool_read(struct mv__zpool *zp, uint64_t handle, void *dst,
		   size_t cap);
/* The object's size, or -EINVAL for a handle that is not live. */
int mv__zpool_size(struct mv__zpool *zp, uint64_t handle);
/* 0, or -EINVAL for a handle that is not live (e.g. freed twice). */
int mv__zpool_free(struct mv__zpool *zp, uint64_t handle);

/*
 * Moves objects out of sparsely used frames into fuller ones and frees the
 * frames that empties; returns how many.  Handles stay valid.  Other calls
 * may run meanwhile: the pool lock is dropped between batches.
 */
uint64_t mv__zpool_compact(struct mv__zpool *zp);
void mv__zpool_stats(struct mv__zpool *zp, struct mv__zpool_stats *st);

#endif /* MV_ZPOOL_H */

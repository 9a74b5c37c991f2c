// SPDX-License-Identifier: MIT
/*
 * zcache.c - the per-VM compression cache that sits in front of hypervisor
 * swapping (ESX 4.1's memory compression).
 *
 * Design: only pages already chosen for swapping come here.  A page that
 * compresses to 2 KiB or less is kept in the VM's packed store (zpool.c)
 * and its pmap entry becomes COMPRESSED with the object's handle as payload;
 * anything bigger goes on to the swap file.  A fault decompresses (about a
 * microsecond, against a disk read of tens or hundreds).
 *
 * The cache is capped at Mem.MemZipMaxPct of the VM's memory, and its frames
 * are machine memory like any other: they are counted in the VM's and the
 * host's consumption.  A page's own frame pays for its compressed copy; when
 * the pool grows by more than the frames being freed (a new multi-frame span
 * for one page), the difference is reserved from the host first, and if the
 * host has none the page is swapped instead, so the budget is never
 * exceeded.  When the cache is full it is compacted, and if that is not
 * enough its oldest pages go on to the swap file, sixteen at a time in one
 * write (a FIFO threaded through per-ppn links), so that it holds the pages
 * most likely to be wanted again.
 * The scheduler compacts fragmented caches when it is idle.
 *
 * Fast compression: LZ4's default search (acceleration 1) spends most of a
 * victim's compression on data that does not repeat.  A page of random
 * records and zeros (the kvstore guests) comes out the same size at
 * acceleration 8 in half the time (0.96 against 1.84 us here), and in
 * direct kvstore runs that CPU went to the guests (+2-12% operations);
 * a page of text loses a fifth of its saving (1464 against 1225 bytes on
 * average), and the text-valued pair ran 5% slower for the memory lost.
 * So each VM measures: one compression in ZC_PROBE_EVERY compresses its
 * page both ways, each way costing its length or, if it does not fit, a
 * whole page (the page is then swapped); after ZC_PROBE_WINDOW probes the
 * VM compresses with Mem.ZipFastAccel if that cost at most
 * ZC_FAST_SLACK_PCT percent more than the full search, else with the full
 * search, until the next window says otherwise.  A probe's page is kept
 * in its smaller form.  zstd has no such knob, nor has Mem.ZipFastAccel 1.
 *
 * Invariants: a ppn is on the FIFO iff its pmap entry is COMPRESSED, and
 * then its payload is a live handle of this VM's pool; charged_frames equals
 * the pool's frames whenever zc->lock is free; the pool never holds more
 * than its cap.
 *
 * Locks (order: internal.h): pmap entry locks -> zc->lock -> zpool lock
 * (a leaf), vm->swap.lock and host->frames_lock.  Under zc->lock other
 * pmap entries are taken only by trylock (eviction), so a fault holding an
 * entry and waiting for zc->lock cannot deadlock with it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "inject.h"
#include "internal.h"
#include "zip.h"
#include "zpool.h"

_Static_assert(MV_ZPOOL_HANDLE_BITS <= PMAP_PAYLOAD_BITS,
	       "a compression handle fits a pmap entry's payload");
_Static_assert(MV_ZIP_MAX_BYTES <= MV_ZPOOL_MAX_OBJ,
	       "every compressed page fits a pool object");

#define ZC_NIL UINT32_MAX
/* Oldest entries tried per eviction before giving up (they may be busy) */
#define EVICT_TRIES 8
/* Pages pushed to swap per eviction: one write for the lot */
#define ZC_EVICT_BATCH 16
/* Compact when stored/used falls below this, in percent */
#define COMPACT_BELOW_PCT 85
/* Fast compression: one compression in this many probes both ways */
#define ZC_PROBE_EVERY 32
/* Probes per judgement */
#define ZC_PROBE_WINDOW 16
/* The fast search may cost this much more space, percent */
#define ZC_FAST_SLACK_PCT 3

int mv__zcache_init(struct mv_vm *vm)
{
	struct mv__zcache *zc = &vm->zc;
	const struct mv_settings *s = &vm->host->settings;
	uint64_t cap = (vm->npages * s->mem_zip_max_pct / 100) << MV_PAGE_SHIFT;
	int err;

	zc->head = zc->tail = ZC_NIL;
	zc->algo = s->zip_algorithm ? MV_ZIP_ZSTD : MV_ZIP_LZ4;
	atomic_store(&zc->accel,
		     zc->algo == MV_ZIP_LZ4 ? s->zip_fast_accel : 1);
	pthread_mutex_init(&zc->lock, NULL);
	if (!s->mem_zip_enable || cap < MV_PAGE_SIZE || vm->npages >= ZC_NIL)
		return 0; /* off: every victim goes to swap */
	zc->prev = mv__calloc(vm->npages, sizeof(*zc->prev));
	zc->next = mv__calloc(vm->npages, sizeof(*zc->next));
	if (!zc->prev || !zc->next) {
		err = -ENOMEM;
		goto fail;
	}
	zc->bounce =
		mv__aligned_alloc(MV_PAGE_SIZE, ZC_EVICT_BATCH * MV_PAGE_SIZE);
	if (!zc->bounce) {
		err = -ENOMEM;
		goto fail;
	}
	err = mv__zpool_create(cap, &zc->pool);
	if (err)
		goto fail_bounce;
	return 0;

fail_bounce:
	free(zc->bounce);
	zc->bounce = NULL;
fail:
	free(zc->next);
	free(zc->prev);
	zc->prev = zc->next = NULL;
	pthread_mutex_destroy(&zc->lock);
	return err;
}

void mv__zcache_fini(struct mv_vm *vm)
{
	struct mv__zcache *zc = &vm->zc;

	if (zc->pool)
		mv__zpool_destroy(zc->pool);
	free(zc->bounce);
	free(zc->next);
	free(zc->prev);
	pthread_mutex_destroy(&zc->lock);
}

static void fifo_push(struct mv__zcache *zc, uint64_t ppn)
{
	zc->prev[ppn] = (uint32_t)zc->tail;
	zc->next[ppn] = ZC_NIL;
	if (zc->tail != ZC_NIL)
		zc->next[zc->tail] = (uint32_t)ppn;
	else
		zc->head = ppn;
	zc->tail = ppn;
	zc->count++;
}

static void fifo_del(struct mv__zcache *zc, uint64_t ppn)
{
	uint32_t p = zc->prev[ppn], n = zc->next[ppn];

	if (p != ZC_NIL)
		zc->next[p] = n;
	else
		zc->head = n == ZC_NIL ? ZC_NIL : n;
	if (n != ZC_NIL)
		zc->prev[n] = p;
	else
		zc->tail = p == ZC_NIL ? ZC_NIL : p;
	zc->count--;
}

static uint64_t pool_frames(struct mv__zcache *zc)
{
	struct mv__zpool_stats st;

	mv__zpool_stats(zc->pool, &st);
	return st.frames;
}

/*
 * Gives the frames the pool has shrunk by (frees, compaction) back to the
 * host at once.  Growth is paid for by mv__zcache_store(), the only caller
 * that can grow the pool.
 */
static void settle(struct mv_vm *vm)
{
	struct mv__zcache *zc = &vm->zc;
	uint64_t now = pool_frames(zc);

	if (now >= zc->charged_frames)
		return;
	atomic_fetch_sub(&vm->consumed_pages, zc->charged_frames - now);
	mv__frames_release(vm->host, zc->charged_frames - now);
	zc->charged_frames = now;
}

/*
 * Pushes up to ZC_EVICT_BATCH of the oldest cached pages that are not busy
 * on to the swap file, with one write where the slots allow.  Returns how
 * many went.
 */
static unsigned evict_oldest(struct mv_vm *vm)
{
	struct mv__zcache *zc = &vm->zc;
	struct iovec iov[ZC_EVICT_BATCH];
	uint64_t ppn[ZC_EVICT_BATCH], old[ZC_EVICT_BATCH];
	uint64_t slots[ZC_EVICT_BATCH], p, v;
	unsigned n = 0, done;
	int tries = EVICT_TRIES + ZC_EVICT_BATCH, err;

	for (p = zc->head; p != ZC_NIL && n < ZC_EVICT_BATCH && tries--;
	     p = zc->next[p]) {
		if (!pmap_trylock(&vm->pmap[p], &v))
			continue;
		iov[n].iov_base =
			(uint8_t *)zc->bounce + ((uint64_t)n << MV_PAGE_SHIFT);
		iov[n].iov_len = MV_PAGE_SIZE;
		if (pmap_state(v) != MV_PAGE_COMPRESSED ||
		    mv__zcache_load(vm, v, iov[n].iov_base)) {
			pmap_unlock(vm, p, v);
			continue;
		}
		ppn[n] = p;
		old[n++] = v;
	}
	done = n ? mv__swap_put(&vm->swap, iov, n, slots, &err) : 0;
	for (unsigned i = 0; i < n; i++) {
		if (i >= done) {
			pmap_unlock(vm, ppn[i], old[i]);
			continue;
		}
		fifo_del(zc, ppn[i]);
		mv__zpool_free(zc->pool, pmap_payload(old[i]));
		pmap_unlock(vm, ppn[i],
			    pmap_make(MV_PAGE_SWAPPED, old[i], slots[i]));
	}
	atomic_fetch_add(&vm->swcur_pages, done);
	atomic_fetch_add_explicit(&vm->c.swapout_pages, done,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&zc->evict_pages, done, memory_order_relaxed);
	return done;
}

/* A compression's cost in the cache: its length, or a page if it is swapped */
static uint64_t zip_cost(int len)
{
	return len > 0 ? (uint64_t)len : MV_ZIP_PAGE_SIZE;
}

/* Adds one probe to the window, and judges the window when it is full. */
static void probe_add(struct mv__zcache *zc, unsigned fast, int len_fast,
		      int len_full)
{
	bool use_fast;

	pthread_mutex_lock(&zc->lock);
	zc->probe_fast += zip_cost(len_fast);
	zc->probe_full += zip_cost(len_full);
	if (++zc->probes >= ZC_PROBE_WINDOW) {
		use_fast = zc->probe_fast * 100 <=
			   zc->probe_full * (100 + ZC_FAST_SLACK_PCT);
		atomic_store_explicit(&zc->accel, use_fast ? fast : 1,
				      memory_order_relaxed);
		zc->probes = 0;
		zc->probe_fast = zc->probe_full = 0;
	}
	pthread_mutex_unlock(&zc->lock);
}

/*
 * Compresses a victim into z (MV_ZIP_MAX_BYTES) with the VM's search, or,
 * one time in ZC_PROBE_EVERY, both ways ("Fast compression" above).
 */
static int zip_victim(struct mv_vm *vm, const void *page, uint8_t *z)
{
	struct mv__zcache *zc = &vm->zc;
	unsigned fast = vm->host->settings.zip_fast_accel, accel;
	uint8_t alt[MV_ZIP_MAX_BYTES];
	int len, full;

	if (zc->algo != MV_ZIP_LZ4 || fast <= 1)
		return mv__zip_compress(zc->algo, 1, page, z, MV_ZIP_MAX_BYTES);
	if (atomic_fetch_add_explicit(&zc->stores, 1, memory_order_relaxed) %
	    ZC_PROBE_EVERY) {
		accel = atomic_load_explicit(&zc->accel, memory_order_relaxed);
		if (accel > 1)
			atomic_fetch_add_explicit(&zc->fast_pages, 1,
						  memory_order_relaxed);
		return mv__zip_compress(MV_ZIP_LZ4, accel, page, z,
					MV_ZIP_MAX_BYTES);
	}
	len = mv__zip_compress(MV_ZIP_LZ4, fast, page, z, MV_ZIP_MAX_BYTES);
	full = mv__zip_compress(MV_ZIP_LZ4, 1, page, alt, sizeof(alt));
	probe_add(zc, fast, len, full);
	if (full > 0 && (len <= 0 || full < len)) {
		memcpy(z, alt, (size_t)full);
		return full;
	}
	return len;
}

int mv__zcache_store(struct mv_vm *vm, uint64_t ppn, const void *page,
		     uint64_t flags, uint64_t *entry, int64_t *credit)
{
	struct mv__zcache *zc = &vm->zc;
	uint8_t z[MV_ZIP_MAX_BYTES];
	uint64_t handle, now, grown, avail, need, got;
	int len, err, round = 0;

	pmap_assert_locked(&vm->pmap[ppn]);
	if (!zc->pool)
		return -ENOSPC;
	len = zip_victim(vm, page, z);
	if (len < 0) {
		atomic_fetch_add_explicit(&zc->incompressible, 1,
					  memory_order_relaxed);
		return len;
	}
	pthread_mutex_lock(&zc->lock);
	while ((err = mv__zpool_alloc(zc->pool, (size_t)len, &handle)) ==
	       -ENOSPC) {
		if (round++ == 0)
			mv__zpool_compact(zc->pool);
		else if (!evict_oldest(vm))
			break;
		settle(vm);
	}
	if (err)
		goto out;
	mv__zpool_write(zc->pool, handle, z, (size_t)len);
	/* frames charged so far are paid for; only new growth needs paying */
	now = pool_frames(zc);
	grown = now > zc->charged_frames ? now - zc->charged_frames : 0;
	avail = (uint64_t)*credit + 1; /* the page's own frame pays first */
	if (grown > avail) {
		need = grown - avail;
		got = mv__frames_reserve(vm->host, (unsigned)need);
		if (got < need) {
			mv__frames_release(vm->host, got);
			mv__zpool_free(zc->pool, handle);
			settle(vm);
			err = -ENOSPC;
			goto out;
		}
	}
	zc->charged_frames += grown;
	atomic_fetch_add(&vm->consumed_pages, grown);
	*credit = grown > avail ? 0 : (int64_t)(avail - grown);
	fifo_push(zc, ppn);
	*entry = pmap_make(MV_PAGE_COMPRESSED, flags, handle);
	atomic_fetch_add_explicit(&zc->zip_pages, 1, memory_order_relaxed);
out:
	pthread_mutex_unlock(&zc->lock);
	return err;
}

int mv__zcache_load(struct mv_vm *vm, uint64_t entry, void *dst)
{
	struct mv__zcache *zc = &vm->zc;
	uint8_t z[MV_ZIP_MAX_BYTES];
	int len;

	len = mv__zpool_read(zc->pool, pmap_payload(entry), z, sizeof(z));
	if (len < 0)
		return -EIO;
	return mv__zip_decompress(zc->algo, z, (size_t)len, dst);
}

void mv__zcache_drop(struct mv_vm *vm, uint64_t ppn, uint64_t entry)
{
	struct mv__zcache *zc = &vm->zc;

	pmap_assert_locked(&vm->pmap[ppn]);
	pthread_mutex_lock(&zc->lock);
	fifo_del(zc, ppn);
	mv__zpool_free(zc->pool, pmap_payload(entry));
	settle(vm);
	pthread_mutex_unlock(&zc->lock);
}

void mv__zcache_compact(struct mv_vm *vm)
{
	struct mv__zcache *zc = &vm->zc;
	struct mv__zpool_stats st;

	if (!zc->pool)
		return;
	pthread_mutex_lock(&zc->lock);
	mv__zpool_stats(zc->pool, &st);
	if (st.used_bytes &&
	    st.stored_bytes * 100 < st.used_bytes * COMPACT_BELOW_PCT) {
		mv__zpool_compact(zc->pool);
		settle(vm);
	}
	pthread_mutex_unlock(&zc->lock);
}

void mv__zcache_stats(struct mv_vm *vm, struct mv__zcache_stats *st)
{
	struct mv__zcache *zc = &vm->zc;
	struct mv__zpool_stats ps;

	memset(st, 0, sizeof(*st));
	if (!zc->pool)
		return;
	pthread_mutex_lock(&zc->lock);
	mv__zpool_stats(zc->pool, &ps);
	st->pages = zc->count;
	pthread_mutex_unlock(&zc->lock);
	st->stored_bytes = ps.stored_bytes;
	st->used_bytes = ps.used_bytes;
	st->max_bytes = ps.max_bytes;
}

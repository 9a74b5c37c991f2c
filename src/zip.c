// SPDX-License-Identifier: MIT
/*
 * zip.c - compresses and decompresses single 4 KiB pages for the
 * compression cache.
 *
 * Purpose: reclaim compresses a page it has chosen to swap, and keeps the
 * result in the cache only if it takes at most MV_ZIP_MAX_BYTES; a fault
 * decompresses it straight into the buffer that will fill the guest page.
 *
 * Design: LZ4 is the block format (its acceleration chosen by the
 * caller: zcache.c measures per VM whether the faster search costs space),
 * decoded by LZ4_decompress_safe.  Each page is one independent block: the
 * first block of a stream, compressed by LZ4_compress_fast_continue just
 * after LZ4_resetStream_fast, which makes the stream's old hash entries
 * unreachable instead of clearing its 16 KiB table (LZ4_compress_fast
 * clears it on every call: measured here, 0.62 against 0.50 us a page at
 * acceleration 8, 1.11 against 0.96 at 1, the same bytes); after a page
 * that does not fit, the stream is cleared whole, as LZ4 requires after
 * an error.  zstd (level 1, one frame per page) needs a context too.  Each
 * thread gets its own LZ4 stream and zstd contexts the first time it uses
 * them, kept until the thread exits, so no call after the first allocates
 * and no two threads share one; without memory for a stream, LZ4 falls
 * back to LZ4_compress_fast, whose table is on the stack.
 *
 * Compression asks for at most min(dst_cap, MV_ZIP_MAX_BYTES) bytes of
 * output: LZ4 then gives up as soon as the page cannot fit, which is the
 * cheapest way to find out that a page is incompressible (1.7 us instead of
 * 2.7 us for a random page here), and nothing is copied.  The price is that
 * zstd wants a little slack (up to 9 bytes in our measurements, LZ4 none),
 * so a zstd page that would end just under the limit may be refused and
 * swapped.
 *
 * Decompression accepts only input that decodes to exactly one page, so a
 * truncated or foreign stream is -EIO, and the decoders never write past
 * the page.  Neither format carries a checksum here: a flipped bit inside a
 * literal run decodes to a page that is wrong but well formed.  The cache
 * lives in this process's own memory, so that is not a failure this guards
 * against; the sizes and bounds are.
 *
 * Invariants: a thread's contexts are reached only through its own
 * thread-specific slot, so they need no lock.
 *
 * Locks: none; nothing here takes a lock after the one-time
 * creation of the thread-specific key.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include <lz4.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "inject.h"
#include "zip.h"

#define ZSTD_LEVEL 1

/* One per thread that has compressed; owned by that thread. */
struct zip_ctx {
	LZ4_stream_t *lz4; /* made at the thread's first LZ4 compression */
	ZSTD_CCtx *cctx; /* made at its first zstd compression */
	ZSTD_DCtx *dctx; /* made at its first zstd decompression */
};

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key; /* set once by key_init */
static int key_err; /* set once by key_init */

static void ctx_release(void *p)
{
	struct zip_ctx *ctx = p;

	free(ctx->lz4);
	ZSTD_freeCCtx(ctx->cctx);
	ZSTD_freeDCtx(ctx->dctx);
	free(ctx);
}

static void key_init(void)
{
	key_err = -pthread_key_create(&key, ctx_release);
}

static int ctx_get(struct zip_ctx **out)
{
	struct zip_ctx *ctx;
	int err;

	pthread_once(&key_once, key_init);
	if (key_err)
		return key_err;
	ctx = pthread_getspecific(key);
	if (!ctx) {
		ctx = mv__calloc(1, sizeof(*ctx));
		if (!ctx)
			return -ENOMEM;
		err = -pthread_setspecific(key, ctx);
		if (err) {
			free(ctx);
			return err;
		}
	}
	*out = ctx;
	return 0;
}

static int zstd_compress(const void *src, void *dst, size_t cap)
{
	struct zip_ctx *ctx;
	size_t ret;
	int err;

	err = ctx_get(&ctx);
	if (err)
		return err;
	if (!ctx->cctx) {
		ctx->cctx = ZSTD_createCCtx();
		if (!ctx->cctx)
			return -ENOMEM;
	}
	ret = ZSTD_compressCCtx(ctx->cctx, dst, cap, src, MV_ZIP_PAGE_SIZE,
				ZSTD_LEVEL);
	if (!ZSTD_isError(ret))
		return (int)ret;
	switch (ZSTD_getErrorCode(ret)) {
	case ZSTD_error_dstSize_tooSmall:
		return -E2BIG;
	case ZSTD_error_memory_allocation:
		return -ENOMEM;
	default:
		return -EIO;
	}
}

static int zstd_decompress(const void *src, size_t len, void *dst)
{
	struct zip_ctx *ctx;
	size_t ret;
	int err;

	err = ctx_get(&ctx);
	if (err)
		return err;
	if (!ctx->dctx) {
		ctx->dctx = ZSTD_createDCtx();
		if (!ctx->dctx)
			return -ENOMEM;
	}
	ret = ZSTD_decompressDCtx(ctx->dctx, dst, MV_ZIP_PAGE_SIZE, src, len);
	return ret == MV_ZIP_PAGE_SIZE ? 0 : -EIO;
}

/* The calling thread's LZ4 stream, made at its first use; NULL without
 * memory for it. */
static LZ4_stream_t *lz4_stream(void)
{
	struct zip_ctx *ctx;
	void *mem;

	if (ctx_get(&ctx))
		return NULL;
	if (!ctx->lz4) {
		mem = mv__calloc(1, sizeof(LZ4_stream_t));
		if (!mem)
			return NULL;
		ctx->lz4 = LZ4_initStream(mem, sizeof(LZ4_stream_t));
		if (!ctx->lz4) /* cannot happen: calloc's alignment suffices */
			free(mem);
	}
	return ctx->lz4;
}

static int lz4_compress(unsigned accel, const void *src, void *dst, size_t cap)
{
	LZ4_stream_t *st = lz4_stream();
	int a = accel > 1 ? (int)accel : 1, ret;

	if (!st) {
		ret = LZ4_compress_fast(src, dst, MV_ZIP_PAGE_SIZE, (int)cap,
					a);
		return ret > 0 ? ret : -E2BIG;
	}
	LZ4_resetStream_fast(st);
	ret = LZ4_compress_fast_continue(st, src, dst, MV_ZIP_PAGE_SIZE,
					 (int)cap, a);
	if (ret > 0)
		return ret;
	LZ4_initStream(st, sizeof(*st)); /* undefined after an error */
	return -E2BIG;
}

int mv__zip_compress(enum mv__zip_algo algo, unsigned accel, const void *src,
		     void *dst, size_t dst_cap)
{
	size_t cap = dst_cap < MV_ZIP_MAX_BYTES ? dst_cap : MV_ZIP_MAX_BYTES;

	switch (algo) {
	case MV_ZIP_LZ4:
		return lz4_compress(accel, src, dst, cap);
	case MV_ZIP_ZSTD:
		return zstd_compress(src, dst, cap);
	default:
		return -EINVAL;
	}
}

int mv__zip_decompress(enum mv__zip_algo algo, const void *src, size_t len,
		       void *dst)
{
	int ret;

	if (algo != MV_ZIP_LZ4 && algo != MV_ZIP_ZSTD)
		return -EINVAL;
	/* nothing longer is ever stored, and LZ4 takes an int */
	if (!len || len > MV_ZIP_MAX_BYTES)
		return -EIO;
	if (algo == MV_ZIP_ZSTD)
		return zstd_decompress(src, len, dst);
	ret = LZ4_decompress_safe(src, dst, (int)len, MV_ZIP_PAGE_SIZE);
	return ret == MV_ZIP_PAGE_SIZE ? 0 : -EIO;
}

// SPDX-License-Identifier: MIT
/*
 * zip.c - compresses and decompresses single 4 KiB pages for the
 * compression cache.
 *
 * Purpose: reclaim compresses a page it has chosen to swap, and keeps the
 * result in the cache only if it takes at most MV_ZIP_MAX_BYTES; a fault
 * decompresses it straight into the buffer that will fill the guest page.
 *
 * Design: LZ4 is the block format through LZ4_compress_fast (its
 * acceleration chosen by the caller: zcache.c measures per VM whether the
 * faster search costs space) and LZ4_decompress_safe.  Its compressor
 * keeps its hash table on the stack, so it allocates nothing.  zstd (level
 * 1, one frame per page) needs a context; each thread gets its own
 * compression and decompression context the first time it uses zstd, kept
 * until the thread exits, so no call after the first allocates and no two
 * threads share one.
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

/* One per thread that has used zstd; owned by that thread. */
struct zip_ctx {
	ZSTD_CCtx *cctx; /* made at the thread's first zstd compression */
	ZSTD_DCtx *dctx; /* made at its first zstd decompression */
};

static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t key; /* set once by key_init */
static int key_err; /* set once by key_init */

static void ctx_release(void *p)
{
	struct zip_ctx *ctx = p;

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

int mv__zip_compress(enum mv__zip_algo algo, unsigned accel, const void *src,
		     void *dst, size_t dst_cap)
{
	size_t cap = dst_cap < MV_ZIP_MAX_BYTES ? dst_cap : MV_ZIP_MAX_BYTES;
	int ret;

	switch (algo) {
	case MV_ZIP_LZ4:
		ret = LZ4_compress_fast(src, dst, MV_ZIP_PAGE_SIZE, (int)cap,
					accel > 1 ? (int)accel : 1);
		return ret > 0 ? ret : -E2BIG;
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

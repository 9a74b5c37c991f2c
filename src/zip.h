/* SPDX-License-Identifier: MIT */
/*
 * zip.h - compression of one 4 KiB page for the compression cache.
 */
#ifndef MV_ZIP_H
#define MV_ZIP_H

#include <stddef.h>

#define MV_ZIP_PAGE_SIZE 4096u
/* A page that does not compress to this or less is swapped instead. */
#define MV_ZIP_MAX_BYTES 2048u

enum mv__zip_algo {
	MV_ZIP_LZ4 = 0, /* liblz4 block format, LZ4_compress_fast */
	MV_ZIP_ZSTD, /* libzstd level 1, one frame */
	MV_ZIP_NALGOS
};

/*
 * Compresses the page at src into dst and returns the compressed length
 * (1..MV_ZIP_MAX_BYTES).  accel is LZ4's acceleration: 1 is
 * LZ4_compress_default, larger values look for fewer matches, faster and
 * (on some pages) bigger; zstd ignores it.  -E2BIG if it does not fit in MV_ZIP_MAX_BYTES or
 * in dst_cap bytes, whichever is less (zstd wants a few bytes of slack, so
 * it may refuse a page that would end within about 10 bytes of the limit);
 * -EINVAL for an unknown algo; -ENOMEM if this thread's zstd context cannot
 * be made (only at its first use); -EIO if the library fails otherwise.
 */
int mv__zip_compress(enum mv__zip_algo algo, unsigned accel, const void *src,
		     void *dst, size_t dst_cap);
/*
 * Decompresses len bytes at src into the page at dst.  0, or -EIO if they
 * are not one compressed page of exactly MV_ZIP_PAGE_SIZE bytes (dst is
 * then garbage); -EINVAL, -ENOMEM as above.  There is no checksum: damage
 * that still decodes to a whole page goes unnoticed.
 */
int mv__zip_decompress(enum mv__zip_algo algo, const void *src, size_t len,
		       void *dst);

#endif /* MV_ZIP_H */

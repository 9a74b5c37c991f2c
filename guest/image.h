/* SPDX-License-Identifier: MIT */
/*
 * image.h - generated guest RAM images: the RAM of a VM that booted an
 * "operating system", made up by memvisor with the page mix measured on
 * real Linux guests, so that scenarios, tests and demos need no
 * downloaded image.  docs/IMAGES.md describes the mix and its sources.
 */
#ifndef MV_GUEST_IMAGE_H
#define MV_GUEST_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Percent of an image's pages that are all-zero, the same in every VM of
 * the operating system (common) or the VM's own (private); the three add
 * up to 100.  text_pct: percent of the non-zero pages that are text-like
 * (compress to well under half a page), the rest binary (do not
 * compress).
 */
struct mvg_image_mix {
	uint32_t zero_pct;
	uint32_t common_pct;
	uint32_t private_pct;
	uint32_t text_pct;
};

/* The measured mix (docs/IMAGES.md): 66 / 23 / 11, half of it text. */
#define MVG_IMAGE_MIX_DEFAULT  \
	{                      \
		66, 23, 11, 50 \
	}

#define MVG_IMAGE_OS_MAX 64

struct mvg_image_spec {
	/* images with the same os have the same zero, common and private
	 * page positions and the same common pages; images of different os
	 * names have no non-zero page in common */
	char os[MVG_IMAGE_OS_MAX];
	uint64_t seed; /* the private pages' content */
	uint64_t size; /* bytes, a multiple of 4096 */
	struct mvg_image_mix mix;
};

enum mvg_image_page {
	MVG_IMAGE_ZERO,
	MVG_IMAGE_COMMON,
	MVG_IMAGE_PRIVATE,
};

/* 0 if mix is whole (zero + common + private = 100, text_pct <= 100),
 * else -EINVAL. */
int mvg_image_mix_check(const struct mvg_image_mix *mix);

/*
 * The class of every page of spec's image into cls[0 .. size / 4096), and
 * whether each non-zero page is text-like into text[] (may be NULL).
 * Pages come in runs (extents of 1 to 64 pages), as kernel text, files
 * and free memory do in a real guest; the positions depend on os only, so
 * a larger image of the same os starts with a smaller one's pages.
 */
void mvg_image_layout(const struct mvg_image_spec *spec, uint8_t *cls,
		      bool *text);

/* The content of one non-zero page (class cls, text-like or not) of
 * spec's image, page number ppn, into page (4096 bytes). */
void mvg_image_page(const struct mvg_image_spec *spec, uint64_t ppn,
		    enum mvg_image_page cls, bool text, void *page);

/* Called now and then while an image is written: bytes done of total.
 * Returns 0 to go on, or a -errno that stops the writing with it. */
typedef int mvg_image_progress(void *arg, uint64_t done, uint64_t total);

/*
 * Writes spec's image to fd from offset 0 (sized to spec->size with
 * ftruncate; zero pages are left as holes), calling progress (may be
 * NULL) every few MiB and at the end.  0 or -errno.
 */
int mvg_image_write(const struct mvg_image_spec *spec, int fd,
		    mvg_image_progress *progress, void *arg);

/*
 * The image in a new file without a name, readable by path as
 * /proc/self/fd/N for as long as *fd stays open, gone when it is closed
 * (nothing left behind, even after a crash): with dir NULL a memory file
 * (memfd_create), else a file in dir (O_TMPFILE, or where the filesystem
 * has none a file unlinked at once).  Close-on-exec.  0 or -errno.
 */
int mvg_image_create(const struct mvg_image_spec *spec, const char *dir,
		     int *fd, mvg_image_progress *progress, void *arg);

/* Bytes of spec's image that are not zero pages, about (from the mix):
 * what the file will hold. */
uint64_t mvg_image_nonzero_bytes(const struct mvg_image_spec *spec);

#endif /* MV_GUEST_IMAGE_H */

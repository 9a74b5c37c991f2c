/* SPDX-License-Identifier: MIT */
/*
 * genimage.h - the guest images a scenario asks memvisor to generate
 * (image = generated), made before its VMs start.
 */
#ifndef MV_TOOL_GENIMAGE_H
#define MV_TOOL_GENIMAGE_H

#include <stddef.h>
#include <stdio.h>

#include "scenario.h"

struct gen_images {
	int *fds; /* one memory file per distinct image */
	size_t n;
};

/*
 * Generates the image of every VM with image = generated, once per
 * distinct (os, seed, mix, size), and points the VM's image at it
 * (/proc/self/fd/N), showing progress on out (NULL: none) unless quiet.
 * The files are in memory, or in disk_dir (NULL: never) when they would
 * take more than a quarter of the memory available.  0, or -errno with
 * "FILE:LINE: ..." in err (-EINTR: a SIGINT or SIGTERM is pending); what
 * was made stays in gi either way, for gen_images_free().
 */
int gen_images_make(struct scenario *sc, struct gen_images *gi,
		    const char *disk_dir, FILE *out, bool quiet, char *err,
		    size_t errlen);
/* Closes the images; the VMs restored from them must be gone. */
void gen_images_free(struct gen_images *gi);

#endif /* MV_TOOL_GENIMAGE_H */

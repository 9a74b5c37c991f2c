/* SPDX-License-Identifier: MIT */
/*
 * swap.h - a VM's swap file: one 4 KiB slot per guest page.
 */
#ifndef MV_SWAP_H
#define MV_SWAP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mv__swap {
	int fd; /* -1 when closed */
	bool direct; /* opened O_DIRECT: buffers must be 4 KiB aligned */
	bool sparse; /* the filesystem could not preallocate */
	uint64_t npages; /* slots */
	char path[PATH_MAX]; /* where it was created (already unlinked) */
};

int mv__swap_open(struct mv__swap *s, const char *dir, const char *vmname,
		  uint32_t vmid, uint64_t npages, bool direct, char *msg,
		  size_t msglen);
void mv__swap_close(struct mv__swap *s);
int mv__swap_write(struct mv__swap *s, uint64_t slot, const void *page);
int mv__swap_read(struct mv__swap *s, uint64_t slot, unsigned n, void *buf);

#endif /* MV_SWAP_H */

/* SPDX-License-Identifier: MIT */
/*
 * swap.h - a VM's swap file: one 4 KiB slot per guest page.
 */
#ifndef MV_SWAP_H
#define MV_SWAP_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mv__swap {
	int fd; /* -1 when closed */
	bool direct; /* opened O_DIRECT: buffers must be 4 KiB aligned */
	bool sparse; /* the filesystem could not preallocate */
	uint64_t npages; /* slots */
	char path[PATH_MAX]; /* where it was created (already unlinked) */

	pthread_mutex_t lock; /* protects map, cursor, used */
	uint64_t *map; /* one bit per slot, set while a page lives there */
	uint64_t cursor; /* where the next search for free slots starts */
	uint64_t used; /* slots set in map */
};

struct iovec;

int mv__swap_open(struct mv__swap *s, const char *dir, const char *vmname,
		  uint32_t vmid, uint64_t npages, bool direct, char *msg,
		  size_t msglen);
void mv__swap_close(struct mv__swap *s);
/*
 * Allocates a run of up to want consecutive free slots; returns its length
 * (0 when the file is full) and its first slot in *slot.
 */
unsigned mv__swap_alloc(struct mv__swap *s, unsigned want, uint64_t *slot);
void mv__swap_free(struct mv__swap *s, uint64_t slot, unsigned n);
/* Writes n pages, from the n page buffers of iov, to slots [slot, slot+n). */
int mv__swap_writev(struct mv__swap *s, uint64_t slot, const struct iovec *iov,
		    unsigned n);
/*
 * Writes n pages to as few runs of slots as the map allows and stores each
 * page's slot.  Returns how many pages, from the first, were written; *err
 * says why the rest were not.
 */
unsigned mv__swap_put(struct mv__swap *s, const struct iovec *iov, unsigned n,
		      uint64_t *slots, int *err);
int mv__swap_read(struct mv__swap *s, uint64_t slot, unsigned n, void *buf);

#endif /* MV_SWAP_H */

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

/* Attempts of one swap write before it counts as failed */
#define MV_SWAP_WRITE_TRIES 3
/* After a failed write the file is left alone this long, doubling with each
 * failure in a row up to MV_SWAP_PAUSE_MAX_MS; a write that works resets it */
#define MV_SWAP_PAUSE_MS 250
#define MV_SWAP_PAUSE_MAX_MS 8000

struct mv__swap {
	int fd; /* -1 when closed */
	bool direct; /* opened O_DIRECT: buffers must be 4 KiB aligned */
	bool sparse; /* the filesystem could not preallocate */
	bool unnamed; /* O_TMPFILE: the file never had a name */
	uint64_t npages; /* slots */
	char path[PATH_MAX]; /* where it was created (already unlinked) */

	pthread_mutex_t lock; /* protects map, cursor, used, hwm, pause_ms */
	uint64_t *map; /* one bit per slot, set while a page lives there */
	uint64_t cursor; /* where the next search for free slots starts */
	uint64_t used; /* slots set in map */
	uint64_t hwm; /* one past the highest slot ever written */

	/* write health: after MV_SWAP_WRITE_TRIES failed attempts the file is
	 * not written to before paused_until (CLOCK_MONOTONIC ms) */
	unsigned pause_ms; /* the next pause */
	_Atomic uint64_t paused_until;
	_Atomic int last_err; /* the error that paused it, negative errno */
	_Atomic uint64_t write_errors; /* writes failed after their retries */
	_Atomic uint64_t
		write_retries; /* attempts that failed and were retried */
};

struct iovec;

/*
 * Checks dir (see swap.c), creates an unnamed swap file of npages slots in
 * it and preallocates it.  0, or -errno with a message for people in msg.
 */
int mv__swap_open(struct mv__swap *s, const char *dir, const char *vmname,
		  uint32_t vmid, uint64_t npages, bool direct, char *msg,
		  size_t msglen);
/* Discards what the file ever held (mv__swap_discard), then closes it. */
void mv__swap_close(struct mv__swap *s);
/*
 * Overwrites every slot ever written with zeros, flushes, and punches the
 * whole file out, so that no guest data outlives the VM on the disk.
 * 0 or the first -errno (it goes on after an error).
 */
int mv__swap_discard(struct mv__swap *s);
/*
 * Allocates a run of up to want consecutive free slots; returns its length
 * (0 when the file is full) and its first slot in *slot.
 */
unsigned mv__swap_alloc(struct mv__swap *s, unsigned want, uint64_t *slot);
void mv__swap_free(struct mv__swap *s, uint64_t slot, unsigned n);
/* Writes n pages, from the n page buffers of iov, to slots [slot, slot+n),
 * once.  0 or -errno. */
int mv__swap_writev(struct mv__swap *s, uint64_t slot, const struct iovec *iov,
		    unsigned n);
/*
 * Writes n pages to as few runs of slots as the map allows and stores each
 * page's slot.  Returns how many pages, from the first, were written; *err
 * says why the rest were not.  A write is tried MV_SWAP_WRITE_TRIES times;
 * if it still fails, it is counted and the file is paused: calls return 0
 * at once with the pausing error until the pause ends.
 */
unsigned mv__swap_put(struct mv__swap *s, const struct iovec *iov, unsigned n,
		      uint64_t *slots, int *err);
/* Whether the file takes writes now (not paused after a failure). */
bool mv__swap_usable(struct mv__swap *s);
int mv__swap_read(struct mv__swap *s, uint64_t slot, unsigned n, void *buf);

#endif /* MV_SWAP_H */

// SPDX-License-Identifier: MIT
/*
 * swap.c - per-VM swap files, the last resort of reclamation.
 *
 * Design: as in ESX, each VM gets a swap file the size of its memory in the
 * host's swap directory, so it can never run out of slots.  Slots are
 * handed out in runs, log-structured: a batch of victims goes to
 * consecutive slots with one vectored write, whatever their ppns.  On this
 * machine's disk an O_DIRECT write of one random 4 KiB page took 258 us and
 * a sequential 64 KiB write 317 us (20 us a page): batching writes is a
 * thirteenfold gain, where reads (31 us random) gain little.  A page's slot
 * is the payload of its SWAPPED pmap entry; a swap-in reads neighbours
 * whose slots are consecutive too (pages that left together tend to come
 * back together) with one pread.  The file is preallocated when the VM is
 * created (ESX refuses
 * to power on a VM whose swap file cannot be created), so a full swap
 * directory is an error at start, not a surprise under pressure; where the
 * filesystem cannot preallocate, the file is sparse and a full disk shows up
 * as a failed write, which the caller survives by keeping the page.
 *
 * The file is unlinked as soon as it is open: nobody else can open a VM's
 * swapped memory, and a crash leaves nothing behind.  By default it is
 * opened O_DIRECT so that swapped pages really leave memory instead of
 * moving to the page cache (where they would count against nobody).
 *
 * Invariants: a slot's bit is set from its allocation until its page is
 * read back (or dropped); its content is written and read only by the
 * holder of its page's pmap lock, so no two I/Os on one slot overlap.  A
 * short or failed write reports an error; the caller must then keep the
 * pages in memory and free the slots.
 *
 * Lock ordering: s->lock is a leaf, taken under pmap entry locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include "inject.h"
#include "internal.h"

static int open_file(struct mv__swap *s, bool direct)
{
	int flags = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC;

	if (direct)
		flags |= O_DIRECT;
	return open(s->path, flags, 0600);
}

int mv__swap_open(struct mv__swap *s, const char *dir, const char *vmname,
		  uint32_t vmid, uint64_t npages, bool direct, char *msg,
		  size_t msglen)
{
	uint64_t bytes = npages << MV_PAGE_SHIFT;
	struct statvfs vfs;
	int err;

	s->fd = -1;
	s->npages = npages;
	s->sparse = false;
	s->cursor = 0;
	s->used = 0;
	s->map = mv__calloc((npages + 63) / 64, sizeof(uint64_t));
	if (!s->map)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	if ((size_t)snprintf(s->path, sizeof(s->path), "%s/%s-%d-%u.vswp", dir,
			     vmname, (int)getpid(), vmid) >= sizeof(s->path)) {
		snprintf(msg, msglen, "swap directory path too long: %s", dir);
		mv__swap_close(s);
		return -ENAMETOOLONG;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		snprintf(
			msg, msglen,
			"cannot create swap directory %s: %s (set swapdir to a writable directory)",
			dir, strerror(errno));
		mv__swap_close(s);
		return err;
	}
	s->fd = open_file(s, direct);
	if (s->fd < 0 && direct && errno == EINVAL) {
		/* tmpfs and some others refuse O_DIRECT: the page cache it is */
		direct = false;
		s->fd = open_file(s, false);
	}
	if (s->fd < 0) {
		err = -errno;
		snprintf(
			msg, msglen,
			"cannot create swap file %s: %s (set swapdir to a writable directory with room for %llu MiB)",
			s->path, strerror(errno),
			(unsigned long long)(bytes >> 20));
		mv__swap_close(s);
		return err;
	}
	s->direct = direct;
	unlink(s->path);

	if (mv__fallocate(s->fd, 0, (off_t)bytes) < 0) {
		err = errno;
		if (err != EOPNOTSUPP && err != ENOSYS)
			goto fail;
		if (ftruncate(s->fd, (off_t)bytes) < 0) {
			err = errno;
			goto fail;
		}
		s->sparse = true;
	}
	return 0;

fail:
	if (statvfs(dir, &vfs) == 0)
		snprintf(
			msg, msglen,
			"swap directory %s cannot hold VM %s's %llu MiB swap file: %s (%llu MiB free; free space or set swapdir elsewhere)",
			dir, vmname, (unsigned long long)(bytes >> 20),
			strerror(err),
			(unsigned long long)((uint64_t)vfs.f_bavail *
						     vfs.f_frsize >>
					     20));
	else
		snprintf(
			msg, msglen,
			"swap directory %s cannot hold VM %s's %llu MiB swap file: %s",
			dir, vmname, (unsigned long long)(bytes >> 20),
			strerror(err));
	mv__swap_close(s);
	return -err;
}

void mv__swap_close(struct mv__swap *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	if (s->map) {
		free(s->map);
		s->map = NULL;
		pthread_mutex_destroy(&s->lock);
	}
}

static bool slot_used(const struct mv__swap *s, uint64_t slot)
{
	return s->map[slot / 64] >> (slot % 64) & 1;
}

unsigned mv__swap_alloc(struct mv__swap *s, unsigned want, uint64_t *slot)
{
	uint64_t start = 0, best = 0, run = 0, bestlen = 0, i, left;

	pthread_mutex_lock(&s->lock);
	i = s->cursor;
	for (left = s->npages; left && bestlen < want; left--, i++) {
		if (i == s->npages) {
			i = 0;
			run = 0; /* runs do not wrap around the end */
		}
		if (i % 64 == 0 && s->map[i / 64] == ~0ull && left >= 64) {
			run = 0;
			i += 63;
			left -= 63;
			continue;
		}
		if (slot_used(s, i)) {
			run = 0;
			continue;
		}
		if (!run++)
			start = i;
		if (run > bestlen) {
			best = start;
			bestlen = run;
		}
	}
	for (i = best; i < best + bestlen; i++)
		s->map[i / 64] |= 1ull << (i % 64);
	s->used += bestlen;
	s->cursor = best + bestlen == s->npages ? 0 : best + bestlen;
	pthread_mutex_unlock(&s->lock);
	*slot = best;
	return (unsigned)bestlen;
}

void mv__swap_free(struct mv__swap *s, uint64_t slot, unsigned n)
{
	pthread_mutex_lock(&s->lock);
	for (uint64_t i = slot; i < slot + n; i++)
		s->map[i / 64] &= ~(1ull << (i % 64));
	s->used -= n;
	pthread_mutex_unlock(&s->lock);
}

int mv__swap_writev(struct mv__swap *s, uint64_t slot, const struct iovec *iov,
		    unsigned n)
{
	off_t off = (off_t)(slot << MV_PAGE_SHIFT);
	ssize_t w;

	if (slot + n > s->npages)
		return -EINVAL;
	do {
		w = mv__pwritev(s->fd, iov, (int)n, off);
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	/* a short write means the disk is full: the caller keeps them all */
	return (size_t)w == (size_t)n << MV_PAGE_SHIFT ? 0 : -ENOSPC;
}

unsigned mv__swap_put(struct mv__swap *s, const struct iovec *iov, unsigned n,
		      uint64_t *slots, int *err)
{
	unsigned done = 0, run;
	uint64_t slot;

	*err = 0;
	while (done < n) {
		run = mv__swap_alloc(s, n - done, &slot);
		if (!run) {
			*err = -ENOSPC; /* cannot happen: as many slots as pages */
			break;
		}
		*err = mv__swap_writev(s, slot, iov + done, run);
		if (*err) {
			mv__swap_free(s, slot, run);
			break;
		}
		for (unsigned j = 0; j < run; j++)
			slots[done + j] = slot + j;
		done += run;
	}
	return done;
}

int mv__swap_read(struct mv__swap *s, uint64_t slot, unsigned n, void *buf)
{
	size_t len = (size_t)n << MV_PAGE_SHIFT, done = 0;
	off_t off = (off_t)(slot << MV_PAGE_SHIFT);
	ssize_t r;

	if (slot + n > s->npages)
		return -EINVAL;
	while (done < len) {
		r = mv__pread(s->fd, (char *)buf + done, len - done,
			      off + (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO; /* preallocated: EOF inside is corruption */
		done += (size_t)r;
	}
	return 0;
}

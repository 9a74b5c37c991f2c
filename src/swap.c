// SPDX-License-Identifier: MIT
/*
 * swap.c - per-VM swap files, the last resort of reclamation.
 *
 * Design: as in ESX, each VM gets a swap file the size of its memory in the
 * host's swap directory, and page ppn lives in slot ppn.  That makes slot
 * allocation free and never full, and it keeps guest-adjacent pages
 * file-adjacent, so a swap-in can read a cluster of swapped neighbours with
 * one pread.  The file is preallocated when the VM is created (ESX refuses
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
 * Invariants: a slot is written only by the holder of its page's pmap lock
 * and read only by the holder of that lock, so no two I/Os on one slot
 * overlap.  A short or failed write reports an error; the caller must then
 * keep the page in memory.
 *
 * Lock ordering: none of its own; callers hold pmap entry locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
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
	if ((size_t)snprintf(s->path, sizeof(s->path), "%s/%s-%d-%u.vswp",
			     dir, vmname, (int)getpid(),
			     vmid) >= sizeof(s->path)) {
		snprintf(msg, msglen, "swap directory path too long: %s", dir);
		return -ENAMETOOLONG;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		err = -errno;
		snprintf(msg, msglen,
			 "cannot create swap directory %s: %s (set swapdir to a writable directory)",
			 dir, strerror(errno));
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
		snprintf(msg, msglen,
			 "cannot create swap file %s: %s (set swapdir to a writable directory with room for %llu MiB)",
			 s->path, strerror(errno),
			 (unsigned long long)(bytes >> 20));
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
		snprintf(msg, msglen,
			 "swap directory %s cannot hold VM %s's %llu MiB swap file: %s (%llu MiB free; free space or set swapdir elsewhere)",
			 dir, vmname, (unsigned long long)(bytes >> 20),
			 strerror(err),
			 (unsigned long long)((uint64_t)vfs.f_bavail *
					      vfs.f_frsize >> 20));
	else
		snprintf(msg, msglen,
			 "swap directory %s cannot hold VM %s's %llu MiB swap file: %s",
			 dir, vmname, (unsigned long long)(bytes >> 20),
			 strerror(err));
	close(s->fd);
	s->fd = -1;
	return -err;
}

void mv__swap_close(struct mv__swap *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

int mv__swap_write(struct mv__swap *s, uint64_t slot, const void *page)
{
	off_t off = (off_t)(slot << MV_PAGE_SHIFT);
	ssize_t n;

	if (slot >= s->npages)
		return -EINVAL;
	do {
		n = mv__pwrite(s->fd, page, MV_PAGE_SIZE, off);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	/* a short write of one page means the disk is full */
	return n == MV_PAGE_SIZE ? 0 : -ENOSPC;
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

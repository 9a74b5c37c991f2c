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
 * created (ESX refuses to power on a VM whose swap file cannot be
 * created), so a full swap directory is an error at start, not a surprise
 * under pressure.  Free space is measured before: a preallocation that
 * fails partway (ext4 keeps what it got) is truncated away at once, and
 * the message gives the space that was free and the size needed.  Where
 * the filesystem cannot preallocate, the file is sparse and a full disk
 * shows up as a failed write.
 *
 * Failed writes: a write is tried MV_SWAP_WRITE_TRIES times (1 ms, then
 * 2 ms apart); if it still fails it is counted (write_errors) and the file
 * is paused for MV_SWAP_PAUSE_MS, doubling with each failure in a row up to
 * MV_SWAP_PAUSE_MAX_MS: while paused, mv__swap_put() fails at once without
 * I/O, so reclaim moves on (compression, other VMs) instead of retrying a
 * dead disk, and a disk that gets room again is used again.  The caller
 * keeps every page whose write failed.  Reads are retried by the fault
 * path (fault.c), which owns what the guest sees.
 *
 * The directory is checked before use: it must be a directory owned by us
 * or root, and if group or others may write to it, it must be sticky (as
 * /tmp is); anything else is refused with a message, since someone else
 * could then replace or read what we put there.  The file is created with
 * O_TMPFILE, so it never has a name: nobody can squat it, open it, or find
 * it after a crash.  Filesystems without O_TMPFILE get a name with 64
 * random bits, created O_EXCL | O_NOFOLLOW (never an existing file nor a
 * symlink) and unlinked as soon as it is open.  Everything is done
 * relative to the directory's descriptor, the one that was checked.  By
 * default the file is opened O_DIRECT so that swapped pages really leave
 * memory instead of moving to the page cache (where they would count
 * against nobody); filesystems that refuse O_DIRECT (tmpfs) get the page
 * cache.
 *
 * Closing the file discards it (mv__swap_discard): slots [0, hwm), every
 * slot ever written, are overwritten with zeros and flushed, then the whole
 * file is punched out, so guest plaintext does not stay in the disk's free
 * blocks after the VM is gone.  (A flash disk may still keep old copies of
 * remapped blocks; only encryption below the filesystem rules that out.)
 *
 * Invariants: a slot's bit is set from its allocation until its page is
 * read back (or dropped); its content is written and read only by the
 * holder of its page's pmap lock, so no two I/Os on one slot overlap.  A
 * short or failed write reports an error; the caller must then keep the
 * pages in memory and free the slots.  hwm never decreases.  Every system
 * call here goes through inject.h.
 *
 * Locks (order: internal.h): s->lock, a leaf, taken under pmap entry
 * locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"
#include "internal.h"
#include "util.h"

/* Attempts at a name that is not taken, when there is no O_TMPFILE */
#define NAME_TRIES 16
/* Zeros written per call by mv__swap_discard */
#define DISCARD_CHUNK (1u << 20)

/*
 * The directory must not let anyone else replace or read our files: owned
 * by us or root, and sticky if others may write to it.  0, or -errno with
 * the reason in msg.
 */
static int check_dir(int dirfd, const char *dir, char *msg, size_t msglen)
{
	struct stat st;

	if (fstat(dirfd, &st) < 0) {
		snprintf(msg, msglen, "cannot examine swap directory %s: %s",
			 dir, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(
			msg, msglen,
			"swap directory %s is not a directory (set swapdir to a writable directory)",
			dir);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(
			msg, msglen,
			"swap directory %s belongs to user %u, not to us (%u) nor root: refused, since its owner could read or replace the VMs' swapped memory (set swapdir to a directory of ours)",
			dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		snprintf(
			msg, msglen,
			"swap directory %s is writable by %s and not sticky (mode %04o): refused, since anyone who can write there could replace the VMs' swap files (chmod go-w or +t, or set swapdir elsewhere)",
			dir, st.st_mode & S_IWOTH ? "others" : "its group",
			(unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

static int open_unnamed(struct mv__swap *s, int dirfd, int flags)
{
	s->unnamed = true;
	return mv__openat(dirfd, ".", O_TMPFILE | flags, 0600);
}

/* A name nobody can guess, created O_EXCL | O_NOFOLLOW, then unlinked. */
static int open_named(struct mv__swap *s, int dirfd, const char *dir,
		      const char *vmname, int flags)
{
	char name[NAME_MAX + 1];
	uint64_t r;
	int fd = -1;

	s->unnamed = false;
	for (int i = 0; i < NAME_TRIES; i++) {
		if (getrandom(&r, sizeof(r), 0) != sizeof(r)) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			r = ((uint64_t)ts.tv_nsec << 32 ^ (uint64_t)ts.tv_sec ^
			     (uint64_t)getpid() << 16) *
			    0x9e3779b97f4a7c15ull;
		}
		snprintf(name, sizeof(name), "%.64s-%016llx.vswp", vmname,
			 (unsigned long long)r);
		fd = mv__openat(dirfd, name,
				O_CREAT | O_EXCL | O_NOFOLLOW | flags, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	snprintf(s->path, sizeof(s->path), "%s/%s", dir, name);
	if (fd >= 0)
		unlinkat(dirfd, name, 0);
	return fd;
}

static int open_file(struct mv__swap *s, int dirfd, const char *dir,
		     const char *vmname, bool direct)
{
	int flags = O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0), fd;

	fd = open_unnamed(s, dirfd, flags);
	/* EOPNOTSUPP, EISDIR, ENOENT: no O_TMPFILE in this filesystem or
	 * kernel; EINVAL may be O_DIRECT, which the caller handles */
	if (fd < 0 &&
	    (errno == EOPNOTSUPP || errno == EISDIR || errno == ENOENT))
		fd = open_named(s, dirfd, dir, vmname, flags);
	return fd;
}

static uint64_t free_bytes(int dirfd)
{
	struct statvfs vfs;

	if (fstatvfs(dirfd, &vfs) < 0)
		return UINT64_MAX;
	return (uint64_t)vfs.f_bavail * vfs.f_frsize;
}

int mv__swap_open(struct mv__swap *s, const char *dir, const char *vmname,
		  uint32_t vmid, uint64_t npages, bool direct, char *msg,
		  size_t msglen)
{
	uint64_t bytes = npages << MV_PAGE_SHIFT, before;
	int err, dirfd = -1;

	(void)vmid;
	s->fd = -1;
	s->npages = npages;
	s->sparse = false;
	s->unnamed = false;
	s->cursor = 0;
	s->used = 0;
	s->hwm = 0;
	s->pause_ms = MV_SWAP_PAUSE_MS;
	atomic_store(&s->paused_until, 0);
	atomic_store(&s->last_err, 0);
	atomic_store(&s->write_errors, 0);
	atomic_store(&s->write_retries, 0);
	s->map = mv__calloc((npages + 63) / 64, sizeof(uint64_t));
	if (!s->map)
		return -ENOMEM;
	pthread_mutex_init(&s->lock, NULL);
	if ((size_t)snprintf(s->path, sizeof(s->path),
			     "%s/(unnamed swap file of VM %s)", dir,
			     vmname) >= sizeof(s->path)) {
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
	dirfd = mv__openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC,
			   0);
	if (dirfd < 0) {
		err = -errno;
		snprintf(
			msg, msglen,
			"cannot open swap directory %s: %s (set swapdir to a writable directory)",
			dir, strerror(errno));
		mv__swap_close(s);
		return err;
	}
	err = check_dir(dirfd, dir, msg, msglen);
	if (err)
		goto out;
	s->fd = open_file(s, dirfd, dir, vmname, direct);
	if (s->fd < 0 && direct && errno == EINVAL) {
		/* tmpfs and some others refuse O_DIRECT: the page cache it is */
		direct = false;
		s->fd = open_file(s, dirfd, dir, vmname, false);
	}
	if (s->fd < 0) {
		err = -errno;
		snprintf(
			msg, msglen,
			"cannot create swap file in %s: %s (set swapdir to a writable directory with room for %llu MiB)",
			dir, strerror(errno),
			(unsigned long long)(bytes >> 20));
		goto out;
	}
	s->direct = direct;

	before = free_bytes(dirfd);
	if (mv__fallocate(s->fd, 0, (off_t)bytes) < 0) {
		err = errno;
		if (err != EOPNOTSUPP && err != ENOSYS) {
			/* ext4 keeps what it allocated before running out:
			 * give it back now, not when the file is closed */
			(void)!mv__ftruncate(s->fd, 0);
			goto fail;
		}
		if (mv__ftruncate(s->fd, (off_t)bytes) < 0) {
			err = errno;
			goto fail;
		}
		s->sparse = true;
	}
	err = 0;
	goto out;

fail:
	if (before != UINT64_MAX)
		snprintf(
			msg, msglen,
			"swap directory %s cannot hold VM %s's swap file: %s (it needs %llu MiB, %llu MiB were free; free space or set swapdir elsewhere)",
			dir, vmname, strerror(err),
			(unsigned long long)(bytes >> 20),
			(unsigned long long)(before >> 20));
	else
		snprintf(
			msg, msglen,
			"swap directory %s cannot hold VM %s's swap file: %s (it needs %llu MiB)",
			dir, vmname, strerror(err),
			(unsigned long long)(bytes >> 20));
	err = -err;
out:
	if (err)
		mv__swap_close(s);
	close(dirfd);
	return err;
}

int mv__swap_discard(struct mv__swap *s)
{
	uint64_t end, off = 0;
	size_t len;
	void *zeros;
	int err = 0;

	if (s->fd < 0)
		return 0;
	pthread_mutex_lock(&s->lock);
	end = s->hwm << MV_PAGE_SHIFT;
	pthread_mutex_unlock(&s->lock);
	zeros = end ? mv__aligned_alloc(MV_PAGE_SIZE, DISCARD_CHUNK) : NULL;
	if (end && !zeros)
		err = -ENOMEM;
	if (zeros)
		memset(zeros, 0, DISCARD_CHUNK);
	while (zeros && off < end) {
		len = end - off < DISCARD_CHUNK ? (size_t)(end - off) :
						  DISCARD_CHUNK;
		ssize_t w = mv__pwrite(s->fd, zeros, len, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = w < 0 ? -errno : -EIO;
			break;
		}
		off += (uint64_t)w;
	}
	free(zeros);
	if (end && mv__fdatasync(s->fd) < 0 && !err)
		err = -errno;
	if (mv__punch_hole(s->fd, 0, (off_t)(s->npages << MV_PAGE_SHIFT)) < 0 &&
	    errno != EOPNOTSUPP && !err)
		err = -errno;
	return err;
}

void mv__swap_close(struct mv__swap *s)
{
	if (s->fd >= 0) {
		mv__swap_discard(s);
		close(s->fd);
	}
	s->fd = -1;
	if (s->map) {
		free(s->map);
		s->map = NULL;
		pthread_mutex_destroy(&s->lock);
	}
}

/* The free slots of map word k as set bits, slots past the end used. */
static uint64_t free_bits(const struct mv__swap *s, uint64_t k)
{
	uint64_t x = ~s->map[k], base = k * 64;

	if (s->npages - base < 64)
		x &= (1ull << (s->npages - base)) - 1;
	return x;
}

/* A search for free slots: the run being walked, the longest yet. */
struct slot_search {
	uint64_t start, run, best, bestlen;
};

/*
 * Walks the free slots x of map word k (bit b: slot 64 k + b), a run of
 * free bits at a time (ctz, not bit by bit); a run that reaches bit 63
 * goes on into the next word.  True once a run of `want` is found.
 */
static bool scan_word(struct slot_search *r, uint64_t k, uint64_t x,
		      unsigned want)
{
	unsigned pos = 0, used, len;
	uint64_t y;

	while (pos < 64) {
		y = x >> pos;
		if (!y) {
			r->run = 0;
			return false;
		}
		used = (unsigned)__builtin_ctzll(y);
		if (used)
			r->run = 0;
		pos += used;
		y >>= used;
		len = ~y ? (unsigned)__builtin_ctzll(~y) : 64;
		if (!r->run)
			r->start = k * 64 + pos;
		r->run += len;
		if (r->run > r->bestlen) {
			r->best = r->start;
			r->bestlen = r->run;
		}
		if (r->bestlen >= want)
			return true;
		pos += len;
	}
	return false;
}

/*
 * The first run of `want` free slots from the cursor on (wrapping once to
 * the slots before it; runs do not wrap around the end), else the longest
 * run there is, the first of that length.  A word at a time: on a 384 MiB
 * VM's file (1,536 words) with its free slots scattered by random
 * swap-ins, the search that went bit by bit took 7% of the machine in a
 * swap-only run (docs/BENCHMARKS.md).
 */
unsigned mv__swap_alloc(struct mv__swap *s, unsigned want, uint64_t *slot)
{
	struct slot_search r = { 0 };
	uint64_t nwords = (s->npages + 63) / 64, k0, k, x, n;
	unsigned b0;
	bool found;

	if (!want)
		return 0;
	pthread_mutex_lock(&s->lock);
	k0 = s->cursor / 64;
	b0 = (unsigned)(s->cursor % 64);
	/* the cursor's word from the cursor on, ..., the last word, the
	 * first, ..., the cursor's word again below the cursor */
	found = scan_word(&r, k0, free_bits(s, k0) & (~0ull << b0), want);
	for (uint64_t i = 1; !found && i <= nwords; i++) {
		k = k0 + i < nwords ? k0 + i : k0 + i - nwords;
		if (!k)
			r.run = 0;
		x = free_bits(s, k);
		if (i == nwords)
			x &= (1ull << b0) - 1;
		found = scan_word(&r, k, x, want);
	}
	n = r.bestlen < want ? r.bestlen : want;
	for (uint64_t i = r.best; i < r.best + n; i++)
		s->map[i / 64] |= 1ull << (i % 64);
	s->used += n;
	if (n)
		s->cursor = r.best + n == s->npages ? 0 : r.best + n;
	pthread_mutex_unlock(&s->lock);
	*slot = r.best;
	return (unsigned)n;
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
	/* the slots may hold data from here on, even if the write fails */
	pthread_mutex_lock(&s->lock);
	if (slot + n > s->hwm)
		s->hwm = slot + n;
	pthread_mutex_unlock(&s->lock);
	do {
		w = mv__pwritev(s->fd, iov, (int)n, off);
	} while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	/* a short write means the disk is full: the caller keeps them all */
	return (size_t)w == (size_t)n << MV_PAGE_SHIFT ? 0 : -ENOSPC;
}

bool mv__swap_usable(struct mv__swap *s)
{
	uint64_t until = atomic_load(&s->paused_until);

	return !until || mv__now_ms() >= until;
}

/* A write failed all its tries: count it and pause the file. */
static void write_failed(struct mv__swap *s, int err)
{
	unsigned pause;

	atomic_fetch_add(&s->write_errors, 1);
	atomic_store(&s->last_err, err);
	pthread_mutex_lock(&s->lock);
	pause = s->pause_ms;
	s->pause_ms = pause * 2 < MV_SWAP_PAUSE_MAX_MS ? pause * 2 :
							 MV_SWAP_PAUSE_MAX_MS;
	pthread_mutex_unlock(&s->lock);
	atomic_store(&s->paused_until, mv__now_ms() + pause);
}

static void write_worked(struct mv__swap *s)
{
	if (!atomic_load_explicit(&s->paused_until, memory_order_relaxed))
		return;
	pthread_mutex_lock(&s->lock);
	s->pause_ms = MV_SWAP_PAUSE_MS;
	pthread_mutex_unlock(&s->lock);
	atomic_store(&s->paused_until, 0);
}

/* One write, tried MV_SWAP_WRITE_TRIES times. */
static int write_tries(struct mv__swap *s, uint64_t slot,
		       const struct iovec *iov, unsigned n)
{
	struct timespec ts;
	int err = 0;

	for (int t = 0; t < MV_SWAP_WRITE_TRIES; t++) {
		if (t) {
			atomic_fetch_add(&s->write_retries, 1);
			ts = (struct timespec){ 0, 1000000L << (t - 1) };
			nanosleep(&ts, NULL);
		}
		err = mv__swap_writev(s, slot, iov, n);
		if (!err) {
			write_worked(s);
			return 0;
		}
		if (err == -EINVAL)
			break; /* a bug, not the disk: no use trying again */
	}
	write_failed(s, err);
	return err;
}

unsigned mv__swap_put(struct mv__swap *s, const struct iovec *iov, unsigned n,
		      uint64_t *slots, int *err)
{
	unsigned done = 0, run;
	uint64_t slot;

	*err = 0;
	if (!mv__swap_usable(s)) {
		*err = atomic_load(&s->last_err);
		if (!*err)
			*err = -EIO;
		return 0;
	}
	while (done < n) {
		run = mv__swap_alloc(s, n - done, &slot);
		if (!run) {
			*err = -ENOSPC; /* cannot happen: as many slots as pages */
			break;
		}
		*err = write_tries(s, slot, iov + done, run);
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

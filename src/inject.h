/* SPDX-License-Identifier: MIT */
/*
 * inject.h - the engine's I/O and allocation calls, with failures that tests
 * can schedule (SQLite's habit): "make the 3rd pwrite from now fail with
 * ENOSPC", so that every error path runs and is shown to lose nothing.
 */
#ifndef MV_INJECT_H
#define MV_INJECT_H

#include <sched.h>
#include <stddef.h>
#include <stdbool.h>
#include <sys/types.h>

enum mv__inject_op {
	MV_INJ_PREAD,
	MV_INJ_PWRITE,
	MV_INJ_FALLOCATE,
	MV_INJ_ALLOC,
	MV_INJ_UFFD_COPY,
	MV_INJ_MREMAP,
	MV_INJ_MOVE_MISCOUNT,
	MV_INJ_UFFD_WP,
	MV_INJ_MMAP,
	MV_INJ_SHARE_REGISTER, /* share_cow.c: re-registering a remapped page */
	MV_INJ_SHARE_PAGEMAP, /* share_merge.c: reading /proc/self/pagemap */
	MV_INJ_SHARE_POPULATE, /* share_cow.c: MADV_POPULATE_WRITE (in place) */
	MV_INJ_SHARE_MADVISE, /* share_*.c: other madvise/fallocate calls */
	MV_INJ_UFFD_MOVE, /* UFFDIO_MOVE refused before it moves anything */
	MV_INJ_MADVISE,
	MV_INJ_PROCESS_MADVISE,
	MV_INJ_PAGEMAP, /* a read of /proc/self/pagemap by reclaim */
	MV_INJ_MINCORE,
	MV_INJ_OPEN, /* mv__openat */
	MV_INJ_FTRUNCATE,
	MV_INJ_PUNCH, /* fallocate(PUNCH_HOLE) */
	MV_INJ_FSYNC, /* fdatasync */
	MV_INJ_UFFD_POISON,
	MV_INJ_UFFD_ZEROPAGE, /* fault.c: a read of a ZERO page */
	MV_INJ_LPAGE, /* system.c: a large-page collapse or split */
	/* a UFFDIO_MOVE of 3 pages or more moves all but its second page and
	 * reports one page moved: pages past the count were moved (strays) */
	MV_INJ_MOVE_HOLE,
	MV_INJ_AFFINITY, /* affinity.c: sched_getaffinity, sched_setaffinity */
	MV_INJ_PAGEMAP_SCAN, /* zero_open.c: the PAGEMAP_SCAN ioctl */
	MV_INJ_NOPS
};

/* The nth call of op from now (1 = the next) and the count-1 after it fail
 * with err.  count 0 means every call from the nth on. */
void mv__inject_fail(enum mv__inject_op op, unsigned nth, unsigned count,
		     int err);
/* Calls of op that have failed by injection since the last reset. */
unsigned mv__inject_hits(enum mv__inject_op op);
void mv__inject_reset(void);
/* Pretend the kernel's userfaultfd lacks these feature bits (0: none). */
void mv__inject_uffd_features_missing(unsigned long long features);
unsigned long long mv__inject_get_uffd_features_missing(void);
/* Pretend vm.max_map_count is this (0: read the real one). */
void mv__inject_max_map_count(long value);
long mv__inject_get_max_map_count(void);

/* Page hashes for sharing are ANDed with mask (reset: all ones); 0 makes
 * every page collide with every other. */
void mv__inject_hash_mask(unsigned long long mask);
unsigned long long mv__inject_get_hash_mask(void);

/* The next call of op waits inside the wrapper, before the call, until
 * mv__inject_resume() (or 10 s; max_ms with _for); mv__inject_paused()
 * says whether a thread waits there now. */
void mv__inject_pause(enum mv__inject_op op);
void mv__inject_pause_for(enum mv__inject_op op, unsigned max_ms);
bool mv__inject_paused(void);
void mv__inject_resume(void);

/* For calls wrapped at their call site: the errno the next call of op must
 * fail with (counted as a hit), or 0 to let it through. */
int mv__inject_check(enum mv__inject_op op);

ssize_t mv__pread(int fd, void *buf, size_t len, off_t off);
ssize_t mv__pwrite(int fd, const void *buf, size_t len, off_t off);
struct iovec;
/* pwrite(2) from guest memory that is write-protected meanwhile, by the
 * system call itself: ThreadSanitizer's pwrite() would check the buffer
 * against the guest's earlier stores and report the race that the
 * protection rules out.  Fails as MV_INJ_PWRITE. */
ssize_t mv__pwrite_guest(int fd, const void *buf, size_t len, off_t off);
ssize_t mv__pwritev(int fd, const struct iovec *iov, int n, off_t off);
int mv__fallocate(int fd, off_t off, off_t len);
/* An injected MV_INJ_FALLOCATE failure first allocates this many bytes for
 * real (0: none), as a filesystem that runs out partway through does. */
void mv__inject_fallocate_partial(off_t bytes);
/* openat(2); 0 <= fd or -1 and errno. */
int mv__openat(int dirfd, const char *path, int flags, unsigned mode);
int mv__ftruncate(int fd, off_t len);
/* fallocate(PUNCH_HOLE | KEEP_SIZE): the blocks go back to the filesystem */
int mv__punch_hole(int fd, off_t off, off_t len);
int mv__fdatasync(int fd);
/* UFFDIO_POISON of a range, without waking its waiters (the caller wakes
 * them once it has said why): a touch of it raises SIGBUS, as a memory
 * error would.  0 or -errno. */
int mv__uffd_poison(int uffd, void *addr, size_t len);
/*
 * UFFDIO_COPY.  An injected failure is the kernel giving up partway through
 * a run: a copy of more than one page copies its first page for real and
 * reports that partial copy (-EAGAIN, .copy = 4096); the same thread's next
 * copy then fails with err.  A one-page copy just fails with err.
 */
struct uffdio_copy;
int mv__uffd_copy(int uffd, struct uffdio_copy *c);
struct uffdio_move;
/* UFFDIO_MOVE; MV_INJ_MOVE_MISCOUNT makes a move that succeeded report
 * failure with nothing moved (err is the errno), as a kernel that
 * miscounts would; MV_INJ_UFFD_MOVE makes it fail with nothing moved
 * (m->move = -err), as a kernel that refuses it would. */
int mv__uffd_move(int uffd, struct uffdio_move *m);
/* UFFDIO_WRITEPROTECT of a range with the kernel's mode bits
 * (UFFDIO_WRITEPROTECT_MODE_WP to protect, 0 to lift the protection and
 * wake the range's waiters, MODE_DONTWAKE to lift it only).  0 or -errno. */
int mv__uffd_wp(int uffd, void *addr, size_t len, unsigned long long mode);
/*
 * mmap(MAP_FIXED | MAP_PRIVATE) of fd at off over guest memory the guest is
 * using, through the raw system call: the kernel orders the new mapping
 * with the guest's accesses (a guest thread touching it faults and waits),
 * which ThreadSanitizer cannot see, and its mmap wrapper would take the
 * guest's next access for a race with a write made by mmap.  0, or -1 and
 * errno, with the old mapping in place (MV_INJ_MMAP fails that way).
 */
int mv__map_fixed(void *addr, size_t len, int fd, unsigned long long off);
/* pread(2) of /proc/self/pagemap; fails as MV_INJ_PAGEMAP. */
ssize_t mv__pagemap_read(int fd, void *buf, size_t len, off_t off);
/* ioctl(fd, PAGEMAP_SCAN, arg) (uffd.h): regions filled, or -1 and errno;
 * fails as MV_INJ_PAGEMAP_SCAN. */
struct mv__pm_scan_arg;
long mv__pagemap_scan(int fd, struct mv__pm_scan_arg *arg);
/* mincore(2): 0 or -errno. */
int mv__mincore(void *addr, size_t len, unsigned char *vec);
/* madvise(2): 0 or -errno. */
int mv__madvise(void *addr, size_t len, int advice);
/* process_madvise(2) of this process: bytes advised, or -1 and errno. */
ssize_t mv__process_madvise(const struct iovec *iov, size_t n, int advice);
/* The CPU affinity of thread tid, and the calling thread's: 0 or -errno */
int mv__sched_getaffinity(pid_t tid, cpu_set_t *cpus);
int mv__thread_setaffinity(const cpu_set_t *cpus);
void *mv__calloc(size_t n, size_t size);
/* mremap(MREMAP_MAYMOVE | MREMAP_FIXED) of len bytes from old to new. */
int mv__mremap_fixed(void *old, void *new_addr, size_t len);
void *mv__aligned_alloc(size_t align, size_t size);

#endif /* MV_INJECT_H */

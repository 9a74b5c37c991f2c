// SPDX-License-Identifier: MIT
/*
 * inject.c - failure injection around the engine's system calls and
 * allocations.
 *
 * Design: one slot per operation holds a countdown to the first failure, the
 * number of failures left, and the errno to fail with.  When no failure is
 * armed (always, outside tests) a call costs one relaxed atomic load more
 * than the system call itself.
 *
 * Invariants: a failed call has no side effect (it never reaches the
 * kernel), so a caller that handles the error correctly loses nothing;
 * the exceptions, UFFDIO_COPY's partial copy and fallocate's partial
 * allocation (when asked for), are what the kernel itself does, so callers
 * must survive them anyway.
 *
 * Locks: none but pause_lock (tests only, a leaf); slots are atomics.  Arming while calls run from other
 * threads is allowed: which concurrent call fails is then up to the race,
 * and hits say how many did.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "inject.h"
#include "uffd.h"

struct inject_slot {
	_Atomic int armed; /* fast check: 0 when nothing scheduled */
	_Atomic long countdown; /* calls left before the first failure */
	_Atomic long remaining; /* failures left; < 0 means unlimited */
	_Atomic int err; /* errno to fail with */
	_Atomic unsigned hits; /* injected failures so far */
};

static struct inject_slot slots[MV_INJ_NOPS];
static _Atomic long fake_max_map_count;
static _Atomic unsigned long long fake_uffd_missing;
static _Atomic unsigned long long hash_mask = ~0ull;
static _Atomic long long fallocate_partial;
/* errno the next UFFDIO_COPY of this thread fails with, after a partial one */
static _Thread_local int copy_fails_next;

void mv__inject_fail(enum mv__inject_op op, unsigned nth, unsigned count,
		     int err)
{
	struct inject_slot *s = &slots[op];

	atomic_store(&s->err, err);
	atomic_store(&s->countdown, nth > 0 ? (long)nth - 1 : 0);
	atomic_store(&s->remaining, count ? (long)count : -1);
	atomic_store(&s->armed, 1);
}

unsigned mv__inject_hits(enum mv__inject_op op)
{
	return atomic_load(&slots[op].hits);
}

void mv__inject_reset(void)
{
	for (int i = 0; i < MV_INJ_NOPS; i++) {
		atomic_store(&slots[i].armed, 0);
		atomic_store(&slots[i].hits, 0);
	}
	atomic_store(&fake_max_map_count, 0);
	atomic_store(&fake_uffd_missing, 0);
	atomic_store(&hash_mask, ~0ull);
	atomic_store(&fallocate_partial, 0);
	mv__inject_resume();
}

void mv__inject_fallocate_partial(off_t bytes)
{
	atomic_store(&fallocate_partial, (long long)bytes);
}

void mv__inject_hash_mask(unsigned long long mask)
{
	atomic_store(&hash_mask, mask);
}

unsigned long long mv__inject_get_hash_mask(void)
{
	return atomic_load_explicit(&hash_mask, memory_order_relaxed);
}

void mv__inject_uffd_features_missing(unsigned long long features)
{
	atomic_store(&fake_uffd_missing, features);
}

unsigned long long mv__inject_get_uffd_features_missing(void)
{
	return atomic_load(&fake_uffd_missing);
}

void mv__inject_max_map_count(long value)
{
	atomic_store(&fake_max_map_count, value);
}

long mv__inject_get_max_map_count(void)
{
	return atomic_load(&fake_max_map_count);
}

/* Returns the errno this call must fail with, or 0 to let it through. */
/*
 * A pause: the next call of pause_op waits (at most pause_max_ms, 10 s
 * unless the test chose) until the test resumes it, so that a test can
 * look at the engine while a thread is inside that call (which locks it
 * holds there).
 */
#define PAUSE_MAX_MS 10000u
static pthread_mutex_t pause_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pause_cond = PTHREAD_COND_INITIALIZER;
static _Atomic int pause_op = -1;
static _Atomic unsigned pause_max_ms = PAUSE_MAX_MS;
static unsigned pause_waiting;
static bool pause_resumed;

void mv__inject_pause_for(enum mv__inject_op op, unsigned max_ms)
{
	pthread_mutex_lock(&pause_lock);
	pause_resumed = false;
	pthread_mutex_unlock(&pause_lock);
	atomic_store(&pause_max_ms, max_ms);
	atomic_store(&pause_op, (int)op);
}

void mv__inject_pause(enum mv__inject_op op)
{
	mv__inject_pause_for(op, PAUSE_MAX_MS);
}

bool mv__inject_paused(void)
{
	bool p;

	pthread_mutex_lock(&pause_lock);
	p = pause_waiting > 0;
	pthread_mutex_unlock(&pause_lock);
	return p;
}

void mv__inject_resume(void)
{
	atomic_store(&pause_op, -1);
	pthread_mutex_lock(&pause_lock);
	pause_resumed = true;
	pthread_cond_broadcast(&pause_cond);
	pthread_mutex_unlock(&pause_lock);
}

static void maybe_pause(enum mv__inject_op op)
{
	int want = (int)op;
	struct timespec ts;
	unsigned ms;

	if (atomic_load_explicit(&pause_op, memory_order_relaxed) != want ||
	    !atomic_compare_exchange_strong(&pause_op, &want, -1))
		return;
	ms = atomic_load(&pause_max_ms);
	clock_gettime(CLOCK_REALTIME, &ts); /* pause_cond's clock */
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&pause_lock);
	pause_waiting++;
	while (!pause_resumed &&
	       pthread_cond_timedwait(&pause_cond, &pause_lock, &ts) == 0)
		;
	pause_waiting--;
	pthread_mutex_unlock(&pause_lock);
}

static int should_fail(enum mv__inject_op op)
{
	struct inject_slot *s = &slots[op];
	long left;

	maybe_pause(op);
	if (!atomic_load_explicit(&s->armed, memory_order_relaxed))
		return 0;
	if (atomic_fetch_sub(&s->countdown, 1) > 0)
		return 0;
	left = atomic_load(&s->remaining);
	if (left == 0)
		return 0;
	if (left > 0 && atomic_fetch_sub(&s->remaining, 1) <= 0)
		return 0;
	atomic_fetch_add(&s->hits, 1);
	return atomic_load(&s->err);
}

int mv__inject_check(enum mv__inject_op op)
{
	return should_fail(op);
}

int mv__mremap_fixed(void *old, void *new_addr, size_t len)
{
	int err = should_fail(MV_INJ_MREMAP);

	if (err) {
		errno = err;
		return -1;
	}
	return mremap(old, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, new_addr) ==
			       MAP_FAILED ?
		       -1 :
		       0;
}

ssize_t mv__pread(int fd, void *buf, size_t len, off_t off)
{
	int err = should_fail(MV_INJ_PREAD);

	if (err) {
		errno = err;
		return -1;
	}
	return pread(fd, buf, len, off);
}

ssize_t mv__pwrite(int fd, const void *buf, size_t len, off_t off)
{
	int err = should_fail(MV_INJ_PWRITE);

	if (err) {
		errno = err;
		return -1;
	}
	return pwrite(fd, buf, len, off);
}

ssize_t mv__pwrite_guest(int fd, const void *buf, size_t len, off_t off)
{
	int err = should_fail(MV_INJ_PWRITE);

	if (err) {
		errno = err;
		return -1;
	}
	return syscall(SYS_pwrite64, fd, buf, len, off);
}

ssize_t mv__pwritev(int fd, const struct iovec *iov, int n, off_t off)
{
	int err = should_fail(MV_INJ_PWRITE);

	if (err) {
		errno = err;
		return -1;
	}
	return pwritev(fd, iov, n, off);
}

int mv__fallocate(int fd, off_t off, off_t len)
{
	int err = should_fail(MV_INJ_FALLOCATE);
	off_t part;

	if (err) {
		part = (off_t)atomic_load(&fallocate_partial);
		if (part > 0)
			(void)!fallocate(fd, 0, off, part < len ? part : len);
		errno = err;
		return -1;
	}
	return fallocate(fd, 0, off, len);
}

int mv__openat(int dirfd, const char *path, int flags, unsigned mode)
{
	int err = should_fail(MV_INJ_OPEN);

	if (err) {
		errno = err;
		return -1;
	}
	return openat(dirfd, path, flags, (mode_t)mode);
}

int mv__ftruncate(int fd, off_t len)
{
	int err = should_fail(MV_INJ_FTRUNCATE);

	if (err) {
		errno = err;
		return -1;
	}
	return ftruncate(fd, len);
}

int mv__punch_hole(int fd, off_t off, off_t len)
{
	int err = should_fail(MV_INJ_PUNCH);

	if (err) {
		errno = err;
		return -1;
	}
	return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off,
			 len);
}

int mv__fdatasync(int fd)
{
	int err = should_fail(MV_INJ_FSYNC);

	if (err) {
		errno = err;
		return -1;
	}
	return fdatasync(fd);
}

int mv__uffd_poison(int uffd, void *addr, size_t len)
{
	struct uffdio_poison p = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_POISON_MODE_DONTWAKE,
	};
	int err = should_fail(MV_INJ_UFFD_POISON);

	if (err)
		return -err;
	return ioctl(uffd, UFFDIO_POISON, &p) < 0 ? -errno : 0;
}

int mv__map_fixed(void *addr, size_t len, int fd, unsigned long long off)
{
	int err = should_fail(MV_INJ_MMAP);
	long r;

	if (err) {
		errno = err;
		return -1;
	}
	r = syscall(SYS_mmap, addr, len, PROT_READ | PROT_WRITE,
		    MAP_FIXED | MAP_PRIVATE, fd, (long)off);
	return r == -1 ? -1 : 0;
}

int mv__uffd_wp(int uffd, void *addr, size_t len, unsigned long long mode)
{
	struct uffdio_writeprotect w = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = mode,
	};
	int err = should_fail(MV_INJ_UFFD_WP);

	if (err)
		return -err;
	return ioctl(uffd, UFFDIO_WRITEPROTECT, &w) < 0 ? -errno : 0;
}

/* The page size of the moves MV_INJ_MOVE_HOLE makes */
#define INJECT_PAGE 4096u

int mv__uffd_move(int uffd, struct uffdio_move *m)
{
	int err = should_fail(MV_INJ_UFFD_MOVE);

	if (err) {
		m->move = -err;
		errno = err;
		return -1;
	}
	if (m->len >= 3 * INJECT_PAGE &&
	    (err = should_fail(MV_INJ_MOVE_HOLE))) {
		/* the first page and the third on, one by one; the second
		 * stays where it was */
		for (__u64 off = 0; off < m->len; off += INJECT_PAGE) {
			struct uffdio_move one = { .dst = m->dst + off,
						   .src = m->src + off,
						   .len = INJECT_PAGE };

			if (off != INJECT_PAGE)
				ioctl(uffd, UFFDIO_MOVE, &one);
		}
		m->move = INJECT_PAGE;
		errno = err;
		return -1;
	}
	if (ioctl(uffd, UFFDIO_MOVE, m) < 0)
		return -1;
	err = should_fail(MV_INJ_MOVE_MISCOUNT);
	if (!err)
		return 0;
	m->move = 0;
	errno = err;
	return -1;
}

int mv__uffd_copy(int uffd, struct uffdio_copy *c)
{
	int err = copy_fails_next, partial = !err;
	struct uffdio_copy first;

	copy_fails_next = 0;
	if (!err)
		err = should_fail(MV_INJ_UFFD_COPY);
	if (!err)
		return ioctl(uffd, UFFDIO_COPY, c);
	if (partial && c->len > (uint64_t)sysconf(_SC_PAGESIZE)) {
		first = *c;
		first.len = (uint64_t)sysconf(_SC_PAGESIZE);
		if (ioctl(uffd, UFFDIO_COPY, &first) < 0) {
			c->copy = first.copy;
			return -1;
		}
		c->copy = first.copy;
		copy_fails_next = err;
		errno = EAGAIN;
		return -1;
	}
	c->copy = -err;
	errno = err;
	return -1;
}

ssize_t mv__pagemap_read(int fd, void *buf, size_t len, off_t off)
{
	int err = should_fail(MV_INJ_PAGEMAP);

	if (err) {
		errno = err;
		return -1;
	}
	return pread(fd, buf, len, off);
}

long mv__pagemap_scan(int fd, struct mv__pm_scan_arg *arg)
{
	int err = should_fail(MV_INJ_PAGEMAP_SCAN);

	if (err) {
		errno = err;
		return -1;
	}
	return ioctl(fd, MV_PAGEMAP_SCAN, arg);
}

int mv__mincore(void *addr, size_t len, unsigned char *vec)
{
	int err = should_fail(MV_INJ_MINCORE);

	if (err)
		return -err;
	return mincore(addr, len, vec) < 0 ? -errno : 0;
}

int mv__madvise(void *addr, size_t len, int advice)
{
	int err = should_fail(MV_INJ_MADVISE);

	if (err)
		return -err;
	return madvise(addr, len, advice) < 0 ? -errno : 0;
}

/* Linux 6.13's name for "the calling process" where a pidfd is expected. */
#ifndef PIDFD_SELF_THREAD_GROUP
#define PIDFD_SELF_THREAD_GROUP -10001
#endif

int mv__sched_getaffinity(pid_t tid, cpu_set_t *cpus)
{
	int err = should_fail(MV_INJ_AFFINITY);

	if (err)
		return -err;
	return sched_getaffinity(tid, sizeof(*cpus), cpus) < 0 ? -errno : 0;
}

int mv__thread_setaffinity(const cpu_set_t *cpus)
{
	int err = should_fail(MV_INJ_AFFINITY);

	if (err)
		return -err;
	return sched_setaffinity(0, sizeof(*cpus), cpus) < 0 ? -errno : 0;
}

ssize_t mv__process_madvise(const struct iovec *iov, size_t n, int advice)
{
	int err = should_fail(MV_INJ_PROCESS_MADVISE);

	if (err) {
		errno = err;
		return -1;
	}
	return syscall(SYS_process_madvise, PIDFD_SELF_THREAD_GROUP, iov, n,
		       advice, 0u);
}

void *mv__calloc(size_t n, size_t size)
{
	int err = should_fail(MV_INJ_ALLOC);

	if (err) {
		errno = err;
		return NULL;
	}
	return calloc(n, size);
}

void *mv__aligned_alloc(size_t align, size_t size)
{
	int err = should_fail(MV_INJ_ALLOC);

	if (err) {
		errno = err;
		return NULL;
	}
	return aligned_alloc(align, size);
}

// SPDX-License-Identifier: MIT
/*
 * system.c - the kernel interfaces: what memvisor needs from the kernel,
 * checked before it is needed with a sentence saying how to fix what is
 * missing (userfaultfd and its features, vm.max_map_count), and the calls
 * every mechanism makes on its mappings (userfaultfd registration,
 * anonymous mappings kept to 4 KiB pages but 2 MiB aligned, MADV_DONTNEED
 * of many ranges with one TLB flush), and the collapse and split of a 2 MiB
 * large page (docs/LARGEPAGES.md).  Platform layer: calls nothing of the engine but
 * the failure-injection wrappers (inject.c).
 *
 * Design: userfaultfd is opened through the syscall (as root, or with
 * vm.unprivileged_userfaultfd=1) and asked for UFFD_FEATURE_MOVE, which
 * reclaim uses to take a page out of a running guest atomically (Linux 6.8
 * and later).  Every mapping costs VMAs against vm.max_map_count; a VM needs
 * a handful now, and page sharing will need about two per shared page, so
 * the count in use is compared with the limit before each VM is created.
 *
 * Locks: none.
 */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "inject.h"
#include "internal.h"
#include "uffd.h"

#define UFFD_FEATURES_NEEDED \
	(UFFD_FEATURE_MOVE | UFFD_FEATURE_WP_HUGETLBFS_SHMEM)
/* Mappings left free for the process's own use beyond what we ask for. */
#define MAP_COUNT_SLACK MV_MAP_COUNT_SLACK

int mv__uffd_open(int *fd, char *msg, size_t msglen)
{
	/* THREAD_ID (Linux 4.14, so always there with MOVE): the faulting
	 * thread's id, which affinity.c follows */
	struct uffdio_api api = { .api = UFFD_API,
				  .features = UFFD_FEATURES_NEEDED |
					      UFFD_FEATURE_THREAD_ID };
	int err;

	*fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (*fd < 0) {
		err = errno;
		if (err == EPERM)
			snprintf(
				msg, msglen,
				"userfaultfd is not permitted: run as root, or set sysctl vm.unprivileged_userfaultfd=1");
		else
			snprintf(
				msg, msglen,
				"this kernel has no userfaultfd (%s): memvisor needs Linux 6.8 or later built with CONFIG_USERFAULTFD",
				strerror(err));
		return err == EPERM ? -EPERM : -ENOSYS;
	}
	if (ioctl(*fd, UFFDIO_API, &api) < 0)
		api.features = 0;
	api.features &= ~(__u64)mv__inject_get_uffd_features_missing();
	if ((api.features & UFFD_FEATURES_NEEDED) != UFFD_FEATURES_NEEDED) {
		snprintf(
			msg, msglen,
			"this kernel's userfaultfd lacks UFFDIO_MOVE (features %#llx): memvisor needs Linux 6.8 or later",
			(unsigned long long)api.features);
		close(*fd);
		*fd = -1;
		return -ENOSYS;
	}
	return 0;
}

static long read_max_map_count(void)
{
	long v = mv__inject_get_max_map_count();
	FILE *f;

	if (v > 0)
		return v;
	f = fopen("/proc/sys/vm/max_map_count", "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

static _Atomic unsigned long maps_reads;

/* Lines of /proc/self/maps, read in large blocks (one line per mapping:
 * tens of thousands near the limit). */
static long count_maps(void)
{
	char buf[65536];
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	long n = 0;
	ssize_t got;

	if (fd < 0)
		return -1;
	atomic_fetch_add_explicit(&maps_reads, 1, memory_order_relaxed);
	while ((got = read(fd, buf, sizeof(buf))) > 0)
		for (char *p = buf;
		     (p = memchr(p, '\n', (size_t)(buf + got - p))); p++)
			n++;
	close(fd);
	return got < 0 ? -1 : n;
}

unsigned long mv__map_count_reads(void)
{
	return atomic_load_explicit(&maps_reads, memory_order_relaxed);
}

int mv__map_count(long *used, long *max)
{
	*max = read_max_map_count();
	*used = count_maps();
	return *max < 0 || *used < 0 ? -ENOENT : 0;
}

int mv__check_map_count(unsigned extra_maps, char *msg, size_t msglen)
{
	long max = read_max_map_count(), used = count_maps();

	if (max < 0 || used < 0)
		return 0; /* no procfs: nothing to check against */
	if (used + (long)extra_maps + MAP_COUNT_SLACK <= max)
		return 0;
	snprintf(
		msg, msglen,
		"vm.max_map_count is %ld and %ld mappings are in use; memvisor needs %u more: raise it, e.g. sysctl -w vm.max_map_count=%ld",
		max, used, extra_maps + MAP_COUNT_SLACK,
		(used + extra_maps + MAP_COUNT_SLACK) * 2 > 262144 ?
			(used + extra_maps + MAP_COUNT_SLACK) * 2 :
			262144);
	return -ENOMEM;
}

int mv_check_system(char *msg, size_t msglen)
{
	int fd, err;

	if (msglen)
		msg[0] = '\0';
	err = mv__uffd_open(&fd, msg, msglen);
	if (err)
		return err;
	close(fd);
	return mv__check_map_count(64, msg, msglen);
}

int mv__uffd_register(int uffd, void *addr, size_t len, bool wp)
{
	struct uffdio_register r = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING |
			(wp ? UFFDIO_REGISTER_MODE_WP : 0),
	};

	return ioctl(uffd, UFFDIO_REGISTER, &r) < 0 ? -errno : 0;
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1; Debian 12's headers lack it */
#endif
#define HUGE_BYTES ((size_t)MV_LPAGE_PAGES << MV_PAGE_SHIFT)

int mv__map_anon(size_t len, uint8_t **out)
{
	/* 2 MiB aligned when it can hold a 2 MiB page, so that its aligned
	 * regions can become large pages (lpage.c) */
	size_t extra = len >= HUGE_BYTES ? HUGE_BYTES : 0;
	uint8_t *p = mmap(NULL, len + extra, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint8_t *a;
	int err;

	if (p == MAP_FAILED)
		return -errno;
	a = p;
	if (extra) {
		a = (uint8_t *)(((uintptr_t)p + HUGE_BYTES - 1) &
				~(uintptr_t)(HUGE_BYTES - 1));
		if (a > p)
			munmap(p, (size_t)(a - p));
		if (p + extra > a)
			munmap(a + len, (size_t)(p + extra - a));
	}
	/* THP would fill 512 pages on one fault, behind the pmap's back, and
	 * khugepaged would collapse ranges on its own: a mapping that cannot
	 * be kept to 4 KiB pages is not used; large pages are made only by
	 * mv__lpage_sys_collapse, region by region */
	err = mv__madvise(a, len, MADV_NOHUGEPAGE);
	if (err) {
		munmap(a, len);
		return err;
	}
	*out = a;
	return 0;
}

/*
 * MADV_COLLAPSE refuses a MADV_NOHUGEPAGE mapping, and a MADV_HUGEPAGE one
 * would be khugepaged's to collapse whenever it likes; so the region alone
 * is MADV_HUGEPAGE for the length of the collapse, and MADV_NOHUGEPAGE
 * again after it (the mapping splits around it and merges back: measured,
 * no mapping is left over).  The flag is not looked at while a huge page
 * exists, only when one is made.
 */
int mv__lpage_sys_collapse(void *addr)
{
	int err = mv__inject_check(MV_INJ_LPAGE);

	if (err)
		return -err;
	if (madvise(addr, HUGE_BYTES, MADV_HUGEPAGE) < 0)
		return -errno;
	err = madvise(addr, HUGE_BYTES, MADV_COLLAPSE) < 0 ? -errno : 0;
	/* cannot fail for want of a mapping: it merges, never splits; if it
	 * does fail, mv__lpage_sys_split sets it again */
	madvise(addr, HUGE_BYTES, MADV_NOHUGEPAGE);
	return err;
}

/*
 * MADV_COLD of the first 4 KiB page of the huge page: the kernel splits a
 * large folio only partly covered by the range into small pages, all still
 * mapped, the content kept (a write meanwhile waits on a migration entry
 * and lands); it only moves the page on the inactive list otherwise.  The
 * region is set MADV_NOHUGEPAGE first, in case a collapse could not.
 */
int mv__lpage_sys_split(void *addr)
{
	int err = mv__inject_check(MV_INJ_LPAGE);

	if (err)
		return -err;
	madvise(addr, HUGE_BYTES, MADV_NOHUGEPAGE);
	return madvise(addr, MV_PAGE_SIZE, MADV_COLD) < 0 ? -errno : 0;
}

/*
 * Asks the kernel to drop the frames of all ranges in one process_madvise()
 * on this process, which flushes the TLB once for all of them (Linux 6.16
 * and later; MADV_DONTNEED through process_madvise and PIDFD_SELF are 6.13
 * and later).  Measured here: a lone 4 KiB MADV_DONTNEED of a present page
 * costs ~75 us, almost all of it the TLB flush of this virtual machine;
 * 256 scattered pages in one call cost 13-33 us a page.  Returns how many
 * ranges, from the first, were dropped whole: the caller drops the rest
 * with madvise(), which is what a kernel without this gets every time.
 * A kernel without the call says so on the first: ENOSYS, or EINVAL,
 * EBADF or EPERM (no MADV_DONTNEED or PIDFD_SELF there) before any call
 * worked; then it is not tried again.  Once one worked, an error is the
 * call's own (a range the kernel refused, memory short) and the next
 * call tries again.
 */
unsigned mv__dontneed_batch(struct iovec *iov, unsigned n)
{
	static atomic_bool unsupported, worked;
	unsigned done = 0;
	ssize_t got;

	if (n < 2 || atomic_load_explicit(&unsupported, memory_order_relaxed))
		return 0;
	got = mv__process_madvise(iov, (size_t)n, MADV_DONTNEED);
	if (got < 0) {
		if (errno == ENOSYS ||
		    ((errno == EINVAL || errno == EBADF || errno == EPERM) &&
		     !atomic_load_explicit(&worked, memory_order_relaxed)))
			atomic_store_explicit(&unsupported, true,
					      memory_order_relaxed);
		return 0;
	}
	atomic_store_explicit(&worked, true, memory_order_relaxed);
	while (done < n && (size_t)got >= iov[done].iov_len)
		got -= (ssize_t)iov[done++].iov_len;
	return done;
}

/* SPDX-License-Identifier: MIT */
/*
 * uffd.h - userfaultfd constants newer than Debian 12's kernel headers.
 *
 * The running kernel (6.18 here) has them; the headers (6.1) do not.  The
 * values are the kernel's ABI and never change once released.
 */
#ifndef MV_UFFD_H
#define MV_UFFD_H

#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif

#ifndef UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
struct uffdio_move {
	__u64 dst;
	__u64 src;
	__u64 len;
	__u64 mode;
	__s64 move; /* bytes moved, or -errno */
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif

#ifndef UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated; /* bytes poisoned, or -errno */
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

/*
 * PAGEMAP_SCAN (Linux 6.7) on /proc/self/pagemap, under names of our own
 * so that newer headers defining the originals do not clash.  Only its
 * read-only use: which pages of a range map the kernel's zero page
 * (zero_open.c).
 */
#define MV_PAGE_IS_PRESENT (1 << 3)
#define MV_PAGE_IS_PFNZERO (1 << 5)
struct mv__page_region {
	__u64 start;
	__u64 end; /* exclusive */
	__u64 categories;
};
struct mv__pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end; /* where the walk stopped (the kernel's answer) */
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};
#define MV_PAGEMAP_SCAN _IOWR('f', 16, struct mv__pm_scan_arg)

#endif /* MV_UFFD_H */

/* SPDX-License-Identifier: MIT */
/*
 * balloon.h - the host side of a VM's balloon: its target, its size, and the
 * private channel its guest driver talks through (balloon.c).
 */
#ifndef MV_BALLOON_H
#define MV_BALLOON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "memvisor.h"

struct mv_vm;

struct mv__balloon {
	/*
	 * Serialises messages and target changes, so that the cap check and
	 * the pages it admits are one step.  Protects the fields up to
	 * stats_time.
	 */
	pthread_mutex_t lock;
	uint64_t requested_pages; /* target as set, before the cap */
	uint64_t sched_pages; /* target the scheduler asks for */
	/* num_pages: the larger of the two, clipped to max */
	uint64_t target_pages;
	bool has_driver; /* a driver holds the channel */
	uint64_t stats[MV_BALLOON_S_NR]; /* last VIRTIO_BALLOON_S_* values */
	uint32_t stats_valid; /* bit t: stats[t] was ever reported */
	struct timespec stats_time; /* CLOCK_MONOTONIC of the last report */

	uint64_t max_pages; /* Mem.CtlMaxPercent of the VM; immutable */

	/*
	 * BALLOONED pages.  Raised only under lock; lowered under lock by a
	 * deflate and without it by a fault on a ballooned page, so a cap
	 * check under lock can only err on the safe side.
	 */
	_Atomic uint64_t actual_pages;

	/*
	 * Inflate messages so far, counted before their pages are locked; a
	 * BALLOONED entry's payload is the count of the inflate that took it,
	 * so that fault.c can tell a fault read before that inflate (stale:
	 * not a touch of the balloon) from a violation.
	 */
	_Atomic uint64_t inflates;

	/* statistics, relaxed atomics */
	_Atomic uint64_t inflated_pages; /* pages taken into the balloon */
	_Atomic uint64_t deflated_pages; /* pages given back by deflate */
	_Atomic uint64_t frames_freed; /* frames released by inflation */
	_Atomic uint64_t msgs; /* messages received */
	_Atomic uint64_t errors; /* refused messages, PFNs and stats */
	_Atomic uint64_t violations; /* guest touches of ballooned pages */
};

/* The driver's end of the channel. */
struct mv_balloon_chan {
	struct mv_vm *vm;
};

void mv__balloon_init(struct mv_vm *vm);
void mv__balloon_fini(struct mv_vm *vm);
/* vm.c: the MCTL* columns and balloon counters of mv_vm_stats. */
void mv__balloon_stats(struct mv_vm *vm, struct mv_vm_stats *st);
/* sched.c: the scheduler's target; the balloon follows the larger of it
 * and the one set through the API. */
void mv__balloon_set_sched_target(struct mv_vm *vm, uint64_t pages);
/* sched.c: the scheduler's target now, and the pages in the balloon */
void mv__balloon_sched_view(struct mv_vm *vm, uint64_t *sched_pages,
			    uint64_t *actual_pages);

/*
 * fault.c: the guest touched npages ballooned pages (now being filled with
 * zeros); they leave the balloon and count as violations.
 */
void mv__balloon_touched(struct mv_vm *vm, uint64_t npages);

#endif /* MV_BALLOON_H */

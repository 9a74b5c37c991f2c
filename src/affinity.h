/* SPDX-License-Identifier: MIT */
/*
 * affinity.h - a VM's service threads (its fault threads and its reclaim
 * thread) run on the CPUs its vCPU threads may use (Mem.ServiceAffinity;
 * affinity.c has the design).  The fault thread's per-fault check is inline
 * here: a compare of the faulting thread's id and a coarse clock read.
 */
#ifndef MV_AFFINITY_H
#define MV_AFFINITY_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* vCPU threads a VM remembers; more than a VM has is fine (the oldest
 * checked is forgotten, and comes back at its next fault) */
#define MV_AFFINITY_TIDS 16
/* A known vCPU's affinity is read again after this long */
#define MV_AFFINITY_RECHECK_MS 200
/* A vCPU not seen faulting for this long no longer counts */
#define MV_AFFINITY_FORGET_MS 2000

struct mv_vm;

struct mv__affinity {
	bool on; /* Mem.ServiceAffinity; immutable */
	pthread_mutex_t lock; /* a leaf: seen[] and cpus */
	struct {
		pid_t tid; /* 0: a free entry */
		uint64_t checked_ms, seen_ms; /* coarse monotonic */
		cpu_set_t cpus; /* its affinity when checked */
	} seen[MV_AFFINITY_TIDS];
	cpu_set_t cpus; /* the union of seen[]'s: where service runs */
	_Atomic unsigned gen; /* bumped when cpus changes */
	/* statistics, relaxed */
	_Atomic uint64_t changes; /* times cpus changed */
	_Atomic uint64_t moves; /* service threads moved to cpus */
	_Atomic uint64_t errors; /* affinity calls the kernel refused */
};

/* A fault thread's view: the last vCPU it served and when it checked. */
struct mv__affinity_cursor {
	pid_t tid;
	uint64_t checked_ms;
	unsigned gen; /* the cpus generation this thread runs on */
};

void mv__affinity_init(struct mv_vm *vm, bool on);
void mv__affinity_fini(struct mv_vm *vm);
/* Slow path of mv__affinity_fault: vCPU tid faulted at now_ms. */
void mv__affinity_note(struct mv_vm *vm, pid_t tid, uint64_t now_ms);
/* The calling service thread moves to the VM's cpus if they changed since
 * *gen (one sched_setaffinity); a refusal is counted and the thread stays. */
void mv__affinity_follow(struct mv_vm *vm, unsigned *gen);
struct mv_vm_stats;
/* Fills the service_* fields of st. */
void mv__affinity_stats(struct mv_vm *vm, struct mv_vm_stats *st);
/* Milliseconds of CLOCK_MONOTONIC_COARSE: no TSC read, a few ns */
uint64_t mv__affinity_now_ms(void);

/* A fault from vCPU thread tid, served by the thread whose cursor is c. */
static inline void mv__affinity_fault(struct mv_vm *vm, struct mv__affinity *a,
				      struct mv__affinity_cursor *c, pid_t tid)
{
	uint64_t now;

	if (!a->on || !tid)
		return;
	now = mv__affinity_now_ms();
	if (tid == c->tid && now - c->checked_ms < MV_AFFINITY_RECHECK_MS)
		return;
	c->tid = tid;
	c->checked_ms = now;
	mv__affinity_note(vm, tid, now);
	mv__affinity_follow(vm, &c->gen);
}

#endif

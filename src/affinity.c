// SPDX-License-Identifier: MIT
/*
 * affinity.c - a VM's service threads run where its vCPUs run
 * (Mem.ServiceAffinity, 1 by default): each fault thread and the VM's
 * reclaim thread keep to the union of the CPU affinities of the vCPU
 * threads that fault on its memory.
 *
 * Why: every userfaultfd fault is two wake-ups, the vCPU waking the fault
 * thread and the fault thread's UFFDIO_COPY waking the vCPU; a wake-up on
 * another CPU is an inter-processor interrupt, and on a host that is
 * itself a VM each one is an exit to the hypervisor below.  A VM host
 * pins its vCPUs; when the service follows them, the vCPU that faults
 * blocks and the fault thread runs on the CPU it frees, with no IPI either
 * way, and a VM's reclaim costs its own CPUs rather than its neighbours'.
 * On the development machine (2 CPUs, nested), four kvstore VMs pinned
 * round-robin ran 18% faster with their service pinned beside them than
 * with the same service left to the kernel's scheduler (docs/BENCHMARKS.md);
 * per fault, `memvisor bench fault`'s pinned rows measure it beside the raw
 * userfaultfd handler on the guest's CPU and on the other one.
 * A vCPU that is not pinned has every CPU in its mask, so the union is
 * every CPU and nothing changes: the feature costs an unpinned VM one
 * sched_getaffinity per vCPU every MV_AFFINITY_RECHECK_MS.
 *
 * Design: the faulting thread's id comes with each fault
 * (UFFD_FEATURE_THREAD_ID).  A fault thread checks it against the last
 * one it served (mv__affinity_fault, inline: no lock, no system call);
 * on a new vCPU, or every MV_AFFINITY_RECHECK_MS for the same one, it
 * reads that thread's affinity into the VM's table of vCPUs seen
 * (MV_AFFINITY_TIDS, the least recently seen forgotten first), recomputes
 * the union of those seen in the last MV_AFFINITY_FORGET_MS, and if it
 * changed bumps a generation.  Each service thread compares the
 * generation with the one it runs on before its work (a fault thread
 * after a note, the reclaim thread before each request) and moves itself
 * with one sched_setaffinity when it changed.
 *
 * Invariants: affinity is a hint for where threads run, never what they
 * do: a refused call (a vCPU gone, ESRCH; a cpuset that forbids the CPUs,
 * EINVAL) is counted and the thread stays where it was; an empty union
 * (no vCPU seen lately) changes nothing.  The union only ever names CPUs
 * some vCPU of this VM may use.
 *
 * Locks (order: internal.h): affinity.lock, a leaf, never held across the
 * setaffinity of a thread.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "affinity.h"
#include "inject.h"
#include "internal.h"

uint64_t mv__affinity_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void mv__affinity_init(struct mv_vm *vm, bool on)
{
	struct mv__affinity *a = &vm->aff;

	memset(a->seen, 0, sizeof(a->seen));
	CPU_ZERO(&a->cpus);
	a->on = on;
	atomic_store(&a->gen, 0);
	atomic_store(&a->changes, 0);
	atomic_store(&a->moves, 0);
	atomic_store(&a->errors, 0);
	pthread_mutex_init(&a->lock, NULL);
}

void mv__affinity_fini(struct mv_vm *vm)
{
	pthread_mutex_destroy(&vm->aff.lock);
}

/* The entry of tid, or the one to reuse for it (free, else least recently
 * seen).  Under a->lock. */
static unsigned slot_of(struct mv__affinity *a, pid_t tid)
{
	unsigned best = 0;

	for (unsigned i = 0; i < MV_AFFINITY_TIDS; i++) {
		if (a->seen[i].tid == tid)
			return i;
		if (!a->seen[i].tid) {
			if (a->seen[best].tid)
				best = i;
		} else if (a->seen[best].tid &&
			   a->seen[i].seen_ms < a->seen[best].seen_ms) {
			best = i;
		}
	}
	return best;
}

void mv__affinity_note(struct mv_vm *vm, pid_t tid, uint64_t now_ms)
{
	struct mv__affinity *a = &vm->aff;
	unsigned i;
	cpu_set_t u;
	int err;

	pthread_mutex_lock(&a->lock);
	i = slot_of(a, tid);
	if (a->seen[i].tid != tid ||
	    now_ms - a->seen[i].checked_ms >= MV_AFFINITY_RECHECK_MS) {
		err = mv__sched_getaffinity(tid, &a->seen[i].cpus);
		if (err) {
			/* gone (ESRCH) or unreadable: it does not count */
			atomic_fetch_add_explicit(&a->errors, 1,
						  memory_order_relaxed);
			a->seen[i].tid = 0;
			pthread_mutex_unlock(&a->lock);
			return;
		}
		a->seen[i].tid = tid;
		a->seen[i].checked_ms = now_ms;
	}
	a->seen[i].seen_ms = now_ms;
	CPU_ZERO(&u);
	for (unsigned j = 0; j < MV_AFFINITY_TIDS; j++)
		if (a->seen[j].tid &&
		    now_ms - a->seen[j].seen_ms < MV_AFFINITY_FORGET_MS)
			CPU_OR(&u, &u, &a->seen[j].cpus);
	if (CPU_COUNT(&u) && !CPU_EQUAL(&u, &a->cpus)) {
		a->cpus = u;
		atomic_fetch_add(&a->gen, 1);
		atomic_fetch_add_explicit(&a->changes, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&a->lock);
}

void mv__affinity_follow(struct mv_vm *vm, unsigned *gen)
{
	struct mv__affinity *a = &vm->aff;
	unsigned now = atomic_load(&a->gen);
	cpu_set_t cpus;

	if (!a->on || now == *gen)
		return;
	pthread_mutex_lock(&a->lock);
	now = atomic_load(&a->gen);
	cpus = a->cpus;
	pthread_mutex_unlock(&a->lock);
	*gen = now;
	if (mv__thread_setaffinity(&cpus))
		atomic_fetch_add_explicit(&a->errors, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&a->moves, 1, memory_order_relaxed);
}

void mv__affinity_stats(struct mv_vm *vm, struct mv_vm_stats *st)
{
	struct mv__affinity *a = &vm->aff;

	st->service_cpu_changes = atomic_load(&a->changes);
	st->service_moves = atomic_load(&a->moves);
	st->service_affinity_errors = atomic_load(&a->errors);
	pthread_mutex_lock(&a->lock);
	st->service_cpus = (uint32_t)CPU_COUNT(&a->cpus);
	pthread_mutex_unlock(&a->lock);
}

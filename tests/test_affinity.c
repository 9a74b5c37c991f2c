// SPDX-License-Identifier: MIT
/*
 * test_affinity.c - a VM's service threads follow its vCPUs
 * (Mem.ServiceAffinity, affinity.c): the union of the faulting threads'
 * affinities, forgetting vCPUs gone quiet; on a live VM the fault thread
 * and the reclaim thread move to the CPU of a pinned vCPU and follow it
 * when it moves; unpinned vCPUs, the setting off, and a kernel refusing
 * every affinity call leave them where they are; and every page written
 * comes back whatever the threads did.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"
#include "inject.h"
#include "internal.h"

#define MiB (1ull << 20)

/* The CPUs this process may use, and the count; tests that pin need 2 */
static cpu_set_t all_cpus;

static int usable_cpus(void)
{
	assert_int_equal(sched_getaffinity(0, sizeof(all_cpus), &all_cpus), 0);
	return CPU_COUNT(&all_cpus);
}

/* The n-th CPU (0-based) of all_cpus. */
static int nth_cpu(int n)
{
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &all_cpus) && !n--)
			return c;
	fail();
	return -1;
}

static void pin_self(int cpu)
{
	cpu_set_t s;

	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	assert_int_equal(sched_setaffinity(0, sizeof(s), &s), 0);
}

static void unpin_self(void)
{
	assert_int_equal(sched_setaffinity(0, sizeof(all_cpus), &all_cpus), 0);
}

/* The id of this process's one thread named comm, 0 if none. */
static pid_t thread_named(const char *comm)
{
	int tid;

	th_threads_named(comm, &tid);
	return (pid_t)tid;
}

static bool runs_only_on(const char *comm, int cpu)
{
	pid_t tid = thread_named(comm);
	cpu_set_t s;

	if (!tid || sched_getaffinity(tid, sizeof(s), &s))
		return false;
	return CPU_COUNT(&s) == 1 && CPU_ISSET(cpu, &s);
}

static bool runs_anywhere(const char *comm)
{
	pid_t tid = thread_named(comm);
	cpu_set_t s;

	assert_true(tid > 0);
	assert_int_equal(sched_getaffinity(tid, sizeof(s), &s), 0);
	return CPU_EQUAL(&s, &all_cpus);
}

/* ---- the union, on a VM of its own (no guest memory) ---- */

struct pinned {
	pthread_t t;
	pid_t tid;
	int cpu;
	atomic_bool ready, stop;
};

static void *pinned_main(void *arg)
{
	struct pinned *p = arg;

	pin_self(p->cpu);
	p->tid = (pid_t)syscall(SYS_gettid);
	atomic_store(&p->ready, true);
	while (!atomic_load(&p->stop))
		th_nap_ms(1);
	return NULL;
}

static bool is_ready(void *arg)
{
	return atomic_load(&((struct pinned *)arg)->ready);
}

static void pinned_start(struct pinned *p, int cpu)
{
	memset(p, 0, sizeof(*p));
	p->cpu = cpu;
	assert_int_equal(pthread_create(&p->t, NULL, pinned_main, p), 0);
	assert_true(th_wait_until(is_ready, p, TH_WAIT_MS));
}

static void pinned_stop(struct pinned *p)
{
	atomic_store(&p->stop, true);
	pthread_join(p->t, NULL);
}

static void test_service_cpus_are_the_union_of_recent_vcpus(void **state)
{
	struct mv_vm *vm = calloc(1, sizeof(*vm));
	struct pinned a, b;
	uint64_t t0 = 1000000;

	(void)state;
	if (usable_cpus() < 2)
		skip();
	assert_non_null(vm);
	mv__affinity_init(vm, true);
	pinned_start(&a, nth_cpu(0));
	pinned_start(&b, nth_cpu(1));
	mv__affinity_note(vm, a.tid, t0);
	assert_int_equal(CPU_COUNT(&vm->aff.cpus), 1);
	assert_true(CPU_ISSET(nth_cpu(0), &vm->aff.cpus));
	mv__affinity_note(vm, b.tid, t0 + 10);
	assert_int_equal(CPU_COUNT(&vm->aff.cpus), 2);
	/* b goes quiet: after MV_AFFINITY_FORGET_MS only a counts */
	mv__affinity_note(vm, a.tid, t0 + 10 + MV_AFFINITY_FORGET_MS);
	assert_int_equal(CPU_COUNT(&vm->aff.cpus), 1);
	assert_true(CPU_ISSET(nth_cpu(0), &vm->aff.cpus));
	assert_int_equal(atomic_load(&vm->aff.changes), 3);
	pinned_stop(&a);
	pinned_stop(&b);
	mv__affinity_fini(vm);
	free(vm);
}

static void test_a_vcpu_gone_does_not_count(void **state)
{
	struct mv_vm *vm = calloc(1, sizeof(*vm));
	struct pinned a, b;
	pid_t gone;

	(void)state;
	if (usable_cpus() < 2)
		skip();
	assert_non_null(vm);
	mv__affinity_init(vm, true);
	pinned_start(&a, nth_cpu(0));
	pinned_start(&b, nth_cpu(1));
	gone = b.tid;
	pinned_stop(&b);
	mv__affinity_note(vm, a.tid, 5000);
	/* its thread has exited: ESRCH, counted, and the union unchanged
	 * (unless the kernel gave the id to a new thread meanwhile) */
	mv__affinity_note(vm, gone, 5001);
	if (atomic_load(&vm->aff.errors)) {
		assert_int_equal(CPU_COUNT(&vm->aff.cpus), 1);
		assert_true(CPU_ISSET(nth_cpu(0), &vm->aff.cpus));
	}
	pinned_stop(&a);
	mv__affinity_fini(vm);
	free(vm);
}

/* ---- on a live VM ---- */

struct toucher {
	mv_vm *vm;
	uint64_t version;
	const char *comm; /* the thread that should end up pinned */
	int cpu; /* -1: anywhere */
	bool pressure; /* the host is smaller than the VM */
};

/* One round of guest work: every page written with the next version,
 * then (without pressure) all swapped out, so the next round faults. */
static void touch_round(struct toucher *t)
{
	uint8_t *m = mv_vm_mem(t->vm);
	uint64_t n = mv_vm_memsize(t->vm) / MV_PAGE_SIZE;

	t->version++;
	for (uint64_t p = 0; p < n; p++)
		th_fill(m + p * MV_PAGE_SIZE, 5, p, t->version);
	if (!t->pressure)
		assert_int_equal(mv_vm_swap_out(t->vm, n, NULL), 0);
}

static bool touched_until_pinned(void *arg)
{
	struct toucher *t = arg;

	touch_round(t);
	return runs_only_on(t->comm, t->cpu);
}

static uint64_t bad_pages(struct toucher *t)
{
	uint8_t *m = mv_vm_mem(t->vm);
	uint64_t n = mv_vm_memsize(t->vm) / MV_PAGE_SIZE, bad = 0;

	for (uint64_t p = 0; p < n; p++)
		bad += !th_check(m + p * MV_PAGE_SIZE, 5, p, t->version);
	return bad;
}

static void test_fault_thread_follows_a_pinned_vcpu(void **state)
{
	struct th_host h;
	struct toucher t = { .comm = "mv-fault" };
	struct mv_vm_stats vs;

	(void)state;
	if (usable_cpus() < 2)
		skip();
	th_host_create(&h, 64 * MiB, NULL);
	t.vm = th_vm_create(&h, "a", 4 * MiB);
	for (int i = 1; i >= 0; i--) {
		/* this thread is the vCPU: on the second CPU, then the first */
		t.cpu = nth_cpu(i);
		pin_self(t.cpu);
		assert_true(
			th_wait_until(touched_until_pinned, &t, TH_WAIT_MS));
	}
	/* counted while this thread is still pinned: the faults of the check
	 * below may come 200 ms after the fault thread last looked at this
	 * thread's CPUs, and then find it unpinned */
	mv_vm_stats(t.vm, &vs);
	unpin_self();
	assert_int_equal(bad_pages(&t), 0);
	assert_true(vs.service_moves >= 2);
	assert_int_equal(vs.service_cpus, 1);
	mv_vm_destroy(t.vm);
	th_host_destroy(&h);
}

static void test_reclaim_thread_moves_beside_its_vcpu(void **state)
{
	struct th_host h;
	struct toucher t = { .comm = "mv-reclaim", .pressure = true };

	(void)state;
	if (usable_cpus() < 2)
		skip();
	/* the VM is twice the host: the scheduler has its reclaim thread
	 * take pages while this vCPU writes them */
	th_host_create(&h, 8 * MiB, NULL);
	t.vm = th_vm_create(&h, "a", 16 * MiB);
	t.cpu = nth_cpu(1);
	pin_self(t.cpu);
	assert_true(th_wait_until(touched_until_pinned, &t, TH_WAIT_MS));
	unpin_self();
	assert_int_equal(bad_pages(&t), 0);
	mv_vm_destroy(t.vm);
	th_host_destroy(&h);
}

/* Touches for at least two recheck periods, the work that moves the
 * threads with the setting on. */
static void touch_for_two_rechecks(struct toucher *t)
{
	uint64_t end = th_now_ms() + 2 * MV_AFFINITY_RECHECK_MS;

	while (th_now_ms() < end)
		touch_round(t);
}

static void test_unpinned_vcpus_leave_the_service_anywhere(void **state)
{
	struct th_host h;
	struct toucher t = { .cpu = -1 };
	struct mv_vm_stats vs;

	(void)state;
	usable_cpus();
	th_host_create(&h, 64 * MiB, NULL);
	t.vm = th_vm_create(&h, "a", 4 * MiB);
	touch_for_two_rechecks(&t);
	assert_int_equal(bad_pages(&t), 0);
	mv_vm_stats(t.vm, &vs);
	/* followed: every CPU this process may use, which is where it was */
	assert_int_equal(vs.service_cpus, CPU_COUNT(&all_cpus));
	assert_true(runs_anywhere("mv-fault"));
	mv_vm_destroy(t.vm);
	th_host_destroy(&h);
}

static void test_setting_off_never_moves_the_service(void **state)
{
	struct th_host h;
	struct toucher t = { .cpu = -1 };
	struct mv_settings s;
	struct mv_vm_stats vs;

	(void)state;
	if (usable_cpus() < 2)
		skip();
	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.ServiceAffinity", "0"), 0);
	th_host_create(&h, 64 * MiB, &s);
	t.vm = th_vm_create(&h, "a", 4 * MiB);
	pin_self(nth_cpu(1));
	touch_for_two_rechecks(&t);
	unpin_self();
	assert_int_equal(bad_pages(&t), 0);
	mv_vm_stats(t.vm, &vs);
	assert_int_equal(vs.service_moves, 0);
	assert_int_equal(vs.service_cpus, 0);
	assert_true(runs_anywhere("mv-fault"));
	mv_vm_destroy(t.vm);
	th_host_destroy(&h);
}

static void test_refused_affinity_calls_lose_nothing(void **state)
{
	struct th_host h;
	struct toucher t = { .cpu = -1 };
	struct mv_vm_stats vs;

	(void)state;
	if (usable_cpus() < 2)
		skip();
	th_host_create(&h, 64 * MiB, NULL);
	t.vm = th_vm_create(&h, "a", 4 * MiB);
	mv__inject_fail(MV_INJ_AFFINITY, 1, 0, EPERM);
	pin_self(nth_cpu(1));
	touch_for_two_rechecks(&t);
	/* counted while every call is refused: the faults of the check
	 * below may follow the (unpinned) vCPU once they are not */
	mv_vm_stats(t.vm, &vs);
	assert_true(runs_anywhere("mv-fault"));
	unpin_self();
	mv__inject_reset();
	assert_int_equal(bad_pages(&t), 0);
	assert_true(vs.service_affinity_errors > 0);
	assert_int_equal(vs.service_moves, 0);
	mv_vm_destroy(t.vm);
	th_host_destroy(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_service_cpus_are_the_union_of_recent_vcpus),
		cmocka_unit_test(test_a_vcpu_gone_does_not_count),
		cmocka_unit_test(test_fault_thread_follows_a_pinned_vcpu),
		cmocka_unit_test(test_reclaim_thread_moves_beside_its_vcpu),
		cmocka_unit_test(
			test_unpinned_vcpus_leave_the_service_anywhere),
		cmocka_unit_test(test_setting_off_never_moves_the_service),
		cmocka_unit_test(test_refused_affinity_calls_lose_nothing),
	};

	return th_run_tests(tests);
}

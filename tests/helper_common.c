// SPDX-License-Identifier: MIT
/*
 * helper_common.c - shared test fixtures (see helper.h).
 *
 * Page patterns come from a 64-bit mixer seeded with (tag, ppn, version), so
 * a page that holds another VM's data, another page's data or an older
 * version of itself fails th_check.
 *
 * Lock ordering: none.
 */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"
#include "internal.h"

static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

void th_fill(void *page, uint64_t tag, uint64_t ppn, uint64_t version)
{
	uint64_t *w = page, s = mix(tag * 0x9e3779b97f4a7c15ull ^ mix(ppn) ^
				    version << 48);

	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i++)
		w[i] = mix(s + i);
}

bool th_check(const void *page, uint64_t tag, uint64_t ppn, uint64_t version)
{
	const volatile uint64_t *w = page;
	uint64_t s =
		mix(tag * 0x9e3779b97f4a7c15ull ^ mix(ppn) ^ version << 48);

	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i++)
		if (w[i] != mix(s + i))
			return false;
	return true;
}

void th_fill_z(void *page, uint64_t tag, uint64_t ppn, uint64_t version)
{
	uint64_t *w = page, s = mix(tag * 0x9e3779b97f4a7c15ull ^ mix(ppn) ^
				    version << 48);

	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i++)
		w[i] = mix(s + i % 64);
}

bool th_check_z(const void *page, uint64_t tag, uint64_t ppn, uint64_t version)
{
	const volatile uint64_t *w = page;
	uint64_t s =
		mix(tag * 0x9e3779b97f4a7c15ull ^ mix(ppn) ^ version << 48);

	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i++)
		if (w[i] != mix(s + i % 64))
			return false;
	return true;
}

void th_fill_vm(mv_vm *vm, uint64_t tag, bool z)
{
	uint8_t *m = mv_vm_mem(vm);

	for (uint64_t p = 0; p < mv_vm_memsize(vm) / MV_PAGE_SIZE; p++) {
		if (z)
			th_fill_z(m + p * MV_PAGE_SIZE, tag, p, 0);
		else
			th_fill(m + p * MV_PAGE_SIZE, tag, p, 0);
	}
}

uint64_t th_bad_pages(mv_vm *vm, uint64_t tag, bool z)
{
	uint8_t *m = mv_vm_mem(vm);
	uint64_t bad = 0;

	for (uint64_t p = 0; p < mv_vm_memsize(vm) / MV_PAGE_SIZE; p++)
		bad += z ? !th_check_z(m + p * MV_PAGE_SIZE, tag, p, 0) :
			   !th_check(m + p * MV_PAGE_SIZE, tag, p, 0);
	return bad;
}

bool th_is_zero(const void *page)
{
	const volatile uint64_t *w = page;

	for (unsigned i = 0; i < MV_PAGE_SIZE / 8; i++)
		if (w[i])
			return false;
	return true;
}

void th_host_create(struct th_host *t, uint64_t memsize,
		    const struct mv_settings *s)
{
	struct mv_host_config cfg;
	char msg[512];

	assert_int_equal(mv_check_system(msg, sizeof(msg)), 0);
	snprintf(t->swapdir, sizeof(t->swapdir), "/var/tmp/mvtest.XXXXXX");
	assert_non_null(mkdtemp(t->swapdir));
	mv_host_config_init(&cfg);
	cfg.memsize_bytes = memsize;
	cfg.swapdir = t->swapdir;
	if (s)
		cfg.settings = *s;
	assert_int_equal(mv_host_create(&cfg, &t->host), 0);
}

void th_host_destroy(struct th_host *t)
{
	mv_host_destroy(t->host);
	rmdir(t->swapdir);
}

mv_vm *th_vm_create(struct th_host *t, const char *name, uint64_t memsize)
{
	struct mv_vm_config cfg;
	mv_vm *vm = NULL;
	int err;

	mv_vm_config_init(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "%s", name);
	cfg.memsize_bytes = memsize;
	err = mv_vm_create(t->host, &cfg, &vm);
	if (err)
		fprintf(stderr, "mv_vm_create: %s: %s\n", mv_strerror(err),
			mv_host_errmsg(t->host));
	assert_int_equal(err, 0);
	return vm;
}

void th_quiesce(mv_vm *vm)
{
	for (uint64_t p = 0; p < mv_vm_memsize(vm) / MV_PAGE_SIZE; p++)
		mv_vm_page_state(vm, p);
}

/*
 * PRIVATE: present, an anonymous page (pagemap bit 61 clear).  SHARED:
 * the pool frame (bit 61 set) or not faulted in yet.  Others: absent.
 */
static bool presence_agrees(enum mv_page_state s, uint64_t pm)
{
	bool present = pm >> 63 & 1, file = pm >> 61 & 1;

	if (s == MV_PAGE_PRIVATE)
		return present && !file;
	if (s == MV_PAGE_SHARED)
		return !present || file;
	return !present;
}

uint64_t th_presence_mismatches(mv_vm *vm)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t bad = 0, v, pm;
	uintptr_t va;

	assert_true(fd >= 0);
	for (uint64_t p = 0; p < vm->npages; p++) {
		va = (uintptr_t)vm->mem + (p << MV_PAGE_SHIFT);
		v = pmap_lock(&vm->pmap[p]);
		assert_int_equal(pread(fd, &pm, sizeof(pm),
				       (off_t)(va / MV_PAGE_SIZE * 8)),
				 sizeof(pm));
		pmap_unlock(&vm->pmap[p], v);
		if (!presence_agrees(pmap_state(v), pm)) {
			if (!bad)
				fprintf(stderr, "vm %s page %llu: %s but %s\n",
					vm->name, (unsigned long long)p,
					mv_page_state_name(pmap_state(v)),
					pm >> 63 ? "present" : "not present");
			bad++;
		}
	}
	close(fd);
	return bad;
}

uint64_t th_xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

void *th_swapper_main(void *arg)
{
	struct th_swapper *w = arg;
	struct timespec ts = { 0, w->pause_ns };
	uint64_t rng = 99, done;

	while (!atomic_load(w->stop)) {
		mv_vm_swap_out(w->vms[th_xs(&rng) % w->nvms], 16, &done);
		w->swapped += done;
		nanosleep(&ts, NULL);
	}
	return NULL;
}

unsigned th_torture_seconds(void)
{
	const char *s = getenv("MV_TORTURE_SECONDS");

	return s && atoi(s) > 0 ? (unsigned)atoi(s) : 6;
}

void th_drain_lru(void)
{
	static uint64_t page[MV_PAGE_SIZE / 8] __attribute__((aligned(4096)));
	void *addr = page;
	int node = 0, status;

	page[0] = 1;
	syscall(SYS_move_pages, 0, 1UL, &addr, &node, &status, 0);
}

void th_settle(mv_host *h)
{
	struct timespec ts = { 0, 5000000L };
	struct mv_host_stats st;

	for (int i = 0; i < 400; i++) {
		mv_host_stats(h, &st);
		/* the state is the scheduler's last verdict; free is now */
		if (st.state <= MV_STATE_SOFT &&
		    st.free_pages * 100 >= st.minfree_pages * 64)
			return;
		nanosleep(&ts, NULL);
	}
}

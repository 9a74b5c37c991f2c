// SPDX-License-Identifier: MIT
/*
 * test_balloon.c - ballooning, both sides: the host frees exactly the
 * frames behind the pages the guest gives up, a ballooned page is never
 * handed out by the guest OS and never read back with old data, the cap
 * clips targets, every malformed message is refused, counted and harmless,
 * deflate-on-OOM gives the guest its memory back, and guest threads, the
 * driver and host swapping together lose nothing, in a VM with poisoned
 * pages too.
 *
 * Tests that check the host's validation talk to the channel directly, as
 * a buggy or hostile driver would; the others run the real driver in
 * manual mode (one round per mvg_balloon_poll), so each step is exact.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"
#include "inject.h"
#include "internal.h"
#include "os.h"

#define MiB (1ull << 20)
#define VM_PAGES 2048u /* 8 MiB */
#define CAP_PAGES (VM_PAGES * 65 / 100) /* Mem.CtlMaxPercent's default */

struct fx {
	struct th_host t;
	mv_vm *vm;
	uint8_t *mem;
	struct mvg_os *os;
	struct mvg_balloon *drv;
	mv_balloon_chan *ch; /* raw channel, for tests playing the driver */
};

/* What a test that failed an assert left of its fixture (the host and VM
 * are th_teardown's); after fx_down, nothing. */
static void fx_cleanup(void *arg)
{
	struct fx *f = arg;

	mvg_balloon_stop(f->drv);
	mv_balloon_close(f->ch);
	if (f->os)
		mvg_os_destroy(f->os);
	memset(f, 0, sizeof(*f));
}

/* f is static in each test, so that th_teardown can still reach it after
 * a failed assert has left the test's frame. */
static void fx_up(struct fx *f, const struct mv_settings *s)
{
	memset(f, 0, sizeof(*f));
	th_at_teardown(fx_cleanup, f);
	th_host_create(&f->t, 64 * MiB, s);
	f->vm = th_vm_create(&f->t, "bal", VM_PAGES * 4096ull);
	f->mem = mv_vm_mem(f->vm);
	assert_int_equal(mvg_os_create(f->mem, VM_PAGES * 4096ull, &f->os), 0);
}

/* The driver, in manual mode unless cfg says otherwise. */
static void fx_driver(struct fx *f, const struct mvg_balloon_config *cfg)
{
	struct mvg_balloon_config c;

	if (cfg) {
		c = *cfg;
	} else {
		mvg_balloon_config_init(&c);
		c.manual = true;
	}
	assert_int_equal(mvg_balloon_start(f->vm, f->os, &c, &f->drv), 0);
}

static void fx_down(struct fx *f)
{
	mvg_balloon_stop(f->drv);
	mv_balloon_close(f->ch);
	mvg_os_destroy(f->os);
	mv_vm_destroy(f->vm);
	th_host_destroy(&f->t);
	memset(f, 0, sizeof(*f));
}

static uint8_t *page(struct fx *f, uint64_t pfn)
{
	return f->mem + pfn * MV_PAGE_SIZE;
}

static uint64_t vm_consumed(struct fx *f)
{
	struct mv_vm_stats st;

	assert_int_equal(mv_vm_stats(f->vm, &st), 0);
	return st.consumed_pages;
}

static uint64_t host_consumed(struct fx *f)
{
	struct mv_host_stats st;

	assert_int_equal(mv_host_stats(f->t.host, &st), 0);
	return st.consumed_pages;
}

static struct mv_balloon_info info(struct fx *f)
{
	struct mv_balloon_info bi;

	assert_int_equal(mv_vm_balloon_info(f->vm, &bi), 0);
	return bi;
}

/*
 * Every page of the VM written with (tag, pfn, 0), by the application.
 * The guest is woken before its fault's pages are published as PRIVATE;
 * taking each page's state waits for that, so counts are exact after.
 */
static void fill_all(struct fx *f, uint64_t tag)
{
	for (uint64_t p = 0; p < VM_PAGES; p++)
		th_fill(page(f, p), tag, p, 0);
	for (uint64_t p = 0; p < VM_PAGES; p++)
		mv_vm_page_state(f->vm, p);
}

/* Each page not in skip (may be NULL) holds its pattern and is PRIVATE. */
static void assert_intact(struct fx *f, uint64_t tag, const uint8_t *skip)
{
	for (uint64_t p = 0; p < VM_PAGES; p++) {
		if (skip && skip[p])
			continue;
		assert_int_equal(mv_vm_page_state(f->vm, p), MV_PAGE_PRIVATE);
		if (!th_check(page(f, p), tag, p, 0))
			fail_msg("page %llu lost its content",
				 (unsigned long long)p);
	}
}

static void set_target_pages(struct fx *f, uint64_t pages)
{
	assert_int_equal(mv_vm_balloon_set_target(f->vm, pages * 4096), 0);
}

static int send_pfns(struct fx *f, uint32_t type, const uint32_t *pfns,
		     uint32_t n, struct mv_balloon_reply *rep)
{
	struct mv_balloon_msg m = { .type = type, .num = n };

	memcpy(m.u.pfns, pfns, n * sizeof(*pfns));
	return mv_balloon_send(f->ch, &m, rep);
}

static bool bit(const struct mv_balloon_reply *rep, unsigned i)
{
	return rep->rejected_map[i / 64] >> (i % 64) & 1;
}

/* The application takes every page and writes it. */
static void app_takes_all(struct fx *f, uint32_t *pfns, uint64_t tag)
{
	assert_int_equal(mvg_os_alloc(f->os, VM_PAGES, pfns, 0), VM_PAGES);
	fill_all(f, tag);
}

static void
test_inflate_reclaims_exactly_the_frames_of_free_guest_pages(void **state)
{
	static uint32_t pfns[VM_PAGES];
	uint8_t freed[VM_PAGES] = { 0 };
	uint64_t nfreed = 0, vm0, host0;
	struct mvg_balloon_stats ds;
	static struct fx f;

	(void)state;
	fx_up(&f, NULL);
	app_takes_all(&f, pfns, 1);
	/* every third page back to the guest's free list, runs and holes */
	for (uint64_t p = 0; p < VM_PAGES; p += 3) {
		assert_int_equal(mvg_os_free(f.os, &pfns[p], 1, 0), 0);
		freed[pfns[p]] = 1;
		nfreed++;
	}
	vm0 = vm_consumed(&f);
	host0 = host_consumed(&f);
	assert_int_equal(vm0, VM_PAGES);
	fx_driver(&f, NULL);
	set_target_pages(&f, nfreed);
	assert_int_equal(mvg_balloon_poll(f.drv), 0);

	mvg_balloon_get_stats(f.drv, &ds);
	assert_int_equal(ds.pages, nfreed);
	assert_int_equal(info(&f).actual_pages, nfreed);
	assert_int_equal(vm_consumed(&f), vm0 - nfreed);
	assert_int_equal(host_consumed(&f), host0 - nfreed);
	for (uint64_t p = 0; p < VM_PAGES; p++)
		if (freed[p])
			assert_int_equal(mv_vm_page_state(f.vm, p),
					 MV_PAGE_BALLOONED);
	assert_intact(&f, 1, freed);
	fx_down(&f);
}

static void test_guest_os_never_hands_out_a_ballooned_page(void **state)
{
	static uint32_t pfns[VM_PAGES];
	uint32_t chunk[64];
	uint64_t got = 0;
	static struct fx f;
	int n;

	(void)state;
	fx_up(&f, NULL);
	app_takes_all(&f, pfns, 2);
	assert_int_equal(mvg_os_free(f.os, pfns, VM_PAGES, 0), 0);
	fx_driver(&f, NULL);
	set_target_pages(&f, VM_PAGES);
	assert_int_equal(mvg_balloon_poll(f.drv), 0);
	assert_int_equal(info(&f).actual_pages, CAP_PAGES);
	/* all of memory again, the balloon deflating on OOM as it goes */
	while ((n = mvg_os_alloc(f.os, 64, chunk, 0)) > 0) {
		for (int i = 0; i < n; i++)
			assert_int_not_equal(mv_vm_page_state(f.vm, chunk[i]),
					     MV_PAGE_BALLOONED);
		got += (uint64_t)n;
	}
	assert_int_equal(got, VM_PAGES);
	assert_int_equal(info(&f).actual_pages, 0);
	fx_down(&f);
}

static void test_deflated_pages_read_zero_not_stale_data(void **state)
{
	static uint32_t pfns[VM_PAGES];
	uint8_t was[VM_PAGES] = { 0 };
	static struct fx f;

	(void)state;
	fx_up(&f, NULL);
	app_takes_all(&f, pfns, 3);
	assert_int_equal(mvg_os_free(f.os, pfns, VM_PAGES, 0), 0);
	fx_driver(&f, NULL);
	set_target_pages(&f, 1000);
	assert_int_equal(mvg_balloon_poll(f.drv), 0);
	for (uint64_t p = 0; p < VM_PAGES; p++)
		was[p] = mv_vm_page_state(f.vm, p) == MV_PAGE_BALLOONED;
	set_target_pages(&f, 0);
	assert_int_equal(mvg_balloon_poll(f.drv), 0);
	assert_int_equal(info(&f).actual_pages, 0);
	assert_int_equal(mvg_os_alloc(f.os, VM_PAGES, pfns, 0), VM_PAGES);
	/* states first: a read fills its ZERO neighbours too */
	for (uint64_t p = 0; p < VM_PAGES; p++)
		if (was[p])
			assert_int_equal(mv_vm_page_state(f.vm, p),
					 MV_PAGE_ZERO);
	for (uint64_t p = 0; p < VM_PAGES; p++) {
		if (!was[p]) {
			/* the guest OS does not scrub freed pages */
			assert_true(th_check(page(&f, p), 3, p, 0));
			continue;
		}
		if (!th_is_zero(page(&f, p)))
			fail_msg("deflated page %llu shows old data",
				 (unsigned long long)p);
	}
	assert_int_equal(info(&f).violations, 0);
	fx_down(&f);
}

static void test_deflated_page_of_an_image_vm_reads_zero_not_image(void **state)
{
	char path[TH_PATH_LEN];
	uint8_t buf[MV_PAGE_SIZE];
	struct mv_vm_config cfg;
	uint32_t pfns[4] = { 0, 1, 2, 3 };
	struct mv_balloon_reply rep;
	struct th_host t;
	static struct fx f;
	int fd;

	(void)state;
	memset(&f, 0, sizeof(f));
	th_at_teardown(fx_cleanup, &f);
	th_host_create(&t, 64 * MiB, NULL);
	snprintf(path, sizeof(path), "%s/image", t.swapdir);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	assert_true(fd >= 0);
	for (uint64_t p = 0; p < 8; p++) {
		th_fill(buf, 77, p, 0);
		assert_int_equal(write(fd, buf, sizeof(buf)), sizeof(buf));
	}
	close(fd);
	mv_vm_config_init(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "img");
	cfg.memsize_bytes = 1 * MiB;
	cfg.image_path = path;
	assert_int_equal(mv_vm_create(t.host, &cfg, &f.vm), 0);
	f.mem = mv_vm_mem(f.vm);
	assert_int_equal(mv_balloon_open(f.vm, &f.ch), 0);
	/* never touched: the guest gives up pages it never read */
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_INFLATE, pfns, 4, &rep),
			 0);
	assert_int_equal(rep.accepted, 4);
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_DEFLATE, pfns, 4, &rep),
			 0);
	assert_int_equal(rep.accepted, 4);
	for (uint64_t p = 0; p < 4; p++)
		assert_true(th_is_zero(page(&f, p)));
	for (uint64_t p = 4; p < 8; p++)
		assert_true(th_check(page(&f, p), 77, p, 0));
	mv_balloon_close(f.ch);
	f.ch = NULL;
	mv_vm_destroy(f.vm);
	unlink(path);
	th_host_destroy(&t);
}

static void test_targets_beyond_the_cap_are_clipped(void **state)
{
	struct mv_vm_stats st;
	struct mv_settings s;
	static struct fx f;

	(void)state;
	fx_up(&f, NULL);
	fx_driver(&f, NULL);
	set_target_pages(&f, VM_PAGES * 2);
	assert_int_equal(info(&f).requested_pages, VM_PAGES * 2);
	assert_int_equal(info(&f).target_pages, CAP_PAGES);
	assert_int_equal(info(&f).max_pages, CAP_PAGES);
	assert_int_equal(mvg_balloon_poll(f.drv), 0);
	assert_int_equal(info(&f).actual_pages, CAP_PAGES);
	assert_int_equal(mv_vm_stats(f.vm, &st), 0);
	assert_int_equal(st.mctlsz_pages, CAP_PAGES);
	assert_int_equal(st.mctltgt_pages, CAP_PAGES);
	assert_int_equal(st.mctlmax_pages, CAP_PAGES);
	assert_int_equal(info(&f).errors, 0);
	fx_down(&f);

	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.CtlMaxPercent", "10"), 0);
	fx_up(&f, &s);
	set_target_pages(&f, 1000);
	assert_int_equal(info(&f).target_pages, VM_PAGES / 10);
	fx_down(&f);
}

/* Raw channel over a VM whose every page the application wrote. */
static void raw_up(struct fx *f, const struct mv_settings *s, uint64_t tag)
{
	fx_up(f, s);
	fill_all(f, tag);
	assert_int_equal(mv_balloon_open(f->vm, &f->ch), 0);
}

static void test_out_of_range_pfns_are_refused_and_harm_nothing(void **state)
{
	uint32_t pfns[] = { 5, VM_PAGES, UINT32_MAX, 6 };
	uint8_t taken[VM_PAGES] = { 0 };
	struct mv_balloon_reply rep;
	static struct fx f;

	(void)state;
	raw_up(&f, NULL, 4);
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_INFLATE, pfns, 4, &rep),
			 0);
	assert_int_equal(rep.accepted, 2);
	assert_int_equal(rep.rejected, 2);
	assert_false(bit(&rep, 0));
	assert_true(bit(&rep, 1));
	assert_true(bit(&rep, 2));
	assert_false(bit(&rep, 3));
	assert_int_equal(info(&f).errors, 2);
	assert_int_equal(info(&f).actual_pages, 2);
	assert_int_equal(vm_consumed(&f), VM_PAGES - 2);
	taken[5] = taken[6] = 1;
	assert_intact(&f, 4, taken);
	/* and on deflate: nothing leaves the balloon for a bad PFN */
	assert_int_equal(
		send_pfns(&f, MV_BALLOON_MSG_DEFLATE, pfns + 1, 2, &rep), 0);
	assert_int_equal(rep.rejected, 2);
	assert_int_equal(info(&f).errors, 4);
	assert_int_equal(info(&f).actual_pages, 2);
	fx_down(&f);
}

static void test_duplicate_pfns_are_refused_and_harm_nothing(void **state)
{
	uint32_t pfns[] = { 7, 7, 8 };
	uint8_t taken[VM_PAGES] = { 0 };
	struct mv_balloon_reply rep;
	static struct fx f;

	(void)state;
	raw_up(&f, NULL, 5);
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_INFLATE, pfns, 3, &rep),
			 0);
	assert_int_equal(rep.accepted, 2);
	assert_int_equal(rep.rejected, 1);
	assert_true(bit(&rep, 1));
	assert_int_equal(info(&f).actual_pages, 2);
	assert_int_equal(vm_consumed(&f), VM_PAGES - 2);
	/* already in the balloon */
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_INFLATE, pfns, 1, &rep),
			 0);
	assert_int_equal(rep.rejected, 1);
	assert_int_equal(info(&f).actual_pages, 2);
	assert_int_equal(info(&f).inflated_pages, 2);
	/* deflated once, not twice */
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_DEFLATE, pfns, 2, &rep),
			 0);
	assert_int_equal(rep.accepted, 1);
	assert_int_equal(rep.rejected, 1);
	assert_int_equal(info(&f).actual_pages, 1);
	assert_int_equal(info(&f).errors, 3);
	taken[7] = taken[8] = 1;
	assert_intact(&f, 5, taken);
	fx_down(&f);
}

static void test_deflating_pages_not_in_the_balloon_is_refused(void **state)
{
	uint32_t pfns[] = { 3, 4 };
	struct mv_balloon_reply rep;
	static struct fx f;

	(void)state;
	raw_up(&f, NULL, 6);
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_DEFLATE, pfns, 2, &rep),
			 0);
	assert_int_equal(rep.accepted, 0);
	assert_int_equal(rep.rejected, 2);
	assert_int_equal(info(&f).errors, 2);
	assert_int_equal(info(&f).deflated_pages, 0);
	assert_int_equal(vm_consumed(&f), VM_PAGES);
	assert_intact(&f, 6, NULL);
	fx_down(&f);
}

static void test_oversized_and_unknown_messages_are_refused_whole(void **state)
{
	struct mv_balloon_msg m = { .type = MV_BALLOON_MSG_INFLATE };
	struct mv_balloon_reply rep;
	static struct fx f;

	(void)state;
	raw_up(&f, NULL, 8);
	for (uint32_t i = 0; i < MV_BALLOON_PFNS_MAX; i++)
		m.u.pfns[i] = i;
	m.num = MV_BALLOON_PFNS_MAX + 1;
	assert_int_equal(mv_balloon_send(f.ch, &m, &rep), -E2BIG);
	m.num = UINT32_MAX;
	assert_int_equal(mv_balloon_send(f.ch, &m, &rep), -E2BIG);
	m.type = 99;
	m.num = 1;
	assert_int_equal(mv_balloon_send(f.ch, &m, &rep), -EINVAL);
	m.type = MV_BALLOON_MSG_STATS;
	m.num = MV_BALLOON_S_NR + 1;
	assert_int_equal(mv_balloon_send(f.ch, &m, &rep), -E2BIG);
	assert_int_equal(info(&f).errors, 4);
	assert_int_equal(info(&f).msgs, 4);
	assert_int_equal(info(&f).actual_pages, 0);
	assert_int_equal(vm_consumed(&f), VM_PAGES);
	assert_intact(&f, 8, NULL);
	/* a statistics entry with an unknown tag is refused alone */
	m.num = 2;
	m.u.stats[0] = (struct mv_balloon_stat){ .tag = MV_BALLOON_S_MEMFREE,
						 .val = 4096 };
	m.u.stats[1] = (struct mv_balloon_stat){ .tag = 500, .val = 1 };
	assert_int_equal(mv_balloon_send(f.ch, &m, &rep), 0);
	assert_int_equal(rep.accepted, 1);
	assert_true(bit(&rep, 1));
	assert_int_equal(info(&f).errors, 5);
	assert_int_equal(info(&f).stats[MV_BALLOON_S_MEMFREE], 4096);
	assert_int_equal(info(&f).stats_valid, 1u << MV_BALLOON_S_MEMFREE);
	fx_down(&f);
}

static void test_inflating_beyond_the_cap_is_refused(void **state)
{
	uint32_t pfns[MV_BALLOON_PFNS_MAX];
	uint8_t taken[VM_PAGES] = { 0 };
	struct mv_balloon_reply rep;
	struct mv_settings s;
	static struct fx f;
	unsigned cap = VM_PAGES / 10;

	(void)state;
	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.CtlMaxPercent", "10"), 0);
	raw_up(&f, &s, 9);
	for (uint32_t i = 0; i < MV_BALLOON_PFNS_MAX; i++)
		pfns[i] = MV_BALLOON_PFNS_MAX - 1 - i;
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_INFLATE, pfns,
				   MV_BALLOON_PFNS_MAX, &rep),
			 0);
	assert_int_equal(rep.accepted, cap);
	assert_int_equal(rep.rejected, MV_BALLOON_PFNS_MAX - cap);
	assert_int_equal(info(&f).actual_pages, cap);
	assert_int_equal(info(&f).errors, MV_BALLOON_PFNS_MAX - cap);
	assert_int_equal(vm_consumed(&f), VM_PAGES - cap);
	for (uint32_t i = 0; i < MV_BALLOON_PFNS_MAX; i++)
		if (!bit(&rep, i))
			taken[pfns[i]] = 1;
	assert_intact(&f, 9, taken);
	fx_down(&f);
}

static void test_deflate_on_oom_gives_the_guest_its_memory_back(void **state)
{
	static uint32_t pfns[VM_PAGES];
	struct mvg_balloon_config cfg;
	struct mvg_balloon_stats ds;
	struct mvg_os_stats os;
	static struct fx f;

	(void)state;
	fx_up(&f, NULL);
	app_takes_all(&f, pfns, 10);
	assert_int_equal(mvg_os_free(f.os, pfns, VM_PAGES, 0), 0);
	mvg_balloon_config_init(&cfg);
	cfg.manual = true;
	cfg.oom_hold_ms = 60000;
	fx_driver(&f, &cfg);
	set_target_pages(&f, CAP_PAGES);
	assert_int_equal(mvg_balloon_poll(f.drv), 0);
	assert_int_equal(info(&f).actual_pages, CAP_PAGES);
	/* the guest wants all its memory: it gets it */
	assert_int_equal(mvg_os_alloc(f.os, VM_PAGES, pfns, 0), VM_PAGES);
	fill_all(&f, 11);
	assert_intact(&f, 11, NULL);
	mvg_balloon_get_stats(f.drv, &ds);
	assert_int_equal(ds.pages, 0);
	assert_int_equal(ds.oom_deflated, CAP_PAGES);
	assert_int_equal(info(&f).actual_pages, 0);
	mvg_os_get_stats(f.os, &os);
	assert_true(os.oom_calls > 0);
	assert_int_equal(os.alloc_failures, 0);
	/* and the driver does not take it straight back */
	assert_int_equal(mvg_os_free(f.os, pfns, VM_PAGES, 0), 0);
	assert_int_equal(mvg_balloon_poll(f.drv), 0);
	assert_int_equal(info(&f).actual_pages, 0);
	assert_int_equal(info(&f).violations, 0);
	fx_down(&f);
}

static void test_touching_a_ballooned_page_reads_zero_and_counts(void **state)
{
	uint32_t pfn = 9;
	struct mv_balloon_reply rep;
	static struct fx f;

	(void)state;
	raw_up(&f, NULL, 12);
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_INFLATE, &pfn, 1, &rep),
			 0);
	assert_int_equal(vm_consumed(&f), VM_PAGES - 1);
	assert_true(th_is_zero(page(&f, 9)));
	assert_int_equal(mv_vm_page_state(f.vm, 9), MV_PAGE_PRIVATE);
	assert_int_equal(info(&f).violations, 1);
	assert_int_equal(info(&f).actual_pages, 0);
	assert_int_equal(vm_consumed(&f), VM_PAGES);
	/* a violation takes the page out: deflating it now is refused */
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_DEFLATE, &pfn, 1, &rep),
			 0);
	assert_int_equal(rep.rejected, 1);
	fx_down(&f);
}

/* A guest thread's one write, whose fault the test can hold up. */
struct toucher {
	volatile uint8_t *addr;
	atomic_int tid;
	pthread_t th;
};

static void *touch_main(void *arg)
{
	struct toucher *t = arg;

	atomic_store(&t->tid, (int)gettid());
	*t->addr = 1;
	return NULL;
}

/* Its thread waits in userfaultfd's queue (asleep alone was not enough:
 * under load a thread asleep on the way, on the mmap lock, was taken for
 * queued, and its fault came after the next batch). */
static bool fault_queued(void *arg)
{
	struct toucher *t = arg;
	int tid = atomic_load(&t->tid);

	return tid && th_thread_in_userfault(tid);
}

static void touch(struct fx *f, uint64_t pfn, struct toucher *t)
{
	t->addr = page(f, pfn);
	atomic_store(&t->tid, 0);
	assert_int_equal(pthread_create(&t->th, NULL, touch_main, t), 0);
}

/* Touches pfn from a new thread and waits until its fault is queued (the
 * fault thread must be held up, or the thread would be gone). */
static void touch_queued(struct fx *f, uint64_t pfn, struct toucher *t)
{
	touch(f, pfn, t);
	assert_true(th_wait_until(fault_queued, t, TH_WAIT_MS));
}

struct faults_seen {
	mv_vm *vm;
	uint64_t n;
};

/* The fault threads have read at least n faults of the VM. */
static bool faults_read(void *arg)
{
	struct faults_seen *w = arg;
	struct mv_vm_stats st;

	mv_vm_stats(w->vm, &st);
	return st.faults >= w->n;
}

struct page_in {
	mv_vm *vm;
	uint64_t ppn;
	int state;
};

static bool page_in_state(void *arg)
{
	struct page_in *w = arg;

	return mv_vm_page_state(w->vm, w->ppn) == w->state;
}

/*
 * The fault thread reads faults in batches.  A fault can wait in one while
 * an earlier fault's run fills its page and wakes its thread, which frees
 * the page and the driver balloons it, all before the fault is served.
 * That fault is not a touch of the balloon: no violation, and the page
 * stays in it.  Here the batch is the faults on Q, X and P (P next to Q, in
 * its fault-around window), the fault thread is held first on R, so that
 * they queue up, and then on X, while P is ballooned.
 */
static void
test_a_fault_queued_before_its_page_was_ballooned_is_no_violation(void **state)
{
	enum { R = 100, Q = 32, P = 33, X = 200, Z = 300 };
	uint32_t pfn = P;
	struct mv_balloon_reply rep;
	struct mv_settings s;
	struct toucher r, q, x, p, z;
	struct faults_seen seen;
	struct page_in filled;
	struct mv_vm_stats st;
	uint64_t vr, vx;
	static struct fx f;

	(void)state;
	th_settings_quiet(&s);
	s.fault_threads = 1;
	fx_up(&f, &s);
	assert_int_equal(mv_balloon_open(f.vm, &f.ch), 0);
	vr = pmap_lock(&f.vm->pmap[R]);
	vx = pmap_lock(&f.vm->pmap[X]);
	assert_int_equal(mv_vm_stats(f.vm, &st), 0);
	/* R is read alone: the fault thread then waits for R's entry */
	touch_queued(&f, R, &r);
	seen = (struct faults_seen){ f.vm, st.faults + 1 };
	assert_true(th_wait_until(faults_read, &seen, TH_WAIT_MS));
	/* Q, X and P queue up behind it, in that order */
	touch_queued(&f, Q, &q);
	touch_queued(&f, X, &x);
	touch_queued(&f, P, &p);
	pmap_unlock(f.vm, R, vr);
	/* R's fault served; the next batch is Q, X, P: Q's run fills P */
	filled = (struct page_in){ f.vm, P, MV_PAGE_PRIVATE };
	assert_true(th_wait_until(page_in_state, &filled, TH_WAIT_MS));
	/* the fault thread waits for X; the guest frees P, the driver takes it */
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_INFLATE, &pfn, 1, &rep),
			 0);
	assert_int_equal(rep.accepted, 1);
	pmap_unlock(f.vm, X, vx);
	pthread_join(r.th, NULL);
	pthread_join(q.th, NULL);
	pthread_join(x.th, NULL);
	pthread_join(p.th, NULL);
	/* one fault thread, in order: once Z is served, so is P's fault */
	touch(&f, Z, &z);
	pthread_join(z.th, NULL);
	assert_int_equal(mv_vm_page_state(f.vm, P), MV_PAGE_BALLOONED);
	assert_int_equal(info(&f).violations, 0);
	assert_int_equal(info(&f).actual_pages, 1);
	/* the driver can take it back */
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_DEFLATE, &pfn, 1, &rep),
			 0);
	assert_int_equal(rep.rejected, 0);
	assert_int_equal(info(&f).errors, 0);
	fx_down(&f);
}

static void test_inflate_takes_swapped_pages_and_their_slot(void **state)
{
	uint32_t pfn = 11;
	struct mv_balloon_reply rep;
	struct mv_vm_stats st;
	uint8_t taken[VM_PAGES] = { 0 };
	static struct fx f;

	(void)state;
	raw_up(&f, NULL, 13);
	assert_int_equal(mv_vm_swap_out_page(f.vm, 11), 0);
	assert_int_equal(mv_vm_stats(f.vm, &st), 0);
	assert_int_equal(st.swcur_pages, 1);
	assert_int_equal(st.consumed_pages, VM_PAGES - 1);
	assert_int_equal(f.vm->swap.used, 1);
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_INFLATE, &pfn, 1, &rep),
			 0);
	assert_int_equal(rep.accepted, 1);
	assert_int_equal(mv_vm_page_state(f.vm, 11), MV_PAGE_BALLOONED);
	assert_int_equal(mv_vm_stats(f.vm, &st), 0);
	assert_int_equal(st.swcur_pages, 0);
	assert_int_equal(f.vm->swap.used, 0);
	assert_int_equal(st.consumed_pages, VM_PAGES - 1);
	assert_int_equal(info(&f).frames_freed, 0);
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_DEFLATE, &pfn, 1, &rep),
			 0);
	assert_true(th_is_zero(page(&f, 11)));
	assert_int_equal(mv_vm_stats(f.vm, &st), 0);
	assert_int_equal(st.swapin_pages, 0);
	taken[11] = 1;
	assert_intact(&f, 13, taken);
	fx_down(&f);
}

static void test_inflate_takes_compressed_pages_out_of_the_cache(void **state)
{
	uint32_t pfn = 12;
	struct mv_balloon_reply rep;
	struct mv_vm_stats st;
	static struct fx f;

	(void)state;
	raw_up(&f, NULL, 14);
	memset(page(&f, 12), 0x5a, MV_PAGE_SIZE); /* compresses well */
	assert_int_equal(mv_vm_swap_out_page(f.vm, 12), 0);
	assert_int_equal(mv_vm_page_state(f.vm, 12), MV_PAGE_COMPRESSED);
	assert_int_equal(mv_vm_stats(f.vm, &st), 0);
	assert_int_equal(st.zip_cached_pages, 1);
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_INFLATE, &pfn, 1, &rep),
			 0);
	assert_int_equal(rep.accepted, 1);
	assert_int_equal(mv_vm_page_state(f.vm, 12), MV_PAGE_BALLOONED);
	assert_int_equal(mv_vm_stats(f.vm, &st), 0);
	assert_int_equal(st.zip_cached_pages, 0);
	assert_int_equal(st.zip_used_bytes, 0);
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_DEFLATE, &pfn, 1, &rep),
			 0);
	assert_true(th_is_zero(page(&f, 12)));
	assert_int_equal(mv_vm_stats(f.vm, &st), 0);
	assert_int_equal(st.unzip_pages, 0);
	fx_down(&f);
}

static void test_guest_statistics_reach_the_host(void **state)
{
	static uint32_t pfns[VM_PAGES];
	struct mv_balloon_info bi;
	static struct fx f;

	(void)state;
	fx_up(&f, NULL);
	assert_int_equal(mvg_os_alloc(f.os, 100, pfns, 0), 100);
	fx_driver(&f, NULL);
	assert_int_equal(info(&f).stats_valid, 0);
	assert_int_equal(info(&f).stats_age_ms, UINT64_MAX);
	assert_int_equal(mvg_balloon_poll(f.drv), 0);
	bi = info(&f);
	assert_true(bi.stats_valid & 1u << MV_BALLOON_S_MEMFREE);
	assert_true(bi.stats_valid & 1u << MV_BALLOON_S_MEMTOT);
	assert_true(bi.stats_valid & 1u << MV_BALLOON_S_AVAIL);
	assert_true(bi.stats_valid & 1u << MV_BALLOON_S_MAJFLT);
	assert_int_equal(bi.stats[MV_BALLOON_S_MEMTOT], VM_PAGES * 4096ull);
	assert_int_equal(bi.stats[MV_BALLOON_S_MEMFREE],
			 (VM_PAGES - 100) * 4096ull);
	assert_int_equal(bi.stats[MV_BALLOON_S_MINFLT], 100);
	assert_true(bi.stats_age_ms < 10000);
	fx_down(&f);
}

static void test_one_driver_per_vm_and_its_absence_is_shown(void **state)
{
	mv_balloon_chan *other;
	struct mv_vm_stats st;
	static struct fx f;

	(void)state;
	fx_up(&f, NULL);
	assert_int_equal(mv_vm_stats(f.vm, &st), 0);
	assert_int_equal(st.balloon_driver, 0);
	assert_false(info(&f).has_driver);
	fx_driver(&f, NULL);
	assert_int_equal(mv_vm_stats(f.vm, &st), 0);
	assert_int_equal(st.balloon_driver, 1);
	assert_int_equal(mv_balloon_open(f.vm, &other), -EBUSY);
	mvg_balloon_stop(f.drv);
	f.drv = NULL;
	assert_false(info(&f).has_driver);
	fx_down(&f);
}

static void test_stopping_the_driver_deflates_everything(void **state)
{
	static uint32_t pfns[VM_PAGES];
	struct mvg_os_stats os;
	static struct fx f;

	(void)state;
	fx_up(&f, NULL);
	fx_driver(&f, NULL);
	set_target_pages(&f, 500);
	assert_int_equal(mvg_balloon_poll(f.drv), 0);
	assert_int_equal(info(&f).actual_pages, 500);
	mvg_balloon_stop(f.drv);
	f.drv = NULL;
	assert_int_equal(info(&f).actual_pages, 0);
	mvg_os_get_stats(f.os, &os);
	assert_int_equal(os.pinned_pages, 0);
	assert_int_equal(mvg_os_alloc(f.os, VM_PAGES, pfns, 0), VM_PAGES);
	fx_down(&f);
}

struct burst_watch {
	struct fx *f;
	struct mvg_workload *w;
	uint64_t least;
};

/*
 * Watches the burst guest until it has done what the test checks: its
 * bursts took pages back from the balloon (OOM), and between them the
 * host got half the VM back.  Records the least consumption seen.
 */
static bool burst_gave_back(void *arg)
{
	struct burst_watch *b = arg;
	uint64_t c = vm_consumed(b->f);
	struct mvg_stats gs;

	mvg_get_stats(b->w, &gs);
	/* before its first burst the guest holds nothing anyway */
	if (gs.writes && c < b->least)
		b->least = c;
	return gs.ops > VM_PAGES && info(b->f).deflated_pages > 0 &&
	       b->least <= VM_PAGES / 2 + VM_PAGES / 10;
}

/* The burst workload a failed assert left running (th_teardown's). */
static void burst_stop(void *arg)
{
	struct mvg_workload **w = arg;

	if (*w)
		mvg_stop(*w);
	*w = NULL;
}

static void test_burst_guest_gives_its_free_memory_back(void **state)
{
	static struct mvg_workload *w;
	struct mv_balloon_info bi;
	struct mvg_config cfg;
	struct mvg_stats gs;
	struct burst_watch watch;
	uint64_t least;
	static struct fx f;

	(void)state;
	fx_up(&f, NULL);
	memset(&cfg, 0, sizeof(cfg));
	cfg.kind = MVG_BURST;
	cfg.mem = f.mem;
	cfg.memsize = VM_PAGES * 4096ull;
	cfg.threads = 2;
	cfg.seed = 7;
	cfg.burst_idle_ms = 300;
	cfg.balloon_vm = f.vm;
	cfg.balloon_poll_ms = 20;
	set_target_pages(&f, VM_PAGES / 2);
	assert_int_equal(mvg_start(&cfg, &w), 0);
	th_at_teardown(burst_stop, &w);
	assert_true(info(&f).has_driver);
	watch = (struct burst_watch){ &f, w, VM_PAGES };
	th_wait_until(burst_gave_back, &watch, TH_WAIT_MS);
	least = watch.least;
	assert_int_equal(mvg_stop_and_verify(w, &gs), 0);
	w = NULL;
	bi = info(&f);
	print_message(
		"  %llu ops, balloon inflated %llu deflated %llu pages, least consumed %llu of %u pages\n",
		(unsigned long long)gs.ops,
		(unsigned long long)bi.inflated_pages,
		(unsigned long long)bi.deflated_pages,
		(unsigned long long)least, VM_PAGES);
	assert_int_equal(gs.integrity_errors, 0);
	assert_true(gs.ops > VM_PAGES);
	/* the guest's bursts took pages back from the balloon (OOM) */
	assert_true(bi.deflated_pages > 0);
	/* and between them the host got half the VM back */
	assert_true(least <= VM_PAGES / 2 + VM_PAGES / 10);
	assert_int_equal(bi.errors, 0);
	/* every inflate, deflate and refill was counted in the statistics */
	assert_int_equal(th_census_mismatches(f.vm), 0);
	assert_int_equal(bi.violations, 0);
	assert_false(bi.has_driver);
	assert_int_equal(bi.actual_pages, 0);
	fx_down(&f);
}

/*
 * The concurrency test: guest threads allocate, write, verify and free
 * pages through the guest OS, while the driver thread inflates and
 * deflates after a target that keeps moving, and the host swaps (a host
 * too small for the VM, plus a thread swapping on top).  Every page a
 * thread holds is checked against its (thread, pfn, version) pattern.
 */
#define CC_PAGES 8192u /* 32 MiB VM on a 24 MiB host */
#define CC_THREADS 3
#define CC_HOLD 1500u

struct cc {
	mv_vm *vm;
	struct mvg_os *os;
	atomic_bool stop;
	atomic_uint_fast64_t ops, errors;
};

struct cc_thread {
	struct cc *cc;
	unsigned idx;
	uint32_t held[CC_HOLD];
	uint32_t version[CC_HOLD];
	unsigned n;
};

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void cc_check(struct cc_thread *t, unsigned i)
{
	uint8_t *p = mvg_os_page(t->cc->os, t->held[i]);

	if (!th_check(p, t->idx + 100, t->held[i], t->version[i]))
		atomic_fetch_add(&t->cc->errors, 1);
}

static void *cc_guest(void *arg)
{
	struct cc_thread *t = arg;
	uint64_t rng = 0x9e3779b97f4a7c15ull * (t->idx + 1), r;
	uint32_t got[32];
	unsigned i;
	int n;

	while (!atomic_load(&t->cc->stop)) {
		r = xs(&rng);
		if (r % 4 == 0 && t->n + 32 <= CC_HOLD) {
			n = mvg_os_alloc(t->cc->os, 32, got, 0);
			for (int k = 0; k < n; k++) {
				i = t->n++;
				t->held[i] = got[k];
				t->version[i] = (uint32_t)(r >> 8);
				th_fill(mvg_os_page(t->cc->os, got[k]),
					t->idx + 100, got[k], t->version[i]);
			}
		} else if (r % 4 == 1 && t->n) {
			/* free a random held page, checked first */
			i = (unsigned)(r >> 16) % t->n;
			cc_check(t, i);
			/* cmocka cannot fail a test from this thread */
			if (mvg_os_free(t->cc->os, &t->held[i], 1, 0))
				atomic_fetch_add(&t->cc->errors, 1);
			t->held[i] = t->held[--t->n];
			t->version[i] = t->version[t->n];
		} else if (t->n) {
			i = (unsigned)(r >> 16) % t->n;
			cc_check(t, i);
			t->version[i]++;
			th_fill(mvg_os_page(t->cc->os, t->held[i]),
				t->idx + 100, t->held[i], t->version[i]);
		}
		atomic_fetch_add(&t->cc->ops, 1);
	}
	for (i = 0; i < t->n; i++)
		cc_check(t, i);
	return NULL;
}

static void *cc_swapper(void *arg)
{
	struct cc *cc = arg;
	struct timespec ts = { 0, 1000000L };
	uint64_t done;

	while (!atomic_load(&cc->stop)) {
		mv_vm_swap_out(cc->vm, 64, &done);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void
test_guest_threads_driver_and_host_swapping_lose_nothing(void **state)
{
	static struct cc_thread threads[CC_THREADS];
	pthread_t tids[CC_THREADS], swapper;
	struct mvg_balloon_config cfg;
	struct mvg_balloon_stats ds;
	struct mvg_balloon *drv;
	struct timespec ts = { 0, 20000000L };
	struct mv_balloon_info bi;
	struct mv_vm_stats st;
	struct th_host t;
	struct cc cc = { 0 };
	const char *env = getenv("MV_TORTURE_SECONDS");
	unsigned rounds = (env ? (unsigned)atoi(env) : 3) * 50;
	uint64_t until;

	(void)state;
	th_host_create(&t, 24 * MiB, NULL);
	cc.vm = th_vm_create(&t, "cc", CC_PAGES * 4096ull);
	assert_int_equal(
		mvg_os_create(mv_vm_mem(cc.vm), CC_PAGES * 4096ull, &cc.os), 0);
	mvg_balloon_config_init(&cfg);
	cfg.poll_ms = 3;
	cfg.oom_hold_ms = 10;
	assert_int_equal(mvg_balloon_start(cc.vm, cc.os, &cfg, &drv), 0);
	for (unsigned i = 0; i < CC_THREADS; i++) {
		threads[i] = (struct cc_thread){ .cc = &cc, .idx = i };
		assert_int_equal(pthread_create(&tids[i], NULL, cc_guest,
						&threads[i]),
				 0);
	}
	assert_int_equal(pthread_create(&swapper, NULL, cc_swapper, &cc), 0);
	/* the test drives the target, every 20 ms, for the run's length and
	 * then until the balloon and the swapper have both done something */
	until = th_now_ms() + TH_WAIT_MS;
	for (unsigned r = 0;; r++) {
		mv_vm_balloon_set_target(
			cc.vm, r % 3 == 0 ? 0 : (uint64_t)CC_PAGES * 4096);
		nanosleep(&ts, NULL);
		assert_int_equal(mv_vm_balloon_info(cc.vm, &bi), 0);
		assert_int_equal(mv_vm_stats(cc.vm, &st), 0);
		if (r >= rounds && ((bi.inflated_pages && st.swapout_pages) ||
				    th_now_ms() > until))
			break;
	}
	atomic_store(&cc.stop, true);
	for (unsigned i = 0; i < CC_THREADS; i++)
		pthread_join(tids[i], NULL);
	pthread_join(swapper, NULL);
	mvg_balloon_get_stats(drv, &ds);
	mvg_balloon_stop(drv);
	assert_int_equal(mv_vm_balloon_info(cc.vm, &bi), 0);
	assert_int_equal(mv_vm_stats(cc.vm, &st), 0);
	print_message(
		"  %llu guest ops, %llu pages inflated, %llu deflated (%llu on OOM), %llu swapped out\n",
		(unsigned long long)atomic_load(&cc.ops),
		(unsigned long long)bi.inflated_pages,
		(unsigned long long)bi.deflated_pages,
		(unsigned long long)ds.oom_deflated,
		(unsigned long long)st.swapout_pages);
	assert_int_equal(atomic_load(&cc.errors), 0);
	assert_int_equal(bi.errors, 0);
	assert_int_equal(bi.violations, 0);
	assert_int_equal(bi.actual_pages, 0);
	assert_true(bi.inflated_pages > 0);
	assert_true(st.swapout_pages > 0);
	assert_int_equal(st.fault_errors, 0);
	mvg_os_destroy(cc.os);
	mv_vm_destroy(cc.vm);
	th_host_destroy(&t);
}

static void
test_inflate_drops_frames_by_madvise_when_process_madvise_fails(void **state)
{
	uint32_t pfns[] = { 10, 11, 12, 20, 21 };
	uint8_t taken[VM_PAGES] = { 0 };
	struct mv_balloon_reply rep;
	static struct fx f;

	(void)state;
	raw_up(&f, NULL, 4);
	mv__inject_fail(MV_INJ_PROCESS_MADVISE, 1, 0, ENOMEM);
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_INFLATE, pfns, 5, &rep),
			 0);
	assert_int_equal(mv__inject_hits(MV_INJ_PROCESS_MADVISE), 1);
	mv__inject_reset();
	assert_int_equal(rep.accepted, 5);
	assert_int_equal(vm_consumed(&f), VM_PAGES - 5);
	for (unsigned i = 0; i < 5; i++)
		taken[pfns[i]] = 1;
	assert_intact(&f, 4, taken);
	fx_down(&f);
}

static void
test_inflate_whose_frames_cannot_be_dropped_is_refused_unharmed(void **state)
{
	uint32_t pfns[] = { 10, 11, 12, 20 };
	struct mv_balloon_reply rep;
	static struct fx f;

	(void)state;
	raw_up(&f, NULL, 4);
	mv__inject_fail(MV_INJ_PROCESS_MADVISE, 1, 0, ENOMEM);
	mv__inject_fail(MV_INJ_MADVISE, 1, 0, ENOMEM);
	assert_int_equal(send_pfns(&f, MV_BALLOON_MSG_INFLATE, pfns, 4, &rep),
			 0);
	assert_true(mv__inject_hits(MV_INJ_MADVISE) >= 2);
	mv__inject_reset();
	assert_int_equal(rep.accepted, 0);
	assert_int_equal(rep.rejected, 4);
	assert_int_equal(info(&f).actual_pages, 0);
	assert_int_equal(info(&f).errors, 4);
	assert_int_equal(vm_consumed(&f), VM_PAGES);
	assert_intact(&f, 4, NULL);
	fx_down(&f);
}

/* Sends one PFN in a message of its own; the host must take it. */
static void balloon_one(struct fx *f, uint32_t type, uint32_t pfn)
{
	struct mv_balloon_reply rep;

	assert_int_equal(send_pfns(f, type, &pfn, 1, &rep), 0);
	assert_int_equal(rep.accepted, 1);
}

/*
 * A page that could not be read back from swap is poisoned (a touch raises
 * SIGBUS).  Once the guest has given it to the balloon its content is gone
 * by the guest's own choice: after the deflate it reads zeros like every
 * deflated page, not SIGBUS, and so does a touch while it is still in the
 * balloon (a violation); its neighbours keep their bytes.
 */
static void test_deflated_unreadable_page_reads_zero_not_sigbus(void **state)
{
	struct mv_vm_stats st;
	static struct fx f;

	(void)state;
	raw_up(&f, NULL, 9);
	for (uint64_t p = 5; p <= 7; p++)
		assert_int_equal(mv_vm_swap_out_page(f.vm, p), 0);
	mv__inject_fail(MV_INJ_PREAD, 1, 0, EIO);
	assert_int_equal(th_touch(page(&f, 5), f.t.host), 2);
	assert_int_equal(th_touch(page(&f, 7), f.t.host), 2);
	mv__inject_reset();
	mv_vm_stats(f.vm, &st);
	assert_int_equal(st.unreadable_pages, 2);
	/* page 5 through a deflate */
	balloon_one(&f, MV_BALLOON_MSG_INFLATE, 5);
	balloon_one(&f, MV_BALLOON_MSG_DEFLATE, 5);
	assert_int_equal(th_touch(page(&f, 5), f.t.host), 1);
	assert_true(th_is_zero(page(&f, 5)));
	/* page 7 touched while still in the balloon */
	balloon_one(&f, MV_BALLOON_MSG_INFLATE, 7);
	assert_int_equal(th_touch(page(&f, 7), f.t.host), 1);
	assert_true(th_is_zero(page(&f, 7)));
	assert_int_equal(info(&f).violations, 1);
	/* the swapped page between them comes back from swap whole */
	for (uint64_t p = 0; p < VM_PAGES; p++)
		if (p != 5 && p != 7 && !th_check(page(&f, p), 9, p, 0))
			fail_msg("page %llu lost its content",
				 (unsigned long long)p);
	fx_down(&f);
}

/*
 * Ballooning in a VM with poisoned pages, under way while guest threads
 * work.  Layout of the 2048 pages: guest thread t owns pages
 * [t*128, t*128+128) and, inside the balloon range [512, 1024), every
 * fourth page (ppn % 4 == 3) whose group (ppn / 4) % 3 is t; the other
 * pages of that range are the driver's, inflated and deflated in runs of
 * three between the guest threads' pages, so that a drop wider than its
 * run would cost a guest thread its bytes.  Poisoned: three of the
 * driver's pages (each inflated first in a later round) and two pages
 * outside (never given to the balloon).  A swapper keeps pages moving
 * out, so inflates meet PRIVATE, SWAPPED and ZERO pages alike.
 */
#define UB_THREADS 3
#define UB_LO 512u
#define UB_HI 1024u
#define UB_ROUNDS 40u
#define UB_TAG 9u

static const uint32_t ub_poison_in[] = { 513, 700, 901 };
static const uint32_t ub_poison_out[] = { 1100, 1500 };

struct ub {
	mv_host *host;
	mv_vm *vm;
	uint8_t *mem;
	mv_balloon_chan *ch;
	atomic_bool stop;
	atomic_uint_fast64_t ops, errors;
	/* the driver: the round the main thread posted, the one it did */
	atomic_uint round, done;
	atomic_uint_fast64_t send_errors;
	pthread_t threads[UB_THREADS + 2]; /* guests, swapper, driver */
	unsigned nthreads;
};

struct ub_thread {
	struct ub *ub;
	unsigned idx;
	uint32_t pages[256];
	uint32_t version[256];
	unsigned n;
	atomic_bool finished;
};

static bool ub_is_driver_page(uint32_t p)
{
	return p >= UB_LO && p < UB_HI && p % 4 != 3;
}

static bool ub_in(const uint32_t *set, unsigned n, uint32_t p)
{
	for (unsigned i = 0; i < n; i++)
		if (set[i] == p)
			return true;
	return false;
}

/* The driver's pages in round r: those of every 64-page chunk c of the
 * balloon range with (c + r) % 3 != 0, but chunk 0 (page 513) only from
 * round 1 on, chunk 2 (700) from round 2 on and chunk 6 (901) from round
 * 4 on: each poisoned page meets its first inflate in a round of its own. */
static bool ub_in_round(uint32_t p, unsigned r)
{
	unsigned c = (p - UB_LO) / 64;

	if (r < 3 && ((c == 0 && r < 1) || (c == 2 && r < 2) || c == 6))
		return false;
	return (c + r) % 3 != 0;
}

static void *ub_guest(void *arg)
{
	struct ub_thread *t = arg;
	uint64_t rng = 0x9e3779b97f4a7c15ull * (t->idx + 1), r;
	unsigned i;

	while (!atomic_load(&t->ub->stop)) {
		r = xs(&rng);
		i = (unsigned)(r >> 16) % t->n;
		if (!th_check(t->ub->mem + (uint64_t)t->pages[i] * MV_PAGE_SIZE,
			      UB_TAG, t->pages[i], t->version[i]))
			atomic_fetch_add(&t->ub->errors, 1);
		t->version[i]++;
		th_fill(t->ub->mem + (uint64_t)t->pages[i] * MV_PAGE_SIZE,
			UB_TAG, t->pages[i], t->version[i]);
		atomic_fetch_add(&t->ub->ops, 1);
	}
	for (i = 0; i < t->n; i++)
		if (!th_check(t->ub->mem + (uint64_t)t->pages[i] * MV_PAGE_SIZE,
			      UB_TAG, t->pages[i], t->version[i]))
			atomic_fetch_add(&t->ub->errors, 1);
	atomic_store(&t->finished, true);
	return NULL;
}

static void *ub_swapper(void *arg)
{
	struct ub *ub = arg;
	struct timespec ts = { 0, 1000000L };
	uint64_t done;

	while (!atomic_load(&ub->stop)) {
		mv_vm_swap_out(ub->vm, 64, &done);
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* Sends the round's driver pages in messages of up to 256, checking that
 * the host took every one. */
static void ub_send_round(struct ub *ub, uint32_t type, unsigned r)
{
	struct mv_balloon_msg m = { .type = type };
	struct mv_balloon_reply rep;

	for (uint32_t p = UB_LO; p <= UB_HI; p++) {
		if (p < UB_HI && ub_is_driver_page(p) && ub_in_round(p, r))
			m.u.pfns[m.num++] = p;
		if (m.num == MV_BALLOON_PFNS_MAX || (p == UB_HI && m.num)) {
			if (mv_balloon_send(ub->ch, &m, &rep) ||
			    rep.accepted != m.num)
				atomic_fetch_add(&ub->send_errors, 1);
			m.num = 0;
		}
	}
}

/* The driver thread: on each round the main thread posts, inflates the
 * round's pages and deflates them again. */
static void *ub_driver(void *arg)
{
	struct ub *ub = arg;
	struct timespec ts = { 0, 1000000L };
	unsigned r;

	while (!atomic_load(&ub->stop)) {
		r = atomic_load(&ub->round);
		if (r == atomic_load(&ub->done)) {
			nanosleep(&ts, NULL);
			continue;
		}
		ub_send_round(ub, MV_BALLOON_MSG_INFLATE, r - 1);
		ub_send_round(ub, MV_BALLOON_MSG_DEFLATE, r - 1);
		atomic_store(&ub->done, r);
	}
	return NULL;
}

static bool ub_round_done(void *arg)
{
	struct ub *ub = arg;

	return atomic_load(&ub->done) == atomic_load(&ub->round);
}

struct ub_progress {
	struct ub *ub;
	uint64_t from;
};

static bool ub_guests_moved(void *arg)
{
	struct ub_progress *w = arg;

	return atomic_load(&w->ub->ops) >= w->from + 100;
}

static bool ub_guests_finished(void *arg)
{
	struct ub_thread *t = arg;

	for (unsigned i = 0; i < UB_THREADS; i++)
		if (!atomic_load(&t[i].finished))
			return false;
	return true;
}

static bool ub_threads_ended(void *arg)
{
	struct ub *ub = arg;

	for (unsigned i = 0; i < ub->nthreads; i++)
		if (pthread_tryjoin_np(ub->threads[i], NULL) == 0)
			ub->threads[i--] = ub->threads[--ub->nthreads];
	return !ub->nthreads;
}

/* Stops and joins the threads (a failed assert leaves them running); one
 * still stuck after TH_WAIT_MS (a guest thread whose fault is never
 * served) cannot be joined, and the VM cannot go under it: the binary
 * ends, a failure. */
static void ub_cleanup(void *arg)
{
	struct ub *ub = arg;

	atomic_store(&ub->stop, true);
	if (!th_wait_until(ub_threads_ended, ub, TH_WAIT_MS)) {
		fprintf(stderr, "%u threads still stuck after %u ms: %s\n",
			ub->nthreads, TH_WAIT_MS, mv_host_errmsg(ub->host));
		fflush(NULL);
		abort();
	}
}

static void ub_start(struct ub *ub, void *(*fn)(void *), void *arg)
{
	assert_int_equal(
		pthread_create(&ub->threads[ub->nthreads], NULL, fn, arg), 0);
	ub->nthreads++;
}

static void
test_balloon_among_working_guest_threads_and_poisoned_pages_loses_nothing(
	void **state)
{
	static struct ub_thread th[UB_THREADS];
	/* what each driver page holds: a version, -1 zeros, -2 poisoned */
	static int64_t content[VM_PAGES];
	static struct ub ub;
	struct ub_progress prog;
	struct mv_balloon_info bi;
	struct mv_vm_stats st, st0;
	static struct fx f;
	uint8_t *pg;

	(void)state;
	raw_up(&f, NULL, UB_TAG);
	memset(&ub, 0, sizeof(ub));
	th_at_teardown(ub_cleanup, &ub);
	/* poisoned: swapped out, then read back failing every time */
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(mv_vm_swap_out_page(f.vm, ub_poison_in[i]), 0);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(mv_vm_swap_out_page(f.vm, ub_poison_out[i]),
				 0);
	mv__inject_fail(MV_INJ_PREAD, 1, 0, EIO);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(th_touch(page(&f, ub_poison_in[i]), f.t.host),
				 2);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(th_touch(page(&f, ub_poison_out[i]), f.t.host),
				 2);
	mv__inject_reset();
	mv_vm_stats(f.vm, &st0);
	assert_int_equal(st0.unreadable_pages, 5);

	ub.host = f.t.host;
	ub.vm = f.vm;
	ub.mem = f.mem;
	ub.ch = f.ch;
	for (uint32_t p = 0; p < VM_PAGES; p++)
		content[p] = ub_in(ub_poison_in, 3, p) ? -2 : 0;
	for (unsigned t = 0; t < UB_THREADS; t++) {
		th[t] = (struct ub_thread){ .ub = &ub, .idx = t };
		for (uint32_t p = t * 128; p < t * 128 + 128; p++)
			th[t].pages[th[t].n++] = p;
		for (uint32_t p = UB_LO + 3; p < UB_HI; p += 4)
			if ((p / 4) % UB_THREADS == t)
				th[t].pages[th[t].n++] = p;
	}
	for (unsigned t = 0; t < UB_THREADS; t++)
		ub_start(&ub, ub_guest, &th[t]);
	ub_start(&ub, ub_swapper, &ub);
	ub_start(&ub, ub_driver, &ub);

	for (unsigned r = 0; r < UB_ROUNDS; r++) {
		/* the pages of this round hold what the driver left there */
		for (uint32_t p = UB_LO; p < UB_HI; p++) {
			if (!ub_is_driver_page(p) || !ub_in_round(p, r) ||
			    content[p] == -2)
				continue;
			pg = page(&f, p);
			if (content[p] < 0 ? !th_is_zero(pg) :
					     !th_check(pg, UB_TAG, p,
						       (uint64_t)content[p]))
				fail_msg(
					"driver page %u changed before round %u",
					p, r);
		}
		prog = (struct ub_progress){ &ub, atomic_load(&ub.ops) };
		atomic_store(&ub.round, r + 1);
		/* while the driver works: the poisoned pages outside */
		for (unsigned i = 0; i < 2; i++)
			assert_int_equal(th_touch(page(&f, ub_poison_out[i]),
						  f.t.host),
					 2);
		assert_true(th_wait_until(ub_round_done, &ub, TH_WAIT_MS));
		assert_true(th_wait_until(ub_guests_moved, &prog, TH_WAIT_MS));
		assert_int_equal(atomic_load(&ub.send_errors), 0);
		/* deflated: zeros, never SIGBUS, the poisoned ones too */
		for (unsigned i = 0; i < 3; i++)
			if (ub_in_round(ub_poison_in[i], r))
				assert_int_equal(
					th_touch(page(&f, ub_poison_in[i]),
						 f.t.host),
					1);
		for (uint32_t p = UB_LO; p < UB_HI; p++) {
			if (!ub_is_driver_page(p) || !ub_in_round(p, r))
				continue;
			if (!th_is_zero(page(&f, p)))
				fail_msg(
					"deflated page %u not zero in round %u",
					p, r);
			content[p] = -1;
			/* the guest takes half of them back into use */
			if ((p + r) % 2) {
				th_fill(page(&f, p), UB_TAG, p, 1000 + r);
				content[p] = 1000 + r;
			}
		}
	}
	atomic_store(&ub.stop, true);
	assert_true(th_wait_until(ub_guests_finished, th, TH_WAIT_MS));
	ub_cleanup(&ub);

	assert_int_equal(atomic_load(&ub.errors), 0);
	assert_int_equal(mv_vm_balloon_info(f.vm, &bi), 0);
	assert_int_equal(bi.errors, 0);
	assert_int_equal(bi.violations, 0);
	assert_int_equal(bi.actual_pages, 0);
	assert_int_equal(bi.inflated_pages, bi.deflated_pages);
	mv_vm_stats(f.vm, &st);
	assert_int_equal(st.fault_errors, st0.fault_errors);
	assert_true(st.swapout_pages > st0.swapout_pages);
	/* nobody's pages, never in the balloon: exactly their bytes */
	for (uint32_t p = UB_THREADS * 128; p < VM_PAGES; p++) {
		if ((p >= UB_LO && p < UB_HI) || ub_in(ub_poison_out, 2, p))
			continue;
		if (!th_check(page(&f, p), UB_TAG, p, 0))
			fail_msg("page %u lost its content", p);
	}
	/* the poisoned pages never given to the balloon: still poisoned */
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(th_touch(page(&f, ub_poison_out[i]), f.t.host),
				 2);
	fx_down(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_inflate_reclaims_exactly_the_frames_of_free_guest_pages),
		cmocka_unit_test(
			test_guest_os_never_hands_out_a_ballooned_page),
		cmocka_unit_test(test_deflated_pages_read_zero_not_stale_data),
		cmocka_unit_test(
			test_deflated_page_of_an_image_vm_reads_zero_not_image),
		cmocka_unit_test(test_targets_beyond_the_cap_are_clipped),
		cmocka_unit_test(
			test_out_of_range_pfns_are_refused_and_harm_nothing),
		cmocka_unit_test(
			test_duplicate_pfns_are_refused_and_harm_nothing),
		cmocka_unit_test(
			test_deflating_pages_not_in_the_balloon_is_refused),
		cmocka_unit_test(
			test_oversized_and_unknown_messages_are_refused_whole),
		cmocka_unit_test(test_inflating_beyond_the_cap_is_refused),
		cmocka_unit_test(
			test_deflate_on_oom_gives_the_guest_its_memory_back),
		cmocka_unit_test(
			test_touching_a_ballooned_page_reads_zero_and_counts),
		cmocka_unit_test(
			test_a_fault_queued_before_its_page_was_ballooned_is_no_violation),
		cmocka_unit_test(
			test_inflate_takes_swapped_pages_and_their_slot),
		cmocka_unit_test(
			test_inflate_takes_compressed_pages_out_of_the_cache),
		cmocka_unit_test(test_guest_statistics_reach_the_host),
		cmocka_unit_test(
			test_one_driver_per_vm_and_its_absence_is_shown),
		cmocka_unit_test(test_stopping_the_driver_deflates_everything),
		cmocka_unit_test(test_burst_guest_gives_its_free_memory_back),
		cmocka_unit_test(
			test_deflated_unreadable_page_reads_zero_not_sigbus),
		cmocka_unit_test(
			test_balloon_among_working_guest_threads_and_poisoned_pages_loses_nothing),
		cmocka_unit_test(
			test_guest_threads_driver_and_host_swapping_lose_nothing),
		cmocka_unit_test(
			test_inflate_drops_frames_by_madvise_when_process_madvise_fails),
		cmocka_unit_test(
			test_inflate_whose_frames_cannot_be_dropped_is_refused_unharmed),
	};

	return th_run_tests(tests);
}

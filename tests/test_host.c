// SPDX-License-Identifier: MIT
/*
 * test_host.c - machine memory: minFree by ESXi's tiers, settings by ESX
 * names and their validation at host creation, the host's messages and log
 * callback, the frame budget, and the free-memory state.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"
#include "inject.h"
#include "internal.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void test_minfree_follows_esxi_tiers(void **state)
{
	(void)state;
	assert_int_equal(mv_minfree_bytes(1 * GiB),
			 1 * GiB / 100 * 6 + (1 * GiB % 100) * 6 / 100);
	assert_int_equal(mv_minfree_bytes(4 * GiB),
			 4 * GiB / 100 * 6 + (4 * GiB % 100) * 6 / 100);
	/* 4 GiB at 6% + 8 GiB at 4% + 4 GiB at 2% */
	assert_true(mv_minfree_bytes(16 * GiB) / MiB ==
		    (4 * 1024 * 6 + 8 * 1024 * 4 + 4 * 1024 * 2) / 100);
	/* and 1% beyond 28 GiB */
	assert_true(
		mv_minfree_bytes(128 * GiB) / MiB ==
		(4 * 1024 * 6 + 8 * 1024 * 4 + 16 * 1024 * 2 + 100 * 1024 * 1) /
			100);
}

static void test_settings_default_to_esx_values(void **state)
{
	struct mv_settings s;

	(void)state;
	mv_settings_init(&s);
	assert_int_equal(s.share_scan_time_min, 60);
	assert_int_equal(s.share_scan_ghz, 4);
	assert_int_equal(s.share_rate_max_pages, 1024);
	assert_int_equal(s.share_force_salting, 2);
	assert_int_equal(s.ctl_max_pct, 65);
	assert_int_equal(s.mem_zip_max_pct, 10);
	assert_int_equal(s.idle_tax_pct, 75);
	assert_int_equal(s.sample_period_s, 60);
	assert_int_equal(s.balance_period_s, 15);
	assert_int_equal(s.fault_around_pages, 16);
}

static void test_settings_set_by_esx_name(void **state)
{
	struct mv_settings s;

	(void)state;
	mv_settings_init(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.ShareScanTime", "10"), 0);
	assert_int_equal(s.share_scan_time_min, 10);
	assert_int_equal(mv_settings_set(&s, "mem.idletax", " 0 "), 0);
	assert_int_equal(s.idle_tax_pct, 0);
}

static void test_settings_reject_unknown_names_and_bad_values(void **state)
{
	struct mv_settings s, before;

	(void)state;
	mv_settings_init(&s);
	before = s;
	assert_int_equal(mv_settings_set(&s, "Mem.NoSuchThing", "1"), -EINVAL);
	assert_int_equal(mv_settings_set(&s, "Mem.IdleTax", "100"), -EINVAL);
	assert_int_equal(mv_settings_set(&s, "Mem.IdleTax", "-1"), -EINVAL);
	assert_int_equal(mv_settings_set(&s, "Mem.IdleTax", "7x"), -EINVAL);
	assert_int_equal(mv_settings_set(&s, "Mem.IdleTax", ""), -EINVAL);
	assert_int_equal(mv_settings_set(&s, "Mem.FaultAroundPages", "65"),
			 -EINVAL);
	assert_int_equal(mv_settings_set(&s, "Mem.ShareScanTime",
					 "99999999999999999999"),
			 -EINVAL);
	assert_memory_equal(&s, &before, sizeof(s));
}

static void test_host_rejects_bad_config(void **state)
{
	struct mv_host_config cfg;
	mv_host *h = NULL;

	(void)state;
	mv_host_config_init(&cfg);
	cfg.memsize_bytes = 4096;
	assert_int_equal(mv_host_create(&cfg, &h), -EINVAL);
	cfg.memsize_bytes = 64 * MiB + 1;
	assert_int_equal(mv_host_create(&cfg, &h), -EINVAL);
	cfg.memsize_bytes = 64 * MiB;
	cfg.swapdir = "";
	assert_int_equal(mv_host_create(&cfg, &h), -EINVAL);
	assert_null(h);
}

/* Creates a host with settings s; returns its error and copies the
 * failure's sentence into msg. */
static int create_with(const struct mv_settings *s, char *msg, size_t len)
{
	struct mv_host_config cfg;
	char swapdir[TH_DIR_LEN];
	mv_host *h = NULL;
	int err;

	th_scratch(swapdir, sizeof(swapdir), "host");
	th_remove_at_teardown(swapdir);
	mv_host_config_init(&cfg);
	cfg.memsize_bytes = 16 * MiB;
	cfg.swapdir = swapdir;
	cfg.settings = *s;
	err = mv_host_create(&cfg, &h);
	mv_host_errmsg_copy(NULL, msg, len);
	if (!err)
		mv_host_destroy(h);
	else
		assert_null(h);
	return err;
}

static void test_host_refuses_zero_swap_run_pages(void **state)
{
	struct mv_settings s;
	char msg[512];

	(void)state;
	mv_settings_init(&s);
	s.swap_run_pages = 0; /* a divisor: SIGFPE in reclaim before */
	assert_int_equal(create_with(&s, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "Mem.SwapRunPages"));
	assert_non_null(strstr(msg, "swap_run_pages"));
	assert_non_null(strstr(msg, "is 0"));
	assert_non_null(strstr(msg, "from 1 to 16"));
}

static void test_host_refuses_zero_fault_around_pages(void **state)
{
	struct mv_settings s;
	char msg[512];

	(void)state;
	mv_settings_init(&s);
	s.fault_around_pages = 0; /* a divisor: SIGFPE on the first touch */
	assert_int_equal(create_with(&s, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "Mem.FaultAroundPages"));
	assert_non_null(strstr(msg, "is 0"));
	assert_non_null(strstr(msg, "from 1 to 64"));
}

static void test_host_refuses_settings_above_their_range(void **state)
{
	struct mv_settings s;
	char msg[512];

	(void)state;
	mv_settings_init(&s);
	s.idle_tax_pct = 100;
	assert_int_equal(create_with(&s, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "Mem.IdleTax"));
	assert_non_null(strstr(msg, "is 100"));
	mv_settings_init(&s);
	s.fault_threads = 17; /* past the fault thread array */
	assert_int_equal(create_with(&s, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "Mem.FaultThreads"));
	mv_settings_init(&s);
	s.swapin_cluster_pages = 65; /* past the run buffers */
	assert_int_equal(create_with(&s, msg, sizeof(msg)), -EINVAL);
	assert_non_null(strstr(msg, "Mem.SwapInClusterPages"));
}

static void test_host_accepts_settings_at_their_bounds(void **state)
{
	struct mv_settings s;
	char msg[512];

	(void)state;
	mv_settings_init(&s);
	s.swap_run_pages = 1;
	s.fault_around_pages = 64;
	s.idle_tax_pct = 99;
	s.share_scan_ghz = 0;
	assert_int_equal(create_with(&s, msg, sizeof(msg)), 0);
	assert_int_equal(mv_settings_check(&s, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "");
}

static void test_settings_check_covers_every_field(void **state)
{
	struct mv_settings s;
	char msg[512];
	uint32_t *f;

	(void)state;
	/* every field: no range reaches UINT32_MAX, so each must be refused */
	for (size_t i = 0; i < sizeof(s) / sizeof(uint32_t); i++) {
		mv_settings_init(&s);
		f = (uint32_t *)&s + i;
		*f = UINT32_MAX;
		assert_int_equal(mv_settings_check(&s, msg, sizeof(msg)),
				 -EINVAL);
		assert_non_null(strstr(msg, "is 4294967295"));
	}
}

static void test_errmsg_copy_is_cut_to_the_buffer(void **state)
{
	struct th_host t;
	char small[8];

	(void)state;
	th_host_create(&t, 16 * MiB, NULL);
	mv__host_api_msg(t.host, "a sentence longer than eight");
	memset(small, 'x', sizeof(small));
	assert_int_equal(mv_host_errmsg_copy(t.host, small, sizeof(small)),
			 (int)strlen("a sentence longer than eight"));
	assert_string_equal(small, "a sente");
	assert_int_equal(mv_host_errmsg_copy(t.host, small, 0), -EINVAL);
	assert_string_equal(mv_host_errmsg(t.host),
			    "a sentence longer than eight");
	th_host_destroy(&t);
}

struct logged {
	pthread_mutex_t lock;
	unsigned n;
	enum mv_log_level level[64];
	char msg[64][MV_ERRMSG_MAX + 48];
	pthread_t caller; /* the thread that raised the events */
	bool other_thread; /* every event came from another thread */
	_Atomic bool hold; /* the callback waits while set */
	_Atomic bool held; /* it is waiting */
	mv_host *host; /* stats taken from inside the callback */
};

static void log_cb(void *arg, enum mv_log_level level, const char *msg)
{
	struct logged *l = arg;
	struct mv_host_stats st;

	while (atomic_load(&l->hold)) {
		atomic_store(&l->held, true);
		sched_yield();
	}
	/* no engine lock is held here: taking vms_lock must not deadlock */
	if (l->host)
		mv_host_stats(l->host, &st);
	pthread_mutex_lock(&l->lock);
	if (pthread_equal(pthread_self(), l->caller))
		l->other_thread = false;
	if (l->n < 64) {
		l->level[l->n] = level;
		snprintf(l->msg[l->n], sizeof(l->msg[0]), "%s", msg);
	}
	l->n++;
	pthread_mutex_unlock(&l->lock);
}

static unsigned logged_n(struct logged *l)
{
	unsigned n;

	pthread_mutex_lock(&l->lock);
	n = l->n;
	pthread_mutex_unlock(&l->lock);
	return n;
}

/* Polls until the callback has seen n events, for at most 5 s. */
static bool wait_logged(struct logged *l, unsigned n)
{
	struct timespec ts = { 0, 1000000L };

	for (int i = 0; i < 5000; i++) {
		if (logged_n(l) >= n)
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

/* A host whose swap directory is a fresh scratch directory, made into
 * swapdir (TH_DIR_LEN bytes), logging into l. */
static mv_host *log_host(struct logged *l, char *swapdir)
{
	struct mv_host_config cfg;
	mv_host *h = NULL;

	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->lock, NULL);
	l->caller = pthread_self();
	l->other_thread = true;
	th_scratch(swapdir, TH_DIR_LEN, "log");
	th_remove_at_teardown(swapdir);
	mv_host_config_init(&cfg);
	cfg.memsize_bytes = 64 * MiB;
	cfg.swapdir = swapdir;
	cfg.settings.sample_period_s = 0;
	cfg.settings.share_scan_ghz = 0;
	cfg.log = log_cb;
	cfg.log_arg = l;
	assert_int_equal(mv_host_create(&cfg, &h), 0);
	return h;
}

static void
test_log_callback_gets_background_events_from_its_own_thread(void **state)
{
	char swapdir[TH_DIR_LEN];
	struct mv_vm_config vc;
	struct logged l;
	mv_vm *vm;
	mv_host *h;

	(void)state;
	h = log_host(&l, swapdir);
	l.host = h;
	mv_vm_config_init(&vc);
	vc.memsize_bytes = 1 * MiB;
	assert_int_equal(mv_vm_create(h, &vc, &vm), 0);
	th_fill(mv_vm_mem(vm), 4, 0, 0);
	/* every write: the swap store retries a failed one (swap.c) */
	mv__inject_fail(MV_INJ_PWRITE, 1, 0, ENOSPC);
	assert_int_equal(mv_vm_swap_out_page(vm, 0), -ENOSPC);
	mv__inject_reset();
	assert_true(wait_logged(&l, 1));
	assert_int_equal(l.level[0], MV_LOG_WARNING);
	assert_non_null(strstr(l.msg[0], "stay in memory"));
	assert_true(l.other_thread);
	assert_true(th_check(mv_vm_mem(vm), 4, 0, 0));
	mv_vm_destroy(vm);
	mv_host_destroy(h);
	rmdir(swapdir);
}

static void test_log_api_errors_are_not_events(void **state)
{
	char swapdir[TH_DIR_LEN];
	struct mv_vm_config vc;
	struct logged l;
	mv_vm *vm = NULL;
	mv_host *h;

	(void)state;
	h = log_host(&l, swapdir);
	mv_vm_config_init(&vc);
	vc.memsize_bytes = 4096 + 1;
	assert_int_equal(mv_vm_create(h, &vc, &vm), -EINVAL);
	assert_non_null(strstr(mv_host_errmsg(h), "multiple of 4 KiB"));
	mv__host_event(h, MV_LOG_INFO, "marker");
	assert_true(wait_logged(&l, 1));
	mv_host_destroy(h);
	/* the API error went to its caller only: the marker is first */
	assert_int_equal(l.n, 1);
	assert_string_equal(l.msg[0], "marker");
	assert_int_equal(l.level[0], MV_LOG_INFO);
	rmdir(swapdir);
}

static void test_log_drops_the_oldest_events_and_says_how_many(void **state)
{
	char swapdir[TH_DIR_LEN];
	struct logged l;
	mv_host *h;

	(void)state;
	h = log_host(&l, swapdir);
	atomic_store(&l.hold, true);
	mv__host_event(h, MV_LOG_INFO, "event 0");
	/* the log thread holds event 0, in the callback */
	for (int i = 0; i < 5000 && !atomic_load(&l.held); i++)
		nanosleep(&(struct timespec){ 0, 1000000L }, NULL);
	assert_true(atomic_load(&l.held));
	for (int i = 1; i <= MV_LOG_QUEUE + 5; i++)
		mv__host_event(h, MV_LOG_WARNING, "event %d", i);
	atomic_store(&l.hold, false);
	/* destroy delivers what is queued before it returns */
	mv_host_destroy(h);
	assert_int_equal(l.n, 1 + MV_LOG_QUEUE);
	assert_string_equal(l.msg[0], "event 0");
	assert_string_equal(l.msg[1], "(5 earlier events dropped) event 6");
	assert_string_equal(l.msg[MV_LOG_QUEUE], "event 37");
	rmdir(swapdir);
}

static void test_idle_host_is_in_high_state(void **state)
{
	struct mv_host_stats st;
	struct th_host t;

	(void)state;
	th_host_create(&t, 64 * MiB, NULL);
	mv_host_stats(t.host, &st);
	assert_int_equal(st.state, MV_STATE_HIGH);
	assert_int_equal(st.free_pages, st.memsize_pages);
	assert_int_equal(st.minfree_pages, mv_minfree_bytes(64 * MiB) / 4096);
	assert_string_equal(mv_mem_state_name(st.state), "high");
	th_host_destroy(&t);
}

struct watch {
	mv_host *host;
	atomic_bool stop;
	uint64_t max_consumed; /* the most ever seen */
	bool over; /* ever above the budget */
	_Atomic uint64_t samples; /* looks taken */
};

static void *watch_main(void *arg)
{
	struct watch *w = arg;
	struct mv_host_stats st;

	while (!atomic_load(&w->stop)) {
		mv_host_stats(w->host, &st);
		if (st.consumed_pages > w->max_consumed)
			w->max_consumed = st.consumed_pages;
		if (st.consumed_pages > st.memsize_pages)
			w->over = true;
		atomic_fetch_add(&w->samples, 1);
	}
	return NULL;
}

struct sample_mark {
	struct watch *w;
	uint64_t n;
};

static bool sampled_since(void *arg)
{
	struct sample_mark *k = arg;

	return atomic_load(&k->w->samples) > k->n;
}

static void test_consumption_never_exceeds_budget(void **state)
{
	struct watch w = { 0 };
	struct mv_host_stats st;
	struct th_host t;
	pthread_t th;
	uint8_t *m;
	mv_vm *a, *b;

	(void)state;
	th_host_create(&t, 8 * MiB, NULL);
	a = th_vm_create(&t, "a", 16 * MiB);
	b = th_vm_create(&t, "b", 16 * MiB);
	w.host = t.host;
	assert_int_equal(pthread_create(&th, NULL, watch_main, &w), 0);
	for (int round = 0; round < 2; round++) {
		m = mv_vm_mem(round ? b : a);
		for (uint64_t p = 0; p < 16 * MiB / MV_PAGE_SIZE; p++) {
			m[p * MV_PAGE_SIZE] = 1;
			/* with both CPUs busy the watcher may not run for a
			 * while: let it look every 256 pages */
			if (p % 256 == 255) {
				struct sample_mark k = {
					&w, atomic_load(&w.samples)
				};

				assert_true(th_wait_until(sampled_since, &k,
							  TH_WAIT_MS));
			}
		}
	}
	atomic_store(&w.stop, true);
	pthread_join(th, NULL);
	assert_false(w.over);
	assert_int_equal(w.max_consumed <= 8 * MiB / MV_PAGE_SIZE, 1);
	th_settle(t.host);
	mv_host_stats(t.host, &st);
	assert_true(st.state <= MV_STATE_SOFT);
	assert_true(st.free_pages * 100 >= st.minfree_pages * 64);
	assert_true(st.reclaim_pages > 0);
	/* the budget was reached: guests took memory until reclaim had to
	 * start (whether a fault also had to wait for a frame depends on how
	 * fast reclaim kept up, which a busy machine decides) */
	assert_true(w.max_consumed + st.minfree_pages >= st.memsize_pages);
	mv_vm_destroy(a);
	mv_vm_destroy(b);
	th_host_destroy(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minfree_follows_esxi_tiers),
		cmocka_unit_test(test_settings_default_to_esx_values),
		cmocka_unit_test(test_settings_set_by_esx_name),
		cmocka_unit_test(
			test_settings_reject_unknown_names_and_bad_values),
		cmocka_unit_test(test_host_rejects_bad_config),
		cmocka_unit_test(test_host_refuses_zero_swap_run_pages),
		cmocka_unit_test(test_host_refuses_zero_fault_around_pages),
		cmocka_unit_test(test_host_refuses_settings_above_their_range),
		cmocka_unit_test(test_host_accepts_settings_at_their_bounds),
		cmocka_unit_test(test_settings_check_covers_every_field),
		cmocka_unit_test(test_errmsg_copy_is_cut_to_the_buffer),
		cmocka_unit_test(
			test_log_callback_gets_background_events_from_its_own_thread),
		cmocka_unit_test(test_log_api_errors_are_not_events),
		cmocka_unit_test(
			test_log_drops_the_oldest_events_and_says_how_many),
		cmocka_unit_test(test_idle_host_is_in_high_state),
		cmocka_unit_test(test_consumption_never_exceeds_budget),
	};

	return th_run_tests(tests);
}

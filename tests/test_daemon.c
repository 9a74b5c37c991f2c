// SPDX-License-Identifier: MIT
/*
 * test_daemon.c - the host daemon (src/daemon.c), spoken to by raw socket
 * clients of this process as an agent, a buggy one or a hostile one
 * would: HELLO makes a remote VM that holds its grant in the host's
 * budget, STATS show in its statistics, a smaller grant is released only
 * on its acknowledgement, a closed connection gives the grant back, the
 * balloon target goes to the hook, and every bad, fuzzed, truncated,
 * oversized or partial message is answered with ERROR (or the connection
 * closed), changes nothing in the host, and leaves other agents served.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <dirent.h>
#include <signal.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "helper.h"
#include "internal.h"
#include "proto.h"

#define MiB (1ull << 20)
#define HOST_BYTES (64 * MiB)
#define VM_BYTES (32 * MiB)
#define VM_PAGES (VM_BYTES >> 12)
#define RECV_MS 10000

struct fx {
	struct th_host t;
	mv_daemon *d;
	char dir[TH_DIR_LEN];
	char path[TH_SOCK_LEN];
};

static struct fx fx;

static void fx_cleanup(void *arg)
{
	struct fx *f = arg;

	mv_daemon_destroy(f->d);
	f->d = NULL;
}

static void fx_up(const struct mv_settings *s)
{
	memset(&fx, 0, sizeof(fx));
	th_host_create(&fx.t, HOST_BYTES, s);
	th_scratch(fx.dir, sizeof(fx.dir), "daemon");
	th_remove_at_teardown(fx.dir);
	th_socket_path(fx.path, sizeof(fx.path), fx.dir, "sock");
	th_remove_at_teardown(fx.path);
	assert_int_equal(mv_daemon_create(fx.t.host, fx.path, &fx.d), 0);
	th_at_teardown(fx_cleanup, &fx);
}

static void fx_down(void)
{
	fx_cleanup(&fx);
	th_host_destroy(&fx.t);
}

/* ---- a raw client ---- */

static int cl_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, fx.path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void cl_write(int fd, const void *buf, size_t len)
{
	assert_int_equal(send(fd, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

static void cl_send(int fd, const struct mv__proto_msg *m)
{
	uint8_t buf[MV_PROTO_MAX];
	int n = mv__proto_encode(m, buf, sizeof(buf));

	assert_true(n > 0);
	cl_write(fd, buf, (size_t)n);
}

/* Per-fd bytes received but not yet decoded (one client at a time per
 * test needs no more than a few). */
static struct {
	int fd;
	uint8_t buf[2 * MV_PROTO_MAX];
	size_t len;
} rx[8];

static void *rx_of(int fd, size_t **len)
{
	for (unsigned i = 0; i < 8; i++)
		if (rx[i].fd == fd && rx[i].len) {
			*len = &rx[i].len;
			return rx[i].buf;
		}
	for (unsigned i = 0; i < 8; i++)
		if (!rx[i].len) {
			rx[i].fd = fd;
			*len = &rx[i].len;
			return rx[i].buf;
		}
	fail_msg("too many clients with unread bytes");
	return NULL;
}

/* The next message from the daemon: 0, -ETIMEDOUT, or -ECONNRESET (EOF,
 * the daemon closed). */
static int cl_recv(int fd, struct mv__proto_msg *m, unsigned ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t until = th_now_ms() + ms;
	size_t *len, used;
	uint8_t *buf = rx_of(fd, &len);
	ssize_t n;
	int e;

	for (;;) {
		e = mv__proto_decode(buf, *len, m, &used, NULL, 0);
		if (e == 0) {
			memmove(buf, buf + used, *len - used);
			*len -= used;
			return 0;
		}
		assert_int_equal(e, -EAGAIN); /* the daemon sends no garbage */
		if (th_now_ms() >= until)
			return -ETIMEDOUT;
		if (poll(&p, 1, 50) <= 0)
			continue;
		n = recv(fd, buf + *len, 2 * MV_PROTO_MAX - *len, 0);
		if (n <= 0) {
			*len = 0;
			return -ECONNRESET;
		}
		*len += (size_t)n;
	}
}

static void cl_close(int fd)
{
	size_t *len;

	rx_of(fd, &len);
	*len = 0;
	close(fd);
}

static struct mv__proto_msg hello(const char *name)
{
	struct mv__proto_msg m = { .type = MV_PROTO_HELLO };

	snprintf(m.u.hello.name, sizeof(m.u.hello.name), "%s", name);
	m.u.hello.memsize_bytes = VM_BYTES;
	m.u.hello.pid = (uint32_t)getpid();
	return m;
}

/* Connects, says HELLO, returns the WELCOME's grant in *grant. */
static int cl_agent(const char *name, uint64_t *grant)
{
	struct mv__proto_msg m = hello(name);
	int fd = cl_connect();

	cl_send(fd, &m);
	assert_int_equal(cl_recv(fd, &m, RECV_MS), 0);
	assert_int_equal(m.type, MV_PROTO_WELCOME);
	*grant = m.u.grant.grant_bytes >> 12;
	return fd;
}

static void host_stats(struct mv_host_stats *hs)
{
	assert_int_equal(mv_host_stats(fx.t.host, hs), 0);
}

static struct mv_vm *remote_vm(const char *name)
{
	struct mv_vm *vm, *found = NULL;

	pthread_mutex_lock(&fx.t.host->vms_lock);
	for (vm = fx.t.host->vms; vm; vm = vm->next)
		if (vm->remote && !strcmp(vm->name, name))
			found = vm;
	pthread_mutex_unlock(&fx.t.host->vms_lock);
	return found;
}

static struct mv__proto_msg stats_msg(uint64_t consumed)
{
	struct mv__proto_msg m = { .type = MV_PROTO_STATS };

	m.u.stats.consumed_pages = consumed;
	m.u.stats.active_pages = consumed / 2;
	m.u.stats.active_permille = 500;
	m.u.stats.swcur_pages = 123;
	m.u.stats.zero_pages = 45;
	m.u.stats.state_pages[MV_PAGE_PRIVATE] = consumed;
	return m;
}

/* ---- conditions ---- */

static uint64_t want_consumed;
static bool host_consumed_is(void *arg)
{
	struct mv_host_stats hs;

	(void)arg;
	host_stats(&hs);
	return hs.consumed_pages == want_consumed;
}

static const char *want_name;
static uint64_t want_vm_consumed;
static bool vm_reports(void *arg)
{
	struct mv_daemon_vm v[4];
	unsigned n;

	(void)arg;
	assert_int_equal(mv_daemon_vms(fx.d, v, 4, &n), 0);
	for (unsigned i = 0; i < n && i < 4; i++)
		if (!strcmp(v[i].stats.name, want_name) &&
		    v[i].stats.consumed_pages == want_vm_consumed)
			return true;
	return false;
}

/* ---- tests ---- */

static void test_hello_makes_a_remote_vm_holding_its_grant(void **state)
{
	struct mv_host_stats hs;
	struct mv_daemon_stats ds;
	struct mv_daemon_vm v;
	uint64_t grant;
	unsigned n;
	int fd;

	(void)state;
	fx_up(NULL);
	fd = cl_agent("alpha", &grant);
	/* the host is in the high state with room to stay there: granted
	 * the scheduler's target, all its memsize */
	assert_int_equal(grant, VM_PAGES);
	host_stats(&hs);
	assert_int_equal(hs.nvms, 1);
	assert_int_equal(hs.consumed_pages, grant);
	assert_int_equal(mv_daemon_vms(fx.d, &v, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v.stats.name, "alpha");
	assert_int_equal(v.stats.memsz_pages, VM_PAGES);
	assert_int_equal(v.pid, (uint32_t)getpid());
	assert_int_equal(v.grant_pages, grant);
	assert_int_equal(mv_daemon_stats(fx.d, &ds), 0);
	assert_int_equal(ds.agents, 1);
	assert_int_equal(ds.grant_pages, grant);
	cl_close(fd);
	fx_down();
}

static void test_agent_stats_appear_in_its_vm_stats(void **state)
{
	struct mv__proto_msg m = stats_msg(700);
	struct mv_balloon_info bi;
	struct mv_vm_stats st;
	struct mv_daemon_vm v;
	uint64_t grant;
	unsigned n;
	int fd;

	(void)state;
	fx_up(NULL);
	fd = cl_agent("beta", &grant);
	m.u.stats.mctlsz_pages = 300;
	cl_send(fd, &m);
	want_name = "beta";
	want_vm_consumed = 700;
	assert_true(th_wait_until(vm_reports, NULL, TH_WAIT_MS));
	assert_int_equal(mv_daemon_vms(fx.d, &v, 1, &n), 0);
	assert_int_equal(v.stats.swcur_pages, 123);
	assert_int_equal(v.stats.zero_pages, 45);
	assert_int_equal(v.stats.active_pages, 350);
	assert_int_equal(v.stats.state_pages[MV_PAGE_PRIVATE], 700);
	/* its balloon, as the scheduler sees it */
	assert_int_equal(v.stats.mctlsz_pages, 300);
	assert_int_equal(mv_vm_balloon_info(remote_vm("beta"), &bi), 0);
	assert_int_equal(bi.actual_pages, 300);
	/* measured by the tool (QMP), it stands over the agent's count */
	assert_int_equal(mv_daemon_set_balloon_size(fx.d, "beta", 2 * MiB), 0);
	m = stats_msg(701);
	m.u.stats.mctlsz_pages = 300;
	cl_send(fd, &m);
	want_vm_consumed = 701;
	assert_true(th_wait_until(vm_reports, NULL, TH_WAIT_MS));
	assert_int_equal(mv_vm_balloon_info(remote_vm("beta"), &bi), 0);
	assert_int_equal(bi.actual_pages, 512);
	assert_int_equal(mv_daemon_vm_stats(fx.d, "beta", &st), 0);
	assert_int_equal(st.mctlsz_pages, 512);
	assert_int_equal(mv_daemon_set_balloon_size(fx.d, "nobody", 0),
			 -ENOENT);
	/* by name, as memvisor run asks for a QEMU guest's */
	assert_int_equal(mv_daemon_vm_stats(fx.d, "beta", &st), 0);
	assert_int_equal(st.consumed_pages, 701);
	assert_int_equal(st.memsz_pages, VM_PAGES);
	assert_int_equal(mv_daemon_vm_stats(fx.d, "nobody", &st), -ENOENT);
	cl_close(fd);
	fx_down();
}

/* The waits after the STATS tail reach the daemon's view of the VM; a STATS
 * without them (an agent from before them) reads 0. */
static void test_agent_waits_appear_in_its_vm_stats(void **state)
{
	struct mv__proto_msg m = stats_msg(600);
	struct mv_vm_stats st;
	uint64_t grant;
	int fd;

	(void)state;
	fx_up(NULL);
	fd = cl_agent("gamma", &grant);
	m.u.stats.flags |= MV_PROTO_STATS_MORE | MV_PROTO_STATS_WAITS;
	m.u.stats.alloc_waits = 17;
	m.u.stats.blocked_waits = 4242;
	cl_send(fd, &m);
	want_name = "gamma";
	want_vm_consumed = 600;
	assert_true(th_wait_until(vm_reports, NULL, TH_WAIT_MS));
	assert_int_equal(mv_daemon_vm_stats(fx.d, "gamma", &st), 0);
	assert_int_equal(st.alloc_waits, 17);
	assert_int_equal(st.blocked_waits, 4242);
	m = stats_msg(601);
	m.u.stats.flags |= MV_PROTO_STATS_MORE;
	cl_send(fd, &m);
	want_vm_consumed = 601;
	assert_true(th_wait_until(vm_reports, NULL, TH_WAIT_MS));
	assert_int_equal(mv_daemon_vm_stats(fx.d, "gamma", &st), 0);
	assert_int_equal(st.alloc_waits, 0);
	assert_int_equal(st.blocked_waits, 0);
	cl_close(fd);
	fx_down();
}

/* The compression figures after the waits reach the daemon's view of the
 * VM; a STATS without them (an agent from before them) reads 0. */
static void test_agent_zip_figures_appear_in_its_vm_stats(void **state)
{
	struct mv__proto_msg m = stats_msg(600);
	struct mv_vm_stats st;
	uint64_t grant;
	int fd;

	(void)state;
	fx_up(NULL);
	fd = cl_agent("delta", &grant);
	m.u.stats.flags |= MV_PROTO_STATS_MORE | MV_PROTO_STATS_WAITS |
			   MV_PROTO_STATS_ZIP;
	m.u.stats.zip_incompressible = 5;
	m.u.stats.zip_fast_pages = 1234;
	m.u.stats.zip_accel = 8;
	cl_send(fd, &m);
	want_name = "delta";
	want_vm_consumed = 600;
	assert_true(th_wait_until(vm_reports, NULL, TH_WAIT_MS));
	assert_int_equal(mv_daemon_vm_stats(fx.d, "delta", &st), 0);
	assert_int_equal(st.zip_incompressible, 5);
	assert_int_equal(st.zip_fast_pages, 1234);
	assert_int_equal(st.zip_accel, 8);
	m = stats_msg(601);
	m.u.stats.flags |= MV_PROTO_STATS_MORE | MV_PROTO_STATS_WAITS;
	cl_send(fd, &m);
	want_vm_consumed = 601;
	assert_true(th_wait_until(vm_reports, NULL, TH_WAIT_MS));
	assert_int_equal(mv_daemon_vm_stats(fx.d, "delta", &st), 0);
	assert_int_equal(st.zip_fast_pages, 0);
	assert_int_equal(st.zip_accel, 0);
	cl_close(fd);
	fx_down();
}

/* The zero-page figures after the compression figures reach the daemon's
 * view of the VM; a STATS without them (an agent from before them) reads
 * 0. */
static void test_agent_zero_figures_appear_in_its_vm_stats(void **state)
{
	struct mv__proto_msg m = stats_msg(600);
	struct mv_vm_stats st;
	uint64_t grant;
	int fd;

	(void)state;
	fx_up(NULL);
	fd = cl_agent("epsilon", &grant);
	m.u.stats.flags |= MV_PROTO_STATS_MORE | MV_PROTO_STATS_WAITS |
			   MV_PROTO_STATS_ZIP | MV_PROTO_STATS_ZERO;
	m.u.stats.zero_maps = 900;
	m.u.stats.zero_writes = 80;
	m.u.stats.zero_around_pages = 7;
	cl_send(fd, &m);
	want_name = "epsilon";
	want_vm_consumed = 600;
	assert_true(th_wait_until(vm_reports, NULL, TH_WAIT_MS));
	assert_int_equal(mv_daemon_vm_stats(fx.d, "epsilon", &st), 0);
	assert_int_equal(st.zero_maps, 900);
	assert_int_equal(st.zero_writes, 80);
	assert_int_equal(st.zero_around_pages, 7);
	assert_int_equal(st.zero_opens, 0);
	m = stats_msg(602);
	m.u.stats.flags |= MV_PROTO_STATS_MORE | MV_PROTO_STATS_WAITS |
			   MV_PROTO_STATS_ZIP | MV_PROTO_STATS_ZERO |
			   MV_PROTO_STATS_OPEN;
	m.u.stats.zero_opens = 300;
	m.u.stats.zero_open_writes = 120;
	m.u.stats.zero_closes = 100;
	m.u.stats.zero_open_pages = 80;
	m.u.stats.zero_open_errors = 1;
	cl_send(fd, &m);
	want_vm_consumed = 602;
	assert_true(th_wait_until(vm_reports, NULL, TH_WAIT_MS));
	assert_int_equal(mv_daemon_vm_stats(fx.d, "epsilon", &st), 0);
	assert_int_equal(st.zero_opens, 300);
	assert_int_equal(st.zero_open_writes, 120);
	assert_int_equal(st.zero_closes, 100);
	assert_int_equal(st.zero_open_pages, 80);
	assert_int_equal(st.zero_open_errors, 1);
	m = stats_msg(601);
	m.u.stats.flags |= MV_PROTO_STATS_MORE | MV_PROTO_STATS_WAITS |
			   MV_PROTO_STATS_ZIP;
	cl_send(fd, &m);
	want_vm_consumed = 601;
	assert_true(th_wait_until(vm_reports, NULL, TH_WAIT_MS));
	assert_int_equal(mv_daemon_vm_stats(fx.d, "epsilon", &st), 0);
	assert_int_equal(st.zero_maps, 0);
	assert_int_equal(st.zero_writes, 0);
	assert_int_equal(st.zero_around_pages, 0);
	assert_int_equal(st.zero_opens, 0);
	assert_int_equal(st.zero_open_pages, 0);
	cl_close(fd);
	fx_down();
}

static void test_a_closed_connection_gives_the_grant_back(void **state)
{
	struct mv_daemon_stats ds;
	struct mv_host_stats hs;
	uint64_t grant;
	int fd;

	(void)state;
	fx_up(NULL);
	fd = cl_agent("gamma", &grant);
	host_stats(&hs);
	assert_int_equal(hs.consumed_pages, grant);
	cl_close(fd); /* as a VMM that dies */
	want_consumed = 0;
	assert_true(th_wait_until(host_consumed_is, NULL, TH_WAIT_MS));
	host_stats(&hs);
	assert_int_equal(hs.nvms, 0);
	assert_int_equal(mv_daemon_stats(fx.d, &ds), 0);
	assert_int_equal(ds.lost, 1);
	assert_int_equal(ds.agents, 0);
	fx_down();
}

/* A VM of this process holding 13008 pages of the 16384: the host is out
 * of the high state (free below 4 x minFree), in clear. */
static mv_vm *fill_local(void)
{
	mv_vm *vm = th_vm_create(&fx.t, "local", 13312ull << 12);
	volatile uint8_t *mem = mv_vm_mem(vm);
	struct mv_host_stats hs;

	for (uint64_t p = 0; p < 13008; p += 16)
		mem[p << 12] = 1;
	th_quiesce(vm);
	host_stats(&hs);
	assert_int_equal(hs.consumed_pages, 13008);
	return vm;
}

static bool host_clear(void *arg)
{
	struct mv_host_stats hs;

	(void)arg;
	host_stats(&hs);
	return hs.state == MV_STATE_CLEAR;
}

static uint64_t want_grant;
static bool grant_is(void *arg)
{
	struct mv_daemon_stats ds;

	(void)arg;
	assert_int_equal(mv_daemon_stats(fx.d, &ds), 0);
	return ds.grant_pages == want_grant;
}

/*
 * Out of the high state a grant follows what its agent holds: it grows to
 * cover it and a headroom of an eighth of the VM, and when the VM holds
 * less a smaller grant is sent, whose frames the host gets back only on
 * its acknowledgement.
 */
static void test_a_grant_follows_use_and_shrinks_on_its_ack(void **state)
{
	struct mv__proto_msg m = stats_msg(1200), ack;
	uint64_t grant;
	mv_vm *local;
	int fd;

	(void)state;
	fx_up(NULL);
	local = fill_local();
	assert_true(th_wait_until(host_clear, NULL, TH_WAIT_MS));
	fd = cl_agent("delta", &grant);
	assert_int_equal(grant, VM_PAGES / 8); /* holds nothing yet */
	cl_send(fd, &m);
	assert_int_equal(cl_recv(fd, &m, RECV_MS), 0);
	assert_int_equal(m.type, MV_PROTO_GRANT);
	assert_int_equal(m.u.grant.grant_bytes >> 12, 1200 + VM_PAGES / 8);
	want_grant = 1200 + VM_PAGES / 8;
	assert_true(th_wait_until(grant_is, NULL, TH_WAIT_MS));
	assert_true(host_clear(NULL));
	/* then 100: a smaller grant, whose frames stay held until acked */
	m = stats_msg(100);
	cl_send(fd, &m);
	assert_int_equal(cl_recv(fd, &m, RECV_MS), 0);
	assert_int_equal(m.type, MV_PROTO_GRANT);
	assert_int_equal(m.u.grant.grant_bytes >> 12, 100 + VM_PAGES / 8);
	assert_true(grant_is(NULL));
	want_consumed = 13008 + want_grant;
	assert_true(host_consumed_is(NULL));
	ack.type = MV_PROTO_GRANT_ACK;
	ack.u.ack = (struct mv__proto_ack){
		.seq = m.u.grant.seq,
		.grant_bytes = m.u.grant.grant_bytes,
		.consumed_bytes = 100 << 12,
	};
	cl_send(fd, &ack);
	want_grant = 100 + VM_PAGES / 8;
	assert_true(th_wait_until(grant_is, NULL, TH_WAIT_MS));
	want_consumed = 13008 + want_grant;
	assert_true(th_wait_until(host_consumed_is, NULL, TH_WAIT_MS));
	cl_close(fd);
	mv_vm_destroy(local);
	fx_down();
}

/*
 * In the high state a grant is the scheduler's target and is kept there
 * whatever the VM holds; a lower limit makes it smaller, released on the
 * acknowledgement.
 */
static void test_in_the_high_state_a_grant_is_the_target(void **state)
{
	struct mv__proto_msg m = stats_msg(100), ack;
	uint64_t grant;
	int fd;

	(void)state;
	fx_up(NULL);
	fd = cl_agent("eta2", &grant);
	assert_int_equal(grant, VM_PAGES);
	cl_send(fd, &m);
	assert_int_equal(cl_recv(fd, &m, 200), -ETIMEDOUT); /* kept */
	want_grant = VM_PAGES;
	assert_true(grant_is(NULL));
	assert_int_equal(mv_vm_set_limit(remote_vm("eta2"), VM_BYTES / 4), 0);
	assert_int_equal(cl_recv(fd, &m, RECV_MS), 0);
	assert_int_equal(m.type, MV_PROTO_GRANT);
	assert_int_equal(m.u.grant.grant_bytes, VM_BYTES / 4);
	assert_true(grant_is(NULL)); /* held until acked */
	ack.type = MV_PROTO_GRANT_ACK;
	ack.u.ack = (struct mv__proto_ack){
		.seq = m.u.grant.seq,
		.grant_bytes = m.u.grant.grant_bytes,
		.consumed_bytes = 100 << 12,
	};
	cl_send(fd, &ack);
	want_grant = VM_PAGES / 4;
	assert_true(th_wait_until(grant_is, NULL, TH_WAIT_MS));
	cl_close(fd);
	fx_down();
}

static void test_a_grant_never_takes_the_host_below_minfree(void **state)
{
	struct mv__proto_msg m;
	struct mv_host_stats hs;
	uint64_t g1, g2;
	int a, b;

	(void)state;
	fx_up(NULL);
	a = cl_agent("big1", &g1);
	b = cl_agent("big2", &g2);
	/* each says it holds 1000 pages: their headroom is speculative,
	 * and no grant eats into minFree for it */
	m = stats_msg(1000);
	cl_send(a, &m);
	cl_send(b, &m);
	/* both reports taken in, or the check below could pass before the
	 * second VM's headroom was granted at all */
	want_vm_consumed = 1000;
	want_name = "big1";
	assert_true(th_wait_until(vm_reports, NULL, TH_WAIT_MS));
	want_name = "big2";
	assert_true(th_wait_until(vm_reports, NULL, TH_WAIT_MS));
	host_stats(&hs);
	assert_true(hs.free_pages >= hs.minfree_pages);
	cl_close(a);
	cl_close(b);
	fx_down();
}

/* written by the daemon's thread, read by the test's */
static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t hook_calls, hook_memsize, hook_balloon;
static char hook_vm[MV_NAME_MAX];
static void hook(void *arg, const char *vm, const char *qmp, uint64_t memsize,
		 uint64_t balloon)
{
	(void)arg;
	(void)qmp;
	pthread_mutex_lock(&hook_lock);
	snprintf(hook_vm, sizeof(hook_vm), "%s", vm);
	hook_memsize = memsize;
	hook_balloon = balloon;
	hook_calls++;
	pthread_mutex_unlock(&hook_lock);
}

static bool hook_has_balloon(void *arg)
{
	bool yes;

	pthread_mutex_lock(&hook_lock);
	yes = hook_balloon == *(uint64_t *)arg;
	pthread_mutex_unlock(&hook_lock);
	return yes;
}

static void test_balloon_target_goes_to_the_agent_and_the_hook(void **state)
{
	struct mv__proto_msg m;
	uint64_t grant, want = 4 * MiB, memsize;
	char name[MV_NAME_MAX];
	int fd;

	(void)state;
	fx_up(NULL);
	pthread_mutex_lock(&hook_lock);
	hook_calls = hook_balloon = 0;
	pthread_mutex_unlock(&hook_lock);
	mv_daemon_set_balloon_hook(fx.d, hook, NULL);
	fd = cl_agent("eps", &grant);
	assert_int_equal(mv_vm_balloon_set_target(remote_vm("eps"), want), 0);
	do
		assert_int_equal(cl_recv(fd, &m, RECV_MS), 0);
	while (m.u.grant.balloon_bytes != want);
	assert_int_equal(m.type, MV_PROTO_GRANT);
	assert_true(th_wait_until(hook_has_balloon, &want, TH_WAIT_MS));
	pthread_mutex_lock(&hook_lock);
	snprintf(name, sizeof(name), "%s", hook_vm);
	memsize = hook_memsize;
	pthread_mutex_unlock(&hook_lock);
	assert_string_equal(name, "eps");
	assert_int_equal(memsize, VM_BYTES);
	cl_close(fd);
	fx_down();
}

/* Sends bytes on a fresh connection: the daemon answers ERROR (if
 * expect_error) and closes; returns whether an ERROR came. */
static bool refused(const void *bytes, size_t len, bool close_after)
{
	struct mv__proto_msg m;
	bool error = false;
	int fd = cl_connect(), e;

	cl_write(fd, bytes, len);
	if (close_after)
		shutdown(fd, SHUT_WR);
	while ((e = cl_recv(fd, &m, RECV_MS)) == 0)
		if (m.type == MV_PROTO_ERROR)
			error = true;
	assert_int_equal(e, -ECONNRESET); /* closed, in bounded time */
	cl_close(fd);
	return error;
}

static void assert_host_is(const struct mv_host_stats *before)
{
	struct mv_host_stats hs;

	host_stats(&hs);
	assert_int_equal(hs.nvms, before->nvms);
	assert_int_equal(hs.consumed_pages, before->consumed_pages);
}

static void test_a_hello_the_host_cannot_grant_is_refused(void **state)
{
	struct mv__proto_msg m = hello("full");
	struct mv_host_stats before;
	uint8_t buf[MV_PROTO_MAX];
	uint64_t grant;
	int fd, n;

	(void)state;
	fx_up(NULL);
	/* a VM the size of the host, holding it all: granted all of it */
	m.u.hello.memsize_bytes = HOST_BYTES;
	m.u.hello.consumed_bytes = HOST_BYTES;
	fd = cl_connect();
	cl_send(fd, &m);
	assert_int_equal(cl_recv(fd, &m, RECV_MS), 0);
	assert_int_equal(m.type, MV_PROTO_WELCOME);
	grant = m.u.grant.grant_bytes;
	assert_int_equal(grant, HOST_BYTES);
	host_stats(&before);
	/* nothing left for the next one */
	m = hello("late");
	n = mv__proto_encode(&m, buf, sizeof(buf));
	assert_true(refused(buf, (size_t)n, false));
	assert_host_is(&before);
	cl_close(fd);
	fx_down();
}

static void test_bad_headers_get_an_error_and_change_nothing(void **state)
{
	struct mv__proto_msg m = hello("zeta");
	uint8_t buf[MV_PROTO_MAX];
	struct mv_host_stats before;
	int n;

	(void)state;
	fx_up(NULL);
	host_stats(&before);
	n = mv__proto_encode(&m, buf, sizeof(buf));
	buf[0] = 'X';
	assert_true(refused(buf, 1, false)); /* judged at its first byte */
	buf[0] = 'M';
	buf[4] = 9; /* version */
	assert_true(refused(buf, MV_PROTO_HDR, false));
	buf[4] = 1;
	buf[10] = 0x10; /* 1 MiB body: refused without it */
	assert_true(refused(buf, MV_PROTO_HDR, false));
	buf[10] = 0;
	m = stats_msg(1); /* STATS before HELLO */
	n = mv__proto_encode(&m, buf, sizeof(buf));
	assert_true(refused(buf, (size_t)n, false));
	m = hello("zeta");
	m.type = MV_PROTO_GRANT; /* a daemon's message */
	m.u.grant = (struct mv__proto_grant){ .seq = 1,
					      .grant_bytes = MiB,
					      .period_ms = 100 };
	n = mv__proto_encode(&m, buf, sizeof(buf));
	assert_true(refused(buf, (size_t)n, false));
	assert_host_is(&before);
	fx_down();
}

static void test_bad_hellos_are_refused_and_change_nothing(void **state)
{
	struct mv__proto_msg m;
	struct mv_host_stats before;
	uint8_t buf[MV_PROTO_MAX];
	uint64_t grant;
	int n, fd;

	(void)state;
	fx_up(NULL);
	host_stats(&before);
	m = hello("eta");
	m.u.hello.pid = (uint32_t)getppid(); /* not the peer */
	n = mv__proto_encode(&m, buf, sizeof(buf));
	assert_true(refused(buf, (size_t)n, false));
	m = hello("eta");
	m.u.hello.reservation_bytes = HOST_BYTES - MiB; /* does not fit */
	m.u.hello.memsize_bytes = HOST_BYTES;
	n = mv__proto_encode(&m, buf, sizeof(buf));
	assert_true(refused(buf, (size_t)n, false));
	assert_host_is(&before);
	/* a second VM of the same name */
	fd = cl_agent("eta", &grant);
	host_stats(&before);
	m = hello("eta");
	n = mv__proto_encode(&m, buf, sizeof(buf));
	assert_true(refused(buf, (size_t)n, false));
	assert_host_is(&before);
	cl_close(fd);
	fx_down();
}

static void test_partial_and_truncated_messages(void **state)
{
	struct mv__proto_msg m = hello("theta");
	uint8_t buf[MV_PROTO_MAX];
	struct mv_host_stats before;
	struct pollfd p;
	int n, fd;

	(void)state;
	fx_up(NULL);
	host_stats(&before);
	n = mv__proto_encode(&m, buf, sizeof(buf));
	/* truncated, then the peer goes: closed, nothing made */
	assert_false(refused(buf, (size_t)n - 1, true));
	assert_host_is(&before);
	/* one byte at a time, each read on its own: served all the same */
	fd = cl_connect();
	for (int i = 0; i < n; i++) {
		cl_write(fd, buf + i, 1);
		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		/* the daemon answers nothing before the last byte */
		if (i < n - 1)
			assert_int_equal(poll(&p, 1, 1), 0);
	}
	assert_int_equal(cl_recv(fd, &m, RECV_MS), 0);
	assert_int_equal(m.type, MV_PROTO_WELCOME);
	cl_close(fd);
	fx_down();
}

static void test_a_connection_without_hello_is_closed_in_time(void **state)
{
	struct mv__proto_msg m;
	struct mv_daemon_stats ds;
	uint64_t t0;
	int fd;

	(void)state;
	fx_up(NULL);
	t0 = th_now_ms();
	fd = cl_connect();
	assert_int_equal(cl_recv(fd, &m, RECV_MS), 0);
	assert_int_equal(m.type, MV_PROTO_ERROR);
	assert_int_equal(m.u.error.code, ETIMEDOUT);
	assert_int_equal(cl_recv(fd, &m, RECV_MS), -ECONNRESET);
	assert_true(th_now_ms() - t0 < RECV_MS);
	assert_int_equal(mv_daemon_stats(fx.d, &ds), 0);
	assert_int_equal(ds.refused, 1);
	cl_close(fd);
	fx_down();
}

static uint64_t xs(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A valid message of a type an agent may send, for mutating. */
static int valid_bytes(uint64_t *seed, uint8_t *buf, const char *name)
{
	static const unsigned types[] = { MV_PROTO_HELLO,     MV_PROTO_STATS,
					  MV_PROTO_GRANT_ACK, MV_PROTO_BYE,
					  MV_PROTO_ERROR,     MV_PROTO_GRANT };
	struct mv__proto_msg m;

	memset(&m, 0, sizeof(m));
	m.type = (uint16_t)types[xs(seed) % 6];
	switch (m.type) {
	case MV_PROTO_HELLO:
		m = hello(name);
		break;
	case MV_PROTO_STATS:
		m = stats_msg(xs(seed) % (2 * VM_PAGES));
		break;
	case MV_PROTO_GRANT_ACK:
		m.u.ack = (struct mv__proto_ack){ .seq = 1 + xs(seed) % 3,
						  .grant_bytes = MiB };
		break;
	case MV_PROTO_ERROR:
		m.u.error.code = EIO;
		strcpy(m.u.error.msg, "fuzz");
		break;
	case MV_PROTO_GRANT:
		m.u.grant = (struct mv__proto_grant){ .seq = 1,
						      .grant_bytes = MiB,
						      .period_ms = 100 };
		break;
	}
	return mv__proto_encode(&m, buf, MV_PROTO_MAX);
}

static size_t mutate(uint64_t *seed, uint8_t *buf, size_t len)
{
	for (unsigned k = 0, flips = 1 + xs(seed) % 4; k < flips; k++) {
		size_t at = xs(seed) % len;

		if (xs(seed) & 1)
			buf[at] ^= (uint8_t)(1u << (xs(seed) % 8));
		else
			buf[at] = (uint8_t)xs(seed);
	}
	if (xs(seed) % 4 == 0)
		len = 1 + xs(seed) % len;
	return len;
}

static struct mv_host_stats fuzz_before;
static bool host_back(void *arg)
{
	struct mv_host_stats hs;

	(void)arg;
	host_stats(&hs);
	return hs.nvms == fuzz_before.nvms &&
	       hs.consumed_pages == fuzz_before.consumed_pages;
}

/*
 * Thousands of seeded cases: mutated valid messages and random bytes on a
 * fresh connection, and mutated messages after a valid HELLO.  Whatever
 * the local decoder refuses, the daemon answers with ERROR; every
 * connection is closed in bounded time; afterwards the host is as it was;
 * an agent connected throughout is still served.
 */
static void test_fuzzed_messages_get_an_error_and_lose_nothing(void **state)
{
	uint8_t buf[MV_PROTO_MAX + 64];
	struct mv__proto_msg m, out;
	uint64_t seed = 0xf00dfeedull, grant;
	unsigned cases = 0, errors = 0, missed = 0;
	char name[MV_NAME_MAX];
	size_t len, used;
	int steady, fd, e;

	(void)state;
	fx_up(NULL);
	steady = cl_agent("steady", &grant);
	host_stats(&fuzz_before);
	for (unsigned i = 0; i < 6000; i++, cases++) {
		if (i % 3 == 2) { /* random bytes */
			len = 1 + xs(&seed) % sizeof(buf);
			for (size_t k = 0; k < len; k++)
				buf[k] = (uint8_t)xs(&seed);
		} else {
			len = (size_t)valid_bytes(&seed, buf, "fuzz");
			len = mutate(&seed, buf, len);
		}
		e = mv__proto_decode(buf, len, &out, &used, NULL, 0);
		if (e == 0 && out.type == MV_PROTO_HELLO)
			continue; /* a valid HELLO: not a bad message */
		if (refused(buf, len, e == -EAGAIN))
			errors++;
		else if (e != -EAGAIN)
			missed++; /* refused locally, yet no ERROR came */
		if (i % 100 == 0)
			assert_true(th_wait_until(host_back, NULL, TH_WAIT_MS));
	}
	/* after a HELLO: whatever comes, closing gives the grant back */
	for (unsigned i = 0; i < 1000; i++, cases++) {
		snprintf(name, sizeof(name), "f%u", i);
		fd = cl_agent(name, &grant);
		len = (size_t)valid_bytes(&seed, buf, name);
		len = mutate(&seed, buf, len);
		cl_write(fd, buf, len);
		shutdown(fd, SHUT_WR);
		while ((e = cl_recv(fd, &m, RECV_MS)) == 0)
			errors += m.type == MV_PROTO_ERROR;
		assert_int_equal(e, -ECONNRESET);
		cl_close(fd);
		assert_true(th_wait_until(host_back, NULL, TH_WAIT_MS));
	}
	print_message("%u cases, %u answered with ERROR\n", cases, errors);
	assert_int_equal(missed, 0);
	assert_true(errors > cases / 2);
	/* the agent connected throughout is served still */
	m = stats_msg(42);
	cl_send(steady, &m);
	want_name = "steady";
	want_vm_consumed = 42;
	assert_true(th_wait_until(vm_reports, NULL, TH_WAIT_MS));
	cl_close(steady);
	fx_down();
}

static void test_a_live_daemon_socket_is_not_taken_over(void **state)
{
	mv_daemon *other = NULL;

	(void)state;
	fx_up(NULL);
	assert_int_equal(mv_daemon_create(fx.t.host, fx.path, &other),
			 -EADDRINUSE);
	/* once that daemon is gone, a new one takes the path */
	fx_cleanup(&fx);
	assert_int_equal(mv_daemon_create(fx.t.host, fx.path, &fx.d), 0);
	fx_down();
}

/* `memvisor daemon` (tools/daemon.c) as a process: an agent of this
 * process is granted memory by it and shows in its status line; SIGTERM
 * stops it with status 0, and the agent runs on inside its grant. */
static bool agent_connected(void *arg)
{
	struct mv_agent_info info;

	assert_int_equal(mv_agent_info(arg, &info), 0);
	return info.connected;
}

static bool agent_lost_daemon(void *arg)
{
	return !agent_connected(arg);
}

static char tool_out[TH_PATH_LEN];
static bool tool_says(void *arg)
{
	char *text = th_slurp(tool_out);
	bool yes = strstr(text, arg) != NULL;

	free(text);
	return yes;
}

/* Every thread of process pid but its main thread blocks SIGINT and SIGTERM
 * (its SigBlk).  The main thread takes them in sigtimedwait, which unblocks
 * them while it waits. */
static bool all_threads_block_stop_signals(pid_t pid)
{
	const unsigned long long want = 1ull << (SIGINT - 1) |
					1ull << (SIGTERM - 1);
	char path[320], line[128];
	unsigned long long blk;
	struct dirent *e;
	unsigned n = 0;
	bool ok = true;
	FILE *f;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	assert_non_null(d);
	while (ok && (e = readdir(d))) {
		if (e->d_name[0] == '.' || atoi(e->d_name) == (int)pid)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status",
			 (int)pid, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue; /* a thread that just ended */
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "SigBlk: %llx", &blk) == 1) {
				ok = (blk & want) == want;
				n++;
			}
		fclose(f);
	}
	closedir(d);
	return ok && n > 0;
}

static void test_memvisor_daemon_command_serves_agents(void **state)
{
	char bin[PATH_MAX + 16];
	struct mv_agent_info info;
	static char cmd[] = "daemon", o_sock[] = "--socket",
		    o_mem[] = "--memsize", mem[] = "64M",
		    o_swap[] = "--swapdir", o_int[] = "--interval", one[] = "1",
		    vm_seen[] = "toolvm pid";
	char *argv[] = { bin,	 cmd,	 o_sock, fx.path, o_mem, mem,
			 o_swap, fx.dir, o_int,	 one,	  NULL };
	struct th_host t;
	mv_agent *a;
	mv_vm *vm;
	pid_t pid;

	(void)state;
	memset(&fx, 0, sizeof(fx));
	th_scratch(fx.dir, sizeof(fx.dir), "daemon");
	th_remove_at_teardown(fx.dir);
	th_socket_path(fx.path, sizeof(fx.path), fx.dir, "sock");
	th_remove_at_teardown(fx.path);
	snprintf(tool_out, sizeof(tool_out), "%s/out.txt", fx.dir);
	th_remove_at_teardown(tool_out);
	th_memvisor_bin(bin, sizeof(bin));
	pid = th_spawnv(bin, tool_out, argv);
	th_host_create(&t, HOST_BYTES, NULL);
	vm = th_vm_create(&t, "toolvm", VM_BYTES);
	assert_int_equal(mv_agent_create(t.host, vm, fx.path, &a), 0);
	assert_true(th_wait_until(agent_connected, a, TH_WAIT_MS));
	assert_true(th_wait_until(tool_says, vm_seen, TH_WAIT_MS));
	/* a thread that does not block it would die of the SIGTERM below */
	assert_true(all_threads_block_stop_signals(pid));
	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(th_wait_exit(&pid, tool_out, TH_WAIT_MS), 0);
	assert_true(th_wait_until(agent_lost_daemon, a, TH_WAIT_MS));
	assert_int_equal(mv_agent_info(a, &info), 0);
	assert_int_equal(info.budget_bytes, info.grant_bytes);
	mv_agent_destroy(a);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * A VMM that dies while another process still holds its socket (a child
 * it forked): no EOF comes, but its pid is gone, and the daemon, looking
 * at it, takes the grant back.  The child only makes system calls and
 * encodes (no allocation) after the fork: this process has threads.
 */
static void
test_a_vmm_gone_with_its_socket_still_open_loses_its_grant(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct mv_host_stats hs;
	int hold[2], st;
	pid_t pid;

	(void)state;
	fx_up(NULL);
	strcpy(sa.sun_path, fx.path);
	assert_int_equal(pipe(hold), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct mv__proto_msg m = hello("orphan");
		uint8_t buf[MV_PROTO_MAX];
		char c;
		int fd = socket(AF_UNIX, SOCK_STREAM, 0), n;

		close(hold[1]);
		m.u.hello.pid = (uint32_t)getpid();
		n = mv__proto_encode(&m, buf, sizeof(buf));
		if (fd < 0 || n <= 0 ||
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		    write(fd, buf, (size_t)n) != n || read(fd, buf, 16) != 16)
			_exit(1);
		if (fork() == 0) { /* holds the socket until the test ends */
			while (read(hold[0], &c, 1) > 0)
				;
			_exit(0);
		}
		_exit(0);
	}
	close(hold[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	want_consumed = 0;
	assert_true(th_wait_until(host_consumed_is, NULL, TH_WAIT_MS));
	host_stats(&hs);
	assert_int_equal(hs.nvms, 0);
	close(hold[1]);
	fx_down();
}

/* The scheduler's demand cap applies to a remote VM as to a local one:
 * its agent's measured demand caps its target, and its grant follows. */
static bool target_capped(void *arg)
{
	struct mv_daemon_vm v;
	unsigned n;

	assert_int_equal(mv_daemon_vms(fx.d, &v, 1, &n), 0);
	return n == 1 && v.stats.sztgt_pages <= *(uint64_t *)arg;
}

static void test_an_agents_demand_caps_its_target(void **state)
{
	struct mv__proto_msg m = stats_msg(700);
	struct mv_settings s;
	uint64_t grant, cap = 500 * 125 / 100;
	int fd;

	(void)state;
	th_settings_quiet(&s);
	assert_int_equal(mv_settings_set(&s, "Mem.BalancePeriod", "1"), 0);
	fx_up(&s);
	fd = cl_agent("theta2", &grant);
	assert_int_equal(grant, VM_PAGES);
	m.u.stats.flags = MV_PROTO_STATS_DEMAND;
	m.u.stats.demand_pages = 500;
	cl_send(fd, &m);
	/* Mem.DemandHeadroomPct (25) over its demand, at the next balance */
	assert_true(th_wait_until(target_capped, &cap, TH_WAIT_MS));
	do
		assert_int_equal(cl_recv(fd, &m, RECV_MS), 0);
	while (m.type != MV_PROTO_GRANT);
	assert_true(m.u.grant.grant_bytes >> 12 < VM_PAGES);
	cl_close(fd);
	fx_down();
}

/* A balloon hook that blocks (a QMP peer that does not answer) until
 * the test lets it go. */
static pthread_mutex_t stuck_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stuck_cond = PTHREAD_COND_INITIALIZER;
static bool stuck_in, stuck_go;
static void stuck_hook(void *arg, const char *vm, const char *qmp,
		       uint64_t memsize, uint64_t balloon)
{
	(void)arg;
	(void)vm;
	(void)qmp;
	(void)memsize;
	(void)balloon;
	pthread_mutex_lock(&stuck_lock);
	stuck_in = true;
	while (!stuck_go)
		pthread_cond_wait(&stuck_cond, &stuck_lock);
	pthread_mutex_unlock(&stuck_lock);
}

static bool hook_is_stuck(void *arg)
{
	bool yes;

	(void)arg;
	pthread_mutex_lock(&stuck_lock);
	yes = stuck_in;
	pthread_mutex_unlock(&stuck_lock);
	return yes;
}

static void unstick(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&stuck_lock);
	stuck_go = true;
	pthread_cond_broadcast(&stuck_cond);
	pthread_mutex_unlock(&stuck_lock);
}

static void test_a_stuck_balloon_hook_holds_up_no_agent(void **state)
{
	struct mv__proto_msg m;
	uint64_t grant;
	int a, b;

	(void)state;
	fx_up(NULL);
	stuck_in = stuck_go = false;
	th_at_teardown(unstick, NULL); /* before the daemon goes */
	mv_daemon_set_balloon_hook(fx.d, stuck_hook, NULL);
	a = cl_agent("qmpslow", &grant);
	assert_int_equal(
		mv_vm_balloon_set_target(remote_vm("qmpslow"), 4 * MiB), 0);
	assert_true(th_wait_until(hook_is_stuck, NULL, TH_WAIT_MS));
	/* while the hook hangs, a new agent is welcomed and served */
	b = cl_agent("other", &grant);
	m = stats_msg(321);
	cl_send(b, &m);
	want_name = "other";
	want_vm_consumed = 321;
	assert_true(th_wait_until(vm_reports, NULL, TH_WAIT_MS));
	unstick(NULL);
	cl_close(a);
	cl_close(b);
	fx_down();
}

/* written by the host's log thread, read by the test's */
static pthread_mutex_t said_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned said_connected, said_nothing_swapped;
static void said_fn(void *arg, enum mv_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	pthread_mutex_lock(&said_lock);
	said_connected += strstr(msg, "connected, granted") != NULL;
	said_nothing_swapped += strstr(msg, "nothing could be swapped out") !=
				NULL;
	pthread_mutex_unlock(&said_lock);
}

static mv_host *logged_host;
static uint64_t taken_pages;
static void logged_host_cleanup(void *arg)
{
	(void)arg;
	fx_cleanup(&fx);
	if (!logged_host)
		return;
	mv__frames_unreserve(logged_host, taken_pages);
	taken_pages = 0;
	while (logged_host->vms)
		mv_vm_destroy(logged_host->vms);
	mv_host_destroy(logged_host);
	logged_host = NULL;
	rmdir(fx.t.swapdir);
}

static bool sched_stuck(void *arg)
{
	(void)arg;
	return atomic_load(&fx.t.host->sched_stuck);
}

/*
 * A daemon host whose VMs are all remote, with the whole budget taken
 * (their grants, and here the test's reservation in the budget, as a
 * grant's is) and so in the low state: the scheduler finds nothing to
 * swap out, as it must, since the agents reclaim to their grants in
 * their own processes.  That is no warning: "nothing could be swapped
 * out" would send an operator after swap errors that are not there.  In
 * both reclaim modes (per-VM threads, and the scheduler's own).
 */
static void
test_a_host_of_remote_vms_only_does_not_say_nothing_could_be_swapped(
	void **state)
{
	struct mv_host_config cfg;
	struct mv_host_stats hs;
	uint64_t grant;
	unsigned got, connected, nothing;
	int a, b;

	(void)state;
	for (unsigned per_vm = 0; per_vm < 2; per_vm++) {
		memset(&fx, 0, sizeof(fx));
		pthread_mutex_lock(&said_lock);
		said_connected = said_nothing_swapped = 0;
		pthread_mutex_unlock(&said_lock);
		th_scratch(fx.t.swapdir, sizeof(fx.t.swapdir), "host");
		mv_host_config_init(&cfg);
		cfg.memsize_bytes = HOST_BYTES;
		cfg.swapdir = fx.t.swapdir;
		cfg.log = said_fn;
		th_settings_quiet(&cfg.settings);
		cfg.settings.reclaim_per_vm = per_vm;
		assert_int_equal(mv_host_create(&cfg, &logged_host), 0);
		fx.t.host = logged_host;
		th_at_teardown(logged_host_cleanup, NULL);
		th_scratch(fx.dir, sizeof(fx.dir), "daemon");
		th_remove_at_teardown(fx.dir);
		th_socket_path(fx.path, sizeof(fx.path), fx.dir, "sock");
		th_remove_at_teardown(fx.path);
		assert_int_equal(mv_daemon_create(fx.t.host, fx.path, &fx.d),
				 0);
		a = cl_agent("far1", &grant);
		b = cl_agent("far2", &grant);
		while ((got = mv__frames_reserve(fx.t.host, 65536)))
			taken_pages += got;
		host_stats(&hs);
		assert_int_equal(hs.free_pages, 0);
		assert_int_equal(hs.nvms, 2);
		/* the scheduler found nothing; once it has found nothing
		 * again, its first look, and what it said then, are done */
		assert_true(th_wait_until(sched_stuck, NULL, TH_WAIT_MS));
		atomic_store(&fx.t.host->sched_stuck, false);
		assert_true(th_wait_until(sched_stuck, NULL, TH_WAIT_MS));
		cl_close(a);
		cl_close(b);
		/* every event is delivered when the host is destroyed */
		logged_host_cleanup(NULL);
		pthread_mutex_lock(&said_lock);
		connected = said_connected;
		nothing = said_nothing_swapped;
		pthread_mutex_unlock(&said_lock);
		assert_int_equal(connected, 2);
		assert_int_equal(nothing, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_hello_makes_a_remote_vm_holding_its_grant),
		cmocka_unit_test(test_agent_stats_appear_in_its_vm_stats),
		cmocka_unit_test(test_agent_waits_appear_in_its_vm_stats),
		cmocka_unit_test(test_agent_zip_figures_appear_in_its_vm_stats),
		cmocka_unit_test(
			test_agent_zero_figures_appear_in_its_vm_stats),
		cmocka_unit_test(test_a_closed_connection_gives_the_grant_back),
		cmocka_unit_test(
			test_a_vmm_gone_with_its_socket_still_open_loses_its_grant),
		cmocka_unit_test(
			test_a_grant_follows_use_and_shrinks_on_its_ack),
		cmocka_unit_test(test_in_the_high_state_a_grant_is_the_target),
		cmocka_unit_test(test_an_agents_demand_caps_its_target),
		cmocka_unit_test(
			test_a_grant_never_takes_the_host_below_minfree),
		cmocka_unit_test(
			test_a_host_of_remote_vms_only_does_not_say_nothing_could_be_swapped),
		cmocka_unit_test(test_a_hello_the_host_cannot_grant_is_refused),
		cmocka_unit_test(
			test_balloon_target_goes_to_the_agent_and_the_hook),
		cmocka_unit_test(test_a_stuck_balloon_hook_holds_up_no_agent),
		cmocka_unit_test(
			test_bad_headers_get_an_error_and_change_nothing),
		cmocka_unit_test(
			test_bad_hellos_are_refused_and_change_nothing),
		cmocka_unit_test(test_partial_and_truncated_messages),
		cmocka_unit_test(
			test_a_connection_without_hello_is_closed_in_time),
		cmocka_unit_test(
			test_fuzzed_messages_get_an_error_and_lose_nothing),
		cmocka_unit_test(test_a_live_daemon_socket_is_not_taken_over),
		cmocka_unit_test(test_memvisor_daemon_command_serves_agents),
	};

	return th_run_tests(tests);
}

// SPDX-License-Identifier: MIT
/*
 * test_agent.c - the agent (src/agent.c) against a real daemon: an agent
 * in a forked child (a separate process with a VM of its own memory, its
 * pages written with patterns) is granted memory, shrinks to a smaller
 * grant (its consumption really falls, its pages intact) and reports
 * statistics that show in the daemon's host; when its daemon is killed it
 * keeps its VM running inside the last grant and reconnects to a new
 * daemon; when its process is killed the daemon takes the grant back; with
 * no daemon it runs unmanaged, at once.  Its service figures (affinity.c)
 * reach the daemon's view of its VM; answered as a daemon from before
 * them answers, it reconnects and leaves them out.
 *
 * Children are forked before the parent makes any thread, and talk to it
 * over a socketpair: one command byte, one fixed report back.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
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
#define VM_BYTES (32 * MiB)
#define VM_PAGES (VM_BYTES >> 12)
#define TAG 0xa6e47ull
#define ASK_MS 60000

struct report {
	struct mv_agent_info info;
	uint64_t vm_consumed; /* pages */
	uint64_t host_consumed;
	uint64_t host_memsize;
	uint64_t host_minfree;
	uint64_t bad_pages; /* after a verify; else 0 */
	struct mv_vm_stats vm_stats; /* its VM's, as its own host has them */
	int err; /* setup failure in the child, -errno */
};

struct child {
	pid_t pid;
	int fd; /* the parent's end */
};

static char dir[TH_DIR_LEN], sock_path[TH_SOCK_LEN];
static struct child kids[2];

static void kill_kids(void *arg)
{
	(void)arg;
	for (unsigned i = 0; i < 2; i++) {
		if (kids[i].pid > 0) {
			kill(kids[i].pid, SIGKILL);
			waitpid(kids[i].pid, NULL, 0);
		}
		if (kids[i].fd > 0)
			close(kids[i].fd);
		kids[i].pid = 0;
		kids[i].fd = 0;
	}
}

/* the daemon's view of the one remote VM (remote_seen) */
static struct mv_daemon_vm remote;

static void setup_dir(void)
{
	/* nothing the previous test's daemon said */
	memset(&remote, 0, sizeof(remote));
	th_scratch(dir, sizeof(dir), "agent");
	th_remove_at_teardown(dir);
	th_socket_path(sock_path, sizeof(sock_path), dir, "sock");
	th_remove_at_teardown(sock_path);
	th_at_teardown(kill_kids, NULL);
}

/* ---- the children (no cmocka in them: they report or exit) ---- */

static mv_host *child_host_open(uint64_t bytes, bool open)
{
	struct mv_host_config cfg;
	mv_host *h = NULL;

	mv_host_config_init(&cfg);
	cfg.memsize_bytes = bytes;
	cfg.swapdir = dir;
	th_settings_quiet(&cfg.settings);
	if (open)
		cfg.settings.zero_open = 1;
	return mv_host_create(&cfg, &h) ? NULL : h;
}

static mv_host *child_host(uint64_t bytes)
{
	return child_host_open(bytes, false);
}

static void serve(int fd, mv_host *h, mv_vm *vm, mv_agent *a)
{
	volatile uint8_t *mem = mv_vm_mem(vm);
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct report r;
	char cmd;

	for (;;) {
		if (poll(&p, 1, 1000) <= 0)
			continue;
		if (read(fd, &cmd, 1) != 1 || cmd == 'q')
			break;
		memset(&r, 0, sizeof(r));
		if (cmd == 'v')
			for (uint64_t i = 0; i < VM_PAGES; i++)
				r.bad_pages += !th_check(
					(const void *)(mem + (i << 12)), TAG, i,
					0);
		mv_agent_info(a, &r.info);
		r.vm_consumed = atomic_load(&vm->consumed_pages);
		r.host_consumed = atomic_load(&h->consumed_pages);
		r.host_memsize = atomic_load(&h->memsize_pages);
		r.host_minfree = atomic_load(&h->minfree_pages);
		mv_vm_stats(vm, &r.vm_stats);
		if (write(fd, &r, sizeof(r)) != sizeof(r))
			break;
	}
	mv_agent_destroy(a);
	mv_vm_destroy(vm);
	mv_host_destroy(h);
}

/* An agent process: a host of host_bytes, a VM of VM_BYTES all written. */
static void agent_child(int fd, uint64_t host_bytes)
{
	struct mv_vm_config cfg;
	struct report r = { 0 };
	mv_host *h = child_host(host_bytes);
	mv_agent *a = NULL;
	mv_vm *vm = NULL;
	uint8_t *mem;

	mv_vm_config_init(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "kid%d", (int)getpid());
	cfg.memsize_bytes = VM_BYTES;
	r.err = h ? mv_vm_create(h, &cfg, &vm) : -ENOMEM;
	if (!r.err) {
		mem = mv_vm_mem(vm);
		for (uint64_t i = 0; i < VM_PAGES; i++)
			th_fill(mem + (i << 12), TAG, i, 0);
		r.err = mv_agent_create(h, vm, sock_path, &a);
	}
	if (write(fd, &r, sizeof(r)) != sizeof(r) || r.err)
		_exit(1);
	serve(fd, h, vm, a);
	_exit(0);
}

/* A daemon process: a host and a daemon on sock_path, until killed. */
static void daemon_child(int fd)
{
	struct report r = { 0 };
	mv_host *h = child_host(256 * MiB);
	mv_daemon *d = NULL;
	char cmd;

	r.err = h ? mv_daemon_create(h, sock_path, &d) : -ENOMEM;
	if (write(fd, &r, sizeof(r)) != sizeof(r) || r.err)
		_exit(1);
	while (read(fd, &cmd, 1) == 1 && cmd != 'q')
		;
	mv_daemon_destroy(d);
	mv_host_destroy(h);
	_exit(0);
}

static struct child spawn(unsigned slot, void (*fn)(int fd, uint64_t arg),
			  uint64_t arg)
{
	struct report r;
	int sv[2];
	pid_t pid;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
			 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(sv[0]);
		fn(sv[1], arg);
		_exit(0);
	}
	close(sv[1]);
	kids[slot] = (struct child){ .pid = pid, .fd = sv[0] };
	/* its setup report */
	assert_int_equal(read(sv[0], &r, sizeof(r)), (ssize_t)sizeof(r));
	assert_int_equal(r.err, 0);
	return kids[slot];
}

static void agent_fn(int fd, uint64_t host_bytes)
{
	agent_child(fd, host_bytes);
}

/* An agent process whose VM reads its memory before it writes it: every
 * page read (as zeros), then every eighth written. */
/* A VM that reads all its pages, then writes every eighth; open: with
 * Mem.ZeroOpen (host_bytes' lowest bit, the size rounded down) */
static void zero_reader_fn(int fd, uint64_t host_bytes)
{
	struct mv_vm_config cfg;
	struct report r = { 0 };
	mv_host *h = child_host_open(host_bytes & ~1ull, host_bytes & 1);
	mv_agent *a = NULL;
	mv_vm *vm = NULL;
	volatile uint8_t *mem;
	uint8_t sum = 0;

	mv_vm_config_init(&cfg);
	snprintf(cfg.name, sizeof(cfg.name), "zr%d", (int)getpid());
	cfg.memsize_bytes = VM_BYTES;
	r.err = h ? mv_vm_create(h, &cfg, &vm) : -ENOMEM;
	if (!r.err) {
		mem = mv_vm_mem(vm);
		for (uint64_t i = 0; i < VM_PAGES; i++)
			sum |= mem[i << 12];
		for (uint64_t i = 0; i < VM_PAGES; i += 8)
			mem[i << 12] = (uint8_t)(1 + sum);
		r.err = mv_agent_create(h, vm, sock_path, &a);
	}
	if (write(fd, &r, sizeof(r)) != sizeof(r) || r.err)
		_exit(1);
	serve(fd, h, vm, a);
	_exit(0);
}

static void daemon_fn(int fd, uint64_t unused)
{
	(void)unused;
	daemon_child(fd);
}

static struct report ask(struct child *c, char cmd)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	struct report r;

	assert_int_equal(write(c->fd, &cmd, 1), 1);
	assert_int_equal(poll(&p, 1, ASK_MS), 1);
	assert_int_equal(read(c->fd, &r, sizeof(r)), (ssize_t)sizeof(r));
	return r;
}

static void reap(struct child *c, int sig)
{
	int st;

	if (sig)
		kill(c->pid, sig);
	else
		assert_int_equal(write(c->fd, "q", 1), 1);
	assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
	if (!sig)
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(c->fd);
	c->pid = 0;
	c->fd = 0;
}

/* ---- the parent's daemon ---- */

static struct th_host dt;
static mv_daemon *daemon_;

static void daemon_down(void *arg)
{
	(void)arg;
	mv_daemon_destroy(daemon_);
	daemon_ = NULL;
}

static void daemon_up(uint64_t bytes)
{
	th_host_create(&dt, bytes, NULL);
	assert_int_equal(mv_daemon_create(dt.host, sock_path, &daemon_), 0);
	th_at_teardown(daemon_down, NULL);
}

static bool remote_seen(void *arg)
{
	unsigned n;

	(void)arg;
	assert_int_equal(mv_daemon_vms(daemon_, &remote, 1, &n), 0);
	return n == 1;
}

static struct mv_vm *remote_vm(void)
{
	struct mv_vm *vm;

	pthread_mutex_lock(&dt.host->vms_lock);
	vm = dt.host->vms;
	pthread_mutex_unlock(&dt.host->vms_lock);
	assert_non_null(vm);
	assert_non_null(vm->remote);
	return vm;
}

static uint64_t want_pages;
static bool remote_shrunk(void *arg)
{
	struct mv_host_stats hs;

	if (!remote_seen(arg))
		return false;
	assert_int_equal(mv_host_stats(dt.host, &hs), 0);
	return remote.grant_pages == want_pages &&
	       hs.consumed_pages == want_pages &&
	       remote.stats.consumed_pages <= want_pages;
}

static bool kid_connected(void *arg)
{
	return ask(arg, 'i').info.connected;
}

static bool kid_disconnected(void *arg)
{
	struct report r = ask(arg, 'i');

	return !r.info.connected && r.info.failures > 0;
}

static bool kid_welcomed_twice(void *arg)
{
	struct report r = ask(arg, 'i');

	return r.info.connected && r.info.welcomes == 2;
}

static bool host_empty(void *arg)
{
	struct mv_host_stats hs;

	(void)arg;
	assert_int_equal(mv_host_stats(dt.host, &hs), 0);
	return hs.consumed_pages == 0 && hs.nvms == 0;
}

/* ---- tests ---- */

static void test_agent_process_shrinks_to_a_smaller_grant(void **state)
{
	struct child kid;
	struct report r;
	uint64_t before;

	(void)state;
	setup_dir();
	/* its own budget is twice its VM: unmanaged, it would hold it all */
	kid = spawn(0, agent_fn, 2 * VM_BYTES);
	daemon_up(256 * MiB);
	assert_true(th_wait_until(remote_seen, NULL, TH_WAIT_MS));
	/* it said it held all its pages: granted them, and its budget
	 * follows */
	assert_int_equal(remote.grant_pages, VM_PAGES);
	assert_true(th_wait_until(kid_connected, &kid, TH_WAIT_MS));
	r = ask(&kid, 'i');
	before = r.vm_consumed;
	assert_true(before >= VM_PAGES - VM_PAGES / 16);
	assert_int_equal(r.info.grant_bytes, VM_BYTES);
	assert_int_equal(r.host_memsize, VM_PAGES);
	/* the daemon keeps the machine's minFree: the agent a quarter */
	assert_int_equal(r.host_minfree, (mv_minfree_bytes(VM_BYTES) >> 12) /
						 MV_AGENT_MINFREE_DIV);
	/* a limit of half: the grant follows, the child reclaims, acks, and
	 * only then the frames come back */
	assert_int_equal(mv_vm_set_limit(remote_vm(), VM_BYTES / 2), 0);
	want_pages = VM_PAGES / 2;
	assert_true(th_wait_until(remote_shrunk, NULL, TH_WAIT_MS));
	r = ask(&kid, 'v');
	assert_int_equal(r.bad_pages, 0);
	assert_int_equal(r.host_memsize, VM_PAGES / 2);
	assert_true(r.host_consumed <= VM_PAGES / 2);
	assert_true(r.info.acks >= 1);
	/* what it reported shows in the daemon's host */
	assert_true(remote_seen(NULL));
	print_message(
		"child held %llu pages, then %llu (swapped %llu, compressed %llu), %llu acks\n",
		(unsigned long long)before,
		(unsigned long long)remote.stats.consumed_pages,
		(unsigned long long)remote.stats.swapout_pages,
		(unsigned long long)remote.stats.zip_pages,
		(unsigned long long)r.info.acks);
	assert_true(remote.stats.swapout_pages + remote.stats.zip_pages > 0);
	assert_true(remote.stats.consumed_pages < before);
	reap(&kid, 0);
	assert_true(th_wait_until(host_empty, NULL, TH_WAIT_MS));
	daemon_down(NULL);
	th_host_destroy(&dt);
}

static void
test_daemon_killed_agent_keeps_its_grant_and_reconnects(void **state)
{
	struct child kid, dmn;
	struct report r;
	uint64_t grant;

	(void)state;
	setup_dir();
	dmn = spawn(1, daemon_fn, 0);
	kid = spawn(0, agent_fn, 2 * VM_BYTES);
	assert_true(th_wait_until(kid_connected, &kid, TH_WAIT_MS));
	r = ask(&kid, 'i');
	grant = r.info.grant_bytes;
	assert_true(grant > 0);
	reap(&dmn, SIGKILL);
	assert_true(th_wait_until(kid_disconnected, &kid, TH_WAIT_MS));
	/* running, inside its last grant, its pages intact */
	r = ask(&kid, 'v');
	assert_int_equal(r.bad_pages, 0);
	assert_int_equal(r.host_memsize << 12, grant);
	assert_true(r.host_consumed << 12 <= grant);
	/* a new daemon on the same path: it comes back */
	daemon_up(256 * MiB);
	assert_true(th_wait_until(kid_welcomed_twice, &kid, TH_WAIT_MS));
	assert_true(th_wait_until(remote_seen, NULL, TH_WAIT_MS));
	reap(&kid, 0);
	daemon_down(NULL);
	th_host_destroy(&dt);
}

/* The daemon's view of the remote VM has the service figures of the
 * child's own view, once its service has followed its vCPU at all. */
static bool service_stats_arrived(void *arg)
{
	struct report r = ask(arg, 'i');
	const struct mv_vm_stats *k = &r.vm_stats, *d = &remote.stats;

	return remote_seen(NULL) && k->service_cpus > 0 &&
	       k->service_cpu_changes > 0 &&
	       d->service_cpus == k->service_cpus &&
	       d->service_cpu_changes == k->service_cpu_changes &&
	       d->service_moves == k->service_moves &&
	       d->service_affinity_errors == k->service_affinity_errors;
}

static void test_agent_reports_its_service_figures_to_the_daemon(void **state)
{
	struct child kid;

	(void)state;
	setup_dir();
	kid = spawn(0, agent_fn, 2 * VM_BYTES);
	daemon_up(256 * MiB);
	assert_true(th_wait_until(service_stats_arrived, &kid, TH_WAIT_MS));
	print_message("service on %u CPUs, %llu changes, %llu moves\n",
		      remote.stats.service_cpus,
		      (unsigned long long)remote.stats.service_cpu_changes,
		      (unsigned long long)remote.stats.service_moves);
	reap(&kid, 0);
	daemon_down(NULL);
	th_host_destroy(&dt);
}

/* The daemon's view of the remote VM has the zero-page figures of the
 * child's own view (a VM that read pages as zeros and wrote some). */
static bool zero_stats_arrived(void *arg)
{
	struct report r = ask(arg, 'i');
	const struct mv_vm_stats *k = &r.vm_stats, *d = &remote.stats;

	return remote_seen(NULL) && k->zero_maps > 0 && k->zero_writes > 0 &&
	       d->zero_maps == k->zero_maps &&
	       d->zero_writes == k->zero_writes &&
	       d->zero_around_pages == k->zero_around_pages;
}

static void test_agent_reports_its_zero_page_figures_to_the_daemon(void **state)
{
	struct child kid;

	(void)state;
	setup_dir();
	kid = spawn(0, zero_reader_fn, 2 * VM_BYTES);
	daemon_up(256 * MiB);
	assert_true(th_wait_until(zero_stats_arrived, &kid, TH_WAIT_MS));
	print_message("%llu pages read as zeros, %llu first writes\n",
		      (unsigned long long)remote.stats.zero_maps,
		      (unsigned long long)remote.stats.zero_writes);
	reap(&kid, 0);
	daemon_down(NULL);
	th_host_destroy(&dt);
}

/* The daemon's view of the remote VM has the open zero pages' figures of
 * the child's own view (a VM with Mem.ZeroOpen that read pages as zeros,
 * opened, and wrote some with no fault). */
static bool open_stats_arrived(void *arg)
{
	struct report r = ask(arg, 'i');
	const struct mv_vm_stats *k = &r.vm_stats, *d = &remote.stats;

	return remote_seen(NULL) && k->zero_opens > 0 &&
	       d->zero_opens == k->zero_opens &&
	       d->zero_open_writes == k->zero_open_writes &&
	       d->zero_closes == k->zero_closes &&
	       d->zero_open_pages == k->zero_open_pages &&
	       d->zero_open_errors == k->zero_open_errors;
}

static void test_agent_reports_its_open_zero_pages_to_the_daemon(void **state)
{
	struct child kid;

	(void)state;
	setup_dir();
	kid = spawn(0, zero_reader_fn, 2 * VM_BYTES + 1);
	daemon_up(256 * MiB);
	assert_true(th_wait_until(open_stats_arrived, &kid, TH_WAIT_MS));
	print_message("%llu pages opened, %llu written with no fault\n",
		      (unsigned long long)remote.stats.zero_opens,
		      (unsigned long long)remote.stats.zero_open_writes);
	reap(&kid, 0);
	daemon_down(NULL);
	th_host_destroy(&dt);
}

/* ---- a daemon from before the STATS tail, played by the test ---- */

/* The next whole message on fd (bytes kept in buf/len between calls):
 * its type and body length, the message copied to msg; false on EOF or
 * at the deadline. */
static bool old_recv(int fd, uint8_t *buf, size_t *len, uint8_t *msg,
		     unsigned *type, uint32_t *body)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t until = th_now_ms() + TH_WAIT_MS;
	ssize_t n;

	for (;;) {
		if (*len >= MV_PROTO_HDR) {
			*type = buf[6] | (unsigned)buf[7] << 8;
			*body = buf[8] | (uint32_t)buf[9] << 8;
			assert_true(*body <= MV_PROTO_MAX - MV_PROTO_HDR);
			if (*len >= MV_PROTO_HDR + *body) {
				memcpy(msg, buf, MV_PROTO_HDR + *body);
				*len -= MV_PROTO_HDR + *body;
				memmove(buf, buf + MV_PROTO_HDR + *body, *len);
				return true;
			}
		}
		if (th_now_ms() >= until)
			return false;
		if (poll(&p, 1, 50) <= 0)
			continue;
		n = recv(fd, buf + *len, 2 * MV_PROTO_MAX - *len, 0);
		if (n <= 0)
			return false;
		*len += (size_t)n;
	}
}

static void old_send(int fd, const struct mv__proto_msg *m)
{
	uint8_t buf[MV_PROTO_MAX];
	int n = mv__proto_encode(m, buf, sizeof(buf));

	assert_true(n > 0);
	assert_int_equal(send(fd, buf, (size_t)n, MSG_NOSIGNAL), n);
}

/* Accepts the agent on lfd, reads its HELLO and welcomes it with a grant
 * of all its VM, the target given and the report period given; bytes read
 * past the HELLO stay in buf/len.  Returns the connection. */
static int welcome_agent(int lfd, uint64_t target_bytes, unsigned period_ms,
			 uint8_t *buf, size_t *len)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };
	struct mv__proto_msg w = { .type = MV_PROTO_WELCOME };
	uint8_t msg[MV_PROTO_MAX];
	unsigned type;
	uint32_t body;
	int fd;

	assert_int_equal(poll(&p, 1, TH_WAIT_MS), 1);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	assert_true(old_recv(fd, buf, len, msg, &type, &body));
	assert_int_equal(type, MV_PROTO_HELLO);
	w.u.grant = (struct mv__proto_grant){ .seq = 1,
					      .grant_bytes = VM_BYTES,
					      .target_bytes = target_bytes,
					      .period_ms = period_ms,
					      .vm_id = 1 };
	old_send(fd, &w);
	return fd;
}

/* Accepts the agent, welcomes it, and returns the body length of its
 * first STATS, after answering it as a daemon that knows STATS bodies of
 * up to `known` bytes: a longer one is refused (ERROR EBADMSG); the
 * connection is closed either way. */
static uint32_t old_daemon_session(int lfd, uint32_t known)
{
	struct mv__proto_msg e = { .type = MV_PROTO_ERROR };
	uint8_t buf[2 * MV_PROTO_MAX], msg[MV_PROTO_MAX];
	size_t len = 0;
	unsigned type;
	uint32_t body = 0;
	int fd = welcome_agent(lfd, VM_BYTES, 20, buf, &len);

	do
		assert_true(old_recv(fd, buf, &len, msg, &type, &body));
	while (type != MV_PROTO_STATS);
	if (body > known) {
		e.u.error.code = EBADMSG;
		snprintf(e.u.error.msg, sizeof(e.u.error.msg),
			 "STATS with a body of %u bytes: it has %u", body,
			 known);
		old_send(fd, &e);
	}
	close(fd);
	return body;
}

#define STATS_BODY 264u
#define STATS_TAIL (STATS_BODY + MV_PROTO_STATS_MORE_BYTES)
#define STATS_WAITS (STATS_TAIL + MV_PROTO_STATS_WAITS_BYTES)
#define STATS_ZIP (STATS_WAITS + MV_PROTO_STATS_ZIP_BYTES)
#define STATS_ZERO (STATS_ZIP + MV_PROTO_STATS_ZERO_BYTES)
#define STATS_OPEN (STATS_ZERO + MV_PROTO_STATS_OPEN_BYTES)

/* A socket at sock_path that the test answers as an older daemon. */
static int old_daemon_listen(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd;

	setup_dir();
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	return lfd;
}

static void
test_agent_leaves_the_stats_tail_out_for_an_older_daemon(void **state)
{
	struct child kid;
	int lfd;

	(void)state;
	lfd = old_daemon_listen();
	kid = spawn(0, agent_fn, 2 * VM_BYTES);
	/* first the longest body, refused; reconnected, the compression
	 * figures without the zero-page figures, refused; the waits without
	 * the compression figures, refused; then the tail without the waits,
	 * refused; reconnected again, the shortest, and then on */
	assert_int_equal(old_daemon_session(lfd, STATS_BODY), STATS_OPEN);
	assert_int_equal(old_daemon_session(lfd, STATS_BODY), STATS_ZERO);
	assert_int_equal(old_daemon_session(lfd, STATS_BODY), STATS_ZIP);
	assert_int_equal(old_daemon_session(lfd, STATS_BODY), STATS_WAITS);
	assert_int_equal(old_daemon_session(lfd, STATS_BODY), STATS_TAIL);
	assert_int_equal(old_daemon_session(lfd, STATS_BODY), STATS_BODY);
	assert_int_equal(old_daemon_session(lfd, STATS_BODY), STATS_BODY);
	reap(&kid, 0);
	close(lfd);
}

/* A daemon that has the tail but not the waits keeps getting the tail. */
static void
test_agent_leaves_the_waits_out_for_a_daemon_without_them(void **state)
{
	struct child kid;
	int lfd;

	(void)state;
	lfd = old_daemon_listen();
	kid = spawn(0, agent_fn, 2 * VM_BYTES);
	assert_int_equal(old_daemon_session(lfd, STATS_TAIL), STATS_OPEN);
	assert_int_equal(old_daemon_session(lfd, STATS_TAIL), STATS_ZERO);
	assert_int_equal(old_daemon_session(lfd, STATS_TAIL), STATS_ZIP);
	assert_int_equal(old_daemon_session(lfd, STATS_TAIL), STATS_WAITS);
	assert_int_equal(old_daemon_session(lfd, STATS_TAIL), STATS_TAIL);
	/* a connection the daemon closed without refusing changes nothing */
	assert_int_equal(old_daemon_session(lfd, STATS_TAIL), STATS_TAIL);
	reap(&kid, 0);
	close(lfd);
}

/* A daemon that has the waits but not the compression figures keeps
 * getting the waits, after one reconnection. */
static void
test_agent_leaves_the_zip_figures_out_for_a_daemon_without_them(void **state)
{
	struct child kid;
	int lfd;

	(void)state;
	lfd = old_daemon_listen();
	kid = spawn(0, agent_fn, 2 * VM_BYTES);
	assert_int_equal(old_daemon_session(lfd, STATS_WAITS), STATS_OPEN);
	assert_int_equal(old_daemon_session(lfd, STATS_WAITS), STATS_ZERO);
	assert_int_equal(old_daemon_session(lfd, STATS_WAITS), STATS_ZIP);
	assert_int_equal(old_daemon_session(lfd, STATS_WAITS), STATS_WAITS);
	assert_int_equal(old_daemon_session(lfd, STATS_WAITS), STATS_WAITS);
	reap(&kid, 0);
	close(lfd);
}

/* A daemon that has the compression figures but not the zero-page
 * figures keeps getting the compression figures, after one reconnection. */
static void
test_agent_leaves_the_zero_figures_out_for_a_daemon_without_them(void **state)
{
	struct child kid;
	int lfd;

	(void)state;
	lfd = old_daemon_listen();
	kid = spawn(0, agent_fn, 2 * VM_BYTES);
	assert_int_equal(old_daemon_session(lfd, STATS_ZIP), STATS_OPEN);
	assert_int_equal(old_daemon_session(lfd, STATS_ZIP), STATS_ZERO);
	assert_int_equal(old_daemon_session(lfd, STATS_ZIP), STATS_ZIP);
	assert_int_equal(old_daemon_session(lfd, STATS_ZIP), STATS_ZIP);
	reap(&kid, 0);
	close(lfd);
}

/* A daemon that has the zero-page figures but not the open zero pages'
 * keeps getting the zero-page figures, after one reconnection. */
static void
test_agent_leaves_the_open_figures_out_for_a_daemon_without_them(void **state)
{
	struct child kid;
	int lfd;

	(void)state;
	lfd = old_daemon_listen();
	kid = spawn(0, agent_fn, 2 * VM_BYTES);
	assert_int_equal(old_daemon_session(lfd, STATS_ZERO), STATS_OPEN);
	assert_int_equal(old_daemon_session(lfd, STATS_ZERO), STATS_ZERO);
	assert_int_equal(old_daemon_session(lfd, STATS_ZERO), STATS_ZERO);
	reap(&kid, 0);
	close(lfd);
}

/* ---- how often an agent near its grant reports ---- */

/*
 * Plays a daemon that welcomes the agent with a grant of all its VM (which
 * holds all of it: the agent's host is near its budget) and the target
 * `target_bytes`, asking for a report every `period_ms`; notes when each
 * of the first `n` STATS came (ms), and closes the connection.
 */
static void stats_times(int lfd, uint64_t target_bytes, unsigned period_ms,
			unsigned n, uint64_t *at)
{
	uint8_t buf[2 * MV_PROTO_MAX], msg[MV_PROTO_MAX];
	size_t len = 0;
	unsigned type, got = 0;
	uint32_t body;
	int fd = welcome_agent(lfd, target_bytes, period_ms, buf, &len);

	while (got < n) {
		assert_true(old_recv(fd, buf, &len, msg, &type, &body));
		if (type == MV_PROTO_STATS)
			at[got++] = th_now_ms();
	}
	close(fd);
}

/* Below its target, an agent near its grant reports at once, not once a
 * period: the daemon grows the grant as fast as the guest touches. */
static void
test_agent_near_its_grant_reports_at_once_while_below_target(void **state)
{
	uint64_t at[10];
	struct child kid;
	int lfd;

	(void)state;
	lfd = old_daemon_listen();
	kid = spawn(0, agent_fn, 2 * VM_BYTES);
	stats_times(lfd, 2 * VM_BYTES, 60000, 10, at);
	/* ten reports long before one period of a minute */
	assert_true(at[9] - at[0] < 30000);
	reap(&kid, 0);
	close(lfd);
}

/* At its target, a grant grows no more: an agent near it reports once a
 * period, not every PRESSED_MS (which only woke the daemon and itself). */
static void test_agent_at_its_target_reports_once_a_period(void **state)
{
	uint64_t at[4];
	struct child kid;
	int lfd;

	(void)state;
	lfd = old_daemon_listen();
	kid = spawn(0, agent_fn, 2 * VM_BYTES);
	stats_times(lfd, VM_BYTES, 300, 4, at);
	/* three periods (900 ms, less what delivery can shift at either
	 * end) from the first to the fourth: not 6 ms */
	assert_true(at[3] - at[0] >= 600);
	reap(&kid, 0);
	close(lfd);
}

static void test_agent_killed_daemon_takes_its_grant_back(void **state)
{
	struct mv_host_stats hs;
	struct mv_daemon_stats ds;
	struct child kid;

	(void)state;
	setup_dir();
	kid = spawn(0, agent_fn, 2 * VM_BYTES);
	daemon_up(256 * MiB);
	assert_true(th_wait_until(remote_seen, NULL, TH_WAIT_MS));
	assert_int_equal(mv_host_stats(dt.host, &hs), 0);
	assert_true(hs.consumed_pages >= VM_PAGES / 2);
	reap(&kid, SIGKILL);
	assert_true(th_wait_until(host_empty, NULL, TH_WAIT_MS));
	assert_int_equal(mv_daemon_stats(daemon_, &ds), 0);
	assert_int_equal(ds.lost, 1);
	daemon_down(NULL);
	th_host_destroy(&dt);
}

/* written by the host's log thread, read by the test's */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char logged[4][512];
static unsigned nlogged;
static void log_fn(void *arg, enum mv_log_level level, const char *msg)
{
	(void)arg;
	(void)level;
	pthread_mutex_lock(&log_lock);
	if (nlogged < 4)
		snprintf(logged[nlogged++], sizeof(logged[0]), "%s", msg);
	pthread_mutex_unlock(&log_lock);
}

static bool said_unreachable(void *arg)
{
	bool yes;

	pthread_mutex_lock(&log_lock);
	yes = nlogged > 0 && strstr(logged[0], (const char *)arg);
	pthread_mutex_unlock(&log_lock);
	return yes;
}

static void test_no_daemon_runs_unmanaged_at_once(void **state)
{
	struct mv_host_config cfg;
	static char unmanaged[] = "runs unmanaged";
	struct mv_vm_config vcfg;
	struct mv_agent_info info;
	struct mv_host_stats hs;
	mv_host *h;
	mv_vm *vm;
	mv_agent *a;
	uint64_t t0;
	uint8_t *mem;

	(void)state;
	setup_dir();
	pthread_mutex_lock(&log_lock);
	nlogged = 0;
	pthread_mutex_unlock(&log_lock);
	mv_host_config_init(&cfg);
	cfg.memsize_bytes = 2 * VM_BYTES;
	cfg.swapdir = dir;
	cfg.log = log_fn;
	th_settings_quiet(&cfg.settings);
	assert_int_equal(mv_host_create(&cfg, &h), 0);
	mv_vm_config_init(&vcfg);
	snprintf(vcfg.name, sizeof(vcfg.name), "solo");
	vcfg.memsize_bytes = VM_BYTES;
	assert_int_equal(mv_vm_create(h, &vcfg, &vm), 0);
	t0 = th_now_ms();
	assert_int_equal(mv_agent_create(h, vm, sock_path, &a), 0);
	/* without waiting for a welcome (WELCOME_MS, 2 s) */
	assert_true(th_now_ms() - t0 < 2000);
	assert_true(th_wait_until(said_unreachable, unmanaged, TH_WAIT_MS));
	/* the VM runs on the host's own budget, every page its own */
	mem = mv_vm_mem(vm);
	for (uint64_t i = 0; i < VM_PAGES; i++)
		th_fill(mem + (i << 12), TAG, i, 0);
	for (uint64_t i = 0; i < VM_PAGES; i++)
		assert_true(th_check(mem + (i << 12), TAG, i, 0));
	assert_int_equal(mv_agent_info(a, &info), 0);
	assert_int_equal(info.connected, 0);
	assert_int_equal(info.grant_bytes, 0);
	assert_int_equal(info.budget_bytes, 2 * VM_BYTES);
	assert_int_equal(mv_host_stats(h, &hs), 0);
	assert_int_equal(hs.memsize_pages, 2 * VM_PAGES);
	assert_int_equal(hs.swap_errors, 0);
	mv_agent_destroy(a);
	mv_vm_destroy(vm);
	mv_host_destroy(h);
}

/*
 * An agent with a daemon to follow holds its VM's write-around to the
 * daemon's target, none before the first grant (fault.c); one with no
 * socket leaves it to its host's own target.
 */
static void test_an_agent_holds_write_around_to_its_daemons_target(void **state)
{
	struct th_host t;
	mv_agent *a;
	mv_vm *vm;

	(void)state;
	setup_dir();
	th_host_create(&t, 2 * VM_BYTES, NULL);
	vm = th_vm_create(&t, "wa", VM_BYTES);
	assert_int_equal(mv_agent_create(t.host, vm, NULL, &a), 0);
	assert_true(atomic_load(&t.host->grant_target_pages) == UINT64_MAX);
	mv_agent_destroy(a);
	assert_int_equal(mv_agent_create(t.host, vm, sock_path, &a), 0);
	assert_int_equal(atomic_load(&t.host->grant_target_pages), 0);
	mv_agent_destroy(a);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/* The budget layer's part (mv__budget_set_memsize): a host whose budget
 * shrinks below what its VM holds reclaims down to it, content kept; one
 * that grows lets the VM hold more at once. */
static mv_host *budget_host;
static bool within_budget(void *arg)
{
	struct mv_host_stats hs;

	(void)arg;
	assert_int_equal(mv_host_stats(budget_host, &hs), 0);
	return hs.consumed_pages <= hs.memsize_pages;
}

static void test_a_budget_shrunk_at_run_time_is_reclaimed_down_to(void **state)
{
	struct mv_host_stats hs;
	struct th_host t;
	uint8_t *mem;
	mv_vm *vm;

	(void)state;
	th_host_create(&t, 2 * VM_BYTES, NULL);
	budget_host = t.host;
	vm = th_vm_create(&t, "shrinks", VM_BYTES);
	mem = mv_vm_mem(vm);
	for (uint64_t i = 0; i < VM_PAGES; i++)
		th_fill(mem + (i << 12), TAG, i, 0);
	mv__budget_set_memsize(t.host, VM_PAGES / 4,
			       mv_minfree_bytes(VM_BYTES / 4) >> 12);
	assert_true(th_wait_until(within_budget, NULL, TH_WAIT_MS));
	assert_int_equal(mv_host_stats(t.host, &hs), 0);
	assert_int_equal(hs.memsize_pages, VM_PAGES / 4);
	assert_int_equal(hs.minfree_pages,
			 mv_minfree_bytes(VM_BYTES / 4) >> 12);
	/* every page reads back, through the smaller budget */
	for (uint64_t i = 0; i < VM_PAGES; i++)
		assert_true(th_check(mem + (i << 12), TAG, i, 0));
	assert_true(within_budget(NULL));
	/* grown again: the whole VM fits, nothing more is swapped */
	mv__budget_set_memsize(t.host, 2 * VM_PAGES,
			       mv_minfree_bytes(2 * VM_BYTES) >> 12);
	for (uint64_t i = 0; i < VM_PAGES; i++)
		assert_true(th_check(mem + (i << 12), TAG, i, 0));
	assert_int_equal(mv_host_stats(t.host, &hs), 0);
	assert_true(hs.consumed_pages >= VM_PAGES);
	mv_vm_destroy(vm);
	th_host_destroy(&t);
}

/*
 * The scheduler treats a remote VM like any VM: a host shared by a VM of
 * this process and an agent's VM, both holding all their pages, more than
 * the host has, the local VM with ten times the shares: the scheduler
 * gives the local VM all it asks and the remote VM the rest, and the
 * remote VM's grant follows its target down (its agent reclaims and
 * acknowledges).
 */
static struct mv_vm *local_vm;
static bool grant_follows_target(void *arg)
{
	struct mv_host_stats hs;
	uint64_t tgt;

	/* its agent may still be retrying (it started before the daemon) */
	if (!remote_seen(arg))
		return false;
	assert_int_equal(mv_host_stats(dt.host, &hs), 0);
	tgt = remote.stats.sztgt_pages;
	return tgt < VM_PAGES && remote.grant_pages <= tgt &&
	       remote.grant_pages + VM_PAGES / 64 > tgt &&
	       hs.consumed_pages <= hs.memsize_pages;
}

static void test_remote_grant_follows_the_scheduler_target(void **state)
{
	struct mv_vm_stats ls;
	struct child kid;
	struct report r;
	uint8_t *mem;

	(void)state;
	setup_dir();
	kid = spawn(0, agent_fn, 2 * VM_BYTES);
	th_host_create(&dt, 2 * VM_BYTES, NULL);
	local_vm = th_vm_create(&dt, "local", VM_BYTES);
	/* ten times the remote VM's shares: the remote one is squeezed */
	assert_int_equal(mv_vm_set_shares(local_vm,
					  10 * mv_shares_for(MV_SHARES_NORMAL,
							     VM_BYTES)),
			 0);
	mem = mv_vm_mem(local_vm);
	for (uint64_t i = 0; i < VM_PAGES; i++)
		th_fill(mem + (i << 12), TAG + 1, i, 0);
	assert_int_equal(mv_daemon_create(dt.host, sock_path, &daemon_), 0);
	th_at_teardown(daemon_down, NULL);
	assert_true(th_wait_until(grant_follows_target, NULL, TH_WAIT_MS));
	assert_int_equal(mv_vm_stats(local_vm, &ls), 0);
	print_message(
		"targets: local %llu, remote %llu (grant %llu, holds %llu)\n",
		(unsigned long long)ls.sztgt_pages,
		(unsigned long long)remote.stats.sztgt_pages,
		(unsigned long long)remote.grant_pages,
		(unsigned long long)remote.stats.consumed_pages);
	assert_int_equal(ls.sztgt_pages, VM_PAGES);
	r = ask(&kid, 'v');
	assert_int_equal(r.bad_pages, 0);
	/* the agent's check reads every page of its VM, faulting back what
	 * it gave up: the remote VM, held at its demand cap, may meanwhile be
	 * balanced early to a higher target and its grant grow with it (the
	 * local VM's needs stay as they are, so the remote's target only
	 * rises): its target after the agent's answer bounds the grant */
	assert_true(remote_seen(NULL));
	assert_true(r.host_memsize <= remote.stats.sztgt_pages);
	for (uint64_t i = 0; i < VM_PAGES; i++)
		assert_true(th_check(mem + (i << 12), TAG + 1, i, 0));
	reap(&kid, 0);
	daemon_down(NULL);
	mv_vm_destroy(local_vm);
	th_host_destroy(&dt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent_process_shrinks_to_a_smaller_grant),
		cmocka_unit_test(
			test_remote_grant_follows_the_scheduler_target),
		cmocka_unit_test(
			test_daemon_killed_agent_keeps_its_grant_and_reconnects),
		cmocka_unit_test(test_agent_killed_daemon_takes_its_grant_back),
		cmocka_unit_test(
			test_agent_reports_its_service_figures_to_the_daemon),
		cmocka_unit_test(
			test_agent_reports_its_zero_page_figures_to_the_daemon),
		cmocka_unit_test(
			test_agent_reports_its_open_zero_pages_to_the_daemon),
		cmocka_unit_test(
			test_agent_leaves_the_stats_tail_out_for_an_older_daemon),
		cmocka_unit_test(
			test_agent_leaves_the_zero_figures_out_for_a_daemon_without_them),
		cmocka_unit_test(
			test_agent_leaves_the_open_figures_out_for_a_daemon_without_them),
		cmocka_unit_test(
			test_agent_leaves_the_zip_figures_out_for_a_daemon_without_them),
		cmocka_unit_test(
			test_agent_near_its_grant_reports_at_once_while_below_target),
		cmocka_unit_test(
			test_agent_at_its_target_reports_once_a_period),
		cmocka_unit_test(
			test_agent_leaves_the_waits_out_for_a_daemon_without_them),
		cmocka_unit_test(test_no_daemon_runs_unmanaged_at_once),
		cmocka_unit_test(
			test_an_agent_holds_write_around_to_its_daemons_target),
		cmocka_unit_test(
			test_a_budget_shrunk_at_run_time_is_reclaimed_down_to),
	};

	return th_run_tests(tests);
}

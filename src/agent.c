// SPDX-License-Identifier: MIT
/*
 * agent.c - the agent (mv_agent_*, docs/PROTOCOL.md): the client of a host
 * daemon (daemon.c) inside a VMM, for one VM of a host of its own.  API
 * layer.
 *
 * Design: a thread of its own connects to the daemon's socket
 * (non-blocking: a Unix connect succeeds or fails at once), says HELLO,
 * and then sends the VM's statistics every period the daemon asked for,
 * and every PRESSED_MS while its host is near its budget or a fault
 * waits for a frame and its grant is below its target (pressed()), so
 * that a grant grows as fast as the guest touches.
 * A grant (WELCOME, GRANT) becomes the budget of the agent's host
 * (mv__budget_set_memsize): a larger one at once; a smaller one wakes the
 * host's scheduler, which reclaims down to it, and the agent acknowledges
 * it (GRANT_ACK) only once the host holds no more than the grant, looking
 * again every tick, never waiting.  The agent's host keeps a quarter of
 * ESX's minFree of its grant free (MV_AGENT_MINFREE_DIV): the daemon's
 * host already keeps minFree for the machine, and a full one in every
 * agent as well held it twice (on four kvstore VMs in their own processes,
 * 4 x 14.5 MB beside the daemon's 61 MB; a quarter gave 15% more ops/s in
 * two runs each, 1.13-1.17M against 0.99-1.01M).  A balloon target goes to the VM's
 * balloon (mv_vm_balloon_set_target).  STATS carry, in the additions of
 * their longer bodies, the service figures (affinity.c) and the totals a
 * run's host line counts for the VM (the tail), the faults' waits, the
 * compression cache's search (zcache.c), the pages read as zeros and
 * their first writes (fault.c), and the open zero pages (zero_open.c); a daemon from before an addition
 * refuses that body (ERROR EBADMSG), and the agent reconnects and sends one
 * addition fewer from then on.
 *
 * Failures: no socket path, or a daemon that cannot be reached, and the
 * VM runs unmanaged on the host's own budget (for the preload, the VM's
 * memsize: no overcommit), said once in the host's log; the agent retries
 * with a backoff doubling from BACKOFF_MIN_MS to BACKOFF_MAX_MS.  A daemon
 * that goes away (EOF, an error, or no WELCOME within WELCOME_MS) leaves
 * the budget at the last grant, and the agent reconnects the same way and
 * says HELLO again, with what the VM holds now.  The VMM's threads never
 * wait on any of this: mv_agent_create only starts the thread.
 *
 * Invariants: after a grant, the host's budget is that grant until the
 * next one; an acknowledgement is sent only when the host's consumption is
 * within the grant acknowledged; every wait is poll's, at most TICK_MS.
 *
 * Locks: a->lock guards the counters mv_agent_info reads; the thread takes
 * engine locks only through API calls (mv_vm_stats, mv_host_stats).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "inject.h"
#include "internal.h"
#include "proto.h"

#define TICK_MS 20
#define WELCOME_MS 2000
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 2000
#define OUT_BYTES 4096
/* Under pressure (pressed()) the VM reports this often, not once a period */
#define PRESSED_MS 2
/* The STATS tails an agent sends, each a later addition to the protocol
 * (docs/PROTOCOL.md, "Versions"): none, the tail, then the waits, the
 * compression figures and the zero-page figures, each after the one
 * before */
enum { TAILS_NONE, TAILS_MORE, TAILS_WAITS, TAILS_ZIP, TAILS_ZERO, TAILS_OPEN };

struct mv_agent {
	struct mv_host *host;
	struct mv_vm *vm;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char qmp[MV_PROTO_PATH_MAX];
	int stop_fd;
	pthread_t thread;
	bool thread_started;

	/* the thread's own */
	int fd; /* -1: not connected */
	bool welcomed;
	bool said_unreachable; /* the log said so since the last WELCOME */
	uint64_t connect_ms; /* when the connection was made */
	uint64_t next_connect_ms, backoff_ms;
	uint64_t period_ms, next_stats_ms, last_stats_ms;
	uint64_t ack_seq, ack_bytes; /* a grant to acknowledge; 0: none */
	/* the daemon's target for the VM in its last grant (pages): a grant
	 * that has reached it grows no more (pressed()) */
	uint64_t target_pages;
	/* how much of the STATS tails a STATS on this connection carried
	 * (TAILS_*), and how much this agent sends: a daemon that refused a
	 * STATS with tails_sent of them gets one fewer from then on */
	unsigned tails_sent, tails_max;
	uint8_t in[MV_PROTO_MAX];
	size_t inlen;
	uint8_t out[OUT_BYTES];
	size_t outlen;

	pthread_mutex_t lock; /* info */
	struct mv_agent_info info;
};

/* What a STATS leaves out when it carries additions up to TAILS_*. */
static const char *const left_out[] = {
	[TAILS_NONE] =
		"their tail (service, reclaim, sharing figures and the additions after it) is",
	[TAILS_MORE] = "the waits for frames and the additions after them are",
	[TAILS_WAITS] =
		"the compression figures and the additions after them are",
	[TAILS_ZIP] = "the zero-page figures and the open zero pages' are",
	[TAILS_ZERO] = "the open zero pages' figures are",
};

static void count(struct mv_agent *a, uint64_t *field)
{
	pthread_mutex_lock(&a->lock);
	(*field)++;
	pthread_mutex_unlock(&a->lock);
}

static void drop(struct mv_agent *a, const char *why)
{
	if (a->fd < 0)
		return;
	close(a->fd);
	a->fd = -1;
	a->inlen = a->outlen = 0;
	a->ack_seq = 0;
	a->tails_sent = TAILS_NONE;
	pthread_mutex_lock(&a->lock);
	a->info.failures++;
	a->info.connected = 0;
	pthread_mutex_unlock(&a->lock);
	if (a->welcomed)
		mv__host_event(
			a->host, MV_LOG_WARNING,
			"agent: VM %s lost its daemon at %s (%s): it stays inside its last grant of %llu MiB and reconnects",
			a->vm->name, a->path, why,
			(unsigned long long)(a->info.grant_bytes >> 20));
	a->welcomed = false;
	a->next_connect_ms = mv__now_ms() + a->backoff_ms;
	a->backoff_ms = a->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
							     a->backoff_ms * 2;
}

static void flush(struct mv_agent *a)
{
	ssize_t n;

	while (a->fd >= 0 && a->outlen) {
		n = send(a->fd, a->out, a->outlen, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				drop(a, strerror(errno));
			return;
		}
		memmove(a->out, a->out + n, a->outlen - (size_t)n);
		a->outlen -= (size_t)n;
	}
}

static void send_msg(struct mv_agent *a, const struct mv__proto_msg *m)
{
	int n;

	if (a->fd < 0)
		return;
	n = mv__proto_encode(m, a->out + a->outlen, sizeof(a->out) - a->outlen);
	if (n < 0) {
		drop(a, n == -ENOSPC ? "the daemon does not read" :
				       "a message could not be encoded");
		return;
	}
	a->outlen += (size_t)n;
	flush(a);
}

static uint64_t host_consumed(struct mv_agent *a)
{
	return atomic_load(&a->host->consumed_pages);
}

static void send_hello(struct mv_agent *a)
{
	struct mv__proto_msg m = { .type = MV_PROTO_HELLO };
	struct mv__proto_hello *h = &m.u.hello;
	struct mv_vm_stats st;
	uint64_t memsize = a->vm->npages << MV_PAGE_SHIFT;

	mv_vm_stats(a->vm, &st);
	memcpy(h->name, a->vm->name, sizeof(h->name));
	h->memsize_bytes = memsize;
	h->shares = st.shares;
	h->reservation_bytes = st.reservation_pages << MV_PAGE_SHIFT;
	h->limit_bytes = st.limit_pages << MV_PAGE_SHIFT;
	h->consumed_bytes = st.consumed_pages << MV_PAGE_SHIFT;
	if (h->consumed_bytes > memsize)
		h->consumed_bytes = memsize;
	h->pid = (uint32_t)getpid();
	memcpy(h->qmp_path, a->qmp, sizeof(h->qmp_path));
	send_msg(a, &m);
}

static void send_stats(struct mv_agent *a)
{
	struct mv__proto_msg m = { .type = MV_PROTO_STATS };
	struct mv__proto_stats *s = &m.u.stats;
	struct mv_vm_stats st;
	uint64_t demand;

	mv_vm_stats(a->vm, &st);
	*s = (struct mv__proto_stats){
		.consumed_pages = st.consumed_pages,
		.touched_pages = st.touched_pages,
		.active_pages = st.active_pages,
		.swcur_pages = st.swcur_pages,
		.swapin_pages = st.swapin_pages,
		.swapout_pages = st.swapout_pages,
		.zip_cached_pages = st.zip_cached_pages,
		.zip_used_bytes = st.zip_used_bytes,
		.zip_saved_bytes = st.zip_saved_bytes,
		.zip_pages = st.zip_pages,
		.unzip_pages = st.unzip_pages,
		.shrd_pages = st.shrd_pages,
		.zero_pages = st.zero_pages,
		.shrdsvd_pages = st.shrdsvd_pages,
		.mctlsz_pages = st.mctlsz_pages,
		.mctltgt_pages = st.mctltgt_pages,
		.faults = st.faults,
		.fault_errors = st.fault_errors,
		.swap_errors = st.swap_errors,
		.unreadable_pages = st.unreadable_pages,
		.cow_breaks = st.cow_breaks,
		.lpage_pages = st.lpage_pages,
		.budget_pages = atomic_load(&a->host->memsize_pages),
		.active_permille =
			st.active_permille > 1000 ? 1000 : st.active_permille,
	};
	for (unsigned i = 0; i < MV_PAGE_NSTATES; i++)
		s->state_pages[i] = st.state_pages[i];
	demand = mv__sample_demand_pages(a->vm);
	if (demand != UINT64_MAX) {
		s->flags |= MV_PROTO_STATS_DEMAND;
		s->demand_pages =
			demand < 2 * a->vm->npages ? demand : 2 * a->vm->npages;
	}
	if (a->tails_max >= TAILS_MORE) {
		s->flags |= MV_PROTO_STATS_MORE;
		s->service_cpus = st.service_cpus;
		s->service_cpu_changes = st.service_cpu_changes;
		s->service_moves = st.service_moves;
		s->service_affinity_errors = st.service_affinity_errors;
		s->zip_evict_pages = st.zip_evict_pages;
		s->share_scanned_pages = st.share_scanned_pages;
		s->lpage_collapses = st.lpage_collapses;
		s->lpage_breaks = st.lpage_breaks;
		a->tails_sent = TAILS_MORE;
	}
	if (a->tails_max >= TAILS_WAITS) {
		s->flags |= MV_PROTO_STATS_WAITS;
		s->alloc_waits = st.alloc_waits;
		s->blocked_waits = st.blocked_waits;
		a->tails_sent = TAILS_WAITS;
	}
	if (a->tails_max >= TAILS_ZIP) {
		s->flags |= MV_PROTO_STATS_ZIP;
		s->zip_incompressible = st.zip_incompressible;
		s->zip_fast_pages = st.zip_fast_pages;
		s->zip_accel = st.zip_accel < MV_PROTO_ZIP_ACCEL_MAX ?
				       st.zip_accel :
				       MV_PROTO_ZIP_ACCEL_MAX;
		a->tails_sent = TAILS_ZIP;
	}
	if (a->tails_max >= TAILS_ZERO) {
		s->flags |= MV_PROTO_STATS_ZERO;
		s->zero_maps = st.zero_maps;
		s->zero_writes = st.zero_writes;
		s->zero_around_pages = st.zero_around_pages;
		a->tails_sent = TAILS_ZERO;
	}
	if (a->tails_max >= TAILS_OPEN) {
		s->flags |= MV_PROTO_STATS_OPEN;
		s->zero_opens = st.zero_opens;
		s->zero_open_writes = st.zero_open_writes;
		s->zero_closes = st.zero_closes;
		s->zero_open_pages = st.zero_open_pages < s->consumed_pages ?
					     st.zero_open_pages :
					     s->consumed_pages;
		s->zero_open_errors = st.zero_open_errors;
		a->tails_sent = TAILS_OPEN;
	}
	send_msg(a, &m);
	count(a, &a->info.stats_sent);
}

/* A grant: the host's budget follows it; a smaller one is acknowledged
 * once reclaim has brought the host within it (tick). */
static void on_grant(struct mv_agent *a, const struct mv__proto_grant *g,
		     bool welcome)
{
	uint64_t pages = g->grant_bytes >> MV_PAGE_SHIFT;
	uint64_t minfree = (mv_minfree_bytes(g->grant_bytes) >> MV_PAGE_SHIFT) /
			   MV_AGENT_MINFREE_DIV;
	uint64_t memsize = a->vm->npages << MV_PAGE_SHIFT;

	mv__budget_set_memsize(a->host, pages, minfree);
	if (g->balloon_bytes <= memsize &&
	    g->balloon_bytes != a->info.balloon_bytes)
		mv_vm_balloon_set_target(a->vm, g->balloon_bytes);
	a->period_ms = g->period_ms;
	a->target_pages = g->target_bytes >> MV_PAGE_SHIFT;
	mv__budget_set_grant_target(a->host, a->target_pages);
	a->ack_seq = g->seq;
	a->ack_bytes = g->grant_bytes;
	pthread_mutex_lock(&a->lock);
	a->info.grant_bytes = g->grant_bytes;
	a->info.balloon_bytes = g->balloon_bytes;
	a->info.grants++;
	if (welcome) {
		a->info.welcomes++;
		a->info.connected = 1;
	}
	pthread_mutex_unlock(&a->lock);
	if (welcome) {
		a->welcomed = true;
		a->said_unreachable = false;
		a->backoff_ms = BACKOFF_MIN_MS;
		a->next_stats_ms = mv__now_ms();
		mv__host_event(
			a->host, MV_LOG_INFO,
			"agent: VM %s managed by the daemon at %s, granted %llu MiB",
			a->vm->name, a->path,
			(unsigned long long)(g->grant_bytes >> 20));
	}
}

static void on_msg(struct mv_agent *a, const struct mv__proto_msg *m)
{
	struct mv__proto_msg e = { .type = MV_PROTO_ERROR };
	char why[MV_PROTO_ERRMSG_MAX + 16];

	switch (m->type) {
	case MV_PROTO_WELCOME:
		if (!a->welcomed) {
			on_grant(a, &m->u.grant, true);
			return;
		}
		break;
	case MV_PROTO_GRANT:
		if (a->welcomed) {
			on_grant(a, &m->u.grant, false);
			return;
		}
		break;
	case MV_PROTO_BYE:
		drop(a, "it said goodbye");
		return;
	case MV_PROTO_ERROR:
		/* a daemon from before a STATS tail refuses its length
		 * (nothing else an agent sends has one it could refuse):
		 * the next connection sends one tail fewer */
		if (m->u.error.code == EBADMSG && a->tails_sent > TAILS_NONE) {
			a->tails_max = a->tails_sent - 1;
			mv__host_event(
				a->host, MV_LOG_INFO,
				"agent: VM %s: the daemon at %s takes a shorter STATS only: %s left out from now on",
				a->vm->name, a->path, left_out[a->tails_max]);
		}
		snprintf(why, sizeof(why), "it said: %s", m->u.error.msg);
		if (!a->welcomed)
			mv__host_event(
				a->host, MV_LOG_WARNING,
				"agent: VM %s refused by the daemon at %s: %s",
				a->vm->name, a->path, m->u.error.msg);
		drop(a, why);
		return;
	default:
		break;
	}
	e.u.error.code = EPROTO;
	snprintf(e.u.error.msg, sizeof(e.u.error.msg),
		 "%s is not expected by an agent now",
		 mv__proto_type_name(m->type));
	send_msg(a, &e);
	drop(a, e.u.error.msg);
}

static void on_readable(struct mv_agent *a)
{
	struct mv__proto_msg e = { .type = MV_PROTO_ERROR };
	struct mv__proto_msg m;
	size_t used;
	ssize_t n;
	int err;

	n = recv(a->fd, a->in + a->inlen, sizeof(a->in) - a->inlen,
		 MSG_DONTWAIT);
	if (n == 0) {
		drop(a, "it closed the connection");
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			drop(a, strerror(errno));
		return;
	}
	a->inlen += (size_t)n;
	while (a->fd >= 0 && a->inlen) {
		err = mv__proto_decode(a->in, a->inlen, &m, &used,
				       e.u.error.msg, sizeof(e.u.error.msg));
		if (err == -EAGAIN)
			return;
		if (err) {
			e.u.error.code = -err;
			send_msg(a, &e);
			drop(a, e.u.error.msg);
			return;
		}
		memmove(a->in, a->in + used, a->inlen - used);
		a->inlen -= used;
		on_msg(a, &m);
	}
}

static void try_connect(struct mv_agent *a)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	strcpy(sa.sun_path, a->path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		a->fd = fd;
		a->connect_ms = mv__now_ms();
		send_hello(a);
		return;
	}
	if (!a->said_unreachable) {
		a->said_unreachable = true;
		mv__host_event(
			a->host, MV_LOG_WARNING,
			"agent: VM %s cannot reach the daemon at %s (%s): it runs unmanaged within its host's budget of %llu MiB, and the agent retries",
			a->vm->name, a->path, strerror(errno),
			(unsigned long long)(atomic_load(
						     &a->host->memsize_pages) >>
					     (20 - MV_PAGE_SHIFT)));
	}
	if (fd >= 0)
		close(fd);
	pthread_mutex_lock(&a->lock);
	a->info.failures++;
	pthread_mutex_unlock(&a->lock);
	a->next_connect_ms = mv__now_ms() + a->backoff_ms;
	a->backoff_ms = a->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
							     a->backoff_ms * 2;
}

/*
 * The VM is near its grant (within a sixteenth) or a fault waits for a
 * frame, and its grant is below the target the daemon last sent: the
 * daemon should hear at once what it holds, to grow the grant before
 * reclaim has to make room.  A grant at its target the daemon grows in
 * no state (daemon.c, grant_want), and a target that rises later makes
 * the daemon grow the grant on its own tick, from the last report, and
 * send the new target: reports every PRESSED_MS would change nothing and
 * cost a wakeup of the agent and of the daemon each (on kvstore-2, 1,000
 * messages a second).
 */
static bool pressed(struct mv_agent *a)
{
	uint64_t size = atomic_load(&a->host->memsize_pages);
	unsigned waiters;

	if (a->target_pages <= size)
		return false;
	pthread_mutex_lock(&a->host->frames_lock);
	waiters = a->host->frame_waiters;
	pthread_mutex_unlock(&a->host->frames_lock);
	return waiters || host_consumed(a) + size / 16 >= size;
}

static void tick(struct mv_agent *a, uint64_t now)
{
	struct mv__proto_msg m = { .type = MV_PROTO_GRANT_ACK };
	uint64_t held;

	if (a->fd < 0) {
		if (a->path[0] && now >= a->next_connect_ms)
			try_connect(a);
		return;
	}
	if (!a->welcomed) {
		if (now - a->connect_ms >= WELCOME_MS)
			drop(a, "no WELCOME in time");
		return;
	}
	if (a->ack_seq) {
		held = host_consumed(a) << MV_PAGE_SHIFT;
		if (held <= a->ack_bytes) {
			m.u.ack = (struct mv__proto_ack){
				.seq = a->ack_seq,
				.grant_bytes = a->ack_bytes,
				.consumed_bytes = held,
			};
			a->ack_seq = 0;
			send_msg(a, &m);
			count(a, &a->info.acks);
		}
	}
	if (a->fd >= 0 &&
	    (now >= a->next_stats_ms ||
	     (now >= a->last_stats_ms + PRESSED_MS && pressed(a)))) {
		send_stats(a);
		a->last_stats_ms = now;
		a->next_stats_ms = now + a->period_ms;
	}
}

static void *agent_main(void *arg)
{
	struct mv_agent *a = arg;
	struct pollfd pfd[2];
	unsigned n;

	for (;;) {
		tick(a, mv__now_ms());
		pthread_mutex_lock(&a->lock);
		a->info.budget_bytes = atomic_load(&a->host->memsize_pages)
				       << MV_PAGE_SHIFT;
		pthread_mutex_unlock(&a->lock);
		pfd[0] = (struct pollfd){ .fd = a->stop_fd, .events = POLLIN };
		n = 1;
		if (a->fd >= 0)
			pfd[n++] = (struct pollfd){
				.fd = a->fd,
				.events = (short)(POLLIN |
						  (a->outlen ? POLLOUT : 0)),
			};
		/* pressed, it looks again soon: the guest waits meanwhile */
		if (poll(pfd, n,
			 a->welcomed && pressed(a) ? PRESSED_MS : TICK_MS) <
			    0 &&
		    errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		if (n > 1 && (pfd[1].revents & POLLOUT))
			flush(a);
		if (n > 1 && a->fd >= 0 &&
		    (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
			on_readable(a);
	}
	return NULL;
}

int mv_agent_create(mv_host *h, mv_vm *vm, const char *path, mv_agent **out)
{
	struct sockaddr_un sa;
	const char *qmp = getenv("MEMVISOR_QMP");
	struct mv_agent *a;
	int err;

	if (!h || !vm || vm->host != h || vm->remote || !out)
		return -EINVAL;
	if (path && strlen(path) >= sizeof(sa.sun_path)) {
		mv__host_api_msg(h, "agent: socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	if (qmp && strlen(qmp) >= MV_PROTO_PATH_MAX) {
		mv__host_api_msg(h, "agent: MEMVISOR_QMP %s is too long", qmp);
		return -ENAMETOOLONG;
	}
	a = mv__calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->host = h;
	a->vm = vm;
	a->fd = -1;
	a->tails_max = TAILS_OPEN;
	a->backoff_ms = BACKOFF_MIN_MS;
	a->period_ms = 100;
	if (path)
		strcpy(a->path, path);
	if (qmp)
		strcpy(a->qmp, qmp);
	for (char *p = a->qmp; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	pthread_mutex_init(&a->lock, NULL);
	a->info.budget_bytes = atomic_load(&h->memsize_pages) << MV_PAGE_SHIFT;
	if (!a->path[0])
		mv__host_event(
			h, MV_LOG_INFO,
			"agent: VM %s has no daemon socket: it runs unmanaged, on its host's own budget",
			vm->name);
	a->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->stop_fd < 0) {
		err = -errno;
		goto fail;
	}
	/* a VM with a daemon to follow has no target from it yet: the host's
	 * own would follow a grant the daemon may give speculatively
	 * (fault.c); one with none keeps its host's (set before the thread,
	 * whose first grant sets the daemon's) */
	if (a->path[0])
		mv__budget_set_grant_target(h, 0);
	err = -pthread_create(&a->thread, NULL, agent_main, a);
	if (err)
		goto fail_stop;
	a->thread_started = true;
	*out = a;
	return 0;

fail_stop:
	mv__budget_set_grant_target(h, UINT64_MAX);
	close(a->stop_fd);
fail:
	pthread_mutex_destroy(&a->lock);
	free(a);
	return err;
}

void mv_agent_destroy(mv_agent *a)
{
	struct mv__proto_msg m = { .type = MV_PROTO_BYE };
	uint64_t one = 1;

	if (!a)
		return;
	if (write(a->stop_fd, &one, sizeof(one)) < 0) {
		/* an eventfd write fails only at its maximum: it is set */
	}
	pthread_join(a->thread, NULL);
	if (a->fd >= 0 && a->welcomed)
		send_msg(a, &m);
	if (a->fd >= 0)
		close(a->fd);
	close(a->stop_fd);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

int mv_agent_info(mv_agent *a, struct mv_agent_info *info)
{
	if (!a || !info)
		return -EINVAL;
	pthread_mutex_lock(&a->lock);
	*info = a->info;
	pthread_mutex_unlock(&a->lock);
	return 0;
}

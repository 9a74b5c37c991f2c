// SPDX-License-Identifier: MIT
/*
 * daemon.c - the host daemon (mv_daemon_*, docs/PROTOCOL.md): a Unix
 * socket on which agents inside VMMs (agent.c) say HELLO and become remote
 * VMs of a host, scheduled with the host's own VMs, each holding in the
 * host's budget the frames of its grant.  API layer.
 *
 * Design: one thread polls the listening socket and every connection
 * (non-blocking: it never waits on anything but poll, at most
 * TICK_MS).  Each connection has a fixed input buffer of one largest
 * message (the decoder judges a header as soon as it is in, so no peer
 * can make it buffer more) and a bounded output buffer; a peer that does
 * not read its messages until the output is full is dropped.  A bad
 * message of any kind is answered with ERROR and the connection closed
 * (after the ERROR is flushed, or CLOSE_MS at most); nothing else changes:
 * a connection that had said HELLO loses its remote VM, and so its grant,
 * exactly as if its VMM had died.  Who may connect: the socket's peer
 * credentials (SO_PEERCRED, from the kernel, not forgeable) must show the
 * daemon's own uid or root, and a HELLO's pid must be the peer's.  A
 * connection that has not said HELLO after HELLO_MS is dropped; at most
 * MAX_CONNS are open.
 *
 * Grants.  A remote VM's grant is, in the high state, the scheduler's
 * target for it (SZTGT), as far as that leaves the host high, kept there
 * (speculative); otherwise what its agent last said it holds plus a
 * headroom (an eighth of its memsize; twice its grant while it holds
 * nearly all of that, so that a guest touching its memory is not held
 * back one headroom per report), never grown above its target, and in
 * the states where the host is short (soft, hard, low) cut down to that
 * target (grant_want); never above its limit nor below its reservation.
 * A larger grant is reserved from the budget at once (mv__frames_reserve,
 * never waiting), leaving minFree free unless the agent is already near
 * its grant, and sent; a smaller one (by a 64th of its memsize or more)
 * is sent and its frames kept until the agent acknowledges it
 * (GRANT_ACK: it holds no more), then released.  So the frames held for
 * every remote VM are always at least what its agent may use.  A VMM that
 * dies (EOF, ECONNRESET, or its pid gone) has its remote VM destroyed:
 * mv_vm_destroy gives the frames back at once.  The scheduler's balloon
 * target for a remote VM goes to its agent in GRANT and, for QEMU, to the
 * tool's balloon hook, called by a thread of its own with no lock held
 * (hook_main), the latest target per VM, so that a slow QMP peer holds
 * up nothing but other balloon calls.
 *
 * Invariants: a remote VM's consumed_pages equals the frames reserved for
 * its grant (conn.grant), changed only by this thread; every wait is
 * poll's, bounded by TICK_MS; a peer's bytes never change the host except
 * through a well-formed message on a connection that passed the checks.
 *
 * Locks: d->lock, taken before any engine lock and never under one,
 * guards the connection table against mv_daemon_vms/mv_daemon_stats;
 * d->hook_lock, a leaf, the hook's queue; the thread holds it while
 * it serves connections (non-blocking I/O only), never across poll or the
 * balloon hook.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "inject.h"
#include "internal.h"
#include "proto.h"

#define TICK_MS 20 /* the thread looks at grants and timers this often */
#define HELLO_MS 2000 /* a new connection must say HELLO within this */
#define CLOSE_MS 200 /* an ERROR is flushed within this, then closed */
#define PID_CHECK_MS 500 /* a VMM's pid is looked at this often */
#define MAX_CONNS 64
#define OUT_BYTES 4096 /* unread messages queued to a peer at most */
#define READS_PER_TICK 16 /* a flooding peer cannot starve the others */
#define STATS_PERIOD_MS 100 /* agents report this often */
#define MIN_GRANT 16 /* pages: a host's smallest budget */

struct conn {
	int fd;
	pid_t pid; /* the peer's, from SO_PEERCRED */
	bool hello; /* said HELLO: vm is its remote VM */
	bool closing; /* ERROR or BYE queued: closed once flushed */
	bool dead; /* to be closed and freed now */
	bool bye; /* the agent said BYE: not a lost VMM */
	uint64_t since_ms; /* accepted, or closing since */
	uint64_t pid_check_ms;
	uint8_t in[MV_PROTO_MAX];
	size_t inlen;
	uint8_t out[OUT_BYTES];
	size_t outlen;
	struct mv_vm *vm;
	char qmp[MV_PROTO_PATH_MAX];
	uint64_t grant; /* pages reserved for the grant */
	uint64_t seq; /* the last grant sent */
	uint64_t pending; /* a smaller grant sent, not yet acknowledged */
	uint64_t pending_seq; /* 0: none */
	uint64_t balloon; /* balloon target last sent (pages) */
	uint64_t hook_balloon; /* last given to the hook; UINT64_MAX none */
	uint64_t agent_consumed; /* pages, from HELLO then STATS */
	/* its balloon's size as the tool measured it (QMP query-balloon),
	 * pages; UINT64_MAX: none, the agent's count stands */
	uint64_t tool_balloon;
};

struct hook_call {
	char name[MV_NAME_MAX];
	char qmp[MV_PROTO_PATH_MAX];
	uint64_t memsize, balloon;
};

struct mv_daemon {
	mv_host *host;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int lfd;
	int stop_fd;
	pthread_t thread;
	pthread_mutex_t lock; /* conns, nconns, the counters */
	struct conn *conns[MAX_CONNS];
	unsigned nconns;
	/* the balloon hook's own thread (hook_main), so that a slow QMP peer
	 * holds up no agent: its queue holds the latest target per VM */
	pthread_t hook_thread;
	pthread_mutex_t hook_lock; /* a leaf: the fields below */
	pthread_cond_t hook_wake;
	bool hook_stop;
	mv_daemon_balloon_fn hook;
	void *hook_arg;
	struct hook_call calls[MAX_CONNS];
	unsigned ncalls;
	struct mv_daemon_stats st;
};

/* ---- output ---- */

static void flush(struct conn *c)
{
	ssize_t n;

	while (c->outlen) {
		n = send(c->fd, c->out, c->outlen, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				c->dead = true;
			return;
		}
		memmove(c->out, c->out + n, c->outlen - (size_t)n);
		c->outlen -= (size_t)n;
	}
	if (c->closing)
		c->dead = true;
}

/* Queues m; a peer whose queue is full does not read: it is dropped. */
static void send_msg(struct conn *c, const struct mv__proto_msg *m)
{
	int n;

	if (c->dead)
		return;
	n = mv__proto_encode(m, c->out + c->outlen, sizeof(c->out) - c->outlen);
	if (n < 0) {
		c->dead = true;
		return;
	}
	c->outlen += (size_t)n;
	flush(c);
}

/* Answers a bad message with ERROR and closes the connection. */
static void refuse(struct mv_daemon *d, struct conn *c, int code,
		   const char *why)
{
	struct mv__proto_msg m = { .type = MV_PROTO_ERROR };

	if (c->closing)
		return;
	m.u.error.code = code > 0 && code < 4096 ? code : EPROTO;
	snprintf(m.u.error.msg, sizeof(m.u.error.msg), "%s", why);
	for (char *p = m.u.error.msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	d->st.errors++;
	d->st.refused++;
	c->closing = true;
	c->since_ms = mv__now_ms();
	c->inlen = 0;
	send_msg(c, &m);
}

/* ---- grants ---- */

static uint64_t host_free(struct mv_host *h)
{
	uint64_t used = atomic_load(&h->consumed_pages),
		 size = atomic_load(&h->memsize_pages);

	return used < size ? size - used : 0;
}

static void send_grant(struct conn *c, unsigned type, uint64_t pages)
{
	struct mv__proto_msg m = { .type = (uint16_t)type };

	m.u.grant = (struct mv__proto_grant){
		.seq = ++c->seq,
		.grant_bytes = pages << MV_PAGE_SHIFT,
		.target_bytes = atomic_load(&c->vm->sched.sztgt_pages)
				<< MV_PAGE_SHIFT,
		.balloon_bytes = c->balloon << MV_PAGE_SHIFT,
		.period_ms = STATS_PERIOD_MS,
		.vm_id = c->vm->id,
	};
	send_msg(c, &m);
}

/* Reserves up to n frames from the budget, never waiting. */
static uint64_t reserve(struct mv_host *h, uint64_t n)
{
	uint64_t got = 0;
	unsigned step;

	while (got < n) {
		step = mv__frames_reserve(
			h, n - got > 65536 ? 65536u : (unsigned)(n - got));
		if (!step)
			break;
		got += step;
	}
	return got;
}

/* The grant the VM should have now (pages). */
/*
 * The grant the VM should have now (pages): what it holds plus headroom,
 * never above its limit nor grown above its target.  In the states where
 * the host is short (soft, hard, low) it is cut down to the target, which
 * makes its agent compress and swap what its balloon has not given back
 * by then.  A local VM is not swapped in soft, only ballooned; but the
 * scheduler cannot reclaim a remote VM itself (its victim choice passes it
 * over), so a remote VM above its target that kept its grant in soft would
 * leave the host short until the local VMs were swapped for it.  In high
 * and clear the grant only follows what the VM holds.
 */
static uint64_t grant_want(struct mv_daemon *d, struct conn *c)
{
	struct mv_vm *vm = c->vm;
	uint64_t head = vm->npages / 8 > 256 ? vm->npages / 8 : 256;
	uint64_t tgt = atomic_load(&vm->sched.sztgt_pages),
		 lim = atomic_load(&vm->sched.limit_pages),
		 min = atomic_load(&vm->sched.min_pages);
	uint64_t want = c->agent_consumed + head;
	unsigned mech = mv__sched_mechanisms(
		(enum mv_mem_state)atomic_load(&d->host->state));

	/* a VM that has used its headroom grows fast: a guest touching its
	 * memory outruns one headroom per report */
	if (c->grant && c->agent_consumed + head / 2 >= c->grant &&
	    want < 2 * c->grant)
		want = 2 * c->grant;
	if (mech & (MV__MECH_BALLOON | MV__MECH_SWAP)) {
		if (want > tgt)
			want = tgt;
	} else if (want > c->grant && want > tgt) {
		want = tgt > c->grant ? tgt : c->grant;
	}
	if (want > lim)
		want = lim;
	if (want < min)
		want = min;
	if (want < MIN_GRANT)
		want = MIN_GRANT;
	return want;
}

/*
 * Queues c's balloon target for the hook thread, replacing a call for the
 * same VM not yet made; false without a hook (or room: then the next tick
 * tries again).
 */
static bool hook_queue(struct mv_daemon *d, struct conn *c)
{
	struct hook_call *k = NULL;
	bool queued = false;

	pthread_mutex_lock(&d->hook_lock);
	if (!d->hook) {
		pthread_mutex_unlock(&d->hook_lock);
		return false;
	}
	for (unsigned i = 0; i < d->ncalls && !k; i++)
		if (!strcmp(d->calls[i].name, c->vm->name))
			k = &d->calls[i];
	if (!k && d->ncalls < MAX_CONNS)
		k = &d->calls[d->ncalls++];
	if (d->hook && k) {
		memcpy(k->name, c->vm->name, sizeof(k->name));
		memcpy(k->qmp, c->qmp, sizeof(k->qmp));
		k->memsize = c->vm->npages << MV_PAGE_SHIFT;
		k->balloon = c->balloon << MV_PAGE_SHIFT;
		pthread_cond_signal(&d->hook_wake);
		queued = true;
	}
	pthread_mutex_unlock(&d->hook_lock);
	return queued;
}

/* The hook thread: makes the queued calls, with no lock held. */
static void *hook_main(void *arg)
{
	struct mv_daemon *d = arg;
	struct hook_call calls[MAX_CONNS];
	mv_daemon_balloon_fn hook;
	struct timespec ts;
	unsigned n;
	void *hook_arg;

	pthread_mutex_lock(&d->hook_lock);
	while (!d->hook_stop) {
		if (!d->ncalls) {
			mv__deadline_ms(&ts, 1000);
			pthread_cond_timedwait(&d->hook_wake, &d->hook_lock,
					       &ts);
			continue;
		}
		n = d->ncalls;
		memcpy(calls, d->calls, n * sizeof(calls[0]));
		d->ncalls = 0;
		hook = d->hook;
		hook_arg = d->hook_arg;
		pthread_mutex_unlock(&d->hook_lock);
		for (unsigned k = 0; k < n && hook; k++)
			hook(hook_arg, calls[k].name, calls[k].qmp,
			     calls[k].memsize, calls[k].balloon);
		pthread_mutex_lock(&d->hook_lock);
	}
	pthread_mutex_unlock(&d->hook_lock);
	return NULL;
}

/*
 * The grant a VM may hold speculatively (pages): in the high state, where
 * the host has memory to spare, the scheduler's target (or limit), as the
 * team design has it; 0 in any other state, where grants follow what VMs
 * hold.
 */
static uint64_t speculative(struct mv_daemon *d, struct conn *c)
{
	uint64_t tgt = atomic_load(&c->vm->sched.sztgt_pages),
		 lim = atomic_load(&c->vm->sched.limit_pages);

	if (atomic_load(&d->host->state) != MV_STATE_HIGH)
		return 0;
	return tgt < lim ? tgt : lim;
}

/*
 * One look at a remote VM's grant and balloon target: a larger grant is
 * reserved and sent now; a smaller one is sent and released on its ack.
 * initial: the WELCOME (always sent, whatever could be reserved).
 */
static void grant_update(struct mv_daemon *d, struct conn *c, bool initial)
{
	struct mv_host *h = d->host;
	struct mv_vm *vm = c->vm;
	uint64_t step = vm->npages / 64 > MIN_GRANT ? vm->npages / 64 :
						      MIN_GRANT;
	uint64_t want = grant_want(d, c), keep = want, room, add, floor, free;
	uint64_t head = vm->npages / 8 > 256 ? vm->npages / 8 : 256;
	uint64_t spec = speculative(d, c);
	struct mv_vm_stats bs;
	bool changed = false, needy;

	memset(&bs, 0, sizeof(bs));
	mv__balloon_stats(vm, &bs);
	if (bs.mctltgt_pages != c->balloon) {
		c->balloon = bs.mctltgt_pages;
		changed = true;
	}
	if (want > c->grant && !c->pending_seq) {
		/* speculative headroom leaves minFree free; an agent near
		 * its grant may take the host into reclaim, as a fault would */
		needy = c->agent_consumed + head / 2 >= c->grant;
		free = host_free(h);
		floor = needy ? 0 : atomic_load(&h->minfree_pages);
		room = free > floor ? free - floor : 0;
		add = want - c->grant < room ? want - c->grant : room;
		if (initial || add >= step || (add && c->grant + add == want)) {
			add = reserve(h, add);
			if (add) {
				c->grant += add;
				atomic_store(&vm->consumed_pages, c->grant);
				changed = true;
			}
		}
	}
	/* in the high state a grant is what the scheduler targets, as far as
	 * that leaves the host high, and it is kept there */
	if (spec > c->grant && !c->pending_seq) {
		free = host_free(h);
		floor = atomic_load(&h->minfree_pages) *
			(400 + MV__SCHED_HYST_PCT) / 100;
		room = free > floor ? free - floor : 0;
		add = spec - c->grant < room ? spec - c->grant : room;
		if (initial || add >= step || (add && c->grant + add == spec)) {
			add = reserve(h, add);
			if (add) {
				c->grant += add;
				atomic_store(&vm->consumed_pages, c->grant);
				changed = true;
			}
		}
	}
	if (spec > keep)
		keep = spec < c->grant ? spec : c->grant;
	if (keep + step <= c->grant && !c->pending_seq) {
		c->pending = keep;
		send_grant(c, MV_PROTO_GRANT, keep);
		c->pending_seq = c->seq;
		d->st.grants++;
		return;
	}
	if (initial) {
		if (c->grant < MIN_GRANT) {
			refuse(d, c, ENOMEM,
			       "the host has no memory for another VM now");
			return;
		}
		send_grant(c, MV_PROTO_WELCOME, c->grant);
	} else if (changed) {
		/* while a smaller grant waits for its ack, the agent is told
		 * that one, so that it keeps shrinking */
		send_grant(c, MV_PROTO_GRANT,
			   c->pending_seq ? c->pending : c->grant);
		if (c->pending_seq)
			c->pending_seq = c->seq;
	}
	if (initial || changed)
		d->st.grants++;
	if (c->balloon != c->hook_balloon && hook_queue(d, c))
		c->hook_balloon = c->balloon;
}

/* ---- messages ---- */

static struct conn *by_name(struct mv_daemon *d, const char *name)
{
	for (unsigned i = 0; i < d->nconns; i++)
		if (d->conns[i]->hello && !d->conns[i]->dead &&
		    !strcmp(d->conns[i]->vm->name, name))
			return d->conns[i];
	return NULL;
}

static void on_hello(struct mv_daemon *d, struct conn *c,
		     const struct mv__proto_hello *hm)
{
	struct mv_vm_config cfg;
	char why[MV_PROTO_ERRMSG_MAX];
	int err;

	if ((pid_t)hm->pid != c->pid) {
		snprintf(why, sizeof(why),
			 "HELLO names pid %u, but the socket's peer is pid %d",
			 hm->pid, (int)c->pid);
		refuse(d, c, EPERM, why);
		return;
	}
	if (by_name(d, hm->name)) {
		snprintf(why, sizeof(why), "a VM named %s is connected already",
			 hm->name);
		refuse(d, c, EEXIST, why);
		return;
	}
	mv_vm_config_init(&cfg);
	memcpy(cfg.name, hm->name, sizeof(cfg.name));
	cfg.memsize_bytes = hm->memsize_bytes;
	cfg.shares = hm->shares;
	cfg.reservation_bytes = hm->reservation_bytes;
	cfg.limit_bytes = hm->limit_bytes;
	err = mv__vm_create_remote(d->host, &cfg, hm->pid, &c->vm);
	if (err) {
		snprintf(why, sizeof(why), "VM %s refused: %s", hm->name,
			 mv_host_errmsg(d->host));
		refuse(d, c, -err, why);
		return;
	}
	c->hello = true;
	d->st.agents++;
	memcpy(c->qmp, hm->qmp_path, sizeof(c->qmp));
	c->agent_consumed = hm->consumed_bytes >> MV_PAGE_SHIFT;
	pthread_mutex_lock(&c->vm->remote->lock);
	c->vm->remote->stats.consumed_pages = c->agent_consumed;
	pthread_mutex_unlock(&c->vm->remote->lock);
	grant_update(d, c, true);
	if (c->closing)
		return; /* refused: closed with its VM, as a VMM gone */
	mv__host_event(
		d->host, MV_LOG_INFO,
		"daemon: VM %s (pid %d, %llu MiB) connected, granted %llu MiB",
		c->vm->name, (int)c->pid,
		(unsigned long long)(hm->memsize_bytes >> 20),
		(unsigned long long)(c->grant >> (20 - MV_PAGE_SHIFT)));
}

/* The pages in a remote VM's balloon, as the scheduler and its statistics
 * see them. */
static void set_balloon_actual(struct mv_vm *vm, uint64_t pages)
{
	if (pages > vm->npages)
		pages = vm->npages;
	pthread_mutex_lock(&vm->balloon.lock);
	atomic_store(&vm->balloon.actual_pages, pages);
	pthread_mutex_unlock(&vm->balloon.lock);
	pthread_mutex_lock(&vm->remote->lock);
	vm->remote->stats.mctlsz_pages = pages;
	pthread_mutex_unlock(&vm->remote->lock);
}

/* The agent's report, checked against the VM's size. */
static void on_stats(struct mv_daemon *d, struct conn *c,
		     const struct mv__proto_stats *s)
{
	struct mv_vm *vm = c->vm;
	uint64_t max = 2 * vm->npages, bytes = max << MV_PAGE_SHIFT;
	const uint64_t now[] = { s->consumed_pages, s->touched_pages,
				 s->swcur_pages,    s->zip_cached_pages,
				 s->shrd_pages,	    s->zero_pages,
				 s->shrdsvd_pages,  s->mctlsz_pages,
				 s->lpage_pages,    s->unreadable_pages };
	struct mv_vm_stats *st = &vm->remote->stats;
	uint64_t active;

	for (size_t i = 0; i < sizeof(now) / sizeof(now[0]); i++)
		if (now[i] > max) {
			refuse(d, c, ERANGE,
			       "STATS: a page count above the VM's size");
			return;
		}
	if (s->zip_used_bytes > bytes || s->zip_saved_bytes > bytes) {
		refuse(d, c, ERANGE,
		       "STATS: compression cache figures above the VM's size");
		return;
	}
	pthread_mutex_lock(&vm->remote->lock);
	st->consumed_pages = s->consumed_pages;
	st->touched_pages = s->touched_pages;
	st->active_pages = s->active_pages;
	st->active_permille = s->active_permille;
	st->swcur_pages = s->swcur_pages;
	st->swapin_pages = s->swapin_pages;
	st->swapout_pages = s->swapout_pages;
	st->zip_cached_pages = s->zip_cached_pages;
	st->zip_used_bytes = s->zip_used_bytes;
	st->zip_saved_bytes = s->zip_saved_bytes;
	st->zip_pages = s->zip_pages;
	st->unzip_pages = s->unzip_pages;
	st->shrd_pages = s->shrd_pages;
	st->zero_pages = s->zero_pages;
	st->shrdsvd_pages = s->shrdsvd_pages;
	st->mctlsz_pages = c->tool_balloon != UINT64_MAX ? c->tool_balloon :
							   s->mctlsz_pages;
	st->faults = s->faults;
	st->fault_errors = s->fault_errors;
	st->swap_errors = s->swap_errors;
	st->unreadable_pages = s->unreadable_pages;
	st->cow_breaks = s->cow_breaks;
	st->lpage_pages = s->lpage_pages;
	for (unsigned i = 0; i < MV_PAGE_NSTATES; i++)
		st->state_pages[i] = s->state_pages[i];
	/* 0 from an agent that sends no STATS tail */
	st->service_cpus = (uint32_t)s->service_cpus;
	st->service_cpu_changes = s->service_cpu_changes;
	st->service_moves = s->service_moves;
	st->service_affinity_errors = s->service_affinity_errors;
	st->zip_evict_pages = s->zip_evict_pages;
	st->share_scanned_pages = s->share_scanned_pages;
	st->lpage_collapses = s->lpage_collapses;
	st->lpage_breaks = s->lpage_breaks;
	/* 0 from an agent that sends no waits */
	st->alloc_waits = s->alloc_waits;
	st->blocked_waits = s->blocked_waits;
	/* 0 from an agent that sends no compression figures */
	st->zip_incompressible = s->zip_incompressible;
	st->zip_fast_pages = s->zip_fast_pages;
	st->zip_accel = (uint32_t)s->zip_accel;
	/* 0 from an agent that sends no zero-page figures */
	st->zero_maps = s->zero_maps;
	st->zero_writes = s->zero_writes;
	st->zero_around_pages = s->zero_around_pages;
	st->zero_opens = s->zero_opens;
	st->zero_open_writes = s->zero_open_writes;
	st->zero_closes = s->zero_closes;
	st->zero_open_pages = s->zero_open_pages;
	st->zero_open_errors = s->zero_open_errors;
	pthread_mutex_unlock(&vm->remote->lock);
	c->agent_consumed = s->consumed_pages;
	atomic_store(&vm->swcur_pages, s->swcur_pages);
	/* its demand, for the scheduler's demand cap as for a local VM
	 * (mv__sample_demand_pages: the scheduler reads it under vms_lock;
	 * a remote VM fills no pages here, so the base is all of it) */
	pthread_mutex_lock(&d->host->vms_lock);
	vm->sample.measured = s->flags & MV_PROTO_STATS_DEMAND;
	atomic_store(&vm->sample.demand_known, vm->sample.measured);
	atomic_store(&vm->sample.active_base,
		     s->demand_pages < max ? s->demand_pages : max);
	atomic_store(&vm->sample.base_fills, 0);
	pthread_mutex_unlock(&d->host->vms_lock);
	/* the pages in its balloon, for the scheduler's balloon target: the
	 * agent's count (a driver of libmemvisor's channel), unless the tool
	 * measures a QEMU guest's (mv_daemon_set_balloon_size) */
	if (c->tool_balloon == UINT64_MAX)
		set_balloon_actual(vm, s->mctlsz_pages);
	/* the scheduler weighs what the VM holds here, its grant: the
	 * agent's active pages as a fraction of that */
	active = c->grant ? s->active_pages * 1000 / c->grant : 1000;
	atomic_store(&vm->sample.active_permille,
		     (uint32_t)(active > 1000 ? 1000 : active));
}

static void on_ack(struct mv_daemon *d, struct conn *c,
		   const struct mv__proto_ack *a)
{
	if (a->seq > c->seq) {
		refuse(d, c, EPROTO, "GRANT_ACK for a grant never sent");
		return;
	}
	if (!c->pending_seq || a->seq != c->pending_seq ||
	    a->grant_bytes != c->pending << MV_PAGE_SHIFT)
		return; /* an earlier grant's, or one that needed none */
	mv__frames_release(d->host, c->grant - c->pending);
	c->grant = c->pending;
	atomic_store(&c->vm->consumed_pages, c->grant);
	c->pending_seq = 0;
}

static void on_msg(struct mv_daemon *d, struct conn *c,
		   const struct mv__proto_msg *m)
{
	char why[MV_PROTO_ERRMSG_MAX];

	if (!c->hello && m->type != MV_PROTO_HELLO) {
		snprintf(why, sizeof(why), "%s before HELLO",
			 mv__proto_type_name(m->type));
		refuse(d, c, EPROTO, why);
		return;
	}
	d->st.msgs++;
	switch (m->type) {
	case MV_PROTO_HELLO:
		if (c->hello)
			refuse(d, c, EPROTO, "a second HELLO");
		else
			on_hello(d, c, &m->u.hello);
		return;
	case MV_PROTO_STATS:
		on_stats(d, c, &m->u.stats);
		if (!c->closing)
			grant_update(d, c, false);
		return;
	case MV_PROTO_GRANT_ACK:
		on_ack(d, c, &m->u.ack);
		return;
	case MV_PROTO_BYE:
		c->bye = true;
		c->dead = true;
		return;
	case MV_PROTO_ERROR:
		mv__host_event(d->host, MV_LOG_WARNING,
			       "daemon: VM %s says: %s (%s); closing",
			       c->vm->name, m->u.error.msg,
			       strerror(m->u.error.code));
		c->bye = true;
		c->dead = true;
		return;
	default:
		snprintf(why, sizeof(why), "%s is sent by the daemon only",
			 mv__proto_type_name(m->type));
		d->st.msgs--;
		refuse(d, c, EPROTO, why);
		return;
	}
}

static void on_readable(struct mv_daemon *d, struct conn *c)
{
	char why[MV_PROTO_ERRMSG_MAX];
	struct mv__proto_msg m;
	size_t used;
	ssize_t n;
	int err;

	for (unsigned r = 0; r < READS_PER_TICK && !c->dead && !c->closing;
	     r++) {
		n = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen,
			 MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN &&
			       errno != EWOULDBLOCK && errno != EINTR)) {
			c->dead = true; /* EOF, ECONNRESET: the VMM is gone */
			return;
		}
		if (n < 0)
			return;
		c->inlen += (size_t)n;
		while (c->inlen && !c->dead && !c->closing) {
			err = mv__proto_decode(c->in, c->inlen, &m, &used, why,
					       sizeof(why));
			if (err == -EAGAIN)
				break;
			if (err) {
				refuse(d, c, -err, why);
				return;
			}
			memmove(c->in, c->in + used, c->inlen - used);
			c->inlen -= used;
			on_msg(d, c, &m);
		}
	}
}

/* ---- connections ---- */

static void accept_one(struct mv_daemon *d)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct conn *c;
	int fd;

	fd = accept4(d->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	d->st.accepted++;
	c = mv__calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		d->st.refused++;
		return;
	}
	c->fd = fd;
	c->since_ms = c->pid_check_ms = mv__now_ms();
	c->hook_balloon = UINT64_MAX;
	c->tool_balloon = UINT64_MAX;
	if (d->nconns == MAX_CONNS) {
		refuse(d, c, EBUSY, "too many connections");
		flush(c);
		close(fd);
		free(c);
		return;
	}
	d->conns[d->nconns++] = c;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		refuse(d, c, EACCES, "the peer's credentials are unknown");
		return;
	}
	c->pid = cred.pid;
	if (cred.uid != geteuid() && cred.uid != 0)
		refuse(d, c, EACCES,
		       "only the daemon's own user or root may connect");
}

/* Closes c; its remote VM, if any, is destroyed: its grant returns. */
static void conn_close(struct mv_daemon *d, struct conn *c)
{
	if (c->hello) {
		if (!c->bye)
			d->st.lost++;
		d->st.agents--;
		mv__host_event(
			d->host, c->bye ? MV_LOG_INFO : MV_LOG_WARNING,
			"daemon: VM %s (pid %d) %s: its grant of %llu MiB returns to the host",
			c->vm->name, (int)c->pid,
			c->bye ? "said goodbye" : "is gone",
			(unsigned long long)(c->grant >> (20 - MV_PAGE_SHIFT)));
		mv_vm_destroy(c->vm);
	}
	close(c->fd);
	free(c);
}

static void timers(struct mv_daemon *d, struct conn *c, uint64_t now)
{
	if (c->dead)
		return;
	if (c->closing) {
		if (now - c->since_ms >= CLOSE_MS)
			c->dead = true;
		return;
	}
	if (!c->hello) {
		if (now - c->since_ms >= HELLO_MS)
			refuse(d, c, ETIMEDOUT, "no HELLO in time");
		return;
	}
	if (now - c->pid_check_ms >= PID_CHECK_MS) {
		c->pid_check_ms = now;
		if (kill(c->pid, 0) < 0 && errno == ESRCH) {
			c->dead = true;
			return;
		}
	}
	grant_update(d, c, false);
}

static void *daemon_main(void *arg)
{
	struct mv_daemon *d = arg;
	struct pollfd pfd[2 + MAX_CONNS];
	struct conn *polled[MAX_CONNS];
	unsigned n, k;
	uint64_t now;

	for (;;) {
		pthread_mutex_lock(&d->lock);
		pfd[0] = (struct pollfd){ .fd = d->stop_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = d->lfd, .events = POLLIN };
		n = d->nconns;
		for (k = 0; k < n; k++) {
			polled[k] = d->conns[k];
			/* a closing connection is read no more: polling
			 * it for input would spin until it is closed */
			pfd[2 + k] = (struct pollfd){
				.fd = polled[k]->fd,
				.events =
					(short)((polled[k]->closing ? 0 :
								      POLLIN) |
						(polled[k]->outlen ? POLLOUT :
								     0)),
			};
		}
		pthread_mutex_unlock(&d->lock);
		if (poll(pfd, 2 + n, TICK_MS) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		pthread_mutex_lock(&d->lock);
		for (k = 0; k < n; k++) {
			short ev = pfd[2 + k].revents;

			if (ev & POLLOUT)
				flush(polled[k]);
			if (polled[k]->closing) {
				if (ev & (POLLHUP | POLLERR))
					polled[k]->dead = true;
			} else if (ev & (POLLIN | POLLHUP | POLLERR)) {
				on_readable(d, polled[k]);
			}
		}
		for (k = 0; k < 8 && (pfd[1].revents & POLLIN); k++) {
			unsigned before = d->nconns;

			accept_one(d);
			if (d->nconns == before)
				break;
		}
		now = mv__now_ms();
		for (k = 0; k < d->nconns;) {
			struct conn *c = d->conns[k];

			timers(d, c, now);
			if (c->dead) {
				d->conns[k] = d->conns[--d->nconns];
				conn_close(d, c);
				continue;
			}
			k++;
		}
		pthread_mutex_unlock(&d->lock);
	}
	return NULL;
}

/* ---- the API ---- */

static void hook_stop(struct mv_daemon *d)
{
	pthread_mutex_lock(&d->hook_lock);
	d->hook_stop = true;
	pthread_cond_signal(&d->hook_wake);
	pthread_mutex_unlock(&d->hook_lock);
	pthread_join(d->hook_thread, NULL);
}

/* A socket file at path: in use by a live daemon (-EADDRINUSE), stale
 * (removed), or none. */
static int clear_path(struct mv_host *h, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, err = 0;

	if (lstat(sa->sun_path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		mv__host_api_msg(h, "daemon: %s exists and is not a socket",
				 sa->sun_path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ||
	    errno == EAGAIN) {
		mv__host_api_msg(h, "daemon: another daemon listens on %s",
				 sa->sun_path);
		err = -EADDRINUSE;
	} else if (unlink(sa->sun_path) < 0) {
		err = -errno;
	}
	close(fd);
	return err;
}

int mv_daemon_create(mv_host *h, const char *path, mv_daemon **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct mv_daemon *d;
	int err;

	if (!h || !path || !out || !path[0])
		return -EINVAL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		mv__host_api_msg(h, "daemon: socket path %s is too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	d = mv__calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->host = h;
	strcpy(d->path, path);
	pthread_mutex_init(&d->lock, NULL);
	d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->stop_fd < 0) {
		err = -errno;
		goto fail;
	}
	err = clear_path(h, &sa);
	if (err)
		goto fail_stop;
	d->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (d->lfd < 0) {
		err = -errno;
		goto fail_stop;
	}
	if (bind(d->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    chmod(path, 0600) < 0 || listen(d->lfd, 64) < 0) {
		err = -errno;
		mv__host_api_msg(h, "daemon: cannot listen on %s: %s", path,
				 strerror(errno));
		goto fail_sock;
	}
	pthread_mutex_init(&d->hook_lock, NULL);
	err = mv__cond_init_monotonic(&d->hook_wake);
	if (err)
		goto fail_hook_lock;
	err = -pthread_create(&d->hook_thread, NULL, hook_main, d);
	if (err)
		goto fail_hook_cond;
	err = -pthread_create(&d->thread, NULL, daemon_main, d);
	if (err)
		goto fail_hook_thread;
	*out = d;
	return 0;

fail_hook_thread:
	hook_stop(d);
fail_hook_cond:
	pthread_cond_destroy(&d->hook_wake);
fail_hook_lock:
	pthread_mutex_destroy(&d->hook_lock);
	unlink(path);
fail_sock:
	close(d->lfd);
fail_stop:
	close(d->stop_fd);
fail:
	pthread_mutex_destroy(&d->lock);
	free(d);
	return err;
}

void mv_daemon_destroy(mv_daemon *d)
{
	uint64_t one = 1;

	if (!d)
		return;
	if (write(d->stop_fd, &one, sizeof(one)) < 0) {
		/* an eventfd write fails only at its maximum: it is set */
	}
	pthread_join(d->thread, NULL);
	for (unsigned k = 0; k < d->nconns; k++) {
		struct conn *c = d->conns[k];

		if (c->hello) {
			struct mv__proto_msg m = { .type = MV_PROTO_BYE };

			send_msg(c, &m);
			c->bye = true;
		}
		conn_close(d, c);
	}
	hook_stop(d);
	pthread_cond_destroy(&d->hook_wake);
	pthread_mutex_destroy(&d->hook_lock);
	close(d->lfd);
	unlink(d->path);
	close(d->stop_fd);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

void mv_daemon_set_balloon_hook(mv_daemon *d, mv_daemon_balloon_fn fn,
				void *arg)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	pthread_mutex_lock(&d->hook_lock);
	d->hook = fn;
	d->hook_arg = arg;
	pthread_mutex_unlock(&d->hook_lock);
	/* every VM's target goes to the new hook */
	for (unsigned k = 0; k < d->nconns; k++)
		d->conns[k]->hook_balloon = UINT64_MAX;
	pthread_mutex_unlock(&d->lock);
}

int mv_daemon_stats(mv_daemon *d, struct mv_daemon_stats *st)
{
	if (!d || !st)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	*st = d->st;
	st->grant_pages = 0;
	for (unsigned k = 0; k < d->nconns; k++)
		if (d->conns[k]->hello)
			st->grant_pages += d->conns[k]->grant;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

int mv_daemon_vms(mv_daemon *d, struct mv_daemon_vm *vms, unsigned max,
		  unsigned *n)
{
	unsigned i = 0;

	if (!d || !n || (max && !vms))
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	for (unsigned k = 0; k < d->nconns; k++) {
		struct conn *c = d->conns[k];

		if (!c->hello || c->dead)
			continue;
		if (i < max) {
			memset(&vms[i], 0, sizeof(vms[i]));
			mv_vm_stats(c->vm, &vms[i].stats);
			vms[i].pid = (uint32_t)c->pid;
			vms[i].grant_pages = c->grant;
			memcpy(vms[i].qmp_path, c->qmp,
			       sizeof(vms[i].qmp_path));
		}
		i++;
	}
	pthread_mutex_unlock(&d->lock);
	*n = i;
	return 0;
}

int mv_daemon_vm_stats(mv_daemon *d, const char *name, struct mv_vm_stats *st)
{
	int err = -ENOENT;

	if (!d || !name || !st)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	for (unsigned k = 0; k < d->nconns && err; k++) {
		struct conn *c = d->conns[k];

		if (c->hello && !c->dead && !strcmp(c->vm->name, name))
			err = mv_vm_stats(c->vm, st);
	}
	pthread_mutex_unlock(&d->lock);
	return err;
}

int mv_daemon_set_balloon_size(mv_daemon *d, const char *name, uint64_t bytes)
{
	int err = -ENOENT;

	if (!d || !name)
		return -EINVAL;
	pthread_mutex_lock(&d->lock);
	for (unsigned k = 0; k < d->nconns && err; k++) {
		struct conn *c = d->conns[k];

		if (c->hello && !c->dead && !strcmp(c->vm->name, name)) {
			c->tool_balloon = bytes >> MV_PAGE_SHIFT;
			set_balloon_actual(c->vm, c->tool_balloon);
			err = 0;
		}
	}
	pthread_mutex_unlock(&d->lock);
	return err;
}

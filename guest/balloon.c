// SPDX-License-Identifier: MIT
/*
 * balloon.c - the guest's balloon driver: gives pages its guest OS is not
 * using back to the host, and takes them back when the host asks or the
 * guest runs short.
 *
 * Design: modelled on Linux's virtio_balloon.  A thread per guest looks at
 * the host's target (num_pages in the channel's config) every poll_ms and
 * moves towards it: to inflate it allocates pinned pages from the guest OS
 * (which then never hands them out) and reports their PFNs in messages of
 * up to 256; to deflate it tells the host first and only then puts the
 * pages back on the guest's free list (VIRTIO_BALLOON_F_MUST_TELL_HOST:
 * the host must not find a page in use that it still counts as given up).
 * Each round ends with a statistics message (VIRTIO_BALLOON_S_*) from the
 * guest OS's counters.  Deflate-on-OOM (VIRTIO_BALLOON_F_DEFLATE_ON_OOM):
 * the guest OS calls the driver when its free list runs dry, and the driver
 * deflates at least oom_pages (Linux's VIRTIO_BALLOON_OOM_NR_PAGES) at once
 * and then holds off inflating for oom_hold_ms, so that it does not take
 * back at the next poll what the guest has just shown it needs.
 *
 * A PFN the host refuses on inflate goes straight back to the guest's free
 * list: the host never took it.  One refused on deflate goes back as well:
 * the host does not count it as ballooned, so the guest may use it.
 *
 * Invariants: pages[0..npages) are exactly the guest OS's pinned pages of
 * this driver, each accepted by the host; inflate and deflate run under
 * b->lock, one at a time.
 *
 * Lock ordering: b->lock -> os->lock (inside mvg_os_*) and -> the host's
 * balloon lock (inside mv_balloon_send).  b->lock is taken by the driver
 * thread and by guest threads inside the OOM notifier, which the guest OS
 * calls with its own lock dropped; the driver's own allocations never call
 * the notifier (MVG_OS_BALLOON).  wake_lock is a leaf.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "os.h"

#define DEFAULT_POLL_MS 1000
#define DEFAULT_OOM_PAGES 256 /* VIRTIO_BALLOON_OOM_NR_PAGES */
#define DEFAULT_OOM_HOLD_MS (2 * DEFAULT_POLL_MS)

struct mvg_balloon {
	struct mvg_balloon_config cfg; /* immutable */
	struct mvg_os *os; /* immutable */
	mv_balloon_chan *ch; /* immutable; used under lock */
	uint64_t total_bytes; /* guest memory, for MEMTOT; immutable */

	pthread_mutex_t lock; /* protects the fields up to st */
	uint32_t *pages; /* PFNs in the balloon, most recent last */
	uint64_t npages;
	struct timespec hold_until; /* no inflating before this */
	struct mvg_balloon_stats st; /* counters; st.pages filled on read */

	/* set by an OOM notification: an inflate in progress stops early */
	atomic_bool oom_pending;

	pthread_t thread;
	bool started; /* thread is running */
	pthread_mutex_t wake_lock; /* protects stop */
	pthread_cond_t wake;
	bool stop;
};

void mvg_balloon_config_init(struct mvg_balloon_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->poll_ms = DEFAULT_POLL_MS;
	cfg->oom_pages = DEFAULT_OOM_PAGES;
	cfg->oom_hold_ms = DEFAULT_OOM_HOLD_MS;
}

static void after_ms(struct timespec *ts, uint32_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool passed(const struct timespec *ts)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > ts->tv_sec ||
	       (now.tv_sec == ts->tv_sec && now.tv_nsec >= ts->tv_nsec);
}

static bool refused(const struct mv_balloon_reply *rep, unsigned i)
{
	return rep->rejected_map[i / 64] >> (i % 64) & 1;
}

/* One batch of up to MV_BALLOON_PFNS_MAX pages.  Returns pages kept. */
static int inflate_batch(struct mvg_balloon *b, unsigned want)
{
	struct mv_balloon_msg m = { .type = MV_BALLOON_MSG_INFLATE };
	struct mv_balloon_reply rep;
	uint32_t back[MV_BALLOON_PFNS_MAX];
	unsigned nback = 0, kept = 0;
	int got, err;

	got = mvg_os_alloc(b->os, want, m.u.pfns, MVG_OS_BALLOON);
	if (got < 0) {
		b->st.short_rounds++;
		return got;
	}
	m.num = (uint32_t)got;
	err = mv_balloon_send(b->ch, &m, &rep);
	for (unsigned i = 0; i < m.num; i++) {
		if (err || refused(&rep, i))
			back[nback++] = m.u.pfns[i];
		else
			b->pages[b->npages + kept++] = m.u.pfns[i];
	}
	b->npages += kept;
	b->st.inflated += kept;
	b->st.refused += err ? 0 : rep.rejected;
	if (nback)
		mvg_os_free(b->os, back, nback, MVG_OS_BALLOON);
	return err ? err : (int)kept;
}

/* Tells the host, then frees the n most recent pages.  Under b->lock. */
static int deflate_batch(struct mvg_balloon *b, unsigned n)
{
	struct mv_balloon_msg m = { .type = MV_BALLOON_MSG_DEFLATE, .num = n };
	struct mv_balloon_reply rep;
	int err;

	memcpy(m.u.pfns, b->pages + b->npages - n, n * sizeof(m.u.pfns[0]));
	err = mv_balloon_send(b->ch, &m, &rep);
	/* refused whole: the host may still count them, so keep them */
	if (err)
		return err;
	b->st.refused += rep.rejected;
	b->npages -= n;
	b->st.deflated += n;
	return mvg_os_free(b->os, m.u.pfns, n, MVG_OS_BALLOON);
}

/* Deflates up to n pages; returns how many.  Under b->lock. */
static unsigned deflate(struct mvg_balloon *b, uint64_t n)
{
	unsigned done = 0, k;

	while (done < n && b->npages) {
		k = n - done < MV_BALLOON_PFNS_MAX ? (unsigned)(n - done) :
						     MV_BALLOON_PFNS_MAX;
		if (k > b->npages)
			k = (unsigned)b->npages;
		if (deflate_batch(b, k))
			break;
		done += k;
	}
	return done;
}

static uint64_t bytes(uint64_t pages)
{
	return pages << 12;
}

static void put(struct mv_balloon_msg *m, uint16_t tag, uint64_t val)
{
	m->u.stats[m->num].tag = tag;
	m->u.stats[m->num].val = val;
	m->num++;
}

static int report_stats(struct mvg_balloon *b)
{
	struct mv_balloon_msg m = { .type = MV_BALLOON_MSG_STATS };
	struct mvg_os_stats os;

	mvg_os_get_stats(b->os, &os);
	/* this guest has no swap and no page cache */
	put(&m, MV_BALLOON_S_SWAP_IN, 0);
	put(&m, MV_BALLOON_S_SWAP_OUT, 0);
	put(&m, MV_BALLOON_S_MAJFLT, 0);
	/* the first use of a freshly allocated page is a minor fault */
	put(&m, MV_BALLOON_S_MINFLT, os.alloc_pages);
	put(&m, MV_BALLOON_S_MEMFREE, bytes(os.free_pages));
	put(&m, MV_BALLOON_S_MEMTOT, b->total_bytes);
	put(&m, MV_BALLOON_S_AVAIL, bytes(os.free_pages));
	put(&m, MV_BALLOON_S_CACHES, 0);
	return mv_balloon_send(b->ch, &m, NULL);
}

int mvg_balloon_poll(struct mvg_balloon *b)
{
	struct mv_balloon_config cfg;
	uint64_t target;
	int err;

	if (!b)
		return -EINVAL;
	pthread_mutex_lock(&b->lock);
	b->st.polls++;
	err = mv_balloon_get_config(b->ch, &cfg);
	if (err)
		goto out;
	target = cfg.num_pages;
	if (!passed(&b->hold_until) && target > b->npages)
		target = b->npages;
	while (b->npages < target &&
	       !atomic_load_explicit(&b->oom_pending, memory_order_relaxed)) {
		uint64_t want = target - b->npages;

		err = inflate_batch(b, want < MV_BALLOON_PFNS_MAX ?
					       (unsigned)want :
					       MV_BALLOON_PFNS_MAX);
		if (err <= 0)
			break;
	}
	/* the guest OS having nothing to give is not the driver's error */
	if (err == -ENOMEM || err > 0)
		err = 0;
	if (b->npages > target)
		deflate(b, b->npages - target);
	if (!err)
		err = report_stats(b);
out:
	pthread_mutex_unlock(&b->lock);
	return err;
}

unsigned mvg_balloon_oom(struct mvg_balloon *b, unsigned want)
{
	unsigned done;

	atomic_store_explicit(&b->oom_pending, true, memory_order_relaxed);
	pthread_mutex_lock(&b->lock);
	done = deflate(b, want > b->cfg.oom_pages ? want : b->cfg.oom_pages);
	b->st.oom_deflated += done;
	after_ms(&b->hold_until, b->cfg.oom_hold_ms);
	atomic_store_explicit(&b->oom_pending, false, memory_order_relaxed);
	pthread_mutex_unlock(&b->lock);
	return done;
}

static unsigned oom_notify(void *arg, unsigned want)
{
	return mvg_balloon_oom(arg, want);
}

static void *driver_main(void *arg)
{
	struct mvg_balloon *b = arg;
	struct timespec ts;

	pthread_mutex_lock(&b->wake_lock);
	while (!b->stop) {
		pthread_mutex_unlock(&b->wake_lock);
		mvg_balloon_poll(b);
		after_ms(&ts, b->cfg.poll_ms);
		pthread_mutex_lock(&b->wake_lock);
		while (!b->stop &&
		       pthread_cond_timedwait(&b->wake, &b->wake_lock, &ts) !=
			       ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&b->wake_lock);
	return NULL;
}

static int cond_init_monotonic(pthread_cond_t *c)
{
	pthread_condattr_t a;
	int err;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	err = pthread_cond_init(c, &a);
	pthread_condattr_destroy(&a);
	return -err;
}

int mvg_balloon_start(mv_vm *vm, struct mvg_os *os,
		      const struct mvg_balloon_config *cfg,
		      struct mvg_balloon **out)
{
	struct mvg_balloon *b;
	int err;

	if (!vm || !os || !out || (cfg && !cfg->poll_ms))
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (cfg)
		b->cfg = *cfg;
	else
		mvg_balloon_config_init(&b->cfg);
	b->cfg.cpus = NULL; /* the caller's: used below, never kept */
	b->os = os;
	b->total_bytes = bytes(mvg_os_npages(os));
	b->pages = malloc(mvg_os_npages(os) * sizeof(*b->pages));
	if (!b->pages) {
		err = -ENOMEM;
		goto fail_b;
	}
	atomic_init(&b->oom_pending, false);
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->wake_lock, NULL);
	err = cond_init_monotonic(&b->wake);
	if (err)
		goto fail_locks;
	err = mv_balloon_open(vm, &b->ch);
	if (err)
		goto fail_cond;
	mvg_os_set_oom_notifier(os, oom_notify, b);
	if (!b->cfg.manual) {
		err = mvg_thread_create(&b->thread, cfg ? cfg->cpus : NULL,
					driver_main, b);
		if (err)
			goto fail_notifier;
		b->started = true;
	}
	*out = b;
	return 0;

fail_notifier:
	mvg_os_set_oom_notifier(os, NULL, NULL);
	mv_balloon_close(b->ch);
fail_cond:
	pthread_cond_destroy(&b->wake);
fail_locks:
	pthread_mutex_destroy(&b->wake_lock);
	pthread_mutex_destroy(&b->lock);
	free(b->pages);
fail_b:
	free(b);
	return err;
}

void mvg_balloon_get_stats(struct mvg_balloon *b, struct mvg_balloon_stats *st)
{
	pthread_mutex_lock(&b->lock);
	*st = b->st;
	st->pages = b->npages;
	pthread_mutex_unlock(&b->lock);
}

void mvg_balloon_stop(struct mvg_balloon *b)
{
	if (!b)
		return;
	if (b->started) {
		pthread_mutex_lock(&b->wake_lock);
		b->stop = true;
		pthread_cond_signal(&b->wake);
		pthread_mutex_unlock(&b->wake_lock);
		pthread_join(b->thread, NULL);
	}
	/* as virtio_balloon's remove: everything back to the guest first */
	mvg_os_set_oom_notifier(b->os, NULL, NULL);
	pthread_mutex_lock(&b->lock);
	deflate(b, b->npages);
	pthread_mutex_unlock(&b->lock);
	mv_balloon_close(b->ch);
	pthread_cond_destroy(&b->wake);
	pthread_mutex_destroy(&b->wake_lock);
	pthread_mutex_destroy(&b->lock);
	free(b->pages);
	free(b);
}

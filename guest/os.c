// SPDX-License-Identifier: MIT
/*
 * os.c - the guest OS's page allocator: guest physical memory handed to
 * applications page by page, and taken back onto a free list that only the
 * guest can see.
 *
 * Design: the free list is a stack of PFNs, so the page freed last is the
 * page handed out next: it is the one most likely still backed by a frame,
 * as a real kernel's per-CPU hot lists prefer.  It also means a balloon
 * inflating right after an application freed memory takes exactly the
 * pages whose frames the host can reclaim.  Every page has a state (free,
 * used, pinned); the balloon's pages are pinned, and a pinned page is never
 * on the free list, so it can never be handed out.  The bookkeeping lives
 * outside guest memory (like a kernel's struct page array, but here where
 * the host's page states cannot disturb it): freeing a page never touches
 * it, so the host's view of a freed page stays whatever it was.
 *
 * Deflate-on-OOM (virtio-balloon's VIRTIO_BALLOON_F_DEFLATE_ON_OOM): an
 * allocation that finds the free list empty calls the OOM notifier, which
 * the balloon driver registers, and tries again with what it freed.  The
 * balloon's own allocations (MVG_OS_BALLOON) never call it: the balloon
 * must not deflate to inflate.
 *
 * Invariants: a page is on the free list iff its state is FREE;
 * nfree + used + pinned == npages; frees are checked whole before any page
 * changes state, so a bad free changes nothing.
 *
 * Lock ordering: the balloon driver's lock -> os->lock.  The OOM notifier
 * is called with os->lock dropped, because it takes the driver's lock;
 * replacing the notifier waits for calls in progress, so the driver must
 * not hold its lock then.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"

#define GPAGE_SHIFT 12

enum page_state { PAGE_FREE = 0, PAGE_USED, PAGE_PINNED };

struct mvg_os {
	uint8_t *mem; /* guest physical memory; immutable */
	uint64_t npages; /* immutable */

	pthread_mutex_t lock; /* protects everything below */
	uint8_t *state; /* per page, enum page_state */
	uint32_t *stack; /* the free list; top at stack[nfree - 1] */
	uint64_t nfree;
	uint64_t used; /* pages in PAGE_USED */
	uint64_t pinned; /* pages in PAGE_PINNED */
	mvg_os_oom_fn oom_fn; /* deflate-on-OOM, NULL if none */
	void *oom_arg;
	unsigned oom_active; /* notifier calls in progress */
	pthread_cond_t oom_done; /* signalled when oom_active drops to 0 */
	struct mvg_os_stats c; /* counters; the page counts are filled on read */
};

int mvg_os_create(void *mem, uint64_t memsize, struct mvg_os **out)
{
	struct mvg_os *os;
	int err;

	if (!mem || !out || (uintptr_t)mem % (1u << GPAGE_SHIFT) || !memsize ||
	    memsize % (1u << GPAGE_SHIFT) ||
	    memsize >> GPAGE_SHIFT > UINT32_MAX)
		return -EINVAL;
	os = calloc(1, sizeof(*os));
	if (!os)
		return -ENOMEM;
	os->mem = mem;
	os->npages = memsize >> GPAGE_SHIFT;
	os->state = calloc(os->npages, sizeof(*os->state));
	os->stack = malloc(os->npages * sizeof(*os->stack));
	if (!os->state || !os->stack) {
		err = -ENOMEM;
		goto fail;
	}
	err = -pthread_mutex_init(&os->lock, NULL);
	if (err)
		goto fail;
	err = -pthread_cond_init(&os->oom_done, NULL);
	if (err) {
		pthread_mutex_destroy(&os->lock);
		goto fail;
	}
	/* the lowest pages on top: a fresh guest fills memory upwards */
	for (uint64_t i = 0; i < os->npages; i++)
		os->stack[i] = (uint32_t)(os->npages - 1 - i);
	os->nfree = os->npages;
	*out = os;
	return 0;

fail:
	free(os->stack);
	free(os->state);
	free(os);
	return err;
}

void mvg_os_destroy(struct mvg_os *os)
{
	if (!os)
		return;
	pthread_cond_destroy(&os->oom_done);
	pthread_mutex_destroy(&os->lock);
	free(os->stack);
	free(os->state);
	free(os);
}

uint64_t mvg_os_npages(const struct mvg_os *os)
{
	return os->npages;
}

void *mvg_os_page(const struct mvg_os *os, uint32_t pfn)
{
	return os->mem + ((uint64_t)pfn << GPAGE_SHIFT);
}

/* Pops up to n pages; returns how many.  Under os->lock. */
static unsigned pop(struct mvg_os *os, unsigned n, uint32_t *pfns,
		    enum page_state to)
{
	unsigned got = 0;

	while (got < n && os->nfree) {
		pfns[got] = os->stack[--os->nfree];
		os->state[pfns[got]] = (uint8_t)to;
		got++;
	}
	if (to == PAGE_PINNED)
		os->pinned += got;
	else
		os->used += got;
	os->c.alloc_pages += got;
	return got;
}

int mvg_os_alloc(struct mvg_os *os, unsigned n, uint32_t *pfns, unsigned flags)
{
	bool balloon = flags & MVG_OS_BALLOON;
	enum page_state to = balloon ? PAGE_PINNED : PAGE_USED;
	unsigned got, freed;
	mvg_os_oom_fn fn;
	void *arg;

	if (!os || !pfns || !n)
		return -EINVAL;
	pthread_mutex_lock(&os->lock);
	got = pop(os, n, pfns, to);
	while (got < n && !balloon && os->oom_fn) {
		fn = os->oom_fn;
		arg = os->oom_arg;
		os->c.oom_calls++;
		os->oom_active++;
		pthread_mutex_unlock(&os->lock);
		freed = fn(arg, n - got);
		pthread_mutex_lock(&os->lock);
		if (!--os->oom_active)
			pthread_cond_broadcast(&os->oom_done);
		os->c.oom_pages += freed;
		if (!freed)
			break;
		/* others may have taken what was freed: that is their luck */
		got += pop(os, n - got, pfns + got, to);
	}
	if (!got)
		os->c.alloc_failures++;
	pthread_mutex_unlock(&os->lock);
	return got ? (int)got : -ENOMEM;
}

int mvg_os_free(struct mvg_os *os, const uint32_t *pfns, unsigned n,
		unsigned flags)
{
	enum page_state from = flags & MVG_OS_BALLOON ? PAGE_PINNED : PAGE_USED;
	unsigned i;

	if (!os || (!pfns && n))
		return -EINVAL;
	pthread_mutex_lock(&os->lock);
	/*
	 * Checked whole first.  A page repeated in the list passes the state
	 * check twice, so freeing is done in a second pass that marks each
	 * page FREE and a repeat is caught there, undoing the pass.
	 */
	for (i = 0; i < n; i++)
		if (pfns[i] >= os->npages || os->state[pfns[i]] != from)
			goto bad;
	for (i = 0; i < n; i++) {
		if (os->state[pfns[i]] != from)
			break;
		os->state[pfns[i]] = PAGE_FREE;
	}
	if (i < n) {
		while (i--)
			os->state[pfns[i]] = (uint8_t)from;
		goto bad;
	}
	for (i = 0; i < n; i++)
		os->stack[os->nfree++] = pfns[i];
	if (from == PAGE_PINNED)
		os->pinned -= n;
	else
		os->used -= n;
	pthread_mutex_unlock(&os->lock);
	return 0;

bad:
	os->c.bad_frees++;
	pthread_mutex_unlock(&os->lock);
	return -EINVAL;
}

void mvg_os_set_oom_notifier(struct mvg_os *os, mvg_os_oom_fn fn, void *arg)
{
	pthread_mutex_lock(&os->lock);
	os->oom_fn = fn;
	os->oom_arg = arg;
	/* so the old notifier's owner may go away once this returns */
	while (os->oom_active)
		pthread_cond_wait(&os->oom_done, &os->lock);
	pthread_mutex_unlock(&os->lock);
}

void mvg_os_get_stats(struct mvg_os *os, struct mvg_os_stats *st)
{
	pthread_mutex_lock(&os->lock);
	*st = os->c;
	st->total_pages = os->npages;
	st->free_pages = os->nfree;
	st->used_pages = os->used;
	st->pinned_pages = os->pinned;
	pthread_mutex_unlock(&os->lock);
}

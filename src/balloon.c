// SPDX-License-Identifier: MIT
/*
 * balloon.c - the host side of ballooning: a target per VM under
 * Mem.CtlMaxPercent, and the private channel through which the guest's
 * balloon driver gives pages up and takes them back.
 *
 * Design: the channel has virtio-balloon's semantics, so that a virtio
 * transport can be put under it unchanged.  The host publishes a config of
 * two numbers, num_pages (the target) and actual (the pages it holds in the
 * balloon); the driver sends messages: INFLATE and DEFLATE carry up to 256
 * 4 KiB PFNs (virtio's VIRTIO_BALLOON_ARRAY_PFNS_MAX), STATS carries
 * VIRTIO_BALLOON_S_* tagged values.  The reply is what a virtio device
 * would write into a device-writable descriptor: which PFNs it refused.
 * Unlike virtio, actual is counted by the host from what it accepted, not
 * written by the driver: a guest cannot claim a balloon it did not give.
 *
 * A guest is not trusted.  Every message is checked; a malformed message
 * (unknown type, more entries than the payload holds) is refused whole,
 * and a PFN out of range, repeated in its message, already in the balloon
 * (inflate), not in it (deflate), in a state the balloon cannot take yet,
 * or past the cap is refused alone.  Each refusal is counted in the VM's
 * balloon errors and changes nothing: the page keeps its state, its frame
 * and its content.
 *
 * Inflate sorts the message's PFNs and locks their pmap entries in
 * ascending order, the pmap's rule for holding several.  By state:
 *   PRIVATE     the frame is dropped at once (MADV_DONTNEED of every run
 *               of neighbours, in one process_madvise when the kernel
 *               can) and released to the host;
 *   SWAPPED     its swap slot is freed: nothing will read it again (and
 *               in a VM with unreadable pages, its page is emptied too,
 *               clearing the poison one of them may carry: present());
 *   COMPRESSED  its object leaves the compression cache, which gives
 *               back the frames its pool shrinks by;
 *   SHARED      share_cow.c unmaps it and drops its reference (the shared
 *               frame goes back to the host with its last sharer);
 *   UNTOUCHED, ZERO  there is no frame to free;
 *   A SAMPLED page is put back first and taken as PRIVATE (sample.c);
 *   one the kernel will not let back is refused, its content kept.
 * A page whose frame cannot be dropped (process_madvise, then madvise,
 * refused) is refused too, and keeps its content.
 * All become BALLOONED, with the inflate's number (b->inflates) as
 * payload.  Deflate turns BALLOONED
 * into ZERO: the guest gave the content up, so the next touch must read
 * zeros through the fault path, never the old bytes and never the RAM
 * image's.  A guest that touches a page still in its balloon gets zeros
 * too; fault.c reports it here as a violation and the page leaves the
 * balloon.  A fault that userfaultfd queued before the inflate (its thread
 * was woken by a neighbour's fill and went on to free the page) is not a
 * touch of the balloon; the inflate's number lets fault.c tell it apart.
 *
 * Invariants: actual_pages equals the number of BALLOONED pages whenever
 * no message or fault is between its pmap update and its count update;
 * actual_pages <= max_pages; a page is never BALLOONED and present in the
 * guest mapping at once.
 *
 * Locks (order: internal.h): vm->balloon.lock, then pmap entry locks in
 *   ascending ppn, then under them vm->zc.lock, vm->swap.lock,
 *   host->share.lock, host->frames_lock, host->msg_lock.  Never held with
 *   vm->reclaim_lock; fault threads reach this file holding a pmap entry
 *   lock and take no lock here.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "inject.h"
#include "internal.h"

/* the message layouts are virtio-balloon's */
_Static_assert(sizeof(struct mv_balloon_stat) == 10 + 6 &&
		       offsetof(struct mv_balloon_stat, val) == 8,
	       "struct mv_balloon_stat is virtio_balloon_stat, padded");
_Static_assert(sizeof(((struct mv_balloon_reply *)0)->rejected_map) * 8 >=
		       MV_BALLOON_PFNS_MAX,
	       "one reply bit per message entry");
_Static_assert(MV_BALLOON_S_NR * sizeof(struct mv_balloon_stat) <=
		       sizeof(((struct mv_balloon_msg *)0)->u),
	       "every statistic fits one message");

struct item {
	uint32_t pfn;
	uint32_t idx; /* position in the message, for the reply */
};

/* A PFN that passed the checks, locked, with its entry as it was. */
struct taken {
	uint32_t idx;
	uint64_t ppn;
	uint64_t old;
};

/* One message in flight. */
struct job {
	struct mv_vm *vm;
	struct mv_balloon_reply *rep;
	const char *what; /* "inflate", "deflate", "stats" */
	bool said; /* the host message names this job's first refusal */
	uint64_t inflate; /* inflate: its number, the BALLOONED payload */
};

static void refuse(struct job *j, uint32_t idx, uint64_t val, const char *why)
{
	struct mv_vm *vm = j->vm;

	j->rep->rejected++;
	j->rep->rejected_map[idx / 64] |= 1ull << (idx % 64);
	atomic_fetch_add_explicit(&vm->balloon.errors, 1, memory_order_relaxed);
	if (j->said)
		return;
	j->said = true;
	mv__host_set_msg(vm->host,
			 "VM %s: balloon %s refused entry %u (%llu): %s",
			 vm->name, j->what, idx, (unsigned long long)val, why);
}

static int cmp_item(const void *a, const void *b)
{
	const struct item *x = a, *y = b;

	if (x->pfn != y->pfn)
		return x->pfn < y->pfn ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Why an inflate cannot take a page in state s, or NULL if it can. */
static const char *inflate_refusal(enum mv_page_state s)
{
	switch (s) {
	case MV_PAGE_PRIVATE:
	case MV_PAGE_SWAPPED:
	case MV_PAGE_UNTOUCHED:
	case MV_PAGE_ZERO:
	case MV_PAGE_COMPRESSED:
	case MV_PAGE_SHARED:
		return NULL;
	case MV_PAGE_BALLOONED:
		return "already in the balloon";
	default:
		return "page is in a state the balloon does not know";
	}
}

/*
 * A page the balloon must empty: one with a frame, a ZERO page mapping the
 * kernel's zero page (fault.c), which must fault again once ballooned, or,
 * in a VM with unreadable pages, a page whose content the host holds
 * elsewhere (SWAPPED, or an image VM's UNTOUCHED): it may carry the poison
 * marker fault.c's give_up_unreadable put there, which MADV_DONTNEED
 * clears.  The guest gave that content up with the page; without this,
 * its next touch after the deflate would raise SIGBUS instead of reading
 * zeros.  Elsewhere the entry has nothing mapped, and the call is spared.
 */
static bool present(const struct mv_vm *vm, uint64_t v)
{
	enum mv_page_state s = pmap_state(v);

	if (s == MV_PAGE_PRIVATE || pmap_zero_present(v))
		return true;
	return (s == MV_PAGE_SWAPPED || s == MV_PAGE_UNTOUCHED) &&
	       atomic_load_explicit(&vm->c.unreadable_pages,
				    memory_order_acquire) != 0;
}

/*
 * Empties the pages among t[0..n) (sorted by ppn) that present() names, a
 * range per run of neighbours, and counts the frames of the PRIVATE and
 * open ZERO ones.
 * A page that could not be emptied is refused and unlocked as it was; its
 * t[].old becomes ~0 so the caller skips it.  Returns frames dropped.
 */
static uint64_t drop_frames(struct job *j, struct taken *t, unsigned n)
{
	struct mv_vm *vm = j->vm;
	struct iovec iov[MV_BALLOON_PFNS_MAX];
	unsigned first[MV_BALLOON_PFNS_MAX], nruns = 0, done, k;
	uint64_t freed = 0;

	for (unsigned i = 0; i < n; i = k) {
		k = i + 1;
		if (!present(vm, t[i].old))
			continue;
		while (k < n && t[k].ppn == t[k - 1].ppn + 1 &&
		       present(vm, t[k].old))
			k++;
		first[nruns] = i;
		iov[nruns++] = (struct iovec){
			.iov_base = vm->mem + (t[i].ppn << MV_PAGE_SHIFT),
			.iov_len = (size_t)(k - i) << MV_PAGE_SHIFT,
		};
	}
	done = mv__dontneed_batch(iov, nruns);
	for (unsigned r = 0; r < nruns; r++) {
		unsigned pages = (unsigned)(iov[r].iov_len >> MV_PAGE_SHIFT);

		if (r < done || !mv__madvise(iov[r].iov_base, iov[r].iov_len,
					     MADV_DONTNEED)) {
			for (unsigned i = first[r]; i < first[r] + pages; i++)
				freed += mv__frame_dropped(vm, t[i].old);
			continue;
		}
		for (unsigned i = first[r]; i < first[r] + pages; i++) {
			pmap_unlock(vm, t[i].ppn, t[i].old);
			refuse(j, t[i].idx, t[i].ppn,
			       "the frame could not be dropped (madvise failed)");
			t[i].old = ~0ull;
		}
	}
	return freed;
}

static void inflate_locked(struct job *j, struct taken *t, unsigned n)
{
	struct mv_vm *vm = j->vm;
	uint64_t freed, swapped = 0, done = 0;

	for (unsigned i = 0; i < n; i++)
		pmap_assert_locked(&vm->pmap[t[i].ppn]);
	freed = drop_frames(j, t, n);
	for (unsigned i = 0; i < n; i++) {
		if (t[i].old == ~0ull)
			continue;
		if (pmap_state(t[i].old) == MV_PAGE_SWAPPED) {
			mv__swap_free(&vm->swap, pmap_payload(t[i].old), 1);
			swapped++;
		}
		if (pmap_state(t[i].old) == MV_PAGE_COMPRESSED)
			mv__zcache_drop(vm, t[i].ppn, t[i].old);
		pmap_unlock(vm, t[i].ppn,
			    pmap_make(MV_PAGE_BALLOONED, t[i].old, j->inflate));
		j->rep->accepted++;
		done++;
	}
	atomic_fetch_add_explicit(&vm->balloon.actual_pages, done,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->balloon.inflated_pages, done,
				  memory_order_relaxed);
	if (swapped)
		atomic_fetch_sub_explicit(&vm->swcur_pages, swapped,
					  memory_order_relaxed);
	if (freed) {
		atomic_fetch_sub_explicit(&vm->consumed_pages, freed,
					  memory_order_relaxed);
		atomic_fetch_add_explicit(&vm->balloon.frames_freed, freed,
					  memory_order_relaxed);
		mv__frames_release(vm->host, freed);
	}
}

static void deflate_locked(struct job *j, struct taken *t, unsigned n)
{
	struct mv_vm *vm = j->vm;

	for (unsigned i = 0; i < n; i++)
		pmap_unlock(vm, t[i].ppn, /* checks the lock */
			    pmap_make(MV_PAGE_ZERO, t[i].old, 0));
	j->rep->accepted += n;
	atomic_fetch_sub_explicit(&vm->balloon.actual_pages, n,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->balloon.deflated_pages, n,
				  memory_order_relaxed);
}

/* Inflate or deflate: checks each PFN, then acts on those that passed. */
static void pfns(struct job *j, const struct mv_balloon_msg *m, bool inflate)
{
	struct mv_vm *vm = j->vm;
	struct mv__balloon *b = &vm->balloon;
	struct item items[MV_BALLOON_PFNS_MAX];
	struct taken t[MV_BALLOON_PFNS_MAX];
	const char *why;
	uint64_t room = 0, v;
	unsigned n = 0;

	for (uint32_t i = 0; i < m->num; i++)
		items[i] = (struct item){ .pfn = m->u.pfns[i], .idx = i };
	qsort(items, m->num, sizeof(items[0]), cmp_item);

	pthread_mutex_lock(&b->lock);
	if (inflate) {
		room = b->max_pages - atomic_load(&b->actual_pages);
		/* before any page is locked: see fault.c, stale_balloon_fault */
		j->inflate = atomic_fetch_add(&b->inflates, 1) + 1;
	}
	for (uint32_t k = 0; k < m->num; k++) {
		struct item *it = &items[k];

		if (it->pfn >= vm->npages) {
			refuse(j, it->idx, it->pfn,
			       "beyond the VM's guest physical memory");
			continue;
		}
		if (k && items[k - 1].pfn == it->pfn) {
			refuse(j, it->idx, it->pfn,
			       "repeated within one message");
			continue;
		}
		v = pmap_lock(&vm->pmap[it->pfn]);
		/* sampling must not cost the guest its inflate */
		why = NULL;
		if (inflate && pmap_state(v) == MV_PAGE_SAMPLED &&
		    mv__sample_unsample_locked(vm, it->pfn, &v))
			why = "the page could not be put back from sampling";
		else if (inflate)
			why = inflate_refusal(pmap_state(v));
		else
			why = pmap_state(v) == MV_PAGE_BALLOONED ?
				      NULL :
				      "not in the balloon";
		if (!why && inflate && n >= room)
			why = "the balloon is at Mem.CtlMaxPercent of the VM";
		if (!why && inflate && pmap_pinned(v))
			why = "the page is pinned: a copy made inside a shared mapping (vm.max_map_count was reached), which cannot be dropped";
		/* a page of a large region: the region is broken first, so
		 * that dropping this page frees its frame (lpage.c) */
		if (!why && inflate && pmap_state(v) == MV_PAGE_PRIVATE)
			mv__lpage_break_locked(vm, it->pfn);
		if (!why && inflate && pmap_state(v) == MV_PAGE_SHARED &&
		    mv__share_give_up(vm, it->pfn, v))
			why = "the shared page could not be unmapped";
		if (why) {
			pmap_unlock(vm, it->pfn, v);
			refuse(j, it->idx, it->pfn, why);
			continue;
		}
		t[n++] = (struct taken){ .idx = it->idx,
					 .ppn = it->pfn,
					 .old = v };
	}
	if (inflate)
		inflate_locked(j, t, n);
	else
		deflate_locked(j, t, n);
	pthread_mutex_unlock(&b->lock);
}

static void stats(struct job *j, const struct mv_balloon_msg *m)
{
	struct mv__balloon *b = &j->vm->balloon;
	const struct mv_balloon_stat *s;

	pthread_mutex_lock(&b->lock);
	for (uint32_t i = 0; i < m->num; i++) {
		s = &m->u.stats[i];
		if (s->tag >= MV_BALLOON_S_NR) {
			refuse(j, i, s->tag, "unknown statistics tag");
			continue;
		}
		b->stats[s->tag] = s->val;
		b->stats_valid |= 1u << s->tag;
		j->rep->accepted++;
	}
	clock_gettime(CLOCK_MONOTONIC, &b->stats_time);
	pthread_mutex_unlock(&b->lock);
}

int mv_balloon_send(mv_balloon_chan *ch, const struct mv_balloon_msg *m,
		    struct mv_balloon_reply *rep)
{
	struct mv_balloon_reply dummy;
	struct job j = { .rep = rep ? rep : &dummy };
	uint32_t max;

	if (!ch || !m)
		return -EINVAL;
	j.vm = ch->vm;
	memset(j.rep, 0, sizeof(*j.rep));
	atomic_fetch_add_explicit(&j.vm->balloon.msgs, 1, memory_order_relaxed);
	switch (m->type) {
	case MV_BALLOON_MSG_INFLATE:
		j.what = "inflate";
		max = MV_BALLOON_PFNS_MAX;
		break;
	case MV_BALLOON_MSG_DEFLATE:
		j.what = "deflate";
		max = MV_BALLOON_PFNS_MAX;
		break;
	case MV_BALLOON_MSG_STATS:
		j.what = "stats";
		max = MV_BALLOON_S_NR;
		break;
	default:
		atomic_fetch_add_explicit(&j.vm->balloon.errors, 1,
					  memory_order_relaxed);
		mv__host_set_msg(
			j.vm->host,
			"VM %s: balloon message of unknown type %u refused",
			j.vm->name, m->type);
		return -EINVAL;
	}
	if (m->num > max) {
		atomic_fetch_add_explicit(&j.vm->balloon.errors, 1,
					  memory_order_relaxed);
		mv__host_set_msg(
			j.vm->host,
			"VM %s: balloon %s message with %u entries refused (at most %u)",
			j.vm->name, j.what, m->num, max);
		return -E2BIG;
	}
	if (m->type == MV_BALLOON_MSG_STATS)
		stats(&j, m);
	else
		pfns(&j, m, m->type == MV_BALLOON_MSG_INFLATE);
	return 0;
}

int mv_balloon_open(mv_vm *vm, mv_balloon_chan **out)
{
	struct mv_balloon_chan *ch;
	int err = 0;

	if (!vm || !out)
		return -EINVAL;
	ch = mv__calloc(1, sizeof(*ch));
	if (!ch)
		return -ENOMEM;
	ch->vm = vm;
	pthread_mutex_lock(&vm->balloon.lock);
	if (vm->balloon.has_driver)
		err = -EBUSY;
	vm->balloon.has_driver = true;
	pthread_mutex_unlock(&vm->balloon.lock);
	if (err) {
		free(ch);
		return err;
	}
	*out = ch;
	return 0;
}

void mv_balloon_close(mv_balloon_chan *ch)
{
	if (!ch)
		return;
	pthread_mutex_lock(&ch->vm->balloon.lock);
	ch->vm->balloon.has_driver = false;
	pthread_mutex_unlock(&ch->vm->balloon.lock);
	free(ch);
}

int mv_balloon_get_config(mv_balloon_chan *ch, struct mv_balloon_config *cfg)
{
	struct mv__balloon *b;

	if (!ch || !cfg)
		return -EINVAL;
	b = &ch->vm->balloon;
	pthread_mutex_lock(&b->lock);
	cfg->num_pages = (uint32_t)b->target_pages;
	cfg->actual = (uint32_t)atomic_load(&b->actual_pages);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

static void set_target_locked(struct mv__balloon *b)
{
	uint64_t want = b->requested_pages > b->sched_pages ?
				b->requested_pages :
				b->sched_pages;

	b->target_pages = want < b->max_pages ? want : b->max_pages;
}

int mv_vm_balloon_set_target(mv_vm *vm, uint64_t bytes)
{
	struct mv__balloon *b;

	if (!vm)
		return -EINVAL;
	b = &vm->balloon;
	pthread_mutex_lock(&b->lock);
	b->requested_pages = bytes >> MV_PAGE_SHIFT;
	set_target_locked(b);
	pthread_mutex_unlock(&b->lock);
	return 0;
}

void mv__balloon_set_sched_target(struct mv_vm *vm, uint64_t pages)
{
	struct mv__balloon *b = &vm->balloon;

	pthread_mutex_lock(&b->lock);
	b->sched_pages = pages;
	set_target_locked(b);
	pthread_mutex_unlock(&b->lock);
}

void mv__balloon_sched_view(struct mv_vm *vm, uint64_t *sched_pages,
			    uint64_t *actual_pages)
{
	struct mv__balloon *b = &vm->balloon;

	pthread_mutex_lock(&b->lock);
	*sched_pages = b->sched_pages;
	*actual_pages = atomic_load(&b->actual_pages);
	pthread_mutex_unlock(&b->lock);
}

static uint64_t age_ms(const struct timespec *then)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - then->tv_sec) * 1000 +
	       (uint64_t)((now.tv_nsec - then->tv_nsec) / 1000000L);
}

int mv_vm_balloon_info(mv_vm *vm, struct mv_balloon_info *bi)
{
	struct mv__balloon *b;

	if (!vm || !bi)
		return -EINVAL;
	b = &vm->balloon;
	memset(bi, 0, sizeof(*bi));
	pthread_mutex_lock(&b->lock);
	bi->requested_pages = b->requested_pages;
	bi->target_pages = b->target_pages;
	bi->has_driver = b->has_driver;
	memcpy(bi->stats, b->stats, sizeof(bi->stats));
	bi->stats_valid = b->stats_valid;
	bi->stats_age_ms = b->stats_valid ? age_ms(&b->stats_time) : UINT64_MAX;
	pthread_mutex_unlock(&b->lock);
	bi->max_pages = b->max_pages;
	bi->actual_pages = atomic_load(&b->actual_pages);
	bi->inflated_pages = atomic_load(&b->inflated_pages);
	bi->deflated_pages = atomic_load(&b->deflated_pages);
	bi->frames_freed = atomic_load(&b->frames_freed);
	bi->msgs = atomic_load(&b->msgs);
	bi->errors = atomic_load(&b->errors);
	bi->violations = atomic_load(&b->violations);
	return 0;
}

void mv__balloon_stats(struct mv_vm *vm, struct mv_vm_stats *st)
{
	struct mv__balloon *b = &vm->balloon;

	pthread_mutex_lock(&b->lock);
	st->mctltgt_pages = b->target_pages;
	st->balloon_driver = b->has_driver;
	pthread_mutex_unlock(&b->lock);
	st->mctlsz_pages = atomic_load(&b->actual_pages);
	st->mctlmax_pages = b->max_pages;
	st->balloon_errors = atomic_load(&b->errors);
	st->balloon_violations = atomic_load(&b->violations);
}

void mv__balloon_touched(struct mv_vm *vm, uint64_t npages)
{
	atomic_fetch_sub_explicit(&vm->balloon.actual_pages, npages,
				  memory_order_relaxed);
	atomic_fetch_add_explicit(&vm->balloon.violations, npages,
				  memory_order_relaxed);
}

void mv__balloon_init(struct mv_vm *vm)
{
	struct mv__balloon *b = &vm->balloon;

	pthread_mutex_init(&b->lock, NULL);
	b->max_pages = vm->npages * vm->host->settings.ctl_max_pct / 100;
}

void mv__balloon_fini(struct mv_vm *vm)
{
	pthread_mutex_destroy(&vm->balloon.lock);
}

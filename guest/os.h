/* SPDX-License-Identifier: MIT */
/*
 * os.h - the guest OS that runs inside a VM: a page allocator over the
 * VM's guest physical memory with its own free list, the balloon driver
 * that gives free pages back to the host, and the burst workload that
 * allocates from it.
 *
 * The hypervisor cannot see the free list: a page an application freed is
 * still a used frame to the host until the balloon driver hands it over.
 * This is the situation ballooning exists for (docs/DESIGN.md, Mechanisms).
 */
#ifndef MV_GUEST_OS_H
#define MV_GUEST_OS_H

#include <stdbool.h>
#include <stdint.h>

#include "guest.h"
#include "memvisor.h"

struct mvg_os;

/* Allocation flags. */
#define MVG_OS_BALLOON 1u /* pages for the balloon: pinned, never OOM */

/*
 * Deflate-on-OOM: called when an allocation finds the free list empty,
 * without the allocator's lock held; returns pages it put back on the free
 * list (0: nothing to give, the allocation fails).
 */
typedef unsigned (*mvg_os_oom_fn)(void *arg, unsigned want);

struct mvg_os_stats {
	uint64_t total_pages; /* guest physical memory */
	uint64_t free_pages; /* on the free list */
	uint64_t used_pages; /* handed to applications */
	uint64_t pinned_pages; /* held by the balloon driver */
	uint64_t alloc_pages; /* handed out in total (first-use faults) */
	uint64_t oom_calls; /* times the OOM notifier was called */
	uint64_t oom_pages; /* pages the notifier put back */
	uint64_t alloc_failures; /* allocations that got no page at all */
	uint64_t bad_frees; /* frees refused: wrong page or wrong state */
};

/* An allocator over memsize bytes at mem (4 KiB aligned); all pages free. */
int mvg_os_create(void *mem, uint64_t memsize, struct mvg_os **out);
void mvg_os_destroy(struct mvg_os *os);
uint64_t mvg_os_npages(const struct mvg_os *os);
/* The guest address of page pfn. */
void *mvg_os_page(const struct mvg_os *os, uint32_t pfn);

/*
 * Allocates up to n pages into pfns, most recently freed first, calling
 * the OOM notifier when the free list runs dry (not for MVG_OS_BALLOON).
 * Returns how many (1..n), or -ENOMEM if none.
 */
int mvg_os_alloc(struct mvg_os *os, unsigned n, uint32_t *pfns, unsigned flags);
/*
 * Puts n pages back on the free list.  With MVG_OS_BALLOON they must be
 * pinned, without it handed to an application; otherwise (or out of range,
 * or repeated) nothing is freed, the refusal is counted, -EINVAL.
 */
int mvg_os_free(struct mvg_os *os, const uint32_t *pfns, unsigned n,
		unsigned flags);
void mvg_os_set_oom_notifier(struct mvg_os *os, mvg_os_oom_fn fn, void *arg);
void mvg_os_get_stats(struct mvg_os *os, struct mvg_os_stats *st);

/* The balloon driver of one guest. */
struct mvg_balloon;

struct mvg_balloon_config {
	uint32_t poll_ms; /* between looks at the host's target (1000) */
	uint32_t oom_pages; /* deflated per OOM notification (256) */
	uint32_t oom_hold_ms; /* no inflating after an OOM deflate (2000) */
	bool manual; /* no thread: the caller runs mvg_balloon_poll() */
	/* the CPUs its thread runs on (NULL: anywhere); read only while
	 * mvg_balloon_start runs */
	const cpu_set_t *cpus;
};

struct mvg_balloon_stats {
	uint64_t pages; /* in the balloon now */
	uint64_t inflated; /* pages given to the host, total */
	uint64_t deflated; /* pages taken back, total */
	uint64_t oom_deflated; /* of which on the guest's OOM */
	uint64_t refused; /* PFNs the host refused */
	uint64_t polls; /* rounds run */
	uint64_t short_rounds; /* rounds the guest OS had no page to give */
};

void mvg_balloon_config_init(struct mvg_balloon_config *cfg);
/*
 * Loads the driver: opens vm's balloon channel and registers for
 * deflate-on-OOM with os.  0 or -errno (-EBUSY: the VM has a driver).
 */
int mvg_balloon_start(mv_vm *vm, struct mvg_os *os,
		      const struct mvg_balloon_config *cfg,
		      struct mvg_balloon **out);
/* One round: inflate or deflate towards the target, then report stats. */
int mvg_balloon_poll(struct mvg_balloon *b);
/* Deflate-on-OOM by hand: gives up to want pages back to the guest OS. */
unsigned mvg_balloon_oom(struct mvg_balloon *b, unsigned want);
void mvg_balloon_get_stats(struct mvg_balloon *b, struct mvg_balloon_stats *st);
/* Stops the thread, deflates everything, closes the channel, frees b. */
void mvg_balloon_stop(struct mvg_balloon *b);

/* The burst workload; workload.c hands MVG_BURST configs to these. */
struct mvg_burst;

int mvg_burst_start(const struct mvg_config *cfg, struct mvg_burst **out);
void mvg_burst_request_stop(struct mvg_burst *b);
void mvg_burst_halt(struct mvg_burst *b);
void mvg_burst_stop(struct mvg_burst *b);
int mvg_burst_verify(struct mvg_burst *b, const atomic_bool *cancel,
		     struct mvg_stats *final);
void mvg_burst_get_stats(struct mvg_burst *b, struct mvg_stats *st);
uint64_t mvg_burst_verify_pages(struct mvg_burst *b);

#endif /* MV_GUEST_OS_H */

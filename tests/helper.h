/* SPDX-License-Identifier: MIT */
/*
 * helper.h - what the engine's tests share: throwaway hosts in temporary
 * swap directories, and page patterns that tell whose page, which page and
 * which version a page holds.
 */
#ifndef MV_TEST_HELPER_H
#define MV_TEST_HELPER_H

#include <stdbool.h>
#include <stdint.h>

#include "memvisor.h"

struct th_host {
	mv_host *host;
	char swapdir[64];
};

/* A host with a budget of memsize bytes, swap files in a fresh directory,
 * and the settings given (NULL: defaults).  Fails the test on error. */
void th_host_create(struct th_host *t, uint64_t memsize,
		    const struct mv_settings *s);
void th_host_destroy(struct th_host *t);
mv_vm *th_vm_create(struct th_host *t, const char *name, uint64_t memsize);

/* Fills a page with bytes determined by (tag, ppn, version). */
void th_fill(void *page, uint64_t tag, uint64_t ppn, uint64_t version);
/* True if the page holds exactly th_fill(tag, ppn, version)'s bytes. */
bool th_check(const void *page, uint64_t tag, uint64_t ppn, uint64_t version);
/* The same, but compressible: 512 bytes of such data, repeated. */
void th_fill_z(void *page, uint64_t tag, uint64_t ppn, uint64_t version);
bool th_check_z(const void *page, uint64_t tag, uint64_t ppn, uint64_t version);
bool th_is_zero(const void *page);
/* Every page of the VM filled with th_fill (or th_fill_z if z), version 0;
 * and how many pages no longer hold exactly that. */
void th_fill_vm(mv_vm *vm, uint64_t tag, bool z);
uint64_t th_bad_pages(mv_vm *vm, uint64_t tag, bool z);
/* Waits until no fault of this VM is still being served, so that stats
 * read next count every touch made so far (the guest is woken before the
 * fault thread updates its counters). */
void th_quiesce(mv_vm *vm);
/* Pages whose pmap state and presence in the mapping disagree (PRIVATE:
 * an own page present; SHARED: the shared frame or nothing; others:
 * nothing), each checked under its entry lock: must be 0 always. */
uint64_t th_presence_mismatches(mv_vm *vm);
/* xorshift64: the tortures' random choices. */
uint64_t th_xs(uint64_t *state);
/* A thread swapping out 16 random pages of a random VM of vms[0..nvms)
 * every pause_ns until *stop, counting pages swapped. */
struct th_swapper {
	mv_vm **vms;
	unsigned nvms;
	long pause_ns;
	_Atomic bool *stop;
	uint64_t swapped;
};
void *th_swapper_main(void *arg);
/* Length of each torture run: MV_TORTURE_SECONDS, default 6. */
unsigned th_torture_seconds(void);
/* Empties the kernel's per-CPU LRU batches (move_pages(2) does that on
 * its way): UFFDIO_MOVE refuses a page still in one (EBUSY), so a test
 * that needs every page movable calls this after filling them. */
void th_drain_lru(void);
/* Waits until the host's scheduler has brought it out of the hard and low
 * states (free memory at least 64% of minFree), where it stops swapping. */
void th_settle(mv_host *h);

#endif /* MV_TEST_HELPER_H */

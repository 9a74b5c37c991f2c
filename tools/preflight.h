/* SPDX-License-Identifier: MIT */
/*
 * preflight.h - what `memvisor check` and the start of `memvisor run` say
 * about a scenario on this machine before anything runs: whether the host
 * it asks for fits the physical memory, and how many mappings
 * (vm.max_map_count) its guests may need.
 */
#ifndef MV_TOOL_PREFLIGHT_H
#define MV_TOOL_PREFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "scenario.h"

struct preflight {
	uint64_t phys_bytes; /* physical memory of this machine; 0: unknown */
	long map_max; /* vm.max_map_count; -1: unknown */
	long map_used; /* mappings this process uses now; -1: unknown */
	long map_reserve; /* mappings memvisor leaves to the process */
	uint64_t guest_maps; /* the scenario's guests need at most this many */
	size_t sharing_vms; /* VMs page sharing can reach */
	/* running DAMON monitors of physical addresses (kdamonds whose
	 * context has paddr operations), the first one's index; 0: none */
	unsigned damon_paddr;
	unsigned damon_first;
};

/* The guests' mapping bound: mv_vm_maps_bound() summed over the VMs, a VM
 * counting its pages only when page sharing can reach it, and two for each
 * guest thread (its stack and guard page). */
uint64_t preflight_guest_maps(const struct scenario *sc, size_t *sharing_vms);

#define PREFLIGHT_DAMON_SYSFS "/sys/kernel/mm/damon/admin/kdamonds"

/* Whether kdamond k under root is on and has a paddr context. */
bool preflight_damon_paddr_on(const char *root, unsigned k);

/* The running kdamonds under root (/sys/kernel/mm/damon/admin/kdamonds
 * on a machine) that monitor physical addresses; *first gets the index of
 * the first.  0 when there are none or the tree cannot be read. */
unsigned preflight_damon_paddr(const char *root, unsigned *first);

/* Measures this machine for sc. */
void preflight_measure(const struct scenario *sc, struct preflight *pf);

/* The vm.max_map_count the scenario needs with what is in use now; 0 when
 * the limit is unknown or already enough. */
long preflight_map_count_wanted(const struct preflight *pf);

/*
 * One line on the mappings to info, and to warn a line per problem: a host
 * larger than physical memory, a vm.max_map_count below what the guests
 * may need (with the sysctl that fixes it), a DAMON monitor of physical
 * addresses (whose reverse-map walks stall page moves; with the command
 * that stops it).  Returns the warnings printed.
 */
int preflight_print(const struct scenario *sc, const struct preflight *pf,
		    FILE *info, FILE *warn);

#endif /* MV_TOOL_PREFLIGHT_H */

// SPDX-License-Identifier: MIT
/*
 * maps.c - how many mappings (VMAs, limited by vm.max_map_count) VMs may
 * need, so that a VMM, or `memvisor check`, can say what to set before the
 * VMs start.
 *
 * Design: an upper bound, not a forecast.  A VM maps MV_VM_MAPS areas of
 * its own (guest memory, staging, sample area, fault thread stacks and
 * guards).  Page sharing maps a shared frame over a guest page, which
 * splits the guest memory mapping around it: at most two more mappings per
 * shared page, fewer when neighbouring guest pages map neighbouring frames
 * and their mappings merge.  So a VM page sharing can reach needs at most
 * MV_VM_MAPS + 2 per guest page, and one it cannot reach MV_VM_MAPS.
 * Reaching the limit is safe: sharing stops there and nothing else fails;
 * the bound is what lets sharing never stop for lack of mappings.
 *
 * Invariants: none; arithmetic and the procfs reads of system.c.
 *
 * Locks: none.
 */
#include <errno.h>

#include "internal.h"

uint64_t mv_vm_maps_bound(uint64_t memsize_bytes, int sharing)
{
	uint64_t pages = memsize_bytes >> MV_PAGE_SHIFT;

	return MV_VM_MAPS + (sharing ? 2 * pages : 0);
}

int mv_map_count(long *used, long *max, long *reserve)
{
	if (!used || !max || !reserve)
		return -EINVAL;
	*reserve = MV_MAP_COUNT_SLACK;
	return mv__map_count(used, max);
}

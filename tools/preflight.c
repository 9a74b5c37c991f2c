// SPDX-License-Identifier: MIT
/*
 * preflight.c - a scenario against this machine, before it runs: physical
 * memory and mappings.
 *
 * Design: measuring (sysconf, procfs through the library's mv_map_count())
 * is kept apart from judging and printing, which take the measurements as
 * numbers, so that tests can give any machine.  The mapping figure is the
 * library's documented upper bound (mv_vm_maps_bound(): two mappings per
 * guest page that page sharing can reach, plus each VM's own), plus a stack
 * and a guard for each of the command's guest threads, never a guess at
 * what sharing will find; the sysctl printed is the limit that lets sharing
 * never stop, and the text says that at a lower limit sharing stops safely
 * instead of failing.  Page sharing reaches a VM when the background
 * scanner runs (Mem.ShareScanGHz above 0): `memvisor run` never scans on
 * its own.  Nothing here refuses a scenario; these are warnings.
 *
 * Invariants: none; no state.
 *
 * Lock ordering: none.
 */
#include <unistd.h>

#include "memvisor.h"
#include "preflight.h"

static double mb(uint64_t bytes)
{
	return (double)bytes / (1 << 20);
}

uint64_t preflight_guest_maps(const struct scenario *sc, size_t *sharing_vms)
{
	int sharing = sc->settings.share_scan_ghz > 0;
	uint64_t total = 0;

	/* the command's guest threads add a stack and its guard each */
	for (size_t i = 0; i < sc->nvms; i++)
		total += mv_vm_maps_bound(sc->vms[i].memsize, sharing) +
			 2 * (uint64_t)sc->vms[i].threads;
	*sharing_vms = sharing ? sc->nvms : 0;
	return total;
}

void preflight_measure(const struct scenario *sc, struct preflight *pf)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);

	pf->phys_bytes =
		pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
	if (mv_map_count(&pf->map_used, &pf->map_max, &pf->map_reserve)) {
		pf->map_used = -1;
		pf->map_max = -1;
	}
	pf->guest_maps = preflight_guest_maps(sc, &pf->sharing_vms);
}

long preflight_map_count_wanted(const struct preflight *pf)
{
	uint64_t want;

	if (pf->map_max < 0 || pf->map_used < 0)
		return 0;
	want = (uint64_t)pf->map_used + (uint64_t)pf->map_reserve +
	       pf->guest_maps;
	return want > (uint64_t)pf->map_max ? (long)want : 0;
}

int preflight_print(const struct scenario *sc, const struct preflight *pf,
		    FILE *info, FILE *warn)
{
	long want = preflight_map_count_wanted(pf);
	int warnings = 0;

	if (pf->phys_bytes && sc->host.memsize > pf->phys_bytes) {
		fprintf(warn,
			"memvisor: warning: the host's memsize %.1f MB is more than this machine's %.1f MB of physical memory: the kernel would swap or kill memvisor before memvisor reclaims anything (expected [host] memsize below physical memory)\n",
			mb(sc->host.memsize), mb(pf->phys_bytes));
		warnings++;
	}
	if (pf->sharing_vms)
		fprintf(info,
			"  mappings: the guests may need up to %llu (an upper bound: 2 per guest page that page sharing can reach, in %zu VM%s, plus each VM's own and its threads')",
			(unsigned long long)pf->guest_maps, pf->sharing_vms,
			pf->sharing_vms == 1 ? "" : "s");
	else
		fprintf(info,
			"  mappings: the guests need up to %llu (page sharing is off: Mem.ShareScanGHz = 0)",
			(unsigned long long)pf->guest_maps);
	if (pf->map_max >= 0)
		fprintf(info, "; vm.max_map_count is %ld, %ld in use\n",
			pf->map_max, pf->map_used);
	else
		fprintf(info, "; vm.max_map_count is unknown here\n");
	if (want) {
		fprintf(warn,
			"memvisor: warning: vm.max_map_count %ld is below the %ld mappings this scenario may need; page sharing stops safely at the limit (nothing fails, less memory is saved); for sharing never to stop: sysctl -w vm.max_map_count=%ld\n",
			pf->map_max, want, want);
		warnings++;
	}
	return warnings;
}

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
 * its own.  A running DAMON monitor of physical addresses is warned of:
 * its access checks walk the reverse map of guest pages and hold
 * memvisor's page moves back, for seconds on the development machine's
 * kernel (docs/ARCHITECTURE.md, "Reclaim stalled inside the kernel").
 * Nothing here refuses a scenario; these are warnings.
 *
 * Invariants: none; no state.
 *
 * Lock ordering: none.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
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

/* The first word of the file at dir/name into buf; false if unreadable. */
static bool read_word(const char *dir, const char *name, char *buf, size_t len)
{
	char path[512];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fgets(buf, (int)len, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, " \t\n")] = '\0';
	return ok && buf[0];
}

bool preflight_damon_paddr_on(const char *root, unsigned k)
{
	char dir[512], word[64];

	snprintf(dir, sizeof(dir), "%s/%u", root, k);
	if (!read_word(dir, "state", word, sizeof(word)) || strcmp(word, "on"))
		return false;
	for (unsigned c = 0; c < 64; c++) {
		snprintf(dir, sizeof(dir), "%s/%u/contexts/%u", root, k, c);
		if (!read_word(dir, "operations", word, sizeof(word)))
			return false;
		if (!strcmp(word, "paddr"))
			return true;
	}
	return false;
}

unsigned preflight_damon_paddr(const char *root, unsigned *first)
{
	struct dirent *e;
	unsigned n = 0, k;
	DIR *d = opendir(root);

	*first = 0;
	while (d && (e = readdir(d)))
		if (sscanf(e->d_name, "%u", &k) == 1 &&
		    preflight_damon_paddr_on(root, k) && (!n++ || k < *first))
			*first = k;
	if (d)
		closedir(d);
	return n;
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
	pf->damon_paddr =
		preflight_damon_paddr(PREFLIGHT_DAMON_SYSFS, &pf->damon_first);
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
	if (pf->damon_paddr) {
		fprintf(warn,
			"memvisor: warning: a DAMON monitor of physical addresses is running (kdamond %u%s): its access checks walk the reverse map of guest pages and can hold memvisor's page moves back for seconds, stalling the VM whose reclaim waits (it then runs on the minFree reserve); to stop it while memvisor runs: echo off > %s/%u/state\n",
			pf->damon_first,
			pf->damon_paddr > 1 ? " and others" : "",
			PREFLIGHT_DAMON_SYSFS, pf->damon_first);
		warnings++;
	}
	return warnings;
}

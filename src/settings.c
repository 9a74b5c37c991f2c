// SPDX-License-Identifier: MIT
/*
 * settings.c - the host's tunables, named as ESX names them.
 *
 * Design: one table maps each ESX advanced-setting name to its field, its
 * default and its range, so defaults, validation and scenario files cannot
 * drift apart.  Values are whole decimal numbers.
 *
 * Invariants: a struct mv_settings filled by mv_settings_init() and changed
 * only through mv_settings_set() holds in-range values only.  A caller may
 * also set fields directly, so mv_host_create() checks every field against
 * the same table (mv_settings_check()) and refuses the host otherwise: the
 * engine divides by some of them (Mem.SwapRunPages, Mem.FaultAroundPages)
 * and reads only settings that passed this check.  Every field of struct
 * mv_settings has a row (a static assertion counts them).
 *
 * Locks: none; settings are copied into a host at creation.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "memvisor.h"

struct setting {
	const char *name; /* ESX advanced-setting name */
	const char *field; /* its field in struct mv_settings */
	size_t offset; /* of the uint32_t field in struct mv_settings */
	uint32_t def; /* ESX's default */
	uint32_t min, max; /* accepted range, inclusive */
};

#define FIELD(f) #f, offsetof(struct mv_settings, f)

static const struct setting table[] = {
	{ "Mem.ShareScanTime", FIELD(share_scan_time_min), 60, 1, 600 },
	{ "Mem.ShareScanGHz", FIELD(share_scan_ghz), 4, 0, 32 },
	{ "Mem.ShareRateMax", FIELD(share_rate_max_pages), 1024, 1, 1 << 24 },
	{ "Mem.ShareForceSalting", FIELD(share_force_salting), 2, 0, 2 },
	{ "Mem.CtlMaxPercent", FIELD(ctl_max_pct), 65, 0, 75 },
	{ "Mem.MemZipMaxPct", FIELD(mem_zip_max_pct), 10, 0, 100 },
	{ "Mem.IdleTax", FIELD(idle_tax_pct), 75, 0, 99 },
	{ "Mem.SamplePeriod", FIELD(sample_period_s), 60, 0, 3600 },
	{ "Mem.BalancePeriod", FIELD(balance_period_s), 15, 1, 3600 },
	{ "Mem.FaultAroundPages", FIELD(fault_around_pages), 16, 1, 64 },
	{ "Mem.SwapInClusterPages", FIELD(swapin_cluster_pages), 16, 1, 64 },
	{ "Mem.FaultThreads", FIELD(fault_threads), 1, 1, 16 },
	{ "Mem.ReclaimPerVM", FIELD(reclaim_per_vm), 1, 0, 1 },
	{ "Mem.SwapDirectIO", FIELD(swap_direct_io), 1, 0, 1 },
	{ "Mem.SwapRunPages", FIELD(swap_run_pages), 16, 1, 16 },
	{ "Mem.MemZipEnable", FIELD(mem_zip_enable), 1, 0, 1 },
	{ "Mem.ZipAlgorithm", FIELD(zip_algorithm), 0, 0, 1 },
	{ "Mem.AllocGuestLargePage", FIELD(alloc_guest_large_page), 1, 0, 1 },
	/* not ESX's: percent of a VM's active memory, see sched_policy.h */
	{ "Mem.DemandHeadroomPct", FIELD(demand_headroom_pct), 25, 0, 1000 },
	/* not ESX's (random): the cold policy measured better (cold.c) */
	{ "Mem.ReclaimPolicy", FIELD(reclaim_policy), 1, 0, 1 },
	/* not ESX's: service beside the vCPUs measured faster (affinity.c) */
	{ "Mem.ServiceAffinity", FIELD(service_affinity), 1, 0, 1 },
	/* not ESX's: a faster LZ4 search where it costs no space (zcache.c) */
	{ "Mem.ZipFastAccel", FIELD(zip_fast_accel), 8, 1, 64 },
	/* not ESX's: Linux's way with reads of untouched memory (fault.c) */
	{ "Mem.ReadMapsZeroPage", FIELD(read_maps_zero_page), 1, 0, 1 },
	/* not ESX's: one fault for a run of such pages a VM writes (fault.c) */
	{ "Mem.ZeroWriteAround", FIELD(zero_write_around), 1, 0, 1 },
	/* not ESX's: first writes of pages read as zeros, natively (zero_open.c) */
	{ "Mem.ZeroOpen", FIELD(zero_open), 1, 0, 1 },
};

/* every field has its row: none escapes mv_settings_check() */
_Static_assert(sizeof(table) / sizeof(table[0]) * sizeof(uint32_t) ==
		       sizeof(struct mv_settings),
	       "each uint32_t field of struct mv_settings needs a table row");

static uint32_t *field(struct mv_settings *s, const struct setting *t)
{
	return (uint32_t *)((char *)s + t->offset);
}

void mv_settings_init(struct mv_settings *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		*field(s, &table[i]) = table[i].def;
}

int mv_settings_set(struct mv_settings *s, const char *name, const char *value)
{
	unsigned long long v;
	char *end;

	if (!s || !name || !value)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcasecmp(name, table[i].name))
			continue;
		while (*value == ' ' || *value == '\t')
			value++;
		if (*value < '0' || *value > '9')
			return -EINVAL;
		errno = 0;
		v = strtoull(value, &end, 10);
		while (*end == ' ' || *end == '\t')
			end++;
		if (errno || *end || v < table[i].min || v > table[i].max)
			return -EINVAL;
		*field(s, &table[i]) = (uint32_t)v;
		return 0;
	}
	return -EINVAL;
}

int mv_settings_check(const struct mv_settings *s, char *msg, size_t msglen)
{
	const struct setting *t;
	uint32_t v;

	if (msg && msglen)
		msg[0] = '\0';
	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		t = &table[i];
		v = *(const uint32_t *)((const char *)s + t->offset);
		if (v >= t->min && v <= t->max)
			continue;
		if (msg && msglen)
			snprintf(
				msg, msglen,
				"setting %s (struct mv_settings.%s) is %lu; it must be from %lu to %lu",
				t->name, t->field, (unsigned long)v,
				(unsigned long)t->min, (unsigned long)t->max);
		return -EINVAL;
	}
	return 0;
}

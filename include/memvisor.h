/* SPDX-License-Identifier: MIT */
/*
 * memvisor.h - the public API of libmemvisor, the memory manager of a
 * hypervisor.
 *
 * A host owns a budget of machine memory.  VMs created on it get guest
 * physical memory: a real mapping of memsize bytes in this process that guest
 * threads touch at native speed.  memvisor steps in only on faults
 * (userfaultfd) and reclaims machine memory behind the guests' backs when the
 * host runs short, always giving back exactly the bytes that were there.
 *
 * Conventions: every call that can fail returns 0 or a negative errno;
 * mv_strerror() names it, and mv_host_errmsg() holds a sentence saying what
 * went wrong and what to do about it.  Objects are opaque and come in
 * mv_thing_create()/mv_thing_destroy() pairs.  Statistics are snapshots
 * copied out; nothing returned points into live state except the guest
 * memory itself (mv_vm_mem()).
 */
#ifndef MEMVISOR_H
#define MEMVISOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MV_PAGE_SIZE 4096u
#define MV_NAME_MAX 32

typedef struct mv_host mv_host;
typedef struct mv_vm mv_vm;

/*
 * Page states of the pmap (DESIGN.md).  Every transition keeps the page's
 * content exactly.
 */
enum mv_page_state {
	MV_PAGE_UNTOUCHED = 0, /* never touched: reads as zero (or image) */
	MV_PAGE_PRIVATE, /* backed by its own machine frame */
	MV_PAGE_SHARED, /* read-only view of a refcounted shared frame */
	MV_PAGE_ZERO, /* known all-zero, no frame */
	MV_PAGE_BALLOONED, /* given up by the guest's balloon driver */
	MV_PAGE_COMPRESSED, /* in the VM's compression cache */
	MV_PAGE_SWAPPED, /* in the VM's swap file */
	MV_PAGE_NSTATES
};

/* Free-memory states of the host, from free machine memory vs minFree. */
enum mv_mem_state {
	MV_STATE_HIGH = 0, /* free >= 400% of minFree */
	MV_STATE_CLEAR, /* free >= 100% */
	MV_STATE_SOFT, /* free >= 64% */
	MV_STATE_HARD, /* free >= 32% */
	MV_STATE_LOW, /* below */
};

/*
 * Tunables of a host.  mv_settings_init() fills ESX's defaults; change them
 * with mv_settings_set() (by ESX setting name, as scenario files do), which
 * rejects unknown names and out-of-range values with -EINVAL.  Units are in
 * the field names.
 */
struct mv_settings {
	/* Mem.ShareScanTime: minutes for the share scanner to cover a VM (60) */
	uint32_t share_scan_time_min;
	/* Mem.ShareScanGHz: share scanning budget per GHz (4) */
	uint32_t share_scan_ghz;
	/* Mem.ShareRateMax: pages per second scanned per VM at most (1024) */
	uint32_t share_rate_max_pages;
	/* Mem.ShareForceSalting: 0 none, 1 per-VM salt, 2 salt = VM setting (2) */
	uint32_t share_force_salting;
	/* Mem.CtlMaxPercent: most of a VM the balloon may take, percent (65) */
	uint32_t ctl_max_pct;
	/* Mem.MemZipMaxPct: compression cache cap, percent of the VM (10) */
	uint32_t mem_zip_max_pct;
	/* Mem.IdleTax: idle memory tax rate, percent (75) */
	uint32_t idle_tax_pct;
	/* Mem.SamplePeriod: active-memory sampling period, seconds (60) */
	uint32_t sample_period_s;
	/* Mem.BalancePeriod: scheduler rebalancing period, seconds (15) */
	uint32_t balance_period_s;
	/* Mem.FaultAroundPages: pages filled per first-touch fault (16, 1-64) */
	uint32_t fault_around_pages;
	/* Mem.SwapInClusterPages: swapped neighbours read per swap-in (16, 1-64) */
	uint32_t swapin_cluster_pages;
	/* Mem.FaultThreads: fault service threads per VM (1, 1-16) */
	uint32_t fault_threads;
	/* Mem.SwapDirectIO: swap files opened O_DIRECT, bypassing the page cache (1) */
	uint32_t swap_direct_io;
};

void mv_settings_init(struct mv_settings *s);
/* Set one tunable by its ESX name ("Mem.ShareScanTime") from a decimal string. */
int mv_settings_set(struct mv_settings *s, const char *name, const char *value);

struct mv_host_config {
	uint64_t memsize_bytes; /* machine memory budget handed to guests */
	const char *swapdir; /* directory for per-VM swap files */
	struct mv_settings settings;
};

/* Fills defaults: 1 GiB budget, swapdir /var/tmp/memvisor, ESX settings. */
void mv_host_config_init(struct mv_host_config *cfg);

/*
 * Checks that this kernel and process can run memvisor at all: userfaultfd
 * with the features needed, and vm.max_map_count.  On failure returns
 * -ENOSYS/-EPERM/-ENOMEM and writes a sentence naming the problem and the
 * fix into msg.
 */
int mv_check_system(char *msg, size_t msglen);

int mv_host_create(const struct mv_host_config *cfg, mv_host **out);
/* Destroys the host; every VM must have been destroyed first. */
void mv_host_destroy(mv_host *host);
/* A sentence about the last error or warning of this host ("" if none). */
const char *mv_host_errmsg(const mv_host *host);

struct mv_vm_config {
	char name[MV_NAME_MAX];
	uint64_t memsize_bytes; /* guest physical memory, multiple of 4 KiB */
	const char *image_path; /* optional RAM image, loaded lazily; NULL if none */
};

void mv_vm_config_init(struct mv_vm_config *cfg);
int mv_vm_create(mv_host *host, const struct mv_vm_config *cfg, mv_vm **out);
void mv_vm_destroy(mv_vm *vm);

/* Guest physical memory: base address and size.  Guest threads touch it. */
void *mv_vm_mem(const mv_vm *vm);
uint64_t mv_vm_memsize(const mv_vm *vm);
const char *mv_vm_name(const mv_vm *vm);

/* The pmap state of one page, or -EINVAL for a ppn out of range. */
int mv_vm_page_state(mv_vm *vm, uint64_t ppn);

/*
 * Reclaim: swap out up to npages pages of this VM chosen at random (ESX's
 * victim policy); *done says how many were.  Returns an error only if none
 * could be swapped out for a reason other than there being none to take
 * (e.g. -ENOSPC with the swap directory full: the pages stay in memory).
 */
int mv_vm_swap_out(mv_vm *vm, uint64_t npages, uint64_t *done);
/* Swap out exactly page ppn if it is PRIVATE (for tests and tools). */
int mv_vm_swap_out_page(mv_vm *vm, uint64_t ppn);

struct mv_vm_stats {
	char name[MV_NAME_MAX];
	uint64_t memsz_pages; /* MEMSZ: configured guest memory */
	uint64_t consumed_pages; /* machine frames this VM holds */
	uint64_t touched_pages; /* TCHD: pages touched at least once */
	uint64_t state_pages[MV_PAGE_NSTATES]; /* pmap census */
	uint64_t swcur_pages; /* SWCUR: pages in the swap file */
	uint64_t swapin_pages; /* pages read back from swap, total */
	uint64_t swapout_pages; /* pages written to swap, total */
	uint64_t faults; /* userfaultfd events served */
	uint64_t faults_spurious; /* events for pages already present */
	uint64_t fault_fill_pages; /* pages filled by first-touch faults */
	uint64_t image_pages; /* pages filled from the RAM image */
	uint64_t swap_errors; /* swap-out attempts that failed (page kept) */
	uint64_t fault_errors; /* faults that could not be served */
};

struct mv_host_stats {
	uint64_t memsize_pages; /* machine memory budget */
	uint64_t consumed_pages; /* frames handed to guests */
	uint64_t free_pages; /* memsize - consumed */
	uint64_t minfree_pages; /* minFree by ESXi's tiers */
	enum mv_mem_state state;
	uint32_t nvms;
	uint64_t alloc_waits; /* faults that waited for a free frame */
	uint64_t reclaim_pages; /* pages reclaimed by the enforcer */
	uint64_t swap_errors; /* failed swap-outs, all VMs */
};

int mv_vm_stats(mv_vm *vm, struct mv_vm_stats *st);
int mv_host_stats(mv_host *host, struct mv_host_stats *st);

/* minFree for a budget, by ESXi's tiers (6/4/2/1 %). */
uint64_t mv_minfree_bytes(uint64_t memsize_bytes);
const char *mv_mem_state_name(enum mv_mem_state s);
const char *mv_page_state_name(enum mv_page_state s);
const char *mv_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* MEMVISOR_H */
